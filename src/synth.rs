//! `sinkmap synth`: a seeded, deterministic, clearly labelled SYNTHETIC scene of
//! Xinjiang's kind in lon/lat (EPSG:4326) at any size, written block by block.
//!
//! Layout (v = 0 north … 1 south): the Altai belt in the far north (larch), the Junggar
//! basin (gobi, fixed dunes, grassland), the Tianshan belt across the middle (spruce,
//! grassland, ice on the crest), oases of cropland with shelterbelt grids at the
//! mountain foot, rivers with riparian poplar running south into the Tarim basin
//! (mobile and semi-fixed dunes) and ending in a terminal lake with saline land.
//! Land-cover codes are CLCD's (1–9, nodata 0).

use std::path::{Path, PathBuf};

use gdal::raster::{Buffer, RasterCreationOptions};
use gdal::spatial_ref::SpatialRef;
use gdal::vector::{
    FieldValue, Geometry, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType,
};
use gdal::{DriverManager, Metadata};

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::grid::Window;

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthSpec {
    /// Folder of the scene.
    pub dir: PathBuf,
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Seed: the same seed gives the same scene.
    pub seed: u64,
    /// Upper-left corner (degrees).
    pub lon0: f64,
    /// Latitude of the upper-left corner (degrees).
    pub lat0: f64,
    /// Pixel size (degrees).
    pub pixel_deg: f64,
    /// Where to write the zones layer (default: `dir/zones.geojson`).
    pub zones_path: Option<PathBuf>,
    /// Paths written into scene.toml, relative to the scene's folder. Without a models folder
    /// the scene uses the models embedded in sinkmap, so it runs wherever it is.
    pub models_dir_in_scene: Option<String>,
    /// Output folder written into scene.toml.
    pub output_dir_in_scene: String,
    /// Zones path written into scene.toml (default: `zones.geojson`).
    pub zones_path_in_scene: Option<String>,
    /// Base year of the scene.
    pub base_year: i32,
    /// Scene name.
    pub name: String,
    /// Also write an example restoration rollout (`rollout.toml`) and an `[accounting]` table,
    /// so that `sinkmap run` projects the sink to 2060 and balances it against the scenarios.
    pub with_accounting: bool,
    /// Texture land cover as 30-m classified imagery looks ([`field_pixel`]: ragged patch
    /// edges, field parcels, 2 % speckle, forest ages by stand) and cut the grid into 26 zones,
    /// as `sinkmap bench` does; `false` keeps the smooth sample texture and its 7 zones.
    pub field_texture: bool,
}

/// The example rollout written with `with_accounting` (an assumed schedule, for illustration).
const SAMPLE_ROLLOUT: &str = r#"# SYNTHETIC example rollout of restoration on the sample scene (assumed schedule).
[[rollout]]
intervention = "grazing_exclusion"
start_year = 2025
all_eligible_by_year = 2035

[[rollout]]
intervention = "oasis_shelterbelt"
start_year = 2025
ha_per_yr = 2000.0

[[rollout]]
intervention = "dune_afforestation_saline_drip"
zone = "SYN04"
start_year = 2030
ha_per_yr = 1000.0

[[rollout]]
intervention = "halophyte_planting"
start_year = 2026
all_eligible_by_year = 2045

# Annual stand-replacing disturbance / harvest (fraction of area per year), assumed.
[disturbance]
plantation_poplar_elm = 0.02
"#;

impl SynthSpec {
    /// The embedded sample scene: 600 × 400 px of 0.0025° (~250 m) at the foot of the
    /// Tianshan near Shihezi/Manas, written to `rasters/sample/` and `vectors/`.
    pub fn sample(root: &Path) -> SynthSpec {
        SynthSpec {
            dir: root.join("rasters/sample"),
            width: 600,
            height: 400,
            seed: 2060,
            lon0: 85.2,
            lat0: 45.0,
            pixel_deg: 0.0025,
            zones_path: Some(root.join("vectors/sample_zones.geojson")),
            models_dir_in_scene: Some("../../models".into()),
            output_dir_in_scene: "../../out/sample".into(),
            zones_path_in_scene: Some("../../vectors/sample_zones.geojson".into()),
            base_year: 2020,
            name: "sample (SYNTHETIC)".into(),
            with_accounting: true,
            field_texture: false,
        }
    }
}

