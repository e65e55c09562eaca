//! Overviews built while a map streams by, from its full-resolution blocks, so that finishing
//! a COG needs no second pass over the written data to compute them.
//!
//! Level k halves level k − 1 (sizes rounded up, as GDAL sizes the overviews of factor 2ᵏ).
//! An overview pixel of a continuous map is the mean of the valid full-resolution pixels it
//! covers: (sum, count) pairs are carried up the pyramid, always combined in the same order
//! (top-left, top-right, bottom-left, bottom-right), so every overview pixel has the same bits
//! whatever the block size or the thread count. A categorical map takes, at each level, the
//! most frequent valid value of the four pixels below (ties: the smallest), like a cascade of
//! GDAL's MODE.
//!
//! The levels a block holds entirely (factor 2ᵏ dividing the block size) are computed with the
//! block, in parallel; the coarser ones are built by [`Upper`] one row of blocks at a time,
//! holding at most one row per level.

use crate::error::Result;
use crate::grid::Window;

/// COG tile size; levels are added until the coarsest fits in one tile (as the COG driver
/// does with OVERVIEWS=AUTO).
pub const COG_BLOCK_PX: usize = 512;

/// Tile size of the overview levels inside the temporary file: a 512-px block fills whole
/// tiles of the first levels, so GDAL never holds a partly written tile for long.
pub const TEMP_OVERVIEW_BLOCK_PX: usize = 128;

/// The pyramid of a map.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// (width, height) of level k; level 0 is full resolution.
    pub dims: Vec<(usize, usize)>,
    /// Levels 1..=local are computed inside each block.
    pub local: usize,
}

impl Plan {
    /// The levels of a `width` × `height` map processed in blocks of `block` px.
    pub fn new(width: usize, height: usize, block: usize) -> Plan {
        Plan::down_to(width, height, block, COG_BLOCK_PX)
    }

    /// Levels until the coarsest fits in `coarsest_px` × `coarsest_px`.
    pub fn down_to(width: usize, height: usize, block: usize, coarsest_px: usize) -> Plan {
        let mut dims = vec![(width, height)];
        while let Some(&(w, h)) = dims.last() {
            if w.max(h) <= coarsest_px.max(1) {
                break;
            }
            dims.push((w.div_ceil(2), h.div_ceil(2)));
        }
        let levels = dims.len() - 1;
        let local = (block.max(1).trailing_zeros() as usize).min(levels);
        Plan { dims, local }
    }

    /// Number of overview levels (0: the map is small enough to need none).
    pub fn levels(&self) -> usize {
        self.dims.len() - 1
    }

    /// Decimation factors of the levels (2, 4, 8, …), as GDAL's BuildOverviews takes them.
    pub fn factors(&self) -> Vec<i32> {
        (1..=self.levels()).map(|k| 1i32 << k).collect()
    }
}

/// What an overview pixel carries up the pyramid.
pub trait Cell: Copy + Default + Send + 'static {
    /// The map's pixel type.
    type Value: Copy + Send + gdal::raster::GdalType + bytemuck::Pod;
    /// The cell of one map pixel.
    fn leaf(v: Self::Value) -> Self;
    /// Combines the pixels below one overview pixel, given top-left, top-right, bottom-left,
    /// bottom-right (those beyond the map's edge left out).
    fn reduce(children: &[Self]) -> Self;
    /// [`Cell::reduce`] of four children (the common case), with the same result.
    #[inline]
    fn reduce4(a: Self, b: Self, c: Self, d: Self) -> Self {
        Self::reduce(&[a, b, c, d])
    }
    /// The pixel value the overview stores.
    fn value(self) -> Self::Value;
    /// Appends the cells of two full rows of map pixels halved (`top` and `bottom` of even,
    /// equal length): `reduce4` of each 2 × 2 square, left to right. A type may do it faster,
    /// with the same result.
    #[inline]
    fn halve_rows(top: &[Self::Value], bottom: &[Self::Value], out: &mut Vec<Self>) {
        for (t, b) in top.chunks_exact(2).zip(bottom.chunks_exact(2)) {
            out.push(Self::reduce4(
                Self::leaf(t[0]),
                Self::leaf(t[1]),
                Self::leaf(b[0]),
                Self::leaf(b[1]),
            ));
        }
    }
}

