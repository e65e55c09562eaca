//! `sinkmap synth --years Y0..Y1`: a SYNTHETIC land-cover series for a generated scene —
//! the scene's land cover as the first year, then a few per cent of the pixels change class
//! once, in a year drawn per pixel (forest cleared to grassland; grassland, cropland and shrub
//! planted to forest), and some forest burns (an event raster per year with fires, code 1 of
//! `models/events.toml`). Deterministic for a seed. Appends a `[series]` table to the scene.

use std::io::Write;
use std::path::{Path, PathBuf};

use gdal::raster::{Buffer, RasterCreationOptions};
use gdal::{Dataset, DriverManager, Metadata};

use crate::config::{Models, Scene};
use crate::error::{Error, Result};
use crate::model::EcosystemClass;

/// Share of pixels that change class once over the series.
const CHANGE_SHARE: f64 = 0.04;
/// Share of forest pixels that burn once over the series.
const FIRE_SHARE: f64 = 0.01;

/// A uniform number in [0, 1) for (seed, col, row, salt) (splitmix64).
fn uniform(seed: u64, col: usize, row: usize, salt: u64) -> f64 {
    let mut z = seed
        ^ (col as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (row as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ salt.wrapping_mul(0x1656_67B1_9E37_79F9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// The land-cover code of a pixel in `year` and whether it burns that year, given its code in
/// the first year. A change happens once, in a year after the first.
pub fn pixel_in_year(
    first: i32,
    class: Option<EcosystemClass>,
    codes: (i32, i32),
    years: (i32, i32),
    year: i32,
    (seed, col, row): (u64, usize, usize),
) -> (i32, bool) {
    let (forest_code, grass_code) = codes;
    let (y0, y1) = years;
    let span = (y1 - y0).max(1) as f64;
    let draw_year =
        |salt| y0 + 1 + ((uniform(seed, col, row, salt) * span) as i32).min(y1 - y0 - 1);
    let mut code = first;
    if uniform(seed, col, row, 1) < CHANGE_SHARE && year >= draw_year(2) {
        code = match class {
            Some(EcosystemClass::Forest) => grass_code,
            Some(EcosystemClass::Grassland | EcosystemClass::Cropland | EcosystemClass::Shrub) => {
                forest_code
            }
            _ => first,
        };
    }
    let burns = class == Some(EcosystemClass::Forest)
        && code == first
        && uniform(seed, col, row, 3) < FIRE_SHARE
        && year == draw_year(4);
    (code, burns)
}

fn copy_empty(src: &Dataset, path: &Path) -> Result<Dataset> {
    let err = |e: gdal::errors::GdalError| Error::output(path, e);
    let driver = DriverManager::get_driver_by_name("GTiff").map_err(err)?;
    let mut opts = RasterCreationOptions::new();
    for (k, v) in [("TILED", "YES"), ("COMPRESS", "DEFLATE")] {
        opts.add_name_value(k, v).map_err(err)?;
    }
    let ds = src.create_copy(&driver, path, &opts).map_err(err)?;
    Ok(ds)
}

/// Writes `landcover_{year}.tif` for every year and `events_{year}.tif` for the years with
/// fires beside the scene, and appends the `[series]` table to the scene file.
pub fn add_years(scene_path: &Path, y0: i32, y1: i32, seed: u64) -> Result<Vec<PathBuf>> {
    if !(y1 > y0 && y1 - y0 <= 200) {
        return Err(Error::Usage(format!(
            "--years {y0}..{y1}: need at least two years, at most 200"
        )));
    }
    let scene = Scene::load(scene_path)?;
    if scene.series.is_some() {
        return Err(Error::invalid(
            scene_path,
            "the scene has a [series] table already",
        ));
    }
    let models = Models::load(&scene)?;
    let first_code = |c: EcosystemClass| {
        models
            .scheme
            .codes
            .iter()
            .find(|x| x.class == c)
            .map(|x| x.value)
            .ok_or_else(|| {
                Error::invalid(
                    scene.scheme_path(),
                    format!("the scheme has no {} code", c.name()),
                )
            })
    };
    let codes = (
        first_code(EcosystemClass::Forest)?,
        first_code(EcosystemClass::Grassland)?,
    );
    let class_of = |c: i32| {
        models
            .scheme
            .codes
            .iter()
            .find(|x| x.value == c)
            .map(|x| x.class)
    };
    let dir = scene_path.parent().unwrap_or(Path::new("."));
    let src_path = &scene.landcover.path;
    let src = Dataset::open(src_path).map_err(|e| Error::raster(src_path, e))?;
    let (w, h) = src.raster_size();
    let band = src.rasterband(1).map_err(|e| Error::raster(src_path, e))?;
    let mut written = Vec::new();
    let mut fire_years = Vec::new();
    for year in y0..=y1 {
        let lc_path = dir.join(format!("landcover_{year}.tif"));
        let ev_path = dir.join(format!("events_{year}.tif"));
        let lc = copy_empty(&src, &lc_path)?;
        let mut ev = if year > y0 {
            Some(copy_empty(&src, &ev_path)?)
        } else {
            None
        };
        let mut any_fire = false;
        for row in 0..h {
            let buf = band
                .read_as::<i32>((0, row as isize), (w, 1), (w, 1), None)
                .map_err(|e| Error::raster(src_path, e))?;
            let mut out = Vec::with_capacity(w);
            let mut fire = Vec::with_capacity(w);
            for (col, &c) in buf.data().iter().enumerate() {
                let (code, burns) =
                    pixel_in_year(c, class_of(c), codes, (y0, y1), year, (seed, col, row));
                out.push(code);
                fire.push(i32::from(burns));
                any_fire |= burns;
            }
            let werr = |e: gdal::errors::GdalError| Error::output(&lc_path, e);
            let mut b = Buffer::new((w, 1), out);
            lc.rasterband(1)
                .map_err(werr)?
                .write((0, row as isize), (w, 1), &mut b)
                .map_err(werr)?;
            if let Some(ev) = ev.as_mut() {
                let eerr = |e: gdal::errors::GdalError| Error::output(&ev_path, e);
                let mut band = ev.rasterband(1).map_err(eerr)?;
                if row == 0 {
                    band.set_no_data_value(None).map_err(eerr)?;
                    band.set_description("events (codes of events.toml; 1 = fire), SYNTHETIC")
                        .map_err(eerr)?;
                }
                let mut b = Buffer::new((w, 1), fire);
                band.write((0, row as isize), (w, 1), &mut b)
                    .map_err(eerr)?;
            }
        }
        written.push(lc_path);
        drop(ev);
        if any_fire {
            fire_years.push(year);
            written.push(ev_path);
        } else if year > y0 {
            let _ = std::fs::remove_file(&ev_path);
        }
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(scene_path)
        .map_err(|e| Error::io(scene_path, e))?;
    let mut t = format!(
        "\n# SYNTHETIC annual series written by `sinkmap synth --years {y0}..{y1}` (seed {seed}).\n[series]\nlandcover_pattern = \"landcover_{{year}}.tif\"\nfirst_year = {y0}\nlast_year = {y1}\n"
    );
    if !fire_years.is_empty() {
        t += "\n[series.events]\n";
        for y in &fire_years {
            t += &format!("{y} = [\"events_{y}.tif\"]\n");
        }
    }
    f.write_all(t.as_bytes())
        .map_err(|e| Error::io(scene_path, e))?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_changing_pixel_changes_once_and_stays_changed() {
        let years = (2000, 2010);
        let mut changed = 0;
        for col in 0..2000 {
            let f = EcosystemClass::Forest;
            let seq: Vec<i32> = (2000..=2010)
                .map(|y| pixel_in_year(1, Some(f), (1, 4), years, y, (7, col, 3)).0)
                .collect();
            assert_eq!(seq[0], 1, "the first year is the scene's land cover");
            let switches = seq.windows(2).filter(|w| w[0] != w[1]).count();
            assert!(switches <= 1);
            changed += switches;
        }
        // About 4 % of 2000 pixels change.
        assert!((40..=130).contains(&changed), "{changed}");
    }
}
