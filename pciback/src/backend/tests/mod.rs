//! Host tests of the backend: an in-memory xenstore, the tree after
//! `create` against a real libxl + Linux run, the state machine, and ops.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use vmm_glue::Sbdf;

use super::{PciBackend, Store, Topology, XlOpts};
use crate::testkit::{self, FakeHost, Fixture};
use crate::vdev::DeviceOptions;

mod dispatch;
mod serve;
mod xenbus;

/// One xenstore node.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Node {
    value: String,
    owner: u16,
    readers: Vec<u16>,
}

/// An in-memory xenstore as domain 0 sees it: new nodes (and their missing
/// parents) inherit the nearest ancestor's permissions, as xenstored does
/// for a domain-0 caller. Every call is logged; paths starting with
/// `refuse` are refused.
#[derive(Clone, Debug)]
struct FakeStore {
    nodes: BTreeMap<String, Node>,
    log: Vec<String>,
    refuse: Option<String>,
}

fn parent(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) if path.len() > 1 => Some("/"),
        Some(0) | None => None,
        Some(i) => Some(&path[..i]),
    }
}

impl FakeStore {
    /// `/local/domain/0` as domain 0's, `/local/domain/<guest>` as libxl
    /// makes a guest's home (domain 0's, the guest reading) and its
    /// `device` directory (the guest's, domain 0 reading).
    fn new(guest: u16) -> Self {
        let mut s = Self {
            nodes: BTreeMap::new(),
            log: Vec::new(),
            refuse: None,
        };
        for p in ["/", "/local", "/local/domain", "/local/domain/0"] {
            s.put(p, 0, &[]);
        }
        s.put(&format!("/local/domain/{guest}"), 0, &[guest]);
        s.put(&format!("/local/domain/{guest}/device"), guest, &[0]);
        s.log.clear();
        s
    }

    fn put(&mut self, path: &str, owner: u16, readers: &[u16]) {
        self.nodes.insert(
            path.to_string(),
            Node {
                value: String::new(),
                owner,
                readers: readers.to_vec(),
            },
        );
    }

    fn refused(&self, path: &str) -> bool {
        self.refuse.as_deref().is_some_and(|r| path.starts_with(r))
    }

    /// Creates `path` and its missing parents.
    fn create(&mut self, path: &str) {
        if self.nodes.contains_key(path) {
            return;
        }
        if let Some(p) = parent(path) {
            self.create(p);
        }
        let inherited = parent(path)
            .and_then(|p| self.nodes.get(p))
            .cloned()
            .unwrap_or(Node {
                value: String::new(),
                owner: 0,
                readers: Vec::new(),
            });
        self.nodes.insert(
            path.to_string(),
            Node {
                value: String::new(),
                ..inherited
            },
        );
    }

    /// A guest's write to its own frontend directory.
    fn guest_write(&mut self, path: &str, value: &str) {
        self.create(path);
        if let Some(n) = self.nodes.get_mut(path) {
            n.value = value.to_string();
        }
    }

    /// The subtree at `prefix` as `path = "value"   (nOWNER,rREADER...)`
    /// lines, sorted as `xenstore-ls` would list them.
    fn dump(&self, prefix: &str) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(p, _)| *p == prefix || p.starts_with(&format!("{prefix}/")))
            .map(|(p, n)| {
                let mut perms = format!("n{}", n.owner);
                for r in &n.readers {
                    perms.push_str(&format!(",r{r}"));
                }
                format!("{p} = \"{}\"   ({perms})", n.value)
            })
            .collect()
    }

    fn value(&self, path: &str) -> Option<&str> {
        self.nodes.get(path).map(|n| n.value.as_str())
    }

    /// The values written to `path`, in order.
    fn writes_to(&self, path: &str) -> Vec<String> {
        let pre = format!("write {path} = ");
        self.log
            .iter()
            .filter_map(|l| l.strip_prefix(&pre).map(String::from))
            .collect()
    }
}

impl Store for FakeStore {
    fn read(&mut self, path: &str) -> Option<String> {
        self.nodes.get(path).map(|n| n.value.clone())
    }

    fn write(&mut self, path: &str, value: &str) -> bool {
        self.log.push(format!("write {path} = {value}"));
        if self.refused(path) {
            return false;
        }
        self.create(path);
        if let Some(n) = self.nodes.get_mut(path) {
            n.value = value.to_string();
        }
        true
    }

    fn mkdir(&mut self, path: &str) -> bool {
        self.log.push(format!("mkdir {path}"));
        if self.refused(path) {
            return false;
        }
        self.create(path);
        true
    }

    fn rm(&mut self, path: &str) -> bool {
        self.log.push(format!("rm {path}"));
        let below = format!("{path}/");
        let before = self.nodes.len();
        self.nodes
            .retain(|p, _| p != path && !p.starts_with(&below));
        before != self.nodes.len()
    }

    fn set_perms(&mut self, path: &str, owner: u16, readers: &[u16]) -> bool {
        self.log.push(format!("perms {path} {owner} {readers:?}"));
        if self.refused(path) {
            return false;
        }
        match self.nodes.get_mut(path) {
            Some(n) => {
                n.owner = owner;
                n.readers = readers.to_vec();
                true
            }
            None => false,
        }
    }
}

fn sbdf(bus: u8, dev: u8, func: u8) -> Sbdf {
    Sbdf::new(0, bus, dev, func).unwrap()
}

/// The guest of the captured run: domain 1, named "ref".
const DOM: u16 = 1;
const BE: &str = "/local/domain/0/backend/pci/1/0";
const FE: &str = "/local/domain/1/device/pci/0";

/// A backend for domain 1 over `fixtures` (each at its own address), with
/// one [`FakeHost`] holding all of their config spaces.
fn backend_over(fixtures: &[Fixture], topology: Topology) -> (FakeHost, PciBackend) {
    let mut host = FakeHost::new();
    for f in fixtures {
        host.add_function(f.config.clone());
    }
    let devices = fixtures
        .iter()
        .map(|f| {
            let dev = crate::vdev::VirtDevice::new(
                f.info.clone(),
                DeviceOptions::default(),
                vmm_glue::PassthroughHost::config(&mut host),
            );
            (dev, XlOpts::default())
        })
        .collect();
    // What building the devices read is not the guest's doing.
    for f in host.bus.functions.values_mut() {
        f.log.clear();
    }
    (host, PciBackend::new(DOM, "ref", devices, topology))
}

/// The captured run's device: QEMU's edu at 0000:00:02.0.
fn edu() -> Fixture {
    testkit::edu().at(sbdf(0, 2, 0))
}
