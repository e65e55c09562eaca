//! `sinkmap sample`: a reproducible stratified random sample of map pixels for reference
//! interpretation (photo-interpretation in QGIS), with the allocation rules of Olofsson et
//! al. (2014, §5.1).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::path::{Path, PathBuf};

use gdal::spatial_ref::SpatialRef;
use gdal::vector::{
    FieldValue, Geometry, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType,
};
use gdal::DriverManager;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::config::{Models, Scene};
use crate::error::{Error, Result};
use crate::raster::reference_grid;
use crate::zones::traditional;

/// How the sample size is split among the strata (map classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Allocation {
    /// nₕ ∝ area share.
    Proportional,
    /// The same n for every class with area.
    Equal,
    /// Olofsson et al. (2014): at least --min-per-class in every class, the rest proportional.
    Olofsson,
}

/// Splits `n` by largest remainders of `shares` (which sum to 1): whole numbers summing to `n`.
fn largest_remainder(n: usize, shares: &[f64]) -> Vec<usize> {
    let raw: Vec<f64> = shares.iter().map(|s| s * n as f64).collect();
    let mut out: Vec<usize> = raw.iter().map(|r| r.floor() as usize).collect();
    let mut left = n - out.iter().sum::<usize>();
    let mut order: Vec<usize> = (0..shares.len()).filter(|&i| shares[i] > 0.0).collect();
    order.sort_by(|&a, &b| {
        (raw[b] - raw[b].floor())
            .total_cmp(&(raw[a] - raw[a].floor()))
            .then(a.cmp(&b))
    });
    for &i in order.iter().cycle() {
        if left == 0 {
            break;
        }
        out[i] += 1;
        left -= 1;
    }
    out
}

/// Sample sizes per stratum. `areas`: stratum areas (0 = not sampled); `capacity`: the most
/// units a stratum can give (its pixel count).
fn allocate(
    n: usize,
    areas: &[f64],
    capacity: &[usize],
    rule: Allocation,
    min_per_class: usize,
) -> std::result::Result<Vec<usize>, String> {
    let live: Vec<usize> = (0..areas.len()).filter(|&i| areas[i] > 0.0).collect();
    if live.is_empty() {
        return Err("the map has no mapped area to sample".into());
    }
    let total: f64 = live.iter().map(|&i| areas[i]).sum();
    let mut out = vec![0usize; areas.len()];
    match rule {
        Allocation::Proportional => {
            let shares: Vec<f64> = areas.iter().map(|a| a.max(0.0) / total).collect();
            out = largest_remainder(n, &shares);
        }
        Allocation::Equal => {
            let shares: Vec<f64> = areas
                .iter()
                .map(|a| {
                    if *a > 0.0 {
                        1.0 / live.len() as f64
                    } else {
                        0.0
                    }
                })
                .collect();
            out = largest_remainder(n, &shares);
        }
        Allocation::Olofsson => {
            // Checked: a huge --min-per-class must not overflow into a small product.
            let needed = min_per_class.checked_mul(live.len());
            if needed.is_none_or(|k| k > n) {
                return Err(format!(
                    "n = {n} cannot give {min_per_class} points to each of the {} mapped classes (needs {})",
                    live.len(),
                    needed.map_or("more than any n".into(), |k| k.to_string())
                ));
            }
            // Classes whose proportional share falls below the minimum get the minimum; the
            // rest is shared proportionally among the others (repeat until stable).
            let mut fixed = vec![false; areas.len()];
            loop {
                let free_n = n - min_per_class * fixed.iter().filter(|f| **f).count();
                let free_area: f64 = live.iter().filter(|&&i| !fixed[i]).map(|&i| areas[i]).sum();
                let mut changed = false;
                for &i in &live {
                    if !fixed[i] && areas[i] / free_area * (free_n as f64) < min_per_class as f64 {
                        fixed[i] = true;
                        changed = true;
                    }
                }
                if !changed {
                    let shares: Vec<f64> = (0..areas.len())
                        .map(|i| {
                            if areas[i] > 0.0 && !fixed[i] {
                                areas[i] / free_area
                            } else {
                                0.0
                            }
                        })
                        .collect();
                    out = if free_area > 0.0 {
                        largest_remainder(free_n, &shares)
                    } else {
                        vec![0; areas.len()]
                    };
                    for &i in &live {
                        if fixed[i] {
                            out[i] = min_per_class;
                        }
                    }
                    // All fixed: hand the remainder out as equal shares.
                    if free_area <= 0.0 {
                        let extra = largest_remainder(
                            free_n,
                            &(0..areas.len())
                                .map(|i| {
                                    if areas[i] > 0.0 {
                                        1.0 / live.len() as f64
                                    } else {
                                        0.0
                                    }
                                })
                                .collect::<Vec<_>>(),
                        );
                        for i in 0..out.len() {
                            out[i] += extra[i];
                        }
                    }
                    break;
                }
            }
        }
    }
    for i in 0..areas.len() {
        if out[i] > capacity[i] {
            return Err(format!(
                "stratum {i} would need {} points but has only {} pixels",
                out[i], capacity[i]
            ));
        }
    }
    Ok(out)
}

