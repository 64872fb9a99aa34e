//! Updates of single entries: `mmu_update` requests (`mm.c`
//! `do_mmu_update`, `mod_l*_entry`), `update_va_mapping`
//! (`__do_update_va_mapping`) and the writable page-table assist
//! (`pv/ro-page-fault.c` `ptwr_emulated_update`).

use super::pte::{self, present};
use super::{Effects, Flush, Frames, M2pWrite, PageType, PgOwner, PvMm};
use crate::evtchn::Errno;
use crate::pv::abi::pte::{ACCESSED, DIRTY};
use crate::pv::abi::va::canonical;

use super::types::guest_l4_slot;

/// `mmu_update` commands (`ptr & 7`).
pub mod mmu_cmd {
    pub const NORMAL_PT_UPDATE: u64 = 0;
    pub const MACHPHYS_UPDATE: u64 = 1;
    pub const PT_UPDATE_PRESERVE_AD: u64 = 2;
    pub const PT_UPDATE_NO_TRANSLATE: u64 = 3;
}

/// What the writable page-table assist did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PtwrOutcome {
    /// The entry was validated and written. `flush` is what Xen does on the
    /// way (a frame changing type flushes the domain's TLBs); the write
    /// itself asks for no flush.
    Written { flush: Flush },
    /// A `cmpxchg` whose expected value did not match: nothing was written;
    /// `current` is what the accessed bytes hold (for the guest's
    /// accumulator).
    Mismatch { current: u64 },
}

/// Why the assist did not emulate a write. The caller delivers the page
/// fault to the guest in every case, as Xen does when emulation fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PtwrError {
    /// The frame is not a validated L1 table of the domain: not the assist's.
    NotL1,
    /// Not 1, 2, 4 or 8 bytes naturally aligned within the page.
    BadAccess,
    /// The new entry is refused (the error `mmu_update` would return).
    Refused(Errno),
}

/// The flush `update_va_mapping`'s `flags` ask for after a successful
/// update of the entry mapping `va` (`UVMF_*`): bits 0-1 the kind (1 the
/// TLB, 2 one page), the rest `UVMF_LOCAL` (0), `UVMF_ALL` (4) or the
/// guest address of a vCPU bitmap.
pub fn uvmf_flush(flags: u64, va: u64) -> Flush {
    const ALL: u64 = 1 << 2;
    let who = flags & !3;
    match flags & 3 {
        1 => match who {
            0 => Flush::Local,
            ALL => Flush::All,
            mask => Flush::Vcpus {
                vcpumask: mask,
                va: None,
                unreadable: Errno::Fault,
            },
        },
        2 if canonical(va) => match who {
            0 => Flush::LocalVa(va),
            ALL => Flush::AllVa(va),
            mask => Flush::Vcpus {
                vcpumask: mask,
                va: Some(va),
                unreadable: Errno::Fault,
            },
        },
        _ => Flush::None,
    }
}

impl PvMm {
    /// One `mmu_update` request (`ptr`, `val`), with the page owner the
    /// caller derived from `foreigndom` ([`super::mmu_update_owner`]).
    ///
    /// `ptr & 7` is the command. A page-table update dispatches on the type
    /// of the frame `ptr` points into: a validated L1-L4 gets Xen's checked
    /// update (an L2-L4 success flushes the domain's TLBs; an L1 update
    /// does not), a frame that is or can be writable gets a plain write,
    /// anything else -EINVAL. Errors: -EINVAL for a frame not the domain's,
    /// -ENOSYS for an unknown command (a `ptr` not 8-byte aligned).
    pub fn mmu_update<M: Frames + ?Sized>(
        &mut self,
        mem: &mut M,
        ptr: u64,
        val: u64,
        owner: PgOwner,
    ) -> Result<Effects, Errno> {
        self.begin();
        let r = self.mmu_update_inner(mem, ptr, val, owner);
        self.finish(r)
    }

