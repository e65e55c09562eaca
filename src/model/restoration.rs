//! Restoration interventions: where each is possible, and how the additional removal of a
//! newly restored hectare develops with the years since planting. Pure, no IO.
//!
//! Convention: a trajectory is the removal *additional* to the land's baseline sink (the rates
//! in the literature are gains over a control: grazed grassland, drifting sand). The
//! additional sink of a restored hectare k years after planting (k = 0 in the planting year) is
//! `survival_fraction × area_fraction × gain(k)`.

use serde::{Deserialize, Serialize};

use super::forest::ForestModel;
use super::growth::Curve;
use super::{EcosystemClass, Evidence, ModelError, CO2_PER_C};

/// How a rate develops with the years since planting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateShape {
    /// The initial rate for `duration_yr` years, then 0.
    Constant,
    /// Falls linearly from the initial rate to 0 at `duration_yr`.
    LinearDecline,
    /// initial × e^(−k/τ) for `duration_yr` years, then 0 (τ = `time_constant_yr`).
    Exponential,
}

/// The sink trajectory of a new cohort.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trajectory {
    /// Woody planting: biomass carbon grows along a curve from age 0 (a forest type of
    /// forest.toml, or a curve given here).
    Curve {
        #[serde(default)]
        forest_type: Option<String>,
        #[serde(default)]
        curve: Option<Curve>,
    },
    /// Soil / grassland gains: a rate (t C/ha/yr) that stops or decays.
    Rate {
        initial_rate_tc_per_ha_yr: f64,
        duration_yr: u32,
        shape: RateShape,
        #[serde(default)]
        time_constant_yr: Option<f64>,
    },
}

/// One intervention of `models/restoration.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intervention {
    /// Value in `best_intervention.tif` (1–254).
    pub code: u8,
    pub name: String,
    pub label: String,
    pub eligible_classes: Vec<EcosystemClass>,
    /// Desert subtypes allowed (for barren land); empty = any.
    #[serde(default)]
    pub eligible_desert_subtypes: Vec<String>,
    /// Scene masks that must be set (non-zero) on the pixel.
    #[serde(default)]
    pub requires_masks: Vec<String>,
    /// Scene masks that must not be set.
    #[serde(default)]
    pub excludes_masks: Vec<String>,
    pub trajectory: Trajectory,
    /// Fraction of planted area that establishes (0–1).
    pub survival_fraction: f64,
    /// Fraction of an eligible hectare that is actually planted (e.g. shelterbelts cover a
    /// few percent of the farmland they protect); default 1.
    #[serde(default = "one")]
    pub area_fraction: f64,
    /// Cost of establishing one hectare of eligible land (yuan/ha), with its evidence.
    pub cost_yuan_per_ha: f64,
    pub cost_evidence: Evidence,
    #[serde(default)]
    pub water_need_m3_per_ha_yr: Option<f64>,
    pub evidence: Evidence,
    pub source: String,
}

fn one() -> f64 {
    1.0
}

/// The file `models/restoration.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestorationCatalogue {
    #[serde(rename = "intervention")]
    pub interventions: Vec<Intervention>,
}

