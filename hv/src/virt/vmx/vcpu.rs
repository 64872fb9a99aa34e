//! One VMX vCPU: its VMCS (host state, PVH guest state, controls),
//! entering the guest (the code is in `entry`) and the translation of VM
//! exits into [`VmExit`]s (control registers are emulated in `cr`).

use super::entry::{hv_vmx_exit, hv_vmx_run, RunState};
use super::vmcs::{self, ar, entry_ctl, reason};
use super::{
    vmread, vmwrite, Vmx, CR0_PE, CR0_PG, EFER, EFER_LMA, EFER_LME, FS_BASE, GS_BASE, PAT,
    SYSENTER_CS, SYSENTER_EIP, SYSENTER_ESP,
};
use crate::arch::cpu::{self, rdmsr_safe};
use crate::mem;
use crate::virt::xstate::GuestXstate;
use crate::virt::{GuestRegs, VmExit};
use hv::hvm::event::{self, Event};
use hv::hvm::vmx as logic;
use hv::hvm::xstate::XsetbvFault;
use vmm_glue::log;

/// One guest vCPU on VMX.
#[derive(Debug)]
pub struct VmxVcpu {
    pub(super) vmcs: u64,
    /// Guest registers and the extended-state switch, as the entry code
    /// expects.
    pub(super) run: alloc::boxed::Box<RunState>,
    pub(super) xstate: GuestXstate,
    /// Interrupt-window exiting can be turned on.
    pub(super) interrupt_window: bool,
    pub(super) launched: bool,
    /// The guest's view of CR0 and CR4 (also in the read shadows).
    pub(super) cr0_shadow: u64,
    pub(super) cr4_shadow: u64,
    pub(super) cr0_mask: u64,
    pub(super) cr0_fixed0: u64,
    pub(super) cr0_fixed1: u64,
    pub(super) cr4_fixed0: u64,
    pub(super) cr4_fixed1: u64,
    /// The CR4 bits the guest may set.
    pub(super) cr4_valid: u64,
    /// The exiting instruction's length, for instruction exits.
    pub(super) exit_insn_len: Option<u64>,
    /// The VMCS uses I/O bitmaps (else every port access exits).
    pub(super) io_bitmaps: bool,
    /// The guest's linear translations must go before its next entry
    /// (INVEPT of its EPT, which drops the combined mappings).
    pub(super) tlb_flush: bool,
    /// A PV guest's container: nothing is injected into it; the
    /// hypervisor delivers in software.
    pub(super) pv: bool,
    /// The guest's STAR, LSTAR, CSTAR, FMASK and KERNEL_GS_BASE
    /// ([`SYSCALL_MSRS`]): not part of the VMCS, so loaded before every
    /// entry and read back after every exit (the guest writes them without
    /// an exit, SWAPGS changes the last); another domain's never show.
    pub(super) syscall_msrs: [u64; 5],
}

/// STAR, LSTAR, CSTAR, FMASK, KERNEL_GS_BASE: not part of the VMCS.
pub(super) const SYSCALL_MSRS: [u32; 5] = [
    0xc000_0081,
    0xc000_0082,
    0xc000_0083,
    0xc000_0084,
    0xc000_0102,
];

/// What one entry and exit came to.
enum Step {
    /// An exit for common code.
    Exit(VmExit),
    /// A control-register access, with its exit qualification: emulated
    /// here.
    CrAccess(u64),
    /// VMCLEAR .. VMXON, INVEPT, INVVPID, VMFUNC: #UD for the guest.
    VmxInstruction,
}

