//! The MSI-X table and PBA pages, which are never mapped into the guest:
//! its accesses there trap and are served here.
//!
//! - table: 4- or 8-byte naturally aligned accesses only (others are
//!   ignored, reads all ones); reads give the guest's own view; address and
//!   data writes stay virtual (the host owns the real ones); a mask bit
//!   write reaches the hardware entry only if the entry is enabled through
//!   `enable_msix`;
//! - PBA: reads pass to the hardware, writes are ignored;
//! - anything else in those pages passes to the hardware (naturally aligned
//!   1, 2, 4 or 8 bytes).

use vmm_glue::PassthroughHost;

use super::VirtDevice;
use crate::regs::msix;

/// What a trapped address is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Region {
    /// Byte `offset` of the table.
    Table(u64),
    /// The PBA, at host address `hpa`.
    Pba(u64),
    /// Another register in a trapped page, at host address `hpa`.
    Other(u64),
}

impl VirtDevice {
    /// Classifies guest-physical `gpa`, if it is in a trapped page.
    fn region(&self, gpa: u64) -> Option<Region> {
        let m = self.layout.msix?;
        for bar in [m.table_bar, m.pba_bar] {
            let g = &self.bars[bar];
            if !g.mapped {
                continue;
            }
            let Some(off) = gpa.checked_sub(g.addr) else {
                continue;
            };
            if off >= self.info.bars[bar].size {
                continue;
            }
            let in_hole = self.holes(bar).iter().any(|&(s, e)| (s..e).contains(&off));
            if !in_hole {
                continue;
            }
            let hpa = self.info.bars[bar].base + off;
            if bar == m.table_bar && (m.table_offset..m.table_offset + m.table_len()).contains(&off)
            {
                return Some(Region::Table(off - m.table_offset));
            }
            if bar == m.pba_bar && (m.pba_offset..m.pba_offset + m.pba_len()).contains(&off) {
                return Some(Region::Pba(hpa));
            }
            return Some(Region::Other(hpa));
        }
        None
    }

    pub(super) fn trapped(&self, gpa: u64) -> bool {
        self.region(gpa).is_some()
    }

    pub(super) fn table_read(
        &mut self,
        host: &mut dyn PassthroughHost,
        gpa: u64,
        size: u8,
    ) -> Option<u64> {
        let region = self.region(gpa)?;
        let aligned = matches!(size, 1 | 2 | 4 | 8) && gpa.is_multiple_of(u64::from(size));
        Some(match region {
            Region::Table(off) if matches!(size, 4 | 8) && aligned => {
                let lo = u64::from(self.entry_dword(off));
                if size == 8 {
                    lo | u64::from(self.entry_dword(off + 4)) << 32
                } else {
                    lo
                }
            }
            Region::Pba(hpa) | Region::Other(hpa) if aligned => host.mmio_read(hpa, size),
            _ => all_ones(size),
        })
    }

    pub(super) fn table_write(
        &mut self,
        host: &mut dyn PassthroughHost,
        gpa: u64,
        size: u8,
        value: u64,
    ) -> bool {
        let Some(region) = self.region(gpa) else {
            return false;
        };
        let aligned = matches!(size, 1 | 2 | 4 | 8) && gpa.is_multiple_of(u64::from(size));
        match region {
            Region::Table(off) if matches!(size, 4 | 8) && aligned => {
                self.entry_write(host, off, value as u32);
                if size == 8 {
                    self.entry_write(host, off + 4, (value >> 32) as u32);
                }
            }
            Region::Other(hpa) if aligned => host.mmio_write(hpa, size, value),
            // PBA writes, odd sizes and unaligned accesses are ignored.
            _ => {}
        }
        true
    }

    /// The dword at byte `off` of the guest's table.
    fn entry_dword(&self, off: u64) -> u32 {
        let n = (off / msix::ENTRY_SIZE) as usize;
        let Some(e) = self.msix.entries.get(n) else {
            return u32::MAX;
        };
        match off % msix::ENTRY_SIZE {
            0 => e.addr_lo,
            4 => e.addr_hi,
            8 => e.data,
            _ => u32::from(e.masked),
        }
    }

    /// A guest write of the dword at byte `off` of the table.
    fn entry_write(&mut self, host: &mut dyn PassthroughHost, off: u64, value: u32) {
        let n = (off / msix::ENTRY_SIZE) as usize;
        let Some(e) = self.msix.entries.get_mut(n) else {
            return;
        };
        match off % msix::ENTRY_SIZE {
            0 => e.addr_lo = value,
            4 => e.addr_hi = value,
            8 => e.data = value,
            _ => {
                let masked = value & msix::ENTRY_MASKED != 0;
                e.masked = masked;
                let enabled = self.msix.enabled
                    && self
                        .msix
                        .routes
                        .iter()
                        .any(|&(entry, _)| usize::from(entry) == n);
                if let (true, Some(m)) = (enabled, self.layout.msix) {
                    let hpa = self.info.bars[m.table_bar].base
                        + m.table_offset
                        + n as u64 * msix::ENTRY_SIZE
                        + msix::VECTOR_CONTROL;
                    host.mmio_write(hpa, 4, u64::from(masked));
                }
            }
        }
    }
}

fn all_ones(size: u8) -> u64 {
    match size {
        8.. => u64::MAX,
        n => (1u64 << (u32::from(n) * 8)) - 1,
    }
}
