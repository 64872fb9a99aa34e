//! Second-level page tables: guest physical to host physical, 2 MiB leaves
//! for the RAM chunks, 4 KiB leaves for the rest. The tables are
//! `platform`'s radix builder in one of its two nested formats (AMD NPT,
//! Intel EPT: [`platform::radix::nested`], which lists each leaf's bits);
//! this module picks the format per backend and gives the builder the
//! hypervisor's frames (the same as the IOMMUs' tables get). Table frames
//! are scrubbed and freed on drop.

use super::guest_mem::{GuestMemory, CHUNK};
use crate::iommu::HostFrames;
use platform::radix::nested::{ept_pointer, EPT, NPT, SHAPE};
use platform::radix::{Access, Radix};

/// The entry layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// AMD nested paging.
    Npt,
    /// Intel EPT.
    Ept,
}

/// A domain's second-level page tables; the vCPU points at them, so they
/// live as long as the domain.
#[derive(Debug)]
pub struct GuestTables(Radix);

impl GuestTables {
    /// Tables in `format` mapping all of `ram`; `None` when memory is short.
    pub fn for_ram(format: Format, ram: &GuestMemory) -> Option<Self> {
        let format = match format {
            Format::Npt => &NPT,
            Format::Ept => &EPT,
        };
        let mut t = Self(Radix::new(&mut HostFrames, SHAPE, format).ok()?);
        for c in ram.chunks() {
            debug_assert!(c.gpa.is_multiple_of(CHUNK) && c.hpa.is_multiple_of(CHUNK));
            t.0.map_as(&mut HostFrames, c.gpa, c.hpa, CHUNK, Access::ReadWrite)
                .ok()?;
        }
        Some(t)
    }

    /// The root table's address: the nested CR3 (NPT).
    pub fn root(&self) -> u64 {
        self.0.root()
    }

    /// The EPT pointer for the VMCS.
    pub fn eptp(&self) -> u64 {
        ept_pointer(self.root())
    }

    /// Maps the 4 KiB page at `gpa` to `hpa` with `access` where nothing
    /// is mapped yet. `None` when memory is short or something (a page, a
    /// 2 MiB page) is mapped there already.
    ///
    /// No TLB flush is needed: neither EPT (Intel SDM vol. 3, 29.4.1) nor
    /// NPT caches a translation that was not present.
    fn map_free(&mut self, gpa: u64, hpa: u64, access: Access) -> Option<()> {
        self.0
            .map_free(&mut HostFrames, gpa, hpa, access)
            .ok()?
            .then_some(())
    }

    /// Maps the 4 KiB page at `gpa` to the domain's frame `hpa`,
    /// read-write-execute (a page it populated, a special frame). `None`
    /// when memory is short or something is mapped there already.
    ///
    /// # Safety
    /// `hpa` must be a frame the domain owns (its RAM, or a page the
    /// hypervisor gave it) and stay its own until this mapping is removed
    /// or the tables dropped: the guest reads and writes it directly.
    pub unsafe fn map_4k(&mut self, gpa: u64, hpa: u64) -> Option<()> {
        // The leaf maps a frame the domain owns.
        self.map_free(gpa, hpa, Access::ReadWrite)
    }

    /// Maps the 4 KiB page at `gpa`, where nothing is mapped yet, to `hpa`
    /// read-only: hypervisor data a guest may read (a PV guest's M2P,
    /// descriptor tables). `None` when memory is short or something is
    /// mapped there already.
    ///
    /// # Safety
    /// `hpa` must be memory the hypervisor keeps for this domain, holding
    /// nothing another domain or the hypervisor's secrets need kept from
    /// it, until this mapping is removed or the tables dropped: the guest
    /// reads it directly.
    pub unsafe fn map_4k_ro(&mut self, gpa: u64, hpa: u64) -> Option<()> {
        // The leaf maps a frame the hypervisor owns for this domain,
        // without write access.
        self.map_free(gpa, hpa, Access::ReadOnly)
    }

    /// Maps the 4 KiB page at `gpa` to device memory at `hpa` (uncached,
    /// not executable under EPT). `None` when memory is short or something
    /// is mapped there already.
    ///
    /// # Safety
    /// `hpa` must be a page of a memory BAR of a function assigned to this
    /// domain, one the backend lets the guest reach directly, until this
    /// mapping is removed: the guest's accesses go to that device memory.
    pub unsafe fn map_mmio_4k(&mut self, gpa: u64, hpa: u64) -> Option<()> {
        // The leaf maps device memory the caller checked belongs to this
        // domain's functions.
        self.map_free(gpa, hpa, Access::Device)
    }

    /// Maps the 2 MiB page at `gpa` (2 MiB aligned, nothing mapped there)
    /// to `hpa` read-only.
    ///
    /// # Safety
    /// `hpa` must be 2 MiB the hypervisor keeps for this domain, holding
    /// nothing another domain or the hypervisor's secrets need kept from
    /// it, until this mapping is removed or the tables dropped: the guest
    /// reads it directly.
    pub unsafe fn map_2m_ro(&mut self, gpa: u64, hpa: u64) -> Option<()> {
        // The leaf maps memory the hypervisor owns, without write access.
        self.0
            .map_as(&mut HostFrames, gpa, hpa, CHUNK, Access::ReadOnly)
            .ok()
    }

    /// Removes the 4 KiB mapping at `gpa` (a page the domain gives back, a
    /// device page), splitting a 2 MiB page that covers it into 4 KiB ones
    /// first; `None`, with nothing changed, when no frame for that table is
    /// left. Nothing mapped there is not an error. Tables emptied stay
    /// until the domain dies. The caller flushes the guest's TLB before it
    /// runs again.
    pub fn unmap_4k(&mut self, gpa: u64) -> Option<()> {
        self.0.unmap(&mut HostFrames, gpa, 4096).ok()
    }
}

impl Drop for GuestTables {
    fn drop(&mut self) {
        self.0.free_all(&mut HostFrames);
    }
}
