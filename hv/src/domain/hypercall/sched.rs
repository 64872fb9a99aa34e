//! `sched_op` and `set_timer_op`: giving up the CPU, waiting for events,
//! shutting down, and the singleshot timer. The arguments are decoded and
//! checked through the caller's [`View`]; what the call asks of the
//! scheduler is returned for the domain, which owns its vCPUs' waits.

use super::{Errno, View};
use crate::domain::state::VcpuXen;
use alloc::vec::Vec;
use hv::evtchn::EventChannels;
use hv::xenabi::{EvtchnPort, SchedPoll, SchedShutdown};

const SCHEDOP_YIELD: u64 = 0;
const SCHEDOP_BLOCK: u64 = 1;
const SCHEDOP_SHUTDOWN: u64 = 2;
const SCHEDOP_POLL: u64 = 3;
const SCHEDOP_SHUTDOWN_CODE: u64 = 5;
const SCHEDOP_REMOTE_SHUTDOWN: u64 = 4;
/// The most ports one `SCHEDOP_poll` may name (Xen's limit is 128 too).
const POLL_MAX_PORTS: u32 = 128;

/// What a `sched_op` asks of the scheduler.
pub(in crate::domain) enum Sched {
    /// Nothing: return 0.
    Done,
    /// Give up the CPU.
    Yield,
    /// Wait for an event (with events enabled).
    Block,
    /// Shut the domain down with this reason (0 poweroff .. 4 watchdog).
    Shutdown(u32),
    /// Wait for one of `ports` (all bound) or the absolute system time
    /// `deadline`.
    Poll {
        ports: Vec<u32>,
        deadline: Option<u64>,
    },
}

/// `sched_op(cmd, arg)` (`args`) of domain `me`.
pub(in crate::domain) fn sched_op(
    me: u16,
    g: &View<'_>,
    ev: &EventChannels,
    args: [u64; 5],
) -> Result<Sched, Errno> {
    match args[0] {
        SCHEDOP_YIELD => Ok(Sched::Yield),
        SCHEDOP_BLOCK => Ok(Sched::Block),
        SCHEDOP_SHUTDOWN => match g.read_arg::<SchedShutdown>(args[1])?.v.reason {
            r @ 0..=4 => Ok(Sched::Shutdown(r)),
            _ => Err(Errno::Inval),
        },
        SCHEDOP_SHUTDOWN_CODE => g.read_arg::<SchedShutdown>(args[1]).map(|_| Sched::Done),
        SCHEDOP_POLL => poll(me, g, ev, args[1]),
        // `struct sched_remote_shutdown { domid_t domain_id; u32
        // reason; }`: only a device model or the control domain may
        // shut another domain (or itself) down this way; as Xen, a
        // domain that does not exist is -ESRCH, any other -EPERM.
        SCHEDOP_REMOTE_SHUTDOWN => {
            let b = g.copy_from_guest::<2>(args[1])?;
            if ev.has_domain(u16::from_le_bytes(b)) {
                Err(Errno::Perm)
            } else {
                Err(Errno::Srch)
            }
        }
        _ => Err(Errno::NoSys),
    }
}

/// `SCHEDOP_poll`: `struct sched_poll { ports (pointer); nr_ports (u32);
/// timeout (u64, absolute system time, 0 = none) }`.
fn poll(me: u16, g: &View<'_>, ev: &EventChannels, arg: u64) -> Result<Sched, Errno> {
    let a = g.read_arg::<SchedPoll>(arg)?.v;
    let (list, n, timeout) = (a.ports, a.nr_ports, a.timeout);
    if n > POLL_MAX_PORTS {
        return Err(Errno::Inval);
    }
    let mut ports = Vec::with_capacity(n as usize);
    for i in 0..u64::from(n) {
        let at = list.wrapping_add(i * EvtchnPort::size(g.abi()) as u64);
        let p = g.read_arg::<EvtchnPort>(at)?.v.port;
        if ev.channel(me, p).is_none() {
            return Err(Errno::Inval);
        }
        ports.push(p);
    }
    let deadline = (timeout != 0).then_some(timeout);
    Ok(Sched::Poll { ports, deadline })
}

/// `set_timer_op(timeout)` of the vCPU `cpu`: the singleshot timer at
/// absolute system time `timeout` ns; 0 stops it. Expiry raises
/// `VIRQ_TIMER`.
pub(in crate::domain) fn set_timer_op(cpu: &mut VcpuXen, args: [u64; 5]) -> Result<i64, Errno> {
    cpu.singleshot = (args[0] != 0).then_some(args[0]);
    Ok(0)
}
