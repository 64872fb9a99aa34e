//! Root and context entries: exact layouts, the invalidations around
//! them, and blocking again.

use vmm_glue::Sbdf;

use crate::iommu::vtd::fake::{FakeMem, FakeRegs, Write, CAP_DEFAULT, ECAP_DEFAULT, IOTLB_AT};
use crate::iommu::vtd::regs::*;
use crate::iommu::vtd::{ContextEntry, PagingLevels, SlConfig, SlTables, Vtd, VtdError};
use crate::iommu::TableMemory;

fn dev(bus: u8, d: u8, f: u8) -> Sbdf {
    Sbdf::new(0, bus, d, f).unwrap()
}

fn unit(cap: u64, ecap: u64) -> (Vtd<FakeRegs>, FakeMem) {
    let mut mem = FakeMem::new();
    let mut vtd = Vtd::init(FakeRegs::new(cap, ecap), &mut mem, 0).unwrap();
    vtd.regs.take_writes();
    (vtd, mem)
}

fn tables(vtd: &Vtd<FakeRegs>, mem: &mut FakeMem) -> SlTables {
    SlTables::new(mem, vtd.sl_config()).unwrap()
}

#[test]
fn attach_writes_root_and_context_entries_in_the_spec_layout() {
    let (mut vtd, mut mem) = unit(CAP_DEFAULT, ECAP_DEFAULT);
    let t = tables(&vtd, &mut mem);
    let d = dev(0x02, 0x03, 1);
    vtd.attach(&mut mem, d, 7, &t).unwrap();

    let root_slot = vtd.root_table() + 0x02 * 16;
    let root_lo = mem.read64(root_slot);
    let ctx_table = root_lo & !0xfff;
    // Root entry: P (bit 0) | CTP (bits 63:12); upper 64 bits reserved.
    assert_eq!(root_lo, ctx_table | 1);
    assert_eq!(mem.read64(root_slot + 8), 0);
    assert_ne!(ctx_table, 0);

    // devfn = 3 << 3 | 1 = 0x19.
    let slot = ctx_table + 0x19 * 16;
    // Context low: P (bit 0) = 1, FPD (bit 1) = 0, TT (bits 3:2) = 00,
    // SLPTPTR (bits 63:12) = the top second-level table.
    assert_eq!(mem.read64(slot), t.root() | 0b0001);
    // Context high: AW (bits 2:0) = 2 (48-bit, 4-level), DID (bits 23:8) = 7.
    assert_eq!(mem.read64(slot + 8), 0x0000_0000_0000_0702);

    assert_eq!(
        vtd.regs.take_writes(),
        [
            // CCMD: ICC | CIRG = 11 device | FM = 0 | SID 0x0219 (bits
            // 31:16) | DID 7.
            Write::W64(CCMD, 1 << 63 | 3 << 61 | 0x0219 << 16 | 7),
            // IOTLB: IVT | IIRG = 10 domain | DID 7 (bits 47:32).
            Write::W64(IOTLB_AT, 1 << 63 | 2 << 60 | 7 << 32),
        ]
    );
    assert_eq!(
        vtd.context(&mut mem, d),
        Some(ContextEntry {
            domain_id: 7,
            sl_root: t.root(),
            aw: 2,
            translation_type: 0,
            fault_processing_disabled: false,
        })
    );
}

#[test]
fn three_level_tables_get_aw_1() {
    let entry = ContextEntry::new(0x1234, 0xabc_d000, PagingLevels::Three);
    // Low: SLPTPTR | P. High: DID 0x1234 << 8 | AW 1 (39-bit).
    assert_eq!(entry.encode(), [0xabc_d001, 0x0012_3401]);
    assert_eq!(ContextEntry::decode(entry.encode()), Some(entry));
    assert_eq!(ContextEntry::decode([0xabc_d000, 0x0012_3401]), None);
}

#[test]
fn root_entry_layout() {
    // P (bit 0) | context-table pointer (bits 63:12); high half zero.
    assert_eq!(
        crate::iommu::vtd::root_entry(0x7_6543_2000),
        [0x7_6543_2001, 0]
    );
}

#[test]
fn one_context_table_per_bus() {
    let (mut vtd, mut mem) = unit(CAP_DEFAULT, ECAP_DEFAULT);
    let t = tables(&vtd, &mut mem);
    let before = mem.live();
    vtd.attach(&mut mem, dev(0, 3, 0), 1, &t).unwrap();
    vtd.attach(&mut mem, dev(0, 4, 0), 1, &t).unwrap();
    assert_eq!(mem.live(), before + 1);
    vtd.attach(&mut mem, dev(5, 0, 0), 1, &t).unwrap();
    assert_eq!(mem.live(), before + 2);
}

