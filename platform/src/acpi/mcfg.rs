//! MCFG: where the PCI Express enhanced configuration (ECAM) windows are.

use alloc::vec::Vec;
use core::fmt;

use super::{AcpiError, AcpiErrorKind, AcpiTable, SdtHeader, Signature};

/// Offset of the first allocation (after 8 reserved bytes).
const ALLOCATIONS: usize = 44;
const ALLOCATION_LEN: usize = 16;

/// The PCI Express memory-mapped configuration table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mcfg {
    /// The table header.
    pub header: SdtHeader,
    /// One ECAM window per segment (or bus range of a segment).
    pub allocations: Vec<McfgAllocation>,
}

/// One ECAM window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct McfgAllocation {
    /// Physical address of the window; bus `start_bus` is at its start.
    pub base: u64,
    /// PCI segment group.
    pub segment: u16,
    /// First bus the window decodes.
    pub start_bus: u8,
    /// Last bus the window decodes.
    pub end_bus: u8,
}

impl McfgAllocation {
    /// Bytes the window covers (1 MiB per bus).
    pub fn size(&self) -> u64 {
        (u64::from(self.end_bus) - u64::from(self.start_bus) + 1) << 20
    }
}

impl Mcfg {
    /// Parses a whole MCFG, header included.
    pub fn parse(bytes: &[u8]) -> Result<Self, AcpiError> {
        let (header, r) = SdtHeader::check(Self::SIGNATURE, bytes, ALLOCATIONS)?;
        let body = r.len() - ALLOCATIONS;
        if body % ALLOCATION_LEN != 0 {
            return Err(r.error(AcpiErrorKind::TrailingBytes {
                what: "configuration space allocation",
                offset: r.len() - body % ALLOCATION_LEN,
                count: body % ALLOCATION_LEN,
            }));
        }
        let mut allocations = Vec::new();
        for off in (ALLOCATIONS..r.len()).step_by(ALLOCATION_LEN) {
            let a = McfgAllocation {
                base: r.u64(off)?,
                segment: r.u16(off + 8)?,
                start_bus: r.u8(off + 10)?,
                end_bus: r.u8(off + 11)?,
            };
            if a.start_bus > a.end_bus {
                return Err(r.error(AcpiErrorKind::Invalid {
                    what: "configuration space allocation",
                    offset: off,
                    problem: "start bus is above end bus",
                }));
            }
            allocations.push(a);
        }
        Ok(Self {
            header,
            allocations,
        })
    }
}

impl AcpiTable for Mcfg {
    const SIGNATURE: Signature = Signature(*b"MCFG");

    fn parse(bytes: &[u8]) -> Result<Self, AcpiError> {
        Mcfg::parse(bytes)
    }
}

impl fmt::Display for Mcfg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MCFG: {} ECAM windows", self.allocations.len())?;
        for a in &self.allocations {
            write!(
                f,
                "\n  segment {} buses {:02x}-{:02x} at {:#x}",
                a.segment, a.start_bus, a.end_bus, a.base
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::testutil::{table, Put};
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn allocations_are_listed() {
        let mut b = vec![0u8; 8];
        b.u64(0xb000_0000).u16(0).u8(0).u8(0xff).u32(0);
        b.u64(0x40_0000_0000).u16(1).u8(0x80).u8(0x8f).u32(0);
        let m = Mcfg::parse(&table(b"MCFG", 1, &b)).unwrap();
        assert_eq!(
            m.allocations,
            vec![
                McfgAllocation {
                    base: 0xb000_0000,
                    segment: 0,
                    start_bus: 0,
                    end_bus: 0xff
                },
                McfgAllocation {
                    base: 0x40_0000_0000,
                    segment: 1,
                    start_bus: 0x80,
                    end_bus: 0x8f
                }
            ]
        );
        assert_eq!(m.allocations[0].size(), 256 << 20);
        assert_eq!(
            m.to_string(),
            "MCFG: 2 ECAM windows\n  segment 0 buses 00-ff at 0xb0000000\n  \
             segment 1 buses 80-8f at 0x4000000000"
        );
    }

    #[test]
    fn partial_allocations_and_reversed_bus_ranges_are_errors() {
        let mut b = vec![0u8; 8];
        b.u64(0xb000_0000).u16(0).u8(0).u8(0xff);
        assert!(matches!(
            Mcfg::parse(&table(b"MCFG", 1, &b)).unwrap_err().kind,
            AcpiErrorKind::TrailingBytes { count: 12, .. }
        ));
        let mut b = vec![0u8; 8];
        b.u64(0xb000_0000).u16(0).u8(9).u8(1).u32(0);
        assert_eq!(
            Mcfg::parse(&table(b"MCFG", 1, &b)).unwrap_err().to_string(),
            "MCFG: configuration space allocation at offset 0x2c: start bus is above end bus"
        );
        assert!(Mcfg::parse(&table(b"MCFG", 1, &[0; 4])).is_err());
    }
}
