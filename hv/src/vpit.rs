//! Channel 2 of an i8254 PIT and the system control port B bits around it
//! (port 0x61: gate, speaker enable, OUT2), for a PVH domain.
//!
//! A PVH domain has no legacy timer: no channel 0, no interrupts, and the
//! ACPI tables say so ([`crate::pvh::acpi`]). But Linux measures the CPU
//! clock against PIT channel 2 before it reads any ACPI table or Xen leaf
//! (`quick_pit_calibrate` on a CPU that does not report its frequency in
//! CPUID, such as every AMD one), reading port 0x42 until the count's high
//! byte changes, at most 50,000 times per byte. With nothing there every
//! read is 0xff and it reads 100,000 times before it gives up, each read
//! an exit. Against a counter that counts, the same code finishes within
//! its own 25 ms budget, as on a PC or under Xen's emulated PIT of an HVM
//! guest.
//!
//! The channel counts at [`PIT_HZ`] from the hypervisor's clock while its
//! gate is high, in binary (a BCD control word counts in binary too).
//! Modes 0 and 1 count down once and wrap, OUT going high at the terminal
//! count; modes 2 and 3 reload from the count (mode 3 counting by two, OUT
//! high for the first half of each period). Counter latch and read-back
//! commands for channel 2 are honoured; control words for channels 0 and 1
//! are ignored (ports 0x40 and 0x41 stay absent).

/// The PIT's input clock.
pub const PIT_HZ: u64 = 1_193_182;

/// Port of channel 2's counter.
pub const PORT_COUNTER: u16 = 0x42;
/// Port of the mode/command register.
pub const PORT_COMMAND: u16 = 0x43;
/// System control port B.
pub const PORT_CONTROL_B: u16 = 0x61;

/// Port 0x61 bit 0: channel 2's gate.
const GATE: u8 = 1 << 0;
/// Port 0x61 bit 1: speaker data enable (kept, makes no sound).
const SPEAKER: u8 = 1 << 1;
/// Port 0x61 bit 5: channel 2's output.
const OUT2: u8 = 1 << 5;

/// How the counter's bytes are read and written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    Lo,
    Hi,
    LoHi,
}

/// PIT ticks at `ns` nanoseconds of hypervisor time.
pub fn ticks_at(ns: u64) -> u64 {
    (u128::from(ns) * u128::from(PIT_HZ) / 1_000_000_000) as u64
}

/// Channel 2 and port 0x61.
#[derive(Clone, Copy, Debug)]
pub struct Channel2 {
    /// Port 0x61 bits 0 and 1.
    control_b: u8,
    mode: u8,
    access: Access,
    /// The count written (0 stands for 65,536).
    reload: u16,
    /// The low byte of a low-then-high write, waiting for the high one.
    pending_lo: Option<u8>,
    /// A low-then-high read has returned the low byte.
    read_hi_next: bool,
    /// A latched count, read before the live one.
    latched: Option<u16>,
    /// Ticks counted before the gate last went low.
    counted: u64,
    /// When the gate last went high (or the count was loaded while high).
    since: Option<u64>,
    /// A count has been loaded since the last control word.
    loaded: bool,
}

impl Default for Channel2 {
    fn default() -> Self {
        Self {
            control_b: 0,
            mode: 0,
            access: Access::LoHi,
            reload: 0,
            pending_lo: None,
            read_hi_next: false,
            latched: None,
            counted: 0,
            since: None,
            loaded: false,
        }
    }
}

impl Channel2 {
    /// Whether this model answers `port`.
    pub fn handles(port: u16) -> bool {
        matches!(port, PORT_COUNTER | PORT_COMMAND | PORT_CONTROL_B)
    }

    fn period(&self) -> u64 {
        if self.reload == 0 {
            0x1_0000
        } else {
            u64::from(self.reload)
        }
    }

    /// Ticks counted since the count was loaded, at `now` (PIT ticks).
    fn elapsed(&self, now: u64) -> u64 {
        self.counted + self.since.map_or(0, |s| now.saturating_sub(s))
    }

    /// The count and OUT at `now`.
    fn state(&self, now: u64) -> (u16, bool) {
        if !self.loaded {
            return (self.reload, false);
        }
        let n = self.period();
        let t = self.elapsed(now);
        match self.mode {
            2 => {
                let c = n - t % n;
                ((c & 0xffff) as u16, c != 1)
            }
            3 => {
                let half = (2 * t) % n;
                let c = (n - half) & !1;
                let high = (t % n) < n.div_ceil(2);
                ((c & 0xffff) as u16, high)
            }
            _ => {
                let c = n.wrapping_sub(t) & 0xffff;
                (c as u16, t >= n)
            }
        }
    }

