//! PCI enumeration over [`PciConfig`]: every function with its BARs (sized),
//! capabilities, bridge bus numbers and upstream bridge.
//!
//! [`enumerate`] only reads config space, except for BAR sizing, which
//! writes all-ones to each BAR with memory and I/O decode off and puts
//! every register back as it was. Bus numbers are never programmed: a
//! bridge firmware left unconfigured is recorded and not followed.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use vmm_glue::log;

use vmm_glue::{PciConfig, Sbdf};

mod bars;
pub mod caps;
mod class;
mod display;
pub mod host;

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;

pub mod chipset;

pub use bars::{size_bars, Bar, BarKind, BarProblem, BarScan};
pub use caps::{Capability, ExtCapability, MsiInfo, MsixInfo};
pub use class::class_name;

pub use vmm_glue::pci::regs::{command, header, status};

/// A bus range of one segment to enumerate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentRange {
    /// PCI segment group.
    pub segment: u16,
    /// First bus (the root bus the scan starts from).
    pub start_bus: u8,
    /// Last bus that may be scanned.
    pub end_bus: u8,
}

impl SegmentRange {
    /// Segment 0, all buses: what a machine without MCFG has.
    pub const LEGACY: SegmentRange = SegmentRange {
        segment: 0,
        start_bus: 0,
        end_bus: 0xff,
    };

    /// Whether `bus` is inside the range.
    pub const fn contains(&self, bus: u8) -> bool {
        self.start_bus <= bus && bus <= self.end_bus
    }

    /// The ranges an MCFG describes, or [`SegmentRange::LEGACY`] if it has
    /// none.
    pub fn from_mcfg(mcfg: Option<&crate::acpi::Mcfg>) -> Vec<SegmentRange> {
        let mut out: Vec<SegmentRange> = mcfg
            .map(|m| m.allocations.iter().map(SegmentRange::from).collect())
            .unwrap_or_default();
        if out.is_empty() {
            out.push(Self::LEGACY);
        }
        out
    }
}

impl From<&crate::acpi::McfgAllocation> for SegmentRange {
    fn from(a: &crate::acpi::McfgAllocation) -> Self {
        Self {
            segment: a.segment,
            start_bus: a.start_bus,
            end_bus: a.end_bus,
        }
    }
}

/// A bridge's bus numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BridgeInfo {
    /// The bus the bridge sits on.
    pub primary: u8,
    /// The bus directly behind it.
    pub secondary: u8,
    /// The highest bus behind it.
    pub subordinate: u8,
}

/// One PCI function as found by [`enumerate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciFunction {
    /// Its address.
    pub sbdf: Sbdf,
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Revision ID.
    pub revision: u8,
    /// Base class.
    pub class: u8,
    /// Subclass.
    pub subclass: u8,
    /// Programming interface.
    pub prog_if: u8,
    /// Header layout: 0 endpoint, 1 bridge, 2 CardBus (bit 7 removed).
    pub header_type: u8,
    /// Whether the header type's multifunction bit is set.
    pub multifunction: bool,
    /// Implemented BARs, sized.
    pub bars: Vec<Bar>,
    /// The expansion ROM BAR, if implemented.
    pub rom: Option<Bar>,
    /// Capabilities, in list order.
    pub caps: Vec<Capability>,
    /// PCI Express extended capabilities, in list order.
    pub ext_caps: Vec<ExtCapability>,
    /// Interrupt pin: 0 none, 1..=4 INTA..INTD.
    pub interrupt_pin: u8,
    /// Interrupt line as firmware programmed it.
    pub interrupt_line: u8,
    /// The bridge this function sits behind (`None` on a root bus).
    pub parent: Option<Sbdf>,
    /// Bus numbers, for PCI-to-PCI bridges.
    pub bridge: Option<BridgeInfo>,
    /// Size of its config space (4096 or 256).
    pub config_size: u16,
}

impl PciFunction {
    /// The 24-bit class code (class, subclass, programming interface).
    pub fn class_code(&self) -> u32 {
        u32::from(self.class) << 16 | u32::from(self.subclass) << 8 | u32::from(self.prog_if)
    }

    /// A name for the class code.
    pub fn class_name(&self) -> &'static str {
        class_name(self.class, self.subclass, self.prog_if)
    }

    /// Whether this is a PCI-to-PCI bridge.
    pub fn is_bridge(&self) -> bool {
        self.header_type == header::TYPE_BRIDGE
    }

    /// Offset of the first capability with ID `id`.
    pub fn find_cap(&self, id: u8) -> Option<u16> {
        self.caps.iter().find(|c| c.id == id).map(|c| c.offset)
    }

    /// Offset of the first extended capability with ID `id`.
    pub fn find_ext_cap(&self, id: u16) -> Option<u16> {
        self.ext_caps.iter().find(|c| c.id == id).map(|c| c.offset)
    }

    /// The MSI capability's current state.
    pub fn msi(&self, cfg: &mut impl PciConfig) -> Option<MsiInfo> {
        let off = self.find_cap(caps::id::MSI)?;
        Some(MsiInfo::read(cfg, self.sbdf, off))
    }

    /// The MSI-X capability's current state.
    pub fn msix(&self, cfg: &mut impl PciConfig) -> Option<MsixInfo> {
        let off = self.find_cap(caps::id::MSIX)?;
        Some(MsixInfo::read(cfg, self.sbdf, off))
    }
}

