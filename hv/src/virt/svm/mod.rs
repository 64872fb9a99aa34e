//! AMD SVM: enabling it, one VMCB per vCPU, entering the guest and turning
//! its exits into [`VmExit`]s. Works without next-RIP save, decode assists,
//! clean bits and flush-by-ASID (QEMU's TCG has none of them).

pub mod vmcb;

use super::{GuestRegs, VmExit};
use crate::arch::cpu::{cpuid, rdmsr_safe, wrmsr};
use crate::mem;
use core::arch::global_asm;
use vmcb::{exit, intercept, Segment, Vmcb};

const EFER: u32 = 0xc000_0080;
const EFER_SVME: u64 = 1 << 12;
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
        Ok(Self {
            hsave,
            host_vmcb,
            iopm,
            msrpm,
            asids: features.ebx,
            nrips: features.edx & (1 << 3) != 0,
        })
    }
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
    /// Guest registers plus the two FXSAVE areas, as the entry code expects.
    run: alloc::boxed::Box<RunState>,
}

/// What `hv_svm_run` reads and writes, in this order.
#[repr(C, align(64))]
#[derive(Debug)]
struct RunState {
    regs: GuestRegs,
    _pad: [u64; 2],
    guest_fx: [u8; 512],
    host_fx: [u8; 512],
}

const _: () = {
    assert!(core::mem::offset_of!(RunState, guest_fx) == 128);
    assert!(core::mem::offset_of!(RunState, host_fx) == 640);
};

global_asm!(
    r#"
    .section .text.hv_svm_run, "ax"
    .global hv_svm_run
    /* rdi = RunState, rsi = guest VMCB pa, rdx = host VMCB pa */
hv_svm_run:
    push rbx
    push rbp
    push r12
    push r13
    push r14
    push r15
    push rdx
    push rdi
    fxsave64 [rdi + 640]
    fxrstor64 [rdi + 128]
    mov rax, rsi
    mov rbx, [rdi + 0x00]
    mov rcx, [rdi + 0x08]
    mov rdx, [rdi + 0x10]
    mov rsi, [rdi + 0x18]
    mov rbp, [rdi + 0x28]
    mov r8,  [rdi + 0x30]
    mov r9,  [rdi + 0x38]
    mov r10, [rdi + 0x40]
    mov r11, [rdi + 0x48]
    mov r12, [rdi + 0x50]
    mov r13, [rdi + 0x58]
    mov r14, [rdi + 0x60]
    mov r15, [rdi + 0x68]
    mov rdi, [rdi + 0x20]
    /* IF=1 while the guest runs: with V_INTR_MASKING the host's IF decides
       whether a physical interrupt exits the guest (INTR intercept). GIF=0
       holds it off until VMRUN; after the exit GIF is 0 again and IF goes
       back to 0 before STGI, so the interrupt stays pending for the caller
       (`take_pending_interrupts`). */
    clgi
    sti
    vmload rax
    vmrun rax
    cli
    vmsave rax
    mov rax, [rsp]
    mov [rax + 0x00], rbx
    mov [rax + 0x08], rcx
    mov [rax + 0x10], rdx
    mov [rax + 0x18], rsi
    mov [rax + 0x20], rdi
    mov [rax + 0x28], rbp
    mov [rax + 0x30], r8
    mov [rax + 0x38], r9
    mov [rax + 0x40], r10
    mov [rax + 0x48], r11
    mov [rax + 0x50], r12
    mov [rax + 0x58], r13
    mov [rax + 0x60], r14
    mov [rax + 0x68], r15
    fxsave64 [rax + 128]
    fxrstor64 [rax + 640]
    pop rdi
    pop rax
    vmload rax
    stgi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbp
    pop rbx
    ret
    "#
);

global_asm!(
    r#"
    .section .text.hv_svm_vmsave, "ax"
    .global hv_svm_vmsave
hv_svm_vmsave:
    mov rax, rdi
    vmsave rax
    ret
    "#
);

extern "C" {
    fn hv_svm_run(run: *mut RunState, vmcb: u64, host_vmcb: u64);
    fn hv_svm_vmsave(vmcb: u64);
}