#[test]
fn attaching_the_same_entry_again_writes_nothing() {
    let (mut vtd, mut mem) = unit(CAP_DEFAULT, ECAP_DEFAULT);
    let t = tables(&vtd, &mut mem);
    vtd.attach(&mut mem, dev(0, 3, 0), 1, &t).unwrap();
    vtd.regs.take_writes();
    vtd.attach(&mut mem, dev(0, 3, 0), 1, &t).unwrap();
    assert!(vtd.regs.take_writes().is_empty());
}

#[test]
fn moving_a_device_clears_and_invalidates_the_old_domain_first() {
    let (mut vtd, mut mem) = unit(CAP_DEFAULT, ECAP_DEFAULT);
    let a = tables(&vtd, &mut mem);
    let b = tables(&vtd, &mut mem);
    let d = dev(0, 3, 0);
    vtd.attach(&mut mem, d, 1, &a).unwrap();
    vtd.regs.take_writes();
    vtd.attach(&mut mem, d, 2, &b).unwrap();
    assert_eq!(
        vtd.regs.take_writes(),
        [
            Write::W64(CCMD, 1 << 63 | 3 << 61 | 0x18 << 16 | 1),
            Write::W64(IOTLB_AT, 1 << 63 | 2 << 60 | 1 << 32),
            Write::W64(CCMD, 1 << 63 | 3 << 61 | 0x18 << 16 | 2),
            Write::W64(IOTLB_AT, 1 << 63 | 2 << 60 | 2 << 32),
        ]
    );
    assert_eq!(vtd.context(&mut mem, d).unwrap().sl_root, b.root());
}

#[test]
fn detach_blocks_the_device_and_invalidates_its_domain() {
    let (mut vtd, mut mem) = unit(CAP_DEFAULT, ECAP_DEFAULT);
    let t = tables(&vtd, &mut mem);
    let d = dev(0, 3, 0);
    vtd.attach(&mut mem, d, 9, &t).unwrap();
    vtd.regs.take_writes();
    vtd.detach(&mut mem, d).unwrap();
    assert_eq!(vtd.context(&mut mem, d), None);
    assert_eq!(
        vtd.regs.take_writes(),
        [
            Write::W64(CCMD, 1 << 63 | 3 << 61 | 0x18 << 16 | 9),
            Write::W64(IOTLB_AT, 1 << 63 | 2 << 60 | 9 << 32),
        ]
    );
    let ctx_table = mem.read64(vtd.root_table()) & !0xfff;
    assert_eq!(mem.read64(ctx_table + 0x18 * 16), 0);
    assert_eq!(mem.read64(ctx_table + 0x18 * 16 + 8), 0);
}

#[test]
fn detaching_a_device_without_an_entry_does_nothing() {
    let (mut vtd, mut mem) = unit(CAP_DEFAULT, ECAP_DEFAULT);
    vtd.detach(&mut mem, dev(3, 0, 0)).unwrap();
    let t = tables(&vtd, &mut mem);
    vtd.attach(&mut mem, dev(3, 1, 0), 1, &t).unwrap();
    vtd.regs.take_writes();
    vtd.detach(&mut mem, dev(3, 0, 0)).unwrap();
    assert!(vtd.regs.take_writes().is_empty());
    assert_eq!(vtd.context(&mut mem, dev(3, 0, 0)), None);
}

#[test]
fn caching_mode_invalidates_the_context_under_domain_zero_and_reserves_it() {
    // CAP.CM (bit 7).
    let (mut vtd, mut mem) = unit(CAP_DEFAULT | 1 << 7, ECAP_DEFAULT);
    let t = tables(&vtd, &mut mem);
    assert_eq!(
        vtd.attach(&mut mem, dev(0, 3, 0), 0, &t),
        Err(VtdError::BadDomain(0))
    );
    vtd.attach(&mut mem, dev(0, 3, 0), 4, &t).unwrap();
    assert_eq!(
        vtd.regs.take_writes(),
        [
            Write::W64(CCMD, 1 << 63 | 3 << 61 | 0x18 << 16),
            Write::W64(IOTLB_AT, 1 << 63 | 2 << 60 | 4 << 32),
        ]
    );
    vtd.sync_after_map(&mut mem, 4).unwrap();
    assert_eq!(
        vtd.regs.take_writes(),
        [Write::W64(IOTLB_AT, 1 << 63 | 2 << 60 | 4 << 32)]
    );
}

