//! Carbon bookkeeping (docs/science.md §1): hand-computed cohorts, the mass balance
//! net flux = Δstock × 44/12 as a property over random cubes, rollouts and disturbance rates,
//! base-year agreement of the projection with the map, and nominal values inside their bands.

#![cfg(feature = "gdal")]

mod common;

use common::*;
use proptest::prelude::*;
use sinkmap::accounting::projection::{project, Rollout, RolloutFile, ZoneCohorts};
use sinkmap::accounting::uncertainty::uncertain_parameters;
use sinkmap::accounting::{Accounting, Projection};
use sinkmap::cube::Cube;
use sinkmap::io::files::read_toml;
use sinkmap::model::{EcosystemClass, Models, Pools};

const K: f64 = 44.0 / 12.0;

fn models() -> Models {
    shipped_models()
}

use common::cube_cell as cell;

/// A forest cohort with disturbance, by hand: Richards a = 45, b = 0.1, c = 2 (the plantation
/// curve, set here explicitly), 100 ha aged 10, 10 % disturbed at the end of each year.
#[test]
fn a_disturbed_cohort_by_hand() {
    let mut m = models();
    let t = m
        .forest
        .types
        .iter()
        .position(|t| t.name == "plantation_poplar_elm")
        .unwrap();
    m.forest.types[t].curve = sinkmap::model::growth::Curve::Richards {
        a_tc_per_ha: 45.0,
        b_per_yr: 0.1,
        c: 2.0,
    };
    let c = |a: f64| 45.0 * (1.0 - (-0.1 * a).exp()).powi(2);
    let mut cube = Cube::default();
    cell(
        &mut cube,
        "Z",
        EcosystemClass::Forest,
        Some("plantation_poplar_elm"),
        Some(10),
        None,
        None,
        100.0,
    );
    let z = ZoneCohorts::from_cube(&cube, "Z", &m);
    let mut d = vec![0.0; m.forest.types.len()];
    d[t] = 0.1;
    let p = project(&m, Pools::default(), &z, &[], &d, 2020, 2022);
    // 2020: 100 ha at age 10 grow to 11; then 10 ha emit C(11) (C(0) = 0).
    assert!((p.stock[0][t] - 100.0 * c(10.0)).abs() < 1e-9);
    assert!((p.gross[0][t] - 100.0 * (c(11.0) - c(10.0)) * K).abs() < 1e-9);
    assert!((p.emissions[0][t] - 10.0 * c(11.0) * K).abs() < 1e-9);
    let end0 = 90.0 * c(11.0);
    assert!((p.stock_end[0][t] - end0).abs() < 1e-9);
    // 2021: 90 ha at age 11 and 10 ha at age 0.
    assert!((p.stock[1][t] - end0).abs() < 1e-9);
    let g1 = 90.0 * (c(12.0) - c(11.0)) + 10.0 * c(1.0);
    assert!((p.gross[1][t] - g1 * K).abs() < 1e-9);
    let e1 = 9.0 * c(12.0) + 1.0 * c(1.0);
    assert!((p.emissions[1][t] - e1 * K).abs() < 1e-9);
    assert!((p.stock_end[1][t] - (81.0 * c(12.0) + 9.0 * c(1.0))).abs() < 1e-9);
    // No disturbance: the same cohort emits nothing and its gross sink is unchanged.
    let q = project(&m, Pools::default(), &z, &[], &[], 2020, 2020);
    assert_eq!(q.emissions[0][t], 0.0);
    assert_eq!(q.gross[0][t], p.gross[0][t]);
}

