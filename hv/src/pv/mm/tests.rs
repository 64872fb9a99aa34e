//! Pinning, roots and `mmu_update` on a small domain laid out as Xen's
//! domain builder lays one out. Fixtures shared with `tests_ext` and
//! `tests_prop`.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::*;
use crate::pv::abi::pte::{
    ACCESSED, DIRTY, GLOBAL, GUEST_KERNEL, NX, PAT, PCD, PRESENT, PSE, PWT, RW, USER,
};

/// The fake memory: frames by number, each 512 entries.
#[derive(Clone, Debug, Default)]
pub(super) struct Mem {
    pub frames: BTreeMap<u64, Box<[u64; 512]>>,
}

impl Mem {
    pub fn new(n: u64) -> Self {
        let mut m = Mem::default();
        for f in 0..n {
            m.add(f);
        }
        m
    }
    pub fn add(&mut self, f: u64) {
        self.frames.insert(f, Box::new([0; 512]));
    }
    pub fn clear(&mut self, f: u64) {
        **self.frames.get_mut(&f).unwrap() = [0; 512];
    }
    pub fn get(&self, f: u64, i: usize) -> u64 {
        self.frames[&f][i]
    }
    pub fn set(&mut self, f: u64, i: usize, v: u64) {
        self.frames.get_mut(&f).unwrap()[i] = v;
    }
}

impl Frames for Mem {
    fn read_table(&self, mfn: u64) -> Option<[u64; 512]> {
        self.frames.get(&mfn).map(|b| **b)
    }
    fn read_entry(&self, mfn: u64, index: usize) -> Option<u64> {
        self.frames.get(&mfn)?.get(index).copied()
    }
    fn write_entry(&mut self, mfn: u64, index: usize, value: u64) -> Option<()> {
        *self.frames.get_mut(&mfn)?.get_mut(index)? = value;
        Some(())
    }
}

/// RAM frames of the test domain.
pub(super) const N: u64 = 64;
/// The builder's tables: the L4, L3, L2 and L1.
pub(super) const L4: u64 = 1;
pub(super) const L3: u64 = 2;
pub(super) const L2: u64 = 3;
pub(super) const L1: u64 = 4;
/// The kernel's mapping: L4 slot 511, L3 slot 510, L2 slot 0, then L1
/// entry i maps frame i.
pub(super) const L4_SLOT: usize = 511;
pub(super) const L3_SLOT: usize = 510;
/// The special frame (shared info) and an I/O range.
pub(super) const SHARED_INFO: u64 = 512;
pub(super) const BAR: u64 = 0x10_0000;
pub(super) const SLOTS: XenSlots = XenSlots {
    m2p: 0x7777_7000 | PRESENT | USER,
    perdomain: 0x8888_8000 | PRESENT | RW,
};

/// The builder's entry flags: L1 entries for the kernel (no USER), higher
/// levels with USER, as `xc_dom_x86.c` writes them.
pub(super) const L1_RW: u64 = PRESENT | RW | ACCESSED | DIRTY;
pub(super) const L1_RO: u64 = PRESENT | ACCESSED;
pub(super) const LN: u64 = PRESENT | RW | USER | ACCESSED | DIRTY;

pub(super) const fn e(frame: u64, flags: u64) -> u64 {
    (frame << 12) | flags
}

/// A domain as the builder leaves it: the tree written, nothing pinned.
pub(super) struct Dom {
    pub mm: PvMm,
    pub mem: Mem,
    pub roots: VcpuRoots,
}

pub(super) fn built() -> Dom {
    let mut mem = Mem::new(N);
    mem.add(SHARED_INFO);
    mem.set(L4, L4_SLOT, e(L3, LN));
    mem.set(L3, L3_SLOT, e(L2, LN));
    mem.set(L2, 0, e(L1, LN));
    for f in 0..N {
        let flags = if (L4..=L1).contains(&f) { L1_RO } else { L1_RW };
        mem.set(L1, f as usize, e(f, flags));
    }
    let mut mm = PvMm::new(N, SLOTS);
    mm.add_special(SHARED_INFO).unwrap();
    mm.set_frame_limit(0x8_0000);
    Dom {
        mm,
        mem,
        roots: VcpuRoots::default(),
    }
}

