//! The root bus's PCI routing table (`_PRT`): which GSI each slot's INTx
//! pins reach.

use alloc::vec::Vec;

use super::error::{AmlError, AmlErrorKind};
use super::method::Returned;
use super::name::{AmlPath, NameSeg, NameString};
use super::namespace::{Namespace, Object, ObjectKind, Value, ValueKind};
use super::resource::first_interrupt;

/// Where an interrupt pin is delivered: a GSI and how it signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// The global system interrupt (an I/O APIC input, counted across all
    /// I/O APICs from their MADT GSI bases).
    pub gsi: u32,
    /// Level-triggered (else edge).
    pub level: bool,
    /// Active-low (else active-high).
    pub active_low: bool,
}

/// Where a routing table entry's Source field leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrtSource {
    /// Source is Zero: the pin is wired straight to GSI SourceIndex,
    /// level-triggered and active-low as PCI interrupts are.
    Wired(Route),
    /// A link device whose `_CRS` is a constant resource template naming
    /// one interrupt: the route it gives (an Extended Interrupt
    /// descriptor's GSI with its trigger and polarity, or an IRQ
    /// descriptor's single IRQ taken as the GSI).
    Link {
        /// The link device.
        link: AmlPath,
        /// Where it routes.
        route: Route,
    },
    /// A link device whose `_CRS` is a method, which computes the
    /// interrupt from the chipset's routing registers (the PIIX/ICH PIRQx
    /// route control registers): the link needs the chipset's routing,
    /// which AML alone does not tell.
    NeedsChipsetRouting {
        /// The link device.
        link: AmlPath,
    },
    /// A link that could not be followed.
    Unresolved {
        /// The Source as written in the table.
        link: NameString,
        /// Why: no such device, no `_CRS`, no single interrupt in it, or a
        /// SourceIndex other than 0.
        why: &'static str,
    },
}

impl PrtSource {
    /// The route, when the entry resolves to one.
    pub fn route(&self) -> Option<Route> {
        match self {
            Self::Wired(r) | Self::Link { route: r, .. } => Some(*r),
            _ => None,
        }
    }
}

/// One routing table entry: a slot's pin and where it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrtEntry {
    /// The PCI device (slot) number on the root bus, 0 to 31.
    pub device: u8,
    /// The pin: 0 to 3 for INTA to INTD.
    pub pin: u8,
    /// Where it goes.
    pub source: PrtSource,
    /// Offset of the entry's package in its table.
    pub offset: usize,
}

/// `_PRT`, `_CRS`, `_HID`, `_CID`, `_BBN`, `_SEG`.
const PRT: NameSeg = NameSeg(*b"_PRT");
const CRS: NameSeg = NameSeg(*b"_CRS");
const HID: NameSeg = NameSeg(*b"_HID");
const CID: NameSeg = NameSeg(*b"_CID");
const BBN: NameSeg = NameSeg(*b"_BBN");
const SEG: NameSeg = NameSeg(*b"_SEG");

/// Compresses a seven-character EISA ID such as `PNP0A03` into the 32-bit
/// form AML stores it in: three letters of five bits (`A` is 1) then four
/// hex digits, as bytes in that order.
pub(crate) const fn eisa_id(id: &[u8; 7]) -> u32 {
    let letters =
        ((id[0] as u16 - 0x40) << 10) | ((id[1] as u16 - 0x40) << 5) | (id[2] as u16 - 0x40);
    u32::from_le_bytes([
        (letters >> 8) as u8,
        letters as u8,
        (hex(id[3]) << 4) | hex(id[4]),
        (hex(id[5]) << 4) | hex(id[6]),
    ])
}

/// The value of one hex digit (upper case).
const fn hex(c: u8) -> u8 {
    if c <= b'9' {
        c - b'0'
    } else {
        c - b'A' + 10
    }
}

/// The IDs a PCI host bridge has: PCI (`PNP0A03`) and PCI Express
/// (`PNP0A08`).
const HOST_BRIDGE_IDS: [(&[u8], u32); 2] = [
    (b"PNP0A03", eisa_id(b"PNP0A03")),
    (b"PNP0A08", eisa_id(b"PNP0A08")),
];

