//! The core pipeline against hand-computed values, reference areas and invariants.

#![cfg(feature = "gdal")]

mod common;

use std::path::Path;

use common::*;

const UTM45: u32 = 32645;
const GT30: [f64; 6] = [500_000.0, 30.0, 0.0, 4_900_000.0, 0.0, -30.0];
const HA: f64 = 0.09; // a 30 m pixel

/// Models with one forest type per curve form and distinct values everywhere.
fn write_models(dir: &Path, include_inorganic: bool) {
    let m = dir.join("models");
    std::fs::create_dir_all(m.join("schemes")).unwrap();
    std::fs::copy(
        root().join("models/schemes/clcd.toml"),
        m.join("schemes/clcd.toml"),
    )
    .unwrap();
    std::fs::write(
        m.join("forest.toml"),
        r#"
default_forest_type = "rich"
max_plausible_age_yr = 300
fallback_age_yr = 20
fallback_age_source = "test"

[[forest_type]]
code = 1
name = "logi"
label = "logistic"
curve = { form = "logistic", a_tc_per_ha = 100.0, b = 9.0, c_per_yr = 0.1 }
curve_pools = "above_and_below_ground"
dead_matter_tc_per_ha = 1.0
soil_tc_per_ha = 10.0
evidence = "placeholder"
source = "test"

[[forest_type]]
code = 2
name = "rich"
label = "richards"
curve = { form = "richards", a_tc_per_ha = 75.0, b_per_yr = 0.025, c = 2.5 }
curve_pools = "above_and_below_ground"
dead_matter_tc_per_ha = 2.0
soil_tc_per_ha = 20.0
evidence = "placeholder"
source = "test"

[[forest_type]]
code = 3
name = "gomp"
label = "gompertz"
curve = { form = "gompertz", a_tc_per_ha = 60.0, b = 3.0, c_per_yr = 0.05 }
curve_pools = "above_ground"
root_shoot_ratio = 0.25
evidence = "placeholder"
source = "test"

[[forest_type]]
code = 4
name = "korf"
label = "korf"
curve = { form = "korf", a_tc_per_ha = 126.0, b = 8.0, c = 0.5 }
curve_pools = "above_and_below_ground"
evidence = "placeholder"
source = "test"

[[forest_type]]
code = 5
name = "tab"
label = "tabulated"
curve = { form = "tabulated", ages_yr = [0.0, 10.0, 30.0], stock_tc_per_ha = [0.0, 20.0, 30.0] }
curve_pools = "above_and_below_ground"
evidence = "placeholder"
source = "test"
"#,
    )
    .unwrap();
    std::fs::write(
        m.join("desert.toml"),
        format!(
            r#"
include_inorganic = {include_inorganic}
default_subtype = "gobi"

[[subtype]]
code = 1
name = "mobile"
label = "m"
biomass_tc_per_ha = 0.0
soil_tc_per_ha = 14.0
crust_fixation_gc_per_m2_yr = 0.0
shrub_growth_gc_per_m2_yr = 0.0
inorganic_gc_per_m2_yr = 1.0
evidence = "placeholder"
source = "test"

[[subtype]]
code = 3
name = "fixed"
label = "f"
biomass_tc_per_ha = 2.0
soil_tc_per_ha = 20.0
crust_fixation_gc_per_m2_yr = 3.0
shrub_growth_gc_per_m2_yr = 4.0
inorganic_gc_per_m2_yr = 1.5
evidence = "placeholder"
source = "test"

[[subtype]]
code = 4
name = "gobi"
label = "g"
biomass_tc_per_ha = 0.25
soil_tc_per_ha = 5.0
crust_fixation_gc_per_m2_yr = 0.5
shrub_growth_gc_per_m2_yr = 0.0
inorganic_gc_per_m2_yr = 2.0
evidence = "placeholder"
source = "test"
"#
        ),
    )
    .unwrap();
    let mut other = String::new();
    for (i, c) in [
        "shrub",
        "grassland",
        "cropland",
        "wetland",
        "water",
        "snow_ice",
        "built_up",
    ]
    .iter()
    .enumerate()
    {
        other += &format!(
            "[[class]]\nclass = \"{c}\"\nbiomass_tc_per_ha = {}\ndead_matter_tc_per_ha = {}\nsoil_tc_per_ha = {}\nsink_tc_per_ha_yr = {}\nevidence = \"placeholder\"\nsource = \"test\"\n\n",
            1.5 * (i + 1) as f64,
            0.1 * (i + 1) as f64,
            10.0 + i as f64,
            0.01 * (i as f64 - 2.0)
        );
    }
    std::fs::write(m.join("other_classes.toml"), other).unwrap();
}

