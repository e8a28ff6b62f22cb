//! Splitting an op's output over threads: the calling thread plus a pool of
//! workers (Web Workers in the threaded wasm build, std threads natively),
//! with the `threads` feature; inline on the calling thread without it.
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

/// The least work, in multiply-adds, worth a thread's share: handing a
/// region to a spinning worker costs a microsecond or two, about what this
/// much takes (a parked one takes longer, but only the first region after
/// an idle spell meets one).
pub const MIN_WORK: usize = 1 << 13;

/// How many threads an op is split over: the caller and the pool's workers.
pub fn threads() -> usize {
    #[cfg(feature = "threads")]
    {
        pool::workers() + 1
    }
    #[cfg(not(feature = "threads"))]
    {
        1
    }
}

/// Calls `f(first, chunk)` over `out` cut into consecutive chunks of whole
/// units of `unit` elements, where `first` is the chunk's first unit; split
/// as [`for_blocks`] splits the units of a one-row matrix.
pub fn for_chunks<T: Send>(
    out: &mut [T],
    unit: usize,
    align: usize,
    min_units: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let units = out.len().checked_div(unit).unwrap_or(0);
    for_blocks(out, units, unit, align, min_units, |first, mut block| f(first, block.row(0)));
}

/// Calls `f(first, block)` over `out`, a row-major matrix of `width` units of
/// `unit` elements a row, cut into blocks of consecutive units (columns),
/// each spanning every row; `first` is the block's first unit. Every block
/// but the last holds a multiple of `align` units (a kernel's tile of rows
/// stays whole), and a thread joins only for at least `min_units` units of
/// its own, so that tiny work is not split. The blocks, several a thread,
/// each taken by the next thread free, shrink from a quarter of the units
/// (with two threads) down to `min_units`. With one thread, `f(0, whole)`
/// runs inline.
pub fn for_blocks<T: Send>(
    out: &mut [T],
    width: usize,
    unit: usize,
    align: usize,
    min_units: usize,
    f: impl Fn(usize, Block<'_, T>) + Sync,
) {
    let row_len = width * unit;
    let rows = out.len().checked_div(row_len).unwrap_or(0);
    let align = align.max(1);
    let groups = width.div_ceil(align);
    let n = threads().min(width / min_units.max(1)).min(groups);
    let base = out.as_mut_ptr();
    // SAFETY (both blocks below): `out` stays borrowed for the whole call,
    // and the blocks' columns are disjoint, each visited by one thread.
    if n <= 1 {
        f(0, unsafe { Block::new(base, row_len, 0, row_len, rows) });
    }
    #[cfg(feature = "threads")]
    if n > 1 {
        // Blocks taken in turn by whichever thread is free, each a share of
        // the groups left (guided scheduling): the first are large, so that
        // few are claimed, and they shrink toward the end, so that the
        // threads finish within a small block of each other. One that runs
        // slower (a busier core, a later start) takes fewer, and work that
        // grows along the units (causal attention) evens out.
        let least = min_units.div_ceil(align).max(1);
        let (base, next) = (SharedMut(base), std::sync::atomic::AtomicUsize::new(0));
        let end = |first: usize| (first + ((groups - first) / (2 * n)).max(least)).min(groups);
        pool::run(n, &|| {
            use std::sync::atomic::Ordering::Relaxed;
            while let Ok(first) = next.fetch_update(Relaxed, Relaxed, |g| (g < groups).then(|| end(g))) {
                let (lo, hi) = (first * align, (end(first) * align).min(width));
                f(lo, unsafe { Block::new(base.get(), row_len, lo * unit, (hi - lo) * unit, rows) });
            }
        });
    }
}

/// A block of columns of a row-major matrix that other threads write other
/// columns of: its rows, one at a time.
pub struct Block<'a, T> {
    base: *mut T,
    row_len: usize,
    start: usize,
    len: usize,
    rows: usize,
    _out: std::marker::PhantomData<&'a mut [T]>,
}

