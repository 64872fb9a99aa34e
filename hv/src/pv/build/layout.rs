//! Where everything goes: Xen's PV layout (`xg_dom_core.c
//! xc_dom_build_image`, `xg_dom_x86.c alloc_pgtables_pv`), page by page
//! from pfn 0, pfn N mapped at `VIRT_BASE + N * 4096`:
//!
//! ```text
//! pfn 0            (not written: free for the guest, mapped)
//! kernel           at its pseudo-physical address, page-aligned down
//! [initrd]         here only if the kernel lacks MOD_START_PFN
//! p2m list         nr_pages u64 entries, p2m[i] = i
//! start info, xenstore ring, console ring    one page each
//! boot page tables L4, L3s, L2s, L1s
//! boot stack       one page
//! (room)           >= 512 KiB, up to the 4 MiB-aligned end of the mapping
//! ----------------- end of the initial mapping
//! [initrd]         here, unmapped, if the kernel has MOD_START_PFN
//! free             up to nr_pages
//! ```
//!
//! The page-table count depends on how far the mapping reaches, which
//! depends on the count: as Xen does, start from the stack page and the
//! 512 KiB of room alone, round the end up to the next 4 MiB boundary
//! (strictly above, `addr | (4 MiB - 1)`), count the tables that mapping
//! needs, and repeat until tables, stack and room fit below the end.

use super::error::BuildError;
use super::kernel::KernelImage;
use super::tables::BootTables;
use crate::pv::abi::va::{canonical, HYPERVISOR_VIRT_END, HYPERVISOR_VIRT_START};
use core::ops::Range;

/// Bytes in a page.
pub const PAGE_SIZE: u64 = 4096;

/// Room mapped after the boot stack (`extra_pages` in Xen's builder).
const ROOM_PAGES: u64 = (512 * 1024) / PAGE_SIZE;

/// The initial mapping ends just below a multiple of this.
const MAPPING_ALIGN: u64 = 4 << 20;

/// The first address past the lower canonical half.
const LOW_HALF_END: u64 = 1 << 47;

/// Where the initrd goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ramdisk {
    /// Its first pfn.
    pub pfn: u64,
    /// Pages it takes (its length rounded up).
    pub pages: u64,
    /// Its length in bytes.
    pub len: u64,
    /// Whether the initial mapping covers it (the kernel lacks
    /// `MOD_START_PFN`).
    pub mapped: bool,
}

/// The pfns of everything the builder places.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The kernel's pages.
    pub kernel: Range<u64>,
    pub ramdisk: Option<Ramdisk>,
    /// The p2m list's pages.
    pub p2m: Range<u64>,
    pub start_info: u64,
    pub store: u64,
    pub console: u64,
    pub tables: BootTables,
    pub stack: u64,
    /// Pages of the initial mapping: pfn 0 up to this.
    pub mapped_pages: u64,
    /// The first pfn after everything placed.
    pub first_free: u64,
}

/// Checks that the `len` (>= 1) bytes from virtual `start` on are
/// canonical, outside the hypervisor's range and below the top of the
/// address space.
pub fn check_va_range(what: &'static str, start: u64, len: u64) -> Result<(), BuildError> {
    let last = start
        .checked_add(len.saturating_sub(1))
        .ok_or(BuildError::PastTopOfAddressSpace { what, start })?;
    if !canonical(start) {
        return Err(BuildError::NonCanonical { what, va: start });
    }
    if (HYPERVISOR_VIRT_START..HYPERVISOR_VIRT_END).contains(&start) {
        return Err(BuildError::InHypervisorRange { what, va: start });
    }
    // A canonical start outside the hypervisor's range is either in the
    // lower half or at or above HYPERVISOR_VIRT_END; only the lower half
    // can run into non-canonical addresses.
    if start < LOW_HALF_END && last >= LOW_HALF_END {
        return Err(BuildError::NonCanonical {
            what,
            va: LOW_HALF_END,
        });
    }
    Ok(())
}

/// Allocates `n` pages at `*next`: their first pfn.
fn take(next: &mut u64, n: u64) -> u64 {
    let at = *next;
    *next = next.saturating_add(n);
    at
}

