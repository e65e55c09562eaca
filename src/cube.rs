//! The cohort cube: per zone, area (ha), stock (t C) and sink (t CO₂/yr) per cohort
//! (ecosystem class × forest type × age, or desert subtype), filled in the same pass as
//! the maps. Sums are kept in fixed point (2⁻⁵² units) so that they are exact and
//! independent of block size, thread count and summation order; partial cubes of disjoint
//! tiles add up to the cube of the whole grid.
//!
//! File format (`cube.csv`, one row per zone × cohort with non-zero area):
//! `zone_id,zone_name,class,forest_type,age_yr,desert_subtype,intervention,area_ha,stock_tc,
//! sink_tco2_yr,inorganic_tco2_yr,assumed_age_area_ha,assumed_type_area_ha` — empty cells where a dimension does not
//! apply. Rows with an `intervention` are eligibility rows: `area_ha` is the area where that
//! intervention is possible and `sink_tco2_yr` its potential (mean additional removal over the
//! restoration period); `__best__` holds the best eligible intervention of each pixel.
//! `zone_id` `__grid__` is the whole grid; `__outside__` the part of the grid outside every zone.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::pixel::PixelValue;
use crate::model::EcosystemClass;

/// Zone id of the whole grid.
pub const GRID_ZONE: &str = "__grid__";
/// Zone id of the area outside every zone.
pub const OUTSIDE_ZONE: &str = "__outside__";

/// Fixed-point scale of the exact sums.
/// 2^52: resolution 2.2e-16 (t, ha); a sum of 2^34 pixels of up to 2^30 each still fits an i128.
const SCALE: f64 = 4_503_599_627_370_496.0; // 2^52

/// Exact sums (fixed point, see [`quantize`]) of the quantities of one cohort.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CubeSums {
    /// Area (ha).
    pub area: i128,
    /// Carbon stock (t C).
    pub stock: i128,
    /// Annual sink (t CO₂/yr); for eligibility rows the restoration potential.
    pub sink: i128,
    /// Desert soil inorganic carbon (t CO₂/yr), reported apart.
    pub inorganic: i128,
    /// Forest area that got the fallback age (ha).
    pub assumed_age_area: i128,
    /// Forest area that got the default forest type (no type layer value, none from the
    /// code) (ha).
    pub assumed_type_area: i128,
}

impl CubeSums {
    /// All zero.
    pub const ZERO: CubeSums = CubeSums {
        area: 0,
        stock: 0,
        sink: 0,
        inorganic: 0,
        assumed_age_area: 0,
        assumed_type_area: 0,
    };

    /// Whether every sum is zero (such cells are not kept).
    #[inline]
    pub fn is_zero(&self) -> bool {
        *self == CubeSums::ZERO
    }

    /// Area (ha).
    pub fn area_ha(&self) -> f64 {
        dequantize(self.area)
    }

    /// Carbon stock (t C).
    pub fn stock_tc(&self) -> f64 {
        dequantize(self.stock)
    }

    /// Annual sink, or an eligibility row's potential (t CO₂/yr).
    pub fn sink_tco2_yr(&self) -> f64 {
        dequantize(self.sink)
    }

