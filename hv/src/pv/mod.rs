//! Xen 64-bit PV domains: the logic that does not need the hardware.
//!
//! A PV guest runs inside the same hardware container as a PVH guest (SVM
//! or VMX with nested paging): its "machine" frames are the container's
//! guest-physical frames (an identity p2m), its own page tables are the
//! container's CR3, and nested paging is the isolation boundary. Around it
//! the hypervisor provides Xen's PV semantics, each piece here and tested
//! on the host:
//! - [`abi`]: the fixed parts of the ABI (selectors, the reserved virtual
//!   range and GDT entries, page-table bits, start-info flags);
//! - [`notes`]: the kernel's Xen ELF notes;
//! - [`build`]: the domain builder (where the kernel, start info, p2m list,
//!   rings, initial page tables and boot stack go);
//! - [`mm`]: page types and page-table updates (`mmu_update`,
//!   `mmuext_op`, `update_va_mapping`, the writable page-table assist).
//! - [`debugreg`]: the debug registers `set_debugreg` and `mov %dr` set.

pub mod abi;
pub mod bounce;
pub mod build;
pub mod container;
pub mod cpuid;
pub mod debugreg;
pub mod desc;
pub mod emul;
pub mod fast;
pub mod mm;
pub mod notes;

#[cfg(test)]
mod testimg;
