//! A domain's RAM: host frames in 2 MiB chunks, addressed by guest-physical
//! address. All hypervisor access to guest memory goes through the checked
//! copies here; the frames are scrubbed and freed when the domain dies.

use crate::mem;
use alloc::vec::Vec;

/// The size of one chunk of guest RAM.
pub const CHUNK: u64 = 2 << 20;

/// One contiguous piece of guest RAM.
#[derive(Clone, Copy, Debug)]
pub struct Chunk {
    pub gpa: u64,
    pub hpa: u64,
}

/// A guest-physical range is not guest RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfRange {
    pub gpa: u64,
    pub len: u64,
}

/// The host could not provide the memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfMemory {
    pub wanted: u64,
    pub free: u64,
}

/// The most single pages a domain may have placed outside its RAM (its
/// grant table and shared info frames, `XENMEM_add_to_physmap`).
pub const MAX_EXTRA_PAGES: usize = 16;

/// A domain's RAM.
#[derive(Debug, Default)]
pub struct GuestMemory {
    /// Sorted by `gpa`, non-overlapping.
    chunks: Vec<Chunk>,
    /// Single 4 KiB pages outside the chunks: (gpa, hpa), sorted by gpa.
    pages: Vec<(u64, u64)>,
    /// Pages of the chunks the guest gave back
    /// (`XENMEM_decrease_reservation`), sorted: their frames are in
    /// `pool` or back in `populated`.
    holes: Vec<u64>,
    /// Pages the guest asked for since (`XENMEM_populate_physmap`), in a
    /// hole or outside the chunks: (gpa, hpa of a chunk frame), sorted by
    /// gpa.
    populated: Vec<(u64, u64)>,
    /// Chunk frames given back and not populated again, scrubbed. They
    /// stay the domain's (no other domain can get them, and the host's
    /// free list does not fragment): a domain holds at most the memory it
    /// was built with, so a page it may populate is always here.
    pool: Vec<u64>,
}

