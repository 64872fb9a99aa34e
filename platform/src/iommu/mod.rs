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
mod scope;
pub mod set;
#[cfg(test)]
pub(crate) mod testmem;
pub mod vtd;

pub use crate::radix::TableMemory;
pub use set::{Iommu, IommuSet, Recorded, Scope, Unit, QUARANTINE_DOMAIN};
