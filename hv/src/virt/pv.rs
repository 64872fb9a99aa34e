//! What a PV domain needs of a vCPU beyond a PVH one: its start state (64-bit
//! mode, CPL 3, the guest's page tables), segment registers the hypervisor
//! loads when it bounces into the guest or returns from `iret`, CR3 with a
//! TLB flush, the stack pointer and RFLAGS, the privilege level (CPL 0 is
//! the fast-path stub), and the inactive GS base, which the stub's SWAPGS
//! exchanges (KERNEL_GS_BASE).

use super::{Vcpu, Virt};
use crate::virt::stage2::GuestTables;

/// A segment register: selector and hidden part, attributes in the VMCB's
/// layout (descriptor bits 40-47 in 0-7, 52-55 in 8-11).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegReg {
    pub selector: u16,
    pub attrib: u16,
    pub limit: u32,
    pub base: u64,
}

/// The segment registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegName {
    Es,
    Cs,
    Ss,
    Ds,
    Fs,
    Gs,
}

/// The state a PV vCPU starts in.
#[derive(Clone, Copy, Debug)]
pub struct PvStart {
    pub rip: u64,
    pub rsp: u64,
    /// The start info's virtual address.
    pub rsi: u64,
    pub rflags: u64,
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
    /// The PAT the guest's page tables select from.
    pub pat: u64,
    pub cs: SegReg,
    pub ss: SegReg,
    /// The task register: a TSS whose I/O map lies beyond its limit, so
    /// every port access faults.
    pub tr: SegReg,
    pub gdt_base: u64,
    pub gdt_limit: u32,
}

impl Virt {
    /// vCPU `index` of PV domain `id` over `tables`, in state `start`;
    /// `None` when memory is short or the backend cannot run PV guests.
    pub fn new_pv_vcpu(
        &self,
        id: u16,
        index: u32,
        tables: &GuestTables,
        start: &PvStart,
    ) -> Option<Vcpu> {
        let tag = u32::from(id) * super::MAX_VCPUS + index;
        match self {
            Virt::Svm(svm) => {
                let asid = 1 + tag % svm.asids.saturating_sub(1).max(1);
                super::svm::SvmVcpu::new_pv(svm, asid, tables.root(), start).map(Vcpu::Svm)
            }
            Virt::Vmx(vmx) => {
                let vpid = 1 + (tag % 0xfffe) as u16;
                super::vmx::VmxVcpu::new_pv(vmx, vpid, tables.eptp(), start).map(Vcpu::Vmx)
            }
        }
    }
}

/// Forwards a method to whichever backend the vCPU runs on.
macro_rules! each {
    ($self:expr, $v:ident => $e:expr) => {
        match $self {
            Vcpu::Svm($v) => $e,
            Vcpu::Vmx($v) => $e,
        }
    };
}

impl Vcpu {
    pub fn rsp(&self) -> u64 {
        each!(self, v => v.rsp())
    }

    pub fn set_rsp(&mut self, x: u64) {
        each!(self, v => v.set_rsp(x))
    }

    pub fn set_rflags(&mut self, x: u64) {
        each!(self, v => v.set_rflags(x))
    }

    pub fn seg(&self, name: SegName) -> SegReg {
        each!(self, v => v.seg(name))
    }

    pub fn set_seg(&mut self, name: SegName, r: SegReg) {
        each!(self, v => v.set_seg(name, r))
    }

    pub fn cpl(&self) -> u8 {
        each!(self, v => v.cpl())
    }

    pub fn cr3(&self) -> u64 {
        each!(self, v => v.cr3())
    }

    pub fn kernel_gs_base(&self) -> u64 {
        each!(self, v => v.kernel_gs_base())
    }

    pub fn set_kernel_gs_base(&mut self, x: u64) {
        each!(self, v => v.set_kernel_gs_base(x))
    }

    /// Loads CR3 and flushes the guest's TLB.
    pub fn set_cr3(&mut self, cr3: u64) {
        each!(self, v => v.set_cr3(cr3))
    }

    /// Flushes the guest's TLB before it runs again.
    pub fn flush_tlb(&mut self) {
        each!(self, v => v.flush_tlb())
    }

    pub fn cr0(&self) -> u64 {
        each!(self, v => v.cr0())
    }

    pub fn set_cr0(&mut self, x: u64) {
        each!(self, v => v.set_cr0(x))
    }

    pub fn cr4(&self) -> u64 {
        each!(self, v => v.cr4())
    }

    /// Completes the PV kernel's XSETBV (emulated after its #GP).
    pub fn xsetbv_pv(&mut self) -> Result<(), hv::hvm::xstate::XsetbvFault> {
        each!(self, v => v.xsetbv_pv())
    }
}
