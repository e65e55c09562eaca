//! Drawing: colour ramps, fonts, raster maps (from the COG overviews: any size of input),
//! choropleths and charts, as PNG files.

// The map and choropleth drawing serves the figures read with GDAL (the `gdal` feature):
// without it, its helpers are unused.
#![cfg_attr(not(feature = "gdal"), allow(dead_code))]

use std::path::Path;

#[cfg(feature = "gdal")]
use gdal::Dataset;
use plotters::prelude::*;

use crate::error::{Error, Result};

/// Width of every figure (px).
pub(crate) const FIG_W: u32 = 960;

/// Fonts tried in order: `SINKMAP_FONT`, then Noto Sans CJK (Debian's fonts-noto-cjk, which
/// `scripts/setup` installs: Latin and Chinese in one face, so zone names like 阿克苏地区
/// draw), then DejaVu Sans (Latin only: Chinese would draw as missing-glyph boxes).
pub(crate) const FONT_CANDIDATES: [&str; 5] = [
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// Registers the font every figure is drawn with (see [`FONT_CANDIDATES`]); returns its path.
pub(crate) fn load_font() -> Result<String> {
    static DONE: std::sync::OnceLock<std::result::Result<String, String>> =
        std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let env = std::env::var("SINKMAP_FONT").unwrap_or_default();
        for c in std::iter::once(env.as_str())
            .chain(FONT_CANDIDATES)
            .filter(|c| !c.is_empty())
        {
            if let Ok(bytes) = std::fs::read(c) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return Ok(c.to_string());
                }
            }
        }
        Err("no font found: install fonts-noto-cjk or fonts-dejavu-core (scripts/setup does) or set SINKMAP_FONT to a .ttf/.otf file".into())
    })
    .clone()
    .map_err(|m| Error::environment("fonts", m))
}

