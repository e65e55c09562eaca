//! Command-line arguments of `sinkmap assess`, `calibrate` and `sample` (kept here so that
//! main.rs only dispatches).

use std::path::PathBuf;

use clap::Args;

use super::io::PointSource;
use super::run::{self, AssessSpec, Design};
use crate::config::Scene;
use crate::error::Result;
use crate::manifest;
use crate::publish::{self, Spec};
use crate::zones::{ZoneSet, ZoneSource};

/// Where points come from (shared by assess and calibrate).
#[derive(Args, Debug, Clone)]
pub struct PointArgs {
    /// OGR layer name (default: the first layer).
    #[arg(long)]
    pub layer: Option<String>,
    /// CSV only: column of the x (longitude) coordinate [default: x, lon, longitude or easting].
    #[arg(long)]
    pub x_field: Option<String>,
    /// CSV only: column of the y (latitude) coordinate [default: y, lat, latitude or northing].
    #[arg(long)]
    pub y_field: Option<String>,
    /// CSV only: CRS of the coordinates (EPSG code, WKT, PROJ string).
    #[arg(long, default_value = "EPSG:4326")]
    pub crs: String,
}

impl PointArgs {
    /// The points of the file `path`, read with these options.
    fn source(&self, path: PathBuf) -> PointSource {
        PointSource {
            path,
            layer: self.layer.clone(),
            x_field: self.x_field.clone(),
            y_field: self.y_field.clone(),
            crs: self.crs.clone(),
        }
    }
}

/// Zones for per-zone results (shared).
#[derive(Args, Debug, Clone)]
pub struct ZoneArgs {
    /// Polygons for per-zone results (any OGR format) [default: the scene's `[zones]`].
    #[arg(long)]
    pub zones: Option<PathBuf>,
    /// Id field of --zones (empty: feature numbers).
    #[arg(long, default_value = "")]
    pub zone_id: String,
    /// Name field of --zones.
    #[arg(long)]
    pub zone_name: Option<String>,
    /// No per-zone results, even when the scene has zones.
    #[arg(long)]
    pub no_zones: bool,
}

impl ZoneArgs {
    /// The zones on the scene's grid: `--zones`, else the scene's `[zones]`; None with
    /// `--no-zones` or when neither names a layer.
    fn read(&self, scene: &Scene) -> Result<Option<ZoneSet>> {
        if self.no_zones {
            return Ok(None);
        }
        let grid = crate::raster::reference_grid(&scene.landcover.path, scene.landcover.band)?;
        let src = match (&self.zones, &scene.zones) {
            (Some(p), _) => ZoneSource {
                path: p,
                layer: None,
                id_field: &self.zone_id,
                name_field: self.zone_name.as_deref(),
                repair_invalid: false,
            },
            (None, Some(z)) => ZoneSource {
                path: &z.path,
                layer: z.layer.as_deref(),
                id_field: &z.id_field,
                name_field: z.name_field.as_deref(),
                repair_invalid: z.repair_invalid,
            },
            (None, None) => return Ok(None),
        };
        ZoneSet::read(&src, &grid).map(Some)
    }
}

/// (role, path) of the files an assessment command reads: the scene's (with the zones used),
/// `extra`, and the run's maps in `maps_dir` when they are there.
fn inputs(
    scene: &Scene,
    zones: Option<&ZoneSet>,
    extra: &[(&str, Option<&PathBuf>)],
    maps_dir: Option<&PathBuf>,
    maps: &[&str],
) -> Result<Vec<(String, PathBuf)>> {
    let mut v = publish::scene_inputs(scene, zones.map(|z| z.path.as_path()))?;
    for (role, p) in extra {
        if let Some(p) = p {
            v.push((role.to_string(), p.to_path_buf()));
        }
    }
    let dir = maps_dir.unwrap_or(&scene.output_dir);
    for m in maps {
        let p = dir.join(m);
        if p.is_file() {
            v.push(("map".into(), p));
        }
    }
    Ok(v)
}