/// Mean of the valid (non-NaN) pixels: their sum and count.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Mean {
    sum: f64,
    count: u64,
}

impl Cell for Mean {
    type Value = f32;
    #[inline]
    fn leaf(v: f32) -> Mean {
        // The same values as `Mean::default()` for NaN (the compiler keeps a branch here,
        // taken the same way across a map's valid areas).
        let valid = !v.is_nan();
        Mean {
            sum: if valid { v as f64 } else { 0.0 },
            count: valid as u64,
        }
    }
    #[inline]
    fn reduce(children: &[Mean]) -> Mean {
        // Summed from the first child on, in order: reduce4 gives the same bits.
        let mut m = children.first().copied().unwrap_or_default();
        for c in children.iter().skip(1) {
            m.sum += c.sum;
            m.count += c.count;
        }
        m
    }
    #[inline]
    fn reduce4(a: Mean, b: Mean, c: Mean, d: Mean) -> Mean {
        Mean {
            sum: a.sum + b.sum + c.sum + d.sum,
            count: a.count + b.count + c.count + d.count,
        }
    }
    #[inline]
    fn value(self) -> f32 {
        if self.count == 0 {
            f32::NAN
        } else if self.count.is_power_of_two() {
            // Whole squares hold 4ᵏ pixels: dividing by 2ᵏ is multiplying by its exact
            // reciprocal 2⁻ᵏ (both round the same exact quotient), built from its exponent
            // bits so that no division is left (k < 64, far inside f64's exponent range).
            let recip = f64::from_bits((1023 - u64::from(self.count.trailing_zeros())) << 52);
            (self.sum * recip) as f32
        } else {
            (self.sum / self.count as f64) as f32
        }
    }
    /// The plain sum of each square's four leaves, with no shortcut: one for squares of four
    /// equal pixels (4 × the value) gives the same bits but mispredicts on textured maps,
    /// where such squares and the others alternate. Eight squares at a time, their sums and
    /// counts first side by side in arrays (which the compiler turns into vector
    /// instructions), then as cells.
    #[inline]
    fn halve_rows(top: &[f32], bottom: &[f32], out: &mut Vec<Mean>) {
        const N: usize = 8;
        // NaN (nodata) as 0, as `Mean::leaf` has it (converted first, then selected: the form
        // that vectorizes).
        #[inline(always)]
        fn sum(v: f32) -> f64 {
            let x = v as f64;
            if v.is_nan() {
                0.0
            } else {
                x
            }
        }
        let mut tops = top.chunks_exact(2 * N);
        let mut bottoms = bottom.chunks_exact(2 * N);
        for (t, b) in (&mut tops).zip(&mut bottoms) {
            let mut sums = [0f64; N];
            let mut counts = [0u64; N];
            for i in 0..N {
                let (tl, tr, bl, br) = (t[2 * i], t[2 * i + 1], b[2 * i], b[2 * i + 1]);
                // Summed as `Mean::reduce4` sums the four leaves: the same bits.
                sums[i] = ((sum(tl) + sum(tr)) + sum(bl)) + sum(br);
                #[allow(clippy::eq_op)] // v == v: not NaN
                {
                    counts[i] = (tl == tl) as u64
                        + (tr == tr) as u64
                        + (bl == bl) as u64
                        + (br == br) as u64;
                }
            }
            out.extend(
                sums.iter()
                    .zip(&counts)
                    .map(|(&sum, &count)| Mean { sum, count }),
            );
        }
        out.extend(
            tops.remainder()
                .chunks_exact(2)
                .zip(bottoms.remainder().chunks_exact(2))
                .map(|(t, b)| {
                    let l = Mean::leaf;
                    Mean::reduce4(l(t[0]), l(t[1]), l(b[0]), l(b[1]))
                }),
        );
    }
}

/// Most frequent valid code; `NODATA` where none is valid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mode<const NODATA: u8>(pub u8);

impl<const NODATA: u8> Default for Mode<NODATA> {
    fn default() -> Self {
        Mode(NODATA)
    }
}

