//! Attacks on the paravirtual PCI protocol itself and on the device's
//! lifecycle, for `attack-protocol-*` and `attack-lifecycle-*`.
//!
//! Protocol (`proto-*`), each case an effect the guest observes on the
//! shared page, its event channel or the backend's xenstore `state`:
//! - `proto-ops`: an op with `_XEN_PCIF_active` set but no notify (not
//!   served until notified, then served); a notify without the bit, over a
//!   command-register write (ignored: the page and the register unchanged,
//!   no notify back); 10,000 notifies without the bit (ignored; the next op
//!   is answered); the op rewritten on the page by edu's DMA while ops are
//!   sent over it (every answer is that of one whole request, the one
//!   before or the one after); unknown and AER op codes
//!   (`XEN_PCI_ERR_not_implemented`); then Closing with an op pending (the
//!   backend goes Closing and never answers it) and Closed (the backend
//!   goes Closed; an op after it is not answered).
//! - `proto-magic`, `proto-gref`, `proto-port`: the connection published
//!   with `magic` "8", with the shared page's grant revoked, or with a port
//!   that is not an unbound one for the backend: the backend refuses
//!   (Closing) and never connects.
//!
//! Lifecycle (`die-*`): the guest dies (`SCHEDOP_shutdown(crash)`) in the
//! middle of an edu DMA into its own memory (`die-dma`), with MSI enabled,
//! its pirq bound and an interrupt raised (`die-irq`), or with an op
//! pending (`die-op`). What the hypervisor does about it is in its log;
//! the guest's next life (the domain restarted, `on_crash = "restart"`)
//! checks the effects it can see: the backend hands the device over with
//! decoding, bus mastering and MSI off, edu's DMA engine is idle, and its
//! drivers' checks pass again.
//!
//! Every item may end in `@N`: it applies only to the guest whose domain
//! id is N (a restarted domain gets a new id: one case per life).

use core::sync::atomic::Ordering;

use super::edu::{self, DEVICE_BUFFER, DMA_TO_EDU, DMA_TO_RAM};
use super::{command, Function, Functions, Transport};
use crate::report::{self, check, Table};
use crate::xen::pcifront::{cmd, state, Frontend, Publish, SetupError, Text};
use crate::xen::{evtchn, shared};
use crate::{cpu, println};

/// One protocol or lifecycle attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// `proto-ops`.
    Ops,
    /// `proto-magic`.
    Magic,
    /// `proto-gref`.
    Gref,
    /// `proto-port`.
    Port,
    /// `die-dma`.
    DieDma,
    /// `die-irq`.
    DieIrq,
    /// `die-op`.
    DieOp,
}

const NAMES: [(&str, Case); 7] = [
    ("proto-ops", Case::Ops),
    ("proto-magic", Case::Magic),
    ("proto-gref", Case::Gref),
    ("proto-port", Case::Port),
    ("die-dma", Case::DieDma),
    ("die-irq", Case::DieIrq),
    ("die-op", Case::DieOp),
];

impl Case {
    /// Reads `NAME` or `NAME@DOMID`: the case and the domain it applies to
    /// (0: any).
    pub fn parse(item: &str) -> Option<(Case, u16)> {
        let (name, dom) = match item.split_once('@') {
            Some((n, d)) => (n, d.parse().ok()?),
            None => (item, 0),
        };
        NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, c)| (c, dom))
    }

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        NAMES.iter().find(|(_, c)| *c == self).map_or("?", |n| n.0)
    }

    /// Whether it replaces the connection (it runs before any op).
    pub fn at_connect(self) -> bool {
        matches!(self, Case::Magic | Case::Gref | Case::Port)
    }
}

/// Offsets in the shared page: `flags`, then the op's words.
const FLAGS: usize = 0;
const CMD: usize = 4;
const ERR: usize = 8;
const DEVFN: usize = 20;
const OFFSET: usize = 24;
const SIZE: usize = 28;
const VALUE: usize = 32;
/// The bytes of an op's words (`cmd` .. `info`).
const OP_WORDS: usize = 36;
/// `_XEN_PCIF_active`.
const ACTIVE: u32 = 1;
/// What `err` is set to before an op the backend must not answer.
const UNTOUCHED: u32 = 0x7777_7777;
/// The op code the rewriting DMA puts on the page (unknown to the
/// protocol).
const ROGUE_CMD: u32 = 0x5eed;
/// `XEN_PCI_ERR_not_implemented`.
const NOT_IMPLEMENTED: u32 = -4i32 as u32;

