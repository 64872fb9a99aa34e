//! The hypercalls only PV guests make: the trap table and callbacks, the
//! kernel stack, segment bases, the GDT and descriptors, debug registers,
//! the lazy FPU switch, `vm_assist`, `iret`, and the page-table operations
//! (`mmu_update`, `mmuext_op`, `update_va_mapping`) that `hv::pv::mm`
//! decides.
//!
//! All but `iret` and the GDT copies an `update_descriptor` reaches on
//! other vCPUs are methods of [`PvCpu`]: what they touch of the domain,
//! borrowed by the dispatcher, which carries out the flushes they ask of
//! every vCPU before the hypercall returns.

use super::super::guest_va::{read_virt, view, View};
use super::super::hypercall::{Errno, HcResult};
use super::super::space::GuestSpace;
use super::super::{Domain, Ending, GuestLog};
use super::{Callback, PvDomain, PvVcpu};
use crate::virt::guest_mem::GuestMemory;
use crate::virt::pv::{SegName, SegReg};
use crate::virt::Vcpu;
use alloc::vec::Vec;
use hv::hub::Hub;
use hv::pv::abi::{gdt, sel, va, vmasst};
use hv::pv::bounce::{self, IretContext};
use hv::pv::desc;
use hv::pv::mm::{self, Effects, Flush, Frames, MmuextOp, PgOwner};
use hv::regbits::CR0_TS;

/// PV hypercall numbers (`public/xen.h`).
pub mod nr {
    pub const SET_TRAP_TABLE: u64 = 0;
    pub const MMU_UPDATE: u64 = 1;
    pub const SET_GDT: u64 = 2;
    pub const STACK_SWITCH: u64 = 3;
    pub const SET_CALLBACKS: u64 = 4;
    pub const FPU_TASKSWITCH: u64 = 5;
    pub const SET_DEBUGREG: u64 = 8;
    pub const GET_DEBUGREG: u64 = 9;
    pub const UPDATE_DESCRIPTOR: u64 = 10;
    pub const UPDATE_VA_MAPPING: u64 = 14;
    pub const VM_ASSIST: u64 = 21;
    pub const UPDATE_VA_MAPPING_OTHERDOMAIN: u64 = 22;
    pub const IRET: u64 = 23;
    pub const SET_SEGMENT_BASE: u64 = 25;
    pub const MMUEXT_OP: u64 = 26;
    pub const CALLBACK_OP: u64 = 30;
}

/// A PV hypercall's end: a value for RAX, or no value (`iret` restores
/// RAX itself), or the domain's end.
pub(in crate::domain) enum PvCall {
    Ret(HcResult),
    /// RAX was set by the call (`iret`).
    Returned,
    End(Ending),
}

/// The domain's memory as `hv::pv::mm` reads and writes it: frame `mfn`
/// is guest-physical `mfn * 4096`.
pub(in crate::domain) struct MemFrames<'a>(pub &'a GuestMemory);

impl Frames for MemFrames<'_> {
    fn read_table(&self, mfn: u64) -> Option<[u64; 512]> {
        let mut b = [0u8; 4096];
        self.0.read(mfn.checked_mul(4096)?, &mut b).ok()?;
        let mut t = [0u64; 512];
        for (i, e) in t.iter_mut().enumerate() {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i * 8..i * 8 + 8]);
            *e = u64::from_le_bytes(w);
        }
        Some(t)
    }

    fn read_entry(&self, mfn: u64, index: usize) -> Option<u64> {
        if index >= 512 {
            return None;
        }
        let mut w = [0u8; 8];
        self.0
            .read(mfn.checked_mul(4096)? + index as u64 * 8, &mut w)
            .ok()?;
        Some(u64::from_le_bytes(w))
    }

    fn write_entry(&mut self, mfn: u64, index: usize, value: u64) -> Option<()> {
        if index >= 512 {
            return None;
        }
        self.0
            .write(
                mfn.checked_mul(4096)? + index as u64 * 8,
                &value.to_le_bytes(),
            )
            .ok()
    }
}

/// `callback_op` commands and types (`public/callback.h`).
mod cb {
    pub const REGISTER: u64 = 0;
    pub const UNREGISTER: u64 = 1;
    pub const EVENT: u16 = 0;
    pub const FAILSAFE: u16 = 1;
    pub const SYSCALL: u16 = 2;
    pub const NMI: u16 = 4;
    pub const SYSENTER: u16 = 5;
    pub const SYSCALL32: u16 = 7;
    pub const MASK_EVENTS: u16 = 1;
}

