//! Bringing a unit up: the register sequence, capability decoding,
//! timeouts and rejected requests.

use crate::iommu::vtd::fake::{FakeMem, FakeRegs, Write, CAP_DEFAULT, ECAP_DEFAULT, IOTLB_AT};
use crate::iommu::vtd::regs::*;
use crate::iommu::vtd::{PagingLevels, Vtd, VtdError};
use crate::iommu::TableMemory;

#[test]
fn init_installs_an_empty_root_table_and_invalidates_globally() {
    let mut mem = FakeMem::new();
    let mut vtd = Vtd::init(FakeRegs::qemu(), &mut mem, 0).unwrap();
    let root = vtd.root_table();
    assert_eq!(mem.live(), 1);
    assert_eq!(vtd.levels(), PagingLevels::Four);
    assert_eq!(
        vtd.regs.take_writes(),
        [
            // RTADDR: the root table, TTM (bits 11:10) = 00, legacy mode.
            Write::W64(RTADDR, root),
            // GCMD.SRTP (bit 30).
            Write::W32(GCMD, 1 << 30),
            // CCMD: ICC (bit 63) | CIRG = 01 global (bits 62:61).
            Write::W64(CCMD, 1 << 63 | 1 << 61),
            // IOTLB at IRO + 8: IVT (bit 63) | IIRG = 01 global (bits 61:60).
            Write::W64(IOTLB_AT, 1 << 63 | 1 << 60),
        ]
    );
    assert_eq!(vtd.regs.get32(GSTS) & G_RTP, G_RTP);
    assert!(!vtd.translation_enabled());
    for bus in 0..256 {
        assert_eq!(mem.read64(root + bus * 16), 0, "root entry {bus}");
    }
}

#[test]
fn init_chooses_three_levels_when_sagaw_has_only_39_bits() {
    let cap = (CAP_DEFAULT & !(0x1f << 8)) | (0b00010 << 8);
    let mut mem = FakeMem::new();
    let vtd = Vtd::init(FakeRegs::new(cap, ECAP_DEFAULT), &mut mem, 0).unwrap();
    assert_eq!(vtd.levels(), PagingLevels::Three);
    assert_eq!(vtd.sl_config().levels, PagingLevels::Three);
}

#[test]
fn init_without_a_usable_width_fails_before_allocating() {
    // SAGAW bit 3 only: 57-bit, 5-level tables.
    let cap = (CAP_DEFAULT & !(0x1f << 8)) | (0b01000 << 8);
    let mut mem = FakeMem::new();
    let err = Vtd::init(FakeRegs::new(cap, ECAP_DEFAULT), &mut mem, 0).unwrap_err();
    assert_eq!(err, VtdError::NoUsableWidth(0b01000));
    assert_eq!(mem.allocated, 0);
}

#[test]
fn init_without_memory_fails() {
    let mut mem = FakeMem::new();
    mem.limit = Some(0);
    let err = Vtd::init(FakeRegs::qemu(), &mut mem, 0).unwrap_err();
    assert_eq!(err, VtdError::NoMemory);
}

#[test]
fn root_pointer_timeout_names_the_register_and_frees_the_root() {
    let mut regs = FakeRegs::qemu();
    regs.stuck_gsts = G_RTP;
    let mut mem = FakeMem::new();
    let err = Vtd::init(regs, &mut mem, 0).unwrap_err();
    assert_eq!(err, VtdError::Timeout("GSTS.RTPS"));
    assert_eq!(
        err.to_string(),
        "the unit did not answer (GSTS.RTPS timed out)"
    );
    assert_eq!(mem.live(), 0);
}

#[test]
fn context_invalidation_timeout_is_an_error() {
    let mut regs = FakeRegs::qemu();
    regs.stuck_ccmd = true;
    let err = Vtd::init(regs, &mut FakeMem::new(), 0).unwrap_err();
    assert_eq!(err, VtdError::Timeout("CCMD.ICC"));
}

#[test]
fn iotlb_invalidation_timeout_is_an_error() {
    let mut regs = FakeRegs::qemu();
    regs.stuck_iotlb = true;
    let err = Vtd::init(regs, &mut FakeMem::new(), 0).unwrap_err();
    assert_eq!(err, VtdError::Timeout("IOTLB.IVT"));
}

#[test]
fn an_invalidation_completed_with_granularity_zero_is_rejected() {
    let mut regs = FakeRegs::qemu();
    regs.reject = true;
    let err = Vtd::init(regs, &mut FakeMem::new(), 0).unwrap_err();
    assert_eq!(err, VtdError::Rejected("CCMD"));
}

