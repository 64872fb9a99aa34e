//! Event delivery for one domain: its shared info page (kept by the
//! hypervisor until the guest places it in its RAM), the effects of event
//! channel operations applied to it, the callback-vector upcall, waiting
//! (block, poll, HLT) and waking, and the backends the hypervisor runs for
//! it (xenstore, PV console).

use super::space::GuestSpace;
use super::state::XenState;
use super::Domain;
use alloc::boxed::Box;
use alloc::vec::Vec;
use hv::evtchn::shared::{SharedPage, VcpuInfoAt};
use hv::evtchn::{Effect, Port};
use hv::hub::{effect_domain, Backend, Hub, DOM0};
use vmm_glue::xen::shared_info::{VCPU_INFO_SIZE, VCPU_INFO_UPCALL_PENDING};

/// Xenstore requests handled per notification (bounded work per exit).
const XENSTORE_BUDGET: u32 = 64;
/// Console bytes moved per notification.
const CONSOLE_BUDGET: usize = 4096;

/// What the vCPU waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Nothing: it runs.
    Running,
    /// `SCHEDOP_block` or HLT: an upcall (an event pending for it).
    Event,
    /// `SCHEDOP_poll`: one of `ports` pending, or system time `deadline`.
    Poll {
        ports: Vec<Port>,
        deadline: Option<u64>,
        /// The vCPU polled with interrupts enabled: a pending upcall ends
        /// the poll too (with them disabled it cannot be delivered, and
        /// Xen keeps polling).
        upcall_ends: bool,
    },
}

/// The shared info page: the hypervisor's copy until the guest places it
/// (`XENMEM_add_to_physmap`), then the guest's RAM page at `gpa`.
#[derive(Debug)]
pub struct SharedInfo {
    pub gpa: Option<u64>,
    shadow: Box<[u8; 4096]>,
}

impl SharedInfo {
    pub fn new() -> Self {
        Self {
            gpa: None,
            shadow: Box::new([0; 4096]),
        }
    }

    /// The page at `gpa` from the start (a PV domain's, whose machine
    /// address its start info names).
    pub fn placed(gpa: u64) -> Self {
        Self {
            gpa: Some(gpa),
            shadow: Box::new([0; 4096]),
        }
    }
}

/// Places the shared info page of a domain with Xen state `xen` at
/// guest-physical `gpa` of `space` (RAM): its current contents move there.
pub(super) fn place_shared_info(xen: &mut XenState, space: &mut GuestSpace, gpa: u64) -> bool {
    let mut page = [0u8; 4096];
    match xen.shared.gpa {
        None => page = *xen.shared.shadow,
        Some(old) => {
            let _ = space.with_page_mut(old, |p| page = *p);
        }
    }
    if space.write(gpa, &page).is_err() {
        return false;
    }
    xen.shared.gpa = Some(gpa);
    true
}

impl XenState {
    /// Runs `f` on the shared info page (in place in guest memory `mem`
    /// once the guest placed it there).
    pub(super) fn with_shared<R>(
        &mut self,
        mem: &mut GuestSpace,
        f: impl FnOnce(&mut [u8; 4096]) -> R,
    ) -> Option<R> {
        match self.shared.gpa {
            None => Some(f(&mut self.shared.shadow)),
            Some(gpa) => mem.with_page_mut(gpa, f),
        }
    }
}

impl Domain {
    /// Runs `f` on the shared info page ([`XenState::with_shared`]).
    #[link_section = ".text.hot"]
    pub(super) fn with_shared<R>(&mut self, f: impl FnOnce(&mut [u8; 4096]) -> R) -> Option<R> {
        self.xen.with_shared(&mut self.mem, f)
    }

    /// Where vCPU `k`'s `vcpu_info` is in guest memory, if the guest can
    /// see it: registered, or slot `k` of the placed shared info page.
    #[link_section = ".text.hot"]
    pub(super) fn vcpu_info_gpa(&self, k: u32) -> Option<u64> {
        let x = self.xen_of(k)?;
        x.vcpu_info.or_else(|| {
            let gpa = self.xen.shared.gpa?;
            (k < 32).then(|| gpa + u64::from(k) * VCPU_INFO_SIZE as u64)
        })
    }

