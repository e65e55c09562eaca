//! One error type for the library, sorted by whose fault it is ([`Fault`]): the input data,
//! a configuration file, the environment, the command line, or sinkmap itself. Every
//! variant names the file (and where useful the line, field or pixel) so that the CLI can
//! print a single helpful line, and every fault has its own exit code.

use std::path::PathBuf;

/// Whose fault an error is: what the user has to fix. Each has its own exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The command line: a bad option value or combination (exit code 2, as for the
    /// argument errors the parser reports itself).
    Usage,
    /// The input data: a raster, polygon layer or table the scene or command points to
    /// (exit code 3).
    InputData,
    /// A configuration file: scene, model, project, rollout or scenario file (exit code 4).
    Configuration,
    /// The environment: the disk, GDAL, fonts, threads (exit code 5).
    Environment,
    /// A bug in sinkmap (exit code 6): please report it.
    Internal,
}

impl Fault {
    /// Every fault, in exit-code order.
    pub const ALL: [Fault; 5] = [
        Fault::Usage,
        Fault::InputData,
        Fault::Configuration,
        Fault::Environment,
        Fault::Internal,
    ];

    /// The process exit code of the CLI for this fault (0 is success, 1 is never used).
    pub fn exit_code(self) -> u8 {
        match self {
            Fault::Usage => 2,
            Fault::InputData => 3,
            Fault::Configuration => 4,
            Fault::Environment => 5,
            Fault::Internal => 6,
        }
    }

    /// A short name for messages ("input data", "configuration", …).
    pub fn name(self) -> &'static str {
        match self {
            Fault::Usage => "usage",
            Fault::InputData => "input data",
            Fault::Configuration => "configuration",
            Fault::Environment => "environment",
            Fault::Internal => "internal error",
        }
    }
}

/// Something the user should know that does not stop the work (the library returns these in
/// its outcomes; only the command line prints them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The file it is about.
    pub path: PathBuf,
    /// What happened.
    pub message: String,
}

impl Warning {
    /// A warning about `path`.
    pub fn new(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Warning {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// Every failure of the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system operation that failed (environment fault).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// An input file whose content cannot be used (input-data fault).
    #[error("{}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file or setting the scene names that is refused (configuration fault).
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A raster that cannot be read as needed (input-data fault).
    #[error("{}: {message}", path.display())]
    Raster {
        /// The raster.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A pixel value the models cannot evaluate (input-data fault).
    #[error("{}: pixel (col {col}, row {row}): {message}", path.display())]
    Pixel {
        /// The raster.
        path: PathBuf,
        /// Column of the pixel in the reference grid.
        col: usize,
        /// Row of the pixel in the reference grid.
        row: usize,
        /// What is wrong with the value.
        message: String,
    },
    /// A vector layer that cannot be read as needed (input-data fault).
    #[error("{}: {message}", path.display())]
    Vector {
        /// The layer's file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An output that cannot be written (environment fault).
    #[error("{}: could not write output: {message}", path.display())]
    Output {
        /// The output file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A command line that asks for something impossible (usage fault).
    #[error("{0}")]
    Usage(String),
    /// A configuration file (TOML) that cannot be read as its type: the line when known.
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Config {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem, when the parser knows it.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// A model file whose values are inconsistent (see [`crate::model::ModelError`]).
    #[error("{}: {source}", path.display())]
    Model {
        /// The model file.
        path: PathBuf,
        /// What is wrong with it.
        source: crate::model::ModelError,
    },
    /// Something the machine lacks or refuses: a GDAL driver, a font, a program.
    #[error("{what}: {message}")]
    Environment {
        /// The resource (a font file, a GDAL driver, a program).
        what: String,
        /// What went wrong.
        message: String,
    },
    /// A bug in sinkmap (a thread that panicked, a broken internal invariant).
    #[error("internal error (please report it): {0}")]
    Internal(String),
}

/// The result of every fallible library call.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Whose fault the error is.
    pub fn fault(&self) -> Fault {
        match self {
            Error::Usage(_) => Fault::Usage,
            Error::Raster { .. }
            | Error::Vector { .. }
            | Error::Pixel { .. }
            | Error::Parse { .. } => Fault::InputData,
            Error::Invalid { .. } | Error::Config { .. } | Error::Model { .. } => {
                Fault::Configuration
            }
            Error::Io { .. } | Error::Output { .. } | Error::Environment { .. } => {
                Fault::Environment
            }
            Error::Internal(_) => Fault::Internal,
        }
    }

    /// A fault of sinkmap itself (a thread that panicked or could not start).
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal(message.into())
    }

    /// An input table or file whose content is wrong (a plot table, a part folder's
    /// summary): the user's data, not a configuration file.
    pub fn data(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Parse {
            path: path.into(),
            message: message.into(),
        }
    }

    /// A model file whose values do not fit together.
    pub fn model(path: impl Into<PathBuf>, source: crate::model::ModelError) -> Self {
        Error::Model {
            path: path.into(),
            source,
        }
    }

    /// A resource of the machine that is missing or refuses (a font, a GDAL driver).
    pub fn environment(what: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Error::Environment {
            what: what.into(),
            message: message.to_string(),
        }
    }
    /// A file-system error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    /// A file or setting the scene names that is refused (a configuration fault).
    pub fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
    /// A raster that GDAL cannot read as needed.
    pub fn raster(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Error::Raster {
            path: path.into(),
            message: message.to_string(),
        }
    }
    /// A vector layer that OGR cannot read as needed.
    pub fn vector(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Self {
        Error::Vector {
            path: path.into(),
            message: message.to_string(),
        }
    }
    /// An output that cannot be written.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_has_its_own_exit_code_and_none_is_0_or_1() {
        let codes: std::collections::BTreeSet<u8> =
            Fault::ALL.iter().map(|f| f.exit_code()).collect();
        assert_eq!(codes.len(), Fault::ALL.len());
        assert!(!codes.contains(&0) && !codes.contains(&1));
    }

    #[test]
    fn errors_are_sorted_by_whose_fault_they_are() {
        let p = || PathBuf::from("x");
        let cases = [
            (Error::Usage("u".into()), Fault::Usage),
            (Error::raster(p(), "r"), Fault::InputData),
            (Error::vector(p(), "v"), Fault::InputData),
            (Error::data(p(), "d"), Fault::InputData),
            (
                Error::Pixel {
                    path: p(),
                    col: 1,
                    row: 2,
                    message: "m".into(),
                },
                Fault::InputData,
            ),
            (Error::invalid(p(), "i"), Fault::Configuration),
            (
                Error::Config {
                    path: p(),
                    line: Some(3),
                    message: "c".into(),
                },
                Fault::Configuration,
            ),
            (
                Error::model(
                    p(),
                    crate::model::ModelError::Duplicate {
                        what: "forest type code",
                        key: "3".into(),
                    },
                ),
                Fault::Configuration,
            ),
            (Error::output(p(), "disk full"), Fault::Environment),
            (
                Error::io(p(), std::io::Error::other("denied")),
                Fault::Environment,
            ),
            (Error::environment("fonts", "none"), Fault::Environment),
            (Error::internal("a thread panicked"), Fault::Internal),
        ];
        for (e, f) in cases {
            assert_eq!(e.fault(), f, "{e}");
        }
    }

    #[test]
    fn a_configuration_error_names_its_line() {
        let e = Error::Config {
            path: PathBuf::from("scene.toml"),
            line: Some(2),
            message: "invalid type".into(),
        };
        assert_eq!(e.to_string(), "scene.toml, line 2: invalid type");
    }
}
