//! The shell on the serial console (`shell=on`), driven over its control
//! channel: lines typed as `ctl COMMAND` are answered with one JSON line.

use super::*;

/// A busy guest that holds edu for as long as the scenario needs (its 20
/// ticks take over a minute); it never drives it.
const SPINNER_CFG: &str = "name = \"spinner\"\n\
kernel = \"ticker\"\n\
memory = 32\n\
pci = ['00:03.0']\n\
extra = \"spin=10000000000\"\n";

/// The guest images the scenarios boot.
const TICKER: BootModule = BootModule {
    name: "ticker",
    content: ModuleContent::Guest("ticker"),
};
const XPCI: BootModule = BootModule {
    name: "xpci",
    content: ModuleContent::Guest("xpci"),
};

/// `create-destroy-svm`'s domain configurations, none started at boot: an
/// xpci guest that drives edu and powers off, and an idle one that holds
/// no device and is destroyed.
const EDU_CFG: &str = "name = \"edu\"\n\
kernel = \"xpci\"\n\
memory = 64\n\
pci = ['00:03.0']\n\
autostart = 0\n\
extra = \"expect=1234:11e8\"\n";

const IDLE_CFG: &str = "name = \"idle\"\n\
kernel = \"ticker\"\n\
memory = 32\n\
autostart = 0\n\
extra = \"spin=40000000000\"\n";

/// The domain that keeps running through the cycles.
const LONG_SPINNER_CFG: &str = "name = \"spinner\"\n\
kernel = \"ticker\"\n\
memory = 32\n\
extra = \"spin=40000000000\"\n";

/// `create-destroy-svm`'s cycles, given as the domain ids each one's edu
/// and idle guests get, the last apart (it ends with the spinner): the
/// boot modules (what is typed, each after which answer) or the lines
/// expected in order.
macro_rules! create_destroy {
    (modules: $(($edu:literal, $idle:literal)),+; ($last_edu:literal, $last_idle:literal)) => {
        &[
            TICKER,
            XPCI,
            BootModule {
                name: "spinner.cfg",
                content: ModuleContent::Text(LONG_SPINNER_CFG),
            },
            BootModule {
                name: "edu.cfg",
                content: ModuleContent::Text(EDU_CFG),
            },
            BootModule {
                name: "idle.cfg",
                content: ModuleContent::Text(IDLE_CFG),
            },
            typed_line!("shell: type 'help'", "ctl create edu.cfg\r"),
            $(
                typed_line!(concat!("dom", $edu, " (edu): powered off"), "ctl create idle.cfg\r"),
                typed_line!(concat!("dom", $idle, " (idle) created from idle.cfg"), "ctl destroy idle\r"),
                typed_line!(concat!("dom", $idle, " (idle) destroyed"), "ctl create edu.cfg\r"),
            )+
            typed_line!(concat!("dom", $last_edu, " (edu): powered off"), "ctl create idle.cfg\r"),
            typed_line!(concat!("dom", $last_idle, " (idle) created from idle.cfg"), "ctl destroy idle\r"),
            typed_line!(concat!("dom", $last_idle, " (idle) destroyed"), "ctl destroy spinner\r"),
            typed_line!("dom1 (spinner) destroyed", "ctl quit\r"),
        ]
    };
    (in_order: $(($edu:literal, $idle:literal)),+; ($last_edu:literal, $last_idle:literal)) => {
        &[
            $(
                concat!("ctl: {\"v\":1,\"cmd\":\"create\",\"ok\":true,\"msg\":\"dom", $edu, " (edu) created from edu.cfg\""),
                concat!("[d", $edu, " edu] xpci: edu: 10! = 3628800"),
                concat!("dom", $edu, " (edu): powered off"),
                concat!("ctl: {\"v\":1,\"cmd\":\"create\",\"ok\":true,\"msg\":\"dom", $idle, " (idle) created from idle.cfg\""),
                concat!("ctl: {\"v\":1,\"cmd\":\"destroy\",\"ok\":true,\"msg\":\"dom", $idle, " (idle) destroyed\""),
            )+
            concat!("ctl: {\"v\":1,\"cmd\":\"create\",\"ok\":true,\"msg\":\"dom", $last_edu, " (edu) created from edu.cfg\""),
            concat!("[d", $last_edu, " edu] xpci: edu: 10! = 3628800"),
            concat!("dom", $last_edu, " (edu): powered off"),
            concat!("ctl: {\"v\":1,\"cmd\":\"create\",\"ok\":true,\"msg\":\"dom", $last_idle, " (idle) created from idle.cfg\""),
            concat!("ctl: {\"v\":1,\"cmd\":\"destroy\",\"ok\":true,\"msg\":\"dom", $last_idle, " (idle) destroyed\""),
            "ctl: {\"v\":1,\"cmd\":\"destroy\",\"ok\":true,\"msg\":\"dom1 (spinner) destroyed\"",
            "ctl: {\"v\":1,\"cmd\":\"quit\",\"ok\":true",
            "(same as before the domains), pirqs 0, vectors 0, grants 0, xenstore nodes ",
            "hv: boot complete",
        ]
    };
}

