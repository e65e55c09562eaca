//! Bad input gives a one-line error naming the file and the problem, a non-zero exit,
//! no partial output, and leaves an earlier complete result untouched.

#![cfg(feature = "gdal")]

mod common;

use std::path::{Path, PathBuf};

use common::*;

const UTM45: u32 = 32645;
const GT30: [f64; 6] = [500_000.0, 30.0, 0.0, 4_900_000.0, 0.0, -30.0];

/// A valid little scene; returns its path.
fn good_scene(dir: &Path) -> PathBuf {
    copy_models(dir);
    write_raster(
        &dir.join("lc.tif"),
        4,
        3,
        GT30,
        Some(UTM45),
        Some(0.0),
        vec![2u8, 2, 4, 7, 1, 3, 4, 5, 2, 7, 9, 8],
    );
    write_raster(
        &dir.join("age.tif"),
        4,
        3,
        GT30,
        Some(UTM45),
        Some(-1.0),
        vec![10i16, 80, -1, -1, -1, -1, -1, -1, 5, -1, -1, -1],
    );
    scene(dir, "lc.tif", "age.tif", "")
}

fn scene(dir: &Path, lc: &str, age: &str, extra: &str) -> PathBuf {
    let p = dir.join("scene.toml");
    std::fs::write(
        &p,
        format!(
            "name = 'bad'\nbase_year = 2020\nmodels_dir = 'models'\noutput_dir = 'out'\n{extra}\n[landcover]\npath = '{lc}'\nscheme = 'clcd'\n\n[forest_age]\npath = '{age}'\n"
        ),
    )
    .unwrap();
    p
}

/// Runs a bad scene into an output folder that already holds a good run's results, and
/// checks: failure, one line naming `names_file` and containing `problem`, results untouched.
fn assert_fails_cleanly(dir: &Path, scene: &Path, names_file: &str, problem: &str) {
    let out = dir.join("out");
    let before = snapshot(&out);
    assert!(
        !before.is_empty(),
        "the good run should have produced outputs"
    );
    let o = sinkmap(&["run", scene.to_str().unwrap(), "--quiet"]);
    assert!(!o.status.success(), "should fail: {names_file} / {problem}");
    // A configuration file named: exit code 4; a raster: input data, 3.
    let code = if names_file.ends_with(".toml") { 4 } else { 3 };
    assert_eq!(o.status.code(), Some(code), "{}", stderr(&o));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "exactly one error line: {err}");
    assert!(
        lines[0].contains(names_file),
        "error should name {names_file}: {err}"
    );
    assert!(
        lines[0].to_lowercase().contains(&problem.to_lowercase()),
        "error should say '{problem}': {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        snapshot(&out),
        before,
        "earlier results must stay as they were, with nothing added"
    );
}

