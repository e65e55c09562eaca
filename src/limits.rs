//! Documented maxima, checked before anything is allocated, and clear words for the
//! operating system's and GDAL's terse refusals of a path. Each maximum is generous for the
//! province-scale runs sinkmap is made for (Xinjiang at 30 m: 5.5 × 10⁹ px) and far below
//! what would crash or exhaust a machine; README lists them.

use std::path::Path;

use crate::error::{Error, Result};

/// Compute and compression threads (`--threads`): beyond this a machine thrashes, and
/// 10⁵ threads hang the process while they are created.
pub const MAX_THREADS: usize = 1024;
/// Monte Carlo draws (`--draws`): 10⁵ draws pin a 5th percentile to about ±0.1 percentile point.
pub const MAX_DRAWS: usize = 100_000;
/// Bytes the Monte Carlo may hold (draws × zones × years × components × 8 B).
pub const MAX_MONTE_CARLO_BYTES: u64 = 8 << 30;
/// Pixels of a grid: 18 × the Xinjiang bounding box at 0.00025°.
pub const MAX_PIXELS: u64 = 100_000_000_000;
/// Row bands of `--tile I/N`.
pub const MAX_TILES: usize = 10_000;
/// Years of a projection after the base year.
pub const MAX_PROJECTION_YEARS: i32 = 300;

/// `--threads`: 1..=MAX_THREADS.
pub fn check_threads(threads: Option<usize>) -> Result<()> {
    match threads {
        Some(0) => Err(Error::Usage("--threads 0: give at least 1 (or leave it out for all cores)".into())),
        Some(n) if n > MAX_THREADS => Err(Error::Usage(format!(
            "--threads {n}: at most {MAX_THREADS} (this machine has {} cores; leave it out for all of them)",
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        ))),
        _ => Ok(()),
    }
}

/// `--draws` and the Monte Carlo's memory: `zones` (with the region) × `years` × `components`.
pub fn check_draws(draws: usize, zones: usize, years: usize, components: usize) -> Result<()> {
    if draws == 0 {
        return Err(Error::Usage("--draws must be at least 1".into()));
    }
    if draws > MAX_DRAWS {
        return Err(Error::Usage(format!(
            "--draws {draws}: at most {MAX_DRAWS} (1000 already gives stable 5–95 % bands)"
        )));
    }
    let bytes = (draws as u64)
        .saturating_mul(zones.max(1) as u64)
        .saturating_mul(years.max(1) as u64)
        .saturating_mul(components.max(1) as u64)
        .saturating_mul(8);
    if bytes > MAX_MONTE_CARLO_BYTES {
        return Err(Error::Usage(format!(
            "--draws {draws} over {zones} zones × {years} years × {components} components needs {:.1} GB, more than the {} GB allowed; use fewer draws, zones or years",
            bytes as f64 / 1e9,
            MAX_MONTE_CARLO_BYTES >> 30
        )));
    }
    Ok(())
}

/// A grid of `width` × `height` pixels read from `path`.
pub fn check_grid_size(path: &Path, width: usize, height: usize) -> Result<()> {
    let n = (width as u64).saturating_mul(height as u64);
    if n > MAX_PIXELS {
        return Err(Error::raster(
            path,
            format!(
                "{width} × {height} = {n} pixels, more than the {MAX_PIXELS} sinkmap processes in one run; split it (`run --tile I/N`) or use a coarser grid"
            ),
        ));
    }
    Ok(())
}

/// A geographic grid from `top` to `bottom` (degrees of latitude).
pub fn check_latitudes(path: &Path, top_deg: f64, bottom_deg: f64) -> Result<()> {
    let ok = |v: f64| v.is_finite() && (-90.0 - 1e-9..=90.0 + 1e-9).contains(&v);
    if !ok(top_deg) || !ok(bottom_deg) {
        return Err(Error::raster(
            path,
            format!(
                "the grid spans latitudes {bottom_deg}° to {top_deg}°, beyond ±90°: its georeferencing is wrong (check the geotransform, e.g. with gdalinfo)"
            ),
        ));
    }
    Ok(())
}

/// `--tile I/N` on a grid of `height` rows.
pub fn check_tiles(n: usize, height: usize) -> Result<()> {
    if n > MAX_TILES || n > height {
        return Err(Error::Usage(format!(
            "--tile …/{n}: at most {} row bands for this grid of {height} rows",
            MAX_TILES.min(height)
        )));
    }
    Ok(())
}

