//! QGIS layer styles (`.qml`) beside the outputs, so that a map opens in QGIS with the same
//! colours as the report: QGIS applies `NAME.qml` by itself when it loads `NAME.tif` or
//! `NAME.geojson`.
//!
//! - Quantity maps get a stretched ("singleband pseudocolor", interpolated) ramp whose stops
//!   are the report's ramp stops placed on the report's value range of that very map
//!   ([`render::robust_range`] of the overview the report reads), so style and PNG agree.
//! - Class maps get a paletted style with the classes, names and colours of their legend.
//! - `zones.geojson` gets a graduated choropleth of the mean sink per ha with the zone names
//!   as labels.
//!
//! Nodata stays transparent (QGIS leaves a band's declared nodata undrawn; the styles set no
//! nodata colour). The XML is written by hand from a few templates: the documents are small
//! and fixed in shape, and every attribute value goes through [`xml_escape`].

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::temp::TempFile;
use crate::raster::categories::{self, Category};
use crate::report::render::{self, Ramp, DIVERGING, GREENS, ORANGES};

/// How a quantity map is styled.
#[derive(Debug, Clone, Copy)]
pub struct MapStyle {
    /// The map file.
    pub file_name: &'static str,
    /// Layer title.
    pub title: &'static str,
    /// Unit of the values.
    pub unit: &'static str,
    /// Colour ramp.
    pub ramp: Ramp,
    /// A range symmetric around 0 (changes that may go either way).
    pub symmetric: bool,
}

/// The quantity maps sinkmap writes, with the ramps the report draws them with.
pub const MAP_STYLES: [MapStyle; 4] = [
    MapStyle {
        file_name: "stock_tc_per_ha.tif",
        title: "Carbon stock density",
        unit: "t C/ha",
        ramp: GREENS,
        symmetric: false,
    },
    MapStyle {
        file_name: "sink_tco2_per_ha_yr.tif",
        title: "Annual net CO₂ removal",
        unit: "t CO₂/ha/yr",
        ramp: GREENS,
        symmetric: false,
    },
    MapStyle {
        file_name: "potential_tco2_per_ha_yr.tif",
        title: "Restoration potential",
        unit: "t CO₂/ha/yr",
        ramp: ORANGES,
        symmetric: false,
    },
    MapStyle {
        file_name: "stock_change_tc_per_ha.tif",
        title: "Carbon stock change",
        unit: "t C/ha",
        ramp: DIVERGING,
        symmetric: true,
    },
];

/// The per-year maps of `sinkmap series` (`PREFIX_YEAR.tif`, `file_name` holding the
/// prefix): the stock with the run's stock ramp, the net flux (either sign) with the
/// change ramp, the stand age with the greens.
pub const SERIES_MAP_STYLES: [MapStyle; 3] = [
    MapStyle {
        file_name: "stock_tc_per_ha",
        title: "Carbon stock density",
        unit: "t C/ha",
        ramp: GREENS,
        symmetric: false,
    },
    MapStyle {
        file_name: "net_flux_tco2_per_ha",
        title: "Net CO₂ flux into the land (positive = uptake)",
        unit: "t CO₂/ha",
        ramp: DIVERGING,
        symmetric: true,
    },
    MapStyle {
        file_name: "forest_age",
        title: "Forest stand age",
        unit: "yr",
        ramp: GREENS,
        symmetric: false,
    },
];

/// The style of a series map file (`PREFIX_YEAR.tif`), if it is one.
pub fn series_style(file_name: &str) -> Option<&'static MapStyle> {
    let stem = file_name.strip_suffix(".tif")?;
    let (prefix, year) = stem.rsplit_once('_')?;
    let is_year = year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit());
    SERIES_MAP_STYLES
        .iter()
        .find(|m| is_year && m.file_name == prefix)
}

/// The class maps sinkmap writes (legend in their `SINKMAP_LEGEND` metadata).
pub const CLASS_MAPS: [&str; 1] = ["best_intervention.tif"];

/// Title of the class map's layer.
pub const CLASS_MAP_TITLE: &str = "Best eligible restoration intervention";

