//! Two identical map writes give identical file bytes whatever GDAL's block cache evicts:
//! the padding of edge tiles (past the raster's right and bottom edges) must not depend on
//! whether a partly written tile was flushed and read back.
//!
//! In a test binary of its own: it shrinks GDAL's process-wide cache below one tile, which
//! must not happen while other tests write maps in the same process (with a cache smaller
//! than one tile, blocks of other threads' datasets are evicted under their feet).

#![cfg(feature = "gdal")]

use std::path::Path;

use sinkmap::config::{Compression, Layout};
use sinkmap::grid::{AreaModel, Grid};
use sinkmap::raster::categories;
use sinkmap::raster::overview::{Cell, Mode};
use sinkmap::raster::writer::{MapFormat, MapSpec, MapWriter};

fn grid(width: usize, height: usize) -> Grid {
    Grid {
        width,
        height,
        geo_transform: [500_000.0, 30.0, 0.0, 4_800_000.0, 0.0, -30.0],
        crs_wkt: gdal::spatial_ref::SpatialRef::from_epsg(32645)
            .unwrap()
            .to_wkt()
            .unwrap(),
        area: AreaModel::Projected {
            metres_per_unit: 1.0,
        },
    }
}

/// Blocks of 64 px: every overview tile of 512 px is filled by many writes.
fn format() -> MapFormat {
    MapFormat {
        block_px: 64,
        compression: Compression::Zstd,
        layout: Layout::Cog,
        write_threads: 1,
        copy_threads: 1,
    }
}

/// A textured float map with nodata holes.
fn float_value(x: usize, y: usize) -> f32 {
    if (x / 37 + y / 23) % 9 == 4 || (x * 7 + y * 13).is_multiple_of(101) {
        f32::NAN
    } else {
        ((x / 5 * 31 + y / 3 * 17) % 400) as f32 * 0.173 + (x % 3) as f32 * 1e-3
    }
}

fn code_value(x: usize, y: usize) -> u8 {
    if (x / 41 + y / 29) % 7 == 3 {
        255
    } else {
        ((x / 11 + 3 * (y / 7)) % 4) as u8
    }
}

fn spec(name: &str, categorical: bool) -> MapSpec {
    MapSpec {
        file_name: name.into(),
        description: "a test map".into(),
        unit: String::new(),
        categorical,
    }
}

/// Writes `value` over `g` block by block and commits the COG.
fn fill<C: Cell>(mut w: MapWriter<C>, g: &Grid, value: fn(usize, usize) -> C::Value) {
    for win in g.windows(format().block_px, 0..g.height) {
        let data = (0..win.height)
            .flat_map(|r| (0..win.width).map(move |c| value(win.col + c, win.row + r)))
            .collect();
        w.write(win, data).unwrap();
    }
    let (tmp, path) = w.finish().unwrap();
    tmp.commit(&path).unwrap();
}

/// Writes the float and the class map as `{tag}.tif` and `{tag}_codes.tif`, their tiles
/// compressed by GDAL (`gdal_tiles`) or by the writer.
fn write_both(dir: &Path, tag: &str, g: &Grid, gdal_tiles: bool) {
    let mut w =
        MapWriter::create(dir, spec(&format!("{tag}.tif"), false), g, format(), &[]).unwrap();
    if gdal_tiles {
        w = w.with_gdal_tiles();
    }
    fill(w, g, float_value);
    let legend = "0=none;1=a;2=b;3=c";
    let md = vec![("SINKMAP_LEGEND".to_string(), legend.to_string())];
    let w = MapWriter::<Mode<255>>::create_typed(
        dir,
        spec(&format!("{tag}_codes.tif"), true),
        g,
        format(),
        &md,
        255.0,
    )
    .unwrap()
    .with_categories(categories::from_legend(legend), g);
    fill(
        if gdal_tiles { w.with_gdal_tiles() } else { w },
        g,
        code_value,
    );
}

#[test]
fn edge_tiles_have_the_same_bytes_whatever_gdal_caches() {
    // A roomy cache never evicts a tile; one smaller than a tile always does. Both ways of
    // compressing the tiles: by the writer (ZSTD COGs) and by GDAL (the other compressions).
    for gdal_tiles in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let g = grid(1100, 1300);
        write_both(tmp.path(), "roomy", &g, gdal_tiles);
        // SAFETY: a process-wide size, read back and restored; no other test runs in this
        // binary.
        let before = unsafe { gdal_sys::GDALGetCacheMax64() };
        unsafe { gdal_sys::GDALSetCacheMax64(1 << 16) };
        write_both(tmp.path(), "tight", &g, gdal_tiles);
        unsafe { gdal_sys::GDALSetCacheMax64(before) };
        let bytes = |name: &str| std::fs::read(tmp.path().join(name)).unwrap();
        let how = if gdal_tiles {
            "GDAL's tiles"
        } else {
            "own tiles"
        };
        assert!(bytes("roomy.tif") == bytes("tight.tif"), "float map, {how}");
        assert!(
            bytes("roomy_codes.tif") == bytes("tight_codes.tif"),
            "class map, {how}"
        );
        // The maps are the values written (a lost write would also differ from the other
        // file, but both could lose the same one).
        let ds = gdal::Dataset::open(tmp.path().join("tight.tif")).unwrap();
        let band = ds.rasterband(1).unwrap();
        let px = band
            .read_as::<f32>((0, 0), (1100, 1300), (1100, 1300), None)
            .unwrap();
        for (i, v) in px.data().iter().enumerate() {
            let want = float_value(i % 1100, i / 1100);
            assert!(
                v.to_bits() == want.to_bits() || (v.is_nan() && want.is_nan()),
                "pixel {i}, {how}"
            );
        }
    }
}
