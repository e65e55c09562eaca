//! Exact area coverage of grid cells by polygons (pure geometry, no IO).
//!
//! Coordinates are in continuous pixel space of the grid: x = column, y = row, y down.
//! Each polygon ring is drawn as signed edge contributions into an accumulation buffer
//! (the signed-area rasterization used by font rasterizers such as font-rs), then a prefix
//! sum along each row yields, for every cell, the exact fraction of its area inside the
//! polygon (holes subtract). Coordinates are those of the whole grid; a block only selects
//! which cells are produced. The cost is proportional to the boundary length in pixels
//! plus the number of cells, independent of the polygon's vertex count per cell.

/// One polygon edge in pixel space, with the sign of its ring (+1 exterior, −1 hole,
/// already corrected for the ring's orientation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edge {
    /// Start column coordinate (pixels).
    pub x0: f64,
    /// Start row coordinate (pixels).
    pub y0: f64,
    /// End column coordinate (pixels).
    pub x1: f64,
    /// End row coordinate (pixels).
    pub y1: f64,
    /// +1 for an exterior ring, −1 for a hole.
    pub sign: f64,
}

/// Shoelace signed area of a closed ring (first point may or may not repeat).
pub fn ring_signed_area(ring: &[(f64, f64)]) -> f64 {
    let n = ring.len();
    if n < 3 {
        return 0.0;
    }
    let mut s = 0.0;
    for i in 0..n {
        let (x0, y0) = ring[i];
        let (x1, y1) = ring[(i + 1) % n];
        s += x0 * y1 - x1 * y0;
    }
    s / 2.0
}

/// Edges of a ring, signed so that exteriors add coverage and holes remove it,
/// whatever the ring's orientation.
pub fn ring_edges(ring: &[(f64, f64)], is_hole: bool, out: &mut Vec<Edge>) {
    let area = ring_signed_area(ring);
    if area == 0.0 {
        return;
    }
    // With y down, a ring of positive shoelace area accumulates negative coverage.
    let sign = -area.signum() * if is_hole { -1.0 } else { 1.0 };
    let n = ring.len();
    for i in 0..n {
        let (x0, y0) = ring[i];
        let (x1, y1) = ring[(i + 1) % n];
        if (x0, y0) != (x1, y1) {
            out.push(Edge {
                x0,
                y0,
                x1,
                y1,
                sign,
            });
        }
    }
}

/// h(s) = ∫_{−∞}^{s} clamp(v, 0, 1) dv.
#[inline]
fn h(s: f64) -> f64 {
    if s <= 0.0 {
        0.0
    } else if s < 1.0 {
        0.5 * s * s
    } else {
        s - 0.5
    }
}

/// Fixed-point scale of the accumulated coverage: 2⁶⁴ units per cell. Every f64 row
/// coordinate ≥ 2⁻¹¹ converts exactly, so piece heights are exact integers and, where no edge
/// crosses a cell, the contributions add up to the exact winding — 0 outside, 1 inside.
const QSCALE: f64 = 18_446_744_073_709_551_616.0; // 2^64

/// A row coordinate in fixed point (exact for the coordinates that occur).
#[inline]
fn fy(y: f64) -> i128 {
    (y * QSCALE) as i128
}

/// An accumulation buffer for the block of `width` × `height` cells whose upper-left
/// cell is (`col0`, `row0`) of the grid.
///
/// Every edge piece (an edge clipped to one grid row, in grid coordinates) contributes
/// `d · F(k)` to cell k of its row, where d is its signed height and F(k) the fraction of
/// cell k's row slice right of the piece (1 for cells wholly right of it). These terms are
/// integers (fixed point) before being summed, so a cell's coverage is an exact integer sum
/// of terms that depend only on the edge and the cell: the result is bit-identical whatever
/// the block size, block position or summation order.
pub struct Accumulator {
    col0: i64,
    row0: i64,
    width: usize,
    height: usize,
    /// Per row: the sum of the contributions at cell `col0 − 1` (all that lies left of the block).
    initial: Vec<i128>,
    /// The differences v(k) − v(k−1) of the block's cells, as (row-major cell index, value)
    /// in any order: only cells an edge crosses have any, so the block is not held densely.
    diff: Vec<(usize, i128)>,
}