fn prepared() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let scene = good_scene(tmp.path());
    let o = sinkmap(&["run", scene.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    (tmp, scene)
}

#[test]
fn missing_file() {
    let (tmp, _) = prepared();
    let s = scene(tmp.path(), "nope.tif", "age.tif", "");
    assert_fails_cleanly(tmp.path(), &s, "nope.tif", "not found");
}

#[test]
fn raster_without_crs() {
    let (tmp, _) = prepared();
    write_raster(
        &tmp.path().join("nocrs.tif"),
        4,
        3,
        GT30,
        None,
        Some(0.0),
        vec![2u8; 12],
    );
    let s = scene(tmp.path(), "nocrs.tif", "age.tif", "");
    assert_fails_cleanly(tmp.path(), &s, "nocrs.tif", "no CRS");
}

#[test]
fn age_layer_without_crs() {
    let (tmp, _) = prepared();
    write_raster(
        &tmp.path().join("age_nocrs.tif"),
        4,
        3,
        GT30,
        None,
        Some(-1.0),
        vec![10i16; 12],
    );
    let s = scene(tmp.path(), "lc.tif", "age_nocrs.tif", "");
    assert_fails_cleanly(tmp.path(), &s, "age_nocrs.tif", "no CRS");
}

#[test]
fn landcover_code_missing_from_scheme() {
    let (tmp, _) = prepared();
    write_raster(
        &tmp.path().join("lc42.tif"),
        4,
        3,
        GT30,
        Some(UTM45),
        Some(0.0),
        vec![2u8, 2, 4, 7, 1, 3, 42, 5, 2, 7, 9, 8],
    );
    let s = scene(tmp.path(), "lc42.tif", "age.tif", "");
    assert_fails_cleanly(
        tmp.path(),
        &s,
        "lc42.tif",
        "land-cover code 42 is not in the scheme",
    );
}

#[test]
fn negative_forest_age() {
    let (tmp, _) = prepared();
    write_raster(
        &tmp.path().join("neg.tif"),
        4,
        3,
        GT30,
        Some(UTM45),
        Some(-1.0),
        vec![10i16, -5, -1, -1, -1, -1, -1, -1, 5, -1, -1, -1],
    );
    let s = scene(tmp.path(), "lc.tif", "neg.tif", "");
    assert_fails_cleanly(tmp.path(), &s, "neg.tif", "negative forest age -5");
}

#[test]
fn absurd_forest_age() {
    let (tmp, _) = prepared();
    write_raster(
        &tmp.path().join("old.tif"),
        4,
        3,
        GT30,
        Some(UTM45),
        Some(-1.0),
        vec![10i16, 999, -1, -1, -1, -1, -1, -1, 5, -1, -1, -1],
    );
    let s = scene(tmp.path(), "lc.tif", "old.tif", "");
    assert_fails_cleanly(
        tmp.path(),
        &s,
        "old.tif",
        "forest age 999 yr exceeds max_plausible_age_yr",
    );
}

#[test]
fn nan_forest_age_without_nodata() {
    let (tmp, _) = prepared();
    let mut v = vec![10f32; 12];
    v[3] = f32::NAN;
    write_raster(
        &tmp.path().join("nan.tif"),
        4,
        3,
        GT30,
        Some(UTM45),
        None,
        v,
    );
    let s = scene(tmp.path(), "lc.tif", "nan.tif", "");
    assert_fails_cleanly(tmp.path(), &s, "nan.tif", "NaN");
}

#[test]
fn unknown_toml_field() {
    let (tmp, _) = prepared();
    let s = scene(tmp.path(), "lc.tif", "age.tif", "colour = 'green'");
    assert_fails_cleanly(tmp.path(), &s, "scene.toml", "unknown field `colour`");
}

#[test]
fn wrong_toml_type_names_the_line() {
    let (tmp, _) = prepared();
    let p = tmp.path().join("scene.toml");
    std::fs::write(&p, "name = 'bad'\nbase_year = 'twenty-twenty'\nmodels_dir = 'models'\noutput_dir = 'out'\n[landcover]\npath = 'lc.tif'\nscheme = 'clcd'\n").unwrap();
    assert_fails_cleanly(tmp.path(), &p, "scene.toml", "line 2");
}

#[test]
fn wrong_data_type_for_landcover() {
    let (tmp, _) = prepared();
    write_raster(
        &tmp.path().join("float_lc.tif"),
        4,
        3,
        GT30,
        Some(UTM45),
        None,
        vec![2.0f32; 12],
    );
    let s = scene(tmp.path(), "float_lc.tif", "age.tif", "");
    assert_fails_cleanly(tmp.path(), &s, "float_lc.tif", "wrong data type");
}

#[test]
fn unknown_field_in_a_model_file_names_that_file() {
    let (tmp, scene) = prepared();
    let f = tmp.path().join("models/desert.toml");
    let text = std::fs::read_to_string(&f).unwrap().replace(
        "include_inorganic = false",
        "include_inorganic = false\nrainfall_mm = 80",
    );
    std::fs::write(&f, text).unwrap();
    assert_fails_cleanly(
        tmp.path(),
        &scene,
        "desert.toml",
        "unknown field `rainfall_mm`",
    );
}

#[test]
fn corrupt_geotiff() {
    let (tmp, _) = prepared();
    let bytes = std::fs::read(tmp.path().join("lc.tif")).unwrap();
    std::fs::write(tmp.path().join("trunc.tif"), &bytes[..bytes.len() / 3]).unwrap();
    let s = scene(tmp.path(), "trunc.tif", "age.tif", "");
    let o = sinkmap(&["run", s.to_str().unwrap(), "--quiet"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.lines()
            .any(|l| l.starts_with("error:") && l.contains("trunc.tif")),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_failed_run_into_a_fresh_folder_leaves_no_file() {
    let tmp = tempfile::tempdir().unwrap();
    good_scene(tmp.path());
    write_raster(
        &tmp.path().join("lc42.tif"),
        4,
        3,
        GT30,
        Some(UTM45),
        Some(0.0),
        vec![42u8; 12],
    );
    let s = scene(tmp.path(), "lc42.tif", "age.tif", "");
    let o = sinkmap(&["run", s.to_str().unwrap(), "--quiet"]);
    assert!(!o.status.success());
    assert!(
        list(&tmp.path().join("out")).is_empty(),
        "{:?}",
        list(&tmp.path().join("out"))
    );
}

/// A hand-made little-endian TIFF header claiming 2 000 000 000 × 2 000 000 000 pixels.
fn huge_tiff(path: &Path) {
    let mut b: Vec<u8> = b"II*\0".to_vec();
    b.extend_from_slice(&8u32.to_le_bytes());
    let entries: [(u16, u16, u32, u32); 8] = [
        (256, 4, 1, 2_000_000_000), // ImageWidth
        (257, 4, 1, 2_000_000_000), // ImageLength
        (258, 3, 1, 8),             // BitsPerSample
        (259, 3, 1, 1),             // Compression: none
        (262, 3, 1, 1),             // Photometric: black is zero
        (273, 4, 1, 200),           // StripOffsets
        (278, 4, 1, 2_000_000_000), // RowsPerStrip
        (279, 4, 1, 16),            // StripByteCounts
    ];
    b.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, ty, n, v) in entries {
        b.extend_from_slice(&tag.to_le_bytes());
        b.extend_from_slice(&ty.to_le_bytes());
        b.extend_from_slice(&n.to_le_bytes());
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(&0u32.to_le_bytes());
    b.resize(216, 0);
    std::fs::write(path, b).unwrap();
}

#[test]
fn header_claiming_an_enormous_size() {
    let (tmp, _) = prepared();
    huge_tiff(&tmp.path().join("huge.tif"));
    let s = scene(tmp.path(), "huge.tif", "age.tif", "");
    let out = tmp.path().join("out");
    let before = snapshot(&out);
    let o = sinkmap(&["run", s.to_str().unwrap(), "--quiet"]);
    assert_eq!(o.status.code(), Some(3), "input data: {}", stderr(&o));
    let err = stderr(&o);
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap();
    assert!(line.contains("huge.tif"), "{line}");
    assert_eq!(snapshot(&out), before);
}

#[test]
fn wrong_band_number() {
    let (tmp, _) = prepared();
    let p = tmp.path().join("scene.toml");
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("scheme = 'clcd'", "scheme = 'clcd'\nband = 3");
    std::fs::write(&p, text).unwrap();
    assert_fails_cleanly(
        tmp.path(),
        &p,
        "lc.tif",
        "band 3 requested but the raster has 1 band(s)",
    );
}

#[test]
fn infinite_forest_age() {
    let (tmp, _) = prepared();
    let mut v = vec![10f32; 12];
    v[0] = f32::INFINITY;
    write_raster(
        &tmp.path().join("inf.tif"),
        4,
        3,
        GT30,
        Some(UTM45),
        Some(-1.0),
        v,
    );
    let s = scene(tmp.path(), "lc.tif", "inf.tif", "");
    assert_fails_cleanly(tmp.path(), &s, "inf.tif", "NaN or infinite");
}

#[test]
fn minus_one_age_without_nodata_is_an_error_and_with_it_no_age() {
    let (tmp, _) = prepared();
    write_raster(
        &tmp.path().join("m1.tif"),
        4,
        3,
        GT30,
        Some(UTM45),
        None,
        vec![-1i16; 12],
    );
    let s = scene(tmp.path(), "lc.tif", "m1.tif", "");
    assert_fails_cleanly(tmp.path(), &s, "m1.tif", "negative forest age -1");
    // Declared as nodata in the scene, −1 means "no age": the run succeeds with the fallback age.
    let text = std::fs::read_to_string(&s).unwrap() + "nodata_values = [-1.0]\n";
    std::fs::write(&s, text).unwrap();
    let o = sinkmap(&["run", s.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let sm = json(&tmp.path().join("out/summary.json"));
    assert!(sm["totals"]["forest_area_assumed_age_ha"].as_f64().unwrap() > 0.0);
}

#[test]
fn absent_model_file_and_dangling_reference() {
    let (tmp, scene) = prepared();
    std::fs::remove_file(tmp.path().join("models/other_classes.toml")).unwrap();
    assert_fails_cleanly(tmp.path(), &scene, "other_classes.toml", "No such file");
    let (tmp, scene) = prepared();
    let f = tmp.path().join("models/forest.toml");
    let text = std::fs::read_to_string(&f).unwrap().replace(
        "default_forest_type = \"tianshan_spruce\"",
        "default_forest_type = \"baobab\"",
    );
    std::fs::write(&f, text).unwrap();
    assert_fails_cleanly(
        tmp.path(),
        &scene,
        "forest.toml",
        "default_forest_type: forest type 'baobab' is not defined",
    );
    let (tmp, scene) = prepared();
    let f = tmp.path().join("models/restoration.toml");
    let text = std::fs::read_to_string(&f).unwrap().replace(
        "forest_type = \"plantation_poplar_elm\"",
        "forest_type = \"nowhere\"",
    );
    std::fs::write(&f, text).unwrap();
    assert_fails_cleanly(
        tmp.path(),
        &scene,
        "restoration.toml",
        "forest type 'nowhere' is not defined",
    );
}

#[test]
fn paths_with_spaces_and_non_ascii_names_work() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("新疆 场景 (test)");
    std::fs::create_dir_all(&dir).unwrap();
    copy_models(&dir);
    write_raster(
        &dir.join("土地 覆盖.tif"),
        4,
        3,
        GT30,
        Some(UTM45),
        Some(0.0),
        vec![2u8, 2, 4, 7, 1, 3, 4, 5, 2, 7, 9, 8],
    );
    let p = dir.join("场景.toml");
    std::fs::write(&p, "name = '石河子'\nbase_year = 2020\nmodels_dir = 'models'\noutput_dir = '输出 out'\n[landcover]\npath = '土地 覆盖.tif'\nscheme = 'clcd'\n").unwrap();
    let o = sinkmap(&["run", p.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dir.join("输出 out/summary.json").exists());
    assert_eq!(json(&dir.join("输出 out/summary.json"))["scene"], "石河子");
}
