//! The writable page-table assist, `update_va_mapping`, the other
//! `mmuext_op` commands, M2P updates, ballooning, descriptor pages and
//! `foreigndom`.

use super::tests::*;
use super::*;
use crate::pv::abi::domid;
use crate::pv::abi::pte::{ACCESSED, DIRTY, GUEST_KERNEL, PRESENT, RW, USER};

fn ptwr(
    d: &mut Dom,
    mfn: u64,
    off: usize,
    data: &[u8],
    old: Option<u64>,
) -> Result<PtwrOutcome, PtwrError> {
    d.mm.ptwr_write(&mut d.mem, mfn, off, data, old)
}

const WRITTEN: Result<PtwrOutcome, PtwrError> = Ok(PtwrOutcome::Written { flush: Flush::None });

// The writable page-table assist.

#[test]
fn ptwr_full_write_is_validated_adjusted_and_releases_the_old_entry() {
    let mut d = booted();
    let new = e(21, PRESENT | RW);
    assert_eq!(ptwr(&mut d, L1, 20 * 8, &new.to_le_bytes(), None), WRITTEN);
    assert_eq!(d.mem.get(L1, 20), new | USER | GUEST_KERNEL);
    assert_eq!(d.state(20).count, 0);
    assert_eq!(d.state(21).count, 2);
    d.audit();
}

#[test]
fn ptwr_sub_word_writes_merge_into_the_entry() {
    let mut d = booted();
    // Clear PRESENT with a one-byte write to the low byte.
    let low = (d.mem.get(L1, 20) & 0xfe) as u8;
    assert_eq!(ptwr(&mut d, L1, 20 * 8, &[low], None), WRITTEN);
    assert_eq!(d.mem.get(L1, 20) & PRESENT, 0);
    assert_eq!(d.state(20).refs, 0);
    // Then the high half (NX, and bit 52 to keep it a kernel mapping) as a
    // 4-byte write, then present again.
    assert_eq!(
        ptwr(&mut d, L1, 20 * 8 + 4, &0x8010_0000u32.to_le_bytes(), None),
        WRITTEN
    );
    assert_eq!(ptwr(&mut d, L1, 20 * 8, &[low | 1], None), WRITTEN);
    assert_eq!(
        d.mem.get(L1, 20),
        e(20, L1_RW | USER | GUEST_KERNEL) | (1 << 63)
    );
    assert_eq!(d.state(20).count, 1);
    d.audit();
}

#[test]
fn ptwr_cmpxchg_mismatch_writes_nothing_and_reports_the_current_value() {
    let mut d = booted();
    let cur = d.mem.get(L1, 20);
    let new = e(21, PRESENT);
    let r = ptwr(&mut d, L1, 20 * 8, &new.to_le_bytes(), Some(cur ^ ACCESSED));
    assert_eq!(r, Ok(PtwrOutcome::Mismatch { current: cur }));
    assert_eq!(d.mem.get(L1, 20), cur);
    d.audit();
    // A 2-byte cmpxchg reports the 2 bytes it compared.
    let same = ((cur >> 16) as u16).to_le_bytes();
    let r = ptwr(&mut d, L1, 20 * 8 + 2, &same, Some(0xffff));
    assert_eq!(
        r,
        Ok(PtwrOutcome::Mismatch {
            current: (cur >> 16) & 0xffff
        })
    );
    assert_eq!(
        ptwr(&mut d, L1, 20 * 8, &new.to_le_bytes(), Some(cur)),
        WRITTEN
    );
    assert_eq!(d.mem.get(L1, 20), new | USER | GUEST_KERNEL);
    d.audit();
}

#[test]
fn ptwr_to_a_frame_that_is_not_a_validated_l1_is_not_the_assists() {
    let mut d = booted();
    for f in [L2, L3, L4, 20, N + 3] {
        assert_eq!(
            ptwr(&mut d, f, 0, &[0; 8], None),
            Err(PtwrError::NotL1),
            "frame {f}"
        );
    }
}

