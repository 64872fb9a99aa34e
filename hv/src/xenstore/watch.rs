//! Watches: a client names a path and a token; every change at or below
//! that path (and the removal of an ancestor) queues a `WATCH_EVENT` for it.
//! Events wait in a per-domain queue until the caller takes them, so the
//! store never calls back into a backend.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use vmm_glue::compact::VecMap;

use super::store::{domain_path, is_at_or_below, Change, DomId};
use super::wire::{Header, MsgType, Reply, XsError, PAYLOAD_MAX};

/// Events kept per domain that has not taken them; older ones are dropped
/// beyond this (a client that never reads its ring must not grow the heap).
pub const MAX_PENDING: usize = 1024;

/// One registered watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    pub domid: DomId,
    /// The path as the client gave it (relative, absolute or `@special`).
    pub path: String,
    /// The absolute path (or the `@special` name) it matches against.
    pub abs: String,
    pub token: String,
}

impl Watch {
    /// The path to report for a change at `abs_event`: relative if the
    /// watch was set up with a relative path.
    fn report_path(&self, abs_event: &str) -> String {
        if self.path.starts_with('/') || self.path.starts_with('@') {
            return abs_event.into();
        }
        let home = domain_path(self.domid);
        abs_event
            .strip_prefix(home.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or(abs_event)
            .into()
    }
}

/// A `WATCH_EVENT` to deliver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    pub path: String,
    pub token: String,
}

impl WatchEvent {
    /// The unsolicited message: `path\0token\0`, req_id and tx_id 0.
    pub fn to_reply(&self) -> Reply {
        let mut p = Vec::with_capacity(self.path.len() + self.token.len() + 2);
        p.extend_from_slice(self.path.as_bytes());
        p.push(0);
        p.extend_from_slice(self.token.as_bytes());
        p.push(0);
        Reply::new(MsgType::WatchEvent, &Header::default(), p)
    }
}

/// All watches and the events waiting for delivery.
#[derive(Clone, Debug, Default)]
pub struct Watches {
    list: Vec<Watch>,
    pending: VecMap<DomId, VecDeque<WatchEvent>>,
    /// Events dropped because a queue was full or they were too long to
    /// send.
    pub dropped: u64,
}

impl Watches {
    /// Watches `domid` holds.
    pub fn count(&self, domid: DomId) -> usize {
        self.list.iter().filter(|w| w.domid == domid).count()
    }

    /// Adds a watch and queues its initial event (fired once straight away,
    /// with the watch's own path). `EEXIST` for the same path and token
    /// twice, `E2BIG` over `quota` (domain 0 has no quota).
    pub fn add(&mut self, watch: Watch, quota: usize) -> Result<(), XsError> {
        let dup = self
            .list
            .iter()
            .any(|w| w.domid == watch.domid && w.abs == watch.abs && w.token == watch.token);
        if dup {
            return Err(XsError::Exist);
        }
        if watch.domid != 0 && self.count(watch.domid) >= quota {
            return Err(XsError::TooBig);
        }
        let first = WatchEvent {
            path: watch.path.clone(),
            token: watch.token.clone(),
        };
        self.queue(watch.domid, first);
        self.list.push(watch);
        Ok(())
    }

    /// Removes a watch; `ENOENT` if there is none with that path and token.
    pub fn remove(&mut self, domid: DomId, abs: &str, token: &str) -> Result<(), XsError> {
        let before = self.list.len();
        self.list
            .retain(|w| !(w.domid == domid && w.abs == abs && w.token == token));
        if self.list.len() == before {
            Err(XsError::NoEnt)
        } else {
            Ok(())
        }
    }

    /// Drops every watch of `domid` (RESET_WATCHES); queued events stay.
    pub fn reset(&mut self, domid: DomId) {
        self.list.retain(|w| w.domid != domid);
    }

    /// Drops every watch and queued event of a domain that is going away.
    pub fn forget_domain(&mut self, domid: DomId) {
        self.reset(domid);
        self.pending.remove(&domid);
    }

