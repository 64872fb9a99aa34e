//! The Root System Description Pointer: where the table tree starts.

use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use super::{checksum, AcpiError, AcpiErrorKind, IdText, PhysMemory, Signature};

const SIGNATURE: &[u8; 8] = b"RSD PTR ";
/// Bytes covered by the ACPI 1.0 checksum.
const V1_LEN: usize = 20;
/// Size of the ACPI 2.0+ structure.
const V2_LEN: usize = 36;

/// A parsed RSDP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rsdp {
    /// OEM ID.
    pub oem_id: [u8; 6],
    /// 0 for ACPI 1.0, 2 for ACPI 2.0 and later.
    pub revision: u8,
    /// Physical address of the RSDT.
    pub rsdt_address: u32,
    /// Length of the structure (revision 2 and later).
    pub length: Option<u32>,
    /// Physical address of the XSDT (revision 2 and later).
    pub xsdt_address: Option<u64>,
}

impl Rsdp {
    /// Parses an RSDP from `bytes`: 20 bytes for revision 0, 36 for
    /// revision 2 (a boot loader's copy, such as the multiboot2 ACPI tags).
    ///
    /// The 20-byte checksum must be good, and for revision 2 and later so
    /// must the extended checksum. A revision 2 RSDP cut to 20 bytes is
    /// read as revision 0 data (no XSDT).
    pub fn parse(bytes: &[u8]) -> Result<Self, AcpiError> {
        let err = |kind| AcpiError::new(Signature::RSDP, kind);
        let v1 = bytes
            .get(..V1_LEN)
            .ok_or(err(AcpiErrorKind::HeaderTruncated {
                available: bytes.len(),
            }))?;
        if &v1[..8] != SIGNATURE {
            let mut found = [0; 4];
            found.copy_from_slice(&v1[..4]);
            return Err(err(AcpiErrorKind::WrongSignature {
                found: Signature(found),
            }));
        }
        if checksum(v1) != 0 {
            return Err(err(AcpiErrorKind::BadChecksum));
        }
        let mut oem_id = [0; 6];
        oem_id.copy_from_slice(&v1[9..15]);
        let revision = v1[15];
        let rsdt_address = u32::from_le_bytes([v1[16], v1[17], v1[18], v1[19]]);
        let mut rsdp = Self {
            oem_id,
            revision,
            rsdt_address,
            length: None,
            xsdt_address: None,
        };
        if revision < 2 {
            return Ok(rsdp);
        }
        let Some(v2) = bytes.get(..V2_LEN) else {
            return Ok(rsdp);
        };
        let length = u32::from_le_bytes([v2[20], v2[21], v2[22], v2[23]]);
        let covered = usize::try_from(length).unwrap_or(usize::MAX);
        if covered < V2_LEN {
            return Err(err(AcpiErrorKind::LengthTooSmall {
                length,
                minimum: V2_LEN,
            }));
        }
        let whole = bytes
            .get(..covered)
            .ok_or(err(AcpiErrorKind::LengthBeyondData {
                length,
                available: bytes.len(),
            }))?;
        if checksum(whole) != 0 {
            return Err(err(AcpiErrorKind::BadChecksum));
        }
        let mut xsdt = [0; 8];
        xsdt.copy_from_slice(&v2[24..32]);
        rsdp.length = Some(length);
        rsdp.xsdt_address = Some(u64::from_le_bytes(xsdt));
        Ok(rsdp)
    }

    /// Reads and parses the RSDP at physical address `pa`.
    pub fn read(mem: &impl PhysMemory, pa: u64) -> Result<Self, AcpiError> {
        let unreadable = |len| {
            AcpiError::new(
                Signature::RSDP,
                AcpiErrorKind::Unreadable { address: pa, len },
            )
        };
        let v1 = mem.read(pa, V1_LEN).ok_or(unreadable(V1_LEN))?;
        if v1.get(15).copied().unwrap_or(0) < 2 {
            return Self::parse(v1);
        }
        let v2 = mem.read(pa, V2_LEN).ok_or(unreadable(V2_LEN))?;
        let length = v2
            .get(20..24)
            .and_then(|l| l.try_into().ok())
            .map_or(0, u32::from_le_bytes);
        // A longer structure is checksummed over its full length; anything
        // shorter than 36 bytes is rejected by `parse`.
        let len = usize::try_from(length).unwrap_or(0).clamp(V2_LEN, 4096);
        Self::parse(mem.read(pa, len).ok_or(unreadable(len))?)
    }

