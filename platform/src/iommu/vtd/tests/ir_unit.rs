//! Interrupt remapping on a unit: the enable sequence and its refusals,
//! entry-cache invalidation, and what the unit then does with remappable,
//! forged and misdirected interrupts (the fake models the
//! specification's checks).

use alloc::string::ToString;
use alloc::vec::Vec;

use vmm_glue::Sbdf;

use crate::iommu::vtd::fake::{FakeRegs, Irq, SharedMem, Write, CAP_DEFAULT, ECAP_DEFAULT};
use crate::iommu::vtd::ir::interrupt_entry_descriptor;
use crate::iommu::vtd::regs::*;
use crate::iommu::vtd::{remappable_msi, ApicMode, IrTable, Irte, Vtd, VtdError, IR_ENTRIES};

use super::ir::{ir_fault, nic};

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
    assert_eq!(
        vtd.regs.interrupt(0x0301, 0xfee0_3000, 0x41),
        Irq::Blocked(0x25)
    );
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

/// A unit with remapping on in `mode` and entry 5 sending vector 0x41 to
/// APIC 3 for 03:00.1.
fn remapping(mode: ApicMode) -> (Vtd<FakeRegs>, SharedMem, IrTable) {
    let (mut vtd, mem) = unit(ECAP_DEFAULT | QI);
    let mut m = mem.clone();
    let mut t = IrTable::new(&mut m, mode, true).unwrap();
    vtd.enable_interrupt_remapping(&mut m, &t).unwrap();
    let e = Irte {
        vector: 0x41,
        dest_apic_id: 3,
        source: nic(),
    };
    t.set(&mut m, 5, e).unwrap();
    vtd.invalidate_irte(&mut m, 5).unwrap();
    (vtd, mem, t)
}

#[test]
fn a_remappable_msi_from_the_entrys_function_is_delivered() {
    for mode in [ApicMode::Xapic, ApicMode::X2apic] {
        let (mut vtd, _mem, _t) = remapping(mode);
        let (addr, data) = remappable_msi(5);
        assert_eq!(
            vtd.regs.interrupt(0x0301, addr, data),
            Irq::Delivered {
                vector: 0x41,
                dest: 3
            },
            "{mode:?}"
        );
        assert!(vtd.faults().is_empty());
    }
}

#[test]
fn a_forged_compatibility_format_msi_is_blocked_and_recorded() {
    let (mut vtd, _mem, _t) = remapping(ApicMode::Xapic);
    // What a device would write to reach vector 0x41 on APIC 3 without
    // remapping: address 0xFEE0_3000 (destination in bits 19:12, format
    // bit 4 = 0), data = the vector.
    assert_eq!(
        vtd.regs.interrupt(0x0301, 0xfee0_3000, 0x41),
        Irq::Blocked(0x25)
    );
    let faults = vtd.faults();
    assert_eq!(faults.len(), 1);
    assert_eq!(faults[0].reason, 0x25);
    assert_eq!(faults[0].source, nic());
    assert!(faults[0]
        .to_string()
        .contains("compatibility-format interrupt blocked"));
}

#[test]
fn another_function_using_the_entry_fails_the_source_check() {
    let (mut vtd, _mem, _t) = remapping(ApicMode::Xapic);
    let (addr, data) = remappable_msi(5);
    // 03:00.0: same device, another function.
    assert_eq!(vtd.regs.interrupt(0x0300, addr, data), Irq::Blocked(0x26));
    let f = vtd.faults();
    assert_eq!((f[0].reason, f[0].interrupt_index()), (0x26, Some(5)));
}

#[test]
fn absent_and_out_of_range_entries_are_blocked() {
    let (mut vtd, _mem, _t) = remapping(ApicMode::Xapic);
    let (addr, _) = remappable_msi(6);
    assert_eq!(vtd.regs.interrupt(0x0301, addr, 0), Irq::Blocked(0x22));
    let (addr, _) = remappable_msi(IR_ENTRIES);
    assert_eq!(vtd.regs.interrupt(0x0301, addr, 0), Irq::Blocked(0x21));
    let f = vtd.faults();
    assert_eq!(
        f.iter()
            .map(|f| (f.reason, f.interrupt_index()))
            .collect::<Vec<_>>(),
        [(0x22, Some(6)), (0x21, Some(256))]
    );
}

#[test]
fn a_changed_entry_takes_effect_after_its_invalidation() {
    let (mut vtd, mem, mut t) = remapping(ApicMode::Xapic);
    let mut m = mem.clone();
    let (addr, data) = remappable_msi(5);
    vtd.regs.interrupt(0x0301, addr, data);
    t.clear(&mut m, 5).unwrap();
    // The unit still holds the entry it read.
    assert!(matches!(
        vtd.regs.interrupt(0x0301, addr, data),
        Irq::Delivered { .. }
    ));
    vtd.invalidate_irte(&mut m, 5).unwrap();
    assert_eq!(vtd.regs.interrupt(0x0301, addr, data), Irq::Blocked(0x22));
}

#[test]
fn before_remapping_is_on_interrupts_pass_unremapped() {
    let (mut vtd, _mem) = unit(ECAP_DEFAULT | QI);
    assert_eq!(
        vtd.regs.interrupt(0x0301, 0xfee0_3000, 0x41),
        Irq::Unremapped
    );
}
