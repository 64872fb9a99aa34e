//! The guest runtime: what a bare-metal PVH test guest needs to start, talk
//! to the hypervisor and report results. The binaries in `src/bin/` are the
//! guests.
//!
//! A guest image is an ELF with a Xen `PHYS32_ENTRY` note. The loader enters
//! [`boot`]'s 32-bit code with the `hvm_start_info` address in EBX; the boot
//! code builds an identity map of the first 1 GiB, enters long mode and
//! calls the guest's `guest_main` (defined with [`guest_main!`]), which runs
//! [`rt::start`]: the [`idt`] catches exceptions, [`hypervisor`] finds Xen
//! through CPUID and registers the hypercall page, and the guest's `main`
//! runs. [`console`] and [`power`] use hypercalls under Xen and QEMU's
//! debug console and isa-debug-exit without it, so guests also run on
//! plain QEMU (`-kernel`, which understands the PVH note).
//!
//! [`pv`] is the other way to start: a 64-bit PV guest entered in ring 3
//! on the domain builder's page tables, with its own entry, trap
//! handling and hypercall page; console, reports and shutdown are shared.
//!
//! Safety: `unsafe` lives in the leaf modules that touch the machine —
//! [`boot`], [`smp`], [`cpu`], [`idt`], [`probe`], [`hypervisor`],
//! [`start_info`] (copies out of guest memory), [`pci`] (device memory,
//! port I/O, the local APIC) and `libc` — each block with the invariants it
//! relies on. The runtime runs on one vCPU with interrupts off
//! throughout; [`smp`] has what a second one needs.
#![no_std]

pub mod abi;
pub mod boot;
pub mod console;
pub mod cpu;
pub mod hypervisor;
pub mod idt;
mod libc;
pub mod pci;
pub mod power;
pub mod probe;
pub mod pv;
pub mod report;
pub mod rt;
pub mod smp;
pub mod start_info;
pub mod xen;

pub use power::{shutdown, ShutdownReason};
pub use start_info::StartInfo;
pub use vmm_glue::Gpa;

/// Prints the panic and ends the guest with `SHUTDOWN_crash`.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("firmware: panic: {info}");
    shutdown(ShutdownReason::Crash)
}
