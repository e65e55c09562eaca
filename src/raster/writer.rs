//! Float32 map writers: tiled, compressed GeoTIFF under a temporary name, optionally
//! turned into a COG, renamed to the final name only when complete.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use gdal::raster::{Buffer, RasterCreationOptions};
use gdal::{DriverManager, Metadata};

use crate::config::{Compression, Layout};
use crate::error::Result;
use crate::grid::{Grid, Window};
use crate::raster::categories::{self, AreaTally, Category};
use crate::raster::cog;
use crate::raster::overview::{self, BlockLevels, Cell, Mean, Plan, Upper};
use crate::raster::pending::{self, PendingTiles, Spill};

// Temporary outputs are GDAL-free (the tables, charts and reports use them too).
use crate::io::temp::output_error;
pub use crate::io::temp::{aux_xml, remove_stale_temp_files, temp_path, TempFile, TEMP_PREFIX};

/// Clears GDAL's error state of this thread; see [`check_gdal_errors`].
fn reset_gdal_errors() {
    unsafe { gdal_sys::CPLErrorReset() };
}

/// An error if GDAL reported a failure since the last reset (a write that failed on a full
/// disk, say — also those the bindings do not return), with GDAL's message.
fn check_gdal_errors(path: &Path) -> Result<()> {
    let failed = unsafe { gdal_sys::CPLGetLastErrorType() } >= gdal_sys::CPLErr::CE_Failure;
    if !failed {
        return Ok(());
    }
    let msg = unsafe {
        let p = gdal_sys::CPLGetLastErrorMsg();
        if p.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    };
    Err(output_error(
        path,
        format!("GDAL reported an error while writing: {msg}"),
    ))
}

/// Nodata of every float map: NaN, which no real value (−1 included) can be mistaken for.
pub const MAP_NODATA: f32 = f32::NAN;

/// Description of one output band.
#[derive(Debug, Clone)]
pub struct MapSpec {
    /// File name, e.g. `stock_tc_per_ha.tif`.
    pub file_name: String,
    /// Band description.
    pub description: String,
    /// Unit string, e.g. `t C/ha`.
    pub unit: String,
    /// Class codes rather than quantities: overviews by mode, not average.
    pub categorical: bool,
}

/// Overview resampling for a map.
pub fn resampling(categorical: bool) -> &'static str {
    if categorical {
        "MODE"
    } else {
        "AVERAGE"
    }
}

/// How maps are written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MapFormat {
    /// Tile edge of the file written while streaming (the processing block).
    pub block_px: usize,
    /// Compression of the tiles.
    pub compression: Compression,
    /// COG or plain tiled GeoTIFF.
    pub layout: Layout,
    /// GDAL threads compressing tiles while the map is written (1: in the writing thread).
    pub write_threads: usize,
    /// GDAL threads compressing the final COG copy.
    pub copy_threads: usize,
}

impl MapFormat {
    /// A map written from one thread, GDAL compressing its tiles on every core.
    pub fn on_all_cores(block_px: usize, compression: Compression, layout: Layout) -> MapFormat {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        MapFormat {
            block_px,
            compression,
            layout,
            write_threads: cores,
            copy_threads: cores,
        }
    }
}

fn compression_options(
    opts: &mut RasterCreationOptions,
    c: Compression,
    cog: bool,
) -> gdal::errors::Result<()> {
    match c {
        Compression::Zstd => {
            opts.add_name_value("COMPRESS", "ZSTD")?;
            opts.add_name_value(
                if cog { "LEVEL" } else { "ZSTD_LEVEL" },
                &ZSTD_LEVEL.to_string(),
            )?;
        }
        Compression::Deflate => {
            opts.add_name_value("COMPRESS", "DEFLATE")?;
            opts.add_name_value(if cog { "LEVEL" } else { "ZLEVEL" }, "1")?;
        }
        Compression::Lzw => opts.add_name_value("COMPRESS", "LZW")?,
        Compression::None => opts.add_name_value("COMPRESS", "NONE")?,
    }
    Ok(())
}

