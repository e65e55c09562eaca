//! `sinkmap sample` and `sinkmap assess` on the sample scene: reproducible samples, a
//! perfect reference returns the map, a planted confusion returns the hand-computed
//! adjusted areas, OGR input in another CRS gives the same result as CSV, and bad
//! reference data gets clear errors.

#![cfg(feature = "gdal")]

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::*;
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::vector::{
    FieldValue, Geometry, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType,
};
use gdal::{Dataset, DriverManager};

const SCENE: &str = "rasters/sample/scene.toml";

/// One run of the sample scene and one sample of 200 points, shared by the tests.
fn fixture() -> &'static (tempfile::TempDir, PathBuf, PathBuf) {
    static F: OnceLock<(tempfile::TempDir, PathBuf, PathBuf)> = OnceLock::new();
    F.get_or_init(|| {
        let t = tempfile::tempdir().unwrap();
        let run = t.path().join("run");
        sinkmap_ok(&[
            "run",
            SCENE,
            "--out",
            run.to_str().unwrap(),
            "-q",
            "--no-report",
        ]);
        let s = t.path().join("s");
        sinkmap_ok(&[
            "sample",
            SCENE,
            "--n",
            "200",
            "--min-per-class",
            "10",
            "--seed",
            "3",
            "--out",
            s.to_str().unwrap(),
            "-q",
        ]);
        (t, run, s)
    })
}

/// The sample's rows with the reference column set by `f(index, row)` (None keeps it).
fn write_reference(
    dir: &Path,
    name: &str,
    f: impl Fn(usize, &[String]) -> Option<String>,
) -> PathBuf {
    let (h, rows) = read_csv(&fixture().2.join("sample_points.csv"));
    let ri = column_index(&h, "reference");
    let p = dir.join(name);
    let mut w = csv::Writer::from_path(&p).unwrap();
    w.write_record(&h).unwrap();
    for (i, r) in rows.iter().enumerate() {
        let mut r = r.clone();
        if let Some(v) = f(i, &r) {
            r[ri] = v;
        }
        w.write_record(&r).unwrap();
    }
    w.flush().unwrap();
    p
}

fn assess(reference: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let run = fixture().1.to_str().unwrap().to_string();
    let mut args = vec![
        "assess",
        SCENE,
        "--reference",
        reference.to_str().unwrap(),
        "--maps-dir",
        &run,
        "--out",
        out.to_str().unwrap(),
        "-q",
    ];
    args.extend_from_slice(extra);
    sinkmap(&args)
}

fn region<'a>(j: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    j["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["zone_id"] == id)
        .unwrap()
}

