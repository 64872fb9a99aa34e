//! Event channels as Xen specifies them (`event_channel.h`, 2-level ABI):
//! shared_info over a page of this image (and the add_to_physmap
//! arguments Xen refuses), the callback-vector upcall, a loopback pair
//! (alloc_unbound + bind_interdomain to itself), masking, IPIs, VIRQ
//! binding, status, close, bind_vcpu, SCHEDOP_poll and SCHEDOP_block,
//! EVTCHNOP_reset, and the errors Xen returns for bad ports, vCPUs,
//! domains, pointers and commands.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use firmware::xen::evtchn::{self, stat, NR_VIRQS, VIRQ_TIMER};
use firmware::xen::layout::{AddToPhysmap, DOMID_SELF};
use firmware::xen::{self, errno::*, hvm, nr, shared};
use firmware::{hypervisor, println, report, Gpa, StartInfo};

firmware::guest_main!(main);

/// A domid in the valid range that no domain has in these tests.
const NO_SUCH_DOMAIN: u16 = 0x7000;
/// Interrupt windows to wait for an upcall.
const SPINS: u32 = 10_000;

fn main(start_info: Gpa) -> ! {
    println!("abi_evtchn: 2-level event channels, the upcall, poll");
    if !hypervisor::is_xen() {
        report::skip("event channels", "no Xen CPUID leaves");
        report::finish();
    }
    let me = xen::domid();
    report::check("CPUID leaf base+4 gives the domid", me.is_some());
    let me = me.unwrap_or(DOMID_SELF);
    println!("abi_evtchn: domid {me}");

    if !report::check_eq("add_to_physmap(shared_info)", shared::map(), 0) {
        report::finish();
    }
    report::check_eq("set_param(CALLBACK_IRQ, vector)", evtchn::setup_upcall(), 0);
    if let Some(peer) = peer(start_info) {
        pair::run(me, peer);
        report::finish();
    }
    features();
    params();
    loopback(me);
    ipi_and_virq();
    bad_arguments();
    poll();
    block();
    reset();
    report::finish()
}

fn params() {
    report::check_eq(
        "get_param(index HVM_NR_PARAMS) is -EINVAL",
        xen::get_param(hvm::NR_PARAMS),
        Err(-EINVAL),
    );
    report::check_eq(
        "get_param(index 0xffffffff) is -EINVAL",
        xen::get_param(u32::MAX),
        Err(-EINVAL),
    );
    report::check_eq(
        "set_param(CALLBACK_IRQ) of a missing domain is -ESRCH",
        xen::set_param_of(NO_SUCH_DOMAIN, hvm::PARAM_CALLBACK_IRQ, 0),
        -ESRCH,
    );
    physmap();
    let rc = xen::call_unmapped(nr::HVM_OP, hvm::GET_PARAM);
    report::check_eq(
        "get_param with an unmapped argument is -EFAULT",
        rc,
        -EFAULT,
    );
}

