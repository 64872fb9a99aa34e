//! Measuring the TSC against a reference counter of known frequency (the
//! PIT, the ACPI PM timer), written over closures so the method is tested
//! on the host against a simulated machine; `arch::time` supplies the port
//! reads and RDTSC.
//!
//! The method: read the reference with a TSC read on each side, keeping the
//! narrowest of a few such brackets; wait until enough reference ticks
//! have passed; read it again the same way; the frequency is the TSC
//! cycles between the two bracket midpoints over the reference ticks
//! actually elapsed between the two readings. Waiting longer than planned
//! (an SMI, an emulator's host descheduling it) changes both counts alike
//! and so does not skew the result; only a stretched read could, and the
//! narrowest bracket filters those out.

use core::fmt;

/// Reads that make one sample; the narrowest bracket is kept.
pub const SAMPLE_TRIES: usize = 5;

/// Why a measurement failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CalibrateError {
    /// The reference did not advance far enough within the poll budget:
    /// it is absent or stopped.
    NotCounting,
    /// The result is below the plausible minimum (or does not fit).
    Implausible,
}

impl fmt::Display for CalibrateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotCounting => f.write_str("the reference counter does not count"),
            Self::Implausible => f.write_str("the measured TSC rate is implausible"),
        }
    }
}

/// A reference counter and how to read it.
pub struct Reference<R, E> {
    /// Reads the counter.
    pub read: R,
    /// Ticks from one reading to a later one (handles the counter's width
    /// and direction).
    pub elapsed: E,
    /// The counter's frequency, Hz.
    pub hz: u64,
}

impl<R, E> fmt::Debug for Reference<R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reference").field("hz", &self.hz).finish()
    }
}

/// One reading of the reference, bracketed by two TSC reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// The TSC halfway through the read.
    pub tsc: u64,
    /// TSC cycles the read took: its uncertainty.
    pub width: u64,
    /// The counter's value.
    pub value: u32,
}

/// The narrowest of [`SAMPLE_TRIES`] bracketed readings.
pub fn sample(tsc: &mut impl FnMut() -> u64, read: &mut impl FnMut() -> u32) -> Sample {
    let mut best = Sample {
        tsc: 0,
        width: u64::MAX,
        value: 0,
    };
    for _ in 0..SAMPLE_TRIES {
        let t0 = tsc();
        let value = read();
        let width = tsc().wrapping_sub(t0);
        if width < best.width || best.width == u64::MAX {
            best = Sample {
                tsc: t0.wrapping_add(width / 2),
                width,
                value,
            };
        }
    }
    best
}

/// The TSC frequency in Hz, measured over at least `ticks` of the
/// reference, polling it at most `max_polls` times while waiting; results
/// under `min_hz` are refused.
pub fn measure<R, E>(
    tsc: &mut impl FnMut() -> u64,
    reference: &mut Reference<R, E>,
    ticks: u64,
    max_polls: u32,
    min_hz: u64,
) -> Result<u64, CalibrateError>
where
    R: FnMut() -> u32,
    E: Fn(u32, u32) -> u64,
{
    let a = sample(tsc, &mut reference.read);
    let mut polls = 0u32;
    while (reference.elapsed)(a.value, (reference.read)()) < ticks {
        polls += 1;
        if polls >= max_polls {
            return Err(CalibrateError::NotCounting);
        }
    }
    let b = sample(tsc, &mut reference.read);
    let ref_ticks = (reference.elapsed)(a.value, b.value);
    if ref_ticks < ticks {
        return Err(CalibrateError::NotCounting);
    }
    let cycles = b.tsc.wrapping_sub(a.tsc);
    let hz = u128::from(cycles) * u128::from(reference.hz) / u128::from(ref_ticks);
    u64::try_from(hz)
        .ok()
        .filter(|&h| h >= min_hz)
        .ok_or(CalibrateError::Implausible)
}

/// The median of `N` results of `window` (odd `N`); the first error ends
/// it.
pub fn median<const N: usize>(
    mut window: impl FnMut() -> Result<u64, CalibrateError>,
) -> Result<u64, CalibrateError> {
    let mut hz = [0u64; N];
    for h in &mut hz {
        *h = window()?;
    }
    hz.sort_unstable();
    hz.get(N / 2).copied().ok_or(CalibrateError::NotCounting)
}

/// Ticks of a down-counter of `bits` bits (the PIT: 16) from `from` to
/// `to`.
pub fn down_counter(bits: u32) -> impl Fn(u32, u32) -> u64 {
    let mask = mask(bits);
    move |from, to| u64::from(from.wrapping_sub(to) & mask)
}

/// Ticks of an up-counter of `bits` bits (the PM timer: 24 or 32).
pub fn up_counter(bits: u32) -> impl Fn(u32, u32) -> u64 {
    let mask = mask(bits);
    move |from, to| u64::from(to.wrapping_sub(from) & mask)
}

