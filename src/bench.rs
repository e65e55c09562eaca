//! `sinkmap bench`: throughput (Mpx/s) and peak memory of full runs on a synthetic scene,
//! beside the I/O floor — GDAL alone reading the same inputs and writing the same number of
//! Float32 bands with the same compression and layout.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde::Serialize;

use sinkmap::synth::{self, SynthSpec};
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
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    pub step: String,
    pub seconds: f64,
    pub megapixels_per_second: f64,
    pub peak_rss_mb: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub width_px: usize,
    pub height_px: usize,
    pub megapixels: f64,
    pub threads: usize,
    pub rows: Vec<BenchRow>,
    /// Run time with zones over run time of the maps alone, minus one.
    pub zonal_overhead_fraction: f64,
    /// GDAL alone reading every input and writing the same maps as COG, one after the other.
    pub io_floor_seconds: Option<f64>,
    /// I/O floor time over the full run's time: the run's throughput as a fraction of the
    /// floor's (above 1: faster than GDAL reading and writing alone, as reading, computing
    /// and writing overlap).
    pub throughput_vs_io_floor: Option<f64>,
    /// Full run on one core (1 thread) over the full run on two cores (2 threads), both
    /// pinned with `taskset`; absent on a one-core machine or without `taskset`.
    pub speedup_2_cores_vs_1: Option<f64>,
}

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

