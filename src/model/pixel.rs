//! The compiled per-pixel model: lookup tables built once from the model files,
//! then evaluated for every pixel without allocation.

use super::desert::DesertModel;
use super::forest::ForestModel;
use super::other::OtherClasses;
use super::scheme::{PoolRow, Scheme};
use super::{EcosystemClass, ModelError, Pools};

/// Inputs of one pixel, already decoded from the rasters (nodata → `None`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PixelInput {
    pub landcover_code: i32,
    pub forest_age_yr: Option<f64>,
    pub forest_type_code: Option<i32>,
    pub desert_subtype_code: Option<i32>,
}

/// What the model says of one pixel. Sinks in t CO₂/ha/yr, stock in t C/ha.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PixelValue {
    pub class: Option<EcosystemClass>,
    pub stock_tc_per_ha: f64,
    /// Headline sink: forest + counted desert components + other classes.
    pub sink_tco2_per_ha_yr: f64,
    pub forest_sink_tco2_per_ha_yr: f64,
    pub desert_crust_tco2_per_ha_yr: f64,
    pub desert_shrub_tco2_per_ha_yr: f64,
    /// Always filled, counted in the headline only when switched on.
    pub desert_inorganic_tco2_per_ha_yr: f64,
    pub other_sink_tco2_per_ha_yr: f64,
    /// Forest type index and integer age for the cohort cube.
    pub forest_type: Option<u16>,
    pub age_yr: Option<u16>,
    /// True when the forest pixel had no age and the fallback age was used.
    pub age_assumed: bool,
    /// True when a forest pixel got the default forest type: no type from the forest-type
    /// layer (missing layer or nodata there) and none from its land-cover code.
    pub type_assumed: bool,
    pub desert_subtype: Option<u16>,
}

/// Why a pixel cannot be evaluated: always a problem of the input data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PixelError {
    UnknownLandcoverCode(i32),
    NegativeAge(f64),
    AbsurdAge(f64, u32),
    NonFiniteAge,
    UnknownForestType(i32),
    UnknownDesertSubtype(i32),
}

