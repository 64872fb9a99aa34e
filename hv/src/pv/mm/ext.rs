//! `mmuext_op` (`mm.c` `do_mmuext_op`), the vCPUs' roots (`new_guest_cr3`,
//! `vcpu_destroy_pagetables`) and the descriptor-page references the
//! integrator's `set_gdt`, LDT and `update_descriptor` take
//! (`pv/descriptor-tables.c`).

use super::{Effects, Flush, Frames, Ldt, PageType, PvMm, VcpuRoots};
use crate::evtchn::Errno;
use crate::pv::abi::va::{canonical, HYPERVISOR_VIRT_END, SLOT_M2P};

/// `MMUEXT_*` commands.
pub mod cmd {
    pub const PIN_L1_TABLE: u32 = 0;
    pub const PIN_L2_TABLE: u32 = 1;
    pub const PIN_L3_TABLE: u32 = 2;
    pub const PIN_L4_TABLE: u32 = 3;
    pub const UNPIN_TABLE: u32 = 4;
    pub const NEW_BASEPTR: u32 = 5;
    pub const TLB_FLUSH_LOCAL: u32 = 6;
    pub const INVLPG_LOCAL: u32 = 7;
    pub const TLB_FLUSH_MULTI: u32 = 8;
    pub const INVLPG_MULTI: u32 = 9;
    pub const TLB_FLUSH_ALL: u32 = 10;
    pub const INVLPG_ALL: u32 = 11;
    pub const FLUSH_CACHE: u32 = 12;
    pub const SET_LDT: u32 = 13;
    pub const NEW_USER_BASEPTR: u32 = 15;
    pub const CLEAR_PAGE: u32 = 16;
    pub const COPY_PAGE: u32 = 17;
    pub const FLUSH_CACHE_GLOBAL: u32 = 18;
    pub const MARK_SUPER: u32 = 19;
    pub const UNMARK_SUPER: u32 = 20;
}

/// One `struct mmuext_op` (24 bytes: `cmd` at 0, `arg1` at 8, `arg2` at 16):
/// `arg1` is an mfn or a linear address, `arg2` the LDT's entry count, a
/// vCPU bitmap's guest address or the source mfn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmuextOp {
    pub cmd: u32,
    pub arg1: u64,
    pub arg2: u64,
}

impl MmuextOp {
    /// The size of the guest's structure.
    pub const SIZE: usize = 24;

    /// Decode the guest's 24 bytes.
    pub fn from_bytes(b: &[u8; Self::SIZE]) -> Self {
        let u64_at = |o: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[o..o + 8]);
            u64::from_le_bytes(w)
        };
        MmuextOp {
            cmd: u64_at(0) as u32,
            arg1: u64_at(8),
            arg2: u64_at(16),
        }
    }
}

/// `__addr_ok` for a 64-bit PV guest: below the canonical hole or above
/// Xen's range.
const fn addr_ok(va: u64) -> bool {
    va < (1 << 47) || va >= HYPERVISOR_VIRT_END
}

/// Bytes in a frame, as entries.
const ENTRIES: usize = 512;

impl PvMm {
    /// One `mmuext_op` of the current vCPU, whose roots are `roots`. The
    /// caller has checked `foreigndom` ([`super::mmuext_owner`]).
    pub fn mmuext_op<M: Frames + ?Sized>(
        &mut self,
        mem: &mut M,
        op: MmuextOp,
        roots: &mut VcpuRoots,
    ) -> Result<Effects, Errno> {
        self.begin();
        let r = self.mmuext_inner(mem, op, roots);
        self.finish(r)
    }

