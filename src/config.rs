//! The scene file (TOML via serde): layers, outputs, accounting, restoration and zones,
//! resolved against the scene's folder and checked with clear errors. The model set is
//! `crate::model::Models`, loaded by `crate::io::models`; the file readers are in `crate::io`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Pools;

use crate::io::files::{read_toml, sha256_file};
pub use crate::model::Models;

/// A raster input of the scene.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    /// The raster file.
    pub path: PathBuf,
    /// Band number (1-based).
    #[serde(default = "one")]
    pub band: usize,
    /// Values meaning "no data" besides the one the raster declares (e.g. −1 for non-forest).
    #[serde(default)]
    pub nodata_values: Vec<f64>,
}

fn one() -> usize {
    1
}

/// The land-cover raster of the scene and its scheme.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LandcoverSpec {
    /// The raster file.
    pub path: PathBuf,
    /// Band number (1-based).
    #[serde(default = "one")]
    pub band: usize,
    /// A scheme name (`clcd`, `esa_worldcover`, `modis_igbp`: `models/schemes/NAME.toml`)
    /// or the path of a custom scheme file ending in `.toml`.
    pub scheme: String,
    /// Optional InVEST carbon pool table (`lucode,c_above,c_below,c_soil,c_dead`, t C/ha):
    /// when given, the stock of each code is the sum of its four pools.
    #[serde(default)]
    pub pool_table: Option<PathBuf>,
}

/// The forest-age raster (yr).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForestAgeSpec {
    /// The raster file.
    pub path: PathBuf,
    /// Band number (1-based).
    #[serde(default = "one")]
    pub band: usize,
    /// Values meaning "no age" besides the one the raster declares (e.g. −1).
    #[serde(default)]
    pub nodata_values: Vec<f64>,
    /// Year the ages refer to; ages are shifted by `base_year − reference_year`.
    #[serde(default)]
    pub reference_year: Option<i32>,
}

/// Compression of the output maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Zstandard (the default).
    #[default]
    Zstd,
    /// Deflate (zlib), readable by older software.
    Deflate,
    /// LZW.
    Lzw,
    /// Uncompressed.
    None,
}

/// File layout of the output maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Cloud-optimized GeoTIFF (tiled, internal overviews, COG ordering).
    #[default]
    Cog,
    /// Tiled GeoTIFF with internal overviews, not in COG order (no final copy: fastest).
    Tiled,
}

/// The scene's `[output]` table: how maps are written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Processing block and tile edge (px; default 512).
    #[serde(default = "default_block")]
    pub block_size_px: usize,
    /// Map compression.
    #[serde(default)]
    pub compression: Compression,
    /// Map layout.
    #[serde(default)]
    pub layout: Layout,
}

fn default_block() -> usize {
    512
}

impl Default for OutputSpec {
    fn default() -> Self {
        OutputSpec {
            block_size_px: default_block(),
            compression: Compression::default(),
            layout: Layout::default(),
        }
    }
}

/// Projection, Monte Carlo and balance settings (all optional; the CLI can override).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountingSpec {
    /// Last year of the projection (default 2060).
    #[serde(default)]
    pub until_year: Option<i32>,
    /// Monte Carlo draws (default 1000).
    #[serde(default)]
    pub draws: Option<usize>,
    /// Monte Carlo seed (default 42).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Rollout rules of restoration (and forest disturbance).
    #[serde(default)]
    pub rollout: Option<PathBuf>,
    /// Emission scenarios (default: models/emissions/xinjiang.toml).
    #[serde(default)]
    pub scenarios: Option<PathBuf>,
    /// Parameter distributions (default: models/uncertainty.toml when present).
    #[serde(default)]
    pub uncertainty: Option<PathBuf>,
    /// The region the scene's sink belongs to (default: the scene's name); the balance
    /// compares it with emissions of the same region only.
    #[serde(default)]
    pub region: Option<String>,
    /// Compare the sink with the emissions of a region the scene is not (explicit opt-in).
    #[serde(default)]
    pub allow_subregion_balance: bool,
    /// An accuracy assessment (`sinkmap assess` output folder or its assessment.json): its
    /// error-adjusted class areas and their sampling covariance enter the Monte Carlo
    /// (docs/science.md §6.8).
    #[serde(default)]
    pub assessment: Option<PathBuf>,
    /// A plot calibration (`sinkmap calibrate` output folder or its calibration.json): the
    /// GREG forest density ratio and its standard error enter the Monte Carlo.
    #[serde(default)]
    pub calibration: Option<PathBuf>,
}

