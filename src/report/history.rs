//! The chart of history + projection (`balance --series`): the land's net flux from the
//! series, continued by the projection from its last year, beside the reported emissions and
//! the emission scenarios (Mt CO₂/yr; docs/science.md §7.1).

use std::path::Path;

use plotters::style::RGBColor;

use super::charts::{line_chart, Line};
use crate::accounting::history::{read_history, HistoryRow, Source, CHART_NAME, FILE_NAME};
use crate::accounting::rows::read_balance;
use crate::accounting::{BalanceRow, REGION};
use crate::error::Result;

/// The lines of the chart: the history, the projection joined to the history's last year, the
/// projection with the rate-based sinks (where they are not zero), the reported emissions as
/// markers, and one line per region scenario of `balance`.
pub(crate) fn lines(rows: &[HistoryRow], balance: &[BalanceRow]) -> Vec<Line> {
    let pts = |src: Source| -> Vec<(f64, f64)> {
        rows.iter()
            .filter(|r| r.source == src)
            .map(|r| (f64::from(r.year), r.net_flux_mt_co2))
            .collect()
    };
    let history = pts(Source::History);
    let mut projection = pts(Source::Projection);
    // One line: the projection starts at the history's last point.
    if let Some(last) = history.last() {
        if !projection.is_empty() {
            projection.insert(0, *last);
        }
    }
    let mut lines = vec![
        Line {
            name: "land net flux, history (series)".into(),
            points: history,
            band: None,
            color: RGBColor(0, 109, 44),
            markers: false,
        },
        Line {
            name: "land net flux, projection from the last year".into(),
            points: projection,
            band: None,
            color: RGBColor(102, 166, 30),
            markers: false,
        },
    ];
    let with_rates: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| Some((f64::from(r.year), r.net_flux_total_mt_co2?)))
        .collect();
    let rates = rows
        .iter()
        .any(|r| r.rate_sink_tco2_yr.is_some_and(|v| v != 0.0));
    if rates {
        lines.push(Line {
            name: "projection incl. rate-based sinks (desert, other classes)".into(),
            points: with_rates,
            band: None,
            color: RGBColor(117, 112, 179),
            markers: false,
        });
    }
    let reported: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| Some((f64::from(r.year), r.emissions_history_mt_co2?)))
        .collect();
    if !reported.is_empty() {
        lines.push(Line {
            name: "reported emissions".into(),
            points: reported,
            band: None,
            color: RGBColor(0, 0, 0),
            markers: true,
        });
    }
    let mut names: Vec<&str> = Vec::new();
    for r in balance.iter().filter(|r| r.zone_id == REGION) {
        if !names.contains(&r.scenario.as_str()) {
            names.push(&r.scenario);
        }
    }
    const SCENARIO: [RGBColor; 5] = [
        RGBColor(217, 95, 14),
        RGBColor(231, 41, 138),
        RGBColor(166, 118, 29),
        RGBColor(230, 171, 2),
        RGBColor(80, 80, 80),
    ];
    for (i, n) in names.iter().enumerate() {
        lines.push(Line {
            name: format!("emissions, scenario {n}"),
            points: balance
                .iter()
                .filter(|r| r.zone_id == REGION && r.scenario == *n)
                .map(|r| (f64::from(r.year), r.emissions_mt_co2))
                .collect(),
            band: None,
            color: SCENARIO[i % SCENARIO.len()],
            markers: false,
        });
    }
    lines
}

/// Draws the chart of `rows` and the scenarios of `balance` into `out` (PNG).
pub fn chart(out: &Path, rows: &[HistoryRow], balance: &[BalanceRow]) -> Result<()> {
    line_chart(
        out,
        "Land net flux, history and projection, beside the emissions",
        "year",
        "Mt CO₂/yr",
        &lines(rows, balance),
        480,
    )
}

impl super::Figures<'_> {
    /// History + projection (`history_projection.csv` of `balance --series`), when present.
    pub(super) fn history(&mut self) -> Result<()> {
        let table = self.out_dir.join(FILE_NAME);
        if !table.exists() {
            return Ok(());
        }
        let rows = read_history(&table)?;
        let bal = self.out_dir.join("balance.csv");
        let balance = if bal.exists() {
            read_balance(&bal)?
        } else {
            Vec::new()
        };
        self.add(
            "Land net flux: the series' history joined to the projection from its last year, with reported emissions and scenarios (Mt CO₂/yr)".into(),
            CHART_NAME,
            |o| chart(o, &rows, &balance),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(year: i32, source: Source, net: f64, total: Option<f64>, em: Option<f64>) -> HistoryRow {
        HistoryRow {
            year,
            source,
            gross_sink_tco2_yr: net * 1e6,
            emissions_tco2_yr: 0.0,
            net_flux_tco2_yr: net * 1e6,
            net_flux_mt_co2: net,
            rate_sink_tco2_yr: total.map(|t| (t - net) * 1e6),
            net_flux_total_tco2_yr: total.map(|t| t * 1e6),
            net_flux_total_mt_co2: total,
            emissions_history_mt_co2: em,
        }
    }

    #[test]
    fn the_projection_continues_the_history_line() {
        let rows = [
            row(2019, Source::History, 1.0, None, Some(50.0)),
            row(2020, Source::History, 2.0, None, None),
            row(2021, Source::Projection, 3.0, Some(3.5), None),
            row(2022, Source::Projection, 4.0, Some(4.5), Some(60.0)),
        ];
        let l = lines(&rows, &[]);
        assert_eq!(l[0].points, [(2019.0, 1.0), (2020.0, 2.0)]);
        assert_eq!(l[1].points, [(2020.0, 2.0), (2021.0, 3.0), (2022.0, 4.0)]);
        assert_eq!(l[2].points, [(2021.0, 3.5), (2022.0, 4.5)]);
        assert!(l[3].markers);
        assert_eq!(l[3].points, [(2019.0, 50.0), (2022.0, 60.0)]);
        assert_eq!(l.len(), 4);
        // Without rate-based sinks the total line is left out.
        let flat: Vec<HistoryRow> = rows
            .iter()
            .map(|r| HistoryRow {
                rate_sink_tco2_yr: r.rate_sink_tco2_yr.map(|_| 0.0),
                ..r.clone()
            })
            .collect();
        assert_eq!(lines(&flat, &[]).len(), 3);
    }
}
