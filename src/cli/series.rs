//! `sinkmap series`: the annual history of a land-cover series.

use std::path::PathBuf;

use clap::Args;

use sinkmap::config::Scene;
use sinkmap::Result;

use super::{scene_zones, TuningArgs};

#[derive(Args, Debug)]
pub struct SeriesArgs {
    /// Scene file (TOML) with a [series] table.
    pub scene: PathBuf,
    /// First year to run (a year of the series; its events are then not applied).
    #[arg(long)]
    pub from: Option<i32>,
    /// Last year to run (a year of the series).
    #[arg(long)]
    pub to: Option<i32>,
    /// Skip the scene's [zones].
    #[arg(long)]
    pub no_zones: bool,
    /// Output folder.
    #[arg(long, default_value = "out/series")]
    pub out: PathBuf,
    #[command(flatten)]
    pub tuning: TuningArgs,
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `sinkmap series`.
pub fn cmd_series(a: SeriesArgs) -> Result<()> {
    let scene = Scene::load(&a.scene)?;
    let zones = if a.no_zones {
        None
    } else {
        scene_zones(&scene)?
    };
    let opts = sinkmap::series::SeriesOptions {
        from: a.from,
        to: a.to,
        tuning: a.tuning.tuning(),
    };
    let o = sinkmap::series::run(&scene, &opts, zones.as_ref(), &a.out)?;
    if !a.quiet {
        print!("{}", sinkmap::series::human(&o));
        println!(
            "  series.csv, series_transitions.csv and the age map in {}",
            a.out.display()
        );
    }
    Ok(())
}