/// A logistic curve starts at C(0) = a/(1 + b) > 0: a restarting stand keeps C(0) and emits
/// only what lies above it; a planting along it gains C(k) − C(0) by year k.
#[test]
fn curves_above_zero_at_age_zero_create_no_carbon() {
    let mut m = models();
    let t = 4;
    m.forest.types[t].curve = sinkmap::model::growth::Curve::Logistic {
        a_tc_per_ha: 60.0,
        b: 9.0,
        c_per_yr: 0.1,
    };
    let c = |a: f64| 60.0 / (1.0 + 9.0 * (-0.1 * a).exp());
    let mut cube = Cube::default();
    let name = m.forest.types[t].name.clone();
    cell(
        &mut cube,
        "Z",
        EcosystemClass::Forest,
        Some(&name),
        Some(30),
        None,
        None,
        50.0,
    );
    cell(
        &mut cube,
        "Z",
        EcosystemClass::Cropland,
        None,
        None,
        None,
        Some("oasis_shelterbelt"),
        1000.0,
    );
    let z = ZoneCohorts::from_cube(&cube, "Z", &m);
    let mut d = vec![0.0; m.forest.types.len()];
    d[t] = 0.2;
    let r = m.restoration.as_ref().unwrap();
    let j = r
        .interventions
        .iter()
        .position(|i| i.name == "oasis_shelterbelt")
        .unwrap();
    let mut plan = vec![Vec::new(); r.interventions.len()];
    plan[j] = vec![(2020, 1000.0)];
    let p = project(&m, Pools::default(), &z, &plan, &d, 2020, 2025);
    // 10 ha disturbed at the end of 2020 emit C(31) − C(0) each.
    assert!((p.emissions[0][t] - 10.0 * (c(31.0) - c(0.0)) * K).abs() < 1e-9);
    assert!((p.stock_end[0][t] - (40.0 * c(31.0) + 10.0 * c(0.0))).abs() < 1e-9);
    // The shelterbelt (survival 0.9, area fraction 0.07) holds (C(3) − C(0)) on 1 Jan 2023.
    let col = m.forest.types.len() + 4 + 7 + j;
    let want = 1000.0 * 0.9 * 0.07 * (c(3.0) - c(0.0));
    assert!(
        (p.stock[3][col] - want).abs() < 1e-9,
        "{} vs {want}",
        p.stock[3][col]
    );
}

/// Desert components accumulate stocks of their own; the land keeps its base stock.
#[test]
fn desert_components_accumulate_by_hand() {
    let m = models();
    let mut cube = Cube::default();
    cell(
        &mut cube,
        "Z",
        EcosystemClass::Barren,
        None,
        None,
        Some("fixed_dune"),
        None,
        1000.0,
    );
    let z = ZoneCohorts::from_cube(&cube, "Z", &m);
    let p = project(&m, Pools::default(), &z, &[], &[], 2020, 2024);
    let nf = m.forest.types.len();
    let fd = m
        .desert
        .subtypes
        .iter()
        .find(|s| s.name == "fixed_dune")
        .unwrap();
    // crust: g C/m²/yr × 0.01 → t C/ha/yr, × 1000 ha.
    let crust_tc = fd.crust_fixation_gc_per_m2_yr * 0.01 * 1000.0;
    for y in 0..5 {
        assert!((p.gross[y][nf] - crust_tc * K).abs() < 1e-9);
        assert!((p.stock[y][nf] - crust_tc * y as f64).abs() < 1e-9);
        assert!((p.stock_end[y][nf] - crust_tc * (y + 1) as f64).abs() < 1e-9);
        assert!((p.stock[y][nf + 3] - 1000.0 * fd.biomass_tc_per_ha).abs() < 1e-9);
        assert_eq!(p.gross[y][nf + 3], 0.0);
    }
}

/// Restoration planted in a year has no carbon on that year's 1 January.
#[test]
fn restoration_stock_is_start_of_year() {
    let m = models();
    let mut cube = Cube::default();
    cell(
        &mut cube,
        "Z",
        EcosystemClass::Grassland,
        None,
        None,
        None,
        Some("grazing_exclusion"),
        100.0,
    );
    let z = ZoneCohorts::from_cube(&cube, "Z", &m);
    let r = m.restoration.as_ref().unwrap();
    let j = r
        .interventions
        .iter()
        .position(|i| i.name == "grazing_exclusion")
        .unwrap();
    let mut plan = vec![Vec::new(); r.interventions.len()];
    plan[j] = vec![(2021, 100.0)];
    let p = project(&m, Pools::default(), &z, &plan, &[], 2020, 2023);
    let col = m.forest.types.len() + 4 + 7 + j;
    let g = |k: u32| r.interventions[j].gain_tco2_per_ha_yr(&m.forest, k) * 100.0;
    assert_eq!(p.stock[1][col], 0.0, "planted 1 Jan 2021 with no carbon");
    assert!((p.stock_end[1][col] - g(0) / K).abs() < 1e-12);
    assert!((p.stock[3][col] - (g(0) + g(1)) / K).abs() < 1e-12);
}

fn close(a: f64, b: f64, scale: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-6 * scale)
}