impl GuestMemory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Backs `[gpa, gpa + len)` (2 MiB aligned) with fresh zeroed frames.
    pub fn add_ram(&mut self, gpa: u64, len: u64) -> Result<(), OutOfMemory> {
        debug_assert!(gpa.is_multiple_of(CHUNK) && len.is_multiple_of(CHUNK));
        let mut off = 0;
        while off < len {
            let Some(hpa) = mem::alloc_frames(CHUNK / 4096, CHUNK) else {
                return Err(OutOfMemory {
                    wanted: len - off,
                    free: mem::free_bytes(),
                });
            };
            let at = self.chunks.partition_point(|c| c.gpa < gpa + off);
            self.chunks.insert(
                at,
                Chunk {
                    gpa: gpa + off,
                    hpa,
                },
            );
            off += CHUNK;
        }
        Ok(())
    }

    /// The chunks, sorted by guest-physical address.
    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }

    /// Backs the 4 KiB page at `gpa` (outside the chunks) with a fresh
    /// zeroed frame and returns it; at most [`MAX_EXTRA_PAGES`].
    pub fn add_page(&mut self, gpa: u64) -> Result<u64, OutOfMemory> {
        debug_assert!(gpa.is_multiple_of(4096) && self.translate(gpa).is_none());
        let hpa = (self.pages.len() < MAX_EXTRA_PAGES)
            .then(|| mem::alloc_frames(1, 4096))
            .flatten()
            .ok_or(OutOfMemory {
                wanted: 4096,
                free: mem::free_bytes(),
            })?;
        let at = self.pages.partition_point(|p| p.0 < gpa);
        self.pages.insert(at, (gpa, hpa));
        Ok(hpa)
    }

    /// The host address of guest-physical `gpa`, if it is the domain's
    /// memory, and how many bytes from there are contiguous on both sides.
    /// Inline where it is used: every guest memory access starts here, a
    /// page-table walk once per level.
    #[inline(always)]
    fn span(&self, gpa: u64) -> Option<(u64, u64)> {
        // RAM from 0 without holes has chunk n at n * CHUNK: no search.
        let guess = usize::try_from(gpa / CHUNK)
            .ok()
            .and_then(|n| self.chunks.get(n));
        if let Some(c) = guess.filter(|c| gpa.wrapping_sub(c.gpa) < CHUNK) {
            if self.holes.is_empty() {
                return Some((c.hpa + (gpa - c.gpa), CHUNK - (gpa - c.gpa)));
            }
        }
        self.span_searched(gpa)
    }

    /// [`Self::span`] where the chunk is not the guessed one or the domain
    /// has holes: a search of the chunks (a few), the holes, then the
    /// pages outside the chunks. Out of line: the inline part stays small.
    #[link_section = ".text.hot"]
    fn span_searched(&self, gpa: u64) -> Option<(u64, u64)> {
        let i = self.chunks.partition_point(|c| c.gpa <= gpa);
        let found = i.checked_sub(1).and_then(|i| {
            let c = &self.chunks[i];
            (gpa - c.gpa < CHUNK).then(|| (c.hpa + (gpa - c.gpa), CHUNK - (gpa - c.gpa)))
        });
        if let Some(span) = found {
            return self.unless_hole(gpa, span);
        }
        self.single_page(gpa)
    }

    /// `span` of a chunk unless `gpa` is in a hole; with holes, at most to
    /// the end of its page (the next page may be one).
    #[link_section = ".text.hot"]
    fn unless_hole(&self, gpa: u64, span: (u64, u64)) -> Option<(u64, u64)> {
        if self.holes.is_empty() {
            return Some(span);
        }
        let page = gpa & !0xfff;
        if self.holes.binary_search(&page).is_err() {
            return Some((span.0, span.1.min(4096 - (gpa & 0xfff))));
        }
        self.single_page(gpa)
    }

    /// `gpa` in a single page: one placed outside RAM or one populated.
    fn single_page(&self, gpa: u64) -> Option<(u64, u64)> {
        let page = gpa & !0xfff;
        let find = |v: &[(u64, u64)]| {
            let j = v.binary_search_by_key(&page, |p| p.0).ok()?;
            Some((v[j].1 + (gpa & 0xfff), 4096 - (gpa & 0xfff)))
        };
        find(&self.pages).or_else(|| find(&self.populated))
    }

    /// The host address of guest-physical `gpa`, if it is the domain's
    /// memory (RAM or a page placed outside it).
    pub fn translate(&self, gpa: u64) -> Option<u64> {
        self.span(gpa).map(|s| s.0)
    }

    /// Splits `[gpa, gpa + len)` into host pieces, or fails if any byte is
    /// not RAM.
    fn pieces(
        &self,
        gpa: u64,
        len: usize,
        mut each: impl FnMut(u64, usize, usize),
    ) -> Result<(), OutOfRange> {
        let err = OutOfRange {
            gpa,
            len: len as u64,
        };
        gpa.checked_add(len as u64).ok_or(err)?;
        // Most accesses lie in one chunk or page: one lookup.
        if let Some((hpa, room)) = self.span(gpa) {
            if room >= len as u64 {
                each(hpa, 0, len);
                return Ok(());
            }
        }
        // Check everything first: a failed copy changes nothing.
        let mut done = 0usize;
        while done < len {
            let (_, room) = self.span(gpa + done as u64).ok_or(err)?;
            done += room.min((len - done) as u64) as usize;
        }
        let mut done = 0usize;
        while done < len {
            let (hpa, room) = self.span(gpa + done as u64).ok_or(err)?;
            let n = room.min((len - done) as u64) as usize;
            each(hpa, done, n);
            done += n;
        }
        Ok(())
    }

    /// Copies guest memory at `gpa` into `buf`.
    #[link_section = ".text.hot"]
    pub fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), OutOfRange> {
        self.pieces(gpa, buf.len(), |hpa, off, n| {
            // SAFETY: `hpa..hpa + n` lies inside one chunk or page this
            // domain owns (checked by `pieces`), identity-mapped RAM.
            unsafe { core::ptr::copy_nonoverlapping(hpa as *const u8, buf[off..].as_mut_ptr(), n) };
        })
    }

    /// The naturally aligned 4- or 8-byte value at `gpa` (a page-table
    /// entry), `None` if it is not the domain's memory: one load, where
    /// [`Self::read`] copies.
    #[link_section = ".text.hot"]
    pub fn read_entry(&self, gpa: u64, size: usize) -> Option<u64> {
        if !matches!(size, 4 | 8) || !gpa.is_multiple_of(size as u64) {
            let mut b = [0u8; 8];
            self.read(gpa, b.get_mut(..size)?).ok()?;
            return Some(u64::from_le_bytes(b));
        }
        let (hpa, _) = self.span(gpa)?;
        // SAFETY: `hpa` is `gpa` in a chunk or page this domain owns
        // (`span`), identity-mapped RAM; the value is naturally aligned, so
        // it lies in that page; the guest may change it meanwhile, which a
        // volatile load of plain data tolerates.
        Some(unsafe {
            if size == 8 {
                (hpa as *const u64).read_volatile()
            } else {
                u64::from((hpa as *const u32).read_volatile())
            }
        })
    }

    /// Runs `f` on the guest page at `gpa` (page aligned) in place, `None`
    /// if it is not the domain's memory: no copy in and out, for the pages
    /// the hypervisor updates on every event (the shared info page).
    pub fn with_page_mut<R>(
        &mut self,
        gpa: u64,
        f: impl FnOnce(&mut [u8; 4096]) -> R,
    ) -> Option<R> {
        if !gpa.is_multiple_of(4096) {
            return None;
        }
        let (hpa, room) = self.span(gpa)?;
        if room < 4096 {
            return None;
        }
        // SAFETY: `hpa..hpa + 4096` is one page of a chunk or page this
        // domain owns (`span`), identity-mapped RAM; the reference lives
        // only for `f`, while the guest (the only other user of the page)
        // is stopped, and `&mut self` keeps any other hypervisor access to
        // this domain's memory out meanwhile.
        Some(f(unsafe { &mut *(hpa as *mut [u8; 4096]) }))
    }

    /// Copies `data` into guest memory at `gpa`.
    #[link_section = ".text.hot"]
    pub fn write(&self, gpa: u64, data: &[u8]) -> Result<(), OutOfRange> {
        self.pieces(gpa, data.len(), |hpa, off, n| {
            // SAFETY: as in `read`; the hypervisor holds no reference into
            // guest memory, which only the guest (stopped now) also uses.
            unsafe { core::ptr::copy_nonoverlapping(data[off..].as_ptr(), hpa as *mut u8, n) };
        })
    }

    /// Writes `len` zero bytes at `gpa`. Whole frames are zeroed as the
    /// frame allocator zeroes them, written only if not already zero (a
    /// kernel's bss, say, is most often RAM nothing has written yet).
    pub fn zero(&self, gpa: u64, len: u64) -> Result<(), OutOfRange> {
        let n = usize::try_from(len).map_err(|_| OutOfRange { gpa, len })?;
        self.pieces(gpa, n, |hpa, _, n| {
            let end = hpa + n as u64;
            let first = hpa.next_multiple_of(4096).min(end);
            let last = (end & !0xfff).max(first);
            // SAFETY: as in `write`; `[first, last)` is whole frames of this
            // memory.
            unsafe {
                core::ptr::write_bytes(hpa as *mut u8, 0, (first - hpa) as usize);
                crate::arch::phys::zero_owned(first, last - first);
                core::ptr::write_bytes(last as *mut u8, 0, (end - last) as usize);
            }
        })
    }
}

