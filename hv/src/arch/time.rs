//! The host clock: the TSC frequency measured at boot, a monotonic
//! nanosecond clock on the TSC (with the pvclock arithmetic guests use, so
//! hypervisor and guests agree to the nanosecond), and the time of day
//! from the CMOS RTC.
//!
//! Calibration counts TSC cycles over a known interval of the 8254 PIT's
//! channel 2 (1.193182 MHz): gate on through port 0x61, mode 0 (interrupt
//! on terminal count) with the counter loaded for 10 ms, then poll the
//! channel's output bit in port 0x61, which rises when the count reaches
//! zero. Best of three windows. When the PIT does not answer (output
//! stuck, or never rising), CPUID leaf 0x15 (crystal clock and TSC ratio)
//! is used when it reports the crystal, then the ACPI PM timer (3.579545
//! MHz) when the caller knows its port, then CPUID leaf 0x16's base
//! frequency. Under emulators whose TSC follows executed instructions
//! (Bochs) the figure is that of the emulated PIT, which is what keeps the
//! clock self-consistent there.

// Guest time and the timer code use the clock from `domain`; until every
// accessor has its caller the binary would warn about the others.
#![allow(dead_code)]

use core::arch::asm;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::cpu::{cpuid, inb, outb, rdtsc};
use hv::pvclock::{scale_delta, scale_for, unscale_delta, NSEC_PER_SEC};
use hv::rtc::{self, RtcRegs};

/// The PIT's input clock, Hz.
const PIT_HZ: u64 = 1_193_182;
/// The ACPI PM timer's clock, Hz.
const PM_TIMER_HZ: u64 = 3_579_545;
/// One calibration window, ms.
const WINDOW_MS: u64 = 10;
/// Windows measured; the shortest in TSC cycles wins (it had the fewest
/// interruptions: SMIs, emulator hiccups).
const WINDOWS: usize = 3;
/// Reads of port 0x61 after which a PIT that has not counted down is
/// taken as dead (tens of ms on hardware, where one read is ~1 us).
const PIT_MAX_POLLS: u32 = 5_000_000;
/// TSC rates below this are taken as a failed measurement.
const MIN_PLAUSIBLE_HZ: u64 = 100_000;

const PORT_PIT_CH2: u16 = 0x42;
const PORT_PIT_CMD: u16 = 0x43;
const PORT_SYS_CTRL_B: u16 = 0x61;
/// Port 0x61: gate of PIT channel 2.
const CTRL_B_GATE2: u8 = 1 << 0;
/// Port 0x61: speaker data enable (kept off).
const CTRL_B_SPEAKER: u8 = 1 << 1;
/// Port 0x61: output of PIT channel 2 (read-only).
const CTRL_B_OUT2: u8 = 1 << 5;
/// PIT command: channel 2 (bits 7-6 = 10), low then high byte (5-4 = 11),
/// mode 0 (3-1 = 000), binary (0 = 0).
const PIT_CH2_MODE0_LOHI: u8 = 0b1011_0000;

const PORT_CMOS_INDEX: u16 = 0x70;
const PORT_CMOS_DATA: u16 = 0x71;
const CMOS_STATUS_A: u8 = 0x0a;
const CMOS_STATUS_B: u8 = 0x0b;
/// Status register A: an update of the time registers is in progress.
const CMOS_A_UIP: u8 = 1 << 7;

static TSC_HZ: AtomicU64 = AtomicU64::new(0);
static TSC0: AtomicU64 = AtomicU64::new(0);
/// `tsc_to_system_mul` in the low 32 bits, `tsc_shift` in the next 8.
static SCALE: AtomicU64 = AtomicU64::new(0);
static WALL_SEC: AtomicU64 = AtomicU64::new(0);
static WALL_NSEC: AtomicU32 = AtomicU32::new(0);