    fn queue(&mut self, domid: DomId, ev: WatchEvent) {
        // A change deep below a watch with a long token would make an event
        // over the payload limit, which a guest's xenbus treats as a broken
        // ring; like xenstored, do not send it.
        if ev.path.len() + ev.token.len() + 2 > PAYLOAD_MAX {
            self.dropped += 1;
            return;
        }
        let q = self.pending.entry(domid).or_default();
        if q.len() >= MAX_PENDING {
            q.pop_front();
            self.dropped += 1;
        }
        q.push_back(ev);
    }

    /// Queues events for a change to the tree. A watch matches a change at
    /// or below its path; a removal also matches watches below the removed
    /// node, reported with the watch's own path. Only domains that may read
    /// the changed node hear about it.
    pub fn fire(&mut self, change: &Change) {
        let mut out = Vec::new();
        for w in &self.list {
            if w.abs.starts_with('@') {
                continue;
            }
            let at = if is_at_or_below(&change.path, &w.abs) {
                change.path.as_str()
            } else if change.removed && is_at_or_below(&w.abs, &change.path) {
                w.abs.as_str()
            } else {
                continue;
            };
            if !change.perms.can_read(w.domid) {
                continue;
            }
            out.push((
                w.domid,
                WatchEvent {
                    path: w.report_path(at),
                    token: w.token.clone(),
                },
            ));
        }
        for (d, ev) in out {
            self.queue(d, ev);
        }
    }

    /// Queues `@introduceDomain` / `@releaseDomain` for every watcher of
    /// that name.
    pub fn fire_special(&mut self, name: &str) {
        let out: Vec<_> = self
            .list
            .iter()
            .filter(|w| w.abs == name)
            .map(|w| {
                (
                    w.domid,
                    WatchEvent {
                        path: name.into(),
                        token: w.token.clone(),
                    },
                )
            })
            .collect();
        for (d, ev) in out {
            self.queue(d, ev);
        }
    }

    /// Whether events are queued for `domid`.
    pub fn has_pending(&self, domid: DomId) -> bool {
        // Asked after every request: most of the time nothing waits at all.
        !self.pending.is_empty() && self.pending.get(&domid).is_some_and(|q| !q.is_empty())
    }

    /// Takes the events queued for `domid`, oldest first.
    pub fn take(&mut self, domid: DomId) -> Vec<WatchEvent> {
        self.pending
            .remove(&domid)
            .map(Vec::from)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::wire::{Header, MsgType, PAYLOAD_MAX};
    use super::super::Xenstore;
    use alloc::format;
    use alloc::string::String;

    fn send(xs: &mut Xenstore, ty: MsgType, payload: &str) -> String {
        let h = Header {
            ty: ty as u32,
            req_id: 1,
            tx_id: 0,
            len: payload.len() as u32,
        };
        let r = xs.request(1, h, payload.as_bytes());
        String::from_utf8_lossy(&r.payload).into_owned()
    }

    /// A 4000-byte token on a watch and a 1000-byte path below it made a
    /// 5004-byte event (the `xenstore_wire` fuzz target checks every event
    /// against the limit).
    #[test]
    fn an_event_over_the_payload_limit_is_dropped_not_queued() {
        let mut xs = Xenstore::default();
        xs.introduce_domain(1);
        let token = "t".repeat(4000);
        assert_eq!(
            send(&mut xs, MsgType::Watch, &format!("a\0{token}\0")),
            "OK\0"
        );
        let deep = format!("a/{}", "b".repeat(1000));
        assert_eq!(send(&mut xs, MsgType::Write, &format!("{deep}\0v")), "OK\0");
        let events = xs.take_events(1);
        // The watch's first event and the creation of `a` fit; `a/bbb...`
        // does not.
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|e| e.path == "a"));
        for e in &events {
            assert!(e.to_reply().payload.len() <= PAYLOAD_MAX);
        }
        assert_eq!(xs.watches.dropped, 1);
    }
}
