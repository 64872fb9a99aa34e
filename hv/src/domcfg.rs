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

use alloc::borrow::Cow;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use vmm_glue::Sbdf;

/// Memory a domain gets without a `memory =` line, in MiB (xl's default).
pub const DEFAULT_MEMORY_MIB: u64 = 128;
/// The most memory (and `maxmem`) a domain may ask for, in MiB (1 TiB).
pub const MAX_MEMORY_MIB: u64 = 1 << 20;
/// The most vCPUs a domain may ask for.
pub const MAX_VCPUS: u64 = 128;
/// The longest domain name.
pub const MAX_NAME_LEN: usize = 64;
/// Errors kept per file; further ones are counted in a last error.
pub const MAX_ERRORS: usize = 50;
/// Warnings kept per file; further ones are counted in a last warning.
pub const MAX_WARNINGS: usize = 50;
/// How deeply lists may nest (xl allows nesting; no key we use needs it).
const MAX_LIST_DEPTH: usize = 8;
/// Characters of a value that a message shows before "...".
const SHOWN_CHARS: usize = 60;

/// The kind of guest. Only PVH is built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DomainKind {
    /// A PVH guest: nested paging, no emulated devices, the Xen guest ABI.
    #[default]
    Pvh,
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
    /// `msitranslate=1` (used by HVM device models in xl; kept as given).
    pub msitranslate: bool,
    /// `seize=1`: take the function over even if `pciback.hide=` did not.
    pub seize: bool,
    /// `power_mgmt=1` (reported to the backend in `opts-N`).
    pub power_mgmt: bool,
    /// `rdm_policy=strict` (`Some(true)`) or `relaxed` (`Some(false)`);
    /// `None` when not given (xl then uses strict).
    pub rdm_policy_strict: Option<bool>,
}

/// A parsed domain configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainConfig {
    /// `name`: 1 to 64 characters from `A-Z a-z 0-9 _ . -`.
    pub name: String,
    /// `type`: only `"pvh"`, the default.
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
    /// `on_poweroff` (default destroy).
    pub on_poweroff: LifecycleAction,
    /// `on_crash` (default destroy).
    pub on_crash: LifecycleAction,
    /// `on_reboot` (default restart).
    pub on_reboot: LifecycleAction,
}

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
    /// `type` other than `pvh`.
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
    /// Errors beyond [`MAX_ERRORS`], counted.
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
            Self::UnsupportedType => f.write_str("only \"pvh\" domains are supported"),
            Self::Builder => f.write_str(
                "'builder' selects a PV or HVM domain; only type = \"pvh\" is supported",
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
    /// The file's name, as given to [`parse`].
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
    /// Warnings beyond [`MAX_WARNINGS`], counted.
    TooManyWarnings {
        /// How many were not kept.
        more: usize,
    },
}

/// One ignored setting in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The file's name, as given to [`parse`].
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
    report.errors.sort_by_key(|e| (e.line == 0, e.line));
    report.warnings.sort_by_key(|w| w.line);
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

// ---------------------------------------------------------------------------
// Reporting

/// How a message shows the value a problem is about.
#[derive(Clone, Copy)]
enum Shown<'t> {
    Nothing,
    /// A whole value, as written.
    Value(&'t str),
    /// One list item, as written; shown as `[item]`.
    Item(&'t str),
}

struct Report<'f> {
    file: &'f str,
    errors: Vec<ConfigError>,
    more_errors: usize,
    warnings: Vec<ConfigWarning>,
    more_warnings: usize,
}

impl Report<'_> {
    fn error(&mut self, line: usize, key: Option<&str>, shown: Shown<'_>, kind: ConfigErrorKind) {
        if self.errors.len() >= MAX_ERRORS {
            self.more_errors += 1;
            return;
        }
        self.errors.push(ConfigError {
            file: self.file.into(),
            line,
            key: key.map(Into::into),
            value: render(shown),
            kind,
        });
    }

    /// Whether one more warning is kept; counts it if not.
    fn room_for_warning(&mut self) -> bool {
        if self.warnings.len() >= MAX_WARNINGS {
            self.more_warnings += 1;
            false
        } else {
            true
        }
    }

    fn warn(&mut self, line: usize, key: &str, shown: Shown<'_>, kind: ConfigWarningKind) {
        if self.room_for_warning() {
            self.warnings.push(ConfigWarning {
                file: self.file.into(),
                line,
                key: Some(key.into()),
                value: render(shown),
                kind,
            });
        }
    }

    fn unknown_key(&mut self, line: usize, key: &str) {
        if !self.room_for_warning() {
            return;
        }
        let kind = if XL_KEYS.split(' ').any(|k| k == key) {
            ConfigWarningKind::IgnoredXlKey
        } else {
            ConfigWarningKind::UnknownKey {
                suggestion: suggest(key),
            }
        };
        self.warn(line, key, Shown::Nothing, kind);
    }
}

fn render(shown: Shown<'_>) -> Option<String> {
    match shown {
        Shown::Nothing => None,
        Shown::Value(raw) => Some(shorten(raw)),
        Shown::Item(raw) => {
            let mut s = String::from("[");
            s.push_str(&shorten(raw));
            s.push(']');
            Some(s)
        }
    }
}

/// `raw` for a message: line breaks and the indentation after them become
/// one space, control characters are escaped, and it stops after
/// [`SHOWN_CHARS`] characters with "...".
fn shorten(raw: &str) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut in_break = false;
    for c in raw.chars() {
        if c == '\n' || (in_break && matches!(c, ' ' | '\t' | '\r')) {
            in_break = true;
            continue;
        }
        if count >= SHOWN_CHARS {
            out.push_str("...");
            return out;
        }
        if in_break {
            in_break = false;
            out.push(' ');
            count += 1;
        }
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
        count += 1;
    }
    out
}

// ---------------------------------------------------------------------------
// Syntax: text to settings

/// One `key = value` as written. `value` is `None` when it had errors (already
/// reported): the key still counts as given.
struct Setting<'t> {
    key: &'t str,
    line: usize,
    value: Option<Item<'t>>,
}

/// A value as written.
struct Item<'t> {
    /// The line it starts on.
    line: usize,
    /// The source text, quotes and brackets included.
    raw: &'t str,
    kind: ItemKind<'t>,
}

enum ItemKind<'t> {
    /// A quoted string, escapes resolved.
    Quoted(Cow<'t, str>),
    /// An unquoted word (a number, if valid); the text is `raw`.
    Bare,
    List(Vec<Item<'t>>),
}

/// The outcome of reading a value.
enum Parsed<'t> {
    Ok(Item<'t>),
    /// Errors inside (reported) but the value's extent is known: reading goes
    /// on after it.
    Bad,
    /// A syntax error (reported) left the position inside the value: the
    /// caller must skip ahead.
    Lost,
    /// A syntax error (reported), and the position was moved to the start of
    /// the line of the next setting (or the end).
    Resynced,
    /// A syntax error (reported) inside a list, and the position was moved
    /// past the `]` closing the outermost list.
    Skipped,
}

/// Bytes that may appear in an unquoted value. Non-ASCII bytes are allowed,
/// so a word always ends on a character boundary.
fn is_bare(b: u8) -> bool {
    !matches!(
        b,
        b' ' | b'\t' | b'\r' | b'\n' | b'#' | b',' | b'[' | b']' | b'=' | b';' | b'"' | b'\''
    ) && !b.is_ascii_control()
}

/// The length of the key `[A-Za-z_][A-Za-z0-9_]*` at the start of `b`.
fn key_len(b: &[u8]) -> usize {
    match b.first() {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => b
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
            .count(),
        _ => 0,
    }
}

struct Parser<'t, 'r, 'f> {
    text: &'t str,
    pos: usize,
    line: usize,
    report: &'r mut Report<'f>,
}

impl<'t, 'r, 'f> Parser<'t, 'r, 'f> {
    fn new(text: &'t str, report: &'r mut Report<'f>) -> Self {
        let pos = if text.starts_with('\u{feff}') { 3 } else { 0 };
        Self {
            text,
            pos,
            line: 1,
            report,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn slice(&self, start: usize, end: usize) -> &'t str {
        self.text.get(start..end).unwrap_or("")
    }

    fn rest(&self) -> &'t str {
        self.text.get(self.pos..).unwrap_or("")
    }

