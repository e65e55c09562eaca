//! The OGR edge of the zones: polygon layers read into the grid's pixel space, inline WKT
//! polygons, and the per-zone tables written as CSV and GeoJSON.

use std::path::{Path, PathBuf};

use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
use gdal::vector::{
    FieldValue, Geometry, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType,
};
use gdal::{Dataset, DriverManager};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::RTree;

use super::{Zone, ZoneSet, ZoneSource, ZoneTable};
use crate::config::Models;
use crate::coverage::ring_edges;
use crate::cube::{Cube, OUTSIDE_ZONE};
use crate::error::{Error, Result};
use crate::grid::Grid;
use crate::io::temp::{temp_path, TempFile};

pub(crate) fn traditional(mut srs: SpatialRef) -> SpatialRef {
    srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    srs
}

/// An OGR layer opened for reading: the layer, its name, CRS and field names.
pub(crate) struct OpenLayer<'a> {
    pub layer: gdal::vector::Layer<'a>,
    pub name: String,
    pub srs: SpatialRef,
    pub fields: Vec<String>,
}

/// Opens a vector file (any OGR format); the error names the file.
pub(crate) fn open_vector(path: &Path) -> Result<Dataset> {
    Dataset::open(path)
        .map_err(|e| Error::vector(path, crate::limits::gdal_open_failure("vector layer", &e)))
}

/// The layer `name` of `ds` (else its first), which must have a CRS; errors name the file.
pub(crate) fn open_layer<'a>(
    ds: &'a Dataset,
    path: &Path,
    name: Option<&str>,
) -> Result<OpenLayer<'a>> {
    let layer = match name {
        Some(name) => ds
            .layer_by_name(name)
            .map_err(|_| Error::vector(path, format!("no layer named '{name}'")))?,
        None => ds
            .layer(0)
            .map_err(|_| Error::vector(path, "the file has no layer"))?,
    };
    let lname = layer.name();
    let srs = layer.spatial_ref().ok_or_else(|| {
        Error::vector(
            path,
            format!("layer '{lname}' has no CRS; assign one (e.g. ogr2ogr -a_srs EPSG:4326)"),
        )
    })?;
    let fields: Vec<String> = layer.defn().fields().map(|f| f.name()).collect();
    if fields.is_empty() && layer.feature_count() == 0 {
        return Err(Error::vector(
            path,
            format!("layer '{lname}' is empty: no features and no fields (give a layer with the polygons or points)"),
        ));
    }
    Ok(OpenLayer {
        layer,
        name: lname,
        srs,
        fields,
    })
}

impl OpenLayer<'_> {
    /// Index of field `f` (ASCII case ignored when `any_case`); the error lists the fields.
    pub fn field(&self, path: &Path, f: &str, any_case: bool) -> Result<usize> {
        self.fields
            .iter()
            .position(|n| n == f || any_case && n.eq_ignore_ascii_case(f))
            .ok_or_else(|| {
                Error::vector(
                    path,
                    format!(
                        "layer '{}' has no field '{f}' (fields: {})",
                        self.name,
                        self.fields.join(", ")
                    ),
                )
            })
    }
}

pub(crate) fn field_text(v: Option<FieldValue>) -> Option<String> {
    match v? {
        FieldValue::StringValue(s) => Some(s),
        FieldValue::IntegerValue(i) => Some(i.to_string()),
        FieldValue::Integer64Value(i) => Some(i.to_string()),
        FieldValue::RealValue(r) => Some(r.to_string()),
        other => other.into_string(),
    }
}

/// A ring: (is it an exterior ring?, its points).
type Ring = (bool, Vec<(f64, f64)>);

/// Rings of a (multi)polygon.
fn rings_of(g: &Geometry) -> std::result::Result<Vec<Ring>, String> {
    let t = gdal::vector::geometry_type_flatten(g.geometry_type());
    let mut out = Vec::new();
    let mut polygon = |p: &Geometry| {
        for i in 0..p.geometry_count() {
            let ring = p.get_geometry(i);
            let mut pts = Vec::new();
            ring.get_points(&mut pts);
            out.push((i == 0, pts.into_iter().map(|(x, y, _)| (x, y)).collect()));
        }
    };
    match t {
        OGRwkbGeometryType::wkbPolygon => polygon(g),
        OGRwkbGeometryType::wkbMultiPolygon => {
            for i in 0..g.geometry_count() {
                polygon(&g.get_geometry(i));
            }
        }
        _ => {
            return Err(format!(
                "geometry type {} is not a polygon",
                g.geometry_name()
            ))
        }
    }
    Ok(out)
}

/// Coordinate transforms from a layer's CRS, and the grid's geotransform.
struct Transforms<'a> {
    to_grid: &'a CoordTransform,
    to_lonlat: &'a CoordTransform,
    gt: [f64; 6],
}