/// Where a page of the guest-physical space stands for ballooning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageState {
    /// RAM the domain was built with, or a page it populated since.
    Ram,
    /// A page placed outside RAM (shared info, grant frames): not RAM the
    /// guest may give back.
    Special,
    /// Nothing: a page given back or never populated.
    Absent,
}

impl GuestMemory {
    /// What `gpa` (page aligned) is.
    pub fn page_state(&self, gpa: u64) -> PageState {
        let find = |v: &[(u64, u64)]| v.binary_search_by_key(&gpa, |p| p.0).is_ok();
        if find(&self.pages) {
            PageState::Special
        } else if self.translate(gpa).is_some() {
            PageState::Ram
        } else {
            PageState::Absent
        }
    }

    /// Gives back the RAM page at `gpa` (page aligned, [`PageState::Ram`]):
    /// its frame is scrubbed and goes to the domain's pool. The caller has
    /// removed every mapping of it (nested page tables, IOMMU) first.
    /// `false` if it is not such a page.
    pub fn remove_page(&mut self, gpa: u64) -> bool {
        let hpa = if let Ok(j) = self.populated.binary_search_by_key(&gpa, |p| p.0) {
            self.populated.remove(j).1
        } else {
            match self.translate(gpa) {
                Some(hpa) if self.page_state(gpa) == PageState::Ram => {
                    let at = self.holes.partition_point(|&h| h < gpa);
                    self.holes.insert(at, gpa);
                    hpa
                }
                _ => return false,
            }
        };
        // SAFETY: a RAM frame of this domain's (translated just above),
        // which it keeps in its pool; the caller unmapped it from the guest.
        unsafe { crate::arch::phys::zero_owned(hpa, 4096) };
        self.pool.push(hpa);
        true
    }

