//! The `run` (and `zonal`) pass: the scene's layers in, the per-pixel models evaluated block
//! by block on the block engine ([`crate::engine`]), out the stock, sink and restoration maps
//! (each written on a thread of its own), the cohort cube with its zone sums, then every
//! output published by renaming complete temporary files.

use std::mem::MaybeUninit;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;

use crate::config::{Compression, Layout, Models, Scene};
use crate::coverage::Coverage;
use crate::cube::{self, Acc, CohortSpace, Cube, GRID_ZONE, OUTSIDE_ZONE};
use crate::engine::{self, recycle, Block, MapSink, Pass, Source};
use crate::error::{Error, Result, Warning};
use crate::grid::{Grid, Window};
use crate::model::pixel::{PixelError, PixelModel, PixelValue};
use crate::model::restoration::RestorationModel;
use crate::raster::overview::{self, BlockLevels, Mean, Mode, Plan, Pyramid};
use crate::raster::writer::{self, MapFormat, MapSpec, MapWriter, TempFile};
use crate::raster::{reference_grid, Layer, LayerKind, Narrow, NarrowKind};
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
    /// The layers read narrow ([`Source::Narrow`]), with their key tables.
    packed: Vec<KeyTable>,
}

/// What a layer read narrow stands for among a pixel's raw inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Landcover,
    Age,
    ForestType,
    Desert,
    /// The mask of this bit.
    Mask(u32),
}

/// The [`key`] field of every value of a narrow layer (0 where the value is nodata), and
/// which values are nodata: building a pixel's key is then one table lookup per layer, and
/// the values are never widened. A table gives exactly what the key functions give for the
/// value as [`Layer::read_codes`] or [`Layer::read_values`] would have read it.
#[derive(Debug, Clone)]
pub(crate) struct KeyTable {
    /// The engine source the layer is read from.
    source: usize,
    role: Role,
    kind: NarrowKind,
    fields: Vec<u64>,
    nodata: Vec<bool>,
}

impl KeyTable {
    /// The table of `layer` (`None` when its type is not narrow).
    pub(crate) fn of_layer(layer: &Layer, source: usize, role: Role) -> Option<KeyTable> {
        let kind = layer.narrow_kind()?;
        Some(KeyTable::new(kind, |v| layer.is_nodata(v), source, role))
    }

    /// The table of a layer of type `kind` whose nodata values are those `is_nodata` says.
    fn new(kind: NarrowKind, is_nodata: impl Fn(f64) -> bool, source: usize, role: Role) -> Self {
        let nodata: Vec<bool> = (0..kind.values())
            .map(|i| is_nodata(kind.value_at(i) as f64))
            .collect();
        let fields = (0..kind.values())
            .map(|i| {
                let v = (!nodata[i]).then(|| kind.value_at(i));
                match role {
                    Role::Landcover => key::landcover(v),
                    Role::Age => key::age(v.map(f64::from)),
                    Role::ForestType => key::class_code(v, key::FT_SHIFT),
                    Role::Desert => key::class_code(v, key::DS_SHIFT),
                    Role::Mask(bit) => match v {
                        Some(x) if x != 0 => key::masks(1u32 << bit),
                        _ => 0,
                    },
                }
            })
            .collect();
        KeyTable {
            source,
            role,
            kind,
            fields,
            nodata,
        }
    }

    /// The value of pixel `i` of `raw` (`None` where it is nodata).
    #[inline]
    fn decode(&self, raw: &Narrow, i: usize) -> Option<i32> {
        self.decode_index(raw.index(i))
    }

    /// The value stored as table index `x` (`None` where it is nodata).
    #[inline]
    fn decode_index(&self, x: usize) -> Option<i32> {
        (!self.nodata.get(x).copied().unwrap_or(true)).then(|| self.kind.value_at(x))
    }
}

/// A layer of a block as read narrow, with its table.
pub(crate) struct Packed<'a> {
    raw: &'a Narrow,
    table: &'a KeyTable,
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
    /// The layers read narrow (each absent from the fields above).
    pub(crate) packed: Vec<Packed<'a>>,
}

impl BlockInput<'_> {
    /// The land-cover code of pixel `i` (`None`: nodata).
    fn landcover_at(&self, i: usize) -> Option<i32> {
        if let Some(c) = self.landcover.get(i) {
            return *c;
        }
        self.packed
            .iter()
            .find(|p| p.table.role == Role::Landcover)
            .and_then(|p| p.table.decode(p.raw, i))
    }
}

impl Slots {
    /// The scene's view of an engine block.
    pub(crate) fn view<'a>(&'a self, b: &'a Block) -> BlockInput<'a> {
        let mut masks = Vec::new();
        let packed: Vec<Packed> = self
            .packed
            .iter()
            .filter_map(|table| {
                let raw = b.narrow(Some(table.source))?;
                Some(Packed { raw, table })
            })
            .collect();
        let mask_codes: Vec<(usize, &[Option<i32>])> = self
            .masks
            .clone()
            .enumerate()
            .map(|(bit, k)| (bit, b.codes(Some(k))))
            .filter(|(_, c)| !c.is_empty())
            .collect();
        if !mask_codes.is_empty() {
            masks = vec![0; b.window.len()];
            for (bit, codes) in mask_codes {
                set_mask_bit(&mut masks, codes, bit);
            }
        }
        BlockInput {
            window: b.window,
            landcover: b.codes(Some(0)),
            age: b.values(self.age),
            forest_type: b.codes(self.forest_type),
            desert: b.codes(self.desert),
            masks,
            packed,
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
    /// Cohort sums of the whole grid, then of each zone touched (zone index, sums).
    grid_acc: BlockAcc,
    zone_acc: Vec<(usize, BlockAcc)>,
    outside_acc: Option<BlockAcc>,
    pub(crate) nodata_area: i128,
}

/// Where the sums of pixels go: an entry of the dense cohort space ([`CohortSpace::index`],
/// [`CohortSpace::eligibility_index`]) to add to.
trait AccAt {
    /// The sums of entry `idx` (zero until added to).
    fn at(&mut self, idx: usize) -> &mut Acc;
}

/// Dense sums of every entry: the tests' pixel-by-pixel reference loops.
#[cfg(test)]
impl AccAt for Vec<Acc> {
    #[inline]
    fn at(&mut self, idx: usize) -> &mut Acc {
        &mut self[idx]
    }
}

/// A block's sums per entry of the cohort space, kept sparse: the space has an entry per
/// forest type and stand age (thousands), a block touches a few hundred, and dense sums of
/// 96 bytes an entry cost a zeroed vector, a copy per whole zone and a walk of every entry
/// per block and zone (about 1 MB a block on the bench scene). Adding is in integers, so
/// the order of the entries changes no sum.
#[derive(Debug, Clone)]
pub(crate) struct BlockAcc {
    /// Position + 1 in `entries` of each entry of the space (0: not added to yet).
    pos: Vec<u32>,
    /// The entries added to, in first-added order: (entry index, sums).
    entries: Vec<(u32, Acc)>,
}

impl BlockAcc {
    /// No sums yet, over a space of `len` entries.
    fn new(len: usize) -> BlockAcc {
        BlockAcc {
            pos: vec![0; len],
            entries: Vec::new(),
        }
    }

    /// The entries added to, with their sums.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (usize, &Acc)> {
        self.entries.iter().map(|(i, a)| (*i as usize, a))
    }

    /// The sums as a dense vector of every entry of a space of `len` entries.
    #[cfg(test)]
    fn dense(&self, len: usize) -> Vec<Acc> {
        let mut d = vec![Acc::ZERO; len];
        for (i, a) in self.entries() {
            d[i] = *a;
        }
        d
    }
}

impl AccAt for BlockAcc {
    #[inline]
    fn at(&mut self, idx: usize) -> &mut Acc {
        let p = match self.pos[idx] {
            0 => {
                self.entries.push((idx as u32, Acc::ZERO));
                self.pos[idx] = self.entries.len() as u32;
                self.entries.len() - 1
            }
            p => p as usize - 1,
        };
        &mut self.entries[p].1
    }
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

/// The overview pyramids of one block's maps, built as the block's rows are computed.
struct MapPyramids {
    stock: Pyramid<Mean>,
    sink: Pyramid<Mean>,
    /// With a restoration catalogue.
    restoration: Option<(Pyramid<Mean>, Pyramid<BestMode>)>,
}

/// Rows of a block handed to its pyramids at a time: enough to call the clock rarely, few
/// enough (about 100 kB of four maps 512 px wide) to be reduced from the second-level cache.
const PYRAMID_ROWS: usize = 16;

impl MapPyramids {
    /// The pyramids of the block at `w` (in the maps' coordinates), or `None` where
    /// [`Pyramid::new`] has none (the block is reduced whole after it is computed).
    fn new(plan: &Plan, w: Window, restoration: bool) -> Option<MapPyramids> {
        Some(MapPyramids {
            stock: Pyramid::new(plan, w)?,
            sink: Pyramid::new(plan, w)?,
            restoration: match restoration {
                true => Some((Pyramid::new(plan, w)?, Pyramid::new(plan, w)?)),
                false => None,
            },
        })
    }

    fn add(&mut self, rows: DoneRows<'_>) {
        self.stock.add_rows(rows.stock);
        self.sink.add_rows(rows.sink);
        if let Some((potential, best)) = self.restoration.as_mut() {
            potential.add_rows(rows.potential);
            best.add_rows(rows.best);
        }
    }

    fn finish(self) -> MapLevels {
        let (potential, best) = match self.restoration {
            Some((p, b)) => (Some(p.finish()), Some(b.finish())),
            None => (None, None),
        };
        MapLevels {
            stock: self.stock.finish(),
            sink: self.sink.finish(),
            potential,
            best,
        }
    }
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
    // Branch-free (None and Some(0) give 0), so that the loop vectorizes.
    for (dst, c) in bits.iter_mut().zip(codes) {
        *dst |= ((c.unwrap_or(0) != 0) as u32) << bit;
    }
}

/// Value of `best_intervention.tif` where the land cover is nodata.
pub const BEST_NODATA: u8 = 255;

/// Adds the eligibility rows of `n` equal pixels (each eligible intervention, and the best
/// one), each of `area` (with its quantized value), looking each row up from the pixel's
/// eligibility bits: the tests' reference for [`Evaluated::rows`].
#[cfg(test)]
fn add_restoration<A: AccAt + ?Sized>(
    acc: &mut A,
    space: &CohortSpace,
    r: &RestorationModel,
    ev: &Evaluated,
    area: Area,
    n: i128,
) {
    let (v, elig, best_j) = (ev.v, ev.elig, ev.best_j);
    let Some(class) = v.class else { return };
    if elig == 0 {
        return;
    }
    for j in 0..r.len() {
        if elig & (1 << j) != 0 {
            cube::add_eligible_q(
                acc.at(space.eligibility_index(class, v.desert_subtype, j)),
                area.ha,
                area.q,
                r.mean_gain[j],
                n,
            );
        }
    }
    if let Some(j) = best_j {
        cube::add_eligible_q(
            acc.at(space.eligibility_index(class, v.desert_subtype, r.len())),
            area.ha,
            area.q,
            r.mean_gain[j],
            n,
        );
    }
}

/// A pixel area (ha) and its quantized value ([`cube::quantize`]), computed once for all the
/// sums it enters.
#[derive(Clone, Copy)]
struct Area {
    ha: f64,
    q: i128,
}

impl Area {
    #[inline]
    fn new(ha: f64) -> Area {
        Area {
            ha,
            q: cube::quantize(ha),
        }
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
    /// A hash for [`Memo`]'s cache of escaped pixels (multiply-xorshift over the fields).
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

    /// The raw inputs of pixel `i` of a block whose land cover there is `code`.
    fn at(b: &BlockInput, i: usize, code: i32) -> RawPixel {
        let mut raw = RawPixel {
            code,
            age_bits: b.age.get(i).copied().flatten().map(f64::to_bits),
            forest_type: b.forest_type.get(i).copied().flatten(),
            desert: b.desert.get(i).copied().flatten(),
            masks: b.masks.get(i).copied().unwrap_or(0),
        };
        for p in &b.packed {
            raw.set(p.table.role, p.table.decode(p.raw, i));
        }
        raw
    }

    /// Sets the input of `role` (not the land cover) to `v`.
    #[inline]
    fn set(&mut self, role: Role, v: Option<i32>) {
        match role {
            Role::Landcover => {}
            Role::Age => self.age_bits = v.map(|a| f64::from(a).to_bits()),
            Role::ForestType => self.forest_type = v,
            Role::Desert => self.desert = v,
            Role::Mask(bit) => self.masks |= u32::from(v.unwrap_or(0) != 0) << bit,
        }
    }
}

/// How a block's pixel keys are made.
enum KeyLayout {
    /// Fields of decoded values ([`key`]): any mix of layers read narrow and widened.
    Fields,
    /// *Stored keys*: when every layer of the block is read narrow and their stored values
    /// fit side by side in 63 bits, a pixel's key is those bits (layer j shifted by
    /// `shifts[j]`, in the order of [`BlockInput::packed`]). No table is looked at per pixel;
    /// a key is decoded through the layers' tables once, when its evaluation is first needed.
    Stored { shifts: Vec<u32> },
}

impl KeyLayout {
    /// The layout for block `b`: stored keys where they fit, else fields.
    fn of(b: &BlockInput) -> KeyLayout {
        let widened = [
            b.landcover.len(),
            b.age.len(),
            b.forest_type.len(),
            b.desert.len(),
            b.masks.len(),
        ];
        if widened != [0; 5] || !b.packed.iter().any(|p| p.table.role == Role::Landcover) {
            return KeyLayout::Fields;
        }
        let mut shifts = Vec::with_capacity(b.packed.len());
        let mut used = 0;
        for p in &b.packed {
            shifts.push(used);
            used += p.raw.bits();
        }
        if used <= 63 {
            KeyLayout::Stored { shifts }
        } else {
            KeyLayout::Fields
        }
    }

