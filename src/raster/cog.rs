//! A Cloud Optimized GeoTIFF assembled from a finished tiled GeoTIFF by copying its compressed
//! tiles byte for byte: no tile is decoded or encoded again.
//!
//! The map writers let GDAL write a tiled GeoTIFF whose every level (full resolution and the
//! overviews built while streaming) has COG-sized tiles. [`assemble`] then lays the same IFDs
//! and tiles out the way GDAL's COG driver does:
//! 1. the TIFF (or BigTIFF) header, then GDAL's "ghost area" of structural metadata
//!    (`LAYOUT=IFDS_BEFORE_DATA`, `BLOCK_ORDER=ROW_MAJOR`, a 4-byte size leader before every
//!    tile and its last 4 bytes repeated after it), which is what makes GDAL report
//!    `LAYOUT=COG`;
//! 2. the IFD of the full-resolution image, then those of the overviews from the largest to
//!    the smallest, each followed by its out-of-line tag values — every tag copied as GDAL
//!    wrote it (georeferencing, nodata, GDAL metadata, colour table …) except the tile offsets;
//! 3. the tiles: smallest overview first, full resolution last, each level row by row.
//!
//! Hand-written rather than through the `tiff` crate: that crate's encoder writes image data
//! before its IFD and cannot place already-compressed tiles or copy arbitrary tags, which is
//! the whole point here. Only what GDAL's GTiff driver writes for single-image files with
//! internal overviews is accepted; anything else (big-endian files, masks, sub-IFDs, strips,
//! mixed tile sizes) is reported as [`Assembly::Unsupported`] so that the caller can fall back
//! on GDAL's COG driver.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// What [`assemble`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assembly {
    /// The COG was written.
    Written,
    /// The source has a structure this assembler does not handle (the reason); nothing
    /// useful was written.
    Unsupported(String),
}

const NEW_SUBFILE_TYPE: u16 = 254;
const IMAGE_WIDTH: u16 = 256;
const IMAGE_LENGTH: u16 = 257;
const STRIP_OFFSETS: u16 = 273;
const TILE_WIDTH: u16 = 322;
const TILE_LENGTH: u16 = 323;
const TILE_OFFSETS: u16 = 324;
const TILE_BYTE_COUNTS: u16 = 325;
const SUB_IFDS: u16 = 330;
const EXIF_IFD: u16 = 34665;
const GPS_IFD: u16 = 34853;

const SHORT: u16 = 3;
const LONG: u16 = 4;
const LONG8: u16 = 16;

/// GDAL's structural metadata of a COG with leaders and trailers (the text after the first
/// line; the trailing space is GDAL's, reserved for an in-place edition flag).
const GHOST_BODY: &str = "LAYOUT=IFDS_BEFORE_DATA\nBLOCK_ORDER=ROW_MAJOR\n\
BLOCK_LEADER=SIZE_AS_UINT4\nBLOCK_TRAILER=LAST_4_BYTES_REPEATED\n\
KNOWN_INCOMPATIBLE_EDITION=NO\n ";

/// The ghost area: a first line giving the size of the rest, then the rest.
fn ghost_area() -> Vec<u8> {
    format!(
        "GDAL_STRUCTURAL_METADATA_SIZE={:06} bytes\n{GHOST_BODY}",
        GHOST_BODY.len()
    )
    .into_bytes()
}

/// Bytes of one value of TIFF field type `t` (None: a type this module does not copy).
fn type_size(t: u16) -> Option<u64> {
    Some(match t {
        1 | 2 | 6 | 7 => 1,
        3 | 8 => 2,
        4 | 9 | 11 => 4,
        5 | 10 | 12 | 16 | 17 => 8,
        _ => return None,
    })
}

/// One IFD entry with its values as raw little-endian bytes.
#[derive(Debug, Clone)]
struct Entry {
    tag: u16,
    kind: u16,
    count: u64,
    bytes: Vec<u8>,
}

/// One image (full resolution or an overview) of the source.
#[derive(Debug, Clone)]
struct Image {
    width: u64,
    height: u64,
    tile: (u64, u64),
    reduced: bool,
    entries: Vec<Entry>,
    offsets: Vec<u64>,
    counts: Vec<u64>,
}

fn le_u16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}
fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}
fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

