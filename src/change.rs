//! `sinkmap change`: land-cover change between two years — the IPCC stock-difference method
//! (InVEST's "sequestration": stock after − stock before), transition matrices by zone, mean
//! annual change and its valuation with InVEST's formula.
//!
//! The before raster is the reference grid; the after raster (and optional age rasters) are
//! aligned to it. Both years are evaluated with the scene's models (each with its own scheme),
//! so the age-aware forest curves apply. A pixel that is nodata in either year has no change
//! (NaN in the map) and is counted apart in `nodata_one_year_area_ha`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{Models, Scene};
use crate::cube::{dequantize, quantize, GRID_ZONE, OUTSIDE_ZONE};
use crate::engine::{self, Block, MapOutputs, Pass, Source, Tuning};
use crate::error::{Error, Result};
use crate::grid::Grid;
use crate::io::files::read_toml;
use crate::model::pixel::PixelModel;
use crate::model::scheme::Scheme;
use crate::model::{EcosystemClass, CO2_PER_C};
use crate::raster::writer::{self, MapFormat, MapSpec, MapWriter, TempFile};
use crate::raster::{reference_grid, Layer, LayerKind};
use crate::zones::ZoneSet;

/// What to compare.
#[derive(Debug, Clone)]
pub struct ChangeSpec {
    /// Land cover of the first year (the reference grid).
    pub before: PathBuf,
    /// Land cover of the second year.
    pub after: PathBuf,
    /// Scheme of the after raster (default: the scene's).
    pub after_scheme: Option<String>,
    /// Forest age (yr) in the first year.
    pub age_before: Option<PathBuf>,
    /// Forest age (yr) in the second year.
    pub age_after: Option<PathBuf>,
    /// The first year.
    pub year_before: i32,
    /// The second year.
    pub year_after: i32,
    /// InVEST valuation: price per t C, discount rate and annual price change (percent).
    pub price_per_tc: f64,
    /// Discount rate (percent per year).
    pub discount_rate_percent: f64,
    /// Annual change of the price (percent per year).
    pub rate_change_percent: f64,
    /// Block size and threads (speed only: the results do not depend on them).
    pub tuning: Tuning,
}

/// InVEST's valuation constant: V / T × Σ_{t=0}^{T−1} 1 / ((1 + r/100)^t (1 + c/100)^t);
/// the value of a stock change ΔC (t C) over T years is ΔC × this constant.
pub fn invest_valuation_constant(
    price_per_tc: f64,
    years: i32,
    r_percent: f64,
    c_percent: f64,
) -> f64 {
    let n = years.max(1);
    let sum: f64 = (0..n)
        .map(|t| 1.0 / ((1.0 + r_percent / 100.0).powi(t) * (1.0 + c_percent / 100.0).powi(t)))
        .sum();
    price_per_tc / n as f64 * sum
}

/// Per-zone results.
#[derive(Debug, Clone, Serialize)]
pub struct ZoneChange {
    /// Zone id.
    pub zone_id: String,
    /// Zone name.
    pub zone_name: String,
    /// Area with data in both years.
    pub area_ha: f64,
    /// Stock in the first year.
    pub stock_before_tc: f64,
    /// Stock in the second year.
    pub stock_after_tc: f64,
    /// After − before.
    pub stock_change_tc: f64,
    /// The change per year of the period, in t CO₂.
    pub mean_annual_change_tco2_yr: f64,
    /// Value of the change (InVEST's formula, [`invest_valuation_constant`]).
    pub npv_yuan: f64,
    /// Area with data in one year only (no change counted).
    pub nodata_one_year_area_ha: f64,
}

/// `change.json`: the settings and the per-zone results (the whole grid included).
#[derive(Debug, Clone, Serialize)]
pub struct ChangeSummary {
    /// The first year.
    pub year_before: i32,
    /// The second year.
    pub year_after: i32,
    /// Price per t C (yuan).
    pub price_per_tc: f64,
    /// Discount rate (percent per year).
    pub discount_rate_percent: f64,
    /// Annual change of the price (percent per year).
    pub rate_change_percent: f64,
    /// [`invest_valuation_constant`] of these settings (yuan per t C of change).
    pub valuation_constant: f64,
    /// One entry per zone.
    pub zones: Vec<ZoneChange>,
}