/// Pages `bytes` take.
fn pages(bytes: u64) -> u64 {
    bytes.div_ceil(PAGE_SIZE)
}

const MAPPING: &str = "the initial mapping (kernel, p2m list, start info, rings, boot page \
                       tables, stack and 512 KiB of room)";

/// Places everything for a kernel `kernel` mapped at `virt_base` (page
/// aligned, canonical, outside the hypervisor's range) in a domain of
/// `nr_pages` pages (at most 2^35) with an initrd of `ramdisk_len` bytes
/// (none if 0), left unmapped if `unmapped_initrd`.
pub fn place(
    virt_base: u64,
    kernel: &KernelImage,
    nr_pages: u64,
    ramdisk_len: u64,
    unmapped_initrd: bool,
) -> Result<Layout, BuildError> {
    let kernel_pages = kernel.start / PAGE_SIZE..pages(kernel.end);
    if kernel_pages.end > nr_pages {
        return Err(BuildError::DoesNotFit {
            what: "the kernel image",
            need_pages: kernel_pages.end,
            nr_pages,
        });
    }
    let mut next = kernel_pages.end;
    let ramdisk_pages = pages(ramdisk_len);
    let mapped_ramdisk = (ramdisk_len != 0 && !unmapped_initrd).then(|| Ramdisk {
        pfn: take(&mut next, ramdisk_pages),
        pages: ramdisk_pages,
        len: ramdisk_len,
        mapped: true,
    });
    let p2m_pages = pages(nr_pages * 8);
    let p2m = take(&mut next, p2m_pages);
    let start_info = take(&mut next, 1);
    let store = take(&mut next, 1);
    let console = take(&mut next, 1);

    let after_tables = 1 + ROOM_PAGES;
    let mut want = after_tables;
    let (tables, mapped_pages) = loop {
        let need_pages = next.saturating_add(want);
        let too_small = |need_pages| BuildError::DoesNotFit {
            what: MAPPING,
            need_pages,
            nr_pages,
        };
        if need_pages > nr_pages {
            return Err(too_small(need_pages));
        }
        // The mapping ends just below the 4 MiB boundary above those pages.
        let end_va = virt_base.checked_add(need_pages * PAGE_SIZE).ok_or(
            BuildError::PastTopOfAddressSpace {
                what: "the initial mapping",
                start: virt_base,
            },
        )?;
        let last_va = end_va | (MAPPING_ALIGN - 1);
        let mapped_bytes = last_va - virt_base + 1;
        // Its end must be an address: a mapping may not reach the top.
        if virt_base.checked_add(mapped_bytes).is_none() {
            return Err(BuildError::PastTopOfAddressSpace {
                what: "the initial mapping",
                start: virt_base,
            });
        }
        let mapped_pages = mapped_bytes / PAGE_SIZE;
        if mapped_pages > nr_pages {
            return Err(too_small(mapped_pages));
        }
        check_va_range("the initial mapping", virt_base, mapped_bytes)?;
        let tables = BootTables::new(virt_base, mapped_pages, next);
        want = tables.nr_frames() + after_tables;
        if next + want <= mapped_pages {
            break (tables, mapped_pages);
        }
    };
    take(&mut next, tables.nr_frames());
    let stack = take(&mut next, 1);
    next = mapped_pages;
    let ramdisk = match mapped_ramdisk {
        Some(r) => Some(r),
        None if ramdisk_len != 0 => Some(Ramdisk {
            pfn: take(&mut next, ramdisk_pages),
            pages: ramdisk_pages,
            len: ramdisk_len,
            mapped: false,
        }),
        None => None,
    };
    if next > nr_pages {
        return Err(BuildError::DoesNotFit {
            what: "the initial mapping and the initrd after it",
            need_pages: next,
            nr_pages,
        });
    }
    Ok(Layout {
        kernel: kernel_pages,
        ramdisk,
        p2m: p2m..p2m + p2m_pages,
        start_info,
        store,
        console,
        tables,
        stack,
        mapped_pages,
        first_free: next,
    })
}
