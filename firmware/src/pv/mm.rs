//! Memory as a PV guest sees it: pseudo-physical frames (pfns) translated
//! to machine frames (mfns) by the builder's p2m list, the builder's page
//! tables (pfn N mapped at `VIRT_BASE + N * 4096`, the tables themselves
//! read-only), and a pool of page-aligned pages in this image for the
//! guest to turn into page tables, descriptor tables or user pages.
//!
//! Page tables are only ever changed through the hypervisor
//! (`mmu_update`, `update_va_mapping`, or a store the writable
//! page-table assist validates); this module reads them.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::abi::{pte, va::VIRT_BASE, StartInfo};

/// Size of a page.
pub const PAGE_SIZE: u64 = 4096;

static PT_BASE: AtomicU64 = AtomicU64::new(0);
static MFN_LIST: AtomicU64 = AtomicU64::new(0);
static NR_PAGES: AtomicU64 = AtomicU64::new(0);

/// Remembers where the boot L4 and the p2m list are. Called once at start.
pub(crate) fn init(si: &StartInfo) {
    PT_BASE.store(si.pt_base, Ordering::Relaxed);
    MFN_LIST.store(si.mfn_list, Ordering::Relaxed);
    NR_PAGES.store(si.nr_pages, Ordering::Relaxed);
}

/// Reads the u64 at virtual address `va`.
///
/// # Safety
/// `va` must be mapped and readable.
unsafe fn read(va: u64) -> u64 {
    // SAFETY: the caller vouches for the mapping; volatile because page
    // tables and the p2m list are written by the hypervisor.
    unsafe { core::ptr::read_volatile(va as *const u64) }
}

/// `mfn_list[pfn]`, or `None` past the domain's pages.
pub fn mfn_of_pfn(pfn: u64) -> Option<u64> {
    let list = MFN_LIST.load(Ordering::Relaxed);
    if list == 0 || pfn >= NR_PAGES.load(Ordering::Relaxed) {
        return None;
    }
    // SAFETY: the builder maps the p2m list, nr_pages entries, at
    // `mfn_list` (start_info); `pfn` is below nr_pages.
    Some(unsafe { read(list + pfn * 8) })
}

/// The pfn whose p2m entry is `mfn` (a search of the list).
pub fn pfn_of_mfn(mfn: u64) -> Option<u64> {
    let n = NR_PAGES.load(Ordering::Relaxed);
    // Most domains here have an identity p2m: try that first.
    if mfn < n && mfn_of_pfn(mfn) == Some(mfn) {
        return Some(mfn);
    }
    (0..n).find(|&pfn| mfn_of_pfn(pfn) == Some(mfn))
}

/// The virtual address of `pfn` in the builder's mapping.
pub fn va_of_pfn(pfn: u64) -> u64 {
    VIRT_BASE + pfn * PAGE_SIZE
}

/// The pfn of a virtual address in the builder's mapping (this image).
pub fn pfn_of_va(va: u64) -> u64 {
    (va - VIRT_BASE) / PAGE_SIZE
}

/// The machine frame behind `va` in the builder's mapping (this image),
/// by the p2m list.
pub fn mfn_of_va(va: u64) -> Option<u64> {
    mfn_of_pfn(pfn_of_va(va))
}

/// The virtual address of the boot L4 (`start_info.pt_base`).
pub fn pt_base() -> u64 {
    PT_BASE.load(Ordering::Relaxed)
}

/// Index of `va` in the table of `level` (4 = L4 ... 1 = L1).
pub fn index(va: u64, level: u32) -> usize {
    ((va >> (12 + 9 * (level - 1))) & 511) as usize
}

/// One step of a walk: the table and the entry in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// 4 for the L4 ... 1 for the L1.
    pub level: u32,
    /// The table's machine frame.
    pub table_mfn: u64,
    /// The table's virtual address in the builder's mapping.
    pub table_va: u64,
    /// The entry's index.
    pub index: usize,
    /// The entry.
    pub entry: u64,
}

impl Step {
    /// The machine address of the entry, as `mmu_update` wants it.
    pub fn entry_maddr(&self) -> u64 {
        self.table_mfn * PAGE_SIZE + self.index as u64 * 8
    }
}

/// Entry `index` of the table at virtual address `table_va`.
///
/// # Safety
/// `table_va` must be a mapped page (a page table or a pool page).
pub unsafe fn entry_at(table_va: u64, index: usize) -> u64 {
    // SAFETY: the caller vouches for the page; `index` is masked into it.
    unsafe { read(table_va + (index as u64 & 511) * 8) }
}

/// Walks the boot page tables for `va` down to `stop` (1 = the L1
/// entry). Returns the steps taken, L4 first; the walk ends early at a
/// non-present entry or at a table the builder's mapping does not reach.
pub fn walk(va: u64, stop: u32) -> ([Option<Step>; 4], usize) {
    let mut steps = [None; 4];
    let mut n = 0;
    let mut table_va = pt_base();
    let Some(mut table_mfn) = mfn_of_va(table_va) else {
        return (steps, 0);
    };
    for level in (stop..=4).rev() {
        let i = index(va, level);
        // SAFETY: `table_va` is the builder's L4 or a table reached from
        // it, mapped (read-only) at `VIRT_BASE + pfn * 4096` like every
        // page of the boot region.
        let entry = unsafe { entry_at(table_va, i) };
        steps[n] = Some(Step {
            level,
            table_mfn,
            table_va,
            index: i,
            entry,
        });
        n += 1;
        if entry & pte::P == 0 || level == stop {
            break;
        }
        let next_mfn = (entry & pte::ADDR) / PAGE_SIZE;
        let Some(pfn) = pfn_of_mfn(next_mfn) else {
            break;
        };
        table_mfn = next_mfn;
        table_va = va_of_pfn(pfn);
    }
    (steps, n)
}

