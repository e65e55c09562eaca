//! `sinkmap series`: agreement with `run` and `change`, block/thread invariance, bad inputs.

#![cfg(feature = "gdal")]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use gdal::raster::{Buffer, RasterCreationOptions};
use gdal::{Dataset, DriverManager};
use sinkmap::config::Scene;
use sinkmap::cube::GRID_ZONE;
use sinkmap::engine::Tuning;
use sinkmap::pipeline::{self, RunOptions};
use sinkmap::series::{self, SeriesOptions};

/// Copies a single-band raster, changing its values with `f(index, value)`.
fn copy_with(src: &Path, dst: &Path, mut f: impl FnMut(usize, i32) -> i32) {
    let ds = Dataset::open(src).unwrap();
    let (w, h) = ds.raster_size();
    let driver = DriverManager::get_driver_by_name("GTiff").unwrap();
    let out = ds
        .create_copy(&driver, dst, &RasterCreationOptions::new())
        .unwrap();
    let v = ds
        .rasterband(1)
        .unwrap()
        .read_as::<i32>((0, 0), (w, h), (w, h), None)
        .unwrap();
    let data: Vec<i32> = v.data().iter().enumerate().map(|(i, x)| f(i, *x)).collect();
    let mut b = Buffer::new((w, h), data);
    out.rasterband(1)
        .unwrap()
        .write((0, 0), (w, h), &mut b)
        .unwrap();
}

/// Appends a `[series]` table to a scene file.
fn add_series(scene: &Path, table: &str) {
    let mut s = std::fs::read_to_string(scene).unwrap();
    s.push_str("\n[series]\n");
    s.push_str(table);
    std::fs::write(scene, s).unwrap();
}