impl<const NODATA: u8> Cell for Mode<NODATA> {
    type Value = u8;
    #[inline]
    fn leaf(v: u8) -> Self {
        Mode(v)
    }
    fn reduce(children: &[Self]) -> Self {
        let mut best = NODATA;
        let mut best_n = 0;
        for a in children {
            if a.0 == NODATA {
                continue;
            }
            let n = children.iter().filter(|b| b.0 == a.0).count();
            if n > best_n || (n == best_n && a.0 < best) {
                best = a.0;
                best_n = n;
            }
        }
        Mode(best)
    }
    /// Four equal codes (the common case: class maps come in patches) are their own mode,
    /// or nodata; otherwise [`Cell::reduce`].
    #[inline]
    fn reduce4(a: Self, b: Self, c: Self, d: Self) -> Self {
        if a.0 == b.0 && a.0 == c.0 && a.0 == d.0 {
            return a;
        }
        // Each valid code scores (its count among the four, 255 − code): the highest score
        // is the most frequent code, the smallest on ties; no valid code scores 0 (nodata).
        let v = [a.0, b.0, c.0, d.0];
        let score = |x: u8| -> u16 {
            let n = v.iter().filter(|&&y| y == x).count() as u16;
            u16::from(x != NODATA) * ((n << 8) | u16::from(255 - x))
        };
        let best = v.iter().map(|&x| score(x)).max().unwrap_or(0);
        if best == 0 {
            Mode(NODATA)
        } else {
            Mode(255 - (best & 0xff) as u8)
        }
    }
    #[inline]
    fn value(self) -> u8 {
        self.0
    }
}

/// A rectangle of one level, at (col, row) of that level.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile<T> {
    /// First column (of the level).
    pub col: usize,
    /// First row (of the level).
    pub row: usize,
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Row-major values.
    pub data: Vec<T>,
}

impl<T> Tile<T> {
    /// The tile's rectangle as a window.
    pub fn window(&self) -> Window {
        Window {
            col: self.col,
            row: self.row,
            width: self.width,
            height: self.height,
        }
    }
}

/// Halves a `width` × `height` rectangle at (col, row) whose pixels `get` returns.
fn halve_by<C: Cell>(
    col: usize,
    row: usize,
    width: usize,
    height: usize,
    get: impl Fn(usize) -> C,
) -> Tile<C> {
    let (w2, h2) = (width.div_ceil(2), height.div_ceil(2));
    let mut data = Vec::with_capacity(w2 * h2);
    if width % 2 == 0 && height % 2 == 0 {
        // Whole squares only: row pairs, without a test per square.
        for y in 0..h2 {
            let (top, bottom) = (2 * y * width, (2 * y + 1) * width);
            data.extend((0..w2).map(|x| {
                let sx = 2 * x;
                C::reduce4(
                    get(top + sx),
                    get(top + sx + 1),
                    get(bottom + sx),
                    get(bottom + sx + 1),
                )
            }));
        }
        return Tile {
            col: col / 2,
            row: row / 2,
            width: w2,
            height: h2,
            data,
        };
    }
    let mut kids = [C::default(); 4];
    for y in 0..h2 {
        let (top, bottom) = (2 * y * width, (2 * y + 1) * width);
        let full_rows = 2 * y + 1 < height;
        for x in 0..w2 {
            let sx = 2 * x;
            if full_rows && sx + 1 < width {
                data.push(C::reduce4(
                    get(top + sx),
                    get(top + sx + 1),
                    get(bottom + sx),
                    get(bottom + sx + 1),
                ));
                continue;
            }
            let mut n = 0;
            for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                let (sx, sy) = (2 * x + dx, 2 * y + dy);
                if sx < width && sy < height {
                    kids[n] = get(sy * width + sx);
                    n += 1;
                }
            }
            data.push(C::reduce(&kids[..n]));
        }
    }
    Tile {
        col: col / 2,
        row: row / 2,
        width: w2,
        height: h2,
        data,
    }
}

/// [`halve_by`] of a block's own values, two rows at a time (the hot loop of the pyramid:
/// every pixel of every map passes through it once).
fn halve_values<C: Cell>(w: Window, data: &[C::Value]) -> Tile<C> {
    let (width, height) = (w.width, w.height);
    if width % 2 != 0 || height % 2 != 0 {
        return halve_by(w.col, w.row, width, height, |i| C::leaf(data[i]));
    }
    let mut out = Vec::with_capacity(width / 2 * height / 2);
    for rows in data.chunks_exact(2 * width) {
        let (top, bottom) = rows.split_at(width);
        C::halve_rows(top, bottom, &mut out);
    }
    Tile {
        col: w.col / 2,
        row: w.row / 2,
        width: width / 2,
        height: height / 2,
        data: out,
    }
}

