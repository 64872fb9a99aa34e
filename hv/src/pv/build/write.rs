//! Writing a plan into the domain's memory, through a two-method seam.
//!
//! The image and the initrd are read where they are (the Linux image is
//! tens of MiB and the hypervisor's heap is small): nothing is copied into
//! a buffer larger than a page.

use super::boot::hypercall_page;
use super::layout::PAGE_SIZE;
use super::PvPlan;
use core::fmt;

/// The domain's memory by guest-physical address (= pfn * 4096: the p2m
/// is the identity and RAM starts at 0).
pub trait GuestWriter {
    type Error;

    /// Writes `bytes` at `gpa`.
    fn write(&mut self, gpa: u64, bytes: &[u8]) -> Result<(), Self::Error>;

    /// Writes `len` zero bytes at `gpa` (by default a page at a time
    /// through [`Self::write`]).
    fn zero(&mut self, gpa: u64, len: u64) -> Result<(), Self::Error> {
        const ZEROS: [u8; PAGE_SIZE as usize] = [0; PAGE_SIZE as usize];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(PAGE_SIZE);
            self.write(gpa + done, &ZEROS[..n as usize])?;
            done += n;
        }
        Ok(())
    }
}

/// Why a plan could not be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteError<E> {
    /// A segment's bytes are not in the image given (not the planned one).
    ImageMismatch { index: usize },
    /// The initrd given is not as long as planned.
    RamdiskMismatch { planned: u64, given: Option<u64> },
    /// The domain's memory refused a write.
    Guest {
        what: &'static str,
        gpa: u64,
        error: E,
    },
}

impl<E: fmt::Display> fmt::Display for WriteError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ImageMismatch { index } => write!(
                f,
                "program header {index}'s bytes are not in the image: it is not the one planned"
            ),
            Self::RamdiskMismatch { planned, given } => match given {
                Some(n) => write!(f, "the initrd is {n} bytes long, planned for {planned}"),
                None => write!(f, "no initrd given, planned for {planned} bytes"),
            },
            Self::Guest { what, gpa, error } => {
                write!(f, "writing {what} at {gpa:#x}: {error}")
            }
        }
    }
}

/// A [`GuestWriter`] that names what failed.
struct Named<'w, W> {
    mem: &'w mut W,
}

impl<W: GuestWriter> Named<'_, W> {
    fn write(
        &mut self,
        what: &'static str,
        gpa: u64,
        bytes: &[u8],
    ) -> Result<(), WriteError<W::Error>> {
        self.mem
            .write(gpa, bytes)
            .map_err(|error| WriteError::Guest { what, gpa, error })
    }

    fn zero(&mut self, what: &'static str, gpa: u64, len: u64) -> Result<(), WriteError<W::Error>> {
        if len == 0 {
            return Ok(());
        }
        self.mem
            .zero(gpa, len)
            .map_err(|error| WriteError::Guest { what, gpa, error })
    }

    fn page(
        &mut self,
        what: &'static str,
        pfn: u64,
        bytes: &[u8],
    ) -> Result<(), WriteError<W::Error>> {
        let gpa = pfn * PAGE_SIZE;
        self.write(what, gpa, bytes)?;
        self.zero(
            what,
            gpa + bytes.len() as u64,
            PAGE_SIZE - bytes.len() as u64,
        )
    }
}

impl PvPlan {
    /// Writes everything the plan places: the kernel (its pages whole, the
    /// gaps between segments and the bss zeroed), the hypercall page, the
    /// initrd (`ramdisk`, as long as planned), the p2m list, the start info
    /// page (from [`PvPlan::start_info`] as it is now), the xenstore and
    /// console rings (zeroed: the integrator initialises them), the boot
    /// page tables and the boot stack (zeroed). Pages the plan does not
    /// place (below the kernel, the room at the end of the mapping, the
    /// free pages) are not written: the domain's RAM starts zeroed.
    pub fn write<W: GuestWriter>(
        &self,
        image: &[u8],
        ramdisk: Option<&[u8]>,
        mem: &mut W,
    ) -> Result<(), WriteError<W::Error>> {
        let mut m = Named { mem };
        let l = &self.layout;

        let mut at = l.kernel.start * PAGE_SIZE;
        for s in &self.kernel.segments {
            let bytes = s
                .bytes(image)
                .ok_or(WriteError::ImageMismatch { index: s.index })?;
            m.zero("the kernel", at, s.gpa - at)?;
            m.write("the kernel", s.gpa, bytes)?;
            let file_end = s.gpa + bytes.len() as u64;
            m.zero("the kernel's bss", file_end, s.end() - file_end)?;
            at = s.end();
        }
        m.zero("the kernel", at, l.kernel.end * PAGE_SIZE - at)?;
        if let Some(pfn) = self.hypercall_page {
            m.page("the hypercall page", pfn, &hypercall_page())?;
        }

        let planned = l.ramdisk.map_or(0, |r| r.len);
        let given = ramdisk.map(|r| r.len() as u64);
        if given.unwrap_or(0) != planned {
            return Err(WriteError::RamdiskMismatch { planned, given });
        }
        if let (Some(r), Some(bytes)) = (l.ramdisk, ramdisk) {
            let gpa = r.pfn * PAGE_SIZE;
            m.write("the initrd", gpa, bytes)?;
            m.zero("the initrd", gpa + r.len, r.pages * PAGE_SIZE - r.len)?;
        }

        let mut page = [0u8; PAGE_SIZE as usize];
        for (n, pfn) in l.p2m.clone().enumerate() {
            let first = n as u64 * 512;
            for (i, entry) in page.chunks_exact_mut(8).enumerate() {
                let index = first + i as u64;
                let value = if index < self.nr_pages { index } else { 0 };
                entry.copy_from_slice(&value.to_le_bytes());
            }
            m.page("the p2m list", pfn, &page)?;
        }

        m.page("the start info", l.start_info, &self.start_info.to_bytes())?;
        m.page("the xenstore ring", l.store, &[])?;
        m.page("the console ring", l.console, &[])?;
        for (pfn, _) in l.tables.frames() {
            if let Some(bytes) = l.tables.bytes(pfn) {
                m.page("a boot page table", pfn, &bytes)?;
            }
        }
        m.page("the boot stack", l.stack, &[])
    }
}
