//! The host clock: the TSC frequency measured at boot, a monotonic
//! nanosecond clock on the TSC (with the pvclock arithmetic guests use, so
//! hypervisor and guests agree to the nanosecond), and the time of day
//! from the CMOS RTC.
//!
//! Calibration measures the TSC against channel 2 of the 8254 PIT
//! (1.193182 MHz): gate on through port 0x61, mode 0 counting down from
//! 0xFFFF, the count latched and read at the start and after 10 ms, each
//! reading bracketed by two TSC reads (the narrowest of five brackets is
//! kept). The TSC cycles between the two readings over the PIT ticks
//! between them is the frequency; as the ticks are counted rather than
//! assumed, time lost while waiting (an SMI, the emulator's host
//! descheduling it) does not skew it. The median of three windows is
//! used. When the PIT does not count, CPUID leaf 0x15 (crystal clock and
//! TSC ratio) is used when it reports the crystal, then the ACPI PM timer
//! (3.579545 MHz, measured the same way) when the caller knows its port,
//! then CPUID leaf 0x16's base frequency. Under emulators whose TSC
//! follows executed instructions (Bochs) the figure is the TSC's rate in
//! the emulated PIT's time, which is what keeps the
//! clock self-consistent there.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use vmm_glue::log;

use super::cpu::{cpuid, inb, outb, rdtsc};
use hv::calibrate::{self, CalibrateError, Reference};
use hv::pvclock::{scale_delta, scale_for, unscale_delta, NSEC_PER_SEC};
use hv::rtc::{self, RtcRegs};

/// The PIT's input clock, Hz.
const PIT_HZ: u64 = 1_193_182;
/// The ACPI PM timer's clock, Hz.
const PM_TIMER_HZ: u64 = 3_579_545;
/// One calibration window, ms.
const WINDOW_MS: u64 = 10;
/// Windows measured; the median is used.
const WINDOWS: usize = 3;
/// Reads after which a reference counter that has not advanced far enough
/// is taken as dead (about a second on hardware, where a port read takes
/// about a microsecond).
const MAX_POLLS: u32 = 1_000_000;
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
/// PIT command: latch channel 2's count (bits 7-6 = 10, 5-4 = 00).
const PIT_CH2_LATCH: u8 = 0b1000_0000;

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
    let mhz = hz.saturating_add(500_000) / 1_000_000;
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
#[allow(dead_code, reason = "for the host timer's deadline programming")]
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
/// [`init`]. Saturates at `u64::MAX` (which is also the answer before
/// [`init`]).
#[allow(dead_code, reason = "for the host timer's deadline programming")]
pub fn tsc_at_ns(ns: u64) -> u64 {
    let (mul, shift) = scale();
    TSC0.load(Ordering::Relaxed)
        .saturating_add(unscale_delta(ns, mul, shift))
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

fn calibrate_pit() -> Option<u64> {
    let saved = inb(PORT_SYS_CTRL_B);
    let hz = calibrate::median::<WINDOWS>(|| pit_window(saved));
    // Gate and speaker as they were.
    outb(PORT_SYS_CTRL_B, saved & 0x0f);
    hz.ok()
}

/// Channel 2's count, latched so both bytes belong to the same moment.
fn pit_count() -> u32 {
    outb(PORT_PIT_CMD, PIT_CH2_LATCH);
    let lo = inb(PORT_PIT_CH2);
    let hi = inb(PORT_PIT_CH2);
    u32::from(u16::from_le_bytes([lo, hi]))
}

/// One window: channel 2 counts down from 0xFFFF in mode 0 (55 ms to
/// zero, when OUT rises); the TSC is measured over the first
/// [`WINDOW_MS`] of it.
fn pit_window(saved: u8) -> Result<u64, CalibrateError> {
    // Gate high (mode 0 counts while it is), speaker off; only bits 0-3 of
    // port 0x61 are writable.
    outb(
        PORT_SYS_CTRL_B,
        (saved & 0x0f & !CTRL_B_SPEAKER) | CTRL_B_GATE2,
    );
    // Writing the mode sets OUT low; the count starts on the clock edge
    // after its high byte is written.
    outb(PORT_PIT_CMD, PIT_CH2_MODE0_LOHI);
    outb(PORT_PIT_CH2, 0xff);
    outb(PORT_PIT_CH2, 0xff);
    // Until the new count is loaded a read may return the old one: wait
    // for two readings of a count that has started down from 0xFFFF.
    let mut polls = 0u32;
    let mut prev = pit_count();
    loop {
        let now = pit_count();
        if (0xf000..0xfff8).contains(&now) && now <= prev {
            break;
        }
        prev = now;
        polls += 1;
        if polls >= MAX_POLLS {
            return Err(CalibrateError::NotCounting);
        }
    }
    let mut pit = Reference {
        read: pit_count,
        elapsed: calibrate::down_counter(16),
        hz: PIT_HZ,
    };
    let ticks = PIT_HZ * WINDOW_MS / 1000;
    let hz = calibrate::measure(&mut rdtsc, &mut pit, ticks, MAX_POLLS, MIN_PLAUSIBLE_HZ)?;
    // OUT still low: the count has not passed zero, so the elapsed ticks
    // did not wrap (the window was not stretched past 55 ms).
    if inb(PORT_SYS_CTRL_B) & CTRL_B_OUT2 != 0 {
        return Err(CalibrateError::NotCounting);
    }
    Ok(hz)
}

fn calibrate_pm_timer(port: u16, bits32: bool) -> Option<u64> {
    let bits = if bits32 { 32 } else { 24 };
    calibrate::median::<WINDOWS>(|| {
        let mut pm = Reference {
            read: || super::cpu::inl(port),
            elapsed: calibrate::up_counter(bits),
            hz: PM_TIMER_HZ,
        };
        let ticks = PM_TIMER_HZ * WINDOW_MS / 1000;
        calibrate::measure(&mut rdtsc, &mut pm, ticks, MAX_POLLS, MIN_PLAUSIBLE_HZ)
    })
    .ok()
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

fn read_wallclock(century: Option<u8>) {
    let Some(date) = rtc::read_consistent(
        || cmos_read(CMOS_STATUS_A) & CMOS_A_UIP != 0,
        || rtc_snapshot(century),
        MAX_POLLS,
    )
    .and_then(|r| rtc::decode(&r)) else {
        log::warn!("time: the CMOS RTC does not hold a valid date; guests see a wallclock of 1970");
        return;
    };
    let at_ns = now_ns();
    let Some(secs) = rtc::epoch_secs(&date) else {
        return;
    };
    // The RTC was read `at_ns` after system time 0.
    let boot_ns = (u128::from(secs) * u128::from(NSEC_PER_SEC)).saturating_sub(u128::from(at_ns));
    let sec = (boot_ns / u128::from(NSEC_PER_SEC)) as u64;
    let nsec = (boot_ns % u128::from(NSEC_PER_SEC)) as u32;
    WALL_SEC.store(sec, Ordering::Relaxed);
    WALL_NSEC.store(nsec, Ordering::Relaxed);
    log::info!("time: wallclock {date} (CMOS RTC)");
}
