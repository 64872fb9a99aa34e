//! IVRS: the AMD I/O Virtualization Reporting Structure (AMD IOMMU
//! specification): IOMMU units (IVHD), the devices each one translates for,
//! and memory ranges with special treatment (IVMD).

use alloc::vec::Vec;

use vmm_glue::Sbdf;

use super::sdt::{need, walk_structures, Reader, StructLayout};
use super::{AcpiError, AcpiErrorKind, AcpiTable, SdtHeader, Signature};

/// Offset of the first IVDB (definition block).
const BLOCKS: usize = 48;

/// IVHD type 0x10: fixed-size device entries, feature reporting field.
pub const IVHD_LEGACY: u8 = 0x10;
/// IVHD type 0x11: adds the EFR register image.
pub const IVHD_WITH_EFR: u8 = 0x11;
/// IVHD type 0x40: like 0x11, and may carry ACPI HID device entries.
pub const IVHD_MIXED: u8 = 0x40;

/// The IVRS table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ivrs {
    /// The table header.
    pub header: SdtHeader,
    /// IVinfo: virtualization information common to all IOMMUs.
    pub iv_info: u32,
    /// The definition blocks, in table order.
    pub blocks: Vec<IvrsBlock>,
}

/// One IVRS definition block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IvrsBlock {
    /// An I/O virtualization hardware definition: one IOMMU.
    Ivhd(Ivhd),
    /// An I/O virtualization memory definition.
    Ivmd(Ivmd),
    /// Any other type, skipped.
    Unknown {
        /// The type byte.
        block_type: u8,
        /// The length field.
        length: u16,
    },
}

/// An IOMMU (IVHD block of type 0x10, 0x11 or 0x40).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ivhd {
    /// Block type: [`IVHD_LEGACY`], [`IVHD_WITH_EFR`] or [`IVHD_MIXED`].
    pub block_type: u8,
    /// IVHD flags (HtTunEn, PassPW, ResPassPW, Isoc, IotlbSup, Coherent,
    /// PreFSup, PPRSup from bit 0 up).
    pub flags: u8,
    /// The IOMMU's own requester ID (bus, device, function).
    pub device_id: u16,
    /// Offset of the IOMMU capability block in its config space.
    pub capability_offset: u16,
    /// Physical address of the IOMMU's MMIO registers.
    pub base_address: u64,
    /// PCI segment group.
    pub segment: u16,
    /// IOMMU info: MSI number (bits 4:0) and HyperTransport unit ID (12:8).
    pub info: u16,
    /// Type 0x10: IOMMU feature reporting; types 0x11/0x40: IOMMU attributes.
    pub feature_info: u32,
    /// Image of the extended feature register (types 0x11/0x40).
    pub efr: Option<u64>,
    /// The device entries, in block order.
    pub entries: Vec<IvhdEntry>,
}

/// An IVHD device entry. `dte` is the DTE setting byte (INITPass,
/// EIntPass, NMIPass, SysMgt, Lint0Pass, Lint1Pass).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IvhdEntry {
    /// Type 0: padding.
    Pad,
    /// Type 1: every device ID.
    All {
        /// DTE setting.
        dte: u8,
    },
    /// Type 2: one device.
    Select {
        /// Device ID.
        device_id: u16,
        /// DTE setting.
        dte: u8,
    },
    /// Type 3: first device of a range ended by [`IvhdEntry::RangeEnd`].
    RangeStart {
        /// First device ID.
        device_id: u16,
        /// DTE setting.
        dte: u8,
    },
    /// Type 4: last device of a range.
    RangeEnd {
        /// Last device ID.
        device_id: u16,
    },
    /// Type 0x42: one device whose requests carry another ID.
    AliasSelect {
        /// Device ID.
        device_id: u16,
        /// DTE setting.
        dte: u8,
        /// The ID its requests carry.
        alias: u16,
    },
    /// Type 0x43: first device of an aliased range.
    AliasRangeStart {
        /// First device ID.
        device_id: u16,
        /// DTE setting.
        dte: u8,
        /// The ID the range's requests carry.
        alias: u16,
    },
    /// Type 0x46: one device with extended settings.
    ExtendedSelect {
        /// Device ID.
        device_id: u16,
        /// DTE setting.
        dte: u8,
        /// Extended DTE setting (bit 31: ATS disallowed).
        ext: u32,
    },
    /// Type 0x47: first device of a range with extended settings.
    ExtendedRangeStart {
        /// First device ID.
        device_id: u16,
        /// DTE setting.
        dte: u8,
        /// Extended DTE setting.
        ext: u32,
    },
    /// Type 0x48: an IOAPIC or HPET and the device ID it uses.
    Special {
        /// IOAPIC ID or HPET number.
        handle: u8,
        /// The requester ID its interrupts carry.
        device_id: u16,
        /// What kind of device.
        variety: SpecialVariety,
        /// DTE setting.
        dte: u8,
    },
    /// Type 0xF0: an ACPI namespace device.
    AcpiHid {
        /// Device ID.
        device_id: u16,
        /// DTE setting.
        dte: u8,
        /// Hardware ID (ASCII or EISA-encoded).
        hid: [u8; 8],
        /// Compatible ID.
        cid: [u8; 8],
        /// UID format: 0 none, 1 integer, 2 string.
        uid_format: u8,
        /// UID bytes.
        uid: Vec<u8>,
    },
    /// Another 4-byte type (0x05..=0x3F).
    Other4 {
        /// Type byte.
        entry_type: u8,
        /// Device ID field.
        device_id: u16,
        /// DTE setting.
        dte: u8,
    },
    /// Another 8-byte type (0x40..=0x7F).
    Other8 {
        /// The whole entry.
        raw: [u8; 8],
    },
}

