//! `sinkmap run` and `sinkmap zonal`: a scene run, checked before the first pixel and
//! published whole.

use std::path::{Path, PathBuf};

use clap::Args;

use sinkmap::config::Scene;
use sinkmap::manifest;
use sinkmap::pipeline;
use sinkmap::publish::{self, Spec};
use sinkmap::zones::{ZoneSet, ZoneSource};
use sinkmap::{Error, Result};

use super::{
    accounting_inputs, print_warnings, read_zones, scene_zones, write_styles, AccountingArgs,
    Tuning, MAX_COMPONENTS,
};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Scene file (TOML). Default: the synthetic sample scene embedded in sinkmap (unpacked
    /// into the system's temporary folder), with outputs in out/sample under the current folder.
    pub scene: Option<PathBuf>,
    /// Skip the scene's [zones] even if it has one.
    #[arg(long)]
    pub no_zones: bool,
    /// Do not write report.html and the PNG maps and charts.
    #[arg(long)]
    pub no_report: bool,
    #[command(flatten)]
    pub tuning: Tuning,
    #[command(flatten)]
    pub accounting: AccountingArgs,
}

#[derive(Args, Debug)]
pub struct ZonalArgs {
    /// Scene file (TOML).
    pub scene: PathBuf,
    /// Polygon layer (GeoJSON, GeoPackage, Shapefile, FlatGeobuf, … anything OGR reads).
    #[arg(long)]
    pub zones: PathBuf,
    /// Field holding the zone id (unique).
    #[arg(long, default_value = "id")]
    pub id: String,
    /// Field holding the zone name.
    #[arg(long)]
    pub name: Option<String>,
    /// Layer name inside the file (default: the first layer).
    #[arg(long)]
    pub layer: Option<String>,
    /// Repair invalid polygons with a warning instead of stopping.
    #[arg(long)]
    pub repair_invalid: bool,
    #[command(flatten)]
    pub tuning: Tuning,
}

/// Runs `sinkmap run`: the scene (or the embedded sample), then the accounting and the
/// report when asked.
pub fn cmd_run(mut a: RunArgs) -> Result<()> {
    let path = match a.scene {
        Some(p) => p,
        None => {
            // The embedded sample: inputs unpacked outside the current folder, outputs
            // in out/sample under it (unless --out says otherwise).
            a.tuning
                .out
                .get_or_insert_with(|| PathBuf::from("out/sample"));
            sinkmap::embedded::sample_scene()?
        }
    };
    let scene = Scene::load(&path)?;
    let zones = if a.no_zones {
        None
    } else {
        scene_zones(&scene)?
    };
    let acc = a.accounting.options(&scene, a.tuning.threads, false);
    let zones = zones.as_ref();
    scene_run(
        "run",
        &scene,
        &a.tuning,
        zones,
        acc.as_ref(),
        |tuning, out| {
            let outcome = run_and_report(&scene, tuning, zones, out)?;
            if let Some(opts) = &acc {
                let head =
                    sinkmap::accounting::run(&scene, &outcome.cube, &outcome.output_dir, opts)?;
                if !a.tuning.quiet {
                    print!("{}", sinkmap::accounting::human(&head));
                }
            }
            if !a.no_report {
                // The report is part of the result: without it nothing is published.
                publish::with_neighbours(out, &outcome.output_dir, sinkmap::report::build)
                    .map_err(|e| {
                    Error::output(
                        outcome.output_dir.join("report.html"),
                        format!("report not written ({e}); nothing was published (--no-report publishes a result without it)"),
                    )
                })?;
                if !a.tuning.quiet {
                    println!("  report: {}", out.join("report.html").display())
                }
            }
            Ok(())
        },
    )
}

/// Runs `sinkmap zonal`: the scene run with another polygon layer as zones.
pub fn cmd_zonal(a: ZonalArgs) -> Result<()> {
    let scene = Scene::load(&a.scene)?;
    let zones = read_zones(
        &scene,
        &ZoneSource {
            path: &a.zones,
            layer: a.layer.as_deref(),
            id_field: &a.id,
            name_field: a.name.as_deref(),
            repair_invalid: a.repair_invalid,
        },
    )?;
    scene_run(
        "zonal",
        &scene,
        &a.tuning,
        Some(&zones),
        None,
        |tuning, out| run_and_report(&scene, tuning, Some(&zones), out).map(|_| ()),
    )
}

/// A scene run (`run`, `zonal`) checked before the first pixel and published whole: `work`
/// gets the tuning aimed at the staging folder and the final output folder (for messages).
pub fn scene_run<T>(
    command: &str,
    scene: &Scene,
    tuning: &Tuning,
    zones: Option<&ZoneSet>,
    acc: Option<&sinkmap::accounting::AccountingOptions>,
    work: impl FnOnce(&Tuning, &Path) -> Result<T>,
) -> Result<T> {
    let mut inputs = preflight(scene, tuning, zones, acc)?;
    inputs.extend(publish::scene_inputs(
        scene,
        zones.map(|z| z.path.as_path()),
    )?);
    let out = tuning
        .out
        .clone()
        .unwrap_or_else(|| scene.output_dir.clone());
    let spec = Spec {
        command,
        inputs,
        scene_sha256: Some(scene.sha256.clone()),
        tile: tuning.tile.map(|(i, n)| format!("{i}/{n}")),
        produces: manifest::RUN_OUTPUTS,
        extend: None,
    };
    publish::transact(&out, spec, |staging| {
        let mut staged = tuning.clone();
        staged.out = Some(staging.to_path_buf());
        work(&staged, &out)
    })
}

/// Checks of a scene run made before the first pixel is read: limits, the grid, the tiles,
/// and every accounting file (rollout, scenarios, uncertainty) against the zones. Returns the
/// accounting inputs.
pub fn preflight(
    scene: &Scene,
    tuning: &Tuning,
    zones: Option<&ZoneSet>,
    acc: Option<&sinkmap::accounting::AccountingOptions>,
) -> Result<Vec<(String, PathBuf)>> {
    sinkmap::limits::check_threads(tuning.threads)?;
    let grid = sinkmap::raster::reference_grid(&scene.landcover.path, scene.landcover.band)?;
    if let Some((_, n)) = tuning.tile {
        sinkmap::limits::check_tiles(n, grid.height)?;
    }
    let Some(o) = acc else {
        return Ok(Vec::new());
    };
    let ids: Vec<&str> = match zones {
        Some(z) => z.zones.iter().map(|z| z.id.as_str()).collect(),
        None => vec![sinkmap::cube::GRID_ZONE],
    };
    let exists = |z: &str| ids.contains(&z) || z == sinkmap::cube::OUTSIDE_ZONE;
    sinkmap::accounting::prepare(scene, o, &exists)?;
    sinkmap::limits::check_draws(
        o.draws,
        ids.len() + 2,
        (o.until - scene.base_year + 1).max(1) as usize,
        MAX_COMPONENTS,
    )?;
    Ok(accounting_inputs(scene, o))
}

pub fn run_and_report(
    scene: &Scene,
    tuning: &Tuning,
    zones: Option<&ZoneSet>,
    shown_dir: &Path,
) -> Result<pipeline::RunOutcome> {
    let outcome = pipeline::run(scene, &tuning.options(), zones)?;
    print_warnings(&outcome.warnings);
    for w in sinkmap::summary::warnings(&outcome.summary) {
        eprintln!("warning: {w}");
    }
    write_styles(&outcome.output_dir);
    if !tuning.quiet {
        print!("{}", sinkmap::summary::human(&outcome.summary));
        println!("  outputs in {}", shown_dir.display());
    }
    Ok(outcome)
}
