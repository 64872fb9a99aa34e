//! Interrupt remapping data: the entry layout and the order it is
//! written in, the table, the remappable MSI format and the interrupt
//! remapping fault records. The unit's side is in `ir_unit`.

use alloc::string::ToString;
use alloc::vec::Vec;

use vmm_glue::Sbdf;

use crate::iommu::vtd::fake::FakeMem;
use crate::iommu::vtd::regs::*;
use crate::iommu::vtd::{remappable_msi, ApicMode, Fault, IrTable, Irte, VtdError, IR_ENTRIES};
use crate::iommu::TableMemory;

/// The function the tests' entries are for.
pub(super) fn nic() -> Sbdf {
    // 03:00.1: requester id 0x0301.
    Sbdf::new(0, 3, 0, 1).unwrap()
}

/// Table memory that records the order of entry writes.
struct Recording {
    mem: FakeMem,
    writes: Vec<(u64, u64)>,
}

impl TableMemory for Recording {
    fn alloc_zeroed(&mut self) -> Option<u64> {
        self.mem.alloc_zeroed()
    }
    fn free(&mut self, hpa: u64) {
        self.mem.free(hpa);
    }
    fn read64(&mut self, hpa: u64) -> u64 {
        self.mem.read64(hpa)
    }
    fn write64(&mut self, hpa: u64, v: u64) {
        self.writes.push((hpa, v));
        self.mem.write64(hpa, v);
    }
    fn flush(&mut self, hpa: u64, len: u64) {
        self.mem.flush(hpa, len);
    }
}

fn recording() -> Recording {
    Recording {
        mem: FakeMem::new(),
        writes: Vec::new(),
    }
}

#[test]
fn an_xapic_entry_has_the_remapped_format_with_full_source_check() {
    let e = Irte {
        vector: 0x41,
        dest_apic_id: 3,
        source: nic(),
    };
    assert_eq!(
        e.encode(5, ApicMode::Xapic).unwrap(),
        [
            // Low: P (bit 0) = 1, FPD (bit 1) = 0, DM (bit 2) = 0
            // physical, RH (bit 3) = 0, TM (bit 4) = 0 edge, DLM (bits
            // 7:5) = 000 fixed, AVAIL (11:8) = 0, IM (bit 15) = 0
            // remapped, V (bits 23:16) = 0x41, DST (bits 63:32) = APIC
            // id 3 in DST bits 15:8.
            0x0000_0300_0041_0001,
            // High: SID (bits 15:0) = 0x0301, SQ (bits 17:16) = 00 all
            // bits compared, SVT (bits 19:18) = 01 verify the requester
            // id.
            0x0000_0000_0004_0301,
        ]
    );
}

#[test]
fn an_x2apic_entry_carries_the_full_32_bit_destination() {
    let e = Irte {
        vector: 0xfe,
        dest_apic_id: 0x1234_5678,
        source: Sbdf::new(0, 0xff, 31, 7).unwrap(),
    };
    assert_eq!(
        e.encode(0, ApicMode::X2apic).unwrap(),
        [
            // P, vector 0xfe (bits 23:16), DST (bits 63:32) = x2APIC id.
            0x1234_5678_00fe_0001,
            // SVT = 01, SQ = 00, SID = ff:1f.7 = 0xffff.
            0x0000_0000_0004_ffff,
        ]
    );
}