/// Creation options of a tiled, compressed GeoTIFF with `block`² tiles.
fn tiled_options(
    block: usize,
    compression: Compression,
    threads: usize,
) -> gdal::errors::Result<RasterCreationOptions> {
    let mut opts = RasterCreationOptions::new();
    let b = block.to_string();
    opts.add_name_value("TILED", "YES")?;
    opts.add_name_value("BLOCKXSIZE", &b)?;
    opts.add_name_value("BLOCKYSIZE", &b)?;
    opts.add_name_value("BIGTIFF", "IF_SAFER")?;
    opts.add_name_value("NUM_THREADS", &threads.max(1).to_string())?;
    compression_options(&mut opts, compression, false)?;
    Ok(opts)
}

/// A map being written block by block, its overview levels built on the way (see
/// [`overview`]): `C` is the pixel rule of the overviews ([`Mean`] for Float32 quantities,
/// [`overview::Mode`] for class codes).
pub struct MapWriter<C: Cell> {
    spec: MapSpec,
    dir: PathBuf,
    tmp: TempFile,
    dataset: gdal::Dataset,
    format: MapFormat,
    plan: Plan,
    upper: Option<Upper<C>>,
    nodata: f64,
    /// Class maps: their categories and the area of each code (see [`MapWriter::with_categories`]).
    classes: Option<Classes<C>>,
    /// Why the colour table could not be set at creation, reported by `finish`.
    palette_error: Option<String>,
    /// Level k's tiles waiting for their last pieces (index 0: full resolution), see
    /// [`PendingTiles`].
    levels: Vec<PendingTiles<C::Value>>,
    /// Where the larger waiting pieces are kept meanwhile.
    spill: Spill,
    /// The tiles this writer compresses and stores itself ([`OwnTiles`]); `None`: GDAL
    /// writes them.
    own: Option<OwnTiles>,
}

/// The tiles of a COG that the writer compresses (ZSTD level 1, or none) and stores itself,
/// in a file of tiles beside the map: GDAL only writes the map's structure (a sparse GeoTIFF
/// with every tag and overview level and no tile), and [`cog::assemble_tiles`] lays the COG
/// out from both. A tile costs one compression call and one append: no copy into GDAL's
/// block cache, no temporary file of compressed tiles read back. Used where the layout is
/// COG, the compression ZSTD or none and the machine little-endian (a TIFF tile's bytes are
/// then its values' bytes); GDAL writes the tiles otherwise.
struct OwnTiles {
    file: TempFile,
    out: std::io::BufWriter<std::fs::File>,
    /// Bytes written to `file`.
    pos: u64,
    /// Where each level's tiles are in `file`.
    levels: Vec<cog::LevelTiles>,
    /// Tiles across each level.
    across: Vec<usize>,
    /// Tile edge (px).
    tile: usize,
    zstd: Option<zstd::bulk::Compressor<'static>>,
    /// A compressed tile.
    packed: Vec<u8>,
}

impl OwnTiles {
    /// The tiles of a map of `plan`'s levels in `tile`-px tiles, stored next to `final_path`
    /// (`None` where GDAL must write them).
    fn new(
        final_path: &Path,
        plan: &Plan,
        tile: usize,
        format: MapFormat,
    ) -> Result<Option<OwnTiles>> {
        let zstd = match format.compression {
            _ if format.layout != Layout::Cog || cfg!(target_endian = "big") => return Ok(None),
            Compression::Zstd => Some(
                zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(|e| output_error(final_path, e))?,
            ),
            Compression::None => None,
            Compression::Deflate | Compression::Lzw => return Ok(None),
        };
        let file = TempFile::beside(final_path, "tiles");
        let f = std::fs::File::create(&file.path).map_err(|e| output_error(final_path, e))?;
        let (across, levels) = plan
            .dims
            .iter()
            .map(|&(w, h)| {
                let (nx, n) = (w.div_ceil(tile), w.div_ceil(tile) * h.div_ceil(tile));
                (
                    nx,
                    cog::LevelTiles {
                        offsets: vec![0; n],
                        counts: vec![0; n],
                    },
                )
            })
            .unzip();
        Ok(Some(OwnTiles {
            file,
            out: std::io::BufWriter::with_capacity(1 << 20, f),
            pos: 0,
            levels,
            across,
            tile,
            zstd,
            packed: Vec::new(),
        }))
    }

