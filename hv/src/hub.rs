//! What the domains share through the hypervisor: the event channel
//! registry, the grant tables, the xenstore and the backends the hypervisor
//! runs for every guest (its xenstore connection and its PV console).
//!
//! The hypervisor is domain 0 here: it is the toolstack that writes each
//! guest's xenstore home, and the other end of each guest's xenstore and
//! console event channels. An operation of the running domain that changes
//! another domain's shared info page is queued in [`Hub::pending`] and
//! applied by the scheduler before that domain runs again.

use crate::evtchn::{self, DomId, Effect, EventChannels, Port};
use crate::grant::{Grants, DEFAULT_MAX_FRAMES};
use crate::xenstore::Xenstore;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use vmm_glue::compact::{VecMap, VecSet};

/// The hypervisor's own domain id in the registries.
pub const DOM0: DomId = 0;

/// Grant table frames a new domain has before it asks for more.
pub const INITIAL_GRANT_FRAMES: u32 = 1;

/// The pirqs a guest's port table may hold (passthrough interrupts).
pub const NR_PIRQS: u32 = 256;

/// One guest's connections to the hypervisor's backends: for each, the
/// guest's port and the hypervisor's (domain 0's) port of the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendPorts {
    pub xenstore_guest: Port,
    pub xenstore_dom0: Port,
    pub console_guest: Port,
    pub console_dom0: Port,
}

/// Which backend of a guest a domain-0 port belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Xenstore(DomId),
    Console(DomId),
    /// The PCI backend of a guest with passed-through functions.
    Pci(DomId),
}

/// What the hypervisor's own code runs when a node it watches changes: the
/// store (to read what changed) and the path that fired.
pub type WatchCallback = Box<dyn FnMut(&mut Xenstore, &str)>;

/// A watch of the hypervisor's own code, for [`Hub::unwatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchId {
    path: String,
    token: String,
}

/// The hypervisor's watches by token.
#[derive(Default)]
struct Watchers {
    next: u64,
    by_token: VecMap<String, WatchCallback>,
}

