//! Forest types: an age–carbon-density curve per type plus constant dead-matter and soil pools.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::growth::Curve;
use super::{Evidence, ModelError, Pools};

/// What the curve measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CurvePools {
    /// Above- plus below-ground biomass carbon.
    AboveAndBelowGround,
    /// Above-ground biomass carbon only; below ground = above × root_shoot_ratio.
    AboveGround,
}

/// One forest type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForestType {
    /// Value of this type in the forest-type raster.
    pub code: i32,
    /// Identifier used in tables (snake_case).
    pub name: String,
    /// Human-readable name.
    pub label: String,
    /// Age–carbon-density curve.
    pub curve: Curve,
    /// Which pools the curve's densities include.
    pub curve_pools: CurvePools,
    /// Root:shoot ratio used when the curve is above-ground only (dimensionless).
    #[serde(default)]
    pub root_shoot_ratio: Option<f64>,
    /// Dead wood and litter (t C/ha), added when the scene counts dead matter.
    #[serde(default)]
    pub dead_matter_tc_per_ha: f64,
    /// Soil organic carbon (t C/ha), added when the scene counts soil.
    #[serde(default)]
    pub soil_tc_per_ha: f64,
    /// Coefficient of determination of the published or fitted curve, if known.
    #[serde(default)]
    pub r_squared: Option<f64>,
    /// Standard errors of the curve parameters, keyed by parameter name.
    #[serde(default)]
    pub standard_errors: BTreeMap<String, f64>,
    /// Correlations between curve parameters with standard errors, keyed `"P1,P2"` (as
    /// `sinkmap fit` estimates them); the Monte Carlo draws such parameters jointly.
    #[serde(default)]
    pub correlations: BTreeMap<String, f64>,
    /// How sure the curve is.
    pub evidence: Evidence,
    /// Where the curve comes from.
    pub source: String,
}

impl ForestType {
    /// Living biomass carbon (above + below ground, t C/ha) at age `t_yr`.
    pub fn biomass_tc_per_ha(&self, t_yr: f64) -> f64 {
        let c = self.curve.carbon_tc_per_ha(t_yr);
        match self.curve_pools {
            CurvePools::AboveAndBelowGround => c,
            CurvePools::AboveGround => c * (1.0 + self.root_shoot_ratio.unwrap_or(0.0)),
        }
    }

    /// Stock density (t C/ha) of a stand aged `t_yr` with the pools asked for.
    pub fn stock_tc_per_ha(&self, t_yr: f64, pools: Pools) -> f64 {
        let mut s = self.biomass_tc_per_ha(t_yr);
        if pools.dead_matter {
            s += self.dead_matter_tc_per_ha;
        }
        if pools.soil {
            s += self.soil_tc_per_ha;
        }
        s
    }

    /// Annual sink (t CO₂/ha/yr) of a stand aged `t_yr`: biomass growth over the next year.
    /// Dead matter and soil are taken as in steady state (IPCC Tier 1 assumption).
    pub fn sink_tco2_per_ha_yr(&self, t_yr: f64) -> f64 {
        (self.biomass_tc_per_ha(t_yr + 1.0) - self.biomass_tc_per_ha(t_yr)) * super::CO2_PER_C
    }

    /// Checks the curve, the root:shoot ratio an above-ground curve needs, the standard
    /// errors' parameter names and the constant pools.
    pub fn validate(&self) -> Result<(), ModelError> {
        let item = format!("forest type '{}'", self.name);
        self.curve.validate().map_err(|e| e.within(&item))?;
        if self.curve_pools == CurvePools::AboveGround {
            match self.root_shoot_ratio {
                Some(r) if r.is_finite() && r >= 0.0 => {}
                r => {
                    return Err(ModelError::range(
                        item,
                        "root_shoot_ratio (needed by curve_pools = \"above_ground\")",
                        r.unwrap_or(f64::NAN),
                        "given, finite and ≥ 0",
                    ))
                }
            }
        }
        for key in self.standard_errors.keys() {
            if !self.curve.parameter_names().contains(&key.as_str()) {
                return Err(ModelError::inconsistent(
                    item,
                    format!(
                        "standard error for unknown parameter '{key}' (the {} curve has {:?})",
                        serde_json::to_value(&self.curve)
                            .ok()
                            .and_then(|v| v.get("form").and_then(|f| f.as_str().map(String::from)))
                            .unwrap_or_default(),
                        self.curve.parameter_names()
                    ),
                ));
            }
        }
        for (key, r) in &self.correlations {
            let ok = key.split_once(',').is_some_and(|(p, q)| {
                p != q
                    && self.standard_errors.contains_key(p.trim())
                    && self.standard_errors.contains_key(q.trim())
            });
            if !ok || !(-1.0..=1.0).contains(r) {
                return Err(ModelError::inconsistent(
                    format!("forest type '{}'", self.name),
                    format!("correlation '{key}' = {r} needs two different parameters with standard errors (\"P1,P2\") and a value in [-1, 1]"),
                ));
            }
        }
        for (n, v) in [
            ("dead_matter_tc_per_ha", self.dead_matter_tc_per_ha),
            ("soil_tc_per_ha", self.soil_tc_per_ha),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(ModelError::range(item, n, v, "finite and ≥ 0"));
            }
        }
        Ok(())
    }
}

