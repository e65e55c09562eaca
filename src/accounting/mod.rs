//! Sink accounting to 2060 from the cohort cube (never from the rasters again): projection,
//! Monte Carlo over the model parameters, and the balance against emission scenarios.

pub mod component;
pub mod emissions;
pub mod history;
pub mod maperror;
pub mod projection;
pub mod rows;
pub mod uncertainty;

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::{Models, Scene};
use crate::cube::{Cube, GRID_ZONE, OUTSIDE_ZONE};
use crate::error::{Error, Result};
use crate::io::files::read_toml;
use crate::io::temp::{temp_path, TempFile};
use component::{Component, Components, DesertPart};
use emissions::EmissionFile;
use maperror::{MapError, Multipliers};
use projection::{counted_total, plan, project, RolloutFile, ZoneCohorts};
use rows::trajectory_rows;
use uncertainty::{percentile, uncertain_parameters, Uncertain};

/// Values indexed `[zone][year][component]`.
type Table3 = Vec<Vec<Vec<f64>>>;
/// Bands indexed `[zone][year][component]`.
type Bands3 = Vec<Vec<Vec<Band>>>;

/// Zone id of the region: the sum of all zones (and the outside), or the grid.
pub const REGION: &str = "__region__";

/// Checks one rollout rule beyond its syntax: a zone that exists, a finite rate ≥ 0, an end
/// year not before the start year.
fn rollout_rule_check(
    p: &Path,
    r: &projection::Rollout,
    base_year: i32,
    zone_exists: &dyn Fn(&str) -> bool,
) -> Result<()> {
    let who = format!("rollout of '{}'", r.intervention);
    if let Some(z) = &r.zone {
        if !zone_exists(z) {
            return Err(Error::invalid(p, format!("{who}: zone '{z}' does not exist in this run (zone ids are the zone layer's id field; a run without zones has none; leave `zone` out for every zone)")));
        }
    }
    if let Some(h) = r.ha_per_yr {
        if !(h.is_finite() && h >= 0.0) {
            return Err(Error::invalid(
                p,
                format!("{who}: ha_per_yr = {h}: a rate of planting must be a finite number ≥ 0"),
            ));
        }
    }
    if let Some(end) = r.all_eligible_by_year {
        if end < r.start_year {
            return Err(Error::invalid(
                p,
                format!(
                    "{who}: all_eligible_by_year {end} is before start_year {}",
                    r.start_year
                ),
            ));
        }
    }
    if !(base_year - 200..=base_year + 500).contains(&r.start_year) {
        return Err(Error::invalid(
            p,
            format!(
                "{who}: start_year {} is implausible for a scene of {base_year}",
                r.start_year
            ),
        ));
    }
    Ok(())
}

/// How to run the accounting.
#[derive(Debug, Clone)]
pub struct AccountingOptions {
    /// Last year of the projection (inclusive; the first is the scene's base year).
    pub until: i32,
    /// Number of Monte Carlo draws (docs/science.md §2).
    pub draws: usize,
    /// Seed of the draws: the same seed gives the same draws on any thread count.
    pub seed: u64,
    /// Compute threads (None: every core).
    pub threads: Option<usize>,
    /// Emission scenario file (TOML) [default: `emissions/xinjiang.toml` of the models
    /// folder].
    pub scenarios: Option<PathBuf>,
    /// Restoration rollout and forest disturbance file (`rollout.toml`; none: no planting and
    /// no disturbance).
    pub rollout: Option<PathBuf>,
    /// Parameter distributions (`uncertainty.toml`) [default: the models folder's, when it
    /// has one].
    pub uncertainty: Option<PathBuf>,
    /// The region the scene's sink belongs to (default: the scene name).
    pub region: Option<String>,
    /// Compare the sink with the emissions of a region the scene is not (explicit opt-in).
    pub allow_subregion_balance: bool,
    /// Map error from an assessment (folder or assessment.json) and a calibration (folder or
    /// calibration.json); docs/science.md §6.8.
    pub assessment: Option<PathBuf>,
    /// The calibration (folder of `sinkmap calibrate`, or its calibration.json) whose forest
    /// density ratio enters the accounting; docs/science.md §6.8.
    pub calibration: Option<PathBuf>,
}

/// A quantity's nominal value (the deterministic run with the model files' values) and its
/// distribution over the draws.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Band {
    /// The value with the model files' values (and, with map error, the error-adjusted
    /// areas and density; docs/science.md §6.8).
    pub nominal: f64,
    /// Mean over the draws.
    pub mean: f64,
    /// 5th percentile over the draws (R type 7; docs/science.md §2).
    pub p05: f64,
    /// Median over the draws.
    pub p50: f64,
    /// 95th percentile over the draws.
    pub p95: f64,
}

impl Band {
    /// The band of `nominal` with the draws' `values` (sorted in place; no draws gives 0 for
    /// the mean and NaN for the percentiles).
    pub fn of(nominal: f64, values: &mut [f64]) -> Band {
        values.sort_by(|a, b| a.total_cmp(b));
        Band {
            nominal,
            mean: values.iter().sum::<f64>() / values.len().max(1) as f64,
            p05: percentile(values, 0.05),
            p50: percentile(values, 0.50),
            p95: percentile(values, 0.95),
        }
    }
}