#[test]
fn ptwr_misaligned_or_odd_sized_writes_are_refused() {
    let mut d = booted();
    assert_eq!(
        ptwr(&mut d, L1, 4, &[0; 8], None),
        Err(PtwrError::BadAccess)
    );
    assert_eq!(
        ptwr(&mut d, L1, 1, &[0; 2], None),
        Err(PtwrError::BadAccess)
    );
    assert_eq!(
        ptwr(&mut d, L1, 0, &[0; 3], None),
        Err(PtwrError::BadAccess)
    );
    assert_eq!(ptwr(&mut d, L1, 0, &[], None), Err(PtwrError::BadAccess));
    assert_eq!(
        ptwr(&mut d, L1, 4096, &[0], None),
        Err(PtwrError::BadAccess)
    );
}

#[test]
fn ptwr_entry_mapping_a_table_writable_is_refused() {
    let mut d = booted();
    let before = d.mem.get(L1, 100);
    let r = ptwr(&mut d, L1, 100 * 8, &e(L2, L1_RW).to_le_bytes(), None);
    assert_eq!(r, Err(PtwrError::Refused(Errno::Busy)));
    assert_eq!(d.mem.get(L1, 100), before);
    d.audit();
}

#[test]
fn ptwr_making_a_former_table_writable_reports_the_type_change_flush() {
    let mut d = booted();
    d.mem.clear(30);
    d.map(30, false).unwrap();
    d.pin(1, 30).unwrap();
    d.unpin(30).unwrap();
    let r = ptwr(&mut d, L1, 30 * 8, &e(30, L1_RW).to_le_bytes(), None);
    assert_eq!(r, Ok(PtwrOutcome::Written { flush: Flush::All }));
    d.audit();
}

// update_va_mapping.

#[test]
fn update_va_mapping_updates_an_l1_entry() {
    let mut d = booted();
    let fx =
        d.mm.update_va_mapping(&mut d.mem, L1, 100, e(21, L1_RO), PgOwner::Own);
    assert_eq!(fx, Ok(Effects::default()));
    assert_eq!(d.mem.get(L1, 100), e(21, L1_RO | USER | GUEST_KERNEL));
    d.audit();
}

#[test]
fn update_va_mapping_through_a_frame_that_is_not_an_l1_is_einval() {
    let mut d = booted();
    for f in [L2, 20, N + 1] {
        let r = d.mm.update_va_mapping(&mut d.mem, f, 0, 0, PgOwner::Own);
        assert_eq!(r, Err(Errno::Inval), "frame {f}");
    }
    let r =
        d.mm.update_va_mapping(&mut d.mem, L1, 100, e(L3, L1_RW), PgOwner::Own);
    assert_eq!(r, Err(Errno::Busy));
}

#[test]
fn uvmf_flags_pick_the_flush() {
    let va = 0xffff_8880_0000_1000;
    assert_eq!(uvmf_flush(0, va), Flush::None);
    assert_eq!(uvmf_flush(1, va), Flush::Local);
    assert_eq!(uvmf_flush(1 | 4, va), Flush::All);
    assert_eq!(uvmf_flush(2, va), Flush::LocalVa(va));
    assert_eq!(uvmf_flush(2 | 4, va), Flush::AllVa(va));
    // A vCPU bitmap: update_va_mapping returns vcpumask_to_pcpumask's
    // -EFAULT when it cannot be read (mmuext_op's -EINVAL is below).
    let mask = 0x7000_0000u64;
    assert_eq!(
        uvmf_flush(2 | mask, va),
        Flush::Vcpus {
            vcpumask: mask,
            va: Some(va),
            unreadable: Errno::Fault
        }
    );
    assert_eq!(
        uvmf_flush(1 | mask, va),
        Flush::Vcpus {
            vcpumask: mask,
            va: None,
            unreadable: Errno::Fault
        }
    );
    assert_eq!(uvmf_flush(2, 0x8000_0000_0000_0000), Flush::None);
}

// MMU_MACHPHYS_UPDATE.

#[test]
fn machphys_update_asks_for_the_m2p_write() {
    let mut d = booted();
    let ptr = (21 << 12) | mmu_cmd::MACHPHYS_UPDATE;
    let fx =
        d.mm.mmu_update(&mut d.mem, ptr, 0x1234, PgOwner::Own)
            .unwrap();
    assert_eq!(
        fx.m2p,
        Some(M2pWrite {
            mfn: 21,
            pfn: 0x1234
        })
    );
    let ptr = (SHARED_INFO << 12) | 0x800 | mmu_cmd::MACHPHYS_UPDATE;
    assert!(d.mm.mmu_update(&mut d.mem, ptr, 7, PgOwner::Own).is_ok());
}

