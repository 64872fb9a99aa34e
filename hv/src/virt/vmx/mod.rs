//! Intel VMX: enabling it (VMXON), one VMCS per vCPU with EPT and
//! unrestricted guest, entering the guest and turning its exits into
//! [`VmExit`]s. Control registers are virtualised with guest/host masks and
//! read shadows so the guest sees its own CR0/CR4 while the real ones keep
//! the bits VMX operation requires.

pub mod vmcs;

use super::xstate::HostXstate;
use crate::arch::cpu::{self, cpuid, rdmsr_safe, wrmsr};
use crate::mem;
use core::arch::asm;
use vmcs::{entry_ctl, exit_ctl, pin, proc, proc2, Field};
use vmm_glue::log;

// The VMX capability MSRs, by the `x86` crate's names.
use x86::msr::{
    IA32_FEATURE_CONTROL as FEATURE_CONTROL, IA32_VMX_BASIC as VMX_BASIC,
    IA32_VMX_CR0_FIXED0 as VMX_CR0_FIXED0, IA32_VMX_CR0_FIXED1 as VMX_CR0_FIXED1,
    IA32_VMX_CR4_FIXED0 as VMX_CR4_FIXED0, IA32_VMX_CR4_FIXED1 as VMX_CR4_FIXED1,
    IA32_VMX_ENTRY_CTLS as VMX_ENTRY, IA32_VMX_EPT_VPID_CAP as VMX_EPT_VPID_CAP,
    IA32_VMX_EXIT_CTLS as VMX_EXIT, IA32_VMX_MISC as VMX_MISC,
    IA32_VMX_PINBASED_CTLS as VMX_PINBASED, IA32_VMX_PROCBASED_CTLS as VMX_PROCBASED,
    IA32_VMX_PROCBASED_CTLS2 as VMX_PROCBASED2, IA32_VMX_TRUE_ENTRY_CTLS as VMX_TRUE_ENTRY,
    IA32_VMX_TRUE_EXIT_CTLS as VMX_TRUE_EXIT, IA32_VMX_TRUE_PINBASED_CTLS as VMX_TRUE_PINBASED,
    IA32_VMX_TRUE_PROCBASED_CTLS as VMX_TRUE_PROCBASED,
};

const FEATURE_CONTROL_LOCK: u64 = 1 << 0;
const FEATURE_CONTROL_VMXON_OUTSIDE_SMX: u64 = 1 << 2;
/// The guest's time slice under the VMX-preemption timer, in TSC cycles.
const SLICE_TSC_CYCLES: u64 = 500_000;
/// IA32_VMX_BASIC bit 55: the TRUE control MSRs exist.
const BASIC_TRUE_CONTROLS: u64 = 1 << 55;

use hv::regbits::{CR0_PE, CR0_PG, CR0_TS, CR4_VMXE, EFER_LMA, EFER_LME};
use x86::msr::{
    IA32_EFER as EFER, IA32_FS_BASE as FS_BASE, IA32_GS_BASE as GS_BASE, IA32_PAT as PAT,
    IA32_SYSENTER_CS as SYSENTER_CS, IA32_SYSENTER_EIP as SYSENTER_EIP,
    IA32_SYSENTER_ESP as SYSENTER_ESP,
};

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
    /// I/O bitmaps A and B (two pages), every port intercepted, when the
    /// CPU has them; a domain with I/O BARs gets its own
    /// ([`crate::virt::Vcpu::set_io_bitmap`]).
    io_bitmaps: Option<u64>,
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
    /// The VMX-preemption timer's start value (loaded at every entry), when
    /// the CPU has the timer.
    pub preemption_timer: Option<u32>,
    /// Interrupt-window exiting can be turned on.
    pub interrupt_window: bool,
    /// Extended state: XSAVE or FXSAVE, the host's XCR0.
    pub xstate: HostXstate,
    /// The CR4 bits guests may set (`virt::guest_cr4_valid`).
    cr4_valid: u64,
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
/// VMCS: each vCPU keeps its own and loads them for its entries
/// (`VmxVcpu::syscall_msrs`); the host makes no system calls and never
/// executes SWAPGS, so it does not depend on what is in them.
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
    hv::hvm::vmx::adjust_controls(rdmsr_safe(cap_msr)?, want)
}

/// Whether control `bit` may be set according to `cap_msr`.
fn allowed(cap_msr: u32, bit: u32) -> bool {
    rdmsr_safe(cap_msr).is_some_and(|c| hv::hvm::vmx::control_allowed(c, bit))
}

/// VMREAD of `field` in the current VMCS (0 if it fails).
fn vmread(field: Field) -> u64 {
    // SAFETY: VMREAD only reads the current VMCS; a bad field is VMfail,
    // answered as 0.
    unsafe { x86::bits64::vmx::vmread(field.0) }.unwrap_or(0)
}

