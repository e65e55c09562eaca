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

mod block;
pub mod events;
pub mod state;
pub mod synth;

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasherDefault;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{normalize, Models, Scene, SeriesSpec, DEFAULT_SOIL_TRANSITION_YR};
use crate::cube::{dequantize, quantize, Cube, GRID_ZONE, OUTSIDE_ZONE};
use crate::engine::{self, MapOutputs, Pass, Source, Tuning};
use crate::error::{Error, Result};
use crate::grid::Grid;
use crate::model::{EcosystemClass, CO2_PER_C};
use crate::pipeline::{BlockContext, BlockOutput};
use crate::raster::writer::{self, MapFormat, MapSpec, MapWriter, TempFile};
use crate::raster::{reference_grid, Layer, LayerKind};
use crate::zones::ZoneSet;

use events::EventCatalogue;
use state::{SeriesModel, Year};

/// The rules of a series from its scene: the plantation type, the soil transition period,
/// and restoration eligibility with the forest type of every forest-curve intervention.
/// The forest-type code of `[series] new_stand_forest_type`, if the scene names one; an
/// error naming the scene when forest.toml has no such type.
fn plantation_type_code(scene: &Scene, spec: &SeriesSpec, models: &Models) -> Result<Option<i32>> {
    let Some(name) = &spec.new_stand_forest_type else {
        return Ok(None);
    };
    match models.forest.type_index(name) {
        Some(i) => Ok(Some(models.forest.types[i].code)),
        None => Err(Error::invalid(
            &scene.source_path,
            format!("[series] new_stand_forest_type '{name}' is not a forest type of forest.toml"),
        )),
    }
}

/// Checks what the `[series]` table names in the model files (the plantation type), so that
/// a command can refuse a bad table before it opens its output folder.
pub fn check_models(scene: &Scene, spec: &SeriesSpec) -> Result<()> {
    let models = Models::load(scene)?;
    plantation_type_code(scene, spec, &models).map(|_| ())
}

/// The restoration tables are those of a `run` with base year `last_year` (the restoration
/// period starts there unless the scene fixes it), so the last year's cube is that run's.
fn rules(
    scene: &Scene,
    spec: &SeriesSpec,
    models: &Models,
    last_year: i32,
) -> Result<state::Rules> {
    let plantation_type_code = plantation_type_code(scene, spec, models)?;
    let at_last = Scene {
        base_year: last_year,
        ..scene.clone()
    };
    let restoration = match (models.restoration_model(&at_last)?, &models.restoration) {
        (Some(rm), Some(cat)) => {
            let types = cat
                .interventions
                .iter()
                .map(|i| i.forest_type(&models.forest).map(|t| t.code))
                .collect();
            Some((rm, types))
        }
        _ => None,
    };
    Ok(state::Rules {
        restoration,
        plantation_type_code,
        soil_transition_yr: spec
            .soil_transition_yr
            .unwrap_or(DEFAULT_SOIL_TRANSITION_YR),
    })
}

/// What to run (from the command line).
#[derive(Debug, Clone, Default)]
pub struct SeriesOptions {
    /// Restrict the years to `from..=to`.
    pub from: Option<i32>,
    /// Last year to run.
    pub to: Option<i32>,
    /// Block size and threads (speed only).
    pub tuning: Tuning,
    /// Per-year maps to write besides the last year's age map.
    pub maps: Vec<SeriesMap>,
    /// Tile `I/N`: only the I-th of N row bands (merged by `sinkmap merge`).
    pub tile: Option<(usize, usize)>,
    /// Run every pixel on its own instead of once per distinct history of a block (the
    /// reference the memoised pass is tested against; same results, slower).
    pub naive: bool,
    /// At most this many distinct pixel histories are memoised per block (default 8192);
    /// the block's other pixels run on their own. Speed and memory only, never a number.
    pub memo_max_histories: Option<usize>,
}

