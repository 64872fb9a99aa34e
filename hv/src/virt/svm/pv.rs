//! A PV guest's container on SVM: 64-bit mode with the guest's own page
//! tables, the guest at CPL 3 with Xen's flat selectors, every exception
//! intercepted (the hypervisor bounces them into the guest), no IDT, and
//! SYSCALL entering the fast-path stub at CPL 0 (`hv::pv::fast`: STAR,
//! LSTAR, CSTAR and SFMASK in the VMCB, switched by VMLOAD/VMSAVE with the
//! inactive GS base).

use super::vmcb::Segment;
use super::{clean, Svm, SvmVcpu, EFER_SVME};
use crate::virt::pv::{PvStart, SegName, SegReg};
use crate::virt::GuestRegs;

fn to_vmcb(s: SegReg) -> Segment {
    Segment {
        selector: s.selector,
        attrib: s.attrib,
        limit: s.limit,
        base: s.base,
    }
}

fn from_vmcb(s: Segment) -> SegReg {
    SegReg {
        selector: s.selector,
        attrib: s.attrib,
        limit: s.limit,
        base: s.base,
    }
}

impl SvmVcpu {
    /// A vCPU in the PV entry state `start`.
    pub fn new_pv(svm: &Svm, asid: u32, nested_cr3: u64, start: &PvStart) -> Option<Self> {
        let regs = GuestRegs {
            rsi: start.rsi,
            ..GuestRegs::default()
        };
        let mut v = Self::empty(svm, asid, nested_cr3, regs, true)?;
        let b = v.vmcb_mut();
        let s = &mut b.save;
        s.cs = to_vmcb(start.cs);
        s.ss = to_vmcb(start.ss);
        for seg in [&mut s.ds, &mut s.es, &mut s.fs, &mut s.gs] {
            *seg = Segment::default();
        }
        s.tr = to_vmcb(start.tr);
        s.ldtr = Segment {
            selector: 0,
            attrib: 0x82,
            limit: 0,
            base: 0,
        };
        s.gdtr = Segment {
            selector: 0,
            attrib: 0,
            limit: start.gdt_limit,
            base: start.gdt_base,
        };
        s.idtr = Segment::default();
        s.efer = start.efer | EFER_SVME;
        s.cr0 = start.cr0;
        s.cr4 = start.cr4;
        s.cr3 = start.cr3;
        s.cpl = 3;
        s.dr6 = 0xffff_0ff0;
        s.dr7 = 0x400;
        s.rflags = start.rflags;
        s.rip = start.rip;
        s.rsp = start.rsp;
        s.g_pat = start.pat;
        s.star = hv::pv::fast::STAR;
        s.lstar = hv::pv::fast::LSTAR;
        s.cstar = hv::pv::fast::CSTAR;
        s.sfmask = hv::pv::fast::SFMASK;
        Some(v)
    }

    /// The inactive GS base (KERNEL_GS_BASE, which SWAPGS exchanges).
    pub fn kernel_gs_base(&self) -> u64 {
        self.vmcb().save.kernel_gs_base
    }

    pub fn set_kernel_gs_base(&mut self, v: u64) {
        self.vmcb_mut().save.kernel_gs_base = v;
    }

    pub fn cr3(&self) -> u64 {
        self.vmcb().save.cr3
    }

    pub fn rsp(&self) -> u64 {
        self.vmcb().save.rsp
    }

    pub fn set_rsp(&mut self, v: u64) {
        self.vmcb_mut().save.rsp = v;
    }

    /// Sets RFLAGS (the caller keeps IF as the guest must run with it).
    pub fn set_rflags(&mut self, v: u64) {
        self.vmcb_mut().save.rflags = v;
    }

    pub fn seg(&self, name: SegName) -> SegReg {
        let s = &self.vmcb().save;
        from_vmcb(match name {
            SegName::Es => s.es,
            SegName::Cs => s.cs,
            SegName::Ss => s.ss,
            SegName::Ds => s.ds,
            SegName::Fs => s.fs,
            SegName::Gs => s.gs,
        })
    }

    /// Loads segment register `name`. CS and SS set the CPL to their
    /// DPL (SVM keeps the CPL in the VMCB).
    pub fn set_seg(&mut self, name: SegName, r: SegReg) {
        let s = &mut self.vmcb_mut().save;
        let v = to_vmcb(r);
        match name {
            SegName::Es => s.es = v,
            SegName::Cs => s.cs = v,
            SegName::Ss => {
                s.ss = v;
                s.cpl = ((r.attrib >> 5) & 3) as u8;
            }
            SegName::Ds => s.ds = v,
            SegName::Fs => s.fs = v,
            SegName::Gs => s.gs = v,
        }
        // Segment registers are in the "SEG" clean group (bit 8).
        self.dirty |= 1 << 8;
    }

    /// Loads CR3 and drops the guest's TLB entries for the old tables.
    pub fn set_cr3(&mut self, cr3: u64) {
        let b = self.vmcb_mut();
        b.save.cr3 = cr3;
        // Flush this guest's entries (3) where the CPU has
        // flush-by-ASID; otherwise everything (1) — both are flushes.
        b.control.tlb_control = 1;
        self.dirty |= clean::CRX;
    }

    /// Drops the guest's TLB entries at the next entry.
    pub fn flush_tlb(&mut self) {
        self.vmcb_mut().control.tlb_control = 1;
    }

    pub fn cr0(&self) -> u64 {
        self.vmcb().save.cr0
    }

    pub fn set_cr0(&mut self, v: u64) {
        self.vmcb_mut().save.cr0 = v;
        self.dirty |= clean::CRX;
    }

    pub fn cr4(&self) -> u64 {
        self.vmcb().save.cr4
    }

    /// Completes an XSETBV the guest kernel made in ring 3 (the
    /// hypervisor emulates it after the #GP): checked as if at CPL 0.
    pub fn xsetbv_pv(&mut self) -> Result<(), hv::hvm::xstate::XsetbvFault> {
        let s = &self.vmcb().save;
        let osxsave = s.cr4 & crate::arch::cpu::CR4_OSXSAVE != 0;
        let rax = s.rax;
        let ecx = self.run.regs.rcx as u32;
        let value = (self.run.regs.rdx << 32) | (rax & 0xffff_ffff);
        self.xstate
            .xsetbv(&mut self.run.xstate, osxsave, 0, ecx, value)
    }
}
