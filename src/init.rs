//! `sinkmap init DIR`: a commented starter scene and an editable copy of the embedded models.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// What the starter scene says about each land-cover product.
fn scheme_hint(scheme: &str) -> &'static str {
    match scheme {
        "esa_worldcover" => {
            "# ESA WorldCover (10 m, EPSG:4326, 3° tiles): mosaic the tiles into one virtual raster first,\n\
             #   gdalbuildvrt landcover.vrt ESA_WorldCover_10m_2021_v200_*_Map.tif\n\
             # Pixel areas are computed on the ellipsoid row by row (they shrink with latitude).\n\
             path = \"landcover.vrt\""
        }
        "modis_igbp" => {
            "# MODIS MCD12Q1 (500 m, sinusoidal, HDF4): extract the IGBP layer to GeoTIFF first,\n\
             #   gdal_translate 'HDF4_EOS:EOS_GRID:\"MCD12Q1.A2020001.h24v04.061.hdf\":MCD12Q1:LC_Type1' landcover.tif\n\
             # (or gdalbuildvrt over several tiles). Forest codes carry a default forest type.\n\
             path = \"landcover.tif\""
        }
        _ => {
            "# CLCD (30 m, Albers, CLCD_v01_YYYY_albert*.tif): the Albers grid becomes the reference grid\n\
             # and pixel areas are the projected pixel size (900 m²).\n\
             path = \"CLCD_v01_2020_albert_province.tif\""
        }
    }
}

/// The starter scene for a land-cover scheme (`clcd`, `esa_worldcover`, `modis_igbp`).
pub fn starter_scene(scheme: &str) -> String {
    format!(
        r#"# sinkmap scene (TOML). Written by `sinkmap init`; edit the paths, then `sinkmap run scene.toml`.
# Relative paths are relative to this file. Unknown keys are refused (a typo stops the run).
# Every table and key is described in the user guide (docs/guide.md).

name = "my region 2020"          # shown in the report and every output
base_year = 2020                 # the year the maps describe; forest ages are shifted to it
models_dir = "models"            # the copy written beside this file; delete the line to use
                                 # the models embedded in sinkmap
output_dir = "out"               # maps, tables and report.html go here

[landcover]
{hint}
scheme = "{scheme}"              # clcd | esa_worldcover | modis_igbp | path/to/custom_scheme.toml
# band = 1
# pool_table = "invest_pools.csv" # optional InVEST carbon pool table (lucode,c_above,c_below,c_soil,c_dead)

# Optional: forest age in years, any grid and CRS (aligned to the land cover by nearest neighbour).
# Without it every forest pixel gets fallback_age_yr of models/forest.toml (counted in the summary).
# [forest_age]
# path = "forest_age_2020.tif"
# nodata_values = [-1]           # values meaning "no age" besides the raster's own nodata
# reference_year = 2020          # the year of the ages (shifted to base_year)

# Optional: forest type, coded with the `code` values of models/forest.toml
# (1 tianshan_spruce, 2 altai_larch, 3 desert_poplar, 4 birch_broadleaf, 5 plantation_poplar_elm,
# 6 saxaul_tamarisk). Recode another product first, e.g.
#   gdal_calc.py -A types.tif --outfile=forest_type.tif --calc="1*(A==12)+2*(A==13)" --type=Byte
# Without it every forest pixel gets default_forest_type (counted, warned, shown in the report).
# [forest_type]
# path = "forest_type.tif"

# Optional: desert subtype, coded with the `code` values of models/desert.toml
# (1 mobile_dune, 2 semi_fixed_dune, 3 fixed_dune, 4 gobi, 5 saline_alkali).
# [desert_subtype]
# path = "desert_subtype.tif"

# Optional: carbon pools added to the stock (default: living biomass only).
# [pools]
# dead_matter = false
# soil = false

# Optional: zones to sum by (any polygon layer OGR reads, any CRS).
# [zones]
# path = "counties.shp"
# id_field = "code"              # unique per polygon
# name_field = "name"            # any text, Chinese included
# layer = "counties"             # for files with several layers
# repair_invalid = false         # true: repair invalid polygons with a warning

# Optional: named masks (non-zero = set) used by the eligibility rules of models/restoration.toml.
# [masks]
# water_access = {{ path = "water_access.tif" }}
# degraded_grassland = {{ path = "degraded_grassland.tif" }}

# Optional: the period over which restoration potential is averaged.
# [restoration]
# period_start_year = 2020       # default: base_year
# period_end_year = 2060

# Optional: project the sink year by year and balance it against emission scenarios.
# [accounting]
# until_year = 2060
# draws = 1000                   # Monte Carlo draws
# seed = 42
# rollout = "rollout.toml"       # restoration rollout rules and [disturbance] rates
# scenarios = "models/emissions/xinjiang.toml"
# uncertainty = "models/uncertainty.toml"

# Optional: map format.
# [output]
# block_size_px = 512            # multiple of 16; changes speed and memory, never a number
# compression = "zstd"           # zstd | deflate | lzw | none
# layout = "cog"                 # cog | tiled
"#,
        hint = scheme_hint(scheme),
        scheme = scheme
    )
}

