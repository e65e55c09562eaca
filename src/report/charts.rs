//! Charts and the zone choropleth (PNG, plotters).

// The map and choropleth drawing serves the figures read with GDAL (the `gdal` feature):
// without it, its helpers are unused.
#![cfg_attr(not(feature = "gdal"), allow(dead_code))]

use std::path::Path;

use plotters::prelude::*;

use super::render::{glyph_safe, label_num, legend_labels, load_font, Breaks, Frame, Ramp, FIG_W};
use crate::error::{Error, Result};

/// A zone polygon in lon/lat with its name and value.
pub(crate) struct ZoneShape {
    /// The zone's name, drawn on the map.
    pub name: String,
    /// Rings (exterior and holes) of every part.
    pub rings: Vec<Vec<(f64, f64)>>,
    /// The value that colours the zone (in the chart's unit).
    pub value: f64,
}

/// A choropleth of `zones` (lon/lat) coloured by value, with names, zone outlines,
/// coordinate ticks, scale bar, north arrow and a legend with units.
pub(crate) fn choropleth(
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
    // A margin of 3 % around the zones, and the map's aspect (degrees of longitude shrink by
    // cos(latitude)).
    let (dx, dy) = ((x1 - x0) * 0.03, (y1 - y0) * 0.03);
    let (x0, x1, y0, y1) = (x0 - dx, x1 + dx, y0 - dy, y1 + dy);
    let k = ((y0 + y1) / 2.0).to_radians().cos().max(0.1);
    let (lm, top) = (90i32, 50i32);
    let mut plot_w = FIG_W as i32 - lm - 30;
    let mut plot_h = (((y1 - y0) / ((x1 - x0) * k)) * plot_w as f64) as i32;
    if plot_h > 620 {
        plot_w = (plot_w as f64 * 620.0 / plot_h as f64) as i32;
        plot_h = 620;
    }
    let h = (top + plot_h + 40 + 40 + 40) as u32;
    let frame = Frame {
        x0: lm,
        y0: top,
        w: plot_w,
        h: plot_h,
        extent: (x0, x1, y0, y1),
        geographic: true,
        metres_per_unit: 1.0,
    };
    let values: Vec<f64> = zones.iter().map(|z| z.value).collect();
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |a, v| {
            (a.0.min(*v), a.1.max(*v))
        });
    let lo = lo.min(0.0);
    let hi = if hi > lo { hi } else { lo + 1.0 };
    let br = Breaks {
        lo,
        hi,
        clipped_low: false,
        clipped_high: false,
    };
    let path = out.to_path_buf();
    let root = BitMapBackend::new(&path, (FIG_W, h)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| err(x.to_string()))?;
    root.draw_text(
        &glyph_safe(title),
        &("sans-serif", 24).into_text_style(&root),
        (20, 12),
    )
    .map_err(|x| err(x.to_string()))?;
    let px = |r: &[(f64, f64)]| -> Vec<(i32, i32)> {
        r.iter().map(|(x, y)| frame.to_px(*x, *y)).collect()
    };
    for z in zones {
        let c = ramp.at((z.value - lo) / (hi - lo));
        // Exterior first, holes over it in white (the ring order of every part).
        for (i, ring) in z.rings.iter().enumerate() {
            let fill = if i == 0 || is_exterior(ring, &z.rings[0]) {
                RGBColor(c[0], c[1], c[2])
            } else {
                WHITE
            };
            root.draw(&Polygon::new(px(ring), fill.filled()))
                .map_err(|x| err(x.to_string()))?;
        }
    }
    for z in zones {
        for ring in &z.rings {
            root.draw(&PathElement::new(px(ring), BLACK.stroke_width(1)))
                .map_err(|x| err(x.to_string()))?;
        }
    }
    let name_style = ("sans-serif", 15).into_text_style(&root);
    for z in zones {
        let ext = z.rings.first().map(|r| r.as_slice()).unwrap_or(&[]);
        if ext.is_empty() {
            continue;
        }
        let cx = ext.iter().map(|p| p.0).sum::<f64>() / ext.len() as f64;
        let cy = ext.iter().map(|p| p.1).sum::<f64>() / ext.len() as f64;
        let (qx, qy) = frame.to_px(cx, cy);
        let (w, th) = root
            .estimate_text_size(&z.name, &name_style)
            .unwrap_or((60, 14));
        let (w, th) = (w as i32, th as i32);
        root.draw(&Rectangle::new(
            [(qx - w / 2 - 3, qy - 2), (qx + w / 2 + 3, qy + th + 2)],
            WHITE.mix(0.7).filled(),
        ))
        .map_err(|x| err(x.to_string()))?;
        root.draw_text(&z.name, &name_style, (qx - w / 2, qy))
            .map_err(|x| err(x.to_string()))?;
    }
    frame.draw(&root).map_err(&err)?;
    let ly = top + plot_h + 40;
    for i in 0..400 {
        let c = ramp.at(i as f64 / 399.0);
        root.draw(&Rectangle::new(
            [(40 + i, ly), (41 + i, ly + 16)],
            RGBColor(c[0], c[1], c[2]).filled(),
        ))
        .map_err(|x| err(x.to_string()))?;
    }
    let st = ("sans-serif", 15).into_text_style(&root);
    for (i, t) in legend_labels(&br, 4).iter().enumerate() {
        let (w, _) = root.estimate_text_size(t, &st).unwrap_or((30, 12));
        root.draw_text(t, &st, (40 + i as i32 * 100 - w as i32 / 2, ly + 20))
            .map_err(|x| err(x.to_string()))?;
    }
    root.draw_text(&glyph_safe(unit), &st, (460, ly))
        .map_err(|x| err(x.to_string()))?;
    root.present().map_err(|x| err(x.to_string()))
}

