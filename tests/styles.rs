//! QGIS styles beside the outputs: each .qml is parsed as XML and its breaks and colours are
//! checked against the report's ramps and an independent computation of the report's range.

#![cfg(feature = "gdal")]

mod common;

use std::path::Path;

use common::*;
use sinkmap::report::render::{CATEGORIES, DIVERGING, GREENS, ORANGES};

fn parse(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Parses a .qml (QGIS writes a DOCTYPE line: allowed).
fn xml(text: &str) -> roxmltree::Document<'_> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(text, opts).expect("well-formed XML")
}

fn hex(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// The report's colour range of a small map, computed here from all its pixels: the 2nd and
/// 98th percentiles (nearest rank), the lower one replaced by 0 when not negative.
fn expected_range(map: &Path) -> (f64, f64) {
    let (mut v, _, _) = read_raster(map);
    v.retain(|x| !x.is_nan());
    v.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    let lo = if q(0.02) >= 0.0 { 0.0 } else { q(0.02) };
    let hi = if q(0.98) > lo { q(0.98) } else { lo + 1.0 };
    (lo, hi)
}

/// (value, colour, label) of every item of a stretched raster style.
fn ramp_of(qml: &str) -> Vec<(f64, String, String)> {
    let doc = xml(qml);
    let r = doc
        .descendants()
        .find(|n| n.has_tag_name("rasterrenderer"))
        .expect("a raster renderer");
    assert_eq!(r.attribute("type"), Some("singlebandpseudocolor"));
    assert_eq!(r.attribute("nodataColor"), Some(""), "nodata transparent");
    let shader = doc
        .descendants()
        .find(|n| n.has_tag_name("colorrampshader"))
        .unwrap();
    assert_eq!(shader.attribute("colorRampType"), Some("INTERPOLATED"));
    shader
        .children()
        .filter(|n| n.has_tag_name("item"))
        .map(|n| {
            (
                n.attribute("value").unwrap().parse().unwrap(),
                n.attribute("color").unwrap().to_string(),
                n.attribute("label").unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn every_output_has_a_style_with_the_reports_breaks_and_colours() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = sinkmap(&[
        "zonal",
        "rasters/sample/scene.toml",
        "--zones",
        "vectors/sample_zones.geojson",
        "--id",
        "zone_id",
        "--name",
        "name",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    for (map, ramp, unit) in [
        ("stock_tc_per_ha", GREENS, "t C/ha"),
        ("sink_tco2_per_ha_yr", GREENS, "t CO₂/ha/yr"),
        ("potential_tco2_per_ha_yr", ORANGES, "t CO₂/ha/yr"),
    ] {
        let (lo, hi) = expected_range(&out.join(format!("{map}.tif")));
        assert!(hi > lo, "{map}: a real range");
        let items = ramp_of(&parse(&out.join(format!("{map}.qml"))));
        assert_eq!(items.len(), ramp.0.len(), "{map}");
        for ((v, colour, label), (t, c)) in items.iter().zip(ramp.0) {
            let want = lo + t * (hi - lo);
            assert!(
                (v - want).abs() <= 1e-9 * hi.abs().max(1.0),
                "{map}: break {v} vs {want}"
            );
            assert_eq!(*colour, hex(*c), "{map}");
            assert!(label.ends_with(unit), "{map}: label {label:?} has the unit");
        }
    }

    // The class map: its legend's classes, names and the report's palette.
    let doc_text = parse(&out.join("best_intervention.qml"));
    let doc = xml(&doc_text);
    let r = doc
        .descendants()
        .find(|n| n.has_tag_name("rasterrenderer"))
        .unwrap();
    assert_eq!(r.attribute("type"), Some("paletted"));
    let entries: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("paletteEntry"))
        .collect();
    let legend = {
        use gdal::Metadata;
        let ds = gdal::Dataset::open(out.join("best_intervention.tif")).unwrap();
        ds.metadata_item("SINKMAP_LEGEND", "").unwrap()
    };
    let classes: Vec<(&str, &str)> = legend
        .split(';')
        .map(|kv| kv.split_once('=').unwrap())
        .collect();
    assert_eq!(entries.len(), classes.len());
    assert!(classes.len() >= 2, "{legend}");
    for (i, (e, (code, name))) in entries.iter().zip(&classes).enumerate() {
        assert_eq!(e.attribute("value"), Some(*code));
        assert_eq!(e.attribute("label"), Some(*name));
        assert_eq!(e.attribute("color"), Some(hex(CATEGORIES[i]).as_str()));
    }

    // Zones: five equal classes of the mean sink per ha from min(0, lowest) to the highest,
    // coloured with the ramp at each class middle, labelled with the zone names.
    let (h, rows) = read_csv(&out.join("zones.csv"));
    let per_ha: Vec<f64> = column(&h, &rows, "mean_sink_tco2_per_ha_yr")
        .into_iter()
        .filter(|(id, _)| !id.starts_with("__"))
        .map(|(_, v)| v)
        .collect();
    assert!(per_ha.len() >= 2);
    let lo = per_ha.iter().copied().fold(0.0, f64::min);
    let hi = per_ha.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let text = parse(&out.join("zones.qml"));
    let doc = xml(&text);
    let r = doc
        .descendants()
        .find(|n| n.has_tag_name("renderer-v2"))
        .unwrap();
    assert_eq!(r.attribute("type"), Some("graduatedSymbol"));
    assert_eq!(r.attribute("attr"), Some("mean_sink_tco2_per_ha_yr"));
    let ranges: Vec<(f64, f64)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("range"))
        .map(|n| {
            (
                n.attribute("lower").unwrap().parse().unwrap(),
                n.attribute("upper").unwrap().parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(ranges.len(), 5);
    let step = (hi - lo) / 5.0;
    for (k, (a, b)) in ranges.iter().enumerate() {
        assert!((a - (lo + step * k as f64)).abs() < 1e-9 * hi.abs());
        assert!((b - (lo + step * (k + 1) as f64)).abs() < 1e-9 * hi.abs());
    }
    let symbols = doc
        .descendants()
        .find(|n| n.has_tag_name("symbols"))
        .unwrap();
    let colours: Vec<String> = symbols
        .descendants()
        .filter(|n| n.attribute("name") == Some("color"))
        .map(|n| n.attribute("value").unwrap().to_string())
        .collect();
    assert_eq!(colours.len(), 5);
    for (k, c) in colours.iter().enumerate() {
        let g = GREENS.at((k as f64 + 0.5) / 5.0);
        assert_eq!(*c, format!("{},{},{},255", g[0], g[1], g[2]));
    }
    let label = doc
        .descendants()
        .find(|n| n.has_tag_name("text-style"))
        .unwrap();
    assert_eq!(label.attribute("fieldName"), Some("zone_name"));
}

#[test]
fn a_change_map_gets_a_diverging_style_symmetric_around_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let scene = synth_scene(tmp.path(), 60, 40, 3);
    let dir = scene.parent().unwrap();
    let out = tmp.path().join("change");
    // After: the top half turned barren (losses), the bottom half grassland (gains on barren).
    let lc = dir.join("landcover.tif");
    let after = tmp.path().join("after.tif");
    let (v, w, h) = read_raster(&lc);
    let gt = gdal::Dataset::open(&lc).unwrap().geo_transform().unwrap();
    let changed: Vec<u8> = (0..w * h)
        .map(|i| {
            if v[i] == 0.0 {
                0
            } else if i / w < h / 2 {
                7
            } else {
                4
            }
        })
        .collect();
    write_raster(&after, w, h, gt, Some(4326), Some(0.0), changed);
    let o = sinkmap(&[
        "change",
        scene.to_str().unwrap(),
        "--before",
        lc.to_str().unwrap(),
        "--after",
        after.to_str().unwrap(),
        "--years",
        "2010",
        "2020",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (lo, hi) = expected_range(&out.join("stock_change_tc_per_ha.tif"));
    assert!(lo < 0.0 && hi > 0.0, "losses and gains: {lo} {hi}");
    let m = lo.abs().max(hi.abs());
    let items = ramp_of(&parse(&out.join("stock_change_tc_per_ha.qml")));
    assert_eq!(items.len(), DIVERGING.0.len());
    assert!((items[0].0 + m).abs() < 1e-9 * m.max(1.0));
    assert!(items[1].0.abs() < 1e-9 * m.max(1.0), "the middle stop is 0");
    assert!((items[2].0 - m).abs() < 1e-9 * m.max(1.0));
    assert_eq!(items[1].1, hex(DIVERGING.0[1].1));
}
