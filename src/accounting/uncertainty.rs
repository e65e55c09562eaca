//! Parameter distributions for the Monte Carlo, and how a drawn value is put into the models.

use std::path::Path;

use rand::Rng;
use rand_distr::{Distribution, Normal, Triangular};
use serde::{Deserialize, Serialize};
use statrs::distribution::{Continuous, ContinuousCDF};

use crate::error::{Error, Result};
use crate::io::files::read_toml;
use crate::model::Models;

/// One uncertain parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    /// `forest.TYPE.PARAM` (a curve parameter), `desert.SUBTYPE.FIELD` (a component rate),
    /// `other.CLASS.sink_tc_per_ha_yr`, `restoration.NAME.initial_rate_tc_per_ha_yr` or
    /// `restoration.NAME.survival_fraction`.
    pub target: String,
    /// `normal` (around the nominal value, `se`), `uniform` (`min`, `max`) or
    /// `triangular` (`min`, `mode`, `max`).
    pub distribution: String,
    /// Standard error (normal).
    #[serde(default)]
    pub se: Option<f64>,
    /// Lower bound (uniform, triangular).
    #[serde(default)]
    pub min: Option<f64>,
    /// Mode (triangular).
    #[serde(default)]
    pub mode: Option<f64>,
    /// Upper bound (uniform, triangular).
    #[serde(default)]
    pub max: Option<f64>,
    /// Where the distribution comes from.
    pub source: String,
}

/// The file `models/uncertainty.toml`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UncertaintyFile {
    /// The parameters (`[[parameter]]` tables).
    #[serde(default, rename = "parameter")]
    pub parameters: Vec<ParamSpec>,
}

/// A checked distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dist {
    /// Normal around the nominal value, truncated at 0.
    Normal {
        /// Standard error.
        se: f64,
    },
    /// Uniform between two bounds.
    Uniform {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
    /// Triangular between two bounds.
    Triangular {
        /// Lower bound.
        min: f64,
        /// Mode.
        mode: f64,
        /// Upper bound.
        max: f64,
    },
}

impl Dist {
    /// Draws a value; `nominal` is the model's value (the centre of a normal). Normals are
    /// truncated at 0 (every parameter here is non-negative): redrawn, not clamped.
    pub fn sample<R: Rng>(&self, nominal: f64, rng: &mut R) -> f64 {
        match *self {
            Dist::Normal { se } => {
                if se == 0.0 {
                    return nominal;
                }
                for _ in 0..MAX_REDRAWS {
                    let v = nominal + se * standard_normal(rng);
                    if v >= 0.0 {
                        return v;
                    }
                }
                nominal
            }
            Dist::Uniform { min, max } => {
                let u: f64 = rng.random();
                if max > min {
                    min + u * (max - min)
                } else {
                    min
                }
            }
            Dist::Triangular { min, mode, max } => {
                if max > min {
                    Triangular::new(min, max, mode)
                        .map(|t| t.sample(rng))
                        .unwrap_or(mode)
                } else {
                    min
                }
            }
        }
    }

    /// The mean of the distribution (for a normal truncated at 0: μ + σ·φ(α)/(1 − Φ(α)),
    /// α = −μ/σ).
    pub fn mean(&self, nominal: f64) -> f64 {
        match *self {
            Dist::Normal { se } => {
                if se <= 0.0 {
                    return nominal;
                }
                let n = statrs::distribution::Normal::new(0.0, 1.0).expect("standard normal");
                let alpha = -nominal / se;
                let tail = 1.0 - n.cdf(alpha);
                if tail > 0.0 {
                    nominal + se * n.pdf(alpha) / tail
                } else {
                    nominal
                }
            }
            Dist::Uniform { min, max } => 0.5 * (min + max),
            Dist::Triangular { min, mode, max } => (min + mode + max) / 3.0,
        }
    }

    /// The support [low, high] of the distribution.
    pub fn support(&self) -> (f64, f64) {
        match *self {
            Dist::Normal { .. } => (0.0, f64::INFINITY),
            Dist::Uniform { min, max } | Dist::Triangular { min, max, .. } => (min, max),
        }
    }
}

/// How often a truncated draw is retried before falling back to the nominal value (only
/// reachable when the nominal sits many standard errors below 0, which the load check refuses).
const MAX_REDRAWS: usize = 10_000;

