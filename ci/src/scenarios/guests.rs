//! Guests: the PVH builder, the SVM and VMX backends, exits, isolation,
//! scheduling and restarts.

use super::*;

pub(crate) const HELLO_CFG: &str = "# the hello guest\n\
name = \"hello\"\n\
type = \"pvh\"\n\
kernel = \"hello\"\n\
memory = 64\n\
extra = \"console=hvc0 greeting=hi\"\n";

const HELLO: &[BootModule] = &[
    BootModule {
        name: "hello",
        content: ModuleContent::Guest("hello"),
    },
    BootModule {
        name: "hello.cfg",
        content: ModuleContent::Text(HELLO_CFG),
    },
];

/// The hello guest followed by 66 padding modules: 68 in all, 4 more
/// than the hypervisor keeps.
const TOO_MANY_MODULES: [BootModule; 68] = {
    const PAD: BootModule = BootModule {
        name: "pad",
        content: ModuleContent::Text("padding\n"),
    };
    let mut all = [PAD; 68];
    all[0] = HELLO[0];
    all[1] = HELLO[1];
    all
};

/// The second domain prints before the first one is done: they interleave.
/// (Domain 1 runs first; which of the two prints its first line first
/// depends on where the first timer tick falls.)
const TWO_TICKERS_IN_ORDER: &[&str] = &["[d2 t2] ticker: tick 0", "[d1 t1] ticker: tick 19"];

const TWO_TICKERS_SVM: &[BootModule] = &[
    BootModule {
        name: "ticker",
        content: ModuleContent::Guest("ticker"),
    },
    BootModule {
        name: "t1.cfg",
        content: ModuleContent::Text(
            "name = \"t1\"\nkernel = \"ticker\"\nmemory = 16\nextra = \"msrs=1\"\n",
        ),
    },
    BootModule {
        name: "t2.cfg",
        content: ModuleContent::Text(
            "name = \"t2\"\nkernel = \"ticker\"\nmemory = 16\nextra = \"msrs=2\"\n",
        ),
    },
];

/// Bochs counts the TSC in instructions: a shorter spin keeps the run short.
const TWO_TICKERS_VMX: &[BootModule] = &[
    BootModule {
        name: "ticker",
        content: ModuleContent::Guest("ticker"),
    },
    BootModule {
        name: "t1.cfg",
        content: ModuleContent::Text(
            "name = \"t1\"\nkernel = \"ticker\"\nmemory = 16\nextra = \"spin=2000000 msrs=1\"\n",
        ),
    },
    BootModule {
        name: "t2.cfg",
        content: ModuleContent::Text(
            "name = \"t2\"\nkernel = \"ticker\"\nmemory = 16\nextra = \"spin=2000000 msrs=2\"\n",
        ),
    },
];

/// The lines of a hello guest that ran to its end.
const HELLO_EXPECT: &[&str] = &[
    "svm: enabled (16 ASIDs, next-RIP save no",
    "dom1 (hello): kernel 'hello' entry 0x",
    "[d1 hello] hello from a PVH guest",
    "[d1 hello] start_info: magic 0x336ec578",
    "[d1 hello] command line: \"console=hvc0 greeting=hi\"",
    "[d1 hello] xen_version: 4.17",
    "[d1 hello] [test] summary: 9 passed, 0 failed",
    "[d1 hello] shut down: poweroff",
    "dom1 (hello): powered off",
    "dom1 (hello): memory scrubbed and returned",
    "domains: 1 started, 1 powered off cleanly",
];

/// [`HELLO_EXPECT`] on VMX: the same guest lines, the VMX line instead of
/// the SVM one.
const HELLO_EXPECT_VMX: &[&str] = &[
    "vmx: enabled (EPT, unrestricted guest, VPID yes",
    "dom1 (hello): kernel 'hello' entry 0x",
    "[d1 hello] hello from a PVH guest",
    "[d1 hello] start_info: magic 0x336ec578",
    "[d1 hello] command line: \"console=hvc0 greeting=hi\"",
    "[d1 hello] xen_version: 4.17",
    "[d1 hello] [test] summary: 9 passed, 0 failed",
    "[d1 hello] shut down: poweroff",
    "dom1 (hello): powered off",
    "dom1 (hello): memory scrubbed and returned",
    "domains: 1 started, 1 powered off cleanly",
];