/// The zone layer and the field its choropleth shows.
pub const ZONES_TITLE: &str = "Mean annual sink by zone";
/// The zone layer file.
pub const ZONES_FILE: &str = "zones.geojson";
/// The field the choropleth shows.
pub const ZONES_FIELD: &str = "mean_sink_tco2_per_ha_yr";
/// Its unit.
pub const ZONES_UNIT: &str = "t CO₂/ha/yr";
/// The field that labels the zones.
pub const ZONES_LABEL_FIELD: &str = "zone_name";
/// Classes of the zone choropleth.
pub const ZONES_CLASSES: usize = 5;

/// Escapes text for an XML attribute value.
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// A number as QGIS writes it: shortest form that reads back to the same f64.
fn num(v: f64) -> String {
    format!("{v}")
}

/// The stops of a stretched ramp on `[lo, hi]`: (value, colour) for each of the ramp's stops.
pub fn ramp_items(ramp: Ramp, lo: f64, hi: f64) -> Vec<(f64, [u8; 3])> {
    ramp.0
        .iter()
        .map(|(t, c)| (lo + t * (hi - lo), *c))
        .collect()
}

/// The value range of a map's colour scale: the report's rule ([`render::robust_range`]) on
/// the same reduced read the report draws from; made symmetric around 0 when asked.
pub fn map_range(path: &Path, symmetric: bool) -> Result<(f64, f64)> {
    let s = render::read_small(path, crate::report::MAP_READ_SIDE)?;
    let (lo, hi) = render::robust_range(&s.values, s.nodata);
    Ok(if symmetric {
        let m = lo.abs().max(hi.abs()).max(f64::MIN_POSITIVE);
        (-m, m)
    } else {
        (lo, hi)
    })
}

/// The comment naming a style's layer (`<!-- title (unit) -->`; the QGIS plugin names the
/// layer after it).
fn title_comment(title: &str) -> String {
    format!("  <!-- {} -->\n", xml_escape(title).replace("--", "- -"))
}

const HEADER: &str = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n<qgis version=\"3.22.0\" styleCategories=\"Symbology|Labeling\">\n";

const MIN_MAX_ORIGIN: &str = "      <minMaxOrigin>\n        <limits>None</limits>\n        <extent>WholeRaster</extent>\n        <statAccuracy>Estimated</statAccuracy>\n        <cumulativeCutLower>0.02</cumulativeCutLower>\n        <cumulativeCutUpper>0.98</cumulativeCutUpper>\n        <stdDevFactor>2</stdDevFactor>\n      </minMaxOrigin>\n";

/// A stretched (interpolated pseudocolour) style of band 1 with the given stops; the unit is
/// in the legend after each value. (`title` names the style in a comment: a style cannot
/// rename the layer; the QGIS plugin names the layers `title (unit)`.)
pub fn ramp_qml(title: &str, unit: &str, items: &[(f64, [u8; 3])]) -> String {
    let (lo, hi) = (
        items.first().map(|i| i.0).unwrap_or(0.0),
        items.last().map(|i| i.0).unwrap_or(1.0),
    );
    let mut x = String::from(HEADER);
    x += &title_comment(&format!("{title} ({unit})"));
    x += "  <pipe>\n";
    x += &format!(
        "    <rasterrenderer type=\"singlebandpseudocolor\" band=\"1\" opacity=\"1\" alphaBand=\"-1\" nodataColor=\"\" classificationMin=\"{}\" classificationMax=\"{}\">\n",
        num(lo),
        num(hi)
    );
    x += "      <rasterTransparency/>\n";
    x += MIN_MAX_ORIGIN;
    x += "      <rastershader>\n";
    x += &format!(
        "        <colorrampshader colorRampType=\"INTERPOLATED\" classificationMode=\"1\" clip=\"0\" labelPrecision=\"3\" minimumValue=\"{}\" maximumValue=\"{}\">\n",
        num(lo),
        num(hi)
    );
    for (v, c) in items {
        x += &format!(
            "          <item value=\"{}\" color=\"{}\" alpha=\"255\" label=\"{}\"/>\n",
            num(*v),
            categories::hex(*c),
            xml_escape(&format!("{} {unit}", render::fmt_num(*v)))
        );
    }
    x += &format!(
        "          <rampLegendSettings prefix=\"\" suffix=\"{}\" minimumLabel=\"\" maximumLabel=\"\" direction=\"0\" useContinuousLegend=\"1\" orientation=\"2\"/>\n",
        xml_escape(&format!(" {unit}"))
    );
    x += "        </colorrampshader>\n      </rastershader>\n    </rasterrenderer>\n";
    x += "    <brightnesscontrast brightness=\"0\" contrast=\"0\" gamma=\"1\"/>\n";
    x += "  </pipe>\n  <blendMode>0</blendMode>\n</qgis>\n";
    x
}

