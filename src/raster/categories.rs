//! Self-describing class maps: a GDAL colour table, category names and a raster attribute
//! table (value, name, colour, area_ha) on a coded (Byte) output, so that GIS software shows
//! the classes by name and colour without sinkmap's own metadata.
//!
//! The colour table lives in the GeoTIFF itself; GDAL keeps category names and the attribute
//! table in the `.aux.xml` file beside it (the writer renames both together).

use std::ffi::CString;

use gdal_sys::{GDALRATFieldType, GDALRATFieldUsage};

/// One class of a coded map.
#[derive(Debug, Clone, PartialEq)]
pub struct Category {
    /// Pixel value.
    pub code: u8,
    /// Class name.
    pub name: String,
    /// Colour.
    pub rgb: [u8; 3],
}

/// The colour of the `i`-th category of a legend (in legend order): the report's categorical
/// palette, so that the map, its style and the report's PNG agree.
pub fn legend_colour(i: usize) -> [u8; 3] {
    let p = &crate::report::render::CATEGORIES;
    p[i % p.len()]
}

/// The categories of a `code=name;code=name` legend (the `SINKMAP_LEGEND` metadata item),
/// coloured in legend order with [`legend_colour`]. Entries that are not `byte=name` are skipped.
pub fn from_legend(legend: &str) -> Vec<Category> {
    legend
        .split(';')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.trim().parse::<u8>().ok()?, v.trim().to_string()))
        })
        .enumerate()
        .map(|(i, (code, name))| Category {
            code,
            name,
            rgb: legend_colour(i),
        })
        .collect()
}

/// `#rrggbb`.
pub fn hex(rgb: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2])
}

/// Names of the raster attribute table's columns, in order.
pub const RAT_COLUMNS: [&str; 8] = [
    "value", "name", "colour", "red", "green", "blue", "alpha", "area_ha",
];

/// Per-code pixel areas of a map being written (row areas of its grid, in ha).
#[derive(Debug, Clone)]
pub struct AreaTally {
    row_areas_ha: Vec<f64>,
    area_ha: Vec<f64>,
}

impl AreaTally {
    /// An empty tally for a grid whose rows have these pixel areas (ha).
    pub fn new(row_areas_ha: Vec<f64>) -> AreaTally {
        AreaTally {
            row_areas_ha,
            area_ha: vec![0.0; 256],
        }
    }

    /// Adds the codes of a `width`-wide window whose first row is map row `row0`.
    pub fn add(&mut self, row0: usize, width: usize, codes: impl Iterator<Item = u8>) {
        let mut counts = [0u64; 256];
        let flush = |counts: &mut [u64; 256], row: usize, area: &mut Vec<f64>| {
            let a = self.row_areas_ha.get(row).copied().unwrap_or(0.0);
            for (c, n) in counts.iter_mut().enumerate() {
                if *n > 0 {
                    area[c] += *n as f64 * a;
                    *n = 0;
                }
            }
        };
        if width == 0 {
            return;
        }
        // Counted along the row, without a division per pixel.
        let (mut row, mut in_row) = (row0, 0usize);
        for c in codes {
            counts[c as usize] += 1;
            in_row += 1;
            if in_row == width {
                flush(&mut counts, row, &mut self.area_ha);
                row += 1;
                in_row = 0;
            }
        }
        if in_row != 0 {
            flush(&mut counts, row, &mut self.area_ha);
        }
    }

    /// Area (ha) of the pixels with `code`.
    pub fn area_ha(&self, code: u8) -> f64 {
        self.area_ha[code as usize]
    }
}

/// Sets the colour table of `band` (palette interpretation). `nodata` and codes that are no
/// category get transparent entries. A GeoTIFF refuses to change its photometric tag once a
/// tile has been written, so this is called when the map is created, before any block.
pub fn set_palette(
    band: &mut gdal::raster::RasterBand,
    cats: &[Category],
    nodata: Option<u8>,
) -> std::result::Result<(), String> {
    let mut table = gdal::raster::ColorTable::new(gdal::raster::PaletteInterpretation::Rgba);
    let max_code = cats.iter().map(|c| c.code).chain(nodata).max().unwrap_or(0);
    for code in 0..=max_code {
        let entry = match cats.iter().find(|c| c.code == code) {
            Some(c) => gdal::raster::ColorEntry::rgba(
                c.rgb[0] as i16,
                c.rgb[1] as i16,
                c.rgb[2] as i16,
                255,
            ),
            None => gdal::raster::ColorEntry::rgba(0, 0, 0, 0),
        };
        table.set_color_entry(code as u16, &entry);
    }
    band.set_color_table(&table);
    band.set_color_interpretation(gdal::raster::ColorInterpretation::PaletteIndex)
        .map_err(|e| e.to_string())
}