/// What the platform tables know that calibration can use (ACPI's FADT).
#[derive(Clone, Copy, Debug, Default)]
pub struct Hints {
    /// The PM timer's I/O port (`PM_TMR_BLK`), if there is one.
    pub pm_timer_port: Option<u16>,
    /// The PM timer counts 32 bits (`TMR_VAL_EXT`), else 24.
    pub pm_timer_32bit: bool,
    /// The CMOS index of the century register (FADT `CENTURY`), if any.
    pub rtc_century_index: Option<u8>,
}

/// Where the TSC frequency came from.
#[derive(Clone, Copy, Debug)]
enum Source {
    Pit { ms: u64 },
    Cpuid15,
    PmTimer { ms: u64 },
    Cpuid16,
    Guess,
}

/// Calibrates the TSC without platform hints and starts the clock; see
/// [`init_with`].
pub fn init() {
    init_with(Hints::default());
}

/// Calibrates the TSC, starts the clock ([`now_ns`] is 0 here) and reads
/// the wallclock from the RTC. Logs one line for each.
pub fn init_with(hints: Hints) {
    let (hz, source) = calibrate(&hints);
    let (mul, shift) = scale_for(hz);
    SCALE.store(
        u64::from(mul) | (u64::from(shift as u8) << 32),
        Ordering::Relaxed,
    );
    TSC_HZ.store(hz, Ordering::Relaxed);
    TSC0.store(rdtsc(), Ordering::Relaxed);
    let mhz = (hz + 500_000) / 1_000_000;
    match source {
        Source::Pit { ms } => {
            log::info!("time: TSC {mhz} MHz (calibrated against the PIT over {ms} ms)")
        }
        Source::PmTimer { ms } => log::info!(
            "time: TSC {mhz} MHz (the PIT does not count; calibrated against the ACPI PM timer over {ms} ms)"
        ),
        Source::Cpuid15 => {
            log::info!("time: TSC {mhz} MHz (the PIT does not count; from CPUID leaf 0x15)")
        }
        Source::Cpuid16 => log::warn!(
            "time: TSC {mhz} MHz (the PIT does not count; CPUID leaf 0x16's base frequency, not measured)"
        ),
        Source::Guess => log::warn!(
            "time: TSC frequency unknown (no PIT, PM timer or CPUID leaf); assuming {mhz} MHz, guest clocks will drift"
        ),
    }
    log::debug!("time: TSC {hz} Hz, pvclock mul {mul:#x} shift {shift}");
    read_wallclock(hints.rtc_century_index);
}

/// The TSC frequency, Hz (0 before [`init`]).
pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// The pvclock `tsc_to_system_mul` and `tsc_shift` for the host TSC.
pub fn scale() -> (u32, i8) {
    let s = SCALE.load(Ordering::Relaxed);
    (s as u32, (s >> 32) as u8 as i8)
}

/// Nanoseconds since [`init`], monotonic (0 before it).
pub fn now_ns() -> u64 {
    let (mul, shift) = scale();
    scale_delta(
        rdtsc().saturating_sub(TSC0.load(Ordering::Relaxed)),
        mul,
        shift,
    )
}

/// A TSC reading and the [`now_ns`] value it stands for, taken together:
/// what a `vcpu_time_info` update needs.
pub fn stamp() -> (u64, u64) {
    let (mul, shift) = scale();
    let tsc = rdtsc();
    let ns = scale_delta(tsc.saturating_sub(TSC0.load(Ordering::Relaxed)), mul, shift);
    (tsc, ns)
}

/// The TSC value at which [`now_ns`] reaches `ns` (for deadlines: the TSC
/// deadline or VMX-preemption timer). `tsc_at_ns(0)` is the TSC at
/// [`init`]. Saturates at `u64::MAX`.
pub fn tsc_at_ns(ns: u64) -> u64 {
    let (mul, shift) = scale();
    let tsc0 = TSC0.load(Ordering::Relaxed);
    if ns == 0 {
        return tsc0;
    }
    tsc0.saturating_add(unscale_delta(ns, mul, shift))
}