pub(super) fn booted() -> Dom {
    let mut d = built();
    d.mm.pin_and_install_boot_root(&mut d.mem, L4, &mut d.roots)
        .unwrap();
    d
}

impl Dom {
    pub fn op(&mut self, cmd: u32, arg1: u64, arg2: u64) -> Result<Effects, Errno> {
        let op = MmuextOp { cmd, arg1, arg2 };
        self.mm.mmuext_op(&mut self.mem, op, &mut self.roots)
    }
    pub fn pin(&mut self, level: u8, mfn: u64) -> Result<Effects, Errno> {
        self.op(cmd::PIN_L1_TABLE + u32::from(level) - 1, mfn, 0)
    }
    pub fn unpin(&mut self, mfn: u64) -> Result<Effects, Errno> {
        self.op(cmd::UNPIN_TABLE, mfn, 0)
    }
    /// `mmu_update` of entry `i` of `table`.
    pub fn set(&mut self, table: u64, i: usize, val: u64) -> Result<Effects, Errno> {
        let ptr = (table << 12) | ((i as u64) << 3);
        self.mm.mmu_update(&mut self.mem, ptr, val, PgOwner::Own)
    }
    /// Make frame `f` read-only (or writable again) in the boot L1.
    pub fn map(&mut self, f: u64, writable: bool) -> Result<Effects, Errno> {
        let flags = if writable { L1_RW } else { L1_RO };
        self.set(L1, f as usize, e(f, flags))
    }
    pub fn audit(&self) {
        if let Err(err) = self.mm.audit(&self.mem, &[self.roots], &[]) {
            panic!("{err}");
        }
    }
    pub fn state(&self, f: u64) -> FrameState {
        self.mm.frame_state(f).unwrap()
    }
    /// Every frame's references (not the last type a frame had, which Xen
    /// keeps too).
    pub fn all_counts(&self) -> Vec<(u32, u32, bool, i16)> {
        (0..N)
            .map(|f| self.state(f))
            .map(|s| (s.count, s.refs, s.pinned, s.linear))
            .collect()
    }
}

// Pinning the builder's tree.

#[test]
fn pinning_the_builders_l4_validates_the_tree_and_takes_its_references() {
    let d = booted();
    assert_eq!(d.roots.kernel, Some(L4));
    for (f, ty) in [
        (L4, PageType::L4),
        (L3, PageType::L3),
        (L2, PageType::L2),
        (L1, PageType::L1),
    ] {
        assert_eq!(d.mm.type_of(f), ty, "frame {f}");
        // Each table is also mapped read-only by the L1: one general reference.
        let refs = if f == L4 { 3 } else { 2 };
        let count = if f == L4 { 2 } else { 1 };
        assert_eq!(
            (d.state(f).count, d.state(f).refs),
            (count, refs),
            "frame {f}"
        );
    }
    assert!(d.mm.is_pinned(L4));
    assert!(!d.mm.is_pinned(L3));
    assert_eq!(d.mm.type_of(20), PageType::Writable);
    assert_eq!((d.state(20).count, d.state(20).refs), (1, 1));
    d.audit();
}

#[test]
fn pinned_entries_are_adjusted_as_xen_adjusts_them() {
    let d = booted();
    assert_eq!(d.mem.get(L1, 20), e(20, L1_RW | USER | GUEST_KERNEL));
    assert_eq!(
        d.mem.get(L1, L2 as usize),
        e(L2, L1_RO | USER | GUEST_KERNEL)
    );
    assert_eq!(d.mem.get(L2, 0), e(L1, LN));
    assert_eq!(d.mem.get(L4, L4_SLOT), e(L3, LN));
    // Unused entries are left alone.
    assert_eq!(d.mem.get(L1, 100), 0);
}

#[test]
fn pinned_l4_gets_the_reserved_slots_and_the_m2p_when_installed() {
    let mut d = built();
    d.mem.set(L4, 257, 0xdead_b000 | PRESENT);
    d.mem.set(L4, 270, 0xdead_b000 | PRESENT);
    d.pin(4, L4).unwrap();
    // Without m2p_strict the M2P slot is empty until the L4 is a kernel root.
    assert_eq!(d.mem.get(L4, 256), 0);
    assert_eq!(d.mem.get(L4, 257), 0);
    assert_eq!(d.mem.get(L4, 260), SLOTS.perdomain);
    assert_eq!(d.mem.get(L4, 270), 0);
    let fx = d.op(cmd::NEW_BASEPTR, L4, 0).unwrap();
    assert!(fx.reload_cr3 && fx.destroy_ldt);
    assert_eq!(d.mem.get(L4, 256), SLOTS.m2p);
    d.audit();
}