/// Checks a polygon, repairs it when asked, and turns it into a zone: edges in the grid's
/// pixel space (R-tree), envelope, and WGS84 geometry for the GeoJSON output.
fn prepare_zone(
    path: &Path,
    what: &str,
    mut geom: Geometry,
    id: String,
    name: String,
    t: &Transforms,
    repair: bool,
) -> Result<Zone> {
    if geom.is_empty() {
        return Err(Error::vector(path, format!("{what}: empty geometry")));
    }
    let mut repaired = false;
    if !geom.is_valid() {
        if !repair {
            return Err(Error::vector(
                path,
                format!("{what}: invalid geometry (e.g. self-intersection); fix it or ask for repair (--repair-invalid)"),
            ));
        }
        geom = geom
            .make_valid(&gdal::cpl::CslStringList::new())
            .map_err(|e| Error::vector(path, format!("{what}: repair failed: {e}")))?;
        repaired = true;
    }
    let g_grid = geom
        .transform(t.to_grid)
        .map_err(|e| Error::vector(path, format!("{what}: {e}")))?;
    let rings = rings_of(&g_grid).map_err(|m| Error::vector(path, format!("{what}: {m}")))?;
    let gt = t.gt;
    let mut edges = Vec::new();
    for (exterior, pts) in &rings {
        let px: Vec<(f64, f64)> = pts
            .iter()
            .map(|(x, y)| ((x - gt[0]) / gt[1], (y - gt[3]) / gt[5]))
            .collect();
        ring_edges(&px, !exterior, &mut edges);
    }
    if edges.is_empty() {
        return Err(Error::vector(path, format!("{what}: polygon has no area")));
    }
    let mut env = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    for e in &edges {
        env[0] = env[0].min(e.x0.min(e.x1));
        env[1] = env[1].min(e.y0.min(e.y1));
        env[2] = env[2].max(e.x0.max(e.x1));
        env[3] = env[3].max(e.y0.max(e.y1));
    }
    let edges = RTree::bulk_load(
        edges
            .into_iter()
            .map(|e| GeomWithData::new(Rectangle::from_corners([e.x0, e.y0], [e.x1, e.y1]), e))
            .collect(),
    );
    let wkb_lonlat = geom
        .transform(t.to_lonlat)
        .and_then(|g| g.wkb())
        .map_err(|e| Error::vector(path, format!("{what}: {e}")))?;
    Ok(Zone {
        id,
        name,
        edges,
        envelope: env,
        wkb_lonlat,
        repaired,
    })
}

impl ZoneSet {
    /// Reads the polygons of `src`, reprojects them to `grid`'s CRS and indexes them.
    pub fn read(src: &ZoneSource, grid: &Grid) -> Result<ZoneSet> {
        let path = src.path;
        if !path.exists() {
            crate::limits::check_input_path(path)?;
        }
        let ds = open_vector(path)?;
        let opened = open_layer(&ds, path, src.layer)?;
        // An empty id field numbers the features instead.
        let id_idx = if src.id_field.is_empty() {
            None
        } else {
            Some(opened.field(path, src.id_field, false)?)
        };
        let name_idx = src
            .name_field
            .map(|f| opened.field(path, f, false))
            .transpose()?;
        let OpenLayer {
            mut layer,
            name: lname,
            srs,
            ..
        } = opened;
        let to_grid = CoordTransform::new(
            &traditional(srs.clone()),
            &traditional(SpatialRef::from_wkt(&grid.crs_wkt).map_err(|e| Error::vector(path, e))?),
        )
        .map_err(|e| Error::vector(path, format!("cannot transform to the grid's CRS: {e}")))?;
        let to_lonlat = CoordTransform::new(
            &traditional(srs),
            &traditional(SpatialRef::from_epsg(4326).map_err(|e| Error::vector(path, e))?),
        )
        .map_err(|e| Error::vector(path, format!("cannot transform to WGS84: {e}")))?;
        let gt = grid.geo_transform;
        let mut zones = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (n, feature) in layer.features().enumerate() {
            let id = match id_idx {
                None => n.to_string(),
                Some(idx) => field_text(feature.field(idx).map_err(|e| Error::vector(path, e))?)
                    .ok_or_else(|| {
                        Error::vector(
                            path,
                            format!("feature {n}: field '{}' is empty", src.id_field),
                        )
                    })?,
            };
            let what = format!("layer '{lname}', feature {n} ({}={id})", src.id_field);
            if !seen.insert(id.clone()) {
                return Err(Error::vector(path, format!("{what}: id is not unique")));
            }
            let name = match name_idx {
                Some(i) => field_text(feature.field(i).map_err(|e| Error::vector(path, e))?)
                    .unwrap_or_default(),
                None => id.clone(),
            };
            let geom = feature
                .geometry()
                .ok_or_else(|| Error::vector(path, format!("{what}: no geometry")))?;
            let t = Transforms {
                to_grid: &to_grid,
                to_lonlat: &to_lonlat,
                gt,
            };
            zones.push(prepare_zone(
                path,
                &what,
                geom.clone(),
                id,
                name,
                &t,
                src.repair_invalid,
            )?);
        }
        if zones.is_empty() {
            return Err(Error::vector(
                path,
                format!("layer '{lname}' has no polygons"),
            ));
        }
        Ok(ZoneSet::from_zones(path, zones))
    }