/// The kind of device a special (type 0x48) entry describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecialVariety {
    /// 1: an I/O APIC.
    IoApic,
    /// 2: an HPET.
    Hpet,
    /// Any other value.
    Other(u8),
}

impl From<u8> for SpecialVariety {
    fn from(v: u8) -> Self {
        match v {
            1 => Self::IoApic,
            2 => Self::Hpet,
            other => Self::Other(other),
        }
    }
}

/// A range of device IDs an IVHD covers, with the settings for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IvhdDeviceRange {
    /// First device ID.
    pub first: u16,
    /// Last device ID (inclusive).
    pub last: u16,
    /// DTE setting.
    pub dte: u8,
    /// The requester ID the devices' requests carry, if aliased.
    pub alias: Option<u16>,
}

/// An I/O virtualization memory definition (IVMD types 0x20..=0x22).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ivmd {
    /// 0x20 all peripherals, 0x21 one peripheral, 0x22 a range.
    pub block_type: u8,
    /// Flags (unity mapping, read, write, exclusion range).
    pub flags: u8,
    /// Device ID (type 0x21) or first device ID (0x22).
    pub device_id: u16,
    /// Auxiliary data: last device ID for type 0x22.
    pub aux_data: u16,
    /// First byte of the memory block.
    pub start: u64,
    /// Length of the memory block.
    pub length: u64,
}

impl Ivrs {
    /// Parses a whole IVRS table, header included.
    pub fn parse(bytes: &[u8]) -> Result<Self, AcpiError> {
        let (header, r) = SdtHeader::check(Self::SIGNATURE, bytes, BLOCKS)?;
        let layout = StructLayout {
            what: "IVRS block",
            header_len: 4,
            type_at: (0, 1),
            length_at: (2, 2),
        };
        let mut blocks = Vec::new();
        walk_structures(&r, BLOCKS..r.len(), layout, |off, ty, s| {
            let block_type = s.u8(0)?;
            let block = match block_type {
                IVHD_LEGACY | IVHD_WITH_EFR | IVHD_MIXED => {
                    IvrsBlock::Ivhd(parse_ivhd(&r, off, &s)?)
                }
                0x20..=0x22 => {
                    need(&s, "IVMD", off, 32)?;
                    IvrsBlock::Ivmd(Ivmd {
                        block_type,
                        flags: s.u8(1)?,
                        device_id: s.u16(4)?,
                        aux_data: s.u16(6)?,
                        start: s.u64(16)?,
                        length: s.u64(24)?,
                    })
                }
                _ => IvrsBlock::Unknown {
                    block_type: u8::try_from(ty).unwrap_or(0),
                    length: s.u16(2)?,
                },
            };
            blocks.push(block);
            Ok(())
        })?;
        Ok(Self {
            header,
            iv_info: r.u32(36)?,
            blocks,
        })
    }