    /// Every quantity with its `cube.csv` column name, in column order.
    pub fn named(&self) -> [(&'static str, f64); 6] {
        [
            ("area_ha", self.area_ha()),
            ("stock_tc", self.stock_tc()),
            ("sink_tco2_yr", self.sink_tco2_yr()),
            ("inorganic_tco2_yr", self.inorganic_tco2_yr()),
            ("assumed_age_area_ha", self.assumed_age_area_ha()),
            ("assumed_type_area_ha", self.assumed_type_area_ha()),
        ]
    }

    /// Desert soil inorganic carbon (t CO₂/yr).
    pub fn inorganic_tco2_yr(&self) -> f64 {
        dequantize(self.inorganic)
    }

    /// Forest area with the fallback age (ha).
    pub fn assumed_age_area_ha(&self) -> f64 {
        dequantize(self.assumed_age_area)
    }

    /// Forest area with the default forest type (ha).
    pub fn assumed_type_area_ha(&self) -> f64 {
        dequantize(self.assumed_type_area)
    }
}

impl std::ops::AddAssign<&CubeSums> for CubeSums {
    #[inline]
    fn add_assign(&mut self, o: &CubeSums) {
        self.area += o.area;
        self.stock += o.stock;
        self.sink += o.sink;
        self.inorganic += o.inorganic;
        self.assumed_age_area += o.assumed_age_area;
        self.assumed_type_area += o.assumed_type_area;
    }
}

/// The per-cohort sums under the name the block code uses.
pub type Acc = CubeSums;

/// `(x × 2⁵²).round() as i128`, without the library calls of `round` and of the float →
/// 128-bit conversion where the product fits in 63 bits (every real quantity of a pixel):
/// truncating to i64 is exact there, and so is the fraction left, which rounds half away
/// from zero as `f64::round` does.
#[inline]
pub fn quantize(x: f64) -> i128 {
    let y = x * SCALE;
    if y.abs() < 9.2e18 {
        let t = y as i64;
        let frac = y - t as f64;
        (t + (frac >= 0.5) as i64 - (frac <= -0.5) as i64) as i128
    } else {
        y.round() as i128
    }
}

/// The value of a fixed-point sum made by [`quantize`]: `q / 2⁵²`, in the unit of what was
/// summed (ha, t C, t CO₂/yr).
#[inline]
pub fn dequantize(q: i128) -> f64 {
    q as f64 / SCALE
}

/// Dense numbering of cohorts used while streaming.
#[derive(Debug, Clone)]
pub struct CohortSpace {
    /// Forest type names of forest.toml, in the order of the pixel model's type index.
    pub forest_types: Vec<String>,
    /// Desert subtype names, in the order of the pixel model's subtype index.
    pub desert_subtypes: Vec<String>,
    /// Oldest stand age with a cohort of its own (yr); ages 0 ..= this per forest type.
    pub max_age_yr: u32,
    /// Restoration interventions: eligibility rows follow the cohorts.
    pub interventions: Vec<String>,
}

/// Intervention name of the rows that hold, per zone, the best eligible intervention of each
/// pixel (area with any eligible intervention, and its potential).
pub const BEST_INTERVENTION: &str = "__best__";

const N_CLASSES: usize = 9;

impl CohortSpace {
    /// Number of cohort entries (eligibility entries come after them).
    pub fn cohorts(&self) -> usize {
        N_CLASSES
            + self.desert_subtypes.len()
            + self.forest_types.len() * (self.max_age_yr as usize + 1)
    }

    /// Whether the space has no entries (never: every space has the nine class cohorts).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of entries of a dense per-block sum vector: the cohorts, then (when there are
    /// interventions) one eligibility entry per class × desert subtype (or none) × intervention
    /// (or the best one).
    pub fn len(&self) -> usize {
        self.cohorts()
            + if self.interventions.is_empty() {
                0
            } else {
                N_CLASSES * (self.desert_subtypes.len() + 1) * (self.interventions.len() + 1)
            }
    }

    /// Index of the eligibility entry of a pixel of `class` / `desert` for intervention `j`
    /// (`j == interventions.len()` for the best one).
    #[inline]
    pub fn eligibility_index(&self, class: EcosystemClass, desert: Option<u16>, j: usize) -> usize {
        let d = desert.map(|d| d as usize + 1).unwrap_or(0);
        self.cohorts()
            + (class.index() * (self.desert_subtypes.len() + 1) + d)
                * (self.interventions.len() + 1)
            + j
    }

    /// Index of a pixel's cohort: forest type × age for forest with a type and an age,
    /// the desert subtype for barren land with one, else the pixel's class (a code the
    /// scheme maps to no class is filed under built-up).
    #[inline]
    pub fn index(&self, v: &PixelValue) -> usize {
        match (v.class, v.forest_type, v.age_yr, v.desert_subtype) {
            (Some(EcosystemClass::Forest), Some(ft), Some(age), _) => {
                N_CLASSES
                    + self.desert_subtypes.len()
                    + ft as usize * (self.max_age_yr as usize + 1)
                    + age as usize
            }
            (Some(EcosystemClass::Barren), _, _, Some(st)) => N_CLASSES + st as usize,
            (Some(c), _, _, _) => c.index(),
            (None, _, _, _) => EcosystemClass::BuiltUp.index(),
        }
    }