fn standard_normal<R: Rng>(rng: &mut R) -> f64 {
    Normal::new(0.0, 1.0).map(|n| n.sample(rng)).unwrap_or(0.0)
}

impl ParamSpec {
    /// The checked distribution; an error says which of its numbers is missing or wrong.
    pub fn dist(&self) -> std::result::Result<Dist, String> {
        let need = |v: Option<f64>, what: &str| {
            v.filter(|x| x.is_finite()).ok_or_else(|| {
                format!(
                    "parameter '{}': {} needs a finite {what}",
                    self.target, self.distribution
                )
            })
        };
        let d = match self.distribution.as_str() {
            "normal" => Dist::Normal {
                se: need(self.se, "se")?,
            },
            "uniform" => Dist::Uniform {
                min: need(self.min, "min")?,
                max: need(self.max, "max")?,
            },
            "triangular" => Dist::Triangular {
                min: need(self.min, "min")?,
                mode: need(self.mode, "mode")?,
                max: need(self.max, "max")?,
            },
            other => {
                return Err(format!(
                    "parameter '{}': unknown distribution '{other}' (normal, uniform, triangular)",
                    self.target
                ))
            }
        };
        match d {
            Dist::Normal { se } if se < 0.0 => {
                Err(format!("parameter '{}': se must be ≥ 0", self.target))
            }
            Dist::Uniform { min, max } if max < min => {
                Err(format!("parameter '{}': max < min", self.target))
            }
            Dist::Triangular { min, mode, max } if !(min <= mode && mode <= max) => Err(format!(
                "parameter '{}': need min ≤ mode ≤ max",
                self.target
            )),
            d => Ok(d),
        }
    }
}

/// A parameter ready to draw: target, distribution, nominal value.
#[derive(Debug, Clone)]
pub struct Uncertain {
    /// The parameter (see [`ParamSpec::target`]).
    pub target: String,
    /// Its distribution.
    pub dist: Dist,
    /// Its value in the model files.
    pub nominal: f64,
    /// For normals drawn jointly (fitted curve parameters with correlations): the group and
    /// this parameter's row of the group's Cholesky factor of the correlation matrix.
    pub correlated: Option<Correlated>,
}

/// A parameter's place in a correlated multivariate normal.
#[derive(Debug, Clone, PartialEq)]
pub struct Correlated {
    /// Which correlated group.
    pub group: usize,
    /// Row of the lower-triangular Cholesky factor L (length = group size), so that
    /// `nominal + se × (L z)_i` with z iid standard normal has the wanted correlations.
    pub cholesky_row: Vec<f64>,
}

/// Reads the uncertainty file (if any) and adds a normal for every curve parameter whose
/// standard error forest.toml gives (unless the file already names it).
pub fn uncertain_parameters(path: Option<&Path>, models: &Models) -> Result<Vec<Uncertain>> {
    let file: UncertaintyFile = match path {
        Some(p) => read_toml(p)?,
        None => UncertaintyFile::default(),
    };
    let mut nominal = models.clone();
    let label = path.map(Path::to_path_buf).unwrap_or_default();
    let mut out = Vec::new();
    for p in &file.parameters {
        if out.iter().any(|u: &Uncertain| u.target == p.target) {
            return Err(Error::invalid(
                &label,
                format!(
                    "target '{}' is given twice; one [[parameter]] per target",
                    p.target
                ),
            ));
        }
        let dist = p.dist().map_err(|m| Error::invalid(&label, m))?;
        let v = *nominal
            .slot(&p.target)
            .map_err(|m| Error::invalid(&label, m))?;
        let (lo, hi) = dist.support();
        if !(lo..=hi).contains(&v) {
            return Err(Error::invalid(
                &label,
                format!(
                    "parameter '{}': the model's nominal value {v} is outside the {} distribution's support [{lo}, {hi}]; centre the distribution on the model file's value",
                    p.target, p.distribution
                ),
            ));
        }
        out.push(Uncertain {
            target: p.target.clone(),
            dist,
            nominal: v,
            correlated: None,
        });
    }
    for t in &models.forest.types {
        for (name, se) in &t.standard_errors {
            let target = format!("forest.{}.{name}", t.name);
            if out.iter().any(|u| u.target == target) {
                continue;
            }
            let v = *nominal
                .slot(&target)
                .map_err(|m| Error::invalid("forest.toml", m))?;
            out.push(Uncertain {
                target,
                dist: Dist::Normal { se: *se },
                nominal: v,
                correlated: None,
            });
        }
        correlate(&mut out, t).map_err(|m| Error::invalid("forest.toml", m))?;
    }
    Ok(out)
}