/// Largest plot `calibrate --plot-area-m2` accepts (1 km²; field plots are 0.01–1 ha).
const MAX_PLOT_AREA_M2: f64 = 1e6;

/// A `--maps-dir` given explicitly must hold the maps (without it, a missing map only drops
/// the carbon part of an assessment).
fn maps_given(dir: Option<&PathBuf>, maps: &[&str]) -> Result<()> {
    let Some(d) = dir else {
        return Ok(());
    };
    for m in maps {
        if !d.join(m).is_file() {
            return Err(crate::error::Error::invalid(
                d.join(m),
                "--maps-dir names a folder without this map: give the output folder of `sinkmap run` on the scene",
            ));
        }
    }
    Ok(())
}

/// What a command publishes into its output folder.
fn spec<'a>(
    command: &'a str,
    scene: &Scene,
    inputs: Vec<(String, PathBuf)>,
    produces: &'a [&'a str],
) -> Spec<'a> {
    Spec {
        command,
        inputs,
        scene_sha256: Some(scene.sha256.clone()),
        tile: None,
        produces,
        extend: None,
    }
}

/// Arguments of `sinkmap assess`. (The command's help text is the doc comment of its
/// subcommand in the binary, which replaces this one.)
#[derive(Args, Debug)]
pub struct AssessArgs {
    /// Scene file (TOML): the land-cover map, its scheme, zones, output folder.
    pub scene: PathBuf,
    /// Reference points: any OGR vector format (GeoPackage, GeoJSON, Shapefile …) or CSV
    /// with coordinate columns (see --crs).
    #[arg(long)]
    pub reference: PathBuf,
    /// Field with the observed class of each point: a code or a label of the scheme.
    #[arg(long, default_value = "reference")]
    pub class_field: String,
    /// How the points were drawn.
    #[arg(long, value_enum, default_value = "stratified")]
    pub design: Design,
    /// Raster of strata codes when the strata were not the map's classes (stratified only).
    #[arg(long)]
    pub strata: Option<PathBuf>,
    /// Field with each point's stratum as recorded when sampling; checked against the map.
    #[arg(long)]
    pub stratum_field: Option<String>,
    /// Assess this categorical raster (e.g. a change map) instead of the scene's land cover.
    #[arg(long)]
    pub map: Option<PathBuf>,
    /// Folder with the run's stock_tc_per_ha.tif and sink_tco2_per_ha_yr.tif for the carbon
    /// consequence [default: the scene's output folder].
    #[arg(long)]
    pub maps_dir: Option<PathBuf>,
    /// Points, zones and output.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Output folder and verbosity (shared by assess, calibrate and sample).
#[derive(Args, Debug)]
pub struct OutArgs {
    /// Output folder [default: a subfolder of the scene's output folder].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print nothing on success.
    // `help = None`: the flag has never had a help line, and `--help` stays as it is.
    #[arg(long, short, help = None)]
    pub quiet: bool,
}

impl OutArgs {
    /// The scene and the output folder (`--out`, else `sub` in the scene's output folder).
    fn scene_and_out(&self, scene: &std::path::Path, sub: &str) -> Result<(Scene, PathBuf)> {
        let scene = Scene::load(scene)?;
        let out = self.out.clone().unwrap_or(scene.output_dir.join(sub));
        Ok((scene, out))
    }
}

/// Arguments shared by assess and calibrate.
#[derive(Args, Debug)]
pub struct CommonArgs {
    /// Where the points come from.
    #[command(flatten)]
    pub points: PointArgs,
    /// The zones of per-zone results.
    #[command(flatten)]
    pub zones: ZoneArgs,
    /// Output folder and verbosity.
    #[command(flatten)]
    pub output: OutArgs,
}

impl CommonArgs {
    /// The scene, its zones (per --zones / the scene's) and the output folder.
    fn open(
        &self,
        scene: &std::path::Path,
        sub: &str,
    ) -> Result<(Scene, Option<ZoneSet>, PathBuf)> {
        let (scene, out) = self.output.scene_and_out(scene, sub)?;
        let zones = self.zones.read(&scene)?;
        Ok((scene, zones, out))
    }
}

/// `sinkmap assess`: reads the scene and the points, runs the assessment into a staging set,
/// publishes it and prints the headline.
pub fn assess(a: AssessArgs) -> Result<()> {
    let (scene, zones, out) = a.common.open(&a.scene, "assessment")?;
    maps_given(
        a.maps_dir.as_ref(),
        &["stock_tc_per_ha.tif", "sink_tco2_per_ha_yr.tif"],
    )?;
    let files = inputs(
        &scene,
        zones.as_ref(),
        &[
            ("reference", Some(&a.reference)),
            ("strata", a.strata.as_ref()),
            ("assessed map", a.map.as_ref()),
        ],
        a.maps_dir.as_ref(),
        &["stock_tc_per_ha.tif", "sink_tco2_per_ha_yr.tif"],
    )?;
    let pub_spec = spec("assess", &scene, files, manifest::ASSESS_OUTPUTS);
    let r = publish::transact(&out, pub_spec, |staging| {
        let spec = AssessSpec {
            reference: a.common.points.source(a.reference.clone()),
            class_field: a.class_field.clone(),
            design: a.design,
            strata: a.strata.clone(),
            stratum_field: a.stratum_field.clone(),
            map: a.map.clone(),
            maps_dir: a.maps_dir.clone(),
            out: staging.to_path_buf(),
        };
        run::assess(&scene, &spec, zones.as_ref())
    })?;
    if !a.common.output.quiet {
        print!("{}", run::human(&r));
        println!(
            "  error matrices, accuracy.csv, adjusted_area.csv, assessment.json in {}",
            out.display()
        );
    }
    Ok(())
}

/// Sampling design of `sinkmap sample` (stratified random by map class).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SampleDesign {
    /// Stratified random with the map classes as strata.
    // `help = None`: the value has never had a help line, and `--help` stays as it is.
    #[value(help = None)]
    Stratified,
}

