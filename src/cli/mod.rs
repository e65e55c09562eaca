//! The subcommands of the `sinkmap` binary: their clap arguments beside one function each
//! (`cmd_run`, `cmd_balance`, …). main.rs parses, dispatches and maps errors to exit codes;
//! the arguments and helpers shared by several subcommands live here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use sinkmap::config::{Compression, Layout, Scene};
use sinkmap::pipeline::RunOptions;
use sinkmap::zones::{ZoneSet, ZoneSource};
use sinkmap::Result;

pub mod balance;
pub mod bench;
pub mod change;
pub mod fit;
pub mod init;
pub mod merge;
pub mod project;
pub mod report;
pub mod run;
pub mod series;
pub mod synth;

use balance::BalanceArgs;
use bench::BenchArgs;
use change::ChangeArgs;
use fit::FitArgs;
use init::InitArgs;
use merge::MergeArgs;
use project::ProjectArgs;
use report::ReportArgs;
use run::{RunArgs, ZonalArgs};
use series::SeriesArgs;
use synth::SynthArgs;

/// Estimate the carbon stock and annual CO₂ sink of a region's land from land-cover and
/// forest-age rasters.
///
/// sinkmap reads a scene file (TOML) naming a land-cover raster and its scheme (CLCD, ESA
/// WorldCover, MODIS IGBP or your own), a forest-age raster and optional forest-type and
/// desert-subtype rasters, runs forest age–carbon-density curves and desert-ecosystem sink
/// models from `models/`, and writes, in the scene's output folder:
///
///   stock_tc_per_ha.tif       carbon stock density, t C/ha (COG)
///   sink_tco2_per_ha_yr.tif   annual net removal, t CO2/ha/yr, positive = uptake (COG)
///   summary.json              area by class (ha), total stock (t C), sink (t CO2/yr) split
///   cube.csv                  the cohort cube: area/stock/sink per zone × class × type × age
///   zones.csv, zones.geojson  per-zone tables when the scene has [zones]
///
/// Start with `sinkmap run`: without a scene it runs the embedded synthetic sample scene.
#[derive(Parser, Debug)]
#[command(name = "sinkmap", version, about, long_about, verbatim_doc_comment)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Report progress as JSON lines on standard error, for programs driving sinkmap (e.g.
    /// {"progress":0.42,"done":420,"total":1000,"unit":"pixels"}); other lines are messages.
    #[arg(long, global = true)]
    pub progress_json: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Compute the stock and sink maps, summary, cube and zone tables of a scene.
    ///
    /// Example: sinkmap run rasters/sample/scene.toml --out out/sample
    Run(RunArgs),
    /// Run the zonal accounting of a scene with another polygon layer.
    ///
    /// Example: sinkmap zonal rasters/sample/scene.toml --zones prefectures.geojson
    ///          --id adcode --name name_pinyin --out out/prefectures
    Zonal(ZonalArgs),
    /// Start a scene of your own: a commented starter scene.toml and a copy of the models.
    ///
    /// Writes DIR/scene.toml (edit the paths of your rasters and zones) and DIR/models/ (the
    /// models embedded in sinkmap, to read and edit; the scene points at them). Nothing is
    /// overwritten. Example: sinkmap init my_region --scheme esa_worldcover
    Init(InitArgs),
    /// Generate a SYNTHETIC scene of Xinjiang's kind (lon/lat) of any size, seeded and deterministic.
    ///
    /// Example: sinkmap synth --out rasters/big --width 20000 --height 20000
    Synth(SynthArgs),
    /// Project the sink to 2060 from a saved cube, with Monte Carlo bands, and balance it
    /// against emission scenarios — in seconds, without reading the rasters again.
    ///
    /// Writes trajectory.csv (zone × year × component), sink_inputs.csv (for accounting
    /// systems), balance.csv (year × scenario) and accounting.json, and adds the headline to
    /// summary.json. Example: sinkmap balance rasters/sample/scene.toml --draws 1000 --seed 42
    ///     --rollout rasters/sample/rollout.toml --scenarios models/emissions/xinjiang.toml
    Balance(BalanceArgs),
    /// Rebuild report.html and its PNG maps and charts from the saved outputs of a run.
    ///
    /// Example: sinkmap report out/sample
    Report(ReportArgs),
    /// Land-cover change between two years: stock-difference map, transition matrices by
    /// zone, mean annual change and its value (InVEST's formula).
    ///
    /// Writes stock_change_tc_per_ha.tif, transition.csv, change_zones.csv and change.json.
    /// Example: sinkmap change scene.toml --before clcd_2000.tif --after clcd_2020.tif
    ///          --years 2000 2020 --price-per-tc 200 --discount-rate 3 --out out/change
    Change(ChangeArgs),
    /// Annual history: run a land-cover series year by year with per-pixel stand ages.
    ///
    /// The scene's [series] table names the land cover of every year (landcover_pattern with
    /// {year}, or landcover_by_year) and optional event rasters by year (codes of
    /// models/events.toml: fire, harvest, thinning). Stands age, are planted, cleared or
    /// burned; every pixel's stock, gross sink, emissions by cause and transfers are summed
    /// per zone and year. Writes series.csv, series_transitions.csv, forest_age_LAST.tif
    /// (the state to continue from) and cube.csv (the last year's cohort cube, for balance
    /// --cube); --maps stock,net,age adds per-year maps; --tile I/N and `sinkmap merge`
    /// split a large series like `run`. Example: sinkmap series
    /// rasters/sample_series/scene.toml --maps stock,net --out out/series
    Series(SeriesArgs),
    /// Evaluate a restoration project: yearly additional sink, credits, cost per t CO2, NPV.
    ///
    /// The project file names a scene, an intervention of models/restoration.toml, a polygon
    /// (file or inline WKT), a start year, the planted area (default: all eligible land in the
    /// polygon), an optional rollout, a carbon price path, a discount rate and a buffer.
    /// Writes project.csv (one row per year) and project.json (totals).
    /// Example: sinkmap project rasters/sample/project_grazing_exclusion.toml --out out/project
    Project(ProjectArgs),
    /// Fit age–carbon-density curves (logistic, Richards, Gompertz, Korf) to inventory plots.
    ///
    /// Per forest type, every form is fitted by nonlinear least squares; standard errors,
    /// correlations, R², RMSE, AIC/BIC are reported; the best usable form by AIC goes into a
    /// forest.toml ready for models/. Writes fit_table.csv, fit_table.md and forest.toml.
    /// Example: sinkmap fit plots.csv --type-field species --age-field age --density-field agb
    ///          --biomass --carbon-fraction-type "Tianshan spruce=0.4619" --root-shoot 0.25 --out fit
    Fit(FitArgs),
    /// Combine the partial outputs of `run --tile I/N` (or `series --tile I/N`) into the result of a single run.
    ///
    /// Maps are mosaicked (VRT) and copied to a COG; cubes are added; summary.json and the zone
    /// tables are recomputed from the merged cube.
    /// Example: sinkmap merge scene.toml out/t1 out/t2 out/t3 --out out/all
    Merge(MergeArgs),
    /// Measure throughput (Mpx/s) and peak memory on a synthetic scene, beside GDAL's I/O floor.
    ///
    /// Generates the scene on first use (kept for later runs), then runs `sinkmap run` with
    /// and without zones and gdal_translate with the same compression; writes DIR/bench.json.
    /// Also pins the full run to 1 and to 2 cores (taskset) to measure scaling. Run from the
    /// project root. Examples: sinkmap bench · sinkmap bench --width 40000 --height 40000
    /// --dir rasters/bench40k · sinkmap bench --xinjiang --dir rasters/bench_xinjiang
    Bench(BenchArgs),
    /// Accuracy assessment: a reference sample against the land-cover map → error matrix,
    /// user's/producer's/overall accuracy, error-adjusted class areas with 95 % intervals
    /// (Olofsson et al. 2014) and the carbon totals with adjusted areas, per zone.
    ///
    /// Writes error_matrix_counts.csv, error_matrix_area_proportions.csv, accuracy.csv,
    /// adjusted_area.csv and assessment.json.
    /// Example: sinkmap assess rasters/sample/scene.toml --reference points.gpkg --class-field reference
    Assess(sinkmap::assess::cli::AssessArgs),
    /// Draw a reproducible stratified random sample of map pixels for reference
    /// interpretation (e.g. in QGIS), with Olofsson et al. (2014) allocation rules.
    ///
    /// Writes sample_points.gpkg and sample_points.csv (map class, empty 'reference' column)
    /// and allocation.csv. Example: sinkmap sample rasters/sample/scene.toml --n 600
    ///     --allocation olofsson --min-per-class 50 --seed 7
    Sample(sinkmap::assess::cli::SampleArgs),
    /// Field plots against the stock map: the map's prediction over each plot, residuals
    /// (bias, RMSE) by class and forest type, and model-assisted (difference, GREG)
    /// estimates of mean density and total stock per zone with 95 % intervals.
    ///
    /// Writes calibration_plots.csv, residuals.csv, calibrated_totals.csv, calibration.json.
    /// Example: sinkmap calibrate rasters/sample/scene.toml --plots plots.csv
    ///     --density-field carbon_tc_ha --plot-area-m2 600 --classes 2
    Calibrate(sinkmap::assess::cli::CalibrateArgs),
}

