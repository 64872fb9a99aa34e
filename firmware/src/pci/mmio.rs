//! Device memory: a memory BAR, identity mapped, read and written with
//! volatile accesses of the size the device expects.

use super::Bar;
use crate::boot::image_range;
use crate::xen::page::identity_map;

/// A memory BAR the guest may access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mmio {
    base: u64,
    len: u64,
}

/// Why a BAR cannot be accessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MmioError {
    /// It is an I/O BAR.
    NotMemory,
    /// It was never assigned an address (0).
    Unassigned,
    /// It overlaps this image, lies beyond 48 bits, or the guest ran out
    /// of page tables to map it.
    Unmappable,
}

impl Mmio {
    /// The BAR's range, identity mapped (2 MiB pages, wherever the
    /// firmware placed it: UEFI puts 64-bit BARs far above 4 GiB). The
    /// range must lie outside this image.
    pub fn map(bar: &Bar) -> Result<Mmio, MmioError> {
        if !bar.is_mem() {
            return Err(MmioError::NotMemory);
        }
        if bar.addr == 0 {
            return Err(MmioError::Unassigned);
        }
        let end = bar
            .addr
            .checked_add(bar.size)
            .ok_or(MmioError::Unmappable)?;
        let (start, image_end) = image_range();
        let overlaps = bar.addr < image_end.raw() && start.raw() < end;
        if overlaps || bar.size == 0 {
            return Err(MmioError::Unmappable);
        }
        let mut at = bar.addr & !((1 << 30) - 1);
        while at < end {
            if !identity_map(at) {
                return Err(MmioError::Unmappable);
            }
            at += 1 << 30;
        }
        Ok(Mmio {
            base: bar.addr,
            len: bar.size,
        })
    }

    /// The first address.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// The address of `offset` for an access of `size` bytes, if it stays
    /// inside the BAR and is aligned.
    fn at(&self, offset: u64, size: u64) -> Option<u64> {
        (offset.is_multiple_of(size) && offset.checked_add(size)? <= self.len)
            .then(|| self.base + offset)
    }

    /// Reads the 32-bit register at `offset` (all ones outside the BAR).
    pub fn read32(&self, offset: u64) -> u32 {
        match self.at(offset, 4) {
            // SAFETY: `map` checked that the BAR is device memory outside
            // this image and identity mapped; `at` keeps the access inside
            // it and aligned.
            Some(a) => unsafe { (a as *const u32).read_volatile() },
            None => u32::MAX,
        }
    }

    /// Writes the 32-bit register at `offset` (dropped outside the BAR).
    pub fn write32(&self, offset: u64, value: u32) {
        if let Some(a) = self.at(offset, 4) {
            // SAFETY: as for `read32`. What the device does with the write
            // (DMA) is the driver's business: it only hands out addresses
            // of buffers set aside for it.
            unsafe { (a as *mut u32).write_volatile(value) }
        }
    }

    /// Reads the 64-bit register at `offset` with one access.
    pub fn read64(&self, offset: u64) -> u64 {
        match self.at(offset, 8) {
            // SAFETY: as for `read32`.
            Some(a) => unsafe { (a as *const u64).read_volatile() },
            None => u64::MAX,
        }
    }

    /// Writes the 64-bit register at `offset` with one access.
    pub fn write64(&self, offset: u64, value: u64) {
        if let Some(a) = self.at(offset, 8) {
            // SAFETY: as for `write32`.
            unsafe { (a as *mut u64).write_volatile(value) }
        }
    }

    /// One access of `size` bytes (1, 2, 4 or 8) at `offset`, aligned or
    /// not, as a single instruction: what an attack on a trapped page does.
    /// All ones if it would leave the BAR.
    pub fn read_raw(&self, offset: u64, size: u8) -> u64 {
        let Some(a) = self.raw_at(offset, size) else {
            return u64::MAX;
        };
        let v: u64;
        // SAFETY: as for `read32`, except the alignment: an unaligned
        // access to device memory is an ordinary x86 access (the
        // hypervisor decides what it does), and Rust never sees a
        // reference to it.
        unsafe {
            match size {
                1 => {
                    core::arch::asm!("movzx {0:e}, byte ptr [{1}]", out(reg) v, in(reg) a, options(nostack, preserves_flags))
                }
                2 => {
                    core::arch::asm!("movzx {0:e}, word ptr [{1}]", out(reg) v, in(reg) a, options(nostack, preserves_flags))
                }
                4 => {
                    core::arch::asm!("mov {0:e}, dword ptr [{1}]", out(reg) v, in(reg) a, options(nostack, preserves_flags))
                }
                _ => {
                    core::arch::asm!("mov {0}, qword ptr [{1}]", out(reg) v, in(reg) a, options(nostack, preserves_flags))
                }
            }
        }
        v
    }

    /// The write of [`read_raw`](Self::read_raw): dropped if it would
    /// leave the BAR.
    pub fn write_raw(&self, offset: u64, size: u8, value: u64) {
        let Some(a) = self.raw_at(offset, size) else {
            return;
        };
        // SAFETY: as for `read_raw` and `write32`.
        unsafe {
            match size {
                1 => {
                    core::arch::asm!("mov byte ptr [{1}], {0:l}", in(reg) value, in(reg) a, options(nostack, preserves_flags))
                }
                2 => {
                    core::arch::asm!("mov word ptr [{1}], {0:x}", in(reg) value, in(reg) a, options(nostack, preserves_flags))
                }
                4 => {
                    core::arch::asm!("mov dword ptr [{1}], {0:e}", in(reg) value, in(reg) a, options(nostack, preserves_flags))
                }
                _ => {
                    core::arch::asm!("mov qword ptr [{1}], {0}", in(reg) value, in(reg) a, options(nostack, preserves_flags))
                }
            }
        }
    }

    /// The address of `size` bytes at `offset` (1, 2, 4 or 8; any
    /// alignment) if they lie inside the BAR.
    fn raw_at(&self, offset: u64, size: u8) -> Option<u64> {
        (matches!(size, 1 | 2 | 4 | 8) && offset.checked_add(u64::from(size))? <= self.len)
            .then(|| self.base + offset)
    }
}