    /// Applies one effect on this domain's page (and the notified vCPU's
    /// `vcpu_info`), or on its FIFO queues once it switched to that ABI
    /// (`fifo.rs`): the one place every raised event reaches a guest.
    /// `true` if that vCPU must get an upcall.
    #[link_section = ".text.hot"]
    fn apply_own(&mut self, e: Effect) -> bool {
        if self.xen.fifo.is_some() {
            return self.apply_fifo(e);
        }
        let vcpu = match e {
            Effect::SetPending { vcpu, .. } | Effect::Unmask { vcpu, .. } => vcpu,
            Effect::ClearPending { .. } => 0,
        };
        let Some(x) = self.xen_of(vcpu) else {
            return false;
        };
        let registered = x.vcpu_info;
        let mut info = [0u8; VCPU_INFO_SIZE];
        if let Some(gpa) = registered {
            if self.mem.read(gpa, &mut info).is_err() {
                return false;
            }
        }
        let upcall = self.with_shared(|page| {
            let Ok(mut sp) = SharedPage::new(page) else {
                return false;
            };
            let at = || match registered {
                Some(_) => None,
                None => Some(VcpuInfoAt::Legacy(vcpu)),
            };
            let r = match e {
                Effect::SetPending { port, .. } => match at() {
                    Some(v) => sp.set_pending(port, v),
                    None => sp.set_pending(port, VcpuInfoAt::Registered(&mut info)),
                },
                Effect::Unmask { port, .. } => match at() {
                    Some(v) => sp.unmask(port, v),
                    None => sp.unmask(port, VcpuInfoAt::Registered(&mut info)),
                },
                Effect::ClearPending { port, .. } => sp.clear_pending(port).map(|()| false),
            };
            r.unwrap_or(false)
        });
        if let Some(gpa) = registered {
            let _ = self.mem.write(gpa, &info);
        }
        upcall.unwrap_or(false)
    }

    /// Takes the registry's queued effects: this domain's are applied now,
    /// domain 0's go to the backends (this domain's served at once, the
    /// others' marked for service), the rest wait in [`Hub::pending`].
    #[link_section = ".text.hot"]
    pub(super) fn apply_effects(&mut self, hub: &mut Hub) {
        // Serving a backend can queue more effects (its notification back).
        // The effects are taken into this domain's buffer and read from it
        // in place (no buffer taken out and put back, dropped each round).
        for _round in 0..4 {
            hub.evtchn.swap_effects(&mut self.effect_buf);
            if self.effect_buf.is_empty() {
                return;
            }
            for i in 0..self.effect_buf.len() {
                let Some(&e) = self.effect_buf.get(i) else {
                    break;
                };
                let dom = effect_domain(&e);
                if dom == self.id {
                    self.apply_own(e);
                } else if dom == DOM0 {
                    if let Effect::SetPending { port, .. } = e {
                        match hub.backend_of(port) {
                            Some(
                                b @ (Backend::Xenstore(d) | Backend::Console(d) | Backend::Pci(d)),
                            ) if d == self.id => self.serve(hub, b),
                            Some(Backend::Xenstore(d) | Backend::Console(d) | Backend::Pci(d)) => {
                                hub.service.insert(d);
                            }
                            None => {}
                        }
                    }
                } else {
                    hub.pending.push(e);
                }
            }
        }
    }

    /// Before this domain runs: raises its due timers, applies what other
    /// domains left for it and serves its backends if asked to (or if
    /// watch events wait for it).
    pub fn sync(&mut self, hub: &mut Hub, now: u64) {
        self.fire_timers(hub, now);
        if hub.pending.iter().any(|e| effect_domain(e) == self.id) {
            let (mine, rest): (Vec<Effect>, Vec<Effect>) = core::mem::take(&mut hub.pending)
                .into_iter()
                .partition(|e| effect_domain(e) == self.id);
            hub.pending = rest;
            for e in mine {
                self.apply_own(e);
            }
        }
        let watch = hv::xenstore::conn::has_pending_events(&hub.xs, self.id);
        if hub.service.remove(&self.id) || watch {
            self.serve(hub, Backend::Xenstore(self.id));
            self.serve(hub, Backend::Console(self.id));
            self.serve(hub, Backend::Pci(self.id));
        }
        self.pci_sync(hub);
        self.apply_effects(hub);
    }

    /// Lets backend `b` of this domain look at its ring.
    #[link_section = ".text.hot"]
    fn serve(&mut self, hub: &mut Hub, b: Backend) {
        match b {
            Backend::Xenstore(_) => self.serve_xenstore(hub),
            Backend::Console(_) => self.serve_console(hub),
            Backend::Pci(_) => self.serve_pci(hub),
        }
    }

