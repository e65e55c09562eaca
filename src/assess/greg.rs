//! Model-assisted estimation of a mean density (and total) from field plots and a map
//! (Särndal, Swensson & Wretman 1992, ch. 6–7; McRoberts et al. 2013, Remote Sens. Environ.
//! 128:268–275, for forest inventory). Pure: no IO.
//!
//! The map's prediction ŷ is known for the whole population (its mean μ̂_map over a stratum
//! comes from a raster pass); the plots observe y on a probability sample. Per stratum h
//! (a simple random sample is one stratum):
//! * difference estimator: μ̂ₕ = μ_map,h − ēₕ, eᵢ = ŷᵢ − yᵢ, V̂ₕ = s²ₑₕ / nₕ;
//! * GREG with the linear model y ≈ a + b ŷ fitted by least squares on the stratum's plots:
//!   μ̂ₕ = âₕ + b̂ₕ μ_map,h (the residuals of an OLS fit with intercept sum to zero),
//!   V̂ₕ = Σ rᵢ² / (nₕ − 2) / nₕ (Cochran 1977 eq. 7.27, residual degrees of freedom);
//! * the plots alone (expansion estimator): μ̂ₕ = ȳₕ, V̂ₕ = s²ᵧₕ / nₕ.
//!
//! Strata combine as μ̂ = Σ Wₕ μ̂ₕ, V̂ = Σ Wₕ² V̂ₕ with Wₕ the stratum's share of the area;
//! the total is area × μ̂. No finite-population correction (plots are a negligible share of
//! the area).

use super::estimate::Est;

/// One field plot: its stratum, the measured density and the map's prediction there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plot {
    /// Index of the plot's stratum.
    pub stratum: usize,
    /// The density measured on the plot, y (t C/ha in sinkmap's use).
    pub observed: f64,
    /// The map's prediction ŷ at the plot (same unit).
    pub predicted: f64,
}

/// What the map says about one stratum: its area and the mean of its prediction over it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StratumMap {
    /// Area of the stratum (ha in sinkmap's use); the weights Wₕ are its share.
    pub area: f64,
    /// Mean of the map's prediction over the stratum, μ_map,h (t C/ha in sinkmap's use).
    pub mean_predicted: f64,
}

/// The estimators of a mean density from plots and map (docs/science.md §6.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Estimator {
    /// The map's own mean (no plots; no sampling error, but biased if the map is).
    Map,
    /// The plots alone.
    Expansion,
    /// The map's mean corrected by the plots' mean error: μ_map,h − ēₕ.
    Difference,
    /// Generalized regression: the plots' linear fit y ≈ a + b ŷ applied to the map's mean.
    Greg,
}

impl Estimator {
    /// Every estimator, in the order of the tables.
    pub const ALL: [Estimator; 4] = [
        Estimator::Map,
        Estimator::Expansion,
        Estimator::Difference,
        Estimator::Greg,
    ];
    /// The name in the tables and JSON (`map`, `expansion`, `difference`, `greg`).
    pub fn name(self) -> &'static str {
        match self {
            Estimator::Map => "map",
            Estimator::Expansion => "expansion",
            Estimator::Difference => "difference",
            Estimator::Greg => "greg",
        }
    }
}

/// Why the plots cannot give an estimate.
#[derive(Debug, Clone, PartialEq)]
pub enum PlotDesignError {
    /// Too few plots in a stratum with area for this estimator (`needed` per stratum).
    TooFewPlots {
        /// Index of the stratum.
        stratum: usize,
        /// Plots in it.
        plots: usize,
        /// Plots the estimator needs per stratum.
        needed: usize,
    },
    /// Plots in a stratum without area.
    PlotsWithoutArea {
        /// Index of the stratum.
        stratum: usize,
        /// Plots in it.
        plots: usize,
    },
    /// The strata have no area at all.
    NoArea,
}

impl std::fmt::Display for PlotDesignError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlotDesignError::TooFewPlots { stratum, plots, needed } => write!(f, "stratum {stratum} has {plots} plot(s); this estimator needs at least {needed} per stratum"),
            PlotDesignError::PlotsWithoutArea { stratum, plots } => write!(f, "{plots} plot(s) fall in stratum {stratum}, which has no mapped area: the plots do not match the declared design"),
            PlotDesignError::NoArea => write!(f, "the strata have no area"),
        }
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn var(v: &[f64]) -> f64 {
    let m = mean(v);
    v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() as f64 - 1.0)
}

