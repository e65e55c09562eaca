//! `sinkmap calibrate`: field plots against the stock map — the map's prediction over each
//! plot's footprint, residuals by class and forest type, and model-assisted (difference,
//! GREG) estimates of mean density and total stock per zone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::greg::{self, Estimator, Plot, Residuals, StratumMap};
use super::io::{self, PointSource};
use super::run::Interval;
use crate::config::{Models, Scene};
use crate::error::{Error, Result};
use crate::grid::{AreaModel, Grid, Window};
use crate::raster::{reference_grid, Layer};
use crate::zones::ZoneSet;

/// Design of the plot sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PlotDesign {
    /// Simple random (or systematic) over the population.
    SimpleRandom,
    /// Stratified random with the land-cover classes as strata.
    Stratified,
}

/// What `sinkmap calibrate` reads: the plots, how their densities and areas are given, the
/// population, and where the results go.
#[derive(Debug, Clone)]
pub struct CalibrateSpec {
    /// The field plots (any OGR vector format, or CSV with coordinates).
    pub plots: PointSource,
    /// Field with the measured carbon density (t C/ha)…
    pub density_field: Option<String>,
    /// …or with biomass (t dry matter/ha), converted with `carbon_fraction`.
    pub biomass_field: Option<String>,
    /// Carbon fraction of dry biomass (t C per t dry matter; IPCC 2006 default for wood 0.47).
    pub carbon_fraction: f64,
    /// Field with each plot's area (m²), or one area for all plots.
    pub plot_area_field: Option<String>,
    /// The area of every plot (m²), when there is no `plot_area_field`.
    pub plot_area_m2: Option<f64>,
    /// Field with the plot's forest type (for the residual table).
    pub type_field: Option<String>,
    /// How the plots were drawn.
    pub design: PlotDesign,
    /// Land-cover codes forming the population (default: every class).
    pub classes: Vec<i32>,
    /// Folder with the run's `stock_tc_per_ha.tif` (default: the scene's output folder).
    pub maps_dir: Option<PathBuf>,
    /// Folder the tables and `calibration.json` are written to.
    pub out: PathBuf,
}

/// Metres per grid unit in x and y near latitude `lat_deg` (geographic grids: the
/// ellipsoid's meridian and parallel arc lengths per degree, series to second order).
fn metres_per_unit(grid: &Grid, row_f: f64) -> (f64, f64) {
    match grid.area {
        AreaModel::Projected { metres_per_unit } => (metres_per_unit, metres_per_unit),
        AreaModel::Geographic {
            radians_per_unit,
            semi_major_m,
            semi_minor_m,
        } => {
            let lat = (grid.geo_transform[3] + row_f * grid.geo_transform[5]) * radians_per_unit;
            let e2 = 1.0 - (semi_minor_m / semi_major_m).powi(2);
            let s2 = lat.sin().powi(2);
            let w = (1.0 - e2 * s2).sqrt();
            let meridian = semi_major_m * (1.0 - e2) / (w * w * w); // radius of curvature
            let prime = semi_major_m / w;
            (
                prime * lat.cos() * radians_per_unit,
                meridian * radians_per_unit,
            )
        }
    }
}

/// Pixel weights of a circular plot of `radius_px` = (rx, ry) pixels around (col_f, row_f):
/// exact coverage of a 64-sided polygon inscribed in the ellipse, as (col, row, fraction).
pub fn footprint(
    col_f: f64,
    row_f: f64,
    rx: f64,
    ry: f64,
    width: usize,
    height: usize,
) -> Vec<(usize, usize, f64)> {
    let c0 = (col_f - rx).floor().max(0.0) as usize;
    let r0 = (row_f - ry).floor().max(0.0) as usize;
    let c1 = ((col_f + rx).ceil() as usize).min(width);
    let r1 = ((row_f + ry).ceil() as usize).min(height);
    if c1 <= c0 || r1 <= r0 {
        return Vec::new();
    }
    let ring: Vec<(f64, f64)> = (0..=64)
        .map(|i| {
            let t = -(i as f64) * std::f64::consts::TAU / 64.0;
            (
                col_f - c0 as f64 + rx * t.cos(),
                row_f - r0 as f64 + ry * t.sin(),
            )
        })
        .collect();
    let (w, h) = (c1 - c0, r1 - r0);
    let cov = crate::coverage::polygon_coverage(&ring, &[], w, h);
    cov.into_iter()
        .enumerate()
        .filter(|(_, f)| *f > 0.0)
        .map(|(i, f)| (c0 + i % w, r0 + i / w, f))
        .collect()
}