#[test]
fn with_m2p_strict_the_m2p_is_in_every_l4_and_zapped_in_user_roots() {
    let mut d = built();
    d.mm.set_m2p_strict(true);
    d.pin(4, L4).unwrap();
    assert_eq!(d.mem.get(L4, 256), SLOTS.m2p);
    d.op(cmd::NEW_USER_BASEPTR, L4, 0).unwrap();
    assert_eq!(d.mem.get(L4, 256), 0);
    assert_eq!(d.roots.user, Some(L4));
    d.audit();
}

#[test]
fn pin_fails_ebusy_when_a_table_is_mapped_writable_and_changes_nothing() {
    let mut d = built();
    d.mem.set(L1, L2 as usize, e(L2, L1_RW));
    let before = d.all_counts();
    // The L2 is being validated when the L1 entry mapping it RW is reached.
    assert_eq!(d.pin(4, L4), Err(Errno::Busy));
    assert_eq!(d.all_counts(), before);
    assert!(!d.mm.is_pinned(L4));
    d.audit();
}

#[test]
fn pin_fails_einval_when_a_table_reached_later_is_already_mapped_writable() {
    let mut d = built();
    // A second L1 (frame 30) under L2 entry 1; the first L1 maps it RW, and
    // is validated first: frame 30 is then writable, not an L1.
    d.mem.set(L2, 1, e(30, LN));
    let before = d.all_counts();
    assert_eq!(d.pin(4, L4), Err(Errno::Inval));
    assert_eq!(d.all_counts(), before);
    d.audit();
}

#[test]
fn unpin_drops_the_tree_and_it_can_be_pinned_again() {
    let mut d = built();
    d.pin(4, L4).unwrap();
    assert_eq!(d.unpin(L4), Ok(Effects::default()));
    for f in [L4, L3, L2, L1, 20] {
        assert_eq!(d.mm.type_of(f), PageType::None, "frame {f}");
        assert_eq!(d.state(f).refs, 0);
    }
    d.audit();
    d.pin(4, L4).unwrap();
    assert_eq!(d.mm.type_of(L1), PageType::L1);
    d.audit();
}

#[test]
fn pinning_twice_is_einval_and_keeps_one_reference() {
    let mut d = built();
    d.pin(4, L4).unwrap();
    assert_eq!(d.pin(4, L4), Err(Errno::Inval));
    assert_eq!(d.state(L4).count, 1);
    assert_eq!(d.pin(3, L4), Err(Errno::Inval));
    d.audit();
}

#[test]
fn unpinning_what_is_not_pinned_or_not_the_domains_is_einval() {
    let mut d = booted();
    assert_eq!(d.unpin(L3), Err(Errno::Inval));
    assert_eq!(d.unpin(20), Err(Errno::Inval));
    assert_eq!(d.unpin(N + 5), Err(Errno::Inval));
    d.audit();
}

#[test]
fn pinning_a_frame_that_is_not_the_domains_is_einval() {
    let mut d = built();
    assert_eq!(d.pin(1, N + 1), Err(Errno::Inval));
    assert_eq!(d.pin(1, SHARED_INFO), Err(Errno::Inval));
    assert_eq!(d.pin(1, BAR), Err(Errno::Inval));
}

/// A copy of the boot L4 in frame `f`, made read-only first, as Linux
/// builds `init_top_pgt`.
fn second_l4(d: &mut Dom, f: u64) {
    d.map(f, false).unwrap();
    d.mem.set(f, L4_SLOT, e(L3, LN));
}