/// A per-year map of a series (`--maps stock,net,age`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SeriesMap {
    /// `stock_tc_per_ha_YEAR.tif`: the carbon stock density at the end of each year.
    Stock,
    /// `net_flux_tco2_per_ha_YEAR.tif`: the net CO₂ flux into the land over the step that
    /// ends in YEAR (positive = uptake), from the second year on.
    Net,
    /// `forest_age_YEAR.tif`: the stand age of each year (forest only).
    Age,
}

impl SeriesMap {
    /// Parses a comma-separated list (`stock,net,age`).
    pub fn parse_list(s: &str) -> std::result::Result<Vec<SeriesMap>, String> {
        let mut v = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            v.push(match part {
                "stock" => SeriesMap::Stock,
                "net" => SeriesMap::Net,
                "age" => SeriesMap::Age,
                other => return Err(format!("unknown map '{other}': expected stock, net or age")),
            });
        }
        v.sort();
        v.dedup();
        Ok(v)
    }

    /// The file prefix of the map (`PREFIX_YEAR.tif`).
    pub fn prefix(self) -> &'static str {
        match self {
            SeriesMap::Stock => "stock_tc_per_ha",
            SeriesMap::Net => "net_flux_tco2_per_ha",
            SeriesMap::Age => "forest_age",
        }
    }

    fn description(self, year: i32, before: i32) -> (String, &'static str) {
        match self {
            SeriesMap::Stock => (
                format!("carbon stock density at the end of {year} (sinkmap series)"),
                "t C/ha",
            ),
            SeriesMap::Net => (
                format!(
                    "net CO2 flux into the land {before}→{year} (positive = uptake; sinkmap series)"
                ),
                "t CO2/ha",
            ),
            SeriesMap::Age => (format!("forest stand age in {year} (sinkmap series)"), "yr"),
        }
    }
}

/// The maps a series writes, in the order of the block's map buffers: the last year's age
/// map first, then each requested kind for its years.
#[derive(Debug, Clone, PartialEq)]
struct MapLayout {
    /// (kind, year index) of every map.
    maps: Vec<(SeriesMap, usize)>,
    /// For each kind, the index of its first map and the first year index it covers.
    stock: Option<usize>,
    net: Option<usize>,
    age: Option<usize>,
}

impl MapLayout {
    fn new(kinds: &[SeriesMap], years: usize) -> MapLayout {
        let mut l = MapLayout {
            maps: vec![(SeriesMap::Age, years - 1)],
            stock: None,
            net: None,
            age: None,
        };
        for k in kinds {
            let (slot, from, to) = match k {
                SeriesMap::Stock => (&mut l.stock, 0, years),
                SeriesMap::Net => (&mut l.net, 1, years),
                // The last year's age map is always written (first in the list).
                SeriesMap::Age => (&mut l.age, 0, years - 1),
            };
            *slot = Some(l.maps.len());
            l.maps.extend((from..to).map(|y| (*k, y)));
        }
        l
    }

    fn file_name(&self, m: usize, years: &[i32]) -> String {
        let (kind, k) = self.maps[m];
        format!("{}_{}.tif", kind.prefix(), years[k])
    }

    /// A writer for every map, in layout order, into `out_dir` on `grid`.
    fn writers(
        &self,
        out_dir: &Path,
        years: &[i32],
        grid: &Grid,
        format: MapFormat,
        metadata: &[(String, String)],
    ) -> Result<Vec<MapWriter<crate::raster::overview::Mean>>> {
        (0..self.maps.len())
            .map(|j| {
                let (kind, k) = self.maps[j];
                let (description, unit) = kind.description(years[k], years[k.saturating_sub(1)]);
                MapWriter::create(
                    out_dir,
                    MapSpec {
                        file_name: self.file_name(j, years),
                        description,
                        unit: unit.into(),
                        categorical: false,
                    },
                    grid,
                    format,
                    metadata,
                )
            })
            .collect()
    }
}