/// The identity of docs/science.md §1 for every zone, year and component of an accounting.
fn assert_mass_balance(acc: &Accounting) {
    for z in 0..acc.zones.len() {
        for y in 0..acc.years.len() {
            for c in 0..acc.components.len() {
                let (s0, s1) = (acc.stock[z][y][c], acc.stock_end[z][y][c]);
                let net = acc.net[z][y][c];
                assert!(
                    close(net, (s1 - s0) * K, s0.abs()),
                    "zone {} year {} {}: net {net} vs Δstock×44/12 {}",
                    acc.zones[z].0,
                    acc.years[y],
                    acc.components[c],
                    (s1 - s0) * K
                );
                assert!(
                    close(net, acc.gross[z][y][c] - acc.emissions[z][y][c], s0.abs()),
                    "net = gross − emissions"
                );
                if y + 1 < acc.years.len() {
                    assert!(
                        close(s1, acc.stock[z][y + 1][c], s0.abs()),
                        "end = next start"
                    );
                }
            }
        }
    }
}

fn random_cube(
    forest: &[(usize, u16, f64, usize)],
    desert: &[(usize, f64, usize)],
    other: &[(usize, f64, usize)],
    eligible: &[(usize, f64, usize)],
    m: &Models,
) -> Cube {
    let mut cube = Cube::default();
    let zone = |i: usize| format!("Z{}", i % 3);
    for &(t, age, area, zi) in forest {
        let ft = &m.forest.types[t % m.forest.types.len()].name;
        cell(
            &mut cube,
            &zone(zi),
            EcosystemClass::Forest,
            Some(ft),
            Some(age),
            None,
            None,
            area,
        );
    }
    for &(s, area, zi) in desert {
        let st = &m.desert.subtypes[s % m.desert.subtypes.len()].name;
        cell(
            &mut cube,
            &zone(zi),
            EcosystemClass::Barren,
            None,
            None,
            Some(st),
            None,
            area,
        );
    }
    let others = [
        EcosystemClass::Shrub,
        EcosystemClass::Grassland,
        EcosystemClass::Cropland,
        EcosystemClass::Wetland,
    ];
    for &(k, area, zi) in other {
        cell(
            &mut cube,
            &zone(zi),
            others[k % others.len()],
            None,
            None,
            None,
            None,
            area,
        );
    }
    let r = m.restoration.as_ref().unwrap();
    for &(j, area, zi) in eligible {
        let iv = &r.interventions[j % r.interventions.len()];
        cell(
            &mut cube,
            &zone(zi),
            iv.eligible_classes[0],
            None,
            None,
            None,
            Some(&iv.name),
            area,
        );
    }
    cube
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn mass_balance_holds_for_random_cubes_rollouts_and_disturbance(
        forest in prop::collection::vec((0usize..6, 0u16..250, 0.1f64..5e4, 0usize..3), 0..12),
        desert in prop::collection::vec((0usize..5, 0.1f64..1e5, 0usize..3), 0..6),
        other in prop::collection::vec((0usize..4, 0.1f64..1e5, 0usize..3), 0..6),
        eligible in prop::collection::vec((0usize..5, 1.0f64..1e4, 0usize..3), 0..6),
        dist in prop::collection::vec(0.0f64..0.3, 6),
        rates in prop::collection::vec((0usize..5, 2020i32..2040, 0.0f64..3000.0), 0..5),
        grass_rate in -0.2f64..0.4,
        inorganic in any::<bool>(),
        soil in any::<bool>(),
        logistic in any::<bool>(),
    ) {
        let mut m = models();
        if logistic {
            // A form with C(0) > 0: restarts and plantings must not create carbon.
            m.forest.types[4].curve = sinkmap::model::growth::Curve::Logistic { a_tc_per_ha: 60.0, b: 9.0, c_per_yr: 0.1 };
        }
        m.desert.include_inorganic = inorganic;
        if let Some(g) = m.other.classes.iter_mut().find(|c| c.class == EcosystemClass::Grassland) {
            g.sink_tc_per_ha_yr = grass_rate;
        }
        let cube = random_cube(&forest, &desert, &other, &eligible, &m);
        let names: Vec<String> = m.restoration.as_ref().unwrap().interventions.iter().map(|i| i.name.clone()).collect();
        let rollout = RolloutFile {
            rules: rates.iter().map(|&(j, start, ha)| Rollout {
                intervention: names[j % names.len()].clone(),
                zone: None,
                start_year: start,
                ha_per_yr: Some(ha),
                all_eligible_by_year: None,
            }).collect(),
            disturbance: m.forest.types.iter().zip(&dist).map(|(t, d)| (t.name.clone(), *d)).collect(),
        };
        let pools = Pools { dead_matter: soil, soil };
        let acc = account(&cube, &m, &[], pools, &rollout, 2020, 2045, 1, 1);
        assert_mass_balance(&acc);
    }
}