#[test]
fn machphys_update_of_a_frame_that_is_not_the_domains_is_einval() {
    let mut d = booted();
    for f in [N, BAR] {
        let ptr = (f << 12) | mmu_cmd::MACHPHYS_UPDATE;
        assert_eq!(
            d.mm.mmu_update(&mut d.mem, ptr, 1, PgOwner::Own),
            Err(Errno::Inval)
        );
    }
    let ptr = (21 << 12) | mmu_cmd::MACHPHYS_UPDATE;
    assert_eq!(
        d.mm.mmu_update(&mut d.mem, ptr, 1, PgOwner::Io),
        Err(Errno::Inval)
    );
}

#[test]
fn domid_io_maps_io_memory_but_not_ram() {
    let mut d = booted();
    d.mm.add_io(BAR, 1, false).unwrap();
    let ptr = (L1 << 12) | (100 << 3);
    assert_eq!(
        d.mm.mmu_update(&mut d.mem, ptr, e(21, L1_RO), PgOwner::Io),
        Err(Errno::Busy)
    );
    assert!(d
        .mm
        .mmu_update(&mut d.mem, ptr, e(BAR, L1_RW), PgOwner::Io)
        .is_ok());
    let ptr = (L2 << 12) | (1 << 3);
    assert_eq!(
        d.mm.mmu_update(&mut d.mem, ptr, 0, PgOwner::Io),
        Err(Errno::Inval)
    );
    d.audit();
}

// Other mmuext_op commands.

#[test]
fn tlb_commands_ask_for_their_flush() {
    let mut d = booted();
    let va = 0x40_0000;
    let flush = |d: &mut Dom, c, a1, a2| d.op(c, a1, a2).unwrap().flush;
    assert_eq!(flush(&mut d, cmd::TLB_FLUSH_LOCAL, 0, 0), Flush::Local);
    assert_eq!(flush(&mut d, cmd::INVLPG_LOCAL, va, 0), Flush::LocalVa(va));
    assert_eq!(flush(&mut d, cmd::INVLPG_LOCAL, 1 << 50, 0), Flush::None);
    assert_eq!(flush(&mut d, cmd::TLB_FLUSH_ALL, 0, 0), Flush::All);
    assert_eq!(flush(&mut d, cmd::INVLPG_ALL, va, 0), Flush::AllVa(va));
    // Xen's own range is no address to flush for the guest.
    assert_eq!(
        flush(&mut d, cmd::INVLPG_ALL, 0xffff_8000_0000_0000, 0),
        Flush::None
    );
    assert_eq!(
        flush(&mut d, cmd::TLB_FLUSH_MULTI, 0, 0x5000),
        Flush::Vcpus {
            vcpumask: 0x5000,
            va: None,
            unreadable: Errno::Inval
        }
    );
    assert_eq!(
        flush(&mut d, cmd::INVLPG_MULTI, va, 0x5000),
        Flush::Vcpus {
            vcpumask: 0x5000,
            va: Some(va),
            unreadable: Errno::Inval
        }
    );
}

#[test]
fn flush_cache_needs_io_resources() {
    let mut d = booted();
    assert_eq!(d.op(cmd::FLUSH_CACHE, 0, 0), Err(Errno::Acces));
    assert_eq!(d.op(cmd::FLUSH_CACHE_GLOBAL, 0, 0), Err(Errno::Acces));
    d.mm.add_io(BAR, 1, false).unwrap();
    assert!(d.op(cmd::FLUSH_CACHE, 0, 0).unwrap().flush_cache);
    d.mm.remove_io(BAR, 1);
    d.mm.set_ioport_access(true);
    assert!(d.op(cmd::FLUSH_CACHE_GLOBAL, 0, 0).unwrap().flush_cache);
}

#[test]
fn set_ldt_checks_its_arguments() {
    let mut d = booted();
    let ldt = |d: &mut Dom, base, ents| d.op(cmd::SET_LDT, base, ents).map(|fx| fx.ldt);
    assert_eq!(
        ldt(&mut d, 0x40_0000, 16),
        Ok(Some(Ldt {
            base: 0x40_0000,
            ents: 16
        }))
    );
    assert_eq!(
        ldt(&mut d, 0x40_0123, 0),
        Ok(Some(Ldt { base: 0, ents: 0 }))
    );
    assert_eq!(ldt(&mut d, 0x40_0000, 8193), Err(Errno::Inval));
    assert_eq!(ldt(&mut d, 0x40_0008, 1), Err(Errno::Inval));
    assert_eq!(ldt(&mut d, 0xffff_8000_0000_0000, 1), Err(Errno::Inval));
}