    /// The raw inputs of a non-escaped `key` of block `b` (`None`: its land cover is nodata).
    fn decode(&self, b: &BlockInput, key: u64) -> Option<RawPixel> {
        match self {
            KeyLayout::Fields => (key & key::LC_MASK != 0).then(|| key::unpack(key)),
            KeyLayout::Stored { shifts } => {
                let mut raw = RawPixel {
                    code: 0,
                    age_bits: None,
                    forest_type: None,
                    desert: None,
                    masks: 0,
                };
                for (p, &shift) in b.packed.iter().zip(shifts) {
                    let x = ((key >> shift) & ((1u64 << p.raw.bits()) - 1)) as usize;
                    let v = p.table.decode_index(x);
                    if p.table.role == Role::Landcover {
                        raw.code = v?;
                    } else {
                        raw.set(p.table.role, v);
                    }
                }
                Some(raw)
            }
        }
    }
}

/// A pixel's raw inputs packed into one `u64` (its *key*), so that the hot loop compares and
/// hashes one word instead of five optional fields. Each field holds its value + 1 (0 = none):
/// land-cover code in bits 0–11 (0 = nodata), age in 12–25 (whole years ≥ 0 only), forest
/// type in 26–35, desert subtype in 36–45, mask bits in 46–62. A value that does not fit (a
/// large or negative code, an age that is not a whole non-negative number, a 18th mask bit)
/// sets bit 63 instead: such an *escaped* pixel takes the general path ([`RawPixel`]).
/// Packing is one-to-one on what fits, so equal keys are equal raw inputs.
mod key {
    pub(super) const ESCAPE: u64 = 1 << 63;
    pub(super) const LC_BITS: u32 = 12;
    pub(super) const LC_MASK: u64 = (1 << LC_BITS) - 1;
    pub(super) const AGE_SHIFT: u32 = 12;
    const AGE_BITS: u32 = 14;
    pub(super) const FT_SHIFT: u32 = 26;
    pub(super) const DS_SHIFT: u32 = 36;
    const CODE_BITS: u32 = 10;
    const MASK_SHIFT: u32 = 46;
    const MASK_BITS: u32 = 17;

    /// The field of an optional code of `bits` bits at `shift` (branch-free, so that the
    /// loops over a block's pixels vectorize).
    #[inline]
    fn code(v: Option<i32>, bits: u32, shift: u32) -> u64 {
        let (some, x) = (v.is_some(), v.unwrap_or(0) as u32);
        let fits = x < (1 << bits) - 1;
        (((x as u64 + 1) << shift) & 0u64.wrapping_sub((some & fits) as u64))
            | (((some & !fits) as u64) << 63)
    }

    /// The land-cover field.
    #[inline]
    pub(super) fn landcover(v: Option<i32>) -> u64 {
        code(v, LC_BITS, 0)
    }

    /// The field of a forest-type or desert-subtype code at `shift`.
    #[inline]
    pub(super) fn class_code(v: Option<i32>, shift: u32) -> u64 {
        code(v, CODE_BITS, shift)
    }

    /// The age field: whole, non-negative years (bit for bit, so −0 escapes; branch-free).
    #[inline]
    pub(super) fn age(v: Option<f64>) -> u64 {
        let (some, a) = (v.is_some(), v.unwrap_or(0.0));
        let k = a as u32; // saturating: NaN and negatives give 0, then differ below
        let fits = k < (1 << AGE_BITS) - 1 && (k as f64).to_bits() == a.to_bits();
        (((k as u64 + 1) << AGE_SHIFT) & 0u64.wrapping_sub((some & fits) as u64))
            | (((some & !fits) as u64) << 63)
    }

    /// The mask field.
    #[inline]
    pub(super) fn masks(m: u32) -> u64 {
        let fits = m < 1 << MASK_BITS;
        ((m as u64) << MASK_SHIFT) & 0u64.wrapping_sub(fits as u64) | ((!fits as u64) << 63)
    }

    /// The optional field at `shift` (value − 1, `None` for 0).
    #[inline]
    fn field(key: u64, shift: u32, bits: u32) -> Option<u64> {
        match (key >> shift) & ((1 << bits) - 1) {
            0 => None,
            v => Some(v - 1),
        }
    }

    /// The raw inputs a (non-escaped, non-nodata) key packs.
    pub(super) fn unpack(key: u64) -> super::RawPixel {
        super::RawPixel {
            code: ((key & LC_MASK) - 1) as i32,
            age_bits: field(key, AGE_SHIFT, AGE_BITS).map(|a| (a as f64).to_bits()),
            forest_type: field(key, FT_SHIFT, CODE_BITS).map(|v| v as i32),
            desert: field(key, DS_SHIFT, CODE_BITS).map(|v| v as i32),
            masks: ((key >> MASK_SHIFT) & ((1 << MASK_BITS) - 1)) as u32,
        }
    }
}

/// The keys of a block's pixels, one per pixel: the stored bits of each layer side by side
/// for [`KeyLayout::Stored`], else the fields ([`fill_field_keys`]), strip by strip. The run
/// loop builds stored keys per run instead ([`stored_run_starts`], [`stored_run_keys`]);
/// the tests check those against these.
#[cfg(test)]
fn pixel_keys(b: &BlockInput, layout: &KeyLayout) -> Vec<u64> {
    let mut keys = vec![0u64; b.window.len()];
    for (s, strip) in keys.chunks_mut(KEY_STRIP_PX).enumerate() {
        match layout {
            KeyLayout::Stored { shifts } => {
                for (p, &shift) in b.packed.iter().zip(shifts) {
                    p.raw.or_shifted(s * KEY_STRIP_PX, shift, strip);
                }
            }
            KeyLayout::Fields => fill_field_keys(b, s * KEY_STRIP_PX, strip),
        }
    }
    keys
}

/// The field keys ([`key`]) of the pixels `start..start + keys.len()` of block `b` into
/// `keys` (whatever it held): one pass over all the layers when the block has them all
/// widened (each input read once, each key written once), else one pass per layer (a table
/// lookup per pixel for a layer read narrow).
fn fill_field_keys(b: &BlockInput, start: usize, keys: &mut [u64]) {
    keys.fill(0);
    let r = start..start + keys.len();
    let n = b.window.len();
    if [
        b.landcover.len(),
        b.age.len(),
        b.forest_type.len(),
        b.desert.len(),
        b.masks.len(),
    ] == [n; 5]
        && b.packed.is_empty()
    {
        let layers = part(b.landcover, &r)
            .iter()
            .zip(part(b.age, &r))
            .zip(part(b.forest_type, &r))
            .zip(part(b.desert, &r))
            .zip(part(&b.masks, &r));
        for (k, ((((&c, &a), &t), &d), &m)) in keys.iter_mut().zip(layers) {
            *k = key::landcover(c)
                | key::age(a)
                | key::class_code(t, key::FT_SHIFT)
                | key::class_code(d, key::DS_SHIFT)
                | key::masks(m);
        }
        return;
    }
    for (k, &c) in keys.iter_mut().zip(part(b.landcover, &r)) {
        *k |= key::landcover(c);
    }
    for p in &b.packed {
        p.raw.or_from_table(&p.table.fields, r.start, keys);
    }
    for (k, &a) in keys.iter_mut().zip(part(b.age, &r)) {
        *k |= key::age(a);
    }
    for (k, &t) in keys.iter_mut().zip(part(b.forest_type, &r)) {
        *k |= key::class_code(t, key::FT_SHIFT);
    }
    for (k, &d) in keys.iter_mut().zip(part(b.desert, &r)) {
        *k |= key::class_code(d, key::DS_SHIFT);
    }
    for (k, &m) in keys.iter_mut().zip(part(&b.masks, &r)) {
        *k |= key::masks(m);
    }
}

/// Pixels of a strip of [`pixel_keys`] (32 KiB of keys).
#[cfg(test)]
const KEY_STRIP_PX: usize = 4096;

/// The part `r` of a layer's values (empty for an absent layer).
fn part<'a, T>(v: &'a [T], r: &Range<usize>) -> &'a [T] {
    v.get(r.clone()).unwrap_or_default()
}

/// What the models say of one pixel, restoration included, and where its sums go.
struct Evaluated {
    v: PixelValue,
    /// The interventions the pixel is eligible for (bit j: intervention j), and the best of
    /// them: what [`Evaluated::rows`] are made of (the tests' reference sums start again from
    /// them).
    #[cfg_attr(not(test), allow(dead_code))]
    elig: u32,
    #[cfg_attr(not(test), allow(dead_code))]
    best_j: Option<usize>,
    /// Its entry of the cohort space ([`CohortSpace::index`]).
    cohort: usize,
    /// Its eligibility rows: (entry of the space, potential t CO₂/ha/yr) of each eligible
    /// intervention, then of the best one. Looked up once per evaluation: the sums add them
    /// once a row per evaluation on a lon/lat grid (about 14 million times on the bench
    /// scene, against 130 000 evaluations).
    rows: Box<[(usize, f64)]>,
}

impl Evaluated {
    /// The evaluation of a pixel of values `v`, eligible for `elig` (best `best_j`) under
    /// `restoration`, in `space`.
    fn new(
        v: PixelValue,
        elig: u32,
        best_j: Option<usize>,
        space: &CohortSpace,
        restoration: Option<&RestorationModel>,
    ) -> Evaluated {
        let rows = match (restoration, v.class) {
            (Some(r), Some(class)) if elig != 0 => {
                let row = |j: usize, gain_j: usize| {
                    (
                        space.eligibility_index(class, v.desert_subtype, j),
                        r.mean_gain[gain_j],
                    )
                };
                let eligible = (0..r.len()).filter(|j| elig & (1 << j) != 0);
                eligible
                    .map(|j| row(j, j))
                    .chain(best_j.map(|j| row(r.len(), j)))
                    .collect()
            }
            _ => Box::default(),
        };
        Evaluated {
            v,
            elig,
            best_j,
            cohort: space.index(&v),
            rows,
        }
    }
}

/// The distinct evaluations of a block: a pixel is evaluated once per distinct raw input
/// (the model is pure, so the values are the same bits), and known by an id.
struct Memo<'a> {
    ctx: &'a BlockContext<'a>,
    /// Distinct evaluations, by id.
    evs: Vec<Evaluated>,
    /// Map values of each id: stock, sink, potential, best code.
    values: Vec<(f32, f32, f32, u8)>,
    /// A direct-mapped cache key → id ([`NODATA_ID`] for a key whose land cover is nodata;
    /// `EMPTY_KEY`, which no key equals, marks an empty slot; an evicted input is evaluated
    /// again under a new id, and equal evaluations under two ids sum to the same integers).
    keyed: Vec<(u64, u32)>,
    /// The same for escaped pixels, by their raw inputs (allocated at the first one).
    slots: Vec<Option<(RawPixel, u32)>>,
}

/// Slots of [`Memo`]'s caches (powers of two).
const MEMO_KEY_BITS: u32 = 11;
const MEMO_SLOTS: usize = 1024;

/// Id of the pixels whose land cover is nodata.
const NODATA_ID: u32 = u32::MAX;

/// An empty slot of [`Memo`]'s key cache: bit 63 set and every other bit too, which neither
/// a stored key (63 bits) nor a looked-up field key (not escaped) can be.
const EMPTY_KEY: u64 = u64::MAX;

impl<'a> Memo<'a> {
    fn new(ctx: &'a BlockContext<'a>) -> Self {
        Memo {
            ctx,
            evs: Vec::new(),
            values: Vec::new(),
            keyed: vec![(EMPTY_KEY, 0); 1 << MEMO_KEY_BITS],
            slots: Vec::new(),
        }
    }

