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
//! block, in parallel: by a [`Pyramid`] fed the block's rows as they are computed, or by
//! [`reduce_block`] from the whole block; the coarser ones are built by [`Upper`] one row of
//! blocks at a time, holding at most one row per level. The loops every pixel goes through
//! have SSE2 and AVX2 forms on x86-64 (the `x86_64` module), held by the tests to the plain
//! code bit for bit.

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
    /// Writes the cells of two full rows of map pixels halved (`top` and `bottom` of even,
    /// equal length, `out` half as long): `reduce4` of each 2 × 2 square, left to right. A
    /// type may do it faster, with the same result.
    #[inline]
    fn halve_rows(top: &[Self::Value], bottom: &[Self::Value], out: &mut [Self]) {
        squares_from(0, top, bottom, out, |t, b| {
            let l = Self::leaf;
            Self::reduce4(l(t[0]), l(t[1]), l(b[0]), l(b[1]))
        });
    }
    /// [`Cell::halve_rows`], and the [`Cell::value`] of each cell into `values` (as long as
    /// `out`).
    #[inline]
    fn halve_rows_valued(
        top: &[Self::Value],
        bottom: &[Self::Value],
        out: &mut [Self],
        values: &mut [Self::Value],
    ) {
        Self::halve_rows(top, bottom, out);
        for (v, c) in values.iter_mut().zip(out.iter()) {
            *v = c.value();
        }
    }
    /// [`Cell::halve_rows`] of two rows of cells (of a level above the map's own pixels).
    #[inline]
    fn halve_cells(top: &[Self], bottom: &[Self], out: &mut [Self]) {
        squares_from(0, top, bottom, out, |t, b| {
            Self::reduce4(t[0], t[1], b[0], b[1])
        });
    }
    /// Appends the [`Cell::value`] of each cell. A type may do it faster, with the same
    /// result.
    #[inline]
    fn values_into(cells: &[Self], out: &mut Vec<Self::Value>) {
        out.extend(cells.iter().map(|c| c.value()));
    }
}

/// `f` of each 2 × 2 square of two rows (given as its top and bottom pairs), from pixel
/// `done` of the rows on, into `out` from cell `done / 2` on: the plain code, and what is
/// left of a row after a vector loop.
#[inline(always)]
fn squares_from<T: Copy, C>(
    done: usize,
    top: &[T],
    bottom: &[T],
    out: &mut [C],
    f: impl Fn(&[T], &[T]) -> C,
) {
    let squares = top[done..]
        .chunks_exact(2)
        .zip(bottom[done..].chunks_exact(2));
    for ((t, b), o) in squares.zip(&mut out[done / 2..]) {
        *o = f(t, b);
    }
}

/// Mean of the valid (non-NaN) pixels: their sum and count.
///
/// The count is a float too, so that a cell is two `f64` side by side (sum, count) that one
/// vector instruction adds to another; it holds whole numbers, exact below 2⁵³ pixels.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Mean([f64; 2]);

/// The mantissa bits of an `f64`: zero for 0 and the powers of two.
const F64_MANTISSA: u64 = (1 << 52) - 1;

/// 2046 · 2⁵²: minus the bits of 2ᵏ, the bits of 2⁻ᵏ.
const RECIPROCAL_BITS: u64 = 2046 << 52;

impl Mean {
    #[inline(always)]
    fn new(sum: f64, count: f64) -> Mean {
        Mean([sum, count])
    }
    #[inline(always)]
    fn sum(self) -> f64 {
        self.0[0]
    }
    #[inline(always)]
    fn count(self) -> f64 {
        self.0[1]
    }
}