/// A paletted (unique values) style of band 1: one entry per category, labelled by name.
pub fn paletted_qml(title: &str, cats: &[Category]) -> String {
    let mut x = String::from(HEADER);
    x += &title_comment(title);
    x += "  <pipe>\n";
    x += "    <rasterrenderer type=\"paletted\" band=\"1\" opacity=\"1\" alphaBand=\"-1\" nodataColor=\"\">\n";
    x += "      <rasterTransparency/>\n";
    x += MIN_MAX_ORIGIN;
    x += "      <colorPalette>\n";
    for c in cats {
        x += &format!(
            "        <paletteEntry value=\"{}\" color=\"{}\" alpha=\"255\" label=\"{}\"/>\n",
            c.code,
            categories::hex(c.rgb),
            xml_escape(&c.name)
        );
    }
    x += "      </colorPalette>\n    </rasterrenderer>\n";
    x += "    <brightnesscontrast brightness=\"0\" contrast=\"0\" gamma=\"1\"/>\n";
    x += "  </pipe>\n  <blendMode>0</blendMode>\n</qgis>\n";
    x
}

/// One class of a choropleth: `[lower, upper]` and its colour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZoneClass {
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
    /// Colour.
    pub rgb: [u8; 3],
}

/// `n` equal-interval classes over the range the report's choropleths use (from
/// min(lowest value, 0) to the highest value), each coloured with the ramp at its middle.
pub fn zone_classes(values: &[f64], ramp: Ramp, n: usize) -> Vec<ZoneClass> {
    let n = n.max(1);
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |a, &v| {
            (a.0.min(v), a.1.max(v))
        });
    let lo = if lo.is_finite() { lo.min(0.0) } else { 0.0 };
    let hi = if hi.is_finite() && hi > lo {
        hi
    } else {
        lo + 1.0
    };
    let step = (hi - lo) / n as f64;
    (0..n)
        .map(|k| ZoneClass {
            lower: lo + step * k as f64,
            upper: if k + 1 == n {
                hi
            } else {
                lo + step * (k + 1) as f64
            },
            rgb: ramp.at((k as f64 + 0.5) / n as f64),
        })
        .collect()
}

/// A simple fill symbol; its properties both as an option map and as the `prop` entries
/// QGIS 3.22 reads.
fn fill_symbol(name: &str, rgb: [u8; 3]) -> String {
    format!(
        "      <symbol name=\"{name}\" type=\"fill\" alpha=\"1\" clip_to_extent=\"1\" force_rhr=\"0\">\n        <layer class=\"SimpleFill\" enabled=\"1\" locked=\"0\" pass=\"0\">\n          <Option type=\"Map\">\n            <Option name=\"color\" type=\"QString\" value=\"{},{},{},255\"/>\n            <Option name=\"outline_color\" type=\"QString\" value=\"60,60,60,255\"/>\n            <Option name=\"outline_style\" type=\"QString\" value=\"solid\"/>\n            <Option name=\"outline_width\" type=\"QString\" value=\"0.26\"/>\n            <Option name=\"outline_width_unit\" type=\"QString\" value=\"MM\"/>\n            <Option name=\"style\" type=\"QString\" value=\"solid\"/>\n          </Option>\n          <prop k=\"color\" v=\"{},{},{},255\"/>\n          <prop k=\"outline_color\" v=\"60,60,60,255\"/>\n          <prop k=\"outline_style\" v=\"solid\"/>\n          <prop k=\"outline_width\" v=\"0.26\"/>\n          <prop k=\"outline_width_unit\" v=\"MM\"/>\n          <prop k=\"style\" v=\"solid\"/>\n        </layer>\n      </symbol>\n",
        rgb[0], rgb[1], rgb[2], rgb[0], rgb[1], rgb[2]
    )
}