#[test]
fn linux_boot_sequence_unpins_the_boot_root_while_it_is_cr3_then_switches() {
    let mut d = booted();
    second_l4(&mut d, 40);
    d.pin(4, 40).unwrap();
    assert_eq!(d.state(L3).count, 2);
    // The builder's L4 is still the kernel root: unpinning keeps it valid.
    d.unpin(L4).unwrap();
    assert_eq!(d.mm.type_of(L4), PageType::L4);
    assert_eq!(d.state(L4).count, 1);
    d.audit();
    let fx = d.op(cmd::NEW_BASEPTR, 40, 0).unwrap();
    assert!(fx.reload_cr3);
    assert_eq!(d.roots.kernel, Some(40));
    assert_eq!(d.mm.type_of(L4), PageType::None);
    assert_eq!(d.state(L3).count, 1);
    assert_eq!(d.state(40).count, 2);
    d.audit();
    // The old root's frame is an ordinary page again.
    d.map(L4, true).unwrap();
    assert_eq!(d.mm.type_of(L4), PageType::Writable);
    d.audit();
}

#[test]
fn new_baseptr_of_the_current_root_only_reloads() {
    let mut d = booted();
    let fx = d.op(cmd::NEW_BASEPTR, L4, 0).unwrap();
    assert!(fx.reload_cr3 && !fx.destroy_ldt);
    assert_eq!(d.state(L4).count, 2);
}

#[test]
fn new_baseptr_of_a_frame_that_is_not_an_l4_fails_and_keeps_the_old_root() {
    let mut d = booted();
    assert_eq!(d.op(cmd::NEW_BASEPTR, L3, 0), Err(Errno::Inval));
    assert_eq!(d.op(cmd::NEW_BASEPTR, 20, 0), Err(Errno::Inval));
    assert_eq!(d.op(cmd::NEW_BASEPTR, N + 3, 0), Err(Errno::Inval));
    assert_eq!(d.roots.kernel, Some(L4));
    d.audit();
}

#[test]
fn user_root_is_referenced_and_zero_drops_it() {
    let mut d = booted();
    second_l4(&mut d, 41);
    let fx = d.op(cmd::NEW_USER_BASEPTR, 41, 0).unwrap();
    assert!(!fx.reload_cr3);
    assert_eq!(d.roots.user, Some(41));
    assert_eq!(d.mm.type_of(41), PageType::L4);
    d.audit();
    d.op(cmd::NEW_USER_BASEPTR, 0, 0).unwrap();
    assert_eq!(d.roots.user, None);
    assert_eq!(d.mm.type_of(41), PageType::None);
    d.audit();
}

#[test]
fn released_roots_leave_nothing_typed() {
    let mut d = booted();
    d.unpin(L4).unwrap();
    d.mm.release_roots(&mut d.mem, &mut d.roots);
    assert_eq!(d.roots, VcpuRoots::default());
    assert!((0..N).all(|f| d.mm.type_of(f) == PageType::None));
    d.audit();
}

// mmu_update on L1 entries.

#[test]
fn l1_update_maps_a_frame_adjusted_without_a_flush() {
    let mut d = booted();
    let fx = d.set(L1, 100, e(21, L1_RW)).unwrap();
    assert_eq!(fx, Effects::default());
    assert_eq!(d.mem.get(L1, 100), e(21, L1_RW | USER | GUEST_KERNEL));
    assert_eq!(d.state(21).count, 2);
    d.audit();
    // A user mapping gets GLOBAL, as Xen gives it.
    d.set(L1, 101, e(22, L1_RO | USER)).unwrap();
    assert_eq!(d.mem.get(L1, 101), e(22, L1_RO | USER | GLOBAL));
    d.set(L1, 100, 0).unwrap();
    assert_eq!(d.state(21).count, 1);
    d.audit();
}

#[test]
fn l1_update_with_cache_attributes_is_einval_without_io_resources() {
    let mut d = booted();
    for bad in [PCD, PWT, PAT] {
        assert_eq!(d.set(L1, 100, e(21, L1_RW | bad)), Err(Errno::Inval));
    }
    d.mm.set_ioport_access(true);
    d.set(L1, 100, e(21, L1_RW | PCD)).unwrap();
    d.audit();
}

#[test]
fn l1_update_mapping_a_foreign_frame_is_ebusy_and_beyond_memory_eperm() {
    let mut d = booted();
    assert_eq!(d.set(L1, 100, e(N, L1_RO)), Err(Errno::Busy));
    assert_eq!(d.set(L1, 100, e(0x8_0000, L1_RO)), Err(Errno::Perm));
    assert_eq!(
        d.set(L1, 100, e(pte::INVALID_MFN, L1_RO)),
        Err(Errno::Inval)
    );
    assert_eq!(d.mem.get(L1, 100), 0);
    d.audit();
}

