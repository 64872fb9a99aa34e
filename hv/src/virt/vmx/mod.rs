//! Intel VMX: enabling it (VMXON), one VMCS per vCPU with EPT and
//! unrestricted guest, entering the guest and turning its exits into
//! [`VmExit`]s. Control registers are virtualised with guest/host masks and
//! read shadows so the guest sees its own CR0/CR4 while the real ones keep
//! the bits VMX operation requires.

pub mod vmcs;

use super::{GuestRegs, VmExit};
use crate::arch::cpu::{self, cpuid, rdmsr_safe, wrmsr};
use crate::mem;
use core::arch::{asm, global_asm};
use vmcs::{ar, entry_ctl, exit_ctl, pin, proc, proc2, reason, Field};

const FEATURE_CONTROL: u32 = 0x3a;
const FEATURE_CONTROL_LOCK: u64 = 1 << 0;
const FEATURE_CONTROL_VMXON_OUTSIDE_SMX: u64 = 1 << 2;
const VMX_BASIC: u32 = 0x480;
const VMX_PINBASED: u32 = 0x481;
const VMX_PROCBASED: u32 = 0x482;
const VMX_EXIT: u32 = 0x483;
const VMX_ENTRY: u32 = 0x484;
const VMX_CR0_FIXED0: u32 = 0x486;
const VMX_CR0_FIXED1: u32 = 0x487;
const VMX_CR4_FIXED0: u32 = 0x488;
const VMX_CR4_FIXED1: u32 = 0x489;
const VMX_PROCBASED2: u32 = 0x48b;
const VMX_EPT_VPID_CAP: u32 = 0x48c;
const VMX_TRUE_PINBASED: u32 = 0x48d;
const VMX_TRUE_PROCBASED: u32 = 0x48e;
const VMX_TRUE_EXIT: u32 = 0x48f;
const VMX_TRUE_ENTRY: u32 = 0x490;
/// IA32_VMX_BASIC bit 55: the TRUE control MSRs exist.
const BASIC_TRUE_CONTROLS: u64 = 1 << 55;

const EFER: u32 = 0xc000_0080;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const PAT: u32 = 0x277;
const FS_BASE: u32 = 0xc000_0100;
const GS_BASE: u32 = 0xc000_0101;
const SYSENTER_CS: u32 = 0x174;
const SYSENTER_ESP: u32 = 0x175;
const SYSENTER_EIP: u32 = 0x176;

const CR0_PE: u64 = 1 << 0;
const CR0_TS: u64 = 1 << 3;
const CR0_PG: u64 = 1 << 31;
const CR4_VMXE: u64 = 1 << 13;

/// IA32_VMX_EPT_VPID_CAP bits (SDM appendix A.10).
mod cap {
    pub const WALK_4: u64 = 1 << 6;
    pub const WB: u64 = 1 << 14;
    pub const PDE_2M: u64 = 1 << 16;
    pub const INVEPT: u64 = 1 << 20;
    pub const INVEPT_SINGLE: u64 = 1 << 25;
    pub const INVEPT_ALL: u64 = 1 << 26;
}

/// What the CPU's VMX offers, the control words every VMCS gets, and the
/// per-CPU state VMX needs.
#[derive(Debug)]
pub struct Vmx {
    /// The VMXON region; kept for when VMX is turned off.
    pub vmxon: u64,
    /// VMCS revision identifier (IA32_VMX_BASIC bits 30:0).
    pub revision: u32,
    /// MSR bitmap page: every MSR intercepted but the pass-through ones.
    msr_bitmap: u64,
    pin: u32,
    proc: u32,
    proc2: u32,
    exit: u32,
    entry: u32,
    cr0_fixed0: u64,
    cr0_fixed1: u64,
    cr4_fixed0: u64,
    cr4_fixed1: u64,
    pub vpid: bool,
    pub invept_single: bool,
    invept_all: bool,
    pub true_controls: bool,
}

