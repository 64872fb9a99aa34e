//! The hypervisor heap (`alloc`'s `Vec`, `Box`, `BTreeMap`...), carved out of
//! physical memory at boot.

use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Hands `[base, base + size)` to the heap. Called once.
///
/// # Safety
/// The range must be identity-mapped, writable, owned by the heap from now
/// on, and not used for anything else.
pub unsafe fn init(base: u64, size: usize) {
    // SAFETY: guaranteed by the caller.
    unsafe { HEAP.lock().init(base as *mut u8, size) };
}

/// Bytes in use and bytes free.
pub fn usage() -> (usize, usize) {
    let h = HEAP.lock();
    (h.used(), h.free())
}
