//! `sinkmap assess`: a reference sample against the scene's land-cover map (or another
//! categorical map), with error matrices, accuracies, error-adjusted areas and their carbon
//! consequence, for the region and per zone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::estimate::{self, Assessment, DesignError, EcosystemAreas, Est, Unit};
use super::identity::MapIdentity;
use super::io::{self, PointSource};
use crate::config::{Models, Scene};
use crate::error::{Error, Result};
use crate::raster::reference_grid;
use crate::zones::ZoneSet;

/// The sampling design of the reference sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Design {
    /// Stratified random: strata are the map classes, or the codes of --strata.
    Stratified,
    /// Simple random over the whole map.
    SimpleRandom,
    /// Systematic (a regular grid with a random start); analysed as simple random.
    Systematic,
}

/// What `sinkmap assess` compares: the reference points, how they were drawn, the map, and
/// where the results go.
#[derive(Debug, Clone)]
pub struct AssessSpec {
    /// The reference points (any OGR vector format, or CSV with coordinates).
    pub reference: PointSource,
    /// Field holding the observed (reference) class: a code or a label of the scheme.
    pub class_field: String,
    /// How the reference points were drawn.
    pub design: Design,
    /// A raster of strata codes when the strata are not the map classes.
    pub strata: Option<PathBuf>,
    /// Optional field with each point's stratum as recorded at sampling time (checked).
    pub stratum_field: Option<String>,
    /// Assess this categorical map (e.g. a change map) instead of the scene's land cover.
    pub map: Option<PathBuf>,
    /// Folder with the run's stock_tc_per_ha.tif and sink_tco2_per_ha_yr.tif (default: the
    /// scene's output folder).
    pub maps_dir: Option<PathBuf>,
    /// Folder the tables and `assessment.json` are written to.
    pub out: PathBuf,
}

/// One class of the assessed map.
#[derive(Debug, Clone, Serialize)]
pub struct ClassInfo {
    /// The class's code in the raster.
    pub code: i32,
    /// Its label (the scheme's label, or the code as text for another map).
    pub label: String,
}

/// An estimate with its standard error and 95 % interval (value ± 1.96 SE), in the unit of
/// the estimate.
#[derive(Debug, Clone, Serialize)]
pub struct Interval {
    /// The estimate.
    pub value: f64,
    /// Its standard error.
    pub se: f64,
    /// Low end of the 95 % interval.
    pub ci95_low: f64,
    /// High end of the 95 % interval.
    pub ci95_high: f64,
}

impl From<Est> for Interval {
    fn from(e: Est) -> Self {
        let (lo, hi) = e.ci95();
        Interval {
            value: e.value,
            se: e.se,
            ci95_low: lo,
            ci95_high: hi,
        }
    }
}

/// The results of one class in one region (a row of `accuracy.csv` and `adjusted_area.csv`).
#[derive(Debug, Clone, Serialize)]
pub struct ClassResult {
    /// The class's code.
    pub code: i32,
    /// Its label.
    pub label: String,
    /// Area the map gives the class in the region (ha).
    pub mapped_area_ha: f64,
    /// Reference points the map shows as this class.
    pub sample_mapped: usize,
    /// Reference points the reference found to be this class.
    pub sample_reference: usize,
    /// User's accuracy (a proportion; docs/science.md §6.3); None when no point is mapped as
    /// the class.
    pub users_accuracy: Option<Interval>,
    /// Producer's accuracy (a proportion; docs/science.md §6.3); None when the class has no
    /// estimated area.
    pub producers_accuracy: Option<Interval>,
    /// Error-adjusted area (ha; docs/science.md §6.2).
    pub adjusted_area_ha: Interval,
}

/// The carbon consequence of the adjusted areas in one region (docs/science.md §6.4).
#[derive(Debug, Clone, Serialize)]
pub struct CarbonResult {
    /// Map-based totals (Σ over the map's pixels): stock (t C).
    pub map_stock_tc: f64,
    /// Map-based sink (t CO₂/yr).
    pub map_sink_tco2_yr: f64,
    /// Class mean densities × error-adjusted areas, with the area uncertainty.
    pub adjusted_stock_tc: Interval,
    /// The same for the sink (t CO₂/yr).
    pub adjusted_sink_tco2_yr: Interval,
    /// The stock map's area-weighted mean over each class (t C/ha), in the order of the
    /// report's classes; 0 for a class never mapped.
    pub class_mean_stock_tc_per_ha: Vec<f64>,
    /// The sink map's mean over each class (t CO₂/ha/yr), same order.
    pub class_mean_sink_tco2_per_ha_yr: Vec<f64>,
}

