//! The hypervisor's command line: `key=value` options separated by spaces.
//!
//! Unknown options and bad values are reported, never fatal: the boot goes
//! on with the defaults. See docs/command-line.md for every option.

use core::fmt;

/// How verbose the console is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// What to do when there is nothing left to run, or after a fatal error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Halt the CPU and keep the console readable (for hardware).
    Halt,
    /// Leave the emulator with an exit status (QEMU isa-debug-exit, Bochs).
    Exit,
}

/// A deliberate fault, for testing the hypervisor's own diagnostics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DebugFault {
    /// Write to the hypervisor's own code (must be read-only).
    WriteText,
    /// Jump into the hypervisor's data (must be no-execute).
    ExecData,
    /// Execute an undefined instruction.
    InvalidOpcode,
    /// Call `panic!`.
    Panic,
}

/// One problem with the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdlineProblem<'a> {
    /// An option this hypervisor does not know.
    UnknownOption(&'a str),
    /// A test option (`debug.*`) in an image built without the test
    /// hooks: the image users boot never weakens isolation or tells a
    /// guest host addresses.
    TestOnly(&'a str),
    /// A known option with a value it cannot take.
    BadValue {
        key: &'a str,
        value: &'a str,
        expected: &'static str,
    },
}

impl fmt::Display for CmdlineProblem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownOption(opt) => write!(
                f,
                "hv: ignoring unknown command-line option '{opt}' (docs/command-line.md lists them)"
            ),
            Self::TestOnly(opt) => write!(
                f,
                "hv: ignoring '{opt}': a test option, which this image does not have (only the \
                 test scenarios' image, built with the test-hooks feature, does)"
            ),
            Self::BadValue {
                key,
                value,
                expected,
            } => write!(
                f,
                "hv: ignoring {key}={value}: expected {expected}; using the default"
            ),
        }
    }
}

/// The parsed command line. Borrowed strings point into the original text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmdline<'a> {
    /// The image path the boot loader put first, if any.
    pub image: Option<&'a str>,
    pub loglvl: LogLevel,
    pub on_idle: Action,
    pub on_fatal: Action,
    /// The raw `pciback.hide=` value(s), parsed by `pciback::hide`. Several
    /// `pciback.hide=` options, or entries separated by spaces, are joined.
    pub pciback_hide: heapless_str::Joined<'a>,
    /// Allow PCI passthrough without interrupt remapping and DMA isolation
    /// (`pciback.insecure`): a guest driving a device can then reach all
    /// memory.
    pub pciback_insecure: bool,
    /// Print every ACPI table as hex (`acpi.dump`), for test fixtures.
    pub acpi_dump: bool,
    pub debug_fault: Option<DebugFault>,
    /// Keep a canary page while domains run and check it afterwards
    /// (`debug.canary`), for isolation tests.
    pub debug_canary: bool,
    /// Tell each domain where its first 2 MiB are in host memory
    /// (`debug.hpa`: `hv.hpa0=0x...` on its command line), so that a test
    /// guest can program DMA with host addresses when no IOMMU translates
    /// them (the benchmark's IOMMU-off runs).
    pub debug_hpa: bool,
    /// Leave a released function's bus mastering on
    /// (`debug.keep-bus-master`), as a device that ignores its Command
    /// register would: only the IOMMU then stops its late DMA (isolation
    /// tests).
    pub debug_keep_bus_master: bool,
    /// Bits to flip in the ACPI tables before they are read
    /// (`debug.acpi-xor=SIG:OFFSET:MASK,...`, hexadecimal), for the
    /// malformed-table scenarios: what QEMU's `-acpitable` cannot make bad
    /// (checksums, length fields, the root table).
    pub debug_acpi_xor: Option<&'a str>,
    /// Begin every log line and shell reply with the system time
    /// (`debug.stamps`), for the benchmark's hot-plug timings.
    pub debug_stamps: bool,
    /// PV domains' fast path (`pv.fast=on|off`, on by default): their
    /// system calls, `iret`s and forced event callbacks handled in the
    /// container without an exit (`hv::pv::fast`). Off, each one exits.
    pub pv_fast: bool,
    /// The shell on the serial console (`shell=on|off`, off by default):
    /// typed lines are commands (docs/shell.md), and the hypervisor keeps
    /// running when no domain is left, until `quit`.
    pub shell: bool,
}

