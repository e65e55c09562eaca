//! One block of a series through every year: the per-year maps, the exact per-(zone, year)
//! sums and the last year's cohort sums.
//!
//! A pixel's history depends only on its inputs — its static layers (age, forest type, desert
//! subtype, masks) and its land-cover and event codes in every year — and the state machine is
//! pure. So each distinct history of a block is run once ([`Memo`]) and the pixels sharing it
//! take its results. The sums stay exact: within a row every pixel has the same area, so `n`
//! pixels of one history in one zone add `n × quantize(area × value)` — the very integers the
//! pixels add one by one. `SeriesOptions::naive` runs every pixel on its own (the reference
//! the tests compare with); both give the same bits.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;

use super::state::{SeriesModel, Static, Year};
use super::{zone_weights, BlockSums, MapLayout, QYear, SeriesSums, Slots};
use crate::engine::Block;
use crate::error::{Error, Result};
use crate::model::CO2_PER_C;
use crate::pipeline::{BlockContext, BlockInput};
use crate::raster::writer;

/// A fast hash of the words of a history key. Hand-written (a multiply–rotate mix, as in
/// rustc's FxHash) because the standard SipHash costs more than the rest of a lookup and no
/// hashing crate is a dependency; collisions only cost a comparison.
#[derive(Default)]
pub(super) struct WordHasher(u64);

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
        for b in chunks.remainder() {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, w: usize) {
        self.write_u64(w as u64);
    }
}

/// The results of one pixel history: every year, the map values in layout order, and the
/// last year's age and stand type (for the cube).
struct History {
    years: Vec<Year>,
    maps: Vec<f32>,
    last_age: Option<f64>,
    last_type: Option<i32>,
}

/// At most this many distinct histories are kept per block (about 3 KB each for 23 years):
/// further new histories are run pixel by pixel, so a block of all-distinct pixels (e.g. a
/// continuous age raster) holds a bounded memo.
pub(super) const MEMO_MAX_HISTORIES: usize = 8192;

/// The distinct histories of a block, by id, and the key → id table.
#[derive(Default)]
struct Memo {
    histories: Vec<History>,
    ids: HashMap<Box<[i64]>, u32, BuildHasherDefault<WordHasher>>,
}

/// Encodes an optional code as one word (None as a value no i32 takes).
fn word(c: Option<i32>) -> i64 {
    c.map(i64::from).unwrap_or(i64::MIN)
}

/// Per-row pixel counts of (history id, zone) for the pixels that lie wholly in that zone
/// (zone 0 is the grid, which every pixel lies wholly in).
#[derive(Default)]
struct RowCounts {
    n: HashMap<(u32, usize), u64, BuildHasherDefault<WordHasher>>,
}

/// Each memoised history's quantized years at the last row area it was used with.
#[derive(Default)]
struct Quantized {
    by_id: Vec<Option<(u64, Vec<QYear>)>>,
}

impl Quantized {
    /// The quantized years of history `id` (its `years`) at pixel area `area_ha`.
    fn at(&mut self, id: u32, area_ha: f64, years: &[Year]) -> &[QYear] {
        let k = id as usize;
        if k >= self.by_id.len() {
            self.by_id.resize(k + 1, None);
        }
        let slot = &mut self.by_id[k];
        if slot.as_ref().map(|(bits, _)| *bits) != Some(area_ha.to_bits()) {
            let q = years.iter().map(|y| QYear::new(area_ha, y)).collect();
            *slot = Some((area_ha.to_bits(), q));
        }
        slot.as_ref().map(|(_, q)| q.as_slice()).unwrap_or_default()
    }
}

/// What one block of a series needs besides the block itself.
pub(super) struct BlockJob<'a> {
    pub(super) m: &'a SeriesModel,
    pub(super) slots: &'a Slots,
    pub(super) layout: &'a MapLayout,
    pub(super) last: &'a BlockContext<'a>,
    /// Run every pixel on its own (no memo, no counting).
    pub(super) naive: bool,
    /// Distinct histories memoised per block at most.
    pub(super) memo_max: usize,
}

