//! Sink accounting to 2060 from the cohort cube (never from the rasters again): projection,
//! Monte Carlo over the model parameters, and the balance against emission scenarios.

pub mod emissions;
pub mod projection;
pub mod uncertainty;

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rayon::prelude::*;
use serde::Serialize;

use crate::config::{read_toml, Models, Scene};
use crate::cube::{Cube, GRID_ZONE, OUTSIDE_ZONE};
use crate::error::{Error, Result};
use crate::raster::writer::{temp_path, TempFile};
use emissions::EmissionFile;
use projection::{
    component_names, counted_total, inorganic_index, plan, project, RolloutFile, ZoneCohorts,
};
use uncertainty::{percentile, uncertain_parameters, ModelSet, Uncertain};

/// Values indexed [zone][year][component].
type Table3 = Vec<Vec<Vec<f64>>>;

/// Zone id of the region: the sum of all zones (and the outside), or the grid.
pub const REGION: &str = "__region__";

/// How to run the accounting.
#[derive(Debug, Clone)]
pub struct AccountingOptions {
    pub until: i32,
    pub draws: usize,
    pub seed: u64,
    pub threads: Option<usize>,
    pub scenarios: Option<PathBuf>,
    pub rollout: Option<PathBuf>,
    pub uncertainty: Option<PathBuf>,
}

/// Percentiles of one quantity over the draws.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Band {
    pub mean: f64,
    pub p05: f64,
    pub p50: f64,
    pub p95: f64,
}

impl Band {
    pub fn of(values: &mut [f64]) -> Band {
        values.sort_by(|a, b| a.total_cmp(b));
        Band {
            mean: values.iter().sum::<f64>() / values.len().max(1) as f64,
            p05: percentile(values, 0.05),
            p50: percentile(values, 0.50),
            p95: percentile(values, 0.95),
        }
    }
}

/// The projection of every zone with its uncertainty.
#[derive(Debug, Clone)]
pub struct Accounting {
    pub years: Vec<i32>,
    /// Components, then `total` (counted).
    pub components: Vec<String>,
    /// Which components count in the total.
    pub counted: Vec<bool>,
    /// (zone id, zone name); the last one is the region.
    pub zones: Vec<(String, String)>,
    /// `[zone][year][component]`: nominal stock (t C) and sink (t CO₂/yr).
    pub stock: Vec<Vec<Vec<f64>>>,
    pub sink: Vec<Vec<Vec<f64>>>,
    /// `[zone][year][component]`: the sink over the draws.
    pub bands: Vec<Vec<Vec<Band>>>,
    /// `[draw][zone][year]`: the counted total, for checks.
    pub draw_totals: Vec<Vec<Vec<f64>>>,
    pub draws: usize,
    pub seed: u64,
}