/// Why VMX cannot be used.
#[derive(Clone, Copy, Debug)]
pub enum VmxError {
    NotPresent,
    DisabledByFirmware,
    /// A control this hypervisor needs cannot be set (named).
    Missing(&'static str),
    OutOfMemory,
    /// VMXON failed.
    VmxonFailed,
}

impl core::fmt::Display for VmxError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotPresent => f.write_str("this CPU has no Intel VMX"),
            Self::DisabledByFirmware => f.write_str(
                "VMX is disabled by firmware (IA32_FEATURE_CONTROL locked without VMXON \
                 outside SMX); enable VT-x in the firmware setup",
            ),
            Self::Missing(what) => write!(f, "VMX without {what} is not supported"),
            Self::OutOfMemory => f.write_str("out of memory for the VMX state pages"),
            Self::VmxonFailed => f.write_str("VMXON failed"),
        }
    }
}

/// MSRs the guest reads and writes directly. FS/GS base and SYSENTER_* are
/// guest-state fields of the VMCS, switched on every entry and exit.
/// KERNEL_GS_BASE, STAR, LSTAR, CSTAR and FMASK are not switched by the
/// VMCS, so the guest's values stay loaded in the host after an exit: the
/// host makes no system calls and never executes SWAPGS, so it does not
/// depend on them, and the next guest gets fresh values from its own kernel.
const PASSTHROUGH_MSRS: &[u32] = &[
    FS_BASE,
    GS_BASE,
    0xc000_0102, // KERNEL_GS_BASE
    0xc000_0081, // STAR
    0xc000_0082, // LSTAR
    0xc000_0083, // CSTAR
    0xc000_0084, // FMASK
    SYSENTER_CS,
    SYSENTER_ESP,
    SYSENTER_EIP,
];

/// Clears the read and write intercept bits of `msr` in the bitmap page.
fn msr_bitmap_allow(bitmap: u64, msr: u32) {
    let (base, index) = match msr {
        0..=0x1fff => (0, msr),
        0xc000_0000..=0xc000_1fff => (1024, msr - 0xc000_0000),
        _ => return,
    };
    // Read bitmaps at 0 and 1024, write bitmaps 2048 bytes after them.
    for offset in [base, base + 2048] {
        let byte = bitmap + offset + u64::from(index / 8);
        // SAFETY: `byte` lies inside the bitmap page this module owns.
        unsafe {
            let p = byte as *mut u8;
            p.write_volatile(p.read_volatile() & !(1 << (index % 8)));
        }
    }
}

/// Applies a capability MSR's allowed-0 (low half: must be 1) and
/// allowed-1 (high half: may be 1) settings to `want`; `None` if a wanted
/// bit cannot be 1.
fn adjust(cap_msr: u32, want: u32) -> Option<u32> {
    let cap = rdmsr_safe(cap_msr)?;
    let (must, may) = (cap as u32, (cap >> 32) as u32);
    let v = (want | must) & may;
    (v & want == want).then_some(v)
}

/// Whether control `bit` may be set according to `cap_msr`.
fn allowed(cap_msr: u32, bit: u32) -> bool {
    rdmsr_safe(cap_msr).is_some_and(|c| (c >> 32) as u32 & bit != 0)
}

/// Executes `insn` with a 64-bit physical-address operand in memory and
/// reports VMfail (CF or ZF set) as `false`. Expands to inline assembly:
/// use it inside an `unsafe` block that says why the instruction is valid.
macro_rules! vmx_insn_pa {
    ($insn:literal, $pa:expr) => {{
        let pa: u64 = $pa;
        let failed: u8;
        asm!(concat!($insn, " qword ptr [{pa}]"), "setbe {f}",
             pa = in(reg) &raw const pa, f = out(reg_byte) failed, options(nostack));
        failed == 0
    }};
}

/// VMREAD of `field` in the current VMCS (0 if it fails).
fn vmread(field: Field) -> u64 {
    let v: u64;
    // SAFETY: VMREAD only reads the current VMCS; a bad field sets VMfail
    // flags and leaves the destination unchanged (initialised below).
    unsafe {
        asm!("xor {v:e}, {v:e}", "vmread {v}, {f}", v = out(reg) v, f = in(reg) u64::from(field.0),
             options(nostack))
    };
    v
}

/// VMWRITE of `field` in the current VMCS; a failure is logged.
fn vmwrite(field: Field, v: u64) {
    let failed: u8;
    // SAFETY: VMWRITE changes only the current VMCS, which belongs to the
    // vCPU being set up or run; the guest state it holds is checked by the
    // CPU at VM entry.
    unsafe {
        asm!("vmwrite {f}, {v}", "setbe {r}", f = in(reg) u64::from(field.0), v = in(reg) v,
             r = out(reg_byte) failed, options(nostack))
    };
    if failed != 0 {
        log::error!(
            "vmx: VMWRITE of field {:#06x} = {v:#x} failed (VM-instruction error {})",
            field.0,
            vmread(vmcs::VM_INSTRUCTION_ERROR)
        );
    }
}

