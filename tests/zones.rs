//! Zonal accounting: exact coverage fractions, sums over zones, the real prefecture layer,
//! the cohort cube, and clear errors on bad layers.

#![cfg(feature = "gdal")]

mod common;

use std::path::Path;

use common::*;

const UTM45: u32 = 32645;
const X0: f64 = 500_000.0;
const Y0: f64 = 4_900_000.0;
const GT30: [f64; 6] = [X0, 30.0, 0.0, Y0, 0.0, -30.0];

/// WKT of a polygon given in pixel coordinates of GT30 (col, row).
fn px_ring(pts: &[(f64, f64)]) -> String {
    let mut s: Vec<String> = pts
        .iter()
        .map(|(c, r)| format!("{} {}", X0 + 30.0 * c, Y0 - 30.0 * r))
        .collect();
    s.push(s[0].clone());
    format!("({})", s.join(", "))
}

fn shoelace_px(pts: &[(f64, f64)]) -> f64 {
    let n = pts.len();
    (0..n)
        .map(|i| pts[i].0 * pts[(i + 1) % n].1 - pts[(i + 1) % n].0 * pts[i].1)
        .sum::<f64>()
        .abs()
        / 2.0
}

fn grass_scene(dir: &Path, w: usize, h: usize, gt: [f64; 6], epsg: u32) -> std::path::PathBuf {
    copy_models(dir);
    write_raster(
        &dir.join("lc.tif"),
        w,
        h,
        gt,
        Some(epsg),
        Some(0.0),
        vec![4u8; w * h],
    );
    let p = dir.join("scene.toml");
    std::fs::write(&p, "name='grass'\nbase_year=2020\nmodels_dir='models'\noutput_dir='out'\n[landcover]\npath='lc.tif'\nscheme='clcd'\n").unwrap();
    p
}