/// The projection of every zone with its uncertainty. Every table is `[zone][year][component]`;
/// the definitions of the quantities are in docs/science.md §1.
#[derive(Debug, Clone)]
pub struct Accounting {
    /// The years, base year to horizon.
    pub years: Vec<i32>,
    /// Components, then [`Component::Total`] (counted).
    pub components: Vec<Component>,
    /// Which components count in the total.
    pub counted: Vec<bool>,
    /// (zone id, zone name); the last one is the region.
    pub zones: Vec<(String, String)>,
    /// Nominal stocks (t C) on 1 January.
    pub stock: Table3,
    /// Nominal stocks (t C) on 31 December (= the next year's `stock`).
    pub stock_end: Table3,
    /// Nominal gross sink (t CO₂/yr).
    pub gross: Table3,
    /// Nominal emissions from disturbance (t CO₂/yr, positive; zero outside the forest
    /// columns and the total).
    pub emissions: Table3,
    /// Nominal net flux = `gross − emissions` (t CO₂/yr).
    pub net: Table3,
    /// Gross sink over the draws (t CO₂/yr), with its nominal value; the bands of
    /// `gross_bands`, `emission_bands` and `bands` are indexed like the tables.
    pub gross_bands: Vec<Vec<Vec<Band>>>,
    /// Emissions from disturbance over the draws (t CO₂/yr).
    pub emission_bands: Vec<Vec<Vec<Band>>>,
    /// Net flux over the draws (t CO₂/yr): the bands the balance uses.
    pub bands: Vec<Vec<Vec<Band>>>,
    /// `[draw][zone][year]`: the counted net total, for checks.
    pub draw_totals: Vec<Vec<Vec<f64>>>,
    /// Number of Monte Carlo draws.
    pub draws: usize,
    /// Seed of the draws.
    pub seed: u64,
    /// The map-based nominal fluxes (the map's areas and densities as they are); equal to
    /// `net`, `gross`, `emissions` when no assessment or calibration is used.
    pub map_net: Table3,
    /// The map-based nominal gross sink (t CO₂/yr).
    pub map_gross: Table3,
    /// The map-based nominal emissions from disturbance (t CO₂/yr).
    pub map_emissions: Table3,
    /// What the bands include (model parameters; map area; forest density).
    pub uncertainty_sources: Vec<String>,
}

fn draw_models(nominal: &Models, params: &[Uncertain], seed: u64, draw: usize) -> Models {
    let mut m = nominal.clone();
    if params.is_empty() {
        return m;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(draw as u64);
    for (target, v) in uncertainty::draw(params, &mut rng) {
        if let Ok(slot) = m.slot(&target) {
            *slot = v;
        }
    }
    m
}

/// Nominal (or one draw's) tables of every zone, the region appended.
struct Tables {
    stock: Table3,
    stock_end: Table3,
    gross: Table3,
    emissions: Table3,
}

impl Tables {
    /// Net flux = gross sink − emissions, per zone, year and component.
    fn net(&self) -> Table3 {
        self.gross
            .iter()
            .zip(&self.emissions)
            .map(|(gz, ez)| {
                gz.iter()
                    .zip(ez)
                    .map(|(g, e)| g.iter().zip(e).map(|(g, e)| g - e).collect())
                    .collect()
            })
            .collect()
    }
}

/// What [`Projection::account`] projects: the cube, the nominal models and their uncertain
/// parameters, the rollout, the years, the Monte Carlo draws and (optionally) the map error.
pub struct Projection<'a> {
    /// The cohort cube of the base year (the projection's starting state).
    pub cube: &'a Cube,
    /// The model set with its files' values.
    pub nominal: &'a Models,
    /// The parameters drawn in the Monte Carlo (docs/science.md §2).
    pub params: &'a [Uncertain],
    /// The carbon pools the stocks include.
    pub pools: crate::model::Pools,
    /// Restoration planting and forest disturbance.
    pub rollout: &'a RolloutFile,
    /// First year (the cube's year; stocks on its 1 January).
    pub base_year: i32,
    /// Last year (inclusive).
    pub until: i32,
    /// Number of Monte Carlo draws.
    pub draws: usize,
    /// Seed of the draws (draw `d` uses stream `d` of a ChaCha8 generator with this seed).
    pub seed: u64,
    /// Error-adjusted areas and density (docs/science.md §6.8); None: the map as it is.
    pub map_error: Option<&'a MapError>,
}

/// The zones, their cohorts and plans, and the table layout, built once per accounting.
struct Setup {
    zones: Vec<(String, String)>,
    cohorts: Vec<ZoneCohorts>,
    plans: Vec<Vec<Vec<(i32, f64)>>>,
    disturbance: Vec<f64>,
    years: Vec<i32>,
    components: Vec<Component>,
    counted: Vec<bool>,
    /// Columns with emissions: the forest types and the total.
    emission_cols: Vec<usize>,
}

/// The cube's zones (the outside and the whole grid where present), in table order.
fn cube_zones(cube: &Cube) -> Vec<(String, String)> {
    let mut zones: Vec<(String, String)> = cube
        .zone_ids()
        .into_iter()
        .map(|z| (z.clone(), cube.zone_names[&z].clone()))
        .collect();
    if cube.zone_names.contains_key(OUTSIDE_ZONE) {
        zones.push((OUTSIDE_ZONE.into(), "outside every zone".into()));
    }
    if zones.is_empty() {
        zones.push((GRID_ZONE.into(), "whole grid".into()));
    }
    zones
}