fn summary_rss(dir: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join("summary.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["run"]["peak_rss_mb"].as_f64()
}

/// Generates the scene when needed, runs the steps and writes `bench.json` in `spec.dir`.
pub fn bench(spec: &BenchSpec, progress: bool) -> Result<BenchReport> {
    let scene_dir = spec.dir.join("scene");
    let scene = scene_dir.join("scene.toml");
    let mpx = (spec.width * spec.height) as f64 / 1e6;
    let mut rows = Vec::new();
    let marker = scene_dir.join(format!(
        ".scene-{}x{}-at-{}-{}-{BENCH_PIXEL_DEG}",
        spec.width, spec.height, spec.lon0, spec.lat0
    ));
    if !marker.exists() {
        let t = Instant::now();
        let models = std::fs::canonicalize("models").map_err(|e| Error::io("models", e))?;
        synth::generate(
            &SynthSpec {
                dir: scene_dir.clone(),
                width: spec.width,
                height: spec.height,
                seed: 2060,
                lon0: spec.lon0,
                lat0: spec.lat0,
                pixel_deg: BENCH_PIXEL_DEG,
                zones_path: None,
                models_dir_in_scene: models.to_string_lossy().into_owned(),
                output_dir_in_scene: "../out".into(),
                zones_path_in_scene: None,
                base_year: 2020,
                name: format!("bench {}x{} (SYNTHETIC)", spec.width, spec.height),
                with_accounting: false,
            },
            progress,
        )?;
        std::fs::write(&marker, "").map_err(|e| Error::io(&marker, e))?;
        rows.push(BenchRow {
            step: "synth (generate inputs)".into(),
            seconds: t.elapsed().as_secs_f64(),
            megapixels_per_second: mpx / t.elapsed().as_secs_f64(),
            peak_rss_mb: None,
        });
    }
    let threads = spec.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let mut common: Vec<String> = vec!["--quiet".into(), "--threads".into(), threads.to_string()];
    if let Some(b) = spec.block_size_px {
        common.extend(["--block-size".into(), b.to_string()]);
    }
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
        let out_dir = spec.dir.join(out);
        let mut cmd = Command::new(exe()?);
        cmd.arg("run")
            .arg(&scene)
            .arg("--out")
            .arg(&out_dir)
            .args(&common)
            .args(&extra);
        let s = run_child(&mut cmd, step)?;
        rows.push(BenchRow {
            step: step.into(),
            seconds: s,
            megapixels_per_second: mpx / s,
            peak_rss_mb: summary_rss(&out_dir),
        });
    }
    // Scaling: the full run pinned to one core, then to two, with as many threads.
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let taskset = Command::new("taskset")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    let mut scaling = Vec::new();
    if cores >= 2 && taskset {
        for (cpus, n) in [("0", 1), ("0,1", 2)] {
            let out_dir = spec.dir.join(format!("out_{n}core"));
            let step = format!("sinkmap run, maps + zones + cube, {n} core(s), {n} thread(s)");
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", cpus])
                .arg(exe()?)
                .arg("run")
                .arg(&scene)
                .arg("--out")
                .arg(&out_dir)
                .args(["--quiet", "--no-report", "--threads", &n.to_string()]);
            if let Some(b) = spec.block_size_px {
                cmd.args(["--block-size", &b.to_string()]);
            }
            let s = run_child(&mut cmd, &step)?;
            scaling.push(s);
            rows.push(BenchRow {
                step,
                seconds: s,
                megapixels_per_second: mpx / s,
                peak_rss_mb: summary_rss(&out_dir),
            });
        }
    }
    // Rendering the report from the 400-Mpx outputs (maps from the COG overviews).
    let t = Instant::now();
    let mut cmd = Command::new(exe()?);
    cmd.arg("report").arg(spec.dir.join("out_zones"));
    run_child(&mut cmd, "sinkmap report")?;
    let s = t.elapsed().as_secs_f64();
    rows.push(BenchRow {
        step: "sinkmap report (all maps and charts, from COG overviews)".into(),
        seconds: s,
        megapixels_per_second: mpx / s,
        peak_rss_mb: None,
    });
    // The I/O floor with GDAL's own tools, where they are installed.
    let floor = spec.dir.join("floor");
    std::fs::create_dir_all(&floor).map_err(|e| Error::io(&floor, e))?;
    // Every input raster of the scene (land cover, age, type, subtype, masks).
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&scene_dir)
        .map_err(|e| Error::io(&scene_dir, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "tif"))
        .collect();
    inputs.sort();
    let t = Instant::now();
    let mut ok = !inputs.is_empty();
    for f in &inputs {
        ok &= Command::new("gdalinfo")
            .arg("-checksum")
            .arg(f)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
    }
    let mut floor_read = None;
    let mut floor_write = None;
    if ok {
        let s = t.elapsed().as_secs_f64();
        floor_read = Some(s);
        rows.push(BenchRow {
            step: format!(
                "GDAL: read the {} inputs (gdalinfo -checksum)",
                inputs.len()
            ),
            seconds: s,
            megapixels_per_second: mpx / s,
            peak_rss_mb: None,
        });
        for (layout, args) in [
            (
                "COG",
                vec![
                    "-of",
                    "COG",
                    "-co",
                    "COMPRESS=ZSTD",
                    "-co",
                    "LEVEL=1",
                    "-co",
                    "BLOCKSIZE=512",
                    "-co",
                    "NUM_THREADS=ALL_CPUS",
                    "-co",
                    "OVERVIEWS=AUTO",
                    "-co",
                    "RESAMPLING=AVERAGE",
                ],
            ),
            (
                "tiled",
                vec![
                    "-co",
                    "TILED=YES",
                    "-co",
                    "BLOCKXSIZE=512",
                    "-co",
                    "BLOCKYSIZE=512",
                    "-co",
                    "COMPRESS=ZSTD",
                    "-co",
                    "ZSTD_LEVEL=1",
                    "-co",
                    "NUM_THREADS=ALL_CPUS",
                ],
            ),
        ] {
            let t = Instant::now();
            // The same maps as a run writes: three Float32 and one Byte.
            for (i, ot) in ["Float32", "Float32", "Float32", "Byte"].iter().enumerate() {
                let mut cmd = Command::new("gdal_translate");
                cmd.arg("-q")
                    .args(["-ot", ot])
                    .args(&args)
                    .arg(scene_dir.join("forest_age.tif"))
                    .arg(floor.join(format!("band{i}.tif")));
                run_child(&mut cmd, "gdal_translate")?;
            }
            let s = t.elapsed().as_secs_f64();
            if layout == "COG" {
                floor_write = Some(s);
            }
            rows.push(BenchRow {
                step: format!("GDAL: write 3 Float32 + 1 Byte bands ({layout}, ZSTD 1)"),
                seconds: s,
                megapixels_per_second: mpx / s,
                peak_rss_mb: None,
            });
        }
    }
    let maps = rows
        .iter()
        .find(|r| r.step.starts_with("sinkmap run, maps only (COG)"))
        .map(|r| r.seconds)
        .unwrap_or(1.0);
    let zones = rows
        .iter()
        .find(|r| r.step.starts_with("sinkmap run, maps + zones"))
        .map(|r| r.seconds)
        .unwrap_or(maps);
    let report = BenchReport {
        width_px: spec.width,
        height_px: spec.height,
        megapixels: mpx,
        threads,
        rows,
        zonal_overhead_fraction: zones / maps - 1.0,
        io_floor_seconds: floor_read.zip(floor_write).map(|(r, w)| r + w),
        throughput_vs_io_floor: floor_read.zip(floor_write).map(|(r, w)| (r + w) / zones),
        speedup_2_cores_vs_1: (scaling.len() == 2).then(|| scaling[0] / scaling[1]),
    };
    let p = spec.dir.join("bench.json");
    let text = serde_json::to_string_pretty(&report).map_err(|e| Error::output(&p, e))?;
    std::fs::write(&p, text + "\n").map_err(|e| Error::output(&p, e))?;
    Ok(report)
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
    }
    s += &format!(
        "zonal accounting adds {:.1} % to the maps-only run\n",
        r.zonal_overhead_fraction * 100.0
    );
    if let (Some(f), Some(t)) = (r.io_floor_seconds, r.throughput_vs_io_floor) {
        s += &format!(
            "I/O floor (GDAL read + COG write, one after the other) {f:.2} s: the full run has {:.0} % of its throughput\n",
            t * 100.0
        );
    }
    if let Some(x) = r.speedup_2_cores_vs_1 {
        s += &format!("2 cores / 2 threads are {x:.2}× faster than 1 core / 1 thread\n");
    }
    s
}
