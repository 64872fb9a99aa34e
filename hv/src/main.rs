//! The bare-metal hypervisor image.
//!
//! Boot walk-through (ARCHITECTURE.md has the long version): `arch::boot`
//! enters long mode and calls [`kmain`], which brings up the console, reads
//! the boot loader's information and command line, installs the GDT/TSS/IDT,
//! builds the frame allocator, the hypervisor's own page tables and the
//! heap, reports the CPU, discovers the platform (ACPI, IOMMUs, PCI), hides
//! the devices named by `pciback.hide=`, and goes idle.
#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod cpuinfo;
mod diag;
mod discover;
mod domain;
mod domains;
mod intx;
mod iommu;
mod mem;
mod passthrough;
mod virt;

use arch::exit;
use hv::cmdline::{self, Action};
use hv::multiboot;
use vmm_glue::log;

/// The Rust entry point, called by `arch::boot` on the boot stack with the
/// boot loader's magic and information pointer.
#[no_mangle]
extern "C" fn kmain(magic: u32, info: u32) -> ! {
    arch::serial::init();
    arch::cpu::mask_legacy_pic();
    diag::init_logger();
    arch::gdt::init();
    arch::idt::init();
    log::info!(
        "hv: {} {} starting",
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_VERSION")
    );

    let boot = match multiboot::parse(magic, u64::from(info), &mem::IDENTITY) {
        Ok(b) => b,
        Err(e) => {
            log::error!("hv: cannot boot: {e}");
            exit::fatal();
        }
    };
    log::info!(
        "hv: boot protocol {} (loader \"{}\")",
        boot.protocol,
        boot.loader
    );
    log::info!("hv: command line \"{}\"", boot.cmdline);
    if boot.modules_dropped > 0 {
        log::error!(
            "hv: {} boot modules beyond the first {} were ignored: the domains they describe do \
             not exist (give fewer modules)",
            boot.modules_dropped,
            multiboot::MAX_MODULES
        );
    }
    let cmd = cmdline::parse(boot.cmdline, |problem| log::warn!("{problem}"));
    if cmd.pciback_hide.dropped > 0 {
        log::warn!(
            "hv: {} pciback.hide pieces beyond the first 32 ignored; write the entries without spaces",
            cmd.pciback_hide.dropped
        );
    }
    diag::set_level(cmd.loglvl);
    exit::configure(cmd.on_idle == Action::Exit, cmd.on_fatal == Action::Exit);

    mem::init(&boot);
    cpuinfo::report();
    arch::time::init();
    #[cfg(feature = "test-hooks")]
    diag::set_stamps(cmd.debug_stamps);
    #[cfg(feature = "test-hooks")]
    if let Some(spec) = cmd.debug_acpi_xor {
        discover::acpi_xor(&boot, spec);
    }
    let acpi = discover::acpi(&boot, cmd.acpi_dump);
    let (funcs, listed) = discover::pci(&acpi, cmd.pciback_hide.parts());
    let nr_funcs = funcs.len();
    iommu::init(acpi.dmar.as_ref(), acpi.ivrs.as_ref(), &funcs);
    intx::init(acpi.madt.as_ref(), acpi.dsdt, &acpi.ssdts);
    domain::pv::fast::set_enabled(cmd.pv_fast);
    if !cmd.pv_fast {
        log::info!("pv: fast path off (pv.fast=off): PV system calls and irets exit");
    }
    let nr_hidden = passthrough::init(
        arch::phys::pci_host(acpi.mcfg.as_ref()),
        funcs,
        &listed,
        cmd.pciback_insecure,
    );

    // The test hooks exist only in the image the test scenarios boot.
    #[cfg(feature = "test-hooks")]
    {
        passthrough::keep_bus_master(cmd.debug_keep_bus_master);
        if let Some(fault) = cmd.debug_fault {
            debug_fault(fault);
        }
    }
    let hooks = cmdline::TEST_HOOKS;
    let tally = domains::run_all(
        &boot,
        hooks && cmd.debug_canary,
        hooks && cmd.debug_hpa,
        cmd.shell,
    );
    if tally != domains::Tally::default() {
        log::info!("{tally}");
    }

    let (used, free) = arch::heap::usage();
    log::info!(
        "hv: boot complete: {} PCI functions, {} hidden; heap {} KiB used, {} KiB free",
        nr_funcs,
        nr_hidden,
        used / 1024,
        free / 1024
    );
    exit::idle()
}

/// Faults on purpose (`debug.fault=`), to show the diagnostics work.
#[cfg(feature = "test-hooks")]
fn debug_fault(fault: cmdline::DebugFault) {
    log::warn!("hv: debug.fault requested ({fault:?}): faulting on purpose");
    match fault {
        cmdline::DebugFault::WriteText => mem::debug_write_text(),
        cmdline::DebugFault::ExecData => mem::debug_exec_data(),
        cmdline::DebugFault::InvalidOpcode => arch::cpu::invalid_opcode(),
        cmdline::DebugFault::Panic => panic!("debug.fault=panic requested"),
    }
}
