//! Each kind of failure has its own exit code (README, "Exit codes"): the binary is run
//! into one failure of each kind a user can cause.

#![cfg(feature = "gdal")]

mod common;

use common::*;

fn code_of(args: &[&str]) -> (Option<i32>, String) {
    let o = sinkmap(args);
    (o.status.code(), stderr(&o))
}

/// A scene in `dir` on the repository's models, with `extra` appended to its TOML.
fn scene(dir: &std::path::Path, landcover: &str, extra: &str) -> std::path::PathBuf {
    let p = dir.join("scene.toml");
    std::fs::write(
        &p,
        format!(
            "name = 't'\nbase_year = 2020\nmodels_dir = '{}'\noutput_dir = 'out'\n{extra}\n[landcover]\npath = '{landcover}'\nscheme = 'clcd'\n",
            root().join("models").display()
        ),
    )
    .unwrap();
    p
}

#[test]
fn every_fault_a_user_can_cause_has_its_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let sample = root().join("rasters/sample/scene.toml");
    let sample = sample.to_str().unwrap();
    let lc = root().join("rasters/sample/landcover.tif");
    let lc = lc.to_str().unwrap();

    // Usage (2): an option the parser refuses, and values that do not fit together.
    let (c, err) = code_of(&["run", "--no-such-option"]);
    assert_eq!(c, Some(2), "{err}");
    let (c, err) = code_of(&[
        "change", sample, "--before", lc, "--after", lc, "--years", "2020", "2000", "--quiet",
    ]);
    assert_eq!(c, Some(2), "{err}");
    assert!(err.contains("usage error"), "{err}");

    // Input data (3): the land-cover raster the scene names does not exist.
    let s = scene(tmp.path(), "nope.tif", "");
    let (c, err) = code_of(&["run", s.to_str().unwrap(), "--quiet"]);
    assert_eq!(c, Some(3), "{err}");
    assert!(
        err.contains("nope.tif") && err.contains("input data error"),
        "{err}"
    );

    // Configuration (4): a key the scene file does not know.
    let s = scene(tmp.path(), lc, "colour = 'green'");
    let (c, err) = code_of(&["run", s.to_str().unwrap(), "--quiet"]);
    assert_eq!(c, Some(4), "{err}");
    assert!(
        err.contains("scene.toml") && err.contains("configuration error"),
        "{err}"
    );

    // Environment (5): the output folder cannot be created (a file is in the way).
    let blocker = tmp.path().join("file");
    std::fs::write(&blocker, "not a folder").unwrap();
    let out = blocker.join("out");
    let (c, err) = code_of(&[
        "run",
        sample,
        "--out",
        out.to_str().unwrap(),
        "--no-report",
        "--quiet",
    ]);
    assert_eq!(c, Some(5), "{err}");
    assert!(err.contains("environment error"), "{err}");
}
