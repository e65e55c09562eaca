//! `sinkmap merge`: combine the partial outputs of `sinkmap run --tile I/N` into the result of
//! a single run — maps read from a VRT mosaic of the parts and written by the run's own map
//! writer (same overviews, same layout), cubes by exact addition, tables recomputed from the
//! merged cube.

use std::path::{Path, PathBuf};

use gdal::{Dataset, Metadata};

use crate::config::{Compression, Layout, Models, Scene};
use crate::cube::Cube;
use crate::error::{Error, Result};
use crate::grid::Grid;
use crate::pipeline::{publish, BestMode, MAP_FILES, POTENTIAL_FILES};
use crate::raster::overview::{Cell, Mean};
use crate::raster::reference_grid;
use crate::raster::writer::{remove_stale_temp_files, MapFormat, MapSpec, MapWriter, TempFile};
use crate::summary::{self, Summary};
use crate::zones::ZoneSet;

/// The part folders, checked: every tile 1..=N exactly once, all from the same scene. Each
/// part's `file` (a JSON document with `tile` and `scene_sha256`) is returned parsed.
pub(crate) fn read_parts(
    parts: &[PathBuf],
    scene_sha: &str,
    file: &str,
) -> Result<Vec<(usize, PathBuf, serde_json::Value)>> {
    let mut out = Vec::new();
    let mut n_all = None;
    for dir in parts {
        let p = dir.join(file);
        let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Parse {
            path: p.clone(),
            message: e.to_string(),
        })?;
        let tile = v["tile"].as_str().ok_or_else(|| {
            Error::data(&p, "not a tile result (no \"tile\"): run with --tile I/N")
        })?;
        let (i, n) = tile
            .split_once('/')
            .and_then(|(i, n)| Some((i.parse::<usize>().ok()?, n.parse::<usize>().ok()?)))
            .ok_or_else(|| Error::data(&p, format!("bad tile '{tile}'")))?;
        if *n_all.get_or_insert(n) != n {
            return Err(Error::data(
                &p,
                format!("tile {tile} is not one of {} tiles", n_all.unwrap_or(0)),
            ));
        }
        if v["scene_sha256"].as_str() != Some(scene_sha) {
            return Err(Error::data(
                &p,
                "this part was computed from another version of the scene file",
            ));
        }
        out.push((i, dir.clone(), v));
    }
    out.sort_by_key(|(i, _, _)| *i);
    let n = n_all.ok_or_else(|| Error::Usage("no part folders given".into()))?;
    let have: Vec<usize> = out.iter().map(|(i, _, _)| *i).collect();
    if have != (1..=n).collect::<Vec<_>>() {
        return Err(Error::Usage(format!(
            "parts cover tiles {have:?}; need each of 1..={n} exactly once"
        )));
    }
    Ok(out)
}

/// Merges `parts` (folders written by `sinkmap run --tile I/N`) into `out_dir`.
pub fn merge(
    scene: &Scene,
    parts: &[PathBuf],
    out_dir: &Path,
    zones: Option<&ZoneSet>,
    layout: Option<Layout>,
    compression: Option<Compression>,
) -> Result<Summary> {
    let started = std::time::Instant::now();
    let models = Models::load(scene)?;
    let grid = reference_grid(&scene.landcover.path, scene.landcover.band)?;
    let parts = read_parts(parts, &scene.sha256, "summary.json")?;
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    remove_stale_temp_files(out_dir);

    let mut cube = Cube::default();
    let mut nodata_area_ha = 0.0;
    for (_, dir, v) in &parts {
        cube.merge(&Cube::read_csv(&dir.join("cube.csv"))?);
        nodata_area_ha += v["nodata_area_ha"].as_f64().unwrap_or(0.0);
    }
    let mut pending = Vec::new();
    let block = parts[0].2["run"]["block_size_px"]
        .as_u64()
        .map(|b| b as usize)
        .filter(|b| (16..=4096).contains(b))
        .unwrap_or(512);
    let first_dir = &parts[0].1;
    let names: Vec<&str> = MAP_FILES
        .iter()
        .chain(
            POTENTIAL_FILES
                .iter()
                .filter(|n| first_dir.join(n).exists()),
        )
        .copied()
        .collect();
    for name in names {
        let paths: Vec<PathBuf> = parts.iter().map(|(_, d, _)| d.join(name)).collect();
        let format = MapFormat::on_all_cores(
            block,
            compression.unwrap_or(scene.output.compression),
            layout.unwrap_or(scene.output.layout),
        );
        let categorical = name == POTENTIAL_FILES[1];
        pending.push(merge_map(
            &paths,
            name,
            categorical,
            &grid,
            out_dir,
            format,
        )?);
    }
    let run_seconds: f64 = parts
        .iter()
        .map(|(_, _, v)| v["run"]["seconds"].as_f64().unwrap_or(0.0))
        .sum();
    let threads = parts
        .iter()
        .map(|(_, _, v)| v["run"]["threads"].as_u64().unwrap_or(1) as usize)
        .max()
        .unwrap_or(1);
    let summary = summary::build(
        scene,
        &models,
        &grid,
        &cube,
        zones,
        &summary::RunFacts {
            nodata_area_ha,
            threads,
            block_size_px: block,
            seconds: run_seconds + started.elapsed().as_secs_f64(),
        },
    );
    publish(out_dir, pending, &summary, &cube, zones, &models)?;
    Ok(summary)
}

