//! Pages shared with the hypervisor: page-aligned buffers in this image
//! that the guest hands over (shared_info, grant frames), and pages the
//! hypervisor names by frame number (console and xenstore rings), which
//! may lie above the boot code's 1 GiB identity map (Xen puts an HVM
//! guest's special pages just below 4 GiB): [`Page::at`] extends the
//! identity map with 2 MiB pages up to 4 GiB as needed.
//!
//! All access is through atomics or volatile copies: the other side writes
//! these pages while the guest reads them.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};

use crate::boot::IDENTITY_MAPPED;

/// Size of a page.
pub const PAGE_SIZE: usize = 4096;

/// A page-aligned page of this image, for the hypervisor to share.
#[repr(C, align(4096))]
#[allow(missing_debug_implementations)]
pub struct PageBuf(UnsafeCell<[u8; PAGE_SIZE]>);

// SAFETY: the contents are only reached through `Page`, whose accessors are
// atomic or volatile.
unsafe impl Sync for PageBuf {}

impl PageBuf {
    /// A zeroed page (in `.bss`).
    pub const fn new() -> PageBuf {
        PageBuf(UnsafeCell::new([0; PAGE_SIZE]))
    }

    /// The page, for shared access.
    pub fn page(&self) -> Page {
        Page(self.0.get() as u64)
    }
}

impl Default for PageBuf {
    fn default() -> Self {
        PageBuf::new()
    }
}

/// A guest page that the hypervisor reads or writes too, by its (identity
/// mapped) address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page(u64);

impl Page {
    /// The page at guest frame `gfn`, mapping it first if it is above the
    /// boot identity map; `None` past 4 GiB or if the map cannot grow.
    pub fn at(gfn: u64) -> Option<Page> {
        let addr = gfn.checked_mul(PAGE_SIZE as u64)?;
        identity_map(addr).then_some(Page(addr))
    }

    /// The guest-physical (and virtual) address.
    pub fn addr(self) -> u64 {
        self.0
    }

    /// The guest frame number.
    pub fn gfn(self) -> u64 {
        self.0 / PAGE_SIZE as u64
    }

    fn ptr(self, offset: usize, size: usize) -> *mut u8 {
        assert!(
            offset.is_multiple_of(size) && offset + size <= PAGE_SIZE,
            "page offset {offset}"
        );
        (self.0 + offset as u64) as *mut u8
    }

    /// The byte at `offset`.
    pub fn u8(self, offset: usize) -> &'static AtomicU8 {
        // SAFETY: `ptr` keeps the access inside the page, which is mapped
        // and lives as long as the program; other writers use atomics too.
        unsafe { AtomicU8::from_ptr(self.ptr(offset, 1)) }
    }

    /// The 16-bit word at `offset` (aligned).
    pub fn u16(self, offset: usize) -> &'static AtomicU16 {
        // SAFETY: as for `u8`; `ptr` checks the alignment.
        unsafe { AtomicU16::from_ptr(self.ptr(offset, 2).cast()) }
    }

    /// The 32-bit word at `offset` (aligned).
    pub fn u32(self, offset: usize) -> &'static AtomicU32 {
        // SAFETY: as for `u8`; `ptr` checks the alignment.
        unsafe { AtomicU32::from_ptr(self.ptr(offset, 4).cast()) }
    }

    /// The 64-bit word at `offset` (aligned).
    pub fn u64(self, offset: usize) -> &'static AtomicU64 {
        // SAFETY: as for `u8`; `ptr` checks the alignment.
        unsafe { AtomicU64::from_ptr(self.ptr(offset, 8).cast()) }
    }

    /// The run of `len` bytes at `offset` (checked once for the page).
    fn run(self, offset: usize, len: usize) -> &'static [AtomicU8] {
        assert!(
            offset <= PAGE_SIZE && len <= PAGE_SIZE - offset,
            "page offset {offset} length {len}"
        );
        // SAFETY: the run lies inside the page, which is mapped and lives as
        // long as the program; every access to it is atomic.
        unsafe { core::slice::from_raw_parts((self.0 + offset as u64) as *const AtomicU8, len) }
    }

    /// Copies bytes out of the page from `offset`.
    pub fn read(self, offset: usize, out: &mut [u8]) {
        let run = self.run(offset, out.len());
        for (b, a) in out.iter_mut().zip(run) {
            *b = a.load(Ordering::Relaxed);
        }
    }

    /// Copies bytes into the page at `offset`.
    pub fn write(self, offset: usize, bytes: &[u8]) {
        for (&b, a) in bytes.iter().zip(self.run(offset, bytes.len())) {
            a.store(b, Ordering::Relaxed);
        }
    }

    /// Fills the page with `byte`.
    pub fn fill(self, byte: u8) {
        for i in (0..PAGE_SIZE).step_by(8) {
            self.u64(i)
                .store(u64::from_ne_bytes([byte; 8]), Ordering::Relaxed);
        }
    }
}

