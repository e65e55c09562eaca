//! The per-zone table (`zones.csv`, and the attributes of `zones.geojson`): one typed row per
//! zone and one for the land outside every zone, built from the cube, written and read back.
//!
//! Columns: `zone_id,zone_name,area_ha,stock_tc,sink_tco2_yr,forest_sink_tco2_yr,
//! desert_sink_tco2_yr,other_sink_tco2_yr,desert_inorganic_tco2_yr,mean_stock_tc_per_ha,
//! mean_sink_tco2_per_ha_yr`, `area_ha_CLASS` for every ecosystem class, and with restoration
//! `eligible_area_ha_any,potential_best_tco2_yr` and per intervention `eligible_area_ha_NAME,
//! potential_tco2_yr_NAME`. Numbers are written in Rust's shortest round-trip form.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::cube::{Cube, BEST_INTERVENTION};
use crate::error::{Error, Result};
use crate::model::EcosystemClass;
use crate::tables::line_error;

/// The fixed numeric columns, before the class areas.
const TOTAL_COLUMNS: [&str; 9] = [
    "area_ha",
    "stock_tc",
    "sink_tco2_yr",
    "forest_sink_tco2_yr",
    "desert_sink_tco2_yr",
    "other_sink_tco2_yr",
    "desert_inorganic_tco2_yr",
    "mean_stock_tc_per_ha",
    "mean_sink_tco2_per_ha_yr",
];

/// Eligible area and potential of one intervention in a zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterventionPotential {
    /// The intervention (restoration.toml).
    pub name: String,
    /// Area where it is possible (ha).
    pub eligible_area_ha: f64,
    /// Eligible area × mean gain (t CO₂/yr).
    pub potential_tco2_yr: f64,
}

/// The restoration columns of a zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneRestoration {
    /// Area where some intervention is possible (ha).
    pub eligible_area_ha_any: f64,
    /// Potential of the best intervention of each pixel (t CO₂/yr).
    pub potential_best_tco2_yr: f64,
    /// Per intervention, in restoration.toml order.
    pub interventions: Vec<InterventionPotential>,
}

/// One row of the zone table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneRow {
    /// Zone id ([`crate::cube::OUTSIDE_ZONE`] for the land outside every zone).
    pub zone_id: String,
    /// Zone name.
    pub zone_name: String,
    /// Area with data (ha).
    pub area_ha: f64,
    /// Carbon stock (t C).
    pub stock_tc: f64,
    /// Annual sink (t CO₂/yr) and its split.
    pub sink_tco2_yr: f64,
    /// Forest part of the sink (t CO₂/yr).
    pub forest_sink_tco2_yr: f64,
    /// Desert part of the sink (t CO₂/yr).
    pub desert_sink_tco2_yr: f64,
    /// Other land's part of the sink (t CO₂/yr).
    pub other_sink_tco2_yr: f64,
    /// Desert soil inorganic carbon (t CO₂/yr), reported apart.
    pub desert_inorganic_tco2_yr: f64,
    /// Stock per hectare of data (t C/ha; 0 without area).
    pub mean_stock_tc_per_ha: f64,
    /// Sink per hectare of data (t CO₂/ha/yr; 0 without area).
    pub mean_sink_tco2_per_ha_yr: f64,
    /// Area per ecosystem class (ha), in [`EcosystemClass::ALL`] order.
    pub area_ha_by_class: Vec<f64>,
    /// Restoration columns, when the models have interventions.
    pub restoration: Option<ZoneRestoration>,
}

impl ZoneRow {
    /// The numeric values in column order (see [`ZoneTable::columns`]).
    pub fn values(&self) -> Vec<f64> {
        let mut v = vec![
            self.area_ha,
            self.stock_tc,
            self.sink_tco2_yr,
            self.forest_sink_tco2_yr,
            self.desert_sink_tco2_yr,
            self.other_sink_tco2_yr,
            self.desert_inorganic_tco2_yr,
            self.mean_stock_tc_per_ha,
            self.mean_sink_tco2_per_ha_yr,
        ];
        v.extend(&self.area_ha_by_class);
        if let Some(r) = &self.restoration {
            v.extend([r.eligible_area_ha_any, r.potential_best_tco2_yr]);
            for i in &r.interventions {
                v.extend([i.eligible_area_ha, i.potential_tco2_yr]);
            }
        }
        v
    }

