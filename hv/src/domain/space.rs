//! A domain's guest-physical space: its RAM ([`GuestMemory`]), the nested
//! page tables that map it (NPT or EPT, [`GuestTables`]) and whether
//! cached translations must go before the next entry. A page leaves or
//! joins the space here, in both at once.

use crate::virt::guest_mem::GuestMemory;
use crate::virt::GuestTables;

/// A domain's memory and nested page tables; reads and writes of guest
/// memory reach the [`GuestMemory`] through it (`Deref`).
#[derive(Debug)]
pub struct GuestSpace {
    pub(super) ram: GuestMemory,
    // Kept for the lifetime of the domain: the vCPUs' nested CR3 or EPT
    // pointer points here.
    pub(super) tables: GuestTables,
    /// Second-level entries went away: flush before the next entry.
    pub(super) stage2_flush: bool,
    /// A PV domain's space ([`hv::guestview::GuestPhys::pv`]).
    pub(super) pv: bool,
}

impl GuestSpace {
    pub fn new(ram: GuestMemory, tables: GuestTables) -> Self {
        Self {
            ram,
            tables,
            stage2_flush: false,
            pv: false,
        }
    }

    /// Whether cached translations are to go before the next entry (asked
    /// once: the answer is cleared).
    #[inline]
    pub fn take_flush(&mut self) -> bool {
        core::mem::take(&mut self.stage2_flush)
    }

    /// Backs `gpa` with a scrubbed frame from the pool and maps it: the
    /// frame, or `None` (nothing changed) when none is left or it cannot
    /// be mapped.
    pub fn populate(&mut self, gpa: u64) -> Option<u64> {
        let hpa = self.ram.populate_page(gpa)?;
        // SAFETY: a frame of the domain's own pool, now its page at `gpa`
        // (`GuestMemory` owns it until the domain ends or gives it back).
        if unsafe { self.tables.map_4k(gpa, hpa) }.is_none() {
            self.discard(gpa);
            return None;
        }
        Some(hpa)
    }

    /// Undoes [`GuestSpace::populate`]: the frame back to the pool, which
    /// nothing else reached.
    pub fn discard(&mut self, gpa: u64) {
        self.tables.unmap_4k(gpa);
        self.stage2_flush = true;
        self.ram.remove_page(gpa);
    }

    /// Gives back the RAM page at `gpa` (Xen's `guest_remove_page`): out of
    /// the nested page tables, its frame scrubbed into the pool.
    pub fn remove(&mut self, gpa: u64) -> bool {
        if self.tables.unmap_4k(gpa).is_none() {
            return false;
        }
        // Cached translations go before the guest runs again; until then
        // the frame stays in this domain's pool, which no one else reaches.
        self.stage2_flush = true;
        self.ram.remove_page(gpa)
    }
}

impl core::ops::Deref for GuestSpace {
    type Target = GuestMemory;
    #[inline]
    fn deref(&self) -> &GuestMemory {
        &self.ram
    }
}

impl core::ops::DerefMut for GuestSpace {
    #[inline]
    fn deref_mut(&mut self) -> &mut GuestMemory {
        &mut self.ram
    }
}