    /// Whether the EFR images in IVHD types 0x11/0x40 are valid.
    pub const fn efr_supported(&self) -> bool {
        self.iv_info & 1 != 0
    }

    /// Maximum virtual address size in bits.
    pub const fn va_size(&self) -> u8 {
        ((self.iv_info >> 15) & 0x7f) as u8
    }

    /// Maximum physical address size in bits.
    pub const fn pa_size(&self) -> u8 {
        ((self.iv_info >> 8) & 0x7f) as u8
    }

    /// Guest virtual address size field (2 means 48 bits).
    pub const fn gva_size(&self) -> u8 {
        ((self.iv_info >> 5) & 7) as u8
    }

    /// Every IVHD block, in table order. One IOMMU may be described more
    /// than once (a type 0x10 block for older software beside a type 0x11
    /// or 0x40 one); [`Ivrs::units`] gives each IOMMU once.
    pub fn ivhds(&self) -> impl Iterator<Item = &Ivhd> {
        self.blocks.iter().filter_map(|b| match b {
            IvrsBlock::Ivhd(h) => Some(h),
            _ => None,
        })
    }

    /// The IOMMUs, each once, in the order they first appear: of the
    /// blocks naming the same IOMMU (same segment, device ID and register
    /// base), the one of the highest type, as the specification asks of
    /// software that understands that type (0x40 over 0x11 over 0x10).
    pub fn units(&self) -> Vec<&Ivhd> {
        let mut units: Vec<&Ivhd> = Vec::new();
        for h in self.ivhds() {
            let same = |u: &&Ivhd| {
                u.segment == h.segment
                    && u.device_id == h.device_id
                    && u.base_address == h.base_address
            };
            match units.iter_mut().find(|u| same(u)) {
                Some(u) if h.block_type > u.block_type => *u = h,
                Some(_) => {}
                None => units.push(h),
            }
        }
        units
    }
}

impl AcpiTable for Ivrs {
    const SIGNATURE: Signature = Signature(*b"IVRS");

    fn parse(bytes: &[u8]) -> Result<Self, AcpiError> {
        Ivrs::parse(bytes)
    }
}

fn parse_ivhd(table: &Reader<'_>, off: usize, s: &Reader<'_>) -> Result<Ivhd, AcpiError> {
    let block_type = s.u8(0)?;
    let fixed = if block_type == IVHD_LEGACY { 24 } else { 40 };
    need(s, "IVHD", off, fixed)?;
    Ok(Ivhd {
        block_type,
        flags: s.u8(1)?,
        device_id: s.u16(4)?,
        capability_offset: s.u16(6)?,
        base_address: s.u64(8)?,
        segment: s.u16(16)?,
        info: s.u16(18)?,
        feature_info: s.u32(20)?,
        efr: if block_type == IVHD_LEGACY {
            None
        } else {
            Some(s.u64(24)?)
        },
        entries: parse_device_entries(table, off + fixed, off + s.len())?,
    })
}

/// The length of the device entry at `off`: from its type for fixed-size
/// entries, from its UID length for ACPI HID entries.
fn entry_length(r: &Reader<'_>, off: usize) -> Result<usize, AcpiError> {
    let ty = r.u8(off)?;
    match ty {
        0x00..=0x3f => Ok(4),
        0x40..=0x7f => Ok(8),
        0xf0 => {
            // The UID length byte is at offset 21 of the entry.
            let uid_len = r.u8(off + 21).map_err(|_| {
                r.error(AcpiErrorKind::ShorterThanType {
                    what: "IVHD ACPI HID entry",
                    offset: off,
                    length: r.len().saturating_sub(off),
                    minimum: 22,
                })
            })?;
            Ok(22 + usize::from(uid_len))
        }
        _ => Err(r.error(AcpiErrorKind::UnknownEntryLength {
            what: "IVHD device entry",
            offset: off,
            entry_type: ty,
        })),
    }
}