    fn serve_xenstore(&mut self, hub: &mut Hub) {
        // In place: the ring page is neither copied in nor written back
        // whole on every request.
        let conn = &mut self.xen.xs_conn;
        let Some(done) = self.mem.with_page_mut(self.xen.store_gpa, |page| {
            conn.service(&mut hub.xs, page, XENSTORE_BUDGET)
        }) else {
            return;
        };
        if let Some(why) = done.broken {
            self.log_guest(alloc::format!("xenstore ring broken: {why}"));
        }
        if done.notify {
            hub.notify(Backend::Xenstore(self.id));
        }
        if self.xen.xs_conn.has_output() {
            hub.service.insert(self.id);
        }
    }

    fn serve_console(&mut self, hub: &mut Hub) {
        let mut out = Vec::new();
        let Some(drained) = self.mem.with_page_mut(self.xen.console_gpa, |page| {
            hv::pvconsole::drain(page, CONSOLE_BUDGET, |b| out.push(b))
        }) else {
            return;
        };
        for b in out {
            self.line_byte(hv::pvconsole::Source::Ring, b);
        }
        if let Some(bad) = drained.hostile {
            self.log_guest(alloc::format!(
                "console ring indices out of range (cons {:#x}, prod {:#x}): ring emptied",
                bad.cons,
                bad.prod
            ));
        }
        if drained.notify {
            hub.notify(Backend::Console(self.id));
        }
    }

    /// Offers `bytes` typed on the serial line to the guest's PV console
    /// (its `in` ring), notifying it; returns how many it took (the rest
    /// waits for room).
    pub fn console_input(&mut self, hub: &mut Hub, bytes: &[u8]) -> usize {
        if bytes.is_empty() {
            return 0;
        }
        let Some(pushed) = self.mem.with_page_mut(self.xen.console_gpa, |page| {
            hv::pvconsole::push_input(page, bytes)
        }) else {
            return 0;
        };
        if pushed.notify {
            hub.notify(Backend::Console(self.id));
        }
        pushed.taken
    }

    /// Whether vCPU `k`'s `evtchn_upcall_pending` is set.
    #[link_section = ".text.hot"]
    pub(super) fn upcall_pending(&self, k: u32) -> bool {
        let Some(gpa) = self.vcpu_info_gpa(k) else {
            return false;
        };
        let mut b = [0u8; 1];
        self.mem
            .read(gpa + VCPU_INFO_UPCALL_PENDING as u64, &mut b)
            .is_ok()
            && b[0] != 0
    }

    /// Whether port `port` is pending in the shared info page.
    pub(super) fn port_pending(&mut self, port: Port) -> bool {
        if self.uses_fifo() {
            return self.fifo_pending(port);
        }
        self.with_shared(|p| {
            SharedPage::new(p)
                .and_then(|sp| sp.is_pending(port))
                .unwrap_or(false)
        })
        .unwrap_or(false)
    }

    /// Injects the callback vector when an upcall is pending and the vCPU
    /// can take it; when it cannot (interrupts off), posts it for the CPU
    /// to deliver when the guest turns them on, with no exit (SVM), or
    /// asks for an exit when it can (VMX). The local APIC's pending
    /// self-IPIs come after the upcall, through an exit when the guest can
    /// take them (the local APIC must see each accepted).
    pub(super) fn deliver_upcall(&mut self) {
        if self.is_pv() {
            // A PV guest takes events through its event callback.
            return;
        }
        let upcall = self
            .xen
            .callback_vector
            .filter(|_| self.upcall_pending(self.vcpus.cur));
        let lapic = self.xen.cpu.lapic.deliverable();
        let mut posted = self.vcpu.posted_interrupt();
        if posted.is_some() && posted != upcall {
            // The guest saw to its events with interrupts off: the posted
            // upcall has nothing left to say.
            self.vcpu.request_interrupt_window(false);
            posted = None;
        }
        let Some(vector) = upcall.or(lapic) else {
            return;
        };
        if self.vcpu.can_take_interrupt() {
            if posted.is_some() {
                self.vcpu.request_interrupt_window(false);
            }
            self.vcpu.inject_interrupt(vector);
            if upcall.is_none() {
                self.xen.cpu.lapic.accept(vector);
            } else if posted != upcall {
                self.exits.upcalls += 1;
            }
        } else if lapic.is_none() && (posted == upcall || self.vcpu.post_interrupt(vector)) {
            if posted != upcall {
                self.exits.upcalls += 1;
            }
        } else {
            self.vcpu.request_interrupt_window(true);
        }
    }
}
