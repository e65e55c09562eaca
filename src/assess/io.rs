//! The GDAL edge of the assessment: reading reference points and plots (any OGR vector
//! format, or CSV with coordinate columns and a CRS), placing them on the reference grid,
//! and one pass over the rasters for mapped areas and class mean densities.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gdal::spatial_ref::{CoordTransform, SpatialRef};
use gdal::vector::LayerAccess;

use crate::error::{Error, Result};
use crate::grid::{Grid, Window};
use crate::raster::{Layer, LayerKind};
use crate::zones::{field_text, open_layer, open_vector, traditional, OpenLayer, ZoneSet};

/// Where to read points (or plots) from.
#[derive(Debug, Clone)]
pub struct PointSource {
    /// The file: any OGR vector format, or CSV (by its `.csv` extension).
    pub path: PathBuf,
    /// OGR layer name (default: the first layer).
    pub layer: Option<String>,
    /// CSV only: the columns holding the coordinates (default: x/y, lon/lat or longitude/latitude).
    pub x_field: Option<String>,
    /// CSV only: the column of the y coordinate (see `x_field`).
    pub y_field: Option<String>,
    /// CSV only: the CRS of the coordinates (any definition GDAL accepts; default EPSG:4326,
    /// longitude first).
    pub crs: String,
}

/// One feature placed on the grid.
#[derive(Debug, Clone)]
pub(crate) struct GridPoint {
    /// Where it came from, for messages: "line 7" or "feature 6".
    pub label: String,
    /// Coordinates in the grid's CRS: x.
    pub x: f64,
    /// y in the grid's CRS.
    pub y: f64,
    /// Pixel column (fractional) on the grid.
    pub col_f: f64,
    /// Pixel row (fractional) on the grid.
    pub row_f: f64,
    /// The requested fields, in order (None: empty).
    pub fields: Vec<Option<String>>,
}

impl GridPoint {
    /// The pixel holding the point, or None outside the grid.
    pub fn pixel(&self, grid: &Grid) -> Option<(usize, usize)> {
        let (c, r) = (self.col_f.floor(), self.row_f.floor());
        if c < 0.0 || r < 0.0 || c >= grid.width as f64 || r >= grid.height as f64 {
            return None;
        }
        Some((c as usize, r as usize))
    }
}

