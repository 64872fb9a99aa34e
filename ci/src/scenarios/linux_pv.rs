//! Debian's Linux as a Xen PV domain (`type = "pv"`, issue 12): the same
//! kernel and initramfs as `real.rs`'s PVH boot (`cargo xtask guests`),
//! with `/init` told what to do by `hvtest=` on the kernel command line
//! (ci/src/guests/init.sh): report and power off; attach the passed-through
//! functions with `xen-pcifront` and drive them with Linux's own `nvme` and
//! `e1000e` (`hvtest=pcifront`); count boots on the NVMe disk across
//! `on_reboot = "restart"` (`hvtest=reboot-count`).
//!
//! Every QEMU run gets a fresh NVMe disk (`crate::disk`): its sector 2048
//! holds eight known lines, which `/init` prints in hex and
//! [`SECTOR_LINES`] expects; sector 4096 holds the reboot counter, 0 at
//! first.
//!
//! `linux-pv-vmx` boots the same kernel under Bochs (VMX with EPT) in
//! about 90 s.

use super::*;

/// The Xen console for user space, the kernel's own messages through
/// `console_io` from its first line, everything up to KERN_DEBUG (as
/// `guests::XEN_CMDLINE`), then `/init`'s mode.
macro_rules! linux_cmdline {
    ($($word:literal)*) => {
        concat!("console=hvc0 earlyprintk=xen loglevel=7" $(, " ", $word)*)
    };
}

/// A PV Linux domain named `linux` with `$mem` MiB, the command line
/// `$cmdline` and any further `key = value` lines.
macro_rules! pv_cfg {
    ($mem:literal, $cmdline:expr $(, $line:literal)* $(,)?) => {
        concat!(
            "# Debian's kernel with the busybox initramfs, as a PV domain\n",
            "name = \"linux\"\n",
            "type = \"pv\"\n",
            "kernel = \"vmlinux\"\n",
            "ramdisk = \"initrd.gz\"\n",
            "memory = ", $mem, "\n",
            $($line,)*
            "cmdline = \"", $cmdline, "\"\n"
        )
    };
}

const PV_CFG: &str = pv_cfg!("256", linux_cmdline!());

/// Under Bochs: its machine has 256 MiB in all, and Linux with this
/// initramfs boots in 128 (docs/guests.md). Without XSAVEC: under Bochs
/// 2.7, with the kernel saving AVX-512 state with XSAVEC, busybox's
/// processes crash now and then (static glibc reads a zero TLS pointer in
/// `__ctype_init`); with XSAVEC hidden (the kernel uses XSAVEOPT) or
/// AVX-512 off they do not. Not explained yet: QEMU's TCG has no AVX-512
/// to compare with (docs/guests.md).
const PV_BOCHS_CFG: &str = pv_cfg!("128", linux_cmdline!("clearcpuid=xsavec"));

/// The three functions of the standard machine, as `xpci-attach-svm`
/// gets them: edu, e1000e, NVMe.
const PCIFRONT_CFG: &str = pv_cfg!(
    "256",
    linux_cmdline!("hvtest=pcifront"),
    "pci = ['00:03.0', '00:04.0', '00:05.0']\n",
);

/// The NVMe controller alone, and a reboot that restarts the domain.
const RESTART_CFG: &str = pv_cfg!(
    "256",
    linux_cmdline!("hvtest=reboot-count"),
    "pci = ['00:05.0']\n",
    "on_reboot = \"restart\"\n",
);

/// `linux-pv-shutdown-svm`: a domain that waits for the toolstack and
/// restarts when it reboots.
const WAIT_CFG: &str = pv_cfg!(
    "256",
    linux_cmdline!("hvtest=wait"),
    "on_reboot = \"restart\"\n",
);

/// `linux-pv-shutdown-svm`'s boot modules: the kernel, the initramfs, the
/// configuration, then the shell commands, each typed once the line
/// before it is on the serial line.
const SHUTDOWN_MODULES: &[BootModule] = linux_modules!(
    WAIT_CFG;
    ("[d1 linux] init: wait: waiting for the toolstack", "ctl reboot linux\r"),
    ("[d2 linux] init: wait: waiting for the toolstack", "ctl shutdown linux\r"),
    ("dom2 (linux): powered off", "ctl quit\r"),
);

