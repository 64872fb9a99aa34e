//! An in-hypervisor xenstore: the key/value tree that Xen guests and the
//! in-hypervisor toolstack and backends use to find each other
//! (docs/misc/xenstore.txt in Xen). Pure logic: the ring page and event
//! channel are driven elsewhere, which feeds each complete request to
//! [`Xenstore::request`] and delivers the reply and [`Xenstore::take_events`].
//!
//! The hypervisor is domain 0: it bypasses permissions and quotas.
//!
//! Deliver a request's reply before the events taken after it: a new watch's
//! first event must follow the WATCH acknowledgement.

pub mod conn;
pub mod home;
pub mod path;
pub mod perms;
pub mod ring;
pub mod store;
pub mod txn;
pub mod watch;
pub mod wire;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use vmm_glue::compact::{VecMap, VecSet};

use store::{
    domain_path, parse_domid, resolve, resolve_into, Access, Change, DomId, Ops, Perms, Quotas,
    Tree,
};
use txn::{Txn, TxnLog};
use watch::{Watch, WatchEvent, Watches};
use wire::{parse_request, Header, MsgType, Reply, WireError, XsError, PAYLOAD_MAX};

/// Fired when a domain is introduced.
pub const INTRODUCE_DOMAIN: &str = "@introduceDomain";
/// Fired when a domain is released.
pub const RELEASE_DOMAIN: &str = "@releaseDomain";

/// The store, its open transactions and its watches.
#[derive(Debug)]
#[cfg_attr(any(test, fuzzing), derive(Clone))]
pub struct Xenstore {
    tree: Tree,
    quotas: Quotas,
    txns: VecMap<u32, Txn>,
    last_txid: u32,
    watches: Watches,
    introduced: VecSet<DomId>,
    /// The last read's path, kept for the next one's (no allocation).
    path_buf: String,
    /// A reply's payload handed back once it is on the ring
    /// ([`Xenstore::recycle`]), filled by the next read.
    spare: Vec<u8>,
}

impl Default for Xenstore {
    fn default() -> Self {
        Self::new(Quotas::default())
    }
}

/// Splits a payload into NUL-terminated strings; the payload must end in
/// a NUL.
fn strings(payload: &[u8]) -> Result<Vec<&[u8]>, XsError> {
    let body = payload.strip_suffix(b"\0").ok_or(XsError::Inval)?;
    Ok(body.split(|&b| b == 0).collect())
}

/// Exactly one NUL-terminated string.
fn one_arg(payload: &[u8]) -> Result<&[u8], XsError> {
    // As `strings` giving exactly one, without collecting them (every
    // read of a node comes here).
    let body = payload.strip_suffix(b"\0").ok_or(XsError::Inval)?;
    if body.contains(&0) {
        return Err(XsError::Inval);
    }
    Ok(body)
}

/// The one NUL-terminated path argument, resolved: [`one_arg`] without
/// its own pass over the bytes, since [`resolve`] refuses a NUL inside.
fn path_arg(domid: DomId, payload: &[u8]) -> Result<String, XsError> {
    resolve(domid, path_body(payload)?)
}

/// The path argument before its NUL, for [`resolve`] to check.
fn path_body(payload: &[u8]) -> Result<&[u8], XsError> {
    payload.strip_suffix(b"\0").ok_or(XsError::Inval)
}

fn nul_list<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut out = Vec::new();
    for s in items {
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }
    out
}

impl Xenstore {
    /// An empty store (only `/`, plus `/local/domain` for homes).
    pub fn new(quotas: Quotas) -> Self {
        let mut s = Self {
            tree: Tree::new(),
            quotas,
            txns: VecMap::new(),
            last_txid: 0,
            watches: Watches::default(),
            introduced: VecSet::new(),
            path_buf: String::new(),
            spare: Vec::new(),
        };
        // Cannot fail for domain 0 with a valid path.
        let _ = s.mkdir("/local/domain");
        s
    }

    /// Takes back a reply's payload once it is written out, for the next
    /// read to fill instead of allocating (one kept at a time, at most a
    /// payload's size).
    pub fn recycle(&mut self, payload: Vec<u8>) {
        if self.spare.capacity() == 0 && payload.capacity() <= PAYLOAD_MAX {
            self.spare = payload;
        }
    }

    /// The live tree, for inspection.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Open transactions of `domid`.
    pub fn transactions_of(&self, domid: DomId) -> usize {
        self.txns.values().filter(|t| t.domid == domid).count()
    }

