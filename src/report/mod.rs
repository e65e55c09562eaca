//! The report: PNG maps and charts and one self-contained `report.html`, rebuilt from the
//! saved outputs of a run (`sinkmap report OUTDIR`) or written at the end of `sinkmap run`.

pub mod charts;
pub mod render;

use std::path::{Path, PathBuf};

use base64::Engine;
use gdal::vector::LayerAccess;
use gdal::Metadata;
use plotters::style::RGBColor;

use crate::error::{Error, Result};
use crate::raster::writer::{temp_path, TempFile};
use charts::{Line, ZoneShape};
use render::{Legend, GREENS, ORANGES};

/// Side (px) of the raster read for a map: the COG overview closest above it is used.
pub const MAP_READ_SIDE: usize = 1400;

fn read_json(p: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Parse {
        path: p.to_path_buf(),
        message: e.to_string(),
    })
}

/// A CSV as (header, rows).
fn read_csv(p: &Path) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let mut r = csv::Reader::from_path(p).map_err(|e| Error::Parse {
        path: p.to_path_buf(),
        message: e.to_string(),
    })?;
    let h = r
        .headers()
        .map_err(|e| Error::Parse {
            path: p.to_path_buf(),
            message: e.to_string(),
        })?
        .iter()
        .map(String::from)
        .collect();
    let rows = r
        .records()
        .map(|x| x.map(|x| x.iter().map(String::from).collect()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Parse {
            path: p.to_path_buf(),
            message: e.to_string(),
        })?;
    Ok((h, rows))
}

fn col(h: &[String], name: &str) -> Option<usize> {
    h.iter().position(|c| c == name)
}

