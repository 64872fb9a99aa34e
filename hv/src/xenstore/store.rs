//! The tree: the node map and owner counts, with Xen's rules for
//! each operation (docs/misc/xenstore.txt). Every existing node's parent
//! exists; `Tree::check_consistent` states it.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::ops::Bound;
use vmm_glue::compact::VecMap;

pub use super::path::{
    domain_path, is_at_or_below, parent, parse_domid, resolve, resolve_into, DomId,
};
pub use super::perms::{Access, Perm, Perms};
pub use super::wire::XsError;

/// Per-domain limits; domain 0 has none. Hitting one leaves the tree
/// unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quotas {
    /// Nodes a domain may own (`ENOSPC` beyond it).
    pub nodes: u32,
    /// Bytes in one value (`ENOSPC` beyond it).
    pub value_size: usize,
    /// Watches per domain (`E2BIG` beyond it).
    pub watches: usize,
    /// Open transactions per domain (`ENOSPC` beyond it).
    pub transactions: usize,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            nodes: 1000,
            value_size: 2048,
            watches: 128,
            transactions: 10,
        }
    }
}

/// One node. `gen` changes whenever the node, its permissions or its set of
/// children change, which is what transactions check for conflicts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub value: Vec<u8>,
    pub perms: Perms,
    pub gen: u64,
}

/// A change to report to watches: the path and whether it was a removal
/// (which also fires watches below it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub removed: bool,
    /// The node's permissions at the time, for filtering watch delivery.
    pub perms: Perms,
}

/// The whole store: nodes keyed by absolute path, so a subtree is a
/// contiguous range of keys.
#[derive(Clone, Debug)]
pub struct Tree {
    nodes: VecMap<String, Node>,
    owned: VecMap<DomId, u32>,
    next_gen: u64,
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

impl Tree {
    /// A tree with `/`, owned by domain 0 and readable by no one else.
    pub fn new() -> Self {
        let mut t = Self {
            nodes: VecMap::new(),
            owned: VecMap::new(),
            next_gen: 1,
        };
        t.put("/", Vec::new(), Perms::owned_by(0, Access::None));
        t
    }

    /// The node at `path`.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get_str(path)
    }

