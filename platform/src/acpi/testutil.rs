//! Builders for synthetic ACPI tables.

use alloc::vec::Vec;

/// A table with signature `sig`, revision `revision` and `body` after the
/// header, with a correct length and checksum.
pub(crate) fn table(sig: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(sig);
    t.extend_from_slice(&0u32.to_le_bytes());
    t.push(revision);
    t.push(0);
    t.extend_from_slice(b"HVTEST");
    t.extend_from_slice(b"PLATFORM");
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(b"HVTC");
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(body);
    seal(&mut t);
    t
}

/// Sets the length field to the table's size and fixes the checksum.
pub(crate) fn seal(t: &mut [u8]) {
    let len = u32::try_from(t.len()).unwrap();
    t[4..8].copy_from_slice(&len.to_le_bytes());
    t[9] = 0;
    t[9] = 0u8.wrapping_sub(super::checksum(t));
}

/// Little-endian field appenders for building table bodies.
pub(crate) trait Put {
    fn u8(&mut self, v: u8) -> &mut Self;
    fn u16(&mut self, v: u16) -> &mut Self;
    fn u32(&mut self, v: u32) -> &mut Self;
    fn u64(&mut self, v: u64) -> &mut Self;
    fn raw(&mut self, v: &[u8]) -> &mut Self;
    /// A generic address structure.
    fn gas(&mut self, space: u8, bits: u8, access: u8, addr: u64) -> &mut Self {
        self.u8(space).u8(bits).u8(0).u8(access).u64(addr)
    }
}

impl Put for Vec<u8> {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.push(v);
        self
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.extend_from_slice(v);
        self
    }
}

/// Bytes from hex digits; whitespace is ignored.
pub(crate) fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(core::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}