/// VMWRITE of `field` in the current VMCS; a failure is logged.
fn vmwrite(field: Field, v: u64) {
    // SAFETY: VMWRITE changes only the current VMCS, which belongs to the
    // vCPU being set up or run; the guest state it holds is checked by the
    // CPU at VM entry.
    let failed = unsafe { x86::bits64::vmx::vmwrite(field.0, v) }.is_err();
    if failed {
        log::error!(
            "vmx: VMWRITE of field {:#06x} = {v:#x} failed (VM-instruction error {})",
            field.0,
            vmread(vmcs::VM_INSTRUCTION_ERROR)
        );
    }
}

// The vCPU modules use the helpers and the macro above.
mod cr;
mod entry;
mod intr;
mod pv;
mod start;
mod vcpu;
pub use vcpu::VmxVcpu;

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
        let interrupt_window = allowed(proc_msr, proc::INTERRUPT_WINDOW_EXITING);

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
        let mut want_pin = pin::EXTERNAL_INTERRUPT_EXITING | pin::NMI_EXITING;
        // The preemption timer ends time slices even where a host interrupt
        // does not exit a guest that runs with IF=0 (Bochs 2.7).
        let preemption_timer = allowed(pin_msr, pin::PREEMPTION_TIMER).then(|| {
            let rate = rdmsr_safe(VMX_MISC).unwrap_or(0) & 0x1f;
            u32::try_from((SLICE_TSC_CYCLES >> rate).max(1)).unwrap_or(u32::MAX)
        });
        if preemption_timer.is_some() {
            want_pin |= pin::PREEMPTION_TIMER;
        }
        let pin = adjust(pin_msr, want_pin).ok_or(missing("external-interrupt and NMI exiting"))?;
        // I/O bitmaps (all ports intercepted but a domain's I/O BARs) where
        // the CPU has them, else every port access exits.
        let io_bitmaps = allowed(proc_msr, proc::USE_IO_BITMAPS);
        let proc = adjust(
            proc_msr,
            proc::HLT_EXITING
                | proc::CR8_LOAD_EXITING
                | proc::CR8_STORE_EXITING
                | if io_bitmaps {
                    proc::USE_IO_BITMAPS
                } else {
                    proc::UNCONDITIONAL_IO_EXITING
                }
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
        let io_bitmaps = match io_bitmaps {
            true => {
                let b = mem::alloc_frames(2, 4096).ok_or(VmxError::OutOfMemory)?;
                // SAFETY: fresh frames owned by this module; all ones
                // intercepts every port.
                unsafe { core::ptr::write_bytes(b as *mut u8, 0xff, 2 * 4096) };
                Some(b)
            }
            false => None,
        };
        // SAFETY: fresh frames owned by this module: the revision id heads
        // the VMXON region; an all-ones bitmap intercepts every MSR.
        unsafe {
            (vmxon as *mut u32).write_volatile(revision);
            core::ptr::write_bytes(msr_bitmap as *mut u8, 0xff, 4096);
        }
        for &msr in PASSTHROUGH_MSRS {
            msr_bitmap_allow(msr_bitmap, msr);
        }

        // CR4.OSXSAVE first: the host CR4 every VMCS gets includes it.
        let xstate = super::xstate::enable();
        let cr0 = (cpu::cr0() | cr0_fixed0) & cr0_fixed1;
        let cr4 = (cpu::cr4() | cr4_fixed0 | CR4_VMXE) & cr4_fixed1;
        // SAFETY: the fixed bits VMX requires (NE, PE, PG and VMXE here)
        // are already set or harmless to the running hypervisor; VMXON
        // takes the region prepared above, which stays allocated for as
        // long as VMX is on.
        let on = unsafe {
            asm!("mov cr0, {}", in(reg) cr0, options(nostack, preserves_flags));
            asm!("mov cr4, {}", in(reg) cr4, options(nostack, preserves_flags));
            x86::bits64::vmx::vmxon(vmxon).is_ok()
        };
        if !on {
            return Err(VmxError::VmxonFailed);
        }
        let cr4_valid = super::guest_cr4_valid(xstate.xsave);
        Ok(Self {
            vmxon,
            revision,
            msr_bitmap,
            io_bitmaps,
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
            preemption_timer,
            interrupt_window,
            xstate,
            cr4_valid,
        })
    }

    /// The CR0 bits the guest may not change on its own: those VMX fixes
    /// (except PE and PG, free with unrestricted guest).
    fn cr0_mask(&self) -> u64 {
        (self.cr0_fixed0 & !(CR0_PE | CR0_PG)) | !self.cr0_fixed1
    }

    /// The CR4 bits the guest may not change on its own: those VMX fixes
    /// and those its CPUID does not offer (a write that sets one exits and
    /// is refused).
    fn cr4_mask(&self) -> u64 {
        self.cr4_fixed0 | !self.cr4_fixed1 | !self.cr4_valid
    }

    /// Drops the guest-physical mappings cached for `eptp`.
    pub(crate) fn invept(&self, eptp: u64) {
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
