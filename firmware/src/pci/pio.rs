//! I/O BARs: 32-bit port accesses inside a function's I/O window.

use super::{Bar, BarKind};
use crate::cpu;

/// An I/O BAR the guest may access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pio {
    base: u16,
    len: u16,
}

impl Pio {
    /// The I/O BAR `bar`, if it is one, is assigned and lies inside the
    /// 64 KiB port space.
    pub fn new(bar: &Bar) -> Option<Pio> {
        if bar.kind != BarKind::Io || bar.addr == 0 {
            return None;
        }
        let end = bar.addr.checked_add(bar.size)?;
        if end > 0x1_0000 {
            return None;
        }
        Some(Pio {
            base: bar.addr as u16,
            len: bar.size as u16,
        })
    }

    /// The first port.
    pub fn base(&self) -> u16 {
        self.base
    }

    /// The port of `offset` for a 4-byte access, if it stays inside the
    /// BAR and is aligned.
    fn at(&self, offset: u16) -> Option<u16> {
        (offset.is_multiple_of(4) && offset.checked_add(4)? <= self.len).then(|| self.base + offset)
    }

    /// Reads the 32-bit port at `offset` (all ones outside the BAR).
    pub fn read32(&self, offset: u16) -> u32 {
        match self.at(offset) {
            // SAFETY: the port is inside an I/O BAR of a function this
            // guest drives; reading a register there does not make the
            // device write memory.
            Some(p) => unsafe { cpu::inl(p) },
            None => u32::MAX,
        }
    }

    /// Writes the 32-bit port at `offset` (dropped outside the BAR).
    pub fn write32(&self, offset: u16, value: u32) {
        if let Some(p) = self.at(offset) {
            // SAFETY: as for `read32`; the drivers only write registers
            // that select or read device registers (IOADDR), never ones
            // that start DMA to memory they did not set aside.
            unsafe { cpu::outl(p, value) }
        }
    }
}
