//! `sinkmap fit` at the edges: read inventory plots (CSV), convert biomass to carbon, fit
//! every form per forest type, write the fit table and a `forest.toml` ready for `models/`.

#![allow(clippy::needless_range_loop)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fit::{best_by_aic, fit, Fit, Form, MIN_PLOTS};
use crate::io::temp::{temp_path, TempFile};
use crate::model::forest::{CurvePools, ForestModel, ForestType};
use crate::model::Evidence;

/// How to read the plot table.
#[derive(Debug, Clone)]
pub struct PlotOptions {
    /// Column with the forest type.
    pub type_field: String,
    /// Column with the stand age (yr).
    pub age_field: String,
    /// Column with the density.
    pub density_field: String,
    /// The density column holds dry biomass (t/ha), not carbon (t C/ha).
    pub biomass: bool,
    /// Carbon fraction of dry matter (IPCC default 0.47).
    pub carbon_fraction: f64,
    /// Species-specific carbon fractions by forest type (e.g. 0.4619 for Siberian spruce).
    pub carbon_fraction_by_type: BTreeMap<String, f64>,
    /// Expand above-ground densities to above + below ground with this root:shoot ratio.
    pub root_shoot_ratio: Option<f64>,
}

impl Default for PlotOptions {
    fn default() -> Self {
        PlotOptions {
            type_field: "forest_type".into(),
            age_field: "age_yr".into(),
            density_field: "density".into(),
            biomass: false,
            carbon_fraction: 0.47,
            carbon_fraction_by_type: BTreeMap::new(),
            root_shoot_ratio: None,
        }
    }
}

/// Plots per forest type: (ages in yr, carbon densities in t C/ha).
pub type Plots = BTreeMap<String, (Vec<f64>, Vec<f64>)>;

/// Reads and converts the plots. Errors name the line and column.
pub fn read_plots(path: &Path, o: &PlotOptions) -> Result<Plots> {
    let perr = |m: String| Error::Parse {
        path: path.to_path_buf(),
        message: m,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| match e.kind() {
            csv::ErrorKind::Io(_) => Error::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other(e.to_string()),
            },
            _ => perr(e.to_string()),
        })?;
    let headers = rdr.headers().map_err(|e| perr(e.to_string()))?.clone();
    let col = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            perr(format!(
                "missing column '{name}' (columns: {})",
                headers.iter().collect::<Vec<_>>().join(", ")
            ))
        })
    };
    let (ti, ai, di) = (
        col(&o.type_field)?,
        col(&o.age_field)?,
        col(&o.density_field)?,
    );
    for (t, f) in &o.carbon_fraction_by_type {
        if !(*f > 0.0 && *f <= 1.0) {
            return Err(Error::Usage(format!(
                "carbon fraction for '{t}' must be in (0, 1], got {f}"
            )));
        }
    }
    let mut plots = Plots::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| perr(format!("line {line}: {e}")))?;
        let cell = |c: usize, name: &str| -> Result<f64> {
            let s = rec.get(c).unwrap_or("");
            let v: f64 = s.parse().map_err(|_| {
                perr(format!(
                    "line {line}, column '{name}': '{s}' is not a number"
                ))
            })?;
            if !v.is_finite() {
                return Err(perr(format!(
                    "line {line}, column '{name}': '{s}' is not a finite number"
                )));
            }
            Ok(v)
        };
        let ty = rec.get(ti).unwrap_or("").to_string();
        if ty.is_empty() {
            return Err(perr(format!(
                "line {line}, column '{}': empty forest type",
                o.type_field
            )));
        }
        let age = cell(ai, &o.age_field)?;
        let dens = cell(di, &o.density_field)?;
        if age < 0.0 {
            return Err(perr(format!(
                "line {line}, column '{}': negative age {age}",
                o.age_field
            )));
        }
        let max_age = crate::cube::MAX_CUBE_AGE_YR as f64;
        if age > max_age {
            return Err(perr(format!(
                "line {line}, column '{}': age {age} yr beyond {max_age} yr (the oldest age sinkmap tracks): a typo, or a column in other units?",
                o.age_field
            )));
        }
        if dens < 0.0 {
            return Err(perr(format!(
                "line {line}, column '{}': negative density {dens}",
                o.density_field
            )));
        }
        let mut c = dens;
        if o.biomass {
            c *= o
                .carbon_fraction_by_type
                .get(&ty)
                .copied()
                .unwrap_or(o.carbon_fraction);
        }
        if let Some(r) = o.root_shoot_ratio {
            c *= 1.0 + r;
        }
        let e = plots.entry(ty).or_default();
        e.0.push(age);
        e.1.push(c);
    }
    if plots.is_empty() {
        return Err(perr("no plots".into()));
    }
    Ok(plots)
}