    /// The named cube cell of dense entry `idx` in zone `zone_id` (the inverse of
    /// [`CohortSpace::index`] and [`CohortSpace::eligibility_index`]).
    pub fn key(&self, zone_id: &str, idx: usize) -> CubeKey {
        let nd = self.desert_subtypes.len();
        let z = zone_id.to_string();
        if idx >= self.cohorts() {
            let r = idx - self.cohorts();
            let ni = self.interventions.len() + 1;
            let (cd, j) = (r / ni, r % ni);
            let (c, d) = (cd / (nd + 1), cd % (nd + 1));
            return CubeKey {
                zone_id: z,
                class: EcosystemClass::ALL[c],
                forest_type: None,
                age_yr: None,
                desert_subtype: (d > 0).then(|| self.desert_subtypes[d - 1].clone()),
                intervention: Some(
                    self.interventions
                        .get(j)
                        .cloned()
                        .unwrap_or_else(|| BEST_INTERVENTION.to_string()),
                ),
            };
        }
        if idx < N_CLASSES {
            CubeKey {
                zone_id: z,
                class: EcosystemClass::ALL[idx],
                forest_type: None,
                age_yr: None,
                desert_subtype: None,
                intervention: None,
            }
        } else if idx < N_CLASSES + nd {
            CubeKey {
                zone_id: z,
                class: EcosystemClass::Barren,
                forest_type: None,
                age_yr: None,
                desert_subtype: Some(self.desert_subtypes[idx - N_CLASSES].clone()),
                intervention: None,
            }
        } else {
            let r = idx - N_CLASSES - nd;
            let per = self.max_age_yr as usize + 1;
            CubeKey {
                zone_id: z,
                class: EcosystemClass::Forest,
                forest_type: Some(self.forest_types[r / per].clone()),
                age_yr: Some((r % per) as u16),
                desert_subtype: None,
                intervention: None,
            }
        }
    }
}

/// Adds one pixel's contribution (area `area_ha`, already multiplied by any coverage
/// fraction): the building block for summing pixels into a cube from Rust without rasters.
#[inline]
pub fn add_pixel(acc: &mut Acc, v: &PixelValue, area_ha: f64) {
    add_pixels(acc, v, area_ha, 1);
}

/// Adds the contribution of `n` pixels with the same value and area (`area_ha` each, already
/// multiplied by any coverage fraction): exactly `n` times one
/// pixel's quantized contribution, so a run of equal pixels sums to the same bits as the
/// pixels added one by one.
#[inline]
pub fn add_pixels(acc: &mut Acc, v: &PixelValue, area_ha: f64, n: i128) {
    add_pixels_q(acc, v, area_ha, quantize(area_ha), n);
}

/// [`add_pixels`] with `q_area`, which must be `quantize(area_ha)`, given by the caller (the
/// pixels of a row share it, so it is computed once per row).
#[inline]
pub fn add_pixels_q(acc: &mut Acc, v: &PixelValue, area_ha: f64, q_area: i128, n: i128) {
    acc.area += n * q_area;
    acc.stock += n * quantize(area_ha * v.stock_tc_per_ha);
    acc.sink += n * quantize(area_ha * v.sink_tco2_per_ha_yr);
    if v.desert_inorganic_tco2_per_ha_yr != 0.0 {
        acc.inorganic += n * quantize(area_ha * v.desert_inorganic_tco2_per_ha_yr);
    }
    if v.age_assumed {
        acc.assumed_age_area += n * q_area;
    }
    if v.type_assumed {
        acc.assumed_type_area += n * q_area;
    }
}

/// One cube cell's coordinates.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CubeKey {
    /// Zone id ([`GRID_ZONE`] for the whole grid, [`OUTSIDE_ZONE`] outside every zone).
    pub zone_id: String,
    /// Ecosystem class of the cohort.
    pub class: EcosystemClass,
    /// Forest type (forest cohorts only).
    pub forest_type: Option<String>,
    /// Stand age in the base year, yr (forest cohorts only).
    pub age_yr: Option<u16>,
    /// Desert subtype (barren cohorts with a subtype, and their eligibility rows).
    pub desert_subtype: Option<String>,
    /// For eligibility rows: the intervention (area = eligible area, sink = potential).
    pub intervention: Option<String>,
}