impl VmxVcpu {
    /// A vCPU that starts at a PVH entry: 32-bit protected mode, paging
    /// off, `rbx` = the start info's guest-physical address.
    pub fn new_pvh(vmx: &Vmx, vpid: u16, eptp: u64, entry: u32, rbx: u64) -> Option<Self> {
        let mut xstate = GuestXstate::new(&vmx.xstate);
        let run = alloc::boxed::Box::new(RunState {
            regs: GuestRegs {
                rbx,
                ..GuestRegs::default()
            },
            rax: 0,
            xstate: xstate.switch(&vmx.xstate),
        });
        let v = Self::empty(vmx, run, xstate)?;
        v.write_controls(vmx, vpid, eptp);
        vmwrite(vmcs::CR0_SHADOW, v.cr0_shadow);
        vmwrite(vmcs::CR4_SHADOW, v.cr4_shadow);

        // Guest state: flat 32-bit protected mode, paging off.
        let segs = [
            (
                vmcs::GUEST_CS_SEL,
                vmcs::GUEST_CS_LIMIT,
                vmcs::GUEST_CS_AR,
                vmcs::GUEST_CS_BASE,
            ),
            (
                vmcs::GUEST_SS_SEL,
                vmcs::GUEST_SS_LIMIT,
                vmcs::GUEST_SS_AR,
                vmcs::GUEST_SS_BASE,
            ),
            (
                vmcs::GUEST_DS_SEL,
                vmcs::GUEST_DS_LIMIT,
                vmcs::GUEST_DS_AR,
                vmcs::GUEST_DS_BASE,
            ),
            (
                vmcs::GUEST_ES_SEL,
                vmcs::GUEST_ES_LIMIT,
                vmcs::GUEST_ES_AR,
                vmcs::GUEST_ES_BASE,
            ),
            (
                vmcs::GUEST_FS_SEL,
                vmcs::GUEST_FS_LIMIT,
                vmcs::GUEST_FS_AR,
                vmcs::GUEST_FS_BASE,
            ),
            (
                vmcs::GUEST_GS_SEL,
                vmcs::GUEST_GS_LIMIT,
                vmcs::GUEST_GS_AR,
                vmcs::GUEST_GS_BASE,
            ),
        ];
        for (i, (sel, limit, rights, base)) in segs.into_iter().enumerate() {
            let (selector, access) = if i == 0 {
                (0x8, ar::CODE32)
            } else {
                (0x10, ar::DATA32)
            };
            vmwrite(sel, selector);
            vmwrite(limit, 0xffff_ffff);
            vmwrite(rights, access.into());
            vmwrite(base, 0);
        }
        vmwrite(vmcs::GUEST_TR_SEL, 0);
        vmwrite(vmcs::GUEST_TR_LIMIT, 0x67);
        vmwrite(vmcs::GUEST_TR_AR, ar::TSS_BUSY.into());
        vmwrite(vmcs::GUEST_TR_BASE, 0);
        vmwrite(vmcs::GUEST_LDTR_SEL, 0);
        vmwrite(vmcs::GUEST_LDTR_LIMIT, 0);
        vmwrite(vmcs::GUEST_LDTR_AR, ar::UNUSABLE.into());
        vmwrite(vmcs::GUEST_LDTR_BASE, 0);
        vmwrite(vmcs::GUEST_GDTR_BASE, 0);
        vmwrite(vmcs::GUEST_GDTR_LIMIT, 0xffff);
        vmwrite(vmcs::GUEST_IDTR_BASE, 0);
        vmwrite(vmcs::GUEST_IDTR_LIMIT, 0xffff);
        vmwrite(vmcs::GUEST_CR0, v.real_cr0(v.cr0_shadow));
        vmwrite(vmcs::GUEST_CR3, 0);
        vmwrite(vmcs::GUEST_CR4, v.real_cr4(v.cr4_shadow));
        vmwrite(vmcs::GUEST_DR7, 0x400);
        vmwrite(vmcs::GUEST_RSP, 0);
        vmwrite(vmcs::GUEST_RIP, entry.into());
        vmwrite(vmcs::GUEST_RFLAGS, 0x2);
        vmwrite(vmcs::GUEST_PAT, 0x0007_0406_0007_0406);
        vmwrite(vmcs::GUEST_EFER, 0);
        // The EPT root may be a recycled frame: drop stale translations.
        vmx.invept(eptp);
        Some(v)
    }

