//! The `run` (and `zonal`) pass: the scene's layers in, the per-pixel models evaluated block
//! by block on the block engine ([`crate::engine`]), out the stock, sink and restoration maps
//! (each written on a thread of its own), the cohort cube with its zone sums, then every
//! output published by renaming complete temporary files.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;

use crate::config::{Compression, Layout, Models, Scene};
use crate::cube::{self, Acc, CohortSpace, Cube, GRID_ZONE, OUTSIDE_ZONE};
use crate::engine::{self, Block, MapSink, Pass, Source};
use crate::error::{Error, Result, Warning};
use crate::grid::{Grid, Window};
use crate::model::pixel::{PixelError, PixelModel, PixelValue};
use crate::model::restoration::RestorationModel;
use crate::raster::overview::{self, BlockLevels, Mean, Mode, Plan};
use crate::raster::writer::{self, MapFormat, MapSpec, MapWriter, TempFile};
use crate::raster::{reference_grid, Layer, LayerKind};
use crate::summary::{self, StageSeconds, Summary};
use crate::zones::ZoneSet;

pub(crate) use crate::engine::thread_pool;

/// The map files every run writes.
pub const MAP_FILES: [&str; 2] = ["stock_tc_per_ha.tif", "sink_tco2_per_ha_yr.tif"];

/// The restoration maps, written when the models have a restoration catalogue.
pub const POTENTIAL_FILES: [&str; 2] = ["potential_tco2_per_ha_yr.tif", "best_intervention.tif"];

/// Run-time choices that are not part of the scene (they change speed, never numbers).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Processing block edge (px; default: the scene's).
    pub block_size_px: Option<usize>,
    /// Compute threads (default: all cores).
    pub threads: Option<usize>,
    /// Output folder (default: the scene's).
    pub output_dir: Option<PathBuf>,
    /// Map layout (default: the scene's).
    pub layout: Option<Layout>,
    /// Map compression (default: the scene's).
    pub compression: Option<Compression>,
    /// Show a progress bar on standard error.
    pub progress: bool,
    /// Process only row band `i` of `n` (1-based): partial maps and cube for a later merge.
    pub tile: Option<(usize, usize)>,
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// The run's summary (also in summary.json).
    pub summary: Summary,
    /// The cohort cube (also in cube.csv).
    pub cube: Cube,
    /// Files written.
    pub outputs: Vec<PathBuf>,
    /// The folder they were written to.
    pub output_dir: PathBuf,
    /// What the user should know (interventions without their masks, a land cover without
    /// nodata); the command line prints them.
    pub warnings: Vec<Warning>,
}

/// Where each of the scene's layers sits among the engine's sources (the land cover is
/// source 0).
#[derive(Debug, Clone, Default)]
pub(crate) struct Slots {
    age: Option<usize>,
    forest_type: Option<usize>,
    desert: Option<usize>,
    /// The scene's masks, in bit order.
    masks: Range<usize>,
}

/// The scene's input layers, opened and aligned, ready for a pass.
pub(crate) struct SceneInputs {
    pub(crate) sources: Vec<Source>,
    pub(crate) slots: Slots,
    /// Which file a pixel error is about (the layers move to the reader threads).
    pub(crate) paths: InputPaths,
    /// The land cover declares a nodata value (or the scheme has one).
    pub(crate) landcover_has_nodata: bool,
}

/// The raw values of one window, by meaning (empty slices for absent layers).
pub(crate) struct BlockInput<'a> {
    pub(crate) window: Window,
    pub(crate) landcover: &'a [Option<i32>],
    pub(crate) age: &'a [Option<f64>],
    pub(crate) forest_type: &'a [Option<i32>],
    pub(crate) desert: &'a [Option<i32>],
    /// Bit j set where mask j is set (non-zero, not nodata); empty without masks.
    pub(crate) masks: Vec<u32>,
}

impl Slots {
    /// The scene's view of an engine block.
    pub(crate) fn view<'a>(&self, b: &'a Block) -> BlockInput<'a> {
        let mut masks = Vec::new();
        if !self.masks.is_empty() {
            masks = vec![0; b.window.len()];
            for (bit, k) in self.masks.clone().enumerate() {
                set_mask_bit(&mut masks, b.codes(Some(k)), bit);
            }
        }
        BlockInput {
            window: b.window,
            landcover: b.codes(Some(0)),
            age: b.values(self.age),
            forest_type: b.codes(self.forest_type),
            desert: b.codes(self.desert),
            masks,
        }
    }
}

pub(crate) struct BlockOutput {
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
    pub(crate) nodata_area: i128,
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
/// reader threads).
pub(crate) struct InputPaths {
    landcover: PathBuf,
    age: PathBuf,
    forest_type: PathBuf,
    desert: PathBuf,
}

impl InputPaths {
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