impl<T> Block<'_, T> {
    /// # Safety
    /// `base` points to `rows * row_len` elements that nothing else touches
    /// at columns `start..start + len` while the block lives.
    unsafe fn new(base: *mut T, row_len: usize, start: usize, len: usize, rows: usize) -> Self {
        Block { base, row_len, start, len, rows, _out: std::marker::PhantomData }
    }

    /// The whole block as one slice, when it is contiguous: it spans whole
    /// rows, or there is one row.
    pub fn contiguous(&mut self) -> Option<&mut [T]> {
        if self.rows == 1 {
            return Some(self.row(0));
        }
        // SAFETY: the whole matrix, which this block covers (start 0, every
        // column), and `&mut self` keeps it the only borrow.
        (self.start == 0 && self.len == self.row_len)
            .then(|| unsafe { std::slice::from_raw_parts_mut(self.base, self.rows * self.row_len) })
    }

    /// The block's part of row `r` (an empty slice past the last row).
    pub fn row(&mut self, r: usize) -> &mut [T] {
        if r >= self.rows {
            return &mut [];
        }
        // SAFETY: inside the matrix (r < rows, start + len <= row_len), in
        // this block's columns, and `&mut self` keeps it the only borrow.
        unsafe { std::slice::from_raw_parts_mut(self.base.add(r * self.row_len + self.start), self.len) }
    }
}

/// `out`'s base pointer, shared by the threads of one region.
#[cfg(feature = "threads")]
struct SharedMut<T>(*mut T);
// SAFETY: the threads write through it only to disjoint blocks.
#[cfg(feature = "threads")]
unsafe impl<T: Send> Sync for SharedMut<T> {}

#[cfg(feature = "threads")]
impl<T> SharedMut<T> {
    fn get(&self) -> *mut T {
        self.0
    }
}

/// The pool that regions run on: `rayon`'s threads (Web Workers in the
/// threaded wasm build, std threads natively), each taken over for good by a
/// loop that waits for regions by spinning, then parks.
///
/// Why not rayon's own scopes: its workers sleep on a futex as soon as they
/// run dry, and decode starts some two hundred regions of 50-500 µs a token.
/// Waking a sleeping thread costs tens of microseconds on a VM's vCPU and
/// more in a browser; spinning between regions (as ggml's threads do) keeps
/// them at hand, and parking after a millisecond idle gives the core back.
///
/// A worker joins a region by taking one of its tickets, and the caller waits
/// only for the workers that did: once its own share is done it withdraws the
/// tickets left. A worker the system has not scheduled (its core lent to
/// another tab or process) thus costs nothing; were the caller to wait for
/// every worker it posted, each region would wait out the scheduler's time
/// slice, and a contended core would slow decode twentyfold.
#[cfg(feature = "threads")]
mod pool {
    use std::cell::UnsafeCell;
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    use std::sync::OnceLock;
    use std::thread::Thread;
    use web_time::{Duration, Instant};

    /// How long an idle worker spins before it parks.
    const SPIN: Duration = Duration::from_millis(1);

    type Job = dyn Fn() + Sync;

    struct Pool {
        /// Set while a region runs: a second caller thread (two models, or
        /// tests, on threads of their own) then runs its region alone.
        busy: AtomicBool,
        /// The number of the last region posted: what idle workers watch.
        region: AtomicU64,
        /// Places left in the current region for workers to take.
        tickets: AtomicUsize,
        /// Workers that took a ticket of the current region and are done.
        finished: AtomicUsize,
        /// The current region's body. Written only while no worker holds a
        /// ticket (before `tickets` offers any), read only by workers that
        /// took one, before they count themselves `finished`.
        job: UnsafeCell<Option<&'static Job>>,
        /// Each worker's thread, to unpark it; set by the worker itself.
        threads: Vec<OnceLock<Thread>>,
    }

    // SAFETY: `job` is handed over through `tickets` (release/acquire), and
    // the caller does not touch it again until `finished` counts every
    // ticket taken.
    unsafe impl Sync for Pool {}

    static POOL: OnceLock<Pool> = OnceLock::new();

    /// Workers in the pool: rayon's threads.
    pub fn workers() -> usize {
        rayon::current_num_threads()
    }

    /// Starts the workers, once; called by the region holding `busy`.
    fn start(pool: &'static Pool) {
        static STARTED: AtomicBool = AtomicBool::new(false);
        if STARTED.load(Ordering::Relaxed) {
            return;
        }
        STARTED.store(true, Ordering::Relaxed);
        for i in 0..pool.threads.len() {
            rayon::spawn(move || work(pool, i));
        }
        // The workers' first act is to say who they are; until then nobody
        // can wake them. Spinning, as a page's main thread may not block.
        while pool.threads.iter().any(|t| t.get().is_none()) {
            std::hint::spin_loop();
        }
    }