impl Cell for Mean {
    type Value = f32;
    #[inline]
    fn leaf(v: f32) -> Mean {
        // The same values as `Mean::default()` for NaN (converted first, then selected: the
        // form that vectorizes).
        let x = v as f64;
        if v.is_nan() {
            Mean::default()
        } else {
            Mean::new(x, 1.0)
        }
    }
    #[inline]
    fn reduce(children: &[Mean]) -> Mean {
        // Summed from the first child on, in order: reduce4 gives the same bits.
        let mut m = children.first().copied().unwrap_or_default();
        for c in children.iter().skip(1) {
            m = Mean::new(m.sum() + c.sum(), m.count() + c.count());
        }
        m
    }
    #[inline]
    fn reduce4(a: Mean, b: Mean, c: Mean, d: Mean) -> Mean {
        Mean::new(
            ((a.sum() + b.sum()) + c.sum()) + d.sum(),
            ((a.count() + b.count()) + c.count()) + d.count(),
        )
    }
    /// The mean as a map value (NaN for no pixel). Whole squares hold 4ᵏ pixels: dividing by
    /// a power of two is multiplying by its exact reciprocal (both round the same exact
    /// quotient), whose bits are 2046 · 2⁵² minus the count's; no division is left
    /// in the common case.
    #[inline]
    fn value(self) -> f32 {
        let (sum, count) = (self.sum(), self.count());
        if count == 0.0 {
            f32::NAN
        } else if count.to_bits() & F64_MANTISSA == 0 {
            (sum * f64::from_bits(RECIPROCAL_BITS - count.to_bits())) as f32
        } else {
            (sum / count) as f32
        }
    }
    /// The plain sum of each square's four leaves, with no shortcut: one for squares of four
    /// equal pixels (4 × the value) gives the same bits but mispredicts on textured maps,
    /// where such squares and the others alternate. With SSE2 (every x86-64) two squares
    /// at a time in vector registers.
    #[inline]
    fn halve_rows(top: &[f32], bottom: &[f32], out: &mut [Mean]) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: SSE2 is part of x86-64 itself: every processor that runs this has it.
        let done = unsafe { x86_64::halve_rows(top, bottom, out) };
        #[cfg(not(target_arch = "x86_64"))]
        let done = 0;
        squares_from(done, top, bottom, out, |t, b| {
            let l = Mean::leaf;
            Mean::reduce4(l(t[0]), l(t[1]), l(b[0]), l(b[1]))
        });
    }
    #[inline]
    fn halve_rows_valued(top: &[f32], bottom: &[f32], out: &mut [Mean], values: &mut [f32]) {
        // The level every map pixel goes through: with AVX2 where the processor has it
        // (looked up once, then a load of a cached flag).
        #[cfg(target_arch = "x86_64")]
        let done = if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the processor has AVX2, just checked.
            unsafe { x86_64::halve_rows_valued_avx2(top, bottom, out, values) }
        } else {
            // SAFETY: SSE2 is part of x86-64 itself: every processor that runs this has it.
            unsafe { x86_64::halve_rows_valued(top, bottom, out, values) }
        };
        #[cfg(not(target_arch = "x86_64"))]
        let done = 0;
        let rest = &mut out[done / 2..];
        Mean::halve_rows(&top[done..], &bottom[done..], rest);
        for (v, c) in values[done / 2..].iter_mut().zip(rest.iter()) {
            *v = c.value();
        }
    }
    #[inline]
    fn halve_cells(top: &[Mean], bottom: &[Mean], out: &mut [Mean]) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: SSE2 is part of x86-64 itself: every processor that runs this has it.
        let done = unsafe { x86_64::halve_cells(top, bottom, out) };
        #[cfg(not(target_arch = "x86_64"))]
        let done = 0;
        squares_from(done, top, bottom, out, |t, b| {
            Mean::reduce4(t[0], t[1], b[0], b[1])
        });
    }
    #[inline]
    fn values_into(cells: &[Mean], out: &mut Vec<f32>) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: SSE2 is part of x86-64 itself: every processor that runs this has it.
        let done = unsafe { x86_64::values_into(cells, out) };
        #[cfg(not(target_arch = "x86_64"))]
        let done = 0;
        out.extend(cells[done..].iter().map(|m| m.value()));
    }
}

/// The hot loops of [`Mean`] and [`Mode`] in SSE2, which every x86-64 processor has: written
/// by hand because the compiler does not find the pairings itself (its own vectorization of
/// the plain loops took about 1.5 times as long for a mean map and 3.5 times for the modes,
/// measured on blocks of the 400 Mpx bench scene's maps). Each function does a prefix of its
/// input and returns how much; the caller does the rest with the plain code, which the tests
/// hold these to bit for bit.
#[cfg(target_arch = "x86_64")]
mod x86_64 {
    use super::{Cell, Mean, Mode, F64_MANTISSA, RECIPROCAL_BITS};
    use std::arch::x86_64::*;

    #[inline(always)]
    fn load_ps(s: &[f32]) -> __m128 {
        bytemuck::pod_read_unaligned(bytemuck::cast_slice(&s[..4]))
    }

    #[inline(always)]
    fn load_cell(m: Mean) -> __m128d {
        bytemuck::cast(m.0)
    }

    #[inline(always)]
    fn cell(v: __m128d) -> Mean {
        Mean(bytemuck::cast(v))
    }

