//! The disturbance events of a series (`models/events.toml`): per event, the fraction of each
//! carbon pool emitted in the year of the event and whether the stand's age restarts.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::files::read_toml;
use crate::model::Evidence;

/// One kind of event, as coded in the event rasters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventType {
    /// Raster code (≥ 1; 0 and nodata mean "no event").
    pub code: i32,
    /// snake_case name, used in column names (`emissions_NAME_tc`).
    pub name: String,
    /// Human-readable name.
    pub label: String,
    /// Fraction of the above- and below-ground biomass present at the start of the year that
    /// is emitted in the year.
    pub biomass_emitted_fraction: f64,
    /// Fraction of the dead-matter pool emitted (counted only when the scene includes it).
    pub dead_matter_emitted_fraction: f64,
    /// Fraction of the soil pool emitted (counted only when the scene includes it).
    pub soil_emitted_fraction: f64,
    /// The stand restarts at age 0.
    pub age_reset: bool,
    /// Without an age reset: the fraction of the biomass that leaves the stand (emitted or
    /// removed); the stand continues at the youngest age whose biomass reaches the rest.
    #[serde(default)]
    pub biomass_lost_fraction: Option<f64>,
    /// How sure the fractions are.
    pub evidence: Evidence,
    /// Where the fractions come from.
    pub source: String,
}

/// `models/events.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventCatalogue {
    /// The event types (`[[event]]` tables).
    #[serde(rename = "event")]
    pub events: Vec<EventType>,
}

impl EventType {
    /// The fraction of the biomass that leaves the stand (1 for an age reset).
    pub fn biomass_lost(&self) -> f64 {
        if self.age_reset {
            1.0
        } else {
            self.biomass_lost_fraction.unwrap_or(0.0)
        }
    }
}

impl EventCatalogue {
    /// Reads and checks an event file; errors name the file and the event.
    pub fn load(path: &Path) -> Result<EventCatalogue> {
        let c: EventCatalogue = read_toml(path)?;
        c.validate().map_err(|m| Error::invalid(path, m))?;
        Ok(c)
    }

    /// Checks codes (1–65535, unique), names (snake_case, unique) and fractions (in
    /// [0, 1]); the message names the event.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let mut codes = std::collections::BTreeSet::new();
        let mut names = std::collections::BTreeSet::new();
        for e in &self.events {
            let at = format!("event '{}' (code {})", e.name, e.code);
            if !(1..=65_535).contains(&e.code) {
                return Err(format!("{at}: code must be 1..=65535 (0 means no event)"));
            }
            if !codes.insert(e.code) {
                return Err(format!("{at}: code defined twice"));
            }
            let snake = !e.name.is_empty()
                && e.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !snake || ["clearing", "conversion"].contains(&e.name.as_str()) {
                return Err(format!(
                    "{at}: name must be snake_case and not 'clearing' or 'conversion'"
                ));
            }
            if !names.insert(e.name.clone()) {
                return Err(format!("{at}: name defined twice"));
            }
            for (field, f) in [
                ("biomass_emitted_fraction", e.biomass_emitted_fraction),
                (
                    "dead_matter_emitted_fraction",
                    e.dead_matter_emitted_fraction,
                ),
                ("soil_emitted_fraction", e.soil_emitted_fraction),
            ] {
                if !(0.0..=1.0).contains(&f) {
                    return Err(format!("{at}: {field} = {f} is outside 0..=1"));
                }
            }
            match (e.age_reset, e.biomass_lost_fraction) {
                (true, Some(f)) if f != 1.0 => {
                    return Err(format!(
                        "{at}: biomass_lost_fraction = {f} with age_reset = true (a reset loses all biomass; leave it out)"
                    ))
                }
                (false, None) => {
                    return Err(format!(
                        "{at}: age_reset = false needs biomass_lost_fraction (the share of biomass that leaves the stand)"
                    ))
                }
                (false, Some(f)) if !(e.biomass_emitted_fraction..=1.0).contains(&f) => {
                    return Err(format!(
                        "{at}: biomass_lost_fraction = {f} must lie between biomass_emitted_fraction and 1"
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The index of the event with raster code `code`.
    pub fn index_of(&self, code: i32) -> Option<usize> {
        self.events.iter().position(|e| e.code == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_event_file_parses_and_flags_its_placeholders() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/events.toml");
        let c = EventCatalogue::load(&p).unwrap();
        assert!(c.events.len() >= 2);
        for e in &c.events {
            assert!(
                e.evidence != Evidence::Placeholder || e.source.contains("placeholder"),
                "{}",
                e.name
            );
        }
        assert_eq!(
            c.index_of(2).map(|i| c.events[i].name.as_str()),
            Some("harvest")
        );
        assert_eq!(c.index_of(0), None);
    }

    fn parse(s: &str) -> std::result::Result<EventCatalogue, String> {
        let c: EventCatalogue = toml::from_str(s).map_err(|e| e.to_string())?;
        c.validate().map(|_| c)
    }

    const OK: &str = r#"[[event]]
code = 1
name = "fire"
label = "Fire"
biomass_emitted_fraction = 0.5
dead_matter_emitted_fraction = 0.5
soil_emitted_fraction = 0.0
age_reset = true
evidence = "placeholder"
source = "test"
"#;

    #[test]
    fn bad_event_files_are_refused_with_the_reason() {
        assert!(parse(OK).is_ok());
        let e = parse(&format!("{OK}colour = 3\n")).unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
        let e = parse(&OK.replace("0.5\ndead", "1.5\ndead")).unwrap_err();
        assert!(e.contains("biomass_emitted_fraction = 1.5"), "{e}");
        let e = parse(&format!("{OK}{}", OK.replace("\"fire\"", "\"other\""))).unwrap_err();
        assert!(e.contains("code defined twice"), "{e}");
        let e = parse(&OK.replace("code = 1", "code = 0")).unwrap_err();
        assert!(e.contains("0 means no event"), "{e}");
        let e = parse(&OK.replace("age_reset = true", "age_reset = false")).unwrap_err();
        assert!(e.contains("needs biomass_lost_fraction"), "{e}");
        let e = parse(&OK.replace(
            "age_reset = true",
            "age_reset = false\nbiomass_lost_fraction = 0.2",
        ))
        .unwrap_err();
        assert!(e.contains("between biomass_emitted_fraction and 1"), "{e}");
        let e = parse(&OK.replace("\"fire\"", "\"clearing\"")).unwrap_err();
        assert!(e.contains("snake_case"), "{e}");
    }
}
