//! Intel VMX logic (SDM vol. 3, chapters 24-27 and appendices A and C):
//! control words from the capability MSRs, exit reasons and the exit
//! qualifications of I/O, EPT violations and control-register accesses,
//! and the CR0/CR4 bits VMX operation fixes.

/// Basic exit reasons (appendix C).
pub mod reason {
    pub const EXCEPTION_OR_NMI: u32 = 0;
    pub const EXTERNAL_INTERRUPT: u32 = 1;
    pub const TRIPLE_FAULT: u32 = 2;
    pub const INTERRUPT_WINDOW: u32 = 7;
    pub const CPUID: u32 = 10;
    pub const HLT: u32 = 12;
    pub const VMCALL: u32 = 18;
    /// VMCLEAR (19) .. VMXON (27): the VMX instructions.
    pub const VMCLEAR: u32 = 19;
    pub const VMXON: u32 = 27;
    pub const CR_ACCESS: u32 = 28;
    pub const IO: u32 = 30;
    pub const RDMSR: u32 = 31;
    pub const WRMSR: u32 = 32;
    pub const INVALID_GUEST_STATE: u32 = 33;
    pub const MSR_LOADING: u32 = 34;
    pub const MACHINE_CHECK: u32 = 41;
    pub const EPT_VIOLATION: u32 = 48;
    pub const EPT_MISCONFIG: u32 = 49;
    pub const INVEPT: u32 = 50;
    pub const PREEMPTION_TIMER: u32 = 52;
    pub const INVVPID: u32 = 53;
    pub const XSETBV: u32 = 55;
    pub const VMFUNC: u32 = 59;
    /// Bit 31 of the exit reason: the VM entry failed.
    pub const ENTRY_FAILURE: u32 = 1 << 31;
}

/// Applies a capability MSR value (allowed-0 settings in the low half: bits
/// that must be 1; allowed-1 settings in the high half: bits that may be 1)
/// to the wanted controls `want`; `None` if a wanted bit cannot be 1.
pub fn adjust_controls(cap: u64, want: u32) -> Option<u32> {
    let (must, may) = (cap as u32, (cap >> 32) as u32);
    let v = (want | must) & may;
    (v & want == want).then_some(v)
}

/// Whether control `bit` may be 1 according to capability MSR value `cap`.
pub fn control_allowed(cap: u64, bit: u32) -> bool {
    (cap >> 32) as u32 & bit != 0
}

/// Exits caused by an instruction whose length the CPU reports and which
/// common code completes by advancing RIP.
pub fn is_instruction_exit(basic: u32) -> bool {
    matches!(
        basic,
        reason::CPUID
            | reason::HLT
            | reason::VMCALL
            | reason::IO
            | reason::RDMSR
            | reason::WRMSR
            | reason::XSETBV
    )
}

/// The I/O instruction exit qualification (table 27-5): size - 1 in 2:0,
/// direction (1 = IN) 3, string 4, REP 5, the port in 31:16.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoQual {
    pub port: u16,
    pub size: u8,
    pub write: bool,
    pub string: bool,
    pub rep: bool,
}

pub fn decode_io(qual: u64) -> IoQual {
    IoQual {
        port: (qual >> 16) as u16,
        size: ((qual & 7) + 1) as u8,
        write: qual & 8 == 0,
        string: qual & 16 != 0,
        rep: qual & 32 != 0,
    }
}

/// The EPT violation exit qualification (table 27-7): the access that
/// faulted (bits 0-2) and what the EPT entry allowed (bits 3-5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EptViolation {
    pub read: bool,
    pub write: bool,
    pub fetch: bool,
    /// The guest-physical address was mapped at all (readable, writable
    /// or executable).
    pub mapped: bool,
    /// Bit 7: the guest linear address field is valid.
    pub linear_valid: bool,
}