/// Every scenario of this area, in order.
pub const LIST: &[Scenario] = &[
    Scenario {
        name: "pvh-hello-svm",
        description: "a PVH guest runs under SVM with nested paging (QEMU -kernel, modules by -initrd)",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info",
        timeout_secs: 90,
        expect: HELLO_EXPECT,
        reject: &["[test] summary: 9 passed, 0 failed\n[d1 hello] FAIL", ": FAIL"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: HELLO,
    },
    Scenario {
        name: "pvh-hello-grub-svm",
        description: "the same guest from GRUB multiboot2 modules on the ISO",
        emulator: QEMU_INTEL,
        boot: Boot::Grub(Protocol::Mb2),
        cmdline: "loglvl=info",
        timeout_secs: 90,
        expect: HELLO_EXPECT,
        reject: &[": FAIL"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: HELLO,
    },
    Scenario {
        name: "exits-svm",
        description: "CPUID, MSRs, port I/O, exceptions, hypercalls, absent MMIO and HLT exits are answered as specified",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info",
        timeout_secs: 90,
        expect: &[
            "[d1 exits] [test] cpuid Xen hypercall leaf: PASS",
            "[d1 exits] [test] rdmsr of an unknown MSR (0x1234) raises #GP: PASS",
            "[d1 exits] [test] inl from an unassigned port: PASS",
            "[d1 exits] [test] unknown hypercall issued directly returns -ENOSYS: PASS",
            "[d1 exits] [test] absent MMIO: 1-byte load gives 0xff, the rest of RAX kept: PASS",
            "[d1 exits] [test] absent MMIO: 1-byte load into AH sets bits 15:8 only: PASS",
            "[d1 exits] [test] absent MMIO: 8-byte load gives all-ones: PASS",
            "[d1 exits] [test] absent MMIO: movsx of a word into EAX gives 0xffffffff: PASS",
            "[d1 exits] [test] absent MMIO: writes are dropped, the next read gives all-ones: PASS",
            "[d1 exits] [test] summary: ",
            "[d1 exits] hlt: executing with interrupts off",
            "dom1 (exits): vCPU 0 halted with interrupts disabled: down; no vCPU left up: powering off",
            "dom1 (exits): powered off",
        ],
        reject: &[": FAIL"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: &[
            BootModule { name: "exits", content: ModuleContent::Guest("exits") },
            BootModule {
                name: "exits.cfg",
                content: ModuleContent::Text("name = \"exits\"\nkernel = \"exits\"\nmemory = 32\n"),
            },
        ],
    },
    Scenario {
        name: "crash-isolation-svm",
        description: "a guest that triple-faults is destroyed with a register dump; the next domain runs to its end",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info",
        timeout_secs: 90,
        expect: &[
            "ERROR: [d1 crash] destroyed: triple fault; guest state: rip 0x",
            "dom1 (crash): memory scrubbed and returned",
            "[d2 hello] [test] summary: 9 passed, 0 failed",
            "dom2 (hello): powered off",
            "domains: 2 started, 1 powered off cleanly",
        ],
        reject: &[": FAIL"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: &[
            BootModule { name: "crash", content: ModuleContent::Guest("crash") },
            BootModule {
                name: "a-crash.cfg",
                content: ModuleContent::Text("name = \"crash\"\nkernel = \"crash\"\nmemory = 32\n"),
            },
            BootModule { name: "hello", content: ModuleContent::Guest("hello") },
            BootModule { name: "b-hello.cfg", content: ModuleContent::Text(HELLO_CFG) },
        ],
    },
    Scenario {
        name: "pvh-hello-vmx",
        description: "a PVH guest runs under VMX with EPT and unrestricted guest (Bochs Skylake-X, GRUB multiboot2 modules)",
        emulator: BOCHS_VMX,
        boot: Boot::Grub(Protocol::Mb2),
        cmdline: "loglvl=info",
        timeout_secs: 180,
        expect: HELLO_EXPECT_VMX,
        reject: &[": FAIL", "svm: enabled"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: HELLO,
    },
    Scenario {
        name: "exits-vmx",
        description: "CPUID, MSRs, port I/O, exceptions, hypercalls, absent MMIO and HLT exits under VMX (Bochs)",
        emulator: BOCHS_VMX,
        boot: Boot::Grub(Protocol::Mb2),
        cmdline: "loglvl=info",
        timeout_secs: 180,
        expect: &[
            "vmx: enabled (EPT, unrestricted guest",
            "[d1 exits] [test] cpuid Xen hypercall leaf: PASS",
            "[d1 exits] [test] rdmsr of an unknown MSR (0x1234) raises #GP: PASS",
            "[d1 exits] [test] inl from an unassigned port: PASS",
            "[d1 exits] [test] unknown hypercall issued directly returns -ENOSYS: PASS",
            "[d1 exits] [test] absent MMIO: 1-byte load gives 0xff, the rest of RAX kept: PASS",
            "[d1 exits] [test] absent MMIO: 1-byte load into AH sets bits 15:8 only: PASS",
            "[d1 exits] [test] absent MMIO: 8-byte load gives all-ones: PASS",
            "[d1 exits] [test] absent MMIO: movsx of a word into EAX gives 0xffffffff: PASS",
            "[d1 exits] [test] absent MMIO: writes are dropped, the next read gives all-ones: PASS",
            "[d1 exits] [test] summary: ",
            "[d1 exits] hlt: executing with interrupts off",
            "dom1 (exits): vCPU 0 halted with interrupts disabled: down; no vCPU left up: powering off",
            "dom1 (exits): powered off",
        ],
        reject: &[": FAIL"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: &[
            BootModule { name: "exits", content: ModuleContent::Guest("exits") },
            BootModule {
                name: "exits.cfg",
                content: ModuleContent::Text("name = \"exits\"\nkernel = \"exits\"\nmemory = 32\n"),
            },
        ],
    },
    Scenario {
        name: "crash-isolation-vmx",
        description: "under VMX, a guest that triple-faults is destroyed with a register dump; the next domain runs to its end",
        emulator: BOCHS_VMX,
        boot: Boot::Grub(Protocol::Mb2),
        cmdline: "loglvl=info",
        timeout_secs: 180,
        expect: &[
            "vmx: enabled (EPT, unrestricted guest",
            "ERROR: [d1 crash] destroyed: triple fault; guest state: rip 0x",
            "dom1 (crash): memory scrubbed and returned",
            "[d2 hello] [test] summary: 9 passed, 0 failed",
            "dom2 (hello): powered off",
            "domains: 2 started, 1 powered off cleanly",
        ],
        reject: &[": FAIL"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: &[
            BootModule { name: "crash", content: ModuleContent::Guest("crash") },
            BootModule {
                name: "a-crash.cfg",
                content: ModuleContent::Text("name = \"crash\"\nkernel = \"crash\"\nmemory = 32\n"),
            },
            BootModule { name: "hello", content: ModuleContent::Guest("hello") },
            BootModule { name: "b-hello.cfg", content: ModuleContent::Text(HELLO_CFG) },
        ],
    },
    Scenario {
        name: "isolation-vmx",
        description: "under VMX, a guest write outside its RAM is dropped and reads back all-ones; a jump there ends the domain, the hypervisor goes on",
        emulator: BOCHS_VMX,
        boot: Boot::Grub(Protocol::Mb2),
        cmdline: "loglvl=info",
        timeout_secs: 180,
        expect: &[
            "[d1 write-high] [test] the top page of my RAM is readable and writable: PASS",
            "[d1 write-high] isolation: writing 0x20000000, outside my RAM",
            "[d1 write-high] [test] a write outside my RAM is dropped (reads back all-ones): PASS",
            "[d1 write-high] [test] a write outside my RAM leaves my RAM as it was: PASS",
            "dom1 (write-high): powered off",
            "[d2 exec-high] isolation: jumping to 0x20000000, outside my RAM",
            "ERROR: [d2 exec-high] destroyed: executed guest-physical 0x20000000, which is not its memory (rip 0x20000000); guest state: rip 0x",
            "dom2 (exec-high): memory scrubbed and returned",
            "domains: 2 started, 1 powered off cleanly",
        ],
        reject: &[": FAIL", "NOT isolated"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: &[
            BootModule { name: "isolation", content: ModuleContent::Guest("isolation") },
            BootModule {
                name: "a-write-high.cfg",
                content: ModuleContent::Text(
                    "name = \"write-high\"\nkernel = \"isolation\"\nmemory = 32\nextra = \"target=0x20000000 access=write\"\n",
                ),
            },
            BootModule {
                name: "b-exec-high.cfg",
                content: ModuleContent::Text(
                    "name = \"exec-high\"\nkernel = \"isolation\"\nmemory = 32\nextra = \"target=0x20000000 access=exec\"\n",
                ),
            },
        ],
    },
    Scenario {
        name: "isolation-svm",
        description: "guests aim at a host canary page and outside their RAM: reads there give all-ones, writes change nothing, a jump there ends the domain; the canary is unchanged, the next domain runs",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info debug.canary",
        timeout_secs: 90,
        expect: &[
            "isolation: canary page at host-physical 0x",
            "[d1 write-canary] [test] the top page of my RAM is readable and writable: PASS",
            // The canary's host address is guest RAM here: the write lands in
            // the guest's own page, never on the host's.
            "[d1 write-canary] isolation: wrote 0x",
            "which is my own RAM here (read back 0xdeadbeefdeadbeef)",
            "dom1 (write-canary): powered off",
            "[d2 read-high] isolation: reading 0x20000000, outside my RAM",
            "[d2 read-high] [test] a read outside my RAM gives all-ones: PASS",
            "dom2 (read-high): powered off",
            "[d3 write-high] [test] a write outside my RAM is dropped (reads back all-ones): PASS",
            "[d3 write-high] [test] a write outside my RAM leaves my RAM as it was: PASS",
            "dom3 (write-high): powered off",
            "[d4 exec-high] isolation: jumping to 0x20000000, outside my RAM",
            "ERROR: [d4 exec-high] destroyed: executed guest-physical 0x20000000, which is not its memory (rip 0x20000000)",
            "[d5 hello] [test] summary: 9 passed, 0 failed",
            "dom5 (hello): powered off",
            "isolation: canary page at 0x",
            "unchanged after 5 domains",
        ],
        reject: &[": FAIL", "NOT isolated", "CHANGED"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: &[
            BootModule { name: "isolation", content: ModuleContent::Guest("isolation") },
            BootModule {
                name: "a-write-canary.cfg",
                content: ModuleContent::Text(
                    "name = \"write-canary\"\nkernel = \"isolation\"\nmemory = 32\nextra = \"target=canary access=write\"\n",
                ),
            },
            BootModule {
                name: "b-read-high.cfg",
                content: ModuleContent::Text(
                    "name = \"read-high\"\nkernel = \"isolation\"\nmemory = 32\nextra = \"target=0x20000000 access=read\"\n",
                ),
            },
            BootModule {
                name: "c-write-high.cfg",
                content: ModuleContent::Text(
                    "name = \"write-high\"\nkernel = \"isolation\"\nmemory = 32\nextra = \"target=0x20000000 access=write\"\n",
                ),
            },
            BootModule {
                name: "d-exec-high.cfg",
                content: ModuleContent::Text(
                    "name = \"exec-high\"\nkernel = \"isolation\"\nmemory = 32\nextra = \"target=0x20000000 access=exec\"\n",
                ),
            },
            BootModule { name: "hello", content: ModuleContent::Guest("hello") },
            BootModule { name: "e-hello.cfg", content: ModuleContent::Text(HELLO_CFG) },
        ],
    },
    Scenario {
        name: "restart-svm",
        description: "on_crash = \"restart\" builds a crashed domain again, at most three times; the other domain is unaffected",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info",
        timeout_secs: 90,
        expect: &[
            "dom1 (crash): on_crash = \"restart\": restarted as dom3 (restart 1 of 3)",
            "on_crash = \"restart\": restarted as dom5 (restart 3 of 3)",
            "dom5 (crash): on_crash = \"restart\", but it was restarted 3 times already; not again",
            "dom2 (hello): powered off",
            "domains: 5 started, 1 powered off cleanly",
        ],
        expect_in_order: &[],
        reject: &[": FAIL", "restarted as dom6"],
        outcome: Outcome::Success,
        modules: &[
            BootModule { name: "crash", content: ModuleContent::Guest("crash") },
            BootModule {
                name: "a-crash.cfg",
                content: ModuleContent::Text(
                    "name = \"crash\"\nkernel = \"crash\"\nmemory = 16\non_crash = \"restart\"\n",
                ),
            },
            BootModule { name: "hello", content: ModuleContent::Guest("hello") },
            BootModule { name: "b-hello.cfg", content: ModuleContent::Text(HELLO_CFG) },
        ],
    },
    Scenario {
        name: "bad-config-svm",
        description: "malformed configurations and missing modules are reported with file, line and key; the valid domain still starts, and the boot summary counts the four refused apart from the one started",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info",
        timeout_secs: 90,
        expect: &[
            // QEMU names -initrd modules by their path: match the file part.
            "a-bad.cfg:3: memory = \"lots\": expected a number of MiB",
            "a-bad.cfg:4: pci = ['00:03.0,permisive=1']: unknown option 'permisive'",
            "a-bad.cfg: not started because of the errors above",
            "b-nokernel.cfg: no 'kernel =' line",
            "c-missing.cfg: not started: no boot module is named 'nothere'",
            "d-binary.cfg: not UTF-8 text (byte 11); skipped",
            "[d2 hello] [test] summary: 9 passed, 0 failed",
            "dom2 (hello): powered off",
            // Four configurations never ran: the count says so.
            "domains: 1 started, 1 powered off cleanly; 4 refused (see the errors above)",
        ],
        reject: &[": FAIL", "[d1 "],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: &[
            BootModule {
                name: "a-bad.cfg",
                content: ModuleContent::Text(
                    "name = \"bad\"\nkernel = \"hello\"\nmemory = \"lots\"\npci = [ '00:03.0,permisive=1' ]\n",
                ),
            },
            BootModule { name: "b-nokernel.cfg", content: ModuleContent::Text("name = \"nokernel\"\nmemory = 16\n") },
            BootModule {
                name: "c-missing.cfg",
                content: ModuleContent::Text("name = \"missing\"\nkernel = \"nothere\"\n"),
            },
            BootModule { name: "d-binary.cfg", content: ModuleContent::Bytes(b"name = \"bin\xff\"\n") },
            BootModule { name: "hello", content: ModuleContent::Guest("hello") },
            BootModule { name: "e-hello.cfg", content: ModuleContent::Text(HELLO_CFG) },
        ],
    },
    Scenario {
        name: "bad-elf-svm",
        description: "malformed kernel images (not ELF, truncated, big-endian, a PVH image given as type = \"pv\") are refused with what is wrong, naming the configuration and the kernel; the valid domain still starts and the boot summary counts the four refused",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info",
        timeout_secs: 90,
        expect: &[
            // QEMU names -initrd modules by their path: match from the file name on.
            "a-notelf.cfg: not started: kernel 'notelf': bad ELF image: no ELF magic (\\x7fELF) at the start of the image",
            "b-short.cfg: not started: kernel 'short': bad ELF image: the 5-byte image is too short for an ELF header (16 bytes)",
            "c-bigendian.cfg: not started: kernel 'bigendian': bad ELF image: ELF data encoding 2 is not little-endian (1)",
            "d-notpv.cfg: not started: kernel: no XEN_ELFNOTE_ENTRY note: this image is not a PV kernel",
            "[d5 hello] [test] summary: 9 passed, 0 failed",
            "dom5 (hello): powered off",
            "domains: 1 started, 1 powered off cleanly; 4 refused (see the errors above)",
        ],
        reject: &[": FAIL", "[d1 ", "[d2 ", "[d3 ", "[d4 "],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: &[
            BootModule { name: "notelf", content: ModuleContent::Bytes(b"MZ\x90\x00 this is a PE image, not an ELF one....") },
            BootModule { name: "a-notelf.cfg", content: ModuleContent::Text("name = \"notelf\"\nkernel = \"notelf\"\nmemory = 16\n") },
            BootModule { name: "short", content: ModuleContent::Bytes(b"\x7fELF\x02") },
            BootModule { name: "b-short.cfg", content: ModuleContent::Text("name = \"short\"\nkernel = \"short\"\nmemory = 16\n") },
            BootModule {
                name: "bigendian",
                content: ModuleContent::Bytes(b"\x7fELF\x02\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x40\x00\x38\x00\x00\x00\x40\x00\x00\x00\x00\x00"),
            },
            BootModule { name: "c-bigendian.cfg", content: ModuleContent::Text("name = \"bigendian\"\nkernel = \"bigendian\"\nmemory = 16\n") },
            BootModule { name: "hello", content: ModuleContent::Guest("hello") },
            BootModule { name: "d-notpv.cfg", content: ModuleContent::Text("name = \"notpv\"\ntype = \"pv\"\nkernel = \"hello\"\nmemory = 16\n") },
            BootModule { name: "e-hello.cfg", content: ModuleContent::Text(HELLO_CFG) },
        ],
    },
    Scenario {
        name: "two-domains-svm",
        description: "two busy guests share the CPU under SVM: the host timer ends their time slices, so their output interleaves",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info",
        timeout_secs: 90,
        expect: &[
            "sched: LAPIC timer vector 0xef",
            "[d1 t1] ticker: syscall MSRs kept across every tick",
            "[d2 t2] ticker: syscall MSRs kept across every tick",
            "[d1 t1] ticker: done",
            "[d2 t2] ticker: done",
            "dom1 (t1): powered off",
            "dom2 (t2): powered off",
            "domains: 2 started, 2 powered off cleanly",
        ],
        reject: &["unexpected interrupt", "unexpected host interrupt", "ticker: MSR"],
        expect_in_order: TWO_TICKERS_IN_ORDER,
        outcome: Outcome::Success,
        modules: TWO_TICKERS_SVM,
    },
    Scenario {
        name: "two-domains-vmx",
        description: "two busy guests share the CPU under VMX (Bochs): the host timer ends their time slices",
        emulator: BOCHS_VMX,
        boot: Boot::Grub(Protocol::Mb2),
        cmdline: "loglvl=info",
        timeout_secs: 180,
        expect: &[
            "vmx: enabled (EPT, unrestricted guest",
            "sched: LAPIC timer vector 0xef",
            "[d1 t1] ticker: syscall MSRs kept across every tick",
            "[d2 t2] ticker: syscall MSRs kept across every tick",
            "[d1 t1] ticker: done",
            "[d2 t2] ticker: done",
            "domains: 2 started, 2 powered off cleanly",
        ],
        reject: &["unexpected interrupt", "unexpected host interrupt", "ticker: MSR"],
        expect_in_order: TWO_TICKERS_IN_ORDER,
        outcome: Outcome::Success,
        modules: TWO_TICKERS_VMX,
    },
    Scenario {
        name: "release-no-hooks-svm",
        description: "the image users boot (cargo xtask build) has no test hooks: every debug.* option is refused by name, none takes effect (no canary, no host addresses told, no deliberate fault), and the guest runs",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info debug.canary debug.hpa debug.keep-bus-master debug.fault=panic",
        timeout_secs: 60,
        expect: &[
            "hv: ignoring 'debug.canary': a test option, which this image does not have",
            "hv: ignoring 'debug.hpa': a test option",
            "hv: ignoring 'debug.keep-bus-master': a test option",
            "hv: ignoring 'debug.fault': a test option",
            // The guest's command line as its configuration gives it:
            // nothing appended (no hv.canary=, hv.hpa0= host addresses).
            "[d1 hello] command line: \"console=hvc0 greeting=hi\"",
            "[d1 hello] [test] summary: 9 passed, 0 failed",
            "dom1 (hello): powered off",
            "hv: boot complete",
        ],
        reject: &[
            "isolation: canary page",
            "debug.hpa: told",
            "debug.fault requested",
            "FATAL",
            ": FAIL",
        ],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: HELLO,
    },
    Scenario {
        name: "too-many-modules-svm",
        description: "68 boot modules, 4 more than the hypervisor keeps: the boot log says how many were ignored (never silently), and the domain whose modules were kept runs",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info",
        timeout_secs: 60,
        expect: &[
            "hv: 4 boot modules beyond the first 64 were ignored: the domains they describe do not exist",
            "[d1 hello] [test] summary: 9 passed, 0 failed",
            "domains: 1 started, 1 powered off cleanly",
        ],
        reject: &[": FAIL"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: &TOO_MANY_MODULES,
    },
    Scenario {
        name: "panic-report-qemu",
        description: "debug.fault=panic gives a FATAL report with a backtrace and a failure exit",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info debug.fault=panic",
        timeout_secs: 60,
        expect: &["FATAL: hypervisor panic", "backtrace:"],
        reject: &["hv: boot complete"],
        expect_in_order: &[],
        outcome: Outcome::Failure,
        modules: &[],
    },
    Scenario {
        name: "wx-code-readonly-qemu",
        description: "the hypervisor's code is read-only: a write to it is a reported #PF",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "debug.fault=write-text",
        timeout_secs: 60,
        expect: &[
            "FATAL: CPU exception 14 (#PF page fault)",
            "(protection violation, write)",
            "backtrace:",
        ],
        reject: &["hv: boot complete"],
        expect_in_order: &[],
        outcome: Outcome::Failure,
        modules: &[],
    },
    Scenario {
        name: "wx-data-noexec-qemu",
        description: "the hypervisor's data is no-execute: a jump into it is a reported #PF",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "debug.fault=exec-data",
        timeout_secs: 60,
        expect: &[
            "FATAL: CPU exception 14 (#PF page fault)",
            "(protection violation, instruction fetch)",
        ],
        reject: &["hv: boot complete"],
        expect_in_order: &[],
        outcome: Outcome::Failure,
        modules: &[],
    },
];