    /// The sums and counts of the two squares of 4 + 4 pixels of two rows.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn squares(t: &[f32], b: &[f32]) -> (__m128d, __m128d) {
        let (t, b) = (load_ps(t), load_ps(b));
        // Nodata (NaN) as +0, as `Mean::leaf` has it, and 1 for each valid pixel.
        let (valid_t, valid_b) = (_mm_cmpord_ps(t, t), _mm_cmpord_ps(b, b));
        let (t, b) = (_mm_and_ps(t, valid_t), _mm_and_ps(b, valid_b));
        // [x0, x2, x1, x3]: the left pixels of both squares, then the right ones.
        let t = _mm_shuffle_ps::<0b11_01_10_00>(t, t);
        let b = _mm_shuffle_ps::<0b11_01_10_00>(b, b);
        let (tl, tr) = (_mm_cvtps_pd(t), _mm_cvtps_pd(_mm_movehl_ps(t, t)));
        let (bl, br) = (_mm_cvtps_pd(b), _mm_cvtps_pd(_mm_movehl_ps(b, b)));
        // ((top-left + top-right) + bottom-left) + bottom-right, as `Mean::reduce4`.
        let sums = _mm_add_pd(_mm_add_pd(_mm_add_pd(tl, tr), bl), br);
        // Counts: whole numbers up to 4, exact in f32 in any order.
        let one = _mm_set1_ps(1.0);
        let c = _mm_add_ps(_mm_and_ps(valid_t, one), _mm_and_ps(valid_b, one));
        let c = _mm_add_ps(c, _mm_shuffle_ps::<0b10_11_00_01>(c, c));
        (sums, _mm_cvtps_pd(_mm_shuffle_ps::<0b00_00_10_00>(c, c)))
    }

    /// The pixels of each of two rows a loop of `step` pixels a row does, given room for
    /// `cells` squares.
    fn row_len<T>(top: &[T], bottom: &[T], cells: usize, step: usize) -> usize {
        top.len().min(bottom.len()).min(2 * cells) / step * step
    }

    /// Level 1 of two rows of map pixels, 4 + 4 pixels (two squares) at a time; returns the
    /// pixels done of each row.
    #[target_feature(enable = "sse2")]
    pub(super) fn halve_rows(top: &[f32], bottom: &[f32], out: &mut [Mean]) -> usize {
        let n = row_len(top, bottom, out.len(), 4);
        let squares_of = top[..n].chunks_exact(4).zip(bottom[..n].chunks_exact(4));
        for ((t, b), o) in squares_of.zip(out.chunks_exact_mut(2)) {
            let (sums, counts) = squares(t, b);
            o[0] = cell(_mm_unpacklo_pd(sums, counts));
            o[1] = cell(_mm_unpackhi_pd(sums, counts));
        }
        n
    }

    /// [`halve_rows`] and the squares' values: sum × 2⁻ᵏ for counts 0 (then NaN), 1, 2 and
    /// 4; `Mean::value` for the pairs of squares with a count of 3 (along nodata edges).
    #[target_feature(enable = "sse2")]
    pub(super) fn halve_rows_valued(
        top: &[f32],
        bottom: &[f32],
        out: &mut [Mean],
        values: &mut [f32],
    ) -> usize {
        let n = row_len(top, bottom, out.len().min(values.len()), 4);
        let three = _mm_set1_pd(3.0);
        let squares_of = top[..n].chunks_exact(4).zip(bottom[..n].chunks_exact(4));
        let outs = out.chunks_exact_mut(2).zip(values.chunks_exact_mut(2));
        for ((t, b), (o, v)) in squares_of.zip(outs) {
            let (sums, counts) = squares(t, b);
            o[0] = cell(_mm_unpacklo_pd(sums, counts));
            o[1] = cell(_mm_unpackhi_pd(sums, counts));
            if _mm_movemask_pd(_mm_cmpeq_pd(counts, three)) != 0 {
                v[0] = o[0].value();
                v[1] = o[1].value();
            } else {
                let q = bytemuck::cast::<__m128, [f32; 4]>(quotients(sums, counts));
                v.copy_from_slice(&q[..2]);
            }
        }
        n
    }

    /// [`halve_rows_valued`] four squares (8 + 8 pixels) at a time in AVX2's 256-bit
    /// registers: the same operations in the same order, so the same bits.
    #[target_feature(enable = "avx2")]
    pub(super) fn halve_rows_valued_avx2(
        top: &[f32],
        bottom: &[f32],
        out: &mut [Mean],
        values: &mut [f32],
    ) -> usize {
        let n = row_len(top, bottom, out.len().min(values.len()), 8);
        // The left pixels of the four squares, then the right ones.
        let left_right = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
        let one = _mm256_set1_ps(1.0);
        let three = _mm256_set1_pd(3.0);
        let reciprocal = _mm256_set1_epi64x(RECIPROCAL_BITS as i64);
        let nan = _mm256_set1_pd(f64::NAN);
        let load =
            |s: &[f32]| -> __m256 { bytemuck::pod_read_unaligned(bytemuck::cast_slice(&s[..8])) };
        let squares_of = top[..n].chunks_exact(8).zip(bottom[..n].chunks_exact(8));
        let outs = out.chunks_exact_mut(4).zip(values.chunks_exact_mut(4));
        for ((t, b), (o, v)) in squares_of.zip(outs) {
            let (t, b) = (load(t), load(b));
            // Nodata (NaN) as +0, as `Mean::leaf` has it, and 1 for each valid pixel.
            let (valid_t, valid_b) = (
                _mm256_cmp_ps::<_CMP_ORD_Q>(t, t),
                _mm256_cmp_ps::<_CMP_ORD_Q>(b, b),
            );
            let t = _mm256_permutevar8x32_ps(_mm256_and_ps(t, valid_t), left_right);
            let b = _mm256_permutevar8x32_ps(_mm256_and_ps(b, valid_b), left_right);
            let wide = |x: __m256| {
                let (l, r) = (_mm256_castps256_ps128(x), _mm256_extractf128_ps::<1>(x));
                (_mm256_cvtps_pd(l), _mm256_cvtps_pd(r))
            };
            let ((tl, tr), (bl, br)) = (wide(t), wide(b));
            // ((top-left + top-right) + bottom-left) + bottom-right, as `Mean::reduce4`.
            let sums = _mm256_add_pd(_mm256_add_pd(_mm256_add_pd(tl, tr), bl), br);
            // Counts: whole numbers up to 4, exact in f32 in any order.
            let c = _mm256_add_ps(_mm256_and_ps(valid_t, one), _mm256_and_ps(valid_b, one));
            let c = _mm256_permutevar8x32_ps(c, left_right);
            let c = _mm_add_ps(_mm256_castps256_ps128(c), _mm256_extractf128_ps::<1>(c));
            let counts = _mm256_cvtps_pd(c);
            // (sum, count) side by side: [s0 c0 s2 c2], [s1 c1 s3 c3], then cells 0 1 and 2 3.
            let (even, odd) = (
                _mm256_unpacklo_pd(sums, counts),
                _mm256_unpackhi_pd(sums, counts),
            );
            let cells = |x: __m256d| bytemuck::cast::<__m256d, [[f64; 2]; 2]>(x).map(Mean);
            o[..2].copy_from_slice(&cells(_mm256_permute2f128_pd::<0x20>(even, odd)));
            o[2..].copy_from_slice(&cells(_mm256_permute2f128_pd::<0x31>(even, odd)));
            if _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_EQ_OQ>(counts, three)) != 0 {
                for (v, c) in v.iter_mut().zip(o.iter()) {
                    *v = c.value();
                }
                continue;
            }
            let bits = _mm256_castpd_si256(counts);
            let q = _mm256_mul_pd(
                sums,
                _mm256_castsi256_pd(_mm256_sub_epi64(reciprocal, bits)),
            );
            let empty = _mm256_cmp_pd::<_CMP_EQ_OQ>(counts, _mm256_setzero_pd());
            let q = _mm256_cvtpd_ps(_mm256_blendv_pd(q, nan, empty));
            v.copy_from_slice(&bytemuck::cast::<__m128, [f32; 4]>(q));
        }
        n
    }

    /// Sum × 2⁻ᵏ of two cells whose counts are 0 or 2ᵏ, NaN for 0, as f32 in the low lanes.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn quotients(sums: __m128d, counts: __m128d) -> __m128 {
        let reciprocal = _mm_set1_epi64x(RECIPROCAL_BITS as i64);
        let bits = _mm_castpd_si128(counts);
        let q = _mm_mul_pd(sums, _mm_castsi128_pd(_mm_sub_epi64(reciprocal, bits)));
        let empty = _mm_cmpeq_pd(counts, _mm_setzero_pd());
        let nan = _mm_set1_pd(f64::NAN);
        _mm_cvtpd_ps(_mm_or_pd(_mm_andnot_pd(empty, q), _mm_and_pd(empty, nan)))
    }

    /// The levels above: a cell is one vector, four of them summed in `Mean::reduce4`'s order.
    #[target_feature(enable = "sse2")]
    pub(super) fn halve_cells(top: &[Mean], bottom: &[Mean], out: &mut [Mean]) -> usize {
        let n = row_len(top, bottom, out.len(), 2);
        let squares = top[..n].chunks_exact(2).zip(bottom[..n].chunks_exact(2));
        for ((t, b), o) in squares.zip(out) {
            let s = _mm_add_pd(load_cell(t[0]), load_cell(t[1]));
            *o = cell(_mm_add_pd(_mm_add_pd(s, load_cell(b[0])), load_cell(b[1])));
        }
        n
    }

    /// Values of four cells at a time: where all four counts are 0 or powers of two (all but
    /// the squares along nodata edges, whose groups take `Cell::value`), sum × 2⁻ᵏ, NaN for
    /// 0.
    #[target_feature(enable = "sse2")]
    pub(super) fn values_into(cells: &[Mean], out: &mut Vec<f32>) -> usize {
        let n = cells.len() / 4 * 4;
        out.reserve(n);
        let mantissa = _mm_set1_epi64x(F64_MANTISSA as i64);
        for c in cells[..n].chunks_exact(4) {
            let (a, b) = (load_cell(c[0]), load_cell(c[1]));
            let (sums_ab, counts_ab) = (_mm_unpacklo_pd(a, b), _mm_unpackhi_pd(a, b));
            let (a, b) = (load_cell(c[2]), load_cell(c[3]));
            let (sums_cd, counts_cd) = (_mm_unpacklo_pd(a, b), _mm_unpackhi_pd(a, b));
            let (bits_ab, bits_cd) = (_mm_castpd_si128(counts_ab), _mm_castpd_si128(counts_cd));
            let fraction = _mm_or_si128(
                _mm_and_si128(bits_ab, mantissa),
                _mm_and_si128(bits_cd, mantissa),
            );
            if _mm_movemask_epi8(_mm_cmpeq_epi32(fraction, _mm_setzero_si128())) != 0xffff {
                out.extend(c.iter().map(|c| c.value()));
                continue;
            }
            let v = _mm_movelh_ps(quotients(sums_ab, counts_ab), quotients(sums_cd, counts_cd));
            out.extend_from_slice(&bytemuck::cast::<__m128, [f32; 4]>(v));
        }
        n
    }

    #[inline]
    #[target_feature(enable = "sse2")]
    fn load_codes<T: Copy>(s: &[T], code: &impl Fn(T) -> u8) -> __m128i {
        let mut codes = [0u8; 16];
        for (c, &v) in codes.iter_mut().zip(&s[..16]) {
            *c = code(v);
        }
        bytemuck::cast(codes)
    }

    /// `Mode::of4` of sixteen squares of two rows of codes at a time; returns the codes done
    /// of each row. The highest count (1 to 4 for a valid code, 0 for nodata) is found
    /// first, then the smallest code that has it.
    #[target_feature(enable = "sse2")]
    pub(super) fn halve_codes<const NODATA: u8, T: Copy>(
        top: &[T],
        bottom: &[T],
        code: &impl Fn(T) -> u8,
        out: &mut [Mode<NODATA>],
    ) -> usize {
        let n = row_len(top, bottom, out.len(), 32);
        let low = _mm_set1_epi16(0x00ff);
        // The even (left) and odd (right) codes of 32.
        let split = |s: &[T]| {
            let (x, y) = (load_codes(&s[..16], code), load_codes(&s[16..32], code));
            let left = _mm_packus_epi16(_mm_and_si128(x, low), _mm_and_si128(y, low));
            let right = _mm_packus_epi16(_mm_srli_epi16::<8>(x), _mm_srli_epi16::<8>(y));
            (left, right)
        };
        let nodata = _mm_set1_epi8(NODATA as i8);
        let (one, zero, all) = (_mm_set1_epi8(1), _mm_setzero_si128(), _mm_set1_epi8(-1));
        let squares_of = top[..n].chunks_exact(32).zip(bottom[..n].chunks_exact(32));
        for ((t, b), o) in squares_of.zip(out.chunks_exact_mut(16)) {
            let ((a, b), (c, d)) = (split(t), split(b));
            let eq = |x, y| _mm_cmpeq_epi8(x, y);
            let (ab, ac, ad, bc, bd, cd) =
                (eq(a, b), eq(a, c), eq(a, d), eq(b, c), eq(b, d), eq(c, d));
            // How many of the four a code is (equalities are −1), 0 for nodata.
            let count = |x, e: [__m128i; 3]| {
                let k = _mm_sub_epi8(_mm_sub_epi8(_mm_sub_epi8(one, e[0]), e[1]), e[2]);
                _mm_andnot_si128(eq(x, nodata), k)
            };
            let (na, nb) = (count(a, [ab, ac, ad]), count(b, [ab, bc, bd]));
            let (nc, nd) = (count(c, [ac, bc, cd]), count(d, [ad, bd, cd]));
            let most = _mm_max_epu8(_mm_max_epu8(na, nb), _mm_max_epu8(nc, nd));
            // The codes with the highest count, 255 for the others; the smallest of them.
            let candidate = |x, k| {
                let is = eq(k, most);
                _mm_or_si128(_mm_and_si128(is, x), _mm_andnot_si128(is, all))
            };
            let smallest = _mm_min_epu8(
                _mm_min_epu8(candidate(a, na), candidate(b, nb)),
                _mm_min_epu8(candidate(c, nc), candidate(d, nd)),
            );
            let none = eq(most, zero);
            let modes = _mm_or_si128(
                _mm_and_si128(none, nodata),
                _mm_andnot_si128(none, smallest),
            );
            for (o, m) in o.iter_mut().zip(bytemuck::cast::<__m128i, [u8; 16]>(modes)) {
                *o = Mode(m);
            }
        }
        n
    }
}

