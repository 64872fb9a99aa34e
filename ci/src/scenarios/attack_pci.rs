//! The attack suite's PCI classes: an `xpci` guest attacks the backend's
//! config space virtualisation (`attack-config-svm`), its BAR windows and
//! trapped MSI-X table (`attack-bar-svm`), the MSI-X op
//! (`attack-msix-svm`) and interrupt routing (`attack-irq-svm`), next to a
//! victim `ticker` guest.
//!
//! Each attacker prints one `[test] attack-CLASS: CASE: OUTCOME: PASS`
//! line per case, runs its drivers again (its devices must still work)
//! and ends with `attack-CLASS: N cases, N as expected` and a Markdown
//! table. Each scenario checks that summary, that no case failed, that the
//! victim was running before the table and finished after it, and that
//! the hypervisor finished its boot after both.

use super::*;

/// The victim: a guest that keeps the CPU busy for the whole attack.
const VICTIM_CFG: &str = "name = \"victim\"\n\
kernel = \"ticker\"\n\
memory = 32\n\
extra = \"spin=2500000000\"\n";

/// The attacker's configuration: its `pci` list and attack class.
macro_rules! attacker {
    ($pci:literal, $class:literal) => {
        concat!(
            "name = \"evil\"\n",
            "kernel = \"xpci\"\n",
            "memory = 64\n",
            "pci = ",
            $pci,
            "\n",
            "extra = \"attack=",
            $class,
            "\"\n"
        )
    };
}

/// One attack scenario: `$summary` is the class's summary line, `$expect`
/// further lines, `$order` lines that must come in this order between the
/// victim's first tick and the summary.
macro_rules! attack {
    ($name:literal, $desc:literal, $emulator:expr, $hide:literal, $pci:literal, $class:literal,
     $summary:literal, [$($expect:literal),* $(,)?], [$($order:literal),* $(,)?] $(,)?) => {
        Scenario {
            name: $name,
            description: $desc,
            emulator: $emulator,
            boot: Boot::Kernel,
            cmdline: concat!("loglvl=info pciback.hide=", $hide),
            timeout_secs: 400,
            expect: &[
                concat!("[d2 evil] ", $summary),
                $($expect,)*
                "dom2 (evil): powered off",
                "domains: 2 started, 2 powered off cleanly",
            ],
            reject: &[": FAIL", "destroyed", "WRONG", "panic"],
            expect_in_order: &[
                "[d1 victim] ticker: tick 0",
                $($order,)*
                concat!("[d2 evil] ", $summary),
                "[d1 victim] ticker: done",
                "hv: boot complete",
            ],
            outcome: Outcome::Success,
            modules: victim_and_attacker!(VICTIM_CFG, attacker!($pci, $class)),
        }
    };
}

/// edu, an e1000e (with an option ROM) and a virtio function (with
/// vendor-specific capabilities).
const CONFIG_DEVICES: &[&str] = &[
    "edu,addr=03.0,dma_mask=0xffffffff",
    "e1000e,addr=04.0",
    "virtio-rng-pci,addr=05.0",
];

/// The standard machine (edu, e1000e, NVMe) behind VT-d.
const STANDARD: Emulator = QEMU_INTEL;

/// The PCI attack scenarios.
pub const LIST: &[Scenario] = &[
    attack!(
        "attack-config-svm",
        "an xpci guest attacks config space through pcifront: bad sizes, offsets and alignment, every offset with every size, read-only and reserved registers, Command and Status games, BARs moved over its RAM, the APIC and another device, ROM enable, MSI rewritten and enable bits set in config space, vendor capabilities; every case has the outcome Linux pciback or our policy gives, its devices still work after, and the victim guest runs throughout",
        Emulator::Qemu {
            iommu: Iommu::Intel,
            devices: CONFIG_DEVICES,
        },
        "(00:03.0)(00:04.0)(00:05.0)",
        "['00:03.0', '00:04.0', '00:05.0']",
        "config",
        "attack-config: 32 cases, 32 as expected",
        [
            "[d2 evil] [test] attack-config: BAR0 moved over the guest's RAM: RAM kept, not mapped: PASS",
            "[d2 evil] [test] attack-config: MSI address and data rewritten while MSI is on: virtual, interrupts still on its pirq: PASS",
            "[d2 evil] [test] attack-config: vendor-specific capabilities of a virtio function: hidden: PASS",
        ],
        [],
    ),
    attack!(
        "attack-bar-svm",
        "an xpci guest toggles edu's memory decode 200 times while edu DMAs into its RAM and remaps BAR0 20 times (the device answers only at the guest's current address, the DMA lands intact), then reaches NVMe's trapped MSI-X table with 1- and 2-byte, misaligned and cross-entry accesses and writes the PBA and across the table's end (all ignored or all-ones); its devices still work after and the victim guest runs throughout",
        STANDARD,
        "(00:03.0)(00:05.0)",
        "['00:03.0', '00:05.0']",
        "bar",
        "attack-bar: 13 cases, 13 as expected",
        [
            "[d2 evil] [test] attack-bar: decode toggled 200 times while edu DMAs: all-ones while off, answers while on, DMA intact: PASS",
            "[d2 evil] [test] attack-bar: MSI-X table written with 8 bytes across two entries: ignored: PASS",
        ],
        [],
    ),
    attack!(
        "attack-msix-svm",
        "an xpci guest sends XEN_PCI_OP_enable_msix for NVMe with 0, 129, 0xffffffff and more entries than the table has, duplicate and out-of-range entries (-EINVAL), with decode off (-ENXIO), twice (-EALREADY), binds its pirqs twice (-EEXIST) and after disable (-EPERM), disables twice, then 32 enable/disable cycles succeed (nothing leaked); NVMe still works after and the victim guest runs throughout",
        STANDARD,
        "(00:03.0)(00:05.0)",
        "['00:03.0', '00:05.0']",
        "msix",
        "attack-msix: 15 cases, 15 as expected",
        [
            "[d2 evil] [test] attack-msix: 129 entries: -EINVAL: PASS",
            "[d2 evil] [test] attack-msix: entry 0 twice: -EINVAL: PASS",
        ],
        [],
    ),
    attack!(
        "attack-irq-svm",
        "an xpci guest enables MSI twice (-EALREADY), MSI-X without the capability (-ENODEV), MSI-X while MSI is on and MSI while MSI-X is on (-ENXIO), disables what is off, binds pirqs it was not given (-EPERM, -EINVAL) or twice (-EEXIST), sends 10000 EOIs (no spurious event; one event per INTx assertion) and makes edu raise MSIs for 2 s: the guest takes them, the victim keeps ticking during the storm, and the devices still work after",
        STANDARD,
        "(00:03.0)(00:04.0)",
        "['00:03.0', '00:04.0']",
        "irq",
        "attack-irq: 13 cases, 13 as expected",
        [],
        [
            "[d2 evil] xpci: attack-irq: interrupt storm from edu: start",
            "[d1 victim] ticker: tick",
            "[d2 evil] xpci: attack-irq: interrupt storm from edu: end",
        ],
    ),
];
