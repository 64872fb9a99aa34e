//! Guest time: system time (ns since the clock started) derived from the
//! TSC with exactly the pvclock scaling a guest uses, so that what the guest
//! extrapolates from one update never exceeds the next update; the
//! `vcpu_time_info` and wallclock updates; the singleshot and periodic
//! timers that raise `VIRQ_TIMER`.

use super::state::VcpuXen;
use super::vcpus::VcpuSet;
use super::Domain;
use hv::hub::Hub;
use hv::pvclock;
use vmm_glue::xen::event_channel::virq;
use vmm_glue::xen::shared_info::VCPU_INFO_SIZE;
use vmm_glue::xen::time::{VCPU_INFO_TIME, VCPU_TIME_INFO_SIZE, XEN_PVCLOCK_TSC_STABLE_BIT};

/// System time now, ns.
pub fn now_ns() -> u64 {
    crate::arch::time::now_ns()
}

/// The earlier of two optional times.
fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

impl Domain {
    /// Writes every vCPU's `vcpu_time_info` and the wallclock for now.
    #[link_section = ".text.hot"]
    pub(super) fn update_time(&mut self) {
        let (tsc, ns) = crate::arch::time::stamp();
        let (mul, shift) = crate::arch::time::scale();
        let flags = XEN_PVCLOCK_TSC_STABLE_BIT;
        let (sec, nsec) = crate::arch::time::boot_wallclock();
        let n = self.nr_vcpus();
        let vcpu_info = |d: &Self, k| d.xen_of(k).and_then(|x| x.vcpu_info);
        // The first 32 vCPUs without a registered vcpu_info have theirs in
        // the shared info page (a bit each): no heap on this path, which
        // runs on every exit.
        let in_shared = (0..n.min(32))
            .filter(|&k| vcpu_info(self, k).is_none())
            .fold(0u32, |m, k| m | 1 << k);
        let _ = self.with_shared(|p| {
            pvclock::write_wallclock(p, sec, nsec);
            for k in (0..32).filter(|k| in_shared & 1 << k != 0) {
                let at = k as usize * VCPU_INFO_SIZE + VCPU_INFO_TIME;
                if let Some(t) = p.get_mut(at..at + VCPU_TIME_INFO_SIZE) {
                    pvclock::write_time_info(t, tsc, ns, mul, shift, flags);
                }
            }
        });
        // Then the registered vcpu_infos' time, then the time areas.
        let info = (0..n).filter_map(|k| vcpu_info(self, k).map(|gpa| gpa + VCPU_INFO_TIME as u64));
        let areas = (0..n).filter_map(|k| self.xen_of(k).and_then(|x| x.time_area));
        for at in info.chain(areas) {
            let mut t = [0u8; VCPU_TIME_INFO_SIZE];
            if self.mem.read(at, &mut t).is_ok() {
                pvclock::write_time_info(&mut t, tsc, ns, mul, shift, flags);
                let _ = self.mem.write(at, &t);
            }
        }
    }

    /// Raises `VIRQ_TIMER` on each vCPU whose timers are due at `now`;
    /// periodic ones are re-armed on their grid (missed periods are not
    /// made up).
    pub(super) fn fire_timers(&mut self, hub: &mut Hub, now: u64) {
        for k in 0..self.nr_vcpus() {
            let Some(x) = self.xen_of_mut(k) else {
                continue;
            };
            let mut fire = false;
            if x.singleshot.is_some_and(|d| d <= now) {
                x.singleshot = None;
                fire = true;
            }
            if let Some((period, next)) = x.periodic {
                if next <= now {
                    let missed = (now - next) / period;
                    x.periodic = Some((period, next + (missed + 1) * period));
                    fire = true;
                }
            }
            if fire {
                hub.evtchn.raise_virq(self.id, virq::TIMER, k);
                self.exits.timers += 1;
            }
        }
    }

    /// The earliest system time something of this domain is due.
    #[inline]
    #[link_section = ".text.hot"]
    pub fn next_deadline(&self) -> Option<u64> {
        self.vcpus.next_deadline(&self.xen.cpu)
    }
}

impl VcpuSet {
    /// The earliest system time one of the vCPUs' timers or polls is due,
    /// the running vCPU's Xen state being `current`.
    pub fn next_deadline(&self, current: &VcpuXen) -> Option<u64> {
        // Plain loops: the scheduler asks on every exit, and iterator
        // adapters this deep are calls at opt-level z.
        let mut next: Option<u64> = None;
        for k in 0..self.len() {
            let Some(x) = self.xen_of(k, current) else {
                continue;
            };
            let poll = match &x.wait {
                super::events::Wait::Poll { deadline, .. } => *deadline,
                _ => None,
            };
            for due in [x.singleshot, x.periodic.map(|p| p.1), poll] {
                next = earliest(next, due);
            }
        }
        next
    }
}