/// The file `models/forest.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForestModel {
    /// Forest type used where no forest-type layer exists or it has no data.
    pub default_forest_type: String,
    /// Ages above this are taken as a broken age layer, not as old trees (yr).
    pub max_plausible_age_yr: u32,
    /// Age assumed for forest pixels that have no age value (yr).
    pub fallback_age_yr: u32,
    /// Where the fallback age comes from.
    pub fallback_age_source: String,
    /// The forest types (`[[forest_type]]` tables).
    #[serde(rename = "forest_type")]
    pub types: Vec<ForestType>,
}

impl ForestModel {
    /// Checks every type, unique names and codes, the default type and the ages.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.types.is_empty() {
            return Err(ModelError::inconsistent(
                "forest.toml",
                "no [[forest_type]] defined",
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        let mut codes = std::collections::BTreeSet::new();
        for t in &self.types {
            t.validate()?;
            if !names.insert(&t.name) {
                return Err(ModelError::Duplicate {
                    what: "forest type name",
                    key: format!("'{}'", t.name),
                });
            }
            if !codes.insert(t.code) {
                return Err(ModelError::Duplicate {
                    what: "forest type code",
                    key: t.code.to_string(),
                });
            }
        }
        if self.type_index(&self.default_forest_type).is_none() {
            return Err(ModelError::undefined(
                "default_forest_type",
                "forest type",
                &self.default_forest_type,
            ));
        }
        if self.fallback_age_yr > self.max_plausible_age_yr {
            return Err(ModelError::range(
                "forest.toml",
                "fallback_age_yr",
                self.fallback_age_yr as f64,
                "at most max_plausible_age_yr",
            ));
        }
        Ok(())
    }

    /// Position of the forest type called `name`.
    pub fn type_index(&self, name: &str) -> Option<usize> {
        self.types.iter().position(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spruce(pools: CurvePools, rs: Option<f64>) -> ForestType {
        ForestType {
            code: 1,
            name: "spruce".into(),
            label: "Spruce".into(),
            curve: Curve::Richards {
                a_tc_per_ha: 75.0,
                b_per_yr: 0.025,
                c: 2.5,
            },
            curve_pools: pools,
            root_shoot_ratio: rs,
            dead_matter_tc_per_ha: 4.0,
            soil_tc_per_ha: 90.0,
            r_squared: None,
            standard_errors: BTreeMap::new(),
            correlations: BTreeMap::new(),
            evidence: Evidence::Placeholder,
            source: "test".into(),
        }
    }

    #[test]
    fn above_ground_curve_is_expanded_by_root_shoot_ratio() {
        let t = spruce(CurvePools::AboveGround, Some(0.2));
        let c40 = 75.0 * (1.0 - (-1.0f64).exp()).powf(2.5);
        assert!((t.biomass_tc_per_ha(40.0) - c40 * 1.2).abs() < 1e-12);
        assert!(
            (t.stock_tc_per_ha(
                40.0,
                Pools {
                    dead_matter: true,
                    soil: true
                }
            ) - (c40 * 1.2 + 94.0))
                .abs()
                < 1e-12
        );
        let c41 = 75.0 * (1.0 - (-1.025f64).exp()).powf(2.5);
        assert!((t.sink_tco2_per_ha_yr(40.0) - (c41 - c40) * 1.2 * 44.0 / 12.0).abs() < 1e-12);
    }

    #[test]
    fn above_ground_without_ratio_is_invalid() {
        assert!(spruce(CurvePools::AboveGround, None).validate().is_err());
        assert!(spruce(CurvePools::AboveAndBelowGround, None)
            .validate()
            .is_ok());
    }

    #[test]
    fn standard_errors_must_name_curve_parameters() {
        let mut t = spruce(CurvePools::AboveAndBelowGround, None);
        t.standard_errors.insert("b_per_yr".into(), 0.002);
        assert!(t.validate().is_ok());
        t.standard_errors.insert("k".into(), 0.1);
        assert!(matches!(
            t.validate(),
            Err(ModelError::Inconsistent { message, .. }) if message.contains("unknown parameter 'k'")
        ));
    }
}