/// The guest's own domain id (0 if unknown).
pub fn domid() -> u16 {
    crate::xen::domid().unwrap_or(0)
}

/// The connection-time case for this life among `cases`, if any.
pub fn connect_case(cases: &[(Case, u16)], dom: u16) -> Option<Case> {
    cases
        .iter()
        .find(|&&(c, d)| c.at_connect() && (d == 0 || d == dom))
        .map(|&(c, _)| c)
}

/// Connects as `case` says (a broken connection) and reports whether the
/// backend refused it; then ends the guest.
pub fn connect_attack(case: Case) -> ! {
    let (how, name) = match case {
        Case::Magic => (
            Publish {
                magic: "8",
                ..Publish::default()
            },
            "magic 8",
        ),
        Case::Gref => (
            Publish {
                revoke: true,
                ..Publish::default()
            },
            "revoked grant",
        ),
        _ => (
            Publish {
                port: Some(0x3ff),
                ..Publish::default()
            },
            "foreign port",
        ),
    };
    let outcome = match Frontend::connect_with(how) {
        Ok(_) => "connected",
        Err(SetupError::BackendState(state::CLOSING)) => "refused: backend Closing",
        Err(SetupError::BackendState(_)) => "backend Closed",
        Err(SetupError::Timeout(_)) => "no answer",
        Err(_) => "setup failed",
    };
    let mut t: Table = Table::new("attack-protocol");
    t.case(name, outcome, outcome == "refused: backend Closing");
    t.print();
    report::finish()
}

/// Before the drivers: if the previous life (domain id one less) ran a
/// `die-*` case, checks that the backend hands the device over with
/// decoding, bus mastering and MSI off, and that edu's DMA engine is idle.
/// Returns that case, for [`after_drivers`].
pub fn before_drivers<T: Transport>(
    t: &mut T,
    found: &Functions,
    cases: &[(Case, u16)],
    dom: u16,
) -> Option<Case> {
    let prev = cases
        .iter()
        .find(|&&(c, d)| !c.at_connect() && c != Case::Ops && d != 0 && d + 1 == dom)
        .map(|&(c, _)| c)?;
    let f = found.iter().find(|f| f.ids() == edu::IDS)?;
    let cmdreg = t.read(f.addr, command::OFFSET, 2).unwrap_or(0xffff);
    let msi = f
        .msi
        .map_or(0, |m| t.read(f.addr, m.offset + 2, 2).unwrap_or(0xffff));
    println!(
        "xpci: attack: the previous life ran {}: edu's command register {cmdreg:#06x}, MSI control {msi:#06x}",
        prev.name()
    );
    let off = command::MEMORY_SPACE | command::BUS_MASTER;
    let reset = cmdreg as u16 & off == 0 && msi & 1 == 0;
    let name = Text::new(format_args!(
        "attack: {}: the backend hands the device over with decoding, bus mastering and MSI off",
        prev.name()
    ));
    check(name.as_str(), reset);
    // What the device itself shows: its DMA engine must have stopped (the
    // write it was doing was blocked or done before the release). edu has
    // no reset, so its interrupt status may carry over (the hypervisor
    // warns that state inside such a device does): printed, not judged.
    let hw = edu::open(t, f)
        .ok()
        .map(|m| (m.read64(edu::reg::DMA_CMD), m.read32(edu::reg::IRQ_STATUS)));
    println!("xpci: attack: edu's DMA command and interrupt status at this life's start: {hw:x?}");
    let name = Text::new(format_args!(
        "attack: {}: edu's DMA engine is idle in the next life",
        prev.name()
    ));
    check(name.as_str(), hw.is_some_and(|(c, _)| c & 1 == 0));
    Some(prev)
}

/// After the drivers: the table of the previous life's case (`prev`,
/// from [`before_drivers`]), as expected if neither the reset check nor
/// any driver check failed (`failed_before`: the failures counted before
/// [`before_drivers`]).
pub fn after_drivers(prev: Option<Case>, failed_before: u32) {
    let Some(prev) = prev else { return };
    let works = report::failed() == failed_before;
    let mut t: Table = Table::new("attack-lifecycle");
    t.case(
        prev.name(),
        if works {
            "handed over clean and working in the next life"
        } else {
            "not clean or not working in the next life"
        },
        works,
    );
    t.print();
}

