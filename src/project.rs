//! `sinkmap project`: evaluate one restoration project — a polygon, an intervention, a start
//! year, a planted area or all eligible land, an optional rollout — year by year against the
//! baseline sink of the same pixels, with a non-permanence buffer, a carbon price path,
//! discounting, cost per t CO₂ and NPV.
//!
//! The pass over the rasters (eligible area and baseline sink inside the polygon) is IO; the
//! yearly table is computed by [`project_table`], a pure function.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{Models, Scene};
use crate::cube::{dequantize, quantize};
use crate::engine::{self, Block, Pass, Tuning};
use crate::error::{Error, Result};
use crate::grid::Grid;
use crate::io::files::read_toml;
use crate::io::temp::{temp_path, TempFile};
use crate::model::forest::ForestModel;
use crate::model::pixel::PixelModel;
use crate::model::restoration::Intervention;
use crate::model::restoration::RestorationModel;
use crate::pipeline::{InputPaths, Slots};
use crate::raster::reference_grid;
use crate::zones::{ZoneSet, ZoneSource};

/// A point of the carbon price path.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricePoint {
    /// Year.
    pub year: i32,
    /// Price in this year (yuan/t CO₂); linear between points, constant beyond the ends.
    pub yuan_per_tco2: f64,
}

/// Where the project is: a polygon file (all its features) or an inline WKT polygon.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolygonSpec {
    /// A polygon file (all its features).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Layer of the file (default: the first).
    #[serde(default)]
    pub layer: Option<String>,
    /// Or an inline WKT polygon.
    #[serde(default)]
    pub wkt: Option<String>,
    /// CRS of `wkt` (default EPSG:4326, longitude first).
    #[serde(default)]
    pub crs: Option<String>,
}

/// The project file (TOML). Relative paths are relative to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectSpec {
    /// Project name.
    pub name: String,
    /// The scene whose maps and models the project uses.
    pub scene: PathBuf,
    /// The intervention (a name of the restoration catalogue).
    pub intervention: String,
    /// First year of planting.
    pub start_year: i32,
    /// Last year evaluated, inclusive (default: the scene's restoration period end, 2060).
    #[serde(default)]
    pub end_year: Option<i32>,
    /// Hectares of eligible land restored (default: all eligible land in the polygon).
    #[serde(default)]
    pub planted_area_ha: Option<f64>,
    /// Hectares restored per year from the start year (default: all in the start year).
    #[serde(default)]
    pub rollout_ha_per_yr: Option<f64>,
    /// Annual discount rate (0.03 = 3 %).
    #[serde(default)]
    pub discount_rate: f64,
    /// Share of the additional removal set aside against reversal (percent).
    #[serde(default)]
    pub buffer_percent: f64,
    /// The carbon price path.
    pub price: Vec<PricePoint>,
    /// Where the project is.
    pub polygon: PolygonSpec,
    /// Where the project file was read from (not part of the file).
    #[serde(skip)]
    pub source_path: PathBuf,
}

/// One year of the project table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ProjectYear {
    /// Year.
    pub year: i32,
    /// Hectares planted this year.
    pub planted_in_year_ha: f64,
    /// Hectares planted so far.
    pub planted_cumulative_ha: f64,
    /// Sink of the project land without the project.
    pub baseline_sink_tco2: f64,
    /// Baseline plus the additional sink.
    pub project_sink_tco2: f64,
    /// Additional removal of the planted cohorts.
    pub additional_tco2: f64,
    /// Set aside against reversal.
    pub buffer_tco2: f64,
    /// Additional minus buffer.
    pub credited_tco2: f64,
    /// Credited so far.
    pub cumulative_credited_tco2: f64,
    /// Carbon price of the year.
    pub price_yuan_per_tco2: f64,
    /// Credited × price.
    pub value_yuan: f64,
    /// Establishment cost of this year's planting.
    pub cost_yuan: f64,
    /// 1 / (1 + rate)^(year − start year).
    pub discount_factor: f64,
}

