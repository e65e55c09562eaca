//! The per-pixel state machine of a series: pure, no GDAL.
//!
//! A pixel's state is its last observed land-cover code, for a forest stand the stand's
//! **origin year** (the year its age was 0) and the forest type chosen when it was
//! established, and a soil transition still under way. The age in year `y` is `y − origin`,
//! kept within `0..=max_plausible_age_yr`. One state covers every rule:
//!
//! - a forest pixel of the first year takes its origin from the age raster:
//!   `origin = reference_year − round(age)` — so ages are shifted forward after the reference
//!   year and back-cast before it, exactly as `run` shifts them to its base year; a forest
//!   pixel without an age starts at the model's fallback age in its first year; its type is
//!   `run`'s (forest-type layer → the land-cover code's type → the default type);
//! - forest stays forest: the age grows with the years (`y − origin`), and the gross sink is
//!   the stock change `C(a₁) − C(a₀)`;
//! - non-forest → forest: a new stand with origin = this year (age 0). Its curve, in this
//!   priority: (1) the forest-type layer, where it has a value; (2) restoration eligibility:
//!   among the interventions of `models/restoration.toml` whose trajectory is a forest-type
//!   curve and that are eligible on the pixel's *previous* land (class, desert subtype,
//!   masks — the rules of `run`'s potential), the one `run` would rank best; (3) the series'
//!   plantation type (`[series] new_stand_forest_type`); (4) the land-cover code's type, else
//!   the default type. The stock difference of the two states is the conversion flux;
//! - forest → non-forest: biomass and dead matter leave in the year (the clearing emission:
//!   IPCC Tier 1, instant oxidation of biomass and dead organic matter);
//! - other transitions: the stock difference of the two classes is the conversion flux
//!   (positive = emission, negative = uptake);
//! - soil after any change of land cover: the soil pool moves **linearly** from the soil the
//!   pixel had to the new land cover's soil over `soil_transition_yr` years (IPCC default
//!   20; 0 = in the year of the change). Each year's share is counted under the cause of the
//!   change (clearing, or conversion for every other change), also in the years after it;
//! - an event on a forest pixel: `f_biomass × B + f_dead × D + f_soil × S` of the pools at
//!   the start of the year is emitted under the event's name; the stand restarts at age 0
//!   (age reset) or continues at the youngest age whose biomass reaches what the event left;
//!   whatever else the stock lost is a **transfer** (harvested wood, killed biomass left on
//!   site; negative where the model restores the dead-matter and soil pools of the new state);
//!   an event on a pixel that was not forest is ignored and counted;
//! - a **conflict**: a forest pixel in a year before its origin (the land cover shows forest
//!   where the age raster says the stand did not exist yet). The land cover wins: the stand
//!   is there at age 0 until its origin year; the pixel's area is counted as a conflict in
//!   each such year.
//!
//! Every step closes the balance exactly:
//! `stock_end − stock_start = gross_sink − clearing − conversion − event − transfer`.

use crate::model::pixel::{PixelError, PixelInput, PixelModel, PixelValue};
use crate::model::restoration::RestorationModel;
use crate::model::{EcosystemClass, Pools};

use super::events::EventCatalogue;

/// Which flux column a soil transition is counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cause {
    /// Forest → non-forest.
    Clearing,
    /// Every other change of land cover.
    #[default]
    Conversion,
}

/// What the state machine carries from one year to the next for one pixel.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PixelState {
    /// The last land-cover code seen (None: never seen yet).
    pub code: Option<i32>,
    /// The forest stand's origin year (None: not forest).
    pub origin_year: Option<i32>,
    /// The year the code was seen (the start of the next step).
    pub year: i32,
    /// The forest-type code a new stand was given (None: the rule of `run`).
    pub stand_type_code: Option<i32>,
    /// Soil above the land cover's own soil when the transition began (t C/ha; negative:
    /// below it), the year the land cover changed, and the cause.
    pub soil_offset_tc_per_ha: f64,
    /// The year the land cover changed.
    pub soil_since_year: i32,
    /// What changed it.
    pub soil_cause: Cause,
}

impl PixelState {
    /// The soil still above the land cover's own soil in `year` (t C/ha): the offset falls
    /// linearly to 0 over `period_yr` years, a share of 1/period in the year of the change.
    pub fn soil_left_tc_per_ha(&self, year: i32, period_yr: u32) -> f64 {
        if period_yr == 0 || self.soil_offset_tc_per_ha == 0.0 {
            return 0.0;
        }
        let done = f64::from(year - self.soil_since_year + 1) / f64::from(period_yr);
        self.soil_offset_tc_per_ha * (1.0 - done).clamp(0.0, 1.0)
    }
}

/// The static layers of a pixel (the same every year).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Static {
    /// The age raster's value (yr) at its reference year.
    pub age_yr: Option<f64>,
    /// The forest-type raster's value.
    pub forest_type_code: Option<i32>,
    /// The desert-subtype raster's value.
    pub desert_subtype_code: Option<i32>,
    /// Bit j set where the scene's mask j is set (restoration eligibility).
    pub masks: u32,
}

/// Carbon moved by one step, t C/ha (emissions positive).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Fluxes {
    /// Growth of stands that stay forest without an event.
    pub gross_sink_tc_per_ha: f64,
    /// Forest → non-forest without an event (and the soil transition after a clearing).
    pub clearing_tc_per_ha: f64,
    /// Every other change of class (negative = uptake), including non-forest → forest.
    pub conversion_tc_per_ha: f64,
    /// The event's emission and its index in the catalogue.
    pub event: Option<(usize, f64)>,
    /// Carbon leaving the stock without being emitted in the year (events only).
    pub transfer_tc_per_ha: f64,
}