/// The routing table of PCI bus 0 of segment 0, from the DSDT and SSDTs
/// (whole tables, header included).
///
/// The table is the `_PRT` of the first device whose `_HID` or `_CID` is a
/// PCI host bridge (`PNP0A03` or `PNP0A08`) and whose `_BBN` and `_SEG`
/// are absent, zero or not constants. A `_PRT` that is a `Name` is read
/// directly. A `_PRT` that is a `Method` is not run: every package it can
/// return (a `Return` of a named package or of an inline one, in any
/// branch) is a candidate, and the APIC-mode table is chosen among them as
/// the one with the most entries that give a GSI by themselves: a Zero
/// source with a SourceIndex of 16 or more (above the ISA IRQs, so not a
/// PIC-mode IRQ), or a link device whose `_CRS` is a constant template
/// with an Extended Interrupt descriptor. Ties go to the candidate
/// returned first. On QEMU's q35 this picks `PRTA` (links `GSIA`-`GSIH`,
/// GSIs 16-23) over `PRTP` (links `LNKA`-`LNKH`, whose `_CRS` read the
/// ICH9's PIRQ registers).
///
/// Entries are returned in table order; a link that cannot be resolved
/// statically is kept, with the reason, in its [`PrtSource`].
pub fn pci_routes(dsdt: &[u8], ssdts: &[&[u8]]) -> Result<Vec<PrtEntry>, AmlError> {
    let ns = Namespace::build(dsdt, ssdts)?;
    let prt = root_prt(&ns).ok_or(AmlError {
        table: 0,
        offset: 0,
        kind: AmlErrorKind::NoRootPrt,
    })?;
    let no_static = AmlError {
        table: prt.table,
        offset: prt.offset,
        kind: AmlErrorKind::NoStaticPrt,
    };
    let owner = prt.path.parent().unwrap_or_default();
    let mut candidates: Vec<(AmlPath, &Value)> = Vec::new();
    let inline;
    match &prt.kind {
        ObjectKind::Name(v) => candidates.push((owner, v)),
        ObjectKind::Method { .. } => {
            let (returned, err) = ns.method_returns(prt);
            inline = returned;
            for r in &inline {
                match r {
                    Returned::Name(name) => {
                        if let Some(Object {
                            kind: ObjectKind::Name(v),
                            path,
                            ..
                        }) = ns.resolve(&prt.path, name)
                        {
                            candidates.push((path.parent().unwrap_or_default(), v));
                        }
                    }
                    Returned::Data(v) => candidates.push((prt.path.clone(), v)),
                    Returned::Computed(_) => {}
                }
            }
            if candidates.is_empty() {
                return Err(err.unwrap_or(no_static));
            }
        }
        _ => return Err(no_static),
    }
    let mut best: Option<(usize, Vec<PrtEntry>)> = None;
    let mut first_error = None;
    for (scope, table) in candidates {
        match entries(&ns, prt.table, &scope, table) {
            Ok((score, list)) => {
                if best.as_ref().is_none_or(|(s, _)| score > *s) {
                    best = Some((score, list));
                }
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match best {
        Some((_, list)) => Ok(list),
        None => Err(first_error.unwrap_or(no_static)),
    }
}

/// The route of `device`'s pin `pin` (0 to 3 for INTA to INTD), if the
/// table has one that resolves.
pub fn gsi_for(routes: &[PrtEntry], device: u8, pin: u8) -> Option<Route> {
    routes
        .iter()
        .filter(|e| e.device == device && e.pin == pin)
        .find_map(|e| e.source.route())
}

/// The `_PRT` of the root bus's host bridge.
fn root_prt<'n>(ns: &'n Namespace<'_>) -> Option<&'n Object> {
    ns.objects().iter().find(|o| {
        o.path.last() == Some(PRT)
            && o.path.parent().is_some_and(|dev| {
                matches!(ns.get(&dev).map(|d| &d.kind), Some(ObjectKind::Device))
                    && is_host_bridge(ns, &dev)
                    && [BBN, SEG]
                        .iter()
                        .all(|&n| !is_nonzero_constant(ns, &dev.child(n)))
            })
    })
}

fn is_host_bridge(ns: &Namespace<'_>, dev: &AmlPath) -> bool {
    let is_id = |v: &Value| match &v.kind {
        ValueKind::Integer(i) => HOST_BRIDGE_IDS.iter().any(|(_, id)| u64::from(*id) == *i),
        ValueKind::String(s) => HOST_BRIDGE_IDS.iter().any(|(text, _)| s == text),
        _ => false,
    };
    [HID, CID]
        .iter()
        .any(|&n| match ns.get(&dev.child(n)).map(|o| &o.kind) {
            Some(ObjectKind::Name(v)) => match &v.kind {
                ValueKind::Package(ids) => ids.iter().any(is_id),
                _ => is_id(v),
            },
            _ => false,
        })
}

fn is_nonzero_constant(ns: &Namespace<'_>, path: &AmlPath) -> bool {
    match ns.get(path).map(|o| &o.kind) {
        Some(ObjectKind::Name(v)) => v.as_integer().is_some_and(|i| i != 0),
        _ => false,
    }
}

/// Decodes a routing package whose names are used in `scope`; returns its
/// score (entries that give a GSI by themselves, see [`pci_routes`]) and
/// its entries.
fn entries(
    ns: &Namespace<'_>,
    table: usize,
    scope: &AmlPath,
    prt: &Value,
) -> Result<(usize, Vec<PrtEntry>), AmlError> {
    let bad = |offset: usize, why: &'static str| AmlError {
        table,
        offset,
        kind: AmlErrorKind::BadPrtEntry(why),
    };
    let ValueKind::Package(list) = &prt.kind else {
        return Err(bad(prt.offset, "_PRT is not a package"));
    };
    let mut score = 0;
    let mut out = Vec::with_capacity(list.len());
    for entry in list {
        let ValueKind::Package(fields) = &entry.kind else {
            return Err(bad(entry.offset, "entry is not a package"));
        };
        let [address, pin, source, index] = fields.as_slice() else {
            return Err(bad(entry.offset, "entry does not have four elements"));
        };
        let address = address
            .as_integer()
            .ok_or(bad(address.offset, "Address is not an integer"))?;
        let device = u8::try_from(address >> 16)
            .ok()
            .filter(|&d| d < 32)
            .ok_or(bad(entry.offset, "device number above 31"))?;
        let pin = pin
            .as_integer()
            .and_then(|p| u8::try_from(p).ok())
            .filter(|&p| p < 4)
            .ok_or(bad(pin.offset, "Pin is not 0 to 3"))?;
        let index_value = index
            .as_integer()
            .ok_or(bad(index.offset, "SourceIndex is not an integer"))?;
        let (source, counts) = match &source.kind {
            ValueKind::Integer(0) => {
                let gsi = u32::try_from(index_value)
                    .map_err(|_| bad(index.offset, "SourceIndex is not a GSI"))?;
                let route = Route {
                    gsi,
                    level: true,
                    active_low: true,
                };
                (PrtSource::Wired(route), gsi >= 16)
            }
            ValueKind::Name(name) if index_value == 0 => link(ns, scope, name),
            ValueKind::Name(name) => (
                PrtSource::Unresolved {
                    link: name.clone(),
                    why: "SourceIndex other than 0",
                },
                false,
            ),
            _ => return Err(bad(source.offset, "Source is neither Zero nor a name")),
        };
        score += usize::from(counts);
        out.push(PrtEntry {
            device,
            pin,
            source,
            offset: entry.offset,
        });
    }
    Ok((score, out))
}

/// Follows a link device: its `_CRS` must be a constant template. Also
/// says whether the route counts towards the APIC-mode score (an Extended
/// Interrupt descriptor).
fn link(ns: &Namespace<'_>, scope: &AmlPath, name: &NameString) -> (PrtSource, bool) {
    let unresolved = |why| {
        (
            PrtSource::Unresolved {
                link: name.clone(),
                why,
            },
            false,
        )
    };
    let Some(dev) = ns.resolve(scope, name) else {
        return unresolved("no such object");
    };
    if dev.kind != ObjectKind::Device {
        return unresolved("not a device");
    }
    let path = dev.path.clone();
    match ns.get(&path.child(CRS)).map(|o| &o.kind) {
        Some(ObjectKind::Method { .. }) => (PrtSource::NeedsChipsetRouting { link: path }, false),
        Some(ObjectKind::Name(Value {
            kind: ValueKind::Buffer(template),
            ..
        })) => match first_interrupt(template) {
            Some(i) => (
                PrtSource::Link {
                    link: path,
                    route: Route {
                        gsi: i.number,
                        level: i.level,
                        active_low: i.active_low,
                    },
                },
                i.extended,
            ),
            None => unresolved("no single interrupt in _CRS"),
        },
        Some(_) => unresolved("_CRS is not a buffer"),
        None => unresolved("no _CRS"),
    }
}
