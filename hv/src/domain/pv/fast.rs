//! The hypervisor's side of the fast path (`hv::pv::fast`): what it
//! publishes to the stub before an entry, what it takes back after an exit,
//! and the exits the vCPU takes inside the stub (a forward, or a fault on
//! guest memory), which roll it back to just after its SYSCALL and take the
//! slow path.

use super::super::{Domain, Ending};
use super::stub;
use crate::virt::VmExit;
use alloc::format;
use alloc::string::String;
use hv::hub::Hub;
use hv::pv::abi::vmasst;
use hv::pv::bounce::Regs;
use hv::pv::fast::{self, off, Counters, Published, Saved};
use vmm_glue::log;

/// Whether PV domains get the fast path (`pv.fast=off` on the hypervisor's
/// command line turns it off: every system call and `iret` then exits).
static ENABLED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(true);

pub fn set_enabled(on: bool) {
    ENABLED.store(on, core::sync::atomic::Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(core::sync::atomic::Ordering::Relaxed)
}

impl Domain {
    /// Before an entry: the PV state the stub works from, and the inactive
    /// GS base into the vCPU.
    pub(in crate::domain) fn pv_publish(&mut self) {
        let info = self.vcpu_info_gpa(self.vcpus.cur);
        let one_vcpu = self.nr_vcpus() == 1;
        let Some(v) = self.xen.cpu.pv.as_deref() else {
            return;
        };
        let Some(pv) = self.pv.as_mut() else {
            return;
        };
        let shared = self.xen.shared.gpa;
        // Under the FIFO ABI the stub has no bitmaps to look at but the
        // vCPU's control block and the first event array page.
        let fifo = self.xen.fifo.as_deref();
        let control = fifo.and_then(|f| f.control(self.vcpus.cur));
        let words = fifo.and_then(|f| f.pages().first().copied());
        let (control, words) = match (control, words) {
            (Some(c), Some(w)) => (Some(c), Some(w)),
            _ => (None, None),
        };
        let moved = pv.area.map_vcpu_info(info.map(|g| g & !0xfff))
            | pv.area.map_fifo(control.map(|g| g & !0xfff), words);
        if pv.area.map_shared(shared) | moved {
            self.vcpu.flush_tlb();
        }
        let p = Published {
            kernel_mode: v.kernel_mode,
            kernel_cr3: v.roots.kernel.map_or(0, |m| m << 12),
            user_cr3: v.roots.user.map_or(0, |m| m << 12),
            kernel_sp: v.kernel_sp,
            kernel_ss: v.kernel_ss,
            syscall: v.callbacks.syscall.address,
            syscall_masks: v.callbacks.syscall.mask_events,
            event: v.callbacks.event.address,
            vcpu_info: info.map_or(0, |g| fast::page::VCPU_INFO + (g & 0xfff)),
            version: (super::super::xen::VERSION.0 << 16) | super::super::xen::VERSION.1,
            // With the architectural IOPL assist an `iret` changes the
            // virtual IOPL, which only the slow path tracks.
            enabled: enabled()
                && one_vcpu
                && pv.vm_assist & (1 << vmasst::TYPE_ARCHITECTURAL_IOPL) == 0,
            cs_ok: v.cs_ok,
            ss_ok: v.ss_ok,
            shared: shared
                .filter(|_| fifo.is_none())
                .map_or(0, |_| fast::page::SHARED_INFO),
            fifo_control: control.map_or(0, |g| fast::page::FIFO_CONTROL + (g & 0xfff)),
            fifo_words: words.map_or(0, |_| fast::page::FIFO_WORDS),
        };
        for (o, w) in p.words() {
            pv.area.fast_write(o, w);
        }
        let gs = v.shadow_gs;
        self.vcpu.set_kernel_gs_base(gs);
    }

    /// After an exit: the mode, inactive GS base and kernel stack the stub
    /// may have switched.
    pub(in crate::domain) fn pv_sync(&mut self) {
        let Some((kernel, sp, ss)) = self.pv.as_ref().map(|p| {
            let read = |o| p.area.fast_read(o);
            (read(off::KMODE) != 0, read(off::KSP), read(off::KSS) as u16)
        }) else {
            return;
        };
        let gs = self.vcpu.kernel_gs_base();
        if let Some(v) = self.pvv_mut() {
            v.kernel_mode = kernel;
            v.shadow_gs = gs;
            v.kernel_sp = sp;
            v.kernel_ss = ss;
        }
    }

    /// What the stub handled, as it counted it.
    pub fn pv_fast_counters(&self) -> Option<Counters> {
        let pv = self.pv.as_ref()?;
        Some(Counters::read(|o| pv.area.fast_read(o)))
    }

    /// Whether a host interrupt that left the vCPU at CPL 0 in the stub
    /// must roll it back: between its event check and the end of its
    /// event commit (`stub::events_offset`, `stub::committed_offset`),
    /// since the events the hypervisor raises with the interrupt must not
    /// meet an upcall the stub decided to leave out before them. Before
    /// the check nothing about events is decided (and a rollback could
    /// not be made there: on the first instructions it would restore an
    /// earlier entry's registers, in `set_segment_base` a GS selector
    /// loaded without the kernel's base put back); after the commit the
    /// stub finishes.
    pub(in crate::domain) fn pv_stub_deciding(&self) -> bool {
        let at = self.vcpu.rip().wrapping_sub(fast::page::CODE);
        (stub::events_offset()..stub::committed_offset()).contains(&at)
    }

    /// After an exit that left the vCPU in the stub (`in_stub`, resumed
    /// there) past its event commit, returning to a context with events
    /// enabled: an upcall that became pending with that exit is delivered
    /// at the exit asked for here, as soon as the guest runs again. (Before
    /// the commit the stub sees such an upcall itself; a context with
    /// events masked sees it when it enables them.) Out of the stub the
    /// request is withdrawn if still on.
    pub(in crate::domain) fn pv_upcall_window(&mut self, in_stub: bool) {
        let cur = self.vcpus.cur;
        let want = in_stub
            && self.vcpu.rip().wrapping_sub(fast::page::CODE) >= stub::committed_offset()
            && self
                .pv
                .as_ref()
                .is_some_and(|p| p.area.fast_read(off::T_MASK) == 0)
            && self.upcall_pending(cur);
        let Some(v) = self.pvv_mut() else {
            return;
        };
        if v.upcall_window != want {
            v.upcall_window = want;
            self.vcpu.request_interrupt_window(want);
        }
    }

    /// An exit at CPL 0, inside the stub: its forward, a fault on guest
    /// memory, or (`interrupted`) a host interrupt while it decided about
    /// events (`Self::pv_stub_deciding`), counted by the caller. The vCPU goes back to just after its SYSCALL
    /// and the slow path handles it: the hypercall from kernel mode, the
    /// system call from user mode.
    pub(in crate::domain) fn pv_stub_exit(
        &mut self,
        exit: VmExit,
        hub: &mut Hub,
        interrupted: bool,
    ) -> Option<Ending> {
        let rip = self.vcpu.rip();
        if !(fast::page::CODE..fast::page::CODE + 4096).contains(&rip) {
            return self.destroy(format!(
                "{exit:?} at CPL 0 outside the fast-path stub (rip {rip:#x})"
            ));
        }
        if rip == fast::page::CODE + stub::iretq_offset() {
            // Past the commit; the stub returns only to a CS and SS known to
            // load and a canonical RIP, so this is not the guest's doing.
            return self.destroy(format!(
                "{exit:?} at the fast-path stub's return (rip {rip:#x})"
            ));
        }
        let forwarded =
            matches!(exit, VmExit::Hypercall) && rip == fast::page::CODE + stub::forward_offset();
        if interrupted {
            self.exits.stub_interrupts += 1;
        } else if !forwarded {
            log::trace!(
                "d{} pv: {exit:?} in the fast-path stub at {rip:#x}",
                self.id
            );
            self.exits.stub_faults += 1;
        }
        let Some(saved) = self
            .pv
            .as_ref()
            .map(|p| Saved::read(|o| p.area.fast_read(o)))
        else {
            return self.destroy(String::from("PV state missing"));
        };
        let r = fast::rollback(&saved);
        if self.vcpu.cr3() != r.cr3 {
            self.vcpu.set_cr3(r.cr3);
        }
        self.vcpu.set_rax(r.rax);
        {
            let g = self.vcpu.regs();
            g.rdx = r.rdx;
            g.rsi = r.rsi;
            g.rdi = r.rdi;
        }
        let back = Regs {
            rip: r.rip,
            cs: r.cs,
            rflags: r.rflags,
            rsp: r.rsp,
            ss: r.ss,
            rcx: r.rcx,
            r11: r.r11,
        };
        if let Err(e) = self.pv_load(&back) {
            return self.destroy(format!("cannot return from the fast-path stub: {e}"));
        }
        // One exit, counted once: a forwarded hypercall as a hypercall; a
        // forwarded system call, or the stub's fault, as an exception; a
        // host interrupt as one (by the caller).
        let kernel = self.pvv().is_some_and(|v| v.kernel_mode);
        if !interrupted {
            if forwarded && kernel {
                self.exits.hypercall += 1;
            } else {
                self.exits.exception += 1;
            }
        }
        if kernel {
            self.hypercall(hub)
        } else {
            self.pv_syscall(r.rip, r.rflags)
        }
    }
}
