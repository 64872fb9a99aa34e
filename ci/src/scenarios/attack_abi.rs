//! The ABI attack scenarios: a guest aims hostile hypercalls or xenstore
//! traffic at the hypervisor and at a victim domain running beside it (a
//! `ticker` whose guarded RAM, and xenstore nodes, are checked at every
//! tick and at its end). Each scenario ends with the attacker's table of
//! cases; the victim must finish after it with its memory intact, and the
//! hypervisor's canary page must be unchanged.

use super::*;

/// The victim: domain 1, so that the attacker learns where its RAM is in
/// host memory (`debug.canary` hands `hv.peer=` to the next domain).
macro_rules! victim_cfg {
    ($spin:literal, $extra:literal) => {
        concat!(
            "name = \"victim\"\nkernel = \"ticker\"\nmemory = 32\nextra = \"spin=",
            $spin,
            " guard=4096",
            $extra,
            "\"\n"
        )
    };
}

/// The modules: the victim, then the attacker with `attack=$mode`.
macro_rules! attack_modules {
    ($victim:expr, $mode:literal) => {
        victim_and_attacker!(
            $victim,
            "attack_abi",
            concat!(
                "name = \"evil\"\nkernel = \"attack_abi\"\nmemory = 32\nextra = \"attack=",
                $mode,
                " victim=1 settle=200\"\n"
            )
        )
    };
}

/// The modules: the victim, then `pv_hello` as a PV attacker.
macro_rules! pv_attack_modules {
    ($victim:expr) => {
        victim_and_attacker!(
            $victim,
            "pv_hello",
            "name = \"evil\"\ntype = \"pv\"\nkernel = \"pv_hello\"\nmemory = 32\nextra = \"console=hvc0 attack=hypercall victim=1\"\n"
        )
    };
}

/// What every attack scenario proves, in order: the victim filled its
/// guard before the attack, the attacker's table with every case as
/// expected, the victim's guard intact and its end after the table, the
/// canary unchanged and the hypervisor's summary.
macro_rules! attack_in_order {
    ($summary:literal $(, $victim:literal)*) => {
        &[
            "[d1 victim] ticker: guard: 4096 KiB at ",
            $summary,
            "[d1 victim] ticker: guard: 4096 KiB intact after ",
            $($victim,)*
            "[d1 victim] ticker: done",
            "isolation: canary page at ",
            "unchanged after 2 domains",
            "domains: 2 started, 2 powered off cleanly",
            "hv: boot complete",
        ]
    };
}

const REJECT: &[&str] = &[
    ": FAIL",
    "CHANGED",
    "unhandled exception",
    "panic",
    "destroyed",
];

/// Every scenario of this area, in order.
pub const LIST: &[Scenario] = &[
    Scenario {
        name: "attack-hypercall-svm",
        description: "hostile arguments at every hypercall and sub-op from one guest while a victim runs; Xen's error codes, the victim's RAM and the hypervisor's canary unchanged (SVM)",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info debug.canary",
        timeout_secs: 300,
        expect: &["[d2 evil] [test] summary: "],
        reject: REJECT,
        expect_in_order: attack_in_order!("[d2 evil] attack-hypercall: 88 cases, 88 as expected"),
        outcome: Outcome::Success,
        modules: attack_modules!(victim_cfg!("400000000", ""), "hypercall"),
    },
    Scenario {
        name: "attack-hypercall-vmx",
        description: "hostile arguments at every hypercall and sub-op from one guest while a victim runs; Xen's error codes, the victim's RAM and the hypervisor's canary unchanged (VMX, Bochs)",
        emulator: BOCHS_VMX,
        boot: Boot::Grub(Protocol::Mb2),
        cmdline: "loglvl=info debug.canary",
        timeout_secs: 900,
        expect: &["[d2 evil] [test] summary: "],
        reject: REJECT,
        // Three fewer cases than on QEMU: the victim's first page and the
        // canary are in host memory below 34 MiB here, frames the attacker
        // has as its own RAM.
        expect_in_order: attack_in_order!("[d2 evil] attack-hypercall: 85 cases, 85 as expected"),
        outcome: Outcome::Success,
        modules: attack_modules!(victim_cfg!("100000000", ""), "hypercall"),
    },
    Scenario {
        name: "attack-hypercall-pv-svm",
        description: "a 64-bit PV guest aims hostile arguments at the PV hypercalls (mmu_update, mmuext_op, update_va_mapping(_otherdomain), descriptors, the GDT, callbacks, debug registers, vm_assist, physdev_op, multicall) while a victim runs: the victim's and the hypervisor's host frames, the victim as foreign domain, the hypervisor's virtual range, reserved bits; Xen's error codes, its own pages read back unchanged, the victim's RAM and the hypervisor's canary unchanged (SVM)",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info debug.canary",
        timeout_secs: 300,
        expect: &["[d2 evil] [test] summary: "],
        reject: REJECT,
        expect_in_order: attack_in_order!("[d2 evil] attack-hypercall-pv: 48 cases, 48 as expected"),
        outcome: Outcome::Success,
        modules: pv_attack_modules!(victim_cfg!("400000000", "")),
    },
    Scenario {
        name: "attack-hypercall-pv-vmx",
        description: "a 64-bit PV guest aims hostile arguments at the PV hypercalls (as attack-hypercall-pv-svm) while a victim runs: Xen's error codes, its own pages read back unchanged, the victim's RAM and the hypervisor's canary unchanged (VMX, Bochs)",
        emulator: BOCHS_VMX,
        boot: Boot::Grub(Protocol::Mb2),
        cmdline: "loglvl=info debug.canary",
        timeout_secs: 900,
        expect: &["[d2 evil] [test] summary: "],
        reject: REJECT,
        // Twelve fewer cases than on QEMU: the victim's RAM is in host
        // memory below 34 MiB here, frame numbers the attacker has as its
        // own (pv_hello's attack.rs leaves those cases out).
        expect_in_order: attack_in_order!("[d2 evil] attack-hypercall-pv: 36 cases, 36 as expected"),
        outcome: Outcome::Success,
        modules: pv_attack_modules!(victim_cfg!("100000000", "")),
    },
    Scenario {
        name: "attack-xenstore-svm",
        description: "hostile xenstore traffic from one guest while a victim runs: malformed and oversized messages, quotas run out, the victim's nodes; its nodes and RAM unchanged, the store answers both (SVM)",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info debug.canary",
        timeout_secs: 300,
        expect: &["[d2 evil] [test] summary: "],
        reject: REJECT,
        expect_in_order: attack_in_order!(
            "[d2 evil] attack-xenstore: 31 cases, 31 as expected",
            "[d1 victim] ticker: xenstore: "
        ),
        outcome: Outcome::Success,
        modules: attack_modules!(victim_cfg!("1500000000", " xs"), "xenstore"),
    },
];
