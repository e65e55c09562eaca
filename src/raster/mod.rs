//! Raster IO at the edges: open layers, align them to the reference grid, read windows,
//! write maps. No model formulas here.

pub mod categories;
pub mod cog;
pub mod overview;
pub mod pending;
pub mod writer;

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use gdal::raster::GdalDataType;
use gdal::spatial_ref::SpatialRef;
use gdal::Dataset;

use crate::error::{Error, Result};
use crate::grid::{AreaModel, Grid, Window};

/// How a layer's values are interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// Integer codes (land cover, forest type, desert subtype): integer data types only.
    Categorical,
    /// Numeric values (forest age): any real data type.
    Continuous,
}

/// An input layer, aligned to the reference grid (directly, or through a warped VRT).
pub struct Layer {
    /// The file it was opened from.
    pub path: PathBuf,
    dataset: Dataset,
    /// The source of a warped VRT: it must outlive `dataset` (fields drop in order).
    _source: Option<Dataset>,
    band: usize,
    nodata: Vec<f64>,
    nodata_nan: bool,
    /// The band's type holds integers that all fit an i32 (read codes as i32).
    codes_fit_i32: bool,
    /// The band's type when it is 8- or 16-bit integers (readable as they are stored).
    narrow: Option<NarrowKind>,
    /// The band's block size and the raster's size (pixels).
    block_px: (usize, usize),
    size_px: (usize, usize),
}

/// An 8- or 16-bit integer band type: windows of it can be read without widening
/// ([`Layer::read_narrow`]), and a table over all its values stands for any per-value
/// function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NarrowKind {
    /// Byte.
    U8,
    /// UInt16.
    U16,
    /// Int16.
    I16,
}

impl NarrowKind {
    /// How many distinct values the type has (the length of a table over them).
    pub fn values(self) -> usize {
        match self {
            NarrowKind::U8 => 1 << 8,
            NarrowKind::U16 | NarrowKind::I16 => 1 << 16,
        }
    }

    /// The value stored under table index `i` (`0..self.values()`).
    pub fn value_at(self, i: usize) -> i32 {
        match self {
            NarrowKind::U8 => i as u8 as i32,
            NarrowKind::U16 => i as u16 as i32,
            NarrowKind::I16 => i as u16 as i16 as i32,
        }
    }
}

/// One window of a narrow band, as stored (see [`NarrowKind`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Narrow {
    /// Byte values.
    U8(Vec<u8>),
    /// UInt16 values.
    U16(Vec<u16>),
    /// Int16 values.
    I16(Vec<i16>),
}

impl Narrow {
    /// Number of pixels.
    pub fn len(&self) -> usize {
        match self {
            Narrow::U8(v) => v.len(),
            Narrow::U16(v) => v.len(),
            Narrow::I16(v) => v.len(),
        }
    }

    /// True without pixels.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The table index of pixel `i` (its value's bits, see [`NarrowKind::value_at`]).
    #[inline]
    pub fn index(&self, i: usize) -> usize {
        match self {
            Narrow::U8(v) => v[i] as usize,
            Narrow::U16(v) => v[i] as usize,
            Narrow::I16(v) => v[i] as u16 as usize,
        }
    }

    /// Bits of one stored value (8 or 16).
    pub fn bits(&self) -> u32 {
        match self {
            Narrow::U8(_) => 8,
            Narrow::U16(_) | Narrow::I16(_) => 16,
        }
    }

    /// `out[j] |= index(start + j) << shift` for every `j` of `out` (pixels past the end are
    /// left alone): the stored bits of each pixel placed side by side with other layers', a
    /// loop without lookups or branches that vectorizes.
    pub fn or_shifted(&self, start: usize, shift: u32, out: &mut [u64]) {
        fn go<T: Copy>(v: &[T], shift: u32, out: &mut [u64], bits: impl Fn(T) -> u64) {
            for (o, &x) in out.iter_mut().zip(v) {
                *o |= bits(x) << shift;
            }
        }
        let from = |len: usize| start.min(len);
        match self {
            Narrow::U8(v) => go(&v[from(v.len())..], shift, out, u64::from),
            Narrow::U16(v) => go(&v[from(v.len())..], shift, out, u64::from),
            Narrow::I16(v) => go(&v[from(v.len())..], shift, out, |x| u64::from(x as u16)),
        }
    }

