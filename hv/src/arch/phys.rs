//! Reading physical memory through the hypervisor's identity map.

use core::sync::atomic::{AtomicU64, Ordering};
use hv::multiboot::PhysRead;

/// Physical addresses below this are identity-mapped (the boot page tables
/// map 4 GiB; the hypervisor's own tables may map more).
static MAPPED_END: AtomicU64 = AtomicU64::new(4 << 30);

/// Records how much of the physical address space is identity-mapped.
pub fn set_mapped_end(end: u64) {
    MAPPED_END.store(end, Ordering::Relaxed);
}

/// The identity-mapped physical address space, as a byte source.
#[derive(Debug)]
pub struct Identity;

impl PhysRead for Identity {
    fn read(&self, pa: u64, len: usize) -> Option<&[u8]> {
        let end = pa.checked_add(len as u64)?;
        if pa == 0 || end > MAPPED_END.load(Ordering::Relaxed) {
            return None;
        }
        // SAFETY: [pa, end) is inside the identity map (checked above) and
        // page 0 is excluded. The bytes are firmware or boot-loader data
        // (ACPI tables, boot information, modules) that the hypervisor only
        // reads; the frame allocator never hands out the ranges callers read
        // through here (they are reserved at boot).
        Some(unsafe { core::slice::from_raw_parts(pa as *const u8, len) })
    }
}

/// Zeroes the frame at `pa`.
///
/// # Safety
/// `pa` must be a page-aligned, identity-mapped frame the caller owns.
pub unsafe fn zero_frame(pa: u64) {
    // SAFETY: guaranteed by the caller.
    unsafe { core::ptr::write_bytes(pa as *mut u8, 0, 4096) };
}

/// Writes entry `index` of the page-table frame at `table`.
///
/// # Safety
/// `table` must be an identity-mapped page-table frame the caller owns and
/// that no active translation depends on in a way this write would break.
pub unsafe fn write_entry(table: u64, index: usize, value: u64) {
    debug_assert!(index < 512);
    // SAFETY: guaranteed by the caller; index < 512 keeps it in the frame.
    unsafe { core::ptr::write_volatile((table as *mut u64).add(index), value) };
}
