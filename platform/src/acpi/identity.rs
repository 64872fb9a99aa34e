//! Physical memory read in place, for a hypervisor that maps physical
//! memory at the same virtual addresses.

use alloc::vec::Vec;
use core::ops::Range;

use super::PhysMemory;

/// [`PhysMemory`] over identity-mapped windows of physical memory.
#[derive(Debug)]
pub struct IdentityMapped {
    windows: Vec<Range<u64>>,
}

impl IdentityMapped {
    /// Reads allowed inside `windows` only.
    ///
    /// # Safety
    ///
    /// For as long as the value lives, every byte of every window must be
    /// mapped readable at the virtual address equal to its physical
    /// address, be ordinary memory (not MMIO with read side effects), and
    /// not be written by anyone: returned slices borrow it directly.
    pub unsafe fn new(windows: Vec<Range<u64>>) -> Self {
        Self { windows }
    }
}

impl PhysMemory for IdentityMapped {
    fn read(&self, pa: u64, len: usize) -> Option<&[u8]> {
        if len == 0 {
            return Some(&[]);
        }
        let end = pa.checked_add(u64::try_from(len).ok()?)?;
        let inside = self.windows.iter().any(|w| w.start <= pa && end <= w.end);
        // Page 0 is never handed out: a null pointer cannot make a slice.
        if !inside || pa == 0 || len > isize::MAX as usize {
            return None;
        }
        let ptr = core::ptr::with_exposed_provenance::<u8>(usize::try_from(pa).ok()?);
        // SAFETY: the bytes lie in a window, which `new`'s contract says is
        // mapped, readable and unchanging for as long as `self` (and so the
        // returned borrow) lives; the pointer is non-null, `u8` needs no
        // alignment and `len` fits in `isize`.
        Some(unsafe { core::slice::from_raw_parts(ptr, len) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn reads_only_inside_the_windows() {
        let data: Vec<u8> = (0..64).collect();
        let base = data.as_ptr().expose_provenance() as u64;
        let window = base..base + 64;
        // SAFETY: `data` backs the window, lives to the end of the test and
        // is not written.
        let mem = unsafe { IdentityMapped::new(vec![window]) };
        assert_eq!(mem.read(base + 2, 3), Some(&[2u8, 3, 4][..]));
        assert_eq!(mem.read(base + 60, 4), Some(&[60u8, 61, 62, 63][..]));
        assert_eq!(mem.read(base + 61, 4), None);
        assert_eq!(mem.read(base - 1, 2), None);
        assert_eq!(mem.read(u64::MAX, 2), None);
        assert_eq!(mem.read(0, 0), Some(&[][..]));
        let low = 0..16;
        // SAFETY: nothing is read through this window: page 0 is refused.
        let zero = unsafe { IdentityMapped::new(vec![low]) };
        assert_eq!(zero.read(0, 4), None);
    }
}
