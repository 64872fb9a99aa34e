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
    /// The host's usable RAM below 4 GiB, `[start, end)`: where
    /// [`Canary::check`] looks for [`DMA_PATTERN`].
    ram: alloc::vec::Vec<(u64, u64)>,
}

/// The byte the test guests' DMA write attacks carry (xpci's
/// `dma-write:`): 64 of them in a row, 8-byte aligned, must be nowhere in
/// host memory once every domain ended and its memory was scrubbed.
pub(super) const DMA_PATTERN: u64 = 0xa5a5_a5a5_a5a5_a5a5;

/// The page of the victim (the domain whose `hv.peer=` address was handed
/// to the next one): its id, the page's host address and digest when it
/// was built, before anything ran.
static PEER: spin::Mutex<Option<(u16, u64, u64)>> = spin::Mutex::new(None);

pub(super) const CANARY_BYTE: u8 = 0xc5;

/// How long the checks wait for a device's late write (QEMU's edu finishes
/// a DMA 100 ms after it was started).
pub(super) const LATE_DMA_MS: u64 = 300;

impl Canary {
    pub(super) fn new(memory: &[hv::memmap::Region]) -> Option<Self> {
        let hpa = crate::mem::alloc_frames(1, 4096)?;
        // SAFETY: the frame allocator just handed this frame over; the
        // canary keeps it for the rest of the run.
        unsafe { crate::arch::phys::fill_owned(hpa, 4096, CANARY_BYTE) };
        crate::mem::watch_scrubbed();
        log::info!("isolation: canary page at host-physical {hpa:#x}");
        let ram = memory
            .iter()
            .filter(|r| r.kind == hv::memmap::RegionKind::Usable && r.base < 4 << 30)
            .map(|r| ((r.base + 7) & !7, r.end().min(4 << 30) & !7))
            .filter(|(s, e)| s < e)
            .collect();
        Some(Self { hpa, ram })
    }

    /// Domain `dom`'s page at host address `hpa` (its guest-physical
    /// 0x100000, handed to the next domain as `hv.peer=`) is digested now,
    /// before any domain ran, and again by [`Canary::check_peer`] when
    /// `dom` ends.
    pub(super) fn watch_peer(dom: u16, hpa: u64) {
        *PEER.lock() = Some((dom, hpa, page_digest(hpa)));
    }

    /// If `dom` is the domain [`Canary::watch_peer`] named, checks that its
    /// page is as it was before the domains ran (before its memory is
    /// scrubbed).
    pub(super) fn check_peer(dom: u16) {
        let Some((id, hpa, before)) = *PEER.lock() else {
            return;
        };
        if id != dom {
            return;
        }
        if page_digest(hpa) == before {
            log::info!(
                "isolation: dom{dom}'s page at guest-physical 0x100000 (hv.peer={hpa:#x}) unchanged from before the domains ran to its end"
            );
        } else {
            log::error!(
                "isolation: dom{dom}'s page at guest-physical 0x100000 (hv.peer={hpa:#x}) CHANGED while the domains ran: another domain reached it"
            );
        }
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
        self.check_pattern();
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

impl Canary {
    /// Looks for [`DMA_PATTERN`] (64 bytes of it, 8-byte aligned) in all of
    /// the host's usable RAM below 4 GiB: with every domain ended and
    /// scrubbed, a DMA write attack that landed anywhere (the hypervisor's
    /// memory, another domain's, memory nobody owned) would show.
    fn check_pattern(&self) {
        let mut at = None;
        let mut scanned = 0u64;
        'ranges: for &(start, end) in &self.ram {
            scanned += end - start;
            let mut a = start;
            while a + 64 <= end {
                // SAFETY: 8-byte aligned words of usable RAM the boot memory
                // map lists, identity-mapped like every frame; with every
                // domain ended nothing else uses them, and reading changes
                // nothing (a test hook, `debug.canary`).
                let word = |x: u64| unsafe { crate::arch::phys::read_owned_u64(x) };
                if word(a) == DMA_PATTERN && (8..64).step_by(8).all(|o| word(a + o) == DMA_PATTERN)
                {
                    at = Some(a);
                    break 'ranges;
                }
                a += 8;
            }
        }
        match at {
            None => log::info!(
                "isolation: no 64-byte run of the DMA attack byte 0xa5 in host RAM ({} MiB below 4 GiB scanned)",
                scanned >> 20
            ),
            Some(a) => log::error!(
                "isolation: host RAM at {a:#x} holds a 64-byte run of the DMA attack byte 0xa5: a DMA write landed outside its domain"
            ),
        }
    }
}

/// A digest of the 4 KiB page at host address `hpa`.
fn page_digest(hpa: u64) -> u64 {
    (hpa..hpa + 4096)
        .step_by(8)
        .fold(0xcbf2_9ce4_8422_2325u64, |h, a| {
            // SAFETY: `hpa` is a page of a live domain's memory (the
            // caller's), identity-mapped; `a` is 8-byte aligned inside it.
            (h ^ unsafe { crate::arch::phys::read_owned_u64(a) }).wrapping_mul(0x0100_0000_01b3)
        })
}

/// Spins for `ms` milliseconds.
pub(super) fn wait_ms(ms: u64) {
    let end = crate::domain::time::now_ns() + ms * 1_000_000;
    while crate::domain::time::now_ns() < end {
        core::hint::spin_loop();
    }
}
