//! Delivering to a PV guest kernel what it must handle, as Xen does
//! (`entry.S`, `pv/traps.c`): exceptions through its trap table, system
//! calls from user mode through its syscall callback, `int n` as its trap
//! table's DPL allows, events through its event callback; and the switch
//! between guest kernel and guest user mode (page tables, GS bases) that
//! goes with them and with `iret`.

use super::super::guest_va::{fetch_insn, write_virt};
use super::super::{Domain, Ending};
use super::PvVcpu;
use crate::virt::pv::{SegName, SegReg};
use alloc::format;
use alloc::string::String;
use hv::pv::abi::{sel, vmasst};
use hv::pv::bounce::{self, pf_error_code, Delivery, Regs};
use hv::pv::desc;
use vmm_glue::log;
use vmm_glue::xen::shared_info::{
    SHARED_INFO_EVTCHN_MASK, SHARED_INFO_EVTCHN_PENDING, VCPU_INFO_PENDING_SEL,
    VCPU_INFO_UPCALL_MASK, VCPU_INFO_UPCALL_PENDING,
};

/// `vcpu_info.arch.cr2`.
const VCPU_INFO_CR2: u64 = 16;

/// Page-fault error code bits.
mod pfec {
    pub const PRESENT: u32 = 1 << 0;
    pub const WRITE: u32 = 1 << 1;
    pub const RESERVED: u32 = 1 << 3;
    pub const FETCH: u32 = 1 << 4;
}

/// #GP error code bit: the fault came from an IDT entry (an `int n` whose
/// gate the container's empty IDT does not have).
const XEC_IDT: u32 = 1 << 1;

impl Domain {
    /// The current vCPU's PV state.
    pub(in crate::domain) fn pvv(&self) -> Option<&PvVcpu> {
        self.xen.cpu.pv.as_deref()
    }

    pub(in crate::domain) fn pvv_mut(&mut self) -> Option<&mut PvVcpu> {
        self.xen.cpu.pv.as_deref_mut()
    }

    /// Whether this is a PV domain.
    pub(crate) fn is_pv(&self) -> bool {
        self.pv.is_some()
    }

    /// The guest's interrupted state, as bounces and `iret` see it.
    fn pv_regs(&mut self) -> Regs {
        let cs = self.vcpu.seg(SegName::Cs).selector;
        let ss = self.vcpu.seg(SegName::Ss).selector;
        let (rcx, r11) = {
            let r = self.vcpu.regs();
            (r.rcx, r.r11)
        };
        Regs {
            rip: self.vcpu.rip(),
            cs,
            rflags: self.vcpu.rflags(),
            rsp: self.vcpu.rsp(),
            ss,
            rcx,
            r11,
        }
    }

    /// The descriptor `selector` names in the current vCPU's GDT
    /// ([`super::gdt_descriptor`]).
    pub(in crate::domain) fn pv_descriptor(&self, selector: u16) -> Option<u64> {
        super::gdt_descriptor(
            self.pvv()?,
            &self.pv.as_ref()?.area,
            self.vcpus.cur,
            selector,
        )
    }

    /// Loads RIP, RSP, RFLAGS, RCX, R11 and the CS and SS selectors of
    /// `r`; CS and SS are checked against the descriptor tables (a
    /// selector the guest could not load is refused with the reason).
    pub(in crate::domain) fn pv_load(&mut self, r: &Regs) -> Result<(), String> {
        let cs = desc::code_segment(r.cs, self.pv_descriptor(r.cs))
            .map_err(|e| format!("CS {:#x}: {e:?}", r.cs))?;
        let ss = desc::stack_segment(r.ss, self.pv_descriptor(r.ss))
            .map_err(|e| format!("SS {:#x}: {e:?}", r.ss))?;
        self.vcpu.set_seg(
            SegName::Cs,
            SegReg {
                selector: r.cs,
                attrib: cs.attrib,
                limit: cs.limit,
                base: 0,
            },
        );
        self.vcpu.set_seg(
            SegName::Ss,
            SegReg {
                selector: r.ss,
                attrib: ss.attrib,
                limit: ss.limit,
                base: 0,
            },
        );
        self.vcpu.set_rip(r.rip);
        self.vcpu.set_rsp(r.rsp);
        // The hardware IF stays set: the guest's "interrupt flag" is its
        // upcall mask.
        self.vcpu.set_rflags(
            (r.rflags | bounce::rflags::IF | bounce::rflags::MBS) & !bounce::rflags::IOPL,
        );
        let regs = self.vcpu.regs();
        regs.rcx = r.rcx;
        regs.r11 = r.r11;
        // What loaded here loads for the fast-path stub's IRETQ too, until
        // the GDT changes: a 64-bit DPL 3 code segment, a DPL 3 stack.
        if let Some(v) = self.pvv_mut() {
            let dpl3 = |attrib: u16| (attrib >> 5) & 3 == 3;
            if dpl3(cs.attrib) && cs.attrib & (1 << 9) != 0 {
                hv::pv::fast::remember(&mut v.cs_ok, r.cs);
            }
            if dpl3(ss.attrib) {
                hv::pv::fast::remember(&mut v.ss_ok, r.ss);
            }
        }
        Ok(())
    }

