//! Hostile conditions: a full disk, fuzzed parsers and polygons (a short proptest run in every
//! test run; the cargo-fuzz targets in `fuzz/` run longer).

#![cfg(feature = "gdal")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use proptest::prelude::*;

/// A size-limited tmpfs mounted on a folder, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .ok()?
            .success();
        ok.then(|| SmallDisk(dir.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_gives_a_clear_error_and_no_final_file() {
    let tmp = tempfile::tempdir().unwrap();
    let scene = synth_scene(tmp.path(), 400, 300, 8);
    for size in ["60k", "200k"] {
        let out = tmp.path().join(format!("disk_{size}"));
        let Some(_disk) = SmallDisk::mount(&out, size) else {
            use std::io::Write;
            let _ = writeln!(std::io::stderr().lock(), "SKIPPED a_full_disk_gives_a_clear_error_and_no_final_file: cannot mount a tmpfs here (needs root)");
            return;
        };
        let o = sinkmap(&[
            "run",
            scene.to_str().unwrap(),
            "--quiet",
            "--no-report",
            "--out",
            out.to_str().unwrap(),
        ]);
        let err = stderr(&o);
        assert_handled_failure(&o);
        let line = err
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_else(|| panic!("{err}"));
        assert!(line.contains("No space left on device"), "{line}");
        assert!(
            !line.contains(".sinkmap-partial-"),
            "the error names the final file: {line}"
        );
        let left: Vec<String> = list(&out)
            .into_iter()
            .filter(|n| !n.starts_with(".sinkmap-partial-"))
            .collect();
        assert!(left.is_empty(), "{size}: files under final names: {left:?}");
    }
}

#[test]
fn a_disk_filling_up_during_a_rerun_leaves_the_earlier_result_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let first = synth_scene(&tmp.path().join("a"), 400, 300, 8);
    let second = synth_scene(&tmp.path().join("b"), 400, 300, 9);
    // The size of one complete result, measured on a normal disk.
    let probe = tmp.path().join("probe");
    let o = sinkmap(&[
        "run",
        first.to_str().unwrap(),
        "--quiet",
        "--out",
        probe.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes: u64 = snapshot(&probe)
        .iter()
        .map(|(_, b)| (b.len() as u64).div_ceil(4096) * 4096)
        .sum();
    // Room for one result and a half: the rerun fills the disk before it can publish.
    let out = tmp.path().join("disk");
    let Some(_disk) = SmallDisk::mount(&out, &format!("{}k", bytes * 3 / 2 / 1024 + 64)) else {
        use std::io::Write;
        let _ = writeln!(std::io::stderr().lock(), "SKIPPED a_disk_filling_up_during_a_rerun_leaves_the_earlier_result_intact: cannot mount a tmpfs here (needs root)");
        return;
    };
    let o = sinkmap(&[
        "run",
        first.to_str().unwrap(),
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "the first result fits: {}", stderr(&o));
    let before = snapshot(&out);
    let run_id = sinkmap::manifest::verify_result(&out).unwrap().1.run_id;
    let o = sinkmap(&[
        "run",
        second.to_str().unwrap(),
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert!(
        matches!(o.status.code(), Some(2..=5)),
        "exit code {:?}: {err}",
        o.status.code()
    );
    assert!(err.contains("No space left on device"), "{err}");
    assert!(
        !err.contains(".sinkmap/sets"),
        "the error names the final file: {err}"
    );
    // The earlier result, whole and verified; the staging set gone.
    assert_still_holds(&out, &before, &run_id);
}

const SCENE: &str = "name = 'fuzz'\nbase_year = 2020\nmodels_dir = 'models'\noutput_dir = 'out'\n[landcover]\npath = 'lc.tif'\nscheme = 'clcd'\n[forest_age]\npath = 'age.tif'\nnodata_values = [-1.0]\n[output]\nblock_size_px = 64\n";

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any mutation of a scene file loads or fails with an error; it never panics.
    #[test]
    fn scene_parser_never_panics(pos in 0usize..SCENE.len(), len in 0usize..20, insert in "[ -~\\n]{0,12}") {
        let mut s = SCENE.to_string();
        let p = (0..=pos).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
        let end = (p + len).min(s.len());
        let end = (end..=s.len()).find(|i| s.is_char_boundary(*i)).unwrap_or(s.len());
        s.replace_range(p..end, &insert);
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("scene.toml");
        std::fs::write(&f, &s).unwrap();
        let _ = sinkmap::config::Scene::load(&f);
    }

    /// Random text as each model file: parse and validate return, never panic.
    #[test]
    fn model_parsers_never_panic(text in "[ -~\\n\\[\\]=\"]{0,200}") {
        let _ = toml::from_str::<sinkmap::model::forest::ForestModel>(&text).map(|m| m.validate());
        let _ = toml::from_str::<sinkmap::model::desert::DesertModel>(&text).map(|m| m.validate());
        let _ = toml::from_str::<sinkmap::model::scheme::Scheme>(&text).map(|m| m.validate());
        let _ = toml::from_str::<sinkmap::accounting::emissions::EmissionFile>(&text).map(|m| m.validate(2020, 2060));
    }

    /// Arbitrary rings (self-intersecting, degenerate, far outside the block): every coverage
    /// is finite and within [0, 1].
    #[test]
    fn coverage_of_arbitrary_rings_is_bounded(pts in prop::collection::vec((-50.0f64..80.0, -50.0f64..80.0), 0..12), c0 in 0usize..40, r0 in 0usize..40) {
        let mut edges = Vec::new();
        sinkmap::coverage::ring_edges(&pts, false, &mut edges);
        let mut acc = sinkmap::coverage::Accumulator::new(c0, r0, 17, 13);
        for e in &edges { acc.add_edge(e); }
        for v in acc.coverage() {
            prop_assert!(v.is_finite() && (0.0..=1.0).contains(&v));
        }
    }

    /// Convex polygons: the coverage adds up to the shoelace area.
    #[test]
    fn coverage_of_convex_polygons_sums_to_their_area(n in 3usize..12, cx in 5.0f64..25.0, cy in 5.0f64..25.0, r in 0.1f64..4.9, phase in 0.0f64..std::f64::consts::TAU) {
        let pts: Vec<(f64, f64)> = (0..n).map(|i| {
            let a = phase + i as f64 * std::f64::consts::TAU / n as f64;
            (cx + r * a.cos(), cy + r * a.sin())
        }).collect();
        let cov = sinkmap::coverage::polygon_coverage(&pts, &[], 31, 31);
        let area = sinkmap::coverage::ring_signed_area(&pts).abs();
        prop_assert!((cov.iter().sum::<f64>() - area).abs() < 1e-9 * area.max(1.0));
    }
}
