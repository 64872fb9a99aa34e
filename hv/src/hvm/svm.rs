//! AMD SVM exit decoding (AMD64 APM vol. 2, 15.7-15.10 and appendix C):
//! exit codes, the IOIO and nested-page-fault EXITINFO1 layouts, the
//! instruction length from next-RIP save, and the V_IRQ settings of the
//! interrupt window.

use super::VmExit;

/// Exit codes (APM vol. 2, appendix C).
pub mod code {
    pub const CR4_WRITE: u64 = 0x14;
    pub const EXCP_BASE: u64 = 0x40;
    pub const INTR: u64 = 0x60;
    pub const NMI: u64 = 0x61;
    pub const VINTR: u64 = 0x64;
    pub const CPUID: u64 = 0x72;
    pub const HLT: u64 = 0x78;
    pub const IOIO: u64 = 0x7b;
    pub const MSR: u64 = 0x7c;
    pub const SHUTDOWN: u64 = 0x7f;
    pub const VMMCALL: u64 = 0x81;
    pub const XSETBV: u64 = 0x8d;
    pub const NPF: u64 = 0x400;
    pub const INVALID: u64 = u64::MAX;
}

/// IOIO EXITINFO1 (APM 15.10.2): TYPE (1 = IN) in bit 0, STR 2, REP 3,
/// SZ8/SZ16/SZ32 one-hot in 4..7, the port in 31:16.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoInfo {
    pub port: u16,
    pub size: u8,
    pub write: bool,
    pub string: bool,
    pub rep: bool,
}

pub fn decode_ioio(info1: u64) -> IoInfo {
    IoInfo {
        port: (info1 >> 16) as u16,
        size: match (info1 >> 4) & 7 {
            1 => 1,
            2 => 2,
            _ => 4,
        },
        write: info1 & 1 == 0,
        string: info1 & 4 != 0,
        rep: info1 & 8 != 0,
    }
}

/// The nested-page-fault error code in EXITINFO1 (APM 15.25.6): the
/// #PF error-code bits of the nested walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NpfInfo {
    /// The nested page was present (a protection fault, not a missing page).
    pub present: bool,
    pub write: bool,
    pub user: bool,
    /// A reserved bit was set in a nested page-table entry.
    pub reserved: bool,
    pub fetch: bool,
    /// The fault hit the final guest-physical address (bit 32) rather than
    /// a guest page-table access (bit 33).
    pub final_translation: bool,
}

pub fn decode_npf(info1: u64) -> NpfInfo {
    NpfInfo {
        present: info1 & 1 != 0,
        write: info1 & 2 != 0,
        user: info1 & 4 != 0,
        reserved: info1 & 8 != 0,
        fetch: info1 & 16 != 0,
        final_translation: info1 & (1 << 32) != 0,
    }
}

/// The neutral exit for SVM exit `code` with its EXITINFO1/2. Host
/// interrupts (INTR, NMI) become `ExternalInterrupt` and VINTR becomes
/// `InterruptWindow`; the backend does what those need of the host.
pub fn decode_exit(code: u64, info1: u64, info2: u64) -> VmExit {
    match code {
        code::CPUID => VmExit::Cpuid,
        code::HLT => VmExit::Hlt,
        code::VMMCALL => VmExit::Hypercall,
        code::IOIO => {
            let io = decode_ioio(info1);
            VmExit::Io {
                port: io.port,
                size: io.size,
                write: io.write,
                string: io.string,
                rep: io.rep,
                next_rip: info2,
            }
        }
        code::MSR => VmExit::Msr {
            write: info1 & 1 != 0,
        },
        code::NPF => {
            let npf = decode_npf(info1);
            VmExit::NestedPageFault {
                gpa: info2,
                write: npf.write,
                fetch: npf.fetch,
            }
        }
        code::SHUTDOWN => VmExit::Shutdown,
        code::INTR | code::NMI => VmExit::ExternalInterrupt,
        code::VINTR => VmExit::InterruptWindow,
        code::XSETBV => VmExit::Xsetbv,
        // EXITINFO1 bit 63: a MOV (not LMSW/CLTS), GPR number in 3:0.
        code::CR4_WRITE => VmExit::Cr4Write {
            gpr: (info1 >> 63 != 0).then_some((info1 & 0xf) as u8),
        },
        code::INVALID => VmExit::Invalid,
        v if (code::EXCP_BASE..code::EXCP_BASE + 32).contains(&v) => {
            let vector = (v - code::EXCP_BASE) as u8;
            VmExit::Exception {
                vector,
                // EXITINFO1 holds the error code for vectors that have one.
                error: crate::pv::bounce::has_error_code(vector).then_some(info1 as u32),
                // EXITINFO2 holds the faulting address of a #PF.
                cr2: if vector == 14 { info2 } else { 0 },
            }
        }
        other => VmExit::Unknown(other),
    }
}

