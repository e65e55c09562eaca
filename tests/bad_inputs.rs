//! Bad input gives a one-line error naming the file and the problem, a non-zero exit,
//! no partial output, and leaves an earlier complete result untouched.

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

/// Every file below `dir` (report/ included) with its bytes.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for n in list(dir) {
        let p = dir.join(&n);
        if p.is_dir() {
            out.extend(
                snapshot(&p)
                    .into_iter()
                    .map(|(m, b)| (format!("{n}/{m}"), b)),
            );
        } else {
            out.push((n, std::fs::read(&p).unwrap()));
        }
    }
    out
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
    assert_eq!(o.status.code(), Some(1), "a handled error, not a crash");
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
