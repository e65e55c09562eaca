//! A map writer on a thread of its own: the reducer of a pass hands it blocks (in window
//! order) and goes on; the thread writes them, and their overview levels, into the map.

use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::grid::Window;
use crate::raster::overview::{self, BlockLevels, Cell, Mean, Plan};
use crate::raster::writer::{MapWriter, TempFile};

use super::{Block, Pass, Source};

/// One block of one map, with its overview levels.
type MapBlock<C> = (Window, Vec<<C as Cell>::Value>, BlockLevels<C>);

/// What the writer thread returns: the writer and its busy seconds, or its first error.
type Finished<C> = Result<(MapWriter<C>, f64)>;

/// A [`MapWriter`] fed through a bounded queue from its own thread.
pub struct MapSink<C: Cell> {
    path: PathBuf,
    tx: Option<SyncSender<MapBlock<C>>>,
    handle: Option<JoinHandle<Finished<C>>>,
}

impl<C: Cell> MapSink<C> {
    /// Starts the writer thread; at most `queue` blocks wait for it.
    pub fn start(w: MapWriter<C>, queue: usize) -> Result<MapSink<C>> {
        let path = w.final_path();
        let (tx, rx) = sync_channel::<MapBlock<C>>(queue.max(1));
        let handle = std::thread::Builder::new()
            .name(super::thread_name("write", &path))
            .spawn(move || {
                let (mut w, mut busy) = (w, 0.0);
                for (window, data, levels) in rx {
                    let t = Instant::now();
                    w.write_block(window, data, levels)?;
                    busy += t.elapsed().as_secs_f64();
                }
                Ok((w, busy))
            })
            .map_err(|e| {
                Error::internal(format!(
                    "cannot start the writer thread of {}: {e}",
                    path.display()
                ))
            })?;
        Ok(MapSink {
            path,
            tx: Some(tx),
            handle: Some(handle),
        })
    }

    /// Queues one block (windows in row-major order). When the writer has stopped, returns
    /// the error that stopped it.
    pub fn send(&mut self, w: Window, data: Vec<C::Value>, levels: BlockLevels<C>) -> Result<()> {
        let sent = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send((w, data, levels)).is_ok());
        if sent {
            return Ok(());
        }
        match self.join() {
            Err(e) => Err(e),
            Ok(_) => Err(Error::internal(format!(
                "the writer of {} stopped early",
                self.path.display()
            ))),
        }
    }

    /// Waits until every queued block is written; returns the writer (to be finished) and
    /// the thread's busy seconds.
    pub fn finish(mut self) -> Result<(MapWriter<C>, f64)> {
        self.join()
    }

    fn join(&mut self) -> Finished<C> {
        self.tx = None;
        match self.handle.take() {
            Some(h) => h.join().map_err(|_| {
                Error::internal(format!(
                    "the writer thread of {} panicked",
                    self.path.display()
                ))
            })?,
            None => Err(Error::internal(format!(
                "the writer of {} was already finished",
                self.path.display()
            ))),
        }
    }
}

impl<C: Cell> Drop for MapSink<C> {
    /// On an early return the thread is stopped and waited for (its temporary file is then
    /// removed by the writer's own drop).
    fn drop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// At most this many writer threads serve the maps of one [`map_pass`] (a series writes up to
/// three maps a year: one thread per map would be 69 threads for 23 years).
pub const MAX_WRITER_THREADS: usize = 8;

/// One block of one of a lane's maps: the map's index among the lane's writers.
type LaneBlock<C> = (usize, MapBlock<C>);

/// A writer thread serving several maps: blocks of each map arrive in window order and are
/// written in that order, so each file is what a thread of its own would write.
struct Lane<C: Cell> {
    tx: Option<SyncSender<LaneBlock<C>>>,
    handle: Option<JoinHandle<Result<Vec<MapWriter<C>>>>>,
}

/// The maps of a many-map pass on at most `lanes` writer threads: map `j` goes to lane
/// `j % lanes`, as that lane's writer `j / lanes`.
struct SinkGroup<C: Cell> {
    lanes: Vec<Lane<C>>,
    first: PathBuf,
}

impl<C: Cell> SinkGroup<C> {
    /// Starts `lanes` threads (at least 1, at most the number of maps); at most `queue`
    /// blocks per map wait.
    fn start(writers: Vec<MapWriter<C>>, lanes: usize, queue: usize) -> Result<SinkGroup<C>> {
        let first = writers.first().map(|w| w.final_path()).unwrap_or_default();
        let n = lanes.clamp(1, writers.len().max(1));
        let mut owned: Vec<Vec<MapWriter<C>>> = (0..n).map(|_| Vec::new()).collect();
        for (j, w) in writers.into_iter().enumerate() {
            owned[j % n].push(w);
        }
        let mut group = SinkGroup {
            lanes: Vec::new(),
            first,
        };
        for ws in owned {
            let path = ws.first().map(|w| w.final_path()).unwrap_or_default();
            let (tx, rx) = sync_channel::<LaneBlock<C>>((queue * ws.len()).max(1));
            let handle = std::thread::Builder::new()
                .name(super::thread_name("write", &path))
                .spawn(move || {
                    let mut ws = ws;
                    for (k, (window, data, levels)) in rx {
                        if let Some(w) = ws.get_mut(k) {
                            w.write_block(window, data, levels)?;
                        }
                    }
                    Ok(ws)
                })
                .map_err(|e| {
                    Error::internal(format!(
                        "cannot start the writer thread of {}: {e}",
                        path.display()
                    ))
                })?;
            group.lanes.push(Lane {
                tx: Some(tx),
                handle: Some(handle),
            });
        }
        Ok(group)
    }