fn loopback(me: u16) {
    let Ok(a) = evtchn::alloc_unbound(DOMID_SELF, DOMID_SELF) else {
        report::check("alloc_unbound(self, self)", false);
        return;
    };
    report::check("alloc_unbound(self, self) gives a port > 0", a > 0);
    let s = evtchn::status(DOMID_SELF, a);
    report::check_eq(
        "status of the unbound port: unbound, remote = own domid",
        s.map(|s| (s.status, s.u[0] & 0xffff)),
        Ok((stat::UNBOUND, u32::from(me))),
    );
    let Ok(b) = evtchn::bind_interdomain(DOMID_SELF, a) else {
        report::check("bind_interdomain(self, a)", false);
        return;
    };
    report::check(
        "bind_interdomain(self, a) gives another port",
        b != a && b > 0,
    );
    report::check_eq(
        "status of a: interdomain to (own domid, b), vcpu 0",
        evtchn::status(DOMID_SELF, a).map(|s| (s.status, s.u[0] & 0xffff, s.u[1], s.vcpu)),
        Ok((stat::INTERDOMAIN, u32::from(me), b, 0)),
    );
    report::check_eq(
        "status of b: interdomain to (own domid, a)",
        evtchn::status(DOMID_SELF, b).map(|s| (s.status, s.u[0] & 0xffff, s.u[1])),
        Ok((stat::INTERDOMAIN, u32::from(me), a)),
    );
    report::check_eq(
        "bind_interdomain to a bound port is -EINVAL",
        evtchn::bind_interdomain(DOMID_SELF, a),
        Err(-EINVAL),
    );
    // Xen sets the new local port pending when it binds, in case the
    // remote end was notified while unbound.
    report::check(
        "bind_interdomain leaves the new local port pending",
        shared::is_pending(b),
    );
    // Port numbers may be reused from earlier tests: count from here.
    let (ea, eb) = (evtchn::events(a), evtchn::events(b));
    report::check_eq("unmask(a)", evtchn::unmask(a), 0);
    report::check_eq("unmask(b)", evtchn::unmask(b), 0);
    report::check(
        "unmask(b) delivers its pending event",
        evtchn::wait_until(SPINS, || evtchn::events(b) == eb + 1),
    );

    report::check_eq("send(b)", evtchn::send(b), 0);
    report::check(
        "send(b) raises an upcall with a pending on a",
        evtchn::wait_until(SPINS, || evtchn::events(a) == ea + 1),
    );
    report::check_eq(
        "the handler cleared a's pending bit and the upcall flag; nothing on b",
        (
            shared::is_pending(a),
            shared::upcall_pending(),
            evtchn::events(b),
        ),
        (false, 0, eb + 1),
    );
    report::check_eq("send(a)", evtchn::send(a), 0);
    report::check(
        "send(a) raises an upcall with b pending",
        evtchn::wait_until(SPINS, || evtchn::events(b) == eb + 2),
    );

    // Three sends with interrupts off: one pending bit, one event.
    for _ in 0..3 {
        evtchn::send(b);
    }
    report::check(
        "sends with interrupts off leave a pending and upcall_pending set",
        shared::is_pending(a) && shared::upcall_pending() != 0,
    );
    evtchn::wait_until(100, || false);
    report::check_eq(
        "three sends coalesce into one event",
        evtchn::events(a),
        ea + 2,
    );

    // Masked: the bit goes pending but no upcall; unmask delivers it.
    shared::mask(a);
    let upcalls = evtchn::upcalls();
    evtchn::send(b);
    evtchn::wait_until(100, || false);
    report::check_eq(
        "a masked port goes pending without an event",
        (shared::is_pending(a), evtchn::events(a)),
        (true, ea + 2),
    );
    println!(
        "abi_evtchn: upcalls while masked: {}",
        evtchn::upcalls() - upcalls
    );
    report::check_eq("unmask(a) with a pending", evtchn::unmask(a), 0);
    report::check(
        "unmask of a pending port raises the upcall",
        evtchn::wait_until(SPINS, || evtchn::events(a) == ea + 3),
    );

    // An event raised while interrupts are off waits for them and is taken
    // at the next `sti` (under SVM the hypervisor posts the upcall as the
    // vCPU's virtual interrupt, which the CPU delivers without an exit).
    let before = evtchn::events(a);
    evtchn::send(b);
    report::check_eq(
        "an event sent with interrupts off waits for them",
        evtchn::events(a),
        before,
    );
    evtchn::interrupt_window();
    report::check_eq(
        "it is taken in the first interrupt window (one sti)",
        evtchn::events(a),
        before + 1,
    );

    report::check_eq("bind_vcpu(a, 0)", evtchn::bind_vcpu(a, 0), 0);
    report::check_eq(
        "bind_vcpu(a, vcpu 1) of a 1-vCPU domain is -ENOENT",
        evtchn::bind_vcpu(a, 1),
        -ENOENT,
    );

    // Closing one end leaves the other unbound, waiting for us again.
    report::check_eq("close(b)", evtchn::close(b), 0);
    report::check_eq(
        "after close(b), a is unbound with remote = own domid",
        evtchn::status(DOMID_SELF, a).map(|s| (s.status, s.u[0] & 0xffff)),
        Ok((stat::UNBOUND, u32::from(me))),
    );
    report::check_eq(
        "status of the closed port is closed",
        evtchn::status(DOMID_SELF, b).map(|s| s.status),
        Ok(stat::CLOSED),
    );
    report::check_eq(
        "close of a closed port is -EINVAL",
        evtchn::close(b),
        -EINVAL,
    );
    report::check_eq("send on a closed port is -EINVAL", evtchn::send(b), -EINVAL);
    let events = evtchn::events(a);
    report::check_eq("send on an unbound port is dropped (0)", evtchn::send(a), 0);
    evtchn::wait_until(100, || false);
    report::check_eq(
        "no event for a send on an unbound port",
        evtchn::events(a),
        events,
    );
    report::check_eq("close(a)", evtchn::close(a), 0);
}

