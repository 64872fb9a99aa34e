//! Second-level page tables: guest physical to host physical, 2 MiB leaves
//! for the RAM chunks. One builder for both formats: AMD NPT uses the
//! ordinary long-mode entry layout (APM vol. 2, 15.25), Intel EPT its own
//! (SDM vol. 3, 29.3); they differ only in how an entry says "present",
//! "next table" and "2 MiB leaf". Table frames are owned here and scrubbed
//! and freed on drop.

use super::guest_mem::{GuestMemory, CHUNK};
use crate::mem;
use alloc::vec::Vec;

const ADDR: u64 = 0x000f_ffff_ffff_f000;
/// Bit 7 in a PDE, in both formats: a 2 MiB page.
const LARGE: u64 = 1 << 7;

/// The entry layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// AMD nested paging: present, writable and user (nested walks are
    /// user-mode accesses, so every level needs U/S).
    Npt,
    /// Intel EPT: read, write, execute; leaves write-back (type 6 in bits
    /// 5:3).
    Ept,
}

impl Format {
    fn present(self, e: u64) -> bool {
        match self {
            Format::Npt => e & 1 != 0,
            Format::Ept => e & 0b111 != 0,
        }
    }

    /// A non-leaf entry: P|RW|US for NPT and R|W|X for EPT happen to be the
    /// same three low bits.
    fn table(self, t: u64) -> u64 {
        t | 0b111
    }

    fn leaf_4k(self, hpa: u64) -> u64 {
        match self {
            Format::Npt => hpa | 0b111,
            Format::Ept => hpa | 0b111 | (6 << 3),
        }
    }

    /// A 4 KiB leaf for device memory: read-write, uncached (NPT: PCD and
    /// PWT, which select UC with the default PAT; EPT: memory type 0).
    /// A 4 KiB or (with [`LARGE`]) 2 MiB leaf the guest may read and
    /// execute but not write.
    fn leaf_ro(self, hpa: u64) -> u64 {
        match self {
            Format::Npt => hpa | 0b101,
            Format::Ept => hpa | 0b101 | (6 << 3),
        }
    }

    fn leaf_mmio(self, hpa: u64) -> u64 {
        match self {
            Format::Npt => hpa | 0b111 | (1 << 3) | (1 << 4),
            Format::Ept => hpa | 0b011,
        }
    }

    fn leaf_2m(self, hpa: u64) -> u64 {
        match self {
            Format::Npt => hpa | 0b111 | LARGE,
            Format::Ept => hpa | 0b111 | (6 << 3) | LARGE,
        }
    }
}

/// A domain's second-level page tables; the vCPU points at them, so they
/// live as long as the domain.
#[derive(Debug)]
pub struct GuestTables {
    format: Format,
    root: u64,
    frames: Vec<u64>,
}

fn entry(table: u64, index: u64) -> *mut u64 {
    (table + index * 8) as *mut u64
}

impl GuestTables {
    /// Tables in `format` mapping all of `ram`; `None` when memory is short.
    pub fn for_ram(format: Format, ram: &GuestMemory) -> Option<Self> {
        let root = mem::alloc_frames(1, 4096)?;
        let mut t = Self {
            format,
            root,
            frames: alloc::vec![root],
        };
        for c in ram.chunks() {
            debug_assert!(c.gpa.is_multiple_of(CHUNK) && c.hpa.is_multiple_of(CHUNK));
            t.map_2m(c.gpa, c.hpa)?;
        }
        Some(t)
    }

    /// The root table's address: the nested CR3 (NPT).
    pub fn root(&self) -> u64 {
        self.root
    }

    /// The EPT pointer for the VMCS: write-back paging structures (bits
    /// 2:0) and a 4-level walk (bits 5:3 = levels - 1).
    pub fn eptp(&self) -> u64 {
        self.root | 6 | (3 << 3)
    }

    /// The table below `table[index]`, created if missing.
    fn next(&mut self, table: u64, index: u64) -> Option<u64> {
        // SAFETY: `table` is one of our own zeroed table frames and index < 512.
        let e = unsafe { entry(table, index).read_volatile() };
        if self.format.present(e) {
            return Some(e & ADDR);
        }
        let t = mem::alloc_frames(1, 4096)?;
        self.frames.push(t);
        // SAFETY: as above; the new entry points at a zeroed table frame.
        unsafe { entry(table, index).write_volatile(self.format.table(t)) };
        Some(t)
    }

