//! The summary of timed operations: median and mean per operation, and
//! operations per second over the whole loop.

use std::time::Duration;

/// N operations timed one by one, summarised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub ops: u64,
    /// Microseconds per operation: the middle one (the mean of the two
    /// middle ones for an even count).
    pub median_us: f64,
    /// Microseconds per operation on average.
    pub mean_us: f64,
    /// Operations per second over the whole loop's wall time.
    pub per_second: f64,
}

impl Summary {
    /// Summarises the per-operation times `each` (reordered) of a loop
    /// that took `total`. `None` for no operations.
    pub fn of(each: &mut [Duration], total: Duration) -> Option<Summary> {
        if each.is_empty() {
            return None;
        }
        each.sort_unstable();
        let n = each.len();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let median_us = if n % 2 == 1 {
            us(each[n / 2])
        } else {
            (us(each[n / 2 - 1]) + us(each[n / 2])) / 2.0
        };
        let sum: Duration = each.iter().sum();
        let ops = n as u64;
        let secs = total.as_secs_f64();
        Some(Summary {
            ops,
            median_us,
            mean_us: us(sum) / n as f64,
            per_second: if secs > 0.0 { ops as f64 / secs } else { 0.0 },
        })
    }
}

/// Megabytes (10^6 bytes) per second for `bytes` in `elapsed`.
pub fn mb_per_second(bytes: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        bytes as f64 / secs / 1e6
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&u| Duration::from_micros(u)).collect()
    }

    #[test]
    fn an_odd_count_has_the_middle_value_as_median() {
        let mut each = us(&[300, 100, 200]);
        let s = Summary::of(&mut each, Duration::from_micros(600)).expect("summary");
        assert_eq!(s.ops, 3);
        assert!((s.median_us - 200.0).abs() < 1e-9);
        assert!((s.mean_us - 200.0).abs() < 1e-9);
        assert!((s.per_second - 5000.0).abs() < 1e-6);
    }

    #[test]
    fn an_even_count_averages_the_two_middle_values_and_an_outlier_moves_only_the_mean() {
        let mut each = us(&[100, 400, 200, 10_000]);
        let s = Summary::of(&mut each, Duration::from_millis(11)).expect("summary");
        assert!((s.median_us - 300.0).abs() < 1e-9);
        assert!((s.mean_us - 2675.0).abs() < 1e-9);
    }

    #[test]
    fn nothing_timed_is_no_summary() {
        assert_eq!(Summary::of(&mut [], Duration::from_secs(1)), None);
    }

    #[test]
    fn throughput_is_in_decimal_megabytes() {
        assert!((mb_per_second(64 << 20, Duration::from_secs(2)) - 33.554432).abs() < 1e-9);
        assert_eq!(mb_per_second(1, Duration::ZERO), 0.0);
    }
}