fn class(r: &serde_json::Value, code: i64) -> &serde_json::Value {
    r["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == code)
        .unwrap()
}

#[test]
fn sample_is_reproducible_allocated_and_on_the_map() {
    let (t, _, s) = fixture();
    let (h, rows) = read_csv(&s.join("allocation.csv"));
    let n: Vec<(String, f64)> = column(&h, &rows, "n");
    assert_eq!(n.iter().map(|x| x.1).sum::<f64>(), 200.0);
    assert!(n.iter().all(|x| x.1 >= 10.0), "{n:?}");
    // The same seed gives the same points; another seed other points.
    let again = t.path().join("s_again");
    let other = t.path().join("s_other");
    for (dir, seed) in [(&again, "3"), (&other, "4")] {
        sinkmap_ok(&[
            "sample",
            SCENE,
            "--n",
            "200",
            "--min-per-class",
            "10",
            "--seed",
            seed,
            "--out",
            dir.to_str().unwrap(),
            "-q",
        ]);
    }
    let read = |d: &Path| std::fs::read_to_string(d.join("sample_points.csv")).unwrap();
    assert_eq!(read(s), read(&again));
    assert_ne!(read(s), read(&other));
    // Every point's map class is the land cover under it.
    let lc = Dataset::open(root().join("rasters/sample/landcover.tif")).unwrap();
    let gt = lc.geo_transform().unwrap();
    let band = lc.rasterband(1).unwrap();
    let (h, rows) = read_csv(&s.join("sample_points.csv"));
    let xi = column_index(&h, "x");
    let ci = column_index(&h, "map_code");
    assert_eq!(rows.len(), 200);
    for r in &rows {
        let (x, y): (f64, f64) = (r[xi].parse().unwrap(), r[xi + 1].parse().unwrap());
        let col = ((x - gt[0]) / gt[1]).floor() as isize;
        let row = ((y - gt[3]) / gt[5]).floor() as isize;
        let v = band
            .read_as::<i32>((col, row), (1, 1), (1, 1), None)
            .unwrap();
        assert_eq!(v.data()[0].to_string(), r[ci]);
    }
    // The GeoPackage holds the same points.
    let g = Dataset::open(s.join("sample_points.gpkg")).unwrap();
    assert_eq!(g.layer(0).unwrap().feature_count(), 200);
}

#[test]
fn perfect_reference_returns_the_map_and_its_totals() {
    let t = tempfile::tempdir().unwrap();
    let refp = write_reference(t.path(), "perfect.csv", |_, r| Some(r[3].clone()));
    let out = t.path().join("a");
    let o = assess(&refp, &out, &["--stratum-field", "stratum", "--no-zones"]);
    assert_ok(&o);
    let j = json(&out.join("assessment.json"));
    let all = region(&j, "all");
    assert_eq!(all["overall_accuracy"]["value"].as_f64().unwrap(), 1.0);
    for c in all["classes"].as_array().unwrap() {
        let mapped = c["mapped_area_ha"].as_f64().unwrap();
        let adj = c["adjusted_area_ha"]["value"].as_f64().unwrap();
        assert!(
            rel_close(adj, mapped, 1e-9) || (adj == 0.0 && mapped == 0.0),
            "{c}"
        );
        assert!(c["adjusted_area_ha"]["se"].as_f64().unwrap() < 1e-6 * mapped.max(1.0));
    }
    // Map totals equal the run's summary; perfect areas leave them unchanged.
    let summary = json(&fixture().1.join("summary.json"));
    let carbon = &all["carbon"];
    let map_stock = carbon["map_stock_tc"].as_f64().unwrap();
    assert!(rel_close(
        map_stock,
        summary["totals"]["stock_tc"].as_f64().unwrap(),
        1e-6
    ));
    assert!(rel_close(
        carbon["adjusted_stock_tc"]["value"].as_f64().unwrap(),
        map_stock,
        1e-9
    ));
    // Another categorical map (here the same raster by its path): classes are its codes,
    // and there is no carbon consequence.
    let out_map = t.path().join("m");
    let lc = root().join("rasters/sample/landcover.tif");
    let o = assess(
        &refp,
        &out_map,
        &["--no-zones", "--map", lc.to_str().unwrap()],
    );
    assert_ok(&o);
    let jm = json(&out_map.join("assessment.json"));
    assert_eq!(
        region(&jm, "all")["overall_accuracy"]["value"]
            .as_f64()
            .unwrap(),
        1.0
    );
    assert_eq!(class(region(&jm, "all"), 7)["label"], "code 7");
    assert!(region(&jm, "all")["carbon"].is_null());
    assert!(jm["notes"]
        .to_string()
        .contains("not the scene's land cover"));
    // Tables are written.
    for f in [
        "error_matrix_counts.csv",
        "error_matrix_area_proportions.csv",
        "accuracy.csv",
        "adjusted_area.csv",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
}

#[test]
fn planted_confusion_gives_the_hand_computed_adjusted_areas() {
    let t = tempfile::tempdir().unwrap();
    // Every 4th barren (7) point is called grassland (4) in the reference.
    let refp = write_reference(t.path(), "confused.csv", |i, r| {
        Some(if r[3] == "7" && i % 4 == 0 {
            "Grassland".into()
        } else {
            r[3].clone()
        })
    });
    let (h, rows) = read_csv(&refp);
    let ri = column_index(&h, "reference");
    let barren: Vec<&Vec<String>> = rows.iter().filter(|r| r[3] == "7").collect();
    let nb = barren.len() as f64;
    let moved = barren.iter().filter(|r| r[ri] == "Grassland").count() as f64;
    assert!(moved >= 2.0);
    let out = t.path().join("a");
    let o = assess(&refp, &out, &["--no-zones"]);
    assert_ok(&o);
    let j = json(&out.join("assessment.json"));
    let all = region(&j, "all");
    let a_barren = class(all, 7)["mapped_area_ha"].as_f64().unwrap();
    let a_grass = class(all, 4)["mapped_area_ha"].as_f64().unwrap();
    let f = moved / nb;
    // Olofsson 2014 eqs. 9–10 by hand: only the barren stratum is impure.
    let g = &class(all, 4)["adjusted_area_ha"];
    assert!(rel_close(
        g["value"].as_f64().unwrap(),
        a_grass + a_barren * f,
        1e-9
    ));
    let se = a_barren * (f * (1.0 - f) / (nb - 1.0)).sqrt();
    assert!(rel_close(g["se"].as_f64().unwrap(), se, 1e-9));
    let b = &class(all, 7)["adjusted_area_ha"];
    assert!(rel_close(
        b["value"].as_f64().unwrap(),
        a_barren * (1.0 - f),
        1e-9
    ));
    assert!(rel_close(
        class(all, 7)["users_accuracy"]["value"].as_f64().unwrap(),
        1.0 - f,
        1e-12
    ));
    assert_eq!(
        all["error_matrix_counts"][6][3].as_u64().unwrap() as f64,
        moved
    );
    // The carbon consequence moves barren area to grassland density, with an interval.
    let c = &all["carbon"];
    let d = |k: usize, v: &str| c[v][k].as_f64().unwrap();
    let shift =
        a_barren * f * (d(3, "class_mean_stock_tc_per_ha") - d(6, "class_mean_stock_tc_per_ha"));
    let adj = c["adjusted_stock_tc"]["value"].as_f64().unwrap();
    assert!(rel_close(
        adj,
        c["map_stock_tc"].as_f64().unwrap() + shift,
        1e-9
    ));
    assert!(c["adjusted_stock_tc"]["se"].as_f64().unwrap() > 0.0);
}

/// The same reference as a GeoJSON layer in UTM 45N gives the same assessment as the CSV.
#[test]
fn ogr_points_in_another_crs_match_the_csv() {
    let t = tempfile::tempdir().unwrap();
    let refp = write_reference(t.path(), "perfect.csv", |i, r| {
        Some(if i % 5 == 0 {
            "Barren".into()
        } else {
            r[3].clone()
        })
    });
    let (h, rows) = read_csv(&refp);
    let gj = t.path().join("ref.geojson");
    let drv = DriverManager::get_driver_by_name("GeoJSON").unwrap();
    let mut ds = drv.create_vector_only(&gj).unwrap();
    let mut utm = SpatialRef::from_epsg(32645).unwrap();
    utm.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut wgs = SpatialRef::from_epsg(4326).unwrap();
    wgs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let tr = CoordTransform::new(&wgs, &utm).unwrap();
    let layer = ds
        .create_layer(LayerOptions {
            name: "ref",
            srs: Some(&utm),
            ty: OGRwkbGeometryType::wkbPoint,
            options: None,
        })
        .unwrap();
    layer
        .create_defn_fields(&[("observed", OGRFieldType::OFTString)])
        .unwrap();
    for r in &rows {
        let (mut x, mut y) = (
            [r[1].parse::<f64>().unwrap()],
            [r[2].parse::<f64>().unwrap()],
        );
        tr.transform_coords(&mut x, &mut y, &mut [0.0]).unwrap();
        let mut g = Geometry::empty(OGRwkbGeometryType::wkbPoint).unwrap();
        g.add_point_2d((x[0], y[0]));
        let mut f = gdal::vector::Feature::new(layer.defn()).unwrap();
        f.set_geometry(g).unwrap();
        f.set_field(0, &FieldValue::StringValue(r[h.len() - 1].clone()))
            .unwrap();
        f.create(&layer).unwrap();
    }
    ds.close().unwrap();
    let (a, b) = (t.path().join("csv"), t.path().join("ogr"));
    let o = assess(&refp, &a, &["--no-zones"]);
    assert_ok(&o);
    let o = assess(&gj, &b, &["--no-zones", "--class-field", "observed"]);
    assert_ok(&o);
    let ja = json(&a.join("assessment.json"));
    let jb = json(&b.join("assessment.json"));
    assert_eq!(
        region(&ja, "all")["error_matrix_counts"],
        region(&jb, "all")["error_matrix_counts"]
    );
    assert!(
        region(&ja, "all")["overall_accuracy"]["value"]
            .as_f64()
            .unwrap()
            < 1.0
    );
}

#[test]
fn zones_get_estimates_or_a_note() {
    let t = tempfile::tempdir().unwrap();
    let refp = write_reference(t.path(), "perfect.csv", |_, r| Some(r[3].clone()));
    let out = t.path().join("a");
    let o = assess(&refp, &out, &[]);
    assert_ok(&o);
    let j = json(&out.join("assessment.json"));
    let regions = j["regions"].as_array().unwrap();
    assert!(regions.len() > 1, "the sample scene has zones");
    let mut n_zone_points = 0;
    for r in &regions[1..] {
        n_zone_points += r["sample_size"].as_u64().unwrap();
        if r["note"].is_null() {
            assert_eq!(r["overall_accuracy"]["value"].as_f64().unwrap(), 1.0);
        } else {
            assert!(
                r["note"].as_str().unwrap().contains("reference point"),
                "{r}"
            );
        }
    }
    assert!(n_zone_points <= 200);
}

#[test]
fn bad_reference_data_gets_clear_errors() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let run_err = |p: &Path, extra: &[&str]| {
        let o = assess(p, &dir.join("x"), extra);
        assert!(!o.status.success());
        stderr(&o)
    };
    // A point outside the grid (line 6 of the file: header + 4 rows before it).
    let p = write_reference(dir, "outside.csv", |i, r| {
        Some(if i == 4 { "x".into() } else { r[3].clone() })
    });
    let text = std::fs::read_to_string(&p).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut cells: Vec<String> = lines[5].split(',').map(String::from).collect();
    cells[1] = "10.0".into();
    lines[5] = cells.join(",");
    std::fs::write(&p, lines.join("\n")).unwrap();
    let e = run_err(&p, &[]);
    assert!(
        e.contains("line 6") && e.contains("outside the map grid"),
        "{e}"
    );
    // A class not in the scheme.
    let p = write_reference(dir, "savanna.csv", |i, r| {
        Some(if i == 9 {
            "Savanna".into()
        } else {
            r[3].clone()
        })
    });
    let e = run_err(&p, &[]);
    assert!(
        e.contains("line 11") && e.contains("'Savanna'") && e.contains("not in the map's classes"),
        "{e}"
    );
    // A stratum with a single point (keep one water point, drop the others).
    let src = write_reference(dir, "all.csv", |_, r| Some(r[3].clone()));
    let text = std::fs::read_to_string(&src).unwrap();
    let mut seen = 0;
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            if l.split(',').nth(3) == Some("5") {
                seen += 1;
                seen == 1
            } else {
                true
            }
        })
        .collect();
    let p = dir.join("one_water.csv");
    std::fs::write(&p, kept.join("\n")).unwrap();
    let e = run_err(&p, &["--no-zones"]);
    assert!(
        e.contains("Water") && e.contains("single reference point"),
        "{e}"
    );
    // A stratum column that disagrees with the map: the sample does not match the design.
    let p = write_reference(dir, "mismatch.csv", |_, r| Some(r[3].clone()));
    let text = std::fs::read_to_string(&p).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut cells: Vec<String> = lines[3].split(',').map(String::from).collect();
    cells[5] = if cells[5] == "2" {
        "3".into()
    } else {
        "2".into()
    };
    lines[3] = cells.join(",");
    std::fs::write(&p, lines.join("\n")).unwrap();
    let e = run_err(&p, &["--stratum-field", "stratum"]);
    assert!(
        e.contains("line 4") && e.contains("does not match the declared stratified design"),
        "{e}"
    );
    // An empty reference class, a missing field, strata with a non-stratified design.
    let p = write_reference(dir, "empty.csv", |i, r| {
        Some(if i == 0 { String::new() } else { r[3].clone() })
    });
    let e = run_err(&p, &[]);
    assert!(e.contains("line 2") && e.contains("is empty"), "{e}");
    let e = run_err(&p, &["--class-field", "observed"]);
    assert!(e.contains("no column 'observed'"), "{e}");
    let lc = root().join("rasters/sample/landcover.tif");
    let e = run_err(
        &p,
        &[
            "--design",
            "simple-random",
            "--strata",
            lc.to_str().unwrap(),
        ],
    );
    assert!(e.contains("--strata"), "{e}");
}