/// Totals of `project.json`.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectTotals {
    /// Project name.
    pub name: String,
    /// The intervention.
    pub intervention: String,
    /// First year.
    pub start_year: i32,
    /// Last year.
    pub end_year: i32,
    /// Eligible land in the polygon.
    pub eligible_area_ha: f64,
    /// Land restored.
    pub planted_area_ha: f64,
    /// Mean baseline sink of the eligible land.
    pub baseline_sink_tco2_per_ha_yr: f64,
    /// Additional removal over the years.
    pub additional_tco2: f64,
    /// Buffer share (percent).
    pub buffer_percent: f64,
    /// Set aside against reversal over the years.
    pub buffer_tco2: f64,
    /// Credited over the years.
    pub credited_tco2: f64,
    /// Undiscounted cost.
    pub cost_yuan: f64,
    /// True when the intervention's cost is a placeholder.
    pub cost_is_placeholder: bool,
    /// Undiscounted value of the credits.
    pub value_yuan: f64,
    /// Discounted cost.
    pub pv_cost_yuan: f64,
    /// Discounted value.
    pub pv_value_yuan: f64,
    /// Discounted value − discounted cost.
    pub npv_yuan: f64,
    /// Undiscounted cost over credited t CO₂.
    pub cost_per_tco2_yuan: f64,
    /// Discounted cost over discounted credited t CO₂.
    pub levelized_cost_per_tco2_yuan: f64,
    /// Irrigation water once everything is planted (m³/yr), when the intervention gives a need.
    pub water_need_m3_per_yr_at_full_planting: Option<f64>,
}

