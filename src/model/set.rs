//! The one model set: every model file of a scene as data (scheme, forest curves, desert
//! subtypes, other classes, pool table, restoration catalogue). The run builds its per-pixel
//! tables from it; the accounting perturbs copies of it draw by draw. Loading it from files
//! is io's job (`crate::io::models`).

use std::path::PathBuf;

use crate::config::Scene;
use crate::error::{Error, Result};
use crate::model::desert::DesertModel;
use crate::model::forest::ForestModel;
use crate::model::growth::Curve;
use crate::model::other::OtherClasses;
use crate::model::restoration::{RestorationCatalogue, Trajectory};
use crate::model::scheme::{PoolRow, Scheme};

/// The model set of a scene: every model file, parsed, validated and cross-checked.
#[derive(Debug, Clone)]
pub struct Models {
    /// The land-cover scheme of the scene's land-cover raster.
    pub scheme: Scheme,
    /// `forest.toml`.
    pub forest: ForestModel,
    /// `desert.toml`.
    pub desert: DesertModel,
    /// `other_classes.toml`.
    pub other: OtherClasses,
    /// The scene's InVEST pool table, when it names one.
    pub pool_table: Option<Vec<PoolRow>>,
    /// `models/restoration.toml`, when the models folder has one.
    pub restoration: Option<RestorationCatalogue>,
    /// (file, sha256) of every model file read, for provenance.
    pub files: Vec<(PathBuf, String)>,
}

impl Models {
    /// The restoration tables for this scene (its masks and period), if there is a catalogue.
    pub fn restoration_model(
        &self,
        scene: &Scene,
    ) -> Result<Option<crate::model::restoration::RestorationModel>> {
        let Some(cat) = &self.restoration else {
            return Ok(None);
        };
        let (a, b) = scene.restoration_period();
        let desert_names: Vec<String> = self
            .desert
            .subtypes
            .iter()
            .map(|s| s.name.clone())
            .collect();
        crate::model::restoration::RestorationModel::build(
            cat,
            &self.forest,
            &desert_names,
            &scene.mask_names(),
            (b - a + 1) as u32,
        )
        .map(Some)
        .map_err(|e| Error::model(&scene.source_path, e))
    }

    /// Builds the per-pixel lookup tables; errors name the scheme file.
    pub fn pixel_model(&self, scene: &Scene) -> Result<crate::model::pixel::PixelModel> {
        crate::model::pixel::PixelModel::build(
            &self.scheme,
            &self.forest,
            &self.desert,
            &self.other,
            scene.pools,
            self.pool_table.as_deref(),
        )
        .map_err(|e| Error::model(scene.scheme_path(), e))
    }

    /// The value a target points at, mutably; an error names an unknown target.
    pub fn slot(&mut self, target: &str) -> std::result::Result<&mut f64, String> {
        let parts: Vec<&str> = target.split('.').collect();
        let unknown = || format!("unknown parameter target '{target}'");
        let [group, item, field] = parts[..] else {
            return Err(unknown());
        };
        match group {
            "forest" => {
                let t = self
                    .forest
                    .types
                    .iter_mut()
                    .find(|t| t.name == item)
                    .ok_or_else(unknown)?;
                curve_param(&mut t.curve, field).ok_or_else(unknown)
            }
            "desert" => {
                let s = self
                    .desert
                    .subtypes
                    .iter_mut()
                    .find(|s| s.name == item)
                    .ok_or_else(unknown)?;
                match field {
                    "crust_fixation_gc_per_m2_yr" => Ok(&mut s.crust_fixation_gc_per_m2_yr),
                    "shrub_growth_gc_per_m2_yr" => Ok(&mut s.shrub_growth_gc_per_m2_yr),
                    "inorganic_gc_per_m2_yr" => Ok(&mut s.inorganic_gc_per_m2_yr),
                    _ => Err(unknown()),
                }
            }
            "other" => {
                let c = self
                    .other
                    .classes
                    .iter_mut()
                    .find(|c| c.class.name() == item)
                    .ok_or_else(unknown)?;
                match field {
                    "sink_tc_per_ha_yr" => Ok(&mut c.sink_tc_per_ha_yr),
                    _ => Err(unknown()),
                }
            }
            "restoration" => {
                let cat = self.restoration.as_mut().ok_or_else(unknown)?;
                let i = cat
                    .interventions
                    .iter_mut()
                    .find(|i| i.name == item)
                    .ok_or_else(unknown)?;
                match (field, &mut i.trajectory) {
                    ("survival_fraction", _) => Ok(&mut i.survival_fraction),
                    (
                        "initial_rate_tc_per_ha_yr",
                        Trajectory::Rate {
                            initial_rate_tc_per_ha_yr,
                            ..
                        },
                    ) => Ok(initial_rate_tc_per_ha_yr),
                    _ => Err(unknown()),
                }
            }
            _ => Err(unknown()),
        }
    }
}

fn curve_param<'a>(c: &'a mut Curve, name: &str) -> Option<&'a mut f64> {
    match c {
        Curve::Logistic {
            a_tc_per_ha,
            b,
            c_per_yr,
        }
        | Curve::Gompertz {
            a_tc_per_ha,
            b,
            c_per_yr,
        } => match name {
            "a_tc_per_ha" => Some(a_tc_per_ha),
            "b" => Some(b),
            "c_per_yr" => Some(c_per_yr),
            _ => None,
        },
        Curve::Richards {
            a_tc_per_ha,
            b_per_yr,
            c,
        } => match name {
            "a_tc_per_ha" => Some(a_tc_per_ha),
            "b_per_yr" => Some(b_per_yr),
            "c" => Some(c),
            _ => None,
        },
        Curve::Korf { a_tc_per_ha, b, c } => match name {
            "a_tc_per_ha" => Some(a_tc_per_ha),
            "b" => Some(b),
            "c" => Some(c),
            _ => None,
        },
        Curve::Tabulated { .. } => None,
    }
}
