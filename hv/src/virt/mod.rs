//! Hardware virtualisation: the vendor backends (`svm`, `vmx`) behind one
//! normalised view ([`Virt`], [`Vcpu`], [`VmExit`]), guest memory and the
//! second-level page tables (AMD NPT, Intel EPT).

pub mod guest_mem;
pub mod io_bitmap;
pub mod pv;
pub mod stage2;
pub mod start;
pub mod svm;
pub mod vmx;
pub mod xstate;

use guest_mem::GuestMemory;
use hv::hvm::xstate::XsetbvFault;
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

impl GuestRegs {
    /// General-purpose register `n` in the SDM's encoding, for the ones
    /// kept here (1-3, 5-15); `None` for RAX (0) and RSP (4), which the
    /// backends keep in their control structures, and beyond 15.
    pub fn slot(&mut self, n: u8) -> Option<&mut u64> {
        Some(match n {
            1 => &mut self.rcx,
            2 => &mut self.rdx,
            3 => &mut self.rbx,
            5 => &mut self.rbp,
            6 => &mut self.rsi,
            7 => &mut self.rdi,
            8 => &mut self.r8,
            9 => &mut self.r9,
            10 => &mut self.r10,
            11 => &mut self.r11,
            12 => &mut self.r12,
            13 => &mut self.r13,
            14 => &mut self.r14,
            15 => &mut self.r15,
            _ => return None,
        })
    }

    /// The value of register `n`, as [`Self::slot`] finds it.
    pub fn get(&self, n: u8) -> Option<u64> {
        let mut copy = *self;
        copy.slot(n).copied()
    }
}

/// Why the guest stopped, in vendor-neutral terms (defined with the
/// host-tested decoders).
pub use hv::hvm::VmExit;

/// The most vCPUs a domain may have.
pub const MAX_VCPUS: u32 = 8;

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
    /// Whether guests' extended state is switched with XSAVE (the CPU has
    /// it).
    pub fn xsave(&self) -> bool {
        match self {
            Virt::Svm(svm) => svm.xstate.xsave,
            Virt::Vmx(vmx) => vmx.xstate.xsave,
        }
    }

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
        let tables = GuestTables::for_ram(
            match self {
                Virt::Svm(_) => Format::Npt,
                Virt::Vmx(_) => Format::Ept,
            },
            mem,
        )?;
        let vcpu = self.new_vcpu(id, 0, &tables, entry, rbx)?;
        Some((tables, vcpu))
    }

    /// vCPU `index` of domain `id` over the domain's `tables`, in the PVH
    /// entry state (`entry`, `rbx`); each vCPU gets its own ASID or VPID
    /// (domain id and index, [`MAX_VCPUS`] per domain, wrapping).
    pub fn new_vcpu(
        &self,
        id: u16,
        index: u32,
        tables: &GuestTables,
        entry: u32,
        rbx: u64,
    ) -> Option<Vcpu> {
        let tag = u32::from(id) * MAX_VCPUS + index;
        match self {
            Virt::Svm(svm) => {
                let asid = 1 + tag % svm.asids.saturating_sub(1).max(1);
                SvmVcpu::new_pvh(svm, asid, tables.root(), entry, rbx).map(Vcpu::Svm)
            }
            Virt::Vmx(vmx) => {
                let vpid = 1 + (tag % 0xfffe) as u16;
                VmxVcpu::new_pvh(vmx, vpid, tables.eptp(), entry, rbx).map(Vcpu::Vmx)
            }
        }
    }
}

