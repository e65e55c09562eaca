//! docs/guide.md's walkthrough, executed as written: small files in the formats it names are
//! generated, then every `sh` block of section 2 runs in order (bash, `sinkmap` on the PATH)
//! and every file block (`# file: NAME` / `<!-- file: NAME -->`) is written.

#![cfg(feature = "gdal")]

mod common;

use std::path::Path;
use std::process::Command;

/// (kind, content) of the code blocks of the walkthrough section, in order.
fn walkthrough_blocks(md: &str) -> Vec<(String, String)> {
    let start = md.find("## 2. Walkthrough").expect("walkthrough section");
    let end = md[start..].find("\n## 3.").map(|e| start + e).unwrap();
    let mut blocks = Vec::new();
    let mut lines = md[start..end].lines();
    while let Some(l) = lines.next() {
        if let Some(kind) = l.strip_prefix("```") {
            let mut body = String::new();
            for b in lines.by_ref() {
                if b.starts_with("```") {
                    break;
                }
                body += b;
                body.push('\n');
            }
            blocks.push((kind.trim().to_string(), body));
        }
    }
    blocks
}

/// WorldCover code of a pixel at (lon, lat): forest in the north, grassland, cropland, bare and
/// a lake; nodata in one corner.
fn wc_code(lon: f64, lat: f64) -> u8 {
    if lon < 85.01 && lat < 44.01 {
        0
    } else if lat > 44.06 {
        10
    } else if lat > 44.045 {
        30
    } else if (lon * 100.0).floor() as i64 % 3 == 0 {
        40
    } else if lon > 85.17 && lat < 44.02 {
        80
    } else {
        60
    }
}

fn raster_4326<T: gdal::raster::GdalType + Copy>(
    path: &Path,
    lon0: f64,
    w: usize,
    h: usize,
    nodata: Option<f64>,
    f: impl Fn(f64, f64) -> T,
) {
    let d = 0.001;
    let data: Vec<T> = (0..w * h)
        .map(|i| {
            let (c, r) = (i % w, i / w);
            f(lon0 + (c as f64 + 0.5) * d, 44.1 - (r as f64 + 0.5) * d)
        })
        .collect();
    common::write_raster(
        path,
        w,
        h,
        [lon0, d, 0.0, 44.1, 0.0, -d],
        Some(4326),
        nodata,
        data,
    );
}

