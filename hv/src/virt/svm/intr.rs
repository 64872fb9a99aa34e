//! External interrupts for an SVM guest: whether one can be injected now,
//! injecting it through EVENTINJ, posting it as the guest's virtual
//! interrupt (V_IRQ with its vector: delivered when the guest enables
//! interrupts, without an exit), and the interrupt window: a virtual
//! interrupt whose acceptance the VINTR intercept turns into an exit.
//! V_INTR_MASKING stays on throughout, so the guest's RFLAGS.IF masks only
//! virtual interrupts and the host's IF physical ones.

use super::vmcb::intercept;
use super::SvmVcpu;
use hv::hvm::event::{self, Event};
use hv::hvm::intr::{self as logic, Interruptibility};
use hv::hvm::svm::{vintr_post, vintr_posted, vintr_window};

impl SvmVcpu {
    /// RFLAGS, the interrupt shadow and whether an event is queued.
    fn interruptibility(&self) -> Interruptibility {
        let b = self.vmcb();
        Interruptibility {
            rflags: b.save.rflags,
            shadow: logic::svm_shadow(b.control.interrupt_shadow),
            event_queued: b.control.event_inject & u64::from(event::VALID) != 0,
        }
    }

    /// Whether an external interrupt can be injected at the next entry.
    pub fn can_take_interrupt(&self) -> bool {
        self.interruptibility().can_take_interrupt()
    }

    /// Queues external interrupt `vector` for the next entry.
    pub fn inject_interrupt(&mut self, vector: u8) {
        let protected = self.vmcb().save.cr0 & 1 != 0;
        self.vmcb_mut().control.event_inject =
            event::svm_eventinj(Event::Interrupt(vector), protected);
    }

    /// Posts `vector` as the guest's virtual interrupt: the CPU delivers
    /// it as soon as the guest can take it, with no exit (an interrupt
    /// window request is replaced).
    pub fn post_interrupt(&mut self, vector: u8) {
        let c = &mut self.vmcb_mut().control;
        c.vintr = vintr_post(c.vintr, vector);
        c.intercept_misc1 &= !intercept::VINTR;
        self.dirty |= super::clean::TPR | super::clean::INTERCEPTS;
    }

    /// The vector posted with [`Self::post_interrupt`] that the guest has
    /// not taken yet.
    pub fn posted_interrupt(&self) -> Option<u8> {
        let c = &self.vmcb().control;
        if c.intercept_misc1 & intercept::VINTR != 0 {
            return None; // an interrupt window, not a posted vector
        }
        vintr_posted(c.vintr)
    }

    /// With `on`, the next run exits with `InterruptWindow` as soon as the
    /// guest can take an interrupt; `false` withdraws the request.
    pub fn request_interrupt_window(&mut self, on: bool) {
        let c = &mut self.vmcb_mut().control;
        c.vintr = vintr_window(c.vintr, on);
        if on {
            c.intercept_misc1 |= intercept::VINTR;
        } else {
            c.intercept_misc1 &= !intercept::VINTR;
        }
        self.dirty |= super::clean::TPR | super::clean::INTERCEPTS;
    }
}
