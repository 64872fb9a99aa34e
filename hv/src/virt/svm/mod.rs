//! AMD SVM: enabling it, one VMCB per vCPU, entering the guest and turning
//! its exits into [`VmExit`]s. Uses next-RIP save, decode assists and VMCB
//! clean bits when the CPU has them and works without them (QEMU's TCG has
//! none of them); flush-by-ASID is not used (a new vCPU flushes all). The entry code is in `entry`, external
//! interrupt injection and the interrupt window in `intr`.

mod entry;
mod intr;
mod pv;
mod start;
pub mod vmcb;

use super::xstate::{GuestXstate, HostXstate};
use super::{GuestRegs, VmExit};
use crate::arch::cpu::{cpuid, rdmsr_safe, wrmsr};
use crate::mem;
use entry::{hv_svm_run, hv_svm_vmsave, RunState};
use hv::hvm::cr4;
use hv::hvm::event::{self, Event};
use hv::hvm::svm as logic;
use hv::hvm::xstate::XsetbvFault;
use vmcb::{exit, intercept, Segment, Vmcb};
use vmm_glue::log;

use hv::regbits::EFER_SVME;
use x86::msr::IA32_EFER as EFER;
const VM_HSAVE_PA: u32 = 0xc001_0117;

/// What the CPU's SVM offers, and the per-CPU state SVM needs.
#[derive(Debug)]
pub struct Svm {
    /// Host state save area (VM_HSAVE_PA); kept for when SVM is turned off.
    pub hsave: u64,
    /// A VMCB used only to VMSAVE/VMLOAD the host's FS, GS, TR, LDTR and
    /// syscall MSRs around each VMRUN.
    host_vmcb: u64,
    /// I/O permission map (3 pages): every port intercepted.
    iopm: u64,
    /// MSR permission map (2 pages).
    msrpm: u64,
    pub asids: u32,
    pub nrips: bool,
    /// VMCB clean bits (CPUID 0x8000000A EDX bit 5).
    pub clean_bits: bool,
    /// Decode assists: the VMCB holds the instruction bytes of a #NPF.
    pub decode_assists: bool,
    /// Extended state: XSAVE or FXSAVE, the host's XCR0.
    pub xstate: HostXstate,
    /// The CR4 bits guests may set (`virt::guest_cr4_valid`).
    cr4_valid: u64,
}

/// Why SVM cannot be used.
#[derive(Clone, Copy, Debug)]
pub enum SvmError {
    NotPresent,
    NoNestedPaging,
    DisabledByFirmware,
    OutOfMemory,
}

impl core::fmt::Display for SvmError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::NotPresent => "this CPU has no AMD SVM",
            Self::NoNestedPaging => "SVM without nested paging is not supported",
            Self::DisabledByFirmware => {
                "SVM is disabled by firmware (VM_CR.SVMDIS); enable it in the firmware setup"
            }
            Self::OutOfMemory => "out of memory for the SVM state pages",
        })
    }
}

/// MSRs the guest reads and writes directly: they live in the VMCB and are
/// switched by VMLOAD/VMSAVE.
const PASSTHROUGH_MSRS: &[u32] = &[
    0xc000_0100, // FS_BASE
    0xc000_0101, // GS_BASE
    0xc000_0102, // KERNEL_GS_BASE
    0xc000_0081, // STAR
    0xc000_0082, // LSTAR
    0xc000_0083, // CSTAR
    0xc000_0084, // SFMASK
    0x174,       // SYSENTER_CS
    0x175,       // SYSENTER_ESP
    0x176,       // SYSENTER_EIP
];

/// Clears the intercept bits of `msr` in the MSR permission map at `msrpm`.
fn msrpm_allow(msrpm: u64, msr: u32) {
    let (base, index) = match msr {
        0..=0x1fff => (0, msr),
        0xc000_0000..=0xc000_1fff => (0x800, msr - 0xc000_0000),
        0xc001_0000..=0xc001_1fff => (0x1000, msr - 0xc001_0000),
        _ => return,
    };
    let bit = u64::from(index) * 2;
    let byte = msrpm + base + bit / 8;
    // SAFETY: `byte` lies inside the two MSRPM pages this module owns.
    unsafe {
        let p = byte as *mut u8;
        p.write_volatile(p.read_volatile() & !(0b11 << (bit % 8)));
    }
}

