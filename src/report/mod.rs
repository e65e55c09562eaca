//! The report: PNG maps and charts and one self-contained `report.html`, rebuilt from the
//! saved outputs of a run (`sinkmap report OUTDIR`) or written at the end of `sinkmap run`.

pub mod charts;
pub mod history;
pub mod render;

use std::path::{Path, PathBuf};

use base64::Engine;
#[cfg(feature = "gdal")]
use gdal::vector::LayerAccess;
#[cfg(feature = "gdal")]
use gdal::Metadata;
use plotters::style::RGBColor;

use crate::accounting::component::{Component, DesertPart};
use crate::accounting::rows::{read_balance, read_trajectory, TrajectoryRow};
use crate::accounting::BalanceRow;
use crate::error::{Error, Result};
use crate::io::temp::{temp_path, TempFile};
use crate::summary::Summary;
use crate::zone_table::{ZoneRow, ZoneTable};
use charts::Line;
// The maps and choropleths read rasters and zones.geojson with GDAL.
#[cfg(feature = "gdal")]
use charts::ZoneShape;
#[cfg(feature = "gdal")]
use render::{Legend, GREENS, ORANGES};

/// Side (px) of the raster read for a map: the COG overview closest above it is used.
pub const MAP_READ_SIDE: usize = 1400;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Zone polygons with `field` (divided by `per` when given: e.g. a total per hectare).
#[cfg(feature = "gdal")]
fn zone_shapes(geojson: &Path, field: &str, per: Option<&str>) -> Result<Vec<ZoneShape>> {
    let ds = gdal::Dataset::open(geojson).map_err(|e| Error::vector(geojson, e))?;
    let mut layer = ds.layer(0).map_err(|e| Error::vector(geojson, e))?;
    let mut out = Vec::new();
    for f in layer.features() {
        let name = f
            .field_index("zone_name")
            .ok()
            .and_then(|i| f.field_as_string(i).ok().flatten())
            .unwrap_or_default();
        let value = f
            .field_index(field)
            .ok()
            .and_then(|i| f.field_as_double(i).ok().flatten())
            .unwrap_or(0.0);
        let value = match per {
            Some(d) => {
                let d = f
                    .field_index(d)
                    .ok()
                    .and_then(|i| f.field_as_double(i).ok().flatten())
                    .unwrap_or(0.0);
                if d > 0.0 {
                    value / d
                } else {
                    0.0
                }
            }
            None => value,
        };
        let Some(g) = f.geometry() else { continue };
        let rings = render::polygon_rings(g);
        out.push(ZoneShape { name, rings, value });
    }
    Ok(out)
}

/// Renders into a temporary file, then renames it into `dir/name`.
fn png(dir: &Path, name: &str, draw: impl FnOnce(&Path) -> Result<()>) -> Result<PathBuf> {
    let tmp = TempFile::new(temp_path(dir, name, "png"));
    draw(&tmp.path)?;
    let fin = dir.join(name);
    tmp.commit(&fin)?;
    Ok(fin)
}

fn group_color(i: usize) -> RGBColor {
    const C: [RGBColor; 6] = [
        RGBColor(0, 109, 44),
        RGBColor(217, 95, 14),
        RGBColor(117, 112, 179),
        RGBColor(102, 166, 30),
        RGBColor(231, 41, 138),
        RGBColor(80, 80, 80),
    ];
    C[i % C.len()]
}

/// A zone-table column: (column of zones.csv, label, formatter).
type ZoneColumn = (&'static str, &'static str, fn(f64) -> String);

/// Where the report's figures come from and go to.
struct Figures<'a> {
    /// The result folder.
    out_dir: &'a Path,
    /// `out_dir/report`, where the PNG files go.
    dir: PathBuf,
    /// `zones.geojson`, when the result has zones: outlines on the maps.
    outlines: Option<&'a Path>,
    /// The caption's note on the outlines.
    #[cfg_attr(not(feature = "gdal"), allow(dead_code))]
    outline_note: &'static str,
    /// (caption, PNG file) of every figure made, in order.
    made: Vec<(String, PathBuf)>,
}