/// Forest plots at sample points (1 m² footprint: the pixel under the plot), their measured
/// density set to the map's pixel value + 5 t C/ha.
fn write_plots(dir: &Path, name: &str, f: impl Fn(usize, f64) -> String) -> PathBuf {
    let (h, rows) = read_csv(&fixture().2.join("sample_points.csv"));
    let stock = Dataset::open(fixture().1.join("stock_tc_per_ha.tif")).unwrap();
    let gt = stock.geo_transform().unwrap();
    let band = stock.rasterband(1).unwrap();
    let ci = column_index(&h, "map_code");
    let p = dir.join(name);
    let mut w = csv::Writer::from_path(&p).unwrap();
    w.write_record(["lon", "lat", "value", "species"]).unwrap();
    for (i, r) in rows.iter().filter(|r| r[ci] == "2").enumerate() {
        let (x, y): (f64, f64) = (r[1].parse().unwrap(), r[2].parse().unwrap());
        let col = ((x - gt[0]) / gt[1]).floor() as isize;
        let row = ((y - gt[3]) / gt[5]).floor() as isize;
        let v = band
            .read_as::<f64>((col, row), (1, 1), (1, 1), None)
            .unwrap()
            .data()[0];
        let species = if i % 2 == 0 { "spruce" } else { "poplar" };
        w.write_record([r[1].clone(), r[2].clone(), f(i, v), species.into()])
            .unwrap();
    }
    w.flush().unwrap();
    p
}

