//! The Xen PCI backend that lives inside the hypervisor.
//!
//! - [`hide`]: the `pciback.hide=` boot option, which names the PCI
//!   functions kept from everyone but pciback;
//! - [`quiesce`]: making a hidden function harmless (no decode, no DMA, no
//!   interrupts), proved by reading the registers back;
//! - [`owner`]: who owns each hidden function;
//! - [`regs`]: the config-space registers and bits pciback uses;
//! - [`backend`]: the xenbus PCI backend of one guest (xenstore, the
//!   handshake, the ops on the shared page).
//!
//! pciback never touches hardware itself: it reaches config space through
//! [`vmm_glue::PciConfig`], which the hypervisor implements.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod backend;
pub mod hide;
pub mod owner;
pub mod quiesce;
pub use vmm_glue::pci::regs;
pub mod reset;
pub mod vdev;

#[cfg(any(test, fuzzing))]
#[cfg_attr(not(test), allow(dead_code))]
mod fake_config;
#[cfg(any(test, fuzzing))]
pub mod fuzz;
// A kit shared by every test module: not each uses every helper.
#[cfg(any(test, fuzzing))]
#[allow(dead_code)]
pub(crate) mod testkit;