/// Builds `report/*.png` and `report.html` in `out_dir` from the outputs there.
pub fn build(out_dir: &Path) -> Result<PathBuf> {
    let summary = Summary::read(&out_dir.join("summary.json"))?;
    let dir = out_dir.join("report");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    crate::io::temp::remove_stale_temp_files(&dir);
    let zones_gj = out_dir.join("zones.geojson");
    let outlines = zones_gj.exists().then_some(zones_gj.as_path());
    let mut fig = Figures {
        out_dir,
        dir,
        outlines,
        outline_note: if outlines.is_some() {
            "; zone outlines in grey"
        } else {
            ""
        },
        made: Vec::new(),
    };
    #[cfg(feature = "gdal")]
    fig.maps()?;
    #[cfg(feature = "gdal")]
    fig.best_intervention()?;
    let zone_table = fig.zones()?;
    fig.trajectory()?;
    fig.balance()?;
    fig.history()?;

    let html = html(&summary, &fig.made, &zone_table)?;
    // The accuracy section (issue 19) goes before the sources when an assessment exists.
    let accuracy = crate::assess::report::section(out_dir)? + WITHOUT_GDAL_NOTE;
    let html = html.replacen(
        "<h2>Assumptions and sources</h2>",
        &format!("{accuracy}<h2>Assumptions and sources</h2>"),
        1,
    );
    let tmp = TempFile::new(temp_path(out_dir, "report.html", "html"));
    std::fs::write(&tmp.path, html).map_err(|e| Error::output(out_dir.join("report.html"), e))?;
    let fin = out_dir.join("report.html");
    tmp.commit(&fin)?;
    Ok(fin)
}

/// What a report built without the `gdal` feature says of the figures it leaves out.
#[cfg(not(feature = "gdal"))]
pub const WITHOUT_GDAL_NOTE: &str = "<p class=\"note\"><strong>Maps left out:</strong> this \
sinkmap was built without GDAL (the <code>gdal</code> cargo feature), so the report has no map \
images and no zone choropleths; the tables and charts above are complete.</p>\n";

/// A report built with GDAL has every figure.
#[cfg(feature = "gdal")]
pub const WITHOUT_GDAL_NOTE: &str = "";

