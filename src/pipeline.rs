//! The block-streamed pipeline: read aligned input windows (one thread per input layer),
//! evaluate the per-pixel models and reduce the blocks to their overview levels in parallel
//! (rayon), fill the cohort cube and write every map on a thread of its own in the same pass,
//! then finish the maps side by side and publish every output by renaming complete temporary
//! files.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;

use crate::config::{Compression, Layout, Models, Scene};
use crate::coverage::Coverage;
use crate::cube::{self, Acc, CohortSpace, Cube, GRID_ZONE, NQ, OUTSIDE_ZONE};
use crate::error::{Error, Result};
use crate::grid::{Grid, Window};
use crate::model::pixel::{PixelError, PixelModel};
use crate::model::restoration::RestorationModel;
use crate::raster::overview::{self, BlockLevels, Cell, Mean, Mode, Plan};
use crate::raster::writer::{self, MapFormat, MapSpec, MapWriter, TempFile};
use crate::raster::{reference_grid, Layer, LayerKind};
use crate::summary::{self, StageSeconds, Summary};
use crate::zones::ZoneSet;

/// The map files every run writes.
pub const MAP_FILES: [&str; 2] = ["stock_tc_per_ha.tif", "sink_tco2_per_ha_yr.tif"];

/// The restoration maps, written when the models have a restoration catalogue.
pub const POTENTIAL_FILES: [&str; 2] = ["potential_tco2_per_ha_yr.tif", "best_intervention.tif"];

/// Run-time choices that are not part of the scene (they change speed, never numbers).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub block_size_px: Option<usize>,
    pub threads: Option<usize>,
    pub output_dir: Option<PathBuf>,
    pub layout: Option<Layout>,
    pub compression: Option<Compression>,
    /// Show a progress bar on standard error.
    pub progress: bool,
    /// Process only row band `i` of `n` (1-based): partial maps and cube for a later merge.
    pub tile: Option<(usize, usize)>,
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutcome {
    pub summary: Summary,
    pub cube: Cube,
    pub outputs: Vec<PathBuf>,
    pub output_dir: PathBuf,
}

pub(crate) struct Inputs {
    pub(crate) landcover: Layer,
    pub(crate) age: Option<Layer>,
    pub(crate) forest_type: Option<Layer>,
    pub(crate) desert: Option<Layer>,
    /// The scene's masks, in bit order.
    pub(crate) masks: Vec<Layer>,
}

/// The raw values of one window.
pub(crate) struct BlockInput {
    pub(crate) window: Window,
    pub(crate) landcover: Vec<Option<i32>>,
    pub(crate) age: Vec<Option<f64>>,
    pub(crate) forest_type: Vec<Option<i32>>,
    pub(crate) desert: Vec<Option<i32>>,
    /// Bit j set where mask j is set (non-zero, not nodata).
    pub(crate) masks: Vec<u32>,
}

struct BlockOutput {
    window: Window,
    stock: Vec<f32>,
    sink: Vec<f32>,
    /// Restoration potential and best intervention code (empty without a catalogue).
    potential: Vec<f32>,
    best: Vec<u8>,
    /// Dense cohort sums of the whole grid, then of each zone touched (zone index, sums).
    grid_acc: Vec<Acc>,
    zone_acc: Vec<(usize, Vec<Acc>)>,
    outside_acc: Option<Vec<Acc>>,
    nodata_area: i128,
}

/// Overview pixels of the best-intervention map: the most frequent code.
pub type BestMode = Mode<BEST_NODATA>;

/// The overview levels one block holds, per map.
struct MapLevels {
    stock: BlockLevels<Mean>,
    sink: BlockLevels<Mean>,
    /// Without a restoration catalogue these maps are not written.
    potential: Option<BlockLevels<Mean>>,
    best: Option<BlockLevels<BestMode>>,
}

/// A computed block and its overview levels, or the first bad pixel it met (column, row,
/// problem).
type Computed = std::result::Result<(BlockOutput, MapLevels), (usize, usize, PixelError)>;

/// Reduces a computed block to its overview levels (in the coordinates of the maps, whose
/// first row is grid row `row0`).
fn block_levels(plan: &Plan, row0: usize, out: &BlockOutput) -> MapLevels {
    let w = Window {
        row: out.window.row - row0,
        ..out.window
    };
    MapLevels {
        stock: overview::reduce_block(plan, w, &out.stock),
        sink: overview::reduce_block(plan, w, &out.sink),
        potential: (!out.potential.is_empty())
            .then(|| overview::reduce_block(plan, w, &out.potential)),
        best: (!out.best.is_empty()).then(|| overview::reduce_block(plan, w, &out.best)),
    }
}

/// The files a pixel error can be about (kept apart from the layers, which move to the
/// reader thread).
pub(crate) struct InputPaths {
    landcover: PathBuf,
    age: PathBuf,
    forest_type: PathBuf,
    desert: PathBuf,
}

impl InputPaths {
    pub(crate) fn of(inputs: &Inputs) -> InputPaths {
        let lc = &inputs.landcover.path;
        let or_lc = |l: &Option<Layer>| {
            l.as_ref()
                .map(|l| l.path.clone())
                .unwrap_or_else(|| lc.clone())
        };
        InputPaths {
            landcover: lc.clone(),
            age: or_lc(&inputs.age),
            forest_type: or_lc(&inputs.forest_type),
            desert: or_lc(&inputs.desert),
        }
    }

