//! Curve fitting: recovery of known parameters from simulated plots, form choice by AIC,
//! statistics against direct computation, and clear errors on bad plot tables.

#![cfg(feature = "gdal")]

mod common;

use common::*;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use sinkmap::fit::{best_by_aic, fit, Form};

fn truth() -> Vec<(Form, [f64; 3])> {
    vec![
        (Form::Logistic, [80.0, 20.0, 0.06]),
        (Form::Richards, [75.0, 0.02, 3.0]),
        (Form::Gompertz, [60.0, 4.0, 0.03]),
        (Form::Korf, [126.0, 30.0, 0.7]),
    ]
}

fn simulate(
    form: Form,
    p: [f64; 3],
    n: usize,
    sd: f64,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> (Vec<f64>, Vec<f64>) {
    let noise = Normal::new(0.0, sd).unwrap();
    let ages: Vec<f64> = (0..n).map(|_| rng.random_range(2.0..250.0)).collect();
    let y = ages
        .iter()
        .map(|t| (form.eval(p, *t).0 + noise.sample(rng)).max(0.0))
        .collect();
    (ages, y)
}

/// Parameters recovered within their reported 95 % intervals in ≥ 90 % of trials; AIC picks
/// the generating form in most trials. The rates are printed (run with --nocapture).
#[test]
fn simulated_plots_recover_known_parameters() {
    let trials = 120;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2060);
    for (form, p) in truth() {
        let sd = 0.03 * p[0];
        let mut covered = [0usize; 3];
        let mut usable = 0usize;
        let mut picked = 0usize;
        for _ in 0..trials {
            let (t, y) = simulate(form, p, 80, sd, &mut rng);
            let f = fit(form, &t, &y);
            if f.usable() {
                usable += 1;
                for i in 0..3 {
                    if (f.params[i] - p[i]).abs() <= f.ci95_half_width[i] {
                        covered[i] += 1;
                    }
                }
            }
            let all: Vec<_> = Form::ALL.iter().map(|g| fit(*g, &t, &y)).collect();
            if best_by_aic(&all).map(|b| b.form) == Some(form) {
                picked += 1;
            }
        }
        let rates: Vec<f64> = covered.iter().map(|c| *c as f64 / usable as f64).collect();
        println!(
            "{:<9} usable {usable}/{trials}; 95% CI coverage a {:.3} b {:.3} c {:.3}; AIC picks it in {:.3}",
            form.name(),
            rates[0],
            rates[1],
            rates[2],
            picked as f64 / trials as f64
        );
        assert!(
            usable as f64 >= 0.95 * trials as f64,
            "{form:?}: only {usable} usable fits"
        );
        for (i, r) in rates.iter().enumerate() {
            assert!(*r >= 0.90, "{form:?} parameter {i}: coverage {r}");
        }
        assert!(
            picked * 2 > trials,
            "{form:?}: AIC picked the generating form in only {picked}/{trials}"
        );
    }
}

#[test]
fn r2_and_rmse_match_a_direct_computation() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let (form, p) = truth()[1];
    let (t, y) = simulate(form, p, 50, 2.0, &mut rng);
    let f = fit(form, &t, &y);
    let pred: Vec<f64> = t
        .iter()
        .map(|a| form.curve(f.params).carbon_tc_per_ha(*a))
        .collect();
    let sse: f64 = y.iter().zip(&pred).map(|(a, b)| (a - b).powi(2)).sum();
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    let sst: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
    assert!(rel_close(f.r_squared, 1.0 - sse / sst, 1e-12));
    assert!(rel_close(f.rmse, (sse / y.len() as f64).sqrt(), 1e-12));
    let n = y.len() as f64;
    assert!(rel_close(f.aic, n * (sse / n).ln() + 8.0, 1e-12));
}