/// The projection horizon.
pub fn check_until(until: i32, base_year: i32) -> Result<()> {
    if until > base_year.saturating_add(MAX_PROJECTION_YEARS) {
        return Err(Error::Usage(format!(
            "--until {until}: at most {MAX_PROJECTION_YEARS} years after the base year {base_year}"
        )));
    }
    Ok(())
}

/// An input path that the system refuses, in words: symlink loops, overlong paths, missing
/// files, folders where a file is expected, unreadable files.
pub fn check_input_path(path: &Path) -> Result<()> {
    let s = path.as_os_str().len();
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(Error::invalid(path, "is a folder, expected a file")),
        Ok(_) => Ok(()),
        Err(e) => {
            let words = match e.raw_os_error() {
                Some(libc::ELOOP) => "a loop of symbolic links (a link that leads back to itself): point it at the real file".to_string(),
                Some(libc::ENAMETOOLONG) => format!("the path ({s} bytes) or one of its names is longer than the system allows (4096 bytes, 255 per name): move the file to a shorter path"),
                Some(libc::ENOENT) => match std::fs::symlink_metadata(path) {
                    Ok(_) => "a symbolic link to a file that does not exist".to_string(),
                    Err(_) => "file not found".to_string(),
                },
                Some(libc::ENOTDIR) => "a part of the path is a file, not a folder".to_string(),
                Some(libc::EACCES) => "permission denied: make it readable".to_string(),
                _ => e.to_string(),
            };
            // A configuration file (scene, models) is the configuration's fault; any other
            // file (rasters, zones, tables) is input data.
            if path.extension().is_some_and(|x| x == "toml") {
                Err(Error::invalid(path, words))
            } else {
                Err(Error::data(path, words))
            }
        }
    }
}

/// GDAL's refusal to open `path` as a `kind` ("raster", "vector layer") in words: its raw
/// "GDALOpenEx returned a NULL pointer" with an empty message means the file is not of a
/// format GDAL recognises (or is damaged), which is what the user needs to hear.
#[cfg(feature = "gdal")]
pub fn gdal_open_failure(kind: &str, e: &gdal::errors::GdalError) -> String {
    use gdal::errors::GdalError;
    match e {
        GdalError::NullPointer { msg, .. } if msg.trim().is_empty() => format!(
            "GDAL does not recognise it as a {kind} (another kind of file, a format GDAL was built without, or a damaged or truncated file)"
        ),
        GdalError::NullPointer { msg, .. } => format!("cannot open as a {kind}: {}", msg.trim()),
        e => format!("cannot open as a {kind}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maxima_refuse_above_and_accept_at_the_limit() {
        assert!(check_threads(Some(MAX_THREADS)).is_ok());
        assert!(check_threads(Some(100_000)).is_err());
        assert!(check_threads(Some(0)).is_err());
        assert!(check_draws(usize::MAX, 1, 1, 1).is_err());
        assert!(check_draws(1000, 20, 41, 12).is_ok());
        // 10⁵ draws × 1000 zones × 300 years × 12 components × 8 B = 2.9 TB.
        assert!(check_draws(MAX_DRAWS, 1000, 300, 12).is_err());
        let p = Path::new("x.tif");
        assert!(check_grid_size(p, 3_000_000, 2_000_000).is_err());
        assert!(check_grid_size(p, 91_600, 59_600).is_ok());
        assert!(check_latitudes(p, 90.0, -90.0).is_ok());
        assert!(check_latitudes(p, 46.0, -91.0).is_err());
        assert!(check_tiles(8, 7).is_err());
        assert!(check_tiles(7, 7).is_ok());
    }

    #[test]
    fn refused_paths_are_explained() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        let b = tmp.path().join("b");
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let e = check_input_path(&a).unwrap_err().to_string();
        assert!(e.contains("loop of symbolic links"), "{e}");
        let long = tmp.path().join("x".repeat(300));
        let e = check_input_path(&long).unwrap_err().to_string();
        assert!(e.contains("longer than the system allows"), "{e}");
        let dangling = tmp.path().join("d");
        std::os::unix::fs::symlink(tmp.path().join("nothing"), &dangling).unwrap();
        let e = check_input_path(&dangling).unwrap_err().to_string();
        assert!(e.contains("does not exist"), "{e}");
    }
}