    /// A single zone from a WKT polygon in the CRS `crs` (any definition GDAL accepts, e.g.
    /// `EPSG:4326`, longitude first). `label` names the source in messages.
    pub fn from_wkt(label: &Path, id: &str, wkt: &str, crs: &str, grid: &Grid) -> Result<ZoneSet> {
        let geom = Geometry::from_wkt(wkt)
            .map_err(|e| Error::vector(label, format!("unreadable WKT polygon: {e}")))?;
        let srs = SpatialRef::from_definition(crs)
            .map_err(|e| Error::vector(label, format!("unknown CRS '{crs}': {e}")))?;
        let to_grid = CoordTransform::new(
            &traditional(srs.clone()),
            &traditional(SpatialRef::from_wkt(&grid.crs_wkt).map_err(|e| Error::vector(label, e))?),
        )
        .map_err(|e| Error::vector(label, format!("cannot transform to the grid's CRS: {e}")))?;
        let to_lonlat = CoordTransform::new(
            &traditional(srs),
            &traditional(SpatialRef::from_epsg(4326).map_err(|e| Error::vector(label, e))?),
        )
        .map_err(|e| Error::vector(label, format!("cannot transform to WGS84: {e}")))?;
        let t = Transforms {
            to_grid: &to_grid,
            to_lonlat: &to_lonlat,
            gt: grid.geo_transform,
        };
        let zone = prepare_zone(
            label,
            "inline polygon",
            geom,
            id.to_string(),
            id.to_string(),
            &t,
            false,
        )?;
        Ok(ZoneSet::from_zones(label, vec![zone]))
    }
}

/// Adds a feature with `values` in field order.
pub fn add_feature<L: LayerAccess>(
    layer: &L,
    geom: Geometry,
    values: &[FieldValue],
) -> gdal::errors::Result<()> {
    let mut f = gdal::vector::Feature::new(layer.defn())?;
    f.set_geometry(geom)?;
    for (i, v) in values.iter().enumerate() {
        f.set_field(i, v)?;
    }
    f.create(layer)
}

fn write_zones_geojson(path: &Path, zones: &ZoneSet, t: &ZoneTable) -> Result<()> {
    let columns = t.columns();
    let err = |e: gdal::errors::GdalError| Error::output(path, e);
    let driver = DriverManager::get_driver_by_name("GeoJSON").map_err(err)?;
    let mut ds = driver.create_vector_only(path).map_err(err)?;
    // Longitude first, as RFC 7946 wants: without this GDAL would swap the axes of EPSG:4326.
    let srs = traditional(SpatialRef::from_epsg(4326).map_err(err)?);
    let layer = ds
        .create_layer(LayerOptions {
            name: "zones",
            srs: Some(&srs),
            ty: OGRwkbGeometryType::wkbMultiPolygon,
            options: Some(&["RFC7946=YES", "WRITE_NAME=NO"]),
        })
        .map_err(err)?;
    let mut fields: Vec<(&str, OGRFieldType::Type)> = vec![
        ("zone_id", OGRFieldType::OFTString),
        ("zone_name", OGRFieldType::OFTString),
    ];
    fields.extend(columns.iter().map(|c| (c.as_str(), OGRFieldType::OFTReal)));
    layer.create_defn_fields(&fields).map_err(err)?;
    for (z, row) in zones.zones.iter().zip(&t.rows) {
        let geom = Geometry::from_wkb(&z.wkb_lonlat).map_err(err)?;
        let mut values = vec![
            FieldValue::StringValue(row.zone_id.clone()),
            FieldValue::StringValue(row.zone_name.clone()),
        ];
        values.extend(row.values().into_iter().map(FieldValue::RealValue));
        add_feature(&layer, geom, &values).map_err(err)?;
    }
    ds.close().map_err(err)
}

/// Writes `zones.csv` and `zones.geojson` under temporary names; returns them with their final paths.
pub fn write_zone_tables(
    out_dir: &Path,
    zones: &ZoneSet,
    cube: &Cube,
    models: &Models,
) -> Result<Vec<(TempFile, PathBuf)>> {
    let names: Vec<String> = models
        .restoration
        .as_ref()
        .map(|c| c.interventions.iter().map(|i| i.name.clone()).collect())
        .unwrap_or_default();
    let ids: Vec<(String, String)> = zones
        .zones
        .iter()
        .map(|z| (z.id.clone(), z.name.clone()))
        .chain(std::iter::once((
            OUTSIDE_ZONE.to_string(),
            "outside every zone".to_string(),
        )))
        .collect();
    let table = ZoneTable::from_cube(&ids, cube, &names);
    let csv_tmp = TempFile::new(temp_path(out_dir, "zones.csv", "csv"));
    table
        .write_csv(&csv_tmp.path)
        .map_err(|e| e.at(out_dir.join("zones.csv")))?;
    let gj_tmp = TempFile::new(temp_path(out_dir, "zones.geojson", "geojson"));
    write_zones_geojson(&gj_tmp.path, zones, &table)
        .map_err(|e| e.at(out_dir.join("zones.geojson")))?;
    Ok(vec![
        (csv_tmp, out_dir.join("zones.csv")),
        (gj_tmp, out_dir.join("zones.geojson")),
    ])
}