    fn mmu_update_inner<M: Frames + ?Sized>(
        &mut self,
        mem: &mut M,
        ptr: u64,
        val: u64,
        owner: PgOwner,
    ) -> Result<(), Errno> {
        let cmd = ptr & 7;
        match cmd {
            mmu_cmd::NORMAL_PT_UPDATE
            | mmu_cmd::PT_UPDATE_PRESERVE_AD
            | mmu_cmd::PT_UPDATE_NO_TRANSLATE => {
                let addr = ptr - cmd;
                let (table, index) = (addr >> 12, ((addr & 0xfff) >> 3) as usize);
                let preserve_ad = cmd == mmu_cmd::PT_UPDATE_PRESERVE_AD;
                // `get_page_from_gfn(pt_owner)`.
                let f = *self
                    .frame(table)
                    .filter(|f| f.owned())
                    .ok_or(Errno::Inval)?;
                // `page_lock`: a validated type in use.
                if f.validated() && f.count > 0 {
                    match f.ty {
                        PageType::L1 => self.mod_l1(mem, table, index, val, preserve_ad, owner),
                        PageType::L2 | PageType::L3 | PageType::L4 if owner == PgOwner::Own => {
                            let level = f.ty.level().unwrap_or(4);
                            self.mod_ln(mem, table, index, level, val, preserve_ad)?;
                            self.fx.flush(Flush::All);
                            Ok(())
                        }
                        PageType::Writable => {
                            mem.write_entry(table, index, val).ok_or(Errno::Fault)
                        }
                        _ => Err(Errno::Inval),
                    }
                } else if self.get_type(mem, table, PageType::Writable).is_ok() {
                    let r = mem.write_entry(table, index, val).ok_or(Errno::Fault);
                    self.put_type(mem, table);
                    r
                } else {
                    Err(Errno::Inval)
                }
            }
            mmu_cmd::MACHPHYS_UPDATE => {
                let frame = ptr >> 12;
                // `get_page_from_mfn(mfn, pg_owner)`: DOMID_IO owns no RAM.
                if owner != PgOwner::Own || !self.owned(frame) {
                    return Err(Errno::Inval);
                }
                self.fx.m2p = Some(M2pWrite {
                    mfn: frame,
                    pfn: val,
                });
                Ok(())
            }
            _ => Err(Errno::NoSys),
        }
    }

    /// `update_va_mapping`: entry `index` of L1 frame `l1` (the caller
    /// walked the current kernel root to the L2 entry mapping `va`; no such
    /// L1 is -EINVAL) gets `val` as an `mmu_update` would write it. The
    /// flush the flags ask for is [`uvmf_flush`], done only on success.
    pub fn update_va_mapping<M: Frames + ?Sized>(
        &mut self,
        mem: &mut M,
        l1: u64,
        index: usize,
        val: u64,
        owner: PgOwner,
    ) -> Result<Effects, Errno> {
        self.begin();
        let r = if self.is_l1(l1) && self.owned(l1) && index < 512 {
            self.mod_l1(mem, l1, index, val, false, owner)
        } else {
            Err(Errno::Inval)
        };
        self.finish(r)
    }

    /// `UPDATE_ENTRY` (`update_intpte`): a plain write, or with
    /// `preserve_ad` a compare-exchange loop that keeps the accessed and
    /// dirty bits the hardware set meanwhile. False if the entry changed in
    /// any other way (or the memory cannot be written).
    fn update_entry<M: Frames + ?Sized>(
        mem: &mut M,
        table: u64,
        index: usize,
        old: u64,
        new: u64,
        preserve_ad: bool,
    ) -> bool {
        if !preserve_ad {
            return mem.write_entry(table, index, new).is_some();
        }
        let mut old = old;
        for _ in 0..8 {
            let want = new | (old & (ACCESSED | DIRTY));
            match mem.cmpxchg_entry(table, index, old, want) {
                Some(t) if t == old => return true,
                Some(t) if (t ^ old) & !(ACCESSED | DIRTY) == 0 => old = t,
                _ => return false,
            }
        }
        false
    }

    /// `mod_l1_entry`.
    fn mod_l1<M: Frames + ?Sized>(
        &mut self,
        mem: &mut M,
        table: u64,
        index: usize,
        new: u64,
        preserve_ad: bool,
        owner: PgOwner,
    ) -> Result<(), Errno> {
        let old = mem.read_entry(table, index).ok_or(Errno::Inval)?;
        if present(new) {
            if new & pte::l1_disallow(self.io_resources()) != 0 {
                return Err(Errno::Inval);
            }
            let mut new = pte::adjust_l1(new);
            if !pte::l1_changed(old, new) {
                return match Self::update_entry(mem, table, index, old, new, preserve_ad) {
                    true => Ok(()),
                    false => Err(Errno::Busy),
                };
            }
            new ^= self.get_from_l1e(mem, new, owner)?;
            if !Self::update_entry(mem, table, index, old, new, preserve_ad) {
                self.put_from_l1e(mem, new);
                return Err(Errno::Busy);
            }
        } else if !Self::update_entry(mem, table, index, old, new, preserve_ad) {
            return Err(Errno::Busy);
        }
        self.put_from_l1e(mem, old);
        Ok(())
    }