    /// A vCPU with a fresh VMCS, made current, holding the host state; the
    /// caller writes the controls and the guest state.
    pub(super) fn empty(
        vmx: &Vmx,
        run: alloc::boxed::Box<RunState>,
        xstate: GuestXstate,
    ) -> Option<Self> {
        let vmcs = mem::alloc_frames(1, 4096)?;
        // SAFETY: a fresh frame owned by this vCPU; the revision id heads
        // every VMCS region.
        unsafe { (vmcs as *mut u32).write_volatile(vmx.revision) };
        let v = Self {
            vmcs,
            run,
            xstate,
            interrupt_window: vmx.interrupt_window,
            launched: false,
            cr0_shadow: CR0_PE | (1 << 4), // PE, ET
            cr4_shadow: 0,
            cr0_mask: vmx.cr0_mask(),
            cr0_fixed0: vmx.cr0_fixed0,
            cr0_fixed1: vmx.cr0_fixed1,
            cr4_fixed0: vmx.cr4_fixed0,
            cr4_fixed1: vmx.cr4_fixed1,
            cr4_valid: vmx.cr4_valid,
            exit_insn_len: None,
            io_bitmaps: vmx.io_bitmaps.is_some(),
            tlb_flush: false,
            pv: false,
            syscall_msrs: [0; 5],
        };
        // SAFETY: VMX is on (`Vmx::enable`); the VMCS region is ours and
        // carries the revision id. VMCLEAR initialises it, VMPTRLD makes it
        // current for the VMWRITEs that follow.
        let ok = unsafe {
            x86::bits64::vmx::vmclear(vmcs).is_ok() && x86::bits64::vmx::vmptrld(vmcs).is_ok()
        };
        if !ok {
            log::error!("vmx: VMCLEAR/VMPTRLD of a new VMCS failed");
            return None;
        }
        v.write_host_state();
        Some(v)
    }

    /// The execution controls and the guest state every vCPU starts with
    /// (no event pending, active, no debug state).
    pub(super) fn write_controls(&self, vmx: &Vmx, vpid: u16, eptp: u64) {
        vmwrite(vmcs::PIN_CONTROLS, vmx.pin.into());
        if let Some(start) = vmx.preemption_timer {
            vmwrite(vmcs::PREEMPTION_TIMER_VALUE, start.into());
        }
        vmwrite(vmcs::PROC_CONTROLS, vmx.proc.into());
        vmwrite(vmcs::PROC_CONTROLS2, vmx.proc2.into());
        vmwrite(vmcs::EXIT_CONTROLS, vmx.exit.into());
        vmwrite(vmcs::ENTRY_CONTROLS, vmx.entry.into());
        vmwrite(vmcs::EXCEPTION_BITMAP, 1 << 18); // #MC
        vmwrite(vmcs::CR3_TARGET_COUNT, 0);
        vmwrite(vmcs::EXIT_MSR_STORE_COUNT, 0);
        vmwrite(vmcs::EXIT_MSR_LOAD_COUNT, 0);
        vmwrite(vmcs::ENTRY_MSR_LOAD_COUNT, 0);
        vmwrite(vmcs::ENTRY_INTERRUPTION_INFO, 0);
        vmwrite(vmcs::MSR_BITMAP, vmx.msr_bitmap);
        if let Some(io) = vmx.io_bitmaps {
            vmwrite(vmcs::IO_BITMAP_A, io);
            vmwrite(vmcs::IO_BITMAP_B, io + 4096);
        }
        vmwrite(vmcs::EPT_POINTER, eptp);
        if vmx.vpid {
            vmwrite(vmcs::VPID, vpid.max(1).into());
        }
        vmwrite(vmcs::CR0_MASK, vmx.cr0_mask());
        vmwrite(vmcs::CR4_MASK, vmx.cr4_mask());
        vmwrite(vmcs::GUEST_PENDING_DEBUG, 0);
        vmwrite(vmcs::GUEST_SYSENTER_CS, 0);
        vmwrite(vmcs::GUEST_SYSENTER_ESP, 0);
        vmwrite(vmcs::GUEST_SYSENTER_EIP, 0);
        vmwrite(vmcs::VMCS_LINK_POINTER, u64::MAX);
        vmwrite(vmcs::GUEST_DEBUGCTL, 0);
        vmwrite(vmcs::GUEST_INTERRUPTIBILITY, 0);
        vmwrite(vmcs::GUEST_ACTIVITY_STATE, 0);
    }