impl Figures<'_> {
    /// Renders `report/name` and adds it with its caption.
    fn add(
        &mut self,
        caption: String,
        name: &str,
        draw: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<()> {
        let f = png(&self.dir, name, draw)?;
        self.made.push((caption, f));
        Ok(())
    }

    /// The stock, sink and potential maps that exist.
    #[cfg(feature = "gdal")]
    fn maps(&mut self) -> Result<()> {
        for (file, title, unit, ramp) in [
            (
                "stock_tc_per_ha.tif",
                "Carbon stock density",
                "t C/ha",
                GREENS,
            ),
            (
                "sink_tco2_per_ha_yr.tif",
                "Annual net CO₂ removal (positive = uptake)",
                "t CO₂/ha/yr",
                GREENS,
            ),
            (
                "potential_tco2_per_ha_yr.tif",
                "Restoration potential: best intervention, mean additional removal",
                "t CO₂/ha/yr",
                ORANGES,
            ),
        ] {
            let p = self.out_dir.join(file);
            if p.exists() {
                let name = file.replace(".tif", ".png");
                let outlines = self.outlines;
                let caption = format!("{title}, {unit}; colours span the 2nd–98th percentile, ends marked ≤ / ≥ when clipped{}", self.outline_note);
                self.add(caption, &name, |o| {
                    render::map_png(
                        &p,
                        o,
                        title,
                        Legend::Ramp { ramp, unit },
                        MAP_READ_SIDE,
                        outlines,
                    )
                })?;
            }
        }
        Ok(())
    }

    /// The best-intervention map, its legend from the raster's metadata.
    #[cfg(feature = "gdal")]
    fn best_intervention(&mut self) -> Result<()> {
        let best = self.out_dir.join("best_intervention.tif");
        if !best.exists() {
            return Ok(());
        }
        let ds = gdal::Dataset::open(&best).map_err(|e| Error::raster(&best, e))?;
        let legend = ds.metadata_item("SINKMAP_LEGEND", "").unwrap_or_default();
        let cats: Vec<(u8, String)> = legend
            .split(';')
            .filter_map(|kv| {
                kv.split_once('=')
                    .and_then(|(k, v)| Some((k.parse().ok()?, v.to_string())))
            })
            .collect();
        drop(ds);
        let title = "Best eligible restoration intervention";
        let outlines = self.outlines;
        let caption = format!(
            "{title} per pixel (legend under the map){}",
            self.outline_note
        );
        self.add(caption, "best_intervention.png", |o| {
            render::map_png(
                &best,
                o,
                title,
                Legend::Categories(&cats),
                MAP_READ_SIDE,
                outlines,
            )
        })
    }

    /// Zones: choropleths (per hectare, so zones of different size compare fairly), bars and
    /// the zone table (returned as HTML; empty without zones).
    fn zones(&mut self) -> Result<String> {
        let zones_csv = self.out_dir.join("zones.csv");
        let Some(zones_gj) = self.outlines.filter(|_| zones_csv.exists()) else {
            return Ok(String::new());
        };
        #[cfg(not(feature = "gdal"))]
        let _ = zones_gj; // the choropleths read it with OGR
        #[cfg(feature = "gdal")]
        for (field, per, title, unit, ramp, name) in [
            (
                "sink_tco2_yr",
                Some("area_ha"),
                "Annual sink per hectare by zone",
                "t CO₂/ha/yr",
                GREENS,
                "zones_sink.png",
            ),
            (
                "potential_best_tco2_yr",
                Some("area_ha"),
                "Restoration potential per hectare of zone",
                "t CO₂/ha/yr",
                ORANGES,
                "zones_potential.png",
            ),
        ] {
            let shapes = zone_shapes(zones_gj, field, per)?;
            if shapes.iter().any(|z| z.value != 0.0) || field == "sink_tco2_yr" {
                self.add(
                    format!("{title}, {unit} (zone total ÷ zone area; the totals are in the zone table)"),
                    name,
                    |o| charts::choropleth(o, title, unit, &shapes, ramp),
                )?;
            }
        }
        let table = ZoneTable::read_csv(&zones_csv)?;
        let rows: Vec<&ZoneRow> = table
            .rows
            .iter()
            .filter(|r| r.zone_id != crate::cube::OUTSIDE_ZONE)
            .collect();
        let names: Vec<String> = rows.iter().map(|r| r.zone_name.clone()).collect();
        let mut series = vec![(
            "annual sink",
            rows.iter().map(|r| r.sink_tco2_yr).collect::<Vec<f64>>(),
            RGBColor(0, 109, 44),
        )];
        let pot: Vec<f64> = rows
            .iter()
            .filter_map(|r| r.restoration.as_ref())
            .map(|r| r.potential_best_tco2_yr)
            .collect();
        if !pot.is_empty() {
            series.push((
                "restoration potential (best per pixel)",
                pot,
                RGBColor(217, 95, 14),
            ));
        }
        self.add(
            "Annual sink and restoration potential by zone, totals in t CO₂/yr".into(),
            "zones_bars.png",
            |o| {
                charts::bar_chart(
                    o,
                    "Annual sink and restoration potential by zone (totals)",
                    "t CO₂/yr",
                    &names,
                    &series,
                )
            },
        )?;
        Ok(zone_table_html(&table.columns(), &rows))
    }

    /// The region's sink by component to the horizon (`trajectory.csv`).
    fn trajectory(&mut self) -> Result<()> {
        let traj = self.out_dir.join("trajectory.csv");
        if !traj.exists() {
            return Ok(());
        }
        let rows = read_trajectory(&traj)?;
        let region: Vec<&TrajectoryRow> = rows
            .iter()
            .filter(|r| r.zone_id == crate::accounting::REGION)
            .collect();
        // The yearly sum of a group's components (the inorganic term is reported apart).
        let group = |g: &str| -> Vec<(f64, f64)> {
            let mut m: std::collections::BTreeMap<i32, f64> = Default::default();
            for r in region.iter().filter(|r| {
                r.component.group() == g && r.component != Component::Desert(DesertPart::Inorganic)
            }) {
                *m.entry(r.year).or_default() += r.net_flux_tco2_yr;
            }
            m.into_iter().map(|(y, v)| (y as f64, v)).collect()
        };
        let total: Vec<&&TrajectoryRow> = region
            .iter()
            .filter(|r| r.component == Component::Total)
            .collect();
        let lines = vec![
            Line {
                name: "net flux (median, band 5–95 %)".into(),
                points: total
                    .iter()
                    .map(|r| (r.year as f64, r.net_flux_tco2_yr_p50))
                    .collect(),
                band: Some(
                    total
                        .iter()
                        .map(|r| {
                            (
                                r.year as f64,
                                r.net_flux_tco2_yr_p05,
                                r.net_flux_tco2_yr_p95,
                            )
                        })
                        .collect(),
                ),
                color: group_color(5),
                markers: false,
            },
            Line {
                name: "forest".into(),
                points: group("forest"),
                band: None,
                color: group_color(0),
                markers: false,
            },
            Line {
                name: "desert (crust + shrub)".into(),
                points: group("desert"),
                band: None,
                color: group_color(1),
                markers: false,
            },
            Line {
                name: "restoration".into(),
                points: group("restoration"),
                band: None,
                color: group_color(2),
                markers: false,
            },
        ];
        self.add(
            "Sink trajectory by component, region (t CO₂/yr; band 5–95 %)".into(),
            "trajectory.png",
            |o| {
                charts::line_chart(
                    o,
                    "Annual sink by component to the horizon",
                    "year",
                    "t CO₂/yr",
                    &lines,
                    480,
                )
            },
        )
    }

    /// Emission scenarios and the share the sink offsets (`balance.csv`).
    fn balance(&mut self) -> Result<()> {
        let bal = self.out_dir.join("balance.csv");
        if !bal.exists() {
            return Ok(());
        }
        let rows = read_balance(&bal)?;
        let mut scen: Vec<String> = rows.iter().map(|r| r.scenario.clone()).collect();
        scen.dedup();
        // One line per scenario of the value `f` takes in each row.
        let scenario_lines = |f: &dyn Fn(&BalanceRow) -> f64| -> Vec<Line> {
            scen.iter()
                .enumerate()
                .map(|(i, sc)| Line {
                    name: sc.clone(),
                    points: rows
                        .iter()
                        .filter(|r| &r.scenario == sc)
                        .map(|r| (r.year as f64, f(r)))
                        .collect(),
                    band: None,
                    color: group_color(i),
                    markers: false,
                })
                .collect()
        };
        let lines = scenario_lines(&|r| r.emissions_mt_co2);
        self.add(
            "Emission scenarios (Mt CO₂/yr)".into(),
            "emissions.png",
            |o| charts::line_chart(o, "Emission scenarios", "year", "Mt CO₂/yr", &lines, 420),
        )?;
        let shares = scenario_lines(&|r| 100.0 * r.share_offset_p50);
        self.add(
            "Share of emissions offset by the land sink (% of emissions, median sink)".into(),
            "share_offset.png",
            |o| {
                charts::line_chart(
                    o,
                    "Share of each scenario's emissions offset by the land sink (median)",
                    "year",
                    "% of emissions",
                    &shares,
                    420,
                )
            },
        )
    }
}

