//! Emission series and scenarios (Mt CO₂): parsing, validation, linear interpolation.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::files::read_toml;

/// What an emission series is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeriesKind {
    /// Reported emissions of past years.
    Historical,
    /// A policy target.
    Target,
    /// A projected pathway.
    Scenario,
}

/// One series: (year, Mt CO₂) points.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Series {
    /// Series name.
    pub name: String,
    /// What the series is.
    pub kind: SeriesKind,
    /// Where the numbers come from.
    pub source: String,
    /// (year, emissions) points in the file's unit, by increasing year.
    pub points: Vec<(i32, f64)>,
    /// Other indicators given with the series (same layout of points), reported as given.
    #[serde(default)]
    pub indicators: BTreeMap<String, Vec<(i32, f64)>>,
    /// Emissions of one zone (zone id of the zone layer); none = the whole region.
    #[serde(default)]
    pub zone_id: Option<String>,
}

/// An emission file (`models/emissions/NAME.toml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmissionFile {
    /// The region the emissions belong to.
    pub region: String,
    /// Its extent, [west, south, east, north] in degrees (WGS 84). Required when a series is
    /// about the whole region (a series with `zone_id` names its own region).
    #[serde(default)]
    pub extent_lonlat: Option<[f64; 4]>,
    /// Unit of the points (e.g. `Mt CO2`, per year).
    pub unit: String,
    /// The series (`[[series]]` tables).
    #[serde(rename = "series")]
    pub series: Vec<Series>,
}

impl Series {
    /// Linear interpolation between points; `None` outside the series.
    pub fn at(&self, year: i32) -> Option<f64> {
        let p = &self.points;
        if p.is_empty() || year < p[0].0 || year > p[p.len() - 1].0 {
            return None;
        }
        for w in p.windows(2) {
            if year >= w[0].0 && year <= w[1].0 {
                let f = (year - w[0].0) as f64 / (w[1].0 - w[0].0) as f64;
                return Some(w[0].1 + f * (w[1].1 - w[0].1));
            }
        }
        Some(p[0].1)
    }

    /// Year of the first point (0 for an empty series).
    pub fn first_year(&self) -> i32 {
        self.points.first().map(|p| p.0).unwrap_or(0)
    }

    /// Year of the last point (0 for an empty series).
    pub fn last_year(&self) -> i32 {
        self.points.last().map(|p| p.0).unwrap_or(0)
    }
}

/// The fraction of the rectangle `region` ([west, south, east, north], degrees) that the
/// rectangle `scene` covers (plain degree areas: a rough test of "is this the same region").
pub fn covered_fraction(region: &[f64; 4], scene: &[f64; 4]) -> f64 {
    let w = (region[2].min(scene[2]) - region[0].max(scene[0])).max(0.0);
    let h = (region[3].min(scene[3]) - region[1].max(scene[1])).max(0.0);
    let area = (region[2] - region[0]) * (region[3] - region[1]);
    if area > 0.0 {
        w * h / area
    } else {
        0.0
    }
}

impl EmissionFile {
    /// Reads and validates the file against the projection years `first..=last`.
    pub fn load(path: &Path, first: i32, last: i32) -> Result<EmissionFile> {
        let f: EmissionFile = read_toml(path)?;
        f.validate(first, last)
            .map_err(|m| Error::invalid(path, m))?;
        Ok(f)
    }

