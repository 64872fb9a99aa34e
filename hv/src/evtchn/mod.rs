//! Event channels, 2-level ABI (`xen/include/public/event_channel.h`):
//! the per-domain port tables of every domain in one registry, so that
//! interdomain binding and notification are plain data operations.
//!
//! Operations follow `xen/common/event_channel.c` in checks, order and
//! errno values. Nothing here touches guest memory: an operation that must
//! change a guest's shared info page queues an [`Effect`], which the
//! caller takes with [`EventChannels::take_effects`] and applies with
//! [`shared::SharedPage`] (injecting the callback vector when that reports
//! an upcall).
//!
//! Port 0 is never allocated (Xen reserves it). Ports are handed out lowest
//! first; the table grows in buckets of [`BUCKET`] ports, and a port
//! beyond the grown table is invalid (-EINVAL), as in Xen's `port_is_valid`.

pub mod errno;
pub mod fifo;
pub mod shared;

#[cfg(test)]
mod fifo_tests;
#[cfg(test)]
mod shared_tests;
#[cfg(test)]
mod tests;

use alloc::vec::Vec;
use vmm_glue::compact::{VecMap, VecSet};

pub use errno::Errno;
use vmm_glue::xen::event_channel::{stat, virq, EvtchnStatus, DOMID_SELF};
use vmm_glue::xen::shared_info::EVTCHN_2L_NR_CHANNELS;

/// A domain id.
pub type DomId = u16;
/// An event channel port.
pub type Port = u32;
/// A vCPU index within a domain.
pub type VcpuId = u32;

/// Ports per table growth step.
pub const BUCKET: usize = 64;

/// The most ports a 64-bit guest can use with the 2-level ABI.
pub const MAX_PORTS: usize = EVTCHN_2L_NR_CHANNELS;

/// What a port is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortState {
    /// Not in use (`ECS_FREE`).
    Free,
    /// Allocated for `remote` to bind to (`ECS_UNBOUND`).
    Unbound {
        /// The domain allowed to bind.
        remote: DomId,
    },
    /// Connected to another port (`ECS_INTERDOMAIN`).
    Interdomain {
        /// The peer domain.
        remote_dom: DomId,
        /// The peer's port.
        remote_port: Port,
    },
    /// A virtual IRQ (`ECS_VIRQ`).
    Virq {
        /// `VIRQ_*`.
        virq: u32,
        /// The vCPU it was bound on (0 for global VIRQs).
        vcpu: VcpuId,
    },
    /// An inter-vCPU interrupt (`ECS_IPI`).
    Ipi {
        /// The vCPU notified.
        vcpu: VcpuId,
    },
    /// A physical IRQ (`ECS_PIRQ`).
    Pirq {
        /// The domain's pirq number.
        pirq: u32,
    },
}

/// One port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channel {
    /// What the port is bound to.
    pub state: PortState,
    /// The vCPU whose `vcpu_info` receives the notification.
    pub notify_vcpu: VcpuId,
}

const FREE: Channel = Channel {
    state: PortState::Free,
    notify_vcpu: 0,
};

/// A change to a guest's shared info page that an operation requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// `SharedPage::set_pending(port, vcpu)` in `dom`'s page.
    SetPending {
        /// The domain whose page changes.
        dom: DomId,
        /// The port.
        port: Port,
        /// The vCPU to notify.
        vcpu: VcpuId,
    },
    /// `SharedPage::unmask(port, vcpu)` in `dom`'s page.
    Unmask {
        /// The domain whose page changes.
        dom: DomId,
        /// The port.
        port: Port,
        /// The vCPU to notify.
        vcpu: VcpuId,
    },
    /// `SharedPage::clear_pending(port)` in `dom`'s page (a port closed).
    ClearPending {
        /// The domain whose page changes.
        dom: DomId,
        /// The port.
        port: Port,
    },
}

/// What a domain brings to the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomainConfig {
    /// vCPUs; valid vCPU ids are `0..nr_vcpus`.
    pub nr_vcpus: u32,
    /// Size of the domain's pirq space (`d->nr_pirqs`).
    pub nr_pirqs: u32,
    /// May act on other domains' ports (alloc_unbound, status), as the
    /// hardware domain may in Xen's default policy.
    pub privileged: bool,
}

