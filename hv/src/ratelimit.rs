//! Rate limiting for log lines a guest can trigger.
//!
//! A guest that hammers an unhandled MSR or port must not be able to flood
//! the serial console (and slow every other domain down with it). A
//! [`RateLimit`] lets a burst of messages through, then at most one per
//! interval of a clock the caller supplies: TSC ticks, timer ticks, or a
//! plain count of events. It counts what it holds back and hands that count
//! to the next message it lets through, so the line can say how many were
//! lost:
//!
//! ```
//! use hv::ratelimit::{RateLimit, Suppressed};
//!
//! let mut limit = RateLimit::new(2, 1000);
//! let mut lines = Vec::new();
//! for now in [0, 1, 2, 3, 1200] {
//!     if let Some(n) = limit.allow(now) {
//!         lines.push(format!("unknown MSR 0x1234{}", Suppressed(n)));
//!     }
//! }
//! assert_eq!(lines[2], "unknown MSR 0x1234 (2 similar messages suppressed)");
//! ```
//!
//! The limiter is a token bucket: it holds up to `burst` tokens, a message
//! takes one, and one comes back per `interval` of the clock, so after a
//! quiet spell a full burst is allowed again.

use core::fmt;

/// A burst of messages, then at most one per interval; see the module
/// documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// Messages allowed back to back.
    burst: u32,
    /// Clock units after which one more message is allowed.
    interval: u64,
    /// Messages allowed now without waiting.
    tokens: u32,
    /// The clock value the tokens were last counted at; `None` before the
    /// first message.
    counted_at: Option<u64>,
    /// Messages held back since the last one allowed.
    suppressed: u64,
}

impl RateLimit {
    /// A limiter that allows `burst` messages back to back (at least one),
    /// then one per `interval` clock units. An `interval` of 0 allows every
    /// message.
    pub const fn new(burst: u32, interval: u64) -> Self {
        let burst = if burst == 0 { 1 } else { burst };
        RateLimit {
            burst,
            interval,
            tokens: burst,
            counted_at: None,
            suppressed: 0,
        }
    }

    /// Asks to print a message at clock value `now`. `Some(n)` means print
    /// it, and say that `n` similar messages were suppressed before it (0:
    /// none); `None` means drop it (it is counted).
    ///
    /// The clock is expected to move forward; a value that goes back is
    /// taken as no time passing.
    pub fn allow(&mut self, now: u64) -> Option<u64> {
        self.refill(now);
        if self.interval != 0 && self.tokens == 0 {
            self.suppressed = self.suppressed.saturating_add(1);
            return None;
        }
        self.tokens = self.tokens.saturating_sub(1);
        Some(core::mem::take(&mut self.suppressed))
    }

    /// Messages held back since the last one allowed (for a closing line
    /// when the source goes away).
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }

    /// Returns the suppressed count and starts it again from 0.
    pub fn take_suppressed(&mut self) -> u64 {
        core::mem::take(&mut self.suppressed)
    }

    /// Gives back one token per whole interval since the last count, up to
    /// the burst; the part of an interval not used up carries over.
    fn refill(&mut self, now: u64) {
        let Some(then) = self.counted_at else {
            self.counted_at = Some(now);
            return;
        };
        if self.interval == 0 || now <= then {
            return;
        }
        let intervals = (now - then) / self.interval;
        let room = u64::from(self.burst - self.tokens);
        if intervals >= room {
            self.tokens = self.burst;
            self.counted_at = Some(now);
        } else {
            // `intervals < room <= u32::MAX`: the casts are exact.
            self.tokens += intervals as u32;
            self.counted_at = Some(then + intervals * self.interval);
        }
    }
}

/// Formats a suppressed count as the tail of a log line: nothing for 0,
/// otherwise ` (N similar messages suppressed)` (or `message` for 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suppressed(pub u64);