/// `set_segment_base` targets.
mod segbase {
    pub const FS: u64 = 0;
    pub const GS_USER: u64 = 1;
    pub const GS_KERNEL: u64 = 2;
    pub const GS_USER_SEL: u64 = 3;
}

/// The most trap table entries one `set_trap_table` reads (Xen's list ends
/// at the first entry with address 0; 256 vectors exist).
const TRAP_TABLE_MAX: u64 = 4096;

/// The most requests one `mmu_update`/`mmuext_op` handles.
const BATCH_MAX: u64 = 1 << 20;

fn le64(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

/// A descriptor as the CPU finds it in the hypervisor's copy: present code
/// and data segments with their accessed bit set, so the CPU never writes
/// the read-only copy.
fn for_copy(d: u64) -> u64 {
    const P: u64 = 1 << 47;
    const S: u64 = 1 << 44;
    if d & P != 0 && d & S != 0 {
        d | (1 << 40)
    } else {
        d
    }
}

/// The hypercall numbers [`PvCpu::call`] handles (bit per number).
const PVCPU_CALLS: u64 = 1 << nr::SET_TRAP_TABLE
    | 1 << nr::MMU_UPDATE
    | 1 << nr::SET_GDT
    | 1 << nr::STACK_SWITCH
    | 1 << nr::SET_CALLBACKS
    | 1 << nr::FPU_TASKSWITCH
    | 1 << nr::SET_DEBUGREG
    | 1 << nr::GET_DEBUGREG
    | 1 << nr::UPDATE_VA_MAPPING
    | 1 << nr::VM_ASSIST
    | 1 << nr::UPDATE_VA_MAPPING_OTHERDOMAIN
    | 1 << nr::SET_SEGMENT_BASE
    | 1 << nr::MMUEXT_OP
    | 1 << nr::CALLBACK_OP;

/// What the PV hypercalls touch: the domain's guest space, the calling
/// vCPU (registers, CR3, TLB) and its PV state, the domain's PV state
/// (page types, the hypervisor's frames) and the guest's log. Guest
/// arguments are read through the vCPU as it is at that moment, so a batch
/// entry after a new base pointer is read through the new tables. A flush
/// of every vCPU's TLB is asked for in `flush_all`; the dispatcher
/// ([`Domain::with_pv_cpu`]) does it before the hypercall returns.
pub(in crate::domain) struct PvCpu<'a> {
    pub me: u16,
    /// The calling vCPU's index.
    pub cur: u32,
    pub space: &'a mut GuestSpace,
    pub vcpu: &'a mut Vcpu,
    pub v: &'a mut PvVcpu,
    pub pv: &'a mut PvDomain,
    pub log: GuestLog<'a>,
    /// Every vCPU's TLB must be flushed.
    pub flush_all: bool,
}

/// What another domain a `foreigndom` names is.
fn foreign(d: u16, hub: &Hub) -> mm::Foreign {
    if !hub.evtchn.has_domain(d) {
        mm::Foreign::Absent
    } else if hub.pv_domains.contains(&d) {
        mm::Foreign::Pv
    } else {
        mm::Foreign::Hvm
    }
}

/// The L1 frame and index mapping `va` in `v`'s current kernel root, if
/// the walk reaches an L1 (`map_guest_l1e`).
fn l1_of(mem: &GuestMemory, v: &PvVcpu, va: u64) -> Option<(u64, usize)> {
    use hv::pv::abi::pte;
    let m = MemFrames(mem);
    let mut table = v.roots.kernel?;
    for shift in [39u64, 30, 21] {
        let e = m.read_entry(table, ((va >> shift) & 511) as usize)?;
        if e & pte::PRESENT == 0 || (shift != 39 && e & pte::PSE != 0) {
            return None;
        }
        table = (e & pte::ADDR) >> 12;
    }
    Some((table, ((va >> 12) & 511) as usize))
}

/// The virtual CR0.TS, mirrored in the container's CR0 so the guest's
/// next FPU instruction raises #NM.
pub(in crate::domain) fn fpu_taskswitch(v: &mut PvVcpu, vcpu: &mut Vcpu, set: bool) {
    v.ts = set;
    let cr0 = vcpu.cr0();
    let cr0 = if set { cr0 | CR0_TS } else { cr0 & !CR0_TS };
    vcpu.set_cr0(cr0);
}