    /// Maps the 4 KiB page at `gpa`, where nothing is mapped yet (outside
    /// the domain's RAM), to `hpa`, read-write-execute. `None` when memory
    /// is short or a 2 MiB page already covers `gpa`.
    ///
    /// No TLB flush is needed: neither EPT (Intel SDM vol. 3, 29.4.1) nor
    /// NPT caches a translation that was not present.
    ///
    /// # Safety
    /// `hpa` must be a frame the domain owns (its RAM, or a page the
    /// hypervisor gave it) and stay its own until this mapping is removed
    /// or the tables dropped: the guest reads and writes it directly.
    pub unsafe fn map_4k(&mut self, gpa: u64, hpa: u64) -> Option<()> {
        // The leaf maps a frame the domain owns.
        self.map_leaf_4k(gpa, self.format.leaf_4k(hpa))
    }

    /// Maps the 4 KiB page at `gpa`, where nothing is mapped yet, to `hpa`
    /// read-only: hypervisor data a guest may read (a PV guest's M2P,
    /// descriptor tables). `None` when memory is short or a 2 MiB page
    /// covers `gpa`.
    ///
    /// # Safety
    /// `hpa` must be memory the hypervisor keeps for this domain, holding
    /// nothing another domain or the hypervisor's secrets need kept from
    /// it, until this mapping is removed or the tables dropped: the guest
    /// reads it directly.
    pub unsafe fn map_4k_ro(&mut self, gpa: u64, hpa: u64) -> Option<()> {
        // The leaf maps a frame the hypervisor owns for this domain,
        // without write access.
        self.map_leaf_4k(gpa, self.format.leaf_ro(hpa))
    }

    /// Writes the 4 KiB leaf `leaf` for `gpa`, making the tables above it;
    /// `None` when memory is short or a 2 MiB page covers `gpa`.
    fn map_leaf_4k(&mut self, gpa: u64, leaf: u64) -> Option<()> {
        let pdpt = self.next(self.root, (gpa >> 39) & 511)?;
        let pd = self.next(pdpt, (gpa >> 30) & 511)?;
        // SAFETY: `pd` is our table frame and the index < 512.
        let pde = unsafe { entry(pd, (gpa >> 21) & 511).read_volatile() };
        if self.format.present(pde) && pde & LARGE != 0 {
            return None;
        }
        let pt = self.next(pd, (gpa >> 21) & 511)?;
        // SAFETY: `pt` is our table frame; the callers' leaves map frames
        // the domain or the hypervisor owns for it.
        unsafe { entry(pt, (gpa >> 12) & 511).write_volatile(leaf) };
        Some(())
    }

    /// Maps the 2 MiB page at `gpa` (2 MiB aligned, nothing mapped there)
    /// to `hpa` read-only.
    ///
    /// # Safety
    /// `hpa` must be 2 MiB the hypervisor keeps for this domain, holding
    /// nothing another domain or the hypervisor's secrets need kept from
    /// it, until this mapping is removed or the tables dropped: the guest
    /// reads it directly.
    pub unsafe fn map_2m_ro(&mut self, gpa: u64, hpa: u64) -> Option<()> {
        let pdpt = self.next(self.root, (gpa >> 39) & 511)?;
        let pd = self.next(pdpt, (gpa >> 30) & 511)?;
        let leaf = self.format.leaf_ro(hpa) | LARGE;
        // SAFETY: `pd` is our table frame; the leaf maps memory the
        // hypervisor owns, without write access.
        unsafe { entry(pd, (gpa >> 21) & 511).write_volatile(leaf) };
        Some(())
    }

    /// Maps the 4 KiB page at `gpa` to device memory at `hpa` (uncached,
    /// not executable under EPT). `None` when memory is short or something
    /// is mapped there already.
    ///
    /// # Safety
    /// `hpa` must be a page of a memory BAR of a function assigned to this
    /// domain, one the backend lets the guest reach directly, until this
    /// mapping is removed: the guest's accesses go to that device memory.
    pub unsafe fn map_mmio_4k(&mut self, gpa: u64, hpa: u64) -> Option<()> {
        // The leaf maps device memory the caller checked belongs to this
        // domain's functions.
        self.map_if_free(gpa, self.format.leaf_mmio(hpa))
    }

    /// Maps the 4 KiB page at `gpa` to the domain's frame `hpa`,
    /// read-write-execute (a page it populated). `None` when memory is
    /// short or something is mapped there already.
    ///
    /// # Safety
    /// `hpa` must be a frame the domain owns (its RAM, or a page the
    /// hypervisor gave it) and stay its own until this mapping is removed
    /// or the tables dropped: the guest reads and writes it directly.
    pub unsafe fn map_ram_4k(&mut self, gpa: u64, hpa: u64) -> Option<()> {
        self.map_if_free(gpa, self.format.leaf_4k(hpa))
    }

