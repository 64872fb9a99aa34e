//! Guest time: system time (ns since the clock started) derived from the
//! TSC with exactly the pvclock scaling a guest uses, so that what the guest
//! extrapolates from one update never exceeds the next update; the
//! `vcpu_time_info` and wallclock updates; the singleshot and periodic
//! timers that raise `VIRQ_TIMER`.

use super::Domain;
use hv::hub::Hub;
use hv::pvclock;
use vmm_glue::xen::event_channel::virq;
use vmm_glue::xen::time::{VCPU_INFO_TIME, VCPU_TIME_INFO_SIZE, XEN_PVCLOCK_TSC_STABLE_BIT};

/// System time now, ns.
pub fn now_ns() -> u64 {
    crate::arch::time::now_ns()
}

impl Domain {
    /// Writes vCPU 0's `vcpu_time_info` and the wallclock for now.
    pub(super) fn update_time(&mut self) {
        let (tsc, ns) = crate::arch::time::stamp();
        let (mul, shift) = crate::arch::time::scale();
        let flags = XEN_PVCLOCK_TSC_STABLE_BIT;
        let (sec, nsec) = crate::arch::time::boot_wallclock();
        let registered = self.xen.vcpu_info;
        let _ = self.with_shared(|p| {
            pvclock::write_wallclock(p, sec, nsec);
            if registered.is_none() {
                let t = &mut p[VCPU_INFO_TIME..VCPU_INFO_TIME + VCPU_TIME_INFO_SIZE];
                pvclock::write_time_info(t, tsc, ns, mul, shift, flags);
            }
        });
        if let Some(gpa) = registered {
            let at = gpa + VCPU_INFO_TIME as u64;
            let mut t = [0u8; VCPU_TIME_INFO_SIZE];
            if self.mem.read(at, &mut t).is_ok() {
                pvclock::write_time_info(&mut t, tsc, ns, mul, shift, flags);
                let _ = self.mem.write(at, &t);
            }
        }
    }

    /// Raises `VIRQ_TIMER` for timers due at `now`; periodic ones are
    /// re-armed on their grid (missed periods are not made up).
    pub(super) fn fire_timers(&mut self, hub: &mut Hub, now: u64) {
        let mut fire = false;
        if self.xen.singleshot.is_some_and(|d| d <= now) {
            self.xen.singleshot = None;
            fire = true;
        }
        if let Some((period, next)) = self.xen.periodic {
            if next <= now {
                let missed = (now - next) / period;
                self.xen.periodic = Some((period, next + (missed + 1) * period));
                fire = true;
            }
        }
        if fire {
            hub.evtchn.raise_virq(self.id, virq::TIMER, 0);
            self.exits.timers += 1;
        }
    }

    /// The earliest system time something of this domain is due.
    pub fn next_deadline(&self) -> Option<u64> {
        let poll = match &self.xen.wait {
            super::events::Wait::Poll { deadline, .. } => *deadline,
            _ => None,
        };
        [self.xen.singleshot, self.xen.periodic.map(|p| p.1), poll]
            .into_iter()
            .flatten()
            .min()
    }
}