/// `create-destroy-svm`: what is typed, each after which answer.
const CREATE_DESTROY_MODULES: &[BootModule] = create_destroy!(modules: (2, 3), (4, 5), (6, 7), (8, 9), (10, 11), (12, 13), (14, 15), (16, 17), (18, 19), (20, 21), (22, 23), (24, 25), (26, 27), (28, 29), (30, 31), (32, 33), (34, 35), (36, 37), (38, 39); (40, 41));

/// `create-destroy-svm`'s answers and the domains' lines, in order.
const CREATE_DESTROY_IN_ORDER: &[&str] = create_destroy!(in_order: (2, 3), (4, 5), (6, 7), (8, 9), (10, 11), (12, 13), (14, 15), (16, 17), (18, 19), (20, 21), (22, 23), (24, 25), (26, 27), (28, 29), (30, 31), (32, 33), (34, 35), (36, 37), (38, 39); (40, 41));

/// `runtime-hide-svm`'s domain: an xpci guest started without functions
/// that serves one hot-add (it drives what arrives: DMA, MSI) and one
/// hot-remove, then powers off.
const HIDE_HP_CFG: &str = "name = \"hp\"\n\
kernel = \"xpci\"\n\
memory = 64\n\
extra = \"wait-hotplug=2\"\n";

/// The start of a control-channel reply to `cmd` (`ok`: `true` or
/// `false`).
macro_rules! reply {
    ($cmd:literal, $ok:literal) => {
        concat!("\"cmd\":\"", $cmd, "\",\"ok\":", $ok)
    };
}

/// `runtime-hide-svm`: each line typed once the answer before it is there.
const RUNTIME_HIDE_MODULES: &[BootModule] = typed_modules!(
    [
        XPCI,
        BootModule {
            name: "hp.cfg",
            content: ModuleContent::Text(HIDE_HP_CFG),
        },
    ];
        ("shell: type 'help'", "ctl lspci\r"),
        (
            reply!("lspci", "true"),
            "ctl pci-assignable-remove 00:03.0\r"
        ),
        (
            reply!("pci-assignable-remove", "false"),
            "ctl pci-assignable-add 00:03.0\r"
        ),
        (
            reply!("pci-assignable-add", "true"),
            "ctl pci-assignable-list\r"
        ),
        (reply!("pci-assignable-list", "true"), "ctl lspci\r"),
        (reply!("lspci", "true"), "ctl pci-assignable-add 00:03.0\r"),
        (
            reply!("pci-assignable-add", "false"),
            "ctl pci-assignable-add 00:1f.0\r"
        ),
        (
            reply!("pci-assignable-add", "false"),
            "ctl pci-assignable-add 00:01.0\r"
        ),
        (
            reply!("pci-assignable-add", "false"),
            "ctl pci-assignable-add 00:00.0\r"
        ),
        (
            reply!("pci-assignable-add", "false"),
            "ctl pci-assignable-add 00:06.0\r"
        ),
        (
            reply!("pci-assignable-add", "false"),
            "ctl pci-assignable-add 00:1f.2\r"
        ),
        (
            reply!("pci-assignable-add", "false"),
            "ctl pci-assignable-add 00:09.0\r"
        ),
        (
            reply!("pci-assignable-add", "false"),
            "ctl pci-attach hp 00:03.0\r"
        ),
        (
            "[d1 hp] xpci: hot-plug: 1 of 2 events served",
            "ctl pci-assignable-add 00:03.0\r"
        ),
        (
            reply!("pci-assignable-add", "false"),
            "ctl pci-assignable-remove 00:03.0\r"
        ),
        (
            reply!("pci-assignable-remove", "false"),
            "ctl pci-detach hp 00:03.0\r"
        ),
        ("dom1 (hp): powered off", "ctl pci-assignable-list\r"),
        (
            reply!("pci-assignable-list", "true"),
            "ctl pci-assignable-remove 00:03.0\r"
        ),
        (reply!("pci-assignable-remove", "true"), "ctl lspci\r"),
        (reply!("lspci", "true"), "ctl pci-assignable-list\r"),
        (reply!("pci-assignable-list", "true"), "ctl quit\r"),
);