impl Svm {
    /// Turns SVM on for this CPU.
    pub fn enable() -> Result<Self, SvmError> {
        if cpuid(0x8000_0001, 0).ecx & (1 << 2) == 0 {
            return Err(SvmError::NotPresent);
        }
        let features = cpuid(0x8000_000a, 0);
        if features.edx & 1 == 0 {
            return Err(SvmError::NoNestedPaging);
        }
        if rdmsr_safe(0xc001_0114).is_some_and(|vm_cr| vm_cr & (1 << 4) != 0) {
            return Err(SvmError::DisabledByFirmware);
        }
        let page = || mem::alloc_frames(1, 4096).ok_or(SvmError::OutOfMemory);
        let hsave = page()?;
        let host_vmcb = page()?;
        let iopm = mem::alloc_frames(3, 4096).ok_or(SvmError::OutOfMemory)?;
        let msrpm = mem::alloc_frames(2, 4096).ok_or(SvmError::OutOfMemory)?;
        // SAFETY: fresh frames owned by this module; all-ones intercepts
        // every port and every MSR.
        unsafe {
            core::ptr::write_bytes(iopm as *mut u8, 0xff, 3 * 4096);
            core::ptr::write_bytes(msrpm as *mut u8, 0xff, 2 * 4096);
        }
        for &msr in PASSTHROUGH_MSRS {
            msrpm_allow(msrpm, msr);
        }
        let efer = rdmsr_safe(EFER).unwrap_or(0);
        // SAFETY: setting EFER.SVME only makes the SVM instructions
        // available; VM_HSAVE_PA points at a page this module owns.
        unsafe {
            wrmsr(EFER, efer | EFER_SVME);
            wrmsr(VM_HSAVE_PA, hsave);
            // The host's FS, GS, TR, LDTR and syscall MSRs, restored by
            // VMLOAD after every exit.
            hv_svm_vmsave(host_vmcb);
        }
        let decode_assists = features.edx & (1 << 7) != 0;
        log::info!(
            "svm: decode assists {} (instruction bytes of nested page faults)",
            if decode_assists { "yes" } else { "no" }
        );
        let xstate = super::xstate::enable();
        let xsave = xstate.xsave;
        Ok(Self {
            hsave,
            host_vmcb,
            iopm,
            msrpm,
            asids: features.ebx,
            nrips: features.edx & (1 << 3) != 0,
            clean_bits: features.edx & (1 << 5) != 0,
            decode_assists,
            xstate,
            cr4_valid: super::guest_cr4_valid(xsave),
        })
    }
}

/// VMCB clean-bit groups (AMD APM vol. 2, table 15-9): a set bit tells
/// the CPU that the hypervisor left those fields alone since the last
/// VMRUN of this VMCB on this CPU.
pub(super) mod clean {
    /// Intercept vectors, TSC offset, pause filter.
    pub const INTERCEPTS: u32 = 1 << 0;
    /// The I/O and MSR permission map addresses.
    pub const IOPM: u32 = 1 << 1;
    /// V_TPR, V_IRQ and the other virtual-interrupt controls.
    pub const TPR: u32 = 1 << 3;
    /// Nested paging: nCR3, G_PAT.
    pub const NP: u32 = 1 << 4;
    /// CR0, CR3, CR4, EFER.
    pub const CRX: u32 = 1 << 5;
    /// Every group defined (bits 0-11).
    pub const ALL: u32 = 0xfff;
}

/// Initial 32-bit protected-mode state of a PVH entry.
fn flat32(attrib: u16) -> Segment {
    Segment {
        selector: 0,
        attrib,
        limit: 0xffff_ffff,
        base: 0,
    }
}

/// One guest vCPU on SVM.
#[derive(Debug)]
pub struct SvmVcpu {
    vmcb: u64,
    /// Guest registers and the extended-state switch, as the entry code
    /// expects.
    run: alloc::boxed::Box<RunState>,
    xstate: GuestXstate,
    nrips: bool,
    decode_assists: bool,
    /// Whether the CPU honours VMCB clean bits.
    clean_bits: bool,
    /// The clean-bit groups (APM vol. 2, 15.15.3) whose VMCB fields the
    /// hypervisor changed since the last VMRUN; the others may come from
    /// the CPU's cache.
    dirty: u32,
    /// The exiting instruction's length, from next-RIP save.
    exit_insn_len: Option<u64>,
    /// The bytes the CPU fetched for the last #NPF (decode assists).
    insn_bytes: Option<([u8; 15], usize)>,
    /// A PV guest's container: the hypervisor delivers everything to it in
    /// software and never injects an event.
    pub(super) pv: bool,
    /// The CR4 bits the guest may set.
    cr4_valid: u64,
}