/// Writes `dir/scene.toml` and `dir/models/` whole or not at all; never overwrites anything.
/// Returns the scene path.
///
/// Both are written into a temporary folder first and then renamed into place: a missing or
/// empty `dir` is replaced in one `rename(2)` (a failure or a kill leaves nothing behind);
/// into a folder that holds other files (the user's rasters), `models/` is moved first and
/// `scene.toml` last, so a scene never names models that are not all there.
pub fn init(dir: &Path, scheme: &str) -> Result<PathBuf> {
    if !matches!(scheme, "clcd" | "esa_worldcover" | "modis_igbp") {
        return Err(Error::Usage(format!(
            "unknown scheme '{scheme}': expected clcd, esa_worldcover or modis_igbp"
        )));
    }
    let scene = dir.join("scene.toml");
    let models = dir.join("models");
    for p in [&scene, &models] {
        if std::fs::symlink_metadata(p).is_ok() {
            return Err(Error::invalid(
                p,
                "already exists; not overwritten (remove it or choose another folder)",
            ));
        }
    }
    if std::fs::symlink_metadata(dir).is_ok_and(|m| !m.is_dir()) {
        return Err(Error::invalid(dir, "exists and is not a folder"));
    }
    let empty = match std::fs::read_dir(dir) {
        Ok(mut rd) => rd.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(Error::io(dir, e)),
    };
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "init".into());
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Beside `dir` when it is replaced whole, inside it otherwise (same file system: rename).
    let tmp = if empty {
        std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        parent.join(format!(".{name}.sinkmap-init-{}", std::process::id()))
    } else {
        dir.join(format!(".sinkmap-init-{}", std::process::id()))
    };
    let _ = std::fs::remove_dir_all(&tmp);
    let r = (|| -> Result<()> {
        // Named by the folder asked for: the temporary name means nothing to the user.
        std::fs::create_dir(&tmp).map_err(|e| Error::io(dir, e))?;
        crate::embedded::write_models(&tmp.join("models"))?;
        let s = tmp.join("scene.toml");
        std::fs::write(&s, starter_scene(scheme)).map_err(|e| Error::io(&scene, e))?;
        crate::publish::sync_tree(&tmp)?;
        if empty {
            // Onto a missing or empty folder, rename(2) is atomic.
            std::fs::rename(&tmp, dir).map_err(|e| Error::io(dir, e))?;
        } else {
            std::fs::rename(tmp.join("models"), &models).map_err(|e| Error::io(&models, e))?;
            std::fs::rename(&s, &scene).map_err(|e| Error::io(&scene, e))?;
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    r.map(|_| scene)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The starter scene parses as a scene (its commented tables are valid once uncommented,
    /// which the guide test exercises) and names the scheme asked for.
    #[test]
    fn starter_scene_is_a_valid_scene_for_each_scheme() {
        for scheme in ["clcd", "esa_worldcover", "modis_igbp"] {
            let text = starter_scene(scheme);
            let s: crate::config::Scene = toml::from_str(&text).unwrap();
            assert_eq!(s.landcover.scheme, scheme);
            assert_eq!(s.models_dir, PathBuf::from("models"));
            // Uncommenting every optional table still gives a valid scene.
            let all: String = text
                .lines()
                .map(|l| match l.strip_prefix("# ") {
                    Some(r)
                        if r.starts_with('[')
                            || r.split_once('=').is_some_and(|(k, _)| {
                                !k.trim().contains(' ') && !k.trim().is_empty()
                            }) =>
                    {
                        r.to_string()
                    }
                    _ => l.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n");
            let s: crate::config::Scene = toml::from_str(&all).unwrap_or_else(|e| {
                panic!("{scheme}: uncommented starter does not parse: {e}\n{all}")
            });
            assert!(s.forest_age.is_some() && s.zones.is_some() && s.accounting.is_some());
            assert_eq!(s.masks.len(), 2);
        }
    }
}
