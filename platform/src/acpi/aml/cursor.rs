//! A bounded position in one table's AML: every read checks the end of the
//! object being read, never just the end of the table.

use alloc::vec::Vec;

use super::error::{AmlError, AmlErrorKind};
use super::name::{NameSeg, NameString};

/// Nesting limit for scopes, packages and expressions, so a hostile table
/// cannot exhaust the stack.
pub(crate) const MAX_DEPTH: usize = 48;

/// `\`: the name starts at the root.
pub(crate) const ROOT_CHAR: u8 = 0x5c;
/// `^`: one scope up.
pub(crate) const PARENT_PREFIX: u8 = 0x5e;
/// Two name segments follow.
pub(crate) const DUAL_NAME_PREFIX: u8 = 0x2e;
/// A count, then that many name segments.
pub(crate) const MULTI_NAME_PREFIX: u8 = 0x2f;

/// Whether `b` may start a NameString.
pub(crate) fn starts_name(b: u8) -> bool {
    matches!(
        b,
        ROOT_CHAR | PARENT_PREFIX | DUAL_NAME_PREFIX | MULTI_NAME_PREFIX | b'A'..=b'Z' | b'_'
    )
}

/// A position `pos` in `aml` that may not pass `end`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cursor<'a> {
    /// The whole table, header included (offsets are into it).
    pub aml: &'a [u8],
    /// Which table (for errors).
    pub table: usize,
    /// The next byte to read.
    pub pos: usize,
    /// One past the last byte of the current object.
    pub end: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor over `aml[pos..end]`; `end` is clamped to the table.
    pub fn new(aml: &'a [u8], table: usize, pos: usize, end: usize) -> Self {
        Self {
            aml,
            table,
            pos,
            end: end.min(aml.len()),
        }
    }

    /// A cursor over `pos..end` of the same table.
    pub fn sub(&self, pos: usize, end: usize) -> Self {
        Self::new(self.aml, self.table, pos, end)
    }

    /// An error at `offset`.
    pub fn error_at(&self, offset: usize, kind: AmlErrorKind) -> AmlError {
        AmlError {
            table: self.table,
            offset,
            kind,
        }
    }

    /// An error at the current position.
    pub fn error(&self, kind: AmlErrorKind) -> AmlError {
        self.error_at(self.pos, kind)
    }

    /// Whether the object is read to its end.
    pub fn at_end(&self) -> bool {
        self.pos >= self.end
    }

    /// The next byte, without consuming it.
    pub fn peek(&self) -> Option<u8> {
        if self.pos < self.end {
            self.aml.get(self.pos).copied()
        } else {
            None
        }
    }

    /// The byte after the next one, without consuming anything.
    pub fn peek2(&self) -> Option<u8> {
        let at = self.pos.checked_add(1)?;
        if at < self.end {
            self.aml.get(at).copied()
        } else {
            None
        }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], AmlError> {
        let stop = self
            .pos
            .checked_add(n)
            .filter(|&s| s <= self.end)
            .ok_or(self.error(AmlErrorKind::Truncated))?;
        let bytes = self
            .aml
            .get(self.pos..stop)
            .ok_or(self.error(AmlErrorKind::Truncated))?;
        self.pos = stop;
        Ok(bytes)
    }

    /// The next byte.
    pub fn byte(&mut self) -> Result<u8, AmlError> {
        Ok(self.take(1)?[0])
    }

    /// A little-endian integer of `n` (at most 8) bytes.
    pub fn le(&mut self, n: usize) -> Result<u64, AmlError> {
        let bytes = self.take(n)?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// Reads a PkgLength and returns the offset one past the object it
    /// measures (the length counts from the PkgLength's own first byte).
    pub fn pkg_length(&mut self) -> Result<usize, AmlError> {
        let start = self.pos;
        let lead = self.byte()?;
        let follow = usize::from(lead >> 6);
        let len = if follow == 0 {
            usize::from(lead & 0x3f)
        } else {
            if lead & 0x30 != 0 {
                return Err(self.error_at(start, AmlErrorKind::BadPkgLength));
            }
            let rest = self.le(follow)?;
            let rest = usize::try_from(rest).unwrap_or(usize::MAX >> 8);
            usize::from(lead & 0x0f) | (rest << 4)
        };
        if len < 1 + follow {
            return Err(self.error_at(start, AmlErrorKind::BadPkgLength));
        }
        match start.checked_add(len) {
            Some(end) if end <= self.end => Ok(end),
            _ => Err(self.error_at(start, AmlErrorKind::BadPkgLength)),
        }
    }

    /// One four-character name segment.
    pub fn name_seg(&mut self) -> Result<NameSeg, AmlError> {
        let at = self.pos;
        let bytes = self.take(4)?;
        let seg = [bytes[0], bytes[1], bytes[2], bytes[3]];
        NameSeg::new(seg).ok_or(self.error_at(at, AmlErrorKind::BadName))
    }

    /// A NameString: an optional root or parent prefixes, then a null
    /// name, one segment, two (dual prefix) or a counted list (multi).
    pub fn name_string(&mut self) -> Result<NameString, AmlError> {
        let at = self.pos;
        let mut root = false;
        let mut parents = 0u8;
        if self.peek() == Some(ROOT_CHAR) {
            self.pos += 1;
            root = true;
        } else {
            while self.peek() == Some(PARENT_PREFIX) {
                self.pos += 1;
                parents = parents
                    .checked_add(1)
                    .ok_or(self.error_at(at, AmlErrorKind::BadName))?;
            }
        }
        let count = match self.peek() {
            Some(0) => {
                self.pos += 1;
                0
            }
            Some(DUAL_NAME_PREFIX) => {
                self.pos += 1;
                2
            }
            Some(MULTI_NAME_PREFIX) => {
                self.pos += 1;
                let n = self.byte()?;
                if n == 0 {
                    return Err(self.error_at(at, AmlErrorKind::BadName));
                }
                usize::from(n)
            }
            Some(b'A'..=b'Z' | b'_') => 1,
            Some(_) => return Err(self.error_at(at, AmlErrorKind::BadName)),
            None => return Err(self.error_at(at, AmlErrorKind::Truncated)),
        };
        let mut segs = Vec::with_capacity(count);
        for _ in 0..count {
            segs.push(self.name_seg()?);
        }
        Ok(NameString {
            root,
            parents,
            segs,
        })
    }
}