#[test]
fn entries_that_cannot_be_delivered_are_refused() {
    let mut mem = FakeMem::new();
    let mut t = IrTable::new(&mut mem, ApicMode::Xapic, true).unwrap();
    let ok = Irte {
        vector: 0x30,
        dest_apic_id: 0,
        source: nic(),
    };
    assert_eq!(
        t.set(&mut mem, IR_ENTRIES, ok),
        Err(VtdError::BadIrte {
            index: 256,
            why: "index beyond the table"
        })
    );
    let far = Irte {
        dest_apic_id: 0x100,
        ..ok
    };
    assert_eq!(
        t.set(&mut mem, 1, far).unwrap_err().to_string(),
        "interrupt remapping entry 1: APIC id above 255 in xAPIC mode"
    );
    let exception = Irte { vector: 15, ..ok };
    assert!(matches!(
        t.set(&mut mem, 2, exception),
        Err(VtdError::BadIrte { index: 2, .. })
    ));
    assert_eq!(
        t.clear(&mut mem, 256).unwrap_err(),
        t.raw(&mut mem, 256).unwrap_err()
    );
    for i in 0..IR_ENTRIES {
        assert_eq!(t.raw(&mut mem, i).unwrap(), [0, 0]);
    }
}

#[test]
fn set_writes_the_high_half_before_the_present_low_half() {
    let mut mem = recording();
    let mut t = IrTable::new(&mut mem, ApicMode::Xapic, true).unwrap();
    let slot = t.base() + 9 * 16;
    let e = Irte {
        vector: 0x41,
        dest_apic_id: 3,
        source: nic(),
    };
    t.set(&mut mem, 9, e).unwrap();
    assert_eq!(
        mem.writes,
        [
            (slot + 8, 0x0000_0000_0004_0301),
            (slot, 0x0000_0300_0041_0001)
        ]
    );
    assert_eq!(
        t.raw(&mut mem, 9).unwrap(),
        [0x0000_0300_0041_0001, 0x0000_0000_0004_0301]
    );

    // Same source, new vector and CPU: one write of the low half.
    mem.writes.clear();
    let moved = Irte {
        vector: 0x42,
        dest_apic_id: 1,
        ..e
    };
    t.set(&mut mem, 9, moved).unwrap();
    assert_eq!(mem.writes, [(slot, 0x0000_0100_0042_0001)]);

    // Another source: P goes first, then the new check, then P again.
    mem.writes.clear();
    let other = Irte {
        source: Sbdf::new(0, 4, 0, 0).unwrap(),
        ..moved
    };
    t.set(&mut mem, 9, other).unwrap();
    assert_eq!(
        mem.writes,
        [
            (slot, 0),
            (slot + 8, 0x0000_0000_0004_0400),
            (slot, 0x0000_0100_0042_0001)
        ]
    );

    // Clear: P first.
    mem.writes.clear();
    t.clear(&mut mem, 9).unwrap();
    assert_eq!(mem.writes, [(slot, 0), (slot + 8, 0)]);
}

#[test]
fn entry_writes_are_flushed_for_a_non_coherent_unit() {
    let mut mem = FakeMem::new();
    let mut t = IrTable::new(&mut mem, ApicMode::Xapic, false).unwrap();
    let e = Irte {
        vector: 0x41,
        dest_apic_id: 3,
        source: nic(),
    };
    t.set(&mut mem, 2, e).unwrap();
    let at = t.base() + 32;
    assert_eq!(mem.flushes, [(t.base(), 4096), (at, 16), (at, 16)]);
}

#[test]
fn the_table_is_one_frame() {
    let mut mem = FakeMem::new();
    let t = IrTable::new(&mut mem, ApicMode::X2apic, true).unwrap();
    assert_eq!(mem.live(), 1);
    assert_eq!(t.len(), 256);
    assert_eq!(t.base() & 0xfff, 0);
    // IRTA: address, EIME (bit 11) for x2APIC, S (bits 3:0) = 7: 2^(7+1)
    // = 256 entries.
    assert_eq!(t.irta(), t.base() | 1 << 11 | 7);
    t.destroy(&mut mem);
    assert_eq!(mem.live(), 0);
    mem.limit = Some(0);
    assert_eq!(
        IrTable::new(&mut mem, ApicMode::Xapic, true).unwrap_err(),
        VtdError::NoMemory
    );
}

