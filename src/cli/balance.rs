//! `sinkmap balance`: the projection, Monte Carlo and emission balance from a saved cube.

use std::path::{Path, PathBuf};

use clap::Args;

use sinkmap::config::Scene;
use sinkmap::manifest;
use sinkmap::publish::{self, Spec};
use sinkmap::{Error, Result};

use super::{accounting_inputs, AccountingArgs, MAX_COMPONENTS};

#[derive(Args, Debug)]
pub struct BalanceArgs {
    /// Scene file (TOML) whose run produced the cube.
    pub scene: PathBuf,
    /// The cube (default: cube.csv in the scene's output folder).
    #[arg(long)]
    pub cube: Option<PathBuf>,
    /// Output folder (default: the scene's output_dir).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub accounting: AccountingArgs,
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `sinkmap balance`: projection and balance from a verified cube.
pub fn cmd_balance(a: BalanceArgs) -> Result<()> {
    let scene = Scene::load(&a.scene)?;
    let out = a.out.clone().unwrap_or_else(|| scene.output_dir.clone());
    let cube_path = a
        .cube
        .clone()
        .unwrap_or_else(|| scene.output_dir.join("cube.csv"));
    sinkmap::limits::check_threads(a.threads)?;
    let (cube_file, from_set) = verified_cube(&cube_path)?;
    let models = sinkmap::config::Models::load(&scene)?;
    let cube =
        sinkmap::cube::Cube::read_csv_checked(&cube_file, Some(&models)).map_err(|e| {
            match (cube_file.parent(), cube_path.parent()) {
                (Some(from), Some(to)) => publish::remap_paths(e, from, to),
                _ => e,
            }
        })?;
    if cube.cells.is_empty() {
        return Err(Error::invalid(
            &cube_path,
            "a header but no rows: nothing to project (an empty or truncated cube); rerun `sinkmap run`",
        ));
    }
    let opts = a
        .accounting
        .options(&scene, a.threads, true)
        .ok_or_else(|| Error::Usage("no accounting options".into()))?;
    let mut inputs = accounting_inputs(&scene, &opts);
    inputs.extend(publish::scene_inputs(&scene, None)?);
    inputs.push(("cube".into(), cube_file.clone()));
    sinkmap::limits::check_draws(
        opts.draws,
        cube.zone_names.len() + 1,
        (opts.until - scene.base_year + 1).max(1) as usize,
        MAX_COMPONENTS,
    )?;
    // Adding to the result the cube came from keeps that result's maps and tables.
    let extends = from_set.is_some() && from_set == publish::current_set(&out);
    // summary.json is kept: the accounting adds its headline to it (a new file).
    let keep = |n: &str| {
        n == "summary.json"
            || !manifest::ACCOUNTING_OUTPUTS.contains(&n) && !manifest::REPORT_OUTPUTS.contains(&n)
    };
    let spec = Spec {
        command: "balance",
        inputs,
        scene_sha256: Some(scene.sha256.clone()),
        tile: None,
        produces: manifest::ACCOUNTING_OUTPUTS,
        extend: extends.then_some(&keep as &dyn Fn(&str) -> bool),
    };
    let head = publish::transact(&out, spec, |staging| {
        sinkmap::accounting::run(&scene, &cube, staging, &opts)
    })?;
    if !a.quiet {
        print!("{}", sinkmap::accounting::human(&head));
        println!(
            "  trajectory.csv, sink_inputs.csv, balance.csv in {}",
            out.display()
        );
    }
    Ok(())
}

/// The cube to read: inside its result's set when that result has a manifest (verified, the
/// cube listed in it), else the file itself with a warning. Also returns the set folder.
pub fn verified_cube(cube_path: &Path) -> Result<(PathBuf, Option<PathBuf>)> {
    let dir = match cube_path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = cube_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let root = publish::result_root(&dir);
    if !root.join(manifest::FILE_NAME).is_file() {
        sinkmap::limits::check_input_path(cube_path)?;
        eprintln!(
            "warning: {}: no manifest.json beside the cube: it cannot be checked against the run that made it (only its structure is checked)",
            cube_path.display()
        );
        return Ok((cube_path.to_path_buf(), None));
    }
    let (root, m) = manifest::verify_result(&dir)?;
    if !m.outputs.iter().any(|o| o.name == name) {
        return Err(Error::invalid(
            cube_path,
            format!(
                "not listed in {}/manifest.json: it does not belong to that result",
                dir.display()
            ),
        ));
    }
    let set = publish::current_set(&dir);
    Ok((root.join(&name), set))
}
