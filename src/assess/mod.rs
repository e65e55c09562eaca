//! Map meets field: accuracy assessment with error-adjusted areas ([`estimate`]),
//! model-assisted estimates from field plots ([`greg`]).

pub mod calibrate;
pub mod cli;
pub mod estimate;
pub mod greg;
pub mod identity;
pub mod io;
pub mod report;
pub mod run;
pub mod sample;
