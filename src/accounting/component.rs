//! The components of the projection — forest types, the desert's parts, the other classes,
//! restoration interventions and the counted total — as a type, and where each one sits in
//! the projection's tables (one column per component, in [`Components::list`] order).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::EcosystemClass;

use crate::model::Models;

/// The parts of the desert's projection (docs/science.md §1.2): `land` carries the base-year
/// stock (no flux); crust, shrub and inorganic carry their fluxes and the stocks these build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DesertPart {
    /// Biological soil crust fixation.
    Crust,
    /// Shrub growth.
    Shrub,
    /// Soil inorganic carbon (contested: counted only when switched on).
    Inorganic,
    /// The desert land's base-year stock.
    Land,
}

impl DesertPart {
    /// Table order.
    pub const ALL: [DesertPart; 4] = [
        DesertPart::Crust,
        DesertPart::Shrub,
        DesertPart::Inorganic,
        DesertPart::Land,
    ];

    /// The name after `desert:`.
    pub fn name(self) -> &'static str {
        match self {
            DesertPart::Crust => "crust",
            DesertPart::Shrub => "shrub",
            DesertPart::Inorganic => "inorganic",
            DesertPart::Land => "land",
        }
    }
}

/// One component of the projection, written `forest:TYPE`, `desert:PART`, `other:CLASS`,
/// `restoration:NAME` or `total` in the tables.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    /// A forest type of forest.toml.
    Forest(String),
    /// A part of the desert.
    Desert(DesertPart),
    /// A class without a model of its own (neither forest nor barren).
    Other(EcosystemClass),
    /// An intervention of restoration.toml.
    Restoration(String),
    /// The counted total of a zone and year.
    Total,
}

impl Component {
    /// The group name before the colon (`forest`, `desert`, `other`, `restoration`, `total`).
    pub fn group(&self) -> &'static str {
        match self {
            Component::Forest(_) => "forest",
            Component::Desert(_) => "desert",
            Component::Other(_) => "other",
            Component::Restoration(_) => "restoration",
            Component::Total => "total",
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Component::Forest(t) => write!(f, "forest:{t}"),
            Component::Desert(p) => write!(f, "desert:{}", p.name()),
            Component::Other(c) => write!(f, "other:{}", c.name()),
            Component::Restoration(n) => write!(f, "restoration:{n}"),
            Component::Total => f.write_str("total"),
        }
    }
}

impl FromStr for Component {
    type Err = String;

    fn from_str(s: &str) -> Result<Component, String> {
        let bad = || {
            format!("'{s}' is not a component (forest:TYPE, desert:crust|shrub|inorganic|land, other:CLASS, restoration:NAME or total)")
        };
        if s == "total" {
            return Ok(Component::Total);
        }
        let (group, name) = s.split_once(':').ok_or_else(bad)?;
        match group {
            "forest" if !name.is_empty() => Ok(Component::Forest(name.to_string())),
            "restoration" if !name.is_empty() => Ok(Component::Restoration(name.to_string())),
            "desert" => DesertPart::ALL
                .into_iter()
                .find(|p| p.name() == name)
                .map(Component::Desert)
                .ok_or_else(bad),
            "other" => EcosystemClass::ALL
                .into_iter()
                .find(|c| c.name() == name && !is_modelled(*c))
                .map(Component::Other)
                .ok_or_else(bad),
            _ => Err(bad()),
        }
    }
}