#[test]
fn clear_and_copy_page_need_frames_that_can_be_writable() {
    let mut d = booted();
    d.mem.set(21, 3, 0xabcd);
    d.op(cmd::COPY_PAGE, 22, 21).unwrap();
    assert_eq!(d.mem.get(22, 3), 0xabcd);
    d.op(cmd::CLEAR_PAGE, 21, 0).unwrap();
    assert_eq!(d.mem.get(21, 3), 0);
    // A table is no destination; it may be a source.
    assert_eq!(d.op(cmd::CLEAR_PAGE, L2, 0), Err(Errno::Inval));
    assert_eq!(d.op(cmd::COPY_PAGE, L3, 21), Err(Errno::Inval));
    d.op(cmd::COPY_PAGE, 23, L4).unwrap();
    assert_eq!(d.mem.get(23, 260), SLOTS.perdomain);
    assert_eq!(d.op(cmd::COPY_PAGE, 22, N + 1), Err(Errno::Inval));
    assert_eq!(d.op(cmd::CLEAR_PAGE, N + 1, 0), Err(Errno::Inval));
    d.audit();
}

#[test]
fn superpage_marks_are_unsupported_and_unknown_commands_enosys() {
    let mut d = booted();
    assert_eq!(d.op(cmd::MARK_SUPER, 0, 0), Err(Errno::OpNotSupp));
    assert_eq!(d.op(cmd::UNMARK_SUPER, 0, 0), Err(Errno::OpNotSupp));
    for c in [14, 21, 0xffff_ffff] {
        assert_eq!(d.op(c, 0, 0), Err(Errno::NoSys));
    }
}

#[test]
fn mmuext_op_decodes_the_guests_bytes() {
    let mut b = [0u8; MmuextOp::SIZE];
    b[0] = 13;
    b[8..16].copy_from_slice(&0x40_0000u64.to_le_bytes());
    b[16..24].copy_from_slice(&16u64.to_le_bytes());
    assert_eq!(
        MmuextOp::from_bytes(&b),
        MmuextOp {
            cmd: 13,
            arg1: 0x40_0000,
            arg2: 16
        }
    );
}

// Ballooning.

#[test]
fn removed_frame_cannot_be_mapped_and_comes_back_with_add_ram() {
    let mut d = booted();
    d.set(L1, 50, 0).unwrap();
    d.mm.remove_ram(50).unwrap();
    assert!(!d.mm.is_ram(50));
    assert_eq!(d.set(L1, 50, e(50, L1_RO)), Err(Errno::Busy));
    assert_eq!(d.mm.remove_ram(50), Err(Errno::NxIo));
    d.mm.add_ram(50).unwrap();
    assert_eq!(d.mm.add_ram(50), Err(Errno::Inval));
    d.set(L1, 50, e(50, L1_RO)).unwrap();
    d.audit();
}

#[test]
fn removing_a_mapped_frame_succeeds_and_frees_it_with_the_last_reference() {
    let mut d = booted();
    // As Xen's guest_remove_page: the frame lives on while referenced.
    d.mm.remove_ram(21).unwrap();
    assert_eq!(d.state(21).count, 1);
    d.set(L1, 100, e(21, L1_RO)).unwrap();
    d.audit();
    d.set(L1, 100, 0).unwrap();
    d.set(L1, 21, 0).unwrap();
    assert_eq!(d.state(21).refs, 0);
    assert_eq!(d.set(L1, 21, e(21, L1_RO)), Err(Errno::Busy));
    d.audit();
}

#[test]
fn stealing_a_frame_needs_it_unreferenced() {
    let mut d = booted();
    assert_eq!(d.mm.steal_ram(21), Err(Errno::Inval));
    assert_eq!(d.mm.steal_ram(SHARED_INFO), Err(Errno::Inval));
    d.set(L1, 21, 0).unwrap();
    d.mm.steal_ram(21).unwrap();
    assert!(!d.mm.is_ram(21));
    assert_eq!(d.mm.remove_ram(SHARED_INFO), Err(Errno::Inval));
    assert_eq!(d.mm.remove_ram(N + 7), Err(Errno::NxIo));
    d.audit();
}

