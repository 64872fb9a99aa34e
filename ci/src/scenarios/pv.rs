//! 64-bit PV domains (`type = "pv"`): our own PV test guest `pv_hello`
//! checks Xen's PV ABI from the guest side (firmware/README.md) under SVM
//! and VMX.

#[allow(unused_imports)]
use super::*;

const PV_HELLO_CFG: &str = "# our own 64-bit PV test guest\n\
name = \"pv_hello\"\n\
type = \"pv\"\n\
kernel = \"pv_hello\"\n\
memory = 32\n\
extra = \"console=hvc0 greeting=pv\"\n";

const PV_HELLO: &[BootModule] = &[
    BootModule {
        name: "pv_hello",
        content: ModuleContent::Guest("pv_hello"),
    },
    BootModule {
        name: "pv_hello.cfg",
        content: ModuleContent::Text(PV_HELLO_CFG),
    },
];

const PV_CRASH_CFG: &str = "# our own 64-bit PV test guest, ending itself\n\
name = \"pv_hello\"\n\
type = \"pv\"\n\
kernel = \"pv_hello\"\n\
memory = 32\n\
extra = \"console=hvc0 crash=kernel-stack\"\n";

const PV_CRASH: &[BootModule] = &[
    BootModule {
        name: "pv_hello",
        content: ModuleContent::Guest("pv_hello"),
    },
    BootModule {
        name: "pv_hello.cfg",
        content: ModuleContent::Text(PV_CRASH_CFG),
    },
];

/// One line of the guest's console as the hypervisor logs it.
macro_rules! guest {
    ($line:literal) => {
        concat!("[d1 pv_hello] ", $line)
    };
}

/// The guest's lines that every run must show: one check of each group,
/// the summary with every check of a full run passed (a group that stopped
/// early shows in the count) and the power-off; `$virt` is the line of
/// the backend.
macro_rules! pv_hello_expect {
    ($virt:literal) => {
        &[
            $virt,
            guest!("pv_hello: hello from a 64-bit PV guest"),
            guest!("pv_hello: command line: \"console=hvc0 greeting=pv\""),
            guest!("[test] start_info: magic starts with xen-3.0-x86_64: PASS"),
            guest!("[test] start_info: mfn_list is the identity (mfn_list[i] == i for every page): PASS"),
            guest!("[test] hypercall page: all 128 stubs are Xen's: PASS"),
            guest!("[test] xen_version by syscall gives the same: PASS"),
            guest!("[test] mov from %cr3 (emulated) gives the machine address of pt_base's L4: PASS"),
            guest!("[test] shared info: vcpu_info[0].evtchn_upcall_mask is 1 at start: PASS"),
            guest!("[test] #PF (write to an unmapped VA): error code 2, CR2 in vcpu_info.arch.cr2: PASS"),
            guest!("[test] #NM: its delivery cleared TS, the next fnop runs: PASS"),
            guest!("[test] event callback: iret (IF set) leaves events enabled: PASS"),
            guest!("[test] events raised while an upcall is left out: every timer tick reaches the callback: PASS"),
            guest!("[test] events raised while an upcall is left out: no port pending without selector and upcall: PASS"),
            guest!("[test] assist on: a plain store to the pinned L1 is validated and emulated (no #PF): PASS"),
            guest!("[test] user: the last syscall came back from user mode after the iret: PASS"),
            guest!("[test] multicall: each entry's result is set: PASS"),
            guest!("[test] %fs:0 and %fs:8 read the buffer: PASS"),
            guest!("[test] stack_switch with an RPL 0 selector: 0 (Xen fixes the RPL up): PASS"),
            guest!("[test] the fast-path stub's data page: a read from the guest kernel is #PF (present, supervisor): PASS"),
            guest!("[test] sysctl(physinfo): -EPERM: PASS"),
            guest!("[test] decrease_reservation of another domain does nothing: PASS"),
            guest!("[test] FIFO: PENDING cleared by the guest, events enabled: the upcall is left out, the event unlinked, READY and upcall pending cleared: PASS"),
            guest!("[test] FIFO: events queued while an upcall is left out: every timer tick reaches the callback: PASS"),
            guest!("[test] FIFO: events queued while an upcall is left out: none unlinked while pending, none LINKED where no queue reaches it: PASS"),
            guest!("[test] summary: 168 passed, 0 failed"),
            "dom1 (pv_hello): powered off",
        ]
    };
}

