//! The tiles of one map level (full resolution or an overview) that are still arriving piece
//! by piece, and the scratch file that holds the larger pieces meanwhile.
//!
//! Why a scratch file: a 512-px tile of overview level k covers 2ᵏ × 2ᵏ blocks, so its first
//! piece arrives 2ᵏ rows of blocks before its last. Held in memory, the pieces waiting for
//! their tiles came to about 512 rows × the map width × 13 bytes for the four maps (133 MB at
//! 20 000 columns, 610 MB at 91 600): memory grew with the width. In the scratch file they
//! cost one write and one read per piece (a block gives one piece per level) and the memory
//! of a run no longer depends on the map's size. Pieces under [`SPILL_MIN_BYTES`] (the
//! coarse levels, a few bytes a column together) stay in memory.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::grid::Window;
use crate::io::temp::{output_error, TempFile};

/// Pieces of at least this many bytes wait in the scratch file, smaller ones in memory.
pub const SPILL_MIN_BYTES: usize = 1024;

/// The scratch file of a map's waiting pieces, created beside the map at the first piece
/// that goes there and deleted with it. Freed places are reused for pieces of the same size
/// (the pieces of a level mostly have one size), so the file stays about as large as the
/// pieces waiting at once.
pub struct Spill {
    /// The map the pieces belong to (named in errors).
    map: PathBuf,
    file: Option<(TempFile, File)>,
    /// Pieces of at least this many bytes go to the file.
    min_bytes: usize,
    /// End of the file (bytes).
    end: u64,
    /// Free places by their length in bytes.
    free: HashMap<usize, Vec<u64>>,
    /// Bytes of the pieces now in the file.
    held: u64,
}

impl Spill {
    /// The scratch file for the pieces of the map `final_path`, pieces of `min_bytes` or more
    /// going there.
    pub fn beside(final_path: &Path, min_bytes: usize) -> Spill {
        Spill {
            map: final_path.to_path_buf(),
            file: None,
            min_bytes,
            end: 0,
            free: HashMap::new(),
            held: 0,
        }
    }

    /// Size of the scratch file (bytes): at most the pieces that ever waited at once.
    pub fn file_bytes(&self) -> u64 {
        self.end
    }

    /// Bytes of the pieces now in the file.
    pub fn held_bytes(&self) -> u64 {
        self.held
    }

    fn error(&self, e: std::io::Error) -> Error {
        output_error(&self.map, format!("scratch file of overview pieces: {e}"))
    }

    /// Stores `bytes` in the file; returns where.
    fn put(&mut self, bytes: &[u8]) -> Result<u64> {
        if self.file.is_none() {
            let tmp = TempFile::beside(&self.map, "pieces");
            let f = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp.path)
                .map_err(|e| self.error(e))?;
            self.file = Some((tmp, f));
        }
        let at = match self.free.get_mut(&bytes.len()).and_then(|v| v.pop()) {
            Some(at) => at,
            None => {
                self.end += bytes.len() as u64;
                self.end - bytes.len() as u64
            }
        };
        let res = match self.file.as_mut() {
            Some((_, f)) => f.seek(SeekFrom::Start(at)).and_then(|_| f.write_all(bytes)),
            None => Ok(()),
        };
        res.map_err(|e| self.error(e))?;
        self.held += bytes.len() as u64;
        Ok(at)
    }

    /// Reads the piece at `at` into `out` (its length) and frees its place.
    fn take(&mut self, at: u64, out: &mut [u8]) -> Result<()> {
        let res = match self.file.as_mut() {
            Some((_, f)) => f.seek(SeekFrom::Start(at)).and_then(|_| f.read_exact(out)),
            None => Err(std::io::Error::other("no scratch file")),
        };
        res.map_err(|e| self.error(e))?;
        self.free.entry(out.len()).or_default().push(at);
        self.held -= out.len() as u64;
        Ok(())
    }
}

/// Where a waiting piece is.
enum Stored<T> {
    Memory(Vec<T>),
    /// At this byte offset of the scratch file.
    Spilled(u64),
}

/// The pieces of one tile that have arrived.
struct Waiting<T> {
    /// Pixels arrived (the tile goes out when they are all there).
    arrived_px: usize,
    parts: Vec<(Window, Stored<T>)>,
}

