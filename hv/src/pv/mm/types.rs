//! Typed references: taking and dropping them, validating a frame as a
//! table when its type count goes 0 -> 1 and dropping its entries'
//! references when it returns to 0 (`mm.c` `_get_page_type`,
//! `_put_page_type`, `promote_l*_table`, `demote_l*_table`,
//! `get_page_from_l*e`, `put_page_from_l*e`, `get_l*_linear_pagetable`).
//!
//! Xen validates with preemption and a "partial" state; everything here
//! completes in one go, with the same outcome: a failed validation leaves
//! nothing changed but the adjusted bits in entries already passed.

use alloc::vec::Vec;

use super::frame::Target;
use super::pte::{self, mfn, present, writable};
use super::{Flush, Frames, PageType, PgOwner, PvMm};
use crate::evtchn::Errno;
use crate::pv::abi::va::{END_XEN_SLOT, FIRST_XEN_SLOT, SLOT_M2P, SLOT_PERDOMAIN};

/// Tables whose type count reached 0 and whose entries' references are
/// still to be dropped, with their level. Demotion runs from this list
/// rather than by recursion, so no table content (not even one the
/// guest's DMA rewrote) can make the hypervisor's stack grow.
pub(super) type Demotions = Vec<(u64, u8)>;

/// Whether L4 slot `i` is the guest's (`is_guest_l4_slot`).
pub(super) const fn guest_l4_slot(i: usize) -> bool {
    i < FIRST_XEN_SLOT || i >= END_XEN_SLOT
}

impl PvMm {
    /// `_get_page_type`: take a typed reference, validating the frame when
    /// its count goes 0 -> 1 as a type it did not have validated. A frame
    /// that changes type asks for a flush of the domain's TLBs, as Xen does
    /// so no stale writable mapping survives into a table.
    pub(super) fn get_type<M: Frames + ?Sized>(
        &mut self,
        mem: &mut M,
        mfn: u64,
        ty: PageType,
    ) -> Result<(), Errno> {
        let f = self.frame_mut(mfn).ok_or(Errno::Inval)?;
        if f.count == u32::MAX {
            return Err(Errno::Inval);
        }
        if f.count > 0 {
            // A reference of another type; or a table that is still being
            // validated (only a same-level loop could reach it, and those
            // go through the linear rules, which need it validated).
            if f.ty != ty || !f.validated() {
                return Err(Errno::Inval);
            }
            f.count += 1;
            return Ok(());
        }
        let changed = f.ty != ty;
        if changed {
            f.ty = ty;
            f.set_validated(false);
        }
        f.count = 1;
        let level = match ty.level() {
            Some(level) if !f.validated() => level,
            // Writable and descriptor pages need nothing here (the caller
            // checks descriptors itself); a table still validated cannot
            // have a zero count, but would need nothing either.
            _ => {
                f.set_validated(true);
                if changed {
                    self.fx.flush(Flush::All);
                }
                return Ok(());
            }
        };
        f.linear = 0;
        if changed {
            self.fx.flush(Flush::All);
        }
        match self.promote(mem, mfn, level) {
            Ok(()) => {
                if let Some(f) = self.frame_mut(mfn) {
                    f.set_validated(true);
                }
                Ok(())
            }
            Err(e) => {
                // `validate_page` on failure: the type is gone.
                if let Some(f) = self.frame_mut(mfn) {
                    f.count = 0;
                    f.ty = PageType::None;
                    f.linear = 0;
                    f.set_validated(false);
                }
                Err(e)
            }
        }
    }

    /// Drop a typed reference taken directly (pin, root, writable mapping,
    /// descriptor page), demoting the frame if it was the last.
    pub(super) fn put_type<M: Frames + ?Sized>(&mut self, mem: &mut M, mfn: u64) {
        let mut work = Demotions::new();
        self.put_type_from(mfn, None, &mut work);
        self.demote_all(mem, work);
    }

    /// `get_page_and_type`: a general and a typed reference, -EINVAL if the
    /// frame is not the domain's (`get_page_and_type_from_mfn`).
    pub(super) fn get_page_and_type<M: Frames + ?Sized>(
        &mut self,
        mem: &mut M,
        mfn: u64,
        ty: PageType,
    ) -> Result<(), Errno> {
        if !self.get_page(mfn) {
            return Err(Errno::Inval);
        }
        self.get_type(mem, mfn, ty)
            .inspect_err(|_| self.put_page(mfn))
    }

    pub(super) fn put_page_and_type<M: Frames + ?Sized>(&mut self, mem: &mut M, mfn: u64) {
        self.put_type(mem, mfn);
        self.put_page(mfn);
    }