impl Accumulator {
    /// An empty accumulator for the block of `width` × `height` pixels at (`col0`, `row0`).
    pub fn new(col0: usize, row0: usize, width: usize, height: usize) -> Self {
        Accumulator {
            col0: col0 as i64,
            row0: row0 as i64,
            width,
            height,
            initial: vec![0; height],
            diff: Vec::new(),
        }
    }

    /// Adds an edge given in grid pixel coordinates.
    pub fn add_edge(&mut self, e: &Edge) {
        if e.y0 == e.y1 {
            return;
        }
        let (dir, xs, ys, xe, ye) = if e.y0 < e.y1 {
            (1.0, e.x0, e.y0, e.x1, e.y1)
        } else {
            (-1.0, e.x1, e.y1, e.x0, e.y0)
        };
        let top = self.row0 as f64;
        let bottom = (self.row0 + self.height as i64) as f64;
        if ye <= top || ys >= bottom {
            return;
        }
        let slope = (xe - xs) / (ye - ys);
        let r_first = ys.max(top).floor() as i64;
        let r_last = (ye.min(bottom).ceil() as i64).min(self.row0 + self.height as i64);
        let c_end = self.col0 + self.width as i64; // first column right of the block
        for r in r_first..r_last {
            let yt = ys.max(r as f64);
            let yb = ye.min((r + 1) as f64);
            if yb <= yt {
                continue;
            }
            let xt = xs + slope * (yt - ys);
            let xb = xs + slope * (yb - ys);
            let (x0, x1) = if xt <= xb { (xt, xb) } else { (xb, xt) };
            if x0 >= c_end as f64 {
                continue; // wholly right of the block
            }
            // The signed height of the piece, exact in fixed point.
            let full: i128 = (fy(yb) - fy(yt)) * (dir * e.sign) as i128;
            let d = full as f64;
            let span = x1 - x0;
            // v(k) = d · F(k) in fixed point: exact where F is 0 or 1.
            let v = |k: i64| -> i128 {
                let kf = k as f64;
                if kf >= x1 {
                    full
                } else if kf + 1.0 <= x0 {
                    0
                } else if span < 1e-12 {
                    (d * (kf + 1.0 - x0).clamp(0.0, 1.0)).round() as i128
                } else {
                    let u = kf + 1.0;
                    (d * ((h(u - x0) - h(u - x1)) / span)).round() as i128
                }
            };
            let ri = (r - self.row0) as usize;
            self.initial[ri] += v(self.col0 - 1);
            let k_from = (x0.floor() as i64).max(self.col0);
            let k_to = (x1.ceil() as i64).min(c_end - 1);
            if k_from > k_to {
                continue;
            }
            let row0 = ri * self.width;
            let mut prev = v(k_from - 1);
            for k in k_from..=k_to {
                let vk = v(k);
                self.diff.push((row0 + (k - self.col0) as usize, vk - prev));
                prev = vk;
            }
        }
    }

    /// Coverage fractions (row-major, `width` × `height`), clamped to [0, 1]: the
    /// [`Stretches`] pixel by pixel.
    pub fn coverage(&mut self) -> Vec<f64> {
        self.stretches().to_pixels()
    }

    /// Coverage as stretches of equal fractions along each row, clamped to [0, 1]. A cell's
    /// exact integer sum does not depend on the order its differences are added in; it is
    /// converted to a fraction only where it changes.
    pub fn stretches(&mut self) -> Stretches {
        let fraction = |s: i128| (s as f64 / QSCALE).clamp(0.0, 1.0);
        self.diff.sort_unstable_by_key(|(i, _)| *i);
        let mut out = Stretches {
            width: self.width,
            row_first: Vec::with_capacity(self.height + 1),
            starts: Vec::new(),
            fracs: Vec::new(),
        };
        let mut next = self.diff.iter().peekable();
        for r in 0..self.height {
            out.row_first.push(out.starts.len());
            let mut s = self.initial[r];
            let mut f = fraction(s);
            out.starts.push(0);
            out.fracs.push(f);
            let (first, end) = (r * self.width, (r + 1) * self.width);
            while let Some(&&(i, _)) = next.peek() {
                if i >= end {
                    break;
                }
                while let Some(&(_, d)) = next.next_if(|(j, _)| *j == i) {
                    s += d;
                }
                let g = fraction(s);
                if g.to_bits() != f.to_bits() {
                    f = g;
                    if i == first {
                        // A change at the row's first pixel replaces its first stretch.
                        if let Some(last) = out.fracs.last_mut() {
                            *last = f;
                        }
                    } else {
                        out.starts.push((i - first) as u32);
                        out.fracs.push(f);
                    }
                }
            }
        }
        out.row_first.push(out.starts.len());
        out
    }
}