impl core::fmt::Debug for Watchers {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Watchers")
            .field("tokens", &self.by_token.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The state shared by every domain.
#[derive(Debug)]
pub struct Hub {
    pub evtchn: EventChannels,
    pub grants: Grants,
    pub xs: Xenstore,
    backends: VecMap<DomId, BackendPorts>,
    /// Domain 0's end of each PCI frontend's channel, by guest.
    pci_ports: VecMap<DomId, Port>,
    /// Effects on domains other than the one running, oldest first.
    pub pending: Vec<Effect>,
    /// Guests whose backends must look at their rings before they run again
    /// (a notification arrived while another domain ran, or a watch fired).
    pub service: VecSet<DomId>,
    watchers: Watchers,
    /// The domains that are PV guests (what `foreigndom` arguments of PV
    /// page-table hypercalls may name).
    pub pv_domains: VecSet<DomId>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    /// The registries with the hypervisor in them as domain 0.
    pub fn new() -> Self {
        let mut evtchn = EventChannels::new();
        // Cannot fail on an empty registry.
        let _ = evtchn.add_domain(
            DOM0,
            evtchn::DomainConfig {
                nr_vcpus: 1,
                nr_pirqs: 0,
                privileged: true,
            },
        );
        Self {
            evtchn,
            grants: Grants::new(),
            xs: Xenstore::default(),
            backends: VecMap::new(),
            pv_domains: VecSet::new(),
            pci_ports: VecMap::new(),
            pending: Vec::new(),
            service: VecSet::new(),
            watchers: Watchers::default(),
        }
    }

    /// Watches `path` for the hypervisor's own code (the in-hypervisor
    /// backends): `callback` runs from [`Hub::dispatch_watches`] with each
    /// path that fired, the first time for `path` itself, as xenstored
    /// fires a new watch at once.
    pub fn watch(
        &mut self,
        path: &str,
        callback: WatchCallback,
    ) -> Result<WatchId, crate::xenstore::store::XsError> {
        let token = format!("hv-{}", self.watchers.next);
        self.xs.watch(path, &token)?;
        self.watchers.next += 1;
        self.watchers.by_token.insert(token.clone(), callback);
        Ok(WatchId {
            path: String::from(path),
            token,
        })
    }

    /// Ends a watch of [`Hub::watch`]; events already queued for it are
    /// dropped.
    pub fn unwatch(&mut self, id: &WatchId) -> Result<(), crate::xenstore::store::XsError> {
        self.watchers.by_token.remove(&id.token);
        self.xs.unwatch(&id.path, &id.token)
    }

    /// Runs the callbacks of the watch events queued for the hypervisor;
    /// returns how many ran. The scheduler calls it between time slices.
    pub fn dispatch_watches(&mut self) -> usize {
        let mut ran = 0;
        for ev in self.xs.take_events(DOM0) {
            if let Some(cb) = self.watchers.by_token.get_mut(&ev.token) {
                cb(&mut self.xs, &ev.path);
                ran += 1;
            }
        }
        ran
    }

    /// Registers guest `dom` with one vCPU (see [`Self::add_domain_vcpus`]).
    pub fn add_domain(&mut self, dom: DomId) -> Result<BackendPorts, evtchn::Errno> {
        self.add_domain_vcpus(dom, 1)
    }

    /// Registers guest `dom` with `nr_vcpus` vCPUs: its port table, its
    /// grant table and the channels to the xenstore and console backends
    /// (each a port of the guest's, allocated unbound toward domain 0 and
    /// bound by it, as the toolstack and xenstored do).
    pub fn add_domain_vcpus(
        &mut self,
        dom: DomId,
        nr_vcpus: u32,
    ) -> Result<BackendPorts, evtchn::Errno> {
        self.evtchn.add_domain(
            dom,
            evtchn::DomainConfig {
                nr_vcpus,
                nr_pirqs: NR_PIRQS,
                privileged: false,
            },
        )?;
        let ports = (|| {
            self.grants.add_domain(dom, DEFAULT_MAX_FRAMES)?;
            // As in Xen, a table starts with one frame.
            if let Some(t) = self.grants.table_mut(dom) {
                let _ = t.setup_table(INITIAL_GRANT_FRAMES);
            }
            let xenstore_guest = self.evtchn.alloc_unbound(DOM0, dom, DOM0)?;
            let xenstore_dom0 = self.evtchn.bind_interdomain(DOM0, dom, xenstore_guest)?;
            let console_guest = self.evtchn.alloc_unbound(DOM0, dom, DOM0)?;
            let console_dom0 = self.evtchn.bind_interdomain(DOM0, dom, console_guest)?;
            Ok(BackendPorts {
                xenstore_guest,
                xenstore_dom0,
                console_guest,
                console_dom0,
            })
        })();
        match ports {
            Ok(p) => {
                // Binding marks domain 0's new ports pending: nothing to do.
                self.drop_dom0_effects();
                self.backends.insert(dom, p);
                Ok(p)
            }
            Err(e) => {
                self.remove_domain(dom);
                Err(e)
            }
        }
    }

    /// Forgets guest `dom`: its ports (domain 0's ends closed too), grant
    /// table, backends and queued effects.
    pub fn remove_domain(&mut self, dom: DomId) {
        self.pv_domains.remove(&dom);
        crate::xenstore::home::remove_domain_home(&mut self.xs, dom);
        self.unbind_pci(dom);
        if let Some(p) = self.backends.remove(&dom) {
            let _ = self.evtchn.close(DOM0, p.xenstore_dom0);
            let _ = self.evtchn.close(DOM0, p.console_dom0);
        }
        let _ = self.evtchn.destroy_domain(dom);
        let _ = self.grants.remove_domain(dom);
        self.drop_dom0_effects();
        self.pending.retain(|e| effect_domain(e) != dom);
        self.service.remove(&dom);
    }

    /// Writes guest `dom`'s xenstore home as a toolstack does (name,
    /// memory target in KiB, its console) and introduces it.
    pub fn introduce(
        &mut self,
        dom: DomId,
        name: &str,
        memory_kib: u64,
        ports: BackendPorts,
        rings: (u64, u64),
    ) -> Result<(), crate::xenstore::store::XsError> {
        crate::xenstore::home::create_domain_home(
            &mut self.xs,
            &crate::xenstore::home::DomainHome {
                domid: dom,
                name,
                memory_kib,
                console_ring_ref: rings.1 >> 12,
                console_port: ports.console_guest,
            },
        )?;
        crate::xenstore::home::write_store_ring(
            &mut self.xs,
            dom,
            ports.xenstore_guest,
            rings.0 >> 12,
        )
    }

    /// Binds domain 0's end of guest `dom`'s PCI frontend channel: the
    /// guest's `guest_port`, allocated unbound toward domain 0. A second
    /// bind replaces the first (its port is closed).
    pub fn bind_pci(&mut self, dom: DomId, guest_port: Port) -> Result<Port, evtchn::Errno> {
        let p = self.evtchn.bind_interdomain(DOM0, dom, guest_port)?;
        self.unbind_pci(dom);
        self.drop_dom0_effects();
        self.pci_ports.insert(dom, p);
        Ok(p)
    }

    /// Closes domain 0's end of guest `dom`'s PCI channel, if bound.
    pub fn unbind_pci(&mut self, dom: DomId) {
        if let Some(p) = self.pci_ports.remove(&dom) {
            let _ = self.evtchn.close(DOM0, p);
            self.drop_dom0_effects();
        }
    }

    /// The backend a domain-0 port serves.
    pub fn backend_of(&self, dom0_port: Port) -> Option<Backend> {
        if let Some((&dom, _)) = self.pci_ports.iter().find(|(_, &p)| p == dom0_port) {
            return Some(Backend::Pci(dom));
        }
        self.backends.iter().find_map(|(&dom, p)| {
            if p.xenstore_dom0 == dom0_port {
                Some(Backend::Xenstore(dom))
            } else if p.console_dom0 == dom0_port {
                Some(Backend::Console(dom))
            } else {
                None
            }
        })
    }

    /// The backend ports of guest `dom`.
    pub fn ports(&self, dom: DomId) -> Option<BackendPorts> {
        self.backends.get(&dom).copied()
    }

    fn drop_dom0_effects(&mut self) {
        let effects = self.evtchn.take_effects();
        for e in effects {
            if effect_domain(&e) != DOM0 {
                self.pending.push(e);
            }
        }
    }

    /// Notifies guest `dom` on the channel of one of its backends.
    pub fn notify(&mut self, backend: Backend) {
        let (dom, pick): (DomId, fn(&BackendPorts) -> Port) = match backend {
            Backend::Xenstore(d) => (d, |p| p.xenstore_dom0),
            Backend::Console(d) => (d, |p| p.console_dom0),
            Backend::Pci(d) => {
                if let Some(&p) = self.pci_ports.get(&d) {
                    let _ = self.evtchn.send(DOM0, p);
                }
                return;
            }
        };
        if let Some(p) = self.backends.get(&dom) {
            let _ = self.evtchn.send(DOM0, pick(p));
        }
    }
}

/// Checks a domid argument of `me` that must name the caller itself:
/// another domain is -EPERM, a domain that does not exist -ESRCH (Xen
/// looks the domain up before it checks the permission).
pub fn only_self(me: DomId, domid: DomId, ev: &EventChannels) -> Result<(), evtchn::Errno> {
    if domid == vmm_glue::xen::event_channel::DOMID_SELF || domid == me {
        Ok(())
    } else if ev.has_domain(domid) {
        Err(evtchn::Errno::Perm)
    } else {
        Err(evtchn::Errno::Srch)
    }
}

/// The domain whose page an effect changes.
pub fn effect_domain(e: &Effect) -> DomId {
    match *e {
        Effect::SetPending { dom, .. }
        | Effect::Unmask { dom, .. }
        | Effect::ClearPending { dom, .. } => dom,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evtchn::PortState;
    use alloc::string::ToString;

    #[test]
    fn a_new_guest_gets_xenstore_and_console_channels_bound_to_dom0() {
        let mut hub = Hub::new();
        let p = hub.add_domain(3).unwrap();
        for (guest, dom0) in [
            (p.xenstore_guest, p.xenstore_dom0),
            (p.console_guest, p.console_dom0),
        ] {
            assert_eq!(
                hub.evtchn.channel(3, guest).map(|c| c.state),
                Some(PortState::Interdomain {
                    remote_dom: DOM0,
                    remote_port: dom0
                })
            );
            assert_eq!(
                hub.evtchn.channel(DOM0, dom0).map(|c| c.state),
                Some(PortState::Interdomain {
                    remote_dom: 3,
                    remote_port: guest
                })
            );
        }
        assert_eq!(hub.backend_of(p.xenstore_dom0), Some(Backend::Xenstore(3)));
        assert_eq!(hub.backend_of(p.console_dom0), Some(Backend::Console(3)));
        assert_eq!(hub.grants.table(3).map(|t| t.nr_frames()), Some(1));
    }

    #[test]
    fn binding_leaves_the_guests_ports_pending_for_it_and_nothing_for_dom0() {
        let mut hub = Hub::new();
        hub.add_domain(1).unwrap();
        assert!(hub.evtchn.take_effects().is_empty());
        assert!(hub.pending.iter().all(|e| effect_domain(e) == 1));
    }

    #[test]
    fn a_guest_send_on_its_xenstore_port_reaches_the_dom0_end() {
        let mut hub = Hub::new();
        let p = hub.add_domain(1).unwrap();
        hub.evtchn.send(1, p.xenstore_guest).unwrap();
        let e = hub.evtchn.take_effects();
        assert!(
            matches!(e.as_slice(), [Effect::SetPending { dom: DOM0, port, .. }] if *port == p.xenstore_dom0),
            "{e:?}"
        );
    }

    #[test]
    fn notify_sets_the_guests_port_pending() {
        let mut hub = Hub::new();
        let p = hub.add_domain(2).unwrap();
        hub.notify(Backend::Console(2));
        let e = hub.evtchn.take_effects();
        assert!(
            matches!(e.as_slice(), [Effect::SetPending { dom: 2, port, .. }] if *port == p.console_guest),
            "{e:?}"
        );
    }

    #[test]
    fn removing_a_guest_closes_dom0s_ends_and_forgets_its_effects() {
        let mut hub = Hub::new();
        let p = hub.add_domain(1).unwrap();
        let q = hub.add_domain(2).unwrap();
        hub.notify(Backend::Xenstore(1));
        hub.pending.extend(hub.evtchn.take_effects());
        hub.service.insert(1);
        hub.remove_domain(1);
        assert!(!hub.evtchn.has_domain(1));
        assert_eq!(
            hub.evtchn.channel(DOM0, p.xenstore_dom0).map(|c| c.state),
            Some(PortState::Free)
        );
        assert!(hub.pending.iter().all(|e| effect_domain(e) != 1));
        assert!(!hub.service.contains(&1));
        assert_eq!(hub.backend_of(p.xenstore_dom0), None);
        // The other guest's channels are untouched.
        assert_eq!(hub.backend_of(q.xenstore_dom0), Some(Backend::Xenstore(2)));
        // The id can be used again (a restarted domain gets a new one, but
        // nothing stale may stop it).
        assert!(hub.add_domain(1).is_ok());
    }

    #[test]
    fn introduce_writes_the_home_with_both_rings_and_removal_takes_it_away() {
        let mut hub = Hub::new();
        let p = hub.add_domain(4).unwrap();
        hub.introduce(4, "guest", 65536, p, (0xfe000, 0xfe001))
            .unwrap();
        let read = |hub: &mut Hub, k: &str| {
            hub.xs
                .read(&alloc::format!("/local/domain/4/{k}"))
                .map(|v| alloc::string::String::from_utf8(v).unwrap())
        };
        assert_eq!(read(&mut hub, "name").as_deref(), Ok("guest"));
        assert_eq!(
            read(&mut hub, "store/port"),
            Ok(p.xenstore_guest.to_string())
        );
        assert_eq!(read(&mut hub, "store/ring-ref"), Ok(0xfeu64.to_string()));
        assert_eq!(
            read(&mut hub, "console/port"),
            Ok(p.console_guest.to_string())
        );
        assert_eq!(read(&mut hub, "console/ring-ref"), Ok(0xfeu64.to_string()));
        hub.remove_domain(4);
        assert!(read(&mut hub, "name").is_err());
    }

    #[test]
    fn a_watch_of_the_hypervisor_runs_its_callback_with_each_path_that_fired() {
        use alloc::rc::Rc;
        use core::cell::RefCell;
        let mut hub = Hub::new();
        type Seen = Vec<(String, Vec<u8>)>;
        let seen: Rc<RefCell<Seen>> = Rc::default();
        let log = Rc::clone(&seen);
        hub.xs.mkdir("/backend/test").unwrap();
        let id = hub
            .watch(
                "/backend/test",
                Box::new(move |xs, path| {
                    let value = xs.read(path).unwrap_or_default();
                    log.borrow_mut().push((String::from(path), value));
                }),
            )
            .unwrap();
        // A new watch fires once at once.
        assert_eq!(hub.dispatch_watches(), 1);
        hub.xs.write("/backend/test/state", b"4").unwrap();
        assert_eq!(hub.dispatch_watches(), 1);
        assert_eq!(
            seen.borrow().last(),
            Some(&(String::from("/backend/test/state"), b"4".to_vec()))
        );
        // Nothing queued: nothing runs.
        assert_eq!(hub.dispatch_watches(), 0);
        hub.unwatch(&id).unwrap();
        hub.xs.write("/backend/test/state", b"5").unwrap();
        assert_eq!(hub.dispatch_watches(), 0);
        assert_eq!(seen.borrow().len(), 2);
    }

    #[test]
    fn a_domain_id_cannot_be_added_twice() {
        let mut hub = Hub::new();
        hub.add_domain(1).unwrap();
        assert_eq!(hub.add_domain(1), Err(evtchn::Errno::Exist));
        // The failed add did not take the existing domain down.
        assert!(hub.ports(1).is_some());
    }

    #[test]
    fn a_pci_frontend_channel_is_bound_served_and_closed_with_the_domain() {
        let mut hub = Hub::new();
        hub.add_domain(2).unwrap();
        let guest = hub.evtchn.alloc_unbound(2, 2, DOM0).unwrap();
        let dom0 = hub.bind_pci(2, guest).unwrap();
        assert_eq!(hub.backend_of(dom0), Some(Backend::Pci(2)));
        assert_eq!(
            hub.evtchn.channel(DOM0, dom0).map(|c| c.state),
            Some(PortState::Interdomain {
                remote_dom: 2,
                remote_port: guest
            })
        );
        // The backend's notification marks the guest's port.
        hub.pending.clear();
        hub.notify(Backend::Pci(2));
        let effects = hub.evtchn.take_effects();
        assert!(effects.iter().any(|e| matches!(
            *e,
            Effect::SetPending { dom: 2, port, .. } if port == guest
        )));
        // A port of another guest is not a PCI channel.
        assert_eq!(hub.bind_pci(2, 999), Err(evtchn::Errno::Inval));
        assert_eq!(hub.backend_of(dom0), Some(Backend::Pci(2)));
        hub.remove_domain(2);
        assert_eq!(hub.backend_of(dom0), None);
        assert_eq!(
            hub.evtchn.channel(DOM0, dom0).map(|c| c.state),
            Some(PortState::Free)
        );
    }
}
