//! Several vCPUs in one domain.
//!
//! The design keeps the one-vCPU code paths as they were: the vCPU that
//! runs now is `Domain::vcpu` with its Xen state in `Domain::xen.cpu`, and
//! every other vCPU is parked in `Domain::parked[index]` with its own Xen
//! state (the slot of the current one is empty). Switching swaps the two.
//! Exits and hypercalls act on the current vCPU; what can concern another
//! one (an event for its `vcpu_info`, its timers, an IPI, whether it can
//! run, `vcpu_op` on it) goes through [`Domain::xen_of`] and friends by
//! index. Each vCPU has its own VMCB or VMCS and ASID or VPID; the nested
//! page tables are the domain's.
//!
//! The domain is one schedulable unit: [`Domain::runnable`] picks its next
//! runnable vCPU round-robin after the current one, and a slice runs that
//! vCPU.

use super::events::Wait;
use super::state::VcpuXen;
use super::{Domain, Ending};
use crate::virt::Vcpu;
use hv::ipi::{self, Action};
use vmm_glue::log;

/// A vCPU that does not run now, with its Xen state.
#[derive(Debug)]
pub struct Parked {
    pub vcpu: Vcpu,
    pub xen: VcpuXen,
}

impl Domain {
    /// How many vCPUs the domain has.
    pub fn nr_vcpus(&self) -> u32 {
        self.parked.len() as u32
    }

    /// vCPU `k`'s Xen state (`None` for an index out of range).
    pub(super) fn xen_of(&self, k: u32) -> Option<&VcpuXen> {
        if k == self.cur {
            return Some(&self.xen.cpu);
        }
        self.parked.get(k as usize)?.as_ref().map(|p| &p.xen)
    }

    pub(super) fn xen_of_mut(&mut self, k: u32) -> Option<&mut VcpuXen> {
        if k == self.cur {
            return Some(&mut self.xen.cpu);
        }
        self.parked
            .get_mut(k as usize)?
            .as_mut()
            .map(|p| &mut p.xen)
    }

    pub(super) fn vcpu_of_mut(&mut self, k: u32) -> Option<&mut Vcpu> {
        if k == self.cur {
            return Some(&mut self.vcpu);
        }
        self.parked
            .get_mut(k as usize)?
            .as_mut()
            .map(|p| &mut p.vcpu)
    }

    /// Makes vCPU `k` the current one (parking the one that was).
    fn switch_to(&mut self, k: u32) {
        if k == self.cur {
            return;
        }
        let Some(next) = self.parked.get_mut(k as usize).and_then(Option::take) else {
            return;
        };
        // A partial console line belongs to the vCPU that wrote it: it
        // waits for that vCPU's next turn.
        self.console.switch(self.cur, k);
        let vcpu = core::mem::replace(&mut self.vcpu, next.vcpu);
        let xen = core::mem::replace(&mut self.xen.cpu, next.xen);
        if let Some(slot) = self.parked.get_mut(self.cur as usize) {
            *slot = Some(Parked { vcpu, xen });
        }
        self.cur = k;
    }

    /// Whether vCPU `k` can run at system time `now`: up, and not waiting
    /// or what it waits for happened (which ends the wait).
    pub(super) fn ready(&mut self, k: u32, now: u64) -> bool {
        let Some(x) = self.xen_of(k) else {
            return false;
        };
        if !x.up {
            return false;
        }
        let ready = match x.wait.clone() {
            Wait::Running => return true,
            Wait::Event => self.upcall_pending(k) || x.lapic.deliverable().is_some(),
            Wait::Poll {
                ports,
                deadline,
                upcall_ends,
            } => {
                let timed_out = deadline.is_some_and(|d| now >= d);
                timed_out
                    || (upcall_ends && self.upcall_pending(k))
                    || ports.iter().any(|&p| self.port_pending(p))
            }
        };
        if ready {
            if let Some(x) = self.xen_of_mut(k) {
                x.wait = Wait::Running;
            }
        }
        ready
    }

    /// Whether some vCPU can run at system time `now`; the next such vCPU,
    /// round-robin after the current one, becomes current.
    pub fn runnable(&mut self, now: u64) -> bool {
        let (n, cur) = (self.nr_vcpus().max(1), self.cur);
        let Some(k) = (1..=n).map(|i| (cur + i) % n).find(|&k| self.ready(k, now)) else {
            return false;
        };
        self.switch_to(k);
        true
    }

    /// Takes vCPU `k` down (HLT with interrupts off, `VCPUOP_down`); with
    /// no vCPU left up, the domain powers off, as in Xen.
    pub(super) fn vcpu_down(&mut self, k: u32, why: &str) -> Option<Ending> {
        if let Some(x) = self.xen_of_mut(k) {
            x.up = false;
        }
        if k == self.cur {
            self.yield_cpu = true;
        }
        let up = (0..self.nr_vcpus()).any(|i| self.xen_of(i).is_some_and(|x| x.up));
        self.flush_console();
        if up {
            log::info!("dom{} ({}): vCPU {k} {why}: down", self.id, self.name);
            return None;
        }
        log::info!(
            "dom{} ({}): vCPU {k} {why}: down; no vCPU left up: powering off",
            self.id,
            self.name
        );
        Some(Ending::Shutdown(0))
    }

    /// After the current vCPU wrote its ICR (`icr`: vector, delivery mode,
    /// shorthand, destination in 32..64): what it asks of the domain's
    /// other vCPUs ([`hv::ipi`]; the APIC itself handles the part
    /// addressed to the sender). A fixed interrupt becomes pending in the
    /// target's APIC, which wakes it if it waits for one; INIT and STARTUP
    /// stop and start vCPUs as a PVH Linux brings its CPUs up.
    pub(super) fn ipi_others(&mut self, icr: u64) {
        let cur = self.cur;
        for k in 0..self.nr_vcpus() {
            let Some(x) = self.xen_of_mut(k) else {
                continue;
            };
            match ipi::to(icr, cur, k, x.initialised, &x.lapic) {
                Some(Action::Raise(v)) => x.lapic.raise(v),
                // Never the last vCPU up: the sender is.
                Some(Action::Reset) => {
                    x.initialised = false;
                    x.up = false;
                    x.wait = Wait::Running;
                    x.lapic.init();
                    self.log_guest(alloc::format!("vCPU {k} reset by INIT: down"));
                }
                Some(Action::Start(v)) => self.startup(k, v),
                None => {}
            }
        }
    }

    /// A STARTUP IPI with `vector` starts vCPU `k` (which has no context)
    /// in real mode at `vector << 12`.
    fn startup(&mut self, k: u32, vector: u8) {
        let loaded = self
            .vcpu_of_mut(k)
            .is_some_and(|v| v.load_start_state(&ipi::startup_state(vector)));
        let Some(x) = self.xen_of_mut(k).filter(|_| loaded) else {
            return;
        };
        x.initialised = true;
        x.up = true;
        x.wait = Wait::Running;
        self.log_guest(alloc::format!(
            "vCPU {k} started by a STARTUP IPI at {:#x} (real mode)",
            u32::from(vector) << 12
        ));
    }
}
