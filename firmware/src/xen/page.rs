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

/// Page directories for the 1 GiB ranges 1..4 of the address space.
#[repr(C, align(4096))]
struct Directories(UnsafeCell<[[u64; 512]; 3]>);

// SAFETY: written only by `identity_map`, on the one vCPU.
unsafe impl Sync for Directories {}

static DIRECTORIES: Directories = Directories(UnsafeCell::new([[0; 512]; 3]));

/// Present, writable, 2 MiB page.
const PDE_LARGE: u64 = 0x83;
/// Present, writable.
const TABLE: u64 = 0x3;
/// Address bits of a table entry.
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Makes sure `addr` is identity mapped: below 1 GiB it is; up to 4 GiB a
/// page directory of 2 MiB pages is added to the boot PDPT (reached
/// through CR3, whose tables are identity mapped below 1 GiB).
pub fn identity_map(addr: u64) -> bool {
    if addr < IDENTITY_MAPPED {
        return true;
    }
    let gib = (addr >> 30) as usize;
    if !(1..4).contains(&gib) {
        return false;
    }
    let cr3: u64;
    // SAFETY: reading CR3 has no side effects.
    unsafe { core::arch::asm!("mov {}, cr3", out(reg) cr3, options(nomem, nostack)) };
    let pml4 = (cr3 & ADDR_MASK) as *mut u64;
    // SAFETY: the boot code's PML4, PDPT and our directories live in this
    // image below 1 GiB, identity mapped; one vCPU, so nothing else walks
    // or edits them now. A new PDPT entry is written after its directory is
    // complete, then CR3 is reloaded to drop stale translations.
    unsafe {
        let pml4e = pml4.read_volatile();
        if pml4e & 1 == 0 {
            return false;
        }
        let pdpt = (pml4e & ADDR_MASK) as *mut u64;
        if pdpt.add(gib).read_volatile() & 1 != 0 {
            return true;
        }
        let dir = &mut (*DIRECTORIES.0.get())[gib - 1];
        for (i, e) in dir.iter_mut().enumerate() {
            *e = (((gib as u64) << 30) + ((i as u64) << 21)) | PDE_LARGE;
        }
        pdpt.add(gib).write_volatile(dir.as_ptr() as u64 | TABLE);
        core::arch::asm!("mov cr3, {}", in(reg) cr3, options(nostack));
    }
    true
}
