//! `sched_op` and `set_timer_op`: giving up the CPU, waiting for events,
//! shutting down, and the singleshot timer.

use super::{Domain, Errno, Fields, HcResult, Outcome};
use crate::domain::events::Wait;
use alloc::vec::Vec;
use hv::hub::Hub;

const SCHEDOP_YIELD: u64 = 0;
const SCHEDOP_BLOCK: u64 = 1;
const SCHEDOP_SHUTDOWN: u64 = 2;
const SCHEDOP_POLL: u64 = 3;
const SCHEDOP_SHUTDOWN_CODE: u64 = 5;
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
                // As Xen: events are enabled by the block itself; an upcall
                // already pending returns at once.
                if !self.upcall_pending(self.cur) {
                    self.xen.cpu.wait = Wait::Event;
                }
                self.yield_cpu = true;
                Ok(0)
            }
            SCHEDOP_SHUTDOWN => {
                let reason = match self.copy_from_guest::<4>(args[1]) {
                    Ok(b) => u32::from_le_bytes(b),
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
            SCHEDOP_SHUTDOWN_CODE => self.copy_from_guest::<4>(args[1]).map(|_| 0),
            SCHEDOP_POLL => self.poll(args[1], hub),
            _ => Err(Errno::NoSys),
        };
        Outcome::Ret(r)
    }

    /// `SCHEDOP_poll`: `struct sched_poll { ports (pointer); nr_ports (u32);
    /// timeout (u64, absolute system time, 0 = none) }`.
    fn poll(&mut self, arg: u64, hub: &Hub) -> HcResult {
        // Compat: { u32 ports; u32 nr_ports; u64 timeout } in 16 bytes.
        let compat = self.compat();
        let mut b = [0u8; 24];
        self.read_guest(arg, &mut b[..if compat { 16 } else { 24 }])?;
        let f = Fields(&b);
        let (list, n, timeout) = if compat {
            (u64::from(f.u32(0)), f.u32(4), f.u64(8))
        } else {
            (f.u64(0), f.u32(8), f.u64(16))
        };
        if n > POLL_MAX_PORTS {
            return Err(Errno::Inval);
        }
        let mut ports = Vec::with_capacity(n as usize);
        for i in 0..u64::from(n) {
            let p: [u8; 4] = self.copy_from_guest(list.wrapping_add(i * 4))?;
            let p = u32::from_le_bytes(p);
            if hub.evtchn.channel(self.id, p).is_none() {
                return Err(Errno::Inval);
            }
            ports.push(p);
        }
        let deadline = (timeout != 0).then_some(timeout);
        let upcall_ends = self.vcpu.rflags() & crate::domain::RFLAGS_IF != 0;
        self.xen.cpu.wait = Wait::Poll {
            ports,
            deadline,
            upcall_ends,
        };
        // Already satisfied (a port pending, the deadline past): no wait.
        if self.ready(self.cur, crate::domain::time::now_ns()) {
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
