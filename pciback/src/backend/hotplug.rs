//! Hot-plug into a connected frontend: the toolstack's writes of an
//! attach and a detach (libxl's `libxl__device_pci_add_xenstore` and
//! `..._remove_xenstore`) and the backend's Reconfiguring step (Linux
//! pciback's `xen_pcibk_reconfigure`).
//!
//! | step | attach | detach |
//! |---|---|---|
//! | toolstack | `key-N`, `dev-N`, `opts-N`, `state-N` = 1, `num_devs` = N+1, backend `state` = 7 | `state-N` = 5, backend `state` = 7 |
//! | frontend sees 7 | removes nothing, goes 7 | stops using the `vdev-N` of every `state-N` = 5, goes 7 |
//! | backend sees 7 | `vdev-N`, roots, `state-N` = 3; goes 8 | takes the function out of the guest's view (released by the hypervisor); goes 8 |
//! | frontend sees 8 | rescans its roots, goes 4 | rescans, goes 4 |
//! | backend sees 4 | goes 4 | goes 4; the toolstack deletes slot N's keys |
//!
//! Slots are keyed by N, which is never reused while the domain lives:
//! unlike libxl, a detach does not shift the higher slots down, so
//! `num_devs` counts slots ever used and a deleted slot reads as state 0,
//! which every frontend skips. Attach and detach need the backend
//! Connected with no reconfiguration under way (libxl waits for Connected
//! and gives up; here the caller is told at once). A frontend that closes
//! mid-way abandons the step: functions not yet in its view and those
//! being removed are all handed back.

use alloc::format;
use alloc::vec::Vec;

use vmm_glue::Sbdf;

use super::topology::{Placement, MAX_SLOTS};
use super::xenbus::{vdev, write_in, write_nth};
use super::{BackendError, Export, PciBackend, Store, Topology, XenbusState, XlOpts};
use crate::vdev::VirtDevice;

impl PciBackend {
    /// Whether a function at `p` may be hot-added now: the backend is
    /// Connected, idle, and the function fits the guest's view. The guest
    /// address it would get.
    pub fn check_attach(&self, p: Placement) -> Result<Sbdf, BackendError> {
        if self.state != XenbusState::Connected {
            return Err(if self.is_reconfiguring() {
                BackendError::Busy
            } else {
                BackendError::NotConnected(self.state)
            });
        }
        // Connected means the list was exported: the layout is there.
        let Ok(layout) = self.layout.as_ref() else {
            return Err(BackendError::NotConnected(self.state));
        };
        if p.header_type & 0x7f != 0 {
            return Err(BackendError::NotEndpoint {
                sbdf: p.host,
                header_type: p.header_type,
            });
        }
        if self.exports.iter().any(|e| e.dev.sbdf() == p.host) {
            return Err(BackendError::Duplicate(p.host));
        }
        if self.topology == Topology::Passthrough {
            return Ok(p.host);
        }
        // The slot of another function of the same device, else the
        // lowest free one (as Linux's vpci backend).
        let slot = match self
            .exports
            .iter()
            .zip(&layout.guest)
            .find(|(e, _)| e.dev.sbdf().with_func(0) == p.host.with_func(0))
        {
            Some((_, g)) => g.dev,
            None => (0..MAX_SLOTS as u8)
                .find(|s| layout.guest.iter().all(|g| g.dev != *s))
                .ok_or(BackendError::TooManySlots(p.host))?,
        };
        Sbdf::new(0, 0, slot, p.host.func).ok_or(BackendError::TooManySlots(p.host))
    }

    /// Whether an attach or detach waits for the frontend (backend 7 or
    /// 8).
    pub fn is_reconfiguring(&self) -> bool {
        matches!(
            self.state,
            XenbusState::Reconfiguring | XenbusState::Reconfigured
        )
    }

    /// Hot-adds `dev` (already assigned to this domain): the toolstack's
    /// writes and backend `state` = 7; the slot N it got. Refused as
    /// [`check_attach`](Self::check_attach) says; then `dev` is handed
    /// back at once through [`take_removed`](Self::take_removed). A store
    /// refusing a write leaves the function here (released with the
    /// domain, or by a detach).
    pub fn attach(
        &mut self,
        xs: &mut dyn Store,
        dev: VirtDevice,
        opts: XlOpts,
    ) -> Result<usize, BackendError> {
        let p = Placement {
            host: dev.sbdf(),
            header_type: dev.info().header_type,
        };
        let guest = match self.check_attach(p) {
            Ok(g) => g,
            Err(e) => {
                self.removed.push(dev);
                return Err(e);
            }
        };
        let key = self.next_key;
        self.next_key += 1;
        if let Ok(l) = self.layout.as_mut() {
            l.guest.push(guest);
        }
        let host = format!("{}", p.host);
        let o = opts.to_xenstore();
        self.exports.push(Export {
            dev,
            opts,
            key,
            sub: XenbusState::Initialising,
        });
        let be = self.backend_path();
        write_nth(xs, &be, "key", key, &host)?;
        write_nth(xs, &be, "dev", key, &host)?;
        write_nth(xs, &be, "opts", key, &o)?;
        write_nth(xs, &be, "state", key, "1")?;
        write_in(xs, &be, "num_devs", &format!("{}", self.next_key))?;
        self.switch_or_err(xs, XenbusState::Reconfiguring)?;
        Ok(key)
    }