/// The block size of a series when none is given: the scene's, halved (down to 128 px) while
/// the engine's buffers of a block of every layer (8 bytes a pixel, about ten blocks held at
/// once with [`series_batch`]) would pass 512 MB. 23 years of land cover and events at 512 px
/// are 50 layers and about 1 GB of buffers; at 256 px, 260 MB. The results do not depend on
/// it; the per-year maps are tiled by it.
fn series_block_size(scene_block: usize, layers: usize) -> usize {
    const BUDGET_BYTES: usize = 512 << 20;
    let mut b = scene_block;
    while b > 128 && 10 * layers.max(1) * b * b * 8 > BUDGET_BYTES {
        b /= 2;
    }
    b
}

/// Windows per reader batch. The engine holds a few batches of every layer at once (being read,
/// queued, assembled, computed), and a series block carries every year's layers at 8 to 16
/// bytes a pixel (the engine's `Option` bands): 23 years of 512-px blocks are about 100 MB a
/// block. The batch shrinks as layers are added so that these buffers stay near 256 MB; at
/// least 1. The results do not depend on it (windows are reduced in order).
fn series_batch(threads: usize, layers: usize, block: usize) -> usize {
    const BUDGET_BYTES: usize = 256 << 20;
    let block_bytes = layers.max(1) * block * block * 8;
    (BUDGET_BYTES / (6 * block_bytes)).clamp(1, (threads * 2).max(2))
}

/// The resolved inputs of a series: years in order, their land cover and events.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesInputs {
    /// The years, increasing.
    pub years: Vec<i32>,
    /// The land cover of each year.
    pub landcover: Vec<PathBuf>,
    /// Per year, its event rasters.
    pub events: Vec<Vec<PathBuf>>,
    /// The event table file.
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
    /// Transitions added since the last [`SeriesSums::settle`], hashed (a block adds to the
    /// same few keys again and again; the ordered map gets each key once per block).
    pending: HashMap<TransitionKey, i128, BuildHasherDefault<block::WordHasher>>,
}

/// (zone, year, from class, to class).
type TransitionKey = (usize, usize, usize, usize);

/// One pixel-year's quantized sums at one pixel area: what [`SeriesSums::add_q_n`] adds `n`
/// times. Computed once per history, year and row area, not once per zone and row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct QYear {
    area: i128,
    stock: i128,
    gross: i128,
    clearing: i128,
    conversion: i128,
    transfer: i128,
    event: i128,
}