    /// The value of numeric column `name`, if the row has it.
    pub fn value(&self, name: &str) -> Option<f64> {
        let names: Vec<String> = self
            .restoration
            .iter()
            .flat_map(|r| r.interventions.iter().map(|i| i.name.clone()))
            .collect();
        let cols = columns(&names, self.restoration.is_some());
        cols.iter()
            .position(|c| c == name)
            .map(|i| self.values()[i])
    }
}

/// The numeric column names.
fn columns(interventions: &[String], restoration: bool) -> Vec<String> {
    let mut c: Vec<String> = TOTAL_COLUMNS.iter().map(|s| s.to_string()).collect();
    c.extend(
        EcosystemClass::ALL
            .iter()
            .map(|k| format!("area_ha_{}", k.name())),
    );
    if restoration {
        c.push("eligible_area_ha_any".into());
        c.push("potential_best_tco2_yr".into());
        for n in interventions {
            c.push(format!("eligible_area_ha_{n}"));
            c.push(format!("potential_tco2_yr_{n}"));
        }
    }
    c
}

/// The per-zone table: one row per zone (layer order) and one for the outside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneTable {
    /// The interventions of the restoration columns (empty: no such columns).
    pub interventions: Vec<String>,
    /// The rows.
    pub rows: Vec<ZoneRow>,
}

impl ZoneTable {
    /// Builds the table of `zones` ((id, name), the outside appended by the caller) from the
    /// cube. `interventions` adds, per intervention, the eligible area and the potential, and
    /// the potential of the best intervention per pixel.
    pub fn from_cube(zones: &[(String, String)], cube: &Cube, interventions: &[String]) -> Self {
        let rows = zones
            .iter()
            .map(|(id, name)| {
                let t = cube.totals(id, None);
                let mean = |x: f64| if t.area_ha > 0.0 { x / t.area_ha } else { 0.0 };
                let restoration = (!interventions.is_empty()).then(|| {
                    let (a, p) = cube.restoration(id, BEST_INTERVENTION);
                    ZoneRestoration {
                        eligible_area_ha_any: a,
                        potential_best_tco2_yr: p,
                        interventions: interventions
                            .iter()
                            .map(|n| {
                                let (a, p) = cube.restoration(id, n);
                                InterventionPotential {
                                    name: n.clone(),
                                    eligible_area_ha: a,
                                    potential_tco2_yr: p,
                                }
                            })
                            .collect(),
                    }
                });
                ZoneRow {
                    zone_id: id.clone(),
                    zone_name: name.clone(),
                    area_ha: t.area_ha,
                    stock_tc: t.stock_tc,
                    sink_tco2_yr: t.sink_tco2_yr,
                    forest_sink_tco2_yr: t.forest_sink_tco2_yr,
                    desert_sink_tco2_yr: t.desert_sink_tco2_yr,
                    other_sink_tco2_yr: t.other_sink_tco2_yr,
                    desert_inorganic_tco2_yr: t.desert_inorganic_tco2_yr,
                    mean_stock_tc_per_ha: mean(t.stock_tc),
                    mean_sink_tco2_per_ha_yr: mean(t.sink_tco2_yr),
                    area_ha_by_class: EcosystemClass::ALL
                        .iter()
                        .map(|c| cube.totals(id, Some(*c)).area_ha)
                        .collect(),
                    restoration,
                }
            })
            .collect();
        ZoneTable {
            interventions: interventions.to_vec(),
            rows,
        }
    }

    /// Whether the table has the restoration columns.
    pub fn has_restoration(&self) -> bool {
        !self.interventions.is_empty()
    }

