//! The block engine: every raster pass of sinkmap (`run`, `zonal`, `change`, `project`, and
//! any later one) is a choice of input layers, a per-block function and a reducer run here.
//!
//! Three stages overlap:
//!
//! 1. **read** — one thread per input layer (layers are separate GDAL datasets, and decoding
//!    is most of the reading time) reads its windows batch by batch; a fourth thread
//!    assembles the layers' values into [`Block`]s in window order;
//! 2. **compute** — each block is handed to the per-block function on the rayon pool, one
//!    task per block, as soon as it is read;
//! 3. **reduce** — a collector thread puts the computed blocks back in window order and hands
//!    them to the reducer (map writers, cube sums, zone sums, transition matrices, polygon
//!    sums), so a reducer sees the same sequence whatever the thread count.
//!
//! Memory is bounded: at most one batch waits per reader, and tokens bound the blocks that
//! are computed but not yet reduced. Sums that must not depend on the block layout are kept
//! in exact fixed point ([`crate::cube::quantize`]) by the passes: integer addition is
//! associative, so the order in which blocks arrive cannot change a total.
//!
//! Errors: the first failing block *in window order* is reported (so the same bad pixel is
//! named whatever the threads), unless a reader failed first.

pub mod map_sink;
pub mod recycle;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::grid::Window;
use crate::raster::{Layer, Narrow};

pub use crate::threads::thread_pool;
pub use map_sink::{map_pass, MapOutputs, MapSink};

/// How one input layer is read.
pub enum Source {
    /// Integer codes (land cover, forest type, desert subtype, masks).
    Codes(Layer),
    /// Real values (forest age).
    Values(Layer),
    /// An 8- or 16-bit band as stored ([`Layer::read_narrow`]): the pass decodes values
    /// (and nodata) itself, typically through a table over all the type's values.
    Narrow(Layer),
}

impl Source {
    /// The file the layer is read from.
    pub fn path(&self) -> &Path {
        match self {
            Source::Codes(l) | Source::Values(l) | Source::Narrow(l) => &l.path,
        }
    }
}

/// The values of one layer over one window (`None` where the layer has no data).
pub enum Band {
    /// Read by [`Source::Codes`].
    Codes(Vec<Option<i32>>),
    /// Read by [`Source::Values`].
    Values(Vec<Option<f64>>),
    /// Read by [`Source::Narrow`].
    Narrow(Narrow),
}

/// One window of every input layer, in the order the sources were given.
pub struct Block {
    /// Where the block lies on the grid.
    pub window: Window,
    /// One band per source.
    pub bands: Vec<Band>,
}

impl Block {
    /// The codes of source `k` (empty when `k` is absent or not read as codes).
    pub fn codes(&self, k: Option<usize>) -> &[Option<i32>] {
        match k.and_then(|k| self.bands.get(k)) {
            Some(Band::Codes(v)) => v,
            _ => &[],
        }
    }

    /// The stored values of source `k` (`None` when `k` is absent or not read narrow).
    pub fn narrow(&self, k: Option<usize>) -> Option<&Narrow> {
        match k.and_then(|k| self.bands.get(k)) {
            Some(Band::Narrow(v)) => Some(v),
            _ => None,
        }
    }

    /// The values of source `k` (empty when `k` is absent or not read as values).
    pub fn values(&self, k: Option<usize>) -> &[Option<f64>] {
        match k.and_then(|k| self.bands.get(k)) {
            Some(Band::Values(v)) => v,
            _ => &[],
        }
    }
}

/// Where and how a pass runs.
pub struct Pass<'a> {
    /// The compute pool.
    pub pool: &'a rayon::ThreadPool,
    /// The windows to process, in the order the reducer receives them.
    pub windows: &'a [Window],
    /// Windows read per batch by each reader thread (at least 1).
    pub batch: usize,
    /// Advanced by the pixels of each reduced block.
    pub progress: Option<&'a indicatif::ProgressBar>,
}

