//! Queued invalidation: descriptor layouts, the enable sequence, and the
//! queue taking over from the registers.

use vmm_glue::Sbdf;

use crate::iommu::vtd::fake::{FakeRegs, SharedMem, Write, CAP_DEFAULT, ECAP_DEFAULT};
use crate::iommu::vtd::qi::{
    context_descriptor, interrupt_cache_descriptor, iotlb_descriptor, wait_descriptor,
};
use crate::iommu::vtd::regs::*;
use crate::iommu::vtd::{ContextScope, IotlbScope, SlTables, Vtd, VtdError};

/// ECAP.QI (bit 1).
const ECAP_QI: u64 = ECAP_DEFAULT | 1 << 1;

fn queued_unit() -> (Vtd<FakeRegs>, SharedMem) {
    let mem = SharedMem::new();
    let mut regs = FakeRegs::new(CAP_DEFAULT, ECAP_QI);
    regs.queue_mem = Some(mem.clone());
    let mut m = mem.clone();
    let vtd = Vtd::init(regs, &mut m, 0).unwrap();
    (vtd, mem)
}

#[test]
fn descriptor_layouts_follow_the_spec() {
    // Context-cache: type 1 (bits 3:0), G = 01 global (bits 5:4).
    assert_eq!(context_descriptor(ContextScope::Global), [0x11, 0]);
    // G = 11 device, DID (bits 31:16) 7, SID (bits 47:32) 0x0219, FM 0.
    assert_eq!(
        context_descriptor(ContextScope::Device {
            sid: 0x0219,
            did: 7
        }),
        [0x0000_0219_0007_0031, 0]
    );
    // IOTLB: type 2, G = 01 global; with DW (bit 6) and DR (bit 7).
    assert_eq!(
        iotlb_descriptor(IotlbScope::Global, false, false),
        [0x12, 0]
    );
    assert_eq!(iotlb_descriptor(IotlbScope::Global, true, true), [0xd2, 0]);
    // G = 10 domain, DID 0x1234.
    assert_eq!(
        iotlb_descriptor(IotlbScope::Domain(0x1234), false, false),
        [0x1234_0022, 0]
    );
    // Interrupt entry cache: type 4, G = 0 global.
    assert_eq!(interrupt_cache_descriptor(), [0x4, 0]);
    // Wait: type 5, SW (bit 5), FN (bit 6), status data (bits 63:32);
    // status address in the high half, bits 1:0 clear.
    assert_eq!(
        wait_descriptor(0x1234_5678, 1),
        [0x0000_0001_0000_0065, 0x1234_5678]
    );
}

#[test]
fn init_enables_the_queue_and_invalidates_through_it() {
    let (mut vtd, _mem) = queued_unit();
    assert!(vtd.queued_invalidation());
    let writes = vtd.regs.take_writes();
    let iqa = vtd.regs.get64(IQA);
    assert_eq!(
        writes,
        [
            Write::W64(RTADDR, vtd.root_table()),
            Write::W32(GCMD, G_RTP),
            // IQT = 0, IQA = the page with QS (bits 2:0) = 0 and DW (bit
            // 11) = 0 (128-bit descriptors), then GCMD.QIE (bit 26).
            Write::W64(IQT, 0),
            Write::W64(IQA, iqa),
            Write::W32(GCMD, 1 << 26),
            // Two descriptors and a wait each time.
            Write::W64(IQT, 2 << 4),
            Write::W64(IQT, 4 << 4),
        ]
    );
    assert_eq!(iqa & 0xfff, 0);
    let d = &vtd.regs.descriptors;
    assert_eq!(d.len(), 4);
    assert_eq!(d[0], [0x11, 0]);
    assert_eq!(d[1][0] & 0xffff_ffff, 0x65);
    assert_eq!(d[2], [0x12, 0]);
    // No register-based invalidation once the queue is on.
    assert!(!writes.iter().any(|w| matches!(w, Write::W64(CCMD, _))));
    // Later commands keep the queue enabled.
    vtd.enable_translation().unwrap();
    assert_eq!(vtd.regs.take_writes(), [Write::W32(GCMD, G_QIE | G_TE)]);
    assert_eq!(vtd.regs.get32(GSTS), G_QIE | G_TE | G_RTP);
}

#[test]
fn attach_and_flush_go_through_the_queue() {
    let (mut vtd, mem) = queued_unit();
    let mut m = mem.clone();
    let t = SlTables::new(&mut m, vtd.sl_config()).unwrap();
    vtd.regs.descriptors.clear();
    vtd.attach(&mut m, Sbdf::new(0, 2, 3, 1).unwrap(), 7, &t)
        .unwrap();
    vtd.flush_domain(&mut m, 7).unwrap();
    vtd.flush_interrupt_cache(&mut m).unwrap();
    let kinds: alloc::vec::Vec<u64> = vtd.regs.descriptors.iter().map(|d| d[0]).collect();
    assert_eq!(kinds[0], 0x0000_0219_0007_0031);
    assert_eq!(kinds[1] & 0xff, 0x65);
    assert_eq!(kinds[2], 0x0007_0022);
    assert_eq!(kinds[4], 0x0007_0022);
    assert_eq!(kinds[6], 0x4);
    assert_eq!(kinds.len(), 8);
}

#[test]
fn the_queue_wraps_around() {
    let (mut vtd, mem) = queued_unit();
    let mut m = mem.clone();
    for _ in 0..300 {
        vtd.flush_domain(&mut m, 1).unwrap();
    }
    assert_eq!(vtd.regs.descriptors.len(), 4 + 600);
    assert_eq!(vtd.regs.get64(IQH), vtd.regs.get64(IQT));
}

#[test]
fn a_queue_error_is_reported_and_the_queue_recovers() {
    let (mut vtd, mem) = queued_unit();
    let mut m = mem.clone();
    vtd.regs.fail_descriptor = true;
    let err = vtd.flush_domain(&mut m, 1).unwrap_err();
    assert!(matches!(err, VtdError::QueueError(f) if f & FSTS_IQE != 0));
    assert_eq!(vtd.regs.get32(FSTS) & FSTS_IQE, 0);
    vtd.flush_domain(&mut m, 1).unwrap();
}

#[test]
fn a_queue_that_never_completes_times_out() {
    let (mut vtd, mem) = queued_unit();
    let mut m = mem.clone();
    vtd.regs.queue_mem = None;
    assert_eq!(
        vtd.flush_domain(&mut m, 1),
        Err(VtdError::Timeout("invalidation wait descriptor"))
    );
}

#[test]
fn without_the_queue_the_interrupt_cache_cannot_be_flushed() {
    let mut mem = SharedMem::new();
    let mut vtd = Vtd::init(FakeRegs::new(CAP_DEFAULT, ECAP_DEFAULT), &mut mem, 0).unwrap();
    assert!(!vtd.queued_invalidation());
    assert_eq!(vtd.flush_interrupt_cache(&mut mem), Err(VtdError::NoQueue));
}

#[test]
fn the_queue_frames_are_table_memory() {
    let (_vtd, mem) = queued_unit();
    // Root table, queue page, status page.
    assert_eq!(mem.0.borrow().live(), 3);
}