/// Tables for what [`identity_map`] adds: page directories (each maps
/// 1 GiB in 2 MiB pages) and page directory pointer tables (each covers
/// 512 GiB), handed out in order and never freed.
#[repr(C, align(4096))]
struct Tables(UnsafeCell<TablePool>);

/// The pool behind [`Tables`].
#[repr(C)]
struct TablePool {
    dirs: [[u64; 512]; DIRS],
    pdpts: [[u64; 512]; PDPTS],
    dirs_used: usize,
    pdpts_used: usize,
}

/// Directories: 3 for 1..4 GiB and 5 for device memory above 4 GiB.
const DIRS: usize = 8;
/// PDPTs: for device memory beyond the first 512 GiB.
const PDPTS: usize = 2;

// SAFETY: written only by `identity_map`, on the one vCPU.
unsafe impl Sync for Tables {}

static TABLES: Tables = Tables(UnsafeCell::new(TablePool {
    dirs: [[0; 512]; DIRS],
    pdpts: [[0; 512]; PDPTS],
    dirs_used: 0,
    pdpts_used: 0,
}));

/// Present, writable, 2 MiB page.
const PDE_LARGE: u64 = 0x83;
/// Present, writable.
const TABLE: u64 = 0x3;
/// Address bits of a table entry.
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Makes sure `addr` is identity mapped: below 1 GiB it is; elsewhere
/// (up to the 48-bit limit of 4-level paging) the GiB holding it gets a
/// page directory of 2 MiB pages, and its 512 GiB a PDPT if the boot
/// tables have none there (all reached through CR3, whose tables are
/// identity mapped below 1 GiB). `false` when the pool of tables is used
/// up or `addr` is beyond 48 bits.
pub fn identity_map(addr: u64) -> bool {
    if addr < IDENTITY_MAPPED {
        return true;
    }
    if addr >> 48 != 0 {
        return false;
    }
    let (l4, gib) = ((addr >> 39) as usize, ((addr >> 30) & 511) as usize);
    let cr3: u64;
    // SAFETY: reading CR3 has no side effects.
    unsafe { core::arch::asm!("mov {}, cr3", out(reg) cr3, options(nomem, nostack)) };
    let pml4 = (cr3 & ADDR_MASK) as *mut u64;
    // SAFETY: the boot code's PML4 and PDPT and the pool's tables live in
    // this image below 1 GiB, identity mapped; one vCPU, so nothing else
    // walks or edits them now. A new entry is written only after the table
    // it points to is complete, then CR3 is reloaded to drop stale
    // translations.
    unsafe {
        let pool = &mut *TABLES.0.get();
        let mut pml4e = pml4.add(l4).read_volatile();
        if pml4e & 1 == 0 {
            let Some(pdpt) = pool.pdpts.get_mut(pool.pdpts_used) else {
                return false;
            };
            pool.pdpts_used += 1;
            pml4e = pdpt.as_ptr() as u64 | TABLE;
            pml4.add(l4).write_volatile(pml4e);
        }
        let pdpt = (pml4e & ADDR_MASK) as *mut u64;
        if pdpt.add(gib).read_volatile() & 1 != 0 {
            return true;
        }
        let Some(dir) = pool.dirs.get_mut(pool.dirs_used) else {
            return false;
        };
        pool.dirs_used += 1;
        let base = addr & !((1 << 30) - 1);
        for (i, e) in dir.iter_mut().enumerate() {
            *e = (base + ((i as u64) << 21)) | PDE_LARGE;
        }
        pdpt.add(gib).write_volatile(dir.as_ptr() as u64 | TABLE);
        core::arch::asm!("mov cr3, {}", in(reg) cr3, options(nostack));
    }
    true
}