    fn set_gate(&mut self, high: bool, now: u64) {
        match (self.since, high) {
            (None, true) => {
                // Modes 1, 2 and 3 restart on a rising gate.
                if matches!(self.mode, 1..=3) {
                    self.counted = 0;
                }
                self.since = Some(now);
            }
            (Some(s), false) => {
                self.counted += now.saturating_sub(s);
                self.since = None;
            }
            _ => {}
        }
    }

    /// A read of `port` at `now` (PIT ticks); `None` for a port this model
    /// does not answer.
    pub fn read(&mut self, port: u16, now: u64) -> Option<u8> {
        match port {
            PORT_COUNTER => {
                let value = match self.latched {
                    Some(v) => v,
                    None => self.state(now).0,
                };
                let (byte, done) = match self.access {
                    Access::Lo => (value as u8, true),
                    Access::Hi => ((value >> 8) as u8, true),
                    Access::LoHi if !self.read_hi_next => {
                        self.read_hi_next = true;
                        (value as u8, false)
                    }
                    Access::LoHi => {
                        self.read_hi_next = false;
                        ((value >> 8) as u8, true)
                    }
                };
                if done {
                    self.latched = None;
                }
                Some(byte)
            }
            PORT_COMMAND => Some(0xff),
            PORT_CONTROL_B => {
                let out = if self.state(now).1 { OUT2 } else { 0 };
                Some(self.control_b | out)
            }
            _ => None,
        }
    }

    /// A write of `value` to `port` at `now` (PIT ticks); false for a port
    /// this model does not answer.
    pub fn write(&mut self, port: u16, value: u8, now: u64) -> bool {
        match port {
            PORT_COUNTER => {
                let count = match self.access {
                    Access::Lo => Some(u16::from(value)),
                    Access::Hi => Some(u16::from(value) << 8),
                    Access::LoHi => match self.pending_lo.take() {
                        Some(lo) => Some(u16::from(lo) | u16::from(value) << 8),
                        None => {
                            self.pending_lo = Some(value);
                            None
                        }
                    },
                };
                if let Some(c) = count {
                    self.reload = c;
                    self.loaded = true;
                    self.counted = 0;
                    if self.since.is_some() {
                        self.since = Some(now);
                    }
                }
            }
            PORT_COMMAND => self.command(value, now),
            PORT_CONTROL_B => {
                self.control_b = value & (GATE | SPEAKER);
                self.set_gate(value & GATE != 0, now);
            }
            _ => return false,
        }
        true
    }