#[test]
fn coverage_of_analytic_shapes_through_the_whole_pipeline() {
    let tmp = tempfile::tempdir().unwrap();
    let scene = grass_scene(tmp.path(), 40, 40, GT30, UTM45);
    let half = vec![(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)];
    let tri = vec![(2.0, 0.0), (4.0, 0.0), (2.0, 2.0)];
    let outer = vec![(5.0, 0.0), (8.0, 0.0), (8.0, 3.0), (5.0, 3.0)];
    let hole = vec![(6.0, 1.0), (7.0, 1.0), (7.0, 2.0), (6.0, 2.0)];
    let m1 = vec![(10.25, 1.25), (10.75, 1.25), (10.75, 1.75), (10.25, 1.75)];
    let m2 = vec![(12.1, 0.3), (13.9, 0.3), (13.9, 0.8), (12.1, 0.8)];
    // Crosses several 16-pixel block edges, with slanted sides.
    let cross = vec![(9.3, 12.7), (33.6, 14.1), (30.2, 35.9), (14.4, 31.35)];
    let tiny = vec![(20.3, 5.4), (20.5, 5.4), (20.5, 5.5), (20.3, 5.5)];
    let feats = vec![
        (
            "half",
            "half a pixel",
            format!("POLYGON ({})", px_ring(&half)),
        ),
        ("tri", "triangle", format!("POLYGON ({})", px_ring(&tri))),
        (
            "hole",
            "square with a hole",
            format!("POLYGON ({}, {})", px_ring(&outer), px_ring(&hole)),
        ),
        (
            "multi",
            "multipolygon",
            format!("MULTIPOLYGON (({}), ({}))", px_ring(&m1), px_ring(&m2)),
        ),
        (
            "cross",
            "crosses block edges",
            format!("POLYGON ({})", px_ring(&cross)),
        ),
        (
            "tiny",
            "smaller than a pixel",
            format!("POLYGON ({})", px_ring(&tiny)),
        ),
    ];
    write_layer(&tmp.path().join("shapes.gpkg"), "GPKG", Some(UTM45), &feats);
    let expected_px = [
        ("half", 0.5),
        ("tri", 2.0),
        ("hole", 8.0),
        ("multi", shoelace_px(&m1) + shoelace_px(&m2)),
        ("cross", shoelace_px(&cross)),
        ("tiny", 0.02),
    ];
    for block in ["16", "32", "512"] {
        let out = tmp.path().join(format!("out{block}"));
        let o = sinkmap(&[
            "zonal",
            scene.to_str().unwrap(),
            "--zones",
            tmp.path().join("shapes.gpkg").to_str().unwrap(),
            "--name",
            "name",
            "--block-size",
            block,
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let (h, rows) = read_csv(&out.join("zones.csv"));
        let area = column(&h, &rows, "area_ha");
        for (id, px) in expected_px {
            let got = area.iter().find(|(z, _)| z == id).unwrap().1;
            let want = px * 0.09;
            assert!(
                rel_close(got, want, 1e-9),
                "block {block}, {id}: {got} ha vs {want} ha"
            );
        }
        // Zones + outside = the grid.
        let total: f64 = area.iter().map(|(_, a)| a).sum();
        assert!(rel_close(total, 1600.0 * 0.09, 1e-12), "{total}");
    }
}

#[test]
fn zones_tiling_the_grid_sum_to_the_grid_total() {
    let tmp = tempfile::tempdir().unwrap();
    let scene = synth_scene(tmp.path(), 240, 150, 11);
    let o = sinkmap(&[
        "run",
        scene.to_str().unwrap(),
        "--quiet",
        "--block-size",
        "32",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = json(&tmp.path().join("out/summary.json"));
    let zones = s["zones"].as_array().unwrap();
    assert_eq!(zones.len(), 8); // 7 synthetic zones + outside
    for q in [
        "area_ha",
        "stock_tc",
        "sink_tco2_yr",
        "forest_sink_tco2_yr",
        "desert_sink_tco2_yr",
    ] {
        let sum: f64 = zones.iter().map(|z| z[q].as_f64().unwrap()).sum();
        let total = s["totals"][q].as_f64().unwrap();
        assert!(rel_close(sum, total, 1e-9), "{q}: {sum} vs {total}");
    }
    // The synthetic zones cover the whole grid: nothing is outside.
    let outside = zones
        .iter()
        .find(|z| z["zone_id"] == "__outside__")
        .unwrap();
    assert!(
        outside["area_ha"].as_f64().unwrap() <= 1e-9 * s["totals"]["area_ha"].as_f64().unwrap()
    );
    // zones.csv agrees with summary.json, zones.geojson opens and carries the same numbers.
    let (h, rows) = read_csv(&tmp.path().join("out/zones.csv"));
    let csv_stock = column(&h, &rows, "stock_tc");
    for z in zones {
        let id = z["zone_id"].as_str().unwrap();
        let c = csv_stock.iter().find(|(k, _)| k == id).unwrap().1;
        assert!(rel_close(c, z["stock_tc"].as_f64().unwrap(), 1e-12));
    }
    // RFC 7946: longitude first. The synthetic grid spans 84–86.4°E, 44.5–46°N.
    let gj = json(&tmp.path().join("out/zones.geojson"));
    let first = &gj["features"][0]["geometry"]["coordinates"][0][0];
    let (lon, lat) = (first[0].as_f64().unwrap(), first[1].as_f64().unwrap());
    assert!(
        (83.0..88.0).contains(&lon) && (44.0..47.0).contains(&lat),
        "{lon}, {lat}"
    );
    use gdal::vector::LayerAccess;
    let ds = gdal::Dataset::open(tmp.path().join("out/zones.geojson")).unwrap();
    let mut layer = ds.layer(0).unwrap();
    assert_eq!(layer.feature_count(), 7);
    for f in layer.features() {
        let id = f
            .field_as_string(f.field_index("zone_id").unwrap())
            .unwrap()
            .unwrap();
        let stock = f
            .field_as_double(f.field_index("stock_tc").unwrap())
            .unwrap()
            .unwrap();
        let c = csv_stock.iter().find(|(k, _)| *k == id).unwrap().1;
        assert!(rel_close(stock, c, 1e-12), "{id}");
    }
}

#[test]
fn zone_order_changes_no_number() {
    let tmp = tempfile::tempdir().unwrap();
    let scene = synth_scene(tmp.path(), 200, 120, 5);
    let zones_path = tmp.path().join("scene/zones.geojson");
    // The same features in reverse order, in another format.
    let text: serde_json::Value = json(&zones_path);
    let mut feats: Vec<(String, String, String)> = Vec::new();
    {
        use gdal::vector::LayerAccess;
        let ds = gdal::Dataset::open(&zones_path).unwrap();
        let mut l = ds.layer(0).unwrap();
        for f in l.features() {
            feats.push((
                f.field_as_string(f.field_index("zone_id").unwrap())
                    .unwrap()
                    .unwrap(),
                f.field_as_string(f.field_index("name").unwrap())
                    .unwrap()
                    .unwrap(),
                f.geometry().unwrap().wkt().unwrap(),
            ));
        }
    }
    assert_eq!(feats.len(), text["features"].as_array().unwrap().len());
    feats.reverse();
    let refs: Vec<(&str, &str, String)> = feats
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.clone()))
        .collect();
    write_layer(&tmp.path().join("rev.fgb"), "FlatGeobuf", Some(4326), &refs);
    let run = |zones: &Path, id: &str, name: &str, out: &str| {
        let o = sinkmap(&[
            "zonal",
            scene.to_str().unwrap(),
            "--zones",
            zones.to_str().unwrap(),
            "--id",
            id,
            "--name",
            name,
            "--out",
            tmp.path().join(out).to_str().unwrap(),
            "--quiet",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let (h, mut rows) = read_csv(&tmp.path().join(out).join("zones.csv"));
        rows.sort();
        (h, rows)
    };
    let a = run(&zones_path, "zone_id", "name", "a");
    let b = run(&tmp.path().join("rev.fgb"), "id", "name", "b");
    assert_eq!(a, b, "zone order must not change any number");
}

#[test]
fn cubes_of_disjoint_tiles_add_up_to_the_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let scene = synth_scene(tmp.path(), 180, 130, 3);
    let run = |extra: &[&str], out: &str| {
        let mut args = vec!["run", scene.to_str().unwrap(), "--quiet", "--out"];
        let o = tmp.path().join(out);
        let o_s = o.to_str().unwrap().to_string();
        args.push(&o_s);
        args.extend_from_slice(extra);
        let r = sinkmap(&args);
        assert!(r.status.success(), "{}", stderr(&r));
        sinkmap::cube::Cube::read_csv(&o.join("cube.csv")).unwrap()
    };
    let whole = run(&[], "whole");
    let mut merged = run(&["--tile", "1/3"], "t1");
    merged.merge(&run(&["--tile", "2/3"], "t2"));
    merged.merge(&run(&["--tile", "3/3"], "t3"));
    assert_eq!(whole.cells.len(), merged.cells.len());
    for (k, v) in &whole.cells {
        let m = merged
            .cells
            .get(k)
            .unwrap_or_else(|| panic!("missing {k:?}"));
        for ((q, a), (_, b)) in v.named().into_iter().zip(m.named()) {
            assert!(
                (a - b).abs() <= 1e-12 * a.abs().max(1.0),
                "{k:?}[{q}]: {a} vs {b}"
            );
        }
    }
    // Read back → write → read gives the same cube.
    let p = tmp.path().join("again.csv");
    whole.write_csv(&p).unwrap();
    assert_eq!(sinkmap::cube::Cube::read_csv(&p).unwrap(), whole);
    // Totals from the cube equal the summary's.
    let s = json(&tmp.path().join("whole/summary.json"));
    let t = whole.totals(sinkmap::cube::GRID_ZONE, None);
    assert!(rel_close(
        t.stock_tc,
        s["totals"]["stock_tc"].as_f64().unwrap(),
        1e-12
    ));
}

/// The real prefecture layer, when present beside the project.
#[test]
fn real_prefectures_zone_areas_match_their_ellipsoidal_areas() {
    let layer = root().join("../shared/data/xinjiang_prefectures.geojson");
    if !layer.exists() {
        // Written to the raw stderr handle, which the test harness does not capture.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "SKIPPED real_prefectures_zone_areas_match_their_ellipsoidal_areas: {} not present",
            layer.display()
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // A lon/lat grid over the layer's extent (73.501–96.385 E, 34.334–49.183 N) at 0.02°:
    // pixels of ~1.5–1.8 km × 2.2 km, far smaller than the smallest zone.
    let px = 0.02;
    let (lon0, lat1) = (73.4, 49.3);
    let (w, h) = (((96.5 - lon0) / px) as usize, ((lat1 - 34.2) / px) as usize);
    let scene = grass_scene(tmp.path(), w, h, [lon0, px, 0.0, lat1, 0.0, -px], 4326);
    let o = sinkmap(&[
        "zonal",
        scene.to_str().unwrap(),
        "--zones",
        layer.to_str().unwrap(),
        "--id",
        "adcode",
        "--name",
        "name_pinyin",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (hd, rows) = read_csv(&tmp.path().join("out/zones.csv"));
    let area = column(&hd, &rows, "area_ha");
    assert_eq!(area.len(), 27, "26 zones + outside");
    // Independent: geodesic polygon areas of the GeoJSON (GeographicLib through geo).
    let gj = json(&layer);
    let mut worst = 0.0f64;
    for f in gj["features"].as_array().unwrap() {
        let id = f["properties"]["adcode"].as_str().unwrap();
        let polys: Vec<&serde_json::Value> = match f["geometry"]["type"].as_str().unwrap() {
            "Polygon" => vec![&f["geometry"]["coordinates"]],
            "MultiPolygon" => f["geometry"]["coordinates"]
                .as_array()
                .unwrap()
                .iter()
                .collect(),
            t => panic!("{t}"),
        };
        let mut m2 = 0.0;
        for p in polys {
            let rings: Vec<geo::LineString> = p
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    r.as_array()
                        .unwrap()
                        .iter()
                        .map(|c| (c[0].as_f64().unwrap(), c[1].as_f64().unwrap()))
                        .collect::<Vec<_>>()
                        .into()
                })
                .collect();
            // Exterior counter-clockwise, holes clockwise (else GeographicLib measures the
            // rest of the globe).
            use geo::orient::{Direction, Orient};
            let poly =
                geo::Polygon::new(rings[0].clone(), rings[1..].to_vec()).orient(Direction::Default);
            use geo::GeodesicArea;
            m2 += poly.geodesic_area_unsigned();
        }
        let want_ha = m2 / 1e4;
        let got = area.iter().find(|(z, _)| z == id).unwrap().1;
        let rel = (got - want_ha).abs() / want_ha;
        worst = worst.max(rel);
        assert!(
            rel < 0.005,
            "{id}: {got} ha vs {want_ha} ha ({:.3}%)",
            rel * 100.0
        );
    }
    eprintln!(
        "worst relative zone-area difference at 0.02°: {:.4}%",
        worst * 100.0
    );
    // Zones + outside = the grid; nothing overlaps.
    let total: f64 = area.iter().map(|(_, a)| a).sum();
    let s = json(&tmp.path().join("out/summary.json"));
    assert!(rel_close(
        total,
        s["totals"]["area_ha"].as_f64().unwrap(),
        1e-9
    ));
}

fn assert_zonal_fails(dir: &Path, scene: &Path, zones: &Path, extra: &[&str], needle: &str) {
    let out = dir.join("zout");
    let mut args = vec![
        "zonal",
        scene.to_str().unwrap(),
        "--zones",
        zones.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let o = sinkmap(&args);
    let err = stderr(&o);
    assert_handled_failure(&o);
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line: {err}"));
    assert!(
        line.contains(zones.file_name().unwrap().to_str().unwrap()),
        "{line}"
    );
    assert!(line.contains(needle), "'{needle}' not in: {line}");
    assert!(
        list(&out).is_empty(),
        "no output expected: {:?}",
        list(&out)
    );
}

#[test]
fn bad_zone_layers_give_clear_errors_and_no_output() {
    let tmp = tempfile::tempdir().unwrap();
    let scene = grass_scene(tmp.path(), 10, 10, GT30, UTM45);
    let sq = |c: f64, r: f64| {
        format!(
            "POLYGON ({})",
            px_ring(&[(c, r), (c + 2.0, r), (c + 2.0, r + 2.0), (c, r + 2.0)])
        )
    };
    let d = tmp.path();
    write_layer(&d.join("empty.gpkg"), "GPKG", Some(UTM45), &[]);
    assert_zonal_fails(d, &scene, &d.join("empty.gpkg"), &[], "has no polygons");
    write_layer(
        &d.join("ok.gpkg"),
        "GPKG",
        Some(UTM45),
        &[("a", "A", sq(1.0, 1.0))],
    );
    assert_zonal_fails(
        d,
        &scene,
        &d.join("ok.gpkg"),
        &["--id", "code"],
        "has no field 'code'",
    );
    write_layer(
        &d.join("nocrs.shp"),
        "ESRI Shapefile",
        None,
        &[("a", "A", sq(1.0, 1.0))],
    );
    assert_zonal_fails(d, &scene, &d.join("nocrs.shp"), &[], "has no CRS");
    write_layer(
        &d.join("far.gpkg"),
        "GPKG",
        Some(UTM45),
        &[("a", "A", sq(500.0, 500.0))],
    );
    assert_zonal_fails(d, &scene, &d.join("far.gpkg"), &[], "no zone overlaps");
    let bow = format!(
        "POLYGON ({})",
        px_ring(&[(1.0, 1.0), (3.0, 3.0), (3.0, 1.0), (1.0, 3.0)])
    );
    write_layer(&d.join("bow.gpkg"), "GPKG", Some(UTM45), &[("b", "B", bow)]);
    assert_zonal_fails(d, &scene, &d.join("bow.gpkg"), &[], "invalid geometry");
    write_layer(
        &d.join("dup.gpkg"),
        "GPKG",
        Some(UTM45),
        &[("a", "A", sq(1.0, 1.0)), ("a", "A2", sq(4.0, 4.0))],
    );
    assert_zonal_fails(d, &scene, &d.join("dup.gpkg"), &[], "not unique");
    write_layer(
        &d.join("line.gpkg"),
        "GPKG",
        Some(UTM45),
        &[(
            "l",
            "L",
            format!("LINESTRING ({} {}, {} {})", X0, Y0, X0 + 60.0, Y0 - 60.0),
        )],
    );
    assert_zonal_fails(d, &scene, &d.join("line.gpkg"), &[], "not a polygon");
    // Asking for repair turns the bow-tie into a valid multipolygon (two triangles of 1 px each).
    let o = sinkmap(&[
        "zonal",
        scene.to_str().unwrap(),
        "--zones",
        d.join("bow.gpkg").to_str().unwrap(),
        "--repair-invalid",
        "--out",
        d.join("rep").to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("repaired"));
    let (h, rows) = read_csv(&d.join("rep/zones.csv"));
    assert!(rel_close(
        column(&h, &rows, "area_ha")[0].1,
        2.0 * 0.09,
        1e-9
    ));
}
