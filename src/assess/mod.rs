//! Map meets field: accuracy assessment with error-adjusted areas ([`estimate`]),
//! model-assisted estimates from field plots ([`greg`]).
//!
//! The estimators, the map identity and the report section are GDAL-free; the commands that
//! read the map and the reference points (`assess`, `sample`, `calibrate`) need the `gdal`
//! feature.

#[cfg(feature = "gdal")]
pub mod calibrate;
#[cfg(feature = "gdal")]
pub mod cli;
pub mod estimate;
pub mod greg;
pub mod identity;
#[cfg(feature = "gdal")]
pub mod io;
pub mod report;
#[cfg(feature = "gdal")]
pub mod run;
#[cfg(feature = "gdal")]
pub mod sample;
