//! Hardware knowledge: ACPI tables, PCI host access and enumeration.
#![cfg_attr(not(test), no_std)]

extern crate alloc;
