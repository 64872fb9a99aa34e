//! When an external interrupt can be delivered to a guest: RFLAGS.IF set,
//! no interrupt shadow (the instruction after STI or MOV SS), and no other
//! event already queued for the next entry. Otherwise the caller asks the
//! backend for an interrupt-window exit and injects when it arrives.

/// RFLAGS.IF.
pub const RFLAGS_IF: u64 = 1 << 9;

/// What decides whether a guest can take an external interrupt now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Interruptibility {
    /// The guest's RFLAGS.
    pub rflags: u64,
    /// Blocking by STI or by MOV SS/POP SS (SVM's interrupt shadow, VMX's
    /// interruptibility-state bits 0 and 1).
    pub shadow: bool,
    /// An event is already queued for the next entry (SVM EVENTINJ.V, VMX
    /// VM-entry interruption information valid).
    pub event_queued: bool,
}

/// What to do with a pending external interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Inject it at the next entry.
    Inject,
    /// Run the guest with an interrupt-window exit requested.
    OpenWindow,
}

impl Interruptibility {
    /// Whether an external interrupt can be injected at the next entry.
    pub fn can_take_interrupt(&self) -> bool {
        self.rflags & RFLAGS_IF != 0 && !self.shadow && !self.event_queued
    }

    /// Inject now, or wait for the window.
    pub fn decide(&self) -> Decision {
        if self.can_take_interrupt() {
            Decision::Inject
        } else {
            Decision::OpenWindow
        }
    }
}

/// VMX guest interruptibility state: blocking by STI (bit 0) or MOV SS
/// (bit 1).
pub fn vmx_shadow(interruptibility: u64) -> bool {
    interruptibility & 3 != 0
}

/// SVM's INTERRUPT_SHADOW (bit 0 of the VMCB interrupt-state field).
pub fn svm_shadow(interrupt_state: u64) -> bool {
    interrupt_state & 1 != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(rflags: u64, shadow: bool, event_queued: bool) -> Interruptibility {
        Interruptibility {
            rflags,
            shadow,
            event_queued,
        }
    }

    #[test]
    fn interrupts_enabled_without_shadow_or_queued_event_injects() {
        assert_eq!(state(0x202, false, false).decide(), Decision::Inject);
    }

    #[test]
    fn interrupts_disabled_opens_the_window() {
        assert_eq!(state(0x002, false, false).decide(), Decision::OpenWindow);
    }

    #[test]
    fn sti_shadow_opens_the_window_even_with_if_set() {
        assert_eq!(state(0x202, true, false).decide(), Decision::OpenWindow);
    }

    #[test]
    fn an_already_queued_event_opens_the_window() {
        assert!(!state(0x202, false, true).can_take_interrupt());
        assert_eq!(state(0x202, false, true).decide(), Decision::OpenWindow);
    }

    #[test]
    fn vmx_sti_and_mov_ss_blocking_are_shadows_nmi_blocking_is_not() {
        assert!(vmx_shadow(1));
        assert!(vmx_shadow(2));
        assert!(!vmx_shadow(8));
    }

    #[test]
    fn svm_interrupt_shadow_is_bit_0_only() {
        assert!(svm_shadow(1));
        assert!(!svm_shadow(2)); // GUEST_INTERRUPT_MASK
    }
}