    /// The rest of the current line, without its line break.
    fn rest_of_line(&self) -> &'t str {
        let rest = self.rest();
        let line = rest.split('\n').next().unwrap_or(rest);
        line.trim_end_matches('\r')
    }

    /// Moves to the line break ending the current line (or the end).
    fn skip_line(&mut self) {
        let rest = self.rest();
        self.pos += rest.find('\n').unwrap_or(rest.len());
    }

    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r')) {
            self.pos += 1;
        }
    }

    fn newline(&mut self) {
        self.pos += 1;
        self.line += 1;
    }

    /// Whether the text here is `key =`: a new setting.
    fn looks_like_setting(&self) -> bool {
        let b = self.rest().as_bytes();
        let n = key_len(b);
        let mut after = b.iter().skip(n).skip_while(|c| matches!(c, b' ' | b'\t'));
        n > 0 && after.next() == Some(&b'=')
    }

    fn error(&mut self, line: usize, key: &str, kind: ConfigErrorKind) {
        self.report.error(line, Some(key), Shown::Nothing, kind);
    }

    /// Reads every setting; errors go to the report.
    fn settings(&mut self) -> Vec<Setting<'t>> {
        let mut out = Vec::new();
        loop {
            // Blank lines, comments and empty `;` statements.
            loop {
                match self.peek() {
                    Some(b' ' | b'\t' | b'\r' | b';') => self.pos += 1,
                    Some(b'\n') => self.newline(),
                    Some(b'#') => self.skip_line(),
                    _ => break,
                }
            }
            if self.peek().is_none() {
                return out;
            }
            let line = self.line;
            let n = key_len(self.rest().as_bytes());
            if n == 0 {
                let found = shorten(self.rest_of_line());
                let kind = ConfigErrorKind::ExpectedSetting { found };
                self.report.error(line, None, Shown::Nothing, kind);
                self.skip_line();
                continue;
            }
            let key = self.slice(self.pos, self.pos + n);
            self.pos += n;
            self.skip_spaces();
            let value = if self.peek() != Some(b'=') {
                self.error(line, key, ConfigErrorKind::ExpectedEquals);
                self.skip_line();
                None
            } else {
                self.pos += 1;
                self.skip_spaces();
                match self.peek() {
                    None | Some(b'\n' | b'#' | b';') => {
                        self.error(line, key, ConfigErrorKind::MissingValue);
                        None
                    }
                    _ => match self.value(key, 0) {
                        Parsed::Ok(item) => {
                            if self.end_of_setting(key, Shown::Value(item.raw)) {
                                Some(item)
                            } else {
                                None
                            }
                        }
                        Parsed::Bad | Parsed::Skipped => {
                            self.end_of_setting(key, Shown::Nothing);
                            None
                        }
                        Parsed::Lost => {
                            self.skip_line();
                            None
                        }
                        Parsed::Resynced => None,
                    },
                }
            };
            out.push(Setting { key, line, value });
        }
    }

    /// Checks that nothing but a comment or `;` follows a value.
    fn end_of_setting(&mut self, key: &str, shown: Shown<'_>) -> bool {
        let line = self.line;
        self.skip_spaces();
        match self.peek() {
            None | Some(b'\n' | b'#' | b';') => true,
            _ => {
                let found = shorten(self.rest_of_line());
                let kind = ConfigErrorKind::TrailingText { found };
                self.report.error(line, Some(key), shown, kind);
                self.skip_line();
                false
            }
        }
    }

    /// Reads a value inside `depth` lists.
    fn value(&mut self, key: &'t str, depth: usize) -> Parsed<'t> {
        let (line, start) = (self.line, self.pos);
        match self.peek() {
            Some(q @ (b'"' | b'\'')) => self.string(key, q),
            Some(b'[') => self.list(key, depth + 1),
            _ => {
                let n = self.rest().bytes().take_while(|&b| is_bare(b)).count();
                if n == 0 {
                    let c = self.rest().chars().next().unwrap_or(' ');
                    self.error(line, key, ConfigErrorKind::UnexpectedCharacter(c));
                    return Parsed::Lost;
                }
                self.pos += n;
                Parsed::Ok(Item {
                    line,
                    raw: self.slice(start, self.pos),
                    kind: ItemKind::Bare,
                })
            }
        }
    }

    /// Reads a string opened by `quote`, which must close on the same line.
    fn string(&mut self, key: &'t str, quote: u8) -> Parsed<'t> {
        let (line, start) = (self.line, self.pos);
        let quote = char::from(quote);
        self.pos += 1;
        let mut owned: Option<String> = None;
        let mut piece = self.pos;
        let mut bad = false;
        loop {
            let mut chars = self.rest().chars();
            let Some(c) = chars.next() else { break };
            match c {
                '\n' => break,
                '\\' => match chars.next() {
                    None | Some('\n') => break,
                    Some(n) if n == quote || n == '\\' => {
                        let s = owned.get_or_insert_with(String::new);
                        s.push_str(self.slice(piece, self.pos));
                        s.push(n);
                        self.pos += 2;
                        piece = self.pos;
                    }
                    Some(n) => {
                        if !bad {
                            self.error(line, key, ConfigErrorKind::BadEscape(n));
                        }
                        bad = true;
                        self.pos += 1 + n.len_utf8();
                    }
                },
                c if c == quote => {
                    let end = self.pos;
                    self.pos += 1;
                    if bad {
                        return Parsed::Bad;
                    }
                    let text = match owned {
                        Some(mut s) => {
                            s.push_str(self.slice(piece, end));
                            Cow::Owned(s)
                        }
                        None => Cow::Borrowed(self.slice(piece, end)),
                    };
                    return Parsed::Ok(Item {
                        line,
                        raw: self.slice(start, self.pos),
                        kind: ItemKind::Quoted(text),
                    });
                }
                c => {
                    if c.is_control() && !bad {
                        self.error(line, key, ConfigErrorKind::ControlCharacter(c));
                    }
                    bad |= c.is_control();
                    self.pos += c.len_utf8();
                }
            }
        }
        self.error(line, key, ConfigErrorKind::UnclosedString { quote });
        Parsed::Lost
    }

    /// Reads a list; `depth` counts it and the lists around it.
    fn list(&mut self, key: &'t str, depth: usize) -> Parsed<'t> {
        let (line, start) = (self.line, self.pos);
        self.pos += 1;
        if depth > MAX_LIST_DEPTH {
            self.error(line, key, ConfigErrorKind::ListTooDeep);
            return self.recover(depth);
        }
        let mut items = Vec::new();
        let mut bad = false;
        loop {
            if let Some(end) = self.list_gap(key, line) {
                return end;
            }
            match self.peek() {
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                Some(b',') => {
                    self.error(self.line, key, ConfigErrorKind::EmptyListItem);
                    return self.recover(depth);
                }
                _ => match self.value(key, depth) {
                    Parsed::Ok(item) => items.push(item),
                    Parsed::Bad => bad = true,
                    Parsed::Lost => return self.recover(depth),
                    end @ (Parsed::Resynced | Parsed::Skipped) => return end,
                },
            }
            if let Some(end) = self.list_gap(key, line) {
                return end;
            }
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                next => {
                    let kind = match next {
                        Some(b) if !is_bare(b) && !matches!(b, b'"' | b'\'' | b'[') => {
                            ConfigErrorKind::UnexpectedCharacter(char::from(b))
                        }
                        _ => ConfigErrorKind::MissingComma,
                    };
                    self.error(self.line, key, kind);
                    return self.recover(depth);
                }
            }
        }
        if bad {
            return Parsed::Bad;
        }
        Parsed::Ok(Item {
            line,
            raw: self.slice(start, self.pos),
            kind: ItemKind::List(items),
        })
    }

    /// Skips blanks, comments and line breaks inside a list opened on
    /// `open_line`. Ends the list early, as unclosed, at the end of the text
    /// or before a line that starts a new setting.
    fn list_gap(&mut self, key: &str, open_line: usize) -> Option<Parsed<'t>> {
        loop {
            self.skip_spaces();
            match self.peek() {
                Some(b'#') => self.skip_line(),
                Some(b'\n') => {
                    self.newline();
                    self.skip_spaces();
                    if self.looks_like_setting() {
                        let before_line = Some(self.line);
                        self.error(
                            open_line,
                            key,
                            ConfigErrorKind::UnclosedList { before_line },
                        );
                        return Some(Parsed::Resynced);
                    }
                }
                None => {
                    let kind = ConfigErrorKind::UnclosedList { before_line: None };
                    self.error(open_line, key, kind);
                    return Some(Parsed::Resynced);
                }
                Some(_) => return None,
            }
        }
    }

    /// After a syntax error inside `open` lists: skips past the `]` closing
    /// the outermost one, or to the next line that starts a setting.
    fn recover(&mut self, mut open: usize) -> Parsed<'t> {
        while let Some(b) = self.peek() {
            match b {
                b'\n' => {
                    self.newline();
                    self.skip_spaces();
                    if self.looks_like_setting() {
                        return Parsed::Resynced;
                    }
                }
                b'#' => self.skip_line(),
                b'"' | b'\'' => {
                    self.pos += 1;
                    while let Some(c) = self.peek() {
                        if c == b'\n' {
                            break;
                        }
                        self.pos += 1;
                        if c == b'\\' && self.peek().is_some_and(|n| n != b'\n') {
                            self.pos += 1;
                        } else if c == b {
                            break;
                        }
                    }
                }
                b'[' => {
                    open += 1;
                    self.pos += 1;
                }
                b']' => {
                    self.pos += 1;
                    open = open.saturating_sub(1);
                    if open == 0 {
                        return Parsed::Skipped;
                    }
                }
                _ => self.pos += 1,
            }
        }
        Parsed::Resynced
    }
}