fn write_scene(dir: &Path, extra: &str) -> std::path::PathBuf {
    let p = dir.join("scene.toml");
    std::fs::write(
        &p,
        format!(
            r#"
name = "hand"
base_year = 2020
models_dir = "models"
output_dir = "out"

[landcover]
path = "lc.tif"
scheme = "clcd"

[forest_age]
path = "age.tif"
nodata_values = [-1.0]

[forest_type]
path = "ft.tif"

[desert_subtype]
path = "ds.tif"

[output]
block_size_px = 16
{extra}
"#
        ),
    )
    .unwrap();
    p
}

// Closed forms, written out independently of the library.
fn logistic(t: f64) -> f64 {
    100.0 / (1.0 + 9.0 * (-0.1 * t).exp())
}
fn richards(t: f64) -> f64 {
    75.0 * (1.0 - (-0.025 * t).exp()).powf(2.5)
}
fn gompertz_total(t: f64) -> f64 {
    60.0 * (-3.0 * (-0.05 * t).exp()).exp() * 1.25
}
fn korf(t: f64) -> f64 {
    if t == 0.0 {
        0.0
    } else {
        126.0 * (-8.0 / t.sqrt()).exp()
    }
}
fn tab(t: f64) -> f64 {
    if t <= 10.0 {
        2.0 * t
    } else if t <= 30.0 {
        20.0 + 0.5 * (t - 10.0)
    } else {
        30.0
    }
}
const K: f64 = 44.0 / 12.0;
const G: f64 = 0.01 * 44.0 / 12.0; // g C/m²/yr → t CO2/ha/yr

struct Case {
    lc: u8,
    age: i16,
    ft: u8,
    ds: u8,
    /// Expected (stock with dead + soil pools, sink with inorganic counted, sink without).
    stock: f64,
    sink_incl: f64,
    sink_excl: f64,
}

fn cases() -> Vec<Case> {
    let f = |lc, age: i16, ft, curve: fn(f64) -> f64, extra: f64| {
        let a = age as f64;
        let s = (curve(a + 1.0) - curve(a)) * K;
        Case {
            lc,
            age,
            ft,
            ds: 0,
            stock: curve(a) + extra,
            sink_incl: s,
            sink_excl: s,
        }
    };
    let o = |lc, i: usize| {
        let stock = 1.5 * (i + 1) as f64 + 0.1 * (i + 1) as f64 + 10.0 + i as f64;
        let s = 0.01 * (i as f64 - 2.0) * K;
        Case {
            lc,
            age: -1,
            ft: 0,
            ds: 0,
            stock,
            sink_incl: s,
            sink_excl: s,
        }
    };
    let d = |ds, stock: f64, crust: f64, shrub: f64, inorg: f64| Case {
        lc: 7,
        age: -1,
        ft: 0,
        ds,
        stock,
        sink_incl: (crust + shrub + inorg) * G,
        sink_excl: (crust + shrub) * G,
    };
    vec![
        f(2, 10, 1, logistic, 11.0),
        f(2, 40, 2, richards, 22.0),
        f(2, 0, 3, gompertz_total, 0.0),
        f(2, 64, 4, korf, 0.0),
        f(2, 25, 5, tab, 0.0),
        f(2, 35, 0, richards, 22.0), // no forest type → default (richards)
        f(2, -1, 2, richards, 22.0), // no age → fallback 20 yr (fixed below)
        f(2, 200, 1, logistic, 11.0),
        o(3, 0),
        o(4, 1),
        o(1, 2),
        o(9, 3),
        o(5, 4),
        o(6, 5),
        o(8, 6),
        d(1, 14.0, 0.0, 0.0, 1.0),
        d(3, 22.0, 3.0, 4.0, 1.5),
        d(0, 5.25, 0.5, 0.0, 2.0), // no subtype → default gobi
        Case {
            lc: 0,
            age: -1,
            ft: 0,
            ds: 0,
            stock: f64::NAN,
            sink_incl: f64::NAN,
            sink_excl: f64::NAN,
        },
        d(4, 5.25, 0.5, 0.0, 2.0),
    ]
}

