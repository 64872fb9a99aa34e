//! The QEMU command line of the standard machine.
//!
//! q35 (PCIe, MCFG), `-cpu max` (AMD SVM with nested paging under TCG),
//! 512 MiB, one CPU, no display and no default NIC, and fixed PCI addresses:
//!
//! | BDF     | device |
//! |---------|--------|
//! | 00:01.0 | AMD IOMMU (only with `--iommu amd`) |
//! | 00:03.0 | edu (QEMU's teaching device, 1234:11e8), DMA addresses 32 bits wide (its default is 28) |
//! | 00:04.0 | e1000e |
//! | 00:05.0 | NVMe (serial `deadbeef`; with a disk image, namespace 1 is that image: `crate::disk`) |
//! | 00:06.0 | PCIe root port, secondary bus 1 |
//! | 01:00.0 | e1000e behind the root port |
//!
//! The IOMMU must come before the devices it translates for. Under TCG the
//! Intel IOMMU with interrupt remapping needs no `kernel-irqchip=split`.
//! The e1000e cards have no network backend (QEMU warns "no peer"): they are
//! only there to be enumerated.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::machine::Iommu;

/// The QEMU executable.
pub const PROGRAM: &str = "qemu-system-x86_64";

/// The machine, CPU and memory, with every default device turned off.
pub const MACHINE: &[&str] = &[
    "-machine",
    "q35",
    "-cpu",
    "max",
    "-m",
    "512M",
    "-smp",
    "1",
    "-display",
    "none",
    "-vga",
    "none",
    "-nic",
    "none",
    "-no-reboot",
];

/// The PCI devices, pinned to their addresses.
const DEVICES: &[&str] = &[
    "-device",
    "edu,addr=03.0,dma_mask=0xffffffff",
    "-device",
    "e1000e,addr=04.0",
    "-device",
    NVME,
    "-device",
    "pcie-root-port,id=rp1,chassis=1,addr=06.0",
    "-device",
    "e1000e,bus=rp1",
];

/// The NVMe controller; [`NVME_DRIVE`] is added when it has a disk.
const NVME: &str = "nvme,serial=deadbeef,addr=05.0";

/// The `-drive` id of the NVMe controller's disk.
const NVME_DRIVE: &str = "nvme-disk";

/// `file=PATH`, a comma in the path doubled, as QEMU's option syntax wants.
fn file_option(path: &Path) -> OsString {
    let mut s = OsString::from("file=");
    match path.to_str() {
        Some(p) => s.push(p.replace(',', ",,")),
        None => s.push(path),
    }
    s
}

/// `-drive` for a raw image at `path`.
fn drive(path: &Path) -> OsString {
    let mut s = file_option(path);
    s.push(format!(",if=none,id={NVME_DRIVE},format=raw"));
    s
}

/// Where the serial console goes.
#[derive(Debug, Clone, Copy)]
pub enum Serial<'a> {
    Stdio,
    File(&'a Path),
}

/// What the machine boots.
#[derive(Debug, Clone, Copy)]
pub enum Media<'a> {
    /// QEMU's own multiboot1 loader.
    /// `modules` are passed with `-initrd`; each module's name is its
    /// file name.
    Kernel {
        elf: &'a Path,
        cmdline: &'a str,
        modules: &'a [PathBuf],
    },
    /// A CD-ROM image (the GRUB ISO).
    Cdrom(&'a Path),
    /// The same image booted by OVMF, with `vars` (a copy of
    /// [`OVMF_VARS`], made by the caller) as its writable variable store.
    UefiCdrom { iso: &'a Path, vars: &'a Path },
}

/// OVMF's code image (Debian's `ovmf`), read-only.
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";

/// OVMF's empty variable store, copied for each run.
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// A `-drive` value for a flash image.
fn pflash(file: &Path, readonly: bool) -> OsString {
    let mut s = OsString::from(if readonly {
        "if=pflash,format=raw,readonly=on,file="
    } else {
        "if=pflash,format=raw,file="
    });
    s.push(file);
    s
}

