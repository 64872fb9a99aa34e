//! xl.cfg-style domain configuration files.
//!
//! Each guest is a boot module whose name ends in `.cfg` ([`is_config_module`])
//! next to its kernel module. [`parse`] reads one such file into a
//! [`DomainConfig`] and reports *every* problem in it at once, each naming the
//! file, the line and the key, so that one reboot is enough to fix a file; the
//! caller skips that domain and starts the others.
//!
//! The syntax is xl.cfg(5)'s: `KEY = VALUE` settings separated by newlines or
//! `;`, `#` comments, and values that are quoted strings (`'...'` or `"..."`,
//! with `\\` and a backslash before the quote character as the only escapes),
//! numbers (decimal or `0x` hexadecimal), or lists `[ a, b, ]` that may span
//! lines, hold comments, end with a comma and nest.
//!
//! Keys this hypervisor does not use (`disk`, `vif`, ...) are warnings.
//! Settings it cannot honour are errors: another guest type, lifecycle actions
//! other than `destroy` and `restart`, PCI options it does not know. Where
//! this parser differs from xl it is stricter, never different in meaning:
//! a number with a leading `0` (octal to xl) is refused, PCI flags must be
//! `0` or `1`, and a key given twice is an error.
//!
//! Work is linear in the size of the file, nesting is bounded, and at most
//! [`MAX_ERRORS`] errors and [`MAX_WARNINGS`] warnings are kept (the rest are
//! counted), so any text is safe to parse.

mod errors;
mod meaning;
mod modules;
mod pci;
#[cfg(test)]
mod proptests;
mod report;
mod syntax;
#[cfg(test)]
mod testutil;

use alloc::string::String;
use alloc::vec::Vec;

use vmm_glue::Sbdf;

pub use errors::{ConfigError, ConfigErrorKind, ConfigWarning, ConfigWarningKind};
pub use modules::{find_module, is_config_module, ModuleLookupError, MAX_SHOWN_MATCHES};
pub use pci::{pci_spec, PciError};

use meaning::interpret;
use report::Report;
use syntax::Parser;

/// Memory a domain gets without a `memory =` line, in MiB (xl's default).
pub const DEFAULT_MEMORY_MIB: u64 = 128;
/// The most memory (and `maxmem`) a domain may ask for, in MiB (1 TiB).
pub const MAX_MEMORY_MIB: u64 = 1 << 20;
/// The most vCPUs a domain may ask for.
pub const MAX_VCPUS: u64 = 128;
/// Restarts of one configuration without a `restart_limit =` line.
pub const DEFAULT_RESTART_LIMIT: u32 = 3;
/// The highest `restart_limit`.
pub const MAX_RESTART_LIMIT: u64 = 1000;
/// The longest domain name.
pub const MAX_NAME_LEN: usize = 64;
/// Errors kept per file; further ones are counted in a last error.
pub const MAX_ERRORS: usize = 50;
/// Warnings kept per file; further ones are counted in a last warning.
pub const MAX_WARNINGS: usize = 50;

/// The kind of guest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DomainKind {
    /// A PVH guest: nested paging, no emulated devices, the Xen guest ABI.
    #[default]
    Pvh,
    /// A 64-bit PV guest (`type = "pv"`): Xen's paravirtual x86-64 ABI,
    /// run inside the same hardware container (docs/domains.md).
    Pv,
}

/// What happens when a guest powers off, reboots or crashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LifecycleAction {
    /// The domain is torn down and its resources freed.
    Destroy,
    /// The domain is torn down and built again from its configuration.
    Restart,
}

/// One `pci = [...]` entry: a host PCI function given to the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciAssignment {
    /// The function's host address.
    pub sbdf: Sbdf,
    /// `permissive=1`: the guest may write config-space registers the
    /// backend does not virtualise.
    pub permissive: bool,
    /// `msitranslate=`: always 0 here (1 is refused: an HVM device model's
    /// option).
    pub msitranslate: bool,
    /// `seize=1`: take the function over even if `pciback.hide=` did not.
    pub seize: bool,
    /// `power_mgmt=`: always 0 here (1 is refused: an HVM device model's
    /// option; the backend's PM capability gives a PV or PVH guest D-state
    /// control as Linux pciback does).
    pub power_mgmt: bool,
    /// `rdm_policy=strict` (`Some(true)`); `None` when not given (strict,
    /// as xl). `relaxed` is refused.
    pub rdm_policy_strict: Option<bool>,
}