/// Most frequent valid code; `NODATA` where none is valid.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(transparent)]
pub struct Mode<const NODATA: u8>(pub u8);

impl<const NODATA: u8> Default for Mode<NODATA> {
    fn default() -> Self {
        Mode(NODATA)
    }
}

impl<const NODATA: u8> Mode<NODATA> {
    /// The mode of four codes without a branch: each valid code scores (its count among the
    /// four, 255 − code), the highest score is the most frequent code and the smallest on
    /// ties; no valid code scores 0 (nodata).
    #[inline(always)]
    fn of4(a: u8, b: u8, c: u8, d: u8) -> u8 {
        let e = |x: u8, y: u8| u16::from(x == y);
        let (ab, ac, ad, bc, bd, cd) = (e(a, b), e(a, c), e(a, d), e(b, c), e(b, d), e(c, d));
        let score = |x: u8, n: u16| u16::from(x != NODATA) * (((1 + n) << 8) | u16::from(255 - x));
        let best = score(a, ab + ac + ad)
            .max(score(b, ab + bc + bd))
            .max(score(c, ac + bc + cd).max(score(d, ad + bd + cd)));
        if best == 0 {
            NODATA
        } else {
            255 - (best & 0xff) as u8
        }
    }

    /// [`Cell::halve_rows`] of two rows of codes that `code` reads: with SSE2 (every x86-64)
    /// sixteen squares at a time, the rest one by one.
    #[inline(always)]
    fn halve<T: Copy>(top: &[T], bottom: &[T], code: impl Fn(T) -> u8, out: &mut [Self]) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: SSE2 is part of x86-64 itself: every processor that runs this has it.
        let done = unsafe { x86_64::halve_codes(top, bottom, &code, out) };
        #[cfg(not(target_arch = "x86_64"))]
        let done = 0;
        squares_from(done, top, bottom, out, |t, b| {
            Mode(Self::of4(code(t[0]), code(t[1]), code(b[0]), code(b[1])))
        });
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
    #[inline]
    fn reduce4(a: Self, b: Self, c: Self, d: Self) -> Self {
        Mode(Self::of4(a.0, b.0, c.0, d.0))
    }
    #[inline]
    fn value(self) -> u8 {
        self.0
    }
    #[inline]
    fn halve_rows(top: &[u8], bottom: &[u8], out: &mut [Self]) {
        Self::halve(top, bottom, |v| v, out);
    }
    #[inline]
    fn halve_cells(top: &[Self], bottom: &[Self], out: &mut [Self]) {
        Self::halve(top, bottom, |m| m.0, out);
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
    if width.is_multiple_of(2) && height.is_multiple_of(2) {
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

/// [`halve_by`] of a rectangle `w` of values `data`, two rows at a time with `rows` where its
/// sides are even (`leaf` makes the cells of the odd ones).
fn halve_tile<V: Copy, C: Cell>(
    w: Window,
    data: &[V],
    leaf: impl Fn(V) -> C,
    rows: impl Fn(&[V], &[V], &mut [C]),
) -> Tile<C> {
    let (width, height) = (w.width, w.height);
    if width % 2 != 0 || height % 2 != 0 {
        return halve_by(w.col, w.row, width, height, |i| leaf(data[i]));
    }
    let mut out = vec![C::default(); width / 2 * height / 2];
    for (pair, o) in data
        .chunks_exact(2 * width)
        .zip(out.chunks_exact_mut(width / 2))
    {
        let (top, bottom) = pair.split_at(width);
        rows(top, bottom, o);
    }
    Tile {
        col: w.col / 2,
        row: w.row / 2,
        width: width / 2,
        height: height / 2,
        data: out,
    }
}

/// The first level of a block of values that no [`Pyramid`] takes (sides not multiples of
/// 2^local), whole.
fn halve_values<C: Cell>(w: Window, data: &[C::Value]) -> Tile<C> {
    halve_tile(w, data, C::leaf, C::halve_rows)
}

/// The next level of a tile of cells, whole.
fn halve_cells<C: Cell>(t: &Tile<C>) -> Tile<C> {
    halve_tile(t.window(), &t.data, |c| c, C::halve_cells)
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
    if let Some(mut pyramid) = Pyramid::new(plan, w) {
        pyramid.add_rows(data);
        return pyramid.finish();
    }
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
            tile = halve_cells(&tile);
        }
        let mut data = Vec::with_capacity(tile.data.len());
        C::values_into(&tile.data, &mut data);
        values.push(Tile {
            col: tile.col,
            row: tile.row,
            width: tile.width,
            height: tile.height,
            data,
        });
    }
    let top = (plan.local < plan.levels()).then_some(tile);
    BlockLevels { values, top }
}

/// The local levels of one block built a pair of rows at a time as the block's rows come, so
/// that a block's pixels can be reduced while they are still in the processor's caches (a
/// whole block of four maps is several times its second-level cache). Every level's rows are
/// halved as soon as the row below them arrives: the same squares, in the same order, as
/// level by level, so the same bits.
#[derive(Debug)]
pub struct Pyramid<C: Cell> {
    window: Window,
    /// Values of levels 1..=local (index k − 1), row-major, as they grow.
    values: Vec<Vec<C::Value>>,
    /// The newest row of each level (index k − 1), `window.width >> k` cells.
    rows: Vec<Vec<C>>,
    /// Index k − 1: an even row of level k waiting for the odd row below it, when
    /// `waiting[k − 1]`.
    pending: Vec<Vec<C>>,
    waiting: Vec<bool>,
    /// The values of the newest row of level 1.
    row_values: Vec<C::Value>,
    /// The cells of the last local level, when levels above it need them.
    top: Option<Vec<C>>,
    /// Rows of the block added so far.
    rows_added: usize,
}

impl<C: Cell> Pyramid<C> {
    /// The pyramid of the block at window `w` under `plan`, or `None` when the block's sides
    /// are not multiples of 2^local (blocks at a map's right and bottom edges) or no level is
    /// local: [`reduce_block`] takes those whole.
    pub fn new(plan: &Plan, w: Window) -> Option<Pyramid<C>> {
        let local = plan.local;
        let side = 1usize.checked_shl(u32::try_from(local).ok()?)?;
        if local == 0
            || !w.width.is_multiple_of(side)
            || !w.height.is_multiple_of(side)
            || w.width == 0
        {
            return None;
        }
        let level_px = |k: usize| (w.width >> k) * (w.height >> k);
        let row = |k: usize| vec![C::default(); w.width >> k];
        Some(Pyramid {
            window: w,
            values: (1..=local)
                .map(|k| Vec::with_capacity(level_px(k)))
                .collect(),
            rows: (1..=local).map(row).collect(),
            pending: (1..=local).map(row).collect(),
            waiting: vec![false; local],
            row_values: vec![bytemuck::Zeroable::zeroed(); w.width / 2],
            top: (local < plan.levels()).then(|| Vec::with_capacity(level_px(local))),
            rows_added: 0,
        })
    }

