//! What can be wrong with an ACPI table.

use core::fmt;

use super::Signature;

/// A table that could not be read or parsed: which one, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcpiError {
    /// The table's signature (`RSDP` for the root pointer).
    pub table: Signature,
    /// What is wrong.
    pub kind: AcpiErrorKind,
}

/// What is wrong with a table. Offsets are from the start of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcpiErrorKind {
    /// The bytes at this physical address are not readable.
    Unreadable {
        /// Physical address of the first byte.
        address: u64,
        /// How many bytes were needed.
        len: usize,
    },
    /// The table's signature is not the expected one.
    WrongSignature {
        /// The signature found.
        found: Signature,
    },
    /// Fewer bytes than a table header were given.
    HeaderTruncated {
        /// How many bytes there were.
        available: usize,
    },
    /// The header's length field is smaller than the table's fixed part.
    LengthTooSmall {
        /// The length field.
        length: u32,
        /// The smallest valid length for this table.
        minimum: usize,
    },
    /// The header's length field runs past the bytes given.
    LengthBeyondData {
        /// The length field.
        length: u32,
        /// How many bytes there were.
        available: usize,
    },
    /// A checksum that must be good is not.
    BadChecksum,
    /// A field lies past the end of the table.
    OutOfBounds {
        /// Offset of the field.
        offset: usize,
        /// Its size in bytes.
        size: usize,
    },
    /// A structure's length field is smaller than its own header, so the
    /// table cannot be walked further.
    ShorterThanHeader {
        /// What kind of structure ("remapping structure", "MADT entry", ...).
        what: &'static str,
        /// Offset of the structure.
        offset: usize,
        /// Its length field.
        length: usize,
    },
    /// A structure is shorter than the fixed fields of its type.
    ShorterThanType {
        /// What kind of structure ("DRHD", "IOAPIC entry", ...).
        what: &'static str,
        /// Offset of the structure.
        offset: usize,
        /// Its length field.
        length: usize,
        /// The length its type needs.
        minimum: usize,
    },
    /// A structure's length runs past the end of its container.
    Overrun {
        /// What kind of structure.
        what: &'static str,
        /// Offset of the structure.
        offset: usize,
        /// Its length field.
        length: usize,
        /// Bytes left in the container at that offset.
        remaining: usize,
    },
    /// Bytes at the end of the table too few for another structure header.
    TrailingBytes {
        /// What kind of structure was expected.
        what: &'static str,
        /// Offset of the leftover bytes.
        offset: usize,
        /// How many there are.
        count: usize,
    },
    /// A device entry type whose length cannot be known.
    UnknownEntryLength {
        /// What kind of entry.
        what: &'static str,
        /// Offset of the entry.
        offset: usize,
        /// Its type byte.
        entry_type: u8,
    },
    /// A field holds a value that makes no sense.
    Invalid {
        /// What kind of structure.
        what: &'static str,
        /// Offset of the structure.
        offset: usize,
        /// What is wrong with it.
        problem: &'static str,
    },
}

impl AcpiError {
    /// An error about `table`.
    pub const fn new(table: Signature, kind: AcpiErrorKind) -> Self {
        Self { table, kind }
    }
}

impl fmt::Display for AcpiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.table, self.kind)
    }
}

impl fmt::Display for AcpiErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Unreadable { address, len } => {
                write!(f, "{len} bytes at {address:#x} are not readable")
            }
            Self::WrongSignature { found } => write!(f, "wrong signature \"{found}\""),
            Self::HeaderTruncated { available } => {
                write!(f, "only {available} bytes, shorter than a table header")
            }
            Self::LengthTooSmall { length, minimum } => write!(
                f,
                "length {length:#x} is shorter than the {minimum:#x} bytes of its fixed fields"
            ),
            Self::LengthBeyondData { length, available } => write!(
                f,
                "length {length:#x} runs past the {available:#x} bytes available"
            ),
            Self::BadChecksum => f.write_str("bad checksum"),
            Self::OutOfBounds { offset, size } => write!(
                f,
                "{size}-byte field at offset {offset:#x} lies past the end of the table"
            ),
            Self::ShorterThanHeader {
                what,
                offset,
                length,
            } => write!(
                f,
                "{what} at offset {offset:#x} has length {length:#04x}, shorter than its header"
            ),
            Self::ShorterThanType {
                what,
                offset,
                length,
                minimum,
            } => write!(
                f,
                "{what} at offset {offset:#x} has length {length:#04x}, \
                 shorter than the {minimum:#04x} bytes of its type"
            ),
            Self::Overrun {
                what,
                offset,
                length,
                remaining,
            } => write!(
                f,
                "{what} at offset {offset:#x} has length {length:#04x} \
                 but only {remaining:#04x} bytes remain"
            ),
            Self::TrailingBytes {
                what,
                offset,
                count,
            } => write!(
                f,
                "{count} stray bytes at offset {offset:#x}, too few for a {what}"
            ),
            Self::UnknownEntryLength {
                what,
                offset,
                entry_type,
            } => write!(
                f,
                "{what} at offset {offset:#x} has type {entry_type:#04x}, whose length is unknown"
            ),
            Self::Invalid {
                what,
                offset,
                problem,
            } => write!(f, "{what} at offset {offset:#x}: {problem}"),
        }
    }
}