    /// `out[i] |= index(start + at[i]) << shift` for every `i` of `out` (`at` as long as
    /// `out`; pixels past the end are left alone): the stored bits of some pixels of a row,
    /// placed side by side with other layers'.
    pub fn or_shifted_at(&self, start: usize, at: &[u32], shift: u32, out: &mut [u64]) {
        fn go<T: Copy>(v: &[T], at: &[u32], shift: u32, out: &mut [u64], bits: impl Fn(T) -> u64) {
            for (o, &i) in out.iter_mut().zip(at) {
                if let Some(&x) = v.get(i as usize) {
                    *o |= bits(x) << shift;
                }
            }
        }
        let from = |len: usize| start.min(len);
        match self {
            Narrow::U8(v) => go(&v[from(v.len())..], at, shift, out, u64::from),
            Narrow::U16(v) => go(&v[from(v.len())..], at, shift, out, u64::from),
            Narrow::I16(v) => go(&v[from(v.len())..], at, shift, out, |x| u64::from(x as u16)),
        }
    }

    /// Clears bit i % 64 of `same[i / 64]` where pixel `start + i + 1` differs from pixel
    /// `start + i`, for every i in `0..n - 1` (nothing where pixels `start..start + n` are
    /// not all there); the bits of a word past the row's last pair say nothing (they may
    /// compare pixels past the row: the caller masks them). `same` needs
    /// `(n - 1).div_ceil(64)` words. A 64-bit word of a row's pairs of neighbours, ANDed
    /// over the layers: where a key stays the same.
    ///
    /// Written by hand with SSE2 (which every x86-64 processor has): 16 byte compares or 8
    /// 16-bit ones an instruction, and their bits gathered 16 an instruction, where the
    /// compiler's own code for the plain loop gathers the bits one by one. The plain loop
    /// does the rest of a row; the tests hold both to it.
    pub fn and_same_as_next(&self, start: usize, n: usize, same: &mut [u64]) {
        fn go<T: Copy + PartialEq>(v: &[T], same: &mut [u64], done: usize) {
            let pairs = v.len().saturating_sub(1);
            for (w, s) in same.iter_mut().enumerate().skip(done / 64) {
                let lo = w * 64;
                if lo >= pairs {
                    break;
                }
                let mut bits = 0u64;
                for i in lo..(lo + 64).min(pairs) {
                    bits |= u64::from(v[i] == v[i + 1]) << (i - lo);
                }
                *s &= bits;
            }
        }
        // The row, and the pixels after it (the vector loop may compare past the row's end
        // where the band goes on, rather than leave its last word to the plain loop).
        fn row<T>(v: &[T], start: usize, n: usize) -> Option<(&[T], &[T])> {
            let after = v.get(start..)?;
            Some((after.get(..n)?, after))
        }
        let pairs = n.saturating_sub(1);
        match self {
            Narrow::U8(v) => {
                let Some((v, after)) = row(v, start, n) else {
                    return;
                };
                #[cfg(target_arch = "x86_64")]
                // SAFETY: SSE2 is part of x86-64 itself: every processor that runs this has it.
                let done = unsafe { x86_64::same_as_next_u8(after, pairs, same) };
                #[cfg(not(target_arch = "x86_64"))]
                let done = {
                    // Only the vector loop compares past the row.
                    let _ = (after, pairs);
                    0
                };
                go(v, same, done)
            }
            // 16-bit values compare as their bits: equal values have equal bits, signed or not.
            Narrow::U16(v) => sixteen(v, start, n, same),
            Narrow::I16(v) => sixteen(bytemuck::cast_slice(v), start, n, same),
        }
        fn sixteen(v: &[u16], start: usize, n: usize, same: &mut [u64]) {
            let Some((v, after)) = row(v, start, n) else {
                return;
            };
            #[cfg(target_arch = "x86_64")]
            // SAFETY: SSE2 is part of x86-64 itself: every processor that runs this has it.
            let done = unsafe { x86_64::same_as_next_16(after, n.saturating_sub(1), same) };
            #[cfg(not(target_arch = "x86_64"))]
            let done = {
                let _ = after;
                0
            };
            go(v, same, done)
        }
    }