    /// `_put_page_type` with the table the reference came from (`parent`:
    /// its frame and type). A reference between tables of the same type is
    /// a linear one, whose counts go too. A table whose count reaches 0 is
    /// queued for demotion.
    pub(super) fn put_type_from(
        &mut self,
        mfn: u64,
        parent: Option<(u64, PageType)>,
        work: &mut Demotions,
    ) {
        let Some(f) = self.frame_mut(mfn) else {
            return;
        };
        if f.count == 0 {
            return;
        }
        let linear = parent.is_some_and(|(_, pty)| pty == f.ty);
        f.count -= 1;
        if linear {
            f.linear = f.linear.saturating_add(1).min(0);
        }
        if f.count == 0 && f.validated() {
            if let Some(level) = f.ty.level() {
                f.set_validated(false);
                work.push((mfn, level));
            }
        }
        if let (true, Some((p, _))) = (linear, parent) {
            if let Some(pf) = self.frame_mut(p) {
                pf.linear = pf.linear.saturating_sub(1).max(0);
            }
        }
    }

    /// Drop every entry's reference of each queued table (`demote_l*_table`).
    pub(super) fn demote_all<M: Frames + ?Sized>(&mut self, mem: &mut M, mut work: Demotions) {
        while let Some((t, level)) = work.pop() {
            for i in 0..512 {
                if level == 4 && !guest_l4_slot(i) {
                    continue;
                }
                let Some(e) = mem.read_entry(t, i) else {
                    break;
                };
                if level == 1 {
                    self.put_from_l1e_into(e, &mut work);
                } else {
                    self.put_from_ln_into(e, t, level, &mut work);
                }
            }
        }
    }

    /// Validate frame `mfn` as a table of `level` (`promote_l*_table`):
    /// every present guest entry takes its reference, entries are adjusted,
    /// an L4 gets the hypervisor's slots. On failure the references taken
    /// are dropped again and the first failure's error returned.
    fn promote<M: Frames + ?Sized>(
        &mut self,
        mem: &mut M,
        mfn: u64,
        level: u8,
    ) -> Result<(), Errno> {
        for i in 0..512 {
            if level == 4 && !guest_l4_slot(i) {
                continue;
            }
            let Some(e) = mem.read_entry(mfn, i) else {
                self.unpromote(mem, mfn, level, i);
                return Err(Errno::Fault);
            };
            let mut new = e;
            if present(e) {
                let got = if level == 1 {
                    self.get_from_l1e(mem, e, PgOwner::Own)
                        .map(|flip| new ^= flip)
                } else {
                    self.get_from_ln(mem, e, mfn, level)
                };
                if let Err(err) = got {
                    self.unpromote(mem, mfn, level, i);
                    return Err(err);
                }
            }
            new = if level == 1 {
                pte::adjust_l1(new)
            } else {
                pte::adjust_ln(level, new)
            };
            if new != e {
                // The frame was just read: it can be written.
                let _ = mem.write_entry(mfn, i, new);
            }
        }
        if level == 4 {
            self.write_xen_slots(mem, mfn);
        }
        Ok(())
    }

    /// Drop the references entries `0..upto` of a table took while it was
    /// being validated.
    fn unpromote<M: Frames + ?Sized>(&mut self, mem: &mut M, mfn: u64, level: u8, upto: usize) {
        let mut work = Demotions::new();
        for i in 0..upto {
            if level == 4 && !guest_l4_slot(i) {
                continue;
            }
            let Some(e) = mem.read_entry(mfn, i) else {
                break;
            };
            if level == 1 {
                self.put_from_l1e_into(e, &mut work);
            } else {
                self.put_from_ln_into(e, mfn, level, &mut work);
            }
        }
        self.demote_all(mem, work);
    }

    /// `init_xen_l4_slots` as a PV domain sees it: slot 256 the M2P (only
    /// with m2p_strict; otherwise it is filled when the L4 becomes a kernel
    /// root), 260 the per-domain area, the others empty.
    fn write_xen_slots<M: Frames + ?Sized>(&mut self, mem: &mut M, mfn: u64) {
        for slot in FIRST_XEN_SLOT..END_XEN_SLOT {
            let v = match slot {
                SLOT_M2P if self.m2p_strict => self.slots.m2p,
                SLOT_PERDOMAIN => self.slots.perdomain,
                _ => 0,
            };
            let _ = mem.write_entry(mfn, slot, v);
        }
    }