fn is_csv(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

fn to_grid_transform(label: &Path, srs: SpatialRef, grid: &Grid) -> Result<CoordTransform> {
    let dst = SpatialRef::from_wkt(&grid.crs_wkt).map_err(|e| Error::vector(label, e))?;
    CoordTransform::new(&traditional(srs), &traditional(dst))
        .map_err(|e| Error::vector(label, format!("cannot transform to the grid's CRS: {e}")))
}

/// Reads the points of `src`, transforms them to the grid's CRS and returns them with the
/// text of `fields` (every field must exist; values may be empty).
pub(crate) fn read_points(
    src: &PointSource,
    grid: &Grid,
    fields: &[&str],
) -> Result<Vec<GridPoint>> {
    let path = &src.path;
    if !path.exists() {
        return Err(Error::vector(path, "file not found"));
    }
    let (mut raw, srs) = if is_csv(path) {
        read_csv_points(src, fields)?
    } else {
        read_ogr_points(src, fields)?
    };
    if raw.is_empty() {
        return Err(Error::vector(path, "no points in the file"));
    }
    let t = to_grid_transform(path, srs, grid)?;
    let mut xs: Vec<f64> = raw.iter().map(|p| p.x).collect();
    let mut ys: Vec<f64> = raw.iter().map(|p| p.y).collect();
    let mut zs = vec![0.0; xs.len()];
    t.transform_coords(&mut xs, &mut ys, &mut zs)
        .map_err(|e| Error::vector(path, format!("cannot transform the points: {e}")))?;
    let gt = grid.geo_transform;
    for (p, (x, y)) in raw.iter_mut().zip(xs.into_iter().zip(ys)) {
        if !x.is_finite() || !y.is_finite() {
            return Err(Error::vector(
                path,
                format!(
                    "{}: the point cannot be transformed to the grid's CRS",
                    p.label
                ),
            ));
        }
        p.x = x;
        p.y = y;
        p.col_f = (x - gt[0]) / gt[1];
        p.row_f = (y - gt[3]) / gt[5];
    }
    Ok(raw)
}

fn read_csv_points(src: &PointSource, fields: &[&str]) -> Result<(Vec<GridPoint>, SpatialRef)> {
    let path = &src.path;
    let srs = SpatialRef::from_definition(&src.crs)
        .map_err(|e| Error::vector(path, format!("unknown CRS '{}': {e}", src.crs)))?;
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    // Line numbers from byte offsets: the csv crate's own count is off with CRLF files.
    let newlines: Vec<u64> = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i as u64)
        .collect();
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes.as_slice());
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| Error::vector(path, e))?
        .iter()
        .map(str::to_string)
        .collect();
    let find = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let pick = |given: &Option<String>, defaults: &[&str]| -> Result<usize> {
        match given {
            Some(n) => find(n).ok_or_else(|| {
                Error::vector(
                    path,
                    format!("no column '{n}' (columns: {})", headers.join(", ")),
                )
            }),
            None => defaults.iter().find_map(|d| find(d)).ok_or_else(|| {
                Error::vector(
                    path,
                    format!(
                        "no coordinate column: expected one of {} (or name it with --x-field/--y-field); columns: {}",
                        defaults.join(", "),
                        headers.join(", ")
                    ),
                )
            }),
        }
    };
    let xi = pick(&src.x_field, &["x", "lon", "longitude", "easting"])?;
    let yi = pick(&src.y_field, &["y", "lat", "latitude", "northing"])?;
    let idx: Vec<usize> = fields
        .iter()
        .map(|f| {
            find(f).ok_or_else(|| {
                Error::vector(
                    path,
                    format!("no column '{f}' (columns: {})", headers.join(", ")),
                )
            })
        })
        .collect::<Result<_>>()?;
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| Error::vector(path, e))?;
        let byte = rec.position().map_or(0, |p| p.byte());
        let line = 1 + newlines.partition_point(|&n| n <= byte);
        let label = format!("line {line}");
        let num = |i: usize, what: &str| -> Result<f64> {
            let t = rec.get(i).unwrap_or("");
            t.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    Error::vector(path, format!("{label}: {what} '{t}' is not a number"))
                })
        };
        let x = num(xi, &headers[xi])?;
        let y = num(yi, &headers[yi])?;
        let fields = idx
            .iter()
            .map(|&i| rec.get(i).filter(|s| !s.is_empty()).map(str::to_string))
            .collect();
        out.push(GridPoint {
            label,
            x,
            y,
            col_f: 0.0,
            row_f: 0.0,
            fields,
        });
    }
    Ok((out, srs))
}