    /// `out[j] |= table[index(start + j)]` for every `j` of `out` (pixels past the end are left
    /// alone): one table lookup a pixel, monomorphized per type so that the loop has no
    /// branch. A byte band's table of 256 entries is indexed without a bounds check.
    pub fn or_from_table(&self, table: &[u64], start: usize, out: &mut [u64]) {
        fn go<T: Copy>(v: &[T], table: &[u64], out: &mut [u64], idx: impl Fn(T) -> usize) {
            for (o, &x) in out.iter_mut().zip(v) {
                *o |= table.get(idx(x)).copied().unwrap_or(0);
            }
        }
        let from = |len: usize| start.min(len);
        match self {
            Narrow::U8(v) => {
                let v = &v[from(v.len())..];
                match <&[u64; 256]>::try_from(table) {
                    Ok(t) => out
                        .iter_mut()
                        .zip(v)
                        .for_each(|(o, &x)| *o |= t[x as usize]),
                    Err(_) => go(v, table, out, |x| x as usize),
                }
            }
            Narrow::U16(v) => go(&v[from(v.len())..], table, out, |x| x as usize),
            Narrow::I16(v) => go(&v[from(v.len())..], table, out, |x| x as u16 as usize),
        }
    }
}

fn open_dataset(path: &Path) -> Result<Dataset> {
    if !path.exists() {
        crate::limits::check_input_path(path)?;
    }
    Dataset::open(path)
        .map_err(|e| Error::raster(path, crate::limits::gdal_open_failure("raster", &e)))
}

fn crs_of(ds: &Dataset, path: &Path) -> Result<SpatialRef> {
    let wkt = ds.projection();
    if wkt.trim().is_empty() {
        return Err(Error::raster(path, "raster has no CRS (coordinate reference system); assign one, e.g. with gdal_edit.py -a_srs"));
    }
    SpatialRef::from_wkt(&wkt).map_err(|e| Error::raster(path, format!("unreadable CRS: {e}")))
}

fn check_band(ds: &Dataset, path: &Path, band: usize, kind: LayerKind) -> Result<()> {
    let count = ds.raster_count();
    if band == 0 || band > count {
        return Err(Error::raster(
            path,
            format!("band {band} requested but the raster has {count} band(s)"),
        ));
    }
    let b = ds.rasterband(band).map_err(|e| Error::raster(path, e))?;
    let t = b.band_type();
    let ok = match kind {
        LayerKind::Categorical => matches!(
            t,
            GdalDataType::UInt8
                | GdalDataType::UInt16
                | GdalDataType::Int16
                | GdalDataType::UInt32
                | GdalDataType::Int32
        ),
        LayerKind::Continuous => !matches!(t, GdalDataType::Unknown),
    };
    if !ok {
        return Err(Error::raster(
            path,
            format!("wrong data type {t:?} for a categorical layer: expected an integer type (Byte, Int16, UInt16, Int32, UInt32)"),
        ));
    }
    Ok(())
}

/// Opens the land-cover raster and derives the reference grid from it.
pub fn reference_grid(path: &Path, band: usize) -> Result<Grid> {
    let ds = open_dataset(path)?;
    check_band(&ds, path, band, LayerKind::Categorical)?;
    let srs = crs_of(&ds, path)?;
    let gt = ds
        .geo_transform()
        .map_err(|e| Error::raster(path, format!("no geotransform: {e}")))?;
    if gt[2] != 0.0 || gt[4] != 0.0 {
        return Err(Error::raster(
            path,
            "rotated or sheared grids are not supported; warp to a north-up grid first",
        ));
    }
    if gt[1] <= 0.0 || gt[5] >= 0.0 {
        return Err(Error::raster(
            path,
            "expected a north-up grid (positive pixel width, negative pixel height)",
        ));
    }
    let (width, height) = ds.raster_size();
    // A side beyond this is a broken or hostile header, not a map (China at 10 m is ~600 000 px wide).
    const MAX_SIDE: usize = 10_000_000;
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(Error::raster(path, format!("raster claims {width} × {height} pixels: not a plausible map (each side must be 1–{MAX_SIDE})")));
    }
    crate::limits::check_grid_size(path, width, height)?;
    let area = if srs.is_geographic() {
        let deg = srs.angular_units().to_degrees();
        crate::limits::check_latitudes(path, gt[3] * deg, (gt[3] + height as f64 * gt[5]) * deg)?;
        AreaModel::Geographic {
            semi_major_m: srs.semi_major().map_err(|e| Error::raster(path, e))?,
            semi_minor_m: srs.semi_minor().map_err(|e| Error::raster(path, e))?,
            radians_per_unit: srs.angular_units(),
        }
    } else if srs.is_projected() {
        AreaModel::Projected {
            metres_per_unit: srs.linear_units(),
        }
    } else {
        return Err(Error::raster(
            path,
            "CRS is neither geographic nor projected",
        ));
    };
    Ok(Grid {
        width,
        height,
        geo_transform: gt,
        crs_wkt: srs.to_wkt().map_err(|e| Error::raster(path, e))?,
        area,
    })
}