impl ProjectSpec {
    /// Reads and checks a project file; relative paths are taken from its folder.
    pub fn load(path: &Path) -> Result<ProjectSpec> {
        let mut p: ProjectSpec = read_toml(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let fix = |q: &mut PathBuf| {
            if q.is_relative() {
                *q = crate::config::normalize(&base.join(&*q));
            }
        };
        fix(&mut p.scene);
        if let Some(q) = p.polygon.path.as_mut() {
            fix(q);
        }
        p.source_path = path.to_path_buf();
        Ok(p)
    }

    fn check(&self, horizon: i32) -> Result<()> {
        let bad = |m: String| Err(Error::invalid(&self.source_path, m));
        if self.start_year > horizon {
            return bad(format!(
                "start year {} is after the horizon {horizon}",
                self.start_year
            ));
        }
        if self.price.is_empty() {
            return bad("no [[price]] point given".into());
        }
        for p in &self.price {
            if !(p.yuan_per_tco2.is_finite() && p.yuan_per_tco2 >= 0.0) {
                return bad(format!(
                    "price {} yuan/t CO2 in {} is negative or not a number",
                    p.yuan_per_tco2, p.year
                ));
            }
        }
        if self.price.windows(2).any(|w| w[1].year <= w[0].year) {
            return bad("price years must increase".into());
        }
        if !(self.discount_rate.is_finite() && self.discount_rate > -1.0) {
            return bad(format!("discount_rate {} must be > −1", self.discount_rate));
        }
        if !(0.0..=100.0).contains(&self.buffer_percent) {
            return bad(format!(
                "buffer_percent {} must be within 0–100",
                self.buffer_percent
            ));
        }
        if let Some(a) = self.planted_area_ha {
            if !(a.is_finite() && a > 0.0) {
                return bad(format!("planted_area_ha {a} must be positive"));
            }
        }
        if let Some(r) = self.rollout_ha_per_yr {
            if !(r.is_finite() && r > 0.0) {
                return bad(format!("rollout_ha_per_yr {r} must be positive"));
            }
        }
        match (&self.polygon.path, &self.polygon.wkt) {
            (Some(_), None) | (None, Some(_)) => Ok(()),
            _ => bad("[polygon] needs exactly one of path or wkt".into()),
        }
    }
}

/// Price in `year`: linear between the given points, constant beyond the ends.
pub fn price_at(points: &[PricePoint], year: i32) -> f64 {
    let first = points[0];
    let last = points[points.len() - 1];
    if year <= first.year {
        return first.yuan_per_tco2;
    }
    if year >= last.year {
        return last.yuan_per_tco2;
    }
    let w = points
        .windows(2)
        .find(|w| year <= w[1].year)
        .unwrap_or(&points[..2]);
    let f = (year - w[0].year) as f64 / (w[1].year - w[0].year) as f64;
    w[0].yuan_per_tco2 + f * (w[1].yuan_per_tco2 - w[0].yuan_per_tco2)
}

/// The yearly table from the project's start year to `end_year`. `planted_ha` is restored
/// from the start year at the spec's `rollout_ha_per_yr` (all in the first year without a
/// rollout); each cohort adds `survival × area_fraction × gain(k)` in its k-th year; the
/// baseline is the baseline sink of the same land (constant); the spec's buffer, discount
/// rate and price path value the credits.
pub fn project_table(
    spec: &ProjectSpec,
    iv: &Intervention,
    forest: &ForestModel,
    end_year: i32,
    planted_ha: f64,
    baseline_tco2_per_ha_yr: f64,
) -> Vec<ProjectYear> {
    let (start_year, rollout_ha_per_yr) = (spec.start_year, spec.rollout_ha_per_yr);
    let (buffer_percent, discount_rate) = (spec.buffer_percent, spec.discount_rate);
    let price = &spec.price;
    let mut cohorts: Vec<(i32, f64)> = Vec::new();
    let mut left = planted_ha;
    let mut year = start_year;
    while left > 1e-12 && year <= end_year {
        let a = rollout_ha_per_yr.map(|r| r.min(left)).unwrap_or(left);
        cohorts.push((year, a));
        left -= a;
        year += 1;
    }
    let mut rows = Vec::new();
    let mut planted = 0.0;
    let mut cumulative = 0.0;
    for y in start_year..=end_year {
        let new = cohorts
            .iter()
            .filter(|c| c.0 == y)
            .map(|c| c.1)
            .sum::<f64>();
        planted += new;
        let additional: f64 = cohorts
            .iter()
            .filter(|c| c.0 <= y)
            .map(|(s, a)| a * iv.gain_tco2_per_ha_yr(forest, (y - s) as u32))
            .sum();
        let baseline = baseline_tco2_per_ha_yr * planted_ha;
        let buffer = additional * buffer_percent / 100.0;
        let credited = additional - buffer;
        cumulative += credited;
        let p = price_at(price, y);
        rows.push(ProjectYear {
            year: y,
            planted_in_year_ha: new,
            planted_cumulative_ha: planted,
            baseline_sink_tco2: baseline,
            project_sink_tco2: baseline + additional,
            additional_tco2: additional,
            buffer_tco2: buffer,
            credited_tco2: credited,
            cumulative_credited_tco2: cumulative,
            price_yuan_per_tco2: p,
            value_yuan: credited * p,
            cost_yuan: new * iv.cost_yuan_per_ha,
            discount_factor: 1.0 / (1.0 + discount_rate).powi(y - start_year),
        });
    }
    rows
}

/// Sums the table into the totals.
pub fn totals(
    spec: &ProjectSpec,
    iv: &Intervention,
    eligible_ha: f64,
    planted_ha: f64,
    baseline: f64,
    rows: &[ProjectYear],
) -> ProjectTotals {
    let sum = |f: &dyn Fn(&ProjectYear) -> f64| rows.iter().map(f).sum::<f64>();
    let credited = sum(&|r| r.credited_tco2);
    let cost = sum(&|r| r.cost_yuan);
    let pv_cost = sum(&|r| r.cost_yuan * r.discount_factor);
    let pv_value = sum(&|r| r.value_yuan * r.discount_factor);
    let pv_credited = sum(&|r| r.credited_tco2 * r.discount_factor);
    ProjectTotals {
        name: spec.name.clone(),
        intervention: iv.name.clone(),
        start_year: spec.start_year,
        end_year: rows.last().map(|r| r.year).unwrap_or(spec.start_year),
        eligible_area_ha: eligible_ha,
        planted_area_ha: planted_ha,
        baseline_sink_tco2_per_ha_yr: baseline,
        additional_tco2: sum(&|r| r.additional_tco2),
        buffer_percent: spec.buffer_percent,
        buffer_tco2: sum(&|r| r.buffer_tco2),
        credited_tco2: credited,
        cost_yuan: cost,
        cost_is_placeholder: iv.cost_evidence == crate::model::Evidence::Placeholder,
        value_yuan: sum(&|r| r.value_yuan),
        pv_cost_yuan: pv_cost,
        pv_value_yuan: pv_value,
        npv_yuan: pv_value - pv_cost,
        cost_per_tco2_yuan: if credited > 0.0 {
            cost / credited
        } else {
            f64::NAN
        },
        levelized_cost_per_tco2_yuan: if pv_credited > 0.0 {
            pv_cost / pv_credited
        } else {
            f64::NAN
        },
        water_need_m3_per_yr_at_full_planting: iv
            .water_need_m3_per_ha_yr
            .map(|w| w * planted_ha * iv.area_fraction),
    }
}

/// Exact fixed-point sums of the polygon pass: (eligible area, baseline sink × area).
type PolygonSums = (i128, i128);

/// Sums one block of the polygon pass: the area of the pixels eligible for intervention `j`
/// (weighted by the polygon's coverage) and their baseline sink, in exact fixed point.
fn polygon_block(ctx: &PolygonContext, b: &Block) -> Result<PolygonSums> {
    let w = b.window;
    let cov = ctx.zones.block_coverage(ctx.grid, w);
    if cov.is_empty() {
        return Ok((0, 0));
    }
    let input = ctx.slots.view(b);
    let (mut area, mut baseline) = (0i128, 0i128);
    for i in 0..w.len() {
        let f: f64 = cov.iter().map(|(_, c)| c.at(i)).sum::<f64>().min(1.0);
        let Some(code) = input.landcover[i] else {
            continue;
        };
        if f <= 0.0 {
            continue;
        }
        let (col, row) = (w.col + i % w.width, w.row + i / w.width);
        let v = ctx
            .model
            .evaluate_observed(
                code,
                input.age.get(i).copied().flatten(),
                ctx.age_shift_yr,
                input.forest_type.get(i).copied().flatten(),
                input.desert.get(i).copied().flatten(),
            )
            .map_err(|e| ctx.paths.pixel_error(col, row, e))?;
        let Some(class) = v.class else { continue };
        let set = ctx.restoration.eligible(
            class,
            v.desert_subtype,
            input.masks.get(i).copied().unwrap_or(0),
        );
        if set & (1 << ctx.intervention) != 0 {
            let a = f * ctx.row_areas_ha[row];
            area += quantize(a);
            baseline += quantize(a * v.sink_tco2_per_ha_yr);
        }
    }
    Ok((area, baseline))
}

/// What every block of the polygon pass needs besides its own values.
struct PolygonContext<'a> {
    model: &'a PixelModel,
    restoration: &'a RestorationModel,
    intervention: usize,
    zones: &'a ZoneSet,
    grid: &'a Grid,
    row_areas_ha: &'a [f64],
    age_shift_yr: f64,
    slots: &'a Slots,
    paths: &'a InputPaths,
}

