//! `sinkmap bench`: throughput (Mpx/s) and peak memory of full runs on a synthetic scene,
//! beside the I/O floor — GDAL alone reading the same inputs and writing the same number of
//! Float32 bands with the same compression and layout.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde::Serialize;

use sinkmap::synth::{self, SynthSpec};
use sinkmap::{manifest, publish};
use sinkmap::{Error, Result};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchSpec {
    pub dir: PathBuf,
    pub width: usize,
    pub height: usize,
    pub threads: Option<usize>,
    pub block_size_px: Option<usize>,
    /// Upper-left corner of the synthetic grid (degrees).
    pub lon0: f64,
    pub lat0: f64,
    /// A Python venv with InVEST installed: also time InVEST's carbon model on the scene.
    pub invest_venv: Option<PathBuf>,
    /// Only the full run (maps + zones + cube) and the I/O floor: no maps-only, tiled or
    /// one-core runs (the Xinjiang scene's outputs are 7 GB a run).
    pub full_run_only: bool,
    /// Build the scene as a mosaic of one generated square tile of this many pixels a side
    /// (GDAL VRTs that repeat it across the grid; the zones still cover the whole grid):
    /// generating 5.5 billion textured cells one by one would take about an hour on two cores,
    /// and the run's cost does not depend on whether the texture repeats.
    pub mosaic_tile_px: Option<usize>,
    /// Times each `sinkmap run` step is run (at least 1); its row gives the median run (its
    /// seconds, memory and stage times) and lists every run's seconds, so that one slow run
    /// on a shared machine does not decide a figure.
    pub repeat: usize,
}

/// Pixel of every benchmark scene: 0.00025° (≈ 28 m × 19 m at 46° N), the 30-m class of
/// grids, so that a larger scene is a larger area of the same texture, not a finer one.
pub const BENCH_PIXEL_DEG: f64 = 0.00025;

impl BenchSpec {
    /// The bounding box of Xinjiang (73.5–96.4° E, 34.3–49.2° N) at 0.00025°:
    /// 91 600 × 59 600 = 5.46 billion cells.
    pub fn xinjiang(dir: PathBuf) -> BenchSpec {
        BenchSpec {
            dir,
            width: 91_600,
            height: 59_600,
            threads: None,
            block_size_px: None,
            lon0: 73.5,
            lat0: 49.2,
            invest_venv: None,
            full_run_only: true,
            mosaic_tile_px: Some(10_000),
            repeat: 1,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    pub step: String,
    /// Wall seconds (the median run's for a repeated step).
    pub seconds: f64,
    pub megapixels_per_second: f64,
    pub peak_rss_mb: Option<f64>,
    /// A repeated step's seconds, run by run, in the order they ran (`--repeat`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub seconds_of_each_run: Vec<f64>,
    /// A `sinkmap run` step's compute processor time per pixel (`stage_seconds.compute_cpu`
    /// over the pixels, ns), run by run in the order they ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub compute_cpu_ns_per_pixel_of_each_run: Vec<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub width_px: usize,
    pub height_px: usize,
    pub megapixels: f64,
    pub threads: usize,
    pub rows: Vec<BenchRow>,
    /// Run time with zones over run time of the maps alone, minus one (absent when only the
    /// full run was measured).
    pub zonal_overhead_fraction: Option<f64>,
    /// Mean length (pixels) of the runs of equal land-cover codes along the rows of the bench
    /// scene (real 30-m land cover: a few pixels).
    pub landcover_mean_run_px: Option<f64>,
    /// GDAL decoding every input raster once, block by block, one thread per file.
    pub floor_read_seconds: Option<f64>,
    /// GDAL writing the full run's four maps as COG with the run's creation options (ZSTD 1,
    /// 512-px blocks, overviews), all four at once (`gdal_translate` from the run's own maps,
    /// so the floor compresses the same values).
    pub floor_write_seconds: Option<f64>,
    /// `floor_read_seconds + floor_write_seconds`.
    pub io_floor_seconds: Option<f64>,
    /// The full run's seconds over the I/O floor's (1.0 = as fast as GDAL reading and writing
    /// alone; below 1 where reading, computing and writing overlap).
    pub run_over_io_floor: Option<f64>,
    /// The full run's compute busy time (summed over threads) per pixel, in nanoseconds.
    pub compute_ns_per_pixel_per_thread: Option<f64>,
    /// The same in processor time (`stage_seconds.compute_cpu`: the compute threads' own
    /// CPU clocks), so the time a task waits for a core while readers and writers run on
    /// the same cores is not counted.
    pub compute_cpu_ns_per_pixel_per_thread: Option<f64>,
    /// The part of it spent on the maps' overview levels (`stage_seconds.overview_cpu`); the
    /// rest is the models' pixel work.
    pub overview_cpu_ns_per_pixel_per_thread: Option<f64>,
    /// The compute processor time per pixel of every run of the full computation (maps,
    /// zones and cube: the full run's repeats and the one- and two-core runs), in the order
    /// they ran: the same work, so their spread is the machine's, not the code's.
    pub compute_cpu_ns_per_pixel_of_every_full_run: Vec<f64>,
    /// Their median (the lower middle one for an even number).
    pub compute_cpu_ns_per_pixel_median_of_full_runs: Option<f64>,
    /// The full run's finish stage (COG assembly) as a fraction of its wall time.
    pub finish_fraction_of_run: Option<f64>,
    /// InVEST's carbon model (stock only, same pool table, the land cover in UTM with the same
    /// pixel count) beside the full run, with `--invest`.
    pub invest: Option<InvestRow>,
    /// Full run on one core (1 thread) over the full run on two cores (2 threads), both
    /// pinned with `taskset`; absent on a one-core machine or without `taskset`.
    pub speedup_2_cores_vs_1: Option<f64>,
}

/// InVEST beside sinkmap.
#[derive(Debug, Clone, Serialize)]
pub struct InvestRow {
    pub invest_seconds: f64,
    pub invest_peak_rss_mb: Option<f64>,
    /// InVEST's stock-only seconds over sinkmap's full run's seconds.
    pub sinkmap_speedup: f64,
}

/// The pool table of the bench (lucode, c_above, c_below, c_soil, c_dead in t C/ha, CLCD codes):
/// round illustrative numbers for timing only, used by sinkmap's and InVEST's runs alike.
const BENCH_POOLS_CSV: &str = "lucode,c_above,c_below,c_soil,c_dead\n\
1,5,1,60,0\n2,60,15,110,5\n3,8,4,50,1\n4,2,4,70,0\n5,0,0,0,0\n6,0,0,0,0\n7,0.5,0.3,15,0\n8,0,0,20,0\n9,3,2,90,1\n";

fn exe() -> Result<PathBuf> {
    std::env::current_exe().map_err(|e| Error::environment("the sinkmap executable", e))
}

fn run_child(cmd: &mut Command, what: &str) -> Result<f64> {
    let t = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| Error::environment(what, format!("cannot start: {e}")))?;
    if !out.status.success() {
        return Err(Error::environment(
            what,
            format!("failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
        ));
    }
    Ok(t.elapsed().as_secs_f64())
}

fn summary_run(dir: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("summary.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(v["run"].clone())
}

/// Runs a child to its end; returns its wall seconds and its own peak resident memory (MB),
/// from the kernel's accounting of that one process (`wait4`).
fn run_child_rss(cmd: &mut Command, what: &str) -> Result<(f64, Option<f64>)> {
    let t = Instant::now();
    let child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Error::Usage(format!("{what}: cannot start: {e}")))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: plain syscall on our own child; `usage` is a zeroed POD struct the kernel fills.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let seconds = t.elapsed().as_secs_f64();
    if r != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        let mut err = String::new();
        if let Some(mut e) = child.stderr {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        return Err(Error::Usage(format!(
            "{what} failed: {}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )));
    }
    // ru_maxrss is in kilobytes on Linux.
    Ok((seconds, Some(usage.ru_maxrss as f64 / 1024.0)))
}

/// The decode floor of the scene's input rasters (`.tif`, or the `.vrt`s of a mosaic) whose
/// file stem `keep` accepts, and how many there are. A mosaic's VRTs repeat one tile, so GDAL
/// would decode each tile block once and serve the repeats from its cache: the floor of a
/// mosaic is its tile's files decoded, times the number of tiles the grid holds (the decode
/// cost of a scene of that size whose cells are all different).
fn scene_decode_floor(
    spec: &BenchSpec,
    scene_dir: &Path,
    keep: impl Fn(&str) -> bool,
) -> Result<(f64, usize)> {
    let (dir, ext, scale) = match spec.mosaic_tile_px {
        None => (scene_dir.to_path_buf(), "tif", 1.0),
        Some(t) => {
            let (tw, th) = (t.min(spec.width), t.min(spec.height));
            let tiles = (spec.width * spec.height) as f64 / (tw * th) as f64;
            (scene_dir.join("tile"), "tif", tiles)
        }
    };
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(&dir, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == ext)
                && p.file_stem().is_some_and(|n| keep(&n.to_string_lossy()))
        })
        .collect();
    inputs.sort();
    Ok((decode_floor(&inputs)? * scale, inputs.len()))
}

/// Seconds GDAL takes to decode every block of every file once, one thread per file (as the run
/// reads its layers), into a scratch buffer: no checksum, no type conversion.
fn decode_floor(inputs: &[PathBuf]) -> Result<f64> {
    let t = Instant::now();
    std::thread::scope(|scope| {
        let handles: Vec<_> = inputs
            .iter()
            .map(|f| scope.spawn(move || decode_all_blocks(f)))
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|_| Err(Error::Usage("decode thread panicked".into())))
        })
    })?;
    Ok(t.elapsed().as_secs_f64())
}

