//! The emulator scenarios, as data. [`crate::runner`] runs any of them.
//!
//! To add one, append a [`Scenario`] to the list of its area (one file
//! each, gathered by [`all`]; one too slow for every run goes to
//! [`opt_in`], which runs only by name): a name (also its log
//! directory), the machine, the boot path, the hypervisor's command line
//! (`on_idle=exit on_fatal=exit` are always added in front), a time limit,
//! and the lines the serial log must and must not contain.

use crate::machine::{Boot, Emulator, Iommu, Protocol};

/// The scenarios that boot the image users boot (`cargo xtask build`,
/// without the test hooks); every other scenario boots the same image
/// built with the `test-hooks` feature, which some of them need (the
/// `debug.*` options).
pub const USER_IMAGE: &[&str] = &["release-no-hooks-svm", "boot-uefi-qemu"];

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

/// Builds the bytes of an ACPI table.
pub type TableBuilder = fn() -> Vec<u8>;

/// What a boot module holds.
#[derive(Debug, Clone, Copy)]
pub enum ModuleContent {
    /// A guest image built from the `firmware` crate, by binary name.
    Guest(&'static str),
    /// A text file (a domain configuration).
    Text(&'static str),
    /// Raw bytes (for malformed modules).
    Bytes(&'static [u8]),
    /// A file `cargo xtask guests` prepares from Debian packages (a real
    /// guest: `vmlinux`, `initrd.gz`, `grub-pvh.elf`), by file name.
    Debian(&'static str),
    /// Not a boot module: `text` typed on the serial line once `after`
    /// appears in the serial log (QEMU only). The module's name is unused.
    /// Several are typed in their order, each once its `after` appears
    /// after where the one before it matched.
    Typed {
        after: &'static str,
        text: &'static str,
    },
    /// Not a boot module: an ACPI table (header included) that QEMU adds
    /// to its own (`-acpitable file=`), built when the scenario is
    /// prepared and written under the module's name (QEMU only). QEMU
    /// rewrites the length and checksum fields.
    AcpiTable(TableBuilder),
}

impl Scenario {
    /// The boot modules proper (without typed input).
    pub fn boot_modules(&self) -> impl Iterator<Item = &'static BootModule> {
        self.modules.iter().filter(|m| {
            !matches!(
                m.content,
                ModuleContent::Typed { .. } | ModuleContent::AcpiTable(_)
            )
        })
    }

    /// What to type on the serial line, each after which log text.
    pub fn typed(&self) -> Vec<(&'static str, &'static str)> {
        self.modules
            .iter()
            .filter_map(|m| match m.content {
                ModuleContent::Typed { after, text } => Some((after, text)),
                _ => None,
            })
            .collect()
    }

    /// The ACPI tables to add: each file name and its builder.
    pub fn acpi_tables(&self) -> Vec<(&'static str, TableBuilder)> {
        self.modules
            .iter()
            .filter_map(|m| match m.content {
                ModuleContent::AcpiTable(build) => Some((m.name, build)),
                _ => None,
            })
            .collect()
    }

    /// Whether a module comes from `cargo xtask guests`.
    pub fn needs_debian_guests(&self) -> bool {
        self.modules
            .iter()
            .any(|m| matches!(m.content, ModuleContent::Debian(_)))
    }
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

pub(crate) const QEMU_INTEL: Emulator = Emulator::Qemu {
    iommu: Iommu::Intel,
    devices: &[],
};
pub(crate) const QEMU_AMD: Emulator = Emulator::Qemu {
    iommu: Iommu::Amd,
    devices: &[],
};
pub(crate) const BOCHS_VMX: Emulator = Emulator::Bochs {
    cpu: "corei7_skylake_x",
};

/// The boot modules of an attack: a `ticker` victim first (`victim.cfg`
/// with text `$victim`: domain 1, so that the attacker can learn where it
/// is), then the attacker (`evil.cfg` with text `$evil`) and its image,
/// `xpci` unless `$image` is given.
macro_rules! victim_and_attacker {
    ($victim:expr, $evil:expr) => {
        victim_and_attacker!($victim, "xpci", $evil)
    };
    ($victim:expr, $image:literal, $evil:expr) => {
        &[
            BootModule {
                name: "ticker",
                content: ModuleContent::Guest("ticker"),
            },
            BootModule {
                name: "victim.cfg",
                content: ModuleContent::Text($victim),
            },
            BootModule {
                name: $image,
                content: ModuleContent::Guest($image),
            },
            BootModule {
                name: "evil.cfg",
                content: ModuleContent::Text($evil),
            },
        ]
    };
}

/// A line typed on the serial console once `$after` is there.
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

/// Boot modules: `$module`s, then any `(after, text)` lines, each typed
/// once `after` is on the serial line.
macro_rules! typed_modules {
    ([$($module:expr),* $(,)?] $(; $(($after:expr, $text:expr)),+ $(,)?)?) => {
        &[$($module,)* $($(typed_line!($after, $text),)+)?]
    };
}

/// The boot modules of a Debian Linux guest (PVH or PV): the kernel, the
/// initramfs, and the configuration `linux.cfg` with text `$cfg`; then any
/// `(after, text)` lines, each typed once `after` is on the serial line.
macro_rules! linux_modules {
    ($cfg:expr $(; $($typed:tt)+)?) => {
        typed_modules!(
            [
                BootModule {
                    name: "vmlinux",
                    content: ModuleContent::Debian("vmlinux"),
                },
                BootModule {
                    name: "initrd.gz",
                    content: ModuleContent::Debian("initrd.gz"),
                },
                BootModule {
                    name: "linux.cfg",
                    content: ModuleContent::Text($cfg),
                },
            ]
            $(; $($typed)+)?
        )
    };
}

mod abi;
mod attack_abi;
mod attack_pci;
mod attack_proto;
mod boot;
pub mod churn;
mod firmware;
mod guests;
pub mod host_view;
mod linux_pv;
mod pci;
mod pv;
mod real;
mod shell;
mod smp;
mod virt;

/// Every scenario, in the order they are listed and started: the areas in
/// the order the features build on each other.
pub fn all() -> impl Iterator<Item = &'static Scenario> {
    [
        boot::LIST,
        firmware::LIST,
        guests::LIST,
        virt::LIST,
        abi::LIST,
        pv::LIST,
        smp::LIST,
        pci::LIST,
        pci::IOMMU_LIST,
        pci::INTX_LIST,
        real::LIST,
        linux_pv::LIST,
        shell::LIST,
        attack_proto::LIST,
        attack_pci::LIST,
        attack_abi::LIST,
        churn::LIST,
    ]
    .into_iter()
    .flatten()
}

/// The scenarios called `names`, in [`all`]'s order; every one of them
/// when `names` is empty. An unknown name is
/// an error that lists the valid ones.
pub fn select(names: &[String]) -> Result<Vec<&'static Scenario>, String> {
    let unknown: Vec<&str> = names
        .iter()
        .filter(|n| !all().any(|s| s.name == n.as_str()))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        let valid: Vec<&str> = all().map(|s| s.name).collect();
        return Err(format!(
            "unknown scenario {}; the scenarios are: {}",
            unknown.join(", "),
            valid.join(", ")
        ));
    }
    if names.is_empty() {
        return Ok(all().collect());
    }
    Ok(all()
        .filter(|s| names.iter().any(|n| n == s.name))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_usable_as_directory_names() {
        for (i, s) in all().enumerate() {
            assert!(
                s.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{}",
                s.name
            );
            assert!(all().take(i).all(|o| o.name != s.name), "{}", s.name);
        }
    }

    #[test]
    fn every_scenario_can_run() {
        for s in all() {
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
        let s = all().next().unwrap();
        assert_eq!(s.kernel_cmdline(), "on_idle=exit on_fatal=exit loglvl=info");
    }

    #[test]
    fn fatal_is_rejected_only_where_success_is_expected() {
        for s in all() {
            let rejects_fatal = s.rejected().any(|r| r == "FATAL");
            assert_eq!(rejects_fatal, s.outcome == Outcome::Success, "{}", s.name);
        }
    }

    #[test]
    fn select_keeps_the_list_order_and_rejects_unknown_names() {
        assert_eq!(select(&[]).map(|v| v.len()), Ok(all().count()));
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