/// Coverage-weighted mean of `layer` over the footprint; None when less than half of the
/// footprint has data.
fn footprint_mean(layer: &Layer, fp: &[(usize, usize, f64)]) -> Result<Option<f64>> {
    let (mut s, mut w, mut all) = (0.0, 0.0, 0.0);
    let mut v = Vec::new();
    for &(c, r, f) in fp {
        layer.read_values(
            Window {
                col: c,
                row: r,
                width: 1,
                height: 1,
            },
            &mut v,
        )?;
        all += f;
        if let Some(x) = v[0] {
            s += f * x;
            w += f;
        }
    }
    Ok((w > 0.5 * all && w > 0.0).then(|| s / w))
}

/// One plot with what it measured and what the map predicts there
/// (`calibration_plots.csv`).
#[derive(Debug, Clone, Serialize)]
pub struct PlotRow {
    /// Where the plot came from: `line N` of a CSV, `layer 'NAME', feature N` of a vector
    /// file.
    pub plot: String,
    /// x coordinate in the grid's CRS.
    pub x: f64,
    /// y coordinate in the grid's CRS.
    pub y: f64,
    /// Land-cover code of the pixel holding the plot.
    pub class_code: i32,
    /// That code's label.
    pub class_label: String,
    /// The plot's forest type as the type field gives it (empty without one).
    pub forest_type: String,
    /// The zone holding the plot (empty outside every zone or without zones).
    pub zone_id: String,
    /// Measured carbon density (t C/ha): the density field, or biomass × carbon fraction.
    pub observed_tc_per_ha: f64,
    /// The stock map's coverage-weighted mean over a circle of the plot's area (t C/ha).
    pub predicted_tc_per_ha: f64,
}

/// Residual statistics of one group of plots (`residuals.csv`; docs/science.md §6.6).
#[derive(Debug, Clone, Serialize)]
pub struct ResidualRow {
    /// What the plots are grouped by: `all`, `class` or `forest_type`.
    pub group_by: String,
    /// The group: `all plots`, `CODE LABEL` or a forest type.
    pub group: String,
    /// Bias and RMSE of predicted − observed (t C/ha).
    #[serde(flatten)]
    pub stats: Residuals,
}

/// One estimator's mean density and total stock in one region (`calibrated_totals.csv`;
/// docs/science.md §6.6).
#[derive(Debug, Clone, Serialize)]
pub struct TotalRow {
    /// Zone id (`all` for the whole population).
    pub zone_id: String,
    /// Zone name (`whole map` for the whole population).
    pub zone_name: String,
    /// The estimator.
    pub estimator: Estimator,
    /// Plots inside the region.
    pub plots: usize,
    /// Area of the population in the region (ha).
    pub area_ha: f64,
    /// Mean carbon density (t C/ha) with its SE; None when the plots cannot support it.
    pub mean_tc_per_ha: Option<Interval>,
    /// Total stock = area × mean (t C); None with the mean.
    pub total_tc: Option<Interval>,
    /// Why there is no estimate (too few plots in a stratum, …).
    pub note: Option<String>,
}

/// `calibration.json`: everything `sinkmap calibrate` found, and what it was made against.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationReport {
    /// Version of sinkmap that wrote the file.
    pub sinkmap_version: String,
    /// Path of the scene file.
    pub scene: String,
    /// Path of the plot file.
    pub plots_file: String,
    /// How the plots were drawn.
    pub design: PlotDesign,
    /// The land-cover codes on the map that form the population (all of them without
    /// `classes`), ascending.
    pub population_classes: Vec<i32>,
    /// Every plot.
    pub plots: Vec<PlotRow>,
    /// Residuals of all plots, by class and by forest type.
    pub residuals: Vec<ResidualRow>,
    /// Every estimator for the whole population, then for every zone.
    pub totals: Vec<TotalRow>,
    /// Remarks on the estimators and the data, in words.
    pub notes: Vec<String>,
    /// The land-cover map the stock map was made from (the accounting checks it).
    pub map_identity: super::identity::MapIdentity,
}

