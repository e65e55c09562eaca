//! `summary.json`: area by class, totals of stock and sink with their split, provenance.

use serde::{Deserialize, Serialize};

use crate::config::{Models, Scene};
use crate::cube::{Cube, Totals, GRID_ZONE, OUTSIDE_ZONE};
use crate::grid::{AreaModel, Grid};
use crate::model::{EcosystemClass, CO2_PER_C, TC_PER_HA_PER_GC_PER_M2};
use crate::zones::ZoneSet;

/// Area, stock and sink of one ecosystem class over the whole grid (`summary.json` `classes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassTotals {
    /// The ecosystem class.
    pub class: EcosystemClass,
    /// Area of the class (ha).
    pub area_ha: f64,
    /// Its carbon stock on 1 January of the base year (t C; docs/science.md §1).
    pub stock_tc: f64,
    /// Its gross sink in the base year (t CO₂/yr; docs/science.md §1).
    pub sink_tco2_yr: f64,
}

/// The desert's sink split into its parts over the whole grid (t CO₂/yr, base year;
/// docs/science.md §1.2): each is area × the subtype's rate (g C/m²/yr) × 0.01 × 44/12.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesertComponents {
    /// Carbon fixed by biological soil crusts (t CO₂/yr).
    pub crust_tco2_yr: f64,
    /// Carbon taken up by desert shrub growth (t CO₂/yr).
    pub shrub_tco2_yr: f64,
    /// Soil inorganic carbon: contested; counted in the total only when `inorganic_counted`
    /// is true.
    pub inorganic_tco2_yr: f64,
    /// Whether the desert model counts the inorganic term in the sink (`include_inorganic`
    /// of desert.toml).
    pub inorganic_counted: bool,
}

/// The reference grid of the run (the land-cover raster's grid).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridInfo {
    /// Width (pixels).
    pub width_px: usize,
    /// Height (pixels).
    pub height_px: usize,
    /// True for a geographic (longitude/latitude) CRS, whose pixel areas are ellipsoidal;
    /// false for a projected one.
    pub geographic: bool,
    /// Pixel width in CRS units (degrees or metres): the geotransform's second term.
    pub pixel_width: f64,
    /// Pixel height in CRS units: the geotransform's sixth term (negative for north-up grids).
    pub pixel_height: f64,
    /// Bounds `[min x, min y, max x, max y]` in CRS units.
    pub extent: [f64; 4],
    /// The CRS as WKT.
    pub crs_wkt: String,
}

/// One model file read by the run, with its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFile {
    /// File name (without its folder).
    pub file: String,
    /// SHA-256 of the file's bytes (hex).
    pub sha256: String,
}

/// Where a model value comes from and how sure it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSource {
    /// Which model: `forest`, `desert`, `other`, `restoration` or `restoration cost`.
    pub model: String,
    /// The entry: a forest type, desert subtype, class or intervention name.
    pub item: String,
    /// How sure the value is (verified, derived, recalled, placeholder; docs/science.md §3).
    pub evidence: crate::model::Evidence,
    /// The entry's source as the model file gives it.
    pub source: String,
}

fn model_sources(models: &Models) -> Vec<ModelSource> {
    let src = |model: &str, item: &str, evidence, source: &str| ModelSource {
        model: model.into(),
        item: item.into(),
        evidence,
        source: source.into(),
    };
    let mut v: Vec<ModelSource> = models
        .forest
        .types
        .iter()
        .map(|t| src("forest", &t.name, t.evidence, &t.source))
        .collect();
    v.extend(
        models
            .desert
            .subtypes
            .iter()
            .map(|t| src("desert", &t.name, t.evidence, &t.source)),
    );
    v.extend(
        models
            .other
            .classes
            .iter()
            .map(|c| src("other", c.class.name(), c.evidence, &c.source)),
    );
    if let Some(r) = &models.restoration {
        for i in &r.interventions {
            v.push(src("restoration", &i.name, i.evidence, &i.source));
            v.push(src(
                "restoration cost",
                &i.name,
                i.cost_evidence,
                "cost_yuan_per_ha",
            ));
        }
    }
    v
}

/// The totals of one zone (or of the land outside every zone, [`OUTSIDE_ZONE`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneSummary {
    /// Zone id (the zone layer's id field).
    pub zone_id: String,
    /// Zone name.
    pub zone_name: String,
    /// The zone's area, stock and sink.
    #[serde(flatten)]
    pub totals: Totals,
}