impl Projection<'_> {
    fn setup(&self) -> Setup {
        let nominal = self.nominal;
        let zones = cube_zones(self.cube);
        let names: Vec<String> = nominal
            .restoration
            .as_ref()
            .map(|r| r.interventions.iter().map(|i| i.name.clone()).collect())
            .unwrap_or_default();
        let cohorts: Vec<ZoneCohorts> = zones
            .iter()
            .map(|(z, _)| ZoneCohorts::from_cube(self.cube, z, nominal))
            .collect();
        let plans = zones
            .iter()
            .zip(&cohorts)
            .map(|((z, _), c)| plan(&self.rollout.rules, z, &names, &c.eligible, self.until))
            .collect();
        let disturbance = nominal
            .forest
            .types
            .iter()
            .map(|t| {
                self.rollout
                    .disturbance
                    .get(&t.name)
                    .copied()
                    .unwrap_or(0.0)
            })
            .collect();
        let cols = Components::of(nominal);
        let mut components = cols.list.clone();
        let inorg = cols.desert(DesertPart::Inorganic);
        let mut counted: Vec<bool> = (0..components.len())
            .map(|c| c != inorg || nominal.desert.include_inorganic)
            .collect();
        components.push(Component::Total);
        counted.push(true);
        Setup {
            zones,
            cohorts,
            plans,
            disturbance,
            years: (self.base_year..=self.until).collect(),
            components,
            counted,
            // Emissions exist only for forest types (and the total).
            emission_cols: (0..nominal.forest.types.len())
                .map(|t| cols.forest(t))
                .chain([cols.total()])
                .collect(),
        }
    }

    /// One run: per zone, [year][component + total]; the region appended as the sum. The
    /// cohorts' areas are scaled by `areas` (map error), when given.
    fn run(&self, s: &Setup, m: &Models, areas: Option<&Multipliers>) -> Tables {
        let mut t = Tables {
            stock: Vec::new(),
            stock_end: Vec::new(),
            gross: Vec::new(),
            emissions: Vec::new(),
        };
        let with_total = |rows: Vec<Vec<f64>>| -> Vec<Vec<f64>> {
            rows.into_iter()
                .map(|mut r| {
                    let x = counted_total(m, &r);
                    r.push(x);
                    r
                })
                .collect()
        };
        for (c, p) in s.cohorts.iter().zip(&s.plans) {
            let scaled = areas.map(|a| c.scaled(a));
            let c = scaled.as_ref().unwrap_or(c);
            let zp = project(
                m,
                self.pools,
                c,
                p,
                &s.disturbance,
                self.base_year,
                self.until,
            );
            t.stock.push(with_total(zp.stock));
            t.stock_end.push(with_total(zp.stock_end));
            t.gross.push(with_total(zp.gross));
            t.emissions.push(with_total(zp.emissions));
        }
        let nc = s.components.len();
        let sum = |v: &mut Table3| {
            let r: Vec<Vec<f64>> = (0..s.years.len())
                .map(|y| (0..nc).map(|c| v.iter().map(|z| z[y][c]).sum()).collect())
                .collect();
            v.push(r);
        };
        sum(&mut t.stock);
        sum(&mut t.stock_end);
        sum(&mut t.gross);
        sum(&mut t.emissions);
        t
    }

    /// Every draw's net flux table and its emission columns.
    fn draw_all(&self, s: &Setup) -> Vec<(Table3, Table3)> {
        (0..self.draws)
            .into_par_iter()
            .map(|d| {
                let m = draw_models(self.nominal, self.params, self.seed, d);
                let areas = self.map_error.map(|e| e.draw(self.seed, d));
                let t = self.run(s, &m, areas.as_ref());
                let e = t
                    .emissions
                    .iter()
                    .map(|z| {
                        z.iter()
                            .map(|row| s.emission_cols.iter().map(|&c| row[c]).collect())
                            .collect()
                    })
                    .collect();
                (t.net(), e)
            })
            .collect()
    }

    /// Projects every zone for the nominal models (areas error-adjusted when there is a map
    /// error) and the Monte Carlo draws.
    pub fn account(&self) -> Accounting {
        let s = self.setup();
        let central = self.map_error.map(|e| e.central());
        let nominal_tables = self.run(&s, self.nominal, central.as_ref());
        let map_tables = central.map(|_| self.run(&s, self.nominal, None));
        let per_draw = self.draw_all(&s);
        let net = nominal_tables.net();
        let mut zones = s.zones.clone();
        zones.push((REGION.into(), "region (all zones)".into()));
        let (bands, gross_bands, emission_bands) = bands_of(&s, &nominal_tables, &net, &per_draw);
        let nc = s.components.len();
        let draw_totals = per_draw
            .iter()
            .map(|(d, _)| {
                d.iter()
                    .map(|z| z.iter().map(|row| row[nc - 1]).collect())
                    .collect()
            })
            .collect();
        let map_tables = map_tables.unwrap_or(Tables {
            stock: Vec::new(),
            stock_end: Vec::new(),
            gross: nominal_tables.gross.clone(),
            emissions: nominal_tables.emissions.clone(),
        });
        Accounting {
            years: s.years,
            components: s.components,
            counted: s.counted,
            zones,
            stock: nominal_tables.stock,
            stock_end: nominal_tables.stock_end,
            gross: nominal_tables.gross,
            emissions: nominal_tables.emissions,
            net,
            map_net: map_tables.net(),
            map_gross: map_tables.gross,
            map_emissions: map_tables.emissions,
            gross_bands,
            emission_bands,
            bands,
            draw_totals,
            draws: self.draws,
            seed: self.seed,
            uncertainty_sources: uncertainty_sources(self.params, self.map_error),
        }
    }
}

/// What the bands include, e.g. `["model parameters (3)", "map area (assessment 1a2b…)"]`.
fn uncertainty_sources(params: &[Uncertain], map_error: Option<&MapError>) -> Vec<String> {
    let mut v = vec![format!("model parameters ({})", params.len())];
    if let Some(e) = map_error {
        v.extend(e.sources.iter().cloned());
    }
    v
}

