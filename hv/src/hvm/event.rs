//! Event injection encodings: what goes into SVM's EVENTINJ (AMD64 APM
//! vol. 2, 15.20) and VMX's VM-entry interruption-information field (Intel
//! SDM vol. 3, 24.8.3), and which interrupted events are queued again after
//! an exit (SVM EXITINTINFO, VMX IDT-vectoring information).

/// An event to deliver to the guest at the next entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// An external (maskable) interrupt on `vector`.
    Interrupt(u8),
    /// A non-maskable interrupt.
    Nmi,
    /// A hardware exception, with its error code where the vector has one.
    Exception { vector: u8, error: Option<u32> },
}

/// Event types shared by both vendors' encodings (bits 10:8).
pub mod kind {
    pub const EXTERNAL_INTERRUPT: u32 = 0;
    pub const NMI: u32 = 2;
    pub const EXCEPTION: u32 = 3;
    pub const SOFTWARE_INTERRUPT: u32 = 4;
    /// VMX only: INT1 (ICEBP).
    pub const PRIVILEGED_SOFTWARE_EXCEPTION: u32 = 5;
    /// VMX only: INT3 and INTO.
    pub const SOFTWARE_EXCEPTION: u32 = 6;
}

/// Bit 11: an error code is delivered ([`InterruptionInfo::error_valid`]).
pub const ERROR_CODE_VALID: u32 = 1 << 11;
/// Bit 31: the event field is valid ([`InterruptionInfo::valid`]).
pub const VALID: u32 = 1 << 31;

bitfield::bitfield! {
    /// The interruption-information format both vendors share: SVM's
    /// EVENTINJ and EXITINTINFO (low 32 bits), VMX's VM-entry and VM-exit
    /// interruption information and IDT-vectoring information.
    #[derive(Clone, Copy, PartialEq, Eq, Default)]
    pub struct InterruptionInfo(pub u32);
    impl Debug;
    /// The vector.
    pub u8, vector, set_vector: 7, 0;
    /// The event type ([`kind`]).
    pub kind, set_kind: 10, 8;
    /// An error code is delivered.
    pub error_valid, set_error_valid: 11;
    /// The field is valid.
    pub valid, set_valid: 31;
}

/// Vectors whose exceptions push an error code (#DF, #TS, #NP, #SS, #GP,
/// #PF, #AC, #CP).
pub fn has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21)
}

/// The vector, type, error-code-valid and valid bits of `event` (both
/// vendors put them in the same places), and the error code to deliver.
/// An error code is delivered only for vectors that have one and only in
/// protected mode (`protected` = CR0.PE), as the hardware requires.
pub fn encode(event: Event, protected: bool) -> (u32, Option<u32>) {
    let (vector, kind, error) = match event {
        Event::Interrupt(v) => (v, kind::EXTERNAL_INTERRUPT, None),
        Event::Nmi => (2, kind::NMI, None),
        Event::Exception { vector, error } => (
            vector,
            kind::EXCEPTION,
            error.filter(|_| has_error_code(vector) && protected),
        ),
    };
    let mut info = InterruptionInfo(0);
    info.set_vector(vector);
    info.set_kind(kind);
    info.set_error_valid(error.is_some());
    info.set_valid(true);
    (info.0, error)
}

/// SVM's 64-bit EVENTINJ value for `event`: the error code in bits 63:32.
pub fn svm_eventinj(event: Event, protected: bool) -> u64 {
    let (info, error) = encode(event, protected);
    u64::from(info) | (u64::from(error.unwrap_or(0)) << 32)
}

/// VMX's VM-entry interruption information and exception error code for
/// `event`.
pub fn vmx_entry_info(event: Event, protected: bool) -> (u32, Option<u32>) {
    encode(event, protected)
}

/// The EVENTINJ value that delivers again the event an SVM exit
/// interrupted (EXITINTINFO), or `None` when there is nothing to queue.
///
/// Software interrupts (INTn) and the #BP/#OF of INT3/INTO are not queued:
/// without next-RIP save the return address they push cannot be known, and
/// the guest's RIP still points at the instruction, which raises them again
/// when it runs again.
pub fn svm_reinject(exitintinfo: u64) -> Option<u64> {
    let info = InterruptionInfo(exitintinfo as u32);
    if !info.valid() {
        return None;
    }
    let vector = info.vector();
    match info.kind() {
        kind::SOFTWARE_INTERRUPT => None,
        kind::EXCEPTION if matches!(vector, 3 | 4) => None,
        kind::EXTERNAL_INTERRUPT | kind::NMI | kind::EXCEPTION => {
            // Bits 30:12 are reserved in EVENTINJ.
            Some(exitintinfo & !0x7fff_f000)
        }
        _ => None,
    }
}

