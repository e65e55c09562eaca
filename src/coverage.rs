//! Exact area coverage of grid cells by polygons (pure geometry, no IO).
//!
//! Coordinates are in continuous pixel space of a block: x = column, y = row, y down.
//! Each polygon ring is drawn as signed edge contributions into an accumulation buffer
//! (the signed-area rasterization used by font rasterizers such as font-rs), then a prefix
//! sum along each row yields, for every cell, the exact fraction of its area inside the
//! polygon (holes subtract). The cost is proportional to the boundary length in pixels
//! plus the number of cells, independent of the polygon's vertex count per cell.

/// One polygon edge in pixel space, with the sign of its ring (+1 exterior, −1 hole,
/// already corrected for the ring's orientation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edge {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
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

/// An accumulation buffer for a block of `width` × `height` cells.
pub struct Accumulator {
    width: usize,
    height: usize,
    /// Row-major, `width + 2` entries per row (the extra ones absorb the right edge).
    acc: Vec<f64>,
}

impl Accumulator {
    pub fn new(width: usize, height: usize) -> Self {
        Accumulator {
            width,
            height,
            acc: vec![0.0; (width + 2) * height],
        }
    }

    /// Adds an edge given in block pixel coordinates.
    pub fn add_edge(&mut self, e: &Edge) {
        let w = self.width as f64;
        // Split at x = 0 and x = w so that each piece lies left of, inside or right of the block.
        let mut cuts = [0.0f64, 1.0, 1.0, 1.0];
        let mut ncut = 1;
        let dx = e.x1 - e.x0;
        if dx != 0.0 {
            for xb in [0.0, w] {
                let t = (xb - e.x0) / dx;
                if t > 0.0 && t < 1.0 {
                    cuts[ncut] = t;
                    ncut += 1;
                }
            }
        }
        cuts[ncut] = 1.0;
        ncut += 1;
        cuts[..ncut].sort_by(|a, b| a.total_cmp(b));
        for k in 0..ncut - 1 {
            let (ta, tb) = (cuts[k], cuts[k + 1]);
            if tb <= ta {
                continue;
            }
            let xa = e.x0 + dx * ta;
            let ya = e.y0 + (e.y1 - e.y0) * ta;
            let xb = e.x0 + dx * tb;
            let yb = e.y0 + (e.y1 - e.y0) * tb;
            let xm = 0.5 * (xa + xb);
            if xm >= w {
                continue; // right of the block: affects no cell of it
            }
            let (xa, xb) = if xm <= 0.0 {
                (0.0, 0.0)
            } else {
                (xa.clamp(0.0, w), xb.clamp(0.0, w))
            };
            self.add_piece(xa, ya, xb, yb, e.sign);
        }
    }

    /// A straight piece with x within [0, w].
    fn add_piece(&mut self, xa: f64, ya: f64, xb: f64, yb: f64, sign: f64) {
        if ya == yb {
            return;
        }
        let (dir, xs, ys, xe, ye) = if ya < yb {
            (1.0, xa, ya, xb, yb)
        } else {
            (-1.0, xb, yb, xa, ya)
        };
        let hgt = self.height as f64;
        if ye <= 0.0 || ys >= hgt {
            return;
        }
        let slope = (xe - xs) / (ye - ys);
        let r0 = ys.max(0.0).floor() as usize;
        let r1 = (ye.min(hgt).ceil() as usize).min(self.height);
        let stride = self.width + 2;
        for r in r0..r1 {
            let yt = ys.max(r as f64);
            let yb2 = ye.min((r + 1) as f64);
            if yb2 <= yt {
                continue;
            }
            let xt = xs + slope * (yt - ys);
            let xbm = xs + slope * (yb2 - ys);
            let d = dir * sign * (yb2 - yt);
            let (x0, x1) = if xt <= xbm { (xt, xbm) } else { (xbm, xt) };
            let row = &mut self.acc[r * stride..(r + 1) * stride];
            let c0 = x0.floor() as usize;
            let c1 = (x1.ceil() as usize).max(c0 + 1).min(self.width + 1);
            let span = x1 - x0;
            // F(c): fraction of cell c's row slice right of the piece, averaged along it.
            let f = |c: usize| -> f64 {
                let u = (c + 1) as f64;
                if span < 1e-12 {
                    (u - x0).clamp(0.0, 1.0)
                } else {
                    (h(u - x0) - h(u - x1)) / span
                }
            };
            let mut prev = 0.0;
            for (c, cell) in row.iter_mut().enumerate().take(c1 + 1).skip(c0) {
                let fc = if c >= c1 { 1.0 } else { f(c) };
                *cell += d * (fc - prev);
                prev = fc;
            }
        }
    }

    /// Coverage fractions (row-major, `width` × `height`), clamped to [0, 1].
    pub fn coverage(&self) -> Vec<f64> {
        let stride = self.width + 2;
        let mut out = Vec::with_capacity(self.width * self.height);
        for r in 0..self.height {
            let mut s = 0.0;
            for c in 0..self.width {
                s += self.acc[r * stride + c];
                out.push(s.clamp(0.0, 1.0));
            }
        }
        out
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
    let mut acc = Accumulator::new(width, height);
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
    fn tiny_polygon_inside_one_cell() {
        let c = polygon_coverage(
            &[(0.2, 0.3), (0.25, 0.3), (0.25, 0.32), (0.2, 0.32)],
            &[],
            1,
            1,
        );
        assert!((c[0] - 0.05 * 0.02).abs() < 1e-15);
    }

    #[test]
    fn shallow_long_edge_exact_area() {
        // Quadrilateral with a shallow top edge crossing many columns; total area by shoelace.
        let ring = [(0.3, 0.2), (7.7, 1.9), (7.2, 4.6), (0.1, 3.3)];
        let c = polygon_coverage(&ring, &[], 8, 5);
        assert!((sum(&c) - ring_signed_area(&ring).abs()).abs() < 1e-9);
    }
}