/// Net, gross and emission bands `[zone][year][component]` over the draws.
fn bands_of(
    s: &Setup,
    nominal: &Tables,
    net: &Table3,
    per_draw: &[(Table3, Table3)],
) -> (Bands3, Bands3, Bands3) {
    let nz = s.zones.len() + 1;
    let (ny, nc, draws) = (s.years.len(), s.components.len(), per_draw.len());
    let empty = || vec![vec![Vec::with_capacity(nc); ny]; nz];
    let (mut bands, mut gross_bands, mut emission_bands) = (empty(), empty(), empty());
    let mut buf = vec![0.0; draws];
    for z in 0..nz {
        for y in 0..ny {
            for c in 0..nc {
                let k = s.emission_cols.iter().position(|&e| e == c);
                for (d, (v, _)) in per_draw.iter().enumerate() {
                    buf[d] = v[z][y][c];
                }
                bands[z][y].push(Band::of(net[z][y][c], &mut buf));
                let nominal_e = nominal.emissions[z][y][c];
                match k {
                    Some(k) => {
                        for (d, (_, e)) in per_draw.iter().enumerate() {
                            buf[d] = e[z][y][k];
                        }
                        emission_bands[z][y].push(Band::of(nominal_e, &mut buf));
                        for (d, (v, e)) in per_draw.iter().enumerate() {
                            buf[d] = v[z][y][c] + e[z][y][k];
                        }
                        gross_bands[z][y].push(Band::of(nominal.gross[z][y][c], &mut buf));
                    }
                    None => {
                        emission_bands[z][y].push(Band::of(nominal_e, &mut vec![0.0; draws]));
                        let mut b = bands[z][y][c];
                        b.nominal = nominal.gross[z][y][c];
                        gross_bands[z][y].push(b);
                    }
                }
            }
        }
    }
    (bands, gross_bands, emission_bands)
}

/// Which land the sink belongs to and which region the emissions belong to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Regions {
    /// The scene's region (its `[accounting] region`, else the scene name).
    pub sink_region: String,
    /// The emission file's region.
    pub emissions_region: String,
    /// True when the scene is not the emission file's region and the comparison was allowed
    /// explicitly (`allow_subregion_balance`).
    pub subregion_comparison: bool,
}

/// The balance of one scenario in one year (Mt CO₂). The sink is the net flux.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BalanceRow {
    /// Calendar year.
    pub year: i32,
    /// Name of the emission scenario.
    pub scenario: String,
    /// The land whose sink is compared: the scene's region, or one of its zones.
    pub sink_region: String,
    /// `__region__`, or the zone a per-zone scenario is about.
    pub zone_id: String,
    /// The region the emissions belong to (a zone id for per-zone scenarios).
    pub emissions_region: String,
    /// True when a region's sink is compared with the emissions of a larger region, allowed
    /// explicitly (docs/science.md §4).
    pub subregion_comparison: bool,
    /// The scenario's emissions in the year (Mt CO₂/yr).
    pub emissions_mt_co2: f64,
    /// Nominal net flux of the land (Mt CO₂/yr; docs/science.md §1).
    pub net_flux_mt_co2: f64,
    /// 5th percentile of the net flux over the draws (Mt CO₂/yr).
    pub net_flux_mt_co2_p05: f64,
    /// Median net flux over the draws (Mt CO₂/yr).
    pub net_flux_mt_co2_p50: f64,
    /// 95th percentile of the net flux over the draws (Mt CO₂/yr).
    pub net_flux_mt_co2_p95: f64,
    /// Emissions minus the nominal net flux.
    pub net_emissions_mt_co2: f64,
    /// Nominal net flux over the emissions (a fraction; infinite when the emissions are ≤ 0).
    pub share_offset: f64,
    /// Median net flux over the emissions.
    pub share_offset_p50: f64,
}

/// What one emission scenario comes to by the horizon (`accounting.json` `scenarios`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioHeadline {
    /// Name of the scenario.
    pub scenario: String,
    /// `__region__`, or the zone a per-zone scenario is about.
    pub zone_id: String,
    /// NaN (`null` in JSON) when the scenario has no value at the horizon.
    #[serde(deserialize_with = "crate::tables::f64_or_nan")]
    pub emissions_at_horizon_mt_co2: f64,
    /// Nominal net flux in the horizon year (Mt CO₂/yr).
    pub net_flux_at_horizon_mt_co2: f64,
    /// Median net flux in the horizon year (Mt CO₂/yr).
    pub net_flux_at_horizon_mt_co2_p50: f64,
    /// First year the nominal net flux covers the scenario's emissions (none: never by the
    /// horizon).
    pub covered_from_year: Option<i32>,
    /// The same with the median net flux.
    pub covered_from_year_p50: Option<i32>,
    /// The same with the low (5th percentile) net flux.
    pub covered_from_year_p05: Option<i32>,
}

/// The accounting's headline: `accounting.json`, and the `accounting` entry of
/// `summary.json`. Fluxes of the whole region (every zone and the outside).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    /// First year of the projection.
    pub base_year: i32,
    /// Last year of the projection (the horizon).
    pub until_year: i32,
    /// Number of Monte Carlo draws.
    pub draws: usize,
    /// Seed of the draws.
    pub seed: u64,
    /// Which land the sink and the emissions belong to.
    #[serde(flatten)]
    pub regions: Regions,
    /// The region's base-year gross sink (= the map's sink), t CO₂/yr, nominal with its band
    /// (docs/science.md §1).
    pub region_gross_sink_base_year_tco2: Band,
    /// The region's emissions from disturbance in the base year (t CO₂/yr).
    pub region_emissions_base_year_tco2: Band,
    /// The region's net flux in the base year (t CO₂/yr).
    pub region_net_flux_base_year_tco2: Band,
    /// The region's net flux in the horizon year (t CO₂/yr).
    pub region_net_flux_horizon_tco2: Band,
    /// The year whose emissions the base-year net flux is compared with (2024).
    pub reference_year: i32,
    /// The emissions of the reference year (Mt CO₂/yr): the emission file's historical
    /// series in that year, else its targets; None when neither has the year.
    pub reference_emissions_mt_co2: Option<f64>,
    /// Base-year net flux over the reference year's emissions (nominal, median, 5–95 %).
    pub share_of_reference_emissions_offset: Option<f64>,
    /// The same share with the median net flux.
    pub share_of_reference_emissions_offset_p50: Option<f64>,
    /// The same share with the 5th percentile of the net flux.
    pub share_of_reference_emissions_offset_p05: Option<f64>,
    /// The same share with the 95th percentile of the net flux.
    pub share_of_reference_emissions_offset_p95: Option<f64>,
    /// Every emission scenario at the horizon.
    pub scenarios: Vec<ScenarioHeadline>,
    /// What the bands include: model parameters, and map area / forest density when an
    /// assessment / calibration is used.
    pub uncertainty_sources: Vec<String>,
    /// The base-year gross sink with the map's areas and density as they are (equal to the
    /// nominal value without an assessment or calibration), t CO₂/yr.
    pub region_gross_sink_base_year_tco2_map: f64,
    /// The base-year net flux with the map's areas and density as they are (t CO₂/yr).
    pub region_net_flux_base_year_tco2_map: f64,
}