    /// Adds the next rows of the block: whole rows, an even number of them.
    pub fn add_rows(&mut self, data: &[C::Value]) {
        let width = self.window.width;
        for pair in data.chunks_exact(2 * width) {
            let (top, bottom) = pair.split_at(width);
            C::halve_rows_valued(top, bottom, &mut self.rows[0], &mut self.row_values);
            self.values[0].extend_from_slice(&self.row_values);
            self.climb();
            self.rows_added += 2;
        }
    }

    /// With a new row of level 1 (whose values are in): the rows of the levels above that
    /// it completes a pair of rows of.
    fn climb(&mut self) {
        let local = self.values.len();
        for k in 1..=local {
            if k > 1 {
                C::values_into(&self.rows[k - 1], &mut self.values[k - 1]);
            }
            if k == local {
                if let Some(top) = self.top.as_mut() {
                    top.extend_from_slice(&self.rows[k - 1]);
                }
                return;
            }
            if !self.waiting[k - 1] {
                // An even row: it waits for the next one.
                std::mem::swap(&mut self.pending[k - 1], &mut self.rows[k - 1]);
                self.waiting[k - 1] = true;
                return;
            }
            let (below, above) = self.rows.split_at_mut(k);
            C::halve_cells(&self.pending[k - 1], &below[k - 1], &mut above[0]);
            self.waiting[k - 1] = false;
        }
    }

