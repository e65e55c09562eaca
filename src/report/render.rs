//! Drawing: colour ramps, fonts, raster maps (from the COG overviews: any size of input),
//! choropleths and charts, as PNG files.

use std::path::Path;

use gdal::Dataset;
use plotters::prelude::*;

use crate::error::{Error, Result};

/// Width of every figure (px).
pub const FIG_W: u32 = 960;

/// Registers a sans-serif font from the system (Debian's fonts-dejavu-core, which
/// `scripts/setup` installs), or from `SINKMAP_FONT`.
pub fn load_font() -> Result<()> {
    static DONE: std::sync::OnceLock<std::result::Result<(), String>> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let candidates = [
            std::env::var("SINKMAP_FONT").unwrap_or_default(),
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf".into(),
            "/usr/share/fonts/dejavu/DejaVuSans.ttf".into(),
        ];
        for c in candidates.iter().filter(|c| !c.is_empty()) {
            if let Ok(bytes) = std::fs::read(c) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return Ok(());
                }
            }
        }
        Err("no font found: install fonts-dejavu-core (scripts/setup does) or set SINKMAP_FONT to a .ttf file".into())
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
pub struct Small {
    pub values: Vec<f64>,
    pub width: usize,
    pub height: usize,
    pub nodata: Option<f64>,
    pub geo_transform: [f64; 6],
    pub full_size: (usize, usize),
}

pub fn read_small(path: &Path, max_side: usize) -> Result<Small> {
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

/// Turns a drawing error into an output error naming `path`.
pub(super) fn err(path: &Path) -> impl Fn(String) -> Error + '_ {
    move |m| Error::output(path, m)
}

/// What a map shows.
pub enum Legend<'a> {
    /// A continuous ramp with its unit.
    Ramp { ramp: Ramp, unit: &'a str },
    /// Categories: (code, label).
    Categories(&'a [(u8, String)]),
}

/// Renders a raster map to `out` (RGBA PNG; nodata transparent), with title, legend with
/// units, and an extent / scale note.
pub fn map_png(
    raster: &Path,
    out: &Path,
    title: &str,
    legend: Legend,
    max_side: usize,
) -> Result<()> {
    load_font()?;
    let s = read_small(raster, max_side)?;
    let map_w = (FIG_W - 40) as usize;
    let scale = (map_w as f64 / s.width as f64).min(560.0 / s.height as f64);
    let (mw, mh) = (
        ((s.width as f64) * scale) as u32,
        ((s.height as f64) * scale) as u32,
    );
    let (x0, y0) = (20u32, 50u32);
    let fig_h = y0 + mh + 110;
    let mut buf = vec![255u8; (FIG_W * fig_h * 3) as usize];
    let (lo, hi) = match &legend {
        Legend::Ramp { .. } => robust_range(&s.values, s.nodata),
        Legend::Categories(_) => (0.0, 1.0),
    };
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
    {
        let root = BitMapBackend::with_buffer(&mut buf, (FIG_W, fig_h)).into_drawing_area();
        let e = err(out);
        root.draw_text(title, &("sans-serif", 22).into_text_style(&root), (20, 15))
            .map_err(|x| e(x.to_string()))?;
        let ly = (y0 + mh + 20) as i32;
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
                let st = ("sans-serif", 14).into_text_style(&root);
                for k in 0..=4 {
                    let v = lo + (hi - lo) * k as f64 / 4.0;
                    root.draw_text(&fmt_num(v), &st, (32 + k * 100, ly + 22))
                        .map_err(|x| e(x.to_string()))?;
                }
                root.draw_text(unit, &st, (460, ly + 2))
                    .map_err(|x| e(x.to_string()))?;
            }
            Legend::Categories(cats) => {
                let st = ("sans-serif", 13).into_text_style(&root);
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
        let gt = s.geo_transform;
        let (fw, fh) = s.full_size;
        let note = format!(
            "extent x {:.4}…{:.4}, y {:.4}…{:.4} (CRS units); {} × {} px at {:.6} × {:.6}, shown at 1:{:.0} of the pixels",
            gt[0],
            gt[0] + fw as f64 * gt[1],
            gt[3] + fh as f64 * gt[5],
            gt[3],
            fw,
            fh,
            gt[1],
            gt[5].abs(),
            (fw as f64 / mw as f64).max(1.0)
        );
        root.draw_text(
            &note,
            &("sans-serif", 12).into_text_style(&root),
            (20, (fig_h - 22) as i32),
        )
        .map_err(|x| e(x.to_string()))?;
        root.present().map_err(|x| e(x.to_string()))?;
    }
    save_rgba(out, &buf, FIG_W, fig_h, &transparent)
}

/// Saves an RGB buffer as an RGBA PNG with the given pixels transparent.
pub fn save_rgba(out: &Path, rgb: &[u8], w: u32, h: u32, transparent: &[usize]) -> Result<()> {
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

/// A number for a label: few digits, SI-like.
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 {
        format!("{v:.0}")
    } else if a >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}