fn draw_models(nominal: &ModelSet, params: &[Uncertain], seed: u64, draw: usize) -> ModelSet {
    let mut m = nominal.clone();
    if params.is_empty() {
        return m;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(draw as u64);
    for p in params {
        let v = p.dist.sample(p.nominal, &mut rng);
        if let Ok(slot) = m.slot(&p.target) {
            *slot = v;
        }
    }
    m
}

/// Projects every zone of the cube for the nominal models and `draws` Monte Carlo draws.
#[allow(clippy::too_many_arguments)]
pub fn account(
    cube: &Cube,
    nominal: &ModelSet,
    params: &[Uncertain],
    pools: crate::model::Pools,
    rollout: &RolloutFile,
    base_year: i32,
    until: i32,
    draws: usize,
    seed: u64,
) -> Accounting {
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
    let names: Vec<String> = nominal
        .restoration
        .as_ref()
        .map(|r| r.interventions.iter().map(|i| i.name.clone()).collect())
        .unwrap_or_default();
    let cohorts: Vec<ZoneCohorts> = zones
        .iter()
        .map(|(z, _)| ZoneCohorts::from_cube(cube, z, nominal))
        .collect();
    let plans: Vec<Vec<Vec<(i32, f64)>>> = zones
        .iter()
        .zip(&cohorts)
        .map(|((z, _), c)| plan(&rollout.rules, z, &names, &c.eligible, until))
        .collect();
    let disturbance: Vec<f64> = nominal
        .forest
        .types
        .iter()
        .map(|t| rollout.disturbance.get(&t.name).copied().unwrap_or(0.0))
        .collect();
    let years: Vec<i32> = (base_year..=until).collect();
    let mut components = component_names(nominal);
    let inorg = inorganic_index(nominal);
    let mut counted: Vec<bool> = (0..components.len())
        .map(|c| c != inorg || nominal.desert.include_inorganic)
        .collect();
    components.push("total".into());
    counted.push(true);
    let nc = components.len();

    // One run: per zone, [year][component + total]; the region appended as the sum.
    let run = |m: &ModelSet| -> (Table3, Table3) {
        let mut stock = Vec::new();
        let mut sink = Vec::new();
        for (c, p) in cohorts.iter().zip(&plans) {
            let zp = project(m, pools, c, p, &disturbance, base_year, until);
            let with_total = |rows: Vec<Vec<f64>>| -> Vec<Vec<f64>> {
                rows.into_iter()
                    .map(|mut r| {
                        let t = counted_total(m, &r);
                        r.push(t);
                        r
                    })
                    .collect()
            };
            stock.push(with_total(zp.stock));
            sink.push(with_total(zp.sink));
        }
        let sum = |v: &Vec<Vec<Vec<f64>>>| -> Vec<Vec<f64>> {
            (0..years.len())
                .map(|y| (0..nc).map(|c| v.iter().map(|z| z[y][c]).sum()).collect())
                .collect()
        };
        let (rs, rk) = (sum(&stock), sum(&sink));
        stock.push(rs);
        sink.push(rk);
        (stock, sink)
    };
    let (stock, sink) = run(nominal);
    let per_draw: Vec<Vec<Vec<Vec<f64>>>> = (0..draws)
        .into_par_iter()
        .map(|d| run(&draw_models(nominal, params, seed, d)).1)
        .collect();
    zones.push((REGION.into(), "region (all zones)".into()));
    let nz = zones.len();
    let mut bands = vec![vec![Vec::with_capacity(nc); years.len()]; nz];
    let mut buf = vec![0.0; draws];
    for z in 0..nz {
        for y in 0..years.len() {
            for c in 0..nc {
                for (d, v) in per_draw.iter().enumerate() {
                    buf[d] = v[z][y][c];
                }
                bands[z][y].push(Band::of(&mut buf));
            }
        }
    }
    let draw_totals = per_draw
        .iter()
        .map(|d| {
            d.iter()
                .map(|z| z.iter().map(|row| row[nc - 1]).collect())
                .collect()
        })
        .collect();
    Accounting {
        years,
        components,
        counted,
        zones,
        stock,
        sink,
        bands,
        draw_totals,
        draws,
        seed,
    }
}

/// The balance of one scenario in one year (Mt CO₂).
#[derive(Debug, Clone, Serialize)]
pub struct BalanceRow {
    pub year: i32,
    pub scenario: String,
    /// `__region__`, or the zone a per-zone scenario is about.
    pub zone_id: String,
    pub emissions_mt_co2: f64,
    pub sink_mt_co2_p05: f64,
    pub sink_mt_co2_p50: f64,
    pub sink_mt_co2_p95: f64,
    pub net_emissions_mt_co2: f64,
    pub share_offset_p50: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioHeadline {
    pub scenario: String,
    pub zone_id: String,
    pub emissions_at_horizon_mt_co2: f64,
    pub sink_at_horizon_mt_co2_p50: f64,
    /// First year the median sink covers the scenario's emissions (none: never by the horizon).
    pub covered_from_year_p50: Option<i32>,
    /// The same with the low (5th percentile) sink.
    pub covered_from_year_p05: Option<i32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Headline {
    pub base_year: i32,
    pub until_year: i32,
    pub draws: usize,
    pub seed: u64,
    pub region_sink_base_year_tco2: Band,
    pub region_sink_horizon_tco2: Band,
    pub reference_year: i32,
    pub reference_emissions_mt_co2: Option<f64>,
    /// Base-year sink over the reference year's emissions (median, and the 5–95 % range).
    pub share_of_reference_emissions_offset_p50: Option<f64>,
    pub share_of_reference_emissions_offset_p05: Option<f64>,
    pub share_of_reference_emissions_offset_p95: Option<f64>,
    pub scenarios: Vec<ScenarioHeadline>,
}

/// The balance table and headline against the scenarios of `em`.
pub fn balance(
    acc: &Accounting,
    em: &EmissionFile,
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
        let zone_id = acc.zones[z].0.clone();
        let zband = |y: usize| acc.bands[z][y][total];
        let (mut p50, mut p05) = (None, None);
        for (yi, year) in acc.years.iter().enumerate() {
            let Some(e) = s.at(*year) else { continue };
            let b = zband(yi);
            let (lo, mid, hi) = (b.p05 / 1e6, b.p50 / 1e6, b.p95 / 1e6);
            if p50.is_none() && mid >= e {
                p50 = Some(*year);
            }
            if p05.is_none() && lo >= e {
                p05 = Some(*year);
            }
            rows.push(BalanceRow {
                year: *year,
                scenario: s.name.clone(),
                zone_id: zone_id.clone(),
                emissions_mt_co2: e,
                sink_mt_co2_p05: lo,
                sink_mt_co2_p50: mid,
                sink_mt_co2_p95: hi,
                net_emissions_mt_co2: e - mid,
                share_offset_p50: if e > 0.0 { mid / e } else { f64::INFINITY },
            });
        }
        let last = acc.years.len() - 1;
        heads.push(ScenarioHeadline {
            scenario: s.name.clone(),
            zone_id,
            emissions_at_horizon_mt_co2: s.at(acc.years[last]).unwrap_or(f64::NAN),
            sink_at_horizon_mt_co2_p50: zband(last).p50 / 1e6,
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
        region_sink_base_year_tco2: b0,
        region_sink_horizon_tco2: band(acc.years.len() - 1),
        reference_year,
        reference_emissions_mt_co2: reference,
        share_of_reference_emissions_offset_p50: share(b0.p50),
        share_of_reference_emissions_offset_p05: share(b0.p05),
        share_of_reference_emissions_offset_p95: share(b0.p95),
        scenarios: heads,
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

#[derive(Serialize)]
struct TrajectoryRow<'a> {
    zone_id: &'a str,
    zone_name: &'a str,
    year: i32,
    component: &'a str,
    counted: bool,
    stock_tc: f64,
    sink_tco2_yr: f64,
    sink_tco2_yr_mean: f64,
    sink_tco2_yr_p05: f64,
    sink_tco2_yr_p50: f64,
    sink_tco2_yr_p95: f64,
}

#[derive(Serialize)]
struct SinkInputRow<'a> {
    region: &'a str,
    zone_id: &'a str,
    zone_name: &'a str,
    year: i32,
    component: &'a str,
    sink_tco2_p05: f64,
    sink_tco2_p50: f64,
    sink_tco2_p95: f64,
    unit: &'a str,
    method: &'a str,
    version: &'a str,
}

/// Loads what the accounting needs, runs it and writes `trajectory.csv`, `sink_inputs.csv`,
/// `balance.csv`, `accounting.json`, and the headline into `summary.json`.
pub fn run(scene: &Scene, cube: &Cube, out_dir: &Path, o: &AccountingOptions) -> Result<Headline> {
    if o.until < scene.base_year {
        return Err(Error::Usage(format!(
            "--until {} is before the base year {}",
            o.until, scene.base_year
        )));
    }
    if o.draws == 0 {
        return Err(Error::Usage("--draws must be at least 1".into()));
    }
    let models = Models::load(scene)?;
    let nominal = ModelSet {
        forest: models.forest.clone(),
        desert: models.desert.clone(),
        other: models.other.clone(),
        restoration: models.restoration.clone(),
    };
    let unc_path = o
        .uncertainty
        .clone()
        .or_else(|| Some(scene.models_dir.join("uncertainty.toml")).filter(|p| p.exists()));
    let params = uncertain_parameters(unc_path.as_deref(), &nominal)?;
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
    let scen_path = o
        .scenarios
        .clone()
        .unwrap_or_else(|| scene.models_dir.join("emissions/xinjiang.toml"));
    let em = EmissionFile::load(&scen_path, scene.base_year, o.until)?;
    for sr in &em.series {
        if let Some(z) = &sr.zone_id {
            if !cube.zone_names.contains_key(z) {
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
    let (_, pool) = crate::pipeline::thread_pool(o.threads)?;
    let acc = pool.install(|| {
        account(
            cube,
            &nominal,
            &params,
            scene.pools,
            &rollout,
            scene.base_year,
            o.until,
            o.draws,
            o.seed,
        )
    });
    let (rows, head) = balance(&acc, &em, 2024);

    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let mut traj = Vec::new();
    let mut inputs = Vec::new();
    let method = format!(
        "sinkmap cohort projection from the cube; Monte Carlo {} draws, seed {}, {} uncertain parameters; p05/p50/p95 by R type-7 quantiles",
        o.draws,
        o.seed,
        params.len()
    );
    for (z, (id, name)) in acc.zones.iter().enumerate() {
        for (y, year) in acc.years.iter().enumerate() {
            for (c, comp) in acc.components.iter().enumerate() {
                let b = acc.bands[z][y][c];
                traj.push(TrajectoryRow {
                    zone_id: id,
                    zone_name: name,
                    year: *year,
                    component: comp,
                    counted: acc.counted[c],
                    stock_tc: acc.stock[z][y][c],
                    sink_tco2_yr: acc.sink[z][y][c],
                    sink_tco2_yr_mean: b.mean,
                    sink_tco2_yr_p05: b.p05,
                    sink_tco2_yr_p50: b.p50,
                    sink_tco2_yr_p95: b.p95,
                });
                if acc.counted[c] {
                    inputs.push(SinkInputRow {
                        region: &em.region,
                        zone_id: id,
                        zone_name: name,
                        year: *year,
                        component: comp,
                        sink_tco2_p05: b.p05,
                        sink_tco2_p50: b.p50,
                        sink_tco2_p95: b.p95,
                        unit: "t CO2/yr",
                        method: &method,
                        version: env!("CARGO_PKG_VERSION"),
                    });
                }
            }
        }
    }
    let mut pending = vec![
        (
            write_csv(out_dir, "trajectory.csv", traj.into_iter())?,
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
    if let Ok(text) = std::fs::read_to_string(&summary) {
        if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&text) {
            v["accounting"] = serde_json::to_value(&head).unwrap_or_default();
            let tmp = TempFile::new(temp_path(out_dir, "summary.json", "json"));
            std::fs::write(
                &tmp.path,
                serde_json::to_string_pretty(&v).unwrap_or_default() + "\n",
            )
            .map_err(|e| Error::output(&summary, e))?;
            pending.push((tmp, summary));
        }
    }
    for (t, f) in pending {
        t.commit(&f)?;
    }
    Ok(head)
}

/// A few lines for people.
pub fn human(h: &Headline) -> String {
    let mut s = format!(
        "sink {}: {:.3} Mt CO2/yr (5–95 %: {:.3}–{:.3}); {}: {:.3} Mt CO2/yr ({} draws)\n",
        h.base_year,
        h.region_sink_base_year_tco2.p50 / 1e6,
        h.region_sink_base_year_tco2.p05 / 1e6,
        h.region_sink_base_year_tco2.p95 / 1e6,
        h.until_year,
        h.region_sink_horizon_tco2.p50 / 1e6,
        h.draws
    );
    if let (Some(e), Some(sh)) = (
        h.reference_emissions_mt_co2,
        h.share_of_reference_emissions_offset_p50,
    ) {
        s += &format!(
            "  offsets {:.3} % of the {} emissions ({e} Mt CO2)\n",
            sh * 100.0,
            h.reference_year
        );
    }
    for sc in &h.scenarios {
        s += &format!(
            "  {}: {} emissions {:.0} Mt; sink covers them {}\n",
            sc.scenario,
            h.until_year,
            sc.emissions_at_horizon_mt_co2,
            sc.covered_from_year_p50
                .map(|y| format!("from {y}"))
                .unwrap_or_else(|| "never by the horizon".into())
        );
    }
    s
}