#[test]
fn l1_update_maps_the_domains_io_frames_uncached_and_others_not() {
    let mut d = booted();
    // MMIO the domain was not given (Xen: -EPERM, as for memory it has no
    // page for).
    assert_eq!(d.set(L1, 100, e(BAR, L1_RW)), Err(Errno::Perm));
    d.mm.add_io(BAR, 4, false).unwrap();
    d.set(L1, 100, e(BAR, L1_RW)).unwrap();
    assert_eq!(
        d.mem.get(L1, 100),
        e(BAR, L1_RW | PCD | PWT | USER | GUEST_KERNEL)
    );
    // Write-combining stays; PAT is allowed now the domain has I/O memory.
    d.set(L1, 101, e(BAR + 1, L1_RW | PAT)).unwrap();
    assert_eq!(
        d.mem.get(L1, 101),
        e(BAR + 1, L1_RW | PAT | USER | GUEST_KERNEL)
    );
    assert_eq!(d.set(L1, 102, e(BAR + 4, L1_RW)), Err(Errno::Perm));
    d.audit();
    d.set(L1, 100, 0).unwrap();
    d.audit();
}

#[test]
fn io_frames_taken_back_cannot_be_mapped_again() {
    // Hot-remove: the BAR's frames leave the domain; a new entry naming
    // them is -EPERM as before they were given, one made before can still
    // be cleared, and the domain may no longer choose cache attributes.
    let mut d = booted();
    d.mm.add_io(BAR, 4, false).unwrap();
    d.mm.add_io(BAR + 8, 1, false).unwrap();
    d.set(L1, 100, e(BAR, L1_RW)).unwrap();
    d.mm.remove_io(BAR, 4);
    assert_eq!(d.set(L1, 101, e(BAR + 1, L1_RW)), Err(Errno::Perm));
    assert_eq!(d.set(L1, 102, e(BAR + 3, L1_RW)), Err(Errno::Perm));
    // Another function's BAR stays mappable.
    d.set(L1, 103, e(BAR + 8, L1_RW)).unwrap();
    d.set(L1, 100, 0).unwrap();
    d.set(L1, 103, 0).unwrap();
    assert!(d.mm.io_resources());
    d.mm.remove_io(BAR + 8, 1);
    assert!(!d.mm.io_resources());
    assert_eq!(d.set(L1, 103, e(BAR + 8, L1_RW)), Err(Errno::Perm));
    // Given again (hot-added again): mappable again.
    d.mm.add_io(BAR, 4, false).unwrap();
    d.set(L1, 101, e(BAR + 1, L1_RW)).unwrap();
    d.audit();
}

#[test]
fn l1_update_maps_a_read_only_io_range_without_rw() {
    let mut d = booted();
    d.mm.add_io(BAR, 1, true).unwrap();
    d.set(L1, 100, e(BAR, L1_RW | PCD | PWT)).unwrap();
    assert_eq!(
        d.mem.get(L1, 100),
        e(BAR, L1_RO | DIRTY | PCD | PWT | USER | GUEST_KERNEL)
    );
}

#[test]
fn l1_update_mapping_a_table_writable_is_ebusy() {
    let mut d = booted();
    for t in [L4, L3, L2, L1] {
        assert_eq!(d.set(L1, 100, e(t, L1_RW)), Err(Errno::Busy), "frame {t}");
        assert_eq!(
            d.set(L1, t as usize, e(t, L1_RW)),
            Err(Errno::Busy),
            "frame {t}"
        );
    }
    d.audit();
}

#[test]
fn shared_info_maps_writable_but_not_with_other_cache_attributes() {
    let mut d = booted();
    d.set(L1, 100, e(SHARED_INFO, L1_RW)).unwrap();
    assert_eq!(d.mm.frame_state(SHARED_INFO).unwrap().count, 2);
    d.mm.set_ioport_access(true);
    assert_eq!(
        d.set(L1, 101, e(SHARED_INFO, L1_RW | PCD)),
        Err(Errno::Acces)
    );
    d.audit();
}