/// Mosaics the parts of one map (`paths`, one per tile, in tile order) and writes it as
/// `out_dir/name` through the run's own map writer, so the overviews are built exactly as a
/// single run builds them. Used for the maps of `run` and of `series` parts.
pub(crate) fn merge_map(
    paths: &[PathBuf],
    name: &str,
    categorical: bool,
    grid: &Grid,
    out_dir: &Path,
    format: MapFormat,
) -> Result<(TempFile, PathBuf)> {
    let datasets: Vec<Dataset> = paths
        .iter()
        .map(|p| Dataset::open(p).map_err(|e| Error::raster(p, format!("cannot open part: {e}"))))
        .collect::<Result<_>>()?;
    let vrt = gdal::programs::raster::build_vrt(None, &datasets, None)
        .map_err(|e| Error::output(out_dir.join(name), format!("cannot mosaic the parts: {e}")))?;
    if vrt.raster_size() != (grid.width, grid.height) {
        return Err(Error::data(
            &paths[0],
            format!(
                "the parts mosaic to {:?} pixels, the grid has {:?}",
                vrt.raster_size(),
                (grid.width, grid.height)
            ),
        ));
    }
    // Carry the provenance, unit and description of the parts over.
    let first = &datasets[0];
    let mut metadata: Vec<(String, String)> = first
        .metadata()
        .filter(|e| e.domain.is_empty())
        .map(|e| (e.key, e.value))
        .collect();
    metadata.push(("SINKMAP_MERGED_FROM_TILES".into(), paths.len().to_string()));
    let band = first
        .rasterband(1)
        .map_err(|e| Error::raster(&paths[0], e))?;
    let spec = MapSpec {
        file_name: name.to_string(),
        description: band.description().unwrap_or_default(),
        unit: band.unit(),
        categorical,
    };
    let nodata = band.no_data_value().unwrap_or(f64::NAN);
    let target = MergeTarget {
        out_dir,
        grid,
        format,
        metadata: &metadata,
    };
    if categorical {
        let legend = metadata
            .iter()
            .find(|(k, _)| k == "SINKMAP_LEGEND")
            .map(|(_, v)| v.as_str())
            .unwrap_or_default();
        let classes = crate::raster::categories::from_legend(legend);
        target.stream::<BestMode>(&vrt, spec, nodata, |w| w.with_categories(classes, grid))
    } else {
        target.stream::<Mean>(&vrt, spec, nodata, |w| w)
    }
}

/// Where and how merged maps are written.
struct MergeTarget<'a> {
    out_dir: &'a Path,
    grid: &'a Grid,
    format: MapFormat,
    metadata: &'a [(String, String)],
}

impl MergeTarget<'_> {
    /// Reads the mosaic `src` block by block into a map writer (overviews built on the way).
    fn stream<C: Cell>(
        &self,
        src: &Dataset,
        spec: MapSpec,
        nodata: f64,
        prepare: impl FnOnce(MapWriter<C>) -> MapWriter<C>,
    ) -> Result<(TempFile, PathBuf)> {
        let path = self.out_dir.join(&spec.file_name);
        let w = MapWriter::<C>::create_typed(
            self.out_dir,
            spec,
            self.grid,
            self.format,
            self.metadata,
            nodata,
        )?;
        let mut w = prepare(w);
        let band = src.rasterband(1).map_err(|e| Error::raster(&path, e))?;
        for win in self.grid.windows(self.format.block_px, 0..self.grid.height) {
            let buf = band
                .read_as::<C::Value>(
                    (win.col as isize, win.row as isize),
                    (win.width, win.height),
                    (win.width, win.height),
                    None,
                )
                .map_err(|e| Error::raster(&path, format!("cannot read the parts: {e}")))?;
            w.write(win, buf.into_shape_and_vec().1)?;
        }
        w.finish()
    }
}
