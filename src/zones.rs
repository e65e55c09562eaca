//! Zones: polygon layers read with OGR into the grid's pixel space, an R-tree of their
//! envelopes and edges, per-block exact coverage fractions, and the per-zone tables. The
//! zone set and its coverage are GDAL-free; reading layers and writing the tables is in
//! `ogr`, behind the `gdal` feature.

use std::path::{Path, PathBuf};

use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{RTree, AABB};

use crate::coverage::{Accumulator, Coverage, Edge};
use crate::error::{Error, Result};
use crate::grid::{Grid, Window};
pub use crate::zone_table::ZoneTable;

// Reading polygon layers with OGR and writing zones.geojson need GDAL.
#[cfg(feature = "gdal")]
mod ogr;
#[cfg(feature = "gdal")]
pub use ogr::{add_feature, write_zone_tables};
#[cfg(feature = "gdal")]
pub(crate) use ogr::{field_text, open_layer, open_vector, traditional, OpenLayer};

/// One zone: its id and name, its edges in the grid's pixel space, and its geometry in
/// WGS84 longitude/latitude (WKB) for the GeoJSON output.
#[derive(Debug, Clone)]
pub struct Zone {
    /// Value of the id field (unique).
    pub id: String,
    /// Value of the name field (the id when no name field is given).
    pub name: String,
    edges: RTree<GeomWithData<Rectangle<[f64; 2]>, Edge>>,
    /// Envelope in pixel space: (min col, min row, max col, max row).
    pub envelope: [f64; 4],
    wkb_lonlat: Vec<u8>,
    /// The polygon was invalid and repaired (`--repair-invalid`).
    pub repaired: bool,
}

/// A polygon layer ready for zonal accounting on one grid.
#[derive(Debug, Clone)]
pub struct ZoneSet {
    /// The polygon file.
    pub path: PathBuf,
    /// The zones, in layer order.
    pub zones: Vec<Zone>,
    tree: RTree<GeomWithData<Rectangle<[f64; 2]>, usize>>,
}

/// How to read a zone layer.
#[derive(Debug, Clone)]
pub struct ZoneSource<'a> {
    /// The polygon file.
    pub path: &'a Path,
    /// Layer name (default: the first layer).
    pub layer: Option<&'a str>,
    /// Field with the zone id.
    pub id_field: &'a str,
    /// Field with the zone name.
    pub name_field: Option<&'a str>,
    /// Repair invalid polygons (with a warning) instead of refusing them.
    pub repair_invalid: bool,
}

impl ZoneSet {
    /// One warning per polygon that was invalid and repaired.
    pub fn warnings(&self) -> Vec<crate::Warning> {
        self.zones
            .iter()
            .filter(|z| z.repaired)
            .map(|z| {
                crate::Warning::new(
                    &self.path,
                    format!("zone '{}': invalid geometry repaired", z.id),
                )
            })
            .collect()
    }

    fn from_zones(path: &Path, zones: Vec<Zone>) -> ZoneSet {
        let tree = RTree::bulk_load(
            zones
                .iter()
                .enumerate()
                .map(|(i, z)| {
                    let [x0, y0, x1, y1] = z.envelope;
                    GeomWithData::new(Rectangle::from_corners([x0, y0], [x1, y1]), i)
                })
                .collect(),
        );
        ZoneSet {
            path: path.to_path_buf(),
            zones,
            tree,
        }
    }

    /// All zones as one (their edges together; the features should not overlap).
    pub fn merged(&self, id: &str) -> ZoneSet {
        let mut edges = Vec::new();
        let mut env = [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ];
        for z in &self.zones {
            edges.extend(z.edges.iter().cloned());
            env = [
                env[0].min(z.envelope[0]),
                env[1].min(z.envelope[1]),
                env[2].max(z.envelope[2]),
                env[3].max(z.envelope[3]),
            ];
        }
        let zone = Zone {
            id: id.to_string(),
            name: id.to_string(),
            edges: RTree::bulk_load(edges),
            envelope: env,
            wkb_lonlat: self
                .zones
                .first()
                .map(|z| z.wkb_lonlat.clone())
                .unwrap_or_default(),
            repaired: self.zones.iter().any(|z| z.repaired),
        };
        ZoneSet::from_zones(&self.path, vec![zone])
    }

    /// Errors when no zone touches the grid.
    pub fn check_overlaps_grid(&self, grid: &Grid) -> Result<()> {
        let env = AABB::from_corners([0.0, 0.0], [grid.width as f64, grid.height as f64]);
        if self
            .tree
            .locate_in_envelope_intersecting(&env)
            .next()
            .is_none()
        {
            return Err(Error::vector(
                &self.path,
                "no zone overlaps the land-cover grid (check the CRS and extent)",
            ));
        }
        Ok(())
    }

    /// Coverage fractions of each zone that touches window `w`, in ascending zone order.
    pub fn block_coverage(&self, grid: &Grid, w: Window) -> Vec<(usize, Coverage)> {
        self.block_stretches(grid, w)
            .into_iter()
            .map(|(z, c)| (z, c.per_pixel()))
            .collect()
    }

