//! The emulator scenarios, as data. [`crate::runner`] runs any of them.
//!
//! To add one, append a [`Scenario`] to [`ALL`]: a name (also its log
//! directory), the machine, the boot path, the hypervisor's command line
//! (`on_idle=exit on_fatal=exit` are always added in front), a time limit,
//! and the lines the serial log must and must not contain.

use crate::machine::{Boot, Emulator, Iommu, Protocol};

/// How the hypervisor is expected to end the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `hv: exiting: success`: QEMU exits with status 1, Bochs after
    /// "Shutdown". "FATAL" must not appear in the log.
    Success,
    /// `hv: exiting: failure`: QEMU exits with status 3, Bochs after
    /// "Shutdown".
    Failure,
}

impl Outcome {
    /// The line the hypervisor prints last.
    pub fn marker(self) -> &'static str {
        match self {
            Outcome::Success => "hv: exiting: success",
            Outcome::Failure => "hv: exiting: failure",
        }
    }
}

/// What every scenario adds in front of its command line: leave the
/// emulator when boot is done and after a fatal error.
pub const CMDLINE_PREFIX: &str = "on_idle=exit on_fatal=exit";

/// Rejected in the log of every scenario expected to succeed.
pub const ALWAYS_REJECTED: &[&str] = &["FATAL"];

/// What a boot module holds.
#[derive(Debug, Clone, Copy)]
pub enum ModuleContent {
    /// A guest image built from the `firmware` crate, by binary name.
    Guest(&'static str),
    /// A text file (a domain configuration).
    Text(&'static str),
    /// Raw bytes (for malformed modules).
    Bytes(&'static [u8]),
}

/// A boot module handed to the hypervisor, named `name` (its file name on
/// the ISO or for QEMU `-initrd`).
#[derive(Debug, Clone, Copy)]
pub struct BootModule {
    pub name: &'static str,
    pub content: ModuleContent,
}

/// One emulator run with its expected outcome.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Unique; the directory under target/xtask/scenarios/.
    pub name: &'static str,
    /// One line for `cargo xtask test --list`.
    pub description: &'static str,
    pub emulator: Emulator,
    pub boot: Boot,
    /// The hypervisor's command line after [`CMDLINE_PREFIX`].
    pub cmdline: &'static str,
    /// After this many seconds the emulator is killed and the run fails.
    pub timeout_secs: u64,
    /// Substrings that must all appear in the serial log.
    pub expect: &'static [&'static str],
    /// Substrings that must not appear (besides [`ALWAYS_REJECTED`]).
    pub reject: &'static [&'static str],
    /// Substrings that must appear in this order: each is searched for
    /// after the end of the previous one.
    pub expect_in_order: &'static [&'static str],
    pub outcome: Outcome,
    /// Boot modules: guest images and domain configurations.
    pub modules: &'static [BootModule],
}

impl Scenario {
    /// The full command line the hypervisor gets.
    pub fn kernel_cmdline(&self) -> String {
        format!("{CMDLINE_PREFIX} {}", self.cmdline)
            .trim_end()
            .to_string()
    }

    /// Everything the log must not contain.
    pub fn rejected(&self) -> impl Iterator<Item = &'static str> {
        let always = match self.outcome {
            Outcome::Success => ALWAYS_REJECTED,
            Outcome::Failure => &[],
        };
        self.reject.iter().chain(always.iter()).copied()
    }
}