/// The CR4 bits a PVH guest may set: those its CPUID offers
/// (`hv::hvm::cr4::valid` over the HVM policy of the host's leaves 1 and 7;
/// OSXSAVE when guests' state is switched with XSAVE).
pub(crate) fn guest_cr4_valid(xsave: bool) -> u64 {
    let host = |leaf| {
        let r = crate::arch::cpu::cpuid(leaf, 0);
        hv::hvm::cpuid::filter(leaf, 0, [r.eax, r.ebx, r.ecx, r.edx])
    };
    let ([_, _, c1, d1], [_, b7, c7, _]) = (host(1), host(7));
    let c1 = if xsave { c1 } else { c1 & !(1 << 26) };
    hv::hvm::cr4::valid((c1, d1), (b7, c7))
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

    #[link_section = ".text.hot"]
    pub fn set_rip(&mut self, x: u64) {
        each!(self, v => v.set_rip(x))
    }

    pub fn rflags(&self) -> u64 {
        each!(self, v => v.rflags())
    }

    /// CR0, CR3, CR4, EFER: what a guest page walk needs.
    #[link_section = ".text.hot"]
    pub fn paging_state(&self) -> (u64, u64, u64, u64) {
        each!(self, v => v.paging_state())
    }

    /// Whether the guest runs 64-bit code now.
    #[link_section = ".text.hot"]
    pub fn long_mode(&self) -> bool {
        each!(self, v => v.long_mode())
    }

    /// The linear address of the instruction at RIP: RIP in 64-bit code,
    /// else the code segment's base plus RIP (in real mode, a STARTUP
    /// IPI's start, CS base is not 0).
    #[link_section = ".text.hot"]
    pub fn pc(&self) -> u64 {
        if self.long_mode() {
            return self.rip();
        }
        let base = each!(self, v => v.cs_base());
        base.wrapping_add(self.rip()) & 0xffff_ffff
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

    /// MOV to CR4 of `v`; `false` means #GP (a bit the guest's CPUID does
    /// not offer, or an SDM rule broken).
    pub fn write_cr4(&mut self, v: u64) -> bool {
        each!(self, c => c.write_cr4(v))
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
    /// reports it (VMX; SVM with next-RIP save); `None` means the caller
    /// must decode it.
    pub fn exit_insn_len(&self) -> Option<u64> {
        each!(self, v => v.exit_insn_len())
    }

    /// The instruction bytes the CPU fetched for the last nested page
    /// fault and how many are valid: SVM with decode assists only.
    pub fn exit_insn_bytes(&self) -> Option<([u8; 15], usize)> {
        match self {
            Vcpu::Svm(v) => v.exit_insn_bytes(),
            Vcpu::Vmx(_) => None,
        }
    }

    /// Whether an external interrupt can be injected at the next entry:
    /// RFLAGS.IF set, no STI/MOV SS shadow, no event already queued.
    pub fn can_take_interrupt(&self) -> bool {
        each!(self, v => v.can_take_interrupt())
    }

    /// Drops every cached guest-physical translation of this domain
    /// (after second-level entries were removed): a full TLB flush at the
    /// next VMRUN (which covers every ASID, so the domain's other vCPUs
    /// too), or INVEPT of the domain's EPT now (which covers every VPID).
    pub fn flush_stage2(&mut self, virt: &Virt, tables: &GuestTables) {
        match (self, virt) {
            (Vcpu::Svm(v), _) => v.flush_tlb_all(),
            (Vcpu::Vmx(_), Virt::Vmx(vmx)) => vmx.invept(tables.eptp()),
            (Vcpu::Vmx(_), Virt::Svm(_)) => {}
        }
    }

    /// Points the vCPU at port bitmap `bitmap`: 12 KiB, one bit per port
    /// (ports 0-0x7FFF in the first page, 0x8000-0xFFFF in the second), a
    /// set bit intercepting the port; SVM's I/O permission map and VMX's
    /// I/O bitmaps A and B have that layout. `false` when the CPU cannot
    /// (VMX without I/O bitmaps: every access exits; then the vCPU does not
    /// point at it).
    ///
    /// # Safety
    /// The caller must keep `bitmap` alive for as long as the vCPU may run
    /// (the CPU reads it, by physical address, on every port access of the
    /// guest): freed and reused, its frames would decide which ports the
    /// guest reaches.
    pub unsafe fn set_io_bitmap(&mut self, bitmap: &io_bitmap::IoBitmap) -> bool {
        match self {
            Vcpu::Svm(v) => v.set_io_bitmap(bitmap.pa()),
            Vcpu::Vmx(v) => v.set_io_bitmap(bitmap.pa()),
        }
    }

    /// Queues external interrupt `vector` for the next entry (the caller
    /// checked [`Vcpu::can_take_interrupt`]).
    pub fn inject_interrupt(&mut self, vector: u8) {
        each!(self, v => v.inject_interrupt(vector))
    }

    /// Posts `vector` for the guest to take as soon as it enables
    /// interrupts, with no exit (SVM's V_IRQ); `false` when the backend
    /// has no such thing (VMX here), and the caller asks for an interrupt
    /// window instead. A posted vector stays until taken or withdrawn.
    pub fn post_interrupt(&mut self, vector: u8) -> bool {
        match self {
            Vcpu::Svm(v) => {
                v.post_interrupt(vector);
                true
            }
            Vcpu::Vmx(v) => v.post_interrupt(vector),
        }
    }

    /// The vector posted with [`Vcpu::post_interrupt`] and not taken yet.
    pub fn posted_interrupt(&self) -> Option<u8> {
        match self {
            Vcpu::Svm(v) => v.posted_interrupt(),
            Vcpu::Vmx(_) => None,
        }
    }

    /// With `true`, the next run exits with [`VmExit::InterruptWindow`] as
    /// soon as the guest can take an interrupt (the request is cleared
    /// when that exit is taken); `false` withdraws the request, and a
    /// vector posted with [`Vcpu::post_interrupt`].
    pub fn request_interrupt_window(&mut self, on: bool) {
        each!(self, v => v.request_interrupt_window(on))
    }

    /// The guest's XCR0 (x87 only until it executes XSETBV).
    pub fn xcr0(&self) -> u64 {
        each!(self, v => v.xcr0())
    }

    /// The XCR0 bits the guest may set (0 on a CPU without XSAVE).
    pub fn xcr0_allowed(&self) -> u64 {
        each!(self, v => v.xcr0_allowed())
    }

    /// Completes the guest's XSETBV (ECX, EDX:EAX): the new XCR0 is checked
    /// and loaded for the guest's next run, or the fault the guest must get
    /// is returned (RIP is not moved either way).
    pub fn xsetbv(&mut self) -> Result<(), XsetbvFault> {
        each!(self, v => v.xsetbv())
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