/// A graduated choropleth of `field` (class labels with the unit) with labels from
/// `label_field`.
pub fn zones_qml(
    title: &str,
    field: &str,
    unit: &str,
    label_field: &str,
    classes: &[ZoneClass],
) -> String {
    let mut x = String::from(HEADER);
    x += &title_comment(&format!("{title} ({unit})"));
    x += &format!(
        "  <renderer-v2 type=\"graduatedSymbol\" attr=\"{}\" graduatedMethod=\"GraduatedColor\" symbollevels=\"0\" enableorderby=\"0\" forceraster=\"0\">\n    <ranges>\n",
        xml_escape(field)
    );
    for (k, c) in classes.iter().enumerate() {
        x += &format!(
            "      <range lower=\"{}\" upper=\"{}\" symbol=\"{k}\" render=\"true\" label=\"{}\"/>\n",
            num(c.lower),
            num(c.upper),
            xml_escape(&format!(
                "{} – {} {unit}",
                render::fmt_num(c.lower),
                render::fmt_num(c.upper)
            ))
        );
    }
    x += "    </ranges>\n    <symbols>\n";
    for (k, c) in classes.iter().enumerate() {
        x += &fill_symbol(&k.to_string(), c.rgb);
    }
    x += "    </symbols>\n    <source-symbol>\n";
    x += &fill_symbol("0", classes.first().map(|c| c.rgb).unwrap_or([200; 3]));
    x += "    </source-symbol>\n    <classificationMethod id=\"EqualInterval\"/>\n  </renderer-v2>\n";
    x += &format!(
        "  <labeling type=\"simple\">\n    <settings calloutType=\"simple\">\n      <text-style fieldName=\"{}\" isExpression=\"0\" fontFamily=\"DejaVu Sans\" fontSize=\"9\" fontSizeUnit=\"Point\" textColor=\"20,20,20,255\" textOpacity=\"1\" namedStyle=\"Regular\" fontWeight=\"50\">\n        <text-buffer bufferDraw=\"1\" bufferSize=\"1\" bufferSizeUnits=\"MM\" bufferColor=\"255,255,255,255\" bufferOpacity=\"1\" bufferJoinStyle=\"128\" bufferNoFill=\"1\"/>\n      </text-style>\n      <placement placement=\"1\" centroidInside=\"1\" centroidWhole=\"0\" fitInPolygonOnly=\"0\" priority=\"5\" dist=\"0\" distUnits=\"MM\"/>\n      <rendering drawLabels=\"1\" obstacle=\"1\" obstacleType=\"1\" scaleVisibility=\"0\" upsidedownLabels=\"0\" limitNumLabels=\"0\" displayAll=\"1\"/>\n    </settings>\n  </labeling>\n",
        xml_escape(label_field)
    );
    x += "  <blendMode>0</blendMode>\n  <layerGeometryType>2</layerGeometryType>\n</qgis>\n";
    x
}

/// The `.qml` path of an output: same folder and base name.
pub fn qml_path(output: &Path) -> PathBuf {
    output.with_extension("qml")
}

fn write_text(path: &Path, text: &str) -> Result<PathBuf> {
    let tmp = TempFile::beside(path, "qml");
    std::fs::write(&tmp.path, text).map_err(|e| Error::output(path, e))?;
    tmp.commit(path)?;
    Ok(path.to_path_buf())
}

/// The legend of a class map (from its `SINKMAP_LEGEND` metadata item).
pub fn class_map_categories(path: &Path) -> Result<Vec<Category>> {
    use gdal::Metadata;
    let ds = gdal::Dataset::open(path).map_err(|e| Error::raster(path, e))?;
    let legend = ds.metadata_item("SINKMAP_LEGEND", "").unwrap_or_default();
    Ok(categories::from_legend(&legend))
}

/// Values of a numeric field of every feature of a vector layer (missing or null: skipped).
fn field_values(path: &Path, field: &str) -> Result<Vec<f64>> {
    use gdal::vector::LayerAccess;
    let ds = gdal::Dataset::open(path).map_err(|e| Error::vector(path, e))?;
    let mut layer = ds.layer(0).map_err(|e| Error::vector(path, e))?;
    let mut out = Vec::new();
    for f in layer.features() {
        if let Some(v) = f
            .field_index(field)
            .ok()
            .and_then(|i| f.field_as_double(i).ok().flatten())
        {
            out.push(v);
        }
    }
    Ok(out)
}

