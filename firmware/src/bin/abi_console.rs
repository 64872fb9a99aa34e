//! The PV console ring (`io/console.h`) as Xen sets it up for an HVM/PVH
//! guest: the ring frame and port from `HVMOP_get_param`, text produced
//! into `out` with `out_prod` and a notification, the backend consuming
//! it (`out_cons` catches up), wrap-around past the 2 KiB ring, a line
//! split over two writes; and the HVM param permissions Xen enforces.
//!
//! What the backend printed is checked by the scenario: the lines that
//! start with `ring:` only ever go through the ring.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::fmt::Write;

use firmware::xen::console::Ring;
use firmware::xen::evtchn::{self, stat};
use firmware::xen::layout::{console_ring as cr, DOMID_SELF};
use firmware::xen::page::Page;
use firmware::xen::{self, errno::*, hvm, nr};
use firmware::{hypervisor, println, report, Gpa};

firmware::guest_main!(main);

/// A domid in the valid range that no domain has in these tests.
const NO_SUCH_DOMAIN: u16 = 0x7000;
/// `HVM_PARAM_PAE_ENABLED`: deprecated, -EINVAL to get.
const PARAM_PAE_ENABLED: u32 = 4;
/// `HVM_PARAM_IDENT_PT`: not readable by the guest itself (-EPERM).
const PARAM_IDENT_PT: u32 = 12;
/// Yields to wait for the backend.
const YIELDS: u32 = 100_000;
/// Lines written to wrap the ring.
const WRAP_LINES: usize = 40;

