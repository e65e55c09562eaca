//! Split and merge: N tiles run as parallel processes and merged equal a single run.

#![cfg(feature = "gdal")]

mod common;

use std::process::Command;

use common::*;

#[test]
fn parallel_tiles_merged_equal_a_single_run() {
    let tmp = tempfile::tempdir().unwrap();
    // Larger than one COG tile, so that the maps have an overview level.
    let scene = synth_scene(tmp.path(), 700, 530, 21);
    let s = scene.to_str().unwrap();
    let single = tmp.path().join("single");
    let o = sinkmap(&["run", s, "--quiet", "--out", single.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Three tiles at once, as an array job would run them.
    let n = 3;
    let children: Vec<_> = (1..=n)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_sinkmap"))
                .args([
                    "run",
                    s,
                    "--quiet",
                    "--threads",
                    "1",
                    "--block-size",
                    "64",
                    "--tile",
                    &format!("{i}/{n}"),
                    "--out",
                ])
                .arg(tmp.path().join(format!("t{i}")))
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let merged = tmp.path().join("merged");
    let mut args = vec!["merge".to_string(), s.to_string()];
    // Given in any order.
    for i in [2, 3, 1] {
        args.push(
            tmp.path()
                .join(format!("t{i}"))
                .to_string_lossy()
                .into_owned(),
        );
    }
    args.extend([
        "--out".to_string(),
        merged.to_string_lossy().into_owned(),
        "--quiet".to_string(),
    ]);
    let refs: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
    let o = sinkmap(&refs);
    assert!(o.status.success(), "{}", stderr(&o));
    // Maps bit-identical.
    for m in [
        "stock_tc_per_ha.tif",
        "sink_tco2_per_ha_yr.tif",
        "potential_tco2_per_ha_yr.tif",
        "best_intervention.tif",
    ] {
        let (a, w, h) = read_raster(&single.join(m));
        let (b, w2, h2) = read_raster(&merged.join(m));
        assert_eq!((w, h), (w2, h2));
        assert!(same_bits(&a, &b), "{m} differs");
        // The overviews too (the tiles were run with another block size).
        let (oa, ob) = (
            read_overviews(&single.join(m)),
            read_overviews(&merged.join(m)),
        );
        assert_eq!(oa.len(), 1, "{m}: one overview level expected");
        assert_eq!(oa.len(), ob.len());
        for (x, y) in oa.iter().zip(&ob) {
            assert_eq!((x.1, x.2), (y.1, y.2));
            assert!(same_bits(&x.0, &y.0), "{m}: overview differs");
        }
        let ds = gdal::Dataset::open(merged.join(m)).unwrap();
        use gdal::Metadata;
        assert_eq!(
            ds.metadata_item("LAYOUT", "IMAGE_STRUCTURE").as_deref(),
            Some("COG")
        );
        assert!(ds.metadata_item("SINKMAP_SCENE_SHA256", "").is_some());
        let unit = match m {
            "stock_tc_per_ha.tif" => "t C/ha",
            "best_intervention.tif" => "",
            _ => "t CO2/ha/yr",
        };
        assert_eq!(ds.rasterband(1).unwrap().unit(), unit, "{m}");
    }
    // Tables to 1e-9.
    let (sa, sb) = (
        json(&single.join("summary.json")),
        json(&merged.join("summary.json")),
    );
    for q in [
        "area_ha",
        "stock_tc",
        "sink_tco2_yr",
        "forest_sink_tco2_yr",
        "desert_sink_tco2_yr",
        "desert_inorganic_tco2_yr",
    ] {
        let (a, b) = (
            sa["totals"][q].as_f64().unwrap(),
            sb["totals"][q].as_f64().unwrap(),
        );
        assert!(rel_close(a, b, 1e-9), "{q}: {a} vs {b}");
    }
    assert!(rel_close(
        sa["nodata_area_ha"].as_f64().unwrap(),
        sb["nodata_area_ha"].as_f64().unwrap(),
        1e-9
    ));
    let (ha, ra) = read_csv(&single.join("zones.csv"));
    let (hb, rb) = read_csv(&merged.join("zones.csv"));
    assert_eq!(ha, hb);
    assert_eq!(ra.len(), rb.len());
    for (x, y) in ra.iter().zip(&rb) {
        assert_eq!(x[0], y[0]);
        for (k, (a, b)) in x[2..].iter().zip(&y[2..]).enumerate() {
            let (a, b): (f64, f64) = (a.parse().unwrap(), b.parse().unwrap());
            assert!(
                (a - b).abs() <= 1e-9 * a.abs().max(1.0),
                "{} {}: {a} vs {b}",
                x[0],
                ha[k + 2]
            );
        }
    }
}

#[test]
fn merge_refuses_an_incomplete_set_of_tiles() {
    let tmp = tempfile::tempdir().unwrap();
    let scene = synth_scene(tmp.path(), 64, 48, 2);
    let s = scene.to_str().unwrap();
    for i in [1, 3] {
        let o = sinkmap(&[
            "run",
            s,
            "--quiet",
            "--tile",
            &format!("{i}/3"),
            "--out",
            tmp.path().join(format!("t{i}")).to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let out = tmp.path().join("m");
    let o = sinkmap(&[
        "merge",
        s,
        tmp.path().join("t1").to_str().unwrap(),
        tmp.path().join("t3").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "usage");
    assert!(
        stderr(&o).contains("need each of 1..=3 exactly once"),
        "{}",
        stderr(&o)
    );
    assert!(list(&out).is_empty());
}
