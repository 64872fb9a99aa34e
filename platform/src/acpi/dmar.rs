//! DMAR: Intel VT-d DMA remapping hardware units and what they cover
//! (VT-d specification, chapter 8).

use alloc::vec::Vec;
use core::fmt;

use vmm_glue::{PciConfig, Sbdf};

use super::fadt::write_flag_names;
use super::sdt::{need, walk_structures, Reader, StructLayout};
use super::{AcpiError, AcpiTable, IdText, SdtHeader, Signature};

/// Offset of the first remapping structure.
const STRUCTURES: usize = 48;

/// The DMA Remapping Reporting table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dmar {
    /// The table header.
    pub header: SdtHeader,
    /// Maximum DMA physical address width in bits (the field plus one).
    pub host_address_width: u16,
    /// Table flags.
    pub flags: DmarFlags,
    /// Remapping structures, in table order.
    pub structures: Vec<RemappingStructure>,
}

/// DMAR flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmarFlags(pub u8);

impl DmarFlags {
    /// The platform supports interrupt remapping.
    pub const INTR_REMAP: u8 = 1 << 0;
    /// Firmware asks the OS not to enable x2APIC mode.
    pub const X2APIC_OPT_OUT: u8 = 1 << 1;
    /// Firmware asks for DMA protection to stay on at the OS handoff.
    pub const DMA_CTRL_PLATFORM_OPT_IN: u8 = 1 << 2;

    /// Whether interrupt remapping is supported.
    pub const fn intr_remap(self) -> bool {
        self.0 & Self::INTR_REMAP != 0
    }
    /// Whether x2APIC mode should stay off.
    pub const fn x2apic_opt_out(self) -> bool {
        self.0 & Self::X2APIC_OPT_OUT != 0
    }
    /// Whether DMA protection was requested by the platform.
    pub const fn dma_ctrl_platform_opt_in(self) -> bool {
        self.0 & Self::DMA_CTRL_PLATFORM_OPT_IN != 0
    }
}

impl fmt::Display for DmarFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_flag_names(
            f,
            u32::from(self.0),
            &[
                (u32::from(Self::INTR_REMAP), "intr-remap"),
                (u32::from(Self::X2APIC_OPT_OUT), "x2apic-opt-out"),
                (u32::from(Self::DMA_CTRL_PLATFORM_OPT_IN), "dma-ctrl-opt-in"),
            ],
        )
    }
}

/// One remapping structure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemappingStructure {
    /// Type 0: a DMA remapping hardware unit.
    Drhd(Drhd),
    /// Type 1: reserved memory that devices keep using (USB, graphics).
    Rmrr(Rmrr),
    /// Type 2: root ports that support address translation services.
    Atsr(Atsr),
    /// Type 3: the NUMA node of a remapping unit.
    Rhsa(Rhsa),
    /// Type 4: an ACPI namespace device that device scopes refer to.
    Andd(Andd),
    /// Type 5: SoC-integrated devices whose ATC the OS must use.
    Satc(Satc),
    /// Any other type, skipped.
    Unknown {
        /// The type field.
        structure_type: u16,
        /// The length field.
        length: u16,
    },
}

/// DMA Remapping Hardware Unit Definition (type 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drhd {
    /// Bit 0: INCLUDE_PCI_ALL.
    pub flags: u8,
    /// Register set size as a power of two number of 4 KiB pages.
    pub size: u8,
    /// PCI segment the unit serves.
    pub segment: u16,
    /// Physical address of the unit's registers.
    pub register_base: u64,
    /// The devices under this unit (for INCLUDE_PCI_ALL: the IOAPICs and
    /// HPETs it also covers).
    pub scopes: Vec<DeviceScope>,
}

impl Drhd {
    /// DRHD flag: the unit covers every device of its segment not covered
    /// by another unit.
    pub const INCLUDE_PCI_ALL: u8 = 1;

    /// Whether the unit covers every otherwise uncovered device.
    pub const fn include_pci_all(&self) -> bool {
        self.flags & Self::INCLUDE_PCI_ALL != 0
    }

    /// Size of the register set in bytes, if representable.
    pub fn register_set_size(&self) -> Option<u64> {
        (self.size < 52).then(|| 4096u64 << self.size)
    }
}

/// Reserved Memory Region Reporting (type 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rmrr {
    /// PCI segment.
    pub segment: u16,
    /// First byte of the region.
    pub base: u64,
    /// Last byte of the region (inclusive).
    pub limit: u64,
    /// Devices using the region.
    pub scopes: Vec<DeviceScope>,
}