/// The balance table and headline against the scenarios of `em`.
pub fn balance(
    acc: &Accounting,
    em: &EmissionFile,
    regions: &Regions,
    reference_year: i32,
) -> (Vec<BalanceRow>, Headline) {
    let region = acc.zones.len() - 1;
    let total = acc.components.len() - 1;
    let band = |y: usize| acc.bands[region][y][total];
    let mut rows = Vec::new();
    let mut heads = Vec::new();
    // Region scenarios against the region's sink; per-zone scenarios against their zone's.
    for s in em
        .series
        .iter()
        .filter(|s| s.kind == emissions::SeriesKind::Scenario)
    {
        let z = match &s.zone_id {
            None => region,
            Some(id) => match acc.zones.iter().position(|(z, _)| z == id) {
                Some(z) => z,
                None => continue,
            },
        };
        let (zone_id, zone_name) = acc.zones[z].clone();
        let (sink_region, emissions_region, sub) = if z == region {
            (
                regions.sink_region.clone(),
                regions.emissions_region.clone(),
                regions.subregion_comparison,
            )
        } else {
            (
                format!("{} / {zone_name}", regions.sink_region),
                zone_id.clone(),
                false,
            )
        };
        let zband = |y: usize| acc.bands[z][y][total];
        let (mut nom, mut p50, mut p05) = (None, None, None);
        for (yi, year) in acc.years.iter().enumerate() {
            let Some(e) = s.at(*year) else { continue };
            let b = zband(yi);
            let (lo, mid, hi, n) = (b.p05 / 1e6, b.p50 / 1e6, b.p95 / 1e6, b.nominal / 1e6);
            if nom.is_none() && n >= e {
                nom = Some(*year);
            }
            if p50.is_none() && mid >= e {
                p50 = Some(*year);
            }
            if p05.is_none() && lo >= e {
                p05 = Some(*year);
            }
            let share = |v: f64| if e > 0.0 { v / e } else { f64::INFINITY };
            rows.push(BalanceRow {
                year: *year,
                scenario: s.name.clone(),
                sink_region: sink_region.clone(),
                zone_id: zone_id.clone(),
                emissions_region: emissions_region.clone(),
                subregion_comparison: sub,
                emissions_mt_co2: e,
                net_flux_mt_co2: n,
                net_flux_mt_co2_p05: lo,
                net_flux_mt_co2_p50: mid,
                net_flux_mt_co2_p95: hi,
                net_emissions_mt_co2: e - n,
                share_offset: share(n),
                share_offset_p50: share(mid),
            });
        }
        let last = acc.years.len() - 1;
        heads.push(ScenarioHeadline {
            scenario: s.name.clone(),
            zone_id,
            emissions_at_horizon_mt_co2: s.at(acc.years[last]).unwrap_or(f64::NAN),
            net_flux_at_horizon_mt_co2: zband(last).nominal / 1e6,
            net_flux_at_horizon_mt_co2_p50: zband(last).p50 / 1e6,
            covered_from_year: nom,
            covered_from_year_p50: p50,
            covered_from_year_p05: p05,
        });
    }
    let reference = em.reference(reference_year);
    let b0 = band(0);
    let share = |v: f64| reference.map(|e| v / 1e6 / e);
    let head = Headline {
        base_year: acc.years[0],
        until_year: *acc.years.last().unwrap_or(&acc.years[0]),
        draws: acc.draws,
        seed: acc.seed,
        regions: regions.clone(),
        region_gross_sink_base_year_tco2: acc.gross_bands[region][0][total],
        region_emissions_base_year_tco2: acc.emission_bands[region][0][total],
        region_net_flux_base_year_tco2: b0,
        region_net_flux_horizon_tco2: band(acc.years.len() - 1),
        reference_year,
        reference_emissions_mt_co2: reference,
        share_of_reference_emissions_offset: share(b0.nominal),
        share_of_reference_emissions_offset_p50: share(b0.p50),
        share_of_reference_emissions_offset_p05: share(b0.p05),
        share_of_reference_emissions_offset_p95: share(b0.p95),
        scenarios: heads,
        uncertainty_sources: acc.uncertainty_sources.clone(),
        region_gross_sink_base_year_tco2_map: acc.map_gross[region][0][total],
        region_net_flux_base_year_tco2_map: acc.map_net[region][0][total],
    };
    (rows, head)
}

fn write_csv<T: Serialize>(
    dir: &Path,
    name: &str,
    rows: impl Iterator<Item = T>,
) -> Result<TempFile> {
    let tmp = TempFile::new(temp_path(dir, name, "csv"));
    let p = dir.join(name);
    let mut w = csv::Writer::from_path(&tmp.path).map_err(|e| Error::output(&p, e))?;
    for r in rows {
        w.serialize(r).map_err(|e| Error::output(&p, e))?;
    }
    w.flush().map_err(|e| Error::output(&p, e))?;
    Ok(tmp)
}