impl Serialize for Component {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Component {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Component, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl PartialEq<str> for Component {
    fn eq(&self, other: &str) -> bool {
        other.parse::<Component>().is_ok_and(|c| &c == self)
    }
}

/// Forest and barren land have models of their own; every other class is an `other:` component.
fn is_modelled(c: EcosystemClass) -> bool {
    matches!(c, EcosystemClass::Forest | EcosystemClass::Barren)
}

/// The classes of the `other:` components, in table order.
pub fn other_classes() -> impl Iterator<Item = EcosystemClass> {
    EcosystemClass::ALL.into_iter().filter(|c| !is_modelled(*c))
}

/// The components of a model set and their columns: forest types, the desert's four parts,
/// the other classes, the interventions (the total, when a table has one, comes last).
#[derive(Debug, Clone, PartialEq)]
pub struct Components {
    /// Every component in column order (without the total).
    pub list: Vec<Component>,
    forest_types: usize,
    others: usize,
}

impl Components {
    /// The components of `m`.
    pub fn of(m: &Models) -> Components {
        let mut list: Vec<Component> = m
            .forest
            .types
            .iter()
            .map(|t| Component::Forest(t.name.clone()))
            .collect();
        list.extend(DesertPart::ALL.map(Component::Desert));
        list.extend(other_classes().map(Component::Other));
        if let Some(r) = &m.restoration {
            list.extend(
                r.interventions
                    .iter()
                    .map(|i| Component::Restoration(i.name.clone())),
            );
        }
        Components {
            list,
            forest_types: m.forest.types.len(),
            others: other_classes().count(),
        }
    }

    /// Number of components (without the total).
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none (never: the desert parts are always there).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Column of forest type `t` (its index in forest.toml).
    pub fn forest(&self, t: usize) -> usize {
        t
    }

    /// Column of a desert part.
    pub fn desert(&self, part: DesertPart) -> usize {
        self.forest_types + part as usize
    }

    /// Column of an `other:` class, if it is one.
    pub fn other(&self, class: EcosystemClass) -> Option<usize> {
        other_classes()
            .position(|c| c == class)
            .map(|i| self.forest_types + DesertPart::ALL.len() + i)
    }

    /// Column of intervention `j` (its index in restoration.toml).
    pub fn restoration(&self, j: usize) -> usize {
        self.forest_types + DesertPart::ALL.len() + self.others + j
    }

    /// Column of the total in a table that has one (after every component).
    pub fn total(&self) -> usize {
        self.list.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_component_name_reads_back_as_itself() {
        let all = [
            Component::Forest("Tianshan spruce".into()),
            Component::Desert(DesertPart::Crust),
            Component::Desert(DesertPart::Land),
            Component::Other(EcosystemClass::SnowIce),
            Component::Restoration("grazing_exclusion".into()),
            Component::Total,
        ];
        for c in all {
            let s = c.to_string();
            assert_eq!(s.parse::<Component>(), Ok(c.clone()), "{s}");
            assert!(c == *s.as_str());
        }
        assert_eq!(
            Component::Other(EcosystemClass::SnowIce).to_string(),
            "other:snow_ice"
        );
        for bad in [
            "",
            "forest:",
            "desert:dune",
            "other:forest",
            "other:barren",
            "soil:x",
        ] {
            assert!(bad.parse::<Component>().is_err(), "{bad}");
        }
    }

    #[test]
    fn columns_follow_the_list_order() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let set = Models::load_dir(&root, &root.join("schemes/clcd.toml"), None).expect("models");
        let cols = Components::of(&set);
        for (t, ft) in set.forest.types.iter().enumerate() {
            assert_eq!(
                cols.list[cols.forest(t)],
                Component::Forest(ft.name.clone())
            );
        }
        for p in DesertPart::ALL {
            assert_eq!(cols.list[cols.desert(p)], Component::Desert(p));
        }
        for c in other_classes() {
            assert_eq!(cols.list[cols.other(c).unwrap()], Component::Other(c));
        }
        assert_eq!(cols.other(EcosystemClass::Forest), None);
        let r = set.restoration.as_ref().unwrap();
        for (j, i) in r.interventions.iter().enumerate() {
            assert_eq!(
                cols.list[cols.restoration(j)],
                Component::Restoration(i.name.clone())
            );
        }
        assert_eq!(cols.total(), cols.len());
        assert_eq!(
            cols.len(),
            set.forest.types.len() + 4 + 7 + r.interventions.len()
        );
    }
}
