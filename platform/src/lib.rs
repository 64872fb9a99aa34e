//! Hardware knowledge: ACPI tables, PCI host access and enumeration.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

extern crate alloc;

pub mod acpi;
pub mod pci;
