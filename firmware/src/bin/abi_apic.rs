//! The local APIC as Xen's vLAPIC presents it to an HVM guest.
//!
//! `IA32_APIC_BASE` and the SDM's state machine (vol. 3 11.12.5): every
//! valid transition (xAPIC -> disabled -> xAPIC -> x2APIC -> disabled) and
//! every invalid one (x2APIC -> xAPIC, disabled -> x2APIC, the EN=0/EXTD=1
//! state, reserved bits, moving the page in xAPIC mode) is tried and the
//! MSR read back; in each mode the xAPIC page and the x2APIC MSRs answer
//! or not as the mode says, and enabling a disabled APIC resets it.
//!
//! The error status register (11.5.3): an illegal vector (below 16) sent
//! through the ICR, to itself or by the SELF IPI register, is a send
//! error; an illegal vector in the LVT error entry is a receive error; the
//! errors become readable only at the next write of ESR (write-then-read),
//! and in x2APIC mode only 0 may be written; an unmasked LVT error entry
//! raises its vector when an error is logged.
#![no_std]
#![no_main]

use core::arch::asm;
use core::sync::atomic::{AtomicU32, Ordering};

use firmware::{boot, hypervisor, idt, println, probe, report, Gpa};

firmware::guest_main!(main);

const APIC_BASE: u32 = 0x1b;
const BSP: u64 = 1 << 8;
const EXTD: u64 = 1 << 10;
const EN: u64 = 1 << 11;
/// The xAPIC page, where it must stay.
const PAGE: u64 = 0xfee0_0000;
const DISABLED: u64 = PAGE;
const XAPIC: u64 = PAGE | EN;
const X2APIC: u64 = PAGE | EN | EXTD;

/// x2APIC registers (MSRs).
mod msr {
    pub const ID: u32 = 0x802;
    pub const TPR: u32 = 0x808;
    pub const EOI: u32 = 0x80b;
    pub const SVR: u32 = 0x80f;
    pub const ESR: u32 = 0x828;
    pub const ICR: u32 = 0x830;
    pub const LVT_ERROR: u32 = 0x837;
    pub const SELF_IPI: u32 = 0x83f;
}

/// xAPIC registers (offsets in the page).
mod off {
    pub const VERSION: u64 = 0x30;
    pub const TPR: u64 = 0x80;
    pub const SVR: u64 = 0xf0;
    pub const ESR: u64 = 0x280;
    pub const ICR: u64 = 0x300;
    pub const ICR_HIGH: u64 = 0x310;
}

const SEND_ILLEGAL: u32 = 1 << 5;
const RECV_ILLEGAL: u32 = 1 << 6;
/// ICR destination shorthand "self".
const SELF: u64 = 1 << 18;
const LVT_MASKED: u64 = 1 << 16;
/// The LVT error entry's vector.
const ERROR_VECTOR: u8 = 0xe5;

/// A #GP(0), as a probe reports it.
const GP: Result<(), (u8, u64)> = Err((13, 0));

/// LVT error interrupts taken.
static ERRORS: AtomicU32 = AtomicU32::new(0);

fn main(_start_info: Gpa) -> ! {
    println!("abi_apic: IA32_APIC_BASE state machine, xAPIC page and x2APIC MSRs, ESR");
    if !hypervisor::is_xen() {
        report::skip("local APIC", "no Xen CPUID leaves");
        report::finish();
    }
    if !boot::map_mmio_2m(PAGE) {
        report::skip("local APIC", "the xAPIC page cannot be mapped");
        report::finish();
    }
    let bsp = base() & BSP;
    report::check_eq(
        "APIC_BASE at boot: xAPIC mode, page at 0xfee00000, BSP",
        base(),
        XAPIC | BSP,
    );
    state_machine(bsp);
    report::check_eq("disabled -> xAPIC for ESR", set_base(XAPIC | bsp), Ok(()));
    esr_xapic();
    report::check_eq("xAPIC -> x2APIC for ESR", set_base(X2APIC | bsp), Ok(()));
    esr_x2apic();
    lvt_error();
    report::finish()
}

fn base() -> u64 {
    probe::rdmsr(APIC_BASE).unwrap_or(0)
}

