//! The Xen guest ABI: event channels, grant tables, xenstore, time, the PV
//! console and the local APIC, checked by the firmware conformance guests.

#[allow(unused_imports)]
use super::*;

/// The boot modules of a conformance guest: its image and a configuration
/// naming the domain after it.
macro_rules! abi_modules {
    ($guest:literal) => {
        &[
            BootModule {
                name: $guest,
                content: ModuleContent::Guest($guest),
            },
            BootModule {
                name: concat!($guest, ".cfg"),
                content: ModuleContent::Text(concat!(
                    "name = \"",
                    $guest,
                    "\"\nkernel = \"",
                    $guest,
                    "\"\nmemory = 32\n"
                )),
            },
        ]
    };
}

/// A conformance guest run alone under SVM (QEMU) or VMX (Bochs): every
/// check passes and the domain powers off.
macro_rules! abi_scenario {
    (svm, $name:literal, $guest:literal, $what:literal) => {
        abi_scenario!(svm, $name, $guest, $what, [])
    };
    (svm, $name:literal, $guest:literal, $what:literal, [$($line:literal),*] $(, reject [$($rej:literal),*])?) => {
        Scenario {
            name: $name,
            description: concat!($what, " (SVM)"),
            emulator: QEMU_INTEL,
            boot: Boot::Kernel,
            cmdline: "loglvl=info",
            timeout_secs: 120,
            expect: &[
                concat!("[d1 ", $guest, "] [test] summary: "),
                concat!("dom1 (", $guest, "): powered off"),
                $(concat!("[d1 ", $guest, "] ", $line),)*
            ],
            reject: &[": FAIL", "unhandled exception", "panic" $($(, $rej)*)?],
            expect_in_order: &[],
            outcome: Outcome::Success,
            modules: abi_modules!($guest),
        }
    };
    (vmx, $name:literal, $guest:literal, $what:literal) => {
        abi_scenario!(vmx, $name, $guest, $what, [])
    };
    (vmx, $name:literal, $guest:literal, $what:literal, [$($line:literal),*] $(, reject [$($rej:literal),*])?) => {
        Scenario {
            name: $name,
            description: concat!($what, " (VMX, Bochs)"),
            emulator: BOCHS_VMX,
            boot: Boot::Grub(Protocol::Mb2),
            cmdline: "loglvl=info",
            timeout_secs: 300,
            expect: &[
                "vmx: enabled (EPT, unrestricted guest",
                concat!("[d1 ", $guest, "] [test] summary: "),
                concat!("dom1 (", $guest, "): powered off"),
                $(concat!("[d1 ", $guest, "] ", $line),)*
            ],
            reject: &[": FAIL", "unhandled exception", "panic" $($(, $rej)*)?],
            expect_in_order: &[],
            outcome: Outcome::Success,
            modules: abi_modules!($guest),
        }
    };
}

const GARBAGE_CFG: &str = "name = \"abi_garbage\"\nkernel = \"abi_garbage\"\nmemory = 32\n";
const HELLO_CFG: &str = "name = \"hello\"\nkernel = \"hello\"\nmemory = 32\n";

const PAIR_A_CFG: &str =
    "name = \"evtchn_a\"\nkernel = \"abi_evtchn\"\nmemory = 32\nextra = \"peer=2\"\n";
const PAIR_B_CFG: &str =
    "name = \"evtchn_b\"\nkernel = \"abi_evtchn\"\nmemory = 32\nextra = \"peer=1\"\n";

