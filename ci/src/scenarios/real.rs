//! Real Xen guests from Debian packages (`cargo xtask guests`): Linux booted
//! as a PVH domain to its `/init`, and GRUB's Xen PVH platform to its
//! prompt.

use super::*;

const LINUX_CFG: &str = "# Debian's kernel with a busybox initramfs\n\
name = \"linux\"\n\
type = \"pvh\"\n\
kernel = \"vmlinux\"\n\
ramdisk = \"initrd.gz\"\n\
memory = 256\n\
cmdline = \"console=hvc0 earlyprintk=xen loglevel=7\"\n";

/// As [`LINUX_CFG`], with Linux told not to take the FIFO ABI.
const LINUX_2LEVEL_CFG: &str = "# Debian's kernel on the 2-level event channel ABI\n\
name = \"linux\"\n\
type = \"pvh\"\n\
kernel = \"vmlinux\"\n\
ramdisk = \"initrd.gz\"\n\
memory = 256\n\
cmdline = \"console=hvc0 earlyprintk=xen loglevel=7 xen.fifo_events=0\"\n";

/// The same guest with two vCPUs: Linux starts the second through its
/// local APIC (INIT, STARTUP into its real-mode trampoline).
const LINUX_VCPUS_CFG: &str = "# Debian's kernel with a busybox initramfs, two vCPUs\n\
name = \"linux\"\n\
type = \"pvh\"\n\
kernel = \"vmlinux\"\n\
ramdisk = \"initrd.gz\"\n\
memory = 256\n\
vcpus = 2\n\
cmdline = \"console=hvc0 earlyprintk=xen loglevel=7\"\n";

const GRUB_CFG: &str = "# GRUB's i386-xen_pvh platform\n\
name = \"grub\"\n\
type = \"pvh\"\n\
kernel = \"grub-pvh.elf\"\n\
memory = 128\n";

