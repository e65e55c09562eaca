//! The per-pixel state machine of a series: pure, no GDAL.
//!
//! A pixel's state is its last observed land-cover code and, for a forest stand, the stand's
//! **origin year** (the year its age was 0). The age in year `y` is `y − origin`, kept within
//! `0..=max_plausible_age_yr`. One state covers every rule:
//!
//! - a forest pixel of the first year takes its origin from the age raster:
//!   `origin = reference_year − round(age)` — so ages are shifted forward after the reference
//!   year and back-cast before it, exactly as `run` shifts them to its base year; a forest
//!   pixel without an age starts at the model's fallback age in its first year;
//! - forest stays forest: the age grows with the years (`y − origin`), and the gross sink is
//!   the stock change `C(a₁) − C(a₀)`;
//! - non-forest → forest: a new stand with origin = this year (age 0), its type from the
//!   forest-type layer, else the land-cover code's type, else the default type (the rule of
//!   [`PixelModel::evaluate`]); the stock difference of the two states is the conversion flux;
//! - forest → non-forest: the stock difference is the clearing emission (biomass, and the
//!   dead matter and soil the scene counts, oxidised in the year: IPCC Tier 1, instant);
//! - other transitions: the stock difference of the two classes is the conversion flux
//!   (positive = emission, negative = uptake);
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

use crate::model::pixel::{PixelError, PixelInput, PixelModel};
use crate::model::{EcosystemClass, Pools};

use super::events::EventCatalogue;

/// What the state machine carries from one year to the next for one pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PixelState {
    /// The last land-cover code seen (None: never seen yet).
    pub code: Option<i32>,
    /// The forest stand's origin year (None: not forest).
    pub origin_year: Option<i32>,
    /// The year the code was seen (the start of the next step).
    pub year: i32,
}

/// The static layers of a pixel (the same every year).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Static {
    /// The age raster's value (yr) at its reference year.
    pub age_yr: Option<f64>,
    pub forest_type_code: Option<i32>,
    pub desert_subtype_code: Option<i32>,
}

/// Carbon moved by one step, t C/ha (emissions positive).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Fluxes {
    /// Growth of stands that stay forest without an event.
    pub gross_sink_tc_per_ha: f64,
    /// Forest → non-forest without an event.
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
    pub state: PixelState,
    /// Class this year (None: no data this year; then nothing is counted).
    pub class: Option<EcosystemClass>,
    /// Class the year before (None in the first year or after a nodata year's first sight).
    pub class_before: Option<EcosystemClass>,
    pub stock_start_tc_per_ha: f64,
    pub stock_end_tc_per_ha: f64,
    /// Stand age this year (forest only).
    pub age_yr: Option<u16>,
    pub fluxes: Fluxes,
    /// Land cover says forest before the age raster's origin.
    pub conflict: bool,
    /// An event fell on a pixel that was not forest.
    pub event_ignored: bool,
}

/// The models of a series: the scene's (for every stock) and the same tables with one pool at
/// a time (to split a stock into biomass, dead matter and soil for the event fractions).
#[derive(Debug, Clone)]
pub struct SeriesModel {
    pub scene: PixelModel,
    biomass: PixelModel,
    dead: PixelModel,
    soil: PixelModel,
    pools: Pools,
    pub events: EventCatalogue,
    /// The age raster's reference year.
    pub reference_year: i32,
    fallback_age_yr: u32,
}

/// A stock split into its pools (t C/ha); the pools the scene leaves out are 0.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Split {
    biomass: f64,
    dead: f64,
    soil: f64,
}