    /// Backs the absent page at `gpa` (page aligned) with a scrubbed frame
    /// from the pool and returns it; `None` when the domain holds all the
    /// memory it was built with.
    pub fn populate_page(&mut self, gpa: u64) -> Option<u64> {
        debug_assert!(gpa.is_multiple_of(4096) && self.translate(gpa).is_none());
        let hpa = self.pool.pop()?;
        let at = self.populated.partition_point(|p| p.0 < gpa);
        self.populated.insert(at, (gpa, hpa));
        Some(hpa)
    }

    /// Frames in the pool: pages the domain may still populate.
    pub fn pool_pages(&self) -> u64 {
        self.pool.len() as u64
    }
}

impl GuestMemory {
    /// A digest of every byte of the domain's RAM (read with volatile
    /// loads: a device may be writing there), to tell whether anything
    /// changed it between two reads.
    pub fn digest(&self) -> u64 {
        let frames = self
            .chunks
            .iter()
            .map(|c| (c.hpa, CHUNK))
            .chain(self.pages.iter().map(|&(_, hpa)| (hpa, 4096)));
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for (base, len) in frames {
            for a in (base..base + len).step_by(8) {
                // SAFETY: an aligned word of a frame this memory owns.
                let v = unsafe { crate::arch::phys::read_owned_u64(a) };
                h = (h ^ v).wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }
}

impl Drop for GuestMemory {
    /// Scrubs and frees the domain's RAM: nothing it wrote reaches the next
    /// owner of these frames.
    fn drop(&mut self) {
        for c in self.chunks.drain(..) {
            // SAFETY: a chunk this memory took from the frame allocator
            // and owned until now; the domain no longer runs.
            unsafe { crate::arch::phys::zero_owned(c.hpa, CHUNK) };
            mem::free_frames(c.hpa, CHUNK / 4096);
            mem::note_scrubbed(c.hpa, CHUNK);
        }
        for (_, hpa) in self.pages.drain(..) {
            // SAFETY: as for the chunks: a frame this memory owned.
            unsafe { crate::arch::phys::zero_owned(hpa, 4096) };
            mem::free_frames(hpa, 1);
            mem::note_scrubbed(hpa, 4096);
        }
    }
}