/// Whether `ring` is an exterior ring (same orientation as the first ring of its polygon is
/// not known across parts, so: a ring is a hole when its first point lies inside `first`).
fn is_exterior(ring: &[(f64, f64)], first: &[(f64, f64)]) -> bool {
    let Some(&(px, py)) = ring.first() else {
        return true;
    };
    // Even–odd point-in-polygon test.
    let mut inside = false;
    let n = first.len();
    for i in 0..n {
        let (xi, yi) = first[i];
        let (xj, yj) = first[(i + n - 1) % n];
        if (yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi {
            inside = !inside;
        }
    }
    !inside
}

/// A named line with an optional band.
pub(crate) struct Line {
    /// Name in the legend.
    pub name: String,
    /// The (x, y) points, in drawing order.
    pub points: Vec<(f64, f64)>,
    /// A shaded band as (x, low, high), e.g. the p05–p95 band of a projection.
    pub band: Option<Vec<(f64, f64, f64)>>,
    /// Colour of the line, markers and band.
    pub color: RGBColor,
    /// Draw the points as markers (observations) instead of a line.
    pub markers: bool,
}

/// A line chart with optional p05–p95 bands, marker series and a legend.
pub(crate) fn line_chart(
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
        .caption(glyph_safe(title), ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(x0..x1.max(x0 + 1.0), y0..y1 * 1.05)
        .map_err(|x| err(x.to_string()))?;
    chart
        .configure_mesh()
        .x_desc(glyph_safe(x_label))
        .y_desc(glyph_safe(y_label))
        .axis_desc_style(("sans-serif", 15))
        .label_style(("sans-serif", 14))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| label_num(*y))
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
            .label(glyph_safe(&l.name))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(|x| err(x.to_string()))?;
    root.present().map_err(|x| err(x.to_string()))
}

/// Grouped bar chart: per zone, one bar per series. The y axis starts at 0 (or the lowest
/// negative value) with labelled ticks; zone names sit under the plot, rotated; the legend
/// sits above the plot, never over a bar.
pub(crate) fn bar_chart(
    out: &Path,
    title: &str,
    y_label: &str,
    names: &[String],
    series: &[(&str, Vec<f64>, RGBColor)],
) -> Result<()> {
    load_font()?;
    let err = super::render::err(out);
    let n = names.len().max(1);
    let vals = series
        .iter()
        .flat_map(|s| s.1.iter())
        .copied()
        .filter(|v| v.is_finite());
    let (ymin, ymax) = vals.fold((0.0f64, 0.0f64), |a, v| (a.0.min(v), a.1.max(v)));
    let ymax = if ymax > ymin { ymax } else { ymin + 1.0 };
    let longest = names
        .iter()
        .map(|s| {
            s.chars()
                .map(|c| if c.is_ascii() { 1 } else { 2 })
                .sum::<usize>()
        })
        .max()
        .unwrap_or(4)
        .min(30);
    let label_h = (longest as u32 * 9 + 16).max(40);
    let h = 440 + label_h;
    let path = out.to_path_buf();
    let root = BitMapBackend::new(&path, (FIG_W, h)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| err(x.to_string()))?;
    root.draw_text(
        &glyph_safe(title),
        &("sans-serif", 22).into_text_style(&root),
        (20, 12),
    )
    .map_err(|x| err(x.to_string()))?;
    // Legend in a row above the plot.
    let lst = ("sans-serif", 15).into_text_style(&root);
    let mut lx = 100;
    for (name, _, c) in series {
        root.draw(&Rectangle::new([(lx, 44), (lx + 14, 58)], c.filled()))
            .map_err(|x| err(x.to_string()))?;
        root.draw_text(name, &lst, (lx + 20, 44))
            .map_err(|x| err(x.to_string()))?;
        lx += 40
            + root
                .estimate_text_size(name, &lst)
                .map(|s| s.0 as i32)
                .unwrap_or(100);
    }
    let (_, body) = root.split_vertically(66);
    let mut chart = ChartBuilder::on(&body)
        .margin_left(15)
        .margin_right(20)
        .margin_top(5)
        .x_label_area_size(label_h)
        .y_label_area_size(90)
        .build_cartesian_2d(0f64..n as f64, ymin * 1.05..ymax * 1.08)
        .map_err(|x| err(x.to_string()))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_labels(8)
        .y_desc(glyph_safe(y_label))
        .y_label_formatter(&|y| label_num(*y))
        .axis_desc_style(("sans-serif", 15))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|x| err(x.to_string()))?;
    let k = series.len().max(1) as f64;
    for (si, (_, vals, color)) in series.iter().enumerate() {
        let c = *color;
        chart
            .draw_series(vals.iter().enumerate().map(|(i, v)| {
                let x = i as f64 + 0.1 + 0.8 * si as f64 / k;
                Rectangle::new([(x, 0.0), (x + 0.8 / k, *v)], c.filled())
            }))
            .map_err(|x| err(x.to_string()))?;
    }
    // Zone names under the axis, rotated, in the label area (outside the plot).
    let label_style = ("sans-serif", 15)
        .into_font()
        .transform(FontTransform::Rotate90)
        .color(&BLACK);
    let base = chart.backend_coord(&(0.0, ymin * 1.05));
    for (i, name) in names.iter().enumerate() {
        let short: String = name.chars().take(30).collect();
        let (px, _) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
        root.draw_text(
            &short,
            &label_style.clone().into_text_style(&root),
            (px + 8, base.1 + 6),
        )
        .map_err(|x| err(x.to_string()))?;
    }
    root.present().map_err(|x| err(x.to_string()))
}