impl AccountingSpec {
    /// Projection horizon when neither the scene nor the command line gives one.
    pub const DEFAULT_UNTIL_YEAR: i32 = 2060;
    /// Monte Carlo draws by default.
    pub const DEFAULT_DRAWS: usize = 1000;
    /// Monte Carlo seed by default (the same seed gives byte-identical tables).
    pub const DEFAULT_SEED: u64 = 42;

    /// This spec with every setting that `over` gives replaced (e.g. command-line flags
    /// over the scene's `[accounting]` table).
    pub fn overridden_by(&self, over: &AccountingSpec) -> AccountingSpec {
        AccountingSpec {
            until_year: over.until_year.or(self.until_year),
            draws: over.draws.or(self.draws),
            seed: over.seed.or(self.seed),
            rollout: over.rollout.clone().or_else(|| self.rollout.clone()),
            scenarios: over.scenarios.clone().or_else(|| self.scenarios.clone()),
            uncertainty: over
                .uncertainty
                .clone()
                .or_else(|| self.uncertainty.clone()),
            region: over.region.clone().or_else(|| self.region.clone()),
            allow_subregion_balance: over.allow_subregion_balance || self.allow_subregion_balance,
            assessment: over.assessment.clone().or_else(|| self.assessment.clone()),
            calibration: over
                .calibration
                .clone()
                .or_else(|| self.calibration.clone()),
        }
    }

    /// The accounting options, with the defaults (2060, 1000 draws, seed 42) filled in.
    pub fn options(&self, threads: Option<usize>) -> crate::accounting::AccountingOptions {
        crate::accounting::AccountingOptions {
            until: self.until_year.unwrap_or(Self::DEFAULT_UNTIL_YEAR),
            draws: self.draws.unwrap_or(Self::DEFAULT_DRAWS),
            seed: self.seed.unwrap_or(Self::DEFAULT_SEED),
            threads,
            scenarios: self.scenarios.clone(),
            rollout: self.rollout.clone(),
            uncertainty: self.uncertainty.clone(),
            region: self.region.clone(),
            allow_subregion_balance: self.allow_subregion_balance,
            assessment: self.assessment.clone(),
            calibration: self.calibration.clone(),
        }
    }
}

/// The period over which restoration potential is averaged.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestorationSpec {
    /// First year (planting year); default: the scene's base year.
    #[serde(default)]
    pub period_start_year: Option<i32>,
    /// Last year, inclusive (default 2060).
    #[serde(default = "y2060")]
    pub period_end_year: i32,
}

fn y2060() -> i32 {
    2060
}

impl Default for RestorationSpec {
    fn default() -> Self {
        RestorationSpec {
            period_start_year: None,
            period_end_year: y2060(),
        }
    }
}

/// The scene's `[zones]`: a polygon layer for per-zone tables.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZonesSpec {
    /// The polygon file (any format OGR reads).
    pub path: PathBuf,
    /// Layer name (default: the first layer).
    #[serde(default)]
    pub layer: Option<String>,
    /// Field with the zone id (unique).
    pub id_field: String,
    /// Field with the zone name.
    #[serde(default)]
    pub name_field: Option<String>,
    /// Repair invalid polygons (with a warning) instead of stopping.
    #[serde(default)]
    pub repair_invalid: bool,
}