fn setup(dir: &Path, include_inorganic: bool) -> (std::path::PathBuf, Vec<Case>) {
    let mut cs = cases();
    // The fallback-age case: computed at age 20.
    let a = 20.0;
    cs[6].stock = richards(a) + 22.0;
    cs[6].sink_incl = (richards(a + 1.0) - richards(a)) * K;
    cs[6].sink_excl = cs[6].sink_incl;
    let (w, h) = (5, 4);
    write_raster(
        &dir.join("lc.tif"),
        w,
        h,
        GT30,
        Some(UTM45),
        Some(0.0),
        cs.iter().map(|c| c.lc).collect(),
    );
    write_raster(
        &dir.join("age.tif"),
        w,
        h,
        GT30,
        Some(UTM45),
        None,
        cs.iter().map(|c| c.age).collect(),
    );
    write_raster(
        &dir.join("ft.tif"),
        w,
        h,
        GT30,
        Some(UTM45),
        Some(0.0),
        cs.iter().map(|c| c.ft).collect(),
    );
    write_raster(
        &dir.join("ds.tif"),
        w,
        h,
        GT30,
        Some(UTM45),
        Some(0.0),
        cs.iter().map(|c| c.ds).collect(),
    );
    write_models(dir, include_inorganic);
    (
        write_scene(dir, "[pools]\ndead_matter = true\nsoil = true\n"),
        cs,
    )
}

#[test]
fn every_class_and_curve_form_matches_hand_computed_values() {
    for include_inorganic in [true, false] {
        let tmp = tempfile::tempdir().unwrap();
        let (scene, cs) = setup(tmp.path(), include_inorganic);
        sinkmap_ok(&[
            "run",
            scene.to_str().unwrap(),
            "--quiet",
            "--layout",
            "tiled",
        ]);
        let (stock, _, _) = read_raster(&tmp.path().join("out/stock_tc_per_ha.tif"));
        let (sink, _, _) = read_raster(&tmp.path().join("out/sink_tco2_per_ha_yr.tif"));
        let mut tot_stock = 0.0;
        let mut tot_sink = 0.0;
        for (i, c) in cs.iter().enumerate() {
            let want_sink = if include_inorganic {
                c.sink_incl
            } else {
                c.sink_excl
            };
            if c.stock.is_nan() {
                assert!(
                    stock[i].is_nan() && sink[i].is_nan(),
                    "pixel {i} should be nodata"
                );
                continue;
            }
            assert!(
                rel_close(stock[i], c.stock, 1e-6),
                "pixel {i}: stock {} vs {}",
                stock[i],
                c.stock
            );
            assert!(
                (sink[i] - want_sink).abs() <= 1e-6 * want_sink.abs().max(1e-3),
                "pixel {i}: sink {} vs {want_sink}",
                sink[i]
            );
            tot_stock += HA * c.stock;
            tot_sink += HA * want_sink;
        }
        let s = json(&tmp.path().join("out/summary.json"));
        let t = &s["totals"];
        assert!(rel_close(t["stock_tc"].as_f64().unwrap(), tot_stock, 1e-9));
        assert!(rel_close(
            t["sink_tco2_yr"].as_f64().unwrap(),
            tot_sink,
            1e-9
        ));
        assert!(
            rel_close(t["area_ha"].as_f64().unwrap(), HA * 19.0, 1e-12),
            "{}",
            t["area_ha"]
        );
        assert!(rel_close(s["nodata_area_ha"].as_f64().unwrap(), HA, 1e-12));
        // The inorganic term is reported either way: mobile 1.0 + fixed 1.5 + gobi 2 × 2.0.
        let inorg = s["desert_components"]["inorganic_tco2_yr"]
            .as_f64()
            .unwrap();
        assert!(rel_close(inorg, HA * 6.5 * G, 1e-9), "{inorg}");
        let comp_sum = t["forest_sink_tco2_yr"].as_f64().unwrap()
            + t["desert_sink_tco2_yr"].as_f64().unwrap()
            + t["other_sink_tco2_yr"].as_f64().unwrap();
        assert!(rel_close(comp_sum, tot_sink, 1e-9));
        // One forest pixel used the fallback age.
        assert!(rel_close(
            t["forest_area_assumed_age_ha"].as_f64().unwrap(),
            HA,
            1e-12
        ));
        // Per-class areas: 8 forest pixels, 5 barren.
        let classes = s["classes"].as_array().unwrap();
        let area = |name: &str| {
            classes.iter().find(|c| c["class"] == name).unwrap()["area_ha"]
                .as_f64()
                .unwrap()
        };
        assert!(rel_close(area("forest"), 8.0 * HA, 1e-12));
        assert!(rel_close(area("barren"), 4.0 * HA, 1e-12));
    }
}