    /// Stores tile `t` (a whole tile clipped to the level, values `v`) of level `k`, padded
    /// to the full tile with zeros, compressed.
    fn put<T: bytemuck::Pod + Send>(
        &mut self,
        k: usize,
        t: Window,
        v: Vec<T>,
    ) -> std::io::Result<()> {
        use std::io::Write;
        let n = self.tile;
        let full = if t.width == n && t.height == n {
            v
        } else {
            let mut p = vec![T::zeroed(); n * n];
            for r in 0..t.height {
                p[r * n..r * n + t.width].copy_from_slice(&v[r * t.width..(r + 1) * t.width]);
            }
            p
        };
        let bytes: &[u8] = bytemuck::cast_slice(&full);
        let data: &[u8] = match self.zstd.as_mut() {
            Some(c) => {
                self.packed.clear();
                self.packed
                    .reserve(zstd::zstd_safe::compress_bound(bytes.len()));
                c.compress_to_buffer(bytes, &mut self.packed)?;
                &self.packed
            }
            None => bytes,
        };
        self.out.write_all(data)?;
        let i = (t.row / n) * self.across[k] + t.col / n;
        self.levels[k].offsets[i] = self.pos;
        self.levels[k].counts[i] = data.len() as u64;
        self.pos += data.len() as u64;
        if k == 0 {
            // A block's own buffer, most often: for the next block's maps.
            crate::engine::recycle::give(full);
        }
        Ok(())
    }

    /// Flushes the file of tiles; an error if a tile of some level was never stored.
    fn finish(&mut self) -> std::result::Result<(), String> {
        use std::io::Write;
        self.out.flush().map_err(|e| e.to_string())?;
        for (k, l) in self.levels.iter().enumerate() {
            if let Some(i) = l.counts.iter().position(|&c| c == 0) {
                return Err(format!("tile {i} of level {k} was never written"));
            }
        }
        Ok(())
    }
}

/// The ZSTD level of map tiles, compressed by the writer or by GDAL.
const ZSTD_LEVEL: i32 = 1;

struct Classes<C: Cell> {
    list: Vec<Category>,
    tally: AreaTally,
    /// Adds a window's values to the tally (one call per block, the loop inside monomorphic).
    add: fn(&mut AreaTally, usize, usize, &[C::Value]),
}

impl<C: Cell<Value = u8>> MapWriter<C> {
    /// Makes a Byte class map self-describing: when finished it carries a colour table,
    /// category names and a raster attribute table (value, name, colour, area_ha), the areas
    /// summed from the pixels written (see [`categories`]).
    pub fn with_categories(mut self, list: Vec<Category>, grid: &Grid) -> Self {
        // The colour table now, before the first block (see `categories::set_palette`); an
        // error is kept and returned by `finish`.
        let nodata = byte_nodata(self.nodata);
        self.palette_error = match self.dataset.rasterband(1) {
            Ok(mut band) => categories::set_palette(&mut band, &list, nodata).err(),
            Err(e) => Some(e.to_string()),
        };
        self.classes = Some(Classes {
            list,
            tally: AreaTally::new(grid.row_areas_ha()),
            add: |tally, row, width, codes| tally.add(row, width, codes.iter().copied()),
        });
        self
    }
}

impl MapWriter<Mean> {
    /// Creates a Float32 map (nodata NaN): see [`MapWriter::create_typed`].
    pub fn create(
        dir: &Path,
        spec: MapSpec,
        grid: &Grid,
        format: MapFormat,
        metadata: &[(String, String)],
    ) -> Result<MapWriter<Mean>> {
        Self::create_typed(dir, spec, grid, format, metadata, MAP_NODATA as f64)
    }
}

