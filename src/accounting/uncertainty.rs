//! Parameter distributions for the Monte Carlo, and how a drawn value is put into the models.

use std::path::Path;

use rand::Rng;
use rand_distr::{Distribution, Normal, Triangular};
use serde::{Deserialize, Serialize};

use crate::config::read_toml;
use crate::error::{Error, Result};
use crate::model::desert::DesertModel;
use crate::model::forest::ForestModel;
use crate::model::growth::Curve;
use crate::model::other::OtherClasses;
use crate::model::restoration::{RestorationCatalogue, Trajectory};

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
    #[serde(default)]
    pub se: Option<f64>,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub mode: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    pub source: String,
}

/// The file `models/uncertainty.toml`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UncertaintyFile {
    #[serde(default, rename = "parameter")]
    pub parameters: Vec<ParamSpec>,
}

/// A checked distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dist {
    Normal { se: f64 },
    Uniform { min: f64, max: f64 },
    Triangular { min: f64, mode: f64, max: f64 },
}

impl Dist {
    /// Draws a value; `nominal` is the model's value (the mean of a normal).
    /// Normal draws are truncated at 0 (every parameter here is non-negative).
    pub fn sample<R: Rng>(&self, nominal: f64, rng: &mut R) -> f64 {
        match *self {
            Dist::Normal { se } => {
                if se == 0.0 {
                    return nominal;
                }
                let z: f64 = Normal::new(0.0, 1.0).map(|n| n.sample(rng)).unwrap_or(0.0);
                (nominal + se * z).max(0.0)
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

    /// The mean of the distribution (for a normal: the nominal value).
    pub fn mean(&self, nominal: f64) -> f64 {
        match *self {
            Dist::Normal { .. } => nominal,
            Dist::Uniform { min, max } => 0.5 * (min + max),
            Dist::Triangular { min, mode, max } => (min + mode + max) / 3.0,
        }
    }
}

impl ParamSpec {
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

/// The models a draw perturbs.
#[derive(Debug, Clone)]
pub struct ModelSet {
    pub forest: ForestModel,
    pub desert: DesertModel,
    pub other: OtherClasses,
    pub restoration: Option<RestorationCatalogue>,
}

fn curve_param<'a>(c: &'a mut Curve, name: &str) -> Option<&'a mut f64> {
    match c {
        Curve::Logistic {
            a_tc_per_ha,
            b,
            c_per_yr,
        }
        | Curve::Gompertz {
            a_tc_per_ha,
            b,
            c_per_yr,
        } => match name {
            "a_tc_per_ha" => Some(a_tc_per_ha),
            "b" => Some(b),
            "c_per_yr" => Some(c_per_yr),
            _ => None,
        },
        Curve::Richards {
            a_tc_per_ha,
            b_per_yr,
            c,
        } => match name {
            "a_tc_per_ha" => Some(a_tc_per_ha),
            "b_per_yr" => Some(b_per_yr),
            "c" => Some(c),
            _ => None,
        },
        Curve::Korf { a_tc_per_ha, b, c } => match name {
            "a_tc_per_ha" => Some(a_tc_per_ha),
            "b" => Some(b),
            "c" => Some(c),
            _ => None,
        },
        Curve::Tabulated { .. } => None,
    }
}

impl ModelSet {
    /// The value a target points at, mutably; an error names an unknown target.
    pub fn slot(&mut self, target: &str) -> std::result::Result<&mut f64, String> {
        let parts: Vec<&str> = target.split('.').collect();
        let unknown = || format!("unknown parameter target '{target}'");
        let [group, item, field] = parts[..] else {
            return Err(unknown());
        };
        match group {
            "forest" => {
                let t = self
                    .forest
                    .types
                    .iter_mut()
                    .find(|t| t.name == item)
                    .ok_or_else(unknown)?;
                curve_param(&mut t.curve, field).ok_or_else(unknown)
            }
            "desert" => {
                let s = self
                    .desert
                    .subtypes
                    .iter_mut()
                    .find(|s| s.name == item)
                    .ok_or_else(unknown)?;
                match field {
                    "crust_fixation_gc_per_m2_yr" => Ok(&mut s.crust_fixation_gc_per_m2_yr),
                    "shrub_growth_gc_per_m2_yr" => Ok(&mut s.shrub_growth_gc_per_m2_yr),
                    "inorganic_gc_per_m2_yr" => Ok(&mut s.inorganic_gc_per_m2_yr),
                    _ => Err(unknown()),
                }
            }
            "other" => {
                let c = self
                    .other
                    .classes
                    .iter_mut()
                    .find(|c| c.class.name() == item)
                    .ok_or_else(unknown)?;
                match field {
                    "sink_tc_per_ha_yr" => Ok(&mut c.sink_tc_per_ha_yr),
                    _ => Err(unknown()),
                }
            }
            "restoration" => {
                let cat = self.restoration.as_mut().ok_or_else(unknown)?;
                let i = cat
                    .interventions
                    .iter_mut()
                    .find(|i| i.name == item)
                    .ok_or_else(unknown)?;
                match (field, &mut i.trajectory) {
                    ("survival_fraction", _) => Ok(&mut i.survival_fraction),
                    (
                        "initial_rate_tc_per_ha_yr",
                        Trajectory::Rate {
                            initial_rate_tc_per_ha_yr,
                            ..
                        },
                    ) => Ok(initial_rate_tc_per_ha_yr),
                    _ => Err(unknown()),
                }
            }
            _ => Err(unknown()),
        }
    }
}

/// A parameter ready to draw: target, distribution, nominal value.
#[derive(Debug, Clone)]
pub struct Uncertain {
    pub target: String,
    pub dist: Dist,
    pub nominal: f64,
}

/// Reads the uncertainty file (if any) and adds a normal for every curve parameter whose
/// standard error forest.toml gives (unless the file already names it).
pub fn uncertain_parameters(path: Option<&Path>, models: &ModelSet) -> Result<Vec<Uncertain>> {
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
        out.push(Uncertain {
            target: p.target.clone(),
            dist,
            nominal: v,
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
            });
        }
    }
    Ok(out)
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
}
