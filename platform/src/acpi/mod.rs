//! ACPI tables: finding the RSDP, walking the RSDT/XSDT and parsing the
//! tables the hypervisor needs (MADT, MCFG, FADT, HPET, DMAR, IVRS).
//!
//! Every parser takes the bytes of one whole table, header included, and
//! returns an owning struct or an [`AcpiError`] that names the table and
//! what is wrong with it. Nothing here trusts a length or a pointer: firmware
//! tables describe the machine but may be truncated or garbage, and a bad
//! table is an error value, never a panic.
//!
//! Memory is reached through the [`PhysMemory`] seam: the hypervisor reads
//! its identity-mapped physical memory ([`IdentityMapped`]),
//! tests use a [`SparseMemory`] built from byte vectors.

use alloc::vec::Vec;
use core::fmt;
use vmm_glue::compact::VecMap;

pub mod aml;
mod dmar;
mod error;
mod fadt;
mod hpet;
#[allow(unsafe_code)]
mod identity;
mod ivrs;
mod madt;
mod mcfg;
mod root;
mod rsdp;
mod sdt;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
pub(crate) mod testutil;

pub use dmar::{
    Andd, Atsr, DeviceScope, Dmar, DmarFlags, Drhd, PathEntry, RemappingStructure, Rhsa, Rmrr,
    Satc, ScopeError, ScopeType,
};
pub use error::{AcpiError, AcpiErrorKind};
pub use fadt::{Fadt, FadtFlags, IapcBootArch};
pub use hpet::Hpet;
pub use identity::IdentityMapped;
pub use ivrs::{
    Ivhd, IvhdDeviceRange, IvhdEntry, Ivmd, Ivrs, IvrsBlock, SpecialVariety, IVHD_LEGACY,
    IVHD_MIXED, IVHD_WITH_EFR,
};
pub use madt::{
    InterruptOverride, IntiFlags, IoApic, LocalApic, LocalApicNmi, LocalX2Apic, LocalX2ApicNmi,
    Madt, MadtEntry, NmiSource, Polarity, Trigger,
};
pub use mcfg::{Mcfg, McfgAllocation};
pub use root::{EntryError, Finding, Note, RootKind, RootTable, TableInfo};
pub use rsdp::{bios_search_ranges, ebda_search_range, find_rsdp, Rsdp};
pub use sdt::{AddressSpace, GenericAddress, HeaderSummary, SdtHeader, SDT_HEADER_LEN};

/// Read access to physical memory, as the ACPI code needs it.
pub trait PhysMemory {
    /// The `len` bytes at physical address `pa`, or `None` if any of them is
    /// not readable.
    fn read(&self, pa: u64, len: usize) -> Option<&[u8]>;
}

/// A table signature such as `APIC` or `DMAR`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Signature(pub [u8; 4]);

impl Signature {
    /// The pseudo-signature used in errors about the RSDP.
    pub const RSDP: Signature = Signature(*b"RSDP");
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", char::from(b))?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature(\"{self}\")")
    }
}

/// A parser for one table type, so callers can write
/// `root.parse::<Madt>(mem)`.
pub trait AcpiTable: Sized {
    /// The signature the table is found under.
    const SIGNATURE: Signature;

    /// Parses the bytes of a whole table, header included.
    fn parse(bytes: &[u8]) -> Result<Self, AcpiError>;
}

/// Physical memory made of byte vectors at given addresses, for tests and
/// for tables that were copied somewhere before being parsed.
#[derive(Clone, Debug, Default)]
pub struct SparseMemory {
    regions: VecMap<u64, Vec<u8>>,
}

impl SparseMemory {
    /// Memory where nothing is readable.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `bytes` readable at `pa`, replacing a region that started at the
    /// same address. Regions should not overlap; a read is served by the
    /// region starting at or below it that is closest to it.
    pub fn insert(&mut self, pa: u64, bytes: Vec<u8>) {
        self.regions.insert(pa, bytes);
    }

    /// Writes `bytes` into existing regions at `pa`; returns false (and
    /// writes nothing) if they are not all inside one region.
    pub fn write(&mut self, pa: u64, bytes: &[u8]) -> bool {
        let Some((&start, region)) = self.regions.range_mut(..=pa).next_back() else {
            return false;
        };
        let Ok(off) = usize::try_from(pa - start) else {
            return false;
        };
        match off
            .checked_add(bytes.len())
            .and_then(|end| region.get_mut(off..end))
        {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                true
            }
            None => false,
        }
    }
}

impl PhysMemory for SparseMemory {
    fn read(&self, pa: u64, len: usize) -> Option<&[u8]> {
        let (&start, region) = self.regions.range(..=pa).next_back()?;
        let off = usize::try_from(pa - start).ok()?;
        region.get(off..off.checked_add(len)?)
    }
}

/// The byte sum of `bytes`, which is zero for a table with a good checksum.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |sum, &b| sum.wrapping_add(b))
}

/// Text of a fixed-size ID field (OEM ID, OEM table ID, HID), with trailing
/// blanks and NULs removed and anything non-printable shown as `?`.
#[derive(Clone, Copy)]
pub struct IdText<'a>(pub &'a [u8]);

impl fmt::Display for IdText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = self
            .0
            .iter()
            .rposition(|&b| b != 0 && b != b' ')
            .map_or(0, |p| p + 1);
        for &b in self.0.get(..end).unwrap_or_default() {
            let c = if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '?'
            };
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for IdText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn sparse_memory_reads_inside_one_region_only() {
        let mut mem = SparseMemory::new();
        mem.insert(0x1000, vec![1, 2, 3, 4]);
        mem.insert(0x2000, vec![5, 6]);
        assert_eq!(mem.read(0x1001, 2), Some(&[2u8, 3][..]));
        assert_eq!(mem.read(0x1000, 4), Some(&[1u8, 2, 3, 4][..]));
        assert_eq!(mem.read(0x1003, 2), None);
        assert_eq!(mem.read(0xfff, 1), None);
        assert_eq!(mem.read(0x2001, 1), Some(&[6u8][..]));
        assert_eq!(mem.read(u64::MAX, 1), None);
        assert!(mem.write(0x1002, &[9, 9]));
        assert!(!mem.write(0x1003, &[9, 9]));
        assert_eq!(mem.read(0x1000, 4), Some(&[1u8, 2, 9, 9][..]));
    }

    #[test]
    fn signature_and_id_text_escape_garbage() {
        assert_eq!(Signature(*b"DMAR").to_string(), "DMAR");
        assert_eq!(Signature([b'A', 0, 0xff, b'Z']).to_string(), "A\\x00\\xffZ");
        assert_eq!(IdText(b"BOCHS ").to_string(), "BOCHS");
        assert_eq!(IdText(b"AB\x01C\0\0").to_string(), "AB?C");
        assert_eq!(IdText(b"\0\0").to_string(), "");
    }
}