    fn mmuext_inner<M: Frames + ?Sized>(
        &mut self,
        mem: &mut M,
        op: MmuextOp,
        roots: &mut VcpuRoots,
    ) -> Result<(), Errno> {
        match op.cmd {
            cmd::PIN_L1_TABLE..=cmd::PIN_L4_TABLE => {
                let level = (op.cmd - cmd::PIN_L1_TABLE + 1) as u8;
                self.pin(mem, op.arg1, PageType::table(level))
            }
            cmd::UNPIN_TABLE => self.unpin(mem, op.arg1),
            cmd::NEW_BASEPTR => self.new_baseptr(mem, op.arg1, roots),
            cmd::NEW_USER_BASEPTR => self.new_user_baseptr(mem, op.arg1, roots),
            cmd::TLB_FLUSH_LOCAL => {
                self.fx.flush(Flush::Local);
                Ok(())
            }
            cmd::INVLPG_LOCAL => {
                // `paging_invlpg`: a non-canonical address is ignored.
                if canonical(op.arg1) {
                    self.fx.flush(Flush::LocalVa(op.arg1));
                }
                Ok(())
            }
            cmd::TLB_FLUSH_MULTI | cmd::INVLPG_MULTI => {
                // Xen reads the bitmap in both cases and flushes one page
                // only at an acceptable address; here an unacceptable one
                // flushes the vCPUs' whole TLBs, which is more than Xen does
                // but keeps the bitmap check.
                let va = (op.cmd == cmd::INVLPG_MULTI && addr_ok(op.arg1)).then_some(op.arg1);
                self.fx.flush(Flush::Vcpus {
                    vcpumask: op.arg2,
                    va,
                    unreadable: Errno::Inval,
                });
                Ok(())
            }
            cmd::TLB_FLUSH_ALL => {
                self.fx.flush(Flush::All);
                Ok(())
            }
            cmd::INVLPG_ALL => {
                if addr_ok(op.arg1) {
                    self.fx.flush(Flush::AllVa(op.arg1));
                }
                Ok(())
            }
            cmd::FLUSH_CACHE | cmd::FLUSH_CACHE_GLOBAL => {
                if !self.io_resources() {
                    return Err(Errno::Acces);
                }
                self.fx.flush_cache = true;
                Ok(())
            }
            cmd::SET_LDT => {
                let ents = op.arg2 as u32;
                let base = op.arg1;
                if ents > 8192 || (ents != 0 && (base & 0xfff != 0 || !addr_ok(base))) {
                    return Err(Errno::Inval);
                }
                let base = if ents == 0 { 0 } else { base };
                self.fx.ldt = Some(Ldt { base, ents });
                Ok(())
            }
            cmd::CLEAR_PAGE => self.with_writable(mem, op.arg1, |mem, dst| {
                (0..ENTRIES).try_for_each(|i| mem.write_entry(dst, i, 0))
            }),
            cmd::COPY_PAGE => {
                let src = op.arg2;
                if !self.get_page(src) {
                    return Err(Errno::Inval);
                }
                let r = self.with_writable(mem, op.arg1, |mem, dst| {
                    let table = mem.read_table(src)?;
                    table
                        .iter()
                        .enumerate()
                        .try_for_each(|(i, v)| mem.write_entry(dst, i, *v))
                });
                self.put_page(src);
                r
            }
            cmd::MARK_SUPER | cmd::UNMARK_SUPER => Err(Errno::OpNotSupp),
            _ => Err(Errno::NoSys),
        }
    }

    /// Run `f` on frame `mfn` holding a writable type reference on it, as
    /// `CLEAR_PAGE` and `COPY_PAGE` do: -EINVAL if the frame is not the
    /// domain's or cannot be writable (a table, a descriptor page).
    fn with_writable<M: Frames + ?Sized>(
        &mut self,
        mem: &mut M,
        mfn: u64,
        f: impl FnOnce(&mut M, u64) -> Option<()>,
    ) -> Result<(), Errno> {
        self.get_page_and_type(mem, mfn, PageType::Writable)
            .map_err(|_| Errno::Inval)?;
        let r = f(mem, mfn).ok_or(Errno::Inval);
        self.put_page_and_type(mem, mfn);
        r
    }