static VSIMEM_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Warps `src` onto `grid` as a virtual (VRT) dataset, nearest neighbour: pixels are
/// computed on the fly when read, nothing is written to disk.
fn warp_to_grid(src: &Dataset, path: &Path, grid: &Grid) -> Result<Dataset> {
    let (xmin, ymin, xmax, ymax) = grid.extent();
    let args: Vec<String> = vec![
        "-of".into(),
        "VRT".into(),
        "-t_srs".into(),
        grid.crs_wkt.clone(),
        "-te".into(),
        format!("{xmin:.17e}"),
        format!("{ymin:.17e}"),
        format!("{xmax:.17e}"),
        format!("{ymax:.17e}"),
        "-ts".into(),
        grid.width.to_string(),
        grid.height.to_string(),
        "-r".into(),
        "near".into(),
    ];
    let c_args: Vec<CString> = args
        .iter()
        .map(|a| CString::new(a.as_str()).unwrap_or_default())
        .collect();
    let mut ptrs: Vec<*mut std::os::raw::c_char> =
        c_args.iter().map(|a| a.as_ptr() as *mut _).collect();
    ptrs.push(std::ptr::null_mut());
    let n = VSIMEM_COUNTER.fetch_add(1, Ordering::Relaxed);
    let dest = CString::new(format!(
        "/vsimem/sinkmap_align_{}_{n}.vrt",
        std::process::id()
    ))
    .unwrap_or_default();
    unsafe {
        let opts = gdal_sys::GDALWarpAppOptionsNew(ptrs.as_mut_ptr(), std::ptr::null_mut());
        if opts.is_null() {
            return Err(Error::raster(path, "could not set up the GDAL warper"));
        }
        let mut srcs = [src.c_dataset()];
        let mut usage_error: std::os::raw::c_int = 0;
        let out = gdal_sys::GDALWarp(
            dest.as_ptr(),
            std::ptr::null_mut(),
            1,
            srcs.as_mut_ptr(),
            opts,
            &mut usage_error,
        );
        gdal_sys::GDALWarpAppOptionsFree(opts);
        if out.is_null() {
            return Err(Error::raster(
                path,
                "GDAL could not warp this layer onto the land-cover grid",
            ));
        }
        Ok(Dataset::from_c_dataset(out))
    }
}

fn same_grid(ds: &Dataset, srs: &SpatialRef, grid: &Grid) -> bool {
    let Ok(gt) = ds.geo_transform() else {
        return false;
    };
    let (w, h) = ds.raster_size();
    let Ok(grid_srs) = SpatialRef::from_wkt(&grid.crs_wkt) else {
        return false;
    };
    let tol = 1e-6 * grid.geo_transform[1].abs();
    let tol_y = 1e-6 * grid.geo_transform[5].abs();
    w == grid.width
        && h == grid.height
        && (gt[0] - grid.geo_transform[0]).abs() <= tol
        && (gt[1] - grid.geo_transform[1]).abs() <= tol * 1e-3
        && (gt[3] - grid.geo_transform[3]).abs() <= tol_y
        && (gt[5] - grid.geo_transform[5]).abs() <= tol_y * 1e-3
        && gt[2] == 0.0
        && gt[4] == 0.0
        && *srs == grid_srs
}

/// Writes the dirty blocks of `band` to its file and drops all its blocks from GDAL's cache.
pub(crate) fn flush_band(band: &gdal::raster::RasterBand) -> std::result::Result<(), String> {
    // SAFETY: the handle is valid while `band` lives; flushing takes no other pointer.
    let rv = unsafe { gdal_sys::GDALFlushRasterCache(band.c_rasterband()) };
    if rv == gdal_sys::CPLErr::CE_None {
        Ok(())
    } else {
        // SAFETY: GDAL's last error message of this thread, copied at once.
        let msg = unsafe { std::ffi::CStr::from_ptr(gdal_sys::CPLGetLastErrorMsg()) };
        Err(format!(
            "writing tiles failed: {}",
            msg.to_string_lossy().trim()
        ))
    }
}