impl QYear {
    /// The sums of one pixel of area `ar` (ha) in year `y`.
    pub(super) fn new(ar: f64, y: &Year) -> QYear {
        let f = &y.fluxes;
        QYear {
            area: quantize(ar),
            stock: quantize(ar * y.stock_end_tc_per_ha),
            gross: quantize(ar * f.gross_sink_tc_per_ha),
            clearing: quantize(ar * f.clearing_tc_per_ha),
            conversion: quantize(ar * f.conversion_tc_per_ha),
            transfer: quantize(ar * f.transfer_tc_per_ha),
            event: f.event.map_or(0, |(_, t)| quantize(ar * t)),
        }
    }
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
            pending: HashMap::default(),
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
        for (key, q) in other.transitions.iter().chain(&other.pending) {
            *self.transitions.entry(*key).or_insert(0) += q;
        }
    }

    /// Moves the hashed transitions into the ordered map.
    fn settle(&mut self) {
        for (key, q) in self.pending.drain() {
            *self.transitions.entry(key).or_insert(0) += q;
        }
    }

    /// Adds one pixel-year with area `ar` (ha, already weighted by the zone's coverage).
    fn add_year(&mut self, z: usize, k: usize, ar: f64, y: &Year) {
        self.add_year_n(z, k, ar, y, 1);
    }

    /// Adds `n` pixel-years of area `ar` each with the same year `y`: `n` times one
    /// pixel's integers, exactly what adding them one by one gives.
    fn add_year_n(&mut self, z: usize, k: usize, ar: f64, y: &Year, n: u64) {
        self.add_q_n(z, k, &QYear::new(ar, y), y, n);
    }

    /// Adds `n` pixel-years of year `y` whose quantized sums are `q`.
    pub(super) fn add_q_n(&mut self, z: usize, k: usize, q: &QYear, y: &Year, n: u64) {
        let n = i128::from(n);
        let c = self.cell(z, k);
        let qa = n * q.area;
        let Some(class) = y.class else {
            c[NODATA] += qa;
            return;
        };
        c[AREA] += qa;
        c[CLASS0 + class.index()] += qa;
        c[STOCK] += n * q.stock;
        c[GROSS] += n * q.gross;
        c[CLEARING] += n * q.clearing;
        c[CONVERSION] += n * q.conversion;
        c[TRANSFER] += n * q.transfer;
        if let Some((e, _)) = y.fluxes.event {
            c[EVENT0 + e] += n * q.event;
        }
        if y.conflict {
            c[CONFLICT] += qa;
        }
        if y.event_ignored {
            c[IGNORED] += qa;
        }
        if let (Some(from), true) = (y.class_before, k > 0) {
            *self
                .pending
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
    /// The scene's masks, in bit order.
    masks: std::ops::Range<usize>,
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

/// What a block adds up: the series' sums and the last year's cohort sums.
type BlockSums = (SeriesSums, BlockOutput);

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
    let first_mask = sources.len();
    sources.extend(
        crate::pipeline::open_masks(scene, grid)?
            .into_iter()
            .map(Source::Codes),
    );
    let masks = first_mask..sources.len();
    Ok((
        sources,
        Slots {
            years: inputs.years.clone(),
            events,
            age,
            forest_type,
            desert,
            masks,
            landcover: inputs.landcover.clone(),
        },
    ))
}

/// What a series produced.
#[derive(Debug, Clone)]
pub struct SeriesOutcome {
    /// The years run.
    pub years: Vec<i32>,
    /// Names of the event types, in the order of the sums.
    pub event_names: Vec<String>,
    /// (zone id, zone name) in the order of the sums.
    pub zones: Vec<(String, String)>,
    /// The per-(zone, year) sums.
    pub sums: SeriesSums,
}

impl SeriesOutcome {
    /// Total stock (t C) of zone index `z` (0 = the grid) in year index `k`.
    pub fn stock_tc(&self, z: usize, k: usize) -> f64 {
        dequantize(self.sums.get(z, k, STOCK))
    }
}

/// The file a `--tile` part writes beside its tables: the exact sums, for `sinkmap merge`.
pub const PART_FILE: &str = "series_part.json";

/// What a tile part records for the merge (the sums in exact fixed point, as strings).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Part {
    tile: String,
    scene_sha256: String,
    years: Vec<i32>,
    block_size_px: usize,
    zones: Vec<(String, String)>,
    event_names: Vec<String>,
    maps: Vec<String>,
    cells: Vec<String>,
    transitions: Vec<(usize, usize, usize, usize, String)>,
}

impl Part {
    /// The record of tile `(i, n)` of a series run with `block`-pixel blocks that wrote
    /// `maps`.
    fn new(
        (i, n): (usize, usize),
        scene: &Scene,
        outcome: &SeriesOutcome,
        block: usize,
        maps: Vec<String>,
    ) -> Part {
        Part {
            tile: format!("{i}/{n}"),
            scene_sha256: scene.sha256.clone(),
            years: outcome.years.clone(),
            block_size_px: block,
            zones: outcome.zones.clone(),
            event_names: outcome.event_names.clone(),
            maps,
            cells: outcome.sums.cells.iter().map(|q| q.to_string()).collect(),
            transitions: outcome
                .sums
                .transitions
                .iter()
                .map(|((z, k, f, t), q)| (*z, *k, *f, *t, q.to_string()))
                .collect(),
        }
    }
}

/// The rows of `grid` a tile covers (all rows without a tile).
fn tile_rows(grid: &Grid, tile: Option<(usize, usize)>) -> Result<std::ops::Range<usize>> {
    match tile {
        Some((i, n)) if n >= 1 && (1..=n).contains(&i) => {
            crate::limits::check_tiles(n, grid.height)?;
            Ok(grid.height * (i - 1) / n..grid.height * i / n)
        }
        Some((i, n)) => Err(Error::Usage(format!("tile {i}/{n}: expected 1 ≤ I ≤ N"))),
        None => Ok(0..grid.height),
    }
}

