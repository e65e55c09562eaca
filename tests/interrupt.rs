//! Interrupted runs into a folder that holds a DIFFERENT earlier result: a real run is killed
//! at 20 points (SIGINT, SIGTERM, SIGKILL in turn), each time into a folder holding the other
//! scene's complete result. After every kill the folder must hold exactly one of the two
//! complete sets — the earlier one or the new one — checked through its manifest and byte for
//! byte against reference runs; never a mix. A re-run then succeeds and leaves nothing stale.

#![cfg(feature = "gdal")]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    snapshot(dir).into_iter().collect()
}

fn without_run_info(bytes: &[u8]) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_slice(bytes).expect("summary.json is complete JSON");
    v["run"] = serde_json::Value::Null;
    v
}

fn run_args(scene: &Path, out: &Path) -> Vec<String> {
    vec![
        "run".into(),
        scene.to_string_lossy().into_owned(),
        "--quiet".into(),
        "--out".into(),
        out.to_string_lossy().into_owned(),
    ]
}

/// Which reference set `out` holds, or a panic naming what is wrong.
fn holds_exactly_one(out: &Path, refs: &[(String, BTreeMap<String, Vec<u8>>)], k: usize) -> usize {
    let (_, m) = sinkmap::manifest::verify_result(out)
        .unwrap_or_else(|e| panic!("kill point {k}: the folder does not verify: {e}"));
    let sha = m.scene_sha256.clone().unwrap_or_default();
    let which = refs
        .iter()
        .position(|(s, _)| *s == sha)
        .unwrap_or_else(|| panic!("kill point {k}: manifest of an unknown scene"));
    let want = &refs[which].1;
    let got = files(out);
    let names = |m: &BTreeMap<String, Vec<u8>>| -> Vec<String> {
        m.keys()
            .filter(|n| *n != "manifest.json")
            .cloned()
            .collect()
    };
    assert_eq!(names(&got), names(want), "kill point {k}: the set of files");
    for (name, bytes) in &got {
        match name.as_str() {
            "manifest.json" => {}
            "summary.json" => assert_eq!(
                without_run_info(bytes),
                without_run_info(&want[name]),
                "kill point {k}: {name}"
            ),
            _ => assert!(
                bytes == &want[name],
                "kill point {k}: {name} is not the file of the complete set it belongs to"
            ),
        }
    }
    which
}

#[test]
fn killed_runs_leave_exactly_the_earlier_or_the_new_result() {
    let tmp = tempfile::tempdir().unwrap();
    // Two different scenes (other seed and size: other maps, cube and tables).
    let scenes = [
        synth_scene(&tmp.path().join("a"), 700, 450, 17),
        synth_scene(&tmp.path().join("b"), 640, 420, 99),
    ];
    let mut refs = Vec::new();
    let mut duration = Duration::MAX;
    for (i, scene) in scenes.iter().enumerate() {
        let reference = tmp.path().join(format!("reference{i}"));
        // Two complete runs (the second with warm caches); kills spread over the shorter.
        for _ in 0..2 {
            let t = Instant::now();
            let o = Command::new(env!("CARGO_BIN_EXE_sinkmap"))
                .args(run_args(scene, &reference))
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", stderr(&o));
            duration = duration.min(t.elapsed());
        }
        let sha = sinkmap::manifest::read(&reference.join(".sinkmap/current"))
            .unwrap()
            .scene_sha256
            .unwrap();
        refs.push((sha, files(&reference)));
    }
    assert_ne!(refs[0].0, refs[1].0);

    let out: PathBuf = tmp.path().join("out");
    // The folder starts with scene 1's complete result.
    let o = Command::new(env!("CARGO_BIN_EXE_sinkmap"))
        .args(run_args(&scenes[1], &out))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let mut held = holds_exactly_one(&out, &refs, 0);
    let signals = [libc::SIGINT, libc::SIGTERM, libc::SIGKILL];
    let (mut killed_midway, mut kept_earlier, mut published_new) = (0, 0, 0);
    for k in 0..20 {
        // Always run the scene the folder does NOT hold.
        let other = 1 - held;
        // Up to 1.1 × the run: the last kills land around and after the publication.
        let delay = duration.mul_f64((k as f64 + 0.5) / 18.0);
        let mut child = Command::new(env!("CARGO_BIN_EXE_sinkmap"))
            .args(run_args(&scenes[other], &out))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let sig = signals[k % 3];
        if child.try_wait().unwrap().is_none() {
            unsafe {
                libc::kill(child.id() as i32, sig);
            }
            killed_midway += 1;
        }
        let _ = child.wait();
        let now = holds_exactly_one(&out, &refs, k);
        if now == held {
            kept_earlier += 1;
        } else {
            published_new += 1;
        }
        held = now;
    }
    eprintln!(
        "20 kill points: {killed_midway} killed a running process; {kept_earlier} left the earlier result, {published_new} the new one"
    );
    assert!(
        killed_midway >= 10,
        "only {killed_midway} of 20 kills hit a running process"
    );
    assert!(
        kept_earlier >= 5,
        "only {kept_earlier} kills kept the earlier set"
    );
    // A re-run succeeds and leaves one set, no staging folder and no temporary file.
    let o = Command::new(env!("CARGO_BIN_EXE_sinkmap"))
        .args(run_args(&scenes[0], &out))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(holds_exactly_one(&out, &refs, 20), 0);
    let sets = std::fs::read_dir(out.join(".sinkmap/sets"))
        .unwrap()
        .count();
    assert_eq!(sets, 1, "stale staging sets left");
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.contains(".sinkmap-partial-") && !n.starts_with(".sinkmap-link-")),
        "{names:?}"
    );
}
