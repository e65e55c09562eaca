//! Forest age → biomass carbon density curves (pure functions, no IO).
//!
//! All curves return carbon density in t C/ha for a stand age `t` in years.
//! The annual sink of a stand of age `t` is `(C(t+1) − C(t)) × 44/12` t CO₂/ha/yr
//! (docs/design.md, "Units and conventions").

use serde::{Deserialize, Serialize};

use super::{ModelError, CO2_PER_C};

/// An age–carbon-density curve. The parameter names carry their units; the
/// dimensionless shape parameters carry none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "form", rename_all = "lowercase", deny_unknown_fields)]
pub enum Curve {
    /// Logistic: C = a / (1 + b·e^(−c·t)).
    Logistic {
        /// Asymptote (t C/ha).
        a_tc_per_ha: f64,
        /// Shape.
        b: f64,
        /// Rate (1/yr).
        c_per_yr: f64,
    },
    /// Chapman–Richards: C = a·(1 − e^(−b·t))^c.
    Richards {
        /// Asymptote (t C/ha).
        a_tc_per_ha: f64,
        /// Rate (1/yr).
        b_per_yr: f64,
        /// Shape.
        c: f64,
    },
    /// Gompertz: C = a·e^(−b·e^(−c·t)).
    Gompertz {
        /// Asymptote (t C/ha).
        a_tc_per_ha: f64,
        /// Shape.
        b: f64,
        /// Rate (1/yr).
        c_per_yr: f64,
    },
    /// Korf: C = a·e^(−b·t^(−c)), C(0) = 0 (c > 0).
    Korf {
        /// Asymptote (t C/ha).
        a_tc_per_ha: f64,
        /// Scale.
        b: f64,
        /// Shape.
        c: f64,
    },
    /// Tabulated: linear interpolation between (age, density) points; constant
    /// beyond the last point; linear from (0, 0) before the first point (unless the table
    /// starts at age 0), so a new stand starts with no carbon.
    Tabulated {
        /// Ages of the points (yr), increasing.
        ages_yr: Vec<f64>,
        /// Densities at those ages (t C/ha).
        stock_tc_per_ha: Vec<f64>,
    },
}

impl Curve {
    /// Carbon density (t C/ha) at stand age `t_yr` (≥ 0).
    pub fn carbon_tc_per_ha(&self, t_yr: f64) -> f64 {
        let t = t_yr.max(0.0);
        match *self {
            Curve::Logistic {
                a_tc_per_ha,
                b,
                c_per_yr,
            } => a_tc_per_ha / (1.0 + b * (-c_per_yr * t).exp()),
            Curve::Richards {
                a_tc_per_ha,
                b_per_yr,
                c,
            } => a_tc_per_ha * (1.0 - (-b_per_yr * t).exp()).powf(c),
            Curve::Gompertz {
                a_tc_per_ha,
                b,
                c_per_yr,
            } => a_tc_per_ha * (-b * (-c_per_yr * t).exp()).exp(),
            Curve::Korf { a_tc_per_ha, b, c } => {
                if t == 0.0 {
                    0.0
                } else {
                    a_tc_per_ha * (-b * t.powf(-c)).exp()
                }
            }
            Curve::Tabulated {
                ref ages_yr,
                ref stock_tc_per_ha,
            } => interpolate(ages_yr, stock_tc_per_ha, t),
        }
    }

    /// Annual sink (t CO₂/ha/yr) of a stand aged `t_yr`: (C(t+1) − C(t)) × 44/12.
    pub fn sink_tco2_per_ha_yr(&self, t_yr: f64) -> f64 {
        (self.carbon_tc_per_ha(t_yr + 1.0) - self.carbon_tc_per_ha(t_yr)) * CO2_PER_C
    }

    /// The asymptote (t C/ha) where the form has one, else the largest tabulated value.
    pub fn max_tc_per_ha(&self) -> f64 {
        match *self {
            Curve::Logistic { a_tc_per_ha, .. }
            | Curve::Richards { a_tc_per_ha, .. }
            | Curve::Gompertz { a_tc_per_ha, .. }
            | Curve::Korf { a_tc_per_ha, .. } => a_tc_per_ha,
            Curve::Tabulated {
                ref stock_tc_per_ha,
                ..
            } => stock_tc_per_ha.iter().copied().fold(0.0, f64::max),
        }
    }

