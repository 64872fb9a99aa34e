//! The common table header, bounds-checked field access, and the walk over a
//! list of variable-length structures that MADT, DMAR and IVRS share.

use core::fmt;
use core::ops::Range;

use super::{checksum, AcpiError, AcpiErrorKind, IdText, Signature};

/// Size of the system description table header.
pub const SDT_HEADER_LEN: usize = 36;

/// The header every system description table starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdtHeader {
    /// The table's signature.
    pub signature: Signature,
    /// Length of the whole table in bytes, header included.
    pub length: u32,
    /// Table revision.
    pub revision: u8,
    /// OEM ID.
    pub oem_id: [u8; 6],
    /// OEM table ID.
    pub oem_table_id: [u8; 8],
    /// OEM revision.
    pub oem_revision: u32,
    /// ID of the tool that made the table.
    pub creator_id: [u8; 4],
    /// Revision of that tool.
    pub creator_revision: u32,
    /// Whether all `length` bytes sum to zero.
    pub checksum_ok: bool,
}

impl SdtHeader {
    /// Reads a header from the first bytes of `bytes` without checking the
    /// signature or the length against the data (the checksum is computed
    /// over the bytes present if the table is shorter than its length).
    pub fn peek(bytes: &[u8]) -> Result<Self, AcpiError> {
        let table = Signature(
            bytes
                .get(0..4)
                .and_then(|s| s.try_into().ok())
                .unwrap_or(*b"????"),
        );
        let head: &[u8; SDT_HEADER_LEN] = bytes
            .get(..SDT_HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(AcpiError::new(
                table,
                AcpiErrorKind::HeaderTruncated {
                    available: bytes.len(),
                },
            ))?;
        let le32 = |o: usize| u32::from_le_bytes([head[o], head[o + 1], head[o + 2], head[o + 3]]);
        let length = le32(4);
        let covered = usize::try_from(length)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let mut oem_id = [0; 6];
        oem_id.copy_from_slice(&head[10..16]);
        let mut oem_table_id = [0; 8];
        oem_table_id.copy_from_slice(&head[16..24]);
        let mut creator_id = [0; 4];
        creator_id.copy_from_slice(&head[28..32]);
        Ok(Self {
            signature: table,
            length,
            revision: head[8],
            oem_id,
            oem_table_id,
            oem_revision: le32(24),
            creator_id,
            creator_revision: le32(32),
            checksum_ok: bytes.get(..covered).is_some_and(|t| checksum(t) == 0),
        })
    }

    /// Checks the header of a table that must have signature `sig` and at
    /// least `minimum` bytes, and returns it with exactly the table's bytes
    /// (the length field's worth, which must all be present).
    pub(crate) fn check<'a>(
        sig: Signature,
        bytes: &'a [u8],
        minimum: usize,
    ) -> Result<(Self, Reader<'a>), AcpiError> {
        let err = |kind| AcpiError::new(sig, kind);
        let header = Self::peek(bytes).map_err(|e| err(e.kind))?;
        if header.signature != sig {
            return Err(err(AcpiErrorKind::WrongSignature {
                found: header.signature,
            }));
        }
        let length = usize::try_from(header.length).unwrap_or(usize::MAX);
        if length < minimum.max(SDT_HEADER_LEN) {
            return Err(err(AcpiErrorKind::LengthTooSmall {
                length: header.length,
                minimum: minimum.max(SDT_HEADER_LEN),
            }));
        }
        let data = bytes
            .get(..length)
            .ok_or(err(AcpiErrorKind::LengthBeyondData {
                length: header.length,
                available: bytes.len(),
            }))?;
        Ok((header, Reader::new(sig, data)))
    }

    /// One line: signature, length, revision, OEM IDs and checksum state.
    pub fn summary(&self) -> HeaderSummary<'_> {
        HeaderSummary(self)
    }
}

/// [`SdtHeader::summary`] as text.
#[derive(Debug)]
pub struct HeaderSummary<'a>(&'a SdtHeader);

impl fmt::Display for HeaderSummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = self.0;
        write!(
            f,
            "{} len {:#x} rev {} OEM \"{}\" \"{}\"{}",
            h.signature,
            h.length,
            h.revision,
            IdText(&h.oem_id),
            IdText(&h.oem_table_id),
            if h.checksum_ok { "" } else { " BAD CHECKSUM" }
        )
    }
}