/// The zone table: totals in engineering units, the exact values in data-value.
fn zone_table_html(columns: &[String], rows: &[&ZoneRow]) -> String {
    let cols: [ZoneColumn; 7] = [
        ("area_ha", "area", crate::human::hectares),
        ("stock_tc", "carbon stock", crate::human::tonnes_c),
        ("sink_tco2_yr", "annual sink", crate::human::tonnes_co2_yr),
        (
            "forest_sink_tco2_yr",
            "… forest",
            crate::human::tonnes_co2_yr,
        ),
        (
            "desert_sink_tco2_yr",
            "… desert",
            crate::human::tonnes_co2_yr,
        ),
        ("mean_sink_tco2_per_ha_yr", "sink per ha", |v| {
            crate::human::per_ha(v, "t CO₂/ha/yr")
        }),
        (
            "potential_best_tco2_yr",
            "restoration potential",
            crate::human::tonnes_co2_yr,
        ),
    ];
    let shown: Vec<&ZoneColumn> = cols
        .iter()
        .filter(|c| columns.iter().any(|x| x == c.0))
        .collect();
    let mut t = String::from("<table id=\"zones\"><tr><th>zone</th>");
    for (c, label, _) in &shown {
        t += &format!("<th title=\"{c}\">{label}</th>");
    }
    t += "</tr>\n";
    for r in rows {
        t += &format!(
            "<tr data-zone=\"{}\"><td>{}</td>",
            esc(&r.zone_id),
            esc(&r.zone_name)
        );
        for (c, _, f) in &shown {
            let v = r.value(c).unwrap_or(f64::NAN);
            t += &format!(
                "<td class=\"num\" data-col=\"{}\" data-value=\"{}\">{}</td>",
                c,
                v,
                f(v)
            );
        }
        t += "</tr>\n";
    }
    t += "</table>\n";
    t
}

