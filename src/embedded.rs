//! What the binary carries with it: the model files of `models/` and the synthetic sample
//! scene, so that an installed `sinkmap` runs in any folder.
//!
//! A scene without `models_dir` reads its models from [`EMBEDDED_MODELS_DIR`], a virtual
//! folder: [`crate::io::files::read_toml`], [`crate::io::files::sha256_file`] and
//! [`crate::io::files::file_exists`] look paths under it up here instead of on the disk, so every
//! output records the embedded files under that name with their SHA-256.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The virtual folder of the embedded models, as recorded in the outputs' provenance.
pub const EMBEDDED_MODELS_DIR: &str = "<embedded>/models";

/// The model files, by path relative to the models folder (the same layout as `models/`).
pub const MODEL_FILES: &[(&str, &str)] = &[
    ("desert.toml", include_str!("../models/desert.toml")),
    (
        "emissions/xinjiang.toml",
        include_str!("../models/emissions/xinjiang.toml"),
    ),
    ("events.toml", include_str!("../models/events.toml")),
    ("forest.toml", include_str!("../models/forest.toml")),
    (
        "other_classes.toml",
        include_str!("../models/other_classes.toml"),
    ),
    (
        "restoration.toml",
        include_str!("../models/restoration.toml"),
    ),
    (
        "schemes/clcd.toml",
        include_str!("../models/schemes/clcd.toml"),
    ),
    (
        "schemes/esa_worldcover.toml",
        include_str!("../models/schemes/esa_worldcover.toml"),
    ),
    (
        "schemes/modis_igbp.toml",
        include_str!("../models/schemes/modis_igbp.toml"),
    ),
    (
        "uncertainty.toml",
        include_str!("../models/uncertainty.toml"),
    ),
];

/// The sample scene's files, by path relative to the scene's root (`rasters/sample/…`,
/// `vectors/…`), exactly as `sinkmap synth --sample` writes them.
pub const SAMPLE_FILES: &[(&str, &[u8])] = &[
    (
        "rasters/sample/scene.toml",
        include_bytes!("../rasters/sample/scene.toml"),
    ),
    (
        "rasters/sample/landcover.tif",
        include_bytes!("../rasters/sample/landcover.tif"),
    ),
    (
        "rasters/sample/forest_age.tif",
        include_bytes!("../rasters/sample/forest_age.tif"),
    ),
    (
        "rasters/sample/forest_type.tif",
        include_bytes!("../rasters/sample/forest_type.tif"),
    ),
    (
        "rasters/sample/desert_subtype.tif",
        include_bytes!("../rasters/sample/desert_subtype.tif"),
    ),
    (
        "rasters/sample/water_access.tif",
        include_bytes!("../rasters/sample/water_access.tif"),
    ),
    (
        "rasters/sample/degraded_grassland.tif",
        include_bytes!("../rasters/sample/degraded_grassland.tif"),
    ),
    (
        "rasters/sample/rollout.toml",
        include_bytes!("../rasters/sample/rollout.toml"),
    ),
    (
        "rasters/sample/project_grazing_exclusion.toml",
        include_bytes!("../rasters/sample/project_grazing_exclusion.toml"),
    ),
    (
        "vectors/sample_zones.geojson",
        include_bytes!("../vectors/sample_zones.geojson"),
    ),
];

/// The default models folder of a scene that names none.
pub fn embedded_models_dir() -> PathBuf {
    PathBuf::from(EMBEDDED_MODELS_DIR)
}

/// How the outputs name a models folder: its path, or that the models are the embedded ones.
pub fn models_dir_label(dir: &Path) -> String {
    if is_embedded(dir) {
        format!("embedded in sinkmap {}", env!("CARGO_PKG_VERSION"))
    } else {
        dir.display().to_string()
    }
}

/// Whether `path` is (inside) the embedded models folder.
pub fn is_embedded(path: &Path) -> bool {
    path.starts_with(EMBEDDED_MODELS_DIR)
}