    /// Parses and handles one complete request from `domid`'s ring.
    pub fn handle_message(&mut self, domid: DomId, bytes: &[u8]) -> Result<Reply, WireError> {
        let (h, payload) = parse_request(bytes)?;
        Ok(self.request(domid, h, payload))
    }

    /// Handles one request; the reply echoes `req_id` and `tx_id`, and is
    /// an `XS_ERROR` with the errno name on failure.
    pub fn request(&mut self, domid: DomId, header: Header, payload: &[u8]) -> Reply {
        let Some(ty) = MsgType::from_u32(header.ty) else {
            return Reply::error(&header, XsError::NoSys);
        };
        match self.dispatch(domid, ty, &header, payload) {
            Ok(p) if p.len() > PAYLOAD_MAX => Reply::error(&header, XsError::TooBig),
            Ok(p) => Reply::new(ty, &header, p),
            Err(e) => Reply::error(&header, e),
        }
    }

    fn dispatch(
        &mut self,
        domid: DomId,
        ty: MsgType,
        h: &Header,
        payload: &[u8],
    ) -> Result<Vec<u8>, XsError> {
        use MsgType as M;
        let ok = || b"OK\0".to_vec();
        let dom0_only = || {
            if domid == 0 {
                Ok(())
            } else {
                Err(XsError::Acces)
            }
        };
        match ty {
            M::Read | M::Directory | M::GetPerms => {
                // The kept buffers: the path's, and a reply's for the value.
                let path = core::mem::take(&mut self.path_buf);
                let path = resolve_into(domid, path_body(payload)?, path)?;
                let value = core::mem::take(&mut self.spare);
                let read = self.in_tx(domid, h.tx_id, |ops, log| {
                    if let Some(log) = log {
                        log.touch(ops.tree, &path);
                    }
                    match ty {
                        M::Read => ops.read_into(domid, &path, value),
                        M::Directory => ops.directory(domid, &path),
                        _ => ops.get_perms(domid, &path).map(|p| p.to_wire()),
                    }
                });
                self.path_buf = path;
                read
            }
            M::Write => {
                let nul = payload.iter().position(|&b| b == 0).ok_or(XsError::Inval)?;
                let path = resolve(domid, &payload[..nul])?;
                let value = &payload[nul + 1..];
                self.change(domid, h.tx_id, &path, false, |ops| {
                    ops.write(domid, &path, value)
                })?;
                Ok(ok())
            }
            M::Mkdir => {
                let path = path_arg(domid, payload)?;
                self.change(domid, h.tx_id, &path, false, |ops| ops.mkdir(domid, &path))?;
                Ok(ok())
            }
            M::Rm => {
                let path = path_arg(domid, payload)?;
                self.change(domid, h.tx_id, &path, true, |ops| ops.rm(domid, &path))?;
                Ok(ok())
            }
            M::SetPerms => {
                let nul = payload.iter().position(|&b| b == 0).ok_or(XsError::Inval)?;
                let path = resolve(domid, &payload[..nul])?;
                let perms = Perms::parse(&payload[nul + 1..])?;
                self.change(domid, h.tx_id, &path, false, |ops| {
                    ops.set_perms(domid, &path, perms)
                })?;
                Ok(ok())
            }
            M::Watch | M::Unwatch => {
                let args = strings(payload)?;
                let (Some(p), Some(t)) = (args.first(), args.get(1)) else {
                    return Err(XsError::Inval);
                };
                let token = core::str::from_utf8(t).map_err(|_| XsError::Inval)?;
                let path = core::str::from_utf8(p).map_err(|_| XsError::Inval)?;
                if ty == M::Watch {
                    self.watch_as(domid, path, token)?;
                } else {
                    let abs = watch_target(domid, path)?;
                    self.watches.remove(domid, &abs, token)?;
                }
                Ok(ok())
            }
            M::ResetWatches => {
                self.watches.reset(domid);
                self.txns.retain(|_, t| t.domid != domid);
                Ok(ok())
            }
            M::TransactionStart => {
                if h.tx_id != 0 {
                    return Err(XsError::Busy);
                }
                let id = self.start_transaction(domid)?;
                Ok(nul_list([format!("{id}").as_str()]))
            }
            M::TransactionEnd => {
                let commit = match one_arg(payload)? {
                    b"T" => true,
                    b"F" => false,
                    _ => return Err(XsError::Inval),
                };
                self.end_transaction(domid, h.tx_id, commit)?;
                Ok(ok())
            }
            M::GetDomainPath => {
                let d = parse_domid(one_arg(payload)?).ok_or(XsError::Inval)?;
                Ok(nul_list([domain_path(d).as_str()]))
            }
            M::IsDomainIntroduced => {
                dom0_only()?;
                let d = parse_domid(one_arg(payload)?).ok_or(XsError::Inval)?;
                Ok(if self.is_introduced(d) {
                    b"T\0"
                } else {
                    b"F\0"
                }
                .to_vec())
            }
            M::Introduce => {
                dom0_only()?;
                let args = strings(payload)?;
                let d = args
                    .first()
                    .and_then(|a| parse_domid(a))
                    .filter(|&d| d != 0)
                    .ok_or(XsError::Inval)?;
                self.introduce_domain(d);
                Ok(ok())
            }
            M::Release => {
                dom0_only()?;
                let d = parse_domid(one_arg(payload)?).ok_or(XsError::Inval)?;
                if !self.is_introduced(d) {
                    return Err(XsError::NoEnt);
                }
                self.release_domain(d);
                Ok(ok())
            }
            M::Resume | M::SetTarget => {
                dom0_only()?;
                Err(XsError::NoSys)
            }
            M::Control | M::DirectoryPart | M::WatchEvent | M::Error => Err(XsError::NoSys),
        }
    }