fn decode_all_blocks(path: &Path) -> Result<()> {
    let err = |e: gdal::errors::GdalError| Error::output(path, e);
    let ds = gdal::Dataset::open(path).map_err(err)?;
    let band = ds.rasterband(1).map_err(err)?;
    let (bw, bh) = band.block_size();
    let (w, h) = band.size();
    // SAFETY: GDALGetDataTypeSizeBytes of the band's own type; the buffer holds one block.
    let bytes = unsafe { gdal_sys::GDALGetDataTypeSizeBytes(band.band_type() as u32) } as usize;
    let mut buf = vec![0u8; bw * bh * bytes.max(1)];
    for by in 0..h.div_ceil(bh) {
        for bx in 0..w.div_ceil(bw) {
            // Hand-written FFI: the gdal crate's read_block is typed, and the point here is to
            // measure decoding alone, whatever the band type.
            let e = unsafe {
                gdal_sys::GDALReadBlock(
                    band.c_rasterband(),
                    bx as i32,
                    by as i32,
                    buf.as_mut_ptr() as *mut std::ffi::c_void,
                )
            };
            if e != gdal_sys::CPLErr::CE_None {
                return Err(Error::Usage(format!(
                    "{}: GDAL could not decode block ({bx}, {by})",
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

/// Everything the steps need, checked before minutes of work start.
fn preflight(spec: &BenchSpec) -> Result<()> {
    if !Path::new("models").is_dir() {
        return Err(Error::Usage(
            "sinkmap bench runs from the project root (it needs models/ in the current folder)"
                .into(),
        ));
    }
    sinkmap::limits::check_threads(spec.threads)?;
    if let Some(b) = spec.block_size_px {
        sinkmap::engine::check_block_size(b)?;
    }
    scene_spec(spec, spec.dir.join("scene"), None).check()?;
    if let Some(v) = &spec.invest_venv {
        if !v.join("bin/python").exists() {
            return Err(Error::Usage(format!(
                "--invest {}: no bin/python in that folder (install InVEST into a venv first)",
                v.display()
            )));
        }
    }
    Ok(())
}

/// The synthetic scene of the bench (field texture, seed 2060, base year 2020) in `dir`.
fn scene_spec(spec: &BenchSpec, dir: PathBuf, models_dir_in_scene: Option<String>) -> SynthSpec {
    SynthSpec {
        dir,
        width: spec.width,
        height: spec.height,
        seed: 2060,
        lon0: spec.lon0,
        lat0: spec.lat0,
        pixel_deg: BENCH_PIXEL_DEG,
        zones_path: None,
        models_dir_in_scene,
        output_dir_in_scene: "../out".into(),
        zones_path_in_scene: None,
        base_year: 2020,
        name: format!("bench {}x{} (SYNTHETIC)", spec.width, spec.height),
        with_accounting: false,
        field_texture: true,
    }
}

/// Replaces a hard-linked file of a carried publication set by a copy of its own, so that
/// editing it leaves the published file as it is.
fn unlink_copy(path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    std::fs::remove_file(path).map_err(|e| Error::io(path, e))?;
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

/// The six input layers of a synthetic scene, as synth names them.
const SCENE_LAYERS: [&str; 6] = [
    "landcover",
    "forest_age",
    "forest_type",
    "desert_subtype",
    "water_access",
    "degraded_grassland",
];

/// A scene of `spec`'s size made of one generated `tile` × `tile` scene (in `dir/tile`)
/// repeated by a GDAL VRT per layer, with zones generated for the whole grid.
fn mosaic_scene(
    spec: &BenchSpec,
    tile: usize,
    dir: &Path,
    models: Option<String>,
    progress: bool,
) -> Result<()> {
    let tile_spec = BenchSpec {
        width: tile.min(spec.width),
        height: tile.min(spec.height),
        ..spec.clone()
    };
    let tile_dir = dir.join("tile");
    let tile_scene = synth::generate(&scene_spec(&tile_spec, tile_dir.clone(), models), progress)?;
    let full = scene_spec(spec, dir.to_path_buf(), None);
    synth::write_zones(&dir.join("zones.geojson"), &full)?;
    for layer in SCENE_LAYERS {
        let src = tile_dir.join(format!("{layer}.tif"));
        let vrt = mosaic_vrt(&src, &format!("tile/{layer}.tif"), &full)?;
        let path = dir.join(format!("{layer}.vrt"));
        std::fs::write(&path, vrt).map_err(|e| Error::io(&path, e))?;
    }
    let stats = tile_dir.join("synth_stats.json");
    std::fs::copy(&stats, dir.join("synth_stats.json")).map_err(|e| Error::io(&stats, e))?;
    let text = std::fs::read_to_string(&tile_scene).map_err(|e| Error::io(&tile_scene, e))?;
    let tile_name = scene_spec(&tile_spec, tile_dir.clone(), None).name;
    let mut text = text.replace(&tile_name, &full.name);
    for layer in SCENE_LAYERS {
        text = text.replace(&format!("\"{layer}.tif\""), &format!("\"{layer}.vrt\""));
    }
    let scene = dir.join("scene.toml");
    std::fs::write(&scene, text).map_err(|e| Error::io(&scene, e))
}

/// The VRT (XML) of one layer of a mosaic: `src` (reached as `rel` from the VRT) repeated from
/// the upper-left corner across `full`'s grid, the last row and column of tiles cut to fit.
fn mosaic_vrt(src: &Path, rel: &str, full: &SynthSpec) -> Result<String> {
    let err = |e: gdal::errors::GdalError| Error::raster(src, e);
    let ds = gdal::Dataset::open(src).map_err(err)?;
    let band = ds.rasterband(1).map_err(err)?;
    let (tw, th) = band.size();
    let (bw, bh) = band.block_size();
    // SAFETY: GDALGetDataTypeName returns a static string for any band type.
    let type_name =
        unsafe { std::ffi::CStr::from_ptr(gdal_sys::GDALGetDataTypeName(band.band_type() as u32)) }
            .to_string_lossy()
            .into_owned();
    let nodata = band
        .no_data_value()
        .map(|v| format!("    <NoDataValue>{v}</NoDataValue>\n"))
        .unwrap_or_default();
    let mut xml = format!(
        "<VRTDataset rasterXSize=\"{w}\" rasterYSize=\"{h}\">\n  <SRS>EPSG:4326</SRS>\n  \
         <GeoTransform>{lon0:e}, {px:e}, 0, {lat0:e}, 0, {npx:e}</GeoTransform>\n  \
         <VRTRasterBand dataType=\"{type_name}\" band=\"1\">\n{nodata}",
        w = full.width,
        h = full.height,
        lon0 = full.lon0,
        lat0 = full.lat0,
        px = full.pixel_deg,
        npx = -full.pixel_deg,
    );
    for y in (0..full.height).step_by(th) {
        for x in (0..full.width).step_by(tw) {
            let (w, h) = (tw.min(full.width - x), th.min(full.height - y));
            xml += &format!(
                "    <SimpleSource>\n      <SourceFilename relativeToVRT=\"1\">{rel}</SourceFilename>\n      \
                 <SourceBand>1</SourceBand>\n      <SourceProperties RasterXSize=\"{tw}\" \
                 RasterYSize=\"{th}\" DataType=\"{type_name}\" BlockXSize=\"{bw}\" \
                 BlockYSize=\"{bh}\"/>\n      <SrcRect xOff=\"0\" yOff=\"0\" xSize=\"{w}\" \
                 ySize=\"{h}\"/>\n      <DstRect xOff=\"{x}\" yOff=\"{y}\" xSize=\"{w}\" \
                 ySize=\"{h}\"/>\n    </SimpleSource>\n"
            );
        }
    }
    xml += "  </VRTRasterBand>\n</VRTDataset>\n";
    Ok(xml)
}

/// Publishes a new set of the bench scene in `scene_dir`: `fill` writes it in the staging
/// folder, then the empty `marker` file (its name says what the set holds) is added. `keep`
/// carries the published set's files that it accepts (None: a whole new scene).
fn publish_scene_set(
    scene_dir: &Path,
    marker: &Path,
    keep: Option<&dyn Fn(&str) -> bool>,
    fill: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let marker_name = marker.file_name().unwrap_or_default().to_owned();
    let pub_spec = publish::Spec {
        command: "bench scene",
        inputs: Vec::new(),
        scene_sha256: None,
        tile: None,
        produces: manifest::SYNTH_OUTPUTS,
        extend: keep,
    };
    publish::transact(scene_dir, pub_spec, |staging| {
        fill(staging)?;
        let m = staging.join(&marker_name);
        std::fs::write(&m, "").map_err(|e| Error::io(&m, e))
    })
}

/// The textured bench scene in `spec.dir/scene`, generated unless a marker says it exists for
/// this size; returns the scene file and the generation row (when it was generated).
fn ensure_scene(spec: &BenchSpec, progress: bool) -> Result<(PathBuf, PathBuf, Option<BenchRow>)> {
    preflight(spec)?;
    let scene_dir = spec.dir.join("scene");
    let scene = scene_dir.join("scene.toml");
    let mpx = (spec.width * spec.height) as f64 / 1e6;
    let mut rows = Vec::new();
    let mosaic = spec
        .mosaic_tile_px
        .map(|t| format!("-mosaic-{t}"))
        .unwrap_or_default();
    let marker = scene_dir.join(format!(
        ".scene-{}x{}-at-{}-{}-{BENCH_PIXEL_DEG}-field-texture{mosaic}",
        spec.width, spec.height, spec.lon0, spec.lat0
    ));
    if !marker.exists() {
        let t = Instant::now();
        let models = std::fs::canonicalize("models").map_err(|e| Error::io("models", e))?;
        // The scene is published whole into its folder (a failure leaves the previous one).
        publish_scene_set(&scene_dir, &marker, None, |staging| {
            let scene = staging.join("scene.toml");
            let models = Some(models.to_string_lossy().into_owned());
            match spec.mosaic_tile_px {
                None => {
                    synth::generate(&scene_spec(spec, staging.to_path_buf(), models), progress)?;
                }
                Some(tile) => mosaic_scene(spec, tile, staging, models, progress)?,
            }
            // The InVEST-style pool table, for sinkmap's stock map and InVEST's alike.
            let pools = staging.join("bench_pools.csv");
            std::fs::write(&pools, BENCH_POOLS_CSV).map_err(|e| Error::io(&pools, e))?;
            let text = std::fs::read_to_string(&scene).map_err(|e| Error::io(&scene, e))?;
            let text = text.replacen(
                "scheme = \"clcd\"\n",
                "scheme = \"clcd\"\npool_table = \"bench_pools.csv\"\n",
                1,
            );
            std::fs::write(&scene, text).map_err(|e| Error::io(&scene, e))
        })?;
        rows.push(BenchRow::timed(
            "synth (generate inputs)",
            t.elapsed().as_secs_f64(),
            mpx,
            None,
        ));
    }
    Ok((scene_dir, scene, rows.pop()))
}

/// Generates the scene when needed, runs the steps and writes `bench.json` in `spec.dir`.
pub fn bench(spec: &BenchSpec, progress: bool) -> Result<BenchReport> {
    let mpx = (spec.width * spec.height) as f64 / 1e6;
    let (scene_dir, scene, generated) = ensure_scene(spec, progress)?;
    let threads = threads(spec);
    let mut rows: Vec<BenchRow> = generated.into_iter().collect();
    let (run_rows, run) = run_rows(spec, &scene, threads)?;
    rows.extend(run_rows);
    let (scaling_rows, scaling) = scaling_rows(spec, &scene)?;
    rows.extend(scaling_rows);
    // Rendering the report from the 400-Mpx outputs (maps from the COG overviews).
    let t = Instant::now();
    let mut cmd = Command::new(exe()?);
    cmd.arg("report").arg(spec.dir.join("out_zones"));
    run_child(&mut cmd, "sinkmap report")?;
    rows.push(BenchRow::timed(
        "sinkmap report (all maps and charts, from COG overviews)",
        t.elapsed().as_secs_f64(),
        mpx,
        None,
    ));
    // The I/O floor: GDAL decoding every input once, then GDAL writing the run's four maps.
    let (floor_read, n_inputs) = scene_decode_floor(spec, &scene_dir, |_| true)?;
    rows.push(BenchRow::timed(
        format!("GDAL: decode the {n_inputs} inputs (a thread per file)"),
        floor_read,
        mpx,
        None,
    ));
    let full_out = spec.dir.join("out_zones");
    let floor_write = write_floor(&full_out, &spec.dir.join("floor"))?;
    rows.push(BenchRow::timed(
        "GDAL: write the run's 4 maps as COG, all at once (ZSTD 1)",
        floor_write,
        mpx,
        None,
    ));
    let seconds_of = |prefix: &str| {
        rows.iter()
            .find(|r| r.step.starts_with(prefix))
            .map(|r| r.seconds)
    };
    let maps = seconds_of("sinkmap run, maps only (COG)");
    let zones = seconds_of("sinkmap run, maps + zones")
        .ok_or_else(|| Error::internal("bench: the full run left no row"))?;
    let stage = |k: &str| run["stage_seconds"][k].as_f64();
    let every_full_run: Vec<f64> = rows
        .iter()
        .filter(|r| r.step.starts_with("sinkmap run, maps + zones"))
        .flat_map(|r| r.compute_cpu_ns_per_pixel_of_each_run.iter().copied())
        .collect();
    let invest = match &spec.invest_venv {
        Some(venv) => Some(invest_row(venv, &scene_dir, spec, zones)?),
        None => None,
    };
    if let Some(i) = &invest {
        rows.push(BenchRow::timed(
            "InVEST 3.20 carbon, stock map only (same pool table, UTM)",
            i.invest_seconds,
            mpx,
            i.invest_peak_rss_mb,
        ));
    }
    let report = BenchReport {
        width_px: spec.width,
        height_px: spec.height,
        megapixels: mpx,
        threads,
        rows,
        zonal_overhead_fraction: maps.map(|m| zones / m - 1.0),
        landcover_mean_run_px: std::fs::read_to_string(scene_dir.join("synth_stats.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["landcover_mean_run_px"].as_f64()),
        floor_read_seconds: Some(floor_read),
        floor_write_seconds: Some(floor_write),
        io_floor_seconds: Some(floor_read + floor_write),
        run_over_io_floor: Some(zones / (floor_read + floor_write)),
        compute_ns_per_pixel_per_thread: stage("compute").map(|c| c / (mpx * 1e6) * 1e9),
        compute_cpu_ns_per_pixel_per_thread: stage("compute_cpu").map(|c| c / (mpx * 1e6) * 1e9),
        overview_cpu_ns_per_pixel_per_thread: stage("overview_cpu").map(|c| c / (mpx * 1e6) * 1e9),
        compute_cpu_ns_per_pixel_median_of_full_runs: lower_median(&every_full_run),
        compute_cpu_ns_per_pixel_of_every_full_run: every_full_run,
        finish_fraction_of_run: stage("finish").map(|f| f / zones),
        invest,
        speedup_2_cores_vs_1: (scaling.len() == 2).then(|| scaling[0] / scaling[1]),
    };
    publish_json(
        &spec.dir,
        "bench.json",
        manifest::BENCH_OUTPUTS,
        &scene,
        &report,
    )?;
    Ok(report)
}

impl BenchRow {
    /// A step that took `seconds` on a scene of `mpx` megapixels.
    fn timed(
        step: impl Into<String>,
        seconds: f64,
        mpx: f64,
        peak_rss_mb: Option<f64>,
    ) -> BenchRow {
        BenchRow {
            step: step.into(),
            seconds,
            megapixels_per_second: mpx / seconds,
            peak_rss_mb,
            seconds_of_each_run: Vec::new(),
            compute_cpu_ns_per_pixel_of_each_run: Vec::new(),
        }
    }

    /// The row of a step run `r.each.len()` times: the median run's figures.
    fn repeated(step: impl Into<String>, r: &Repeated, mpx: f64) -> BenchRow {
        BenchRow {
            seconds_of_each_run: if r.each.len() > 1 {
                r.each.clone()
            } else {
                Vec::new()
            },
            compute_cpu_ns_per_pixel_of_each_run: r
                .compute_cpu_each
                .iter()
                .flatten()
                .map(|c| c / (mpx * 1e6) * 1e9)
                .collect(),
            ..BenchRow::timed(step, r.seconds, mpx, r.run["peak_rss_mb"].as_f64())
        }
    }
}

/// A `sinkmap run` step run one or more times.
struct Repeated {
    /// The median run's seconds (the lower middle one for an even number of runs).
    seconds: f64,
    /// The median run's `summary.json` → `run` (null where it could not be read).
    run: serde_json::Value,
    /// Every run's seconds, in order.
    each: Vec<f64>,
    /// Every run's compute processor seconds (`stage_seconds.compute_cpu`), in order.
    compute_cpu_each: Vec<Option<f64>>,
}

/// Runs the command `make` builds (a `sinkmap run` writing into `out_dir`) `times` times
/// (at least once), reading each run's summary before the next one replaces it.
fn repeated_run(
    times: usize,
    step: &str,
    out_dir: &Path,
    make: impl Fn() -> Result<Command>,
) -> Result<Repeated> {
    let mut runs = Vec::new();
    for _ in 0..times.max(1) {
        let s = run_child(&mut make()?, step)?;
        runs.push((s, summary_run(out_dir).unwrap_or_default()));
    }
    Ok(median_run(runs))
}

/// The median of runs given as (seconds, summary) in the order they ran (at least one).
fn median_run(mut runs: Vec<(f64, serde_json::Value)>) -> Repeated {
    let each: Vec<f64> = runs.iter().map(|(s, _)| *s).collect();
    let compute_cpu_each = runs
        .iter()
        .map(|(_, r)| r["stage_seconds"]["compute_cpu"].as_f64())
        .collect();
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (seconds, run) = runs.swap_remove(runs.len().saturating_sub(1) / 2);
    Repeated {
        seconds,
        run,
        each,
        compute_cpu_each,
    }
}

/// The median of `v` (the lower middle value for an even number; none for none).
fn lower_median(v: &[f64]) -> Option<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len().saturating_sub(1) / 2).copied()
}

/// The compute threads of the runs: `--threads`, or one per core.
fn threads(spec: &BenchSpec) -> usize {
    spec.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

/// The runs of the scene: maps only, the full run (maps + zones + cube; the only one with
/// `full_run_only`) and maps only in the tiled layout.
fn run_rows(
    spec: &BenchSpec,
    scene: &Path,
    threads: usize,
) -> Result<(Vec<BenchRow>, serde_json::Value)> {
    let mpx = (spec.width * spec.height) as f64 / 1e6;
    let mut common: Vec<String> = vec!["--quiet".into(), "--threads".into(), threads.to_string()];
    if let Some(b) = spec.block_size_px {
        common.extend(["--block-size".into(), b.to_string()]);
    }
    let (mut rows, mut full_run) = (Vec::new(), serde_json::Value::Null);
    for (step, extra, out) in [
        (
            "sinkmap run, maps only (COG)",
            vec!["--no-zones"],
            "out_maps",
        ),
        (
            "sinkmap run, maps + zones + cube (COG)",
            vec![],
            "out_zones",
        ),
        (
            "sinkmap run, maps only (tiled, no COG copy)",
            vec!["--no-zones", "--layout", "tiled"],
            "out_tiled",
        ),
    ] {
        if spec.full_run_only && out != "out_zones" {
            continue;
        }
        let out_dir = spec.dir.join(out);
        let r = repeated_run(spec.repeat, step, &out_dir, || {
            let mut cmd = Command::new(exe()?);
            cmd.arg("run")
                .arg(scene)
                .arg("--out")
                .arg(&out_dir)
                .args(&common)
                .args(&extra);
            Ok(cmd)
        })?;
        rows.push(BenchRow::repeated(step, &r, mpx));
        if out == "out_zones" {
            full_run = r.run;
        }
    }
    Ok((rows, full_run))
}

/// Scaling: the full run pinned to one core, then to two, with as many threads (nothing on a
/// one-core machine, without `taskset`, or with `full_run_only`); the rows and their seconds.
fn scaling_rows(spec: &BenchSpec, scene: &Path) -> Result<(Vec<BenchRow>, Vec<f64>)> {
    let mpx = (spec.width * spec.height) as f64 / 1e6;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let taskset = Command::new("taskset")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    let (mut rows, mut scaling) = (Vec::new(), Vec::new());
    if cores >= 2 && taskset && !spec.full_run_only {
        for (cpus, n) in [("0", 1), ("0,1", 2)] {
            let out_dir = spec.dir.join(format!("out_{n}core"));
            let step = format!("sinkmap run, maps + zones + cube, {n} core(s), {n} thread(s)");
            let r = repeated_run(spec.repeat, &step, &out_dir, || {
                let mut cmd = Command::new("taskset");
                cmd.args(["-c", cpus])
                    .arg(exe()?)
                    .arg("run")
                    .arg(scene)
                    .arg("--out")
                    .arg(&out_dir)
                    .args(["--quiet", "--no-report", "--threads", &n.to_string()]);
                if let Some(b) = spec.block_size_px {
                    cmd.args(["--block-size", &b.to_string()]);
                }
                Ok(cmd)
            })?;
            scaling.push(r.seconds);
            rows.push(BenchRow::repeated(step, &r, mpx));
        }
    }
    Ok((rows, scaling))
}

/// Seconds GDAL takes to write the full run's four maps (in `full_out`) as COG into `floor`
/// with the run's creation options, all four at once.
fn write_floor(full_out: &Path, floor: &Path) -> Result<f64> {
    std::fs::create_dir_all(floor).map_err(|e| Error::io(floor, e))?;
    let t = Instant::now();
    let children: Vec<_> = [
        "stock_tc_per_ha.tif",
        "sink_tco2_per_ha_yr.tif",
        "potential_tco2_per_ha_yr.tif",
        "best_intervention.tif",
    ]
    .iter()
    .map(|m| {
        let resampling = if m.starts_with("best") {
            "MODE"
        } else {
            "AVERAGE"
        };
        Command::new("gdal_translate")
            .arg("-q")
            .args(["-of", "COG", "-co", "COMPRESS=ZSTD", "-co", "LEVEL=1"])
            .args([
                "-co",
                "BLOCKSIZE=512",
                "-co",
                "OVERVIEWS=AUTO",
                "-co",
                "NUM_THREADS=1",
            ])
            .args(["-co", &format!("RESAMPLING={resampling}")])
            .arg(full_out.join(m))
            .arg(floor.join(m))
            .spawn()
            .map_err(|e| Error::Usage(format!("gdal_translate: cannot start: {e}")))
    })
    .collect::<Result<_>>()?;
    for mut c in children {
        let ok = c.wait().map(|s| s.success()).unwrap_or(false);
        if !ok {
            return Err(Error::Usage(
                "gdal_translate failed on a map of the run".into(),
            ));
        }
    }
    Ok(t.elapsed().as_secs_f64())
}

/// Publishes `report` as `dir/name` beside the other bench results (kept), with the scene
/// file as its input.
fn publish_json(
    dir: &Path,
    name: &str,
    produces: &[&str],
    scene: &Path,
    report: &impl Serialize,
) -> Result<()> {
    let text =
        serde_json::to_string_pretty(report).map_err(|e| Error::output(dir.join(name), e))?;
    let keep = |n: &str| n != name;
    let pub_spec = publish::Spec {
        command: "bench",
        inputs: vec![("scene".into(), scene.to_path_buf())],
        scene_sha256: None,
        tile: None,
        produces,
        extend: Some(&keep),
    };
    publish::transact(dir, pub_spec, |staging| {
        let p = staging.join(name);
        std::fs::write(&p, text + "\n").map_err(|e| Error::output(&p, e))
    })
}

/// What `sinkmap bench --series YEARS` measured.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesBenchReport {
    pub width_px: usize,
    pub height_px: usize,
    pub years: u32,
    pub megapixels: f64,
    pub threads: usize,
    /// `sinkmap series` on the scene (no zones, no per-year maps): wall seconds and the
    /// process's own peak resident memory.
    pub series_seconds: f64,
    pub series_peak_rss_mb: Option<f64>,
    /// The rasters the series reads (every year's land cover and events, the static layers).
    pub inputs: usize,
    /// GDAL decoding every block of those rasters once, a thread per file.
    pub floor_decode_seconds: f64,
    /// `series_seconds / floor_decode_seconds` (goal ≤ 2).
    pub series_over_decode_floor: f64,
}

/// `sinkmap bench --series YEARS`: the textured bench scene with a SYNTHETIC series of `years`
/// years from 2000 (`synth --years`) in `spec.dir/series`, `sinkmap series` timed against
/// GDAL's decode floor of the same rasters, and its peak RSS. Writes `bench_series.json`.
pub fn bench_series(spec: &BenchSpec, years: u32, progress: bool) -> Result<SeriesBenchReport> {
    if !(2..=200).contains(&years) {
        return Err(Error::Usage(format!(
            "--series {years}: expected 2 to 200 years"
        )));
    }
    let bench_dir = spec.dir.clone();
    let spec = BenchSpec {
        dir: spec.dir.join("series"),
        ..spec.clone()
    };
    let (scene_dir, scene, _) = ensure_scene(&spec, progress)?;
    add_series_years(&spec, &scene_dir, (2000, 2000 + years as i32 - 1))?;
    let threads = threads(&spec);
    let out = spec.dir.join("out_series");
    let mut cmd = Command::new(exe()?);
    cmd.arg("series").arg(&scene).arg("--out").arg(&out).args([
        "--quiet",
        "--no-zones",
        "--threads",
        &threads.to_string(),
    ]);
    if let Some(b) = spec.block_size_px {
        cmd.args(["--block-size", &b.to_string()]);
    }
    let (series_seconds, series_peak_rss_mb) = run_child_rss(&mut cmd, "sinkmap series")?;
    // The series reads every year's land cover and events and the static layers, not the
    // scene's single-year land cover.
    let (floor_decode_seconds, n_inputs) =
        scene_decode_floor(&spec, &scene_dir, |stem| stem != "landcover")?;
    let report = SeriesBenchReport {
        width_px: spec.width,
        height_px: spec.height,
        years,
        megapixels: (spec.width * spec.height) as f64 / 1e6,
        threads,
        series_seconds,
        series_peak_rss_mb,
        inputs: n_inputs,
        floor_decode_seconds,
        series_over_decode_floor: series_seconds / floor_decode_seconds,
    };
    // Published beside bench.json (kept) in the bench folder.
    publish_json(
        &bench_dir,
        "bench_series.json",
        &["bench_series.json"],
        &scene,
        &report,
    )?;
    Ok(report)
}

/// Adds the SYNTHETIC years `y0..=y1` to the published bench scene in `scene_dir` (unless a
/// marker says they are there), as a new set that keeps the scene's files; a mosaic scene
/// gets the years of its tile, repeated by VRTs like its other layers.
fn add_series_years(spec: &BenchSpec, scene_dir: &Path, (y0, y1): (i32, i32)) -> Result<()> {
    let marker = scene_dir.join(format!(".series-{y0}-{y1}"));
    if marker.exists() {
        return Ok(());
    }
    let keep = |_: &str| true;
    publish_scene_set(scene_dir, &marker, Some(&keep), |staging| {
        // A copy of its own: the carried scene.toml is a hard link of the published one.
        let s = staging.join("scene.toml");
        unlink_copy(&s)?;
        match spec.mosaic_tile_px {
            None => sinkmap::series::synth::add_years(&s, y0, y1, 2060).map(|_| ()),
            Some(_) => add_mosaic_years(spec, staging, (y0, y1)),
        }
    })
}

/// The years of a mosaic scene's tile (in `staging/tile`), repeated by a VRT per raster like
/// its other layers, and the tile's [series] table added to the scene with the VRTs' names.
fn add_mosaic_years(spec: &BenchSpec, staging: &Path, (y0, y1): (i32, i32)) -> Result<()> {
    let s = staging.join("scene.toml");
    let t = staging.join("tile/scene.toml");
    unlink_copy(&t)?;
    let full = scene_spec(spec, staging.to_path_buf(), None);
    for f in sinkmap::series::synth::add_years(&t, y0, y1, 2060)? {
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        let vrt = mosaic_vrt(&f, &format!("tile/{name}"), &full)?;
        let v = staging.join(name.replace(".tif", ".vrt"));
        std::fs::write(&v, vrt).map_err(|e| Error::io(&v, e))?;
    }
    let tile_text = std::fs::read_to_string(&t).map_err(|e| Error::io(&t, e))?;
    let series = tile_text
        .find("\n# SYNTHETIC annual series")
        .map(|i| tile_text[i..].replace(".tif\"", ".vrt\""))
        .ok_or_else(|| Error::internal("bench: the tile has no [series]"))?;
    let text = std::fs::read_to_string(&s).map_err(|e| Error::io(&s, e))?;
    std::fs::write(&s, text + &series).map_err(|e| Error::io(&s, e))
}

/// The series benchmark as a few lines.
pub fn series_table(r: &SeriesBenchReport) -> String {
    format!(
        "series bench: {} x {} px ({:.1} Mpx), {} years, {} threads\n  sinkmap series        {:>8.2} s   peak RSS {} MB\n  GDAL decode floor     {:>8.2} s   ({} rasters, a thread per file)\n  series / floor        {:>8.2}     (goal <= 2)\n",
        r.width_px,
        r.height_px,
        r.megapixels,
        r.years,
        r.threads,
        r.series_seconds,
        r.series_peak_rss_mb
            .map(|m| format!("{m:.0}"))
            .unwrap_or_else(|| "?".into()),
        r.floor_decode_seconds,
        r.inputs,
        r.series_over_decode_floor
    )
}

/// InVEST's carbon model on the bench land cover: warped once to UTM 45N with the same pixel
/// count (InVEST needs a projected CRS; nearest neighbour keeps the texture), the bench pool
/// table, stock only, synchronous (`n_workers = -1`).
fn invest_row(
    venv: &Path,
    scene_dir: &Path,
    spec: &BenchSpec,
    sinkmap_seconds: f64,
) -> Result<InvestRow> {
    let python = venv.join("bin/python");
    if !python.exists() {
        return Err(Error::Usage(format!(
            "--invest {}: no bin/python in that folder (install InVEST into a venv first)",
            venv.display()
        )));
    }
    let dir = spec.dir.join("invest");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let lulc = dir.join("landcover_utm45n.tif");
    if !lulc.exists() {
        let mut cmd = Command::new("gdalwarp");
        cmd.args(["-q", "-t_srs", "EPSG:32645", "-r", "near", "-ot", "Byte"])
            .args(["-ts", &spec.width.to_string(), &spec.height.to_string()])
            .args([
                "-co",
                "TILED=YES",
                "-co",
                "COMPRESS=DEFLATE",
                "-co",
                "BIGTIFF=IF_SAFER",
            ])
            .args(["-wo", "NUM_THREADS=ALL_CPUS", "-multi"])
            .arg(scene_dir.join("landcover.tif"))
            .arg(&lulc);
        run_child(&mut cmd, "gdalwarp (land cover to UTM for InVEST)")?;
    }
    let pools = scene_dir.join("bench_pools.csv");
    let work = dir.join("workspace");
    let _ = std::fs::remove_dir_all(&work);
    let script = format!(
        "import natcap.invest.carbon as c\n\
c.execute({{'workspace_dir': {w:?}, 'lulc_bas_path': {l:?}, 'carbon_pools_path': {p:?}, \
'calc_sequestration': False, 'do_valuation': False, 'n_workers': -1, 'results_suffix': ''}})\n",
        w = work.to_string_lossy(),
        l = lulc.to_string_lossy(),
        p = pools.to_string_lossy(),
    );
    let mut cmd = Command::new(&python);
    cmd.arg("-c").arg(script);
    let (seconds, rss) = run_child_rss(&mut cmd, "InVEST carbon")?;
    Ok(InvestRow {
        invest_seconds: seconds,
        invest_peak_rss_mb: rss,
        sinkmap_speedup: seconds / sinkmap_seconds,
    })
}

/// The report as a small table.
pub fn table(r: &BenchReport) -> String {
    let mut s = format!(
        "{} × {} px ({:.0} Mpx), {} threads\n",
        r.width_px, r.height_px, r.megapixels, r.threads
    );
    s += &format!(
        "{:<66} {:>9} {:>9} {:>10}\n",
        "step", "seconds", "Mpx/s", "peak MB"
    );
    for row in &r.rows {
        s += &format!(
            "{:<66} {:>9.2} {:>9.1} {:>10}\n",
            row.step,
            row.seconds,
            row.megapixels_per_second,
            row.peak_rss_mb
                .map(|m| format!("{m:.0}"))
                .unwrap_or_else(|| "-".into())
        );
        if !row.seconds_of_each_run.is_empty() {
            let each: Vec<String> = row
                .seconds_of_each_run
                .iter()
                .map(|x| format!("{x:.2}"))
                .collect();
            s += &format!("    median of {} runs: {}\n", each.len(), each.join(", "));
        }
    }
    if let Some(z) = r.zonal_overhead_fraction {
        s += &format!(
            "zonal accounting adds {:.1} % to the maps-only run\n",
            z * 100.0
        );
    }
    if let Some(m) = r.landcover_mean_run_px {
        s += &format!("land cover: mean run of equal pixels along rows {m:.2} px\n");
    }
    if let (Some(f), Some(t)) = (r.io_floor_seconds, r.run_over_io_floor) {
        s += &format!(
            "I/O floor (GDAL decodes the inputs, then writes the 4 maps as COG) {f:.2} s: full run / floor = {t:.2}\n"
        );
    }
    if let Some(c) = r.compute_ns_per_pixel_per_thread {
        s += &format!("compute: {c:.1} ns per pixel per thread\n");
    }
    if let Some(c) = r.compute_cpu_ns_per_pixel_per_thread {
        s += &format!("compute: {c:.1} ns of processor time per pixel");
        match r.overview_cpu_ns_per_pixel_per_thread {
            Some(o) => s += &format!(" ({o:.1} of them for the overview levels)\n"),
            None => s += "\n",
        }
    }
    let every = &r.compute_cpu_ns_per_pixel_of_every_full_run;
    if let (Some(m), true) = (
        r.compute_cpu_ns_per_pixel_median_of_full_runs,
        every.len() > 1,
    ) {
        let (lo, hi) = every
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        s += &format!(
            "compute over all {} runs with zones and cube (any core count): median {m:.1} ns of processor time per pixel, {lo:.1}–{hi:.1}\n",
            every.len()
        );
    }
    if let Some(f) = r.finish_fraction_of_run {
        s += &format!(
            "finish (COG assembly): {:.1} % of the full run\n",
            f * 100.0
        );
    }
    if let Some(i) = &r.invest {
        s += &format!(
            "InVEST stock-only {:.1} s: the full sinkmap run is {:.1}× faster\n",
            i.invest_seconds, i.sinkmap_speedup
        );
    }
    if let Some(x) = r.speedup_2_cores_vs_1 {
        s += &format!("2 cores / 2 threads are {x:.2}× faster than 1 core / 1 thread\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repeated step keeps the median run with its own summary, and every run's seconds
    /// in the order they ran; one run is its own median, two give the faster one.
    #[test]
    fn a_repeated_step_reports_its_median_run() {
        let runs = |s: &[f64]| -> Vec<(f64, serde_json::Value)> {
            s.iter()
                .map(|&x| {
                    let summary = serde_json::json!({
                        "peak_rss_mb": x * 10.0,
                        "stage_seconds": { "compute_cpu": x / 4.0 },
                    });
                    (x, summary)
                })
                .collect()
        };
        let r = median_run(runs(&[14.6, 12.3, 19.0]));
        assert_eq!(
            (r.seconds, r.run["peak_rss_mb"].as_f64()),
            (14.6, Some(146.0))
        );
        assert_eq!(r.each, [14.6, 12.3, 19.0]);
        let row = BenchRow::repeated("step", &r, 400.0);
        assert_eq!(row.seconds_of_each_run, [14.6, 12.3, 19.0]);
        // Processor seconds / 400 Mpx, in ns: 3.65 s → 9.125 ns, run by run.
        let ns: Vec<f64> = [14.6, 12.3, 19.0]
            .iter()
            .map(|x| x / 4.0 / 400e6 * 1e9)
            .collect();
        assert_eq!(row.compute_cpu_ns_per_pixel_of_each_run, ns);
        assert_eq!(lower_median(&ns), Some(ns[0]));
        assert_eq!(lower_median(&[3.0, 1.0, 4.0, 2.0]), Some(2.0));
        assert_eq!(lower_median(&[]), None);
        assert_eq!(row.peak_rss_mb, Some(146.0));
        assert!((row.megapixels_per_second - 400.0 / 14.6).abs() < 1e-12);
        assert_eq!(median_run(runs(&[15.0, 13.0])).seconds, 13.0);
        let one = median_run(runs(&[9.0]));
        assert_eq!(one.seconds, 9.0);
        assert!(BenchRow::repeated("one", &one, 1.0)
            .seconds_of_each_run
            .is_empty());
    }

    /// Every pixel of a mosaic layer is the tile's pixel at the same offset within its tile,
    /// including the cut last row and column of tiles, and the grid is the full grid's.
    #[test]
    fn a_mosaic_repeats_its_tile_pixel_for_pixel() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = BenchSpec {
            dir: tmp.path().to_path_buf(),
            width: 700,
            height: 450,
            threads: None,
            block_size_px: None,
            lon0: 80.0,
            lat0: 46.0,
            invest_venv: None,
            full_run_only: false,
            mosaic_tile_px: Some(300),
            repeat: 1,
        };
        let tile = BenchSpec {
            width: 300,
            height: 200,
            ..spec.clone()
        };
        synth::generate(&scene_spec(&tile, tmp.path().join("tile"), None), false).unwrap();
        let full = scene_spec(&spec, tmp.path().to_path_buf(), None);
        for (layer, ty) in [("landcover", "Byte"), ("forest_age", "Int16")] {
            let src = tmp.path().join(format!("tile/{layer}.tif"));
            let xml = mosaic_vrt(&src, &format!("tile/{layer}.tif"), &full).unwrap();
            assert!(xml.contains(&format!("dataType=\"{ty}\"")), "{layer}");
            // 3 tiles across (300 + 300 + 100), 3 down (200 + 200 + 50).
            assert_eq!(xml.matches("<SimpleSource>").count(), 9, "{layer}");
            let vrt = tmp.path().join(format!("{layer}.vrt"));
            std::fs::write(&vrt, xml).unwrap();
            let ds = gdal::Dataset::open(&vrt).unwrap();
            assert_eq!(ds.raster_size(), (700, 450));
            let gt = ds.geo_transform().unwrap();
            assert_eq!(
                gt,
                [80.0, BENCH_PIXEL_DEG, 0.0, 46.0, 0.0, -BENCH_PIXEL_DEG]
            );
            let m = ds.rasterband(1).unwrap();
            let m = m
                .read_as::<f64>((0, 0), (700, 450), (700, 450), None)
                .unwrap();
            let t = gdal::Dataset::open(&src).unwrap();
            let t = t.rasterband(1).unwrap();
            let t = t
                .read_as::<f64>((0, 0), (300, 200), (300, 200), None)
                .unwrap();
            let (m, t) = (m.data(), t.data());
            for y in 0..450 {
                for x in 0..700 {
                    let (a, b) = (m[y * 700 + x], t[(y % 200) * 300 + x % 300]);
                    assert_eq!(a, b, "{layer} at ({x}, {y})");
                }
            }
        }
    }
}