/// The overview levels one block holds.
#[derive(Debug, Clone)]
pub struct BlockLevels<C: Cell> {
    /// Values of levels 1..=local, in level order.
    pub values: Vec<Tile<C::Value>>,
    /// The cells of the last local level (level 0 when none is local), for the levels above;
    /// `None` when every level is local.
    pub top: Option<Tile<C>>,
}

/// The levels of the block at window `w` (in the map's own pixel coordinates) with `data`.
pub fn reduce_block<C: Cell>(plan: &Plan, w: Window, data: &[C::Value]) -> BlockLevels<C> {
    let mut values = Vec::with_capacity(plan.local);
    if plan.levels() == 0 {
        return BlockLevels { values, top: None };
    }
    let mut tile = if plan.local == 0 {
        Tile {
            col: w.col,
            row: w.row,
            width: w.width,
            height: w.height,
            data: data.iter().map(|v| C::leaf(*v)).collect(),
        }
    } else {
        halve_values::<C>(w, data)
    };
    for k in 1..=plan.local {
        if k > 1 {
            tile = halve_by(tile.col, tile.row, tile.width, tile.height, |i| {
                tile.data[i]
            });
        }
        values.push(Tile {
            col: tile.col,
            row: tile.row,
            width: tile.width,
            height: tile.height,
            data: tile.data.iter().map(|c| c.value()).collect(),
        });
    }
    let top = (plan.local < plan.levels()).then_some(tile);
    BlockLevels { values, top }
}

/// Builds the levels above the local ones from the blocks' top cells, a row of blocks at a
/// time, holding at most one pending row per level.
#[derive(Debug)]
pub struct Upper<C: Cell> {
    plan: Plan,
    strip: Vec<C>,
    strip_row0: usize,
    strip_rows: usize,
    /// Index k: an even row of level k − 1 waiting for the odd row below it.
    pending: Vec<Option<Vec<C>>>,
}

/// Receives finished overview rows: (level, row, values).
pub type Emit<'a, T> = dyn FnMut(usize, usize, Vec<T>) -> Result<()> + 'a;

impl<C: Cell> Upper<C> {
    /// The upper levels of `plan`, empty.
    pub fn new(plan: Plan) -> Upper<C> {
        let n = plan.levels();
        Upper {
            plan,
            strip: Vec::new(),
            strip_row0: 0,
            strip_rows: 0,
            pending: vec![None; n + 1],
        }
    }

    /// Adds a block's top cells (blocks must come in row-major order); when the block ends
    /// its row of blocks, every overview row that is now complete goes to `emit`.
    pub fn add(&mut self, t: Tile<C>, emit: &mut Emit<'_, C::Value>) -> Result<()> {
        let base = self.plan.local;
        let wl = self.plan.dims[base].0;
        if t.col == 0 {
            self.strip_row0 = t.row;
            self.strip_rows = t.height;
            self.strip = vec![C::default(); wl * t.height];
        }
        for r in 0..t.height.min(self.strip_rows) {
            let dst = r * wl + t.col;
            self.strip[dst..dst + t.width].copy_from_slice(&t.data[r * t.width..(r + 1) * t.width]);
        }
        if t.col + t.width == wl {
            let strip = std::mem::take(&mut self.strip);
            for (r, row) in strip.chunks(wl).enumerate() {
                self.feed(base + 1, self.strip_row0 + r, row.to_vec(), emit)?;
            }
        }
        Ok(())
    }