/// Arguments of `sinkmap sample` (its help text is the subcommand's doc comment in the
/// binary).
#[derive(Args, Debug)]
pub struct SampleArgs {
    /// Scene file (TOML): the land-cover map to sample.
    pub scene: PathBuf,
    /// Sampling design: stratified random with the map classes as strata.
    #[arg(long, value_enum, default_value = "stratified")]
    pub design: SampleDesign,
    /// Total number of points.
    #[arg(long, default_value_t = 600)]
    pub n: usize,
    /// How n is split among the classes.
    #[arg(long, value_enum, default_value = "olofsson")]
    pub allocation: super::sample::Allocation,
    /// Least number of points per class (--allocation olofsson).
    #[arg(long, default_value_t = 50)]
    pub min_per_class: usize,
    /// Random seed: the same seed and map give the same points.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output folder and verbosity.
    #[command(flatten)]
    pub output: OutArgs,
}

/// `sinkmap sample`: draws the points into a staging set (refusing to replace points that
/// were filled in), publishes them and prints the allocation.
pub fn sample(a: SampleArgs) -> Result<()> {
    let (scene, out) = a.output.scene_and_out(&a.scene, "sample")?;
    // The published points are meant to be filled in: a rerun never discards that work.
    publish::refuse_edited(&out, "the reference column filled in?")?;
    let files = inputs(&scene, None, &[], None, &[])?;
    let pub_spec = spec("sample", &scene, files, manifest::SAMPLE_OUTPUTS);
    let (rows, points) = publish::transact(&out, pub_spec, |staging| {
        let spec = super::sample::SampleSpec {
            n: a.n,
            allocation: a.allocation,
            min_per_class: a.min_per_class,
            seed: a.seed,
            out: staging.to_path_buf(),
        };
        super::sample::draw(&scene, &spec)
    })?;
    if !a.output.quiet {
        for r in &rows {
            println!(
                "  {:>4} {:<24} {:>12.1} ha  n = {}",
                r.code, r.label, r.area_ha, r.n
            );
        }
        println!(
            "{} points in {} (sample_points.gpkg, sample_points.csv, allocation.csv); fill the 'reference' column, then run sinkmap assess",
            points.len(),
            out.display()
        );
    }
    Ok(())
}