    /// The root table to walk: the XSDT if revision 2 or later gave a
    /// non-zero one, else the RSDT.
    pub fn root_address(&self) -> (super::RootKind, u64) {
        match self.xsdt_address {
            Some(x) if self.revision >= 2 && x != 0 => (super::RootKind::Xsdt, x),
            _ => (super::RootKind::Rsdt, u64::from(self.rsdt_address)),
        }
    }
}

impl fmt::Display for Rsdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RSDP: revision {} OEM \"{}\" RSDT {:#x}",
            self.revision,
            IdText(&self.oem_id),
            self.rsdt_address
        )?;
        if let Some(x) = self.xsdt_address {
            write!(f, " XSDT {x:#x}")?;
        }
        Ok(())
    }
}

/// Scans `ranges` on 16-byte boundaries for an RSDP with good checksums;
/// returns its address and contents. Candidates with the signature but bad
/// checksums are skipped.
pub fn find_rsdp(mem: &impl PhysMemory, ranges: &[Range<u64>]) -> Option<(u64, Rsdp)> {
    for range in ranges {
        let Some(mut pa) = range.start.checked_add(15).map(|a| a & !15) else {
            continue;
        };
        while pa
            .checked_add(V1_LEN as u64)
            .is_some_and(|end| end <= range.end)
        {
            let is_candidate = mem
                .read(pa, SIGNATURE.len())
                .is_some_and(|s| s == SIGNATURE);
            if is_candidate {
                if let Ok(rsdp) = Rsdp::read(mem, pa) {
                    return Some((pa, rsdp));
                }
            }
            pa += 16;
        }
    }
    None
}

/// The first KiB of the Extended BIOS Data Area, whose segment the BIOS
/// data area holds at 0x40E; `None` when that word is unreadable or zero.
pub fn ebda_search_range(mem: &impl PhysMemory) -> Option<Range<u64>> {
    let seg = mem.read(0x40e, 2)?;
    let base = u64::from(u16::from_le_bytes([*seg.first()?, *seg.get(1)?])) << 4;
    (base != 0).then_some(base..base + 1024)
}