impl Domain {
    /// Runs `f` on the current vCPU's [`PvCpu`], then flushes every vCPU's
    /// TLB if it asked for that; `None` when this is not a PV domain.
    #[inline]
    pub(in crate::domain) fn with_pv_cpu<R>(
        &mut self,
        f: impl FnOnce(&mut PvCpu<'_>) -> R,
    ) -> Option<R> {
        let mut c = self.pv_cpu()?;
        let r = f(&mut c);
        if c.flush_all {
            self.pv_flush_all();
        }
        Some(r)
    }

    /// The current vCPU's [`PvCpu`] (built out of line, once for every
    /// caller).
    #[inline(never)]
    fn pv_cpu(&mut self) -> Option<PvCpu<'_>> {
        Some(PvCpu {
            me: self.id,
            cur: self.vcpus.cur,
            space: &mut self.mem,
            vcpu: &mut self.vcpu,
            v: self.xen.cpu.pv.as_deref_mut()?,
            pv: self.pv.as_deref_mut()?,
            log: GuestLog::new(self.id, &self.name, &mut self.console),
            flush_all: false,
        })
    }

    /// A PV-only hypercall; `None` when `nr` is not one of them (or this
    /// is not a PV domain).
    pub(in crate::domain) fn pv_hypercall(
        &mut self,
        nr: u64,
        a: [u64; 5],
        hub: &mut Hub,
    ) -> Option<PvCall> {
        if !self.is_pv() {
            return None;
        }
        let r = match nr {
            nr::IRET => return Some(self.pv_iret()),
            nr::UPDATE_DESCRIPTOR => {
                self.with_pv_cpu(|c| c.update_descriptor(a[0], a[1]))?
                    .map(|d| {
                        self.pv_gdt_copies(a[0], d);
                        0
                    })
            }
            nr if nr < 64 && PVCPU_CALLS & (1 << nr) != 0 => {
                self.with_pv_cpu(|c| c.call(nr, a, hub))?
            }
            _ => return None,
        };
        Some(PvCall::Ret(r))
    }

    /// `iret`: return to the frame at the guest's stack pointer (`struct
    /// iret_context`), in user mode when its CS says so. A frame that
    /// cannot be read, a return to user mode without user page tables, or
    /// a CS/SS the guest could not load ends the domain, as in Xen.
    fn pv_iret(&mut self) -> PvCall {
        let rsp = self.vcpu.rsp();
        let mut b = [0u8; IretContext::SIZE];
        if read_virt(self, rsp, &mut b).is_err() {
            return self.pv_crash(alloc::format!(
                "iret: the frame at {rsp:#x} is not readable memory"
            ));
        }
        let ctx = IretContext::decode(&b);
        let user_root = self.pvv().is_some_and(|v| v.roots.user.is_some());
        let arch_iopl = self
            .pv
            .as_ref()
            .is_some_and(|p| p.assist(vmasst::TYPE_ARCHITECTURAL_IOPL));
        let i = match bounce::iret(&ctx, user_root, arch_iopl) {
            Ok(i) => i,
            Err(e) => return self.pv_crash(alloc::format!("{e}")),
        };
        let kernel = self.pvv().is_some_and(|v| v.kernel_mode);
        if i.to_user && kernel {
            self.pv_toggle_mode();
        }
        if let Some(iopl) = i.iopl {
            if let Some(v) = self.pvv_mut() {
                v.iopl = iopl;
            }
        }
        if let Err(e) = self.pv_load(&i.regs) {
            return self.pv_crash(alloc::format!("iret: {e}"));
        }
        self.pv_set_upcall_mask(i.upcall_mask);
        self.vcpu.set_rax(i.rax);
        PvCall::Returned
    }

    fn pv_crash(&mut self, why: alloc::string::String) -> PvCall {
        match self.destroy(why) {
            Some(e) => PvCall::End(e),
            None => PvCall::Returned,
        }
    }

    /// After `update_descriptor` wrote descriptor `d` at machine address
    /// `maddr`: every vCPU's GDT copy of that frame follows.
    fn pv_gdt_copies(&mut self, maddr: u64, d: u64) {
        let frame = maddr >> 12;
        let slot = ((maddr & 0xfff) / 8) as usize;
        for k in 0..self.nr_vcpus() {
            let pages: Vec<usize> = self
                .xen_of(k)
                .and_then(|x| x.pv.as_deref())
                .map(|v| {
                    (0..(v.gdt_ents as usize).div_ceil(512))
                        .filter(|&i| v.gdt_frames[i] == frame)
                        .collect()
                })
                .unwrap_or_default();
            if let Some(pv) = self.pv.as_mut() {
                for i in pages {
                    pv.area.set_gdt_entry(k, i * 512 + slot, for_copy(d));
                }
            }
        }
    }

    /// Flushes the TLB of every vCPU of the domain.
    #[inline(never)]
    fn pv_flush_all(&mut self) {
        for k in 0..self.nr_vcpus() {
            if let Some(v) = self.vcpu_of_mut(k) {
                v.flush_tlb();
            }
        }
    }