    /// The host state every exit returns to: this CPU's current control
    /// registers, segments and descriptor tables.
    fn write_host_state(&self) {
        let [cs, ss, ds, es, fs, gs, tr] = cpu::selectors();
        // Host selectors must have RPL 0 and TI 0.
        for (field, sel) in [
            (vmcs::HOST_CS_SEL, cs),
            (vmcs::HOST_SS_SEL, ss),
            (vmcs::HOST_DS_SEL, ds),
            (vmcs::HOST_ES_SEL, es),
            (vmcs::HOST_FS_SEL, fs),
            (vmcs::HOST_GS_SEL, gs),
            (vmcs::HOST_TR_SEL, tr),
        ] {
            vmwrite(field, u64::from(sel & !7));
        }
        let msr = |m| rdmsr_safe(m).unwrap_or(0);
        vmwrite(vmcs::HOST_CR0, cpu::cr0());
        vmwrite(vmcs::HOST_CR3, cpu::cr3());
        vmwrite(vmcs::HOST_CR4, cpu::cr4());
        vmwrite(vmcs::HOST_FS_BASE, msr(FS_BASE));
        vmwrite(vmcs::HOST_GS_BASE, msr(GS_BASE));
        vmwrite(vmcs::HOST_TR_BASE, crate::arch::gdt::tss_base());
        vmwrite(vmcs::HOST_GDTR_BASE, cpu::gdtr_base());
        vmwrite(vmcs::HOST_IDTR_BASE, cpu::idtr_base());
        vmwrite(vmcs::HOST_SYSENTER_CS, msr(SYSENTER_CS));
        vmwrite(vmcs::HOST_SYSENTER_ESP, msr(SYSENTER_ESP));
        vmwrite(vmcs::HOST_SYSENTER_EIP, msr(SYSENTER_EIP));
        vmwrite(vmcs::HOST_EFER, msr(EFER));
        vmwrite(vmcs::HOST_PAT, msr(PAT));
        vmwrite(vmcs::HOST_RIP, core::ptr::addr_of!(hv_vmx_exit) as u64);
        // HOST_RSP is written by the entry code.
    }

    /// Makes this vCPU's VMCS the current one.
    fn load(&self) -> bool {
        // SAFETY: VMX is on and `self.vmcs` is this vCPU's VMCS region,
        // initialised by VMCLEAR in `new_pvh`.
        unsafe { x86::bits64::vmx::vmptrld(self.vmcs).is_ok() }
    }

    /// Points the VMCS at I/O bitmaps A and B at `pa` and `pa + 4096`;
    /// `false` when this CPU exits on every port access instead.
    pub(in crate::virt) fn set_io_bitmap(&mut self, pa: u64) -> bool {
        if !self.io_bitmaps {
            return false;
        }
        self.make_current();
        vmwrite(vmcs::IO_BITMAP_A, pa);
        vmwrite(vmcs::IO_BITMAP_B, pa + 4096);
        true
    }

    /// Makes this vCPU's VMCS current unless it already is: another vCPU
    /// may have run since this one's last exit, and every accessor below
    /// reads or writes the current VMCS.
    pub(super) fn make_current(&self) {
        let mut current: u64 = 0;
        // SAFETY: VMPTRST only stores the current-VMCS pointer into the
        // local `current`.
        unsafe {
            core::arch::asm!("vmptrst qword ptr [{}]", in(reg) &raw mut current,
                             options(nostack, preserves_flags))
        };
        if current != self.vmcs && !self.load() {
            log::error!("vmx: VMPTRLD of the vCPU's VMCS failed");
        }
    }