impl SeriesModel {
    /// `build(pools)` builds the per-pixel tables with the given pools (the scene's builder).
    pub fn new(
        build: impl Fn(Pools) -> Result<PixelModel, String>,
        pools: Pools,
        events: EventCatalogue,
        reference_year: i32,
        fallback_age_yr: u32,
    ) -> Result<SeriesModel, String> {
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
        })
    }

    fn input(&self, code: i32, age: Option<u16>, s: &Static) -> PixelInput {
        PixelInput {
            landcover_code: code,
            forest_age_yr: age.map(f64::from),
            forest_type_code: s.forest_type_code,
            desert_subtype_code: s.desert_subtype_code,
        }
    }

    /// Class and stock of a code at an age.
    fn stock(
        &self,
        code: i32,
        age: Option<u16>,
        s: &Static,
    ) -> Result<(EcosystemClass, f64), PixelError> {
        let v = self.scene.evaluate(&self.input(code, age, s))?;
        Ok((v.class.unwrap_or(EcosystemClass::Barren), v.stock_tc_per_ha))
    }

    /// The stock of a code at an age split into pools.
    fn split(&self, code: i32, age: Option<u16>, s: &Static) -> Result<Split, PixelError> {
        let px = self.input(code, age, s);
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

    fn is_forest(&self, code: i32, s: &Static) -> Result<bool, PixelError> {
        Ok(self.stock(code, None, s)?.0 == EcosystemClass::Forest)
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
        let (age, conflict) = match origin {
            Some(o) => {
                let (a, c) = self.age_in(o, year);
                (Some(a), c)
            }
            None => (None, false),
        };
        let (class, stock) = self.stock(code, age, s)?;
        Ok(Year {
            state: PixelState {
                code: Some(code),
                origin_year: origin,
                year,
            },
            class: Some(class),
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
        let age0 = prev.origin_year.map(|o| self.age_in(o, prev.year).0);
        let (class0, stock0) = self.stock(prev_code, age0, s)?;
        let was_forest = prev.origin_year.is_some();
        let now_forest = self.is_forest(code, s)?;
        let mut fl = Fluxes::default();
        let mut event_ignored = false;
        let origin = match (was_forest, now_forest, event) {
            (true, _, Some(e)) => {
                let ev = &self.events.events[e];
                let p = self.split(prev_code, age0, s)?;
                let emitted = ev.biomass_emitted_fraction * p.biomass
                    + ev.dead_matter_emitted_fraction * p.dead
                    + ev.soil_emitted_fraction * p.soil;
                fl.event = Some((e, emitted));
                if !now_forest {
                    None
                } else if ev.age_reset {
                    Some(year)
                } else {
                    // The youngest age whose biomass reaches what the event left.
                    let left = (1.0 - ev.biomass_lost()) * p.biomass;
                    let a0 = age0.unwrap_or(0);
                    let mut a = 0;
                    while a < a0 && self.split(code, Some(a), s)?.biomass < left {
                        a += 1;
                    }
                    Some(year - a as i32)
                }
            }
            (true, true, None) => prev.origin_year,
            (false, true, ev) => {
                event_ignored = ev.is_some();
                Some(year)
            }
            (_, false, ev) => {
                event_ignored = ev.is_some() && !was_forest;
                None
            }
        };
        let (age, conflict) = match origin {
            Some(o) => {
                let (a, c) = self.age_in(o, year);
                (Some(a), c)
            }
            None => (None, false),
        };
        let (class, stock) = self.stock(code, age, s)?;
        let loss = stock0 - stock;
        match (was_forest, now_forest, fl.event) {
            (_, _, Some((_, emitted))) => fl.transfer_tc_per_ha = loss - emitted,
            (true, true, None) => fl.gross_sink_tc_per_ha = -loss,
            (true, false, None) => fl.clearing_tc_per_ha = loss,
            (false, _, None) => fl.conversion_tc_per_ha = loss,
        }
        Ok(Year {
            state: PixelState {
                code: Some(code),
                origin_year: origin,
                year,
            },
            class: Some(class),
            class_before: Some(class0),
            stock_start_tc_per_ha: stock0,
            stock_end_tc_per_ha: stock,
            age_yr: age,
            fluxes: fl,
            conflict,
            event_ignored,
        })
    }
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
        SeriesModel::new(|p| Ok(model(p, None)), pools, events(), reference_year, 10).unwrap()
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
}
