//! The errors and warnings [`parse`](super::parse) reports, and their
//! messages.

use alloc::string::String;
use core::fmt;

use vmm_glue::Sbdf;

use super::syntax::MAX_LIST_DEPTH;
use super::{PciError, MAX_NAME_LEN};

/// What is wrong; [`ConfigError`] says where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// A line that does not start with a key.
    ExpectedSetting {
        /// The line as written (shortened).
        found: String,
    },
    /// A key not followed by `=`.
    ExpectedEquals,
    /// `key =` and nothing after it.
    MissingValue,
    /// A string whose closing quote is not on its line.
    UnclosedString {
        /// The opening quote.
        quote: char,
    },
    /// A backslash before something other than the quote or a backslash.
    BadEscape(char),
    /// A control character (NUL, tab, escape...) inside a string.
    ControlCharacter(char),
    /// A character that cannot start or follow a value here.
    UnexpectedCharacter(char),
    /// A list with no closing `]`.
    UnclosedList {
        /// The line of the next setting, where the list was given up.
        before_line: Option<usize>,
    },
    /// Two list items without a comma between them.
    MissingComma,
    /// A comma with no item before it.
    EmptyListItem,
    /// Lists nested too deeply.
    ListTooDeep,
    /// More text after a complete value.
    TrailingText {
        /// The rest of the line (shortened).
        found: String,
    },
    /// A key given a second time.
    Duplicate {
        /// Where the key was first given.
        first_line: usize,
    },
    /// A value of the wrong form; says what was expected.
    Expected(&'static str),
    /// A word where a quoted string is needed.
    UnquotedText {
        /// The word.
        word: String,
    },
    /// A number with a leading zero, which xl would read as octal.
    LeadingZero,
    /// A number outside its range.
    OutOfRange {
        /// The smallest value allowed.
        min: u64,
        /// The largest value allowed.
        max: u64,
        /// The unit, for the message.
        unit: &'static str,
    },
    /// `maxmem` below `memory`.
    MaxmemBelowMemory {
        /// The domain's `memory`.
        memory_mib: u64,
    },
    /// A `name` outside `[A-Za-z0-9_.-]{1,64}`.
    BadName,
    /// An empty `kernel` or `ramdisk`.
    EmptyModuleName,
    /// `type` other than `pvh` or `pv`.
    UnsupportedType,
    /// `builder`, xl's old way to ask for a PV or HVM guest.
    Builder,
    /// A lifecycle action other than `destroy` or `restart`.
    UnsupportedAction,
    /// A bad `pci` entry.
    Pci(PciError),
    /// No `name =` line.
    MissingName,
    /// No `kernel =` line.
    MissingKernel,
    /// Errors beyond [`MAX_ERRORS`](super::MAX_ERRORS), counted.
    TooManyErrors {
        /// How many were not kept.
        more: usize,
    },
}

impl fmt::Display for ConfigErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ExpectedSetting { found } => {
                write!(f, "expected 'key = value', found '{found}'")
            }
            Self::ExpectedEquals => f.write_str("expected '=' after the key"),
            Self::MissingValue => f.write_str("missing value after '='"),
            Self::UnclosedString { quote } => {
                write!(f, "the string opened with {quote} is not closed on its line")
            }
            Self::BadEscape(c) => write!(
                f,
                "unsupported escape '\\{}' in a string (only \\\\ and a backslash before the quote are understood)",
                c.escape_default()
            ),
            Self::ControlCharacter(c) => write!(
                f,
                "control character U+{:04X} in a string",
                u32::from(*c)
            ),
            Self::UnexpectedCharacter(c) if c.is_control() => {
                write!(f, "unexpected control character U+{:04X}", u32::from(*c))
            }
            Self::UnexpectedCharacter(c) => write!(f, "unexpected '{c}'"),
            Self::UnclosedList {
                before_line: Some(l),
            } => write!(f, "the list is not closed: add ']' before line {l}"),
            Self::UnclosedList { before_line: None } => {
                f.write_str("the list is not closed: add ']' at its end")
            }
            Self::MissingComma => f.write_str("missing ',' between list items"),
            Self::EmptyListItem => f.write_str("a list item is missing before ','"),
            Self::ListTooDeep => write!(f, "lists nested more than {MAX_LIST_DEPTH} deep"),
            Self::TrailingText { found } => write!(f, "unexpected '{found}' after the value"),
            Self::Duplicate { first_line } => write!(
                f,
                "already given on line {first_line}; keep one of the two lines"
            ),
            Self::Expected(what) => write!(f, "expected {what}"),
            Self::UnquotedText { word } => write!(f, "text must be quoted: \"{word}\""),
            Self::LeadingZero => f.write_str(
                "a leading 0 means octal to xl: write the number without it, or in 0x hexadecimal",
            ),
            Self::OutOfRange { min, max, unit } => {
                write!(f, "must be between {min} and {max}{unit}")
            }
            Self::MaxmemBelowMemory { memory_mib } => {
                write!(f, "must be at least memory ({memory_mib} MiB)")
            }
            Self::BadName => write!(
                f,
                "a name is 1 to {MAX_NAME_LEN} characters from A-Z a-z 0-9 _ . -"
            ),
            Self::EmptyModuleName => f.write_str("expected the name of a boot module"),
            Self::UnsupportedType => {
                f.write_str("only \"pvh\" and \"pv\" domains are supported (no \"hvm\")")
            }
            Self::Builder => f.write_str(
                "'builder' is xl's old way to choose the guest type; write type = \"pv\" or \"pvh\"",
            ),
            Self::UnsupportedAction => {
                f.write_str("only \"destroy\" and \"restart\" are supported")
            }
            Self::Pci(p) => p.fmt(f),
            Self::MissingName => f.write_str("no 'name =' line: the domain needs a name"),
            Self::MissingKernel => {
                f.write_str("no 'kernel =' line: the domain needs a kernel module name")
            }
            Self::TooManyErrors { more } => write!(f, "{more} more errors not shown"),
        }
    }
}