/// One flux row of `sink_inputs.csv` (docs/schemas/sink_inputs.schema.json).
#[derive(Debug, Clone, Serialize)]
pub struct SinkInputRow {
    /// `zone`, `outside` (land outside every zone) or `region` (the sum of the other two).
    pub level: &'static str,
    /// The region the sink belongs to (docs/science.md §4).
    pub region: String,
    /// Zone id (`__outside__` for the land outside every zone, `__region__` for the region).
    pub zone_id: String,
    /// Zone name.
    pub zone_name: String,
    /// Calendar year.
    pub year: i32,
    /// IPCC AFOLU land category (see [`ipcc_category`]; docs/science.md §5).
    pub ipcc_category: &'static str,
    /// The component (`forest:TYPE`, `desert:PART`, …; `disturbance:TYPE` for the emission
    /// rows).
    pub component: String,
    /// `gross_removal` or `disturbance_emission`.
    pub flux: &'static str,
    /// Signed: removals positive, emissions negative; rounded to 0.1 t CO₂/yr.
    pub net_removal_tco2_yr: f64,
    /// Low end of the 5–95 % band over the draws, same sign convention (for an emission row
    /// the negated 95th percentile of the emissions).
    pub net_removal_tco2_yr_p05: f64,
    /// Median over the draws, same sign convention.
    pub net_removal_tco2_yr_p50: f64,
    /// High end of the 5–95 % band over the draws, same sign convention.
    pub net_removal_tco2_yr_p95: f64,
    /// Always `t CO2/yr`.
    pub unit: &'static str,
    /// How the numbers were made: the projection, draws, seed and quantile method in words.
    pub method: String,
    /// Version of sinkmap that wrote the row.
    pub version: &'static str,
    /// The map-based nominal value (the map's areas and density as they are); equals
    /// `net_removal_tco2_yr` unless an assessment or calibration is used, whose error-adjusted
    /// value is then the central one (docs/science.md §6.8).
    pub net_removal_tco2_yr_map: f64,
    /// What the p05–p95 band includes, `; `-separated: `model parameters (N)`, and with an
    /// assessment `map area (assessment SHA…)`, with a calibration `forest density
    /// (calibration SHA…)`.
    pub uncertainty_sources: String,
}

/// IPCC AFOLU land category (2006 Guidelines Vol. 4; CRF sector 4) of a component.
pub fn ipcc_category(component: &str, models: &Models) -> &'static str {
    use crate::model::restoration::Trajectory;
    let class_category = |c: crate::model::EcosystemClass| -> &'static str {
        use crate::model::EcosystemClass as E;
        match c {
            E::Forest => "4.A Forest land",
            E::Cropland => "4.B Cropland",
            // IPCC grassland includes rangeland and shrubland below the forest thresholds.
            E::Grassland | E::Shrub => "4.C Grassland",
            E::Wetland | E::Water => "4.D Wetlands",
            E::BuiltUp => "4.E Settlements",
            E::Barren | E::SnowIce => "4.F Other land",
        }
    };
    let (kind, name) = component.split_once(':').unwrap_or((component, ""));
    match kind {
        "forest" | "disturbance" => "4.A Forest land",
        "desert" => "4.F Other land",
        "other" => crate::model::EcosystemClass::ALL
            .iter()
            .find(|c| c.name() == name)
            .map(|c| class_category(*c))
            .unwrap_or("4.F Other land"),
        "restoration" => {
            let Some(iv) = models.restoration.as_ref().and_then(|r| r.get(name)) else {
                return "4.F Other land";
            };
            let from = iv
                .eligible_classes
                .first()
                .map(|c| class_category(*c))
                .unwrap_or("4.F Other land");
            // New woody stands on non-cropland are land converted to forest land; trees on
            // cropland (shelterbelts) stay cropland (agroforestry).
            match iv.trajectory {
                Trajectory::Curve { .. } if from != "4.B Cropland" => "4.A Forest land",
                _ => from,
            }
        }
        _ => "4.F Other land",
    }
}