fn num(s: &str) -> f64 {
    s.parse().unwrap_or(f64::NAN)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Zone polygons with `field` (divided by `per` when given: e.g. a total per hectare).
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

/// Builds `report/*.png` and `report.html` in `out_dir` from the outputs there.
pub fn build(out_dir: &Path) -> Result<PathBuf> {
    let summary_path = out_dir.join("summary.json");
    let s = read_json(&summary_path)?;
    let dir = out_dir.join("report");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    crate::raster::writer::remove_stale_temp_files(&dir);
    let mut figures: Vec<(String, PathBuf)> = Vec::new();
    let zones_gj = out_dir.join("zones.geojson");
    let outlines = zones_gj.exists().then_some(zones_gj.as_path());
    let outline_note = if outlines.is_some() {
        "; zone outlines in grey"
    } else {
        ""
    };

    // Maps.
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
        let p = out_dir.join(file);
        if p.exists() {
            let name = file.replace(".tif", ".png");
            let f = png(&dir, &name, |o| {
                render::map_png(
                    &p,
                    o,
                    title,
                    Legend::Ramp { ramp, unit },
                    MAP_READ_SIDE,
                    outlines,
                )
            })?;
            figures.push((
                format!("{title}, {unit}; colours span the 2nd–98th percentile, ends marked ≤ / ≥ when clipped{outline_note}"),
                f,
            ));
        }
    }
    let best = out_dir.join("best_intervention.tif");
    if best.exists() {
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
        let f = png(&dir, "best_intervention.png", |o| {
            render::map_png(
                &best,
                o,
                title,
                Legend::Categories(&cats),
                MAP_READ_SIDE,
                outlines,
            )
        })?;
        figures.push((
            format!("{title} per pixel (legend under the map){outline_note}"),
            f,
        ));
    }

    // Zones: choropleths (per hectare, so zones of different size compare fairly) and bars.
    let zones_csv = out_dir.join("zones.csv");
    let mut zone_table = String::new();
    if zones_gj.exists() && zones_csv.exists() {
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
            let shapes = zone_shapes(&zones_gj, field, per)?;
            if shapes.iter().any(|z| z.value != 0.0) || field == "sink_tco2_yr" {
                let f = png(&dir, name, |o| {
                    charts::choropleth(o, title, unit, &shapes, ramp)
                })?;
                figures.push((
                    format!("{title}, {unit} (zone total ÷ zone area; the totals are in the zone table)"),
                    f,
                ));
            }
        }
        let (h, rows) = read_csv(&zones_csv)?;
        let rows: Vec<&Vec<String>> = rows
            .iter()
            .filter(|r| r[0] != crate::cube::OUTSIDE_ZONE)
            .collect();
        let names: Vec<String> = rows.iter().map(|r| r[1].clone()).collect();
        let get = |name: &str| -> Vec<f64> {
            col(&h, name)
                .map(|i| rows.iter().map(|r| num(&r[i])).collect())
                .unwrap_or_default()
        };
        let mut series = vec![("annual sink", get("sink_tco2_yr"), RGBColor(0, 109, 44))];
        let pot = get("potential_best_tco2_yr");
        if !pot.is_empty() {
            series.push((
                "restoration potential (best per pixel)",
                pot,
                RGBColor(217, 95, 14),
            ));
        }
        let f = png(&dir, "zones_bars.png", |o| {
            charts::bar_chart(
                o,
                "Annual sink and restoration potential by zone (totals)",
                "t CO₂/yr",
                &names,
                &series,
            )
        })?;
        figures.push((
            "Annual sink and restoration potential by zone, totals in t CO₂/yr".into(),
            f,
        ));
        // The table: totals in engineering units, the exact values in data-value.
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
        zone_table += "<table id=\"zones\"><tr><th>zone</th>";
        for (c, label, _) in cols.iter().filter(|c| col(&h, c.0).is_some()) {
            zone_table += &format!("<th title=\"{c}\">{label}</th>");
        }
        zone_table += "</tr>\n";
        for r in &rows {
            zone_table += &format!("<tr data-zone=\"{}\"><td>{}</td>", esc(&r[0]), esc(&r[1]));
            for (c, i, f) in cols
                .iter()
                .filter_map(|c| col(&h, c.0).map(|i| (c.0, i, c.2)))
            {
                let v = num(&r[i]);
                zone_table += &format!(
                    "<td class=\"num\" data-col=\"{}\" data-value=\"{}\">{}</td>",
                    c,
                    r[i],
                    f(v)
                );
            }
            zone_table += "</tr>\n";
        }
        zone_table += "</table>\n";
    }

    // Trajectory and balance.
    let traj = out_dir.join("trajectory.csv");
    if traj.exists() {
        let (h, rows) = read_csv(&traj)?;
        let (zi, yi, ci, si) = (
            col(&h, "zone_id"),
            col(&h, "year"),
            col(&h, "component"),
            col(&h, "net_flux_tco2_yr"),
        );
        let (p05, p50, p95) = (
            col(&h, "net_flux_tco2_yr_p05"),
            col(&h, "net_flux_tco2_yr_p50"),
            col(&h, "net_flux_tco2_yr_p95"),
        );
        if let (Some(zi), Some(yi), Some(ci), Some(si), Some(p05), Some(p50), Some(p95)) =
            (zi, yi, ci, si, p05, p50, p95)
        {
            let region: Vec<&Vec<String>> = rows
                .iter()
                .filter(|r| r[zi] == crate::accounting::REGION)
                .collect();
            let group = |prefix: &str| -> Vec<(f64, f64)> {
                let mut m: std::collections::BTreeMap<i64, f64> = Default::default();
                for r in region
                    .iter()
                    .filter(|r| r[ci].starts_with(prefix) && r[ci] != "desert:inorganic")
                {
                    *m.entry(num(&r[yi]) as i64).or_default() += num(&r[si]);
                }
                m.into_iter().map(|(y, v)| (y as f64, v)).collect()
            };
            let total: Vec<&&Vec<String>> = region.iter().filter(|r| r[ci] == "total").collect();
            let lines = vec![
                Line {
                    name: "net flux (median, band 5–95 %)".into(),
                    points: total.iter().map(|r| (num(&r[yi]), num(&r[p50]))).collect(),
                    band: Some(
                        total
                            .iter()
                            .map(|r| (num(&r[yi]), num(&r[p05]), num(&r[p95])))
                            .collect(),
                    ),
                    color: group_color(5),
                    markers: false,
                },
                Line {
                    name: "forest".into(),
                    points: group("forest:"),
                    band: None,
                    color: group_color(0),
                    markers: false,
                },
                Line {
                    name: "desert (crust + shrub)".into(),
                    points: group("desert:"),
                    band: None,
                    color: group_color(1),
                    markers: false,
                },
                Line {
                    name: "restoration".into(),
                    points: group("restoration:"),
                    band: None,
                    color: group_color(2),
                    markers: false,
                },
            ];
            let f = png(&dir, "trajectory.png", |o| {
                charts::line_chart(
                    o,
                    "Annual sink by component to the horizon",
                    "year",
                    "t CO₂/yr",
                    &lines,
                    480,
                )
            })?;
            figures.push((
                "Sink trajectory by component, region (t CO₂/yr; band 5–95 %)".into(),
                f,
            ));
        }
    }
    let bal = out_dir.join("balance.csv");
    if bal.exists() {
        let (h, rows) = read_csv(&bal)?;
        if let (Some(yi), Some(si), Some(ei), Some(shi)) = (
            col(&h, "year"),
            col(&h, "scenario"),
            col(&h, "emissions_mt_co2"),
            col(&h, "share_offset_p50"),
        ) {
            let mut scen: Vec<String> = rows.iter().map(|r| r[si].clone()).collect();
            scen.dedup();
            // One line per scenario of the value `f` takes in each row.
            let scenario_lines = |f: &dyn Fn(&Vec<String>) -> f64| -> Vec<Line> {
                scen.iter()
                    .enumerate()
                    .map(|(i, sc)| Line {
                        name: sc.clone(),
                        points: rows
                            .iter()
                            .filter(|r| &r[si] == sc)
                            .map(|r| (num(&r[yi]), f(r)))
                            .collect(),
                        band: None,
                        color: group_color(i),
                        markers: false,
                    })
                    .collect()
            };
            let lines = scenario_lines(&|r| num(&r[ei]));
            let f = png(&dir, "emissions.png", |o| {
                charts::line_chart(o, "Emission scenarios", "year", "Mt CO₂/yr", &lines, 420)
            })?;
            figures.push(("Emission scenarios (Mt CO₂/yr)".into(), f));
            let shares = scenario_lines(&|r| 100.0 * num(&r[shi]));
            let f = png(&dir, "share_offset.png", |o| {
                charts::line_chart(
                    o,
                    "Share of each scenario's emissions offset by the land sink (median)",
                    "year",
                    "% of emissions",
                    &shares,
                    420,
                )
            })?;
            figures.push((
                "Share of emissions offset by the land sink (% of emissions, median sink)".into(),
                f,
            ));
        }
    }

    let html = html(&s, &figures, &zone_table)?;
    // The accuracy section (issue 19) goes before the sources when an assessment exists.
    let accuracy = crate::assess::report::section(out_dir)?;
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

