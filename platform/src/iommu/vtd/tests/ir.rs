//! Interrupt remapping: the entry layout, the remappable MSI format, the
//! enable sequence and its refusals, entry-cache invalidation and the
//! interrupt remapping faults.

use alloc::string::ToString;
use alloc::vec::Vec;

use vmm_glue::Sbdf;

use crate::iommu::vtd::fake::{FakeMem, FakeRegs, SharedMem, Write, CAP_DEFAULT, ECAP_DEFAULT};
use crate::iommu::vtd::ir::interrupt_entry_descriptor;
use crate::iommu::vtd::regs::*;
use crate::iommu::vtd::{
    remappable_msi, ApicMode, Fault, IrTable, Irte, Vtd, VtdError, IR_ENTRIES,
};
use crate::iommu::TableMemory;

/// ECAP.QI (bit 1).
const QI: u64 = 1 << 1;
/// ECAP.IR (bit 3).
const IR: u64 = 1 << 3;
/// ECAP.EIM (bit 4).
const EIM: u64 = 1 << 4;

fn unit(ecap: u64) -> (Vtd<FakeRegs>, SharedMem) {
    let mem = SharedMem::new();
    let mut regs = FakeRegs::new(CAP_DEFAULT, ecap);
    regs.queue_mem = Some(mem.clone());
    let mut m = mem.clone();
    let mut vtd = Vtd::init(regs, &mut m, 0).unwrap();
    vtd.regs.take_writes();
    vtd.regs.descriptors.clear();
    (vtd, mem)
}

