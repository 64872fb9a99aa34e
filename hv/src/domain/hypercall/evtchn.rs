//! `event_channel_op`: the argument structures of
//! `xen/include/public/event_channel.h` decoded through the caller's
//! [`View`] and handed to the registry ([`hv::evtchn`]), which does the
//! checks; the FIFO ABI's own operations are returned for the domain's
//! FIFO state (`domain/fifo.rs`), which reaches its vCPUs.

use super::{Errno, View};

use crate::domain::state::XenState;
use hv::evtchn::EventChannels;
use hv::guestview::Arg;
use hv::xenabi::{
    EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnBindIpi, EvtchnBindPirq, EvtchnBindVcpu,
    EvtchnBindVirq, EvtchnExpandArray, EvtchnInitControl, EvtchnPort, EvtchnReset,
    EvtchnSetPriority, EvtchnStatusQuery,
};
use vmm_glue::xen::event_channel::op;

/// What an `event_channel_op` leaves to the domain's FIFO state.
pub(in crate::domain) enum Fifo {
    /// Done: return 0.
    Done,
    /// `EVTCHNOP_reset` closed the ports; `own`: of the caller itself,
    /// which goes back to the 2-level ABI.
    Reset { own: bool },
    /// `EVTCHNOP_init_control` with its argument (`link_bits` set), to be
    /// written back once the control block is mapped.
    InitControl(Arg<EvtchnInitControl>),
    /// `EVTCHNOP_expand_array` with the new page's frame.
    ExpandArray(u64),
}

/// `event_channel_op(cmd, arg)` (`args`) of domain `me`: the value for
/// RAX, or the FIFO work left to the domain.
pub(in crate::domain) fn event_channel_op(
    me: u16,
    g: &View<'_>,
    xen: &mut XenState,
    sends: &mut u64,
    ev: &mut EventChannels,
    args: [u64; 5],
) -> Result<Fifo, Errno> {
    let (cmd, arg) = (args[0], args[1]);
    let Ok(cmd) = u32::try_from(cmd) else {
        return Err(Errno::NoSys);
    };
    match cmd {
        op::ALLOC_UNBOUND => {
            let mut a = g.read_arg::<EvtchnAllocUnbound>(arg)?;
            a.v.port = ev.alloc_unbound(me, a.v.dom, a.v.remote_dom)?;
            g.write_arg(arg, &mut a)?;
        }
        op::BIND_INTERDOMAIN => {
            let mut a = g.read_arg::<EvtchnBindInterdomain>(arg)?;
            a.v.local_port = ev.bind_interdomain(me, a.v.remote_dom, a.v.remote_port)?;
            g.write_arg(arg, &mut a)?;
        }
        op::BIND_VIRQ => {
            let mut a = g.read_arg::<EvtchnBindVirq>(arg)?;
            a.v.port = ev.bind_virq(me, a.v.virq, a.v.vcpu)?;
            g.write_arg(arg, &mut a)?;
        }
        op::BIND_IPI => {
            let mut a = g.read_arg::<EvtchnBindIpi>(arg)?;
            a.v.port = ev.bind_ipi(me, a.v.vcpu)?;
            g.write_arg(arg, &mut a)?;
        }
        op::BIND_PIRQ => {
            let mut a = g.read_arg::<EvtchnBindPirq>(arg)?;
            a.v.port = ev.bind_pirq(me, a.v.pirq)?;
            g.write_arg(arg, &mut a)?;
            // A passed-through function's INTx line starts delivering
            // once its pirq has somewhere to go.
            crate::passthrough::intx_ready(me, a.v.pirq);
        }
        op::CLOSE => {
            let port = g.read_arg::<EvtchnPort>(arg)?.v.port;
            let pirq = match ev.channel(me, port).map(|c| c.state) {
                Some(hv::evtchn::PortState::Pirq { pirq }) => Some(pirq),
                _ => None,
            };
            ev.close(me, port)?;
            // An INTx line with nowhere to go is masked again.
            if let Some(pirq) = pirq {
                crate::passthrough::intx_unbound(me, pirq);
            }
        }
        op::SEND => {
            ev.send(me, g.read_arg::<EvtchnPort>(arg)?.v.port)?;
            *sends += 1;
        }
        op::STATUS => {
            // Only `dom` and `port` are read; all 24 bytes are written.
            let q = g.read_arg::<EvtchnStatusQuery>(arg)?.v;
            let st = ev.status(me, q.dom, q.port)?;
            g.copy_to_guest(arg, &st.to_bytes())?;
        }
        op::UNMASK => {
            ev.unmask(me, g.read_arg::<EvtchnPort>(arg)?.v.port)?;
        }
        op::BIND_VCPU => {
            let a = g.read_arg::<EvtchnBindVcpu>(arg)?.v;
            ev.bind_vcpu(me, a.port, a.vcpu)?;
        }
        op::RESET => {
            let dom = g.read_arg::<EvtchnReset>(arg)?.v.dom;
            ev.reset(me, dom)?;
            // Xen goes back to the 2-level ABI.
            let own = dom == me || dom == vmm_glue::xen::event_channel::DOMID_SELF;
            return Ok(Fifo::Reset { own });
        }
        op::INIT_CONTROL => {
            let mut a = g.read_arg::<EvtchnInitControl>(arg)?;
            a.v.link_bits = hv::evtchn::fifo::LINK_BITS;
            return Ok(Fifo::InitControl(a));
        }
        op::EXPAND_ARRAY => {
            let gfn = g.read_arg::<EvtchnExpandArray>(arg)?.v.array_gfn;
            return Ok(Fifo::ExpandArray(gfn));
        }
        op::SET_PRIORITY => {
            let a = g.read_arg::<EvtchnSetPriority>(arg)?.v;
            crate::domain::fifo::set_priority(xen, me, ev, a.port, a.priority)?;
        }
        _ => return Err(Errno::NoSys),
    }
    Ok(Fifo::Done)
}
