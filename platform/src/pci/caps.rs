//! Capability lists (standard and PCI Express extended) and the MSI and
//! MSI-X capability registers.

use alloc::vec::Vec;

use vmm_glue::{PciConfig, Sbdf};

use vmm_glue::pci::caps::{CapWalk, ExtCapWalk};

use super::{header, status};

/// Capability IDs (PCI Code and ID Assignment Specification).
pub use vmm_glue::pci::regs::cap_id as id;

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

/// Walks the standard capability list of the function at `sbdf` (the
/// shared walk: pointers masked to dwords, ended by a pointer below 0x40,
/// a revisited offset, ID 0xFF or 48 capabilities).
/// `header_type` is the header layout (without the multifunction bit):
/// a CardBus bridge keeps its pointer elsewhere.
pub fn walk_caps(cfg: &mut impl PciConfig, sbdf: Sbdf, header_type: u8) -> Vec<Capability> {
    let mut caps = Vec::new();
    let ptr = if header_type == header::TYPE_CARDBUS {
        header::CARDBUS_CAP_PTR
    } else {
        header::CAP_PTR
    };
    let status = cfg.read16(sbdf, status::OFFSET);
    let mut walk = CapWalk::new(status, cfg.read8(sbdf, ptr));
    while let Some(c) = walk.step(|at| cfg.read16(sbdf, at)) {
        caps.push(Capability {
            id: c.id as u8,
            offset: c.offset,
        });
    }
    caps
}

/// Walks the PCI Express extended capability list from 0x100, when the
/// function has 4096 bytes of config space. A header of 0 or all-ones
/// ends the list, as do a next pointer below 0x100 or a revisited offset.
pub fn walk_ext_caps(cfg: &mut impl PciConfig, sbdf: Sbdf) -> Vec<ExtCapability> {
    let mut caps = Vec::new();
    if cfg.config_size(sbdf) != 4096 {
        return caps;
    }
    let mut walk = ExtCapWalk::new();
    while let Some(c) = walk.step(|at| Some(cfg.read32(sbdf, at))) {
        caps.push(ExtCapability {
            id: c.id,
            version: c.version,
            offset: c.offset,
        });
    }
    caps
}

/// Offset of the first capability with ID `cap_id`, read live from config
/// space.
pub fn find_cap(cfg: &mut impl PciConfig, sbdf: Sbdf, cap_id: u8) -> Option<u16> {
    CapWalk::find(cfg, sbdf, cap_id)
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