/// Whether `code` is an instruction intercept for which the CPU saves the
/// next RIP (with NRIPS) and common code advances RIP.
fn is_instruction_exit(code: u64) -> bool {
    matches!(
        code,
        code::CPUID
            | code::HLT
            | code::VMMCALL
            | code::IOIO
            | code::MSR
            | code::XSETBV
            | code::CR4_WRITE
    )
}

/// The length of the instruction behind exit `code`, from the VMCB's
/// next RIP when the CPU has next-RIP save; `None` means "decode it".
/// A next RIP that does not lie 1 to 15 bytes past `rip` is not trusted.
pub fn insn_len(nrips: bool, code: u64, rip: u64, next_rip: u64) -> Option<u64> {
    if !nrips || !is_instruction_exit(code) {
        return None;
    }
    let len = next_rip.wrapping_sub(rip);
    (1..=15).contains(&len).then_some(len)
}

bitfield::bitfield! {
    /// The VMCB's virtual-interrupt control word (offset 0x60, with
    /// V_INTR_VECTOR in the word at 0x64; APM vol. 2, appendix B).
    #[derive(Clone, Copy, PartialEq, Eq, Default)]
    pub struct Vintr(pub u64);
    impl Debug;
    /// V_TPR: the guest's virtual TPR.
    pub u8, v_tpr, set_v_tpr: 7, 0;
    /// V_IRQ: a virtual interrupt is pending.
    pub v_irq, set_v_irq: 8;
    /// V_INTR_PRIO: its priority.
    pub u8, v_intr_prio, set_v_intr_prio: 19, 16;
    /// V_IGN_TPR: it ignores the virtual TPR.
    pub v_ign_tpr, set_v_ign_tpr: 20;
    /// V_INTR_MASKING: the guest's RFLAGS.IF masks virtual interrupts
    /// only, the host's masks physical ones.
    pub v_intr_masking, set_v_intr_masking: 24;
    /// V_INTR_VECTOR: the vector of the virtual interrupt.
    pub u8, v_intr_vector, set_v_intr_vector: 39, 32;
}

/// The VMCB `vintr` bits of the interrupt window: V_IRQ (8), V_INTR_PRIO
/// (19:16) and V_IGN_TPR (20). V_INTR_MASKING (24) is left alone: it keeps
/// the guest's IF masking virtual interrupts only.
pub const VINTR_WINDOW: u64 = (1 << 8) | (0xf << 16) | (1 << 20);

/// `vintr` with the interrupt-window request on or off: a pending virtual
/// interrupt (V_IRQ) the guest takes as soon as it can, and whose
/// acceptance the VINTR intercept turns into an exit.
pub fn vintr_window(vintr: u64, on: bool) -> u64 {
    if on {
        vintr | VINTR_WINDOW
    } else {
        vintr & !VINTR_WINDOW
    }
}

/// `vintr` with `vector` posted as the guest's virtual interrupt: V_IRQ
/// with the top priority, the TPR ignored and V_INTR_VECTOR set. Without
/// the VINTR intercept the CPU delivers it through the guest's IDT as soon
/// as the guest's RFLAGS.IF and interrupt shadow allow, with no exit, and
/// clears V_IRQ when it does.
pub fn vintr_post(vintr: u64, vector: u8) -> u64 {
    let mut v = Vintr(vintr | VINTR_WINDOW);
    v.set_v_intr_vector(vector);
    v.0
}

