//! The I/O APIC: reading its version and programming its redirection
//! table, through an index/data register window the caller provides.
//!
//! Registers (82093AA I/O APIC datasheet, section 3): `IOAPICID` (0x00),
//! `IOAPICVER` (0x01: version in bits 7:0, the highest redirection entry in
//! bits 23:16), `IOAPICARB` (0x02), then redirection entry `n` as two
//! 32-bit registers, its low half at `0x10 + 2n` and its high half at
//! `0x11 + 2n`.
//!
//! A redirection table entry (RTE) in the compatibility format:
//!
//! | bits  | field |
//! |-------|-------|
//! | 7:0   | vector |
//! | 10:8  | delivery mode (000: fixed, the only one written here) |
//! | 11    | destination mode (0: physical, the only one written here) |
//! | 12    | delivery status (read-only) |
//! | 13    | pin polarity (1: active-low) |
//! | 14    | remote IRR (read-only, level-triggered only) |
//! | 15    | trigger mode (1: level) |
//! | 16    | mask (1: masked) |
//! | 55:17 | reserved |
//! | 63:56 | destination APIC ID |
//!
//! With VT-d interrupt remapping, an entry may instead be in the remappable
//! format (Intel VT-d specification, "I/O xAPIC Programming" in the
//! interrupt remapping chapter), which names an entry of the interrupt
//! remapping table rather than a destination:
//!
//! | bits  | field |
//! |-------|-------|
//! | 7:0   | vector (must equal the IRTE's vector, so the EOI of a level-triggered interrupt reaches this entry) |
//! | 10:8  | 000 |
//! | 11    | interrupt index bit 15 |
//! | 12    | delivery status (read-only) |
//! | 13    | pin polarity (1: active-low) |
//! | 14    | remote IRR (read-only) |
//! | 15    | trigger mode (1: level) |
//! | 16    | mask (1: masked) |
//! | 47:17 | reserved (0) |
//! | 48    | interrupt format: 1, remappable |
//! | 63:49 | interrupt index bits 14:0 |
//!
//! How the index/data window is reached (MMIO at the base from the MADT,
//! the index register at +0x00 and the data register at +0x10) is the
//! [`IoApicRegs`] implementation's business; everything here is host-tested
//! against a register file.

use core::fmt;
use core::ops::Range;

use bitfield::bitfield;

/// Access to one I/O APIC's registers through its index/data window.
pub trait IoApicRegs {
    /// Selects register `reg` and reads it.
    fn read(&mut self, reg: u8) -> u32;
    /// Selects register `reg` and writes `v` to it.
    fn write(&mut self, reg: u8, v: u32);
}

/// The version register's index.
pub const IOAPICVER: u8 = 0x01;
/// The index of the first redirection table register (entry 0, low half).
pub const IOREDTBL: u8 = 0x10;

/// The most entries an 8-bit register index can address:
/// `0x10 + 2 * 119 + 1 = 0xff`.
const MAX_ENTRIES: u32 = 120;

bitfield! {
    /// A redirection table entry's 64 bits (low register in bits 31:0).
    #[derive(Clone, Copy, PartialEq, Eq, Default)]
    pub struct RawRedirection(pub u64);
    impl Debug;
    /// The vector.
    pub u8, vector, set_vector: 7, 0;
    /// Delivery mode (000b fixed).
    pub u8, delivery_mode, set_delivery_mode: 10, 8;
    /// Destination mode (compatibility format) or index bit 15
    /// (remappable format).
    pub dest_mode_or_index_15, set_dest_mode_or_index_15: 11;
    /// Delivery status (read-only).
    pub pending, _: 12;
    /// Polarity: active low.
    pub active_low, set_active_low: 13;
    /// Remote IRR (read-only).
    pub remote_irr, _: 14;
    /// Trigger mode: level.
    pub level, set_level: 15;
    /// Mask.
    pub masked, set_masked: 16;
    /// Format: 1 = remappable.
    pub remappable, set_remappable: 48;
    /// Remappable format: index bits 14:0.
    pub u16, index_low, set_index_low: 63, 49;
    /// Compatibility format: the destination APIC id.
    pub u8, dest, set_dest: 63, 56;
}