/// Every scenario of this area, in order.
pub const LIST: &[Scenario] = &[
    Scenario {
        name: "linux-pvh-svm",
        description: "Debian's Linux boots as a PVH domain under SVM: event channels, pvclock, \
                      xenstore and the PV console; /init reports Xen and powers off",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info",
        timeout_secs: 300,
        expect: &[
            "[d1 linux] [    0.000000] Hypervisor detected: Xen HVM",
            // The domain's ACPI tables (hv::pvh::acpi): no CMOS RTC, no
            // i8042, no I/O APIC, as Xen's PVH tables say.
            "ACPI: RSDP 0x00000000000E0000 000024 (v02 XENHV )",
            "ACPI: FACP 0x00000000000E0060 00010C (v05 XENHV  PVH",
            "ACPI: No IOAPIC entries present",
            "ACPI: Interpreter enabled",
            "xen:events: Xen HVM callback vector for event delivery is enabled",
            // Offered the FIFO ABI (EVTCHNOP_init_control), Linux takes it.
            "xen:events: Using FIFO-based ABI",
            "installing Xen timer for CPU 0",
            "Grant table initialized",
            "clocksource: Switched to clocksource xen",
            "[d1 linux] init: started",
            "[d1 linux] init: hypervisor type: xen",
            "[d1 linux] init: guest type: PVH",
            "[d1 linux] init: xenstore name: linux",
            "[d1 linux] init: xenstore vm: /vm/00000000-0000-0000-0000-000000000001",
            "[d1 linux] init: xenstore console: backend-id limit port ring-ref type",
            "[d1 linux] init: powering off",
            "dom1 (linux): powered off",
            "domains: 1 started, 1 powered off cleanly",
        ],
        // Linux probes neither the CMOS RTC nor the i8042 the FADT says
        // are absent.
        reject: &[
            "Kernel panic",
            "BUG:",
            "destroyed",
            "Oops",
            "Using 2-level ABI",
            "rtc_cmos",
            "i8042: Probing ports directly",
            // Every hypercall it makes has an answer (docs/xen-abi.md).
            "unknown hypercall",
            // Its TSC calibration against PIT channel 2 (hv::vpit) ends
            // after a few reads instead of 100,000 reads of a stuck 0xff.
            "(linux): port I/O exits by port: 0x42:",
        ],
        expect_in_order: &[
            "printk: console [hvc0] enabled",
            "[d1 linux] init: started",
            "[d1 linux] init: powering off",
            "dom1 (linux): vCPU 0 halted with interrupts disabled",
        ],
        outcome: Outcome::Success,
        modules: linux_modules!(LINUX_CFG),
    },
    Scenario {
        name: "linux-pvh-2level-svm",
        description: "Debian's Linux as a PVH domain with xen.fifo_events=0 stays on the 2-level \
                      event channel ABI and reaches its /init",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info",
        timeout_secs: 300,
        expect: &[
            "xen:events: Using 2-level ABI",
            "[d1 linux] init: xenstore name: linux",
            "[d1 linux] init: powering off",
            "dom1 (linux): powered off",
            "domains: 1 started, 1 powered off cleanly",
        ],
        reject: &[
            "Kernel panic",
            "BUG:",
            "destroyed",
            "Oops",
            "Using FIFO-based ABI",
        ],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: linux_modules!(LINUX_2LEVEL_CFG),
    },
    Scenario {
        name: "linux-pvh-vcpus-svm",
        description: "Debian's Linux as a PVH domain with two vCPUs under SVM: it starts vCPU 1 \
                      with INIT and STARTUP IPIs through its local APIC; /init pins a task to \
                      each CPU and reads back where it ran",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info",
        timeout_secs: 300,
        expect: &[
            // The MADT's two local APICs.
            "smpboot: Allowing 2 CPUs, 0 hotplug CPUs",
            "[d1 linux] vCPU 1 started by a STARTUP IPI at 0x",
            "installing Xen timer for CPU 1",
            "smp: Brought up 1 node, 2 CPUs",
            // Both vCPUs on the FIFO ABI: a control block each.
            "xen:events: Using FIFO-based ABI",
            "[d1 linux] init: cpuinfo processors: 2",
            "[d1 linux] init: cpus online: 0-1",
            "[d1 linux] init: cpu 0: a task pinned to it ran on cpu 0",
            "[d1 linux] init: cpu 1: a task pinned to it ran on cpu 1",
            "dom1 (linux): powered off",
            "domains: 1 started, 1 powered off cleanly",
        ],
        reject: &[
            "Kernel panic",
            "BUG:",
            "destroyed",
            "Oops",
            "failed to come online",
            "do_boot_cpu failed",
        ],
        expect_in_order: &[
            "[d1 linux] init: started",
            "[d1 linux] init: powering off",
            // poweroff stops CPU 1 with an IPI, then CPU 0 halts.
            "dom1 (linux): vCPU 1 halted with interrupts disabled: down",
            "dom1 (linux): vCPU 0 halted with interrupts disabled",
        ],
        outcome: Outcome::Success,
        modules: linux_modules!(LINUX_VCPUS_CFG),
    },
    Scenario {
        name: "grub-pvh-svm",
        description: "GRUB's Xen PVH image reaches its prompt on the PV console; `halt` typed on \
                      the serial line reaches it and powers the domain off",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info",
        timeout_secs: 120,
        expect: &[
            "grub-pvh: embedded configuration ran",
            "GNU GRUB  version",
            "console: serial input goes to dom1 (grub)",
            "dom1 (grub): powered off",
            "domains: 1 started, 1 powered off cleanly",
        ],
        reject: &["destroyed", "Could not get memory map"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: &[
            BootModule {
                name: "grub-pvh.elf",
                content: ModuleContent::Debian("grub-pvh.elf"),
            },
            BootModule {
                name: "grub.cfg",
                content: ModuleContent::Text(GRUB_CFG),
            },
            BootModule {
                name: "",
                content: ModuleContent::Typed {
                    after: "Minimal BASH-like line editing",
                    text: "halt\r",
                },
            },
        ],
    },
];