/// Least-squares line y = a + b x; b = 0 when x does not vary.
fn ols(x: &[f64], y: &[f64]) -> (f64, f64) {
    let (mx, my) = (mean(x), mean(y));
    let sxx: f64 = x.iter().map(|v| (v - mx) * (v - mx)).sum();
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    (my - b * mx, b)
}

/// Per-stratum estimate (mean, variance) of one estimator.
fn stratum_estimate(e: Estimator, obs: &[f64], pred: &[f64], map_mean: f64) -> (f64, f64) {
    let n = obs.len() as f64;
    match e {
        Estimator::Map => (map_mean, 0.0),
        Estimator::Expansion => (mean(obs), var(obs) / n),
        Estimator::Difference => {
            let err: Vec<f64> = pred.iter().zip(obs).map(|(p, o)| p - o).collect();
            (map_mean - mean(&err), var(&err) / n)
        }
        Estimator::Greg => {
            let (a, b) = ols(pred, obs);
            let ss: f64 = pred
                .iter()
                .zip(obs)
                .map(|(p, o)| (o - a - b * p).powi(2))
                .sum();
            (a + b * map_mean, ss / (n - 2.0) / n)
        }
    }
}

/// Minimum plots per stratum for an estimator with a variance.
fn plots_needed(e: Estimator) -> usize {
    match e {
        Estimator::Map => 0,
        Estimator::Expansion | Estimator::Difference => 2,
        Estimator::Greg => 3,
    }
}

/// Estimated mean density over all strata (per unit area) with its SE.
pub fn estimate_mean(
    e: Estimator,
    plots: &[Plot],
    strata: &[StratumMap],
) -> Result<Est, PlotDesignError> {
    let total: f64 = strata.iter().map(|s| s.area).sum();
    if total <= 0.0 {
        return Err(PlotDesignError::NoArea);
    }
    let (mut m, mut v) = (0.0, 0.0);
    for (h, s) in strata.iter().enumerate() {
        let (obs, pred): (Vec<f64>, Vec<f64>) = plots
            .iter()
            .filter(|p| p.stratum == h)
            .map(|p| (p.observed, p.predicted))
            .unzip();
        if s.area <= 0.0 {
            if !obs.is_empty() {
                return Err(PlotDesignError::PlotsWithoutArea {
                    stratum: h,
                    plots: obs.len(),
                });
            }
            continue;
        }
        if obs.len() < plots_needed(e) {
            return Err(PlotDesignError::TooFewPlots {
                stratum: h,
                plots: obs.len(),
                needed: plots_needed(e),
            });
        }
        let w = s.area / total;
        let (mh, vh) = stratum_estimate(e, &obs, &pred, s.mean_predicted);
        m += w * mh;
        v += w * w * vh;
    }
    Ok(Est {
        value: m,
        se: v.sqrt(),
    })
}

/// Residual statistics (predicted − observed) of a group of plots.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Residuals {
    /// Number of plots.
    pub n: usize,
    /// Mean of (predicted − observed): positive = the map overestimates.
    pub bias: f64,
    /// Root mean square of (predicted − observed).
    pub rmse: f64,
    /// Mean of the observed values.
    pub mean_observed: f64,
    /// Mean of the predicted values.
    pub mean_predicted: f64,
}