/// Runs the op-level protocol case and this life's `die-*` case, if any.
pub fn run(fe: &mut Frontend, found: &Functions, cases: &[(Case, u16)], dom: u16) {
    let mine = |c: Case| cases.iter().any(|&(k, d)| k == c && (d == 0 || d == dom));
    let edu = found.iter().find(|f| f.ids() == edu::IDS).copied();
    if mine(Case::Ops) {
        match &edu {
            Some(f) => ops(fe, f),
            None => {
                check("attack: proto-ops: edu found", false);
            }
        }
    }
    for die in [Case::DieDma, Case::DieIrq, Case::DieOp] {
        if mine(die) {
            match &edu {
                Some(f) => lifecycle(fe, f, die),
                None => {
                    check("attack: die: edu found", false);
                }
            }
        }
    }
}

/// A conf_read of offset 0 (the IDs) of `f` on the page, `err` preset.
fn put_read(fe: &Frontend, f: &Function) {
    let p = fe.page();
    let devfn = (u32::from(f.addr.dev) << 3) | u32::from(f.addr.func);
    for i in (CMD..CMD + OP_WORDS).step_by(4) {
        p.u32(i).store(0, Ordering::Relaxed);
    }
    p.u32(CMD).store(cmd::CONF_READ, Ordering::Relaxed);
    p.u32(ERR).store(UNTOUCHED, Ordering::Relaxed);
    p.u32(CMD + 8)
        .store(u32::from(f.addr.seg), Ordering::Relaxed);
    p.u32(CMD + 12)
        .store(u32::from(f.addr.bus), Ordering::Relaxed);
    p.u32(DEVFN).store(devfn, Ordering::Relaxed);
    p.u32(OFFSET).store(0, Ordering::Relaxed);
    p.u32(SIZE).store(4, Ordering::Relaxed);
    core::sync::atomic::fence(Ordering::SeqCst);
}

fn active(fe: &Frontend) -> bool {
    fe.page().u32(FLAGS).load(Ordering::SeqCst) & ACTIVE != 0
}

fn set_active(fe: &Frontend) {
    fe.page().u32(FLAGS).fetch_or(ACTIVE, Ordering::SeqCst);
}

/// Waits up to `ms` for the backend to clear the active bit (polling the
/// port); whether it did.
fn answered_within(fe: &Frontend, ms: u64) -> bool {
    let port = fe.port();
    let end = now_ns() + ms * 1_000_000;
    loop {
        shared::clear_pending(port);
        if !active(fe) {
            return true;
        }
        let now = now_ns();
        if now >= end {
            return false;
        }
        evtchn::poll(&[port], now + 10_000_000);
    }
}

fn now_ns() -> u64 {
    shared::now().unwrap_or_else(|| cpu::rdtsc() / super::tsc_per_ms().max(1) * 1_000_000)
}

/// Whether the backend notified the port within `ms` (the pending bit
/// cleared first).
fn notified_within(port: u32, ms: u64) -> bool {
    shared::clear_pending(port);
    evtchn::poll(&[port], now_ns() + ms * 1_000_000);
    shared::clear_pending(port)
}

fn word(fe: &Frontend, at: usize) -> u32 {
    fe.page().u32(at).load(Ordering::SeqCst)
}

