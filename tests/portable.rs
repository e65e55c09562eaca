//! The binary carries its defaults: the sample scene and the models run from any folder,
//! `init` writes a starter, and `synth` scenes run wherever they are moved.

#![cfg(feature = "gdal")]

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn sinkmap_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sinkmap"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// `sinkmap run` in an empty folder: the embedded sample runs, and the only thing written in
/// that folder is `out/sample/`; the summary says the models are the embedded ones, and their
/// recorded SHA-256 are those of the repository's model files.
#[test]
fn run_without_a_scene_in_an_empty_folder_writes_only_the_outputs() {
    let t = tempfile::tempdir().unwrap();
    let o = sinkmap_in(
        t.path(),
        &["run", "--quiet", "--no-report", "--draws", "20"],
    );
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert_eq!(common::list(t.path()), vec!["out".to_string()]);
    assert_eq!(
        common::list(&t.path().join("out")),
        vec!["sample".to_string()]
    );
    let s = json(&t.path().join("out/sample/summary.json"));
    assert!(
        s["models_dir"].as_str().unwrap().starts_with("embedded"),
        "{}",
        s["models_dir"]
    );
    let forest = s["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["file"] == "forest.toml")
        .unwrap();
    let on_disk =
        sinkmap::io::files::sha256_file(&common::root().join("models/forest.toml")).unwrap();
    assert_eq!(forest["sha256"].as_str().unwrap(), on_disk);
    // The maps carry the same record.
    let ds = gdal::Dataset::open(t.path().join("out/sample/stock_tc_per_ha.tif")).unwrap();
    let md = gdal::Metadata::metadata_item(&ds, "SINKMAP_MODELS_DIR", "").unwrap();
    assert!(md.starts_with("embedded"), "{md}");
}

/// `synth` writes a scene without models_dir: moved to another folder and run from a third
/// one, it works (its relative paths are relative to the scene file).
#[test]
fn a_synth_scene_runs_after_being_moved() {
    let t = tempfile::tempdir().unwrap();
    let gen = t.path().join("gen");
    let o = sinkmap_in(
        t.path(),
        &[
            "synth", "--out", "gen", "--width", "40", "--height", "30", "--quiet",
        ],
    );
    assert!(o.status.success(), "{}", common::stderr(&o));
    let text = std::fs::read_to_string(gen.join("scene.toml")).unwrap();
    assert!(!text.contains("\nmodels_dir"), "{text}");
    let moved = t.path().join("elsewhere/deeper");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&gen, &moved).unwrap();
    let cwd = t.path().join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let scene = moved.join("scene.toml");
    let o = sinkmap_in(
        &cwd,
        &["run", scene.to_str().unwrap(), "--quiet", "--no-report"],
    );
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(moved.join("out/summary.json").is_file());
    assert!(common::list(&cwd).is_empty());
}

/// `init` writes a starter scene and the models; it refuses to overwrite; the models it
/// writes are the embedded ones byte for byte, and a scene made from the starter runs.
#[test]
fn init_writes_a_starter_that_runs_once_its_paths_are_filled() {
    let t = tempfile::tempdir().unwrap();
    let o = sinkmap_in(t.path(), &["init", "mine", "--scheme", "esa_worldcover"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let dir = t.path().join("mine");
    for (name, text) in sinkmap::embedded::MODEL_FILES {
        assert_eq!(
            std::fs::read_to_string(dir.join("models").join(name)).unwrap(),
            *text
        );
    }
    let starter = std::fs::read_to_string(dir.join("scene.toml")).unwrap();
    assert!(starter.contains("scheme = \"esa_worldcover\""));
    assert!(starter.contains("gdalbuildvrt"));
    // A second init into the same folder is refused and changes nothing.
    let o = sinkmap_in(t.path(), &["init", "mine"]);
    assert!(!o.status.success());
    assert!(common::stderr(&o).contains("already exists"));
    assert_eq!(
        std::fs::read_to_string(dir.join("scene.toml")).unwrap(),
        starter
    );
    // Fill the land-cover path with a tiny WorldCover-coded raster (EPSG:4326) and run.
    let codes: Vec<u8> = (0..12 * 8).map(|i| [10u8, 20, 30, 60, 80][i % 5]).collect();
    common::write_raster(
        &dir.join("landcover.vrt.tif"),
        12,
        8,
        [85.0, 0.001, 0.0, 44.0, 0.0, -0.001],
        Some(4326),
        Some(0.0),
        codes,
    );
    std::fs::write(
        dir.join("scene.toml"),
        starter.replace("path = \"landcover.vrt\"", "path = \"landcover.vrt.tif\""),
    )
    .unwrap();
    let o = sinkmap_in(
        t.path(),
        &["run", "mine/scene.toml", "--quiet", "--no-report"],
    );
    assert!(o.status.success(), "{}", common::stderr(&o));
    let s = json(&dir.join("out/summary.json"));
    assert!(s["models_dir"].as_str().unwrap().ends_with("models"));
}