/// Runs the series of `scene` and writes `series.csv`, `series_transitions.csv`,
/// `forest_age_LAST.tif` and the per-year maps asked for into `out_dir` (with a tile, the
/// part's band of every map and `series_part.json` for `sinkmap merge`).
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
    let m = series_model(scene, spec, &inputs, &models)?;
    crate::pipeline::bound_gdal_cache();
    let grid = reference_grid(&inputs.landcover[0], 1)?;
    if let Some(z) = zones {
        z.check_overlaps_grid(&grid)?;
    }
    let rows = tile_rows(&grid, opts.tile)?;
    let (sources, slots) = open_sources(scene, &inputs, &grid, models.scheme.nodata_value)?;
    let block = engine::check_block_size(
        opts.tuning
            .block_size_px
            .unwrap_or_else(|| series_block_size(scene.output.block_size_px, sources.len())),
    )?;
    let (threads, pool) = engine::thread_pool(opts.tuning.threads)?;
    // Every input is checked: from here on files are written (under temporary names).
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    writer::remove_stale_temp_files(out_dir);
    let layout = MapLayout::new(&opts.maps, inputs.years.len());
    let out_grid = match opts.tile {
        Some(_) => grid.row_band(rows.start, rows.end),
        None => grid.clone(),
    };
    // The maps share a few writer threads (engine::map_pass); the final COG copies use every thread.
    let format = MapFormat {
        write_threads: 1,
        copy_threads: threads,
        ..MapFormat::on_all_cores(block, scene.output.compression, scene.output.layout)
    };
    let metadata = map_metadata(scene, &models, &inputs.years);
    let writers = layout.writers(out_dir, &inputs.years, &out_grid, format, &metadata)?;
    let nz = zones.map(|z| z.zones.len()).unwrap_or(0);
    let mut acc = SeriesSums::new(nz, inputs.years.len(), m.events.events.len());
    let row_areas = grid.row_areas_ha();
    let restoration = m.rules.restoration.as_ref().map(|r| &r.0);
    let space = crate::pipeline::cohort_space(&models, &m.scene, restoration);
    let mut cube = crate::pipeline::new_cube(zones);
    let last = BlockContext {
        model: &m.scene,
        restoration,
        space: &space,
        // The series' ages are already those of its last year.
        age_shift_yr: 0,
        grid: &grid,
        row_areas_ha: &row_areas,
        zones,
    };
    let job = block::BlockJob {
        m: &m,
        slots: &slots,
        layout: &layout,
        last: &last,
        naive: opts.naive,
        memo_max: opts.memo_max_histories.unwrap_or(block::MEMO_MAX_HISTORIES),
    };
    let windows = grid.windows(block, rows.clone());
    let pass = Pass {
        pool: &pool,
        windows: &windows,
        batch: series_batch(threads, sources.len(), block),
        progress: None,
    };
    let maps = engine::map_pass(
        &pass,
        sources,
        MapOutputs {
            writers,
            row0: rows.start,
        },
        |b| job.run(b),
        |(sums, out): BlockSums| {
            acc.add(&sums);
            crate::pipeline::add_block_to_cube(&mut cube, &space, zones, &out);
            Ok(())
        },
    )?;
    let outcome = SeriesOutcome {
        years: inputs.years.clone(),
        event_names: m.events.events.iter().map(|e| e.name.clone()).collect(),
        zones: zone_names(zones),
        sums: acc,
    };
    let part = opts.tile.map(|tile| {
        let maps = (0..layout.maps.len())
            .map(|j| layout.file_name(j, &inputs.years))
            .collect();
        Part::new(tile, scene, &outcome, block, maps)
    });
    publish(out_dir, &outcome, &cube, maps, part.as_ref())?;
    Ok(outcome)
}