    /// The file whose value caused `e`.
    pub(crate) fn for_error(&self, e: &PixelError) -> &Path {
        match e {
            PixelError::UnknownLandcoverCode(_) => &self.landcover,
            PixelError::NegativeAge(_) | PixelError::AbsurdAge(..) | PixelError::NonFiniteAge => {
                &self.age
            }
            PixelError::UnknownForestType(_) => &self.forest_type,
            PixelError::UnknownDesertSubtype(_) => &self.desert,
        }
    }
}

pub(crate) fn read_block(inputs: &Inputs, w: Window) -> Result<BlockInput> {
    let mut b = BlockInput {
        window: w,
        landcover: Vec::new(),
        age: Vec::new(),
        forest_type: Vec::new(),
        desert: Vec::new(),
        masks: Vec::new(),
    };
    inputs.landcover.read_codes(w, &mut b.landcover)?;
    if let Some(l) = &inputs.age {
        l.read_values(w, &mut b.age)?;
    }
    if let Some(l) = &inputs.forest_type {
        l.read_codes(w, &mut b.forest_type)?;
    }
    if let Some(l) = &inputs.desert {
        l.read_codes(w, &mut b.desert)?;
    }
    if !inputs.masks.is_empty() {
        b.masks = vec![0; w.len()];
        let mut codes = Vec::new();
        for (bit, m) in inputs.masks.iter().enumerate() {
            m.read_codes(w, &mut codes)?;
            set_mask_bit(&mut b.masks, &codes, bit);
        }
    }
    Ok(b)
}

/// Sets bit `bit` where the mask's code is set (non-zero, not nodata).
fn set_mask_bit(bits: &mut [u32], codes: &[Option<i32>], bit: usize) {
    for (dst, c) in bits.iter_mut().zip(codes) {
        if matches!(c, Some(v) if *v != 0) {
            *dst |= 1 << bit;
        }
    }
}

/// Starts a named scoped thread (names show in `top -H`, `perf` and debuggers).
fn spawn_named<'scope, T: Send + 'scope>(
    sc: &'scope std::thread::Scope<'scope, '_>,
    name: String,
    f: impl FnOnce() -> T + Send + 'scope,
) -> std::thread::ScopedJoinHandle<'scope, T> {
    std::thread::Builder::new()
        .name(name)
        .spawn_scoped(sc, f)
        .expect("the system cannot start a thread")
}

/// A thread name: `prefix-` and the file's stem (Linux shows the first 15 bytes).
fn thread_name(prefix: &str, path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{prefix}-{stem}")
}

/// One block of one map, with its overview levels.
type MapBlock<C> = (Window, Vec<<C as Cell>::Value>, BlockLevels<C>);

/// A map writer thread: the writer and its busy seconds, or its first error.
type MapWriterThread<'scope, C> =
    std::thread::ScopedJoinHandle<'scope, Result<(MapWriter<C>, f64)>>;

/// Starts a thread that writes the blocks it receives (in window order) into `w`, and
/// returns the writer and its busy seconds when the sender is dropped, or its first error.
fn spawn_map_writer<'scope, C: Cell>(
    sc: &'scope std::thread::Scope<'scope, '_>,
    w: MapWriter<C>,
    queue: usize,
) -> (
    std::sync::mpsc::SyncSender<MapBlock<C>>,
    MapWriterThread<'scope, C>,
) {
    let (tx, rx) = std::sync::mpsc::sync_channel::<MapBlock<C>>(queue);
    let handle = spawn_named(sc, thread_name("write", &w.final_path()), move || {
        let (mut w, mut busy) = (w, 0.0);
        for (window, data, levels) in rx {
            let t = Instant::now();
            w.write_block(window, data, levels)?;
            busy += t.elapsed().as_secs_f64();
        }
        Ok((w, busy))
    });
    (tx, handle)
}

/// What one layer's reader thread sends per batch of windows.
type LayerBatch<T> = Result<Vec<Vec<T>>>;

/// Starts a thread that reads `layer` over every batch of `windows` and sends the values
/// (bounded: at most one batch waits). Returns the receiver and the thread's busy seconds.
fn spawn_layer_reader<'scope, T: Send + 'scope>(
    sc: &'scope std::thread::Scope<'scope, '_>,
    layer: Layer,
    windows: &'scope [Window],
    batch: usize,
    read: fn(&Layer, Window, &mut Vec<T>) -> Result<()>,
) -> (
    std::sync::mpsc::Receiver<LayerBatch<T>>,
    std::thread::ScopedJoinHandle<'scope, f64>,
) {
    let (tx, rx) = std::sync::mpsc::sync_channel::<LayerBatch<T>>(1);
    let handle = spawn_named(sc, thread_name("read", &layer.path), move || {
        let mut busy = 0.0;
        for chunk in windows.chunks(batch) {
            let t = Instant::now();
            let r = chunk
                .iter()
                .map(|w| {
                    let mut v = Vec::new();
                    read(&layer, *w, &mut v).map(|_| v)
                })
                .collect::<Result<Vec<_>>>();
            busy += t.elapsed().as_secs_f64();
            let failed = r.is_err();
            if tx.send(r).is_err() || failed {
                break;
            }
        }
        busy
    });
    (rx, handle)
}

