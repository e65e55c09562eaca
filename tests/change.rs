#![cfg(feature = "gdal")]
#![allow(clippy::needless_range_loop)]
//! Land-cover change: exact stock-difference map (−1 t C/ha included), transition matrices
//! whose rows and columns add up to the class areas, aligned grids, nodata in one year,
//! mismatched schemes, and InVEST's valuation.

mod common;

use std::path::{Path, PathBuf};

use common::*;

const UTM45: u32 = 32645;
const X0: f64 = 500_000.0;
const Y0: f64 = 4_900_000.0;
const GT30: [f64; 6] = [X0, 30.0, 0.0, Y0, 0.0, -30.0];
const HA: f64 = 0.09;

/// Pool sums (t C/ha) of the CLCD codes 1–9 in the test pool table.
const POOL: [f64; 10] = [f64::NAN, 10.0, 50.0, 9.0, 20.0, 0.0, 0.0, 2.0, 1.5, 30.0];

fn scene(dir: &Path) -> PathBuf {
    copy_models(dir);
    let mut csv = String::from("lucode,c_above,c_below,c_soil,c_dead\n");
    for c in 1..=9 {
        // Split each total over the four pools.
        let t = POOL[c];
        csv += &format!("{c},{},{},{},{}\n", t * 0.5, t * 0.25, t * 0.125, t * 0.125);
    }
    std::fs::write(dir.join("pools.csv"), csv).unwrap();
    write_raster(
        &dir.join("dummy.tif"),
        4,
        4,
        GT30,
        Some(UTM45),
        Some(0.0),
        vec![4u8; 16],
    );
    let half = |c0: f64, c1: f64| {
        format!(
            "POLYGON (({a} {y0}, {b} {y0}, {b} {y1}, {a} {y1}, {a} {y0}))",
            a = X0 + 30.0 * c0,
            b = X0 + 30.0 * c1,
            y0 = Y0,
            y1 = Y0 - 120.0
        )
    };
    write_layer(
        &dir.join("zones.gpkg"),
        "GPKG",
        Some(UTM45),
        &[
            ("L", "left", half(0.0, 2.0)),
            ("R", "right", half(2.0, 4.0)),
        ],
    );
    let p = dir.join("scene.toml");
    std::fs::write(
        &p,
        "name='change'\nbase_year=2020\nmodels_dir='models'\noutput_dir='out'\n[landcover]\npath='dummy.tif'\nscheme='clcd'\npool_table='pools.csv'\n[zones]\npath='zones.gpkg'\nid_field='id'\nname_field='name'\n",
    )
    .unwrap();
    p
}

