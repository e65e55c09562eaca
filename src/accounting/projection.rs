//! Year-by-year projection of one zone's cohorts: forests age, desert and other land keep
//! their rates, restoration cohorts enter by a rollout plan. Pure: cohorts in, tables out.

use serde::{Deserialize, Serialize};

use crate::cube::Cube;
use crate::model::{EcosystemClass, Pools, CO2_PER_C, TC_PER_HA_PER_GC_PER_M2};

use super::component::{other_classes, Components, DesertPart};
use crate::model::Models;

/// One zone's starting state, read from the cube.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ZoneCohorts {
    /// Per forest type: (age in the base year, area ha).
    pub forest: Vec<Vec<(u32, f64)>>,
    /// Area (ha) per desert subtype.
    pub desert: Vec<f64>,
    /// Area (ha) per ecosystem class for the classes without their own model.
    pub other: [f64; 9],
    /// Eligible area (ha) per intervention.
    pub eligible: Vec<f64>,
}

impl ZoneCohorts {
    /// The cohorts of zone `zone_id` in `cube`: forest cells by type and age, barren cells
    /// by desert subtype, the other classes by class, eligibility rows by intervention. Cells
    /// of a forest type, subtype or intervention the models do not know are left out.
    pub fn from_cube(cube: &Cube, zone_id: &str, models: &Models) -> ZoneCohorts {
        let mut z = ZoneCohorts {
            forest: vec![Vec::new(); models.forest.types.len()],
            desert: vec![0.0; models.desert.subtypes.len()],
            other: [0.0; 9],
            eligible: vec![
                0.0;
                models
                    .restoration
                    .as_ref()
                    .map(|r| r.interventions.len())
                    .unwrap_or(0)
            ],
        };
        for (k, acc) in cube.cells.iter().filter(|(k, _)| k.zone_id == zone_id) {
            let area = acc.area_ha();
            if let Some(name) = &k.intervention {
                if let Some(j) = models
                    .restoration
                    .as_ref()
                    .and_then(|r| r.interventions.iter().position(|i| &i.name == name))
                {
                    z.eligible[j] += area;
                }
                continue;
            }
            match k.class {
                EcosystemClass::Forest => {
                    if let (Some(ft), Some(age)) = (&k.forest_type, k.age_yr) {
                        if let Some(i) = models.forest.types.iter().position(|t| &t.name == ft) {
                            z.forest[i].push((age as u32, area));
                        }
                    }
                }
                EcosystemClass::Barren => {
                    if let Some(i) = k
                        .desert_subtype
                        .as_ref()
                        .and_then(|d| models.desert.subtypes.iter().position(|s| &s.name == d))
                    {
                        z.desert[i] += area;
                    }
                }
                c => z.other[c.index()] += area,
            }
        }
        z
    }

    /// The cohorts with every area of ecosystem class c multiplied by `m[c.index()]` (map
    /// error, docs/science.md §6.8): forest cohorts by the forest multiplier, desert subtypes
    /// by the barren one, the other classes by their own. Eligible restoration land is a plan,
    /// not a mapped class area, and stays as it is.
    pub fn scaled(&self, m: &[f64; 9]) -> ZoneCohorts {
        let f = m[EcosystemClass::Forest.index()];
        let b = m[EcosystemClass::Barren.index()];
        let mut other = self.other;
        for (a, k) in other.iter_mut().zip(m) {
            *a *= k;
        }
        ZoneCohorts {
            forest: self
                .forest
                .iter()
                .map(|t| t.iter().map(|&(age, a)| (age, a * f)).collect())
                .collect(),
            desert: self.desert.iter().map(|a| a * b).collect(),
            other,
            eligible: self.eligible.clone(),
        }
    }
}

/// A rollout rule of restoration (`rollout.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// Name of the intervention in restoration.toml.
    pub intervention: String,
    /// A zone id; none = every zone.
    #[serde(default)]
    pub zone: Option<String>,
    /// First year of planting.
    pub start_year: i32,
    /// Hectares restored each year from the start year, while eligible land remains.
    #[serde(default)]
    pub ha_per_yr: Option<f64>,
    /// Or: all eligible land, in equal parts each year from the start year to this year.
    #[serde(default)]
    pub all_eligible_by_year: Option<i32>,
}

/// The file of rollout rules (and optional forest disturbance).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutFile {
    /// The `[[rollout]]` rules, applied together (their yearly areas add up, capped by the
    /// eligible land left).
    #[serde(default, rename = "rollout")]
    pub rules: Vec<Rollout>,
    /// Annual stand-replacing disturbance / harvest fraction per forest type.
    #[serde(default)]
    pub disturbance: std::collections::BTreeMap<String, f64>,
}