/// Where a BIOS machine keeps its RSDP: the EBDA's first KiB (if there is
/// one) and then 0xE0000..0x100000.
pub fn bios_search_ranges(mem: &impl PhysMemory) -> Vec<Range<u64>> {
    let mut ranges = Vec::new();
    ranges.extend(ebda_search_range(mem));
    ranges.push(0xe_0000..0x10_0000);
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::{RootKind, SparseMemory};
    use alloc::string::ToString;
    use alloc::vec;

    pub(crate) fn rsdp_v1(rsdt: u32) -> Vec<u8> {
        let mut r = Vec::from(&SIGNATURE[..]);
        r.push(0);
        r.extend_from_slice(b"BOCHS ");
        r.push(0);
        r.extend_from_slice(&rsdt.to_le_bytes());
        r[8] = 0u8.wrapping_sub(checksum(&r));
        r
    }

    pub(crate) fn rsdp_v2(rsdt: u32, xsdt: u64) -> Vec<u8> {
        let mut r = rsdp_v1(rsdt);
        r[15] = 2;
        r[8] = 0;
        r[8] = 0u8.wrapping_sub(checksum(&r));
        r.extend_from_slice(&36u32.to_le_bytes());
        r.extend_from_slice(&xsdt.to_le_bytes());
        r.extend_from_slice(&[0; 4]);
        r[32] = 0u8.wrapping_sub(checksum(&r));
        r
    }

    #[test]
    fn parses_revision_0_and_2() {
        let v1 = Rsdp::parse(&rsdp_v1(0x7ffe_1234)).unwrap();
        assert_eq!(v1.revision, 0);
        assert_eq!(v1.rsdt_address, 0x7ffe_1234);
        assert_eq!(v1.xsdt_address, None);
        assert_eq!(v1.root_address(), (RootKind::Rsdt, 0x7ffe_1234));
        assert_eq!(
            v1.to_string(),
            "RSDP: revision 0 OEM \"BOCHS\" RSDT 0x7ffe1234"
        );
        let v2 = Rsdp::parse(&rsdp_v2(0x1000, 0x2000)).unwrap();
        assert_eq!(v2.xsdt_address, Some(0x2000));
        assert_eq!(v2.length, Some(36));
        assert_eq!(v2.root_address(), (RootKind::Xsdt, 0x2000));
        let zero_xsdt = Rsdp::parse(&rsdp_v2(0x1000, 0)).unwrap();
        assert_eq!(zero_xsdt.root_address(), (RootKind::Rsdt, 0x1000));
        let cut = Rsdp::parse(&rsdp_v2(0x1000, 0x2000)[..20]).unwrap();
        assert_eq!(cut.xsdt_address, None);
    }

    #[test]
    fn bad_checksums_and_signatures_are_errors() {
        let mut v1 = rsdp_v1(0x1000);
        v1[16] ^= 1;
        assert_eq!(
            Rsdp::parse(&v1).unwrap_err().kind,
            AcpiErrorKind::BadChecksum
        );
        let mut v2 = rsdp_v2(0x1000, 0x2000);
        v2[24] ^= 1;
        assert_eq!(
            Rsdp::parse(&v2).unwrap_err().to_string(),
            "RSDP: bad checksum"
        );
        let mut v2 = rsdp_v2(0x1000, 0x2000);
        v2[20] = 200;
        v2[32] = v2[32].wrapping_sub(200 - 36);
        assert!(matches!(
            Rsdp::parse(&v2).unwrap_err().kind,
            AcpiErrorKind::LengthBeyondData { length: 200, .. }
        ));
        assert!(matches!(
            Rsdp::parse(b"RSD PTX \0\0\0\0\0\0\0\0\0\0\0\0")
                .unwrap_err()
                .kind,
            AcpiErrorKind::WrongSignature { .. }
        ));
        assert!(Rsdp::parse(b"RSD PTR ").is_err());
    }

    #[test]
    fn scan_finds_the_first_good_rsdp_on_a_16_byte_boundary() {
        let mut area = vec![0u8; 0x2_0000];
        let mut bad = rsdp_v1(0xdead);
        bad[8] ^= 0x55;
        area[0x100..0x100 + 20].copy_from_slice(&bad);
        // Not 16-byte aligned: must not be found.
        area[0x208..0x208 + 20].copy_from_slice(&rsdp_v1(0x1111));
        let good = rsdp_v2(0x2222, 0x3333);
        area[0xf000..0xf000 + 36].copy_from_slice(&good);
        let mut mem = SparseMemory::new();
        mem.insert(0xe_0000, area);
        let (bios, short, elsewhere) = (0xe_0000..0x10_0000, 0xe_0000..0xe_f010, 0x5000..0x6000);
        let (pa, rsdp) = find_rsdp(&mem, &[bios]).unwrap();
        assert_eq!(pa, 0xe_f000);
        assert_eq!(rsdp.xsdt_address, Some(0x3333));
        assert_eq!(find_rsdp(&mem, &[short]), None);
        assert_eq!(find_rsdp(&mem, &[elsewhere]), None);
    }

    #[test]
    fn ebda_comes_first_in_the_bios_ranges() {
        let mut mem = SparseMemory::new();
        let mut low = vec![0u8; 0x1000];
        low[0x40e..0x410].copy_from_slice(&0x9fc0u16.to_le_bytes());
        mem.insert(0, low);
        let mut ebda = vec![0u8; 0x400];
        ebda[0x20..0x20 + 20].copy_from_slice(&rsdp_v1(0x4444));
        mem.insert(0x9_fc00, ebda);
        assert_eq!(
            bios_search_ranges(&mem),
            vec![0x9_fc00..0xa_0000, 0xe_0000..0x10_0000]
        );
        let ranges = bios_search_ranges(&mem);
        assert_eq!(find_rsdp(&mem, &ranges).unwrap().0, 0x9_fc20);
        assert_eq!(ebda_search_range(&SparseMemory::new()), None);
    }
}