impl fmt::Display for Suppressed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => Ok(()),
            1 => f.write_str(" (1 similar message suppressed)"),
            n => write!(f, " ({n} similar messages suppressed)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec::Vec;

    /// Asks at each clock value and returns what the limiter answered.
    fn run(limit: &mut RateLimit, clock: &[u64]) -> Vec<Option<u64>> {
        clock.iter().map(|&now| limit.allow(now)).collect()
    }

    #[test]
    fn a_burst_passes_then_messages_are_suppressed() {
        let mut l = RateLimit::new(3, 100);
        assert_eq!(
            run(&mut l, &[0, 0, 0, 0, 1, 99]),
            [Some(0), Some(0), Some(0), None, None, None]
        );
        assert_eq!(l.suppressed(), 3);
    }

    #[test]
    fn after_the_burst_one_message_per_interval_passes_with_the_count() {
        let mut l = RateLimit::new(2, 100);
        assert_eq!(run(&mut l, &[0, 1, 2, 3]), [Some(0), Some(0), None, None]);
        // One interval after the first message: one token came back.
        assert_eq!(run(&mut l, &[100, 101, 150]), [Some(2), None, None]);
        assert_eq!(run(&mut l, &[200, 201]), [Some(2), None]);
    }

    #[test]
    fn a_quiet_spell_gives_back_the_whole_burst_but_no_more() {
        let mut l = RateLimit::new(3, 10);
        assert_eq!(
            run(&mut l, &[0, 0, 0, 0]),
            [Some(0), Some(0), Some(0), None]
        );
        assert_eq!(
            run(&mut l, &[1_000_000, 1_000_000, 1_000_000, 1_000_000]),
            [Some(1), Some(0), Some(0), None]
        );
    }

    #[test]
    fn part_of_an_interval_carries_over_to_the_next_token() {
        let mut l = RateLimit::new(2, 10);
        assert_eq!(run(&mut l, &[0, 0, 15]), [Some(0), Some(0), Some(0)]);
        // The token of [15] was earned at 10: the next one is due at 20.
        assert_eq!(run(&mut l, &[19, 20]), [None, Some(1)]);
    }

    #[test]
    fn a_full_bucket_does_not_bank_time() {
        let mut l = RateLimit::new(1, 10);
        assert_eq!(run(&mut l, &[0, 15]), [Some(0), Some(0)]);
        // The bucket was full from 10 to 15: the next token is due at 25.
        assert_eq!(run(&mut l, &[24, 25]), [None, Some(1)]);
    }

    #[test]
    fn a_clock_that_goes_back_counts_as_no_time_passing() {
        let mut l = RateLimit::new(1, 10);
        assert_eq!(
            run(&mut l, &[100, 50, 0, 109, 110]),
            [Some(0), None, None, None, Some(3)]
        );
    }

    #[test]
    fn a_count_of_events_works_as_the_clock() {
        // One message per 1000 events after a burst of 5.
        let mut l = RateLimit::new(5, 1000);
        let printed = (0..10_000u64).filter(|&n| l.allow(n).is_some()).count();
        assert_eq!(printed, 5 + 9);
    }

    #[test]
    fn interval_zero_allows_everything_and_burst_zero_allows_one() {
        let mut l = RateLimit::new(1, 0);
        assert!(run(&mut l, &[0, 0, 0]).iter().all(|a| *a == Some(0)));
        let mut l = RateLimit::new(0, 10);
        assert_eq!(run(&mut l, &[0, 1, 10]), [Some(0), None, Some(1)]);
    }

    #[test]
    fn take_suppressed_empties_the_count() {
        let mut l = RateLimit::new(1, 10);
        run(&mut l, &[0, 1, 2]);
        assert_eq!(l.take_suppressed(), 2);
        assert_eq!(l.suppressed(), 0);
        assert_eq!(l.allow(10), Some(0));
    }

    #[test]
    fn the_counter_saturates_instead_of_wrapping() {
        let mut l = RateLimit::new(1, u64::MAX);
        l.allow(0);
        l.suppressed = u64::MAX - 1;
        assert_eq!(run(&mut l, &[1, 2]), [None, None]);
        assert_eq!(l.suppressed(), u64::MAX);
    }

    #[test]
    fn suppressed_formats_as_a_line_tail() {
        assert_eq!(Suppressed(0).to_string(), "");
        assert_eq!(Suppressed(1).to_string(), " (1 similar message suppressed)");
        assert_eq!(
            Suppressed(42).to_string(),
            " (42 similar messages suppressed)"
        );
    }
}