impl Fluxes {
    /// The net flux into the land (positive = uptake): gross sink − emissions − transfers.
    pub fn net_tc_per_ha(&self) -> f64 {
        self.gross_sink_tc_per_ha
            - self.clearing_tc_per_ha
            - self.conversion_tc_per_ha
            - self.event.map(|e| e.1).unwrap_or(0.0)
            - self.transfer_tc_per_ha
    }
}

/// One pixel in one year.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Year {
    /// The pixel's state at the end of the year.
    pub state: PixelState,
    /// Class this year (None: no data this year; then nothing is counted).
    pub class: Option<EcosystemClass>,
    /// Class the year before (None in the first year or after a nodata year's first sight).
    pub class_before: Option<EcosystemClass>,
    /// Stock at the start of the year.
    pub stock_start_tc_per_ha: f64,
    /// Stock at the end of the year.
    pub stock_end_tc_per_ha: f64,
    /// Stand age this year (forest only).
    pub age_yr: Option<u16>,
    /// The year's gains, emissions and transfers.
    pub fluxes: Fluxes,
    /// Land cover says forest before the age raster's origin.
    pub conflict: bool,
    /// An event fell on a pixel that was not forest.
    pub event_ignored: bool,
}

/// The rules of a series beyond the pixel model (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Restoration eligibility, and per intervention the forest-type code its curve follows
    /// (None: not a forest-type curve, never chosen for a new stand).
    pub restoration: Option<(RestorationModel, Vec<Option<i32>>)>,
    /// The series' plantation type (a forest-type code).
    pub plantation_type_code: Option<i32>,
    /// Years over which soil moves to the new land cover's soil (0 = at once).
    pub soil_transition_yr: u32,
}

/// The models of a series: the scene's (for every stock) and the same tables with one pool at
/// a time (to split a stock into biomass, dead matter and soil for the event fractions).
#[derive(Debug, Clone)]
pub struct SeriesModel {
    /// The scene's pixel model.
    pub scene: PixelModel,
    biomass: PixelModel,
    dead: PixelModel,
    soil: PixelModel,
    pools: Pools,
    /// The event types.
    pub events: EventCatalogue,
    /// The age raster's reference year.
    pub reference_year: i32,
    fallback_age_yr: u32,
    /// The series' own rules.
    pub rules: Rules,
}

/// A stock split into its pools (t C/ha); the pools the scene leaves out are 0.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Split {
    biomass: f64,
    dead: f64,
    soil: f64,
}

/// A land cover at an age with a stand type: what a pixel is in one year.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cover {
    code: i32,
    age: Option<u16>,
    stand_type_code: Option<i32>,
}

impl SeriesModel {
    /// `build(pools)` builds the per-pixel tables with the given pools (the scene's builder).
    pub fn new<E>(
        build: impl Fn(Pools) -> Result<PixelModel, E>,
        pools: Pools,
        events: EventCatalogue,
        reference_year: i32,
        fallback_age_yr: u32,
        rules: Rules,
    ) -> Result<SeriesModel, E> {
        let none = Pools::default();
        Ok(SeriesModel {
            scene: build(pools)?,
            biomass: build(none)?,
            dead: build(Pools {
                dead_matter: true,
                ..none
            })?,
            soil: build(Pools { soil: true, ..none })?,
            pools,
            events,
            reference_year,
            fallback_age_yr,
            rules,
        })
    }

    fn input(&self, c: Cover, s: &Static) -> PixelInput {
        PixelInput {
            landcover_code: c.code,
            forest_age_yr: c.age.map(f64::from),
            forest_type_code: s.forest_type_code.or(c.stand_type_code),
            desert_subtype_code: s.desert_subtype_code,
        }
    }

    /// The scene model's value of a cover (class, stock, desert subtype).
    fn value(&self, c: Cover, s: &Static) -> Result<PixelValue, PixelError> {
        self.scene.evaluate(&self.input(c, s))
    }

    /// The stock of a cover split into pools.
    fn split(&self, c: Cover, s: &Static) -> Result<Split, PixelError> {
        let px = self.input(c, s);
        let b = self.biomass.evaluate(&px)?.stock_tc_per_ha;
        let d = self.dead.evaluate(&px)?.stock_tc_per_ha - b;
        let so = self.soil.evaluate(&px)?.stock_tc_per_ha - b;
        Ok(Split {
            biomass: b,
            dead: if self.pools.dead_matter { d } else { 0.0 },
            soil: if self.pools.soil { so } else { 0.0 },
        })
    }

    /// The age of a stand of origin `origin` in `year`, within 0..=max age; and whether the
    /// year lies before the origin (a conflict while the land cover shows forest).
    pub fn age_in(&self, origin: i32, year: i32) -> (u16, bool) {
        let a = (year as i64 - origin as i64).clamp(0, self.scene.max_age_yr() as i64);
        (a as u16, year < origin)
    }

    /// Age and conflict flag of a stand of origin `origin` (none: not forest) in `year`.
    fn stand_age(&self, origin: Option<i32>, year: i32) -> (Option<u16>, bool) {
        match origin {
            Some(o) => {
                let (a, c) = self.age_in(o, year);
                (Some(a), c)
            }
            None => (None, false),
        }
    }