impl SvmVcpu {
    /// A vCPU with a fresh VMCB whose control area is set up (the
    /// intercepts, I/O and MSR permission maps, ASID, nested paging, a TLB
    /// flush on the first entry) and whose save area is left for the
    /// caller; `regs` are its first general-purpose registers. A PV
    /// container (`pv`) intercepts every exception; others only #MC.
    pub(super) fn empty(
        svm: &Svm,
        asid: u32,
        nested_cr3: u64,
        regs: GuestRegs,
        pv: bool,
    ) -> Option<Self> {
        let vmcb = mem::alloc_frames(1, 4096)?;
        let mut xstate = GuestXstate::new(&svm.xstate);
        let run = alloc::boxed::Box::new(RunState {
            regs,
            xstate: xstate.switch(&svm.xstate),
        });
        let mut v = Self {
            vmcb,
            run,
            xstate,
            nrips: svm.nrips,
            decode_assists: svm.decode_assists,
            clean_bits: svm.clean_bits,
            dirty: clean::ALL,
            exit_insn_len: None,
            insn_bytes: None,
            pv,
            cr4_valid: svm.cr4_valid,
        };
        let (iopm, msrpm) = (svm.iopm, svm.msrpm);
        let c = &mut v.vmcb_mut().control;
        c.intercept_exceptions = if pv { 0xffff_ffff } else { 1 << 18 }; // all, or #MC
                                                                         // CR4 writes are checked against the guest's CPUID (VMX does it
                                                                         // with the CR4 guest/host mask); a PV container never writes CR4.
        c.intercept_cr = if pv { 0 } else { 1 << (16 + 4) };
        c.intercept_misc1 = intercept::INTR
            | intercept::NMI
            | intercept::SMI
            | intercept::INIT
            | intercept::CPUID
            | intercept::INVD
            | intercept::HLT
            | intercept::IOIO_PROT
            | intercept::MSR_PROT
            | intercept::SHUTDOWN;
        c.intercept_misc2 = intercept::VMRUN
            | intercept::VMMCALL
            | intercept::VMLOAD
            | intercept::VMSAVE
            | intercept::STGI
            | intercept::CLGI
            | intercept::SKINIT
            | intercept::XSETBV;
        c.iopm_base_pa = iopm;
        c.msrpm_base_pa = msrpm;
        c.guest_asid = asid;
        c.tlb_control = 1; // flush everything on the first entry
                           // V_INTR_MASKING: the host's IF stays the host's.
        let mut vintr = hv::hvm::svm::Vintr(0);
        vintr.set_v_intr_masking(true);
        c.vintr = vintr.0;
        c.np_control = 1;
        c.n_cr3 = nested_cr3;
        Some(v)
    }
}

impl SvmVcpu {
    /// A vCPU that starts at a PVH entry: 32-bit protected mode, paging
    /// off, `rbx` = the start info's guest-physical address.
    pub fn new_pvh(svm: &Svm, asid: u32, nested_cr3: u64, entry: u32, rbx: u64) -> Option<Self> {
        let regs = GuestRegs {
            rbx,
            ..GuestRegs::default()
        };
        let mut v = Self::empty(svm, asid, nested_cr3, regs, false)?;
        let b = v.vmcb_mut();
        let s = &mut b.save;
        s.cs = Segment {
            selector: 0x8,
            ..flat32(0xc9b)
        };
        for seg in [&mut s.ds, &mut s.es, &mut s.ss, &mut s.fs, &mut s.gs] {
            *seg = Segment {
                selector: 0x10,
                ..flat32(0xc93)
            };
        }
        s.tr = Segment {
            selector: 0,
            attrib: 0x8b,
            limit: 0x67,
            base: 0,
        };
        s.ldtr = Segment {
            selector: 0,
            attrib: 0x82,
            limit: 0,
            base: 0,
        };
        s.gdtr = Segment {
            selector: 0,
            attrib: 0,
            limit: 0xffff,
            base: 0,
        };
        s.idtr = Segment {
            selector: 0,
            attrib: 0,
            limit: 0xffff,
            base: 0,
        };
        s.efer = EFER_SVME;
        s.cr0 = 0x11; // PE, ET
        s.cr4 = 0;
        s.cr3 = 0;
        s.dr6 = 0xffff_0ff0;
        s.dr7 = 0x400;
        s.rflags = 0x2;
        s.rip = u64::from(entry);
        s.g_pat = 0x0007_0406_0007_0406;
        Some(v)
    }