/// Root Port ATS Capability Reporting (type 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Atsr {
    /// Bit 0: ALL_PORTS.
    pub flags: u8,
    /// PCI segment.
    pub segment: u16,
    /// The root ports (when not ALL_PORTS).
    pub scopes: Vec<DeviceScope>,
}

/// Remapping Hardware Static Affinity (type 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rhsa {
    /// Register base of the DRHD this applies to.
    pub register_base: u64,
    /// Its proximity domain.
    pub proximity_domain: u32,
}

/// ACPI Name-space Device Declaration (type 4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Andd {
    /// The number device scopes of type 5 use as enumeration ID.
    pub device_number: u8,
    /// The ACPI object name, without the terminating NUL.
    pub object_name: Vec<u8>,
}

/// SoC Integrated Address Translation Cache (type 5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Satc {
    /// Bit 0: ATC_REQUIRED.
    pub flags: u8,
    /// PCI segment.
    pub segment: u16,
    /// The devices.
    pub scopes: Vec<DeviceScope>,
}

/// What a device scope names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeType {
    /// 1: one PCI endpoint.
    Endpoint,
    /// 2: a PCI-PCI bridge and everything below it.
    SubHierarchy,
    /// 3: an I/O APIC (enumeration ID: its APIC ID).
    IoApic,
    /// 4: an HPET (enumeration ID: its HPET number).
    Hpet,
    /// 5: an ACPI namespace device (enumeration ID: its ANDD number).
    AcpiNamespace,
    /// Any other value.
    Other(u8),
}

impl From<u8> for ScopeType {
    fn from(v: u8) -> Self {
        match v {
            1 => Self::Endpoint,
            2 => Self::SubHierarchy,
            3 => Self::IoApic,
            4 => Self::Hpet,
            5 => Self::AcpiNamespace,
            other => Self::Other(other),
        }
    }
}

/// One hop of a device scope path: a device and function on the current bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathEntry {
    /// Device number.
    pub dev: u8,
    /// Function number.
    pub func: u8,
}

/// A device scope: which device (or hierarchy) a structure applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceScope {
    /// What the scope names.
    pub scope_type: ScopeType,
    /// Scope flags (VT-d 3.x; reserved before).
    pub flags: u8,
    /// APIC ID, HPET number or ANDD number, by type.
    pub enumeration_id: u8,
    /// The bus the path starts on.
    pub start_bus: u8,
    /// The path from `start_bus` through bridges to the device.
    pub path: Vec<PathEntry>,
}

/// Why a device scope path could not be followed to a function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeError {
    /// The scope has no path entries.
    EmptyPath,
    /// A path entry has a device above 31 or a function above 7.
    BadPathEntry(PathEntry),
    /// No function answers at an intermediate hop.
    NotPresent(Sbdf),
    /// An intermediate hop is not a PCI-PCI (or CardBus) bridge.
    NotABridge(Sbdf),
    /// An intermediate bridge has no secondary bus configured.
    NoSecondaryBus(Sbdf),
}

impl fmt::Display for ScopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyPath => f.write_str("device scope has an empty path"),
            Self::BadPathEntry(p) => write!(
                f,
                "device scope path entry {:02x}.{:x} is out of range",
                p.dev, p.func
            ),
            Self::NotPresent(s) => write!(f, "device scope path: no function at {s}"),
            Self::NotABridge(s) => write!(f, "device scope path: {s} is not a bridge"),
            Self::NoSecondaryBus(s) => {
                write!(f, "device scope path: bridge {s} has no secondary bus")
            }
        }
    }
}

impl DeviceScope {
    /// The function at the first hop of the path (start bus, first entry),
    /// which is the scope's device when the path has a single entry; usable
    /// without config space access.
    pub fn first_hop(&self, segment: u16) -> Option<Sbdf> {
        let p = self.path.first()?;
        Sbdf::new(segment, self.start_bus, p.dev, p.func)
    }

