//! Capability lists (standard and PCI Express extended) and the MSI and
//! MSI-X capability registers.

use alloc::vec::Vec;

use vmm_glue::{PciConfig, Sbdf};

use super::{header, regs};

/// Capability IDs (PCI Code and ID Assignment Specification).
pub mod id {
    /// Power management.
    pub const PM: u8 = 0x01;
    /// AGP.
    pub const AGP: u8 = 0x02;
    /// Vital product data.
    pub const VPD: u8 = 0x03;
    /// Slot identification.
    pub const SLOT_ID: u8 = 0x04;
    /// Message signalled interrupts.
    pub const MSI: u8 = 0x05;
    /// HyperTransport.
    pub const HT: u8 = 0x08;
    /// Vendor specific.
    pub const VENDOR: u8 = 0x09;
    /// Debug port.
    pub const DEBUG: u8 = 0x0a;
    /// PCI hot-plug.
    pub const HOTPLUG: u8 = 0x0c;
    /// Bridge subsystem vendor ID.
    pub const SUBSYSTEM_VENDOR: u8 = 0x0d;
    /// AGP 8x.
    pub const AGP8X: u8 = 0x0e;
    /// Secure device (AMD IOMMU).
    pub const SECURE: u8 = 0x0f;
    /// PCI Express.
    pub const PCIE: u8 = 0x10;
    /// MSI-X.
    pub const MSIX: u8 = 0x11;
    /// SATA configuration.
    pub const SATA: u8 = 0x12;
    /// Advanced features.
    pub const AF: u8 = 0x13;
    /// Enhanced allocation.
    pub const EA: u8 = 0x14;

    /// Extended: advanced error reporting.
    pub const EXT_AER: u16 = 0x01;
    /// Extended: virtual channel.
    pub const EXT_VC: u16 = 0x02;
    /// Extended: device serial number.
    pub const EXT_DSN: u16 = 0x03;
    /// Extended: power budgeting.
    pub const EXT_POWER_BUDGET: u16 = 0x04;
    /// Extended: root complex link declaration.
    pub const EXT_RCLD: u16 = 0x05;
    /// Extended: vendor specific.
    pub const EXT_VENDOR: u16 = 0x0b;
    /// Extended: access control services.
    pub const EXT_ACS: u16 = 0x0d;
    /// Extended: alternative routing-ID interpretation.
    pub const EXT_ARI: u16 = 0x0e;
    /// Extended: address translation services.
    pub const EXT_ATS: u16 = 0x0f;
    /// Extended: single root I/O virtualization.
    pub const EXT_SRIOV: u16 = 0x10;
    /// Extended: resizable BAR.
    pub const EXT_REBAR: u16 = 0x15;
    /// Extended: latency tolerance reporting.
    pub const EXT_LTR: u16 = 0x18;
    /// Extended: secondary PCI Express.
    pub const EXT_SECONDARY_PCIE: u16 = 0x19;
    /// Extended: process address space ID.
    pub const EXT_PASID: u16 = 0x1b;
    /// Extended: L1 PM substates.
    pub const EXT_L1SS: u16 = 0x1e;
    /// Extended: data link feature.
    pub const EXT_DLF: u16 = 0x25;
    /// Extended: physical layer 16 GT/s.
    pub const EXT_PL16: u16 = 0x26;
}

/// A capability in the standard list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capability {
    /// Capability ID.
    pub id: u8,
    /// Its offset in config space.
    pub offset: u16,
}

impl Capability {
    /// A short name for the capability ID.
    pub fn name(&self) -> &'static str {
        match self.id {
            id::PM => "PM",
            id::AGP => "AGP",
            id::VPD => "VPD",
            id::SLOT_ID => "SlotID",
            id::MSI => "MSI",
            id::HT => "HT",
            id::VENDOR => "vendor",
            id::DEBUG => "debug",
            id::HOTPLUG => "hotplug",
            id::SUBSYSTEM_VENDOR => "SSVID",
            id::AGP8X => "AGP8x",
            id::SECURE => "secure",
            id::PCIE => "PCIe",
            id::MSIX => "MSI-X",
            id::SATA => "SATA",
            id::AF => "AF",
            id::EA => "EA",
            _ => "?",
        }
    }
}

/// A capability in the PCI Express extended list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtCapability {
    /// Extended capability ID.
    pub id: u16,
    /// Capability version.
    pub version: u8,
    /// Its offset in config space.
    pub offset: u16,
}