    /// [`ZoneSet::block_coverage`] with the coverage of blocks a zone edge crosses as
    /// stretches of one fraction along each row ([`Coverage::Rows`]), not per pixel.
    pub fn block_stretches(&self, _grid: &Grid, w: Window) -> Vec<(usize, Coverage)> {
        let (c0, r0) = (w.col as f64, w.row as f64);
        let (c1, r1) = (c0 + w.width as f64, r0 + w.height as f64);
        let env = AABB::from_corners([c0, r0], [c1, r1]);
        let mut candidates: Vec<usize> = self
            .tree
            .locate_in_envelope_intersecting(&env)
            .map(|g| g.data)
            .collect();
        candidates.sort_unstable();
        let mut out = Vec::new();
        for zi in candidates {
            let z = &self.zones[zi];
            // Edges left of the block matter too: they set the winding at its left edge.
            let query = AABB::from_corners([z.envelope[0].min(c0) - 1.0, r0], [c1, r1]);
            if z.edges
                .locate_in_envelope_intersecting(&query)
                .next()
                .is_none()
            {
                continue;
            }
            // No edge touches the block: the coverage cannot change along a row, so one
            // column of pixels gives it (the common case inside a large zone).
            if z.edges
                .locate_in_envelope_intersecting(&env)
                .next()
                .is_none()
            {
                let mut acc = Accumulator::new(w.col, w.row, 1, w.height);
                for g in z.edges.locate_in_envelope_intersecting(&query) {
                    acc.add_edge(&g.data);
                }
                let column = acc.coverage();
                if column.iter().all(|f| *f == column[0]) {
                    if column[0] > 0.0 {
                        out.push((zi, Coverage::Uniform(column[0])));
                    }
                    continue;
                }
            }
            let mut acc = Accumulator::new(w.col, w.row, w.width, w.height);
            for g in z.edges.locate_in_envelope_intersecting(&query) {
                acc.add_edge(&g.data);
            }
            let cov = acc.stretches();
            if cov.any_covered() {
                out.push((zi, Coverage::Rows(cov)));
            }
        }
        out
    }
}

// The test reads its polygon through OGR (`ZoneSet::from_wkt`).
#[cfg(all(test, feature = "gdal"))]
mod tests {
    use super::*;
    use crate::grid::AreaModel;
    use gdal::spatial_ref::SpatialRef;

    /// Blocks no edge touches get one uniform fraction, with the same bits as the per-pixel
    /// computation of the whole grid as one block.
    #[test]
    fn uniform_blocks_equal_the_per_pixel_coverage() {
        let crs = SpatialRef::from_epsg(32645).unwrap().to_wkt().unwrap();
        let grid = Grid {
            width: 200,
            height: 150,
            geo_transform: [500_000.0, 30.0, 0.0, 4_500_000.0, 0.0, -30.0],
            crs_wkt: crs,
            area: AreaModel::Projected {
                metres_per_unit: 1.0,
            },
        };
        // A square of 150 × 120 px with a hole, edges off the pixel lines.
        let wkt = "POLYGON ((500301 4499699, 504811 4499699, 504811 4496089, 500301 4496089, 500301 4499699), \
                   (501517 4498483, 502111 4498483, 502111 4497889, 501517 4497889, 501517 4498483))";
        let zones = ZoneSet::from_wkt(Path::new("test"), "z", wkt, "EPSG:32645", &grid).unwrap();
        let whole = Window {
            col: 0,
            row: 0,
            width: grid.width,
            height: grid.height,
        };
        let reference = match &zones.block_coverage(&grid, whole)[0].1 {
            Coverage::PerPixel(v) => v.clone(),
            _ => panic!("edges cross the grid, and block_coverage gives fractions per pixel"),
        };
        let (mut uniform, mut per_pixel) = (0, 0);
        for w in grid.windows(16, 0..grid.height) {
            let cov = zones.block_coverage(&grid, w);
            match cov.first() {
                Some((_, Coverage::Uniform(f))) => {
                    assert_eq!(*f, 1.0);
                    uniform += 1;
                }
                Some((_, Coverage::PerPixel(_))) => per_pixel += 1,
                Some((_, Coverage::Rows(_))) => panic!("stretches from block_coverage"),
                None => {}
            }
            // The stretches along rows the run's zone sums read hold the same fractions.
            let rows = zones.block_stretches(&grid, w);
            assert_eq!(rows.len(), cov.len());
            for i in 0..w.len() {
                let (c, r) = (w.col + i % w.width, w.row + i / w.width);
                let want = reference[r * grid.width + c].to_bits();
                let got = cov.first().map(|(_, f)| f.at(i)).unwrap_or(0.0);
                assert_eq!(got.to_bits(), want);
                let got = rows.first().map(|(_, f)| f.at(i)).unwrap_or(0.0);
                assert_eq!(got.to_bits(), want);
            }
        }
        assert!(
            uniform > 10 && per_pixel > 10,
            "{uniform} uniform, {per_pixel} per pixel"
        );
    }
}