impl Entry {
    /// The values as unsigned integers (SHORT, LONG or LONG8 fields).
    fn integers(&self) -> Option<Vec<u64>> {
        let n = self.count as usize;
        match self.kind {
            SHORT => Some(
                (0..n)
                    .map(|i| le_u16(&self.bytes[2 * i..]) as u64)
                    .collect(),
            ),
            LONG => Some(
                (0..n)
                    .map(|i| le_u32(&self.bytes[4 * i..]) as u64)
                    .collect(),
            ),
            LONG8 => Some((0..n).map(|i| le_u64(&self.bytes[8 * i..])).collect()),
            _ => None,
        }
    }
    fn first(&self) -> Option<u64> {
        self.integers()?.first().copied()
    }
}

/// The source file's format: classic TIFF or BigTIFF (little-endian only).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Format {
    big: bool,
}

impl Format {
    fn header_len(self) -> u64 {
        if self.big {
            16
        } else {
            8
        }
    }
    /// Bytes of an inline value slot.
    fn slot(self) -> u64 {
        if self.big {
            8
        } else {
            4
        }
    }
    fn entry_len(self) -> u64 {
        if self.big {
            20
        } else {
            12
        }
    }
    /// Bytes of an IFD with `n` entries (count, entries, next-IFD offset), without its
    /// out-of-line values.
    fn ifd_len(self, n: usize) -> u64 {
        let (count, next) = if self.big { (8, 8) } else { (2, 4) };
        count + n as u64 * self.entry_len() + next
    }
}

/// A parsed source, or why its structure is not handled.
type Parsed = Result<(Format, Vec<Image>), String>;

/// Reads the source's header and every IFD of its chain.
fn read_images(f: &File, file_len: u64) -> std::io::Result<Parsed> {
    let read = |pos: u64, len: u64| -> std::io::Result<Vec<u8>> {
        if pos.checked_add(len).is_none_or(|end| end > file_len) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("a TIFF structure at byte {pos} runs past the end of the file"),
            ));
        }
        let mut b = vec![0u8; len as usize];
        f.read_exact_at(&mut b, pos)?;
        Ok(b)
    };
    let head = read(0, 16.min(file_len))?;
    if head.len() < 8 || &head[0..2] != b"II" {
        return Ok(Err("not a little-endian TIFF".into()));
    }
    let format = match le_u16(&head[2..]) {
        42 => Format { big: false },
        43 if head.len() == 16 && le_u16(&head[4..]) == 8 => Format { big: true },
        v => return Ok(Err(format!("TIFF version {v}"))),
    };
    let mut next = if format.big {
        le_u64(&head[8..])
    } else {
        le_u32(&head[4..]) as u64
    };
    let mut images = Vec::new();
    while next != 0 {
        if images.len() > 64 {
            return Ok(Err("more than 64 IFDs".into()));
        }
        let n = if format.big {
            le_u64(&read(next, 8)?)
        } else {
            le_u16(&read(next, 2)?) as u64
        };
        if n > 4096 {
            return Ok(Err(format!("an IFD of {n} entries")));
        }
        let count_len = if format.big { 8 } else { 2 };
        let raw = read(next + count_len, n * format.entry_len() + format.slot())?;
        let mut entries = Vec::with_capacity(n as usize);
        for e in raw.chunks_exact(format.entry_len() as usize) {
            let (tag, kind) = (le_u16(e), le_u16(&e[2..]));
            let (count, slot) = if format.big {
                (le_u64(&e[4..]), &e[12..20])
            } else {
                (le_u32(&e[4..]) as u64, &e[8..12])
            };
            let Some(size) = type_size(kind) else {
                return Ok(Err(format!("tag {tag} has field type {kind}")));
            };
            let Some(len) = count.checked_mul(size) else {
                return Ok(Err(format!("tag {tag} has {count} values")));
            };
            let bytes = if len <= format.slot() {
                slot[..len as usize].to_vec()
            } else {
                let pos = if format.big {
                    le_u64(slot)
                } else {
                    le_u32(slot) as u64
                };
                read(pos, len)?
            };
            entries.push(Entry {
                tag,
                kind,
                count,
                bytes,
            });
        }
        let tail = &raw[raw.len() - format.slot() as usize..];
        next = if format.big {
            le_u64(tail)
        } else {
            le_u32(tail) as u64
        };
        match image(entries) {
            Ok(i) => images.push(i),
            Err(why) => return Ok(Err(why)),
        }
    }
    Ok(Ok((format, images)))
}