// ---------------------------------------------------------------------------
// Meaning: settings to a configuration

/// The keys this hypervisor uses, in the order of [`KEYS`].
#[derive(Clone, Copy)]
enum Key {
    Name,
    Type,
    Builder,
    Kernel,
    Ramdisk,
    Cmdline,
    Extra,
    Root,
    Memory,
    Maxmem,
    Vcpus,
    Pci,
    PciPermissive,
    PciMsitranslate,
    PciSeize,
    PciPowerMgmt,
    OnPoweroff,
    OnCrash,
    OnReboot,
}

const KEYS: [(&str, Key); 19] = [
    ("name", Key::Name),
    ("type", Key::Type),
    ("builder", Key::Builder),
    ("kernel", Key::Kernel),
    ("ramdisk", Key::Ramdisk),
    ("cmdline", Key::Cmdline),
    ("extra", Key::Extra),
    ("root", Key::Root),
    ("memory", Key::Memory),
    ("maxmem", Key::Maxmem),
    ("vcpus", Key::Vcpus),
    ("pci", Key::Pci),
    ("pci_permissive", Key::PciPermissive),
    ("pci_msitranslate", Key::PciMsitranslate),
    ("pci_seize", Key::PciSeize),
    ("pci_power_mgmt", Key::PciPowerMgmt),
    ("on_poweroff", Key::OnPoweroff),
    ("on_crash", Key::OnCrash),
    ("on_reboot", Key::OnReboot),
];

/// xl.cfg(5) keys this hypervisor ignores: warned about without a "did you
/// mean" guess.
const XL_KEYS: &str =
    "maxvcpus cpus cpus_soft cpu_weight cap pool uuid seclabel init_seclabel bootloader \
    bootloader_args on_watchdog on_soft_reset disk vif vtpm vfb vkb p9 pvcalls channel usbctrl \
    usbdev vdispl vsnd serial vnc vnclisten vncpasswd sdl localtime rtc_timeoffset \
    max_grant_frames max_maptrack_frames max_event_channels driver_domain device_model_version \
    device_model_override iomem ioports irqs e820_host tsc_mode rdm acpi apic pae hap \
    nestedhvm viridian boot vga videoram stdvga usb usbdevice soundhw keymap gfx_passthru \
    xen_platform_pci shadow_memory passthrough dtdev device_tree cpuid hpet altp2m \
    disable_migrate";

/// A known key that `key` is probably a misspelling of.
fn suggest(key: &str) -> Option<&'static str> {
    const LONGEST: usize = 32;
    if key.len() > LONGEST {
        return None;
    }
    let lower = key.to_ascii_lowercase();
    let budget = if key.len() < 6 { 1 } else { 2 };
    KEYS.iter()
        .map(|(name, _)| {
            (
                edit_distance::<LONGEST>(lower.as_bytes(), name.as_bytes()),
                *name,
            )
        })
        .filter(|(d, _)| *d <= budget)
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| name)
}