/// Rounds to 0.1 t CO₂/yr (the cube's own precision is far finer; a tenth of a tonne is
/// below every parameter's uncertainty and keeps the table readable).
fn round_tenth(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The rows of `sink_inputs.csv`: flux rows only (no stocks, no totals), one level per zone
/// kind. The rows of one level and year add up to that level's net flux, and the `zone` plus
/// `outside` rows to the `region` rows.
pub fn sink_inputs(
    acc: &Accounting,
    models: &Models,
    region: &str,
    method: &str,
) -> Vec<SinkInputRow> {
    let total = acc.components.len() - 1;
    let last = acc.zones.len() - 1;
    let sources = acc.uncertainty_sources.join("; ");
    let mut out = Vec::new();
    for (z, (id, name)) in acc.zones.iter().enumerate() {
        let level = if z == last {
            "region"
        } else if id == OUTSIDE_ZONE {
            "outside"
        } else {
            "zone"
        };
        for (c, comp) in acc.components.iter().enumerate() {
            if c == total || !acc.counted[c] {
                continue;
            }
            let comp = &comp.to_string();
            let flux_rows = [
                (
                    "gross_removal",
                    comp.clone(),
                    &acc.gross_bands,
                    &acc.map_gross,
                    1.0,
                ),
                (
                    "disturbance_emission",
                    comp.replacen("forest:", "disturbance:", 1),
                    &acc.emission_bands,
                    &acc.map_emissions,
                    -1.0,
                ),
            ];
            for (flux, component, bands, map, sign) in flux_rows {
                let all_zero = acc.years.iter().enumerate().all(|(y, _)| {
                    let b = bands[z][y][c];
                    b.nominal == 0.0 && b.p05 == 0.0 && b.p95 == 0.0
                });
                if all_zero {
                    continue;
                }
                for (y, year) in acc.years.iter().enumerate() {
                    let b = bands[z][y][c];
                    let (lo, hi) = if sign > 0.0 {
                        (b.p05, b.p95)
                    } else {
                        (b.p95, b.p05)
                    };
                    out.push(SinkInputRow {
                        level,
                        region: region.to_string(),
                        zone_id: id.clone(),
                        zone_name: name.clone(),
                        year: *year,
                        ipcc_category: ipcc_category(&component, models),
                        component: component.clone(),
                        flux,
                        net_removal_tco2_yr: round_tenth(sign * b.nominal),
                        net_removal_tco2_yr_p05: round_tenth(sign * lo),
                        net_removal_tco2_yr_p50: round_tenth(sign * b.p50),
                        net_removal_tco2_yr_p95: round_tenth(sign * hi),
                        unit: "t CO2/yr",
                        method: method.to_string(),
                        version: env!("CARGO_PKG_VERSION"),
                        net_removal_tco2_yr_map: round_tenth(sign * map[z][y][c]),
                        uncertainty_sources: sources.clone(),
                    });
                }
            }
        }
    }
    out
}

/// Everything the accounting reads besides the cube, loaded and cross-checked.
pub struct Prepared {
    nominal: Models,
    params: Vec<Uncertain>,
    rollout: RolloutFile,
    em: EmissionFile,
    scen_path: PathBuf,
    map_error: Option<MapError>,
}

/// Loads and checks the models, uncertainty, rollout and scenario files of an accounting
/// before anything is computed; `zone_exists` says whether a zone id will be in the cube.
pub fn prepare(
    scene: &Scene,
    o: &AccountingOptions,
    zone_exists: &dyn Fn(&str) -> bool,
) -> Result<Prepared> {
    if o.until < scene.base_year {
        return Err(Error::Usage(format!(
            "--until {} is before the base year {}",
            o.until, scene.base_year
        )));
    }
    crate::limits::check_until(o.until, scene.base_year)?;
    crate::limits::check_draws(o.draws, 1, 1, 1)?;
    let nominal = Models::load(scene)?;
    let unc_path = o.uncertainty.clone().or_else(|| {
        Some(scene.models_dir.join("uncertainty.toml")).filter(|p| crate::io::files::file_exists(p))
    });
    let params = uncertain_parameters(unc_path.as_deref(), &nominal)?;
    for w in uncertainty::prior_warnings(&params) {
        eprintln!(
            "warning: {}: {w}",
            unc_path
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "forest.toml".into())
        );
    }
    let rollout: RolloutFile = match &o.rollout {
        Some(p) => read_toml(p)?,
        None => RolloutFile::default(),
    };
    if let Some(p) = &o.rollout {
        for r in &rollout.rules {
            if nominal
                .restoration
                .as_ref()
                .and_then(|c| c.get(&r.intervention))
                .is_none()
            {
                return Err(Error::invalid(
                    p,
                    format!("unknown intervention '{}'", r.intervention),
                ));
            }
            rollout_rule_check(p, r, scene.base_year, zone_exists)?;
            if r.ha_per_yr.is_some() == r.all_eligible_by_year.is_some() {
                return Err(Error::invalid(
                    p,
                    format!(
                        "rollout of '{}': give exactly one of ha_per_yr or all_eligible_by_year",
                        r.intervention
                    ),
                ));
            }
        }
        for (t, f) in &rollout.disturbance {
            if nominal.forest.types.iter().all(|x| &x.name != t) || !(0.0..=1.0).contains(f) {
                return Err(Error::invalid(p, format!("disturbance '{t}' = {f}: needs a forest type of forest.toml and a fraction in [0, 1]")));
            }
        }
    }
    let scen_path = history::scenarios_path(scene, o);
    let em = EmissionFile::load(&scen_path, scene.base_year, o.until)?;
    let map_error = MapError::load(
        scene,
        &nominal,
        o.assessment.as_deref(),
        o.calibration.as_deref(),
    )?;
    for sr in &em.series {
        if let Some(z) = &sr.zone_id {
            if !zone_exists(z) {
                return Err(Error::invalid(
                    &scen_path,
                    format!(
                        "series '{}' is about zone '{z}', which the cube does not have",
                        sr.name
                    ),
                ));
            }
        }
    }
    Ok(Prepared {
        nominal,
        params,
        rollout,
        em,
        scen_path,
        map_error,
    })
}

/// Loads what the accounting needs, runs it and writes `trajectory.csv`, `sink_inputs.csv`,
/// `balance.csv`, `accounting.json`, and the headline into `summary.json`.
pub fn run(scene: &Scene, cube: &Cube, out_dir: &Path, o: &AccountingOptions) -> Result<Headline> {
    let Prepared {
        nominal,
        params,
        rollout,
        em,
        scen_path,
        map_error,
    } = prepare(scene, o, &|z| cube.zone_names.contains_key(z))?;
    if let Some(e) = &map_error {
        for w in &e.warnings {
            eprintln!("warning: {w}");
        }
    }
    let (_, pool) = crate::threads::thread_pool(o.threads)?;
    let acc = pool.install(|| {
        Projection {
            cube,
            nominal: &nominal,
            params: &params,
            pools: scene.pools,
            rollout: &rollout,
            base_year: scene.base_year,
            until: o.until,
            draws: o.draws,
            seed: o.seed,
            map_error: map_error.as_ref(),
        }
        .account()
    });
    let regions = regions(scene, &em, &scen_path, out_dir, o)?;
    let (rows, head) = balance(&acc, &em, &regions, 2024);

    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let method = format!(
        "sinkmap cohort projection from the cube (docs/science.md §1); Monte Carlo {} draws, seed {}, {} uncertain parameters{}; p05/p50/p95 by R type-7 quantiles",
        o.draws,
        o.seed,
        params.len(),
        if map_error.is_some() {
            "; error-adjusted areas/density as the central estimate and their sampling distributions in the draws (docs/science.md §6.8)"
        } else {
            ""
        }
    );
    let inputs = sink_inputs(&acc, &nominal, &regions.sink_region, &method);
    let mut pending = vec![
        (
            write_csv(out_dir, "trajectory.csv", trajectory_rows(&acc).into_iter())?,
            out_dir.join("trajectory.csv"),
        ),
        (
            write_csv(out_dir, "sink_inputs.csv", inputs.into_iter())?,
            out_dir.join("sink_inputs.csv"),
        ),
        (
            write_csv(out_dir, "balance.csv", rows.into_iter())?,
            out_dir.join("balance.csv"),
        ),
    ];
    let json_tmp = TempFile::new(temp_path(out_dir, "accounting.json", "json"));
    let text = serde_json::to_string_pretty(&head)
        .map_err(|e| Error::output(out_dir.join("accounting.json"), e))?;
    std::fs::write(&json_tmp.path, text + "\n")
        .map_err(|e| Error::output(out_dir.join("accounting.json"), e))?;
    pending.push((json_tmp, out_dir.join("accounting.json")));
    // The headline also goes into summary.json, when there is one.
    let summary = out_dir.join("summary.json");
    if crate::io::files::file_exists(&summary) {
        let mut s = crate::summary::Summary::read(&summary)?;
        s.accounting = Some(head.clone());
        let text = s.to_json().map_err(|e| Error::output(&summary, e))?;
        let tmp = TempFile::new(temp_path(out_dir, "summary.json", "json"));
        std::fs::write(&tmp.path, text).map_err(|e| Error::output(&summary, e))?;
        pending.push((tmp, summary));
    }
    for (t, f) in pending {
        t.commit(&f)?;
    }
    Ok(head)
}