/// One restoration intervention over the whole grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterventionSummary {
    /// Name in restoration.toml.
    pub name: String,
    /// Its code in the best-intervention map.
    pub code: u8,
    /// Label for people.
    pub label: String,
    /// Mean additional removal of one eligible hectare over the period (t CO₂/ha/yr).
    pub mean_gain_tco2_per_ha_yr: f64,
    /// Area where the intervention is possible (ha).
    pub eligible_area_ha: f64,
    /// Eligible area × mean gain (t CO₂/yr; areas of different interventions overlap).
    pub potential_tco2_yr: f64,
    /// Cost of establishing one eligible hectare (yuan/ha), from restoration.toml.
    pub cost_yuan_per_ha: f64,
    /// True when that cost's evidence is `placeholder` (no published value behind it).
    pub cost_is_placeholder: bool,
}

/// The restoration potential of the grid (`summary.json` `restoration`, when the scene has a
/// restoration catalogue).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestorationSummary {
    /// First year of the period the mean gains are taken over.
    pub period_start_year: i32,
    /// Last year of that period (inclusive).
    pub period_end_year: i32,
    /// Every intervention on its own.
    pub interventions: Vec<InterventionSummary>,
    /// Area where some intervention is possible (ha).
    pub eligible_area_ha_any: f64,
    /// The potential (t CO₂/yr) with the best intervention chosen on each pixel.
    pub potential_best_tco2_yr: f64,
}

/// How the run ran: threads, block size, time and memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Compute threads.
    pub threads: usize,
    /// Edge of the processing blocks (pixels).
    pub block_size_px: usize,
    /// Wall-clock time of the run (s).
    pub seconds: f64,
    /// Grid pixels (data or not) processed per second, in millions.
    pub megapixels_per_second: f64,
    /// Peak resident memory of the process so far (Linux `VmHWM`), when known.
    pub peak_rss_mb: Option<f64>,
    /// Where the time went (filled by the pipeline; stages overlap, so they do not add up
    /// to `seconds`).
    pub stage_seconds: StageSeconds,
}

/// Busy time of each pipeline stage, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageSeconds {
    /// Reading and decoding the input windows (reader threads, summed).
    pub read: f64,
    /// Evaluating the blocks and reducing them to overview levels (summed over the compute
    /// threads; wall-clock time of each block's task, so a machine with more busy threads
    /// than cores inflates it).
    pub compute: f64,
    /// The same work counted in processor time only (the compute threads' own CPU clocks):
    /// its cost whatever else runs on the machine. Absent from older summaries (then 0).
    #[serde(default)]
    pub compute_cpu: f64,
    /// The part of `compute_cpu` spent reducing the blocks to the maps' overview levels (the
    /// rest is the models' pixel work: keys, runs, evaluations, sums). Absent from older
    /// summaries (then 0).
    #[serde(default)]
    pub overview_cpu: f64,
    /// Adding block sums to the cube, and writing the maps' blocks and overviews through
    /// GDAL, compression included (writer threads, summed).
    pub write: f64,
    /// Flushing the maps and, for COG layout, building overviews and the final copy.
    pub finish: f64,
}

/// Peak resident set size of this process in MB (Linux only).
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// `summary.json`: what a run (or a merge of tiled runs) found over the whole grid, per class
/// and per zone, with the provenance of its inputs and models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Version of sinkmap that wrote the file.
    pub sinkmap_version: String,
    /// The scene's name.
    pub scene: String,
    /// SHA-256 of the scene file (hex).
    pub scene_sha256: String,
    /// The year the stocks (1 January) and sinks refer to.
    pub base_year: i32,
    /// Where the model files were read from: a folder, or `embedded in sinkmap X.Y.Z`.
    pub models_dir: String,
    /// The model files read, with their hashes.
    pub models: Vec<ModelFile>,
    /// The carbon pools the stocks include, in words (biomass, dead matter, soil, or the
    /// InVEST pool table).
    pub pools: String,
    /// The reference grid.
    pub grid: GridInfo,
    /// Whole-grid totals (data pixels only).
    pub totals: Totals,
    /// Area of the pixels whose land cover is nodata (ha), not in the totals.
    pub nodata_area_ha: f64,
    /// The desert's sink by part.
    pub desert_components: DesertComponents,
    /// Totals per ecosystem class, every class listed (zero where absent).
    pub classes: Vec<ClassTotals>,
    /// The restoration potential (scenes with a restoration catalogue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restoration: Option<RestorationSummary>,
    /// File name of the zone layer (runs with zones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zones_file: Option<String>,
    /// Totals per zone, then the land outside every zone (runs with zones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<ZoneSummary>,
    /// How the run ran.
    pub run: RunInfo,
    /// The source and evidence of every model entry used.
    pub model_sources: Vec<ModelSource>,
    /// The input files: layer, path, size and SHA-256 (for the report's "Inputs and
    /// parameters").
    #[serde(default)]
    pub inputs: Vec<InputFile>,
    /// The scene as read (paths resolved), for the report.
    #[serde(default)]
    pub scene_settings: serde_json::Value,
    /// `I/N` when this is the partial result of row band I of N (see `sinkmap merge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tile: Option<String>,
    /// The accounting's headline, added by `sinkmap balance` (and `run`, which runs it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounting: Option<crate::accounting::Headline>,
}