fn ops(fe: &mut Frontend, f: &Function) {
    let mut t: Table = Table::new("attack-protocol");
    let ids = f.ids();
    let ids_le = (ids & 0xffff) << 16 | ids >> 16;
    let port = fe.port();

    // The active bit without a notify: nothing until the notify.
    put_read(fe, f);
    set_active(fe);
    let early = answered_within(fe, 100);
    let stayed = !early && word(fe, ERR) == UNTOUCHED;
    evtchn::send(port);
    let late = answered_within(fe, 2000);
    let right = late && word(fe, ERR) == 0 && word(fe, VALUE) == ids_le;
    println!(
        "xpci: attack: active bit without a notify: answered after 100 ms: {early}; after the notify: {late}, err {:#x} value {:#x}",
        word(fe, ERR),
        word(fe, VALUE)
    );
    t.case(
        "active bit without a notify",
        if stayed && right {
            "served only when notified"
        } else if early {
            "served without a notify"
        } else {
            "not served correctly after the notify"
        },
        stayed && right,
    );

    // A notify without the active bit, over a write that would turn the
    // device's decoding off.
    let before = fe.read(f.addr, command::OFFSET, 2).unwrap_or(0);
    put_read(fe, f);
    fe.page().u32(CMD).store(cmd::CONF_WRITE, Ordering::SeqCst);
    fe.page().u32(OFFSET).store(4, Ordering::SeqCst);
    fe.page().u32(SIZE).store(2, Ordering::SeqCst);
    fe.page().u32(VALUE).store(0, Ordering::SeqCst);
    evtchn::send(port);
    let reply = notified_within(port, 100);
    let untouched = word(fe, ERR) == UNTOUCHED && word(fe, VALUE) == 0;
    let after = fe.read(f.addr, command::OFFSET, 2).unwrap_or(0);
    println!(
        "xpci: attack: notify without the active bit: notified back {reply}, err {:#x}, command {before:#06x} -> {after:#06x}",
        word(fe, ERR)
    );
    let ok = !reply && untouched && before == after && before & 2 != 0;
    t.case(
        "notify without the active bit",
        if ok { "ignored" } else { "acted on" },
        ok,
    );

    // A flood of notifies without the bit.
    put_read(fe, f);
    let t0 = cpu::rdtsc();
    for _ in 0..10_000 {
        evtchn::send(port);
    }
    let cycles = (cpu::rdtsc().wrapping_sub(t0)) / 10_000;
    let reply = notified_within(port, 50);
    let untouched = word(fe, ERR) == UNTOUCHED;
    let next = fe.read(f.addr, 0, 4).ok();
    println!(
        "xpci: attack: 10000 notifies without the active bit, {cycles} cycles each: notified back {reply}; the next op read {next:x?}"
    );
    let ok = !reply && untouched && next == Some(ids_le);
    t.case(
        "event channel flood",
        if ok {
            "ignored; the next op answered"
        } else {
            "acted on or the next op failed"
        },
        ok,
    );

    // The op rewritten by the device's DMA while ops are sent over it.
    let (outcome, ok) = rewritten(fe, f, ids_le);
    t.case("op rewritten by DMA", outcome, ok);

    // Op codes the backend does not serve.
    for (name, code) in [
        ("unknown op code", 0x5eed_u32),
        ("AER op code", cmd::AER_DETECTED),
    ] {
        put_read(fe, f);
        fe.page().u32(CMD).store(code, Ordering::SeqCst);
        set_active(fe);
        evtchn::send(port);
        let done = answered_within(fe, 2000);
        let err = word(fe, ERR);
        println!("xpci: attack: {name} {code:#x}: answered {done}, err {err:#x}");
        let ok = done && err == NOT_IMPLEMENTED;
        t.case(
            name,
            if ok {
                "not_implemented"
            } else {
                "other answer"
            },
            ok,
        );
    }

    // Closing with an op pending, then Closed.
    put_read(fe, f);
    set_active(fe);
    let closing = fe.set_state(state::CLOSING).is_ok() && backend_reaches(fe, state::CLOSING);
    evtchn::send(port);
    let answered = answered_within(fe, 300);
    println!(
        "xpci: attack: Closing with an op pending: backend Closing {closing}, op answered {answered}, err {:#x}",
        word(fe, ERR)
    );
    let ok = closing && !answered && word(fe, ERR) == UNTOUCHED;
    t.case(
        "Closing with an op pending",
        if ok {
            "backend Closing, op unanswered"
        } else {
            "op served or backend not Closing"
        },
        ok,
    );
    let closed = fe.set_state(state::CLOSED).is_ok() && backend_reaches(fe, state::CLOSED);
    put_read(fe, f);
    set_active(fe);
    evtchn::send(port);
    let answered = answered_within(fe, 300);
    println!("xpci: attack: Closed: backend Closed {closed}, an op after it answered {answered}");
    let ok = closed && !answered;
    t.case(
        "op after Closed",
        if ok {
            "backend Closed, op unanswered"
        } else {
            "op served or backend not Closed"
        },
        ok,
    );
    // The page is the guest's again: nothing else is sent on it.
    fe.page().u32(FLAGS).store(0, Ordering::SeqCst);
    t.print();
}