/// Adds `n` eligible pixels (`area_ha` each; `q_area` must be `quantize(area_ha)`, computed
/// once by the caller for a row): their area and their potential (t CO₂/ha/yr) for one
/// intervention. (Used by the raster pass, which needs the `gdal` feature.)
#[inline]
#[cfg_attr(not(feature = "gdal"), allow(dead_code))]
pub(crate) fn add_eligible_q(
    acc: &mut Acc,
    area_ha: f64,
    q_area: i128,
    potential_tco2_per_ha_yr: f64,
    n: i128,
) {
    acc.area += n * q_area;
    acc.sink += n * quantize(area_ha * potential_tco2_per_ha_yr);
}

/// The cohort cube, keyed by names so that it can be written, read back and merged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cube {
    /// zone id → zone name (includes the grid and outside pseudo-zones).
    pub zone_names: BTreeMap<String, String>,
    /// The exact sums of every cell with a non-zero sum, in key order.
    pub cells: BTreeMap<CubeKey, CubeSums>,
}

/// One row of `cube.csv`: a cell's coordinates, its zone's name and its sums (see the module
/// documentation for the columns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CubeRow {
    /// Zone id ([`GRID_ZONE`] for the whole grid, [`OUTSIDE_ZONE`] outside every zone).
    pub zone_id: String,
    /// Zone name.
    pub zone_name: String,
    /// Ecosystem class.
    pub class: EcosystemClass,
    /// Forest type (forest cohorts).
    pub forest_type: Option<String>,
    /// Stand age (forest cohorts), yr.
    pub age_yr: Option<u16>,
    /// Desert subtype (barren land with a subtype).
    pub desert_subtype: Option<String>,
    /// Intervention of an eligibility row.
    pub intervention: Option<String>,
    /// Area (ha); eligible area for eligibility rows.
    pub area_ha: f64,
    /// Carbon stock (t C).
    pub stock_tc: f64,
    /// Annual sink (t CO₂/yr); the potential for eligibility rows.
    pub sink_tco2_yr: f64,
    /// Desert soil inorganic carbon (t CO₂/yr).
    pub inorganic_tco2_yr: f64,
    /// Forest area with the fallback age (ha).
    pub assumed_age_area_ha: f64,
    /// Forest area with the default forest type (ha); absent in cubes written before this
    /// column existed.
    #[serde(default)]
    pub assumed_type_area_ha: f64,
}

/// Totals of one zone (or any selection of cells).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Area of the data pixels (ha).
    pub area_ha: f64,
    /// Carbon stock on 1 January of the base year (t C; docs/science.md §1).
    pub stock_tc: f64,
    /// Gross sink of the base year (t CO₂/yr; docs/science.md §1): the sum of the three
    /// parts below.
    pub sink_tco2_yr: f64,
    /// The forest cohorts' part of the sink (t CO₂/yr).
    pub forest_sink_tco2_yr: f64,
    /// The desert (barren land) part of the sink (t CO₂/yr); includes soil inorganic carbon
    /// only when the desert model counts it.
    pub desert_sink_tco2_yr: f64,
    /// The part of every other class (t CO₂/yr).
    pub other_sink_tco2_yr: f64,
    /// Desert soil inorganic carbon (t CO₂/yr), reported whether or not it is counted in the
    /// sink (docs/science.md §1.2).
    pub desert_inorganic_tco2_yr: f64,
    /// Forest area that had no age and got the forest model's fallback age (ha).
    pub forest_area_assumed_age_ha: f64,
    /// Forest area that got the default forest type of forest.toml.
    pub forest_area_assumed_type_ha: f64,
}

impl Cube {
    /// Adds sums of entries of `space` (entry index, sums; in any order, an entry more than
    /// once if need be; zero sums make no cell) to zone `zone_id`: a block's sums
    /// (`dense.iter().enumerate()` for a vector of every entry).
    pub fn add_entries<'a>(
        &mut self,
        space: &CohortSpace,
        zone_id: &str,
        entries: impl IntoIterator<Item = (usize, &'a Acc)>,
    ) {
        for (idx, acc) in entries {
            if acc.is_zero() {
                continue;
            }
            *self.cells.entry(space.key(zone_id, idx)).or_default() += acc;
        }
    }