/// Little-endian field access into one table's bytes; every access is
/// bounds-checked and an out-of-range one is an error naming the table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader<'a> {
    sig: Signature,
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(sig: Signature, data: &'a [u8]) -> Self {
        Self { sig, data }
    }

    pub(crate) fn len(&self) -> usize {
        self.data.len()
    }

    pub(crate) fn error(&self, kind: AcpiErrorKind) -> AcpiError {
        AcpiError::new(self.sig, kind)
    }

    pub(crate) fn bytes(&self, offset: usize, size: usize) -> Result<&'a [u8], AcpiError> {
        offset
            .checked_add(size)
            .and_then(|end| self.data.get(offset..end))
            .ok_or(self.error(AcpiErrorKind::OutOfBounds { offset, size }))
    }

    pub(crate) fn array<const N: usize>(&self, offset: usize) -> Result<[u8; N], AcpiError> {
        let mut out = [0; N];
        out.copy_from_slice(self.bytes(offset, N)?);
        Ok(out)
    }

    pub(crate) fn u8(&self, offset: usize) -> Result<u8, AcpiError> {
        Ok(self.array::<1>(offset)?[0])
    }

    pub(crate) fn u16(&self, offset: usize) -> Result<u16, AcpiError> {
        Ok(u16::from_le_bytes(self.array(offset)?))
    }

    pub(crate) fn u32(&self, offset: usize) -> Result<u32, AcpiError> {
        Ok(u32::from_le_bytes(self.array(offset)?))
    }

    pub(crate) fn u64(&self, offset: usize) -> Result<u64, AcpiError> {
        Ok(u64::from_le_bytes(self.array(offset)?))
    }

    pub(crate) fn gas(&self, offset: usize) -> Result<GenericAddress, AcpiError> {
        Ok(GenericAddress {
            space: AddressSpace::from(self.u8(offset)?),
            bit_width: self.u8(offset + 1)?,
            bit_offset: self.u8(offset + 2)?,
            access_size: self.u8(offset + 3)?,
            address: self.u64(offset + 4)?,
        })
    }

    /// A reader over the first `end` bytes only; offsets stay the same.
    pub(crate) fn prefix(&self, end: usize) -> Result<Reader<'a>, AcpiError> {
        Ok(Reader::new(self.sig, self.bytes(0, end)?))
    }

    /// A reader over `size` bytes at `offset`, for one structure; its
    /// offsets are relative to the structure.
    pub(crate) fn sub(&self, offset: usize, size: usize) -> Result<Reader<'a>, AcpiError> {
        Ok(Reader::new(self.sig, self.bytes(offset, size)?))
    }
}

/// How a list of structures encodes each structure's header.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StructLayout {
    /// Name for errors ("MADT entry", "remapping structure").
    pub(crate) what: &'static str,
    /// Size of the header (type and length fields).
    pub(crate) header_len: usize,
    /// Offset and size (1 or 2 bytes) of the type field.
    pub(crate) type_at: (usize, usize),
    /// Offset and size (1 or 2 bytes) of the length field.
    pub(crate) length_at: (usize, usize),
}

impl StructLayout {
    fn field(r: &Reader<'_>, off: usize, (at, size): (usize, usize)) -> Result<u16, AcpiError> {
        if size == 1 {
            r.u8(off + at).map(u16::from)
        } else {
            r.u16(off + at)
        }
    }
}

/// Calls `each(offset, type, structure)` for every structure in `range` of
/// `r`, where `offset` is the structure's offset in `r` and `structure`
/// covers exactly the structure's length. A length below the header, past the end, or leftover bytes too
/// few for a header stop the walk with an error.
pub(crate) fn walk_structures<'a>(
    r: &Reader<'a>,
    range: Range<usize>,
    layout: StructLayout,
    mut each: impl FnMut(usize, u16, Reader<'a>) -> Result<(), AcpiError>,
) -> Result<(), AcpiError> {
    let end = range.end.min(r.len());
    let mut off = range.start;
    while off < end {
        let remaining = end - off;
        if remaining < layout.header_len {
            return Err(r.error(AcpiErrorKind::TrailingBytes {
                what: layout.what,
                offset: off,
                count: remaining,
            }));
        }
        let ty = StructLayout::field(r, off, layout.type_at)?;
        let length = usize::from(StructLayout::field(r, off, layout.length_at)?);
        if length < layout.header_len {
            return Err(r.error(AcpiErrorKind::ShorterThanHeader {
                what: layout.what,
                offset: off,
                length,
            }));
        }
        if length > remaining {
            return Err(r.error(AcpiErrorKind::Overrun {
                what: layout.what,
                offset: off,
                length,
                remaining,
            }));
        }
        each(off, ty, r.sub(off, length)?)?;
        off += length;
    }
    Ok(())
}

/// Checks that a structure of kind `what` at `offset` (in its table) is at
/// least `minimum` bytes long.
pub(crate) fn need(
    s: &Reader<'_>,
    what: &'static str,
    offset: usize,
    minimum: usize,
) -> Result<(), AcpiError> {
    if s.len() < minimum {
        Err(s.error(AcpiErrorKind::ShorterThanType {
            what,
            offset,
            length: s.len(),
            minimum,
        }))
    } else {
        Ok(())
    }
}

/// The address space of a [`GenericAddress`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressSpace {
    /// System memory.
    Memory,
    /// System I/O ports.
    Io,
    /// PCI configuration space.
    PciConfig,
    /// Embedded controller.
    EmbeddedController,
    /// SMBus.
    SmBus,
    /// Functional fixed hardware.
    FixedHardware,
    /// Any other value.
    Other(u8),
}