/// What `sinkmap sample` draws (docs/science.md §6.7).
#[derive(Debug, Clone)]
pub struct SampleSpec {
    /// Total number of points.
    pub n: usize,
    /// How `n` is split among the map classes.
    pub allocation: Allocation,
    /// Least number of points per class (`olofsson` allocation).
    pub min_per_class: usize,
    /// Random seed: the same seed and map give the same points.
    pub seed: u64,
    /// Folder the points and `allocation.csv` are written to.
    pub out: PathBuf,
}

/// One stratum (map class) of the sample (`allocation.csv`).
#[derive(Debug, Clone, Serialize)]
pub struct StratumRow {
    /// The class's land-cover code.
    pub code: i32,
    /// Its label.
    pub label: String,
    /// Its mapped area (ha).
    pub area_ha: f64,
    /// Its number of pixels (the most points it can give).
    pub pixels: usize,
    /// Points allocated to it.
    pub n: usize,
}

/// One sampled pixel.
#[derive(Debug, Clone)]
pub struct SamplePoint {
    /// Point number, from 1.
    pub id: usize,
    /// x of the pixel centre in the grid's CRS.
    pub x: f64,
    /// y of the pixel centre in the grid's CRS.
    pub y: f64,
    /// The map's land-cover code at the pixel.
    pub code: i32,
    /// That code's label.
    pub label: String,
}

/// Heap key of the weighted reservoir (Efraimidis & Spirakis 2006, A-ES): ln(u)/w, larger wins.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Key(f64);
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Key {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&o.0)
    }
}

/// Draws the sample: one pass keeps, per class, the n pixels with the largest weighted
/// random keys (weight = pixel area, so that geographic grids are sampled by area); the
/// first nₕ of each class are the stratified sample. Points are pixel centres.
pub fn draw(scene: &Scene, spec: &SampleSpec) -> Result<(Vec<StratumRow>, Vec<SamplePoint>)> {
    if spec.n == 0 {
        return Err(Error::Usage("--n must be at least 1".into()));
    }
    let grid = reference_grid(&scene.landcover.path, scene.landcover.band)?;
    let models = Models::load(scene)?;
    let mut map = super::io::open_categorical(&scene.landcover.path, &grid)?;
    if let Some(nd) = models.scheme.nodata_value {
        map.add_nodata(nd as f64);
    }
    let row_area = grid.row_areas_ha();
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut heaps: HashMap<i32, BinaryHeap<Reverse<(Key, usize)>>> = HashMap::new();
    let mut area: HashMap<i32, (f64, usize)> = HashMap::new();
    let mut codes = Vec::new();
    for w in grid.windows(512, 0..grid.height) {
        map.read_codes(w, &mut codes)?;
        for (i, c) in codes.iter().enumerate() {
            let Some(code) = *c else { continue };
            let (col, row) = (w.col + i % w.width, w.row + i / w.width);
            let a = row_area[row];
            let e = area.entry(code).or_insert((0.0, 0));
            e.0 += a;
            e.1 += 1;
            let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
            let key = Key(u.ln() / a);
            let h = heaps.entry(code).or_default();
            if h.len() < spec.n {
                h.push(Reverse((key, row * grid.width + col)));
            } else if h.peek().is_some_and(|m| key > m.0 .0) {
                h.pop();
                h.push(Reverse((key, row * grid.width + col)));
            }
        }
    }
    let label_of = |code: i32| super::io::class_label(&models.scheme, code);
    let mut keys: Vec<i32> = area.keys().copied().collect();
    keys.sort_unstable();
    let areas: Vec<f64> = keys.iter().map(|k| area[k].0).collect();
    let caps: Vec<usize> = keys.iter().map(|k| area[k].1).collect();
    let ns = allocate(spec.n, &areas, &caps, spec.allocation, spec.min_per_class)
        .map_err(|m| Error::invalid(&scene.landcover.path, m))?;
    let mut rows = Vec::new();
    let mut points = Vec::new();
    for (i, code) in keys.iter().enumerate() {
        rows.push(StratumRow {
            code: *code,
            label: label_of(*code),
            area_ha: areas[i],
            pixels: caps[i],
            n: ns[i],
        });
        let mut best: Vec<(Key, usize)> = heaps
            .remove(code)
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.0)
            .collect();
        best.sort_by(|a, b| b.cmp(a));
        let mut chosen: Vec<usize> = best.into_iter().take(ns[i]).map(|(_, p)| p).collect();
        chosen.sort_unstable();
        for p in chosen {
            let (col, row) = (p % grid.width, p / grid.width);
            let (x, y) = grid.pixel_to_map(col as f64 + 0.5, row as f64 + 0.5);
            points.push(SamplePoint {
                id: points.len() + 1,
                x,
                y,
                code: *code,
                label: label_of(*code),
            });
        }
    }
    write_sample(&spec.out, &grid.crs_wkt, &rows, &points)?;
    Ok((rows, points))
}