    /// `get_page_from_l1e` for a present entry: a general reference on the
    /// domain's frame (and a writable one when the entry is RW), or the
    /// permission check for I/O memory. Returns the bits to flip in the
    /// entry (I/O memory: RW off in a read-only range, cacheable types made
    /// UC).
    pub(super) fn get_from_l1e<M: Frames + ?Sized>(
        &mut self,
        mem: &mut M,
        e: u64,
        owner: PgOwner,
    ) -> Result<u64, Errno> {
        if e & pte::l1_disallow(self.io_resources()) != 0 {
            return Err(Errno::Inval);
        }
        let frame = mfn(e);
        match self.target(frame) {
            Target::Io { read_only } => {
                let ro = if read_only && writable(e) {
                    crate::pv::abi::pte::RW
                } else {
                    0
                };
                Ok(ro | pte::io_cache_flip(e))
            }
            Target::NoPage if frame == pte::INVALID_MFN => Err(Errno::Inval),
            Target::NoPage => Err(Errno::Perm),
            Target::Foreign => Err(Errno::Busy),
            Target::Own if !Self::owner_maps_ram(owner) => Err(Errno::Busy),
            Target::Own => {
                if !self.get_page(frame) {
                    return Err(Errno::Busy);
                }
                if writable(e) && self.get_type(mem, frame, PageType::Writable).is_err() {
                    self.put_page(frame);
                    return Err(Errno::Busy);
                }
                let special = self.frame(frame).is_some_and(|f| f.special_frame());
                if special && e & pte::CACHE_ATTRS != 0 {
                    // "Attempt to change cache attributes of Xen heap page".
                    self.put_from_l1e(mem, e);
                    return Err(Errno::Acces);
                }
                Ok(0)
            }
        }
    }

    /// `put_page_from_l1e`: drop what a present L1 entry referenced.
    pub(super) fn put_from_l1e<M: Frames + ?Sized>(&mut self, mem: &mut M, e: u64) {
        let mut work = Demotions::new();
        self.put_from_l1e_into(e, &mut work);
        self.demote_all(mem, work);
    }

    fn put_from_l1e_into(&mut self, e: u64, work: &mut Demotions) {
        let frame = mfn(e);
        // I/O memory (and anything not the domain's) took no reference.
        if !present(e) || self.frame(frame).is_none() {
            return;
        }
        if writable(e)
            && self
                .frame(frame)
                .is_some_and(|f| f.ty == PageType::Writable)
        {
            self.put_type_from(frame, None, work);
        }
        self.put_page(frame);
    }

    /// `get_page_from_l2e` / `l3e` / `l4e`: an entry of a table of `level`
    /// (2..=4) at frame `table` references the next level's table, or is a
    /// linear entry.
    pub(super) fn get_from_ln<M: Frames + ?Sized>(
        &mut self,
        mem: &mut M,
        e: u64,
        table: u64,
        level: u8,
    ) -> Result<(), Errno> {
        if e & pte::LN_DISALLOW != 0 {
            return Err(Errno::Inval);
        }
        match self.get_page_and_type(mem, mfn(e), PageType::table(level - 1)) {
            Err(Errno::Inval) if self.get_linear(e, table, level) => Ok(()),
            r => r,
        }
    }

    /// `get_l*_linear_pagetable`: an entry pointing at a table of its own
    /// level. Read-only only; an entry pointing at its own table takes no
    /// reference; otherwise the target must be validated already, must not
    /// hold linear entries itself, and the table holding the entry must not
    /// be a linear target.
    fn get_linear(&mut self, e: u64, table: u64, level: u8) -> bool {
        if writable(e) {
            return false;
        }
        let target = mfn(e);
        if target == table {
            return true;
        }
        if !self.get_page(target) {
            return false;
        }
        let ty = PageType::table(level);
        let ok_target = self
            .frame(target)
            .is_some_and(|f| f.linear <= 0 && f.linear > i16::MIN);
        let ok_table = self
            .frame(table)
            .is_some_and(|f| f.linear >= 0 && f.linear < i16::MAX);
        let ok_type = self
            .frame(target)
            .is_some_and(|f| f.ty == ty && f.validated() && f.count > 0 && f.count < u32::MAX);
        if !(ok_target && ok_table && ok_type) {
            self.put_page(target);
            return false;
        }
        if let Some(f) = self.frame_mut(table) {
            f.linear += 1;
        }
        if let Some(f) = self.frame_mut(target) {
            f.linear -= 1;
            f.count += 1;
        }
        true
    }

    /// `put_page_from_l2e` / `l3e` / `l4e` (`put_pt_page`).
    pub(super) fn put_from_ln<M: Frames + ?Sized>(
        &mut self,
        mem: &mut M,
        e: u64,
        table: u64,
        level: u8,
    ) {
        let mut work = Demotions::new();
        self.put_from_ln_into(e, table, level, &mut work);
        self.demote_all(mem, work);
    }

    fn put_from_ln_into(&mut self, e: u64, table: u64, level: u8, work: &mut Demotions) {
        let target = mfn(e);
        if !present(e) || target == table {
            return;
        }
        self.put_type_from(target, Some((table, PageType::table(level))), work);
        self.put_page(target);
    }
}