/// The tiles of one level not yet written. A piece of the level (a block, or its reduction
/// to this level) is cut along the tile edges; a tile goes out, whole, as soon as its last
/// pixel has arrived, to the writer's own tiles or to GDAL (one write per tile, flushed from
/// GDAL's block cache at once).
///
/// Why whole tiles: GDAL's block cache is shared by every thread of the process. When it is
/// full, the thread that needs room writes out whichever dirty block is oldest, also a block
/// of another thread's dataset, while that thread works on the same file; with GDAL 3.6 this
/// lost overview tiles: a 400 Mpx run wrote a sink map whose level-2 overview tile held 7 of
/// its 64 parts, the rest nodata, while every pixel of the full-resolution map was right.
/// Handing GDAL only whole tiles and flushing each from the writing thread keeps at most one
/// tile per map in the cache: it never fills, so no thread ever writes another's block, no
/// tile is compressed half-empty and read back, and the padding of an edge tile (its one
/// write covers its whole valid area) is zeros.
pub struct PendingTiles<T> {
    /// Level size (columns, rows).
    size: (usize, usize),
    /// The file's tile size at this level.
    tile: (usize, usize),
    /// Tiles across.
    across: usize,
    /// Waiting tiles by index (row-major).
    waiting: HashMap<usize, Waiting<T>>,
    /// Tiles written, by index.
    written: Vec<bool>,
    written_n: usize,
}

impl<T: bytemuck::Pod> PendingTiles<T> {
    /// A level of `size` (columns, rows) in tiles of `tile` px.
    pub fn new(size: (usize, usize), tile: (usize, usize)) -> PendingTiles<T> {
        let tile = (tile.0.max(1), tile.1.max(1));
        let across = size.0.div_ceil(tile.0);
        PendingTiles {
            size,
            tile,
            across,
            waiting: HashMap::new(),
            written: vec![false; across * size.1.div_ceil(tile.1)],
            written_n: 0,
        }
    }

    /// The tile (clipped to the level) with top-left pixel `(col, row)`, and its index.
    fn tile_at(&self, col: usize, row: usize) -> (Window, usize) {
        let ((width, height), (tw, th)) = (self.size, self.tile);
        let (c, r) = (col - col % tw, row - row % th);
        let t = Window {
            col: c,
            row: r,
            width: tw.min(width - c),
            height: th.min(height - r),
        };
        (t, (r / th) * self.across + c / tw)
    }

    /// Adds the piece at window `w` of this level, with values `data` (row-major). Pieces must
    /// not overlap (one that gives a tile more pixels than it has is an error). Every tile it
    /// completes goes to `write`: its window (clipped to the level) and values.
    pub fn add(
        &mut self,
        w: Window,
        data: Vec<T>,
        spill: &mut Spill,
        write: &mut dyn FnMut(Window, Vec<T>) -> Result<()>,
    ) -> Result<()> {
        let (width, height) = self.size;
        if w.col + w.width > width || w.row + w.height > height || data.len() != w.len() {
            return Err(Error::internal(format!(
                "map piece {w:?} ({} values) outside its level ({width} × {height})",
                data.len()
            )));
        }
        let parts = tiles_of(w, self.tile);
        if parts.len() == 1 {
            return self.add_part(parts[0], data, spill, write);
        }
        for p in parts {
            self.add_part(p, cut(&data, w, p), spill, write)?;
        }
        Ok(())
    }

