//! One error type for the library. Every variant names the file (and where useful the
//! layer, field, line or pixel) so that the CLI can print a single helpful line.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    Raster { path: PathBuf, message: String },
    #[error("{}: pixel (col {col}, row {row}): {message}", path.display())]
    Pixel {
        path: PathBuf,
        col: usize,
        row: usize,
        message: String,
    },
    #[error("{}: {message}", path.display())]
    Vector { path: PathBuf, message: String },
    #[error("{}: could not write output: {message}", path.display())]
    Output { path: PathBuf, message: String },
    #[error("{0}")]
    Usage(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
    pub fn raster(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Error::Raster {
            path: path.into(),
            message: message.to_string(),
        }
    }
    pub fn vector(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Error::Vector {
            path: path.into(),
            message: message.to_string(),
        }
    }
    pub fn output(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Error::Output {
            path: path.into(),
            message: message.to_string(),
        }
    }

    /// The same output error, naming `path` (the final name rather than a temporary one).
    pub fn at(self, path: PathBuf) -> Self {
        match self {
            Error::Output { message, .. } => Error::Output { path, message },
            Error::Io { source, .. } => Error::Output {
                path,
                message: source.to_string(),
            },
            e => e,
        }
    }
}