    /// The writable page-table assist: the guest kernel's write to `cr2`
    /// faulted on a read-only mapping; if that maps an L1 page table, the
    /// write is decoded, checked as an L1 update and done. `None` when the
    /// fault is the guest's own.
    pub(in crate::domain) fn pv_ptwr(&mut self, cr2: u64) -> Option<Option<Ending>> {
        let (l1, index) = l1_of(&self.mem, self.pvv()?, cr2)?;
        let e = MemFrames(&self.mem).read_entry(l1, index)?;
        if e & hv::pv::abi::pte::PRESENT == 0 || e & hv::pv::abi::pte::RW != 0 {
            return None;
        }
        let target = (e & hv::pv::abi::pte::ADDR) >> 12;
        if !self.pv.as_ref()?.mm.is_l1(target) {
            return None;
        }
        let mut b = [0u8; 15];
        let got = super::super::guest_va::fetch_insn(self, &mut b);
        let w = hv::pv::emul::decode_write(&b[..got])?;
        let offset = (cr2 & 0xfff) as usize;
        let size = usize::from(w.size);
        if !offset.is_multiple_of(size) {
            return None;
        }
        let src = match w.src {
            hv::pv::emul::Operand::Imm(v) => v,
            hv::pv::emul::Operand::Reg(r)
                if w.size == 1 && w.high_byte_regs && (4..8).contains(&r) =>
            {
                self.gpr(r - 4) >> 8
            }
            hv::pv::emul::Operand::Reg(r) => self.gpr(r),
        };
        // Bit operations with a register bit offset may address another
        // entry: only an offset inside this operand is emulated.
        if matches!(
            w.op,
            hv::pv::emul::Rmw::Bts | hv::pv::emul::Rmw::Btr | hv::pv::emul::Rmw::Btc
        ) && matches!(w.src, hv::pv::emul::Operand::Reg(_))
            && src >= u64::from(w.size) * 8
        {
            return None;
        }
        let mut old_bytes = [0u8; 8];
        self.mem
            .read(target * 4096 + offset as u64, &mut old_bytes[..size])
            .ok()?;
        let old = u64::from_le_bytes(old_bytes);
        let a = hv::pv::emul::apply(&w, src, old, self.vcpu.rax());
        if let Some(new) = a.new {
            let data = &new.to_le_bytes()[..size];
            let cmp = matches!(w.op, hv::pv::emul::Rmw::Cmpxchg).then_some(old);
            let ok = self.with_pv_cpu(|c| {
                match c
                    .pv
                    .mm
                    .ptwr_write(&mut MemFrames(c.space), target, offset, data, cmp)
                {
                    Ok(mm::PtwrOutcome::Written { flush }) => {
                        let _ = c.effects(Effects {
                            flush,
                            ..Effects::default()
                        });
                        true
                    }
                    Ok(_) => true,
                    // Not an acceptable entry: Xen gives the guest its #PF.
                    Err(_) => false,
                }
            })?;
            if !ok {
                return None;
            }
        }
        if let Some((reg, v)) = a.reg {
            let size_mask = if w.size == 8 {
                u64::MAX
            } else {
                (1u64 << (w.size * 8)) - 1
            };
            let cur = self.gpr(reg);
            let v = if w.size >= 4 {
                v & size_mask
            } else {
                (cur & !size_mask) | (v & size_mask)
            };
            self.set_gpr(reg, v);
        }
        if let Some(flag) = a.flag {
            // ZF (CMPXCHG) or CF (bit operations).
            let bit = if matches!(w.op, hv::pv::emul::Rmw::Cmpxchg) {
                1 << 6
            } else {
                1
            };
            let f = self.vcpu.rflags();
            self.vcpu.set_rflags(if flag { f | bit } else { f & !bit });
        }
        let rip = self.vcpu.rip().wrapping_add(w.len as u64);
        self.vcpu.set_rip(rip);
        Some(None)
    }
}