fn ipi_and_virq() {
    match evtchn::bind_ipi(0) {
        Ok(i) => {
            report::check_eq("unmask(ipi)", evtchn::unmask(i), 0);
            report::check_eq(
                "status of the IPI port: ipi, vcpu 0",
                evtchn::status(DOMID_SELF, i).map(|s| (s.status, s.vcpu)),
                Ok((stat::IPI, 0)),
            );
            let before = evtchn::events(i);
            report::check_eq("send(ipi)", evtchn::send(i), 0);
            report::check(
                "send on an IPI port raises an event on itself",
                evtchn::wait_until(SPINS, || evtchn::events(i) == before + 1),
            );
            report::check_eq(
                "bind_interdomain to an IPI port is -EINVAL",
                evtchn::bind_interdomain(DOMID_SELF, i),
                Err(-EINVAL),
            );
            evtchn::close(i);
        }
        Err(e) => {
            report::check_eq("bind_ipi(vcpu 0)", e, 0);
        }
    }
    report::check_eq(
        "bind_ipi(vcpu 1) is -ENOENT",
        evtchn::bind_ipi(1),
        Err(-ENOENT),
    );

    match evtchn::bind_virq(VIRQ_TIMER, 0) {
        Ok(t) => {
            report::check_eq(
                "status of the VIRQ_TIMER port: virq 0, vcpu 0",
                evtchn::status(DOMID_SELF, t).map(|s| (s.status, s.vcpu, s.u[0])),
                Ok((stat::VIRQ, 0, VIRQ_TIMER)),
            );
            report::check_eq(
                "binding VIRQ_TIMER twice is -EEXIST",
                evtchn::bind_virq(VIRQ_TIMER, 0),
                Err(-EEXIST),
            );
            report::check_eq("close(virq port)", evtchn::close(t), 0);
            let again = evtchn::bind_virq(VIRQ_TIMER, 0);
            report::check("VIRQ_TIMER binds again after close", again.is_ok());
            if let Ok(t) = again {
                evtchn::close(t);
            }
        }
        Err(e) => {
            report::check_eq("bind_virq(VIRQ_TIMER, vcpu 0)", e, 0);
        }
    }
    report::check_eq(
        "bind_virq(NR_VIRQS) is -EINVAL",
        evtchn::bind_virq(NR_VIRQS, 0),
        Err(-EINVAL),
    );
    report::check_eq(
        "bind_virq(VIRQ_TIMER, vcpu 1) is -ENOENT",
        evtchn::bind_virq(VIRQ_TIMER, 1),
        Err(-ENOENT),
    );
}