    /// Row `y` of level k − 1 arrives.
    fn feed(
        &mut self,
        k: usize,
        y: usize,
        row: Vec<C>,
        emit: &mut Emit<'_, C::Value>,
    ) -> Result<()> {
        if k > self.plan.levels() {
            return Ok(());
        }
        let below_height = self.plan.dims[k - 1].1;
        if y % 2 == 0 && y + 1 < below_height {
            self.pending[k] = Some(row);
            return Ok(());
        }
        // The one or two rows of level k − 1 under row y / 2 of level k.
        let below_width = row.len();
        let rows = match self.pending[k].take() {
            Some(mut upper_row) if y % 2 == 1 => {
                upper_row.extend(row);
                upper_row
            }
            _ => row,
        };
        let height = rows.len() / below_width.max(1);
        let out = halve_by(0, 0, below_width, height, |i| rows[i]).data;
        emit(k, y / 2, out.iter().map(|c| c.value()).collect())?;
        self.feed(k + 1, y / 2, out, emit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: each overview pixel straight from the full-resolution pixels it covers.
    fn direct_mean(data: &[f32], w: usize, h: usize, k: usize) -> Vec<f32> {
        let f = 1 << k;
        let (ow, oh) = (w.div_ceil(f), h.div_ceil(f));
        let mut out = Vec::new();
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut s, mut n) = (0.0f64, 0u64);
                for y in oy * f..((oy + 1) * f).min(h) {
                    for x in ox * f..((ox + 1) * f).min(w) {
                        let v = data[y * w + x];
                        if !v.is_nan() {
                            s += v as f64;
                            n += 1;
                        }
                    }
                }
                out.push(if n == 0 {
                    f32::NAN
                } else {
                    (s / n as f64) as f32
                });
            }
        }
        out
    }

    /// Builds every level of a map by blocks of `block`, as the writer does.
    /// (Levels down to 3 px, so that small maps exercise the levels above the blocks.)
    fn build<C: Cell>(data: &[C::Value], w: usize, h: usize, block: usize) -> Vec<Vec<C::Value>>
    where
        C::Value: Default,
    {
        let plan = Plan::down_to(w, h, block, 3);
        assert!(
            block >= 512 || plan.local < plan.levels(),
            "the test must reach Upper"
        );
        let mut levels: Vec<Vec<C::Value>> = plan.dims[1..]
            .iter()
            .map(|(a, b)| vec![C::Value::default(); a * b])
            .collect();
        let mut upper = Upper::<C>::new(plan.clone());
        let grid = crate::grid::Grid {
            width: w,
            height: h,
            geo_transform: [0.0, 1.0, 0.0, 0.0, 0.0, -1.0],
            crs_wkt: String::new(),
            area: crate::grid::AreaModel::Projected {
                metres_per_unit: 1.0,
            },
        };
        let dims = plan.dims.clone();
        for win in grid.windows(block, 0..h) {
            let block_data: Vec<C::Value> = (0..win.height)
                .flat_map(|r| {
                    let s = (win.row + r) * w + win.col;
                    data[s..s + win.width].to_vec()
                })
                .collect();
            let bl = reduce_block::<C>(&plan, win, &block_data);
            for (k, t) in bl.values.into_iter().enumerate() {
                let lw = dims[k + 1].0;
                for r in 0..t.height {
                    for c in 0..t.width {
                        levels[k][(t.row + r) * lw + t.col + c] = t.data[r * t.width + c];
                    }
                }
            }
            if let Some(top) = bl.top {
                upper
                    .add(top, &mut |k, y, row: Vec<C::Value>| {
                        let lw = dims[k].0;
                        levels[k - 1][y * lw..(y + 1) * lw].copy_from_slice(&row);
                        Ok(())
                    })
                    .unwrap();
            }
        }
        levels
    }

    fn sample(w: usize, h: usize) -> Vec<f32> {
        (0..w * h)
            .map(|i| {
                if i % 13 == 5 {
                    f32::NAN
                } else {
                    ((i * 7919) % 1000) as f32 * 0.37 + 0.01
                }
            })
            .collect()
    }

    #[test]
    fn levels_are_sized_like_gdal_and_stop_at_one_cog_tile() {
        let p = Plan::new(20000, 7001, 512);
        assert_eq!(p.dims[1], (10000, 3501));
        assert_eq!(p.dims.last().unwrap(), &(313, 110));
        assert_eq!(p.factors(), vec![2, 4, 8, 16, 32, 64]);
        assert_eq!(p.local, 6);
        assert_eq!(Plan::new(512, 300, 512).levels(), 0);
        assert_eq!(Plan::new(2000, 300, 48).local, 2);
    }

    #[test]
    fn mean_equals_the_mean_of_the_covered_pixels_for_any_block_size() {
        let (w, h) = (300, 211);
        let data = sample(w, h);
        let reference = build::<Mean>(&data, w, h, 512);
        for k in 1..=reference.len() {
            let direct = direct_mean(&data, w, h, k);
            for (a, b) in reference[k - 1].iter().zip(&direct) {
                assert!(
                    (a.is_nan() && b.is_nan()) || ((a - b).abs() <= 1e-6 * b.abs().max(1.0)),
                    "level {k}: {a} vs {b}"
                );
            }
        }
        for block in [16, 48, 64, 80, 1024] {
            // 48 and 80 hold 4 levels, 64 six: the rest comes from Upper.
            let other = build::<Mean>(&data, w, h, block);
            for (a, b) in reference.iter().flatten().zip(other.iter().flatten()) {
                assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
            }
        }
    }

    #[test]
    fn mean_shortcuts_give_the_bits_of_the_plain_sums() {
        // Equal squares (4 × v) and the general square, against reduce4 of the leaves.
        let vals = [
            0.0f32,
            -0.0,
            1.0,
            1.0 / 3.0,
            f32::MAX,
            f32::MIN_POSITIVE / 8.0, // subnormal
            -7.25e-3,
            f32::NAN,
            83.318_56,
        ];
        let mut top = Vec::new();
        let mut bottom = Vec::new();
        for (i, a) in vals.iter().enumerate() {
            for b in &vals {
                // An equal square, then a mixed one.
                top.extend([*a, *a, *a, *b]);
                bottom.extend([*a, *a, vals[(i + 3) % vals.len()], *a]);
            }
        }
        let mut fast = Vec::new();
        Mean::halve_rows(&top, &bottom, &mut fast);
        let plain: Vec<Mean> = top
            .chunks_exact(2)
            .zip(bottom.chunks_exact(2))
            .map(|(t, b)| {
                let l = Mean::leaf;
                Mean::reduce4(l(t[0]), l(t[1]), l(b[0]), l(b[1]))
            })
            .collect();
        assert_eq!(fast.len(), plain.len());
        for (f, p) in fast.iter().zip(&plain) {
            assert_eq!((f.sum.to_bits(), f.count), (p.sum.to_bits(), p.count));
        }
        // The value: a power-of-two count multiplies by the reciprocal, bit for bit a division
        // (and other counts divide).
        for sum in [1.0, 1.0 / 3.0, 1e300, -5e-324, 2.5e-310, 123.456, 0.0] {
            for count in [1u64, 2, 3, 4, 7, 16, 64, 1 << 20] {
                let m = Mean { sum, count };
                assert_eq!(m.value().to_bits(), ((sum / count as f64) as f32).to_bits());
            }
        }
        // No valid pixel: the maps' own NaN.
        assert_eq!(Mean::default().value().to_bits(), f32::NAN.to_bits());
        assert_eq!(Mean::leaf(f32::NAN), Mean::default());
        assert_eq!(Mean::leaf(-0.0).sum.to_bits(), (-0.0f64).to_bits());
    }

    #[test]
    fn mode_takes_the_most_frequent_valid_code_and_the_smallest_on_ties() {
        type M = Mode<255>;
        let r = |v: &[u8]| M::reduce(&v.iter().map(|x| Mode(*x)).collect::<Vec<_>>()).0;
        assert_eq!(r(&[3, 1, 3, 255]), 3);
        assert_eq!(r(&[2, 1, 255, 255]), 1);
        assert_eq!(r(&[255, 255, 255, 255]), 255);
        assert_eq!(r(&[4]), 4);
        // The four-pixel shortcut agrees with the general rule on every pattern of 5 codes
        // (nodata and the extreme codes among them).
        for p in 0..625u32 {
            let k = |i: u32| Mode::<255>([1, 2, 255, 0, 254][(p / 5u32.pow(i) % 5) as usize]);
            let (a, b, c, d) = (k(0), k(1), k(2), k(3));
            assert_eq!(M::reduce4(a, b, c, d), M::reduce(&[a, b, c, d]), "{p}");
        }
        // Block-size invariance of the categorical pyramid.
        let (w, h) = (230, 177);
        let data: Vec<u8> = (0..w * h)
            .map(|i| if i % 11 == 0 { 255 } else { (i % 5) as u8 })
            .collect();
        let a = build::<M>(&data, w, h, 512);
        assert_eq!(a, build::<M>(&data, w, h, 16));
        assert_eq!(a, build::<M>(&data, w, h, 48));
    }
}