/// Sets the category names and the raster attribute table (value, name, colour, area_ha) of
/// `band`; both live in GDAL's auxiliary metadata, so this may come after the pixels.
pub fn describe(
    band: &mut gdal::raster::RasterBand,
    cats: &[Category],
    tally: &AreaTally,
) -> std::result::Result<(), String> {
    // Names up to the highest class (GDAL lists every index up to the last name).
    let last_class = cats.iter().map(|c| c.code).max().unwrap_or(0);
    let mut names: Vec<String> = vec![String::new(); last_class as usize + 1];
    for c in cats {
        names[c.code as usize].clone_from(&c.name);
    }
    let c_names: Vec<CString> = names
        .iter()
        .map(|n| CString::new(n.replace('\0', "")).unwrap_or_default())
        .collect();
    let mut ptrs: Vec<*mut std::os::raw::c_char> =
        c_names.iter().map(|n| n.as_ptr() as *mut _).collect();
    ptrs.push(std::ptr::null_mut());
    let h = unsafe { band.c_rasterband() };
    unsafe {
        if gdal_sys::GDALSetRasterCategoryNames(h, ptrs.as_mut_ptr()) != gdal_sys::CPLErr::CE_None {
            return Err("GDAL could not set the category names".into());
        }
        let rat = gdal_sys::GDALCreateRasterAttributeTable();
        gdal_sys::GDALRATSetTableType(rat, gdal_sys::GDALRATTableType::GRTT_THEMATIC);
        let col = |name: &str, t: GDALRATFieldType::Type, u: GDALRATFieldUsage::Type| {
            let n = CString::new(name).unwrap_or_default();
            gdal_sys::GDALRATCreateColumn(rat, n.as_ptr(), t, u);
        };
        use GDALRATFieldType::{GFT_Integer, GFT_Real, GFT_String};
        use GDALRATFieldUsage::*;
        col(RAT_COLUMNS[0], GFT_Integer, GFU_MinMax);
        col(RAT_COLUMNS[1], GFT_String, GFU_Name);
        col(RAT_COLUMNS[2], GFT_String, GFU_Generic);
        col(RAT_COLUMNS[3], GFT_Integer, GFU_Red);
        col(RAT_COLUMNS[4], GFT_Integer, GFU_Green);
        col(RAT_COLUMNS[5], GFT_Integer, GFU_Blue);
        col(RAT_COLUMNS[6], GFT_Integer, GFU_Alpha);
        col(RAT_COLUMNS[7], GFT_Real, GFU_Generic);
        gdal_sys::GDALRATSetRowCount(rat, cats.len() as i32);
        for (row, c) in cats.iter().enumerate() {
            let r = row as i32;
            let name = CString::new(c.name.replace('\0', "")).unwrap_or_default();
            let colour = CString::new(hex(c.rgb)).unwrap_or_default();
            gdal_sys::GDALRATSetValueAsInt(rat, r, 0, c.code as i32);
            gdal_sys::GDALRATSetValueAsString(rat, r, 1, name.as_ptr());
            gdal_sys::GDALRATSetValueAsString(rat, r, 2, colour.as_ptr());
            for k in 0..3 {
                gdal_sys::GDALRATSetValueAsInt(rat, r, 3 + k as i32, c.rgb[k] as i32);
            }
            gdal_sys::GDALRATSetValueAsInt(rat, r, 6, 255);
            gdal_sys::GDALRATSetValueAsDouble(rat, r, 7, tally.area_ha(c.code));
        }
        let ok = gdal_sys::GDALSetDefaultRAT(h, rat);
        gdal_sys::GDALDestroyRasterAttributeTable(rat);
        if ok != gdal_sys::CPLErr::CE_None {
            return Err("GDAL could not set the raster attribute table".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legend_parses_in_order_with_palette_colours() {
        let c = from_legend("0=none;3=grazing exclusion;bad;7=x=y;300=too big");
        assert_eq!(c.len(), 3);
        assert_eq!((c[0].code, c[0].name.as_str()), (0, "none"));
        assert_eq!((c[1].code, c[1].name.as_str()), (3, "grazing exclusion"));
        assert_eq!((c[2].code, c[2].name.as_str()), (7, "x=y"));
        assert_eq!(c[1].rgb, crate::report::render::CATEGORIES[1]);
        assert_eq!(hex([255, 0, 16]), "#ff0010");
    }

    #[test]
    fn tally_weights_each_row_by_its_own_area() {
        // Rows of 1, 2 and 3 ha; a 2-wide window over rows 1..3 (map rows), then a partial one.
        let mut t = AreaTally::new(vec![1.0, 2.0, 3.0]);
        t.add(1, 2, [5u8, 5, 5, 9].into_iter());
        assert_eq!(t.area_ha(5), 2.0 * 2.0 + 3.0);
        assert_eq!(t.area_ha(9), 3.0);
        t.add(0, 2, [9u8].into_iter());
        assert_eq!(t.area_ha(9), 4.0);
        assert_eq!(t.area_ha(0), 0.0);
    }
}