/// The mask bit in the low register ([`RawRedirection::masked`]).
const MASKED: u32 = 1 << 16;

/// Where a redirection entry sends its interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Compatibility format: fixed delivery to this local APIC ID in
    /// physical destination mode.
    ApicId(u8),
    /// Remappable format: the interrupt remapping table entry with this
    /// index (handle) decides the destination.
    Remapped(u16),
}

/// One redirection table entry, as this driver writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Redirection {
    /// The vector delivered (in the remappable format, the IRTE's vector).
    pub vector: u8,
    /// Level-triggered (else edge).
    pub level: bool,
    /// Active-low input (else active-high).
    pub active_low: bool,
    /// Masked: the input is ignored.
    pub masked: bool,
    /// Where the interrupt goes.
    pub dest: Destination,
}

impl Redirection {
    /// A compatibility-format entry: fixed delivery of `vector` to the
    /// local APIC `dest_apic_id`, physical destination mode.
    pub fn fixed(
        vector: u8,
        dest_apic_id: u8,
        level: bool,
        active_low: bool,
        masked: bool,
    ) -> Self {
        Self {
            vector,
            level,
            active_low,
            masked,
            dest: Destination::ApicId(dest_apic_id),
        }
    }

    /// A remappable-format entry naming interrupt remapping table entry
    /// `handle` (format bit 48 set, index bits 14:0 in bits 63:49, index
    /// bit 15 in bit 11). `vector` must be the one the IRTE delivers: the
    /// I/O APIC matches EOIs of level-triggered interrupts by vector.
    pub fn remapped(handle: u16, vector: u8, level: bool, active_low: bool, masked: bool) -> Self {
        Self {
            vector,
            level,
            active_low,
            masked,
            dest: Destination::Remapped(handle),
        }
    }

    /// The entry's raw value: low half in bits 31:0, high half in 63:32.
    pub fn to_raw(self) -> u64 {
        let mut r = RawRedirection(0);
        r.set_vector(self.vector);
        r.set_active_low(self.active_low);
        r.set_level(self.level);
        r.set_masked(self.masked);
        match self.dest {
            Destination::ApicId(id) => r.set_dest(id),
            Destination::Remapped(handle) => {
                r.set_dest_mode_or_index_15(handle & 0x8000 != 0);
                r.set_remappable(true);
                r.set_index_low(handle & 0x7fff);
            }
        }
        r.0
    }

    /// Decodes a raw entry. Delivery mode, destination mode (in the
    /// compatibility format) and the read-only status bits are not kept.
    pub fn from_raw(raw: u64) -> Self {
        let r = RawRedirection(raw);
        let dest = if r.remappable() {
            let index_15 = u16::from(r.dest_mode_or_index_15()) << 15;
            Destination::Remapped(index_15 | r.index_low())
        } else {
            Destination::ApicId(r.dest())
        };
        Self {
            vector: r.vector(),
            level: r.level(),
            active_low: r.active_low(),
            masked: r.masked(),
            dest,
        }
    }
}

/// A GSI this I/O APIC does not have an input for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GsiOutOfRange {
    /// The GSI asked for.
    pub gsi: u32,
    /// The GSIs this I/O APIC serves.
    pub range: Range<u32>,
}

impl fmt::Display for GsiOutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "GSI {} is not on this I/O APIC (GSIs {}-{})",
            self.gsi,
            self.range.start,
            self.range.end.saturating_sub(1)
        )
    }
}

/// One I/O APIC: its registers and the GSIs its inputs carry.
#[derive(Debug)]
pub struct IoApic<R: IoApicRegs> {
    regs: R,
    gsi_base: u32,
    entries: u32,
    version: u8,
}

