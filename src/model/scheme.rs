//! Land-cover schemes: raster codes → ecosystem classes; InVEST-style pool tables.

use serde::{Deserialize, Serialize};

use super::{EcosystemClass, ModelError};

/// One land-cover code of a scheme.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemeCode {
    /// Raster value.
    pub value: i32,
    /// What the code means in the scheme's own words.
    pub label: String,
    /// Ecosystem class the code is mapped to.
    pub class: EcosystemClass,
    /// Forest type for this code where no forest-type layer says otherwise (e.g. MODIS ENF).
    #[serde(default)]
    pub forest_type: Option<String>,
    /// Desert subtype for this code where no desert-subtype layer says otherwise.
    #[serde(default)]
    pub desert_subtype: Option<String>,
}

/// A land-cover scheme file (`models/schemes/NAME.toml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scheme {
    /// Scheme name (e.g. `clcd`).
    pub name: String,
    /// Where the code list comes from.
    pub source: String,
    /// Code that means "no data" when the raster declares none.
    #[serde(default)]
    pub nodata_value: Option<i32>,
    /// The codes (`[[code]]` tables).
    #[serde(rename = "code")]
    pub codes: Vec<SchemeCode>,
}

/// Largest land-cover code a scheme may use (codes index a dense lookup table).
pub const MAX_CODE: i32 = 65_535;

impl Scheme {
    /// Checks that there are codes, each in range, unique and not the nodata value.
    pub fn validate(&self) -> Result<(), ModelError> {
        let item = format!("scheme '{}'", self.name);
        if self.codes.is_empty() {
            return Err(ModelError::inconsistent(item, "no [[code]] entries"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.codes {
            if !(0..=MAX_CODE).contains(&c.value) {
                return Err(ModelError::range(
                    item,
                    "code",
                    c.value as f64,
                    "within 0..=65535",
                ));
            }
            if !seen.insert(c.value) {
                return Err(ModelError::Duplicate {
                    what: "land-cover code",
                    key: c.value.to_string(),
                });
            }
            if Some(c.value) == self.nodata_value {
                return Err(ModelError::inconsistent(
                    item,
                    format!("code {} is also the nodata_value", c.value),
                ));
            }
        }
        Ok(())
    }
}

/// One row of an InVEST carbon pool table (all pools in t C/ha).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PoolRow {
    /// Land-cover code.
    pub lucode: i32,
    /// Above-ground biomass carbon.
    pub c_above: f64,
    /// Below-ground biomass carbon.
    pub c_below: f64,
    /// Soil organic carbon.
    pub c_soil: f64,
    /// Dead organic matter carbon.
    pub c_dead: f64,
}

impl PoolRow {
    /// InVEST's stock density: the sum of the four pools (t C/ha).
    pub fn total_tc_per_ha(&self) -> f64 {
        self.c_above + self.c_below + self.c_soil + self.c_dead
    }
}
