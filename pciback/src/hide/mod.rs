//! The `pciback.hide=` boot option: the PCI functions that only pciback may
//! touch.
//!
//! The value is a list of parenthesised addresses, all numbers hexadecimal:
//!
//! - `(bb:dd.f)`, the NetBSD form (segment 0), or `(dddd:bb:dd.f)`, the Linux
//!   form;
//! - the device (slot) and the function may be `*`: `(00:03.*)` hides every
//!   function of device 3, `(00:*.*)` the whole bus, `(0000:02:*.0)`
//!   function 0 of every device on bus 2;
//! - spaces and tabs may separate entries and surround the numbers inside
//!   the parentheses: `( 00:03.0 ) (00:04.0)`.
//!
//! Parsing never fails as a whole: [`parse_hide_list`] returns the entries
//! it understood and one [`HideError`] per piece of text it did not, so a
//! typo in one entry does not unhide the devices named by the others.
//!
//! A listed bridge is not hidden itself (the devices behind it need it to
//! forward their transactions); [`HideList::find`] reports the functions
//! below it as [`HideMatch::ViaBridge`].

mod error;
mod parse;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

use vmm_glue::Sbdf;

pub use error::{Field, HideError, HideErrorKind};
pub use parse::parse_hide_list;

/// One entry of the hide list: a function address in which the device and
/// the function may be wildcards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HidePattern {
    /// PCI segment group (0 in the NetBSD form).
    pub seg: u16,
    /// Bus number.
    pub bus: u8,
    /// Device (slot) number 0..=0x1f, or `None` for `*`.
    pub dev: Option<u8>,
    /// Function number 0..=7, or `None` for `*`.
    pub func: Option<u8>,
}

impl HidePattern {
    /// The pattern that matches exactly `sbdf`.
    pub const fn exact(sbdf: Sbdf) -> Self {
        Self {
            seg: sbdf.seg,
            bus: sbdf.bus,
            dev: Some(sbdf.dev),
            func: Some(sbdf.func),
        }
    }

    /// Whether `sbdf` is one of the functions this entry names.
    pub fn matches(&self, sbdf: Sbdf) -> bool {
        self.seg == sbdf.seg
            && self.bus == sbdf.bus
            && self.dev.is_none_or(|d| d == sbdf.dev)
            && self.func.is_none_or(|f| f == sbdf.func)
    }

    /// The warning for an entry that matched no present function, for the
    /// boot log.
    pub fn no_match_warning(&self) -> impl fmt::Display + '_ {
        struct Warning<'a>(&'a HidePattern);
        impl fmt::Display for Warning<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "pciback.hide: {} matches no PCI function; \
                     check the address with the boot log's PCI table",
                    self.0
                )
            }
        }
        Warning(self)
    }
}

/// The Linux long form, `(0000:00:03.0)`, with `*` for wildcards. Parsing it
/// gives back the same pattern.
impl fmt::Display for HidePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({:04x}:{:02x}:", self.seg, self.bus)?;
        match self.dev {
            Some(d) => write!(f, "{d:02x}.")?,
            None => f.write_str("*.")?,
        }
        match self.func {
            Some(func) => write!(f, "{func:x})"),
            None => f.write_str("*)"),
        }
    }
}

/// Parses exactly one entry, parentheses included, with optional spaces or
/// tabs around it.
impl FromStr for HidePattern {
    type Err = HideError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut items = parse::Scanner::new(s);
        let first = items.next().ok_or_else(|| HideError {
            position: 0,
            text: s.into(),
            reason: HideErrorKind::NoEntry,
        })?;
        let pattern = first.into_result()?;
        match items.next() {
            None => Ok(pattern),
            Some(extra) => Err(HideError {
                position: extra.position,
                text: extra.text.into(),
                reason: HideErrorKind::ExtraEntry,
            }),
        }
    }
}

/// An entry that repeats an earlier one. It is applied once; worth a log
/// line, not an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Duplicate {
    /// Byte offset of the repeated entry in the option value.
    pub position: usize,
    /// The repeated pattern.
    pub pattern: HidePattern,
}

impl fmt::Display for Duplicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pciback.hide: entry {} at column {} repeats an earlier entry; it applies once",
            self.pattern,
            self.position + 1
        )
    }
}

/// Why a function is hidden.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HideMatch {
    /// The function itself matches entry `.0` of [`HideList::entries`]. If
    /// the function is a bridge, the caller leaves it forwarding and hides
    /// the functions below it instead.
    Direct(usize),
    /// The function sits below `bridge`, which matches entry `pattern`.
    ViaBridge {
        /// The nearest upstream bridge that the list names.
        bridge: Sbdf,
        /// Index of the matching entry in [`HideList::entries`].
        pattern: usize,
    },
    /// No entry names it: a domain's `pci = [...]` took it with `seize=1`.
    Seized,
    /// No entry names it: the shell's `pci-assignable-add` hid it.
    Shell,
}

impl HideMatch {
    /// Index of the matching entry in [`HideList::entries`]; `None` for a
    /// seized function or one the shell hid.
    pub const fn pattern(self) -> Option<usize> {
        match self {
            Self::Direct(p) | Self::ViaBridge { pattern: p, .. } => Some(p),
            Self::Seized | Self::Shell => None,
        }
    }
}

/// The parsed `pciback.hide=` option.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HideList {
    /// The distinct entries, in the order written.
    pub entries: Vec<HidePattern>,
    /// Entries that repeated an earlier one (each kept once in `entries`).
    pub duplicates: Vec<Duplicate>,
}

impl HideList {
    /// Whether the list hides nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `sbdf` is hidden, and by which entry: first the function
    /// itself, then its upstream bridges, `upstream_bridges` nearest first.
    pub fn find(&self, sbdf: Sbdf, upstream_bridges: &[Sbdf]) -> Option<HideMatch> {
        if let Some(p) = self.position(sbdf) {
            return Some(HideMatch::Direct(p));
        }
        upstream_bridges.iter().find_map(|&bridge| {
            self.position(bridge)
                .map(|pattern| HideMatch::ViaBridge { bridge, pattern })
        })
    }

    /// The entries that match none of the `present` functions: most likely
    /// typos, see [`HidePattern::no_match_warning`].
    pub fn unmatched(&self, present: &[Sbdf]) -> Vec<&HidePattern> {
        self.entries
            .iter()
            .filter(|p| !present.iter().any(|&s| p.matches(s)))
            .collect()
    }

    fn position(&self, sbdf: Sbdf) -> Option<usize> {
        self.entries.iter().position(|p| p.matches(sbdf))
    }
}