/// A colour ramp: stops at t ∈ [0, 1].
#[derive(Debug, Clone, Copy)]
pub struct Ramp(pub &'static [(f64, [u8; 3])]);

/// Greens for stocks and sinks.
pub const GREENS: Ramp = Ramp(&[
    (0.0, [247, 252, 185]),
    (0.35, [173, 221, 142]),
    (0.7, [49, 163, 84]),
    (1.0, [0, 69, 41]),
]);
/// Yellow–orange–brown for restoration potential.
pub const ORANGES: Ramp = Ramp(&[
    (0.0, [255, 247, 188]),
    (0.4, [254, 196, 79]),
    (0.75, [217, 95, 14]),
    (1.0, [102, 37, 6]),
]);
/// Diverging brown–white–green for sinks that may be negative.
pub const DIVERGING: Ramp = Ramp(&[
    (0.0, [140, 81, 10]),
    (0.5, [245, 245, 245]),
    (1.0, [1, 102, 94]),
]);

impl Ramp {
    /// The colour at `t` (clamped to [0, 1]; a non-finite `t` gives the first stop), linear
    /// between stops.
    pub fn at(&self, t: f64) -> [u8; 3] {
        let t = if t.is_finite() {
            t.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let s = self.0;
        for w in s.windows(2) {
            if t <= w[1].0 {
                let f = (t - w[0].0) / (w[1].0 - w[0].0).max(1e-12);
                let mix = |a: u8, b: u8| (a as f64 + f * (b as f64 - a as f64)).round() as u8;
                return [
                    mix(w[0].1[0], w[1].1[0]),
                    mix(w[0].1[1], w[1].1[1]),
                    mix(w[0].1[2], w[1].1[2]),
                ];
            }
        }
        s[s.len() - 1].1
    }
}

/// Categorical colours (index 0 = none).
pub const CATEGORIES: [[u8; 3]; 8] = [
    [230, 230, 230],
    [31, 120, 180],
    [166, 206, 227],
    [51, 160, 44],
    [178, 223, 138],
    [227, 26, 28],
    [255, 127, 0],
    [106, 61, 154],
];

/// A raster read at reduced resolution (GDAL picks the COG overview: bounded memory and time).
#[cfg(feature = "gdal")]
pub(crate) struct Small {
    /// The values, row-major, `width × height`.
    pub values: Vec<f64>,
    /// Width of the reduced raster (pixels).
    pub width: usize,
    /// Height of the reduced raster (pixels).
    pub height: usize,
    /// The band's nodata value (NaN is always nodata).
    pub nodata: Option<f64>,
    /// The full-resolution raster's geotransform.
    pub geo_transform: [f64; 6],
    /// The full-resolution size (width, height) in pixels.
    pub full_size: (usize, usize),
}

/// Reads band 1 of `path` scaled down so that its longer side is at most `max_side` pixels
/// (never scaled up).
#[cfg(feature = "gdal")]
pub(crate) fn read_small(path: &Path, max_side: usize) -> Result<Small> {
    let ds = Dataset::open(path).map_err(|e| Error::raster(path, e))?;
    let (w, h) = ds.raster_size();
    let scale = (w.max(h) as f64 / max_side as f64).max(1.0);
    let (tw, th) = (
        ((w as f64 / scale).round() as usize).max(1),
        ((h as f64 / scale).round() as usize).max(1),
    );
    let band = ds.rasterband(1).map_err(|e| Error::raster(path, e))?;
    let buf = band
        .read_as::<f64>((0, 0), (w, h), (tw, th), None)
        .map_err(|e| Error::raster(path, e))?;
    Ok(Small {
        values: buf.data().to_vec(),
        width: tw,
        height: th,
        nodata: band.no_data_value(),
        geo_transform: ds.geo_transform().map_err(|e| Error::raster(path, e))?,
        full_size: (w, h),
    })
}

fn is_nodata(v: f64, nd: Option<f64>) -> bool {
    v.is_nan() || nd.is_some_and(|n| n == v)
}

/// (low, high) for the colour scale: the 2nd and 98th percentiles of the valid values.
pub fn robust_range(values: &[f64], nd: Option<f64>) -> (f64, f64) {
    let mut v: Vec<f64> = values
        .iter()
        .copied()
        .filter(|x| !is_nodata(*x, nd))
        .collect();
    if v.is_empty() {
        return (0.0, 1.0);
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    let (mut lo, mut hi) = (q(0.02), q(0.98));
    if lo >= 0.0 {
        lo = 0.0;
    }
    if hi <= lo {
        hi = lo + 1.0;
    }
    (lo, hi)
}

/// The colour scale of a map or choropleth: the ramp spans `lo..hi`; values beyond are drawn
/// with the end colours, and the legend marks those ends "≤ lo" / "≥ hi".
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Breaks {
    /// Value at the ramp's first stop.
    pub lo: f64,
    /// Value at the ramp's last stop.
    pub hi: f64,
    /// Some valid value is below `lo` (the low end is clipped).
    pub clipped_low: bool,
    /// Some valid value is above `hi` (the high end is clipped).
    pub clipped_high: bool,
}

/// The breaks of [`robust_range`] with their clipped ends.
pub(crate) fn breaks(values: &[f64], nd: Option<f64>) -> Breaks {
    let (lo, hi) = robust_range(values, nd);
    let valid = values.iter().copied().filter(|x| !is_nodata(*x, nd));
    let (min, max) = valid.fold((f64::INFINITY, f64::NEG_INFINITY), |a, x| {
        (a.0.min(x), a.1.max(x))
    });
    Breaks {
        lo,
        hi,
        clipped_low: min < lo,
        clipped_high: max > hi,
    }
}

/// The labels of a ramp legend at `n + 1` evenly spaced values, the clipped ends marked.
pub(crate) fn legend_labels(b: &Breaks, n: usize) -> Vec<String> {
    (0..=n)
        .map(|k| {
            let v = b.lo + (b.hi - b.lo) * k as f64 / n as f64;
            let t = label_num(v);
            match k {
                0 if b.clipped_low => format!("≤ {t}"),
                k if k == n && b.clipped_high => format!("≥ {t}"),
                _ => t,
            }
        })
        .collect()
}

/// A number for a label: 3 significant digits without trailing zeros, engineering prefix
/// (k, M, G) from 10 000 up: 150000 → "150k", 0.06571 → "0.0657", 50 → "50".
pub(crate) fn label_num(v: f64) -> String {
    let (x, prefix) = match v.abs() {
        a if a >= 1e10 => (v / 1e9, "G"),
        a if a >= 1e7 => (v / 1e6, "M"),
        a if a >= 1e4 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let mut t = crate::human::sig_digits(x, 3);
    if t.contains('.') {
        t = t.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{t}{prefix}")
}

/// Text for the figures: the font may lack subscript digits (Noto Sans CJK has no "₂"), so
/// they are written as plain digits ("CO₂" → "CO2").
pub(crate) fn glyph_safe(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '₀'..='₉' => char::from(b'0' + (c as u32 - '₀' as u32) as u8),
            c => c,
        })
        .collect()
}

/// A round step (1, 2 or 5 × 10ᵏ) giving about `n` intervals over `span`.
pub(crate) fn nice_step(span: f64, n: f64) -> f64 {
    if span.is_nan() || span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / n;
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    p * if m < 1.5 {
        1.0
    } else if m < 3.5 {
        2.0
    } else if m < 7.5 {
        5.0
    } else {
        10.0
    }
}

/// The rings (exterior and holes of every part) of a polygon or multipolygon, in its own
/// coordinates; other geometry types have none.
#[cfg(feature = "gdal")]
pub(crate) fn polygon_rings(g: &gdal::vector::Geometry) -> Vec<Vec<(f64, f64)>> {
    use gdal::vector::{Geometry, OGRwkbGeometryType};
    let mut rings = Vec::new();
    let mut add = |p: &Geometry| {
        for i in 0..p.geometry_count() {
            let mut pts = Vec::new();
            p.get_geometry(i).get_points(&mut pts);
            rings.push(pts.into_iter().map(|(x, y, _)| (x, y)).collect());
        }
    };
    match gdal::vector::geometry_type_flatten(g.geometry_type()) {
        OGRwkbGeometryType::wkbPolygon => add(g),
        OGRwkbGeometryType::wkbMultiPolygon => {
            for i in 0..g.geometry_count() {
                add(&g.get_geometry(i));
            }
        }
        _ => {}
    }
    rings
}

/// Zone rings (exterior and holes of every part) of a polygon layer in the CRS `wkt`, in
/// that CRS's units. Features without a polygon geometry are skipped.
#[cfg(feature = "gdal")]
pub(crate) fn rings_in_crs(layer_path: &Path, wkt: &str) -> Result<Vec<Vec<(f64, f64)>>> {
    use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
    use gdal::vector::LayerAccess;
    let ds = Dataset::open(layer_path).map_err(|e| Error::vector(layer_path, e))?;
    let mut layer = ds.layer(0).map_err(|e| Error::vector(layer_path, e))?;
    let mut src = layer
        .spatial_ref()
        .unwrap_or(SpatialRef::from_epsg(4326).map_err(|e| Error::vector(layer_path, e))?);
    src.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut dst = SpatialRef::from_wkt(wkt).map_err(|e| Error::vector(layer_path, e))?;
    dst.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let ct = CoordTransform::new(&src, &dst).map_err(|e| Error::vector(layer_path, e))?;
    let mut rings = Vec::new();
    for f in layer.features() {
        let Some(g) = f.geometry() else { continue };
        let Ok(g) = g.transform(&ct) else { continue };
        rings.extend(polygon_rings(&g));
    }
    Ok(rings)
}

/// Turns a drawing error into an output error naming `path`.
pub(super) fn err(path: &Path) -> impl Fn(String) -> Error + '_ {
    move |m| Error::output(path, m)
}

/// What a map shows.
pub(crate) enum Legend<'a> {
    /// A continuous ramp with its unit.
    Ramp {
        /// The colour ramp.
        ramp: Ramp,
        /// Unit of the values, for the legend (e.g. `t C/ha`).
        unit: &'a str,
    },
    /// Categories: (code, label).
    Categories(&'a [(u8, String)]),
}

/// How map coordinates become figure pixels, for the frame furniture.
pub(crate) struct Frame {
    /// Figure pixels of the map's upper-left corner and size: x of the corner.
    pub x0: i32,
    /// y of the upper-left corner (figure pixels).
    pub y0: i32,
    /// Width of the map (figure pixels).
    pub w: i32,
    /// Height of the map (figure pixels).
    pub h: i32,
    /// Extent in CRS units: (min x, max x, min y, max y).
    pub extent: (f64, f64, f64, f64),
    /// True for longitude/latitude coordinates (ticks in degrees; the scale bar takes
    /// 111.32 km per degree × cos(latitude)).
    pub geographic: bool,
    /// Metres per CRS unit for projected CRSs.
    pub metres_per_unit: f64,
}

impl Frame {
    /// Figure pixel (x, y) of map coordinates (x, y).
    pub fn to_px(&self, x: f64, y: f64) -> (i32, i32) {
        let (ax, bx, ay, by) = self.extent;
        (
            self.x0 + ((x - ax) / (bx - ax) * self.w as f64).round() as i32,
            self.y0 + ((by - y) / (by - ay) * self.h as f64).round() as i32,
        )
    }

    /// Metres per figure pixel along x at the middle of the map.
    pub fn metres_per_px(&self) -> f64 {
        let (ax, bx, ay, by) = self.extent;
        let units = (bx - ax) / self.w as f64;
        if self.geographic {
            units * 111_320.0 * ((ay + by) / 2.0).to_radians().cos()
        } else {
            units * self.metres_per_unit
        }
    }

    fn coord_label(&self, v: f64, is_x: bool, step: f64) -> String {
        let decimals = (-step.log10().floor()).max(0.0) as usize;
        if self.geographic {
            let hemi = match (is_x, v < 0.0) {
                (true, false) => "E",
                (true, true) => "W",
                (false, false) => "N",
                (false, true) => "S",
            };
            format!("{:.*}°{hemi}", decimals, v.abs())
        } else {
            format!("{} km", label_num(v * self.metres_per_unit / 1000.0))
        }
    }

    /// Draws the frame, coordinate ticks with labels, a scale bar and a north arrow.
    pub fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, plotters::coord::Shift>,
    ) -> std::result::Result<(), String> {
        let e = |x: plotters::drawing::DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
        let black = BLACK.stroke_width(1);
        root.draw(&Rectangle::new(
            [(self.x0, self.y0), (self.x0 + self.w, self.y0 + self.h)],
            black,
        ))
        .map_err(e)?;
        let st = ("sans-serif", 14).into_text_style(root);
        let (ax, bx, ay, by) = self.extent;
        let step_x = nice_step(bx - ax, 5.0);
        let mut x = (ax / step_x).ceil() * step_x;
        while x <= bx {
            let (px, _) = self.to_px(x, by);
            root.draw(&PathElement::new(
                vec![(px, self.y0 + self.h), (px, self.y0 + self.h + 5)],
                black,
            ))
            .map_err(e)?;
            let t = self.coord_label(x, true, step_x);
            let (tw, _) = root.estimate_text_size(&t, &st).unwrap_or((40, 12));
            root.draw_text(&t, &st, (px - tw as i32 / 2, self.y0 + self.h + 7))
                .map_err(e)?;
            x += step_x;
        }
        let step_y = nice_step(by - ay, 4.0);
        let mut y = (ay / step_y).ceil() * step_y;
        while y <= by {
            let (_, py) = self.to_px(ax, y);
            root.draw(&PathElement::new(
                vec![(self.x0 - 5, py), (self.x0, py)],
                black,
            ))
            .map_err(e)?;
            let t = self.coord_label(y, false, step_y);
            let (tw, _) = root.estimate_text_size(&t, &st).unwrap_or((40, 12));
            root.draw_text(&t, &st, (self.x0 - 8 - tw as i32, py - 7))
                .map_err(e)?;
            y += step_y;
        }
        // Scale bar, lower left inside the map, on a white box.
        let mpp = self.metres_per_px();
        if mpp.is_finite() && mpp > 0.0 {
            let target = mpp * self.w as f64 / 5.0;
            let len_m = {
                let p = 10f64.powf(target.log10().floor());
                let m = target / p;
                p * if m >= 5.0 {
                    5.0
                } else if m >= 2.0 {
                    2.0
                } else {
                    1.0
                }
            };
            let len_px = (len_m / mpp).round() as i32;
            let (bx0, by0) = (self.x0 + 10, self.y0 + self.h - 34);
            root.draw(&Rectangle::new(
                [(bx0 - 4, by0 - 4), (bx0 + len_px + 60, by0 + 26)],
                WHITE.mix(0.85).filled(),
            ))
            .map_err(e)?;
            root.draw(&Rectangle::new(
                [(bx0, by0 + 14), (bx0 + len_px / 2, by0 + 20)],
                BLACK.filled(),
            ))
            .map_err(e)?;
            root.draw(&Rectangle::new(
                [(bx0, by0 + 14), (bx0 + len_px, by0 + 20)],
                black,
            ))
            .map_err(e)?;
            let label = if len_m >= 1000.0 {
                format!("{} km", label_num(len_m / 1000.0))
            } else {
                format!("{len_m:.0} m")
            };
            root.draw_text("0", &st, (bx0 - 3, by0)).map_err(e)?;
            root.draw_text(&label, &st, (bx0 + len_px - 6, by0))
                .map_err(e)?;
        }
        // North arrow, upper right inside the map.
        let (nx, ny) = (self.x0 + self.w - 26, self.y0 + 10);
        root.draw(&Rectangle::new(
            [(nx - 12, ny - 4), (nx + 12, ny + 44)],
            WHITE.mix(0.85).filled(),
        ))
        .map_err(e)?;
        root.draw(&Polygon::new(
            vec![(nx, ny + 16), (nx - 8, ny + 40), (nx, ny + 34)],
            BLACK.filled(),
        ))
        .map_err(e)?;
        root.draw(&Polygon::new(
            vec![(nx, ny + 16), (nx + 8, ny + 40), (nx, ny + 34)],
            BLACK.stroke_width(1),
        ))
        .map_err(e)?;
        root.draw_text(
            "N",
            &("sans-serif", 14).into_text_style(root),
            (nx - 5, ny - 2),
        )
        .map_err(e)?;
        Ok(())
    }
}

/// Renders a raster map to `out` (RGBA PNG; nodata transparent), with title, zone outlines
/// (`zones`: any polygon layer, reprojected to the raster's CRS), coordinate ticks, scale
/// bar, north arrow, a legend with units whose clipped ends are marked, and a resolution
/// note.
#[cfg(feature = "gdal")]
pub(crate) fn map_png(
    raster: &Path,
    out: &Path,
    title: &str,
    legend: Legend,
    max_side: usize,
    zones: Option<&Path>,
) -> Result<()> {
    load_font()?;
    let s = read_small(raster, max_side)?;
    let (lm, top) = (90u32, 50u32);
    let map_w = (FIG_W - lm - 30) as usize;
    let scale = (map_w as f64 / s.width as f64).min(560.0 / s.height as f64);
    let (mw, mh) = (
        ((s.width as f64) * scale) as u32,
        ((s.height as f64) * scale) as u32,
    );
    let (x0, y0) = (lm, top);
    let legend_rows = match &legend {
        Legend::Categories(c) => c.len().div_ceil(3) as u32,
        Legend::Ramp { .. } => 2,
    };
    let fig_h = y0 + mh + 40 + legend_rows * 20 + 50;
    let mut buf = vec![255u8; (FIG_W * fig_h * 3) as usize];
    let br = match &legend {
        Legend::Ramp { .. } => breaks(&s.values, s.nodata),
        Legend::Categories(_) => Breaks {
            lo: 0.0,
            hi: 1.0,
            clipped_low: false,
            clipped_high: false,
        },
    };
    let (lo, hi) = (br.lo, br.hi);
    let color_of = |v: f64| -> [u8; 3] {
        match &legend {
            Legend::Ramp { ramp, .. } => ramp.at((v - lo) / (hi - lo)),
            Legend::Categories(cats) => {
                let i = cats.iter().position(|(c, _)| *c as f64 == v).unwrap_or(0);
                CATEGORIES[i % CATEGORIES.len()]
            }
        }
    };
    let mut transparent = Vec::new();
    for py in 0..mh {
        for px in 0..mw {
            let sx = ((px as f64 / scale) as usize).min(s.width - 1);
            let sy = ((py as f64 / scale) as usize).min(s.height - 1);
            let v = s.values[sy * s.width + sx];
            let idx = (((y0 + py) * FIG_W + x0 + px) * 3) as usize;
            if is_nodata(v, s.nodata) {
                transparent.push(((y0 + py) * FIG_W + x0 + px) as usize);
                continue;
            }
            buf[idx..idx + 3].copy_from_slice(&color_of(v));
        }
    }
    let gt = s.geo_transform;
    let (fw, fh) = s.full_size;
    let ds = Dataset::open(raster).map_err(|e| Error::raster(raster, e))?;
    let srs = ds.spatial_ref().ok();
    let wkt = srs.as_ref().and_then(|r| r.to_wkt().ok());
    let geographic = srs.as_ref().is_some_and(|r| r.is_geographic());
    let frame = Frame {
        x0: x0 as i32,
        y0: y0 as i32,
        w: mw as i32,
        h: mh as i32,
        // The shown part: whole small pixels only.
        extent: (
            gt[0],
            gt[0] + gt[1] * fw as f64 * (mw as f64 / (s.width as f64 * scale)),
            gt[3] + gt[5] * fh as f64 * (mh as f64 / (s.height as f64 * scale)),
            gt[3],
        ),
        geographic,
        metres_per_unit: srs
            .as_ref()
            .map(|r| r.linear_units())
            .filter(|u| *u > 0.0)
            .unwrap_or(1.0),
    };
    // Drawn beyond the map, transparent pixels stay opaque white: only map pixels may be clear.
    {
        let root = BitMapBackend::with_buffer(&mut buf, (FIG_W, fig_h)).into_drawing_area();
        let e = err(out);
        root.draw_text(
            &glyph_safe(title),
            &("sans-serif", 24).into_text_style(&root),
            (20, 12),
        )
        .map_err(|x| e(x.to_string()))?;
        if let (Some(z), Some(wkt)) = (zones, wkt.as_deref()) {
            let map_area = root.clone().shrink((x0, y0), (mw, mh));
            for ring in rings_in_crs(z, wkt)? {
                let pts: Vec<(i32, i32)> = ring
                    .iter()
                    .map(|(x, y)| {
                        let (px, py) = frame.to_px(*x, *y);
                        (px - x0 as i32, py - y0 as i32)
                    })
                    .collect();
                map_area
                    .draw(&PathElement::new(pts.clone(), WHITE.stroke_width(3)))
                    .map_err(|x| e(x.to_string()))?;
                map_area
                    .draw(&PathElement::new(pts, RGBColor(40, 40, 40).stroke_width(1)))
                    .map_err(|x| e(x.to_string()))?;
            }
        }
        frame.draw(&root).map_err(&e)?;
        let ly = (y0 + mh + 40) as i32;
        match &legend {
            Legend::Ramp { ramp, unit } => {
                for i in 0..400 {
                    let c = ramp.at(i as f64 / 399.0);
                    root.draw(&Rectangle::new(
                        [(40 + i, ly), (41 + i, ly + 18)],
                        RGBColor(c[0], c[1], c[2]).filled(),
                    ))
                    .map_err(|x| e(x.to_string()))?;
                }
                let st = ("sans-serif", 15).into_text_style(&root);
                for (k, t) in legend_labels(&br, 4).iter().enumerate() {
                    let (w, _) = root.estimate_text_size(t, &st).unwrap_or((30, 12));
                    root.draw_text(t, &st, (40 + k as i32 * 100 - w as i32 / 2, ly + 22))
                        .map_err(|x| e(x.to_string()))?;
                }
                root.draw_text(&glyph_safe(unit), &st, (460, ly + 2))
                    .map_err(|x| e(x.to_string()))?;
            }
            Legend::Categories(cats) => {
                let st = ("sans-serif", 15).into_text_style(&root);
                for (i, (_, label)) in cats.iter().enumerate() {
                    let (cx, cy) = (40 + (i as i32 % 3) * 300, ly + (i as i32 / 3) * 20);
                    let c = CATEGORIES[i % CATEGORIES.len()];
                    root.draw(&Rectangle::new(
                        [(cx, cy), (cx + 14, cy + 14)],
                        RGBColor(c[0], c[1], c[2]).filled(),
                    ))
                    .map_err(|x| e(x.to_string()))?;
                    root.draw_text(label, &st, (cx + 20, cy))
                        .map_err(|x| e(x.to_string()))?;
                }
            }
        }
        // Map pixels per figure pixel along x (below 1: the map is enlarged).
        let per = fw as f64 / mw as f64;
        let shown = if per > 1.0 {
            format!(
                "each figure pixel shows about {} × {} map pixels",
                crate::human::sig_digits(per, 3),
                crate::human::sig_digits(per, 3)
            )
        } else {
            format!(
                "map pixels enlarged {}×",
                crate::human::sig_digits(1.0 / per, 3)
            )
        };
        let note = format!(
            "{fw} × {fh} px of {} × {} {}; {shown}",
            crate::human::sig_digits(gt[1], 3),
            crate::human::sig_digits(gt[5].abs(), 3),
            if geographic { "degrees" } else { "CRS units" },
        );
        root.draw_text(
            &note,
            &("sans-serif", 13).into_text_style(&root),
            (20, (fig_h - 22) as i32),
        )
        .map_err(|x| e(x.to_string()))?;
        root.present().map_err(|x| e(x.to_string()))?;
    }
    save_rgba(out, &buf, FIG_W, fig_h, &transparent)
}

/// Saves an RGB buffer as an RGBA PNG with the given pixels transparent.
pub(crate) fn save_rgba(
    out: &Path,
    rgb: &[u8],
    w: u32,
    h: u32,
    transparent: &[usize],
) -> Result<()> {
    let mut rgba = Vec::with_capacity((w * h * 4) as usize);
    for px in rgb.chunks(3) {
        rgba.extend_from_slice(&[px[0], px[1], px[2], 255]);
    }
    for &i in transparent {
        rgba[i * 4 + 3] = 0;
    }
    let img =
        image::RgbaImage::from_raw(w, h, rgba).ok_or_else(|| Error::output(out, "image buffer"))?;
    img.save_with_format(out, image::ImageFormat::Png)
        .map_err(|e| Error::output(out, e))
}

/// A number for a label (kept for callers of the old name): see [`label_num`].
pub(crate) fn fmt_num(v: f64) -> String {
    label_num(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders `text` alone in the report's font and returns the bitmap (RGB).
    fn render_text(text: &str) -> Vec<u8> {
        load_font().unwrap();
        let (w, h) = (64u32, 48u32);
        let mut buf = vec![255u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
            root.draw_text(text, &("sans-serif", 32).into_text_style(&root), (4, 4))
                .unwrap();
            root.present().unwrap();
        }
        buf
    }

    /// The zone name 阿克苏地区 draws with real glyphs: every character leaves ink, and the
    /// five characters differ from each other and from a character no font has (U+10FFFD,
    /// which draws as the missing-glyph box or nothing). Missing glyphs would all draw alike.
    #[test]
    fn chinese_zone_names_draw_real_glyphs() {
        let font = load_font().unwrap();
        let blank = render_text(" ");
        let missing = render_text("\u{10FFFD}");
        let glyphs: Vec<Vec<u8>> = "阿克苏地区"
            .chars()
            .map(|c| render_text(&c.to_string()))
            .collect();
        let cjk_font = font.contains("CJK") || std::env::var("SINKMAP_FONT").is_ok();
        if !cjk_font {
            // The documented fallback (DejaVu) has no Chinese: say so instead of passing.
            panic!("the report font {font} has no Chinese glyphs: install fonts-noto-cjk (scripts/setup does)");
        }
        for (i, g) in glyphs.iter().enumerate() {
            assert!(g != &blank, "character {i} left no ink");
            assert!(g != &missing, "character {i} is the missing-glyph box");
            assert!(
                glyphs[..i].iter().all(|h| h != g),
                "character {i} drew the same glyph as an earlier one"
            );
        }
        // And the whole name renders in a map label (the path the report uses).
        assert!(render_text("阿克苏地区") != blank);
    }

    #[test]
    fn legends_mark_clipped_ends() {
        // 100 values 0..99 and one outlier: the 98th percentile clips the top.
        let mut v: Vec<f64> = (0..100).map(|i| i as f64).collect();
        v.push(1000.0);
        let b = breaks(&v, None);
        assert!(b.clipped_high && !b.clipped_low);
        let l = legend_labels(&b, 4);
        assert!(l[4].starts_with("≥ "), "{l:?}");
        assert_eq!(l[0], "0");
        // Nothing clipped: plain labels.
        let b = Breaks {
            lo: 0.0,
            hi: 2.0,
            clipped_low: false,
            clipped_high: false,
        };
        assert_eq!(legend_labels(&b, 4), vec!["0", "0.5", "1", "1.5", "2"]);
        let b = Breaks {
            lo: -1.0,
            hi: 1.0,
            clipped_low: true,
            clipped_high: true,
        };
        let l = legend_labels(&b, 2);
        assert_eq!(l, vec!["≤ -1", "0", "≥ 1"]);
    }

    #[test]
    fn label_numbers_and_steps() {
        assert_eq!(label_num(150_000.0), "150k");
        assert_eq!(label_num(50_000.0), "50k");
        assert_eq!(label_num(0.065_71), "0.0657");
        assert_eq!(label_num(2.5e7), "25M");
        assert_eq!(nice_step(1.5, 5.0), 0.2);
        assert_eq!(nice_step(100_000.0, 5.0), 20_000.0);
        assert_eq!(glyph_safe("t CO₂/yr"), "t CO2/yr");
    }
}
