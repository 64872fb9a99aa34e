//! Architectural register bits as plain `u64` masks: CR0, CR4 and RFLAGS
//! come from the `x86` crate's definitions (`x86::controlregs`,
//! `x86::bits64::rflags`), so the SVM, VMX, hvm, PV and xenabi modules
//! share one set. EFER's bits are ours: the crate names the MSR
//! (`x86::msr::IA32_EFER`) but not its bits.

use x86::bits64::rflags::RFlags;
use x86::controlregs::{Cr0, Cr4};

/// CR0.PE: protected mode.
pub const CR0_PE: u64 = Cr0::CR0_PROTECTED_MODE.bits() as u64;
/// CR0.TS: task switched (the next FPU/SSE use faults).
pub const CR0_TS: u64 = Cr0::CR0_TASK_SWITCHED.bits() as u64;
/// CR0.ET: extension type (hard-wired to 1).
pub const CR0_ET: u64 = Cr0::CR0_EXTENSION_TYPE.bits() as u64;
/// CR0.NW: not write-through.
pub const CR0_NW: u64 = Cr0::CR0_NOT_WRITE_THROUGH.bits() as u64;
/// CR0.CD: cache disable.
pub const CR0_CD: u64 = Cr0::CR0_CACHE_DISABLE.bits() as u64;
/// CR0.PG: paging.
pub const CR0_PG: u64 = Cr0::CR0_ENABLE_PAGING.bits() as u64;

/// CR4.PAE: physical address extension.
pub const CR4_PAE: u64 = Cr4::CR4_ENABLE_PAE.bits() as u64;
/// CR4.OSFXSR: FXSAVE/FXRSTOR and SSE enabled.
pub const CR4_OSFXSR: u64 = Cr4::CR4_ENABLE_SSE.bits() as u64;
/// CR4.OSXMMEXCPT: unmasked SIMD floating-point exceptions.
pub const CR4_OSXMMEXCPT: u64 = Cr4::CR4_UNMASKED_SSE.bits() as u64;
/// CR4.VMXE: VMX enabled.
pub const CR4_VMXE: u64 = Cr4::CR4_ENABLE_VMX.bits() as u64;
/// CR4.FSGSBASE: RDFSBASE and friends enabled.
pub const CR4_FSGSBASE: u64 = Cr4::CR4_ENABLE_FSGSBASE.bits() as u64;
/// CR4.OSXSAVE: XSAVE, XRSTOR, XSETBV and XGETBV enabled.
pub const CR4_OSXSAVE: u64 = Cr4::CR4_ENABLE_OS_XSAVE.bits() as u64;

/// EFER.SCE: SYSCALL/SYSRET enabled.
pub const EFER_SCE: u64 = 1 << 0;
/// EFER.LME: long mode enabled.
pub const EFER_LME: u64 = 1 << 8;
/// EFER.LMA: long mode active.
pub const EFER_LMA: u64 = 1 << 10;
/// EFER.NXE: no-execute pages enabled.
pub const EFER_NXE: u64 = 1 << 11;
/// EFER.SVME: SVM enabled (AMD).
pub const EFER_SVME: u64 = 1 << 12;

/// RFLAGS.IF: interrupts enabled.
pub const RFLAGS_IF: u64 = RFlags::FLAGS_IF.bits();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bits_are_where_the_manuals_put_them() {
        assert_eq!((CR0_PE, CR0_TS, CR0_ET), (1, 1 << 3, 1 << 4));
        assert_eq!((CR0_NW, CR0_CD, CR0_PG), (1 << 29, 1 << 30, 1 << 31));
        assert_eq!(
            (CR4_PAE, CR4_OSFXSR, CR4_OSXMMEXCPT),
            (1 << 5, 1 << 9, 1 << 10)
        );
        assert_eq!(
            (CR4_VMXE, CR4_FSGSBASE, CR4_OSXSAVE),
            (1 << 13, 1 << 16, 1 << 18)
        );
        assert_eq!(RFLAGS_IF, 1 << 9);
    }
}
