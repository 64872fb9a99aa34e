//! Ballooning (`memory.h`) as Xen answers a PVH domU: pages given back
//! with `XENMEM_decrease_reservation` become a hole in the guest-physical
//! space (reads all-ones, writes dropped, the domain lives on), come back
//! with `XENMEM_populate_physmap` scrubbed, never beyond the domain's
//! maximum reservation; `XENMEM_exchange` swaps pages for new ones;
//! partial success returns the extents done, and bad arguments get Xen's
//! answers. Every effect is read back from memory.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::sync::atomic::Ordering;

use firmware::xen::layout::DOMID_SELF;
use firmware::xen::page::{Page, PageBuf};
use firmware::xen::{self, errno::*, nr};
use firmware::{hypervisor, println, report, Gpa};

firmware::guest_main!(main);

const INCREASE_RESERVATION: u64 = 0;
const DECREASE_RESERVATION: u64 = 1;
const CURRENT_RESERVATION: u64 = 3;
const MAXIMUM_RESERVATION: u64 = 4;
const POPULATE_PHYSMAP: u64 = 6;
const EXCHANGE: u64 = 11;

/// A domid in the valid range that no domain has in these tests.
const NO_SUCH_DOMAIN: u16 = 0x7000;
/// A guest frame outside the memory map (64 MiB, above the domain's 32
/// MiB and its special pages, below the host's RAM end, so no host hole
/// is reserved there): nothing is there.
const OUTSIDE_GFN: u64 = 0x4000;

/// `struct xen_memory_reservation` (`memory.h`), 64-bit layout.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct Reservation {
    extent_start: u64,
    nr_extents: u64,
    extent_order: u32,
    mem_flags: u32,
    domid: u16,
    pad: [u16; 3],
}
const _: () = assert!(core::mem::size_of::<Reservation>() == 32);

impl Reservation {
    fn new(list: &mut [u64], order: u32) -> Self {
        Reservation {
            extent_start: list.as_mut_ptr() as u64,
            nr_extents: list.len() as u64,
            extent_order: order,
            mem_flags: 0,
            domid: DOMID_SELF,
            pad: [0; 3],
        }
    }
}

/// `struct xen_memory_exchange` (`memory.h`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct Exchange {
    inp: Reservation,
    out: Reservation,
    nr_exchanged: u64,
}
const _: () = assert!(core::mem::size_of::<Exchange>() == 72);

static A: PageBuf = PageBuf::new();
static B: PageBuf = PageBuf::new();
static C: PageBuf = PageBuf::new();
static D: PageBuf = PageBuf::new();
static E: PageBuf = PageBuf::new();
static F: PageBuf = PageBuf::new();
static G: PageBuf = PageBuf::new();

const ONES: u64 = u64::MAX;

fn reservation_op(cmd: u64, list: &mut [u64], order: u32, domid: u16) -> i64 {
    let mut r = Reservation::new(list, order);
    r.domid = domid;
    xen::op(nr::MEMORY_OP, cmd, &mut r)
}

fn decrease(list: &mut [u64]) -> i64 {
    reservation_op(DECREASE_RESERVATION, list, 0, DOMID_SELF)
}

fn populate(list: &mut [u64]) -> i64 {
    reservation_op(POPULATE_PHYSMAP, list, 0, DOMID_SELF)
}

fn current() -> i64 {
    let mut d = DOMID_SELF;
    xen::op(nr::MEMORY_OP, CURRENT_RESERVATION, &mut d)
}

fn maximum() -> i64 {
    let mut d = DOMID_SELF;
    xen::op(nr::MEMORY_OP, MAXIMUM_RESERVATION, &mut d)
}

/// `exchange(in, out)` of order-0 extents: (rc, nr_exchanged).
fn exchange(inp: &mut [u64], out: &mut [u64], domid: u16) -> (i64, u64) {
    let mut x = Exchange {
        inp: Reservation::new(inp, 0),
        out: Reservation::new(out, 0),
        nr_exchanged: 0,
    };
    x.inp.domid = domid;
    x.out.domid = domid;
    let rc = xen::op(nr::MEMORY_OP, EXCHANGE, &mut x);
    (rc, x.nr_exchanged)
}

/// Whether the page reads as a hole: all-ones at its start, middle and
/// end (each read is an emulated access), and a write there is dropped.
fn absent(p: Page) -> bool {
    let reads = p.u64(0).load(Ordering::Relaxed) == ONES
        && p.u64(2048).load(Ordering::Relaxed) == ONES
        && p.u8(4095).load(Ordering::Relaxed) == 0xff;
    p.u64(8).store(0x1234_5678, Ordering::Relaxed);
    reads && p.u64(8).load(Ordering::Relaxed) == ONES
}