fn read_ogr_points(src: &PointSource, fields: &[&str]) -> Result<(Vec<GridPoint>, SpatialRef)> {
    let path = &src.path;
    let ds = open_vector(path)?;
    let opened = open_layer(&ds, path, src.layer.as_deref())?;
    let idx: Vec<usize> = fields
        .iter()
        .map(|f| opened.field(path, f, true))
        .collect::<Result<_>>()?;
    let OpenLayer {
        mut layer,
        name: lname,
        srs,
        ..
    } = opened;
    let mut out = Vec::new();
    for (n, f) in layer.features().enumerate() {
        let label = format!("layer '{lname}', feature {n}");
        let g = f
            .geometry()
            .ok_or_else(|| Error::vector(path, format!("{label}: no geometry")))?;
        let t = gdal::vector::geometry_type_flatten(g.geometry_type());
        if t != gdal::vector::OGRwkbGeometryType::wkbPoint {
            return Err(Error::vector(
                path,
                format!(
                    "{label}: a {} where a point was expected",
                    g.geometry_name()
                ),
            ));
        }
        let (x, y, _) = g.get_point(0);
        let fields = idx
            .iter()
            .map(|&i| {
                f.field(i)
                    .map(field_text)
                    .map_err(|e| Error::vector(path, format!("{label}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .map(|v| v.filter(|s| !s.trim().is_empty()))
            .collect();
        out.push(GridPoint {
            label,
            x,
            y,
            col_f: 0.0,
            row_f: 0.0,
            fields,
        });
    }
    Ok((out, srs))
}

/// Categorical value of `layer` at one pixel (None: no data).
pub(crate) fn code_at(layer: &Layer, col: usize, row: usize) -> Result<Option<i32>> {
    let mut v = Vec::new();
    layer.read_codes(
        Window {
            col,
            row,
            width: 1,
            height: 1,
        },
        &mut v,
    )?;
    Ok(v.first().copied().flatten())
}

/// Zone of a pixel: the zone covering most of it (None: outside every zone).
pub(crate) fn zone_at(zones: &ZoneSet, grid: &Grid, col: usize, row: usize) -> Option<usize> {
    let w = Window {
        col,
        row,
        width: 1,
        height: 1,
    };
    zones
        .block_coverage(grid, w)
        .into_iter()
        .map(|(z, c)| (z, c.at(0)))
        .filter(|(_, f)| *f > 0.5)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(z, _)| z)
}

/// Per (region slot, key) sums of area and optional map values.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sums {
    /// Area of the pixels (ha), by the grid's pixel areas.
    pub area_ha: f64,
    /// Σ area × value of each value layer, over pixels where it has data.
    pub weighted: Vec<f64>,
    /// Area where each value layer has data.
    pub covered_ha: Vec<f64>,
}

/// Result of one raster pass: sums per region slot (0 = whole grid, 1 + z = zone z) and
/// per categorical key (e.g. land-cover code), plus areas per stratum code when a strata
/// layer is given.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pass {
    /// `[region slot]` → land-cover code → sums, in code order (a total over the codes is
    /// summed in the same order in every process: the same bits).
    pub by_class: Vec<BTreeMap<i32, Sums>>,
    /// `[region slot]` → strata code → area (ha); the maps are empty without a strata layer.
    pub by_stratum: Vec<BTreeMap<i32, f64>>,
}

/// One pass over the grid: the land-cover (`classes`) codes, optional `strata` codes and
/// `values` layers (e.g. the stock and sink maps), split by `zones`.
pub(crate) fn raster_pass(
    grid: &Grid,
    classes: &Layer,
    strata: Option<&Layer>,
    values: &[&Layer],
    zones: Option<&ZoneSet>,
) -> Result<Pass> {
    let slots = 1 + zones.map_or(0, |z| z.zones.len());
    let nv = values.len();
    let mut pass = Pass {
        by_class: vec![BTreeMap::new(); slots],
        by_stratum: vec![BTreeMap::new(); slots],
    };
    let row_area = grid.row_areas_ha();
    let (mut codes, mut scodes) = (Vec::new(), Vec::new());
    let mut vals: Vec<Vec<Option<f64>>> = vec![Vec::new(); nv];
    for w in grid.windows(512, 0..grid.height) {
        classes.read_codes(w, &mut codes)?;
        if let Some(s) = strata {
            s.read_codes(w, &mut scodes)?;
        }
        for (l, v) in values.iter().zip(vals.iter_mut()) {
            l.read_values(w, v)?;
        }
        let cov = zones.map(|z| z.block_coverage(grid, w)).unwrap_or_default();
        for i in 0..w.len() {
            let Some(code) = codes[i] else { continue };
            let a = row_area[w.row + i / w.width];
            let mut add = |slot: usize, frac: f64| {
                let s = pass.by_class[slot].entry(code).or_insert_with(|| Sums {
                    area_ha: 0.0,
                    weighted: vec![0.0; nv],
                    covered_ha: vec![0.0; nv],
                });
                s.area_ha += a * frac;
                for (k, v) in vals.iter().enumerate() {
                    if let Some(x) = v[i] {
                        s.weighted[k] += a * frac * x;
                        s.covered_ha[k] += a * frac;
                    }
                }
                if strata.is_some() {
                    if let Some(sc) = scodes[i] {
                        *pass.by_stratum[slot].entry(sc).or_insert(0.0) += a * frac;
                    }
                }
            };
            add(0, 1.0);
            for (z, c) in &cov {
                let f = c.at(i);
                if f > 0.0 {
                    add(1 + z, f);
                }
            }
        }
    }
    Ok(pass)
}

/// Opens a categorical layer aligned to the grid.
pub(crate) fn open_categorical(path: &Path, grid: &Grid) -> Result<Layer> {
    Layer::open(path, 1, LayerKind::Categorical, grid, &[])
}

/// Opens a continuous layer aligned to the grid.
pub(crate) fn open_continuous(path: &Path, grid: &Grid) -> Result<Layer> {
    Layer::open(path, 1, LayerKind::Continuous, grid, &[])
}

/// The scheme's label of a land-cover code ("code N" when the scheme lacks it).
pub(crate) fn class_label(scheme: &crate::model::scheme::Scheme, code: i32) -> String {
    scheme
        .codes
        .iter()
        .find(|c| c.value == code)
        .map_or(format!("code {code}"), |c| c.label.clone())
}