    /// Switches the current vCPU between guest kernel and guest user mode:
    /// the other root table becomes CR3 and the GS bases swap (Xen's
    /// `toggle_guest_mode`).
    pub(in crate::domain) fn pv_toggle_mode(&mut self) {
        let gs = self.vcpu.seg(SegName::Gs);
        let Some(v) = self.pvv_mut() else {
            return;
        };
        let shadow = core::mem::replace(&mut v.shadow_gs, gs.base);
        v.kernel_mode = !v.kernel_mode;
        let root = if v.kernel_mode {
            v.roots.kernel
        } else {
            v.roots.user
        };
        self.vcpu
            .set_seg(SegName::Gs, SegReg { base: shadow, ..gs });
        if let Some(mfn) = root {
            self.vcpu.set_cr3(mfn << 12);
        }
    }

    /// Where the current vCPU's `vcpu_info` is.
    fn pv_vcpu_info(&self) -> Option<u64> {
        self.vcpu_info_gpa(self.vcpus.cur)
    }

    /// The current vCPU's `evtchn_upcall_mask`.
    pub(in crate::domain) fn pv_upcall_mask(&self) -> u8 {
        let mut b = [1u8];
        if let Some(gpa) = self.pv_vcpu_info() {
            let _ = self.mem.read(gpa + VCPU_INFO_UPCALL_MASK as u64, &mut b);
        }
        b[0]
    }

    pub(in crate::domain) fn pv_set_upcall_mask(&mut self, mask: u8) {
        if let Some(gpa) = self.pv_vcpu_info() {
            let _ = self.mem.write(gpa + VCPU_INFO_UPCALL_MASK as u64, &[mask]);
        }
    }

    /// Delivers `d` to the current vCPU: the frame on its kernel stack (in
    /// kernel mode first, from user mode), its handler next. A frame that
    /// cannot be written ends the domain, as in Xen.
    pub(in crate::domain) fn pv_bounce(&mut self, d: &Delivery, what: &str) -> Option<Ending> {
        let regs = self.pv_regs();
        let Some(v) = self.pvv() else {
            return self.destroy(String::from("PV state missing"));
        };
        let (kernel_mode, kernel_sp) = (v.kernel_mode, v.kernel_sp);
        let iopl = self
            .pv
            .as_ref()
            .is_some_and(|p| p.assist(vmasst::TYPE_ARCHITECTURAL_IOPL))
            .then_some(v.iopl);
        let mask = self.pv_upcall_mask();
        let b = match bounce::bounce(&regs, kernel_mode, kernel_sp, mask, iopl, d) {
            Ok(b) => b,
            Err(e) => return self.destroy(format!("cannot deliver {what}: {e}")),
        };
        if b.to_kernel {
            self.pv_toggle_mode();
        }
        let (bytes, len) = b.frame.bytes();
        if write_virt(self, b.frame.rsp, &bytes[..len]).is_err() {
            return self.destroy(format!(
                "cannot deliver {what}: the kernel stack at {:#x} is not writable memory",
                b.frame.rsp
            ));
        }
        self.pv_set_upcall_mask(b.upcall_mask);
        if let Err(e) = self.pv_load(&b.regs) {
            return self.destroy(format!("cannot deliver {what}: {e}"));
        }
        None
    }

    /// Delivers a pending event upcall when the current vCPU has one and
    /// has events unmasked (`test_guest_events`). Called before every
    /// entry.
    pub(in crate::domain) fn pv_deliver_events(&mut self) -> Option<Ending> {
        let gpa = self.pv_vcpu_info()?;
        let mut b = [0u8; 2];
        if self
            .mem
            .read(gpa + VCPU_INFO_UPCALL_PENDING as u64, &mut b)
            .is_err()
        {
            return None;
        }
        if b[0] == 0 || b[1] != 0 {
            return None;
        }
        let handler = self.pvv()?.callbacks.event.address;
        if handler == 0 {
            return None;
        }
        // What the guest's handler would do, finding nothing: the fast
        // path's rules (`hv::pv::fast::upcall_finds_a_port`, and for the
        // FIFO ABI `hv::evtchn::fifo::Fifo::leave_out_upcall`, which does
        // the handler's work on the queues).
        let nothing = if self.uses_fifo() {
            self.fifo_leave_out_upcall()
        } else {
            !self.pv_upcall_finds_a_port(gpa)
        };
        if nothing {
            let _ = self.mem.write(gpa + VCPU_INFO_UPCALL_PENDING as u64, &[0]);
            if !self.uses_fifo() {
                let _ = self
                    .mem
                    .write(gpa + VCPU_INFO_PENDING_SEL as u64, &0u64.to_le_bytes());
            }
            self.exits.empty_upcalls += 1;
            return None;
        }
        self.exits.upcalls += 1;
        self.pv_bounce(
            &Delivery {
                handler,
                error: None,
                mask_events: true,
                clear_df: false,
            },
            "an event upcall",
        )
    }

