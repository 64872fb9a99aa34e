//! Our own 64-bit PV test guest: Xen's PV ABI from the guest side, each
//! part a named check with the outcome Xen gives (`pv-abi.md` has the
//! facts, Xen's source the details; comments name the function that
//! decides an error).
//!
//! In order: the start info and entry state ([`start`]); the hypercall
//! page and `xen_version` through it and by `syscall` ([`calls`]); the
//! trap table, the callbacks, `mov %cr3` emulation, the shared info page
//! and the bounce frames of #UD, #BP, #GP and #PF ([`traps`]); an event
//! channel loopback delivered through the event callback, and timer
//! events raised while an empty upcall is left out ([`events`]); a
//! new L1 table, pinned, hooked in with `mmu_update`, changed through the
//! writable page-table assist and unpinned ([`paging`]); a round trip
//! through guest user mode ([`user`]); `multicall` ([`calls`]); a GDT of
//! its own, `update_descriptor` and the FS base ([`segments`]); and the
//! errors Xen gives for bad arguments ([`errors`]); last the FIFO event
//! channel ABI, with pcifront's pattern and timer events queued while its
//! empty upcall is left out ([`fifo`]). Then the summary and
//! `SCHEDOP_shutdown` (poweroff if everything passed, crash otherwise).
//! With `crash=kernel-stack` on its command line it stops after the page
//! tables and makes a system call from user mode with no kernel stack to
//! bounce to, which ends the domain ([`user::crash_without_kernel_stack`]).
//! With `attack=hypercall` it is the PV attacker of the attack suite: after
//! the trap table it throws hostile arguments at the PV hypercalls
//! ([`attack`]) and ends with their table.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

// Its hypercalls take raw addresses the hypervisor must refuse.
#[allow(unsafe_code)]
#[path = "pv_hello/attack.rs"]
mod attack;
#[path = "pv_hello/calls.rs"]
mod calls;
#[path = "pv_hello/errors.rs"]
mod errors;
#[path = "pv_hello/events.rs"]
mod events;
#[path = "pv_hello/fifo.rs"]
mod fifo;
#[path = "pv_hello/paging.rs"]
mod paging;
#[path = "pv_hello/privileged.rs"]
mod privileged;
#[path = "pv_hello/segments.rs"]
mod segments;
#[path = "pv_hello/start.rs"]
mod start;
#[path = "pv_hello/traps.rs"]
mod traps;
#[path = "pv_hello/user.rs"]
mod user;

use firmware::pv::StartInfo;
use firmware::{println, report};

firmware::pv_guest_main!(main, "hv-pv-hello");

fn main(si: &StartInfo, si_va: u64) -> ! {
    println!("pv_hello: hello from a 64-bit PV guest");
    start::run(si, si_va);
    calls::version();
    let attack = start::has_word(si, "attack=hypercall");
    if !traps::run(si) {
        println!("pv_hello: without the trap table and shared info the rest cannot run");
        report::finish();
    }
    if attack {
        attack::run(si);
        report::finish();
    }
    events::run();
    events::raised_while_deciding();
    paging::run();
    if start::has_word(si, "crash=kernel-stack") {
        user::crash_without_kernel_stack();
        report::finish();
    }
    user::run();
    calls::multicall();
    segments::run();
    errors::run();
    privileged::run();
    fifo::run();
    report::finish()
}
