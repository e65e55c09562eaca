//! `sinkmap series`: an annual land-cover series with per-pixel stand ages.
//!
//! A scene's `[series]` table names the land cover of every year (a path pattern with
//! `{year}` or a year → path table) and optional per-year event rasters coded as in
//! `models/events.toml`. The pass runs on the block engine: each block reads its window of
//! every year, runs the state machine of [`state`] through the years in memory and adds the
//! per-year sums in exact fixed point, so no state raster is written between years and the
//! results do not depend on the block size or the threads. Outputs: `series.csv` (zone ×
//! year), `series_transitions.csv` (zone × year × from → to) and `forest_age_LAST.tif` (the
//! stand ages of the last year: the state to continue from). Outputs are written to
//! temporary files and committed only when the whole pass succeeded.

pub mod events;
pub mod state;
pub mod synth;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{normalize, Models, Scene};
use crate::cube::{dequantize, quantize, GRID_ZONE, OUTSIDE_ZONE};
use crate::engine::{self, Block, MapSink, Pass, Source, Tuning};
use crate::error::{Error, Result};
use crate::grid::{Grid, Window};
use crate::model::{EcosystemClass, CO2_PER_C};
use crate::raster::overview::{self, BlockLevels, Mean};
use crate::raster::writer::{self, MapFormat, MapSpec, MapWriter, TempFile};
use crate::raster::{reference_grid, Layer, LayerKind};
use crate::zones::ZoneSet;

use events::EventCatalogue;
use state::{SeriesModel, Static, Year};

/// The `[series]` table of a scene. Relative paths are taken from the scene file's folder.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesSpec {
    /// Land-cover path with `{year}`, e.g. `"landcover_{year}.tif"` (needs first/last year).
    #[serde(default)]
    pub landcover_pattern: Option<String>,
    /// Or a table year → land-cover path (`2000 = "clcd_2000.tif"`).
    #[serde(default)]
    pub landcover_by_year: BTreeMap<String, PathBuf>,
    /// First and last year (inclusive).
    #[serde(default)]
    pub first_year: Option<i32>,
    #[serde(default)]
    pub last_year: Option<i32>,
    /// Event rasters by year (`2005 = ["fire_2005.tif"]`); codes of the event table, 0 or
    /// nodata = no event. At most one event per pixel and year.
    #[serde(default)]
    pub events: BTreeMap<String, Vec<PathBuf>>,
    /// The event table (default: `models_dir/events.toml`).
    #[serde(default)]
    pub event_table: Option<PathBuf>,
}

/// What to run (from the command line).
#[derive(Debug, Clone, Default)]
pub struct SeriesOptions {
    /// Restrict the years to `from..=to`.
    pub from: Option<i32>,
    pub to: Option<i32>,
    pub tuning: Tuning,
}

/// The resolved inputs of a series: years in order, their land cover and events.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesInputs {
    pub years: Vec<i32>,
    pub landcover: Vec<PathBuf>,
    /// Per year, its event rasters.
    pub events: Vec<Vec<PathBuf>>,
    pub event_table: PathBuf,
}

fn year_key(scene: &Scene, table: &str, key: &str) -> Result<i32> {
    key.trim()
        .parse::<i32>()
        .ok()
        .filter(|y| (1000..=3000).contains(y))
        .ok_or_else(|| {
            Error::invalid(
                &scene.source_path,
                format!("[series.{table}]: '{key}' is not a year"),
            )
        })
}

