//! `pcibench`'s command line.

use std::fmt;

/// The block device `pcibench nvme` reads when none is named.
pub const DEFAULT_NVME: &str = "/dev/nvme0n1";

/// Where sysfs keeps a PCI function's config space.
pub const SYSFS_PCI: &str = "/sys/bus/pci/devices";

/// What to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `config N DEV`: `pread` 4 bytes at offset 0 of
    /// `/sys/bus/pci/devices/DEV/config`, N times.
    Config { reads: u64, device: String },
    /// `nvme MIB [BLOCKDEV]`: read MIB MiB from the start of the block
    /// device with `O_DIRECT`, 1 MiB at a time.
    Nvme { mib: u64, device: String },
    /// `syscall N`: N `getppid` calls.
    Syscall { calls: u64 },
}

impl Command {
    /// The sysfs file a `config` run reads.
    pub fn config_path(device: &str) -> String {
        format!("{SYSFS_PCI}/{device}/config")
    }
}

/// The usage text.
pub const USAGE: &str = "\
usage: pcibench config N DEV     pread 4 bytes of /sys/bus/pci/devices/DEV/config N times
       pcibench nvme MIB [DEV]   read MIB MiB of DEV (default /dev/nvme0n1), O_DIRECT, 1 MiB blocks
       pcibench syscall N        N getppid system calls";

/// Why the arguments are not a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n{USAGE}", self.0)
    }
}

fn count(what: &str, word: Option<&String>) -> Result<u64, UsageError> {
    let word = word.ok_or_else(|| UsageError(format!("{what} is missing")))?;
    word.parse::<u64>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| UsageError(format!("{what} '{word}': expected a number of at least 1")))
}

/// A PCI function's sysfs name: `DDDD:BB:DD.F` in hexadecimal, nothing
/// that could lead out of `/sys/bus/pci/devices`.
fn is_sbdf(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 12
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b':',
            10 => c == b'.',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, UsageError> {
    let what = args
        .first()
        .ok_or_else(|| UsageError("no command".into()))?;
    let rest = &args[1..];
    let extra = |n: usize| match rest.get(n) {
        Some(w) => Err(UsageError(format!("unexpected argument '{w}'"))),
        None => Ok(()),
    };
    match what.as_str() {
        "config" => {
            let reads = count("N", rest.first())?;
            let device = rest
                .get(1)
                .ok_or_else(|| UsageError("DEV is missing".into()))?;
            if !is_sbdf(device) {
                return Err(UsageError(format!(
                    "DEV '{device}': expected a PCI function as sysfs names it, such as 0000:00:03.0"
                )));
            }
            extra(2)?;
            Ok(Command::Config {
                reads,
                device: device.clone(),
            })
        }
        "nvme" => {
            let mib = count("MIB", rest.first())?;
            let device = rest.get(1).cloned().unwrap_or_else(|| DEFAULT_NVME.into());
            extra(2)?;
            Ok(Command::Nvme { mib, device })
        }
        "syscall" => {
            let calls = count("N", rest.first())?;
            extra(1)?;
            Ok(Command::Syscall { calls })
        }
        other => Err(UsageError(format!("unknown command '{other}'"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn config_takes_a_count_and_a_function() {
        assert_eq!(
            parse(&words("config 2000 0000:00:03.0")),
            Ok(Command::Config {
                reads: 2000,
                device: "0000:00:03.0".into()
            })
        );
        assert_eq!(
            Command::config_path("0000:00:03.0"),
            "/sys/bus/pci/devices/0000:00:03.0/config"
        );
    }

    #[test]
    fn nvme_reads_nvme0n1_unless_told_otherwise() {
        assert_eq!(
            parse(&words("nvme 64")),
            Ok(Command::Nvme {
                mib: 64,
                device: DEFAULT_NVME.into()
            })
        );
        assert_eq!(
            parse(&words("nvme 1 /dev/nvme1n1")),
            Ok(Command::Nvme {
                mib: 1,
                device: "/dev/nvme1n1".into()
            })
        );
    }

    #[test]
    fn syscall_takes_a_count() {
        assert_eq!(
            parse(&words("syscall 5")),
            Ok(Command::Syscall { calls: 5 })
        );
    }

    #[test]
    fn a_path_that_leaves_sysfs_is_not_a_function() {
        for bad in [
            "../../../etc",
            "0000:00:03.0/..",
            "00:03.0",
            "0000:00:03:0",
            "000g:00:03.0",
        ] {
            let err = parse(&words(&format!("config 1 {bad}"))).expect_err(bad);
            assert!(err.0.contains("expected a PCI function"), "{err}");
        }
    }

    #[test]
    fn zero_missing_or_extra_arguments_are_usage_errors() {
        for bad in [
            "",
            "config",
            "config 0 0000:00:03.0",
            "config 10",
            "config x 0000:00:03.0",
            "config 1 0000:00:03.0 more",
            "nvme",
            "nvme -1",
            "nvme 1 /dev/x more",
            "syscall",
            "syscall 1 2",
            "frob 1",
        ] {
            let err = parse(&words(bad)).expect_err(bad);
            assert!(err.to_string().contains("usage: pcibench"), "{bad}: {err}");
        }
    }
}
