//! The hypervisor's own page tables: an identity map of the physical address
//! space in 2 MiB pages, with the image in 4 KiB pages so that code is
//! read-only and executable, read-only data and everything else no-execute,
//! and page 0 read-only so a write through a null pointer faults.
//!
//! This is the one set of page tables not made by `platform::radix`, the
//! builder of the IOMMUs' and the domains' nested tables: it is built once,
//! before the heap exists (the builder keeps its retired tables in a
//! `Vec`), and switched to while it is written, and it needs what none of
//! the builder's formats has (1 GiB pages, no-execute data, read-only
//! code); bringing it over would cost more code than the few walks here.

use super::cpu::{cpuid, rdmsr_safe, wrmsr};
use super::phys::{write_entry, zero_frame};
use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};
use hv::regbits::EFER_NXE;
use x86::bits64::paging::PDFlags;
use x86::msr::IA32_EFER;

// Entry bits, as the `x86` crate defines them for a page directory entry
// (the same positions at every level).
const PRESENT: u64 = PDFlags::P.bits();
const WRITABLE: u64 = PDFlags::RW.bits();
const PWT: u64 = PDFlags::PWT.bits();
const PCD: u64 = PDFlags::PCD.bits();
const HUGE: u64 = PDFlags::PS.bits();
const NX: u64 = PDFlags::XD.bits();
const MIB2: u64 = 2 << 20;
const GIB: u64 = 1 << 30;

/// What the page tables need to know about memory.
#[derive(Debug)]
struct Layout<'a> {
    /// Map `[0, end)`.
    end: u64,
    image: super::image::Layout,
    /// RAM ranges (mapped write-back; other 2 MiB pages uncached).
    ram: &'a [(u64, u64)],
}

static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Whether the hypervisor's own page tables are active.
pub fn installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

/// The most physical memory the hypervisor maps (one PML4 entry).
pub const MAX_MAPPED: u64 = 512 << 30;

/// Builds the hypervisor's page tables with frames from `alloc`, switches to
/// them, and returns `(cr3, end)`: `[0, end)` is now identity-mapped, where
/// `end` is at least 4 GiB (firmware tables and MMIO) and covers every RAM
/// range in `ram` up to [`MAX_MAPPED`]. `None` if `alloc` ran out (nothing
/// was switched then).
///
/// `alloc` must hand out frames that nothing else uses, below 4 GiB or
/// otherwise mapped by the boot page tables (the boot tables map 4 GiB).
pub fn install(ram: &[(u64, u64)], alloc: impl FnMut() -> Option<u64>) -> Option<(u64, u64)> {
    let top = ram
        .iter()
        .map(|&(_, e)| e)
        .fold(4 << 30, u64::max)
        .min(MAX_MAPPED);
    let end = top.div_ceil(GIB) * GIB;
    let layout = Layout {
        end,
        image: super::image::layout(),
        ram,
    };
    let cr3 = build(&layout, alloc)?;
    // SAFETY: the new tables identity-map [0, end) which holds the image
    // (below 4 GiB), its stacks (in the image), every frame the allocator
    // hands out (RAM, below `end`; the caller keeps memory above
    // MAX_MAPPED out of the allocator) and everything below 4 GiB that the
    // hypervisor reads (firmware tables, MMIO). Code stays executable.
    unsafe { activate(cr3) };
    super::phys::set_mapped_end(end);
    INSTALLED.store(true, Ordering::Relaxed);
    Some((cr3, end))
}