/// `linux-pv-hotplug-svm`: e1000e at boot (so that xen-pcifront has a
/// backend to bind to), NVMe hot-added and hot-removed from the shell.
const HOTPLUG_CFG: &str = pv_cfg!(
    "256",
    linux_cmdline!("hvtest=hotplug"),
    "pci = ['00:04.0']\n",
);

/// `linux-pv-hotplug-svm`'s boot modules: the guest, then the shell
/// commands, each typed once the line before it is on the serial line.
const HOTPLUG_MODULES: &[BootModule] = linux_modules!(
    HOTPLUG_CFG;
    ("[d1 linux] init: hotplug: waiting for a new function", "ctl pci-attach linux 00:05.0\r"),
    ("[d1 linux] init: hotplug: waiting for 0000:", "ctl pci-detach linux 00:05.0\r"),
    ("dom1 (linux): powered off", "ctl pci-assignable-list\r"),
    ("\"cmd\":\"pci-assignable-list\"", "ctl quit\r"),
);

/// Hides the three functions.
const HIDE3: &str = "loglvl=info pciback.hide=(00:03.0)(00:04.0)(00:05.0)";

/// What every failed PV Linux run shows one of.
const REJECT: &[&str] = &[
    "Kernel panic",
    "segfault at",
    "BUG:",
    "Oops",
    "WARNING: CPU:",
    "destroyed",
    "init: FAILED",
    // Linux takes the FIFO event channel ABI it is offered.
    "Using 2-level ABI",
    // Every hypercall it makes has an answer (docs/xen-abi.md).
    "unknown hypercall",
    // Its TSC calibration against PIT channel 2 (hv::vpit) ends after a
    // few reads instead of 100,000 reads of a stuck 0xff.
    "(linux): port I/O exits by port: 0x42:",
];

/// The known sector's line at byte `$off` (line `$k`, whose digit is hex
/// `$d`), as `/init` prints it (checked against `crate::disk` by a test).
macro_rules! sector_line {
    ($dom:literal, $off:literal, $d:literal) => {
        concat!(
            "[",
            $dom,
            "] init: nvme0n1 sector 2048 +",
            $off,
            ": 6876206e766d65207465737420736563746f722032303438206c696e6520",
            $d,
            "3a2074686520717569636b2062726f776e20666f78206a756d7073206f7665720a"
        )
    };
}

/// The known sector of the NVMe disk, read by dom1's Linux.
pub const SECTOR_LINES: [&str; 8] = [
    sector_line!("d1 linux", "0", "30"),
    sector_line!("d1 linux", "64", "31"),
    sector_line!("d1 linux", "128", "32"),
    sector_line!("d1 linux", "192", "33"),
    sector_line!("d1 linux", "256", "34"),
    sector_line!("d1 linux", "320", "35"),
    sector_line!("d1 linux", "384", "36"),
    sector_line!("d1 linux", "448", "37"),
];

