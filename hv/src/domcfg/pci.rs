//! `pci = [...]` entries (xl-pci-configuration(5)): host PCI functions and
//! their options.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use vmm_glue::compact::VecMap;

use vmm_glue::Sbdf;

use super::errors::{ConfigErrorKind, ConfigWarningKind};
use super::report::{shorten, Report, Shown};
use super::syntax::{Item, ItemKind};
use super::PciAssignment;

/// What is wrong with one `pci = [...]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PciError {
    /// The address is not `bb:dd.f` or `dddd:bb:dd.f`.
    BadAddress,
    /// The entry has options but no address.
    MissingAddress,
    /// `bb:dd.*` (every function of a device).
    AllFunctions,
    /// A second positional address in one entry.
    SecondAddress(String),
    /// An option that does not exist.
    UnknownOption(String),
    /// An xl option this hypervisor cannot honour.
    UnsupportedOption(&'static str),
    /// A flag written without `=0` or `=1`.
    MissingOptionValue(&'static str),
    /// A flag whose value is not 0 or 1.
    BadFlag(&'static str),
    /// `rdm_policy` other than `strict` or `relaxed`.
    BadRdmPolicy,
    /// `msitranslate=1` or `power_mgmt=1` (or their `pci_*` defaults):
    /// options of an HVM guest's device model, which a PV or PVH guest does
    /// not have.
    HvmOnly(&'static str),
    /// `rdm_policy=relaxed`: the hypervisor refuses a function whose
    /// reserved memory is the guest's RAM (strict) and has no other way.
    RelaxedRdm,
    /// `@slot`, `vslot=` or `vdevfn=` with a value that is not a slot.
    BadVirtualSlot {
        /// The largest value allowed.
        max: u8,
    },
    /// The same option twice in one entry.
    RepeatedOption(&'static str),
    /// The same function in two entries.
    DuplicateDevice {
        /// The function.
        sbdf: Sbdf,
        /// The line of the first entry.
        first_line: usize,
    },
}

const PCI_KNOWN: &str = "permissive, msitranslate, seize, power_mgmt, rdm_policy";

impl fmt::Display for PciError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadAddress => {
                f.write_str("expected a PCI address 'bb:dd.f' or 'dddd:bb:dd.f' (hexadecimal)")
            }
            Self::MissingAddress => {
                f.write_str("no PCI address: an entry starts with 'bb:dd.f' or 'dddd:bb:dd.f'")
            }
            Self::AllFunctions => {
                f.write_str("'*' for all functions is not supported: list each function")
            }
            Self::SecondAddress(a) => write!(
                f,
                "'{a}' is a second address: give each function its own entry"
            ),
            Self::UnknownOption(o) => write!(f, "unknown option '{o}' (known: {PCI_KNOWN})"),
            Self::UnsupportedOption(o) => {
                write!(f, "option '{o}' is not supported (supported: {PCI_KNOWN})")
            }
            Self::MissingOptionValue(o) => {
                write!(f, "option '{o}' needs a value: '{o}=1' or '{o}=0'")
            }
            Self::BadFlag(o) => write!(f, "{o} must be 0 or 1"),
            Self::BadRdmPolicy => f.write_str("rdm_policy must be strict or relaxed"),
            Self::HvmOnly("msitranslate") => f.write_str(
                "msitranslate=1 (or pci_msitranslate = 1) is not honoured: MSI-INTx translation is done by an HVM guest's device model, and a PV or PVH guest's frontend enables MSI itself; remove the option",
            ),
            Self::HvmOnly(o) => write!(
                f,
                "{o}=1 (or pci_{o} = 1) is not honoured: it is for an HVM guest's device model; a PV or PVH guest moves the function between D0 and D3hot through the backend's power management capability, as with Linux pciback; remove the option"
            ),
            Self::RelaxedRdm => f.write_str(
                "rdm_policy=relaxed is not honoured: a function whose reserved memory (RMRR) would be the guest's RAM is refused (strict); remove the option or write rdm_policy=strict",
            ),
            Self::BadVirtualSlot { max } => {
                write!(f, "expected a virtual slot in hexadecimal, at most {max:x}")
            }
            Self::RepeatedOption(o) => write!(f, "option '{o}' is given twice"),
            Self::DuplicateDevice { sbdf, first_line } => {
                write!(f, "{sbdf} is already listed on line {first_line}")
            }
        }
    }
}

/// `pci_permissive = 1` and friends: defaults for every `pci` entry.
#[derive(Clone, Copy, Default)]
pub(super) struct PciDefaults {
    pub(super) permissive: bool,
    pub(super) msitranslate: bool,
    pub(super) seize: bool,
    pub(super) power_mgmt: bool,
}

/// Reads the items of `pci = [...]`, reporting bad and repeated entries.
pub(super) fn pci_list(
    items: &[Item<'_>],
    defaults: PciDefaults,
    report: &mut Report<'_>,
) -> Vec<PciAssignment> {
    let mut out = Vec::new();
    let mut first_line: VecMap<Sbdf, usize> = VecMap::new();
    for item in items {
        let shown = Shown::Item(item.raw);
        let entry = match &item.kind {
            ItemKind::Quoted(spec) => pci_entry(spec, defaults).map_err(ConfigErrorKind::Pci),
            ItemKind::Bare => Err(ConfigErrorKind::UnquotedText {
                word: shorten(item.raw),
            }),
            ItemKind::List(_) => Err(ConfigErrorKind::Expected(
                "a quoted PCI address like '0000:00:03.0'",
            )),
        };
        let (assignment, slot_given) = match entry {
            Ok(entry) => entry,
            Err(kind) => {
                report.error(item.line, Some("pci"), shown, kind);
                continue;
            }
        };
        let sbdf = assignment.sbdf;
        if let Some(&first_line) = first_line.get(&sbdf) {
            let kind = ConfigErrorKind::Pci(PciError::DuplicateDevice { sbdf, first_line });
            report.error(item.line, Some("pci"), shown, kind);
            continue;
        }
        first_line.insert(sbdf, item.line);
        if slot_given {
            let kind = ConfigWarningKind::VirtualSlotIgnored { sbdf };
            report.warn(item.line, "pci", shown, kind);
        }
        out.push(assignment);
    }
    out
}

/// One `BDF[,KEY=VALUE...]` as `xl pci-attach` takes it (no `pci_*`
/// defaults; a virtual slot is ignored, as in `pci = [...]`).
pub fn pci_spec(spec: &str) -> Result<PciAssignment, PciError> {
    pci_entry(spec, PciDefaults::default()).map(|(a, _)| a)
}

/// The 0/1 options of a PCI entry, in the order of [`PciDefaults`].
const PCI_FLAGS: [&str; 4] = ["permissive", "msitranslate", "seize", "power_mgmt"];

/// Reads one `BDF[@VSLOT][,KEY=VALUE...]` entry (xl-pci-configuration(5)).
/// Returns the assignment and whether a virtual slot was given.
fn pci_entry(spec: &str, defaults: PciDefaults) -> Result<(PciAssignment, bool), PciError> {
    let mut sbdf = None;
    let mut slot = false;
    let mut flags: [Option<bool>; 4] = [None; 4];
    let mut rdm_policy_strict = None;
    let mut positional = 0;
    for part in spec.split(',') {
        let part = part.trim_matches(|c| c == ' ' || c == '\t');
        if part.is_empty() {
            continue;
        }
        let Some((key, value)) = part.split_once('=') else {
            if let Some(name) = PCI_FLAGS
                .iter()
                .chain(&["rdm_policy"])
                .find(|n| **n == part)
            {
                return Err(PciError::MissingOptionValue(name));
            }
            positional += 1;
            match positional {
                1 => {
                    let (bdf, vslot) = match part.split_once('@') {
                        Some((bdf, vslot)) => (bdf, Some(vslot)),
                        None => (part, None),
                    };
                    if let Some(vslot) = vslot {
                        virtual_slot(vslot, 0x1f)?;
                        slot = true;
                    }
                    sbdf = Some(pci_address(bdf)?);
                }
                2 if part.parse::<Sbdf>().is_ok() => {
                    return Err(PciError::SecondAddress(shorten(part)));
                }
                2 if virtual_slot(part, 0x1f).is_ok() => slot = true,
                _ => return Err(PciError::UnknownOption(shorten(part))),
            }
            continue;
        };
        let (key, value) = (key.trim_end(), value.trim_start());
        if let Some(i) = PCI_FLAGS.iter().position(|n| *n == key) {
            let name = PCI_FLAGS[i];
            if flags[i].is_some() {
                return Err(PciError::RepeatedOption(name));
            }
            flags[i] = Some(match value {
                "0" => false,
                "1" => true,
                _ => return Err(PciError::BadFlag(name)),
            });
            continue;
        }
        match key {
            "bdf" if sbdf.is_some() => return Err(PciError::RepeatedOption("bdf")),
            "bdf" => sbdf = Some(pci_address(value)?),
            "vslot" | "vdevfn" if slot => return Err(PciError::RepeatedOption("vslot")),
            "vslot" => {
                virtual_slot(value, 0x1f)?;
                slot = true;
            }
            "vdevfn" => {
                virtual_slot(value, 0xff)?;
                slot = true;
            }
            "rdm_policy" if rdm_policy_strict.is_some() => {
                return Err(PciError::RepeatedOption("rdm_policy"))
            }
            "rdm_policy" => {
                rdm_policy_strict = Some(match value {
                    "strict" => true,
                    "relaxed" => false,
                    _ => return Err(PciError::BadRdmPolicy),
                });
            }
            "name" => return Err(PciError::UnsupportedOption("name")),
            _ => return Err(PciError::UnknownOption(shorten(key))),
        }
    }
    let sbdf = sbdf.ok_or(PciError::MissingAddress)?;
    let [permissive, msitranslate, seize, power_mgmt] = flags;
    if msitranslate.unwrap_or(defaults.msitranslate) {
        return Err(PciError::HvmOnly("msitranslate"));
    }
    if power_mgmt.unwrap_or(defaults.power_mgmt) {
        return Err(PciError::HvmOnly("power_mgmt"));
    }
    if rdm_policy_strict == Some(false) {
        return Err(PciError::RelaxedRdm);
    }
    let assignment = PciAssignment {
        sbdf,
        permissive: permissive.unwrap_or(defaults.permissive),
        msitranslate: msitranslate.unwrap_or(defaults.msitranslate),
        seize: seize.unwrap_or(defaults.seize),
        power_mgmt: power_mgmt.unwrap_or(defaults.power_mgmt),
        rdm_policy_strict,
    };
    Ok((assignment, slot))
}

fn pci_address(s: &str) -> Result<Sbdf, PciError> {
    if s.ends_with(".*") {
        return Err(PciError::AllFunctions);
    }
    s.parse().map_err(|_| PciError::BadAddress)
}

/// A virtual slot (or devfn): hexadecimal, optionally `0x`, at most `max`.
fn virtual_slot(s: &str, max: u8) -> Result<u8, PciError> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    match u8::from_str_radix(digits, 16) {
        Ok(v) if v <= max && !digits.starts_with('+') => Ok(v),
        _ => Err(PciError::BadVirtualSlot { max }),
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::String;

    use crate::domcfg::testutil::{
        config_and_warnings, errors, errors_with_base, plain, with_base, BASE,
    };
    use crate::domcfg::PciAssignment;

    #[test]
    fn unknown_pci_option_is_an_error_naming_the_option() {
        assert_eq!(
            errors("name = 'g'\nkernel = 'k'\npci = ['00:03.0,permisive=1']"),
            ["g.cfg:3: pci = ['00:03.0,permisive=1']: unknown option 'permisive' (known: permissive, msitranslate, seize, power_mgmt, rdm_policy)"]
        );
    }

    #[test]
    fn pci_errors_name_the_entry_and_its_line() {
        let e = errors_with_base(
            "pci = [\n\
             '00:03.0,permissive=yes',\n\
             '00:04.0,permissive',\n\
             '00:05.0,seize=1,seize=0',\n\
             'permissive=1',\n\
             '00:20.0',\n\
             '00:06.*',\n\
             '00:07.0,00:08.0',\n\
             '00:09.0,rdm_policy=lax',\n\
             '00:0a.0,name=nic',\n\
             '00:0b.0@40',\n\
             00:0c.0,\n\
             ['00:0d.0'],\n\
             ]",
        );
        assert_eq!(
            e,
            [
                "g.cfg:4: pci = ['00:03.0,permissive=yes']: permissive must be 0 or 1",
                "g.cfg:5: pci = ['00:04.0,permissive']: option 'permissive' needs a value: 'permissive=1' or 'permissive=0'",
                "g.cfg:6: pci = ['00:05.0,seize=1,seize=0']: option 'seize' is given twice",
                "g.cfg:7: pci = ['permissive=1']: no PCI address: an entry starts with 'bb:dd.f' or 'dddd:bb:dd.f'",
                "g.cfg:8: pci = ['00:20.0']: expected a PCI address 'bb:dd.f' or 'dddd:bb:dd.f' (hexadecimal)",
                "g.cfg:9: pci = ['00:06.*']: '*' for all functions is not supported: list each function",
                "g.cfg:10: pci = ['00:07.0,00:08.0']: '00:08.0' is a second address: give each function its own entry",
                "g.cfg:11: pci = ['00:09.0,rdm_policy=lax']: rdm_policy must be strict or relaxed",
                "g.cfg:12: pci = ['00:0a.0,name=nic']: option 'name' is not supported (supported: permissive, msitranslate, seize, power_mgmt, rdm_policy)",
                "g.cfg:13: pci = ['00:0b.0@40']: expected a virtual slot in hexadecimal, at most 1f",
                "g.cfg:14: pci = [00:0c.0]: text must be quoted: \"00:0c.0\"",
                "g.cfg:15: pci = [['00:0d.0']]: expected a quoted PCI address like '0000:00:03.0'",
            ]
        );
    }

    #[test]
    fn pci_that_is_not_a_list_is_an_error() {
        assert_eq!(
            errors_with_base("pci = '00:03.0'"),
            ["g.cfg:3: pci = '00:03.0': expected a list like ['0000:00:03.0']"]
        );
    }

    #[test]
    fn same_pci_function_twice_is_an_error_naming_the_first_line() {
        assert_eq!(
            errors_with_base("pci = ['00:03.0',\n  '0000:00:03.0,permissive=1']"),
            ["g.cfg:4: pci = ['0000:00:03.0,permissive=1']: 0000:00:03.0 is already listed on line 3"]
        );
    }

    #[test]
    fn pci_virtual_slot_is_accepted_with_a_warning() {
        let (c, w) = config_and_warnings(
            &(String::from(BASE) + "pci = ['00:03.0@4', '00:04.0,vslot=0x5', 'bdf=00:05.0,vdevfn=0x28', '00:06.0,7']"),
        );
        assert_eq!(c.pci.len(), 4);
        assert_eq!(c.pci[2], plain("00:05.0"));
        assert_eq!(
            w[0],
            "g.cfg:3: pci = ['00:03.0@4']: ignoring the virtual slot: the PCI backend chooses where the guest sees 0000:00:03.0 (as xl does for PV guests)"
        );
        assert_eq!(w.len(), 4);
    }

    #[test]
    fn pci_global_defaults_apply_unless_an_entry_overrides_them() {
        let c = with_base(
            "pci_permissive = 1\npci_seize = 0x1\npci_msitranslate = 1\npci_power_mgmt = 1\n\
             pci = ['00:03.0,msitranslate=0,power_mgmt=0', '00:04.0,permissive=0,msitranslate=0,power_mgmt=0,rdm_policy=strict']",
        );
        let first = PciAssignment {
            permissive: true,
            seize: true,
            ..plain("00:03.0")
        };
        let second = PciAssignment {
            seize: true,
            rdm_policy_strict: Some(true),
            ..plain("00:04.0")
        };
        assert_eq!(c.pci, [first, second]);
        assert_eq!(
            errors_with_base("pci_permissive = 'yes'"),
            ["g.cfg:3: pci_permissive = 'yes': expected 0 or 1"]
        );
    }

    #[test]
    fn hvm_only_options_and_relaxed_rdm_are_refused_with_what_to_do() {
        let e = errors_with_base(
            "pci = ['00:03.0,msitranslate=1', '00:04.0,power_mgmt=1', '00:05.0,rdm_policy=relaxed']",
        );
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].contains("'00:03.0,msitranslate=1'") && e[0].contains("msitranslate=1 (or pci_msitranslate = 1) is not honoured: MSI-INTx translation is done by an HVM guest's device model"), "{e:?}");
        assert!(
            e[1].contains("power_mgmt=1 (or pci_power_mgmt = 1) is not honoured")
                && e[1].contains("remove the option"),
            "{e:?}"
        );
        assert!(
            e[2].contains("rdm_policy=relaxed is not honoured")
                && e[2].contains("rdm_policy=strict"),
            "{e:?}"
        );
        // The defaults are refused through the entries they apply to.
        let e = errors_with_base("pci_msitranslate = 1\npci = ['00:03.0']");
        assert!(
            e.iter()
                .any(|m| m.contains("msitranslate=1 (or pci_msitranslate = 1)")),
            "{e:?}"
        );
    }

    #[test]
    fn pci_entries_tolerate_spaces_and_empty_options() {
        let c = with_base("pci = [' 0001:02:1f.7 , permissive = 1,, rdm_policy=strict,']");
        let expected = PciAssignment {
            permissive: true,
            rdm_policy_strict: Some(true),
            ..plain("0001:02:1f.7")
        };
        assert_eq!(c.pci, [expected]);
    }
}
