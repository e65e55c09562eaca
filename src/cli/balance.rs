//! `sinkmap balance`: the projection, Monte Carlo and emission balance from a saved cube.

use std::path::{Path, PathBuf};

use clap::Args;

use sinkmap::accounting::emissions::EmissionFile;
use sinkmap::accounting::history;
use sinkmap::accounting::rows::{read_balance, read_trajectory};
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
    /// A `sinkmap series` output folder of this scene: project from its last year's cube
    /// (from the year after its last year) and write history_projection.csv and .png — the
    /// series' annual net flux followed by the projection, beside the reported emissions
    /// and the scenarios (docs/science.md §7.1). Default --out: DIR/balance.
    #[arg(long, value_name = "DIR", conflicts_with = "cube")]
    pub series: Option<PathBuf>,
    /// Output folder (default: the scene's output_dir; with --series, DIR/balance).
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
    let history = a
        .series
        .as_deref()
        .map(|d| SeriesHistory::open(&scene, d))
        .transpose()?;
    // A projection from a series starts on 1 January after its last year (science.md §7.1).
    let scene = match &history {
        Some(h) => Scene {
            base_year: h.last_year + 1,
            ..scene
        },
        None => scene,
    };
    let (out, cube_path) = match &history {
        Some(h) => (
            a.out.clone().unwrap_or_else(|| h.dir.join("balance")),
            h.dir.join("cube.csv"),
        ),
        None => (
            a.out.clone().unwrap_or_else(|| scene.output_dir.clone()),
            a.cube
                .clone()
                .unwrap_or_else(|| scene.output_dir.join("cube.csv")),
        ),
    };
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
    if let Some(h) = &history {
        inputs.push(("series".into(), h.file.clone()));
    }
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
            || !manifest::ACCOUNTING_OUTPUTS.contains(&n)
                && !manifest::REPORT_OUTPUTS.contains(&n)
                && !manifest::HISTORY_OUTPUTS.contains(&n)
    };
    let mut produces = manifest::ACCOUNTING_OUTPUTS.to_vec();
    if history.is_some() {
        produces.extend(manifest::HISTORY_OUTPUTS);
    }
    let spec = Spec {
        command: "balance",
        inputs,
        scene_sha256: Some(scene.sha256.clone()),
        tile: None,
        produces: &produces,
        extend: extends.then_some(&keep as &dyn Fn(&str) -> bool),
    };
    let (head, joined) = publish::transact(&out, spec, |staging| {
        let head = sinkmap::accounting::run(&scene, &cube, staging, &opts)?;
        let joined = match &history {
            Some(h) => Some(h.write(&scene, &opts, staging)?),
            None => None,
        };
        Ok((head, joined))
    })?;
    if !a.quiet {
        print!("{}", sinkmap::accounting::human(&head));
        println!(
            "  trajectory.csv, sink_inputs.csv, balance.csv in {}",
            out.display()
        );
        if let Some(j) = joined {
            print!("{j}");
        }
    }
    Ok(())
}

/// A series result read back for `balance --series`: its folder, its `series.csv` (verified
/// through the result's manifest when it has one), the whole grid's rows checked against
/// the scene's `[series]` years, and its last year.
struct SeriesHistory {
    /// The folder as the user named it.
    dir: PathBuf,
    /// `series.csv` inside the result's published set (or the folder itself).
    file: PathBuf,
    /// `series.csv` as the user would name it (for messages).
    named: PathBuf,
    rows: Vec<history::SeriesRow>,
    scene_years: Vec<i32>,
    last_year: i32,
}

impl SeriesHistory {
    /// Opens and checks the series result in `dir`: made by `sinkmap series` (not a tile
    /// part) of this very scene, with a series.csv whose years are the scene's.
    fn open(scene: &Scene, dir: &Path) -> Result<SeriesHistory> {
        let spec = scene.series.as_ref().ok_or_else(|| {
            Error::invalid(
                &scene.source_path,
                format!(
                    "--series {}: the scene has no [series] table, so no series result belongs to it",
                    dir.display()
                ),
            )
        })?;
        let named = dir.join("series.csv");
        let root = publish::result_root(dir);
        let file = if root.join(manifest::FILE_NAME).is_file() {
            let (root, m) = manifest::verify_result(dir)?;
            if m.command != "series" {
                return Err(Error::invalid(
                    dir,
                    format!(
                        "holds the result of `sinkmap {}`, not of `sinkmap series`",
                        m.command
                    ),
                ));
            }
            if let Some(t) = &m.tile {
                return Err(Error::invalid(
                    dir,
                    format!(
                        "only part {t} of a tiled series: merge the parts first (`sinkmap merge`)"
                    ),
                ));
            }
            if let Some(sha) = m.scene_sha256.as_deref().filter(|s| *s != scene.sha256) {
                return Err(Error::invalid(
                    dir,
                    format!(
                        "a series of another scene: its manifest.json names a scene with SHA-256 {}…, but {} has {}… (rerun `sinkmap series` with this scene)",
                        sha.get(..12).unwrap_or(sha),
                        scene.source_path.display(),
                        scene.sha256.get(..12).unwrap_or(&scene.sha256)
                    ),
                ));
            }
            root.join("series.csv")
        } else {
            eprintln!(
                "warning: {}: no manifest.json: the series cannot be checked against the scene that made it (only its years are checked)",
                dir.display()
            );
            named.clone()
        };
        if !file.is_file() {
            return Err(Error::invalid(
                &named,
                "missing: not the output folder of `sinkmap series`",
            ));
        }
        sinkmap::limits::check_input_path(&file)?;
        let rows = history::read_series(&file).map_err(|e| publish::remap_paths(e, &root, dir))?;
        let scene_years =
            sinkmap::series::resolve(scene, spec, &sinkmap::series::SeriesOptions::default())?
                .years;
        let last_year = history::checked_grid_rows(&named, &rows, Some(&scene_years))?
            .last()
            .map(|r| r.year)
            .unwrap_or(scene.base_year);
        Ok(SeriesHistory {
            dir: dir.to_path_buf(),
            file,
            named,
            rows,
            scene_years,
            last_year,
        })
    }

    /// Joins the series with the projection the accounting wrote into `staging` and writes
    /// `history_projection.csv` and its chart there; returns a line for people.
    fn write(
        &self,
        scene: &Scene,
        opts: &sinkmap::accounting::AccountingOptions,
        staging: &Path,
    ) -> Result<String> {
        let traj = read_trajectory(&staging.join("trajectory.csv"))?;
        let balance = read_balance(&staging.join("balance.csv"))?;
        let em = EmissionFile::load(
            &history::scenarios_path(scene, opts),
            scene.base_year,
            opts.until,
        )?;
        let rows = history::join(&self.named, &self.rows, Some(&self.scene_years), &traj, &em)?;
        history::write(&staging.join(history::FILE_NAME), &rows)?;
        sinkmap::report::history::chart(&staging.join(history::CHART_NAME), &rows, &balance)?;
        let first = rows.first().map(|r| r.year).unwrap_or(0);
        Ok(format!(
            "  history {first}–{} (series) + projection {}–{}: {} and {}\n",
            self.last_year,
            self.last_year + 1,
            opts.until,
            history::FILE_NAME,
            history::CHART_NAME
        ))
    }
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