impl<C: Cell> MapWriter<C> {
    /// Creates `dir/.sinkmap-partial-…-NAME` with the grid's georeferencing, the metadata
    /// given, `nodata`, and empty internal overview levels that the blocks will fill.
    pub fn create_typed(
        dir: &Path,
        spec: MapSpec,
        grid: &Grid,
        format: MapFormat,
        metadata: &[(String, String)],
        nodata: f64,
    ) -> Result<MapWriter<C>> {
        let tmp = TempFile::new(temp_path(dir, &spec.file_name, "tiled"));
        let err = |e: gdal::errors::GdalError| output_error(dir.join(&spec.file_name), e);
        let driver = DriverManager::get_driver_by_name("GTiff").map_err(err)?;
        // A COG is assembled from this file's compressed tiles (see [`cog`]), so every level
        // gets the COG's tile size; a tiled map keeps the processing block at full resolution
        // and small overview tiles.
        let (tile_px, overview_tile_px) = match format.layout {
            Layout::Cog => (overview::COG_BLOCK_PX, overview::COG_BLOCK_PX),
            Layout::Tiled => (format.block_px, overview::TEMP_OVERVIEW_BLOCK_PX),
        };
        let plan = Plan::new(grid.width, grid.height, format.block_px);
        let own = OwnTiles::new(&dir.join(&spec.file_name), &plan, tile_px, format)?;
        let mut opts =
            tiled_options(tile_px, format.compression, format.write_threads).map_err(err)?;
        if own.is_some() {
            // GDAL writes the structure only: no tile, not even at closing.
            opts.add_name_value("SPARSE_OK", "TRUE").map_err(err)?;
        }
        let mut ds = driver
            .create_with_band_type_with_options::<C::Value, _>(
                &tmp.path,
                grid.width,
                grid.height,
                1,
                &opts,
            )
            .map_err(err)?;
        ds.set_geo_transform(&grid.geo_transform).map_err(err)?;
        ds.set_projection(&grid.crs_wkt).map_err(err)?;
        for (k, v) in metadata {
            ds.set_metadata_item(k, v, "").map_err(err)?;
        }
        {
            let mut band = ds.rasterband(1).map_err(err)?;
            band.set_no_data_value(Some(nodata)).map_err(err)?;
            band.set_description(&spec.description).map_err(err)?;
            let unit = CString::new(spec.unit.as_str()).unwrap_or_default();
            unsafe {
                gdal_sys::GDALSetRasterUnitType(band.c_rasterband(), unit.as_ptr());
            }
        }
        if plan.levels() > 0 {
            // Empty levels ("NONE": nothing computed), in small tiles, compressed like the map.
            let level = "1";
            let set = |k: &str, v: &str| gdal::config::set_thread_local_config_option(k, v);
            set("GDAL_TIFF_OVR_BLOCKSIZE", &overview_tile_px.to_string())
                .and_then(|_| set("ZSTD_LEVEL_OVERVIEW", level))
                .and_then(|_| set("ZLEVEL_OVERVIEW", level))
                .map_err(err)?;
            let built = ds.build_overviews("NONE", &plan.factors(), &[]);
            for k in [
                "GDAL_TIFF_OVR_BLOCKSIZE",
                "ZSTD_LEVEL_OVERVIEW",
                "ZLEVEL_OVERVIEW",
            ] {
                let _ = gdal::config::clear_thread_local_config_option(k);
            }
            built.map_err(err)?;
        }
        let upper = (plan.local < plan.levels()).then(|| Upper::new(plan.clone()));
        let levels = plan
            .dims
            .iter()
            .enumerate()
            .map(|(k, &size)| {
                let t = if k == 0 { tile_px } else { overview_tile_px };
                PendingTiles::new(size, (t, t))
            })
            .collect();
        let spill = Spill::beside(&dir.join(&spec.file_name), pending::SPILL_MIN_BYTES);
        Ok(MapWriter {
            spec,
            dir: dir.to_path_buf(),
            tmp,
            dataset: ds,
            format,
            plan,
            upper,
            nodata,
            classes: None,
            palette_error: None,
            levels,
            spill,
            own,
        })
    }

    /// Lets GDAL write and compress the tiles even where the writer would compress and store
    /// them itself (a ZSTD or uncompressed COG); before the first block. For comparisons with
    /// GDAL's own writing.
    pub fn with_gdal_tiles(mut self) -> Self {
        self.own = None;
        self
    }

    /// Where the finished map goes.
    pub fn final_path(&self) -> PathBuf {
        self.dir.join(&self.spec.file_name)
    }

    /// The overview levels this map gets (blocks may reduce themselves with it, in parallel,
    /// before [`MapWriter::write_block`]).
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Writes one window of values, and its overview levels.
    pub fn write(&mut self, w: Window, data: Vec<C::Value>) -> Result<()> {
        let levels = overview::reduce_block::<C>(&self.plan, w, &data);
        self.write_block(w, data, levels)
    }