#[test]
fn commands_keep_the_enables_firmware_left_on() {
    let mut regs = FakeRegs::qemu();
    // Interrupt remapping and compatibility format on (GSTS.IRES, CFIS).
    regs.set32(GSTS, G_IRE | G_CFI);
    let mut vtd = Vtd::init(regs, &mut FakeMem::new(), 0).unwrap();
    let writes = vtd.regs.take_writes();
    assert_eq!(writes[1], Write::W32(GCMD, G_IRE | G_CFI | G_RTP));
    vtd.enable_translation().unwrap();
    assert_eq!(
        vtd.regs.take_writes(),
        [Write::W32(GCMD, G_IRE | G_CFI | G_TE)]
    );
}

#[test]
fn queued_invalidation_left_on_by_firmware_is_turned_off_first() {
    let mut regs = FakeRegs::qemu();
    regs.set32(GSTS, G_QIE);
    regs.set64(IQH, 0x40);
    regs.set64(IQT, 0x40);
    let mut vtd = Vtd::init(regs, &mut FakeMem::new(), 0).unwrap();
    let writes = vtd.regs.take_writes();
    assert_eq!(writes[0], Write::W32(GCMD, 0));
    assert_eq!(vtd.regs.get32(GSTS) & G_QIE, 0);
}

#[test]
fn stale_faults_are_cleared_at_init() {
    let mut regs = FakeRegs::qemu();
    regs.record_fault(2, 0x1000, FRCD_F | 2 << 32 | 0x18);
    regs.set32(FSTS, regs.get32(FSTS) | FSTS_PFO);
    let mut vtd = Vtd::init(regs, &mut FakeMem::new(), 0).unwrap();
    assert_eq!(vtd.regs.get32(FSTS), 0);
    assert!(vtd.faults().is_empty());
}

#[test]
fn enable_translation_sets_te_and_waits_for_tes() {
    let mut vtd = Vtd::init(FakeRegs::qemu(), &mut FakeMem::new(), 0).unwrap();
    vtd.regs.take_writes();
    vtd.enable_translation().unwrap();
    // GCMD.TE (bit 31); SRTP is one-shot and not repeated.
    assert_eq!(vtd.regs.take_writes(), [Write::W32(GCMD, 1 << 31)]);
    assert!(vtd.translation_enabled());
    vtd.disable_translation().unwrap();
    assert!(!vtd.translation_enabled());
}

#[test]
fn enable_translation_timeout_names_tes() {
    let mut vtd = Vtd::init(FakeRegs::qemu(), &mut FakeMem::new(), 0).unwrap();
    vtd.regs.stuck_gsts = G_TE;
    assert_eq!(vtd.enable_translation(), Err(VtdError::Timeout("GSTS.TES")));
}

#[test]
fn protected_memory_regions_are_released_once_translation_is_on() {
    let mut vtd = Vtd::init(FakeRegs::qemu(), &mut FakeMem::new(), 0).unwrap();
    vtd.regs.set32(PMEN, PMEN_EPM | PMEN_PRS);
    vtd.regs.take_writes();
    vtd.enable_translation().unwrap();
    assert_eq!(
        vtd.regs.take_writes(),
        [Write::W32(GCMD, G_TE), Write::W32(PMEN, 0)]
    );
    assert_eq!(vtd.regs.get32(PMEN), 0);
}

#[test]
fn iotlb_invalidation_drains_when_the_unit_can() {
    // CAP.DWD (bit 54) and CAP.DRD (bit 55).
    let cap = CAP_DEFAULT | 1 << 54 | 1 << 55;
    let mut vtd = Vtd::init(FakeRegs::new(cap, ECAP_DEFAULT), &mut FakeMem::new(), 0).unwrap();
    let writes = vtd.regs.take_writes();
    // IVT | IIRG global | DR (bit 49) | DW (bit 48).
    assert_eq!(
        writes[3],
        Write::W64(IOTLB_AT, 1 << 63 | 1 << 60 | 1 << 49 | 1 << 48)
    );
}

#[test]
fn capabilities_decode_the_spec_fields() {
    let vtd = Vtd::init(FakeRegs::qemu(), &mut FakeMem::new(), 0).unwrap();
    let caps = vtd.caps();
    assert_eq!(caps.version(), (1, 0));
    assert_eq!(caps.sagaw(), 0b00110);
    assert_eq!(caps.mgaw(), 48);
    assert_eq!(caps.domains(), 65536);
    assert_eq!(caps.fault_offset(), 0x220);
    assert_eq!(caps.fault_records(), 4);
    assert_eq!(caps.iotlb_offset(), 0xf0);
    assert!(caps.sl_2m() && caps.sl_1g() && caps.psi());
    assert!(caps.coherent() && caps.interrupt_remapping() && caps.extended_interrupt_mode());
    assert!(!caps.queued_invalidation() && !caps.caching_mode() && !caps.rwbf());
    assert_eq!(
        caps.to_string(),
        "version 1.0, SAGAW 39/48-bit, MGAW 48, large pages 2M/1G, 65536 domains, \
         4 fault records at 0x220, IOTLB at 0xf0 IR EIM C PSI"
    );
}