    /// The error of a bad pixel at (`col`, `row`), naming the file it comes from.
    pub(crate) fn pixel_error(&self, col: usize, row: usize, e: PixelError) -> Error {
        Error::Pixel {
            path: self.for_error(&e).to_path_buf(),
            col,
            row,
            message: e.to_string(),
        }
    }
}

/// Opens the scene's masks (restoration eligibility) in bit order, aligned to `grid`.
pub(crate) fn open_masks(scene: &Scene, grid: &Grid) -> Result<Vec<Layer>> {
    if scene.masks.len() > 32 {
        return Err(Error::invalid(&scene.source_path, "at most 32 masks"));
    }
    scene
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
        .collect()
}

/// Sets bit `bit` where the mask's code is set (non-zero, not nodata).
pub(crate) fn set_mask_bit(bits: &mut [u32], codes: &[Option<i32>], bit: usize) {
    for (dst, c) in bits.iter_mut().zip(codes) {
        if matches!(c, Some(v) if *v != 0) {
            *dst |= 1 << bit;
        }
    }
}

/// Value of `best_intervention.tif` where the land cover is nodata.
pub const BEST_NODATA: u8 = 255;

/// Adds the eligibility rows of `n` equal pixels (each eligible intervention, and the best one).
#[inline]
fn add_restoration(
    acc: &mut [Acc],
    space: &CohortSpace,
    r: &RestorationModel,
    ev: &Evaluated,
    area_ha: f64,
    n: i128,
) {
    let Evaluated { v, elig, best_j } = *ev;
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

impl RawPixel {
    /// A hash for [`Memo`]'s cache (multiply-xorshift over the fields).
    #[inline]
    fn hash(&self) -> usize {
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut h = self.code as u32 as u64;
        for x in [
            self.age_bits.unwrap_or(1),
            self.forest_type.map_or(1 << 40, |v| v as u32 as u64),
            self.desert.map_or(1 << 41, |v| v as u32 as u64),
            self.masks as u64,
        ] {
            h = (h ^ x).wrapping_mul(K);
            h ^= h >> 29;
        }
        (h.wrapping_mul(K) >> 40) as usize
    }
}

/// What the models say of one pixel, restoration included.
#[derive(Clone, Copy)]
struct Evaluated {
    v: PixelValue,
    elig: u32,
    best_j: Option<usize>,
}

/// The distinct evaluations of a block: a pixel is evaluated once per distinct raw input
/// (the model is pure, so the values are the same bits), and known by an id.
struct Memo<'a> {
    ctx: &'a BlockContext<'a>,
    /// Distinct evaluations, by id.
    evs: Vec<Evaluated>,
    /// Map values of each id: stock, sink, potential, best code.
    values: Vec<(f32, f32, f32, u8)>,
    /// A direct-mapped cache raw input → id (an evicted input is evaluated again under a
    /// new id; equal evaluations under two ids sum to the same integers).
    slots: Vec<Option<(RawPixel, u32)>>,
}

/// Slots of [`Memo`]'s cache (a power of two).
const MEMO_SLOTS: usize = 1024;

impl<'a> Memo<'a> {
    fn new(ctx: &'a BlockContext<'a>) -> Self {
        Memo {
            ctx,
            evs: Vec::new(),
            values: Vec::new(),
            slots: vec![None; MEMO_SLOTS],
        }
    }

    /// The id of `raw`'s evaluation (evaluated on first sight).
    #[inline]
    fn id(&mut self, raw: RawPixel, age: Option<f64>) -> std::result::Result<u32, PixelError> {
        let slot = raw.hash() & (MEMO_SLOTS - 1);
        if let Some((k, id)) = self.slots[slot] {
            if k == raw {
                return Ok(id);
            }
        }
        let ctx = self.ctx;
        let v = ctx.model.evaluate_observed(
            raw.code,
            age,
            ctx.age_shift_yr as f64,
            raw.forest_type,
            raw.desert,
        )?;
        let (elig, best_j) = match (ctx.restoration, v.class) {
            (Some(rm), Some(class)) => {
                let elig = rm.eligible(class, v.desert_subtype, raw.masks);
                (elig, rm.best(elig))
            }
            _ => (0, None),
        };
        let (potential, best) = match ctx.restoration {
            Some(rm) => (
                best_j.map(|j| rm.mean_gain[j] as f32).unwrap_or(0.0),
                best_j.map(|j| rm.codes[j]).unwrap_or(0),
            ),
            None => (writer::MAP_NODATA, BEST_NODATA),
        };
        let id = self.evs.len() as u32;
        self.evs.push(Evaluated { v, elig, best_j });
        self.values.push((
            v.stock_tc_per_ha as f32,
            v.sink_tco2_per_ha_yr as f32,
            potential,
            best,
        ));
        self.slots[slot] = Some((raw, id));
        Ok(id)
    }
}

/// Pixel counts per evaluation id over one row (ids in first-seen order). A row's sums are
/// added once per id, `count` times one pixel's quantized contribution: exactly what adding
/// the pixels one by one gives, since the sums are integers.
#[derive(Default)]
struct RowCounts {
    n: Vec<u32>,
    seen: Vec<u32>,
}

impl RowCounts {
    #[inline]
    fn add(&mut self, id: u32) {
        let k = id as usize;
        if k >= self.n.len() {
            self.n.resize(k + 1, 0);
        }
        if self.n[k] == 0 {
            self.seen.push(id);
        }
        self.n[k] += 1;
    }