/// True when window `w` of a raster of `size` pixels stored in blocks of `block` pixels is
/// made of whole blocks: each edge on a block edge or on the raster's edge.
fn whole_blocks(w: Window, block: (usize, usize), size: (usize, usize)) -> bool {
    let on = |x: usize, b: usize, end: usize| b > 0 && (x.is_multiple_of(b) || x == end);
    on(w.col, block.0, size.0)
        && on(w.row, block.1, size.1)
        && on(w.col + w.width, block.0, size.0)
        && on(w.row + w.height, block.1, size.1)
}

impl Layer {
    /// Opens a layer and aligns it to `grid` (warping on the fly when its grid or CRS differs).
    /// `extra_nodata` adds values that mean "no data" to the one the raster declares.
    pub fn open(
        path: &Path,
        band: usize,
        kind: LayerKind,
        grid: &Grid,
        extra_nodata: &[f64],
    ) -> Result<Layer> {
        let src = open_dataset(path)?;
        check_band(&src, path, band, kind)?;
        let srs = crs_of(&src, path)?;
        let declared = src
            .rasterband(band)
            .map_err(|e| Error::raster(path, e))?
            .no_data_value();
        let (dataset, source, band) = if same_grid(&src, &srs, grid) {
            (src, None, band)
        } else {
            // The warper works on whole datasets; select the band first when needed.
            if src.raster_count() != 1 {
                return Err(Error::raster(
                    path,
                    "a multi-band layer on another grid cannot be aligned; extract the band first",
                ));
            }
            let vrt = warp_to_grid(&src, path, grid)?;
            (vrt, Some(src), 1)
        };
        let mut nodata: Vec<f64> = extra_nodata
            .iter()
            .copied()
            .filter(|v| !v.is_nan())
            .collect();
        let mut nodata_nan = extra_nodata.iter().any(|v| v.is_nan());
        if let Some(d) = declared {
            if d.is_nan() {
                nodata_nan = true;
            } else {
                nodata.push(d);
            }
        }
        let rb = dataset
            .rasterband(band)
            .map_err(|e| Error::raster(path, e))?;
        let (block_px, size_px, band_type) = (rb.block_size(), rb.size(), rb.band_type());
        let narrow = match band_type {
            GdalDataType::UInt8 => Some(NarrowKind::U8),
            GdalDataType::UInt16 => Some(NarrowKind::U16),
            GdalDataType::Int16 => Some(NarrowKind::I16),
            _ => None,
        };
        // Every narrow type's values fit an i32, and so do Int32's.
        let codes_fit_i32 = narrow.is_some() || band_type == GdalDataType::Int32;
        Ok(Layer {
            path: path.to_path_buf(),
            codes_fit_i32,
            narrow,
            block_px,
            size_px,
            dataset,
            _source: source,
            band,
            nodata,
            nodata_nan,
        })
    }

    /// Opens an optional layer of the scene (forest type, desert subtype, a mask).
    pub fn open_spec(
        spec: Option<&crate::config::LayerSpec>,
        kind: LayerKind,
        grid: &Grid,
    ) -> Result<Option<Layer>> {
        spec.map(|l| Layer::open(&l.path, l.band, kind, grid, &l.nodata_values))
            .transpose()
    }

    /// Treats `value` as no data as well (e.g. a scheme's fill code).
    pub fn add_nodata(&mut self, value: f64) {
        if !self.nodata.contains(&value) {
            self.nodata.push(value);
        }
    }

    /// True when the layer (or the scene) declares a nodata value.
    pub fn has_declared_nodata(&self) -> bool {
        !self.nodata.is_empty() || self.nodata_nan
    }

    /// True when `v` is one of the layer's nodata values.
    #[inline]
    pub fn is_nodata(&self, v: f64) -> bool {
        (self.nodata_nan && v.is_nan()) || self.nodata.contains(&v)
    }

