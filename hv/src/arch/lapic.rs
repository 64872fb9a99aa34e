//! The local APIC in xAPIC mode (MMIO at 0xFEE00000, identity-mapped
//! uncached): a one-shot timer, calibrated against the hypervisor's clock,
//! that the scheduler in `domains` arms for when the running guest must
//! stop: its slice's end when another domain or vCPU waits for the CPU, the
//! earliest timer a domain set, or a housekeeping bound. The timer's
//! interrupt handler only acknowledges it and records a tick; the scheduler
//! takes the tick when the guest's slice ends. Where the timer cannot be
//! calibrated it runs periodically instead, as a fixed slice.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use vmm_glue::log;

/// The host timer's vector.
pub const TIMER_VECTOR: u8 = 0xef;
/// The spurious-interrupt vector (never acknowledged, SDM 10.9).
pub const SPURIOUS_VECTOR: u8 = 0xff;

const BASE: u64 = 0xfee0_0000;
const REG_ID: u64 = 0x20;
const REG_EOI: u64 = 0xb0;
const REG_SPURIOUS: u64 = 0xf0;
const REG_LVT_TIMER: u64 = 0x320;
const REG_TIMER_INITIAL: u64 = 0x380;
const REG_TIMER_CURRENT: u64 = 0x390;
const REG_TIMER_DIVIDE: u64 = 0x3e0;
const SPURIOUS_APIC_ENABLE: u32 = 1 << 8;
const LVT_MASKED: u32 = 1 << 16;
const LVT_PERIODIC: u32 = 1 << 17;
/// Divide configuration 0b0011: divide by 16.
const DIVIDE_BY_16: u32 = 0x3;
/// Timer count per period where the timer runs periodically (it could not
/// be calibrated): slices need only be fair, not of a set length.
const INITIAL_COUNT: u32 = 0x2_0000;
/// How long the calibration counts, ns.
const CALIBRATION_NS: u64 = 2_000_000;
/// The nearest and the farthest the one-shot timer is armed, ns.
const MIN_ARM_NS: u64 = 20_000;
const MAX_ARM_NS: u64 = 1_000_000_000;

static TICK: AtomicBool = AtomicBool::new(false);
/// Timer counts (divide 16) per millisecond of the hypervisor's clock; 0
/// while the timer is periodic.
static COUNTS_PER_MS: AtomicU64 = AtomicU64::new(0);
/// The system time the one-shot timer fires at; `u64::MAX` when it is not
/// armed.
static ARMED: AtomicU64 = AtomicU64::new(u64::MAX);

/// Device vectors (`hv::irqroute`) that fired and are not delivered yet,
/// one bit per vector.
static DEVICE: [AtomicU64; 4] = [
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
];

fn write(reg: u64, v: u32) {
    // SAFETY: `BASE + reg` is a register of this CPU's local APIC, which the
    // hypervisor's page tables map uncached below 4 GiB; a 32-bit aligned
    // store is how xAPIC registers are written, and the registers written
    // here (EOI, spurious vector, timer) have no memory-safety effect.
    unsafe { ((BASE + reg) as *mut u32).write_volatile(v) };
}

/// This CPU's local APIC id (xAPIC: bits 31:24 of the ID register), where
/// device interrupts are sent.
pub fn id() -> u8 {
    // SAFETY: as in `write`: the ID register of this CPU's local APIC,
    // mapped uncached; a 32-bit aligned load has no side effect.
    let v = unsafe { ((BASE + REG_ID) as *const u32).read_volatile() };
    (v >> 24) as u8
}

fn read(reg: u64) -> u32 {
    // SAFETY: as in `write`: a register of this CPU's local APIC, mapped
    // uncached; the registers read here (the timer's count) have no side
    // effect on reading.
    unsafe { ((BASE + reg) as *const u32).read_volatile() }
}