/// The lines of a pcifront run: the host assigns the three functions, the
/// guest attaches through xen-pcifront and drives them, and after its
/// poweroff they are reset and back in the pool. `$unit` is the IOMMU's
/// interrupt remapping line, `$entry` how the release reads its entry back.
macro_rules! pcifront_expect {
    ($unit:literal, $entry:literal) => {
        &[
            $unit,
            // the toolstack and the backend
            "pciback: 0000:00:03.0 (1234:11e8 unclassified) assigned to dom1 (linux)",
            "pciback: 0000:00:04.0 (8086:10d3 network/Ethernet) assigned to dom1 (linux)",
            "pciback: 0000:00:05.0 (1b36:0010 storage/NVMe) assigned to dom1 (linux)",
            "iommu: 0000:00:05.0 translates through dom1's tables",
            "pciback: dom1: 0000:00:03.0 exported as 0000:00:00.0",
            "pciback: dom1: 0000:00:04.0 exported as 0000:00:01.0",
            "pciback: dom1: 0000:00:05.0 exported as 0000:00:02.0",
            "pciback: dom1 (linux): frontend connected",
            // Linux's view: a PV guest on the FIFO event channel ABI, its
            // pcifront bus with the three functions and their config space
            "] Hypervisor detected: Xen PV",
            "] xen:events: Using FIFO-based ABI",
            "[d1 linux] init: guest type: PV",
            "[d1 linux] init: mode pcifront",
            "[d1 linux] init: insmod xen-pcifront.ko: ok",
            "[d1 linux] init: xen-pcifront: pci-0 Connected",
            "pcifront pci-0: Installing PCI frontend",
            "pcifront pci-0: Creating PCI Frontend Bus 0000:00",
            "[d1 linux] init: pci functions: 3",
            "[d1 linux] init: pci 0000:00:00.0 1234:11e8 class 00ff00",
            "[d1 linux] init: pci 0000:00:00.0 config: 3412e811",
            "[d1 linux] init: pci 0000:00:01.0 8086:10d3 class 020000",
            "[d1 linux] init: pci 0000:00:01.0 config: 8680d310",
            "[d1 linux] init: pci 0000:00:02.0 1b36:0010 class 010802",
            "[d1 linux] init: pci 0000:00:02.0 config: 361b1000",
            // nvme: identify, the known sector through DMA, MSI-X
            "[d1 linux] init: insmod nvme-core.ko: ok",
            "[d1 linux] init: insmod nvme.ko: ok",
            "[d1 linux] init: nvme0: model \"QEMU NVMe Ctrl\" serial \"deadbeef\"",
            "[d1 linux] init: MSI-X before the read:",
            "[d1 linux] init: MSI-X after the read:",
            SECTOR_LINES[0],
            SECTOR_LINES[1],
            SECTOR_LINES[2],
            SECTOR_LINES[3],
            SECTOR_LINES[4],
            SECTOR_LINES[5],
            SECTOR_LINES[6],
            SECTOR_LINES[7],
            // e1000e: bound, its MAC (QEMU's 52:54:00:12:34:xx)
            "[d1 linux] init: insmod e1000e.ko: ok",
            "[d1 linux] init: net eth0: driver e1000e mac 52:54:00:12:34:",
            "[d1 linux] init: pci 0000:00:01.0 driver e1000e",
            "[d1 linux] init: pci 0000:00:02.0 driver nvme",
            "[d1 linux] init: pcifront: done",
            // after the poweroff: reset, blocked, back in the pool
            concat!(
                "iommu: 0000:00:05.0 blocked again (no owner: no DMA, no interrupts; ",
                $entry,
                ")"
            ),
            "pciback: 0000:00:04.0 reset (released): D3hot -> D0 power cycle",
            "pciback: 0000:00:05.0 reset (released): function level reset",
            "pciback: 0000:00:03.0 released by dom1 (linux): ",
            "pciback: 0000:00:04.0 released by dom1 (linux): ",
            "pciback: 0000:00:05.0 released by dom1 (linux): ",
            "; back in the hidden pool",
            "dom1 (linux): powered off",
            "domains: 1 started, 1 powered off cleanly",
        ]
    };
}

/// The order of a pcifront run: attach, the read with its interrupts,
/// poweroff, release.
const PCIFRONT_IN_ORDER: &[&str] = &[
    "pciback: 0000:00:05.0 (1b36:0010 storage/NVMe) assigned to dom1 (linux)",
    "[d1 linux] init: started",
    "pciback: dom1 (linux): frontend connected",
    "[d1 linux] init: pci functions: 3",
    "[d1 linux] init: nvme0: model \"QEMU NVMe Ctrl\"",
    "[d1 linux] init: nvme0 MSI-X interrupts: ",
    " after: rose",
    "[d1 linux] init: pcifront: done",
    "[d1 linux] init: powering off",
    "pciback: 0000:00:05.0 reset (released): function level reset",
    "pciback: 0000:00:05.0 released by dom1 (linux): ",
    "dom1 (linux): powered off",
];