/// Runs the map on a synthetic scene; returns the scene's out folder.
fn mapped_scene(dir: &std::path::Path) -> (std::path::PathBuf, Cube) {
    let scene = synth_scene(dir, 160, 110, 9);
    let o = sinkmap(&["run", scene.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = dir.join("out");
    let cube = Cube::read_csv(&out.join("cube.csv")).unwrap();
    (out, cube)
}

fn sample_rollout() -> RolloutFile {
    read_toml(&root().join("rasters/sample/rollout.toml")).unwrap()
}

/// With or without base-year disturbance, the projection's base-year gross sink is the map's
/// sink; with none its net flux is too; disturbance shows as its own term.
#[test]
fn the_base_year_agrees_with_the_map() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, cube) = mapped_scene(tmp.path());
    let summary = json(&out.join("summary.json"));
    let map_sink = summary["totals"]["sink_tco2_yr"].as_f64().unwrap();
    let map_stock = summary["totals"]["stock_tc"].as_f64().unwrap();
    let m = models();
    let total = |a: &Accounting| a.components.len() - 1;
    let region = |a: &Accounting| a.zones.len() - 1;
    let none = RolloutFile::default();
    let a = account(&cube, &m, &[], Pools::default(), &none, 2020, 2022, 1, 1);
    let (r, t) = (region(&a), total(&a));
    let rel = |x: f64, y: f64| (x - y).abs() / y.abs();
    assert!(
        rel(a.net[r][0][t], map_sink) < 1e-9,
        "{} vs {map_sink}",
        a.net[r][0][t]
    );
    assert!(rel(a.stock[r][0][t], map_stock) < 1e-9);
    assert_eq!(a.emissions[r][0][t], 0.0);
    let b = account(
        &cube,
        &m,
        &[],
        Pools::default(),
        &sample_rollout(),
        2020,
        2022,
        1,
        1,
    );
    assert!(rel(b.gross[r][0][t], map_sink) < 1e-9);
    let e = b.emissions[r][0][t];
    assert!(e > 0.0, "the sample's 2 % plantation harvest emits");
    assert!(rel(b.net[r][0][t], map_sink - e) < 1e-9);
    // The emissions are those of the plantation type only.
    let p = b
        .components
        .iter()
        .position(|c| c == "forest:plantation_poplar_elm")
        .unwrap();
    assert_eq!(b.emissions[r][0][p], e);
}

/// With the shipped priors, every component's, zone's and year's nominal net flux (and gross
/// sink and emissions) lies inside its 5–95 % band.
#[test]
fn nominal_values_lie_inside_their_bands() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, cube) = mapped_scene(tmp.path());
    let m = models();
    let params = uncertain_parameters(Some(&root().join("models/uncertainty.toml")), &m).unwrap();
    assert!(params.len() >= 10);
    let acc = account(
        &cube,
        &m,
        &params,
        Pools::default(),
        &sample_rollout(),
        2020,
        2060,
        400,
        42,
    );
    for z in 0..acc.zones.len() {
        for y in 0..acc.years.len() {
            for c in 0..acc.components.len() {
                for (what, b) in [
                    ("net", acc.bands[z][y][c]),
                    ("gross", acc.gross_bands[z][y][c]),
                    ("emissions", acc.emission_bands[z][y][c]),
                ] {
                    let slack = 1e-9 * b.nominal.abs();
                    assert!(
                        b.p05 - slack <= b.nominal && b.nominal <= b.p95 + slack,
                        "{what} {} {} {}: nominal {} outside {}–{}",
                        acc.zones[z].0,
                        acc.years[y],
                        acc.components[c],
                        b.nominal,
                        b.p05,
                        b.p95
                    );
                }
            }
        }
    }
}

fn schema(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(root().join("docs/schemas").join(name)).unwrap())
        .unwrap()
}