    fn read_window<T: Copy + gdal::raster::GdalType>(
        &self,
        w: Window,
        buf: &mut Vec<T>,
        zero: T,
    ) -> Result<()> {
        buf.clear();
        buf.resize(w.len(), zero);
        let band = self
            .dataset
            .rasterband(self.band)
            .map_err(|e| Error::raster(&self.path, e))?;
        band.read_into_slice::<T>(
            (w.col as isize, w.row as isize),
            (w.width, w.height),
            (w.width, w.height),
            buf.as_mut_slice(),
            None,
        )
        .map_err(|e| {
            Error::raster(
                &self.path,
                format!("read failed at block (col {}, row {}): {e}", w.col, w.row),
            )
        })?;
        if self.covers_whole_blocks(w) {
            // The passes read every window once, in order: the file's blocks under a window
            // made of whole blocks are never read again. Dropping them now keeps GDAL's
            // process-wide cache from filling (when full, the thread that needs room writes
            // out whichever dirty block is oldest, another thread's too). Flushing a
            // read-only band only drops its blocks, so a failure loses nothing.
            let _ = flush_band(&band);
        }
        Ok(())
    }

    /// True when window `w` is made of whole blocks of the file.
    fn covers_whole_blocks(&self, w: Window) -> bool {
        whole_blocks(w, self.block_px, self.size_px)
    }

    /// Reads a window as integer codes; `None` where the value is no data.
    pub fn read_codes(&self, w: Window, out: &mut Vec<Option<i32>>) -> Result<()> {
        out.clear();
        if self.codes_fit_i32 {
            // Every value of the band's type is an i32: read them as such (no float detour).
            let mut raw: Vec<i32> = Vec::new();
            self.read_window(w, &mut raw, 0)?;
            out.extend(raw.iter().map(|&v| {
                if self.nodata.contains(&(v as f64)) {
                    None
                } else {
                    Some(v)
                }
            }));
        } else {
            let mut raw: Vec<f64> = Vec::new();
            self.read_window(w, &mut raw, 0.0)?;
            out.extend(raw.iter().map(|&v| {
                if self.is_nodata(v) {
                    None
                } else {
                    Some(v as i32)
                }
            }));
        }
        Ok(())
    }

    /// The band's type when it is narrow ([`NarrowKind`]).
    pub fn narrow_kind(&self) -> Option<NarrowKind> {
        self.narrow
    }

    /// Reads a window of a narrow band as stored (no widening, no nodata test: the caller
    /// tests values with [`Layer::is_nodata`], e.g. once per value in a table).
    pub fn read_narrow(&self, w: Window) -> Result<Narrow> {
        match self.narrow {
            Some(NarrowKind::U8) => {
                let mut v = Vec::new();
                self.read_window(w, &mut v, 0u8).map(|_| Narrow::U8(v))
            }
            Some(NarrowKind::U16) => {
                let mut v = Vec::new();
                self.read_window(w, &mut v, 0u16).map(|_| Narrow::U16(v))
            }
            Some(NarrowKind::I16) => {
                let mut v = Vec::new();
                self.read_window(w, &mut v, 0i16).map(|_| Narrow::I16(v))
            }
            None => Err(Error::internal(format!(
                "{}: not an 8- or 16-bit integer band",
                self.path.display()
            ))),
        }
    }

    /// Reads a window as real values; `None` where the value is no data.
    pub fn read_values(&self, w: Window, out: &mut Vec<Option<f64>>) -> Result<()> {
        let mut raw: Vec<f64> = Vec::new();
        self.read_window(w, &mut raw, 0.0)?;
        out.clear();
        out.extend(
            raw.iter()
                .map(|&v| if self.is_nodata(v) { None } else { Some(v) }),
        );
        Ok(())
    }
}

/// The compares of [`Narrow::and_same_as_next`] in SSE2.
#[cfg(target_arch = "x86_64")]
mod x86_64 {
    use std::arch::x86_64::*;

    /// Words of 64 pairs to do for `pairs` pairs of a row whose pixels and the band's after
    /// them are `v`: those whose 65 pixels `v` holds.
    fn words(v_len: usize, pairs: usize, same: &[u64]) -> usize {
        pairs
            .div_ceil(64)
            .min(v_len.saturating_sub(1) / 64)
            .min(same.len())
    }

