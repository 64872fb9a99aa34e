//! `event_channel_op`, 2-level ABI: the argument structures of
//! `xen/include/public/event_channel.h` decoded and handed to the
//! registry ([`hv::evtchn`]), which does the checks.

use super::{put, Domain, Errno, Fields, HcResult};
use hv::hub::Hub;
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
                // { u16 dom; u16 remote_dom; u32 port (OUT) }
                let mut b: [u8; 8] = self.copy_from_guest(arg)?;
                let f = Fields(&b);
                let port = ev.alloc_unbound(me, f.u16(0), f.u16(2))?;
                put(&mut b, 4, &port.to_le_bytes());
                self.copy_to_guest(arg, &b)?;
            }
            op::BIND_INTERDOMAIN => {
                // { u16 remote_dom; u32 remote_port @4; u32 local_port (OUT) @8 }
                let mut b: [u8; 12] = self.copy_from_guest(arg)?;
                let f = Fields(&b);
                let port = ev.bind_interdomain(me, f.u16(0), f.u32(4))?;
                put(&mut b, 8, &port.to_le_bytes());
                self.copy_to_guest(arg, &b)?;
            }
            op::BIND_VIRQ => {
                // { u32 virq; u32 vcpu; u32 port (OUT) }
                let mut b: [u8; 12] = self.copy_from_guest(arg)?;
                let f = Fields(&b);
                let port = ev.bind_virq(me, f.u32(0), f.u32(4))?;
                put(&mut b, 8, &port.to_le_bytes());
                self.copy_to_guest(arg, &b)?;
            }
            op::BIND_IPI => {
                // { u32 vcpu; u32 port (OUT) }
                let mut b: [u8; 8] = self.copy_from_guest(arg)?;
                let port = ev.bind_ipi(me, Fields(&b).u32(0))?;
                put(&mut b, 4, &port.to_le_bytes());
                self.copy_to_guest(arg, &b)?;
            }
            op::BIND_PIRQ => {
                // { u32 pirq; u32 flags; u32 port (OUT) }
                let mut b: [u8; 12] = self.copy_from_guest(arg)?;
                let port = ev.bind_pirq(me, Fields(&b).u32(0))?;
                put(&mut b, 8, &port.to_le_bytes());
                self.copy_to_guest(arg, &b)?;
            }
            op::CLOSE => {
                let b: [u8; 4] = self.copy_from_guest(arg)?;
                ev.close(me, u32::from_le_bytes(b))?;
            }
            op::SEND => {
                let b: [u8; 4] = self.copy_from_guest(arg)?;
                ev.send(me, u32::from_le_bytes(b))?;
                self.exits.sends += 1;
            }
            op::STATUS => {
                // { u16 dom; u32 port @4; OUT: status @8, vcpu @12, union @16 }
                let b: [u8; 8] = self.copy_from_guest(arg)?;
                let f = Fields(&b);
                let st = ev.status(me, f.u16(0), f.u32(4))?;
                self.copy_to_guest(arg, &st.to_bytes())?;
            }
            op::UNMASK => {
                let b: [u8; 4] = self.copy_from_guest(arg)?;
                ev.unmask(me, u32::from_le_bytes(b))?;
            }
            op::BIND_VCPU => {
                // { u32 port; u32 vcpu }
                let b: [u8; 8] = self.copy_from_guest(arg)?;
                let f = Fields(&b);
                ev.bind_vcpu(me, f.u32(0), f.u32(4))?;
            }
            op::RESET => {
                let b: [u8; 2] = self.copy_from_guest(arg)?;
                let dom = u16::from_le_bytes(b);
                // Resetting closes the backend channels too; the toolstack
                // binds them only at domain build.
                let ports = self.xen.ports;
                ev.reset(me, dom)?;
                self.log_guest(alloc::format!(
                    "EVTCHNOP_reset closed every port, including xenstore {} and console {}",
                    ports.xenstore_guest,
                    ports.console_guest
                ));
            }
            op::INIT_CONTROL | op::EXPAND_ARRAY | op::SET_PRIORITY => {
                hv::evtchn::fifo_op()?;
            }
            _ => return Err(Errno::NoSys),
        }
        Ok(0)
    }
}
