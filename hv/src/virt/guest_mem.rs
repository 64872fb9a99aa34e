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

/// A domain's RAM.
#[derive(Debug, Default)]
pub struct GuestMemory {
    /// Sorted by `gpa`, non-overlapping.
    chunks: Vec<Chunk>,
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

    /// The host address of guest-physical `gpa`, if it is RAM.
    pub fn translate(&self, gpa: u64) -> Option<u64> {
        let i = self
            .chunks
            .partition_point(|c| c.gpa <= gpa)
            .checked_sub(1)?;
        let c = self.chunks[i];
        (gpa - c.gpa < CHUNK).then_some(c.hpa + (gpa - c.gpa))
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
        // Check everything first: a failed copy changes nothing.
        let mut done = 0usize;
        while done < len {
            let at = gpa + done as u64;
            self.translate(at).ok_or(err)?;
            done += (CHUNK - at % CHUNK).min((len - done) as u64) as usize;
        }
        let mut done = 0usize;
        while done < len {
            let at = gpa + done as u64;
            let n = (CHUNK - at % CHUNK).min((len - done) as u64) as usize;
            each(self.translate(at).ok_or(err)?, done, n);
            done += n;
        }
        Ok(())
    }

    /// Copies guest memory at `gpa` into `buf`.
    pub fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), OutOfRange> {
        self.pieces(gpa, buf.len(), |hpa, off, n| {
            // SAFETY: `hpa..hpa + n` lies inside one chunk this domain owns
            // (checked by `pieces`), identity-mapped RAM.
            unsafe { core::ptr::copy_nonoverlapping(hpa as *const u8, buf[off..].as_mut_ptr(), n) };
        })
    }

    /// Copies `data` into guest memory at `gpa`.
    pub fn write(&self, gpa: u64, data: &[u8]) -> Result<(), OutOfRange> {
        self.pieces(gpa, data.len(), |hpa, off, n| {
            // SAFETY: as in `read`; the hypervisor holds no reference into
            // guest memory, which only the guest (stopped now) also uses.
            unsafe { core::ptr::copy_nonoverlapping(data[off..].as_ptr(), hpa as *mut u8, n) };
        })
    }
}

impl Drop for GuestMemory {
    /// Scrubs and frees the domain's RAM: nothing it wrote reaches the next
    /// owner of these frames.
    fn drop(&mut self) {
        for c in self.chunks.drain(..) {
            crate::arch::phys::zero_owned(c.hpa, CHUNK);
            mem::free_frames(c.hpa, CHUNK / 4096);
        }
    }
}