/// The next batch of one layer: its values, or the reader's error.
fn next_batch<T>(rx: &std::sync::mpsc::Receiver<LayerBatch<T>>) -> Result<Vec<Vec<T>>> {
    rx.recv()
        .map_err(|_| Error::Usage("a reader thread stopped early".into()))?
}

/// Reads every input layer on a thread of its own (layers are separate GDAL datasets, and
/// decoding is most of the reading time), assembles the blocks batch by batch, in window
/// order, and sends them. Returns the summed busy seconds of the reader threads.
fn read_parallel(
    inputs: Inputs,
    windows: &[Window],
    batch: usize,
    tx: std::sync::mpsc::SyncSender<Result<Vec<BlockInput>>>,
) -> f64 {
    std::thread::scope(|sc| {
        let Inputs {
            landcover,
            age,
            forest_type,
            desert,
            masks,
        } = inputs;
        let mut handles = Vec::new();
        let codes = |layer: Option<Layer>, handles: &mut Vec<_>| {
            layer.map(|l| {
                let (rx, h) = spawn_layer_reader(sc, l, windows, batch, Layer::read_codes);
                handles.push(h);
                rx
            })
        };
        let rx_lc = codes(Some(landcover), &mut handles);
        let rx_ft = codes(forest_type, &mut handles);
        let rx_de = codes(desert, &mut handles);
        let rx_masks: Vec<_> = masks
            .into_iter()
            .filter_map(|m| codes(Some(m), &mut handles))
            .collect();
        let rx_age = age.map(|l| {
            let (rx, h) = spawn_layer_reader(sc, l, windows, batch, Layer::read_values);
            handles.push(h);
            rx
        });
        let assemble = |chunk: &[Window]| -> Result<Vec<BlockInput>> {
            let take = |rx: &Option<std::sync::mpsc::Receiver<LayerBatch<Option<i32>>>>| {
                rx.as_ref().map(next_batch).transpose()
            };
            let lc = take(&rx_lc)?.unwrap_or_default();
            let ft = take(&rx_ft)?;
            let de = take(&rx_de)?;
            let age = rx_age.as_ref().map(next_batch).transpose()?;
            let mut mask_bits: Vec<Vec<u32>> = Vec::new();
            for (bit, rx) in rx_masks.iter().enumerate() {
                for (k, codes) in next_batch(rx)?.into_iter().enumerate() {
                    if bit == 0 {
                        mask_bits.push(vec![0; codes.len()]);
                    }
                    set_mask_bit(&mut mask_bits[k], &codes, bit);
                }
            }
            let mut lc = lc.into_iter();
            let mut ft = ft.map(|v| v.into_iter());
            let mut de = de.map(|v| v.into_iter());
            let mut age = age.map(|v| v.into_iter());
            let mut mask_bits = mask_bits.into_iter();
            Ok(chunk
                .iter()
                .map(|w| BlockInput {
                    window: *w,
                    landcover: lc.next().unwrap_or_default(),
                    age: age.as_mut().and_then(|i| i.next()).unwrap_or_default(),
                    forest_type: ft.as_mut().and_then(|i| i.next()).unwrap_or_default(),
                    desert: de.as_mut().and_then(|i| i.next()).unwrap_or_default(),
                    masks: mask_bits.next().unwrap_or_default(),
                })
                .collect())
        };
        for chunk in windows.chunks(batch) {
            let r = assemble(chunk);
            let failed = r.is_err();
            if tx.send(r).is_err() || failed {
                break;
            }
        }
        // Dropping the receivers stops the readers that are still waiting to send.
        drop((rx_lc, rx_ft, rx_de, rx_masks, rx_age));
        handles.into_iter().map(|h| h.join().unwrap_or(0.0)).sum()
    })
}

/// Value of `best_intervention.tif` where the land cover is nodata.
pub const BEST_NODATA: u8 = 255;

/// Adds the eligibility rows of `n` equal pixels (each eligible intervention, and the best one).
#[allow(clippy::too_many_arguments)]
#[inline]
fn add_restoration(
    acc: &mut [Acc],
    space: &CohortSpace,
    r: &RestorationModel,
    v: &crate::model::pixel::PixelValue,
    elig: u32,
    best_j: Option<usize>,
    area_ha: f64,
    n: i128,
) {
    let Some(class) = v.class else { return };
    if elig == 0 {
        return;
    }
    for j in 0..r.len() {
        if elig & (1 << j) != 0 {
            cube::add_eligible(
                &mut acc[space.eligibility_index(class, v.desert_subtype, j)],
                area_ha,
                r.mean_gain[j],
                n,
            );
        }
    }
    if let Some(j) = best_j {
        cube::add_eligible(
            &mut acc[space.eligibility_index(class, v.desert_subtype, r.len())],
            area_ha,
            r.mean_gain[j],
            n,
        );
    }
}

/// The raw inputs of one pixel: equal raw inputs give an equal evaluation.
#[derive(Clone, Copy, PartialEq)]
struct RawPixel {
    code: i32,
    age_bits: Option<u64>,
    forest_type: Option<i32>,
    desert: Option<i32>,
    masks: u32,
}

