//! The compute pool every parallel pass runs on: the block engine's per-block functions
//! and the accounting's Monte Carlo draws. GDAL-free.

use crate::error::{Error, Result};

/// A rayon pool of `threads` workers (default: all cores), and their number.
pub fn thread_pool(threads: Option<usize>) -> Result<(usize, rayon::ThreadPool)> {
    // Every pass: `--threads 0` (rayon's "default") or 100 000 threads are refused.
    crate::limits::check_threads(threads)?;
    let n = threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("compute-{i}"))
        .build()
        .map_err(|e| Error::internal(format!("cannot start {n} threads: {e}")))?;
    Ok((n, pool))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_have_the_asked_number_of_named_threads_and_zero_is_refused() {
        let (n, pool) = thread_pool(Some(3)).unwrap();
        assert_eq!((n, pool.current_num_threads()), (3, 3));
        let mut names: Vec<String> = pool.broadcast(|_| {
            std::thread::current()
                .name()
                .unwrap_or_default()
                .to_string()
        });
        names.sort();
        assert_eq!(names, ["compute-0", "compute-1", "compute-2"]);
        let e = thread_pool(Some(0)).unwrap_err();
        assert_eq!(e.fault(), crate::Fault::Usage, "{e}");
    }
}