    /// Follows the path to the function it names, reading the secondary bus
    /// number (config offset 0x19) of each intermediate bridge.
    pub fn resolve(&self, segment: u16, cfg: &mut impl PciConfig) -> Result<Sbdf, ScopeError> {
        let (last, hops) = self.path.split_last().ok_or(ScopeError::EmptyPath)?;
        let mut bus = self.start_bus;
        for hop in hops {
            let bridge =
                Sbdf::new(segment, bus, hop.dev, hop.func).ok_or(ScopeError::BadPathEntry(*hop))?;
            let vendor = cfg.read16(bridge, 0x00);
            if vendor == 0xffff || vendor == 0 {
                return Err(ScopeError::NotPresent(bridge));
            }
            if !matches!(cfg.read8(bridge, 0x0e) & 0x7f, 1 | 2) {
                return Err(ScopeError::NotABridge(bridge));
            }
            bus = cfg.read8(bridge, 0x19);
            if bus == 0 {
                return Err(ScopeError::NoSecondaryBus(bridge));
            }
        }
        Sbdf::new(segment, bus, last.dev, last.func).ok_or(ScopeError::BadPathEntry(*last))
    }
}

impl Dmar {
    /// Parses a whole DMAR table, header included.
    pub fn parse(bytes: &[u8]) -> Result<Self, AcpiError> {
        let (header, r) = SdtHeader::check(Self::SIGNATURE, bytes, STRUCTURES)?;
        let layout = StructLayout {
            what: "remapping structure",
            header_len: 4,
            type_at: (0, 2),
            length_at: (2, 2),
        };
        let mut structures = Vec::new();
        walk_structures(&r, STRUCTURES..r.len(), layout, |off, ty, s| {
            structures.push(parse_structure(&r, off, ty, &s)?);
            Ok(())
        })?;
        Ok(Self {
            header,
            host_address_width: u16::from(r.u8(36)?) + 1,
            flags: DmarFlags(r.u8(37)?),
            structures,
        })
    }

    /// The DRHD units, in table order.
    pub fn drhds(&self) -> impl Iterator<Item = &Drhd> {
        self.structures.iter().filter_map(|s| match s {
            RemappingStructure::Drhd(d) => Some(d),
            _ => None,
        })
    }

    /// The reserved memory regions, in table order.
    pub fn rmrrs(&self) -> impl Iterator<Item = &Rmrr> {
        self.structures.iter().filter_map(|s| match s {
            RemappingStructure::Rmrr(r) => Some(r),
            _ => None,
        })
    }
}

impl AcpiTable for Dmar {
    const SIGNATURE: Signature = Signature(*b"DMAR");

    fn parse(bytes: &[u8]) -> Result<Self, AcpiError> {
        Dmar::parse(bytes)
    }
}

fn parse_structure(
    table: &Reader<'_>,
    off: usize,
    ty: u16,
    s: &Reader<'_>,
) -> Result<RemappingStructure, AcpiError> {
    let end = off + s.len();
    let st = match ty {
        0 => {
            need(s, "DRHD", off, 16)?;
            RemappingStructure::Drhd(Drhd {
                flags: s.u8(4)?,
                size: s.u8(5)?,
                segment: s.u16(6)?,
                register_base: s.u64(8)?,
                scopes: parse_scopes(table, off + 16, end)?,
            })
        }
        1 => {
            need(s, "RMRR", off, 24)?;
            RemappingStructure::Rmrr(Rmrr {
                segment: s.u16(6)?,
                base: s.u64(8)?,
                limit: s.u64(16)?,
                scopes: parse_scopes(table, off + 24, end)?,
            })
        }
        2 => {
            need(s, "ATSR", off, 8)?;
            RemappingStructure::Atsr(Atsr {
                flags: s.u8(4)?,
                segment: s.u16(6)?,
                scopes: parse_scopes(table, off + 8, end)?,
            })
        }
        3 => {
            need(s, "RHSA", off, 20)?;
            RemappingStructure::Rhsa(Rhsa {
                register_base: s.u64(8)?,
                proximity_domain: s.u32(16)?,
            })
        }
        4 => {
            need(s, "ANDD", off, 8)?;
            let name = s.bytes(8, s.len() - 8)?;
            let name_len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
            RemappingStructure::Andd(Andd {
                device_number: s.u8(7)?,
                object_name: Vec::from(name.get(..name_len).unwrap_or_default()),
            })
        }
        5 => {
            need(s, "SATC", off, 8)?;
            RemappingStructure::Satc(Satc {
                flags: s.u8(4)?,
                segment: s.u16(6)?,
                scopes: parse_scopes(table, off + 8, end)?,
            })
        }
        other => RemappingStructure::Unknown {
            structure_type: other,
            length: s.u16(2)?,
        },
    };
    Ok(st)
}

