//! What can be wrong with AML, and where.

use core::fmt;

/// AML that could not be read: in which table, at which offset, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AmlError {
    /// The table: 0 for the DSDT, `i + 1` for the `i`th SSDT given.
    pub table: usize,
    /// Offset from the start of the table, header included.
    pub offset: usize,
    /// What is wrong.
    pub kind: AmlErrorKind,
}

/// What is wrong with the AML at an [`AmlError`]'s offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmlErrorKind {
    /// The table is shorter than its header, or its length field does not
    /// match the bytes given.
    BadTableHeader,
    /// An object runs past the end of the object or table that holds it.
    Truncated,
    /// A `PkgLength` that is malformed (reserved bits set, shorter than
    /// itself) or reaches past its container.
    BadPkgLength,
    /// A name that does not follow the NameString grammar.
    BadName,
    /// An opcode the reader does not know (extended opcodes are `0x5bxx`).
    UnknownOpcode(u16),
    /// Objects nested deeper than the reader follows.
    TooDeep,
    /// Something that must be data (a `Name`'s value, a package element)
    /// is an expression or an opcode that is not data.
    NotData,
    /// No `_PRT` was found under a PCI host bridge.
    NoRootPrt,
    /// The `_PRT` is a method from which no returned package could be
    /// found statically.
    NoStaticPrt,
    /// A routing table entry that is not `{Address, Pin, Source,
    /// SourceIndex}` with the right types and ranges.
    BadPrtEntry(&'static str),
}

impl fmt::Display for AmlErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadTableHeader => write!(f, "bad table header"),
            Self::Truncated => write!(f, "object runs past its container"),
            Self::BadPkgLength => write!(f, "bad PkgLength"),
            Self::BadName => write!(f, "bad NameString"),
            Self::UnknownOpcode(op) => write!(f, "unknown opcode {op:#x}"),
            Self::TooDeep => write!(f, "objects nested too deeply"),
            Self::NotData => write!(f, "expected data, found an expression"),
            Self::NoRootPrt => write!(f, "no _PRT under a PCI host bridge"),
            Self::NoStaticPrt => write!(f, "_PRT returns no package found statically"),
            Self::BadPrtEntry(why) => write!(f, "bad _PRT entry: {why}"),
        }
    }
}

impl fmt::Display for AmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let table = match self.table {
            0 => "DSDT",
            _ => "SSDT",
        };
        if self.table > 0 {
            write!(
                f,
                "{table} #{} +{:#x}: {}",
                self.table, self.offset, self.kind
            )
        } else {
            write!(f, "{table} +{:#x}: {}", self.offset, self.kind)
        }
    }
}