/// A line of text built on the stack.
struct Line {
    buf: [u8; 128],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

fn main(_start_info: Gpa) -> ! {
    println!("abi_console: the PV console ring");
    if !hypervisor::is_xen() {
        report::skip("console ring", "no Xen CPUID leaves");
        report::finish();
    }
    params();
    high_map();
    match Ring::open() {
        Ok(ring) => {
            ring_checks(&ring);
            both_ways(&ring);
        }
        Err(e) => {
            println!("abi_console: cannot open the ring: {e:?}");
            report::check("console ring from CONSOLE_PFN and CONSOLE_EVTCHN", false);
        }
    }
    report::check_eq(
        "console_io still works after the ring",
        hypervisor::console_write(b"abi_console: console_io after the ring\n"),
        0,
    );
    report::finish()
}

fn params() {
    let pfn = xen::get_param(hvm::PARAM_CONSOLE_PFN);
    let port = xen::get_param(hvm::PARAM_CONSOLE_EVTCHN);
    println!("abi_console: CONSOLE_PFN {pfn:x?}, CONSOLE_EVTCHN {port:?}");
    report::check(
        "get_param(CONSOLE_PFN) is a frame",
        matches!(pfn, Ok(f) if f != 0),
    );
    report::check(
        "get_param(CONSOLE_EVTCHN) is a port",
        matches!(port, Ok(p) if p != 0),
    );
    report::check_eq(
        "set_param(CONSOLE_PFN) by the guest is -EPERM",
        xen::set_param_of(DOMID_SELF, hvm::PARAM_CONSOLE_PFN, 0x1234),
        -EPERM,
    );
    report::check_eq(
        "CONSOLE_PFN unchanged after the refused set",
        xen::get_param(hvm::PARAM_CONSOLE_PFN),
        pfn,
    );
    report::check_eq(
        "get_param(IDENT_PT) by the guest is -EPERM",
        xen::get_param(PARAM_IDENT_PT),
        Err(-EPERM),
    );
    report::check_eq(
        "get_param(PAE_ENABLED, deprecated) is -EINVAL",
        xen::get_param(PARAM_PAE_ENABLED),
        Err(-EINVAL),
    );
    report::check_eq(
        "get_param(HVM_NR_PARAMS) is -EINVAL",
        xen::get_param(hvm::NR_PARAMS),
        Err(-EINVAL),
    );
    report::check_eq(
        "get_param(CONSOLE_PFN) of a missing domain is -ESRCH",
        xen::get_param_of(NO_SUCH_DOMAIN, hvm::PARAM_CONSOLE_PFN),
        Err(-ESRCH),
    );
    report::check_eq(
        "get_param with an unmapped argument is -EFAULT",
        xen::call_unmapped(nr::HVM_OP, hvm::GET_PARAM),
        -EFAULT,
    );
    report::check_eq(
        "unknown HVMOP (0x7f) is -ENOSYS",
        xen::call_unmapped(nr::HVM_OP, 0x7f),
        -ENOSYS,
    );
}

fn ring_checks(ring: &Ring) {
    let (cons, prod) = ring.out_indices();
    let (in_cons, in_prod) = ring.in_indices();
    println!(
        "abi_console: ring at {:#x}, port {}: out_cons {cons} out_prod {prod}, in_cons {in_cons} in_prod {in_prod}",
        ring.page.addr(),
        ring.port
    );
    report::check(
        "ring indices are sane at start",
        prod.wrapping_sub(cons) as usize <= cr::OUT_SIZE
            && in_prod.wrapping_sub(in_cons) as usize <= cr::IN_SIZE,
    );
    let status = evtchn::status(DOMID_SELF, ring.port);
    println!("abi_console: status of the console port: {status:?}");
    report::check(
        "the console port is connected (interdomain)",
        matches!(status, Ok(s) if s.status == stat::INTERDOMAIN),
    );

    for i in 1..=3 {
        let mut line = Line {
            buf: [0; 128],
            len: 0,
        };
        let _ = writeln!(line, "ring: line {i} of 3");
        let written = ring.write(&line.buf[..line.len]);
        report::check_eq("a short line fits the ring", written, Ok(line.len));
    }
    report::check(
        "the backend consumes the ring (out_cons == out_prod)",
        ring.drain(YIELDS),
    );

    // Nothing printed between the halves: console_io output is another
    // stream (Xen's own console, not the ring), it must not be needed to
    // keep this line whole. The backend may see the halves apart.
    let first = ring.write(b"ring: a line in ");
    let _ = ring.drain(YIELDS);
    let second = ring.write(b"two writes\n");
    report::check_eq(
        "a line written in two halves",
        (first, second),
        (Ok(16), Ok(11)),
    );
    report::check("the backend consumes both halves", ring.drain(YIELDS));

    let (_, start) = ring.out_indices();
    let mut total = 0;
    let mut ok = true;
    for i in 0..WRAP_LINES {
        let mut line = Line {
            buf: [0; 128],
            len: 0,
        };
        let _ = writeln!(
            line,
            "ring: wrap line {i:02} of {WRAP_LINES} ....................................................................."
        );
        let written = ring.write_all(&line.buf[..line.len], YIELDS);
        ok &= written == Ok(line.len);
        total += line.len;
    }
    println!(
        "abi_console: {total} bytes through a {} byte ring",
        cr::OUT_SIZE
    );
    report::check(
        "lines past the ring size are all written",
        ok && total > cr::OUT_SIZE,
    );
    report::check("the backend caught up after the wrap", ring.drain(YIELDS));
    let (_, prod) = ring.out_indices();
    report::check_eq(
        "out_prod advanced by every byte written",
        prod.wrapping_sub(start) as usize,
        total,
    );
    notifications(ring);
}

/// Lines written both to the ring and with `console_io` (Xen prints the
/// two on different consoles) reach the serial line once, whichever comes
/// first; lines repeated one way are all printed. The scenario rejects a
/// line printed twice in a row and expects each line.
fn both_ways(ring: &Ring) {
    for i in 1..=4 {
        let mut line = Line {
            buf: [0; 128],
            len: 0,
        };
        let _ = writeln!(line, "both: line {i} of 4");
        let text = &line.buf[..line.len];
        let (first, second) = if i % 2 == 0 {
            (hypervisor::console_write(text), ring.write(text).map(|_| 0))
        } else {
            (
                ring.write(text).map(|_| 0).unwrap_or(-1),
                Ok(hypervisor::console_write(text)),
            )
        };
        report::check_eq("a line written both ways", (first, second), (0, Ok(0)));
        report::check("the backend consumes it", ring.drain(YIELDS));
    }
    let line = b"both: the same line twice through the ring\n";
    let twice = (ring.write(line), ring.write(line));
    report::check_eq(
        "a line written twice",
        twice,
        (Ok(line.len()), Ok(line.len())),
    );
    report::check("the backend consumes them", ring.drain(YIELDS));
}

/// The backend notifies the console port once it consumed output (as
/// xenconsoled does): with shared_info mapped, the port unmasked and the
/// upcall set up, a write raises an event on it.
fn notifications(ring: &Ring) {
    use firmware::xen::shared;
    if shared::map() != 0 || evtchn::setup_upcall() != 0 {
        report::check("shared_info and the upcall for console events", false);
        return;
    }
    report::check_eq("unmask(console port)", evtchn::unmask(ring.port), 0);
    evtchn::wait_until(100, || false);
    let before = evtchn::events(ring.port);
    let _ = ring.write(b"ring: notified\n");
    let consumed = ring.drain(YIELDS);
    report::check(
        "consuming the output raises an event on the console port",
        consumed && evtchn::wait_until(100_000, || evtchn::events(ring.port) > before),
    );
}

/// Xen puts an HVM guest's special pages (console, xenstore) just below
/// 4 GiB, past the boot code's 1 GiB identity map: the runtime maps such
/// frames on demand. Reading one must not fault (nothing decodes this
/// address here: a hypervisor reads it as absent, all ones, or RAM).
fn high_map() {
    const SPECIAL: u64 = 0xfeff0;
    match Page::at(SPECIAL) {
        Some(page) => {
            let v = page.u32(0).load(core::sync::atomic::Ordering::Relaxed);
            println!("abi_console: frame {SPECIAL:#x} mapped, reads {v:#x}");
            report::check("a frame below 4 GiB is mapped on demand", true);
        }
        None => {
            report::check("a frame below 4 GiB is mapped on demand", false);
        }
    }
}