#[test]
fn sync_after_map_does_nothing_on_a_plain_unit() {
    let (mut vtd, mut mem) = unit(CAP_DEFAULT, ECAP_DEFAULT);
    vtd.sync_after_map(&mut mem, 4).unwrap();
    assert!(vtd.regs.take_writes().is_empty());
}

#[test]
fn write_buffer_flush_precedes_invalidations_when_rwbf() {
    // CAP.RWBF (bit 4).
    let (mut vtd, mut mem) = unit(CAP_DEFAULT | 1 << 4, ECAP_DEFAULT);
    vtd.flush_domain(&mut mem, 3).unwrap();
    assert_eq!(
        vtd.regs.take_writes(),
        [
            // GCMD.WBF (bit 27), then GSTS.WBFS is awaited clear.
            Write::W32(GCMD, 1 << 27),
            Write::W64(IOTLB_AT, 1 << 63 | 2 << 60 | 3 << 32),
        ]
    );
    vtd.sync_after_map(&mut mem, 3).unwrap();
    assert_eq!(vtd.regs.take_writes(), [Write::W32(GCMD, 1 << 27)]);
    let t = tables(&vtd, &mut mem);
    vtd.attach(&mut mem, dev(0, 1, 0), 3, &t).unwrap();
    assert_eq!(vtd.regs.take_writes()[0], Write::W32(GCMD, 1 << 27));
}

#[test]
fn domain_ids_beyond_cap_nd_are_refused() {
    // CAP.ND = 0: 16 domain ids.
    let (mut vtd, mut mem) = unit(CAP_DEFAULT & !7, ECAP_DEFAULT);
    let t = tables(&vtd, &mut mem);
    assert_eq!(vtd.caps().domains(), 16);
    assert_eq!(
        vtd.attach(&mut mem, dev(0, 3, 0), 16, &t),
        Err(VtdError::BadDomain(16))
    );
    vtd.attach(&mut mem, dev(0, 3, 0), 15, &t).unwrap();
}

#[test]
fn a_device_on_another_segment_is_refused() {
    let (mut vtd, mut mem) = unit(CAP_DEFAULT, ECAP_DEFAULT);
    let t = tables(&vtd, &mut mem);
    let other = Sbdf::new(1, 0, 3, 0).unwrap();
    assert_eq!(
        vtd.attach(&mut mem, other, 1, &t),
        Err(VtdError::WrongSegment(other))
    );
    assert_eq!(
        vtd.detach(&mut mem, other),
        Err(VtdError::WrongSegment(other))
    );
    assert_eq!(vtd.context(&mut mem, other), None);
}

#[test]
fn tables_deeper_than_the_unit_supports_are_refused() {
    let cap = (CAP_DEFAULT & !(0x1f << 8)) | (0b00010 << 8);
    let (mut vtd, mut mem) = unit(cap, ECAP_DEFAULT);
    let t = SlTables::new(&mut mem, SlConfig::small_pages(PagingLevels::Four)).unwrap();
    assert_eq!(
        vtd.attach(&mut mem, dev(0, 3, 0), 1, &t),
        Err(VtdError::LevelsUnsupported(PagingLevels::Four))
    );
}

#[test]
fn a_non_coherent_unit_gets_every_table_write_flushed() {
    let (mut vtd, mut mem) = unit(CAP_DEFAULT, ECAP_DEFAULT & !1);
    // The root table was flushed whole at init.
    assert_eq!(mem.flushes, [(vtd.root_table(), 4096)]);
    mem.flushes.clear();
    let t = tables(&vtd, &mut mem);
    assert!(!t.config().coherent);
    assert_eq!(mem.flushes, [(t.root(), 4096)]);
    mem.flushes.clear();
    vtd.attach(&mut mem, dev(1, 0, 0), 1, &t).unwrap();
    let ctx = mem.read64(vtd.root_table() + 16) & !0xfff;
    assert_eq!(
        mem.flushes,
        [(ctx, 4096), (vtd.root_table() + 16, 16), (ctx, 16)]
    );
}

#[test]
fn attach_without_memory_for_the_context_table_fails() {
    let (mut vtd, mut mem) = unit(CAP_DEFAULT, ECAP_DEFAULT);
    let t = tables(&vtd, &mut mem);
    mem.limit = Some(mem.live());
    assert_eq!(
        vtd.attach(&mut mem, dev(0, 3, 0), 1, &t),
        Err(VtdError::NoMemory)
    );
    assert_eq!(vtd.context(&mut mem, dev(0, 3, 0)), None);
}
