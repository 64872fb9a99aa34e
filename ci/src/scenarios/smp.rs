//! Several vCPUs in one domain: the `smp` guest with `vcpus = 3` brings
//! vCPU 1 up in 32-bit mode and vCPU 2 in 64-bit mode with
//! `VCPUOP_initialise` and `VCPUOP_up`, then restarts them in real mode
//! with INIT and STARTUP IPIs through its x2APIC.

#[allow(unused_imports)]
use super::*;

const MODULES: &[BootModule] = &[
    BootModule {
        name: "smp",
        content: ModuleContent::Guest("smp"),
    },
    BootModule {
        name: "smp.cfg",
        content: ModuleContent::Text("name = \"smp\"\nkernel = \"smp\"\nmemory = 32\nvcpus = 3\n"),
    },
];

/// Seen in every run: the lines of vCPUs 1 and 2, their HLTs with
/// interrupts off taking only them down, vCPU 0's verdicts, and the
/// power-off.
const EXPECT: &[&str] = &[
    "[d1 smp] smp: vCPU 1 up in 32-bit protected mode",
    "dom1 (smp): vCPU 1 halted with interrupts disabled: down",
    "[d1 smp] [test] vCPU 1 ran, sent its event and went down: PASS",
    "[d1 smp] smp: vCPU 2 up in 64-bit mode",
    "dom1 (smp): vCPU 2 halted with interrupts disabled: down",
    "[d1 smp] [test] vCPU 2 ran, sent its event and IPI and went down: PASS",
    "[d1 smp] [test] STARTUP alone does not start vCPU 1 (it has a context): PASS",
    "[d1 smp] [test] INIT and STARTUP to itself and to absent ids start nobody: PASS",
    "[d1 smp] vCPU 1 started by a STARTUP IPI at 0x8000 (real mode)",
    "[d1 smp] [test] INIT, STARTUP: vCPU 1 runs the real-mode code: PASS",
    "[d1 smp] [test] vCPU 1 started at CS 0x800, IP 0: PASS",
    "[d1 smp] [test] a STARTUP to running vCPU 1 is ignored: PASS",
    "[d1 smp] vCPU 2 started by a STARTUP IPI at 0x8000 (real mode)",
    "[d1 smp] [test] INIT, STARTUP to all but self after a flood: vCPUs 1 and 2 run: PASS",
    "[d1 smp] [test] INIT takes running vCPU 1 down: PASS",
    "[d1 smp] [test] INIT to all but self: vCPUs 1 and 2 down, vCPU 0 still up: PASS",
    "[d1 smp] [test] summary: ",
    "dom1 (smp): powered off",
];

const REJECT: &[&str] = &[
    ": FAIL",
    "unhandled exception",
    "panic",
    "no vCPU left up",
    "destroyed",
];

pub const LIST: &[Scenario] = &[
    Scenario {
        name: "smp-svm",
        description: "a domain with three vCPUs: two brought up by VCPUOP_initialise, then by INIT and STARTUP IPIs in real mode (SVM)",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info",
        timeout_secs: 120,
        expect: EXPECT,
        reject: REJECT,
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: MODULES,
    },
    Scenario {
        name: "smp-vmx",
        description: "a domain with three vCPUs: two brought up by VCPUOP_initialise, then by INIT and STARTUP IPIs in real mode (VMX, Bochs)",
        emulator: BOCHS_VMX,
        boot: Boot::Grub(Protocol::Mb2),
        cmdline: "loglvl=info",
        timeout_secs: 300,
        expect: EXPECT,
        reject: REJECT,
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: MODULES,
    },
    Scenario {
        name: "smp-two-domains-svm",
        description: "two domains with three vCPUs each share the CPU; vcpus = 9 is refused (SVM)",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info",
        timeout_secs: 120,
        expect: &[
            "a-many.cfg: not started: vcpus = 9: a domain has 1 to 8 vCPUs here",
            "[d2 smp-a] [test] vCPU 2 ran, sent its event and IPI and went down: PASS",
            "[d3 smp-b] [test] vCPU 2 ran, sent its event and IPI and went down: PASS",
            // Each domain's STARTUP IPIs start its own vCPUs only.
            "[d2 smp-a] [test] INIT, STARTUP to all but self after a flood: vCPUs 1 and 2 run: PASS",
            "[d3 smp-b] [test] INIT, STARTUP to all but self after a flood: vCPUs 1 and 2 run: PASS",
            "dom2 (smp-a): powered off",
            "dom3 (smp-b): powered off",
        ],
        reject: REJECT,
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: &[
            BootModule {
                name: "smp",
                content: ModuleContent::Guest("smp"),
            },
            BootModule {
                name: "a-many.cfg",
                content: ModuleContent::Text(
                    "name = \"many\"\nkernel = \"smp\"\nmemory = 32\nvcpus = 9\n",
                ),
            },
            BootModule {
                name: "b-smp.cfg",
                content: ModuleContent::Text(
                    "name = \"smp-a\"\nkernel = \"smp\"\nmemory = 32\nvcpus = 3\n",
                ),
            },
            BootModule {
                name: "c-smp.cfg",
                content: ModuleContent::Text(
                    "name = \"smp-b\"\nkernel = \"smp\"\nmemory = 32\nvcpus = 3\n",
                ),
            },
        ],
    },
];