/// A block's coverage by one polygon as stretches of pixels of one fraction along each row:
/// row r's stretches start at columns `starts[row_first[r]..row_first[r + 1]]` (the first at
/// 0), each running to the next one or to the row's end, with the fractions `fracs`. Zone
/// edges cross a block in a few places, so a row has a few stretches where it has hundreds of
/// pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Stretches {
    width: usize,
    row_first: Vec<usize>,
    starts: Vec<u32>,
    fracs: Vec<f64>,
}

impl Stretches {
    /// Row `r`'s stretches: (first column, end column, fraction).
    pub fn row(&self, r: usize) -> impl Iterator<Item = (usize, usize, f64)> + '_ {
        let (a, b) = (self.row_first[r], self.row_first[r + 1]);
        (a..b).map(move |i| {
            let end = if i + 1 < b {
                self.starts[i + 1] as usize
            } else {
                self.width
            };
            (self.starts[i] as usize, end, self.fracs[i])
        })
    }

    /// Rows.
    pub fn height(&self) -> usize {
        self.row_first.len().saturating_sub(1)
    }

    /// The first column of each of row `r`'s stretches, appended to `out`.
    pub fn row_starts(&self, r: usize, out: &mut Vec<u32>) {
        out.extend_from_slice(&self.starts[self.row_first[r]..self.row_first[r + 1]]);
    }

    /// The fraction of pixel `col` of row `r`.
    pub fn at(&self, r: usize, col: usize) -> f64 {
        let (a, b) = (self.row_first[r], self.row_first[r + 1]);
        let k = self.starts[a..b].partition_point(|&s| s as usize <= col);
        self.fracs[a + k.max(1) - 1]
    }

    /// Some pixel is partly or wholly covered.
    pub fn any_covered(&self) -> bool {
        self.fracs.iter().any(|f| *f > 0.0)
    }

    /// Every pixel's fraction (row-major).
    pub fn to_pixels(&self) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.width * self.height());
        for r in 0..self.height() {
            for (a, b, f) in self.row(r) {
                out.extend(std::iter::repeat_n(f, b - a));
            }
        }
        out
    }
}

/// A zone's coverage fractions over one block (row-major).
#[derive(Debug, Clone, PartialEq)]
pub enum Coverage {
    /// The same fraction for every pixel (no zone edge touches the block).
    Uniform(f64),
    /// A fraction per pixel of the block (row-major).
    PerPixel(Vec<f64>),
    /// Stretches of one fraction along each row of the block.
    Rows(Stretches),
}

impl Coverage {
    /// Fraction of pixel `i` of the block (row-major).
    #[inline]
    pub fn at(&self, i: usize) -> f64 {
        match self {
            Coverage::Uniform(f) => *f,
            Coverage::PerPixel(v) => v[i],
            Coverage::Rows(s) => s.at(i / s.width.max(1), i % s.width.max(1)),
        }
    }

    /// True when the zone covers every pixel of the block entirely.
    pub fn is_full(&self) -> bool {
        match self {
            Coverage::Uniform(f) => *f == 1.0,
            Coverage::PerPixel(v) => v.iter().all(|f| *f == 1.0),
            Coverage::Rows(s) => s.fracs.iter().all(|f| *f == 1.0),
        }
    }