    fn is_forest(&self, code: i32, s: &Static) -> Result<bool, PixelError> {
        let c = Cover {
            code,
            age: None,
            stand_type_code: None,
        };
        Ok(self.value(c, s)?.class == Some(EcosystemClass::Forest))
    }

    /// The forest-type code of a new stand on land that was `before` (priority of the module
    /// documentation; None: the rule of `run`, i.e. the layer, the code's type, the default).
    pub fn new_stand_type(&self, before: &PixelValue, s: &Static) -> Option<i32> {
        if s.forest_type_code.is_some() {
            return None;
        }
        let restored = self.rules.restoration.as_ref().and_then(|(rm, types)| {
            let class = before.class?;
            let curves = types
                .iter()
                .enumerate()
                .filter(|(_, t)| t.is_some())
                .fold(0u32, |set, (j, _)| set | (1 << j));
            let set = rm.eligible(class, before.desert_subtype, s.masks) & curves;
            rm.best(set).and_then(|j| types[j])
        });
        restored.or(self.rules.plantation_type_code)
    }

    /// The state of a pixel first seen in `year` with land cover `code`.
    pub fn first(&self, year: i32, code: Option<i32>, s: &Static) -> Result<Year, PixelError> {
        let Some(code) = code else {
            return Ok(Year::default());
        };
        let observed = s.age_yr.map(|a| self.scene.check_age(a)).transpose()?;
        let origin = if self.is_forest(code, s)? {
            Some(match observed {
                Some(a) => self.reference_year - a as i32,
                None => year - self.fallback_age_yr as i32,
            })
        } else {
            None
        };
        let (age, conflict) = self.stand_age(origin, year);
        let v = self.value(
            Cover {
                code,
                age,
                stand_type_code: None,
            },
            s,
        )?;
        let stock = v.stock_tc_per_ha;
        Ok(Year {
            state: PixelState {
                code: Some(code),
                origin_year: origin,
                year,
                ..PixelState::default()
            },
            class: v.class,
            class_before: None,
            stock_start_tc_per_ha: stock,
            stock_end_tc_per_ha: stock,
            age_yr: age,
            fluxes: Fluxes::default(),
            conflict,
            event_ignored: false,
        })
    }

    /// One step from the year of state `prev` to `year` with land cover `code` and an
    /// optional event (an index into the catalogue).
    ///
    /// Called for every pixel and year of a series: the rules are small functions of their
    /// own (`stand`, `disturbed`, `start_soil_transition`, `Step::fluxes`), marked
    /// `#[inline]` so that the split costs nothing.
    pub fn step(
        &self,
        prev: PixelState,
        year: i32,
        code: Option<i32>,
        event: Option<usize>,
        s: &Static,
    ) -> Result<Year, PixelError> {
        let Some(prev_code) = prev.code else {
            // Never seen: this year is its first.
            return self.first(year, code, s);
        };
        let Some(code) = code else {
            // No data this year: the state is kept (a stand keeps ageing), nothing counted.
            return Ok(Year {
                state: prev,
                ..Year::default()
            });
        };
        let period = self.rules.soil_transition_yr;
        let before = Cover {
            code: prev_code,
            age: prev.origin_year.map(|o| self.age_in(o, prev.year).0),
            stand_type_code: prev.stand_type_code,
        };
        let v0 = self.value(before, s)?;
        let was_forest = prev.origin_year.is_some();
        let now_forest = self.is_forest(code, s)?;
        // A change of land cover happens at the end of the step (in `year`): until then the
        // soil transition under way goes on. What it left at the start, and just before
        // this year's change (or at the end of the step when nothing changes).
        let changed = code != prev_code || was_forest != now_forest;
        let left_mid = prev.soil_left_tc_per_ha(if changed { year - 1 } else { year }, period);
        let t = Step {
            year,
            code,
            before,
            was_forest,
            now_forest,
            event,
            left0: prev.soil_left_tc_per_ha(prev.year, period),
        };
        let stand = self.stand(&t, &prev, &v0, s)?;
        let (age, conflict) = self.stand_age(stand.origin, year);
        let after = Cover {
            code,
            age,
            stand_type_code: stand.type_code,
        };
        let v1 = self.value(after, s)?;
        let mut state = PixelState {
            code: Some(code),
            origin_year: stand.origin,
            year,
            stand_type_code: stand.type_code,
            ..prev
        };
        if changed {
            self.start_soil_transition(&mut state, &t, after, left_mid, s)?;
        }
        let left1 = state.soil_left_tc_per_ha(year, period);
        let (stock0, stock1) = (v0.stock_tc_per_ha + t.left0, v1.stock_tc_per_ha + left1);
        // What this year's change lost (the old transition's share is counted apart).
        let loss = v0.stock_tc_per_ha + left_mid - stock1;
        Ok(Year {
            state,
            class: v1.class,
            class_before: v0.class,
            stock_start_tc_per_ha: stock0,
            stock_end_tc_per_ha: stock1,
            age_yr: age,
            fluxes: t.fluxes(stand.event, loss, prev.soil_cause, t.left0 - left_mid),
            conflict,
            event_ignored: stand.event_ignored,
        })
    }

