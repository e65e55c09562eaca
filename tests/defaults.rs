//! No silent defaults: forest pixels that get the default forest type are counted, warned
//! about and shown in the summary (and, from the summary, in the report).

#![cfg(feature = "gdal")]

mod common;

use std::path::Path;

/// A 10 × 10 UTM grid of 30 m pixels (0.09 ha each): the first `forest` pixels forest
/// (CLCD 2), the rest grassland (CLCD 4). With `types`, a forest-type layer whose first
/// `typed` pixels are type 2 and the rest nodata (0).
fn scene(dir: &Path, forest: usize, types: Option<usize>) -> std::path::PathBuf {
    let gt = [500_000.0, 30.0, 0.0, 4_800_000.0, 0.0, -30.0];
    let lc: Vec<u8> = (0..100).map(|i| if i < forest { 2 } else { 4 }).collect();
    common::write_raster(&dir.join("lc.tif"), 10, 10, gt, Some(32645), Some(0.0), lc);
    let mut text =
        "name = 'defaults'\nbase_year = 2020\noutput_dir = 'out'\n[landcover]\npath = 'lc.tif'\nscheme = 'clcd'\n"
            .to_string();
    if let Some(typed) = types {
        let ft: Vec<u8> = (0..100).map(|i| if i < typed { 2 } else { 0 }).collect();
        common::write_raster(&dir.join("ft.tif"), 10, 10, gt, Some(32645), Some(0.0), ft);
        text += "[forest_type]\npath = 'ft.tif'\n";
    }
    let p = dir.join("scene.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn run(scene: &Path) -> (serde_json::Value, String) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_sinkmap"))
        .args(["run", scene.to_str().unwrap(), "--no-report"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::stderr(&o));
    let out = scene.parent().unwrap().join("out/summary.json");
    let s = serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    (s, common::stderr(&o))
}

#[test]
fn without_a_forest_type_layer_every_forest_pixel_is_counted_as_assumed() {
    let t = tempfile::tempdir().unwrap();
    let (s, err) = run(&scene(t.path(), 30, None));
    let assumed = s["totals"]["forest_area_assumed_type_ha"].as_f64().unwrap();
    assert!((assumed - 30.0 * 0.09).abs() < 1e-9, "{assumed}");
    assert!(
        err.contains("warning:") && err.contains("2.700 ha of forest (100 % of the forest)"),
        "{err}"
    );
}

#[test]
fn nodata_in_the_forest_type_layer_is_counted_and_typed_pixels_are_not() {
    let t = tempfile::tempdir().unwrap();
    // 30 forest pixels, 12 of them typed: 18 assumed (and grassland pixels never count).
    let (s, err) = run(&scene(t.path(), 30, Some(12)));
    let assumed = s["totals"]["forest_area_assumed_type_ha"].as_f64().unwrap();
    assert!((assumed - 18.0 * 0.09).abs() < 1e-9, "{assumed}");
    assert!(err.contains("60.0 % of the forest"), "{err}");
}

#[test]
fn a_fully_typed_forest_gives_no_warning() {
    let t = tempfile::tempdir().unwrap();
    let (s, err) = run(&scene(t.path(), 30, Some(30)));
    assert_eq!(
        s["totals"]["forest_area_assumed_type_ha"].as_f64().unwrap(),
        0.0
    );
    assert!(!err.contains("forest type"), "{err}");
}