/// Groups the normals of forest type `t` that forest.toml correlates, with the Cholesky
/// factor of their correlation matrix (nalgebra).
fn correlate(
    out: &mut [Uncertain],
    t: &crate::model::forest::ForestType,
) -> std::result::Result<(), String> {
    if t.correlations.is_empty() {
        return Ok(());
    }
    let names: Vec<&String> = t.standard_errors.keys().collect();
    let idx: Vec<usize> = names
        .iter()
        .filter_map(|n| {
            let target = format!("forest.{}.{n}", t.name);
            out.iter()
                .position(|u| u.target == target && matches!(u.dist, Dist::Normal { .. }))
        })
        .collect();
    if idx.len() != names.len() {
        return Err(format!(
            "forest type '{}': correlated parameters must all be drawn as normals from standard_errors",
            t.name
        ));
    }
    let n = names.len();
    let mut r = nalgebra::DMatrix::<f64>::identity(n, n);
    for (key, rho) in &t.correlations {
        let Some((p, q)) = key.split_once(',') else {
            continue;
        };
        let (Some(i), Some(j)) = (
            names.iter().position(|x| x.as_str() == p.trim()),
            names.iter().position(|x| x.as_str() == q.trim()),
        ) else {
            continue;
        };
        r[(i, j)] = *rho;
        r[(j, i)] = *rho;
    }
    let l = nalgebra::linalg::Cholesky::new(r)
        .ok_or_else(|| {
            format!(
                "forest type '{}': the correlations do not form a positive-definite matrix",
                t.name
            )
        })?
        .unpack();
    let group = out
        .iter()
        .filter_map(|u| u.correlated.as_ref())
        .map(|c| c.group + 1)
        .max()
        .unwrap_or(0);
    for (row, &k) in idx.iter().enumerate() {
        out[k].correlated = Some(Correlated {
            group,
            cholesky_row: (0..n).map(|c| l[(row, c)]).collect(),
        });
    }
    Ok(())
}

/// Warnings about priors whose mean is more than 1 % away from the model's nominal value
/// (the nominal value is each distribution's centre: docs/science.md).
pub fn prior_warnings(params: &[Uncertain]) -> Vec<String> {
    params
        .iter()
        .filter_map(|p| {
            let m = p.dist.mean(p.nominal);
            ((m - p.nominal).abs() > 0.01 * p.nominal.abs()).then(|| {
                format!(
                    "parameter '{}': the distribution's mean {m:.6} differs from the model's nominal value {} by more than 1 %; the Monte Carlo median will be biased",
                    p.target, p.nominal
                )
            })
        })
        .collect()
}

/// One draw of every uncertain parameter: (target, value).
/// Independent parameters are drawn one by one; a correlated group is drawn jointly as a
/// multivariate normal, truncated at 0 by redrawing the whole vector.
pub fn draw<R: Rng>(params: &[Uncertain], rng: &mut R) -> Vec<(String, f64)> {
    let mut values = vec![f64::NAN; params.len()];
    for (i, p) in params.iter().enumerate() {
        match &p.correlated {
            None => values[i] = p.dist.sample(p.nominal, rng),
            Some(c) if values[i].is_nan() => {
                let members: Vec<usize> = params
                    .iter()
                    .enumerate()
                    .filter(|(_, q)| q.correlated.as_ref().is_some_and(|d| d.group == c.group))
                    .map(|(k, _)| k)
                    .collect();
                let n = c.cholesky_row.len();
                let joint = |z: &[f64]| -> Vec<f64> {
                    members
                        .iter()
                        .map(|&k| {
                            let q = &params[k];
                            let se = match q.dist {
                                Dist::Normal { se } => se,
                                _ => 0.0,
                            };
                            let row = &q.correlated.as_ref().expect("member").cholesky_row;
                            q.nominal + se * row.iter().zip(z).map(|(l, z)| l * z).sum::<f64>()
                        })
                        .collect()
                };
                let mut v = members.iter().map(|&k| params[k].nominal).collect();
                for _ in 0..MAX_REDRAWS {
                    let z: Vec<f64> = (0..n).map(|_| standard_normal(rng)).collect();
                    let w = joint(&z);
                    if w.iter().all(|x| *x >= 0.0) {
                        v = w;
                        break;
                    }
                }
                for (&k, x) in members.iter().zip(v) {
                    values[k] = x;
                }
            }
            Some(_) => {}
        }
    }
    params
        .iter()
        .zip(values)
        .map(|(p, v)| (p.target.clone(), v))
        .collect()
}

