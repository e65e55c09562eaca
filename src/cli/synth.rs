//! `sinkmap synth`: a synthetic scene of any size, seeded and deterministic.

use std::path::{Path, PathBuf};

use clap::Args;

use sinkmap::manifest;
use sinkmap::publish::{self, Spec};
use sinkmap::synth::{self, SynthSpec};
use sinkmap::{Error, Result};

#[derive(Args, Debug)]
pub struct SynthArgs {
    /// Folder for the scene (rasters, zones.geojson, scene.toml).
    #[arg(long, default_value = "rasters/synth")]
    pub out: PathBuf,
    /// Regenerate the embedded sample scene under rasters/sample and vectors/ (run from the project root).
    #[arg(long)]
    pub sample: bool,
    #[arg(long, default_value_t = 2000)]
    pub width: usize,
    #[arg(long, default_value_t = 1500)]
    pub height: usize,
    #[arg(long, default_value_t = 2060)]
    pub seed: u64,
    /// Longitude of the upper-left corner (degrees).
    #[arg(long, default_value_t = 80.0, allow_negative_numbers = true)]
    pub lon0: f64,
    /// Latitude of the upper-left corner (degrees).
    #[arg(long, default_value_t = 48.0, allow_negative_numbers = true)]
    pub lat0: f64,
    /// Pixel size in degrees (0.00025° ≈ 30 m at 44°N... in latitude; ~20 m in longitude).
    #[arg(long, default_value_t = 0.005)]
    pub pixel_deg: f64,
    /// Models folder as written into scene.toml (relative to the scene folder). Default: none,
    /// so the scene uses the models embedded in sinkmap and runs wherever it is moved.
    #[arg(long)]
    pub models_dir: Option<String>,
    /// Output folder as written into scene.toml (relative to the scene folder).
    #[arg(long, default_value = "out")]
    pub output_dir: String,
    /// Texture of 30-m classified imagery (ragged edges, 11 × 7 px field parcels, 2 % speckle,
    /// ages by stand) and 26 zones, as `sinkmap bench` uses, instead of the smooth sample look.
    #[arg(long)]
    pub field_texture: bool,
    /// Also write a SYNTHETIC annual series Y0..Y1 (land cover per year with a few per cent
    /// of pixels changing class once, fire rasters) and add a [series] table to scene.toml,
    /// for `sinkmap series`. Example: --years 2018..2022
    #[arg(long, value_parser = parse_years)]
    pub years: Option<(i32, i32)>,
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn parse_years(s: &str) -> std::result::Result<(i32, i32), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or("expected Y0..Y1, e.g. 2018..2022")?;
    let y = |t: &str| t.trim().parse::<i32>().map_err(|e| format!("'{t}': {e}"));
    Ok((y(a)?, y(b)?))
}

/// Runs `sinkmap synth`: the sample scene or a synthetic scene of any size.
pub fn cmd_synth(a: SynthArgs) -> Result<()> {
    let spec = if a.sample {
        SynthSpec::sample(Path::new("."))
    } else {
        SynthSpec {
            dir: a.out.clone(),
            width: a.width,
            height: a.height,
            seed: a.seed,
            lon0: a.lon0,
            lat0: a.lat0,
            pixel_deg: a.pixel_deg,
            zones_path: None,
            models_dir_in_scene: a.models_dir.clone(),
            output_dir_in_scene: a.output_dir.clone(),
            zones_path_in_scene: None,
            base_year: 2020,
            with_accounting: false,
            field_texture: a.field_texture,
            name: format!(
                "synthetic {}x{} seed {} (SYNTHETIC)",
                a.width, a.height, a.seed
            ),
        }
    };
    // Every argument is checked before the folder is touched.
    spec.check()?;
    if let Some(m) = &a.models_dir {
        let dir = sinkmap::config::normalize(&spec.dir.join(m));
        if !dir.is_dir() {
            return Err(Error::Usage(format!(
                "--models-dir {m}: no such folder ({} seen from the scene folder); give a folder of models (see `sinkmap init`) or leave it out to use the embedded models",
                dir.display()
            )));
        }
    }
    let progress = !a.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let make = |spec: &SynthSpec| -> Result<PathBuf> {
        let scene = synth::generate(spec, progress)?;
        if let Some((y0, y1)) = a.years {
            sinkmap::series::synth::add_years(&scene, y0, y1, spec.seed)?;
        }
        Ok(scene)
    };
    let scene = if a.sample {
        // The committed sample under rasters/ and vectors/ of the project: plain files.
        make(&spec)?
    } else {
        // Published whole into --out (a failure leaves the previous scene there).
        let out = spec.dir.clone();
        let produce = |staging: &Path| -> Result<PathBuf> {
            let mut staged = SynthSpec {
                dir: staging.to_path_buf(),
                ..spec.clone()
            };
            // A relative models folder is relative to the final folder, not to the staging
            // set: named absolutely while the series reads the models, then written back as
            // given.
            let rel = staged
                .models_dir_in_scene
                .clone()
                .filter(|m| Path::new(m).is_relative());
            if let Some(m) = &rel {
                let abs = std::path::absolute(&out)
                    .map_err(|e| Error::io(&out, e))?
                    .join(m);
                staged.models_dir_in_scene = Some(
                    sinkmap::config::normalize(&abs)
                        .to_string_lossy()
                        .into_owned(),
                );
            }
            let scene = make(&staged)?;
            if let (Some(m), Some(abs)) = (&rel, &staged.models_dir_in_scene) {
                let text = std::fs::read_to_string(&scene).map_err(|e| Error::io(&scene, e))?;
                let text = text.replacen(
                    &format!("models_dir = \"{abs}\""),
                    &format!("models_dir = \"{m}\""),
                    1,
                );
                std::fs::write(&scene, text).map_err(|e| Error::io(&scene, e))?;
            }
            Ok(out.join("scene.toml"))
        };
        let pub_spec = Spec {
            command: "synth",
            inputs: Vec::new(),
            scene_sha256: None,
            tile: None,
            produces: manifest::SYNTH_OUTPUTS,
            extend: None,
        };
        publish::transact(&out, pub_spec, produce)?
    };
    if !a.quiet {
        println!("wrote {}", scene.display());
    }
    Ok(())
}
