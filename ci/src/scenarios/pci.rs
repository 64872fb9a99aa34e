//! PCI passthrough: the `xpci` frontend guest attaches to the hypervisor's
//! PCI backend, sees exactly its devices and drives them (QEMU's edu,
//! NVMe and e1000e; Bochs' e1000).
//!
//! QEMU's standard machine (see `crate::qemu`) has edu at 00:03.0, an
//! e1000e at 00:04.0 and NVMe at 00:05.0, and an Intel IOMMU: DMA is
//! confined to the guest by VT-d and every MSI goes through an interrupt
//! remapping entry, so no run there needs `pciback.insecure` (Bochs has no
//! IOMMU: its run opts in). The BAR addresses are the
//! ones QEMU's firmware gives this machine; each scenario checks the
//! host's view (the boot log's PCI table) next to the guest's.

use super::*;

/// A module list: the xpci image and one configuration.
macro_rules! xpci_modules {
    ($($cfg_name:literal => $cfg:expr),+ $(,)?) => {
        &[
            BootModule {
                name: "xpci",
                content: ModuleContent::Guest("xpci"),
            },
            $(BootModule {
                name: $cfg_name,
                content: ModuleContent::Text($cfg),
            },)+
        ]
    };
}

/// An xpci guest's configuration: its name, memory in MiB, `pci` list, the
/// guest's command line, and any further `key = value` lines.
macro_rules! xpci_cfg {
    ($name:literal, $mem:literal, $pci:literal, $extra:literal $(, $line:literal)* $(,)?) => {
        concat!(
            "name = \"", $name, "\"\n",
            "kernel = \"xpci\"\n",
            "memory = ", $mem, "\n",
            "pci = ", $pci, "\n",
            $($line,)*
            "extra = \"", $extra, "\"\n"
        )
    };
}

/// Hides the three devices.
const HIDE3: &str = "loglvl=info pciback.hide=(00:03.0)(00:04.0)(00:05.0)";

const XPCI_CFG: &str = "# the xpci frontend guest with three devices\n\
name = \"xpci\"\n\
kernel = \"xpci\"\n\
memory = 64\n\
pci = ['00:03.0', '0000:00:04.0', '00:05.0,permissive=0']\n\
extra = \"expect=1234:11e8,8086:10d3,1b36:0010\"\n";

const EDU_CFG: &str = xpci_cfg!("edu", 64, "['00:03.0']", "expect=1234:11e8",);

/// `reconnect-svm`'s lines in order: the first connection, then for each
/// round the disconnection, the backend probing again, the connection and
/// edu driven again, then the guest's summary.
macro_rules! reconnect_rounds {
    ($($i:literal),+) => {
        &[
            "pciback: dom1 (edu): frontend connected",
            "[d1 edu] xpci: edu: 10! = 3628800",
            $(
                concat!("[d1 edu] xpci: pcifront: disconnecting and connecting again (", $i, " of 3)"),
                "pciback: dom1 (edu): frontend disconnected; its functions stay assigned, quiesced until it connects again",
                "the frontend starts over after closing: the backend probes again",
                "pciback: dom1 (edu): frontend connected",
                "[d1 edu] [test] pcifront: connected again after closing: PASS",
                "[d1 edu] xpci: 1 functions on 1 roots;",
                "[d1 edu] [test] pcifront: frontend state Connected again: PASS",
                "[d1 edu] xpci: edu: 10! = 3628800",
                "[d1 edu] [test] edu: raised interrupt arrives by MSI: PASS",
                "[d1 edu] [test] edu: DMA copy equals the source: PASS",
            )+
            "[d1 edu] [test] summary: ",
        ]
    };
}

/// The edu guest that disconnects and connects again three times.
const RECONNECT_CFG: &str = xpci_cfg!("edu", 64, "['00:03.0']", "expect=1234:11e8 reconnect=3",);

const NVME_CFG: &str = xpci_cfg!("nvme", 64, "['00:05.0']", "expect=1b36:0010",);

const UEFI_CFG: &str = xpci_cfg!(
    "uefi",
    64,
    "['00:03.0', '00:05.0']",
    "expect=1234:11e8,1b36:0010",
);

/// The two guests of `xpci-two-guests-svm`, each also reading the other's
/// BAR (NVMe's registers and its MSI-X page; edu's registers).
const TWO_EDU_CFG: &str = xpci_cfg!(
    "edu",
    64,
    "['00:03.0']",
    "expect=1234:11e8 probe=0xfe984000,0xfe986000",
);
const TWO_NVME_CFG: &str = xpci_cfg!(
    "nvme",
    64,
    "['00:05.0']",
    "expect=1b36:0010 probe=0xfe800000",
);

/// edu at the host's address (`pci_topology = "passthrough"`).
const PASSTHROUGH_CFG: &str = xpci_cfg!(
    "edu",
    64,
    "['00:03.0']",
    "expect=1234:11e8",
    "pci_topology = \"passthrough\"\n",
);

/// The second guest of `xpci-denied-svm`: one device it may have, then
/// one not hidden, one that does not exist and one the first guest owns.
const DENIED_CFG: &str = xpci_cfg!(
    "greedy",
    64,
    "['00:05.0', '00:04.0', '00:1f.7', '00:03.0']",
    "expect=1b36:0010",
);