/// Levenshtein distance; `b` must be at most `N` bytes (longer is "far").
fn edit_distance<const N: usize>(a: &[u8], b: &[u8]) -> usize {
    if b.len() > N {
        return usize::MAX;
    }
    let mut prev = [0usize; 64];
    let mut cur = [0usize; 64];
    for (j, p) in prev.iter_mut().enumerate().take(b.len() + 1) {
        *p = j;
    }
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        core::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// A string value. An unquoted number counts as a string, as in xl.
fn text<'a>(item: &'a Item<'_>) -> Result<&'a str, ConfigErrorKind> {
    match &item.kind {
        ItemKind::Quoted(s) => Ok(s),
        ItemKind::Bare if parse_number(item.raw).is_ok() => Ok(item.raw),
        ItemKind::Bare => Err(ConfigErrorKind::UnquotedText {
            word: shorten(item.raw),
        }),
        ItemKind::List(_) => Err(ConfigErrorKind::Expected("a quoted string")),
    }
}

enum NumberError {
    NotANumber,
    LeadingZero,
    TooLarge,
}

/// Decimal or `0x` hexadecimal, no sign; a leading `0` (octal in xl) is
/// refused rather than read differently.
fn parse_number(s: &str) -> Result<u64, NumberError> {
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (s, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(NumberError::NotANumber);
    }
    if radix == 10 && digits.len() > 1 && digits.starts_with('0') {
        return Err(NumberError::LeadingZero);
    }
    u64::from_str_radix(digits, radix).map_err(|_| NumberError::TooLarge)
}

/// A number (bare or quoted, as xl allows) in `min..=max`.
fn number(
    item: &Item<'_>,
    expected: &'static str,
    min: u64,
    max: u64,
    unit: &'static str,
) -> Result<u64, ConfigErrorKind> {
    let s = match &item.kind {
        ItemKind::Quoted(s) => s,
        ItemKind::Bare => item.raw,
        ItemKind::List(_) => return Err(ConfigErrorKind::Expected(expected)),
    };
    let out_of_range = ConfigErrorKind::OutOfRange { min, max, unit };
    match parse_number(s) {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        Ok(_) | Err(NumberError::TooLarge) => Err(out_of_range),
        Err(NumberError::NotANumber) => Err(ConfigErrorKind::Expected(expected)),
        Err(NumberError::LeadingZero) => Err(ConfigErrorKind::LeadingZero),
    }
}

/// A 0-or-1 flag.
fn flag(item: &Item<'_>) -> Result<bool, ConfigErrorKind> {
    number(item, "0 or 1", 0, 1, "")
        .map_err(|_| ConfigErrorKind::Expected("0 or 1"))
        .map(|n| n == 1)
}

fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn module_name(item: &Item<'_>) -> Result<String, ConfigErrorKind> {
    match text(item)? {
        "" => Err(ConfigErrorKind::EmptyModuleName),
        s => Ok(s.into()),
    }
}

fn action(item: &Item<'_>) -> Result<LifecycleAction, ConfigErrorKind> {
    let s = text(item)?;
    if s.eq_ignore_ascii_case("destroy") {
        Ok(LifecycleAction::Destroy)
    } else if s.eq_ignore_ascii_case("restart") {
        Ok(LifecycleAction::Restart)
    } else {
        Err(ConfigErrorKind::UnsupportedAction)
    }
}

/// The settings of the keys this hypervisor uses, by [`Key`].
struct Known<'s, 't>([Option<&'s Setting<'t>>; KEYS.len()]);

impl<'s, 't> Known<'s, 't> {
    fn given(&self, k: Key) -> Option<&'s Setting<'t>> {
        self.0.get(k as usize).copied().flatten()
    }

    /// Reads key `k` with `read`, reporting a bad value. `None` if the key is
    /// absent or its value bad (then the file has errors anyway).
    fn read<T>(
        &self,
        report: &mut Report<'_>,
        k: Key,
        read: impl FnOnce(&'s Item<'t>) -> Result<T, ConfigErrorKind>,
    ) -> Option<T> {
        let s = self.given(k)?;
        let item = s.value.as_ref()?;
        match read(item) {
            Ok(v) => Some(v),
            Err(kind) => {
                report.error(item.line, Some(s.key), Shown::Value(item.raw), kind);
                None
            }
        }
    }
}

/// Turns settings into a configuration; `None` if anything was wrong.
fn interpret(settings: &[Setting<'_>], report: &mut Report<'_>) -> Option<DomainConfig> {
    let mut first_line: BTreeMap<&str, usize> = BTreeMap::new();
    let mut known = Known([None; KEYS.len()]);
    for s in settings {
        if s.value.is_none() {
            // Already reported; it only counts as given.
            if let Some(i) = KEYS.iter().position(|(name, _)| *name == s.key) {
                known.0[i] = known.0[i].or(Some(s));
            }
            continue;
        }
        if let Some(&first) = first_line.get(s.key) {
            let shown = s
                .value
                .as_ref()
                .map_or(Shown::Nothing, |v| Shown::Value(v.raw));
            let kind = ConfigErrorKind::Duplicate { first_line: first };
            report.error(s.line, Some(s.key), shown, kind);
            continue;
        }
        first_line.insert(s.key, s.line);
        match KEYS.iter().position(|(name, _)| *name == s.key) {
            Some(i) => known.0[i] = Some(s),
            None => report.unknown_key(s.line, s.key),
        }
    }

    let name = known.read(report, Key::Name, |v| match text(v)? {
        n if valid_name(n) => Ok(String::from(n)),
        _ => Err(ConfigErrorKind::BadName),
    });
    if known.given(Key::Name).is_none() {
        report.error(0, None, Shown::Nothing, ConfigErrorKind::MissingName);
    }
    let kind = known
        .read(report, Key::Type, |v| match text(v)? {
            t if t.eq_ignore_ascii_case("pvh") => Ok(DomainKind::Pvh),
            _ => Err(ConfigErrorKind::UnsupportedType),
        })
        .unwrap_or_default();
    known.read(report, Key::Builder, |_| {
        Err::<(), _>(ConfigErrorKind::Builder)
    });
    let kernel = known.read(report, Key::Kernel, module_name);
    if known.given(Key::Kernel).is_none() {
        report.error(0, None, Shown::Nothing, ConfigErrorKind::MissingKernel);
    }
    let ramdisk = known.read(report, Key::Ramdisk, module_name);

    let as_string = |v: &Item<'_>| text(v).map(String::from);
    let cmdline = known.read(report, Key::Cmdline, as_string);
    let root = known.read(report, Key::Root, as_string);
    let extra = known.read(report, Key::Extra, as_string);
    let cmdline = if known.given(Key::Cmdline).is_some() {
        for k in [Key::Root, Key::Extra] {
            if let Some(s) = known.given(k) {
                let kind = ConfigWarningKind::OverriddenByCmdline;
                report.warn(s.line, s.key, Shown::Nothing, kind);
            }
        }
        cmdline.unwrap_or_default()
    } else {
        match (root, extra) {
            (Some(root), Some(extra)) => alloc::format!("root={root} {extra}"),
            (Some(root), None) => alloc::format!("root={root}"),
            (None, extra) => extra.unwrap_or_default(),
        }
    };

    const MIB: &str = "a number of MiB";
    let memory_mib = known.read(report, Key::Memory, |v| {
        number(v, MIB, 1, MAX_MEMORY_MIB, " MiB")
    });
    let maxmem_mib = known.read(report, Key::Maxmem, |v| {
        let maxmem = number(v, MIB, 1, MAX_MEMORY_MIB, " MiB")?;
        match memory_mib {
            Some(memory_mib) if maxmem < memory_mib => {
                Err(ConfigErrorKind::MaxmemBelowMemory { memory_mib })
            }
            None if maxmem < DEFAULT_MEMORY_MIB && known.given(Key::Memory).is_none() => {
                Err(ConfigErrorKind::MaxmemBelowMemory {
                    memory_mib: DEFAULT_MEMORY_MIB,
                })
            }
            _ => Ok(maxmem),
        }
    });
    let vcpus = known.read(report, Key::Vcpus, |v| {
        let n = number(v, "a number of vCPUs", 1, MAX_VCPUS, "")?;
        Ok(u32::try_from(n).unwrap_or(1))
    });

    let defaults = PciDefaults {
        permissive: known
            .read(report, Key::PciPermissive, flag)
            .unwrap_or(false),
        msitranslate: known
            .read(report, Key::PciMsitranslate, flag)
            .unwrap_or(false),
        seize: known.read(report, Key::PciSeize, flag).unwrap_or(false),
        power_mgmt: known.read(report, Key::PciPowerMgmt, flag).unwrap_or(false),
    };
    let pci = known
        .read(report, Key::Pci, |v| match &v.kind {
            ItemKind::List(items) => Ok(items),
            _ => Err(ConfigErrorKind::Expected("a list like ['0000:00:03.0']")),
        })
        .map(|items| pci_list(items, defaults, report))
        .unwrap_or_default();

    let on_poweroff = known.read(report, Key::OnPoweroff, action);
    let on_crash = known.read(report, Key::OnCrash, action);
    let on_reboot = known.read(report, Key::OnReboot, action);

    Some(DomainConfig {
        name: name?,
        kind,
        kernel: kernel?,
        ramdisk,
        cmdline,
        memory_mib: memory_mib.unwrap_or(DEFAULT_MEMORY_MIB),
        maxmem_mib,
        vcpus: vcpus.unwrap_or(1),
        pci,
        on_poweroff: on_poweroff.unwrap_or(LifecycleAction::Destroy),
        on_crash: on_crash.unwrap_or(LifecycleAction::Destroy),
        on_reboot: on_reboot.unwrap_or(LifecycleAction::Restart),
    })
}

/// `pci_permissive = 1` and friends: defaults for every `pci` entry.
#[derive(Clone, Copy, Default)]
struct PciDefaults {
    permissive: bool,
    msitranslate: bool,
    seize: bool,
    power_mgmt: bool,
}

/// Reads the items of `pci = [...]`, reporting bad and repeated entries.
fn pci_list(
    items: &[Item<'_>],
    defaults: PciDefaults,
    report: &mut Report<'_>,
) -> Vec<PciAssignment> {
    let mut out = Vec::new();
    let mut first_line: BTreeMap<Sbdf, usize> = BTreeMap::new();
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

// ---------------------------------------------------------------------------
// Boot modules

/// Why [`find_module`] found no single module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModuleLookupError {
    /// No module has that name.
    NotFound {
        /// The name looked for.
        wanted: String,
    },
    /// Several modules match.
    Ambiguous {
        /// The name looked for.
        wanted: String,
        /// The names of the matching modules (at most [`MAX_SHOWN_MATCHES`]).
        matches: Vec<String>,
    },
}

/// How many matching names an ambiguity error lists.
pub const MAX_SHOWN_MATCHES: usize = 8;

impl fmt::Display for ModuleLookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound { wanted } => write!(
                f,
                "no boot module is named '{wanted}' (a module's name is its command-line string, \
                 e.g. 'guest.elf' in GRUB's 'module2 /boot/guest.elf guest.elf')"
            ),
            Self::Ambiguous { wanted, matches } => {
                write!(f, "'{wanted}' matches several boot modules: ")?;
                for (i, m) in matches.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}'{m}'")?;
                }
                f.write_str("; give the modules distinct names or use the full one")
            }
        }
    }
}