/// The console lines of a change run (whole grid), in engineering units.
pub fn human(s: &ChangeSummary) -> String {
    use crate::human::{engineering, hectares, tonnes_c, tonnes_co2_yr};
    let Some(g) = s.zones.first() else {
        return String::new();
    };
    let mut out = format!(
        "{}→{}: stock {} → {} (change {}, {}); value {}\n",
        s.year_before,
        s.year_after,
        tonnes_c(g.stock_before_tc),
        tonnes_c(g.stock_after_tc),
        tonnes_c(g.stock_change_tc),
        tonnes_co2_yr(g.mean_annual_change_tco2_yr),
        engineering(g.npv_yuan, "yuan")
    );
    if g.nodata_one_year_area_ha > 0.0 {
        out += &format!(
            "  note: {} are nodata in one year only and are left out of the change\n",
            hectares(g.nodata_one_year_area_ha)
        );
    }
    out
}

/// What one block of a change pass adds up, in exact fixed point (see
/// [`crate::cube::quantize`]): integer sums do not depend on the block layout or the order
/// in which blocks arrive.
#[derive(Debug, Clone, Default, PartialEq)]
struct ChangeSums {
    /// [zone] → quantized (area, stock before, stock after, nodata-one-year area); zone 0 is
    /// the grid, 1..=nz the layer's zones, nz + 1 the outside.
    sums: Vec<[i128; 4]>,
    /// (zone, from class, to class) → quantized area.
    transitions: BTreeMap<(usize, usize, usize), i128>,
}

impl ChangeSums {
    fn new(zones: usize) -> ChangeSums {
        ChangeSums {
            sums: vec![[0; 4]; zones + 2],
            transitions: BTreeMap::new(),
        }
    }

    /// Adds another block's sums.
    fn add(&mut self, other: &ChangeSums) {
        for (a, b) in self.sums.iter_mut().zip(&other.sums) {
            for k in 0..4 {
                a[k] += b[k];
            }
        }
        for (key, q) in &other.transitions {
            *self.transitions.entry(*key).or_insert(0) += q;
        }
    }
}

/// Class and stock density of a pixel in one year (None where the land cover is nodata).
fn class_of(
    model: &PixelModel,
    code: Option<i32>,
    age: Option<f64>,
    ft: Option<i32>,
    ds: Option<i32>,
) -> std::result::Result<Option<(EcosystemClass, f64)>, crate::model::pixel::PixelError> {
    let Some(code) = code else { return Ok(None) };
    let v = model.evaluate_observed(code, age, 0.0, ft, ds)?;
    Ok(v.class.map(|c| (c, v.stock_tc_per_ha)))
}

/// The two years' models and the engine sources' slots of a change pass.
struct ChangeModels {
    before: PixelModel,
    after: PixelModel,
    /// Source slots: before and after land cover are 0 and 1.
    age_before: Option<usize>,
    age_after: Option<usize>,
    forest_type: Option<usize>,
    desert: Option<usize>,
}

/// The files a bad pixel can be about, by year.
struct ChangePaths {
    before: PathBuf,
    after: PathBuf,
}