#[test]
fn preserve_ad_keeps_the_accessed_and_dirty_bits_the_entry_has() {
    let mut d = booted();
    d.set(L1, 100, e(21, PRESENT | RW)).unwrap();
    let hw = d.mem.get(L1, 100) | ACCESSED | DIRTY;
    d.mem.set(L1, 100, hw);
    let ptr = (L1 << 12) | (100 << 3) | mmu_cmd::PT_UPDATE_PRESERVE_AD;
    d.mm.mmu_update(&mut d.mem, ptr, e(21, PRESENT | NX), PgOwner::Own)
        .unwrap();
    assert_eq!(
        d.mem.get(L1, 100),
        e(21, PRESENT | NX | ACCESSED | DIRTY | USER | GUEST_KERNEL)
    );
    d.set(L1, 100, e(21, PRESENT)).unwrap();
    assert_eq!(d.mem.get(L1, 100), e(21, PRESENT | USER | GUEST_KERNEL));
    d.audit();
}

#[test]
fn changing_only_accessed_bits_takes_no_new_reference() {
    let mut d = booted();
    d.set(L1, 20, e(20, PRESENT | RW)).unwrap();
    assert_eq!(
        d.state(20),
        FrameState {
            ty: PageType::Writable,
            count: 1,
            refs: 1,
            validated: true,
            ..FrameState::default()
        }
    );
    d.audit();
}

#[test]
fn mmu_update_with_a_misaligned_pointer_is_enosys() {
    let mut d = booted();
    for low in 4..8 {
        let ptr = (L1 << 12) | (100 << 3) | low;
        assert_eq!(
            d.mm.mmu_update(&mut d.mem, ptr, 0, PgOwner::Own),
            Err(Errno::NoSys)
        );
    }
}

#[test]
fn mmu_update_of_a_frame_that_is_not_the_domains_is_einval() {
    let mut d = booted();
    assert_eq!(d.set(N + 2, 0, 0), Err(Errno::Inval));
    assert_eq!(d.set(BAR, 0, 0), Err(Errno::Inval));
}

#[test]
fn mmu_update_of_an_ordinary_page_is_a_plain_write() {
    let mut d = booted();
    d.set(20, 7, 0x1234_5678).unwrap();
    assert_eq!(d.mem.get(20, 7), 0x1234_5678);
    // Also a frame nothing maps, which stays untyped.
    d.set(L1, 50, 0).unwrap();
    d.set(50, 0, 0xffff_ffff).unwrap();
    assert_eq!(d.mem.get(50, 0), 0xffff_ffff);
    assert_eq!(d.mm.type_of(50), PageType::None);
    d.audit();
}

// mmu_update on L2-L4 entries.

/// Frame `f` emptied and made read-only, ready to be a table.
fn fresh_table(d: &mut Dom, f: u64) {
    d.map(f, false).unwrap();
    d.mem.clear(f);
}

#[test]
fn l2_update_validates_the_new_l1_and_flushes() {
    let mut d = booted();
    fresh_table(&mut d, 30);
    d.mem.set(30, 0, e(21, L1_RO));
    let fx = d.set(L2, 1, e(30, LN)).unwrap();
    assert_eq!(fx.flush, Flush::All);
    assert_eq!(d.mm.type_of(30), PageType::L1);
    assert_eq!(d.mem.get(30, 0), e(21, L1_RO | USER | GUEST_KERNEL));
    d.audit();
    d.set(L2, 1, 0).unwrap();
    assert_eq!(d.mm.type_of(30), PageType::None);
    d.audit();
}

#[test]
fn l2_superpage_and_bad_flags_are_einval() {
    let mut d = booted();
    assert_eq!(d.set(L2, 1, e(0, LN | PSE)), Err(Errno::Inval));
    assert_eq!(d.set(L2, 1, e(30, LN | GLOBAL)), Err(Errno::Inval));
    assert_eq!(d.set(L2, 1, e(30, LN | PCD)), Err(Errno::Inval));
    assert_eq!(d.set(L3, 1, e(0, LN | PSE)), Err(Errno::Inval));
    d.audit();
}

#[test]
fn l2_entry_to_a_writable_or_foreign_frame_is_einval() {
    let mut d = booted();
    assert_eq!(d.set(L2, 1, e(30, LN)), Err(Errno::Inval));
    assert_eq!(d.set(L2, 1, e(N + 1, LN)), Err(Errno::Inval));
    assert_eq!(d.set(L2, 1, e(SHARED_INFO, LN)), Err(Errno::Inval));
    assert_eq!(d.set(L4, 0, e(N + 1, LN)), Err(Errno::Inval));
    d.audit();
}

