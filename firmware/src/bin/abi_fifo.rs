//! Event channels, FIFO ABI, as Xen specifies them (`event_channel.h`, the
//! FIFO section): `EVTCHNOP_init_control` and its argument checks, the
//! switch carrying a port pending under the 2-level ABI over, events
//! queued in order (the event words' LINK fields and HEAD read back),
//! priorities, masking and `EVTCHNOP_unmask` re-raising, ports beyond the
//! first event array page raised once `EVTCHNOP_expand_array` adds it,
//! `EVTCHNOP_set_priority`'s errors, and the array's limit.
//!
//! The upcall handler clears `evtchn_upcall_pending` and consumes the
//! queues as Linux does (`firmware::xen::fifo::consume`); it logs the
//! ports it handles, in order, for the checks.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU32, Ordering};

use firmware::xen::evtchn::{self, CALLBACK_VECTOR};
use firmware::xen::fifo::{self, LINKED, MASKED, PENDING, WORDS_PER_PAGE};
use firmware::xen::layout::DOMID_SELF;
use firmware::xen::page::{Page, PageBuf};
use firmware::xen::{errno::*, shared};
use firmware::{hypervisor, println, report, Gpa};

firmware::guest_main!(main);

/// `EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES`.
const MAX_PAGES: usize = 128;
/// The control block at the last offset Xen accepts (it must not cross
/// its page: 4096 - 72).
const CB: usize = 4096 - 72;
const DEFAULT_PRIORITY: u32 = 7;
/// A frame no 32 MiB domain has (4 GiB).
const NOT_RAM: u64 = 0x10_0000;
/// Interrupt windows to wait for an upcall.
const SPINS: u32 = 10_000;

static CONTROL: PageBuf = PageBuf::new();
static ARRAY: [PageBuf; MAX_PAGES] = [const { PageBuf::new() }; MAX_PAGES];
/// Event array pages handed over so far.
static PAGES: AtomicU32 = AtomicU32::new(0);

static UPCALLS: AtomicU32 = AtomicU32::new(0);
/// The ports the handler took, in order.
static LOG: [AtomicU32; 16] = [const { AtomicU32::new(0) }; 16];
static LOGGED: AtomicU32 = AtomicU32::new(0);
/// Each queue's next port, 0 to start from HEAD (Linux's `q->head`).
static NEXT: fifo::Next = [const { AtomicU32::new(0) }; fifo::MAX_QUEUES];

fn control() -> Page {
    CONTROL.page()
}

fn head(priority: u32) -> u32 {
    control()
        .u32(CB + 8 + 4 * priority as usize)
        .load(Ordering::SeqCst)
}

fn ready() -> u32 {
    control().u32(CB).load(Ordering::SeqCst)
}

/// `port`'s event word, once its page was handed over.
fn word(port: u32) -> Option<&'static AtomicU32> {
    let page = port / WORDS_PER_PAGE;
    if page >= PAGES.load(Ordering::SeqCst) {
        return None;
    }
    let buf = ARRAY.get(page as usize)?;
    Some(buf.page().u32(4 * (port % WORDS_PER_PAGE) as usize))
}

fn load(port: u32) -> u32 {
    word(port).map_or(0, |w| w.load(Ordering::SeqCst))
}

fn upcall() {
    UPCALLS.fetch_add(1, Ordering::SeqCst);
    shared::clear_upcall_pending();
    fifo::consume(
        control().u32(CB),
        |q| head(q as u32),
        word,
        &NEXT,
        |port| {
            let n = LOGGED.fetch_add(1, Ordering::SeqCst);
            if let Some(l) = LOG.get(n as usize) {
                l.store(port, Ordering::SeqCst);
            }
        },
    );
}

/// The ports handled since the last call (at most 16).
fn take_log() -> ([u32; 16], usize) {
    let n = (LOGGED.swap(0, Ordering::SeqCst) as usize).min(16);
    let mut out = [0u32; 16];
    for (o, l) in out.iter_mut().zip(&LOG).take(n) {
        *o = l.load(Ordering::SeqCst);
    }
    (out, n)
}

/// Ports handled, in order (the rest of the array 0).
#[derive(Debug, PartialEq, Eq)]
struct Ports([u32; 16], usize);

impl Ports {
    fn of(ports: &[u32]) -> Ports {
        let mut a = [0u32; 16];
        for (o, p) in a.iter_mut().zip(ports) {
            *o = *p;
        }
        Ports(a, ports.len())
    }
}

/// Opens interrupt windows until `n` ports were handled (or the budget
/// ends), then a few more (nothing else may arrive); returns them.
fn handled_ports(n: usize) -> Ports {
    evtchn::wait_until(SPINS, || LOGGED.load(Ordering::SeqCst) as usize >= n);
    evtchn::wait_until(100, || false);
    let (log, got) = take_log();
    Ports(log, got)
}

/// A loopback pair: sending on `.0` raises `.1`.
struct Pair(u32, u32);

fn pair() -> Option<Pair> {
    let a = evtchn::alloc_unbound(DOMID_SELF, DOMID_SELF).ok()?;
    let b = evtchn::bind_interdomain(DOMID_SELF, a).ok()?;
    Some(Pair(a, b))
}