/// Writes a `.qml` beside every map and zone layer sinkmap knows in `out_dir` (those absent
/// are skipped). Returns the styles written.
pub fn write_all(out_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for m in MAP_STYLES {
        let p = out_dir.join(m.file_name);
        if p.exists() {
            let (lo, hi) = map_range(&p, m.symmetric)?;
            let qml = ramp_qml(m.title, m.unit, &ramp_items(m.ramp, lo, hi));
            written.push(write_text(&qml_path(&p), &qml)?);
        }
    }
    let mut series: Vec<(PathBuf, &MapStyle)> = std::fs::read_dir(out_dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    series_style(&name).map(|m| (e.path(), m))
                })
                .collect()
        })
        .unwrap_or_default();
    series.sort_by(|a, b| a.0.cmp(&b.0));
    for (p, m) in series {
        let (lo, hi) = map_range(&p, m.symmetric)?;
        let qml = ramp_qml(m.title, m.unit, &ramp_items(m.ramp, lo, hi));
        written.push(write_text(&qml_path(&p), &qml)?);
    }
    for name in CLASS_MAPS {
        let p = out_dir.join(name);
        if p.exists() {
            let qml = paletted_qml(CLASS_MAP_TITLE, &class_map_categories(&p)?);
            written.push(write_text(&qml_path(&p), &qml)?);
        }
    }
    let z = out_dir.join(ZONES_FILE);
    if z.exists() {
        let classes = zone_classes(&field_values(&z, ZONES_FIELD)?, GREENS, ZONES_CLASSES);
        let qml = zones_qml(
            ZONES_TITLE,
            ZONES_FIELD,
            ZONES_UNIT,
            ZONES_LABEL_FIELD,
            &classes,
        );
        written.push(write_text(&qml_path(&z), &qml)?);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_items_put_the_stops_on_the_range() {
        let items = ramp_items(GREENS, -2.0, 6.0);
        assert_eq!(items.len(), GREENS.0.len());
        assert_eq!(items[0], (-2.0, [247, 252, 185]));
        // t = 0.35 → −2 + 0.35 × 8 = 0.8
        assert!((items[1].0 - 0.8).abs() < 1e-12);
        assert_eq!(items[3], (6.0, [0, 69, 41]));
    }

    #[test]
    fn zone_classes_split_the_range_evenly_from_zero() {
        let c = zone_classes(&[2.0, 10.0, f64::NAN], GREENS, 5);
        assert_eq!(c.len(), 5);
        // Range 0..10 (lowest value 2 > 0, so from 0): classes of 2.
        for (k, z) in c.iter().enumerate() {
            assert!((z.lower - 2.0 * k as f64).abs() < 1e-12);
            assert!((z.upper - 2.0 * (k + 1) as f64).abs() < 1e-12);
            assert_eq!(z.rgb, GREENS.at((k as f64 + 0.5) / 5.0));
        }
        let neg = zone_classes(&[-3.0, 1.0], GREENS, 2);
        assert_eq!(
            (neg[0].lower, neg[0].upper, neg[1].upper),
            (-3.0, -1.0, 1.0)
        );
        let flat = zone_classes(&[], GREENS, 3);
        assert_eq!((flat[0].lower, flat[2].upper), (0.0, 1.0));
    }

    #[test]
    fn series_maps_are_recognised_by_prefix_and_year() {
        assert_eq!(
            series_style("stock_tc_per_ha_2019.tif").map(|m| m.unit),
            Some("t C/ha")
        );
        assert!(series_style("net_flux_tco2_per_ha_2020.tif").is_some_and(|m| m.symmetric));
        assert_eq!(
            series_style("forest_age_2021.tif").map(|m| m.unit),
            Some("yr")
        );
        // The run's maps and other names are not series maps.
        for n in [
            "stock_tc_per_ha.tif",
            "forest_age_20x1.tif",
            "forest_age_2021.csv",
            "sink_tco2_per_ha_yr.tif",
            "stock_tc_per_ha_202.tif",
        ] {
            assert!(series_style(n).is_none(), "{n}");
        }
    }

    #[test]
    fn escaping_keeps_markup_out_of_attributes() {
        assert_eq!(
            xml_escape("a<b & \"c\" 'd'>"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;"
        );
    }
}