    /// Runs an operation on the live tree or in transaction `tx` (then
    /// with its log, to record what the operation depends on).
    fn in_tx<T>(
        &mut self,
        domid: DomId,
        tx: u32,
        f: impl FnOnce(&mut Ops<'_>, Option<&mut TxnLog>) -> Result<T, XsError>,
    ) -> Result<T, XsError> {
        if tx == 0 {
            let mut ops = Ops {
                tree: &mut self.tree,
                quotas: &self.quotas,
            };
            return f(&mut ops, None);
        }
        let t = self
            .txns
            .get_mut(&tx)
            .filter(|t| t.domid == domid)
            .ok_or(XsError::NoEnt)?;
        let mut ops = Ops {
            tree: &mut t.tree,
            quotas: &self.quotas,
        };
        f(&mut ops, Some(&mut t.log))
    }

    /// Runs a modifying operation: on the live tree (firing watches now) or
    /// in a transaction (keeping the changes for the commit).
    fn change(
        &mut self,
        domid: DomId,
        tx: u32,
        path: &str,
        subtree: bool,
        f: impl FnOnce(&mut Ops<'_>) -> Result<Vec<Change>, XsError>,
    ) -> Result<(), XsError> {
        let changes = self.in_tx(domid, tx, |ops, log| {
            let Some(log) = log else {
                return f(ops);
            };
            if subtree {
                log.touch_subtree(ops.tree, path);
            } else {
                log.touch(ops.tree, path);
            }
            let changes = f(ops)?;
            log.record(changes);
            Ok(Vec::new())
        })?;
        for c in &changes {
            self.watches.fire(c);
        }
        Ok(())
    }

    fn start_transaction(&mut self, domid: DomId) -> Result<u32, XsError> {
        if domid != 0 && self.transactions_of(domid) >= self.quotas.transactions {
            return Err(XsError::NoSpc);
        }
        let mut id = self.last_txid;
        loop {
            id = id.wrapping_add(1);
            if id != 0 && !self.txns.contains_key(&id) {
                break;
            }
        }
        self.last_txid = id;
        self.txns.insert(id, Txn::new(domid, &self.tree));
        Ok(id)
    }

    fn end_transaction(&mut self, domid: DomId, tx: u32, commit: bool) -> Result<(), XsError> {
        match self.txns.get(&tx) {
            Some(t) if t.domid == domid => {}
            _ => return Err(XsError::NoEnt),
        }
        let Some(t) = self.txns.remove(&tx) else {
            return Err(XsError::NoEnt);
        };
        if !commit {
            return Ok(());
        }
        let quota = (domid != 0).then_some(self.quotas.nodes);
        let changes = t.commit(&mut self.tree, quota)?;
        for c in &changes {
            self.watches.fire(c);
        }
        Ok(())
    }

    fn watch_as(&mut self, domid: DomId, path: &str, token: &str) -> Result<(), XsError> {
        let abs = watch_target(domid, path)?;
        let w = Watch {
            domid,
            path: path.into(),
            abs,
            token: token.into(),
        };
        self.watches.add(w, self.quotas.watches)
    }

    /// Whether `domid` has been introduced and not released.
    pub fn is_introduced(&self, domid: DomId) -> bool {
        self.introduced.contains(&domid)
    }

    /// Creates `/local/domain/<domid>` (owned by the domain, private to it)
    /// with `domid` inside, and fires `@introduceDomain`.
    pub fn introduce_domain(&mut self, domid: DomId) {
        let home = domain_path(domid);
        let _ = self.mkdir(&home);
        let _ = self.set_perms(&home, Perms::owned_by(domid, Access::None));
        let _ = self.write(&format!("{home}/domid"), format!("{domid}").as_bytes());
        self.introduced.insert(domid);
        self.watches.fire_special(INTRODUCE_DOMAIN);
    }

    /// Removes the domain's home, watches, transactions and queued events,
    /// and fires `@releaseDomain`.
    pub fn release_domain(&mut self, domid: DomId) {
        self.watches.forget_domain(domid);
        self.txns.retain(|_, t| t.domid != domid);
        let _ = self.rm(&domain_path(domid));
        self.introduced.remove(&domid);
        self.watches.fire_special(RELEASE_DOMAIN);
    }

    /// Events queued for `domid`, oldest first; the caller delivers them
    /// (for a guest, as [`WatchEvent::to_reply`] messages on its ring).
    pub fn take_events(&mut self, domid: DomId) -> Vec<WatchEvent> {
        self.watches.take(domid)
    }

    /// Whether events wait for `domid` (its ring needs servicing even if
    /// the guest has not signalled).
    pub fn has_pending_events(&self, domid: DomId) -> bool {
        self.watches.has_pending(domid)
    }

    fn dom0(&mut self) -> Ops<'_> {
        Ops {
            tree: &mut self.tree,
            quotas: &self.quotas,
        }
    }

    fn dom0_change(
        &mut self,
        f: impl FnOnce(&mut Ops<'_>) -> Result<Vec<Change>, XsError>,
    ) -> Result<(), XsError> {
        let changes = f(&mut self.dom0())?;
        for c in &changes {
            self.watches.fire(c);
        }
        Ok(())
    }

    /// Reads a value as domain 0.
    pub fn read(&mut self, path: &str) -> Result<Vec<u8>, XsError> {
        let path = resolve(0, path.as_bytes())?;
        self.dom0().read(0, &path)
    }

    /// Lists children as domain 0.
    pub fn directory(&mut self, path: &str) -> Result<Vec<String>, XsError> {
        let path = resolve(0, path.as_bytes())?;
        if self.tree.get(&path).is_none() {
            return Err(XsError::NoEnt);
        }
        Ok(self
            .tree
            .children(&path)
            .into_iter()
            .map(String::from)
            .collect())
    }

    /// Writes as domain 0, firing watches.
    pub fn write(&mut self, path: &str, value: &[u8]) -> Result<(), XsError> {
        let path = resolve(0, path.as_bytes())?;
        self.dom0_change(|o| o.write(0, &path, value))
    }

    /// Makes a node as domain 0.
    pub fn mkdir(&mut self, path: &str) -> Result<(), XsError> {
        let path = resolve(0, path.as_bytes())?;
        self.dom0_change(|o| o.mkdir(0, &path))
    }

    /// Removes a subtree as domain 0.
    pub fn rm(&mut self, path: &str) -> Result<(), XsError> {
        let path = resolve(0, path.as_bytes())?;
        self.dom0_change(|o| o.rm(0, &path))
    }

    /// Sets permissions as domain 0.
    pub fn set_perms(&mut self, path: &str, perms: Perms) -> Result<(), XsError> {
        let path = resolve(0, path.as_bytes())?;
        self.dom0_change(|o| o.set_perms(0, &path, perms))
    }

    /// Watches `path` (or `@introduceDomain` / `@releaseDomain`) as domain
    /// 0; events arrive through `take_events(0)`, starting with one for
    /// `path` itself.
    pub fn watch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        self.watch_as(0, path, token)
    }

    /// Removes a watch of domain 0.
    pub fn unwatch(&mut self, path: &str, token: &str) -> Result<(), XsError> {
        let abs = watch_target(0, path)?;
        self.watches.remove(0, &abs, token)
    }
}

/// What a watch path matches: a special `@name` as is, else the resolved
/// path.
fn watch_target(domid: DomId, path: &str) -> Result<String, XsError> {
    if path.starts_with('@') {
        if path.len() > wire::REL_PATH_MAX {
            return Err(XsError::Inval);
        }
        return Ok(path.into());
    }
    resolve(domid, path.as_bytes())
}

#[cfg(test)]
mod tests;