fn hash(ix: i64, iy: i64, seed: u64, salt: u64) -> f64 {
    let mut h = seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^= (ix as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = h.rotate_left(31) ^ (iy as u64).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^= h >> 30;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^= h >> 31;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Smooth value noise in [0, 1] at continuous coordinates.
fn value_noise(x: f64, y: f64, seed: u64, salt: u64) -> f64 {
    let (ix, iy) = (x.floor() as i64, y.floor() as i64);
    let (fx, fy) = (x - ix as f64, y - iy as f64);
    let s = |t: f64| t * t * (3.0 - 2.0 * t);
    let (sx, sy) = (s(fx), s(fy));
    let a = hash(ix, iy, seed, salt);
    let b = hash(ix + 1, iy, seed, salt);
    let c = hash(ix, iy + 1, seed, salt);
    let d = hash(ix + 1, iy + 1, seed, salt);
    a + (b - a) * sx + (c - a) * sy + (a - b - c + d) * sx * sy
}

/// Fractal noise in about [0, 1] at normalized coordinates (u, v ∈ [0, 1]).
fn fbm(u: f64, v: f64, freq: f64, seed: u64, salt: u64) -> f64 {
    let mut sum = 0.0;
    let mut amp = 0.5;
    let mut f = freq;
    let mut norm = 0.0;
    for o in 0..4 {
        sum += amp * value_noise(u * f, v * f, seed, salt + o);
        norm += amp;
        amp *= 0.5;
        f *= 2.0;
    }
    sum / norm
}

/// The layers of one pixel: land cover, forest age (−1 = none), forest type, desert subtype.
type Layers = (u8, i16, u8, u8);
/// The masks of one pixel: water access, degraded grassland.
type Masks = (u8, u8);

/// Distance (pixels) to the nearest of three sinuous rivers flowing south from the Tianshan.
fn river_distance_px(u: f64, v: f64, seed: u64, nx: f64) -> f64 {
    let mut river_d = f64::INFINITY;
    if v > 0.45 {
        for (k, uc) in [0.22, 0.55, 0.83].iter().enumerate() {
            let meander = 0.03 * (v * 25.0 + k as f64 * 1.7).sin()
                + (fbm(0.1 * k as f64, v, 4.0, seed, 10 + k as u64) - 0.5) * 0.06;
            river_d = river_d.min(((u - uc - meander) * nx).abs());
        }
    }
    river_d
}

/// Synthetic masks at one pixel: (water access for irrigation, degraded grassland), 0/1.
/// Water: within ~60 sample-scene pixels of a river, or along the mountain foot.
/// Degradation: patches covering about half of the land.
pub fn masks(u: f64, v: f64, seed: u64, nx: f64) -> (u8, u8) {
    if u + v < 0.04 {
        return (0, 0);
    }
    let ppx = (nx / 600.0).max(0.05);
    let near_river = river_distance_px(u, v, seed, nx) < 60.0 * ppx;
    let foot = (v - 0.56).abs() < 0.05 || (v - 0.27).abs() < 0.04;
    let degraded = fbm(u, v, 12.0, seed, 40) > 0.5;
    (u8::from(near_river || foot), u8::from(degraded))
}

/// The synthetic layers at one pixel: (land cover, forest age or −1, forest type or 0, desert subtype or 0).
pub fn pixel(u: f64, v: f64, seed: u64, nx: f64, ny: f64) -> (u8, i16, u8, u8) {
    // Outside the "region": a nodata corner (north-west triangle).
    if u + v < 0.04 {
        return (0, -1, 0, 0);
    }
    let n1 = fbm(u, v, 6.0, seed, 1);
    let n2 = fbm(u, v, 23.0, seed, 2);
    let wob = (n1 - 0.5) * 0.12;
    let gauss = |x: f64, c: f64, w: f64| (-((x - c) / w).powi(2)).exp();
    // Mountain belts: Altai (north edge) and Tianshan (middle).
    let altai = gauss(v + wob, 0.0, 0.09);
    let tianshan = gauss(v + wob, 0.42, 0.11);
    let elev = (altai * 0.8 + tianshan).max(0.0) + (n2 - 0.5) * 0.15;
    let river_d = river_distance_px(u, v, seed, nx);
    let ppx = (nx / 600.0).max(0.05); // pixels scale with grid size
                                      // Terminal lake in the south-east with saline land around it.
    let lake_d = (((u - 0.8) / 0.07).powi(2) + ((v - 0.9) / 0.05).powi(2)).sqrt();
    let age = |lo: f64, hi: f64, salt: u64| -> i16 {
        let a = lo + (hi - lo) * fbm(u, v, 30.0, seed, salt);
        a.round().clamp(0.0, 400.0) as i16
    };
    if lake_d < 1.0 {
        return (5, -1, 0, 0);
    }
    if lake_d < 1.25 {
        return (9, -1, 0, 0);
    }
    if river_d < 1.2 * ppx {
        return (5, -1, 0, 0);
    }
    if elev > 0.93 {
        return (6, -1, 0, 0);
    }
    if elev > 0.62 {
        if n2 > 0.42 {
            let (ft, a) = if altai > tianshan {
                (2, age(30.0, 260.0, 21))
            } else {
                (1, age(15.0, 220.0, 22))
            };
            return (2, a, ft, 0);
        }
        if n1 > 0.62 {
            return (2, age(10.0, 90.0, 23), 4, 0);
        }
        return (4, -1, 0, 0);
    }
    if elev > 0.42 {
        return if n2 > 0.55 {
            (3, -1, 0, 0)
        } else {
            (4, -1, 0, 0)
        };
    }
    if river_d < 10.0 * ppx && v > 0.5 {
        return if n2 > 0.35 {
            (2, age(5.0, 160.0, 24), 3, 0)
        } else {
            (3, -1, 0, 0)
        };
    }
    // Oases at the foot of the Tianshan (both sides) and along rivers.
    let foot = gauss(v + wob, 0.56, 0.035) + gauss(v + wob, 0.27, 0.03);
    let oasis = foot * (0.6 + n1)
        + if river_d < 35.0 * ppx && v > 0.5 {
            0.5
        } else {
            0.0
        };
    if oasis > 0.75 {
        if hash((u * nx) as i64 / 7, (v * ny) as i64 / 7, seed, 3) > 0.97 {
            return (8, -1, 0, 0);
        }
        // Shelterbelt grid: one pixel wide every 12 pixels ("narrow belt, small grid").
        let (col, row) = ((u * nx).floor() as i64, (v * ny).floor() as i64);
        if (col % 12 == 0 || row % 12 == 0) && n2 > 0.3 {
            return (2, age(2.0, 35.0, 25), 5, 0);
        }
        return (1, -1, 0, 0);
    }
    // Desert and steppe.
    if lake_d < 2.2 || (v > 0.8 && n2 > 0.7) {
        return (7, -1, 0, 5); // saline-alkali land
    }
    if v < 0.33 {
        // Junggar: grassland, fixed dunes with crusts, gobi near the mountains.
        if n1 > 0.6 {
            return (4, -1, 0, 0);
        }
        if n2 > 0.66 {
            return (2, age(3.0, 30.0, 26), 6, 0); // planted saxaul
        }
        return if v > 0.2 || n2 < 0.45 {
            (7, -1, 0, 4)
        } else {
            (7, -1, 0, 3)
        };
    }
    // Tarim: gobi on the piedmont, semi-fixed then mobile dunes towards the centre.
    if v < 0.62 {
        return (7, -1, 0, 4);
    }
    if v < 0.7 + (n1 - 0.5) * 0.1 {
        return (7, -1, 0, 2);
    }
    (7, -1, 0, 1)
}

/// Side of a field parcel in pixels (columns × rows): about 330 m × 210 m at 30 m, the size of
/// the irrigated fields of Xinjiang's oases.
const PARCEL_PX: (i64, i64) = (11, 7);
/// Share of pixels whose class is replaced by another one (classification speckle).
const SPECKLE_FRACTION: f64 = 0.02;
/// Value-noise level above which natural land shows its neighbouring class (≈ 25 % of it).
const MOSAIC_THRESHOLD: f64 = 0.68;
/// Side of a forest stand in pixels: one age per stand.
const STAND_PX: f64 = 15.0;

/// The layers and masks of pixel (`col`, `row`) of a `nx` × `ny` grid, textured as 30-m classified
/// imagery is: the smooth landscape of [`pixel`] seen through a domain warp of a few pixels
/// (ragged patch edges), oasis land cut into field parcels of `PARCEL_PX` (cropland, fallow,
/// orchards, grass and farmsteads), natural land in a mosaic of patches of a few pixels with
/// its neighbouring class, forest ages constant within stands of about `STAND_PX`
/// pixels, and `SPECKLE_FRACTION` of the pixels flipped to another class. Deterministic in
/// (`col`, `row`, `seed`) alone, so any block layout generates the same raster.
pub fn field_pixel(col: usize, row: usize, seed: u64, nx: f64, ny: f64) -> (Layers, Masks) {
    let (c, r) = (col as f64 + 0.5, row as f64 + 0.5);
    // Ragged edges: displace the sampling point by up to ±4 px with 6-px noise.
    let dx = (value_noise(c / 6.0, r / 6.0, seed, 50) - 0.5) * 8.0;
    let dy = (value_noise(c / 6.0, r / 6.0, seed, 51) - 0.5) * 8.0;
    let (u, v) = ((c + dx) / nx, (r + dy) / ny);
    let mut px = pixel(u, v, seed, nx, ny);
    let m = masks(u, v, seed, nx);
    if px.0 == 0 {
        return (px, m);
    }
    let (ci, ri) = (col as i64, row as i64);
    // Field parcels: rows of parcels shifted against each other, one use per parcel.
    if px.0 == 1 {
        let pr = ri / PARCEL_PX.1;
        let pc = (ci + (hash(pr, 0, seed, 60) * PARCEL_PX.0 as f64) as i64) / PARCEL_PX.0;
        let h = hash(pc, pr, seed, 61);
        px = if h < 0.70 {
            (1, -1, 0, 0)
        } else if h < 0.80 {
            (7, -1, 0, 4) // fallow, bare
        } else if h < 0.88 {
            (4, -1, 0, 0)
        } else if h < 0.96 {
            let age = 1.0 + 25.0 * hash(pc, pr, seed, 62);
            (2, age.round() as i16, 5, 0) // orchard / poplar plot
        } else {
            (8, -1, 0, 0) // farmstead
        };
    }
    // Natural mosaic: patches of a few pixels of the neighbouring class (desert vegetation on
    // barren land, bare spots in grassland, canopy gaps), about a quarter of natural land.
    if value_noise(c / 3.0, r / 3.0, seed, 66) > MOSAIC_THRESHOLD {
        px = match px.0 {
            7 => (3, -1, 0, 0),
            4 => (7, -1, 0, 4),
            3 => (4, -1, 0, 0),
            2 => (4, -1, 0, 0),
            _ => px,
        };
    }
    // Stands: ages shifted by one draw per stand of about STAND_PX × STAND_PX pixels.
    if px.0 == 2 && px.1 >= 0 {
        let sx = ((c + 2.0 * dx) / STAND_PX).floor() as i64;
        let sy = ((r + 2.0 * dy) / STAND_PX).floor() as i64;
        let shift = (hash(sx, sy, seed, 63) - 0.5) * 30.0;
        px.1 = (px.1 as f64 + shift).round().clamp(1.0, 400.0) as i16;
    }
    // Speckle: a few pixels misclassified as a neighbouring class.
    if hash(ci, ri, seed, 64) < SPECKLE_FRACTION {
        let pick = hash(ci, ri, seed, 65);
        px = match px.0 {
            1 => (4, -1, 0, 0),
            2 => (3, -1, 0, 0),
            7 if pick < 0.5 => (4, -1, 0, 0),
            7 => (3, -1, 0, 0),
            _ if pick < 0.5 => (1, -1, 0, 0),
            _ => (7, -1, 0, 4),
        };
    }
    (px, m)
}

/// Mean length (pixels) of the runs of equal land-cover codes along the rows of a block of
/// `width` columns, where `left` holds the code just left of each row (None at the grid's left
/// edge). Returns (pixels, runs) so that blocks add up.
pub fn runs_along_rows(codes: &[u8], width: usize, left: &[Option<u8>]) -> (u64, u64) {
    let mut runs = 0u64;
    for (r, row) in codes.chunks(width).enumerate() {
        let mut prev = left.get(r).copied().flatten();
        for &c in row {
            if prev != Some(c) {
                runs += 1;
            }
            prev = Some(c);
        }
    }
    (codes.len() as u64, runs)
}

fn create_band<T: gdal::raster::GdalType + Copy>(
    path: &Path,
    spec: &SynthSpec,
    nodata: f64,
    description: &str,
) -> Result<gdal::Dataset> {
    let err = |e: gdal::errors::GdalError| Error::output(path, e);
    let driver = DriverManager::get_driver_by_name("GTiff").map_err(err)?;
    let mut opts = RasterCreationOptions::new();
    for (k, v) in [
        ("TILED", "YES"),
        ("COMPRESS", "DEFLATE"),
        ("BIGTIFF", "IF_SAFER"),
        ("NUM_THREADS", "ALL_CPUS"),
    ] {
        opts.add_name_value(k, v).map_err(err)?;
    }
    let mut ds = driver
        .create_with_band_type_with_options::<T, _>(path, spec.width, spec.height, 1, &opts)
        .map_err(err)?;
    ds.set_geo_transform(&[
        spec.lon0,
        spec.pixel_deg,
        0.0,
        spec.lat0,
        0.0,
        -spec.pixel_deg,
    ])
    .map_err(err)?;
    ds.set_spatial_ref(&SpatialRef::from_epsg(4326).map_err(err)?)
        .map_err(err)?;
    ds.set_metadata_item(
        "SINKMAP_SYNTHETIC",
        "true: generated by sinkmap synth, not observed data",
        "",
    )
    .map_err(err)?;
    ds.set_metadata_item("SINKMAP_SYNTH_SEED", &spec.seed.to_string(), "")
        .map_err(err)?;
    let mut band = ds.rasterband(1).map_err(err)?;
    band.set_no_data_value(Some(nodata)).map_err(err)?;
    band.set_description(description).map_err(err)?;
    Ok(ds)
}

/// Synthetic zones tiling the extent: 3 × 2 quadrilaterals with slanted borders (not aligned
/// with pixel edges) plus an enclave city cut out of zone 2 as a hole.
pub fn zone_polygons(spec: &SynthSpec) -> Vec<(String, String, String)> {
    let (w, h) = (
        spec.width as f64 * spec.pixel_deg,
        spec.height as f64 * spec.pixel_deg,
    );
    let (x0, y1) = (spec.lon0, spec.lat0);
    let m = 0.02 * w.max(h); // margin beyond the grid
    let xs = [x0 - m, x0 + w * 0.33, x0 + w * 0.68, x0 + w + m];
    let ys = [y1 + m, y1 - h * 0.47, y1 - h - m];
    let slant_x = 0.08 * w; // vertical borders lean
    let slant_y = 0.05 * h; // the horizontal border tilts
    let px = |i: usize, j: usize| -> (f64, f64) {
        let x = if i == 0 || i == 3 {
            xs[i]
        } else {
            xs[i] + slant_x * (j as f64 - 1.0)
        };
        let y = if j == 0 || j == 2 {
            ys[j]
        } else {
            ys[j] + slant_y * (i as f64 / 3.0 - 0.5)
        };
        (x, y)
    };
    let ring = |pts: &[(f64, f64)]| {
        let mut s: Vec<String> = pts
            .iter()
            .map(|(x, y)| format!("{x:.10} {y:.10}"))
            .collect();
        s.push(s[0].clone());
        format!("({})", s.join(", "))
    };
    let cx = x0 + w * 0.5;
    let cy = y1 - h * 0.25;
    let city = [
        (cx - 0.04 * w, cy - 0.05 * h),
        (cx + 0.05 * w, cy - 0.04 * h),
        (cx + 0.03 * w, cy + 0.06 * h),
        (cx - 0.05 * w, cy + 0.04 * h),
    ];
    let mut out = Vec::new();
    let mut n = 1;
    if spec.field_texture {
        // 5 × 5 slanted counties and the enclave city: 26 zones, as many as a real
        // prefecture layer has edges to cross.
        let k = 5;
        let lattice = |i: usize, j: usize| -> (f64, f64) {
            let fx = i as f64 / k as f64;
            let fy = j as f64 / k as f64;
            let edge_x = i == 0 || i == k;
            let edge_y = j == 0 || j == k;
            let x = x0 - m + (w + 2.0 * m) * fx + if edge_x { 0.0 } else { slant_x * (fy - 0.5) };
            let y = y1 + m - (h + 2.0 * m) * fy + if edge_y { 0.0 } else { slant_y * (fx - 0.5) };
            (x, y)
        };
        for j in 0..k {
            for i in 0..k {
                let quad = [
                    lattice(i, j),
                    lattice(i + 1, j),
                    lattice(i + 1, j + 1),
                    lattice(i, j + 1),
                ];
                let mut wkt = format!("POLYGON ({}", ring(&quad));
                // The axis-aligned box inside the slanted quad: a hole inside it is valid.
                let (x_lo, x_hi) = (quad[0].0.max(quad[3].0), quad[1].0.min(quad[2].0));
                let (y_lo, y_hi) = (quad[2].1.max(quad[3].1), quad[0].1.min(quad[1].1));
                let inside = |p: &(f64, f64)| p.0 > x_lo && p.0 < x_hi && p.1 > y_lo && p.1 < y_hi;
                if city.iter().all(inside) {
                    let hole: Vec<(f64, f64)> = city.iter().rev().copied().collect();
                    wkt += &format!(", {}", ring(&hole));
                }
                wkt += ")";
                out.push((format!("SYN{n:02}"), format!("Synthetic county {n}"), wkt));
                n += 1;
            }
        }
        out.push((
            format!("SYN{n:02}"),
            "Synthetic enclave city".into(),
            format!("POLYGON ({})", ring(&city)),
        ));
        return out;
    }
    for j in 0..2 {
        for i in 0..3 {
            let quad = [px(i, j), px(i + 1, j), px(i + 1, j + 1), px(i, j + 1)];
            let mut wkt = format!("POLYGON ({}", ring(&quad));
            if i == 1 && j == 0 {
                let hole: Vec<(f64, f64)> = city.iter().rev().copied().collect();
                wkt += &format!(", {}", ring(&hole));
            }
            wkt += ")";
            out.push((
                format!("SYN{n:02}"),
                format!("Synthetic prefecture {n}"),
                wkt,
            ));
            n += 1;
        }
    }
    out.push((
        format!("SYN{n:02}"),
        "Synthetic enclave city".into(),
        format!("POLYGON ({})", ring(&city)),
    ));
    out
}

/// Writes the synthetic zones of `spec`'s grid ([`zone_polygons`]) as GeoJSON to `path`.
pub fn write_zones(path: &Path, spec: &SynthSpec) -> Result<()> {
    let err = |e: gdal::errors::GdalError| Error::output(path, e);
    let _ = std::fs::remove_file(path);
    let driver = DriverManager::get_driver_by_name("GeoJSON").map_err(err)?;
    let mut ds = driver.create_vector_only(path).map_err(err)?;
    let srs = SpatialRef::from_epsg(4326).map_err(err)?;
    let layer = ds
        .create_layer(LayerOptions {
            name: "synthetic_zones",
            srs: Some(&srs),
            ty: OGRwkbGeometryType::wkbPolygon,
            options: None,
        })
        .map_err(err)?;
    layer
        .create_defn_fields(&[
            ("zone_id", OGRFieldType::OFTString),
            ("name", OGRFieldType::OFTString),
            ("synthetic", OGRFieldType::OFTString),
        ])
        .map_err(err)?;
    for (id, name, wkt) in zone_polygons(spec) {
        let g = Geometry::from_wkt(&wkt).map_err(err)?;
        crate::zones::add_feature(
            &layer,
            g,
            &[
                FieldValue::StringValue(id),
                FieldValue::StringValue(name),
                FieldValue::StringValue("yes".into()),
            ],
        )
        .map_err(err)?;
    }
    ds.close().map_err(err)
}

/// Writes the scene's rasters, zones and `scene.toml`. Returns the scene path.
/// Finest and coarsest pixel `synth` accepts (degrees): 0.1 m to ~1100 km.
pub const PIXEL_DEG_RANGE: (f64, f64) = (1e-6, 10.0);

impl SynthSpec {
    /// Refuses a grid that cannot be a grid of the Earth or that sinkmap would refuse to
    /// read: no pixels, more pixels than a run processes, a pixel size that is not a finite
    /// number in [`PIXEL_DEG_RANGE`], a corner that is not a number, latitudes beyond ±90° or
    /// more than a full turn of longitude, an empty output folder name.
    pub fn check(&self) -> Result<()> {
        let usage = |m: String| Err(Error::Usage(m));
        if self.width == 0 || self.height == 0 {
            return usage(format!(
                "--width {} --height {}: both must be at least 1",
                self.width, self.height
            ));
        }
        crate::limits::check_grid_size(&self.dir, self.width, self.height).map_err(|e| {
            Error::Usage(format!(
                "--width {} --height {}: {e}",
                self.width, self.height
            ))
        })?;
        let (lo, hi) = PIXEL_DEG_RANGE;
        if !(self.pixel_deg.is_finite() && (lo..=hi).contains(&self.pixel_deg)) {
            return usage(format!(
                "--pixel-deg {:?}: must be a number from {lo} to {hi} degrees",
                self.pixel_deg
            ));
        }
        if !(self.lon0.is_finite() && (-180.0..=180.0).contains(&self.lon0)) {
            return usage(format!(
                "--lon0 {}: must be a longitude from -180 to 180 degrees",
                self.lon0
            ));
        }
        let bottom = self.lat0 - self.height as f64 * self.pixel_deg;
        if !(self.lat0.is_finite() && self.lat0 <= 90.0 && bottom >= -90.0) {
            return usage(format!(
                "--lat0 {} with {} rows of {}°: the grid would span latitudes {bottom}° to {}°, beyond ±90°",
                self.lat0, self.height, self.pixel_deg, self.lat0
            ));
        }
        if self.width as f64 * self.pixel_deg > 360.0 {
            return usage(format!(
                "--width {} of {}°: more than a full turn of longitude",
                self.width, self.pixel_deg
            ));
        }
        if self.output_dir_in_scene.trim().is_empty() {
            return usage("--output-dir: an empty folder name (the outputs would land among the scene's inputs)".into());
        }
        Ok(())
    }
}

/// Writes the synthetic scene `spec` describes (rasters, zones, scene file) and returns the
/// scene file's path.
pub fn generate(spec: &SynthSpec, progress: bool) -> Result<PathBuf> {
    spec.check()?;
    std::fs::create_dir_all(&spec.dir).map_err(|e| Error::io(&spec.dir, e))?;
    let p = |n: &str| spec.dir.join(n);
    let (run_pixels, runs) = write_rasters(spec, progress)?;
    if spec.field_texture {
        // What the bench reports about the texture it measured on.
        let stats = serde_json::json!({
            "landcover_mean_run_px": run_pixels as f64 / runs.max(1) as f64,
            "speckle_fraction": SPECKLE_FRACTION,
            "parcel_px": [PARCEL_PX.0, PARCEL_PX.1],
            "stand_px": STAND_PX,
        });
        let sp = p("synth_stats.json");
        std::fs::write(&sp, format!("{stats:#}\n")).map_err(|e| Error::io(&sp, e))?;
    }
    let zones_path = spec
        .zones_path
        .clone()
        .unwrap_or_else(|| p("zones.geojson"));
    if let Some(parent) = zones_path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    write_zones(&zones_path, spec)?;
    let scene = scene_toml(spec);
    if spec.with_accounting {
        let r = p("rollout.toml");
        std::fs::write(&r, SAMPLE_ROLLOUT).map_err(|e| Error::io(&r, e))?;
    }
    let scene_path = p("scene.toml");
    std::fs::write(&scene_path, scene).map_err(|e| Error::io(&scene_path, e))?;
    Ok(scene_path)
}

/// Writes the six rasters of the scene window by window; returns (pixels, runs) of equal
/// land-cover codes along rows, for the texture statistics.
fn write_rasters(spec: &SynthSpec, progress: bool) -> Result<(u64, u64)> {
    let p = |n: &str| spec.dir.join(n);
    let mut lc = create_band::<u8>(
        &p("landcover.tif"),
        spec,
        0.0,
        "land cover (CLCD codes), SYNTHETIC",
    )?;
    let age = create_band::<i16>(
        &p("forest_age.tif"),
        spec,
        -1.0,
        "forest age (yr), SYNTHETIC",
    )?;
    let mut ft = create_band::<u8>(
        &p("forest_type.tif"),
        spec,
        0.0,
        "forest type code, SYNTHETIC",
    )?;
    let mut water = create_band::<u8>(
        &p("water_access.tif"),
        spec,
        255.0,
        "water access for irrigation (1 = yes), SYNTHETIC",
    )?;
    let mut degraded = create_band::<u8>(
        &p("degraded_grassland.tif"),
        spec,
        255.0,
        "degraded grassland (1 = yes), SYNTHETIC",
    )?;
    let mut ds = create_band::<u8>(
        &p("desert_subtype.tif"),
        spec,
        0.0,
        "desert subtype code, SYNTHETIC",
    )?;
    let (nx, ny) = (spec.width as f64, spec.height as f64);
    let grid = crate::grid::Grid {
        width: spec.width,
        height: spec.height,
        geo_transform: [0.0; 6],
        crs_wkt: String::new(),
        area: crate::grid::AreaModel::Projected {
            metres_per_unit: 1.0,
        },
    };
    let bar = crate::progress::bar(progress, (spec.width * spec.height) as u64, "pixels");
    let layers_at = |c: usize, r: usize| -> (Layers, Masks) {
        if spec.field_texture {
            field_pixel(c, r, spec.seed, nx, ny)
        } else {
            let (u, v) = ((c as f64 + 0.5) / nx, (r as f64 + 0.5) / ny);
            (pixel(u, v, spec.seed, nx, ny), masks(u, v, spec.seed, nx))
        }
    };
    let (mut run_pixels, mut runs) = (0u64, 0u64);
    for w in grid.windows(512, 0..spec.height) {
        let Window {
            col,
            row,
            width,
            height,
        } = w;
        let values: Vec<(Layers, Masks)> = (0..width * height)
            .into_par_iter()
            .map(|i| layers_at(col + i % width, row + i / width))
            .collect();
        let (values, mask_values): (Vec<_>, Vec<_>) = values.into_iter().unzip();
        let left: Vec<Option<u8>> = (row..row + height)
            .map(|r| (col > 0).then(|| layers_at(col - 1, r).0 .0))
            .collect();
        let codes: Vec<u8> = values.iter().map(|v| v.0).collect();
        let (n, k) = runs_along_rows(&codes, width, &left);
        run_pixels += n;
        runs += k;
        let win = ((col as isize), (row as isize));
        let size = (width, height);
        let wr = |ds: &mut gdal::Dataset, path: &str, data: Vec<u8>| -> Result<()> {
            let mut b = Buffer::new(size, data);
            ds.rasterband(1)
                .and_then(|mut band| band.write(win, size, &mut b))
                .map_err(|e| Error::output(p(path), e))
        };
        wr(&mut lc, "landcover.tif", codes)?;
        wr(
            &mut ft,
            "forest_type.tif",
            values.iter().map(|v| v.2).collect(),
        )?;
        wr(
            &mut ds,
            "desert_subtype.tif",
            values.iter().map(|v| v.3).collect(),
        )?;
        wr(
            &mut water,
            "water_access.tif",
            mask_values.iter().map(|m| m.0).collect(),
        )?;
        wr(
            &mut degraded,
            "degraded_grassland.tif",
            mask_values.iter().map(|m| m.1).collect(),
        )?;
        let mut b = Buffer::new(size, values.iter().map(|v| v.1).collect::<Vec<i16>>());
        age.rasterband(1)
            .and_then(|mut band| band.write(win, size, &mut b))
            .map_err(|e| Error::output(p("forest_age.tif"), e))?;
        bar.inc(w.len() as u64);
    }
    bar.finish_and_clear();
    for d in [lc, age, ft, ds, water, degraded] {
        d.close().map_err(|e| Error::output(&spec.dir, e))?;
    }
    Ok((run_pixels, runs))
}

/// The text of scene.toml for the generated scene.
fn scene_toml(spec: &SynthSpec) -> String {
    let zones_in_scene = spec
        .zones_path_in_scene
        .clone()
        .unwrap_or_else(|| "zones.geojson".into());
    format!(
        r#"# SYNTHETIC scene generated by `sinkmap synth` (seed {seed}): plausible, not observed.
name = "{name}"
base_year = {year}
{models}
output_dir = "{out}"

[landcover]
path = "landcover.tif"
scheme = "clcd"

[forest_age]
path = "forest_age.tif"
reference_year = {year}

[forest_type]
path = "forest_type.tif"

[desert_subtype]
path = "desert_subtype.tif"

[masks]
water_access = {{ path = "water_access.tif" }}
degraded_grassland = {{ path = "degraded_grassland.tif" }}

[restoration]
period_end_year = 2060

[zones]
path = "{zones}"
id_field = "zone_id"
name_field = "name"
{accounting}"#,
        seed = spec.seed,
        name = spec.name,
        year = spec.base_year,
        models = match &spec.models_dir_in_scene {
            Some(m) => format!("models_dir = \"{m}\""),
            None => "# no models_dir: the models embedded in sinkmap are used".into(),
        },
        out = spec.output_dir_in_scene,
        zones = zones_in_scene,
        accounting = if spec.with_accounting {
            "\n[accounting]\nuntil_year = 2060\ndraws = 1000\nseed = 42\nrollout = \"rollout.toml\"\n# The synthetic scene is a small piece of Xinjiang: its balance against Xinjiang's\n# emissions is a sub-region comparison, allowed here explicitly.\nallow_subregion_balance = true\n"
        } else {
            ""
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_along_rows_counts_by_hand() {
        // Rows [1 1 2] and [2 2 3]; the second row continues a run of 2 from the block on its left.
        let codes = [1, 1, 2, 2, 2, 3];
        assert_eq!(runs_along_rows(&codes, 3, &[None, Some(2)]), (6, 3));
        // Without the left neighbour the second row starts a run of its own.
        assert_eq!(runs_along_rows(&codes, 3, &[None, None]), (6, 4));
    }

    /// Mean run length of equal land-cover codes along every 7th row of a `nx` × `ny` scene.
    fn texture_of(field: bool, nx: usize, ny: usize) -> f64 {
        let (fx, fy) = (nx as f64, ny as f64);
        let mut codes = Vec::with_capacity(nx * ny);
        let rows: Vec<usize> = (0..ny).step_by(7).collect();
        for &r in &rows {
            for c in 0..nx {
                let code = if field {
                    field_pixel(c, r, 2060, fx, fy).0 .0
                } else {
                    let (u, v) = ((c as f64 + 0.5) / fx, (r as f64 + 0.5) / fy);
                    pixel(u, v, 2060, fx, fy).0
                };
                codes.push(code);
            }
        }
        let (n, k) = runs_along_rows(&codes, nx, &vec![None; rows.len()]);
        n as f64 / k as f64
    }

    #[test]
    fn field_texture_has_short_runs_and_two_percent_speckle() {
        // A 30-m-like grid (the bench's pixel count per degree of texture is what matters:
        // the field texture is defined in pixels, so any grid shows it).
        let (nx, ny) = (1500, 1000);
        let smooth = texture_of(false, nx, ny);
        let field = texture_of(true, nx, ny);
        eprintln!("mean run along rows: smooth {smooth:.2} px, field {field:.2} px");
        assert!(field <= 8.0, "mean run {field:.2} px > 8");
        assert!(
            smooth > 2.0 * field,
            "smooth {smooth:.1} vs field {field:.1}"
        );
        // Speckle is drawn per pixel with probability SPECKLE_FRACTION: count the draws.
        let hits = (0..nx as i64 * ny as i64)
            .filter(|i| hash(i % nx as i64, i / nx as i64, 7, 64) < SPECKLE_FRACTION)
            .count() as f64
            / (nx * ny) as f64;
        assert!((hits - SPECKLE_FRACTION).abs() < 0.002, "speckle {hits}");
    }

    #[test]
    fn field_pixel_is_deterministic_and_stand_ages_are_positive() {
        let (nx, ny) = (800.0, 600.0);
        let mut forest = 0;
        for r in (0..600).step_by(7) {
            for c in (0..800).step_by(5) {
                let a = field_pixel(c, r, 11, nx, ny);
                assert_eq!(a, field_pixel(c, r, 11, nx, ny));
                let (lc, age, ft, _) = a.0;
                if lc == 2 {
                    forest += 1;
                    assert!((1..=400).contains(&age), "age {age} at ({c}, {r})");
                    assert!(ft > 0, "forest without a type at ({c}, {r})");
                } else {
                    assert_eq!(age, -1);
                }
            }
        }
        assert!(forest > 0, "no forest sampled");
    }
}