/// Area (ha) eligible for intervention `j` inside the polygon, and its baseline sink
/// (t CO₂/yr): a pass of the engine over the blocks that meet the polygon's envelope.
fn eligible_in_polygon(
    scene: &Scene,
    models: &Models,
    zones: &ZoneSet,
    j: usize,
    tuning: &Tuning,
) -> Result<(f64, f64)> {
    let model = models.pixel_model(scene)?;
    let restoration = models.restoration_model(scene)?.ok_or_else(|| {
        Error::invalid(
            &scene.models_dir,
            "the models folder has no restoration.toml",
        )
    })?;
    let grid = reference_grid(&scene.landcover.path, scene.landcover.band)?;
    zones.check_overlaps_grid(&grid)?;
    let inputs = crate::pipeline::open_inputs(scene, models, &grid, false)?;
    let block =
        engine::check_block_size(tuning.block_size_px.unwrap_or(scene.output.block_size_px))?;
    let (threads, pool) = engine::thread_pool(tuning.threads)?;
    let [x0, y0, x1, y1] = zones.zones[0].envelope;
    let c0 = x0.floor().max(0.0) as usize;
    let r0 = y0.floor().max(0.0) as usize;
    let c1 = (x1.ceil().max(0.0) as usize).min(grid.width);
    let r1 = (y1.ceil().max(0.0) as usize).min(grid.height);
    let windows: Vec<_> = grid
        .windows(block, r0..r1)
        .into_iter()
        .filter(|w| w.col + w.width > c0 && w.col < c1)
        .collect();
    let row_areas = grid.row_areas_ha();
    let ctx = PolygonContext {
        model: &model,
        restoration: &restoration,
        intervention: j,
        zones,
        grid: &grid,
        row_areas_ha: &row_areas,
        age_shift_yr: scene.age_shift_yr() as f64,
        slots: &inputs.slots,
        paths: &inputs.paths,
    };
    let pass = Pass {
        pool: &pool,
        windows: &windows,
        batch: (threads * 2).max(2),
        progress: None,
    };
    let (mut area, mut baseline) = (0i128, 0i128);
    engine::run(
        &pass,
        inputs.sources,
        |b| polygon_block(&ctx, b),
        |(a, s): PolygonSums| {
            area += a;
            baseline += s;
            Ok(())
        },
    )?;
    Ok((dequantize(area), dequantize(baseline)))
}

