//! Interrupted runs: a real run is killed at 20 points (SIGINT, SIGTERM, SIGKILL in turn);
//! every file under a final name is then complete (identical to a complete run's), only
//! temporary `.sinkmap-partial-…` files may be left, and a re-run succeeds and cleans them.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// Every file below `dir`, relative path → bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for n in list(dir) {
        let p = dir.join(&n);
        if p.is_dir() {
            out.extend(files(&p).into_iter().map(|(m, b)| (format!("{n}/{m}"), b)));
        } else {
            out.push((n, std::fs::read(&p).unwrap()));
        }
    }
    out
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

#[test]
fn killed_runs_never_leave_a_partial_file_under_a_final_name() {
    let tmp = tempfile::tempdir().unwrap();
    let scene = synth_scene(tmp.path(), 700, 450, 17);
    // Two complete runs (the second with warm caches); the kill points spread over the shorter.
    let reference = tmp.path().join("reference");
    let mut duration = Duration::MAX;
    for _ in 0..2 {
        let t = Instant::now();
        let o = Command::new(env!("CARGO_BIN_EXE_sinkmap"))
            .args(run_args(&scene, &reference))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        duration = duration.min(t.elapsed());
    }
    let want: std::collections::BTreeMap<String, Vec<u8>> = files(&reference).into_iter().collect();

    let out: PathBuf = tmp.path().join("out");
    let signals = [libc::SIGINT, libc::SIGTERM, libc::SIGKILL];
    let mut killed_midway = 0;
    for k in 0..20 {
        let delay = duration.mul_f64((k as f64 + 0.5) / 21.0);
        let mut child = Command::new(env!("CARGO_BIN_EXE_sinkmap"))
            .args(run_args(&scene, &out))
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
        for (name, bytes) in files(&out) {
            let base = name.rsplit('/').next().unwrap();
            if base.starts_with(".sinkmap-partial-") {
                continue; // a temporary name: allowed, removed by the next run
            }
            let reference = want
                .get(&name)
                .unwrap_or_else(|| panic!("kill point {k}: unexpected file {name}"));
            if name == "summary.json" {
                assert_eq!(
                    without_run_info(&bytes),
                    without_run_info(reference),
                    "kill point {k}: {name}"
                );
            } else {
                assert!(
                    &bytes == reference,
                    "kill point {k} (signal {sig}): {name} is not a complete output"
                );
            }
        }
    }
    assert!(
        killed_midway >= 10,
        "only {killed_midway} of 20 kills hit a running process"
    );
    // A re-run succeeds and leaves nothing temporary.
    let o = Command::new(env!("CARGO_BIN_EXE_sinkmap"))
        .args(run_args(&scene, &out))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let names: Vec<String> = files(&out).into_iter().map(|(n, _)| n).collect();
    assert!(
        names.iter().all(|n| !n.contains(".sinkmap-partial-")),
        "{names:?}"
    );
    assert_eq!(names.len(), want.len());
}