    /// Evaluates `raw` under a new id.
    fn evaluate(&mut self, raw: RawPixel) -> std::result::Result<u32, PixelError> {
        let ctx = self.ctx;
        let v = ctx.model.evaluate_observed(
            raw.code,
            raw.age_bits.map(f64::from_bits),
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
        let ev = Evaluated::new(v, elig, best_j, ctx.space, ctx.restoration);
        self.evs.push(ev);
        self.values.push((
            v.stock_tc_per_ha as f32,
            v.sink_tco2_per_ha_yr as f32,
            potential,
            best,
        ));
        Ok(id)
    }

    /// The id of a (non-escaped) key's evaluation, evaluated on first sight from the raw
    /// inputs `decode` gives ([`NODATA_ID`] where it gives none).
    #[inline]
    fn id_of_key(
        &mut self,
        key: u64,
        decode: impl Fn(u64) -> Option<RawPixel>,
    ) -> std::result::Result<u32, PixelError> {
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        let slot = ((key ^ (key >> 29)).wrapping_mul(K) >> (64 - MEMO_KEY_BITS)) as usize;
        let (k, id) = self.keyed[slot];
        if k == key {
            return Ok(id);
        }
        let id = match decode(key) {
            Some(raw) => self.evaluate(raw)?,
            None => NODATA_ID,
        };
        self.keyed[slot] = (key, id);
        Ok(id)
    }

    /// The id of an escaped pixel's evaluation (evaluated on first sight).
    fn id_of_raw(&mut self, raw: RawPixel) -> std::result::Result<u32, PixelError> {
        if self.slots.is_empty() {
            self.slots = vec![None; MEMO_SLOTS];
        }
        let slot = raw.hash() & (MEMO_SLOTS - 1);
        if let Some((k, id)) = self.slots[slot] {
            if k == raw {
                return Ok(id);
            }
        }
        let id = self.evaluate(raw)?;
        self.slots[slot] = Some((raw, id));
        Ok(id)
    }
}

/// Pixel counts per evaluation id over one row, or over rows of equal pixel area (ids in
/// first-seen order). Their sums are added once per id, `count` times one pixel's quantized
/// contribution: exactly what adding the pixels one by one gives, since the sums are
/// integers. (Counts fit: a block holds at most 4096 × 4096 pixels.)
#[derive(Default)]
struct RowCounts {
    n: Vec<u32>,
    /// The ids seen in the row: the first `seen_len` (one slot more than ids, so that `add`
    /// can always write the next one).
    seen: Vec<u32>,
    seen_len: usize,
}

impl RowCounts {
    /// Counts `count` more pixels of `id`. Branch-free but for a new id (the first sight of
    /// an id in a row alternates with the others unpredictably along textured rows).
    #[inline]
    fn add(&mut self, id: u32, count: u32) {
        let k = id as usize;
        if k >= self.n.len() {
            self.n.resize(k + 1, 0);
            self.seen.resize(k + 2, 0);
        }
        let new = self.n[k] == 0;
        self.seen[self.seen_len] = id;
        self.seen_len += usize::from(new);
        self.n[k] += count;
    }

    /// Adds the row's counts, at `area_ha` a pixel, into `acc`, and starts a new row.
    fn flush<A: AccAt + ?Sized>(
        &mut self,
        sums: &Sums,
        evs: &[Evaluated],
        acc: &mut A,
        area_ha: f64,
    ) {
        let area = Area::new(area_ha);
        for &id in &self.seen[..self.seen_len] {
            let n = std::mem::take(&mut self.n[id as usize]);
            sums.add_area(acc, &evs[id as usize], area, n as i128);
        }
        self.seen_len = 0;
    }
}

/// How evaluations are added to cohort sums.
struct Sums<'a> {
    space: &'a CohortSpace,
    /// The tests' reference sums look the eligibility rows up themselves.
    #[cfg_attr(not(test), allow(dead_code))]
    restoration: Option<&'a RestorationModel>,
}

impl Sums<'_> {
    /// Adds `n` pixels of evaluation `ev`, each of `area_ha`, to `acc`, from the pixel's
    /// values and eligibility bits (not from the entries `ev` holds): the tests' reference
    /// loops add pixel by pixel.
    #[cfg(test)]
    fn add<A: AccAt + ?Sized>(&self, acc: &mut A, ev: &Evaluated, area_ha: f64, n: i128) {
        let area = Area::new(area_ha);
        cube::add_pixels_q(acc.at(self.space.index(&ev.v)), &ev.v, area.ha, area.q, n);
        if let Some(r) = self.restoration {
            add_restoration(acc, self.space, r, ev, area, n);
        }
    }

    /// Adds `n` pixels of evaluation `ev`, each of `area_ha`, to `acc`, the area's quantized
    /// value known.
    #[inline]
    fn add_area<A: AccAt + ?Sized>(&self, acc: &mut A, ev: &Evaluated, area: Area, n: i128) {
        cube::add_pixels_q(acc.at(ev.cohort), &ev.v, area.ha, area.q, n);
        for &(idx, gain) in ev.rows.iter() {
            cube::add_eligible_q(acc.at(idx), area.ha, area.q, gain, n);
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

/// The map values of a block, filled run by run, left to right and row after row.
///
/// The buffers are not zeroed first: every pixel is written by the run loop, and zeroing
/// four maps of a block (13 bytes a pixel) cost about 8 % of the compute time on the bench
/// scene. So they hold `MaybeUninit` values, and the maps only ever hand out their first
/// [`filled`](BlockMaps::filled) pixels: a run is always written from where the last one
/// ended ([`BlockMaps::fill_to`]), so those pixels are written whatever the caller does.
/// The buffers are those the map writers have just finished with, where there are some
/// ([`recycle`]).
struct BlockMaps {
    stock: Vec<MaybeUninit<f32>>,
    sink: Vec<MaybeUninit<f32>>,
    /// Restoration potential and best intervention code (empty without a catalogue).
    potential: Vec<MaybeUninit<f32>>,
    best: Vec<MaybeUninit<u8>>,
    /// The restoration maps are written.
    restoration: bool,
    /// Pixels of the block.
    n: usize,
    /// Pixels `0..filled` of every map are written.
    filled: usize,
}

/// The written prefix `v[..len]` as initialized values.
///
/// # Safety
/// `v[..len]` must all have been written.
unsafe fn assume_written<T>(v: &[MaybeUninit<T>], len: usize) -> &[T] {
    let v = &v[..len];
    // SAFETY: `MaybeUninit<T>` has `T`'s layout, and the caller guarantees these are written.
    unsafe { &*(v as *const [MaybeUninit<T>] as *const [T]) }
}

/// `v` cut to its first `len` values (at most its length), which must all have been
/// written.
///
/// # Safety
/// As [`assume_written`].
unsafe fn into_written<T>(v: Vec<MaybeUninit<T>>, len: usize) -> Vec<T> {
    let len = len.min(v.len());
    let mut v = std::mem::ManuallyDrop::new(v);
    let (ptr, cap) = (v.as_mut_ptr(), v.capacity());
    // SAFETY: the same allocation, of the same layout (`MaybeUninit<T>` is `T`'s), capacity
    // and allocator; `len` ≤ its length, and its first `len` values are written (the
    // caller's guarantee).
    unsafe { Vec::from_raw_parts(ptr.cast::<T>(), len, cap) }
}

impl BlockMaps {
    /// Maps of `n` pixels (restoration maps only `with_restoration`), with room for a last
    /// whole chunk of [`BlockMaps::fill_to`] beyond them.
    fn new(n: usize, with_restoration: bool) -> BlockMaps {
        let room = n + RUN_CHUNK_PX;
        let r = if with_restoration { room } else { 0 };
        BlockMaps {
            stock: recycle::take(room),
            sink: recycle::take(room),
            potential: recycle::take(r),
            best: recycle::take(r),
            restoration: with_restoration,
            n,
            filled: 0,
        }
    }

    /// Sets the pixels from the last one written up to `end` (excluded; at most the block's
    /// last) to the map values `v` (of one evaluation, or nodata).
    #[inline]
    fn fill_to(&mut self, end: usize, v: (f32, f32, f32, u8)) {
        let at = self.filled;
        let end = end.min(self.n).max(at);
        // Every chunk written starts at `n` at the latest and ends within the room after it:
        // none is skipped, so `at..end` is written. The maps are written chunk by chunk in
        // one loop (one exit a run to predict, not one per map).
        let (stock, sink, potential, best) = (
            [MaybeUninit::new(v.0); RUN_CHUNK_PX],
            [MaybeUninit::new(v.1); RUN_CHUNK_PX],
            [MaybeUninit::new(v.2); RUN_CHUNK_PX],
            [MaybeUninit::new(v.3); RUN_CHUNK_PX],
        );
        let mut p = at;
        loop {
            let c = p..p + RUN_CHUNK_PX;
            if let (Some(a), Some(b)) =
                (self.stock.get_mut(c.clone()), self.sink.get_mut(c.clone()))
            {
                a.copy_from_slice(&stock);
                b.copy_from_slice(&sink);
            }
            // (The same every run of a block: a branch the processor predicts.)
            if self.restoration {
                if let (Some(a), Some(b)) =
                    (self.potential.get_mut(c.clone()), self.best.get_mut(c))
                {
                    a.copy_from_slice(&potential);
                    b.copy_from_slice(&best);
                }
            }
            p += RUN_CHUNK_PX;
            if p >= end {
                break;
            }
        }
        self.filled = end;
    }

    /// The written pixels from `first` on, of every map.
    fn rows_from(&self, first: usize) -> DoneRows<'_> {
        let px = first.min(self.filled)..self.filled;
        let restoration = if self.restoration { px.clone() } else { 0..0 };
        // SAFETY: pixels `..filled` are written (see `fill_to`); the restoration maps are
        // written when `self.restoration`.
        let (stock, sink, potential, best) = unsafe {
            (
                assume_written(&self.stock, px.end),
                assume_written(&self.sink, px.end),
                assume_written(&self.potential, restoration.end),
                assume_written(&self.best, restoration.end),
            )
        };
        DoneRows {
            stock: &stock[px.clone()],
            sink: &sink[px],
            potential: &potential[restoration.clone()],
            best: &best[restoration],
        }
    }

    /// The maps of the block's `n` pixels: stock, sink, potential, best. Pixels the run
    /// loop left unwritten (it writes them all) would be nodata.
    fn into_maps(mut self) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<u8>) {
        if self.filled < self.n {
            self.fill_to(self.n, NODATA_VALUES);
        }
        let (filled, r) = (self.filled, if self.restoration { self.filled } else { 0 });
        // SAFETY: as in `rows_from`.
        unsafe {
            (
                into_written(self.stock, filled),
                into_written(self.sink, filled),
                into_written(self.potential, r),
                into_written(self.best, r),
            )
        }
    }
}

/// Pixels [`BlockMaps::fill_to`] writes at a time (runs of land cover as textured as real
/// classified imagery are mostly shorter): a run of up to a chunk is one fixed-size store a
/// map, with no loop whose exit depends on the run's length (no mispredicted branch per
/// run). The pixels the last chunk writes past the run belong to the runs after it, which
/// are written later, or to the room after the block's last pixel.
const RUN_CHUNK_PX: usize = 8;

/// Where the runs of the row of `width` pixels from pixel `start` on start, for stored keys
/// ([`KeyLayout::Stored`]), as [`run_starts`] gives them (`same`, a bit per pair of
/// neighbours, is scratch of `width.div_ceil(64)` words): from the layers' stored values
/// themselves, since a key changes where any layer does. No key is built per pixel;
/// [`stored_run_keys`] builds one per run.
fn stored_run_starts(
    b: &BlockInput,
    start: usize,
    width: usize,
    same: &mut [u64],
    starts: &mut [u32],
) -> usize {
    same.fill(u64::MAX);
    for p in &b.packed {
        p.raw.and_same_as_next(start, width, same);
    }
    starts_of_breaks(same, width, starts)
}

/// The pixels of a row of `n` where a run starts into `starts[..runs]`, with `runs`
/// returned and `starts[runs]` = n: pixel 0, and pixel j where bit j − 1 of `same` (set
/// where pixels j − 1 and j are alike, a word per 64 pairs) is clear. The set bits are taken
/// one by one: a loop per run start, not per pixel.
fn starts_of_breaks(same: &[u64], n: usize, starts: &mut [u32]) -> usize {
    let mut runs = 0;
    // Pixel 0 starts a run; then the break after each word's last pair starts the next
    // word's first pixel.
    let mut carry = 1u64;
    for (w, &s) in same.iter().enumerate().take(n.div_ceil(64)) {
        let lo = w * 64;
        let mut mask = (!s << 1) | carry;
        carry = !s >> 63;
        if n - lo < 64 {
            mask &= (1u64 << (n - lo)) - 1;
        }
        while mask != 0 {
            starts[runs] = lo as u32 + mask.trailing_zeros();
            runs += 1;
            mask &= mask - 1;
        }
    }
    starts[runs] = n as u32;
    runs
}