impl ExtCapability {
    /// A short name for the extended capability ID.
    pub fn name(&self) -> &'static str {
        match self.id {
            id::EXT_AER => "AER",
            id::EXT_VC => "VC",
            id::EXT_DSN => "DSN",
            id::EXT_POWER_BUDGET => "PwrBudget",
            id::EXT_RCLD => "RCLD",
            id::EXT_VENDOR => "vendor",
            id::EXT_ACS => "ACS",
            id::EXT_ARI => "ARI",
            id::EXT_ATS => "ATS",
            id::EXT_SRIOV => "SR-IOV",
            id::EXT_REBAR => "ReBAR",
            id::EXT_LTR => "LTR",
            id::EXT_SECONDARY_PCIE => "SecPCIe",
            id::EXT_PASID => "PASID",
            id::EXT_L1SS => "L1SS",
            id::EXT_DLF => "DLF",
            id::EXT_PL16 => "PL16",
            _ => "?",
        }
    }
}

/// Most capabilities a 256-byte config space can hold (192 bytes after
/// the header, 4 bytes each); more steps than this mean a loop.
const MAX_CAPS: usize = 48;
/// Most extended capabilities 0x100..0x1000 can hold.
const MAX_EXT_CAPS: usize = (4096 - 256) / 4;

/// Walks the standard capability list of the function at `sbdf`.
///
/// Only done when the status register says there is a list. Pointers are
/// masked to dword alignment; the walk stops at a pointer below 0x40 (0
/// ends the list), at a revisited offset, at ID 0xFF (the function went
/// away) or after 48 capabilities.
pub fn walk_caps(cfg: &mut impl PciConfig, sbdf: Sbdf, header_type: u8) -> Vec<Capability> {
    let mut caps = Vec::new();
    if cfg.read16(sbdf, regs::STATUS) & regs::STATUS_CAP_LIST == 0 {
        return caps;
    }
    let ptr_reg = if header_type == header::CARDBUS {
        regs::CARDBUS_CAP_PTR
    } else {
        regs::CAP_PTR
    };
    let mut seen = [false; 64];
    let mut ptr = cfg.read8(sbdf, ptr_reg) & !3;
    while ptr >= 0x40 && caps.len() < MAX_CAPS {
        let slot = usize::from(ptr / 4);
        if seen[slot] {
            break;
        }
        seen[slot] = true;
        let [cap_id, next] = cfg.read16(sbdf, u16::from(ptr)).to_le_bytes();
        if cap_id == 0xff {
            break;
        }
        caps.push(Capability {
            id: cap_id,
            offset: u16::from(ptr),
        });
        ptr = next & !3;
    }
    caps
}

/// Walks the PCI Express extended capability list from 0x100.
///
/// Callers check first that the function has 4096 bytes of config space
/// and a PCI Express capability; this function checks the size again. A
/// header of 0 or all-ones ends the list, as do a next pointer below 0x100,
/// a revisited offset, or 960 capabilities.
pub fn walk_ext_caps(cfg: &mut impl PciConfig, sbdf: Sbdf) -> Vec<ExtCapability> {
    let mut caps = Vec::new();
    if cfg.config_size(sbdf) != 4096 {
        return caps;
    }
    let mut seen = [0u64; 16];
    let mut off = regs::EXT_CAP_START;
    while caps.len() < MAX_EXT_CAPS {
        let slot = usize::from(off / 4);
        let (word, bit) = (slot / 64, 1u64 << (slot % 64));
        if seen[word] & bit != 0 {
            break;
        }
        seen[word] |= bit;
        let head = cfg.read32(sbdf, off);
        if head == 0 || head == !0 {
            break;
        }
        caps.push(ExtCapability {
            id: head as u16,
            version: ((head >> 16) & 0xf) as u8,
            offset: off,
        });
        // Bits 31:20 hold the next offset; it is below 0x1000 by construction.
        let next = ((head >> 20) & 0xffc) as u16;
        if next < regs::EXT_CAP_START {
            break;
        }
        off = next;
    }
    caps
}

/// Offset of the first capability with ID `cap_id`, read live from config
/// space.
pub fn find_cap(cfg: &mut impl PciConfig, sbdf: Sbdf, cap_id: u8) -> Option<u16> {
    let header_type = cfg.read8(sbdf, regs::HEADER_TYPE) & !regs::HEADER_MULTIFUNCTION;
    walk_caps(cfg, sbdf, header_type)
        .into_iter()
        .find(|c| c.id == cap_id)
        .map(|c| c.offset)
}