fn calibrate(plots: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let run = fixture().1.to_str().unwrap().to_string();
    let mut args = vec![
        "calibrate",
        SCENE,
        "--plots",
        plots.to_str().unwrap(),
        "--maps-dir",
        &run,
        "--out",
        out.to_str().unwrap(),
        "--plot-area-m2",
        "1",
        "-q",
    ];
    args.extend_from_slice(extra);
    sinkmap(&args)
}

#[test]
fn calibrate_recovers_a_known_map_bias() {
    let t = tempfile::tempdir().unwrap();
    let plots = write_plots(t.path(), "plots.csv", |_, v| format!("{}", v + 5.0));
    let out = t.path().join("c");
    let o = calibrate(
        &plots,
        &out,
        &[
            "--density-field",
            "value",
            "--type-field",
            "species",
            "--classes",
            "2",
        ],
    );
    assert_ok(&o);
    let j = json(&out.join("calibration.json"));
    let res = &j["residuals"][0];
    assert!((res["bias"].as_f64().unwrap() + 5.0).abs() < 1e-6, "{res}");
    assert!((res["rmse"].as_f64().unwrap() - 5.0).abs() < 1e-6);
    assert!(j["residuals"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["group_by"] == "forest_type"));
    // The map's own total is the run's forest stock; difference and GREG add 5 t C/ha × area
    // with no sampling error (the residuals are constant).
    let summary = json(&fixture().1.join("summary.json"));
    let forest = summary["classes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["class"] == "forest")
        .unwrap();
    let (stock, area) = (
        forest["stock_tc"].as_f64().unwrap(),
        forest["area_ha"].as_f64().unwrap(),
    );
    let total = |e: &str| {
        j["totals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["zone_id"] == "all" && t["estimator"] == e)
            .unwrap()["total_tc"]
            .clone()
    };
    assert!(rel_close(
        total("map")["value"].as_f64().unwrap(),
        stock,
        1e-6
    ));
    for e in ["difference", "greg"] {
        let tt = total(e);
        assert!(
            rel_close(tt["value"].as_f64().unwrap(), stock + 5.0 * area, 1e-6),
            "{e}: {tt}"
        );
        assert!(tt["se"].as_f64().unwrap() < 1e-6 * stock, "{e}: {tt}");
    }
    // Biomass with a carbon fraction of 0.5 gives the same densities.
    let bio = write_plots(t.path(), "bio.csv", |_, v| format!("{}", (v + 5.0) / 0.5));
    let out2 = t.path().join("c2");
    let o = calibrate(
        &bio,
        &out2,
        &[
            "--biomass-field",
            "value",
            "--carbon-fraction",
            "0.5",
            "--classes",
            "2",
        ],
    );
    assert_ok(&o);
    let j2 = json(&out2.join("calibration.json"));
    assert!((j2["residuals"][0]["bias"].as_f64().unwrap() + 5.0).abs() < 1e-6);
}

#[test]
fn bad_plots_get_clear_errors() {
    let t = tempfile::tempdir().unwrap();
    let err = |p: &Path, extra: &[&str]| {
        let o = calibrate(p, &t.path().join("x"), extra);
        assert!(!o.status.success(), "{extra:?} succeeded");
        stderr(&o)
    };
    let neg = write_plots(t.path(), "neg.csv", |i, v| {
        if i == 2 {
            "-3".into()
        } else {
            v.to_string()
        }
    });
    let e = err(&neg, &["--density-field", "value"]);
    assert!(e.contains("line 4") && e.contains("'-3'"), "{e}");
    // The same with Windows line ends names the same line.
    let crlf = t.path().join("neg_crlf.csv");
    std::fs::write(
        &crlf,
        std::fs::read_to_string(&neg).unwrap().replace('\n', "\r\n"),
    )
    .unwrap();
    let e = err(&crlf, &["--density-field", "value"]);
    assert!(e.contains("line 4") && e.contains("'-3'"), "{e}");
    let e = err(&neg, &[]);
    assert!(e.contains("--density-field"), "{e}");
    let good = write_plots(t.path(), "good.csv", |_, v| v.to_string());
    let e = err(
        &good,
        &["--density-field", "value", "--classes", "1,3,4,5,6,7"],
    );
    assert!(e.contains("outside the population"), "{e}");
    let text = std::fs::read_to_string(&good)
        .unwrap()
        .replacen("\n8", "\n-170", 1);
    let far = t.path().join("far.csv");
    std::fs::write(&far, text).unwrap();
    let e = err(&far, &["--density-field", "value"]);
    assert!(
        e.contains("line 2") && e.contains("outside the map grid"),
        "{e}"
    );
}

/// The README's worked example runs on the committed (SYNTHETIC) reference points and plots.
#[test]
fn readme_example_files_run() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("a");
    let o = assess(
        &root().join("vectors/sample_reference.csv"),
        &out,
        &["--stratum-field", "stratum"],
    );
    assert_ok(&o);
    let j = json(&out.join("assessment.json"));
    let all = region(&j, "all");
    assert_eq!(all["sample_size"], 150);
    let n: u64 = all["error_matrix_counts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|x| x.as_u64().unwrap())
        .sum();
    assert_eq!(n, 150);
    // Adjusted areas add up to the mapped total.
    let classes = all["classes"].as_array().unwrap();
    let mapped: f64 = classes
        .iter()
        .map(|c| c["mapped_area_ha"].as_f64().unwrap())
        .sum();
    let adjusted: f64 = classes
        .iter()
        .map(|c| c["adjusted_area_ha"]["value"].as_f64().unwrap())
        .sum();
    assert!(rel_close(mapped, adjusted, 1e-9));
    let out = t.path().join("c");
    let o = calibrate(
        &root().join("vectors/sample_plots.csv"),
        &out,
        &[
            "--biomass-field",
            "agb_t_per_ha",
            "--plot-area-field",
            "plot_area_m2",
            "--type-field",
            "forest_type",
            "--classes",
            "2",
        ],
    );
    assert_ok(&o);
    let j = json(&out.join("calibration.json"));
    assert_eq!(j["plots"].as_array().unwrap().len(), 40);
}

/// Strata that are not the map classes (Stehman 2014): two halves of the map. The adjusted
/// area of each class is Σₕ Wₕ nₕₖ/nₕ × A, computed here independently from the points.
/// A simple random analysis of the same points gives A nₖ/n.
#[test]
fn strata_raster_and_simple_random_designs() {
    let t = tempfile::tempdir().unwrap();
    let lc = Dataset::open(root().join("rasters/sample/landcover.tif")).unwrap();
    let gt = lc.geo_transform().unwrap();
    let (w, h) = lc.raster_size();
    let half = w / 2;
    let data: Vec<u8> = (0..w * h)
        .map(|i| if i % w < half { 1 } else { 2 })
        .collect();
    let strata = t.path().join("halves.tif");
    write_raster(&strata, w, h, gt, Some(4326), None, data);
    let refp = write_reference(t.path(), "ref.csv", |i, r| {
        Some(if i % 6 == 0 && r[3] != "7" {
            "Barren".into()
        } else {
            r[3].clone()
        })
    });
    let out = t.path().join("st");
    let o = assess(
        &refp,
        &out,
        &["--no-zones", "--strata", strata.to_str().unwrap()],
    );
    assert_ok(&o);
    let j = json(&out.join("assessment.json"));
    let all = region(&j, "all");
    // Stratum areas: the map's area in each half, from the per-class areas would need a raster
    // pass; instead use the pixel areas of the grid rows (geographic grid) directly.
    let a = 6_378_137.0f64;
    let b = 6_356_752.314_245f64;
    let e2 = 1.0 - (b / a).powi(2);
    let e = e2.sqrt();
    // Authalic-latitude form of the ellipsoidal band area (per radian of longitude).
    let q = |phi: f64| {
        let s = phi.sin();
        (1.0 - e2)
            * (s / (1.0 - e2 * s * s) + (1.0 / (2.0 * e)) * ((1.0 + e * s) / (1.0 - e * s)).ln())
    };
    let band_ha = |row: usize| {
        let top = (gt[3] + row as f64 * gt[5]).to_radians();
        let bot = (gt[3] + (row + 1) as f64 * gt[5]).to_radians();
        0.5 * a * a * (q(top) - q(bot)).abs() * gt[1].to_radians() / 1e4
    };
    // Mapped (non-nodata) pixels per half and row.
    let band = lc.rasterband(1).unwrap();
    let codes = band.read_as::<u8>((0, 0), (w, h), (w, h), None).unwrap();
    let mut area = [0.0f64; 2];
    for row in 0..h {
        let ba = band_ha(row);
        for col in 0..w {
            if codes.data()[row * w + col] != 0 {
                area[usize::from(col >= half)] += ba;
            }
        }
    }
    let total = area[0] + area[1];
    let (hd, rows) = read_csv(&refp);
    let ri = column_index(&hd, "reference");
    let mut n = [0.0f64; 2];
    let mut barren = [0.0f64; 2];
    for r in &rows {
        let x: f64 = r[1].parse().unwrap();
        let s = usize::from(((x - gt[0]) / gt[1]).floor() as usize >= half);
        n[s] += 1.0;
        if r[ri] == "Barren" || r[ri] == "7" {
            barren[s] += 1.0;
        }
    }
    let want = area[0] * barren[0] / n[0] + area[1] * barren[1] / n[1];
    let got = class(all, 7)["adjusted_area_ha"]["value"].as_f64().unwrap();
    assert!(rel_close(got, want, 1e-6), "{got} vs {want}");
    assert!(rel_close(
        all["total_area_ha"].as_f64().unwrap(),
        total,
        1e-6
    ));
    assert_eq!(j["strata"], strata.to_str().unwrap());
    // Simple random analysis: A × n_k / n.
    let out = t.path().join("srs");
    let o = assess(&refp, &out, &["--no-zones", "--design", "systematic"]);
    assert_ok(&o);
    let j = json(&out.join("assessment.json"));
    let got = class(region(&j, "all"), 7)["adjusted_area_ha"]["value"]
        .as_f64()
        .unwrap();
    let nb = barren[0] + barren[1];
    assert!(rel_close(got, total * nb / (n[0] + n[1]), 1e-6));
    assert!(j["notes"].to_string().contains("systematic"));
}

/// An assessment saved beside a run's outputs adds an accuracy section to report.html.
#[test]
fn report_gains_an_accuracy_section() {
    let run = &fixture().1;
    let o = assess(
        &root().join("vectors/sample_reference.csv"),
        &run.join("assessment"),
        &["--no-zones"],
    );
    assert_ok(&o);
    sinkmap_ok(&["report", run.to_str().unwrap()]);
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    let j = json(&run.join("assessment").join("assessment.json"));
    let overall = region(&j, "all")["overall_accuracy"]["value"]
        .as_f64()
        .unwrap();
    assert!(html.contains(&format!("id=\"overall_accuracy\" data-value=\"{overall}\"")));
    assert!(html.contains("id=\"error_matrix\"") && html.contains("id=\"accuracy_carbon\""));
    let at = html.find("Map accuracy").unwrap();
    assert!(at < html.find("Assumptions and sources").unwrap());
    // The run's own accounting drew the model parameters only, and the section says so.
    assert!(
        html.contains("id=\"map_error_in_accounting\" data-included=\"false\""),
        "the section should say the bands leave the map error out"
    );
}

// Map error in the accounting (docs/science.md §6.8): a perfect reference sample changes
// nothing, a planted confusion moves the central estimate to the adjusted areas and widens the
// bands, and assessments of another grid, land-cover version or map are refused.

fn balance(run: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let cube = run.join("cube.csv");
    let mut args = vec![
        "balance",
        SCENE,
        "--cube",
        cube.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--draws",
        "150",
        "-q",
    ];
    args.extend_from_slice(extra);
    sinkmap(&args)
}

/// The sample's points with the reference class set by `f(index, map code)`, assessed
/// (without zones) into `dir/a`.
fn assess_with(dir: &Path, f: impl Fn(usize, &str) -> String) -> PathBuf {
    let refp = write_reference(dir, "reference.csv", |i, r| Some(f(i, &r[3])));
    let out = dir.join("a");
    let o = assess(&refp, &out, &["--no-zones"]);
    assert_ok(&o);
    out
}

/// The balance of the fixture's run without map error (shared).
fn plain_balance() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let plain = fixture().0.path().join("plain");
        let o = balance(&fixture().1, &plain, &[]);
        assert_ok(&o);
        plain
    })
}