    /// `MMUEXT_PIN_L*_TABLE`: validate as `ty` and hold a reference until
    /// unpinned. -EINVAL for a frame not the domain's or already pinned;
    /// otherwise the validation's error.
    fn pin<M: Frames + ?Sized>(
        &mut self,
        mem: &mut M,
        mfn: u64,
        ty: PageType,
    ) -> Result<(), Errno> {
        self.get_page_and_type(mem, mfn, ty)?;
        match self.frame_mut(mfn) {
            Some(f) if !f.pinned() => {
                f.set_pinned(true);
                Ok(())
            }
            _ => {
                self.put_page_and_type(mem, mfn);
                Err(Errno::Inval)
            }
        }
    }

    /// `MMUEXT_UNPIN_TABLE`: -EINVAL if the frame is not the domain's or not
    /// pinned.
    fn unpin<M: Frames + ?Sized>(&mut self, mem: &mut M, mfn: u64) -> Result<(), Errno> {
        match self.frame_mut(mfn) {
            Some(f) if f.owned() && f.pinned() => f.set_pinned(false),
            _ => return Err(Errno::Inval),
        }
        self.put_page_and_type(mem, mfn);
        Ok(())
    }

    /// `new_guest_cr3`: install `mfn` as the vCPU's kernel root. The new
    /// reference is taken before the old one goes, so a root only the vCPU
    /// still holds (Linux unpins its boot L4 before switching) stays valid
    /// until the switch. Installing the current root again only reloads it.
    fn new_baseptr<M: Frames + ?Sized>(
        &mut self,
        mem: &mut M,
        mfn: u64,
        roots: &mut VcpuRoots,
    ) -> Result<(), Errno> {
        if roots.kernel == Some(mfn) {
            self.fx.reload_cr3 = true;
            return Ok(());
        }
        self.get_root(mem, mfn)?;
        if !self.m2p_strict {
            // `fill_ro_mpt`: only an empty slot is filled.
            if mem.read_entry(mfn, SLOT_M2P) == Some(0) {
                let _ = mem.write_entry(mfn, SLOT_M2P, self.slots.m2p);
            }
        }
        self.fx.destroy_ldt = true;
        self.fx.reload_cr3 = true;
        if let Some(old) = roots.kernel.replace(mfn) {
            self.put_root(mem, old);
        }
        Ok(())
    }

    /// `MMUEXT_NEW_USER_BASEPTR`: install `mfn` (0: none) as the vCPU's user
    /// root. Hypercalls come from kernel mode, so nothing is reloaded.
    fn new_user_baseptr<M: Frames + ?Sized>(
        &mut self,
        mem: &mut M,
        mfn: u64,
        roots: &mut VcpuRoots,
    ) -> Result<(), Errno> {
        if roots.user.unwrap_or(0) == mfn {
            return Ok(());
        }
        let new = if mfn == 0 {
            None
        } else {
            self.get_root(mem, mfn)?;
            if self.m2p_strict {
                // `zap_ro_mpt`.
                let _ = mem.write_entry(mfn, SLOT_M2P, 0);
            }
            Some(mfn)
        };
        if let Some(old) = core::mem::replace(&mut roots.user, new) {
            self.put_root(mem, old);
        }
        Ok(())
    }

    /// Take a root reference on `mfn` (validating it as an L4): -EINVAL if
    /// it is not the domain's, else the validation's error.
    pub fn get_root<M: Frames + ?Sized>(&mut self, mem: &mut M, mfn: u64) -> Result<(), Errno> {
        self.get_page_and_type(mem, mfn, PageType::L4)
    }

    /// Drop a root reference taken with [`PvMm::get_root`].
    pub fn put_root<M: Frames + ?Sized>(&mut self, mem: &mut M, mfn: u64) {
        self.put_page_and_type(mem, mfn);
    }