fn write_sample(out: &Path, crs_wkt: &str, rows: &[StratumRow], pts: &[SamplePoint]) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let p = out.join("sample_points.csv");
    let mut w = csv::Writer::from_path(&p).map_err(|e| Error::output(&p, e))?;
    w.write_record([
        "id",
        "x",
        "y",
        "map_code",
        "map_label",
        "stratum",
        "reference",
    ])
    .map_err(|e| Error::output(&p, e))?;
    for s in pts {
        w.write_record([
            s.id.to_string(),
            format!("{:.9}", s.x),
            format!("{:.9}", s.y),
            s.code.to_string(),
            s.label.clone(),
            s.code.to_string(),
            String::new(),
        ])
        .map_err(|e| Error::output(&p, e))?;
    }
    w.flush().map_err(|e| Error::io(&p, e))?;
    let p = out.join("allocation.csv");
    let mut w = csv::Writer::from_path(&p).map_err(|e| Error::output(&p, e))?;
    w.write_record(["map_code", "map_label", "area_ha", "pixels", "n"])
        .map_err(|e| Error::output(&p, e))?;
    for r in rows {
        w.write_record([
            r.code.to_string(),
            r.label.clone(),
            format!("{:.4}", r.area_ha),
            r.pixels.to_string(),
            r.n.to_string(),
        ])
        .map_err(|e| Error::output(&p, e))?;
    }
    w.flush().map_err(|e| Error::io(&p, e))?;
    let p = out.join("sample_points.gpkg");
    if p.exists() {
        std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
    }
    let err = |e: gdal::errors::GdalError| Error::output(&p, e);
    let driver = DriverManager::get_driver_by_name("GPKG").map_err(err)?;
    let mut ds = driver.create_vector_only(&p).map_err(err)?;
    let srs = traditional(SpatialRef::from_wkt(crs_wkt).map_err(err)?);
    let layer = ds
        .create_layer(LayerOptions {
            name: "sample_points",
            srs: Some(&srs),
            ty: OGRwkbGeometryType::wkbPoint,
            options: None,
        })
        .map_err(err)?;
    layer
        .create_defn_fields(&[
            ("id", OGRFieldType::OFTInteger),
            ("map_code", OGRFieldType::OFTInteger),
            ("map_label", OGRFieldType::OFTString),
            ("stratum", OGRFieldType::OFTInteger),
            ("reference", OGRFieldType::OFTString),
        ])
        .map_err(err)?;
    for s in pts {
        let mut g = Geometry::empty(OGRwkbGeometryType::wkbPoint).map_err(err)?;
        g.add_point_2d((s.x, s.y));
        let mut f = gdal::vector::Feature::new(layer.defn()).map_err(err)?;
        f.set_geometry(g).map_err(err)?;
        f.set_field(0, &FieldValue::IntegerValue(s.id as i32))
            .map_err(err)?;
        f.set_field(1, &FieldValue::IntegerValue(s.code))
            .map_err(err)?;
        f.set_field(2, &FieldValue::StringValue(s.label.clone()))
            .map_err(err)?;
        f.set_field(3, &FieldValue::IntegerValue(s.code))
            .map_err(err)?;
        f.create(&layer).map_err(err)?;
    }
    ds.close().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proportional_and_equal_allocations_sum_to_n() {
        let a = allocate(
            600,
            &[0.02, 0.015, 0.32, 0.645],
            &[usize::MAX; 4],
            Allocation::Proportional,
            0,
        )
        .unwrap();
        assert_eq!(a, vec![12, 9, 192, 387]);
        let e = allocate(
            10,
            &[1.0, 0.0, 2.0, 3.0],
            &[usize::MAX; 4],
            Allocation::Equal,
            0,
        )
        .unwrap();
        assert_eq!(e.iter().sum::<usize>(), 10);
        assert_eq!(e[1], 0);
        assert!(e.iter().filter(|&&x| x > 0).all(|&x| x == 3 || x == 4));
    }

    #[test]
    fn olofsson_allocation_gives_rare_classes_the_minimum() {
        // Olofsson 2014's example areas with n = 600, ≥ 50 per class: the two change
        // classes get 50 each; 500 left for the stable classes in proportion 0.32 : 0.645.
        let a = allocate(
            600,
            &[0.02, 0.015, 0.32, 0.645],
            &[usize::MAX; 4],
            Allocation::Olofsson,
            50,
        )
        .unwrap();
        assert_eq!(a[0], 50);
        assert_eq!(a[1], 50);
        assert_eq!(a[2] + a[3], 500);
        assert_eq!(a[2], (500.0f64 * 0.32 / 0.965).round() as usize);
        assert!(allocate(100, &[1.0; 3], &[usize::MAX; 3], Allocation::Olofsson, 50).is_err());
        assert!(allocate(10, &[1.0], &[5], Allocation::Proportional, 0).is_err());
    }
}