    /// Adds the row's counts, at `area_ha` a pixel, into `acc`, and starts a new row.
    fn flush(&mut self, sums: &Sums, evs: &[Evaluated], acc: &mut [Acc], area_ha: f64) {
        for &id in &self.seen {
            let n = std::mem::take(&mut self.n[id as usize]);
            sums.add(acc, &evs[id as usize], area_ha, n as i128);
        }
        self.seen.clear();
    }
}

/// How evaluations are added to dense cohort sums.
struct Sums<'a> {
    space: &'a CohortSpace,
    restoration: Option<&'a RestorationModel>,
}

impl Sums<'_> {
    /// Adds `n` pixels of evaluation `ev`, each of `area_ha`, to `acc`.
    #[inline]
    fn add(&self, acc: &mut [Acc], ev: &Evaluated, area_ha: f64, n: i128) {
        cube::add_pixels(&mut acc[self.space.index(&ev.v)], &ev.v, area_ha, n);
        if let Some(r) = self.restoration {
            add_restoration(acc, self.space, r, ev, area_ha, n);
        }
    }
}

/// How the zones meet one block: which cover it, which of those cover it whole, and whether
/// pixel fractions matter at all.
struct BlockZones {
    /// (zone index, coverage) of every zone that touches the block.
    coverage: Vec<(usize, crate::coverage::Coverage)>,
    /// Whether each of them covers the whole block.
    full: Vec<bool>,
    /// Outside share of every pixel of a block without partial zones (summed in zone order,
    /// as for a single pixel): all of it (no zone) or none (a zone covers it).
    uniform_outside: f64,
    /// Whether some zone covers the block partly (then pixel fractions are summed).
    partial: bool,
}

impl BlockZones {
    fn new(ctx: &BlockContext, w: Window) -> BlockZones {
        let coverage = ctx
            .zones
            .map(|z| z.block_coverage(ctx.grid, w))
            .unwrap_or_default();
        let full: Vec<bool> = coverage.iter().map(|(_, f)| f.is_full()).collect();
        let uniform_outside = 1.0 - coverage.iter().fold(0.0, |a, (_, f)| a + f.at(0));
        let partial =
            full.iter().any(|f| !f) || (uniform_outside > 1e-12 && uniform_outside != 1.0);
        BlockZones {
            coverage,
            full,
            uniform_outside,
            partial,
        }
    }

    /// Zones that cover the whole block get the block's own sums (`grid_acc`), and so does
    /// the outside of a block no zone touches (area × 1.0 = area).
    fn finish(
        &self,
        grid_acc: &[Acc],
        zone_acc: &mut [(usize, Vec<Acc>)],
        outside: Option<&mut [Acc]>,
    ) {
        for ((_, acc), is_full) in zone_acc.iter_mut().zip(&self.full) {
            if *is_full {
                acc.copy_from_slice(grid_acc);
            }
        }
        if let (Some(out), false) = (outside, self.partial) {
            if self.uniform_outside == 1.0 {
                out.copy_from_slice(grid_acc);
            }
        }
    }
}

/// What every block of a run needs besides its own values.
pub(crate) struct BlockContext<'a> {
    pub(crate) model: &'a PixelModel,
    pub(crate) restoration: Option<&'a RestorationModel>,
    pub(crate) space: &'a CohortSpace,
    pub(crate) age_shift_yr: i32,
    pub(crate) grid: &'a Grid,
    pub(crate) row_areas_ha: &'a [f64],
    pub(crate) zones: Option<&'a ZoneSet>,
}

