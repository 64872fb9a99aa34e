//! External interrupts for a VMX guest: whether one can be injected now,
//! injecting it through the VM-entry interruption information, and
//! interrupt-window exiting (primary processor-based control bit 2).

use super::vmcs::{self, proc};
use super::{vmread, vmwrite, VmxVcpu};
use hv::hvm::event::{self, Event};
use hv::hvm::intr::{self as logic, Interruptibility};
use vmm_glue::log;

impl VmxVcpu {
    /// RFLAGS, STI/MOV SS blocking and whether an event is queued.
    fn interruptibility(&self) -> Interruptibility {
        Interruptibility {
            rflags: vmread(vmcs::GUEST_RFLAGS),
            shadow: logic::vmx_shadow(vmread(vmcs::GUEST_INTERRUPTIBILITY)),
            event_queued: vmread(vmcs::ENTRY_INTERRUPTION_INFO) & u64::from(event::VALID) != 0,
        }
    }

    /// Whether an external interrupt can be injected at the next entry.
    pub fn can_take_interrupt(&self) -> bool {
        self.make_current();
        self.interruptibility().can_take_interrupt()
    }

    /// Queues external interrupt `vector` for the next entry.
    pub fn inject_interrupt(&mut self, vector: u8) {
        self.make_current();
        self.inject(Event::Interrupt(vector));
    }

    /// VMX here has no virtual interrupt to post one with (virtual-interrupt
    /// delivery needs APIC virtualisation, which is not used): always
    /// `false`, and the caller asks for an interrupt window instead.
    pub fn post_interrupt(&mut self, _vector: u8) -> bool {
        false
    }

    /// With `on`, the next run exits with `InterruptWindow` as soon as the
    /// guest can take an interrupt; `false` withdraws the request. On a CPU
    /// without interrupt-window exiting the request is logged and ignored.
    pub fn request_interrupt_window(&mut self, on: bool) {
        self.make_current();
        if !self.interrupt_window {
            if on {
                log::warn!("vmx: this CPU has no interrupt-window exiting");
            }
            return;
        }
        let controls = vmread(vmcs::PROC_CONTROLS);
        let bit = u64::from(proc::INTERRUPT_WINDOW_EXITING);
        let want = if on { controls | bit } else { controls & !bit };
        if want != controls {
            vmwrite(vmcs::PROC_CONTROLS, want);
        }
    }
}