impl Default for Cmdline<'_> {
    fn default() -> Self {
        Self {
            image: None,
            loglvl: LogLevel::Info,
            on_idle: Action::Halt,
            on_fatal: Action::Halt,
            pciback_hide: heapless_str::Joined::default(),
            pciback_insecure: false,
            acpi_dump: false,
            debug_fault: None,
            debug_canary: false,
            debug_hpa: false,
            debug_keep_bus_master: false,
            debug_acpi_xor: None,
            debug_stamps: false,
            pv_fast: true,
            shell: false,
        }
    }
}

/// The options that are a bare word (no `=value`).
const FLAGS: [&str; 5] = [
    "acpi.dump",
    "pciback.insecure",
    "debug.canary",
    "debug.hpa",
    "debug.keep-bus-master",
];

/// Boot loaders put the image's path first (`/boot/hv loglvl=info` from
/// GRUB; QEMU `-kernel` passes the path as it was given, so `hv` or
/// `./hv` too): a first word with no `=` that is not one of the bare-word
/// options (nor a `pciback.hide` entry) is that path, not an option.
pub fn split_image(text: &str) -> (Option<&str>, &str) {
    let trimmed = text.trim_start();
    let first = trimmed.split_ascii_whitespace().next().unwrap_or("");
    let option = first.contains('=') || first.starts_with('(') || FLAGS.contains(&first);
    if !first.is_empty() && !option {
        (Some(first), &trimmed[first.len()..])
    } else {
        (None, text)
    }
}

/// Whether this image has the test hooks (`debug.*` options): only the
/// image the test scenarios boot, built with the `test-hooks` feature.
pub const TEST_HOOKS: bool = cfg!(feature = "test-hooks");

/// Parses `text`; `report` receives each problem (the parse never fails).
/// The `debug.*` options are taken only when the image has
/// [`TEST_HOOKS`].
pub fn parse<'a>(text: &'a str, report: impl FnMut(CmdlineProblem<'a>)) -> Cmdline<'a> {
    parse_with(text, TEST_HOOKS, report)
}

/// [`parse`], with the test options taken if `hooks`.
fn parse_with<'a>(
    text: &'a str,
    hooks: bool,
    mut report: impl FnMut(CmdlineProblem<'a>),
) -> Cmdline<'a> {
    let mut c = Cmdline::default();
    let mut last_was_hide = false;
    let (image, options) = split_image(text);
    c.image = image;
    for word in options.split_ascii_whitespace() {
        // `pciback.hide=(00:03.0) (00:04.0)`: entries after a space continue it.
        if last_was_hide && word.starts_with('(') {
            c.pciback_hide.push(word);
            continue;
        }
        last_was_hide = false;
        let (key, value) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word, None),
        };
        let bad = |expected| CmdlineProblem::BadValue {
            key,
            value: value.unwrap_or(""),
            expected,
        };
        if !hooks && key.starts_with("debug.") {
            report(CmdlineProblem::TestOnly(key));
            continue;
        }
        match (key, value) {
            ("loglvl", Some(v)) => match parse_level(v) {
                Some(l) => c.loglvl = l,
                None => report(bad("one of error, warning, info, debug, trace, all")),
            },
            ("on_idle" | "on_fatal", Some(v)) => {
                let action = match v {
                    "halt" => Action::Halt,
                    "exit" => Action::Exit,
                    _ => {
                        report(bad("halt or exit"));
                        continue;
                    }
                };
                if key == "on_idle" {
                    c.on_idle = action;
                } else {
                    c.on_fatal = action;
                }
            }
            ("pciback.hide", Some(v)) => {
                c.pciback_hide.push(v);
                last_was_hide = true;
            }
            ("acpi.dump", None) => c.acpi_dump = true,
            ("pciback.insecure", None) => c.pciback_insecure = true,
            ("debug.canary", None) => c.debug_canary = true,
            ("debug.hpa", None) => c.debug_hpa = true,
            ("debug.keep-bus-master", None) => c.debug_keep_bus_master = true,
            #[cfg(any(test, feature = "test-hooks"))]
            ("debug.acpi-xor", Some(v)) => c.debug_acpi_xor = Some(v),
            #[cfg(any(test, feature = "test-hooks"))]
            ("debug.stamps", None) => c.debug_stamps = true,
            ("debug.fault", Some(v)) => match v {
                "write-text" => c.debug_fault = Some(DebugFault::WriteText),
                "exec-data" => c.debug_fault = Some(DebugFault::ExecData),
                "invalid-opcode" => c.debug_fault = Some(DebugFault::InvalidOpcode),
                "panic" => c.debug_fault = Some(DebugFault::Panic),
                _ => report(bad("write-text, exec-data, invalid-opcode or panic")),
            },
            ("pv.fast" | "shell", Some(v)) => match (key, v) {
                ("pv.fast", "on" | "off") => c.pv_fast = v == "on",
                (_, "on" | "off") => c.shell = v == "on",
                _ => report(bad("on or off")),
            },
            (
                "loglvl" | "on_idle" | "on_fatal" | "pciback.hide" | "debug.fault" | "pv.fast"
                | "shell",
                None,
            ) => {
                report(bad("a value after '='"));
            }
            _ => report(CmdlineProblem::UnknownOption(word)),
        }
    }
    c
}

