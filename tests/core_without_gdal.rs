//! The GDAL-free core end to end, with and without the `gdal` feature: the shipped models
//! evaluate pixels into a cohort cube, the summary is built from it, the accounting projects
//! and balances it, and the report is drawn from the tables (no raster is read or written).

use std::path::Path;

use sinkmap::accounting::{self, Headline};
use sinkmap::config::{Models, Scene};
use sinkmap::cube::{quantize, Cube, CubeKey, GRID_ZONE};
use sinkmap::grid::{AreaModel, Grid};
use sinkmap::model::pixel::PixelValue;
use sinkmap::model::EcosystemClass;
use sinkmap::summary::{self, RunFacts, Summary};

/// WGS 84 (EPSG:4326) as WKT, written out so that no GDAL call is needed.
const WGS84_WKT: &str = r#"GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,AUTHORITY["EPSG","7030"]],AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],AXISORDER["Latitude",NORTH,"Longitude",EAST],AUTHORITY["EPSG","4326"]]"#;

fn rel_close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1e-300)
}

#[test]
fn models_cube_summary_accounting_and_report_from_tables() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scene = Scene::load(&root.join("rasters/sample/scene.toml")).unwrap();
    let models = Models::load(&scene).unwrap();
    let model = models.pixel_model(&scene).unwrap();

    // A 48 × 36 geographic grid in Xinjiang (≈ 0.5 km pixels), its pixels cycling through
    // every code of the scheme, forest types, ages 0–119 and desert subtypes.
    let grid = Grid {
        width: 48,
        height: 36,
        geo_transform: [86.0, 0.005, 0.0, 44.0, 0.0, -0.005],
        crs_wkt: WGS84_WKT.into(),
        area: AreaModel::Geographic {
            semi_major_m: 6_378_137.0,
            semi_minor_m: 6_356_752.314_245_179,
            radians_per_unit: std::f64::consts::PI / 180.0,
        },
    };
    let codes: Vec<i32> = models.scheme.codes.iter().map(|c| c.value).collect();
    let types: Vec<i32> = models.forest.types.iter().map(|t| t.code).collect();
    let subtypes: Vec<i32> = models.desert.subtypes.iter().map(|s| s.code).collect();
    let mut cube = Cube::default();
    cube.zone_names
        .insert(GRID_ZONE.into(), "whole grid".into());
    // The independent reference: plain f64 sums of area × density.
    let (mut area_ha, mut stock_tc, mut sink_tco2_yr) = (0.0, 0.0, 0.0);
    for row in 0..grid.height {
        let a = grid.pixel_area_ha(row);
        for col in 0..grid.width {
            let i = row * grid.width + col;
            let v = model
                .evaluate_observed(
                    codes[i % codes.len()],
                    Some((i % 120) as f64),
                    0.0,
                    Some(types[i % types.len()]),
                    Some(subtypes[i % subtypes.len()]),
                )
                .unwrap();
            add(&mut cube, &models, &v, a);
            area_ha += a;
            stock_tc += a * v.stock_tc_per_ha;
            sink_tco2_yr += a * v.sink_tco2_per_ha_yr;
        }
    }
    let totals = cube.totals(GRID_ZONE, None);
    assert!(rel_close(totals.area_ha, area_ha, 1e-12), "{totals:?}");
    assert!(rel_close(totals.stock_tc, stock_tc, 1e-12), "{totals:?}");
    assert!(
        rel_close(totals.sink_tco2_yr, sink_tco2_yr, 1e-12),
        "{totals:?}"
    );
    assert!(stock_tc > 0.0 && sink_tco2_yr > 0.0);

    // The summary from the cube, through its file.
    let facts = RunFacts {
        nodata_area_ha: 0.0,
        threads: 1,
        block_size_px: 16,
        seconds: 0.0,
    };
    let s = summary::build(&scene, &models, &grid, &cube, None, &facts);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    std::fs::write(out.join("summary.json"), s.to_json().unwrap()).unwrap();
    cube.write_csv(&out.join("cube.csv")).unwrap();
    let read = Summary::read(&out.join("summary.json")).unwrap();
    assert!(rel_close(read.totals.stock_tc, stock_tc, 1e-12));
    assert!(read.grid.geographic);

    // The accounting from the cube read back: its base-year gross sink is the map's sink.
    let cube = Cube::read_csv(&out.join("cube.csv")).unwrap();
    let mut opts = scene.accounting.as_ref().unwrap().options(Some(2));
    opts.draws = 200;
    opts.rollout = None;
    let head: Headline = accounting::run(&scene, &cube, out, &opts).unwrap();
    assert!(
        rel_close(
            head.region_gross_sink_base_year_tco2.nominal,
            sink_tco2_yr,
            1e-9
        ),
        "{} vs {sink_tco2_yr}",
        head.region_gross_sink_base_year_tco2.nominal
    );
    let b = &head.region_gross_sink_base_year_tco2;
    assert!(b.p05 <= b.p50 && b.p50 <= b.p95, "{b:?}");
    for f in [
        "trajectory.csv",
        "balance.csv",
        "sink_inputs.csv",
        "accounting.json",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    // The headline went into summary.json.
    let read = Summary::read(&out.join("summary.json")).unwrap();
    assert_eq!(read.accounting.map(|h| h.draws), Some(200));

    // The report from the tables: every figure it names is a PNG of the report's width.
    let html_path = sinkmap::report::build(out).unwrap();
    let html = std::fs::read_to_string(&html_path).unwrap();
    let figures: Vec<&str> = html
        .split("src=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|s| s.starts_with("data:image/png;base64,"))
        .collect();
    assert!(figures.len() >= 2, "{figures:?}");
    // Every figure is a decodable PNG, all of the report's one width.
    let sizes: Vec<(u32, u32)> = figures.iter().map(|f| png_size(f)).collect();
    assert!(
        sizes
            .iter()
            .all(|&(w, h)| w == sizes[0].0 && w >= 600 && h > 100),
        "{sizes:?}"
    );
    assert!(html.contains(&scene.name), "the report names the scene");
    // Without GDAL the report says which figures it left out; with GDAL it has no such note.
    assert_eq!(
        html.contains("Maps left out:"),
        cfg!(not(feature = "gdal")),
        "the note on maps left out"
    );
}

/// Width and height of a figure embedded as a `data:image/png;base64,` URI.
fn png_size(src: &str) -> (u32, u32) {
    use base64::Engine;
    let b64 = src.trim_start_matches("data:image/png;base64,");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = decoder.read_info().unwrap();
    (reader.info().width, reader.info().height)
}

/// Adds one pixel to the whole grid's cohort of its value (forest: type and age; barren: the
/// desert subtype; other classes: the class), as the raster passes do.
fn add(cube: &mut Cube, models: &Models, v: &PixelValue, area_ha: f64) {
    let class = v.class.unwrap_or(EcosystemClass::BuiltUp);
    let forest = class == EcosystemClass::Forest && v.forest_type.is_some() && v.age_yr.is_some();
    let key = CubeKey {
        zone_id: GRID_ZONE.into(),
        class,
        forest_type: v
            .forest_type
            .filter(|_| forest)
            .map(|t| models.forest.types[t as usize].name.clone()),
        age_yr: v.age_yr.filter(|_| forest),
        desert_subtype: v
            .desert_subtype
            .filter(|_| class == EcosystemClass::Barren)
            .map(|d| models.desert.subtypes[d as usize].name.clone()),
        intervention: None,
    };
    let c = cube.cells.entry(key).or_default();
    c.area += quantize(area_ha);
    c.stock += quantize(area_ha * v.stock_tc_per_ha);
    c.sink += quantize(area_ha * v.sink_tco2_per_ha_yr);
    c.inorganic += quantize(area_ha * v.desert_inorganic_tco2_per_ha_yr);
    if v.age_assumed {
        c.assumed_age_area += quantize(area_ha);
    }
    if v.type_assumed {
        c.assumed_type_area += quantize(area_ha);
    }
}