/// The results of the whole map (zone id `all`) or of one zone.
#[derive(Debug, Clone, Serialize)]
pub struct RegionResult {
    /// Zone id (`all` for the whole map).
    pub zone_id: String,
    /// Zone name (`whole map` for the whole map).
    pub zone_name: String,
    /// Reference points inside the region.
    pub sample_size: usize,
    /// Area of the strata in the region (ha): the area the proportions refer to.
    pub total_area_ha: f64,
    /// Why this region has no estimate (too few points, a stratum without sample, …).
    pub note: Option<String>,
    /// Overall accuracy (a proportion); None with a note.
    pub overall_accuracy: Option<Interval>,
    /// Every class of the map (empty with a note).
    pub classes: Vec<ClassResult>,
    /// Point counts, `[map class][reference class]`.
    pub error_matrix_counts: Vec<Vec<usize>>,
    /// Estimated area proportions p̂ᵢⱼ, `[map class][reference class]`, summing to 1
    /// (docs/science.md §6.2); empty with a note.
    pub error_matrix_area_proportions: Vec<Vec<f64>>,
    /// The carbon consequence, when the run's stock and sink maps were found.
    pub carbon: Option<CarbonResult>,
}

/// `assessment.json`: everything `sinkmap assess` found, and what it was made against.
#[derive(Debug, Clone, Serialize)]
pub struct AssessmentReport {
    /// Version of sinkmap that wrote the file.
    pub sinkmap_version: String,
    /// Path of the scene file.
    pub scene: String,
    /// Path of the assessed map.
    pub map: String,
    /// Path of the reference points.
    pub reference: String,
    /// The sampling design.
    pub design: Design,
    /// The strata: `map classes`, the strata raster's path, or `none` (one stratum).
    pub strata: String,
    /// Confidence level of the intervals (0.95).
    pub confidence_level: f64,
    /// The classes of the map, in the order of the matrices.
    pub classes: Vec<ClassInfo>,
    /// The whole map first, then every zone.
    pub regions: Vec<RegionResult>,
    /// Remarks on the design and the data, in words.
    pub notes: Vec<String>,
    /// The land-cover map assessed (absent when `--map` assessed another raster): the
    /// accounting uses the assessment only for this map.
    pub map_identity: Option<MapIdentity>,
    /// Whole-map error-adjusted areas per ecosystem class with their sampling covariance,
    /// the input of the accounting's Monte Carlo (docs/science.md §6.8).
    pub ecosystem_areas: Option<EcosystemAreas>,
}

/// Groups the assessed classes by ecosystem class and estimates their areas with covariance.
fn ecosystem_areas(
    models: &Models,
    classes: &[ClassInfo],
    units: &[Unit],
    strata_area: &[f64],
    mapped: &[f64],
) -> std::result::Result<EcosystemAreas, DesignError> {
    let class_of = |code: i32| {
        models
            .scheme
            .codes
            .iter()
            .find(|c| c.value == code)
            .map(|c| c.class)
    };
    let mut names = Vec::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for e in crate::model::EcosystemClass::ALL {
        let g: Vec<usize> = (0..classes.len())
            .filter(|&i| class_of(classes[i].code) == Some(e))
            .collect();
        if !g.is_empty() {
            names.push(e.name().to_string());
            groups.push(g);
        }
    }
    let (p, cov) =
        estimate::group_proportions_with_covariance(units, strata_area, classes.len(), &groups)?;
    let total: f64 = strata_area.iter().sum();
    Ok(EcosystemAreas {
        classes: names,
        mapped_area_ha: groups
            .iter()
            .map(|g| g.iter().map(|&i| mapped[i]).sum())
            .collect(),
        adjusted_area_ha: p.iter().map(|x| x * total).collect(),
        se_ha: (0..groups.len())
            .map(|a| cov[a][a].max(0.0).sqrt() * total)
            .collect(),
        covariance_ha2: cov
            .iter()
            .map(|r| r.iter().map(|c| c * total * total).collect())
            .collect(),
    })
}