    /// The guest's general-purpose registers (RAX and RSP: see `rax`).
    pub fn regs(&mut self) -> &mut GuestRegs {
        &mut self.run.regs
    }

    pub fn rax(&self) -> u64 {
        self.run.rax
    }

    pub fn set_rax(&mut self, v: u64) {
        self.run.rax = v;
    }

    pub fn rip(&self) -> u64 {
        self.make_current();
        vmread(vmcs::GUEST_RIP)
    }

    pub fn rflags(&self) -> u64 {
        self.make_current();
        vmread(vmcs::GUEST_RFLAGS)
    }

    /// Moves RIP (past an emulated instruction): an STI or MOV SS shadow
    /// ends with that instruction.
    pub fn set_rip(&mut self, v: u64) {
        self.make_current();
        vmwrite(vmcs::GUEST_RIP, v);
        let blocking = vmread(vmcs::GUEST_INTERRUPTIBILITY);
        if blocking & 3 != 0 {
            vmwrite(vmcs::GUEST_INTERRUPTIBILITY, blocking & !3);
        }
    }

    /// The length of the instruction that caused the last exit, when the
    /// exit was caused by an instruction.
    pub fn exit_insn_len(&self) -> Option<u64> {
        self.exit_insn_len
    }

    /// The CR0 the guest sees.
    fn guest_cr0(&self) -> u64 {
        (vmread(vmcs::GUEST_CR0) & !self.cr0_mask) | (self.cr0_shadow & self.cr0_mask)
    }

    /// CR0, CR3, CR4, EFER as the guest sees them: what a page walk needs.
    pub fn paging_state(&self) -> (u64, u64, u64, u64) {
        self.make_current();
        (
            self.guest_cr0(),
            vmread(vmcs::GUEST_CR3),
            self.cr4_shadow | (vmread(vmcs::GUEST_CR4) & !(self.cr4_fixed0 | !self.cr4_fixed1)),
            vmread(vmcs::GUEST_EFER),
        )
    }

    /// Whether the guest runs 64-bit code now.
    pub fn long_mode(&self) -> bool {
        self.make_current();
        vmread(vmcs::GUEST_EFER) & EFER_LMA != 0 && vmread(vmcs::GUEST_CS_AR) as u32 & ar::LONG != 0
    }

    pub fn cs_base(&self) -> u64 {
        self.make_current();
        vmread(vmcs::GUEST_CS_BASE)
    }

    pub fn efer(&self) -> u64 {
        self.make_current();
        vmread(vmcs::GUEST_EFER)
    }

    /// Sets the guest's EFER; LMA follows LME and CR0.PG, as on hardware.
    pub fn set_efer(&mut self, v: u64) {
        self.make_current();
        let paging = vmread(vmcs::GUEST_CR0) & CR0_PG != 0;
        let lma = if v & EFER_LME != 0 && paging {
            EFER_LMA
        } else {
            0
        };
        vmwrite(vmcs::GUEST_EFER, (v & !EFER_LMA) | lma);
    }

    pub fn pat(&self) -> u64 {
        self.make_current();
        vmread(vmcs::GUEST_PAT)
    }

    pub fn set_pat(&mut self, v: u64) {
        self.make_current();
        vmwrite(vmcs::GUEST_PAT, v);
    }

    /// Queues exception `vector` (with `error`, if the vector has one) for
    /// the next entry.
    pub fn inject_exception(&mut self, vector: u8, error: Option<u32>) {
        self.make_current();
        self.inject(Event::Exception { vector, error });
    }

