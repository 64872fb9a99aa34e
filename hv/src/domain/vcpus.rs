//! Several vCPUs in one domain.
//!
//! The design keeps the one-vCPU code paths as they were: the vCPU that
//! runs now is `Domain::vcpu` with its Xen state in `Domain::xen.cpu`, and
//! every other vCPU is parked in the domain's [`VcpuSet`] with its own Xen
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
use alloc::vec::Vec;
use hv::ipi::{self, Action};
use vmm_glue::log;

/// A vCPU that does not run now, with its Xen state.
#[derive(Debug)]
pub struct Parked {
    pub vcpu: Vcpu,
    pub xen: VcpuXen,
}

/// A domain's vCPUs by index: which one runs, and the others parked. The
/// one that runs is not here but where exits reach it (`Domain::vcpu`,
/// `XenState::cpu`); the lookups by index take it as `current`.
#[derive(Debug)]
pub struct VcpuSet {
    /// The index of the vCPU that runs now.
    pub cur: u32,
    /// Every vCPU by index; the current one's slot is empty.
    pub(super) parked: Vec<Option<Parked>>,
}

impl VcpuSet {
    /// vCPU 0 runs; `parked` holds the others from index 1 (slot 0 empty).
    pub fn new(parked: Vec<Option<Parked>>) -> Self {
        Self { cur: 0, parked }
    }

    /// How many vCPUs there are.
    #[inline]
    pub fn len(&self) -> u32 {
        self.parked.len() as u32
    }

    /// vCPU `k`'s Xen state, the running one's being `current` (`None`
    /// for an index out of range).
    #[inline]
    pub fn xen_of<'a>(&'a self, k: u32, current: &'a VcpuXen) -> Option<&'a VcpuXen> {
        if k == self.cur {
            return Some(current);
        }
        self.parked.get(k as usize)?.as_ref().map(|p| &p.xen)
    }

    #[inline]
    pub fn xen_of_mut<'a>(
        &'a mut self,
        k: u32,
        current: &'a mut VcpuXen,
    ) -> Option<&'a mut VcpuXen> {
        if k == self.cur {
            return Some(current);
        }
        self.parked
            .get_mut(k as usize)?
            .as_mut()
            .map(|p| &mut p.xen)
    }

    #[inline]
    pub fn vcpu_of_mut<'a>(&'a mut self, k: u32, current: &'a mut Vcpu) -> Option<&'a mut Vcpu> {
        if k == self.cur {
            return Some(current);
        }
        self.parked
            .get_mut(k as usize)?
            .as_mut()
            .map(|p| &mut p.vcpu)
    }

    /// Makes vCPU `k` the current one: swaps it with the running `vcpu`
    /// and `xen`, which are parked. Whether it switched (not for the
    /// current vCPU or an index out of range).
    pub fn switch(&mut self, k: u32, vcpu: &mut Vcpu, xen: &mut VcpuXen) -> bool {
        if k == self.cur {
            return false;
        }
        let Some(next) = self.parked.get_mut(k as usize).and_then(Option::take) else {
            return false;
        };
        let vcpu = core::mem::replace(vcpu, next.vcpu);
        let xen = core::mem::replace(xen, next.xen);
        if let Some(slot) = self.parked.get_mut(self.cur as usize) {
            *slot = Some(Parked { vcpu, xen });
        }
        self.cur = k;
        true
    }
}

impl Domain {
    /// How many vCPUs the domain has.
    pub fn nr_vcpus(&self) -> u32 {
        self.vcpus.len()
    }

    /// vCPU `k`'s Xen state (`None` for an index out of range).
    pub(super) fn xen_of(&self, k: u32) -> Option<&VcpuXen> {
        self.vcpus.xen_of(k, &self.xen.cpu)
    }

    pub(super) fn xen_of_mut(&mut self, k: u32) -> Option<&mut VcpuXen> {
        self.vcpus.xen_of_mut(k, &mut self.xen.cpu)
    }

    pub(super) fn vcpu_of_mut(&mut self, k: u32) -> Option<&mut Vcpu> {
        self.vcpus.vcpu_of_mut(k, &mut self.vcpu)
    }

    /// Makes vCPU `k` the current one (parking the one that was).
    fn switch_to(&mut self, k: u32) {
        let from = self.vcpus.cur;
        if self.vcpus.switch(k, &mut self.vcpu, &mut self.xen.cpu) {
            // A partial console line belongs to the vCPU that wrote it: it
            // waits for that vCPU's next turn.
            self.console.switch(from, k);
        }
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
        let (n, cur) = (self.nr_vcpus().max(1), self.vcpus.cur);
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
        if k == self.vcpus.cur {
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
        let cur = self.vcpus.cur;
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