#[test]
fn maps_carry_units_nodata_and_provenance_in_cog_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let (scene, _) = setup(tmp.path(), false);
    sinkmap_ok(&["run", scene.to_str().unwrap(), "--quiet"]);
    let ds = gdal::Dataset::open(tmp.path().join("out/sink_tco2_per_ha_yr.tif")).unwrap();
    use gdal::Metadata;
    assert_eq!(
        ds.metadata_item("LAYOUT", "IMAGE_STRUCTURE").as_deref(),
        Some("COG")
    );
    assert_eq!(
        ds.metadata_item("SINKMAP_SCENE", "").as_deref(),
        Some("hand")
    );
    assert!(ds.metadata_item("SINKMAP_MODEL_FOREST_TOML", "").is_some());
    let b = ds.rasterband(1).unwrap();
    assert_eq!(b.unit(), "t CO2/ha/yr");
    assert!(b.no_data_value().unwrap().is_nan());
    // Nothing temporary is left behind.
    assert_eq!(
        list(&tmp.path().join("out")),
        vec![
            "cube.csv",
            "manifest.json",
            "report",
            "report.html",
            "sink_tco2_per_ha_yr.qml",
            "sink_tco2_per_ha_yr.tif",
            "stock_tc_per_ha.qml",
            "stock_tc_per_ha.tif",
            "summary.json"
        ]
    );
    assert!(list(&tmp.path().join("out/report"))
        .iter()
        .all(|f| f.ends_with(".png")));
}