/// The CSV without the columns that name the sources (method, uncertainty_sources).
fn without_sources(path: &Path) -> Vec<Vec<String>> {
    let (h, rows) = read_csv(path);
    let keep: Vec<usize> = (0..h.len())
        .filter(|&i| h[i] != "method" && h[i] != "uncertainty_sources")
        .collect();
    std::iter::once(keep.iter().map(|&i| h[i].clone()).collect())
        .chain(
            rows.iter()
                .map(|r| keep.iter().map(|&i| r[i].clone()).collect()),
        )
        .collect()
}

#[test]
fn a_zero_se_assessment_reproduces_the_accounting_exactly() {
    let (run, plain) = (&fixture().1, plain_balance());
    let t = tempfile::tempdir().unwrap();
    let a = assess_with(t.path(), |_, code| code.to_string());
    let j = json(&a.join("assessment.json"));
    let eco = &j["ecosystem_areas"];
    assert!(eco["se_ha"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x.as_f64() == Some(0.0)));
    let out = t.path().join("with");
    let o = balance(run, &out, &["--assessment", a.to_str().unwrap()]);
    assert_ok(&o);
    // Every number, band and map column is the same; trajectory.csv is identical.
    assert_eq!(
        without_sources(&out.join("sink_inputs.csv")),
        without_sources(&plain.join("sink_inputs.csv"))
    );
    assert_eq!(
        std::fs::read(out.join("trajectory.csv")).unwrap(),
        std::fs::read(plain.join("trajectory.csv")).unwrap()
    );
    // The tables say what the bands include, and the manifest fingerprints the assessment.
    let (h, rows) = read_csv(&out.join("sink_inputs.csv"));
    let src = column_index(&h, "uncertainty_sources");
    assert!(rows
        .iter()
        .all(|r| r[src].starts_with("model parameters (")
            && r[src].contains("; map area (assessment ")));
    let (_, plain_rows) = read_csv(&plain.join("sink_inputs.csv"));
    assert!(!plain_rows[0][src].contains("map area"));
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(manifest.contains("assessment.json"), "{manifest}");
}

