//! The hypervisor heap (`alloc`'s `Vec`, `Box`, `String`...), carved out of
//! physical memory at boot. Small blocks (at most [`LARGEST_CLASS`] bytes)
//! come from per-size free lists, refilled a page at a time from the
//! first-fit heap, which serves everything larger: the exit path's many
//! small, short-lived allocations (paths, replies, effect lists) neither
//! walk the heap's hole list nor split and merge its holes.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::null_mut;
use linked_list_allocator::LockedHeap;

/// Size classes: 16, 32, ..., 512 bytes.
const CLASSES: usize = 6;
const SMALLEST_CLASS: usize = 16;
const LARGEST_CLASS: usize = SMALLEST_CLASS << (CLASSES - 1);
/// Bytes taken from the heap to refill a class.
const REFILL: usize = 4096;

/// A free block of a size class: the next free block of the class.
struct FreeBlock {
    next: *mut FreeBlock,
}

/// The heads of the size classes' free lists.
struct Classes([*mut FreeBlock; CLASSES]);

// SAFETY: the lists are only reached through `Heap::classes`' lock, and the
// blocks they link are heap memory no one else holds.
unsafe impl Send for Classes {}

struct Heap {
    big: LockedHeap,
    classes: spin::Mutex<Classes>,
}

/// The size class of `layout`, if it is small: the smallest class at least
/// its size and alignment (classes are powers of two, and their blocks are
/// aligned to their size).
fn class_of(layout: Layout) -> Option<usize> {
    let need = layout.size().max(layout.align()).max(SMALLEST_CLASS);
    if need > LARGEST_CLASS {
        return None;
    }
    Some((need.next_power_of_two() / SMALLEST_CLASS).trailing_zeros() as usize)
}

// SAFETY: small blocks are handed out once from a free list and go back to
// the list of the class they came from (the same layout gives the same
// class); a refill carves a page-aligned block the first-fit heap gave out
// into blocks of the class, aligned to their size. Everything else is the
// first-fit heap's.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(c) = class_of(layout) else {
            // SAFETY: forwarded with the caller's guarantees.
            return unsafe { self.big.alloc(layout) };
        };
        let size = SMALLEST_CLASS << c;
        let mut classes = self.classes.lock();
        if classes.0[c].is_null() {
            let Ok(page) = Layout::from_size_align(REFILL, REFILL) else {
                return null_mut();
            };
            // SAFETY: a non-zero size.
            let block = unsafe { self.big.alloc(page) };
            if block.is_null() {
                return null_mut();
            }
            for i in (0..REFILL / size).rev() {
                // SAFETY: `i * size` is inside the fresh block, aligned for
                // a `FreeBlock` (size >= 16, the block page-aligned).
                let b = unsafe { block.add(i * size) }.cast::<FreeBlock>();
                // SAFETY: as above; the block is ours to write.
                unsafe { b.write(FreeBlock { next: classes.0[c] }) };
                classes.0[c] = b;
            }
        }
        let head = classes.0[c];
        // SAFETY: a block on the free list holds its `FreeBlock`.
        classes.0[c] = unsafe { (*head).next };
        head.cast()
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(c) = class_of(layout) else {
            // SAFETY: forwarded with the caller's guarantees.
            return unsafe { self.big.dealloc(ptr, layout) };
        };
        let mut classes = self.classes.lock();
        let b = ptr.cast::<FreeBlock>();
        // SAFETY: `ptr` is a block of class `c` the caller no longer uses,
        // at least 16 bytes and aligned to them.
        unsafe { b.write(FreeBlock { next: classes.0[c] }) };
        classes.0[c] = b;
    }
}

#[global_allocator]
static HEAP: Heap = Heap {
    big: LockedHeap::empty(),
    classes: spin::Mutex::new(Classes([null_mut(); CLASSES])),
};

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
    unsafe { HEAP.big.lock().init(base as *mut u8, bytes as usize) };
    Some(base)
}

/// Bytes in use and bytes free (blocks kept on the small classes' free
/// lists count as used).
pub fn usage() -> (usize, usize) {
    let h = HEAP.big.lock();
    (h.used(), h.free())
}