    /// [`Narrow::and_same_as_next`](super::Narrow::and_same_as_next) of the `pairs` pairs of
    /// the row at the start of `v` (the band from the row's first pixel on), a word of 64
    /// pairs at a time while `v` holds its pixels; returns the pairs done (a multiple of 64).
    #[target_feature(enable = "sse2")]
    pub(super) fn same_as_next_u8(v: &[u8], pairs: usize, same: &mut [u64]) -> usize {
        let load = |s: &[u8]| -> __m128i { bytemuck::pod_read_unaligned(&s[..16]) };
        let words = words(v.len(), pairs, same);
        for (w, s) in same[..words].iter_mut().enumerate() {
            // Pairs 64w .. 64w + 63 need pixels up to 64w + 64, which the row has.
            let at = &v[w * 64..w * 64 + 65];
            let mut bits = 0u64;
            for k in 0..4 {
                let (a, b) = (load(&at[16 * k..]), load(&at[16 * k + 1..]));
                let eq = _mm_movemask_epi8(_mm_cmpeq_epi8(a, b)) as u32 as u64;
                bits |= eq << (16 * k);
            }
            *s &= bits;
        }
        words * 64
    }

    /// The same for 16-bit values (compared as bits: equal values have equal bits, signed or
    /// not), 8 an instruction, two compares' results packed to bytes for one bit gather.
    #[target_feature(enable = "sse2")]
    pub(super) fn same_as_next_16(v: &[u16], pairs: usize, same: &mut [u64]) -> usize {
        let load =
            |s: &[u16]| -> __m128i { bytemuck::pod_read_unaligned(bytemuck::cast_slice(&s[..8])) };
        let words = words(v.len(), pairs, same);
        for (w, s) in same[..words].iter_mut().enumerate() {
            let at = &v[w * 64..w * 64 + 65];
            let mut bits = 0u64;
            for k in 0..4 {
                let eq = |o: usize| _mm_cmpeq_epi16(load(&at[o..]), load(&at[o + 1..]));
                // Lanes of all ones or zeros: packed to bytes with signed saturation, they
                // stay all ones (−1) or zero.
                let both = _mm_packs_epi16(eq(16 * k), eq(16 * k + 8));
                bits |= (_mm_movemask_epi8(both) as u32 as u64) << (16 * k);
            }
            *s &= bits;
        }
        words * 64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_as_next_bits_are_the_plain_compares_of_neighbours() {
        // Runs of 1 to 6 values in bands of each type; rows of every kind of length (whole
        // words of 64 pairs, ragged, ending at the band's end or before it, starting
        // anywhere), against the plain compare of each pair.
        let len = 400;
        let value = |i: usize| ((i * 5 + i / 3) / 6 % 5) as i32 - 2;
        let bands = [
            Narrow::U8((0..len).map(|i| value(i) as u8).collect()),
            Narrow::U16((0..len).map(|i| (value(i) + 2) as u16 * 700).collect()),
            Narrow::I16((0..len).map(|i| value(i) as i16 * 300).collect()),
        ];
        for band in &bands {
            for start in [0, 1, 7, 64, 100, 200, 270, 335] {
                for n in [
                    0,
                    1,
                    2,
                    63,
                    64,
                    65,
                    66,
                    129,
                    130,
                    200,
                    len - start,
                    len - start + 1,
                ] {
                    let mut same = vec![u64::MAX; 8];
                    band.and_same_as_next(start, n, &mut same);
                    if start + n > len {
                        assert!(same.iter().all(|&w| w == u64::MAX), "{band:?} past the end");
                        continue;
                    }
                    for i in 0..n.saturating_sub(1) {
                        let want = band.index(start + i) == band.index(start + i + 1);
                        let got = same[i / 64] >> (i % 64) & 1 == 1;
                        assert_eq!(got, want, "start {start} n {n} pair {i} of {band:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn windows_of_whole_blocks_are_told_apart() {
        let w = |col, row, width, height| Window {
            col,
            row,
            width,
            height,
        };
        let (tiles, size) = ((256, 256), (1000, 700));
        assert!(whole_blocks(w(0, 0, 512, 512), tiles, size));
        // The last blocks end at the raster's edge.
        assert!(whole_blocks(w(512, 512, 488, 188), tiles, size));
        // Half a block: the block is read again by the next window.
        assert!(!whole_blocks(w(0, 0, 128, 512), tiles, size));
        assert!(!whole_blocks(w(128, 0, 128, 256), tiles, size));
        // Strips as wide as the raster: a 512-column window never holds a whole strip.
        assert!(!whole_blocks(w(0, 0, 512, 512), (1000, 1), size));
        assert!(whole_blocks(w(0, 0, 1000, 16), (1000, 1), size));
    }
}
