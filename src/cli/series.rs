//! `sinkmap series`: the annual history of a land-cover series.

use std::path::{Path, PathBuf};

use clap::Args;

use sinkmap::config::Scene;
use sinkmap::manifest;
use sinkmap::publish::{self, Spec};
use sinkmap::{Error, Result};

use super::{parse_tile, publish_styled, scene_zones, TuningArgs};

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
    /// Per-year maps besides the last year's age map, comma-separated: stock
    /// (stock_tc_per_ha_YEAR.tif), net (net_flux_tco2_per_ha_YEAR.tif, from the second
    /// year), age (forest_age_YEAR.tif). Each gets a QGIS style (.qml) beside it.
    #[arg(long, value_parser = parse_series_maps)]
    pub maps: Option<SeriesMapList>,
    /// Compute only row band I of N (e.g. 2/8) into --out; `sinkmap merge SCENE PARTS…`
    /// combines the N parts into the result of a single run.
    #[arg(long, value_parser = parse_tile)]
    pub tile: Option<(usize, usize)>,
    /// Run every pixel on its own instead of once per distinct history of a block (the
    /// reference path, for comparisons; same results, slower).
    #[arg(long, hide = true)]
    pub naive: bool,
    #[command(flatten)]
    pub tuning: TuningArgs,
    #[arg(long, short)]
    pub quiet: bool,
}

/// The per-year maps of `series --maps` (one argument, a comma-separated list).
#[derive(Debug, Clone)]
pub struct SeriesMapList(Vec<sinkmap::series::SeriesMap>);

fn parse_series_maps(s: &str) -> std::result::Result<SeriesMapList, String> {
    sinkmap::series::SeriesMap::parse_list(s).map(SeriesMapList)
}

/// Runs `sinkmap series`.
pub fn cmd_series(a: SeriesArgs) -> Result<()> {
    let scene = Scene::load(&a.scene)?;
    let zones = if a.no_zones {
        None
    } else {
        scene_zones(&scene)?
    };
    if let (Some(f), Some(t)) = (a.from, a.to) {
        if f > t {
            return Err(Error::Usage(format!(
                "--from {f} is after --to {t}: give the earlier year first"
            )));
        }
    }
    let opts = sinkmap::series::SeriesOptions {
        from: a.from,
        to: a.to,
        tuning: a.tuning.tuning(),
        maps: a.maps.map(|m| m.0).unwrap_or_default(),
        tile: a.tile,
        naive: a.naive,
        memo_max_histories: None,
    };
    // Every year's land cover and events are found and read before anything is replaced.
    let mut inputs = publish::scene_inputs(&scene, zones.as_ref().map(|z| z.path.as_path()))?;
    let mut age_map = String::new();
    if let Some(s) = &scene.series {
        let r = sinkmap::series::resolve(&scene, s, &opts)?;
        sinkmap::series::check_models(&scene, s)?;
        inputs.extend(r.landcover.iter().map(|p| ("landcover".into(), p.clone())));
        inputs.extend(
            r.events
                .iter()
                .flatten()
                .map(|p| ("events".into(), p.clone())),
        );
        inputs.push(("event_table".into(), r.event_table.clone()));
        age_map = format!("forest_age_{}.tif", r.years.last().copied().unwrap_or(0));
    }
    let mut produces = manifest::SERIES_OUTPUTS.to_vec();
    produces.push(&age_map);
    let spec = Spec {
        command: "series",
        inputs,
        scene_sha256: Some(scene.sha256.clone()),
        tile: a.tile.map(|(i, n)| format!("{i}/{n}")),
        produces: &produces,
        extend: None,
    };
    publish_series(
        &a.out,
        spec,
        a.quiet,
        "series.csv, series_transitions.csv, cube.csv and the maps in",
        |staging| sinkmap::series::run(&scene, &opts, zones.as_ref(), staging),
    )
}

/// Publishes a series result (a run or a merge of parts) that `work` writes, with its
/// styles, and tells what it wrote (`written`, followed by the folder) unless `quiet`.
pub fn publish_series(
    out: &Path,
    spec: Spec,
    quiet: bool,
    written: &str,
    work: impl FnOnce(&Path) -> Result<sinkmap::series::SeriesOutcome>,
) -> Result<()> {
    let o = publish_styled(out, spec, work)?;
    if !quiet {
        print!("{}", sinkmap::series::human(&o));
        println!("  {written} {}", out.display());
    }
    Ok(())
}