    /// Queues `event` for the next entry.
    pub(super) fn inject(&mut self, event: Event) {
        let protected = self.guest_cr0() & CR0_PE != 0;
        let (info, error) = event::vmx_entry_info(event, protected);
        if let Some(e) = error {
            vmwrite(vmcs::ENTRY_EXCEPTION_ERROR, e.into());
        }
        vmwrite(vmcs::ENTRY_INTERRUPTION_INFO, info.into());
    }

    /// The guest's current privilege level (SS.DPL).
    pub fn cpl(&self) -> u8 {
        self.make_current();
        ((vmread(vmcs::GUEST_SS_AR) >> 5) & 3) as u8
    }

    /// The guest's XCR0.
    pub fn xcr0(&self) -> u64 {
        self.xstate.xcr0()
    }

    /// The XCR0 bits the guest may set.
    pub fn xcr0_allowed(&self) -> u64 {
        self.xstate.allowed()
    }

    /// Completes a guest XSETBV (ECX, EDX:EAX): the new XCR0 is checked
    /// and loaded for the guest's next run, or the fault to raise is
    /// returned.
    pub fn xsetbv(&mut self) -> Result<(), XsetbvFault> {
        let osxsave = self.paging_state().2 & logic::CR4_OSXSAVE != 0;
        let cpl = self.cpl();
        let ecx = self.run.regs.rcx as u32;
        let value = (self.run.regs.rdx << 32) | (self.run.rax & 0xffff_ffff);
        self.xstate
            .xsetbv(&mut self.run.xstate, osxsave, cpl, ecx, value)
    }

    /// A one-line summary of the guest state, for logs.
    pub fn dump(&self) -> alloc::string::String {
        self.make_current();
        let r = &self.run.regs;
        alloc::format!(
            "rip {:#x} rsp {:#x} rax {:#x} rbx {:#x} rcx {:#x} rdx {:#x} rsi {:#x} rdi {:#x} \
             cr0 {:#x} cr3 {:#x} cr4 {:#x} efer {:#x} cs {:#x}/{:#x} rflags {:#x}",
            vmread(vmcs::GUEST_RIP),
            vmread(vmcs::GUEST_RSP),
            self.run.rax,
            r.rbx,
            r.rcx,
            r.rdx,
            r.rsi,
            r.rdi,
            self.guest_cr0(),
            vmread(vmcs::GUEST_CR3),
            self.paging_state().2,
            vmread(vmcs::GUEST_EFER),
            vmread(vmcs::GUEST_CS_SEL),
            vmread(vmcs::GUEST_CS_AR),
            vmread(vmcs::GUEST_RFLAGS)
        )
    }

    /// Runs the guest until its next exit that common code handles. (Every
    /// control word is already in the VMCS: `_vmx` only proves VMX is on.)
    pub fn run(&mut self, vmx: &Vmx) -> VmExit {
        if core::mem::take(&mut self.tlb_flush) {
            self.make_current();
            vmx.invept(vmread(vmcs::EPT_POINTER));
        }
        loop {
            match self.run_once() {
                Step::Exit(exit) => return exit,
                Step::CrAccess(qual) => {
                    if self.cr_access(qual) {
                        let len = vmread(vmcs::EXIT_INSTRUCTION_LENGTH);
                        self.set_rip(self.rip().wrapping_add(len));
                    } else {
                        self.inject_exception(13, Some(0));
                    }
                }
                // The guest sees no VMX (CPUID hides it): its VMX
                // instructions are undefined opcodes (a PV guest's #UD is
                // bounced by common code).
                Step::VmxInstruction if self.pv => {
                    return VmExit::Exception {
                        vector: 6,
                        error: None,
                        cr2: 0,
                    }
                }
                Step::VmxInstruction => self.inject_exception(6, None),
            }
        }
    }

