//! PCI routing table (`_PRT`) entries: which GSI each slot's INTx pins
//! reach.

use alloc::vec::Vec;

use super::error::{AmlError, AmlErrorKind};
use super::name::{AmlPath, NameSeg, NameString};
use super::namespace::{Namespace, ObjectKind, Value, ValueKind};
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

/// `_CRS`, `_HID`, `_CID`.
const CRS: NameSeg = NameSeg(*b"_CRS");
const HID: NameSeg = NameSeg(*b"_HID");
const CID: NameSeg = NameSeg(*b"_CID");

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

/// The route of `device`'s pin `pin` (0 to 3 for INTA to INTD), if the
/// table has one that resolves.
pub fn gsi_for(routes: &[PrtEntry], device: u8, pin: u8) -> Option<Route> {
    routes
        .iter()
        .filter(|e| e.device == device && e.pin == pin)
        .find_map(|e| e.source.route())
}

/// Whether `dev`'s `_HID` or `_CID` is a PCI host bridge's.
pub(crate) fn is_host_bridge(ns: &Namespace<'_>, dev: &AmlPath) -> bool {
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

/// Decodes a routing package whose names are used in `scope`. An entry
/// that is not `{Address, Pin, Source, SourceIndex}` with the right types
/// and ranges (a pin of 4 or 6, a device above 31) is left out and
/// returned among the second list, as Linux ignores such entries and uses
/// the rest.
pub(crate) fn entries(
    ns: &Namespace<'_>,
    table: usize,
    scope: &AmlPath,
    prt: &Value,
) -> Result<(Vec<PrtEntry>, Vec<AmlError>), AmlError> {
    let bad = |offset: usize, why: &'static str| AmlError {
        table,
        offset,
        kind: AmlErrorKind::BadPrtEntry(why),
    };
    let ValueKind::Package(list) = &prt.kind else {
        return Err(bad(prt.offset, "_PRT is not a package"));
    };
    let mut out = Vec::with_capacity(list.len());
    let mut skipped = Vec::new();
    for entry in list {
        match decode(ns, scope, entry, &bad) {
            Ok(e) => out.push(e),
            Err(e) => skipped.push(e),
        }
    }
    Ok((out, skipped))
}

/// One routing table entry.
fn decode(
    ns: &Namespace<'_>,
    scope: &AmlPath,
    entry: &Value,
    bad: &dyn Fn(usize, &'static str) -> AmlError,
) -> Result<PrtEntry, AmlError> {
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
    let source = match &source.kind {
        ValueKind::Integer(0) => {
            let gsi = u32::try_from(index_value)
                .map_err(|_| bad(index.offset, "SourceIndex is not a GSI"))?;
            PrtSource::Wired(Route {
                gsi,
                level: true,
                active_low: true,
            })
        }
        ValueKind::Name(name) if index_value == 0 => link(ns, scope, name),
        ValueKind::Name(name) => PrtSource::Unresolved {
            link: name.clone(),
            why: "SourceIndex other than 0",
        },
        _ => return Err(bad(source.offset, "Source is neither Zero nor a name")),
    };
    Ok(PrtEntry {
        device,
        pin,
        source,
        offset: entry.offset,
    })
}

/// Follows a link device: its `_CRS` must be a constant template.
fn link(ns: &Namespace<'_>, scope: &AmlPath, name: &NameString) -> PrtSource {
    let unresolved = |why| PrtSource::Unresolved {
        link: name.clone(),
        why,
    };
    let Some(dev) = ns.resolve(scope, name) else {
        return unresolved("no such object");
    };
    if dev.kind != ObjectKind::Device {
        return unresolved("not a device");
    }
    let path = dev.path.clone();
    match ns.get(&path.child(CRS)).map(|o| &o.kind) {
        Some(ObjectKind::Method { .. }) => PrtSource::NeedsChipsetRouting { link: path },
        Some(ObjectKind::Name(Value {
            kind: ValueKind::Buffer(template),
            ..
        })) => match first_interrupt(template) {
            Some(i) => PrtSource::Link {
                link: path,
                route: Route {
                    gsi: i.number,
                    level: i.level,
                    active_low: i.active_low,
                },
            },
            None => unresolved("no single interrupt in _CRS"),
        },
        Some(_) => unresolved("_CRS is not a buffer"),
        None => unresolved("no _CRS"),
    }
}