/// One problem in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file's name, as given to [`parse`](super::parse).
    pub file: String,
    /// The 1-based line; 0 for a problem with the file as a whole.
    pub line: usize,
    /// The key of the setting, if the problem is with one.
    pub key: Option<String>,
    /// The value as written (shortened; a list item as `[item]`), if the
    /// problem is with a value.
    pub value: Option<String>,
    /// What is wrong.
    pub kind: ConfigErrorKind,
}

/// `file:line: key = value: ` (each part only when known).
fn write_place(
    f: &mut fmt::Formatter<'_>,
    file: &str,
    line: usize,
    key: Option<&str>,
    value: Option<&str>,
) -> fmt::Result {
    f.write_str(file)?;
    if line > 0 {
        write!(f, ":{line}")?;
    }
    f.write_str(": ")?;
    match (key, value) {
        (Some(k), Some(v)) => write!(f, "{k} = {v}: "),
        (Some(k), None) => write!(f, "{k}: "),
        _ => Ok(()),
    }
}

impl fmt::Display for ConfigError {
    /// `guest1.cfg:7: memory = "lots": expected a number of MiB`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (key, value) = (self.key.as_deref(), self.value.as_deref());
        write_place(f, &self.file, self.line, key, value)?;
        self.kind.fmt(f)
    }
}

/// Something in a configuration file that is ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigWarningKind {
    /// An xl key this hypervisor does not use (`disk`, `vif`, ...).
    IgnoredXlKey,
    /// A key neither this hypervisor nor xl knows.
    UnknownKey {
        /// A known key it resembles.
        suggestion: Option<&'static str>,
    },
    /// `root` or `extra` next to `cmdline`, which wins as in xl.
    OverriddenByCmdline,
    /// A PCI virtual slot: the backend chooses where the guest sees the
    /// function, as xl's does for PV guests.
    VirtualSlotIgnored {
        /// The function.
        sbdf: Sbdf,
    },
    /// Warnings beyond [`MAX_WARNINGS`](super::MAX_WARNINGS), counted.
    TooManyWarnings {
        /// How many were not kept.
        more: usize,
    },
}

/// One ignored setting in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The file's name, as given to [`parse`](super::parse).
    pub file: String,
    /// The 1-based line; 0 for the file as a whole.
    pub line: usize,
    /// The key of the setting.
    pub key: Option<String>,
    /// The value as written (shortened), where the warning is about it.
    pub value: Option<String>,
    /// What is ignored.
    pub kind: ConfigWarningKind,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.key.as_deref().unwrap_or("");
        match &self.kind {
            ConfigWarningKind::IgnoredXlKey => {
                write_place(f, &self.file, self.line, None, None)?;
                write!(f, "ignoring '{key}': this hypervisor does not use it")
            }
            ConfigWarningKind::UnknownKey { suggestion } => {
                write_place(f, &self.file, self.line, None, None)?;
                write!(f, "ignoring unknown key '{key}'")?;
                match suggestion {
                    Some(s) => write!(f, " (did you mean '{s}'?)"),
                    None => Ok(()),
                }
            }
            ConfigWarningKind::OverriddenByCmdline => {
                write_place(f, &self.file, self.line, None, None)?;
                write!(
                    f,
                    "ignoring '{key}' because 'cmdline' is given (as xl does)"
                )
            }
            ConfigWarningKind::VirtualSlotIgnored { sbdf } => {
                let value = self.value.as_deref();
                write_place(f, &self.file, self.line, self.key.as_deref(), value)?;
                write!(
                    f,
                    "ignoring the virtual slot: the PCI backend chooses where the guest sees {sbdf} (as xl does for PV guests)"
                )
            }
            ConfigWarningKind::TooManyWarnings { more } => {
                write_place(f, &self.file, 0, None, None)?;
                write!(f, "{more} more warnings not shown")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domcfg::parse;

    #[test]
    fn errors_carry_file_line_key_and_value() {
        let e = parse("guest1.cfg", "name = 'g'\nkernel = 'k'\nmemory = 'lots'").unwrap_err();
        assert_eq!(
            e,
            [ConfigError {
                file: "guest1.cfg".into(),
                line: 3,
                key: Some("memory".into()),
                value: Some("'lots'".into()),
                kind: ConfigErrorKind::Expected("a number of MiB"),
            }]
        );
    }
}