/// Resolves the years and files of the scene's `[series]` within `from..=to`; every land-cover
/// and event file must exist.
pub fn resolve(scene: &Scene, spec: &SeriesSpec, opts: &SeriesOptions) -> Result<SeriesInputs> {
    let base = scene.source_path.parent().unwrap_or(Path::new("."));
    let fix = |p: &Path| {
        if p.is_relative() {
            normalize(&base.join(p))
        } else {
            p.to_path_buf()
        }
    };
    let bad = |m: String| Error::invalid(&scene.source_path, m);
    let mut by_year = landcover_by_year(scene, spec, &fix)?;
    let from = opts.from.unwrap_or(i32::MIN);
    let to = opts.to.unwrap_or(i32::MAX);
    for (flag, y) in [("--from", opts.from), ("--to", opts.to)] {
        if let Some(y) = y {
            if !by_year.contains_key(&y) {
                return Err(Error::Usage(format!(
                    "{flag} {y}: the series of {} has no land cover for {y} (years {})",
                    scene.source_path.display(),
                    by_year
                        .keys()
                        .map(|y| y.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
    }
    by_year.retain(|y, _| (from..=to).contains(y));
    if by_year.len() < 2 {
        return Err(bad(format!(
            "[series] needs at least two years (found {})",
            by_year.len()
        )));
    }
    for (y, p) in &by_year {
        if !p.is_file() {
            return Err(Error::invalid(
                p,
                format!(
                    "the land cover of {y} is missing (named by [series] of {})",
                    scene.source_path.display()
                ),
            ));
        }
    }
    let mut ev = event_files(scene, spec, opts, &by_year, &fix)?;
    let years: Vec<i32> = by_year.keys().copied().collect();
    Ok(SeriesInputs {
        events: years
            .iter()
            .map(|y| ev.remove(y).unwrap_or_default())
            .collect(),
        landcover: by_year.into_values().collect(),
        years,
        event_table: spec
            .event_table
            .as_deref()
            .map(fix)
            .unwrap_or_else(|| scene.models_dir.join("events.toml")),
    })
}

/// The land cover of every year the `[series]` names (pattern or table, within its
/// first/last year), paths resolved by `fix`.
fn landcover_by_year(
    scene: &Scene,
    spec: &SeriesSpec,
    fix: &dyn Fn(&Path) -> PathBuf,
) -> Result<BTreeMap<i32, PathBuf>> {
    let bad = |m: String| Error::invalid(&scene.source_path, m);
    let mut by_year: BTreeMap<i32, PathBuf> = BTreeMap::new();
    match (&spec.landcover_pattern, spec.landcover_by_year.is_empty()) {
        (Some(pat), true) => {
            if !pat.contains("{year}") {
                return Err(bad(format!(
                    "[series] landcover_pattern '{pat}' has no {{year}}"
                )));
            }
            let (Some(a), Some(b)) = (spec.first_year, spec.last_year) else {
                return Err(bad(
                    "[series] landcover_pattern needs first_year and last_year".into(),
                ));
            };
            for y in a..=b {
                by_year.insert(y, fix(Path::new(&pat.replace("{year}", &y.to_string()))));
            }
        }
        (None, false) => {
            for (k, p) in &spec.landcover_by_year {
                let y = year_key(scene, "landcover_by_year", k)?;
                if spec.first_year.is_none_or(|a| y >= a) && spec.last_year.is_none_or(|b| y <= b) {
                    by_year.insert(y, fix(p));
                }
            }
        }
        _ => {
            return Err(bad(
                "[series] needs exactly one of landcover_pattern and landcover_by_year".into(),
            ))
        }
    }
    Ok(by_year)
}

/// The event rasters of the years run (`by_year`, already within `--from`/`--to`); every file
/// must exist, and the first year can have none (unless the run starts there with --from).
fn event_files(
    scene: &Scene,
    spec: &SeriesSpec,
    opts: &SeriesOptions,
    by_year: &BTreeMap<i32, PathBuf>,
    fix: &dyn Fn(&Path) -> PathBuf,
) -> Result<BTreeMap<i32, Vec<PathBuf>>> {
    let bad = |m: String| Error::invalid(&scene.source_path, m);
    let from = opts.from.unwrap_or(i32::MIN);
    let to = opts.to.unwrap_or(i32::MAX);
    let mut ev: BTreeMap<i32, Vec<PathBuf>> = BTreeMap::new();
    for (k, ps) in &spec.events {
        let y = year_key(scene, "events", k)?;
        let in_range = spec.first_year.is_none_or(|a| y >= a)
            && spec.last_year.is_none_or(|b| y <= b)
            && (from..=to).contains(&y);
        if !in_range {
            continue;
        }
        if !by_year.contains_key(&y) {
            return Err(bad(format!(
                "[series.events] {y}: the series has no land cover for that year"
            )));
        }
        if y == by_year.keys().next().copied().unwrap_or(y) {
            if opts.from.is_some() {
                continue; // --from: the run starts from that year's state
            }
            return Err(bad(format!(
                "[series.events] {y}: events of the first year cannot be applied (the series starts from that year's state)"
            )));
        }
        for p in ps {
            let p = fix(p);
            if !p.is_file() {
                return Err(Error::invalid(
                    &p,
                    format!(
                        "the event raster of {y} is missing (named by [series.events] of {})",
                        scene.source_path.display()
                    ),
                ));
            }
            ev.entry(y).or_default().push(p);
        }
    }
    Ok(ev)
}

/// Column layout of the per-(zone, year) sums.
const AREA: usize = 0;
const CLASS0: usize = 1;
const STOCK: usize = 10;
const GROSS: usize = 11;
const CLEARING: usize = 12;
const CONVERSION: usize = 13;
const TRANSFER: usize = 14;
const CONFLICT: usize = 15;
const IGNORED: usize = 16;
const NODATA: usize = 17;
const EVENT0: usize = 18;

/// The exact fixed-point sums of a series (see [`crate::cube::quantize`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSums {
    zones: usize,
    years: usize,
    width: usize,
    /// [(zone × years + year) × width + column]; zone 0 the grid, 1..=nz the zones, nz + 1
    /// the outside.
    cells: Vec<i128>,
    /// (zone, year, from class, to class) → area, from the second year on.
    transitions: BTreeMap<(usize, usize, usize, usize), i128>,
}

impl SeriesSums {
    fn new(zones: usize, years: usize, events: usize) -> SeriesSums {
        let width = EVENT0 + events;
        SeriesSums {
            zones,
            years,
            width,
            cells: vec![0; (zones + 2) * years * width],
            transitions: BTreeMap::new(),
        }
    }

    fn cell(&mut self, z: usize, k: usize) -> &mut [i128] {
        let o = (z * self.years + k) * self.width;
        &mut self.cells[o..o + self.width]
    }

    /// The sum of `column` for zone `z` in year index `k`.
    fn get(&self, z: usize, k: usize, column: usize) -> i128 {
        self.cells[(z * self.years + k) * self.width + column]
    }

    fn add(&mut self, other: &SeriesSums) {
        for (a, b) in self.cells.iter_mut().zip(&other.cells) {
            *a += b;
        }
        for (key, q) in &other.transitions {
            *self.transitions.entry(*key).or_insert(0) += q;
        }
    }

    /// Adds one pixel-year with area `ar` (ha, already weighted by the zone's coverage).
    fn add_year(&mut self, z: usize, k: usize, ar: f64, y: &Year) {
        let c = self.cell(z, k);
        let Some(class) = y.class else {
            c[NODATA] += quantize(ar);
            return;
        };
        let qa = quantize(ar);
        c[AREA] += qa;
        c[CLASS0 + class.index()] += qa;
        c[STOCK] += quantize(ar * y.stock_end_tc_per_ha);
        let f = &y.fluxes;
        c[GROSS] += quantize(ar * f.gross_sink_tc_per_ha);
        c[CLEARING] += quantize(ar * f.clearing_tc_per_ha);
        c[CONVERSION] += quantize(ar * f.conversion_tc_per_ha);
        c[TRANSFER] += quantize(ar * f.transfer_tc_per_ha);
        if let Some((e, t)) = f.event {
            c[EVENT0 + e] += quantize(ar * t);
        }
        if y.conflict {
            c[CONFLICT] += qa;
        }
        if y.event_ignored {
            c[IGNORED] += qa;
        }
        if let (Some(from), true) = (y.class_before, k > 0) {
            *self
                .transitions
                .entry((z, k, from.index(), class.index()))
                .or_insert(0) += qa;
        }
    }
}

/// Where each input sits among the engine's sources.
struct Slots {
    /// Land cover of year k is source k.
    years: Vec<i32>,
    /// Per year: (source slot, file) of its event rasters.
    events: Vec<Vec<(usize, PathBuf)>>,
    age: Option<usize>,
    forest_type: Option<usize>,
    desert: Option<usize>,
    landcover: Vec<PathBuf>,
}

/// The zone weights of pixel `i`: the grid, each zone's covered fraction, the outside.
fn zone_weights(
    cov: &[(usize, crate::coverage::Coverage)],
    nz: usize,
    zoned: bool,
    i: usize,
    out: &mut Vec<(usize, f64)>,
) {
    out.clear();
    out.push((0, 1.0));
    if zoned {
        let mut covered = 0.0;
        for (zi, c) in cov {
            let f = c.at(i);
            if f > 0.0 {
                out.push((zi + 1, f));
            }
            covered += f;
        }
        if 1.0 - covered > 1e-12 {
            out.push((nz + 1, 1.0 - covered));
        }
    }
}

/// Runs one block through every year: the last year's age map and the sums. Pure, no IO.
fn series_block(
    m: &SeriesModel,
    s: &Slots,
    row_areas_ha: &[f64],
    zones: Option<(&ZoneSet, &Grid)>,
    b: &Block,
) -> Result<(Vec<f32>, SeriesSums)> {
    let win = b.window;
    let cov = zones
        .map(|(z, grid)| z.block_coverage(grid, win))
        .unwrap_or_default();
    let nz = zones.map(|(z, _)| z.zones.len()).unwrap_or(0);
    let ny = s.years.len();
    let mut acc = SeriesSums::new(nz, ny, m.events.events.len());
    let mut ages = vec![writer::MAP_NODATA; win.len()];
    let mut weights = Vec::new();
    let codes: Vec<&[Option<i32>]> = (0..ny).map(|k| b.codes(Some(k))).collect();
    let (v_age, v_ft, v_ds) = (b.values(s.age), b.codes(s.forest_type), b.codes(s.desert));
    for (i, age_out) in ages.iter_mut().enumerate() {
        let (col, row) = (win.col + i % win.width, win.row + i / win.width);
        let pixel_error = |path: &Path, message: String| Error::Pixel {
            path: path.to_path_buf(),
            col,
            row,
            message,
        };
        let st = Static {
            age_yr: v_age.get(i).copied().flatten(),
            forest_type_code: v_ft.get(i).copied().flatten(),
            desert_subtype_code: v_ds.get(i).copied().flatten(),
        };
        zone_weights(&cov, nz, zones.is_some(), i, &mut weights);
        let a_ha = row_areas_ha[row];
        let mut prev: Option<Year> = None;
        for (k, year_codes) in codes.iter().enumerate() {
            // The pixel's event this year: at most one among the year's event rasters.
            let mut event: Option<(usize, &Path)> = None;
            for (slot, path) in &s.events[k] {
                let Some(c) = b.codes(Some(*slot)).get(i).copied().flatten() else {
                    continue;
                };
                if c == 0 {
                    continue;
                }
                let e = m.events.index_of(c).ok_or_else(|| {
                    pixel_error(
                        path,
                        format!("event code {c} is not defined in the event table"),
                    )
                })?;
                if let Some((_, other)) = event {
                    return Err(pixel_error(
                        path,
                        format!(
                            "overlapping events in {}: {} also has an event at this pixel",
                            s.years[k],
                            other.display()
                        ),
                    ));
                }
                event = Some((e, path));
            }
            let code = year_codes.get(i).copied().flatten();
            let y = match prev {
                None => m.first(s.years[k], code, &st),
                Some(p) => m.step(p.state, s.years[k], code, event.map(|e| e.0), &st),
            }
            .map_err(|e| pixel_error(&s.landcover[k], e.to_string()))?;
            for (z, f) in &weights {
                acc.add_year(*z, k, a_ha * f, &y);
            }
            prev = Some(y);
        }
        if let Some(a) = prev.and_then(|y| y.class.and(y.age_yr)) {
            *age_out = a as f32;
        }
    }
    Ok((ages, acc))
}

/// Checks that a land-cover year lies on the first year's grid (transitions between
/// resampled grids would be artefacts of the resampling).
fn check_same_grid(first: &Grid, first_path: &Path, path: &Path) -> Result<()> {
    let g = reference_grid(path, 1)?;
    let tol = 1e-6 * first.geo_transform[1].abs();
    let same = g.width == first.width
        && g.height == first.height
        && g.crs_wkt == first.crs_wkt
        && g.geo_transform
            .iter()
            .zip(&first.geo_transform)
            .all(|(a, b)| (a - b).abs() <= tol);
    if same {
        Ok(())
    } else {
        Err(Error::raster(
            path,
            format!(
                "not on the grid of the series' first year ({}: {} × {} px); every year's land cover must share one grid",
                first_path.display(),
                first.width,
                first.height
            ),
        ))
    }
}

/// Opens every layer of a series as engine sources (all checked before anything is written).
fn open_sources(
    scene: &Scene,
    inputs: &SeriesInputs,
    grid: &Grid,
    nodata: Option<i32>,
) -> Result<(Vec<Source>, Slots)> {
    let mut sources = Vec::new();
    for p in &inputs.landcover {
        check_same_grid(grid, &inputs.landcover[0], p)?;
        let mut l = Layer::open(p, 1, LayerKind::Categorical, grid, &[])?;
        if let Some(nd) = nodata {
            l.add_nodata(nd as f64);
        }
        sources.push(Source::Codes(l));
    }
    let mut events = Vec::new();
    for ps in &inputs.events {
        let mut v = Vec::new();
        for p in ps {
            let l = Layer::open(p, 1, LayerKind::Categorical, grid, &[])?;
            sources.push(Source::Codes(l));
            v.push((sources.len() - 1, p.clone()));
        }
        events.push(v);
    }
    let mut push = |s: Option<Source>| {
        s.map(|s| {
            sources.push(s);
            sources.len() - 1
        })
    };
    let age = push(
        scene
            .forest_age
            .as_ref()
            .map(|a| {
                Layer::open(
                    &a.path,
                    a.band,
                    LayerKind::Continuous,
                    grid,
                    &a.nodata_values,
                )
                .map(Source::Values)
            })
            .transpose()?,
    );
    let forest_type = push(
        Layer::open_spec(scene.forest_type.as_ref(), LayerKind::Categorical, grid)?
            .map(Source::Codes),
    );
    let desert = push(
        Layer::open_spec(scene.desert_subtype.as_ref(), LayerKind::Categorical, grid)?
            .map(Source::Codes),
    );
    Ok((
        sources,
        Slots {
            years: inputs.years.clone(),
            events,
            age,
            forest_type,
            desert,
            landcover: inputs.landcover.clone(),
        },
    ))
}

/// What a series produced.
#[derive(Debug, Clone)]
pub struct SeriesOutcome {
    pub years: Vec<i32>,
    pub event_names: Vec<String>,
    /// (zone id, zone name) in the order of the sums.
    pub zones: Vec<(String, String)>,
    pub sums: SeriesSums,
}

impl SeriesOutcome {
    /// Total stock (t C) of zone index `z` (0 = the grid) in year index `k`.
    pub fn stock_tc(&self, z: usize, k: usize) -> f64 {
        dequantize(self.sums.get(z, k, STOCK))
    }
}

/// A computed block: the age map and the sums.
struct SeriesBlock {
    window: Window,
    ages: Vec<f32>,
    levels: BlockLevels<Mean>,
    sums: SeriesSums,
}

/// Runs the series of `scene` and writes `series.csv`, `series_transitions.csv` and
/// `forest_age_LAST.tif` into `out_dir`.
pub fn run(
    scene: &Scene,
    opts: &SeriesOptions,
    zones: Option<&ZoneSet>,
    out_dir: &Path,
) -> Result<SeriesOutcome> {
    let spec = scene.series.as_ref().ok_or_else(|| {
        Error::invalid(
            &scene.source_path,
            "the scene has no [series] table (see README: 'An annual series')",
        )
    })?;
    let inputs = resolve(scene, spec, opts)?;
    let models = Models::load(scene)?;
    let events = EventCatalogue::load(&inputs.event_table)?;
    let reference_year = scene
        .forest_age
        .as_ref()
        .and_then(|a| a.reference_year)
        .unwrap_or(scene.base_year);
    let m = SeriesModel::new(
        |pools| {
            crate::model::pixel::PixelModel::build(
                &models.scheme,
                &models.forest,
                &models.desert,
                &models.other,
                pools,
                models.pool_table.as_deref(),
            )
            .map_err(|e| e.to_string())
        },
        scene.pools,
        events,
        reference_year,
        models.forest.fallback_age_yr,
    )
    .map_err(|msg| Error::invalid(scene.scheme_path(), msg))?;
    crate::pipeline::bound_gdal_cache();
    let grid = reference_grid(&inputs.landcover[0], 1)?;
    if let Some(z) = zones {
        z.check_overlaps_grid(&grid)?;
    }
    let (sources, slots) = open_sources(scene, &inputs, &grid, models.scheme.nodata_value)?;
    let block = engine::check_block_size(
        opts.tuning
            .block_size_px
            .unwrap_or(scene.output.block_size_px),
    )?;
    let (threads, pool) = engine::thread_pool(opts.tuning.threads)?;
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    writer::remove_stale_temp_files(out_dir);
    let last = *inputs.years.last().unwrap_or(&scene.base_year);
    let age_name = format!("forest_age_{last}.tif");
    let w = MapWriter::create(
        out_dir,
        MapSpec {
            file_name: age_name.clone(),
            description: format!("forest stand age in {last} (sinkmap series)"),
            unit: "yr".into(),
            categorical: false,
        },
        &grid,
        MapFormat::on_all_cores(block, scene.output.compression, scene.output.layout),
        &[("SINKMAP_VERSION".into(), env!("CARGO_PKG_VERSION").into())],
    )?;
    let plan = w.plan().clone();
    let batch = (threads * 2).max(2);
    let mut map = MapSink::start(w, batch)?;
    let nz = zones.map(|z| z.zones.len()).unwrap_or(0);
    let mut acc = SeriesSums::new(nz, inputs.years.len(), m.events.events.len());
    let row_areas = grid.row_areas_ha();
    let windows = grid.windows(block, 0..grid.height);
    let pass = Pass {
        pool: &pool,
        windows: &windows,
        batch,
        progress: None,
    };
    let zones_grid = zones.map(|z| (z, &grid));
    engine::run(
        &pass,
        sources,
        |b| {
            let (ages, sums) = series_block(&m, &slots, &row_areas, zones_grid, b)?;
            let levels = overview::reduce_block(&plan, b.window, &ages);
            Ok(SeriesBlock {
                window: b.window,
                ages,
                levels,
                sums,
            })
        },
        |c: SeriesBlock| {
            acc.add(&c.sums);
            map.send(c.window, c.ages, c.levels)
        },
    )?;
    let (w, _) = map.finish()?;
    let age_map = w.finish()?;
    let mut names: Vec<(String, String)> = vec![(GRID_ZONE.into(), "whole grid".into())];
    if let Some(z) = zones {
        names.extend(z.zones.iter().map(|z| (z.id.clone(), z.name.clone())));
        names.push((OUTSIDE_ZONE.into(), "outside every zone".into()));
    }
    let outcome = SeriesOutcome {
        years: inputs.years.clone(),
        event_names: m.events.events.iter().map(|e| e.name.clone()).collect(),
        zones: names,
        sums: acc,
    };
    let table = TempFile::new(writer::temp_path(out_dir, "series.csv", "csv"));
    write_series_csv(&outcome, &table.path, &out_dir.join("series.csv"))?;
    let tr = TempFile::new(writer::temp_path(out_dir, "series_transitions.csv", "csv"));
    write_transitions_csv(&outcome, &tr.path, &out_dir.join("series_transitions.csv"))?;
    age_map.0.commit(&age_map.1)?;
    table.commit(&out_dir.join("series.csv"))?;
    tr.commit(&out_dir.join("series_transitions.csv"))?;
    Ok(outcome)
}

/// Writes `series.csv`: one row per zone and year. The fluxes of the first year are empty
/// (they need a year before).
fn write_series_csv(o: &SeriesOutcome, tmp: &Path, named: &Path) -> Result<()> {
    let mut wr = csv::Writer::from_path(tmp).map_err(|e| Error::output(named, e))?;
    let mut header: Vec<String> = ["zone_id", "year", "area_ha"].map(String::from).to_vec();
    header.extend(
        EcosystemClass::ALL
            .iter()
            .map(|c| format!("area_{}_ha", c.name())),
    );
    header.extend(
        [
            "stock_tc",
            "gross_sink_tc",
            "emissions_clearing_tc",
            "emissions_conversion_tc",
        ]
        .map(String::from),
    );
    header.extend(o.event_names.iter().map(|n| format!("emissions_{n}_tc")));
    header.extend(
        [
            "transfer_tc",
            "net_flux_tc",
            "net_flux_tco2",
            "conflict_area_ha",
            "event_ignored_area_ha",
            "nodata_area_ha",
        ]
        .map(String::from),
    );
    wr.write_record(&header)
        .map_err(|e| Error::output(named, e))?;
    let s = &o.sums;
    let ne = o.event_names.len();
    for (z, (id, _)) in o.zones.iter().enumerate() {
        for (k, year) in o.years.iter().enumerate() {
            let g = |c: usize| s.get(z, k, c);
            let f = |q: i128| dequantize(q).to_string();
            let mut row = vec![id.clone(), year.to_string(), f(g(AREA))];
            row.extend((0..9).map(|c| f(g(CLASS0 + c))));
            row.push(f(g(STOCK)));
            let events: i128 = (0..ne).map(|e| g(EVENT0 + e)).sum();
            let net = g(GROSS) - g(CLEARING) - g(CONVERSION) - events - g(TRANSFER);
            let mut fluxes = vec![g(GROSS), g(CLEARING), g(CONVERSION)];
            fluxes.extend((0..ne).map(|e| g(EVENT0 + e)));
            fluxes.extend([g(TRANSFER), net]);
            if k == 0 {
                row.extend(fluxes.iter().map(|_| String::new()));
                row.push(String::new());
            } else {
                row.extend(fluxes.iter().map(|q| f(*q)));
                row.push((dequantize(net) * CO2_PER_C).to_string());
            }
            row.extend([g(CONFLICT), g(IGNORED), g(NODATA)].map(f));
            wr.write_record(&row).map_err(|e| Error::output(named, e))?;
        }
    }
    wr.flush().map_err(|e| Error::output(named, e))
}

/// Writes `series_transitions.csv`: zone × year × from → to (ha), from the second year on.
fn write_transitions_csv(o: &SeriesOutcome, tmp: &Path, named: &Path) -> Result<()> {
    #[derive(Serialize)]
    struct Row<'a> {
        zone_id: &'a str,
        year: i32,
        from_class: &'static str,
        to_class: &'static str,
        area_ha: f64,
    }
    let mut wr = csv::Writer::from_path(tmp).map_err(|e| Error::output(named, e))?;
    for ((z, k, from, to), q) in &o.sums.transitions {
        wr.serialize(Row {
            zone_id: &o.zones[*z].0,
            year: o.years[*k],
            from_class: EcosystemClass::ALL[*from].name(),
            to_class: EcosystemClass::ALL[*to].name(),
            area_ha: dequantize(*q),
        })
        .map_err(|e| Error::output(named, e))?;
    }
    wr.flush().map_err(|e| Error::output(named, e))
}

/// A one-screen summary of a series (the grid's totals per year).
pub fn human(o: &SeriesOutcome) -> String {
    let mut s =
        String::from("year  stock (t C)   gross sink (t C)  net flux (t CO2)  conflict (ha)\n");
    let ne = o.event_names.len();
    for (k, y) in o.years.iter().enumerate() {
        let g = |c: usize| o.sums.get(0, k, c);
        let events: i128 = (0..ne).map(|e| g(EVENT0 + e)).sum();
        let net = g(GROSS) - g(CLEARING) - g(CONVERSION) - events - g(TRANSFER);
        s += &format!(
            "{y}  {:>12.5e}  {:>16.5e}  {:>16.5e}  {:>13.1}\n",
            dequantize(g(STOCK)),
            dequantize(g(GROSS)),
            dequantize(net) * CO2_PER_C,
            dequantize(g(CONFLICT)),
        );
    }
    s
}
