//! The hypervisor's logic that does not need the hardware, kept in a library
//! so it runs under `cargo test` on the host. The bare-metal binary
//! (`main.rs`) wires it to the machine.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod assign;
pub mod calibrate;
pub mod cmdline;
pub mod console;
pub mod domcfg;
pub mod evtchn;
#[cfg(any(test, fuzzing))]
pub mod fuzz;
pub mod gpt;
pub mod grant;
pub mod guestview;
pub mod hub;
pub mod hvm;
pub mod insn;
pub mod ipi;
pub mod irqroute;
pub mod le;
pub mod memmap;
pub mod multiboot;
pub mod pv;
pub mod pvclock;
pub mod pvconsole;
pub mod pvh;
pub mod ratelimit;
pub mod regbits;
pub mod rtc;
pub mod shell;
pub mod vlapic;
pub mod vpit;
pub mod xenabi;
pub mod xenstore;