/// The headline numbers shown, as (id, label, JSON pointer into summary.json, unit).
pub const HEADLINE: [(&str, &str, &str, &str); 7] = [
    ("h_area", "Area with data", "/totals/area_ha", "ha"),
    ("h_stock", "Carbon stock", "/totals/stock_tc", "t C"),
    ("h_sink", "Annual sink", "/totals/sink_tco2_yr", "t CO₂/yr"),
    (
        "h_forest",
        "… of which forest",
        "/totals/forest_sink_tco2_yr",
        "t CO₂/yr",
    ),
    (
        "h_desert",
        "… of which desert",
        "/totals/desert_sink_tco2_yr",
        "t CO₂/yr",
    ),
    (
        "h_inorganic",
        "Desert inorganic term (reported apart)",
        "/desert_components/inorganic_tco2_yr",
        "t CO₂/yr",
    ),
    (
        "h_potential",
        "Restoration potential (best per pixel)",
        "/restoration/potential_best_tco2_yr",
        "t CO₂/yr",
    ),
];

/// The "Inputs and parameters" section: input files (size, SHA-256), the models folder and
/// its files, and the scene's settings as read.
fn inputs_and_parameters(s: &serde_json::Value) -> String {
    let mut h = String::from("<h2>Inputs and parameters</h2>\n<table id=\"inputs\"><tr><th>input</th><th>file</th><th>size</th><th>SHA-256</th></tr>\n");
    for f in s["inputs"].as_array().into_iter().flatten() {
        let size = f["size_bytes"]
            .as_f64()
            .map(|b| crate::human::engineering(b, "B"))
            .unwrap_or_else(|| "—".into());
        h +=
            &format!(
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"hash\">{}</td></tr>\n",
            esc(f["layer"].as_str().unwrap_or("")),
            esc(f["path"].as_str().unwrap_or("")),
            size,
            esc(f["sha256"].as_str().unwrap_or("not hashed (larger than 1 GiB)"))
        );
    }
    h += &format!(
        "<tr><td>models</td><td>{}</td><td></td><td></td></tr>\n",
        esc(s["models_dir"].as_str().unwrap_or(""))
    );
    for m in s["models"].as_array().into_iter().flatten() {
        h += &format!(
            "<tr><td>model file</td><td>{}</td><td></td><td class=\"hash\">{}</td></tr>\n",
            esc(m["file"].as_str().unwrap_or("")),
            esc(m["sha256"].as_str().unwrap_or(""))
        );
    }
    h += "</table>\n";
    if let Some(obj) = s["scene_settings"].as_object() {
        h += "<h3>Scene settings</h3><table id=\"settings\">\n";
        let mut rows = Vec::new();
        flatten_json("", &serde_json::Value::Object(obj.clone()), &mut rows);
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

fn html(s: &serde_json::Value, figures: &[(String, PathBuf)], zone_table: &str) -> Result<String> {
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
    h += &format!(
        "<h1>Carbon sink — {}</h1>\n",
        esc(s["scene"].as_str().unwrap_or(""))
    );
    h += &format!(
        "<p>Base year {}. sinkmap {}.</p>\n",
        s["base_year"],
        esc(s["sinkmap_version"].as_str().unwrap_or(""))
    );
    h += "<h2>Headline</h2><p class=\"definitions\">Gross sink: carbon taken up by growth in a year; emissions from disturbance: carbon that harvest and stand-replacing disturbance remove that year; net flux: gross sink minus those emissions, equal to the year's stock change × 44/12 (stocks are taken on 1 January). The map shows the base year's gross sink.</p><table id=\"headline\">\n";
    for (id, label, ptr, unit) in HEADLINE {
        if let Some(v) = s.pointer(ptr).and_then(|v| v.as_f64()) {
            h += &format!("<tr><td>{label}</td><td class=\"num\" id=\"{id}\" data-value=\"{v}\">{}</td></tr>\n", crate::human::engineering(v, unit));
        }
    }
    if let Some(a) = s.get("accounting") {
        if let Some(v) = a
            .pointer("/share_of_reference_emissions_offset_p50")
            .and_then(|v| v.as_f64())
        {
            h += &format!(
                "<tr><td>Share of {} emissions offset by the base-year sink (median)</td><td class=\"num\" id=\"h_share\" data-value=\"{v}\">{} %</td></tr>\n",
                a["reference_year"],
                crate::human::sig_digits(v * 100.0, 3)
            );
        }
    }
    h += "</table>\n";
    let assumed_type = s
        .pointer("/totals/forest_area_assumed_type_ha")
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0);
    let assumed_age = s
        .pointer("/totals/forest_area_assumed_age_ha")
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0);
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
    if let Some(a) = s
        .get("accounting")
        .and_then(|a| a.get("scenarios"))
        .and_then(|v| v.as_array())
    {
        h += "<h3>Scenarios</h3><table><tr><th>scenario</th><th>emissions at horizon (Mt CO₂)</th><th>net flux at horizon, median (Mt CO₂)</th><th>median net flux covers emissions from</th></tr>\n";
        for sc in a {
            h += &format!(
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>\n",
                esc(sc["scenario"].as_str().unwrap_or("")),
                crate::human::sig_digits(sc["emissions_at_horizon_mt_co2"].as_f64().unwrap_or(f64::NAN), 4),
                crate::human::sig_digits(sc["net_flux_at_horizon_mt_co2_p50"].as_f64().unwrap_or(f64::NAN), 4),
                sc["covered_from_year_p50"].as_i64().map(|y| y.to_string()).unwrap_or_else(|| "never by the horizon".into())
            );
        }
        h += "</table>\n";
    }
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
    h += "<h2>Assumptions and sources</h2>\n<p>Evidence: verified = read in the source; recalled = not checked; derived = arithmetic from verified numbers; <span class=\"warn\">placeholder = an engineering assumption with no published value</span>.</p><table><tr><th>model</th><th>item</th><th>evidence</th><th>source</th></tr>\n";
    for m in s["model_sources"].as_array().into_iter().flatten() {
        let ev = m["evidence"].as_str().unwrap_or("");
        h += &format!(
            "<tr><td>{}</td><td>{}</td><td{}>{}</td><td>{}</td></tr>\n",
            esc(m["model"].as_str().unwrap_or("")),
            esc(m["item"].as_str().unwrap_or("")),
            if ev == "placeholder" {
                " class=\"warn\""
            } else {
                ""
            },
            ev,
            esc(m["source"].as_str().unwrap_or(""))
        );
    }
    h += "</table>\n";
    h += &inputs_and_parameters(s);
    h += "<h2>Provenance</h2><table>\n";
    h += &format!(
        "<tr><td>scene</td><td>{} (sha256 {})</td></tr>\n",
        esc(s["scene"].as_str().unwrap_or("")),
        esc(s["scene_sha256"].as_str().unwrap_or(""))
    );
    for m in s["models"].as_array().into_iter().flatten() {
        h += &format!(
            "<tr><td>{}</td><td>sha256 {}</td></tr>\n",
            esc(m["file"].as_str().unwrap_or("")),
            esc(m["sha256"].as_str().unwrap_or(""))
        );
    }
    h += &format!(
        "<tr><td>pools</td><td>{}</td></tr>\n",
        esc(s["pools"].as_str().unwrap_or(""))
    );
    h += &format!(
        "<tr><td>grid</td><td>{} × {} px</td></tr>\n</table>\n",
        s["grid"]["width_px"], s["grid"]["height_px"]
    );
    h += "<script>window.addEventListener('load',function(){var im=document.images,ok=0;for(var i=0;i<im.length;i++){if(im[i].complete&&im[i].naturalWidth>0)ok++;}document.body.setAttribute('data-images-loaded',ok+'/'+im.length);});</script>\n</body></html>\n";
    Ok(h)
}