    /// Runs `f` here and on up to `n - 1` workers at once, returning when all
    /// that joined are done; `n` is at most [`workers`] + 1. While another
    /// thread's region runs (or when `f` itself starts one), `f` runs here
    /// alone. So `f` must finish the region's work whoever joins: `for_blocks`
    /// takes blocks from a counter until none is left.
    pub fn run(n: usize, f: &(dyn Fn() + Sync + '_)) {
        let pool = POOL.get_or_init(|| Pool {
            busy: AtomicBool::new(false),
            region: AtomicU64::new(0),
            tickets: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            job: UnsafeCell::new(None),
            threads: (0..workers()).map(|_| OnceLock::new()).collect(),
        });
        if pool.busy.swap(true, Ordering::Acquire) {
            return f();
        }
        start(pool);
        let offered = n - 1;
        debug_assert!(offered <= pool.threads.len());
        // SAFETY: the lifetime is erased only for the region: no worker reads
        // `job` without a ticket or after counting itself finished, and this
        // returns only once every ticket taken is finished.
        let job: &'static Job = unsafe { std::mem::transmute::<&(dyn Fn() + Sync + '_), &'static Job>(f) };
        // SAFETY: no worker holds a ticket between regions (see `Pool::job`).
        unsafe { *pool.job.get() = Some(job) };
        pool.finished.store(0, Ordering::Relaxed);
        pool.tickets.store(offered, Ordering::Release);
        pool.region.fetch_add(1, Ordering::Release);
        for t in &pool.threads[..offered] {
            t.get().expect("registered").unpark();
        }
        f();
        let taken = offered - pool.tickets.swap(0, Ordering::AcqRel);
        while pool.finished.load(Ordering::Acquire) != taken {
            std::hint::spin_loop();
        }
        pool.busy.store(false, Ordering::Release);
    }

    /// Worker `i`'s loop, for the life of the page or process.
    fn work(pool: &'static Pool, i: usize) {
        let _ = pool.threads[i].set(std::thread::current());
        let mut seen = pool.region.load(Ordering::Acquire);
        loop {
            seen = wait_for_region(pool, seen);
            if take_ticket(pool) {
                // SAFETY: the ticket keeps `job` in place until this worker
                // counts itself finished.
                let job = unsafe { (*pool.job.get()).expect("a region has a job") };
                job();
                pool.finished.fetch_add(1, Ordering::Release);
            }
        }
    }

    /// Takes a ticket of the current region, if one is left. A worker that
    /// saw an earlier region and was descheduled may take one of a later
    /// region's here: it then runs that region's job, which is as good.
    fn take_ticket(pool: &Pool) -> bool {
        pool.tickets.fetch_update(Ordering::Acquire, Ordering::Relaxed, |t| t.checked_sub(1)).is_ok()
    }

    /// Waits for a region after `seen` and returns its number: spins for
    /// [`SPIN`], then parks until [`run`] unparks it (an unpark that came
    /// first makes park return at once). A function of its own, called once
    /// a region: V8 optimises a wasm function only between calls, and `work`
    /// never returns.
    #[inline(never)]
    fn wait_for_region(pool: &Pool, seen: u64) -> u64 {
        let start = Instant::now();
        loop {
            for _ in 0..256 {
                let region = pool.region.load(Ordering::Acquire);
                if region != seen {
                    return region;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() > SPIN {
                std::thread::park();
            }
        }
    }
}

/// Runs `f` with this thread's scratch buffer, kept from call to call: the
/// bodies of a region need working space, and allocating it on several
/// threads at once would meet at the wasm allocator's lock.
pub fn with_scratch<R>(f: impl FnOnce(&mut Vec<f32>) -> R) -> R {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => f(&mut scratch),
        // Only a body that itself asks for scratch gets here; it gets its own.
        Err(_) => f(&mut Vec::new()),
    })
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

    #[test]
    fn blocks_cover_every_row_of_their_columns() {
        for (rows, width, unit) in [(1, 576, 1), (7, 1000, 1), (3, 9, 64), (128, 40, 1)] {
            let mut out = vec![usize::MAX; rows * width * unit];
            for_blocks(&mut out, width, unit, 4, 1, |first, mut block| {
                let whole = block.contiguous().map(|w| w.len());
                let len = block.row(0).len();
                assert!(whole.is_none_or(|w| w == len * rows && (rows == 1 || len == width * unit)));
                assert!(block.row(rows).is_empty());
                for r in 0..rows {
                    for (i, x) in block.row(r).iter_mut().enumerate() {
                        *x = r * width * unit + first * unit + i;
                    }
                }
            });
            assert_eq!(out, (0..out.len()).collect::<Vec<_>>(), "{rows} rows of {width} x {unit}");
        }
    }
}