#[test]
fn reference_ellipsoidal_areas_on_a_lonlat_grid() {
    let tmp = tempfile::tempdir().unwrap();
    // One column of 1° cells from 61°N down to 0°.
    let p = tmp.path().join("deg.tif");
    write_raster(
        &p,
        1,
        61,
        [100.0, 1.0, 0.0, 61.0, 0.0, -1.0],
        Some(4326),
        Some(0.0),
        vec![4u8; 61],
    );
    let g = sinkmap::raster::reference_grid(&p, 1).unwrap();
    let km2 = |row| g.pixel_area_ha(row) / 100.0;
    // Independent reference: GeographicLib (through geo) on the cell as a polygon densified to
    // 2000 vertices per edge, so that its geodesic edges follow the parallels.
    let cell_km2 = |lat: f64, n: usize| {
        use geo::GeodesicArea;
        let mut pts = Vec::new();
        for i in 0..=n {
            pts.push((100.0 + i as f64 / n as f64, lat));
        }
        for i in 0..=n {
            pts.push((101.0 - i as f64 / n as f64, lat + 1.0));
        }
        geo::Polygon::new(geo::LineString::from(pts), vec![]).geodesic_area_unsigned() / 1e6
    };
    for (row, lat) in [(60, 0.0), (15, 45.0), (0, 60.0)] {
        let want = cell_km2(lat, 2000);
        assert!(
            rel_close(km2(row), want, 1e-6),
            "{lat}°N: {} vs {want}",
            km2(row)
        );
    }
    // The issue's figures (12 308.78, 8 686.38, 6 122.94 km²) are the 4-vertex geodesic
    // quadrilaterals, whose north/south edges bow away from the parallels: reproduce that
    // explanation, and show the raster cells differ from them by only a few 1e-5.
    for (row, lat, issue) in [
        (60, 0.0, 12_308.78),
        (15, 45.0, 8_686.38),
        (0, 60.0, 6_122.94),
    ] {
        assert!(
            rel_close(cell_km2(lat, 1), issue, 1e-6),
            "quadrilateral {lat}°N: {}",
            cell_km2(lat, 1)
        );
        assert!(rel_close(km2(row), issue, 4e-5));
    }
    for r in 1..61 {
        assert!(
            g.pixel_area_ha(r) > g.pixel_area_ha(r - 1),
            "area must grow towards the equator"
        );
    }
    // A 0.00025° cell at 44°N: 556.99 m² (given to 5 significant digits).
    let p2 = tmp.path().join("fine.tif");
    write_raster(
        &p2,
        1,
        1,
        [86.0, 0.00025, 0.0, 44.00025, 0.0, -0.00025],
        Some(4326),
        Some(0.0),
        vec![4u8],
    );
    let g2 = sinkmap::raster::reference_grid(&p2, 1).unwrap();
    assert!(
        (g2.pixel_area_ha(0) * 1e4 - 556.99).abs() < 0.005,
        "{}",
        g2.pixel_area_ha(0) * 1e4
    );
}

#[test]
fn summary_area_on_lonlat_grid_sums_row_areas() {
    let tmp = tempfile::tempdir().unwrap();
    copy_models(tmp.path());
    write_raster(
        &tmp.path().join("lc.tif"),
        3,
        10,
        [80.0, 0.5, 0.0, 45.0, 0.0, -0.5],
        Some(4326),
        Some(0.0),
        vec![4u8; 30],
    );
    let scene = tmp.path().join("s.toml");
    std::fs::write(&scene, "name='ll'\nbase_year=2020\nmodels_dir='models'\noutput_dir='out'\n[landcover]\npath='lc.tif'\nscheme='clcd'\n").unwrap();
    sinkmap_ok(&["run", scene.to_str().unwrap(), "--quiet"]);
    let s = json(&tmp.path().join("out/summary.json"));
    // Independent: the band between 45°N and 40°N, 1.5° wide, from the authalic formula
    // for the WGS84 ellipsoid via the area of a zone: 2πb²·[…] scaled by 1.5/360.
    let (a, b) = (6_378_137.0f64, 6_356_752.314_245_179f64);
    let e = (1.0 - b * b / (a * a)).sqrt();
    let q = |phi: f64| {
        let s = phi.to_radians().sin();
        (1.0 - e * e)
            * (s / (1.0 - e * e * s * s) - (1.0 / (2.0 * e)) * ((1.0 - e * s) / (1.0 + e * s)).ln())
    };
    let zone_m2 = std::f64::consts::PI * a * a * (q(45.0) - q(40.0)); // area of the 40–45° band over 360°
    let want_ha = zone_m2 * 1.5 / 360.0 / 1e4;
    let got = s["totals"]["area_ha"].as_f64().unwrap();
    assert!(rel_close(got, want_ha, 1e-9), "{got} vs {want_ha}");
    let stock = s["totals"]["stock_tc"].as_f64().unwrap();
    assert!(rel_close(stock, want_ha * 3.04, 1e-9));
}

