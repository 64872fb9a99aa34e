//! `event_channel_op`: the argument structures of
//! `xen/include/public/event_channel.h` decoded and handed to the
//! registry ([`hv::evtchn`]), which does the checks; the FIFO ABI's own
//! operations go to the domain's FIFO state (`domain/fifo.rs`).

use super::{Domain, Errno, HcResult};
use hv::hub::Hub;
use hv::xenabi::{
    EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnBindIpi, EvtchnBindPirq, EvtchnBindVcpu,
    EvtchnBindVirq, EvtchnExpandArray, EvtchnInitControl, EvtchnPort, EvtchnReset,
    EvtchnSetPriority, EvtchnStatusQuery,
};
use vmm_glue::xen::event_channel::op;

impl Domain {
    pub(super) fn hc_event_channel_op(&mut self, args: [u64; 5], hub: &mut Hub) -> HcResult {
        let (cmd, arg) = (args[0], args[1]);
        let me = self.id;
        let Ok(cmd) = u32::try_from(cmd) else {
            return Err(Errno::NoSys);
        };
        let ev = &mut hub.evtchn;
        match cmd {
            op::ALLOC_UNBOUND => {
                let mut a = self.read_arg::<EvtchnAllocUnbound>(arg)?;
                a.v.port = ev.alloc_unbound(me, a.v.dom, a.v.remote_dom)?;
                self.write_arg(arg, &mut a)?;
            }
            op::BIND_INTERDOMAIN => {
                let mut a = self.read_arg::<EvtchnBindInterdomain>(arg)?;
                a.v.local_port = ev.bind_interdomain(me, a.v.remote_dom, a.v.remote_port)?;
                self.write_arg(arg, &mut a)?;
            }
            op::BIND_VIRQ => {
                let mut a = self.read_arg::<EvtchnBindVirq>(arg)?;
                a.v.port = ev.bind_virq(me, a.v.virq, a.v.vcpu)?;
                self.write_arg(arg, &mut a)?;
            }
            op::BIND_IPI => {
                let mut a = self.read_arg::<EvtchnBindIpi>(arg)?;
                a.v.port = ev.bind_ipi(me, a.v.vcpu)?;
                self.write_arg(arg, &mut a)?;
            }
            op::BIND_PIRQ => {
                let mut a = self.read_arg::<EvtchnBindPirq>(arg)?;
                a.v.port = ev.bind_pirq(me, a.v.pirq)?;
                self.write_arg(arg, &mut a)?;
                // A passed-through function's INTx line starts delivering
                // once its pirq has somewhere to go.
                crate::passthrough::intx_ready(me, a.v.pirq);
            }
            op::CLOSE => {
                let port = self.read_arg::<EvtchnPort>(arg)?.v.port;
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
                ev.send(me, self.read_arg::<EvtchnPort>(arg)?.v.port)?;
                self.exits.sends += 1;
            }
            op::STATUS => {
                // Only `dom` and `port` are read; all 24 bytes are written.
                let q = self.read_arg::<EvtchnStatusQuery>(arg)?.v;
                let st = ev.status(me, q.dom, q.port)?;
                self.copy_to_guest(arg, &st.to_bytes())?;
            }
            op::UNMASK => {
                ev.unmask(me, self.read_arg::<EvtchnPort>(arg)?.v.port)?;
            }
            op::BIND_VCPU => {
                let a = self.read_arg::<EvtchnBindVcpu>(arg)?.v;
                ev.bind_vcpu(me, a.port, a.vcpu)?;
            }
            op::RESET => {
                let dom = self.read_arg::<EvtchnReset>(arg)?.v.dom;
                // Resetting closes the backend channels too; the toolstack
                // binds them only at domain build.
                let ports = self.xen.ports;
                ev.reset(me, dom)?;
                // Xen goes back to the 2-level ABI.
                if dom == me || dom == vmm_glue::xen::event_channel::DOMID_SELF {
                    self.fifo_destroy();
                }
                self.log_guest(alloc::format!(
                    "EVTCHNOP_reset closed every port, including xenstore {} and console {}",
                    ports.xenstore_guest,
                    ports.console_guest
                ));
            }
            op::INIT_CONTROL => {
                let mut a = self.read_arg::<EvtchnInitControl>(arg)?;
                let v = a.v;
                self.fifo_init_control(ev, v.control_gfn, v.offset, v.vcpu)?;
                a.v.link_bits = hv::evtchn::fifo::LINK_BITS;
                self.write_arg(arg, &mut a)?;
            }
            op::EXPAND_ARRAY => {
                let gfn = self.read_arg::<EvtchnExpandArray>(arg)?.v.array_gfn;
                self.fifo_expand_array(ev, gfn)?;
            }
            op::SET_PRIORITY => {
                let a = self.read_arg::<EvtchnSetPriority>(arg)?.v;
                super::super::fifo::set_priority(&mut self.xen, me, ev, a.port, a.priority)?;
            }
            _ => return Err(Errno::NoSys),
        }
        Ok(0)
    }
}