/// Checks one IFD and picks out what the layout needs.
fn image(entries: Vec<Entry>) -> Result<Image, String> {
    let get = |tag: u16| entries.iter().find(|e| e.tag == tag);
    for tag in [STRIP_OFFSETS, SUB_IFDS, EXIF_IFD, GPS_IFD] {
        if get(tag).is_some() {
            return Err(format!("tag {tag} present"));
        }
    }
    if entries.windows(2).any(|w| w[0].tag >= w[1].tag) {
        return Err("IFD entries out of order".into());
    }
    let int = |tag: u16| get(tag).and_then(Entry::first);
    let subfile = int(NEW_SUBFILE_TYPE).unwrap_or(0);
    if subfile & !1 != 0 {
        return Err(format!("NewSubfileType {subfile} (a mask or a page)"));
    }
    let (Some(width), Some(height), Some(tw), Some(th)) = (
        int(IMAGE_WIDTH),
        int(IMAGE_LENGTH),
        int(TILE_WIDTH),
        int(TILE_LENGTH),
    ) else {
        return Err("not a tiled image".into());
    };
    let (Some(offsets), Some(counts)) = (
        get(TILE_OFFSETS).and_then(Entry::integers),
        get(TILE_BYTE_COUNTS).and_then(Entry::integers),
    ) else {
        return Err("tile offsets or byte counts missing".into());
    };
    if offsets.len() != counts.len() || tw == 0 || th == 0 {
        return Err("tile offsets and byte counts do not match".into());
    }
    Ok(Image {
        width,
        height,
        tile: (tw, th),
        reduced: subfile == 1,
        entries,
        offsets,
        counts,
    })
}

/// The images in COG order (full resolution, then overviews from the largest), or why the
/// set is not one COG.
fn cog_order(mut images: Vec<Image>) -> Result<Vec<Image>, String> {
    let Some(pos) = images.iter().position(|i| !i.reduced) else {
        return Err("no full-resolution image".into());
    };
    if images.iter().filter(|i| !i.reduced).count() != 1 {
        return Err("more than one full-resolution image".into());
    }
    let main = images.remove(pos);
    images.sort_by_key(|i| std::cmp::Reverse((i.width, i.height)));
    images.insert(0, main);
    let tile = images[0].tile;
    for w in images.windows(2) {
        if w[1].width > w[0].width || w[1].height > w[0].height {
            return Err("an overview larger than the level above it".into());
        }
    }
    if images.iter().any(|i| i.tile != tile) {
        return Err("levels with different tile sizes".into());
    }
    Ok(images)
}

/// Word-aligns `pos` (TIFF values start on an even byte).
fn even(pos: u64) -> u64 {
    pos + pos % 2
}

/// Bytes a tile takes in the COG: leader, data, trailer (nothing for a missing tile).
fn stored_len(count: u64) -> u64 {
    if count == 0 {
        0
    } else {
        count + 8
    }
}

/// A buffered file that counts the bytes written (to check the planned layout).
struct Counted {
    w: BufWriter<File>,
    n: u64,
}

impl Counted {
    fn put(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.n += b.len() as u64;
        self.w.write_all(b)
    }
}

/// Where the tiles of one level (0: full resolution, then the overviews from the largest)
/// are in a file of tiles: byte offset and byte count of each tile, in the TIFF's row-major
/// tile order (count 0: not written).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LevelTiles {
    /// Byte offset of each tile.
    pub offsets: Vec<u64>,
    /// Byte count of each tile.
    pub counts: Vec<u64>,
}

/// Copies the tiled GeoTIFF `src` (as GDAL's GTiff driver writes it, with internal
/// overviews whose tiles have the size of the full resolution's) into a COG at `dst`.
/// An I/O error is an error; a structure it does not handle is [`Assembly::Unsupported`].
pub fn assemble(src: &Path, dst: &Path) -> std::io::Result<Assembly> {
    let f = File::open(src)?;
    let file_len = f.metadata()?.len();
    let (format, images) = match read_images(&f, file_len)?
        .and_then(|(format, images)| cog_order(images).map(|i| (format, i)))
    {
        Ok(v) => v,
        Err(why) => return Ok(Assembly::Unsupported(why)),
    };
    write_cog(format, &images, &f, file_len, dst)
}

