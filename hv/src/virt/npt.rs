//! Nested page tables in the x86-64 long-mode format (AMD NPT): guest
//! physical to host physical, 2 MiB pages for RAM chunks and 4 KiB pages
//! where needed. Table frames are owned here and freed on drop.

use super::guest_mem::{GuestMemory, CHUNK};
use crate::mem;
use alloc::vec::Vec;

const PRESENT: u64 = 1;
const WRITABLE: u64 = 1 << 1;
/// Nested walks are user-mode accesses: every level needs U/S.
const USER: u64 = 1 << 2;
const HUGE: u64 = 1 << 7;
const ADDR: u64 = 0x000f_ffff_ffff_f000;

/// A domain's nested page tables.
#[derive(Debug)]
pub struct NestedTables {
    root: u64,
    frames: Vec<u64>,
}

fn entry(table: u64, index: u64) -> *mut u64 {
    (table + index * 8) as *mut u64
}

impl NestedTables {
    /// Empty tables; `None` when memory is short.
    pub fn new() -> Option<Self> {
        let root = mem::alloc_frames(1, 4096)?;
        Some(Self {
            root,
            frames: alloc::vec![root],
        })
    }

    /// The root table's address (the nested CR3).
    pub fn root(&self) -> u64 {
        self.root
    }

    /// The table below `table[index]`, created if missing.
    fn next(&mut self, table: u64, index: u64) -> Option<u64> {
        // SAFETY: `table` is one of our own zeroed table frames and index < 512.
        let e = unsafe { entry(table, index).read_volatile() };
        if e & PRESENT != 0 {
            return Some(e & ADDR);
        }
        let t = mem::alloc_frames(1, 4096)?;
        self.frames.push(t);
        // SAFETY: as above; the new entry points at a zeroed table frame.
        unsafe { entry(table, index).write_volatile(t | PRESENT | WRITABLE | USER) };
        Some(t)
    }

    /// Maps the 2 MiB page at `gpa` to `hpa`, read-write-execute.
    pub fn map_2m(&mut self, gpa: u64, hpa: u64) -> Option<()> {
        let pdpt = self.next(self.root, (gpa >> 39) & 511)?;
        let pd = self.next(pdpt, (gpa >> 30) & 511)?;
        // SAFETY: `pd` is our table frame; the leaf maps RAM the domain owns.
        unsafe {
            entry(pd, (gpa >> 21) & 511).write_volatile(hpa | PRESENT | WRITABLE | USER | HUGE)
        };
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

impl Drop for NestedTables {
    fn drop(&mut self) {
        for f in self.frames.drain(..) {
            crate::arch::phys::zero_owned(f, 4096);
            mem::free_frames(f, 1);
        }
    }
}
