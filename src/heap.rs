//! The bytes the engine holds on the heap. On wasm32 a wrapping allocator
//! counts them: linear memory never shrinks, so after a model is freed its
//! size says nothing of what the next load can still use; what the
//! allocator holds does. Natively nothing is counted (the allocator itself
//! says when memory runs out).

/// The size of the last allocation the system refused (0 if none, or where
/// not counted). Rust aborts on a refused allocation, which traps the wasm
/// instance with no panic to tell why: the glue asks this to tell running
/// out of memory from other traps.
pub fn refused() -> u64 {
    #[cfg(target_arch = "wasm32")]
    return counting::REFUSED.load(core::sync::atomic::Ordering::Relaxed) as u64;
    #[cfg(not(target_arch = "wasm32"))]
    0
}

/// Bytes allocated and not yet freed (0 where not counted).
pub fn in_use() -> u64 {
    #[cfg(target_arch = "wasm32")]
    return counting::IN_USE.load(core::sync::atomic::Ordering::Relaxed) as u64;
    #[cfg(not(target_arch = "wasm32"))]
    0
}

#[cfg(target_arch = "wasm32")]
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    pub static IN_USE: AtomicUsize = AtomicUsize::new(0);
    pub static REFUSED: AtomicUsize = AtomicUsize::new(0);

    /// `p`, counting `size` bytes in use, or the refusal of them.
    fn count(p: *mut u8, size: usize) -> *mut u8 {
        if p.is_null() {
            REFUSED.store(size, Relaxed);
        } else {
            IN_USE.fetch_add(size, Relaxed);
        }
        p
    }

    /// The system allocator (dlmalloc on wasm32), counting. One relaxed
    /// atomic a call: no op inside a forward pass allocates.
    struct Counting;

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count(unsafe { System.alloc(layout) }, layout.size())
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            count(unsafe { System.alloc_zeroed(layout) }, layout.size())
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) };
            IN_USE.fetch_sub(layout.size(), Relaxed);
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let p = unsafe { System.realloc(ptr, layout, new_size) };
            if p.is_null() {
                REFUSED.store(new_size, Relaxed);
            } else {
                IN_USE.fetch_add(new_size, Relaxed);
                IN_USE.fetch_sub(layout.size(), Relaxed);
            }
            p
        }
    }

    #[global_allocator]
    static ALLOC: Counting = Counting;
}