/// The `[series]` table of a scene. Relative paths are taken from the scene file's folder.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesSpec {
    /// Land-cover path with `{year}`, e.g. `"landcover_{year}.tif"` (needs first/last year).
    #[serde(default)]
    pub landcover_pattern: Option<String>,
    /// Or a table year → land-cover path (`2000 = "clcd_2000.tif"`).
    #[serde(default)]
    pub landcover_by_year: std::collections::BTreeMap<String, PathBuf>,
    /// First and last year (inclusive).
    #[serde(default)]
    pub first_year: Option<i32>,
    /// Last year (inclusive).
    #[serde(default)]
    pub last_year: Option<i32>,
    /// Event rasters by year (`2005 = ["fire_2005.tif"]`); codes of the event table, 0 or
    /// nodata = no event. At most one event per pixel and year.
    #[serde(default)]
    pub events: std::collections::BTreeMap<String, Vec<PathBuf>>,
    /// The event table (default: `models_dir/events.toml`).
    #[serde(default)]
    pub event_table: Option<PathBuf>,
    /// The forest type (a name of forest.toml) of new stands where neither the forest-type
    /// layer nor restoration eligibility gives one: the region's usual plantation.
    #[serde(default)]
    pub new_stand_forest_type: Option<String>,
    /// Years over which the soil moves to the new land cover's soil after a change
    /// (default [`DEFAULT_SOIL_TRANSITION_YR`]; 0 = in the year of the change).
    #[serde(default)]
    pub soil_transition_yr: Option<u32>,
}

/// The IPCC default period of soil carbon change after a land-use change (2006 Guidelines,
/// Vol. 4, Ch. 2, Tier 1: 20 years, linear).
pub const DEFAULT_SOIL_TRANSITION_YR: u32 = 20;

/// The scene file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scene {
    /// Scene name (shown in outputs; the default balance region).
    pub name: String,
    /// The year the land cover shows.
    pub base_year: i32,
    /// The models folder; without it, the models embedded in the binary
    /// ([`crate::embedded::EMBEDDED_MODELS_DIR`]).
    #[serde(default = "crate::embedded::embedded_models_dir")]
    pub models_dir: PathBuf,
    /// Output folder.
    pub output_dir: PathBuf,
    /// The land-cover raster and its scheme.
    pub landcover: LandcoverSpec,
    /// The forest-age raster.
    #[serde(default)]
    pub forest_age: Option<ForestAgeSpec>,
    /// The forest-type raster (codes of forest.toml).
    #[serde(default)]
    pub forest_type: Option<LayerSpec>,
    /// The desert-subtype raster (codes of desert.toml).
    #[serde(default)]
    pub desert_subtype: Option<LayerSpec>,
    /// Which pools the stock includes besides living biomass.
    #[serde(default)]
    pub pools: Pools,
    /// How maps are written.
    #[serde(default)]
    pub output: OutputSpec,
    /// Zones for per-zone tables.
    #[serde(default)]
    pub zones: Option<ZonesSpec>,
    /// Mask rasters by name (non-zero = set), used by restoration eligibility.
    #[serde(default)]
    pub masks: std::collections::BTreeMap<String, LayerSpec>,
    /// The restoration period.
    #[serde(default)]
    pub restoration: RestorationSpec,
    /// When present, `sinkmap run` also projects the sink and balances it against emissions.
    #[serde(default)]
    pub accounting: Option<AccountingSpec>,
    /// An annual land-cover series for `sinkmap series` (paths relative to the scene file).
    #[serde(default)]
    pub series: Option<SeriesSpec>,
    /// Where the scene was read from (not part of the file).
    #[serde(skip)]
    pub source_path: PathBuf,
    /// SHA-256 of the scene file as read (provenance; not part of the file).
    #[serde(skip)]
    pub sha256: String,
}

