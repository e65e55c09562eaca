//! History + projection as one line (`sinkmap balance SCENE --series DIR`): the annual fluxes
//! of a series (`series.csv`, summed over the zones: the whole grid's rows) followed by the
//! projection from the series' last-year cube (`trajectory.csv` of the region), with the
//! emission history beside them. The definitions that make the two parts one quantity are in
//! docs/science.md §7.1. Reading and joining only tables: no GDAL here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::component::{Component, DesertPart};
use super::emissions::{EmissionFile, SeriesKind};
use super::rows::TrajectoryRow;
use super::{AccountingOptions, REGION};
use crate::config::Scene;
use crate::cube::GRID_ZONE;
use crate::error::{Error, Result};
use crate::model::CO2_PER_C;

/// The file `balance --series` writes: one row per year, history then projection.
pub const FILE_NAME: &str = "history_projection.csv";
/// Its chart.
pub const CHART_NAME: &str = "history_projection.png";

/// The columns of `series.csv` the join reads (the table has more: class areas, the emissions
/// by cause and event, conflict and nodata areas).
const SERIES_COLUMNS: [&str; 5] = [
    "zone_id",
    "year",
    "stock_tc",
    "gross_sink_tc",
    "net_flux_tc",
];

/// One row of a series' `series.csv` as far as the join reads it (t C over the step that
/// ends in `year`; the first year's fluxes are empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesRow {
    /// Zone id (`__grid__` for the whole grid).
    pub zone_id: String,
    /// The year of the land cover.
    pub year: i32,
    /// Stock at the end of the year (t C).
    pub stock_tc: f64,
    /// Growth of the stands that stay forest over the step (t C); empty in the first year.
    pub gross_sink_tc: Option<f64>,
    /// Net flux into the land over the step (t C, positive = uptake); empty in the first year.
    pub net_flux_tc: Option<f64>,
}

/// Reads `series.csv`; a bad row is named by file and line.
pub fn read_series(path: &Path) -> Result<Vec<SeriesRow>> {
    crate::tables::read_csv_rows(path, &SERIES_COLUMNS, "a sinkmap series table")
}

/// Where a row of the joined table comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The series (`series.csv`): observed land cover year by year.
    History,
    /// The projection from the series' last-year cube (`trajectory.csv`).
    Projection,
}

/// One year of `history_projection.csv` (t CO₂/yr, positive = uptake; docs/science.md §7.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRow {
    /// Calendar year of the flux.
    pub year: i32,
    /// `history` or `projection`.
    pub source: Source,
    /// History: growth of the stands that stay forest; projection: the gross sink of the
    /// forest and restoration components.
    pub gross_sink_tco2_yr: f64,
    /// Everything that is not that growth: history: clearing, conversion (negative where new
    /// land covers take carbon up), events and transfers; projection: disturbance emissions.
    pub emissions_tco2_yr: f64,
    /// The one line: gross sink − emissions, the change of the modelled stock.
    pub net_flux_tco2_yr: f64,
    /// The same in Mt CO₂/yr.
    pub net_flux_mt_co2: f64,
    /// Projection only: the counted rate-based sinks (desert crust, shrub [, inorganic],
    /// other classes' rates), which the series does not model.
    pub rate_sink_tco2_yr: Option<f64>,
    /// Projection only: the projection's counted total (= the line + the rate-based sinks;
    /// the net flux `balance.csv` compares with the scenarios).
    pub net_flux_total_tco2_yr: Option<f64>,
    /// The same in Mt CO₂/yr.
    pub net_flux_total_mt_co2: Option<f64>,
    /// The region's reported emissions of that year (a point of the emission file's
    /// historical series; empty where it has none, never interpolated).
    pub emissions_history_mt_co2: Option<f64>,
}

/// Reads `history_projection.csv`; a bad row is named by file and line.
pub fn read_history(path: &Path) -> Result<Vec<HistoryRow>> {
    crate::tables::read_csv_rows(
        path,
        &["year", "source", "net_flux_tco2_yr"],
        "a sinkmap history + projection table",
    )
}

