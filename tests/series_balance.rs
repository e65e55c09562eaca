//! `sinkmap balance SCENE --series DIR`: history + projection as one line (docs/science.md
//! §7.1) — the continuity of the two parts on the committed sample series, and bad inputs.

#![cfg(feature = "gdal")]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use sinkmap::accounting::emissions::{EmissionFile, SeriesKind};
use sinkmap::accounting::history::{read_history, Source};
use sinkmap::cube::GRID_ZONE;

/// A copy of the committed sample series' scene in `dir` whose `[series]` is `table` (the
/// sample's rasters and the shipped models used where they are).
fn sample_scene(dir: &Path, name: &str, table: &str) -> PathBuf {
    let sample = root().join("rasters/sample_series");
    let text = std::fs::read_to_string(sample.join("scene.toml")).unwrap();
    let head = &text[..text.find("\n# SYNTHETIC annual series").unwrap()];
    let mut s = String::new();
    for line in head.lines() {
        let line = if line.starts_with("models_dir") {
            format!("models_dir = {:?}", root().join("models"))
        } else if line.starts_with("output_dir") {
            format!("output_dir = {:?}", dir.join("out"))
        } else if let Some((k, v)) = line.split_once("path = \"") {
            // Every raster (masks too) and the zones are the sample's own files.
            let (file, rest) = v.split_once('"').unwrap();
            format!("{k}path = {:?}{rest}", sample.join(file))
        } else {
            line.to_string()
        };
        s.push_str(&line);
        s.push('\n');
    }
    s.push_str("\n[series]\n");
    s.push_str(table);
    let p = dir.join(name);
    std::fs::write(&p, s).unwrap();
    p
}

/// A constant land cover (the sample's 2020 map) in every year of `years`, no events.
fn constant(years: &[i32]) -> String {
    let lc = root().join("rasters/sample_series/landcover_2020.tif");
    let mut t = String::from("[series.landcover_by_year]\n");
    for y in years {
        t.push_str(&format!("{y} = {lc:?}\n"));
    }
    t
}