/// Evaluates one block of a change pass: the stock change per pixel, and the area, stocks
/// and transitions per zone. Pure, no IO; every pixel is added on its own, in exact fixed
/// point (a hot loop kept in one piece).
fn change_block(
    m: &ChangeModels,
    paths: &ChangePaths,
    row_areas_ha: &[f64],
    zones: Option<(&ZoneSet, &Grid)>,
    b: &Block,
) -> Result<(Vec<f32>, ChangeSums)> {
    let win = b.window;
    let (c_b, c_a) = (b.codes(Some(0)), b.codes(Some(1)));
    let (v_ab, v_aa) = (b.values(m.age_before), b.values(m.age_after));
    let (v_ft, v_ds) = (b.codes(m.forest_type), b.codes(m.desert));
    let cov = zones
        .map(|(z, grid)| z.block_coverage(grid, win))
        .unwrap_or_default();
    let nz = zones.map(|(z, _)| z.zones.len()).unwrap_or(0);
    let mut acc = ChangeSums::new(nz);
    let mut out = vec![writer::MAP_NODATA; win.len()];
    let mut weights: Vec<(usize, f64)> = Vec::new();
    for i in 0..win.len() {
        let (col, row) = (win.col + i % win.width, win.row + i / win.width);
        let a_ha = row_areas_ha[row];
        let f_t = v_ft.get(i).copied().flatten();
        let d_s = v_ds.get(i).copied().flatten();
        let pe = |path: &Path, e: crate::model::pixel::PixelError| Error::Pixel {
            path: path.to_path_buf(),
            col,
            row,
            message: e.to_string(),
        };
        let before = class_of(&m.before, c_b[i], v_ab.get(i).copied().flatten(), f_t, d_s)
            .map_err(|e| pe(&paths.before, e))?;
        let after = class_of(&m.after, c_a[i], v_aa.get(i).copied().flatten(), f_t, d_s)
            .map_err(|e| pe(&paths.after, e))?;
        // Zone weights: the grid, each zone's fraction, the outside.
        weights.clear();
        weights.push((0, 1.0));
        if zones.is_some() {
            let mut covered = 0.0;
            for (zi, c) in &cov {
                let f = c.at(i);
                if f > 0.0 {
                    weights.push((zi + 1, f));
                }
                covered += f;
            }
            if 1.0 - covered > 1e-12 {
                weights.push((nz + 1, 1.0 - covered));
            }
        }
        match (before, after) {
            (Some((cb, sb)), Some((ca, sa))) => {
                out[i] = (sa - sb) as f32;
                for (z, f) in &weights {
                    let ar = a_ha * f;
                    let s = &mut acc.sums[*z];
                    s[0] += quantize(ar);
                    s[1] += quantize(ar * sb);
                    s[2] += quantize(ar * sa);
                    *acc.transitions
                        .entry((*z, cb.index(), ca.index()))
                        .or_insert(0) += quantize(ar);
                }
            }
            (None, None) => {}
            _ => {
                for (z, f) in &weights {
                    acc.sums[*z][3] += quantize(a_ha * f);
                }
            }
        }
    }
    Ok((out, acc))
}

/// The models of both years: the scene's, and for the after year the scene's models read
/// through `--after-scheme` when given (with that scheme's nodata code).
fn year_models(
    scene: &Scene,
    spec: &ChangeSpec,
    models: &Models,
) -> Result<(PixelModel, PixelModel, Option<i32>)> {
    let model_before = models.pixel_model(scene)?;
    let (model_after, after_nodata) = match &spec.after_scheme {
        None => (model_before.clone(), models.scheme.nodata_value),
        Some(name) => {
            let p = if name.ends_with(".toml") {
                PathBuf::from(name)
            } else {
                scene
                    .models_dir
                    .join("schemes")
                    .join(format!("{name}.toml"))
            };
            let scheme: Scheme = read_toml(&p)?;
            scheme.validate().map_err(|e| Error::model(&p, e))?;
            let m = PixelModel::build(
                &scheme,
                &models.forest,
                &models.desert,
                &models.other,
                scene.pools,
                models.pool_table.as_deref(),
            )
            .map_err(|e| Error::model(&p, e))?;
            (m, scheme.nodata_value)
        }
    };
    Ok((model_before, model_after, after_nodata))
}

/// Opens the layers of a change pass as engine sources: before and after land cover, the
/// ages of each year (with the scene's age nodata values), forest type and desert subtype.
fn open_sources(
    scene: &Scene,
    spec: &ChangeSpec,
    grid: &Grid,
    nodata: (Option<i32>, Option<i32>),
) -> Result<(Vec<Source>, [Option<usize>; 4])> {
    let mut before = Layer::open(&spec.before, 1, LayerKind::Categorical, grid, &[])?;
    if let Some(nd) = nodata.0 {
        before.add_nodata(nd as f64);
    }
    let mut after = Layer::open(&spec.after, 1, LayerKind::Categorical, grid, &[])?;
    if let Some(nd) = nodata.1 {
        after.add_nodata(nd as f64);
    }
    let age_nodata: &[f64] = scene
        .forest_age
        .as_ref()
        .map(|a| a.nodata_values.as_slice())
        .unwrap_or(&[]);
    let age = |p: &Option<PathBuf>| -> Result<Option<Source>> {
        p.as_ref()
            .map(|p| Layer::open(p, 1, LayerKind::Continuous, grid, age_nodata).map(Source::Values))
            .transpose()
    };
    let optional = [
        age(&spec.age_before)?,
        age(&spec.age_after)?,
        Layer::open_spec(scene.forest_type.as_ref(), LayerKind::Categorical, grid)?
            .map(Source::Codes),
        Layer::open_spec(scene.desert_subtype.as_ref(), LayerKind::Categorical, grid)?
            .map(Source::Codes),
    ];
    let mut sources = vec![Source::Codes(before), Source::Codes(after)];
    let slots = optional.map(|s| {
        s.map(|s| {
            sources.push(s);
            sources.len() - 1
        })
    });
    Ok((sources, slots))
}