/// The rasters an assessment reads, opened on the scene's grid.
struct Layers {
    grid: crate::grid::Grid,
    models: Models,
    map_path: PathBuf,
    map: crate::raster::Layer,
    /// The assessed map is the scene's land cover (not `--map`).
    own_map: bool,
    strata: Option<crate::raster::Layer>,
    /// stock_tc_per_ha and sink_tco2_per_ha_yr of the run (empty: no carbon consequence).
    values: Vec<crate::raster::Layer>,
    notes: Vec<String>,
}

fn open_layers(scene: &Scene, spec: &AssessSpec) -> Result<Layers> {
    let grid = reference_grid(&scene.landcover.path, scene.landcover.band)?;
    let models = Models::load(scene)?;
    let mut notes = Vec::new();
    let map_path = spec.map.clone().unwrap_or(scene.landcover.path.clone());
    let mut map = io::open_categorical(&map_path, &grid)?;
    let own_map = spec.map.is_none();
    if own_map {
        if let Some(nd) = models.scheme.nodata_value {
            map.add_nodata(nd as f64);
        }
    }
    if spec.strata.is_some() && spec.design != Design::Stratified {
        return Err(Error::Usage(
            "--strata is only meaningful with --design stratified".into(),
        ));
    }
    let strata = spec
        .strata
        .as_ref()
        .map(|p| io::open_categorical(p, &grid))
        .transpose()?;
    let maps_dir = spec.maps_dir.clone().unwrap_or(scene.output_dir.clone());
    let stock_path = maps_dir.join("stock_tc_per_ha.tif");
    let sink_path = maps_dir.join("sink_tco2_per_ha_yr.tif");
    let values = if own_map && stock_path.exists() && sink_path.exists() {
        vec![
            io::open_continuous(&stock_path, &grid)?,
            io::open_continuous(&sink_path, &grid)?,
        ]
    } else {
        if own_map {
            notes.push(format!(
                "no carbon consequence: {} and {} not found (run `sinkmap run` on the scene first)",
                stock_path.display(),
                sink_path.display()
            ));
        } else {
            notes.push(
                "no carbon consequence: the assessed map is not the scene's land cover".into(),
            );
        }
        Vec::new()
    };
    Ok(Layers {
        grid,
        models,
        map_path,
        map,
        own_map,
        strata,
        values,
        notes,
    })
}

/// The class list: the scheme's codes, or the codes found in another map.
fn class_list(l: &Layers, pass: &io::Pass) -> Result<Vec<ClassInfo>> {
    if !l.own_map {
        let mut codes: Vec<i32> = pass.by_class[0].keys().copied().collect();
        codes.sort_unstable();
        return Ok(codes
            .into_iter()
            .map(|code| ClassInfo {
                code,
                label: format!("code {code}"),
            })
            .collect());
    }
    let c: Vec<ClassInfo> = l
        .models
        .scheme
        .codes
        .iter()
        .map(|c| ClassInfo {
            code: c.value,
            label: c.label.clone(),
        })
        .collect();
    for code in pass.by_class[0].keys() {
        if !c.iter().any(|x| x.code == *code) {
            return Err(Error::raster(
                &l.map_path,
                format!(
                    "code {code} is not in the scheme '{}'",
                    l.models.scheme.name
                ),
            ));
        }
    }
    Ok(c)
}

/// Everything the per-region estimates share: the classes, the strata, the raster sums and
/// the reference units with their zone slots.
struct Ctx<'a> {
    spec: &'a AssessSpec,
    layers: &'a Layers,
    pass: &'a io::Pass,
    classes: Vec<ClassInfo>,
    class_of_code: HashMap<i32, usize>,
    stratum_codes: Vec<i32>,
    stratum_of_code: HashMap<i32, usize>,
    units: Vec<Unit>,
    /// Zone slot of every unit (None: outside every zone, or no zones).
    unit_slot: Vec<Option<usize>>,
}