#[test]
fn remappable_msi_addresses_carry_the_handle() {
    // 0xFEE in bits 31:20, interrupt format (bit 4) = 1, SHV (bit 3) = 0,
    // handle[14:0] in bits 19:5, handle[15] in bit 2; data 0.
    assert_eq!(remappable_msi(0), (0xfee0_0010, 0));
    assert_eq!(remappable_msi(1), (0xfee0_0030, 0));
    assert_eq!(remappable_msi(0xff), (0xfee0_1ff0, 0));
    assert_eq!(remappable_msi(0x7fff), (0xfeef_fff0, 0));
    assert_eq!(remappable_msi(0x8000), (0xfee0_0014, 0));
    assert_eq!(remappable_msi(0xffff), (0xfeef_fff4, 0));
    for h in 0..IR_ENTRIES {
        let (addr, data) = remappable_msi(h);
        assert_eq!(addr & 1 << 3, 0, "SHV");
        assert_eq!(
            ((addr >> 5) & 0x7fff) | ((addr >> 2) & 1) << 15,
            u64::from(h)
        );
        assert_eq!(data, 0);
    }
}

/// A fault record's high half for an interrupt request: F (bit 63), FR
/// (bits 39:32), SID (bits 15:0); T (bit 62) = 0, interrupt requests are
/// writes.
pub(super) fn ir_fault(reason: u8, sid: u16) -> u64 {
    FRCD_F | u64::from(reason) << 32 | u64::from(sid)
}

#[test]
fn interrupt_remapping_faults_print_the_index_and_the_reason() {
    // FI bits 63:48 = interrupt index; bits 47:12 clear.
    let f = Fault::decode(0, 0x0100_0000_0000_0000, ir_fault(0x21, 0x0301)).unwrap();
    assert_eq!(f.interrupt_index(), Some(0x100));
    assert_eq!(
        f.to_string(),
        "vt-d: interrupt fault from 0000:03:00.1 index 256: reason 0x21 \
         (interrupt index beyond the remapping table)"
    );
    let f = Fault::decode(0, 0x0007_0000_0000_0000, ir_fault(0x22, 0x0301)).unwrap();
    assert_eq!(
        f.to_string(),
        "vt-d: interrupt fault from 0000:03:00.1 index 7: reason 0x22 \
         (interrupt remapping entry not present)"
    );
    let f = Fault::decode(0, 0x0007_0000_0000_0000, ir_fault(0x26, 0x0400)).unwrap();
    assert_eq!(
        f.to_string(),
        "vt-d: interrupt fault from 0000:04:00.0 index 7: reason 0x26 \
         (interrupt source id check failed (requester is not the entry's function))"
    );
    // A forged compatibility-format MSI names no entry: no index printed.
    let f = Fault::decode(0, 0, ir_fault(0x25, 0x0301)).unwrap();
    assert!(f.is_interrupt());
    assert_eq!(
        f.to_string(),
        "vt-d: interrupt fault from 0000:03:00.1: reason 0x25 \
         (compatibility-format interrupt blocked (not a remappable MSI))"
    );
    // DMA faults have no interrupt index.
    let dma = Fault::decode(0, 0x1000, FRCD_F | 5 << 32).unwrap();
    assert_eq!(dma.interrupt_index(), None);
}

#[test]
fn a_level_entry_differs_only_in_the_trigger_mode() {
    let mut r = recording();
    let mut t = IrTable::new(&mut r, ApicMode::Xapic, true).unwrap();
    let e = Irte {
        vector: 0x41,
        dest_apic_id: 3,
        source: nic(),
    };
    t.set_level(&mut r, 7, e).unwrap();
    // TM (bit 4) = 1 level; everything else as the edge entry.
    assert_eq!(
        t.raw(&mut r, 7).unwrap(),
        [0x0000_0300_0041_0011, 0x0000_0000_0004_0301]
    );
    t.set(&mut r, 7, e).unwrap();
    assert_eq!(t.raw(&mut r, 7).unwrap()[0], 0x0000_0300_0041_0001);
}
