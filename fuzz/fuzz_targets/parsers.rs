//! Fuzz the scene and model file parsers and validators: any input returns, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = toml::from_str::<sinkmap::config::Scene>(text);
    let _ = toml::from_str::<sinkmap::model::forest::ForestModel>(text).map(|m| m.validate());
    let _ = toml::from_str::<sinkmap::model::desert::DesertModel>(text).map(|m| m.validate());
    let _ = toml::from_str::<sinkmap::model::scheme::Scheme>(text).map(|m| m.validate());
    let _ = toml::from_str::<sinkmap::accounting::emissions::EmissionFile>(text).map(|m| m.validate(2020, 2060));
    let _ = toml::from_str::<sinkmap::accounting::uncertainty::UncertaintyFile>(text);
    let _ = toml::from_str::<sinkmap::accounting::projection::RolloutFile>(text);
});