    /// Every series: years strictly increasing (no overlap), values finite and ≥ 0. Every
    /// scenario: no point after the projection's last year, and reaching it (no gap).
    pub fn validate(&self, first: i32, last: i32) -> std::result::Result<(), String> {
        if self.series.is_empty() {
            return Err("no [[series]]".into());
        }
        // Every value is read as Mt CO₂: another unit would be off by its factor, silently.
        let unit: String = self
            .unit
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .replace('₂', "2");
        if !["MtCO2", "MtCO2/yr", "MtCO2/a"].contains(&unit.as_str()) {
            return Err(format!(
                "unit = \"{}\": emissions must be given in Mt CO2 (per year); convert the values and write unit = \"Mt CO2\"",
                self.unit
            ));
        }
        if self.region.trim().is_empty() {
            return Err("region is empty: say which region the emissions belong to".into());
        }
        if let Some(e) = self.extent_lonlat {
            let ok = e.iter().all(|v| v.is_finite())
                && (-180.0..=180.0).contains(&e[0])
                && (-180.0..=180.0).contains(&e[2])
                && (-90.0..=90.0).contains(&e[1])
                && (-90.0..=90.0).contains(&e[3])
                && e[0] < e[2]
                && e[1] < e[3];
            if !ok {
                return Err(format!(
                    "extent_lonlat {e:?} is not [west, south, east, north] in degrees"
                ));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for s in &self.series {
            if !names.insert((&s.name, &s.zone_id)) {
                return Err(format!("series '{}' defined twice", s.name));
            }
            if s.points.is_empty() {
                return Err(format!("series '{}' has no points", s.name));
            }
            for w in s.points.windows(2) {
                if w[1].0 <= w[0].0 {
                    return Err(format!(
                        "series '{}': years overlap or go backwards ({} then {})",
                        s.name, w[0].0, w[1].0
                    ));
                }
            }
            for (y, v) in &s.points {
                if !v.is_finite() || *v < 0.0 {
                    return Err(format!(
                        "series '{}': negative or invalid emission {v} in {y}",
                        s.name
                    ));
                }
            }
            if s.kind == SeriesKind::Scenario {
                if s.last_year() > last {
                    return Err(format!(
                        "scenario '{}': year {} is outside the projection ({first}–{last})",
                        s.name,
                        s.last_year()
                    ));
                }
                if s.last_year() < last {
                    return Err(format!(
                        "scenario '{}': gap — it ends in {}, the projection runs to {last}",
                        s.name,
                        s.last_year()
                    ));
                }
                if s.first_year() < first {
                    return Err(format!(
                        "scenario '{}': year {} is outside the projection ({first}–{last})",
                        s.name,
                        s.first_year()
                    ));
                }
            }
        }
        if self.extent_lonlat.is_none() && self.series.iter().any(|s| s.zone_id.is_none()) {
            return Err(format!(
                "region '{}' has no extent_lonlat = [west, south, east, north]: a series about the whole region needs the region's extent",
                self.region
            ));
        }
        Ok(())
    }

    /// The emission of `year` from the historical series or, failing that, the targets.
    pub fn reference(&self, year: i32) -> Option<f64> {
        [SeriesKind::Historical, SeriesKind::Target]
            .iter()
            .find_map(|k| {
                self.series
                    .iter()
                    .filter(|s| s.kind == *k && s.zone_id.is_none())
                    .find_map(|s| s.at(year))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(kind: SeriesKind, pts: &[(i32, f64)]) -> Series {
        Series {
            name: "x".into(),
            kind,
            source: "t".into(),
            points: pts.to_vec(),
            indicators: BTreeMap::new(),
            zone_id: None,
        }
    }

    #[test]
    fn interpolation_is_linear_and_bounded() {
        let a = s(
            SeriesKind::Scenario,
            &[(2025, 455.0), (2030, 401.0), (2045, 181.0), (2060, 29.0)],
        );
        assert_eq!(a.at(2025), Some(455.0));
        assert_eq!(a.at(2045), Some(181.0));
        assert!((a.at(2040).unwrap() - (401.0 + (181.0 - 401.0) * 10.0 / 15.0)).abs() < 1e-12);
        assert_eq!(a.at(2024), None);
        assert_eq!(a.at(2061), None);
    }

    #[test]
    fn bad_files_are_rejected() {
        let f = |series: Vec<Series>| EmissionFile {
            region: "r".into(),
            extent_lonlat: Some([80.0, 40.0, 90.0, 45.0]),
            unit: "Mt CO2".into(),
            series,
        };
        assert!(
            f(vec![s(SeriesKind::Scenario, &[(2025, 1.0), (2060, 2.0)])])
                .validate(2020, 2060)
                .is_ok()
        );
        let gap =
            f(vec![s(SeriesKind::Scenario, &[(2025, 1.0), (2050, 2.0)])]).validate(2020, 2060);
        assert!(gap.unwrap_err().contains("gap"));
        let neg =
            f(vec![s(SeriesKind::Scenario, &[(2025, -1.0), (2060, 2.0)])]).validate(2020, 2060);
        assert!(neg.unwrap_err().contains("negative"));
        let over = f(vec![s(
            SeriesKind::Scenario,
            &[(2030, 1.0), (2030, 2.0), (2060, 2.0)],
        )])
        .validate(2020, 2060);
        assert!(over.unwrap_err().contains("overlap"));
        let outside =
            f(vec![s(SeriesKind::Scenario, &[(2025, 1.0), (2070, 2.0)])]).validate(2020, 2060);
        assert!(outside.unwrap_err().contains("outside the projection"));
        let mut no_extent = f(vec![s(SeriesKind::Scenario, &[(2025, 1.0), (2060, 2.0)])]);
        no_extent.extent_lonlat = None;
        assert!(no_extent
            .validate(2020, 2060)
            .unwrap_err()
            .contains("extent_lonlat"));
        no_extent.series[0].zone_id = Some("Z1".into());
        assert!(
            no_extent.validate(2020, 2060).is_ok(),
            "a zone names its region"
        );
        no_extent.extent_lonlat = Some([90.0, 40.0, 80.0, 45.0]);
        assert!(no_extent.validate(2020, 2060).is_err(), "west > east");
    }

    #[test]
    fn covered_fraction_by_hand() {
        let r = [80.0, 40.0, 90.0, 50.0];
        assert_eq!(covered_fraction(&r, &r), 1.0);
        // A 1° × 2° scene inside a 10° × 10° region: 2 %.
        assert!((covered_fraction(&r, &[85.0, 44.0, 86.0, 46.0]) - 0.02).abs() < 1e-12);
        // Half outside: only the inside half counts.
        assert!((covered_fraction(&r, &[89.0, 44.0, 91.0, 46.0]) - 0.02).abs() < 1e-12);
        assert_eq!(covered_fraction(&r, &[0.0, 0.0, 1.0, 1.0]), 0.0);
    }
}
