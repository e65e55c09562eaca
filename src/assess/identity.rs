//! The identity of the map an assessment or a calibration was made against (land-cover file
//! content, grid, class scheme), recorded in assessment.json / calibration.json so that the
//! accounting refuses to use one made for another scene, grid, scheme or map version.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::{Models, Scene};
use crate::error::{Error, Result};

/// What a map-error estimate is tied to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapIdentity {
    /// SHA-256 of the land-cover raster file as read.
    pub landcover_sha256: String,
    /// Width of the land-cover grid (pixels).
    pub width: usize,
    /// Height of the land-cover grid (pixels).
    pub height: usize,
    /// The grid's GDAL geotransform.
    pub geo_transform: [f64; 6],
    /// The grid's CRS as WKT.
    pub crs_wkt: String,
    /// Name of the land-cover class scheme.
    pub scheme: String,
    /// (code, ecosystem class name) of every code of the scheme, in scheme order.
    pub scheme_codes: Vec<(i32, String)>,
}

impl MapIdentity {
    /// The identity of a scene's land-cover map.
    pub fn of_scene(scene: &Scene, models: &Models) -> Result<MapIdentity> {
        let grid = landcover_grid(scene)?;
        let (sha, _) = crate::manifest::sha256_of(&scene.landcover.path)?;
        Ok(MapIdentity {
            landcover_sha256: sha,
            width: grid.width,
            height: grid.height,
            geo_transform: grid.geo_transform,
            crs_wkt: grid.crs_wkt,
            scheme: models.scheme.name.clone(),
            scheme_codes: models
                .scheme
                .codes
                .iter()
                .map(|c| (c.value, c.class.name().to_string()))
                .collect(),
        })
    }

    /// Refuses `recorded` (read from `file`) unless it is this map: the first difference is
    /// named, with what to do.
    pub fn check(&self, recorded: &MapIdentity, file: &Path, what: &str) -> Result<()> {
        let redo = format!("rerun `sinkmap {what}` on this scene");
        let refuse = |m: String| Err(Error::invalid(file, format!("{m}; {redo}")));
        if (recorded.width, recorded.height) != (self.width, self.height)
            || recorded
                .geo_transform
                .iter()
                .zip(&self.geo_transform)
                .any(|(a, b)| (a - b).abs() > 1e-9 * a.abs().max(b.abs()).max(1.0))
        {
            return refuse(format!(
                "made on another grid ({} × {} px, geotransform {:?}) than the scene's ({} × {} px, {:?})",
                recorded.width,
                recorded.height,
                recorded.geo_transform,
                self.width,
                self.height,
                self.geo_transform
            ));
        }
        if recorded.crs_wkt != self.crs_wkt {
            return refuse("made on a grid in another CRS than the scene's".into());
        }
        if recorded.scheme != self.scheme || recorded.scheme_codes != self.scheme_codes {
            return refuse(format!(
                "made with class scheme '{}' ({} codes), the scene uses '{}' ({} codes)",
                recorded.scheme,
                recorded.scheme_codes.len(),
                self.scheme,
                self.scheme_codes.len()
            ));
        }
        if recorded.landcover_sha256 != self.landcover_sha256 {
            return refuse(format!(
                "stale: made against a land-cover file with SHA-256 {}…, the scene's land cover is now {}…",
                &recorded.landcover_sha256[..recorded.landcover_sha256.len().min(12)],
                &self.landcover_sha256[..self.landcover_sha256.len().min(12)]
            ));
        }
        Ok(())
    }
}

/// The grid of the scene's land-cover raster.
#[cfg(feature = "gdal")]
fn landcover_grid(scene: &Scene) -> Result<crate::grid::Grid> {
    crate::raster::reference_grid(&scene.landcover.path, scene.landcover.band)
}

/// Without GDAL the land-cover raster cannot be read: a map-error estimate cannot be checked
/// against it, so it is refused (an environment fault) rather than trusted unchecked.
#[cfg(not(feature = "gdal"))]
fn landcover_grid(scene: &Scene) -> Result<crate::grid::Grid> {
    Err(Error::Environment {
        what: "GDAL".into(),
        message: format!(
            "{}: checking an assessment or calibration against the land-cover map reads the raster, and this sinkmap was built without the `gdal` feature",
            scene.landcover.path.display()
        ),
    })
}

#[cfg(all(test, not(feature = "gdal")))]
mod tests {
    use super::*;

    /// Without GDAL a map-error estimate is refused as an environment fault naming the
    /// land-cover file, never used unchecked.
    #[test]
    fn without_gdal_the_map_identity_is_refused_as_an_environment_fault() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let scene = Scene::load(&root.join("rasters/sample/scene.toml")).unwrap();
        let models = Models::load(&scene).unwrap();
        let e = MapIdentity::of_scene(&scene, &models).unwrap_err();
        assert_eq!(e.fault(), crate::Fault::Environment, "{e}");
        let text = e.to_string();
        assert!(text.contains("`gdal` feature"), "{text}");
        assert!(text.contains("landcover"), "{text}");
    }
}
