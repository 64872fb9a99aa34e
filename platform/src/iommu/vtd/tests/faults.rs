//! Fault records: decoding raw records, reading and clearing them.

use alloc::string::ToString;

use vmm_glue::Sbdf;

use crate::iommu::vtd::fake::{FakeMem, FakeRegs, Write};
use crate::iommu::vtd::regs::*;
use crate::iommu::vtd::{reason_text, AccessKind, Fault, Vtd};

/// Record high half: F (bit 63), T (bit 62, set = read), FR (bits 39:32),
/// SID (bits 15:0).
fn hi(read: bool, reason: u8, sid: u16) -> u64 {
    FRCD_F | u64::from(read) << 62 | u64::from(reason) << 32 | u64::from(sid)
}

#[test]
fn a_write_without_permission_decodes_and_prints() {
    // SID 0x0018 = 00:03.0; FI = 0x3ffff000 (low bits 11:0 reserved).
    let f = Fault::decode(0, 0x3fff_f000, hi(false, 0x05, 0x0018)).unwrap();
    assert_eq!(
        f,
        Fault {
            source: Sbdf::new(0, 0, 3, 0).unwrap(),
            kind: AccessKind::Write,
            reason: 5,
            address: 0x3fff_f000,
            pasid: None,
        }
    );
    assert_eq!(
        f.to_string(),
        "vt-d: DMA write fault from 0000:00:03.0 at 0x3ffff000: reason 0x05 \
         (second-level write without write permission)"
    );
}

#[test]
fn a_read_from_an_unassigned_device_decodes_and_prints() {
    // SID 0x1a0f = 1a:01.7.
    let f = Fault::decode(2, 0x1234_5fff, hi(true, 0x02, 0x1a0f)).unwrap();
    assert_eq!(f.kind, AccessKind::Read);
    assert_eq!(f.address, 0x1234_5000);
    assert_eq!(
        f.to_string(),
        "vt-d: DMA read fault from 0002:1a:01.7 at 0x12345000: reason 0x02 \
         (context entry not present (device not assigned))"
    );
}

#[test]
fn unknown_reasons_print_only_the_code() {
    let f = Fault::decode(0, 0, hi(false, 0x7e, 0)).unwrap();
    assert_eq!(
        f.to_string(),
        "vt-d: DMA write fault from 0000:00:00.0 at 0x0: reason 0x7e"
    );
}

#[test]
fn interrupt_faults_print_the_index() {
    // FI bits 63:48 = interrupt index 0x21; reason 0x22.
    let f = Fault::decode(0, 0x0021_0000_0000_0000, hi(false, 0x22, 0x0100)).unwrap();
    assert!(f.is_interrupt());
    assert_eq!(
        f.to_string(),
        "vt-d: interrupt fault from 0000:01:00.0 index 33: reason 0x22 \
         (interrupt remapping entry not present)"
    );
}

#[test]
fn the_pasid_is_decoded_when_present() {
    // PP (record bit 95 = high bit 31), PV (record bits 123:104 = high
    // bits 59:40).
    let f = Fault::decode(0, 0x1000, hi(true, 0x06, 8) | 1 << 31 | 0x12345 << 40).unwrap();
    assert_eq!(f.pasid, Some(0x12345));
    assert!(f.to_string().contains("(PASID 0x12345)"));
}

#[test]
fn a_record_without_f_is_no_fault() {
    assert_eq!(Fault::decode(0, 0x1000, hi(true, 1, 1) & !FRCD_F), None);
}

#[test]
fn every_listed_reason_has_text() {
    for r in (0x01..=0x0d).chain(0x20..=0x28) {
        assert!(reason_text(r).is_some(), "{r:#x}");
    }
    assert_eq!(reason_text(0), None);
}

#[test]
fn faults_reads_and_clears_every_pending_record() {
    let mut vtd = Vtd::init(FakeRegs::qemu(), &mut FakeMem::new(), 0).unwrap();
    vtd.regs
        .record_fault(0, 0x3fff_f000, hi(false, 0x05, 0x0018));
    vtd.regs.record_fault(3, 0x8000, hi(true, 0x02, 0x0020));
    vtd.regs.set32(FSTS, vtd.regs.get32(FSTS) | FSTS_PFO);
    vtd.regs.take_writes();
    let faults = vtd.faults();
    assert_eq!(faults.len(), 2);
    assert_eq!(faults[0].reason, 5);
    assert_eq!(faults[1].source, Sbdf::new(0, 0, 4, 0).unwrap());
    assert_eq!(
        vtd.regs.take_writes(),
        [
            // F is cleared by writing 1 to bit 31 of the record's last
            // dword: FRO 0x220 + 16 * i + 12.
            Write::W32(0x22c, 1 << 31),
            Write::W32(0x25c, 1 << 31),
            // FSTS.PFO (bit 0) is write-1-to-clear.
            Write::W32(FSTS, 1),
        ]
    );
    assert_eq!(vtd.regs.get32(FSTS), 0);
    assert!(vtd.faults().is_empty());
    assert!(vtd.regs.take_writes().is_empty());
}