/// WRMSR of `IA32_APIC_BASE`; `Err((vector, error code))` if it faulted.
fn set_base(value: u64) -> Result<(), (u8, u64)> {
    // SAFETY: only the local APIC's mode changes; this program reaches the
    // APIC through the functions below, which follow the mode it sets.
    unsafe { probe::wrmsr(APIC_BASE, value) }.map_err(|f| (f.vector, f.error_code))
}

fn x2_read(reg: u32) -> Result<u64, (u8, u64)> {
    probe::rdmsr(reg).map_err(|f| (f.vector, f.error_code))
}

fn x2_write(reg: u32, value: u64) -> Result<(), (u8, u64)> {
    // SAFETY: the APIC registers this program writes affect only this
    // vCPU's interrupts, which it handles (the LVT error vector) or does
    // not enable.
    unsafe { probe::wrmsr(reg, value) }.map_err(|f| (f.vector, f.error_code))
}

fn mmio_read(offset: u64) -> u32 {
    // SAFETY: the page is identity-mapped uncached (`map_mmio_2m`); a read
    // of an APIC register has no side effect, and outside xAPIC mode the
    // address is absent MMIO.
    unsafe { ((PAGE + offset) as *const u32).read_volatile() }
}

fn mmio_write(offset: u64, value: u32) {
    // SAFETY: as for `x2_write`.
    unsafe { ((PAGE + offset) as *mut u32).write_volatile(value) }
}

/// Tries each of `writes` (name, value), which must fault and leave
/// `IA32_APIC_BASE` at `want`.
fn refused(writes: &[(&str, u64)], want: u64) {
    for &(name, value) in writes {
        report::check_eq(name, (set_base(value), base()), (GP, want));
    }
}

fn state_machine(bsp: u64) {
    // xAPIC mode: the page answers, the MSRs do not.
    mmio_write(off::TPR, 0x20);
    report::check_eq(
        "xAPIC mode: the page answers (TPR reads back), x2APIC MSRs #GP",
        (mmio_read(off::TPR), x2_read(msr::TPR).map(drop)),
        (0x20, GP),
    );
    refused(
        &[
            ("xAPIC: moving the page raises #GP", 0xfed0_0000 | EN | bsp),
            ("xAPIC: reserved bit 0 raises #GP", XAPIC | bsp | 1),
            ("xAPIC: reserved bit 52 raises #GP", XAPIC | bsp | (1 << 52)),
            ("xAPIC -> EN=0 EXTD=1 raises #GP", DISABLED | EXTD | bsp),
        ],
        XAPIC | bsp,
    );
    report::check_eq(
        "xAPIC -> disabled",
        (set_base(DISABLED | bsp), base()),
        (Ok(()), DISABLED | bsp),
    );
    mmio_write(off::TPR, 0x30);
    report::check_eq(
        "disabled: the page is absent (all-ones), x2APIC MSRs #GP",
        (
            mmio_read(off::TPR),
            mmio_read(off::VERSION),
            x2_read(msr::TPR).map(drop),
        ),
        (u32::MAX, u32::MAX, GP),
    );
    refused(
        &[
            ("disabled -> x2APIC raises #GP", X2APIC | bsp),
            ("disabled -> EN=0 EXTD=1 raises #GP", DISABLED | EXTD | bsp),
        ],
        DISABLED | bsp,
    );
    report::check_eq(
        "disabled -> xAPIC, reset (TPR 0, the write while disabled lost)",
        (set_base(XAPIC | bsp), base(), mmio_read(off::TPR)),
        (Ok(()), XAPIC | bsp, 0),
    );
    report::check_eq(
        "xAPIC -> x2APIC",
        (set_base(X2APIC | bsp), base()),
        (Ok(()), X2APIC | bsp),
    );
    let tpr = x2_write(msr::TPR, 0x40).and_then(|()| x2_read(msr::TPR));
    report::check_eq(
        "x2APIC mode: the MSRs answer (TPR reads back), the page is absent",
        (tpr, mmio_read(off::VERSION)),
        (Ok(0x40), u32::MAX),
    );
    refused(
        &[
            ("x2APIC -> xAPIC raises #GP", XAPIC | bsp),
            ("x2APIC -> EN=0 EXTD=1 raises #GP", DISABLED | EXTD | bsp),
        ],
        X2APIC | bsp,
    );
    report::check_eq(
        "x2APIC -> disabled, x2APIC MSRs #GP",
        (
            set_base(DISABLED | bsp),
            base(),
            x2_read(msr::TPR).map(drop),
        ),
        (Ok(()), DISABLED | bsp, GP),
    );
}

