//! Restoration: per-intervention eligibility and potential on a tiny hand-made raster, the
//! zone table, project tables against hand-computed trajectories, and clear errors.

#![cfg(feature = "gdal")]

mod common;

use std::path::{Path, PathBuf};

use common::*;

const UTM45: u32 = 32645;
const X0: f64 = 500_000.0;
const Y0: f64 = 4_900_000.0;
const GT30: [f64; 6] = [X0, 30.0, 0.0, Y0, 0.0, -30.0];
const HA: f64 = 0.09;
const K: f64 = 44.0 / 12.0;
/// 2020–2060 inclusive.
const YEARS: f64 = 41.0;

/// Mean gains over the period by hand, from the numbers in models/restoration.toml.
fn drip() -> f64 {
    0.8 * K * 0.85 * 25.0 / YEARS
}
fn rainfed() -> f64 {
    0.15 * K * 0.5 * 30.0 / YEARS
}
fn shelterbelt() -> f64 {
    // Σ_{k=0}^{40} (C(k+1) − C(k)) = C(41) for the plantation curve 100·(1 − e^(−0.1 t))².
    100.0 * (1.0 - (-4.1f64).exp()).powi(2) * K * 0.9 * 0.07 / YEARS
}
fn grazing_gain(k: u32) -> f64 {
    if k >= 20 {
        0.0
    } else {
        0.6 * (1.0 - (k as f64 + 0.5) / 20.0) * K
    }
}
fn grazing() -> f64 {
    (0..41).map(grazing_gain).sum::<f64>() / YEARS
}
fn halophyte() -> f64 {
    0.45 * K * 0.7 * 20.0 / YEARS
}

