//! Loads the model set of a scene from its models folder (or the embedded models): parses
//! every file, validates it, cross-checks the files and records their SHA-256.

use std::path::Path;

use crate::config::Scene;
use crate::error::{Error, Result};
use crate::model::desert::DesertModel;
use crate::model::forest::ForestModel;
use crate::model::other::OtherClasses;
use crate::model::scheme::Scheme;
use crate::model::{ModelError, Models};

use super::files::{file_exists, read_toml, sha256_file};
use super::pool_table::read_pool_table;

impl Models {
    /// Reads, validates and cross-checks the scene's model files; errors name the file.
    pub fn load(scene: &Scene) -> Result<Models> {
        let dir = &scene.models_dir;
        if !crate::embedded::is_embedded(dir) && !dir.is_dir() {
            return Err(Error::invalid(
                &scene.source_path,
                format!("models_dir {} is not a folder", dir.display()),
            ));
        }
        Models::load_dir(
            dir,
            &scene.scheme_path(),
            scene.landcover.pool_table.as_deref(),
        )
    }

    /// Reads, validates and cross-checks the model files of folder `dir` (forest.toml,
    /// desert.toml, other_classes.toml, restoration.toml when present), the scheme file and
    /// the optional pool table; errors name the file.
    pub fn load_dir(dir: &Path, scheme_path: &Path, pool_table: Option<&Path>) -> Result<Models> {
        let scheme_path = scheme_path.to_path_buf();
        let forest_path = dir.join("forest.toml");
        let desert_path = dir.join("desert.toml");
        let other_path = dir.join("other_classes.toml");
        let scheme: Scheme = validated(&scheme_path, read_toml(&scheme_path)?, Scheme::validate)?;
        let forest: ForestModel = validated(
            &forest_path,
            read_toml(&forest_path)?,
            ForestModel::validate,
        )?;
        let desert: DesertModel = validated(
            &desert_path,
            read_toml(&desert_path)?,
            DesertModel::validate,
        )?;
        let other: OtherClasses =
            validated(&other_path, read_toml(&other_path)?, |o: &OtherClasses| {
                o.classes.iter().try_for_each(|c| c.validate())
            })?;
        let pool_rows = pool_table.map(read_pool_table).transpose()?;
        let restoration_path = dir.join("restoration.toml");
        let desert_names: Vec<String> = desert.subtypes.iter().map(|s| s.name.clone()).collect();
        let restoration = if file_exists(&restoration_path) {
            let cat: crate::model::restoration::RestorationCatalogue =
                read_toml(&restoration_path)?;
            cat.validate(&forest, &desert_names)
                .map_err(|e| Error::model(&restoration_path, e))?;
            Some(cat)
        } else {
            None
        };
        let mut files = Vec::new();
        for p in [&scheme_path, &forest_path, &desert_path, &other_path]
            .into_iter()
            .chain(pool_table.map(Path::to_path_buf).as_ref())
            .chain(restoration.is_some().then_some(&restoration_path))
        {
            files.push((p.clone(), sha256_file(p)?));
        }
        Ok(Models {
            scheme,
            forest,
            desert,
            other,
            pool_table: pool_rows,
            restoration,
            files,
        })
    }
}

fn validated<T>(
    path: &Path,
    value: T,
    check: impl Fn(&T) -> std::result::Result<(), ModelError>,
) -> Result<T> {
    check(&value).map_err(|e| Error::model(path, e))?;
    Ok(value)
}