/// Busy seconds of the three stages (summed over their threads).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Busy {
    /// Reader threads.
    pub read: f64,
    /// Compute tasks on the pool (wall-clock time from a task's start to its end, so it
    /// includes the time the task waited for a core while other threads ran).
    pub compute: f64,
    /// Compute tasks on the pool, processor time only (the threads' own CPU clocks): what
    /// the compute costs, whatever else runs on the machine.
    pub compute_cpu: f64,
    /// The collector and the reducer it calls.
    pub reduce: f64,
}

/// Runs one pass: reads `sources` over the pass's windows, calls `compute` on every block on
/// the pool, and hands the results to `reduce` in window order. Returns the busy seconds of
/// the stages, or the first error (a reader's, else the first failing block's in window
/// order, else the reducer's).
pub fn run<O, F, R>(pass: &Pass, sources: Vec<Source>, compute: F, mut reduce: R) -> Result<Busy>
where
    O: Send,
    F: Fn(&Block) -> Result<O> + Sync,
    R: FnMut(O) -> Result<()> + Send,
{
    let batch = pass.batch.max(1);
    let windows = pass.windows;
    std::thread::scope(|sc| -> Result<Busy> {
        let (tx_in, rx_in) = sync_channel::<Result<Vec<Block>>>(1);
        // Blocks are computed one by one on the pool and put back in window order by the
        // collector; `in_flight` tokens bound how many are computed but not yet reduced.
        let (tx_out, rx_out) = channel::<(usize, Result<O>)>();
        let in_flight = 2 * batch;
        let (tx_token, rx_token) = sync_channel::<()>(in_flight);
        for _ in 0..in_flight {
            let _ = tx_token.send(());
        }
        let reader = spawn_named(sc, "read".into(), move || {
            read_blocks(sources, windows, batch, tx_in)
        })?;
        let progress = pass.progress.cloned();
        let collector = spawn_named(sc, "collect".into(), move || {
            let mut busy = 0.0;
            let mut waiting: BTreeMap<usize, Result<O>> = BTreeMap::new();
            let mut next = 0;
            for (idx, computed) in rx_out {
                waiting.insert(idx, computed);
                let t = Instant::now();
                while let Some(computed) = waiting.remove(&next) {
                    // A slot for the next block (the feeder may be gone: ignore).
                    let _ = tx_token.send(());
                    if let Err(e) = computed.and_then(&mut reduce) {
                        return (Err(e), busy + t.elapsed().as_secs_f64());
                    }
                    if let Some(p) = &progress {
                        p.inc(windows[next].len() as u64);
                    }
                    next += 1;
                }
                busy += t.elapsed().as_secs_f64();
            }
            (Ok(()), busy)
        })?;
        let mut read_failure: Option<Error> = None;
        let compute_ns = std::sync::atomic::AtomicU64::new(0);
        let compute_cpu_ns = std::sync::atomic::AtomicU64::new(0);
        pass.pool.in_place_scope(|s| {
            let mut idx = 0;
            'feed: for blocks in rx_in {
                let blocks = match blocks {
                    Ok(b) => b,
                    Err(e) => {
                        read_failure = Some(e);
                        break;
                    }
                };
                for b in blocks {
                    if rx_token.recv().is_err() {
                        break 'feed; // the collector stopped: its reason is reported below
                    }
                    let (tx, i) = (tx_out.clone(), idx);
                    idx += 1;
                    let (compute, compute_ns, compute_cpu_ns) =
                        (&compute, &compute_ns, &compute_cpu_ns);
                    s.spawn(move |_| {
                        let (t, cpu) = (Instant::now(), thread_cpu_ns());
                        let computed = compute(&b);
                        compute_ns.fetch_add(
                            t.elapsed().as_nanos() as u64,
                            std::sync::atomic::Ordering::Relaxed,
                        );
                        compute_cpu_ns.fetch_add(
                            thread_cpu_ns().saturating_sub(cpu),
                            std::sync::atomic::Ordering::Relaxed,
                        );
                        let _ = tx.send((i, computed));
                    });
                }
            }
        });
        drop(tx_out);
        let (reduced, reduce_busy) = collector
            .join()
            .map_err(|_| Error::internal("the collector thread panicked"))?;
        let read_busy = reader
            .join()
            .map_err(|_| Error::internal("the reader thread panicked"))?;
        if let Some(e) = read_failure {
            return Err(e);
        }
        reduced?;
        Ok(Busy {
            read: read_busy,
            compute: compute_ns.into_inner() as f64 * 1e-9,
            compute_cpu: compute_cpu_ns.into_inner() as f64 * 1e-9,
            reduce: reduce_busy,
        })
    })
}

