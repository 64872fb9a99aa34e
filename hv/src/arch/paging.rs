//! The hypervisor's own page tables: an identity map of the physical address
//! space in 2 MiB pages, with the image in 4 KiB pages so that code is
//! read-only and executable, read-only data and everything else no-execute,
//! and page 0 read-only so a write through a null pointer faults.

use super::cpu::{cpuid, rdmsr_safe, wrmsr};
use super::phys::{write_entry, zero_frame};
use core::arch::asm;

const PRESENT: u64 = 1;
const WRITABLE: u64 = 1 << 1;
const PWT: u64 = 1 << 3;
const PCD: u64 = 1 << 4;
const HUGE: u64 = 1 << 7;
const NX: u64 = 1 << 63;
const MIB2: u64 = 2 << 20;
const GIB: u64 = 1 << 30;

/// What the page tables need to know about memory.
#[derive(Debug)]
pub struct Layout<'a> {
    /// Map `[0, end)`.
    pub end: u64,
    /// `[start, end)` of `.boot` + `.text` (read-only, executable).
    pub text: (u64, u64),
    /// `[start, end)` of `.rodata` (read-only).
    pub rodata: (u64, u64),
    /// `[start, end)` of the whole image.
    pub image: (u64, u64),
    /// RAM ranges (mapped write-back; other 2 MiB pages uncached).
    pub ram: &'a [(u64, u64)],
}

/// Whether this CPU supports no-execute pages.
pub fn nx_supported() -> bool {
    cpuid(0x8000_0001, 0).edx & (1 << 20) != 0
}

/// Builds the tables with frames from `alloc` and returns the new CR3.
/// Returns `None` if `alloc` runs out.
pub fn build(layout: &Layout<'_>, mut alloc: impl FnMut() -> Option<u64>) -> Option<u64> {
    let nx = if nx_supported() { NX } else { 0 };
    let mut table = || -> Option<u64> {
        let f = alloc()?;
        // SAFETY: a fresh frame from the allocator, identity-mapped by the
        // boot tables (the allocator hands out low memory first).
        unsafe { zero_frame(f) };
        Some(f)
    };
    let pml4 = table()?;
    let end = layout.end.div_ceil(GIB) * GIB;
    let mut pdpt = 0;
    let mut gib = 0;
    while gib < end {
        if gib % (512 * GIB) == 0 {
            pdpt = table()?;
            // SAFETY: pml4 and pdpt are frames we own; the new hierarchy is
            // not active yet.
            unsafe {
                write_entry(
                    pml4,
                    (gib / (512 * GIB)) as usize,
                    pdpt | PRESENT | WRITABLE,
                )
            };
        }
        let pd = table()?;
        // SAFETY: as above.
        unsafe { write_entry(pdpt, ((gib / GIB) % 512) as usize, pd | PRESENT | WRITABLE) };
        for i in 0..512 {
            let va = gib + i as u64 * MIB2;
            let entry = if va < layout.image.1 && va + MIB2 > layout.image.0 || va == 0 {
                let pt = table()?;
                for j in 0..512 {
                    let page = va + j as u64 * 4096;
                    // Page 0 holds the BIOS data area the ACPI scan reads;
                    // read-only, so a write through a null pointer faults.
                    let flags = if page == 0 {
                        PRESENT | nx
                    } else if page >= layout.text.0 && page < layout.text.1 {
                        PRESENT
                    } else if page >= layout.rodata.0 && page < layout.rodata.1 {
                        PRESENT | nx
                    } else {
                        PRESENT | WRITABLE | nx
                    };
                    // SAFETY: pt is ours and inactive.
                    unsafe { write_entry(pt, j, page | flags) };
                }
                pt | PRESENT | WRITABLE
            } else {
                let has_ram = layout.ram.iter().any(|&(s, e)| s < va + MIB2 && e > va);
                let cache = if has_ram { 0 } else { PCD | PWT };
                va | PRESENT | WRITABLE | HUGE | nx | cache
            };
            // SAFETY: pd is ours and inactive.
            unsafe { write_entry(pd, i, entry) };
        }
        gib += GIB;
    }
    Some(pml4)
}

/// Switches to the tables at `cr3`, enabling no-execute first if the CPU
/// has it.
///
/// # Safety
/// `cr3` must come from [`build`] with a layout that maps everything the
/// hypervisor uses (its image, stacks, heap and the memory it reads).
pub unsafe fn activate(cr3: u64) {
    if nx_supported() {
        if let Some(efer) = rdmsr_safe(0xc000_0080) {
            // SAFETY: setting EFER.NXE only enables the NX bit in entries.
            unsafe { wrmsr(0xc000_0080, efer | (1 << 11)) };
        }
    }
    // SAFETY: the caller guarantees the new tables map everything in use.
    unsafe { asm!("mov cr3, {}", in(reg) cr3, options(nostack, preserves_flags)) };
}
