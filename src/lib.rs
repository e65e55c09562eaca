//! sinkmap: carbon stock and annual CO₂ sink of a region's land from land-cover and
//! forest-age rasters — gridded maps, the cohort cube and per-zone tables, a projection to
//! 2060 with Monte Carlo bands, and the balance against emission scenarios.
//!
//! # Example
//!
//! The per-pixel science is plain Rust (no GDAL, no files); a whole scene runs through
//! [`pipeline::run`]:
//!
//! ```
//! use sinkmap::model::growth::Curve;
//!
//! // A Chapman–Richards age–carbon curve: C(t) = a (1 − e^(−b t))^c, in t C/ha.
//! let spruce = Curve::Richards { a_tc_per_ha: 75.0, b_per_yr: 0.025, c: 2.5 };
//! let c40 = spruce.carbon_tc_per_ha(40.0);
//! assert!((c40 - 75.0 * (1.0 - (-1.0f64).exp()).powf(2.5)).abs() < 1e-12);
//! // The sink of a 40-year-old stand: next year's gain, in t CO₂/ha/yr.
//! let sink = spruce.sink_tco2_per_ha_yr(40.0);
//! assert!((sink - (spruce.carbon_tc_per_ha(41.0) - c40) * 44.0 / 12.0).abs() < 1e-12);
//!
//! // The embedded sample scene, end to end: maps, cube and summary in a folder (GDAL).
//! # #[cfg(feature = "gdal")] {
//! let scene = sinkmap::config::Scene::load("rasters/sample/scene.toml".as_ref())?;
//! let out = std::env::temp_dir().join(format!("sinkmap-doc-{}", std::process::id()));
//! let opts = sinkmap::pipeline::RunOptions {
//!     output_dir: Some(out.clone()),
//!     ..Default::default()
//! };
//! let outcome = sinkmap::pipeline::run(&scene, &opts, None)?;
//! assert!(outcome.summary.totals.stock_tc > 0.0);
//! assert!(out.join("stock_tc_per_ha.tif").exists());
//! # std::fs::remove_dir_all(&out).ok();
//! # }
//! # Ok::<(), sinkmap::Error>(())
//! ```
//!
//! # Layout
//!
//! The data flow and the module map are in `docs/design.md`. In short: [`model`] holds the
//! pure per-pixel science and its typed validation, [`config`] reads the scene file and
//! [`io`] the model files, [`grid`] the reference grid and pixel areas, [`coverage`] exact
//! polygon coverage, [`raster`] and [`zones`] the GDAL edges, [`engine`] the block engine every
//! raster pass runs on ([`pipeline`] for `run`/`zonal`, [`change`], [`series`], [`project`]),
//! [`cube`] the cohort cube, [`summary`] the JSON summary, [`accounting`] the projection and
//! balance, [`assess`] map accuracy and plot calibration, [`report`] the HTML report,
//! [`publish`] the whole-or-nothing output folders, [`error`] the errors sorted by whose
//! fault they are.

#![warn(missing_docs)]

pub mod accounting;
pub mod assess;
#[cfg(feature = "gdal")]
pub mod change;
pub mod config;
pub mod coverage;
pub mod cube;
pub mod embedded;
#[cfg(feature = "gdal")]
pub mod engine;
pub mod error;
pub mod fit;
pub mod grid;
pub mod human;
pub mod init;
pub mod io;
pub mod limits;
pub mod manifest;
#[cfg(feature = "gdal")]
pub mod merge;
pub mod model;
#[cfg(feature = "gdal")]
pub mod pipeline;
pub mod progress;
#[cfg(feature = "gdal")]
pub mod project;
pub mod publish;
#[cfg(feature = "gdal")]
pub mod raster;
pub mod report;
#[cfg(feature = "gdal")]
pub mod series;
#[cfg(feature = "gdal")]
pub mod styles;
pub mod summary;
#[cfg(feature = "gdal")]
pub mod synth;
pub mod tables;
pub mod threads;
pub mod zone_table;
pub mod zones;

pub use error::{Error, Fault, Result, Warning};