/// What a pcifront run must not show: [`REJECT`], a function refused, a
/// DMA the IOMMU blocked, a backend warning.
const PCIFRONT_REJECT: &[&str] = &[
    "Kernel panic",
    "segfault at",
    "BUG:",
    "Oops",
    "WARNING: CPU:",
    "destroyed",
    "init: FAILED",
    "Using 2-level ABI",
    "not assigned",
    "iommu: blocked",
    "WARNING: pciback: WARNING",
];

/// The hypervisor's accounts: as each domain ends, what it gave back
/// (`dom<N> (<name>): released: ...`), and once all have ended the free
/// frames and xenstore nodes against before the first was built, and no
/// interrupt route or grant mapping left (`hv: resources: ...`; a leak
/// says "LEAKED" or "more than before the domains", which the scenario
/// refuses).
const RESTART_NO_LEAK: [&str; 4] = [
    "dom1 (linux): released: ",
    "dom2 (linux): released: ",
    "dom3 (linux): released: ",
    "(same as before the domains), pirqs 0, vectors 0, grants 0, xenstore nodes ",
];

/// Every scenario of this area, in order.
pub const LIST: &[Scenario] = &[
    Scenario {
        name: "linux-pv-svm",
        description: "Debian's Linux boots as a PV domain under SVM: /init sees Xen PV, reads the xenstore and its interrupts, and powers off",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info",
        timeout_secs: 300,
        expect: &[
            "] Hypervisor detected: Xen PV",
            "] xen:events: Using FIFO-based ABI",
            "[d1 linux] init: started",
            "[d1 linux] init: hypervisor type: xen",
            "[d1 linux] init: guest type: PV",
            "[d1 linux] init: xenstore name: linux",
            "[d1 linux] init: xenstore vm: /vm/00000000-0000-0000-0000-000000000001",
            "[d1 linux] init: xenstore console: backend-id limit port ring-ref type",
            "[d1 linux] init: interrupts:",
            "xen-percpu -virq timer0",
            "-event xenbus",
            "[d1 linux] init: powering off",
            "dom1 (linux): powered off",
            "domains: 1 started, 1 powered off cleanly",
        ],
        reject: REJECT,
        expect_in_order: &[
            "] Hypervisor detected: Xen PV",
            "[d1 linux] init: started",
            "[d1 linux] init: guest type: PV",
            "[d1 linux] init: interrupts:",
            "[d1 linux] init: powering off",
            "dom1 (linux): powered off",
        ],
        outcome: Outcome::Success,
        modules: linux_modules!(PV_CFG),
    },
    Scenario {
        name: "linux-pv-pcifront-svm",
        description: "PV Linux's own xen-pcifront attaches to the in-hypervisor backend (VT-d): edu, e1000e and NVMe listed with their config space, nvme identifies the controller and reads a known sector by DMA with MSI-X, e1000e reports its MAC; after poweroff the functions are reset and back in the pool",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: HIDE3,
        timeout_secs: 400,
        expect: pcifront_expect!(
            "iommu: VT-d unit 0: interrupt remapping on",
            "its context entry read back"
        ),
        reject: PCIFRONT_REJECT,
        expect_in_order: PCIFRONT_IN_ORDER,
        outcome: Outcome::Success,
        modules: linux_modules!(PCIFRONT_CFG),
    },
    Scenario {
        name: "linux-pv-pcifront-amdvi-svm",
        description: "linux-pv-pcifront-svm with the AMD IOMMU: the same attach, DMA and MSI-X through AMD-Vi's tables",
        emulator: QEMU_AMD,
        boot: Boot::Kernel,
        cmdline: HIDE3,
        timeout_secs: 400,
        expect: pcifront_expect!(
            "iommu: AMD-Vi unit 0: interrupt remapping per function",
            "its device table entry read back"
        ),
        reject: PCIFRONT_REJECT,
        expect_in_order: PCIFRONT_IN_ORDER,
        outcome: Outcome::Success,
        modules: linux_modules!(PCIFRONT_CFG),
    },
    Scenario {
        name: "linux-pv-restart-svm",
        description: "on_reboot = \"restart\": PV Linux reboots twice, each boot attaches the NVMe function again and counts itself on its disk (0, 1, 2); nothing leaks",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info pciback.hide=(00:05.0)",
        timeout_secs: 900,
        expect: &[
            "[d1 linux] init: reboot-count: counter 0",
            "[d2 linux] init: reboot-count: counter 1",
            "[d3 linux] init: reboot-count: counter 2",
            "[d3 linux] init: reboot-count: wrote 3; done",
            "] xen:events: Using FIFO-based ABI",
            "dom3 (linux): powered off",
            "domains: 3 started, 1 powered off cleanly",
            RESTART_NO_LEAK[0],
            RESTART_NO_LEAK[1],
            RESTART_NO_LEAK[2],
            RESTART_NO_LEAK[3],
        ],
        reject: &[
            "Kernel panic",
            "BUG:",
            "Oops",
            "WARNING: CPU:",
            "destroyed",
            "init: FAILED",
            "not assigned",
            "iommu: blocked",
            "restarted as dom4",
            "LEAKED",
            "more than before the domains",
        ],
        expect_in_order: &[
            "pciback: 0000:00:05.0 (1b36:0010 storage/NVMe) assigned to dom1 (linux)",
            "pciback: dom1 (linux): frontend connected",
            "[d1 linux] init: nvme0: model \"QEMU NVMe Ctrl\" serial \"deadbeef\"",
            "[d1 linux] init: reboot-count: counter 0",
            "[d1 linux] init: reboot-count: wrote 1; rebooting",
            "pciback: 0000:00:05.0 reset (released): function level reset",
            "pciback: 0000:00:05.0 released by dom1 (linux): ",
            "dom1 (linux): on_reboot = \"restart\": restarted as dom2 (restart 1 of 3)",
            "pciback: dom2 (linux): frontend connected",
            "[d2 linux] init: nvme0: model \"QEMU NVMe Ctrl\" serial \"deadbeef\"",
            "[d2 linux] init: reboot-count: counter 1",
            "[d2 linux] init: reboot-count: wrote 2; rebooting",
            "pciback: 0000:00:05.0 released by dom2 (linux): ",
            "dom2 (linux): on_reboot = \"restart\": restarted as dom3 (restart 2 of 3)",
            "pciback: dom3 (linux): frontend connected",
            "[d3 linux] init: nvme0: model \"QEMU NVMe Ctrl\" serial \"deadbeef\"",
            "[d3 linux] init: reboot-count: counter 2",
            "[d3 linux] init: reboot-count: wrote 3; done",
            "[d3 linux] init: powering off",
            "pciback: 0000:00:05.0 released by dom3 (linux): ",
            "dom3 (linux): powered off",
            RESTART_NO_LEAK[3],
            "domains: 3 started, 1 powered off cleanly",
        ],
        outcome: Outcome::Success,
        modules: linux_modules!(RESTART_CFG),
    },
    Scenario {
        name: "linux-pv-shutdown-svm",
        description: "the shell's reboot and shutdown reach a Linux PV guest the way xl's do (control/shutdown): its kernel reboots, the domain restarts (on_reboot = \"restart\"), and the second life powers off through its init",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info shell=on",
        timeout_secs: 600,
        expect: &[
            "] xen:events: Using FIFO-based ABI",
            "domains: 2 started, 1 powered off cleanly",
        ],
        reject: &[
            "Kernel panic",
            "BUG:",
            "Oops",
            "WARNING: CPU:",
            "destroyed",
            "init: FAILED",
            "restarted as dom3",
            "Failed to start orderly",
        ],
        expect_in_order: &[
            "[d1 linux] init: wait: waiting for the toolstack",
            "ctl: {\"v\":1,\"cmd\":\"reboot\",\"ok\":true,",
            "[d1 linux] init: wait: asked to reboot",
            "] reboot: Restarting system",
            "dom1 (linux): on_reboot = \"restart\": restarted as dom2 (restart 1 of ",
            "[d2 linux] init: wait: waiting for the toolstack",
            "ctl: {\"v\":1,\"cmd\":\"shutdown\",\"ok\":true,",
            "[d2 linux] init: wait: asked to power off",
            "[d2 linux] init: powering off",
            "dom2 (linux): powered off",
            "ctl: {\"v\":1,\"cmd\":\"quit\",\"ok\":true,",
        ],
        outcome: Outcome::Success,
        modules: SHUTDOWN_MODULES,
    },
    Scenario {
        name: "linux-pv-hotplug-svm",
        description: "pci-attach and pci-detach into a PV domain: Linux (xen-pcifront bound to e1000e at boot) sees NVMe hot-added through Reconfiguring, binds nvme and reads the known sector by DMA; on pci-detach its pcifront removes the function and nvme lets go, the BARs leave its nested tables and its I/O memory rights, the function is reset and back in pci-assignable-list; nothing leaks",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info shell=on pciback.hide=(00:04.0)(00:05.0)",
        timeout_secs: 600,
        expect: &[
            "] xen:events: Using FIFO-based ABI",
            SECTOR_LINES[0],
            SECTOR_LINES[7],
            "domains: 1 started, 1 powered off cleanly",
            "(same as before the domains), pirqs 0, vectors 0, grants 0, xenstore nodes ",
        ],
        reject: &[
            "Kernel panic",
            "segfault at",
            "BUG:",
            "Oops",
            "WARNING: CPU:",
            "destroyed",
            "init: FAILED",
            "not assigned",
            "iommu: blocked",
            "LEAKED",
            "more than before the domains",
        ],
        expect_in_order: &[
            "pciback: 0000:00:04.0 (8086:10d3 network/Ethernet) assigned to dom1 (linux)",
            "pciback: dom1 (linux): frontend connected",
            "[d1 linux] init: pci functions: 1",
            "[d1 linux] init: hotplug: waiting for a new function",
            "pciback: 0000:00:05.0 (1b36:0010 storage/NVMe) assigned to dom1 (linux)",
            "ctl: {\"v\":1,\"cmd\":\"pci-attach\",\"ok\":true,\"msg\":\"0000:00:05.0 attached to dom1: the guest's frontend was asked to reconfigure (backend state 7)\"",
            "[d1 linux] init: hotplug: added 0000:00:01.0 1b36:0010",
            "[d1 linux] init: nvme0: model \"QEMU NVMe Ctrl\" serial \"deadbeef\"",
            SECTOR_LINES[0],
            SECTOR_LINES[7],
            "[d1 linux] init: hotplug: 0000:00:01.0 driver nvme",
            "ctl: {\"v\":1,\"cmd\":\"pci-detach\",\"ok\":true,\"msg\":\"dom1 was asked to let go of 0000:00:05.0 (backend state 7)",
            "pciback: 0000:00:05.0 reset (released): function level reset",
            "pciback: 0000:00:05.0 released by dom1 (linux)",
            "pciback: dom1: 0000:00:05.0 detached",
            "[d1 linux] init: hotplug: 0000:00:01.0 removed",
            "nvme0 gone; block device gone",
            "[d1 linux] init: hotplug: pci functions left: 1 (0000:00:00.0 )",
            "[d1 linux] init: hotplug: done",
            "dom1 (linux): powered off",
            "ctl: {\"v\":1,\"cmd\":\"pci-assignable-list\",\"ok\":true,\"msg\":\"2 hidden function(s) no domain owns\",\"rows\":[{\"bdf\":\"0000:00:04.0\"",
            "{\"bdf\":\"0000:00:05.0\"",
            "ctl: {\"v\":1,\"cmd\":\"quit\",\"ok\":true",
        ],
        outcome: Outcome::Success,
        modules: HOTPLUG_MODULES,
    },
    Scenario {
        name: "linux-pv-vmx",
        description: "Debian's Linux boots as a PV domain under VMX with EPT (Bochs), reads xenstore and powers off",
        emulator: BOCHS_VMX,
        boot: Boot::Grub(Protocol::Mb2),
        cmdline: "loglvl=info",
        // About 90 s on a 2-core machine (most of it Bochs emulating Linux's
        // boot); twice that for a busy one.
        timeout_secs: 600,
        expect: &[
            "vmx: enabled (EPT, unrestricted guest",
            "] Hypervisor detected: Xen PV",
            "] xen:events: Using FIFO-based ABI",
            "[d1 linux] init: started",
            "[d1 linux] init: hypervisor type: xen",
            "[d1 linux] init: guest type: PV",
            "[d1 linux] init: xenstore name: linux",
            "[d1 linux] init: powering off",
            "dom1 (linux): powered off",
            "domains: 1 started, 1 powered off cleanly",
        ],
        reject: REJECT,
        expect_in_order: &[
            "] Hypervisor detected: Xen PV",
            "[d1 linux] init: started",
            "[d1 linux] init: powering off",
            "dom1 (linux): powered off",
        ],
        outcome: Outcome::Success,
        modules: linux_modules!(PV_BOCHS_CFG),
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk;

    #[test]
    fn the_expected_sector_is_the_one_ci_writes() {
        let hex = disk::known_hex_lines();
        for (k, line) in SECTOR_LINES.iter().enumerate() {
            let want = format!(
                "[d1 linux] init: nvme0n1 sector {} +{}: {}",
                disk::KNOWN_LBA,
                k * disk::LINE,
                hex[k]
            );
            assert_eq!(*line, want);
        }
    }

    #[test]
    fn every_domain_is_pv_with_the_kernel_and_initramfs() {
        for s in LIST {
            assert!(s.needs_debian_guests(), "{}", s.name);
            let cfg = s
                .boot_modules()
                .find_map(|m| match m.content {
                    ModuleContent::Text(t) => Some(t),
                    _ => None,
                })
                .expect("a configuration");
            assert!(cfg.contains("\ntype = \"pv\"\n"), "{}", s.name);
            assert!(cfg.contains("kernel = \"vmlinux\"\nramdisk = \"initrd.gz\"\n"));
            assert!(
                cfg.contains("cmdline = \"console=hvc0 earlyprintk=xen loglevel=7"),
                "{}",
                s.name
            );
        }
    }

    #[test]
    fn each_mode_is_one_init_knows() {
        let init = include_str!("../guests/init.sh");
        for (cfg, mode) in [
            (PCIFRONT_CFG, "pcifront"),
            (RESTART_CFG, "reboot-count"),
            (HOTPLUG_CFG, "hotplug"),
        ] {
            assert!(cfg.contains(&format!(" hvtest={mode}\"")), "{cfg}");
            assert!(init.contains(&format!("\n    {mode}) ")), "{mode}");
        }
        assert!(!PV_CFG.contains("hvtest="));
    }

    #[test]
    fn the_pcifront_runs_hide_and_pass_the_same_three_functions() {
        assert!(PCIFRONT_CFG.contains("pci = ['00:03.0', '00:04.0', '00:05.0']\n"));
        assert!(HIDE3.ends_with("pciback.hide=(00:03.0)(00:04.0)(00:05.0)"));
        let [intel, amd] = [&LIST[1], &LIST[2]];
        assert_eq!(intel.emulator, QEMU_INTEL);
        assert_eq!(amd.emulator, QEMU_AMD);
        // The same guest lines; only the IOMMU's differ.
        let differ: Vec<_> = intel
            .expect
            .iter()
            .zip(amd.expect)
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(differ.len(), 2, "{differ:?}");
    }

    #[test]
    fn the_restart_run_boots_three_times_and_no_more() {
        let s = &LIST[3];
        assert!(RESTART_CFG.contains("on_reboot = \"restart\"\n"));
        for (d, counter) in [(1, 0), (2, 1), (3, 2)] {
            let line = format!("[d{d} linux] init: reboot-count: counter {counter}");
            assert!(s.expect_in_order.contains(&line.as_str()), "{line}");
        }
        assert!(s.reject.contains(&"restarted as dom4"));
        for line in RESTART_NO_LEAK {
            assert!(s.expect.contains(&line), "{line}");
        }
    }

    #[test]
    fn the_vmx_run_is_bochs_from_grub_in_the_default_list() {
        let s = LIST
            .iter()
            .find(|s| s.name == "linux-pv-vmx")
            .expect("linux-pv-vmx");
        assert_eq!(s.emulator, BOCHS_VMX);
        assert!(matches!(s.boot, Boot::Grub(_)));
        assert!(all().any(|d| d.name == s.name));
        assert!(PV_BOCHS_CFG.contains(" clearcpuid=xsavec\""));
    }
}
