//! A PV guest's container on VMX: the same state as on SVM (see
//! `virt::svm::pv`): 64-bit mode with the guest's page tables, CPL 3 with
//! Xen's flat selectors, every exception exiting (every #PF too: the
//! page-fault error-code mask and match are 0), no IDT, SYSCALL entering
//! the fast-path stub (its MSRs loaded for each entry by `run_once`).

use super::entry::RunState;
use super::vmcs::{self, ar};
use super::{vmread, vmwrite, Vmx};
use crate::virt::pv::{PvStart, SegName, SegReg};
use crate::virt::xstate::GuestXstate;
use crate::virt::GuestRegs;

use super::vcpu::VmxVcpu;

/// The VMCS access rights of a segment with VMCB-layout attributes: bits
/// 8-11 move to 12-15; a null segment (no attributes) is unusable.
fn access_rights(attrib: u16) -> u64 {
    if attrib == 0 {
        return u64::from(ar::UNUSABLE);
    }
    u64::from(attrib & 0xff) | (u64::from(attrib & 0xf00) << 4)
}

fn attrib_of(rights: u64) -> u16 {
    if rights & u64::from(ar::UNUSABLE) != 0 {
        return 0;
    }
    ((rights & 0xff) | ((rights >> 4) & 0xf00)) as u16
}

/// The VMCS fields of a segment register: selector, limit, rights, base.
fn fields(name: SegName) -> (vmcs::Field, vmcs::Field, vmcs::Field, vmcs::Field) {
    match name {
        SegName::Es => (
            vmcs::GUEST_ES_SEL,
            vmcs::GUEST_ES_LIMIT,
            vmcs::GUEST_ES_AR,
            vmcs::GUEST_ES_BASE,
        ),
        SegName::Cs => (
            vmcs::GUEST_CS_SEL,
            vmcs::GUEST_CS_LIMIT,
            vmcs::GUEST_CS_AR,
            vmcs::GUEST_CS_BASE,
        ),
        SegName::Ss => (
            vmcs::GUEST_SS_SEL,
            vmcs::GUEST_SS_LIMIT,
            vmcs::GUEST_SS_AR,
            vmcs::GUEST_SS_BASE,
        ),
        SegName::Ds => (
            vmcs::GUEST_DS_SEL,
            vmcs::GUEST_DS_LIMIT,
            vmcs::GUEST_DS_AR,
            vmcs::GUEST_DS_BASE,
        ),
        SegName::Fs => (
            vmcs::GUEST_FS_SEL,
            vmcs::GUEST_FS_LIMIT,
            vmcs::GUEST_FS_AR,
            vmcs::GUEST_FS_BASE,
        ),
        SegName::Gs => (
            vmcs::GUEST_GS_SEL,
            vmcs::GUEST_GS_LIMIT,
            vmcs::GUEST_GS_AR,
            vmcs::GUEST_GS_BASE,
        ),
    }
}

impl VmxVcpu {
    /// A vCPU in the PV entry state `start`.
    pub fn new_pv(vmx: &Vmx, vpid: u16, eptp: u64, start: &PvStart) -> Option<Self> {
        let mut xstate = GuestXstate::new(&vmx.xstate);
        let run = alloc::boxed::Box::new(RunState {
            regs: GuestRegs {
                rsi: start.rsi,
                ..GuestRegs::default()
            },
            rax: 0,
            xstate: xstate.switch(&vmx.xstate),
        });
        let mut v = Self::empty(vmx, run, xstate)?;
        v.pv = true;
        v.syscall_msrs = [
            hv::pv::fast::STAR,
            hv::pv::fast::LSTAR,
            hv::pv::fast::CSTAR,
            hv::pv::fast::SFMASK,
            0,
        ];
        v.cr0_shadow = start.cr0;
        v.cr4_shadow = start.cr4;
        v.write_controls(vmx, vpid, eptp);
        // Every exception exits, every page fault with it.
        vmwrite(vmcs::EXCEPTION_BITMAP, 0xffff_ffff);
        vmwrite(vmcs::CR0_SHADOW, v.cr0_shadow);
        vmwrite(vmcs::CR4_SHADOW, v.cr4_shadow);
        for (name, s) in [
            (SegName::Cs, start.cs),
            (SegName::Ss, start.ss),
            (SegName::Ds, SegReg::default()),
            (SegName::Es, SegReg::default()),
            (SegName::Fs, SegReg::default()),
            (SegName::Gs, SegReg::default()),
        ] {
            v.write_seg(name, s);
        }
        vmwrite(vmcs::GUEST_TR_SEL, start.tr.selector.into());
        vmwrite(vmcs::GUEST_TR_LIMIT, start.tr.limit.into());
        vmwrite(vmcs::GUEST_TR_AR, ar::TSS_BUSY.into());
        vmwrite(vmcs::GUEST_TR_BASE, start.tr.base);
        vmwrite(vmcs::GUEST_LDTR_SEL, 0);
        vmwrite(vmcs::GUEST_LDTR_LIMIT, 0);
        vmwrite(vmcs::GUEST_LDTR_AR, ar::UNUSABLE.into());
        vmwrite(vmcs::GUEST_LDTR_BASE, 0);
        vmwrite(vmcs::GUEST_GDTR_BASE, start.gdt_base);
        vmwrite(vmcs::GUEST_GDTR_LIMIT, start.gdt_limit.into());
        vmwrite(vmcs::GUEST_IDTR_BASE, 0);
        vmwrite(vmcs::GUEST_IDTR_LIMIT, 0);
        vmwrite(vmcs::GUEST_CR0, v.real_cr0(start.cr0));
        vmwrite(vmcs::GUEST_CR3, start.cr3);
        vmwrite(vmcs::GUEST_CR4, v.real_cr4(start.cr4));
        vmwrite(vmcs::GUEST_DR7, 0x400);
        vmwrite(vmcs::GUEST_RSP, start.rsp);
        vmwrite(vmcs::GUEST_RIP, start.rip);
        vmwrite(vmcs::GUEST_RFLAGS, start.rflags);
        vmwrite(vmcs::GUEST_PAT, start.pat);
        vmwrite(vmcs::GUEST_EFER, start.efer);
        vmx.invept(eptp);
        Some(v)
    }