/// What the models say of one pixel, restoration included.
#[derive(Clone, Copy, PartialEq)]
struct Evaluated {
    v: crate::model::pixel::PixelValue,
    elig: u32,
    best_j: Option<usize>,
}

/// A run of pixels of one row with the same evaluation and the same zone fractions: their
/// exact sums are `count` times one pixel's quantized contribution.
struct Run {
    ev: Evaluated,
    row: usize,
    /// Index in the block of the run's first pixel (whose zone fractions all share).
    first: usize,
    count: i128,
}

/// Everything a block adds to the cube, and how.
struct BlockSums<'a> {
    space: &'a CohortSpace,
    restoration: Option<&'a RestorationModel>,
    row_areas_ha: &'a [f64],
    coverage: &'a [(usize, Coverage)],
    /// Zones that cover the whole block get the block's own sums at the end.
    full: &'a [bool],
    grid_acc: Vec<Acc>,
    zone_acc: Vec<(usize, Vec<Acc>)>,
    outside_acc: Option<Vec<Acc>>,
}

impl BlockSums<'_> {
    /// Adds a finished run to the whole-grid, zone and outside sums.
    fn add_run(&mut self, run: &Run) {
        let Evaluated { v, elig, best_j } = run.ev;
        let (area_ha, n) = (self.row_areas_ha[run.row], run.count);
        let idx = self.space.index(&v);
        let (space, restoration) = (self.space, self.restoration);
        let add = |acc: &mut [Acc], area: f64| {
            cube::add_pixels(&mut acc[idx], &v, area, n);
            if let Some(r) = restoration {
                add_restoration(acc, space, r, &v, elig, best_j, area, n);
            }
        };
        add(&mut self.grid_acc, area_ha);
        if let Some(out) = self.outside_acc.as_mut() {
            // Summed in zone order whatever the block, so the result does not depend on it.
            let mut covered = 0.0;
            for (((_, frac), (_, acc)), is_full) in self
                .coverage
                .iter()
                .zip(self.zone_acc.iter_mut())
                .zip(self.full)
            {
                let f = frac.at(run.first);
                covered += f;
                if f > 0.0 && !is_full {
                    add(acc, area_ha * f);
                }
            }
            let outside = 1.0 - covered;
            if outside > 1e-12 {
                add(out, area_ha * outside);
            }
        }
    }

    /// True when pixels `a` and `b` of the block have the same fraction in every zone that
    /// does not cover the whole block.
    fn same_fractions(&self, a: usize, b: usize) -> bool {
        self.coverage
            .iter()
            .zip(self.full)
            .all(|((_, f), is_full)| *is_full || f.at(a) == f.at(b))
    }
}

/// Evaluates one block: pure, no IO. Runs of equal pixels along a row are added to the
/// cube once, times their length (exactly what adding them one by one gives).
#[allow(clippy::too_many_arguments)]
fn compute_block(
    model: &PixelModel,
    restoration: Option<&RestorationModel>,
    space: &CohortSpace,
    age_shift_yr: i32,
    grid: &Grid,
    row_areas_ha: &[f64],
    zones: Option<&ZoneSet>,
    b: &BlockInput,
) -> std::result::Result<BlockOutput, (usize, usize, PixelError)> {
    let w = b.window;
    let n = w.len();
    let mut stock = vec![writer::MAP_NODATA; n];
    let mut sink = vec![writer::MAP_NODATA; n];
    let (mut potential, mut best) = match restoration {
        Some(_) => (vec![writer::MAP_NODATA; n], vec![BEST_NODATA; n]),
        None => (Vec::new(), Vec::new()),
    };
    let coverage = zones.map(|z| z.block_coverage(grid, w)).unwrap_or_default();
    let full: Vec<bool> = coverage.iter().map(|(_, f)| f.is_full()).collect();
    let mut sums = BlockSums {
        space,
        restoration,
        row_areas_ha,
        coverage: &coverage,
        full: &full,
        grid_acc: vec![[0i128; NQ]; space.len()],
        zone_acc: coverage
            .iter()
            .map(|(z, _)| (*z, vec![[0i128; NQ]; space.len()]))
            .collect(),
        outside_acc: zones.map(|_| vec![[0i128; NQ]; space.len()]),
    };
    let mut nodata_area = 0i128;
    let mut run: Option<Run> = None;
    let mut last: Option<(RawPixel, Evaluated)> = None;
    for r in 0..w.height {
        let row = w.row + r;
        let mut nodata_px = 0i128;
        for c in 0..w.width {
            let i = r * w.width + c;
            let Some(code) = b.landcover[i] else {
                nodata_px += 1;
                continue;
            };
            let age = b.age.get(i).copied().flatten();
            let raw = RawPixel {
                code,
                age_bits: age.map(f64::to_bits),
                forest_type: b.forest_type.get(i).copied().flatten(),
                desert: b.desert.get(i).copied().flatten(),
                masks: b.masks.get(i).copied().unwrap_or(0),
            };
            // Equal raw inputs: the same evaluation, which is also the current run's.
            let mut repeat = false;
            let ev = match last {
                Some((prev, ev)) if prev == raw => {
                    repeat = true;
                    ev
                }
                _ => {
                    let v = model
                        .evaluate_observed(
                            code,
                            age,
                            age_shift_yr as f64,
                            raw.forest_type,
                            raw.desert,
                        )
                        .map_err(|e| (w.col + c, row, e))?;
                    let (elig, best_j) = match (restoration, v.class) {
                        (Some(rm), Some(class)) => {
                            let elig = rm.eligible(class, v.desert_subtype, raw.masks);
                            (elig, rm.best(elig))
                        }
                        _ => (0, None),
                    };
                    let ev = Evaluated { v, elig, best_j };
                    last = Some((raw, ev));
                    ev
                }
            };
            stock[i] = ev.v.stock_tc_per_ha as f32;
            sink[i] = ev.v.sink_tco2_per_ha_yr as f32;
            if let Some(rm) = restoration {
                potential[i] = ev.best_j.map(|j| rm.mean_gain[j] as f32).unwrap_or(0.0);
                best[i] = ev.best_j.map(|j| rm.codes[j]).unwrap_or(0);
            }
            match run.as_mut() {
                Some(cur)
                    if cur.row == row
                        && (repeat || cur.ev == ev)
                        && sums.same_fractions(cur.first, i) =>
                {
                    cur.count += 1;
                }
                _ => {
                    if let Some(done) = run.replace(Run {
                        ev,
                        row,
                        first: i,
                        count: 1,
                    }) {
                        sums.add_run(&done);
                    }
                }
            }
        }
        nodata_area += nodata_px * cube::quantize(row_areas_ha[row]);
    }
    if let Some(done) = run {
        sums.add_run(&done);
    }
    let BlockSums {
        grid_acc,
        mut zone_acc,
        outside_acc,
        ..
    } = sums;
    for ((_, acc), is_full) in zone_acc.iter_mut().zip(&full) {
        if *is_full {
            acc.copy_from_slice(&grid_acc);
        }
    }
    Ok(BlockOutput {
        window: w,
        stock,
        sink,
        potential,
        best,
        grid_acc,
        zone_acc,
        outside_acc,
        nodata_area,
    })
}