/// All fits of one forest type.
#[derive(Debug, Clone)]
pub struct TypeFits {
    /// The forest type.
    pub forest_type: String,
    /// One fit per form.
    pub fits: Vec<Fit>,
    /// The usable form with the lowest AIC.
    pub best: Option<Form>,
}

/// Fits every form to every type. A type with too few plots or a single age is an error.
pub fn fit_all(path: &Path, plots: &Plots, forms: &[Form]) -> Result<Vec<TypeFits>> {
    let mut out = Vec::new();
    for (ty, (ages, dens)) in plots {
        if ages.len() < MIN_PLOTS {
            return Err(Error::data(
                path,
                format!("forest type '{ty}' has {} plots; a three-parameter curve needs at least {MIN_PLOTS}", ages.len()),
            ));
        }
        let (lo, hi) = ages
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |a, v| {
                (a.0.min(*v), a.1.max(*v))
            });
        if hi - lo <= 0.0 {
            return Err(Error::data(path, format!("forest type '{ty}': all plots have the same age ({lo} yr); no curve can be fitted")));
        }
        // Equal densities (all zero, say) carry no curve: R² would be 0/0.
        let (dlo, dhi) = dens
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |a, v| {
                (a.0.min(*v), a.1.max(*v))
            });
        if dhi - dlo <= 0.0 {
            return Err(Error::invalid(path, format!("forest type '{ty}': every plot has the same density ({dlo} t C/ha); an age–density curve needs densities that vary (check the density column and its units)")));
        }
        let fits: Vec<Fit> = forms.iter().map(|f| fit(*f, ages, dens)).collect();
        let best = best_by_aic(&fits).map(|f| f.form);
        out.push(TypeFits {
            forest_type: ty.clone(),
            fits,
            best,
        });
    }
    Ok(out)
}