impl<R: IoApicRegs> IoApic<R> {
    /// Takes over the I/O APIC whose inputs start at `gsi_base` (from the
    /// MADT), reading the number of redirection entries from its version
    /// register. Nothing is written. (An 8-bit register index reaches 120
    /// entries at most; a larger count is cut to that.)
    pub fn new(mut regs: R, gsi_base: u32) -> Self {
        let ver = regs.read(IOAPICVER);
        Self {
            regs,
            gsi_base,
            entries: (((ver >> 16) & 0xff) + 1).min(MAX_ENTRIES),
            version: ver as u8,
        }
    }

    /// The number of redirection entries (inputs).
    pub fn entries(&self) -> u32 {
        self.entries
    }

    /// The version register's version field (0x11 or 0x20 on most
    /// machines).
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The GSIs this I/O APIC serves: `gsi_base` up to `gsi_base +
    /// entries()`.
    pub fn gsi_range(&self) -> Range<u32> {
        self.gsi_base..self.gsi_base.saturating_add(self.entries)
    }

    /// The register index of the low half of `gsi`'s entry.
    fn low_reg(&self, gsi: u32) -> Result<u8, GsiOutOfRange> {
        let range = self.gsi_range();
        if !range.contains(&gsi) {
            return Err(GsiOutOfRange { gsi, range });
        }
        // At most MAX_ENTRIES entries, so the index fits.
        u8::try_from(gsi - self.gsi_base)
            .ok()
            .and_then(|n| n.checked_mul(2))
            .and_then(|n| n.checked_add(IOREDTBL))
            .ok_or(GsiOutOfRange { gsi, range })
    }

    /// The raw entry of `gsi`: low half in bits 31:0, high half in 63:32.
    pub fn read_raw(&mut self, gsi: u32) -> Result<u64, GsiOutOfRange> {
        let low = self.low_reg(gsi)?;
        let lo = self.regs.read(low);
        let hi = self.regs.read(low + 1);
        Ok((u64::from(hi) << 32) | u64::from(lo))
    }

    /// The entry of `gsi`, decoded.
    pub fn read(&mut self, gsi: u32) -> Result<Redirection, GsiOutOfRange> {
        self.read_raw(gsi).map(Redirection::from_raw)
    }

    /// Programs `gsi`'s entry. The input stays masked while the entry is
    /// half-written: if it is unmasked, the low half is first rewritten
    /// with the mask bit set; then the high half is written, then the low
    /// half, which unmasks it if `r` is unmasked.
    pub fn set(&mut self, gsi: u32, r: Redirection) -> Result<(), GsiOutOfRange> {
        let low = self.low_reg(gsi)?;
        let raw = r.to_raw();
        let current = self.regs.read(low);
        if current & MASKED == 0 {
            self.regs.write(low, current | MASKED);
        }
        self.regs.write(low + 1, (raw >> 32) as u32);
        self.regs.write(low, raw as u32);
        Ok(())
    }

    /// Sets `gsi`'s mask bit, keeping the rest of the entry.
    pub fn mask(&mut self, gsi: u32) -> Result<(), GsiOutOfRange> {
        let low = self.low_reg(gsi)?;
        let v = self.regs.read(low);
        self.regs.write(low, v | MASKED);
        Ok(())
    }

    /// Clears `gsi`'s mask bit, keeping the rest of the entry.
    pub fn unmask(&mut self, gsi: u32) -> Result<(), GsiOutOfRange> {
        let low = self.low_reg(gsi)?;
        let v = self.regs.read(low);
        self.regs.write(low, v & !MASKED);
        Ok(())
    }