/// The whole calibration: places the plots, predicts them from the stock map, computes the
/// residuals and every estimator per region, writes the tables; returns the report.
pub fn calibrate(
    scene: &Scene,
    spec: &CalibrateSpec,
    zones: Option<&ZoneSet>,
) -> Result<CalibrationReport> {
    let grid = reference_grid(&scene.landcover.path, scene.landcover.band)?;
    let models = Models::load(scene)?;
    let mut lc = io::open_categorical(&scene.landcover.path, &grid)?;
    if let Some(nd) = models.scheme.nodata_value {
        lc.add_nodata(nd as f64);
    }
    let maps_dir = spec.maps_dir.clone().unwrap_or(scene.output_dir.clone());
    let stock_path = maps_dir.join("stock_tc_per_ha.tif");
    if !stock_path.exists() {
        return Err(Error::raster(
            &stock_path,
            "stock map not found: run `sinkmap run` on the scene first (or give --maps-dir)",
        ));
    }
    let stock = io::open_continuous(&stock_path, &grid)?;
    let ppath = &spec.plots.path;
    let value_field = match (&spec.density_field, &spec.biomass_field) {
        (Some(d), None) => d.clone(),
        (None, Some(b)) => b.clone(),
        _ => return Err(Error::Usage("give exactly one of --density-field (t C/ha) or --biomass-field (t/ha, with --carbon-fraction)".into())),
    };
    if !(spec.carbon_fraction > 0.0 && spec.carbon_fraction <= 1.0) {
        return Err(Error::Usage(format!(
            "--carbon-fraction {} outside (0, 1]",
            spec.carbon_fraction
        )));
    }
    let mut fields = vec![value_field.as_str()];
    if let Some(f) = &spec.plot_area_field {
        fields.push(f);
    }
    if let Some(f) = &spec.type_field {
        fields.push(f);
    }
    if spec.plot_area_field.is_none() && spec.plot_area_m2.is_none() {
        return Err(Error::Usage(
            "give the plot size: --plot-area-m2 AREA or --plot-area-field FIELD".into(),
        ));
    }
    let label_of = |code: i32| io::class_label(&models.scheme, code);
    let points = io::read_points(&spec.plots, &grid, &fields)?;
    let mut rows = Vec::new();
    let mut slot_of = Vec::new();
    for p in &points {
        let err = |m: String| Error::vector(ppath, format!("{}: {m}", p.label));
        let (col, row) = p.pixel(&grid).ok_or_else(|| {
            err(format!(
                "plot ({:.6}, {:.6}) lies outside the map grid",
                p.x, p.y
            ))
        })?;
        let code = io::code_at(&lc, col, row)?.ok_or_else(|| {
            err(format!(
                "the land-cover map has no data at the plot (pixel col {col}, row {row})"
            ))
        })?;
        if !spec.classes.is_empty() && !spec.classes.contains(&code) {
            return Err(err(format!(
                "the plot lies on class {code} ({}), outside the population (--classes {:?})",
                label_of(code),
                spec.classes
            )));
        }
        let num = |i: usize, what: &str| -> Result<f64> {
            let t = p.fields[i].as_deref().unwrap_or("");
            t.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| err(format!("{what} '{t}' is not a number ≥ 0")))
        };
        let measured = num(0, &format!("field '{value_field}'"))?;
        let observed = if spec.biomass_field.is_some() {
            measured * spec.carbon_fraction
        } else {
            measured
        };
        let area_m2 = match &spec.plot_area_field {
            Some(f) => num(1, &format!("plot area field '{f}'"))?,
            None => spec.plot_area_m2.unwrap_or(0.0),
        };
        if area_m2 <= 0.0 {
            return Err(err(format!("plot area {area_m2} m² must be > 0")));
        }
        let radius_m = (area_m2 / std::f64::consts::PI).sqrt();
        let (mx, my) = metres_per_unit(&grid, p.row_f);
        let rx = radius_m / (mx * grid.geo_transform[1].abs());
        let ry = radius_m / (my * grid.geo_transform[5].abs());
        let fp = footprint(p.col_f, p.row_f, rx, ry, grid.width, grid.height);
        let predicted = footprint_mean(&stock, &fp)?.ok_or_else(|| {
            err("the stock map has no data over most of the plot footprint".into())
        })?;
        let forest_type = spec
            .type_field
            .as_ref()
            .map(|_| p.fields.last().cloned().flatten().unwrap_or_default())
            .unwrap_or_default();
        let zone = zones.and_then(|z| io::zone_at(z, &grid, col, row));
        slot_of.push(zone.map_or(usize::MAX, |z| z + 1));
        rows.push(PlotRow {
            plot: p.label.clone(),
            x: p.x,
            y: p.y,
            class_code: code,
            class_label: label_of(code),
            forest_type,
            zone_id: zone
                .and_then(|z| zones.map(|zs| zs.zones[z].id.clone()))
                .unwrap_or_default(),
            observed_tc_per_ha: observed,
            predicted_tc_per_ha: predicted,
        });
    }

    // Residuals: all plots, by class, by forest type.
    let mut residuals = Vec::new();
    let mut group = |by: &str, key: &dyn Fn(&PlotRow) -> String| {
        let mut g: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
        for r in &rows {
            let e = g.entry(key(r)).or_default();
            e.0.push(r.observed_tc_per_ha);
            e.1.push(r.predicted_tc_per_ha);
        }
        for (k, (o, p)) in g {
            residuals.push(ResidualRow {
                group_by: by.into(),
                group: k,
                stats: greg::residuals(&o, &p),
            });
        }
    };
    group("all", &|_| "all plots".into());
    group("class", &|r| format!("{} {}", r.class_code, r.class_label));
    if spec.type_field.is_some() {
        group("forest_type", &|r| r.forest_type.clone());
    }

    // Population: mapped area and mean predicted density per class (and zone).
    let pass = io::raster_pass(&grid, &lc, None, &[&stock], zones)?;
    let in_pop = |code: &i32| spec.classes.is_empty() || spec.classes.contains(code);
    let mut codes: Vec<i32> = pass.by_class[0].keys().copied().filter(in_pop).collect();
    codes.sort_unstable();
    let strata_of = |slot: usize| -> Vec<StratumMap> {
        let sums = &pass.by_class[slot];
        match spec.design {
            PlotDesign::Stratified => codes
                .iter()
                .map(|c| {
                    sums.get(c).map_or(
                        StratumMap {
                            area: 0.0,
                            mean_predicted: 0.0,
                        },
                        |s| StratumMap {
                            area: s.area_ha,
                            mean_predicted: if s.covered_ha[0] > 0.0 {
                                s.weighted[0] / s.covered_ha[0]
                            } else {
                                0.0
                            },
                        },
                    )
                })
                .collect(),
            PlotDesign::SimpleRandom => {
                let (mut a, mut w, mut cov) = (0.0, 0.0, 0.0);
                for c in &codes {
                    if let Some(s) = sums.get(c) {
                        a += s.area_ha;
                        w += s.weighted[0];
                        cov += s.covered_ha[0];
                    }
                }
                vec![StratumMap {
                    area: a,
                    mean_predicted: if cov > 0.0 { w / cov } else { 0.0 },
                }]
            }
        }
    };
    let stratum_of = |code: i32| match spec.design {
        PlotDesign::Stratified => codes.iter().position(|c| *c == code).unwrap_or(usize::MAX),
        PlotDesign::SimpleRandom => 0,
    };
    let mut totals = Vec::new();
    let mut regions = vec![(0usize, "all".to_string(), "whole map".to_string())];
    if let Some(zs) = zones {
        regions.extend(
            zs.zones
                .iter()
                .enumerate()
                .map(|(z, zone)| (z + 1, zone.id.clone(), zone.name.clone())),
        );
    }
    for (slot, id, name) in regions {
        let plots: Vec<Plot> = rows
            .iter()
            .zip(&slot_of)
            .filter(|(_, s)| slot == 0 || **s == slot)
            .map(|(r, _)| Plot {
                stratum: stratum_of(r.class_code),
                observed: r.observed_tc_per_ha,
                predicted: r.predicted_tc_per_ha,
            })
            .collect();
        let strata = strata_of(slot);
        let area: f64 = strata.iter().map(|s| s.area).sum();
        for e in Estimator::ALL {
            let (mean, total, note) = match greg::estimate_mean(e, &plots, &strata) {
                Ok(m) => (Some(m.into()), Some(m.scaled(area).into()), None),
                Err(err) => {
                    let name_of = |h: usize| match spec.design {
                        PlotDesign::Stratified => {
                            format!("class {} ({})", codes[h], label_of(codes[h]))
                        }
                        PlotDesign::SimpleRandom => "the population".into(),
                    };
                    let msg = match err {
                        greg::PlotDesignError::TooFewPlots {
                            stratum,
                            plots,
                            needed,
                        } => format!(
                            "{} has {plots} plot(s); the {} estimator needs ≥ {needed} per stratum",
                            name_of(stratum),
                            e.name()
                        ),
                        other => other.to_string(),
                    };
                    if slot == 0 && e != Estimator::Map {
                        return Err(Error::invalid(ppath, msg));
                    }
                    (None, None, Some(msg))
                }
            };
            let mean: Option<Interval> = mean;
            let total: Option<Interval> = total;
            totals.push(TotalRow {
                zone_id: id.clone(),
                zone_name: name.clone(),
                estimator: e,
                plots: plots.len(),
                area_ha: area,
                mean_tc_per_ha: mean,
                total_tc: total,
                note,
            });
        }
    }
    let mut notes = vec![
        "map: the stock map's own mean (no sampling error, biased if the map is); expansion: the plots alone; difference and greg: the map corrected by the plots (model-assisted)".to_string(),
        "plot prediction: coverage-weighted mean of the stock map over a circular footprint of the plot's area".to_string(),
    ];
    if zones.is_some() {
        notes.push(
            "per-zone estimates use the plots inside each zone as a sample of that zone".into(),
        );
    }
    let report = CalibrationReport {
        map_identity: super::identity::MapIdentity::of_scene(scene, &models)?,
        sinkmap_version: env!("CARGO_PKG_VERSION").into(),
        scene: scene.source_path.display().to_string(),
        plots_file: ppath.display().to_string(),
        design: spec.design,
        population_classes: codes.clone(),
        plots: rows,
        residuals,
        totals,
        notes,
    };
    write_outputs(&spec.out, &report)?;
    Ok(report)
}