#[derive(Debug)]
struct DomainPorts {
    cfg: DomainConfig,
    chans: Vec<Channel>,
    /// (virq, vcpu) -> port.
    virqs: VecMap<(u32, VcpuId), Port>,
    /// pirq -> port.
    pirqs: VecMap<u32, Port>,
    /// Pirqs the domain was given (`physdev_op` map_pirq).
    permitted_pirqs: VecSet<u32>,
}

impl DomainPorts {
    fn new(cfg: DomainConfig) -> Self {
        Self {
            cfg,
            chans: Vec::new(),
            virqs: VecMap::new(),
            pirqs: VecMap::new(),
            permitted_pirqs: VecSet::new(),
        }
    }

    fn chan(&self, port: Port) -> Result<&Channel, Errno> {
        self.chans.get(port as usize).ok_or(Errno::Inval)
    }

    fn chan_mut(&mut self, port: Port) -> Result<&mut Channel, Errno> {
        self.chans.get_mut(port as usize).ok_or(Errno::Inval)
    }

    fn check_vcpu(&self, vcpu: VcpuId) -> Result<(), Errno> {
        if vcpu < self.cfg.nr_vcpus {
            Ok(())
        } else {
            Err(Errno::NoEnt)
        }
    }

    /// The lowest free port (never 0), growing the table as needed.
    fn free_port(&mut self) -> Result<Port, Errno> {
        if let Some(p) = (1..self.chans.len()).find(|&p| self.chans[p].state == PortState::Free) {
            return Ok(p as Port);
        }
        let p = self.chans.len().max(1);
        if p >= MAX_PORTS {
            return Err(Errno::NoSpc);
        }
        let grown = (p / BUCKET + 1) * BUCKET;
        self.chans.resize(grown.min(MAX_PORTS), FREE);
        Ok(p as Port)
    }

    fn bind(&mut self, port: Port, state: PortState, notify_vcpu: VcpuId) {
        if let Some(c) = self.chans.get_mut(port as usize) {
            *c = Channel { state, notify_vcpu };
        }
    }
}

/// The event channels of every domain.
#[derive(Debug, Default)]
pub struct EventChannels {
    domains: VecMap<DomId, DomainPorts>,
    effects: Vec<Effect>,
}

impl EventChannels {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a domain with no ports. -EEXIST if it is already known.
    pub fn add_domain(&mut self, dom: DomId, cfg: DomainConfig) -> Result<(), Errno> {
        if self.domains.contains_key(&dom) {
            return Err(Errno::Exist);
        }
        self.domains.insert(dom, DomainPorts::new(cfg));
        Ok(())
    }

    /// Whether `dom` is known.
    pub fn has_domain(&self, dom: DomId) -> bool {
        self.domains.contains_key(&dom)
    }

    /// Lets `dom` bind `pirq` (after the toolstack or `map_pirq` gave it).
    pub fn permit_pirq(&mut self, dom: DomId, pirq: u32) -> Result<(), Errno> {
        let d = self.domains.get_mut(&dom).ok_or(Errno::Srch)?;
        if pirq >= d.cfg.nr_pirqs {
            return Err(Errno::Inval);
        }
        d.permitted_pirqs.insert(pirq);
        Ok(())
    }

    /// Takes back `dom`'s right to bind `pirq`. A port already bound to it
    /// stays bound (the guest closes it), but nothing raises it any more.
    pub fn revoke_pirq(&mut self, dom: DomId, pirq: u32) {
        if let Some(d) = self.domains.get_mut(&dom) {
            d.permitted_pirqs.remove(&pirq);
        }
    }

    /// Closes every port of `dom` (as Xen's `evtchn_destroy`: interdomain
    /// peers are left unbound toward `dom`) and forgets it.
    pub fn destroy_domain(&mut self, dom: DomId) -> Result<(), Errno> {
        let n = self.domains.get(&dom).ok_or(Errno::Srch)?.chans.len();
        for p in 1..n {
            let _ = self.close(dom, p as Port);
        }
        self.domains.remove(&dom);
        // The dead domain's page is gone: drop effects aimed at it.
        self.effects.retain(|e| match *e {
            Effect::SetPending { dom: d, .. }
            | Effect::Unmask { dom: d, .. }
            | Effect::ClearPending { dom: d, .. } => d != dom,
        });
        Ok(())
    }