impl Vmx {
    /// Turns VMX on for this CPU.
    pub fn enable() -> Result<Self, VmxError> {
        if cpuid(1, 0).ecx & (1 << 5) == 0 {
            return Err(VmxError::NotPresent);
        }
        let fc = rdmsr_safe(FEATURE_CONTROL).unwrap_or(0);
        if fc & FEATURE_CONTROL_LOCK == 0 {
            // SAFETY: IA32_FEATURE_CONTROL exists on every VMX CPU; locking
            // it with VMXON allowed outside SMX changes nothing else.
            unsafe {
                wrmsr(
                    FEATURE_CONTROL,
                    fc | FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMXON_OUTSIDE_SMX,
                )
            };
        } else if fc & FEATURE_CONTROL_VMXON_OUTSIDE_SMX == 0 {
            return Err(VmxError::DisabledByFirmware);
        }
        let basic = rdmsr_safe(VMX_BASIC).ok_or(VmxError::NotPresent)?;
        let revision = (basic & 0x7fff_ffff) as u32;
        let true_controls = basic & BASIC_TRUE_CONTROLS != 0;
        let (pin_msr, proc_msr, exit_msr, entry_msr) = if true_controls {
            (
                VMX_TRUE_PINBASED,
                VMX_TRUE_PROCBASED,
                VMX_TRUE_EXIT,
                VMX_TRUE_ENTRY,
            )
        } else {
            (VMX_PINBASED, VMX_PROCBASED, VMX_EXIT, VMX_ENTRY)
        };
        let missing = VmxError::Missing;

        let caps = rdmsr_safe(VMX_EPT_VPID_CAP).unwrap_or(0);
        for (bit, what) in [
            (cap::WALK_4, "4-level EPT"),
            (cap::WB, "write-back EPT"),
            (cap::PDE_2M, "2 MiB EPT pages"),
        ] {
            if caps & bit == 0 {
                return Err(missing(what));
            }
        }
        let pin = adjust(pin_msr, pin::EXTERNAL_INTERRUPT_EXITING | pin::NMI_EXITING)
            .ok_or(missing("external-interrupt and NMI exiting"))?;
        let proc = adjust(
            proc_msr,
            proc::HLT_EXITING
                | proc::CR8_LOAD_EXITING
                | proc::CR8_STORE_EXITING
                | proc::UNCONDITIONAL_IO_EXITING
                | proc::USE_MSR_BITMAPS
                | proc::SECONDARY_CONTROLS,
        )
        .ok_or(missing(
            "HLT, I/O and CR8 exiting, MSR bitmaps or secondary controls",
        ))?;
        let mut want2 = proc2::ENABLE_EPT | proc2::UNRESTRICTED_GUEST;
        for optional in [
            proc2::ENABLE_VPID,
            proc2::ENABLE_RDTSCP,
            proc2::ENABLE_INVPCID,
        ] {
            if allowed(VMX_PROCBASED2, optional) {
                want2 |= optional;
            }
        }
        let proc2 = adjust(VMX_PROCBASED2, want2).ok_or(missing("EPT and unrestricted guest"))?;
        let exit = adjust(
            exit_msr,
            exit_ctl::HOST_ADDRESS_SPACE_SIZE
                | exit_ctl::ACK_INTERRUPT_ON_EXIT
                | exit_ctl::SAVE_PAT
                | exit_ctl::LOAD_PAT
                | exit_ctl::SAVE_EFER
                | exit_ctl::LOAD_EFER,
        )
        .ok_or(missing("64-bit host, PAT and EFER switching on exit"))?;
        let entry = adjust(entry_msr, entry_ctl::LOAD_PAT | entry_ctl::LOAD_EFER)
            .ok_or(missing("PAT and EFER loading on entry"))?;
        // The guest enters in 32-bit mode; the control follows EFER.LMA.
        let entry = entry & !entry_ctl::IA32E_MODE_GUEST;

        let fixed = |msr| rdmsr_safe(msr).ok_or(missing("the CR0/CR4 fixed-bit MSRs"));
        let (cr0_fixed0, cr0_fixed1) = (fixed(VMX_CR0_FIXED0)?, fixed(VMX_CR0_FIXED1)?);
        let (cr4_fixed0, cr4_fixed1) = (fixed(VMX_CR4_FIXED0)?, fixed(VMX_CR4_FIXED1)?);

        let page = || mem::alloc_frames(1, 4096).ok_or(VmxError::OutOfMemory);
        let vmxon = page()?;
        let msr_bitmap = page()?;
        // SAFETY: fresh frames owned by this module: the revision id heads
        // the VMXON region; an all-ones bitmap intercepts every MSR.
        unsafe {
            (vmxon as *mut u32).write_volatile(revision);
            core::ptr::write_bytes(msr_bitmap as *mut u8, 0xff, 4096);
        }
        for &msr in PASSTHROUGH_MSRS {
            msr_bitmap_allow(msr_bitmap, msr);
        }

        let cr0 = (cpu::cr0() | cr0_fixed0) & cr0_fixed1;
        let cr4 = (cpu::cr4() | cr4_fixed0 | CR4_VMXE) & cr4_fixed1;
        // SAFETY: the fixed bits VMX requires (NE, PE, PG and VMXE here)
        // are already set or harmless to the running hypervisor; VMXON
        // takes the region prepared above, which stays allocated for as
        // long as VMX is on.
        let on = unsafe {
            asm!("mov cr0, {}", in(reg) cr0, options(nostack, preserves_flags));
            asm!("mov cr4, {}", in(reg) cr4, options(nostack, preserves_flags));
            vmx_insn_pa!("vmxon", vmxon)
        };
        if !on {
            return Err(VmxError::VmxonFailed);
        }
        Ok(Self {
            vmxon,
            revision,
            msr_bitmap,
            pin,
            proc,
            proc2,
            exit,
            entry,
            cr0_fixed0,
            cr0_fixed1,
            cr4_fixed0,
            cr4_fixed1,
            vpid: proc2 & proc2::ENABLE_VPID != 0,
            invept_single: caps & cap::INVEPT != 0 && caps & cap::INVEPT_SINGLE != 0,
            invept_all: caps & cap::INVEPT != 0 && caps & cap::INVEPT_ALL != 0,
            true_controls,
        })
    }