/// Arguments of `sinkmap calibrate` (its help text is the subcommand's doc comment in the
/// binary).
#[derive(Args, Debug)]
pub struct CalibrateArgs {
    /// Scene file (TOML); its stock map comes from a previous `sinkmap run`.
    pub scene: PathBuf,
    /// Field plots: any OGR vector format or CSV with coordinate columns (see --crs).
    #[arg(long)]
    pub plots: PathBuf,
    /// Field with the measured carbon density (t C/ha).
    #[arg(long)]
    pub density_field: Option<String>,
    /// Field with the measured biomass (t dry matter/ha) instead; times --carbon-fraction.
    #[arg(long)]
    pub biomass_field: Option<String>,
    /// Carbon fraction of dry biomass (IPCC 2006 default for wood: 0.47).
    #[arg(long, default_value_t = 0.47)]
    pub carbon_fraction: f64,
    /// Area of every plot (m²), e.g. 600 for a 0.06 ha plot.
    #[arg(long, allow_negative_numbers = true)]
    pub plot_area_m2: Option<f64>,
    /// Field with each plot's area (m²) instead.
    #[arg(long)]
    pub plot_area_field: Option<String>,
    /// Field with the plot's forest type (for residuals by type).
    #[arg(long)]
    pub type_field: Option<String>,
    /// How the plots were drawn.
    #[arg(long, value_enum, default_value = "simple-random")]
    pub design: super::calibrate::PlotDesign,
    /// Land-cover codes forming the population the plots sample, e.g. --classes 2 for
    /// forest only [default: every class].
    #[arg(long, value_delimiter = ',')]
    pub classes: Vec<i32>,
    /// Folder with the run's stock_tc_per_ha.tif [default: the scene's output folder].
    #[arg(long)]
    pub maps_dir: Option<PathBuf>,
    /// Points, zones and output.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `sinkmap calibrate`: checks the plot area, runs the calibration into a staging set,
/// publishes it and prints the estimates.
pub fn calibrate(a: CalibrateArgs) -> Result<()> {
    let (scene, zones, out) = a.common.open(&a.scene, "calibration")?;
    if let Some(m2) = a.plot_area_m2 {
        if !(m2.is_finite() && m2 > 0.0 && m2 <= MAX_PLOT_AREA_M2) {
            return Err(crate::error::Error::Usage(format!(
                "--plot-area-m2 {m2}: a plot's area must be above 0 and at most {MAX_PLOT_AREA_M2} m² (1 km²)"
            )));
        }
    }
    maps_given(a.maps_dir.as_ref(), &["stock_tc_per_ha.tif"])?;
    let files = inputs(
        &scene,
        zones.as_ref(),
        &[("plots", Some(&a.plots))],
        a.maps_dir.as_ref(),
        &["stock_tc_per_ha.tif"],
    )?;
    let pub_spec = spec("calibrate", &scene, files, manifest::CALIBRATE_OUTPUTS);
    let r = publish::transact(&out, pub_spec, |staging| {
        let spec = super::calibrate::CalibrateSpec {
            plots: a.common.points.source(a.plots.clone()),
            density_field: a.density_field.clone(),
            biomass_field: a.biomass_field.clone(),
            carbon_fraction: a.carbon_fraction,
            plot_area_field: a.plot_area_field.clone(),
            plot_area_m2: a.plot_area_m2,
            type_field: a.type_field.clone(),
            design: a.design,
            classes: a.classes.clone(),
            maps_dir: a.maps_dir.clone(),
            out: staging.to_path_buf(),
        };
        super::calibrate::calibrate(&scene, &spec, zones.as_ref())
    })?;
    if !a.common.output.quiet {
        print!("{}", super::calibrate::human(&r));
        println!(
            "  calibration_plots.csv, residuals.csv, calibrated_totals.csv, calibration.json in {}",
            out.display()
        );
    }
    Ok(())
}
