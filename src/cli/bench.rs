//! `sinkmap bench`: throughput and memory on a synthetic scene (see crate::bench).

use std::path::PathBuf;

use clap::Args;

use sinkmap::Result;

use crate::bench;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Work folder (scene, outputs, bench.json).
    #[arg(long, default_value = "rasters/bench")]
    pub dir: PathBuf,
    /// Grid width in pixels (0.00025° each, from 80° E, 46° N).
    #[arg(long, default_value_t = 20_000)]
    pub width: usize,
    /// Grid height in pixels.
    #[arg(long, default_value_t = 20_000)]
    pub height: usize,
    /// The Xinjiang bounding box at 0.00025° instead: 91 600 × 59 600 px, 5.5 billion cells.
    /// Runs only the full run and the I/O floor (no maps-only, tiled or one-core runs); needs
    /// about 16 GB of disk in DIR (scene, the run's maps, the floor's maps). The scene is one
    /// textured 10 000 × 10 000 tile repeated by GDAL VRTs (the zones cover the whole box).
    #[arg(long, conflicts_with_all = ["width", "height"])]
    pub xinjiang: bool,
    /// Build the scene as a mosaic of one generated PX × PX textured tile (GDAL VRTs repeat it
    /// across the grid; the zones cover the whole grid): for grids too big to generate cell by
    /// cell. `--xinjiang` uses 10 000.
    #[arg(long, value_name = "PX", value_parser = clap::value_parser!(u32).range(256..))]
    pub mosaic_tile: Option<u32>,
    /// Threads of the runs (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Benchmark `sinkmap series` instead: YEARS synthetic years from 2000 on the textured
    /// scene (in DIR/series), timed against GDAL decoding the same rasters (goal ≤ 2×), with
    /// its peak RSS; writes DIR/bench_series.json. Example: --series 23 --width 2000 --height 2000
    #[arg(long, value_name = "YEARS")]
    pub series: Option<u32>,
    /// Block size of the runs (default: the scene's, 512).
    #[arg(long)]
    pub block_size: Option<usize>,
    /// A Python venv with natcap.invest 3.20 installed (README, "Benchmark", says how): also
    /// run InVEST's carbon model (stock only, same pool table) on the scene and print how much
    /// faster the full sinkmap run is.
    #[arg(long, value_name = "VENV")]
    pub invest: Option<PathBuf>,
    /// Run each `sinkmap run` step N times and report the median run (its seconds, memory
    /// and stage times; bench.json lists every run's seconds): on a machine shared with
    /// other work, one slow run then does not decide a figure. GDAL's floor and InVEST run
    /// once.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub repeat: u32,
}

/// Runs `sinkmap bench`.
pub fn cmd_bench(a: BenchArgs) -> Result<()> {
    let spec = if a.xinjiang {
        bench::BenchSpec {
            threads: a.threads,
            block_size_px: a.block_size,
            invest_venv: a.invest.clone(),
            mosaic_tile_px: Some(a.mosaic_tile.unwrap_or(10_000) as usize),
            repeat: a.repeat as usize,
            ..bench::BenchSpec::xinjiang(a.dir.clone())
        }
    } else {
        bench::BenchSpec {
            dir: a.dir.clone(),
            width: a.width,
            height: a.height,
            threads: a.threads,
            block_size_px: a.block_size,
            lon0: 80.0,
            lat0: 46.0,
            invest_venv: a.invest.clone(),
            full_run_only: false,
            mosaic_tile_px: a.mosaic_tile.map(|t| t as usize),
            repeat: a.repeat as usize,
        }
    };
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    if let Some(years) = a.series {
        let report = bench::bench_series(&spec, years, progress)?;
        print!("{}", bench::series_table(&report));
        println!("written to {}", a.dir.join("bench_series.json").display());
        return Ok(());
    }
    let report = bench::bench(&spec, progress)?;
    print!("{}", bench::table(&report));
    println!("written to {}", a.dir.join("bench.json").display());
    Ok(())
}
