//! From the boot code to the guest's `main`.

use vmm_glue::Gpa;

use crate::hypervisor::{self, Setup};
use crate::{idt, println};

/// Sets up the IDT and the hypercall page, says how the guest talks to the
/// outside world, then runs `main` with the start info address from EBX.
/// [`crate::guest_main!`] calls this.
pub fn start(name: &str, start_info: u64, main: fn(Gpa) -> !) -> ! {
    idt::init();
    match hypervisor::init() {
        Setup::Bare => println!(
            "firmware: {name}: no Xen CPUID leaves; console on port {:#x}, exit through isa-debug-exit at port {:#x}",
            crate::console::DEBUGCON_PORT,
            crate::power::DEBUG_EXIT_PORT
        ),
        Setup::Page(xen) => {
            let (major, minor) = xen.version();
            println!(
                "firmware: {name}: Xen {major}.{minor} at CPUID {:#x}; hypercall page at {} (MSR {:#x}, {})",
                xen.base,
                hypervisor::hypercall_page(),
                xen.hypercall_msr,
                hypervisor::instruction()
            );
        }
        Setup::Direct(xen) => {
            let (major, minor) = xen.version();
            println!(
                "firmware: {name}: Xen {major}.{minor} at CPUID {:#x}; writing MSR {:#x} did not fill the hypercall page, using {} directly",
                xen.base,
                xen.hypercall_msr,
                hypervisor::instruction()
            );
        }
    }
    main(Gpa(start_info))
}

/// Defines the `guest_main` the boot code calls, running `$main` (a
/// `fn(vmm_glue::Gpa) -> !` that gets the start info's address) once the
/// runtime is set up.
#[macro_export]
macro_rules! guest_main {
    ($main:path) => {
        /// Called by the runtime's boot code in long mode.
        #[no_mangle]
        pub extern "C" fn guest_main(start_info: u64) -> ! {
            $crate::rt::start(::core::env!("CARGO_BIN_NAME"), start_info, $main)
        }
    };
}