/// Checks the years and the price of a comparison.
fn check_spec(spec: &ChangeSpec) -> Result<()> {
    if spec.year_after <= spec.year_before {
        return Err(Error::Usage(format!(
            "--years {} {}: the after year must follow the before year",
            spec.year_before, spec.year_after
        )));
    }
    if !(spec.price_per_tc.is_finite() && spec.price_per_tc >= 0.0) {
        return Err(Error::Usage(format!(
            "price {} must be ≥ 0",
            spec.price_per_tc
        )));
    }
    Ok(())
}

/// The stock-change map and the sums of a comparison, written and summed on the engine.
fn stream(
    scene: &Scene,
    spec: &ChangeSpec,
    zones: Option<&ZoneSet>,
    out_dir: &Path,
) -> Result<((TempFile, PathBuf), ChangeSums)> {
    let models = Models::load(scene)?;
    let (model_before, model_after, after_nodata) = year_models(scene, spec, &models)?;
    let grid = reference_grid(&spec.before, 1)?;
    if let Some(z) = zones {
        z.check_overlaps_grid(&grid)?;
    }
    let (sources, [age_before, age_after, forest_type, desert]) = open_sources(
        scene,
        spec,
        &grid,
        (models.scheme.nodata_value, after_nodata),
    )?;
    let m = ChangeModels {
        before: model_before,
        after: model_after,
        age_before,
        age_after,
        forest_type,
        desert,
    };
    let paths = ChangePaths {
        before: spec.before.clone(),
        after: spec.after.clone(),
    };
    let block = engine::check_block_size(
        spec.tuning
            .block_size_px
            .unwrap_or(scene.output.block_size_px),
    )?;
    let (threads, pool) = engine::thread_pool(spec.tuning.threads)?;
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    writer::remove_stale_temp_files(out_dir);
    let w = MapWriter::create(
        out_dir,
        MapSpec {
            file_name: "stock_change_tc_per_ha.tif".into(),
            description: format!(
                "carbon stock change {}→{} (after − before)",
                spec.year_before, spec.year_after
            ),
            unit: "t C/ha".into(),
            categorical: false,
        },
        &grid,
        MapFormat::on_all_cores(block, scene.output.compression, scene.output.layout),
        &[("SINKMAP_VERSION".into(), env!("CARGO_PKG_VERSION").into())],
    )?;
    let batch = (threads * 2).max(2);
    let nz = zones.map(|z| z.zones.len()).unwrap_or(0);
    let mut acc = ChangeSums::new(nz);
    let row_areas = grid.row_areas_ha();
    let windows = grid.windows(block, 0..grid.height);
    let pass = Pass {
        pool: &pool,
        windows: &windows,
        batch,
        progress: None,
    };
    let zones_grid = zones.map(|z| (z, &grid));
    let maps = MapOutputs {
        writers: vec![w],
        row0: 0,
    };
    let mut written = engine::map_pass(
        &pass,
        sources,
        maps,
        |b| {
            let (values, sums) = change_block(&m, &paths, &row_areas, zones_grid, b)?;
            Ok((vec![values], sums))
        },
        |sums: ChangeSums| {
            acc.add(&sums);
            Ok(())
        },
    )?;
    let map = written
        .pop()
        .ok_or_else(|| Error::internal("the change map was not written"))?;
    Ok((map, acc))
}