fn write_outputs(out: &Path, r: &CalibrationReport) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let p = out.join("calibration_plots.csv");
    let mut w = csv::Writer::from_path(&p).map_err(|e| Error::output(&p, e))?;
    for row in &r.plots {
        w.serialize(row).map_err(|e| Error::output(&p, e))?;
    }
    w.flush().map_err(|e| Error::io(&p, e))?;
    let p = out.join("residuals.csv");
    let mut w = csv::Writer::from_path(&p).map_err(|e| Error::output(&p, e))?;
    w.write_record([
        "group_by",
        "group",
        "n",
        "bias_tc_per_ha",
        "rmse_tc_per_ha",
        "mean_observed_tc_per_ha",
        "mean_predicted_tc_per_ha",
    ])
    .map_err(|e| Error::output(&p, e))?;
    for g in &r.residuals {
        let s = &g.stats;
        w.write_record([
            g.group_by.clone(),
            g.group.clone(),
            s.n.to_string(),
            format!("{:.4}", s.bias),
            format!("{:.4}", s.rmse),
            format!("{:.4}", s.mean_observed),
            format!("{:.4}", s.mean_predicted),
        ])
        .map_err(|e| Error::output(&p, e))?;
    }
    w.flush().map_err(|e| Error::io(&p, e))?;
    let p = out.join("calibrated_totals.csv");
    let mut w = csv::Writer::from_path(&p).map_err(|e| Error::output(&p, e))?;
    w.write_record([
        "zone_id",
        "zone_name",
        "estimator",
        "plots",
        "area_ha",
        "mean_tc_per_ha",
        "mean_se_tc_per_ha",
        "mean_ci95_low",
        "mean_ci95_high",
        "total_tc",
        "total_se_tc",
        "total_ci95_low_tc",
        "total_ci95_high_tc",
        "note",
    ])
    .map_err(|e| Error::output(&p, e))?;
    let f = |i: &Option<Interval>, k: fn(&Interval) -> f64| {
        i.as_ref().map_or(String::new(), |x| format!("{:.4}", k(x)))
    };
    for t in &r.totals {
        w.write_record([
            t.zone_id.clone(),
            t.zone_name.clone(),
            t.estimator.name().into(),
            t.plots.to_string(),
            format!("{:.4}", t.area_ha),
            f(&t.mean_tc_per_ha, |x| x.value),
            f(&t.mean_tc_per_ha, |x| x.se),
            f(&t.mean_tc_per_ha, |x| x.ci95_low),
            f(&t.mean_tc_per_ha, |x| x.ci95_high),
            f(&t.total_tc, |x| x.value),
            f(&t.total_tc, |x| x.se),
            f(&t.total_tc, |x| x.ci95_low),
            f(&t.total_tc, |x| x.ci95_high),
            t.note.clone().unwrap_or_default(),
        ])
        .map_err(|e| Error::output(&p, e))?;
    }
    w.flush().map_err(|e| Error::io(&p, e))?;
    let p = out.join("calibration.json");
    let text = serde_json::to_string_pretty(r).map_err(|e| Error::output(&p, e))?;
    std::fs::write(&p, text).map_err(|e| Error::output(&p, e))
}

