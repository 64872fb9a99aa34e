//! The Xen PCI backend that lives inside the hypervisor.
//!
//! - [`hide`]: the `pciback.hide=` boot option, which names the PCI
//!   functions kept from everyone but pciback.
//!
//! pciback never touches hardware itself: it reaches config space through
//! [`vmm_glue::PciConfig`], which the hypervisor implements.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod hide;
