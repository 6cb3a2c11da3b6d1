//! Batches prepared on a worker thread while the device computes.
//!
//! The training loop hands the device one batch at a time; decoding and normalising the next
//! batches (rayon-parallel within a batch) runs on a separate thread at most `depth` batches
//! ahead, so a GPU is not left idle while PNGs are read, and memory stays bounded at
//! `depth + 1` batches whatever the size of the epoch.

use std::sync::mpsc::sync_channel;

/// Calls `load(i)` for `i in 0..n` on a worker thread, at most `depth` results ahead, and
/// `consume(i, item)` on this thread in order. Stops at the first error from either side (the
/// loader's error is returned where its item would have been consumed).
pub fn for_each_prefetched<T: Send, E: Send>(
    n: usize,
    depth: usize,
    load: impl Fn(usize) -> Result<T, E> + Sync,
    mut consume: impl FnMut(usize, T) -> Result<(), E>,
) -> Result<(), E> {
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<Result<T, E>>(depth.max(1));
        let load = &load;
        scope.spawn(move || {
            for i in 0..n {
                let item = load(i);
                let failed = item.is_err();
                // The receiver is gone once the consumer stopped: stop loading too.
                if tx.send(item).is_err() || failed {
                    break;
                }
            }
        });
        for i in 0..n {
            let item = rx
                .recv()
                .expect("the loader sends every item until it fails")?;
            consume(i, item)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn in_order_and_bounded() {
        let loaded = AtomicUsize::new(0);
        let mut seen = Vec::new();
        for_each_prefetched(
            50,
            2,
            |i| {
                loaded.fetch_add(1, Ordering::SeqCst);
                Ok::<_, ()>(i * 10)
            },
            |i, v| {
                // Never more than depth + 1 (queued + one in the loader's hands) ahead.
                assert!(
                    loaded.load(Ordering::SeqCst) <= i + 4,
                    "loader ran ahead unbounded"
                );
                seen.push(v);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, (0..50).map(|i| i * 10).collect::<Vec<_>>());
    }

    #[test]
    fn errors_stop_both_sides() {
        let r = for_each_prefetched(
            10,
            2,
            |i| {
                if i == 3 {
                    Err(format!("bad {i}"))
                } else {
                    Ok(i)
                }
            },
            |_, _| Ok(()),
        );
        assert_eq!(r, Err("bad 3".to_string()));
        let loaded = AtomicUsize::new(0);
        let r = for_each_prefetched(
            1000,
            2,
            |i| {
                loaded.fetch_add(1, Ordering::SeqCst);
                Ok(i)
            },
            |i, _| {
                if i == 5 {
                    Err("consumer stopped".to_string())
                } else {
                    Ok(())
                }
            },
        );
        assert_eq!(r, Err("consumer stopped".to_string()));
        assert!(
            loaded.load(Ordering::SeqCst) < 20,
            "the loader stops when the consumer does"
        );
    }
}