    /// Names of the parameters, for matching standard errors.
    pub fn parameter_names(&self) -> &'static [&'static str] {
        match self {
            Curve::Logistic { .. } | Curve::Gompertz { .. } => &["a_tc_per_ha", "b", "c_per_yr"],
            Curve::Richards { .. } => &["a_tc_per_ha", "b_per_yr", "c"],
            Curve::Korf { .. } => &["a_tc_per_ha", "b", "c"],
            Curve::Tabulated { .. } => &[],
        }
    }

    /// Checks that the parameters describe a physical curve.
    pub fn validate(&self) -> Result<(), ModelError> {
        let finite_pos = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(ModelError::range("curve", name, v, "positive and finite"))
            }
        };
        match *self {
            Curve::Logistic {
                a_tc_per_ha,
                b,
                c_per_yr,
            }
            | Curve::Gompertz {
                a_tc_per_ha,
                b,
                c_per_yr,
            } => {
                finite_pos("a_tc_per_ha", a_tc_per_ha)?;
                finite_pos("b", b)?;
                finite_pos("c_per_yr", c_per_yr)
            }
            Curve::Richards {
                a_tc_per_ha,
                b_per_yr,
                c,
            } => {
                finite_pos("a_tc_per_ha", a_tc_per_ha)?;
                finite_pos("b_per_yr", b_per_yr)?;
                finite_pos("c", c)?;
                // With c < 1 the slope at age 0 is infinite (a = 45, b = 0.1, c = 0.5 gains
                // 50.9 t CO2/ha in the first year): not a growth curve.
                if c < 1.0 {
                    return Err(ModelError::range(
                        "curve (Richards: c < 1 gives an unbounded growth rate at age 0)",
                        "c",
                        c,
                        "≥ 1",
                    ));
                }
                Ok(())
            }
            Curve::Korf { a_tc_per_ha, b, c } => {
                finite_pos("a_tc_per_ha", a_tc_per_ha)?;
                finite_pos("b", b)?;
                finite_pos("c", c)
            }
            Curve::Tabulated {
                ref ages_yr,
                ref stock_tc_per_ha,
            } => {
                if ages_yr.is_empty() || ages_yr.len() != stock_tc_per_ha.len() {
                    return Err(ModelError::inconsistent(
                        "curve",
                        format!(
                            "ages_yr ({}) and stock_tc_per_ha ({}) must be non-empty and of equal length",
                            ages_yr.len(),
                            stock_tc_per_ha.len()
                        ),
                    ));
                }
                if ages_yr
                    .windows(2)
                    .any(|w| w[1].partial_cmp(&w[0]) != Some(std::cmp::Ordering::Greater))
                    || ages_yr[0] < 0.0
                {
                    return Err(ModelError::inconsistent(
                        "curve",
                        "ages_yr must be non-negative and strictly increasing",
                    ));
                }
                if let Some(v) = stock_tc_per_ha.iter().find(|v| !v.is_finite() || **v < 0.0) {
                    return Err(ModelError::range(
                        "curve",
                        "stock_tc_per_ha",
                        *v,
                        "finite and ≥ 0",
                    ));
                }
                Ok(())
            }
        }
    }
}

