//! A domain's console output: the bytes its vCPUs write through the
//! hypervisor console (`console_io`, port 0xE9) and its PV console ring,
//! assembled into lines for the serial line.
//!
//! A line ends at `\n` (a `\r` is dropped) or after [`LINE_MAX`] bytes; a
//! complete line is handed back as text, each byte that is not printable
//! ASCII shown as `.`. A line written both ways is handed back once
//! ([`Once`]). The partial `console_io` line belongs to the vCPU that
//! writes it: it waits, stashed, while other vCPUs run. The domain's log
//! lines share one rate limit ([`Console::log_allowed`]) so that a guest
//! cannot flood the serial line.

use crate::pvconsole::{Once, Source};
use crate::ratelimit::RateLimit;
use alloc::string::String;
use alloc::vec::Vec;

/// The longest line: a longer one is cut there.
pub const LINE_MAX: usize = 200;
/// Log lines a domain may cause back to back...
pub const LOG_BURST: u32 = 20;
/// ...and then one per this many ns.
pub const LOG_INTERVAL_NS: u64 = 1_000_000_000;

/// A domain's console output; see the module documentation.
#[derive(Debug)]
pub struct Console {
    /// The partial line of each source (by [`Source`]); the hypervisor
    /// console's is the current vCPU's.
    lines: [Vec<u8>; 2],
    /// Lines written both ways are handed back once.
    once: Once,
    /// The partial `console_io` lines of the vCPUs not running, by index.
    stash: Vec<Vec<u8>>,
    /// Limits the log lines the domain can cause.
    limit: RateLimit,
}

impl Console {
    /// The console of a domain with `nr_vcpus` vCPUs (at least one).
    pub fn new(nr_vcpus: u32) -> Self {
        let mut stash = Vec::new();
        stash.resize_with(nr_vcpus.max(1) as usize, Vec::new);
        Self {
            lines: [Vec::new(), Vec::new()],
            once: Once::default(),
            stash,
            limit: RateLimit::new(LOG_BURST, LOG_INTERVAL_NS),
        }
    }

    /// Takes byte `b` from `from`: the line it completes, if any, to print.
    pub fn byte(&mut self, from: Source, b: u8) -> Option<String> {
        let full = self.line(from).len() >= LINE_MAX;
        match b {
            b'\n' => self.take_line(from),
            b'\r' => None,
            _ => {
                let done = if full { self.take_line(from) } else { None };
                self.line(from).push(b);
                done
            }
        }
    }

    /// Ends the partial line of `from`: its text to print, unless it is
    /// empty or the copy of a line the other source printed.
    pub fn take_line(&mut self, from: Source) -> Option<String> {
        let [hypervisor, ring] = &mut self.lines;
        let line = match from {
            Source::Hypervisor => hypervisor,
            Source::Ring => ring,
        };
        if line.is_empty() {
            return None;
        }
        let text = self.once.admit(from, line).then(|| {
            line.iter()
                .map(|&b| {
                    if b.is_ascii_graphic() || b == b' ' {
                        char::from(b)
                    } else {
                        '.'
                    }
                })
                .collect()
        });
        line.clear();
        text
    }

    /// vCPU `to` runs instead of vCPU `from`: `from`'s partial
    /// `console_io` line waits for its next turn, and `to`'s comes back.
    pub fn switch(&mut self, from: u32, to: u32) {
        let [line, _] = &mut self.lines;
        if let Some(stash) = self.stash.get_mut(from as usize) {
            core::mem::swap(line, stash);
        }
        if let Some(stash) = self.stash.get_mut(to as usize) {
            core::mem::swap(line, stash);
        }
    }

    /// Whether a log line the guest caused at `now` (ns) is printed:
    /// `Some(n)` with the count of lines suppressed before it.
    pub fn log_allowed(&mut self, now: u64) -> Option<u64> {
        self.limit.allow(now)
    }

    fn line(&mut self, from: Source) -> &mut Vec<u8> {
        let [hypervisor, ring] = &mut self.lines;
        match from {
            Source::Hypervisor => hypervisor,
            Source::Ring => ring,
        }
    }
}

#[cfg(test)]
#[path = "console_tests.rs"]
mod tests;
