//! PCI passthrough: the `xpci` frontend guest attaches to the hypervisor's
//! PCI backend, sees exactly its devices and drives them (QEMU's edu,
//! NVMe and e1000e; Bochs' e1000).
//!
//! QEMU's standard machine (see `crate::qemu`) has edu at 00:03.0, an
//! e1000e at 00:04.0 and NVMe at 00:05.0, and an Intel IOMMU: DMA is
//! confined to the guest by VT-d; interrupt remapping is not done yet, so
//! these runs opt in with `pciback.insecure`.

use super::*;

const XPCI_CFG: &str = "# the xpci frontend guest with three devices\n\
name = \"xpci\"\n\
kernel = \"xpci\"\n\
memory = 64\n\
pci = ['00:03.0', '0000:00:04.0', '00:05.0,permissive=0']\n\
extra = \"expect=1234:11e8,8086:10d3,1b36:0010\"\n";

const XPCI: &[BootModule] = &[
    BootModule {
        name: "xpci",
        content: ModuleContent::Guest("xpci"),
    },
    BootModule {
        name: "xpci.cfg",
        content: ModuleContent::Text(XPCI_CFG),
    },
];

/// Hides the three devices and allows passthrough without interrupt
/// remapping.
const HIDE3: &str = "loglvl=info pciback.hide=(00:03.0)(00:04.0)(00:05.0) pciback.insecure";

/// What the hypervisor says while the guest attaches.
const ATTACH_HV: &[&str] = &[
    "pciback: 0000:00:03.0 (1234:11e8 unclassified) assigned to dom1 (xpci)",
    "pciback: 0000:00:04.0 (8086:10d3 network/Ethernet) assigned to dom1 (xpci)",
    "pciback: 0000:00:05.0 (1b36:0010 storage/NVMe) assigned to dom1 (xpci)",
    "iommu: 0000:00:03.0 translates through dom1's tables",
    "pciback: dom1: 0000:00:03.0 exported as 0000:00:00.0",
    "pciback: dom1: 0000:00:04.0 exported as 0000:00:01.0",
    "pciback: dom1: 0000:00:05.0 exported as 0000:00:02.0",
    "pciback: dom1 (xpci): frontend connected",
];

/// Every scenario of this area, in order.
pub const LIST: &[Scenario] = &[Scenario {
    name: "xpci-attach-svm",
    description: "the xpci frontend attaches to the in-hypervisor backend and sees exactly edu, e1000e and NVMe",
    emulator: QEMU_INTEL,
    boot: Boot::Kernel,
    cmdline: HIDE3,
    timeout_secs: 120,
    expect: ATTACH_HV,
    reject: &[": FAIL", "not assigned"],
    expect_in_order: &[
        "[d1 xpci] xpci: transport pcifront",
        "[d1 xpci] xpci: 00:00.0 1234:11e8 class 00ff00 rev 10",
        "[d1 xpci] xpci: 00:01.0 8086:10d3 class 020000",
        "[d1 xpci] xpci: 00:02.0 1b36:0010 class 010802 rev 02",
        "[d1 xpci] [test] summary:",
        "dom1 (xpci): powered off",
        "pciback: 0000:00:03.0 released by dom1 (xpci)",
    ],
    outcome: Outcome::Success,
    modules: XPCI,
}];