fn snake(s: &str) -> String {
    let mut out = String::new();
    for ch in s.chars() {
        if ch.is_alphanumeric() {
            out.extend(ch.to_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

/// The chosen curves as a `forest.toml` model.
pub fn forest_model(results: &[TypeFits], plots_name: &str, o: &PlotOptions) -> ForestModel {
    let mut types = Vec::new();
    for (i, r) in results.iter().filter(|r| r.best.is_some()).enumerate() {
        let f = r
            .fits
            .iter()
            .find(|f| Some(f.form) == r.best)
            .expect("best fit exists");
        let names = f.form.parameter_names();
        let conv = if o.biomass {
            format!(
                "biomass × carbon fraction {}",
                o.carbon_fraction_by_type
                    .get(&r.forest_type)
                    .copied()
                    .unwrap_or(o.carbon_fraction)
            )
        } else {
            "carbon densities as given".into()
        };
        let rs = o
            .root_shoot_ratio
            .map(|r| format!(", × (1 + root:shoot {r})"))
            .unwrap_or_default();
        types.push(ForestType {
            code: i as i32 + 1,
            name: snake(&r.forest_type),
            label: r.forest_type.clone(),
            curve: f.form.curve(f.params),
            curve_pools: CurvePools::AboveAndBelowGround,
            root_shoot_ratio: None,
            dead_matter_tc_per_ha: 0.0,
            soil_tc_per_ha: 0.0,
            r_squared: Some(f.r_squared),
            standard_errors: names.iter().zip(f.standard_errors).map(|(n, s)| (n.to_string(), s)).collect(),
            // Correlations (a,b), (a,c), (b,c) of the fit, so the Monte Carlo draws them jointly.
            correlations: [(0, 1), (0, 2), (1, 2)]
                .iter()
                .zip(f.correlations)
                .filter(|(_, r)| r.is_finite())
                .map(|((i, j), r)| (format!("{},{}", names[*i], names[*j]), r))
                .collect(),
            evidence: Evidence::Derived,
            source: format!(
                "fitted by sinkmap fit to {plots_name}: {} form chosen by AIC, n = {}, R² = {:.3}, RMSE = {:.3} t C/ha ({conv}{rs}); densities taken as above + below ground",
                f.form.name(),
                f.n,
                f.r_squared,
                f.rmse
            ),
        });
    }
    ForestModel {
        default_forest_type: types.first().map(|t| t.name.clone()).unwrap_or_default(),
        max_plausible_age_yr: 500,
        fallback_age_yr: 56,
        fallback_age_source: "Cheng et al. 2024 ESSD 16:803, China 30 m forest age 2020: national mean 56.1 yr [verified]".into(),
        types,
    }
}

fn fmt(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.6}")
    } else {
        String::new()
    }
}

/// Writes `fit_table.csv`, `fit_table.md` and `forest.toml` into `out_dir` (atomically).
pub fn write_outputs(
    out_dir: &Path,
    results: &[TypeFits],
    plots: Option<&Plots>,
    plots_path: &Path,
    o: &PlotOptions,
) -> Result<FitOutputs> {
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let name = plots_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut pending = Vec::new();
    let mut warnings = Vec::new();

    pending.push((
        write_fit_csv(out_dir, results)?,
        out_dir.join("fit_table.csv"),
    ));

    let md = fit_markdown(results, &name);
    let md_tmp = TempFile::new(temp_path(out_dir, "fit_table.md", "md"));
    std::fs::write(&md_tmp.path, md).map_err(|e| Error::output(out_dir.join("fit_table.md"), e))?;
    pending.push((md_tmp, out_dir.join("fit_table.md")));

    draw_fit_charts(out_dir, results, plots, &mut pending, &mut warnings);
    let model = forest_model(results, &name, o);
    if model.types.is_empty() {
        return Err(Error::data(
            plots_path,
            "no forest type has a usable fit; see the problems in the fit table",
        ));
    }
    let text = toml::to_string_pretty(&model)
        .map_err(|e| Error::output(out_dir.join("forest.toml"), e))?;
    let header = format!(
        "# Age–carbon-density curves fitted by `sinkmap fit` to {name}.\n# Copy into models/forest.toml (check codes against your forest-type raster).\n\n"
    );
    let toml_tmp = TempFile::new(temp_path(out_dir, "forest.toml", "toml"));
    std::fs::write(&toml_tmp.path, header + &text)
        .map_err(|e| Error::output(out_dir.join("forest.toml"), e))?;
    pending.push((toml_tmp, out_dir.join("forest.toml")));

    let mut files = Vec::new();
    for (tmp, fin) in pending {
        tmp.commit(&fin)?;
        files.push(fin);
    }
    Ok(FitOutputs { files, warnings })
}

/// fit_table.csv, written to a temporary file of `out_dir`.
fn write_fit_csv(out_dir: &Path, results: &[TypeFits]) -> Result<TempFile> {
    let csv_tmp = TempFile::new(temp_path(out_dir, "fit_table.csv", "csv"));
    {
        let p = out_dir.join("fit_table.csv");
        let mut w = csv::Writer::from_path(&csv_tmp.path).map_err(|e| Error::output(&p, e))?;
        w.write_record([
            "forest_type",
            "form",
            "chosen",
            "n",
            "p1_name",
            "p1",
            "p1_se",
            "p1_ci95",
            "p2_name",
            "p2",
            "p2_se",
            "p2_ci95",
            "p3_name",
            "p3",
            "p3_se",
            "p3_ci95",
            "corr_12",
            "corr_13",
            "corr_23",
            "r_squared",
            "rmse_tc_per_ha",
            "aic",
            "bic",
            "iterations",
            "converged",
            "condition_number",
            "problem",
        ])
        .map_err(|e| Error::output(&p, e))?;
        for r in results {
            for f in &r.fits {
                let names = f.form.parameter_names();
                let mut rec = vec![
                    r.forest_type.clone(),
                    f.form.name().into(),
                    (Some(f.form) == r.best).to_string(),
                    f.n.to_string(),
                ];
                for i in 0..3 {
                    let show = f.usable();
                    rec.push(names[i].into());
                    rec.push(if show {
                        fmt(f.params[i])
                    } else {
                        String::new()
                    });
                    rec.push(if show {
                        fmt(f.standard_errors[i])
                    } else {
                        String::new()
                    });
                    rec.push(if show {
                        fmt(f.ci95_half_width[i])
                    } else {
                        String::new()
                    });
                }
                for c in f.correlations {
                    rec.push(if f.usable() { fmt(c) } else { String::new() });
                }
                rec.extend([
                    fmt(f.r_squared),
                    fmt(f.rmse),
                    fmt(f.aic),
                    fmt(f.bic),
                    f.iterations.to_string(),
                    f.converged.to_string(),
                ]);
                rec.push(format!("{:.3e}", f.condition_number));
                rec.push(f.problem.clone().unwrap_or_default());
                w.write_record(rec).map_err(|e| Error::output(&p, e))?;
            }
        }
        w.flush().map_err(|e| Error::output(&p, e))?;
    }
    Ok(csv_tmp)
}

/// fit_table.md: every fit of every type as a Markdown table.
fn fit_markdown(results: &[TypeFits], name: &str) -> String {
    let mut md = format!("# Curve fits to {name}\n\nParameters ± standard error (95 % interval half-width); flagged fits show no numbers.\n\n");
    md += "| forest type | form | n | parameters | R² | RMSE (t C/ha) | AIC | chosen | problem |\n|---|---|---|---|---|---|---|---|---|\n";
    for r in results {
        for f in &r.fits {
            let params = if f.usable() {
                f.form
                    .parameter_names()
                    .iter()
                    .enumerate()
                    .map(|(i, n)| {
                        format!(
                            "{n} = {:.4} ± {:.4} (±{:.4})",
                            f.params[i], f.standard_errors[i], f.ci95_half_width[i]
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            } else {
                "—".into()
            };
            md += &format!(
                "| {} | {} | {} | {} | {:.3} | {:.3} | {:.1} | {} | {} |\n",
                r.forest_type,
                f.form.name(),
                f.n,
                params,
                f.r_squared,
                f.rmse,
                f.aic,
                if Some(f.form) == r.best { "✔" } else { "" },
                f.problem.clone().unwrap_or_default()
            );
        }
    }
    md
}

/// One chart per forest type: the plots and every usable fitted curve, added to `pending`;
/// a chart that cannot be drawn is a warning.
fn draw_fit_charts(
    out_dir: &Path,
    results: &[TypeFits],
    plots: Option<&Plots>,
    pending: &mut Vec<(TempFile, PathBuf)>,
    warnings: &mut Vec<crate::Warning>,
) {
    for r in results {
        if let Some((a, d)) = plots.and_then(|p| p.get(&r.forest_type)) {
            let tmax = a.iter().copied().fold(0.0, f64::max) * 1.1;
            let mut lines = vec![crate::report::charts::Line {
                name: format!("plots (n = {})", a.len()),
                points: a.iter().copied().zip(d.iter().copied()).collect(),
                band: None,
                color: plotters::style::RGBColor(60, 60, 60),
                markers: true,
            }];
            for (i, f) in r.fits.iter().filter(|f| f.usable()).enumerate() {
                let c = f.form.curve(f.params);
                lines.push(crate::report::charts::Line {
                    name: format!(
                        "{}{} (R² {:.3})",
                        f.form.name(),
                        if Some(f.form) == r.best {
                            ", chosen"
                        } else {
                            ""
                        },
                        f.r_squared
                    ),
                    points: (0..=200)
                        .map(|k| k as f64 * tmax / 200.0)
                        .map(|t| (t, c.carbon_tc_per_ha(t)))
                        .collect(),
                    band: None,
                    color: [
                        plotters::style::RGBColor(0, 109, 44),
                        plotters::style::RGBColor(217, 95, 14),
                        plotters::style::RGBColor(117, 112, 179),
                        plotters::style::RGBColor(231, 41, 138),
                    ][i % 4],
                    markers: false,
                });
            }
            let file = format!("fit_{}.png", snake(&r.forest_type));
            let tmp = TempFile::new(temp_path(out_dir, &file, "png"));
            let title = format!("{}: carbon density by stand age", r.forest_type);
            match crate::report::charts::line_chart(
                &tmp.path,
                &title,
                "stand age (yr)",
                "t C/ha",
                &lines,
                480,
            ) {
                Ok(()) => pending.push((tmp, out_dir.join(file))),
                Err(e) => warnings.push(crate::Warning::new(
                    out_dir.join(file),
                    format!("not drawn: {e}"),
                )),
            }
        }
    }
}

/// What [`write_outputs`] wrote, and the plots it could not draw.
#[derive(Debug, Clone)]
pub struct FitOutputs {
    /// The files written.
    pub files: Vec<PathBuf>,
    /// Plots not drawn (e.g. no font), with the reason.
    pub warnings: Vec<crate::Warning>,
}