/// Where a guest's PCI frontend finds its functions (`pci_topology`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PciTopology {
    /// `"virtual"` (default): one virtual bus 0000:00, the functions of one
    /// device together in one slot (Linux pciback's default).
    #[default]
    Virtual,
    /// `"passthrough"`: the host's addresses, a root per host bus.
    Passthrough,
}

/// A parsed domain configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainConfig {
    /// `name`: 1 to 64 characters from `A-Z a-z 0-9 _ . -`.
    pub name: String,
    /// `type`: `"pvh"` (the default) or `"pv"`.
    pub kind: DomainKind,
    /// `kernel`: the boot module holding the kernel, as written (a path or a
    /// bare name; see [`find_module`]).
    pub kernel: String,
    /// `ramdisk`: the boot module holding the initial ramdisk.
    pub ramdisk: Option<String>,
    /// The guest's command line: `cmdline`, or else `root` and `extra`
    /// combined as xl does (`root=<root> <extra>`). Empty by default.
    pub cmdline: String,
    /// `memory`, in MiB (default 128).
    pub memory_mib: u64,
    /// `maxmem`, in MiB, at least `memory`.
    pub maxmem_mib: Option<u64>,
    /// `vcpus` (default 1).
    pub vcpus: u32,
    /// `pci`: the functions given to the guest, in file order.
    pub pci: Vec<PciAssignment>,
    /// `pci_topology`: where the guest's frontend sees those functions.
    pub pci_topology: PciTopology,
    /// `on_poweroff` (default destroy).
    pub on_poweroff: LifecycleAction,
    /// `on_crash` (default destroy).
    pub on_crash: LifecycleAction,
    /// `on_reboot` (default restart).
    pub on_reboot: LifecycleAction,
    /// `autostart` (ours, default 1): 0 keeps the domain from starting at
    /// boot; the shell's `create` starts it (docs/shell.md).
    pub autostart: bool,
    /// `pci_hotplug` (ours, default 1): 0 refuses the shell's
    /// `pci-attach` and `pci-detach` for the domain, whose frontend does
    /// not implement the Reconfiguring states (NetBSD's).
    pub pci_hotplug: bool,
    /// `restart_limit` (this hypervisor's own key; default
    /// [`DEFAULT_RESTART_LIMIT`]): how many times a `restart` action builds
    /// the domain again before the hypervisor gives up on it.
    pub restart_limit: u32,
}

/// Parses the configuration file `file_name` (used in messages only).
///
/// Returns the configuration and the ignored settings, or every error found
/// (in line order, file-wide ones last).
pub fn parse(
    file_name: &str,
    text: &str,
) -> Result<(DomainConfig, Vec<ConfigWarning>), Vec<ConfigError>> {
    let mut report = Report {
        file: file_name,
        errors: Vec::new(),
        more_errors: 0,
        warnings: Vec::new(),
        more_warnings: 0,
    };
    let settings = Parser::new(text, &mut report).settings();
    let config = interpret(&settings, &mut report);
    vmm_glue::compact::sort_by_key(&mut report.errors, |e| (e.line == 0, e.line));
    vmm_glue::compact::sort_by_key(&mut report.warnings, |w| w.line);
    if report.more_errors > 0 {
        report.errors.push(ConfigError {
            file: file_name.into(),
            line: 0,
            key: None,
            value: None,
            kind: ConfigErrorKind::TooManyErrors {
                more: report.more_errors,
            },
        });
    }
    if report.more_warnings > 0 {
        report.warnings.push(ConfigWarning {
            file: file_name.into(),
            line: 0,
            key: None,
            value: None,
            kind: ConfigWarningKind::TooManyWarnings {
                more: report.more_warnings,
            },
        });
    }
    match config {
        Some(c) if report.errors.is_empty() => Ok((c, report.warnings)),
        _ => Err(report.errors),
    }
}