impl Intervention {
    /// The forest type a `Curve` trajectory names (none for an inline curve or a rate).
    pub fn forest_type<'a>(
        &self,
        forest: &'a ForestModel,
    ) -> Option<&'a crate::model::forest::ForestType> {
        match &self.trajectory {
            Trajectory::Curve {
                forest_type: Some(ft),
                curve: None,
            } => forest.types.iter().find(|t| &t.name == ft),
            _ => None,
        }
    }

    /// The curve of a `Curve` trajectory, resolved against forest.toml.
    fn resolved_curve<'a>(
        &'a self,
        forest: &'a ForestModel,
    ) -> Result<Option<&'a Curve>, ModelError> {
        match &self.trajectory {
            Trajectory::Curve {
                forest_type: Some(ft),
                curve: None,
            } => self
                .forest_type(forest)
                .map(|t| Some(&t.curve))
                .ok_or_else(|| {
                    ModelError::undefined(
                        format!("intervention '{}'", self.name),
                        "forest type",
                        ft,
                    )
                }),
            Trajectory::Curve {
                forest_type: None,
                curve: Some(c),
            } => Ok(Some(c)),
            Trajectory::Curve { .. } => Err(ModelError::inconsistent(
                format!("intervention '{}'", self.name),
                "a curve trajectory needs exactly one of forest_type or curve",
            )),
            Trajectory::Rate { .. } => Ok(None),
        }
    }

    /// Checks the code, the eligibility, the fractions, the cost and the trajectory.
    pub fn validate(&self, forest: &ForestModel) -> Result<(), ModelError> {
        let item = format!("intervention '{}'", self.name);
        if self.code == 0 || self.code == 255 {
            return Err(ModelError::range(
                item,
                "code",
                self.code as f64,
                "within 1–254 (0 = none, 255 = nodata)",
            ));
        }
        if self.eligible_classes.is_empty() {
            return Err(ModelError::inconsistent(item, "eligible_classes is empty"));
        }
        for (what, v) in [
            ("survival_fraction", self.survival_fraction),
            ("area_fraction", self.area_fraction),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(ModelError::range(item, what, v, "in [0, 1]"));
            }
        }
        if !(self.cost_yuan_per_ha.is_finite() && self.cost_yuan_per_ha >= 0.0) {
            return Err(ModelError::range(
                item,
                "cost_yuan_per_ha",
                self.cost_yuan_per_ha,
                "finite and ≥ 0",
            ));
        }
        if let Some(c) = self.resolved_curve(forest)? {
            c.validate().map_err(|e| e.within(&item))?;
        }
        if let Trajectory::Rate {
            initial_rate_tc_per_ha_yr,
            shape,
            time_constant_yr,
            ..
        } = &self.trajectory
        {
            if !initial_rate_tc_per_ha_yr.is_finite() {
                return Err(ModelError::range(
                    item,
                    "initial_rate_tc_per_ha_yr",
                    *initial_rate_tc_per_ha_yr,
                    "finite",
                ));
            }
            if *shape == RateShape::Exponential && !time_constant_yr.is_some_and(|t| t > 0.0) {
                return Err(ModelError::range(
                    item,
                    "time_constant_yr (needed by an exponential rate)",
                    time_constant_yr.unwrap_or(f64::NAN),
                    "given and > 0",
                ));
            }
        }
        Ok(())
    }

    /// Additional removal (t CO₂ per eligible ha per yr) `k` years after planting.
    pub fn gain_tco2_per_ha_yr(&self, forest: &ForestModel, k: u32) -> f64 {
        let per_planted_ha = match &self.trajectory {
            // A forest type's increments honour its `curve_pools` (an above-ground-only curve
            // gains its roots too); an inline curve is total living biomass.
            Trajectory::Curve { .. } => {
                match (self.forest_type(forest), self.resolved_curve(forest)) {
                    (Some(t), _) => t.sink_tco2_per_ha_yr(k as f64),
                    (None, Ok(Some(c))) => c.sink_tco2_per_ha_yr(k as f64),
                    _ => 0.0,
                }
            }
            Trajectory::Rate {
                initial_rate_tc_per_ha_yr,
                duration_yr,
                shape,
                time_constant_yr,
            } => {
                if k >= *duration_yr {
                    0.0
                } else {
                    let r = *initial_rate_tc_per_ha_yr;
                    let kf = k as f64;
                    let tc = match shape {
                        RateShape::Constant => r,
                        // Mid-year value, so the yearly amounts sum to the triangle's area.
                        RateShape::LinearDecline => r * (1.0 - (kf + 0.5) / *duration_yr as f64),
                        RateShape::Exponential => r * (-kf / time_constant_yr.unwrap_or(1.0)).exp(),
                    };
                    tc * CO2_PER_C
                }
            }
        };
        per_planted_ha * self.survival_fraction * self.area_fraction
    }

    /// Mean additional removal (t CO₂/ha/yr) over `years` years from planting.
    pub fn mean_gain_tco2_per_ha_yr(&self, forest: &ForestModel, years: u32) -> f64 {
        if years == 0 {
            return 0.0;
        }
        (0..years)
            .map(|k| self.gain_tco2_per_ha_yr(forest, k))
            .sum::<f64>()
            / years as f64
    }
}