/// The time of day at system time 0 ([`now_ns`] = 0), as seconds since
/// 1970-01-01 UTC and nanoseconds: what Xen's shared-info wallclock holds.
/// (0, 0) when the RTC could not be read. The RTC counts whole seconds,
/// so this is accurate to about a second.
pub fn boot_wallclock() -> (u64, u32) {
    (
        WALL_SEC.load(Ordering::Relaxed),
        WALL_NSEC.load(Ordering::Relaxed),
    )
}

fn calibrate(hints: &Hints) -> (u64, Source) {
    if let Some(hz) = calibrate_pit() {
        return (hz, Source::Pit { ms: WINDOW_MS });
    }
    if let Some(hz) = cpuid_15() {
        return (hz, Source::Cpuid15);
    }
    if let Some(port) = hints.pm_timer_port {
        if let Some(hz) = calibrate_pm_timer(port, hints.pm_timer_32bit) {
            return (hz, Source::PmTimer { ms: WINDOW_MS });
        }
    }
    if let Some(hz) = cpuid_16() {
        return (hz, Source::Cpuid16);
    }
    (1_000_000_000, Source::Guess)
}

/// TSC cycles for `window` of a reference clock at `ref_hz`, as Hz.
fn hz_from(cycles: u64, ref_ticks: u64, ref_hz: u64) -> Option<u64> {
    let hz = u128::from(cycles) * u128::from(ref_hz) / u128::from(ref_ticks.max(1));
    u64::try_from(hz).ok().filter(|&h| h >= MIN_PLAUSIBLE_HZ)
}

fn calibrate_pit() -> Option<u64> {
    let ticks = PIT_HZ * WINDOW_MS / 1000;
    let saved = inb(PORT_SYS_CTRL_B);
    let mut best: Option<u64> = None;
    for _ in 0..WINDOWS {
        let Some(cycles) = pit_window(saved, ticks as u16) else {
            best = None;
            break;
        };
        best = Some(best.map_or(cycles, |b| b.min(cycles)));
    }
    // Gate and speaker as they were.
    outb(PORT_SYS_CTRL_B, saved & 0x0f);
    hz_from(best?, ticks, PIT_HZ)
}

/// One mode-0 countdown of `count` PIT ticks on channel 2; the TSC cycles
/// it took, or `None` if the output does not behave like a PIT's.
fn pit_window(saved: u8, count: u16) -> Option<u64> {
    // Gate high (mode 0 counts while it is), speaker off; only bits 0-3 of
    // port 0x61 are writable.
    outb(
        PORT_SYS_CTRL_B,
        (saved & 0x0f & !CTRL_B_SPEAKER) | CTRL_B_GATE2,
    );
    // Writing the mode sets OUT low; the count starts on the clock edge
    // after its high byte is written.
    outb(PORT_PIT_CMD, PIT_CH2_MODE0_LOHI);
    outb(PORT_PIT_CH2, count as u8);
    outb(PORT_PIT_CH2, (count >> 8) as u8);
    let start = rdtsc();
    // A PIT whose output is already high is not there.
    if inb(PORT_SYS_CTRL_B) & CTRL_B_OUT2 != 0 {
        return None;
    }
    for _ in 0..PIT_MAX_POLLS {
        if inb(PORT_SYS_CTRL_B) & CTRL_B_OUT2 != 0 {
            return Some(rdtsc().wrapping_sub(start));
        }
    }
    None
}

fn inl(port: u16) -> u32 {
    let v: u32;
    // SAFETY: reading the ACPI PM timer's counter port (named by the FADT)
    // has no side effect on memory or on the device.
    unsafe {
        asm!("in eax, dx", out("eax") v, in("dx") port, options(nomem, nostack, preserves_flags))
    };
    v
}

