//! Bochs runs: the bochsrc and the command line.
//!
//! The machine is an i440FX with an Intel e1000 (8086:100e) in PCI slot 1
//! and no network behind it (`ethmod=null`), the device a VMX passthrough
//! test hands to a guest.
//!
//! Debian's Bochs 2.7 has no headless display: `rfb` with `timeout=0` does
//! not wait for a viewer, but binds TCP port 5900, so Bochs runs that overlap
//! each get their own network namespace (`unshare -n`) when that works, and
//! take turns otherwise. Bochs starts in its debugger, so a small rc file
//! says `continue` and then `quit`. The hypervisor ends the run by writing
//! "Shutdown" to port 0x8900; Bochs then exits with status 1.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The Bochs executable.
pub const PROGRAM: &str = "bochs";
/// The system BIOS (package bochsbios).
pub const BIOS: &str = "/usr/share/bochs/BIOS-bochs-latest";
/// The VGA BIOS (package vgabios).
pub const VGA_BIOS: &str = "/usr/share/vgabios/vgabios.bin";
/// The debugger commands Bochs reads at start.
pub const RC: &str = "continue\nquit\n";
/// The exit status of a run the hypervisor ended through port 0x8900.
pub const SHUTDOWN_STATUS: i32 = 1;

/// One Bochs run.
#[derive(Debug, Clone, Copy)]
pub struct Config<'a> {
    /// `cpu: model=`, e.g. `corei7_skylake_x`.
    pub cpu: &'a str,
    pub iso: &'a Path,
    /// COM1 is written to this file.
    pub serial: &'a Path,
    /// Bochs' own log.
    pub log: &'a Path,
}

/// A path in a bochsrc: double-quoted, so spaces are allowed.
fn quoted(path: &Path) -> String {
    format!("\"{}\"", path.display())
}

/// The bochsrc for `cfg`.
pub fn bochsrc(cfg: &Config<'_>) -> String {
    format!(
        "megs: 256\n\
         cpu: model={cpu}, ips=50000000\n\
         romimage: file={bios}\n\
         vgaromimage: file={vga}\n\
         ata0-master: type=cdrom, path={iso}, status=inserted\n\
         boot: cdrom\n\
         com1: enabled=1, mode=file, dev={serial}\n\
         display_library: rfb, options=\"timeout=0\"\n\
         sound: driver=dummy\n\
         log: {log}\n\
         port_e9_hack: enabled=1\n\
         pci: enabled=1, chipset=i440fx, slot1=e1000\n\
         e1000: enabled=1, mac=52:54:00:12:34:56, ethmod=null\n",
        cpu = cfg.cpu,
        bios = quoted(Path::new(BIOS)),
        vga = quoted(Path::new(VGA_BIOS)),
        iso = quoted(cfg.iso),
        serial = quoted(cfg.serial),
        log = quoted(cfg.log),
    )
}

/// The program and arguments that run Bochs with `bochsrc` and `rc`,
/// inside `unshare -n` when `own_network` is set.
pub fn command_line(bochsrc: &Path, rc: &Path, own_network: bool) -> Vec<OsString> {
    let mut line: Vec<OsString> = Vec::new();
    if own_network {
        line.push("unshare".into());
        line.push("-n".into());
    }
    line.push(PROGRAM.into());
    line.push("-q".into());
    line.push("-f".into());
    line.push(bochsrc.into());
    line.push("-rc".into());
    line.push(rc.into());
    line
}

/// Whether `unshare -n` works here (it needs root or user namespaces).
/// Without it, two Bochs runs at once fight over TCP port 5900.
pub fn can_unshare_network() -> bool {
    static ANSWER: OnceLock<bool> = OnceLock::new();
    *ANSWER.get_or_init(|| {
        Command::new("unshare")
            .args(["-n", "true"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bochsrc_for_a_vmx_cpu() {
        let rc = bochsrc(&Config {
            cpu: "corei7_skylake_x",
            iso: Path::new("/r/hv.iso"),
            serial: Path::new("/r/serial.log"),
            log: Path::new("/r/bochs.log"),
        });
        assert_eq!(
            rc,
            "megs: 256\n\
             cpu: model=corei7_skylake_x, ips=50000000\n\
             romimage: file=\"/usr/share/bochs/BIOS-bochs-latest\"\n\
             vgaromimage: file=\"/usr/share/vgabios/vgabios.bin\"\n\
             ata0-master: type=cdrom, path=\"/r/hv.iso\", status=inserted\n\
             boot: cdrom\n\
             com1: enabled=1, mode=file, dev=\"/r/serial.log\"\n\
             display_library: rfb, options=\"timeout=0\"\n\
             sound: driver=dummy\n\
             log: \"/r/bochs.log\"\n\
             port_e9_hack: enabled=1\n\
             pci: enabled=1, chipset=i440fx, slot1=e1000\n\
             e1000: enabled=1, mac=52:54:00:12:34:56, ethmod=null\n"
        );
    }

    #[test]
    fn command_line_with_and_without_a_network_namespace() {
        let show = |own| {
            command_line(Path::new("/r/bochsrc"), Path::new("/r/rc"), own)
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(show(true), "unshare -n bochs -q -f /r/bochsrc -rc /r/rc");
        assert_eq!(show(false), "bochs -q -f /r/bochsrc -rc /r/rc");
    }

    #[test]
    fn rc_continues_then_quits() {
        assert_eq!(RC.lines().collect::<Vec<_>>(), ["continue", "quit"]);
    }
}