/// Processor time the calling thread has used, in nanoseconds (0 where the clock is not
/// available).
pub(crate) fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Starts a named scoped thread (names show in `top -H`, `perf` and debuggers).
pub(crate) fn spawn_named<'scope, T: Send + 'scope>(
    sc: &'scope std::thread::Scope<'scope, '_>,
    name: String,
    f: impl FnOnce() -> T + Send + 'scope,
) -> Result<std::thread::ScopedJoinHandle<'scope, T>> {
    std::thread::Builder::new()
        .name(name.clone())
        .spawn_scoped(sc, f)
        .map_err(|e| Error::internal(format!("cannot start thread {name}: {e}")))
}

/// A thread name: `prefix-` and the file's stem (Linux shows the first 15 bytes).
pub(crate) fn thread_name(prefix: &str, path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{prefix}-{stem}")
}

/// What one layer's reader thread sends per batch of windows.
type LayerBatch = Result<Vec<Band>>;

/// Reads one window of a source.
fn read_band(source: &Source, w: Window) -> Result<Band> {
    match source {
        Source::Codes(l) => {
            let mut v = Vec::new();
            l.read_codes(w, &mut v).map(|_| Band::Codes(v))
        }
        Source::Values(l) => {
            let mut v = Vec::new();
            l.read_values(w, &mut v).map(|_| Band::Values(v))
        }
        Source::Narrow(l) => l.read_narrow(w).map(Band::Narrow),
    }
}

/// Starts a thread that reads `source` over every batch of `windows` and sends the bands
/// (bounded: at most one batch waits). Returns the receiver and the thread's busy seconds.
fn spawn_layer_reader<'scope>(
    sc: &'scope std::thread::Scope<'scope, '_>,
    source: Source,
    windows: &'scope [Window],
    batch: usize,
) -> Result<(
    Receiver<LayerBatch>,
    std::thread::ScopedJoinHandle<'scope, f64>,
)> {
    let (tx, rx) = sync_channel::<LayerBatch>(1);
    let name = thread_name("read", source.path());
    let handle = spawn_named(sc, name, move || {
        let mut busy = 0.0;
        for chunk in windows.chunks(batch) {
            let t = Instant::now();
            let r = chunk
                .iter()
                .map(|w| read_band(&source, *w))
                .collect::<Result<Vec<_>>>();
            busy += t.elapsed().as_secs_f64();
            let failed = r.is_err();
            if tx.send(r).is_err() || failed {
                break;
            }
        }
        busy
    })?;
    Ok((rx, handle))
}

