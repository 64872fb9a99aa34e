//! A tally of port I/O exits by port, for the summary a domain's end logs
//! next to its exit counts: which ports a guest keeps touching (a probe of
//! a device that is not there shows as one port with a large count).
//!
//! The first [`PortTally::SLOTS`] distinct ports get a slot each; accesses
//! to any later port are counted together.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// Port I/O exits by port.
#[derive(Clone, Copy, Debug)]
pub struct PortTally {
    /// (port, exits) in the order the ports were first seen; `used` are
    /// filled.
    slots: [(u16, u64); Self::SLOTS],
    used: usize,
    /// Exits on ports that found no free slot.
    rest: u64,
}

impl Default for PortTally {
    fn default() -> Self {
        Self {
            slots: [(0, 0); Self::SLOTS],
            used: 0,
            rest: 0,
        }
    }
}

impl PortTally {
    /// How many distinct ports are counted one by one.
    pub const SLOTS: usize = 32;

    /// Counts one exit on `port`.
    pub fn add(&mut self, port: u16) {
        if let Some(slot) = self.slots[..self.used].iter_mut().find(|s| s.0 == port) {
            slot.1 += 1;
        } else if self.used < Self::SLOTS {
            self.slots[self.used] = (port, 1);
            self.used += 1;
        } else {
            self.rest += 1;
        }
    }

    /// Exits on `port` (0 for one that found no slot).
    pub fn get(&self, port: u16) -> u64 {
        self.slots[..self.used]
            .iter()
            .find(|s| s.0 == port)
            .map_or(0, |s| s.1)
    }

    /// At most `n` ports, most exits first (ties by port), and the exits
    /// of every port not among them.
    pub fn top(&self, n: usize) -> (Vec<(u16, u64)>, u64) {
        let mut v: Vec<(u16, u64)> = self.slots[..self.used].to_vec();
        // The image's small stable sort, not the standard library's.
        vmm_glue::compact::sort_by_key(&mut v, |&(port, n)| (core::cmp::Reverse(n), port));
        let others: u64 = v.iter().skip(n).map(|s| s.1).sum::<u64>() + self.rest;
        v.truncate(n);
        (v, others)
    }

    /// `0x42:100000 0x61:4 others:9`, the `n` busiest ports; empty when no
    /// port was touched.
    pub fn render(&self, n: usize) -> String {
        let (top, others) = self.top(n);
        let mut out = String::new();
        for (port, count) in top {
            let _ = write!(
                out,
                "{}{port:#x}:{count}",
                if out.is_empty() { "" } else { " " }
            );
        }
        if others > 0 {
            let _ = write!(
                out,
                "{}others:{others}",
                if out.is_empty() { "" } else { " " }
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_counted_and_the_busiest_come_first() {
        let mut t = PortTally::default();
        for _ in 0..5 {
            t.add(0x42);
        }
        t.add(0x61);
        t.add(0x80);
        t.add(0x80);
        assert_eq!(t.get(0x42), 5);
        assert_eq!(t.get(0x70), 0);
        assert_eq!(t.render(8), "0x42:5 0x80:2 0x61:1");
        assert_eq!(t.render(1), "0x42:5 others:3");
        assert_eq!(PortTally::default().render(8), "");
    }

    #[test]
    fn ports_beyond_the_slots_are_counted_together() {
        let mut t = PortTally::default();
        for p in 0..PortTally::SLOTS as u16 + 3 {
            t.add(0x100 + p);
        }
        t.add(0x100);
        let (top, others) = t.top(1);
        assert_eq!(top, [(0x100, 2)]);
        assert_eq!(others, PortTally::SLOTS as u64 - 1 + 3);
    }
}