fn file_bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

#[test]
fn block_size_and_thread_count_change_no_number() {
    let tmp = tempfile::tempdir().unwrap();
    let scene = synth_scene(tmp.path(), 257, 190, 21);
    // (summary without run info, cube.csv, zones.csv, stock map, sink map)
    type Run = (serde_json::Value, Vec<u8>, Vec<u8>, Vec<f64>, Vec<f64>);
    let mut first: Option<Run> = None;
    for (block, threads) in [("16", "1"), ("48", "2"), ("512", "3"), ("64", "8")] {
        let out = tmp.path().join(format!("out_{block}_{threads}"));
        sinkmap_ok(&[
            "run",
            scene.to_str().unwrap(),
            "--quiet",
            "--block-size",
            block,
            "--threads",
            threads,
            "--out",
            out.to_str().unwrap(),
        ]);
        let mut s = json(&out.join("summary.json"));
        // The stage times: the overview levels are a part of the compute processor time.
        let stage = |k: &str| s["run"]["stage_seconds"][k].as_f64().unwrap();
        let (cpu, overview) = (stage("compute_cpu"), stage("overview_cpu"));
        assert!(
            (0.0..=cpu).contains(&overview) && cpu > 0.0,
            "overview {overview} s of compute {cpu} s"
        );
        s["run"] = serde_json::Value::Null;
        let this = (
            s,
            file_bytes(&out.join("cube.csv")),
            file_bytes(&out.join("zones.csv")),
            read_raster(&out.join("stock_tc_per_ha.tif")).0,
            read_raster(&out.join("sink_tco2_per_ha_yr.tif")).0,
        );
        match &first {
            None => first = Some(this),
            Some(f) => {
                assert_eq!(
                    f.0, this.0,
                    "summary differs for block {block}, threads {threads}"
                );
                assert!(f.1 == this.1, "cube.csv differs");
                assert!(f.2 == this.2, "zones.csv differs");
                let same = |a: &[f64], b: &[f64]| {
                    a.iter()
                        .zip(b)
                        .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
                };
                assert!(same(&f.3, &this.3) && same(&f.4, &this.4), "maps differ");
            }
        }
    }
}

#[test]
fn overviews_are_means_of_the_full_resolution_whatever_the_block_size() {
    let tmp = tempfile::tempdir().unwrap();
    // Wider than two COG tiles: two overview levels (550 × 150 and 275 × 75).
    let scene = synth_scene(tmp.path(), 1100, 300, 5);
    let mut runs = Vec::new();
    for block in ["16", "512"] {
        let out = tmp.path().join(format!("out_{block}"));
        sinkmap_ok(&[
            "run",
            scene.to_str().unwrap(),
            "--quiet",
            "--no-report",
            "--block-size",
            block,
            "--out",
            out.to_str().unwrap(),
        ]);
        runs.push(out);
    }
    let map = |d: &std::path::Path| d.join("stock_tc_per_ha.tif");
    let (full, w, h) = read_raster(&map(&runs[1]));
    let levels = read_overviews(&map(&runs[1]));
    assert_eq!(levels.len(), 2);
    for (k, (values, ow, oh)) in levels.iter().enumerate() {
        let f = 2usize << k;
        assert_eq!((*ow, *oh), (w.div_ceil(f), h.div_ceil(f)));
        // Independent reference: the mean of the valid full-resolution pixels covered.
        for oy in 0..*oh {
            for ox in 0..*ow {
                let (mut s, mut n) = (0.0, 0);
                for y in oy * f..((oy + 1) * f).min(h) {
                    for x in ox * f..((ox + 1) * f).min(w) {
                        let v = full[y * w + x];
                        if !v.is_nan() {
                            s += v;
                            n += 1;
                        }
                    }
                }
                let got = values[oy * ow + ox];
                if n == 0 {
                    assert!(got.is_nan());
                } else {
                    let want = s / n as f64;
                    assert!(
                        (got - want).abs() <= 1e-6 * want.abs().max(1e-3),
                        "level {k} ({ox}, {oy}): {got} vs {want}"
                    );
                }
            }
        }
    }
    for m in ["stock_tc_per_ha.tif", "best_intervention.tif"] {
        let a = read_overviews(&runs[0].join(m));
        let b = read_overviews(&runs[1].join(m));
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert!(
                same_bits(&x.0, &y.0),
                "{m}: overviews depend on the block size"
            );
        }
    }
}