/// The pixels of a row where `changed` (one byte a pixel, 0 or 1) is 1 into `starts[..runs]`
/// with `runs` returned, and `starts[runs]` = the row's length. The bytes are packed into a
/// bit mask 8 at a time (one multiplication: with bytes of 0 or 1 in a word, the product's
/// top byte holds byte i's bit as bit i, no partial product overlapping another), then the
/// set bits are taken one by one: a loop per run start, not per pixel.
fn starts_of_changes(changed: &[u8], starts: &mut [u32]) -> usize {
    const GATHER: u64 = 0x0102_0408_1020_4080;
    let mut runs = 0;
    for (w, chunk) in changed.chunks(64).enumerate() {
        let mut mask = 0u64;
        let words = chunk.chunks_exact(8);
        let tail = words.remainder();
        for (j, bytes) in words.enumerate() {
            let word = u64::from_le_bytes(bytes.try_into().unwrap_or_default());
            mask |= (word.wrapping_mul(GATHER) >> 56) << (8 * j);
        }
        // The row's last pixels (fewer than 8), one by one.
        let done = chunk.len() - tail.len();
        for (j, &new) in tail.iter().enumerate() {
            mask |= u64::from(new) << (done + j);
        }
        while mask != 0 {
            starts[runs] = (w * 64) as u32 + mask.trailing_zeros();
            runs += 1;
            mask &= mask - 1;
        }
    }
    starts[runs] = changed.len() as u32;
    runs
}

/// The stored keys of the pixels `start + at[i]` into `keys[i]` (the layers' stored bits side
/// by side): the keys of a row's runs, from their first pixels.
fn stored_run_keys(b: &BlockInput, shifts: &[u32], start: usize, at: &[u32], keys: &mut [u64]) {
    keys.fill(0);
    for (p, &shift) in b.packed.iter().zip(shifts) {
        p.raw.or_shifted_at(start, at, shift, keys);
    }
}

/// Where the runs of equal keys of a row start, as [`starts_of_changes`] gives them
/// (`changed`, one byte a pixel of the row, is scratch): where a key differs from its left
/// neighbour's.
fn run_starts(keys: &[u64], changed: &mut [u8], starts: &mut [u32]) -> usize {
    let changed = &mut changed[..keys.len()];
    if let Some(first) = changed.first_mut() {
        *first = 1;
    }
    for ((c, next), prev) in changed
        .iter_mut()
        .skip(1)
        .zip(keys.iter().skip(1))
        .zip(keys)
    {
        *c = u8::from(next != prev);
    }
    starts_of_changes(changed, starts)
}

/// Map values of a pixel whose land cover is nodata.
const NODATA_VALUES: (f32, f32, f32, u8) = (
    writer::MAP_NODATA,
    writer::MAP_NODATA,
    writer::MAP_NODATA,
    BEST_NODATA,
);

/// Evaluates one block: pure, no IO. Every pixel's contribution to the whole grid, to each
/// zone (× its covered fraction) and to the outside is added exactly as one pixel's
/// quantized sums; equal contributions of a row (of the block's rows of one pixel area, for
/// the grid's sums) are counted and added once, times their number (integer sums: the same
/// result, whatever the grouping).
///
/// The block is computed by [`compute_block_rows`], with no reader of its rows.
pub(crate) fn compute_block(
    ctx: &BlockContext,
    b: &BlockInput,
) -> std::result::Result<BlockOutput, (usize, usize, PixelError)> {
    compute_block_rows(ctx, b, usize::MAX, &mut |_| {})
}

/// The rows of a block's maps that [`compute_block_rows`] has finished, for a reader that
/// takes them while they are still in the processor's caches.
pub(crate) struct DoneRows<'a> {
    pub(crate) stock: &'a [f32],
    pub(crate) sink: &'a [f32],
    /// Empty without a restoration catalogue.
    pub(crate) potential: &'a [f32],
    pub(crate) best: &'a [u8],
}

/// [`compute_block`], handing every `every_rows` finished rows of the maps (and the last
/// ones) to `on_rows`, in order.
///
/// This is the hot loop of a run (every pixel of the scene passes here once). Each pixel's
/// raw inputs are packed into one word ([`key`]), a row at a time; the row's runs of equal
/// keys are found from the layers' own changes for stored keys ([`stored_run_starts`], a key
/// per run) or from the keys ([`run_starts`]), and a run costs one cache probe for its
/// evaluation id, fixed-size fills of the map values ([`BlockMaps::fill_to`]) and one count.
/// Zone fractions are looked at only in blocks a zone edge crosses, zone by zone over the
/// stretches of one fraction along the block's rows ([`zone_sums`]). It is longer than the
/// house limit of about 120 lines on purpose: the run loop keeps the row counters, the row's
/// keys and run starts, and the map buffers in locals the compiler holds in registers across
/// the whole block.
pub(crate) fn compute_block_rows(
    ctx: &BlockContext,
    b: &BlockInput,
    every_rows: usize,
    on_rows: &mut dyn FnMut(DoneRows<'_>),
) -> std::result::Result<BlockOutput, (usize, usize, PixelError)> {
    let (restoration, space, row_areas_ha, zones) =
        (ctx.restoration, ctx.space, ctx.row_areas_ha, ctx.zones);
    let w = b.window;
    let n = w.len();
    let mut maps = BlockMaps::new(n, restoration.is_some());
    let coverage = zones
        .map(|z| z.block_stretches(ctx.grid, w))
        .unwrap_or_default();
    let full: Vec<bool> = coverage.iter().map(|(_, f)| f.is_full()).collect();
    // Zones that cover the whole block get the block's own sums at the end; pixel fractions
    // matter only where some zone covers the block partly.
    // Outside share of every pixel of a block without partial zones (summed in zone order,
    // as for a single pixel): all of it (no zone) or none (a zone covers it).
    let uniform_outside = 1.0 - coverage.iter().fold(0.0, |a, (_, f)| a + f.at(0));
    let partial = full.iter().any(|f| !f) || (uniform_outside > 1e-12 && uniform_outside != 1.0);
    let sums = Sums { space, restoration };
    let mut grid_acc = BlockAcc::new(space.len());
    let mut memo = Memo::new(ctx);
    let mut grid_n = RowCounts::default();
    // The runs of the rows and their evaluation ids, kept for the zone sums.
    let mut block_runs = BlockRuns::new(w.width);
    let layout = KeyLayout::of(b);
    let decode = |k: u64| layout.decode(b, k);
    // One row at a time: where its runs start and their keys (stored keys are built per run,
    // field keys per pixel); all of it stays in the first-level cache.
    let mut keys = vec![0u64; w.width];
    let mut run_keys = vec![0u64; w.width];
    let mut changed = vec![0u8; w.width];
    let mut same = vec![0u64; w.width.div_ceil(64)];
    let mut starts = vec![0u32; w.width + 1];
    let mut nodata_area = 0i128;
    for r in 0..w.height {
        let row = w.row + r;
        let area_ha = row_areas_ha[row];
        let base = r * w.width;
        let runs = match &layout {
            KeyLayout::Stored { shifts } => {
                let runs = stored_run_starts(b, base, w.width, &mut same, &mut starts);
                stored_run_keys(b, shifts, base, &starts[..runs], &mut run_keys[..runs]);
                runs
            }
            KeyLayout::Fields => {
                fill_field_keys(b, base, &mut keys);
                let runs = run_starts(&keys, &mut changed, &mut starts);
                for (k, &c) in run_keys.iter_mut().zip(&starts[..runs]) {
                    *k = keys[c as usize];
                }
                runs
            }
        };
        let mut nodata_px = 0i128;
        for (run, &k) in starts[..=runs].windows(2).zip(&run_keys) {
            let (c, end) = (run[0] as usize, run[1] as usize);
            if k & key::ESCAPE != 0 {
                // Pixel by pixel on the general path (equal escaped keys say nothing of
                // equal inputs).
                for c in c..end {
                    let id = match b.landcover_at(base + c) {
                        Some(code) => memo
                            .id_of_raw(RawPixel::at(b, base + c, code))
                            .map_err(|e| (w.col + c, row, e))?,
                        None => NODATA_ID,
                    };
                    let v = if id == NODATA_ID {
                        nodata_px += 1;
                        NODATA_VALUES
                    } else {
                        grid_n.add(id, 1);
                        memo.values[id as usize]
                    };
                    maps.fill_to(base + c + 1, v);
                    if partial {
                        block_runs.push(c, id);
                    }
                }
                continue;
            }
            let id = memo.id_of_key(k, decode).map_err(|e| (w.col + c, row, e))?;
            let len = end - c;
            let v = if id == NODATA_ID {
                nodata_px += len as i128;
                NODATA_VALUES
            } else {
                grid_n.add(id, len as u32);
                memo.values[id as usize]
            };
            maps.fill_to(base + end, v);
            if partial {
                block_runs.push(c, id);
            }
        }
        if partial {
            block_runs.end_row();
        }
        // Rows of the same pixel area (all of them on a projected grid) are counted
        // together: one addition per evaluation for all of them.
        if area_changes_after(row_areas_ha, w, r) {
            grid_n.flush(&sums, &memo.evs, &mut grid_acc, area_ha);
        }
        nodata_area += nodata_px * cube::quantize(area_ha);
        if (r + 1) % every_rows == 0 || r + 1 == w.height {
            let first = (r - r % every_rows) * w.width;
            on_rows(maps.rows_from(first));
        }
    }
    let ev = ZoneEval {
        sums: &sums,
        evs: &memo.evs,
        runs: &block_runs,
        window: w,
        row_areas_ha,
    };
    let zone_sums_of = BlockZones {
        coverage: &coverage,
        full: &full,
        partial,
        uniform_outside,
        with_outside: zones.is_some(),
    };
    let (zone_acc, outside_acc) = zone_sums_of.sums(&ev, &grid_acc);
    debug_assert_eq!(maps.filled, n, "the run loop writes every pixel");
    let (stock, sink, potential, best) = maps.into_maps();
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

/// How the zones cover a block, for its zone and outside sums.
struct BlockZones<'a> {
    /// The zones touching the block, with their coverage.
    coverage: &'a [(usize, Coverage)],
    /// Which of them cover the whole block.
    full: &'a [bool],
    /// Some zone covers the block partly: the sums go pixel fraction by pixel fraction.
    partial: bool,
    /// The outside share of every pixel where no zone covers the block partly.
    uniform_outside: f64,
    /// The run has zones, so an outside.
    with_outside: bool,
}

impl BlockZones<'_> {
    /// The zone sums and the outside sums of the block whose pixels `ev` holds, beside the
    /// grid's `grid_acc`: zones that cover the whole block, and the outside of a block no
    /// zone touches, take the grid's sums; where some zone covers the block partly, the
    /// others are summed over their stretches ([`zone_sums`]). Sums that can only take the
    /// grid's (or stay zero) are made with no room to add to.
    fn sums(
        &self,
        ev: &ZoneEval,
        grid_acc: &BlockAcc,
    ) -> (Vec<(usize, BlockAcc)>, Option<BlockAcc>) {
        let len = ev.sums.space.len();
        let mut zone_acc: Vec<(usize, BlockAcc)> = self
            .coverage
            .iter()
            .zip(self.full)
            .map(|((z, _), is_full)| (*z, BlockAcc::new(if *is_full { 0 } else { len })))
            .collect();
        let mut outside_acc = self
            .with_outside
            .then(|| BlockAcc::new(if self.partial { len } else { 0 }));
        if self.partial {
            zone_sums(
                ev,
                self.coverage,
                self.full,
                &mut zone_acc,
                outside_acc.as_mut(),
            );
        }
        for ((_, acc), is_full) in zone_acc.iter_mut().zip(self.full) {
            if *is_full {
                acc.clone_from(grid_acc);
            }
        }
        if let (Some(out), false) = (outside_acc.as_mut(), self.partial) {
            // No zone here: every pixel is all outside (area × 1.0 = area: the grid's sums);
            // else zones cover the whole block and the outside stays zero.
            if self.uniform_outside == 1.0 {
                out.clone_from(grid_acc);
            }
        }
        (zone_acc, outside_acc)
    }
}

/// Whether block row `r` of window `w` is its last or the next row's pixels have another
/// area: where counts of whole pixels gathered over rows are added.
#[inline]
fn area_changes_after(row_areas_ha: &[f64], w: Window, r: usize) -> bool {
    let (row, next) = (row_areas_ha.get(w.row + r), row_areas_ha.get(w.row + r + 1));
    r + 1 >= w.height || next.map(|a| a.to_bits()) != row.map(|a| a.to_bits())
}

/// The runs of one evaluation along the rows of a block, as the run loop found them: what
/// the zone sums walk, a run at a time rather than a pixel at a time (a row of the bench
/// scene has a run every 5 or 6 pixels).
struct BlockRuns {
    /// Pixels a row.
    width: usize,
    /// First column of each run, row after row (a row's first run starts at 0).
    starts: Vec<u32>,
    /// Evaluation id of each run ([`NODATA_ID`] where the land cover is nodata).
    ids: Vec<u32>,
    /// Row r's runs are `row_first[r]..row_first[r + 1]`.
    row_first: Vec<usize>,
}