pub fn decode_ept_violation(qual: u64) -> EptViolation {
    EptViolation {
        read: qual & 1 != 0,
        write: qual & 2 != 0,
        fetch: qual & 4 != 0,
        mapped: qual & 0x38 != 0,
        linear_valid: qual & (1 << 7) != 0,
    }
}

/// A control-register access exit (table 27-3), with general-purpose
/// registers in the SDM's numbering (0 RAX .. 15 R15).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrAccess {
    MovTo {
        cr: u8,
        gpr: u8,
    },
    MovFrom {
        cr: u8,
        gpr: u8,
    },
    Clts,
    /// LMSW with the 4-bit source operand (PE, MP, EM, TS).
    Lmsw {
        source: u8,
    },
}

pub fn decode_cr_access(qual: u64) -> CrAccess {
    let (cr, gpr) = ((qual & 0xf) as u8, ((qual >> 8) & 0xf) as u8);
    match (qual >> 4) & 3 {
        0 => CrAccess::MovTo { cr, gpr },
        1 => CrAccess::MovFrom { cr, gpr },
        2 => CrAccess::Clts,
        _ => CrAccess::Lmsw {
            source: ((qual >> 16) & 0xf) as u8,
        },
    }
}

pub use crate::regbits::{CR0_PE, CR0_PG, CR4_OSXSAVE, CR4_VMXE};

/// The CR0/CR4 bits VMX operation fixes (IA32_VMX_CR{0,4}_FIXED{0,1}):
/// bits set in `fixed0` must be 1, bits clear in `fixed1` must be 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fixed {
    pub fixed0: u64,
    pub fixed1: u64,
}

impl Fixed {
    /// The real value for a guest value: the fixed bits forced.
    pub fn apply(&self, guest: u64) -> u64 {
        (guest | self.fixed0) & self.fixed1
    }

    /// The bits the guest may not own (guest/host mask): those fixed to 1
    /// or to 0.
    pub fn mask(&self) -> u64 {
        self.fixed0 | !self.fixed1
    }

    /// CR0 with unrestricted guest: PE and PG are the guest's own.
    pub fn unrestricted_cr0(&self) -> Fixed {
        Fixed {
            fixed0: self.fixed0 & !(CR0_PE | CR0_PG),
            fixed1: self.fixed1,
        }
    }
}

/// Whether a guest may load `v` into CR0: bits 63:32 are reserved and PG
/// requires PE (#GP otherwise).
pub fn cr0_write_ok(v: u64) -> bool {
    v >> 32 == 0 && !(v & CR0_PG != 0 && v & CR0_PE == 0)
}

/// Whether a guest may load `v` into CR4: only bits the CPU supports in VMX
/// operation (`fixed1`), and never VMXE (the guest sees no VMX).
pub fn cr4_write_ok(v: u64, fixed1: u64) -> bool {
    v & !fixed1 == 0 && v & CR4_VMXE == 0
}

/// The VM-exit interruption information (table 24-19): the vector and
/// type of an exception or NMI exit, or of an acknowledged interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitInterruption {
    pub vector: u8,
    pub kind: u32,
    pub error_code: bool,
}