/// Piecewise-linear interpolation; before the first point the line runs from (0, 0)
/// (a table starting at age 0 gives its own value there), and beyond the last point it
/// stays constant.
fn interpolate(xs: &[f64], ys: &[f64], x: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    if x <= xs[0] {
        return if xs[0] > 0.0 {
            ys[0] * x / xs[0]
        } else {
            ys[0]
        };
    }
    for i in 1..xs.len() {
        if x <= xs[i] {
            let f = (x - xs[i - 1]) / (xs[i] - xs[i - 1]);
            return ys[i - 1] + f * (ys[i] - ys[i - 1]);
        }
    }
    ys[ys.len() - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * (1.0 + b.abs())
    }

    #[test]
    fn logistic_matches_closed_form() {
        let c = Curve::Logistic {
            a_tc_per_ha: 100.0,
            b: 9.0,
            c_per_yr: 0.1,
        };
        // t = 0: 100 / (1 + 9) = 10
        assert!(close(c.carbon_tc_per_ha(0.0), 10.0));
        // inflection at t = ln(b)/c: C = a/2
        let t_half = 9f64.ln() / 0.1;
        assert!(close(c.carbon_tc_per_ha(t_half), 50.0));
    }

    #[test]
    fn richards_matches_closed_form() {
        let c = Curve::Richards {
            a_tc_per_ha: 75.0,
            b_per_yr: 0.025,
            c: 2.5,
        };
        assert_eq!(c.carbon_tc_per_ha(0.0), 0.0);
        // t = ln 2 / b → (1 − 1/2)^2.5 = 0.1767767
        let t = 2f64.ln() / 0.025;
        assert!(close(c.carbon_tc_per_ha(t), 75.0 * 0.5f64.powf(2.5)));
    }

    #[test]
    fn gompertz_matches_closed_form() {
        let c = Curve::Gompertz {
            a_tc_per_ha: 60.0,
            b: 3.0,
            c_per_yr: 0.05,
        };
        assert!(close(c.carbon_tc_per_ha(0.0), 60.0 * (-3.0f64).exp()));
        // t = ln(b)/c → a/e
        let t = 3f64.ln() / 0.05;
        assert!(close(c.carbon_tc_per_ha(t), 60.0 / std::f64::consts::E));
    }

    #[test]
    fn korf_matches_closed_form() {
        let c = Curve::Korf {
            a_tc_per_ha: 126.0,
            b: 8.0,
            c: 0.5,
        };
        assert_eq!(c.carbon_tc_per_ha(0.0), 0.0);
        // t = 64: t^-0.5 = 1/8 → a·e^-1
        assert!(close(c.carbon_tc_per_ha(64.0), 126.0 / std::f64::consts::E));
    }

    #[test]
    fn tabulated_interpolates_and_saturates() {
        let c = Curve::Tabulated {
            ages_yr: vec![0.0, 10.0, 30.0],
            stock_tc_per_ha: vec![0.0, 20.0, 30.0],
        };
        assert!(close(c.carbon_tc_per_ha(5.0), 10.0));
        assert!(close(c.carbon_tc_per_ha(20.0), 25.0));
        assert!(close(c.carbon_tc_per_ha(100.0), 30.0));
        assert!(c.validate().is_ok());
        let bad = Curve::Tabulated {
            ages_yr: vec![0.0, 0.0],
            stock_tc_per_ha: vec![1.0, 2.0],
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn sink_is_the_annual_difference_in_co2() {
        let c = Curve::Richards {
            a_tc_per_ha: 45.0,
            b_per_yr: 0.1,
            c: 2.0,
        };
        let t = 12.0;
        let by_hand =
            45.0 * ((1.0 - (-1.3f64).exp()).powi(2) - (1.0 - (-1.2f64).exp()).powi(2)) * 44.0
                / 12.0;
        assert!(close(c.sink_tco2_per_ha_yr(t), by_hand));
    }

    #[test]
    fn tabulated_curves_start_from_zero() {
        let c = Curve::Tabulated {
            ages_yr: vec![10.0, 20.0],
            stock_tc_per_ha: vec![20.0, 30.0],
        };
        assert_eq!(c.carbon_tc_per_ha(0.0), 0.0);
        assert!(close(c.carbon_tc_per_ha(5.0), 10.0));
        // The first year's gain is 2 t C/ha (×44/12), not 0.
        assert!(close(c.sink_tco2_per_ha_yr(0.0), 2.0 * 44.0 / 12.0));
        assert!(close(c.carbon_tc_per_ha(15.0), 25.0));
    }

    #[test]
    fn richards_with_c_below_one_is_refused() {
        let bad = Curve::Richards {
            a_tc_per_ha: 45.0,
            b_per_yr: 0.1,
            c: 0.5,
        };
        // 45·(1 − e^−0.1)^0.5 = 13.882 t C/ha in the first year = 50.90 t CO2/ha.
        assert!((bad.sink_tco2_per_ha_yr(0.0) - 50.90).abs() < 0.01);
        assert!(
            matches!(bad.validate(), Err(ModelError::OutOfRange { field, value, .. }) if field == "c" && value == 0.5)
        );
        let ok = Curve::Richards {
            a_tc_per_ha: 45.0,
            b_per_yr: 0.1,
            c: 1.0,
        };
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn non_physical_parameters_are_rejected() {
        assert!(Curve::Richards {
            a_tc_per_ha: -1.0,
            b_per_yr: 0.1,
            c: 2.0
        }
        .validate()
        .is_err());
        assert!(Curve::Logistic {
            a_tc_per_ha: 1.0,
            b: f64::NAN,
            c_per_yr: 0.1
        }
        .validate()
        .is_err());
    }
}