    /// Hot-removes the function at host address `sbdf`: `state-N` = 5
    /// and backend `state` = 7; its slot N. The function stays in the
    /// guest's view until the frontend answers.
    pub fn detach(&mut self, xs: &mut dyn Store, sbdf: Sbdf) -> Result<usize, BackendError> {
        if self.state != XenbusState::Connected {
            return Err(if self.is_reconfiguring() {
                BackendError::Busy
            } else {
                BackendError::NotConnected(self.state)
            });
        }
        let e = self
            .exports
            .iter_mut()
            .find(|e| e.dev.sbdf() == sbdf)
            .ok_or(BackendError::NotAttached(sbdf))?;
        e.sub = XenbusState::Closing;
        let key = e.key;
        let be = self.backend_path();
        write_nth(xs, &be, "state", key, "5")?;
        self.switch_or_err(xs, XenbusState::Reconfiguring)?;
        Ok(key)
    }

    /// The frontend answered backend 7 with its own 7: slots in state 1
    /// are exported (`vdev-N`, a new root, `state-N` = 3), slots in state
    /// 5 leave the guest's view (Linux leaves `state-N` at 5); then
    /// backend 8.
    pub(super) fn reconfigure(&mut self, xs: &mut dyn Store) {
        let be = self.backend_path();
        let mut failed = None;
        let mut i = 0;
        while i < self.exports.len() {
            let (key, sub) = (self.exports[i].key, self.exports[i].sub);
            let guest = self.layout.as_ref().ok().and_then(|l| l.guest.get(i));
            match (sub, guest.copied()) {
                (XenbusState::Initialising, Some(g)) => {
                    let root = (g.seg, g.bus);
                    if let Ok(l) = self.layout.as_mut() {
                        if !l.roots.contains(&root) {
                            l.roots.push(root);
                            let n = l.roots.len();
                            let r = write_nth(
                                xs,
                                &be,
                                "root",
                                n - 1,
                                &format!("{:04x}:{:02x}", g.seg, g.bus),
                            )
                            .and_then(|()| write_in(xs, &be, "root_num", &format!("{n}")));
                            failed = failed.or(r.err());
                        }
                    }
                    let r = write_nth(xs, &be, "vdev", key, &vdev(g))
                        .and_then(|()| write_nth(xs, &be, "state", key, "3"));
                    failed = failed.or(r.err());
                    self.exports[i].sub = XenbusState::Initialised;
                }
                (XenbusState::Closing, _) => {
                    self.remove_at(i);
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
        if let Some(BackendError::Store(path)) = failed {
            self.notice(format!("reconfiguring: writing {path} was refused"));
        }
        self.switch(xs, XenbusState::Reconfigured);
    }

    /// The frontend is back to 4 after backend 8: the backend goes 4 and
    /// the removed slots' keys go (what libxl deletes).
    pub(super) fn reconfigured(&mut self, xs: &mut dyn Store) {
        self.switch(xs, XenbusState::Connected);
        self.forget_gone(xs);
    }

    /// The frontend closed: a reconfiguration under way ends here, every
    /// function not yet in its view or being removed is handed back.
    pub(super) fn abandon(&mut self, xs: &mut dyn Store) {
        let mut i = 0;
        while i < self.exports.len() {
            if matches!(
                self.exports[i].sub,
                XenbusState::Initialising | XenbusState::Closing
            ) {
                self.remove_at(i);
            } else {
                i += 1;
            }
        }
        self.forget_gone(xs);
    }

    fn remove_at(&mut self, i: usize) {
        let e = self.exports.remove(i);
        if let Ok(l) = self.layout.as_mut() {
            if i < l.guest.len() {
                l.guest.remove(i);
            }
        }
        self.gone.push(e.key);
        self.removed.push(e.dev);
    }

    fn forget_gone(&mut self, xs: &mut dyn Store) {
        let be = self.backend_path();
        for key in core::mem::take(&mut self.gone) {
            for k in ["state", "key", "dev", "vdev", "opts"] {
                xs.rm(&format!("{be}/{k}-{key}"));
            }
        }
    }

    /// Functions hot-removed, or whose hot-add was refused or abandoned:
    /// the hypervisor releases them (interrupts off, windows unmapped,
    /// reset, back to the pool).
    pub fn take_removed(&mut self) -> Vec<VirtDevice> {
        core::mem::take(&mut self.removed)
    }
}
