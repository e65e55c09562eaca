//! Desert-ecosystem sink: per subtype a sum of components, each reported on its own
//! because the soil inorganic term is scientifically contested (science.md §2).

use serde::{Deserialize, Serialize};

use super::{Evidence, ModelError, Pools, CO2_PER_C, TC_PER_HA_PER_GC_PER_M2};

/// One desert subtype (mobile dune, semi-fixed dune, fixed dune, gobi, saline-alkali land, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesertSubtype {
    /// Value in the desert-subtype raster.
    pub code: i32,
    /// Identifier used in tables and parameter targets (snake_case).
    pub name: String,
    /// Human-readable name.
    pub label: String,
    /// Living biomass carbon (shrubs, crusts; t C/ha).
    pub biomass_tc_per_ha: f64,
    /// Soil organic carbon (t C/ha).
    #[serde(default)]
    pub soil_tc_per_ha: f64,
    /// Net fixation by biological soil crusts (g C/m²/yr).
    pub crust_fixation_gc_per_m2_yr: f64,
    /// Biomass growth of desert shrubs (g C/m²/yr).
    pub shrub_growth_gc_per_m2_yr: f64,
    /// Soil inorganic carbon accumulation (g C/m²/yr) — contested.
    pub inorganic_gc_per_m2_yr: f64,
    /// How sure the numbers of this subtype are.
    pub evidence: Evidence,
    /// Where the numbers come from.
    pub source: String,
}

/// Sink components of one pixel (t CO₂/ha/yr).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DesertSink {
    /// Biological soil crusts.
    pub crust_tco2_per_ha_yr: f64,
    /// Desert shrub growth.
    pub shrub_tco2_per_ha_yr: f64,
    /// Soil inorganic carbon (counted in the headline only when switched on).
    pub inorganic_tco2_per_ha_yr: f64,
}

impl DesertSubtype {
    /// Stock of one hectare (t C/ha): biomass, plus soil organic carbon when `pools.soil`.
    pub fn stock_tc_per_ha(&self, pools: Pools) -> f64 {
        self.biomass_tc_per_ha + if pools.soil { self.soil_tc_per_ha } else { 0.0 }
    }

    /// The subtype's sink components converted from g C/m²/yr to t CO₂/ha/yr.
    pub fn sink(&self) -> DesertSink {
        let k = TC_PER_HA_PER_GC_PER_M2 * CO2_PER_C;
        DesertSink {
            crust_tco2_per_ha_yr: self.crust_fixation_gc_per_m2_yr * k,
            shrub_tco2_per_ha_yr: self.shrub_growth_gc_per_m2_yr * k,
            inorganic_tco2_per_ha_yr: self.inorganic_gc_per_m2_yr * k,
        }
    }

    /// Checks the stocks (finite, ≥ 0) and the components (finite).
    pub fn validate(&self) -> Result<(), ModelError> {
        for (n, v) in [
            ("biomass_tc_per_ha", self.biomass_tc_per_ha),
            ("soil_tc_per_ha", self.soil_tc_per_ha),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(ModelError::range(
                    format!("desert subtype '{}'", self.name),
                    n,
                    v,
                    "finite and ≥ 0",
                ));
            }
        }
        for (n, v) in [
            (
                "crust_fixation_gc_per_m2_yr",
                self.crust_fixation_gc_per_m2_yr,
            ),
            ("shrub_growth_gc_per_m2_yr", self.shrub_growth_gc_per_m2_yr),
            ("inorganic_gc_per_m2_yr", self.inorganic_gc_per_m2_yr),
        ] {
            if !v.is_finite() {
                return Err(ModelError::range(
                    format!("desert subtype '{}'", self.name),
                    n,
                    v,
                    "finite",
                ));
            }
        }
        Ok(())
    }
}

impl DesertSubtype {
    /// Every parameter inside the (name, low, high) `ranges`, else `why`.
    pub fn check_within(
        &self,
        ranges: &[(&str, f64, f64); 5],
        why: &str,
    ) -> Result<(), ModelError> {
        let values = [
            self.biomass_tc_per_ha,
            self.soil_tc_per_ha,
            self.crust_fixation_gc_per_m2_yr,
            self.shrub_growth_gc_per_m2_yr,
            self.inorganic_gc_per_m2_yr,
        ];
        for ((name, lo, hi), v) in ranges.iter().zip(values) {
            if !(*lo..=*hi).contains(&v) {
                return Err(ModelError::Inconsistent {
                    item: format!("desert subtype '{}'", self.name),
                    message: format!("{name} = {v} is {why} ({lo}..{hi})"),
                });
            }
        }
        Ok(())
    }
}