fn nic() -> Sbdf {
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

#[test]
fn enabling_programs_irta_sets_the_pointer_invalidates_then_enables() {
    let (mut vtd, mem) = unit(ECAP_DEFAULT | QI);
    let mut m = mem.clone();
    let t = IrTable::new(&mut m, ApicMode::Xapic, true).unwrap();
    vtd.enable_interrupt_remapping(&mut m, &t).unwrap();
    assert_eq!(
        vtd.regs.take_writes(),
        [
            // IRTA: the table, EIME (bit 11) = 0 xAPIC, S = 7.
            Write::W64(IRTA, t.base() | 7),
            // GCMD: QIE (bit 26, kept) | SIRTP (bit 24).
            Write::W32(GCMD, 1 << 26 | 1 << 24),
            // The queue: interrupt entry cache invalidation and a wait
            // after the four descriptors of init.
            Write::W64(IQT, 6 << 4),
            // GCMD: QIE | IRE (bit 25); CFI (bit 23) stays 0.
            Write::W32(GCMD, 1 << 26 | 1 << 25),
        ]
    );
    assert_eq!(vtd.regs.latched_irta, Some(t.base() | 7));
    // Global interrupt entry cache invalidation: type 4, G (bit 4) = 0.
    assert_eq!(vtd.regs.descriptors[0], [0x4, 0]);
    assert_eq!(vtd.regs.descriptors[1][0] & 0xff, 0x65);
    assert_eq!(vtd.regs.descriptors.len(), 2);
    let gsts = vtd.regs.get32(GSTS);
    assert_eq!(gsts, G_RTP | G_QIE | G_IRE | G_IRTP);
    assert_eq!(gsts & G_CFI, 0, "compatibility format stays blocked");
    assert!(vtd.interrupt_remapping_enabled());
}

#[test]
fn x2apic_mode_sets_eime() {
    let (mut vtd, mem) = unit(ECAP_DEFAULT | QI);
    let mut m = mem.clone();
    let t = IrTable::new(&mut m, ApicMode::X2apic, true).unwrap();
    vtd.enable_interrupt_remapping(&mut m, &t).unwrap();
    assert_eq!(vtd.regs.latched_irta, Some(t.base() | IRTA_EIME | 7));
}

#[test]
fn other_enables_are_kept_across_the_sequence() {
    let (mut vtd, mem) = unit(ECAP_DEFAULT | QI);
    let mut m = mem.clone();
    vtd.enable_translation().unwrap();
    vtd.regs.take_writes();
    let t = IrTable::new(&mut m, ApicMode::Xapic, true).unwrap();
    vtd.enable_interrupt_remapping(&mut m, &t).unwrap();
    let gcmd: Vec<u32> = vtd
        .regs
        .take_writes()
        .into_iter()
        .filter_map(|w| match w {
            Write::W32(GCMD, v) => Some(v),
            _ => None,
        })
        .collect();
    assert_eq!(gcmd, [G_TE | G_QIE | G_IRTP, G_TE | G_QIE | G_IRE]);
    // And later commands keep remapping on.
    vtd.disable_translation().unwrap();
    assert_eq!(vtd.regs.take_writes(), [Write::W32(GCMD, G_QIE | G_IRE)]);
    vtd.disable_interrupt_remapping().unwrap();
    assert_eq!(vtd.regs.take_writes(), [Write::W32(GCMD, G_QIE)]);
    assert!(!vtd.interrupt_remapping_enabled());
}

#[test]
fn compatibility_format_left_on_by_firmware_is_turned_off_before_ire() {
    let (mut vtd, mem) = unit(ECAP_DEFAULT | QI);
    let mut m = mem.clone();
    let gsts = vtd.regs.get32(GSTS);
    vtd.regs.set32(GSTS, gsts | G_CFI);
    let t = IrTable::new(&mut m, ApicMode::Xapic, true).unwrap();
    vtd.enable_interrupt_remapping(&mut m, &t).unwrap();
    let writes = vtd.regs.take_writes();
    assert_eq!(
        writes[1..],
        [
            Write::W32(GCMD, G_QIE | G_CFI | G_IRTP),
            Write::W64(IQT, 6 << 4),
            Write::W32(GCMD, G_QIE),
            Write::W32(GCMD, G_QIE | G_IRE),
        ]
    );
    assert_eq!(vtd.regs.get32(GSTS) & G_CFI, 0);
}

#[test]
fn without_ecap_ir_nothing_is_written() {
    let (mut vtd, mem) = unit((ECAP_DEFAULT & !IR) | QI);
    let mut m = mem.clone();
    let t = IrTable::new(&mut m, ApicMode::Xapic, true).unwrap();
    let err = vtd.enable_interrupt_remapping(&mut m, &t).unwrap_err();
    assert_eq!(err, VtdError::Unsupported("ECAP.IR"));
    assert_eq!(err.to_string(), "the unit lacks ECAP.IR");
    assert!(vtd.regs.take_writes().is_empty());
}

#[test]
fn x2apic_without_ecap_eim_is_refused() {
    let (mut vtd, mem) = unit((ECAP_DEFAULT & !EIM) | QI);
    let mut m = mem.clone();
    let t = IrTable::new(&mut m, ApicMode::X2apic, true).unwrap();
    assert_eq!(
        vtd.enable_interrupt_remapping(&mut m, &t),
        Err(VtdError::Unsupported("ECAP.EIM"))
    );
    assert!(vtd.regs.take_writes().is_empty());
    // xAPIC mode needs no EIM.
    let t = IrTable::new(&mut m, ApicMode::Xapic, true).unwrap();
    vtd.enable_interrupt_remapping(&mut m, &t).unwrap();
}

#[test]
fn without_queued_invalidation_remapping_is_refused() {
    let (mut vtd, mem) = unit(ECAP_DEFAULT);
    let mut m = mem.clone();
    assert!(!vtd.queued_invalidation());
    let t = IrTable::new(&mut m, ApicMode::Xapic, true).unwrap();
    assert_eq!(
        vtd.enable_interrupt_remapping(&mut m, &t),
        Err(VtdError::NoQueue)
    );
    assert!(vtd.regs.take_writes().is_empty());
    assert_eq!(vtd.invalidate_irte(&mut m, 0), Err(VtdError::NoQueue));
}

#[test]
fn a_pointer_that_never_latches_times_out_before_enabling() {
    let (mut vtd, mem) = unit(ECAP_DEFAULT | QI);
    let mut m = mem.clone();
    vtd.regs.stuck_gsts = G_IRTP;
    let t = IrTable::new(&mut m, ApicMode::Xapic, true).unwrap();
    assert_eq!(
        vtd.enable_interrupt_remapping(&mut m, &t),
        Err(VtdError::Timeout("GSTS.IRTPS"))
    );
    assert!(!vtd.interrupt_remapping_enabled());
}

#[test]
fn an_enable_that_never_shows_times_out() {
    let (mut vtd, mem) = unit(ECAP_DEFAULT | QI);
    let mut m = mem.clone();
    vtd.regs.stuck_gsts = G_IRE;
    let t = IrTable::new(&mut m, ApicMode::Xapic, true).unwrap();
    assert_eq!(
        vtd.enable_interrupt_remapping(&mut m, &t),
        Err(VtdError::Timeout("GSTS.IRES"))
    );
}

#[test]
fn an_entry_is_invalidated_by_index() {
    // Type 4, G (bit 4) = 1 index-selective, IM (bits 31:27) = 0, IIDX
    // (bits 47:32).
    assert_eq!(interrupt_entry_descriptor(0x2a), [0x0000_002a_0000_0014, 0]);
    assert_eq!(
        interrupt_entry_descriptor(0xffff),
        [0x0000_ffff_0000_0014, 0]
    );

    let (mut vtd, mem) = unit(ECAP_DEFAULT | QI);
    let mut m = mem.clone();
    let mut t = IrTable::new(&mut m, ApicMode::Xapic, true).unwrap();
    vtd.enable_interrupt_remapping(&mut m, &t).unwrap();
    vtd.regs.descriptors.clear();
    let e = Irte {
        vector: 0x41,
        dest_apic_id: 0,
        source: nic(),
    };
    t.set(&mut m, 0x2a, e).unwrap();
    vtd.invalidate_irte(&mut m, 0x2a).unwrap();
    t.clear(&mut m, 0x2a).unwrap();
    vtd.invalidate_irte(&mut m, 0x2a).unwrap();
    let d = &vtd.regs.descriptors;
    assert_eq!(d.len(), 4);
    assert_eq!(d[0], [0x0000_002a_0000_0014, 0]);
    assert_eq!(d[1][0] & 0xff, 0x65);
    assert_eq!(d[2], [0x0000_002a_0000_0014, 0]);
}

/// A fault record's high half for an interrupt request: F (bit 63), FR
/// (bits 39:32), SID (bits 15:0); T (bit 62) = 0, interrupt requests are
/// writes.
fn ir_fault(reason: u8, sid: u16) -> u64 {
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
fn interrupt_faults_come_from_the_fault_records() {
    let (mut vtd, _mem) = unit(ECAP_DEFAULT | QI);
    vtd.regs
        .record_fault(1, 0x0003_0000_0000_0000, ir_fault(0x26, 0x0400));
    let faults = vtd.faults();
    assert_eq!(faults.len(), 1);
    assert_eq!(faults[0].reason, 0x26);
    assert_eq!(faults[0].interrupt_index(), Some(3));
    assert_eq!(faults[0].source, Sbdf::new(0, 4, 0, 0).unwrap());
}