    /// The same coverage with a fraction per pixel where it is not uniform (what passes
    /// that look at every pixel on their own read).
    pub fn per_pixel(self) -> Coverage {
        match self {
            Coverage::Rows(s) => Coverage::PerPixel(s.to_pixels()),
            c => c,
        }
    }
}

/// Coverage of a `width` × `height` block by the polygon whose rings are given
/// (block pixel coordinates). Convenience for tests and small cases.
pub fn polygon_coverage(
    exterior: &[(f64, f64)],
    holes: &[Vec<(f64, f64)>],
    width: usize,
    height: usize,
) -> Vec<f64> {
    let mut edges = Vec::new();
    ring_edges(exterior, false, &mut edges);
    for hole in holes {
        ring_edges(hole, true, &mut edges);
    }
    let mut acc = Accumulator::new(0, 0, width, height);
    for e in &edges {
        acc.add_edge(e);
    }
    acc.coverage()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(v: &[f64]) -> f64 {
        v.iter().sum()
    }

    #[test]
    fn half_pixel_both_orientations() {
        let ccw = [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)];
        let c = polygon_coverage(&ccw, &[], 2, 1);
        assert!((c[0] - 0.5).abs() < 1e-12 && c[1] == 0.0, "{c:?}");
        let cw: Vec<_> = ccw.iter().rev().copied().collect();
        assert_eq!(polygon_coverage(&cw, &[], 2, 1), c);
    }

    #[test]
    fn triangle_over_four_cells() {
        // Right triangle (0,0),(2,0),(0,2): area 2; cells: (0,0) full, (1,0) and (0,1) half, (1,1) empty.
        let c = polygon_coverage(&[(0.0, 0.0), (2.0, 0.0), (0.0, 2.0)], &[], 2, 2);
        let want = [1.0, 0.5, 0.5, 0.0];
        for (a, b) in c.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{c:?}");
        }
    }

    #[test]
    fn stretches_are_the_rows_runs_of_equal_fractions() {
        // A slanted quadrilateral with a hole, edges off the pixel lines: rows with one, two
        // and several stretches.
        let ext = [(0.3, 0.2), (17.6, 1.1), (15.2, 11.7), (1.4, 9.9)];
        let hole = vec![(5.5, 3.5), (9.25, 3.5), (9.25, 6.75), (5.5, 6.75)];
        let (w, h) = (19, 13);
        let mut edges = Vec::new();
        ring_edges(&ext, false, &mut edges);
        ring_edges(&hole, true, &mut edges);
        let mut acc = Accumulator::new(0, 0, w, h);
        for e in &edges {
            acc.add_edge(e);
        }
        let s = acc.stretches();
        let pixels = s.to_pixels();
        assert_eq!(pixels, polygon_coverage(&ext, &[hole], w, h));
        assert_eq!(s.height(), h);
        let mut several = 0;
        for r in 0..h {
            let row: Vec<_> = s.row(r).collect();
            assert_eq!(row[0].0, 0);
            assert_eq!(row.last().unwrap().1, w);
            for pair in row.windows(2) {
                // Adjacent, and a new stretch only where the fraction changes.
                assert_eq!(pair[0].1, pair[1].0);
                assert_ne!(pair[0].2.to_bits(), pair[1].2.to_bits());
            }
            for &(a, b, f) in &row {
                for c in a..b {
                    assert_eq!(pixels[r * w + c].to_bits(), f.to_bits());
                    assert_eq!(s.at(r, c).to_bits(), f.to_bits());
                }
            }
            several += usize::from(row.len() > 2);
        }
        assert!(several > 3, "{several} rows with more than two stretches");
    }

    #[test]
    fn polygon_with_hole() {
        let ext = [(0.0, 0.0), (3.0, 0.0), (3.0, 3.0), (0.0, 3.0)];
        let hole = vec![(1.0, 1.0), (2.0, 1.0), (2.0, 2.0), (1.0, 2.0)];
        let c = polygon_coverage(&ext, &[hole], 3, 3);
        assert!((sum(&c) - 8.0).abs() < 1e-12);
        assert_eq!(c[4], 0.0);
    }

    #[test]
    fn polygon_extending_beyond_the_block() {
        // A large square covering the whole 4×3 block and beyond on every side.
        let c = polygon_coverage(
            &[(-5.0, -5.0), (10.0, -5.0), (10.0, 10.0), (-5.0, 10.0)],
            &[],
            4,
            3,
        );
        assert!(c.iter().all(|v| (v - 1.0).abs() < 1e-12), "{c:?}");
        // A diagonal half-plane cut: x + y ≤ 4 within a 4×4 block, polygon much larger.
        let c = polygon_coverage(&[(-10.0, -10.0), (14.0, -10.0), (-10.0, 14.0)], &[], 4, 4);
        // Cells with i + j + 1 < 4 → 1, = 4 → 0.5 (the diagonal passes through corners) ...
        for r in 0..4 {
            for col in 0..4 {
                let want = match r + col {
                    s if s + 2 <= 4 => 1.0,
                    3 => 0.5,
                    _ => 0.0,
                };
                assert!(
                    (c[r * 4 + col] - want).abs() < 1e-9,
                    "({r},{col}) {} vs {want}",
                    c[r * 4 + col]
                );
            }
        }
    }

    #[test]
    fn blocks_give_bit_identical_fractions() {
        let ring = [
            (0.3, 0.2),
            (37.7, 5.9),
            (29.2, 24.6),
            (3.1, 17.3),
            (12.5, 9.25),
        ];
        let mut edges = Vec::new();
        ring_edges(&ring, false, &mut edges);
        let whole = {
            let mut a = Accumulator::new(0, 0, 40, 26);
            edges.iter().for_each(|e| a.add_edge(e));
            a.coverage()
        };
        for (bw, bh) in [(16, 16), (7, 5), (13, 26)] {
            for r0 in (0..26).step_by(bh) {
                for c0 in (0..40).step_by(bw) {
                    let (w, h) = (bw.min(40 - c0), bh.min(26 - r0));
                    let mut a = Accumulator::new(c0, r0, w, h);
                    edges.iter().for_each(|e| a.add_edge(e));
                    let cov = a.coverage();
                    for r in 0..h {
                        for c in 0..w {
                            assert_eq!(
                                cov[r * w + c].to_bits(),
                                whole[(r0 + r) * 40 + c0 + c].to_bits()
                            );
                        }
                    }
                }
            }
        }
        assert!((sum(&whole) - ring_signed_area(&ring).abs()).abs() < 1e-9);
    }

    #[test]
    fn cells_no_edge_crosses_are_exactly_zero_or_one() {
        // A slanted polygon with awkward coordinates; outside cells must be exactly 0 and
        // interior cells exactly 1, not 1e-12 away.
        let ring = [
            (1.1234567, 0.7654321),
            (17.333333, 2.1111111),
            (15.987654, 13.456789),
            (2.2222222, 11.919191),
        ];
        let c = polygon_coverage(&ring, &[], 20, 15);
        assert_eq!(c[14 * 20 + 19], 0.0);
        assert_eq!(c[0], 0.0);
        assert_eq!(c[7 * 20 + 9], 1.0);
        let mut edges = Vec::new();
        ring_edges(&ring, false, &mut edges);
        let mut a = Accumulator::new(18, 0, 2, 15); // a block right of the polygon
        edges.iter().for_each(|e| a.add_edge(e));
        assert!(a.coverage().iter().all(|v| *v == 0.0));
    }

    #[test]
    fn tiny_polygon_inside_one_cell() {
        let c = polygon_coverage(
            &[(0.2, 0.3), (0.25, 0.3), (0.25, 0.32), (0.2, 0.32)],
            &[],
            1,
            1,
        );
        assert!((c[0] - 0.05 * 0.02).abs() < 1e-15, "{}", c[0]);
    }

    #[test]
    fn shallow_long_edge_exact_area() {
        // Quadrilateral with a shallow top edge crossing many columns; total area by shoelace.
        let ring = [(0.3, 0.2), (7.7, 1.9), (7.2, 4.6), (0.1, 3.3)];
        let c = polygon_coverage(&ring, &[], 8, 5);
        assert!((sum(&c) - ring_signed_area(&ring).abs()).abs() < 1e-9);
    }
}