    /// Adds another cube (e.g. of a disjoint tile) into this one.
    pub fn merge(&mut self, other: &Cube) {
        for (k, v) in &other.zone_names {
            self.zone_names
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
        for (k, acc) in &other.cells {
            *self.cells.entry(k.clone()).or_default() += acc;
        }
    }

    /// Totals of the cells of one zone, optionally of one class only.
    pub fn totals(&self, zone_id: &str, class: Option<EcosystemClass>) -> Totals {
        let mut t = CubeSums::ZERO;
        let mut forest = 0i128;
        let mut desert = 0i128;
        for (k, acc) in self.cells.iter().filter(|(k, _)| {
            k.zone_id == zone_id && k.intervention.is_none() && class.is_none_or(|c| c == k.class)
        }) {
            t += acc;
            match k.class {
                EcosystemClass::Forest => forest += acc.sink,
                EcosystemClass::Barren => desert += acc.sink,
                _ => {}
            }
        }
        Totals {
            area_ha: t.area_ha(),
            stock_tc: t.stock_tc(),
            sink_tco2_yr: t.sink_tco2_yr(),
            forest_sink_tco2_yr: dequantize(forest),
            desert_sink_tco2_yr: dequantize(desert),
            other_sink_tco2_yr: dequantize(t.sink - forest - desert),
            desert_inorganic_tco2_yr: t.inorganic_tco2_yr(),
            forest_area_assumed_age_ha: t.assumed_age_area_ha(),
            forest_area_assumed_type_ha: t.assumed_type_area_ha(),
        }
    }

    /// Eligible area (ha) and potential (t CO₂/yr) of `intervention` in a zone
    /// ([`BEST_INTERVENTION`] for the best eligible intervention of each pixel).
    pub fn restoration(&self, zone_id: &str, intervention: &str) -> (f64, f64) {
        let (mut a, mut p) = (0i128, 0i128);
        for (k, acc) in &self.cells {
            if k.zone_id == zone_id && k.intervention.as_deref() == Some(intervention) {
                a += acc.area;
                p += acc.sink;
            }
        }
        (dequantize(a), dequantize(p))
    }

    /// Zone ids in the cube, pseudo-zones excluded, in sorted order.
    pub fn zone_ids(&self) -> Vec<String> {
        self.zone_names
            .keys()
            .filter(|z| *z != GRID_ZONE && *z != OUTSIDE_ZONE)
            .cloned()
            .collect()
    }

    /// Writes `cube.csv` (one [`CubeRow`] per cell, in key order) to `path`.
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        let mut w = csv::Writer::from_path(path).map_err(|e| Error::output(path, e))?;
        for (k, acc) in &self.cells {
            w.serialize(CubeRow {
                zone_id: k.zone_id.clone(),
                zone_name: self.zone_names.get(&k.zone_id).cloned().unwrap_or_default(),
                class: k.class,
                forest_type: k.forest_type.clone(),
                age_yr: k.age_yr,
                desert_subtype: k.desert_subtype.clone(),
                intervention: k.intervention.clone(),
                area_ha: acc.area_ha(),
                stock_tc: acc.stock_tc(),
                sink_tco2_yr: acc.sink_tco2_yr(),
                inorganic_tco2_yr: acc.inorganic_tco2_yr(),
                assumed_age_area_ha: acc.assumed_age_area_ha(),
                assumed_type_area_ha: acc.assumed_type_area_ha(),
            })
            .map_err(|e| Error::output(path, e))?;
        }
        w.flush().map_err(|e| Error::output(path, e))
    }

    /// Reads a cube written by [`Cube::write_csv`], refusing what a cube cannot hold (see
    /// [`Cube::read_csv_checked`]); forest types, desert subtypes and interventions are not
    /// checked against models.
    pub fn read_csv(path: &Path) -> Result<Cube> {
        Cube::read_csv_checked(path, None)
    }