    /// Under the 2-level ABI, whether an upcall now would find a port
    /// pending and unmasked in a word the `vcpu_info` at `info` selects
    /// (true when the bitmaps cannot be read: then the upcall goes as
    /// usual).
    fn pv_upcall_finds_a_port(&mut self, info: u64) -> bool {
        let mut sel = [0u8; 8];
        if self
            .mem
            .read(info + VCPU_INFO_PENDING_SEL as u64, &mut sel)
            .is_err()
        {
            return true;
        }
        let Some(bitmaps) = self.with_shared(|page| {
            let word = |at: usize, w: usize| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&page[at + w * 8..at + w * 8 + 8]);
                u64::from_le_bytes(b)
            };
            let pending: [u64; 64] = core::array::from_fn(|w| word(SHARED_INFO_EVTCHN_PENDING, w));
            let mask: [u64; 64] = core::array::from_fn(|w| word(SHARED_INFO_EVTCHN_MASK, w));
            (pending, mask)
        }) else {
            return true;
        };
        hv::pv::fast::upcall_finds_a_port(u64::from_le_bytes(sel), &bitmaps.0, &bitmaps.1)
    }

    /// Bounces hardware exception `vector` through the trap table; a
    /// vector the guest has no handler for ends the domain, as in Xen.
    pub(in crate::domain) fn pv_trap(&mut self, vector: u8, error: Option<u32>) -> Option<Ending> {
        let Some(ti) = self.pvv().map(|v| v.traps[usize::from(vector)]) else {
            return self.destroy(String::from("PV state missing"));
        };
        if ti.address == 0 {
            return self.destroy(format!(
                "exception {vector} (error code {:#x}) at rip {:#x} and no handler in its trap table",
                error.unwrap_or(0),
                self.vcpu.rip()
            ));
        }
        self.pv_bounce(
            &Delivery {
                handler: ti.address,
                error,
                mask_events: ti.masks_events(),
                clear_df: false,
            },
            "an exception",
        )
    }

    /// An intercepted exception of a PV guest.
    pub(in crate::domain) fn pv_exception(
        &mut self,
        vector: u8,
        error: Option<u32>,
        cr2: u64,
    ) -> Option<Ending> {
        log::trace!(
            "d{} pv: exception {vector} error {:?} cr2 {cr2:#x} at rip {:#x}",
            self.id,
            error,
            self.vcpu.rip()
        );
        self.exits.by_vector[usize::from(vector & 31)] += 1;
        match vector {
            6 => self.pv_invalid_opcode(),
            13 => self.pv_general_protection(error.unwrap_or(0)),
            14 => self.pv_page_fault(error.unwrap_or(0), cr2),
            3 => {
                self.exits.exception += 1;
                // INT3 (or INT 3): the handler returns after it.
                let len = self.soft_int_len(3).unwrap_or(1);
                self.pv_software_int(3, len)
            }
            7 => {
                self.exits.exception += 1;
                // #NM with the virtual CR0.TS set: TS goes (Xen clears it
                // when it delivers the fault), the guest handles it.
                self.pv_fpu_taskswitch(false);
                self.pv_trap(7, None)
            }
            18 => self.destroy(String::from("machine check in the guest")),
            _ => {
                self.exits.exception += 1;
                self.pv_trap(vector, error)
            }
        }
    }

    /// The length of the instruction at RIP that raised software interrupt
    /// `n` (`int3`, `int n`, `into`, `int1`), if it is one.
    fn soft_int_len(&self, n: u8) -> Option<u64> {
        let mut b = [0u8; 15];
        let got = fetch_insn(self, &mut b);
        match b.get(..got.min(2))? {
            [0xcd, m, ..] if *m == n => Some(2),
            [0xcc, ..] if n == 3 => Some(1),
            [0xce, ..] if n == 4 => Some(1),
            [0xf1, ..] if n == 1 => Some(1),
            _ => None,
        }
    }

    /// Software interrupt `n` raised by an instruction of `len` bytes:
    /// bounced as the vector with no error code and RIP after the
    /// instruction.
    fn pv_software_int(&mut self, n: u8, len: u64) -> Option<Ending> {
        let ti = self.pvv().map(|v| v.traps[usize::from(n)])?;
        if ti.address == 0 {
            return self.pv_trap(13, Some((u32::from(n) << 3) | XEC_IDT));
        }
        let rip = self.vcpu.rip().wrapping_add(len);
        self.vcpu.set_rip(rip);
        self.pv_bounce(
            &Delivery {
                handler: ti.address,
                error: None,
                mask_events: ti.masks_events(),
                clear_df: false,
            },
            "a software interrupt",
        )
    }

    /// #UD: the forced-emulation prefix runs CPUID; anything else is the
    /// guest's. (SYSCALL does not fault: it enters the fast-path stub,
    /// `hv::pv::fast`, whose forwards reach [`Self::pv_stub_exit`].)
    fn pv_invalid_opcode(&mut self) -> Option<Ending> {
        let mut b = [0u8; 15];
        let got = fetch_insn(self, &mut b);
        let bytes = &b[..got];
        self.exits.exception += 1;
        if hv::pv::emul::forced_cpuid(bytes) {
            self.exits.cpuid += 1;
            self.cpuid();
            let rip = self.vcpu.rip().wrapping_add(7);
            self.vcpu.set_rip(rip);
            return None;
        }
        self.pv_trap(6, None)
    }

    /// A system call from guest user mode: to the syscall callback (the
    /// 32-bit one from compatibility mode) on the kernel stack, with RCX
    /// and R11 as SYSCALL sets them; without a callback, #UD.
    pub(in crate::domain) fn pv_syscall(&mut self, next: u64, rflags: u64) -> Option<Ending> {
        let compat = self.vcpu.seg(SegName::Cs).selector == sel::FLAT_USER_CS32;
        let cb = self.pvv().map(|v| {
            if compat {
                v.callbacks.syscall32
            } else {
                v.callbacks.syscall
            }
        })?;
        if cb.address == 0 {
            return self.pv_trap(6, None);
        }
        self.vcpu.set_rip(next);
        let r = self.vcpu.regs();
        r.rcx = next;
        r.r11 = rflags;
        self.pv_bounce(
            &Delivery {
                handler: cb.address,
                error: None,
                mask_events: cb.mask_events,
                clear_df: true,
            },
            "a system call",
        )
    }

    /// #GP: an `int n` the guest's trap table may allow, a privileged
    /// instruction to emulate, or the guest's own fault.
    fn pv_general_protection(&mut self, error: u32) -> Option<Ending> {
        if error & XEC_IDT != 0 {
            self.exits.exception += 1;
            let n = (error >> 3) as u8;
            let len = self.soft_int_len(n);
            let ti = self.pvv().map(|v| v.traps[usize::from(n)]);
            let kernel = self.pvv().is_some_and(|v| v.kernel_mode);
            if let (Some(len), Some(ti)) = (len, ti) {
                // `int $0x80` goes straight to its handler when there is
                // one (Xen's int80 fast path); other vectors need a DPL
                // that admits the guest's privilege (kernel counts as 1).
                let allowed = if n == 0x80 {
                    ti.address != 0
                } else {
                    ti.address != 0 && ti.dpl() >= if kernel { 1 } else { 3 }
                };
                if allowed {
                    return self.pv_software_int(n, len);
                }
            }
            return self.pv_trap(13, Some(error));
        }
        if error == 0 {
            if let Some(end) = self.pv_priv_op() {
                return end;
            }
            return None;
        }
        self.exits.exception += 1;
        self.pv_trap(13, Some(error))
    }

    /// #PF: a write to a read-only page-table page the assist emulates, or
    /// the guest's own fault (its address in `vcpu_info.arch.cr2`, the
    /// error code's user bit saying which mode it was in).
    fn pv_page_fault(&mut self, error: u32, cr2: u64) -> Option<Ending> {
        let kernel = self.pvv().is_some_and(|v| v.kernel_mode);
        let assist = self
            .pv
            .as_ref()
            .is_some_and(|p| p.assist(vmasst::TYPE_WRITABLE_PAGETABLES));
        if kernel
            && assist
            && error & (pfec::PRESENT | pfec::WRITE) == (pfec::PRESENT | pfec::WRITE)
            && error & (pfec::RESERVED | pfec::FETCH) == 0
        {
            if let Some(done) = self.pv_ptwr(cr2) {
                self.exits.ptwr += 1;
                return done;
            }
        }
        self.exits.exception += 1;
        if let Some(gpa) = self.pv_vcpu_info() {
            let _ = self.mem.write(gpa + VCPU_INFO_CR2, &cr2.to_le_bytes());
        }
        self.pv_trap(14, Some(pf_error_code(error, kernel)))
    }
}
