//! The Xen PCI backend that lives inside the hypervisor.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;
