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

/// `(after, typed)`: each command once the answer to the one before it is
/// on the serial line.
macro_rules! typed {
    ($(($after:expr, $text:expr)),+ $(,)?) => {
        &[
            BootModule {
                name: "ticker",
                content: ModuleContent::Guest("ticker"),
            },
            BootModule {
                name: "spinner.cfg",
                content: ModuleContent::Text(SPINNER_CFG),
            },
            $(BootModule {
                name: "",
                content: ModuleContent::Typed { after: $after, text: $text },
            },)+
        ]
    };
}

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

/// A typed line: `text` once `after` is on the serial line.
macro_rules! typed_line {
    ($after:expr, $text:expr) => {
        BootModule {
            name: "",
            content: ModuleContent::Typed {
                after: $after,
                text: $text,
            },
        }
    };
}

/// `create-destroy-svm`'s cycles, given as the domain ids each one's edu
/// and idle guests get, the last apart (it ends with the spinner): the
/// boot modules (what is typed, each after which answer) or the lines
/// expected in order.
macro_rules! create_destroy {
    (modules: $(($edu:literal, $idle:literal)),+; ($last_edu:literal, $last_idle:literal)) => {
        &[
            BootModule {
                name: "ticker",
                content: ModuleContent::Guest("ticker"),
            },
            BootModule {
                name: "xpci",
                content: ModuleContent::Guest("xpci"),
            },
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
    modules: typed!(
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
];