/// Lets every upcall due now run and forgets what it handled.
fn drain() {
    evtchn::wait_until(100, || false);
    let _ = take_log();
}

fn main(_start_info: Gpa) -> ! {
    println!("abi_fifo: FIFO event channels");
    if !hypervisor::is_xen() {
        report::skip("event channels", "no Xen CPUID leaves");
        report::finish();
    }
    if !report::check_eq("add_to_physmap(shared_info)", shared::map(), 0) {
        report::finish();
    }
    report::check_eq(
        "set_param(CALLBACK_IRQ, vector)",
        evtchn::setup_upcall_with(upcall),
        0,
    );
    println!("abi_fifo: upcalls on vector {CALLBACK_VECTOR:#x}");
    let Some(carried) = pair() else {
        report::check("a loopback pair under the 2-level ABI", false);
        report::finish();
    };
    before_init(&carried);
    if !init(&carried) {
        report::finish();
    }
    let (Some(a), Some(b), Some(c)) = (pair(), pair(), pair()) else {
        report::check("three loopback pairs under FIFO", false);
        report::finish();
    };
    let p = [a, b, c];
    drain();
    order(&p);
    priorities(&p);
    masking(&p[0]);
    beyond_first_page();
    set_priority_errors(&p);
    array_limit();
    report::finish()
}

/// Under the 2-level ABI: the FIFO-only operations refuse, and the bad
/// `init_control` calls leave the domain there.
fn before_init(c: &Pair) {
    report::check_eq(
        "expand_array before init_control is -EOPNOTSUPP",
        evtchn::expand_array(ARRAY[0].page().gfn()),
        -EOPNOTSUPP,
    );
    report::check_eq(
        "set_priority under the 2-level ABI is -ENOSYS",
        evtchn::set_priority(c.1, 3),
        -ENOSYS,
    );
    let gfn = CONTROL.page().gfn();
    report::check_eq(
        "init_control for vCPU 1 of a 1-vCPU domain is -ENOENT",
        evtchn::init_control(gfn, CB as u32, 1),
        Err(-ENOENT),
    );
    report::check_eq(
        "init_control with a block crossing its page (offset 4032) is -EINVAL",
        evtchn::init_control(gfn, 4032, 0),
        Err(-EINVAL),
    );
    report::check_eq(
        "init_control with an unaligned offset (4) is -EINVAL",
        evtchn::init_control(gfn, 4, 0),
        Err(-EINVAL),
    );
    report::check_eq(
        "init_control with a frame that is not RAM is -EINVAL",
        evtchn::init_control(NOT_RAM, 0, 0),
        Err(-EINVAL),
    );
    // Still 2-level: a send sets the bitmap's pending bit (the port is
    // masked there, so it stays).
    shared::clear_pending(c.1);
    report::check_eq("send under the 2-level ABI", evtchn::send(c.0), 0);
    report::check(
        "after the failed init_controls events still use the 2-level bitmap",
        shared::is_pending(c.1),
    );
}

/// The switch: `link_bits`, a second init refused, the port pending under
/// the 2-level ABI raised once its event array page arrives.
fn init(c: &Pair) -> bool {
    let gfn = CONTROL.page().gfn();
    if !report::check_eq(
        "init_control (offset 4024) gives link_bits 17",
        evtchn::init_control(gfn, CB as u32, 0),
        Ok(17),
    ) {
        return false;
    }
    report::check_eq(
        "a second init_control for vCPU 0 is -EINVAL",
        evtchn::init_control(gfn, 0, 0),
        Err(-EINVAL),
    );
    drain();
    report::check_eq(
        "no upcall before the event array has a page",
        UPCALLS.load(Ordering::SeqCst),
        0,
    );
    PAGES.store(1, Ordering::SeqCst);
    report::check_eq(
        "expand_array (first page)",
        evtchn::expand_array(ARRAY[0].page().gfn()),
        0,
    );
    report::check_eq(
        "the port pending under the 2-level ABI is handled after the switch",
        handled_ports(1),
        Ports::of(&[c.1]),
    );
    true
}

/// Events of one priority arrive in the order raised, linked through the
/// event words.
fn order(p: &[Pair; 3]) {
    for x in p {
        evtchn::send(x.0);
    }
    let q = DEFAULT_PRIORITY;
    report::check_eq(
        "three sends: HEAD is the first, READY has the default priority",
        (head(q), ready()),
        (p[0].1, 1 << q),
    );
    report::check_eq(
        "each event word links to the next, the last links nowhere",
        [load(p[0].1), load(p[1].1), load(p[2].1)],
        [
            PENDING | LINKED | p[1].1,
            PENDING | LINKED | p[2].1,
            PENDING | LINKED,
        ],
    );
    report::check_eq(
        "the upcall handles them in the order sent",
        handled_ports(3),
        Ports::of(&[p[0].1, p[1].1, p[2].1]),
    );
}

