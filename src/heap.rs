//! The bytes the engine holds on the heap. On wasm32 a wrapping allocator
//! counts them: linear memory never shrinks, so after a model is freed its
//! size says nothing of what the next load can still use; what the
//! allocator holds does. Natively nothing is counted (the allocator itself
//! says when memory runs out).

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

    /// The system allocator (dlmalloc on wasm32), counting. One relaxed
    /// atomic a call: no op inside a forward pass allocates.
    struct Counting;

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let p = unsafe { System.alloc(layout) };
            if !p.is_null() {
                IN_USE.fetch_add(layout.size(), Relaxed);
            }
            p
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            let p = unsafe { System.alloc_zeroed(layout) };
            if !p.is_null() {
                IN_USE.fetch_add(layout.size(), Relaxed);
            }
            p
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) };
            IN_USE.fetch_sub(layout.size(), Relaxed);
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let p = unsafe { System.realloc(ptr, layout, new_size) };
            if !p.is_null() {
                IN_USE.fetch_add(new_size, Relaxed);
                IN_USE.fetch_sub(layout.size(), Relaxed);
            }
            p
        }
    }

    #[global_allocator]
    static ALLOC: Counting = Counting;
}