fn opts(block: usize, threads: usize) -> SeriesOptions {
    SeriesOptions {
        tuning: Tuning {
            block_size_px: Some(block),
            threads: Some(threads),
        },
        ..SeriesOptions::default()
    }
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("sinkmap-series-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn constant_land_cover_gives_run_stocks_every_year_and_net_flux_equals_gross_sink() {
    let dir = tmp("constant");
    let scene_path = synth_scene(&dir, 70, 45, 11);
    // The same land cover 2017..2021 around the ages' reference year 2020 (back-cast before).
    add_series(
        &scene_path,
        "landcover_pattern = \"landcover.tif{year}\"\nfirst_year = 2017\nlast_year = 2021\n",
    );
    let sdir = scene_path.parent().unwrap();
    for y in 2017..=2021 {
        std::fs::copy(
            sdir.join("landcover.tif"),
            sdir.join(format!("landcover.tif{y}")),
        )
        .unwrap();
    }
    let scene = Scene::load(&scene_path).unwrap();
    let out = dir.join("series");
    let o = series::run(&scene, &opts(32, 2), None, &out).unwrap();
    assert_eq!(o.years, (2017..=2021).collect::<Vec<_>>());
    let mut total_gross = 0.0;
    for (k, y) in o.years.iter().enumerate() {
        let mut s = scene.clone();
        s.base_year = *y;
        let r = pipeline::run(
            &s,
            &RunOptions {
                output_dir: Some(dir.join(format!("run{y}"))),
                threads: Some(1),
                ..RunOptions::default()
            },
            None,
        )
        .unwrap();
        let t = r.cube.totals(GRID_ZONE, None);
        // Every forest pixel has an age here (else run keeps the fallback age every year
        // while the series ages it).
        assert_eq!(t.forest_area_assumed_age_ha, 0.0);
        assert_eq!(o.stock_tc(0, k), t.stock_tc, "{y}: series vs run stock");
        if *y == 2021 {
            // The last year's cohort cube (what the projection starts from) is run's.
            let text = |p: PathBuf| std::fs::read_to_string(p).unwrap();
            assert_eq!(
                text(out.join("cube.csv")),
                text(dir.join("run2021").join("cube.csv")),
                "the series' last-year cube differs from run's"
            );
        }
    }
    let (h, rows) = read_csv(&out.join("series.csv"));
    let gross = column(&h, &rows[1..5], "gross_sink_tc");
    let net = column(&h, &rows[1..5], "net_flux_tc");
    for (g, n) in gross.iter().zip(&net) {
        assert_eq!(g.1, n.1);
        total_gross += g.1;
    }
    assert!(total_gross > 0.0, "the stands grow");
    // No transition other than class → same class.
    let (th, trows) = read_csv(&out.join("series_transitions.csv"));
    let (fi, ti) = (
        column_index(&th, "from_class"),
        column_index(&th, "to_class"),
    );
    assert!(trows.iter().all(|r| r[fi] == r[ti]));
}

#[test]
fn two_years_give_the_stock_difference_of_change() {
    let dir = tmp("pair");
    let scene_path = synth_scene(&dir, 60, 40, 5);
    let sdir = scene_path.parent().unwrap().to_path_buf();
    // 2021: every 7th forest pixel (CLCD 2) cleared to grassland (4), every 5th grassland
    // pixel planted to forest.
    copy_with(
        &sdir.join("landcover.tif"),
        &sdir.join("lc2021.tif"),
        |i, c| match c {
            2 if i % 7 == 0 => 4,
            4 if i % 5 == 0 => 2,
            c => c,
        },
    );
    add_series(
        &scene_path,
        // Soil at once, as `change` counts it (the rules then coincide).
        "soil_transition_yr = 0\n[series.landcover_by_year]\n2020 = \"landcover.tif\"\n2021 = \"lc2021.tif\"\n",
    );
    let scene = Scene::load(&scene_path).unwrap();
    let out = dir.join("series");
    let o = series::run(&scene, &opts(16, 1), None, &out).unwrap();
    // The series' ages of 2021: the raster's + 1 where forest stayed, 0 on new stands.
    let (lc0, _, _) = read_raster(&sdir.join("landcover.tif"));
    let (lc1, _, _) = read_raster(&sdir.join("lc2021.tif"));
    let (age0, _, _) = read_raster(&sdir.join("forest_age.tif"));
    let (age1, _, _) = read_raster(&out.join("forest_age_2021.tif"));
    let mut new_stands = 0;
    for i in 0..lc0.len() {
        match (lc0[i] as i32, lc1[i] as i32) {
            (2, 2) if age0[i] >= 0.0 => assert_eq!(age1[i], age0[i] + 1.0, "pixel {i}"),
            (4, 2) => {
                assert_eq!(age1[i], 0.0, "pixel {i}");
                new_stands += 1;
            }
            (_, c) if c != 2 && !lc0[i].is_nan() => assert!(age1[i].is_nan(), "pixel {i}"),
            _ => {}
        }
    }
    assert!(new_stands > 0);
    // change with the same pair and ages.
    let cout = dir.join("change");
    let a = |p: &Path| p.to_string_lossy().into_owned();
    sinkmap_ok(&[
        "change",
        &a(&scene_path),
        "--before",
        &a(&sdir.join("landcover.tif")),
        "--after",
        &a(&sdir.join("lc2021.tif")),
        "--age-before",
        &a(&sdir.join("forest_age.tif")),
        "--age-after",
        &a(&out.join("forest_age_2021.tif")),
        "--years",
        "2020",
        "2021",
        "--no-zones",
        "--out",
        &a(&cout),
        "-q",
    ]);
    let (h, rows) = read_csv(&cout.join("change_zones.csv"));
    let before = column(&h, &rows, "stock_before_tc")[0].1;
    let after = column(&h, &rows, "stock_after_tc")[0].1;
    assert_eq!(o.stock_tc(0, 0), before);
    assert_eq!(o.stock_tc(0, 1), after);
    // The series splits that difference into sink, clearing and conversion.
    let (sh, srows) = read_csv(&out.join("series.csv"));
    let net = column(&sh, &srows[1..], "net_flux_tc")[0].1;
    assert!(
        rel_close(net, after - before, 1e-9),
        "{net} vs {}",
        after - before
    );
    assert!(column(&sh, &srows[1..], "emissions_clearing_tc")[0].1 > 0.0);
}

/// A synthetic series with transitions and fires (`synth --years`), 90 × 70 px.
fn synthetic_series(name: &str) -> (PathBuf, PathBuf) {
    synthetic_series_sized(name, 90, 70, "2018..2022")
}

fn synthetic_series_sized(name: &str, w: usize, h: usize, years: &str) -> (PathBuf, PathBuf) {
    let dir = tmp(name);
    let scene = dir.join("scene");
    let models = root().join("models");
    sinkmap_ok(&[
        "synth",
        "--out",
        &scene.to_string_lossy(),
        "--width",
        &w.to_string(),
        "--height",
        &h.to_string(),
        "--years",
        years,
        "--models-dir",
        &models.to_string_lossy(),
        "-q",
    ]);
    (dir, scene.join("scene.toml"))
}

/// The scene's zones on its grid.
fn zone_set(scene: &Scene) -> sinkmap::zones::ZoneSet {
    let z = scene.zones.as_ref().unwrap();
    let grid = sinkmap::raster::reference_grid(&scene.landcover.path, 1).unwrap();
    sinkmap::zones::ZoneSet::read(
        &sinkmap::zones::ZoneSource {
            path: &z.path,
            layer: z.layer.as_deref(),
            id_field: &z.id_field,
            name_field: z.name_field.as_deref(),
            repair_invalid: z.repair_invalid,
        },
        &grid,
    )
    .unwrap()
}

#[test]
fn the_memoised_pass_equals_every_pixel_run_on_its_own() {
    // Zones with fractional edges, fires, clearing and planting; every per-year map.
    let (dir, scene_path) = synthetic_series("memo");
    let scene = Scene::load(&scene_path).unwrap();
    let zones = zone_set(&scene);
    let mut outs = Vec::new();
    // Memoised, every pixel on its own, and a memo of 3 histories a block (so that memoised
    // and one-by-one pixels mix within blocks).
    for (name, naive, memo) in [
        ("memo", false, None),
        ("naive", true, None),
        ("mix", false, Some(3)),
    ] {
        let out = dir.join(name);
        let o = SeriesOptions {
            maps: vec![
                series::SeriesMap::Stock,
                series::SeriesMap::Net,
                series::SeriesMap::Age,
            ],
            naive,
            memo_max_histories: memo,
            ..opts(48, 2)
        };
        series::run(&scene, &o, Some(&zones), &out).unwrap();
        outs.push(out);
    }
    let text = |p: &Path| std::fs::read_to_string(p).unwrap();
    for f in ["series.csv", "series_transitions.csv", "cube.csv"] {
        assert_eq!(text(&outs[0].join(f)), text(&outs[1].join(f)), "{f}");
        assert_eq!(
            text(&outs[2].join(f)),
            text(&outs[1].join(f)),
            "mixed memo: {f}"
        );
    }
    let maps: Vec<String> = list(&outs[0])
        .into_iter()
        .filter(|f| f.ends_with(".tif"))
        .collect();
    assert!(maps.len() > 10, "{maps:?}");
    for f in &maps {
        let (a, _, _) = read_raster(&outs[0].join(f));
        let (b, _, _) = read_raster(&outs[1].join(f));
        let (c, _, _) = read_raster(&outs[2].join(f));
        assert!(same_bits(&a, &b), "{f}");
        assert!(same_bits(&c, &b), "mixed memo: {f}");
    }
}

#[test]
fn results_do_not_depend_on_block_size_or_threads() {
    let (dir, scene_path) = synthetic_series("invariance");
    let scene = Scene::load(&scene_path).unwrap();
    let zones = zone_set(&scene);
    let mut outs = Vec::new();
    for (b, t) in [(16, 1), (48, 3), (512, 2)] {
        let out = dir.join(format!("o{b}"));
        series::run(&scene, &opts(b, t), Some(&zones), &out).unwrap();
        outs.push(out);
    }
    let text = |p: &Path| std::fs::read_to_string(p).unwrap();
    for o in &outs[1..] {
        for f in ["series.csv", "series_transitions.csv"] {
            assert_eq!(text(&outs[0].join(f)), text(&o.join(f)), "{f}");
        }
        let (a, _, _) = read_raster(&outs[0].join("forest_age_2022.tif"));
        let (b, _, _) = read_raster(&o.join("forest_age_2022.tif"));
        assert!(same_bits(&a, &b));
    }
    // The zones and the outside add up to the grid (exact sums, tiny rounding at most).
    let (h, rows) = read_csv(&outs[0].join("series.csv"));
    let stock = column(&h, &rows, "stock_tc");
    let grid_2022: f64 = stock
        .iter()
        .filter(|r| r.0 == "__grid__")
        .map(|r| r.1)
        .next_back()
        .unwrap();
    let i_year = column_index(&h, "year");
    let parts_2022: f64 = rows
        .iter()
        .zip(&stock)
        .filter(|(r, s)| s.0 != "__grid__" && r[i_year] == "2022")
        .map(|(_, s)| s.1)
        .sum();
    assert!(
        rel_close(grid_2022, parts_2022, 1e-9),
        "{grid_2022} vs {parts_2022}"
    );
    assert!(stock
        .iter()
        .any(|r| r.0 != "__grid__" && r.0 != "__outside__"));
    // The synthetic series has fires, clearing and planting.
    // The first year of each zone has no fluxes (empty cells).
    let later: Vec<Vec<String>> = rows.into_iter().filter(|r| r[i_year] != "2018").collect();
    let sum = |c: &str| {
        column(&h, &later, c)
            .iter()
            .filter(|x| x.0 == "__grid__")
            .map(|x| x.1)
            .sum::<f64>()
    };
    assert!(sum("emissions_fire_tc") > 0.0);
    assert!(sum("emissions_clearing_tc") > 0.0);
    assert!(sum("gross_sink_tc") > 0.0);
}

#[test]
fn bad_inputs_are_named_before_anything_is_written() {
    let (dir, scene_path) = synthetic_series("bad");
    let sdir = scene_path.parent().unwrap().to_path_buf();
    let run = |name: &str| {
        let out = dir.join(name);
        let r = sinkmap(&[
            "series",
            &scene_path.to_string_lossy(),
            "--out",
            &out.to_string_lossy(),
            "-q",
        ]);
        assert!(!r.status.success(), "{name}: should fail");
        assert!(!out.join("series.csv").exists(), "{name}: nothing written");
        stderr(&r)
    };
    // A missing year.
    std::fs::rename(sdir.join("landcover_2020.tif"), sdir.join("x.tif")).unwrap();
    let e = run("missing");
    assert!(
        e.contains("landcover_2020.tif") && e.contains("missing"),
        "{e}"
    );
    // A year on another grid (cropped by one column).
    let r = std::process::Command::new("gdal_translate")
        .args(["-q", "-srcwin", "0", "0", "89", "70"])
        .arg(sdir.join("x.tif"))
        .arg(sdir.join("landcover_2020.tif"))
        .status()
        .unwrap();
    assert!(r.success());
    let e = run("grid");
    assert!(
        e.contains("landcover_2020.tif") && e.contains("grid"),
        "{e}"
    );
    std::fs::rename(sdir.join("x.tif"), sdir.join("landcover_2020.tif")).unwrap();
    // An unknown event code.
    let ev = sdir.join("events_2021.tif");
    let bad = sdir.join("events_bad.tif");
    copy_with(&ev, &bad, |i, c| if i == 75 { 9 } else { c });
    std::fs::rename(&bad, &ev).unwrap();
    let e = run("code");
    assert!(
        e.contains("events_2021.tif") && e.contains("event code 9"),
        "{e}"
    );
    // Overlapping events: a second raster for 2021 with a harvest where the first has one.
    copy_with(&ev, &bad, |_, c| if c == 9 { 0 } else { c });
    std::fs::rename(&bad, &ev).unwrap();
    copy_with(&ev, &sdir.join("harvest_2021.tif"), |i, _| {
        i32::from(i == 75) * 2
    });
    copy_with(&ev, &bad, |i, c| if i == 75 { 1 } else { c });
    std::fs::rename(&bad, &ev).unwrap();
    let s = std::fs::read_to_string(&scene_path).unwrap().replace(
        "2021 = [\"events_2021.tif\"]",
        "2021 = [\"events_2021.tif\", \"harvest_2021.tif\"]",
    );
    std::fs::write(&scene_path, s).unwrap();
    let e = run("overlap");
    assert!(e.contains("overlapping events"), "{e}");
    assert!(
        e.contains("harvest_2021.tif") && e.contains("events_2021.tif"),
        "{e}"
    );
}

#[test]
fn per_year_maps_and_tiles_merged_equal_a_single_run() {
    // Larger than one COG tile, so that the maps have an overview level.
    let (dir, scene_path) = synthetic_series_sized("tiles", 600, 530, "2018..2021");
    let s = scene_path.to_string_lossy().into_owned();
    let single = dir.join("single");
    sinkmap_ok(&[
        "series",
        &s,
        "--maps",
        "stock,net,age",
        "--out",
        &single.to_string_lossy(),
        "-q",
    ]);
    let n = 3;
    let children: Vec<_> = (1..=n)
        .map(|i| {
            std::process::Command::new(env!("CARGO_BIN_EXE_sinkmap"))
                .args(["series", &s, "--maps", "net,stock,age", "-q"])
                .args(["--threads", "1", "--block-size", "64"])
                .args(["--tile", &format!("{i}/{n}"), "--out"])
                .arg(dir.join(format!("t{i}")))
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let merged = dir.join("merged");
    let mut args = vec!["merge".to_string(), s.clone()];
    for i in [3, 1, 2] {
        args.push(dir.join(format!("t{i}")).to_string_lossy().into_owned());
    }
    args.extend([
        "--out".into(),
        merged.to_string_lossy().into_owned(),
        "-q".into(),
    ]);
    let refs: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
    sinkmap_ok(&refs);
    // Tables identical (exact sums added), maps and overviews bit-identical, styles beside.
    let text = |p: &Path| std::fs::read_to_string(p).unwrap();
    for f in ["series.csv", "series_transitions.csv"] {
        assert_eq!(text(&single.join(f)), text(&merged.join(f)), "{f}");
    }
    // The last year's cube as `run`'s merge gives it: equal to 1e-9 (read back from text).
    let (ha, ra) = read_csv(&single.join("cube.csv"));
    let (hb, rb) = read_csv(&merged.join("cube.csv"));
    assert_eq!((ha, ra.len()), (hb, rb.len()));
    for (x, y) in ra.iter().zip(&rb) {
        for (a, b) in x.iter().zip(y) {
            match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(a), Ok(b)) => {
                    assert!((a - b).abs() <= 1e-9 * a.abs().max(1.0), "{x:?} vs {y:?}")
                }
                _ => assert_eq!(a, b),
            }
        }
    }
    let mut maps = Vec::new();
    for y in 2018..=2021 {
        maps.push(format!("stock_tc_per_ha_{y}.tif"));
        maps.push(format!("forest_age_{y}.tif"));
        if y > 2018 {
            maps.push(format!("net_flux_tco2_per_ha_{y}.tif"));
        }
    }
    let tifs: Vec<String> = list(&single)
        .into_iter()
        .filter(|f| f.ends_with(".tif"))
        .collect();
    assert_eq!(tifs.len(), maps.len(), "{tifs:?}");
    for m in &maps {
        let (a, w, h) = read_raster(&single.join(m));
        let (b, w2, h2) = read_raster(&merged.join(m));
        assert_eq!((w, h), (w2, h2));
        assert!(same_bits(&a, &b), "{m} differs");
        let (oa, ob) = (
            read_overviews(&single.join(m)),
            read_overviews(&merged.join(m)),
        );
        assert!(!oa.is_empty(), "{m}: an overview level expected");
        assert_eq!(oa.len(), ob.len());
        for (x, y) in oa.iter().zip(&ob) {
            assert!(same_bits(&x.0, &y.0), "{m}: overview differs");
        }
        for d in [&single, &merged] {
            let qml = d.join(m.replace(".tif", ".qml"));
            assert!(text(&qml).contains("<qgis"), "{}", qml.display());
        }
    }
    // The maps hold what the table sums: Σ map × pixel area = the grid's total.
    let scene = Scene::load(&scene_path).unwrap();
    let grid = sinkmap::raster::reference_grid(&scene.landcover.path, 1).unwrap();
    let areas = grid.row_areas_ha();
    let (h, rows) = read_csv(&single.join("series.csv"));
    let grid_rows: Vec<Vec<String>> = rows.into_iter().filter(|r| r[0] == GRID_ZONE).collect();
    let total = |m: &str| {
        let (v, w, _) = read_raster(&single.join(m));
        v.iter()
            .enumerate()
            .filter(|(_, x)| !x.is_nan())
            .map(|(i, x)| x * areas[i / w])
            .sum::<f64>()
    };
    let stock = column(&h, &grid_rows, "stock_tc");
    let net = column(&h, &grid_rows[1..], "net_flux_tco2");
    for (k, y) in (2018..=2021).enumerate() {
        let t = total(&format!("stock_tc_per_ha_{y}.tif"));
        assert!(rel_close(t, stock[k].1, 1e-5), "{y}: {t} vs {}", stock[k].1);
        if y > 2018 {
            let t = total(&format!("net_flux_tco2_per_ha_{y}.tif"));
            let want = net[k - 1].1;
            assert!(
                (t - want).abs() <= 1e-5 * stock[k].1.abs(),
                "{y}: {t} vs {want}"
            );
        }
    }
}

#[test]
fn the_committed_sample_series_runs_as_the_readme_says() {
    let out = tmp("sample");
    sinkmap_ok(&[
        "series",
        &root()
            .join("rasters/sample_series/scene.toml")
            .to_string_lossy(),
        "--maps",
        "stock,net,age",
        "--out",
        &out.to_string_lossy(),
        "-q",
    ]);
    let files = list(&out);
    for y in 2016..=2020 {
        for m in ["stock_tc_per_ha", "forest_age"] {
            assert!(
                files.contains(&format!("{m}_{y}.tif")),
                "{m} {y}: {files:?}"
            );
            assert!(
                files.contains(&format!("{m}_{y}.qml")),
                "{m} {y}: {files:?}"
            );
        }
        let net = format!("net_flux_tco2_per_ha_{y}.tif");
        assert_eq!(files.contains(&net), y > 2016, "{net}");
    }
    let (h, rows) = read_csv(&out.join("series.csv"));
    let grid: Vec<Vec<String>> = rows.into_iter().filter(|r| r[0] == GRID_ZONE).collect();
    assert_eq!(grid.len(), 5);
    assert!(column(&h, &grid[1..], "emissions_fire_tc")
        .iter()
        .any(|x| x.1 > 0.0));
}

#[test]
fn bad_series_options_are_refused_before_anything_is_written() {
    let (dir, scene_path) = synthetic_series("options");
    let scene = scene_path.to_string_lossy().into_owned();
    let fails = |args: &[&str], out: &Path| {
        let mut a = vec!["series", scene.as_str(), "--out"];
        let o = out.to_string_lossy().into_owned();
        a.push(&o);
        a.extend_from_slice(args);
        let r = sinkmap(&a);
        assert!(!r.status.success(), "{args:?}: should fail");
        assert!(!out.exists(), "{args:?}: nothing written");
        stderr(&r)
    };
    let e = fails(&["--maps", "stock,carbon"], &dir.join("maps"));
    assert!(e.contains("unknown map 'carbon'"), "{e}");
    let e = fails(&["--tile", "3/2"], &dir.join("tile"));
    assert!(e.contains("3/2"), "{e}");
    // An unknown plantation type names the scene and the type.
    let text = std::fs::read_to_string(&scene_path).unwrap();
    std::fs::write(
        &scene_path,
        text.replace("[series]\n", "[series]\nnew_stand_forest_type = \"oak\"\n"),
    )
    .unwrap();
    let e = fails(&[], &dir.join("type"));
    assert!(e.contains("'oak'") && e.contains("scene.toml"), "{e}");
    std::fs::write(&scene_path, text).unwrap();
    // A merge of an incomplete set of series parts.
    let part = dir.join("p1");
    sinkmap_ok(&[
        "series",
        &scene,
        "--tile",
        "1/2",
        "--out",
        &part.to_string_lossy(),
        "-q",
    ]);
    let merged = dir.join("merged");
    let r = sinkmap(&[
        "merge",
        &scene,
        &part.to_string_lossy(),
        "--out",
        &merged.to_string_lossy(),
        "-q",
    ]);
    assert!(!r.status.success());
    assert!(stderr(&r).contains("1..=2"), "{}", stderr(&r));
    assert!(!merged.join("series.csv").exists());
}
