//! The attack suite's protocol and lifecycle classes: an `xpci` attacker
//! with QEMU's edu abuses the paravirtual PCI protocol
//! (`attack-protocol-svm`) or dies in the middle of its device's work
//! (`attack-lifecycle-svm`), one case per life (`on_poweroff`/`on_crash =
//! "restart"`: the restarted domain gets the next id, and each `attack=`
//! item names the id it applies to), next to a `ticker` victim.
//!
//! Each scenario proves, besides the attacker's own checks (its table's
//! summary with every case as expected, no `: FAIL`): the victim ran from
//! before the first attack to after the last table; its page the
//! hypervisor digested before the domains ran is unchanged at its end; the
//! freed memory is zero, no DMA byte run is anywhere in host RAM and the
//! hypervisor's canary is unchanged (`debug.canary`, checked after every
//! domain ended); the hypervisor's counts of pirqs, vectors, grants and
//! xenstore nodes are back where they started; and it carried on to its
//! boot summary.

use super::*;

/// The victim: it ticks long enough to outlive every attacker life.
const VICTIM_CFG: &str = "name = \"victim\"\n\
kernel = \"ticker\"\n\
memory = 32\n\
extra = \"spin=3000000000\"\n";

/// The protocol attacker: four lives (dom2 to dom5), restarted on
/// poweroff.
const PROTOCOL_CFG: &str = "name = \"evil\"\n\
kernel = \"xpci\"\n\
memory = 16\n\
pci = ['00:03.0']\n\
on_poweroff = \"restart\"\n\
extra = \"expect=1234:11e8 attack=proto-ops@2,proto-magic@3,proto-gref@4,proto-port@5\"\n";

/// The lifecycle attacker: it crashes in three ways (dom2 to dom4), each
/// restart checks the device the last life left, the fourth life (dom5)
/// powers off.
const LIFECYCLE_CFG: &str = "name = \"evil\"\n\
kernel = \"xpci\"\n\
memory = 16\n\
pci = ['00:03.0']\n\
on_crash = \"restart\"\n\
extra = \"expect=1234:11e8 attack=die-dma@2,die-irq@3,die-op@4\"\n";

/// What only the checks after every domain ended print, then the
/// hypervisor's counts and summary.
macro_rules! after_all {
    ($($line:literal),* $(,)?) => {
        &[
            $($line,)*
            "[d1 victim] ticker: done",
            "isolation: dom1's page at guest-physical 0x100000 (hv.peer=0x",
            ") unchanged from before the domains ran to its end",
            "isolation: the domains' freed memory (",
            "isolation: no 64-byte run of the DMA attack byte 0xa5 in host RAM (",
            "isolation: canary page at 0x",
            " unchanged after 5 domains",
            "pirqs 0, vectors 0, grants 0, xenstore nodes 3 (same as before the domains)",
            "hv: boot complete",
        ]
    };
}

/// What no attack scenario may print.
const REJECT: &[&str] = &[
    ": FAIL",
    "WRONG",
    "destroyed",
    "CHANGED",
    "a DMA write landed",
    "LEAKED",
];

pub const LIST: &[Scenario] = &[
    Scenario {
        name: "attack-protocol-svm",
        description: "the PCI frontend abuses the protocol, one life each: the active bit without a notify and a notify without it, an event channel flood, the op rewritten by DMA while ops are sent, unknown and AER op codes, Closing with an op pending and an op after Closed; then magic 8, a revoked grant and a foreign port at connection: every case has the outcome Xen's protocol requires, the victim guest's page is unchanged and nothing leaks",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info debug.canary pciback.hide=(00:03.0)",
        timeout_secs: 400,
        expect: &[
            "domains: 5 started, 5 powered off cleanly",
        ],
        reject: REJECT,
        expect_in_order: after_all!(
            "[d1 victim] ticker: tick 0",
            "[d2 evil] attack-protocol: 8 cases, 8 as expected",
            "[d3 evil] attack-protocol: 1 cases, 1 as expected",
            "[d4 evil] attack-protocol: 1 cases, 1 as expected",
            "[d5 evil] attack-protocol: 1 cases, 1 as expected",
        ),
        outcome: Outcome::Success,
        modules: victim_and_attacker!(VICTIM_CFG, PROTOCOL_CFG),
    },
    Scenario {
        name: "attack-lifecycle-svm",
        description: "the PCI frontend dies in the middle of an edu DMA, with MSI bound and an interrupt raised, and with an op pending, one life each: every time the device is blocked in the IOMMU, released and reset before the memory is scrubbed, the memory does not change after the release, the next life finds the device reset and working, the victim guest's page is unchanged and the counts are back where they started",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info debug.canary pciback.hide=(00:03.0)",
        timeout_secs: 400,
        expect: &[
            "domains: 5 started, 2 powered off cleanly",
        ],
        reject: REJECT,
        expect_in_order: after_all!(
            "[d1 victim] ticker: tick 0",
            "[d2 evil] xpci: attack: die-dma: edu's DMA into this guest started; crashing before it ends",
            "iommu: 0000:00:03.0 blocked again",
            "pciback: 0000:00:03.0 released by dom2 (evil): ",
            "isolation: dom2's memory unchanged in the 300 ms after its devices were released",
            "dom2 (evil): memory scrubbed and returned",
            "dom2 (evil): on_crash = \"restart\": restarted as dom3",
            "[d3 evil] [test] attack: die-dma: the backend hands the device over with decoding, bus mastering and MSI off: PASS",
            "[d3 evil] [test] attack: die-dma: edu's DMA engine is idle in the next life: PASS",
            "[d3 evil] attack-lifecycle: 1 cases, 1 as expected",
            "[d3 evil] xpci: attack: die-irq: MSI on as ",
            "iommu: 0000:00:03.0 blocked again",
            "pciback: 0000:00:03.0 released by dom3 (evil): ",
            "isolation: dom3's memory unchanged in the 300 ms after its devices were released",
            "dom3 (evil): memory scrubbed and returned",
            "dom3 (evil): on_crash = \"restart\": restarted as dom4",
            "[d4 evil] [test] attack: die-irq: the backend hands the device over with decoding, bus mastering and MSI off: PASS",
            "[d4 evil] [test] attack: die-irq: edu's DMA engine is idle in the next life: PASS",
            "[d4 evil] attack-lifecycle: 1 cases, 1 as expected",
            "[d4 evil] xpci: attack: die-op: an op pending (active, not notified); crashing",
            "iommu: 0000:00:03.0 blocked again",
            "pciback: 0000:00:03.0 released by dom4 (evil): ",
            "isolation: dom4's memory unchanged in the 300 ms after its devices were released",
            "dom4 (evil): memory scrubbed and returned",
            "dom4 (evil): on_crash = \"restart\": restarted as dom5",
            "[d5 evil] [test] attack: die-op: the backend hands the device over with decoding, bus mastering and MSI off: PASS",
            "[d5 evil] [test] attack: die-op: edu's DMA engine is idle in the next life: PASS",
            "[d5 evil] attack-lifecycle: 1 cases, 1 as expected",
            "dom5 (evil): powered off",
        ),
        outcome: Outcome::Success,
        modules: victim_and_attacker!(VICTIM_CFG, LIFECYCLE_CFG),
    },
];
