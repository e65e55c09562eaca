//! Projection, Monte Carlo and emission balance: closed forms, invariants, the emission
//! table, determinism, and clear errors on bad scenario files.

#![cfg(feature = "gdal")]

mod common;

use std::path::Path;

use common::*;
use sinkmap::accounting::projection::{plan, project, Rollout, RolloutFile, ZoneCohorts};
use sinkmap::accounting::uncertainty::{Dist, Uncertain};
use sinkmap::accounting::{emissions::EmissionFile, Projection};
use sinkmap::cube::{Cube, GRID_ZONE};
use sinkmap::model::{EcosystemClass, Models, Pools};

fn models() -> Models {
    shipped_models()
}

/// A cohort cell without a desert subtype.
fn cell(
    cube: &mut Cube,
    zone: &str,
    class: EcosystemClass,
    ft: Option<&str>,
    age: Option<u16>,
    intervention: Option<&str>,
    area: f64,
) {
    cube_cell(cube, zone, class, ft, age, None, intervention, area);
}

#[test]
fn a_single_cohort_reproduces_the_curve_increments() {
    let mut m = models();
    // The closed form below, independent of the shipped parameters.
    m.forest.types[0].curve = sinkmap::model::growth::Curve::Richards {
        a_tc_per_ha: 75.0,
        b_per_yr: 0.025,
        c: 2.5,
    };
    let mut cube = Cube::default();
    cell(
        &mut cube,
        "Z",
        EcosystemClass::Forest,
        Some("tianshan_spruce"),
        Some(10),
        None,
        100.0,
    );
    let z = ZoneCohorts::from_cube(&cube, "Z", &m);
    let p = project(&m, Pools::default(), &z, &[], &[], 2020, 2060);
    let c = |t: f64| 75.0 * (1.0 - (-0.025 * t).exp()).powf(2.5);
    for y in 0..=40 {
        let t = 10.0 + y as f64;
        let want = 100.0 * (c(t + 1.0) - c(t)) * 44.0 / 12.0;
        assert!(
            (p.gross[y][0] - want).abs() <= 1e-9 * want,
            "year {y}: {} vs {want}",
            p.gross[y][0]
        );
        assert!((p.stock[y][0] - 100.0 * c(t)).abs() <= 1e-9 * c(t) * 100.0);
    }
}

#[test]
fn restoration_cohorts_enter_in_the_scheduled_years() {
    let m = models();
    let mut cube = Cube::default();
    cell(
        &mut cube,
        "Z",
        EcosystemClass::Grassland,
        None,
        None,
        None,
        500.0,
    );
    cell(
        &mut cube,
        "Z",
        EcosystemClass::Grassland,
        None,
        None,
        Some("grazing_exclusion"),
        300.0,
    );
    let z = ZoneCohorts::from_cube(&cube, "Z", &m);
    let names: Vec<String> = m
        .restoration
        .as_ref()
        .unwrap()
        .interventions
        .iter()
        .map(|i| i.name.clone())
        .collect();
    let j = names.iter().position(|n| n == "grazing_exclusion").unwrap();
    let rules = vec![Rollout {
        intervention: "grazing_exclusion".into(),
        zone: None,
        start_year: 2025,
        ha_per_yr: Some(100.0),
        all_eligible_by_year: None,
    }];
    let pl = plan(&rules, "Z", &names, &z.eligible, 2060);
    assert_eq!(
        pl[j],
        vec![(2025, 100.0), (2026, 100.0), (2027, 100.0)],
        "capped by the 300 ha eligible"
    );
    let p = project(&m, Pools::default(), &z, &pl, &[], 2020, 2060);
    let col = m.forest.types.len() + 4 + 7 + j;
    let gain = |k: i32| {
        if k < 20 {
            0.6 * (1.0 - (k as f64 + 0.5) / 20.0) * 44.0 / 12.0
        } else {
            0.0
        }
    };
    for y in 2020..=2060 {
        let want: f64 = [2025, 2026, 2027]
            .iter()
            .filter(|s| **s <= y)
            .map(|s| 100.0 * gain(y - s))
            .sum();
        assert!(
            (p.gross[(y - 2020) as usize][col] - want).abs() < 1e-9,
            "{y}"
        );
    }
    assert_eq!(p.gross[4][col], 0.0, "nothing before the start year");
}