/// The regions of the balance: refuses to compare a scene's sink with the emissions of a
/// region it is not, unless `allow_subregion_balance` says so explicitly.
fn regions(
    scene: &Scene,
    em: &EmissionFile,
    scen_path: &Path,
    out_dir: &Path,
    o: &AccountingOptions,
) -> Result<Regions> {
    let sink_region = o.region.clone().unwrap_or_else(|| scene.name.clone());
    let same = sink_region.trim().eq_ignore_ascii_case(em.region.trim());
    // The scene's extent, when the map run left it in summary.json (geographic grids only).
    let scene_extent = crate::summary::Summary::read(&out_dir.join("summary.json"))
        .ok()
        .filter(|s| s.grid.geographic)
        .map(|s| s.grid.extent);
    let covered = match (em.extent_lonlat, scene_extent) {
        (Some(r), Some(s)) => Some(emissions::covered_fraction(&r, &s)),
        _ => None,
    };
    if same && covered.is_some_and(|f| f < 0.5) {
        return Err(Error::invalid(
            scen_path,
            format!(
                "the scene says it is region '{}', but its grid covers only {:.1} % of the region's extent_lonlat; set [accounting] region to the scene's own region",
                em.region,
                covered.unwrap_or(0.0) * 100.0
            ),
        ));
    }
    if !same && !o.allow_subregion_balance {
        return Err(Error::invalid(
            scen_path,
            format!(
                "the emissions are region '{}' but the scene's sink is region '{sink_region}'{}: comparing a sub-region's sink with another region's emissions is refused; give `--allow-subregion-balance` (or [accounting] allow_subregion_balance = true) to compare anyway, or [accounting] region = \"{}\" if the scene covers that region",
                em.region,
                covered
                    .map(|f| format!(" (covering {:.2} % of its extent)", f * 100.0))
                    .unwrap_or_default(),
                em.region
            ),
        ));
    }
    Ok(Regions {
        sink_region,
        emissions_region: em.region.clone(),
        subregion_comparison: !same,
    })
}

/// A few lines for people.
pub fn human(h: &Headline) -> String {
    use crate::human::{sig_digits, tonnes_co2_yr};
    let (g, e, n) = (
        h.region_gross_sink_base_year_tco2,
        h.region_emissions_base_year_tco2,
        h.region_net_flux_base_year_tco2,
    );
    let mut s = format!(
        "{}: net flux {}: {} (5–95 %: {} to {}) = gross sink {} − disturbance emissions {}; {}: {} ({} draws)\n",
        h.regions.sink_region,
        h.base_year,
        tonnes_co2_yr(n.nominal),
        tonnes_co2_yr(n.p05),
        tonnes_co2_yr(n.p95),
        tonnes_co2_yr(g.nominal),
        tonnes_co2_yr(e.nominal),
        h.until_year,
        tonnes_co2_yr(h.region_net_flux_horizon_tco2.nominal),
        h.draws
    );
    if let (Some(em), Some(sh)) = (
        h.reference_emissions_mt_co2,
        h.share_of_reference_emissions_offset,
    ) {
        s += &format!(
            "  offsets {} % of {}'s {} emissions ({} Mt CO₂){}\n",
            sig_digits(sh * 100.0, 3),
            h.regions.emissions_region,
            h.reference_year,
            sig_digits(em, 4),
            if h.regions.subregion_comparison {
                format!(
                    " — {} is only part of {} (allowed explicitly)",
                    h.regions.sink_region, h.regions.emissions_region
                )
            } else {
                String::new()
            }
        );
    }
    if h.uncertainty_sources.len() > 1 {
        s += &format!(
            "  central estimate error-adjusted (map as it is: net flux {}); the 5–95 % band includes {}\n",
            tonnes_co2_yr(h.region_net_flux_base_year_tco2_map),
            h.uncertainty_sources.join(", ")
        );
    }
    for sc in &h.scenarios {
        s += &format!(
            "  {}: {} emissions {} Mt CO₂; net flux covers them {}\n",
            sc.scenario,
            h.until_year,
            sig_digits(sc.emissions_at_horizon_mt_co2, 3),
            sc.covered_from_year
                .map(|y| format!("from {y}"))
                .unwrap_or_else(|| "never by the horizon".into())
        );
    }
    s
}