    /// Reads a cube and checks its structure, naming the file and line: a header, finite
    /// numbers, areas ≥ 0 (assumed-age area at most the area), ages up to [`MAX_CUBE_AGE_YR`],
    /// one row per key, one name per zone, and — with `models` — only forest types, desert
    /// subtypes and interventions those models define.
    pub fn read_csv_checked(path: &Path, models: Option<&crate::config::Models>) -> Result<Cube> {
        let bad = |line: usize, message: String| Error::Parse {
            path: path.into(),
            message: format!("line {line}: {message}"),
        };
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.len() == 0 {
            return Err(Error::invalid(
                path,
                "empty file (0 bytes): not a cube; rerun `sinkmap run` to make it",
            ));
        }
        let mut r = csv::Reader::from_path(path).map_err(|e| Error::Parse {
            path: path.into(),
            message: e.to_string(),
        })?;
        let header = r.headers().map_err(|e| bad(1, e.to_string()))?.clone();
        for col in ["zone_id", "class", "area_ha", "stock_tc", "sink_tco2_yr"] {
            if !header.iter().any(|h| h == col) {
                return Err(bad(1, format!("no column '{col}': not a sinkmap cube")));
            }
        }
        let mut cube = Cube::default();
        let mut lines: BTreeMap<CubeKey, usize> = BTreeMap::new();
        for (i, row) in r.deserialize::<CubeRow>().enumerate() {
            let line = i + 2;
            let row = row.map_err(|e| bad(line, e.to_string()))?;
            let nums = [
                ("area_ha", row.area_ha),
                ("stock_tc", row.stock_tc),
                ("sink_tco2_yr", row.sink_tco2_yr),
                ("inorganic_tco2_yr", row.inorganic_tco2_yr),
                ("assumed_age_area_ha", row.assumed_age_area_ha),
                ("assumed_type_area_ha", row.assumed_type_area_ha),
            ];
            for (name, v) in nums {
                if !v.is_finite() {
                    return Err(bad(line, format!("{name} = {v}: not a finite number")));
                }
            }
            if row.area_ha < 0.0 || row.assumed_age_area_ha < 0.0 || row.assumed_type_area_ha < 0.0
            {
                return Err(bad(
                    line,
                    format!(
                        "negative area (area_ha {}, assumed_age_area_ha {}, assumed_type_area_ha {})",
                        row.area_ha, row.assumed_age_area_ha, row.assumed_type_area_ha
                    ),
                ));
            }
            if row.assumed_age_area_ha > row.area_ha * (1.0 + 1e-9) + 1e-9 {
                return Err(bad(
                    line,
                    format!(
                        "assumed_age_area_ha {} exceeds area_ha {}",
                        row.assumed_age_area_ha, row.area_ha
                    ),
                ));
            }
            if let Some(a) = row.age_yr {
                if u32::from(a) > MAX_CUBE_AGE_YR {
                    return Err(bad(line, format!("age_yr {a} beyond {MAX_CUBE_AGE_YR} yr")));
                }
            }
            if let Some(m) = models {
                check_names(&row, m).map_err(|msg| bad(line, msg))?;
            }
            match cube.zone_names.get(&row.zone_id) {
                Some(n) if n != &row.zone_name => {
                    return Err(bad(
                        line,
                        format!(
                            "zone '{}' named '{}' here and '{n}' above",
                            row.zone_id, row.zone_name
                        ),
                    ));
                }
                _ => {
                    cube.zone_names
                        .insert(row.zone_id.clone(), row.zone_name.clone());
                }
            }
            let key = CubeKey {
                zone_id: row.zone_id,
                class: row.class,
                forest_type: row.forest_type,
                age_yr: row.age_yr,
                desert_subtype: row.desert_subtype,
                intervention: row.intervention,
            };
            if let Some(first) = lines.get(&key) {
                return Err(bad(line, format!("duplicate of line {first} (same zone, class, type, age, subtype and intervention)")));
            }
            lines.insert(key.clone(), line);
            cube.cells.insert(
                key,
                CubeSums {
                    area: quantize(row.area_ha),
                    stock: quantize(row.stock_tc),
                    sink: quantize(row.sink_tco2_yr),
                    inorganic: quantize(row.inorganic_tco2_yr),
                    assumed_age_area: quantize(row.assumed_age_area_ha),
                    assumed_type_area: quantize(row.assumed_type_area_ha),
                },
            );
        }
        Ok(cube)
    }
}

/// The oldest age a cube row may have (yr): older than any forest stand on record.
pub const MAX_CUBE_AGE_YR: u32 = 1000;