impl DesertSink {
    /// The sink counted in the headline total: inorganic only when switched on.
    pub fn counted_tco2_per_ha_yr(&self, include_inorganic: bool) -> f64 {
        self.crust_tco2_per_ha_yr
            + self.shrub_tco2_per_ha_yr
            + if include_inorganic {
                self.inorganic_tco2_per_ha_yr
            } else {
                0.0
            }
    }
}

/// The file `models/desert.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesertModel {
    /// Count the soil inorganic term in the total sink (it is always reported separately).
    pub include_inorganic: bool,
    /// Subtype used for barren pixels without a desert-subtype value.
    pub default_subtype: String,
    /// The subtypes (`[[subtype]]` tables).
    #[serde(rename = "subtype")]
    pub subtypes: Vec<DesertSubtype>,
    /// Accept values outside [`PLAUSIBLE`] (a deliberate, recorded choice in the file).
    #[serde(default)]
    pub accept_implausible: bool,
}

/// Bounds no file may pass, overridden or not: far beyond any land, and small enough that the
/// exact fixed-point sums of the cube cannot overflow.
pub const HARD_LIMITS: [(&str, f64, f64); 5] = [
    ("biomass_tc_per_ha", 0.0, 10_000.0),
    ("soil_tc_per_ha", 0.0, 10_000.0),
    ("crust_fixation_gc_per_m2_yr", -100_000.0, 100_000.0),
    ("shrub_growth_gc_per_m2_yr", -100_000.0, 100_000.0),
    ("inorganic_gc_per_m2_yr", -100_000.0, 100_000.0),
];

/// Plausible ranges of desert parameters: (name, low, high). Measured desert values lie well
/// inside (crust fixation ~5–15 g C/m²/yr, saline-soil inorganic input up to ~30, shrub NPP a
/// few tens); a value outside is taken for a unit or sign slip. `accept_implausible = true`
/// in desert.toml overrides.
pub const PLAUSIBLE: [(&str, f64, f64); 5] = [
    ("biomass_tc_per_ha", 0.0, 100.0),
    ("soil_tc_per_ha", 0.0, 500.0),
    ("crust_fixation_gc_per_m2_yr", -50.0, 50.0),
    ("shrub_growth_gc_per_m2_yr", -100.0, 300.0),
    ("inorganic_gc_per_m2_yr", -50.0, 50.0),
];

impl DesertModel {
    /// Checks every subtype, unique codes and the default subtype.
    pub fn validate(&self) -> Result<(), ModelError> {
        let mut codes = std::collections::BTreeSet::new();
        for s in &self.subtypes {
            s.validate()?;
            s.check_within(
                &HARD_LIMITS,
                "beyond what any land can hold or take up; even accept_implausible cannot allow it",
            )?;
            if !self.accept_implausible {
                s.check_within(&PLAUSIBLE, "outside the plausible range (a unit or sign slip?); if it is meant, set accept_implausible = true at the top of desert.toml")?;
            }
            if !codes.insert(s.code) {
                return Err(ModelError::Duplicate {
                    what: "desert subtype code",
                    key: s.code.to_string(),
                });
            }
        }
        if self.subtype_index(&self.default_subtype).is_none() {
            return Err(ModelError::undefined(
                "default_subtype",
                "desert subtype",
                &self.default_subtype,
            ));
        }
        Ok(())
    }

    /// Position of the subtype called `name`.
    pub fn subtype_index(&self, name: &str) -> Option<usize> {
        self.subtypes.iter().position(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_convert_from_grams_per_m2_to_tco2_per_ha() {
        let s = DesertSubtype {
            code: 3,
            name: "fixed_dune".into(),
            label: "Fixed dune".into(),
            biomass_tc_per_ha: 2.0,
            soil_tc_per_ha: 14.1,
            crust_fixation_gc_per_m2_yr: 3.0,
            shrub_growth_gc_per_m2_yr: 6.0,
            inorganic_gc_per_m2_yr: 1.2,
            evidence: Evidence::Placeholder,
            source: "test".into(),
        };
        let k = 0.01 * 44.0 / 12.0;
        let sink = s.sink();
        assert!((sink.crust_tco2_per_ha_yr - 3.0 * k).abs() < 1e-15);
        assert!((sink.counted_tco2_per_ha_yr(false) - 9.0 * k).abs() < 1e-15);
        assert!((sink.counted_tco2_per_ha_yr(true) - 10.2 * k).abs() < 1e-15);
        assert_eq!(
            s.stock_tc_per_ha(Pools {
                dead_matter: false,
                soil: true
            }),
            16.1
        );
    }
}
