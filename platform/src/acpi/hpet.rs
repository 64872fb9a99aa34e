//! HPET: the High Precision Event Timer block.

use core::fmt;

use super::{AcpiError, AcpiTable, GenericAddress, SdtHeader, Signature};

const LEN: usize = 56;

/// The HPET description table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hpet {
    /// The table header.
    pub header: SdtHeader,
    /// Event timer block ID, a copy of the low half of the HPET's general
    /// capabilities register.
    pub event_timer_block_id: u32,
    /// Where the HPET registers are.
    pub base_address: GenericAddress,
    /// HPET sequence number.
    pub hpet_number: u8,
    /// Minimum clock tick in periodic mode, in counter ticks.
    pub minimum_tick: u16,
    /// Page protection and OEM attribute.
    pub page_protection: u8,
}

impl Hpet {
    /// Parses a whole HPET table, header included.
    pub fn parse(bytes: &[u8]) -> Result<Self, AcpiError> {
        let (header, r) = SdtHeader::check(Self::SIGNATURE, bytes, LEN)?;
        Ok(Self {
            header,
            event_timer_block_id: r.u32(36)?,
            base_address: r.gas(40)?,
            hpet_number: r.u8(52)?,
            minimum_tick: r.u16(53)?,
            page_protection: r.u8(55)?,
        })
    }

    /// Hardware revision ID.
    pub const fn hardware_rev(&self) -> u8 {
        self.event_timer_block_id as u8
    }

    /// Number of comparators in the first timer block. The field holds the
    /// index of the last comparator, so this is that plus one.
    pub const fn comparator_count(&self) -> u8 {
        ((self.event_timer_block_id >> 8) & 0x1f) as u8 + 1
    }

    /// Whether the main counter is 64 bits wide.
    pub const fn counter_64bit(&self) -> bool {
        self.event_timer_block_id & (1 << 13) != 0
    }

    /// Whether the HPET can take over the legacy PIT and RTC interrupts.
    pub const fn legacy_replacement_capable(&self) -> bool {
        self.event_timer_block_id & (1 << 15) != 0
    }

    /// PCI vendor ID of the HPET's maker.
    pub const fn vendor_id(&self) -> u16 {
        (self.event_timer_block_id >> 16) as u16
    }
}

impl AcpiTable for Hpet {
    const SIGNATURE: Signature = Signature(*b"HPET");

    fn parse(bytes: &[u8]) -> Result<Self, AcpiError> {
        Hpet::parse(bytes)
    }
}

impl fmt::Display for Hpet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "HPET {}: {}, vendor {:04x} rev {}, {} comparators, {}-bit counter{}, min tick {}",
            self.hpet_number,
            self.base_address,
            self.vendor_id(),
            self.hardware_rev(),
            self.comparator_count(),
            if self.counter_64bit() { 64 } else { 32 },
            if self.legacy_replacement_capable() {
                ", legacy replacement capable"
            } else {
                ""
            },
            self.minimum_tick
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::testutil::{table, Put};
    use crate::acpi::{AcpiErrorKind, AddressSpace};
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn qemu_like_hpet_parses() {
        let mut b = vec![];
        b.u32(0x8086_a201)
            .gas(0, 0, 0, 0xfed0_0000)
            .u8(0)
            .u16(0)
            .u8(0);
        let h = Hpet::parse(&table(b"HPET", 1, &b)).unwrap();
        assert_eq!(h.hardware_rev(), 1);
        assert_eq!(h.comparator_count(), 3);
        assert!(h.counter_64bit());
        assert!(h.legacy_replacement_capable());
        assert_eq!(h.vendor_id(), 0x8086);
        assert_eq!(h.base_address.space, AddressSpace::Memory);
        assert_eq!(h.base_address.address, 0xfed0_0000);
        assert_eq!(
            h.to_string(),
            "HPET 0: mem 0xfed00000, vendor 8086 rev 1, 3 comparators, 64-bit counter, \
             legacy replacement capable, min tick 0"
        );
        let mut b = vec![];
        b.u32(0x1022_0401)
            .gas(0, 64, 0, 0xfed0_0000)
            .u8(1)
            .u16(0x80)
            .u8(0);
        let h = Hpet::parse(&table(b"HPET", 1, &b)).unwrap();
        assert!(!h.counter_64bit() && !h.legacy_replacement_capable());
        assert_eq!(h.comparator_count(), 5);
        assert_eq!((h.hpet_number, h.minimum_tick), (1, 0x80));
    }

    #[test]
    fn short_hpet_is_an_error() {
        let t = table(b"HPET", 1, &[0; 19]);
        assert!(matches!(
            Hpet::parse(&t).unwrap_err().kind,
            AcpiErrorKind::LengthTooSmall { length: 55, .. }
        ));
    }
}
