//! Map meets field: accuracy assessment with error-adjusted areas ([`estimate`]),
//! model-assisted estimates from field plots ([`greg`]).

pub mod estimate;
pub mod greg;