/// A headline number of the summary, when it has it.
pub type HeadlineValue = fn(&Summary) -> Option<f64>;

/// The headline numbers shown, as (id, label, value in summary.json, unit).
pub const HEADLINE: [(&str, &str, HeadlineValue, &str); 7] = [
    ("h_area", "Area with data", |s| Some(s.totals.area_ha), "ha"),
    (
        "h_stock",
        "Carbon stock",
        |s| Some(s.totals.stock_tc),
        "t C",
    ),
    (
        "h_sink",
        "Annual sink",
        |s| Some(s.totals.sink_tco2_yr),
        "t CO₂/yr",
    ),
    (
        "h_forest",
        "… of which forest",
        |s| Some(s.totals.forest_sink_tco2_yr),
        "t CO₂/yr",
    ),
    (
        "h_desert",
        "… of which desert",
        |s| Some(s.totals.desert_sink_tco2_yr),
        "t CO₂/yr",
    ),
    (
        "h_inorganic",
        "Desert inorganic term (reported apart)",
        |s| Some(s.desert_components.inorganic_tco2_yr),
        "t CO₂/yr",
    ),
    (
        "h_potential",
        "Restoration potential (best per pixel)",
        |s| s.restoration.as_ref().map(|r| r.potential_best_tco2_yr),
        "t CO₂/yr",
    ),
];

/// The "Inputs and parameters" section: input files (size, SHA-256), the models folder and
/// its files, and the scene's settings as read.
fn inputs_and_parameters(s: &Summary) -> String {
    let mut h = String::from("<h2>Inputs and parameters</h2>\n<table id=\"inputs\"><tr><th>input</th><th>file</th><th>size</th><th>SHA-256</th></tr>\n");
    for f in &s.inputs {
        let size = f
            .size_bytes
            .map(|b| crate::human::engineering(b as f64, "B"))
            .unwrap_or_else(|| "—".into());
        h +=
            &format!(
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"hash\">{}</td></tr>\n",
            esc(&f.layer),
            esc(&f.path),
            size,
            esc(f.sha256.as_deref().unwrap_or("not hashed (larger than 1 GiB)"))
        );
    }
    h += &format!(
        "<tr><td>models</td><td>{}</td><td></td><td></td></tr>\n",
        esc(&s.models_dir)
    );
    for m in &s.models {
        h += &format!(
            "<tr><td>model file</td><td>{}</td><td></td><td class=\"hash\">{}</td></tr>\n",
            esc(&m.file),
            esc(&m.sha256)
        );
    }
    h += "</table>\n";
    if s.scene_settings.is_object() {
        h += "<h3>Scene settings</h3><table id=\"settings\">\n";
        let mut rows = Vec::new();
        flatten_json("", &s.scene_settings, &mut rows);
        for (k, v) in rows {
            h += &format!("<tr><td>{}</td><td>{}</td></tr>\n", esc(&k), esc(&v));
        }
        h += "</table>\n";
    }
    h
}