impl SvmVcpu {
    /// A vCPU that starts at a PVH entry: 32-bit protected mode, paging
    /// off, `rbx` = the start info's guest-physical address.
    pub fn new_pvh(svm: &Svm, asid: u32, nested_cr3: u64, entry: u32, rbx: u64) -> Option<Self> {
        let vmcb = mem::alloc_frames(1, 4096)?;
        let mut run = alloc::boxed::Box::new(RunState {
            regs: GuestRegs {
                rbx,
                ..GuestRegs::default()
            },
            _pad: [0; 2],
            guest_fx: [0; 512],
            host_fx: [0; 512],
        });
        // x87 control word 0x37f and MXCSR 0x1f80, as after reset.
        run.guest_fx[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
        run.guest_fx[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        let mut v = Self { vmcb, run };
        let (iopm, msrpm) = (svm.iopm, svm.msrpm);
        let b = v.vmcb_mut();
        let c = &mut b.control;
        c.intercept_exceptions = 1 << 18; // #MC
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
        c.vintr = 1 << 24; // V_INTR_MASKING: the host's IF stays the host's
        c.np_control = 1;
        c.n_cr3 = nested_cr3;
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

    pub fn set_rip(&mut self, v: u64) {
        self.vmcb_mut().save.rip = v;
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

    pub fn efer(&self) -> u64 {
        self.vmcb().save.efer & !EFER_SVME
    }

    /// Sets the guest's EFER (SVME stays on: VMRUN requires it).
    pub fn set_efer(&mut self, v: u64) {
        self.vmcb_mut().save.efer = v | EFER_SVME;
    }

    pub fn pat(&self) -> u64 {
        self.vmcb().save.g_pat
    }

    pub fn set_pat(&mut self, v: u64) {
        self.vmcb_mut().save.g_pat = v;
    }

    /// Queues exception `vector` (with `error`) for the next entry.
    pub fn inject_exception(&mut self, vector: u8, error: Option<u32>) {
        let mut ev = u64::from(vector) | (3 << 8) | (1 << 31);
        if let Some(e) = error {
            ev |= (1 << 11) | (u64::from(e) << 32);
        }
        self.vmcb_mut().control.event_inject = ev;
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
        let run: *mut RunState = &mut *self.run;
        // SAFETY: `run` points at this vCPU's live RunState, the VMCB and
        // the host save VMCB are pages this hypervisor owns, SVM is enabled
        // with VM_HSAVE_PA set (`Svm::enable`), and the entry code restores
        // every callee-saved register, the host's FS/GS/TR/LDTR (VMLOAD of
        // the host VMCB) and its x87/SSE state.
        unsafe { hv_svm_run(run, self.vmcb, svm.host_vmcb) };
        let c = &mut self.vmcb_mut().control;
        c.tlb_control = 0;
        c.event_inject = 0;
        let (code, info1, info2) = (c.exit_code, c.exit_info1, c.exit_info2);
        match code {
            exit::CPUID => VmExit::Cpuid,
            exit::HLT => VmExit::Hlt,
            exit::VMMCALL => VmExit::Hypercall,
            exit::IOIO => VmExit::Io {
                port: (info1 >> 16) as u16,
                size: match (info1 >> 4) & 7 {
                    1 => 1,
                    2 => 2,
                    _ => 4,
                },
                write: info1 & 1 == 0,
                string: info1 & 4 != 0,
                rep: info1 & 8 != 0,
                next_rip: info2,
            },
            exit::MSR => VmExit::Msr {
                write: info1 & 1 != 0,
            },
            exit::NPF => VmExit::NestedPageFault {
                gpa: info2,
                write: info1 & 2 != 0,
                fetch: info1 & 16 != 0,
            },
            exit::SHUTDOWN => VmExit::Shutdown,
            exit::INTR | exit::NMI => {
                // The interrupt is still pending: the host's handler takes
                // it now (the timer's records a tick).
                crate::arch::cpu::take_pending_interrupts();
                VmExit::ExternalInterrupt
            }
            exit::XSETBV => VmExit::Xsetbv,
            exit::INVALID => VmExit::Invalid,
            v if (exit::EXCP_BASE..exit::EXCP_BASE + 32).contains(&v) => VmExit::Exception {
                vector: (v - exit::EXCP_BASE) as u8,
                error: Some(info1 as u32),
            },
            other => VmExit::Unknown(other),
        }
    }
}

impl Drop for SvmVcpu {
    fn drop(&mut self) {
        crate::arch::phys::zero_owned(self.vmcb, 4096);
        mem::free_frames(self.vmcb, 1);
    }
}