/// Planting per intervention for one zone: (year, ha) lists.
pub fn plan(
    rules: &[Rollout],
    zone_id: &str,
    names: &[String],
    eligible: &[f64],
    until: i32,
) -> Vec<Vec<(i32, f64)>> {
    let mut out = vec![Vec::new(); names.len()];
    for (j, name) in names.iter().enumerate() {
        let mut left = eligible[j];
        let mut per_year: std::collections::BTreeMap<i32, f64> = Default::default();
        for r in rules
            .iter()
            .filter(|r| &r.intervention == name && r.zone.as_deref().is_none_or(|z| z == zone_id))
        {
            if let Some(h) = r.ha_per_yr {
                for y in r.start_year..=until {
                    *per_year.entry(y).or_default() += h;
                }
            } else if let Some(end) = r.all_eligible_by_year {
                let n = (end - r.start_year + 1).max(1) as f64;
                for y in r.start_year..=end.min(until) {
                    *per_year.entry(y).or_default() += eligible[j] / n;
                }
            }
        }
        for (y, a) in per_year {
            let a = a.min(left);
            if a > 0.0 {
                out[j].push((y, a));
                left -= a;
            }
        }
    }
    out
}

/// Index of the soil inorganic component (reported, counted only when switched on).
pub fn inorganic_index(m: &Models) -> usize {
    Components::of(m).desert(DesertPart::Inorganic)
}

/// One zone's projection, `[year][component]`: stocks (t C) on 1 January and 31 December, and
/// the year's gross sink and emissions from disturbance (t CO₂/yr). The net flux is
/// `gross − emissions` and equals `(stock_end − stock) × 44/12` (docs/science.md §1).
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneProjection {
    /// Stock on 1 January (t C).
    pub stock: Vec<Vec<f64>>,
    /// Stock on 31 December (t C).
    pub stock_end: Vec<Vec<f64>>,
    /// Gross sink of the year (t CO₂/yr).
    pub gross: Vec<Vec<f64>>,
    /// Emissions from disturbance in the year (t CO₂/yr, positive; forest columns only).
    pub emissions: Vec<Vec<f64>>,
}

impl ZoneProjection {
    /// Net flux (t CO₂/yr) of year index `y`, component `c`.
    pub fn net(&self, y: usize, c: usize) -> f64 {
        self.gross[y][c] - self.emissions[y][c]
    }
}

/// Fills `stock`/`stock_end` of a component whose stock starts at `start_tc` and changes only
/// by its (emission-free) flux `gross[y][c]`.
fn accumulate(p: &mut ZoneProjection, c: usize, start_tc: f64) {
    let mut s = start_tc;
    for y in 0..p.gross.len() {
        p.stock[y][c] = s;
        s += p.gross[y][c] / CO2_PER_C;
        p.stock_end[y][c] = s;
    }
}