pub fn decode_interruption(info: u64) -> Option<ExitInterruption> {
    (info & (1 << 31) != 0).then_some(ExitInterruption {
        vector: info as u8,
        kind: ((info >> 8) & 7) as u32,
        error_code: info & (1 << 11) != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjust_sets_the_must_be_one_bits_and_keeps_wanted_ones() {
        // must: bit 1; may: bits 0-7.
        let cap = (0xffu64 << 32) | 0x2;
        assert_eq!(adjust_controls(cap, 0x81), Some(0x83));
    }

    #[test]
    fn adjust_fails_when_a_wanted_bit_may_not_be_one() {
        let cap = 0x0fu64 << 32;
        assert_eq!(adjust_controls(cap, 0x10), None);
    }

    #[test]
    fn allowed_reads_the_high_half() {
        let cap = (1u64 << 34) | 1;
        assert!(control_allowed(cap, 1 << 2));
        assert!(!control_allowed(cap, 1 << 0));
    }

    #[test]
    fn io_qualification_out_dx_al_port_e9() {
        assert_eq!(
            decode_io(0xe9 << 16),
            IoQual {
                port: 0xe9,
                size: 1,
                write: true,
                string: false,
                rep: false
            }
        );
    }

    #[test]
    fn io_qualification_rep_insd() {
        let q = decode_io((0x1f0 << 16) | 32 | 16 | 8 | 3);
        assert_eq!(
            (q.port, q.size, q.write, q.string, q.rep),
            (0x1f0, 4, false, true, true)
        );
    }

    #[test]
    fn ept_violation_write_to_an_unmapped_page() {
        let v = decode_ept_violation(2 | (1 << 7));
        assert!(v.write && !v.read && !v.fetch && !v.mapped && v.linear_valid);
    }

    #[test]
    fn ept_violation_fetch_from_a_readable_page() {
        let v = decode_ept_violation(4 | 8);
        assert!(v.fetch && v.mapped);
    }

    #[test]
    fn cr_access_mov_to_cr4_from_rbx() {
        assert_eq!(
            decode_cr_access(4 | (3 << 8)),
            CrAccess::MovTo { cr: 4, gpr: 3 }
        );
    }

    #[test]
    fn cr_access_mov_from_cr3_to_r15() {
        assert_eq!(
            decode_cr_access(3 | (1 << 4) | (15 << 8)),
            CrAccess::MovFrom { cr: 3, gpr: 15 }
        );
    }

    #[test]
    fn cr_access_clts_and_lmsw() {
        assert_eq!(decode_cr_access(2 << 4), CrAccess::Clts);
        assert_eq!(
            decode_cr_access((3 << 4) | (0xb << 16)),
            CrAccess::Lmsw { source: 0xb }
        );
    }

    #[test]
    fn fixed_bits_force_ones_and_zeros() {
        let f = Fixed {
            fixed0: 0x2000,
            fixed1: 0x3f_ffff,
        };
        assert_eq!(f.apply(1 << 30 | 1), 0x2001);
        assert_eq!(f.mask(), 0x2000 | !0x3f_ffff);
    }

    #[test]
    fn unrestricted_guest_frees_pe_and_pg() {
        let f = Fixed {
            fixed0: 0x8000_0021,
            fixed1: 0xffff_ffff,
        }
        .unrestricted_cr0();
        assert_eq!(f.fixed0, 0x20);
        assert_eq!(f.apply(0), 0x20);
    }

    #[test]
    fn cr0_write_rejects_paging_without_protection_and_high_bits() {
        assert!(cr0_write_ok(0x8000_0011));
        assert!(!cr0_write_ok(0x8000_0000));
        assert!(!cr0_write_ok(1 << 32 | 1));
    }

    #[test]
    fn cr4_write_allows_osxsave_when_the_cpu_has_it() {
        let fixed1 = 0x7f_ffff;
        assert!(cr4_write_ok(CR4_OSXSAVE | 0x620, fixed1));
        assert!(!cr4_write_ok(CR4_OSXSAVE, 0x3_ffff));
    }

    #[test]
    fn cr4_write_never_allows_vmxe() {
        assert!(!cr4_write_ok(CR4_VMXE, u64::MAX));
    }

    #[test]
    fn interruption_info_of_an_acknowledged_timer_interrupt() {
        assert_eq!(
            decode_interruption(0x8000_00ef),
            Some(ExitInterruption {
                vector: 0xef,
                kind: 0,
                error_code: false
            })
        );
        assert_eq!(decode_interruption(0xef), None);
    }

    #[test]
    fn instruction_exits_are_the_ones_that_advance_rip() {
        assert!(is_instruction_exit(reason::XSETBV));
        assert!(is_instruction_exit(reason::IO));
        assert!(!is_instruction_exit(reason::EPT_VIOLATION));
        assert!(!is_instruction_exit(reason::INTERRUPT_WINDOW));
    }
}