    /// The CR0 bits the guest may not change on its own: those VMX fixes
    /// (except PE and PG, free with unrestricted guest).
    fn cr0_mask(&self) -> u64 {
        (self.cr0_fixed0 & !(CR0_PE | CR0_PG)) | !self.cr0_fixed1
    }

    fn cr4_mask(&self) -> u64 {
        self.cr4_fixed0 | !self.cr4_fixed1
    }

    /// Drops the guest-physical mappings cached for `eptp`.
    fn invept(&self, eptp: u64) {
        let kind: u64 = if self.invept_single {
            1
        } else if self.invept_all {
            2
        } else {
            return;
        };
        let desc: [u64; 2] = [eptp, 0];
        // SAFETY: INVEPT only invalidates TLB entries; the type is one the
        // CPU reports as supported and the descriptor is a live local.
        unsafe {
            asm!("invept {k}, [{d}]", k = in(reg) kind, d = in(reg) desc.as_ptr(),
                 options(nostack))
        };
    }
}

/// One guest vCPU on VMX.
#[derive(Debug)]
pub struct VmxVcpu {
    vmcs: u64,
    /// Guest registers plus the two FXSAVE areas, as the entry code expects.
    run: alloc::boxed::Box<RunState>,
    launched: bool,
    /// The guest's view of CR0 and CR4 (also in the read shadows).
    cr0_shadow: u64,
    cr4_shadow: u64,
    cr0_mask: u64,
    cr0_fixed0: u64,
    cr0_fixed1: u64,
    cr4_fixed0: u64,
    cr4_fixed1: u64,
    /// The exiting instruction's length, for instruction exits.
    exit_insn_len: Option<u64>,
}

/// What `hv_vmx_run` reads and writes, in this order.
#[repr(C, align(64))]
#[derive(Debug)]
struct RunState {
    regs: GuestRegs,
    /// RAX is not in the VMCS.
    rax: u64,
    _pad: u64,
    guest_fx: [u8; 512],
    host_fx: [u8; 512],
}