fn parse_level(v: &str) -> Option<LogLevel> {
    Some(match v {
        "error" | "none" => LogLevel::Error,
        "warning" | "warn" => LogLevel::Warn,
        "info" => LogLevel::Info,
        "debug" => LogLevel::Debug,
        "trace" | "all" => LogLevel::Trace,
        _ => return None,
    })
}

/// A tiny allocation-free "list of string pieces" (the command line is
/// parsed before the heap exists).
pub mod heapless_str {
    /// Up to 32 borrowed pieces of one logical value, joined by spaces.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct Joined<'a> {
        parts: [&'a str; 32],
        len: usize,
        /// Pieces dropped because there were more than 32.
        pub dropped: usize,
    }

    impl<'a> Joined<'a> {
        /// Appends a piece.
        pub fn push(&mut self, s: &'a str) {
            if self.len < self.parts.len() {
                self.parts[self.len] = s;
                self.len += 1;
            } else {
                self.dropped += 1;
            }
        }

        /// The pieces.
        pub fn parts(&self) -> &[&'a str] {
            &self.parts[..self.len]
        }

        /// Whether nothing was given.
        pub fn is_empty(&self) -> bool {
            self.len == 0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses as the test scenarios' image does (with the test hooks).
    fn parse_all(s: &str) -> (Cmdline<'_>, Vec<String>) {
        let mut problems = Vec::new();
        let c = parse_with(s, true, |p| problems.push(p.to_string()));
        (c, problems)
    }

    #[test]
    fn the_image_users_boot_refuses_every_test_option() {
        let mut problems = Vec::new();
        let c = parse_with(
            "loglvl=debug debug.canary debug.hpa debug.keep-bus-master debug.fault=panic debug.x debug.acpi-xor=RSDT:9:1 debug.stamps",
            false,
            |p| problems.push(p.to_string()),
        );
        assert_eq!(
            c,
            Cmdline {
                loglvl: LogLevel::Debug,
                ..Cmdline::default()
            }
        );
        assert_eq!(problems.len(), 7);
        assert!(problems[0].starts_with("hv: ignoring 'debug.canary': a test option"));
        assert!(problems[3].starts_with("hv: ignoring 'debug.fault': a test option"));
        assert_eq!(parse("debug.hpa", |_| {}).debug_hpa, TEST_HOOKS);
    }

    #[test]
    fn empty_command_line_gives_defaults() {
        let (c, p) = parse_all("");
        assert_eq!(c, Cmdline::default());
        assert!(p.is_empty());
    }

    #[test]
    fn known_options_are_parsed() {
        let (c, p) = parse_all(
            "loglvl=debug on_idle=exit on_fatal=exit acpi.dump debug.fault=panic debug.canary debug.hpa debug.keep-bus-master debug.acpi-xor=RSDT:9:1 debug.stamps pciback.insecure pv.fast=off shell=on",
        );
        assert_eq!(c.debug_acpi_xor, Some("RSDT:9:1"));
        assert!(c.pciback_insecure);
        assert!(!c.pv_fast);
        assert!(c.shell);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(c.loglvl, LogLevel::Debug);
        assert_eq!(c.on_idle, Action::Exit);
        assert_eq!(c.on_fatal, Action::Exit);
        assert!(c.acpi_dump);
        assert_eq!(c.debug_fault, Some(DebugFault::Panic));
        assert!(c.debug_canary);
        assert!(c.debug_hpa);
        assert!(c.debug_keep_bus_master);
        assert!(c.debug_stamps);
    }

    #[test]
    fn hide_entries_after_spaces_continue_the_hide_option() {
        let (c, p) = parse_all("pciback.hide=(00:03.0) (00:04.0)\t(00:05.*) loglvl=info (x)");
        assert_eq!(
            c.pciback_hide.parts(),
            ["(00:03.0)", "(00:04.0)", "(00:05.*)"]
        );
        assert_eq!(
            p,
            ["hv: ignoring unknown command-line option '(x)' (docs/command-line.md lists them)"]
        );
    }

    #[test]
    fn bad_values_are_reported_and_defaults_kept() {
        let (c, p) =
            parse_all("loglvl=loud on_idle=maybe debug.fault=x loglvl pv.fast=maybe shell=1");
        assert_eq!(c, Cmdline::default());
        assert_eq!(p.len(), 6);
        assert!(p[5].contains("shell=1: expected on or off"));
        assert!(p[4].contains("pv.fast=maybe: expected on or off"));
        assert!(p[0].contains("loglvl=loud: expected one of error"));
        assert!(p[1].contains("on_idle=maybe: expected halt or exit"));
        assert!(p[3].contains("loglvl=: expected a value"));
    }

    #[test]
    fn boot_loader_image_path_is_not_an_option() {
        let (c, p) = parse_all("/boot/hv on_idle=exit");
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(c.image, Some("/boot/hv"));
        assert_eq!(c.on_idle, Action::Exit);
        let (c, _) = parse_all("loglvl=debug /x");
        assert_eq!(c.image, None);
        // QEMU -kernel with a relative path passes it as given.
        for image in ["hv", "./hv", "target/metal/hv"] {
            let line = format!("{image} loglvl=debug");
            let (c, p) = parse_all(&line);
            assert!(p.is_empty(), "{image}: {p:?}");
            assert_eq!((c.image, c.loglvl), (Some(image), LogLevel::Debug));
        }
        // A bare-word option first is an option.
        let (c, p) = parse_all("pciback.insecure loglvl=debug");
        assert!(p.is_empty() && c.pciback_insecure && c.image.is_none());
        let (c, _) = parse_all("acpi.dump");
        assert!(c.acpi_dump && c.image.is_none());
        for flag in FLAGS {
            let (c, p) = parse_all(flag);
            assert!(p.is_empty() && c.image.is_none(), "{flag}: {p:?}");
        }
    }

    #[test]
    fn unknown_options_are_reported() {
        let (_, p) = parse_all("console=com1 quiet");
        assert_eq!(p.len(), 2);
        assert!(p[0].contains("'console=com1'"));
    }

    #[test]
    fn more_than_32_hide_pieces_are_counted_as_dropped() {
        let mut s = String::from("pciback.hide=(0:0.0)");
        for d in 1..33 {
            s.push_str(&format!(" (0:{d:x}.0)"));
        }
        let (c, _) = parse_all(&s);
        assert_eq!(c.pciback_hide.parts().len(), 32);
        assert_eq!(c.pciback_hide.dropped, 1);
    }
}
