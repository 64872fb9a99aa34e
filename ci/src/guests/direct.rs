//! The reference run: QEMU boots the kernel itself through its PVH note
//! (`-kernel vmlinux -initrd initrd.gz`), with no hypervisor and no Xen, on
//! the same kind of machine `cargo xtask` uses (q35, `-cpu max`, 512 MiB,
//! TCG). The kernel finds no Xen, so its console is the first serial port;
//! the emulator's wall time from start to exit is the number a hypervisor
//! run is compared with.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::initramfs::{POWERING_OFF, STARTED};
use crate::process::{self, Ended};
use crate::qemu;

/// The kernel command line without Xen: `panic=-1` turns a panic into a
/// reboot, which `-no-reboot` turns into QEMU's exit.
pub const CMDLINE: &str = "console=ttyS0 loglevel=7 panic=-1";

/// TCG boots this kernel in well under a minute; five leave room for a
/// slow, busy machine and still end a hung boot.
pub const TIMEOUT: Duration = Duration::from_secs(300);

/// The start of the kernel's first console line.
const LINUX_VERSION: &str = "Linux version ";

/// The line Linux prints when ACPI powers the machine off.
const POWER_DOWN: &str = "reboot: Power down";

/// What the run showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timings {
    /// From starting QEMU to its exit (or the time limit).
    pub total: Duration,
    /// From starting QEMU to the kernel's first line (`Linux version`):
    /// the part before is QEMU loading the image and its firmware.
    pub kernel_started: Option<Duration>,
    /// From starting QEMU to `init: started`.
    pub init_started: Option<Duration>,
    /// From starting QEMU to `init: powering off`.
    pub powering_off: Option<Duration>,
    /// Whether the kernel reported powering off.
    pub powered_down: bool,
    pub ended: Ended,
}

impl Timings {
    /// Whether user space started and the machine powered off by itself.
    pub fn passed(&self) -> bool {
        self.init_started.is_some()
            && self.powering_off.is_some()
            && self.powered_down
            && self.ended == Ended::Code(0)
    }
}

/// The console lines seen so far, with when.
#[derive(Debug, Default)]
struct Seen {
    kernel_started: Option<Duration>,
    init_started: Option<Duration>,
    powering_off: Option<Duration>,
    powered_down: bool,
}

/// The arguments after `qemu-system-x86_64`.
pub fn args(vmlinux: &Path, initrd: &Path, cmdline: &str) -> Vec<OsString> {
    // The machine the hypervisor's scenarios boot, without its devices:
    // the two runs compare alike.
    let mut args: Vec<OsString> = crate::qemu::MACHINE
        .iter()
        .chain(&["-accel", "tcg", "-serial", "stdio", "-monitor", "none"])
        .map(OsString::from)
        .collect();
    args.push("-kernel".into());
    args.push(vmlinux.into());
    args.push("-initrd".into());
    args.push(initrd.into());
    args.push("-append".into());
    args.push(cmdline.into());
    args
}

/// Boots `vmlinux` with `initrd` under QEMU, copying the console to stdout,
/// and times it.
pub fn boot(vmlinux: &Path, initrd: &Path) -> Result<Timings, String> {
    let args = args(vmlinux, initrd, CMDLINE);
    let mut words = vec![OsString::from(qemu::PROGRAM)];
    words.extend(args.iter().cloned());
    println!("guests: {}", process::shell_line(&words));
    let mut cmd = Command::new(qemu::PROGRAM);
    cmd.args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    process::isolate(&mut cmd);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", qemu::PROGRAM))?;
    let stdout = child.stdout.take().ok_or("QEMU has no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut seen = Seen::default();
        let mut out = std::io::stdout();
        for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches('\r');
            let _ = writeln!(out, "{line}");
            let now = Some(start.elapsed());
            for (text, at) in [
                (LINUX_VERSION, &mut seen.kernel_started),
                (STARTED, &mut seen.init_started),
                (POWERING_OFF, &mut seen.powering_off),
            ] {
                if line.contains(text) && at.is_none() {
                    *at = now;
                }
            }
            seen.powered_down |= line.contains(POWER_DOWN);
        }
        seen
    });
    let ended = process::wait(&mut child, Some(TIMEOUT), true)
        .map_err(|e| format!("waiting for QEMU: {e}"))?;
    let total = start.elapsed();
    let seen = reader.join().map_err(|_| "the console reader panicked")?;
    Ok(Timings {
        total,
        kernel_started: seen.kernel_started,
        init_started: seen.init_started,
        powering_off: seen.powering_off,
        powered_down: seen.powered_down,
        ended,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_boots_the_pvh_note_on_the_serial_console() {
        let args = args(Path::new("v"), Path::new("i.gz"), CMDLINE);
        let text: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let text = text.join(" ");
        assert!(text.contains("-kernel v -initrd i.gz -append console=ttyS0"));
        assert!(text.contains("-no-reboot"));
        assert!(text.contains("-serial stdio"));
        assert!(text.contains("-accel tcg"));
    }

    #[test]
    fn a_run_passes_only_when_init_ran_and_the_machine_powered_off() {
        let second = Some(Duration::from_secs(1));
        let good = Timings {
            total: Duration::from_secs(2),
            kernel_started: second,
            init_started: second,
            powering_off: second,
            powered_down: true,
            ended: Ended::Code(0),
        };
        assert!(good.passed());
        let hung = Timings {
            ended: Ended::TimedOut(TIMEOUT),
            powered_down: false,
            ..good.clone()
        };
        assert!(!hung.passed());
        let no_init = Timings {
            init_started: None,
            ..good
        };
        assert!(!no_init.passed());
    }
}