/// Each pixel: (CLCD code, desert subtype code, water mask, degraded mask,
/// expected best code, expected potential, eligible interventions by code).
struct Px(u8, u8, u8, u8, u8, f64, &'static [u8]);

fn pixels() -> Vec<Px> {
    vec![
        Px(7, 1, 1, 0, 1, drip(), &[1, 2]),     // mobile dune with water
        Px(7, 1, 0, 0, 2, rainfed(), &[2]),     // mobile dune, no water
        Px(7, 2, 1, 1, 1, drip(), &[1, 2]),     // semi-fixed with water
        Px(7, 3, 1, 0, 2, rainfed(), &[2]),     // fixed dune: rain-fed only
        Px(7, 5, 0, 0, 5, halophyte(), &[5]),   // saline-alkali
        Px(7, 4, 1, 1, 0, 0.0, &[]),            // gobi: nothing
        Px(1, 0, 0, 0, 3, shelterbelt(), &[3]), // cropland
        Px(1, 0, 1, 1, 3, shelterbelt(), &[3]), // cropland with water
        Px(4, 0, 0, 1, 4, grazing(), &[4]),     // degraded grassland
        Px(4, 0, 1, 0, 0, 0.0, &[]),            // intact grassland
        Px(2, 0, 1, 1, 0, 0.0, &[]),            // forest
        Px(5, 0, 1, 1, 0, 0.0, &[]),            // water
        Px(4, 0, 0, 1, 4, grazing(), &[4]),     // degraded grassland
        Px(0, 0, 0, 0, 255, f64::NAN, &[]),     // nodata
        Px(7, 5, 1, 1, 5, halophyte(), &[5]),   // saline-alkali
        Px(1, 0, 0, 0, 3, shelterbelt(), &[3]), // cropland
    ]
}

const W: usize = 4;
const H: usize = 4;

fn scene(dir: &Path) -> PathBuf {
    copy_models(dir);
    let px = pixels();
    write_raster(
        &dir.join("lc.tif"),
        W,
        H,
        GT30,
        Some(UTM45),
        Some(0.0),
        px.iter().map(|p| p.0).collect(),
    );
    write_raster(
        &dir.join("ds.tif"),
        W,
        H,
        GT30,
        Some(UTM45),
        Some(0.0),
        px.iter().map(|p| p.1).collect(),
    );
    write_raster(
        &dir.join("water.tif"),
        W,
        H,
        GT30,
        Some(UTM45),
        Some(255.0),
        px.iter().map(|p| p.2).collect(),
    );
    write_raster(
        &dir.join("degraded.tif"),
        W,
        H,
        GT30,
        Some(UTM45),
        Some(255.0),
        px.iter().map(|p| p.3).collect(),
    );
    write_raster(
        &dir.join("age.tif"),
        W,
        H,
        GT30,
        Some(UTM45),
        Some(-1.0),
        vec![30i16; W * H],
    );
    // Two zones: the left and the right half of the grid, on pixel edges.
    let half = |c0: f64, c1: f64| {
        let (x0, x1) = (X0 + 30.0 * c0, X0 + 30.0 * c1);
        let (y0, y1) = (Y0, Y0 - 30.0 * H as f64);
        format!("POLYGON (({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))")
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
        r#"name = "restoration"
base_year = 2020
models_dir = "models"
output_dir = "out"

[landcover]
path = "lc.tif"
scheme = "clcd"

[forest_age]
path = "age.tif"

[desert_subtype]
path = "ds.tif"

[masks]
water_access = { path = "water.tif" }
degraded_grassland = { path = "degraded.tif" }

[zones]
path = "zones.gpkg"
id_field = "id"
name_field = "name"
"#,
    )
    .unwrap();
    p
}

const NAMES: [&str; 5] = [
    "dune_afforestation_saline_drip",
    "dune_afforestation_rainfed",
    "oasis_shelterbelt",
    "grazing_exclusion",
    "halophyte_planting",
];

#[test]
fn potential_maps_zone_table_and_summary_by_hand() {
    let tmp = tempfile::tempdir().unwrap();
    let s = scene(tmp.path());
    let o = sinkmap(&["run", s.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = tmp.path().join("out");
    let (pot, _, _) = read_raster(&out.join("potential_tco2_per_ha_yr.tif"));
    let (best, _, _) = read_raster(&out.join("best_intervention.tif"));
    let px = pixels();
    for (i, p) in px.iter().enumerate() {
        assert_eq!(best[i] as u8, p.4, "pixel {i}: best intervention");
        if p.5.is_nan() {
            assert!(pot[i].is_nan(), "pixel {i} is nodata");
        } else {
            assert!(
                (pot[i] - p.5).abs() <= 1e-6 * p.5.max(1e-3),
                "pixel {i}: {} vs {}",
                pot[i],
                p.5
            );
        }
    }
    // Ineligible land never receives potential.
    for (i, p) in px.iter().enumerate() {
        if p.6.is_empty() && !p.5.is_nan() {
            assert_eq!(pot[i], 0.0);
            assert_eq!(best[i], 0.0);
        }
    }
    // Zone table: eligible area and potential per intervention, per half.
    let (h, rows) = read_csv(&out.join("zones.csv"));
    for (zone, cols) in [("L", 0..2usize), ("R", 2..4usize)] {
        let row = rows.iter().find(|r| r[0] == zone).unwrap();
        let get = |name: &str| -> f64 {
            row[h.iter().position(|c| c == name).unwrap()]
                .parse()
                .unwrap()
        };
        let in_zone: Vec<&Px> = px
            .iter()
            .enumerate()
            .filter(|(i, _)| cols.contains(&(i % W)))
            .map(|(_, p)| p)
            .collect();
        for (j, name) in NAMES.iter().enumerate() {
            let code = j as u8 + 1;
            let n = in_zone.iter().filter(|p| p.6.contains(&code)).count() as f64;
            let mean = [drip(), rainfed(), shelterbelt(), grazing(), halophyte()][j];
            let area = get(&format!("eligible_area_ha_{name}"));
            assert!(
                (area - n * HA).abs() < 1e-9,
                "{zone} {name}: {area} ha vs {}",
                n * HA
            );
            let potential = get(&format!("potential_tco2_yr_{name}"));
            assert!((potential - n * HA * mean).abs() < 1e-9, "{zone} {name}");
            // Eligible area ≤ the area of the classes the intervention may use.
            let class_col = match j {
                0 | 1 | 4 => "area_ha_barren",
                2 => "area_ha_cropland",
                _ => "area_ha_grassland",
            };
            assert!(area <= get(class_col) + 1e-12);
        }
        let best_sum: f64 = in_zone
            .iter()
            .filter(|p| !p.5.is_nan())
            .map(|p| p.5 * HA)
            .sum();
        assert!((get("potential_best_tco2_yr") - best_sum).abs() < 1e-9);
    }
    // summary.json agrees with the grid.
    let sm = json(&out.join("summary.json"));
    let r = &sm["restoration"];
    assert_eq!(r["period_start_year"], 2020);
    let total_best: f64 = px.iter().filter(|p| !p.5.is_nan()).map(|p| p.5 * HA).sum();
    assert!((r["potential_best_tco2_yr"].as_f64().unwrap() - total_best).abs() < 1e-9);
    for (j, iv) in r["interventions"].as_array().unwrap().iter().enumerate() {
        let mean = [drip(), rainfed(), shelterbelt(), grazing(), halophyte()][j];
        assert!(
            (iv["mean_gain_tco2_per_ha_yr"].as_f64().unwrap() - mean).abs() < 1e-12,
            "{}",
            iv["name"]
        );
    }
    // The legend is in the metadata.
    use gdal::Metadata;
    let ds = gdal::Dataset::open(out.join("best_intervention.tif")).unwrap();
    let legend = ds.metadata_item("SINKMAP_LEGEND", "").unwrap();
    assert!(
        legend.contains("4=grazing_exclusion") && legend.starts_with("0=none"),
        "{legend}"
    );
}

fn project_file(dir: &Path, intervention: &str, extra: &str, polygon: &str) -> PathBuf {
    let p = dir.join("project.toml");
    std::fs::write(
        &p,
        format!(
            r#"name = "test"
scene = "scene.toml"
intervention = "{intervention}"
start_year = 2025
end_year = 2035
discount_rate = 0.05
buffer_percent = 10.0
{extra}
[[price]]
year = 2025
yuan_per_tco2 = 50.0

[[price]]
year = 2035
yuan_per_tco2 = 100.0

[polygon]
{polygon}
"#
        ),
    )
    .unwrap();
    p
}

fn whole_grid_wkt() -> String {
    format!(
        "wkt = \"POLYGON (({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))\"\ncrs = \"EPSG:32645\"",
        x0 = X0,
        x1 = X0 + 120.0,
        y0 = Y0,
        y1 = Y0 - 120.0
    )
}

#[test]
fn project_tables_follow_the_hand_computed_trajectories() {
    let tmp = tempfile::tempdir().unwrap();
    scene(tmp.path());
    // Grazing exclusion on all eligible land (2 degraded grassland pixels), all at once.
    let p = project_file(tmp.path(), "grazing_exclusion", "", &whole_grid_wkt());
    let out = tmp.path().join("proj");
    let o = sinkmap(&[
        "project",
        p.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (h, rows) = read_csv(&out.join("project.csv"));
    let col = |r: &Vec<String>, n: &str| -> f64 {
        r[h.iter().position(|c| c == n).unwrap()].parse().unwrap()
    };
    assert_eq!(rows.len(), 11);
    let area = 2.0 * HA;
    let mut cum = 0.0;
    let mut pv_value = 0.0;
    for (k, r) in rows.iter().enumerate() {
        let add = area * grazing_gain(k as u32);
        assert!((col(r, "additional_tco2") - add).abs() < 1e-12, "year {k}");
        // Grassland's baseline sink is 0 (steady state), so project = additional.
        assert!((col(r, "project_sink_tco2") - col(r, "baseline_sink_tco2") - add).abs() < 1e-12);
        assert!((col(r, "credited_tco2") - 0.9 * add).abs() < 1e-12);
        cum += col(r, "credited_tco2");
        assert!((col(r, "cumulative_credited_tco2") - cum).abs() < 1e-9);
        let price = 50.0 + 5.0 * k as f64;
        assert!((col(r, "price_yuan_per_tco2") - price).abs() < 1e-9);
        pv_value += 0.9 * add * price / 1.05f64.powi(k as i32);
    }
    let t = json(&out.join("project.json"));
    assert!(
        (t["credited_tco2"].as_f64().unwrap() - cum).abs() < 1e-9,
        "cumulative = sum of the yearly rows"
    );
    assert!((t["eligible_area_ha"].as_f64().unwrap() - area).abs() < 1e-12);
    let cost = 600.0 * area;
    assert!((t["cost_yuan"].as_f64().unwrap() - cost).abs() < 1e-9);
    assert!((t["npv_yuan"].as_f64().unwrap() - (pv_value - cost)).abs() < 1e-6);
    assert!((t["cost_per_tco2_yuan"].as_f64().unwrap() - cost / cum).abs() < 1e-9);
    assert_eq!(t["cost_is_placeholder"], true);

    // Shelterbelts with a rollout: 3 cropland pixels (0.27 ha) at 0.1 ha per year.
    let p = project_file(
        tmp.path(),
        "oasis_shelterbelt",
        "rollout_ha_per_yr = 0.1",
        &whole_grid_wkt(),
    );
    let o = sinkmap(&[
        "project",
        p.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (h, rows) = read_csv(&out.join("project.csv"));
    let col = |r: &Vec<String>, n: &str| -> f64 {
        r[h.iter().position(|c| c == n).unwrap()].parse().unwrap()
    };
    let c = |t: f64| 100.0 * (1.0 - (-0.1 * t).exp()).powi(2);
    let gain = |k: i32| (c(k as f64 + 1.0) - c(k as f64)) * K * 0.9 * 0.07;
    let cohorts = [(0, 0.1), (1, 0.1), (2, 0.07)];
    for (k, r) in rows.iter().enumerate() {
        let k = k as i32;
        let want: f64 = cohorts
            .iter()
            .filter(|(s, _)| *s <= k)
            .map(|(s, a)| a * gain(k - s))
            .sum();
        assert!(
            (col(r, "additional_tco2") - want).abs() < 1e-12,
            "year {k}: {} vs {want}",
            col(r, "additional_tco2")
        );
        let planted: f64 = cohorts
            .iter()
            .filter(|(s, _)| *s == k)
            .map(|(_, a)| a)
            .sum();
        assert!((col(r, "planted_in_year_ha") - planted).abs() < 1e-12);
    }
}

#[test]
fn bad_projects_give_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    scene(tmp.path());
    let fails = |p: PathBuf, needle: &str| {
        let out = tmp.path().join("bad");
        let o = sinkmap(&[
            "project",
            p.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let err = stderr(&o);
        assert_handled_failure(&o);
        let line = err.lines().find(|l| l.starts_with("error:")).unwrap();
        assert!(line.contains(needle), "'{needle}' not in: {line}");
        assert!(list(&out).is_empty());
    };
    // A polygon over the forest and water pixels only (row 2, columns 2–3): nothing eligible.
    let no_land = format!(
        "wkt = \"POLYGON (({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))\"\ncrs = \"EPSG:32645\"",
        x0 = X0 + 60.0,
        x1 = X0 + 120.0,
        y0 = Y0 - 60.0,
        y1 = Y0 - 90.0
    );
    fails(
        project_file(tmp.path(), "grazing_exclusion", "", &no_land),
        "covers no land eligible for 'grazing_exclusion'",
    );
    fails(
        project_file(tmp.path(), "tree_magic", "", &whole_grid_wkt()),
        "unknown intervention 'tree_magic'",
    );
    let p = project_file(tmp.path(), "grazing_exclusion", "", &whole_grid_wkt());
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("start_year = 2025", "start_year = 2070");
    std::fs::write(&p, text).unwrap();
    fails(p.clone(), "start year 2070 is after the horizon 2035");
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("start_year = 2070", "start_year = 2025")
        .replace("yuan_per_tco2 = 100.0", "yuan_per_tco2 = -5.0");
    std::fs::write(&p, text).unwrap();
    fails(p, "price -5 yuan/t CO2 in 2035 is negative");
    fails(
        project_file(
            tmp.path(),
            "grazing_exclusion",
            "planted_area_ha = 50.0",
            &whole_grid_wkt(),
        ),
        "exceeds the 0.18 ha eligible",
    );
}

/// Every intervention's project table against its trajectory by hand (all eligible land,
/// planted in the start year).
#[test]
fn every_intervention_project_table_by_hand() {
    let tmp = tempfile::tempdir().unwrap();
    scene(tmp.path());
    let c = |t: f64| 100.0 * (1.0 - (-0.1 * t).exp()).powi(2);
    type Gain = Box<dyn Fn(u32) -> f64>;
    let gains: [(&str, Gain); 5] = [
        (
            NAMES[0],
            Box::new(|k| if k < 25 { 0.8 * K * 0.85 } else { 0.0 }),
        ),
        (
            NAMES[1],
            Box::new(|k| if k < 30 { 0.15 * K * 0.5 } else { 0.0 }),
        ),
        (
            NAMES[2],
            Box::new(move |k| (c(k as f64 + 1.0) - c(k as f64)) * K * 0.9 * 0.07),
        ),
        (NAMES[3], Box::new(grazing_gain)),
        (
            NAMES[4],
            Box::new(|k| if k < 20 { 0.45 * K * 0.7 } else { 0.0 }),
        ),
    ];
    for (j, (name, gain)) in gains.iter().enumerate() {
        let code = j as u8 + 1;
        let area = pixels().iter().filter(|p| p.6.contains(&code)).count() as f64 * HA;
        let p = project_file(tmp.path(), name, "end_year = 2060", &whole_grid_wkt());
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("end_year = 2035\n", "");
        std::fs::write(&p, text).unwrap();
        let out = tmp.path().join(format!("p{code}"));
        let o = sinkmap(&[
            "project",
            p.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let (h, rows) = read_csv(&out.join("project.csv"));
        let col = |r: &Vec<String>, n: &str| -> f64 {
            r[h.iter().position(|c| c == n).unwrap()].parse().unwrap()
        };
        assert_eq!(rows.len(), 36, "{name}: 2025–2060");
        let mut sum = 0.0;
        for (k, r) in rows.iter().enumerate() {
            let want = area * gain(k as u32);
            assert!(
                (col(r, "additional_tco2") - want).abs() < 1e-12,
                "{name} year {k}: {} vs {want}",
                col(r, "additional_tco2")
            );
            sum += col(r, "credited_tco2");
        }
        let t = json(&out.join("project.json"));
        assert!(
            (t["credited_tco2"].as_f64().unwrap() - sum).abs() < 1e-9,
            "{name}"
        );
        assert!(
            (t["eligible_area_ha"].as_f64().unwrap() - area).abs() < 1e-12,
            "{name}"
        );
    }
}

/// The raster attribute table of band 1 as (column names, rows of strings).
fn attribute_table(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    use std::ffi::CStr;
    let ds = gdal::Dataset::open(path).unwrap();
    let band = ds.rasterband(1).unwrap();
    unsafe {
        let rat = gdal_sys::GDALGetDefaultRAT(band.c_rasterband());
        assert!(
            !rat.is_null(),
            "{}: no raster attribute table",
            path.display()
        );
        let (nc, nr) = (
            gdal_sys::GDALRATGetColumnCount(rat),
            gdal_sys::GDALRATGetRowCount(rat),
        );
        let s = |p: *const std::os::raw::c_char| CStr::from_ptr(p).to_string_lossy().into_owned();
        let cols = (0..nc)
            .map(|c| s(gdal_sys::GDALRATGetNameOfCol(rat, c)))
            .collect();
        let rows = (0..nr)
            .map(|r| {
                (0..nc)
                    .map(|c| s(gdal_sys::GDALRATGetValueAsString(rat, r, c)))
                    .collect()
            })
            .collect();
        (cols, rows)
    }
}

/// Category names of band 1 (index = pixel value).
fn category_names(path: &Path) -> Vec<String> {
    let ds = gdal::Dataset::open(path).unwrap();
    let band = ds.rasterband(1).unwrap();
    let mut out = Vec::new();
    unsafe {
        // GDAL 3.6's GeoTIFF driver reads the .aux.xml lazily, and asking for category names
        // alone does not trigger it (gdalinfo asks for other things first): ask for the table.
        gdal_sys::GDALGetDefaultRAT(band.c_rasterband());
        let p = gdal_sys::GDALGetRasterCategoryNames(band.c_rasterband());
        let mut i = 0;
        while !p.is_null() && !(*p.add(i)).is_null() {
            out.push(
                std::ffi::CStr::from_ptr(*p.add(i))
                    .to_string_lossy()
                    .into_owned(),
            );
            i += 1;
        }
    }
    out
}

/// Checks the colour table, category names and attribute table of a best-intervention map of
/// the hand-made scene: names from the catalogue, the report's palette, areas counted by hand.
fn check_classes(map: &Path) {
    let px = pixels();
    let palette = sinkmap::report::render::CATEGORIES;
    let names: Vec<&str> = std::iter::once("none").chain(NAMES).collect();
    assert_eq!(category_names(map), names, "{}", map.display());
    let ds = gdal::Dataset::open(map).unwrap();
    let band = ds.rasterband(1).unwrap();
    let table = band.color_table().expect("a colour table");
    for (code, c) in palette.iter().enumerate().take(names.len()) {
        let e = table.entry_as_rgb(code).unwrap();
        assert_eq!(
            [e.r, e.g, e.b],
            [c[0] as i16, c[1] as i16, c[2] as i16],
            "colour of code {code}"
        );
    }
    let (cols, rows) = attribute_table(map);
    assert_eq!(
        cols,
        ["value", "name", "colour", "red", "green", "blue", "alpha", "area_ha"]
    );
    assert_eq!(rows.len(), names.len());
    for (code, row) in rows.iter().enumerate() {
        let c = palette[code];
        assert_eq!(row[0], code.to_string());
        assert_eq!(row[1], names[code]);
        assert_eq!(row[2], format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2]));
        assert_eq!(row[3..6], [c[0], c[1], c[2]].map(|v| v.to_string()));
        let pixels = px.iter().filter(|p| p.4 as usize == code).count() as f64;
        let area: f64 = row[7].parse().unwrap();
        assert!(
            (area - pixels * HA).abs() < 1e-9,
            "code {code}: {area} ha, {pixels} pixels of {HA} ha by hand"
        );
    }
}

#[test]
fn best_intervention_map_carries_colours_names_and_areas() {
    let tmp = tempfile::tempdir().unwrap();
    let s = scene(tmp.path());
    let s = s.to_str().unwrap();
    let o = sinkmap(&["run", s, "--quiet", "--no-report"]);
    assert!(o.status.success(), "{}", stderr(&o));
    check_classes(&tmp.path().join("out/best_intervention.tif"));
    // In tiles and merged (areas summed over the merged map's own rows), and in tiled layout.
    let (a, b, m) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("m"),
    );
    for (tile, dir) in [("1/2", &a), ("2/2", &b)] {
        let d = dir.to_str().unwrap();
        let o = sinkmap(&[
            "run",
            s,
            "--quiet",
            "--no-report",
            "--tile",
            tile,
            "--out",
            d,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = sinkmap(&[
        "merge",
        s,
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        m.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    check_classes(&m.join("best_intervention.tif"));
    let t = tmp.path().join("t");
    let o = sinkmap(&[
        "run",
        s,
        "--quiet",
        "--no-report",
        "--layout",
        "tiled",
        "--out",
        t.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    check_classes(&t.join("best_intervention.tif"));
    // No temporary side-car file is left behind.
    for dir in [tmp.path().join("out"), m, t] {
        assert!(
            !list(&dir).iter().any(|f| f.starts_with(".sinkmap-partial")),
            "{:?}",
            list(&dir)
        );
    }
}

/// A map larger than GDAL's block cache has its first tiles on disk long before it is finished
/// (a 400 Mpx run does); a GeoTIFF then refuses a late colour table ("Cannot modify tag
/// PhotometricInterpretation while writing"). A 1 MB cache makes the sample scene behave the
/// same: its class map must come out as it does with the default cache.
#[test]
fn class_map_keeps_its_colours_when_tiles_reach_disk_early() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |out: &Path, layout: &str, cache: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sinkmap"));
        cmd.args(["run", "--quiet", "--no-report", "--layout", layout])
            .arg("--out")
            .arg(out)
            .current_dir(root());
        if let Some(c) = cache {
            cmd.env("GDAL_CACHEMAX", c);
        }
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{layout} {cache:?}: {}", stderr(&o));
        out.join("best_intervention.tif")
    };
    for layout in ["cog", "tiled"] {
        let normal = run(&tmp.path().join(format!("{layout}-normal")), layout, None);
        let small = run(
            &tmp.path().join(format!("{layout}-small")),
            layout,
            Some("1"),
        );
        let colours = |p: &Path| {
            let ds = gdal::Dataset::open(p).unwrap();
            let band = ds.rasterband(1).unwrap();
            let t = band.color_table().expect("a colour table");
            let px = band.read_band_as::<u8>().unwrap().data().to_vec();
            let e: Vec<_> = (0..t.entry_count())
                .map(|i| t.entry_as_rgb(i).map(|c| (c.r, c.g, c.b, c.a)))
                .collect();
            (e, px)
        };
        let (ce, pe) = colours(&normal);
        assert!(
            ce.len() > 1,
            "{layout}: colour table of {} entries",
            ce.len()
        );
        assert!(
            colours(&small) == (ce, pe),
            "{layout}: colours or pixels differ"
        );
        assert_eq!(category_names(&small), category_names(&normal), "{layout}");
        assert!(!category_names(&normal).is_empty(), "{layout}: no names");
        assert_eq!(
            attribute_table(&small),
            attribute_table(&normal),
            "{layout}"
        );
    }
}