/// The vector `vintr` holds posted and not yet delivered (V_IRQ set).
pub fn vintr_posted(vintr: u64) -> Option<u8> {
    let v = Vintr(vintr);
    v.v_irq().then_some(v.v_intr_vector())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioio_out_byte_to_port_e9() {
        let io = decode_ioio((0xe9 << 16) | (1 << 4));
        assert_eq!(
            io,
            IoInfo {
                port: 0xe9,
                size: 1,
                write: true,
                string: false,
                rep: false
            }
        );
    }

    #[test]
    fn ioio_rep_insw_is_an_input_string_of_words() {
        let io = decode_ioio((0x1f0 << 16) | (2 << 4) | 8 | 4 | 1);
        assert_eq!(
            (io.port, io.size, io.write, io.string, io.rep),
            (0x1f0, 2, false, true, true)
        );
    }

    #[test]
    fn ioio_dword_size_and_qemu_zero_address_size_bits() {
        let io = decode_ioio((0xcfc << 16) | (4 << 4) | 1);
        assert_eq!((io.size, io.write), (4, false));
    }

    #[test]
    fn npf_write_to_a_missing_page() {
        let npf = decode_npf((1 << 32) | 2 | 4);
        assert!(npf.write && npf.user && !npf.present && !npf.fetch && npf.final_translation);
    }

    #[test]
    fn npf_instruction_fetch_during_a_guest_table_walk() {
        let npf = decode_npf((1 << 33) | 16 | 1);
        assert!(npf.fetch && npf.present && !npf.final_translation);
    }

    #[test]
    fn exit_codes_decode_to_neutral_exits() {
        assert_eq!(decode_exit(code::CPUID, 0, 0), VmExit::Cpuid);
        assert_eq!(decode_exit(code::VINTR, 0, 0), VmExit::InterruptWindow);
        assert_eq!(decode_exit(code::INTR, 0, 0), VmExit::ExternalInterrupt);
        assert_eq!(decode_exit(code::MSR, 1, 0), VmExit::Msr { write: true });
        assert_eq!(
            decode_exit(code::NPF, 2, 0x2000_0000),
            VmExit::NestedPageFault {
                gpa: 0x2000_0000,
                write: true,
                fetch: false
            }
        );
        assert_eq!(
            decode_exit(code::EXCP_BASE + 14, 4, 0xdead_b000),
            VmExit::Exception {
                vector: 14,
                error: Some(4),
                cr2: 0xdead_b000
            }
        );
        assert_eq!(
            decode_exit(code::EXCP_BASE + 6, 4, 5),
            VmExit::Exception {
                vector: 6,
                error: None,
                cr2: 0
            }
        );
        assert_eq!(decode_exit(0x6e, 0, 0), VmExit::Unknown(0x6e));
    }

    #[test]
    fn io_exit_carries_the_next_rip_from_exitinfo2() {
        let e = decode_exit(code::IOIO, (0x80 << 16) | (1 << 4), 0x1234);
        assert!(matches!(
            e,
            VmExit::Io {
                port: 0x80,
                next_rip: 0x1234,
                ..
            }
        ));
    }

    #[test]
    fn insn_len_comes_from_next_rip_with_nrips() {
        assert_eq!(insn_len(true, code::CPUID, 0x1000, 0x1002), Some(2));
        assert_eq!(insn_len(true, code::VMMCALL, 0x1000, 0x1003), Some(3));
    }

    #[test]
    fn insn_len_is_left_to_the_decoder_without_nrips() {
        assert_eq!(insn_len(false, code::CPUID, 0x1000, 0x1002), None);
    }

    #[test]
    fn insn_len_is_left_to_the_decoder_for_non_instruction_exits() {
        assert_eq!(insn_len(true, code::NPF, 0x1000, 0x1002), None);
        assert_eq!(insn_len(true, code::INTR, 0x1000, 0x1002), None);
    }

    #[test]
    fn insn_len_rejects_an_implausible_next_rip() {
        assert_eq!(insn_len(true, code::HLT, 0x1000, 0), None);
        assert_eq!(insn_len(true, code::HLT, 0x1000, 0x1000), None);
        assert_eq!(insn_len(true, code::HLT, 0x1000, 0x1010), None);
    }

    #[test]
    fn insn_len_across_the_top_of_the_address_space() {
        assert_eq!(insn_len(true, code::HLT, u64::MAX, 0), Some(1));
    }

    #[test]
    fn a_posted_vector_is_v_irq_with_its_vector_and_keeps_v_intr_masking() {
        let masking = 1 << 24;
        let posted = vintr_post(masking | (0x31 << 32), 0xf3);
        assert_eq!(posted, masking | VINTR_WINDOW | (0xf3 << 32));
        assert_eq!(vintr_posted(posted), Some(0xf3));
        // Delivered (the CPU cleared V_IRQ) or withdrawn: nothing posted.
        assert_eq!(vintr_posted(posted & !(1 << 8)), None);
        assert_eq!(vintr_posted(vintr_window(posted, false)), None);
        assert_eq!(vintr_window(posted, false) & (1 << 24), 1 << 24);
    }

    #[test]
    fn window_sets_v_irq_with_top_priority_and_keeps_v_intr_masking() {
        let masking = 1 << 24;
        let on = vintr_window(masking, true);
        assert_eq!(on, masking | (1 << 8) | (0xf << 16) | (1 << 20));
        assert_eq!(vintr_window(on, false), masking);
    }
}