/// One QEMU run.
#[derive(Debug, Clone, Copy)]
pub struct Config<'a> {
    pub iommu: Iommu,
    pub media: Media<'a>,
    pub serial: Serial<'a>,
    /// Wait for a debugger on localhost:1234 before the first instruction.
    pub gdb: bool,
    /// The NVMe controller's disk (a raw image, `crate::disk`); without
    /// one it has no namespace.
    pub disk: Option<&'a Path>,
    /// When not empty, these PCI devices (`-device` values) instead of
    /// the standard ones (and no NVMe disk).
    pub devices: &'a [&'a str],
    /// Files of ACPI tables QEMU adds to its own (`-acpitable file=`).
    pub acpi_tables: &'a [PathBuf],
}

/// The arguments after [`PROGRAM`].
pub fn args(cfg: &Config<'_>) -> Vec<OsString> {
    let mut args: Vec<OsString> = MACHINE.iter().map(OsString::from).collect();
    args.push("-serial".into());
    args.push(match cfg.serial {
        Serial::Stdio => "stdio".into(),
        Serial::File(path) => {
            let mut s = OsString::from("file:");
            s.push(path);
            s
        }
    });
    // Status (value << 1) | 1: the hypervisor writes 0 on success (1) and 1
    // on failure (3).
    args.push("-device".into());
    args.push("isa-debug-exit,iobase=0xf4,iosize=0x04".into());
    match cfg.iommu {
        Iommu::Intel => {
            args.push("-device".into());
            args.push("intel-iommu,intremap=on".into());
        }
        Iommu::Amd => {
            args.push("-device".into());
            // `pt=off`: QEMU's AMD IOMMU translates DMA only then (with its
            // default, every device reaches all memory whatever the device
            // table says).
            args.push("amd-iommu,intremap=on,pt=off".into());
        }
        Iommu::None => {}
    }
    if cfg.devices.is_empty() {
        for &arg in DEVICES {
            match (arg, cfg.disk) {
                (NVME, Some(disk)) => {
                    args.push(format!("{NVME},drive={NVME_DRIVE}").into());
                    args.push("-drive".into());
                    args.push(drive(disk));
                }
                _ => args.push(arg.into()),
            }
        }
    }
    for &dev in cfg.devices {
        args.push("-device".into());
        args.push(dev.into());
    }
    for table in cfg.acpi_tables {
        args.push("-acpitable".into());
        args.push(file_option(table));
    }
    match cfg.media {
        Media::Kernel {
            elf,
            cmdline,
            modules,
        } => {
            args.push("-kernel".into());
            args.push(elf.into());
            args.push("-append".into());
            args.push(cmdline.into());
            if !modules.is_empty() {
                let mut list = OsString::new();
                for (i, m) in modules.iter().enumerate() {
                    if i > 0 {
                        list.push(",");
                    }
                    list.push(m);
                }
                args.push("-initrd".into());
                args.push(list);
            }
        }
        Media::Cdrom(iso) => {
            args.push("-cdrom".into());
            args.push(iso.into());
        }
        Media::UefiCdrom { iso, vars } => {
            args.push("-drive".into());
            args.push(pflash(Path::new(OVMF_CODE), true));
            args.push("-drive".into());
            args.push(pflash(vars, false));
            args.push("-cdrom".into());
            args.push(iso.into());
        }
    }
    if cfg.gdb {
        args.push("-s".into());
        args.push("-S".into());
    }
    args
}

/// The exit status QEMU gives when the hypervisor wrote `value` to
/// isa-debug-exit.
pub const fn debug_exit_status(value: i32) -> i32 {
    (value << 1) | 1
}