/// `runtime-hide-svm`'s answers, in order.
const RUNTIME_HIDE_IN_ORDER: &[&str] = &[
    "shell: type 'help' for the commands",
    "{\"bdf\":\"0000:00:03.0\",\"id\":\"1234:11e8\",\"class\":\"unclassified\",\"owner\":\"host\"",
    "ctl: {\"v\":1,\"cmd\":\"pci-assignable-remove\",\"ok\":false,\"msg\":\"0000:00:03.0 is not hidden: the host has it already ('pci-assignable-list' lists the hidden functions)\"",
    "pciback: hidden 0000:00:03.0 (1234:11e8 unclassified): command 0x0103 -> 0x0500",
    "ctl: {\"v\":1,\"cmd\":\"pci-assignable-add\",\"ok\":true,\"msg\":\"0000:00:03.0 hidden (command 0x0103 -> 0x0500, MSI control 0x0080 -> 0x0080); 'pci-attach DOM 0000:00:03.0' or a domain's pci = [...] can have it now\"",
    "ctl: {\"v\":1,\"cmd\":\"pci-assignable-list\",\"ok\":true,\"msg\":\"1 hidden function(s) no domain owns\",\"rows\":[{\"bdf\":\"0000:00:03.0\",\"id\":\"1234:11e8\",\"class\":\"unclassified\",\"owner\":\"hidden\"",
    "{\"bdf\":\"0000:00:03.0\",\"id\":\"1234:11e8\",\"class\":\"unclassified\",\"owner\":\"hidden\"",
    "ctl: {\"v\":1,\"cmd\":\"pci-assignable-add\",\"ok\":false,\"msg\":\"0000:00:03.0 not hidden: it is hidden already ('pci-assignable-list' lists it)\"",
    "ctl: {\"v\":1,\"cmd\":\"pci-assignable-add\",\"ok\":false,\"msg\":\"0000:00:1f.0 not hidden: the hypervisor's console UART (COM1, ports 0x3f8-0x3ff) is reached through it; it stays the host's\"",
    "ctl: {\"v\":1,\"cmd\":\"pci-assignable-add\",\"ok\":false,\"msg\":\"0000:00:01.0 not hidden: it is an IOMMU, which the hypervisor drives to confine every device's DMA; it stays the host's\"",
    "ctl: {\"v\":1,\"cmd\":\"pci-assignable-add\",\"ok\":false,\"msg\":\"0000:00:00.0 not hidden: it is a bridge (bridge/host), part of the machine itself: the functions behind it need its forwarding; hide those functions instead\"",
    "ctl: {\"v\":1,\"cmd\":\"pci-assignable-add\",\"ok\":false,\"msg\":\"0000:00:06.0 not hidden: it is a bridge (bridge/PCI-PCI), part of the machine itself: the functions behind it need its forwarding; hide those functions instead\"",
    "ctl: {\"v\":1,\"cmd\":\"pci-assignable-add\",\"ok\":false,\"msg\":\"0000:00:1f.2 not hidden: the IOMMU cannot tell its requests from those of 0000:00:1f.0 (one requester ID, or one device without ACS), and for 0000:00:1f.0: the hypervisor's console UART (COM1, ports 0x3f8-0x3ff) is reached through it; it stays the host's\"",
    "ctl: {\"v\":1,\"cmd\":\"pci-assignable-add\",\"ok\":false,\"msg\":\"0000:00:09.0 not hidden: no such PCI function on this machine ('lspci' lists them)\"",
    "pciback: 0000:00:03.0 (1234:11e8 unclassified) assigned to dom1 (hp)",
    "ctl: {\"v\":1,\"cmd\":\"pci-attach\",\"ok\":true,\"msg\":\"0000:00:03.0 attached to dom1: a new PCI backend",
    "[d1 hp] xpci: hot-add 00:00.0 1234:11e8",
    "[d1 hp] xpci: edu: 10! = 3628800",
    "[d1 hp] [test] edu: raised interrupt arrives by MSI: PASS",
    "[d1 hp] [test] edu: DMA copy equals the source: PASS",
    "[d1 hp] xpci: hot-plug: 1 of 2 events served; waiting",
    "ctl: {\"v\":1,\"cmd\":\"pci-assignable-add\",\"ok\":false,\"msg\":\"0000:00:03.0 not hidden: it is hidden already and assigned to dom1\"",
    "ctl: {\"v\":1,\"cmd\":\"pci-assignable-remove\",\"ok\":false,\"msg\":\"0000:00:03.0 is assigned to dom1 (hp): 'pci-detach 1 0000:00:03.0' or 'destroy 1' first\"",
    "ctl: {\"v\":1,\"cmd\":\"pci-detach\",\"ok\":true,\"msg\":\"dom1 was asked to let go of 0000:00:03.0",
    "[d1 hp] xpci: hot-remove 00:00.0",
    "pciback: 0000:00:03.0 released by dom1 (hp)",
    "[d1 hp] [test] hot-remove: the function left the guest's bus: PASS",
    "dom1 (hp): powered off",
    "ctl: {\"v\":1,\"cmd\":\"pci-assignable-list\",\"ok\":true,\"msg\":\"1 hidden function(s) no domain owns\",\"rows\":[{\"bdf\":\"0000:00:03.0\"",
    "ctl: {\"v\":1,\"cmd\":\"pci-assignable-remove\",\"ok\":true,\"msg\":\"0000:00:03.0 given back to the host, with its config from before hiding\"",
    "{\"bdf\":\"0000:00:03.0\",\"id\":\"1234:11e8\",\"class\":\"unclassified\",\"owner\":\"host\"",
    "ctl: {\"v\":1,\"cmd\":\"pci-assignable-list\",\"ok\":true,\"msg\":\"0 hidden function(s) no domain owns\",\"rows\":[]}",
    "ctl: {\"v\":1,\"cmd\":\"quit\",\"ok\":true",
    "hv: boot complete: 10 PCI functions, 0 hidden",
];