#[test]
fn l2_entry_to_an_l1_with_a_bad_entry_fails_with_that_entrys_error() {
    let mut d = booted();
    fresh_table(&mut d, 30);
    d.mem.set(30, 0, e(L3, L1_RW));
    assert_eq!(d.set(L2, 1, e(30, LN)), Err(Errno::Busy));
    assert_eq!(d.mm.type_of(30), PageType::None);
    d.audit();
}

#[test]
fn l3_and_l4_updates_build_a_new_branch() {
    let mut d = booted();
    for f in [31, 32, 33] {
        fresh_table(&mut d, f);
    }
    d.mem.set(33, 0, e(22, L1_RW));
    d.mem.set(32, 0, e(33, LN));
    // Frame 31 is no table yet (mapped read-only, but nothing typed): an
    // mmu_update is a plain write.
    d.set(31, 0, e(32, LN)).unwrap();
    assert_eq!(d.mm.type_of(31), PageType::None);
    let fx = d.set(L4, 0, e(31, LN)).unwrap();
    assert_eq!(fx.flush, Flush::All);
    assert_eq!(d.mm.type_of(31), PageType::L3);
    assert_eq!(d.mm.type_of(33), PageType::L1);
    assert_eq!(d.mem.get(L4, 0), e(31, LN));
    d.audit();
    d.set(31, 1, e(32, LN)).unwrap();
    assert_eq!(d.state(32).count, 2);
    d.set(L4, 0, 0).unwrap();
    assert!([31, 32, 33]
        .iter()
        .all(|&f| d.mm.type_of(f) == PageType::None));
    d.audit();
}

#[test]
fn l4_updates_of_the_reserved_slots_are_einval() {
    let mut d = booted();
    for slot in [256, 260, 271] {
        assert_eq!(d.set(L4, slot, 0), Err(Errno::Inval));
    }
    assert_eq!(d.mem.get(L4, 260), SLOTS.perdomain);
}

#[test]
fn l4_self_map_read_only_is_allowed_and_writable_refused() {
    let mut d = booted();
    assert_eq!(d.set(L4, 255, e(L4, LN)), Err(Errno::Inval));
    d.set(L4, 255, e(L4, LN & !RW)).unwrap();
    assert_eq!(d.state(L4).count, 2);
    assert_eq!(d.mem.get(L4, 255), e(L4, (LN & !RW) | ACCESSED));
    d.audit();
    // Pinning another L4 with a self-map works too.
    second_l4(&mut d, 40);
    d.mem.set(40, 255, e(40, PRESENT));
    d.pin(4, 40).unwrap();
    d.audit();
}

#[test]
fn l4_linear_entry_to_another_validated_l4_counts_both_ways() {
    let mut d = booted();
    second_l4(&mut d, 40);
    d.pin(4, 40).unwrap();
    d.set(L4, 254, e(40, PRESENT)).unwrap();
    assert_eq!(d.state(40).count, 2);
    assert_eq!((d.state(L4).linear, d.state(40).linear), (1, -1));
    d.audit();
    // A linear target cannot hold linear entries itself.
    assert_eq!(d.set(40, 254, e(L4, PRESENT)), Err(Errno::Inval));
    d.set(L4, 254, 0).unwrap();
    assert_eq!((d.state(L4).linear, d.state(40).linear), (0, 0));
    d.audit();
}

#[test]
fn l4_linear_entry_to_an_l4_not_validated_is_einval() {
    let mut d = booted();
    second_l4(&mut d, 40);
    assert_eq!(d.set(L4, 254, e(40, PRESENT)), Err(Errno::Inval));
}

#[test]
fn writable_mapping_dropped_then_the_page_can_be_pinned() {
    let mut d = booted();
    assert_eq!(d.pin(1, 30), Err(Errno::Inval));
    d.mem.clear(30);
    d.map(30, false).unwrap();
    let fx = d.pin(1, 30).unwrap();
    // The frame changed type: the domain's TLBs are flushed.
    assert_eq!(fx.flush, Flush::All);
    d.audit();
    assert_eq!(d.map(30, true), Err(Errno::Busy));
    // Re-pinning after an unpin is no type change: no flush.
    d.unpin(30).unwrap();
    assert_eq!(d.pin(1, 30).unwrap().flush, Flush::None);
}