/// A check of the schema subset these files use (required keys, enums, consts, types of the
/// required properties; `$ref` to `$defs` followed). Hand-written: the `jsonschema` crate
/// changed float results of other tests through feature unification of shared dependencies.
fn assert_valid(s: &serde_json::Value, doc: &serde_json::Value, what: &str) {
    fn check(root: &serde_json::Value, s: &serde_json::Value, d: &serde_json::Value, path: &str) {
        let s = match s.get("$ref").and_then(|r| r.as_str()) {
            Some(r) => root.pointer(r.trim_start_matches('#')).unwrap(),
            None => s,
        };
        if let Some(t) = s.get("type") {
            let types: Vec<&str> = match t {
                serde_json::Value::String(x) => vec![x.as_str()],
                serde_json::Value::Array(a) => a.iter().filter_map(|x| x.as_str()).collect(),
                _ => vec![],
            };
            let ok = types.iter().any(|t| match *t {
                "object" => d.is_object(),
                "array" => d.is_array(),
                "string" => d.is_string(),
                "number" => d.is_number(),
                "integer" => d.is_i64() || d.is_u64(),
                "boolean" => d.is_boolean(),
                "null" => d.is_null(),
                _ => false,
            });
            assert!(ok, "{path}: {d} is not {types:?}");
        }
        if let Some(e) = s.get("enum").and_then(|e| e.as_array()) {
            assert!(e.contains(d), "{path}: {d} not in {e:?}");
        }
        if let Some(c) = s.get("const") {
            assert_eq!(c, d, "{path}");
        }
        if let Some(req) = s.get("required").and_then(|r| r.as_array()) {
            for k in req.iter().filter_map(|k| k.as_str()) {
                let v = d.get(k).unwrap_or_else(|| panic!("{path}: missing '{k}'"));
                if let Some(ps) = s.pointer(&format!("/properties/{k}")) {
                    check(root, ps, v, &format!("{path}/{k}"));
                }
            }
        }
        if s.get("additionalProperties") == Some(&serde_json::Value::Bool(false)) {
            let props = s["properties"].as_object().unwrap();
            for k in d.as_object().unwrap().keys() {
                assert!(props.contains_key(k), "{path}: unexpected '{k}'");
            }
        }
        if let (Some(items), Some(a)) = (s.get("items"), d.as_array()) {
            for (i, x) in a.iter().enumerate() {
                check(root, items, x, &format!("{path}/{i}"));
            }
        }
    }
    check(s, s, doc, what);
}