/// Flattens a JSON value into (dotted key, value) rows; empty values are left out.
fn flatten_json(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_json(&key, x, out);
            }
        }
        serde_json::Value::Null => {}
        serde_json::Value::Array(a) if a.is_empty() => {}
        serde_json::Value::String(x) => out.push((prefix.to_string(), x.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// The report's HTML page.
fn html(s: &Summary, figures: &[(String, PathBuf)], zone_table: &str) -> Result<String> {
    let mut h = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>sinkmap report</title>\n<style>\
         body{font-family:'Noto Sans CJK SC','Noto Sans',sans-serif;max-width:1000px;margin:2em auto;color:#222}\
         table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;vertical-align:top}\
         td.num{text-align:right;white-space:nowrap}img{max-width:100%;border:1px solid #eee}\
         figcaption{font-size:0.9em;color:#444;margin-top:0.3em}.warn{color:#a33}.hash{font-family:monospace;font-size:0.8em;word-break:break-all}\
         pre{background:#f6f6f6;padding:0.6em;white-space:pre-wrap;font-size:0.85em}\
         @page{size:A4;margin:14mm}\
         @media print{body{max-width:none;margin:0;font-size:10pt}figure{break-inside:avoid;margin:0 0 1em 0}\
         img{max-width:100%;max-height:118mm;width:auto;border:none}figure{text-align:center}figcaption{text-align:left}h2{break-after:avoid}tr{break-inside:avoid}\
         table{font-size:8.5pt}.hash{font-size:7pt}a{color:inherit;text-decoration:none}}\
         </style></head><body>\n",
    );
    h += &format!("<h1>Carbon sink — {}</h1>\n", esc(&s.scene));
    h += &format!(
        "<p>Base year {}. sinkmap {}.</p>\n",
        s.base_year,
        esc(&s.sinkmap_version)
    );
    h += &headline_html(s);
    h += &assumed_html(s);
    h += &scenarios_html(s);
    h += "<h2>Maps and charts</h2>\n";
    for (title, path) in figures {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        h += &format!(
            "<figure><img alt=\"{}\" src=\"data:image/png;base64,{}\"><figcaption>{}</figcaption></figure>\n",
            esc(title),
            base64::engine::general_purpose::STANDARD.encode(bytes),
            esc(title)
        );
    }
    if !zone_table.is_empty() {
        h += "<h2>Zones</h2>\n";
        h += zone_table;
    }
    h += &sources_html(s);
    h += &inputs_and_parameters(s);
    h += &provenance_html(s);
    h += "<script>window.addEventListener('load',function(){var im=document.images,ok=0;for(var i=0;i<im.length;i++){if(im[i].complete&&im[i].naturalWidth>0)ok++;}document.body.setAttribute('data-images-loaded',ok+'/'+im.length);});</script>\n</body></html>\n";
    Ok(h)
}

/// The headline table (with the accounting's share of emissions offset, when there is one).
fn headline_html(s: &Summary) -> String {
    let mut h = String::from("<h2>Headline</h2><p class=\"definitions\">Gross sink: carbon taken up by growth in a year; emissions from disturbance: carbon that harvest and stand-replacing disturbance remove that year; net flux: gross sink minus those emissions, equal to the year's stock change × 44/12 (stocks are taken on 1 January). The map shows the base year's gross sink.</p><table id=\"headline\">\n");
    for (id, label, value, unit) in HEADLINE {
        if let Some(v) = value(s) {
            h += &format!("<tr><td>{label}</td><td class=\"num\" id=\"{id}\" data-value=\"{v}\">{}</td></tr>\n", crate::human::engineering(v, unit));
        }
    }
    if let Some(a) = &s.accounting {
        if let Some(v) = a.share_of_reference_emissions_offset_p50 {
            h += &format!(
                "<tr><td>Share of {} emissions offset by the base-year sink (median)</td><td class=\"num\" id=\"h_share\" data-value=\"{v}\">{} %</td></tr>\n",
                a.reference_year,
                crate::human::sig_digits(v * 100.0, 3)
            );
        }
    }
    h += "</table>\n";
    h
}

/// The forest area whose type or age was assumed, when there is any.
fn assumed_html(s: &Summary) -> String {
    let assumed_type = s.totals.forest_area_assumed_type_ha;
    let assumed_age = s.totals.forest_area_assumed_age_ha;
    let mut h = String::new();
    if assumed_type > 0.0 || assumed_age > 0.0 {
        h += "<h3 class=\"warn\">Assumed, not observed</h3><ul id=\"assumptions\">\n";
        if assumed_type > 0.0 {
            h += &format!("<li class=\"warn\" id=\"h_assumed_type\" data-value=\"{assumed_type}\">{} of forest had no forest type (no forest-type layer, or nodata in it) and was given the default type of forest.toml.</li>\n", crate::human::hectares(assumed_type));
        }
        if assumed_age > 0.0 {
            h += &format!("<li class=\"warn\" id=\"h_assumed_age\" data-value=\"{assumed_age}\">{} of forest had no age and was given the fallback age of forest.toml.</li>\n", crate::human::hectares(assumed_age));
        }
        h += "</ul>\n";
    }
    h
}

/// The scenarios of the accounting, when there is one.
fn scenarios_html(s: &Summary) -> String {
    let Some(a) = &s.accounting else {
        return String::new();
    };
    let mut h = String::from("<h3>Scenarios</h3><table><tr><th>scenario</th><th>emissions at horizon (Mt CO₂)</th><th>net flux at horizon, median (Mt CO₂)</th><th>median net flux covers emissions from</th></tr>\n");
    for sc in &a.scenarios {
        h += &format!(
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>\n",
            esc(&sc.scenario),
            crate::human::sig_digits(sc.emissions_at_horizon_mt_co2, 4),
            crate::human::sig_digits(sc.net_flux_at_horizon_mt_co2_p50, 4),
            sc.covered_from_year_p50
                .map(|y| y.to_string())
                .unwrap_or_else(|| "never by the horizon".into())
        );
    }
    h += "</table>\n";
    h
}

/// The source and evidence of every model entry.
fn sources_html(s: &Summary) -> String {
    let mut h = String::from("<h2>Assumptions and sources</h2>\n<p>Evidence: verified = read in the source; recalled = not checked; derived = arithmetic from verified numbers; <span class=\"warn\">placeholder = an engineering assumption with no published value</span>.</p><table><tr><th>model</th><th>item</th><th>evidence</th><th>source</th></tr>\n");
    for m in &s.model_sources {
        let ev = evidence_name(m.evidence);
        h += &format!(
            "<tr><td>{}</td><td>{}</td><td{}>{}</td><td>{}</td></tr>\n",
            esc(&m.model),
            esc(&m.item),
            if ev == "placeholder" {
                " class=\"warn\""
            } else {
                ""
            },
            ev,
            esc(&m.source)
        );
    }
    h += "</table>\n";
    h
}

/// The name of an evidence tag as summary.json writes it.
fn evidence_name(e: crate::model::Evidence) -> &'static str {
    use crate::model::Evidence;
    match e {
        Evidence::Verified => "verified",
        Evidence::Recalled => "recalled",
        Evidence::Derived => "derived",
        Evidence::Placeholder => "placeholder",
    }
}

/// Scene, model files, pools and grid.
fn provenance_html(s: &Summary) -> String {
    let mut h = String::from("<h2>Provenance</h2><table>\n");
    h += &format!(
        "<tr><td>scene</td><td>{} (sha256 {})</td></tr>\n",
        esc(&s.scene),
        esc(&s.scene_sha256)
    );
    for m in &s.models {
        h += &format!(
            "<tr><td>{}</td><td>sha256 {}</td></tr>\n",
            esc(&m.file),
            esc(&m.sha256)
        );
    }
    h += &format!("<tr><td>pools</td><td>{}</td></tr>\n", esc(&s.pools));
    h += &format!(
        "<tr><td>grid</td><td>{} × {} px</td></tr>\n</table>\n",
        s.grid.width_px, s.grid.height_px
    );
    h
}
