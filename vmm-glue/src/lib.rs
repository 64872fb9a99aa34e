//! The seams between the hypervisor's crates.
//!
//! `platform` knows hardware, `pciback` knows the Xen PCI protocol and its
//! policy, and `hv` wires concrete implementations together. The only things
//! they share live here: address newtypes (so a guest address can never be
//! passed where a host address is expected), the PCI function address
//! [`Sbdf`], and small consumer-side traits such as [`PciConfig`] and the
//! IOMMU's [`DmaRemapping`] and [`InterruptRemapping`]; and [`compact`]'s
//! ordered map and set, which all three use instead of `alloc`'s B-trees to
//! keep the bare-metal image small; and the [`log`] macros they log with.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod addr;
#[cfg(feature = "alloc")]
pub mod compact;
pub mod iommu;
pub mod log;
pub mod passthrough;
pub mod pci;
pub mod xen;

pub use addr::{Gpa, Hpa};
pub use iommu::{
    DmaRemapping, InterruptRemapping, IommuError, RamRange, RemappedIoapic, RemappedMsi,
};
pub use passthrough::{IrqError, MapError, MsiRoute, MsiSource, PassthroughHost};
pub use pci::{PciConfig, Sbdf};