fn parse_device_entries(
    table: &Reader<'_>,
    start: usize,
    end: usize,
) -> Result<Vec<IvhdEntry>, AcpiError> {
    // Never look past the IVHD, even when the table goes on.
    let block = table.prefix(end)?;
    let mut entries = Vec::new();
    let mut off = start;
    while off < end {
        let length = entry_length(&block, off)?;
        let remaining = end - off;
        if length > remaining {
            return Err(block.error(AcpiErrorKind::Overrun {
                what: "IVHD device entry",
                offset: off,
                length,
                remaining,
            }));
        }
        let e = block.sub(off, length)?;
        let ty = e.u8(0)?;
        let device_id = e.u16(1)?;
        let dte = e.u8(3)?;
        let entry = match ty {
            0 => IvhdEntry::Pad,
            1 => IvhdEntry::All { dte },
            2 => IvhdEntry::Select { device_id, dte },
            3 => IvhdEntry::RangeStart { device_id, dte },
            4 => IvhdEntry::RangeEnd { device_id },
            0x05..=0x3f => IvhdEntry::Other4 {
                entry_type: ty,
                device_id,
                dte,
            },
            0x42 => IvhdEntry::AliasSelect {
                device_id,
                dte,
                alias: e.u16(5)?,
            },
            0x43 => IvhdEntry::AliasRangeStart {
                device_id,
                dte,
                alias: e.u16(5)?,
            },
            0x46 => IvhdEntry::ExtendedSelect {
                device_id,
                dte,
                ext: e.u32(4)?,
            },
            0x47 => IvhdEntry::ExtendedRangeStart {
                device_id,
                dte,
                ext: e.u32(4)?,
            },
            0x48 => IvhdEntry::Special {
                handle: e.u8(4)?,
                device_id: e.u16(5)?,
                variety: SpecialVariety::from(e.u8(7)?),
                dte,
            },
            0x40..=0x7f => IvhdEntry::Other8 { raw: e.array(0)? },
            _ => IvhdEntry::AcpiHid {
                device_id,
                dte,
                hid: e.array(4)?,
                cid: e.array(12)?,
                uid_format: e.u8(20)?,
                uid: Vec::from(e.bytes(22, length - 22)?),
            },
        };
        entries.push(entry);
        off += length;
    }
    Ok(entries)
}

impl Ivhd {
    /// The IOMMU's own PCI function.
    pub fn sbdf(&self) -> Sbdf {
        sbdf_of(self.segment, self.device_id)
    }

    /// MSI number the IOMMU uses for its own interrupts.
    pub const fn msi_number(&self) -> u8 {
        (self.info & 0x1f) as u8
    }

    /// HyperTransport unit ID.
    pub const fn unit_id(&self) -> u8 {
        ((self.info >> 8) & 0x1f) as u8
    }

    /// The device ID ranges the entries describe: ranges closed by their
    /// end entries, selects as one-device ranges, "all" as the whole space.
    /// A range start without an end is ignored.
    pub fn device_ranges(&self) -> Vec<IvhdDeviceRange> {
        let mut out = Vec::new();
        let mut open: Option<(u16, u8, Option<u16>)> = None;
        for e in &self.entries {
            let one = |id: u16, dte: u8, alias: Option<u16>| IvhdDeviceRange {
                first: id,
                last: id,
                dte,
                alias,
            };
            match *e {
                IvhdEntry::All { dte } => out.push(IvhdDeviceRange {
                    first: 0,
                    last: 0xffff,
                    dte,
                    alias: None,
                }),
                IvhdEntry::Select { device_id, dte }
                | IvhdEntry::ExtendedSelect { device_id, dte, .. } => {
                    out.push(one(device_id, dte, None))
                }
                IvhdEntry::AliasSelect {
                    device_id,
                    dte,
                    alias,
                } => out.push(one(device_id, dte, Some(alias))),
                IvhdEntry::RangeStart { device_id, dte }
                | IvhdEntry::ExtendedRangeStart { device_id, dte, .. } => {
                    open = Some((device_id, dte, None))
                }
                IvhdEntry::AliasRangeStart {
                    device_id,
                    dte,
                    alias,
                } => open = Some((device_id, dte, Some(alias))),
                IvhdEntry::RangeEnd { device_id } => {
                    if let Some((first, dte, alias)) = open.take() {
                        if first <= device_id {
                            out.push(IvhdDeviceRange {
                                first,
                                last: device_id,
                                dte,
                                alias,
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }
}

fn sbdf_of(segment: u16, id: u16) -> Sbdf {
    let [bus, devfn] = id.to_be_bytes();
    Sbdf {
        seg: segment,
        bus,
        dev: devfn >> 3,
        func: devfn & 7,
    }
}

mod display;

#[cfg(test)]
mod tests;