impl BlockRuns {
    /// No rows yet, of `width` pixels.
    fn new(width: usize) -> BlockRuns {
        BlockRuns {
            width,
            starts: Vec::new(),
            ids: Vec::new(),
            row_first: vec![0],
        }
    }

    /// The runs of the pixel ids of whole rows of `width` pixels (ids in row order).
    #[cfg(test)]
    fn of_ids(ids: &[u32], width: usize) -> BlockRuns {
        let mut runs = BlockRuns::new(width);
        for row in ids.chunks(width) {
            for (c, &id) in row.iter().enumerate() {
                if c == 0 || row[c - 1] != id {
                    runs.push(c, id);
                }
            }
            runs.end_row();
        }
        runs
    }

    /// A run of evaluation `id` from column `col` of the current row (columns increase
    /// along a row; the run ends where the next one starts, or at the row's end).
    #[inline]
    fn push(&mut self, col: usize, id: u32) {
        self.starts.push(col as u32);
        self.ids.push(id);
    }

    /// Ends the current row.
    fn end_row(&mut self) {
        self.row_first.push(self.starts.len());
    }

    /// The runs of row `r` within its columns `a..b`, cut to them: (evaluation id, pixels).
    fn within(&self, r: usize, a: usize, b: usize) -> impl Iterator<Item = (u32, u32)> + '_ {
        let runs = self.row_first[r]..self.row_first[r + 1];
        let (starts, ids) = (&self.starts[runs.clone()], &self.ids[runs]);
        // The run holding column `a`: the last one starting at or before it.
        let first = starts
            .partition_point(|&s| s as usize <= a)
            .saturating_sub(1);
        let width = self.width as u32;
        starts[first..]
            .iter()
            .zip(&ids[first..])
            .zip(starts[first + 1..].iter().copied().chain([width]))
            .take_while(move |((&s, _), _)| (s as usize) < b)
            .map(move |((&s, &id), end)| {
                let (s, end) = ((s as usize).max(a), (end as usize).min(b));
                (id, (end - s) as u32)
            })
            // (An empty span cuts the run holding `a` to nothing.)
            .filter(|&(_, n)| n > 0)
    }
}

/// A block's evaluated pixels, as the zone sums read them.
struct ZoneEval<'a> {
    sums: &'a Sums<'a>,
    evs: &'a [Evaluated],
    /// The runs of evaluation ids of the block's rows.
    runs: &'a BlockRuns,
    window: Window,
    row_areas_ha: &'a [f64],
}

impl ZoneEval<'_> {
    /// Adds the data pixels of row `r`'s columns `a..b`, a stretch whose pixels (of
    /// `area_ha` each) all count at fraction `f`, to `acc`: whole pixels (f = 1) are counted
    /// into `whole`, a run of one evaluation at a time, to be added with their row; parts of
    /// pixels (`min` < f < 1) are counted and added now, at `area_ha` × f each; f ≤ `min` is
    /// left out.
    #[allow(clippy::too_many_arguments)]
    fn add_stretch<A: AccAt>(
        &self,
        (r, a, b): (usize, usize, usize),
        f: f64,
        min: f64,
        area_ha: f64,
        acc: &mut A,
        whole: &mut RowCounts,
        part: &mut RowCounts,
    ) {
        let counts = if f == 1.0 {
            whole
        } else if f > min {
            &mut *part
        } else {
            return;
        };
        for (id, n) in self.runs.within(r, a, b) {
            if id != NODATA_ID {
                counts.add(id, n);
            }
        }
        if f != 1.0 {
            part.flush(self.sums, self.evs, acc, area_ha * f);
        }
    }
}

/// Row `r`'s stretches of one fraction under coverage `c` of a block `width` px wide, as
/// (first column, end column, fraction), into `out`.
fn row_stretches(c: &Coverage, r: usize, width: usize, out: &mut Vec<(usize, usize, f64)>) {
    out.clear();
    match c {
        Coverage::Uniform(f) => out.push((0, width, *f)),
        Coverage::Rows(s) => out.extend(s.row(r)),
        Coverage::PerPixel(v) => {
            for (col, f) in v[r * width..(r + 1) * width].iter().enumerate() {
                match out.last_mut() {
                    Some(last) if last.2.to_bits() == f.to_bits() => last.1 = col + 1,
                    _ => out.push((col, col + 1, *f)),
                }
            }
        }
    }
}

/// The zone and outside sums of a block that some zone covers partly, zone by zone in zone
/// order, row by row over the stretches where a zone's fraction does not change: a zone
/// looks at its own pixels only, and a stretch's pixels are counted per evaluation and added
/// once (the same integer sums as pixel by pixel). The outside share of a pixel is 1 − the
/// sum of the zones' fractions, summed in zone order as a pixel-by-pixel loop over the zones
/// would (so it has the same bits), over the stretches where no zone's fraction changes.
fn zone_sums<A: AccAt>(
    ev: &ZoneEval,
    coverage: &[(usize, Coverage)],
    full: &[bool],
    zone_acc: &mut [(usize, A)],
    outside_acc: Option<&mut A>,
) {
    let w = ev.window;
    let (mut whole, mut part) = (RowCounts::default(), RowCounts::default());
    let mut rows: Vec<Vec<(usize, usize, f64)>> = vec![Vec::new(); coverage.len()];
    for (((_, c), is_full), ((_, acc), st)) in coverage
        .iter()
        .zip(full)
        .zip(zone_acc.iter_mut().zip(rows.iter_mut()))
    {
        if *is_full {
            continue;
        }
        for r in 0..w.height {
            let area_ha = ev.row_areas_ha[w.row + r];
            row_stretches(c, r, w.width, st);
            for &(a, b, f) in st.iter() {
                ev.add_stretch((r, a, b), f, 0.0, area_ha, acc, &mut whole, &mut part);
            }
            if area_changes_after(ev.row_areas_ha, w, r) {
                whole.flush(ev.sums, ev.evs, acc, area_ha);
            }
        }
    }
    let Some(out) = outside_acc else {
        return;
    };
    let mut cuts: Vec<usize> = Vec::new();
    let mut at = vec![0usize; coverage.len()];
    for r in 0..w.height {
        let area_ha = ev.row_areas_ha[w.row + r];
        cuts.clear();
        cuts.extend([0, w.width]);
        for ((_, c), st) in coverage.iter().zip(rows.iter_mut()) {
            row_stretches(c, r, w.width, st);
            cuts.extend(st.iter().map(|s| s.0));
        }
        cuts.sort_unstable();
        cuts.dedup();
        at.fill(0);
        for seg in cuts.windows(2) {
            let (a, b) = (seg[0], seg[1]);
            let mut covered = 0.0f64;
            for (st, k) in rows.iter().zip(at.iter_mut()) {
                while st[*k].1 <= a {
                    *k += 1;
                }
                covered += st[*k].2;
            }
            ev.add_stretch(
                (r, a, b),
                1.0 - covered,
                1e-12,
                area_ha,
                out,
                &mut whole,
                &mut part,
            );
        }
        if area_changes_after(ev.row_areas_ha, w, r) {
            whole.flush(ev.sums, ev.evs, out, area_ha);
        }
    }
}