#[test]
fn a_planted_confusion_moves_the_centre_and_widens_the_bands() {
    let (run, plain) = (&fixture().1, plain_balance());
    let t = tempfile::tempdir().unwrap();
    // Every third point mapped as barren (7) is grassland (4) on the ground.
    let a = assess_with(t.path(), |i, code| {
        if code == "7" && i % 3 == 0 {
            "4".into()
        } else {
            code.into()
        }
    });
    let j = json(&a.join("assessment.json"));
    let eco = &j["ecosystem_areas"];
    let k = eco["classes"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c == "barren")
        .unwrap();
    let mapped = eco["mapped_area_ha"][k].as_f64().unwrap();
    let adjusted = eco["adjusted_area_ha"][k].as_f64().unwrap();
    let se = eco["se_ha"][k].as_f64().unwrap();
    assert!(adjusted < mapped && se > 0.0, "{eco}");
    let out = t.path().join("with");
    let o = balance(run, &out, &["--assessment", a.to_str().unwrap()]);
    assert_ok(&o);
    let (h, rows) = read_csv(&out.join("sink_inputs.csv"));
    let (_, prow) = read_csv(&plain.join("sink_inputs.csv"));
    let c = |n: &str| column_index(&h, n);
    let num = |r: &Vec<String>, n: &str| r[c(n)].parse::<f64>().unwrap();
    let pick = |rs: &[Vec<String>], comp: &str| -> Vec<String> {
        rs.iter()
            .find(|r| {
                r[c("level")] == "region" && r[c("year")] == "2020" && r[c("component")] == comp
            })
            .unwrap()
            .clone()
    };
    // Desert crust fixation is linear in the barren area: its central value is the map's
    // times Â/A, its map column is the map run's value, and its band is wider.
    let (w, p) = (pick(&rows, "desert:crust"), pick(&prow, "desert:crust"));
    let ratio = num(&w, "net_removal_tco2_yr") / num(&w, "net_removal_tco2_yr_map");
    assert!(
        (ratio - adjusted / mapped).abs() < 1e-5,
        "{ratio} vs {}",
        adjusted / mapped
    );
    assert_eq!(w[c("net_removal_tco2_yr_map")], p[c("net_removal_tco2_yr")]);
    // Relative to its centre the band is wider: the area's CV adds to the parameters' (the
    // absolute width also scales with the smaller adjusted area).
    let rel = |r: &Vec<String>| {
        (num(r, "net_removal_tco2_yr_p95") - num(r, "net_removal_tco2_yr_p05"))
            / num(r, "net_removal_tco2_yr")
    };
    eprintln!(
        "desert:crust 2020: Â/A = {:.4} (SE {se:.0} ha); relative 5–95 % width {:.4} with map error, {:.4} without",
        adjusted / mapped,
        rel(&w),
        rel(&p)
    );
    assert!(rel(&w) > rel(&p), "{} vs {}", rel(&w), rel(&p));
    // The headline has both values.
    let acc = json(&out.join("accounting.json"));
    assert!(
        acc["region_net_flux_base_year_tco2"]["nominal"]
            != acc["region_net_flux_base_year_tco2_map"]
    );
    assert_eq!(acc["uncertainty_sources"].as_array().unwrap().len(), 2);
    // The report's accuracy section says that the bands include the map error.
    std::fs::create_dir_all(out.join("assessment")).unwrap();
    std::fs::copy(
        a.join("assessment.json"),
        out.join("assessment/assessment.json"),
    )
    .unwrap();
    let html = sinkmap::assess::report::section(&out).unwrap();
    assert!(
        html.contains("id=\"map_error_in_accounting\" data-included=\"true\""),
        "{html}"
    );
}