    /// If the exit interrupted the delivery of an event (an exception,
    /// interrupt or software interrupt whose delivery touched something that
    /// exits), queues it again so the guest does not lose it.
    fn reinject_interrupted_event(&mut self) {
        if self.pv {
            return;
        }
        let Some(r) = event::vmx_reinject(vmread(vmcs::IDT_VECTORING_INFO) as u32) else {
            return;
        };
        vmwrite(vmcs::ENTRY_INTERRUPTION_INFO, r.info.into());
        if r.error_code {
            vmwrite(
                vmcs::ENTRY_EXCEPTION_ERROR,
                vmread(vmcs::IDT_VECTORING_ERROR),
            );
        }
        if r.insn_len {
            vmwrite(
                vmcs::ENTRY_INSTRUCTION_LENGTH,
                vmread(vmcs::EXIT_INSTRUCTION_LENGTH),
            );
        }
    }

    /// Loads this vCPU's [`SYSCALL_MSRS`] for its entry.
    fn syscall_msrs_in(&self) {
        for (m, v) in SYSCALL_MSRS.iter().zip(self.syscall_msrs) {
            // SAFETY: these MSRs exist on every 64-bit CPU and only matter
            // to SYSCALL and SWAPGS, which the hypervisor never executes;
            // the values are the guest's own (it wrote them, checked by the
            // CPU) or canonical ones the hypervisor chose.
            unsafe { cpu::wrmsr(*m, v) };
        }
    }

    /// Keeps what the guest left in them.
    fn syscall_msrs_out(&mut self) {
        for (m, v) in SYSCALL_MSRS.iter().zip(self.syscall_msrs.iter_mut()) {
            *v = rdmsr_safe(*m).unwrap_or(0);
        }
    }

