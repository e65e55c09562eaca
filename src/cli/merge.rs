//! `sinkmap merge`: the partial outputs of `run --tile I/N` combined into one result.

use std::path::PathBuf;

use clap::Args;

use sinkmap::config::Scene;
use sinkmap::manifest;
use sinkmap::publish::{self, Spec};
use sinkmap::{Error, Result};

use super::{compression_of, layout_of, publish_styled, scene_zones, CompressionArg, LayoutArg};

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Scene file (TOML) the tiles were computed from.
    pub scene: PathBuf,
    /// Output folders of the tiles (`run --tile I/N --out DIR`, or `series --tile I/N --out
    /// DIR`), all N of them.
    #[arg(required = true)]
    pub parts: Vec<PathBuf>,
    /// Output folder of the merged result.
    #[arg(long)]
    pub out: PathBuf,
    /// Skip the scene's [zones].
    #[arg(long)]
    pub no_zones: bool,
    #[arg(long, value_enum)]
    pub layout: Option<LayoutArg>,
    #[arg(long, value_enum)]
    pub compression: Option<CompressionArg>,
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `sinkmap merge`: verifies the parts, merges them, publishes the result.
pub fn cmd_merge(a: MergeArgs) -> Result<()> {
    let scene = Scene::load(&a.scene)?;
    if a.parts[0].join(sinkmap::series::PART_FILE).is_file() {
        return merge_series(&scene, &a);
    }
    let zones = if a.no_zones {
        None
    } else {
        scene_zones(&scene)?
    };
    let (roots, mut inputs) = verified_parts(&a.parts)?;
    inputs.extend(publish::scene_inputs(
        &scene,
        zones.as_ref().map(|z| z.path.as_path()),
    )?);
    let spec = Spec {
        command: "merge",
        inputs,
        scene_sha256: Some(scene.sha256.clone()),
        tile: None,
        produces: manifest::RUN_OUTPUTS,
        extend: None,
    };
    let summary = publish_styled(&a.out, spec, |staging| {
        sinkmap::merge::merge(
            &scene,
            &roots,
            staging,
            zones.as_ref(),
            a.layout.map(layout_of),
            a.compression.map(compression_of),
        )
    })?;
    if !a.quiet {
        print!("{}", sinkmap::summary::human(&summary));
        println!("  merged {} tiles into {}", a.parts.len(), a.out.display());
    }
    Ok(())
}

/// Merges the parts of `sinkmap series --tile I/N` (see [`sinkmap::series::merge`]).
fn merge_series(scene: &Scene, a: &MergeArgs) -> Result<()> {
    // Published whole like the parts (each part's table is an input, read through its set).
    let mut inputs = publish::scene_inputs(scene, None)?;
    for p in &a.parts {
        inputs.push((
            format!("part {}", p.display()),
            p.join(sinkmap::series::PART_FILE),
        ));
    }
    let spec = Spec {
        command: "series",
        inputs,
        scene_sha256: Some(scene.sha256.clone()),
        tile: None,
        produces: manifest::SERIES_OUTPUTS,
        extend: None,
    };
    super::series::publish_series(
        &a.out,
        spec,
        a.quiet,
        &format!("merged {} series tiles into", a.parts.len()),
        |staging| sinkmap::series::merge(scene, &a.parts, staging),
    )
}

/// (role, path) of files a command reads.
pub type Inputs = Vec<(String, PathBuf)>;

/// The part folders of a merge, each verified against its manifest and all made from the
/// same inputs; returns their set folders and their files as inputs.
pub fn verified_parts(parts: &[PathBuf]) -> Result<(Vec<PathBuf>, Inputs)> {
    let mut roots = Vec::new();
    let mut inputs = Vec::new();
    let mut first: Option<(PathBuf, manifest::Manifest)> = None;
    for dir in parts {
        let (root, m) = manifest::verify_result(dir)?;
        if m.tile.is_none() {
            return Err(Error::invalid(
                dir,
                "not a tile result (its manifest has no tile): make it with `sinkmap run --tile I/N`",
            ));
        }
        if let Some((d0, m0)) = &first {
            let key = |m: &manifest::Manifest| -> Vec<(String, String, String)> {
                let mut v: Vec<_> = m
                    .inputs
                    .iter()
                    .filter(|f| f.role != "scene")
                    .map(|f| (f.role.clone(), f.path.clone(), f.sha256.clone()))
                    .collect();
                v.sort();
                v
            };
            let (k0, k) = (key(m0), key(&m));
            if m.scene_sha256 != m0.scene_sha256 || k0 != k {
                let what = k
                    .iter()
                    .find(|x| !k0.contains(x))
                    .or_else(|| k0.iter().find(|x| !k.contains(x)))
                    .map(|(role, path, _)| format!("the {role} input {path} differs"))
                    .unwrap_or_else(|| "the scene file differs".into());
                return Err(Error::invalid(
                    dir,
                    format!(
                        "this part and {} were made from different inputs ({what}); rerun the parts from the same scene and rasters",
                        d0.display()
                    ),
                ));
            }
        } else {
            first = Some((dir.clone(), m.clone()));
        }
        for o in &m.outputs {
            if !o.name.contains('/') {
                inputs.push((format!("part {}", dir.display()), root.join(&o.name)));
            }
        }
        roots.push(root);
    }
    Ok((roots, inputs))
}