/// Maps device memory `[pa, pa + len)` that lies beyond the identity map
/// (a BAR the firmware placed above 4 GiB and above all RAM, as UEFI
/// firmware does) into the active tables: identity, uncached, writable,
/// no-execute, in 2 MiB pages, with table frames from `alloc`. 2 MiB pages
/// already present are left as they are. `false` if `alloc` ran out (what
/// was mapped stays) or the range is beyond 48 bits.
///
/// Called on the boot CPU before any domain runs, or with the hypervisor's
/// lock held later: the tables are the one set every CPU uses.
pub fn map_device(pa: u64, len: u64, mut alloc: impl FnMut() -> Option<u64>) -> bool {
    let Some(end) = pa.checked_add(len).filter(|&e| e <= 1 << 48) else {
        return false;
    };
    let nx = if nx_supported() { NX } else { 0 };
    let cr3: u64;
    // SAFETY: reading CR3 has no side effects.
    unsafe { asm!("mov {}, cr3", out(reg) cr3, options(nomem, nostack, preserves_flags)) };
    let pml4 = cr3 & !0xfff;
    // The next-level table under `table[index]`, made if absent.
    let mut next = |table: u64, index: usize| -> Option<u64> {
        // SAFETY: `table` is one of the active tables, identity-mapped
        // below the map's end; index < 512.
        let e = unsafe { ((table as *const u64).add(index)).read_volatile() };
        if e & PRESENT != 0 {
            return (e & HUGE == 0).then_some(e & 0x000f_ffff_ffff_f000);
        }
        let f = alloc()?;
        // SAFETY: a fresh frame nothing else uses, inside the identity map;
        // it is filled before the entry pointing at it is written.
        unsafe {
            zero_frame(f);
            write_entry(table, index, f | PRESENT | WRITABLE);
        }
        Some(f)
    };
    let mut va = pa & !(MIB2 - 1);
    while va < end {
        let Some(pdpt) = next(pml4, (va >> 39) as usize & 511) else {
            return false;
        };
        let Some(pd) = next(pdpt, (va >> 30) as usize & 511) else {
            return false;
        };
        let i = (va >> 21) as usize & 511;
        // SAFETY: `pd` is an active directory, identity-mapped; a 2 MiB
        // entry that was not present becomes present (no stale
        // translation to flush), one already present is left alone.
        unsafe {
            if ((pd as *const u64).add(i)).read_volatile() & PRESENT == 0 {
                write_entry(pd, i, va | PRESENT | WRITABLE | HUGE | nx | PCD | PWT);
            }
        }
        va += MIB2;
    }
    true
}

/// Whether this CPU supports no-execute pages.
pub fn nx_supported() -> bool {
    cpuid(0x8000_0001, 0).edx & (1 << 20) != 0
}

/// Builds the tables with frames from `alloc` and returns the new CR3.
/// Returns `None` if `alloc` runs out.
fn build(layout: &Layout<'_>, mut alloc: impl FnMut() -> Option<u64>) -> Option<u64> {
    let nx = if nx_supported() { NX } else { 0 };
    let mut table = || -> Option<u64> {
        let f = alloc()?;
        // SAFETY: a fresh frame nothing else uses, identity-mapped by the
        // boot tables (the contract of `install`).
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
            let (image, text, rodata) =
                (layout.image.image, layout.image.text, layout.image.rodata);
            let entry = if va < image.1 && va + MIB2 > image.0 || va == 0 {
                let pt = table()?;
                for j in 0..512 {
                    let page = va + j as u64 * 4096;
                    // Page 0 holds the BIOS data area the ACPI scan reads;
                    // read-only, so a write through a null pointer faults.
                    let flags = if page == 0 {
                        PRESENT | nx
                    } else if page >= text.0 && page < text.1 {
                        PRESENT
                    } else if page >= rodata.0 && page < rodata.1 {
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
unsafe fn activate(cr3: u64) {
    if nx_supported() {
        if let Some(efer) = rdmsr_safe(IA32_EFER) {
            // SAFETY: setting EFER.NXE only enables the NX bit in entries.
            unsafe { wrmsr(IA32_EFER, efer | EFER_NXE) };
        }
    }
    // SAFETY: the caller guarantees the new tables map everything in use.
    unsafe { asm!("mov cr3, {}", in(reg) cr3, options(nostack, preserves_flags)) };
}
