//! The FIFO event channel ABI, which Linux uses, switched to last
//! (`event_channel.h`; `pv-abi.md` 5.7): `EVTCHNOP_init_control` with a
//! control block in the guest's own page, then `EVTCHNOP_expand_array`
//! with the first event array page; the event callback consumes queues as
//! Linux's `evtchn_fifo_handle_events` does (`firmware::xen::fifo`).
//!
//! Then pcifront's pattern: an event is queued while the guest holds
//! events masked, the guest clears its PENDING itself, then enables events
//! and makes a hypercall whose return checks for an upcall. That upcall
//! would only unlink the event, and the hypervisor (the fast path's stub
//! or the slow path) leaves it out, doing the unlinking in the guest's
//! place. Then such left-out upcalls over and over with no exit, while a
//! 1 ms periodic timer queues `VIRQ_TIMER`, often with a host interrupt
//! that comes while the vCPU is inside the stub: each tick must reach the
//! callback, no pending event may be found unlinked outside it, and none
//! may end up LINKED where no queue reaches it (Xen's set_pending links a
//! LINKED event nowhere again, so it would be lost for good).

use core::sync::atomic::Ordering;

use firmware::pv::{mm, shared};
use firmware::xen::fifo::{LINKED, PENDING};
use firmware::xen::layout::DOMID_SELF;
use firmware::xen::{self, evtchn, vcpu};
use firmware::{hypervisor, println, report};

pub fn run() {
    let (Some(control), Some(array)) = (mm::take(), mm::take()) else {
        report::check(
            "two pool pages for the FIFO control block and event array",
            false,
        );
        return;
    };
    shared::set_upcall_mask(1);
    let link_bits = evtchn::init_control(control.mfn, 0, 0);
    report::check_eq(
        "EVTCHNOP_init_control (vCPU 0, offset 0): link_bits",
        link_bits,
        Ok(17),
    );
    report::check_eq(
        "EVTCHNOP_expand_array with the first event array page",
        evtchn::expand_array(array.mfn),
        0,
    );
    if link_bits.is_err() {
        return;
    }
    shared::use_fifo(control.va, array.va);
    let (Ok(p1), Ok(timer)) = (
        evtchn::alloc_unbound(DOMID_SELF, DOMID_SELF),
        evtchn::bind_virq(evtchn::VIRQ_TIMER, 0),
    ) else {
        report::check("FIFO: a loopback port and the timer port", false);
        return;
    };
    let p2 = evtchn::bind_interdomain(DOMID_SELF, p1).unwrap_or(0);
    let (Some(w1), Some(wt)) = (shared::fifo_word(p1), shared::fifo_word(timer)) else {
        report::check("FIFO: the ports are on the first event array page", false);
        return;
    };
    if p1 >= 64 || timer >= 64 || p2 == 0 {
        report::check(
            "FIFO: loopback bound, ports below 64 (this test's bitmap)",
            false,
        );
        return;
    }
    println!("pv_hello: FIFO loopback ports {p1} and {p2}, timer port {timer}");

    // Binding raised the new port, as Xen does (a notification the unbound
    // end may have lost): taken first.
    shared::set_upcall_mask(0);
    hypervisor::xen_version();
    shared::set_upcall_mask(1);

    // One round of pcifront's pattern, checked in full.
    let _ = shared::take_seen();
    report::check_eq("FIFO: EVTCHNOP_send on the bound port", evtchn::send(p2), 0);
    let queued = w1.load(Ordering::SeqCst);
    report::check(
        "FIFO: events masked, the sent event is queued: LINKED and PENDING, READY, upcall pending",
        queued & (LINKED | PENDING) == LINKED | PENDING
            && shared::fifo_ready().is_some_and(|r| r != 0)
            && shared::upcall_pending() == Some(1),
    );
    w1.fetch_and(!PENDING, Ordering::SeqCst);
    let upcalls = shared::upcalls();
    shared::set_upcall_mask(0);
    hypervisor::xen_version();
    shared::set_upcall_mask(1);
    report::check(
        "FIFO: PENDING cleared by the guest, events enabled: the upcall is left out, the event unlinked, READY and upcall pending cleared",
        shared::upcalls() == upcalls
            && w1.load(Ordering::SeqCst) & LINKED == 0
            && shared::fifo_ready() == Some(0)
            && shared::upcall_pending() == Some(0),
    );

    // Then, with no exit: an upcall asked for with nothing queued, left
    // out again and again (the same commit: take READY, unlink what it
    // names, clear `evtchn_upcall_pending`), while the timer ticks.
    const TICKS: u64 = 100;
    const ROUNDS: u64 = 3_000_000;
    let mut period: u64 = 1_000_000;
    report::check_eq(
        "FIFO: set_periodic_timer(1 ms)",
        xen::vcpu_op_arg(vcpu::SET_PERIODIC_TIMER, 0, &mut period),
        0,
    );
    let _ = shared::take_seen();
    let (mut ticks, mut rounds, mut unlinked) = (0, 0, 0);
    while ticks < TICKS && rounds < ROUNDS {
        shared::ask_upcall();
        shared::set_upcall_mask(0);
        hypervisor::xen_version();
        shared::set_upcall_mask(1);
        rounds += 1;
        if shared::take_seen() & (1 << timer) != 0 {
            ticks += 1;
        }
        // Out of the callback a pending event is always LINKED: Xen links
        // it with PENDING, and only the callback unlinks it.
        if wt.load(Ordering::SeqCst) & (PENDING | LINKED) == PENDING {
            unlinked += 1;
        }
    }
    let _ = xen::vcpu_op_arg(vcpu::STOP_PERIODIC_TIMER, 0, &mut period);
    // Whatever is still queued is consumed now.
    shared::set_upcall_mask(0);
    hypervisor::xen_version();
    shared::set_upcall_mask(1);
    let stranded = wt.load(Ordering::SeqCst) & LINKED != 0;
    println!(
        "pv_hello: FIFO: {ticks} timer events in {rounds} left-out upcalls, {unlinked} times pending and unlinked"
    );
    report::check(
        "FIFO: events queued while an upcall is left out: every timer tick reaches the callback",
        ticks >= TICKS,
    );
    report::check(
        "FIFO: events queued while an upcall is left out: none unlinked while pending, none LINKED where no queue reaches it",
        unlinked == 0 && !stranded,
    );
    report::check_eq(
        "FIFO: EVTCHNOP_close of the three ports",
        (evtchn::close(p2), evtchn::close(p1), evtchn::close(timer)),
        (0, 0, 0),
    );
}
