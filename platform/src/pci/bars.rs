//! BAR sizing: write all-ones with decode off, read the size mask back,
//! put everything back.

use alloc::vec::Vec;
use core::fmt;

use vmm_glue::{PciConfig, Sbdf};

use super::{command, header};

/// What a BAR decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    /// I/O space.
    Io,
    /// Memory, anywhere in the low 4 GiB.
    Mem32,
    /// Memory, 64-bit address (uses two BAR registers).
    Mem64,
    /// Memory below 1 MiB (legacy type 01).
    Mem1M,
}

/// An implemented BAR (or expansion ROM).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    /// BAR register index 0..=5, or 6 for the expansion ROM.
    pub index: u8,
    /// What it decodes.
    pub kind: BarKind,
    /// Whether the memory is prefetchable.
    pub prefetchable: bool,
    /// The address it is programmed to.
    pub base: u64,
    /// The size of the window it decodes.
    pub size: u64,
}

impl Bar {
    /// The index used for the expansion ROM.
    pub const ROM_INDEX: u8 = 6;
}

/// A BAR that could not be sized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarProblem {
    /// A 64-bit memory BAR in the last BAR slot has no upper half.
    Mem64InLastSlot {
        /// The BAR index.
        index: u8,
    },
    /// A memory BAR with the reserved type 11b.
    ReservedType {
        /// The BAR index.
        index: u8,
    },
}

impl fmt::Display for BarProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mem64InLastSlot { index } => write!(
                f,
                "BAR{index} is 64-bit but is the last BAR; malformed, not sized"
            ),
            Self::ReservedType { index } => {
                write!(f, "BAR{index} has the reserved memory type; not sized")
            }
        }
    }
}

/// What [`size_bars`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BarScan {
    /// Implemented BARs.
    pub bars: Vec<Bar>,
    /// The expansion ROM, if implemented.
    pub rom: Option<Bar>,
    /// BARs that were malformed.
    pub problems: Vec<BarProblem>,
}

/// The size a mask read back after writing all-ones encodes: its lowest
/// set bit (0 when nothing is writable).
fn size_of_mask(mask: u64) -> u64 {
    mask & mask.wrapping_neg()
}

/// Sizes the BARs and ROM of the function at `sbdf` with header layout
/// `header_type` (without the multifunction bit).
///
/// Memory and I/O decode are turned off for the duration (so a BAR holding
/// all-ones never decodes), each BAR gets all-ones written and read back,
/// and then its original value; the command register is restored last.
pub fn size_bars(cfg: &mut impl PciConfig, sbdf: Sbdf, header_type: u8) -> BarScan {
    let (count, rom) = match header_type {
        header::TYPE_ENDPOINT => (6, Some(header::ROM)),
        header::TYPE_BRIDGE => (2, Some(header::BRIDGE_ROM)),
        header::TYPE_CARDBUS => (1, None),
        _ => return BarScan::default(),
    };
    let command = cfg.read16(sbdf, command::OFFSET);
    let decode = command & (command::IO_SPACE | command::MEMORY_SPACE);
    if decode != 0 {
        cfg.write_command(sbdf, command & !decode);
    }
    let mut scan = BarScan::default();
    let mut index = 0;
    while index < count {
        let off = header::BAR0 + 4 * u16::from(index);
        let orig = cfg.read32(sbdf, off);
        let mut next = index + 1;
        if orig & 1 != 0 {
            let readback = probe32(cfg, sbdf, off, !0, orig);
            // A 16-bit I/O decoder reads back zeros in the upper half; the
            // lowest set bit of the mask is the size either way.
            let size = size_of_mask(u64::from(readback & !3));
            if size != 0 {
                scan.bars.push(Bar {
                    index,
                    kind: BarKind::Io,
                    prefetchable: false,
                    base: u64::from(orig & !3),
                    size,
                });
            }
        } else {
            let prefetchable = orig & 8 != 0;
            let kind = match (orig >> 1) & 3 {
                0 => Some(BarKind::Mem32),
                1 => Some(BarKind::Mem1M),
                2 => Some(BarKind::Mem64),
                _ => None,
            };
            match kind {
                None => scan.problems.push(BarProblem::ReservedType { index }),
                Some(BarKind::Mem64) if index + 1 == count => {
                    scan.problems.push(BarProblem::Mem64InLastSlot { index });
                }
                Some(BarKind::Mem64) => {
                    let orig_hi = cfg.read32(sbdf, off + 4);
                    cfg.write32(sbdf, off, !0);
                    cfg.write32(sbdf, off + 4, !0);
                    let lo = cfg.read32(sbdf, off);
                    let hi = cfg.read32(sbdf, off + 4);
                    cfg.write32(sbdf, off, orig);
                    cfg.write32(sbdf, off + 4, orig_hi);
                    let size = size_of_mask((u64::from(hi) << 32 | u64::from(lo)) & !0xf);
                    if size != 0 {
                        scan.bars.push(Bar {
                            index,
                            kind: BarKind::Mem64,
                            prefetchable,
                            base: (u64::from(orig_hi) << 32 | u64::from(orig)) & !0xf,
                            size,
                        });
                    }
                    next = index + 2;
                }
                Some(kind) => {
                    let readback = probe32(cfg, sbdf, off, !0, orig);
                    let size = size_of_mask(u64::from(readback & !0xf));
                    if size != 0 {
                        scan.bars.push(Bar {
                            index,
                            kind,
                            prefetchable,
                            base: u64::from(orig & !0xf),
                            size,
                        });
                    }
                }
            }
        }
        index = next;
    }
    if let Some(off) = rom {
        let orig = cfg.read32(sbdf, off);
        // Keep the enable bit (bit 0) clear while the address is all-ones.
        let readback = probe32(cfg, sbdf, off, 0xffff_f800, orig);
        let size = size_of_mask(u64::from(readback & 0xffff_f800));
        if size != 0 {
            scan.rom = Some(Bar {
                index: Bar::ROM_INDEX,
                kind: BarKind::Mem32,
                prefetchable: false,
                base: u64::from(orig & 0xffff_f800),
                size,
            });
        }
    }
    if decode != 0 {
        cfg.write_command(sbdf, command);
    }
    scan
}

/// Writes `probe` to the register at `off`, reads it back, restores `orig`.
fn probe32(cfg: &mut impl PciConfig, sbdf: Sbdf, off: u16, probe: u32, orig: u32) -> u32 {
    cfg.write32(sbdf, off, probe);
    let readback = cfg.read32(sbdf, off);
    cfg.write32(sbdf, off, orig);
    readback
}
