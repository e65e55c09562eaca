//! Buffers of map blocks handed back by the map writers once they have compressed a tile,
//! for the next block's maps.
//!
//! A run computes every block's maps into fresh buffers (about 3.4 MB a block of 512 × 512
//! on a scene with restoration) that writer threads compress and free a few blocks later.
//! The allocator hands out its oldest free memory first, long out of the caches by then;
//! writing into it cost about 5 % of the run's compute time on the bench scene (measured one
//! run after the other, three or four of each). Taken back newest first, a buffer is one a
//! writer has just read. The numbers do not change: every buffer is written whole before it
//! is read.

use std::any::Any;
use std::mem::MaybeUninit;
use std::sync::Mutex;

/// Buffers kept at most (the oldest goes first): a few blocks' maps.
const KEPT: usize = 16;

/// Buffers given back, newest last, each a `Vec<MaybeUninit<T>>` of some `T`.
struct Pool(Mutex<Vec<Box<dyn Any + Send>>>);

/// The process's buffers: the writers' threads give, the compute threads take.
static POOL: Pool = Pool(Mutex::new(Vec::new()));

/// Keeps `v`'s memory for a later [`take`] of values of its type.
pub fn give<T: Send + 'static>(v: Vec<T>) {
    POOL.give(v);
}

/// `len` values of uninitialized memory: the newest buffer given back of `T` with room for
/// them, else a new one (no zeroing, no page touched).
pub fn take<T: Send + 'static>(len: usize) -> Vec<MaybeUninit<T>> {
    POOL.take(len)
}

impl Pool {
    fn give<T: Send + 'static>(&self, mut v: Vec<T>) {
        v.clear();
        let mut v = std::mem::ManuallyDrop::new(v);
        let (ptr, cap) = (v.as_mut_ptr(), v.capacity());
        // SAFETY: the same allocation, with `MaybeUninit<T>`'s layout (that of `T`) and
        // capacity, and no value (length 0).
        let v: Vec<MaybeUninit<T>> = unsafe { Vec::from_raw_parts(ptr.cast(), 0, cap) };
        let Ok(mut pool) = self.0.lock() else { return };
        if pool.len() >= KEPT {
            pool.remove(0);
        }
        pool.push(Box::new(v));
    }

    fn take<T: Send + 'static>(&self, len: usize) -> Vec<MaybeUninit<T>> {
        if len == 0 {
            return Vec::new();
        }
        let kept = self.0.lock().ok().and_then(|mut pool| {
            let fits = |b: &Box<dyn Any + Send>| {
                b.downcast_ref::<Vec<MaybeUninit<T>>>()
                    .is_some_and(|v| v.capacity() >= len)
            };
            let i = pool.iter().rposition(fits)?;
            pool.remove(i).downcast::<Vec<MaybeUninit<T>>>().ok()
        });
        let mut v = kept.map_or_else(|| Vec::with_capacity(len), |b| *b);
        // SAFETY: the capacity is at least `len`, and `MaybeUninit` values need no
        // initialization.
        unsafe { v.set_len(len) };
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_taken_again_by_its_type_and_size_only() {
        let pool = Pool(Mutex::new(Vec::new()));
        let v: Vec<u16> = vec![7; 1000];
        let at = v.as_ptr() as usize;
        pool.give(v);
        pool.give(vec![1u8; 2000]);
        let other: Vec<MaybeUninit<i16>> = pool.take(1000);
        assert_ne!(other.as_ptr() as usize, at, "another type");
        let big: Vec<MaybeUninit<u16>> = pool.take(1001);
        assert_ne!(big.as_ptr() as usize, at, "too small");
        assert_eq!(big.len(), 1001);
        let again: Vec<MaybeUninit<u16>> = pool.take(600);
        assert_eq!((again.as_ptr() as usize, again.len()), (at, 600));
        assert!(again.capacity() >= 1000);
        assert!(pool.take::<u16>(0).is_empty());
        assert_eq!(pool.0.lock().unwrap().len(), 1, "the bytes are still there");
    }

    #[test]
    fn the_pool_keeps_its_newest_buffers_and_a_bounded_number() {
        let pool = Pool(Mutex::new(Vec::new()));
        let mut last = 0;
        for _ in 0..3 * KEPT {
            let v = vec![0u64; 16];
            last = v.as_ptr() as usize;
            pool.give(v);
        }
        assert_eq!(pool.0.lock().unwrap().len(), KEPT);
        let newest: Vec<MaybeUninit<u64>> = pool.take(16);
        assert_eq!(newest.as_ptr() as usize, last, "newest first");
    }
}