fn bad_arguments() {
    for port in [4096, 0x10_0000, u32::MAX] {
        println!("abi_evtchn: port {port:#x}");
        report::check_eq("send(bad port) is -EINVAL", evtchn::send(port), -EINVAL);
        report::check_eq("close(bad port) is -EINVAL", evtchn::close(port), -EINVAL);
        report::check_eq("unmask(bad port) is -EINVAL", evtchn::unmask(port), -EINVAL);
        report::check_eq(
            "bind_vcpu(bad port) is -EINVAL",
            evtchn::bind_vcpu(port, 0),
            -EINVAL,
        );
        report::check_eq(
            "status(bad port) is -EINVAL",
            evtchn::status(DOMID_SELF, port).map(|s| s.status),
            Err(-EINVAL),
        );
        report::check_eq(
            "bind_interdomain(self, bad port) is -EINVAL",
            evtchn::bind_interdomain(DOMID_SELF, port),
            Err(-EINVAL),
        );
    }
    report::check_eq("close(port 0) is -EINVAL", evtchn::close(0), -EINVAL);
    report::check_eq(
        "alloc_unbound in a missing domain is -ESRCH",
        evtchn::alloc_unbound(NO_SUCH_DOMAIN, DOMID_SELF),
        Err(-ESRCH),
    );
    report::check_eq(
        "bind_interdomain to a missing domain is -ESRCH",
        evtchn::bind_interdomain(NO_SUCH_DOMAIN, 1),
        Err(-ESRCH),
    );
    report::check_eq(
        "status of a port of a missing domain is -ESRCH",
        evtchn::status(NO_SUCH_DOMAIN, 1).map(|s| s.status),
        Err(-ESRCH),
    );
    report::check_eq(
        "alloc_unbound in domain 0 (foreign) is -EPERM",
        evtchn::alloc_unbound(0, DOMID_SELF),
        Err(-EPERM),
    );
    for (name, cmd) in [
        (
            "alloc_unbound with an unmapped argument is -EFAULT",
            evtchn::cmd::ALLOC_UNBOUND,
        ),
        (
            "send with an unmapped argument is -EFAULT",
            evtchn::cmd::SEND,
        ),
        (
            "status with an unmapped argument is -EFAULT",
            evtchn::cmd::STATUS,
        ),
    ] {
        report::check_eq(name, xen::call_unmapped(nr::EVENT_CHANNEL_OP, cmd), -EFAULT);
    }
    report::check_eq(
        "unknown EVTCHNOP (99) is -ENOSYS",
        xen::call_unmapped(nr::EVENT_CHANNEL_OP, 99),
        -ENOSYS,
    );
    // FIFO setup with a control block that crosses its page: Xen says
    // -EINVAL; a hypervisor without the FIFO ABI may say -ENOSYS. Either
    // way the guest stays on the 2-level ABI.
    let rc = evtchn::init_control(shared::buffer().gfn(), 4095, 0).map_or_else(|e| e, |_| 0);
    println!("abi_evtchn: init_control(offset 4095) = {rc}");
    report::check(
        "init_control with a bad offset fails (-EINVAL or -ENOSYS)",
        rc == -EINVAL || rc == -ENOSYS,
    );
}

fn poll() {
    let Ok(a) = evtchn::alloc_unbound(DOMID_SELF, DOMID_SELF) else {
        report::check("alloc_unbound for poll", false);
        return;
    };
    let Ok(b) = evtchn::bind_interdomain(DOMID_SELF, a) else {
        report::check("bind_interdomain for poll", false);
        return;
    };
    // Both masked (the port numbers may have been unmasked before), b's
    // bind-time pending bit cleared: nothing pending, no upcall.
    shared::mask(a);
    shared::mask(b);
    shared::clear_pending(b);
    evtchn::wait_until(100, || false);
    // Masked and pending, interrupts off: poll returns at once.
    evtchn::send(b);
    report::check_eq(
        "poll on a pending (masked) port returns 0",
        evtchn::poll(&[b, a], 0),
        0,
    );
    shared::clear_pending(a);
    report::check_eq(
        "poll on a bad port is -EINVAL",
        evtchn::poll(&[5000], 0),
        -EINVAL,
    );
    let many = [a; 129];
    report::check_eq(
        "poll on 129 ports is -EINVAL",
        evtchn::poll(&many, 0),
        -EINVAL,
    );
    let rc = xen::poll_unmapped(1);
    report::check_eq("poll with unmapped ports is -EFAULT", rc, -EFAULT);
    let waited = poll_for(a, 2_000_000);
    report::check("poll on an idle port waits until its timeout", waited);
    // An upcall pending for another port does not end a poll while
    // interrupts are off: Xen only counts events it could deliver
    // (local_events_need_delivery), and the polled port is not pending.
    report::check_eq("unmask(b)", evtchn::unmask(b), 0);
    evtchn::send(a);
    report::check(
        "setup: b pending and unmasked sets upcall_pending",
        shared::upcall_pending() != 0,
    );
    let waited = poll_for(a, 2_000_000);
    report::check(
        "with interrupts off, an upcall for another port does not end the poll",
        waited,
    );
    evtchn::wait_until(100, || false);
    evtchn::close(b);
    evtchn::close(a);
}