/// What VMX needs to deliver again the event an exit interrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmxReinject {
    /// The VM-entry interruption information.
    pub info: u32,
    /// Copy the IDT-vectoring error code into the entry error code.
    pub error_code: bool,
    /// Copy the exit instruction length into the entry instruction length
    /// (software interrupts and exceptions push the next instruction's
    /// address).
    pub insn_len: bool,
}

/// The VM-entry fields that deliver again the event described by the
/// IDT-vectoring information `idt_info`, or `None` if it is not valid.
pub fn vmx_reinject(idt_info: u32) -> Option<VmxReinject> {
    let info = InterruptionInfo(idt_info);
    if !info.valid() {
        return None;
    }
    Some(VmxReinject {
        // Vector, type, error-code-valid and valid; bits 30:12 must be 0.
        info: idt_info & 0x8000_0fff,
        error_code: info.error_valid(),
        insn_len: matches!(
            info.kind(),
            kind::SOFTWARE_INTERRUPT
                | kind::PRIVILEGED_SOFTWARE_EXCEPTION
                | kind::SOFTWARE_EXCEPTION
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_interrupt_is_type_0_with_the_vector_and_valid_bit() {
        assert_eq!(encode(Event::Interrupt(0xf3), true), (0x8000_00f3, None));
        assert_eq!(svm_eventinj(Event::Interrupt(0x20), true), 0x8000_0020);
        assert_eq!(
            vmx_entry_info(Event::Interrupt(0x20), false),
            (0x8000_0020, None)
        );
    }

    #[test]
    fn gp_in_protected_mode_carries_its_error_code() {
        let gp = Event::Exception {
            vector: 13,
            error: Some(0x18),
        };
        assert_eq!(encode(gp, true), (0x8000_0b0d, Some(0x18)));
        assert_eq!(svm_eventinj(gp, true), 0x0000_0018_8000_0b0d);
    }

    #[test]
    fn error_code_is_dropped_in_real_mode_and_for_vectors_without_one() {
        let gp = Event::Exception {
            vector: 13,
            error: Some(0),
        };
        assert_eq!(encode(gp, false), (0x8000_030d, None));
        let ud = Event::Exception {
            vector: 6,
            error: Some(0),
        };
        assert_eq!(encode(ud, true), (0x8000_0306, None));
    }

    #[test]
    fn nmi_is_type_2_vector_2() {
        assert_eq!(encode(Event::Nmi, true), (0x8000_0202, None));
    }

    #[test]
    fn error_code_vectors_are_df_ts_np_ss_gp_pf_ac_cp() {
        let with: Vec<u8> = (0..32).filter(|&v| has_error_code(v)).collect();
        assert_eq!(with, [8, 10, 11, 12, 13, 14, 17, 21]);
    }

    #[test]
    fn svm_reinjects_an_interrupted_external_interrupt() {
        assert_eq!(svm_reinject(0x8000_0041), Some(0x8000_0041));
    }

    #[test]
    fn svm_reinjects_a_page_fault_with_its_error_code_and_clears_reserved_bits() {
        let info = (0x6u64 << 32) | 0x8000_0b0e | (1 << 20);
        assert_eq!(svm_reinject(info), Some((0x6 << 32) | 0x8000_0b0e));
    }

    #[test]
    fn svm_does_not_reinject_software_interrupts_or_int3() {
        assert_eq!(svm_reinject(0x8000_0480), None); // int 0x80
        assert_eq!(svm_reinject(0x8000_0303), None); // int3
        assert_eq!(svm_reinject(0x8000_0304), None); // into
    }

    #[test]
    fn nothing_is_reinjected_without_the_valid_bit() {
        assert_eq!(svm_reinject(0x0000_0b0e), None);
        assert_eq!(vmx_reinject(0x0000_0b0e), None);
    }

    #[test]
    fn vmx_reinjects_a_software_interrupt_with_the_instruction_length() {
        let r = vmx_reinject(0x8000_0480).unwrap();
        assert_eq!(
            r,
            VmxReinject {
                info: 0x8000_0480,
                error_code: false,
                insn_len: true
            }
        );
    }

    #[test]
    fn vmx_reinjects_a_page_fault_with_its_error_code() {
        let r = vmx_reinject(0x8000_0b0e | (1 << 12)).unwrap();
        assert_eq!(r.info, 0x8000_0b0e);
        assert!(r.error_code && !r.insn_len);
    }
}