pub(crate) fn open_inputs(scene: &Scene, models: &Models, grid: &Grid) -> Result<Inputs> {
    let lc = &scene.landcover;
    let mut landcover = Layer::open(&lc.path, lc.band, LayerKind::Categorical, grid, &[])?;
    if let Some(nd) = models.scheme.nodata_value {
        landcover.add_nodata(nd as f64);
    }
    let age = match &scene.forest_age {
        Some(a) => Some(Layer::open(
            &a.path,
            a.band,
            LayerKind::Continuous,
            grid,
            &a.nodata_values,
        )?),
        None => None,
    };
    let forest_type = Layer::open_spec(scene.forest_type.as_ref(), LayerKind::Categorical, grid)?;
    let desert = Layer::open_spec(scene.desert_subtype.as_ref(), LayerKind::Categorical, grid)?;
    let masks = scene
        .masks
        .values()
        .map(|m| {
            Layer::open(
                &m.path,
                m.band,
                LayerKind::Categorical,
                grid,
                &m.nodata_values,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    if masks.len() > 32 {
        return Err(Error::invalid(&scene.source_path, "at most 32 masks"));
    }
    Ok(Inputs {
        landcover,
        age,
        forest_type,
        desert,
        masks,
    })
}

/// A rayon pool of `threads` workers (default: all cores), and their number.
pub(crate) fn thread_pool(threads: Option<usize>) -> Result<(usize, rayon::ThreadPool)> {
    let n = threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("compute-{i}"))
        .build()
        .map_err(|e| Error::Usage(format!("cannot start {n} threads: {e}")))?;
    Ok((n, pool))
}

/// Metadata written into every map: units, provenance.
fn provenance(scene: &Scene, models: &Models) -> Vec<(String, String)> {
    let mut md = vec![
        (
            "SINKMAP_VERSION".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        ("SINKMAP_SCENE".to_string(), scene.name.clone()),
        ("SINKMAP_SCENE_SHA256".to_string(), scene.sha256.clone()),
        ("SINKMAP_BASE_YEAR".to_string(), scene.base_year.to_string()),
        (
            "SINKMAP_MODELS_DIR".to_string(),
            crate::embedded::models_dir_label(&scene.models_dir),
        ),
        (
            "SINKMAP_POOLS".to_string(),
            format!(
                "biomass{}{}",
                if scene.pools.dead_matter {
                    "+dead_matter"
                } else {
                    ""
                },
                if scene.pools.soil { "+soil" } else { "" }
            ),
        ),
        (
            "SINKMAP_DESERT_INORGANIC_COUNTED".to_string(),
            models.desert.include_inorganic.to_string(),
        ),
    ];
    for (p, sha) in &models.files {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        md.push((
            format!(
                "SINKMAP_MODEL_{}",
                name.to_uppercase().replace(['.', '-'], "_")
            ),
            sha.clone(),
        ));
    }
    md
}

/// Runs a scene end to end and publishes its outputs in the output directory.
pub fn run(scene: &Scene, opts: &RunOptions, zones: Option<&ZoneSet>) -> Result<RunOutcome> {
    let started = Instant::now();
    // GDAL's block cache defaults to 5 % of RAM; bound it so memory stays flat with raster
    // size (the user's GDAL_CACHEMAX wins).
    if std::env::var_os("GDAL_CACHEMAX").is_none() {
        let _ = gdal::config::set_config_option("GDAL_CACHEMAX", "128");
    }
    let models = Models::load(scene)?;
    let model = models.pixel_model(scene)?;
    let space = CohortSpace {
        forest_types: models.forest.types.iter().map(|t| t.name.clone()).collect(),
        desert_subtypes: models
            .desert
            .subtypes
            .iter()
            .map(|s| s.name.clone())
            .collect(),
        max_age_yr: model.max_age_yr(),
        interventions: Vec::new(),
    };
    let restoration = models.restoration_model(scene)?;
    for w in restoration.iter().flat_map(|r| &r.warnings) {
        eprintln!("warning: {}: {w}", scene.source_path.display());
    }
    let space = CohortSpace {
        interventions: restoration
            .as_ref()
            .map(|r| r.names.clone())
            .unwrap_or_default(),
        ..space
    };
    let grid = reference_grid(&scene.landcover.path, scene.landcover.band)?;
    let inputs = open_inputs(scene, &models, &grid)?;
    if !inputs.landcover.has_declared_nodata() {
        eprintln!(
            "warning: {}: no nodata value declared and the scheme has none; every pixel is taken as data",
            scene.landcover.path.display()
        );
    }
    if let Some(z) = zones {
        z.check_overlaps_grid(&grid)?;
    }
    let block = opts.block_size_px.unwrap_or(scene.output.block_size_px);
    if !(16..=4096).contains(&block) || block % 16 != 0 {
        return Err(Error::Usage(format!(
            "block size {block}: must be a multiple of 16 between 16 and 4096"
        )));
    }
    let layout = opts.layout.unwrap_or(scene.output.layout);
    let compression = opts.compression.unwrap_or(scene.output.compression);
    let out_dir = opts
        .output_dir
        .clone()
        .unwrap_or_else(|| scene.output_dir.clone());
    std::fs::create_dir_all(&out_dir).map_err(|e| Error::io(&out_dir, e))?;
    writer::remove_stale_temp_files(&out_dir);

    let out_grid = match opts.tile {
        Some((i, n)) if n >= 1 && (1..=n).contains(&i) => {
            grid.row_band(grid.height * (i - 1) / n, grid.height * i / n)
        }
        _ => grid.clone(),
    };
    let (threads, pool) = thread_pool(opts.threads)?;
    // Each map is written (and its tiles compressed) on a thread of its own while streaming;
    // the final COG copies compress on `threads` threads each.
    let format = MapFormat {
        block_px: block,
        compression,
        layout,
        write_threads: 1,
        copy_threads: threads,
    };
    let metadata = provenance(scene, &models);
    let stock_w = MapWriter::create(
        &out_dir,
        MapSpec {
            file_name: MAP_FILES[0].into(),
            description: "carbon stock density".into(),
            unit: "t C/ha".into(),
            categorical: false,
        },
        &out_grid,
        format,
        &metadata,
    )?;
    let sink_w = MapWriter::create(
        &out_dir,
        MapSpec {
            file_name: MAP_FILES[1].into(),
            description: "annual net CO2 removal (positive = uptake)".into(),
            unit: "t CO2/ha/yr".into(),
            categorical: false,
        },
        &out_grid,
        format,
        &metadata,
    )?;
    let restoration_w = match &restoration {
        Some(r) => {
            let (a, b) = scene.restoration_period();
            let mut md = metadata.clone();
            md.push(("SINKMAP_RESTORATION_PERIOD".into(), format!("{a}-{b}")));
            let potential = MapWriter::create(
                &out_dir,
                MapSpec {
                    file_name: POTENTIAL_FILES[0].into(),
                    description: format!("mean additional annual CO2 removal of the best eligible intervention, {a}-{b}"),
                    unit: "t CO2/ha/yr".into(),
                    categorical: false,
                },
                &out_grid,
                format,
                &md,
            )?;
            let legend = std::iter::once("0=none".to_string())
                .chain(
                    r.names
                        .iter()
                        .zip(&r.codes)
                        .map(|(n, c)| format!("{c}={n}")),
                )
                .collect::<Vec<_>>()
                .join(";");
            md.push(("SINKMAP_LEGEND".into(), legend));
            let best = MapWriter::<BestMode>::create_typed(
                &out_dir,
                MapSpec {
                    file_name: POTENTIAL_FILES[1].into(),
                    description:
                        "best eligible restoration intervention (code; see SINKMAP_LEGEND)".into(),
                    unit: String::new(),
                    categorical: true,
                },
                &out_grid,
                format,
                &md,
                BEST_NODATA as f64,
            )?;
            Some((potential, best))
        }
        None => None,
    };

    let row_areas = grid.row_areas_ha();
    let rows = match opts.tile {
        Some((i, n)) if n >= 1 && (1..=n).contains(&i) => {
            grid.height * (i - 1) / n..grid.height * i / n
        }
        Some((i, n)) => return Err(Error::Usage(format!("tile {i}/{n}: expected 1 ≤ I ≤ N"))),
        None => 0..grid.height,
    };
    let windows = grid.windows(block, rows.clone());
    let batch = (threads * 2).max(2);
    let bar = crate::progress::bar(opts.progress, (grid.width * rows.len()) as u64, "pixels");

    let mut cube = Cube::default();
    cube.zone_names
        .insert(GRID_ZONE.into(), "whole grid".into());
    if let Some(z) = zones {
        cube.zone_names
            .insert(OUTSIDE_ZONE.into(), "outside every zone".into());
        for zone in &z.zones {
            cube.zone_names.insert(zone.id.clone(), zone.name.clone());
        }
    }
    let age_shift = scene.age_shift_yr();
    // Which file a pixel error is about (the inputs move to the reader thread).
    let paths = InputPaths::of(&inputs);
    // Three stages overlap: reader threads (one per input layer), the compute pool, and the
    // writers: one thread adding the block sums to the cube and handing each map's blocks to
    // that map's own writer thread. Bounded channels keep at most a few batches in memory.
    let row0 = rows.start;
    let plan = &stock_w.plan().clone();
    let (stock_w, sink_w, restoration_w, cube, nodata_area, mut stages) =
        std::thread::scope(|sc| -> Result<_> {
            let (tx_in, rx_in) = std::sync::mpsc::sync_channel::<Result<Vec<BlockInput>>>(1);
            // Blocks are computed one by one on the pool and put back in window order by the
            // collector; `in_flight` tokens bound how many are computed but not yet collected.
            let (tx_out, rx_out) = std::sync::mpsc::channel::<(usize, Computed)>();
            let in_flight = 2 * batch;
            let (tx_token, rx_token) = std::sync::mpsc::sync_channel::<()>(in_flight);
            for _ in 0..in_flight {
                let _ = tx_token.send(());
            }
            let windows = &windows;
            let reader = spawn_named(sc, "read".into(), move || {
                read_parallel(inputs, windows, batch, tx_in)
            });
            let (tx_stock, stock_h) = spawn_map_writer(sc, stock_w, batch);
            let (tx_sink, sink_h) = spawn_map_writer(sc, sink_w, batch);
            let (tx_restoration, restoration_h) = match restoration_w {
                Some((p, b)) => {
                    let (tp, hp) = spawn_map_writer(sc, p, batch);
                    let (tb, hb) = spawn_map_writer(sc, b, batch);
                    (Some((tp, tb)), Some((hp, hb)))
                }
                None => (None, None),
            };
            let space_ref = &space;
            let bar_w = bar.clone();
            let collector = spawn_named(sc, "write".into(), move || {
                let mut nodata_area = 0i128;
                let mut busy = 0.0;
                let mut waiting: std::collections::BTreeMap<usize, Computed> = Default::default();
                let mut next = 0;
                let mut pixel_failure = None;
                'blocks: for (idx, computed) in rx_out {
                    waiting.insert(idx, computed);
                    let t = Instant::now();
                    while let Some(computed) = waiting.remove(&next) {
                        next += 1;
                        // A slot for the next block (the feeder may be gone: ignore).
                        let _ = tx_token.send(());
                        let (out, l) = match computed {
                            Ok(done) => done,
                            Err(e) => {
                                // The first bad pixel in window order, whatever the threads.
                                pixel_failure = Some(e);
                                break 'blocks;
                            }
                        };
                        bar_w.inc(out.window.len() as u64);
                        let local = Window {
                            row: out.window.row - row0,
                            ..out.window
                        };
                        // A send fails only when that map's writer stopped on an error,
                        // which its join reports.
                        let mut sent = tx_stock.send((local, out.stock, l.stock)).is_ok()
                            && tx_sink.send((local, out.sink, l.sink)).is_ok();
                        if let (Some((tp, tb)), Some(lp), Some(lb)) =
                            (tx_restoration.as_ref(), l.potential, l.best)
                        {
                            sent = sent
                                && tp.send((local, out.potential, lp)).is_ok()
                                && tb.send((local, out.best, lb)).is_ok();
                        }
                        if !sent {
                            break 'blocks;
                        }
                        cube.add_dense(space_ref, GRID_ZONE, &out.grid_acc);
                        if let (Some(z), Some(outside)) = (zones, out.outside_acc.as_ref()) {
                            for (zi, acc) in &out.zone_acc {
                                cube.add_dense(space_ref, &z.zones[*zi].id, acc);
                            }
                            cube.add_dense(space_ref, OUTSIDE_ZONE, outside);
                        }
                        nodata_area += out.nodata_area;
                    }
                    busy += t.elapsed().as_secs_f64();
                }
                (cube, nodata_area, busy, pixel_failure)
            });
            let mut failure: Option<Error> = None;
            let compute_ns = std::sync::atomic::AtomicU64::new(0);
            pool.in_place_scope(|s| {
                let mut idx = 0;
                'feed: for blocks in rx_in {
                    let blocks = match blocks {
                        Ok(b) => b,
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    };
                    for b in blocks {
                        if rx_token.recv().is_err() {
                            break 'feed; // the collector stopped: its reason is reported below
                        }
                        let (tx, i) = (tx_out.clone(), idx);
                        idx += 1;
                        let (model, restoration, space, grid) =
                            (&model, restoration.as_ref(), &space, &grid);
                        let (row_areas, compute_ns) = (&row_areas, &compute_ns);
                        s.spawn(move |_| {
                            let t = Instant::now();
                            let computed = compute_block(
                                model,
                                restoration,
                                space,
                                age_shift,
                                grid,
                                row_areas,
                                zones,
                                &b,
                            )
                            .map(|out| {
                                let levels = block_levels(plan, row0, &out);
                                (out, levels)
                            });
                            compute_ns.fetch_add(
                                t.elapsed().as_nanos() as u64,
                                std::sync::atomic::Ordering::Relaxed,
                            );
                            let _ = tx.send((i, computed));
                        });
                    }
                }
            });
            let compute_busy = compute_ns.into_inner() as f64 * 1e-9;
            drop(tx_out);
            let panicked = |what: &str| Error::Usage(format!("the {what} thread panicked"));
            let (cube, nodata_area, write_busy, pixel_failure) =
                collector.join().map_err(|_| panicked("writer"))?;
            if let (None, Some((col, row, e))) = (&failure, pixel_failure) {
                failure = Some(Error::Pixel {
                    path: paths.for_error(&e).to_path_buf(),
                    col,
                    row,
                    message: e.to_string(),
                });
            }
            let stock_w = stock_h.join().map_err(|_| panicked("map writer"))?;
            let sink_w = sink_h.join().map_err(|_| panicked("map writer"))?;
            let restoration_w = match restoration_h {
                Some((hp, hb)) => Some((
                    hp.join().map_err(|_| panicked("map writer"))?,
                    hb.join().map_err(|_| panicked("map writer"))?,
                )),
                None => None,
            };
            let read_busy = reader.join().map_err(|_| panicked("reader"))?;
            if let Some(e) = failure {
                return Err(e);
            }
            let ((stock_w, t_stock), (sink_w, t_sink)) = (stock_w?, sink_w?);
            let mut map_busy = t_stock + t_sink;
            let restoration_w = match restoration_w {
                Some((p, b)) => {
                    let ((p, t_p), (b, t_b)) = (p?, b?);
                    map_busy += t_p + t_b;
                    Some((p, b))
                }
                None => None,
            };
            let stages = StageSeconds {
                read: read_busy,
                compute: compute_busy,
                write: write_busy + map_busy,
                finish: 0.0,
            };
            Ok((stock_w, sink_w, restoration_w, cube, nodata_area, stages))
        })?;
    bar.finish_and_clear();

    // Everything computed: finish the files under temporary names, then publish.
    let finish_started = Instant::now();
    // The maps are finished side by side (each a separate GDAL dataset). Rayon halves the
    // list between the threads: [stock, potential | sink, best] pairs a large map with a
    // smaller one on each side.
    type Finish = Box<dyn FnOnce() -> Result<(TempFile, PathBuf)> + Send>;
    let mut jobs: Vec<Finish> = vec![Box::new(move || stock_w.finish())];
    let sink_job: Finish = Box::new(move || sink_w.finish());
    match restoration_w {
        Some((p, b)) => {
            jobs.push(Box::new(move || p.finish()));
            jobs.push(sink_job);
            jobs.push(Box::new(move || b.finish()));
        }
        None => jobs.push(sink_job),
    }
    let finished: Vec<Result<(TempFile, PathBuf)>> =
        pool.install(|| jobs.into_par_iter().map(|f| f()).collect());
    let pending = finished.into_iter().collect::<Result<Vec<_>>>()?;
    stages.finish = finish_started.elapsed().as_secs_f64();
    let elapsed = started.elapsed().as_secs_f64();
    let mut summary = summary::build(
        scene,
        &models,
        &out_grid,
        &cube,
        zones,
        cube::dequantize(nodata_area),
        threads,
        block,
        elapsed,
    );
    summary.tile = opts.tile.map(|(i, n)| format!("{i}/{n}"));
    summary.run.stage_seconds = stages;
    let outputs = publish(&out_dir, pending, &summary, &cube, zones, &models)?;
    Ok(RunOutcome {
        summary,
        cube,
        outputs,
        output_dir: out_dir,
    })
}

/// Writes the tables (summary, cube, zone tables) under temporary names, then renames every
/// pending file to its final name. Nothing is renamed unless everything was written.
pub(crate) fn publish(
    out_dir: &Path,
    mut pending: Vec<(TempFile, PathBuf)>,
    summary: &Summary,
    cube: &Cube,
    zones: Option<&ZoneSet>,
    models: &Models,
) -> Result<Vec<PathBuf>> {
    let tmp_summary = TempFile::new(writer::temp_path(out_dir, "summary.json", "json"));
    let text = serde_json::to_string_pretty(summary)
        .map_err(|e| Error::output(out_dir.join("summary.json"), e))?;
    std::fs::write(&tmp_summary.path, text + "\n")
        .map_err(|e| Error::output(out_dir.join("summary.json"), e))?;
    pending.push((tmp_summary, out_dir.join("summary.json")));
    let tmp_cube = TempFile::new(writer::temp_path(out_dir, "cube.csv", "csv"));
    cube.write_csv(&tmp_cube.path)
        .map_err(|e| e.at(out_dir.join("cube.csv")))?;
    pending.push((tmp_cube, out_dir.join("cube.csv")));
    if let Some(z) = zones {
        pending.extend(crate::zones::write_zone_tables(out_dir, z, cube, models)?);
    }
    let mut outputs = Vec::new();
    for (tmp, fin) in pending {
        tmp.commit(&fin)?;
        outputs.push(fin);
    }
    Ok(outputs)
}