/// Runs the comparison and writes `stock_change_tc_per_ha.tif`, `transition.csv`,
/// `change_zones.csv` and `change.json` into `out_dir`.
pub fn run(
    scene: &Scene,
    spec: &ChangeSpec,
    zones: Option<&ZoneSet>,
    out_dir: &Path,
) -> Result<ChangeSummary> {
    check_spec(spec)?;
    crate::pipeline::bound_gdal_cache();
    let (map, acc) = stream(scene, spec, zones, out_dir)?;
    let years = spec.year_after - spec.year_before;
    let k = invest_valuation_constant(
        spec.price_per_tc,
        years,
        spec.discount_rate_percent,
        spec.rate_change_percent,
    );
    let mut names: Vec<(String, String)> = vec![(GRID_ZONE.into(), "whole grid".into())];
    if let Some(z) = zones {
        names.extend(z.zones.iter().map(|z| (z.id.clone(), z.name.clone())));
        names.push((OUTSIDE_ZONE.into(), "outside every zone".into()));
    }
    let zone_rows: Vec<ZoneChange> = names
        .iter()
        .enumerate()
        .map(|(i, (id, name))| {
            let s = acc.sums[i];
            let (b, a) = (dequantize(s[1]), dequantize(s[2]));
            ZoneChange {
                zone_id: id.clone(),
                zone_name: name.clone(),
                area_ha: dequantize(s[0]),
                stock_before_tc: b,
                stock_after_tc: a,
                stock_change_tc: dequantize(s[2] - s[1]),
                mean_annual_change_tco2_yr: dequantize(s[2] - s[1]) * CO2_PER_C / years as f64,
                npv_yuan: dequantize(s[2] - s[1]) * k,
                nodata_one_year_area_ha: dequantize(s[3]),
            }
        })
        .collect();
    let summary = ChangeSummary {
        year_before: spec.year_before,
        year_after: spec.year_after,
        price_per_tc: spec.price_per_tc,
        discount_rate_percent: spec.discount_rate_percent,
        rate_change_percent: spec.rate_change_percent,
        valuation_constant: k,
        zones: zone_rows.clone(),
    };

    #[derive(Serialize)]
    struct TransitionRow<'a> {
        zone_id: &'a str,
        from_class: &'static str,
        to_class: &'static str,
        area_ha: f64,
    }
    let tr_tmp = TempFile::new(writer::temp_path(out_dir, "transition.csv", "csv"));
    {
        let p = out_dir.join("transition.csv");
        let mut wr = csv::Writer::from_path(&tr_tmp.path).map_err(|e| Error::output(&p, e))?;
        for ((z, from, to), q) in &acc.transitions {
            wr.serialize(TransitionRow {
                zone_id: &names[*z].0,
                from_class: EcosystemClass::ALL[*from].name(),
                to_class: EcosystemClass::ALL[*to].name(),
                area_ha: dequantize(*q),
            })
            .map_err(|e| Error::output(&p, e))?;
        }
        wr.flush().map_err(|e| Error::output(&p, e))?;
    }
    let zc_tmp = TempFile::new(writer::temp_path(out_dir, "change_zones.csv", "csv"));
    {
        let p = out_dir.join("change_zones.csv");
        let mut wr = csv::Writer::from_path(&zc_tmp.path).map_err(|e| Error::output(&p, e))?;
        for r in &zone_rows {
            wr.serialize(r).map_err(|e| Error::output(&p, e))?;
        }
        wr.flush().map_err(|e| Error::output(&p, e))?;
    }
    let js_tmp = TempFile::new(writer::temp_path(out_dir, "change.json", "json"));
    std::fs::write(
        &js_tmp.path,
        serde_json::to_string_pretty(&summary).unwrap_or_default() + "\n",
    )
    .map_err(|e| Error::output(out_dir.join("change.json"), e))?;
    map.0.commit(&map.1)?;
    tr_tmp.commit(&out_dir.join("transition.csv"))?;
    zc_tmp.commit(&out_dir.join("change_zones.csv"))?;
    js_tmp.commit(&out_dir.join("change.json"))?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valuation_constant_by_hand() {
        // T = 2, r = 10 %, c = 0: V/2 × (1 + 1/1.1).
        let k = invest_valuation_constant(100.0, 2, 10.0, 0.0);
        assert!((k - 50.0 * (1.0 + 1.0 / 1.1)).abs() < 1e-12);
        // No discounting: the price itself.
        assert!((invest_valuation_constant(43.0, 7, 0.0, 0.0) - 43.0).abs() < 1e-12);
    }
}