/// Polls `port` (not pending) with a timeout `ns` from now; returns
/// whether it returned 0 no earlier than the timeout.
fn poll_for(port: u32, ns: u64) -> bool {
    let Some(t0) = shared::now() else {
        report::check("vcpu_time_info readable for the poll timeout", false);
        return false;
    };
    let rc = evtchn::poll(&[port], t0 + ns);
    let t1 = shared::now().unwrap_or(0);
    println!(
        "abi_evtchn: poll with a {} us timeout returned {rc} after {} us",
        ns / 1000,
        t1.saturating_sub(t0) / 1000
    );
    rc == 0 && t1 >= t0 + ns
}

/// `sti; SCHEDOP_block` with an event already pending returns, and the
/// event is delivered. A VIRQ_TIMER 50 ms away is armed first as a safety
/// net: Xen evaluates the pending upcall inside the STI shadow, where it
/// cannot be delivered, so there the block may last until that timer.
fn block() {
    let (Ok(a), Ok(t)) = (
        evtchn::alloc_unbound(DOMID_SELF, DOMID_SELF),
        evtchn::bind_virq(VIRQ_TIMER, 0),
    ) else {
        report::check("ports for the block test", false);
        return;
    };
    let Ok(b) = evtchn::bind_interdomain(DOMID_SELF, a) else {
        report::check("bind_interdomain for the block test", false);
        return;
    };
    for p in [a, b, t] {
        evtchn::unmask(p);
    }
    evtchn::wait_until(100, || false);
    let (ea, t0) = (evtchn::events(a), shared::now().unwrap_or(0));
    evtchn::set_timer_op(t0 + 50_000_000);
    evtchn::send(b);
    let rc = evtchn::sti_block();
    let t1 = shared::now().unwrap_or(0);
    println!(
        "abi_evtchn: block with an event pending returned {rc} after {} us",
        t1.saturating_sub(t0) / 1000
    );
    report::check_eq("sti; SCHEDOP_block with an event pending returns 0", rc, 0);
    report::check(
        "the pending event is delivered after the block",
        evtchn::wait_until(SPINS, || evtchn::events(a) == ea + 1),
    );
    evtchn::set_timer_op(0);
    for p in [b, a, t] {
        evtchn::close(p);
    }
}

/// `XENMEM_add_to_physmap` arguments Xen refuses (aimed at the page that
/// already is shared_info, so nothing else could be replaced).
fn physmap() {
    let gpfn = shared::buffer().gfn();
    let bad = |domid: u16, space: u32, idx: u64| {
        let mut a = AddToPhysmap {
            domid,
            size: 0,
            space,
            idx,
            gpfn,
        };
        xen::op(nr::MEMORY_OP, xen::mem::ADD_TO_PHYSMAP, &mut a)
    };
    report::check_eq(
        "add_to_physmap(shared_info, idx 1) is -EINVAL",
        bad(DOMID_SELF, xen::mem::SPACE_SHARED_INFO, 1),
        -EINVAL,
    );
    report::check_eq(
        "add_to_physmap of an unknown space (99) is -EINVAL",
        bad(DOMID_SELF, 99, 0),
        -EINVAL,
    );
    report::check_eq(
        "add_to_physmap for a missing domain is -ESRCH",
        bad(NO_SUCH_DOMAIN, xen::mem::SPACE_SHARED_INFO, 0),
        -ESRCH,
    );
    report::check_eq(
        "add_to_physmap for domain 0 (foreign) is -EPERM",
        bad(0, xen::mem::SPACE_SHARED_INFO, 0),
        -EPERM,
    );
    report::check_eq(
        "memory_op(add_to_physmap) with an unmapped argument is -EFAULT",
        xen::call_unmapped(nr::MEMORY_OP, xen::mem::ADD_TO_PHYSMAP),
        -EFAULT,
    );
    report::check_eq(
        "unknown memory_op (63) is -ENOSYS",
        xen::call_unmapped(nr::MEMORY_OP, 63),
        -ENOSYS,
    );
}