const _: () = {
    assert!(core::mem::offset_of!(RunState, rax) == 0x70);
    assert!(core::mem::offset_of!(RunState, guest_fx) == 128);
    assert!(core::mem::offset_of!(RunState, host_fx) == 640);
    assert!(vmcs::HOST_RSP.0 == 0x6c14);
};

global_asm!(
    r#"
    .section .text.hv_vmx_run, "ax"
    .global hv_vmx_run
    .global hv_vmx_exit
    /* rdi = RunState, esi = 1 to VMRESUME, 0 to VMLAUNCH.
       Returns 0 after a VM exit, 1 if the instruction failed (VMfail). */
hv_vmx_run:
    push rbx
    push rbp
    push r12
    push r13
    push r14
    push r15
    push rdi
    sub rsp, 32
    /* VM exits leave the GDTR and IDTR limits at 0xffff: keep the real ones */
    sgdt [rsp]
    sidt [rsp + 16]
    fxsave64 [rdi + 640]
    fxrstor64 [rdi + 128]
    mov rax, 0x6c14
    vmwrite rax, rsp
    test esi, esi
    mov rax, [rdi + 0x70]
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
    jnz 2f
    vmlaunch
    jmp 3f
2:
    vmresume
3:
    /* VMfail: the guest registers were not changed */
    mov rdi, [rsp + 32]
    mov eax, 1
    jmp 4f
hv_vmx_exit:
    push rax
    mov rax, [rsp + 40]
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
    pop qword ptr [rax + 0x70]
    mov rdi, rax
    xor eax, eax
4:
    lgdt [rsp]
    lidt [rsp + 16]
    fxsave64 [rdi + 128]
    fxrstor64 [rdi + 640]
    add rsp, 32
    pop rdi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbp
    pop rbx
    ret
    "#
);

extern "C" {
    fn hv_vmx_run(run: *mut RunState, resume: u32) -> u32;
    static hv_vmx_exit: u8;
}

/// Vectors whose exceptions push an error code.
fn has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21)
}