/// [`assemble`] with the tiles taken from `tiles` (already compressed as `template`'s
/// compression tag says), where `levels` says: `template` gives every tag (it is GDAL's
/// sparse file of the map, with its overview levels and no tile written).
pub fn assemble_tiles(
    template: &Path,
    tiles: &Path,
    levels: &[LevelTiles],
    dst: &Path,
) -> std::io::Result<Assembly> {
    let f = File::open(template)?;
    let file_len = f.metadata()?.len();
    let (format, mut images) = match read_images(&f, file_len)?
        .and_then(|(format, images)| cog_order(images).map(|i| (format, i)))
    {
        Ok(v) => v,
        Err(why) => return Ok(Assembly::Unsupported(why)),
    };
    if images.len() != levels.len() {
        return Ok(Assembly::Unsupported(format!(
            "{} levels in the file, {} of tiles",
            images.len(),
            levels.len()
        )));
    }
    for (k, (img, l)) in images.iter_mut().zip(levels).enumerate() {
        if img.offsets.len() != l.offsets.len() || l.counts.len() != l.offsets.len() {
            return Ok(Assembly::Unsupported(format!(
                "level {k}: {} tiles in the file, {} given",
                img.offsets.len(),
                l.offsets.len()
            )));
        }
        img.offsets.clone_from(&l.offsets);
        img.counts.clone_from(&l.counts);
    }
    let t = File::open(tiles)?;
    let tiles_len = t.metadata()?.len();
    write_cog(format, &images, &t, tiles_len, dst)
}

/// Writes the COG of `images` (the source's `format`, or BigTIFF when a classic TIFF would
/// pass 4 GiB) with their tiles read from `tiles`.
fn write_cog(
    format: Format,
    images: &[Image],
    tiles: &File,
    tiles_len: u64,
    dst: &Path,
) -> std::io::Result<Assembly> {
    // 1. Where everything goes.
    let ghost = ghost_area();
    let mut format = format;
    let mut plan = CogPlan::new(format, images, ghost.len() as u64);
    if !format.big && plan.total > u32::MAX as u64 {
        // Every field keeps its type and values; only offsets widen.
        format = Format { big: true };
        plan = CogPlan::new(format, images, ghost.len() as u64);
    }

    // 2. Header, ghost area and IFDs.
    let mut w = Counted {
        w: BufWriter::with_capacity(4 << 20, File::create(dst)?),
        n: 0,
    };
    w.put(&header(format, &ghost, plan.first_ifd))?;
    for (k, img) in images.iter().enumerate() {
        let (table, values) = plan.ifd(format, k, img);
        w.put(&table)?;
        w.put(&values)?;
    }
    debug_assert_eq!(w.n, plan.data_start);

    // 3. The tiles, byte for byte, each between its leader and trailer.
    copy_tiles(tiles, tiles_len, images, &mut w)?;
    debug_assert_eq!(w.n, plan.total);
    w.w.flush()?;
    Ok(Assembly::Written)
}

impl Format {
    /// `v` as an offset of this format (8 bytes in BigTIFF, 4 in classic TIFF).
    fn offset_bytes(self, v: u64) -> Vec<u8> {
        if self.big {
            v.to_le_bytes().to_vec()
        } else {
            (v as u32).to_le_bytes().to_vec()
        }
    }

    /// The field type of tile offsets in this format.
    fn offsets_kind(self) -> u16 {
        if self.big {
            LONG8
        } else {
            LONG
        }
    }
}

/// Where everything goes in the COG: the IFDs (each followed by its out-of-line values) from
/// `first_ifd` on, then from `data_start` the tiles from the smallest level to the full
/// resolution, up to `total` bytes.
struct CogPlan {
    first_ifd: u64,
    /// Position of every image's IFD.
    ifd_pos: Vec<u64>,
    data_start: u64,
    /// Every image's tile offsets in the COG (0 for a missing tile).
    new_offsets: Vec<Vec<u64>>,
    total: u64,
}

impl CogPlan {
    fn new(format: Format, images: &[Image], ghost_len: u64) -> CogPlan {
        let first_ifd = even(format.header_len() + ghost_len);
        let mut ifd_pos = Vec::with_capacity(images.len());
        let mut pos = first_ifd;
        for img in images {
            ifd_pos.push(pos);
            pos += format.ifd_len(img.entries.len());
            for e in &img.entries {
                let len = match e.tag {
                    TILE_OFFSETS => e.count * type_size(format.offsets_kind()).unwrap_or(8),
                    TILE_BYTE_COUNTS => e.count * 4,
                    _ => e.bytes.len() as u64,
                };
                if len > format.slot() {
                    pos = even(pos) + len;
                }
            }
            pos = even(pos);
        }
        let data_start = pos;
        let mut new_offsets: Vec<Vec<u64>> = vec![Vec::new(); images.len()];
        for (k, img) in images.iter().enumerate().rev() {
            new_offsets[k] = img
                .counts
                .iter()
                .map(|&c| {
                    let at = if c == 0 { 0 } else { pos + 4 };
                    pos += stored_len(c);
                    at
                })
                .collect();
        }
        CogPlan {
            first_ifd,
            ifd_pos,
            data_start,
            new_offsets,
            total: pos,
        }
    }