/// Evaluates one block: pure, no IO. Every pixel's contribution to the whole grid, to each
/// zone (× its covered fraction) and to the outside is added exactly as one pixel's
/// quantized sums; equal contributions of a row are counted and added once, times their
/// number (integer sums: the same result, whatever the grouping).
///
/// This is the hot loop of a run (every pixel of the scene passes here once): a pixel costs
/// a comparison with its left neighbour (or a cache probe), four stores and a count; zone
/// fractions are looked at only in blocks a zone edge crosses. The pixel loop stays in one
/// piece on purpose: it keeps the row counters, the accumulators and the last pixel in
/// locals the compiler can hold in registers; the zone setup and the end of the block are
/// functions of their own (`BlockZones`).
pub(crate) fn compute_block(
    ctx: &BlockContext,
    b: &BlockInput,
) -> std::result::Result<BlockOutput, (usize, usize, PixelError)> {
    let (restoration, space, row_areas_ha, zones) =
        (ctx.restoration, ctx.space, ctx.row_areas_ha, ctx.zones);
    let w = b.window;
    let n = w.len();
    let mut stock = vec![writer::MAP_NODATA; n];
    let mut sink = vec![writer::MAP_NODATA; n];
    let (mut potential, mut best) = match restoration {
        Some(_) => (vec![writer::MAP_NODATA; n], vec![BEST_NODATA; n]),
        None => (Vec::new(), Vec::new()),
    };
    let here = BlockZones::new(ctx, w);
    let (coverage, full, partial) = (&here.coverage, &here.full, here.partial);
    let sums = Sums { space, restoration };
    let mut grid_acc = vec![Acc::ZERO; space.len()];
    let mut zone_acc: Vec<(usize, Vec<Acc>)> = coverage
        .iter()
        .map(|(z, _)| (*z, vec![Acc::ZERO; space.len()]))
        .collect();
    let mut outside_acc = zones.map(|_| vec![Acc::ZERO; space.len()]);
    let mut memo = Memo::new(ctx);
    let mut grid_n = RowCounts::default();
    let mut zone_n: Vec<RowCounts> = coverage.iter().map(|_| RowCounts::default()).collect();
    let mut outside_n = RowCounts::default();
    let mut nodata_area = 0i128;
    let mut last: Option<(RawPixel, u32)> = None;
    for r in 0..w.height {
        let row = w.row + r;
        let area_ha = row_areas_ha[row];
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
            let id = match last {
                Some((prev, id)) if prev == raw => id,
                _ => {
                    let id = memo.id(raw, age).map_err(|e| (w.col + c, row, e))?;
                    last = Some((raw, id));
                    id
                }
            };
            let (s, k, p, bi) = memo.values[id as usize];
            stock[i] = s;
            sink[i] = k;
            if restoration.is_some() {
                potential[i] = p;
                best[i] = bi;
            }
            grid_n.add(id);
            if !partial {
                continue;
            }
            // Summed in zone order whatever the block, so the result does not depend on it.
            let mut covered = 0.0;
            for (k, ((_, frac), is_full)) in coverage.iter().zip(full).enumerate() {
                let f = frac.at(i);
                covered += f;
                if f > 0.0 && !is_full {
                    if f == 1.0 {
                        zone_n[k].add(id);
                    } else {
                        let ev = &memo.evs[id as usize];
                        sums.add(&mut zone_acc[k].1, ev, area_ha * f, 1);
                    }
                }
            }
            if let Some(out) = outside_acc.as_mut() {
                let outside = 1.0 - covered;
                if outside == 1.0 {
                    outside_n.add(id);
                } else if outside > 1e-12 {
                    sums.add(out, &memo.evs[id as usize], area_ha * outside, 1);
                }
            }
        }
        grid_n.flush(&sums, &memo.evs, &mut grid_acc, area_ha);
        for (counts, (_, acc)) in zone_n.iter_mut().zip(zone_acc.iter_mut()) {
            counts.flush(&sums, &memo.evs, acc, area_ha);
        }
        if let Some(out) = outside_acc.as_mut() {
            outside_n.flush(&sums, &memo.evs, out, area_ha);
        }
        nodata_area += nodata_px * cube::quantize(area_ha);
    }
    here.finish(&grid_acc, &mut zone_acc, outside_acc.as_deref_mut());
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

/// Opens the scene's layers (land cover, age, forest type, desert subtype, masks), aligned
/// to `grid`, as engine sources.
pub(crate) fn open_inputs(scene: &Scene, models: &Models, grid: &Grid) -> Result<SceneInputs> {
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
    let masks = open_masks(scene, grid)?;
    let lc_path = landcover.path.clone();
    let path_or_lc = |l: &Option<Layer>| {
        l.as_ref()
            .map(|l| l.path.clone())
            .unwrap_or_else(|| lc_path.clone())
    };
    let paths = InputPaths {
        landcover: lc_path.clone(),
        age: path_or_lc(&age),
        forest_type: path_or_lc(&forest_type),
        desert: path_or_lc(&desert),
    };
    let landcover_has_nodata = landcover.has_declared_nodata();
    let mut sources = vec![Source::Codes(landcover)];
    let mut slot = |s: Option<Source>| {
        s.map(|s| {
            sources.push(s);
            sources.len() - 1
        })
    };
    let mut slots = Slots {
        forest_type: slot(forest_type.map(Source::Codes)),
        desert: slot(desert.map(Source::Codes)),
        ..Slots::default()
    };
    let first_mask = sources.len();
    sources.extend(masks.into_iter().map(Source::Codes));
    slots.masks = first_mask..sources.len();
    slots.age = age.map(|l| {
        sources.push(Source::Values(l));
        sources.len() - 1
    });
    Ok(SceneInputs {
        sources,
        slots,
        paths,
        landcover_has_nodata,
    })
}