/// The bridges above `sbdf`, nearest first, following the `parent` links
/// recorded by [`enumerate`].
pub fn upstream_bridges(funcs: &[PciFunction], sbdf: Sbdf) -> Vec<Sbdf> {
    let mut out = Vec::new();
    let mut cur = sbdf;
    // Each step moves to another function; more steps than functions
    // means the links form a loop.
    for _ in 0..funcs.len() {
        let Some(parent) = funcs.iter().find(|f| f.sbdf == cur).and_then(|f| f.parent) else {
            break;
        };
        if out.contains(&parent) {
            break;
        }
        out.push(parent);
        cur = parent;
    }
    out
}

/// Whether a vendor/device dword says no function answers.
fn absent(id: u32) -> bool {
    let vendor = id & 0xffff;
    vendor == 0xffff || vendor == 0
}

/// Enumerates every function in `segments`.
///
/// Each segment is scanned from its start bus: all 32 devices, function 0,
/// and functions 1..=7 only when function 0 has the multifunction bit.
/// A PCI-to-PCI bridge leads to its secondary bus if that bus is inside the
/// range and not scanned yet (so bus-number loops end). Afterwards the
/// buses of the range no bridge led to are probed as well: machines with
/// several host bridges have root buses that only the DSDT names. The
/// result is sorted by address.
pub fn enumerate(cfg: &mut impl PciConfig, segments: &[SegmentRange]) -> Vec<PciFunction> {
    let mut out = Vec::new();
    for range in segments {
        if range.start_bus > range.end_bus {
            continue;
        }
        let mut visited = [false; 256];
        let mut queue = VecDeque::new();
        let roots = core::iter::once(range.start_bus).chain(range.start_bus..=range.end_bus);
        for root in roots {
            if visited[usize::from(root)] {
                continue;
            }
            visited[usize::from(root)] = true;
            queue.push_back((root, None));
            while let Some((bus, parent)) = queue.pop_front() {
                for f in scan_bus(cfg, range.segment, bus, parent) {
                    if let Some(b) = f.bridge {
                        let sec = usize::from(b.secondary);
                        if range.contains(b.secondary) && !visited[sec] {
                            visited[sec] = true;
                            queue.push_back((b.secondary, Some(f.sbdf)));
                        }
                    }
                    out.push(f);
                }
            }
        }
    }
    vmm_glue::compact::sort_by_key(&mut out, |f| f.sbdf);
    out
}

fn scan_bus(
    cfg: &mut impl PciConfig,
    segment: u16,
    bus: u8,
    parent: Option<Sbdf>,
) -> Vec<PciFunction> {
    let mut found = Vec::new();
    for dev in 0..32 {
        let Some(f0) = Sbdf::new(segment, bus, dev, 0) else {
            continue;
        };
        let id = cfg.read32(f0, header::ID);
        if absent(id) {
            continue;
        }
        let f = probe(cfg, f0, id, parent);
        let multifunction = f.multifunction;
        found.push(f);
        if !multifunction {
            continue;
        }
        for func in 1..8 {
            let sbdf = f0.with_func(func);
            let id = cfg.read32(sbdf, header::ID);
            if !absent(id) {
                found.push(probe(cfg, sbdf, id, parent));
            }
        }
    }
    found
}

fn probe(cfg: &mut impl PciConfig, sbdf: Sbdf, id: u32, parent: Option<Sbdf>) -> PciFunction {
    let header_byte = cfg.read8(sbdf, header::HEADER_TYPE);
    let header_type = header_byte & !header::MULTIFUNCTION;
    let [revision, prog_if, subclass, class] = cfg.read32(sbdf, header::CLASS_REV).to_le_bytes();
    let scan = size_bars(cfg, sbdf, header_type);
    for p in &scan.problems {
        log::warn!("pci {sbdf}: {p}");
    }
    let caps = caps::walk_caps(cfg, sbdf, header_type);
    let config_size = cfg.config_size(sbdf);
    let ext_caps = if config_size == 4096 && caps.iter().any(|c| c.id == caps::id::PCIE) {
        caps::walk_ext_caps(cfg, sbdf)
    } else {
        Vec::new()
    };
    let [interrupt_line, interrupt_pin, ..] =
        cfg.read32(sbdf, header::INTERRUPT_LINE).to_le_bytes();
    let bridge = (header_type == header::TYPE_BRIDGE).then(|| {
        let [primary, secondary, subordinate, _] =
            cfg.read32(sbdf, header::BUS_NUMBERS).to_le_bytes();
        BridgeInfo {
            primary,
            secondary,
            subordinate,
        }
    });
    PciFunction {
        sbdf,
        vendor: id as u16,
        device: (id >> 16) as u16,
        revision,
        class,
        subclass,
        prog_if,
        header_type,
        multifunction: header_byte & header::MULTIFUNCTION != 0,
        bars: scan.bars,
        rom: scan.rom,
        caps,
        ext_caps,
        interrupt_pin,
        interrupt_line,
        parent,
        bridge,
        config_size,
    }
}