impl Summary {
    /// Reads `summary.json` back (a file that is not a summary is named with the line).
    pub fn read(path: &std::path::Path) -> crate::Result<Summary> {
        crate::tables::read_json(path)
    }

    /// Writes the summary as `summary.json` text. Without the accounting's headline the
    /// fields are in declaration order; with it (`sinkmap balance` adds it to a summary read
    /// back) in alphabetical order, as the files written so far have them.
    pub fn to_json(&self) -> std::result::Result<String, serde_json::Error> {
        let text = if self.accounting.is_some() {
            serde_json::to_string_pretty(&serde_json::to_value(self)?)?
        } else {
            serde_json::to_string_pretty(self)?
        };
        Ok(text + "\n")
    }
}

/// One input file of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputFile {
    /// Which input: `landcover`, `forest_age`, `mask:NAME`, `zones`, …
    pub layer: String,
    /// The file's path as the scene resolved it.
    pub path: String,
    /// Size of the file (bytes); None when it cannot be read.
    pub size_bytes: Option<u64>,
    /// SHA-256 of the file (None above [`HASH_LIMIT_BYTES`], or when it cannot be read).
    pub sha256: Option<String>,
}

/// Inputs larger than this are listed with their size but not hashed (hashing a mosaic of
/// tens of GB would take longer than the run).
pub const HASH_LIMIT_BYTES: u64 = 1 << 30;

/// The input files of a scene, with sizes and hashes.
pub fn input_files(scene: &Scene) -> Vec<InputFile> {
    let mut v: Vec<(String, &std::path::Path)> =
        vec![("scene".into(), scene.source_path.as_path())];
    v.push(("landcover".into(), &scene.landcover.path));
    if let Some(p) = &scene.landcover.pool_table {
        v.push(("pool_table".into(), p));
    }
    if let Some(a) = &scene.forest_age {
        v.push(("forest_age".into(), &a.path));
    }
    if let Some(l) = &scene.forest_type {
        v.push(("forest_type".into(), &l.path));
    }
    if let Some(l) = &scene.desert_subtype {
        v.push(("desert_subtype".into(), &l.path));
    }
    for (name, m) in &scene.masks {
        v.push((format!("mask:{name}"), &m.path));
    }
    if let Some(z) = &scene.zones {
        v.push(("zones".into(), &z.path));
    }
    v.into_iter()
        .map(|(layer, p)| {
            let size = std::fs::metadata(p).ok().map(|m| m.len());
            let sha256 = size
                .filter(|s| *s <= HASH_LIMIT_BYTES)
                .and_then(|_| crate::io::files::sha256_file(p).ok());
            InputFile {
                layer,
                path: p.display().to_string(),
                size_bytes: size,
                sha256,
            }
        })
        .collect()
}

fn file_name(p: &std::path::Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// What a run (or a merge) knows besides the cube: nodata area and how it ran.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunFacts {
    /// Area of the pixels whose land cover is nodata (ha).
    pub nodata_area_ha: f64,
    /// Compute threads.
    pub threads: usize,
    /// Processing block edge (px).
    pub block_size_px: usize,
    /// Wall-clock time (s).
    pub seconds: f64,
}