fn sample_cube() -> Cube {
    let tmp = tempfile::tempdir().unwrap();
    let scene = synth_scene(tmp.path(), 160, 110, 9);
    let o = sinkmap(&["run", scene.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    Cube::read_csv(&tmp.path().join("out/cube.csv")).unwrap()
}

fn uncertain(m: &Models) -> Vec<Uncertain> {
    let mut n = m.clone();
    [
        (
            "forest.tianshan_spruce.a_tc_per_ha",
            Dist::Normal { se: 15.0 },
        ),
        (
            "desert.fixed_dune.crust_fixation_gc_per_m2_yr",
            Dist::Triangular {
                min: 1.0,
                mode: 3.0,
                max: 4.0,
            },
        ),
        (
            "restoration.grazing_exclusion.initial_rate_tc_per_ha_yr",
            Dist::Uniform { min: 0.2, max: 0.7 },
        ),
    ]
    .into_iter()
    .map(|(t, d)| Uncertain {
        target: t.into(),
        dist: d,
        nominal: *n.slot(t).unwrap(),
        correlated: None,
    })
    .collect()
}

fn proportional_rollout() -> RolloutFile {
    RolloutFile {
        rules: vec![Rollout {
            intervention: "grazing_exclusion".into(),
            zone: None,
            start_year: 2025,
            ha_per_yr: None,
            all_eligible_by_year: Some(2034),
        }],
        disturbance: Default::default(),
    }
}

#[test]
fn bands_are_ordered_zones_add_up_and_zero_width_draws_are_deterministic() {
    let cube = sample_cube();
    let m = models();
    let params = uncertain(&m);
    let acc = Projection {
        cube: &cube,
        nominal: &m,
        params: &params,
        pools: Pools::default(),
        rollout: &proportional_rollout(),
        base_year: 2020,
        until: 2060,
        draws: 200,
        seed: 7,
        map_error: None,
    }
    .account();
    for z in &acc.bands {
        for y in z {
            for b in y {
                assert!(b.p05 <= b.p50 && b.p50 <= b.p95, "{b:?}");
            }
        }
    }
    // Zones (+ outside) add up to the region for every year and draw, and to the projection of
    // the whole grid computed independently from the grid's own cells.
    let mut grid_only = Cube::default();
    grid_only.zone_names.insert(GRID_ZONE.into(), "grid".into());
    for (k, v) in cube.cells.iter().filter(|(k, _)| k.zone_id == GRID_ZONE) {
        grid_only.cells.insert(k.clone(), *v);
    }
    let g = Projection {
        cube: &grid_only,
        nominal: &m,
        params: &params,
        pools: Pools::default(),
        rollout: &proportional_rollout(),
        base_year: 2020,
        until: 2060,
        draws: 200,
        seed: 7,
        map_error: None,
    }
    .account();
    let region = acc.zones.len() - 1;
    for d in 0..200 {
        for y in 0..acc.years.len() {
            let sum: f64 = (0..region).map(|z| acc.draw_totals[d][z][y]).sum();
            let r = acc.draw_totals[d][region][y];
            assert!(rel_close(sum, r, 1e-12), "draw {d} year {y}");
            let grid = g.draw_totals[d][0][y];
            assert!(
                rel_close(r, grid, 1e-9),
                "draw {d} year {y}: zones {r} vs grid {grid}"
            );
        }
    }
    // Zero-width distributions: every draw equals the deterministic run.
    let zero: Vec<Uncertain> = params
        .iter()
        .map(|p| Uncertain {
            dist: Dist::Uniform {
                min: p.nominal,
                max: p.nominal,
            },
            ..p.clone()
        })
        .collect();
    let z = Projection {
        cube: &cube,
        nominal: &m,
        params: &zero,
        pools: Pools::default(),
        rollout: &proportional_rollout(),
        base_year: 2020,
        until: 2060,
        draws: 20,
        seed: 7,
        map_error: None,
    }
    .account();
    let total = z.components.len() - 1;
    for d in 0..20 {
        for y in 0..z.years.len() {
            assert_eq!(z.draw_totals[d][region][y], z.net[region][y][total]);
        }
    }
}

#[test]
fn monte_carlo_mean_converges_to_the_analytic_mean_of_a_linear_model() {
    let m = models();
    let mut cube = Cube::default();
    cell(
        &mut cube,
        "Z",
        EcosystemClass::Grassland,
        None,
        None,
        None,
        1000.0,
    );
    let mut n = m.clone();
    let p = vec![Uncertain {
        target: "other.grassland.sink_tc_per_ha_yr".into(),
        dist: Dist::Uniform { min: 0.1, max: 0.5 },
        nominal: *n.slot("other.grassland.sink_tc_per_ha_yr").unwrap(),
        correlated: None,
    }];
    let acc = Projection {
        cube: &cube,
        nominal: &m,
        params: &p,
        pools: Pools::default(),
        rollout: &RolloutFile::default(),
        base_year: 2020,
        until: 2022,
        draws: 20_000,
        seed: 3,
        map_error: None,
    }
    .account();
    let total = acc.components.len() - 1;
    let mean = acc.bands[0][0][total].mean;
    let analytic = 1000.0 * 0.3 * 44.0 / 12.0;
    assert!(
        (mean - analytic).abs() < 0.01 * analytic,
        "{mean} vs {analytic}"
    );
    // The 5 % and 95 % points of a uniform are at 0.12 and 0.48.
    assert!((acc.bands[0][0][total].p05 - 1000.0 * 0.12 * 44.0 / 12.0).abs() < 0.02 * analytic);
}

#[test]
fn the_emission_table_reproduces_every_listed_number() {
    let f = EmissionFile::load(&root().join("models/emissions/xinjiang.toml"), 2020, 2060).unwrap();
    let get = |name: &str, y: i32| {
        f.series
            .iter()
            .find(|s| s.name == name)
            .unwrap()
            .at(y)
            .unwrap()
    };
    for (y, v) in [
        (2000, 78.0),
        (2009, 202.0),
        (2014, 312.0),
        (2019, 440.0),
        (2020, 457.0),
        (2021, 474.0),
        (2022, 495.0),
    ] {
        assert_eq!(get("historical", y), v);
    }
    for (y, v) in [(2024, 520.0), (2030, 610.0), (2035, 580.0)] {
        assert_eq!(get("planning_targets", y), v);
    }
    let t = f
        .series
        .iter()
        .find(|s| s.name == "planning_targets")
        .unwrap();
    assert_eq!(
        t.indicators["gdp_trillion_yuan"],
        vec![(2024, 2.05), (2030, 2.92), (2035, 3.71)]
    );
    assert_eq!(
        t.indicators["per_capita_t_co2"],
        vec![(2024, 20.1), (2030, 24.0), (2035, 22.3)]
    );
    assert_eq!(
        t.indicators["intensity_t_co2_per_10k_yuan"],
        vec![(2024, 2.5), (2030, 2.09), (2035, 1.6)]
    );
    for (name, pts) in [
        ("baseline", vec![(2025, 500.0), (2060, 623.0)]),
        ("clean_air", vec![(2025, 516.0), (2060, 565.0)]),
        (
            "on_time_peak_clean_air",
            vec![(2025, 461.0), (2030, 473.0), (2060, 29.0)],
        ),
        (
            "early_peak_net_zero_clean_air",
            vec![(2025, 455.0), (2030, 401.0), (2045, 181.0), (2060, 29.0)],
        ),
        (
            "on_time_peak_net_zero_clean_air",
            vec![(2025, 462.0), (2030, 483.0), (2045, 270.0), (2060, 29.0)],
        ),
    ] {
        for (y, v) in pts {
            assert_eq!(get(name, y), v, "{name} {y}");
        }
    }
    assert_eq!(f.reference(2024), Some(520.0));
}

fn balance_fails(dir: &Path, scene: &Path, body: &str, needle: &str) {
    let p = dir.join("bad_scenarios.toml");
    std::fs::write(&p, body).unwrap();
    let o = sinkmap(&[
        "balance",
        scene.to_str().unwrap(),
        "--scenarios",
        p.to_str().unwrap(),
        "--draws",
        "5",
        "--quiet",
    ]);
    let err = stderr(&o);
    assert_handled_failure(&o);
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap();
    assert!(
        line.contains("bad_scenarios.toml") && line.contains(needle),
        "'{needle}' not in: {line}"
    );
}

#[test]
fn cli_tables_are_byte_identical_across_threads_and_bad_scenarios_fail_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let scene = synth_scene(tmp.path(), 120, 90, 4);
    let s = scene.to_str().unwrap();
    let o = sinkmap(&["run", s, "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut seen: Option<Vec<Vec<u8>>> = None;
    for t in ["1", "2", "3"] {
        let out = tmp.path().join(format!("acc{t}"));
        let o = sinkmap(&[
            "balance",
            s,
            "--draws",
            "300",
            "--seed",
            "11",
            "--threads",
            t,
            "--allow-subregion-balance",
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let files: Vec<Vec<u8>> = [
            "trajectory.csv",
            "sink_inputs.csv",
            "balance.csv",
            "accounting.json",
        ]
        .iter()
        .map(|f| std::fs::read(out.join(f)).unwrap())
        .collect();
        match &seen {
            None => seen = Some(files),
            Some(f) => assert!(f == &files, "threads {t} changed a table"),
        }
    }
    // The balance uses the scenario values at their years.
    let out = tmp.path().join("acc1");
    let (h, rows) = read_csv(&out.join("balance.csv"));
    let e = h.iter().position(|c| c == "emissions_mt_co2").unwrap();
    let row = rows
        .iter()
        .find(|r| r[0] == "2045" && r[1] == "early_peak_net_zero_clean_air")
        .unwrap();
    assert_eq!(row[e].parse::<f64>().unwrap(), 181.0);
    let head = json(&out.join("accounting.json"));
    assert_eq!(head["reference_emissions_mt_co2"], 520.0);

    // A per-zone scenario is balanced against that zone's sink.
    let zs = tmp.path().join("zone_scen.toml");
    let region_file =
        std::fs::read_to_string(root().join("models/emissions/xinjiang.toml")).unwrap();
    std::fs::write(
        &zs,
        region_file + "\n[[series]]\nname = \"syn01_plan\"\nkind = \"scenario\"\nzone_id = \"SYN01\"\nsource = \"test\"\npoints = [[2025, 2.0], [2060, 0.01]]\n",
    )
    .unwrap();
    let zout = tmp.path().join("zone_acc");
    let o = sinkmap(&[
        "balance",
        s,
        "--draws",
        "50",
        "--scenarios",
        zs.to_str().unwrap(),
        "--allow-subregion-balance",
        "--out",
        zout.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (h, rows) = read_csv(&zout.join("balance.csv"));
    let zc = h.iter().position(|c| c == "zone_id").unwrap();
    let p50 = h.iter().position(|c| c == "net_flux_mt_co2_p50").unwrap();
    let r2060 = rows
        .iter()
        .find(|r| r[1] == "syn01_plan" && r[0] == "2060")
        .unwrap();
    assert_eq!(r2060[zc], "SYN01");
    let (th, trows) = read_csv(&zout.join("trajectory.csv"));
    let tp = th.iter().position(|c| c == "net_flux_tco2_yr_p50").unwrap();
    let t = trows
        .iter()
        .find(|r| r[0] == "SYN01" && r[2] == "2060" && r[3] == "total")
        .unwrap();
    assert!(
        (r2060[p50].parse::<f64>().unwrap() - t[tp].parse::<f64>().unwrap() / 1e6).abs() < 1e-12
    );

    let d = tmp.path();
    let head_txt = "region = \"X\"\nunit = \"Mt CO2\"\n[[series]]\nname = \"s\"\nkind = \"scenario\"\nsource = \"t\"\n";
    balance_fails(
        d,
        &scene,
        &format!("{head_txt}points = [[2025, 400.0], [2050, 100.0]]\n"),
        "gap",
    );
    balance_fails(
        d,
        &scene,
        &format!("{head_txt}points = [[2025, 400.0], [2040, -3.0], [2060, 10.0]]\n"),
        "negative",
    );
    balance_fails(
        d,
        &scene,
        &format!("{head_txt}points = [[2025, 400.0], [2025, 390.0], [2060, 10.0]]\n"),
        "overlap",
    );
    balance_fails(
        d,
        &scene,
        &format!("{head_txt}points = [[2025, 400.0], [2060, 10.0], [2070, 5.0]]\n"),
        "outside the projection",
    );
}