/// The part of a module name after its last `/`.
fn last_component(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// Finds which boot module a name refers to: exact match of the module's
/// command-line string, or match of its last path component ("guest.elf"
/// matches a module named "/boot/guest.elf" and vice versa). Ambiguity (two
/// modules match) is an error listing both.
///
/// A single exact match wins over matches by last component. Two paths in
/// different directories (`/a/guest.elf`, `/b/guest.elf`) do not match each
/// other: only a bare name matches a path. The whole command-line string is
/// the name (a module's arguments, if any, are part of it).
pub fn find_module<'a, M>(
    modules: &'a [M],
    name_of: impl Fn(&M) -> &str,
    wanted: &str,
) -> Result<&'a M, ModuleLookupError> {
    let exact = |m: &&M| name_of(m) == wanted;
    let wanted_base = last_component(wanted);
    let loose = |m: &&M| {
        let name = name_of(m);
        (!name.contains('/') && !wanted_base.is_empty() && name == wanted_base)
            || (!wanted.contains('/') && last_component(name) == wanted)
    };
    let pick = |matches: &mut dyn Iterator<Item = &'a M>| -> Option<Result<&'a M, _>> {
        let first = matches.next()?;
        let Some(second) = matches.next() else {
            return Some(Ok(first));
        };
        let names = [first, second]
            .into_iter()
            .chain(matches)
            .take(MAX_SHOWN_MATCHES)
            .map(|m| String::from(name_of(m)))
            .collect();
        Some(Err(ModuleLookupError::Ambiguous {
            wanted: wanted.into(),
            matches: names,
        }))
    };
    if wanted.is_empty() {
        return Err(ModuleLookupError::NotFound {
            wanted: String::new(),
        });
    }
    pick(&mut modules.iter().filter(exact))
        .or_else(|| pick(&mut modules.iter().filter(loose)))
        .unwrap_or_else(|| {
            Err(ModuleLookupError::NotFound {
                wanted: wanted.into(),
            })
        })
}