/// The summary of a run: totals by class and zone from the cube, desert components,
/// restoration potential, provenance and run facts.
pub fn build(
    scene: &Scene,
    models: &Models,
    grid: &Grid,
    cube: &Cube,
    zones: Option<&ZoneSet>,
    facts: &RunFacts,
) -> Summary {
    Summary {
        sinkmap_version: env!("CARGO_PKG_VERSION").into(),
        scene: scene.name.clone(),
        scene_sha256: scene.sha256.clone(),
        base_year: scene.base_year,
        models_dir: crate::embedded::models_dir_label(&scene.models_dir),
        inputs: input_files(scene),
        scene_settings: scene_settings(scene),
        models: models
            .files
            .iter()
            .map(|(p, s)| ModelFile {
                file: file_name(p),
                sha256: s.clone(),
            })
            .collect(),
        pools: pools_text(scene, models),
        grid: grid_info(grid),
        totals: cube.totals(GRID_ZONE, None),
        nodata_area_ha: facts.nodata_area_ha,
        desert_components: desert_components(cube, models),
        classes: EcosystemClass::ALL
            .iter()
            .map(|c| {
                let t = cube.totals(GRID_ZONE, Some(*c));
                ClassTotals {
                    class: *c,
                    area_ha: t.area_ha,
                    stock_tc: t.stock_tc,
                    sink_tco2_yr: t.sink_tco2_yr,
                }
            })
            .collect(),
        restoration: restoration_summary(scene, models, cube),
        zones_file: zones.map(|z| file_name(&z.path)),
        zones: zone_summaries(cube, zones),
        run: run_info(grid, facts),
        model_sources: model_sources(models),
        tile: None,
        accounting: None,
    }
}

/// The scene's settings as JSON, without its output folder (the output folder is where
/// summary.json sits: `--out` may differ from the scene's).
fn scene_settings(scene: &Scene) -> serde_json::Value {
    serde_json::to_value(scene)
        .map(|mut v| {
            if let Some(o) = v.as_object_mut() {
                o.remove("output_dir");
            }
            v
        })
        .unwrap_or_default()
}

/// The pools the stock counts, in words.
fn pools_text(scene: &Scene, models: &Models) -> String {
    format!(
        "biomass (above + below ground){}{}",
        if scene.pools.dead_matter {
            " + dead matter"
        } else {
            ""
        },
        if scene.pools.soil { " + soil" } else { "" }
    ) + if models.pool_table.is_some() {
        "; stock from InVEST pool table (above + below + soil + dead)"
    } else {
        ""
    }
}

fn grid_info(grid: &Grid) -> GridInfo {
    let gt = grid.geo_transform;
    let (x0, y0, x1, y1) = grid.extent();
    GridInfo {
        width_px: grid.width,
        height_px: grid.height,
        geographic: matches!(grid.area, AreaModel::Geographic { .. }),
        pixel_width: gt[1],
        pixel_height: gt[5],
        extent: [x0, y0, x1, y1],
        crs_wkt: grid.crs_wkt.clone(),
    }
}

/// The desert's sink components over the grid: every pixel of a subtype has the same rates,
/// so area × rate is exact.
fn desert_components(cube: &Cube, models: &Models) -> DesertComponents {
    let mut crust = 0.0;
    let mut shrub = 0.0;
    let mut inorganic = 0.0;
    let k = TC_PER_HA_PER_GC_PER_M2 * CO2_PER_C;
    for (key, acc) in cube.cells.iter().filter(|(k, _)| {
        k.zone_id == GRID_ZONE && k.class == EcosystemClass::Barren && k.intervention.is_none()
    }) {
        let Some(st) = key
            .desert_subtype
            .as_ref()
            .and_then(|n| models.desert.subtypes.iter().find(|s| &s.name == n))
        else {
            continue;
        };
        let area = acc.area_ha();
        crust += area * st.crust_fixation_gc_per_m2_yr * k;
        shrub += area * st.shrub_growth_gc_per_m2_yr * k;
        inorganic += area * st.inorganic_gc_per_m2_yr * k;
    }
    DesertComponents {
        crust_tco2_yr: crust,
        shrub_tco2_yr: shrub,
        inorganic_tco2_yr: inorganic,
        inorganic_counted: models.desert.include_inorganic,
    }
}

/// Eligible area and potential of every intervention of the catalogue over the grid (none
/// without a catalogue).
fn restoration_summary(scene: &Scene, models: &Models, cube: &Cube) -> Option<RestorationSummary> {
    let cat = models.restoration.as_ref()?;
    let (a, b) = scene.restoration_period();
    let years = (b - a + 1) as u32;
    let (area_any, best) = cube.restoration(GRID_ZONE, crate::cube::BEST_INTERVENTION);
    Some(RestorationSummary {
        period_start_year: a,
        period_end_year: b,
        interventions: cat
            .interventions
            .iter()
            .map(|i| {
                let (area, pot) = cube.restoration(GRID_ZONE, &i.name);
                InterventionSummary {
                    name: i.name.clone(),
                    code: i.code,
                    label: i.label.clone(),
                    mean_gain_tco2_per_ha_yr: i.mean_gain_tco2_per_ha_yr(&models.forest, years),
                    eligible_area_ha: area,
                    potential_tco2_yr: pot,
                    cost_yuan_per_ha: i.cost_yuan_per_ha,
                    cost_is_placeholder: i.cost_evidence == crate::model::Evidence::Placeholder,
                }
            })
            .collect(),
        eligible_area_ha_any: area_any,
        potential_best_tco2_yr: best,
    })
}

