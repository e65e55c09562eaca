//! Charts and the zone choropleth (PNG, plotters).

use std::path::Path;

use plotters::prelude::*;

use super::render::{fmt_num, load_font, Ramp, FIG_W};
use crate::error::{Error, Result};

/// A zone polygon in lon/lat with its name and value.
pub struct ZoneShape {
    pub name: String,
    /// Rings (exterior and holes) of every part.
    pub rings: Vec<Vec<(f64, f64)>>,
    pub value: f64,
}

/// A choropleth of `zones` (lon/lat) coloured by value, with names and a legend with units.
pub fn choropleth(
    out: &Path,
    title: &str,
    unit: &str,
    zones: &[ZoneShape],
    ramp: Ramp,
) -> Result<()> {
    load_font()?;
    let err = super::render::err(out);
    let pts = zones.iter().flat_map(|z| z.rings.iter().flatten());
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for (x, y) in pts {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    if !x0.is_finite() {
        return Err(Error::output(out, "no zone geometry to draw"));
    }
    // Keep the map's aspect (degrees of longitude shrink by cos(latitude)).
    let k = ((y0 + y1) / 2.0).to_radians().cos().max(0.1);
    let plot_w = FIG_W - 80;
    let plot_h = (((y1 - y0) / ((x1 - x0) * k)) * plot_w as f64).clamp(200.0, 700.0) as u32;
    let h = plot_h + 150;
    let (lo, hi) = zones
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |a, z| {
            (a.0.min(z.value), a.1.max(z.value))
        });
    let (lo, hi) = (
        lo.min(0.0),
        if hi > lo.min(0.0) {
            hi
        } else {
            lo.min(0.0) + 1.0
        },
    );
    let path = out.to_path_buf();
    let root = BitMapBackend::new(&path, (FIG_W, h)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| err(x.to_string()))?;
    let (upper, _) = root.split_vertically(h - 90);
    let mut chart = ChartBuilder::on(&upper)
        .caption(title, ("sans-serif", 22))
        .margin(20)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|x| err(x.to_string()))?;
    for z in zones {
        let c = ramp.at((z.value - lo) / (hi - lo));
        for ring in &z.rings {
            chart
                .draw_series(std::iter::once(Polygon::new(
                    ring.clone(),
                    RGBColor(c[0], c[1], c[2]).filled(),
                )))
                .map_err(|x| err(x.to_string()))?;
            chart
                .draw_series(std::iter::once(PathElement::new(
                    ring.clone(),
                    BLACK.stroke_width(1),
                )))
                .map_err(|x| err(x.to_string()))?;
        }
    }
    for z in zones {
        let ext = z.rings.first().map(|r| r.as_slice()).unwrap_or(&[]);
        if ext.is_empty() {
            continue;
        }
        let cx = ext.iter().map(|p| p.0).sum::<f64>() / ext.len() as f64;
        let cy = ext.iter().map(|p| p.1).sum::<f64>() / ext.len() as f64;
        chart
            .draw_series(std::iter::once(Text::new(
                z.name.clone(),
                (cx, cy),
                ("sans-serif", 12).into_font().color(&BLACK),
            )))
            .map_err(|x| err(x.to_string()))?;
    }
    let ly = (h - 60) as i32;
    for i in 0..400 {
        let c = ramp.at(i as f64 / 399.0);
        root.draw(&Rectangle::new(
            [(40 + i, ly), (41 + i, ly + 16)],
            RGBColor(c[0], c[1], c[2]).filled(),
        ))
        .map_err(|x| err(x.to_string()))?;
    }
    let st = ("sans-serif", 14).into_text_style(&root);
    for i in 0..=4 {
        root.draw_text(
            &fmt_num(lo + (hi - lo) * i as f64 / 4.0),
            &st,
            (32 + i * 100, ly + 20),
        )
        .map_err(|x| err(x.to_string()))?;
    }
    root.draw_text(unit, &st, (460, ly))
        .map_err(|x| err(x.to_string()))?;
    root.present().map_err(|x| err(x.to_string()))
}

/// A named line with an optional band.
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub band: Option<Vec<(f64, f64, f64)>>,
    pub color: RGBColor,
    /// Draw the points as markers (observations) instead of a line.
    pub markers: bool,
}

