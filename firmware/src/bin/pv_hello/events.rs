//! An event channel loopback delivered through the event callback
//! (`pv-abi.md` 5.2 and 5.7; Xen's `entry.S test_guest_events`,
//! `event_channel.c evtchn_bind_interdomain`).
//!
//! While `evtchn_upcall_mask` is 1 a sent event only raises
//! `evtchn_upcall_pending`; once the guest clears the mask, the next
//! return from the hypervisor (here a hypercall, as Linux's
//! `xen_force_evtchn_callback` does) bounces to the event callback with
//! events masked and the old mask (0) saved in the frame; the callback
//! clears the pending bits and returns with `iret`, whose RFLAGS.IF
//! enables events again.

use firmware::pv::abi::{rflags, sel};
use firmware::pv::shared;
use firmware::pv::traps::{self, Kind};
use firmware::xen::evtchn;
use firmware::xen::layout::DOMID_SELF;
use firmware::xen::{self, vcpu};
use firmware::{hypervisor, println, report};

pub fn run() {
    let p1 = evtchn::alloc_unbound(DOMID_SELF, DOMID_SELF);
    report::check("EVTCHNOP_alloc_unbound to itself", p1.is_ok());
    let Ok(p1) = p1 else { return };
    let p2 = evtchn::bind_interdomain(DOMID_SELF, p1);
    report::check("EVTCHNOP_bind_interdomain to that port", p2.is_ok());
    let Ok(p2) = p2 else { return };
    println!("pv_hello: loopback ports {p1} and {p2}");
    if p1 >= 64 || p2 >= 64 {
        report::check(
            "the loopback ports are below 64 (this test's bitmap)",
            false,
        );
        return;
    }
    report::check_eq(
        "EVTCHNOP_unmask of both",
        (evtchn::unmask(p1), evtchn::unmask(p2)),
        (0, 0),
    );
    let upcalls = shared::upcalls();
    let _ = shared::take_seen();
    report::check_eq("EVTCHNOP_send on the bound port", evtchn::send(p2), 0);
    report::check(
        "events masked: the send leaves evtchn_upcall_pending set and no upcall",
        shared::upcall_pending() == Some(1)
            && shared::upcalls() == upcalls
            && shared::is_pending(p1),
    );

    traps::set_iret_via_syscall(true);
    let before = traps::count();
    shared::set_upcall_mask(0);
    let version = hypervisor::xen_version();
    let mask_after = shared::upcall_mask();
    shared::set_upcall_mask(1);
    let seen = shared::take_seen();
    let event = traps::since(before).find(|r| r.kind == Kind::Event);
    println!(
        "pv_hello: {} upcall(s), ports seen {seen:#x}, mask afterwards {mask_after:?}",
        shared::upcalls() - upcalls
    );
    report::check(
        "mask cleared, a hypercall: the event callback runs",
        event.is_some() && version > 0,
    );
    report::check(
        "event callback: the sent port's event was taken",
        seen & (1 << p1) != 0 && !shared::is_pending(p1),
    );
    if let Some(r) = event {
        report::check_eq(
            "event callback: events masked on entry",
            r.mask_on_entry,
            Some(1),
        );
        report::check_eq(
            "event callback: the frame saves mask 0 in the CS slot (bits 32-39), kernel CS",
            (r.saved_mask(), r.selector()),
            (0, sel::KERNEL_CS_IN_FRAME),
        );
        report::check(
            "event callback: the frame's RFLAGS has IF set (events were enabled)",
            r.rflags & rflags::IF != 0,
        );
        report::check_eq(
            "event callback: the frame's SS",
            r.ss,
            u64::from(sel::FLAT_SS),
        );
    }
    report::check_eq(
        "event callback: iret (IF set) leaves events enabled",
        mask_after,
        Some(0),
    );
    report::check_eq(
        "EVTCHNOP_close of both ports",
        (evtchn::close(p2), evtchn::close(p1)),
        (0, 0),
    );
}

/// Timer events raised while the hypervisor decides about an upcall.
///
/// With events enabled, the guest asks again and again for an upcall that
/// would find nothing (its selector names an empty word) and makes a
/// hypercall that returns through the event check: the fast path's stub
/// (or the slow path) leaves the upcall out, clearing the selector and
/// `evtchn_upcall_pending` as the guest's handler would. Meanwhile a 1 ms
/// periodic timer raises `VIRQ_TIMER`, often with a host interrupt that
/// comes while the vCPU is inside the stub. An event raised after the
/// stub looked and before it cleared would be lost: its port pending with
/// neither selector bit nor upcall, and no timer event after it. Every
/// tick must reach the callback, and at the end the port may not be
/// pending without the selector bit and upcall that announce it.
pub fn raised_while_deciding() {
    const TICKS: u64 = 100;
    const CALLS: u64 = 3_000_000;
    let port = evtchn::bind_virq(evtchn::VIRQ_TIMER, 0);
    report::check("EVTCHNOP_bind_virq(VIRQ_TIMER)", port.is_ok());
    let Ok(port) = port else { return };
    if port >= 64 {
        report::check("the timer port is below 64 (this test's bitmap)", false);
        return;
    }
    let mut period: u64 = 1_000_000;
    report::check_eq(
        "EVTCHNOP_unmask of the timer port, set_periodic_timer(1 ms)",
        (
            evtchn::unmask(port),
            xen::vcpu_op_arg(vcpu::SET_PERIODIC_TIMER, 0, &mut period),
        ),
        (0, 0),
    );
    let _ = shared::take_seen();
    let (mut ticks, mut calls) = (0, 0);
    shared::set_upcall_mask(0);
    while ticks < TICKS && calls < CALLS {
        shared::ask_empty_upcall(1);
        hypervisor::xen_version();
        calls += 1;
        if shared::take_seen() & (1 << port) != 0 {
            ticks += 1;
        }
    }
    shared::set_upcall_mask(1);
    let _ = xen::vcpu_op_arg(vcpu::STOP_PERIODIC_TIMER, 0, &mut period);
    let announced =
        shared::pending_sel().is_some_and(|s| s & 1 != 0) && shared::upcall_pending() == Some(1);
    let stranded = shared::is_pending(port) && !announced;
    println!("pv_hello: {ticks} timer events in {calls} hypercalls that left out an upcall");
    report::check(
        "events raised while an upcall is left out: every timer tick reaches the callback",
        ticks >= TICKS,
    );
    report::check(
        "events raised while an upcall is left out: no port pending without selector and upcall",
        !stranded,
    );
    // The last tick, pending or not, goes with the port; an upcall it
    // left asked for is taken now.
    report::check_eq("EVTCHNOP_close of the timer port", evtchn::close(port), 0);
    shared::set_upcall_mask(0);
    hypervisor::xen_version();
    shared::set_upcall_mask(1);
    let _ = shared::take_seen();
}
