//! Helpers shared by the integration tests: tiny rasters, model folders, scenes, the CLI.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gdal::raster::{Buffer, GdalType, RasterCreationOptions};
use gdal::spatial_ref::SpatialRef;
use gdal::{Dataset, DriverManager};

/// Project root (where Cargo.toml is).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Writes a single-band GeoTIFF. `epsg = None` writes no CRS.
pub fn write_raster<T: GdalType + Copy>(
    path: &Path,
    width: usize,
    height: usize,
    gt: [f64; 6],
    epsg: Option<u32>,
    nodata: Option<f64>,
    data: Vec<T>,
) {
    let driver = DriverManager::get_driver_by_name("GTiff").unwrap();
    let mut ds = driver
        .create_with_band_type_with_options::<T, _>(
            path,
            width,
            height,
            1,
            &RasterCreationOptions::new(),
        )
        .unwrap();
    ds.set_geo_transform(&gt).unwrap();
    if let Some(e) = epsg {
        ds.set_spatial_ref(&SpatialRef::from_epsg(e).unwrap())
            .unwrap();
    }
    let mut band = ds.rasterband(1).unwrap();
    band.set_no_data_value(nodata).unwrap();
    let mut buf = Buffer::new((width, height), data);
    band.write((0, 0), (width, height), &mut buf).unwrap();
}

/// Reads band 1 as f64 with its size.
pub fn read_raster(path: &Path) -> (Vec<f64>, usize, usize) {
    let ds = Dataset::open(path).unwrap();
    let (w, h) = ds.raster_size();
    let b = ds.rasterband(1).unwrap();
    let buf = b.read_as::<f64>((0, 0), (w, h), (w, h), None).unwrap();
    (buf.data().to_vec(), w, h)
}

/// The overview levels of band 1 (finest first): (values, width, height) each.
pub fn read_overviews(path: &Path) -> Vec<(Vec<f64>, usize, usize)> {
    let ds = Dataset::open(path).unwrap();
    let b = ds.rasterband(1).unwrap();
    (0..b.overview_count().unwrap() as usize)
        .map(|k| {
            let o = b.overview(k).unwrap();
            let (w, h) = o.size();
            let buf = o.read_as::<f64>((0, 0), (w, h), (w, h), None).unwrap();
            (buf.data().to_vec(), w, h)
        })
        .collect()
}

/// Same bits, or both NaN.
pub fn same_bits(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
}

/// Runs the binary with `args`, from the project root.
pub fn sinkmap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sinkmap"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Fails the test, showing the binary's stderr, unless the binary succeeded.
#[track_caller]
pub fn assert_ok(o: &Output) {
    assert!(o.status.success(), "{}", stderr(o));
}

/// Runs the binary with `args` (as [`sinkmap`]) and fails the test, showing its stderr,
/// unless it succeeded.
#[track_caller]
pub fn sinkmap_ok(args: &[&str]) -> Output {
    let o = sinkmap(args);
    assert_ok(&o);
    o
}

/// Copies the repository's `models/` into `dir/models` and returns it.
pub fn copy_models(dir: &Path) -> PathBuf {
    let dst = dir.join("models");
    copy_dir(&root().join("models"), &dst);
    dst
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &dst.join(e.file_name()));
        } else {
            std::fs::copy(&p, dst.join(e.file_name())).unwrap();
        }
    }
}

/// Generates a synthetic scene of `w` × `h` into `dir` with models copied beside it and
/// returns the scene path (outputs go to `dir/out`).
pub fn synth_scene(dir: &Path, w: usize, h: usize, seed: u64) -> PathBuf {
    copy_models(dir);
    let spec = sinkmap::synth::SynthSpec {
        dir: dir.join("scene"),
        width: w,
        height: h,
        seed,
        lon0: 84.0,
        lat0: 46.0,
        pixel_deg: 0.01,
        zones_path: None,
        models_dir_in_scene: Some("../models".into()),
        output_dir_in_scene: "../out".into(),
        zones_path_in_scene: None,
        base_year: 2020,
        name: "test scene (SYNTHETIC)".into(),
        with_accounting: false,
        field_texture: false,
    };
    sinkmap::synth::generate(&spec, false).unwrap()
}

/// Checks that a command failed with a handled error: one of the documented exit codes
/// 2–6 (usage, input data, configuration, environment, internal), never 1 or a crash (101).
pub fn assert_handled_failure(o: &Output) {
    let code = o.status.code();
    assert!(
        matches!(code, Some(2..=6)),
        "exit code {code:?}: {}",
        stderr(o)
    );
}

/// Files in a folder (names), sorted — without sinkmap's hidden `.sinkmap` state folder
/// (lock and result sets; see src/publish.rs) and without names that lead nowhere.
pub fn list(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap())
            .filter(|e| e.file_name() != ".sinkmap" && e.path().exists())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub fn rel_close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1e-300)
}