/// The emission file an accounting reads: `--scenarios`, else the models' Xinjiang file.
pub fn scenarios_path(scene: &Scene, o: &AccountingOptions) -> PathBuf {
    o.scenarios
        .clone()
        .unwrap_or_else(|| scene.models_dir.join("emissions/xinjiang.toml"))
}

/// The whole grid's years of a series table, checked: every year once, at least two, the
/// fluxes of every year but the first present, each zone with the grid's years, and — given
/// the scene's series years — exactly the scene's years between the first and the last.
pub fn checked_grid_rows<'a>(
    path: &Path,
    rows: &'a [SeriesRow],
    scene_years: Option<&[i32]>,
) -> Result<Vec<&'a SeriesRow>> {
    let bad = |m: String| Error::data(path, m);
    let mut grid: Vec<&SeriesRow> = rows.iter().filter(|r| r.zone_id == GRID_ZONE).collect();
    if grid.is_empty() {
        return Err(bad(format!(
            "no row of the whole grid (zone_id {GRID_ZONE}): not a sinkmap series table"
        )));
    }
    grid.sort_by_key(|r| r.year);
    let years: Vec<i32> = grid.iter().map(|r| r.year).collect();
    if let Some(w) = years.windows(2).find(|w| w[0] == w[1]) {
        return Err(bad(format!(
            "year {} appears twice for the whole grid",
            w[0]
        )));
    }
    if years.len() < 2 {
        return Err(bad(format!(
            "only the year {}: a series needs two years for one flux",
            years[0]
        )));
    }
    let (first, last) = (years[0], years[years.len() - 1]);
    if let Some(sy) = scene_years {
        let want: Vec<i32> = sy
            .iter()
            .copied()
            .filter(|y| (first..=last).contains(y))
            .collect();
        if let Some(y) = want.iter().find(|y| !years.contains(y)) {
            return Err(bad(format!(
                "no row for {y}, a year of the scene's [series] between {first} and {last}: the table is incomplete, or belongs to another scene"
            )));
        }
        if let Some(y) = years.iter().find(|y| !want.contains(y)) {
            return Err(bad(format!(
                "year {y} is not a year of the scene's [series] ({}): a series of another scene",
                sy.iter()
                    .map(|y| y.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let mut per_zone: BTreeMap<&str, BTreeSet<i32>> = BTreeMap::new();
    for r in rows {
        per_zone.entry(&r.zone_id).or_default().insert(r.year);
    }
    let grid_years: BTreeSet<i32> = years.iter().copied().collect();
    for (z, ys) in &per_zone {
        if let Some(y) = grid_years.difference(ys).next() {
            return Err(bad(format!("zone '{z}' has no row for {y}")));
        }
        if let Some(y) = ys.difference(&grid_years).next() {
            return Err(bad(format!(
                "zone '{z}' has a row for {y}, a year the whole grid does not have"
            )));
        }
    }
    for r in &grid[1..] {
        if r.gross_sink_tc.is_none() || r.net_flux_tc.is_none() {
            return Err(bad(format!(
                "the whole grid's row of {} has no gross_sink_tc or net_flux_tc (only the first year's fluxes are empty)",
                r.year
            )));
        }
    }
    Ok(grid)
}

/// The history rows of the whole grid's series rows (checked, by year): one row per calendar
/// year after the first; a step of n years is spread evenly over its n years.
pub fn history_rows(grid: &[&SeriesRow]) -> Vec<HistoryRow> {
    let mut out = Vec::new();
    for w in grid.windows(2) {
        let (y0, r) = (w[0].year, w[1]);
        let n = f64::from(r.year - y0);
        let gross = r.gross_sink_tc.unwrap_or(0.0) * CO2_PER_C / n;
        let net = r.net_flux_tc.unwrap_or(0.0) * CO2_PER_C / n;
        for year in y0 + 1..=r.year {
            out.push(HistoryRow {
                year,
                source: Source::History,
                gross_sink_tco2_yr: gross,
                emissions_tco2_yr: gross - net,
                net_flux_tco2_yr: net,
                net_flux_mt_co2: net / 1e6,
                rate_sink_tco2_yr: None,
                net_flux_total_tco2_yr: None,
                net_flux_total_mt_co2: None,
                emissions_history_mt_co2: None,
            });
        }
    }
    out
}

/// Whether a component's flux is a change of the stock a series models (forest stands and
/// restoration plantings); the others are rate-based sinks.
fn is_stock_change(c: &Component) -> bool {
    matches!(c, Component::Forest(_) | Component::Restoration(_))
}

/// The projection rows of the region's trajectory, year by year.
pub fn projection_rows(traj: &[TrajectoryRow]) -> Vec<HistoryRow> {
    let mut by_year: BTreeMap<i32, HistoryRow> = BTreeMap::new();
    for r in traj.iter().filter(|r| r.zone_id == REGION) {
        let row = by_year.entry(r.year).or_insert(HistoryRow {
            year: r.year,
            source: Source::Projection,
            gross_sink_tco2_yr: 0.0,
            emissions_tco2_yr: 0.0,
            net_flux_tco2_yr: 0.0,
            net_flux_mt_co2: 0.0,
            rate_sink_tco2_yr: Some(0.0),
            net_flux_total_tco2_yr: None,
            net_flux_total_mt_co2: None,
            emissions_history_mt_co2: None,
        });
        if r.component == Component::Total {
            row.net_flux_total_tco2_yr = Some(r.net_flux_tco2_yr);
            row.net_flux_total_mt_co2 = Some(r.net_flux_tco2_yr / 1e6);
        } else if is_stock_change(&r.component) {
            row.gross_sink_tco2_yr += r.gross_sink_tco2_yr;
            row.emissions_tco2_yr += r.emissions_tco2_yr;
        } else if r.counted && r.component != Component::Desert(DesertPart::Land) {
            *row.rate_sink_tco2_yr.get_or_insert(0.0) += r.net_flux_tco2_yr;
        }
    }
    by_year
        .into_values()
        .map(|mut r| {
            r.net_flux_tco2_yr = r.gross_sink_tco2_yr - r.emissions_tco2_yr;
            r.net_flux_mt_co2 = r.net_flux_tco2_yr / 1e6;
            r
        })
        .collect()
}

/// Joins the history of a series (`series.csv` at `series_path`) and the projection from its
/// last-year cube into one line, with the region's reported emissions beside it. The
/// projection must start the year after the series' last year (docs/science.md §7.1).
pub fn join(
    series_path: &Path,
    series: &[SeriesRow],
    scene_years: Option<&[i32]>,
    traj: &[TrajectoryRow],
    em: &EmissionFile,
) -> Result<Vec<HistoryRow>> {
    let grid = checked_grid_rows(series_path, series, scene_years)?;
    let last = grid[grid.len() - 1].year;
    let projected = projection_rows(traj);
    if let Some(p) = projected.first() {
        if p.year != last + 1 {
            return Err(Error::data(
                series_path,
                format!(
                    "the projection starts in {}, but a projection from this series' last year ({last}) starts in {}",
                    p.year,
                    last + 1
                ),
            ));
        }
    }
    let reported: BTreeMap<i32, f64> = em
        .series
        .iter()
        .filter(|s| s.kind == SeriesKind::Historical && s.zone_id.is_none())
        .flat_map(|s| s.points.iter().copied())
        .collect();
    let mut rows = history_rows(&grid);
    rows.extend(projected);
    for r in &mut rows {
        r.emissions_history_mt_co2 = reported.get(&r.year).copied();
    }
    Ok(rows)
}

/// Writes the joined rows as CSV to `path`.
pub fn write(path: &Path, rows: &[HistoryRow]) -> Result<()> {
    let mut w = csv::Writer::from_path(path).map_err(|e| Error::output(path, e))?;
    for r in rows {
        w.serialize(r).map_err(|e| Error::output(path, e))?;
    }
    w.flush().map_err(|e| Error::output(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srow(zone: &str, year: i32, gross: Option<f64>, net: Option<f64>) -> SeriesRow {
        SeriesRow {
            zone_id: zone.into(),
            year,
            stock_tc: 100.0,
            gross_sink_tc: gross,
            net_flux_tc: net,
        }
    }

    fn trow(year: i32, component: Component, counted: bool, gross: f64, em: f64) -> TrajectoryRow {
        TrajectoryRow {
            zone_id: REGION.into(),
            zone_name: "region".into(),
            year,
            component,
            counted,
            stock_tc: 0.0,
            stock_end_tc: 0.0,
            gross_sink_tco2_yr: gross,
            emissions_tco2_yr: em,
            net_flux_tco2_yr: gross - em,
            net_flux_tco2_yr_mean: 0.0,
            net_flux_tco2_yr_p05: 0.0,
            net_flux_tco2_yr_p50: 0.0,
            net_flux_tco2_yr_p95: 0.0,
            emissions_tco2_yr_p05: 0.0,
            emissions_tco2_yr_p95: 0.0,
            net_flux_tco2_yr_map: 0.0,
        }
    }

    fn emissions() -> EmissionFile {
        toml::from_str(
            r#"region = "test"
unit = "Mt CO2"
[[series]]
name = "historical"
kind = "historical"
source = "test"
points = [[2019, 100.0], [2022, 130.0]]
[[series]]
name = "s"
kind = "scenario"
source = "test"
points = [[2020, 7.0], [2030, 9.0]]
"#,
        )
        .unwrap()
    }

    /// Grid 2018 (no flux), 2019 (gross 3, net 1 t C), 2021 (a two-year step: gross 4, net
    /// 2); a zone with the same years; the projection of 2022 by hand.
    fn case() -> (Vec<SeriesRow>, Vec<TrajectoryRow>) {
        let mut s = Vec::new();
        for z in [GRID_ZONE, "a"] {
            s.push(srow(z, 2018, None, None));
            s.push(srow(z, 2019, Some(3.0), Some(1.0)));
            s.push(srow(z, 2021, Some(4.0), Some(2.0)));
        }
        let t = vec![
            trow(2022, Component::Forest("spruce".into()), true, 10.0, 1.0),
            trow(2022, Component::Restoration("belt".into()), true, 2.0, 0.0),
            trow(2022, Component::Desert(DesertPart::Crust), true, 5.0, 0.0),
            trow(
                2022,
                Component::Desert(DesertPart::Inorganic),
                false,
                7.0,
                0.0,
            ),
            trow(2022, Component::Desert(DesertPart::Land), true, 0.0, 0.0),
            trow(2022, Component::Total, true, 17.0, 1.0),
            // Another zone's rows are not the region's.
            TrajectoryRow {
                zone_id: "a".into(),
                ..trow(2022, Component::Forest("spruce".into()), true, 99.0, 0.0)
            },
        ];
        (s, t)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn history_then_projection_by_hand() {
        let (s, t) = case();
        let rows = join(
            Path::new("series.csv"),
            &s,
            Some(&[2017, 2018, 2019, 2021, 2023]),
            &t,
            &emissions(),
        )
        .unwrap();
        assert_eq!(
            rows.iter().map(|r| (r.year, r.source)).collect::<Vec<_>>(),
            [
                (2019, Source::History),
                (2020, Source::History),
                (2021, Source::History),
                (2022, Source::Projection)
            ]
        );
        let k = 44.0 / 12.0;
        // 2019: gross 3 t C, net 1 t C; emissions = what is not growth.
        assert!(close(rows[0].gross_sink_tco2_yr, 3.0 * k));
        assert!(close(rows[0].net_flux_tco2_yr, k));
        assert!(close(rows[0].emissions_tco2_yr, 2.0 * k));
        assert!(close(rows[0].net_flux_mt_co2, k / 1e6));
        // The two-year step 2019 → 2021 spread evenly: 2 and 1 t C per year.
        for r in &rows[1..3] {
            assert!(close(r.gross_sink_tco2_yr, 2.0 * k), "{r:?}");
            assert!(close(r.net_flux_tco2_yr, k), "{r:?}");
            assert_eq!(r.rate_sink_tco2_yr, None);
        }
        // 2022: forest + restoration = gross 12, emissions 1, net 11; the counted rate-based
        // sinks 5 (inorganic not counted, desert land has no flux); the total 16 = 11 + 5.
        let p = &rows[3];
        assert_eq!(
            (
                p.gross_sink_tco2_yr,
                p.emissions_tco2_yr,
                p.net_flux_tco2_yr
            ),
            (12.0, 1.0, 11.0)
        );
        assert_eq!(p.rate_sink_tco2_yr, Some(5.0));
        assert_eq!(p.net_flux_total_tco2_yr, Some(16.0));
        assert_eq!(p.net_flux_total_mt_co2, Some(16.0 / 1e6));
        // Reported emissions at their own points only.
        assert_eq!(
            rows.iter()
                .map(|r| r.emissions_history_mt_co2)
                .collect::<Vec<_>>(),
            [Some(100.0), None, None, Some(130.0)]
        );
    }

    #[test]
    fn the_table_survives_the_file() {
        let (s, t) = case();
        let rows = join(Path::new("series.csv"), &s, None, &t, &emissions()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(FILE_NAME);
        write(&p, &rows).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.contains(",history,") && text.contains(",projection,"),
            "{text}"
        );
        assert_eq!(read_history(&p).unwrap(), rows);
    }

    #[test]
    fn bad_series_tables_are_named() {
        let (s, t) = case();
        let em = emissions();
        let p = Path::new("out/series.csv");
        let err = |s: &[SeriesRow], years: Option<&[i32]>, t: &[TrajectoryRow]| {
            join(p, s, years, t, &em).unwrap_err().to_string()
        };
        // A year of the scene missing from the table.
        let e = err(&s, Some(&[2018, 2019, 2020, 2021]), &t);
        assert!(
            e.contains("out/series.csv") && e.contains("no row for 2020"),
            "{e}"
        );
        // A year the scene does not have: another scene's series.
        let e = err(&s, Some(&[2018, 2021]), &t);
        assert!(
            e.contains("year 2019 is not a year") && e.contains("another scene"),
            "{e}"
        );
        // A zone without a year.
        let short: Vec<SeriesRow> = s
            .iter()
            .filter(|r| !(r.zone_id == "a" && r.year == 2019))
            .cloned()
            .collect();
        assert!(err(&short, None, &t).contains("zone 'a' has no row for 2019"));
        // No grid rows; one year only; a year twice; a missing flux.
        let zone_only: Vec<SeriesRow> = s.iter().filter(|r| r.zone_id == "a").cloned().collect();
        assert!(err(&zone_only, None, &t).contains("no row of the whole grid"));
        assert!(err(&s[..1], None, &t).contains("only the year 2018"));
        let mut twice = s.clone();
        twice.push(srow(GRID_ZONE, 2019, Some(1.0), Some(1.0)));
        assert!(err(&twice, None, &t).contains("year 2019 appears twice"));
        let mut no_flux = s.clone();
        no_flux[1].net_flux_tc = None;
        assert!(err(&no_flux, None, &t).contains("row of 2019 has no gross_sink_tc"));
        // A projection that does not start the year after the series.
        let late: Vec<TrajectoryRow> = t
            .iter()
            .map(|r| TrajectoryRow {
                year: 2024,
                ..r.clone()
            })
            .collect();
        let e = err(&s, None, &late);
        assert!(
            e.contains("starts in 2024") && e.contains("starts in 2022"),
            "{e}"
        );
    }
}
