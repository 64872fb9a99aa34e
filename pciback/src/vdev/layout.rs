//! What [`VirtDevice::new`](super::VirtDevice::new) learns from the function
//! once, at assignment: its capabilities and where its MSI-X table and PBA
//! are. Nothing here is read again while a guest owns the function, so a
//! guest that rewrites hardware registers cannot move what pciback relies on
//! (XSA-337).

use alloc::vec::Vec;

use vmm_glue::pci::caps::CapWalk;
use vmm_glue::{PciConfig, Sbdf};

use super::{BarKind, DeviceInfo};
use crate::regs::{header, msi, msix, pcie, pm};

/// One capability the guest sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Cap {
    /// Capability ID.
    pub id: u8,
    /// Offset in config space.
    pub offset: u16,
    /// Size in bytes (within 0x40..0x100).
    pub len: u16,
}

/// The MSI capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct MsiLayout {
    /// Offset of the capability.
    pub offset: u16,
    /// The read-only Message Control bits (capable bits), as read at
    /// assignment with Enable and Multiple Message Enable cleared.
    pub control: u16,
    /// 64-bit address layout.
    pub is64: bool,
    /// Per-vector masking.
    pub maskable: bool,
}

impl MsiLayout {
    /// Offset of Message Data.
    pub fn data(&self) -> u16 {
        self.offset
            + if self.is64 {
                msi::DATA_64
            } else {
                msi::DATA_32
            }
    }

    /// Offset of Mask Bits (maskable functions only).
    pub fn mask(&self) -> u16 {
        self.data() + msi::MASK_FROM_DATA
    }

    /// The capability's size.
    pub fn len(&self) -> u16 {
        let base = if self.is64 { 14 } else { 10 };
        if self.maskable {
            base + 10
        } else {
            base
        }
    }
}

/// The MSI-X capability and its table, cached at assignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct MsixLayout {
    /// Offset of the capability.
    pub offset: u16,
    /// Table entries (1..=2048).
    pub entries: u16,
    /// Index in `DeviceInfo::bars` of the BAR holding the table.
    pub table_bar: usize,
    /// Offset of the table in that BAR.
    pub table_offset: u64,
    /// Index in `DeviceInfo::bars` of the BAR holding the PBA.
    pub pba_bar: usize,
    /// Offset of the PBA in that BAR.
    pub pba_offset: u64,
    /// The Table Offset/BIR register as read.
    pub table_reg: u32,
    /// The PBA Offset/BIR register as read.
    pub pba_reg: u32,
}

impl MsixLayout {
    /// The table's size in bytes.
    pub fn table_len(&self) -> u64 {
        u64::from(self.entries) * msix::ENTRY_SIZE
    }

    /// The PBA's size in bytes: one bit per entry, in qwords.
    pub fn pba_len(&self) -> u64 {
        u64::from(self.entries).div_ceil(64) * 8
    }
}

/// The function's capabilities as pciback sees them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Layout {
    /// The capabilities the guest sees, in the hardware list's order.
    pub visible: Vec<Cap>,
    /// Every capability ID and offset found, visible or not.
    pub found: Vec<(u8, u16)>,
    /// The MSI capability, if visible.
    pub msi: Option<MsiLayout>,
    /// The MSI-X capability, if visible (its table and PBA are in memory
    /// BARs the function implements).
    pub msix: Option<MsixLayout>,
    /// Offset of the Power Management capability, if visible.
    pub pm: Option<u16>,
}

/// Walks the capability list of `sbdf` and decides what the guest sees:
/// Power Management, MSI, MSI-X (if its table and PBA lie inside memory
/// BARs of `info`) and PCI Express. Everything else is hidden.
pub(super) fn discover(hw: &mut dyn PciConfig, sbdf: Sbdf, info: &DeviceInfo) -> Layout {
    let mut layout = Layout::default();
    let status = hw.read16(sbdf, crate::regs::status::OFFSET);
    let mut walk = CapWalk::new(status, hw.read8(sbdf, header::CAP_PTR));
    while let Some(found) = walk.step(|at| hw.read16(sbdf, at)) {
        let (id, at) = (found.id as u8, found.offset);
        layout.found.push((id, at));
        let len = match id {
            pm::CAP_ID if layout.pm.is_none() => {
                layout.pm = Some(at);
                Some(8)
            }
            msi::CAP_ID if layout.msi.is_none() => {
                let control = hw.read16(sbdf, at + msi::CONTROL);
                let m = MsiLayout {
                    offset: at,
                    control: control & !(msi::ENABLE | msi::MME),
                    is64: control & msi::ADDR64 != 0,
                    maskable: control & msi::MASKABLE != 0,
                };
                layout.msi = Some(m);
                Some(m.len())
            }
            msix::CAP_ID if layout.msix.is_none() => {
                layout.msix = msix_layout(hw, sbdf, at, info);
                layout.msix.map(|_| 12)
            }
            pcie::CAP_ID => {
                let flags = hw.read16(sbdf, at + pcie::FLAGS);
                Some(if flags & 0xf >= 2 {
                    pcie::LEN_V2
                } else {
                    pcie::LEN_V1
                })
            }
            _ => None,
        };
        if let Some(len) = len {
            let len = len.min(0x100 - at);
            layout.visible.push(Cap {
                id,
                offset: at,
                len,
            });
        }
    }
    layout
}

/// The MSI-X table and PBA of the capability at `at`, if both lie inside
/// memory BARs of `info`.
fn msix_layout(
    hw: &mut dyn PciConfig,
    sbdf: Sbdf,
    at: u16,
    info: &DeviceInfo,
) -> Option<MsixLayout> {
    let control = hw.read16(sbdf, at + msix::CONTROL);
    let table_reg = hw.read32(sbdf, at + msix::TABLE);
    let pba_reg = hw.read32(sbdf, at + msix::PBA);
    let bar = |reg: u32| {
        let bir = (reg & msix::BIR_MASK) as u8;
        info.bars
            .iter()
            .position(|b| b.index == bir && b.kind != BarKind::Io)
    };
    let mut m = MsixLayout {
        offset: at,
        entries: (control & msix::TABLE_SIZE) + 1,
        table_bar: bar(table_reg)?,
        table_offset: u64::from(table_reg & !msix::BIR_MASK),
        pba_bar: bar(pba_reg)?,
        pba_offset: u64::from(pba_reg & !msix::BIR_MASK),
        table_reg,
        pba_reg,
    };
    let fits = |bar: usize, offset: u64, len: u64| offset + len <= info.bars[bar].size;
    if !fits(m.table_bar, m.table_offset, m.table_len()) {
        return None;
    }
    if !fits(m.pba_bar, m.pba_offset, m.pba_len()) {
        return None;
    }
    m.entries = m.entries.max(1);
    Some(m)
}