fn run_series(scene: &Path, out: &Path) {
    let r = sinkmap(&[
        "series",
        &scene.to_string_lossy(),
        "--out",
        &out.to_string_lossy(),
        "-q",
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
}

fn balance(scene: &Path, series: &Path) -> std::process::Output {
    sinkmap(&[
        "balance",
        &scene.to_string_lossy(),
        "--series",
        &series.to_string_lossy(),
        "--until",
        "2060",
        "--draws",
        "10",
        "--allow-subregion-balance",
        "-q",
    ])
}

/// The whole grid's value of `col` in `year` of a series.csv.
fn grid_value(series_csv: &Path, year: i32, col: &str) -> f64 {
    let (h, rows) = read_csv(series_csv);
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .filter(|r| r[0] == GRID_ZONE && r[1] == year.to_string())
        .collect();
    assert_eq!(rows.len(), 1, "{year}");
    column(&h, &rows, col)[0].1
}

#[test]
fn the_projection_from_the_last_year_continues_the_series() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // A: 2020–2021; B: one more year, 2020–2022, on the same constant land cover.
    let a = sample_scene(d, "a.toml", &constant(&[2020, 2021]));
    let b = sample_scene(d, "b.toml", &constant(&[2020, 2021, 2022]));
    let (out_a, out_b) = (d.join("series_a"), d.join("series_b"));
    run_series(&a, &out_a);
    run_series(&b, &out_b);
    let r = balance(&a, &out_a);
    assert!(r.status.success(), "{}", stderr(&r));
    let table = out_a.join("balance").join("history_projection.csv");
    let rows = read_history(&table).unwrap();
    let k = 44.0 / 12.0;
    // One row per year: the history's step ending in 2021, then 2022..=2060 projected.
    assert_eq!(
        rows.iter().map(|r| (r.year, r.source)).collect::<Vec<_>>(),
        std::iter::once((2021, Source::History))
            .chain((2022..=2060).map(|y| (y, Source::Projection)))
            .collect::<Vec<_>>()
    );
    // Constant land cover, no events: the series' net flux is its gross sink.
    let g2021 = grid_value(&out_a.join("series.csv"), 2021, "gross_sink_tc");
    assert!(g2021 > 0.0, "the stands grow");
    assert!(rel_close(rows[0].gross_sink_tco2_yr, g2021 * k, 1e-12));
    assert_eq!(rows[0].net_flux_tco2_yr, rows[0].gross_sink_tco2_yr);
    assert_eq!(rows[0].emissions_tco2_yr, 0.0);
    // Continuity: the projection's first year from A's last cube = the gross sink B counts
    // for its next year.
    let g2022 = grid_value(&out_b.join("series.csv"), 2022, "gross_sink_tc");
    assert!(
        g2022 > 0.0 && g2022 != g2021,
        "a year of growth later differs"
    );
    let p = &rows[1];
    assert!(
        rel_close(p.gross_sink_tco2_yr, g2022 * k, 1e-9),
        "projection 2022 {} vs series 2022 {}",
        p.gross_sink_tco2_yr,
        g2022 * k
    );
    assert_eq!(p.emissions_tco2_yr, 0.0, "no disturbance without a rollout");
    assert!(rel_close(p.net_flux_mt_co2, g2022 * k / 1e6, 1e-9));
    // The projection's counted total = the line + the rate-based sinks, in every year.
    for r in &rows[1..] {
        let (rate, total) = (
            r.rate_sink_tco2_yr.unwrap(),
            r.net_flux_total_tco2_yr.unwrap(),
        );
        assert!(rel_close(total, r.net_flux_tco2_yr + rate, 1e-9), "{r:?}");
    }
    // Reported emissions beside the line: the emission file's historical points, as given.
    let em: EmissionFile = toml::from_str(
        &std::fs::read_to_string(root().join("models/emissions/xinjiang.toml")).unwrap(),
    )
    .unwrap();
    let hist = em
        .series
        .iter()
        .find(|s| s.kind == SeriesKind::Historical && s.zone_id.is_none())
        .unwrap();
    for r in &rows {
        let want = hist.points.iter().find(|p| p.0 == r.year).map(|p| p.1);
        assert_eq!(r.emissions_history_mt_co2, want, "{}", r.year);
    }
    // The chart beside the table, and the projection's own tables.
    let png = std::fs::read(out_a.join("balance").join("history_projection.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(out_a.join("balance").join("balance.csv").is_file());
}

#[test]
fn bad_series_folders_are_named_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let a = sample_scene(d, "a.toml", &constant(&[2020, 2021]));
    let b = sample_scene(d, "b.toml", &constant(&[2020, 2021, 2022]));
    let out_a = d.join("series_a");
    run_series(&a, &out_a);
    // Another scene's series.
    let r = balance(&b, &out_a);
    assert_handled_failure(&r);
    let e = stderr(&r);
    assert!(
        e.contains("series_a") && e.contains("a series of another scene"),
        "{e}"
    );
    assert!(!out_a.join("balance").exists());
    // A folder without a series.
    let empty = d.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let r = balance(&a, &empty);
    assert_handled_failure(&r);
    let e = stderr(&r);
    assert!(
        e.contains("series.csv") && e.contains("not the output folder of `sinkmap series`"),
        "{e}"
    );
    // A hand-assembled folder (no manifest) whose table misses a year of the scene.
    let out_b = d.join("series_b");
    run_series(&b, &out_b);
    let plain = d.join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::copy(out_b.join("cube.csv"), plain.join("cube.csv")).unwrap();
    let text = std::fs::read_to_string(out_b.join("series.csv")).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| l.split(',').nth(1) != Some("2021"))
        .collect();
    std::fs::write(plain.join("series.csv"), kept.join("\n") + "\n").unwrap();
    let r = balance(&b, &plain);
    assert_handled_failure(&r);
    let e = stderr(&r);
    assert!(
        e.contains("series.csv") && e.contains("no row for 2021"),
        "{e}"
    );
    assert!(!plain.join("balance").exists());
    // A scene without [series].
    let text = std::fs::read_to_string(&a).unwrap();
    let none = d.join("none.toml");
    std::fs::write(&none, &text[..text.find("\n[series]").unwrap()]).unwrap();
    let r = balance(&none, &out_a);
    assert_handled_failure(&r);
    assert!(
        stderr(&r).contains("has no [series] table"),
        "{}",
        stderr(&r)
    );
}