/// The MSI capability: where it is and its Message Control word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsiInfo {
    /// Offset of the capability.
    pub offset: u16,
    /// Message Control.
    pub control: u16,
}

impl MsiInfo {
    /// Reads the capability at `offset`.
    pub fn read(cfg: &mut impl PciConfig, sbdf: Sbdf, offset: u16) -> Self {
        Self {
            offset,
            control: cfg.read16(sbdf, offset.wrapping_add(2)),
        }
    }

    /// MSI Enable.
    pub const fn enabled(&self) -> bool {
        self.control & 1 != 0
    }

    /// Whether the message address is 64 bits.
    pub const fn is_64bit(&self) -> bool {
        self.control & (1 << 7) != 0
    }

    /// Whether the function has per-vector mask and pending bits.
    pub const fn per_vector_masking(&self) -> bool {
        self.control & (1 << 8) != 0
    }

    /// Multiple Message Capable: log2 of the vectors it can use.
    pub const fn multiple_message_capable(&self) -> u8 {
        ((self.control >> 1) & 7) as u8
    }

    /// Vectors the function can use (1 to 32).
    pub const fn max_vectors(&self) -> u8 {
        let log2 = self.multiple_message_capable();
        1 << if log2 > 5 { 5 } else { log2 }
    }

    /// Multiple Message Enable: log2 of the vectors it was given.
    pub const fn multiple_message_enable(&self) -> u8 {
        ((self.control >> 4) & 7) as u8
    }

    /// Offset of the Message Address (low dword).
    pub const fn address_offset(&self) -> u16 {
        self.offset.wrapping_add(4)
    }

    /// Offset of the Message Upper Address, for 64-bit MSI.
    pub const fn upper_address_offset(&self) -> Option<u16> {
        if self.is_64bit() {
            Some(self.offset.wrapping_add(8))
        } else {
            None
        }
    }

    /// Offset of the Message Data.
    pub const fn data_offset(&self) -> u16 {
        self.offset
            .wrapping_add(if self.is_64bit() { 0xc } else { 8 })
    }

    /// Offset of the Mask Bits, with per-vector masking.
    pub const fn mask_offset(&self) -> Option<u16> {
        if self.per_vector_masking() {
            Some(
                self.offset
                    .wrapping_add(if self.is_64bit() { 0x10 } else { 0xc }),
            )
        } else {
            None
        }
    }

    /// Offset of the Pending Bits, with per-vector masking.
    pub const fn pending_offset(&self) -> Option<u16> {
        match self.mask_offset() {
            Some(m) => Some(m.wrapping_add(4)),
            None => None,
        }
    }
}

/// The MSI-X capability: where it is, Message Control, and where the
/// table and pending bit array live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsixInfo {
    /// Offset of the capability.
    pub offset: u16,
    /// Message Control.
    pub control: u16,
    /// Table offset (bits 31:3) and BIR (bits 2:0).
    pub table: u32,
    /// PBA offset (bits 31:3) and BIR (bits 2:0).
    pub pba: u32,
}

impl MsixInfo {
    /// Reads the capability at `offset`.
    pub fn read(cfg: &mut impl PciConfig, sbdf: Sbdf, offset: u16) -> Self {
        Self {
            offset,
            control: cfg.read16(sbdf, offset.wrapping_add(2)),
            table: cfg.read32(sbdf, offset.wrapping_add(4)),
            pba: cfg.read32(sbdf, offset.wrapping_add(8)),
        }
    }

    /// Number of table entries (1 to 2048).
    pub const fn table_size(&self) -> u16 {
        (self.control & 0x7ff) + 1
    }

    /// MSI-X Enable.
    pub const fn enabled(&self) -> bool {
        self.control & (1 << 15) != 0
    }

    /// Function Mask.
    pub const fn function_masked(&self) -> bool {
        self.control & (1 << 14) != 0
    }

    /// The BAR index the table is in.
    pub const fn table_bir(&self) -> u8 {
        (self.table & 7) as u8
    }

    /// Offset of the table in its BAR.
    pub const fn table_offset(&self) -> u32 {
        self.table & !7
    }

    /// The BAR index the pending bit array is in.
    pub const fn pba_bir(&self) -> u8 {
        (self.pba & 7) as u8
    }

    /// Offset of the pending bit array in its BAR.
    pub const fn pba_offset(&self) -> u32 {
        self.pba & !7
    }
}
