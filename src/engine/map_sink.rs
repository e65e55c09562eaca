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

/// Float maps written by a pass: their writers and the first grid row of their pixels (0
/// for a whole-grid map, the band's first row for a `--tile` part).
pub struct MapOutputs {
    pub writers: Vec<MapWriter<Mean>>,
    pub row0: usize,
}

/// A pass whose per-block function returns one block of every map (in the order of
/// `maps.writers`) and a value for `reduce`. The overview levels of each map block are built
/// on the pool, each map is written on a thread of its own, and the maps are finished side by
/// side on the pass's pool into complete temporary files (nothing is published here). Every
/// single- or many-map pass (`change`, `series`) goes through this one function.
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
    let mut sinks = maps
        .writers
        .into_iter()
        .map(|w| MapSink::start(w, queue))
        .collect::<Result<Vec<_>>>()?;
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
            for ((s, d), l) in sinks.iter_mut().zip(data).zip(levels) {
                s.send(w, d, l)?;
            }
            reduce(o)
        },
    )?;
    let writers = sinks
        .into_iter()
        .map(|s| s.finish().map(|(w, _)| w))
        .collect::<Result<Vec<_>>>()?;
    let finished: Vec<Result<(TempFile, PathBuf)>> = pass.pool.install(|| {
        use rayon::prelude::*;
        writers.into_par_iter().map(|w| w.finish()).collect()
    });
    finished.into_iter().collect()
}