#[test]
fn assessments_of_another_map_are_refused() {
    let run = &fixture().1;
    let t = tempfile::tempdir().unwrap();
    let a = assess_with(t.path(), |_, code| code.to_string());
    // Another grid: a synthetic scene of another size.
    let other = synth_scene(&t.path().join("synth"), 40, 30, 5);
    sinkmap_ok(&["run", other.to_str().unwrap(), "-q", "--no-report"]);
    let o = sinkmap(&[
        "balance",
        other.to_str().unwrap(),
        "--draws",
        "10",
        "--allow-subregion-balance",
        "--assessment",
        a.to_str().unwrap(),
        "-q",
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(4), "{e}");
    assert!(
        e.contains("assessment.json") && e.contains("another grid"),
        "{e}"
    );
    // A stale assessment: the same scene with one land-cover pixel changed.
    let copy = t.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    let src = root().join("rasters/sample");
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, copy.join(f.file_name().unwrap())).unwrap();
    }
    let text = std::fs::read_to_string(src.join("scene.toml")).unwrap();
    let abs = |rel: &str| root().join(rel).display().to_string().replace('\\', "/");
    let text = text
        .replace("\"../../models\"", &format!("\"{}\"", abs("models")))
        .replace("\"../../out/sample\"", "\"out\"")
        .replace(
            "\"../../vectors/sample_zones.geojson\"",
            &format!("\"{}\"", abs("vectors/sample_zones.geojson")),
        );
    std::fs::write(copy.join("scene.toml"), text).unwrap();
    {
        // One pixel of the land cover changed (a new version of the map).
        let src_lc = src.join("landcover.tif");
        let ds = gdal::Dataset::open(&src_lc).unwrap();
        let (w, h) = ds.raster_size();
        let driver = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
        let dst = copy.join("landcover.tif");
        std::fs::remove_file(&dst).unwrap();
        let out = ds
            .create_copy(&driver, &dst, &gdal::raster::RasterCreationOptions::new())
            .unwrap();
        let v = ds
            .rasterband(1)
            .unwrap()
            .read_as::<i32>((0, 0), (w, h), (w, h), None)
            .unwrap();
        let mut data = v.data().to_vec();
        let i = data.iter().position(|x| *x == 7).unwrap();
        data[i] = 4;
        let mut b = gdal::raster::Buffer::new((w, h), data);
        out.rasterband(1)
            .unwrap()
            .write((0, 0), (w, h), &mut b)
            .unwrap();
    }
    let scene = copy.join("scene.toml");
    let o = sinkmap(&[
        "balance",
        scene.to_str().unwrap(),
        "--cube",
        run.join("cube.csv").to_str().unwrap(),
        "--out",
        t.path().join("stale").to_str().unwrap(),
        "--draws",
        "10",
        "--assessment",
        a.to_str().unwrap(),
        "-q",
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(4), "{e}");
    assert!(
        e.contains("stale") && e.contains("rerun `sinkmap assess`"),
        "{e}"
    );
    // An assessment of another categorical map (--map) gives no class areas.
    let m = t.path().join("m");
    sinkmap_ok(&[
        "assess",
        SCENE,
        "--reference",
        t.path().join("reference.csv").to_str().unwrap(),
        "--map",
        root()
            .join("rasters/sample/landcover.tif")
            .to_str()
            .unwrap(),
        "--no-zones",
        "--out",
        m.to_str().unwrap(),
        "-q",
    ]);
    let o = balance(
        run,
        &t.path().join("m_out"),
        &["--assessment", m.to_str().unwrap()],
    );
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(4), "{e}");
    assert!(e.contains("not of the scene's land-cover map"), "{e}");
}

/// Every number of an assessment is the same in every process: totals over the map's classes
/// are summed in code order, not in the order of a hash map (whose seed changes from one
/// process to the next and once moved `map_stock_tc` by its last bit).
#[test]
fn an_assessment_is_the_same_to_the_bit_in_every_process() {
    let t = tempfile::tempdir().unwrap();
    // Every 4th barren (7) point is grassland in the reference: a confusion to estimate.
    let refp = write_reference(t.path(), "ref.csv", |i, r| {
        Some(if r[3] == "7" && i % 4 == 0 {
            "Grassland".into()
        } else {
            r[3].clone()
        })
    });
    let regions: Vec<serde_json::Value> = (0..5)
        .map(|k| {
            let out = t.path().join(format!("a{k}"));
            assert_ok(&assess(&refp, &out, &["--stratum-field", "stratum"]));
            json(&out.join("assessment.json"))["regions"].clone()
        })
        .collect();
    for (k, r) in regions.iter().enumerate().skip(1) {
        // serde_json prints an f64 with its shortest exact digits: equal text, equal bits.
        assert_eq!(r.to_string(), regions[0].to_string(), "run {k}");
    }
    assert!(regions[0].to_string().contains("map_stock_tc"));
}
