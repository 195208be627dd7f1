//! A counting global allocator for the test binary, so a test can tell how
//! much memory a piece of work asked for: [`allocated_by`] returns the bytes
//! requested on the current thread while a closure ran (every allocation and
//! every reallocation's new size; frees are not subtracted, so it bounds the
//! peak from above). The binary opts in with
//! `#[global_allocator] static A: Counting = Counting;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// [`System`], counting the bytes each thread requests.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counting;

thread_local! {
    static REQUESTED: Cell<u64> = const { Cell::new(0) };
}

fn count(bytes: usize) {
    // `try_with`: allocations while the thread's locals are being torn
    // down are not counted rather than aborting.
    let _ = REQUESTED.try_with(|r| r.set(r.get().saturating_add(bytes as u64)));
}

// SAFETY: every call is forwarded unchanged to `System`; counting touches
// only a const-initialised thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` through this allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: as for `dealloc`, with the caller's contract for `realloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `f` and returns its result with the bytes requested on this thread
/// meanwhile (allocations and reallocations, frees not subtracted).
pub fn allocated_by<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = REQUESTED.with(Cell::get);
    let result = f();
    let after = REQUESTED.with(Cell::get);
    (result, after - before)
}