/// Whether every byte of the page is `byte`.
fn filled(p: Page, byte: u8) -> bool {
    let want = u64::from_ne_bytes([byte; 8]);
    (0..4096)
        .step_by(8)
        .all(|o| p.u64(o).load(Ordering::Relaxed) == want)
}

/// Whether the page is memory again: a value written reads back.
fn usable(p: Page) -> bool {
    p.u64(16).store(0x5a5a_0123, Ordering::Relaxed);
    let ok = p.u64(16).load(Ordering::Relaxed) == 0x5a5a_0123;
    p.u64(16).store(0, Ordering::Relaxed);
    ok
}

fn main(_start_info: Gpa) -> ! {
    println!("abi_memory: ballooning and XENMEM_exchange");
    if !hypervisor::is_xen() {
        report::skip("ballooning", "no Xen CPUID leaves");
        report::finish();
    }
    let max = maximum();
    println!("abi_memory: current {} of maximum {max} pages", current());
    report::check("maximum_reservation is the domain's memory", max >= 8192);
    report::check_eq("current_reservation is all of it", current(), max);
    let Some(outside) = Page::at(OUTSIDE_GFN) else {
        report::check("a page outside the memory map can be mapped", false);
        report::finish();
    };
    report::check("nothing is outside the memory map", absent(outside));
    balloon(max);
    limits(max, outside);
    partial(outside);
    arguments();
    exchanges(max, outside);
    report::check_eq("current_reservation at the end", current(), max);
    report::finish()
}

/// A page out and back in.
fn balloon(max: i64) {
    let a = A.page();
    a.fill(0xa5);
    report::check_eq(
        "decrease_reservation of one page",
        decrease(&mut [a.gfn()]),
        1,
    );
    report::check_eq("current_reservation is one page less", current(), max - 1);
    report::check(
        "a page given back reads all-ones, writes dropped",
        absent(a),
    );
    report::check("the domain lives on", hypervisor::xen_version() > 0);
    report::check_eq(
        "a page given back cannot be given back again",
        decrease(&mut [a.gfn()]),
        0,
    );
    report::check_eq("populate_physmap of it", populate(&mut [a.gfn()]), 1);
    report::check_eq("current_reservation is back", current(), max);
    report::check("a populated page comes back scrubbed", filled(a, 0));
    report::check("a populated page is memory again", usable(a));
}

/// The maximum reservation holds, wherever the pages go.
fn limits(max: i64, outside: Page) {
    report::check_eq(
        "populate_physmap beyond the maximum does nothing",
        populate(&mut [OUTSIDE_GFN]),
        0,
    );
    report::check("the page beyond the maximum stays a hole", absent(outside));
    let b = B.page();
    b.fill(0x3c);
    report::check_eq(
        "decrease_reservation of another page",
        decrease(&mut [b.gfn()]),
        1,
    );
    report::check_eq(
        "populate_physmap outside the memory map",
        populate(&mut [OUTSIDE_GFN]),
        1,
    );
    report::check("the page outside the memory map is memory", usable(outside));
    report::check_eq("current_reservation with it", current(), max);
    report::check_eq(
        "the page given back cannot be populated over the maximum",
        populate(&mut [b.gfn()]),
        0,
    );
    report::check("so it stays a hole", absent(b));
    report::check_eq(
        "decrease_reservation outside the memory map",
        decrease(&mut [OUTSIDE_GFN]),
        1,
    );
    report::check("the page outside the memory map is gone", absent(outside));
    report::check_eq(
        "populate_physmap back in place",
        populate(&mut [b.gfn()]),
        1,
    );
    report::check("the page back in place is scrubbed", filled(b, 0));
}

/// The first extent that fails ends the call; the count says how many
/// were done.
fn partial(outside: Page) {
    let (c, d) = (C.page(), D.page());
    c.fill(0x11);
    d.fill(0x22);
    report::check_eq(
        "decrease_reservation stops at a page that is not there",
        decrease(&mut [c.gfn(), OUTSIDE_GFN, d.gfn()]),
        1,
    );
    report::check("the extent before it went", absent(c));
    report::check("the extent after it stayed", filled(d, 0x22));
    report::check_eq(
        "populate_physmap stops at the maximum",
        populate(&mut [c.gfn(), OUTSIDE_GFN]),
        1,
    );
    report::check("the extent before it came back", filled(c, 0) && usable(c));
    report::check("the extent after it did not", absent(outside));
    report::check_eq(
        "populate_physmap of a page that is there does nothing",
        populate(&mut [d.gfn()]),
        0,
    );
    report::check("and leaves it alone", filled(d, 0x22));
}