/// The per-pixel model of the series: the scene's models with the series' rules (as of its
/// last year) and event catalogue.
fn series_model(
    scene: &Scene,
    spec: &SeriesSpec,
    inputs: &SeriesInputs,
    models: &Models,
) -> Result<SeriesModel> {
    let events = EventCatalogue::load(&inputs.event_table)?;
    let reference_year = scene
        .forest_age
        .as_ref()
        .and_then(|a| a.reference_year)
        .unwrap_or(scene.base_year);
    let last_year = inputs.years[inputs.years.len() - 1];
    let rules = rules(scene, spec, models, last_year)?;
    SeriesModel::new(
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
        rules,
    )
    .map_err(|msg| Error::invalid(scene.scheme_path(), msg))
}

/// The metadata of every map of a series: the run's provenance and the years covered.
fn map_metadata(scene: &Scene, models: &Models, years: &[i32]) -> Vec<(String, String)> {
    let mut metadata = crate::pipeline::provenance(scene, models);
    metadata.push((
        "SINKMAP_SERIES_YEARS".into(),
        format!("{}-{}", years[0], years[years.len() - 1]),
    ));
    metadata
}

/// The (id, name) of the grid, the zones and the outside, in the order of the sums.
fn zone_names(zones: Option<&ZoneSet>) -> Vec<(String, String)> {
    let mut names: Vec<(String, String)> = vec![(GRID_ZONE.into(), "whole grid".into())];
    if let Some(z) = zones {
        names.extend(z.zones.iter().map(|z| (z.id.clone(), z.name.clone())));
        names.push((OUTSIDE_ZONE.into(), "outside every zone".into()));
    }
    names
}

/// Writes the tables (and a part's `series_part.json`) under temporary names, then renames
/// them and the finished maps to their final names: the one place a series publishes its
/// outputs (`run` and `merge`). Nothing is renamed unless everything was written.
fn publish(
    out_dir: &Path,
    o: &SeriesOutcome,
    cube: &Cube,
    mut pending: Vec<(TempFile, PathBuf)>,
    part: Option<&Part>,
) -> Result<Vec<PathBuf>> {
    let named = out_dir.join("cube.csv");
    let tmp = TempFile::new(writer::temp_path(out_dir, "cube.csv", "csv"));
    cube.write_csv(&tmp.path).map_err(|e| e.at(named.clone()))?;
    pending.push((tmp, named));
    let named = out_dir.join("series.csv");
    let table = TempFile::new(writer::temp_path(out_dir, "series.csv", "csv"));
    write_series_csv(o, &table.path, &named)?;
    pending.push((table, named));
    let named = out_dir.join("series_transitions.csv");
    let tr = TempFile::new(writer::temp_path(out_dir, "series_transitions.csv", "csv"));
    write_transitions_csv(o, &tr.path, &named)?;
    pending.push((tr, named));
    if let Some(p) = part {
        let named = out_dir.join(PART_FILE);
        let tmp = TempFile::new(writer::temp_path(out_dir, PART_FILE, "json"));
        let text = serde_json::to_string(p).map_err(|e| Error::output(&named, e))?;
        std::fs::write(&tmp.path, text + "\n").map_err(|e| Error::output(&named, e))?;
        pending.push((tmp, named));
    }
    let mut outputs = Vec::new();
    for (tmp, fin) in pending {
        tmp.commit(&fin)?;
        outputs.push(fin);
    }
    Ok(outputs)
}