    fn write_seg(&mut self, name: SegName, s: SegReg) {
        let (sel, limit, rights, base) = fields(name);
        vmwrite(sel, s.selector.into());
        vmwrite(limit, s.limit.into());
        vmwrite(rights, access_rights(s.attrib));
        vmwrite(base, s.base);
    }

    pub fn rsp(&self) -> u64 {
        self.make_current();
        vmread(vmcs::GUEST_RSP)
    }

    pub fn kernel_gs_base(&self) -> u64 {
        self.syscall_msrs[4]
    }

    pub fn set_kernel_gs_base(&mut self, v: u64) {
        self.syscall_msrs[4] = v;
    }

    pub fn cr3(&self) -> u64 {
        self.make_current();
        vmread(vmcs::GUEST_CR3)
    }

    pub fn set_rsp(&mut self, v: u64) {
        self.make_current();
        vmwrite(vmcs::GUEST_RSP, v);
    }

    pub fn set_rflags(&mut self, v: u64) {
        self.make_current();
        vmwrite(vmcs::GUEST_RFLAGS, v);
    }

    pub fn seg(&self, name: SegName) -> SegReg {
        self.make_current();
        let (sel, limit, rights, base) = fields(name);
        SegReg {
            selector: vmread(sel) as u16,
            attrib: attrib_of(vmread(rights)),
            limit: vmread(limit) as u32,
            base: vmread(base),
        }
    }

    pub fn set_seg(&mut self, name: SegName, s: SegReg) {
        self.make_current();
        self.write_seg(name, s);
    }

    /// Loads CR3; the guest's TLB is flushed before its next entry.
    pub fn set_cr3(&mut self, cr3: u64) {
        self.make_current();
        vmwrite(vmcs::GUEST_CR3, cr3);
        self.tlb_flush = true;
    }

    pub fn flush_tlb(&mut self) {
        self.tlb_flush = true;
    }

    pub fn cr0(&self) -> u64 {
        self.make_current();
        self.cr0_shadow | (vmread(vmcs::GUEST_CR0) & !self.cr0_mask)
    }

    pub fn set_cr0(&mut self, v: u64) {
        self.make_current();
        self.cr0_shadow = v;
        vmwrite(vmcs::CR0_SHADOW, v);
        vmwrite(vmcs::GUEST_CR0, self.real_cr0(v));
    }

    pub fn cr4(&self) -> u64 {
        self.cr4_shadow
    }

    /// Completes the PV kernel's XSETBV, checked as if at CPL 0.
    pub fn xsetbv_pv(&mut self) -> Result<(), hv::hvm::xstate::XsetbvFault> {
        let osxsave = self.cr4_shadow & hv::hvm::vmx::CR4_OSXSAVE != 0;
        let ecx = self.run.regs.rcx as u32;
        let value = (self.run.regs.rdx << 32) | (self.run.rax & 0xffff_ffff);
        self.xstate
            .xsetbv(&mut self.run.xstate, osxsave, 0, ecx, value)
    }
}
