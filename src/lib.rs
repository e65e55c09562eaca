//! sinkmap: carbon stock and annual CO₂ sink of a region's land from land-cover and
//! forest-age rasters — gridded maps, the cohort cube and per-zone tables.
//!
//! Layout (see `../shared/design.md`): [`model`] holds the pure per-pixel science,
//! [`grid`] the reference grid and pixel areas, [`coverage`] exact polygon coverage,
//! [`raster`] and [`zones`] the GDAL edges, [`pipeline`] the block stream,
//! [`cube`] the cohort cube, [`summary`] the JSON summary, [`synth`] synthetic scenes.

pub mod accounting;
pub mod assess;
pub mod bench;
pub mod change;
pub mod config;
pub mod coverage;
pub mod cube;
pub mod embedded;
pub mod engine;
pub mod error;
pub mod fit;
pub mod grid;
pub mod human;
pub mod init;
pub mod merge;
pub mod model;
pub mod pipeline;
pub mod progress;
pub mod project;
pub mod raster;
pub mod report;
pub mod series;
pub mod styles;
pub mod summary;
pub mod synth;
pub mod zones;

pub use error::{Error, Result};
