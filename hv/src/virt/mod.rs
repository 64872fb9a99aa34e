//! Hardware virtualisation: the vendor backends (`svm`, `vmx`) behind one
//! normalised view ([`Virt`], [`Vcpu`], [`VmExit`]), guest memory and the
//! second-level page tables (AMD NPT, Intel EPT).

pub mod guest_mem;
pub mod stage2;
pub mod svm;
pub mod vmx;

use guest_mem::GuestMemory;
use stage2::Format;
pub use stage2::GuestTables;
use svm::{Svm, SvmVcpu};
use vmx::{Vmx, VmxVcpu};

/// The guest's general-purpose registers that the backends do not keep in
/// their control structures.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GuestRegs {
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
}

/// Why the guest stopped, in vendor-neutral terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmExit {
    Cpuid,
    Hlt,
    Hypercall,
    Io {
        port: u16,
        size: u8,
        write: bool,
        string: bool,
        rep: bool,
        next_rip: u64,
    },
    Msr {
        write: bool,
    },
    NestedPageFault {
        gpa: u64,
        write: bool,
        fetch: bool,
    },
    /// The guest triple-faulted (or otherwise shut itself down).
    Shutdown,
    /// A host interrupt arrived while the guest ran.
    ExternalInterrupt,
    /// The guest's time slice is over (the VMX-preemption timer).
    SliceEnd,
    /// An exception the hypervisor intercepts.
    Exception {
        vector: u8,
        error: Option<u32>,
    },
    Xsetbv,
    /// The guest state was refused by the CPU.
    Invalid,
    /// Anything else, with the vendor's raw exit code.
    Unknown(u64),
}

/// The CPU's virtualisation extension, enabled.
#[derive(Debug)]
pub enum Virt {
    Svm(Svm),
    Vmx(Vmx),
}

/// One guest vCPU on either backend.
#[derive(Debug)]
pub enum Vcpu {
    Svm(SvmVcpu),
    Vmx(VmxVcpu),
}

impl Virt {
    /// Page tables over `mem` and a vCPU that starts at a PVH entry
    /// (`entry`, `rbx` = start info) for domain `id`; `None` when memory is
    /// short.
    pub fn new_pvh_vcpu(
        &self,
        id: u16,
        mem: &GuestMemory,
        entry: u32,
        rbx: u64,
    ) -> Option<(GuestTables, Vcpu)> {
        match self {
            Virt::Svm(svm) => {
                let npt = GuestTables::for_ram(Format::Npt, mem)?;
                let asid = 1 + u32::from(id) % svm.asids.saturating_sub(1).max(1);
                let vcpu = SvmVcpu::new_pvh(svm, asid, npt.root(), entry, rbx)?;
                Some((npt, Vcpu::Svm(vcpu)))
            }
            Virt::Vmx(vmx) => {
                let ept = GuestTables::for_ram(Format::Ept, mem)?;
                let vpid = 1 + id % 0xfffe;
                let vcpu = VmxVcpu::new_pvh(vmx, vpid, ept.eptp(), entry, rbx)?;
                Some((ept, Vcpu::Vmx(vcpu)))
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
    /// The guest's general-purpose registers (RAX and RSP: see `rax`).
    pub fn regs(&mut self) -> &mut GuestRegs {
        each!(self, v => v.regs())
    }

    pub fn rax(&self) -> u64 {
        each!(self, v => v.rax())
    }

    pub fn set_rax(&mut self, x: u64) {
        each!(self, v => v.set_rax(x))
    }

    pub fn rip(&self) -> u64 {
        each!(self, v => v.rip())
    }

    pub fn set_rip(&mut self, x: u64) {
        each!(self, v => v.set_rip(x))
    }

    /// CR0, CR3, CR4, EFER: what a guest page walk needs.
    pub fn paging_state(&self) -> (u64, u64, u64, u64) {
        each!(self, v => v.paging_state())
    }

    /// Whether the guest runs 64-bit code now.
    pub fn long_mode(&self) -> bool {
        each!(self, v => v.long_mode())
    }

    pub fn efer(&self) -> u64 {
        each!(self, v => v.efer())
    }

    pub fn set_efer(&mut self, x: u64) {
        each!(self, v => v.set_efer(x))
    }

    pub fn pat(&self) -> u64 {
        each!(self, v => v.pat())
    }

    pub fn set_pat(&mut self, x: u64) {
        each!(self, v => v.set_pat(x))
    }

    /// Queues exception `vector` (with `error`) for the next entry.
    pub fn inject_exception(&mut self, vector: u8, error: Option<u32>) {
        each!(self, v => v.inject_exception(vector, error))
    }

    /// A one-line summary of the guest state, for logs.
    pub fn dump(&self) -> alloc::string::String {
        each!(self, v => v.dump())
    }

    /// The length of the instruction behind the last exit, when the CPU
    /// reports it (VMX); `None` means the caller must decode it.
    pub fn exit_insn_len(&self) -> Option<u64> {
        match self {
            Vcpu::Svm(_) => None,
            Vcpu::Vmx(v) => v.exit_insn_len(),
        }
    }

    /// The hypercall instruction of this backend, and its name.
    pub fn hypercall_insn(&self) -> ([u8; 3], &'static str) {
        match self {
            Vcpu::Svm(_) => ([0x0f, 0x01, 0xd9], "VMMCALL"),
            Vcpu::Vmx(_) => ([0x0f, 0x01, 0xc1], "VMCALL"),
        }
    }

    /// Runs the guest until its next exit. A vCPU always runs on the
    /// backend that created it; a mismatch is reported as `Invalid`.
    pub fn run(&mut self, virt: &Virt) -> VmExit {
        match (self, virt) {
            (Vcpu::Svm(v), Virt::Svm(svm)) => v.run(svm),
            (Vcpu::Vmx(v), Virt::Vmx(vmx)) => v.run(vmx),
            _ => VmExit::Invalid,
        }
    }
}

/// Fills `page` (the guest's hypercall page) with stubs `mov eax, N;
/// <insn>; ret`, 32 bytes apart; `insn` is VMMCALL or VMCALL.
pub fn hypercall_stubs(page: &mut [u8; 4096], insn: [u8; 3]) {
    for (n, stub) in page.chunks_exact_mut(32).enumerate() {
        stub.fill(0xcc);
        stub[0] = 0xb8; // mov eax, imm32
        stub[1..5].copy_from_slice(&(n as u32).to_le_bytes());
        stub[5..8].copy_from_slice(&insn);
        stub[8] = 0xc3; // ret
    }
}