const HELLO_CFG: &str = "# the hello guest\n\
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
        content: ModuleContent::Text("name = \"t1\"\nkernel = \"ticker\"\nmemory = 16\n"),
    },
    BootModule {
        name: "t2.cfg",
        content: ModuleContent::Text("name = \"t2\"\nkernel = \"ticker\"\nmemory = 16\n"),
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
            "name = \"t1\"\nkernel = \"ticker\"\nmemory = 16\nextra = \"spin=2000000\"\n",
        ),
    },
    BootModule {
        name: "t2.cfg",
        content: ModuleContent::Text(
            "name = \"t2\"\nkernel = \"ticker\"\nmemory = 16\nextra = \"spin=2000000\"\n",
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

const QEMU_INTEL: Emulator = Emulator::Qemu {
    iommu: Iommu::Intel,
};
const QEMU_AMD: Emulator = Emulator::Qemu { iommu: Iommu::Amd };
const BOCHS_VMX: Emulator = Emulator::Bochs {
    cpu: "corei7_skylake_x",
};

/// Every scenario, in the order they are listed and started.
// Expectations follow hv's boot log.
pub const ALL: &[Scenario] = &[
    Scenario {
        name: "boot-mb1-qemu",
        description: "QEMU -kernel (multiboot1) boots to the end",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info",
        timeout_secs: 60,
        expect: &["hv: boot protocol multiboot1", "hv: boot complete"],
        reject: &[],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: &[],
    },
    Scenario {
        name: "boot-grub-mb2-qemu",
        description: "GRUB multiboot2 from the ISO under QEMU boots to the end",
        emulator: QEMU_INTEL,
        boot: Boot::Grub(Protocol::Mb2),
        cmdline: "loglvl=info",
        timeout_secs: 90,
        expect: &["hv: boot protocol multiboot2", "hv: boot complete"],
        reject: &[],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: &[],
    },
    Scenario {
        name: "boot-grub-mb1-bochs-vmx",
        description: "GRUB multiboot1 under Bochs (Skylake-X): VMX with EPT and unrestricted guest",
        emulator: BOCHS_VMX,
        boot: Boot::Grub(Protocol::Mb1),
        cmdline: "loglvl=info",
        timeout_secs: 120,
        expect: &[
            "hv: boot protocol multiboot1 (loader \"GRUB",
            "cpu: GenuineIntel",
            "cpu: VMX revision 0x",
            ": EPT yes (4-level yes, write-back yes",
            "unrestricted guest yes",
            "VPID yes",
            "pci: scanning segment 0000 buses 00-ff through ports 0xcf8/0xcfc",
            "hv: boot complete",
        ],
        reject: &[],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: &[],
    },
    Scenario {
        name: "hide-qemu",
        description: "pciback.hide= hides and quiesces edu (00:03.0) and NVMe (00:05.0)",
        emulator: QEMU_INTEL,
        boot: Boot::Grub(Protocol::Mb2),
        cmdline: "loglvl=info pciback.hide=(00:03.0)(00:05.0)",
        timeout_secs: 90,
        expect: &[
            "pciback.hide: 2 entries: (0000:00:03.0)(0000:00:05.0)",
            "pci: 0000:00:03.0 1234:11e8 class 00ff00 (unclassified) rev 10 INTA line 11  [hidden: pciback]",
            "pci: 0000:00:05.0 1b36:0010 class 010802 (storage/NVMe) rev 02 INTA line 10  [hidden: pciback]",
            // the command register read back after the quiesce: decode and
            // bus mastering off, INTx disabled
            "pciback: hidden 0000:00:03.0 (1234:11e8 unclassified): command 0x0103 -> 0x0500, MSI control 0x0080 -> 0x0080; quiesced",
            "pciback: hidden 0000:00:05.0 (1b36:0010 storage/NVMe): command 0x0107 -> 0x0500, MSI-X control 0x0040 -> 0x4040; quiesced",
            "hv: boot complete: 9 PCI functions, 2 hidden",
        ],
        reject: &[
            "pciback: hidden 0000:00:04.0",
            "pciback: hidden 0000:01:00.0",
            "NOT fully quiesced",
            "WARNING",
        ],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: &[],
    },
    Scenario {
        name: "bad-hide-qemu",
        description: "a malformed pciback.hide= is reported and its good entries still apply",
        emulator: QEMU_INTEL,
        boot: Boot::Grub(Protocol::Mb2),
        cmdline: "loglvl=info pciback.hide=(00:03.0)(00:zz.0)garbage(00:05.0)(00:04.9)(0:1:2:3.0)(00:*.0(00:09.0)(00:06.0",
        timeout_secs: 90,
        expect: &[
            "pciback.hide: entry '(00:zz.0)' at column 10: device 'zz' is not a hexadecimal number 00..1f; entry ignored, the others still apply",
            "pciback.hide: text 'garbage' at column 19: text outside parentheses",
            "pciback.hide: entry '(00:04.9)' at column 35: function '9' is out of range 0..7",
            "pciback.hide: entry '(0:1:2:3.0)' at column 44: 3 ':' in the address, at most 2",
            "pciback.hide: entry '(00:*.0' at column 55: '(' inside an entry",
            "pciback.hide: entry '(00:06.0' at column 71: no closing ')'",
            "pciback.hide: (0000:00:09.0) matches no PCI function",
            "pciback: hidden 0000:00:03.0",
            "pciback: hidden 0000:00:05.0",
            "hv: boot complete: 9 PCI functions, 2 hidden",
        ],
        reject: &["pciback: hidden 0000:00:04.0", "pciback: hidden 0000:01:00.0"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: &[],
    },
    Scenario {
        name: "hide-wildcard-bridge-qemu",
        description: "wildcards and a listed bridge: every function below the root port is hidden, the port keeps forwarding",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "pciback.hide=(0000:00:06.*) (00:03.*)",
        timeout_secs: 60,
        expect: &[
            "pciback.hide: 2 entries: (0000:00:06.*)(0000:00:03.*)",
            "pciback: 0000:00:06.0 is a bridge listed by (0000:00:06.*): it keeps forwarding",
            "pciback: 0000:01:00.0 hidden because bridge 0000:00:06.0 is listed",
            "pci: 0000:01:00.0 8086:10d3 class 020000 (network/Ethernet) rev 00 INTA line 11 behind 0000:00:06.0  [hidden: pciback]",
            "pciback: hidden 0000:00:03.0",
            "pciback: hidden 0000:01:00.0 (8086:10d3 network/Ethernet): command 0x0103 -> 0x0500, MSI control 0x0080 -> 0x0080, MSI-X control 0x0004 -> 0x4004; quiesced",
            "hv: boot complete: 9 PCI functions, 2 hidden",
        ],
        reject: &["pciback: hidden 0000:00:06.0", "pciback: hidden 0000:00:05.0"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: &[],
    },
    Scenario {
        name: "acpi-intel-iommu-qemu",
        description: "ACPI DMAR names the Intel IOMMU's register block",
        emulator: QEMU_INTEL,
        boot: Boot::Grub(Protocol::Mb2),
        cmdline: "loglvl=info",
        timeout_secs: 90,
        expect: &[
            "acpi:   DMAR at 0x",
            "acpi: DMAR: haw 39 bits, flags intr-remap",
            "acpi:   DRHD unit 0: base 0xfed90000 segment 0, scopes: IOAPIC id 0 at ff:00.0, endpoint 00:00.0, endpoint 00:03.0",
            "iommu: VT-d unit 0 at 0xfed90000, segment 0",
            "acpi: MCFG: 1 ECAM windows",
            "acpi: MADT: local APIC 0xfee00000",
            "acpi: HPET 0: mem 0xfed00000",
            "pci: scanning segment 0000 buses 00-ff through ECAM",
            "hv: boot complete",
        ],
        reject: &[],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: &[],
    },
    Scenario {
        name: "acpi-amd-iommu-qemu",
        description: "ACPI IVRS describes the AMD IOMMU",
        emulator: QEMU_AMD,
        boot: Boot::Grub(Protocol::Mb2),
        cmdline: "loglvl=info",
        timeout_secs: 90,
        expect: &[
            "acpi:   IVRS at 0x",
            "acpi:   IVHD type 0x10 devid 00:01.0 base 0xfed80000 seg 0, 12 device entries (select 00:00.0, select 00:01.0, select 00:03.0",
            "range 01:00.0 to 01:1f.7",
            "IOAPIC 0 = 00:14.0",
            "iommu: AMD-Vi unit 0 at 0xfed80000, segment 0, the IOMMU itself is 0000:00:01.0",
            "pci: 0000:00:01.0 1022:0008 class 080600 (system peripheral/IOMMU)",
            "hv: boot complete",
        ],
        reject: &["acpi:   DMAR"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: &[],
    },
    Scenario {
        name: "loglvl-qemu",
        description: "loglvl=warning keeps the console to warnings and errors",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=warning pciback.hide=(00:09.0) bogus=1",
        timeout_secs: 60,
        expect: &[
            "WARNING: hv: ignoring unknown command-line option 'bogus=1'",
            "WARNING: pciback.hide: (0000:00:09.0) matches no PCI function",
        ],
        reject: &["pci: 0000:00:00.0", "acpi: MADT", "cpu: ", "hv: boot complete"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: &[],
    },
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
        description: "CPUID, MSRs, port I/O, exceptions, hypercalls and HLT exits are answered as specified",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info",
        timeout_secs: 90,
        expect: &[
            "[d1 exits] [test] cpuid Xen hypercall leaf: PASS",
            "[d1 exits] [test] rdmsr of an unknown MSR (0x1234) raises #GP: PASS",
            "[d1 exits] [test] inl from an unassigned port: PASS",
            "[d1 exits] [test] unknown hypercall issued directly returns -ENOSYS: PASS",
            "[d1 exits] [test] hlt with interrupts off returns: PASS",
            "[d1 exits] [test] summary: ",
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
        description: "CPUID, MSRs, port I/O, exceptions, hypercalls and HLT exits under VMX (Bochs)",
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
            "[d1 exits] [test] hlt with interrupts off returns: PASS",
            "[d1 exits] [test] summary: ",
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
        description: "under VMX, a guest write outside its RAM is an EPT violation: the domain is destroyed, the hypervisor goes on",
        emulator: BOCHS_VMX,
        boot: Boot::Grub(Protocol::Mb2),
        cmdline: "loglvl=info",
        timeout_secs: 180,
        expect: &[
            "[d1 isolation] [test] the top page of my RAM is readable and writable: PASS",
            "ERROR: [d1 isolation] destroyed: wrote guest-physical 0x20000000, which is not its memory; guest state: rip 0x",
            "dom1 (isolation): memory scrubbed and returned",
            "domains: 1 started, 0 powered off cleanly",
        ],
        reject: &[": FAIL"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: &[
            BootModule { name: "isolation", content: ModuleContent::Guest("isolation") },
            BootModule {
                name: "isolation.cfg",
                content: ModuleContent::Text(
                    "name = \"isolation\"\nkernel = \"isolation\"\nmemory = 32\nextra = \"target=0x20000000 access=write\"\n",
                ),
            },
        ],
    },
    Scenario {
        name: "isolation-svm",
        description: "guests aim at a host canary page and outside their RAM: each is destroyed, the canary is unchanged, the next domain runs",
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
            "ERROR: [d2 read-high] destroyed: read guest-physical 0x20000000, which is not its memory",
            "[d3 hello] [test] summary: 9 passed, 0 failed",
            "dom3 (hello): powered off",
            "isolation: canary page at 0x",
            "unchanged after 3 domains",
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
            BootModule { name: "hello", content: ModuleContent::Guest("hello") },
            BootModule { name: "c-hello.cfg", content: ModuleContent::Text(HELLO_CFG) },
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
        description: "malformed configurations and missing modules are reported with file, line and key; the valid domain still starts",
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
        name: "two-domains-svm",
        description: "two busy guests share the CPU under SVM: the host timer ends their time slices, so their output interleaves",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info",
        timeout_secs: 90,
        expect: &[
            "sched: LAPIC timer vector 0xef",
            "[d1 t1] ticker: done",
            "[d2 t2] ticker: done",
            "dom1 (t1): powered off",
            "dom2 (t2): powered off",
            "domains: 2 started, 2 powered off cleanly",
        ],
        reject: &["unexpected interrupt", "unexpected host interrupt"],
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
            "[d1 t1] ticker: done",
            "[d2 t2] ticker: done",
            "domains: 2 started, 2 powered off cleanly",
        ],
        reject: &["unexpected interrupt", "unexpected host interrupt"],
        expect_in_order: TWO_TICKERS_IN_ORDER,
        outcome: Outcome::Success,
        modules: TWO_TICKERS_VMX,
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

/// The scenarios called `names`, in the order of [`ALL`]; all of them when
/// `names` is empty. An unknown name is an error that lists the valid ones.
pub fn select(names: &[String]) -> Result<Vec<&'static Scenario>, String> {
    let unknown: Vec<&str> = names
        .iter()
        .filter(|n| !ALL.iter().any(|s| s.name == n.as_str()))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        let valid: Vec<&str> = ALL.iter().map(|s| s.name).collect();
        return Err(format!(
            "unknown scenario {}; the scenarios are: {}",
            unknown.join(", "),
            valid.join(", ")
        ));
    }
    Ok(ALL
        .iter()
        .filter(|s| names.is_empty() || names.iter().any(|n| n == s.name))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_usable_as_directory_names() {
        for (i, s) in ALL.iter().enumerate() {
            assert!(
                s.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{}",
                s.name
            );
            assert!(ALL[..i].iter().all(|o| o.name != s.name), "{}", s.name);
        }
    }

    #[test]
    fn every_scenario_can_run() {
        for s in ALL {
            assert!(
                !(matches!(s.emulator, Emulator::Bochs { .. }) && s.boot == Boot::Kernel),
                "{}: Bochs boots only from the ISO",
                s.name
            );
            assert!(s.timeout_secs > 0, "{}", s.name);
            assert!(!s.description.is_empty(), "{}", s.name);
            assert!(!s.expect.is_empty(), "{}", s.name);
            for e in s.expect {
                assert!(!s.rejected().any(|r| e.contains(r)), "{}: {e}", s.name);
            }
        }
    }

    #[test]
    fn the_command_line_starts_with_the_exit_options() {
        let s = &ALL[0];
        assert_eq!(s.kernel_cmdline(), "on_idle=exit on_fatal=exit loglvl=info");
    }

    #[test]
    fn fatal_is_rejected_only_where_success_is_expected() {
        for s in ALL {
            let rejects_fatal = s.rejected().any(|r| r == "FATAL");
            assert_eq!(rejects_fatal, s.outcome == Outcome::Success, "{}", s.name);
        }
    }

    #[test]
    fn select_keeps_the_list_order_and_rejects_unknown_names() {
        assert_eq!(select(&[]).map(|v| v.len()), Ok(ALL.len()));
        let names = vec!["hide-qemu".to_string(), "boot-mb1-qemu".to_string()];
        let picked: Vec<&str> = select(&names)
            .expect("known names")
            .iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(picked, ["boot-mb1-qemu", "hide-qemu"]);
        let err = select(&["nope".to_string()]).expect_err("unknown name");
        assert!(
            err.contains("nope") && err.contains("boot-mb1-qemu"),
            "{err}"
        );
    }
}