fn plots_csv(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
    let p = dir.join("plots.csv");
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn cli_writes_a_forest_model_that_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut body = String::from("plot_id,type,age,biomass_t_per_ha\n");
    for (k, (form, p)) in truth().into_iter().take(2).enumerate() {
        let (t, y) = simulate(form, p, 40, 1.5, &mut rng);
        for (i, (a, c)) in t.iter().zip(&y).enumerate() {
            // Biomass = carbon / 0.4619 for the spruce, / 0.47 otherwise.
            let cf = if k == 0 { 0.4619 } else { 0.47 };
            body += &format!(
                "{k}-{i},{},{a},{}\n",
                ["Tianshan spruce", "poplar"][k],
                c / cf
            );
        }
    }
    let plots = plots_csv(tmp.path(), &body);
    let out = tmp.path().join("fit");
    let o = sinkmap(&[
        "fit",
        plots.to_str().unwrap(),
        "--type-field",
        "type",
        "--age-field",
        "age",
        "--density-field",
        "biomass_t_per_ha",
        "--biomass",
        "--carbon-fraction-type",
        "Tianshan spruce=0.4619",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        list(&out),
        vec![
            "fit_poplar.png",
            "fit_table.csv",
            "fit_table.md",
            "fit_tianshan_spruce.png",
            "forest.toml",
            "manifest.json"
        ]
    );
    // The charts of plots and fitted curves are PNGs of a reasonable size.
    for f in ["fit_poplar.png", "fit_tianshan_spruce.png"] {
        assert!(
            std::fs::metadata(out.join(f)).unwrap().len() > 10_000,
            "{f}"
        );
    }
    let model: sinkmap::model::forest::ForestModel =
        toml::from_str(&std::fs::read_to_string(out.join("forest.toml")).unwrap()).unwrap();
    model.validate().unwrap();
    assert_eq!(model.types.len(), 2);
    let spruce = model
        .types
        .iter()
        .find(|t| t.name == "tianshan_spruce")
        .unwrap();
    assert!(spruce.r_squared.unwrap() > 0.9);
    assert_eq!(spruce.standard_errors.len(), 3);
    // The fit's parameter correlations reach forest.toml, and the Monte Carlo draws the three
    // parameters jointly from them.
    assert_eq!(spruce.correlations.len(), 3, "{:?}", spruce.correlations);
    let names = spruce.curve.parameter_names();
    for (i, j) in [(0, 1), (0, 2), (1, 2)] {
        let r = spruce.correlations[&format!("{},{}", names[i], names[j])];
        assert!(r.is_finite() && r.abs() <= 1.0, "{r}");
    }
    let mut set = shipped_models();
    set.forest = model.clone();
    let params = sinkmap::accounting::uncertainty::uncertain_parameters(None, &set).unwrap();
    let spruce_params: Vec<_> = params
        .iter()
        .filter(|p| p.target.starts_with("forest.tianshan_spruce."))
        .collect();
    assert_eq!(spruce_params.len(), 3);
    assert!(spruce_params.iter().all(|p| p.correlated.is_some()));
    // The spruce carbon fraction was applied: the asymptote comes back near 80 t C/ha.
    assert!(
        (spruce.curve.max_tc_per_ha() - 80.0).abs() < 8.0,
        "{:?}",
        spruce.curve
    );
    // The table has one row per type and form.
    let (_, rows) = read_csv(&out.join("fit_table.csv"));
    assert_eq!(rows.len(), 8);
}

fn fit_fails(body: &str, extra: &[&str], needle: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let p = plots_csv(tmp.path(), body);
    let out = tmp.path().join("fit");
    let mut args = vec!["fit", p.to_str().unwrap(), "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = sinkmap(&args);
    let err = stderr(&o);
    assert_handled_failure(&o);
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap();
    assert!(
        line.contains("plots.csv") && line.contains(needle),
        "'{needle}' not in: {line}"
    );
    assert!(list(&out).is_empty());
}

#[test]
fn bad_plot_tables_give_clear_errors() {
    let ok_rows = |ty: &str, n: usize| -> String {
        (0..n)
            .map(|i| format!("{ty},{},{}\n", 5 + 10 * i, 3.0 + 4.0 * i as f64))
            .collect()
    };
    let head = "forest_type,age_yr,density\n";
    fit_fails(
        &format!("{head}{}", ok_rows("spruce", 3)),
        &[],
        "has 3 plots",
    );
    fit_fails(
        &format!(
            "{head}{}",
            (0..8).map(|_| "spruce,40,30\n").collect::<String>()
        ),
        &[],
        "same age",
    );
    fit_fails(
        &format!("{head}{}spruce,50,-2\n", ok_rows("spruce", 6)),
        &[],
        "line 8, column 'density': negative density",
    );
    fit_fails(
        "forest_type,age,density\nspruce,1,2\n",
        &[],
        "missing column 'age_yr'",
    );
    fit_fails(
        &format!("{head}{}spruce,old,2\n", ok_rows("spruce", 6)),
        &[],
        "line 8, column 'age_yr': 'old' is not a number",
    );
}