/// Percentile by linear interpolation between order statistics (R type 7) of sorted data.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::forest::ForestModel;
    use rand::SeedableRng;

    #[test]
    fn percentiles_type7() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&v, 0.5), 3.0);
        assert!((percentile(&v, 0.05) - 1.2).abs() < 1e-12);
        assert!((percentile(&v, 0.95) - 4.8).abs() < 1e-12);
    }

    #[test]
    fn distributions_have_their_means() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for d in [
            Dist::Uniform { min: 1.0, max: 3.0 },
            Dist::Triangular {
                min: 0.1,
                mode: 0.3,
                max: 0.6,
            },
            Dist::Normal { se: 0.5 },
        ] {
            let n = 200_000;
            let m: f64 = (0..n).map(|_| d.sample(2.0, &mut rng)).sum::<f64>() / n as f64;
            assert!((m - d.mean(2.0)).abs() < 0.01, "{d:?}: {m}");
        }
        // Zero width: the value itself.
        assert_eq!(Dist::Normal { se: 0.0 }.sample(2.5, &mut rng), 2.5);
        assert_eq!(
            Dist::Uniform { min: 0.7, max: 0.7 }.sample(0.0, &mut rng),
            0.7
        );
    }

    #[test]
    fn bad_specs() {
        let p = |d: &str| ParamSpec {
            target: "x".into(),
            distribution: d.into(),
            se: None,
            min: Some(2.0),
            mode: Some(1.0),
            max: Some(3.0),
            source: "t".into(),
        };
        assert!(p("normal").dist().unwrap_err().contains("se"));
        assert!(p("triangular").dist().unwrap_err().contains("min ≤ mode"));
        assert!(p("lognormal")
            .dist()
            .unwrap_err()
            .contains("unknown distribution"));
    }

    fn forest_with(se_a: f64, se_b: f64, rho: Option<f64>) -> Models {
        let text = format!(
            r#"
default_forest_type = "p"
max_plausible_age_yr = 300
fallback_age_yr = 20
fallback_age_source = "t"
[[forest_type]]
code = 1
name = "p"
label = "p"
curve = {{ form = "richards", a_tc_per_ha = 40.0, b_per_yr = 0.05, c = 2.0 }}
curve_pools = "above_and_below_ground"
standard_errors = {{ a_tc_per_ha = {se_a}, b_per_yr = {se_b} }}
{}
evidence = "placeholder"
source = "t"
"#,
            rho.map(|r| format!("correlations = {{ \"a_tc_per_ha,b_per_yr\" = {r} }}"))
                .unwrap_or_default()
        );
        let forest: ForestModel = toml::from_str(&text).unwrap();
        forest.validate().unwrap();
        Models {
            scheme: toml::from_str("name = \"t\"\nsource = \"t\"\ncode = []").unwrap(),
            forest,
            pool_table: None,
            files: Vec::new(),
            desert: toml::from_str(
                "include_inorganic = false\ndefault_subtype = \"x\"\nsubtype = []",
            )
            .unwrap(),
            other: toml::from_str("class = []").unwrap(),
            restoration: None,
        }
    }

    #[test]
    fn normals_are_truncated_not_clamped() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let d = Dist::Normal { se: 1.0 };
        let n = 200_000;
        let v: Vec<f64> = (0..n).map(|_| d.sample(0.5, &mut rng)).collect();
        assert!(v.iter().all(|x| *x >= 0.0));
        // Clamping would put Φ(−0.5) = 30.9 % of the draws at exactly 0.
        assert!(v.iter().filter(|x| **x == 0.0).count() < 5);
        // Truncated mean by hand: 0.5 + φ(0.5)/Φ(0.5) = 0.5 + 0.352065/0.691462 = 1.009160.
        let m = v.iter().sum::<f64>() / n as f64;
        assert!((d.mean(0.5) - 1.009160).abs() < 1e-5, "{}", d.mean(0.5));
        assert!((m - 1.009160).abs() < 0.01, "{m}");
    }

    #[test]
    fn priors_are_checked_against_the_nominal_values() {
        let m = forest_with(4.0, 0.005, None);
        let dir = tempfile::tempdir().unwrap();
        let write = |body: &str| {
            let p = dir.path().join("u.toml");
            std::fs::write(&p, body).unwrap();
            p
        };
        // Nominal a = 40 outside U(45, 60): an error naming the file and the parameter.
        let p = write("[[parameter]]\ntarget = \"forest.p.a_tc_per_ha\"\ndistribution = \"uniform\"\nmin = 45.0\nmax = 60.0\nsource = \"t\"\n");
        let e = uncertain_parameters(Some(&p), &m).unwrap_err().to_string();
        assert!(
            e.contains("u.toml") && e.contains("outside") && e.contains("a_tc_per_ha"),
            "{e}"
        );
        // Inside, but the mean 41 is 2.5 % above 40: a warning.
        let p = write("[[parameter]]\ntarget = \"forest.p.a_tc_per_ha\"\ndistribution = \"triangular\"\nmin = 30.0\nmode = 40.0\nmax = 53.0\nsource = \"t\"\n");
        let u = uncertain_parameters(Some(&p), &m).unwrap();
        let w = prior_warnings(&u);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("41"), "{w:?}");
        // Centred: no warning.
        let p = write("[[parameter]]\ntarget = \"forest.p.a_tc_per_ha\"\ndistribution = \"triangular\"\nmin = 30.0\nmode = 40.0\nmax = 50.0\nsource = \"t\"\n");
        assert!(prior_warnings(&uncertain_parameters(Some(&p), &m).unwrap()).is_empty());
    }

    #[test]
    fn the_shipped_priors_are_centred() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let m = Models::load_dir(&root, &root.join("schemes/clcd.toml"), None).unwrap();
        let u = uncertain_parameters(Some(&root.join("uncertainty.toml")), &m).unwrap();
        assert!(u.len() >= 13);
        assert_eq!(prior_warnings(&u), Vec::<String>::new());
    }

    #[test]
    fn correlated_parameters_are_drawn_jointly() {
        let m = forest_with(4.0, 0.005, Some(-0.8));
        let u = uncertain_parameters(None, &m).unwrap();
        assert_eq!(u.len(), 2);
        assert!(u.iter().all(|p| p.correlated.is_some()));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let n = 50_000;
        let draws: Vec<(f64, f64)> = (0..n)
            .map(|_| {
                let d = draw(&u, &mut rng);
                let get = |t: &str| d.iter().find(|(k, _)| k.ends_with(t)).unwrap().1;
                (get("a_tc_per_ha"), get("b_per_yr"))
            })
            .collect();
        let mean = |f: &dyn Fn(&(f64, f64)) -> f64| draws.iter().map(f).sum::<f64>() / n as f64;
        let (ma, mb) = (mean(&|d| d.0), mean(&|d| d.1));
        let cov = mean(&|d| (d.0 - ma) * (d.1 - mb));
        let (sa, sb) = (
            mean(&|d| (d.0 - ma).powi(2)).sqrt(),
            mean(&|d| (d.1 - mb).powi(2)).sqrt(),
        );
        assert!((ma - 40.0).abs() < 0.1 && (mb - 0.05).abs() < 1e-4);
        assert!((sa - 4.0).abs() < 0.1 && (sb - 0.005).abs() < 1e-4);
        assert!((cov / (sa * sb) + 0.8).abs() < 0.02, "{}", cov / (sa * sb));
        // A correlation that is not a correlation is refused by forest.toml validation.
        let mut bad = m.forest.types[0].clone();
        bad.correlations.insert("a_tc_per_ha,c".into(), 0.5);
        assert!(bad.validate().is_err());
    }
}
