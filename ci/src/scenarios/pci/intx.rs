//! INTx routed from the firmware's tables on machines beyond the standard
//! one: a second root bus (QEMU's `pxb-pcie`, a host bridge of its own
//! with its own `_BBN` and `_PRT` in the DSDT) and root ports at function
//! 1 of a multifunction slot.
//!
//! The GSIs asserted are derived from QEMU's machine, not from the
//! hypervisor's log:
//!
//! - q35 root bus: slots 0-24 reach the ICH9's PIRQE-H by
//!   `(slot + pin) mod 4` (QEMU's `ich9_lpc_map_irq` defaults), and in
//!   APIC mode the DSDT's `PRTA` gives PIRQE-H as GSIs 20-23. A root port
//!   has no `_PRT` in QEMU 10's DSDT, so a card behind it reaches the root
//!   bus by the standard swizzle: device 0, INTA behind a port in slot 8
//!   is slot 8 INTA, `(8 + 0) mod 4 = 0`: PIRQE, GSI 20, whatever the
//!   port's function number.
//! - pxb-pcie: QEMU's DSDT gives the expander's host bridge (`PC20` for
//!   bus 0x20) a `_PRT` method returning one inline package whose entries
//!   name the PCI link devices `LNKA`-`LNKD` by `(slot + pin + 3) mod 4`;
//!   a link's `_CRS` reads the ICH9's PIRQ route control register of the
//!   same letter (LPC config 0x60-0x63), which the firmware (SeaBIOS)
//!   programs to IRQ 10 for PIRQA/B and 11 for PIRQC/D. edu at device 0,
//!   INTA behind the expander's root port at device 2: swizzled to device
//!   2 INTA on bus 0x20, `LNKB`, IRQ 10. QEMU carries the pin up through the
//!   expander's own slot on bus 0 (`pxb_map_irq_fn`, then the ICH9's map
//!   of slot 9), where it lands on a PIRQ the firmware also routes to IRQ
//!   10, so the table and the wiring agree for this slot (not for every
//!   one: a card behind a root port at the expander's device 0 is given
//!   `LNKD`, IRQ 11, by the table, and its interrupt does not reach IRQ 11;
//!   see docs/firmware.md). The root bus's table would say GSI 22 for a
//!   device 2 INTA (`(2 + 0) mod 4`: PIRQG), so a lookup keyed by slot
//!   alone on bus 0 fails this scenario.

use super::*;

/// The expander at 00:09.0, a root port at 20:02.0 on its root bus (it
/// takes bridges only) and edu behind that: edu at 21:00.0 (the standard
/// devices left out).
const PXB: &[&str] = &[
    "pxb-pcie,id=pxb1,bus_nr=32,bus=pcie.0,addr=09.0",
    "pcie-root-port,id=rpx,bus=pxb1,chassis=8,addr=02.0",
    "edu,bus=rpx,dma_mask=0xffffffff",
];

/// Two root ports in slot 8, functions 0 and 1 (buses 01 and 02), edu
/// behind the second: edu at 02:00.0. (The machine's standard devices are
/// left out: every root-bus slot shares one of GSIs 20-23 with one of
/// them.)
const ROOT_PORTS: &[&str] = &[
    "pcie-root-port,id=rpa,bus=pcie.0,chassis=9,multifunction=on,addr=08.0",
    "pcie-root-port,id=rpb,bus=pcie.0,chassis=10,addr=08.1",
    "edu,bus=rpb,dma_mask=0xffffffff",
];

const RP_CFG: &str = xpci_cfg!("rp", 64, "['02:00.0']", "expect=1234:11e8",);

const PXB_CFG: &str = xpci_cfg!("pxb", 64, "['21:00.0']", "expect=1234:11e8",);

/// Every scenario of this area, in order.
pub const LIST: &[Scenario] = &[
    Scenario {
        name: "intx-pxb-svm",
        description: "a second root bus (pxb-pcie, its own host bridge, _BBN and _PRT): edu behind its root port is passed through; its INTx is routed by that root's _PRT (through the ICH9 link LNKB) and the guest drives its INTx and MSI",
        emulator: Emulator::Qemu {
            iommu: Iommu::Intel,
            devices: PXB,
        },
        boot: Boot::Kernel,
        cmdline: "loglvl=info pciback.hide=(21:00.0)",
        timeout_secs: 180,
        expect: &[
            "pci: 0000:21:00.0 1234:11e8 class 00ff00 (unclassified) rev 10",
            "intx: host bridge \\_SB_.PC20 (root bus 0000:20): \\_SB_.PC20._PRT gives \\_SB_.PC20._PRT in APIC mode: 128 entries",
            "intx: 0000:21:00.0 INTA: \\_SB_.PC20._PRT entry for 0000:20:02.0 INTA (its pin swizzled through 1 bridge) via \\_SB_.LNKB: GSI 10",
            "intx: bridge 0000:20:02.0's own INTx disabled: it shares GSI 10 with 0000:21:00.0",
            "pciback: dom1 (pxb): 0000:21:00.0 INTx: GSI 10 (level, active high) -> vector ",
            "[d1 pxb] xpci: 00:00.0 1234:11e8 class 00ff00 rev 10 irq pirq 10",
            "[d1 pxb] [test] edu: raised interrupt arrives by MSI: PASS",
            "[d1 pxb] [test] edu: DMA copy equals the source: PASS",
            "[d1 pxb] [test] edu: two INTx interrupts arrive, each after the last EOI: PASS",
            "dom1 (pxb): powered off",
        ],
        reject: &[": FAIL", "not assigned", "INTx not offered", "destroyed", "WARNING: pciback: WARNING"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: xpci_modules!("pxb.cfg" => PXB_CFG),
    },
    Scenario {
        name: "intx-root-port-svm",
        description: "edu behind a PCIe root port at function 1 of a multifunction slot: no _PRT for the port in QEMU's DSDT, so its INTA is swizzled to the slot's entry in the root _PRT (GSI 20); the guest drives its INTx and MSI",
        emulator: Emulator::Qemu {
            iommu: Iommu::Intel,
            devices: ROOT_PORTS,
        },
        boot: Boot::Kernel,
        cmdline: "loglvl=info pciback.hide=(02:00.0)",
        timeout_secs: 180,
        expect: &[
            "pci: 0000:00:08.1 1b36:000c class 060400 (bridge/PCI-PCI) rev 00",
            "pci: 0000:02:00.0 1234:11e8 class 00ff00 (unclassified) rev 10 INTA line 10 behind 0000:00:08.1",
            "intx: 0000:02:00.0 INTA: \\_SB_.PCI0._PRT entry for 0000:00:08.1 INTA (its pin swizzled through 1 bridge) via \\_SB_.GSIE: GSI 20",
            "intx: bridge 0000:00:08.0's own INTx disabled: it shares GSI 20 with 0000:02:00.0",
            "pciback: dom1 (rp): 0000:02:00.0 INTx: GSI 20 (level, active high) -> vector ",
            "[d1 rp] xpci: 00:00.0 1234:11e8 class 00ff00 rev 10 irq pirq 20",
            "[d1 rp] [test] edu: raised interrupt arrives by MSI: PASS",
            "[d1 rp] [test] edu: two INTx interrupts arrive, each after the last EOI: PASS",
            "dom1 (rp): powered off",
        ],
        reject: &[": FAIL", "not assigned", "INTx not offered", "destroyed", "WARNING: pciback: WARNING"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: xpci_modules!("rp.cfg" => RP_CFG),
    },
];
