//! The one line `pcibench` prints per run, and reading it back from a
//! console log (where the hypervisor may have put `[d1 linux] ` in front):
//!
//! ```text
//! pcibench: config 0000:00:00.0 n 2000 median_us 352.125 mean_us 360.412 per_s 2775
//! pcibench: nvme /dev/nvme0n1 mib 64 direct yes seconds 1.234 mb_per_s 54.38
//! pcibench: syscall getppid n 100000 median_us 1.234 mean_us 1.300 per_s 769230
//! ```

use std::fmt;

use crate::stats::Summary;

/// What every line starts with.
pub const MARKER: &str = "pcibench: ";

/// One run's result.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// Config-space reads of one function (its sysfs name).
    Config { device: String, summary: Summary },
    /// A sequential read of `mib` MiB of `device`; `direct` when it was
    /// opened with `O_DIRECT` (else the page cache was in the way).
    Nvme {
        device: String,
        mib: u64,
        direct: bool,
        seconds: f64,
        mb_per_s: f64,
    },
    /// `getppid` system calls.
    Syscall { summary: Summary },
}

fn summary_text(s: &Summary) -> String {
    format!(
        "n {} median_us {:.3} mean_us {:.3} per_s {:.0}",
        s.ops, s.median_us, s.mean_us, s.per_second
    )
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Report::Config { device, summary } => {
                write!(f, "{MARKER}config {device} {}", summary_text(summary))
            }
            Report::Nvme {
                device,
                mib,
                direct,
                seconds,
                mb_per_s,
            } => write!(
                f,
                "{MARKER}nvme {device} mib {mib} direct {} seconds {seconds:.3} mb_per_s {mb_per_s:.2}",
                if *direct { "yes" } else { "no" }
            ),
            Report::Syscall { summary } => {
                write!(f, "{MARKER}syscall getppid {}", summary_text(summary))
            }
        }
    }
}

/// The value after `key` in `words` (`key value` pairs).
fn value<'a>(words: &[&'a str], key: &str) -> Option<&'a str> {
    words.windows(2).find(|w| w[0] == key).map(|w| w[1])
}

fn number<T: std::str::FromStr>(words: &[&str], key: &str) -> Option<T> {
    value(words, key)?.parse().ok()
}

fn summary(words: &[&str]) -> Option<Summary> {
    Some(Summary {
        ops: number(words, "n")?,
        median_us: number(words, "median_us")?,
        mean_us: number(words, "mean_us")?,
        per_second: number(words, "per_s")?,
    })
}

impl Report {
    /// Reads a line printed by `pcibench`, wherever it starts in `line`.
    pub fn parse(line: &str) -> Option<Report> {
        let rest = &line[line.find(MARKER)? + MARKER.len()..];
        let words: Vec<&str> = rest.split_whitespace().collect();
        match words.as_slice() {
            ["config", device, tail @ ..] => Some(Report::Config {
                device: (*device).to_string(),
                summary: summary(tail)?,
            }),
            ["nvme", device, tail @ ..] => Some(Report::Nvme {
                device: (*device).to_string(),
                mib: number(tail, "mib")?,
                direct: match value(tail, "direct")? {
                    "yes" => true,
                    "no" => false,
                    _ => return None,
                },
                seconds: number(tail, "seconds")?,
                mb_per_s: number(tail, "mb_per_s")?,
            }),
            ["syscall", "getppid", tail @ ..] => Some(Report::Syscall {
                summary: summary(tail)?,
            }),
            _ => None,
        }
    }

    /// Every report in `log`, in order.
    pub fn all_in(log: &str) -> Vec<Report> {
        log.lines().filter_map(Report::parse).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Summary {
        Summary {
            ops: 2000,
            median_us: 352.125,
            mean_us: 360.4125,
            per_second: 2775.4,
        }
    }

    #[test]
    fn the_lines_are_the_documented_ones() {
        let config = Report::Config {
            device: "0000:00:00.0".into(),
            summary: summary(),
        };
        assert_eq!(
            config.to_string(),
            "pcibench: config 0000:00:00.0 n 2000 median_us 352.125 mean_us 360.413 per_s 2775"
        );
        let nvme = Report::Nvme {
            device: "/dev/nvme0n1".into(),
            mib: 64,
            direct: true,
            seconds: 1.2344,
            mb_per_s: 54.3789,
        };
        assert_eq!(
            nvme.to_string(),
            "pcibench: nvme /dev/nvme0n1 mib 64 direct yes seconds 1.234 mb_per_s 54.38"
        );
        let syscall = Report::Syscall { summary: summary() };
        assert!(syscall
            .to_string()
            .starts_with("pcibench: syscall getppid n 2000 median_us 352.125"));
    }

    #[test]
    fn what_is_printed_reads_back_behind_a_console_prefix() {
        for report in [
            Report::Config {
                device: "0000:00:02.0".into(),
                summary: Summary {
                    ops: 3,
                    median_us: 1.5,
                    mean_us: 2.25,
                    per_second: 400.0,
                },
            },
            Report::Nvme {
                device: "/dev/nvme0n1".into(),
                mib: 8,
                direct: false,
                seconds: 0.5,
                mb_per_s: 16.78,
            },
            Report::Syscall {
                summary: Summary {
                    ops: 10,
                    median_us: 0.125,
                    mean_us: 0.25,
                    per_second: 100000.0,
                },
            },
        ] {
            let line = format!("[d1 linux] {report}\r");
            assert_eq!(Report::parse(&line), Some(report));
        }
    }

    #[test]
    fn other_and_damaged_lines_are_not_reports() {
        for line in [
            "",
            "init: pcibench config 2000",
            "pcibench: config 0000:00:00.0 n x median_us 1 mean_us 1 per_s 1",
            "pcibench: nvme /dev/nvme0n1 mib 64 direct maybe seconds 1 mb_per_s 1",
            "pcibench: syscall n 1 median_us 1 mean_us 1 per_s 1",
            "pcibench: cannot open /sys/bus/pci/devices/0000:00:00.0/config: No such file",
        ] {
            assert_eq!(Report::parse(line), None, "{line}");
        }
        let log = "a\n[d1 linux] pcibench: syscall getppid n 1 median_us 1 mean_us 1 per_s 1\nb\n";
        assert_eq!(Report::all_in(log).len(), 1);
    }
}
