//! Command-line arguments of `sinkmap assess`, `calibrate` and `sample` (kept here so that
//! main.rs only dispatches).

use std::path::PathBuf;

use clap::Args;

use super::io::PointSource;
use super::run::{self, AssessSpec, Design};
use crate::config::Scene;
use crate::error::Result;
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
    pub fn source(&self, path: PathBuf) -> PointSource {
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
    pub fn read(&self, scene: &Scene) -> Result<Option<ZoneSet>> {
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
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Output folder and verbosity (shared by assess, calibrate and sample).
#[derive(Args, Debug)]
pub struct OutArgs {
    /// Output folder [default: a subfolder of the scene's output folder].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, short)]
    pub quiet: bool,
}

impl OutArgs {
    /// The scene and the output folder (`--out`, else `sub` in the scene's output folder).
    pub fn scene_and_out(&self, scene: &std::path::Path, sub: &str) -> Result<(Scene, PathBuf)> {
        let scene = Scene::load(scene)?;
        let out = self.out.clone().unwrap_or(scene.output_dir.join(sub));
        Ok((scene, out))
    }
}

/// Arguments shared by assess and calibrate.
#[derive(Args, Debug)]
pub struct CommonArgs {
    #[command(flatten)]
    pub points: PointArgs,
    #[command(flatten)]
    pub zones: ZoneArgs,
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

pub fn assess(a: AssessArgs) -> Result<()> {
    let (scene, zones, out) = a.common.open(&a.scene, "assessment")?;
    let spec = AssessSpec {
        reference: a.common.points.source(a.reference.clone()),
        class_field: a.class_field.clone(),
        design: a.design,
        strata: a.strata.clone(),
        stratum_field: a.stratum_field.clone(),
        map: a.map.clone(),
        maps_dir: a.maps_dir.clone(),
        out: out.clone(),
    };
    let r = run::assess(&scene, &spec, zones.as_ref())?;
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
    Stratified,
}

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
    #[command(flatten)]
    pub output: OutArgs,
}

pub fn sample(a: SampleArgs) -> Result<()> {
    let (scene, out) = a.output.scene_and_out(&a.scene, "sample")?;
    let spec = super::sample::SampleSpec {
        n: a.n,
        allocation: a.allocation,
        min_per_class: a.min_per_class,
        seed: a.seed,
        out: out.clone(),
    };
    let (rows, points) = super::sample::draw(&scene, &spec)?;
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
    #[arg(long)]
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
    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn calibrate(a: CalibrateArgs) -> Result<()> {
    let (scene, zones, out) = a.common.open(&a.scene, "calibration")?;
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
        out: out.clone(),
    };
    let r = super::calibrate::calibrate(&scene, &spec, zones.as_ref())?;
    if !a.common.output.quiet {
        print!("{}", super::calibrate::human(&r));
        println!(
            "  calibration_plots.csv, residuals.csv, calibrated_totals.csv, calibration.json in {}",
            out.display()
        );
    }
    Ok(())
}