    /// `EVTCHNOP_reset`: closes every port of `dom` (`DOMID_SELF` or, for a
    /// privileged caller, another domain); the domain stays known.
    pub fn reset(&mut self, me: DomId, dom: DomId) -> Result<(), Errno> {
        let dom = self.target(me, dom)?;
        let n = self.domains.get(&dom).map_or(0, |d| d.chans.len());
        for p in 1..n {
            let _ = self.close(dom, p as Port);
        }
        Ok(())
    }

    /// The shared-page changes queued since the last call, oldest first.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        core::mem::take(&mut self.effects)
    }

    /// As [`Self::take_effects`], into `into` (emptied first): the two
    /// buffers trade places, so that a caller that keeps its buffer makes
    /// neither allocate once they have grown.
    pub fn swap_effects(&mut self, into: &mut Vec<Effect>) {
        into.clear();
        core::mem::swap(&mut self.effects, into);
    }

    /// A port's channel, for inspection. None if `dom` is unknown or the
    /// port beyond its table.
    pub fn channel(&self, dom: DomId, port: Port) -> Option<Channel> {
        self.domains.get(&dom)?.chans.get(port as usize).copied()
    }

    /// Ports in `dom`'s table (bound or free), for inspection.
    pub fn table_len(&self, dom: DomId) -> usize {
        self.domains.get(&dom).map_or(0, |d| d.chans.len())
    }

    /// Ports bound (not free) over every domain, for the resource
    /// accounts.
    pub fn ports_in_use(&self) -> usize {
        self.domains
            .values()
            .map(|d| {
                d.chans
                    .iter()
                    .filter(|c| c.state != PortState::Free)
                    .count()
            })
            .sum()
    }

    /// Domain ids known to the registry.
    pub fn domain_ids(&self) -> impl Iterator<Item = DomId> + '_ {
        self.domains.keys().copied()
    }

    fn resolve(me: DomId, dom: DomId) -> DomId {
        if dom == DOMID_SELF {
            me
        } else {
            dom
        }
    }

    fn dom_mut(&mut self, dom: DomId) -> Result<&mut DomainPorts, Errno> {
        self.domains.get_mut(&dom).ok_or(Errno::Srch)
    }

    /// The target of an operation `me` performs on `dom`'s ports: -ESRCH if
    /// `dom` does not exist, -EPERM if `me` may not act on it.
    fn target(&self, me: DomId, dom: DomId) -> Result<DomId, Errno> {
        let dom = Self::resolve(me, dom);
        if !self.domains.contains_key(&dom) {
            return Err(Errno::Srch);
        }
        let privileged = self.domains.get(&me).is_some_and(|d| d.cfg.privileged);
        if dom != me && !privileged {
            return Err(Errno::Perm);
        }
        Ok(dom)
    }

    /// `EVTCHNOP_alloc_unbound`: a port of `dom` (`DOMID_SELF` or, for a
    /// privileged caller, another domain) that `remote_dom` may bind to.
    /// `remote_dom` need not exist yet, as in Xen.
    pub fn alloc_unbound(
        &mut self,
        me: DomId,
        dom: DomId,
        remote_dom: DomId,
    ) -> Result<Port, Errno> {
        let dom = self.target(me, dom)?;
        let remote = Self::resolve(me, remote_dom);
        let d = self.dom_mut(dom)?;
        let port = d.free_port()?;
        d.bind(port, PortState::Unbound { remote }, 0);
        Ok(port)
    }

    /// `EVTCHNOP_bind_interdomain`: connects a new local port to
    /// `remote_port` of `remote_dom`, which must be unbound toward `me`.
    /// Like Xen, marks the new local port pending (notifications sent to
    /// the unbound port were dropped).
    pub fn bind_interdomain(
        &mut self,
        me: DomId,
        remote_dom: DomId,
        remote_port: Port,
    ) -> Result<Port, Errno> {
        let rdom = Self::resolve(me, remote_dom);
        if !self.domains.contains_key(&rdom) {
            return Err(Errno::Srch);
        }
        let lport = self.dom_mut(me)?.free_port()?;
        let rd = self.dom_mut(rdom)?;
        match rd.chan(remote_port)?.state {
            PortState::Unbound { remote } if remote == me => {}
            _ => return Err(Errno::Inval),
        }
        rd.chan_mut(remote_port)?.state = PortState::Interdomain {
            remote_dom: me,
            remote_port: lport,
        };
        let ld = self.dom_mut(me)?;
        ld.bind(
            lport,
            PortState::Interdomain {
                remote_dom: rdom,
                remote_port,
            },
            0,
        );
        self.effects.push(Effect::SetPending {
            dom: me,
            port: lport,
            vcpu: 0,
        });
        Ok(lport)
    }

    /// `EVTCHNOP_bind_virq`: one port per (virq, vcpu); global VIRQs only
    /// on vCPU 0.
    pub fn bind_virq(&mut self, me: DomId, virq: u32, vcpu: VcpuId) -> Result<Port, Errno> {
        if virq >= virq::NR_VIRQS {
            return Err(Errno::Inval);
        }
        if virq::is_global(virq) && vcpu != 0 {
            return Err(Errno::Inval);
        }
        let d = self.dom_mut(me)?;
        d.check_vcpu(vcpu)?;
        if d.virqs.contains_key(&(virq, vcpu)) {
            return Err(Errno::Exist);
        }
        let port = d.free_port()?;
        d.bind(port, PortState::Virq { virq, vcpu }, vcpu);
        d.virqs.insert((virq, vcpu), port);
        Ok(port)
    }

    /// `EVTCHNOP_bind_ipi`: a port that notifies `vcpu` of `me` itself.
    pub fn bind_ipi(&mut self, me: DomId, vcpu: VcpuId) -> Result<Port, Errno> {
        let d = self.dom_mut(me)?;
        d.check_vcpu(vcpu)?;
        let port = d.free_port()?;
        d.bind(port, PortState::Ipi { vcpu }, vcpu);
        Ok(port)
    }

    /// `EVTCHNOP_bind_pirq`: -EINVAL beyond the domain's pirq space,
    /// -EEXIST if already bound, -EPERM if the pirq was not given to it.
    pub fn bind_pirq(&mut self, me: DomId, pirq: u32) -> Result<Port, Errno> {
        let d = self.dom_mut(me)?;
        if pirq >= d.cfg.nr_pirqs {
            return Err(Errno::Inval);
        }
        if d.pirqs.contains_key(&pirq) {
            return Err(Errno::Exist);
        }
        if !d.permitted_pirqs.contains(&pirq) {
            return Err(Errno::Perm);
        }
        let port = d.free_port()?;
        d.bind(port, PortState::Pirq { pirq }, 0);
        d.pirqs.insert(pirq, port);
        Ok(port)
    }

    /// `EVTCHNOP_close`. An interdomain peer's port becomes unbound toward
    /// `me`, so the peer can be rebound.
    pub fn close(&mut self, me: DomId, port: Port) -> Result<(), Errno> {
        let d = self.dom_mut(me)?;
        let c = *d.chan(port)?;
        match c.state {
            PortState::Free => return Err(Errno::Inval),
            PortState::Unbound { .. } | PortState::Ipi { .. } => {}
            PortState::Virq { virq, vcpu } => {
                d.virqs.remove(&(virq, vcpu));
            }
            PortState::Pirq { pirq } => {
                d.pirqs.remove(&pirq);
            }
            PortState::Interdomain {
                remote_dom,
                remote_port,
            } => {
                if let Some(rc) = self
                    .domains
                    .get_mut(&remote_dom)
                    .and_then(|rd| rd.chans.get_mut(remote_port as usize))
                {
                    if rc.state
                        == (PortState::Interdomain {
                            remote_dom: me,
                            remote_port: port,
                        })
                    {
                        rc.state = PortState::Unbound { remote: me };
                    }
                }
            }
        }
        self.dom_mut(me)?.bind(port, PortState::Free, 0);
        self.effects.push(Effect::ClearPending { dom: me, port });
        Ok(())
    }

    /// `EVTCHNOP_send`: an interdomain port notifies the peer's port, an
    /// IPI port itself; a send on an unbound port is dropped; anything
    /// else is -EINVAL.
    pub fn send(&mut self, me: DomId, port: Port) -> Result<(), Errno> {
        let d = self.domains.get(&me).ok_or(Errno::Srch)?;
        let c = *d.chan(port)?;
        match c.state {
            PortState::Interdomain {
                remote_dom,
                remote_port,
            } => {
                let vcpu = self
                    .channel(remote_dom, remote_port)
                    .map_or(0, |rc| rc.notify_vcpu);
                self.effects.push(Effect::SetPending {
                    dom: remote_dom,
                    port: remote_port,
                    vcpu,
                });
                Ok(())
            }
            PortState::Ipi { .. } => {
                self.effects.push(Effect::SetPending {
                    dom: me,
                    port,
                    vcpu: c.notify_vcpu,
                });
                Ok(())
            }
            PortState::Unbound { .. } => Ok(()),
            _ => Err(Errno::Inval),
        }
    }

    /// Raises `virq` for `vcpu` of `dom` (a global VIRQ on the vCPU its
    /// port notifies). Returns whether a port was bound.
    pub fn raise_virq(&mut self, dom: DomId, virq: u32, vcpu: VcpuId) -> bool {
        let key = (virq, if virq::is_global(virq) { 0 } else { vcpu });
        let Some(d) = self.domains.get(&dom) else {
            return false;
        };
        let Some(&port) = d.virqs.get(&key) else {
            return false;
        };
        let vcpu = d.chans.get(port as usize).map_or(0, |c| c.notify_vcpu);
        self.effects.push(Effect::SetPending { dom, port, vcpu });
        true
    }

    /// Raises `pirq` of `dom` if a port is bound to it.
    pub fn raise_pirq(&mut self, dom: DomId, pirq: u32) -> bool {
        let Some(d) = self.domains.get(&dom) else {
            return false;
        };
        let Some(&port) = d.pirqs.get(&pirq) else {
            return false;
        };
        let vcpu = d.chans.get(port as usize).map_or(0, |c| c.notify_vcpu);
        self.effects.push(Effect::SetPending { dom, port, vcpu });
        true
    }

    /// `EVTCHNOP_status` for `port` of `dom` (`DOMID_SELF` or, for a
    /// privileged caller, another domain). A free port reports
    /// `EVTCHNSTAT_closed`. `dom` and `port` are echoed as given, since the
    /// guest's whole structure is written back.
    pub fn status(&self, me: DomId, dom: DomId, port: Port) -> Result<EvtchnStatus, Errno> {
        let target = self.target(me, dom)?;
        let d = self.domains.get(&target).ok_or(Errno::Srch)?;
        let c = d.chan(port)?;
        let (status, u) = match c.state {
            PortState::Free => (stat::CLOSED, [0, 0]),
            PortState::Unbound { remote } => (stat::UNBOUND, [u32::from(remote), 0]),
            PortState::Interdomain {
                remote_dom,
                remote_port,
            } => (stat::INTERDOMAIN, [u32::from(remote_dom), remote_port]),
            PortState::Pirq { pirq } => (stat::PIRQ, [pirq, 0]),
            PortState::Virq { virq, .. } => (stat::VIRQ, [virq, 0]),
            PortState::Ipi { .. } => (stat::IPI, [0, 0]),
        };
        Ok(EvtchnStatus {
            dom,
            port,
            status,
            vcpu: c.notify_vcpu,
            u,
        })
    }

    /// `EVTCHNOP_bind_vcpu`: changes the vCPU notified for an unbound,
    /// interdomain, pirq or global-VIRQ port; -EINVAL for others.
    pub fn bind_vcpu(&mut self, me: DomId, port: Port, vcpu: VcpuId) -> Result<(), Errno> {
        let d = self.dom_mut(me)?;
        d.check_vcpu(vcpu)?;
        let c = d.chan_mut(port)?;
        match c.state {
            PortState::Virq { virq, .. } if virq::is_global(virq) => {}
            PortState::Unbound { .. } | PortState::Interdomain { .. } | PortState::Pirq { .. } => {}
            _ => return Err(Errno::Inval),
        }
        c.notify_vcpu = vcpu;
        Ok(())
    }

    /// `EVTCHNOP_unmask`: queues the unmask of `port` in `me`'s page.
    pub fn unmask(&mut self, me: DomId, port: Port) -> Result<(), Errno> {
        let d = self.domains.get(&me).ok_or(Errno::Srch)?;
        let vcpu = d.chan(port)?.notify_vcpu;
        self.effects.push(Effect::Unmask {
            dom: me,
            port,
            vcpu,
        });
        Ok(())
    }
}