/// Runs a project file and writes `project.csv` and `project.json` into `out_dir`.
pub fn run(
    spec: &ProjectSpec,
    out_dir: &Path,
    tuning: &Tuning,
) -> Result<(ProjectTotals, Vec<ProjectYear>)> {
    let scene = Scene::load(&spec.scene)?;
    let models = Models::load(&scene)?;
    let cat = models.restoration.as_ref().ok_or_else(|| {
        Error::invalid(
            &scene.models_dir,
            "the models folder has no restoration.toml",
        )
    })?;
    let j = cat
        .interventions
        .iter()
        .position(|i| i.name == spec.intervention)
        .ok_or_else(|| {
            Error::invalid(
                &spec.source_path,
                format!(
                    "unknown intervention '{}' (known: {})",
                    spec.intervention,
                    cat.interventions
                        .iter()
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
    let iv = &cat.interventions[j];
    let end_year = spec.end_year.unwrap_or(scene.restoration_period().1);
    spec.check(end_year)?;
    let grid = reference_grid(&scene.landcover.path, scene.landcover.band)?;
    let zones = match (&spec.polygon.path, &spec.polygon.wkt) {
        (Some(p), _) => ZoneSet::read(
            &ZoneSource {
                path: p,
                layer: spec.polygon.layer.as_deref(),
                id_field: "",
                name_field: None,
                repair_invalid: false,
            },
            &grid,
        )?,
        (None, Some(w)) => ZoneSet::from_wkt(
            &spec.source_path,
            &spec.name,
            w,
            spec.polygon.crs.as_deref().unwrap_or("EPSG:4326"),
            &grid,
        )?,
        (None, None) => unreachable!("checked"),
    };
    let zones = zones.merged(&spec.name);
    let (eligible, baseline_total) = eligible_in_polygon(&scene, &models, &zones, j, tuning)?;
    if eligible <= 0.0 {
        return Err(Error::invalid(
            &spec.source_path,
            format!(
                "the project polygon covers no land eligible for '{}'",
                iv.name
            ),
        ));
    }
    let planted = match spec.planted_area_ha {
        Some(a) if a > eligible * (1.0 + 1e-9) => {
            return Err(Error::invalid(
                &spec.source_path,
                format!(
                "planted_area_ha {a} exceeds the {eligible:.2} ha eligible for '{}' in the polygon",
                iv.name
            ),
            ))
        }
        Some(a) => a,
        None => eligible,
    };
    let baseline_per_ha = baseline_total / eligible;
    let rows = project_table(spec, iv, &models.forest, end_year, planted, baseline_per_ha);
    let tot = totals(spec, iv, eligible, planted, baseline_per_ha, &rows);

    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let csv_tmp = TempFile::new(temp_path(out_dir, "project.csv", "csv"));
    {
        let p = out_dir.join("project.csv");
        let mut w = csv::Writer::from_path(&csv_tmp.path).map_err(|e| Error::output(&p, e))?;
        for r in &rows {
            w.serialize(r).map_err(|e| Error::output(&p, e))?;
        }
        w.flush().map_err(|e| Error::output(&p, e))?;
    }
    let json_tmp = TempFile::new(temp_path(out_dir, "project.json", "json"));
    let text = serde_json::to_string_pretty(&tot)
        .map_err(|e| Error::output(out_dir.join("project.json"), e))?;
    std::fs::write(&json_tmp.path, text + "\n")
        .map_err(|e| Error::output(out_dir.join("project.json"), e))?;
    csv_tmp.commit(&out_dir.join("project.csv"))?;
    json_tmp.commit(&out_dir.join("project.json"))?;
    Ok((tot, rows))
}

/// A few lines for people.
pub fn human(t: &ProjectTotals) -> String {
    use crate::human::{engineering, hectares, sig_digits};
    format!(
        "project '{}': {} on {} ({} eligible), {}–{}\n  additional {}, buffer {} % ({}), credited {}\n  cost {}{} → {} yuan/t CO₂ (levelized {}); value {}; NPV {}\n",
        t.name,
        t.intervention,
        hectares(t.planted_area_ha),
        hectares(t.eligible_area_ha),
        t.start_year,
        t.end_year,
        engineering(t.additional_tco2, "t CO₂"),
        sig_digits(t.buffer_percent, 3),
        engineering(t.buffer_tco2, "t CO₂"),
        engineering(t.credited_tco2, "t CO₂"),
        engineering(t.cost_yuan, "yuan"),
        if t.cost_is_placeholder { " (placeholder cost)" } else { "" },
        sig_digits(t.cost_per_tco2_yuan, 4),
        sig_digits(t.levelized_cost_per_tco2_yuan, 4),
        engineering(t.value_yuan, "yuan"),
        engineering(t.npv_yuan, "yuan")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_path_interpolates_and_holds() {
        let p = [
            PricePoint {
                year: 2025,
                yuan_per_tco2: 50.0,
            },
            PricePoint {
                year: 2035,
                yuan_per_tco2: 100.0,
            },
        ];
        assert_eq!(price_at(&p, 2020), 50.0);
        assert_eq!(price_at(&p, 2030), 75.0);
        assert_eq!(price_at(&p, 2050), 100.0);
    }
}