    /// Points the VMCB at the I/O permission map at `pa` (12 KiB, a set
    /// bit intercepts its port).
    pub(in crate::virt) fn set_io_bitmap(&mut self, pa: u64) -> bool {
        self.vmcb_mut().control.iopm_base_pa = pa;
        self.dirty |= clean::IOPM;
        true
    }

    fn vmcb_mut(&mut self) -> &mut Vmcb {
        // SAFETY: `self.vmcb` is a page this vCPU owns, aligned and sized for
        // a `Vmcb`; the CPU writes it only inside VMRUN, while no Rust
        // reference to it is live (`run` takes `&mut self`).
        unsafe { &mut *(self.vmcb as *mut Vmcb) }
    }

    fn vmcb(&self) -> &Vmcb {
        // SAFETY: as in `vmcb_mut`.
        unsafe { &*(self.vmcb as *const Vmcb) }
    }

    /// The guest's general-purpose registers (RAX and RSP: see `rax`, `rsp`).
    /// Flushes the whole TLB (every ASID) at the next VMRUN.
    pub fn flush_tlb_all(&mut self) {
        self.vmcb_mut().control.tlb_control = 1;
    }

    pub fn regs(&mut self) -> &mut GuestRegs {
        &mut self.run.regs
    }

    pub fn rax(&self) -> u64 {
        self.vmcb().save.rax
    }

    pub fn set_rax(&mut self, v: u64) {
        self.vmcb_mut().save.rax = v;
    }

    pub fn rip(&self) -> u64 {
        self.vmcb().save.rip
    }

    pub fn rflags(&self) -> u64 {
        self.vmcb().save.rflags
    }

    /// Moves RIP (past an emulated instruction): an STI or MOV SS shadow
    /// ends with that instruction.
    pub fn set_rip(&mut self, v: u64) {
        let b = self.vmcb_mut();
        b.save.rip = v;
        b.control.interrupt_shadow &= !1;
    }

    /// CR0, CR3, CR4, EFER: what a guest page walk needs.
    pub fn paging_state(&self) -> (u64, u64, u64, u64) {
        let s = &self.vmcb().save;
        (s.cr0, s.cr3, s.cr4, s.efer)
    }

    /// Whether the guest runs 64-bit code now.
    pub fn long_mode(&self) -> bool {
        let s = &self.vmcb().save;
        s.efer & (1 << 10) != 0 && s.cs.attrib & (1 << 9) != 0
    }

    pub fn cs_base(&self) -> u64 {
        self.vmcb().save.cs.base
    }

    pub fn efer(&self) -> u64 {
        self.vmcb().save.efer & !EFER_SVME
    }

    /// Sets the guest's EFER (SVME stays on: VMRUN requires it).
    /// MOV to CR4 (the intercepted write): `false` means #GP. A paging
    /// bit's change flushes the guest's TLB, as the write itself would.
    pub fn write_cr4(&mut self, v: u64) -> bool {
        let s = &self.vmcb().save;
        let (old, lma, cr3) = (s.cr4, s.efer & (1 << 10) != 0, s.cr3);
        if !cr4::write_ok(old, v, self.cr4_valid, lma, cr3) {
            return false;
        }
        self.vmcb_mut().save.cr4 = v;
        self.dirty |= clean::CRX;
        if cr4::flushes_tlb(old, v) {
            self.flush_tlb_all();
        }
        true
    }

    pub fn set_efer(&mut self, v: u64) {
        self.vmcb_mut().save.efer = v | EFER_SVME;
        self.dirty |= clean::CRX;
    }

    pub fn pat(&self) -> u64 {
        self.vmcb().save.g_pat
    }

    pub fn set_pat(&mut self, v: u64) {
        self.vmcb_mut().save.g_pat = v;
        self.dirty |= clean::NP;
    }

    /// Queues exception `vector` (with `error`, if the vector has one and
    /// the guest is in protected mode) for the next entry.
    pub fn inject_exception(&mut self, vector: u8, error: Option<u32>) {
        let protected = self.vmcb().save.cr0 & 1 != 0;
        let ev = event::svm_eventinj(Event::Exception { vector, error }, protected);
        self.vmcb_mut().control.event_inject = ev;
    }