    /// The stand after step `t` by the rule that applies: an event on a forest, a forest
    /// that stays, a new stand (its type from the land before, `v0`), or no forest.
    #[inline]
    fn stand(
        &self,
        t: &Step,
        prev: &PixelState,
        v0: &PixelValue,
        s: &Static,
    ) -> Result<Stand, PixelError> {
        let mut stand = Stand {
            origin: None,
            type_code: prev.stand_type_code,
            event: None,
            event_ignored: false,
        };
        match (t.was_forest, t.now_forest, t.event) {
            (true, _, Some(e)) => {
                let (origin, emitted) = self.disturbed(t, e, s)?;
                stand.origin = origin;
                stand.event = Some((e, emitted));
            }
            (true, true, None) => stand.origin = prev.origin_year,
            (false, true, ev) => {
                stand.event_ignored = ev.is_some();
                stand.type_code = self.new_stand_type(v0, s);
                stand.origin = Some(t.year);
            }
            (_, false, ev) => {
                stand.event_ignored = ev.is_some() && !t.was_forest;
                stand.type_code = None;
            }
        }
        Ok(stand)
    }

    /// Event `e` on the forest of step `t`: the origin of the stand after it (none when the
    /// land is no longer forest, the event's year when the event resets the age, else the
    /// youngest age whose biomass reaches what the event left) and what it emits (t C/ha,
    /// from the stand's pools and the soil still moving at the start).
    #[inline]
    fn disturbed(&self, t: &Step, e: usize, s: &Static) -> Result<(Option<i32>, f64), PixelError> {
        let ev = &self.events.events[e];
        let p = self.split(t.before, s)?;
        let emitted = ev.biomass_emitted_fraction * p.biomass
            + ev.dead_matter_emitted_fraction * p.dead
            + ev.soil_emitted_fraction * (p.soil + t.left0);
        let origin = if !t.now_forest {
            None
        } else if ev.age_reset {
            Some(t.year)
        } else {
            // The youngest age whose biomass reaches what the event left.
            let left = (1.0 - ev.biomass_lost()) * p.biomass;
            let a0 = t.before.age.unwrap_or(0);
            let mut a = 0;
            let at = |a| Cover {
                code: t.code,
                age: Some(a),
                stand_type_code: t.before.stand_type_code,
            };
            while a < a0 && self.split(at(a), s)?.biomass < left {
                a += 1;
            }
            Some(t.year - a as i32)
        };
        Ok((origin, emitted))
    }

    /// A change of land cover starts a soil transition from the soil the pixel has (its old
    /// land cover's plus what was still moving, `left_mid`) to the new land cover's.
    #[inline]
    fn start_soil_transition(
        &self,
        state: &mut PixelState,
        t: &Step,
        after: Cover,
        left_mid: f64,
        s: &Static,
    ) -> Result<(), PixelError> {
        let offset = if self.rules.soil_transition_yr > 0 && self.pools.soil {
            self.split(t.before, s)?.soil + left_mid - self.split(after, s)?.soil
        } else {
            0.0
        };
        state.soil_offset_tc_per_ha = offset;
        state.soil_since_year = t.year;
        state.soil_cause = if t.was_forest && !t.now_forest {
            Cause::Clearing
        } else {
            Cause::Conversion
        };
        Ok(())
    }
}

/// What one step of a pixel starts from: the year, its land cover, the cover at the start,
/// whether the pixel was and is forest, the event, and the soil still moving at the start
/// (t C/ha).
struct Step {
    year: i32,
    code: i32,
    before: Cover,
    was_forest: bool,
    now_forest: bool,
    event: Option<usize>,
    left0: f64,
}

impl Step {
    /// The step's fluxes: what this year's change lost (`loss`) under the column of its rule,
    /// and what the soil transition under way moved (`soil_moved`) under its cause.
    #[inline]
    fn fluxes(
        &self,
        event: Option<(usize, f64)>,
        loss: f64,
        soil_cause: Cause,
        soil_moved: f64,
    ) -> Fluxes {
        let mut fl = Fluxes {
            event,
            ..Fluxes::default()
        };
        match (self.was_forest, self.now_forest, event) {
            (_, _, Some((_, emitted))) => fl.transfer_tc_per_ha = loss - emitted,
            (true, true, None) => fl.gross_sink_tc_per_ha = -loss,
            (true, false, None) => fl.clearing_tc_per_ha = loss,
            (false, _, None) => fl.conversion_tc_per_ha = loss,
        }
        match soil_cause {
            Cause::Clearing => fl.clearing_tc_per_ha += soil_moved,
            Cause::Conversion => fl.conversion_tc_per_ha += soil_moved,
        }
        fl
    }
}

/// The stand after a step: its origin year and forest type, the event's emission (index,
/// t C/ha) and whether an event fell on land that was not forest.
struct Stand {
    origin: Option<i32>,
    type_code: Option<i32>,
    event: Option<(usize, f64)>,
    event_ignored: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::pixel::test_model::model;

    const ALL: Pools = Pools {
        dead_matter: true,
        soil: true,
    };

    fn events() -> EventCatalogue {
        toml::from_str(
            r#"[[event]]
code = 1
name = "fire"
label = "Fire"
biomass_emitted_fraction = 0.45
dead_matter_emitted_fraction = 0.6
soil_emitted_fraction = 0.0
age_reset = true
evidence = "placeholder"
source = "test"
[[event]]
code = 3
name = "thinning"
label = "Thinning"
biomass_emitted_fraction = 0.05
dead_matter_emitted_fraction = 0.0
soil_emitted_fraction = 0.0
age_reset = false
biomass_lost_fraction = 0.3
evidence = "placeholder"
source = "test"
"#,
        )
        .unwrap()
    }

    /// The test model (spruce 0 → 0, 10 → 10, 20 → 30 t C/ha biomass, dead 4, soil 90;
    /// grassland 3 + 0.5 + 33; gobi 0.5 + 5), with the given pools and reference year.
    fn sm(pools: Pools, reference_year: i32) -> SeriesModel {
        SeriesModel::new(
            |p| Ok::<_, String>(model(p, None)),
            pools,
            events(),
            reference_year,
            10,
            Rules::default(),
        )
        .unwrap()
    }