impl<'a> Ctx<'a> {
    fn new(
        spec: &'a AssessSpec,
        layers: &'a Layers,
        pass: &'a io::Pass,
        classes: Vec<ClassInfo>,
    ) -> Ctx<'a> {
        let class_of_code = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.code, i))
            .collect();
        // Strata: the map classes, the codes of the strata map, or one stratum.
        let stratum_codes: Vec<i32> = match (&spec.design, &layers.strata) {
            (Design::Stratified, None) => classes.iter().map(|c| c.code).collect(),
            (Design::Stratified, Some(_)) => {
                let mut v: Vec<i32> = pass.by_stratum[0].keys().copied().collect();
                v.sort_unstable();
                v
            }
            _ => vec![0],
        };
        let stratum_of_code = stratum_codes
            .iter()
            .enumerate()
            .map(|(i, c)| (*c, i))
            .collect();
        Ctx {
            spec,
            layers,
            pass,
            classes,
            class_of_code,
            stratum_codes,
            stratum_of_code,
            units: Vec::new(),
            unit_slot: Vec::new(),
        }
    }

    fn rpath(&self) -> &Path {
        &self.spec.reference.path
    }

    /// Area of every stratum in zone slot `slot` (0: the whole map).
    fn strata_area(&self, slot: usize) -> Vec<f64> {
        let by_class = &self.pass.by_class[slot];
        match (&self.spec.design, &self.layers.strata) {
            (Design::Stratified, None) => self
                .classes
                .iter()
                .map(|c| by_class.get(&c.code).map_or(0.0, |s| s.area_ha))
                .collect(),
            (Design::Stratified, Some(_)) => self
                .stratum_codes
                .iter()
                .map(|c| self.pass.by_stratum[slot].get(c).copied().unwrap_or(0.0))
                .collect(),
            _ => vec![by_class.values().map(|s| s.area_ha).sum()],
        }
    }

    fn mapped(&self, slot: usize) -> Vec<f64> {
        self.classes
            .iter()
            .map(|c| {
                self.pass.by_class[slot]
                    .get(&c.code)
                    .map_or(0.0, |s| s.area_ha)
            })
            .collect()
    }

    /// Reads the reference points into units (stratum, map class, reference class).
    fn read_units(&mut self, zones: Option<&ZoneSet>) -> Result<()> {
        let spec = self.spec;
        let mut fields = vec![spec.class_field.as_str()];
        if let Some(f) = &spec.stratum_field {
            fields.push(f);
        }
        let points = io::read_points(&spec.reference, &self.layers.grid, &fields)?;
        for p in &points {
            let (unit, col, row) = self.unit_of(p)?;
            self.units.push(unit);
            self.unit_slot
                .push(zones.and_then(|z| io::zone_at(z, &self.layers.grid, col, row)));
        }
        Ok(())
    }

    /// One point as a unit, with its pixel; errors name the file and the point.
    fn unit_of(&self, p: &io::GridPoint) -> Result<(Unit, usize, usize)> {
        let (spec, rpath, classes) = (self.spec, self.rpath(), &self.classes);
        let bad = |m: String| Error::vector(rpath, format!("{}: {m}", p.label));
        let (col, row) = p.pixel(&self.layers.grid).ok_or_else(|| {
            bad(format!(
                "point ({:.6}, {:.6}) lies outside the map grid",
                p.x, p.y
            ))
        })?;
        let code = io::code_at(&self.layers.map, col, row)?.ok_or_else(|| {
            bad(format!(
                "the map has no data at the point (pixel col {col}, row {row})"
            ))
        })?;
        let map_class = *self
            .class_of_code
            .get(&code)
            .ok_or_else(|| bad(format!("map code {code} is not one of the map's classes")))?;
        let text = p.fields[0].as_deref().ok_or_else(|| {
            bad(format!(
                "field '{}' (the reference class) is empty",
                spec.class_field
            ))
        })?;
        let ref_class = parse_class(text, classes).ok_or_else(|| {
            bad(format!(
                "reference class '{text}' is not in the map's classes ({})",
                classes
                    .iter()
                    .map(|c| format!("{}={}", c.code, c.label))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let strata = &self.layers.strata;
        let stratum_code = match (&spec.design, strata) {
            (Design::Stratified, None) => code,
            (Design::Stratified, Some(s)) => io::code_at(s, col, row)?
                .ok_or_else(|| bad("the strata map has no data at the point".into()))?,
            _ => 0,
        };
        if let (Some(f), Some(declared)) = (&spec.stratum_field, p.fields.get(1)) {
            let declared = declared.as_deref().unwrap_or("");
            let ok = match spec.design {
                Design::Stratified => {
                    parse_class(declared, classes)
                        .map(|i| classes[i].code)
                        .or_else(|| declared.trim().parse::<i32>().ok())
                        == Some(stratum_code)
                }
                _ => true,
            };
            if !ok {
                return Err(bad(format!(
                    "field '{f}' says stratum '{declared}' but the {} has {stratum_code} there: the sample does not match the declared stratified design (wrong strata map, or a sample drawn from another map version?)",
                    if strata.is_some() { "strata map" } else { "map" }
                )));
            }
        }
        let stratum = *self
            .stratum_of_code
            .get(&stratum_code)
            .ok_or_else(|| bad(format!("stratum {stratum_code} has no mapped area")))?;
        Ok((
            Unit {
                stratum,
                map_class,
                ref_class,
            },
            col,
            row,
        ))
    }

    fn stratum_name(&self, h: usize) -> String {
        match (&self.spec.design, &self.layers.strata) {
            (Design::Stratified, None) => {
                format!(
                    "map class {} ({})",
                    self.classes[h].code, self.classes[h].label
                )
            }
            (Design::Stratified, Some(_)) => format!("strata code {}", self.stratum_codes[h]),
            _ => "the whole map".into(),
        }
    }

    fn explain(&self, e: DesignError) -> String {
        match e {
            DesignError::EmptyStratum { stratum } => format!("{} has mapped area but no reference point; a stratified sample needs ≥ 2 points in every stratum", self.stratum_name(stratum)),
            DesignError::SingleUnit { stratum } => format!("{} has a single reference point: its variance cannot be estimated (≥ 2 per stratum)", self.stratum_name(stratum)),
            DesignError::UnitsWithoutArea { stratum, units } => format!("{units} point(s) fall in {}, which has no mapped area: the sample does not match the declared design", self.stratum_name(stratum)),
            other => other.to_string(),
        }
    }

    /// The map's mean of value layer `v` over each class in zone slot `slot`.
    fn densities(&self, slot: usize, v: usize) -> Vec<f64> {
        self.classes
            .iter()
            .map(|c| {
                self.pass.by_class[slot]
                    .get(&c.code)
                    .filter(|s| s.covered_ha[v] > 0.0)
                    .map_or(0.0, |s| s.weighted[v] / s.covered_ha[v])
            })
            .collect()
    }

    /// The estimates of zone slot `slot` (0: the whole map), or a note for a zone whose
    /// sample cannot support them.
    fn region(&self, slot: usize, id: String, name: String) -> Result<RegionResult> {
        let k = self.classes.len();
        let sel: Vec<Unit> = self
            .units
            .iter()
            .zip(&self.unit_slot)
            .filter(|(_, z)| slot == 0 || **z == Some(slot - 1))
            .map(|(u, _)| *u)
            .collect();
        let areas = self.strata_area(slot);
        let total: f64 = areas.iter().sum();
        let mut counts = vec![vec![0usize; k]; k];
        for u in &sel {
            counts[u.map_class][u.ref_class] += 1;
        }
        let mapped = self.mapped(slot);
        let mut out = RegionResult {
            zone_id: id,
            zone_name: name,
            sample_size: sel.len(),
            total_area_ha: total,
            note: None,
            overall_accuracy: None,
            classes: Vec::new(),
            error_matrix_counts: counts.clone(),
            error_matrix_area_proportions: Vec::new(),
            carbon: None,
        };
        let a: Assessment = match estimate::assess(&sel, &areas, k) {
            Ok(a) => a,
            Err(e) if slot > 0 => {
                out.note = Some(format!("no estimate for this zone: {}", self.explain(e)));
                return Ok(out);
            }
            Err(e) => return Err(Error::invalid(self.rpath(), self.explain(e))),
        };
        out.overall_accuracy = Some(a.overall.into());
        out.error_matrix_area_proportions = a.proportions.clone();
        out.classes = (0..k)
            .map(|i| ClassResult {
                code: self.classes[i].code,
                label: self.classes[i].label.clone(),
                mapped_area_ha: mapped[i],
                sample_mapped: counts[i].iter().sum(),
                sample_reference: counts.iter().map(|r| r[i]).sum(),
                users_accuracy: a.users[i].map(Into::into),
                producers_accuracy: a.producers[i].map(Into::into),
                adjusted_area_ha: a.adjusted_area(i).into(),
            })
            .collect();
        if !self.layers.values.is_empty() {
            out.carbon = Some(self.carbon(slot, &sel, &areas)?);
        }
        Ok(out)
    }

    /// Map-based and area-adjusted stock and sink of one region (docs/science.md §6.4).
    fn carbon(&self, slot: usize, sel: &[Unit], areas: &[f64]) -> Result<CarbonResult> {
        let k = self.classes.len();
        let total: f64 = areas.iter().sum();
        let (ds, dk) = (self.densities(slot, 0), self.densities(slot, 1));
        let total_of = |v: usize| -> f64 {
            self.pass.by_class[slot]
                .values()
                .map(|s| s.weighted[v])
                .sum()
        };
        let mean = |d: &[f64]| {
            estimate::mean_of_class_values(sel, areas, k, d)
                .map_err(|e| Error::invalid(self.rpath(), self.explain(e)))
        };
        let (ms, mk) = (mean(&ds)?, mean(&dk)?);
        Ok(CarbonResult {
            map_stock_tc: total_of(0),
            map_sink_tco2_yr: total_of(1),
            adjusted_stock_tc: ms.scaled(total).into(),
            adjusted_sink_tco2_yr: mk.scaled(total).into(),
            class_mean_stock_tc_per_ha: ds,
            class_mean_sink_tco2_per_ha_yr: dk,
        })
    }
}

/// The whole assessment: reads, estimates, writes the tables; returns the report.
pub fn assess(
    scene: &Scene,
    spec: &AssessSpec,
    zones: Option<&ZoneSet>,
) -> Result<AssessmentReport> {
    let layers = open_layers(scene, spec)?;
    let vrefs: Vec<&crate::raster::Layer> = layers.values.iter().collect();
    let pass = io::raster_pass(
        &layers.grid,
        &layers.map,
        layers.strata.as_ref(),
        &vrefs,
        zones,
    )?;
    let classes = class_list(&layers, &pass)?;
    let mut ctx = Ctx::new(spec, &layers, &pass, classes);
    ctx.read_units(zones)?;
    let mut notes = layers.notes.clone();
    if spec.design != Design::Stratified {
        let systematic = spec.design == Design::Systematic;
        notes.push(format!(
            "{} design: one stratum over the whole map{}",
            if systematic {
                "systematic"
            } else {
                "simple random"
            },
            if systematic {
                "; variance estimated as for a simple random sample (usually conservative)"
            } else {
                ""
            }
        ));
    }
    let mut regions = vec![ctx.region(0, "all".into(), "whole map".into())?];
    if let Some(zs) = zones {
        for (z, zone) in zs.zones.iter().enumerate() {
            if 1 + z < pass.by_class.len() {
                regions.push(ctx.region(1 + z, zone.id.clone(), zone.name.clone())?);
            }
        }
        notes.push("per-zone estimates treat the points inside a zone as a stratified sample of that zone (the zone's own mapped areas as strata weights); zones with a stratum lacking 2 points get a note instead".into());
    }
    // Reference classes with no mapped pixels: their density in the carbon consequence is 0.
    if !layers.values.is_empty() {
        for (i, c) in ctx.classes.iter().enumerate() {
            let seen = ctx.units.iter().any(|u| u.ref_class == i);
            if seen && !pass.by_class[0].contains_key(&c.code) {
                notes.push(format!("class {} ({}) is observed in the reference but never mapped: it has no map density, so its adjusted area carries 0 t C/ha in the carbon consequence", c.code, c.label));
            }
        }
    }
    let (map_identity, eco) = if layers.own_map {
        let eco = ecosystem_areas(
            &layers.models,
            &ctx.classes,
            &ctx.units,
            &ctx.strata_area(0),
            &ctx.mapped(0),
        )
        .map_err(|e| Error::invalid(ctx.rpath(), ctx.explain(e)))?;
        (
            Some(MapIdentity::of_scene(scene, &layers.models)?),
            Some(eco),
        )
    } else {
        (None, None)
    };
    let report = AssessmentReport {
        map_identity,
        ecosystem_areas: eco,
        sinkmap_version: env!("CARGO_PKG_VERSION").into(),
        scene: scene.source_path.display().to_string(),
        map: layers.map_path.display().to_string(),
        reference: ctx.rpath().display().to_string(),
        design: spec.design,
        strata: match (&spec.design, &spec.strata) {
            (Design::Stratified, Some(p)) => p.display().to_string(),
            (Design::Stratified, None) => "map classes".into(),
            _ => "none".into(),
        },
        confidence_level: 0.95,
        classes: ctx.classes,
        regions,
        notes,
    };
    write_outputs(&spec.out, &report)?;
    Ok(report)
}

/// A reference class given as a code ("21", "21.0") or a label (case-insensitive).
fn parse_class(text: &str, classes: &[ClassInfo]) -> Option<usize> {
    let t = text.trim();
    if let Ok(v) = t.parse::<f64>() {
        if v.fract() == 0.0 {
            return classes.iter().position(|c| c.code as f64 == v);
        }
    }
    classes.iter().position(|c| c.label.eq_ignore_ascii_case(t))
}

fn csv_writer(path: &Path) -> Result<csv::Writer<std::fs::File>> {
    csv::Writer::from_path(path).map_err(|e| Error::output(path, e))
}

fn opt(v: Option<f64>) -> String {
    v.map_or(String::new(), |x| format!("{x}"))
}

/// Writes the CSV tables and assessment.json into `out`.
fn write_outputs(out: &Path, r: &AssessmentReport) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    write_error_matrices(out, r)?;
    write_accuracy(out, r)?;
    write_adjusted_area(out, r)?;
    let p = out.join("assessment.json");
    let text = serde_json::to_string_pretty(r).map_err(|e| Error::output(&p, e))?;
    std::fs::write(&p, text).map_err(|e| Error::output(&p, e))
}

/// error_matrix_counts.csv and error_matrix_area_proportions.csv.
fn write_error_matrices(out: &Path, r: &AssessmentReport) -> Result<()> {
    let labels: Vec<String> = r
        .classes
        .iter()
        .map(|c| format!("{} {}", c.code, c.label))
        .collect();
    // Error matrices: one block per region, rows = map class, columns = reference class.
    for (file, counts) in [
        ("error_matrix_counts.csv", true),
        ("error_matrix_area_proportions.csv", false),
    ] {
        let p = out.join(file);
        let mut w = csv_writer(&p)?;
        let mut head = vec![
            "zone_id".to_string(),
            "map_class \\ reference_class".to_string(),
        ];
        head.extend(labels.iter().cloned());
        head.push("total".into());
        w.write_record(&head).map_err(|e| Error::output(&p, e))?;
        for g in &r.regions {
            if !counts && g.error_matrix_area_proportions.is_empty() {
                continue;
            }
            for (i, l) in labels.iter().enumerate() {
                let mut rec = vec![g.zone_id.clone(), l.clone()];
                if counts {
                    let row = &g.error_matrix_counts[i];
                    rec.extend(row.iter().map(|n| n.to_string()));
                    rec.push(row.iter().sum::<usize>().to_string());
                } else {
                    let row = &g.error_matrix_area_proportions[i];
                    rec.extend(row.iter().map(|x| format!("{x:.6}")));
                    rec.push(format!("{:.6}", row.iter().sum::<f64>()));
                }
                w.write_record(&rec).map_err(|e| Error::output(&p, e))?;
            }
        }
        w.flush().map_err(|e| Error::io(&p, e))?;
    }
    Ok(())
}

/// accuracy.csv: overall, user's and producer's accuracy per region.
fn write_accuracy(out: &Path, r: &AssessmentReport) -> Result<()> {
    let p = out.join("accuracy.csv");
    let mut w = csv_writer(&p)?;
    w.write_record([
        "zone_id",
        "measure",
        "class_code",
        "class_label",
        "estimate",
        "se",
        "ci95_low",
        "ci95_high",
    ])
    .map_err(|e| Error::output(&p, e))?;
    for g in &r.regions {
        let mut put = |measure: &str, code: String, label: &str, i: Option<&Interval>| {
            w.write_record([
                g.zone_id.clone(),
                measure.to_string(),
                code,
                label.to_string(),
                opt(i.map(|x| x.value)),
                opt(i.map(|x| x.se)),
                opt(i.map(|x| x.ci95_low)),
                opt(i.map(|x| x.ci95_high)),
            ])
        };
        if let Some(o) = &g.overall_accuracy {
            put("overall", String::new(), "", Some(o)).map_err(|e| Error::output(&p, e))?;
        }
        for c in &g.classes {
            put(
                "users",
                c.code.to_string(),
                &c.label,
                c.users_accuracy.as_ref(),
            )
            .map_err(|e| Error::output(&p, e))?;
            put(
                "producers",
                c.code.to_string(),
                &c.label,
                c.producers_accuracy.as_ref(),
            )
            .map_err(|e| Error::output(&p, e))?;
        }
    }
    w.flush().map_err(|e| Error::io(&p, e))?;
    Ok(())
}

/// adjusted_area.csv: mapped and error-adjusted area per class and region.
fn write_adjusted_area(out: &Path, r: &AssessmentReport) -> Result<()> {
    let p = out.join("adjusted_area.csv");
    let mut w = csv_writer(&p)?;
    w.write_record([
        "zone_id",
        "class_code",
        "class_label",
        "mapped_area_ha",
        "adjusted_area_ha",
        "se_ha",
        "ci95_low_ha",
        "ci95_high_ha",
        "sample_mapped",
        "sample_reference",
        "note",
    ])
    .map_err(|e| Error::output(&p, e))?;
    for g in &r.regions {
        if let Some(n) = &g.note {
            let mut rec = vec![g.zone_id.clone()];
            rec.extend(std::iter::repeat_n(String::new(), 9));
            rec.push(n.clone());
            w.write_record(&rec).map_err(|e| Error::output(&p, e))?;
        }
        for c in &g.classes {
            let a = &c.adjusted_area_ha;
            w.write_record([
                g.zone_id.clone(),
                c.code.to_string(),
                c.label.clone(),
                format!("{:.4}", c.mapped_area_ha),
                format!("{:.4}", a.value),
                format!("{:.4}", a.se),
                format!("{:.4}", a.ci95_low),
                format!("{:.4}", a.ci95_high),
                c.sample_mapped.to_string(),
                c.sample_reference.to_string(),
                String::new(),
            ])
            .map_err(|e| Error::output(&p, e))?;
        }
    }
    w.flush().map_err(|e| Error::io(&p, e))?;
    Ok(())
}

/// A short human summary.
pub fn human(r: &AssessmentReport) -> String {
    let mut s = String::new();
    let g = &r.regions[0];
    if let Some(o) = &g.overall_accuracy {
        s += &format!(
            "overall accuracy {:.3} ± {:.3} (95 % CI), n = {}\n",
            o.value,
            o.ci95_high - o.value,
            g.sample_size
        );
    }
    for c in &g.classes {
        if c.mapped_area_ha == 0.0 && c.sample_reference == 0 {
            continue;
        }
        let a = &c.adjusted_area_ha;
        s += &format!(
            "  {:>4} {:<24} mapped {:>12.1} ha  adjusted {:>12.1} ± {:>10.1} ha\n",
            c.code,
            c.label,
            c.mapped_area_ha,
            a.value,
            a.ci95_high - a.value
        );
    }
    if let Some(c) = &g.carbon {
        s += &format!(
            "stock: map {:.4e} t C, area-adjusted {:.4e} ± {:.2e} t C\nsink: map {:.4e} t CO2/yr, area-adjusted {:.4e} ± {:.2e} t CO2/yr\n",
            c.map_stock_tc,
            c.adjusted_stock_tc.value,
            c.adjusted_stock_tc.ci95_high - c.adjusted_stock_tc.value,
            c.map_sink_tco2_yr,
            c.adjusted_sink_tco2_yr.value,
            c.adjusted_sink_tco2_yr.ci95_high - c.adjusted_sink_tco2_yr.value
        );
    }
    for z in &r.regions[1..] {
        if let Some(n) = &z.note {
            s += &format!("  zone {}: {n}\n", z.zone_id);
        }
    }
    for n in &r.notes {
        s += &format!("note: {n}\n");
    }
    s
}