    /// The guest's current privilege level.
    pub fn cpl(&self) -> u8 {
        self.vmcb().save.cpl
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
        let s = &self.vmcb().save;
        let osxsave = s.cr4 & crate::arch::cpu::CR4_OSXSAVE != 0;
        let rax = s.rax;
        let cpl = self.cpl();
        let ecx = self.run.regs.rcx as u32;
        let value = (self.run.regs.rdx << 32) | (rax & 0xffff_ffff);
        self.xstate
            .xsetbv(&mut self.run.xstate, osxsave, cpl, ecx, value)
    }

    /// The length of the instruction behind the last exit, from next-RIP
    /// save; `None` without it (decode the instruction instead).
    pub fn exit_insn_len(&self) -> Option<u64> {
        self.exit_insn_len
    }

    /// The instruction bytes the CPU fetched for the last nested page
    /// fault, and how many are valid (decode assists only).
    pub fn exit_insn_bytes(&self) -> Option<([u8; 15], usize)> {
        self.insn_bytes
    }

    /// A one-line summary of the guest state, for logs.
    pub fn dump(&self) -> alloc::string::String {
        let s = &self.vmcb().save;
        let r = &self.run.regs;
        alloc::format!(
            "rip {:#x} rsp {:#x} rax {:#x} rbx {:#x} rcx {:#x} rdx {:#x} rsi {:#x} rdi {:#x} \
             cr0 {:#x} cr3 {:#x} cr4 {:#x} efer {:#x} cs {:#x}/{:#x} rflags {:#x}",
            s.rip,
            s.rsp,
            s.rax,
            r.rbx,
            r.rcx,
            r.rdx,
            r.rsi,
            r.rdi,
            s.cr0,
            s.cr3,
            s.cr4,
            s.efer,
            s.cs.selector,
            s.cs.attrib,
            s.rflags
        )
    }

    /// Runs the guest until its next exit.
    pub fn run(&mut self, svm: &Svm) -> VmExit {
        let clean = if self.clean_bits {
            clean::ALL & !self.dirty
        } else {
            0
        };
        self.vmcb_mut().control.clean_bits = clean;
        let run: *mut RunState = &mut *self.run;
        // SAFETY: `run` points at this vCPU's live RunState, the VMCB and
        // the host save VMCB are pages this hypervisor owns, SVM is enabled
        // with VM_HSAVE_PA set (`Svm::enable`), and the entry code restores
        // every callee-saved register, the host's FS/GS/TR/LDTR (VMLOAD of
        // the host VMCB) and its extended state and XCR0.
        unsafe { hv_svm_run(run, self.vmcb, svm.host_vmcb) };
        self.dirty = 0;
        self.xstate.after_exit(&self.run.xstate);
        let (nrips, decode_assists, pv) = (self.nrips, self.decode_assists, self.pv);
        let rip = self.vmcb().save.rip;
        let c = &mut self.vmcb_mut().control;
        c.tlb_control = 0;
        // An event whose delivery the exit interrupted is delivered again
        // (a PV container has none: nothing is injected into it).
        c.event_inject = if pv {
            0
        } else {
            event::svm_reinject(c.exit_int_info).unwrap_or(0)
        };
        let (code, info1, info2) = (c.exit_code, c.exit_info1, c.exit_info2);
        let exit_insn_len = logic::insn_len(nrips, code, rip, c.next_rip);
        let insn_bytes = (decode_assists && code == exit::NPF && c.insn_len != 0)
            .then(|| (c.insn_bytes, usize::from(c.insn_len.min(15))));
        self.exit_insn_len = exit_insn_len;
        self.insn_bytes = insn_bytes;
        let exit = logic::decode_exit(code, info1, info2);
        match exit {
            VmExit::ExternalInterrupt => {
                // The interrupt is still pending: the host's handler takes
                // it now (the timer's records a tick).
                crate::arch::cpu::take_pending_interrupts();
            }
            VmExit::InterruptWindow => self.request_interrupt_window(false),
            _ => {}
        }
        exit
    }
}

impl Drop for SvmVcpu {
    fn drop(&mut self) {
        // SAFETY: the VMCB frame this vCPU took from the frame allocator
        // and owned until now; it no longer runs.
        unsafe { crate::arch::phys::zero_owned(self.vmcb, 4096) };
        mem::free_frames(self.vmcb, 1);
    }
}
