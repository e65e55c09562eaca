//! The `sinkmap` command line: parse, call the library, print. Nothing else.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod bench;
use sinkmap::config::{Compression, Layout, Scene};
use sinkmap::manifest;
use sinkmap::pipeline::{self, RunOptions};
use sinkmap::publish::{self, Spec};
use sinkmap::synth::{self, SynthSpec};
use sinkmap::zones::{ZoneSet, ZoneSource};
use sinkmap::{Error, Result};

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
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Report progress as JSON lines on standard error, for programs driving sinkmap (e.g.
    /// {"progress":0.42,"done":420,"total":1000,"unit":"pixels"}); other lines are messages.
    #[arg(long, global = true)]
    progress_json: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
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
    /// per zone and year. Writes series.csv, series_transitions.csv and forest_age_LAST.tif
    /// (the state to continue from). Example: sinkmap synth --out rasters/series --years
    /// 2018..2022 && sinkmap series rasters/series/scene.toml --out out/series
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
    /// Combine the partial outputs of `run --tile I/N` into the result of a single run.
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
struct TuningArgs {
    /// Processing block edge in pixels (multiple of 16, 16–4096; default: the scene's).
    /// Changes speed and memory only, never a number.
    #[arg(long)]
    block_size: Option<usize>,
    /// Compute threads (default: all cores). Changes speed only, never a number.
    #[arg(long)]
    threads: Option<usize>,
}

impl TuningArgs {
    fn tuning(self) -> sinkmap::engine::Tuning {
        sinkmap::engine::Tuning {
            block_size_px: self.block_size,
            threads: self.threads,
        }
    }
}

#[derive(Args, Debug)]
struct ChangeArgs {
    /// Scene file (TOML): models, zones, forest-type and desert-subtype layers.
    scene: PathBuf,
    /// Land cover of the first year (the reference grid).
    #[arg(long)]
    before: PathBuf,
    /// Land cover of the second year (aligned to the first).
    #[arg(long)]
    after: PathBuf,
    /// Scheme of the after raster when it differs (a name of models/schemes or a .toml file).
    #[arg(long)]
    after_scheme: Option<String>,
    /// Forest age (yr) in the first year.
    #[arg(long)]
    age_before: Option<PathBuf>,
    /// Forest age (yr) in the second year.
    #[arg(long)]
    age_after: Option<PathBuf>,
    /// The two years, e.g. --years 2000 2020.
    #[arg(long, num_args = 2, value_names = ["BEFORE", "AFTER"])]
    years: Vec<i32>,
    /// Price per t C (InVEST valuation; yuan).
    #[arg(long, default_value_t = 0.0)]
    price_per_tc: f64,
    /// Discount rate (percent per year).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    discount_rate: f64,
    /// Annual change of the price (percent per year).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    rate_change: f64,
    /// Skip the scene's [zones].
    #[arg(long)]
    no_zones: bool,
    #[arg(long, default_value = "out/change")]
    out: PathBuf,
    #[command(flatten)]
    tuning: TuningArgs,
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args, Debug)]
struct SeriesArgs {
    /// Scene file (TOML) with a [series] table.
    scene: PathBuf,
    /// First year to run (a year of the series; its events are then not applied).
    #[arg(long)]
    from: Option<i32>,
    /// Last year to run (a year of the series).
    #[arg(long)]
    to: Option<i32>,
    /// Skip the scene's [zones].
    #[arg(long)]
    no_zones: bool,
    /// Output folder.
    #[arg(long, default_value = "out/series")]
    out: PathBuf,
    #[command(flatten)]
    tuning: TuningArgs,
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args, Debug)]
struct ProjectArgs {
    /// Project file (TOML).
    project: PathBuf,
    /// Output folder.
    #[arg(long, default_value = "out/project")]
    out: PathBuf,
    #[command(flatten)]
    tuning: TuningArgs,
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args, Debug)]
struct FitArgs {
    /// Plot table (CSV with a header): one row per plot.
    plots: PathBuf,
    /// Column with the forest type.
    #[arg(long, default_value = "forest_type")]
    type_field: String,
    /// Column with the stand age (yr).
    #[arg(long, default_value = "age_yr")]
    age_field: String,
    /// Column with the density: carbon (t C/ha), or dry biomass (t/ha) with --biomass.
    #[arg(long, default_value = "density")]
    density_field: String,
    /// The density column is dry biomass: multiply by the carbon fraction.
    #[arg(long)]
    biomass: bool,
    /// Carbon fraction of dry matter (IPCC 2006 default 0.47).
    #[arg(long, default_value_t = 0.47)]
    carbon_fraction: f64,
    /// A species-specific carbon fraction, TYPE=F (repeatable), e.g. "Siberian spruce=0.4619".
    #[arg(long, value_parser = parse_type_fraction)]
    carbon_fraction_type: Vec<(String, f64)>,
    /// The densities are above ground only: expand by (1 + R) with this root:shoot ratio.
    #[arg(long)]
    root_shoot: Option<f64>,
    /// Output folder.
    #[arg(long, default_value = "out/fit")]
    out: PathBuf,
    #[arg(long, short)]
    quiet: bool,
}

fn parse_type_fraction(s: &str) -> std::result::Result<(String, f64), String> {
    let (t, f) = s.rsplit_once('=').ok_or("expected TYPE=FRACTION")?;
    let f: f64 = f
        .trim()
        .parse()
        .map_err(|_| format!("'{f}' is not a number"))?;
    if !(f > 0.0 && f <= 1.0) {
        return Err(format!("carbon fraction {f} outside (0, 1]"));
    }
    Ok((t.trim().to_string(), f))
}

