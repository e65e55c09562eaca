//! A map writer on a thread of its own: the reducer of a pass hands it blocks (in window
//! order) and goes on; the thread writes them, and their overview levels, into the map.

use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::grid::Window;
use crate::raster::overview::{BlockLevels, Cell};
use crate::raster::writer::MapWriter;

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