/// Writes a polygon layer with `id` and `name` fields with the given OGR driver
/// (`epsg = None`: no CRS).
pub fn write_layer(
    path: &Path,
    driver: &str,
    epsg: Option<u32>,
    features: &[(&str, &str, String)],
) {
    use gdal::vector::{
        FieldValue, Geometry, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType,
    };
    let _ = std::fs::remove_file(path);
    let d = DriverManager::get_driver_by_name(driver).unwrap();
    let mut ds = d.create_vector_only(path).unwrap();
    let srs = epsg.map(|e| SpatialRef::from_epsg(e).unwrap());
    let layer = ds
        .create_layer(LayerOptions {
            name: "zones",
            srs: srs.as_ref(),
            ty: OGRwkbGeometryType::wkbUnknown,
            options: None,
        })
        .unwrap();
    layer
        .create_defn_fields(&[
            ("id", OGRFieldType::OFTString),
            ("name", OGRFieldType::OFTString),
        ])
        .unwrap();
    for (id, name, wkt) in features {
        let mut f = gdal::vector::Feature::new(layer.defn()).unwrap();
        f.set_geometry(Geometry::from_wkt(wkt).unwrap()).unwrap();
        f.set_field(0, &FieldValue::StringValue(id.to_string()))
            .unwrap();
        f.set_field(1, &FieldValue::StringValue(name.to_string()))
            .unwrap();
        f.create(&layer).unwrap();
    }
    ds.close().unwrap();
}

/// Reads a CSV into (header, rows).
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let h = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|x| x.unwrap().iter().map(String::from).collect())
        .collect();
    (h, rows)
}

/// The index of column `name` in header `h` (the test fails naming it when it is missing).
#[track_caller]
pub fn column_index(h: &[String], name: &str) -> usize {
    h.iter()
        .position(|x| x == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

/// Column `name` of `rows` as f64 keyed by the first column.
pub fn column(h: &[String], rows: &[Vec<String>], name: &str) -> Vec<(String, f64)> {
    let i = column_index(h, name);
    rows.iter()
        .map(|r| (r[0].clone(), r[i].parse().unwrap()))
        .collect()
}

/// Every file reachable below `dir` through its names (links followed; report/ included; the
/// hidden `.sinkmap` state and dangling names left out), relative path → bytes, sorted.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for n in list(dir) {
        let p = dir.join(&n);
        if p.is_dir() {
            out.extend(
                snapshot(&p)
                    .into_iter()
                    .map(|(m, b)| (format!("{n}/{m}"), b)),
            );
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((n, b));
        }
    }
    out
}

/// `out` still holds exactly the result `before` (a snapshot) of run `run_id`: the same
/// files, verified against its manifest, and no staging set left beside it.
pub fn assert_still_holds(out: &Path, before: &[(String, Vec<u8>)], run_id: &str) {
    assert!(snapshot(out) == before, "the earlier result changed");
    let (_, m) = sinkmap::manifest::verify_result(out).unwrap();
    assert_eq!(m.run_id, run_id);
    let sets = std::fs::read_dir(out.join(".sinkmap/sets"))
        .unwrap()
        .count();
    assert_eq!(sets, 1, "staging sets left");
}

/// The shipped model files (CLCD scheme) as one model set.
pub fn shipped_models() -> sinkmap::model::Models {
    let m = root().join("models");
    sinkmap::model::Models::load_dir(&m, &m.join("schemes/clcd.toml"), None).unwrap()
}

/// One cohort cell of a hand-made cube: `CubeCell::new(zone, class)`, the optional keys set
/// by its methods, then `add(cube, area_ha)`.
pub struct CubeCell(sinkmap::cube::CubeKey);

impl CubeCell {
    pub fn new(zone: &str, class: sinkmap::model::EcosystemClass) -> CubeCell {
        CubeCell(sinkmap::cube::CubeKey {
            zone_id: zone.into(),
            class,
            forest_type: None,
            age_yr: None,
            desert_subtype: None,
            intervention: None,
        })
    }

    pub fn forest_type(mut self, name: Option<&str>) -> CubeCell {
        self.0.forest_type = name.map(String::from);
        self
    }

    pub fn age(mut self, age_yr: Option<u16>) -> CubeCell {
        self.0.age_yr = age_yr;
        self
    }

    pub fn desert_subtype(mut self, name: Option<&str>) -> CubeCell {
        self.0.desert_subtype = name.map(String::from);
        self
    }

    pub fn intervention(mut self, name: Option<&str>) -> CubeCell {
        self.0.intervention = name.map(String::from);
        self
    }

    /// Adds `area` ha to the cell in `cube` (and names its zone).
    pub fn add(self, cube: &mut sinkmap::cube::Cube, area: f64) {
        cube.zone_names
            .insert(self.0.zone_id.clone(), self.0.zone_id.clone());
        cube.cells.entry(self.0).or_default().area += sinkmap::cube::quantize(area);
    }
}