/// ESR through the xAPIC page: any value written latches the errors.
fn esr_xapic() {
    mmio_write(off::SVR, 0x1ff);
    mmio_write(off::ESR, 0);
    mmio_write(off::ICR_HIGH, 0);
    mmio_write(off::ICR, (SELF | 4) as u32);
    let before = mmio_read(off::ESR);
    mmio_write(off::ESR, 0xabcd);
    let after = mmio_read(off::ESR);
    mmio_write(off::ESR, 0);
    report::check_eq(
        "xAPIC ESR: illegal vector 4 to self, read before / after a write / after the next",
        (before, after, mmio_read(off::ESR)),
        (0, SEND_ILLEGAL, 0),
    );
}

/// ESR through the MSRs: only 0 may be written.
fn esr_x2apic() {
    let _ = x2_write(msr::SVR, 0x1ff);
    let _ = x2_write(msr::ESR, 0);
    let id = x2_read(msr::ID).unwrap_or(0);
    let sent = x2_write(msr::ICR, (id << 32) | 3);
    let before = x2_read(msr::ESR);
    let _ = x2_write(msr::ESR, 0);
    let after = x2_read(msr::ESR);
    report::check_eq(
        "x2APIC ESR: illegal vector 3 to own id, read before / after a write",
        (sent, before, after),
        (Ok(()), Ok(0), Ok(SEND_ILLEGAL.into())),
    );
    let _ = x2_write(msr::SELF_IPI, 2);
    let _ = x2_write(msr::ESR, 0);
    report::check_eq(
        "x2APIC ESR: illegal vector 2 by SELF IPI",
        x2_read(msr::ESR),
        Ok(SEND_ILLEGAL.into()),
    );
    let _ = x2_write(msr::ESR, 0);
    report::check_eq(
        "x2APIC ESR: a write of a non-zero value raises #GP",
        x2_write(msr::ESR, 1),
        GP,
    );
}

fn on_error() {
    ERRORS.fetch_add(1, Ordering::SeqCst);
    let _ = x2_write(msr::EOI, 0);
}

/// An illegal self-IPI with interrupts on; returns how many LVT error
/// interrupts arrived.
fn illegal_self_ipi_with_interrupts_on() -> u32 {
    let before = ERRORS.load(Ordering::SeqCst);
    // SAFETY: the only interrupt this vCPU can take is the LVT error
    // vector, whose handler is installed.
    unsafe { asm!("sti", options(nomem, nostack)) };
    let _ = x2_write(msr::SELF_IPI, 1);
    for _ in 0..10_000 {
        if ERRORS.load(Ordering::SeqCst) != before {
            break;
        }
        core::hint::spin_loop();
    }
    // SAFETY: back to running with interrupts off.
    unsafe { asm!("cli", options(nomem, nostack)) };
    ERRORS.load(Ordering::SeqCst) - before
}

/// The LVT error entry: with a legal vector it fires on a new error; with
/// an illegal one (which the entry takes, as under Xen) it adds a receive
/// error instead.
fn lvt_error() {
    if !idt::set_interrupt_handler(ERROR_VECTOR, on_error) {
        report::check("LVT error handler installed", false);
        return;
    }
    let set = x2_write(msr::LVT_ERROR, ERROR_VECTOR.into());
    let _ = x2_write(msr::ESR, 0);
    let fired = illegal_self_ipi_with_interrupts_on();
    let _ = x2_write(msr::ESR, 0);
    report::check_eq(
        "LVT error entry (vector 0xe5) fires once on an illegal self-IPI",
        (set, fired, x2_read(msr::ESR)),
        (Ok(()), 1, Ok(SEND_ILLEGAL.into())),
    );
    let set = x2_write(msr::LVT_ERROR, 5).and_then(|()| x2_read(msr::LVT_ERROR));
    let _ = x2_write(msr::ESR, 0);
    let fired = illegal_self_ipi_with_interrupts_on();
    let _ = x2_write(msr::ESR, 0);
    report::check_eq(
        "LVT error entry with illegal vector 5: taken, no interrupt, send and receive errors",
        (set, fired, x2_read(msr::ESR)),
        (Ok(5), 0, Ok((SEND_ILLEGAL | RECV_ILLEGAL).into())),
    );
    let _ = x2_write(msr::LVT_ERROR, LVT_MASKED);
}