#[test]
fn invest_pool_table_stock_equals_independent_sum() {
    let tmp = tempfile::tempdir().unwrap();
    copy_models(tmp.path());
    let (w, h) = (13, 9);
    // A deterministic mix of all nine CLCD codes plus nodata.
    let codes: Vec<u8> = (0..w * h).map(|i| ((i * 7 + i / 5) % 10) as u8).collect();
    write_raster(
        &tmp.path().join("lc.tif"),
        w,
        h,
        GT30,
        Some(UTM45),
        Some(0.0),
        codes.clone(),
    );
    let pools: Vec<(u8, [f64; 4])> = (1..=9u8)
        .map(|c| {
            (
                c,
                [
                    c as f64 * 3.5,
                    c as f64 * 0.7,
                    40.0 - c as f64,
                    0.25 * c as f64,
                ],
            )
        })
        .collect();
    let mut csv = String::from("lucode,c_above,c_below,c_soil,c_dead,lulc_name\n");
    for (c, p) in &pools {
        csv += &format!("{c},{},{},{},{},class{c}\n", p[0], p[1], p[2], p[3]);
    }
    std::fs::write(tmp.path().join("pools.csv"), csv).unwrap();
    let scene = tmp.path().join("s.toml");
    std::fs::write(
        &scene,
        "name='invest'\nbase_year=2020\nmodels_dir='models'\noutput_dir='out'\n[landcover]\npath='lc.tif'\nscheme='clcd'\npool_table='pools.csv'\n",
    )
    .unwrap();
    sinkmap_ok(&["run", scene.to_str().unwrap(), "--quiet"]);
    let want: f64 = codes
        .iter()
        .filter(|c| **c != 0)
        .map(|c| HA * pools[*c as usize - 1].1.iter().sum::<f64>())
        .sum();
    let got = json(&tmp.path().join("out/summary.json"))["totals"]["stock_tc"]
        .as_f64()
        .unwrap();
    assert!(rel_close(got, want, 1e-9), "{got} vs {want}");
    let (stock, _, _) = read_raster(&tmp.path().join("out/stock_tc_per_ha.tif"));
    for (i, c) in codes.iter().enumerate() {
        if *c != 0 {
            assert!(rel_close(
                stock[i],
                pools[*c as usize - 1].1.iter().sum::<f64>(),
                1e-6
            ));
        }
    }
}