    /// Start a vCPU on the builder's L4: pin it (validating the whole tree,
    /// adjusting entries, writing the reserved slots) and install it as the
    /// kernel root, as Xen's toolstack and `arch_set_info_guest` do.
    pub fn pin_and_install_boot_root<M: Frames + ?Sized>(
        &mut self,
        mem: &mut M,
        l4: u64,
        roots: &mut VcpuRoots,
    ) -> Result<Effects, Errno> {
        let pin = MmuextOp {
            cmd: cmd::PIN_L4_TABLE,
            arg1: l4,
            arg2: 0,
        };
        let pinned = self.mmuext_op(mem, pin, roots)?;
        let install = MmuextOp {
            cmd: cmd::NEW_BASEPTR,
            ..pin
        };
        match self.mmuext_op(mem, install, roots) {
            Ok(mut fx) => {
                fx.flush(pinned.flush);
                Ok(fx)
            }
            Err(e) => {
                let _ = self.unpin(mem, l4);
                Err(e)
            }
        }
    }

    /// Drop a vCPU's roots (`vcpu_destroy_pagetables`).
    pub fn release_roots<M: Frames + ?Sized>(&mut self, mem: &mut M, roots: &mut VcpuRoots) {
        for mfn in [roots.kernel.take(), roots.user.take()]
            .into_iter()
            .flatten()
        {
            self.put_root(mem, mfn);
        }
    }

    /// A descriptor-table reference for `set_gdt` or a mapped LDT page
    /// (`get_page_and_type(PGT_seg_desc_page)`): -EINVAL if the frame is not
    /// the domain's or is in use as anything else (mapped writable, a
    /// table). The caller checks the descriptors itself, before this.
    pub fn get_seg_desc<M: Frames + ?Sized>(
        &mut self,
        mem: &mut M,
        mfn: u64,
    ) -> Result<Effects, Errno> {
        self.begin();
        let r = self
            .get_page_and_type(mem, mfn, PageType::SegDesc)
            .map_err(|_| Errno::Inval);
        self.finish(r)
    }

    /// Drop a reference taken with [`PvMm::get_seg_desc`].
    pub fn put_seg_desc<M: Frames + ?Sized>(&mut self, mem: &mut M, mfn: u64) {
        self.put_page_and_type(mem, mfn);
    }

    /// A writable-type reference for a frame the hypervisor writes on the
    /// guest's behalf (the FIFO event channel pages, Xen's
    /// `map_guest_page`): -EINVAL if the frame is not the domain's or is
    /// in use as a table or descriptor page.
    pub fn get_writable<M: Frames + ?Sized>(&mut self, mem: &mut M, mfn: u64) -> Result<(), Errno> {
        self.begin();
        let r = self
            .get_page_and_type(mem, mfn, PageType::Writable)
            .map_err(|_| Errno::Inval);
        self.finish(r).map(|_| ())
    }

    /// Drop a reference taken with [`PvMm::get_writable`].
    pub fn put_writable<M: Frames + ?Sized>(&mut self, mem: &mut M, mfn: u64) {
        self.put_page_and_type(mem, mfn);
    }

    /// `update_descriptor`'s write of an 8-byte descriptor the caller has
    /// checked, at machine address `maddr` (8-byte aligned, else -EINVAL):
    /// the frame must be a descriptor page or able to be writable (-EINVAL
    /// otherwise, or if it is not the domain's).
    pub fn write_descriptor<M: Frames + ?Sized>(
        &mut self,
        mem: &mut M,
        maddr: u64,
        desc: u64,
    ) -> Result<Effects, Errno> {
        self.begin();
        let r = self.write_descriptor_inner(mem, maddr, desc);
        self.finish(r)
    }

    fn write_descriptor_inner<M: Frames + ?Sized>(
        &mut self,
        mem: &mut M,
        maddr: u64,
        desc: u64,
    ) -> Result<(), Errno> {
        if maddr & 7 != 0 {
            return Err(Errno::Inval);
        }
        let (mfn, index) = (maddr >> 12, ((maddr & 0xfff) >> 3) as usize);
        let ty = match self.frame(mfn) {
            Some(f) if f.ty == PageType::SegDesc => PageType::SegDesc,
            _ => PageType::Writable,
        };
        self.get_page_and_type(mem, mfn, ty)
            .map_err(|_| Errno::Inval)?;
        let r = mem.write_entry(mfn, index, desc).ok_or(Errno::Inval);
        self.put_page_and_type(mem, mfn);
        r
    }
}
