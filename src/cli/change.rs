//! `sinkmap change`: land-cover change between two years.

use std::path::PathBuf;

use clap::Args;

use sinkmap::config::Scene;
use sinkmap::manifest;
use sinkmap::publish::{self, Spec};
use sinkmap::{Error, Result};

use super::{publish_styled, scene_zones, TuningArgs};

#[derive(Args, Debug)]
pub struct ChangeArgs {
    /// Scene file (TOML): models, zones, forest-type and desert-subtype layers.
    pub scene: PathBuf,
    /// Land cover of the first year (the reference grid).
    #[arg(long)]
    pub before: PathBuf,
    /// Land cover of the second year (aligned to the first).
    #[arg(long)]
    pub after: PathBuf,
    /// Scheme of the after raster when it differs (a name of models/schemes or a .toml file).
    #[arg(long)]
    pub after_scheme: Option<String>,
    /// Forest age (yr) in the first year.
    #[arg(long)]
    pub age_before: Option<PathBuf>,
    /// Forest age (yr) in the second year.
    #[arg(long)]
    pub age_after: Option<PathBuf>,
    /// The two years, e.g. --years 2000 2020.
    #[arg(long, num_args = 2, value_names = ["BEFORE", "AFTER"])]
    pub years: Vec<i32>,
    /// Price per t C (InVEST valuation; yuan).
    #[arg(long, default_value_t = 0.0)]
    pub price_per_tc: f64,
    /// Discount rate (percent per year).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub discount_rate: f64,
    /// Annual change of the price (percent per year).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub rate_change: f64,
    /// Skip the scene's [zones].
    #[arg(long)]
    pub no_zones: bool,
    #[arg(long, default_value = "out/change")]
    pub out: PathBuf,
    #[command(flatten)]
    pub tuning: TuningArgs,
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `sinkmap change`: checks the options, then the change pass, published whole.
pub fn cmd_change(a: ChangeArgs) -> Result<()> {
    let scene = Scene::load(&a.scene)?;
    let [yb, ya] = a.years[..] else {
        return Err(Error::Usage("--years BEFORE AFTER is required".into()));
    };
    let zones = if a.no_zones {
        None
    } else {
        scene_zones(&scene)?
    };
    let spec = sinkmap::change::ChangeSpec {
        before: a.before,
        after: a.after,
        after_scheme: a.after_scheme,
        age_before: a.age_before,
        age_after: a.age_after,
        year_before: yb,
        year_after: ya,
        price_per_tc: a.price_per_tc,
        discount_rate_percent: a.discount_rate,
        rate_change_percent: a.rate_change,
        tuning: a.tuning.tuning(),
    };
    for (what, v) in [
        ("--discount-rate", spec.discount_rate_percent),
        ("--rate-change", spec.rate_change_percent),
    ] {
        if !(v.is_finite() && v > -100.0) {
            return Err(Error::Usage(format!(
                "{what} {v} %: must be a number above −100 % (at −100 % every future value is infinite)"
            )));
        }
    }
    if !(spec.price_per_tc.is_finite() && spec.price_per_tc >= 0.0) {
        return Err(Error::Usage(format!(
            "--price-per-tc {}: must be a finite number ≥ 0",
            spec.price_per_tc
        )));
    }
    let mut inputs = publish::scene_inputs(&scene, zones.as_ref().map(|z| z.path.as_path()))?;
    inputs.retain(|(role, _)| role != "landcover" && role != "forest_age");
    inputs.push(("before".into(), spec.before.clone()));
    inputs.push(("after".into(), spec.after.clone()));
    for p in [&spec.age_before, &spec.age_after].into_iter().flatten() {
        inputs.push(("age".into(), p.clone()));
    }
    let pub_spec = Spec {
        command: "change",
        inputs,
        scene_sha256: Some(scene.sha256.clone()),
        tile: None,
        produces: manifest::CHANGE_OUTPUTS,
        extend: None,
    };
    let s = publish_styled(&a.out, pub_spec, |staging| {
        sinkmap::change::run(&scene, &spec, zones.as_ref(), staging)
    })?;
    if !a.quiet {
        print!("{}", sinkmap::change::human(&s));
        println!("  outputs in {}", a.out.display());
    }
    Ok(())
}
