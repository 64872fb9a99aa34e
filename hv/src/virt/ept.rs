//! Intel EPT tables: guest physical to host physical, 2 MiB write-back
//! leaves for the RAM chunks (SDM vol. 3, 29.3). Table frames are owned here
//! and freed on drop.

use super::guest_mem::{GuestMemory, CHUNK};
use crate::mem;
use alloc::vec::Vec;

/// Read, write and execute (bits 0-2); a non-leaf entry with none of them
/// is not present.
const RWX: u64 = 0b111;
/// Memory type write-back (bits 5:3 of a leaf).
const MEMTYPE_WB: u64 = 6 << 3;
/// Bit 7 of a PDE: a 2 MiB page.
const LARGE: u64 = 1 << 7;
const ADDR: u64 = 0x000f_ffff_ffff_f000;
/// EPTP: write-back paging structures (bits 2:0) and a 4-level walk
/// (bits 5:3 = levels - 1).
const EPTP_WB_4LEVEL: u64 = 6 | (3 << 3);

/// A domain's EPT tables.
#[derive(Debug)]
pub struct EptTables {
    root: u64,
    frames: Vec<u64>,
}

fn entry(table: u64, index: u64) -> *mut u64 {
    (table + index * 8) as *mut u64
}

impl EptTables {
    /// Empty tables; `None` when memory is short.
    pub fn new() -> Option<Self> {
        let root = mem::alloc_frames(1, 4096)?;
        Some(Self {
            root,
            frames: alloc::vec![root],
        })
    }

    /// The EPT pointer for the VMCS.
    pub fn eptp(&self) -> u64 {
        self.root | EPTP_WB_4LEVEL
    }

    /// The table below `table[index]`, created if missing.
    fn next(&mut self, table: u64, index: u64) -> Option<u64> {
        // SAFETY: `table` is one of our own zeroed table frames and index < 512.
        let e = unsafe { entry(table, index).read_volatile() };
        if e & RWX != 0 {
            return Some(e & ADDR);
        }
        let t = mem::alloc_frames(1, 4096)?;
        self.frames.push(t);
        // SAFETY: as above; the new entry points at a zeroed table frame.
        unsafe { entry(table, index).write_volatile(t | RWX) };
        Some(t)
    }

    /// Maps the 2 MiB page at `gpa` to `hpa`, read-write-execute, write-back.
    pub fn map_2m(&mut self, gpa: u64, hpa: u64) -> Option<()> {
        let pdpt = self.next(self.root, (gpa >> 39) & 511)?;
        let pd = self.next(pdpt, (gpa >> 30) & 511)?;
        // SAFETY: `pd` is our table frame; the leaf maps RAM the domain owns.
        unsafe { entry(pd, (gpa >> 21) & 511).write_volatile(hpa | RWX | MEMTYPE_WB | LARGE) };
        Some(())
    }

    /// Maps all of `ram`.
    pub fn map_ram(&mut self, ram: &GuestMemory) -> Option<()> {
        for c in ram.chunks() {
            debug_assert!(c.gpa.is_multiple_of(CHUNK) && c.hpa.is_multiple_of(CHUNK));
            self.map_2m(c.gpa, c.hpa)?;
        }
        Some(())
    }
}

impl Drop for EptTables {
    fn drop(&mut self) {
        for f in self.frames.drain(..) {
            crate::arch::phys::zero_owned(f, 4096);
            mem::free_frames(f, 1);
        }
    }
}