#[derive(Args, Debug)]
struct MergeArgs {
    /// Scene file (TOML) the tiles were computed from.
    scene: PathBuf,
    /// Output folders of the tiles (`run --tile I/N --out DIR`), all N of them.
    #[arg(required = true)]
    parts: Vec<PathBuf>,
    /// Output folder of the merged result.
    #[arg(long)]
    out: PathBuf,
    /// Skip the scene's [zones].
    #[arg(long)]
    no_zones: bool,
    #[arg(long, value_enum)]
    layout: Option<LayoutArg>,
    #[arg(long, value_enum)]
    compression: Option<CompressionArg>,
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// Work folder (scene, outputs, bench.json).
    #[arg(long, default_value = "rasters/bench")]
    dir: PathBuf,
    /// Grid width in pixels (0.00025° each, from 80° E, 46° N).
    #[arg(long, default_value_t = 20_000)]
    width: usize,
    /// Grid height in pixels.
    #[arg(long, default_value_t = 20_000)]
    height: usize,
    /// The Xinjiang bounding box at 0.00025° instead: 91 600 × 59 600 px, 5.5 billion cells
    /// (estimated from the 400-Mpx runs: ~20 min to generate the scene on two cores, about
    /// 1 GB of maps per run).
    #[arg(long, conflicts_with_all = ["width", "height"])]
    xinjiang: bool,
    /// Threads of the runs (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Block size of the runs (default: the scene's, 512).
    #[arg(long)]
    block_size: Option<usize>,
    /// A Python venv with natcap.invest 3.20 installed (README, "Benchmark", says how): also
    /// run InVEST's carbon model (stock only, same pool table) on the scene and print how much
    /// faster the full sinkmap run is.
    #[arg(long, value_name = "VENV")]
    invest: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
struct Tuning {
    /// Output folder (default: the scene's output_dir).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Block edge in pixels (multiple of 16); memory grows with block² × (threads + input
    /// layers). Results do not depend on it.
    #[arg(long)]
    block_size: Option<usize>,
    /// Compute workers and GDAL compression threads (default: all cores); each input layer
    /// is also read on a thread of its own. Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// Map layout: cog (cloud-optimized) or tiled (no final copy: faster; overviews inside,
    /// but not in COG order).
    #[arg(long, value_enum)]
    layout: Option<LayoutArg>,
    /// Map compression.
    #[arg(long, value_enum)]
    compression: Option<CompressionArg>,
    /// Process only row band I of N (e.g. 3/8) into partial outputs, for array jobs.
    #[arg(long, value_parser = parse_tile)]
    tile: Option<(usize, usize)>,
    /// No progress bar and no summary on standard output.
    #[arg(long, short)]
    quiet: bool,
}

/// Projection, Monte Carlo and emission balance options (override the scene's [accounting]).
#[derive(Args, Debug, Clone, Default)]
struct AccountingArgs {
    /// Project the sink year by year to this year and balance it against emission scenarios.
    #[arg(long)]
    until: Option<i32>,
    /// Monte Carlo draws (default 1000).
    #[arg(long)]
    draws: Option<usize>,
    /// Seed of the Monte Carlo (default 42): the same seed gives byte-identical tables.
    #[arg(long)]
    seed: Option<u64>,
    /// Restoration rollout rules (TOML: [[rollout]] intervention, zone, start_year, ha_per_yr | all_eligible_by_year).
    #[arg(long)]
    rollout: Option<PathBuf>,
    /// Emission scenarios (default: models/emissions/xinjiang.toml).
    #[arg(long)]
    scenarios: Option<PathBuf>,
    /// Parameter distributions (default: models/uncertainty.toml when present).
    #[arg(long)]
    uncertainty: Option<PathBuf>,
    /// Compare the sink with the emissions of a region the scene is not part-for-part (e.g. a
    /// few counties against the whole of Xinjiang); refused without this flag.
    #[arg(long)]
    allow_subregion_balance: bool,
}

impl AccountingArgs {
    /// The options, or None when neither the flags nor the scene ask for accounting.
    fn options(
        &self,
        scene: &Scene,
        threads: Option<usize>,
        force: bool,
    ) -> Option<sinkmap::accounting::AccountingOptions> {
        let s = scene.accounting.clone();
        if self.until.is_none() && s.is_none() && !force {
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
        };
        Some(s.unwrap_or_default().overridden_by(&flags).options(threads))
    }
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Scene file (TOML). Default: the synthetic sample scene embedded in sinkmap (unpacked
    /// into the system's temporary folder), with outputs in out/sample under the current folder.
    scene: Option<PathBuf>,
    /// Skip the scene's [zones] even if it has one.
    #[arg(long)]
    no_zones: bool,
    /// Do not write report.html and the PNG maps and charts.
    #[arg(long)]
    no_report: bool,
    #[command(flatten)]
    tuning: Tuning,
    #[command(flatten)]
    accounting: AccountingArgs,
}

#[derive(Args, Debug)]
struct ReportArgs {
    /// Output folder of a run (summary.json, maps, tables).
    out_dir: PathBuf,
}

#[derive(Args, Debug)]
struct BalanceArgs {
    /// Scene file (TOML) whose run produced the cube.
    scene: PathBuf,
    /// The cube (default: cube.csv in the scene's output folder).
    #[arg(long)]
    cube: Option<PathBuf>,
    /// Output folder (default: the scene's output_dir).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    accounting: AccountingArgs,
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Args, Debug)]
struct ZonalArgs {
    /// Scene file (TOML).
    scene: PathBuf,
    /// Polygon layer (GeoJSON, GeoPackage, Shapefile, FlatGeobuf, … anything OGR reads).
    #[arg(long)]
    zones: PathBuf,
    /// Field holding the zone id (unique).
    #[arg(long, default_value = "id")]
    id: String,
    /// Field holding the zone name.
    #[arg(long)]
    name: Option<String>,
    /// Layer name inside the file (default: the first layer).
    #[arg(long)]
    layer: Option<String>,
    /// Repair invalid polygons with a warning instead of stopping.
    #[arg(long)]
    repair_invalid: bool,
    #[command(flatten)]
    tuning: Tuning,
}

#[derive(Args, Debug)]
struct InitArgs {
    /// Folder to create (or an empty one).
    dir: PathBuf,
    /// Land-cover scheme of your land-cover raster.
    #[arg(long, value_enum, default_value = "clcd")]
    scheme: SchemeArg,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
#[value(rename_all = "snake_case")]
enum SchemeArg {
    Clcd,
    EsaWorldcover,
    ModisIgbp,
}

#[derive(Args, Debug)]
struct SynthArgs {
    /// Folder for the scene (rasters, zones.geojson, scene.toml).
    #[arg(long, default_value = "rasters/synth")]
    out: PathBuf,
    /// Regenerate the embedded sample scene under rasters/sample and vectors/ (run from the project root).
    #[arg(long)]
    sample: bool,
    #[arg(long, default_value_t = 2000)]
    width: usize,
    #[arg(long, default_value_t = 1500)]
    height: usize,
    #[arg(long, default_value_t = 2060)]
    seed: u64,
    /// Longitude of the upper-left corner (degrees).
    #[arg(long, default_value_t = 80.0, allow_negative_numbers = true)]
    lon0: f64,
    /// Latitude of the upper-left corner (degrees).
    #[arg(long, default_value_t = 48.0, allow_negative_numbers = true)]
    lat0: f64,
    /// Pixel size in degrees (0.00025° ≈ 30 m at 44°N... in latitude; ~20 m in longitude).
    #[arg(long, default_value_t = 0.005)]
    pixel_deg: f64,
    /// Models folder as written into scene.toml (relative to the scene folder). Default: none,
    /// so the scene uses the models embedded in sinkmap and runs wherever it is moved.
    #[arg(long)]
    models_dir: Option<String>,
    /// Output folder as written into scene.toml (relative to the scene folder).
    #[arg(long, default_value = "out")]
    output_dir: String,
    /// Texture of 30-m classified imagery (ragged edges, 11 × 7 px field parcels, 2 % speckle,
    /// ages by stand) and 26 zones, as `sinkmap bench` uses, instead of the smooth sample look.
    #[arg(long)]
    field_texture: bool,
    /// Also write a SYNTHETIC annual series Y0..Y1 (land cover per year with a few per cent
    /// of pixels changing class once, fire rasters) and add a [series] table to scene.toml,
    /// for `sinkmap series`. Example: --years 2018..2022
    #[arg(long, value_parser = parse_years)]
    years: Option<(i32, i32)>,
    #[arg(long, short)]
    quiet: bool,
}

fn parse_years(s: &str) -> std::result::Result<(i32, i32), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or("expected Y0..Y1, e.g. 2018..2022")?;
    let y = |t: &str| t.trim().parse::<i32>().map_err(|e| format!("'{t}': {e}"));
    Ok((y(a)?, y(b)?))
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum LayoutArg {
    Cog,
    Tiled,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum CompressionArg {
    Zstd,
    Deflate,
    Lzw,
    None,
}

fn layout_of(l: LayoutArg) -> Layout {
    match l {
        LayoutArg::Cog => Layout::Cog,
        LayoutArg::Tiled => Layout::Tiled,
    }
}

fn compression_of(c: CompressionArg) -> Compression {
    match c {
        CompressionArg::Zstd => Compression::Zstd,
        CompressionArg::Deflate => Compression::Deflate,
        CompressionArg::Lzw => Compression::Lzw,
        CompressionArg::None => Compression::None,
    }
}

impl Tuning {
    fn options(&self) -> RunOptions {
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

fn parse_tile(s: &str) -> std::result::Result<(usize, usize), String> {
    let (i, n) = s.split_once('/').ok_or("expected I/N, e.g. 2/8")?;
    let i: usize = i.trim().parse().map_err(|_| "I must be a whole number")?;
    let n: usize = n.trim().parse().map_err(|_| "N must be a whole number")?;
    if n == 0 || i == 0 || i > n {
        return Err(format!("tile {i}/{n}: expected 1 ≤ I ≤ N"));
    }
    Ok((i, n))
}

fn run_and_report(
    scene: &Scene,
    tuning: &Tuning,
    zones: Option<&ZoneSet>,
    shown_dir: &Path,
) -> Result<pipeline::RunOutcome> {
    let outcome = pipeline::run(scene, &tuning.options(), zones)?;
    print_warnings(&outcome.warnings);
    for w in sinkmap::summary::warnings(&outcome.summary) {
        eprintln!("warning: {w}");
    }
    write_styles(&outcome.output_dir);
    if !tuning.quiet {
        print!("{}", sinkmap::summary::human(&outcome.summary));
        println!("  outputs in {}", shown_dir.display());
    }
    Ok(outcome)
}

/// QGIS styles (.qml) beside the outputs in `dir`; the outputs are complete already, so a
/// problem is only a warning.
fn write_styles(dir: &std::path::Path) {
    if let Err(e) = sinkmap::styles::write_all(dir) {
        eprintln!("warning: QGIS styles not written: {e}");
    }
}

fn read_zones(scene: &Scene, src: &ZoneSource) -> Result<ZoneSet> {
    let grid = sinkmap::raster::reference_grid(&scene.landcover.path, scene.landcover.band)?;
    let zones = ZoneSet::read(src, &grid)?;
    print_warnings(&zones.warnings());
    Ok(zones)
}

/// The scene's own [zones], if it has some.
fn scene_zones(scene: &Scene) -> Result<Option<ZoneSet>> {
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

fn main_inner(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(mut a) => {
            let path = match a.scene {
                Some(p) => p,
                None => {
                    // The embedded sample: inputs unpacked outside the current folder, outputs
                    // in out/sample under it (unless --out says otherwise).
                    a.tuning
                        .out
                        .get_or_insert_with(|| PathBuf::from("out/sample"));
                    sinkmap::embedded::sample_scene()?
                }
            };
            let scene = Scene::load(&path)?;
            let zones = if a.no_zones {
                None
            } else {
                scene_zones(&scene)?
            };
            let acc = a.accounting.options(&scene, a.tuning.threads, false);
            let zones = zones.as_ref();
            scene_run(
                "run",
                &scene,
                &a.tuning,
                zones,
                acc.as_ref(),
                |tuning, out| {
                    let outcome = run_and_report(&scene, tuning, zones, out)?;
                    if let Some(opts) = &acc {
                        let head = sinkmap::accounting::run(
                            &scene,
                            &outcome.cube,
                            &outcome.output_dir,
                            opts,
                        )?;
                        if !a.tuning.quiet {
                            print!("{}", sinkmap::accounting::human(&head));
                        }
                    }
                    if !a.no_report {
                        // The report is part of the result: without it nothing is published.
                        publish::with_neighbours(out, &outcome.output_dir, sinkmap::report::build)
                            .map_err(|e| {
                            Error::output(
                                outcome.output_dir.join("report.html"),
                                format!("report not written ({e}); nothing was published (--no-report publishes a result without it)"),
                            )
                        })?;
                        if !a.tuning.quiet {
                            println!("  report: {}", out.join("report.html").display())
                        }
                    }
                    Ok(())
                },
            )
        }
        Command::Zonal(a) => {
            let scene = Scene::load(&a.scene)?;
            let zones = read_zones(
                &scene,
                &ZoneSource {
                    path: &a.zones,
                    layer: a.layer.as_deref(),
                    id_field: &a.id,
                    name_field: a.name.as_deref(),
                    repair_invalid: a.repair_invalid,
                },
            )?;
            scene_run(
                "zonal",
                &scene,
                &a.tuning,
                Some(&zones),
                None,
                |tuning, out| run_and_report(&scene, tuning, Some(&zones), out).map(|_| ()),
            )
        }
        Command::Balance(a) => {
            let scene = Scene::load(&a.scene)?;
            let out = a.out.clone().unwrap_or_else(|| scene.output_dir.clone());
            let cube_path = a
                .cube
                .clone()
                .unwrap_or_else(|| scene.output_dir.join("cube.csv"));
            sinkmap::limits::check_threads(a.threads)?;
            let (cube_file, from_set) = verified_cube(&cube_path)?;
            let models = sinkmap::config::Models::load(&scene)?;
            let cube = sinkmap::cube::Cube::read_csv_checked(&cube_file, Some(&models)).map_err(
                |e| match (cube_file.parent(), cube_path.parent()) {
                    (Some(from), Some(to)) => publish::remap_paths(e, from, to),
                    _ => e,
                },
            )?;
            if cube.cells.is_empty() {
                return Err(Error::invalid(
                    &cube_path,
                    "a header but no rows: nothing to project (an empty or truncated cube); rerun `sinkmap run`",
                ));
            }
            let opts = a
                .accounting
                .options(&scene, a.threads, true)
                .ok_or_else(|| Error::Usage("no accounting options".into()))?;
            let mut inputs = accounting_inputs(&scene, &opts);
            inputs.extend(publish::scene_inputs(&scene, None)?);
            inputs.push(("cube".into(), cube_file.clone()));
            sinkmap::limits::check_draws(
                opts.draws,
                cube.zone_names.len() + 1,
                (opts.until - scene.base_year + 1).max(1) as usize,
                MAX_COMPONENTS,
            )?;
            // Adding to the result the cube came from keeps that result's maps and tables.
            let extends = from_set.is_some() && from_set == publish::current_set(&out);
            // summary.json is kept: the accounting adds its headline to it (a new file).
            let keep = |n: &str| {
                n == "summary.json"
                    || !manifest::ACCOUNTING_OUTPUTS.contains(&n)
                        && !manifest::REPORT_OUTPUTS.contains(&n)
            };
            let spec = Spec {
                command: "balance",
                inputs,
                scene_sha256: Some(scene.sha256.clone()),
                tile: None,
                produces: manifest::ACCOUNTING_OUTPUTS,
                extend: extends.then_some(&keep as &dyn Fn(&str) -> bool),
            };
            let head = publish::transact(&out, spec, |staging| {
                sinkmap::accounting::run(&scene, &cube, staging, &opts)
            })?;
            if !a.quiet {
                print!("{}", sinkmap::accounting::human(&head));
                println!(
                    "  trajectory.csv, sink_inputs.csv, balance.csv in {}",
                    out.display()
                );
            }
            Ok(())
        }
        Command::Change(a) => {
            let scene = Scene::load(&a.scene)?;
            let [yb, ya] = a.years[..] else {
                return Err(Error::Usage("--years BEFORE AFTER is required".into()));
            };
            let zones = if a.no_zones {
                None
            } else {
                scene_zones(&scene)?
            };
            let spec = sinkmap::change::ChangeSpec {
                before: a.before,
                after: a.after,
                after_scheme: a.after_scheme,
                age_before: a.age_before,
                age_after: a.age_after,
                year_before: yb,
                year_after: ya,
                price_per_tc: a.price_per_tc,
                discount_rate_percent: a.discount_rate,
                rate_change_percent: a.rate_change,
                tuning: a.tuning.tuning(),
            };
            for (what, v) in [
                ("--discount-rate", spec.discount_rate_percent),
                ("--rate-change", spec.rate_change_percent),
            ] {
                if !(v.is_finite() && v > -100.0) {
                    return Err(Error::Usage(format!(
                        "{what} {v} %: must be a number above −100 % (at −100 % every future value is infinite)"
                    )));
                }
            }
            if !(spec.price_per_tc.is_finite() && spec.price_per_tc >= 0.0) {
                return Err(Error::Usage(format!(
                    "--price-per-tc {}: must be a finite number ≥ 0",
                    spec.price_per_tc
                )));
            }
            let mut inputs =
                publish::scene_inputs(&scene, zones.as_ref().map(|z| z.path.as_path()))?;
            inputs.retain(|(role, _)| role != "landcover" && role != "forest_age");
            inputs.push(("before".into(), spec.before.clone()));
            inputs.push(("after".into(), spec.after.clone()));
            for p in [&spec.age_before, &spec.age_after].into_iter().flatten() {
                inputs.push(("age".into(), p.clone()));
            }
            let pub_spec = Spec {
                command: "change",
                inputs,
                scene_sha256: Some(scene.sha256.clone()),
                tile: None,
                produces: manifest::CHANGE_OUTPUTS,
                extend: None,
            };
            let s = publish::transact(&a.out, pub_spec, |staging| {
                let s = sinkmap::change::run(&scene, &spec, zones.as_ref(), staging)?;
                write_styles(staging);
                Ok(s)
            })?;
            if !a.quiet {
                print!("{}", sinkmap::change::human(&s));
                println!("  outputs in {}", a.out.display());
            }
            Ok(())
        }
        Command::Series(a) => {
            let scene = Scene::load(&a.scene)?;
            let zones = if a.no_zones {
                None
            } else {
                scene_zones(&scene)?
            };
            if let (Some(f), Some(t)) = (a.from, a.to) {
                if f > t {
                    return Err(Error::Usage(format!(
                        "--from {f} is after --to {t}: give the earlier year first"
                    )));
                }
            }
            let opts = sinkmap::series::SeriesOptions {
                from: a.from,
                to: a.to,
                tuning: a.tuning.tuning(),
            };
            // Every year's land cover and events are found and read before anything is replaced.
            let mut inputs =
                publish::scene_inputs(&scene, zones.as_ref().map(|z| z.path.as_path()))?;
            let mut age_map = String::new();
            if let Some(s) = &scene.series {
                let r = sinkmap::series::resolve(&scene, s, &opts)?;
                inputs.extend(r.landcover.iter().map(|p| ("landcover".into(), p.clone())));
                inputs.extend(
                    r.events
                        .iter()
                        .flatten()
                        .map(|p| ("events".into(), p.clone())),
                );
                inputs.push(("event_table".into(), r.event_table.clone()));
                age_map = format!("forest_age_{}.tif", r.years.last().copied().unwrap_or(0));
            }
            let mut produces = manifest::SERIES_OUTPUTS.to_vec();
            produces.push(&age_map);
            let spec = Spec {
                command: "series",
                inputs,
                scene_sha256: Some(scene.sha256.clone()),
                tile: None,
                produces: &produces,
                extend: None,
            };
            let o = publish::transact(&a.out, spec, |staging| {
                sinkmap::series::run(&scene, &opts, zones.as_ref(), staging)
            })?;
            if !a.quiet {
                print!("{}", sinkmap::series::human(&o));
                println!(
                    "  series.csv, series_transitions.csv and the age map in {}",
                    a.out.display()
                );
            }
            Ok(())
        }
        Command::Init(a) => {
            let scheme = match a.scheme {
                SchemeArg::Clcd => "clcd",
                SchemeArg::EsaWorldcover => "esa_worldcover",
                SchemeArg::ModisIgbp => "modis_igbp",
            };
            let scene = sinkmap::init::init(&a.dir, scheme)?;
            println!(
                "wrote {} and {}: edit the paths, then `sinkmap run {}`",
                scene.display(),
                a.dir.join("models").display(),
                scene.display()
            );
            Ok(())
        }
        Command::Report(a) => {
            // The folder is verified against its manifest before anything is drawn from it.
            let root = manifest::verify_result(&a.out_dir)?.0;
            if publish::current_set(&a.out_dir).as_ref() != Some(&root) {
                return Err(Error::invalid(
                    &a.out_dir,
                    "not an output folder published by sinkmap (no .sinkmap/current); rerun the command that made it",
                ));
            }
            let keep = |n: &str| !manifest::REPORT_OUTPUTS.contains(&n);
            let spec = Spec {
                command: "report",
                inputs: Vec::new(),
                scene_sha256: None,
                tile: None,
                produces: manifest::REPORT_OUTPUTS,
                extend: Some(&keep),
            };
            publish::transact(&a.out_dir, spec, |staging| {
                publish::with_neighbours(&a.out_dir, staging, sinkmap::report::build)?;
                write_styles(staging);
                Ok(())
            })?;
            println!("wrote {}", a.out_dir.join("report.html").display());
            Ok(())
        }
        Command::Project(a) => {
            let spec = sinkmap::project::ProjectSpec::load(&a.project)?;
            let mut inputs = vec![("project".to_string(), a.project.clone())];
            if let Ok(scene) = Scene::load(&spec.scene) {
                inputs.extend(publish::scene_inputs(&scene, None)?);
            }
            if let Some(p) = &spec.polygon.path {
                if p.is_file() {
                    inputs.push(("polygon".into(), p.clone()));
                }
            }
            let pub_spec = Spec {
                command: "project",
                inputs,
                scene_sha256: None,
                tile: None,
                produces: manifest::PROJECT_OUTPUTS,
                extend: None,
            };
            let (totals, _) = publish::transact(&a.out, pub_spec, |staging| {
                sinkmap::project::run(&spec, staging, &a.tuning.tuning())
            })?;
            if !a.quiet {
                print!("{}", sinkmap::project::human(&totals));
                println!("  project.csv and project.json in {}", a.out.display());
            }
            Ok(())
        }
        Command::Fit(a) => {
            if !(a.carbon_fraction > 0.0 && a.carbon_fraction <= 1.0) {
                return Err(Error::Usage(format!(
                    "--carbon-fraction {} outside (0, 1]",
                    a.carbon_fraction
                )));
            }
            if let Some(r) = a.root_shoot {
                // Root:shoot ratios of forests are 0.1–1 (IPCC 2006, vol. 4, table 4.4); 10
                // leaves room for shrubland and grassland while catching a typo.
                if !(r.is_finite() && (0.0..=MAX_ROOT_SHOOT).contains(&r)) {
                    return Err(Error::Usage(format!(
                        "--root-shoot {r}: must be a ratio from 0 to {MAX_ROOT_SHOOT} (forests: 0.1–1)"
                    )));
                }
            }
            let opts = sinkmap::fit::plots::PlotOptions {
                type_field: a.type_field,
                age_field: a.age_field,
                density_field: a.density_field,
                biomass: a.biomass,
                carbon_fraction: a.carbon_fraction,
                carbon_fraction_by_type: a.carbon_fraction_type.into_iter().collect(),
                root_shoot_ratio: a.root_shoot,
            };
            let plots = sinkmap::fit::plots::read_plots(&a.plots, &opts)?;
            let results = sinkmap::fit::plots::fit_all(&a.plots, &plots, &sinkmap::fit::Form::ALL)?;
            let spec = Spec {
                command: "fit",
                inputs: vec![("plots".into(), a.plots.clone())],
                scene_sha256: None,
                tile: None,
                produces: manifest::FIT_OUTPUTS,
                extend: None,
            };
            let written = publish::transact(&a.out, spec, |staging| {
                sinkmap::fit::plots::write_outputs(staging, &results, Some(&plots), &a.plots, &opts)
            })?;
            print_warnings(&written.warnings);
            if !a.quiet {
                for r in &results {
                    let best = r.fits.iter().find(|f| Some(f.form) == r.best);
                    match best {
                        Some(f) => println!(
                            "{}: {} (n = {}, R² = {:.3}, RMSE = {:.2} t C/ha)",
                            r.forest_type,
                            f.form.name(),
                            f.n,
                            f.r_squared,
                            f.rmse
                        ),
                        None => println!("{}: no usable fit", r.forest_type),
                    }
                }
                println!("fit table and forest.toml in {}", a.out.display());
            }
            Ok(())
        }
        Command::Merge(a) => {
            let scene = Scene::load(&a.scene)?;
            let zones = if a.no_zones {
                None
            } else {
                scene_zones(&scene)?
            };
            let (roots, mut inputs) = verified_parts(&a.parts)?;
            inputs.extend(publish::scene_inputs(
                &scene,
                zones.as_ref().map(|z| z.path.as_path()),
            )?);
            let spec = Spec {
                command: "merge",
                inputs,
                scene_sha256: Some(scene.sha256.clone()),
                tile: None,
                produces: manifest::RUN_OUTPUTS,
                extend: None,
            };
            let summary = publish::transact(&a.out, spec, |staging| {
                let summary = sinkmap::merge::merge(
                    &scene,
                    &roots,
                    staging,
                    zones.as_ref(),
                    a.layout.map(layout_of),
                    a.compression.map(compression_of),
                )?;
                write_styles(staging);
                Ok(summary)
            })?;
            if !a.quiet {
                print!("{}", sinkmap::summary::human(&summary));
                println!("  merged {} tiles into {}", a.parts.len(), a.out.display());
            }
            Ok(())
        }
        Command::Bench(a) => {
            let spec = if a.xinjiang {
                bench::BenchSpec {
                    threads: a.threads,
                    block_size_px: a.block_size,
                    invest_venv: a.invest.clone(),
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
                }
            };
            let report = bench::bench(&spec, std::io::IsTerminal::is_terminal(&std::io::stderr()))?;
            print!("{}", bench::table(&report));
            println!("written to {}", a.dir.join("bench.json").display());
            Ok(())
        }
        Command::Assess(a) => sinkmap::assess::cli::assess(a),
        Command::Sample(a) => sinkmap::assess::cli::sample(a),
        Command::Calibrate(a) => sinkmap::assess::cli::calibrate(a),
        Command::Synth(a) => {
            let spec = if a.sample {
                SynthSpec::sample(Path::new("."))
            } else {
                SynthSpec {
                    dir: a.out.clone(),
                    width: a.width,
                    height: a.height,
                    seed: a.seed,
                    lon0: a.lon0,
                    lat0: a.lat0,
                    pixel_deg: a.pixel_deg,
                    zones_path: None,
                    models_dir_in_scene: a.models_dir.clone(),
                    output_dir_in_scene: a.output_dir.clone(),
                    zones_path_in_scene: None,
                    base_year: 2020,
                    with_accounting: false,
                    field_texture: a.field_texture,
                    name: format!(
                        "synthetic {}x{} seed {} (SYNTHETIC)",
                        a.width, a.height, a.seed
                    ),
                }
            };
            // Every argument is checked before the folder is touched.
            spec.check()?;
            if let Some(m) = &a.models_dir {
                let dir = sinkmap::config::normalize(&spec.dir.join(m));
                if !dir.is_dir() {
                    return Err(Error::Usage(format!(
                        "--models-dir {m}: no such folder ({} seen from the scene folder); give a folder of models (see `sinkmap init`) or leave it out to use the embedded models",
                        dir.display()
                    )));
                }
            }
            let progress = !a.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr());
            let make = |spec: &SynthSpec| -> Result<PathBuf> {
                let scene = synth::generate(spec, progress)?;
                if let Some((y0, y1)) = a.years {
                    sinkmap::series::synth::add_years(&scene, y0, y1, spec.seed)?;
                }
                Ok(scene)
            };
            let scene = if a.sample {
                // The committed sample under rasters/ and vectors/ of the project: plain files.
                make(&spec)?
            } else {
                // Published whole into --out (a failure leaves the previous scene there).
                let out = spec.dir.clone();
                let produce = |staging: &Path| -> Result<PathBuf> {
                    let mut staged = SynthSpec {
                        dir: staging.to_path_buf(),
                        ..spec.clone()
                    };
                    // A relative models folder is relative to the final folder, not to the
                    // staging set: named absolutely while the series reads the models, then
                    // written back as given.
                    let rel = staged
                        .models_dir_in_scene
                        .clone()
                        .filter(|m| Path::new(m).is_relative());
                    if let Some(m) = &rel {
                        let abs = std::path::absolute(&out)
                            .map_err(|e| Error::io(&out, e))?
                            .join(m);
                        staged.models_dir_in_scene = Some(
                            sinkmap::config::normalize(&abs)
                                .to_string_lossy()
                                .into_owned(),
                        );
                    }
                    let scene = make(&staged)?;
                    if let (Some(m), Some(abs)) = (&rel, &staged.models_dir_in_scene) {
                        let text =
                            std::fs::read_to_string(&scene).map_err(|e| Error::io(&scene, e))?;
                        let text = text.replacen(
                            &format!("models_dir = \"{abs}\""),
                            &format!("models_dir = \"{m}\""),
                            1,
                        );
                        std::fs::write(&scene, text).map_err(|e| Error::io(&scene, e))?;
                    }
                    Ok(out.join("scene.toml"))
                };
                let pub_spec = Spec {
                    command: "synth",
                    inputs: Vec::new(),
                    scene_sha256: None,
                    tile: None,
                    produces: manifest::SYNTH_OUTPUTS,
                    extend: None,
                };
                publish::transact(&out, pub_spec, produce)?
            };
            if !a.quiet {
                println!("wrote {}", scene.display());
            }
            Ok(())
        }
    }
}

/// Largest root:shoot ratio `fit --root-shoot` accepts.
const MAX_ROOT_SHOOT: f64 = 10.0;

/// An upper bound of the projection's components (pools and restoration), for the memory check.
const MAX_COMPONENTS: usize = 16;

/// A scene run (`run`, `zonal`) checked before the first pixel and published whole: `work`
/// gets the tuning aimed at the staging folder and the final output folder (for messages).
fn scene_run<T>(
    command: &str,
    scene: &Scene,
    tuning: &Tuning,
    zones: Option<&ZoneSet>,
    acc: Option<&sinkmap::accounting::AccountingOptions>,
    work: impl FnOnce(&Tuning, &Path) -> Result<T>,
) -> Result<T> {
    let mut inputs = preflight(scene, tuning, zones, acc)?;
    inputs.extend(publish::scene_inputs(
        scene,
        zones.map(|z| z.path.as_path()),
    )?);
    let out = tuning
        .out
        .clone()
        .unwrap_or_else(|| scene.output_dir.clone());
    let spec = Spec {
        command,
        inputs,
        scene_sha256: Some(scene.sha256.clone()),
        tile: tuning.tile.map(|(i, n)| format!("{i}/{n}")),
        produces: manifest::RUN_OUTPUTS,
        extend: None,
    };
    publish::transact(&out, spec, |staging| {
        let mut staged = tuning.clone();
        staged.out = Some(staging.to_path_buf());
        work(&staged, &out)
    })
}

/// Checks of a scene run made before the first pixel is read: limits, the grid, the tiles,
/// and every accounting file (rollout, scenarios, uncertainty) against the zones. Returns the
/// accounting inputs.
fn preflight(
    scene: &Scene,
    tuning: &Tuning,
    zones: Option<&ZoneSet>,
    acc: Option<&sinkmap::accounting::AccountingOptions>,
) -> Result<Vec<(String, PathBuf)>> {
    sinkmap::limits::check_threads(tuning.threads)?;
    let grid = sinkmap::raster::reference_grid(&scene.landcover.path, scene.landcover.band)?;
    if let Some((_, n)) = tuning.tile {
        sinkmap::limits::check_tiles(n, grid.height)?;
    }
    let Some(o) = acc else {
        return Ok(Vec::new());
    };
    let ids: Vec<&str> = match zones {
        Some(z) => z.zones.iter().map(|z| z.id.as_str()).collect(),
        None => vec![sinkmap::cube::GRID_ZONE],
    };
    let exists = |z: &str| ids.contains(&z) || z == sinkmap::cube::OUTSIDE_ZONE;
    sinkmap::accounting::prepare(scene, o, &exists)?;
    sinkmap::limits::check_draws(
        o.draws,
        ids.len() + 2,
        (o.until - scene.base_year + 1).max(1) as usize,
        MAX_COMPONENTS,
    )?;
    Ok(accounting_inputs(scene, o))
}

/// The rollout, scenario and uncertainty files an accounting reads.
fn accounting_inputs(
    scene: &Scene,
    o: &sinkmap::accounting::AccountingOptions,
) -> Vec<(String, PathBuf)> {
    let mut v = Vec::new();
    if let Some(p) = &o.rollout {
        v.push(("rollout".to_string(), p.clone()));
    }
    let scen = o
        .scenarios
        .clone()
        .unwrap_or_else(|| scene.models_dir.join("emissions/xinjiang.toml"));
    v.push(("scenarios".to_string(), scen));
    let unc = o
        .uncertainty
        .clone()
        .unwrap_or_else(|| scene.models_dir.join("uncertainty.toml"));
    if unc.is_file() || o.uncertainty.is_some() {
        v.push(("uncertainty".to_string(), unc));
    }
    v
}

/// The cube to read: inside its result's set when that result has a manifest (verified, the
/// cube listed in it), else the file itself with a warning. Also returns the set folder.
fn verified_cube(cube_path: &Path) -> Result<(PathBuf, Option<PathBuf>)> {
    let dir = match cube_path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = cube_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let root = publish::result_root(&dir);
    if !root.join(manifest::FILE_NAME).is_file() {
        sinkmap::limits::check_input_path(cube_path)?;
        eprintln!(
            "warning: {}: no manifest.json beside the cube: it cannot be checked against the run that made it (only its structure is checked)",
            cube_path.display()
        );
        return Ok((cube_path.to_path_buf(), None));
    }
    let (root, m) = manifest::verify_result(&dir)?;
    if !m.outputs.iter().any(|o| o.name == name) {
        return Err(Error::invalid(
            cube_path,
            format!(
                "not listed in {}/manifest.json: it does not belong to that result",
                dir.display()
            ),
        ));
    }
    let set = publish::current_set(&dir);
    Ok((root.join(&name), set))
}

/// (role, path) of files a command reads.
type Inputs = Vec<(String, PathBuf)>;

/// The part folders of a merge, each verified against its manifest and all made from the
/// same inputs; returns their set folders and their files as inputs.
fn verified_parts(parts: &[PathBuf]) -> Result<(Vec<PathBuf>, Inputs)> {
    let mut roots = Vec::new();
    let mut inputs = Vec::new();
    let mut first: Option<(PathBuf, manifest::Manifest)> = None;
    for dir in parts {
        let (root, m) = manifest::verify_result(dir)?;
        if m.tile.is_none() {
            return Err(Error::invalid(
                dir,
                "not a tile result (its manifest has no tile): make it with `sinkmap run --tile I/N`",
            ));
        }
        if let Some((d0, m0)) = &first {
            let key = |m: &manifest::Manifest| -> Vec<(String, String, String)> {
                let mut v: Vec<_> = m
                    .inputs
                    .iter()
                    .filter(|f| f.role != "scene")
                    .map(|f| (f.role.clone(), f.path.clone(), f.sha256.clone()))
                    .collect();
                v.sort();
                v
            };
            let (k0, k) = (key(m0), key(&m));
            if m.scene_sha256 != m0.scene_sha256 || k0 != k {
                let what = k
                    .iter()
                    .find(|x| !k0.contains(x))
                    .or_else(|| k0.iter().find(|x| !k.contains(x)))
                    .map(|(role, path, _)| format!("the {role} input {path} differs"))
                    .unwrap_or_else(|| "the scene file differs".into());
                return Err(Error::invalid(
                    dir,
                    format!(
                        "this part and {} were made from different inputs ({what}); rerun the parts from the same scene and rasters",
                        d0.display()
                    ),
                ));
            }
        } else {
            first = Some((dir.clone(), m.clone()));
        }
        for o in &m.outputs {
            if !o.name.contains('/') {
                inputs.push((format!("part {}", dir.display()), root.join(&o.name)));
            }
        }
        roots.push(root);
    }
    Ok((roots, inputs))
}

/// Prints the warnings a library call returned (the library never prints).
fn print_warnings(warnings: &[sinkmap::Warning]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`sinkmap … | head`), as command-line tools do.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    sinkmap::progress::set_json(cli.progress_json);
    // GDAL prints its own warnings to stderr; keep them, but our errors carry the context.
    let result = main_inner(cli);
    sinkmap::progress::flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let fault = e.fault();
            eprintln!("error: {e}");
            eprintln!(
                "  ({} error; exit code {})",
                fault.name(),
                fault.exit_code()
            );
            ExitCode::from(fault.exit_code())
        }
    }
}