    /// The register window, for the caller's own accesses.
    pub fn regs_mut(&mut self) -> &mut R {
        &mut self.regs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// A register file that logs every access.
    struct Fake {
        regs: [u32; 256],
        log: Vec<(bool, u8, u32)>,
    }

    impl Fake {
        /// An I/O APIC of version 0x20 with 24 entries, all masked
        /// (the reset state).
        fn new() -> Self {
            let mut regs = [0u32; 256];
            regs[usize::from(IOAPICVER)] = (23 << 16) | 0x20;
            for n in 0..24 {
                regs[0x10 + 2 * n] = MASKED;
            }
            Self {
                regs,
                log: Vec::new(),
            }
        }

        fn writes(&self) -> Vec<(u8, u32)> {
            self.log
                .iter()
                .filter(|(w, _, _)| *w)
                .map(|&(_, r, v)| (r, v))
                .collect()
        }
    }

    impl IoApicRegs for Fake {
        fn read(&mut self, reg: u8) -> u32 {
            let v = self.regs[usize::from(reg)];
            self.log.push((false, reg, v));
            v
        }
        fn write(&mut self, reg: u8, v: u32) {
            self.log.push((true, reg, v));
            self.regs[usize::from(reg)] = v;
        }
    }

    fn ioapic(gsi_base: u32) -> IoApic<Fake> {
        IoApic::new(Fake::new(), gsi_base)
    }

    #[test]
    fn the_version_register_gives_the_entry_count_and_gsi_range() {
        let io = ioapic(24);
        assert_eq!(io.entries(), 24);
        assert_eq!(io.version(), 0x20);
        assert_eq!(io.gsi_range(), 24..48);
    }

    #[test]
    fn new_only_reads_the_version_register() {
        let mut io = ioapic(0);
        assert_eq!(io.regs_mut().log, [(false, IOAPICVER, (23 << 16) | 0x20)]);
    }

    #[test]
    fn a_fixed_level_active_low_entry_has_the_exact_dwords() {
        let mut io = ioapic(0);
        io.set(16, Redirection::fixed(0x41, 3, true, true, false))
            .unwrap();
        // GSI 16: registers 0x30 (low) and 0x31 (high).
        assert_eq!(io.regs_mut().regs[0x30], 0x0000_a041);
        assert_eq!(io.regs_mut().regs[0x31], 0x0300_0000);
        assert_eq!(
            io.read(16).unwrap(),
            Redirection::fixed(0x41, 3, true, true, false)
        );
    }

    #[test]
    fn an_edge_active_high_masked_entry_has_the_exact_dwords() {
        let r = Redirection::fixed(0x30, 0, false, false, true);
        assert_eq!(r.to_raw(), 0x0000_0000_0001_0030);
        let r = Redirection::fixed(0xef, 0xff, false, true, false);
        assert_eq!(r.to_raw(), 0xff00_0000_0000_20ef);
    }

    #[test]
    fn set_writes_the_high_half_then_the_low_half_of_a_masked_entry() {
        let mut io = ioapic(0);
        io.regs_mut().log.clear();
        io.set(2, Redirection::fixed(0x50, 1, false, false, false))
            .unwrap();
        assert_eq!(
            io.regs_mut().writes(),
            [(0x15, 0x0100_0000), (0x14, 0x0000_0050)]
        );
    }

    #[test]
    fn set_masks_an_unmasked_entry_before_changing_it() {
        let mut io = ioapic(0);
        io.set(2, Redirection::fixed(0x50, 1, false, false, false))
            .unwrap();
        io.regs_mut().log.clear();
        io.set(2, Redirection::fixed(0x51, 2, true, true, false))
            .unwrap();
        assert_eq!(
            io.regs_mut().writes(),
            [
                (0x14, 0x0001_0050),
                (0x15, 0x0200_0000),
                (0x14, 0x0000_a051)
            ]
        );
    }

    #[test]
    fn a_masked_new_entry_stays_masked_throughout() {
        let mut io = ioapic(0);
        io.set(5, Redirection::fixed(0x50, 1, false, false, false))
            .unwrap();
        io.regs_mut().log.clear();
        io.set(5, Redirection::fixed(0x60, 0, true, false, true))
            .unwrap();
        let writes = io.regs_mut().writes();
        assert_eq!(writes.last(), Some(&(0x1a, 0x0001_8060)));
        assert!(writes
            .iter()
            .filter(|(r, _)| *r == 0x1a)
            .all(|(_, v)| v & MASKED != 0));
    }

    #[test]
    fn mask_and_unmask_keep_the_rest_of_the_entry() {
        let mut io = ioapic(0);
        io.set(7, Redirection::fixed(0x77, 9, true, true, false))
            .unwrap();
        // A read-only status bit (remote IRR) as the hardware might show it.
        io.regs_mut().regs[0x1e] |= 1 << 14;
        io.mask(7).unwrap();
        assert_eq!(io.regs_mut().regs[0x1e], 0x0001_e077);
        assert_eq!(io.regs_mut().regs[0x1f], 0x0900_0000);
        io.unmask(7).unwrap();
        assert_eq!(io.regs_mut().regs[0x1e], 0x0000_e077);
        assert_eq!(io.regs_mut().regs[0x1f], 0x0900_0000);
    }

    #[test]
    fn gsis_outside_the_range_are_errors_and_touch_nothing() {
        let mut io = ioapic(24);
        io.regs_mut().log.clear();
        let r = Redirection::fixed(0x40, 0, false, false, false);
        for gsi in [0, 23, 48, u32::MAX] {
            let err = GsiOutOfRange { gsi, range: 24..48 };
            assert_eq!(io.set(gsi, r), Err(err.clone()));
            assert_eq!(io.mask(gsi), Err(err.clone()));
            assert_eq!(io.unmask(gsi), Err(err.clone()));
            assert_eq!(io.read(gsi), Err(err));
        }
        assert!(io.regs_mut().log.is_empty());
        // The first and last inputs map to registers 0x10/0x11 and 0x3e/0x3f.
        io.set(24, r).unwrap();
        io.set(47, r).unwrap();
        assert_eq!(io.regs_mut().regs[0x10], 0x40);
        assert_eq!(io.regs_mut().regs[0x3e], 0x40);
    }

    #[test]
    fn remappable_entries_carry_the_format_bit_and_the_handle() {
        // Handle 0x1234: bits 14:0 go to bits 63:49, bit 15 (clear) to 11.
        let r = Redirection::remapped(0x1234, 0x41, true, true, true);
        assert_eq!(r.to_raw(), (0x1234u64 << 49) | (1 << 48) | 0x1_a041);
        // Handle 0x8001: bit 15 lands in bit 11.
        let r = Redirection::remapped(0x8001, 0x42, false, false, false);
        assert_eq!(r.to_raw(), (1u64 << 49) | (1 << 48) | (1 << 11) | 0x42);
        for handle in [0, 1, 0x7fff, 0x8000, 0xffff] {
            let r = Redirection::remapped(handle, 0x33, true, false, false);
            assert_eq!(Redirection::from_raw(r.to_raw()), r);
        }
    }

    #[test]
    fn a_remappable_entry_is_written_as_two_dwords() {
        let mut io = ioapic(0);
        io.set(20, Redirection::remapped(5, 0x60, true, false, false))
            .unwrap();
        assert_eq!(io.regs_mut().regs[0x38], 0x0000_8060);
        assert_eq!(io.regs_mut().regs[0x39], (5 << 17) | (1 << 16));
        assert_eq!(io.read(20).unwrap().dest, Destination::Remapped(5));
    }

    #[test]
    fn a_huge_entry_count_is_cut_to_what_an_index_reaches() {
        let mut fake = Fake::new();
        fake.regs[usize::from(IOAPICVER)] = 0xff << 16;
        let mut io = IoApic::new(fake, 0);
        assert_eq!(io.entries(), 120);
        io.set(119, Redirection::fixed(1, 0, false, false, false))
            .unwrap();
        assert_eq!(io.regs_mut().regs[0xfe], 1);
        assert!(io
            .set(120, Redirection::fixed(1, 0, false, false, false))
            .is_err());
    }
}