/// Merges the parts of `sinkmap series --tile I/N` (folders with `series_part.json`) into
/// `out_dir`: sums by exact addition, maps mosaicked and rewritten by the run's own writer.
/// The result equals a single run's: the same tables, bit-identical maps.
pub fn merge(scene: &Scene, parts: &[PathBuf], out_dir: &Path) -> Result<SeriesOutcome> {
    let read = crate::merge::read_parts(parts, &scene.sha256, PART_FILE)?;
    let mut parsed: Vec<(PathBuf, Part)> = Vec::new();
    for (_, dir, v) in read {
        let p: Part = serde_json::from_value(v).map_err(|e| Error::Parse {
            path: dir.join(PART_FILE),
            message: e.to_string(),
        })?;
        parsed.push((dir, p));
    }
    let (d0, p0) = &parsed[0];
    let bad_sum = |dir: &Path| Error::data(dir.join(PART_FILE), "a sum is not an integer");
    let mut sums = SeriesSums::new(
        p0.zones.len().saturating_sub(2),
        p0.years.len(),
        p0.event_names.len(),
    );
    for (dir, p) in &parsed {
        if (&p.years, &p.zones, &p.event_names, &p.maps)
            != (&p0.years, &p0.zones, &p0.event_names, &p0.maps)
        {
            return Err(Error::data(
                dir.join(PART_FILE),
                format!(
                    "this part has other years, zones, events or maps than {} (run every part with the same options)",
                    d0.display()
                ),
            ));
        }
        if p.cells.len() != sums.cells.len() {
            return Err(Error::data(
                dir.join(PART_FILE),
                "the sums have the wrong size",
            ));
        }
        for (a, b) in sums.cells.iter_mut().zip(&p.cells) {
            *a += b.parse::<i128>().map_err(|_| bad_sum(dir))?;
        }
        for (z, k, f, t, q) in &p.transitions {
            *sums.transitions.entry((*z, *k, *f, *t)).or_insert(0) +=
                q.parse::<i128>().map_err(|_| bad_sum(dir))?;
        }
    }
    let mut cube = Cube::default();
    for (dir, _) in &parsed {
        cube.merge(&Cube::read_csv(&dir.join("cube.csv"))?);
    }
    let grid = reference_grid(&resolve_first_landcover(scene)?, 1)?;
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    writer::remove_stale_temp_files(out_dir);
    let format = MapFormat::on_all_cores(
        p0.block_size_px,
        scene.output.compression,
        scene.output.layout,
    );
    let mut pending = Vec::new();
    for name in &p0.maps {
        let paths: Vec<PathBuf> = parsed.iter().map(|(d, _)| d.join(name)).collect();
        pending.push(crate::merge::merge_map(
            &paths, name, false, &grid, out_dir, format,
        )?);
    }
    let outcome = SeriesOutcome {
        years: p0.years.clone(),
        event_names: p0.event_names.clone(),
        zones: p0.zones.clone(),
        sums,
    };
    publish(out_dir, &outcome, &cube, pending, None)?;
    Ok(outcome)
}

/// The first land-cover file of the scene's series (the reference grid of its maps).
fn resolve_first_landcover(scene: &Scene) -> Result<PathBuf> {
    let spec = scene
        .series
        .as_ref()
        .ok_or_else(|| Error::invalid(&scene.source_path, "the scene has no [series] table"))?;
    let inputs = resolve(scene, spec, &SeriesOptions::default())?;
    Ok(inputs.landcover[0].clone())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Buffers of about ten blocks of every layer (8 bytes a pixel) stay within 512 MB: 50
    /// layers (23 years of land cover and events, plus the static layers) at 512 px would be
    /// 50 × 512² × 8 × 10 = 1.05 GB, at 256 px 262 MB.
    #[test]
    fn the_block_shrinks_with_the_layers_a_series_reads() {
        assert_eq!(series_block_size(512, 12), 512); // 252 MB
        assert_eq!(series_block_size(512, 24), 512); // 503 MB
        assert_eq!(series_block_size(512, 26), 256); // 545 MB at 512
        assert_eq!(series_block_size(512, 50), 256);
        assert_eq!(series_block_size(512, 250), 128); // 1 311 MB at 256, the floor is 128
        assert_eq!(series_block_size(512, 100_000), 128);
        assert_eq!(series_block_size(256, 50), 256);
        for (layers, block) in [(12, 512), (50, 256), (200, 128)] {
            let batch = series_batch(2, layers, block);
            assert!((1..=4).contains(&batch), "{layers} layers: batch {batch}");
            if layers * block * block * 8 * 6 > 256 << 20 {
                assert_eq!(batch, 1, "{layers} layers of {block} px");
            }
        }
    }
}