    /// Writes one window of values and the levels [`overview::reduce_block`] made of them.
    /// Windows must come in row-major order.
    pub fn write_block(
        &mut self,
        w: Window,
        data: Vec<C::Value>,
        levels: BlockLevels<C>,
    ) -> Result<()> {
        let path = self.final_path();
        if let Some(c) = self.classes.as_mut() {
            (c.add)(&mut c.tally, w.row, w.width, &data);
        }
        reset_gdal_errors();
        let (rows, dataset, own, spill) = (
            &mut self.levels,
            &mut self.dataset,
            &mut self.own,
            &mut self.spill,
        );
        let mut tile_out = |k: usize, t: Window, v: Vec<C::Value>| match own.as_mut() {
            Some(o) => o.put(k, t, v).map_err(|e| output_error(&path, e)),
            None => write_tile(dataset, &path, k, t, v),
        };
        rows[0].add(w, data, spill, &mut |t, v| tile_out(0, t, v))?;
        for (k, t) in levels.values.into_iter().enumerate() {
            rows[k + 1].add(t.window(), t.data, spill, &mut |t, v| tile_out(k + 1, t, v))?;
        }
        if let (Some(upper), Some(top)) = (self.upper.as_mut(), levels.top) {
            upper.add(top, &mut |k, row, values| {
                let width = values.len();
                let w = Window {
                    col: 0,
                    row,
                    width,
                    height: 1,
                };
                rows[k].add(w, values, spill, &mut |t, v| tile_out(k, t, v))
            })?;
        }
        check_gdal_errors(&path)
    }

    /// Flushes the data and, for COG layout, copies it (with the overviews already built)
    /// into a COG: its compressed tiles byte for byte ([`cog::assemble`]), or through GDAL's
    /// COG driver when the file has a structure the assembler does not handle. Returns the
    /// finished temporary file, ready to be committed under the final name.
    pub fn finish(self) -> Result<(TempFile, PathBuf)> {
        self.finish_with(CogPath::Assemble)
    }

    /// [`MapWriter::finish`] with the COG always written by GDAL's COG driver (which decodes
    /// and encodes every tile again): the fallback, and the reference the assembled COG is
    /// tested against.
    pub fn finish_via_gdal(self) -> Result<(TempFile, PathBuf)> {
        self.finish_with(CogPath::Gdal)
    }

    fn finish_with(self, cog_path: CogPath) -> Result<(TempFile, PathBuf)> {
        let final_path = self.final_path();
        let MapWriter {
            dataset,
            tmp,
            format,
            dir,
            spec,
            classes,
            palette_error,
            levels,
            mut own,
            ..
        } = self;
        reset_gdal_errors();
        if let Some(k) = levels.iter().position(|l| !l.is_complete()) {
            return Err(output_error(
                &final_path,
                format!("some tile of level {k} of the map was never written"),
            ));
        }
        if let Some(e) = palette_error {
            return Err(output_error(&final_path, e));
        }
        if let Some(c) = classes {
            let mut band = dataset
                .rasterband(1)
                .map_err(|e| output_error(&final_path, e))?;
            categories::describe(&mut band, &c.list, &c.tally)
                .map_err(|e| output_error(&final_path, e))?;
        }
        dataset.close().map_err(|e| output_error(&final_path, e))?;
        check_gdal_errors(&final_path)?;
        if let Some(o) = own.as_mut() {
            o.finish().map_err(|e| output_error(&final_path, e))?;
            if cog_path == CogPath::Gdal {
                return Err(output_error(
                    &final_path,
                    "GDAL's COG driver needs a writer without its own tiles",
                ));
            }
        }
        match format.layout {
            Layout::Tiled => Ok((tmp, final_path)),
            Layout::Cog => {
                if cog_path == CogPath::Assemble {
                    let cog = TempFile::new(temp_path(&dir, &spec.file_name, "cog"));
                    let done = match &own {
                        Some(o) => {
                            cog::assemble_tiles(&tmp.path, &o.file.path, &o.levels, &cog.path)
                        }
                        None => cog::assemble(&tmp.path, &cog.path),
                    }
                    .map_err(|e| output_error(&final_path, e))?;
                    if let (Some(_), cog::Assembly::Unsupported(why)) = (&own, &done) {
                        // GDAL's file has no tile to fall back on.
                        return Err(output_error(
                            &final_path,
                            format!("cannot lay out the COG: {why}"),
                        ));
                    }
                    if done == cog::Assembly::Written {
                        // Category names and the attribute table live in GDAL's side-car.
                        let aux = aux_xml(&tmp.path);
                        if aux.exists() {
                            let to = aux_xml(&cog.path);
                            std::fs::rename(&aux, &to).map_err(|e| output_error(&to, e))?;
                        }
                        return Ok((cog, final_path));
                    }
                }
                let src =
                    gdal::Dataset::open(&tmp.path).map_err(|e| output_error(&final_path, e))?;
                let cog = copy_map(&src, &dir, &spec.file_name, format, spec.categorical)?;
                Ok((cog, final_path))
            }
        }
    }
}