/// Software-enables the local APIC and readies its timer on
/// [`TIMER_VECTOR`]: one-shot, after counting how fast it runs against the
/// hypervisor's clock (periodic, with [`INITIAL_COUNT`], if it does not
/// count). Interrupts stay disabled on the host: the timer arrives only
/// while a guest runs (and ends its slice) or while the CPU idles.
pub fn start_timer() {
    write(
        REG_SPURIOUS,
        SPURIOUS_APIC_ENABLE | u32::from(SPURIOUS_VECTOR),
    );
    write(REG_TIMER_DIVIDE, DIVIDE_BY_16);
    write(REG_LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
    write(REG_TIMER_INITIAL, u32::MAX);
    let t0 = super::time::now_ns();
    let mut elapsed = 0;
    while elapsed < CALIBRATION_NS {
        core::hint::spin_loop();
        elapsed = super::time::now_ns().saturating_sub(t0);
    }
    let counted = u64::from(u32::MAX - read(REG_TIMER_CURRENT));
    write(REG_TIMER_INITIAL, 0);
    let per_ms = counted * 1_000_000 / elapsed.max(1);
    if per_ms == 0 {
        write(REG_LVT_TIMER, LVT_PERIODIC | u32::from(TIMER_VECTOR));
        write(REG_TIMER_INITIAL, INITIAL_COUNT);
        log::warn!(
            "sched: the LAPIC timer did not count against the clock; periodic instead (initial count {INITIAL_COUNT:#x}, divide 16)"
        );
        return;
    }
    COUNTS_PER_MS.store(per_ms, Ordering::Relaxed);
    ARMED.store(u64::MAX, Ordering::Relaxed);
    write(REG_LVT_TIMER, u32::from(TIMER_VECTOR));
    log::info!(
        "sched: LAPIC timer vector {TIMER_VECTOR:#x}, one-shot, {per_ms} counts per ms (divide 16)"
    );
}

/// Arms the one-shot timer for system time `deadline` (at least
/// [`MIN_ARM_NS`] and at most [`MAX_ARM_NS`] from now), replacing what it
/// was armed for. Nothing where the timer is periodic.
pub fn arm(deadline: u64) {
    let per_ms = COUNTS_PER_MS.load(Ordering::Relaxed);
    if per_ms == 0 {
        return;
    }
    let now = super::time::now_ns();
    let dt = deadline.saturating_sub(now).clamp(MIN_ARM_NS, MAX_ARM_NS);
    let counts = (u128::from(dt) * u128::from(per_ms) / 1_000_000).clamp(1, u128::from(u32::MAX));
    ARMED.store(now + dt, Ordering::Relaxed);
    write(REG_TIMER_INITIAL, counts as u32);
}

/// Arms the one-shot timer for `deadline` if it is not armed for then or
/// earlier already.
pub fn arm_by(deadline: u64) {
    if deadline < ARMED.load(Ordering::Relaxed) {
        arm(deadline);
    }
}

/// Handles host interrupt `vector`, delivered through the IDT or already
/// acknowledged by a VM exit: the timer gets its EOI and a tick; the
/// spurious vector gets nothing. Returns `false` for any other vector
/// (which still gets an EOI, so that it cannot block lower priorities).
pub fn interrupt(vector: u8) -> bool {
    match vector {
        SPURIOUS_VECTOR => true,
        TIMER_VECTOR => {
            ARMED.store(u64::MAX, Ordering::Relaxed);
            TICK.store(true, Ordering::Release);
            write(REG_EOI, 0);
            true
        }
        v if (hv::irqroute::FIRST_VECTOR..=hv::irqroute::LAST_VECTOR).contains(&v) => {
            // A passed-through function's interrupt: recorded for the exit
            // path, which raises the owner's pirq. An INTx line is masked
            // at its I/O APIC first (it stays asserted until the guest has
            // served the device), so the EOI can go now in either case.
            crate::intx::mask_from_interrupt(v);
            DEVICE[usize::from(v / 64)].fetch_or(1 << (v % 64), Ordering::AcqRel);
            write(REG_EOI, 0);
            true
        }
        _ => {
            write(REG_EOI, 0);
            false
        }
    }
}

/// Whether a device vector fired since the last [`take_device_vectors`].
pub fn device_pending() -> bool {
    DEVICE.iter().any(|w| w.load(Ordering::Acquire) != 0)
}

/// The device vectors that fired since the last call, cleared.
pub fn take_device_vectors() -> impl Iterator<Item = u8> {
    let words: [u64; 4] = core::array::from_fn(|i| DEVICE[i].swap(0, Ordering::AcqRel));
    (0..=255u8).filter(move |&v| words[usize::from(v / 64)] & (1 << (v % 64)) != 0)
}

/// Whether the timer fired since the last call.
pub fn take_tick() -> bool {
    TICK.swap(false, Ordering::AcqRel)
}

/// Halts the CPU until the next interrupt (the timer's, at the latest) and
/// takes the tick: the idle loop when no domain can run.
pub fn wait_for_tick() {
    // SAFETY: interrupts are enabled only for the HLT (STI's one-instruction
    // shadow covers it, so no interrupt is lost between the two); the IDT
    // handles every vector, and the timer's handler only records the tick.
    unsafe { core::arch::asm!("sti", "hlt", "cli", options(nomem, nostack)) };
    take_tick();
}