    const FOREST: i32 = 1;
    const DESERT: i32 = 3;
    const GRASS: i32 = 4;

    fn age(a: f64) -> Static {
        Static {
            age_yr: Some(a),
            ..Static::default()
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// Runs one pixel through `years` with the codes and events given.
    fn run(
        m: &SeriesModel,
        years: &[i32],
        codes: &[Option<i32>],
        ev: &[Option<usize>],
        s: &Static,
    ) -> Vec<Year> {
        let mut out = vec![m.first(years[0], codes[0], s).unwrap()];
        for k in 1..years.len() {
            let prev = out[k - 1].state;
            out.push(m.step(prev, years[k], codes[k], ev[k], s).unwrap());
        }
        out
    }

    fn balance_closes(y: &Year) -> bool {
        close(
            y.stock_end_tc_per_ha - y.stock_start_tc_per_ha,
            y.fluxes.net_tc_per_ha(),
        )
    }

    #[test]
    fn forest_stays_forest_ages_and_grows_with_ages_back_cast_before_the_reference_year() {
        // Age 7 in 2005 → age 2 in 2000, 3 in 2001, 8 in 2006 (a 5-year step).
        let m = sm(Pools::default(), 2005);
        let y = run(
            &m,
            &[2000, 2001, 2006],
            &[Some(FOREST); 3],
            &[None; 3],
            &age(7.0),
        );
        assert_eq!(
            y.iter().map(|y| y.age_yr).collect::<Vec<_>>(),
            [Some(2), Some(3), Some(8)]
        );
        assert!(close(y[0].stock_end_tc_per_ha, 2.0));
        assert!(close(y[1].fluxes.gross_sink_tc_per_ha, 1.0));
        assert!(close(y[2].fluxes.gross_sink_tc_per_ha, 5.0));
        assert!(y.iter().all(|y| !y.conflict && balance_closes(y)));
        // Past the curve's last point (20 yr) the stock stays at 30: no sink.
        let y = run(
            &m,
            &[2005, 2006],
            &[Some(FOREST); 2],
            &[None; 2],
            &age(30.0),
        );
        assert!(close(y[1].fluxes.gross_sink_tc_per_ha, 0.0));
        // No age: the fallback age (10) in the first year, then ageing.
        let y = run(
            &m,
            &[2000, 2001],
            &[Some(FOREST); 2],
            &[None; 2],
            &Static::default(),
        );
        assert_eq!((y[0].age_yr, y[1].age_yr), (Some(10), Some(11)));
        assert!(close(y[1].fluxes.gross_sink_tc_per_ha, 2.0));
    }

    #[test]
    fn forest_before_its_origin_is_a_conflict_held_at_age_zero() {
        // Age 3 in 2010 → origin 2007; forest in 2005 and 2006 contradicts it.
        let m = sm(Pools::default(), 2010);
        let y = run(
            &m,
            &[2005, 2006, 2007, 2008],
            &[Some(FOREST); 4],
            &[None; 4],
            &age(3.0),
        );
        assert_eq!(
            y.iter().map(|y| (y.age_yr, y.conflict)).collect::<Vec<_>>(),
            [
                (Some(0), true),
                (Some(0), true),
                (Some(0), false),
                (Some(1), false)
            ]
        );
        assert!(close(y[3].fluxes.gross_sink_tc_per_ha, 1.0));
    }

    #[test]
    fn new_stands_clearing_and_other_conversions_are_stock_differences() {
        let m = sm(Pools::default(), 2000);
        // Grassland (3 t C/ha) → forest at age 0 (0) → age 1 (1).
        let y = run(
            &m,
            &[2000, 2001, 2002],
            &[Some(GRASS), Some(FOREST), Some(FOREST)],
            &[None; 3],
            &age(40.0),
        );
        assert_eq!(y[1].age_yr, Some(0));
        assert_eq!(y[1].state.origin_year, Some(2001));
        assert!(close(y[1].fluxes.conversion_tc_per_ha, 3.0));
        assert_eq!(
            (y[1].class_before, y[1].class),
            (
                Some(EcosystemClass::Grassland),
                Some(EcosystemClass::Forest)
            )
        );
        assert!(close(y[2].fluxes.gross_sink_tc_per_ha, 1.0));
        // Forest of age 15 (20) → grassland (3): 17 t C/ha cleared, the age forgotten.
        let y = run(
            &m,
            &[2000, 2001],
            &[Some(FOREST), Some(GRASS)],
            &[None; 2],
            &age(15.0),
        );
        assert!(close(y[1].fluxes.clearing_tc_per_ha, 17.0));
        assert_eq!((y[1].state.origin_year, y[1].age_yr), (None, None));
        // Gobi (0.5) → grassland (3): an uptake of 2.5 t C/ha.
        let y = run(
            &m,
            &[2000, 2001],
            &[Some(DESERT), Some(GRASS)],
            &[None; 2],
            &Static::default(),
        );
        assert!(close(y[1].fluxes.conversion_tc_per_ha, -2.5));
        // With every pool: grassland 36.5 → forest age 0 (0 + 4 + 90).
        let m = sm(ALL, 2000);
        let y = run(
            &m,
            &[2000, 2001],
            &[Some(GRASS), Some(FOREST)],
            &[None; 2],
            &Static::default(),
        );
        assert!(close(y[1].fluxes.conversion_tc_per_ha, 36.5 - 94.0));
        assert!(balance_closes(&y[1]));
    }

    #[test]
    fn a_fire_emits_its_pool_fractions_and_resets_the_age() {
        // Age 15 with every pool: biomass 20, dead 4, soil 90 (stock 114).
        let m = sm(ALL, 2000);
        let y = run(
            &m,
            &[2000, 2001, 2002],
            &[Some(FOREST); 3],
            &[None, Some(0), None],
            &age(15.0),
        );
        let f = y[1].fluxes;
        let emitted = 0.45 * 20.0 + 0.6 * 4.0;
        assert_eq!(f.event.map(|e| e.0), Some(0));
        assert!(close(f.event.unwrap().1, emitted));
        // Reset: 0 + 4 + 90 left; the rest of the 20 t C/ha lost is a transfer.
        assert!(close(y[1].stock_end_tc_per_ha, 94.0));
        assert!(close(f.transfer_tc_per_ha, 20.0 - emitted));
        assert_eq!((f.gross_sink_tc_per_ha, y[1].age_yr), (0.0, Some(0)));
        assert_eq!(y[2].age_yr, Some(1));
        // Biomass only: the dead-matter fraction has nothing to burn.
        let m = sm(Pools::default(), 2000);
        let y = run(
            &m,
            &[2000, 2001],
            &[Some(FOREST); 2],
            &[None, Some(0)],
            &age(15.0),
        );
        assert!(close(y[1].fluxes.event.unwrap().1, 9.0));
        assert!(y.iter().all(balance_closes));
    }

    #[test]
    fn a_thinning_moves_the_stand_to_its_equivalent_age() {
        // Age 15 (biomass 20): 30 % leaves, 5 % is emitted; 14 t C/ha is first reached at 12 yr.
        let m = sm(Pools::default(), 2000);
        let y = run(
            &m,
            &[2000, 2001, 2002],
            &[Some(FOREST); 3],
            &[None, Some(1), None],
            &age(15.0),
        );
        assert_eq!(y[1].age_yr, Some(12));
        assert!(close(y[1].stock_end_tc_per_ha, 14.0));
        assert!(close(y[1].fluxes.event.unwrap().1, 1.0));
        assert!(close(y[1].fluxes.transfer_tc_per_ha, 5.0));
        assert_eq!(y[2].age_yr, Some(13));
        assert!(close(y[2].fluxes.gross_sink_tc_per_ha, 2.0));
    }

    #[test]
    fn events_off_forest_are_ignored_and_nodata_years_keep_the_state() {
        let m = sm(Pools::default(), 2000);
        let y = run(
            &m,
            &[2000, 2001],
            &[Some(GRASS); 2],
            &[None, Some(0)],
            &Static::default(),
        );
        assert!(y[1].event_ignored && y[1].fluxes == Fluxes::default());
        // Forest age 5 in 2000, no data in 2001, forest in 2002: age 7, sink over two years.
        let y = run(
            &m,
            &[2000, 2001, 2002],
            &[Some(FOREST), None, Some(FOREST)],
            &[None; 3],
            &age(5.0),
        );
        assert_eq!(y[1].class, None);
        assert_eq!(y[2].age_yr, Some(7));
        assert!(close(y[2].fluxes.gross_sink_tc_per_ha, 2.0));
        // A pixel first seen in 2001 starts there.
        let y = run(
            &m,
            &[2000, 2001],
            &[None, Some(FOREST)],
            &[None; 2],
            &age(5.0),
        );
        assert_eq!((y[1].age_yr, y[1].class_before), (Some(6), None));
    }

    #[test]
    fn bad_ages_are_refused_as_in_run() {
        let m = sm(Pools::default(), 2000);
        assert_eq!(
            m.first(2000, Some(FOREST), &age(-1.0)).unwrap_err(),
            PixelError::NegativeAge(-1.0)
        );
        assert_eq!(
            m.first(2000, Some(9), &Static::default()).unwrap_err(),
            PixelError::UnknownLandcoverCode(9)
        );
    }

    /// A 4 × 4 scene over three years (2000, 2001, 2002), biomass only, ages at 2000:
    /// every rule at once, the totals by hand.
    #[test]
    fn a_four_by_four_scene_sums_by_hand() {
        let m = sm(Pools::default(), 2000);
        let f = Some(FOREST);
        let g = Some(GRASS);
        let d = Some(DESERT);
        // (codes 2000..2002, event in 2001, age)
        #[allow(clippy::type_complexity)]
        let px: [([Option<i32>; 3], Option<usize>, Option<f64>); 16] = [
            ([f, f, f], None, Some(5.0)),     // 5 → 6 → 7: sinks 1, 1
            ([f, f, f], None, Some(15.0)),    // 20 → 22 → 24: sinks 2, 2
            ([f, g, g], None, Some(15.0)),    // clearing 17 in 2001
            ([g, f, f], None, None),          // conversion 3 in 2001, sink 1 in 2002
            ([f, f, f], Some(0), Some(15.0)), // fire: 9 emitted, 11 transfer; sink 1 in 2002
            ([g, g, g], Some(0), None),       // ignored event
            ([d, g, g], None, None),          // conversion −2.5
            ([g; 3], None, None),
            ([d; 3], None, None),
            ([None, f, f], None, Some(5.0)), // first seen 2001 at age 6: sink 1 in 2002
            ([f, None, f], None, Some(5.0)), // 5 → (no data) → 7: sink 2 in 2002
            ([f; 3], None, Some(30.0)),      // mature: no sink
            ([f; 3], Some(1), Some(15.0)),   // thinning: 1 emitted, 5 transfer; sink 2 in 2002
            ([g; 3], None, None),
            ([g; 3], None, None),
            ([d; 3], None, None),
        ];
        let years = [2000, 2001, 2002];
        let mut sink = [0.0; 3];
        let mut emitted = [0.0; 3];
        let mut stock = [0.0; 3];
        let mut ignored = [0; 3];
        for (codes, ev, a) in px {
            let s = Static {
                age_yr: a,
                ..Static::default()
            };
            let y = run(&m, &years, &codes, &[None, ev, None], &s);
            for k in 0..3 {
                assert!(balance_closes(&y[k]));
                sink[k] += y[k].fluxes.gross_sink_tc_per_ha;
                emitted[k] += y[k].fluxes.clearing_tc_per_ha
                    + y[k].fluxes.conversion_tc_per_ha
                    + y[k].fluxes.event.map(|e| e.1).unwrap_or(0.0);
                if y[k].class.is_some() {
                    stock[k] += y[k].stock_end_tc_per_ha;
                }
                ignored[k] += y[k].event_ignored as i32;
            }
        }
        assert!(close(sink[1], 1.0 + 2.0));
        assert!(close(sink[2], 1.0 + 2.0 + 1.0 + 1.0 + 1.0 + 2.0 + 2.0));
        assert!(close(emitted[1], 17.0 + 3.0 + 9.0 - 2.5 + 1.0));
        assert_eq!(ignored, [0, 1, 0]);
        // 2000: forests 5 + 20 + 20 + 20 + 5 + 30 + 20; grass 3 × 5; gobi 0.5 × 3.
        assert!(close(stock[0], 120.0 + 15.0 + 1.5));
        // 2002: forests 7 + 24 + 1 (new) + 1 (burnt, age 1) + 7 + 7 + 30 + 16 (thinned, 13);
        // grass 3 × 6; gobi 0.5 × 2.
        assert!(close(stock[2], 93.0 + 18.0 + 1.0));
    }

    /// The test model with soil moving over `period` years (every pool).
    fn with_soil_period(period: u32) -> SeriesModel {
        let mut m = sm(ALL, 2000);
        m.rules.soil_transition_yr = period;
        m
    }

    #[test]
    fn soil_moves_linearly_after_a_clearing_and_a_planting() {
        // Forest age 15 (biomass 20, dead 4, soil 90 = 114) cleared to grassland (3, 0.5,
        // 33 = 36.5) in 2001, soil over 4 years: 57/4 = 14.25 a year, counted as clearing.
        let m = with_soil_period(4);
        let years = [2000, 2001, 2002, 2003, 2004, 2005];
        let codes = [
            Some(FOREST),
            Some(GRASS),
            Some(GRASS),
            Some(GRASS),
            Some(GRASS),
            Some(GRASS),
        ];
        let y = run(&m, &years, &codes, &[None; 6], &age(15.0));
        let clearing: Vec<f64> = y.iter().map(|y| y.fluxes.clearing_tc_per_ha).collect();
        let expect = [0.0, 20.5 + 14.25, 14.25, 14.25, 14.25, 0.0];
        for k in 0..6 {
            assert!(close(clearing[k], expect[k]), "{k}: {}", clearing[k]);
            assert!(balance_closes(&y[k]));
            assert_eq!(y[k].fluxes.conversion_tc_per_ha, 0.0);
        }
        assert!(close(y[1].stock_end_tc_per_ha, 36.5 + 42.75));
        assert!(close(y[4].stock_end_tc_per_ha, 36.5));
        // Grassland planted in 2001: soil 33 → 90 over 4 years, an uptake of 14.25 a year
        // counted as conversion beside the stand's growth (biomass 0, 1, 2 …).
        let codes = [
            Some(GRASS),
            Some(FOREST),
            Some(FOREST),
            Some(FOREST),
            Some(FOREST),
            Some(FOREST),
        ];
        let y = run(&m, &years, &codes, &[None; 6], &Static::default());
        let conv: Vec<f64> = y.iter().map(|y| y.fluxes.conversion_tc_per_ha).collect();
        let expect = [0.0, (3.5 - 4.0) - 14.25, -14.25, -14.25, -14.25, 0.0];
        for k in 0..6 {
            assert!(close(conv[k], expect[k]), "{k}: {}", conv[k]);
            assert!(balance_closes(&y[k]));
        }
        assert!(close(y[2].fluxes.gross_sink_tc_per_ha, 1.0));
        // Period 0: everything in the year of the change, as `change` counts it.
        let m = with_soil_period(0);
        let y = run(&m, &years[..3], &codes[..3], &[None; 3], &Static::default());
        assert!(close(y[1].fluxes.conversion_tc_per_ha, 36.5 - 94.0));
        assert!(close(y[2].fluxes.conversion_tc_per_ha, 0.0));
    }

    #[test]
    fn a_change_during_a_soil_transition_starts_from_the_soil_the_pixel_has() {
        // Forest (soil 90) → grassland (33) in 2001, back to forest in 2002, period 4:
        // 2001 leaves 90 − 14.25 = 75.75 of soil; in 2002 a new transition 75.75 → 90
        // (offset −14.25, a quarter of it in 2002), the old one stopped.
        let m = with_soil_period(4);
        let y = run(
            &m,
            &[2000, 2001, 2002],
            &[Some(FOREST), Some(GRASS), Some(FOREST)],
            &[None; 3],
            &age(15.0),
        );
        assert!(close(y[1].stock_end_tc_per_ha, 3.0 + 0.5 + 75.75));
        let soil_2002 = 75.75 + 14.25 / 4.0;
        assert!(close(y[2].stock_end_tc_per_ha, 0.0 + 4.0 + soil_2002));
        assert!(close(
            y[2].fluxes.conversion_tc_per_ha,
            (3.0 + 0.5 + 75.75) - (4.0 + soil_2002)
        ));
        assert!(y.iter().all(balance_closes));
    }

    /// A restoration catalogue: a curve intervention on grassland (poplar, code 8) needing
    /// mask 0, and a rate intervention on grassland (never a stand type).
    fn restoration() -> (RestorationModel, Vec<Option<i32>>) {
        let cat: crate::model::restoration::RestorationCatalogue = toml::from_str(
            r#"[[intervention]]
code = 1
name = "belt"
label = "Belt"
eligible_classes = ["grassland"]
requires_masks = ["water"]
trajectory = { kind = "curve", forest_type = "poplar" }
survival_fraction = 1.0
cost_yuan_per_ha = 1.0
cost_evidence = "placeholder"
evidence = "placeholder"
source = "test"
[[intervention]]
code = 2
name = "grazing"
label = "Grazing exclusion"
eligible_classes = ["grassland"]
trajectory = { kind = "rate", initial_rate_tc_per_ha_yr = 9.0, duration_yr = 10, shape = "constant" }
survival_fraction = 1.0
cost_yuan_per_ha = 1.0
cost_evidence = "placeholder"
evidence = "placeholder"
source = "test"
"#,
        )
        .unwrap();
        let forest = crate::model::pixel::test_model::forest();
        let rm = RestorationModel::build(&cat, &forest, &[], &["water".to_string()], 20).unwrap();
        let types = cat
            .interventions
            .iter()
            .map(|i| i.forest_type(&forest).map(|t| t.code))
            .collect();
        (rm, types)
    }

    /// A 4 × 4 scene of new stands (2000 → 2001 → 2002): the forest type of each by the
    /// documented priority, read from its biomass at age 1 (spruce 1, poplar 2 × 1.25 = 2.5).
    #[test]
    fn a_four_by_four_scene_of_new_stands_follows_the_type_priority() {
        let mut m = sm(Pools::default(), 2000);
        m.rules.restoration = Some(restoration());
        m.rules.plantation_type_code = Some(7);
        const WATER: u32 = 1;
        const SPRUCE: f64 = 1.0;
        const POPLAR: f64 = 2.5;
        // (land cover 2000, forest-type layer, masks, expected biomass at age 1)
        let px: [(i32, Option<i32>, u32, f64); 16] = [
            // (1) the layer wins over everything.
            (GRASS, Some(7), WATER, SPRUCE),
            (GRASS, Some(8), 0, POPLAR),
            (DESERT, Some(8), 0, POPLAR),
            (GRASS, Some(7), 0, SPRUCE),
            // (2) restoration: grassland with water is eligible for the poplar belt.
            (GRASS, None, WATER, POPLAR),
            (GRASS, None, WATER, POPLAR),
            (GRASS, None, WATER, POPLAR),
            (GRASS, None, WATER, POPLAR),
            // (3) the plantation type (spruce): not eligible (no water, or gobi).
            (GRASS, None, 0, SPRUCE),
            (GRASS, None, 0, SPRUCE),
            (DESERT, None, WATER, SPRUCE),
            (DESERT, None, 0, SPRUCE),
            (GRASS, None, 0, SPRUCE),
            (DESERT, None, WATER, SPRUCE),
            (GRASS, None, 0, SPRUCE),
            (DESERT, None, 0, SPRUCE),
        ];
        let mut total = 0.0;
        for (lc, layer, masks, biomass) in px {
            let s = Static {
                forest_type_code: layer,
                masks,
                ..Static::default()
            };
            let y = run(
                &m,
                &[2000, 2001, 2002],
                &[Some(lc), Some(FOREST), Some(FOREST)],
                &[None; 3],
                &s,
            );
            assert_eq!(y[1].age_yr, Some(0));
            assert!(
                close(y[2].stock_end_tc_per_ha, biomass),
                "{lc} {layer:?} {masks}"
            );
            assert!(close(y[2].fluxes.gross_sink_tc_per_ha, biomass));
            total += y[2].fluxes.gross_sink_tc_per_ha;
        }
        // 10 spruce stands, 6 poplar stands.
        assert!(close(total, 10.0 * SPRUCE + 6.0 * POPLAR));
        // (4) without a plantation type and not eligible: the code's type (code 2 = poplar),
        // else the default (spruce).
        m.rules.plantation_type_code = None;
        for (code, biomass) in [(2, POPLAR), (FOREST, SPRUCE)] {
            let y = run(
                &m,
                &[2000, 2001, 2002],
                &[Some(GRASS), Some(code), Some(code)],
                &[None; 3],
                &Static::default(),
            );
            assert!(close(y[2].stock_end_tc_per_ha, biomass));
        }
        // A forest pixel of the first year keeps run's rule (no plantation type).
        let mut m2 = sm(Pools::default(), 2000);
        m2.rules.plantation_type_code = Some(8);
        let y = run(
            &m2,
            &[2000, 2001],
            &[Some(FOREST); 2],
            &[None; 2],
            &age(1.0),
        );
        assert!(close(y[0].stock_end_tc_per_ha, SPRUCE));
    }
}