    /// Every node, parents before children.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|(k, n)| (k.as_str(), n))
    }

    /// Nodes owned by `domid`.
    pub fn owned_by(&self, domid: DomId) -> u32 {
        self.owned.get(&domid).copied().unwrap_or(0)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: `/` exists.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The generation last handed out: every change (a node put, one or
    /// more removed) bumps it, so a tree whose generation has not moved
    /// has not changed.
    #[cfg(any(test, fuzzing))]
    pub fn generation(&self) -> u64 {
        self.next_gen
    }

    fn bump(&mut self) -> u64 {
        self.next_gen += 1;
        self.next_gen
    }

    /// Inserts or replaces a node (keeping the owner counts), bumping the
    /// generation of the node and, for a new node, of its parent.
    pub(super) fn put(&mut self, path: &str, value: Vec<u8>, perms: Perms) {
        let gen = self.bump();
        let new_owner = perms.owner();
        match self
            .nodes
            .insert(path.to_string(), Node { value, perms, gen })
        {
            Some(old) => self.uncount(old.perms.owner()),
            None => self.touch_parent(path),
        }
        *self.owned.entry(new_owner).or_insert(0) += 1;
    }

    fn uncount(&mut self, owner: DomId) {
        if let Some(n) = self.owned.get_mut(&owner) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.owned.remove(&owner);
            }
        }
    }

    fn touch_parent(&mut self, path: &str) {
        let gen = self.bump();
        if let Some(p) = parent(path).and_then(|p| self.nodes.get_str_mut(p)) {
            p.gen = gen;
        }
    }

    /// Paths at and below `path`, parents first.
    pub fn subtree(&self, path: &str) -> Vec<String> {
        self.from(path)
            .filter(|k| is_at_or_below(k, path))
            .map(String::from)
            .collect()
    }

    /// Removes a node and everything below it; returns the removed paths.
    pub(super) fn remove_subtree(&mut self, path: &str) -> Vec<String> {
        let paths = self.subtree(path);
        for p in &paths {
            if let Some(n) = self.nodes.remove(p) {
                self.uncount(n.perms.owner());
            }
        }
        if !paths.is_empty() {
            self.touch_parent(path);
        }
        paths
    }

    /// Removes one node (its children must be removed too, by the caller).
    pub(super) fn remove_one(&mut self, path: &str) {
        if let Some(n) = self.nodes.remove(path) {
            self.uncount(n.perms.owner());
            self.touch_parent(path);
        }
    }

    /// Immediate children's leaf names, in order.
    pub fn children(&self, path: &str) -> Vec<&str> {
        let prefix_len = if path == "/" { 1 } else { path.len() + 1 };
        self.from(path)
            .filter(|k| k.len() > prefix_len && is_at_or_below(k, path))
            .map(|k| &k[prefix_len..])
            .filter(|leaf| !leaf.contains('/'))
            .collect()
    }

    /// Keys from `path` on while they start with it (a superset of the
    /// subtree: `/ab` follows `/a`).
    fn from<'t, 'p>(&'t self, path: &'p str) -> impl Iterator<Item = &'t str> + use<'t, 'p> {
        self.nodes
            .range::<str, _>((Bound::Included(path), Bound::Unbounded))
            .map(|(k, _)| k.as_str())
            .take_while(move |k| k.starts_with(path))
    }

    /// Every node's parent exists, and the owner counts match the nodes.
    ///
    /// One pass in key order, no lookups: the keys before a key that are
    /// prefixes of it are prefixes of the key just before it too (anything
    /// sorted between a prefix and the key starts with that prefix), so a
    /// stack of them is kept, and the parent, itself a prefix, exists if
    /// the stack holds a key of its length.
    pub fn check_consistent(&self) -> Result<(), String> {
        if !self.nodes.contains_key("/") {
            return Err("no root".into());
        }
        let mut owned = VecMap::new();
        let mut prefixes: Vec<&str> = Vec::new();
        for (path, node) in &self.nodes {
            while prefixes.last().is_some_and(|k| !path.starts_with(k)) {
                prefixes.pop();
            }
            if let Some(p) = parent(path) {
                if !prefixes.iter().any(|k| k.len() == p.len()) {
                    return Err(format!("{path} has no parent {p}"));
                }
            }
            prefixes.push(path);
            *owned.entry(node.perms.owner()).or_insert(0u32) += 1;
        }
        if owned != self.owned {
            return Err(format!("owner counts {:?} != {:?}", self.owned, owned));
        }
        Ok(())
    }
}

/// The error for a missing node: `ENOENT` if the caller could see that it
/// is missing (it may read the nearest existing ancestor), else `EACCES`.
fn missing(tree: &Tree, caller: DomId, path: &str) -> XsError {
    let mut p = parent(path);
    while let Some(cur) = p {
        if let Some(n) = tree.get(cur) {
            return if n.perms.can_read(caller) {
                XsError::NoEnt
            } else {
                XsError::Acces
            };
        }
        p = parent(cur);
    }
    XsError::NoEnt
}

/// The operations, with permission and quota checks, on one tree (the live
/// one or a transaction's copy). Each returns the changes to report.
#[derive(Debug)]
pub struct Ops<'a> {
    pub tree: &'a mut Tree,
    pub quotas: &'a Quotas,
}