/// Speed-only options of a raster pass.
#[derive(Args, Debug, Clone, Copy)]
pub struct TuningArgs {
    /// Processing block edge in pixels (multiple of 16, 16–4096; default: the scene's).
    /// Changes speed and memory only, never a number.
    #[arg(long)]
    pub block_size: Option<usize>,
    /// Compute threads (default: all cores). Changes speed only, never a number.
    #[arg(long)]
    pub threads: Option<usize>,
}

impl TuningArgs {
    pub fn tuning(self) -> sinkmap::engine::Tuning {
        sinkmap::engine::Tuning {
            block_size_px: self.block_size,
            threads: self.threads,
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct Tuning {
    /// Output folder (default: the scene's output_dir).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Block edge in pixels (multiple of 16); memory grows with block² × (threads + input
    /// layers). Results do not depend on it.
    #[arg(long)]
    pub block_size: Option<usize>,
    /// Compute workers and GDAL compression threads (default: all cores); each input layer
    /// is also read on a thread of its own. Results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Map layout: cog (cloud-optimized) or tiled (no final copy: faster; overviews inside,
    /// but not in COG order).
    #[arg(long, value_enum)]
    pub layout: Option<LayoutArg>,
    /// Map compression.
    #[arg(long, value_enum)]
    pub compression: Option<CompressionArg>,
    /// Process only row band I of N (e.g. 3/8) into partial outputs, for array jobs.
    #[arg(long, value_parser = parse_tile)]
    pub tile: Option<(usize, usize)>,
    /// No progress bar and no summary on standard output.
    #[arg(long, short)]
    pub quiet: bool,
}

impl Tuning {
    pub fn options(&self) -> RunOptions {
        RunOptions {
            block_size_px: self.block_size,
            threads: self.threads,
            output_dir: self.out.clone(),
            layout: self.layout.map(layout_of),
            compression: self.compression.map(compression_of),
            progress: !self.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()),
            tile: self.tile,
        }
    }
}

/// Projection, Monte Carlo and emission balance options (override the scene's [accounting]).
#[derive(Args, Debug, Clone, Default)]
pub struct AccountingArgs {
    /// Project the sink year by year to this year and balance it against emission scenarios.
    #[arg(long)]
    pub until: Option<i32>,
    /// Monte Carlo draws (default 1000).
    #[arg(long)]
    pub draws: Option<usize>,
    /// Seed of the Monte Carlo (default 42): the same seed gives byte-identical tables.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Restoration rollout rules (TOML: [[rollout]] intervention, zone, start_year, ha_per_yr | all_eligible_by_year).
    #[arg(long)]
    pub rollout: Option<PathBuf>,
    /// Emission scenarios (default: models/emissions/xinjiang.toml).
    #[arg(long)]
    pub scenarios: Option<PathBuf>,
    /// Parameter distributions (default: models/uncertainty.toml when present).
    #[arg(long)]
    pub uncertainty: Option<PathBuf>,
    /// Compare the sink with the emissions of a region the scene is not part-for-part (e.g. a
    /// few counties against the whole of Xinjiang); refused without this flag.
    #[arg(long)]
    pub allow_subregion_balance: bool,
    /// Put map error into the Monte Carlo: a `sinkmap assess` output folder (or its
    /// assessment.json) of this scene's land cover. The error-adjusted class areas become the
    /// central estimate and their sampling distribution widens the bands (docs/science.md §6.8).
    #[arg(long, value_name = "DIR")]
    pub assessment: Option<PathBuf>,
    /// Put forest density error into the Monte Carlo: a `sinkmap calibrate --classes FOREST…`
    /// output folder (or its calibration.json); the GREG/map density ratio with its SE.
    #[arg(long, value_name = "DIR")]
    pub calibration: Option<PathBuf>,
}

impl AccountingArgs {
    /// The options, or None when neither the flags nor the scene ask for accounting.
    pub fn options(
        &self,
        scene: &Scene,
        threads: Option<usize>,
        force: bool,
    ) -> Option<sinkmap::accounting::AccountingOptions> {
        let s = scene.accounting.clone();
        if self.until.is_none()
            && s.is_none()
            && !force
            && self.assessment.is_none()
            && self.calibration.is_none()
        {
            return None;
        }
        let flags = sinkmap::config::AccountingSpec {
            until_year: self.until,
            draws: self.draws,
            seed: self.seed,
            rollout: self.rollout.clone(),
            scenarios: self.scenarios.clone(),
            uncertainty: self.uncertainty.clone(),
            region: None,
            allow_subregion_balance: self.allow_subregion_balance,
            assessment: self.assessment.clone(),
            calibration: self.calibration.clone(),
        };
        Some(s.unwrap_or_default().overridden_by(&flags).options(threads))
    }
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum LayoutArg {
    Cog,
    Tiled,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum CompressionArg {
    Zstd,
    Deflate,
    Lzw,
    None,
}

pub fn layout_of(l: LayoutArg) -> Layout {
    match l {
        LayoutArg::Cog => Layout::Cog,
        LayoutArg::Tiled => Layout::Tiled,
    }
}

pub fn compression_of(c: CompressionArg) -> Compression {
    match c {
        CompressionArg::Zstd => Compression::Zstd,
        CompressionArg::Deflate => Compression::Deflate,
        CompressionArg::Lzw => Compression::Lzw,
        CompressionArg::None => Compression::None,
    }
}

pub fn parse_tile(s: &str) -> std::result::Result<(usize, usize), String> {
    let (i, n) = s.split_once('/').ok_or("expected I/N, e.g. 2/8")?;
    let i: usize = i.trim().parse().map_err(|_| "I must be a whole number")?;
    let n: usize = n.trim().parse().map_err(|_| "N must be a whole number")?;
    if n == 0 || i == 0 || i > n {
        return Err(format!("tile {i}/{n}: expected 1 ≤ I ≤ N"));
    }
    Ok((i, n))
}

/// An upper bound of the projection's components (pools and restoration), for the memory check.
pub const MAX_COMPONENTS: usize = 16;

/// The rollout, scenario and uncertainty files an accounting reads.
pub fn accounting_inputs(
    scene: &Scene,
    o: &sinkmap::accounting::AccountingOptions,
) -> Vec<(String, PathBuf)> {
    let mut v = Vec::new();
    if let Some(p) = &o.rollout {
        v.push(("rollout".to_string(), p.clone()));
    }
    let scen = sinkmap::accounting::history::scenarios_path(scene, o);
    v.push(("scenarios".to_string(), scen));
    let unc = o
        .uncertainty
        .clone()
        .unwrap_or_else(|| scene.models_dir.join("uncertainty.toml"));
    if unc.is_file() || o.uncertainty.is_some() {
        v.push(("uncertainty".to_string(), unc));
    }
    v.extend(sinkmap::accounting::maperror::input_files(
        o.assessment.as_deref(),
        o.calibration.as_deref(),
    ));
    v
}

/// QGIS styles (.qml) beside the outputs in `dir`; the outputs are complete already, so a
/// problem is only a warning.
pub fn write_styles(dir: &std::path::Path) {
    if let Err(e) = sinkmap::styles::write_all(dir) {
        eprintln!("warning: QGIS styles not written: {e}");
    }
}

/// Publishes into `out` what `work` writes into the staging set (see
/// [`sinkmap::publish::transact`]), with the QGIS styles beside its maps.
pub fn publish_styled<T>(
    out: &std::path::Path,
    spec: sinkmap::publish::Spec,
    work: impl FnOnce(&std::path::Path) -> Result<T>,
) -> Result<T> {
    sinkmap::publish::transact(out, spec, |staging| {
        let done = work(staging)?;
        write_styles(staging);
        Ok(done)
    })
}

pub fn read_zones(scene: &Scene, src: &ZoneSource) -> Result<ZoneSet> {
    let grid = sinkmap::raster::reference_grid(&scene.landcover.path, scene.landcover.band)?;
    let zones = ZoneSet::read(src, &grid)?;
    print_warnings(&zones.warnings());
    Ok(zones)
}

/// The scene's own [zones], if it has some.
pub fn scene_zones(scene: &Scene) -> Result<Option<ZoneSet>> {
    let Some(z) = &scene.zones else {
        return Ok(None);
    };
    read_zones(
        scene,
        &ZoneSource {
            path: &z.path,
            layer: z.layer.as_deref(),
            id_field: &z.id_field,
            name_field: z.name_field.as_deref(),
            repair_invalid: z.repair_invalid,
        },
    )
    .map(Some)
}

/// Prints the warnings a library call returned (the library never prints).
pub fn print_warnings(warnings: &[sinkmap::Warning]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}