impl VmxVcpu {
    /// A vCPU that starts at a PVH entry: 32-bit protected mode, paging
    /// off, `rbx` = the start info's guest-physical address.
    pub fn new_pvh(vmx: &Vmx, vpid: u16, eptp: u64, entry: u32, rbx: u64) -> Option<Self> {
        let vmcs = mem::alloc_frames(1, 4096)?;
        // SAFETY: a fresh frame owned by this vCPU; the revision id heads
        // every VMCS region.
        unsafe { (vmcs as *mut u32).write_volatile(vmx.revision) };
        let mut run = alloc::boxed::Box::new(RunState {
            regs: GuestRegs {
                rbx,
                ..GuestRegs::default()
            },
            rax: 0,
            _pad: 0,
            guest_fx: [0; 512],
            host_fx: [0; 512],
        });
        // x87 control word 0x37f and MXCSR 0x1f80, as after reset.
        run.guest_fx[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
        run.guest_fx[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        let v = Self {
            vmcs,
            run,
            launched: false,
            cr0_shadow: CR0_PE | (1 << 4), // PE, ET
            cr4_shadow: 0,
            cr0_mask: vmx.cr0_mask(),
            cr0_fixed0: vmx.cr0_fixed0,
            cr0_fixed1: vmx.cr0_fixed1,
            cr4_fixed0: vmx.cr4_fixed0,
            cr4_fixed1: vmx.cr4_fixed1,
            exit_insn_len: None,
        };
        // SAFETY: VMX is on (`Vmx::enable`); the VMCS region is ours and
        // carries the revision id. VMCLEAR initialises it, VMPTRLD makes it
        // current for the VMWRITEs below.
        let ok = unsafe { vmx_insn_pa!("vmclear", vmcs) && vmx_insn_pa!("vmptrld", vmcs) };
        if !ok {
            log::error!("vmx: VMCLEAR/VMPTRLD of a new VMCS failed");
            return None;
        }
        v.write_host_state();

        vmwrite(vmcs::PIN_CONTROLS, vmx.pin.into());
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
        vmwrite(vmcs::EPT_POINTER, eptp);
        if vmx.vpid {
            vmwrite(vmcs::VPID, vpid.max(1).into());
        }
        vmwrite(vmcs::CR0_MASK, vmx.cr0_mask());
        vmwrite(vmcs::CR4_MASK, vmx.cr4_mask());
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
        vmwrite(vmcs::GUEST_PENDING_DEBUG, 0);
        vmwrite(vmcs::GUEST_SYSENTER_CS, 0);
        vmwrite(vmcs::GUEST_SYSENTER_ESP, 0);
        vmwrite(vmcs::GUEST_SYSENTER_EIP, 0);
        vmwrite(vmcs::VMCS_LINK_POINTER, u64::MAX);
        vmwrite(vmcs::GUEST_DEBUGCTL, 0);
        vmwrite(vmcs::GUEST_PAT, 0x0007_0406_0007_0406);
        vmwrite(vmcs::GUEST_EFER, 0);
        vmwrite(vmcs::GUEST_INTERRUPTIBILITY, 0);
        vmwrite(vmcs::GUEST_ACTIVITY_STATE, 0);
        // The EPT root may be a recycled frame: drop stale translations.
        vmx.invept(eptp);
        Some(v)
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

    /// The real CR0 for a guest value: the bits VMX fixes forced.
    fn real_cr0(&self, guest: u64) -> u64 {
        (guest | (self.cr0_fixed0 & !(CR0_PE | CR0_PG))) & self.cr0_fixed1
    }

    fn real_cr4(&self, guest: u64) -> u64 {
        (guest | self.cr4_fixed0) & self.cr4_fixed1
    }

    /// Makes this vCPU's VMCS the current one.
    fn load(&self) -> bool {
        // SAFETY: VMX is on and `self.vmcs` is this vCPU's VMCS region,
        // initialised by VMCLEAR in `new_pvh`.
        unsafe { vmx_insn_pa!("vmptrld", self.vmcs) }
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
        vmread(vmcs::GUEST_RIP)
    }

    /// Moves RIP (past an emulated instruction): an STI or MOV SS shadow
    /// ends with that instruction.
    pub fn set_rip(&mut self, v: u64) {
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
        (
            self.guest_cr0(),
            vmread(vmcs::GUEST_CR3),
            self.cr4_shadow | (vmread(vmcs::GUEST_CR4) & !(self.cr4_fixed0 | !self.cr4_fixed1)),
            vmread(vmcs::GUEST_EFER),
        )
    }

    /// Whether the guest runs 64-bit code now.
    pub fn long_mode(&self) -> bool {
        vmread(vmcs::GUEST_EFER) & EFER_LMA != 0 && vmread(vmcs::GUEST_CS_AR) as u32 & ar::LONG != 0
    }

    pub fn efer(&self) -> u64 {
        vmread(vmcs::GUEST_EFER)
    }

    /// Sets the guest's EFER; LMA follows LME and CR0.PG, as on hardware.
    pub fn set_efer(&mut self, v: u64) {
        let paging = vmread(vmcs::GUEST_CR0) & CR0_PG != 0;
        let lma = if v & EFER_LME != 0 && paging {
            EFER_LMA
        } else {
            0
        };
        vmwrite(vmcs::GUEST_EFER, (v & !EFER_LMA) | lma);
    }

    pub fn pat(&self) -> u64 {
        vmread(vmcs::GUEST_PAT)
    }

    pub fn set_pat(&mut self, v: u64) {
        vmwrite(vmcs::GUEST_PAT, v);
    }

    /// Queues exception `vector` (with `error`, if the vector has one) for
    /// the next entry.
    pub fn inject_exception(&mut self, vector: u8, error: Option<u32>) {
        let mut info = u64::from(vector) | (3 << 8) | (1 << 31);
        let protected = self.guest_cr0() & CR0_PE != 0;
        if let Some(e) = error.filter(|_| has_error_code(vector) && protected) {
            info |= 1 << 11;
            vmwrite(vmcs::ENTRY_EXCEPTION_ERROR, e.into());
        }
        vmwrite(vmcs::ENTRY_INTERRUPTION_INFO, info);
    }

    /// A one-line summary of the guest state, for logs.
    pub fn dump(&self) -> alloc::string::String {
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

    /// General-purpose register `n` in the SDM's encoding (0 RAX .. 15 R15).
    fn gpr(&self, n: u64) -> u64 {
        let r = &self.run.regs;
        match n {
            0 => self.run.rax,
            1 => r.rcx,
            2 => r.rdx,
            3 => r.rbx,
            4 => vmread(vmcs::GUEST_RSP),
            5 => r.rbp,
            6 => r.rsi,
            7 => r.rdi,
            8 => r.r8,
            9 => r.r9,
            10 => r.r10,
            11 => r.r11,
            12 => r.r12,
            13 => r.r13,
            14 => r.r14,
            _ => r.r15,
        }
    }

    fn set_gpr(&mut self, n: u64, v: u64) {
        let r = &mut self.run.regs;
        match n {
            0 => self.run.rax = v,
            1 => r.rcx = v,
            2 => r.rdx = v,
            3 => r.rbx = v,
            4 => vmwrite(vmcs::GUEST_RSP, v),
            5 => r.rbp = v,
            6 => r.rsi = v,
            7 => r.rdi = v,
            8 => r.r8 = v,
            9 => r.r9 = v,
            10 => r.r10 = v,
            11 => r.r11 = v,
            12 => r.r12 = v,
            13 => r.r13 = v,
            14 => r.r14 = v,
            _ => r.r15 = v,
        }
    }

    /// The guest writes CR0: keep the shadow, force VMX's fixed bits, and
    /// enter or leave long mode as the CPU would.
    fn write_cr0(&mut self, v: u64) -> bool {
        if v >> 32 != 0 || (v & CR0_PG != 0 && v & CR0_PE == 0) {
            return false;
        }
        let old = vmread(vmcs::GUEST_CR0);
        let efer = vmread(vmcs::GUEST_EFER);
        let mut entry = vmread(vmcs::ENTRY_CONTROLS);
        if v & CR0_PG != 0 && old & CR0_PG == 0 && efer & EFER_LME != 0 {
            vmwrite(vmcs::GUEST_EFER, efer | EFER_LMA);
            entry |= u64::from(entry_ctl::IA32E_MODE_GUEST);
        } else if v & CR0_PG == 0 && old & CR0_PG != 0 {
            vmwrite(vmcs::GUEST_EFER, efer & !EFER_LMA);
            entry &= !u64::from(entry_ctl::IA32E_MODE_GUEST);
        }
        vmwrite(vmcs::ENTRY_CONTROLS, entry);
        self.cr0_shadow = v;
        vmwrite(vmcs::CR0_SHADOW, v);
        vmwrite(vmcs::GUEST_CR0, self.real_cr0(v));
        true
    }

    fn write_cr4(&mut self, v: u64) -> bool {
        if v & !self.cr4_fixed1 & !CR4_VMXE != 0 || v & CR4_VMXE != 0 {
            return false;
        }
        self.cr4_shadow = v;
        vmwrite(vmcs::CR4_SHADOW, v);
        vmwrite(vmcs::GUEST_CR4, self.real_cr4(v));
        true
    }

    /// Emulates a control-register access exit; `false` means #GP.
    fn cr_access(&mut self, qual: u64) -> bool {
        let (cr, kind, reg) = (qual & 0xf, (qual >> 4) & 3, (qual >> 8) & 0xf);
        match (kind, cr) {
            (0, 0) => self.write_cr0(self.gpr(reg)),
            (0, 3) => {
                vmwrite(vmcs::GUEST_CR3, self.gpr(reg));
                true
            }
            (0, 4) => self.write_cr4(self.gpr(reg)),
            (0, 8) => true, // no virtual APIC yet: the TPR is ignored
            (1, 3) => {
                self.set_gpr(reg, vmread(vmcs::GUEST_CR3));
                true
            }
            (1, 8) => {
                self.set_gpr(reg, 0);
                true
            }
            (2, _) => self.write_cr0(self.cr0_shadow & !CR0_TS), // CLTS
            (3, _) => {
                // LMSW: loads PE, MP, EM, TS; cannot clear PE.
                let src = (qual >> 16) & 0xf;
                let v = (self.cr0_shadow & !0xe) | src | (self.cr0_shadow & CR0_PE);
                self.write_cr0(v)
            }
            _ => false,
        }
    }

    /// Runs the guest until its next exit that common code handles. (Every
    /// control word is already in the VMCS: `_vmx` only proves VMX is on.)
    pub fn run(&mut self, _vmx: &Vmx) -> VmExit {
        loop {
            let exit = self.run_once();
            match exit {
                Ok(exit) => return exit,
                Err(qual) => {
                    if self.cr_access(qual) {
                        let len = vmread(vmcs::EXIT_INSTRUCTION_LENGTH);
                        self.set_rip(self.rip().wrapping_add(len));
                    } else {
                        self.inject_exception(13, Some(0));
                    }
                }
            }
        }
    }

    /// If the exit interrupted the delivery of an event (an exception,
    /// interrupt or software interrupt whose delivery touched something that
    /// exits), queues it again so the guest does not lose it.
    fn reinject_interrupted_event(&mut self) {
        let info = vmread(vmcs::IDT_VECTORING_INFO);
        if info & (1 << 31) == 0 {
            return;
        }
        // Vector, type and error-code-valid; bits 30:12 must be 0 on entry.
        vmwrite(vmcs::ENTRY_INTERRUPTION_INFO, info & 0x8000_0fff);
        if info & (1 << 11) != 0 {
            vmwrite(
                vmcs::ENTRY_EXCEPTION_ERROR,
                vmread(vmcs::IDT_VECTORING_ERROR),
            );
        }
        // Software interrupts and exceptions (types 4-6) need the length of
        // the instruction that raised them.
        if matches!((info >> 8) & 7, 4..=6) {
            vmwrite(
                vmcs::ENTRY_INSTRUCTION_LENGTH,
                vmread(vmcs::EXIT_INSTRUCTION_LENGTH),
            );
        }
    }

    /// One entry and exit; `Err` carries the qualification of a CR access
    /// exit, which this module handles itself.
    fn run_once(&mut self) -> Result<VmExit, u64> {
        if !self.load() {
            log::error!("vmx: VMPTRLD of the vCPU's VMCS failed");
            return Ok(VmExit::Invalid);
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
        let run: *mut RunState = &mut *self.run;
        // SAFETY: VMX is on and this vCPU's VMCS is current with complete
        // host state (HOST_RIP = `hv_vmx_exit`, HOST_RSP written by the
        // entry code); `run` points at this vCPU's live RunState. The entry
        // code restores every callee-saved register, GDTR/IDTR limits and
        // the host's x87/SSE state, on exit and on VMfail alike.
        let failed = unsafe { hv_vmx_run(run, u32::from(self.launched)) };
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
            return Ok(VmExit::Invalid);
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
            return Ok(VmExit::Invalid);
        }
        let basic = raw & 0xffff;
        self.reinject_interrupted_event();
        if matches!(
            basic,
            reason::CPUID
                | reason::HLT
                | reason::VMCALL
                | reason::IO
                | reason::RDMSR
                | reason::WRMSR
                | reason::XSETBV
        ) {
            self.exit_insn_len = Some(vmread(vmcs::EXIT_INSTRUCTION_LENGTH));
        }
        Ok(match basic {
            reason::CR_ACCESS => return Err(qual),
            reason::CPUID => VmExit::Cpuid,
            reason::HLT => VmExit::Hlt,
            reason::VMCALL => VmExit::Hypercall,
            reason::IO => VmExit::Io {
                port: (qual >> 16) as u16,
                size: ((qual & 7) + 1) as u8,
                write: qual & 8 == 0,
                string: qual & 16 != 0,
                rep: qual & 32 != 0,
                next_rip: self
                    .rip()
                    .wrapping_add(vmread(vmcs::EXIT_INSTRUCTION_LENGTH)),
            },
            reason::RDMSR => VmExit::Msr { write: false },
            reason::WRMSR => VmExit::Msr { write: true },
            reason::EPT_VIOLATION => VmExit::NestedPageFault {
                gpa: vmread(vmcs::GUEST_PHYSICAL_ADDRESS),
                write: qual & 2 != 0,
                fetch: qual & 4 != 0,
            },
            reason::EPT_MISCONFIG => {
                log::error!(
                    "vmx: EPT misconfiguration at guest-physical {:#x}",
                    vmread(vmcs::GUEST_PHYSICAL_ADDRESS)
                );
                VmExit::Invalid
            }
            reason::TRIPLE_FAULT => VmExit::Shutdown,
            reason::EXTERNAL_INTERRUPT => VmExit::ExternalInterrupt,
            reason::XSETBV => VmExit::Xsetbv,
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
        let _ = unsafe { vmx_insn_pa!("vmclear", self.vmcs) };
        crate::arch::phys::zero_owned(self.vmcs, 4096);
        mem::free_frames(self.vmcs, 1);
    }
}