#[test]
fn special_and_io_frames_cannot_overlap_ram_or_each_other() {
    let mut d = built();
    assert_eq!(d.mm.add_special(3), Err(Errno::Inval));
    assert_eq!(d.mm.add_special(SHARED_INFO), Err(Errno::Exist));
    assert_eq!(d.mm.add_io(N - 1, 2, false), Err(Errno::Inval));
    assert_eq!(d.mm.add_io(SHARED_INFO, 1, false), Err(Errno::Inval));
    d.mm.add_io(BAR, 4, false).unwrap();
    assert_eq!(d.mm.add_io(BAR + 3, 4, false), Err(Errno::Inval));
    assert_eq!(d.mm.add_io(BAR + 8, 0, false), Err(Errno::Inval));
}

// Descriptor pages.

#[test]
fn descriptor_page_must_not_be_mapped_writable() {
    let mut d = booted();
    assert_eq!(
        d.mm.get_seg_desc(&mut d.mem, 25).map(|_| ()),
        Err(Errno::Inval)
    );
    d.map(25, false).unwrap();
    let fx = d.mm.get_seg_desc(&mut d.mem, 25).unwrap();
    assert_eq!(fx.flush, Flush::All);
    assert_eq!(d.mm.type_of(25), PageType::SegDesc);
    assert_eq!(d.map(25, true), Err(Errno::Busy));
    assert!(d.mm.audit(&d.mem, &[d.roots], &[25]).is_ok());
    d.mm.write_descriptor(&mut d.mem, (25 << 12) | 0x10, 0x00cf_fa00_0000_ffff)
        .unwrap();
    assert_eq!(d.mem.get(25, 2), 0x00cf_fa00_0000_ffff);
    d.mm.put_seg_desc(&mut d.mem, 25);
    d.map(25, true).unwrap();
    d.audit();
}

#[test]
fn descriptor_write_needs_an_aligned_address_and_a_usable_frame() {
    let mut d = booted();
    assert_eq!(
        d.mm.write_descriptor(&mut d.mem, (21 << 12) | 4, 0),
        Err(Errno::Inval)
    );
    assert_eq!(
        d.mm.write_descriptor(&mut d.mem, L2 << 12, 0),
        Err(Errno::Inval)
    );
    assert_eq!(
        d.mm.write_descriptor(&mut d.mem, N << 12, 0),
        Err(Errno::Inval)
    );
    d.mm.write_descriptor(&mut d.mem, 21 << 12, 5).unwrap();
    assert_eq!(d.mem.get(21, 0), 5);
    d.audit();
}

// foreigndom.

#[test]
fn mmu_update_foreigndom_follows_get_pg_owner() {
    let others = |id| match id {
        2 => Foreign::Pv,
        3 => Foreign::Hvm,
        _ => Foreign::Absent,
    };
    let own = |fd| mmu_update_owner(fd, 1, others);
    assert_eq!(own(u32::from(domid::SELF)), Ok(PgOwner::Own));
    assert_eq!(own(u32::from(domid::IO)), Ok(PgOwner::Io));
    assert_eq!(own(1), Err(Errno::Srch));
    assert_eq!(own(2), Err(Errno::Perm));
    assert_eq!(own(9), Err(Errno::Srch));
    assert_eq!(own(u32::from(domid::XEN)), Err(Errno::Perm));
    // Page-table owner: itself (id + 1) is fine, others not.
    assert_eq!(own((2 << 16) | u32::from(domid::SELF)), Ok(PgOwner::Own));
    assert_eq!(own((3 << 16) | u32::from(domid::SELF)), Err(Errno::Perm));
    assert_eq!(own((10 << 16) | u32::from(domid::SELF)), Err(Errno::Srch));
}

#[test]
fn mmuext_op_foreigndom_must_be_self() {
    let others = |id| match id {
        2 => Foreign::Pv,
        3 => Foreign::Hvm,
        _ => Foreign::Absent,
    };
    let ok = |fd| mmuext_owner(fd, 1, others);
    assert_eq!(ok(u32::from(domid::SELF)), Ok(()));
    assert_eq!(ok(1), Err(Errno::Srch));
    assert_eq!(ok(u32::from(domid::IO)), Err(Errno::Inval));
    assert_eq!(ok(2), Err(Errno::Perm));
    assert_eq!(ok(3), Err(Errno::Inval));
    assert_eq!(ok(4), Err(Errno::Srch));
}