impl BlockJob<'_> {
    /// Runs one pixel through every year. Errors name the pixel and the file.
    fn history(&self, b: &Block, i: usize, st: &Static) -> Result<History> {
        let (m, s, layout) = (self.m, self.slots, self.layout);
        let win = b.window;
        let (col, row) = (win.col + i % win.width, win.row + i / win.width);
        let pixel_error = |path: &Path, message: String| Error::Pixel {
            path: path.to_path_buf(),
            col,
            row,
            message,
        };
        let ny = s.years.len();
        let mut years: Vec<Year> = Vec::with_capacity(ny);
        let mut maps = vec![writer::MAP_NODATA; layout.maps.len()];
        for k in 0..ny {
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
            let code = b.codes(Some(k)).get(i).copied().flatten();
            let y = match years.last() {
                None => m.first(s.years[k], code, st),
                Some(p) => m.step(p.state, s.years[k], code, event.map(|e| e.0), st),
            }
            .map_err(|e| pixel_error(&s.landcover[k], e.to_string()))?;
            if y.class.is_some() {
                if let Some(j) = layout.stock {
                    maps[j + k] = y.stock_end_tc_per_ha as f32;
                }
                if let (Some(j), true) = (layout.net, k > 0) {
                    maps[j + k - 1] = (y.fluxes.net_tc_per_ha() * CO2_PER_C) as f32;
                }
                if let (Some(j), Some(a), true) = (layout.age, y.age_yr, k + 1 < ny) {
                    maps[j + k] = a as f32;
                }
            }
            years.push(y);
        }
        let (mut last_age, mut last_type) = (None, None);
        if let Some(y) = years.last() {
            if let Some(a) = y.class.and(y.age_yr) {
                maps[0] = a as f32;
                last_age = Some(f64::from(a));
            }
            last_type = st.forest_type_code.or(y.state.stand_type_code);
        }
        Ok(History {
            years,
            maps,
            last_age,
            last_type,
        })
    }

    /// Runs one block through every year: the maps of the layout and the sums. Pure, no IO.
    /// The series' hot loop (every pixel of every year passes here), kept in one piece at about
    /// 120 lines so that its per-row counters and the memo stay in locals.
    pub(super) fn run(&self, b: &Block) -> Result<(Vec<Vec<f32>>, BlockSums)> {
        let (m, s, layout, last) = (self.m, self.slots, self.layout, self.last);
        let zones = last.zones.map(|z| (z, last.grid));
        let win = b.window;
        let cov = zones
            .map(|(z, grid)| z.block_coverage(grid, win))
            .unwrap_or_default();
        let nz = zones.map(|(z, _)| z.zones.len()).unwrap_or(0);
        let ny = s.years.len();
        let mut acc = SeriesSums::new(nz, ny, m.events.events.len());
        let mut maps = vec![vec![writer::MAP_NODATA; win.len()]; layout.maps.len()];
        let mut weights = Vec::new();
        let codes: Vec<&[Option<i32>]> = (0..ny).map(|k| b.codes(Some(k))).collect();
        let (v_age, v_ft, v_ds) = (b.values(s.age), b.codes(s.forest_type), b.codes(s.desert));
        let mut masks = vec![0u32; if s.masks.is_empty() { 0 } else { win.len() }];
        // The last year as `run` would read it: its land cover, the series' ages and types.
        let mut last_age: Vec<Option<f64>> = vec![None; win.len()];
        let mut last_type: Vec<Option<i32>> = vec![None; win.len()];
        for (bit, k) in s.masks.clone().enumerate() {
            crate::pipeline::set_mask_bit(&mut masks, b.codes(Some(k)), bit);
        }
        let event_slots: Vec<usize> = s.events.iter().flatten().map(|(slot, _)| *slot).collect();
        let event_codes: Vec<&[Option<i32>]> =
            event_slots.iter().map(|k| b.codes(Some(*k))).collect();
        let mut memo = Memo::default();
        let mut key: Vec<i64> = Vec::with_capacity(5 + ny + event_slots.len());
        let mut prev_key: Vec<i64> = Vec::new();
        let mut prev_id = u32::MAX;
        let mut counts = RowCounts::default();
        let mut quantized = Quantized::default();
        for r in 0..win.height {
            let a_ha = last.row_areas_ha[win.row + r];
            for c in 0..win.width {
                let i = r * win.width + c;
                let st = Static {
                    age_yr: v_age.get(i).copied().flatten(),
                    forest_type_code: v_ft.get(i).copied().flatten(),
                    desert_subtype_code: v_ds.get(i).copied().flatten(),
                    masks: masks.get(i).copied().unwrap_or(0),
                };
                zone_weights(&cov, nz, zones.is_some(), i, &mut weights);
                // The pixel's history: from the memo (id), or run for this pixel alone
                // (naive, or a new history once the memo is full).
                let mut id = None;
                if !self.naive {
                    key.clear();
                    key.extend([
                        i64::from(st.age_yr.is_some()),
                        st.age_yr.map(f64::to_bits).unwrap_or(0) as i64,
                        word(st.forest_type_code),
                        word(st.desert_subtype_code),
                        i64::from(st.masks),
                    ]);
                    key.extend(codes.iter().map(|v| word(v.get(i).copied().flatten())));
                    key.extend(
                        event_codes
                            .iter()
                            .map(|v| word(v.get(i).copied().flatten())),
                    );
                    if key == prev_key {
                        id = Some(prev_id);
                    } else if let Some(known) = memo.ids.get(key.as_slice()) {
                        id = Some(*known);
                    } else if memo.histories.len() < self.memo_max {
                        let new = memo.histories.len() as u32;
                        memo.histories.push(self.history(b, i, &st)?);
                        memo.ids.insert(key.clone().into_boxed_slice(), new);
                        id = Some(new);
                    }
                    if let Some(known) = id {
                        prev_id = known;
                        std::mem::swap(&mut key, &mut prev_key);
                    }
                }
                let alone;
                let h = match id {
                    Some(k) => &memo.histories[k as usize],
                    None => {
                        alone = self.history(b, i, &st)?;
                        &alone
                    }
                };
                for (j, v) in h.maps.iter().enumerate() {
                    maps[j][i] = *v;
                }
                last_age[i] = h.last_age;
                last_type[i] = h.last_type;
                for (z, f) in &weights {
                    match id {
                        Some(k) if *f == 1.0 => *counts.n.entry((k, *z)).or_insert(0) += 1,
                        _ => {
                            for (k, y) in h.years.iter().enumerate() {
                                acc.add_year(*z, k, a_ha * f, y);
                            }
                        }
                    }
                }
            }
            // The row's wholly covered pixels: n × one pixel's integers, quantized once per
            // history and row area (rows of a projected grid share one area).
            for ((id, z), n) in counts.n.drain() {
                let years = &memo.histories[id as usize].years;
                let q = quantized.at(id, a_ha, years);
                for (k, y) in years.iter().enumerate() {
                    acc.add_q_n(z, k, &q[k], y, n);
                }
            }
        }
        acc.settle();
        let input = BlockInput {
            window: win,
            landcover: codes[ny - 1],
            age: &last_age,
            forest_type: &last_type,
            desert: v_ds,
            masks,
            packed: Vec::new(),
        };
        let cube =
            crate::pipeline::compute_block(last, &input).map_err(|(col, row, e)| Error::Pixel {
                path: s.landcover[ny - 1].clone(),
                col,
                row,
                message: e.to_string(),
            })?;
        Ok((maps, (acc, cube)))
    }
}