impl Scene {
    /// Reads a scene; relative paths inside are taken relative to the scene file's folder.
    pub fn load(path: &Path) -> Result<Scene> {
        let mut s: Scene = read_toml(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = normalize(&base.join(&*p));
            }
        };
        if !crate::embedded::is_embedded(&s.models_dir) {
            fix(&mut s.models_dir);
        }
        fix(&mut s.output_dir);
        fix(&mut s.landcover.path);
        if let Some(p) = s.landcover.pool_table.as_mut() {
            fix(p);
        }
        if s.landcover.scheme.ends_with(".toml") {
            let mut p = PathBuf::from(&s.landcover.scheme);
            fix(&mut p);
            s.landcover.scheme = p.to_string_lossy().into_owned();
        }
        if let Some(a) = s.forest_age.as_mut() {
            fix(&mut a.path);
        }
        if let Some(l) = s.forest_type.as_mut() {
            fix(&mut l.path);
        }
        if let Some(l) = s.desert_subtype.as_mut() {
            fix(&mut l.path);
        }
        if let Some(z) = s.zones.as_mut() {
            fix(&mut z.path);
        }
        for m in s.masks.values_mut() {
            fix(&mut m.path);
        }
        if let Some(a) = s.accounting.as_mut() {
            for p in [
                &mut a.rollout,
                &mut a.scenarios,
                &mut a.uncertainty,
                &mut a.assessment,
                &mut a.calibration,
            ]
            .into_iter()
            .flatten()
            {
                fix(p);
            }
        }
        s.source_path = path.to_path_buf();
        s.sha256 = sha256_file(path)?;
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::invalid(&self.source_path, m));
        if !(1000..=3000).contains(&self.base_year) {
            return bad(format!(
                "base_year {} is not a plausible calendar year",
                self.base_year
            ));
        }
        let b = self.output.block_size_px;
        if !(16..=4096).contains(&b) || !b.is_multiple_of(16) {
            return bad(format!(
                "output.block_size_px = {b}: must be a multiple of 16 between 16 and 4096"
            ));
        }
        let (a, b) = self.restoration_period();
        if b < a {
            return bad(format!(
                "restoration period {a}–{b}: the end year is before the start year"
            ));
        }
        Ok(())
    }

    /// The restoration period (first year, last year inclusive).
    pub fn restoration_period(&self) -> (i32, i32) {
        (
            self.restoration.period_start_year.unwrap_or(self.base_year),
            self.restoration.period_end_year,
        )
    }

    /// Mask names in the order of their bits.
    pub fn mask_names(&self) -> Vec<String> {
        self.masks.keys().cloned().collect()
    }

    /// Years to add to the age layer's values to get ages in the base year.
    pub fn age_shift_yr(&self) -> i32 {
        match &self.forest_age {
            Some(a) => a.reference_year.map(|r| self.base_year - r).unwrap_or(0),
            None => 0,
        }
    }

    /// The scheme file: a path ending in `.toml`, else `models_dir/schemes/NAME.toml`.
    pub fn scheme_path(&self) -> PathBuf {
        if self.landcover.scheme.ends_with(".toml") {
            PathBuf::from(&self.landcover.scheme)
        } else {
            self.models_dir
                .join("schemes")
                .join(format!("{}.toml", self.landcover.scheme))
        }
    }
}

/// Removes `.` and resolves `..` against a preceding folder name, without touching the disk
/// (so `rasters/sample/../../out` reads `out`).
pub fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.is_empty() {
        PathBuf::from(".")
    } else {
        out.iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_resolves_parent_folders_lexically() {
        assert_eq!(
            normalize(Path::new("rasters/sample/../../out/sample")),
            PathBuf::from("out/sample")
        );
        assert_eq!(normalize(Path::new("./a/./b")), PathBuf::from("a/b"));
        assert_eq!(normalize(Path::new("../x/../y")), PathBuf::from("../y"));
        assert_eq!(normalize(Path::new("a/..")), PathBuf::from("."));
    }
}