/// Whether the backend's state becomes `want` within 2 s.
fn backend_reaches(fe: &mut Frontend, want: u32) -> bool {
    let end = now_ns() + 2_000_000_000;
    while now_ns() < end {
        if fe.backend_state().ok() == Some(want) {
            return true;
        }
        crate::hypervisor::sched_yield();
    }
    false
}

/// edu is loaded with a rogue op code ([`ROGUE_CMD`], unknown to the
/// protocol) and started on a DMA of it over the page's `cmd`, which
/// lands about 100 ms later; meanwhile and after, the guest re-sends
/// whatever op is on the page (setting only the active bit). Each answer
/// must be that of one whole request: the IDs for the conf_read, or
/// not_implemented (the value left as it was) for the rogue op. Once, the
/// DMA may land while the backend answers the read: the page then shows
/// the rogue code with the read's answer. A backend that wrote back its
/// whole copy of the op would revert the rogue code when the DMA landed
/// during an answer: the rewrite would never be seen.
fn rewritten(fe: &mut Frontend, f: &Function, ids_le: u32) -> (&'static str, bool) {
    let mmio = match edu::open(fe, f) {
        Ok(m) => m,
        Err(_) => return ("edu not usable", false),
    };
    let (src, _) = edu::buffers();
    src.u32(0).store(ROGUE_CMD, Ordering::SeqCst);
    let loaded = edu::dma_of(&mmio, src.addr(), DEVICE_BUFFER, 4, DMA_TO_EDU, None).is_some();
    if !loaded {
        return ("edu not usable", false);
    }
    put_read(fe, f);
    edu::dma_start(
        &mmio,
        DEVICE_BUFFER,
        fe.page().addr() + CMD as u64,
        4,
        DMA_TO_RAM,
    );
    let (mut first, mut second, mut during, mut mixed, mut lost) = (0u32, 0u32, 0u32, 0u32, 0u32);
    let end = now_ns() + 400_000_000;
    while now_ns() < end {
        set_active(fe);
        evtchn::send(fe.port());
        if !answered_within(fe, 2000) {
            lost += 1;
            break;
        }
        let (c, e, v) = (word(fe, CMD), word(fe, ERR), word(fe, VALUE));
        match (c, e) {
            (cmd::CONF_READ, 0) if v == ids_le => first += 1,
            (ROGUE_CMD, NOT_IMPLEMENTED) if v == ids_le => second += 1,
            (ROGUE_CMD, 0) if v == ids_le && second == 0 => during += 1,
            _ => {
                mixed += 1;
                println!(
                    "xpci: attack: op rewritten by DMA: answer cmd {c:#x} err {e:#x} value {v:#x}"
                );
            }
        }
    }
    println!(
        "xpci: attack: op rewritten by DMA: {first} answers to the read, {second} to the rogue op, \
         {during} with the rewrite landing during the answer, {mixed} mixed, {lost} unanswered"
    );
    let ok = first > 0 && second > 0 && during <= 1 && mixed == 0 && lost == 0;
    (
        if ok {
            "each answer of one whole request"
        } else if mixed > 0 || during > 1 {
            "an answer mixed two requests"
        } else {
            "the rewrite was lost"
        },
        ok,
    )
}

/// Dies as `case` says.
fn lifecycle(fe: &mut Frontend, f: &Function, case: Case) -> ! {
    match case {
        Case::DieDma => {
            if let Ok(mmio) = edu::open(fe, f) {
                let (src, dst) = edu::buffers();
                let _ = edu::dma(&mmio, src.addr(), DEVICE_BUFFER, DMA_TO_EDU, None);
                edu::dma_start(
                    &mmio,
                    DEVICE_BUFFER,
                    dst.addr(),
                    edu::DMA_BYTES as u64,
                    DMA_TO_RAM,
                );
                println!("xpci: attack: die-dma: edu's DMA into this guest started; crashing before it ends");
            }
        }
        Case::DieIrq => {
            if let (Ok(mmio), Ok(irq)) = (edu::open(fe, f), fe.enable_msi(f)) {
                mmio.write32(edu::reg::IRQ_RAISE, 1);
                println!(
                    "xpci: attack: die-irq: MSI on as {irq}, an interrupt raised and not acknowledged; crashing"
                );
            }
        }
        _ => {
            put_read(fe, f);
            set_active(fe);
            println!("xpci: attack: die-op: an op pending (active, not notified); crashing");
        }
    }
    report::summary();
    crate::power::shutdown(crate::power::ShutdownReason::Crash)
}