fn mask(bits: u32) -> u32 {
    u32::MAX
        .checked_shr(32 - bits.clamp(1, 32))
        .unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    /// A machine in simulated nanoseconds: each TSC or port read costs
    /// time, and chosen reads are stretched (an SMI, a descheduled
    /// emulator).
    struct Machine {
        now_ps: Cell<u128>,
        reads: Cell<u32>,
        tsc_hz: u64,
        /// (read number, extra picoseconds) stalls.
        stalls: Vec<(u32, u128)>,
    }

    impl Machine {
        fn new(tsc_hz: u64, stalls: Vec<(u32, u128)>) -> Rc<Self> {
            Rc::new(Self {
                now_ps: Cell::new(123_456_789),
                reads: Cell::new(0),
                tsc_hz,
                stalls,
            })
        }
        fn tick(&self, ps: u128) {
            let n = self.reads.get() + 1;
            self.reads.set(n);
            let stall: u128 = self.stalls.iter().filter(|s| s.0 == n).map(|s| s.1).sum();
            self.now_ps.set(self.now_ps.get() + ps + stall);
        }
        fn tsc(&self) -> u64 {
            self.tick(20_000);
            (self.now_ps.get() * u128::from(self.tsc_hz) / 1_000_000_000_000) as u64
        }
        /// A port read: half its cost before the counter is sampled.
        fn counter(&self, hz: u64, bits: u32, down: bool) -> u32 {
            self.tick(500_000);
            let t = (self.now_ps.get() * u128::from(hz) / 1_000_000_000_000) as u32;
            self.tick(500_000);
            let v = if down { 0u32.wrapping_sub(t) } else { t };
            v & mask(bits)
        }
    }

    const PIT: u64 = 1_193_182;
    const PM: u64 = 3_579_545;

    fn run_pit(m: &Rc<Machine>) -> Result<u64, CalibrateError> {
        let (m1, m2) = (m.clone(), m.clone());
        let mut r = Reference {
            read: move || m1.counter(PIT, 16, true),
            elapsed: down_counter(16),
            hz: PIT,
        };
        measure(&mut || m2.tsc(), &mut r, PIT / 100, 1_000_000, 100_000)
    }

    fn ppm(got: u64, want: u64) -> f64 {
        (got as f64 - want as f64).abs() / want as f64 * 1e6
    }

    #[test]
    fn pit_measures_the_tsc_within_200_ppm() {
        for hz in [50_000_000u64, 1_996_249_000, 3_000_000_000] {
            let m = Machine::new(hz, vec![]);
            let got = run_pit(&m).unwrap();
            assert!(ppm(got, hz) < 200.0, "{hz}: {got}");
        }
    }

    #[test]
    fn a_stall_while_waiting_does_not_skew_it() {
        // 5 ms lost in the middle of the wait: the window is 15 ms long,
        // but both counts see it.
        let m = Machine::new(2_000_000_000, vec![(200, 5_000_000_000)]);
        let got = run_pit(&m).unwrap();
        assert!(ppm(got, 2_000_000_000) < 200.0, "{got}");
    }

    #[test]
    fn a_stretched_read_is_not_the_one_kept() {
        // The first read of the first sample is stretched by 3 ms.
        let m = Machine::new(2_000_000_000, vec![(2, 3_000_000_000)]);
        let got = run_pit(&m).unwrap();
        assert!(ppm(got, 2_000_000_000) < 200.0, "{got}");
    }

    #[test]
    fn pm_timer_24_bit_across_its_wrap() {
        let m = Machine::new(2_500_000_000, vec![]);
        // Start just before the 24-bit counter wraps.
        m.now_ps
            .set(((1u128 << 24) - 1000) * 1_000_000_000_000 / u128::from(PM));
        let (m1, m2) = (m.clone(), m.clone());
        let mut r = Reference {
            read: move || m1.counter(PM, 24, false),
            elapsed: up_counter(24),
            hz: PM,
        };
        let got = measure(&mut || m2.tsc(), &mut r, PM / 100, 1_000_000, 1).unwrap();
        assert!(ppm(got, 2_500_000_000) < 200.0, "{got}");
    }

    #[test]
    fn a_dead_counter_is_reported() {
        let m = Machine::new(2_000_000_000, vec![]);
        let mut r = Reference {
            read: || 0xffff,
            elapsed: down_counter(16),
            hz: PIT,
        };
        assert_eq!(
            measure(&mut || m.tsc(), &mut r, PIT / 100, 1000, 1),
            Err(CalibrateError::NotCounting)
        );
    }

    #[test]
    fn a_frozen_tsc_is_implausible() {
        let m = Machine::new(2_000_000_000, vec![]);
        let m1 = m.clone();
        let mut r = Reference {
            read: move || m1.counter(PIT, 16, true),
            elapsed: down_counter(16),
            hz: PIT,
        };
        assert_eq!(
            measure(&mut || 42, &mut r, PIT / 100, 1_000_000, 100_000),
            Err(CalibrateError::Implausible)
        );
    }

    #[test]
    fn median_takes_the_middle_and_stops_at_an_error() {
        let mut v = [30u64, 10, 20].into_iter();
        assert_eq!(
            median::<3>(|| v.next().ok_or(CalibrateError::NotCounting)),
            Ok(20)
        );
        let mut v = [30u64].into_iter();
        assert_eq!(
            median::<3>(|| v.next().ok_or(CalibrateError::NotCounting)),
            Err(CalibrateError::NotCounting)
        );
    }

    #[test]
    fn counters_wrap_at_their_width() {
        assert_eq!(down_counter(16)(0x0005, 0xfffe), 7);
        assert_eq!(up_counter(24)(0xff_fffe, 0x000003), 5);
        assert_eq!(up_counter(32)(u32::MAX, 1), 2);
        assert_eq!(mask(0), 1);
    }

    #[test]
    fn sample_keeps_the_narrowest_bracket() {
        let t = Cell::new(0u64);
        let widths = [50u64, 10, 30, 10, 40];
        let i = Cell::new(0usize);
        let mut tsc = || {
            let v = t.get();
            t.set(v + 1);
            v
        };
        let mut read = || {
            let k = i.get();
            i.set(k + 1);
            t.set(t.get() + widths[k]);
            k as u32
        };
        let s = sample(&mut tsc, &mut read);
        assert_eq!((s.value, s.width), (1, 11));
    }
}