const RESTART_CFG: &str = xpci_cfg!(
    "again",
    64,
    "['00:03.0']",
    "expect=1234:11e8",
    "on_poweroff = \"restart\"\n",
);

/// The first e1000e alone (no DMA in its driver).
const E1000E_CFG: &str = xpci_cfg!("nic", 64, "['00:04.0']", "expect=8086:10d3",);

/// The first e1000e taken with `seize=1` although `pciback.hide=` does not
/// name it.
const SEIZE_CFG: &str = xpci_cfg!("nic", 64, "['00:04.0,seize=1']", "expect=8086:10d3");

/// The same guest on Bochs: the i440FX machine's e1000 (slot 1 of the
/// bochsrc, device 2 on the bus).
const E1000_CFG: &str = xpci_cfg!("nic", 32, "['00:02.0']", "expect=8086:100e",);

/// The edu lines of a guest that drove it through the backend.
macro_rules! edu_lines {
    ($d:literal) => {
        [
            concat!("[", $d, "] xpci: edu: identification 0x010000ed"),
            concat!(
                "[",
                $d,
                "] [test] edu: liveness register reads back the inverse: PASS"
            ),
            concat!("[", $d, "] xpci: edu: 10! = 3628800"),
            concat!(
                "[",
                $d,
                "] [test] edu: raised interrupt arrives by MSI: PASS"
            ),
            concat!(
                "[",
                $d,
                "] [test] edu: DMA RAM -> edu completes with an MSI: PASS"
            ),
            concat!(
                "[",
                $d,
                "] [test] edu: DMA edu -> RAM completes with an MSI: PASS"
            ),
            concat!("[", $d, "] [test] edu: DMA copy equals the source: PASS"),
            concat!(
                "[",
                $d,
                "] [test] edu: two INTx interrupts arrive, each after the last EOI: PASS"
            ),
        ]
    };
}

const EDU_EXPECT: &[&str] = &{
    let e = edu_lines!("d1 edu");
    [
        "pci: 0000:00:03.0 1234:11e8 class 00ff00 (unclassified) rev 10",
        "pci:     BAR0 mem32 0xfe800000 [size 1M]",
        "iommu: 0000:00:03.0 translates through dom1's tables",
        "[d1 edu] xpci: 00:00.0 1234:11e8 class 00ff00 rev 10",
        "[d1 edu] xpci: 00:00.0   BAR0 mem32 at 0xfe800000 size 1M",
        "[d1 edu] xpci: 00:00.0   caps: MSI(05)@40",
        "[d1 edu] xpci: edu: MSI as pirq ",
        e[0],
        e[1],
        e[2],
        e[3],
        e[4],
        e[5],
        e[6],
        e[7],
        "pciback: dom1 (edu): 0000:00:03.0 INTx: GSI 23 (level, active high) -> vector ",
        "[d1 edu] xpci: 00:00.0 1234:11e8 class 00ff00 rev 10 irq pirq 23",
        "[d1 edu] [test] summary: ",
        "dom1 (edu): powered off",
    ]
};

