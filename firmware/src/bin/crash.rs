//! A guest that triple faults on purpose: it loads an empty IDT and
//! executes `int3`. The hypervisor should see the shutdown and end the
//! domain as crashed; plain QEMU with `-no-reboot` exits.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use firmware::{idt, println, shutdown, Gpa, ShutdownReason};

firmware::guest_main!(main);

fn main(_start_info: Gpa) -> ! {
    println!("crash: loading an empty IDT and executing int3; expect a triple fault");
    idt::triple_fault();
    // Powering off cleanly makes the survival visible to whoever expects a
    // crash.
    println!("crash: still running after the triple fault");
    shutdown(ShutdownReason::Poweroff)
}
