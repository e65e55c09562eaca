//! `sinkmap series`: an annual land-cover series with per-pixel stand ages.

pub mod events;
pub mod state;
