//! IOMMUs: DMA remapping, so a device assigned to a guest reaches only
//! that guest's RAM and every other device is blocked.
//!
//! [`IommuSet`] puts the units of either kind ([`vtd`], [`amdvi`]) behind
//! `vmm-glue`'s DMA- and interrupt-remapping seams.
//!
//! The drivers here are safe code: the hypervisor hands them the unit's
//! registers and the memory for its tables through small traits
//! ([`vtd::VtdRegs`], [`TableMemory`]), and host tests hand them fakes.

pub mod amdvi;
mod radix;
mod scope;
pub mod set;
#[cfg(test)]
mod testmem;
pub mod vtd;

pub use set::{Iommu, IommuSet, Recorded, Scope, Unit, QUARANTINE_DOMAIN};

/// Host memory for an IOMMU's tables: zeroed 4 KiB frames, and 64-bit
/// accesses to them by host-physical address.
///
/// Accesses are plain memory accesses; the driver orders its writes so
/// that the unit never sees a half-written entry become present (it
/// writes the upper half of a 128-bit entry first).
pub trait TableMemory {
    /// A zeroed, 4 KiB-aligned frame, or `None` when memory is exhausted.
    fn alloc_zeroed(&mut self) -> Option<u64>;

    /// Returns a frame [`alloc_zeroed`](Self::alloc_zeroed) gave out.
    fn free(&mut self, hpa: u64);

    /// Reads the 64-bit word at `hpa` (8-byte aligned, inside a frame
    /// this memory gave out). This must be a volatile read: the unit
    /// writes completion status words into this memory while the driver
    /// polls them.
    fn read64(&mut self, hpa: u64) -> u64;

    /// Writes the 64-bit word at `hpa` (8-byte aligned, inside a frame
    /// this memory gave out).
    fn write64(&mut self, hpa: u64, v: u64);

    /// Writes `[hpa, hpa + len)` back from the CPU caches to memory
    /// (`clflush` of every line, then a fence).
    ///
    /// Called after table writes only when the unit's table walks do not
    /// snoop the caches (VT-d ECAP.C clear); the default does nothing,
    /// which is right for coherent units (and for QEMU's).
    fn flush(&mut self, hpa: u64, len: u64) {
        let _ = (hpa, len);
    }
}