impl Ops<'_> {
    /// READ: the value.
    pub fn read(&self, caller: DomId, path: &str) -> Result<Vec<u8>, XsError> {
        self.read_into(caller, path, Vec::new())
    }

    /// [`Ops::read`] into `buf`'s allocation (its content is replaced).
    pub fn read_into(&self, caller: DomId, path: &str, buf: Vec<u8>) -> Result<Vec<u8>, XsError> {
        let n = self.readable(caller, path)?;
        let mut out = buf;
        out.clear();
        out.extend_from_slice(&n.value);
        Ok(out)
    }

    fn readable(&self, caller: DomId, path: &str) -> Result<&Node, XsError> {
        let n = self
            .tree
            .get(path)
            .ok_or_else(|| missing(self.tree, caller, path))?;
        if !n.perms.can_read(caller) {
            return Err(XsError::Acces);
        }
        Ok(n)
    }

    /// DIRECTORY: the children's names, each NUL terminated.
    pub fn directory(&self, caller: DomId, path: &str) -> Result<Vec<u8>, XsError> {
        self.readable(caller, path)?;
        let mut out = Vec::new();
        for leaf in self.tree.children(path) {
            out.extend_from_slice(leaf.as_bytes());
            out.push(0);
        }
        Ok(out)
    }

    /// GET_PERMS.
    pub fn get_perms(&self, caller: DomId, path: &str) -> Result<Perms, XsError> {
        Ok(self.readable(caller, path)?.perms.clone())
    }

    /// The missing nodes from the nearest existing ancestor down to `path`,
    /// after checking `caller` may write that ancestor and has quota for
    /// them. New nodes inherit the ancestor's permissions with the caller
    /// as owner (a domain-0 caller keeps the inherited owner).
    fn plan_create(&self, caller: DomId, path: &str) -> Result<(Vec<String>, Perms), XsError> {
        let mut missing_paths = Vec::new();
        let mut cur = path;
        let base = loop {
            if let Some(n) = self.tree.get(cur) {
                break n;
            }
            missing_paths.push(cur.to_string());
            // `/` always exists, so this ends.
            cur = parent(cur).ok_or(XsError::Inval)?;
        };
        if !base.perms.can_write(caller) {
            return Err(if base.perms.can_read(caller) {
                XsError::Acces
            } else {
                missing(self.tree, caller, path)
            });
        }
        let mut perms = base.perms.clone();
        if caller != 0 {
            perms = perms.with_owner(caller);
            let owned = self.tree.owned_by(caller) as usize;
            if owned + missing_paths.len() > self.quotas.nodes as usize {
                return Err(XsError::NoSpc);
            }
        }
        missing_paths.reverse();
        Ok((missing_paths, perms))
    }

    fn create(&mut self, paths: &[String], perms: &Perms, changes: &mut Vec<Change>) {
        for p in paths {
            self.tree.put(p, Vec::new(), perms.clone());
            changes.push(Change {
                path: p.clone(),
                removed: false,
                perms: perms.clone(),
            });
        }
    }

    /// WRITE: sets the value, creating missing parents with empty values.
    pub fn write(
        &mut self,
        caller: DomId,
        path: &str,
        value: &[u8],
    ) -> Result<Vec<Change>, XsError> {
        if caller != 0 && value.len() > self.quotas.value_size {
            return Err(XsError::NoSpc);
        }
        let mut changes = Vec::new();
        if let Some(n) = self.tree.get(path) {
            if !n.perms.can_write(caller) {
                return Err(XsError::Acces);
            }
            let perms = n.perms.clone();
            self.tree.put(path, value.to_vec(), perms.clone());
            changes.push(Change {
                path: path.to_string(),
                removed: false,
                perms,
            });
        } else {
            let (paths, perms) = self.plan_create(caller, path)?;
            // The last planned node is `path` itself: create it, then set it.
            self.create(&paths, &perms, &mut changes);
            self.tree.put(path, value.to_vec(), perms);
        }
        Ok(changes)
    }

    /// MKDIR: makes sure the node exists; an existing one is left as it is
    /// (but the caller must be allowed to write it, as xenstored checks).
    pub fn mkdir(&mut self, caller: DomId, path: &str) -> Result<Vec<Change>, XsError> {
        let mut changes = Vec::new();
        if let Some(n) = self.tree.get(path) {
            if !n.perms.can_write(caller) {
                return Err(XsError::Acces);
            }
            return Ok(changes);
        }
        let (paths, perms) = self.plan_create(caller, path)?;
        self.create(&paths, &perms, &mut changes);
        Ok(changes)
    }

    /// RM: removes the node and its subtree. Not an error if the node is
    /// missing but its parent exists; `ENOENT` if the parent is missing too;
    /// `EINVAL` for `/`.
    pub fn rm(&mut self, caller: DomId, path: &str) -> Result<Vec<Change>, XsError> {
        if path == "/" {
            return Err(XsError::Inval);
        }
        let Some(n) = self.tree.get(path) else {
            let parent_exists = parent(path).is_some_and(|p| self.tree.get(p).is_some());
            return if parent_exists {
                Ok(Vec::new())
            } else {
                Err(missing(self.tree, caller, path))
            };
        };
        if !n.perms.can_write(caller) {
            return Err(XsError::Acces);
        }
        let perms = n.perms.clone();
        self.tree.remove_subtree(path);
        Ok(alloc::vec![Change {
            path: path.to_string(),
            removed: true,
            perms,
        }])
    }

    /// SET_PERMS: needs write access; only domain 0 may give a node to
    /// another owner (`EACCES` otherwise).
    pub fn set_perms(
        &mut self,
        caller: DomId,
        path: &str,
        perms: Perms,
    ) -> Result<Vec<Change>, XsError> {
        let n = self
            .tree
            .get(path)
            .ok_or_else(|| missing(self.tree, caller, path))?;
        if !n.perms.can_write(caller) {
            return Err(XsError::Acces);
        }
        let new_owner = perms.owner();
        if caller != 0 && new_owner != n.perms.owner() {
            return Err(XsError::Acces);
        }
        let old = n.perms.clone();
        let value = n.value.clone();
        self.tree.put(path, value, perms);
        Ok(alloc::vec![Change {
            path: path.to_string(),
            removed: false,
            perms: old,
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(tree: &mut Tree) -> Ops<'_> {
        static Q: Quotas = Quotas {
            nodes: 5,
            value_size: 8,
            watches: 2,
            transactions: 2,
        };
        Ops { tree, quotas: &Q }
    }

    #[test]
    fn write_creates_parents_inheriting_perms_with_caller_as_owner() {
        let mut t = Tree::new();
        let mut o = ops(&mut t);
        o.write(0, "/d", b"").unwrap();
        o.set_perms(0, "/d", Perms::parse(b"n0\0b1\0").unwrap())
            .unwrap();
        let ch = o.write(1, "/d/x/y", b"v").unwrap();
        assert_eq!(ch.len(), 2);
        let x = o.tree.get("/d/x").unwrap();
        assert_eq!(x.value, b"");
        assert_eq!(x.perms.to_wire(), b"n1\0b1\0");
        assert_eq!(o.read(1, "/d/x/y").unwrap(), b"v");
        assert_eq!(o.tree.owned_by(1), 2);
        t.check_consistent().unwrap();
    }

    #[test]
    fn check_consistent_finds_a_missing_parent_among_prefixes() {
        let mut t = Tree::new();
        // `-` and `.` sort before `/`: `/a-b` lies between `/a` and `/a/b`.
        for k in ["/a", "/a-b", "/a-b/c", "/a.", "/a/b", "/a/b/c", "/ab"] {
            t.put(k, Vec::new(), Perms::owned_by(0, Access::None));
        }
        t.check_consistent().unwrap();
        t.put("/a-b/c/d/e", Vec::new(), Perms::owned_by(0, Access::None));
        let e = t.check_consistent().unwrap_err();
        assert_eq!(e, "/a-b/c/d/e has no parent /a-b/c/d");
        t.remove_one("/a-b/c/d/e");
        t.remove_one("/a");
        let e = t.check_consistent().unwrap_err();
        assert_eq!(e, "/a/b has no parent /a");
        t.put("/a", Vec::new(), Perms::owned_by(0, Access::None));
        t.check_consistent().unwrap();
        t.nodes.remove("/");
        assert_eq!(t.check_consistent().unwrap_err(), "no root");
    }

    #[test]
    fn every_change_moves_the_generation() {
        let mut t = Tree::new();
        let mut last = t.generation();
        let mut moved = |t: &Tree| {
            let g = t.generation();
            assert!(g > last, "{g} after {last}");
            last = g;
        };
        t.put("/a", Vec::new(), Perms::owned_by(0, Access::None));
        moved(&t);
        t.put("/a", b"v".to_vec(), Perms::owned_by(0, Access::None));
        moved(&t);
        t.put("/a/b", Vec::new(), Perms::owned_by(1, Access::None));
        moved(&t);
        t.remove_one("/a/b");
        moved(&t);
        t.put("/a/b", Vec::new(), Perms::owned_by(1, Access::None));
        moved(&t);
        assert_eq!(t.remove_subtree("/a").len(), 2);
        moved(&t);
        // Nothing to remove: no change, no new generation.
        t.remove_one("/a");
        assert!(t.remove_subtree("/a").is_empty());
        assert_eq!(t.generation(), last);
    }

    #[test]
    fn read_errors() {
        let mut t = Tree::new();
        let mut o = ops(&mut t);
        o.write(0, "/pub", b"").unwrap();
        o.set_perms(0, "/pub", Perms::parse(b"n0\0r1\0").unwrap())
            .unwrap();
        o.write(0, "/priv/k", b"s").unwrap();
        assert_eq!(o.read(1, "/pub/none"), Err(XsError::NoEnt));
        assert_eq!(o.read(1, "/priv/k"), Err(XsError::Acces));
        // The caller cannot read /priv, so it may not learn what is missing.
        assert_eq!(o.read(1, "/priv/none"), Err(XsError::Acces));
        assert_eq!(o.read(0, "/priv/none"), Err(XsError::NoEnt));
        assert_eq!(o.write(1, "/pub/x", b""), Err(XsError::Acces));
    }

    #[test]
    fn rm_rules() {
        let mut t = Tree::new();
        let mut o = ops(&mut t);
        o.write(0, "/a/b/c", b"1").unwrap();
        assert_eq!(o.rm(0, "/"), Err(XsError::Inval));
        assert_eq!(o.rm(0, "/a/none"), Ok(Vec::new()));
        assert_eq!(o.rm(0, "/none/none"), Err(XsError::NoEnt));
        assert_eq!(o.rm(1, "/a/b"), Err(XsError::Acces));
        assert_eq!(o.rm(0, "/a/b").unwrap().len(), 1);
        assert!(o.tree.get("/a/b/c").is_none());
        assert!(o.tree.get("/a").is_some());
        t.check_consistent().unwrap();
    }

    #[test]
    fn mkdir_keeps_existing_values() {
        let mut t = Tree::new();
        let mut o = ops(&mut t);
        o.write(0, "/a", b"v").unwrap();
        assert_eq!(o.mkdir(0, "/a").unwrap(), Vec::new());
        assert_eq!(o.read(0, "/a").unwrap(), b"v");
        assert_eq!(o.mkdir(0, "/a/b/c").unwrap().len(), 2);
        assert_eq!(o.mkdir(1, "/a"), Err(XsError::Acces));
    }

    #[test]
    fn directory_lists_immediate_children_only() {
        let mut t = Tree::new();
        let mut o = ops(&mut t);
        for p in ["/a/x/deep", "/a/y", "/a-b", "/ab"] {
            o.write(0, p, b"").unwrap();
        }
        assert_eq!(o.directory(0, "/a").unwrap(), b"x\0y\0");
        assert_eq!(o.directory(0, "/").unwrap(), b"a\0a-b\0ab\0");
        assert_eq!(o.directory(0, "/a/y").unwrap(), b"");
        assert_eq!(o.directory(0, "/q"), Err(XsError::NoEnt));
    }

    #[test]
    fn quotas_refuse_without_changing_anything() {
        let mut t = Tree::new();
        let mut o = ops(&mut t);
        o.write(0, "/h", b"").unwrap();
        o.set_perms(0, "/h", Perms::parse(b"b1\0").unwrap())
            .unwrap();
        assert_eq!(o.write(1, "/h/v", b"123456789"), Err(XsError::NoSpc));
        assert_eq!(o.write(0, "/h/v", b"123456789").map(|c| c.len()), Ok(1));
        // Owns /h and /h/v (dom0 keeps the inherited owner): 3 more allowed.
        assert_eq!(o.tree.owned_by(1), 2);
        assert_eq!(o.write(1, "/h/1/2/3/4", b""), Err(XsError::NoSpc));
        assert!(o.tree.get("/h/1").is_none());
        assert_eq!(o.write(1, "/h/1/2/3", b"").map(|c| c.len()), Ok(3));
        assert_eq!(o.tree.owned_by(1), 5);
        assert_eq!(o.mkdir(1, "/h/z"), Err(XsError::NoSpc));
        t.check_consistent().unwrap();
    }

    #[test]
    fn set_perms_owner_change_is_dom0_only() {
        let mut t = Tree::new();
        let mut o = ops(&mut t);
        o.write(0, "/h", b"").unwrap();
        o.set_perms(0, "/h", Perms::parse(b"n1\0").unwrap())
            .unwrap();
        assert_eq!(o.tree.owned_by(1), 1);
        assert!(o
            .set_perms(1, "/h", Perms::parse(b"n1\0r2\0").unwrap())
            .is_ok());
        assert_eq!(
            o.set_perms(1, "/h", Perms::parse(b"n2\0").unwrap()),
            Err(XsError::Acces)
        );
        assert_eq!(
            o.set_perms(2, "/h", Perms::parse(b"n2\0").unwrap()),
            Err(XsError::Acces)
        );
        assert_eq!(o.get_perms(2, "/h").unwrap().to_wire(), b"n1\0r2\0");
        t.check_consistent().unwrap();
    }
}