const REJECT: &[&str] = &[
    ": FAIL",
    "unhandled exception",
    "panic",
    "the failsafe callback ran",
];

/// Every scenario of this area, in order.
pub const LIST: &[Scenario] = &[
    Scenario {
        name: "pv-hello-svm",
        description: "our own 64-bit PV guest checks Xen's PV ABI: traps, events, page tables, user mode, segments, errors (SVM)",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info",
        timeout_secs: 120,
        expect: pv_hello_expect!("svm: enabled ("),
        reject: REJECT,
        // Its two system calls from user mode, its `iret`s, the event it
        // forces, its two stack switches and the segment bases it sets
        // went through the fast path; everything else was forwarded, and
        // only the user GS selector the GDT cannot hold faulted there.
        expect_in_order: &[
            guest!("[test] summary: "),
            "dom1 (pv_hello): in the container without an exit: 2 system calls, ",
            " upcalls, 2 stack switches, 7 segment bases; ",
            " forwarded, 1 faults rolled back",
            "dom1 (pv_hello): powered off",
        ],
        outcome: Outcome::Success,
        modules: PV_HELLO,
    },
    Scenario {
        name: "pv-hello-slow-svm",
        description: "the same PV ABI checks with the fast path off (pv.fast=off): every system call, iret and forced callback exits and the hypervisor handles it (SVM)",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info pv.fast=off",
        timeout_secs: 120,
        expect: pv_hello_expect!("pv: fast path off (pv.fast=off)"),
        reject: REJECT,
        expect_in_order: &[
            guest!("[test] summary: "),
            "dom1 (pv_hello): in the container without an exit: 0 system calls, 0 irets, 0 xen_version, 0 upcalls, 0 stack switches, 0 segment bases; ",
            "dom1 (pv_hello): powered off",
        ],
        outcome: Outcome::Success,
        modules: PV_HELLO,
    },
    Scenario {
        name: "pv-stub-fault-svm",
        description: "a PV guest's system call with no kernel stack faults in the fast-path stub, is rolled back and ends the domain as Xen does; the hypervisor goes on (SVM)",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info",
        timeout_secs: 120,
        expect: &[
            guest!("[test] crash: stack_switch to an address nothing maps: PASS"),
            "destroyed: cannot deliver a system call: the kernel stack at 0xffffffffbfffffc8 is not writable memory",
            " faults rolled back",
            "dom1 (pv_hello): destroyed: cannot deliver a system call",
            "domains: 1 started, 0 powered off cleanly",
        ],
        reject: &[": FAIL", "unhandled exception", "panic", "[test] summary"],
        expect_in_order: &[
            guest!("pv_hello: crash=kernel-stack: a system call from user mode with no kernel stack"),
            "destroyed: cannot deliver a system call",
            ", 1 faults rolled back",
            "domains: 1 started",
        ],
        outcome: Outcome::Success,
        modules: PV_CRASH,
    },
    Scenario {
        name: "pv-hello-vmx",
        description: "our own 64-bit PV guest checks Xen's PV ABI: traps, events, page tables, user mode, segments, errors (VMX, Bochs)",
        emulator: BOCHS_VMX,
        boot: Boot::Grub(Protocol::Mb2),
        cmdline: "loglvl=info",
        timeout_secs: 600,
        expect: pv_hello_expect!("vmx: enabled (EPT, unrestricted guest"),
        reject: REJECT,
        expect_in_order: &[
            guest!("[test] summary: "),
            " upcalls, 2 stack switches, 7 segment bases; ",
            " forwarded, 1 faults rolled back",
            "dom1 (pv_hello): powered off",
        ],
        outcome: Outcome::Success,
        modules: PV_HELLO,
    },
];
