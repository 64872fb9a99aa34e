//! Ending the guest: `SCHEDOP_shutdown` under Xen, QEMU's isa-debug-exit
//! (port 0xF4) without it.

use crate::abi::sched;
use crate::{cpu, hypervisor, println};

/// QEMU's isa-debug-exit port (`-device isa-debug-exit,iobase=0xf4,iosize=0x04`).
pub const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Why the guest ends (`SHUTDOWN_*` in Xen's `sched.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ShutdownReason {
    /// Exited normally.
    Poweroff = sched::SHUTDOWN_POWEROFF,
    /// Asks to be restarted.
    Reboot = sched::SHUTDOWN_REBOOT,
    /// Asks to be suspended.
    Suspend = sched::SHUTDOWN_SUSPEND,
    /// Crashed.
    Crash = sched::SHUTDOWN_CRASH,
}

/// Ends the guest. Under Xen this is `SCHEDOP_shutdown` with `reason`;
/// without Xen, isa-debug-exit gets 0 for poweroff and 1 for anything else
/// (QEMU exits with status 1 or 3). If neither ends the guest, the vCPU
/// halts for good.
pub fn shutdown(reason: ShutdownReason) -> ! {
    if hypervisor::is_xen() {
        let rc = hypervisor::sched_shutdown(reason as u32);
        println!("firmware: SCHEDOP_shutdown({reason:?}) returned {rc}; halting");
        if hypervisor::is_pv() {
            // HLT is privileged in ring 3: block in the hypervisor instead
            // (events stay masked, so nothing wakes the vCPU for long).
            loop {
                hypervisor::sched_block();
            }
        }
    } else {
        let code = u32::from(reason != ShutdownReason::Poweroff);
        // SAFETY: isa-debug-exit ends the emulator; on a machine without
        // it nothing is at this port.
        unsafe { cpu::outl(DEBUG_EXIT_PORT, code) };
    }
    cpu::halt_forever()
}