/// Everything a run decides before it streams the blocks.
struct RunSetup {
    models: Models,
    model: PixelModel,
    restoration: Option<RestorationModel>,
    space: CohortSpace,
    /// The land cover's grid, and the part of it this run writes (a row band with `--tile`).
    grid: Grid,
    out_grid: Grid,
    rows: Range<usize>,
    block: usize,
    out_dir: PathBuf,
    format: MapFormat,
    threads: usize,
    pool: rayon::ThreadPool,
    warnings: Vec<Warning>,
}

/// The maps of a run: as writers (`M`, `B`) or as their writer threads.
struct RunMaps<M, B> {
    stock: M,
    sink: M,
    /// Potential and best intervention, with a restoration catalogue.
    restoration: Option<(M, B)>,
}

/// The maps being written.
type Writers = RunMaps<MapWriter<Mean>, MapWriter<BestMode>>;

/// Bounds GDAL's block cache (it defaults to 5 % of RAM) so memory stays flat with raster
/// size; the user's `GDAL_CACHEMAX` wins.
pub(crate) fn bound_gdal_cache() {
    if std::env::var_os("GDAL_CACHEMAX").is_none() {
        let _ = gdal::config::set_config_option("GDAL_CACHEMAX", "128");
    }
}

/// Lets glibc's allocator keep the blocks' buffers (a few MB each, allocated and freed for
/// every block by the readers, the compute tasks and the writers) instead of mapping fresh,
/// zeroed pages from the kernel for each and handing them back: without this, page faults
/// and page clearing took about a third of a run's processor time. Numbers do not change.
pub(crate) fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before the passes start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

/// The cohort numbering of a scene's cube.
pub(crate) fn cohort_space(
    models: &Models,
    model: &PixelModel,
    restoration: Option<&RestorationModel>,
) -> CohortSpace {
    CohortSpace {
        forest_types: models.forest.types.iter().map(|t| t.name.clone()).collect(),
        desert_subtypes: models
            .desert
            .subtypes
            .iter()
            .map(|s| s.name.clone())
            .collect(),
        max_age_yr: model.max_age_yr(),
        interventions: restoration.map(|r| r.names.clone()).unwrap_or_default(),
    }
}

/// Adds a computed block's cohort sums (grid, zones, outside) to the cube.
pub(crate) fn add_block_to_cube(
    cube: &mut Cube,
    space: &CohortSpace,
    zones: Option<&ZoneSet>,
    out: &BlockOutput,
) {
    cube.add_dense(space, GRID_ZONE, &out.grid_acc);
    if let (Some(z), Some(outside)) = (zones, out.outside_acc.as_ref()) {
        for (zi, acc) in &out.zone_acc {
            cube.add_dense(space, &z.zones[*zi].id, acc);
        }
        cube.add_dense(space, OUTSIDE_ZONE, outside);
    }
}

/// Loads the models, opens and checks the inputs, and fixes the run's grid, rows, block,
/// output folder and threads.
fn setup(
    scene: &Scene,
    opts: &RunOptions,
    zones: Option<&ZoneSet>,
) -> Result<(RunSetup, SceneInputs)> {
    let models = Models::load(scene)?;
    let model = models.pixel_model(scene)?;
    let restoration = models.restoration_model(scene)?;
    let mut warnings: Vec<Warning> = restoration
        .iter()
        .flat_map(|r| &r.warnings)
        .map(|w| Warning::new(&scene.source_path, w.as_str()))
        .collect();
    let space = cohort_space(&models, &model, restoration.as_ref());
    let grid = reference_grid(&scene.landcover.path, scene.landcover.band)?;
    let inputs = open_inputs(scene, &models, &grid)?;
    if !inputs.landcover_has_nodata {
        warnings.push(Warning::new(
            &scene.landcover.path,
            "no nodata value declared and the scheme has none; every pixel is taken as data",
        ));
    }
    if let Some(z) = zones {
        z.check_overlaps_grid(&grid)?;
    }
    let block = engine::check_block_size(opts.block_size_px.unwrap_or(scene.output.block_size_px))?;
    let out_dir = opts
        .output_dir
        .clone()
        .unwrap_or_else(|| scene.output_dir.clone());
    std::fs::create_dir_all(&out_dir).map_err(|e| Error::io(&out_dir, e))?;
    writer::remove_stale_temp_files(&out_dir);
    let rows = match opts.tile {
        Some((i, n)) if n >= 1 && (1..=n).contains(&i) => {
            grid.height * (i - 1) / n..grid.height * i / n
        }
        Some((i, n)) => return Err(Error::Usage(format!("tile {i}/{n}: expected 1 ≤ I ≤ N"))),
        None => 0..grid.height,
    };
    let out_grid = match opts.tile {
        Some(_) => grid.row_band(rows.start, rows.end),
        None => grid.clone(),
    };
    let (threads, pool) = thread_pool(opts.threads)?;
    // Each map is written (and its tiles compressed) on a thread of its own while streaming;
    // the final COG copies compress on `threads` threads each.
    let format = MapFormat {
        block_px: block,
        compression: opts.compression.unwrap_or(scene.output.compression),
        layout: opts.layout.unwrap_or(scene.output.layout),
        write_threads: 1,
        copy_threads: threads,
    };
    let setup = RunSetup {
        models,
        model,
        restoration,
        space,
        grid,
        out_grid,
        rows,
        block,
        out_dir,
        format,
        threads,
        pool,
        warnings,
    };
    Ok((setup, inputs))
}