fn parse_scopes(
    table: &Reader<'_>,
    start: usize,
    end: usize,
) -> Result<Vec<DeviceScope>, AcpiError> {
    let layout = StructLayout {
        what: "device scope",
        header_len: 6,
        type_at: (0, 1),
        length_at: (1, 1),
    };
    let mut scopes = Vec::new();
    walk_structures(table, start..end, layout, |off, ty, s| {
        if s.len() % 2 != 0 {
            return Err(s.error(super::AcpiErrorKind::Invalid {
                what: "device scope",
                offset: off,
                problem: "path has an odd number of bytes",
            }));
        }
        let path = (6..s.len())
            .step_by(2)
            .map(|o| {
                Ok(PathEntry {
                    dev: s.u8(o)?,
                    func: s.u8(o + 1)?,
                })
            })
            .collect::<Result<Vec<_>, AcpiError>>()?;
        scopes.push(DeviceScope {
            scope_type: ScopeType::from(u8::try_from(ty).unwrap_or(0)),
            flags: s.u8(2)?,
            enumeration_id: s.u8(4)?,
            start_bus: s.u8(5)?,
            path,
        });
        Ok(())
    })?;
    Ok(scopes)
}

impl fmt::Display for DeviceScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scope_type {
            ScopeType::Endpoint => f.write_str("endpoint")?,
            ScopeType::SubHierarchy => f.write_str("sub-hierarchy")?,
            ScopeType::IoApic => write!(f, "IOAPIC id {}", self.enumeration_id)?,
            ScopeType::Hpet => write!(f, "HPET id {}", self.enumeration_id)?,
            ScopeType::AcpiNamespace => write!(f, "ACPI device {}", self.enumeration_id)?,
            ScopeType::Other(t) => write!(f, "scope type {t:#x} id {}", self.enumeration_id)?,
        }
        if matches!(
            self.scope_type,
            ScopeType::IoApic | ScopeType::Hpet | ScopeType::AcpiNamespace
        ) {
            f.write_str(" at")?;
        }
        write!(f, " {:02x}:", self.start_bus)?;
        for (i, p) in self.path.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            write!(f, "{:02x}.{:x}", p.dev, p.func)?;
        }
        Ok(())
    }
}

fn write_scopes(f: &mut fmt::Formatter<'_>, scopes: &[DeviceScope]) -> fmt::Result {
    if scopes.is_empty() {
        return Ok(());
    }
    f.write_str(", scopes:")?;
    for (i, s) in scopes.iter().enumerate() {
        write!(f, "{} {s}", if i > 0 { "," } else { "" })?;
    }
    Ok(())
}

impl fmt::Display for Dmar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DMAR: haw {} bits, flags {}",
            self.host_address_width, self.flags
        )?;
        let mut unit = 0;
        for s in &self.structures {
            f.write_str("\n  ")?;
            match s {
                RemappingStructure::Drhd(d) => {
                    write!(
                        f,
                        "DRHD unit {unit}: base {:#x} segment {}",
                        d.register_base, d.segment
                    )?;
                    unit += 1;
                    if d.include_pci_all() {
                        f.write_str(" INCLUDE_PCI_ALL")?;
                    }
                    write_scopes(f, &d.scopes)?;
                }
                RemappingStructure::Rmrr(r) => {
                    write!(
                        f,
                        "RMRR: segment {} {:#x}..={:#x}",
                        r.segment, r.base, r.limit
                    )?;
                    write_scopes(f, &r.scopes)?;
                }
                RemappingStructure::Atsr(a) => {
                    write!(f, "ATSR: segment {}", a.segment)?;
                    if a.flags & 1 != 0 {
                        f.write_str(" ALL_PORTS")?;
                    }
                    write_scopes(f, &a.scopes)?;
                }
                RemappingStructure::Rhsa(r) => write!(
                    f,
                    "RHSA: unit {:#x} proximity domain {}",
                    r.register_base, r.proximity_domain
                )?,
                RemappingStructure::Andd(a) => write!(
                    f,
                    "ANDD: device {} \"{}\"",
                    a.device_number,
                    IdText(&a.object_name)
                )?,
                RemappingStructure::Satc(s) => {
                    write!(f, "SATC: segment {}", s.segment)?;
                    if s.flags & 1 != 0 {
                        f.write_str(" ATC_REQUIRED")?;
                    }
                    write_scopes(f, &s.scopes)?;
                }
                RemappingStructure::Unknown {
                    structure_type,
                    length,
                } => write!(
                    f,
                    "structure type {structure_type:#x} length {length:#x} (skipped)"
                )?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
