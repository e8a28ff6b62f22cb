//! Splitting an op's output over threads: the calling thread plus rayon's
//! pool (Web Workers in the threaded wasm build, std threads natively), with
//! the `threads` feature; inline on the calling thread without it.
//!
//! The caller computes a share itself instead of only waiting: on a browser's
//! main thread waiting is a spin, so a pool of `n - 1` workers plus the caller
//! keeps exactly `n` cores busy.
//!
//! The bodies must not panic. In the threaded wasm build panics abort, and an
//! abort on a pool thread kills that Worker without a word while the caller
//! waits for it forever; the callers check every shape before splitting, so
//! the bodies only index what those checks cover. Nor may they wait on a lock
//! (a `LazyLock` first touched by two threads at once, say): on a page's main
//! thread waiting traps, so whatever the bodies read is built beforehand.

/// The least work, in multiply-adds, worth a thread's share: waking a
/// Worker costs some tens of microseconds, about what this much takes.
pub const MIN_WORK: usize = 1 << 16;

/// How many threads an op is split over: the caller and the pool's workers.
pub fn threads() -> usize {
    #[cfg(feature = "threads")]
    {
        rayon::current_num_threads() + 1
    }
    #[cfg(not(feature = "threads"))]
    {
        1
    }
}

/// Calls `f(first, chunk)` over `out` cut into consecutive chunks of whole
/// units of `unit` elements, where `first` is the chunk's first unit. Every
/// chunk but the last holds a multiple of `align` units (a kernel's tile of
/// rows stays whole), and a thread joins only for at least `min_units` units
/// of its own, so that tiny work is not split. Each thread gets the same
/// number of chunks of nearly equal size (to within `align` units), dealt
/// round-robin, so that work that grows along the units (causal attention)
/// evens out. With one thread, `f(0, out)` runs inline.
pub fn for_chunks<T: Send>(
    out: &mut [T],
    unit: usize,
    align: usize,
    min_units: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let units = out.len().checked_div(unit).unwrap_or(0);
    let align = align.max(1);
    let groups = units.div_ceil(align);
    let n = threads().min(units / min_units.max(1)).min(groups);
    if n <= 1 {
        f(0, out);
    }
    #[cfg(feature = "threads")]
    if n > 1 {
        // A few chunks per thread, so that one slow thread holds up little.
        let chunks = (4 * n).min(groups) / n * n;
        let mut shares: Vec<Vec<(usize, &mut [T])>> = (0..n).map(|_| Vec::new()).collect();
        let (mut rest, mut first) = (out, 0);
        for c in 0..chunks {
            let end = ((c + 1) * groups / chunks * align).min(units);
            let (chunk, tail) = std::mem::take(&mut rest).split_at_mut((end - first) * unit);
            shares[c % n].push((first, chunk));
            (rest, first) = (tail, end);
        }
        let f = &f;
        let mut shares = shares.into_iter();
        let mine = shares.next().unwrap_or_default();
        rayon::in_place_scope(|s| {
            for share in shares {
                s.spawn(move |_| share.into_iter().for_each(|(first, chunk)| f(first, chunk)));
            }
            mine.into_iter().for_each(|(first, chunk)| f(first, chunk));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_is_visited_once_with_its_index() {
        for (len, unit, align, min) in
            [(0, 3, 1, 1), (3, 3, 1, 1), (30, 3, 4, 1), (1000, 1, 4, 7), (999, 9, 1, 100), (1000, 1, 4, 400)]
        {
            let mut out = vec![usize::MAX; len];
            for_chunks(&mut out, unit, align, min, |first, chunk| {
                assert!(first % align == 0 && (chunk.len() / unit % align == 0 || first * unit + chunk.len() == len));
                for (i, x) in chunk.iter_mut().enumerate() {
                    *x = first * unit + i;
                }
            });
            assert_eq!(out, (0..len).collect::<Vec<_>>(), "len {len} unit {unit}");
        }
    }
}