/// Whether a boot module looks like a domain configuration: its name ends
/// in ".cfg" (this is how the hypervisor tells config modules from
/// kernels/ramdisks). The suffix is matched without regard to ASCII case
/// (`GUEST.CFG` from a FAT file system counts) and needs a name before it.
pub fn is_config_module(name: &str) -> bool {
    let base = last_component(name);
    base.len() > 4
        && base
            .get(base.len() - 4..)
            .is_some_and(|ext| ext.eq_ignore_ascii_case(".cfg"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    /// The two lines every valid file needs.
    const BASE: &str = "name = \"g\"\nkernel = \"k.elf\"\n";

    fn config_and_warnings(text: &str) -> (DomainConfig, Vec<String>) {
        match parse("g.cfg", text) {
            Ok((c, w)) => (c, w.iter().map(ToString::to_string).collect()),
            Err(e) => panic!("unexpected errors: {:#?}", messages(&e)),
        }
    }

    fn config(text: &str) -> DomainConfig {
        let (c, w) = config_and_warnings(text);
        assert!(w.is_empty(), "unexpected warnings: {w:#?}");
        c
    }

    fn messages<T: ToString>(list: &[T]) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    fn errors(text: &str) -> Vec<String> {
        match parse("g.cfg", text) {
            Ok(c) => panic!("expected errors, got {c:#?}"),
            Err(e) => messages(&e),
        }
    }

    /// The errors of `BASE` followed by `extra`.
    fn errors_with_base(extra: &str) -> Vec<String> {
        errors(&(String::from(BASE) + extra))
    }

    fn with_base(extra: &str) -> DomainConfig {
        config(&(String::from(BASE) + extra))
    }

    fn sbdf(s: &str) -> Sbdf {
        s.parse().unwrap()
    }

    fn plain(s: &str) -> PciAssignment {
        PciAssignment {
            sbdf: sbdf(s),
            permissive: false,
            msitranslate: false,
            seize: false,
            power_mgmt: false,
            rdm_policy_strict: None,
        }
    }

    #[test]
    fn minimal_file_gets_every_default() {
        let c = config(BASE);
        assert_eq!(
            c,
            DomainConfig {
                name: "g".into(),
                kind: DomainKind::Pvh,
                kernel: "k.elf".into(),
                ramdisk: None,
                cmdline: String::new(),
                memory_mib: 128,
                maxmem_mib: None,
                vcpus: 1,
                pci: vec![],
                on_poweroff: LifecycleAction::Destroy,
                on_crash: LifecycleAction::Destroy,
                on_reboot: LifecycleAction::Restart,
            }
        );
    }

    #[test]
    fn every_key_is_read() {
        let c = config(
            "name = 'all-keys_1.x'\n\
             type = 'pvh'\n\
             kernel = '/boot/guest.elf'\n\
             ramdisk = 'initrd.img'\n\
             cmdline = 'console=hvc0 quiet'\n\
             memory = 256\n\
             maxmem = 512\n\
             vcpus = 4\n\
             pci = ['00:03.0']\n\
             pci_permissive = 1\n\
             pci_msitranslate = 1\n\
             pci_seize = 1\n\
             pci_power_mgmt = 1\n\
             on_poweroff = 'restart'\n\
             on_crash = 'restart'\n\
             on_reboot = 'destroy'\n",
        );
        assert_eq!(c.name, "all-keys_1.x");
        assert_eq!(c.kernel, "/boot/guest.elf");
        assert_eq!(c.ramdisk.as_deref(), Some("initrd.img"));
        assert_eq!(c.cmdline, "console=hvc0 quiet");
        assert_eq!((c.memory_mib, c.maxmem_mib, c.vcpus), (256, Some(512), 4));
        let all_on = PciAssignment {
            permissive: true,
            msitranslate: true,
            seize: true,
            power_mgmt: true,
            ..plain("00:03.0")
        };
        assert_eq!(c.pci, [all_on]);
        assert_eq!(c.on_poweroff, LifecycleAction::Restart);
        assert_eq!(c.on_crash, LifecycleAction::Restart);
        assert_eq!(c.on_reboot, LifecycleAction::Destroy);
    }

    #[test]
    fn realistic_example_file_with_the_edu_device() {
        let c = config(
            "# a guest with the edu device\n\
             name = \"edu-guest\"\n\
             type = \"pvh\"\n\
             kernel = \"xpci.elf\"\n\
             memory = 64\n\
             vcpus = 1\n\
             pci = [ '0000:00:03.0', '00:05.0,permissive=1,msitranslate=0' ]\n\
             on_crash = \"destroy\"\n\
             extra = \"loglvl=debug\"\n",
        );
        assert_eq!(c.name, "edu-guest");
        assert_eq!(c.kind, DomainKind::Pvh);
        assert_eq!(c.kernel, "xpci.elf");
        assert_eq!(c.memory_mib, 64);
        assert_eq!(c.vcpus, 1);
        let permissive = PciAssignment {
            permissive: true,
            ..plain("00:05.0")
        };
        assert_eq!(c.pci, [plain("00:03.0"), permissive]);
        assert_eq!(c.on_crash, LifecycleAction::Destroy);
        assert_eq!(c.cmdline, "loglvl=debug");
    }

    #[test]
    fn single_and_double_quotes_with_escaped_quote_and_backslash() {
        let c = with_base(r#"cmdline = 'it\'s "fine" \\ ok'"#);
        assert_eq!(c.cmdline, r#"it's "fine" \ ok"#);
        let c = with_base(r#"cmdline = "say \"hi\" it's""#);
        assert_eq!(c.cmdline, r#"say "hi" it's"#);
        let c = with_base("cmdline = 'caf\u{e9} # not a comment'");
        assert_eq!(c.cmdline, "caf\u{e9} # not a comment");
    }

    #[test]
    fn multi_line_list_with_comments_inside_and_a_trailing_comma() {
        let c = with_base(
            "pci = [\n\
             \x20   # the edu device\n\
             \x20   '00:03.0', # first\n\
             \n\
             \x20   '00:04.0,seize=1' ,\n\
             ]  # done\n\
             memory = 32\n",
        );
        let seized = PciAssignment {
            seize: true,
            ..plain("00:04.0")
        };
        assert_eq!(c.pci, [plain("00:03.0"), seized]);
        assert_eq!(c.memory_mib, 32);
        assert_eq!(with_base("pci = []").pci, []);
    }

    #[test]
    fn semicolons_separate_settings_like_xl() {
        let c = config("name = 'g'; kernel = 'k'; memory = 16;\n;vcpus = 2 # two");
        assert_eq!((c.memory_mib, c.vcpus), (16, 2));
    }

    #[test]
    fn crlf_line_endings_and_a_byte_order_mark_are_accepted() {
        let c = config("\u{feff}name = 'g'\r\nkernel = 'k'\r\npci = [\r\n '00:03.0',\r\n]\r\n");
        assert_eq!(c.pci, [plain("00:03.0")]);
    }

    #[test]
    fn extra_alone_is_the_command_line() {
        assert_eq!(with_base("extra = 'quiet'").cmdline, "quiet");
    }

    #[test]
    fn root_is_prepended_to_extra_like_xl() {
        let c = with_base("extra = 'ro quiet'\nroot = '/dev/xvda1'");
        assert_eq!(c.cmdline, "root=/dev/xvda1 ro quiet");
        assert_eq!(with_base("root = '/dev/xvda1'").cmdline, "root=/dev/xvda1");
    }

    #[test]
    fn cmdline_wins_over_root_and_extra_with_a_warning_each() {
        let (c, w) =
            config_and_warnings(&(String::from(BASE) + "root = 'r'\ncmdline = 'c'\nextra = 'e'"));
        assert_eq!(c.cmdline, "c");
        assert_eq!(
            w,
            [
                "g.cfg:3: ignoring 'root' because 'cmdline' is given (as xl does)",
                "g.cfg:5: ignoring 'extra' because 'cmdline' is given (as xl does)",
            ]
        );
    }

    #[test]
    fn numbers_may_be_hex_or_quoted_and_text_may_be_a_bare_number() {
        let c = config("name = 42\nkernel = 'k'\nmemory = 0x40\nvcpus = '2'\nmaxmem = 0X80");
        assert_eq!(c.name, "42");
        assert_eq!((c.memory_mib, c.vcpus, c.maxmem_mib), (64, 2, Some(128)));
    }

    #[test]
    fn type_and_actions_ignore_ascii_case() {
        let c = with_base("type = 'PVH'\non_crash = 'Restart'");
        assert_eq!(c.on_crash, LifecycleAction::Restart);
    }

    #[test]
    fn memory_that_is_not_a_number_is_an_error_naming_the_value() {
        let e = errors("# g\nname = 'g'\nkernel = 'k'\n\n\n\nmemory = \"lots\"\n");
        assert_eq!(e, ["g.cfg:7: memory = \"lots\": expected a number of MiB"]);
        assert_eq!(
            errors_with_base("memory = -1\nvcpus = ['1']\nmaxmem = 1G"),
            [
                "g.cfg:3: memory = -1: expected a number of MiB",
                "g.cfg:4: vcpus = ['1']: expected a number of vCPUs",
                "g.cfg:5: maxmem = 1G: expected a number of MiB",
            ]
        );
    }

    #[test]
    fn number_with_a_leading_zero_is_refused_because_xl_reads_it_as_octal() {
        assert_eq!(
            errors_with_base("memory = 064"),
            ["g.cfg:3: memory = 064: a leading 0 means octal to xl: write the number without it, or in 0x hexadecimal"]
        );
    }

    #[test]
    fn memory_and_vcpus_out_of_range_are_errors_giving_the_range() {
        assert_eq!(
            errors_with_base("memory = 0\nvcpus = 129\nmaxmem = 1048577\n"),
            [
                "g.cfg:3: memory = 0: must be between 1 and 1048576 MiB",
                "g.cfg:4: vcpus = 129: must be between 1 and 128",
                "g.cfg:5: maxmem = 1048577: must be between 1 and 1048576 MiB",
            ]
        );
        assert_eq!(
            errors_with_base("vcpus = 99999999999999999999999")[0],
            "g.cfg:3: vcpus = 99999999999999999999999: must be between 1 and 128"
        );
        assert_eq!(with_base("memory = 1048576").memory_mib, MAX_MEMORY_MIB);
    }

    #[test]
    fn maxmem_below_memory_is_an_error() {
        assert_eq!(
            errors_with_base("maxmem = 64\nmemory = 256"),
            ["g.cfg:3: maxmem = 64: must be at least memory (256 MiB)"]
        );
        assert_eq!(
            errors_with_base("maxmem = 64"),
            ["g.cfg:3: maxmem = 64: must be at least memory (128 MiB)"]
        );
        assert_eq!(with_base("memory = 64\nmaxmem = 64").maxmem_mib, Some(64));
    }

    #[test]
    fn missing_name_and_kernel_are_reported_for_the_whole_file() {
        assert_eq!(
            errors("memory = 64\n"),
            [
                "g.cfg: no 'name =' line: the domain needs a name",
                "g.cfg: no 'kernel =' line: the domain needs a kernel module name",
            ]
        );
    }

    #[test]
    fn a_bad_required_value_is_not_also_reported_as_missing() {
        assert_eq!(
            errors("name = 'g'\nkernel = \"unclosed\n"),
            ["g.cfg:2: kernel: the string opened with \" is not closed on its line"]
        );
    }

    #[test]
    fn name_outside_the_allowed_characters_or_length_is_an_error() {
        let expected = "a name is 1 to 64 characters from A-Z a-z 0-9 _ . -";
        for bad in ["''", "'a b'", "'caf\u{e9}'", "'a/b'"] {
            let e = errors(&alloc::format!("name = {bad}\nkernel = 'k'"));
            assert_eq!(e, [alloc::format!("g.cfg:1: name = {bad}: {expected}")]);
        }
        let long = "x".repeat(65);
        assert_eq!(
            errors(&alloc::format!("name = '{long}'\nkernel = 'k'")).len(),
            1
        );
        assert_eq!(
            config(&alloc::format!("name = '{}'\nkernel = 'k'", &long[1..]))
                .name
                .len(),
            64
        );
    }

    #[test]
    fn empty_kernel_or_ramdisk_is_an_error() {
        assert_eq!(
            errors("name = 'g'\nkernel = ''\nramdisk = \"\""),
            [
                "g.cfg:2: kernel = '': expected the name of a boot module",
                "g.cfg:3: ramdisk = \"\": expected the name of a boot module",
            ]
        );
    }

    #[test]
    fn hvm_and_pv_types_are_errors_saying_only_pvh_is_supported() {
        assert_eq!(
            errors_with_base("type = 'hvm'"),
            ["g.cfg:3: type = 'hvm': only \"pvh\" domains are supported"]
        );
        assert_eq!(
            errors_with_base("type = \"pv\""),
            ["g.cfg:3: type = \"pv\": only \"pvh\" domains are supported"]
        );
    }

    #[test]
    fn builder_is_an_error_because_it_selects_pv_or_hvm() {
        assert_eq!(
            errors_with_base("builder = 'hvm'"),
            ["g.cfg:3: builder = 'hvm': 'builder' selects a PV or HVM domain; only type = \"pvh\" is supported"]
        );
    }

    #[test]
    fn unsupported_lifecycle_actions_are_errors_naming_the_value() {
        assert_eq!(
            errors_with_base(
                "on_poweroff = 'preserve'\non_crash = 'coredump-destroy'\non_reboot = 'rename-restart'"
            ),
            [
                "g.cfg:3: on_poweroff = 'preserve': only \"destroy\" and \"restart\" are supported",
                "g.cfg:4: on_crash = 'coredump-destroy': only \"destroy\" and \"restart\" are supported",
                "g.cfg:5: on_reboot = 'rename-restart': only \"destroy\" and \"restart\" are supported",
            ]
        );
    }

    #[test]
    fn key_given_twice_is_an_error_naming_both_lines() {
        assert_eq!(
            errors_with_base("memory = 64\n# more\nmemory = 128\ndisk = []\ndisk = []"),
            [
                "g.cfg:5: memory = 128: already given on line 3; keep one of the two lines",
                "g.cfg:7: disk = []: already given on line 6; keep one of the two lines",
            ]
        );
    }

    #[test]
    fn unknown_keys_are_warnings_naming_key_and_line() {
        let (c, w) = config_and_warnings(
            "name = 'g'\nkernel = 'k'\ndisk = ['phy:/dev/vg/g,xvda,w']\non_watchdog = 'destroy'\n\
             memroy = 64\nvcpu = 2\nfrobnicate = 1\nvif = [ [ 'nested' ] ]",
        );
        assert_eq!(c.memory_mib, 128);
        assert_eq!(
            w,
            [
                "g.cfg:3: ignoring 'disk': this hypervisor does not use it",
                "g.cfg:4: ignoring 'on_watchdog': this hypervisor does not use it",
                "g.cfg:5: ignoring unknown key 'memroy' (did you mean 'memory'?)",
                "g.cfg:6: ignoring unknown key 'vcpu' (did you mean 'vcpus'?)",
                "g.cfg:7: ignoring unknown key 'frobnicate'",
                "g.cfg:8: ignoring 'vif': this hypervisor does not use it",
            ]
        );
    }

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
            "pci_permissive = 1\npci_seize = 0x1\n\
             pci = ['00:03.0', '00:04.0,permissive=0,msitranslate=1,power_mgmt=1,rdm_policy=relaxed']",
        );
        let first = PciAssignment {
            permissive: true,
            seize: true,
            ..plain("00:03.0")
        };
        let second = PciAssignment {
            msitranslate: true,
            seize: true,
            power_mgmt: true,
            rdm_policy_strict: Some(false),
            ..plain("00:04.0")
        };
        assert_eq!(c.pci, [first, second]);
        assert_eq!(
            errors_with_base("pci_permissive = 'yes'"),
            ["g.cfg:3: pci_permissive = 'yes': expected 0 or 1"]
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

    #[test]
    fn unquoted_text_is_an_error_suggesting_quotes() {
        assert_eq!(
            errors_with_base("type = pvh"),
            ["g.cfg:3: type = pvh: text must be quoted: \"pvh\""]
        );
    }

    #[test]
    fn a_list_where_text_is_expected_is_an_error() {
        assert_eq!(
            errors_with_base("ramdisk = ['a', 'b']"),
            ["g.cfg:3: ramdisk = ['a', 'b']: expected a quoted string"]
        );
    }

    #[test]
    fn syntax_errors_have_their_own_messages() {
        let e = errors_with_base(
            "memory 64\n\
             vcpus =\n\
             = 5\n\
             cmdline = \"open\n\
             extra = 'C:\\dir'\n\
             root = 'a\u{0}b'\n\
             on_crash = 'destroy' 'restart'\n\
             pci = ['00:03.0' '00:04.0']\n\
             disk = [ , 'x']\n\
             vif = ['x'; 'y']\n\
             serial = ]\n",
        );
        assert_eq!(
            e,
            [
                "g.cfg:3: memory: expected '=' after the key",
                "g.cfg:4: vcpus: missing value after '='",
                "g.cfg:5: expected 'key = value', found '= 5'",
                "g.cfg:6: cmdline: the string opened with \" is not closed on its line",
                "g.cfg:7: extra: unsupported escape '\\d' in a string (only \\\\ and a backslash before the quote are understood)",
                "g.cfg:8: root: control character U+0000 in a string",
                "g.cfg:9: on_crash = 'destroy': unexpected ''restart'' after the value",
                "g.cfg:10: pci: missing ',' between list items",
                "g.cfg:11: disk: a list item is missing before ','",
                "g.cfg:12: vif: unexpected ';'",
                "g.cfg:13: serial: unexpected ']'",
            ]
        );
    }

    #[test]
    fn unclosed_list_is_reported_and_the_next_setting_is_still_read() {
        assert_eq!(
            errors("name = 'g'\npci = [ '00:03.0',\n  '00:04.0'\nkernel = 'k'\nmemory = 'x'"),
            [
                "g.cfg:2: pci: the list is not closed: add ']' before line 4",
                "g.cfg:5: memory = 'x': expected a number of MiB",
            ]
        );
        assert_eq!(
            errors_with_base("pci = [ '00:03.0', # the end"),
            ["g.cfg:3: pci: the list is not closed: add ']' at its end"]
        );
    }

    #[test]
    fn reading_resumes_after_a_broken_list() {
        let e = errors_with_base("pci = [ '00:03.0' = '00:04.0',\n  'x' ] memory = 5\nvcpus = 'x'");
        assert_eq!(
            e,
            [
                "g.cfg:3: pci: unexpected '='",
                "g.cfg:4: pci: unexpected 'memory = 5' after the value",
                "g.cfg:5: vcpus = 'x': expected a number of vCPUs",
            ]
        );
    }

    #[test]
    fn nested_lists_are_accepted_up_to_a_depth() {
        let (_, w) = config_and_warnings(&(String::from(BASE) + "cpuid = [[[[[[[['x']]]]]]]]"));
        assert_eq!(w.len(), 1);
        assert_eq!(
            errors_with_base("cpuid = [[[[[[[[['x']]]]]]]]]\nmemory = 'y'"),
            [
                "g.cfg:3: cpuid: lists nested more than 8 deep",
                "g.cfg:4: memory = 'y': expected a number of MiB",
            ]
        );
    }

    #[test]
    fn all_errors_of_a_file_are_reported_together_in_line_order() {
        let e = errors(
            "memory = 'x'\n\
             pci = ['00:03.0,bogus=1']\n\
             type = 'hvm'\n\
             vcpus = 0\n\
             on_crash = 'preserve'\n",
        );
        assert_eq!(
            e,
            [
                "g.cfg:1: memory = 'x': expected a number of MiB",
                "g.cfg:2: pci = ['00:03.0,bogus=1']: unknown option 'bogus' (known: permissive, msitranslate, seize, power_mgmt, rdm_policy)",
                "g.cfg:3: type = 'hvm': only \"pvh\" domains are supported",
                "g.cfg:4: vcpus = 0: must be between 1 and 128",
                "g.cfg:5: on_crash = 'preserve': only \"destroy\" and \"restart\" are supported",
                "g.cfg: no 'name =' line: the domain needs a name",
                "g.cfg: no 'kernel =' line: the domain needs a kernel module name",
            ]
        );
    }

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

    #[test]
    fn long_and_multi_line_values_are_shortened_in_messages() {
        let long = "y".repeat(100);
        let e = errors_with_base(&alloc::format!("memory = '{long}'"));
        assert_eq!(
            e,
            [alloc::format!(
                "g.cfg:3: memory = '{}...: expected a number of MiB",
                &long[..59]
            )]
        );
        let e = errors_with_base("memory = [\n    1,\n    2,\n]");
        assert_eq!(e, ["g.cfg:3: memory = [ 1, 2, ]: expected a number of MiB"]);
        let e = errors_with_base("\u{1}x = 1");
        assert_eq!(e, ["g.cfg:3: expected 'key = value', found '\\u{1}x = 1'"]);
    }

    #[test]
    fn too_many_errors_are_counted_in_a_last_error() {
        let text = "bad line\n".repeat(MAX_ERRORS + 10);
        let e = errors(&text);
        assert_eq!(e.len(), MAX_ERRORS + 1);
        assert_eq!(e[MAX_ERRORS], "g.cfg: 12 more errors not shown");
    }

    #[test]
    fn too_many_warnings_are_counted_in_a_last_warning() {
        let mut text = String::from(BASE);
        for i in 0..MAX_WARNINGS + 3 {
            text.push_str(&alloc::format!("unknown{i} = 1\n"));
        }
        let (_, w) = config_and_warnings(&text);
        assert_eq!(w.len(), MAX_WARNINGS + 1);
        assert_eq!(w[MAX_WARNINGS], "g.cfg: 3 more warnings not shown");
    }

    #[test]
    fn a_megabyte_of_hostile_text_is_parsed_quickly() {
        let mb = 1 << 20;
        for unit in [
            "[",
            "x = [\n",
            "'",
            "a",
            "=\n",
            "#",
            "x=['a',[",
            "\n",
            "memroy = 1\n",
        ] {
            let text = unit.repeat(mb / unit.len());
            let start = std::time::Instant::now();
            let _ = parse("big.cfg", &text);
            assert!(
                start.elapsed().as_secs() < 5,
                "{unit:?} took {:?}",
                start.elapsed()
            );
        }
        let mut big = String::from(BASE);
        big.push_str("pci = [\n");
        for i in 0..40_000u32 {
            let (bus, dev) = (i / 256, (i / 8) % 32);
            big.push_str(&alloc::format!(
                "  '{:04x}:{:02x}:{dev:02x}.{}',\n",
                i >> 16,
                bus & 0xff,
                i % 8
            ));
        }
        big.push(']');
        assert!(big.len() > mb / 2);
        let (c, _) = parse("big.cfg", &big).unwrap();
        assert_eq!(c.pci.len(), 40_000);
    }

    #[test]
    fn key_table_is_in_key_order() {
        for (i, (_, k)) in KEYS.iter().enumerate() {
            assert_eq!(*k as usize, i);
        }
        for k in XL_KEYS.split(' ') {
            assert!(!KEYS.iter().any(|(name, _)| *name == k), "{k} is used");
            assert!(key_len(k.as_bytes()) == k.len(), "{k:?}");
        }
    }

    // -- boot modules

    #[test]
    fn module_is_found_by_exact_name() {
        let mods = ["guest.elf", "guest1.cfg"];
        assert_eq!(find_module(&mods, |m| m, "guest.elf"), Ok(&"guest.elf"));
    }

    #[test]
    fn module_is_found_by_last_path_component_both_ways() {
        let mods = ["/boot/guest.elf", "initrd"];
        assert_eq!(
            find_module(&mods, |m| m, "guest.elf"),
            Ok(&"/boot/guest.elf")
        );
        let mods = ["guest.elf", "initrd"];
        assert_eq!(
            find_module(&mods, |m| m, "/boot/guest.elf"),
            Ok(&"guest.elf")
        );
    }

    #[test]
    fn exact_match_wins_over_last_component_matches() {
        let mods = ["/a/guest.elf", "guest.elf"];
        assert_eq!(find_module(&mods, |m| m, "guest.elf"), Ok(&"guest.elf"));
        assert_eq!(
            find_module(&mods, |m| m, "/a/guest.elf"),
            Ok(&"/a/guest.elf")
        );
    }

    #[test]
    fn paths_in_different_directories_do_not_match() {
        let mods = ["/a/guest.elf"];
        assert_eq!(
            find_module(&mods, |m| m, "/b/guest.elf"),
            Err(ModuleLookupError::NotFound {
                wanted: "/b/guest.elf".into()
            })
        );
    }

    #[test]
    fn ambiguous_module_name_is_an_error_listing_both() {
        #[derive(Debug)]
        struct Module {
            name: &'static str,
        }
        let mods = [
            Module {
                name: "/a/guest.elf",
            },
            Module { name: "k" },
            Module {
                name: "/b/guest.elf",
            },
        ];
        let e = find_module(&mods, |m| m.name, "guest.elf").unwrap_err();
        assert_eq!(
            e.to_string(),
            "'guest.elf' matches several boot modules: '/a/guest.elf', '/b/guest.elf'; give the modules distinct names or use the full one"
        );
        let same = ["x", "x"];
        assert!(matches!(
            find_module(&same, |m| m, "x"),
            Err(ModuleLookupError::Ambiguous { .. })
        ));
    }

    #[test]
    fn missing_module_is_an_error_explaining_module_names() {
        let mods: [&str; 0] = [];
        assert_eq!(
            find_module(&mods, |m| m, "guest.elf").unwrap_err().to_string(),
            "no boot module is named 'guest.elf' (a module's name is its command-line string, e.g. 'guest.elf' in GRUB's 'module2 /boot/guest.elf guest.elf')"
        );
        assert!(find_module(&[""], |m| m, "").is_err());
        assert!(find_module(&["/boot/"], |m| m, "boot").is_err());
        assert!(find_module(&[""], |m| m, "dir/").is_err());
    }

    #[test]
    fn config_modules_are_told_by_their_cfg_suffix() {
        assert!(is_config_module("guest1.cfg"));
        assert!(is_config_module("/boot/guest1.cfg"));
        assert!(is_config_module("GUEST1.CFG"));
        assert!(!is_config_module("guest.elf"));
        assert!(!is_config_module(".cfg"));
        assert!(!is_config_module("/boot/.cfg"));
        assert!(!is_config_module("guest.cfg.gz"));
        assert!(!is_config_module("\u{e9}cfg"));
        assert!(!is_config_module(""));
    }

    // -- properties

    /// What must hold for any text: no panic, and errors that are bounded,
    /// in line order and point inside the file.
    fn check_any(text: &str) -> Result<(), proptest::test_runner::TestCaseError> {
        let lines = text.split('\n').count();
        match parse("p.cfg", text) {
            Ok((c, w)) => {
                proptest::prop_assert!(valid_name(&c.name) && !c.kernel.is_empty());
                proptest::prop_assert!(w.len() <= MAX_WARNINGS + 1);
            }
            Err(e) => {
                proptest::prop_assert!(!e.is_empty() && e.len() <= MAX_ERRORS + 1);
                let order: Vec<_> = e.iter().map(|e| (e.line == 0, e.line)).collect();
                proptest::prop_assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
                for err in &e {
                    proptest::prop_assert!(err.line <= lines, "{err} in {lines} lines");
                    proptest::prop_assert!(err.to_string().starts_with("p.cfg"));
                }
            }
        }
        Ok(())
    }

    /// The realistic example, to be mangled.
    const EXAMPLE: &str = "# a guest\nname = \"edu-guest\"\ntype = \"pvh\"\nkernel = \"xpci.elf\"\n\
                           memory = 64\nvcpus = 1\npci = [ '0000:00:03.0',\n  '00:05.0,permissive=1', ]\n\
                           on_crash = \"destroy\"\nextra = 'loglvl=debug'\n";

    proptest::proptest! {
        #[test]
        fn parse_never_panics_on_arbitrary_text(text in proptest::arbitrary::any::<String>()) {
            check_any(&text)?;
        }

        #[test]
        fn parse_never_panics_on_config_like_text(
            text in "([a-z_]{1,8}|[ =\\[\\]'\",#;@*:.\\\\\t\r\n-]|0x[0-9a-f]{1,3}|[0-9]{1,4}|\u{e9}|\u{0}){0,120}"
        ) {
            check_any(&text)?;
        }

        #[test]
        fn parse_never_panics_on_a_mangled_example(
            edits in proptest::collection::vec(
                (0usize..EXAMPLE.len(), 0usize..4, proptest::sample::select(
                    vec!['[', ']', '\'', '"', ',', '#', '\n', '=', ';', '\\', ' ', 'x', '0', '\u{1}', '\u{e9}']
                )),
                1..6,
            )
        ) {
            let mut text: Vec<char> = EXAMPLE.chars().collect();
            for (at, op, c) in edits {
                let at = at % (text.len() + 1);
                match op {
                    0 => text.insert(at, c),
                    1 if at < text.len() => { text.remove(at); }
                    _ if at < text.len() => text[at] = c,
                    _ => text.push(c),
                }
            }
            check_any(&text.into_iter().collect::<String>())?;
        }

        #[test]
        fn valid_settings_written_in_any_layout_read_back_the_same(
            memory in 1u64..=MAX_MEMORY_MIB,
            vcpus in 1u32..=128,
            hex in proptest::bool::ANY,
            double_quotes in proptest::bool::ANY,
            devices in proptest::collection::btree_map(
                (0u16..=0xffff, 0u8..=0xff, 0u8..32, 0u8..8),
                (proptest::bool::ANY, proptest::bool::ANY, proptest::bool::ANY, proptest::option::of(proptest::bool::ANY)),
                0..6,
            ),
            separators in proptest::collection::vec(proptest::sample::select(vec![" ", "\n", " # c\n", "\n\n  ", ""]), 8),
        ) {
            let q = if double_quotes { '"' } else { '\'' };
            let memory_text = if hex { alloc::format!("0x{memory:x}") } else { memory.to_string() };
            let mut pci = String::from("[");
            let mut expected = Vec::new();
            for (i, ((seg, bus, dev, func), (permissive, seize, power_mgmt, rdm))) in devices.into_iter().enumerate() {
                let sbdf = Sbdf::new(seg, bus, dev, func).unwrap();
                let sep = separators[i % separators.len()];
                let rdm_text = match rdm {
                    Some(true) => ",rdm_policy=strict",
                    Some(false) => ",rdm_policy=relaxed",
                    None => "",
                };
                pci.push_str(&alloc::format!(
                    "{sep}{q}{sbdf},permissive={},seize={},power_mgmt={}{rdm_text}{q},",
                    u8::from(permissive), u8::from(seize), u8::from(power_mgmt)
                ));
                expected.push(PciAssignment {
                    sbdf,
                    permissive,
                    msitranslate: false,
                    seize,
                    power_mgmt,
                    rdm_policy_strict: rdm,
                });
            }
            pci.push_str(separators[0]);
            pci.push(']');
            let text = alloc::format!(
                "name = {q}d{q}\nkernel={q}k{q};memory = {memory_text}\n  vcpus\t= {vcpus} # n\npci = {pci}\n"
            );
            let (c, w) = parse("p.cfg", &text).map_err(|e| {
                proptest::test_runner::TestCaseError::fail(alloc::format!("{text}\n{:?}", messages(&e)))
            })?;
            proptest::prop_assert!(w.is_empty());
            proptest::prop_assert_eq!((c.memory_mib, c.vcpus), (memory, vcpus));
            proptest::prop_assert_eq!(c.pci, expected);
        }
    }
}