/// `hotplug-svm`'s domains: `a` and `b`, xpci guests started without
/// functions that wait for hot-plug events (4 and 1), and `nb`, which says
/// `pci_hotplug = 0`.
const HOTPLUG_A_CFG: &str = "name = \"a\"\n\
kernel = \"xpci\"\n\
memory = 64\n\
extra = \"wait-hotplug=4\"\n";

const HOTPLUG_NB_CFG: &str = "name = \"nb\"\n\
kernel = \"ticker\"\n\
memory = 32\n\
pci_hotplug = 0\n\
extra = \"spin=400000000000\"\n";

const HOTPLUG_B_CFG: &str = "name = \"b\"\n\
kernel = \"xpci\"\n\
memory = 64\n\
extra = \"wait-hotplug=1\"\n";

const HOTPLUG_IN_ORDER: &[&str] = &[
    "[d1 a] xpci: hot-plug: waiting for a PCI backend",
    "ctl: {\"v\":1,\"cmd\":\"stats\",\"ok\":true,\"msg\":\"\",\"rows\":[{\"free_frames\":",
    "\"pirqs\":0,\"grants\":0,",
    "ctl: {\"v\":1,\"cmd\":\"pci-attach\",\"ok\":false,\"msg\":\"no running domain dom9; running: 1 (a), 2 (nb), 3 (b)\"",
    "ctl: {\"v\":1,\"cmd\":\"pci-attach\",\"ok\":false,\"msg\":\"0000:00:04.0: not hidden: the host owns it; hide it first (pciback.hide= at boot, or pci-assignable-add BDF)\"",
    "ctl: {\"v\":1,\"cmd\":\"pci-attach\",\"ok\":false,\"msg\":\"dom2 (nb) says pci_hotplug = 0: its PCI frontend does not implement the Reconfiguring states (as NetBSD's)",
    "ctl: {\"v\":1,\"cmd\":\"pci-attach\",\"ok\":false,\"msg\":\"seize=1 is refused for a running domain: hide 0000:00:03.0 first",
    "ctl: {\"v\":1,\"cmd\":\"error\",\"ok\":false,\"msg\":\"pci-attach: unknown option 'bogus'",
    "ctl: {\"v\":1,\"cmd\":\"pci-detach\",\"ok\":false,\"msg\":\"0000:00:03.0 is not attached to dom1",
    // First attach: a new backend, the cold handshake.
    "pciback: 0000:00:03.0 (1234:11e8 unclassified) assigned to dom1 (a)",
    "ctl: {\"v\":1,\"cmd\":\"pci-attach\",\"ok\":true,\"msg\":\"0000:00:03.0 attached to dom1: a new PCI backend: the guest's frontend connects to it\"",
    "[d1 a] xpci: hot-add 00:00.0 1234:11e8",
    "[d1 a] xpci: edu: 10! = 3628800",
    "[d1 a] [test] edu: raised interrupt arrives by MSI: PASS",
    "[d1 a] [test] edu: DMA copy equals the source: PASS",
    "[d1 a] xpci: hot-add 00:00.0: driven",
    "[d1 a] xpci: hot-plug: 1 of 4 events served; waiting",
    "ctl: {\"v\":1,\"cmd\":\"pci-attach\",\"ok\":false,\"msg\":\"0000:00:03.0 is owned by dom1: 'pci-detach 1 0000:00:03.0' first",
    "ctl: {\"v\":1,\"cmd\":\"pci-attach\",\"ok\":false,\"msg\":\"0000:00:03.0 is owned by dom1: 'pci-detach 1 0000:00:03.0' first",
    // Detach through Reconfiguring.
    "ctl: {\"v\":1,\"cmd\":\"pci-detach\",\"ok\":true,\"msg\":\"dom1 was asked to let go of 0000:00:03.0 (backend state 7)",
    "[d1 a] xpci: hot-remove 00:00.0",
    "pciback: 0000:00:03.0 released by dom1 (a)",
    "pciback: dom1: 0000:00:03.0 detached",
    "[d1 a] [test] hot-remove: the function left the guest's bus: PASS",
    "[d1 a] xpci: hot-plug: 2 of 4 events served; waiting",
    "ctl: {\"v\":1,\"cmd\":\"pci-assignable-list\",\"ok\":true,\"msg\":\"1 hidden function(s) no domain owns\",\"rows\":[{\"bdf\":\"0000:00:03.0\"",
    "ctl: {\"v\":1,\"cmd\":\"stats\",\"ok\":true,\"msg\":\"\",\"rows\":[{\"free_frames\":",
    "\"pirqs\":0,\"grants\":1,",
    // Attach again into the connected frontend: Reconfiguring.
    "ctl: {\"v\":1,\"cmd\":\"pci-attach\",\"ok\":true,\"msg\":\"0000:00:03.0 attached to dom1: the guest's frontend was asked to reconfigure (backend state 7)\"",
    "[d1 a] xpci: hot-add 00:00.0 1234:11e8",
    "[d1 a] [test] hot-add: the function arrives with decoding and bus mastering off: PASS",
    "[d1 a] xpci: edu: 10! = 3628800",
    "[d1 a] [test] edu: raised interrupt arrives by MSI: PASS",
    "[d1 a] [test] edu: DMA copy equals the source: PASS",
    "[d1 a] xpci: hot-add 00:00.0: driven",
    "[d1 a] xpci: hot-plug: 3 of 4 events served; waiting",
    "ctl: {\"v\":1,\"cmd\":\"pci-detach\",\"ok\":true,\"msg\":\"dom1 was asked to let go of 0000:00:03.0",
    "[d1 a] xpci: hot-remove 00:00.0",
    "pciback: 0000:00:03.0 released by dom1 (a)",
    "[d1 a] xpci: hot-plug: 4 events served",
    "[d1 a] [test] summary: ",
    // The second guest.
    "ctl: {\"v\":1,\"cmd\":\"pci-attach\",\"ok\":true,\"msg\":\"0000:00:03.0 attached to dom3: a new PCI backend",
    "[d3 b] xpci: hot-add 00:00.0 1234:11e8",
    "[d3 b] xpci: edu: 10! = 3628800",
    "[d3 b] [test] edu: DMA copy equals the source: PASS",
    "[d3 b] xpci: hot-add 00:00.0: driven",
    "[d3 b] xpci: hot-plug: 1 events served",
    "pciback: 0000:00:03.0 released by dom3 (b)",
    "ctl: {\"v\":1,\"cmd\":\"destroy\",\"ok\":true,\"msg\":\"dom2 (nb) destroyed\"",
    "ctl: {\"v\":1,\"cmd\":\"quit\",\"ok\":true",
    "(same as before the domains), pirqs 0, vectors 0, grants 0, xenstore nodes ",
    "hv: boot complete",
];

