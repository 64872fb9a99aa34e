//! Ending a run: on an emulator, with an exit status; on hardware, halting.

use super::cpu::{halt_forever, outb, outl};
use core::sync::atomic::{AtomicBool, Ordering};

static EXIT_ON_IDLE: AtomicBool = AtomicBool::new(false);
static EXIT_ON_FATAL: AtomicBool = AtomicBool::new(false);

/// What to do when the hypervisor has nothing left to run, and after a fatal
/// error: leave the emulator (`exit`) or halt the CPU with the console
/// readable (`halt`, the default on hardware).
pub fn configure(exit_on_idle: bool, exit_on_fatal: bool) {
    EXIT_ON_IDLE.store(exit_on_idle, Ordering::Relaxed);
    EXIT_ON_FATAL.store(exit_on_fatal, Ordering::Relaxed);
}

/// Leaves an emulator: QEMU's `isa-debug-exit` at port 0xF4 (exit status
/// `(value << 1) | 1`: 1 for success, 3 for failure) and Bochs' shutdown
/// port 0x8900. Neither exists on a PC, where this falls through to a halt.
fn emulator_exit(success: bool) -> ! {
    super::serial::flush();
    outl(0xf4, if success { 0 } else { 1 });
    for b in b"Shutdown" {
        outb(0x8900, *b);
    }
    halt_forever()
}

/// Nothing is left to run.
pub fn idle() -> ! {
    // Printed whatever `loglvl=` says: this is how a run ends.
    if EXIT_ON_IDLE.load(Ordering::Relaxed) {
        crate::arch::serial::write_str("hv: exiting: success\n");
        emulator_exit(true)
    }
    crate::arch::serial::write_str(
        "hv: nothing to run; halting (boot with on_idle=exit to leave an emulator instead)\n",
    );
    halt_forever()
}

/// A fatal error has been reported.
pub fn fatal() -> ! {
    if EXIT_ON_FATAL.load(Ordering::Relaxed) {
        crate::arch::serial::write_str("hv: exiting: failure\n");
        emulator_exit(false)
    }
    crate::arch::serial::write_str("hv: halted after a fatal error\n");
    halt_forever()
}