fn sh(dir: &Path, cmd: &str, path_env: &str) {
    let o = Command::new("bash")
        .args(["-euo", "pipefail", "-c", cmd])
        .current_dir(dir)
        .env("PATH", path_env)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "guide block failed:\n{cmd}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn the_guide_walkthrough_runs_as_written() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    std::fs::create_dir_all(dir.join("wc")).unwrap();
    // Two WorldCover-like tiles side by side (EPSG:4326, Byte, nodata 0).
    for (name, lon0) in [("N44E085", 85.0), ("N44E086", 85.1)] {
        raster_4326(
            &dir.join(format!("wc/ESA_WorldCover_10m_2021_v200_{name}_Map.tif")),
            lon0,
            100,
            100,
            Some(0.0),
            wc_code,
        );
    }
    // A forest-type product with its own codes: 11 spruce, 12 larch, 13 poplar plantation,
    // 14 a type the recoding leaves out.
    raster_4326(
        &dir.join("forest_type_product.tif"),
        85.0,
        200,
        100,
        Some(0.0),
        |lon, _| match lon {
            l if l < 85.05 => 11u8,
            l if l < 85.1 => 12,
            l if l < 85.15 => 13,
            _ => 14,
        },
    );
    // Forest age with -1 for non-forest, made in EPSG:4326 and warped to an Albers CRS at 30 m.
    raster_4326(&dir.join("age_ll.tif"), 85.0, 200, 100, None, |lon, lat| {
        if wc_code(lon, lat) == 10 {
            (20.0 + 400.0 * (lon - 85.0)).round() as i16
        } else {
            -1i16
        }
    });
    sh(
        dir,
        "gdalwarp -q -t_srs '+proj=aea +lat_1=25 +lat_2=47 +lat_0=0 +lon_0=105 +datum=WGS84 +units=m' \
         -tr 30 30 -r near -dstnodata -32768 age_ll.tif forest_age.tif && rm age_ll.tif",
        &std::env::var("PATH").unwrap(),
    );
    // Two counties with Chinese names, as a shapefile in UTF-8.
    std::fs::write(
        dir.join("counties.geojson"),
        r#"{"type":"FeatureCollection","features":[
{"type":"Feature","properties":{"code":"652324","name":"玛纳斯县"},"geometry":{"type":"Polygon","coordinates":[[[85.0,44.0],[85.1,44.0],[85.1,44.1],[85.0,44.1],[85.0,44.0]]]}},
{"type":"Feature","properties":{"code":"654223","name":"沙湾市"},"geometry":{"type":"Polygon","coordinates":[[[85.1,44.0],[85.2,44.0],[85.2,44.1],[85.1,44.1],[85.1,44.0]]]}}]}"#,
    )
    .unwrap();
    sh(
        dir,
        "ogr2ogr -q -f 'ESRI Shapefile' -lco ENCODING=UTF-8 counties.shp counties.geojson && rm counties.geojson",
        &std::env::var("PATH").unwrap(),
    );

    // The guide, block by block.
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_sinkmap")).parent().unwrap();
    let path_env = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let md = std::fs::read_to_string(common::root().join("docs/guide.md")).unwrap();
    let blocks = walkthrough_blocks(&md);
    let mut ran = 0;
    for (kind, body) in &blocks {
        let first = body.lines().next().unwrap_or("");
        let file = first
            .strip_prefix("# file: ")
            .or_else(|| {
                first
                    .strip_prefix("<!-- file: ")
                    .and_then(|r| r.strip_suffix(" -->"))
            })
            .map(str::trim);
        match (kind.as_str(), file) {
            ("sh", _) => {
                sh(dir, body, &path_env);
                ran += 1;
            }
            (_, Some(f)) => std::fs::write(dir.join(f), body).unwrap(),
            _ => {}
        }
    }
    assert!(ran >= 6, "only {ran} shell blocks in the walkthrough");

    // What the run must show.
    let out = dir.join("out");
    let zones = std::fs::read_to_string(out.join("zones.csv")).unwrap();
    assert!(
        zones.contains("玛纳斯县") && zones.contains("沙湾市"),
        "{zones}"
    );
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("玛纳斯县"));
    // The forest left without a type is shown in the report, with the summary's number.
    let i = report
        .find("id=\"h_assumed_type\" data-value=\"")
        .expect("assumed forest type in the report");
    let shown: f64 = report[i..].split('"').nth(3).unwrap().parse().unwrap();
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    // Area of the mosaic: the 0.2° × 0.1° box on the authalic sphere (within 0.5 % of the
    // ellipsoid here), less the nodata corner (10 × 10 pixels).
    let r = 6_371_007.2f64;
    let cell = |lat0: f64, lat1: f64, dlon: f64| {
        r * r * dlon.to_radians() * (lat1.to_radians().sin() - lat0.to_radians().sin()) / 1e4
    };
    let want = cell(44.0, 44.1, 0.2) - cell(44.0, 44.01, 0.01);
    let area = s["totals"]["area_ha"].as_f64().unwrap();
    assert!(
        (area - want).abs() / want < 0.005,
        "area {area} ha, expected about {want}"
    );
    // The recoding worked: the three recoded types are in the cube, no other type, and the
    // forest under code 14 (left out of the table) is counted as assumed.
    let cube = std::fs::read_to_string(out.join("cube.csv")).unwrap();
    for ty in ["tianshan_spruce", "altai_larch", "plantation_poplar_elm"] {
        assert!(cube.contains(ty), "{ty} missing from the cube");
    }
    for ty in ["desert_poplar", "birch_broadleaf", "saxaul_tamarisk"] {
        assert!(!cube.contains(ty), "{ty} should not be in the cube");
    }
    let forest: f64 = s["classes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["class"] == "forest")
        .map(|c| c["area_ha"].as_f64().unwrap())
        .sum();
    let assumed = s["totals"]["forest_area_assumed_type_ha"].as_f64().unwrap();
    assert_eq!(shown, assumed);
    // Code 14 covers lon 85.15–85.2, a quarter of the forest band.
    assert!(
        (assumed / forest - 0.25).abs() < 0.02,
        "assumed {assumed} of {forest} ha"
    );
}
