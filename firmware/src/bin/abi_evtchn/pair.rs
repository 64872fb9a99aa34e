//! Two domains running this guest with `peer=` each other's domid: an
//! interdomain channel between them. The lower domid resets its ports (so
//! the next one is port 1, as Xen allocates the lowest free port) and
//! offers port 1 to the peer; the higher one binds to (peer, 1), takes the
//! bind-time event, sends; the lower one answers; the higher one closes,
//! which leaves the lower one's port unbound for the peer again.

use super::*;

/// Yields to wait for the other domain.
const YIELDS: u32 = 200_000;

fn reset_self() -> i64 {
    let mut dom = DOMID_SELF;
    xen::op(nr::EVENT_CHANNEL_OP, evtchn::cmd::RESET, &mut dom)
}

/// Yields (with interrupt windows) until `done()`, at most `YIELDS`.
fn wait(done: impl Fn() -> bool) -> bool {
    for _ in 0..YIELDS {
        if done() {
            return true;
        }
        evtchn::interrupt_window();
        hypervisor::sched_yield();
    }
    done()
}

pub fn run(me: u16, peer: u16) {
    println!("abi_evtchn: interdomain channel with domain {peer}");
    report::check_eq("EVTCHNOP_reset(self) before the pair test", reset_self(), 0);
    if me < peer {
        offer(peer);
    } else {
        bind(peer);
    }
}

fn offer(peer: u16) {
    let a = evtchn::alloc_unbound(DOMID_SELF, peer);
    report::check_eq("alloc_unbound(self, peer) after reset is port 1", a, Ok(1));
    let Ok(a) = a else { return };
    report::check_eq("unmask(1)", evtchn::unmask(a), 0);
    report::check(
        "the peer binds and sends: an event on port 1",
        wait(|| evtchn::events(a) >= 1),
    );
    let s = evtchn::status(DOMID_SELF, a);
    println!("abi_evtchn: port 1 after the peer bound: {s:?}");
    report::check(
        "status of port 1: interdomain to the peer",
        matches!(s, Ok(s) if s.status == stat::INTERDOMAIN && s.u[0] & 0xffff == u32::from(peer)),
    );
    report::check_eq("send(1) to the peer", evtchn::send(a), 0);
    report::check(
        "after the peer closes, port 1 is unbound for the peer again",
        wait(|| {
            matches!(evtchn::status(DOMID_SELF, a),
                Ok(s) if s.status == stat::UNBOUND && s.u[0] & 0xffff == u32::from(peer))
        }),
    );
    report::check_eq("close(1)", evtchn::close(a), 0);
}

fn bind(peer: u16) {
    let mut bound = Err(0);
    for _ in 0..YIELDS {
        bound = evtchn::bind_interdomain(peer, 1);
        if bound != Err(-EINVAL) {
            break;
        }
        hypervisor::sched_yield();
    }
    let Ok(b) = bound else {
        report::check_eq("bind_interdomain(peer, 1)", bound, Ok(0));
        return;
    };
    report::check("bind_interdomain(peer, 1) once the peer offered it", true);
    report::check_eq(
        "status: interdomain to (peer, 1)",
        evtchn::status(DOMID_SELF, b).map(|s| (s.status, s.u[0] & 0xffff, s.u[1])),
        Ok((stat::INTERDOMAIN, u32::from(peer), 1)),
    );
    report::check_eq("unmask(local port)", evtchn::unmask(b), 0);
    report::check(
        "the bind-time event arrives on the local port",
        wait(|| evtchn::events(b) >= 1),
    );
    report::check_eq("send to the peer", evtchn::send(b), 0);
    report::check("the peer's answer arrives", wait(|| evtchn::events(b) >= 2));
    report::check_eq("close(local port)", evtchn::close(b), 0);
}