/// A line chart with optional p05–p95 bands, marker series and a legend.
pub fn line_chart(
    out: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    lines: &[Line],
    height: u32,
) -> Result<()> {
    load_font()?;
    let err = super::render::err(out);
    let xs = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |a, x| {
        (a.0.min(x), a.1.max(x))
    });
    let ys = lines.iter().flat_map(|l| {
        l.points.iter().map(|p| p.1).chain(
            l.band
                .iter()
                .flat_map(|b| b.iter().flat_map(|(_, lo, hi)| [*lo, *hi])),
        )
    });
    let (mut y0, mut y1) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |a, y| {
        (a.0.min(y), a.1.max(y))
    });
    if !x0.is_finite() || !y0.is_finite() {
        return Err(Error::output(out, "no data to chart"));
    }
    y0 = y0.min(0.0);
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    let path = out.to_path_buf();
    let root = BitMapBackend::new(&path, (FIG_W, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| err(x.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(x0..x1.max(x0 + 1.0), y0..y1 * 1.05)
        .map_err(|x| err(x.to_string()))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| fmt_num(*y))
        .draw()
        .map_err(|x| err(x.to_string()))?;
    for l in lines {
        if let Some(b) = &l.band {
            let mut poly: Vec<(f64, f64)> = b.iter().map(|(x, lo, _)| (*x, *lo)).collect();
            poly.extend(b.iter().rev().map(|(x, _, hi)| (*x, *hi)));
            chart
                .draw_series(std::iter::once(Polygon::new(
                    poly,
                    l.color.mix(0.2).filled(),
                )))
                .map_err(|x| err(x.to_string()))?;
        }
        let c = l.color;
        if l.markers {
            chart
                .draw_series(l.points.iter().map(|p| Circle::new(*p, 3, c.filled())))
                .map_err(|x| err(x.to_string()))?
                .label(l.name.clone())
                .legend(move |(x, y)| Circle::new((x + 10, y), 3, c.filled()));
            continue;
        }
        chart
            .draw_series(LineSeries::new(l.points.clone(), c.stroke_width(2)))
            .map_err(|x| err(x.to_string()))?
            .label(l.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(|x| err(x.to_string()))?;
    root.present().map_err(|x| err(x.to_string()))
}

/// Grouped horizontal-free bar chart: per zone, one bar per series.
pub fn bar_chart(
    out: &Path,
    title: &str,
    y_label: &str,
    names: &[String],
    series: &[(&str, Vec<f64>, RGBColor)],
) -> Result<()> {
    load_font()?;
    let err = super::render::err(out);
    let n = names.len().max(1);
    let ymax = series
        .iter()
        .flat_map(|s| s.1.iter())
        .copied()
        .fold(0.0, f64::max)
        .max(1e-9);
    let path = out.to_path_buf();
    let root = BitMapBackend::new(&path, (FIG_W, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| err(x.to_string()))?;
    // Zone names are written under the bars, inside the chart (y below 0).
    let floor = -0.45 * ymax;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(10)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..n as f64, floor..ymax * 1.1)
        .map_err(|x| err(x.to_string()))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .disable_x_axis()
        .y_desc(y_label)
        .y_label_formatter(&|y| if *y < 0.0 { String::new() } else { fmt_num(*y) })
        .draw()
        .map_err(|x| err(x.to_string()))?;
    let label_style = ("sans-serif", 12)
        .into_font()
        .transform(FontTransform::Rotate90)
        .color(&BLACK);
    chart
        .draw_series(names.iter().enumerate().map(|(i, name)| {
            let short: String = name.chars().take(28).collect();
            Text::new(short, (i as f64 + 0.55, -0.02 * ymax), label_style.clone())
        }))
        .map_err(|x| err(x.to_string()))?;
    let k = series.len().max(1) as f64;
    for (si, (name, vals, color)) in series.iter().enumerate() {
        let c = *color;
        chart
            .draw_series(vals.iter().enumerate().map(|(i, v)| {
                let x = i as f64 + 0.1 + 0.8 * si as f64 / k;
                Rectangle::new([(x, 0.0), (x + 0.8 / k, *v)], c.filled())
            }))
            .map_err(|x| err(x.to_string()))?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(|x| err(x.to_string()))?;
    root.present().map_err(|x| err(x.to_string()))
}
