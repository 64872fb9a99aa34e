//! The machine's PCI interrupt routing as the namespace describes it: the
//! host bridges with their segment and bus, the ACPI device of each PCI
//! bridge (found by `_ADR` under its parent's device, as an OS binds
//! them) and the `_PRT` of each, decided for APIC mode.

use alloc::vec::Vec;

use super::error::{AmlError, AmlErrorKind};
use super::eval::{Eval, Outcome, Undecided};
use super::name::{AmlPath, NameSeg};
use super::namespace::{Namespace, Object, ObjectKind, Value, ValueKind};
use super::prt::{entries, is_host_bridge, PrtEntry};
use super::resource::{bus_range_start, interrupt_flags};

const PRT: NameSeg = NameSeg(*b"_PRT");
const ADR: NameSeg = NameSeg(*b"_ADR");
const BBN: NameSeg = NameSeg(*b"_BBN");
const SEG: NameSeg = NameSeg(*b"_SEG");
const CRS: NameSeg = NameSeg(*b"_CRS");
const PRS: NameSeg = NameSeg(*b"_PRS");

/// A PCI host bridge (`PNP0A03`/`PNP0A08`) and the root bus below it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostBridge {
    /// Its device in the namespace.
    pub path: AmlPath,
    /// `_SEG` (0 when absent).
    pub segment: u16,
    /// The root bus: the start of the bus range in a constant `_CRS`,
    /// else `_BBN`, else 0.
    pub bus: u8,
    /// `_SEG` or `_BBN`, when the bridge has one that is not a constant
    /// (a method, say) and no constant `_CRS` gives the bus: `segment` and
    /// `bus` are then unknown, and no route is taken from this bridge
    /// rather than one guessed for bus 0.
    pub undetermined: Option<NameSeg>,
}

/// A routing table, decided for APIC mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prt {
    /// The `_PRT` object.
    pub path: AmlPath,
    /// The object the package came from (the `_PRT` itself, a `Name` it
    /// returns, or a method it calls).
    pub from: AmlPath,
    /// Its valid entries, in table order.
    pub entries: Vec<PrtEntry>,
    /// The entries left out as invalid, with why.
    pub skipped: Vec<AmlError>,
}

/// Why a device's `_PRT` gives no table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrtError {
    /// The package it returns depends on something only known at run time.
    Undecided {
        /// The `_PRT`.
        prt: AmlPath,
        /// Where and why.
        why: Undecided,
    },
    /// It is not a package, or cannot be read.
    Bad {
        /// The `_PRT`.
        prt: AmlPath,
        /// What is wrong.
        error: AmlError,
    },
}

/// The namespace with its host bridges.
#[derive(Debug)]
pub struct Routing<'a> {
    ns: Namespace<'a>,
    roots: Vec<HostBridge>,
}