/// Reads every source on a thread of its own, assembles the blocks batch by batch, in window
/// order, and sends them. Returns the summed busy seconds of the reader threads.
fn read_blocks(
    sources: Vec<Source>,
    windows: &[Window],
    batch: usize,
    tx: SyncSender<Result<Vec<Block>>>,
) -> f64 {
    std::thread::scope(|sc| {
        let paths: Vec<PathBuf> = sources.iter().map(|s| s.path().to_path_buf()).collect();
        let mut handles = Vec::new();
        let mut receivers = Vec::new();
        for source in sources {
            match spawn_layer_reader(sc, source, windows, batch) {
                Ok((rx, h)) => {
                    receivers.push(rx);
                    handles.push(h);
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    drop(receivers);
                    return handles.into_iter().map(|h| h.join().unwrap_or(0.0)).sum();
                }
            }
        }
        let assemble = |chunk: &[Window]| -> Result<Vec<Block>> {
            let mut per_layer = Vec::with_capacity(receivers.len());
            for (rx, path) in receivers.iter().zip(&paths) {
                let bands = rx.recv().map_err(|_| {
                    Error::internal(format!(
                        "the reader thread of {} stopped early",
                        path.display()
                    ))
                })??;
                per_layer.push(bands.into_iter());
            }
            Ok(chunk
                .iter()
                .map(|w| Block {
                    window: *w,
                    bands: per_layer.iter_mut().filter_map(|it| it.next()).collect(),
                })
                .collect())
        };
        for chunk in windows.chunks(batch) {
            let r = assemble(chunk);
            let failed = r.is_err();
            if tx.send(r).is_err() || failed {
                break;
            }
        }
        // Dropping the receivers stops the readers that are still waiting to send.
        drop(receivers);
        handles.into_iter().map(|h| h.join().unwrap_or(0.0)).sum()
    })
}

/// Checks a processing block edge: a multiple of 16 between 16 and 4096 pixels.
pub fn check_block_size(block: usize) -> Result<usize> {
    if !(16..=4096).contains(&block) || !block.is_multiple_of(16) {
        return Err(Error::Usage(format!(
            "block size {block}: must be a multiple of 16 between 16 and 4096"
        )));
    }
    Ok(block)
}

/// Speed-only choices of a pass (they change speed and memory, never a number).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tuning {
    /// Edge of the processing blocks in pixels (default: the scene's).
    pub block_size_px: Option<usize>,
    /// Compute threads (default: all cores).
    pub threads: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::Window;

    fn windows(n: usize) -> Vec<Window> {
        (0..n)
            .map(|i| Window {
                col: 0,
                row: i,
                width: 3,
                height: 1,
            })
            .collect()
    }

    #[test]
    fn blocks_reach_the_reducer_in_window_order_whatever_the_threads() {
        for threads in [1, 2, 3] {
            let (_, pool) = thread_pool(Some(threads)).unwrap();
            let w = windows(50);
            let pass = Pass {
                pool: &pool,
                windows: &w,
                batch: 4,
                progress: None,
            };
            let mut seen = Vec::new();
            run(
                &pass,
                Vec::new(),
                |b| {
                    // Uneven work so that blocks finish out of order.
                    std::thread::sleep(std::time::Duration::from_micros(
                        ((b.window.row * 7919) % 13) as u64 * 50,
                    ));
                    Ok(b.window.row)
                },
                |row| {
                    seen.push(row);
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(seen, (0..50).collect::<Vec<_>>(), "{threads} threads");
        }
    }

    #[test]
    fn the_first_failing_block_in_window_order_is_reported() {
        let (_, pool) = thread_pool(Some(3)).unwrap();
        let w = windows(40);
        let pass = Pass {
            pool: &pool,
            windows: &w,
            batch: 2,
            progress: None,
        };
        let mut reduced = 0;
        let e = run(
            &pass,
            Vec::new(),
            |b| {
                if b.window.row >= 17 {
                    Err(Error::Usage(format!("row {}", b.window.row)))
                } else {
                    Ok(())
                }
            },
            |_| {
                reduced += 1;
                Ok(())
            },
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "row 17");
        assert_eq!(reduced, 17);
    }

    #[test]
    fn a_reducer_error_stops_the_pass() {
        let (_, pool) = thread_pool(Some(2)).unwrap();
        let w = windows(100);
        let pass = Pass {
            pool: &pool,
            windows: &w,
            batch: 3,
            progress: None,
        };
        let e = run(
            &pass,
            Vec::new(),
            |b| Ok(b.window.row),
            |row| {
                if row == 5 {
                    Err(Error::Usage("disk full".into()))
                } else {
                    Ok(())
                }
            },
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "disk full");
    }

    #[test]
    fn bad_block_sizes_are_refused() {
        assert!(check_block_size(256).is_ok());
        for b in [0, 8, 100, 8192] {
            assert!(check_block_size(b).is_err(), "{b}");
        }
    }
}