impl From<u8> for AddressSpace {
    fn from(v: u8) -> Self {
        match v {
            0 => Self::Memory,
            1 => Self::Io,
            2 => Self::PciConfig,
            3 => Self::EmbeddedController,
            4 => Self::SmBus,
            0x7f => Self::FixedHardware,
            other => Self::Other(other),
        }
    }
}

/// A generic address structure: where a register lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GenericAddress {
    /// Which address space.
    pub space: AddressSpace,
    /// Register width in bits.
    pub bit_width: u8,
    /// Offset of the register within the addressed unit, in bits.
    pub bit_offset: u8,
    /// Access size: 0 undefined, 1 byte, 2 word, 3 dword, 4 qword.
    pub access_size: u8,
    /// The address.
    pub address: u64,
}

impl GenericAddress {
    /// Whether the structure is all zero, which means "not present".
    pub fn is_null(&self) -> bool {
        self.address == 0 && self.bit_width == 0
    }
}

impl fmt::Display for GenericAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.space {
            AddressSpace::Memory => write!(f, "mem {:#x}", self.address),
            AddressSpace::Io => write!(f, "io {:#x}", self.address),
            AddressSpace::PciConfig => write!(f, "pci-config {:#x}", self.address),
            AddressSpace::EmbeddedController => write!(f, "ec {:#x}", self.address),
            AddressSpace::SmBus => write!(f, "smbus {:#x}", self.address),
            AddressSpace::FixedHardware => write!(f, "ffh {:#x}", self.address),
            AddressSpace::Other(s) => write!(f, "space {s:#x} {:#x}", self.address),
        }?;
        if self.bit_width != 0 {
            write!(f, " ({} bits)", self.bit_width)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::testutil::table;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn header_fields_and_checksum_are_read() {
        let t = table(b"TEST", 2, &[1, 2, 3]);
        let h = SdtHeader::peek(&t).unwrap();
        assert_eq!(h.signature, Signature(*b"TEST"));
        assert_eq!(h.length, 39);
        assert_eq!(h.revision, 2);
        assert!(h.checksum_ok);
        assert_eq!(&h.oem_id, b"HVTEST");
        let mut bad = t.clone();
        bad[37] ^= 1;
        assert!(!SdtHeader::peek(&bad).unwrap().checksum_ok);
        assert!(h.summary().to_string().starts_with("TEST len 0x27 rev 2"));
    }

    #[test]
    fn check_rejects_short_wrong_and_truncated_tables() {
        let t = table(b"TEST", 1, &[0; 4]);
        let sig = Signature(*b"TEST");
        assert!(SdtHeader::check(sig, &t, 40).is_ok());
        assert_eq!(
            SdtHeader::check(sig, &t, 44).unwrap_err().kind,
            AcpiErrorKind::LengthTooSmall {
                length: 40,
                minimum: 44
            }
        );
        assert_eq!(
            SdtHeader::check(Signature(*b"APIC"), &t, 36)
                .unwrap_err()
                .kind,
            AcpiErrorKind::WrongSignature { found: sig }
        );
        assert_eq!(
            SdtHeader::check(sig, &t[..39], 36).unwrap_err().kind,
            AcpiErrorKind::LengthBeyondData {
                length: 40,
                available: 39
            }
        );
        assert_eq!(
            SdtHeader::check(sig, &t[..10], 36).unwrap_err().to_string(),
            "TEST: only 10 bytes, shorter than a table header"
        );
    }

    #[test]
    fn structure_walk_stops_on_bad_lengths() {
        let layout = StructLayout {
            what: "entry",
            header_len: 2,
            type_at: (0, 1),
            length_at: (1, 1),
        };
        let sig = Signature(*b"TEST");
        let walk = |data: &[u8]| {
            let mut seen = vec![];
            walk_structures(
                &Reader::new(sig, data),
                0..data.len(),
                layout,
                |off, ty, s| {
                    seen.push((off, ty, s.len()));
                    Ok(())
                },
            )
            .map(|()| seen)
        };
        assert_eq!(walk(&[1, 2, 7, 3, 0]).unwrap(), vec![(0, 1, 2), (2, 7, 3)]);
        assert_eq!(
            walk(&[1, 1]).unwrap_err().kind,
            AcpiErrorKind::ShorterThanHeader {
                what: "entry",
                offset: 0,
                length: 1
            }
        );
        assert_eq!(
            walk(&[1, 2, 1, 4, 0]).unwrap_err().to_string(),
            "TEST: entry at offset 0x2 has length 0x04 but only 0x03 bytes remain"
        );
        assert_eq!(
            walk(&[1, 2, 9]).unwrap_err().kind,
            AcpiErrorKind::TrailingBytes {
                what: "entry",
                offset: 2,
                count: 1
            }
        );
    }

    #[test]
    fn reader_bounds_are_checked() {
        let r = Reader::new(Signature(*b"TEST"), &[1, 2, 3, 4, 5]);
        assert_eq!(r.u32(1).unwrap(), 0x0504_0302);
        assert_eq!(
            r.u32(2).unwrap_err().kind,
            AcpiErrorKind::OutOfBounds { offset: 2, size: 4 }
        );
        assert!(r.bytes(usize::MAX, 2).is_err());
    }
}