/// Every scenario of this area, in order.
pub const LIST: &[Scenario] = &[
    abi_scenario!(
        svm,
        "abi-apic-svm",
        "abi_apic",
        "the local APIC's base MSR state machine, modes and ESR as Xen's vLAPIC"
    ),
    abi_scenario!(
        vmx,
        "abi-apic-vmx",
        "abi_apic",
        "the local APIC's base MSR state machine, modes and ESR as Xen's vLAPIC"
    ),
    abi_scenario!(
        svm,
        "abi-time-svm",
        "abi_time",
        "pvclock, wallclock and timers as Xen specifies them"
    ),
    abi_scenario!(
        vmx,
        "abi-time-vmx",
        "abi_time",
        "pvclock, wallclock and timers as Xen specifies them"
    ),
    abi_scenario!(
        svm,
        "abi-xenstore-svm",
        "abi_xenstore",
        "the xenstore ring protocol as xenstored answers it"
    ),
    abi_scenario!(
        vmx,
        "abi-xenstore-vmx",
        "abi_xenstore",
        "the xenstore ring protocol as xenstored answers it"
    ),
    abi_scenario!(
        svm,
        "abi-console-svm",
        "abi_console",
        "the PV console ring as Xen specifies it",
        [
            "ring: line 3 of 3",
            "ring: a line in two writes",
            "ring: wrap line 39 of 40 .",
            "both: line 1 of 4",
            "both: line 2 of 4",
            "both: line 3 of 4",
            "both: line 4 of 4",
            "both: the same line twice through the ring\r\n[d1 abi_console] both: the same line twice through the ring"
        ],
        // A line written both ways is printed once, not twice in a row.
        reject [
            "both: line 1 of 4\r\n[d1 abi_console] both: line 1 of 4",
            "both: line 2 of 4\r\n[d1 abi_console] both: line 2 of 4",
            "both: line 3 of 4\r\n[d1 abi_console] both: line 3 of 4",
            "both: line 4 of 4\r\n[d1 abi_console] both: line 4 of 4"
        ]
    ),
    abi_scenario!(
        vmx,
        "abi-console-vmx",
        "abi_console",
        "the PV console ring as Xen specifies it",
        [
            "ring: line 3 of 3",
            "ring: a line in two writes",
            "ring: wrap line 39 of 40 .",
            "both: line 1 of 4",
            "both: line 2 of 4",
            "both: line 3 of 4",
            "both: line 4 of 4",
            "both: the same line twice through the ring\r\n[d1 abi_console] both: the same line twice through the ring"
        ],
        // A line written both ways is printed once, not twice in a row.
        reject [
            "both: line 1 of 4\r\n[d1 abi_console] both: line 1 of 4",
            "both: line 2 of 4\r\n[d1 abi_console] both: line 2 of 4",
            "both: line 3 of 4\r\n[d1 abi_console] both: line 3 of 4",
            "both: line 4 of 4\r\n[d1 abi_console] both: line 4 of 4"
        ]
    ),
    abi_scenario!(
        svm,
        "abi-grant-svm",
        "abi_grant",
        "grant tables v1 and GNTTABOP_copy as Xen specifies them"
    ),
    abi_scenario!(
        vmx,
        "abi-grant-vmx",
        "abi_grant",
        "grant tables v1 and GNTTABOP_copy as Xen specifies them"
    ),
    abi_scenario!(
        svm,
        "abi-memory-svm",
        "abi_memory",
        "ballooning (decrease_reservation, populate_physmap) and XENMEM_exchange as Xen answers them"
    ),
    abi_scenario!(
        vmx,
        "abi-memory-vmx",
        "abi_memory",
        "ballooning (decrease_reservation, populate_physmap) and XENMEM_exchange as Xen answers them"
    ),
    abi_scenario!(
        svm,
        "abi-privileged-svm",
        "abi_privileged",
        "the control domain's hypercalls and sub-commands answer a domU -EPERM as Xen's do"
    ),
    Scenario {
        name: "abi-evtchn-svm",
        description: "event channels, the callback upcall and SCHEDOP_poll as Xen specifies them; an upcall raised while the guest has interrupts off is its virtual interrupt, taken at its sti without an interrupt-window exit (SVM)",
        expect_in_order: &[
            "[d1 abi_evtchn] [test] it is taken in the first interrupt window (one sti): PASS",
            "dom1 (abi_evtchn): exits: ",
            " npf, 0 interrupt window, ",
        ],
        ..abi_scenario!(
            svm,
            "abi-evtchn-svm",
            "abi_evtchn",
            "event channels, the callback upcall and SCHEDOP_poll"
        )
    },
    abi_scenario!(
        vmx,
        "abi-evtchn-vmx",
        "abi_evtchn",
        "event channels, the callback upcall and SCHEDOP_poll as Xen specifies them"
    ),
    abi_scenario!(
        svm,
        "abi-fifo-svm",
        "abi_fifo",
        "FIFO event channels: init_control, queues in order, priorities, masking, expand_array \
         and their errors as Xen specifies them"
    ),
    abi_scenario!(
        vmx,
        "abi-fifo-vmx",
        "abi_fifo",
        "FIFO event channels: init_control, queues in order, priorities, masking, expand_array \
         and their errors as Xen specifies them"
    ),
    Scenario {
        name: "abi-garbage-svm",
        description: "garbage at every hypercall and into the rings from one domain while hello runs beside it (SVM)",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info",
        timeout_secs: 300,
        expect: &[
            "[d1 abi_garbage] [test] summary: ",
            "dom1 (abi_garbage): powered off",
            "[d2 hello] [test] summary: 9 passed, 0 failed",
            "dom2 (hello): powered off",
            "domains: 2 started, 2 powered off cleanly",
        ],
        reject: &[": FAIL", "unhandled exception", "panic"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: &[
            BootModule { name: "abi_garbage", content: ModuleContent::Guest("abi_garbage") },
            BootModule { name: "abi_garbage.cfg", content: ModuleContent::Text(GARBAGE_CFG) },
            BootModule { name: "hello", content: ModuleContent::Guest("hello") },
            BootModule { name: "hello.cfg", content: ModuleContent::Text(HELLO_CFG) },
        ],
    },
    Scenario {
        name: "abi-garbage-vmx",
        description: "garbage at every hypercall and into the rings from one domain while hello runs beside it (VMX, Bochs)",
        emulator: BOCHS_VMX,
        boot: Boot::Grub(Protocol::Mb2),
        cmdline: "loglvl=info",
        timeout_secs: 600,
        expect: &[
            "[d1 abi_garbage] [test] summary: ",
            "dom1 (abi_garbage): powered off",
            "[d2 hello] [test] summary: 9 passed, 0 failed",
            "dom2 (hello): powered off",
            "domains: 2 started, 2 powered off cleanly",
        ],
        reject: &[": FAIL", "unhandled exception", "panic"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: &[
            BootModule { name: "abi_garbage", content: ModuleContent::Guest("abi_garbage") },
            BootModule { name: "abi_garbage.cfg", content: ModuleContent::Text(GARBAGE_CFG) },
            BootModule { name: "hello", content: ModuleContent::Guest("hello") },
            BootModule { name: "hello.cfg", content: ModuleContent::Text(HELLO_CFG) },
        ],
    },
    Scenario {
        name: "abi-evtchn-pair-svm",
        description: "an interdomain event channel between two domains, both ways, and its close (SVM)",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info",
        timeout_secs: 120,
        expect: &[
            "[d1 evtchn_a] [test] summary: ",
            "[d2 evtchn_b] [test] summary: ",
            "dom1 (evtchn_a): powered off",
            "dom2 (evtchn_b): powered off",
        ],
        reject: &[": FAIL", "unhandled exception", "panic"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: &[
            BootModule { name: "abi_evtchn", content: ModuleContent::Guest("abi_evtchn") },
            BootModule { name: "evtchn_a.cfg", content: ModuleContent::Text(PAIR_A_CFG) },
            BootModule { name: "evtchn_b.cfg", content: ModuleContent::Text(PAIR_B_CFG) },
        ],
    },
    Scenario {
        name: "abi-evtchn-pair-vmx",
        description: "an interdomain event channel between two domains, both ways, and its close (VMX, Bochs)",
        emulator: BOCHS_VMX,
        boot: Boot::Grub(Protocol::Mb2),
        cmdline: "loglvl=info",
        timeout_secs: 300,
        expect: &[
            "[d1 evtchn_a] [test] summary: ",
            "[d2 evtchn_b] [test] summary: ",
            "dom1 (evtchn_a): powered off",
            "dom2 (evtchn_b): powered off",
        ],
        reject: &[": FAIL", "unhandled exception", "panic"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: &[
            BootModule { name: "abi_evtchn", content: ModuleContent::Guest("abi_evtchn") },
            BootModule { name: "evtchn_a.cfg", content: ModuleContent::Text(PAIR_A_CFG) },
            BootModule { name: "evtchn_b.cfg", content: ModuleContent::Text(PAIR_B_CFG) },
        ],
    },
];