/// `balance` refuses a sub-region comparison unless asked; then its tables name both regions,
/// `sink_inputs.csv` has flux rows by level that add up, and both exports follow their schemas.
#[test]
fn exports_follow_their_schemas_and_the_balance_knows_its_region() {
    let tmp = tempfile::tempdir().unwrap();
    let scene = synth_scene(tmp.path(), 120, 90, 4);
    let s = scene.to_str().unwrap();
    let o = sinkmap(&["run", s, "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rollout = root().join("rasters/sample/rollout.toml");
    let r = rollout.to_str().unwrap();
    // A few counties' sink against all of Xinjiang: refused without the explicit flag.
    let o = sinkmap(&["balance", s, "--draws", "20", "--rollout", r, "--quiet"]);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(4),
        "configuration error expected: {err}"
    );
    assert!(
        err.contains("xinjiang.toml")
            && err.contains("sub-region")
            && err.contains("--allow-subregion-balance"),
        "{err}"
    );
    // Claiming to be Xinjiang does not help a scene that covers a sliver of it.
    let text = std::fs::read_to_string(&scene).unwrap();
    let claim = scene.with_file_name("claims_xinjiang.toml");
    std::fs::write(&claim, text + "\n[accounting]\nregion = \"Xinjiang\"\n").unwrap();
    let o = sinkmap(&[
        "balance",
        claim.to_str().unwrap(),
        "--draws",
        "20",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(4), "configuration error expected");
    assert!(stderr(&o).contains("covers only"), "{}", stderr(&o));

    let o = sinkmap(&[
        "balance",
        s,
        "--draws",
        "60",
        "--rollout",
        r,
        "--allow-subregion-balance",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = tmp.path().join("out");
    let summary = json(&out.join("summary.json"));
    assert_valid(&schema("summary.schema.json"), &summary, "summary.json");
    let acc = &summary["accounting"];
    assert_eq!(acc["sink_region"], "test scene (SYNTHETIC)");
    assert_eq!(acc["emissions_region"], "Xinjiang");
    assert_eq!(acc["subregion_comparison"], true);
    // The headline's nominal gross sink is the map's.
    let g = acc["region_gross_sink_base_year_tco2"]["nominal"]
        .as_f64()
        .unwrap();
    let m = summary["totals"]["sink_tco2_yr"].as_f64().unwrap();
    assert!((g - m).abs() <= 1e-9 * m, "{g} vs {m}");

    let (bh, brows) = read_csv(&out.join("balance.csv"));
    let bc = |n: &str| bh.iter().position(|c| c == n).unwrap();
    assert!(!brows.is_empty());
    for row in &brows {
        assert_eq!(row[bc("sink_region")], "test scene (SYNTHETIC)");
        assert_eq!(row[bc("emissions_region")], "Xinjiang");
        assert_eq!(row[bc("subregion_comparison")], "true");
    }

    let (h, rows) = read_csv(&out.join("sink_inputs.csv"));
    let v = schema("sink_inputs.schema.json");
    let numeric = |c: &str| c == "year" || c.starts_with("net_removal");
    let col = |n: &str| h.iter().position(|c| c == n).unwrap();
    for row in &rows {
        let doc: serde_json::Map<String, serde_json::Value> = h
            .iter()
            .zip(row)
            .map(|(c, x)| {
                let val = if numeric(c) {
                    serde_json::from_str(x).unwrap()
                } else {
                    serde_json::Value::String(x.clone())
                };
                (c.clone(), val)
            })
            .collect();
        assert_valid(&v, &serde_json::Value::Object(doc), "sink_inputs row");
    }
    let get = |r: &Vec<String>, n: &str| r[col(n)].clone();
    let val = |r: &Vec<String>| get(r, "net_removal_tco2_yr").parse::<f64>().unwrap();
    // Zone + outside rows add up to the region rows (within the 0.1 t rounding of each row),
    // and the region rows to the region's net flux of trajectory.csv.
    let (th, trows) = read_csv(&out.join("trajectory.csv"));
    let tc = |n: &str| th.iter().position(|c| c == n).unwrap();
    for year in ["2020", "2040", "2060"] {
        let of = |lvl: &[&str]| -> (f64, usize) {
            let sel: Vec<&Vec<String>> = rows
                .iter()
                .filter(|r| get(r, "year") == year && lvl.contains(&get(r, "level").as_str()))
                .collect();
            (sel.iter().map(|r| val(r)).sum(), sel.len())
        };
        let (parts, np) = of(&["zone", "outside"]);
        let (region, nr) = of(&["region"]);
        assert!(np > 0 && nr > 0);
        assert!(
            (parts - region).abs() <= 0.05 * (np + nr) as f64,
            "{year}: {parts} vs {region}"
        );
        let net: f64 = trows
            .iter()
            .find(|t| {
                t[tc("zone_id")] == "__region__"
                    && t[tc("year")] == year
                    && t[tc("component")] == "total"
            })
            .map(|t| t[tc("net_flux_tco2_yr")].parse().unwrap())
            .unwrap();
        assert!(
            (region - net).abs() <= 0.05 * nr as f64,
            "{year}: {region} vs {net}"
        );
    }
    // Categories and the disturbance rows.
    let cat = |comp: &str| {
        rows.iter()
            .find(|r| get(r, "component") == comp)
            .map(|r| get(r, "ipcc_category"))
            .unwrap_or_else(|| panic!("no row for {comp}"))
    };
    assert_eq!(cat("forest:tianshan_spruce"), "4.A Forest land");
    assert_eq!(cat("desert:crust"), "4.F Other land");
    assert_eq!(cat("restoration:grazing_exclusion"), "4.C Grassland");
    assert_eq!(cat("restoration:oasis_shelterbelt"), "4.B Cropland");
    let dist: Vec<&Vec<String>> = rows
        .iter()
        .filter(|r| get(r, "flux") == "disturbance_emission")
        .collect();
    assert!(!dist.is_empty());
    assert!(dist
        .iter()
        .all(|r| get(r, "component") == "disturbance:plantation_poplar_elm" && val(r) <= 0.0));
    assert!(rows
        .iter()
        .all(|r| get(r, "component") != "total" && get(r, "component") != "desert:land"));
}

/// The accounting of `cube` without map error (the call the tests above share).
#[allow(clippy::too_many_arguments)]
fn account(
    cube: &sinkmap::cube::Cube,
    nominal: &sinkmap::model::Models,
    params: &[sinkmap::accounting::uncertainty::Uncertain],
    pools: sinkmap::model::Pools,
    rollout: &sinkmap::accounting::projection::RolloutFile,
    base_year: i32,
    until: i32,
    draws: usize,
    seed: u64,
) -> Accounting {
    Projection {
        cube,
        nominal,
        params,
        pools,
        rollout,
        base_year,
        until,
        draws,
        seed,
        map_error: None,
    }
    .account()
}