    /// [`PendingTiles::add`] of a piece within one tile.
    fn add_part(
        &mut self,
        p: Window,
        data: Vec<T>,
        spill: &mut Spill,
        write: &mut dyn FnMut(Window, Vec<T>) -> Result<()>,
    ) -> Result<()> {
        let (t, i) = self.tile_at(p.col, p.row);
        if self.written[i] {
            return Err(Error::internal(format!(
                "map piece {p:?} of tile {t:?}, which is already written"
            )));
        }
        if p == t {
            // A whole tile: out as it is.
            self.written[i] = true;
            self.written_n += 1;
            return write(t, data);
        }
        let bytes: &[u8] = bytemuck::cast_slice(&data);
        let stored = if bytes.len() >= spill.min_bytes {
            Stored::Spilled(spill.put(bytes)?)
        } else {
            Stored::Memory(data)
        };
        let entry = self.waiting.entry(i).or_insert_with(|| Waiting {
            arrived_px: 0,
            parts: Vec::new(),
        });
        entry.arrived_px += p.len();
        entry.parts.push((p, stored));
        if entry.arrived_px < t.len() {
            return Ok(());
        }
        if entry.arrived_px > t.len() {
            return Err(Error::internal(format!(
                "overlapping map pieces in tile {t:?}"
            )));
        }
        let done = self.waiting.remove(&i).map(|e| e.parts).unwrap_or_default();
        self.written[i] = true;
        self.written_n += 1;
        let mut values = vec![T::zeroed(); t.len()];
        let mut read = Vec::new();
        for (p, stored) in done {
            let v = match stored {
                Stored::Memory(v) => v,
                Stored::Spilled(at) => {
                    read.resize(p.len(), T::zeroed());
                    spill.take(at, bytemuck::cast_slice_mut(&mut read))?;
                    std::mem::take(&mut read)
                }
            };
            for r in 0..p.height {
                let dst = (p.row - t.row + r) * t.width + (p.col - t.col);
                values[dst..dst + p.width].copy_from_slice(&v[r * p.width..(r + 1) * p.width]);
            }
            read = v;
        }
        write(t, values)
    }

    /// True once every tile has been written.
    pub fn is_complete(&self) -> bool {
        self.written_n == self.written.len()
    }
}

/// The values of window `t` out of `src`, the row-major values of window `within` (which
/// holds `t`).
fn cut<T: Copy>(src: &[T], within: Window, t: Window) -> Vec<T> {
    let mut v = Vec::with_capacity(t.len());
    for r in 0..t.height {
        let start = (t.row - within.row + r) * within.width + (t.col - within.col);
        v.extend_from_slice(&src[start..start + t.width]);
    }
    v
}