    /// `mod_l2_entry` / `mod_l3_entry` / `mod_l4_entry` (64-bit guest).
    /// Xen's slots of an L4 are not the guest's: -EINVAL. A failed write is
    /// -EBUSY at L2 and -EFAULT at L3/L4, as in Xen.
    fn mod_ln<M: Frames + ?Sized>(
        &mut self,
        mem: &mut M,
        table: u64,
        index: usize,
        level: u8,
        new: u64,
        preserve_ad: bool,
    ) -> Result<(), Errno> {
        if level == 4 && !guest_l4_slot(index) {
            return Err(Errno::Inval);
        }
        let failed = if level == 2 {
            Errno::Busy
        } else {
            Errno::Fault
        };
        let old = mem.read_entry(table, index).ok_or(Errno::Inval)?;
        if present(new) {
            if new & pte::LN_DISALLOW != 0 {
                return Err(Errno::Inval);
            }
            let new = pte::adjust_ln(level, new);
            if !pte::ln_changed(old, new) {
                return match Self::update_entry(mem, table, index, old, new, preserve_ad) {
                    true => Ok(()),
                    false => Err(failed),
                };
            }
            self.get_from_ln(mem, new, table, level)?;
            if !Self::update_entry(mem, table, index, old, new, preserve_ad) {
                self.put_from_ln(mem, new, table, level);
                return Err(failed);
            }
        } else if !Self::update_entry(mem, table, index, old, new, preserve_ad) {
            return Err(failed);
        }
        self.put_from_ln(mem, old, table, level);
        Ok(())
    }

    /// The writable page-table assist (`ptwr_emulated_update`): the guest
    /// kernel wrote `data` (1, 2, 4 or 8 bytes, little-endian) at byte
    /// `offset` of frame `mfn`, which it maps read-only. With `old` the
    /// write was a `cmpxchg` expecting `old` (same width). The containing
    /// 8-byte entry, with the written bytes merged in, is checked as an L1
    /// entry and written, adjusted; the entry it replaces is released. No
    /// TLB flush, as in Xen.
    pub fn ptwr_write<M: Frames + ?Sized>(
        &mut self,
        mem: &mut M,
        mfn: u64,
        offset: usize,
        data: &[u8],
        old: Option<u64>,
    ) -> Result<PtwrOutcome, PtwrError> {
        let bytes = data.len();
        if !matches!(bytes, 1 | 2 | 4 | 8) || offset & (bytes - 1) != 0 || offset + bytes > 4096 {
            return Err(PtwrError::BadAccess);
        }
        if !self.is_l1(mfn) || !self.owned(mfn) {
            return Err(PtwrError::NotL1);
        }
        self.begin();
        let r = self.ptwr_inner(mem, mfn, offset, data, old);
        let flush = core::mem::take(&mut self.fx).flush;
        r.map(|o| match o {
            PtwrOutcome::Written { .. } => PtwrOutcome::Written { flush },
            o => o,
        })
    }

    fn ptwr_inner<M: Frames + ?Sized>(
        &mut self,
        mem: &mut M,
        mfn: u64,
        offset: usize,
        data: &[u8],
        old: Option<u64>,
    ) -> Result<PtwrOutcome, PtwrError> {
        let index = offset / 8;
        let shift = (offset % 8) * 8;
        let width = if data.len() == 8 {
            u64::MAX
        } else {
            (1u64 << (data.len() * 8)) - 1
        };
        let mut raw = [0u8; 8];
        raw[..data.len()].copy_from_slice(data);
        let val = u64::from_le_bytes(raw);
        let full = mem.read_entry(mfn, index).ok_or(PtwrError::NotL1)?;
        let keep = full & !(width << shift);
        let mut new = keep | ((val & width) << shift);
        let expect = old.map(|o| keep | ((o & width) << shift));

        if present(new) {
            let flip = self
                .get_from_l1e(mem, new, PgOwner::Own)
                .map_err(PtwrError::Refused)?;
            new ^= flip;
        }
        let new = pte::adjust_l1(new);
        let replaced = match expect {
            Some(expect) => {
                let Some(cur) = mem.cmpxchg_entry(mfn, index, expect, new) else {
                    self.put_from_l1e(mem, new);
                    return Err(PtwrError::NotL1);
                };
                if cur != expect {
                    self.put_from_l1e(mem, new);
                    return Ok(PtwrOutcome::Mismatch {
                        current: (cur >> shift) & width,
                    });
                }
                cur
            }
            None => {
                if mem.write_entry(mfn, index, new).is_none() {
                    self.put_from_l1e(mem, new);
                    return Err(PtwrError::NotL1);
                }
                full
            }
        };
        self.put_from_l1e(mem, replaced);
        Ok(PtwrOutcome::Written { flush: Flush::None })
    }
}