/// A short human summary.
pub fn human(r: &CalibrationReport) -> String {
    let mut s = String::new();
    if let Some(a) = r.residuals.first() {
        s += &format!(
            "{} plots: bias (map − field) {:.2} t C/ha, RMSE {:.2} t C/ha\n",
            a.stats.n, a.stats.bias, a.stats.rmse
        );
    }
    for t in r.totals.iter().filter(|t| t.zone_id == "all") {
        if let Some(m) = &t.total_tc {
            s += &format!(
                "  {:<10} total {:.4e} ± {:.2e} t C (95 % CI)\n",
                t.estimator.name(),
                m.value,
                m.ci95_high - m.value
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footprint_area_is_the_circle_area() {
        // A circle of radius 2.5 px centred mid-grid: weights sum to π r² (64-gon: −0.16 %).
        let fp = footprint(10.0, 10.0, 2.5, 2.5, 40, 40);
        let sum: f64 = fp.iter().map(|x| x.2).sum();
        let circle = std::f64::consts::PI * 6.25;
        let polygon = 0.5 * 64.0 * 6.25 * (std::f64::consts::TAU / 64.0).sin();
        assert!((sum - polygon).abs() < 1e-9, "{sum} vs {polygon}");
        assert!((sum / circle - 1.0).abs() < 0.002);
        // A tiny plot inside one pixel gives that pixel only.
        let fp = footprint(3.5, 4.5, 0.1, 0.1, 10, 10);
        assert_eq!(fp.len(), 1);
        assert_eq!((fp[0].0, fp[0].1), (3, 4));
        // Clipped at the grid edge: nothing outside.
        let fp = footprint(0.2, 0.2, 1.0, 1.0, 5, 5);
        assert!(fp.iter().all(|x| x.0 < 5 && x.1 < 5));
    }

    #[test]
    fn metres_per_degree_on_wgs84() {
        let g = Grid {
            width: 1,
            height: 1,
            geo_transform: [0.0, 1.0, 0.0, 0.0, 0.0, -1.0],
            crs_wkt: String::new(),
            area: AreaModel::Geographic {
                semi_major_m: 6_378_137.0,
                semi_minor_m: 6_356_752.314_245,
                radians_per_unit: std::f64::consts::PI / 180.0,
            },
        };
        // At the equator: 111 319.49 m per degree of longitude (2π a / 360) and 110 574 m
        // per degree of latitude (the usual tabulated WGS84 values).
        let (mx, my) = metres_per_unit(&g, 0.0);
        assert!((mx - 111_319.49).abs() < 0.01, "{mx}");
        assert!((my - 110_574.0).abs() < 1.0, "{my}");
    }
}
