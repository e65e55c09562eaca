//! `--progress-json`: machine-readable progress on standard error for programs driving sinkmap.

#![cfg(feature = "gdal")]

mod common;

use common::*;

#[test]
fn progress_lines_are_json_and_reach_every_pixel() {
    let tmp = tempfile::tempdir().unwrap();
    let scene = synth_scene(tmp.path(), 90, 70, 11);
    let o = sinkmap_ok(&[
        "run",
        scene.to_str().unwrap(),
        "--quiet",
        "--no-report",
        "--block-size",
        "32",
        "--progress-json",
    ]);
    let lines: Vec<serde_json::Value> = stderr(&o)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(!lines.is_empty(), "no progress line in {:?}", stderr(&o));
    let done: Vec<u64> = lines.iter().map(|v| v["done"].as_u64().unwrap()).collect();
    assert!(done.windows(2).all(|w| w[0] <= w[1]), "{done:?}");
    // However short the run, its first line (printed when the bar starts) says 0 %.
    assert_eq!(lines[0]["done"].as_u64(), Some(0), "{done:?}");
    assert_eq!(lines[0]["progress"].as_f64(), Some(0.0));
    let last = lines.last().unwrap();
    assert_eq!(last["total"].as_u64(), Some(90 * 70));
    assert_eq!(last["done"].as_u64(), Some(90 * 70));
    assert_eq!(last["progress"].as_f64(), Some(1.0));
    // Without the flag and with --quiet: nothing on standard error.
    let o = sinkmap(&["run", scene.to_str().unwrap(), "--quiet", "--no-report"]);
    assert!(o.status.success());
    assert!(!stderr(&o).contains("\"progress\""));
}