/// Totals of every zone and of the land outside them (empty without zones).
fn zone_summaries(cube: &Cube, zones: Option<&ZoneSet>) -> Vec<ZoneSummary> {
    let Some(z) = zones else {
        return Vec::new();
    };
    z.zones
        .iter()
        .map(|zone| (zone.id.clone(), zone.name.clone()))
        .chain(std::iter::once((
            OUTSIDE_ZONE.to_string(),
            "outside every zone".to_string(),
        )))
        .map(|(id, name)| ZoneSummary {
            totals: cube.totals(&id, None),
            zone_id: id,
            zone_name: name,
        })
        .collect()
}

/// How the run ran: threads, block size, time, throughput and peak memory.
fn run_info(grid: &Grid, facts: &RunFacts) -> RunInfo {
    let seconds = facts.seconds;
    RunInfo {
        threads: facts.threads,
        block_size_px: facts.block_size_px,
        seconds,
        megapixels_per_second: (grid.width * grid.height) as f64 / 1e6 / seconds.max(1e-9),
        peak_rss_mb: peak_rss_mb(),
        stage_seconds: StageSeconds::default(),
    }
}

/// What the run assumed instead of reading it, in words (empty when nothing was assumed):
/// printed as warnings on the console and shown in the report.
pub fn warnings(s: &Summary) -> Vec<String> {
    let t = &s.totals;
    let mut w = Vec::new();
    if t.forest_area_assumed_type_ha > 0.0 {
        let share = if s.classes.is_empty() {
            String::new()
        } else {
            let forest: f64 = s
                .classes
                .iter()
                .filter(|c| c.class == crate::model::EcosystemClass::Forest)
                .map(|c| c.area_ha)
                .sum();
            if forest > 0.0 {
                format!(
                    " ({} % of the forest)",
                    crate::human::sig_digits(100.0 * t.forest_area_assumed_type_ha / forest, 3)
                )
            } else {
                String::new()
            }
        };
        w.push(format!(
            "{} of forest{share} had no forest type (no [forest_type] layer, or nodata in it) and was given the default type of forest.toml",
            crate::human::hectares(t.forest_area_assumed_type_ha)
        ));
    }
    w
}

/// A few lines for people: the totals of the summary, printed by `run`.
pub fn human(s: &Summary) -> String {
    use crate::human::{hectares, per_ha, tonnes_c, tonnes_co2_yr};
    let t = &s.totals;
    let mut out = format!(
        "scene '{}' (base year {}): {} × {} px, {} of data\n  stock {}  ({})\n  sink  {} = forest {} + desert {} + other {}\n  desert inorganic term {} ({})\n",
        s.scene,
        s.base_year,
        s.grid.width_px,
        s.grid.height_px,
        hectares(t.area_ha),
        tonnes_c(t.stock_tc),
        per_ha(if t.area_ha > 0.0 { t.stock_tc / t.area_ha } else { 0.0 }, "t C/ha"),
        tonnes_co2_yr(t.sink_tco2_yr),
        tonnes_co2_yr(t.forest_sink_tco2_yr),
        tonnes_co2_yr(t.desert_sink_tco2_yr),
        tonnes_co2_yr(t.other_sink_tco2_yr),
        tonnes_co2_yr(s.desert_components.inorganic_tco2_yr),
        if s.desert_components.inorganic_counted { "counted" } else { "reported only, not counted" },
    );
    if t.forest_area_assumed_age_ha > 0.0 {
        out += &format!(
            "  note: {} of forest had no age; the fallback age was used\n",
            hectares(t.forest_area_assumed_age_ha)
        );
    }
    if let Some(r) = &s.restoration {
        out += &format!(
            "  restoration potential {} on {} (best intervention per pixel, mean {}–{})\n",
            tonnes_co2_yr(r.potential_best_tco2_yr),
            hectares(r.eligible_area_ha_any),
            r.period_start_year,
            r.period_end_year
        );
    }
    if !s.zones.is_empty() {
        out += &format!("  {} zones (+ outside) in zones.csv\n", s.zones.len() - 1);
    }
    out += &format!(
        "  {:.1} s, {} Mpx/s on {} threads\n",
        s.run.seconds,
        crate::human::sig_digits(s.run.megapixels_per_second, 3),
        s.run.threads
    );
    out
}