/// Xen's answers to bad arguments: nothing done.
fn arguments() {
    let d = D.page();
    let gfn = d.gfn();
    report::check_eq(
        "decrease_reservation above the maximum order does nothing",
        reservation_op(DECREASE_RESERVATION, &mut [gfn], 10, DOMID_SELF),
        0,
    );
    report::check_eq(
        "decrease_reservation of another domain does nothing",
        reservation_op(DECREASE_RESERVATION, &mut [gfn], 0, 0),
        0,
    );
    report::check_eq(
        "decrease_reservation of a missing domain does nothing",
        reservation_op(DECREASE_RESERVATION, &mut [gfn], 0, NO_SUCH_DOMAIN),
        0,
    );
    report::check_eq(
        "increase_reservation gives nothing",
        reservation_op(INCREASE_RESERVATION, &mut [gfn], 0, DOMID_SELF),
        0,
    );
    report::check_eq(
        "decrease_reservation with an unreadable argument does nothing",
        xen::call_unmapped(nr::MEMORY_OP, DECREASE_RESERVATION),
        0,
    );
    let mut list = [gfn];
    let mut r = Reservation::new(&mut list, 0);
    r.extent_start = xen::UNMAPPED;
    report::check_eq(
        "decrease_reservation with an unreadable list does nothing",
        xen::op(nr::MEMORY_OP, DECREASE_RESERVATION, &mut r),
        0,
    );
    report::check("after all that the page is untouched", filled(d, 0x22));
}

/// `XENMEM_exchange`: new pages for old, chunk by chunk.
fn exchanges(max: i64, outside: Page) {
    let (e, f, g) = (E.page(), F.page(), G.page());
    e.fill(0x77);
    let r = exchange(&mut [e.gfn()], &mut [e.gfn()], DOMID_SELF);
    report::check_eq("exchange of a page for one in its place", r, (0, 1));
    report::check(
        "the new page is scrubbed (contents do not move)",
        filled(e, 0),
    );
    f.fill(0x66);
    let r = exchange(&mut [f.gfn()], &mut [OUTSIDE_GFN], DOMID_SELF);
    report::check_eq("exchange of a page for one elsewhere", r, (0, 1));
    report::check("the old page is a hole", absent(f));
    report::check(
        "the new one is memory",
        filled(outside, 0) && usable(outside),
    );
    report::check_eq("current_reservation does not change", current(), max);
    let r = exchange(&mut [OUTSIDE_GFN], &mut [f.gfn()], DOMID_SELF);
    report::check_eq("exchange back", r, (0, 1));
    report::check("and back in place", absent(outside) && usable(f));
    g.fill(0x55);
    let r = exchange(
        &mut [g.gfn(), OUTSIDE_GFN],
        &mut [g.gfn(), OUTSIDE_GFN],
        DOMID_SELF,
    );
    report::check_eq(
        "exchange stops at a page that is not there (nr_exchanged)",
        r,
        (-EINVAL, 1),
    );
    report::check("the chunk before it was exchanged", filled(g, 0));
    report::check("the chunk at it was not", absent(outside));
    g.fill(0x55);
    let (mut inp, mut out) = ([g.gfn()], [g.gfn()]);
    let mut x = Exchange {
        inp: Reservation::new(&mut inp, 0),
        out: Reservation::new(&mut out, 1),
        nr_exchanged: 0,
    };
    report::check_eq(
        "exchange of different sizes is -EINVAL",
        xen::op(nr::MEMORY_OP, EXCHANGE, &mut x),
        -EINVAL,
    );
    x.out.extent_order = 0;
    x.nr_exchanged = 1;
    report::check_eq(
        "exchange with everything exchanged already does nothing",
        xen::op(nr::MEMORY_OP, EXCHANGE, &mut x),
        0,
    );
    x.nr_exchanged = 0;
    x.inp.extent_order = 10;
    x.out.extent_order = 10;
    report::check_eq(
        "exchange above the maximum order is -EPERM",
        xen::op(nr::MEMORY_OP, EXCHANGE, &mut x),
        -EPERM,
    );
    let r = exchange(&mut [g.gfn()], &mut [g.gfn()], 0);
    report::check_eq("exchange with another domain is -EPERM", r.0, -EPERM);
    let r = exchange(&mut [g.gfn()], &mut [g.gfn()], NO_SUCH_DOMAIN);
    report::check_eq("exchange with a missing domain is -ESRCH", r.0, -ESRCH);
    report::check_eq(
        "exchange with an unreadable argument is -EFAULT",
        xen::call_unmapped(nr::MEMORY_OP, EXCHANGE),
        -EFAULT,
    );
    report::check("after all that the page is untouched", filled(g, 0x55));
}
