//! `sinkmap project`: a restoration project's additional sink, credits and value.

use std::path::PathBuf;

use clap::Args;

use sinkmap::config::Scene;
use sinkmap::manifest;
use sinkmap::publish::{self, Spec};
use sinkmap::Result;

use super::TuningArgs;

#[derive(Args, Debug)]
pub struct ProjectArgs {
    /// Project file (TOML).
    pub project: PathBuf,
    /// Output folder.
    #[arg(long, default_value = "out/project")]
    pub out: PathBuf,
    #[command(flatten)]
    pub tuning: TuningArgs,
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `sinkmap project`: the project file and its scene, published whole.
pub fn cmd_project(a: ProjectArgs) -> Result<()> {
    let spec = sinkmap::project::ProjectSpec::load(&a.project)?;
    let mut inputs = vec![("project".to_string(), a.project.clone())];
    if let Ok(scene) = Scene::load(&spec.scene) {
        inputs.extend(publish::scene_inputs(&scene, None)?);
    }
    if let Some(p) = &spec.polygon.path {
        if p.is_file() {
            inputs.push(("polygon".into(), p.clone()));
        }
    }
    let pub_spec = Spec {
        command: "project",
        inputs,
        scene_sha256: None,
        tile: None,
        produces: manifest::PROJECT_OUTPUTS,
        extend: None,
    };
    let (totals, _) = publish::transact(&a.out, pub_spec, |staging| {
        sinkmap::project::run(&spec, staging, &a.tuning.tuning())
    })?;
    if !a.quiet {
        print!("{}", sinkmap::project::human(&totals));
        println!("  project.csv and project.json in {}", a.out.display());
    }
    Ok(())
}
