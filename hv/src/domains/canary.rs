//! The isolation checks of the test scenarios (`debug.canary`, only in the
//! image with the test hooks): a host page that must not change, and
//! domain memory that must stay as it was after its owner ended.

use crate::domain::Domain;
use hv::multiboot::PhysRead;
use vmm_glue::log;

/// A page of host memory filled with a known pattern while the domains run
/// (`debug.canary`): its address is appended to every domain's command line
/// as `hv.canary=0x...`, so a test guest can aim at it, and it is checked
/// when all domains have ended. The domains' memory, scrubbed when each
/// ends, is checked then too: whatever of it is still free must still read
/// as zero [`LATE_DMA_MS`] after the last domain ended, so a device that
/// kept writing after its owner died would show.
pub(super) struct Canary {
    pub(super) hpa: u64,
}

pub(super) const CANARY_BYTE: u8 = 0xc5;

/// How long the checks wait for a device's late write (QEMU's edu finishes
/// a DMA 100 ms after it was started).
pub(super) const LATE_DMA_MS: u64 = 300;

impl Canary {
    pub(super) fn new() -> Option<Self> {
        let hpa = crate::mem::alloc_frames(1, 4096)?;
        // SAFETY: the frame allocator just handed this frame over; the
        // canary keeps it for the rest of the run.
        unsafe { crate::arch::phys::fill_owned(hpa, 4096, CANARY_BYTE) };
        crate::mem::watch_scrubbed();
        log::info!("isolation: canary page at host-physical {hpa:#x}");
        Some(Self { hpa })
    }

    /// Checks that nothing writes the memory of `dom`, which has ended
    /// and whose devices were released, for [`LATE_DMA_MS`] (before it is
    /// scrubbed): a device still writing would change it.
    pub(super) fn check_quiet(dom: &Domain) {
        let before = dom.mem.digest();
        wait_ms(LATE_DMA_MS);
        // What the IOMMU blocked meanwhile is logged here, not after exit.
        crate::iommu::poll_faults();
        if dom.mem.digest() == before {
            log::info!(
                "isolation: dom{}'s memory unchanged in the {LATE_DMA_MS} ms after its devices were released",
                dom.id
            );
        } else {
            log::error!(
                "isolation: dom{}'s memory CHANGED after its devices were released: a device still reaches it",
                dom.id
            );
        }
    }

    /// Checks that the domains' freed memory is still zero.
    pub(super) fn check_freed() {
        wait_ms(LATE_DMA_MS);
        crate::iommu::poll_faults();
        let free = crate::mem::scrubbed_and_free();
        let bytes: u64 = free.iter().map(|r| r.end - r.start).sum();
        match free
            .iter()
            // SAFETY: free frames of the allocator (page-aligned RAM in
            // the identity map) that nothing owns while this reads them.
            .find_map(|r| unsafe { crate::arch::phys::first_nonzero(r.start, r.end - r.start) })
        {
            None => log::info!(
                "isolation: the domains' freed memory ({} KiB still free) reads zero {LATE_DMA_MS} ms after the last one ended",
                bytes >> 10
            ),
            Some(at) => log::error!(
                "isolation: freed domain memory at {at:#x} CHANGED after its domain ended: something wrote memory nobody owns"
            ),
        }
    }

    pub(super) fn check(self, domains: usize) {
        Self::check_freed();
        let intact = crate::mem::IDENTITY
            .read(self.hpa, 4096)
            .is_some_and(|b| b.iter().all(|&x| x == CANARY_BYTE));
        if intact {
            log::info!(
                "isolation: canary page at {:#x} unchanged after {domains} domains",
                self.hpa
            );
        } else {
            log::error!(
                "isolation: canary page at {:#x} CHANGED: a domain reached host memory",
                self.hpa
            );
        }
        crate::mem::free_frames(self.hpa, 1);
    }
}

/// Spins for `ms` milliseconds.
pub(super) fn wait_ms(ms: u64) {
    let end = crate::domain::time::now_ns() + ms * 1_000_000;
    while crate::domain::time::now_ns() < end {
        core::hint::spin_loop();
    }
}
