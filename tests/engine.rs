//! The raster passes on the block engine give the same results, bit for bit, whatever the
//! block size (256, 512, 1024) and the thread count (1, 2, 3): `change` (map, transitions,
//! zone sums) and `project` (eligible area and baseline sink inside a polygon).

#![cfg(feature = "gdal")]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use sinkmap::change::ChangeSpec;
use sinkmap::config::Scene;
use sinkmap::engine::Tuning;
use sinkmap::zones::{ZoneSet, ZoneSource};

const W: usize = 600;
const H: usize = 400;

/// Every (block, threads) pair the tests compare: each block size, each thread count.
const TUNINGS: [(usize, usize); 5] = [(256, 1), (256, 2), (256, 3), (512, 2), (1024, 3)];

fn tuning(block: usize, threads: usize) -> Tuning {
    Tuning {
        block_size_px: Some(block),
        threads: Some(threads),
    }
}

/// Two synthetic years on the same grid (different seeds): scene A and the folder of B.
fn two_years(root: &Path) -> (PathBuf, PathBuf) {
    let a = synth_scene(&root.join("a"), W, H, 11);
    synth_scene(&root.join("b"), W, H, 12);
    (a, root.join("b/scene"))
}

fn bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn change_is_identical_for_any_block_size_and_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let (scene_path, b) = two_years(tmp.path());
    let scene = Scene::load(&scene_path).unwrap();
    let a = scene_path.parent().unwrap();
    let grid = sinkmap::raster::reference_grid(&a.join("landcover.tif"), 1).unwrap();
    let zones = ZoneSet::read(
        &ZoneSource {
            path: &a.join("zones.geojson"),
            layer: None,
            id_field: "zone_id",
            name_field: Some("name"),
            repair_invalid: false,
        },
        &grid,
    )
    .unwrap();
    let mut first: Option<(Vec<f64>, Vec<Vec<u8>>)> = None;
    for (block, threads) in TUNINGS {
        let spec = ChangeSpec {
            before: a.join("landcover.tif"),
            after: b.join("landcover.tif"),
            after_scheme: None,
            age_before: Some(a.join("forest_age.tif")),
            age_after: Some(b.join("forest_age.tif")),
            year_before: 2000,
            year_after: 2020,
            price_per_tc: 100.0,
            discount_rate_percent: 5.0,
            rate_change_percent: 0.0,
            tuning: tuning(block, threads),
        };
        let out = tmp.path().join(format!("change_{block}_{threads}"));
        let s = sinkmap::change::run(&scene, &spec, Some(&zones), &out).unwrap();
        // The grid's area is the sum of the zones' and the outside's (a check that the
        // zone sums are filled at all).
        let grid_area = s.zones[0].area_ha;
        let parts: f64 = s.zones[1..].iter().map(|z| z.area_ha).sum();
        assert!(grid_area > 0.0 && rel_close(grid_area, parts, 1e-9));
        let (map, _, _) = read_raster(&out.join("stock_change_tc_per_ha.tif"));
        assert!(
            map.iter().any(|v| v.is_finite() && *v != 0.0),
            "no change at all"
        );
        let tables: Vec<Vec<u8>> = ["transition.csv", "change_zones.csv", "change.json"]
            .iter()
            .map(|f| bytes(&out.join(f)))
            .collect();
        match &first {
            None => first = Some((map, tables)),
            Some((m0, t0)) => {
                assert!(
                    same_bits(m0, &map),
                    "map differs at block {block}, {threads} threads"
                );
                assert!(
                    t0 == &tables,
                    "tables differ at block {block}, {threads} threads"
                );
            }
        }
    }
}

#[test]
fn project_is_identical_for_any_block_size_and_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let scene_path = synth_scene(&tmp.path().join("a"), W, H, 11);
    // A polygon over most of the grid (84–90 °E, 42–46 °N), its edges inside pixels.
    let project = tmp.path().join("project.toml");
    std::fs::write(
        &project,
        format!(
            "name = \"test\"\nscene = \"{}\"\nintervention = \"grazing_exclusion\"\n\
             start_year = 2025\nend_year = 2040\ndiscount_rate = 0.03\nbuffer_percent = 10.0\n\
             [[price]]\nyear = 2025\nyuan_per_tco2 = 60.0\n\
             [polygon]\nwkt = \"POLYGON ((84.503 45.497, 89.4951 45.497, 89.4951 42.5033, 84.503 42.5033, 84.503 45.497))\"\n\
             crs = \"EPSG:4326\"\n",
            scene_path.display()
        ),
    )
    .unwrap();
    let spec = sinkmap::project::ProjectSpec::load(&project).unwrap();
    let mut first: Option<Vec<Vec<u8>>> = None;
    for (block, threads) in TUNINGS {
        let out = tmp.path().join(format!("project_{block}_{threads}"));
        let (totals, rows) = sinkmap::project::run(&spec, &out, &tuning(block, threads)).unwrap();
        assert!(!rows.is_empty());
        assert!(totals.eligible_area_ha > 0.0);
        let tables = vec![
            bytes(&out.join("project.csv")),
            bytes(&out.join("project.json")),
        ];
        match &first {
            None => first = Some(tables),
            Some(t0) => assert!(t0 == &tables, "block {block}, {threads} threads"),
        }
    }
}
