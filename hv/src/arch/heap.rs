//! The hypervisor heap (`alloc`'s `Vec`, `Box`, `String`...), carved out of
//! physical memory at boot.

use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

use core::sync::atomic::{AtomicBool, Ordering};
use hv::memmap::{FrameAllocator, PAGE};

static READY: AtomicBool = AtomicBool::new(false);

/// Takes `bytes` (a multiple of the page size) from `frames` for the heap,
/// once, after [`super::paging::install`] has mapped all RAM. Returns the
/// heap's base, or `None` if there is no room or the heap exists already.
pub fn init<const N: usize>(frames: &mut FrameAllocator<N>, bytes: u64) -> Option<u64> {
    if READY.load(Ordering::Relaxed) || !super::paging::installed() {
        return None;
    }
    let base = frames.alloc(bytes / PAGE, 2 << 20)?;
    READY.store(true, Ordering::Relaxed);
    // SAFETY: the frames are fresh from the allocator, which never hands
    // out a frame twice, so the heap owns them for good; they are RAM below
    // the end of the identity map (`paging::install` maps all of it,
    // writable).
    unsafe { HEAP.lock().init(base as *mut u8, bytes as usize) };
    Some(base)
}

/// Bytes in use and bytes free.
pub fn usage() -> (usize, usize) {
    let h = HEAP.lock();
    (h.used(), h.free())
}
