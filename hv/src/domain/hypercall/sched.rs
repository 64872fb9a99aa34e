//! `sched_op` and `set_timer_op`: giving up the CPU, waiting for events,
//! shutting down, and the singleshot timer.

use super::{Domain, Errno, HcResult, Outcome};
use crate::domain::events::Wait;
use alloc::vec::Vec;
use hv::hub::Hub;
use hv::xenabi::{EvtchnPort, SchedPoll, SchedShutdown};
use vmm_glue::log;

const SCHEDOP_YIELD: u64 = 0;
const SCHEDOP_BLOCK: u64 = 1;
const SCHEDOP_SHUTDOWN: u64 = 2;
const SCHEDOP_POLL: u64 = 3;
const SCHEDOP_SHUTDOWN_CODE: u64 = 5;
const SCHEDOP_REMOTE_SHUTDOWN: u64 = 4;
/// The most ports one `SCHEDOP_poll` may name (Xen's limit is 128 too).
const POLL_MAX_PORTS: u32 = 128;

impl Domain {
    pub(super) fn hc_sched_op(&mut self, args: [u64; 5], hub: &mut Hub) -> Outcome {
        let r = match args[0] {
            SCHEDOP_YIELD => {
                self.yield_cpu = true;
                Ok(0)
            }
            SCHEDOP_BLOCK => {
                // As Xen: events are enabled by the block itself (a PV
                // guest's upcall mask is cleared); an upcall already
                // pending returns at once.
                if self.is_pv() {
                    self.pv_set_upcall_mask(0);
                }
                if !self.upcall_pending(self.vcpus.cur) {
                    self.xen.cpu.wait = Wait::Event;
                }
                self.yield_cpu = true;
                Ok(0)
            }
            SCHEDOP_SHUTDOWN => {
                let reason = match self.read_arg::<SchedShutdown>(args[1]) {
                    Ok(a) => a.v.reason,
                    Err(e) => return Outcome::Ret(Err(e)),
                };
                if reason > 4 {
                    Err(Errno::Inval)
                } else {
                    self.flush_console();
                    let what =
                        ["poweroff", "reboot", "suspend", "crash", "watchdog"][reason as usize];
                    log::info!("{} shut down: {what}", self.prefix());
                    return Outcome::Shutdown(reason);
                }
            }
            SCHEDOP_SHUTDOWN_CODE => self.read_arg::<SchedShutdown>(args[1]).map(|_| 0),
            SCHEDOP_POLL => self.poll(args[1], hub),
            // `struct sched_remote_shutdown { domid_t domain_id; u32
            // reason; }`: only a device model or the control domain may
            // shut another domain (or itself) down this way; as Xen, a
            // domain that does not exist is -ESRCH, any other -EPERM.
            SCHEDOP_REMOTE_SHUTDOWN => self.copy_from_guest::<2>(args[1]).and_then(|b| {
                if hub.evtchn.has_domain(u16::from_le_bytes(b)) {
                    Err(Errno::Perm)
                } else {
                    Err(Errno::Srch)
                }
            }),
            _ => Err(Errno::NoSys),
        };
        Outcome::Ret(r)
    }

    /// `SCHEDOP_poll`: `struct sched_poll { ports (pointer); nr_ports (u32);
    /// timeout (u64, absolute system time, 0 = none) }`.
    fn poll(&mut self, arg: u64, hub: &Hub) -> HcResult {
        let a = self.read_arg::<SchedPoll>(arg)?.v;
        let (list, n, timeout) = (a.ports, a.nr_ports, a.timeout);
        if n > POLL_MAX_PORTS {
            return Err(Errno::Inval);
        }
        let mut ports = Vec::with_capacity(n as usize);
        for i in 0..u64::from(n) {
            let at = list.wrapping_add(i * EvtchnPort::size(self.abi()) as u64);
            let p = self.read_arg::<EvtchnPort>(at)?.v.port;
            if hub.evtchn.channel(self.id, p).is_none() {
                return Err(Errno::Inval);
            }
            ports.push(p);
        }
        let deadline = (timeout != 0).then_some(timeout);
        let upcall_ends = if self.is_pv() {
            self.pv_upcall_mask() == 0
        } else {
            self.vcpu.rflags() & crate::domain::RFLAGS_IF != 0
        };
        self.xen.cpu.wait = Wait::Poll {
            ports,
            deadline,
            upcall_ends,
        };
        // Already satisfied (a port pending, the deadline past): no wait.
        if self.ready(self.vcpus.cur, crate::domain::time::now_ns()) {
            return Ok(0);
        }
        self.yield_cpu = true;
        Ok(0)
    }

    /// `set_timer_op(timeout)`: the singleshot timer at absolute system time
    /// `timeout` ns; 0 stops it. Expiry raises `VIRQ_TIMER`.
    pub(super) fn hc_set_timer_op(&mut self, args: [u64; 5]) -> HcResult {
        self.xen.cpu.singleshot = (args[0] != 0).then_some(args[0]);
        Ok(0)
    }
}