/// Creates the run's maps under temporary names, with their metadata.
fn create_maps(scene: &Scene, s: &RunSetup) -> Result<Writers> {
    let metadata = provenance(scene, &s.models);
    let float_map = |file: &str, description: String, unit: &str, md: &[(String, String)]| {
        MapWriter::create(
            &s.out_dir,
            MapSpec {
                file_name: file.into(),
                description,
                unit: unit.into(),
                categorical: false,
            },
            &s.out_grid,
            s.format,
            md,
        )
    };
    let stock = float_map(
        MAP_FILES[0],
        "carbon stock density".into(),
        "t C/ha",
        &metadata,
    )?;
    let sink = float_map(
        MAP_FILES[1],
        "annual net CO2 removal (positive = uptake)".into(),
        "t CO2/ha/yr",
        &metadata,
    )?;
    let restoration = match &s.restoration {
        Some(r) => {
            let (a, b) = scene.restoration_period();
            let mut md = metadata.clone();
            md.push(("SINKMAP_RESTORATION_PERIOD".into(), format!("{a}-{b}")));
            let potential = float_map(
                POTENTIAL_FILES[0],
                format!(
                    "mean additional annual CO2 removal of the best eligible intervention, {a}-{b}"
                ),
                "t CO2/ha/yr",
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
            let classes = crate::raster::categories::from_legend(&legend);
            md.push(("SINKMAP_LEGEND".into(), legend));
            let best = MapWriter::<BestMode>::create_typed(
                &s.out_dir,
                MapSpec {
                    file_name: POTENTIAL_FILES[1].into(),
                    description:
                        "best eligible restoration intervention (code; see SINKMAP_LEGEND)".into(),
                    unit: String::new(),
                    categorical: true,
                },
                &s.out_grid,
                s.format,
                &md,
                BEST_NODATA as f64,
            )?
            .with_categories(classes, &s.out_grid);
            Some((potential, best))
        }
        None => None,
    };
    Ok(RunMaps {
        stock,
        sink,
        restoration,
    })
}

/// An empty cube that knows the names of the grid, the zones and the outside.
pub(crate) fn new_cube(zones: Option<&ZoneSet>) -> Cube {
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
    cube
}

/// What the streaming pass of a run returns.
struct Streamed {
    maps: Writers,
    cube: Cube,
    nodata_area: i128,
    stages: StageSeconds,
}

/// The run on the engine: scene layers in; per block, the models evaluated, the cohort sums
/// and the maps' overview levels; reduced in window order into the cube and the map writers.
fn stream(
    scene: &Scene,
    s: &RunSetup,
    inputs: SceneInputs,
    maps: Writers,
    zones: Option<&ZoneSet>,
    progress: bool,
) -> Result<Streamed> {
    let SceneInputs {
        sources,
        slots,
        paths,
        ..
    } = inputs;
    let windows = s.grid.windows(s.block, s.rows.clone());
    let batch = (s.threads * 2).max(2);
    let bar = crate::progress::bar(progress, (s.grid.width * s.rows.len()) as u64, "pixels");
    let row_areas = s.grid.row_areas_ha();
    let ctx = BlockContext {
        model: &s.model,
        restoration: s.restoration.as_ref(),
        space: &s.space,
        age_shift_yr: scene.age_shift_yr(),
        grid: &s.grid,
        row_areas_ha: &row_areas,
        zones,
    };
    let row0 = s.rows.start;
    let plan = maps.stock.plan().clone();
    let mut sinks = RunMaps {
        stock: MapSink::start(maps.stock, batch)?,
        sink: MapSink::start(maps.sink, batch)?,
        restoration: match maps.restoration {
            Some((p, b)) => Some((MapSink::start(p, batch)?, MapSink::start(b, batch)?)),
            None => None,
        },
    };
    let mut cube = new_cube(zones);
    let mut nodata_area = 0i128;
    let pass = Pass {
        pool: &s.pool,
        windows: &windows,
        batch,
        progress: Some(&bar),
    };
    let compute = |b: &Block| {
        let out = compute_block(&ctx, &slots.view(b))
            .map_err(|(col, row, e)| paths.pixel_error(col, row, e))?;
        let levels = block_levels(&plan, row0, &out);
        Ok((out, levels))
    };
    let reduce = |(out, l): (BlockOutput, MapLevels)| {
        let local = Window {
            row: out.window.row - row0,
            ..out.window
        };
        add_block_to_cube(&mut cube, &s.space, zones, &out);
        sinks.stock.send(local, out.stock, l.stock)?;
        sinks.sink.send(local, out.sink, l.sink)?;
        if let (Some((tp, tb)), Some(lp), Some(lb)) =
            (sinks.restoration.as_mut(), l.potential, l.best)
        {
            tp.send(local, out.potential, lp)?;
            tb.send(local, out.best, lb)?;
        }
        nodata_area += out.nodata_area;
        Ok(())
    };
    let busy = engine::run(&pass, sources, compute, reduce)?;
    bar.finish_and_clear();
    let (stock, t_stock) = sinks.stock.finish()?;
    let (sink, t_sink) = sinks.sink.finish()?;
    let mut map_busy = t_stock + t_sink;
    let restoration = match sinks.restoration {
        Some((p, b)) => {
            let ((p, t_p), (b, t_b)) = (p.finish()?, b.finish()?);
            map_busy += t_p + t_b;
            Some((p, b))
        }
        None => None,
    };
    Ok(Streamed {
        maps: RunMaps {
            stock,
            sink,
            restoration,
        },
        cube,
        nodata_area,
        stages: StageSeconds {
            read: busy.read,
            compute: busy.compute,
            write: busy.reduce + map_busy,
            finish: 0.0,
        },
    })
}

/// Finishes the maps side by side (each a separate GDAL dataset) into complete temporary
/// files. Rayon halves the list between the threads: [stock, potential | sink, best] pairs a
/// large map with a smaller one on each side.
fn finish_maps(pool: &rayon::ThreadPool, maps: Writers) -> Result<Vec<(TempFile, PathBuf)>> {
    type Finish = Box<dyn FnOnce() -> Result<(TempFile, PathBuf)> + Send>;
    let RunMaps {
        stock,
        sink,
        restoration,
    } = maps;
    let mut jobs: Vec<Finish> = vec![Box::new(move || stock.finish())];
    let sink_job: Finish = Box::new(move || sink.finish());
    match restoration {
        Some((p, b)) => {
            jobs.push(Box::new(move || p.finish()));
            jobs.push(sink_job);
            jobs.push(Box::new(move || b.finish()));
        }
        None => jobs.push(sink_job),
    }
    let finished: Vec<Result<(TempFile, PathBuf)>> =
        pool.install(|| jobs.into_par_iter().map(|f| f()).collect());
    finished.into_iter().collect()
}

/// Runs a scene end to end and publishes its outputs in the output directory.
pub fn run(scene: &Scene, opts: &RunOptions, zones: Option<&ZoneSet>) -> Result<RunOutcome> {
    let started = Instant::now();
    bound_gdal_cache();
    tune_allocator();
    let (s, inputs) = setup(scene, opts, zones)?;
    let maps = create_maps(scene, &s)?;
    let Streamed {
        maps,
        cube,
        nodata_area,
        mut stages,
    } = stream(scene, &s, inputs, maps, zones, opts.progress)?;
    // Everything computed: finish the files under temporary names, then publish.
    let finish_started = Instant::now();
    let pending = finish_maps(&s.pool, maps)?;
    stages.finish = finish_started.elapsed().as_secs_f64();
    let elapsed = started.elapsed().as_secs_f64();
    let mut summary = summary::build(
        scene,
        &s.models,
        &s.out_grid,
        &cube,
        zones,
        &summary::RunFacts {
            nodata_area_ha: cube::dequantize(nodata_area),
            threads: s.threads,
            block_size_px: s.block,
            seconds: elapsed,
        },
    );
    summary.tile = opts.tile.map(|(i, n)| format!("{i}/{n}"));
    summary.run.stage_seconds = stages;
    let outputs = publish(&s.out_dir, pending, &summary, &cube, zones, &s.models)?;
    Ok(RunOutcome {
        summary,
        cube,
        outputs,
        output_dir: s.out_dir,
        warnings: s.warnings,
    })
}

/// Metadata written into every map: units, provenance.
pub(crate) fn provenance(scene: &Scene, models: &Models) -> Vec<(String, String)> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::pixel::test_model;
    use crate::model::Pools;

    /// A 1-degree-pixel grid (rows of different areas) of `w` × `h`.
    fn grid(w: usize, h: usize) -> Grid {
        Grid {
            width: w,
            height: h,
            geo_transform: [80.0, 0.01, 0.0, 45.0, 0.0, -0.01],
            crs_wkt: String::new(),
            area: crate::grid::AreaModel::Geographic {
                semi_major_m: 6_378_137.0,
                semi_minor_m: 6_356_752.314_245,
                radians_per_unit: std::f64::consts::PI / 180.0,
            },
        }
    }

    /// The cohorts of the test model.
    fn space(model: &PixelModel) -> CohortSpace {
        CohortSpace {
            forest_types: vec!["spruce".into(), "poplar".into()],
            desert_subtypes: vec!["dune".into(), "gobi".into()],
            max_age_yr: model.max_age_yr(),
            interventions: Vec::new(),
        }
    }

    #[test]
    fn a_block_sums_exactly_what_its_pixels_sum_one_by_one() {
        let model = test_model::model(Pools::default(), None);
        let space = space(&model);
        let (w, h) = (37, 23);
        let g = grid(w, h);
        let row_areas = g.row_areas_ha();
        // Long runs of equal pixels (which the block adds at once) and changes between them.
        let n = w * h;
        let landcover: Vec<Option<i32>> = (0..n)
            .map(|i| match (i / 5) % 6 {
                0 => None,
                k => Some(k.min(4) as i32),
            })
            .collect();
        let age: Vec<Option<f64>> = (0..n)
            .map(|i| ((i / 3) % 4 != 0).then_some(((i / 7) % 30) as f64 + 0.4))
            .collect();
        let forest_type: Vec<Option<i32>> =
            (0..n).map(|i| ((i / 11) % 3 == 0).then_some(8)).collect();
        let desert: Vec<Option<i32>> = (0..n).map(|i| Some(1 + ((i / 13) % 2) as i32)).collect();
        let window = Window {
            col: 0,
            row: 0,
            width: w,
            height: h,
        };
        let input = BlockInput {
            window,
            landcover: &landcover,
            age: &age,
            forest_type: &forest_type,
            desert: &desert,
            masks: Vec::new(),
        };
        let ctx = BlockContext {
            model: &model,
            restoration: None,
            space: &space,
            age_shift_yr: 3,
            grid: &g,
            row_areas_ha: &row_areas,
            zones: None,
        };
        let out = compute_block(&ctx, &input).unwrap();
        // The naive version: every pixel evaluated and added on its own.
        let mut acc = vec![Acc::ZERO; space.len()];
        let mut nodata = 0i128;
        for i in 0..n {
            let row = i / w;
            let Some(code) = landcover[i] else {
                nodata += cube::quantize(row_areas[row]);
                assert!(out.stock[i].is_nan() && out.sink[i].is_nan());
                continue;
            };
            let v = model
                .evaluate_observed(code, age[i], 3.0, forest_type[i], desert[i])
                .unwrap();
            cube::add_pixels(&mut acc[space.index(&v)], &v, row_areas[row], 1);
            assert_eq!(out.stock[i], v.stock_tc_per_ha as f32, "pixel {i}");
            assert_eq!(out.sink[i], v.sink_tco2_per_ha_yr as f32, "pixel {i}");
        }
        assert!(
            acc.iter().filter(|a| a.area != 0).count() > 5,
            "too few cohorts"
        );
        assert_eq!(out.grid_acc, acc);
        assert_eq!(out.nodata_area, nodata);
        assert!(out.zone_acc.is_empty() && out.outside_acc.is_none());
    }

    #[test]
    fn a_bad_pixel_is_reported_with_its_grid_position() {
        let model = test_model::model(Pools::default(), None);
        let space = space(&model);
        let g = grid(20, 20);
        let row_areas = g.row_areas_ha();
        let mut landcover = vec![Some(4); 16];
        landcover[6] = Some(99);
        let input = BlockInput {
            window: Window {
                col: 8,
                row: 4,
                width: 4,
                height: 4,
            },
            landcover: &landcover,
            age: &[],
            forest_type: &[],
            desert: &[],
            masks: Vec::new(),
        };
        let ctx = BlockContext {
            model: &model,
            restoration: None,
            space: &space,
            age_shift_yr: 0,
            grid: &g,
            row_areas_ha: &row_areas,
            zones: None,
        };
        let Err((col, row, e)) = compute_block(&ctx, &input) else {
            panic!("accepted a bad code")
        };
        assert_eq!((col, row, e), (10, 5, PixelError::UnknownLandcoverCode(99)));
    }
}