/// What a QEMU exit status means.
pub fn describe_status(code: i32) -> String {
    match code {
        1 => "QEMU exited with status 1 (the hypervisor reported success)".into(),
        3 => "QEMU exited with status 3 (the hypervisor reported failure)".into(),
        0 => "QEMU exited with status 0 (the machine reset or powered off without \
              isa-debug-exit: a triple fault?)"
            .into(),
        n => format!("QEMU exited with status {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: Vec<OsString>) -> Vec<String> {
        args.into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn standard_machine_with_intel_iommu_from_an_iso_with_serial_to_a_file() {
        let cfg = Config {
            iommu: Iommu::Intel,
            devices: &[],
            media: Media::Cdrom(Path::new("/t/hv.iso")),
            serial: Serial::File(Path::new("/t/serial.log")),
            gdb: false,
            disk: None,
            acpi_tables: &[],
        };
        assert_eq!(
            strings(args(&cfg)).join(" "),
            "-machine q35 -cpu max -m 512M -smp 1 -display none -vga none -nic none -no-reboot \
             -serial file:/t/serial.log -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
             -device intel-iommu,intremap=on -device edu,addr=03.0,dma_mask=0xffffffff -device e1000e,addr=04.0 \
             -device nvme,serial=deadbeef,addr=05.0 \
             -device pcie-root-port,id=rp1,chassis=1,addr=06.0 -device e1000e,bus=rp1 \
             -cdrom /t/hv.iso"
        );
    }

    #[test]
    fn a_uefi_boot_has_ovmf_code_read_only_and_its_own_variable_store() {
        let cfg = Config {
            devices: &[],
            iommu: Iommu::None,
            media: Media::UefiCdrom {
                iso: Path::new("/t/hv.iso"),
                vars: Path::new("/t/OVMF_VARS.fd"),
            },
            serial: Serial::Stdio,
            gdb: false,
            disk: None,
            acpi_tables: &[],
        };
        let line = strings(args(&cfg)).join(" ");
        assert!(line.ends_with(
            "-drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd \
             -drive if=pflash,format=raw,file=/t/OVMF_VARS.fd -cdrom /t/hv.iso"
        ));
    }

    #[test]
    fn kernel_boot_keeps_the_command_line_as_one_argument() {
        let cfg = Config {
            iommu: Iommu::Amd,
            devices: &[],
            media: Media::Kernel {
                elf: Path::new("/t/hv"),
                cmdline: "loglvl=info pciback.hide=(00:03.0)(00:05.0)",
                modules: &[],
            },
            serial: Serial::Stdio,
            gdb: true,
            disk: None,
            acpi_tables: &[],
        };
        let a = strings(args(&cfg));
        let tail: Vec<&str> = a[a.len() - 6..].iter().map(String::as_str).collect();
        assert_eq!(
            tail,
            [
                "-kernel",
                "/t/hv",
                "-append",
                "loglvl=info pciback.hide=(00:03.0)(00:05.0)",
                "-s",
                "-S"
            ]
        );
        assert!(a.windows(2).any(|w| w == ["-serial", "stdio"]));
        assert!(a
            .windows(2)
            .any(|w| w == ["-device", "amd-iommu,intremap=on,pt=off"]));
        assert!(!a.iter().any(|s| s.contains("intel-iommu")));
    }

    #[test]
    fn the_iommu_comes_before_every_pci_device() {
        for iommu in [Iommu::Intel, Iommu::Amd] {
            let cfg = Config {
                iommu,
                devices: &[],
                media: Media::Cdrom(Path::new("x.iso")),
                serial: Serial::Stdio,
                gdb: false,
                disk: None,
                acpi_tables: &[],
            };
            let a = strings(args(&cfg));
            let iommu_at = a.iter().position(|s| s.contains("-iommu")).expect("iommu");
            let edu_at = a.iter().position(|s| s.starts_with("edu")).expect("edu");
            assert!(iommu_at < edu_at);
        }
        let cfg = Config {
            iommu: Iommu::None,
            devices: &[],
            media: Media::Cdrom(Path::new("x.iso")),
            serial: Serial::Stdio,
            gdb: false,
            disk: None,
            acpi_tables: &[],
        };
        assert!(!strings(args(&cfg)).iter().any(|s| s.contains("iommu")));
    }

    #[test]
    fn a_disk_becomes_the_nvme_namespace() {
        let cfg = Config {
            iommu: Iommu::Intel,
            devices: &[],
            media: Media::Cdrom(Path::new("x.iso")),
            serial: Serial::Stdio,
            gdb: false,
            disk: Some(Path::new("/t/a,b/nvme.img")),
            acpi_tables: &[],
        };
        let a = strings(args(&cfg));
        assert!(a.windows(4).any(|w| w
            == [
                "-device",
                "nvme,serial=deadbeef,addr=05.0,drive=nvme-disk",
                "-drive",
                "file=/t/a,,b/nvme.img,if=none,id=nvme-disk,format=raw"
            ]));
        // The other devices keep their places.
        assert!(a.iter().any(|s| s == "e1000e,bus=rp1"));
        assert_eq!(a.iter().filter(|s| s.starts_with("nvme,")).count(), 1);
    }

    #[test]
    fn debug_exit_statuses() {
        assert_eq!(debug_exit_status(0), 1);
        assert_eq!(debug_exit_status(1), 3);
        assert!(describe_status(0).contains("triple fault"));
        assert!(describe_status(3).contains("failure"));
    }
}