    /// Queues one block of map `j`. When its writer has stopped, returns the error that
    /// stopped it.
    fn send(
        &mut self,
        j: usize,
        w: Window,
        data: Vec<C::Value>,
        levels: BlockLevels<C>,
    ) -> Result<()> {
        let n = self.lanes.len();
        let lane = &mut self.lanes[j % n];
        let sent = lane
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send((j / n, (w, data, levels))).is_ok());
        if sent {
            return Ok(());
        }
        lane.tx = None;
        let stopped = lane.handle.take().map(|h| h.join());
        match stopped {
            Some(Ok(Err(e))) => Err(e),
            _ => Err(Error::internal(format!(
                "a map writer of {} stopped early",
                self.first.display()
            ))),
        }
    }

    /// Waits until every queued block is written; returns the writers in map order.
    fn finish(mut self) -> Result<Vec<MapWriter<C>>> {
        let n = self.lanes.len();
        let mut per_lane = Vec::new();
        for lane in &mut self.lanes {
            lane.tx = None;
            let h = lane.handle.take().ok_or_else(|| {
                Error::internal(format!(
                    "a map writer of {} was already finished",
                    self.first.display()
                ))
            })?;
            let ws = h.join().map_err(|_| {
                Error::internal(format!(
                    "a map writer thread of {} panicked",
                    self.first.display()
                ))
            })??;
            per_lane.push(ws.into_iter());
        }
        let total: usize = per_lane.iter().map(|l| l.len()).sum();
        let mut out = Vec::with_capacity(total);
        for j in 0..total {
            match per_lane[j % n].next() {
                Some(w) => out.push(w),
                None => return Err(Error::internal("map writers out of order")),
            }
        }
        Ok(out)
    }
}

impl<C: Cell> Drop for SinkGroup<C> {
    /// On an early return every thread is stopped and waited for.
    fn drop(&mut self) {
        for lane in &mut self.lanes {
            lane.tx = None;
            if let Some(h) = lane.handle.take() {
                let _ = h.join();
            }
        }
    }
}

/// Float maps written by a pass: their writers and the first grid row of their pixels (0
/// for a whole-grid map, the band's first row for a `--tile` part).
pub struct MapOutputs {
    /// One writer per map, in the order of the pass's bands.
    pub writers: Vec<MapWriter<Mean>>,
    /// Grid row of the maps' first row.
    pub row0: usize,
}

/// A pass whose per-block function returns one block of every map (in the order of
/// `maps.writers`) and a value for `reduce`. The overview levels of each map block are built
/// on the pool, the maps are written on writer threads of their own, and the maps are finished side by
/// side on the pass's pool into complete temporary files (nothing is published here). Every
/// single- or many-map pass (`change`, `series`) goes through this one function. The maps
/// share at most [`MAX_WRITER_THREADS`] writer threads (no more than the pool's threads).
pub fn map_pass<O, F, R>(
    pass: &Pass,
    sources: Vec<Source>,
    maps: MapOutputs,
    compute: F,
    mut reduce: R,
) -> Result<Vec<(TempFile, PathBuf)>>
where
    O: Send,
    F: Fn(&Block) -> Result<(Vec<Vec<f32>>, O)> + Sync,
    R: FnMut(O) -> Result<()> + Send,
{
    let row0 = maps.row0;
    let plans: Vec<Plan> = maps.writers.iter().map(|w| w.plan().clone()).collect();
    let queue = pass.batch.max(2);
    let lanes = pass.pool.current_num_threads().clamp(1, MAX_WRITER_THREADS);
    let mut sinks = SinkGroup::start(maps.writers, lanes, queue)?;
    let local = |w: Window| Window {
        row: w.row - row0,
        ..w
    };
    super::run(
        pass,
        sources,
        |b| {
            let (data, o) = compute(b)?;
            let w = local(b.window);
            let levels: Vec<BlockLevels<Mean>> = data
                .iter()
                .zip(&plans)
                .map(|(d, p)| overview::reduce_block(p, w, d))
                .collect();
            Ok((w, data, levels, o))
        },
        |(w, data, levels, o)| {
            for (j, (d, l)) in data.into_iter().zip(levels).enumerate() {
                sinks.send(j, w, d, l)?;
            }
            reduce(o)
        },
    )?;
    let writers = sinks.finish()?;
    let finished: Vec<Result<(TempFile, PathBuf)>> = pass.pool.install(|| {
        use rayon::prelude::*;
        writers.into_par_iter().map(|w| w.finish()).collect()
    });
    finished.into_iter().collect()
}