#[test]
fn layers_on_other_grids_are_aligned_by_the_warper() {
    let tmp = tempfile::tempdir().unwrap();
    let (w, h) = (8, 6);
    copy_models(tmp.path());
    write_raster(
        &tmp.path().join("lc.tif"),
        w,
        h,
        GT30,
        Some(UTM45),
        Some(0.0),
        vec![2u8; w * h],
    );
    // Age at 60 m (half the resolution): each age pixel covers 2 × 2 land-cover pixels.
    let ages60: Vec<i16> = (0..(w / 2) * (h / 2)).map(|i| 10 + 7 * i as i16).collect();
    let gt60 = [GT30[0], 60.0, 0.0, GT30[3], 0.0, -60.0];
    write_raster(
        &tmp.path().join("age60.tif"),
        w / 2,
        h / 2,
        gt60,
        Some(UTM45),
        Some(-1.0),
        ages60.clone(),
    );
    // The same constant age in lon/lat covering the whole area generously.
    write_raster(
        &tmp.path().join("age_ll.tif"),
        40,
        40,
        [86.98, 0.001, 0.0, 44.27, 0.0, -0.001],
        Some(4326),
        Some(-1.0),
        vec![33i16; 1600],
    );
    let c = |t: f64| 91.1 * (1.0 - (-0.025 * t).exp()).powf(2.5);
    for (age_file, expect) in [
        (
            "age60.tif",
            Box::new(|col: usize, row: usize| ages60[(row / 2) * (w / 2) + col / 2] as f64)
                as Box<dyn Fn(usize, usize) -> f64>,
        ),
        ("age_ll.tif", Box::new(|_, _| 33.0)),
    ] {
        let scene = tmp.path().join("s.toml");
        std::fs::write(
            &scene,
            format!("name='align'\nbase_year=2020\nmodels_dir='models'\noutput_dir='out'\n[landcover]\npath='lc.tif'\nscheme='clcd'\n[forest_age]\npath='{age_file}'\n"),
        )
        .unwrap();
        let o = sinkmap(&["run", scene.to_str().unwrap(), "--quiet"]);
        assert!(
            o.status.success(),
            "{age_file}: {:?} {}",
            o.status,
            stderr(&o)
        );
        let (stock, _, _) = read_raster(&tmp.path().join("out/stock_tc_per_ha.tif"));
        for row in 0..h {
            for col in 0..w {
                let want = c(expect(col, row));
                assert!(
                    rel_close(stock[row * w + col], want, 1e-6),
                    "{age_file} ({col},{row}): {} vs {want}",
                    stock[row * w + col]
                );
            }
        }
    }
}

#[test]
fn ages_are_shifted_from_their_reference_year_to_the_base_year() {
    let tmp = tempfile::tempdir().unwrap();
    copy_models(tmp.path());
    write_raster(
        &tmp.path().join("lc.tif"),
        2,
        1,
        GT30,
        Some(UTM45),
        Some(0.0),
        vec![2u8, 2],
    );
    write_raster(
        &tmp.path().join("age.tif"),
        2,
        1,
        GT30,
        Some(UTM45),
        Some(-1.0),
        vec![10i16, 50],
    );
    let scene = tmp.path().join("s.toml");
    std::fs::write(
        &scene,
        "name='shift'\nbase_year=2025\nmodels_dir='models'\noutput_dir='out'\n[landcover]\npath='lc.tif'\nscheme='clcd'\n[forest_age]\npath='age.tif'\nreference_year=2020\n",
    )
    .unwrap();
    sinkmap_ok(&["run", scene.to_str().unwrap(), "--quiet"]);
    let (stock, _, _) = read_raster(&tmp.path().join("out/stock_tc_per_ha.tif"));
    let c = |t: f64| 91.1 * (1.0 - (-0.025 * t).exp()).powf(2.5);
    assert!(
        rel_close(stock[0], c(15.0), 1e-6) && rel_close(stock[1], c(55.0), 1e-6),
        "{stock:?}"
    );
}

/// The committed sample scene is what `sinkmap synth --sample` makes (seeded, deterministic).
#[test]
fn the_committed_sample_scene_regenerates_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = sinkmap::synth::SynthSpec::sample(tmp.path());
    sinkmap::synth::generate(&spec, false).unwrap();
    for f in [
        "landcover.tif",
        "forest_age.tif",
        "forest_type.tif",
        "desert_subtype.tif",
        "water_access.tif",
        "degraded_grassland.tif",
    ] {
        let (a, w, h) = read_raster(&root().join("rasters/sample").join(f));
        let (b, w2, h2) = read_raster(&tmp.path().join("rasters/sample").join(f));
        assert_eq!((w, h), (w2, h2), "{f}");
        assert!(a == b, "{f} differs from a fresh `sinkmap synth --sample`");
    }
    for f in ["scene.toml", "rollout.toml"] {
        assert_eq!(
            std::fs::read_to_string(root().join("rasters/sample").join(f)).unwrap(),
            std::fs::read_to_string(tmp.path().join("rasters/sample").join(f)).unwrap(),
            "{f}"
        );
    }
}