/// The residual statistics of observed values `obs` and predictions `pred` (same length;
/// NaN for no plots).
pub fn residuals(obs: &[f64], pred: &[f64]) -> Residuals {
    let n = obs.len();
    let nf = n as f64;
    let bias = pred.iter().zip(obs).map(|(p, o)| p - o).sum::<f64>() / nf;
    let mse = pred
        .iter()
        .zip(obs)
        .map(|(p, o)| (p - o).powi(2))
        .sum::<f64>()
        / nf;
    Residuals {
        n,
        bias,
        rmse: mse.sqrt(),
        mean_observed: mean(obs),
        mean_predicted: mean(pred),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Normal};

    fn plots(s: usize, o: &[f64], p: &[f64]) -> Vec<Plot> {
        o.iter()
            .zip(p)
            .map(|(&observed, &predicted)| Plot {
                stratum: s,
                observed,
                predicted,
            })
            .collect()
    }

    #[test]
    fn exact_models_give_exact_means_and_zero_error() {
        // y = ŷ + 3 everywhere: the difference estimator returns μ_map + 3, SE 0.
        let p = plots(0, &[13.0, 23.0, 8.0], &[10.0, 20.0, 5.0]);
        let s = [StratumMap {
            area: 100.0,
            mean_predicted: 40.0,
        }];
        let d = estimate_mean(Estimator::Difference, &p, &s).unwrap();
        assert!((d.value - 43.0).abs() < 1e-12 && d.se.abs() < 1e-12);
        // y = 2 + 0.5 ŷ: GREG returns 2 + 0.5·μ_map, SE 0.
        let p = plots(0, &[7.0, 12.0, 4.5], &[10.0, 20.0, 5.0]);
        let g = estimate_mean(Estimator::Greg, &p, &s).unwrap();
        assert!((g.value - 22.0).abs() < 1e-12 && g.se.abs() < 1e-12);
    }

    #[test]
    fn hand_computed_difference_greg_and_expansion() {
        // Four plots: ŷ = 10, 20, 30, 40; y = 12, 18, 35, 39; map mean 25.
        let p = plots(0, &[12.0, 18.0, 35.0, 39.0], &[10.0, 20.0, 30.0, 40.0]);
        let s = [StratumMap {
            area: 1.0,
            mean_predicted: 25.0,
        }];
        // e = ŷ − y = −2, 2, −5, 1: ē = −1, s² = (1+9+16+4)/3 = 10 → μ̂ = 26, SE = √(10/4).
        let d = estimate_mean(Estimator::Difference, &p, &s).unwrap();
        assert!((d.value - 26.0).abs() < 1e-12);
        assert!((d.se - 2.5f64.sqrt()).abs() < 1e-12);
        // OLS: x̄ = 25, ȳ = 26, Sxx = 500, Sxy = (−15)(−14)+(−5)(−8)+(5)(9)+(15)(13) = 490
        // → b = 0.98, a = 26 − 24.5 = 1.5; μ̂ = 1.5 + 0.98·25 = 26.
        // Residuals: 12−11.3 = 0.7, 18−21.1 = −3.1, 35−30.9 = 4.1, 39−40.7 = −1.7;
        // Σr² = 0.49 + 9.61 + 16.81 + 2.89 = 29.8 → V = 29.8/2/4 = 3.725.
        let g = estimate_mean(Estimator::Greg, &p, &s).unwrap();
        assert!((g.value - 26.0).abs() < 1e-12);
        assert!((g.se - 3.725f64.sqrt()).abs() < 1e-12);
        // Plots alone: ȳ = 26, s² = (196+64+81+169)/3 = 170 → SE = √42.5.
        let x = estimate_mean(Estimator::Expansion, &p, &s).unwrap();
        assert!((x.value - 26.0).abs() < 1e-12);
        assert!((x.se - 42.5f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn strata_combine_by_area_share() {
        // Stratum 0 (area 3): e = 1, 3 → ē = 2, s² = 2; map mean 10 → 8, V = 1.
        // Stratum 1 (area 1): e = −1, −3 → ē = −2, s² = 2; map mean 50 → 52, V = 1.
        let mut p = plots(0, &[4.0, 2.0], &[5.0, 5.0]);
        p.extend(plots(1, &[6.0, 8.0], &[5.0, 5.0]));
        let s = [
            StratumMap {
                area: 3.0,
                mean_predicted: 10.0,
            },
            StratumMap {
                area: 1.0,
                mean_predicted: 50.0,
            },
        ];
        let d = estimate_mean(Estimator::Difference, &p, &s).unwrap();
        assert!((d.value - (0.75 * 8.0 + 0.25 * 52.0)).abs() < 1e-12);
        assert!((d.se - (0.5625f64 + 0.0625).sqrt()).abs() < 1e-12);
        // A stratum with one plot cannot have a variance.
        let err = estimate_mean(Estimator::Difference, &p[1..], &s).unwrap_err();
        assert_eq!(
            err,
            PlotDesignError::TooFewPlots {
                stratum: 0,
                plots: 1,
                needed: 2
            }
        );
        let err = estimate_mean(
            Estimator::Difference,
            &p,
            &[
                s[0],
                StratumMap {
                    area: 0.0,
                    mean_predicted: 0.0,
                },
            ],
        )
        .unwrap_err();
        assert_eq!(
            err,
            PlotDesignError::PlotsWithoutArea {
                stratum: 1,
                plots: 2
            }
        );
    }

    #[test]
    fn residual_statistics() {
        let r = residuals(&[10.0, 20.0], &[13.0, 19.0]);
        assert!((r.bias - 1.0).abs() < 1e-12);
        assert!((r.rmse - 5f64.sqrt()).abs() < 1e-12);
    }

    /// A synthetic population with a biased, noisy map: the 95 % intervals of the
    /// difference and GREG estimators must cover the true mean in ≈ 95 % of 1000 samples.
    /// Binomial band: 1000 · 0.95 ± 3.5 · √(1000 · 0.95 · 0.05) ≈ [926, 974].
    #[test]
    fn intervals_cover_the_truth_in_95_percent_of_samples() {
        let mut rng = ChaCha8Rng::seed_from_u64(19);
        let big = 20_000;
        let pred_dist = Normal::new(60.0, 25.0).unwrap();
        let noise = Normal::new(0.0, 12.0).unwrap();
        // Two strata (e.g. forest / other) with different map biases.
        let mut pop: Vec<(usize, f64, f64)> = Vec::with_capacity(big);
        for i in 0..big {
            let h = usize::from(i % 4 == 0);
            let draw: f64 = pred_dist.sample(&mut rng);
            let yhat = draw.max(0.0) + 40.0 * h as f64;
            let y = 5.0 + 0.85 * yhat + noise.sample(&mut rng) - 10.0 * h as f64;
            pop.push((h, y, yhat));
        }
        let true_mean = pop.iter().map(|p| p.1).sum::<f64>() / big as f64;
        let strata: Vec<StratumMap> = (0..2)
            .map(|h| {
                let v: Vec<f64> = pop.iter().filter(|p| p.0 == h).map(|p| p.2).collect();
                StratumMap {
                    area: v.len() as f64,
                    mean_predicted: mean(&v),
                }
            })
            .collect();
        let idx: [Vec<usize>; 2] = [
            (0..big).filter(|i| pop[*i].0 == 0).collect(),
            (0..big).filter(|i| pop[*i].0 == 1).collect(),
        ];
        let one = [StratumMap {
            area: big as f64,
            mean_predicted: pop.iter().map(|p| p.2).sum::<f64>() / big as f64,
        }];
        let mut covered = [[0usize; 2]; 2]; // [design][difference, greg]
        for _ in 0..1000 {
            // Simple random sample of 40 plots (one stratum).
            let srs: Vec<Plot> = rand::seq::index::sample(&mut rng, big, 40)
                .iter()
                .map(|i| Plot {
                    stratum: 0,
                    observed: pop[i].1,
                    predicted: pop[i].2,
                })
                .collect();
            // Stratified sample: 25 + 25 plots.
            let mut st = Vec::new();
            for (h, ids) in idx.iter().enumerate() {
                for k in rand::seq::index::sample(&mut rng, ids.len(), 25).iter() {
                    let i = ids[k];
                    st.push(Plot {
                        stratum: h,
                        observed: pop[i].1,
                        predicted: pop[i].2,
                    });
                }
            }
            for (d, (ps, ss)) in [(&srs, &one[..]), (&st, &strata[..])]
                .into_iter()
                .enumerate()
            {
                for (k, e) in [Estimator::Difference, Estimator::Greg]
                    .into_iter()
                    .enumerate()
                {
                    let (lo, hi) = estimate_mean(e, ps, ss).unwrap().ci95();
                    if lo <= true_mean && true_mean <= hi {
                        covered[d][k] += 1;
                    }
                }
            }
        }
        eprintln!("coverage per 1000 [srs, stratified] × [difference, greg]: {covered:?}");
        for (d, row) in covered.iter().enumerate() {
            for (k, &c) in row.iter().enumerate() {
                assert!(
                    (926..=974).contains(&c),
                    "design {d}, estimator {k}: {c}/1000 covered"
                );
            }
        }
        // The map alone is biased here: its mean misses the truth by far more than an SE.
        assert!((one[0].mean_predicted - true_mean).abs() > 3.0);
    }
}
