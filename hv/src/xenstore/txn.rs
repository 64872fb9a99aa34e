//! Transactions. A transaction works on its own copy of the tree (as
//! xenstored does: "when transaction is started whole db is copied") and
//! remembers the generation of every node it looked at. Commit applies the
//! nodes it changed only if none of those nodes changed in the live tree
//! meanwhile; otherwise the client gets `EAGAIN` and retries.

use alloc::string::String;
use alloc::vec::Vec;
use vmm_glue::compact::VecMap;

use super::store::{parent, Change, DomId, Tree};
use super::wire::XsError;

/// One open transaction.
#[derive(Clone, Debug)]
pub struct Txn {
    pub domid: DomId,
    /// The private copy all operations in the transaction use.
    pub tree: Tree,
    pub log: TxnLog,
    /// Nodes `domid` owned when the transaction started.
    owned_at_start: u32,
}

/// What a transaction depends on and what it changed.
#[derive(Clone, Debug, Default)]
pub struct TxnLog {
    /// Path -> the node's generation when the transaction first touched it
    /// (`None`: absent then).
    seen: VecMap<String, Option<u64>>,
    /// Changes to report to watches on commit.
    changes: Vec<Change>,
}

impl TxnLog {
    fn note(&mut self, tree: &Tree, path: &str) {
        if !self.seen.contains_key(path) {
            self.seen.insert(path.into(), tree.get(path).map(|n| n.gen));
        }
    }

    /// Records `path` and its missing ancestors up to the nearest existing
    /// one: what a read, write or mkdir of `path` depends on. Call it
    /// before the operation, with the transaction's tree.
    pub fn touch(&mut self, tree: &Tree, path: &str) {
        let mut cur = Some(path);
        while let Some(p) = cur {
            self.note(tree, p);
            if tree.get(p).is_some() {
                break;
            }
            cur = parent(p);
        }
    }

    /// Records what removing `path` depends on: its subtree and parent.
    pub fn touch_subtree(&mut self, tree: &Tree, path: &str) {
        self.touch(tree, path);
        for p in tree.subtree(path) {
            self.note(tree, &p);
        }
        if let Some(p) = parent(path) {
            self.note(tree, p);
        }
    }

    /// Keeps changes for the commit.
    pub fn record(&mut self, changes: Vec<Change>) {
        self.changes.extend(changes);
    }
}

impl Txn {
    /// Starts a transaction for `domid` on a copy of `live`.
    pub fn new(domid: DomId, live: &Tree) -> Self {
        Self {
            domid,
            tree: live.clone(),
            log: TxnLog::default(),
            owned_at_start: live.owned_by(domid),
        }
    }

    /// Applies the transaction to `live`, or fails with nothing applied:
    /// `EAGAIN` if a node it touched changed there since, `ENOSPC` if the
    /// nodes it adds would take the domain over `node_quota` (several
    /// transactions may each have stayed under it). Returns the changes
    /// for watches.
    pub fn commit(self, live: &mut Tree, node_quota: Option<u32>) -> Result<Vec<Change>, XsError> {
        let conflict = self
            .log
            .seen
            .iter()
            .any(|(p, gen)| live.get(p).map(|n| n.gen) != *gen);
        if conflict {
            return Err(XsError::Again);
        }
        if let Some(quota) = node_quota {
            let added = i64::from(self.tree.owned_by(self.domid)) - i64::from(self.owned_at_start);
            if i64::from(live.owned_by(self.domid)) + added > i64::from(quota) {
                return Err(XsError::NoSpc);
            }
        }
        // Parents sort before their children, so puts never orphan a node;
        // every removed node's descendants were recorded by touch_subtree.
        for (p, gen) in &self.log.seen {
            match self.tree.get(p) {
                Some(n) if Some(n.gen) != *gen => live.put(p, n.value.clone(), n.perms.clone()),
                Some(_) => {}
                None if gen.is_some() => live.remove_one(p),
                None => {}
            }
        }
        Ok(self.log.changes)
    }
}