    /// One entry and exit.
    fn run_once(&mut self) -> Step {
        if !self.load() {
            log::error!("vmx: VMPTRLD of the vCPU's VMCS failed");
            return Step::Exit(VmExit::Invalid);
        }
        // Keep "IA-32e mode guest" equal to the guest's EFER.LMA.
        let entry = vmread(vmcs::ENTRY_CONTROLS);
        let ia32e = u64::from(entry_ctl::IA32E_MODE_GUEST);
        let want = if vmread(vmcs::GUEST_EFER) & EFER_LMA != 0 {
            entry | ia32e
        } else {
            entry & !ia32e
        };
        if want != entry {
            vmwrite(vmcs::ENTRY_CONTROLS, want);
        }
        self.exit_insn_len = None;
        self.syscall_msrs_in();
        let run: *mut RunState = &mut *self.run;
        // SAFETY: VMX is on and this vCPU's VMCS is current with complete
        // host state (HOST_RIP = `hv_vmx_exit`, HOST_RSP written by the
        // entry code); `run` points at this vCPU's live RunState. The entry
        // code restores every callee-saved register, GDTR/IDTR limits and
        // the host's x87/SSE state, on exit and on VMfail alike.
        let failed = unsafe { hv_vmx_run(run, u32::from(self.launched)) };
        self.syscall_msrs_out();
        self.xstate.after_exit(&self.run.xstate);
        if failed != 0 {
            log::error!(
                "vmx: {} failed: VM-instruction error {}",
                if self.launched {
                    "VMRESUME"
                } else {
                    "VMLAUNCH"
                },
                vmread(vmcs::VM_INSTRUCTION_ERROR)
            );
            return Step::Exit(VmExit::Invalid);
        }
        self.launched = true;
        let raw = vmread(vmcs::EXIT_REASON) as u32;
        let qual = vmread(vmcs::EXIT_QUALIFICATION);
        if raw & reason::ENTRY_FAILURE != 0 {
            log::error!(
                "vmx: VM entry failed: exit reason {} (33 invalid guest state, 34 MSR \
                 loading, 41 machine check), qualification {qual:#x}",
                raw & 0xffff
            );
            return Step::Exit(VmExit::Invalid);
        }
        let basic = raw & 0xffff;
        self.reinject_interrupted_event();
        if logic::is_instruction_exit(basic) {
            self.exit_insn_len = Some(vmread(vmcs::EXIT_INSTRUCTION_LENGTH));
        }
        Step::Exit(match basic {
            reason::CR_ACCESS => return Step::CrAccess(qual),
            reason::VMCLEAR..=reason::VMXON | reason::INVEPT | reason::INVVPID | reason::VMFUNC => {
                return Step::VmxInstruction
            }
            reason::CPUID => VmExit::Cpuid,
            reason::HLT => VmExit::Hlt,
            reason::VMCALL => VmExit::Hypercall,
            reason::IO => {
                let io = logic::decode_io(qual);
                VmExit::Io {
                    port: io.port,
                    size: io.size,
                    write: io.write,
                    string: io.string,
                    rep: io.rep,
                    next_rip: self
                        .rip()
                        .wrapping_add(vmread(vmcs::EXIT_INSTRUCTION_LENGTH)),
                }
            }
            reason::RDMSR => VmExit::Msr { write: false },
            reason::WRMSR => VmExit::Msr { write: true },
            reason::EPT_VIOLATION => {
                let v = logic::decode_ept_violation(qual);
                VmExit::NestedPageFault {
                    gpa: vmread(vmcs::GUEST_PHYSICAL_ADDRESS),
                    write: v.write,
                    fetch: v.fetch,
                }
            }
            reason::INTERRUPT_WINDOW => {
                self.request_interrupt_window(false);
                VmExit::InterruptWindow
            }
            reason::EPT_MISCONFIG => {
                log::error!(
                    "vmx: EPT misconfiguration at guest-physical {:#x}",
                    vmread(vmcs::GUEST_PHYSICAL_ADDRESS)
                );
                VmExit::Invalid
            }
            reason::TRIPLE_FAULT => VmExit::Shutdown,
            reason::EXTERNAL_INTERRUPT => {
                // "Acknowledge interrupt on exit": the vector is in the
                // exit information and the local APIC has delivered it, so
                // it gets its EOI here instead of through the IDT.
                let info = logic::decode_interruption(vmread(vmcs::EXIT_INTERRUPTION_INFO));
                if let Some(i) = info.filter(|i| !crate::arch::lapic::interrupt(i.vector)) {
                    log::warn!("vmx: unexpected host interrupt on vector {}", i.vector);
                }
                VmExit::ExternalInterrupt
            }
            reason::XSETBV => VmExit::Xsetbv,
            reason::PREEMPTION_TIMER => {
                // Where a host interrupt does not exit a guest that runs
                // with IF=0 (Bochs 2.7), the timer that ended the slice is
                // still pending: the host takes it now, or it would end the
                // next guest's slice at its first instruction.
                crate::arch::cpu::take_pending_interrupts();
                VmExit::SliceEnd
            }
            reason::INVALID_GUEST_STATE | reason::MSR_LOADING | reason::MACHINE_CHECK => {
                VmExit::Invalid
            }
            reason::EXCEPTION_OR_NMI => {
                let info = vmread(vmcs::EXIT_INTERRUPTION_INFO);
                if (info >> 8) & 7 == 2 {
                    VmExit::ExternalInterrupt // NMI
                } else {
                    VmExit::Exception {
                        vector: info as u8,
                        error: (info & (1 << 11) != 0)
                            .then(|| vmread(vmcs::EXIT_INTERRUPTION_ERROR) as u32),
                        // The exit qualification of a #PF is its address.
                        cr2: if info as u8 == 14 { qual } else { 0 },
                    }
                }
            }
            other => VmExit::Unknown(other.into()),
        })
    }
}

impl Drop for VmxVcpu {
    fn drop(&mut self) {
        // SAFETY: VMCLEAR flushes the VMCS out of the CPU before its frame
        // is freed; the region is this vCPU's.
        let _ = unsafe { x86::bits64::vmx::vmclear(self.vmcs) };
        // SAFETY: the VMCS frame this vCPU owned, out of the CPU (cleared
        // just above).
        unsafe { crate::arch::phys::zero_owned(self.vmcs, 4096) };
        mem::free_frames(self.vmcs, 1);
    }
}
