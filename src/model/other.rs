//! Stock densities and sink rates of the non-forest, non-desert classes.

use serde::{Deserialize, Serialize};

use super::{EcosystemClass, Evidence, ModelError, Pools, CO2_PER_C};

/// Carbon densities and net rate of one ecosystem class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassCarbon {
    /// The class these numbers are for.
    pub class: EcosystemClass,
    /// Living biomass carbon, above + below ground (t C/ha).
    pub biomass_tc_per_ha: f64,
    /// Dead wood and litter (t C/ha), added when the scene counts dead matter.
    #[serde(default)]
    pub dead_matter_tc_per_ha: f64,
    /// Soil organic carbon (t C/ha), added when the scene counts soil.
    #[serde(default)]
    pub soil_tc_per_ha: f64,
    /// Net annual change of the carbon stock (t C/ha/yr; positive = uptake).
    pub sink_tc_per_ha_yr: f64,
    /// How sure the numbers are.
    pub evidence: Evidence,
    /// Where the numbers come from.
    pub source: String,
}

impl ClassCarbon {
    /// Stock of one hectare (t C/ha): biomass plus the pools the scene counts.
    pub fn stock_tc_per_ha(&self, pools: Pools) -> f64 {
        let mut s = self.biomass_tc_per_ha;
        if pools.dead_matter {
            s += self.dead_matter_tc_per_ha;
        }
        if pools.soil {
            s += self.soil_tc_per_ha;
        }
        s
    }

    /// The sink in t CO₂/ha/yr.
    pub fn sink_tco2_per_ha_yr(&self) -> f64 {
        self.sink_tc_per_ha_yr * CO2_PER_C
    }

    /// Checks the pools (finite, ≥ 0) and the rate (finite).
    pub fn validate(&self) -> Result<(), ModelError> {
        for (n, v) in [
            ("biomass_tc_per_ha", self.biomass_tc_per_ha),
            ("dead_matter_tc_per_ha", self.dead_matter_tc_per_ha),
            ("soil_tc_per_ha", self.soil_tc_per_ha),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(ModelError::range(
                    format!("class {}", self.class.name()),
                    n,
                    v,
                    "finite and ≥ 0",
                ));
            }
        }
        if !self.sink_tc_per_ha_yr.is_finite() {
            return Err(ModelError::range(
                format!("class {}", self.class.name()),
                "sink_tc_per_ha_yr",
                self.sink_tc_per_ha_yr,
                "finite",
            ));
        }
        Ok(())
    }
}

/// The file `models/other_classes.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtherClasses {
    /// One entry per class (`[[class]]` tables).
    #[serde(rename = "class")]
    pub classes: Vec<ClassCarbon>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_add_up_as_configured() {
        let c = ClassCarbon {
            class: EcosystemClass::Grassland,
            biomass_tc_per_ha: 3.0,
            dead_matter_tc_per_ha: 0.5,
            soil_tc_per_ha: 33.0,
            sink_tc_per_ha_yr: 0.12,
            evidence: Evidence::Derived,
            source: "test".into(),
        };
        assert_eq!(c.stock_tc_per_ha(Pools::default()), 3.0);
        assert_eq!(
            c.stock_tc_per_ha(Pools {
                dead_matter: true,
                soil: true
            }),
            36.5
        );
        assert!((c.sink_tco2_per_ha_yr() - 0.12 * 44.0 / 12.0).abs() < 1e-15);
    }
}