/// Opens the scene's layers (land cover, age, forest type, desert subtype, masks), aligned
/// to `grid`, as engine sources.
///
/// With `narrow`, the 8- and 16-bit layers are read as stored and keyed through tables
/// ([`KeyTable`]): the fast path of [`compute_block`]. Passes that read the values one by one
/// themselves ask for them widened (`narrow` false).
pub(crate) fn open_inputs(
    scene: &Scene,
    models: &Models,
    grid: &Grid,
    narrow: bool,
) -> Result<SceneInputs> {
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
    let mut sources = Vec::new();
    let mut packed = Vec::new();
    // Adds a layer as the next source: narrow with its key table when asked and its type
    // allows, else widened (`wide`).
    let mut add = |l: Layer, role: Role, wide: fn(Layer) -> Source| {
        let k = sources.len();
        match narrow.then(|| KeyTable::of_layer(&l, k, role)).flatten() {
            Some(t) => {
                packed.push(t);
                sources.push(Source::Narrow(l));
            }
            None => sources.push(wide(l)),
        }
        k
    };
    add(landcover, Role::Landcover, Source::Codes);
    let mut slots = Slots {
        forest_type: forest_type.map(|l| add(l, Role::ForestType, Source::Codes)),
        desert: desert.map(|l| add(l, Role::Desert, Source::Codes)),
        ..Slots::default()
    };
    let first_mask =
        1 + usize::from(slots.forest_type.is_some()) + usize::from(slots.desert.is_some());
    for (bit, l) in masks.into_iter().enumerate() {
        add(l, Role::Mask(bit as u32), Source::Codes);
    }
    slots.masks = first_mask..first_mask + scene.masks.len();
    slots.age = age.map(|l| add(l, Role::Age, Source::Values));
    slots.packed = packed;
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

/// GDAL's block cache for a pass (MB): the readers' blocks and at most one tile per map
/// being written (the writers collect the pieces of their tiles themselves, see
/// `raster::pending::PendingTiles`), so it never fills.
const GDAL_CACHE_BASE_MB: usize = 128;

/// Bounds GDAL's block cache (it defaults to 5 % of RAM) so memory stays flat with raster
/// size; the user's `GDAL_CACHEMAX` wins.
pub(crate) fn bound_gdal_cache() {
    set_gdal_cache_mb(GDAL_CACHE_BASE_MB);
}

fn set_gdal_cache_mb(mb: usize) {
    if std::env::var_os("GDAL_CACHEMAX").is_none() {
        // SAFETY: sets a process-wide size; GDAL takes it at any time.
        unsafe { gdal_sys::GDALSetCacheMax64(mb as i64 * (1 << 20)) };
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
    cube.add_entries(space, GRID_ZONE, out.grid_acc.entries());
    if let (Some(z), Some(outside)) = (zones, out.outside_acc.as_ref()) {
        for (zi, acc) in &out.zone_acc {
            cube.add_entries(space, &z.zones[*zi].id, acc.entries());
        }
        cube.add_entries(space, OUTSIDE_ZONE, outside.entries());
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
    let inputs = open_inputs(scene, &models, &grid, true)?;
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
    let overview_cpu_ns = std::sync::atomic::AtomicU64::new(0);
    let compute = |b: &Block| {
        let input = slots.view(b);
        let local = Window {
            row: input.window.row - row0,
            ..input.window
        };
        // The overview levels are built as the rows come where the block allows it, else
        // from the whole block after; their processor time is counted apart either way.
        let mut pyramids = MapPyramids::new(&plan, local, ctx.restoration.is_some());
        let mut pyramid_ns = 0u64;
        let mut feed = |rows: DoneRows<'_>| {
            if let Some(p) = pyramids.as_mut() {
                let cpu = engine::thread_cpu_ns();
                p.add(rows);
                pyramid_ns += engine::thread_cpu_ns().saturating_sub(cpu);
            }
        };
        let out = compute_block_rows(&ctx, &input, PYRAMID_ROWS, &mut feed)
            .map_err(|(col, row, e)| paths.pixel_error(col, row, e))?;
        let cpu = engine::thread_cpu_ns();
        let levels = match pyramids {
            Some(p) => p.finish(),
            None => block_levels(&plan, row0, &out),
        };
        pyramid_ns += engine::thread_cpu_ns().saturating_sub(cpu);
        overview_cpu_ns.fetch_add(pyramid_ns, std::sync::atomic::Ordering::Relaxed);
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
            compute_cpu: busy.compute_cpu,
            overview_cpu: overview_cpu_ns.into_inner() as f64 * 1e-9,
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

    /// Sparse block sums hold each entry once, whatever the order it is added in, and read
    /// back as the dense sums of the same additions.
    #[test]
    fn block_sums_keep_each_entry_once_and_read_back_dense() {
        let mut sparse = BlockAcc::new(10);
        let mut dense = vec![Acc::ZERO; 10];
        for (i, idx) in [7usize, 2, 7, 9, 2, 7].into_iter().enumerate() {
            let add = |a: &mut Acc| {
                a.area += i as i128 + 1;
                a.stock -= 3 * idx as i128;
            };
            add(sparse.at(idx));
            add(dense.at(idx));
        }
        let touched: Vec<usize> = sparse.entries().map(|(i, _)| i).collect();
        assert_eq!(touched, [7, 2, 9]);
        assert_eq!(sparse.dense(10), dense);
        assert_eq!(dense[7].area, 1 + 3 + 6);
        assert_eq!(BlockAcc::new(0).dense(10), vec![Acc::ZERO; 10]);
    }

    /// Block maps filled run by run hold exactly the runs' values, hand out only written
    /// rows, and give nodata for pixels never written (the run loop writes them all).
    #[test]
    fn block_maps_hold_the_runs_values_and_nothing_unwritten() {
        for restoration in [true, false] {
            let mut m = BlockMaps::new(20, restoration);
            let runs = [(3, 1.0f32), (4, 2.0), (13, 3.0), (18, 4.0)];
            for &(end, x) in &runs {
                m.fill_to(end, (x, -x, 10.0 * x, x as u8));
            }
            let from_second = m.rows_from(5);
            assert_eq!(from_second.stock.len(), 13);
            assert_eq!(from_second.sink[0], -3.0);
            assert_eq!(
                from_second.potential.len(),
                if restoration { 13 } else { 0 }
            );
            // A run ending before the last one's end writes nothing; one past the block
            // stops at its last pixel.
            m.fill_to(2, (9.0, 9.0, 9.0, 9));
            assert_eq!(m.filled, 18);
            let (stock, sink, potential, best) = m.into_maps();
            let expect = |i: usize| match i {
                0..3 => 1.0,
                3 => 2.0,
                4..13 => 3.0,
                13..18 => 4.0,
                _ => writer::MAP_NODATA,
            };
            assert_eq!(stock.len(), 20);
            for (i, (&s, &k)) in stock.iter().zip(&sink).enumerate() {
                let e = expect(i);
                assert_eq!(s.to_bits(), e.to_bits(), "stock at {i}");
                let e_sink = if i < 18 { -e } else { writer::MAP_NODATA };
                assert_eq!(k.to_bits(), e_sink.to_bits(), "sink at {i}");
            }
            if restoration {
                assert_eq!(potential[15], 40.0);
                assert_eq!(best[..4], [1, 1, 1, 2]);
                assert_eq!(best[19], BEST_NODATA);
            } else {
                assert!(potential.is_empty() && best.is_empty());
            }
        }
        let mut past = BlockMaps::new(6, true);
        past.fill_to(100, (1.0, 1.0, 1.0, 1));
        assert_eq!(past.filled, 6);
        assert_eq!(past.into_maps().0, vec![1.0; 6]);
    }

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

    /// The test model on a grid, and what a block context borrows.
    struct Setup {
        model: PixelModel,
        space: CohortSpace,
        grid: Grid,
        row_areas: Vec<f64>,
    }

    impl Setup {
        fn new(width: usize, height: usize) -> Setup {
            let model = test_model::model(Pools::default(), None);
            let grid = grid(width, height);
            Setup {
                space: space(&model),
                model,
                row_areas: grid.row_areas_ha(),
                grid,
            }
        }

        /// The context of blocks without restoration or zones.
        fn ctx(&self, age_shift_yr: i32) -> BlockContext<'_> {
            BlockContext {
                model: &self.model,
                restoration: None,
                space: &self.space,
                age_shift_yr,
                grid: &self.grid,
                row_areas_ha: &self.row_areas,
                zones: None,
            }
        }
    }

    #[test]
    fn a_block_sums_exactly_what_its_pixels_sum_one_by_one() {
        let model = test_model::model(Pools::default(), None);
        let space = space(&model);
        let (w, h) = (37, 23);
        let g = grid(w, h);
        // Rows of different areas (lon/lat), and of one area (a projected grid: their counts
        // are gathered over the rows), with a row of the grid below the block.
        for row_areas in [g.row_areas_ha(), vec![0.0837; h + 1]] {
            block_sums_pixel_by_pixel(&model, &space, &g, &row_areas);
        }
    }

    fn block_sums_pixel_by_pixel(
        model: &PixelModel,
        space: &CohortSpace,
        g: &Grid,
        row_areas: &[f64],
    ) {
        let (w, h) = (g.width, g.height);
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
            packed: Vec::new(),
        };
        let ctx = BlockContext {
            model,
            restoration: None,
            space,
            age_shift_yr: 3,
            grid: g,
            row_areas_ha: row_areas,
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
        assert_eq!(out.grid_acc.dense(space.len()), acc);
        assert_eq!(out.nodata_area, nodata);
        assert!(out.zone_acc.is_empty() && out.outside_acc.is_none());
    }

    /// A catalogue of three interventions on the test model: grassland where mask 0 is set,
    /// dunes unless mask 1 is set, any forest (rate trajectories: their gains differ).
    fn restoration() -> RestorationModel {
        let cat: crate::model::restoration::RestorationCatalogue = toml::from_str(
            r#"
[[intervention]]
code = 1
name = "grass"
label = "g"
eligible_classes = ["grassland"]
requires_masks = ["water"]
trajectory = { kind = "rate", initial_rate_tc_per_ha_yr = 0.3, duration_yr = 20, shape = "constant" }
survival_fraction = 0.9
cost_yuan_per_ha = 1.0
cost_evidence = "placeholder"
evidence = "placeholder"
source = "test"
[[intervention]]
code = 2
name = "dune"
label = "d"
eligible_classes = ["barren"]
eligible_desert_subtypes = ["dune"]
excludes_masks = ["degraded"]
trajectory = { kind = "rate", initial_rate_tc_per_ha_yr = 0.7, duration_yr = 10, shape = "constant" }
survival_fraction = 0.5
cost_yuan_per_ha = 1.0
cost_evidence = "placeholder"
evidence = "placeholder"
source = "test"
[[intervention]]
code = 3
name = "forest"
label = "f"
eligible_classes = ["forest", "grassland"]
trajectory = { kind = "rate", initial_rate_tc_per_ha_yr = 0.2, duration_yr = 30, shape = "constant" }
survival_fraction = 1.0
cost_yuan_per_ha = 1.0
cost_evidence = "placeholder"
evidence = "placeholder"
source = "test"
"#,
        )
        .unwrap();
        RestorationModel::build(
            &cat,
            &test_model::forest(),
            &["dune".into(), "gobi".into()],
            &["water".into(), "degraded".into()],
            30,
        )
        .unwrap()
    }

    /// Three zones over a 0.01° grid at (80° E, 45° N): a slanted quadrilateral, a rectangle
    /// on pixel edges overlapping it, and a large rectangle that holds whole blocks.
    fn zones(dir: &Path, g: &Grid) -> ZoneSet {
        let path = dir.join("zones.geojson");
        let feature = |id: &str, ring: &str| {
            format!(
                r#"{{"type":"Feature","properties":{{"id":"{id}"}},"geometry":{{"type":"Polygon","coordinates":[[{ring}]]}}}}"#
            )
        };
        let features = [
            feature(
                "slant",
                "[80.013,44.991],[80.297,44.957],[80.251,44.667],[80.031,44.713],[80.013,44.991]",
            ),
            feature(
                "box",
                "[80.10,44.90],[80.40,44.90],[80.40,44.70],[80.10,44.70],[80.10,44.90]",
            ),
            feature(
                "big",
                "[80.0,44.84],[80.32,44.84],[80.32,44.6],[80.0,44.6],[80.0,44.84]",
            ),
        ];
        std::fs::write(
            &path,
            format!(
                r#"{{"type":"FeatureCollection","features":[{}]}}"#,
                features.join(",")
            ),
        )
        .unwrap();
        ZoneSet::read(
            &crate::zones::ZoneSource {
                path: &path,
                layer: None,
                id_field: "id",
                name_field: None,
                repair_invalid: false,
            },
            g,
        )
        .unwrap()
    }

    /// Asserts that two blocks' overview levels hold the same bits.
    fn assert_same_levels(a: &MapLevels, b: &MapLevels) {
        fn same<C: overview::Cell + PartialEq + std::fmt::Debug>(
            a: &BlockLevels<C>,
            b: &BlockLevels<C>,
            bits: impl Fn(&C::Value) -> u32,
        ) {
            assert_eq!(a.values.len(), b.values.len());
            for (x, y) in a.values.iter().zip(&b.values) {
                assert_eq!(x.window(), y.window());
                let (xb, yb): (Vec<u32>, Vec<u32>) = (
                    x.data.iter().map(&bits).collect(),
                    y.data.iter().map(&bits).collect(),
                );
                assert_eq!(xb, yb);
            }
            assert_eq!(a.top, b.top);
        }
        same(&a.stock, &b.stock, |v| v.to_bits());
        same(&a.sink, &b.sink, |v| v.to_bits());
        let (pa, pb) = (a.potential.as_ref().unwrap(), b.potential.as_ref().unwrap());
        same(pa, pb, |v| v.to_bits());
        let (ba, bb) = (a.best.as_ref().unwrap(), b.best.as_ref().unwrap());
        same(ba, bb, |v| u32::from(*v));
    }

    #[test]
    fn zones_masks_and_restoration_sum_exactly_what_a_pixel_by_pixel_loop_sums() {
        let model = test_model::model(Pools::default(), None);
        let rm = restoration();
        let mut space = space(&model);
        space.interventions = rm.names.clone();
        let (w, h) = (48, 40);
        let mut g = grid(w, h);
        g.crs_wkt = gdal::spatial_ref::SpatialRef::from_epsg(4326)
            .unwrap()
            .to_wkt()
            .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let zs = zones(tmp.path(), &g);
        let row_areas = g.row_areas_ha();
        let n = w * h;
        // Runs of equal pixels, nodata, whole and fractional ages (the general path), an
        // explicit forest type, both desert subtypes and every mask combination.
        let landcover: Vec<Option<i32>> = (0..n)
            .map(|i| match (i / 3 + i / 97) % 7 {
                0 => None,
                k => Some((k as i32 - 1) % 4 + 1),
            })
            .collect();
        let age: Vec<Option<f64>> = (0..n)
            .map(|i| match (i / 4) % 5 {
                0 => None,
                1 => Some(((i / 9) % 30) as f64 + 0.5),
                _ => Some(((i / 9) % 30) as f64),
            })
            .collect();
        let forest_type: Vec<Option<i32>> =
            (0..n).map(|i| ((i / 11) % 3 == 0).then_some(8)).collect();
        let desert: Vec<Option<i32>> = (0..n).map(|i| Some(1 + ((i / 13) % 2) as i32)).collect();
        let masks: Vec<u32> = (0..n).map(|i| ((i / 5 + i / w) % 4) as u32).collect();
        let ctx = BlockContext {
            model: &model,
            restoration: Some(&rm),
            space: &space,
            age_shift_yr: 2,
            grid: &g,
            row_areas_ha: &row_areas,
            zones: Some(&zs),
        };
        let sums = Sums {
            space: &space,
            restoration: Some(&rm),
        };
        let mut cases = 0;
        for block in [16, 32, 48] {
            for win in g.windows(block, 0..h) {
                let cut = |v: &[Option<i32>]| -> Vec<Option<i32>> {
                    (0..win.len())
                        .map(|k| v[(win.row + k / win.width) * w + win.col + k % win.width])
                        .collect()
                };
                let at = |k: usize| (win.row + k / win.width) * w + win.col + k % win.width;
                let (lc, ft, ds) = (cut(&landcover), cut(&forest_type), cut(&desert));
                let ag: Vec<Option<f64>> = (0..win.len()).map(|k| age[at(k)]).collect();
                let input = BlockInput {
                    window: win,
                    landcover: &lc,
                    age: &ag,
                    forest_type: &ft,
                    desert: &ds,
                    masks: (0..win.len()).map(|k| masks[at(k)]).collect(),
                    packed: Vec::new(),
                };
                let out = compute_block(&ctx, &input).unwrap();
                // Overview levels built as the rows come equal those of the finished block.
                let plan = Plan::down_to(w, h, block, 3);
                let whole = block_levels(&plan, 0, &out);
                for every in [2, PYRAMID_ROWS] {
                    let Some(mut pyramids) = MapPyramids::new(&plan, win, true) else {
                        assert!(win.width % block != 0 || win.height % block != 0);
                        continue;
                    };
                    let again =
                        compute_block_rows(&ctx, &input, every, &mut |rows| pyramids.add(rows))
                            .unwrap();
                    assert_eq!(again.stock.len(), out.stock.len());
                    assert_same_levels(&pyramids.finish(), &whole);
                }
                // The naive version: every pixel evaluated and added on its own, to the
                // grid, to every zone at its fraction and to the outside at what is left.
                let coverage = zs.block_coverage(&g, win);
                let mut grid_acc = vec![Acc::ZERO; space.len()];
                let mut zone_acc = vec![vec![Acc::ZERO; space.len()]; coverage.len()];
                let mut outside = vec![Acc::ZERO; space.len()];
                for k in 0..win.len() {
                    let area = row_areas[win.row + k / win.width];
                    let Some(code) = lc[k] else {
                        assert!(out.stock[k].is_nan() && out.best[k] == BEST_NODATA);
                        continue;
                    };
                    let v = model
                        .evaluate_observed(code, ag[k], 2.0, ft[k], ds[k])
                        .unwrap();
                    let elig = v
                        .class
                        .map_or(0, |c| rm.eligible(c, v.desert_subtype, input.masks[k]));
                    let ev = Evaluated::new(v, elig, rm.best(elig), &space, Some(&rm));
                    assert_eq!(out.stock[k], v.stock_tc_per_ha as f32);
                    assert_eq!(out.sink[k], v.sink_tco2_per_ha_yr as f32);
                    let want_best = ev.best_j.map_or(0, |j| rm.codes[j]);
                    assert_eq!(out.best[k], want_best, "best at {k}");
                    let want_pot = ev.best_j.map_or(0.0, |j| rm.mean_gain[j] as f32);
                    assert_eq!(out.potential[k], want_pot);
                    sums.add(&mut grid_acc, &ev, area, 1);
                    let mut covered = 0.0;
                    for ((_, frac), acc) in coverage.iter().zip(zone_acc.iter_mut()) {
                        let f = frac.at(k);
                        covered += f;
                        if f > 0.0 {
                            sums.add(acc, &ev, area * f, 1);
                        }
                    }
                    if 1.0 - covered > 1e-12 {
                        sums.add(&mut outside, &ev, area * (1.0 - covered), 1);
                    }
                }
                assert_eq!(out.grid_acc.dense(space.len()), grid_acc, "{win:?}");
                let got: Vec<usize> = out.zone_acc.iter().map(|(z, _)| *z).collect();
                let want: Vec<usize> = coverage.iter().map(|(z, _)| *z).collect();
                assert_eq!(got, want);
                for ((_, got), want) in out.zone_acc.iter().zip(&zone_acc) {
                    assert_eq!(&got.dense(space.len()), want, "{win:?}");
                }
                let got = out.outside_acc.as_ref().map(|o| o.dense(space.len()));
                assert_eq!(got, Some(outside), "{win:?}");
                cases += 1;
            }
        }
        assert!(cases > 10);
    }

    #[test]
    fn zone_sums_zone_by_zone_equal_a_pixel_by_pixel_loop_over_the_zones() {
        let model = test_model::model(Pools::default(), None);
        let rm = restoration();
        let mut space = space(&model);
        space.interventions = rm.names.clone();
        let (w, h) = (7, 5);
        let g = grid(w, h);
        let row_areas = g.row_areas_ha();
        let sums = Sums {
            space: &space,
            restoration: Some(&rm),
        };
        let evs: Vec<Evaluated> = [
            (1, Some(5.0), None, 0),
            (4, None, None, 1),
            (3, None, Some(1), 0),
            (2, Some(12.0), None, 3),
        ]
        .iter()
        .map(|&(c, a, d, m)| {
            let v = model.evaluate_observed(c, a, 0.0, None, d).unwrap();
            let elig = rm.eligible(v.class.unwrap(), v.desert_subtype, m);
            Evaluated::new(v, elig, rm.best(elig), &space, Some(&rm))
        })
        .collect();
        let ids: Vec<u32> = (0..w * h)
            .map(|i| match i % 6 {
                5 => NODATA_ID,
                _ => ((i / 2) % evs.len()) as u32,
            })
            .collect();
        let per_pixel: Vec<f64> = (0..w * h)
            .map(|i| [0.0, 1.0, 0.25, 1.0, 0.7][i % 5])
            .collect();
        // Uniform fractions below 1 (added a row at a time), fractions per pixel, and a
        // zone that holds the whole block (its sums are the grid's, copied by the caller).
        // Rows of different areas (lon/lat) and of one area (projected: the counts of whole
        // pixels are gathered over the rows), with a row of the grid below the block.
        let one_area = vec![0.0837; h + 1];
        let cases = [(false, &row_areas), (true, &row_areas), (true, &one_area)];
        for (with_full, row_areas) in cases {
            let mut coverage = vec![
                (0, Coverage::Uniform(0.3)),
                (1, Coverage::PerPixel(per_pixel.clone())),
                (2, Coverage::Uniform(0.2)),
            ];
            if with_full {
                coverage.insert(1, (3, Coverage::Uniform(1.0)));
            }
            let full: Vec<bool> = coverage.iter().map(|(_, c)| c.is_full()).collect();
            let mut zone_acc: Vec<(usize, Vec<Acc>)> = coverage
                .iter()
                .map(|(z, _)| (*z, vec![Acc::ZERO; space.len()]))
                .collect();
            let mut outside = vec![Acc::ZERO; space.len()];
            let runs = BlockRuns::of_ids(&ids, w);
            let ev = ZoneEval {
                sums: &sums,
                evs: &evs,
                runs: &runs,
                window: Window {
                    col: 0,
                    row: 0,
                    width: w,
                    height: h,
                },
                row_areas_ha: row_areas,
            };
            zone_sums(&ev, &coverage, &full, &mut zone_acc, Some(&mut outside));
            let mut want = vec![vec![Acc::ZERO; space.len()]; coverage.len()];
            let mut want_outside = vec![Acc::ZERO; space.len()];
            for (i, &id) in ids.iter().enumerate() {
                if id == NODATA_ID {
                    continue;
                }
                let (area, e) = (row_areas[i / w], &evs[id as usize]);
                let mut covered = 0.0;
                for (k, (_, frac)) in coverage.iter().enumerate() {
                    let f = frac.at(i);
                    covered += f;
                    if f > 0.0 && !full[k] {
                        sums.add(&mut want[k], e, area * f, 1);
                    }
                }
                if 1.0 - covered > 1e-12 {
                    sums.add(&mut want_outside, e, area * (1.0 - covered), 1);
                }
            }
            for ((_, got), want) in zone_acc.iter().zip(&want) {
                assert_eq!(got, want, "with a full zone: {with_full}");
            }
            assert_eq!(outside, want_outside, "with a full zone: {with_full}");
            assert_eq!(
                want_outside.iter().any(|a| a.area != 0),
                !with_full,
                "the outside is empty exactly when a zone holds the block"
            );
        }
    }

    #[test]
    fn keys_pack_what_fits_one_to_one_and_send_the_rest_to_the_general_path() {
        let pack = |r: &RawPixel| {
            key::landcover(Some(r.code))
                | key::age(r.age_bits.map(f64::from_bits))
                | key::class_code(r.forest_type, key::FT_SHIFT)
                | key::class_code(r.desert, key::DS_SHIFT)
                | key::masks(r.masks)
        };
        let raw = |code, age: Option<f64>, ft, d, masks| RawPixel {
            code,
            age_bits: age.map(f64::to_bits),
            forest_type: ft,
            desert: d,
            masks,
        };
        let fits = [
            raw(0, None, None, None, 0),
            raw(1, Some(0.0), Some(0), Some(0), 1),
            raw(4094, Some(16382.0), Some(1022), Some(1022), (1 << 17) - 1),
            raw(9, Some(255.0), None, Some(3), 0b101),
            raw(9, Some(254.0), None, Some(3), 0b101),
            raw(9, Some(255.0), Some(3), None, 0b101),
        ];
        let mut keys = Vec::new();
        for r in &fits {
            let k = pack(r);
            assert_eq!(k & key::ESCAPE, 0);
            assert_ne!(k & key::LC_MASK, 0, "data is never the nodata key");
            assert!(key::unpack(k) == *r);
            keys.push(k);
        }
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), fits.len(), "distinct inputs, distinct keys");
        for r in [
            raw(-1, None, None, None, 0),
            raw(4095, None, None, None, 0),
            raw(1, Some(-0.0), None, None, 0),
            raw(1, Some(-1.0), None, None, 0),
            raw(1, Some(2.5), None, None, 0),
            raw(1, Some(f64::NAN), None, None, 0),
            raw(1, Some(f64::INFINITY), None, None, 0),
            raw(1, Some(16383.0), None, None, 0),
            raw(1, None, Some(1023), None, 0),
            raw(1, None, Some(-3), None, 0),
            raw(1, None, None, Some(i32::MIN), 0),
            raw(1, None, None, None, 1 << 17),
        ] {
            assert_ne!(pack(&r) & key::ESCAPE, 0, "{:?}", r.code);
        }
        assert_eq!(key::landcover(None), 0);
    }

    #[test]
    fn layers_read_narrow_give_the_keys_and_raw_inputs_of_layers_read_widened() {
        // 8- and 16-bit layers with nodata values, codes and ages that escape the key (a
        // 16-bit land-cover code over 4094, negative ages) and a mask of bit 17 (escapes).
        let n = 4096;
        let x = |i: usize, m: usize| (i * 7919 + i / 13 * 104_729) % m;
        let lc = Narrow::U16((0..n).map(|i| [3, 9, 65535, 5000, 9, 9][x(i, 6)]).collect());
        let age = Narrow::I16((0..n).map(|i| x(i, 300) as i16 - 3).collect());
        let ft = Narrow::U8((0..n).map(|i| [1, 2, 255, 0][x(i, 4)]).collect());
        let ds = Narrow::U8((0..n).map(|i| x(i, 5) as u8).collect());
        let mask_bits = [0u32, 3, 17];
        let masks: Vec<Narrow> = mask_bits
            .iter()
            .map(|b| Narrow::U8((0..n).map(|i| x(i + *b as usize, 3) as u8 * 127).collect()))
            .collect();
        let layers: Vec<(&Narrow, NarrowKind, Vec<f64>, Role)> = [
            (&lc, NarrowKind::U16, vec![65535.0], Role::Landcover),
            (&age, NarrowKind::I16, vec![-1.0], Role::Age),
            (&ft, NarrowKind::U8, vec![255.0], Role::ForestType),
            (&ds, NarrowKind::U8, vec![], Role::Desert),
        ]
        .into_iter()
        .chain(
            masks
                .iter()
                .zip(mask_bits)
                .map(|(m, b)| (m, NarrowKind::U8, vec![254.0], Role::Mask(b))),
        )
        .collect();
        let l = Layers::new(&layers, n);
        let (widened, narrow) = (l.widened(SQUARE_64), l.narrow(SQUARE_64));
        // 16 + 16 + 8 + 8 + 3 × 8 bits: too many for stored keys, so fields from the tables.
        let layout = KeyLayout::of(&narrow);
        assert!(matches!(layout, KeyLayout::Fields));
        let (kw, kn) = (
            pixel_keys(&widened, &KeyLayout::Fields),
            pixel_keys(&narrow, &layout),
        );
        // Equal keys where they pack the inputs; escaped on both sides elsewhere (an escaped
        // key's other bits are never read: such a pixel takes the general path).
        for (i, (a, b)) in kw.iter().zip(&kn).enumerate() {
            let escaped = a & key::ESCAPE != 0;
            assert_eq!(escaped, b & key::ESCAPE != 0, "pixel {i}");
            assert!(escaped || a == b, "pixel {i}: {a:#x} != {b:#x}");
        }
        let escaped = kn.iter().filter(|k| *k & key::ESCAPE != 0).count();
        assert!(escaped > n / 4 && escaped < n, "{escaped} escaped of {n}");
        for i in 0..n {
            let code = widened.landcover_at(i);
            assert_eq!(code, narrow.landcover_at(i), "pixel {i}");
            if let Some(c) = code {
                assert!(
                    RawPixel::at(&widened, i, c) == RawPixel::at(&narrow, i, c),
                    "{i}"
                );
            }
        }
    }

    /// A block of 64 × 64 pixels (4096) at the grid's origin.
    const SQUARE_64: Window = Window {
        col: 0,
        row: 0,
        width: 64,
        height: 64,
    };

    /// Layers as stored: values, type, nodata values, role.
    type StoredLayer<'a> = (&'a Narrow, NarrowKind, Vec<f64>, Role);

    /// Layers given as stored, with their key tables and the values `Layer::read_codes` /
    /// `read_values` would have given (empty for a role no layer has).
    struct Layers<'a> {
        raws: Vec<&'a Narrow>,
        tables: Vec<KeyTable>,
        landcover: Vec<Option<i32>>,
        age: Vec<Option<f64>>,
        forest_type: Vec<Option<i32>>,
        desert: Vec<Option<i32>>,
        masks: Vec<u32>,
    }

    impl<'a> Layers<'a> {
        fn new(layers: &[StoredLayer<'a>], n: usize) -> Layers<'a> {
            let mut l = Layers {
                raws: layers.iter().map(|x| x.0).collect(),
                tables: Vec::new(),
                landcover: Vec::new(),
                age: Vec::new(),
                forest_type: Vec::new(),
                desert: Vec::new(),
                masks: Vec::new(),
            };
            for (k, (raw, kind, nd, role)) in layers.iter().enumerate() {
                l.tables
                    .push(KeyTable::new(*kind, |v| nd.contains(&v), k, *role));
                let wide: Vec<Option<i32>> = (0..n)
                    .map(|i| kind.value_at(raw.index(i)))
                    .map(|v| (!nd.contains(&(v as f64))).then_some(v))
                    .collect();
                match role {
                    Role::Landcover => l.landcover = wide,
                    Role::Age => l.age = wide.iter().map(|a| a.map(f64::from)).collect(),
                    Role::ForestType => l.forest_type = wide,
                    Role::Desert => l.desert = wide,
                    Role::Mask(bit) => {
                        l.masks.resize(n, 0);
                        set_mask_bit(&mut l.masks, &wide, *bit as usize);
                    }
                }
            }
            l
        }

        /// The block of `window` with every layer widened.
        fn widened(&self, window: Window) -> BlockInput<'_> {
            BlockInput {
                window,
                landcover: &self.landcover,
                age: &self.age,
                forest_type: &self.forest_type,
                desert: &self.desert,
                masks: self.masks.clone(),
                packed: Vec::new(),
            }
        }

        /// The block of `window` with every layer read narrow.
        fn narrow(&self, window: Window) -> BlockInput<'_> {
            BlockInput {
                window,
                landcover: &[],
                age: &[],
                forest_type: &[],
                desert: &[],
                masks: Vec::new(),
                packed: self
                    .raws
                    .iter()
                    .zip(&self.tables)
                    .map(|(raw, table)| Packed { raw, table })
                    .collect(),
            }
        }
    }

    #[test]
    fn stored_keys_decode_to_the_raw_inputs_of_layers_read_widened() {
        let n = 4096;
        let x = |i: usize, m: usize| (i * 7919 + i / 13 * 104_729) % m;
        let lc = Narrow::U16((0..n).map(|i| [3, 9, 65535, 5000, 9, 0][x(i, 6)]).collect());
        let age = Narrow::I16((0..n).map(|i| x(i, 300) as i16 - 3).collect());
        let ft = Narrow::U8((0..n).map(|i| [1, 2, 255, 0][x(i, 4)]).collect());
        let mask = Narrow::U8((0..n).map(|i| x(i + 3, 3) as u8 * 127).collect());
        let layers = [
            (&lc, NarrowKind::U16, vec![65535.0], Role::Landcover),
            (&age, NarrowKind::I16, vec![-1.0], Role::Age),
            (&ft, NarrowKind::U8, vec![255.0], Role::ForestType),
            (&mask, NarrowKind::U8, vec![254.0], Role::Mask(5)),
        ];
        let l = Layers::new(&layers, n);
        let (widened, narrow) = (l.widened(SQUARE_64), l.narrow(SQUARE_64));
        // 16 + 16 + 8 + 8 bits: stored keys.
        let layout = KeyLayout::of(&narrow);
        let KeyLayout::Stored { shifts } = &layout else {
            panic!("48 bits of layers should give stored keys");
        };
        assert_eq!(shifts, &[0, 16, 32, 40]);
        let keys = pixel_keys(&narrow, &layout);
        for (i, &k) in keys.iter().enumerate() {
            let expected = l.landcover[i].map(|code| RawPixel::at(&widened, i, code));
            assert!(layout.decode(&narrow, k) == expected, "pixel {i}");
            // The key is the stored values side by side.
            let stored = [lc.index(i), age.index(i), ft.index(i), mask.index(i)];
            let packed = stored
                .iter()
                .zip(shifts)
                .fold(0u64, |a, (v, s)| a | (*v as u64) << s);
            assert_eq!(k, packed, "pixel {i}");
        }
        // Nodata, escaped codes (5000) and negative ages all occur.
        assert!(l.landcover.iter().any(|c| c.is_none()) && l.landcover.contains(&Some(5000)));
        assert!(l.age.iter().any(|a| a.is_some_and(|a| a < 0.0)));
    }

    #[test]
    fn changes_are_gathered_into_run_starts_bit_for_bit() {
        // Every pattern of 0/1 bytes in a word, placed at every offset of rows of ragged
        // lengths, against the plain list of the ones.
        let mut starts = vec![0u32; 200];
        for len in [0usize, 1, 7, 8, 9, 63, 64, 65, 130, 199] {
            for pattern in (0u32..256).step_by(if len > 64 { 17 } else { 1 }) {
                let changed: Vec<u8> = (0..len)
                    .map(|i| u8::from(pattern >> ((i * 5 + len) % 8) & 1 == 1))
                    .collect();
                let ones: Vec<u32> = (0..len as u32)
                    .filter(|&i| changed[i as usize] == 1)
                    .collect();
                let runs = starts_of_changes(&changed, &mut starts);
                assert_eq!(starts[..runs], ones, "len {len} pattern {pattern}");
                assert_eq!(starts[runs] as usize, len);
            }
        }
    }

    #[test]
    fn runs_of_stored_keys_are_the_runs_of_the_pixel_keys() {
        // Layers in runs of several pixels that start at different places per layer, so that
        // a run ends wherever any one layer changes; rows of whole words of 64 pairs of
        // neighbours and of ragged lengths (the byte layer's vector path and the plain one).
        for (width, height) in [(64, 64), (150, 27), (129, 9), (65, 3), (7, 5)] {
            let window = Window {
                col: 0,
                row: 0,
                width,
                height,
            };
            let lengths = stored_runs_against_pixel_keys(window);
            if width == 64 {
                assert!((1..=5).all(|len| lengths.contains(&len)), "{lengths:?}");
            }
        }
    }

    /// The runs and run keys of every row of `window` from the layers' stored values,
    /// checked against the runs of the pixels' keys; returns the run lengths seen.
    fn stored_runs_against_pixel_keys(window: Window) -> std::collections::BTreeSet<u32> {
        let n = window.len();
        let runs = |len: usize, i: usize| (i + len / 2) / (1 + (i / 7 + len) % 9);
        let lc = Narrow::U8((0..n).map(|i| [3, 9, 0, 7][runs(1, i) % 4]).collect());
        let age = Narrow::U16((0..n).map(|i| (runs(4, i) % 5) as u16 * 900).collect());
        let ft = Narrow::I16((0..n).map(|i| [-2, 1, 4][runs(7, i) % 3]).collect());
        let layers = [
            (&lc, NarrowKind::U8, vec![0.0], Role::Landcover),
            (&age, NarrowKind::U16, vec![], Role::Age),
            (&ft, NarrowKind::I16, vec![-2.0], Role::ForestType),
        ];
        let l = Layers::new(&layers, n);
        let narrow = l.narrow(window);
        let layout = KeyLayout::of(&narrow);
        let KeyLayout::Stored { shifts } = &layout else {
            panic!("40 bits of layers should give stored keys");
        };
        let keys = pixel_keys(&narrow, &layout);
        let width = window.width;
        let (mut starts, mut expected) = (vec![0u32; width + 1], vec![0u32; width + 1]);
        let (mut changed, mut run_keys) = (vec![0u8; width], vec![0u64; width]);
        let mut same = vec![0u64; width.div_ceil(64)];
        let mut lengths = std::collections::BTreeSet::new();
        for (r, row) in keys.chunks_exact(width).enumerate() {
            let base = r * width;
            let runs = stored_run_starts(&narrow, base, width, &mut same, &mut starts);
            let want = run_starts(row, &mut changed, &mut expected);
            assert_eq!(starts[..=runs], expected[..=want], "{window:?} row {r}");
            stored_run_keys(
                &narrow,
                shifts,
                base,
                &starts[..runs],
                &mut run_keys[..runs],
            );
            for (k, &c) in run_keys[..runs].iter().zip(&starts) {
                assert_eq!(*k, row[c as usize], "{window:?} row {r} col {c}");
            }
            lengths.extend(starts[..=runs].windows(2).map(|p| p[1] - p[0]));
        }
        lengths
    }

    #[test]
    fn a_block_of_narrow_layers_computes_what_the_same_block_widened_does() {
        let (w, h) = (37, 23);
        let setup = Setup::new(w, h);
        let n = w * h;
        // Land cover 255 = nodata.
        let lc = Narrow::U8(
            (0..n)
                .map(|i| [255, 1, 2, 3, 4, 1, 4][(i / 5 + i / 37) % 7])
                .collect(),
        );
        let age = Narrow::U8((0..n).map(|i| [255, 0, 7, 35][(i / 3) % 4]).collect());
        let ft = Narrow::U8((0..n).map(|i| [8, 7, 255][(i / 11) % 3]).collect());
        let ds = Narrow::U8((0..n).map(|i| 1 + ((i / 13) % 2) as u8).collect());
        let u8_layer = |raw, role| (raw, NarrowKind::U8, vec![255.0], role);
        let l = Layers::new(
            &[
                u8_layer(&lc, Role::Landcover),
                u8_layer(&age, Role::Age),
                u8_layer(&ft, Role::ForestType),
                u8_layer(&ds, Role::Desert),
            ],
            n,
        );
        let window = Window {
            col: 0,
            row: 0,
            width: w,
            height: h,
        };
        let (widened, narrow) = (l.widened(window), l.narrow(window));
        assert!(matches!(KeyLayout::of(&narrow), KeyLayout::Stored { .. }));
        let ctx = setup.ctx(3);
        let a = compute_block(&ctx, &widened).unwrap();
        let b = compute_block(&ctx, &narrow).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a.stock), bits(&b.stock));
        assert_eq!(bits(&a.sink), bits(&b.sink));
        let len = ctx.space.len();
        assert_eq!(a.grid_acc.dense(len), b.grid_acc.dense(len));
        assert_eq!(a.nodata_area, b.nodata_area);
        assert!(a.nodata_area > 0 && a.stock.iter().any(|v| !v.is_nan()));
    }

    #[test]
    fn a_key_of_zero_bits_is_looked_up_like_any_other() {
        // A stored key may be 0 (every layer storing 0): the memo's empty slots must not
        // answer for it.
        let setup = Setup::new(4, 4);
        let ctx = setup.ctx(0);
        let mut memo = Memo::new(&ctx);
        let raw = RawPixel {
            code: 4,
            age_bits: None,
            forest_type: None,
            desert: None,
            masks: 0,
        };
        let id = memo.id_of_key(0, |_| Some(raw)).unwrap();
        assert_eq!((id, memo.evs.len()), (0, 1));
        assert_eq!(memo.id_of_key(0, |_| None).unwrap(), id, "cached");
        assert_eq!(memo.id_of_key(7, |_| None).unwrap(), NODATA_ID);
    }

    #[test]
    fn runs_are_found_and_filled_as_one_pixel_at_a_time_would() {
        // Runs of every length from 1 to 19 in rows of 23 (runs cross row ends), against
        // a pixel-by-pixel scan and fill.
        let width = 23;
        let lens: Vec<usize> = (0..60).map(|i| 1 + (i * 7) % 19).collect();
        let mut keys: Vec<u64> = lens
            .iter()
            .enumerate()
            .flat_map(|(j, &l)| std::iter::repeat_n(j as u64 % 3, l))
            .collect();
        let rows = keys.len() / width;
        keys.truncate(rows * width);
        let n = keys.len();
        let (mut fast, mut slow) = (BlockMaps::new(n, false), Vec::new());
        let (mut starts, mut changed) = (vec![0u32; width + 1], vec![0u8; width]);
        for (r, row) in keys.chunks_exact(width).enumerate() {
            let runs = run_starts(row, &mut changed, &mut starts);
            let mut expected = vec![];
            let mut c = 0;
            while c < width {
                let mut e = c + 1;
                while e < width && row[e] == row[c] {
                    e += 1;
                }
                expected.push(c as u32);
                slow.extend(std::iter::repeat_n((r * width + c) as f32, e - c));
                c = e;
            }
            assert_eq!(starts[..runs], expected, "row {r}");
            assert_eq!(starts[runs] as usize, width);
            for run in starts[..=runs].windows(2) {
                let (c, e) = (run[0] as usize, run[1] as usize);
                let start = (r * width + c) as f32;
                fast.fill_to(r * width + e, (start, 0.0, 0.0, 0));
            }
        }
        assert_eq!(fast.into_maps().0, slow);
        // A row of one key is one run; an empty row none.
        assert_eq!(run_starts(&[0, 0, 0], &mut changed, &mut starts), 1);
        assert_eq!(starts[..2], [0, 3]);
        assert_eq!(run_starts(&[], &mut changed, &mut starts), 0);
        assert_eq!(starts[0], 0);
    }

    #[test]
    fn runs_within_columns_are_the_pixels_ids_cut_to_them() {
        // Rows of 13 with runs of 1 to 4 pixels, nodata runs among them, cut to every span
        // of columns: the runs expand to exactly the pixels' ids.
        let width = 13;
        let ids: Vec<u32> = (0..3 * width)
            .map(|i| match (i * 7 / 9) % 4 {
                3 => NODATA_ID,
                k => k as u32,
            })
            .collect();
        let runs = BlockRuns::of_ids(&ids, width);
        for r in 0..3 {
            let row = &ids[r * width..(r + 1) * width];
            for a in 0..=width {
                for b in a..=width {
                    let mut got = Vec::new();
                    for (id, n) in runs.within(r, a, b) {
                        assert!(n > 0, "row {r}, {a}..{b}");
                        got.extend(std::iter::repeat_n(id, n as usize));
                    }
                    assert_eq!(got, row[a..b], "row {r}, {a}..{b}");
                }
            }
        }
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
            packed: Vec::new(),
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