impl<'a> Routing<'a> {
    /// Reads the DSDT and SSDTs (whole tables, header included).
    pub fn build(dsdt: &'a [u8], ssdts: &[&'a [u8]]) -> Result<Self, AmlError> {
        let ns = Namespace::build(dsdt, ssdts)?;
        let roots = ns
            .objects()
            .iter()
            .filter(|o| o.kind == ObjectKind::Device && is_host_bridge(&ns, &o.path))
            .map(|o| {
                let int = |n| constant(&ns, &o.path.child(n));
                // Present but not a constant: the value is not known.
                let unknown = |n| ns.get(&o.path.child(n)).is_some() && int(n).is_none();
                let crs = match ns.get(&o.path.child(CRS)).map(|c| &c.kind) {
                    Some(ObjectKind::Name(Value {
                        kind: ValueKind::Buffer(t),
                        ..
                    })) => bus_range_start(t),
                    _ => None,
                };
                let undetermined = if unknown(SEG) {
                    Some(SEG)
                } else if crs.is_none() && unknown(BBN) {
                    Some(BBN)
                } else {
                    None
                };
                HostBridge {
                    path: o.path.clone(),
                    segment: int(SEG).unwrap_or(0) as u16,
                    bus: crs.or(int(BBN)).unwrap_or(0) as u8,
                    undetermined,
                }
            })
            .collect();
        Ok(Routing { ns, roots })
    }

    /// The namespace.
    pub fn namespace(&self) -> &Namespace<'a> {
        &self.ns
    }

    /// The host bridges, in definition order.
    pub fn host_bridges(&self) -> &[HostBridge] {
        &self.roots
    }

    /// The host bridge of root bus `bus` of segment `segment`. Bridges
    /// whose segment or bus cannot be read are never taken for one.
    pub fn host_bridge(&self, segment: u16, bus: u8) -> Option<&HostBridge> {
        self.roots
            .iter()
            .find(|h| h.undetermined.is_none() && h.segment == segment && h.bus == bus)
    }

    /// A host bridge whose segment or bus cannot be read statically, if
    /// any: the root a function found no bridge for may be its.
    pub fn undetermined_bridge(&self) -> Option<&HostBridge> {
        self.roots.iter().find(|h| h.undetermined.is_some())
    }

    /// The device below `parent` whose `_ADR` is PCI device `dev`, function
    /// `func` (`dev << 16 | func`).
    pub fn child(&self, parent: &AmlPath, dev: u8, func: u8) -> Option<&AmlPath> {
        let adr = u64::from(dev) << 16 | u64::from(func);
        self.ns
            .objects()
            .iter()
            .find(|o| {
                o.kind == ObjectKind::Device
                    && o.path.parent().as_ref() == Some(parent)
                    && constant(&self.ns, &o.path.child(ADR)) == Some(adr)
            })
            .map(|o| &o.path)
    }

    /// The routing table of `device` in APIC mode; `None` if it has no
    /// `_PRT`.
    pub fn prt(&self, device: &AmlPath) -> Option<Result<Prt, PrtError>> {
        let prt = self.ns.get(&device.child(PRT))?;
        Some(self.decide(prt))
    }

    fn decide(&self, prt: &Object) -> Result<Prt, PrtError> {
        let bad = |error| PrtError::Bad {
            prt: prt.path.clone(),
            error,
        };
        let (from, scope, value) = match &prt.kind {
            ObjectKind::Name(v) => (prt.path.clone(), device_of(prt), v.clone()),
            ObjectKind::Method { .. } => match Eval::new(&self.ns).method(prt, 0, 0) {
                Outcome::Returns(f) => (f.from, f.scope, f.value),
                Outcome::Unknown(why) => {
                    return Err(PrtError::Undecided {
                        prt: prt.path.clone(),
                        why,
                    })
                }
                Outcome::Falls => {
                    return Err(bad(AmlError {
                        table: prt.table,
                        offset: prt.offset,
                        kind: AmlErrorKind::NoStaticPrt,
                    }))
                }
            },
            _ => {
                return Err(bad(AmlError {
                    table: prt.table,
                    offset: prt.offset,
                    kind: AmlErrorKind::NoStaticPrt,
                }))
            }
        };
        let (entries, skipped) = entries(&self.ns, prt.table, &scope, &value).map_err(bad)?;
        Ok(Prt {
            path: prt.path.clone(),
            from,
            entries,
            skipped,
        })
    }

    /// The trigger and polarity a link device's interrupt has, from the
    /// first interrupt descriptor of its constant `_PRS` (the choices it
    /// offers): `(level, active_low)`.
    pub fn link_flags(&self, link: &AmlPath) -> Option<(bool, bool)> {
        match &self.ns.get(&link.child(PRS))?.kind {
            ObjectKind::Name(Value {
                kind: ValueKind::Buffer(t),
                ..
            }) => interrupt_flags(t),
            _ => None,
        }
    }
}

/// The device a `_PRT` belongs to.
fn device_of(prt: &Object) -> AmlPath {
    prt.path.parent().unwrap_or_default()
}

/// The value of a `Name` that is an integer constant.
fn constant(ns: &Namespace<'_>, path: &AmlPath) -> Option<u64> {
    match &ns.get(path)?.kind {
        ObjectKind::Name(v) => v.as_integer(),
        _ => None,
    }
}

/// The valid entries of the routing table of PCI bus 0 of segment 0, from
/// the DSDT and SSDTs (whole tables, header included): the `_PRT` of its
/// host bridge, decided for APIC mode.
pub fn pci_routes(dsdt: &[u8], ssdts: &[&[u8]]) -> Result<Vec<PrtEntry>, AmlError> {
    let r = Routing::build(dsdt, ssdts)?;
    let no_root = AmlError {
        table: 0,
        offset: 0,
        kind: AmlErrorKind::NoRootPrt,
    };
    let root = r.host_bridge(0, 0).ok_or(no_root)?;
    match r.prt(&root.path).ok_or(no_root)? {
        Ok(p) => Ok(p.entries),
        Err(PrtError::Bad { error, .. }) => Err(error),
        Err(PrtError::Undecided { why, .. }) => Err(AmlError {
            table: why.table,
            offset: why.offset,
            kind: AmlErrorKind::NoStaticPrt,
        }),
    }
}