    /// Names of the numeric columns, in order (units in the names).
    pub fn columns(&self) -> Vec<String> {
        columns(&self.interventions, self.has_restoration())
    }

    /// Writes `zones.csv`.
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        let mut w = csv::Writer::from_path(path).map_err(|e| Error::output(path, e))?;
        let mut header = vec!["zone_id".to_string(), "zone_name".to_string()];
        header.extend(self.columns());
        w.write_record(&header)
            .map_err(|e| Error::output(path, e))?;
        for r in &self.rows {
            let mut rec = vec![r.zone_id.clone(), r.zone_name.clone()];
            // Display (not the serializer's format) keeps the files as they always were.
            rec.extend(r.values().iter().map(|v| v.to_string()));
            w.write_record(rec).map_err(|e| Error::output(path, e))?;
        }
        w.flush().map_err(|e| Error::output(path, e))
    }

    /// Reads `zones.csv` back, checking the header and every number (file and line named).
    pub fn read_csv(path: &Path) -> Result<ZoneTable> {
        let mut r = csv::Reader::from_path(path).map_err(|e| Error::Parse {
            path: path.into(),
            message: e.to_string(),
        })?;
        let header: Vec<String> = r
            .headers()
            .map_err(|e| line_error(path, 1, e))?
            .iter()
            .map(String::from)
            .collect();
        let fixed = columns(&[], false);
        let not_table =
            |what: String| line_error(path, 1, format!("{what}: not a sinkmap zone table"));
        if header.len() < 2 + fixed.len()
            || header[0] != "zone_id"
            || header[1] != "zone_name"
            || header[2..2 + fixed.len()] != fixed[..]
        {
            return Err(not_table(format!(
                "the columns must start zone_id, zone_name, {}",
                fixed.join(", ")
            )));
        }
        let rest = &header[2 + fixed.len()..];
        let mut interventions = Vec::new();
        if !rest.is_empty() {
            if rest.len() < 2
                || rest[0] != "eligible_area_ha_any"
                || rest[1] != "potential_best_tco2_yr"
                || !rest.len().is_multiple_of(2)
            {
                return Err(not_table(format!("unexpected columns {}", rest.join(", "))));
            }
            for pair in rest[2..].chunks(2) {
                let name = pair[0].strip_prefix("eligible_area_ha_");
                match name {
                    Some(n) if pair[1] == format!("potential_tco2_yr_{n}") => {
                        interventions.push(n.to_string())
                    }
                    _ => {
                        return Err(not_table(format!(
                            "columns {} and {} are not an intervention's pair",
                            pair[0], pair[1]
                        )))
                    }
                }
            }
        }
        let mut rows = Vec::new();
        for (i, rec) in r.records().enumerate() {
            let line = i + 2;
            let rec = rec.map_err(|e| line_error(path, line, e))?;
            let num = |k: usize| -> Result<f64> {
                let s = &rec[k];
                s.parse::<f64>().map_err(|_| {
                    line_error(path, line, format!("{} = '{s}': not a number", header[k]))
                })
            };
            let v: Vec<f64> = (2..header.len()).map(num).collect::<Result<_>>()?;
            let n = TOTAL_COLUMNS.len();
            let nc = EcosystemClass::ALL.len();
            let restoration = (!rest.is_empty()).then(|| ZoneRestoration {
                eligible_area_ha_any: v[n + nc],
                potential_best_tco2_yr: v[n + nc + 1],
                interventions: interventions
                    .iter()
                    .enumerate()
                    .map(|(j, name)| InterventionPotential {
                        name: name.clone(),
                        eligible_area_ha: v[n + nc + 2 + 2 * j],
                        potential_tco2_yr: v[n + nc + 3 + 2 * j],
                    })
                    .collect(),
            });
            rows.push(ZoneRow {
                zone_id: rec[0].to_string(),
                zone_name: rec[1].to_string(),
                area_ha: v[0],
                stock_tc: v[1],
                sink_tco2_yr: v[2],
                forest_sink_tco2_yr: v[3],
                desert_sink_tco2_yr: v[4],
                other_sink_tco2_yr: v[5],
                desert_inorganic_tco2_yr: v[6],
                mean_stock_tc_per_ha: v[7],
                mean_sink_tco2_per_ha_yr: v[8],
                area_ha_by_class: v[n..n + nc].to_vec(),
                restoration,
            });
        }
        Ok(ZoneTable {
            interventions,
            rows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cube::{quantize, CubeKey, CubeSums};

    fn cube() -> Cube {
        let mut c = Cube::default();
        let mut add = |zone: &str, class, intervention: Option<&str>, area: f64, sink: f64| {
            c.zone_names.insert(zone.into(), zone.into());
            let key = CubeKey {
                zone_id: zone.into(),
                class,
                forest_type: None,
                age_yr: None,
                desert_subtype: None,
                intervention: intervention.map(String::from),
            };
            let s = c.cells.entry(key).or_insert(CubeSums::ZERO);
            s.area += quantize(area);
            s.stock += quantize(area * 10.0);
            s.sink += quantize(sink);
        };
        add("a", EcosystemClass::Forest, None, 100.0, 250.0);
        add("a", EcosystemClass::Grassland, None, 300.0, 30.0);
        add("a", EcosystemClass::Grassland, Some("graze"), 120.0, 12.0);
        add(
            "a",
            EcosystemClass::Grassland,
            Some(BEST_INTERVENTION),
            120.0,
            12.0,
        );
        add("b", EcosystemClass::Barren, None, 50.0, 0.5);
        c
    }

    #[test]
    fn rows_add_up_by_hand_and_survive_the_file() {
        let zones = [
            ("a".to_string(), "A".to_string()),
            ("b".into(), "B, with comma".into()),
        ];
        let t = ZoneTable::from_cube(&zones, &cube(), &["graze".to_string()]);
        let a = &t.rows[0];
        assert_eq!(
            (a.area_ha, a.stock_tc, a.sink_tco2_yr),
            (400.0, 4000.0, 280.0)
        );
        assert_eq!((a.forest_sink_tco2_yr, a.other_sink_tco2_yr), (250.0, 30.0));
        assert_eq!(a.mean_sink_tco2_per_ha_yr, 280.0 / 400.0);
        assert_eq!(a.area_ha_by_class[EcosystemClass::Grassland.index()], 300.0);
        let r = a.restoration.as_ref().unwrap();
        assert_eq!(
            (r.eligible_area_ha_any, r.interventions[0].potential_tco2_yr),
            (120.0, 12.0)
        );
        assert_eq!(a.value("potential_tco2_yr_graze"), Some(12.0));
        assert_eq!(t.rows[1].value("desert_sink_tco2_yr"), Some(0.5));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("zones.csv");
        t.write_csv(&p).unwrap();
        assert_eq!(ZoneTable::read_csv(&p).unwrap(), t);
        // Without restoration the columns stop after the class areas.
        let plain = ZoneTable::from_cube(&zones, &cube(), &[]);
        plain.write_csv(&p).unwrap();
        let back = ZoneTable::read_csv(&p).unwrap();
        assert_eq!(back, plain);
        assert_eq!(back.columns().len(), 9 + EcosystemClass::ALL.len());
    }

    #[test]
    fn a_bad_number_is_named_by_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("zones.csv");
        let t = ZoneTable::from_cube(&[("a".into(), "A".into())], &cube(), &[]);
        t.write_csv(&p).unwrap();
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replacen(",400,", ",four hundred,", 1);
        std::fs::write(&p, text).unwrap();
        let e = ZoneTable::read_csv(&p).unwrap_err().to_string();
        assert!(
            e.contains("zones.csv")
                && e.contains("line 2")
                && e.contains("area_ha = 'four hundred'"),
            "{e}"
        );
        std::fs::write(&p, "zone_id,zone_name,area\n").unwrap();
        let e = ZoneTable::read_csv(&p).unwrap_err().to_string();
        assert!(
            e.contains("line 1") && e.contains("not a sinkmap zone table"),
            "{e}"
        );
    }
}