/// Projects `z` from `base_year` to `until` (inclusive). `disturbance[t]` is the annual
/// stand-replacing fraction of forest type t. Timing (docs/science.md §1.1): every cohort grows
/// through the year; at the end of the year the disturbed fraction emits its biomass above the
/// curve's C(0) and restarts at age 0 on the next 1 January; restoration planted in a year
/// starts that year with no carbon of its own.
pub fn project(
    m: &Models,
    pools: Pools,
    z: &ZoneCohorts,
    planting: &[Vec<(i32, f64)>],
    disturbance: &[f64],
    base_year: i32,
    until: i32,
) -> ZoneProjection {
    let years = (until - base_year + 1).max(0) as usize;
    let cols = Components::of(m);
    let nc = cols.len();
    let table = || vec![vec![0.0; nc]; years];
    let mut p = ZoneProjection {
        stock: table(),
        stock_end: table(),
        gross: table(),
        emissions: table(),
    };
    // Forests: biomass tables long enough for the oldest cohort at the horizon.
    for (t, ft) in m.forest.types.iter().enumerate() {
        let col = cols.forest(t);
        let mut cohorts = z.forest[t].clone();
        if cohorts.is_empty() {
            continue;
        }
        let max_age = cohorts.iter().map(|c| c.0).max().unwrap_or(0) as usize + years + 2;
        let bio: Vec<f64> = (0..=max_age)
            .map(|a| ft.biomass_tc_per_ha(a as f64))
            .collect();
        let extra = ft.stock_tc_per_ha(0.0, pools) - ft.biomass_tc_per_ha(0.0);
        let stock_of = |cs: &[(u32, f64)]| -> f64 {
            cs.iter()
                .map(|(a, area)| area * (bio[*a as usize] + extra))
                .sum()
        };
        let d = disturbance.get(t).copied().unwrap_or(0.0);
        for y in 0..years {
            let (mut g, mut e, mut reborn) = (0.0, 0.0, 0.0);
            p.stock[y][col] = stock_of(&cohorts);
            for c in cohorts.iter_mut() {
                let a = c.0 as usize;
                g += c.1 * (bio[a + 1] - bio[a]);
                if d > 0.0 {
                    let lost = c.1 * d;
                    e += lost * (bio[a + 1] - bio[0]);
                    reborn += lost;
                    c.1 -= lost;
                }
                c.0 += 1;
            }
            if reborn > 0.0 {
                cohorts.push((0, reborn));
            }
            p.gross[y][col] = g * CO2_PER_C;
            p.emissions[y][col] = e * CO2_PER_C;
            p.stock_end[y][col] = stock_of(&cohorts);
        }
    }
    // Desert: the land keeps its base-year stock; crust, shrub and inorganic carbon accumulate
    // in stocks of their own from 0 on the base year's 1 January.
    let g = TC_PER_HA_PER_GC_PER_M2 * CO2_PER_C;
    let mut land_tc = 0.0;
    let (crust, shrub, inorganic) = (
        cols.desert(DesertPart::Crust),
        cols.desert(DesertPart::Shrub),
        cols.desert(DesertPart::Inorganic),
    );
    for (i, st) in m.desert.subtypes.iter().enumerate() {
        let a = z.desert[i];
        for row in p.gross.iter_mut() {
            row[crust] += a * st.crust_fixation_gc_per_m2_yr * g;
            row[shrub] += a * st.shrub_growth_gc_per_m2_yr * g;
            row[inorganic] += a * st.inorganic_gc_per_m2_yr * g;
        }
        land_tc += a * st.stock_tc_per_ha(pools);
    }
    for c in [crust, shrub, inorganic] {
        accumulate(&mut p, c, 0.0);
    }
    accumulate(&mut p, cols.desert(DesertPart::Land), land_tc);
    // Other land: base-year stock plus what the class's rate accumulates.
    for class in other_classes() {
        let a = z.other[class.index()];
        let Some(c) = cols.other(class) else { continue };
        if let Some(oc) = m.other.classes.iter().find(|oc| oc.class == class) {
            for row in p.gross.iter_mut() {
                row[c] = a * oc.sink_tco2_per_ha_yr();
            }
            accumulate(&mut p, c, a * oc.stock_tc_per_ha(pools));
        }
    }
    // Restoration cohorts: the additional carbon accumulated since planting.
    if let Some(r) = &m.restoration {
        for (j, iv) in r.interventions.iter().enumerate() {
            let col = cols.restoration(j);
            let gains: Vec<f64> = (0..years as u32)
                .map(|k| iv.gain_tco2_per_ha_yr(&m.forest, k))
                .collect();
            for y in 0..years {
                let year = base_year + y as i32;
                p.gross[y][col] = planting
                    .get(j)
                    .map(|pl| {
                        pl.iter()
                            .filter(|(s, _)| *s <= year)
                            .fold(0.0, |acc, (s, a)| acc + a * gains[(year - s) as usize])
                    })
                    .unwrap_or(0.0);
            }
            accumulate(&mut p, col, 0.0);
        }
    }
    p
}

/// The counted total of a year's components (the inorganic term only when switched on).
pub fn counted_total(m: &Models, row: &[f64]) -> f64 {
    let inorg = inorganic_index(m);
    row.iter()
        .enumerate()
        .filter(|(c, _)| *c != inorg || m.desert.include_inorganic)
        .map(|(_, v)| v)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cube::{quantize, CubeKey};
    use crate::model::growth::Curve;

    /// Two forest cohorts of one type with a closed-form Richards curve, projected by hand:
    /// each year's gross sink is area × (C(a + 1) − C(a)) × 44/12 summed over the cohorts,
    /// the stock area × C(a), with the ages one year older every year.
    #[test]
    fn two_cohorts_grow_along_their_curve_as_computed_by_hand() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let mut m = Models::load_dir(&root, &root.join("schemes/clcd.toml"), None).unwrap();
        m.forest.types[0].curve = Curve::Richards {
            a_tc_per_ha: 75.0,
            b_per_yr: 0.025,
            c: 2.5,
        };
        let name = m.forest.types[0].name.clone();
        let mut cube = Cube::default();
        for (age, area) in [(10u16, 100.0), (40, 50.0)] {
            let key = CubeKey {
                zone_id: "Z".into(),
                class: EcosystemClass::Forest,
                forest_type: Some(name.clone()),
                age_yr: Some(age),
                desert_subtype: None,
                intervention: None,
            };
            cube.cells.entry(key).or_default().area += quantize(area);
        }
        cube.zone_names.insert("Z".into(), "Z".into());
        let z = ZoneCohorts::from_cube(&cube, "Z", &m);
        let p = project(&m, Pools::default(), &z, &[], &[], 2020, 2030);
        let c = |t: f64| 75.0 * (1.0 - (-0.025 * t).exp()).powf(2.5);
        for y in 0..=10 {
            let t = y as f64;
            let gross = 100.0 * (c(11.0 + t) - c(10.0 + t)) + 50.0 * (c(41.0 + t) - c(40.0 + t));
            let gross = gross * 44.0 / 12.0;
            let stock = 100.0 * c(10.0 + t) + 50.0 * c(40.0 + t);
            assert!((p.gross[y][0] - gross).abs() <= 1e-9 * gross, "year {y}");
            assert!((p.stock[y][0] - stock).abs() <= 1e-9 * stock, "year {y}");
        }
    }
}