/// `nodata` as a Byte code, when it is one.
fn byte_nodata(nodata: f64) -> Option<u8> {
    (nodata.fract() == 0.0 && (0.0..=255.0).contains(&nodata)).then_some(nodata as u8)
}

/// How [`MapWriter`] turns its tiled file into a COG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CogPath {
    /// Byte for byte ([`cog::assemble`]), GDAL's COG driver where unsupported.
    Assemble,
    /// GDAL's COG driver.
    Gdal,
}

/// Writes one whole tile (window `t`, values `v`) of level `k` of the map at `path` (0: full
/// resolution) and flushes it out of GDAL's cache ([`PendingTiles`]).
fn write_tile<T: gdal::raster::GdalType + Copy>(
    dataset: &mut gdal::Dataset,
    path: &Path,
    k: usize,
    t: Window,
    v: Vec<T>,
) -> Result<()> {
    let band = dataset.rasterband(1).map_err(|e| output_error(path, e))?;
    let mut b = if k == 0 {
        band
    } else {
        band.overview(k - 1).map_err(|e| output_error(path, e))?
    };
    write_window(&mut b, t, v).map_err(|e| output_error(path, e))?;
    crate::raster::flush_band(&b).map_err(|e| output_error(path, e))
}

/// Writes `data` into window `w` of `band`.
fn write_window<T: gdal::raster::GdalType + Copy>(
    band: &mut gdal::raster::RasterBand,
    w: Window,
    data: Vec<T>,
) -> gdal::errors::Result<()> {
    let mut buf = Buffer::new((w.width, w.height), data);
    band.write(
        (w.col as isize, w.row as isize),
        (w.width, w.height),
        &mut buf,
    )
}

/// Copies a finished map (any GDAL dataset, e.g. a VRT of tiles) into `dir` under a temporary
/// name, as a COG with overviews or as a tiled GeoTIFF, with the given compression.
pub fn copy_map(
    src: &gdal::Dataset,
    dir: &Path,
    file_name: &str,
    format: MapFormat,
    categorical: bool,
) -> Result<TempFile> {
    let compression = format.compression;
    let final_path = dir.join(file_name);
    let err = |e: gdal::errors::GdalError| output_error(&final_path, e);
    reset_gdal_errors();
    let out = TempFile::new(temp_path(dir, file_name, "copy"));
    let source_has_overviews = src
        .rasterband(1)
        .map(|b| b.overview_count().unwrap_or(0) > 0)
        .unwrap_or(false);
    let mut opts = RasterCreationOptions::new();
    let driver = match format.layout {
        Layout::Cog => {
            (|| -> gdal::errors::Result<()> {
                // COG tiles are 512² whatever the processing block (the driver wants ≥ 128).
                opts.add_name_value("BLOCKSIZE", "512")?;
                opts.add_name_value("BIGTIFF", "IF_SAFER")?;
                opts.add_name_value("NUM_THREADS", &format.copy_threads.max(1).to_string())?;
                // Overviews the source already has (built while streaming) are copied as
                // they are; otherwise the driver computes them.
                opts.add_name_value(
                    "OVERVIEWS",
                    if source_has_overviews {
                        "FORCE_USE_EXISTING"
                    } else {
                        "AUTO"
                    },
                )?;
                opts.add_name_value("RESAMPLING", resampling(categorical))?;
                compression_options(&mut opts, compression, true)
            })()
            .map_err(err)?;
            DriverManager::get_driver_by_name("COG").map_err(err)?
        }
        Layout::Tiled => {
            opts = tiled_options(512, compression, format.copy_threads).map_err(err)?;
            DriverManager::get_driver_by_name("GTiff").map_err(err)?
        }
    };
    let ds = src.create_copy(&driver, &out.path, &opts).map_err(err)?;
    ds.close().map_err(err)?;
    check_gdal_errors(&final_path)?;
    Ok(out)
}