/// `EVTCHNOP_reset(DOMID_SELF)` closes every port; the next allocation
/// starts again at port 1 (port 0 stays reserved).
fn reset() {
    let ports = [
        evtchn::alloc_unbound(DOMID_SELF, DOMID_SELF),
        evtchn::bind_ipi(0),
    ];
    let mut dom = DOMID_SELF;
    report::check_eq(
        "EVTCHNOP_reset(self)",
        xen::op(nr::EVENT_CHANNEL_OP, evtchn::cmd::RESET, &mut dom),
        0,
    );
    for p in ports.into_iter().flatten() {
        report::check_eq(
            "after reset every port is closed",
            evtchn::status(DOMID_SELF, p).map(|s| s.status),
            Ok(stat::CLOSED),
        );
    }
    let again = evtchn::alloc_unbound(DOMID_SELF, DOMID_SELF);
    report::check_eq("after reset the next port is 1", again, Ok(1));
    let mut dom = NO_SUCH_DOMAIN;
    report::check_eq(
        "EVTCHNOP_reset of a missing domain is -ESRCH",
        xen::op(nr::EVENT_CHANNEL_OP, evtchn::cmd::RESET, &mut dom),
        -ESRCH,
    );
    let mut dom = 0u16;
    report::check_eq(
        "EVTCHNOP_reset of domain 0 (foreign) is -EPERM",
        xen::op(nr::EVENT_CHANNEL_OP, evtchn::cmd::RESET, &mut dom),
        -EPERM,
    );
}

/// `peer=N` on the command line: only the two-domain test, with domain N.
fn peer(start_info: Gpa) -> Option<u16> {
    let info = StartInfo::read(start_info).ok()?;
    let line = info.cmdline()?;
    let peer = xen::cmdline_value(line.as_str()?, "peer")?.parse().ok();
    peer
}

/// The two-domain test (`peer=` on the command line).
#[path = "abi_evtchn/pair.rs"]
mod pair;

/// `XENVER_get_features` submap 0 for an HVM/PVH guest: what this guest
/// relies on (auto-translated physmap, the callback vector, a pvclock
/// safe to read) is offered, `XENFEAT_dom0` is not; other submaps are
/// -EINVAL.
fn features() {
    /// `XENVER_get_features`.
    const GET_FEATURES: u64 = 6;
    let get = |idx: u32| {
        // `struct xen_feature_info { unsigned int submap_idx; uint32_t submap; }`
        let mut fi = [idx, 0u32];
        let rc = xen::op(xen::nr::XEN_VERSION, GET_FEATURES, &mut fi);
        (rc, fi[1])
    };
    let (rc, submap) = get(0);
    println!("abi_time: XENVER_get_features(0): rc {rc}, submap {submap:#x}");
    report::check_eq("XENVER_get_features(0)", rc, 0);
    let want = (1 << 2) | (1 << 8) | (1 << 9);
    report::check_eq(
        "features: auto_translated_physmap, hvm_callback_vector, hvm_safe_pvclock",
        submap & want,
        want,
    );
    report::check_eq("features: not XENFEAT_dom0", submap & (1 << 11), 0);
    report::check_eq("XENVER_get_features(1) is -EINVAL", get(1).0, -EINVAL);
    report::check_eq(
        "XENVER_get_features with an unmapped argument is -EFAULT",
        xen::call_unmapped(xen::nr::XEN_VERSION, GET_FEATURES),
        -EFAULT,
    );
}