/// Whether the names of a row exist in the models.
fn check_names(row: &CubeRow, m: &crate::config::Models) -> std::result::Result<(), String> {
    if let Some(t) = &row.forest_type {
        if !m.forest.types.iter().any(|x| &x.name == t) {
            return Err(format!("forest type '{t}' is not in forest.toml"));
        }
    }
    if let Some(d) = &row.desert_subtype {
        if !m.desert.subtypes.iter().any(|x| &x.name == d) {
            return Err(format!("desert subtype '{d}' is not in desert.toml"));
        }
    }
    if let Some(i) = &row.intervention {
        let known =
            i == BEST_INTERVENTION || m.restoration.as_ref().and_then(|c| c.get(i)).is_some();
        if !known {
            return Err(format!("intervention '{i}' is not in restoration.toml"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_sums_do_not_depend_on_order() {
        let xs: Vec<f64> = (0..1000)
            .map(|i| (i as f64 * 0.37).sin() * 1e4 + 1e-3 * i as f64)
            .collect();
        let fwd: i128 = xs.iter().map(|x| quantize(*x)).sum();
        let rev: i128 = xs.iter().rev().map(|x| quantize(*x)).sum();
        assert_eq!(fwd, rev);
        let exact: f64 = xs.iter().sum();
        assert!((dequantize(fwd) - exact).abs() < 1e-6);
    }

    #[test]
    fn cohort_indices_round_trip_to_keys() {
        let space = CohortSpace {
            forest_types: vec!["a".into(), "b".into()],
            desert_subtypes: vec!["gobi".into()],
            max_age_yr: 10,
            interventions: vec!["dune".into(), "graze".into()],
        };
        let e = space.key(
            "z",
            space.eligibility_index(EcosystemClass::Barren, Some(0), 1),
        );
        assert_eq!(
            (
                e.class,
                e.desert_subtype.as_deref(),
                e.intervention.as_deref()
            ),
            (EcosystemClass::Barren, Some("gobi"), Some("graze"))
        );
        let b = space.key(
            "z",
            space.eligibility_index(EcosystemClass::Grassland, None, 2),
        );
        assert_eq!(
            (b.class, b.desert_subtype, b.intervention.as_deref()),
            (EcosystemClass::Grassland, None, Some(BEST_INTERVENTION))
        );
        assert_eq!(
            space.eligibility_index(EcosystemClass::BuiltUp, Some(0), 2) + 1,
            space.len()
        );
        let v = PixelValue {
            class: Some(EcosystemClass::Forest),
            forest_type: Some(1),
            age_yr: Some(7),
            ..Default::default()
        };
        let k = space.key("z", space.index(&v));
        assert_eq!((k.forest_type.as_deref(), k.age_yr), (Some("b"), Some(7)));
        let d = PixelValue {
            class: Some(EcosystemClass::Barren),
            desert_subtype: Some(0),
            ..Default::default()
        };
        assert_eq!(
            space.key("z", space.index(&d)).desert_subtype.as_deref(),
            Some("gobi")
        );
        let g = PixelValue {
            class: Some(EcosystemClass::Grassland),
            ..Default::default()
        };
        assert_eq!(
            space.key("z", space.index(&g)).class,
            EcosystemClass::Grassland
        );
        assert_eq!(space.cohorts(), 9 + 1 + 22);
    }

    #[test]
    fn quantize_equals_rounding_the_scaled_value_everywhere() {
        let reference = |x: f64| (x * SCALE).round() as i128;
        let mut xs = vec![
            0.0,
            -0.0,
            0.5 / SCALE,
            -0.5 / SCALE,
            1.5 / SCALE,
            -2.5 / SCALE,
            0.49999999999999994 / SCALE,
            1.0,
            -1.0,
            2047.0,
            2048.0,
            2049.5,
            -2049.5,
            1e-300,
            4.4e-16,
            1e6,
            -1e6,
            2047.9999,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e300,
            -1e300,
        ];
        // Around the fast path's limit and the 2⁵² (integer-valued) boundary.
        for e in [52.0f64, 53.0, 62.9, 63.0, 64.0] {
            let v = 2f64.powf(e) / SCALE;
            xs.extend([v, -v, v * (1.0 + f64::EPSILON), v * (1.0 - f64::EPSILON)]);
        }
        // Many ordinary values with every kind of fraction.
        let mut state = 0x1234_5678_9abc_def0u64;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mag = 10f64.powi((state % 14) as i32 - 10);
            let v = (state >> 11) as f64 / (1u64 << 53) as f64 * mag;
            xs.push(if state & 1 == 0 { v } else { -v });
            xs.push(((v * SCALE).trunc() + 0.5) / SCALE);
        }
        for x in xs {
            assert_eq!(quantize(x), reference(x), "x = {x:e}");
        }
    }
}
