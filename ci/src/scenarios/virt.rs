//! The virtualisation backends' finer points: extended state (XSAVE), interrupt
//! injection and the interrupt window.

use super::*;

/// Two domains run the xstate guest with different register patterns; their
/// `sched_op` yields make the scheduler switch between them while both hold
/// their registers.
const XSTATE: &[BootModule] = &[
    BootModule {
        name: "xstate",
        content: ModuleContent::Guest("xstate"),
    },
    BootModule {
        name: "xs1.cfg",
        content: ModuleContent::Text(
            "name = \"xs1\"\nkernel = \"xstate\"\nmemory = 16\nextra = \"pattern=1\"\n",
        ),
    },
    BootModule {
        name: "xs2.cfg",
        content: ModuleContent::Text(
            "name = \"xs2\"\nkernel = \"xstate\"\nmemory = 16\nextra = \"pattern=2\"\n",
        ),
    },
];

/// Bochs' AMD model: SVM with next-RIP save, which QEMU's TCG lacks.
const BOCHS_SVM: Emulator = Emulator::Bochs { cpu: "ryzen" };

/// The xstate pair and the exits guest: every instruction exit's length
/// comes from next-RIP save instead of the decoder.
const XSTATE_AND_EXITS: &[BootModule] = &[
    XSTATE[0],
    XSTATE[1],
    XSTATE[2],
    BootModule {
        name: "exits",
        content: ModuleContent::Guest("exits"),
    },
    BootModule {
        name: "xs3-exits.cfg",
        content: ModuleContent::Text("name = \"exits\"\nkernel = \"exits\"\nmemory = 32\n"),
    },
];

/// The checks every run must pass, then `$extra` lines.
macro_rules! xstate_expect {
    ($($extra:literal,)*) => {
        &[
            "xstate: XSAVE, XCR0 ",
            $($extra,)*
            "[d1 xs1] [test] cpuid shows XSAVE: PASS",
            "[d1 xs1] [test] xsetbv before CR4.OSXSAVE raises #UD: PASS",
            "[d1 xs1] [test] cpuid OSXSAVE follows CR4.OSXSAVE: PASS",
            "[d1 xs1] [test] xsetbv without x87 raises #GP: PASS",
            "[d1 xs1] [test] xsetbv of AVX without SSE raises #GP: PASS",
            "[d1 xs1] [test] xsetbv with ECX=1 raises #GP: PASS",
            "[d1 xs1] [test] xsetbv of a component not offered raises #GP: PASS",
            "[d1 xs1] [test] xgetbv reads the XCR0 back: PASS",
            "[d1 xs1] [test] cpuid 0xd.0 ebx is the area size of the current XCR0: PASS",
            "[d1 xs1] [test] XMM0-15 survive exits and other domains: PASS",
            "[d1 xs1] [test] MXCSR survives exits and other domains: PASS",
            "[d2 xs2] [test] XMM0-15 survive exits and other domains: PASS",
            "[d2 xs2] [test] MXCSR survives exits and other domains: PASS",
            "[d2 xs2] [test] AVX enabled afresh starts in its initial configuration, never with another domain's YMM: PASS",
            "[d1 xs1] [test] RFLAGS.IF toggled around exits stays as set, no stray interrupt: PASS",
            "[d2 xs2] [test] RFLAGS.IF toggled around exits stays as set, no stray interrupt: PASS",
            "dom1 (xs1): powered off",
            "dom2 (xs2): powered off",
        ]
    };
}

/// Every scenario of this area, in order.
pub const LIST: &[Scenario] = &[
    Scenario {
        name: "xstate-svm",
        description: "under SVM, guest XCR0 is checked and per vCPU, and XMM/YMM/MXCSR survive exits and a second domain (XSAVE)",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info",
        timeout_secs: 90,
        expect: xstate_expect!(
            "domains: 2 started, 2 powered off cleanly",
            "[d1 xs1] [test] YMM0-15 survive exits and other domains: PASS",
            "[d2 xs2] [test] YMM0-15 survive exits and other domains: PASS",
        ),
        reject: &[": FAIL", "destroyed"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: XSTATE,
    },
    Scenario {
        name: "xstate-vmx",
        description: "under VMX (Bochs), guest XCR0 (AVX-512 included) is checked and per vCPU, and XMM/YMM/ZMM/k/MXCSR survive exits and a second domain",
        emulator: BOCHS_VMX,
        boot: Boot::Grub(Protocol::Mb2),
        cmdline: "loglvl=info",
        timeout_secs: 180,
        // Bochs' corei7_skylake_x has AVX and AVX-512: XCR0 0xe7.
        expect: xstate_expect!(
            "domains: 2 started, 2 powered off cleanly",
            "xstate: XSAVE, XCR0 0xe7",
            "[d1 xs1] [test] xsetbv of part of AVX-512 raises #GP: PASS",
            "[d1 xs1] [test] YMM0-15 survive exits and other domains: PASS",
            "[d2 xs2] [test] YMM0-15 survive exits and other domains: PASS",
            "[d1 xs1] [test] ZMM0-31 survive exits and other domains: PASS",
            "[d1 xs1] [test] k0-7 survive exits and other domains: PASS",
            "[d2 xs2] [test] ZMM0-31 survive exits and other domains: PASS",
            "[d2 xs2] [test] k0-7 survive exits and other domains: PASS",
        ),
        reject: &[": FAIL", "destroyed"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: XSTATE,
    },
    Scenario {
        name: "nrips-svm-bochs",
        description: "under SVM with next-RIP save (Bochs ryzen), the exits and xstate guests pass with instruction lengths from the VMCB",
        emulator: BOCHS_SVM,
        boot: Boot::Grub(Protocol::Mb2),
        cmdline: "loglvl=info",
        timeout_secs: 240,
        expect: xstate_expect!(
            "svm: enabled (",
            "next-RIP save yes",
            "[d3 exits] [test] cpuid Xen hypercall leaf: PASS",
            "[d3 exits] [test] rdmsr of an unknown MSR (0x1234) raises #GP: PASS",
            "[d3 exits] [test] inl from an unassigned port: PASS",
            "[d3 exits] [test] summary: ",
            "dom3 (exits): vCPU 0 halted with interrupts disabled: down; no vCPU left up: powering off",
            "dom3 (exits): powered off",
            "domains: 3 started, 3 powered off cleanly",
        ),
        reject: &[": FAIL", "destroyed"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: XSTATE_AND_EXITS,
    },
];