#[test]
fn dirty_bits_do_not_count_as_a_change_of_mapping() {
    let mut d = booted();
    let cur = d.mem.get(L1, 20);
    d.set(L1, 20, cur & !(ACCESSED | DIRTY)).unwrap();
    assert_eq!(d.state(20).count, 1);
    d.audit();
}

#[test]
fn l2_linear_entries_follow_xens_rules() {
    let mut d = booted();
    // An L2 mapping itself read-only takes no reference; writable is refused.
    assert_eq!(d.set(L2, 5, e(L2, PRESENT | RW)), Err(Errno::Inval));
    d.set(L2, 5, e(L2, PRESENT)).unwrap();
    assert_eq!(d.state(L2).count, 1);
    // Another validated L2, read-only.
    d.mem.clear(30);
    d.map(30, false).unwrap();
    d.pin(2, 30).unwrap();
    d.set(L2, 6, e(30, PRESENT)).unwrap();
    assert_eq!((d.state(L2).linear, d.state(30).linear), (1, -1));
    d.audit();
    // The target cannot be unpinned away from under the entry: its count holds.
    d.unpin(30).unwrap();
    assert_eq!(d.mm.type_of(30), PageType::L2);
    d.set(L2, 6, 0).unwrap();
    assert_eq!(d.mm.type_of(30), PageType::None);
    assert_eq!(d.state(L2).linear, 0);
    d.audit();
}

/// Memory whose first compare-exchange finds the dirty bit set by a page
/// walk on another vCPU.
struct RacingMem {
    mem: Mem,
    raced: bool,
}

impl Frames for RacingMem {
    fn read_table(&self, mfn: u64) -> Option<[u64; 512]> {
        self.mem.read_table(mfn)
    }
    fn read_entry(&self, mfn: u64, index: usize) -> Option<u64> {
        self.mem.read_entry(mfn, index)
    }
    fn write_entry(&mut self, mfn: u64, index: usize, value: u64) -> Option<()> {
        self.mem.write_entry(mfn, index, value)
    }
    fn cmpxchg_entry(&mut self, mfn: u64, index: usize, old: u64, new: u64) -> Option<u64> {
        if !self.raced {
            self.raced = true;
            let cur = self.mem.read_entry(mfn, index)? | DIRTY;
            self.mem.write_entry(mfn, index, cur)?;
            return Some(cur);
        }
        let cur = self.mem.read_entry(mfn, index)?;
        if cur == old {
            self.mem.write_entry(mfn, index, new)?;
        }
        Some(cur)
    }
}

#[test]
fn preserve_ad_keeps_a_dirty_bit_set_during_the_update() {
    let mut d = booted();
    d.set(L1, 20, e(20, PRESENT | RW)).unwrap();
    assert_eq!(d.mem.get(L1, 20) & DIRTY, 0);
    let (mut mm, mem) = (d.mm, d.mem);
    let mut racing = RacingMem { mem, raced: false };
    let ptr = (L1 << 12) | (20 << 3) | mmu_cmd::PT_UPDATE_PRESERVE_AD;
    let new = e(20, PRESENT | RW | 1 << 9);
    mm.mmu_update(&mut racing, ptr, new, PgOwner::Own).unwrap();
    let got = racing.mem.get(L1, 20);
    assert_eq!(got & DIRTY, DIRTY);
    assert_eq!(got & !(ACCESSED | DIRTY), new | USER | GUEST_KERNEL);
}

#[test]
fn flushes_merge_into_the_work_of_both() {
    let va = 0x1000;
    assert_eq!(Flush::None.merge(Flush::LocalVa(va)), Flush::LocalVa(va));
    assert_eq!(Flush::LocalVa(va).merge(Flush::Local), Flush::Local);
    assert_eq!(
        Flush::LocalVa(va).merge(Flush::LocalVa(0x2000)),
        Flush::Local
    );
    assert_eq!(Flush::AllVa(va).merge(Flush::AllVa(va)), Flush::AllVa(va));
    assert_eq!(Flush::Local.merge(Flush::AllVa(va)), Flush::All);
    let multi = Flush::Vcpus {
        vcpumask: 8,
        va: None,
        unreadable: Errno::Inval,
    };
    assert_eq!(multi.merge(Flush::None), multi);
    assert_eq!(multi.merge(Flush::Local), Flush::All);
}
