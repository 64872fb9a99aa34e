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
    pub fn map_4k(&mut self, gpa: u64, hpa: u64) -> Option<()> {
        // The leaf maps a frame the domain owns.
        self.map_free(gpa, hpa, Access::ReadWrite)
    }

    /// Maps the 4 KiB page at `gpa`, where nothing is mapped yet, to `hpa`
    /// read-only: hypervisor data a guest may read (a PV guest's M2P,
    /// descriptor tables). `None` when memory is short or something is
    /// mapped there already.
    pub fn map_4k_ro(&mut self, gpa: u64, hpa: u64) -> Option<()> {
        // The leaf maps a frame the hypervisor owns for this domain,
        // without write access.
        self.map_free(gpa, hpa, Access::ReadOnly)
    }

    /// Maps the 4 KiB page at `gpa` to device memory at `hpa` (uncached,
    /// not executable under EPT). `None` when memory is short or something
    /// is mapped there already.
    pub fn map_mmio_4k(&mut self, gpa: u64, hpa: u64) -> Option<()> {
        // The leaf maps device memory the caller checked belongs to this
        // domain's functions.
        self.map_free(gpa, hpa, Access::Device)
    }

    /// Maps the 2 MiB page at `gpa` (2 MiB aligned, nothing mapped there)
    /// to `hpa` read-only.
    pub fn map_2m_ro(&mut self, gpa: u64, hpa: u64) -> Option<()> {
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
