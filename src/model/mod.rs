//! Carbon models: pure data types and per-pixel functions. Nothing here touches GDAL or files.

pub mod desert;
pub mod error;
pub mod forest;
pub mod growth;
pub mod other;
pub mod pixel;
pub mod restoration;
pub mod scheme;
pub mod set;

use serde::{Deserialize, Serialize};

pub use error::ModelError;
pub use set::Models;

/// t CO₂ per t C (44/12).
pub const CO2_PER_C: f64 = 44.0 / 12.0;
/// t C/ha per g C/m² (1 g/m² = 10 kg/ha = 0.01 t/ha).
pub const TC_PER_HA_PER_GC_PER_M2: f64 = 0.01;

/// The ecosystem classes every land-cover scheme is mapped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EcosystemClass {
    /// Forest land (age–carbon curves by forest type).
    Forest,
    /// Shrubland.
    Shrub,
    /// Grassland.
    Grassland,
    /// Cropland.
    Cropland,
    /// Wetland.
    Wetland,
    /// Open water.
    Water,
    /// Permanent snow and ice.
    SnowIce,
    /// Barren land and desert (desert subtype models).
    Barren,
    /// Built-up land.
    BuiltUp,
}

impl EcosystemClass {
    /// Every class, in index order.
    pub const ALL: [EcosystemClass; 9] = [
        EcosystemClass::Forest,
        EcosystemClass::Shrub,
        EcosystemClass::Grassland,
        EcosystemClass::Cropland,
        EcosystemClass::Wetland,
        EcosystemClass::Water,
        EcosystemClass::SnowIce,
        EcosystemClass::Barren,
        EcosystemClass::BuiltUp,
    ];

    /// The snake_case name used in files and column names.
    pub fn name(self) -> &'static str {
        match self {
            EcosystemClass::Forest => "forest",
            EcosystemClass::Shrub => "shrub",
            EcosystemClass::Grassland => "grassland",
            EcosystemClass::Cropland => "cropland",
            EcosystemClass::Wetland => "wetland",
            EcosystemClass::Water => "water",
            EcosystemClass::SnowIce => "snow_ice",
            EcosystemClass::Barren => "barren",
            EcosystemClass::BuiltUp => "built_up",
        }
    }

    /// The class of a snake_case name (the inverse of [`EcosystemClass::name`]).
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == s)
    }

    /// Position in [`EcosystemClass::ALL`] (0–8), for per-class arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// How sure a number is (science.md's evidence tags, plus engineering placeholders).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    /// Read in the source itself.
    Verified,
    /// Recalled, not checked against the source.
    Recalled,
    /// Arithmetic from verified numbers.
    Derived,
    /// An engineering placeholder or assumption: no published value behind it.
    Placeholder,
}

/// Which carbon pools the stock maps include.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pools {
    /// Dead wood and litter.
    #[serde(default)]
    pub dead_matter: bool,
    /// Soil organic carbon.
    #[serde(default)]
    pub soil: bool,
}