/// The step at `level` of the walk for `va`, if the walk got there.
pub fn step(va: u64, level: u32) -> Option<Step> {
    let (steps, n) = walk(va, level);
    steps[..n]
        .iter()
        .flatten()
        .find(|s| s.level == level)
        .copied()
}

/// A page-table entry mapping machine frame `mfn` with `flags`.
pub fn entry(mfn: u64, flags: u64) -> u64 {
    ((mfn * PAGE_SIZE) & pte::ADDR) | flags
}

/// A 4 KiB page of this image for the guest to use as it likes.
#[repr(C, align(4096))]
struct PoolPage(UnsafeCell<[u8; PAGE_SIZE as usize]>);

/// Pages in the pool.
pub const POOL_PAGES: usize = 32;

struct Pool([PoolPage; POOL_PAGES]);

// SAFETY: pages are handed out once each (`NEXT` only grows), and then
// reached only through their addresses.
unsafe impl Sync for Pool {}

static POOL: Pool =
    Pool([const { PoolPage(UnsafeCell::new([0; PAGE_SIZE as usize])) }; POOL_PAGES]);
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A page of the pool: its virtual address in the builder's mapping and
/// its machine frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Where the builder's tables map it (read-write until the guest
    /// changes that).
    pub va: u64,
    /// Its machine frame.
    pub mfn: u64,
}

impl Frame {
    /// The machine address of byte `offset`.
    pub fn maddr(&self, offset: u64) -> u64 {
        self.mfn * PAGE_SIZE + offset
    }

    /// The u64 at `offset` (8-aligned, inside the page), read through
    /// [`Frame::va`].
    pub fn read(&self, offset: u64) -> u64 {
        assert!(
            offset.is_multiple_of(8) && offset < PAGE_SIZE,
            "offset {offset:#x}"
        );
        // SAFETY: the pool page is mapped (read-only at worst) at `va`.
        unsafe { read(self.va + offset) }
    }

    /// Writes the u64 at `offset`. The page must be mapped writable at
    /// [`Frame::va`] (a fault otherwise, unless it is a pinned L1 and the
    /// writable page-table assist is on, which validates the store).
    pub fn write(&self, offset: u64, value: u64) {
        assert!(
            offset.is_multiple_of(8) && offset < PAGE_SIZE,
            "offset {offset:#x}"
        );
        // SAFETY: a store into a pool page, which no Rust reference
        // covers; one aligned 8-byte `mov`, as the assist requires.
        unsafe { core::ptr::write_volatile((self.va + offset) as *mut u64, value) };
    }

    /// Fills the page (mapped writable) with `value` in every u64.
    pub fn fill(&self, value: u64) {
        for off in (0..PAGE_SIZE).step_by(8) {
            self.write(off, value);
        }
    }

    /// Copies `bytes` to the start of the page (mapped writable).
    pub fn copy_from(&self, bytes: &[u8]) {
        assert!(bytes.len() <= PAGE_SIZE as usize);
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: inside the pool page, which no Rust reference covers.
            unsafe { core::ptr::write_volatile((self.va + i as u64) as *mut u8, *b) };
        }
    }

    /// This page's entry in the builder's L1, as `update_va_mapping` sees
    /// it (the hypervisor may have added bits of its own).
    pub fn pte(&self) -> Option<u64> {
        step(self.va, 1).map(|s| s.entry)
    }
}

/// Whether `va` is a page of the pool.
fn in_pool(va: u64) -> bool {
    let start = core::ptr::addr_of!(POOL) as u64;
    (start..start + POOL_PAGES as u64 * PAGE_SIZE).contains(&va)
}

/// Whether a store at `va` can only reach a pool page: `va` is unmapped in
/// the current tables, or maps (at any alias) a frame of the pool.
pub fn probe_writable(va: u64) -> bool {
    let (steps, n) = walk(va, 1);
    let Some(last) = steps[..n].iter().flatten().last() else {
        return true;
    };
    if last.entry & pte::P == 0 {
        return true;
    }
    if last.level != 1 {
        return false;
    }
    pfn_of_mfn((last.entry & pte::ADDR) / PAGE_SIZE).is_some_and(|pfn| in_pool(va_of_pfn(pfn)))
}

/// Takes a fresh page from the pool, zeroed; `None` once it is empty.
pub fn take() -> Option<Frame> {
    let i = NEXT.fetch_add(1, Ordering::Relaxed);
    let page = POOL.0.get(i)?;
    let va = page.0.get() as u64;
    let frame = Frame {
        va,
        mfn: mfn_of_va(va)?,
    };
    frame.fill(0);
    Some(frame)
}