/// Every scenario of this area, in order.
pub const LIST: &[Scenario] = &[
    Scenario {
        name: "xpci-attach-svm",
        description: "the xpci frontend attaches to the in-hypervisor backend and sees exactly edu, e1000e and NVMe, as the host sees them (capabilities filtered); e1000e's I/O BAR is reached without an exit (the domain's port bitmap)",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: HIDE3,
        timeout_secs: 120,
        expect: &[
            // the host's view
            "pci: 0000:00:04.0 8086:10d3 class 020000 (network/Ethernet) rev 00",
            "pci:     BAR0 mem32 0xfe940000 [size 128K]",
            "pci:     BAR3 mem32 0xfe980000 [size 16K]",
            "pci: 0000:00:05.0 1b36:0010 class 010802 (storage/NVMe) rev 02",
            "pci:     BAR0 mem64 0xfe984000 [size 16K]",
            "pci:     caps: MSI-X@40 PCIe@80 PM@60",
            // the toolstack and the backend
            "pciback: 0000:00:03.0 (1234:11e8 unclassified) assigned to dom1 (xpci)",
            "pciback: 0000:00:04.0 (8086:10d3 network/Ethernet) assigned to dom1 (xpci)",
            "pciback: 0000:00:05.0 (1b36:0010 storage/NVMe) assigned to dom1 (xpci)",
            "pciback: 0000:00:05.0 reset (assigned): function level reset",
            "iommu: 0000:00:05.0 translates through dom1's tables",
            "pciback: dom1: 0000:00:03.0 exported as 0000:00:00.0",
            "pciback: dom1: 0000:00:04.0 exported as 0000:00:01.0",
            "pciback: dom1: 0000:00:05.0 exported as 0000:00:02.0",
            "pciback: dom1 (xpci): frontend connected",
            // the I/O BAR: read by the guest straight from the device
            "[d1 xpci] [test] e1000e: STATUS through the I/O BAR equals the MMIO read: PASS",
            "dom1 (xpci): exits: 10 cpuid, 3 msr, 0 io,",
            // the guest's view: same IDs, BARs and sizes; PM, MSI, PCIe
            // and MSI-X kept, extended capabilities hidden
            "[d1 xpci] xpci: pcifront: root-0 0000:00",
            "[d1 xpci] xpci: 00:00.0 1234:11e8 class 00ff00 rev 10",
            "[d1 xpci] xpci: 00:00.0   BAR0 mem32 at 0xfe800000 size 1M",
            "[d1 xpci] xpci: 00:01.0 8086:10d3 class 020000 rev 00",
            "[d1 xpci] xpci: 00:01.0   BAR0 mem32 at 0xfe940000 size 128K",
            "[d1 xpci] xpci: 00:01.0   BAR1 mem32 at 0xfe960000 size 128K",
            "[d1 xpci] xpci: 00:01.0   BAR2 io at 0xd040 size 32",
            "[d1 xpci] xpci: 00:01.0   BAR3 mem32 at 0xfe980000 size 16K",
            "[d1 xpci] xpci: 00:01.0   caps: PM(01)@c8 MSI(05)@d0 PCIe(10)@e0 MSI-X(11)@a0",
            "[d1 xpci] xpci: 00:01.0   MSI-X: 5 entries, table BAR3+0x0, PBA BAR3+0x2000",
            "[d1 xpci] xpci: 00:02.0 1b36:0010 class 010802 rev 02",
            "[d1 xpci] xpci: 00:02.0   BAR0 mem64 at 0xfe984000 size 16K",
            "[d1 xpci] xpci: 00:02.0   caps: MSI-X(11)@40 PCIe(10)@80 PM(01)@60",
            "[d1 xpci] xpci: 00:02.0   MSI-X: 65 entries, table BAR0+0x2000, PBA BAR0+0x3000",
            "[d1 xpci] xpci: 3 functions on 1 roots",
            "[d1 xpci] [test] expect: every expected device found: PASS",
            "[d1 xpci] [test] expect: no device beyond the expected ones: PASS",
            "[d1 xpci] xpci: e1000e: mac 52:54:00:12:34:56 link up",
            "[d1 xpci] [test] e1000e: two INTx interrupts arrive, each after the last EOI: PASS",
            "[d1 xpci] [test] pcifront: every op answered: PASS",
        ],
        reject: &[": FAIL", "not assigned", "ext caps", "destroyed", "WARNING: pciback: WARNING"],
        expect_in_order: &[
            "[d1 xpci] xpci: transport pcifront",
            "[d1 xpci] xpci: 00:00.0 1234:11e8",
            "[d1 xpci] [test] summary:",
            "pciback: 0000:00:03.0 released by dom1 (xpci)",
            "dom1 (xpci): powered off",
        ],
        outcome: Outcome::Success,
        modules: xpci_modules!("xpci.cfg" => XPCI_CFG),
    },
    Scenario {
        name: "xpci-edu-svm",
        description: "edu through the backend: factorial by MMIO, DMA both ways confined by VT-d, MSI as a pirq event, each device interrupt one exit (the guest waits with interrupts off: its upcall is a virtual interrupt, no interrupt-window exit)",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info pciback.hide=(00:03.0)",
        timeout_secs: 120,
        expect: EDU_EXPECT,
        reject: &[": FAIL", "not assigned", "iommu: blocked", "destroyed", "WARNING: pciback: WARNING"],
        expect_in_order: &[
            "[d1 edu] [test] edu: raised interrupt arrives by MSI: PASS",
            "dom1 (edu): exits: ",
            " npf, 0 interrupt window, ",
        ],
        outcome: Outcome::Success,
        modules: xpci_modules!("edu.cfg" => EDU_CFG),
    },
    Scenario {
        name: "xpci-passthrough-topology-svm",
        description: "pci_topology = \"passthrough\": the guest finds edu at its host address 00:03.0 and drives it",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info pciback.hide=(00:03.0)",
        timeout_secs: 120,
        expect: &[
            "pciback: dom1: 0000:00:03.0 exported as 0000:00:03.0",
            "[d1 edu] xpci: pcifront: root-0 0000:00",
            "[d1 edu] xpci: 00:03.0 1234:11e8 class 00ff00 rev 10 irq pirq 23",
            "[d1 edu] xpci: 1 functions on 1 roots",
            "[d1 edu] xpci: edu: 10! = 3628800",
            "[d1 edu] [test] edu: DMA copy equals the source: PASS",
            "dom1 (edu): powered off",
        ],
        reject: &[": FAIL", "not assigned", "destroyed"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: xpci_modules!("edu.cfg" => PASSTHROUGH_CFG),
    },
    Scenario {
        name: "xpci-seize-svm",
        description: "seize=1: a function pciback.hide= did not name is quiesced, taken into the pool and assigned, and works",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info",
        timeout_secs: 120,
        expect: &[
            "WARNING: pciback: 0000:00:04.0 seized (seize=1): it was not in pciback.hide=",
            "pciback: 0000:00:04.0 (8086:10d3 network/Ethernet) assigned to dom1 (nic)",
            "[d1 nic] xpci: e1000e: mac 52:54:00:12:34:56 link up",
            "[d1 nic] [test] e1000e: two INTx interrupts arrive, each after the last EOI: PASS",
            "pciback: 0000:00:04.0 released by dom1 (nic)",
            "dom1 (nic): powered off",
        ],
        reject: &[": FAIL", "not assigned", "destroyed"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: xpci_modules!("nic.cfg" => SEIZE_CFG),
    },
    Scenario {
        name: "xpci-nvme-svm",
        description: "NVMe through the backend: admin queues in guest RAM, Identify Controller completed by MSI-X",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info pciback.hide=(00:05.0)",
        timeout_secs: 120,
        expect: &[
            "pciback: 0000:00:05.0 (1b36:0010 storage/NVMe) assigned to dom1 (nvme)",
            "[d1 nvme] xpci: 00:00.0 1b36:0010 class 010802 rev 02",
            "[d1 nvme] xpci: nvme: version 1.4.0",
            "[d1 nvme] xpci: nvme: MSI-X vector 0 as pirq ",
            "[d1 nvme] [test] nvme: Identify completion signalled by MSI-X: PASS",
            "[d1 nvme] xpci: nvme: model \"QEMU NVMe Ctrl\" serial \"deadbeef\"",
            "[d1 nvme] [test] nvme: MSI-X disabled: PASS",
            "dom1 (nvme): powered off",
            "pciback: 0000:00:05.0 reset (released): function level reset",
        ],
        reject: &[": FAIL", "not assigned", "iommu: blocked", "destroyed", "WARNING: pciback: WARNING"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: xpci_modules!("nvme.cfg" => NVME_CFG),
    },
    Scenario {
        name: "boot-uefi-qemu",
        description: "UEFI (OVMF) boots GRUB's EFI image, which boots the hypervisor by multiboot2: the EFI memory map and the loader's RSDP are used, and xpci drives edu and the NVMe, whose 64-bit BAR the firmware put above 4 GiB (mapped in the guest and, for its MSI-X table, in the hypervisor)",
        emulator: QEMU_INTEL,
        boot: Boot::GrubUefi,
        cmdline: "loglvl=info pciback.hide=(00:03.0)(00:05.0)",
        timeout_secs: 180,
        expect: &[
            "hv: boot protocol multiboot2 (loader \"GRUB",
            ", from the EFI memory map):",
            " EFI runtime services",
            "acpi: RSDP from the boot loader",
            "mem: 0000:00:05.0: device memory 0x",
            "[d1 uefi] [test] edu: DMA copy equals the source: PASS",
            "[d1 uefi] [test] edu: raised interrupt arrives by MSI: PASS",
            "[d1 uefi] [test] nvme: Identify completion signalled by MSI-X: PASS",
            "[d1 uefi] xpci: nvme: model \"QEMU NVMe Ctrl\" serial \"deadbeef\"",
            "[d1 uefi] [test] summary: ",
            "dom1 (uefi): powered off",
        ],
        reject: &[": FAIL", "Unmappable", "cannot be mapped", "panic"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: xpci_modules!("uefi.cfg" => UEFI_CFG),
    },
    Scenario {
        name: "xpci-two-guests-svm",
        description: "two xpci guests, edu for one and NVMe for the other: each sees and drives only its own, and reads all-ones at the other's BAR",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info pciback.hide=(00:03.0)(00:05.0)",
        timeout_secs: 150,
        expect: &[
            "pciback: 0000:00:03.0 (1234:11e8 unclassified) assigned to dom1 (edu)",
            "pciback: 0000:00:05.0 (1b36:0010 storage/NVMe) assigned to dom2 (nvme)",
            "iommu: 0000:00:03.0 translates through dom1's tables",
            "iommu: 0000:00:05.0 translates through dom2's tables",
            "[d1 edu] xpci: 1 functions on 1 roots",
            "[d2 nvme] xpci: 1 functions on 1 roots",
            "[d1 edu] [test] expect: no device beyond the expected ones: PASS",
            "[d2 nvme] [test] expect: no device beyond the expected ones: PASS",
            "[d1 edu] [test] edu: DMA copy equals the source: PASS",
            "[d2 nvme] xpci: nvme: model \"QEMU NVMe Ctrl\" serial \"deadbeef\"",
            // neither reaches the other's BAR
            "[d1 edu] [test] probe: 0xfe984000 reads all-ones: PASS",
            "[d1 edu] [test] probe: 0xfe986000 reads all-ones: PASS",
            "[d2 nvme] [test] probe: 0xfe800000 reads all-ones: PASS",
            "dom1 (edu): powered off",
            "dom2 (nvme): powered off",
            "domains: 2 started, 2 powered off cleanly",
        ],
        reject: &[": FAIL", "not assigned", "iommu: blocked", "destroyed", "WARNING: pciback: WARNING"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: xpci_modules!("edu.cfg" => TWO_EDU_CFG, "nvme.cfg" => TWO_NVME_CFG),
    },
    Scenario {
        name: "xpci-denied-svm",
        description: "a guest naming a device that is not hidden, one that does not exist and one already owned gets a clear refusal for each and keeps the one it may have",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info pciback.hide=(00:03.0)(00:05.0)",
        timeout_secs: 150,
        expect: &[
            "pciback: 0000:00:03.0 (1234:11e8 unclassified) assigned to dom1 (edu)",
            "pciback: 0000:00:05.0 (1b36:0010 storage/NVMe) assigned to dom2 (greedy)",
            "pciback: dom2 (greedy): 0000:00:04.0 not assigned: it is not hidden: add it to pciback.hide= on the hypervisor command line",
            "pciback: dom2 (greedy): 0000:00:1f.7 not assigned: no such PCI function on this machine",
            "pciback: dom2 (greedy): 0000:00:03.0 not assigned: it is already assigned to dom1",
            "[d2 greedy] xpci: 1 functions on 1 roots",
            "[d2 greedy] [test] expect: no device beyond the expected ones: PASS",
            "[d2 greedy] xpci: nvme: model \"QEMU NVMe Ctrl\" serial \"deadbeef\"",
            "[d1 edu] [test] edu: DMA copy equals the source: PASS",
            "domains: 2 started, 2 powered off cleanly",
        ],
        reject: &[": FAIL", "iommu: blocked", "destroyed"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: xpci_modules!("edu.cfg" => EDU_CFG, "greedy.cfg" => DENIED_CFG),
    },
    Scenario {
        name: "xpci-restart-svm",
        description: "the guest powers off, edu is reset and goes back to the hidden pool, the restarted guest attaches again and drives it",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info pciback.hide=(00:03.0)",
        timeout_secs: 240,
        expect: &[
            "dom3 (again): on_poweroff = \"restart\": restarted as dom4 (restart 3 of 3)",
            "[d4 again] [test] summary: ",
            "pciback: 0000:00:03.0 released by dom4 (again)",
        ],
        reject: &[": FAIL", "not assigned", "iommu: blocked", "destroyed", "WARNING: pciback: WARNING"],
        expect_in_order: &[
            "[d1 again] [test] edu: DMA copy equals the source: PASS",
            "pciback: 0000:00:03.0 released by dom1 (again)",
            "dom1 (again): powered off",
            "iommu: 0000:00:03.0 translates through dom2's tables",
            "pciback: 0000:00:03.0 (1234:11e8 unclassified) assigned to dom2 (again)",
            "dom1 (again): on_poweroff = \"restart\": restarted as dom2",
            "pciback: dom2 (again): frontend connected",
            "[d2 again] xpci: edu: 10! = 3628800",
            "[d2 again] [test] edu: DMA copy equals the source: PASS",
            "pciback: 0000:00:03.0 released by dom2 (again)",
        ],
        outcome: Outcome::Success,
        modules: xpci_modules!("again.cfg" => RESTART_CFG),
    },
    Scenario {
        name: "reconnect-svm",
        description: "the frontend closes (Closing, Closed) and starts over three times: each time the backend quiesces edu while it is closed, probes again, connects, and the guest scans and drives edu (MSI, DMA) again",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info pciback.hide=(00:03.0)",
        timeout_secs: 180,
        expect: &["dom1 (edu): powered off", "pciback: 0000:00:03.0 released by dom1 (edu)"],
        reject: &[": FAIL", "not assigned", "iommu: blocked", "destroyed"],
        expect_in_order: reconnect_rounds!(1, 2, 3),
        outcome: Outcome::Success,
        modules: xpci_modules!("edu.cfg" => RECONNECT_CFG),
    },
    Scenario {
        name: "xpci-attach-vmx",
        description: "Bochs (VMX, no IOMMU): the e1000 passed through under pciback.insecure; attach, reset, MAC and link read through the guest's BAR mapping, its I/O BAR reached without an exit (VMX I/O bitmaps)",
        emulator: BOCHS_VMX,
        boot: Boot::Grub(Protocol::Mb2),
        cmdline: "loglvl=info pciback.hide=(00:02.0) pciback.insecure",
        timeout_secs: 300,
        expect: &[
            "iommu: no IOMMU found",
            "pci: 0000:00:02.0 8086:100e class 020000 (network/Ethernet) rev 03",
            "pciback: 0000:00:02.0 (8086:100e network/Ethernet) assigned to dom1 (nic) WITHOUT DMA isolation",
            "pciback: dom1 (nic): frontend connected",
            "[d1 nic] xpci: 00:00.0 8086:100e class 020000",
            "[d1 nic] [test] expect: every expected device found: PASS",
            "[d1 nic] xpci: e1000: mac 52:54:00:12:34:56",
            // the PIIX routes the e1000's INTA to IRQ 9, which the USB
            // controller shares: no INTx for the guest
            "pciback: dom1 (nic): 0000:00:02.0: INTx not offered: GSI 9 is shared with 0000:00:01.2",
            "[d1 nic] xpci: e1000: STATUS through I/O BAR ",
            "dom1 (nic): exits: 10 cpuid, 3 msr, 0 io,",
            "dom1 (nic): powered off",
        ],
        reject: &[": FAIL", "destroyed"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: xpci_modules!("nic.cfg" => E1000_CFG),
    },
];

/// The victim of the escape scenarios: a guest that keeps running (and
/// would crash if its image were overwritten).
const VICTIM_CFG: &str = "name = \"victim\"\n\
kernel = \"ticker\"\n\
memory = 32\n\
extra = \"spin=400000000\"\n";

/// The attacker: edu DMA-writes to the hypervisor's canary page, to where
/// the victim's image is in host memory, to an address beyond its RAM, and
/// reads from there. An I/O virtual address is a guest-physical one: the
/// host addresses either land in the attacker's own RAM (when it has RAM
/// there) or fault.
const ESCAPE_CFG: &str = xpci_cfg!(
    "evil",
    16,
    "['00:03.0']",
    "expect=1234:11e8 attack=dma-write:canary,dma-write:peer,dma-write:0x10000000,dma-read:0x10000000",
);

/// The attacker of the forge scenarios: edu DMA-writes MSI messages to
/// the interrupt window: in the compatibility format a fixed vector the
/// hypervisor gave nobody (0xdf) and an NMI, in VT-d's remappable format
/// index 255 (free) and 32767 (beyond the table).
const FORGE_CFG: &str = xpci_cfg!(
    "evil",
    64,
    "['00:03.0']",
    "expect=1234:11e8 attack=msi-forge",
);

/// The attacker of the quarantine scenario: it drives edu, then starts a
/// DMA into its own buffer and powers off before edu finishes it.
const LATE_DMA_CFG: &str = xpci_cfg!(
    "evil",
    64,
    "['00:03.0']",
    "expect=1234:11e8 attack=dma-after-death",
);

/// The escape scenarios' domains: the victim first (so the attacker learns
/// where it is), then the attacker.
const ESCAPE_MODULES: &[BootModule] = victim_and_attacker!(VICTIM_CFG, ESCAPE_CFG);

/// The victim is still running when the attack comes, and after; then
/// what only the checks after the attack print: the victim's page the
/// attacker aimed at (`hv.peer=`) is as it was before the domains ran, the
/// freed memory is zero, the DMA's byte is nowhere in host RAM, and the
/// hypervisor's canary is unchanged (its creation line at boot says
/// "canary page at host-physical", not "unchanged").
const ESCAPE_IN_ORDER: &[&str] = &[
    "[d1 victim] ticker: tick 0",
    "[d2 evil] xpci: attack: dma-write ",
    "[d1 victim] ticker: done",
    "isolation: dom1's page at guest-physical 0x100000 (hv.peer=0x",
    ") unchanged from before the domains ran to its end",
    "isolation: the domains' freed memory (",
    "isolation: no 64-byte run of the DMA attack byte 0xa5 in host RAM (",
    "isolation: canary page at 0x",
    " unchanged after 2 domains",
];

/// What the escape scenarios reject: a failed check, a domain destroyed,
/// and any isolation check that found memory changed.
const ESCAPE_REJECT: &[&str] = &[": FAIL", "destroyed", "CHANGED", "a DMA write landed"];

/// The forge scenarios: the guest saw no event from its forged messages,
/// its device still works, and the hypervisor carried on.
macro_rules! forge_expect {
    ($($unit:literal),* $(,)?) => {
        &[
            "[d1 evil] [test] attack: msi-forge fixed vector 0xdf: the guest survived and saw no event: PASS",
            "[d1 evil] [test] attack: msi-forge NMI: the guest survived and saw no event: PASS",
            "[d1 evil] [test] attack: msi-forge remappable index 255: the guest survived and saw no event: PASS",
            "[d1 evil] [test] attack: msi-forge remappable index 32767: the guest survived and saw no event: PASS",
            "[d1 evil] xpci: edu: 10! = 3628800",
            "dom1 (evil): powered off",
            "hv: boot complete",
            $($unit),*
        ]
    };
}

/// QEMU's standard machine without an IOMMU.
const QEMU_NO_IOMMU: Emulator = Emulator::Qemu {
    iommu: Iommu::None,
    devices: &[],
};

/// edu's DMA and MSI through an IOMMU, as the hypervisor and the guest
/// report them: `$unit` is the boot line of the unit's remapping, `$d` the
/// guest's log prefix.
macro_rules! dma_through {
    ($unit:literal, $remap:literal) => {
        &[
            $unit,
            $remap,
            "iommu: 0000:00:03.0 translates through dom1's tables",
            "pciback: 0000:00:03.0 (1234:11e8 unclassified) assigned to dom1 (edu)",
            "[d1 edu] xpci: edu: MSI as pirq ",
            "[d1 edu] [test] edu: raised interrupt arrives by MSI: PASS",
            "[d1 edu] [test] edu: DMA RAM -> edu completes with an MSI: PASS",
            "[d1 edu] [test] edu: DMA edu -> RAM completes with an MSI: PASS",
            "[d1 edu] [test] edu: DMA copy equals the source: PASS",
            "[d1 edu] [test] edu: two INTx interrupts arrive, each after the last EOI: PASS",
            "dom1 (edu): powered off",
            "iommu: 0000:00:03.0 blocked again (no owner: no DMA, no interrupts; its ",
        ]
    };
}

/// The quarantine scenario on one IOMMU: the guest starts an edu DMA
/// into its own buffer and dies before it ends, and the released edu keeps
/// bus mastering on (`debug.keep-bus-master`), so that only the IOMMU
/// stands between the late write and memory; `$entry` is how the
/// hypervisor says it read the blocked entry back, `$blocked` what it logs
/// of the blocked write.
macro_rules! quarantine {
    ($name:literal, $emulator:expr, $entry:literal, [$($blocked:literal),*]) => {
        Scenario {
            name: $name,
            description: "the guest starts an edu DMA into its own buffer and dies before it ends; edu is blocked in the IOMMU (its entry read back) before the guest's memory is scrubbed and freed, and keeps bus mastering on (debug.keep-bus-master), so only the IOMMU stops the late write: the dead guest's memory is unchanged for 300 ms after the release, and the freed memory still reads zero 300 ms after the scrub",
            emulator: $emulator,
            boot: Boot::Kernel,
            cmdline: "loglvl=info debug.canary debug.keep-bus-master pciback.hide=(00:03.0)",
            timeout_secs: 120,
            expect: &["dom1 (evil): powered off"],
            reject: &[
                ": FAIL",
                "destroyed",
                "still lets it through",
                "cannot be blocked",
                "CHANGED",
            ],
            expect_in_order: &[
                "iommu: 0000:00:03.0 translates through dom1's tables",
                "[d1 evil] [test] edu: DMA copy equals the source: PASS",
                "[d1 evil] [test] attack: dma-after-death: edu loaded: PASS",
                "[d1 evil] xpci: attack: dma-after-death: edu's DMA of 2048 bytes to ",
                "[d1 evil] shut down: poweroff",
                concat!(
                    "iommu: 0000:00:03.0 blocked again (no owner: no DMA, no interrupts; ",
                    $entry,
                    ")"
                ),
                "pciback: debug.keep-bus-master: 0000:00:03.0 keeps bus mastering on after its release",
                "pciback: 0000:00:03.0 released by dom1 (evil): command ",
                $($blocked,)*
                "isolation: dom1's memory unchanged in the 300 ms after its devices were released",
                "dom1 (evil): memory scrubbed and returned",
                "isolation: the domains' freed memory (",
                "isolation: canary page at ",
            ],
            outcome: Outcome::Success,
            modules: xpci_modules!("evil.cfg" => LATE_DMA_CFG),
        }
    };
}

/// The isolation scenarios (the IOMMU's part of passthrough).
pub const IOMMU_LIST: &[Scenario] = &[
    Scenario {
        name: "iommu-dma-escape-vtd-svm",
        description: "VT-d: edu DMA aimed at the hypervisor's canary, at the victim guest's page and beyond the guest's RAM is blocked and logged; the victim's page is unchanged at its end, no byte run of the attack is anywhere in host RAM, the canary is unchanged; the victim and the hypervisor carry on",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info debug.canary pciback.hide=(00:03.0)",
        timeout_secs: 150,
        expect: &[
            "[d2 evil] [test] attack: dma-write 0x10000000: the guest survived and edu still answers: PASS",
            "iommu: blocked: vt-d: DMA write fault from 0000:00:03.0 at 0x10000000",
            "iommu: blocked: vt-d: DMA read fault from 0000:00:03.0 at 0x10000000",
            "[d2 evil] [test] attack: dma-read 0x10000000: the guest survived and received nothing from there: PASS",
            "[d2 evil] [test] summary: ",
            "domains: 2 started, 2 powered off cleanly",
        ],
        reject: ESCAPE_REJECT,
        expect_in_order: ESCAPE_IN_ORDER,
        outcome: Outcome::Success,
        modules: ESCAPE_MODULES,
    },
    Scenario {
        name: "iommu-dma-escape-amdvi-svm",
        description: "AMD-Vi: edu DMA aimed at the hypervisor's canary, the victim guest's page and beyond its own RAM is blocked (a blocked read brings zeros; QEMU's AMD IOMMU model records no I/O page fault events, so the effects are the proof): the victim's page is unchanged at its end, no byte run of the attack is anywhere in host RAM, the canary is unchanged; the victim and the hypervisor carry on",
        emulator: QEMU_AMD,
        boot: Boot::Kernel,
        cmdline: "loglvl=info debug.canary pciback.hide=(00:03.0)",
        timeout_secs: 150,
        expect: &[
            "[d2 evil] [test] attack: dma-write 0x10000000: the guest survived and edu still answers: PASS",
            "[d2 evil] [test] attack: dma-read 0x10000000: the guest survived and received nothing from there: PASS",
            "[d2 evil] [test] summary: ",
            "domains: 2 started, 2 powered off cleanly",
        ],
        reject: ESCAPE_REJECT,
        expect_in_order: ESCAPE_IN_ORDER,
        outcome: Outcome::Success,
        modules: ESCAPE_MODULES,
    },
    Scenario {
        name: "iommu-msi-forge-vtd-svm",
        description: "VT-d: edu DMA-writes MSIs to the interrupt window: the remappable-format ones (a free index, one beyond the table) are blocked and the faults logged; no domain gets an event and the hypervisor carries on (QEMU's model does not block compatibility-format messages, so the forged vector and NMI reach the CPU, where they are dropped and counted)",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info pciback.hide=(00:03.0)",
        timeout_secs: 150,
        // QEMU records no requester for a message a device writes by DMA:
        // the fault names 0xffff (ff:1f.7), so only the index is matched.
        expect: forge_expect!(
            "index 255: reason 0x22 (interrupt remapping entry not present)",
            "index 32767: reason 0x21 (interrupt index beyond the remapping table)",
            "WARNING: pciback: interrupt on vector 0xdf, which no device owns: dropped",
            "WARNING: hv: 1 NMI(s) received; ignored",
        ),
        reject: &[": FAIL", "destroyed"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: xpci_modules!("evil.cfg" => FORGE_CFG),
    },
    Scenario {
        name: "iommu-msi-forge-amdvi-svm",
        description: "AMD-Vi: edu DMA-writes MSIs (a vector, an NMI, remappable-format ones) to the interrupt window: none reaches a CPU or a domain, the hypervisor carries on (QEMU takes such messages as the I/O APIC's and blocks them against its table, without an event log entry)",
        emulator: QEMU_AMD,
        boot: Boot::Kernel,
        cmdline: "loglvl=info pciback.hide=(00:03.0)",
        timeout_secs: 150,
        expect: forge_expect!(
            "iommu: AMD-Vi unit 0: interrupt remapping per function (256 entries each, given at assignment) and per I/O APIC (indexed by vector); interrupts from every other device id blocked",
        ),
        // A forged message that reached the processor would be dropped
        // (and logged) or counted as an NMI.
        reject: &[": FAIL", "destroyed", "dropped", "NMI(s) received"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: xpci_modules!("evil.cfg" => FORGE_CFG),
    },
    Scenario {
        name: "iommu-dma-vtd-svm",
        description: "VT-d: edu's DMA to and from the guest's buffer is translated through the guest's tables, its MSI through a remapping entry",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info pciback.hide=(00:03.0)",
        timeout_secs: 120,
        expect: dma_through!(
            "iommu: VT-d unit 0 at 0xfed90000: DMA remapping on",
            "iommu: VT-d unit 0: interrupt remapping on"
        ),
        reject: &[": FAIL", "iommu: blocked", "destroyed", "WARNING: pciback: WARNING"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: xpci_modules!("edu.cfg" => EDU_CFG),
    },
    Scenario {
        name: "iommu-dma-amdvi-svm",
        description: "AMD-Vi: edu's DMA to and from the guest's buffer is translated through the guest's I/O page tables, its MSI through its remapping table",
        emulator: QEMU_AMD,
        boot: Boot::Kernel,
        cmdline: "loglvl=info pciback.hide=(00:03.0)",
        timeout_secs: 120,
        expect: dma_through!(
            "iommu: AMD-Vi unit 0 at 0xfed80000: DMA remapping on",
            "iommu: AMD-Vi unit 0: interrupt remapping per function"
        ),
        reject: &[": FAIL", "iommu: blocked", "destroyed", "WARNING: pciback: WARNING"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: xpci_modules!("edu.cfg" => EDU_CFG),
    },
    quarantine!(
        "iommu-quarantine-svm",
        QEMU_INTEL,
        "its context entry read back",
        ["iommu: blocked: vt-d: DMA write fault from 0000:00:03.0 at 0x"]
    ),
    // QEMU 10's AMD IOMMU writes no I/O page fault events at all.
    quarantine!(
        "iommu-quarantine-amdvi-svm",
        QEMU_AMD,
        "its device table entry read back",
        []
    ),
    Scenario {
        name: "iommu-required-svm",
        description: "no IOMMU and no opt-in: the assignment is refused with what to do, the guest runs without the device",
        emulator: QEMU_NO_IOMMU,
        boot: Boot::Kernel,
        cmdline: "loglvl=info pciback.hide=(00:03.0)",
        timeout_secs: 120,
        expect: &[
            "iommu: no IOMMU found",
            "pciback: dom1 (edu): 0000:00:03.0 not assigned: no IOMMU remaps its interrupts, so it could forge interrupts (and, without DMA remapping, reach any memory); boot with pciback.insecure to allow it anyway",
            // no device, so no PCI backend for its frontend to find
            "[d1 edu] [test] pcifront: connected to the backend: FAIL",
            "dom1 (edu): ended with shutdown reason 3",
        ],
        reject: &["assigned to dom1", "frontend connected"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: xpci_modules!("edu.cfg" => EDU_CFG),
    },
    Scenario {
        name: "iommu-insecure-optin-svm",
        description: "no IOMMU but pciback.insecure: the e1000e is assigned with a warning at boot and at the assignment, and works (no DMA: without an IOMMU it would land at host addresses)",
        emulator: QEMU_NO_IOMMU,
        boot: Boot::Kernel,
        cmdline: "loglvl=info pciback.hide=(00:04.0) pciback.insecure",
        timeout_secs: 120,
        expect: &[
            "WARNING: pciback: WARNING: pciback.insecure: passthrough is allowed without interrupt remapping or DMA isolation",
            "pciback: 0000:00:04.0 (8086:10d3 network/Ethernet) assigned to dom1 (nic) WITHOUT DMA isolation or interrupt remapping (pciback.insecure)",
            "WARNING: pciback: WARNING: dom1 (nic) drives 0000:00:04.0 without DMA isolation: it can reach all memory",
            "[d1 nic] xpci: e1000e: mac 52:54:00:12:34:56 link up",
            "dom1 (nic): powered off",
        ],
        reject: &["destroyed", ": FAIL"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: xpci_modules!("nic.cfg" => E1000E_CFG),
    },
];

mod intx;
pub(crate) use intx::LIST as INTX_LIST;