pub const LIST: &[Scenario] = &[Scenario {
    name: "shell-svm",
    description: "shell=on: every command answered over the control channel (one JSON line each), wrong ones with what to type instead; Ctrl-A three times and `console` switch input to the domain's console and back; destroy ends a domain and its device is back in the pool; quit is refused while a domain runs and ends the hypervisor once none does",
    emulator: QEMU_INTEL,
    boot: Boot::Kernel,
    cmdline: "loglvl=info shell=on pciback.hide=(00:03.0)",
    timeout_secs: 150,
    expect: &["hv: boot complete"],
    reject: &["[d1 spinner] ticker: done", "ERROR: "],
    expect_in_order: &[
        "pciback: 0000:00:03.0 (1234:11e8 unclassified) assigned to dom1 (spinner)",
        "shell: type 'help' for the commands",
        "help: commands (a line starting with 'ctl ' gets the reply as one JSON line)",
        "  cmd=quit args=\"\" does=\"end the hypervisor once no domain runs\"",
        "ctl: {\"v\":1,\"cmd\":\"list\",\"ok\":true,\"msg\":\"1 domain(s)\",\"rows\":[{\"id\":1,\"name\":\"spinner\",\"state\":\"",
        "\"vcpus\":1,\"memory_mib\":32,\"devices\":\"0000:00:03.0\",\"restarts\":0}]}",
        "ctl: {\"v\":1,\"cmd\":\"lspci\",\"ok\":true,\"msg\":\"",
        "{\"bdf\":\"0000:00:03.0\",\"id\":\"1234:11e8\",\"class\":\"unclassified\",\"owner\":\"dom1\",\"bars\":\"0:0x",
        "ctl: {\"v\":1,\"cmd\":\"pci-assignable-list\",\"ok\":true,\"msg\":\"0 hidden function(s) no domain owns\",\"rows\":[]}",
        "ctl: {\"v\":1,\"cmd\":\"info\",\"ok\":true,\"msg\":\"\",\"rows\":[{\"cpu\":\"",
        "\"virt\":\"svm+npt\",\"insecure\":\"off\"},{\"iommu\":\"VT-d\",\"base\":\"0x",
        "\"intremap\":\"on\"}]}",
        "ctl: {\"v\":1,\"cmd\":\"stats\",\"ok\":true,\"msg\":\"\",\"rows\":[{\"free_frames\":",
        "\"domains\":1},{\"dom\":1,\"cpuid\":",
        "error: unknown command 'lsit': type 'help' for the list",
        "ctl: {\"v\":1,\"cmd\":\"destroy\",\"ok\":false,\"msg\":\"no running domain dom9; running: 1 (spinner)\",\"rows\":[]}",
        "ctl: {\"v\":1,\"cmd\":\"error\",\"ok\":false,\"msg\":\"pci-attach: expected DOM BDF; type 'pci-attach DOM BDF', e.g. 'pci-attach 1 00:03.0'\",\"rows\":[]}",
        "ctl: {\"v\":1,\"cmd\":\"quit\",\"ok\":false,\"msg\":\"1 domain(s) still run; 'destroy' or 'shutdown' them first ('list' shows them)\",\"rows\":[]}",
        "ctl: {\"v\":1,\"cmd\":\"shutdown\",\"ok\":true,\"msg\":\"asked dom1 (spinner) to poweroff (/local/domain/1/control/shutdown = \\\"poweroff\\\")",
        "shell: input goes to dom1 (spinner)'s console (Ctrl-A three times: next)",
        "shell: input goes to the shell",
        "console: input goes to dom1 (spinner)'s console; Ctrl-A three times to come back",
        "shell: input goes to the shell",
        "shell: destroying dom1 (spinner)",
        "pciback: 0000:00:03.0 released by dom1 (spinner)",
        "ctl: {\"v\":1,\"cmd\":\"destroy\",\"ok\":true,\"msg\":\"dom1 (spinner) destroyed\",\"rows\":[]}",
        "ctl: {\"v\":1,\"cmd\":\"pci-assignable-list\",\"ok\":true,\"msg\":\"1 hidden function(s) no domain owns\",\"rows\":[{\"bdf\":\"0000:00:03.0\",\"id\":\"1234:11e8\",\"class\":\"unclassified\",\"owner\":\"hidden\"",
        "ctl: {\"v\":1,\"cmd\":\"list\",\"ok\":true,\"msg\":\"0 domain(s)\",\"rows\":[]}",
        "ctl: {\"v\":1,\"cmd\":\"quit\",\"ok\":true,\"msg\":\"no domain runs; the hypervisor ends\",\"rows\":[]}",
        "hv: boot complete",
    ],
    outcome: Outcome::Success,
    modules: typed_modules!(
        [
            TICKER,
            BootModule {
                name: "spinner.cfg",
                content: ModuleContent::Text(SPINNER_CFG),
            },
        ];
        ("shell: type 'help'", "help\r"),
        ("does=\"end the hypervisor once no domain runs\"", "ctl list\r"),
        ("\"cmd\":\"list\"", "ctl lspci\r"),
        ("\"cmd\":\"lspci\"", "ctl pci-assignable-list\r"),
        ("\"cmd\":\"pci-assignable-list\"", "ctl info\r"),
        ("\"cmd\":\"info\"", "ctl stats\r"),
        ("\"cmd\":\"stats\"", "lsit\r"),
        ("unknown command 'lsit'", "ctl destroy 9\r"),
        ("no running domain dom9", "ctl pci-attach 1\r"),
        ("expected DOM BDF", "ctl quit\r"),
        ("\"cmd\":\"quit\",\"ok\":false", "ctl shutdown 1\r"),
        ("\"cmd\":\"shutdown\",\"ok\":true", "\x01\x01\x01"),
        ("'s console (Ctrl-A three times: next)", "\x01\x01\x01"),
        ("shell: input goes to the shell", "console spinner\r"),
        ("Ctrl-A three times to come back", "\x01\x01\x01"),
        ("shell: input goes to the shell", "ctl destroy spinner\r"),
        ("\"cmd\":\"destroy\",\"ok\":true", "ctl pci-assignable-list\r"),
        ("\"cmd\":\"pci-assignable-list\"", "ctl list\r"),
        ("\"cmd\":\"list\"", "ctl quit\r"),
    ),
},
    Scenario {
        name: "create-destroy-svm",
        description: "from the control channel, 20 times while another domain keeps running: create an xpci guest (autostart = 0) that drives edu and powers off, create an idle guest and destroy it; afterwards every resource count is back to its value before the first domain",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info shell=on pciback.hide=(00:03.0)",
        timeout_secs: 400,
        expect: &[
            "edu.cfg (edu): autostart = 0: not started at boot; the shell's 'create edu.cfg' starts it",
            "idle.cfg (idle): autostart = 0: not started at boot; the shell's 'create idle.cfg' starts it",
        ],
        reject: &[
            "[d1 spinner] ticker: done",
            "ERROR: ",
            "LEAKED",
            "more than before the domains",
            ": FAIL",
        ],
        expect_in_order: CREATE_DESTROY_IN_ORDER,
        outcome: Outcome::Success,
        modules: CREATE_DESTROY_MODULES,
    },
    Scenario {
        name: "runtime-hide-svm",
        description: "edu, not hidden at boot, hidden from the control channel (pci-assignable-add: quiesced, reset, blocked in the IOMMU), attached to a running xpci guest (pci-attach), which drives it (DMA, MSI), detached from it (pci-detach, the guest lets go), then given back (pci-assignable-remove): lspci's registers for it (command, BARs, interrupt line) equal those before hiding; the console's ISA bridge, the AMD-Vi function, the host bridge, a bridge above a host device, a function sharing the console's device without ACS, a missing function, one hidden or assigned already and a not hidden one are refused with the reason",
        emulator: QEMU_AMD,
        boot: Boot::Kernel,
        cmdline: "loglvl=info shell=on",
        timeout_secs: 300,
        expect: &[
            "[d1 hp] [test] edu: raised interrupt arrives by MSI: PASS",
            "[d1 hp] [test] edu: DMA copy equals the source: PASS",
            "[d1 hp] [test] summary: ",
        ],
        reject: &["ERROR: ", ": FAIL", "[hidden: pciback]"],
        expect_in_order: RUNTIME_HIDE_IN_ORDER,
        outcome: Outcome::Success,
        modules: RUNTIME_HIDE_MODULES,
    },
    Scenario {
        name: "hotplug-svm",
        description: "pci-attach and pci-detach from the control channel: an xpci guest started without functions gets edu (a new backend), drives it (DMA and MSI), lets go of it on pci-detach (Reconfiguring), which resets it back into pci-assignable-list, gets it again through Reconfiguring, then a second guest gets and drives it; wrong input (unknown domain, function not hidden, pci_hotplug = 0, seize=1, unknown option, owned by another domain, detach of a function not attached) refused with the reason; interrupt routes back to their count",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info shell=on pciback.hide=(00:03.0)",
        timeout_secs: 400,
        expect: &["hv: boot complete"],
        reject: &["ERROR: ", "LEAKED", "more than before the domains", ": FAIL"],
        expect_in_order: HOTPLUG_IN_ORDER,
        outcome: Outcome::Success,
        modules: typed_modules!(
            [
                TICKER,
                XPCI,
                BootModule {
                    name: "a.cfg",
                    content: ModuleContent::Text(HOTPLUG_A_CFG),
                },
                BootModule {
                    name: "nb.cfg",
                    content: ModuleContent::Text(HOTPLUG_NB_CFG),
                },
                BootModule {
                    name: "b.cfg",
                    content: ModuleContent::Text(HOTPLUG_B_CFG),
                },
            ];
            ("[d1 a] xpci: hot-plug: waiting for a PCI backend", "ctl stats\r"),
            ("\"cmd\":\"stats\"", "ctl pci-attach 9 00:03.0\r"),
            ("no running domain dom9", "ctl pci-attach 1 00:04.0\r"),
            ("not hidden", "ctl pci-attach 2 00:03.0\r"),
            ("says pci_hotplug = 0", "ctl pci-attach 1 00:03.0,seize=1\r"),
            ("seize=1 is refused", "ctl pci-attach 1 00:03.0,bogus=1\r"),
            ("unknown option 'bogus'", "ctl pci-detach 1 00:03.0\r"),
            ("is not attached to dom1", "ctl pci-attach 1 00:03.0\r"),
            ("[d1 a] xpci: hot-plug: 1 of 4 events served", "ctl pci-attach 3 00:03.0\r"),
            ("is owned by dom1", "ctl pci-attach a 00:03.0\r"),
            ("\"cmd\":\"pci-attach\",\"ok\":false", "ctl pci-detach 1 00:03.0\r"),
            ("[d1 a] xpci: hot-plug: 2 of 4 events served", "ctl pci-assignable-list\r"),
            ("\"cmd\":\"pci-assignable-list\"", "ctl stats\r"),
            ("\"cmd\":\"stats\"", "ctl pci-attach 1 00:03.0\r"),
            ("[d1 a] xpci: hot-plug: 3 of 4 events served", "ctl pci-detach a 00:03.0\r"),
            ("[d1 a] xpci: hot-plug: 4 events served", "ctl pci-attach 3 00:03.0\r"),
            ("dom3 (b): powered off", "ctl destroy nb\r"),
            ("dom2 (nb) destroyed", "ctl quit\r"),
        ),
    },
];