    /// Removes the RAM page at `gpa` (a page the domain gives back),
    /// splitting the 2 MiB page that covers it into 4 KiB ones first;
    /// `None`, with nothing changed, when no frame for that table is left.
    /// The caller flushes the guest's TLB before it runs again.
    pub fn unmap_ram_4k(&mut self, gpa: u64) -> Option<()> {
        let pdpt = self.next(self.root, (gpa >> 39) & 511)?;
        let pd = self.next(pdpt, (gpa >> 30) & 511)?;
        let slot = entry(pd, (gpa >> 21) & 511);
        // SAFETY: `pd` is our table frame and the index < 512.
        let pde = unsafe { slot.read_volatile() };
        if self.format.present(pde) && pde & LARGE != 0 {
            let t = mem::alloc_frames(1, 4096)?;
            self.frames.push(t);
            let base = pde & ADDR & !(CHUNK - 1);
            for i in 0..512 {
                // SAFETY: `t` is our new table frame and i < 512; its
                // leaves map the same RAM the 2 MiB leaf mapped.
                unsafe { entry(t, i).write_volatile(self.format.leaf_4k(base + i * 4096)) };
            }
            // SAFETY: as above; the table maps what the leaf mapped.
            unsafe { slot.write_volatile(self.format.table(t)) };
        }
        self.unmap_4k(gpa);
        Some(())
    }

    /// Writes the 4 KiB leaf `leaf` for `gpa` where nothing is mapped.
    fn map_if_free(&mut self, gpa: u64, leaf: u64) -> Option<()> {
        let pdpt = self.next(self.root, (gpa >> 39) & 511)?;
        let pd = self.next(pdpt, (gpa >> 30) & 511)?;
        // SAFETY: `pd` is our table frame and the index < 512.
        let pde = unsafe { entry(pd, (gpa >> 21) & 511).read_volatile() };
        if self.format.present(pde) && pde & LARGE != 0 {
            return None;
        }
        let pt = self.next(pd, (gpa >> 21) & 511)?;
        // SAFETY: `pt` is our table frame and the index < 512.
        let old = unsafe { entry(pt, (gpa >> 12) & 511).read_volatile() };
        if self.format.present(old) {
            return None;
        }
        // SAFETY: as above; the callers' leaves map frames the domain owns
        // or device memory of its functions.
        unsafe { entry(pt, (gpa >> 12) & 511).write_volatile(leaf) };
        Some(())
    }

    /// Removes the 4 KiB mapping at `gpa` (made by [`Self::map_mmio_4k`]
    /// or [`Self::map_ram_4k`], or split by [`Self::unmap_ram_4k`]);
    /// returns whether there was one. The caller flushes the guest's TLB
    /// before it runs again.
    pub fn unmap_4k(&mut self, gpa: u64) -> bool {
        let mut t = self.root;
        for shift in [39u64, 30, 21] {
            // SAFETY: `t` is one of our table frames and the index < 512.
            let e = unsafe { entry(t, (gpa >> shift) & 511).read_volatile() };
            if !self.format.present(e) || (shift != 39 && e & LARGE != 0) {
                return false;
            }
            t = e & ADDR;
        }
        // SAFETY: `t` is our page table frame and the index < 512.
        let e = unsafe { entry(t, (gpa >> 12) & 511).read_volatile() };
        if !self.format.present(e) {
            return false;
        }
        // SAFETY: as above; clearing a leaf only removes a translation.
        unsafe { entry(t, (gpa >> 12) & 511).write_volatile(0) };
        true
    }

    /// Maps the 2 MiB page at `gpa` to `hpa`, read-write-execute.
    fn map_2m(&mut self, gpa: u64, hpa: u64) -> Option<()> {
        let pdpt = self.next(self.root, (gpa >> 39) & 511)?;
        let pd = self.next(pdpt, (gpa >> 30) & 511)?;
        let leaf = self.format.leaf_2m(hpa);
        // SAFETY: `pd` is our table frame; the leaf maps RAM the domain owns.
        unsafe { entry(pd, (gpa >> 21) & 511).write_volatile(leaf) };
        Some(())
    }
}

impl Drop for GuestTables {
    fn drop(&mut self) {
        for f in self.frames.drain(..) {
            // SAFETY: a table frame these tables took from the frame
            // allocator and owned until now; no vCPU runs on them any more.
            unsafe { crate::arch::phys::zero_owned(f, 4096) };
            mem::free_frames(f, 1);
        }
    }
}
