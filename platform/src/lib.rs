//! Hardware knowledge: ACPI tables (and the PCI interrupt routing in the
//! DSDT's AML), PCI host access and enumeration, I/O APIC programming,
//! IOMMUs, and the one radix page-table builder ([`radix`]) that makes both
//! the IOMMUs' tables and the domains' nested page tables (NPT, EPT).
//!
//! Everything here is safe code tested on the host, except three small
//! modules that touch the machine and are the only ones allowed `unsafe`:
//! [`acpi::IdentityMapped`] (reading identity-mapped physical memory),
//! [`pci::host::Ecam`] (MMIO config space) and [`pci::host::LegacyPorts`]
//! (port I/O). Each unsafe constructor states what its caller guarantees.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

pub mod acpi;
pub mod ioapic;
pub mod iommu;
pub mod pci;
pub mod radix;

#[cfg(test)]
mod test_rng;