impl PvCpu<'_> {
    /// The calling vCPU's guest access, as its paging is now.
    #[inline]
    fn view(&self) -> View<'_> {
        view(self.space, self.vcpu)
    }

    /// One of the hypercalls in [`PVCPU_CALLS`].
    fn call(&mut self, nr: u64, a: [u64; 5], hub: &Hub) -> HcResult {
        match nr {
            nr::SET_TRAP_TABLE => self.set_trap_table(a[0]),
            nr::MMU_UPDATE => self.mmu_update(a[0], a[1], a[2], a[3] as u32, hub),
            nr::SET_GDT => self.set_gdt(a[0], a[1]),
            nr::STACK_SWITCH => {
                self.v.kernel_ss = (a[0] as u16) | 3;
                self.v.kernel_sp = a[1];
                Ok(0)
            }
            nr::SET_CALLBACKS => {
                for (ty, addr) in [(cb::EVENT, a[0]), (cb::FAILSAFE, a[1]), (cb::SYSCALL, a[2])] {
                    let _ = self.register_callback(ty, 0, addr);
                }
                Ok(0)
            }
            nr::FPU_TASKSWITCH => {
                fpu_taskswitch(self.v, self.vcpu, a[0] as u32 != 0);
                Ok(0)
            }
            nr::SET_DEBUGREG => self.v.debugreg.set(a[0], a[1]).map(|()| 0),
            nr::GET_DEBUGREG => self.v.debugreg.get(a[0]).map(|v| v as i64),
            nr::UPDATE_VA_MAPPING => self.update_va_mapping(a[0], a[1], a[2]),
            nr::UPDATE_VA_MAPPING_OTHERDOMAIN => {
                // Only the domain itself, named DOMID_SELF.
                match hv::hub::only_self(self.me, a[3] as u16, &hub.evtchn) {
                    Ok(()) if a[3] as u16 == hv::pv::abi::domid::SELF => {
                        self.update_va_mapping(a[0], a[1], a[2])
                    }
                    Ok(()) => Err(Errno::Srch),
                    Err(e) => Err(e),
                }
            }
            nr::VM_ASSIST => self.vm_assist(a[0], a[1]),
            nr::SET_SEGMENT_BASE => self.set_segment_base(a[0], a[1]),
            nr::MMUEXT_OP => self.mmuext_op(a[0], a[1], a[2], a[3] as u32, hub),
            nr::CALLBACK_OP => self.callback_op(a[0], a[1]),
            _ => Err(Errno::NoSys),
        }
    }

    /// `set_trap_table`: entries until one with address 0 replace theirs
    /// (a null list clears the table); a non-canonical address is -EINVAL.
    fn set_trap_table(&mut self, list: u64) -> HcResult {
        if list == 0 {
            self.v.traps.fill(super::TrapInfo::default());
            return Ok(0);
        }
        for i in 0..TRAP_TABLE_MAX {
            let b: [u8; 16] = self.view().copy_from_guest(list.wrapping_add(i * 16))?;
            let address = le64(&b[8..16]);
            if address == 0 {
                break;
            }
            if !va::canonical(address) {
                return Err(Errno::Inval);
            }
            self.v.traps[usize::from(b[0])] = super::TrapInfo {
                flags: b[1],
                cs: u16::from_le_bytes([b[2], b[3]]) | 3,
                address,
            };
        }
        Ok(0)
    }

    fn register_callback(&mut self, ty: u16, flags: u16, address: u64) -> HcResult {
        if !va::canonical(address) {
            return Err(Errno::Inval);
        }
        let c = Callback {
            address,
            mask_events: flags & cb::MASK_EVENTS != 0,
        };
        let v = &mut *self.v;
        match ty {
            cb::EVENT => {
                v.callbacks.event = Callback {
                    mask_events: true,
                    ..c
                }
            }
            cb::FAILSAFE => v.callbacks.failsafe = c,
            cb::SYSCALL => v.callbacks.syscall = c,
            cb::SYSCALL32 => v.callbacks.syscall32 = c,
            cb::SYSENTER => v.callbacks.sysenter = c,
            cb::NMI => {
                v.callbacks.nmi = c;
                // Xen puts it in the trap table's NMI slot, events masked.
                v.traps[2] = super::TrapInfo {
                    flags: 4,
                    cs: sel::FLAT_KERNEL_CS,
                    address,
                };
            }
            _ => return Err(Errno::NoSys),
        }
        Ok(0)
    }

    /// `callback_op`: register or unregister (only the NMI callback can
    /// be unregistered).
    fn callback_op(&mut self, cmd: u64, arg: u64) -> HcResult {
        match cmd {
            cb::REGISTER => {
                let b: [u8; 16] = self.view().copy_from_guest(arg)?;
                let ty = u16::from_le_bytes([b[0], b[1]]);
                let flags = u16::from_le_bytes([b[2], b[3]]);
                self.register_callback(ty, flags, le64(&b[8..16]))
            }
            cb::UNREGISTER => {
                let b: [u8; 2] = self.view().copy_from_guest(arg)?;
                match u16::from_le_bytes(b) {
                    cb::NMI => {
                        self.v.callbacks.nmi = Callback::default();
                        self.v.traps[2] = super::TrapInfo::default();
                        Ok(0)
                    }
                    cb::EVENT | cb::FAILSAFE | cb::SYSCALL | cb::SYSCALL32 | cb::SYSENTER => {
                        Err(Errno::Inval)
                    }
                    _ => Err(Errno::NoSys),
                }
            }
            _ => Err(Errno::NoSys),
        }
    }

    /// `vm_assist`: enable or disable an assist a 64-bit PV guest may use.
    fn vm_assist(&mut self, cmd: u64, ty: u64) -> HcResult {
        if ty >= 64 || vmasst::PV64_MASK & (1 << ty) == 0 {
            return Err(Errno::Inval);
        }
        let pv = &mut *self.pv;
        match cmd {
            vmasst::CMD_ENABLE => pv.vm_assist |= 1 << ty,
            vmasst::CMD_DISABLE => pv.vm_assist &= !(1 << ty),
            _ => return Err(Errno::NoSys),
        }
        if ty == u64::from(vmasst::TYPE_M2P_STRICT) {
            let on = pv.vm_assist & (1 << ty) != 0;
            pv.mm.set_m2p_strict(on);
        }
        Ok(0)
    }

    /// `set_segment_base`: FS, the user GS (the inactive base while the
    /// kernel runs), the kernel GS, or the user GS selector.
    fn set_segment_base(&mut self, which: u64, base: u64) -> HcResult {
        match which {
            segbase::FS | segbase::GS_USER | segbase::GS_KERNEL => {
                if !va::canonical(base) {
                    return Err(Errno::Inval);
                }
                match which {
                    segbase::FS => {
                        let s = self.vcpu.seg(SegName::Fs);
                        self.vcpu.set_seg(SegName::Fs, SegReg { base, ..s });
                    }
                    segbase::GS_KERNEL => {
                        let s = self.vcpu.seg(SegName::Gs);
                        self.vcpu.set_seg(SegName::Gs, SegReg { base, ..s });
                    }
                    _ => self.v.shadow_gs = base,
                }
                Ok(0)
            }
            segbase::GS_USER_SEL => {
                // The user GS selector, from the GDT: the selector and its
                // attributes load (shared by both modes), its base becomes
                // the user GS base; a selector that cannot be loaded loads
                // the null selector instead, as Xen's fix-up does.
                let mut sel = base as u16;
                if sel > 3 {
                    sel |= 3;
                }
                let loaded = (sel > 3)
                    .then(|| super::gdt_descriptor(self.v, &self.pv.area, self.cur, sel))
                    .flatten()
                    .filter(|d| {
                        let present = d & (1 << 47) != 0;
                        let seg = d & (1 << 44) != 0;
                        let code = d & (1 << 43) != 0;
                        let readable = d & (1 << 41) != 0;
                        present && seg && (!code || readable)
                    });
                let (sel, hidden) = match loaded {
                    Some(d) => (sel, desc::Hidden::of(d)),
                    None => (0, desc::Hidden::default()),
                };
                let gs = self.vcpu.seg(SegName::Gs);
                self.vcpu.set_seg(
                    SegName::Gs,
                    SegReg {
                        selector: sel,
                        attrib: hidden.attrib,
                        limit: hidden.limit,
                        base: gs.base,
                    },
                );
                self.v.shadow_gs = hidden.base;
                Ok(0)
            }
            _ => Err(Errno::Inval),
        }
    }

    /// `set_gdt`: up to 14 frames of descriptors, each checked and then
    /// typed as a descriptor page (so the guest can no longer map it
    /// writable); the vCPU's GDT copy follows them.
    fn set_gdt(&mut self, list: u64, entries: u64) -> HcResult {
        if entries > gdt::FIRST_RESERVED_GDT_ENTRY as u64 {
            return Err(Errno::Inval);
        }
        self.v.gdt_changed();
        let nr = entries.div_ceil(512) as usize;
        let mut frames = Vec::with_capacity(nr);
        for i in 0..nr {
            let b: [u8; 8] = self
                .view()
                .copy_from_guest(list.wrapping_add(i as u64 * 8))?;
            frames.push(u64::from_le_bytes(b));
        }
        // Check every frame's descriptors, then take the type references.
        let mut pages: Vec<alloc::boxed::Box<[u8; 4096]>> = Vec::with_capacity(nr);
        for &f in &frames {
            let mut page = alloc::boxed::Box::new([0u8; 4096]);
            let gpa = f.checked_mul(4096).ok_or(Errno::Inval)?;
            self.space
                .read(gpa, &mut page[..])
                .map_err(|_| Errno::Inval)?;
            for d in page.chunks_exact_mut(8) {
                let fixed = desc::check_descriptor(le64(d)).ok_or(Errno::Inval)?;
                d.copy_from_slice(&fixed.to_le_bytes());
            }
            pages.push(page);
        }
        let taken = self.take_seg_desc(&frames)?;
        // The fixed-up descriptors go back into the guest's frames too, as
        // Xen validates them in place.
        for (f, page) in frames.iter().zip(&pages) {
            let _ = self.space.write(f * 4096, &page[..]);
        }
        let v = &mut *self.v;
        let old: Vec<u64> = v.gdt_frames[..(v.gdt_ents as usize).div_ceil(512)].to_vec();
        v.gdt_frames = [0; gdt::FIRST_RESERVED_GDT_PAGE];
        v.gdt_frames[..taken].copy_from_slice(&frames);
        v.gdt_ents = entries as u32;
        self.put_seg_desc(&old);
        for i in 0..gdt::FIRST_RESERVED_GDT_PAGE {
            let copy = pages.get(i).map(|p| {
                let mut c = alloc::boxed::Box::new([0u8; 4096]);
                for (o, d) in c.chunks_exact_mut(8).zip(p.chunks_exact(8)) {
                    o.copy_from_slice(&for_copy(le64(d)).to_le_bytes());
                }
                c
            });
            self.pv
                .area
                .set_gdt_page(&mut self.space.tables, self.cur, i, copy.as_deref())
                .ok_or(Errno::NoMem)?;
        }
        self.vcpu.flush_tlb();
        Ok(0)
    }

    /// Takes a descriptor-page reference on each frame, or none.
    fn take_seg_desc(&mut self, frames: &[u64]) -> Result<usize, Errno> {
        let mut m = MemFrames(self.space);
        for (i, &f) in frames.iter().enumerate() {
            if self.pv.mm.get_seg_desc(&mut m, f).is_err() {
                for &g in &frames[..i] {
                    self.pv.mm.put_seg_desc(&mut m, g);
                }
                return Err(Errno::Inval);
            }
        }
        Ok(frames.len())
    }

    fn put_seg_desc(&mut self, frames: &[u64]) {
        let mut m = MemFrames(self.space);
        for &f in frames {
            self.pv.mm.put_seg_desc(&mut m, f);
        }
    }

    /// `update_descriptor`: one checked descriptor at machine address
    /// `maddr`, which it returns for the vCPUs' GDT copies of that frame.
    fn update_descriptor(&mut self, maddr: u64, d: u64) -> Result<u64, Errno> {
        if !maddr.is_multiple_of(8) {
            return Err(Errno::Inval);
        }
        let d = desc::check_descriptor(d).ok_or(Errno::Inval)?;
        self.v.gdt_changed();
        self.pv
            .mm
            .write_descriptor(&mut MemFrames(self.space), maddr, d)?;
        Ok(d)
    }

    /// `update_va_mapping`: the entry mapping `va` in the current kernel
    /// tables gets `val`, then the flush `flags` asks for.
    fn update_va_mapping(&mut self, va: u64, val: u64, flags: u64) -> HcResult {
        let (l1, index) = l1_of(self.space, self.v, va).ok_or(Errno::Inval)?;
        let fx = self.pv.mm.update_va_mapping(
            &mut MemFrames(self.space),
            l1,
            index,
            val,
            PgOwner::Own,
        )?;
        // The update's own effects first: an unreadable vCPU bitmap fails
        // the call after the update, as in Xen.
        self.effects(fx)?;
        self.effects(Effects {
            flush: mm::uvmf_flush(flags, va),
            ..Effects::default()
        })?;
        Ok(0)
    }

    /// Carries out what an `hv::pv::mm` operation asks for: TLB flushes
    /// (of every vCPU: asked of the dispatcher), the new kernel root as
    /// CR3, an M2P entry.
    fn effects(&mut self, fx: Effects) -> Result<(), Errno> {
        match fx.flush {
            Flush::None => {}
            Flush::Local | Flush::LocalVa(_) => self.vcpu.flush_tlb(),
            Flush::All | Flush::AllVa(_) => self.flush_all = true,
            Flush::Vcpus {
                vcpumask,
                unreadable,
                ..
            } => {
                // The bitmap must be readable.
                let _mask: [u8; 8] = self
                    .view()
                    .copy_from_guest(vcpumask)
                    .map_err(|_| unreadable)?;
                self.flush_all = true;
            }
        }
        if let Some(w) = fx.m2p {
            self.pv.area.set_m2p(w.mfn, w.pfn);
        }
        if fx.reload_cr3 && self.v.kernel_mode {
            if let Some(mfn) = self.v.roots.kernel {
                self.vcpu.set_cr3(mfn << 12);
            }
        }
        Ok(())
    }

    /// `mmu_update`: `count` requests of 16 bytes at `list`; `pdone` (if
    /// not 0) gets how many were done; the first failure ends the call with
    /// its error.
    fn mmu_update(
        &mut self,
        list: u64,
        count: u64,
        pdone: u64,
        foreigndom: u32,
        hub: &Hub,
    ) -> HcResult {
        let count = count & !(1 << 31); // MMU_UPDATE_PREEMPTED
        if count > BATCH_MAX {
            return Err(Errno::Inval);
        }
        let owner = match mm::mmu_update_owner(foreigndom, self.me, |d| foreign(d, hub)) {
            Ok(o) => o,
            Err(e) => {
                // As Xen: a page-table owner that does not exist fails before
                // anything is counted; a page owner it cannot have fails
                // with `pdone` written (0), and only once a request is made.
                let pt = foreigndom >> 16;
                let pt_missing = pt != 0 && !hub.evtchn.has_domain((pt - 1) as u16);
                if !pt_missing && pdone != 0 {
                    let _ = self.view().copy_to_guest(pdone, &0u32.to_le_bytes());
                }
                if e == Errno::Perm && count == 0 {
                    return Ok(0);
                }
                return Err(e);
            }
        };
        let mut done = 0u64;
        let mut result = Ok(0);
        let mut flush = Flush::None;
        while done < count {
            let b: [u8; 16] = match self.view().copy_from_guest(list.wrapping_add(done * 16)) {
                Ok(b) => b,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            let (ptr, val) = (le64(&b[0..8]), le64(&b[8..16]));
            match self
                .pv
                .mm
                .mmu_update(&mut MemFrames(self.space), ptr, val, owner)
            {
                Ok(fx) => {
                    flush = flush.merge(fx.flush);
                    self.effects(Effects {
                        flush: Flush::None,
                        ..fx
                    })?;
                    done += 1;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.effects(Effects {
            flush,
            ..Effects::default()
        })?;
        // As Xen, a `pdone` that cannot be written does not change the
        // result.
        if pdone != 0 {
            let _ = self
                .view()
                .copy_to_guest(pdone, &(done as u32).to_le_bytes());
        }
        result
    }

    /// `mmuext_op`: `count` operations of 24 bytes at `list`.
    fn mmuext_op(
        &mut self,
        list: u64,
        count: u64,
        pdone: u64,
        foreigndom: u32,
        hub: &Hub,
    ) -> HcResult {
        let count = count & !(1 << 31);
        if count > BATCH_MAX {
            return Err(Errno::Inval);
        }
        mm::mmuext_owner(foreigndom, self.me, |d| foreign(d, hub))?;
        let mut done = 0u64;
        let mut result = Ok(0);
        while done < count {
            let at = list.wrapping_add(done * MmuextOp::SIZE as u64);
            let b: [u8; MmuextOp::SIZE] = match self.view().copy_from_guest(at) {
                Ok(b) => b,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            let op = MmuextOp::from_bytes(&b);
            let r = self
                .pv
                .mm
                .mmuext_op(&mut MemFrames(self.space), op, &mut self.v.roots)
                .and_then(|fx| {
                    if let Some(ldt) = fx.ldt {
                        self.set_ldt(ldt.base, ldt.ents)?;
                    }
                    self.effects(fx)
                });
            match r {
                Ok(()) => done += 1,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        // As Xen, a `pdone` that cannot be written does not change the
        // result.
        if pdone != 0 {
            let _ = self
                .view()
                .copy_to_guest(pdone, &(done as u32).to_le_bytes());
        }
        result
    }

    /// `MMUEXT_SET_LDT`: only "no LDT" is supported; a guest that wants a
    /// local descriptor table is told -EINVAL and logged.
    fn set_ldt(&mut self, base: u64, ents: u32) -> Result<(), Errno> {
        if ents == 0 {
            self.v.ldt = (0, 0);
            return Ok(());
        }
        self.log.log(alloc::format!(
            "MMUEXT_SET_LDT of {ents} entries at {base:#x}: local descriptor tables are not supported, -EINVAL"
        ));
        Err(Errno::Inval)
    }

    /// `MMUEXT_NEW_BASEPTR` by a `mov %cr3` the guest kernel made.
    pub(in crate::domain) fn new_baseptr(&mut self, mfn: u64) -> Result<(), Errno> {
        let op = MmuextOp {
            cmd: mm::cmd::NEW_BASEPTR,
            arg1: mfn,
            arg2: 0,
        };
        let fx = self
            .pv
            .mm
            .mmuext_op(&mut MemFrames(self.space), op, &mut self.v.roots)?;
        self.effects(fx)
    }
}