    /// The IFD of image `k` (entry count, entries, next-IFD offset) and its out-of-line
    /// values: every entry as the source has it, the tile offsets of this plan.
    fn ifd(&self, format: Format, k: usize, img: &Image) -> (Vec<u8>, Vec<u8>) {
        let mut table = Vec::new();
        let mut values = Vec::new();
        let values_start = self.ifd_pos[k] + format.ifd_len(img.entries.len());
        if format.big {
            table.extend((img.entries.len() as u64).to_le_bytes());
        } else {
            table.extend((img.entries.len() as u16).to_le_bytes());
        }
        for e in &img.entries {
            let (kind, bytes) = match e.tag {
                TILE_OFFSETS => {
                    let b: Vec<u8> = self.new_offsets[k]
                        .iter()
                        .flat_map(|&o| format.offset_bytes(o))
                        .collect();
                    (format.offsets_kind(), b)
                }
                // The counts of the tiles laid out (a tile is far below 4 GiB); a sparse
                // source may hold zeros of a narrower type.
                TILE_BYTE_COUNTS => {
                    let b: Vec<u8> = img
                        .counts
                        .iter()
                        .flat_map(|&c| (c as u32).to_le_bytes())
                        .collect();
                    (LONG, b)
                }
                _ => (e.kind, e.bytes.clone()),
            };
            table.extend(e.tag.to_le_bytes());
            table.extend(kind.to_le_bytes());
            if format.big {
                table.extend(e.count.to_le_bytes());
            } else {
                table.extend((e.count as u32).to_le_bytes());
            }
            if bytes.len() as u64 <= format.slot() {
                let mut slot = bytes;
                slot.resize(format.slot() as usize, 0);
                table.extend(slot);
            } else {
                if values.len() % 2 == 1 {
                    values.push(0);
                }
                table.extend(format.offset_bytes(values_start + values.len() as u64));
                values.extend(bytes);
            }
        }
        let next = self.ifd_pos.get(k + 1).copied().unwrap_or(0);
        table.extend(format.offset_bytes(next));
        if values.len() % 2 == 1 {
            values.push(0);
        }
        (table, values)
    }
}

/// The TIFF header naming the first IFD at `first_ifd`, then the ghost area, padded up to it.
fn header(format: Format, ghost: &[u8], first_ifd: u64) -> Vec<u8> {
    let mut head = b"II".to_vec();
    if format.big {
        head.extend(43u16.to_le_bytes());
        head.extend(8u16.to_le_bytes());
        head.extend(0u16.to_le_bytes());
    } else {
        head.extend(42u16.to_le_bytes());
    }
    head.extend(format.offset_bytes(first_ifd));
    head.extend(ghost);
    head.resize(first_ifd as usize, 0);
    head
}