fn calibrate_pm_timer(port: u16, bits32: bool) -> Option<u64> {
    let mask: u32 = if bits32 { u32::MAX } else { 0x00ff_ffff };
    let ticks = PM_TIMER_HZ * WINDOW_MS / 1000;
    let mut best: Option<u64> = None;
    for _ in 0..WINDOWS {
        let p0 = inl(port) & mask;
        let t0 = rdtsc();
        let mut polls = 0u32;
        let (elapsed, t1) = loop {
            let p = inl(port) & mask;
            let t = rdtsc();
            let e = u64::from(p.wrapping_sub(p0) & mask);
            if e >= ticks {
                break (e, t);
            }
            polls += 1;
            if polls >= PIT_MAX_POLLS {
                return None;
            }
        };
        // Normalise to the nominal window so windows compare.
        let cycles = u128::from(t1.wrapping_sub(t0)) * u128::from(ticks) / u128::from(elapsed);
        let cycles = u64::try_from(cycles).ok()?;
        best = Some(best.map_or(cycles, |b| b.min(cycles)));
    }
    hz_from(best?, ticks, PM_TIMER_HZ)
}

/// CPUID leaf 0x15: TSC = crystal * EBX / EAX, when the crystal is given.
fn cpuid_15() -> Option<u64> {
    if cpuid(0, 0).eax < 0x15 {
        return None;
    }
    let r = cpuid(0x15, 0);
    if r.eax == 0 || r.ebx == 0 || r.ecx == 0 {
        return None;
    }
    let hz = u64::from(r.ecx) * u64::from(r.ebx) / u64::from(r.eax);
    (hz >= MIN_PLAUSIBLE_HZ).then_some(hz)
}

/// CPUID leaf 0x16: the processor base frequency in MHz.
fn cpuid_16() -> Option<u64> {
    if cpuid(0, 0).eax < 0x16 {
        return None;
    }
    let mhz = u64::from(cpuid(0x16, 0).eax & 0xffff);
    (mhz > 0).then_some(mhz * 1_000_000)
}

fn cmos_read(index: u8) -> u8 {
    // Bit 7 of the index port keeps NMIs masked, as firmware leaves them.
    outb(PORT_CMOS_INDEX, index | 0x80);
    inb(PORT_CMOS_DATA)
}

fn rtc_snapshot(century: Option<u8>) -> RtcRegs {
    RtcRegs {
        sec: cmos_read(0x00),
        min: cmos_read(0x02),
        hour: cmos_read(0x04),
        day: cmos_read(0x07),
        month: cmos_read(0x08),
        year: cmos_read(0x09),
        century: century.map(cmos_read),
        status_b: cmos_read(CMOS_STATUS_B),
    }
}

/// Reads the RTC between updates: waits for update-in-progress to clear
/// (bounded), then reads until two snapshots agree.
fn read_rtc(century: Option<u8>) -> Option<RtcRegs> {
    let mut prev: Option<RtcRegs> = None;
    for _ in 0..16 {
        let mut polls = 0u32;
        while cmos_read(CMOS_STATUS_A) & CMOS_A_UIP != 0 {
            polls += 1;
            if polls >= PIT_MAX_POLLS {
                return None;
            }
        }
        let now = rtc_snapshot(century);
        if prev == Some(now) {
            return Some(now);
        }
        prev = Some(now);
    }
    None
}

fn read_wallclock(century: Option<u8>) {
    let Some(date) = read_rtc(century).and_then(|r| rtc::decode(&r)) else {
        log::warn!("time: the CMOS RTC does not hold a valid date; guests see a wallclock of 1970");
        return;
    };
    let at_ns = now_ns();
    let Some(secs) = rtc::epoch_secs(&date) else {
        return;
    };
    // The RTC's reading is taken `at_ns` after system time 0.
    let boot_ns = u128::from(secs) * u128::from(NSEC_PER_SEC)
        - u128::from(at_ns).min(u128::from(secs) * u128::from(NSEC_PER_SEC));
    let sec = (boot_ns / u128::from(NSEC_PER_SEC)) as u64;
    let nsec = (boot_ns % u128::from(NSEC_PER_SEC)) as u32;
    WALL_SEC.store(sec, Ordering::Relaxed);
    WALL_NSEC.store(nsec, Ordering::Relaxed);
    log::info!("time: wallclock {date} (CMOS RTC)");
}