impl std::fmt::Display for PixelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            PixelError::UnknownLandcoverCode(c) => {
                write!(f, "land-cover code {c} is not in the scheme")
            }
            PixelError::NegativeAge(a) => write!(
                f,
                "negative forest age {a} yr (declare it as nodata if it means 'no forest')"
            ),
            PixelError::AbsurdAge(a, max) => {
                write!(f, "forest age {a} yr exceeds max_plausible_age_yr = {max}")
            }
            PixelError::NonFiniteAge => {
                write!(f, "forest age is NaN or infinite (declare a nodata value)")
            }
            PixelError::UnknownForestType(c) => {
                write!(f, "forest-type code {c} is not defined in forest.toml")
            }
            PixelError::UnknownDesertSubtype(c) => {
                write!(f, "desert-subtype code {c} is not defined in desert.toml")
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct CodeEntry {
    class: EcosystemClass,
    forest_type: Option<u16>,
    desert_subtype: Option<u16>,
    /// Stock from an InVEST pool table, overriding the class models.
    pool_stock_tc_per_ha: Option<f64>,
}

/// Everything needed to evaluate a pixel, as dense tables.
#[derive(Debug, Clone)]
pub struct PixelModel {
    codes: Vec<Option<CodeEntry>>,
    /// Per forest type: stock and sink for integer ages 0..=max_age.
    forest_stock: Vec<Vec<f64>>,
    forest_sink: Vec<Vec<f64>>,
    forest_type_by_code: Vec<(i32, u16)>,
    default_forest_type: u16,
    max_age_yr: u32,
    fallback_age_yr: u16,
    desert_stock: Vec<f64>,
    desert_sink: Vec<super::desert::DesertSink>,
    desert_by_code: Vec<(i32, u16)>,
    default_desert: u16,
    include_inorganic: bool,
    /// Per ecosystem class (index) stock and sink for the classes without their own model.
    other_stock: [f64; 9],
    other_sink: [f64; 9],
}

impl PixelModel {
    /// Builds the tables. `pool_table`, when given, replaces the stock of every code it lists
    /// (the InVEST carbon model's definition: c_above + c_below + c_soil + c_dead).
    pub fn build(
        scheme: &Scheme,
        forest: &ForestModel,
        desert: &DesertModel,
        other: &OtherClasses,
        pools: Pools,
        pool_table: Option<&[PoolRow]>,
    ) -> Result<PixelModel, ModelError> {
        let max_code = scheme
            .codes
            .iter()
            .map(|c| c.value)
            .max()
            .unwrap_or(0)
            .max(0) as usize;
        let mut codes = vec![None; max_code + 1];
        for c in &scheme.codes {
            let forest_type = match &c.forest_type {
                Some(n) => Some(forest.type_index(n).ok_or_else(|| {
                    ModelError::undefined(
                        format!("scheme '{}', code {}", scheme.name, c.value),
                        "forest type",
                        n,
                    )
                })? as u16),
                None => None,
            };
            let desert_subtype = match &c.desert_subtype {
                Some(n) => Some(desert.subtype_index(n).ok_or_else(|| {
                    ModelError::undefined(
                        format!("scheme '{}', code {}", scheme.name, c.value),
                        "desert subtype",
                        n,
                    )
                })? as u16),
                None => None,
            };
            codes[c.value as usize] = Some(CodeEntry {
                class: c.class,
                forest_type,
                desert_subtype,
                pool_stock_tc_per_ha: None,
            });
        }
        if let Some(rows) = pool_table {
            for r in rows {
                let entry = usize::try_from(r.lucode)
                    .ok()
                    .and_then(|i| codes.get_mut(i))
                    .and_then(|e| e.as_mut());
                match entry {
                    Some(e) => e.pool_stock_tc_per_ha = Some(r.total_tc_per_ha()),
                    None => {
                        return Err(ModelError::undefined(
                            "pool table",
                            "land-cover code (lucode)",
                            r.lucode,
                        ))
                    }
                }
            }
            if let Some(missing) = scheme
                .codes
                .iter()
                .find(|c| !rows.iter().any(|r| r.lucode == c.value))
            {
                return Err(ModelError::inconsistent(
                    "pool table",
                    format!(
                        "no row for lucode {} ({}) of scheme '{}'",
                        missing.value, missing.label, scheme.name
                    ),
                ));
            }
        }
        let max_age = forest.max_plausible_age_yr;
        let forest_stock = forest
            .types
            .iter()
            .map(|t| {
                (0..=max_age)
                    .map(|a| t.stock_tc_per_ha(a as f64, pools))
                    .collect()
            })
            .collect();
        let forest_sink = forest
            .types
            .iter()
            .map(|t| {
                (0..=max_age)
                    .map(|a| t.sink_tco2_per_ha_yr(a as f64))
                    .collect()
            })
            .collect();
        let mut other_stock = [0.0; 9];
        let mut other_sink = [0.0; 9];
        for c in &other.classes {
            other_stock[c.class.index()] = c.stock_tc_per_ha(pools);
            other_sink[c.class.index()] = c.sink_tco2_per_ha_yr();
        }
        Ok(PixelModel {
            codes,
            forest_stock,
            forest_sink,
            forest_type_by_code: forest
                .types
                .iter()
                .enumerate()
                .map(|(i, t)| (t.code, i as u16))
                .collect(),
            default_forest_type: forest.type_index(&forest.default_forest_type).ok_or_else(
                || {
                    ModelError::undefined(
                        "default_forest_type",
                        "forest type",
                        &forest.default_forest_type,
                    )
                },
            )? as u16,
            max_age_yr: max_age,
            fallback_age_yr: forest.fallback_age_yr.min(u16::MAX as u32) as u16,
            desert_stock: desert
                .subtypes
                .iter()
                .map(|s| s.stock_tc_per_ha(pools))
                .collect(),
            desert_sink: desert.subtypes.iter().map(|s| s.sink()).collect(),
            desert_by_code: desert
                .subtypes
                .iter()
                .enumerate()
                .map(|(i, s)| (s.code, i as u16))
                .collect(),
            default_desert: desert
                .subtype_index(&desert.default_subtype)
                .ok_or_else(|| {
                    ModelError::undefined(
                        "default_subtype",
                        "desert subtype",
                        &desert.default_subtype,
                    )
                })? as u16,
            include_inorganic: desert.include_inorganic,
            other_stock,
            other_sink,
        })
    }

    pub fn max_age_yr(&self) -> u32 {
        self.max_age_yr
    }

    /// Checks an age value wherever it occurs (forest or not): a negative, non-finite or
    /// absurd age means a broken layer. Returns the rounded integer age.
    pub fn check_age(&self, age_yr: f64) -> Result<u16, PixelError> {
        if !age_yr.is_finite() {
            return Err(PixelError::NonFiniteAge);
        }
        if age_yr < 0.0 {
            return Err(PixelError::NegativeAge(age_yr));
        }
        let a = age_yr.round();
        if a > self.max_age_yr as f64 {
            return Err(PixelError::AbsurdAge(age_yr, self.max_age_yr));
        }
        Ok(a as u16)
    }

    fn lookup(pairs: &[(i32, u16)], code: i32) -> Option<u16> {
        pairs.iter().find(|(c, _)| *c == code).map(|(_, i)| *i)
    }

    /// Evaluates a pixel as read from the layers: the raw age is checked as observed (so a
    /// negative value is an error even when the shift would make it positive), then moved by
    /// `age_shift_yr` to the base year (not below 0), then evaluated.
    pub fn evaluate_observed(
        &self,
        landcover_code: i32,
        raw_age_yr: Option<f64>,
        age_shift_yr: f64,
        forest_type_code: Option<i32>,
        desert_subtype_code: Option<i32>,
    ) -> Result<PixelValue, PixelError> {
        let forest_age_yr = match raw_age_yr {
            Some(a) => {
                self.check_age(a)?;
                Some((a + age_shift_yr).max(0.0))
            }
            None => None,
        };
        self.evaluate(&PixelInput {
            landcover_code,
            forest_age_yr,
            forest_type_code,
            desert_subtype_code,
        })
    }

    /// Evaluates one pixel.
    pub fn evaluate(&self, px: &PixelInput) -> Result<PixelValue, PixelError> {
        let entry = usize::try_from(px.landcover_code)
            .ok()
            .and_then(|i| self.codes.get(i).copied().flatten())
            .ok_or(PixelError::UnknownLandcoverCode(px.landcover_code))?;
        let age = px.forest_age_yr.map(|a| self.check_age(a)).transpose()?;
        let mut v = PixelValue {
            class: Some(entry.class),
            ..Default::default()
        };
        match entry.class {
            EcosystemClass::Forest => {
                let (ft, type_assumed) = match (px.forest_type_code, entry.forest_type) {
                    (Some(code), _) => (
                        Self::lookup(&self.forest_type_by_code, code)
                            .ok_or(PixelError::UnknownForestType(code))?,
                        false,
                    ),
                    (None, Some(t)) => (t, false),
                    (None, None) => (self.default_forest_type, true),
                };
                v.type_assumed = type_assumed;
                let (a, assumed) = match age {
                    Some(a) => (a, false),
                    None => (self.fallback_age_yr, true),
                };
                v.stock_tc_per_ha = self.forest_stock[ft as usize][a as usize];
                v.forest_sink_tco2_per_ha_yr = self.forest_sink[ft as usize][a as usize];
                v.sink_tco2_per_ha_yr = v.forest_sink_tco2_per_ha_yr;
                v.forest_type = Some(ft);
                v.age_yr = Some(a);
                v.age_assumed = assumed;
            }
            EcosystemClass::Barren => {
                let st = match px.desert_subtype_code {
                    Some(code) => Self::lookup(&self.desert_by_code, code)
                        .ok_or(PixelError::UnknownDesertSubtype(code))?,
                    None => entry.desert_subtype.unwrap_or(self.default_desert),
                };
                let s = self.desert_sink[st as usize];
                v.stock_tc_per_ha = self.desert_stock[st as usize];
                v.desert_crust_tco2_per_ha_yr = s.crust_tco2_per_ha_yr;
                v.desert_shrub_tco2_per_ha_yr = s.shrub_tco2_per_ha_yr;
                v.desert_inorganic_tco2_per_ha_yr = s.inorganic_tco2_per_ha_yr;
                v.sink_tco2_per_ha_yr = s.counted_tco2_per_ha_yr(self.include_inorganic);
                v.desert_subtype = Some(st);
            }
            class => {
                v.stock_tc_per_ha = self.other_stock[class.index()];
                v.other_sink_tco2_per_ha_yr = self.other_sink[class.index()];
                v.sink_tco2_per_ha_yr = v.other_sink_tco2_per_ha_yr;
            }
        }
        if let Some(s) = entry.pool_stock_tc_per_ha {
            v.stock_tc_per_ha = s;
        }
        Ok(v)
    }
}

/// A small hand-made model for the unit tests of the model and of the passes.
#[cfg(test)]
pub(crate) mod test_model {
    use super::*;

    /// The forest model of [`model`]: spruce (code 7; 0 → 0, 10 → 10, 20 → 30 t C/ha, dead
    /// 4, soil 90) and an above-ground poplar (code 8; root:shoot 0.25).
    pub(crate) fn forest() -> ForestModel {
        toml::from_str(
            r#"default_forest_type = "spruce"
max_plausible_age_yr = 100
fallback_age_yr = 10
fallback_age_source = "test"
[[forest_type]]
code = 7
name = "spruce"
label = "Spruce"
curve = { form = "tabulated", ages_yr = [0.0, 10.0, 20.0], stock_tc_per_ha = [0.0, 10.0, 30.0] }
curve_pools = "above_and_below_ground"
dead_matter_tc_per_ha = 4.0
soil_tc_per_ha = 90.0
evidence = "placeholder"
source = "test"
[[forest_type]]
code = 8
name = "poplar"
label = "Poplar"
curve = { form = "tabulated", ages_yr = [0.0, 10.0], stock_tc_per_ha = [0.0, 20.0] }
curve_pools = "above_ground"
root_shoot_ratio = 0.25
evidence = "placeholder"
source = "test"
"#,
        )
        .unwrap()
    }

    /// A small model: a tabulated forest curve (0 → 0, 10 → 10, 20 → 30 t C/ha), a second
    /// above-ground type (root:shoot 0.25), two desert subtypes and a grassland class.
    pub(crate) fn model(pools: Pools, pool_table: Option<&[PoolRow]>) -> PixelModel {
        let scheme: Scheme = toml::from_str(
            r#"name = "t"
source = "test"
nodata_value = 0
[[code]]
value = 1
label = "forest"
class = "forest"
[[code]]
value = 2
label = "poplar forest"
class = "forest"
forest_type = "poplar"
[[code]]
value = 3
label = "desert"
class = "barren"
[[code]]
value = 4
label = "grass"
class = "grassland"
"#,
        )
        .unwrap();
        let forest = forest();
        let desert: DesertModel = toml::from_str(
            r#"include_inorganic = false
default_subtype = "gobi"
[[subtype]]
code = 1
name = "dune"
label = "Dune"
biomass_tc_per_ha = 2.0
soil_tc_per_ha = 20.0
crust_fixation_gc_per_m2_yr = 3.0
shrub_growth_gc_per_m2_yr = 6.0
inorganic_gc_per_m2_yr = 1.0
evidence = "placeholder"
source = "test"
[[subtype]]
code = 2
name = "gobi"
label = "Gobi"
biomass_tc_per_ha = 0.5
soil_tc_per_ha = 5.0
crust_fixation_gc_per_m2_yr = 1.0
shrub_growth_gc_per_m2_yr = 0.0
inorganic_gc_per_m2_yr = 1.0
evidence = "placeholder"
source = "test"
"#,
        )
        .unwrap();
        let other: OtherClasses = toml::from_str(
            r#"[[class]]
class = "grassland"
biomass_tc_per_ha = 3.0
dead_matter_tc_per_ha = 0.5
soil_tc_per_ha = 33.0
sink_tc_per_ha_yr = 0.12
evidence = "placeholder"
source = "test"
"#,
        )
        .unwrap();
        PixelModel::build(&scheme, &forest, &desert, &other, pools, pool_table).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_model::model;
    use super::*;
    use crate::model::CO2_PER_C;

    const BIOMASS: Pools = Pools {
        dead_matter: false,
        soil: false,
    };

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn forest_pixels_follow_the_tabulated_curve() {
        let m = model(BIOMASS, None);
        // Age 5: half-way to 10 t C/ha; next year adds 1 t C/ha = 44/12 t CO2/ha.
        let v = m.evaluate_observed(1, Some(5.0), 0.0, None, None).unwrap();
        assert_eq!(v.class, Some(EcosystemClass::Forest));
        assert!(close(v.stock_tc_per_ha, 5.0));
        assert!(close(v.sink_tco2_per_ha_yr, CO2_PER_C));
        assert!(close(v.forest_sink_tco2_per_ha_yr, CO2_PER_C));
        assert_eq!(
            (v.forest_type, v.age_yr, v.age_assumed),
            (Some(0), Some(5), false)
        );
        // Age 15 (+ a 2-year shift = 17): 10 + 7 × 2 t C/ha, growing 2 t C/ha a year.
        let v = m.evaluate_observed(1, Some(15.0), 2.0, None, None).unwrap();
        assert!(close(v.stock_tc_per_ha, 24.0));
        assert!(close(v.sink_tco2_per_ha_yr, 2.0 * CO2_PER_C));
        // Beyond the last point: constant, no sink.
        let v = m.evaluate_observed(1, Some(40.0), 0.0, None, None).unwrap();
        assert!(close(v.stock_tc_per_ha, 30.0) && close(v.sink_tco2_per_ha_yr, 0.0));
        // No age: the fallback age (10), flagged.
        let v = m.evaluate_observed(1, None, 0.0, None, None).unwrap();
        assert!(close(v.stock_tc_per_ha, 10.0) && v.age_assumed);
        // A shift below zero stops at age 0.
        let v = m.evaluate_observed(1, Some(1.0), -5.0, None, None).unwrap();
        assert!(close(v.stock_tc_per_ha, 0.0) && v.age_yr == Some(0));
    }

    #[test]
    fn forest_type_comes_from_the_layer_else_the_code_else_the_default() {
        let m = model(BIOMASS, None);
        // Code 2 is poplar (above-ground curve × 1.25): age 4 → 8 × 1.25 = 10 t C/ha.
        let v = m.evaluate_observed(2, Some(4.0), 0.0, None, None).unwrap();
        assert!(close(v.stock_tc_per_ha, 10.0) && v.forest_type == Some(1));
        // The forest-type layer wins over the code (8 = poplar, 7 = spruce).
        let v = m
            .evaluate_observed(1, Some(4.0), 0.0, Some(8), None)
            .unwrap();
        assert!(close(v.stock_tc_per_ha, 10.0));
        let v = m
            .evaluate_observed(2, Some(4.0), 0.0, Some(7), None)
            .unwrap();
        assert!(close(v.stock_tc_per_ha, 4.0));
    }

    #[test]
    fn pools_add_dead_matter_and_soil() {
        let all = Pools {
            dead_matter: true,
            soil: true,
        };
        let m = model(all, None);
        let v = m.evaluate_observed(1, Some(5.0), 0.0, None, None).unwrap();
        assert!(close(v.stock_tc_per_ha, 5.0 + 4.0 + 90.0));
        // The sink is the biomass change only.
        assert!(close(v.sink_tco2_per_ha_yr, CO2_PER_C));
        let v = m.evaluate_observed(4, None, 0.0, None, None).unwrap();
        assert!(close(v.stock_tc_per_ha, 3.0 + 0.5 + 33.0));
    }

    #[test]
    fn desert_and_other_classes_use_their_rates() {
        let m = model(BIOMASS, None);
        let k = 0.01 * CO2_PER_C; // g C/m²/yr → t CO2/ha/yr
        let v = m.evaluate_observed(3, None, 0.0, None, Some(1)).unwrap();
        assert_eq!(
            (v.class, v.desert_subtype),
            (Some(EcosystemClass::Barren), Some(0))
        );
        assert!(close(v.stock_tc_per_ha, 2.0));
        assert!(close(v.desert_crust_tco2_per_ha_yr, 3.0 * k));
        assert!(close(v.desert_shrub_tco2_per_ha_yr, 6.0 * k));
        assert!(close(v.desert_inorganic_tco2_per_ha_yr, k));
        // The inorganic term is reported but not counted.
        assert!(close(v.sink_tco2_per_ha_yr, 9.0 * k));
        // Without a subtype value: the default subtype (gobi).
        let v = m.evaluate_observed(3, None, 0.0, None, None).unwrap();
        assert!(close(v.stock_tc_per_ha, 0.5) && close(v.sink_tco2_per_ha_yr, k));
        let v = m.evaluate_observed(4, None, 0.0, None, None).unwrap();
        assert!(close(v.stock_tc_per_ha, 3.0));
        assert!(close(v.sink_tco2_per_ha_yr, 0.12 * CO2_PER_C));
        assert!(close(v.other_sink_tco2_per_ha_yr, 0.12 * CO2_PER_C));
    }

    #[test]
    fn a_pool_table_replaces_the_stock_not_the_sink() {
        let rows: Vec<PoolRow> = (1..=4)
            .map(|c| PoolRow {
                lucode: c,
                c_above: 10.0 * c as f64,
                c_below: 1.0,
                c_soil: 2.0,
                c_dead: 0.5,
            })
            .collect();
        let m = model(BIOMASS, Some(&rows));
        let v = m.evaluate_observed(4, None, 0.0, None, None).unwrap();
        assert!(close(v.stock_tc_per_ha, 43.5));
        assert!(close(v.sink_tco2_per_ha_yr, 0.12 * CO2_PER_C));
    }

    #[test]
    fn bad_pixels_are_named() {
        let m = model(BIOMASS, None);
        let e = |r: Result<PixelValue, PixelError>| r.unwrap_err();
        assert_eq!(
            e(m.evaluate_observed(9, None, 0.0, None, None)),
            PixelError::UnknownLandcoverCode(9)
        );
        assert_eq!(
            e(m.evaluate_observed(-3, None, 0.0, None, None)),
            PixelError::UnknownLandcoverCode(-3)
        );
        // A negative age is refused as observed, even when the shift would lift it above 0.
        assert_eq!(
            e(m.evaluate_observed(1, Some(-1.0), 5.0, None, None)),
            PixelError::NegativeAge(-1.0)
        );
        assert_eq!(
            e(m.evaluate_observed(1, Some(f64::NAN), 0.0, None, None)),
            PixelError::NonFiniteAge
        );
        assert_eq!(
            e(m.evaluate_observed(1, Some(101.0), 0.0, None, None)),
            PixelError::AbsurdAge(101.0, 100)
        );
        // Checked wherever it occurs, also on non-forest land.
        assert_eq!(
            e(m.evaluate_observed(4, Some(-2.0), 0.0, None, None)),
            PixelError::NegativeAge(-2.0)
        );
        assert_eq!(
            e(m.evaluate_observed(1, Some(3.0), 0.0, Some(99), None)),
            PixelError::UnknownForestType(99)
        );
        assert_eq!(
            e(m.evaluate_observed(3, None, 0.0, None, Some(42))),
            PixelError::UnknownDesertSubtype(42)
        );
    }
}
