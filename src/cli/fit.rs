//! `sinkmap fit`: age–carbon-density curves fitted to inventory plots.

use std::path::PathBuf;

use clap::Args;

use sinkmap::manifest;
use sinkmap::publish::{self, Spec};
use sinkmap::{Error, Result};

use super::print_warnings;

#[derive(Args, Debug)]
pub struct FitArgs {
    /// Plot table (CSV with a header): one row per plot.
    pub plots: PathBuf,
    /// Column with the forest type.
    #[arg(long, default_value = "forest_type")]
    pub type_field: String,
    /// Column with the stand age (yr).
    #[arg(long, default_value = "age_yr")]
    pub age_field: String,
    /// Column with the density: carbon (t C/ha), or dry biomass (t/ha) with --biomass.
    #[arg(long, default_value = "density")]
    pub density_field: String,
    /// The density column is dry biomass: multiply by the carbon fraction.
    #[arg(long)]
    pub biomass: bool,
    /// Carbon fraction of dry matter (IPCC 2006 default 0.47).
    #[arg(long, default_value_t = 0.47)]
    pub carbon_fraction: f64,
    /// A species-specific carbon fraction, TYPE=F (repeatable), e.g. "Siberian spruce=0.4619".
    #[arg(long, value_parser = parse_type_fraction)]
    pub carbon_fraction_type: Vec<(String, f64)>,
    /// The densities are above ground only: expand by (1 + R) with this root:shoot ratio.
    #[arg(long)]
    pub root_shoot: Option<f64>,
    /// Output folder.
    #[arg(long, default_value = "out/fit")]
    pub out: PathBuf,
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn parse_type_fraction(s: &str) -> std::result::Result<(String, f64), String> {
    let (t, f) = s.rsplit_once('=').ok_or("expected TYPE=FRACTION")?;
    let f: f64 = f
        .trim()
        .parse()
        .map_err(|_| format!("'{f}' is not a number"))?;
    if !(f > 0.0 && f <= 1.0) {
        return Err(format!("carbon fraction {f} outside (0, 1]"));
    }
    Ok((t.trim().to_string(), f))
}

/// Largest root:shoot ratio `fit --root-shoot` accepts.
const MAX_ROOT_SHOOT: f64 = 10.0;

/// Runs `sinkmap fit`: checks the options, fits every form, publishes the tables and
/// forest.toml.
pub fn cmd_fit(a: FitArgs) -> Result<()> {
    if !(a.carbon_fraction > 0.0 && a.carbon_fraction <= 1.0) {
        return Err(Error::Usage(format!(
            "--carbon-fraction {} outside (0, 1]",
            a.carbon_fraction
        )));
    }
    if let Some(r) = a.root_shoot {
        // Root:shoot ratios of forests are 0.1–1 (IPCC 2006, vol. 4, table 4.4); 10 leaves
        // room for shrubland and grassland while catching a typo.
        if !(r.is_finite() && (0.0..=MAX_ROOT_SHOOT).contains(&r)) {
            return Err(Error::Usage(format!(
                "--root-shoot {r}: must be a ratio from 0 to {MAX_ROOT_SHOOT} (forests: 0.1–1)"
            )));
        }
    }
    let opts = sinkmap::fit::plots::PlotOptions {
        type_field: a.type_field,
        age_field: a.age_field,
        density_field: a.density_field,
        biomass: a.biomass,
        carbon_fraction: a.carbon_fraction,
        carbon_fraction_by_type: a.carbon_fraction_type.into_iter().collect(),
        root_shoot_ratio: a.root_shoot,
    };
    let plots = sinkmap::fit::plots::read_plots(&a.plots, &opts)?;
    let results = sinkmap::fit::plots::fit_all(&a.plots, &plots, &sinkmap::fit::Form::ALL)?;
    let spec = Spec {
        command: "fit",
        inputs: vec![("plots".into(), a.plots.clone())],
        scene_sha256: None,
        tile: None,
        produces: manifest::FIT_OUTPUTS,
        extend: None,
    };
    let written = publish::transact(&a.out, spec, |staging| {
        sinkmap::fit::plots::write_outputs(staging, &results, Some(&plots), &a.plots, &opts)
    })?;
    print_warnings(&written.warnings);
    if !a.quiet {
        for r in &results {
            let best = r.fits.iter().find(|f| Some(f.form) == r.best);
            match best {
                Some(f) => println!(
                    "{}: {} (n = {}, R² = {:.3}, RMSE = {:.2} t C/ha)",
                    r.forest_type,
                    f.form.name(),
                    f.n,
                    f.r_squared,
                    f.rmse
                ),
                None => println!("{}: no usable fit", r.forest_type),
            }
        }
        println!("fit table and forest.toml in {}", a.out.display());
    }
    Ok(())
}