    fn command(&mut self, value: u8, now: u64) {
        let channel = value >> 6;
        if channel == 3 {
            // Read-back: bit 5 clear latches the count of each selected
            // channel (bit 3 selects channel 2); the status is not kept.
            if value & (1 << 5) == 0 && value & (1 << 3) != 0 && self.latched.is_none() {
                self.latched = Some(self.state(now).0);
            }
            return;
        }
        if channel != 2 {
            return;
        }
        let access = (value >> 4) & 3;
        if access == 0 {
            if self.latched.is_none() {
                self.latched = Some(self.state(now).0);
            }
            return;
        }
        self.access = match access {
            1 => Access::Lo,
            2 => Access::Hi,
            _ => Access::LoHi,
        };
        // Modes 6 and 7 are 2 and 3.
        let mode = (value >> 1) & 7;
        self.mode = if mode >= 6 { mode - 4 } else { mode };
        self.pending_lo = None;
        self.read_hi_next = false;
        self.latched = None;
        self.loaded = false;
        self.counted = 0;
        if self.since.is_some() {
            self.since = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gate on, channel 2 in `mode`, low-then-high access, `count` loaded,
    /// all at tick `at`.
    fn started(mode: u8, count: u16, at: u64) -> Channel2 {
        let mut p = Channel2::default();
        assert!(p.write(PORT_CONTROL_B, GATE, at));
        assert!(p.write(PORT_COMMAND, 0b1011_0000 | mode << 1, at)); // channel 2, low then high
        assert!(p.write(PORT_COUNTER, count as u8, at));
        assert!(p.write(PORT_COUNTER, (count >> 8) as u8, at));
        p
    }

    fn count(p: &mut Channel2, now: u64) -> u16 {
        let lo = p.read(PORT_COUNTER, now).unwrap();
        let hi = p.read(PORT_COUNTER, now).unwrap();
        u16::from(lo) | u16::from(hi) << 8
    }

    #[test]
    fn ticks_follow_the_pit_clock() {
        assert_eq!(ticks_at(0), 0);
        assert_eq!(ticks_at(1_000_000_000), PIT_HZ);
        assert_eq!(ticks_at(1_000_000), 1193);
    }

    #[test]
    fn mode_0_counts_down_from_the_count_and_raises_out_at_zero() {
        let mut p = started(0, 0xffff, 1000);
        assert_eq!(count(&mut p, 1000), 0xffff);
        assert_eq!(p.read(PORT_CONTROL_B, 1000), Some(GATE));
        assert_eq!(count(&mut p, 1256), 0xffff - 256);
        assert_eq!(p.read(PORT_CONTROL_B, 1000 + 0xfffe).unwrap() & OUT2, 0);
        assert_eq!(p.read(PORT_CONTROL_B, 1000 + 0xffff).unwrap() & OUT2, OUT2);
        // It wraps and keeps counting.
        assert_eq!(count(&mut p, 1000 + 0x1_0000), 0xffff);
    }

    #[test]
    fn the_high_byte_changes_every_256_ticks_as_linux_quick_calibration_expects() {
        // quick_pit_calibrate: gate on, speaker off, then 0xb0 (channel 2,
        // low-then-high, mode 0), 0xff 0xff, and reads of both bytes.
        let mut p = Channel2::default();
        p.write(PORT_CONTROL_B, !SPEAKER, 0);
        p.write(PORT_COMMAND, 0xb0, 0);
        p.write(PORT_COUNTER, 0xff, 0);
        p.write(PORT_COUNTER, 0xff, 0);
        let msb = |p: &mut Channel2, t| {
            p.read(PORT_COUNTER, t);
            p.read(PORT_COUNTER, t).unwrap()
        };
        assert_eq!(msb(&mut p, 10), 0xff);
        assert_eq!(msb(&mut p, 300), 0xfe);
        assert_eq!(msb(&mut p, 256 * 10 + 1), 0xff - 10);
    }

    #[test]
    fn a_low_gate_holds_the_count_in_mode_0() {
        let mut p = started(0, 1000, 0);
        p.write(PORT_CONTROL_B, 0, 100);
        assert_eq!(count(&mut p, 500), 900);
        p.write(PORT_CONTROL_B, GATE, 500);
        assert_eq!(count(&mut p, 600), 800);
    }

    #[test]
    fn a_latched_count_is_read_until_both_bytes_are_taken() {
        let mut p = started(0, 0x1234, 0);
        p.write(PORT_COMMAND, 0b1000_0000, 0x10); // latch channel 2
        assert_eq!(count(&mut p, 0x200), 0x1224);
        assert_eq!(count(&mut p, 0x200), 0x1034);
        // Read-back command, count of channel 2.
        p.write(PORT_COMMAND, 0b1101_1000, 0x300);
        assert_eq!(count(&mut p, 0x400), 0x0f34);
    }

    #[test]
    fn modes_2_and_3_reload() {
        let mut p = started(2, 100, 0);
        assert_eq!(count(&mut p, 99), 1);
        assert_eq!(count(&mut p, 100), 100);
        assert_eq!(count(&mut p, 150), 50);
        let mut p = started(3, 100, 0);
        assert_eq!(count(&mut p, 10), 80);
        assert_eq!(p.read(PORT_CONTROL_B, 10).unwrap() & OUT2, OUT2);
        assert_eq!(p.read(PORT_CONTROL_B, 60).unwrap() & OUT2, 0);
    }

    #[test]
    fn single_byte_access_and_other_channels() {
        let mut p = Channel2::default();
        p.write(PORT_CONTROL_B, GATE, 0);
        p.write(PORT_COMMAND, 0b1001_0000, 0); // channel 2, low byte, mode 0
        p.write(PORT_COUNTER, 0x80, 0);
        assert_eq!(p.read(PORT_COUNTER, 0x10), Some(0x70));
        // A channel 0 control word changes nothing here.
        p.write(PORT_COMMAND, 0b0011_0100, 0x10);
        assert_eq!(p.read(PORT_COUNTER, 0x20), Some(0x60));
        assert!(!Channel2::handles(0x40));
        assert!(!Channel2::handles(0x41));
        assert_eq!(p.read(0x40, 0), None);
        assert!(!p.write(0x41, 0, 0));
        // Only the gate and speaker bits of port 0x61 are kept.
        p.write(PORT_CONTROL_B, 0xff, 0x20);
        assert_eq!(
            p.read(PORT_CONTROL_B, 0x20).unwrap() & !OUT2,
            GATE | SPEAKER
        );
    }
}