    /// The levels, once every row of the block is added.
    pub fn finish(self) -> BlockLevels<C> {
        debug_assert_eq!(
            self.rows_added, self.window.height,
            "a block's rows are missing"
        );
        fn tile<T>(w: Window, k: usize, data: Vec<T>) -> Tile<T> {
            Tile {
                col: w.col >> k,
                row: w.row >> k,
                width: w.width >> k,
                height: w.height >> k,
                data,
            }
        }
        let (w, local) = (self.window, self.values.len());
        BlockLevels {
            values: (1..).zip(self.values).map(|(k, v)| tile(w, k, v)).collect(),
            top: self.top.map(|t| tile(w, local, t)),
        }
    }
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
        if y.is_multiple_of(2) && y + 1 < below_height {
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
        let mut values = Vec::with_capacity(out.len());
        C::values_into(&out, &mut values);
        emit(k, y / 2, values)?;
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

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
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
        let mut fast = vec![Mean::default(); top.len() / 2];
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
            assert_eq!(
                (f.sum().to_bits(), f.count().to_bits()),
                (p.sum().to_bits(), p.count().to_bits())
            );
        }
        // With their values at once (counts of 3 among them: squares with one NaN).
        let mut valued = vec![Mean::default(); top.len() / 2];
        let mut values = vec![0f32; top.len() / 2];
        Mean::halve_rows_valued(&top, &bottom, &mut valued, &mut values);
        assert_eq!(valued, fast);
        assert!(plain.iter().any(|m| m.count() == 3.0));
        for (v, p) in values.iter().zip(&plain) {
            assert_eq!(v.to_bits(), p.value().to_bits());
        }
        // Each vector path of this processor on its own (the above takes the widest).
        #[cfg(target_arch = "x86_64")]
        {
            let (mut cells, mut vals) = (valued.clone(), values.clone());
            cells.fill(Mean::default());
            // SAFETY: SSE2 is part of x86-64 itself.
            let done = unsafe { x86_64::halve_rows_valued(&top, &bottom, &mut cells, &mut vals) };
            assert_eq!(done, top.len() / 4 * 4);
            assert_eq!(&cells[..done / 2], &valued[..done / 2]);
            assert_eq!(bits(&vals[..done / 2]), bits(&values[..done / 2]));
            if std::arch::is_x86_feature_detected!("avx2") {
                cells.fill(Mean::default());
                vals.fill(0.0);
                // SAFETY: the processor has AVX2, just checked.
                let done =
                    unsafe { x86_64::halve_rows_valued_avx2(&top, &bottom, &mut cells, &mut vals) };
                assert_eq!(done, top.len() / 8 * 8);
                assert_eq!(&cells[..done / 2], &valued[..done / 2]);
                assert_eq!(bits(&vals[..done / 2]), bits(&values[..done / 2]));
            }
        }
        // The value: a power-of-two count multiplies by the reciprocal, bit for bit a division
        // (and other counts divide).
        for sum in [1.0, 1.0 / 3.0, 1e300, -5e-324, 2.5e-310, 123.456, 0.0] {
            for count in [1u64, 2, 3, 4, 7, 16, 64, 1 << 20, 3 << 40] {
                let m = Mean::new(sum, count as f64);
                assert_eq!(m.value().to_bits(), ((sum / count as f64) as f32).to_bits());
            }
        }
        // The same, many at a time: groups of only whole squares and groups with a partial
        // one, and a tail; and two rows of cells halved, against `reduce4`.
        let sums = [
            1.0,
            -1.0 / 3.0,
            1e300,
            -5e-324,
            2.5e-310,
            123.456,
            0.0,
            7e-3,
            1e38,
        ];
        let counts = [4.0, 0.0, 16.0, 1.0, 3.0, 4.0, 65536.0, 2.0, 7.0, 4.0, 1.0];
        let cells: Vec<Mean> = (0..203)
            .map(|i| Mean::new(sums[i % sums.len()], counts[(i / 5) % counts.len()]))
            .collect();
        let mut fast = Vec::new();
        Mean::values_into(&cells, &mut fast);
        let plain: Vec<u32> = cells.iter().map(|m| m.value().to_bits()).collect();
        assert_eq!(fast.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), plain);
        let (top, bottom) = cells[..202].split_at(101);
        let mut fast = vec![Mean::default(); 50];
        Mean::halve_cells(&top[..100], &bottom[..100], &mut fast);
        let plain: Vec<Mean> = top[..100]
            .chunks_exact(2)
            .zip(bottom[..100].chunks_exact(2))
            .map(|(t, b)| Mean::reduce4(t[0], t[1], b[0], b[1]))
            .collect();
        assert_eq!(fast, plain);
        // No valid pixel: the maps' own NaN.
        assert_eq!(Mean::default().value().to_bits(), f32::NAN.to_bits());
        assert_eq!(Mean::leaf(f32::NAN), Mean::default());
        assert_eq!(Mean::leaf(-0.0).sum().to_bits(), (-0.0f64).to_bits());
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
        // Rows of codes and of cells halved sixteen squares at a time (and a tail).
        let codes = [1u8, 2, 255, 0, 254, 2, 2, 7];
        let top: Vec<u8> = (0..70).map(|i| codes[(i * 5 / 3) % codes.len()]).collect();
        let bottom: Vec<u8> = (0..70)
            .map(|i| codes[(i * 7 / 4 + 1) % codes.len()])
            .collect();
        let plain: Vec<M> = top
            .chunks_exact(2)
            .zip(bottom.chunks_exact(2))
            .map(|(t, b)| M::reduce(&[Mode(t[0]), Mode(t[1]), Mode(b[0]), Mode(b[1])]))
            .collect();
        let mut fast = vec![M::default(); 35];
        M::halve_rows(&top, &bottom, &mut fast);
        assert_eq!(fast, plain);
        let cells = |v: &[u8]| v.iter().map(|&c| Mode(c)).collect::<Vec<M>>();
        let mut fast = vec![M::default(); 35];
        M::halve_cells(&cells(&top), &cells(&bottom), &mut fast);
        assert_eq!(fast, plain);
        // Another nodata code (0 here), where 255 is a valid code like any other.
        type Z = Mode<0>;
        // Squares of 255 winning and of nodata only first, inside the vector loop.
        let top: Vec<u8> = [255, 255, 0, 0].iter().chain(&top).copied().collect();
        let bottom: Vec<u8> = [255, 0, 0, 0].iter().chain(&bottom).copied().collect();
        let plain: Vec<Z> = top
            .chunks_exact(2)
            .zip(bottom.chunks_exact(2))
            .map(|(t, b)| Z::reduce(&[Mode(t[0]), Mode(t[1]), Mode(b[0]), Mode(b[1])]))
            .collect();
        let mut fast = vec![Z::default(); 37];
        Z::halve_rows(&top, &bottom, &mut fast);
        assert_eq!(fast, plain);
        assert!(plain.contains(&Mode(255)) && plain.contains(&Mode(0)));
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
