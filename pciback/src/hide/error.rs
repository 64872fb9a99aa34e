//! What can be wrong with a piece of a `pciback.hide=` value, in words a
//! user can act on.

use alloc::string::String;
use core::fmt;

/// One of the four numbers of an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// The segment (`dddd` in `dddd:bb:dd.f`).
    Segment,
    /// The bus (`bb`).
    Bus,
    /// The device or slot (`dd`).
    Device,
    /// The function (`f`).
    Function,
}

impl Field {
    /// The largest accepted value.
    pub const fn max(self) -> u32 {
        match self {
            Self::Segment => 0xffff,
            Self::Bus => 0xff,
            Self::Device => 0x1f,
            Self::Function => 7,
        }
    }

    /// The most hexadecimal digits accepted.
    pub const fn max_digits(self) -> usize {
        match self {
            Self::Segment => 4,
            Self::Bus | Self::Device => 2,
            Self::Function => 1,
        }
    }

    /// Whether `*` is accepted.
    pub const fn wildcard_allowed(self) -> bool {
        matches!(self, Self::Device | Self::Function)
    }

    const fn name(self) -> &'static str {
        match self {
            Self::Segment => "segment",
            Self::Bus => "bus",
            Self::Device => "device",
            Self::Function => "function",
        }
    }

    const fn range(self) -> &'static str {
        match self {
            Self::Segment => "0000..ffff",
            Self::Bus => "00..ff",
            Self::Device => "00..1f",
            Self::Function => "0..7",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a piece of the value was ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HideErrorKind {
    /// A `(` without its `)`: the entry is the rest of the value.
    Unterminated,
    /// A `(` inside an entry, before its `)`.
    Nested,
    /// Text outside parentheses, up to the next `(`.
    Stray,
    /// `()`.
    Empty,
    /// Not one or two `:` in the address.
    WrongColons {
        /// How many there were.
        colons: usize,
    },
    /// No `.` between device and function.
    MissingDot,
    /// A number is empty, as in `(00:.0)`.
    MissingNumber {
        /// Which number.
        field: Field,
    },
    /// A number has a character that is not a hexadecimal digit.
    NotHex {
        /// Which number.
        field: Field,
        /// The number as written.
        digits: String,
    },
    /// A number is larger than its field allows.
    OutOfRange {
        /// Which number.
        field: Field,
        /// The number as written.
        digits: String,
    },
    /// A number in range, written with more digits than its field has.
    TooManyDigits {
        /// Which number.
        field: Field,
        /// The number as written.
        digits: String,
    },
    /// `*` for the segment or the bus.
    Wildcard {
        /// Which number.
        field: Field,
    },
    /// Parsing one [`HidePattern`](super::HidePattern): no entry at all.
    NoEntry,
    /// Parsing one [`HidePattern`](super::HidePattern): a second piece of
    /// text after the entry.
    ExtraEntry,
}

const FORMS: &str = "expected '(bb:dd.f)' or '(dddd:bb:dd.f)'";

impl fmt::Display for HideErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unterminated => {
                f.write_str("no closing ')': the entry runs to the end of the option")
            }
            Self::Nested => f.write_str("'(' inside an entry: is this entry's ')' missing?"),
            Self::Stray => write!(
                f,
                "text outside parentheses: each address goes in its own parentheses, \
                 like '(00:03.0)' or '(0000:00:03.0)', separated by spaces"
            ),
            Self::Empty => write!(f, "empty entry: {FORMS}"),
            Self::WrongColons { colons: 0 } => write!(f, "no ':' in the address: {FORMS}"),
            Self::WrongColons { colons } => {
                write!(f, "{colons} ':' in the address, at most 2: {FORMS}")
            }
            Self::MissingDot => write!(f, "no '.' between device and function: {FORMS}"),
            Self::MissingNumber { field } => write!(f, "the {field} number is missing: {FORMS}"),
            Self::NotHex { field, digits } => {
                write!(f, "{field} '")?;
                write_quoted(f, digits)?;
                write!(f, "' is not a hexadecimal number {}", field.range())?;
                if digits.starts_with("0x") || digits.starts_with("0X") {
                    f.write_str(" (write it without '0x')")?;
                }
                Ok(())
            }
            Self::OutOfRange { field, digits } => {
                write!(f, "{field} '{digits}' is out of range {}", field.range())
            }
            Self::TooManyDigits { field, digits } => {
                let max = field.max_digits();
                let s = if max == 1 { "" } else { "s" };
                write!(
                    f,
                    "{field} '{digits}' has more than {max} hexadecimal digit{s}"
                )
            }
            Self::Wildcard { field } => write!(
                f,
                "'*' is not accepted for the {field}: only the device and the function may be '*'"
            ),
            Self::NoEntry => write!(f, "no entry: {FORMS}"),
            Self::ExtraEntry => f.write_str("a second entry where exactly one was expected"),
        }
    }
}

/// A piece of a `pciback.hide=` value that was ignored, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HideError {
    /// Byte offset of `text` in the option value, 0-based. The message shows
    /// it 1-based, as a column.
    pub position: usize,
    /// The offending entry or stray text as written.
    pub text: String,
    /// What is wrong with it.
    pub reason: HideErrorKind,
}

impl fmt::Display for HideError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, consequence) = match self.reason {
            HideErrorKind::Stray => ("text", "; text skipped, the entries still apply"),
            HideErrorKind::NoEntry => ("text", ""),
            HideErrorKind::ExtraEntry => ("entry", ""),
            _ => ("entry", "; entry ignored, the others still apply"),
        };
        write!(f, "pciback.hide: {what} '")?;
        write_quoted(f, &self.text)?;
        write!(
            f,
            "' at column {}: {}{consequence}",
            self.position + 1,
            self.reason
        )
    }
}

/// Writes user text for a log line: control characters escaped, long text
/// cut short.
fn write_quoted(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    const MAX_CHARS: usize = 60;
    for (i, c) in text.chars().enumerate() {
        if i == MAX_CHARS {
            return f.write_str("...");
        }
        if c.is_control() {
            write!(f, "{}", c.escape_default())?;
        } else {
            write!(f, "{c}")?;
        }
    }
    Ok(())
}
