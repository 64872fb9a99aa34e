//! Several vCPUs in one domain: the `smp` guest with `vcpus = 2` brings
//! its second vCPU up with `VCPUOP_initialise` and `VCPUOP_up`.

#[allow(unused_imports)]
use super::*;

const MODULES: &[BootModule] = &[
    BootModule {
        name: "smp",
        content: ModuleContent::Guest("smp"),
    },
    BootModule {
        name: "smp.cfg",
        content: ModuleContent::Text("name = \"smp\"\nkernel = \"smp\"\nmemory = 32\nvcpus = 2\n"),
    },
];

/// Seen in every run: vCPU 1's line, its HLT with interrupts off taking
/// only it down, vCPU 0's verdict, and the power-off.
const EXPECT: &[&str] = &[
    "[d1 smp] smp: vCPU 1 up in 32-bit protected mode",
    "dom1 (smp): vCPU 1 halted with interrupts disabled: down",
    "[d1 smp] [test] vCPU 1 ran, sent its event and went down: PASS",
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
        description: "a domain with two vCPUs: the second brought up by VCPUOP_initialise (SVM)",
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
        description:
            "a domain with two vCPUs: the second brought up by VCPUOP_initialise (VMX, Bochs)",
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
];