#[test]
fn exact_transitions_stock_change_and_valuation() {
    let tmp = tempfile::tempdir().unwrap();
    let s = scene(tmp.path());
    // 4 × 4: 0 = nodata.
    let before: Vec<u8> = vec![1, 1, 2, 4, 4, 4, 7, 7, 1, 0, 2, 9, 4, 1, 3, 8];
    // The after map at 60 m: each value covers 2 × 2 pixels of the before grid.
    let after60: Vec<u8> = vec![3, 2, 1, 0];
    let after_at = |i: usize| after60[(i / 4 / 2) * 2 + (i % 4) / 2];
    write_raster(
        &tmp.path().join("before.tif"),
        4,
        4,
        GT30,
        Some(UTM45),
        Some(0.0),
        before.clone(),
    );
    write_raster(
        &tmp.path().join("after.tif"),
        2,
        2,
        [X0, 60.0, 0.0, Y0, 0.0, -60.0],
        Some(UTM45),
        Some(0.0),
        after60.clone(),
    );
    let out = tmp.path().join("change");
    let o = sinkmap(&[
        "change",
        s.to_str().unwrap(),
        "--before",
        tmp.path().join("before.tif").to_str().unwrap(),
        "--after",
        tmp.path().join("after.tif").to_str().unwrap(),
        "--years",
        "2000",
        "2020",
        "--price-per-tc",
        "100",
        "--discount-rate",
        "5",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (map, _, _) = read_raster(&out.join("stock_change_tc_per_ha.tif"));
    let mut change = 0.0;
    let mut saw_minus_one = false;
    let mut one_year_nodata = 0.0;
    for i in 0..16 {
        let (b, a) = (before[i], after_at(i));
        if b == 0 || a == 0 {
            assert!(map[i].is_nan(), "pixel {i} should be nodata");
            if !(b == 0 && a == 0) {
                one_year_nodata += HA;
            }
            continue;
        }
        let want = POOL[a as usize] - POOL[b as usize];
        assert!(
            (map[i] - want).abs() < 1e-5,
            "pixel {i}: {} vs {want}",
            map[i]
        );
        if want == -1.0 {
            saw_minus_one = true;
            assert_eq!(map[i], -1.0, "a change of exactly −1 is data, not nodata");
        }
        change += HA * want;
    }
    assert!(
        saw_minus_one,
        "the fixture has a −1.0 t C/ha change (code 1 → 3)"
    );
    let j = json(&out.join("change.json"));
    let g = &j["zones"][0];
    assert_eq!(g["zone_id"], "__grid__");
    assert!((g["stock_change_tc"].as_f64().unwrap() - change).abs() < 1e-9);
    assert!(
        (g["mean_annual_change_tco2_yr"].as_f64().unwrap() - change * 44.0 / 12.0 / 20.0).abs()
            < 1e-9
    );
    let k = 100.0 / 20.0 * (0..20).map(|t| 1.0 / 1.05f64.powi(t)).sum::<f64>();
    assert!((g["npv_yuan"].as_f64().unwrap() - change * k).abs() < 1e-6);
    assert!((g["nodata_one_year_area_ha"].as_f64().unwrap() - one_year_nodata).abs() < 1e-12);
    // Transition matrix of the grid: rows sum to the before-class areas, columns to the
    // after-class areas (pixels valid in both years), and each cell is exact.
    let class = |c: u8| {
        [
            "",
            "cropland",
            "forest",
            "shrub",
            "grassland",
            "water",
            "snow_ice",
            "barren",
            "built_up",
            "wetland",
        ][c as usize]
    };
    let (h, rows) = read_csv(&out.join("transition.csv"));
    let (zi, fi, ti, ai) = (0, 1, 2, h.iter().position(|c| c == "area_ha").unwrap());
    let grid: Vec<&Vec<String>> = rows.iter().filter(|r| r[zi] == "__grid__").collect();
    let mut from_sum: std::collections::BTreeMap<&str, f64> = Default::default();
    let mut to_sum: std::collections::BTreeMap<&str, f64> = Default::default();
    for r in &grid {
        *from_sum.entry(r[fi].as_str()).or_default() += r[ai].parse::<f64>().unwrap();
        *to_sum.entry(r[ti].as_str()).or_default() += r[ai].parse::<f64>().unwrap();
    }
    let mut want_pairs: std::collections::BTreeMap<(&str, &str), f64> = Default::default();
    for i in 0..16 {
        let (b, a) = (before[i], after_at(i));
        if b != 0 && a != 0 {
            *want_pairs.entry((class(b), class(a))).or_default() += HA;
        }
    }
    assert_eq!(grid.len(), want_pairs.len());
    for r in &grid {
        let w = want_pairs[&(r[fi].as_str(), r[ti].as_str())];
        assert!(
            (r[ai].parse::<f64>().unwrap() - w).abs() < 1e-12,
            "{} → {}",
            r[fi],
            r[ti]
        );
    }
    for (c, a) in &from_sum {
        let w: f64 = want_pairs
            .iter()
            .filter(|((f, _), _)| f == c)
            .map(|(_, v)| v)
            .sum();
        assert!((a - w).abs() < 1e-12, "row {c}");
    }
    for (c, a) in &to_sum {
        let w: f64 = want_pairs
            .iter()
            .filter(|((_, t), _)| t == c)
            .map(|(_, v)| v)
            .sum();
        assert!((a - w).abs() < 1e-12, "column {c}");
    }
    // Zones add up to the grid.
    let (hz, zr) = read_csv(&out.join("change_zones.csv"));
    let ci = hz.iter().position(|c| c == "stock_change_tc").unwrap();
    let zsum: f64 = zr
        .iter()
        .filter(|r| r[0] == "L" || r[0] == "R" || r[0] == "__outside__")
        .map(|r| r[ci].parse::<f64>().unwrap())
        .sum();
    assert!((zsum - change).abs() < 1e-9);
}

#[test]
fn mismatched_schemes_need_the_after_scheme() {
    let tmp = tempfile::tempdir().unwrap();
    copy_models(tmp.path());
    write_raster(
        &tmp.path().join("before.tif"),
        3,
        1,
        GT30,
        Some(UTM45),
        Some(0.0),
        vec![4u8, 7, 2],
    );
    // ESA WorldCover codes in the after year.
    write_raster(
        &tmp.path().join("after.tif"),
        3,
        1,
        GT30,
        Some(UTM45),
        Some(0.0),
        vec![10u8, 30, 60],
    );
    let p = tmp.path().join("scene.toml");
    std::fs::write(&p, "name='c'\nbase_year=2020\nmodels_dir='models'\noutput_dir='out'\n[landcover]\npath='before.tif'\nscheme='clcd'\n").unwrap();
    let args = |extra: &[&str]| {
        let mut v = vec![
            "change".to_string(),
            p.to_string_lossy().into_owned(),
            "--before".into(),
            tmp.path().join("before.tif").to_string_lossy().into_owned(),
            "--after".into(),
            tmp.path().join("after.tif").to_string_lossy().into_owned(),
            "--years".into(),
            "2015".into(),
            "2020".into(),
            "--out".into(),
            tmp.path().join("c").to_string_lossy().into_owned(),
            "--quiet".into(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let a = args(&[]);
    let o = sinkmap(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(3), "input data");
    let err = stderr(&o);
    assert!(
        err.contains("after.tif") && err.contains("land-cover code 10 is not in the scheme"),
        "{err}"
    );
    assert!(list(&tmp.path().join("c")).is_empty());
    let a = args(&["--after-scheme", "esa_worldcover"]);
    let o = sinkmap(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    let (h, rows) = read_csv(&tmp.path().join("c/transition.csv"));
    let (fi, ti) = (
        h.iter().position(|c| c == "from_class").unwrap(),
        h.iter().position(|c| c == "to_class").unwrap(),
    );
    let pairs: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r[fi].clone(), r[ti].clone()))
        .collect();
    for want in [
        ("grassland", "forest"),
        ("barren", "grassland"),
        ("forest", "barren"),
    ] {
        assert!(
            pairs.contains(&(want.0.to_string(), want.1.to_string())),
            "{want:?} in {pairs:?}"
        );
    }
}
