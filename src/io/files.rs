//! Configuration files as text: TOML parsing with line numbers, existence and SHA-256 of a
//! file, each also for the models embedded in the binary.

use std::path::Path;

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Reads a configuration file; a missing one is a configuration error (a scene or model
/// file names it), other failures are the environment's.
fn read_text(path: &Path) -> Result<String> {
    if let Some(text) = crate::embedded::model_text(path) {
        return Ok(text.to_string());
    }
    std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::Config {
            path: path.to_path_buf(),
            line: None,
            message: e.to_string(),
        },
        _ => Error::io(path, e),
    })
}

/// Whether a model or input file exists (on the disk, or among the embedded models).
pub fn file_exists(path: &Path) -> bool {
    crate::embedded::model_text(path).is_some() || path.exists()
}

/// Parses a TOML file into `T`, reporting the line and column of any error.
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = read_text(path)?;
    toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        Error::Config {
            path: path.to_path_buf(),
            line,
            message: e.message().to_string(),
        }
    })
}

/// SHA-256 (hex) of a file as read, or of the embedded text for an embedded model file.
pub fn sha256_file(path: &Path) -> Result<String> {
    if let Some(text) = crate::embedded::model_text(path) {
        return Ok(format!("{:x}", Sha256::digest(text.as_bytes())));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}