/// The text of an embedded model file, or None when `path` is not under the embedded folder
/// or names no embedded file.
pub fn model_text(path: &Path) -> Option<&'static str> {
    let rel = path.strip_prefix(EMBEDDED_MODELS_DIR).ok()?;
    MODEL_FILES
        .iter()
        .find(|(name, _)| Path::new(name) == rel)
        .map(|(_, text)| *text)
}

/// Writes a copy of the embedded models into `dir` (creating it), refusing to overwrite an
/// existing file. Returns the files written.
pub fn write_models(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (name, text) in MODEL_FILES {
        let p = dir.join(name);
        write_new(&p, text.as_bytes())?;
        written.push(p);
    }
    Ok(written)
}

fn write_new(p: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    if p.exists() {
        return Err(Error::invalid(
            p,
            "already exists; not overwritten (remove it or choose another folder)",
        ));
    }
    std::fs::write(p, bytes).map_err(|e| Error::io(p, e))
}

/// The sample scene unpacked once into a folder of the system's temporary directory named by
/// the SHA-256 of its content (so nothing is written in the current folder, and a new version
/// never reads an old copy). Returns the scene file's path.
pub fn sample_scene() -> Result<PathBuf> {
    let mut h = Sha256::new();
    for (name, bytes) in SAMPLE_FILES {
        h.update(name.as_bytes());
        h.update(bytes);
    }
    let tag = format!("{:x}", h.finalize());
    let root = std::env::temp_dir().join(format!("sinkmap-sample-{}", &tag[..16]));
    let scene = root.join("rasters/sample/scene.toml");
    if scene.is_file() {
        return Ok(scene);
    }
    // Unpack into a private folder, then rename: two runs starting together never read a
    // half-written copy.
    let staging = std::env::temp_dir().join(format!(
        "sinkmap-sample-{}.partial-{}",
        &tag[..16],
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&staging);
    for (name, bytes) in SAMPLE_FILES {
        let p = staging.join(name);
        if *name == "rasters/sample/scene.toml" {
            let text = sample_scene_text(bytes);
            write_new(&p, text.as_bytes())?;
        } else {
            write_new(&p, bytes)?;
        }
    }
    match std::fs::rename(&staging, &root) {
        Ok(()) => {}
        // Another run finished first: use its copy.
        Err(_) if scene.is_file() => {
            let _ = std::fs::remove_dir_all(&staging);
        }
        Err(e) => return Err(Error::io(&root, e)),
    }
    Ok(scene)
}

/// The committed sample scene reads the repository's `models/`; the unpacked copy uses the
/// embedded models instead (its `models_dir` line is dropped).
fn sample_scene_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.trim_start().starts_with("models_dir"))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of `models/` is embedded, byte for byte (a new model file must be added to
    /// MODEL_FILES).
    #[test]
    fn every_model_file_is_embedded_verbatim() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let mut on_disk = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    on_disk.push(p);
                }
            }
        }
        assert_eq!(on_disk.len(), MODEL_FILES.len());
        for p in on_disk {
            let rel = p.strip_prefix(&root).unwrap();
            let text = model_text(&embedded_models_dir().join(rel))
                .unwrap_or_else(|| panic!("{} is not embedded", rel.display()));
            assert_eq!(text, std::fs::read_to_string(&p).unwrap());
        }
    }

    #[test]
    fn paths_outside_the_embedded_folder_are_not_embedded() {
        assert!(model_text(Path::new("models/forest.toml")).is_none());
        assert!(model_text(Path::new("<embedded>/models/nope.toml")).is_none());
        assert!(is_embedded(Path::new(
            "<embedded>/models/schemes/clcd.toml"
        )));
    }

    #[test]
    fn unpacked_sample_scene_drops_only_models_dir() {
        let t =
            sample_scene_text(b"name = \"x\"\nmodels_dir = \"../../models\"\noutput_dir = \"o\"\n");
        assert_eq!(t, "name = \"x\"\noutput_dir = \"o\"\n");
    }
}
