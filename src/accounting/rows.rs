//! The rows of the accounting's tables as types: what `balance` writes to `trajectory.csv`
//! and `balance.csv`, and what the report (and anything else) reads back from them.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::component::Component;
use super::{Accounting, BalanceRow};
use crate::error::Result;

/// One row of `trajectory.csv`: one zone, year and component of the projection (stocks in
/// t C, fluxes in t CO₂/yr; docs/science.md §1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryRow {
    /// Zone id ([`super::REGION`] for the region).
    pub zone_id: String,
    /// Zone name.
    pub zone_name: String,
    /// Calendar year.
    pub year: i32,
    /// The component (`total` is the counted sum of the others).
    pub component: Component,
    /// Whether the component counts in the total.
    pub counted: bool,
    /// Stock on 1 January (t C).
    pub stock_tc: f64,
    /// Stock on 31 December (t C).
    pub stock_end_tc: f64,
    /// Gross sink (t CO₂/yr), nominal.
    pub gross_sink_tco2_yr: f64,
    /// Emissions from disturbance (t CO₂/yr), nominal.
    pub emissions_tco2_yr: f64,
    /// Net flux = gross sink − emissions (t CO₂/yr), nominal.
    pub net_flux_tco2_yr: f64,
    /// Net flux over the Monte Carlo draws: mean and 5th, 50th, 95th percentiles.
    pub net_flux_tco2_yr_mean: f64,
    /// 5th percentile of the net flux.
    pub net_flux_tco2_yr_p05: f64,
    /// Median net flux.
    pub net_flux_tco2_yr_p50: f64,
    /// 95th percentile of the net flux.
    pub net_flux_tco2_yr_p95: f64,
    /// 5th percentile of the emissions.
    pub emissions_tco2_yr_p05: f64,
    /// 95th percentile of the emissions.
    pub emissions_tco2_yr_p95: f64,
    /// Map-based nominal net flux (= `net_flux_tco2_yr` without an assessment or
    /// calibration).
    pub net_flux_tco2_yr_map: f64,
}

/// The columns a trajectory must have.
const TRAJECTORY_COLUMNS: [&str; 4] = ["zone_id", "year", "component", "net_flux_tco2_yr"];

/// The trajectory rows of an accounting: zone by zone, year by year, component by component.
pub fn trajectory_rows(acc: &Accounting) -> Vec<TrajectoryRow> {
    let mut rows = Vec::new();
    for (z, (id, name)) in acc.zones.iter().enumerate() {
        for (y, year) in acc.years.iter().enumerate() {
            for (c, comp) in acc.components.iter().enumerate() {
                let b = acc.bands[z][y][c];
                let e = acc.emission_bands[z][y][c];
                rows.push(TrajectoryRow {
                    zone_id: id.clone(),
                    zone_name: name.clone(),
                    year: *year,
                    component: comp.clone(),
                    counted: acc.counted[c],
                    stock_tc: acc.stock[z][y][c],
                    stock_end_tc: acc.stock_end[z][y][c],
                    gross_sink_tco2_yr: acc.gross[z][y][c],
                    emissions_tco2_yr: acc.emissions[z][y][c],
                    net_flux_tco2_yr: acc.net[z][y][c],
                    net_flux_tco2_yr_mean: b.mean,
                    net_flux_tco2_yr_p05: b.p05,
                    net_flux_tco2_yr_p50: b.p50,
                    net_flux_tco2_yr_p95: b.p95,
                    emissions_tco2_yr_p05: e.p05,
                    emissions_tco2_yr_p95: e.p95,
                    net_flux_tco2_yr_map: acc.map_net[z][y][c],
                });
            }
        }
    }
    rows
}

/// Reads `trajectory.csv`; a bad row is named by file and line.
pub fn read_trajectory(path: &Path) -> Result<Vec<TrajectoryRow>> {
    crate::tables::read_csv_rows(path, &TRAJECTORY_COLUMNS, "a sinkmap trajectory")
}

/// Reads `balance.csv`; a bad row is named by file and line.
pub fn read_balance(path: &Path) -> Result<Vec<BalanceRow>> {
    crate::tables::read_csv_rows(
        path,
        &["year", "scenario", "emissions_mt_co2", "share_offset_p50"],
        "a sinkmap balance",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(component: Component) -> TrajectoryRow {
        TrajectoryRow {
            zone_id: "__region__".into(),
            zone_name: "region, all zones".into(),
            year: 2030,
            component,
            counted: true,
            stock_tc: 1.5e9,
            stock_end_tc: 1.5e9 + 0.25,
            gross_sink_tco2_yr: 0.1 + 0.2,
            emissions_tco2_yr: 0.0,
            net_flux_tco2_yr: 1e-300,
            net_flux_tco2_yr_mean: -3.5,
            net_flux_tco2_yr_p05: f64::MIN_POSITIVE,
            net_flux_tco2_yr_p50: 7.0,
            net_flux_tco2_yr_p95: 1e21,
            emissions_tco2_yr_p05: 0.0,
            emissions_tco2_yr_p95: 2.0,
            net_flux_tco2_yr_map: -0.0,
        }
    }

    #[test]
    fn trajectory_rows_survive_the_file_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("trajectory.csv");
        let rows = vec![
            row(Component::Forest("spruce".into())),
            row(Component::Desert(
                super::super::component::DesertPart::Inorganic,
            )),
            row(Component::Total),
        ];
        let mut w = csv::Writer::from_path(&p).unwrap();
        for r in &rows {
            w.serialize(r).unwrap();
        }
        w.flush().unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("zone_id,zone_name,year,component,counted,stock_tc,"));
        assert!(text.contains(",desert:inorganic,true,"), "{text}");
        assert_eq!(read_trajectory(&p).unwrap(), rows);
    }

    #[test]
    fn a_bad_trajectory_row_is_named_by_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("trajectory.csv");
        let mut w = csv::Writer::from_path(&p).unwrap();
        w.serialize(row(Component::Total)).unwrap();
        w.serialize(row(Component::Total)).unwrap();
        w.flush().unwrap();
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replacen(",total,", ",soil:x,", 2)
            .replacen(",soil:x,", ",total,", 1);
        std::fs::write(&p, text).unwrap();
        let e = read_trajectory(&p).unwrap_err().to_string();
        assert!(
            e.contains("trajectory.csv")
                && e.contains("line 3")
                && e.contains("'soil:x' is not a component"),
            "{e}"
        );
        std::fs::write(&p, "zone_id,year\n").unwrap();
        let e = read_trajectory(&p).unwrap_err().to_string();
        assert!(e.contains("line 1: no column 'component'"), "{e}");
    }
}