impl RestorationCatalogue {
    /// Checks every intervention, unique names and codes, the desert subtypes named and the
    /// number of interventions (at most 30: they are bits of a mask).
    pub fn validate(
        &self,
        forest: &ForestModel,
        desert_subtypes: &[String],
    ) -> Result<(), ModelError> {
        let mut names = std::collections::BTreeSet::new();
        let mut codes = std::collections::BTreeSet::new();
        for i in &self.interventions {
            i.validate(forest)?;
            if !names.insert(&i.name) {
                return Err(ModelError::Duplicate {
                    what: "intervention",
                    key: format!("'{}'", i.name),
                });
            }
            if !codes.insert(i.code) {
                return Err(ModelError::Duplicate {
                    what: "intervention code",
                    key: i.code.to_string(),
                });
            }
            for d in &i.eligible_desert_subtypes {
                if !desert_subtypes.contains(d) {
                    return Err(ModelError::undefined(
                        format!("intervention '{}'", i.name),
                        "desert subtype",
                        d,
                    ));
                }
            }
        }
        if self.interventions.len() > 30 {
            return Err(ModelError::range(
                "restoration.toml",
                "number of interventions",
                self.interventions.len() as f64,
                "at most 30",
            ));
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&Intervention> {
        self.interventions.iter().find(|i| i.name == name)
    }
}

/// Eligibility and period-mean potential of every intervention, as tables for the pixel loop.
#[derive(Debug, Clone)]
pub struct RestorationModel {
    pub names: Vec<String>,
    pub codes: Vec<u8>,
    /// Mean additional removal over the period (t CO₂/ha/yr) per intervention.
    pub mean_gain: Vec<f64>,
    class_ok: Vec<[bool; 9]>,
    /// Allowed desert subtype indices; empty = any.
    desert_ok: Vec<Vec<u16>>,
    /// Bit sets over the scene's masks.
    requires: Vec<u32>,
    excludes: Vec<u32>,
    /// Interventions made unavailable by masks the scene lacks.
    pub warnings: Vec<String>,
}

impl RestorationModel {
    /// `mask_names` are the scene's masks, in the order their bits are set per pixel.
    pub fn build(
        cat: &RestorationCatalogue,
        forest: &ForestModel,
        desert_subtypes: &[String],
        mask_names: &[String],
        period_years: u32,
    ) -> Result<RestorationModel, ModelError> {
        // Bits of the masks the scene defines; the names it does not define are returned apart.
        let bits = |names: &[String]| -> (u32, Vec<String>) {
            let mut b = 0u32;
            let mut missing = Vec::new();
            for m in names {
                match mask_names.iter().position(|n| n == m) {
                    Some(pos) => b |= 1 << pos,
                    None => missing.push(m.clone()),
                }
            }
            (b, missing)
        };
        let mut m = RestorationModel {
            names: Vec::new(),
            codes: Vec::new(),
            mean_gain: Vec::new(),
            class_ok: Vec::new(),
            desert_ok: Vec::new(),
            requires: Vec::new(),
            excludes: Vec::new(),
            warnings: Vec::new(),
        };
        for i in &cat.interventions {
            let (requires, missing) = bits(&i.requires_masks);
            let mut ok = [false; 9];
            if missing.is_empty() {
                for c in &i.eligible_classes {
                    ok[c.index()] = true;
                }
            } else {
                m.warnings.push(format!(
                    "intervention '{}' needs mask(s) {} that the scene's [masks] does not define: it is eligible nowhere",
                    i.name,
                    missing.join(", ")
                ));
            }
            m.names.push(i.name.clone());
            m.codes.push(i.code);
            m.mean_gain
                .push(i.mean_gain_tco2_per_ha_yr(forest, period_years));
            m.class_ok.push(ok);
            m.desert_ok.push(
                i.eligible_desert_subtypes
                    .iter()
                    .filter_map(|d| {
                        desert_subtypes
                            .iter()
                            .position(|x| x == d)
                            .map(|p| p as u16)
                    })
                    .collect(),
            );
            m.requires.push(requires);
            // An exclusion mask the scene lacks excludes nothing.
            m.excludes.push(bits(&i.excludes_masks).0);
        }
        Ok(m)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Bit set of the interventions eligible on a pixel.
    #[inline]
    pub fn eligible(&self, class: EcosystemClass, desert_subtype: Option<u16>, masks: u32) -> u32 {
        let mut set = 0u32;
        for j in 0..self.names.len() {
            if !self.class_ok[j][class.index()] {
                continue;
            }
            let d = &self.desert_ok[j];
            if !d.is_empty() && !desert_subtype.is_some_and(|s| d.contains(&s)) {
                continue;
            }
            if masks & self.requires[j] != self.requires[j] || masks & self.excludes[j] != 0 {
                continue;
            }
            set |= 1 << j;
        }
        set
    }

    /// The eligible intervention with the largest mean gain (ties: the first listed).
    #[inline]
    pub fn best(&self, set: u32) -> Option<usize> {
        let mut best: Option<usize> = None;
        for j in 0..self.names.len() {
            if set & (1 << j) != 0 && best.is_none_or(|b| self.mean_gain[j] > self.mean_gain[b]) {
                best = Some(j);
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forest() -> ForestModel {
        toml::from_str(
            r#"
default_forest_type = "p"
max_plausible_age_yr = 300
fallback_age_yr = 20
fallback_age_source = "t"
[[forest_type]]
code = 1
name = "p"
label = "p"
curve = { form = "richards", a_tc_per_ha = 45.0, b_per_yr = 0.1, c = 2.0 }
curve_pools = "above_and_below_ground"
evidence = "placeholder"
source = "t"
"#,
        )
        .unwrap()
    }

    fn rate(shape: RateShape, tau: Option<f64>) -> Intervention {
        Intervention {
            code: 1,
            name: "r".into(),
            label: "r".into(),
            eligible_classes: vec![EcosystemClass::Grassland],
            eligible_desert_subtypes: vec![],
            requires_masks: vec![],
            excludes_masks: vec![],
            trajectory: Trajectory::Rate {
                initial_rate_tc_per_ha_yr: 0.6,
                duration_yr: 20,
                shape,
                time_constant_yr: tau,
            },
            survival_fraction: 0.5,
            area_fraction: 1.0,
            cost_yuan_per_ha: 100.0,
            cost_evidence: Evidence::Placeholder,
            water_need_m3_per_ha_yr: None,
            evidence: Evidence::Placeholder,
            source: "t".into(),
        }
    }

    #[test]
    fn rate_trajectories_by_hand() {
        let f = forest();
        let k = 44.0 / 12.0;
        let c = rate(RateShape::Constant, None);
        assert!((c.gain_tco2_per_ha_yr(&f, 0) - 0.3 * k).abs() < 1e-12);
        assert_eq!(c.gain_tco2_per_ha_yr(&f, 20), 0.0);
        // Mean over 40 years: half the years at 0.3 t C.
        assert!((c.mean_gain_tco2_per_ha_yr(&f, 40) - 0.15 * k).abs() < 1e-12);
        let l = rate(RateShape::LinearDecline, None);
        let total: f64 = (0..30).map(|y| l.gain_tco2_per_ha_yr(&f, y)).sum();
        assert!(
            (total - 0.5 * 0.6 * 20.0 * 0.5 * k).abs() < 1e-9,
            "triangle area × survival"
        );
        let e = rate(RateShape::Exponential, Some(10.0));
        assert!((e.gain_tco2_per_ha_yr(&f, 10) - 0.3 * (-1.0f64).exp() * k).abs() < 1e-12);
        assert!(rate(RateShape::Exponential, None).validate(&f).is_err());
    }

    #[test]
    fn curve_trajectory_of_an_above_ground_type_gains_its_roots_too() {
        let mut f = forest();
        f.types[0].curve_pools = crate::model::forest::CurvePools::AboveGround;
        f.types[0].root_shoot_ratio = Some(0.25);
        let mut i = rate(RateShape::Constant, None);
        i.trajectory = Trajectory::Curve {
            forest_type: Some("p".into()),
            curve: None,
        };
        let c = |t: f64| 45.0 * (1.0 - (-0.1 * t).exp()).powi(2);
        // (C(4) − C(3)) × 1.25 × 44/12 × survival 0.5
        let want = (c(4.0) - c(3.0)) * 1.25 * 44.0 / 12.0 * 0.5;
        assert!((i.gain_tco2_per_ha_yr(&f, 3) - want).abs() < 1e-12);
    }

    #[test]
    fn curve_trajectory_uses_the_growth_increments() {
        let f = forest();
        let mut i = rate(RateShape::Constant, None);
        i.trajectory = Trajectory::Curve {
            forest_type: Some("p".into()),
            curve: None,
        };
        i.area_fraction = 0.07;
        let c = |t: f64| 45.0 * (1.0 - (-0.1 * t).exp()).powi(2);
        assert!(
            (i.gain_tco2_per_ha_yr(&f, 4) - (c(5.0) - c(4.0)) * 44.0 / 12.0 * 0.5 * 0.07).abs()
                < 1e-12
        );
        i.trajectory = Trajectory::Curve {
            forest_type: Some("nope".into()),
            curve: None,
        };
        assert!(i.validate(&f).is_err());
    }

    #[test]
    fn eligibility_by_class_subtype_and_masks() {
        let f = forest();
        let mut a = rate(RateShape::Constant, None);
        a.name = "dune".into();
        a.eligible_classes = vec![EcosystemClass::Barren];
        a.eligible_desert_subtypes = vec!["mobile".into()];
        a.requires_masks = vec!["water".into()];
        let mut b = rate(RateShape::Constant, None);
        b.name = "graze".into();
        b.code = 2;
        b.excludes_masks = vec!["water".into()];
        let cat = RestorationCatalogue {
            interventions: vec![a, b],
        };
        let m = RestorationModel::build(
            &cat,
            &f,
            &["mobile".into(), "gobi".into()],
            &["water".into()],
            36,
        )
        .unwrap();
        assert_eq!(m.eligible(EcosystemClass::Barren, Some(0), 1), 0b01);
        assert_eq!(m.eligible(EcosystemClass::Barren, Some(1), 1), 0);
        assert_eq!(m.eligible(EcosystemClass::Barren, Some(0), 0), 0);
        assert_eq!(m.eligible(EcosystemClass::Grassland, None, 0), 0b10);
        assert_eq!(m.eligible(EcosystemClass::Grassland, None, 1), 0);
        assert_eq!(m.best(0b11), Some(0));
        // Without the water mask the dune intervention is eligible nowhere (with a warning),
        // and the exclusion by that mask excludes nothing.
        let no_mask = RestorationModel::build(&cat, &f, &["mobile".into()], &[], 36).unwrap();
        assert_eq!(no_mask.eligible(EcosystemClass::Barren, Some(0), 0), 0);
        assert_eq!(no_mask.eligible(EcosystemClass::Grassland, None, 0), 0b10);
        assert!(no_mask.warnings[0].contains("'dune' needs mask(s) water"));
    }
}