/// A higher priority (lower number) is handled first.
fn priorities(p: &[Pair; 3]) {
    report::check_eq(
        "set_priority(port, 10)",
        evtchn::set_priority(p[0].1, 10),
        0,
    );
    report::check_eq("set_priority(port, 2)", evtchn::set_priority(p[1].1, 2), 0);
    evtchn::send(p[0].0);
    evtchn::send(p[1].0);
    evtchn::send(p[2].0);
    report::check_eq(
        "READY has priorities 2, 7 and 10",
        ready(),
        (1 << 2) | (1 << 7) | (1 << 10),
    );
    report::check_eq(
        "HEAD of queues 2 and 10",
        (head(2), head(10)),
        (p[1].1, p[0].1),
    );
    report::check_eq(
        "priority 2 is handled before 7, 7 before 10",
        handled_ports(3),
        Ports::of(&[p[1].1, p[2].1, p[0].1]),
    );
    for x in p {
        evtchn::set_priority(x.1, DEFAULT_PRIORITY);
    }
}

/// A masked port is only marked pending; `EVTCHNOP_unmask` links it.
fn masking(x: &Pair) {
    let Some(w) = word(x.1) else {
        report::check("the port has an event word", false);
        return;
    };
    w.fetch_or(MASKED, Ordering::SeqCst);
    let before = UPCALLS.load(Ordering::SeqCst);
    evtchn::send(x.0);
    report::check_eq(
        "a send to a masked port sets PENDING only",
        load(x.1),
        PENDING | MASKED,
    );
    report::check_eq("and nothing is handled", handled_ports(1), Ports::of(&[]));
    report::check_eq(
        "and no upcall comes",
        UPCALLS.load(Ordering::SeqCst),
        before,
    );
    report::check_eq("unmask", evtchn::unmask(x.1), 0);
    report::check_eq(
        "unmask clears MASKED and links the pending port",
        load(x.1) & (MASKED | LINKED),
        LINKED,
    );
    report::check_eq(
        "the unmasked port is handled",
        handled_ports(1),
        Ports::of(&[x.1]),
    );
}

/// A port of the second page is raised while the page is missing, and
/// arrives when `expand_array` adds it.
fn beyond_first_page() {
    let mut hi = 0;
    for _ in 0..2 * WORDS_PER_PAGE {
        match evtchn::alloc_unbound(DOMID_SELF, DOMID_SELF) {
            Ok(p) if p >= WORDS_PER_PAGE => {
                hi = p;
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    if !report::check("alloc_unbound reaches port 1024", hi >= WORDS_PER_PAGE) {
        return;
    }
    let Ok(b) = evtchn::bind_interdomain(DOMID_SELF, hi) else {
        report::check("bind_interdomain to a port beyond 1024", false);
        return;
    };
    println!("abi_fifo: ports {hi} -> {b}");
    evtchn::send(hi);
    report::check_eq(
        "a port without an event array page is not handled",
        handled_ports(1),
        Ports::of(&[]),
    );
    PAGES.store(2, Ordering::SeqCst);
    report::check_eq(
        "expand_array (second page)",
        evtchn::expand_array(ARRAY[1].page().gfn()),
        0,
    );
    report::check_eq(
        "its event word, in the second page, is pending and linked",
        ARRAY[1]
            .page()
            .u32(4 * (b % WORDS_PER_PAGE) as usize)
            .load(Ordering::SeqCst),
        PENDING | LINKED,
    );
    report::check_eq(
        "its pending event arrives with the page",
        handled_ports(1),
        Ports::of(&[b]),
    );
    evtchn::send(hi);
    report::check_eq(
        "a send to it is handled through the second page",
        handled_ports(1),
        Ports::of(&[b]),
    );
}

fn set_priority_errors(p: &[Pair; 3]) {
    report::check_eq(
        "set_priority(port, 16) is -EINVAL",
        evtchn::set_priority(p[0].1, 16),
        -EINVAL,
    );
    report::check_eq(
        "set_priority(port, 15) succeeds",
        evtchn::set_priority(p[0].1, 15),
        0,
    );
    report::check_eq(
        "set_priority on a port beyond the table is -EINVAL",
        evtchn::set_priority(4000, 1),
        -EINVAL,
    );
    report::check_eq("close a port", evtchn::close(p[2].1), 0);
    report::check_eq(
        "set_priority on a closed port is -EINVAL",
        evtchn::set_priority(p[2].1, 1),
        -EINVAL,
    );
}

/// 128 pages at most; a frame that is not RAM is refused first.
fn array_limit() {
    report::check_eq(
        "expand_array with a frame that is not RAM is -EINVAL",
        evtchn::expand_array(NOT_RAM),
        -EINVAL,
    );
    let mut added = PAGES.load(Ordering::SeqCst) as usize;
    for buf in &ARRAY[added..] {
        if evtchn::expand_array(buf.page().gfn()) != 0 {
            break;
        }
        added += 1;
    }
    PAGES.store(added as u32, Ordering::SeqCst);
    report::check_eq("expand_array up to 128 pages", added, MAX_PAGES);
    report::check_eq(
        "expand_array beyond 128 pages is -ENOSPC",
        evtchn::expand_array(ARRAY[0].page().gfn()),
        -ENOSPC,
    );
}