/// Copies every tile of `images` from `f`, smallest level first, each between its size
/// leader and its last 4 bytes repeated.
fn copy_tiles(f: &File, file_len: u64, images: &[Image], w: &mut Counted) -> std::io::Result<()> {
    let mut buf = Vec::new();
    for img in images.iter().rev() {
        for (&at, &count) in img.offsets.iter().zip(&img.counts) {
            if count == 0 {
                continue;
            }
            if at.checked_add(count).is_none_or(|end| end > file_len) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("a tile at byte {at} runs past the end of the file"),
                ));
            }
            buf.resize(count as usize, 0);
            f.read_exact_at(&mut buf, at)?;
            w.put(&(count as u32).to_le_bytes())?;
            w.put(&buf)?;
            let mut trailer = [0u8; 4];
            let tail = &buf[buf.len().saturating_sub(4)..];
            trailer[..tail.len()].copy_from_slice(tail);
            w.put(&trailer)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Compression, Layout};
    use crate::grid::{AreaModel, Grid};
    use crate::raster::categories;
    use crate::raster::overview::Mode;
    use crate::raster::writer::{MapFormat, MapSpec, MapWriter};
    use gdal::Dataset;

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

    fn format(block_px: usize, compression: Compression, threads: usize) -> MapFormat {
        MapFormat {
            block_px,
            compression,
            layout: Layout::Cog,
            write_threads: threads,
            copy_threads: threads,
        }
    }

    /// A textured float map with nodata holes (values and NaN in patches and speckle).
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

    /// Writes `value` over `g` through the [`MapWriter`] `w` in blocks of `format.block_px`,
    /// and commits it as the map's file (the assembled COG, or GDAL's COG driver's with
    /// `via_gdal`).
    fn fill<C: crate::raster::overview::Cell>(
        mut w: MapWriter<C>,
        g: &Grid,
        block_px: usize,
        value: fn(usize, usize) -> C::Value,
        via_gdal: bool,
    ) {
        for win in g.windows(block_px, 0..g.height) {
            let data = (0..win.height)
                .flat_map(|r| (0..win.width).map(move |c| value(win.col + c, win.row + r)))
                .collect();
            w.write(win, data).unwrap();
        }
        let (tmp, path) = if via_gdal {
            w.finish_via_gdal().unwrap()
        } else {
            w.finish().unwrap()
        };
        tmp.commit(&path).unwrap();
    }

    fn write_float(dir: &Path, name: &str, g: &Grid, format: MapFormat, via_gdal: bool) {
        let spec = MapSpec {
            file_name: name.into(),
            description: "a test quantity".into(),
            unit: "t C/ha".into(),
            categorical: false,
        };
        let md = vec![("SINKMAP_TEST".to_string(), "yes".to_string())];
        let mut w = MapWriter::create(dir, spec, g, format, &md).unwrap();
        if via_gdal {
            w = w.with_gdal_tiles();
        }
        fill(w, g, format.block_px, float_value, via_gdal);
    }

    fn write_codes(dir: &Path, name: &str, g: &Grid, format: MapFormat, via_gdal: bool) {
        let spec = MapSpec {
            file_name: name.into(),
            description: "a test class".into(),
            unit: String::new(),
            categorical: true,
        };
        let legend = "0=none;1=a;2=b;3=c";
        let md = vec![("SINKMAP_LEGEND".to_string(), legend.to_string())];
        let mut w = MapWriter::<Mode<255>>::create_typed(dir, spec, g, format, &md, 255.0)
            .unwrap()
            .with_categories(categories::from_legend(legend), g);
        if via_gdal {
            w = w.with_gdal_tiles();
        }
        fill(w, g, format.block_px, code_value, via_gdal);
    }

    /// Every level of band 1 as raw bytes (full resolution first), with its size.
    fn levels(path: &Path) -> Vec<(usize, usize, Vec<u8>)> {
        let ds = Dataset::open(path).unwrap();
        let band = ds.rasterband(1).unwrap();
        let mut out = Vec::new();
        let read = |b: &gdal::raster::RasterBand| -> (usize, usize, Vec<u8>) {
            let (w, h) = b.size();
            let bytes = match b.band_type() {
                gdal::raster::GdalDataType::Float32 => b
                    .read_as::<f32>((0, 0), (w, h), (w, h), None)
                    .unwrap()
                    .data()
                    .iter()
                    .flat_map(|v| v.to_bits().to_le_bytes())
                    .collect(),
                _ => b
                    .read_as::<u8>((0, 0), (w, h), (w, h), None)
                    .unwrap()
                    .data()
                    .to_vec(),
            };
            (w, h, bytes)
        };
        out.push(read(&band));
        for k in 0..band.overview_count().unwrap() {
            out.push(read(&band.overview(k as usize).unwrap()));
        }
        out
    }

    /// `gdalinfo -json` of every metadata domain, without the file's own name.
    fn info(path: &Path) -> serde_json::Value {
        let o = std::process::Command::new("gdalinfo")
            .args(["-json", "-mdd", "all", "-nofl"])
            .arg(path)
            .output()
            .expect("gdalinfo runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let mut v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let m = v.as_object_mut().unwrap();
        m.remove("description");
        m.remove("files");
        // GDAL's derived data sets are named after the file.
        if let Some(md) = m.get_mut("metadata").and_then(|x| x.as_object_mut()) {
            md.remove("DERIVED_SUBDATASETS");
        }
        v
    }

    /// GDAL's own COG validator (python3-gdal), when it is installed: Some(errors).
    fn gdal_validator(path: &Path) -> Option<String> {
        ["python3", "/usr/bin/python3"]
            .iter()
            .find_map(|python| validator_with(python, path))
            .or_else(|| {
                eprintln!("GDAL's COG validator (python3-gdal) not found: structure checked alone");
                None
            })
    }

    fn validator_with(python: &str, path: &Path) -> Option<String> {
        let o = std::process::Command::new(python)
            .args([
                "-c",
                "import sys\nfrom osgeo_utils.samples import validate_cloud_optimized_geotiff as v\n\
                 w, e, _ = v.validate(sys.argv[1], full_check=True)\nprint('\\n'.join(e))",
            ])
            .arg(path)
            .output()
            .ok()?;
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
    }

    /// The structure a COG must have, read straight from the bytes: ghost area first, the
    /// IFDs in level order before any tile, the tiles from the smallest level to the full
    /// resolution, row by row, each between its size leader and its repeated last 4 bytes.
    fn check_cog_structure(path: &Path) {
        let bytes = std::fs::read(path).unwrap();
        let f = File::open(path).unwrap();
        let (format, images) = read_images(&f, bytes.len() as u64).unwrap().unwrap();
        let start = format.header_len() as usize;
        let ghost = String::from_utf8_lossy(&bytes[start..start + 200]).to_string();
        assert!(
            ghost.starts_with("GDAL_STRUCTURAL_METADATA_SIZE="),
            "{ghost}"
        );
        for key in [
            "LAYOUT=IFDS_BEFORE_DATA",
            "BLOCK_ORDER=ROW_MAJOR",
            "BLOCK_LEADER=SIZE_AS_UINT4",
            "BLOCK_TRAILER=LAST_4_BYTES_REPEATED",
            "KNOWN_INCOMPATIBLE_EDITION=NO",
        ] {
            assert!(ghost.contains(key), "{key} missing: {ghost}");
        }
        // Chain order: full resolution, then smaller and smaller overviews.
        assert!(!images[0].reduced);
        for w in images.windows(2) {
            assert!(w[1].reduced && w[1].width < w[0].width);
        }
        let mut last_end = 0u64;
        for img in images.iter().rev() {
            for (&at, &n) in img.offsets.iter().zip(&img.counts) {
                assert!(n > 0 && at > last_end, "tile at {at} not after {last_end}");
                let (at, n) = (at as usize, n as usize);
                assert_eq!(le_u32(&bytes[at - 4..]) as usize, n, "leader");
                assert_eq!(
                    bytes[at + n - 4..at + n],
                    bytes[at + n..at + n + 4],
                    "trailer"
                );
                last_end = (at + n) as u64;
            }
        }
        assert_eq!(
            last_end + 4,
            bytes.len() as u64,
            "the file ends with the last tile"
        );
    }

    #[test]
    fn assembled_cog_equals_gdal_cog_at_every_level_for_every_compression() {
        let tmp = tempfile::tempdir().unwrap();
        // 1300 × 900: two overview levels (650 × 450, 325 × 225), partial edge tiles.
        let g = grid(1300, 900);
        for c in [
            Compression::None,
            Compression::Deflate,
            Compression::Zstd,
            Compression::Lzw,
        ] {
            let dir = tmp.path().join(format!("{c:?}"));
            std::fs::create_dir_all(&dir).unwrap();
            write_float(&dir, "a.tif", &g, format(512, c, 1), false);
            write_float(&dir, "b.tif", &g, format(512, c, 1), true);
            let (a, b) = (dir.join("a.tif"), dir.join("b.tif"));
            let (la, lb) = (levels(&a), levels(&b));
            assert_eq!(la.len(), 3, "{c:?}: full resolution and two overviews");
            assert_eq!(la, lb, "{c:?}: pixels differ");
            assert_eq!(info(&a), info(&b), "{c:?}: metadata differ");
            assert_eq!(info(&a)["metadata"]["IMAGE_STRUCTURE"]["LAYOUT"], "COG");
            check_cog_structure(&a);
            if let Some(errors) = gdal_validator(&a) {
                assert_eq!(errors, "", "{c:?}: GDAL's validator");
            }
            // Something real was compared: the map has values and holes at every level.
            for (w, h, bytes) in &la {
                let v: Vec<f32> = bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                assert_eq!(v.len(), w * h);
                assert!(v.iter().any(|x| x.is_nan()) && v.iter().any(|x| *x > 1.0));
            }
        }
    }

    #[test]
    fn assembled_class_map_keeps_colours_categories_and_attribute_table() {
        let tmp = tempfile::tempdir().unwrap();
        let g = grid(1100, 700);
        write_codes(
            tmp.path(),
            "a.tif",
            &g,
            format(512, Compression::Zstd, 1),
            false,
        );
        write_codes(
            tmp.path(),
            "b.tif",
            &g,
            format(512, Compression::Zstd, 1),
            true,
        );
        let (a, b) = (tmp.path().join("a.tif"), tmp.path().join("b.tif"));
        assert_eq!(levels(&a), levels(&b));
        let (ia, ib) = (info(&a), info(&b));
        assert_eq!(ia, ib);
        let band = &ia["bands"][0];
        assert_eq!(band["noDataValue"], 255.0);
        assert!(band["colorTable"]["entries"].as_array().unwrap().len() >= 4);
        // Category names and the attribute table sit in the side-car, moved with the COG.
        let aux = std::fs::read_to_string(aux_path(&a)).unwrap();
        assert_eq!(aux, std::fs::read_to_string(aux_path(&b)).unwrap());
        assert!(
            aux.contains("GDALRasterAttributeTable") && aux.contains(">a<"),
            "{aux}"
        );
        check_cog_structure(&a);
        if let Some(errors) = gdal_validator(&a) {
            assert_eq!(errors, "", "GDAL's validator");
        }
    }

    fn aux_path(p: &Path) -> std::path::PathBuf {
        crate::raster::writer::aux_xml(p)
    }

    /// The pixels of every level do not depend on the processing block or GDAL's threads (the
    /// bytes may: GDAL pads the edge tiles beyond the map differently when they are written in
    /// parts), and every such file is a valid COG.
    #[test]
    fn assembled_cog_has_the_same_pixels_whatever_the_block_size_and_threads() {
        let tmp = tempfile::tempdir().unwrap();
        let g = grid(1500, 1100);
        let reference = tmp.path().join("ref");
        std::fs::create_dir_all(&reference).unwrap();
        write_float(
            &reference,
            "m.tif",
            &g,
            format(512, Compression::Deflate, 1),
            false,
        );
        let want = levels(&reference.join("m.tif"));
        assert_eq!(want.len(), 3);
        // Deflate: GDAL compresses the tiles; ZSTD: the writer does (its own tiles).
        for (block, threads, c) in [
            (256, 1, Compression::Deflate),
            (1024, 1, Compression::Deflate),
            (512, 3, Compression::Deflate),
            (128, 2, Compression::Deflate),
            (256, 1, Compression::Zstd),
            (1024, 2, Compression::Zstd),
            (128, 1, Compression::Zstd),
        ] {
            let dir = tmp.path().join(format!("{block}-{threads}-{c:?}"));
            std::fs::create_dir_all(&dir).unwrap();
            write_float(&dir, "m.tif", &g, format(block, c, threads), false);
            let got = dir.join("m.tif");
            assert!(
                levels(&got) == want,
                "block {block}, {threads} threads, {c:?}: other pixels"
            );
            check_cog_structure(&got);
            if let Some(errors) = gdal_validator(&got) {
                assert_eq!(errors, "", "block {block}, {c:?}: GDAL's validator");
            }
        }
    }

    #[test]
    fn files_of_another_structure_are_left_to_gdal() {
        let tmp = tempfile::tempdir().unwrap();
        let driver = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
        let cases: [(&str, &[(&str, &str)]); 2] = [
            ("strips.tif", &[]),
            ("big_endian.tif", &[("TILED", "YES"), ("ENDIANNESS", "BIG")]),
        ];
        for (name, options) in cases {
            let path = tmp.path().join(name);
            let mut opts = gdal::raster::RasterCreationOptions::new();
            for (k, v) in options {
                opts.add_name_value(k, v).unwrap();
            }
            let ds = driver
                .create_with_band_type_with_options::<u8, _>(&path, 600, 600, 1, &opts)
                .unwrap();
            ds.close().unwrap();
            let out = tmp.path().join(format!("cog-{name}"));
            let done = assemble(&path, &out).unwrap();
            assert!(matches!(done, Assembly::Unsupported(_)), "{name}: {done:?}");
        }
    }
}