/// The windows of the `tile` tiles that window `w` (whose edges are tile edges or the
/// level's edges) covers, row by row, clipped to `w`.
fn tiles_of(w: Window, tile: (usize, usize)) -> Vec<Window> {
    let (tw, th) = tile;
    let mut out = Vec::new();
    let mut row = w.row;
    while row < w.row + w.height {
        let h = (th - row % th).min(w.row + w.height - row);
        let mut col = w.col;
        while col < w.col + w.width {
            let cw = (tw - col % tw).min(w.col + w.width - col);
            out.push(Window {
                col,
                row,
                width: cw,
                height: h,
            });
            col += cw;
        }
        row += h;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn win(col: usize, row: usize, width: usize, height: usize) -> Window {
        Window {
            col,
            row,
            width,
            height,
        }
    }

    #[test]
    fn tiles_of_a_window_are_its_tiles_clipped_row_by_row() {
        // 1100 × 1300 in 512-px tiles: 3 × 3 tiles, the last column 76 wide, the last row
        // 276 high.
        let t = tiles_of(win(0, 0, 1100, 1300), (512, 512));
        assert_eq!(t.len(), 9);
        assert_eq!(t[0], win(0, 0, 512, 512));
        assert_eq!(t[2], win(1024, 0, 76, 512));
        assert_eq!(t[8], win(1024, 1024, 76, 276));
        // A window of two tiles' height from a tile edge.
        assert_eq!(
            tiles_of(win(512, 512, 588, 788), (512, 512)),
            vec![
                win(512, 512, 512, 512),
                win(1024, 512, 76, 512),
                win(512, 1024, 512, 276),
                win(1024, 1024, 76, 276),
            ]
        );
        assert!(tiles_of(win(3, 3, 0, 5), (512, 512)).is_empty());
    }

    /// Feeds a `w` × `h` level in row-major blocks of `block` px (values: their index) to
    /// [`PendingTiles`] with `tile`-px tiles and a scratch file for pieces of `min_bytes` or
    /// more; returns what it writes and the scratch file's largest size (bytes).
    fn written(
        w: usize,
        h: usize,
        block: usize,
        tile: usize,
        min_bytes: usize,
    ) -> (Vec<(Window, Vec<u32>)>, u64) {
        let dir = tempfile::tempdir().unwrap();
        let mut spill = Spill::beside(&dir.path().join("map.tif"), min_bytes);
        let mut level = PendingTiles::new((w, h), (tile, tile));
        let mut out = Vec::new();
        let mut row = 0;
        while row < h {
            let bh = block.min(h - row);
            let mut col = 0;
            while col < w {
                let bw = block.min(w - col);
                let data = (0..bh)
                    .flat_map(|r| (0..bw).map(move |c| ((row + r) * w + col + c) as u32))
                    .collect();
                level
                    .add(win(col, row, bw, bh), data, &mut spill, &mut |t, v| {
                        out.push((t, v));
                        Ok(())
                    })
                    .unwrap();
                col += bw;
            }
            row += bh;
        }
        assert!(level.is_complete());
        assert!(level.waiting.is_empty());
        assert_eq!(spill.held_bytes(), 0, "every piece read back");
        (out, spill.file_bytes())
    }

    #[test]
    fn every_tile_is_written_once_whole_with_its_values_from_memory_or_the_scratch_file() {
        // Blocks that straddle tile rows (24 px, tiles of 32), whole tiles (64 and 32) and
        // blocks smaller than a tile (8); pieces all in memory, all in the file, or both.
        for (block, tile) in [(24, 32), (8, 32), (64, 32), (32, 32), (40, 16)] {
            for min_bytes in [0, 200, usize::MAX] {
                let (w, h) = (100, 70);
                let (out, file_bytes) = written(w, h, block, tile, min_bytes);
                let mut windows: Vec<Window> = out.iter().map(|(t, _)| *t).collect();
                windows.sort_by_key(|t| (t.row, t.col));
                assert_eq!(
                    windows,
                    tiles_of(win(0, 0, w, h), (tile, tile)),
                    "block {block}"
                );
                for (t, v) in &out {
                    let want: Vec<u32> = (0..t.height)
                        .flat_map(|r| {
                            (0..t.width).map(move |c| ((t.row + r) * w + t.col + c) as u32)
                        })
                        .collect();
                    assert_eq!(v, &want, "block {block}, tile {t:?}, min {min_bytes}");
                }
                // The file holds at most the pieces of the rows of tiles a row of blocks
                // reaches into (places are reused), nothing when everything stays in memory.
                let rows_open = (block.div_ceil(tile) + 1) * tile;
                assert!(file_bytes <= (rows_open * w * 4) as u64, "{file_bytes}");
                if min_bytes == usize::MAX {
                    assert_eq!(file_bytes, 0);
                }
            }
        }
    }

    #[test]
    fn the_scratch_file_stays_as_large_as_the_pieces_waiting_at_once() {
        // 4 rows of 8-px blocks per row of 32-px tiles, 1000 px wide: at most a row of tiles
        // waits (1000 × 32 × 4 bytes) however many rows the level has.
        let (_, short) = written(1000, 64, 8, 32, 0);
        let (_, tall) = written(1000, 640, 8, 32, 0);
        assert!(short <= 1000 * 32 * 4, "{short}");
        assert_eq!(short, tall);
    }

    #[test]
    fn a_piece_of_a_written_tile_or_outside_the_level_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut spill = Spill::beside(&dir.path().join("map.tif"), 0);
        let mut level = PendingTiles::new((4, 4), (2, 2));
        let mut sink = |_: Window, _: Vec<u8>| Ok(());
        level
            .add(win(0, 0, 4, 2), vec![1; 8], &mut spill, &mut sink)
            .unwrap();
        assert!(level
            .add(win(0, 0, 4, 2), vec![1; 8], &mut spill, &mut sink)
            .is_err());
        assert!(level
            .add(win(0, 2, 5, 2), vec![1; 10], &mut spill, &mut sink)
            .is_err());
        assert!(level
            .add(win(0, 2, 4, 2), vec![1; 7], &mut spill, &mut sink)
            .is_err());
        assert!(!level.is_complete());
        level
            .add(win(0, 2, 4, 1), vec![1; 4], &mut spill, &mut sink)
            .unwrap();
        level
            .add(win(0, 3, 4, 1), vec![1; 4], &mut spill, &mut sink)
            .unwrap();
        assert!(level.is_complete());
    }
}
