//! Reading `hvm_start_info` and what it points at.
//!
//! Everything is copied out of guest-physical memory (identity-mapped below
//! [`IDENTITY_MAPPED`]); no reference into the loader's data is kept, and
//! an address of 0 means "not present" as the PVH ABI says.

use vmm_glue::Gpa;

use crate::abi::start_info::{HvmMemmapEntry, HvmModlistEntry, HvmStartInfo, MAGIC};
use crate::boot::IDENTITY_MAPPED;

/// Types that may be copied out of guest memory: every bit pattern is a
/// valid value.
trait Plain: Copy {}
impl Plain for u8 {}
impl Plain for HvmStartInfo {}
impl Plain for HvmMemmapEntry {}
impl Plain for HvmModlistEntry {}

/// Copies a `T` from guest-physical `gpa`, if all of it is mapped.
fn read<T: Plain>(gpa: Gpa) -> Option<T> {
    let end = gpa.checked_add(core::mem::size_of::<T>() as u64)?;
    if gpa.raw() == 0 || end.raw() > IDENTITY_MAPPED {
        return None;
    }
    // SAFETY: the range is non-null and inside the identity map set up at
    // entry, so the address is readable; `T: Plain` accepts any bytes, and
    // the copy is unaligned because the loader owes us no alignment.
    Some(unsafe { core::ptr::read_unaligned(gpa.raw() as *const T) })
}

/// Why the start info cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartInfoError {
    /// EBX was 0.
    Missing,
    /// The structure lies beyond the identity map.
    Unmapped(Gpa),
}

/// A copy of the `hvm_start_info` the loader passed in EBX.
#[derive(Debug, Clone, Copy)]
pub struct StartInfo {
    /// Where it was.
    pub gpa: Gpa,
    /// The structure. Version 0 has no memory map: its `memmap_*` fields
    /// are whatever followed it and are ignored.
    pub raw: HvmStartInfo,
}

/// A command line copied out of guest memory.
#[derive(Debug, Clone)]
pub struct CmdLine {
    buf: [u8; CmdLine::MAX],
    len: usize,
    /// No NUL was found within [`CmdLine::MAX`] bytes (or the mapping).
    pub truncated: bool,
}

impl CmdLine {
    /// Longest command line copied.
    pub const MAX: usize = 1024;

    /// The bytes before the NUL.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The text, if it is UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        core::str::from_utf8(self.as_bytes()).ok()
    }

    fn read(gpa: Gpa) -> Option<CmdLine> {
        let mut line = CmdLine {
            buf: [0; CmdLine::MAX],
            len: 0,
            truncated: true,
        };
        read::<u8>(gpa)?;
        for i in 0..CmdLine::MAX {
            match gpa.checked_add(i as u64).and_then(read::<u8>) {
                Some(0) => {
                    line.truncated = false;
                    break;
                }
                Some(b) => {
                    line.buf[i] = b;
                    line.len = i + 1;
                }
                None => break,
            }
        }
        Some(line)
    }
}

impl StartInfo {
    /// Copies the start info at `gpa` (the value of EBX at entry). The
    /// magic is not checked: see [`StartInfo::magic_ok`].
    pub fn read(gpa: Gpa) -> Result<StartInfo, StartInfoError> {
        if gpa.raw() == 0 {
            return Err(StartInfoError::Missing);
        }
        let raw = read::<HvmStartInfo>(gpa).ok_or(StartInfoError::Unmapped(gpa))?;
        Ok(StartInfo { gpa, raw })
    }

    /// Whether the magic is `XEN_HVM_START_MAGIC_VALUE`.
    pub fn magic_ok(&self) -> bool {
        self.raw.magic == MAGIC
    }

    /// The command line, if there is one (and it is mapped).
    pub fn cmdline(&self) -> Option<CmdLine> {
        CmdLine::read(Gpa(self.raw.cmdline_paddr))
    }

    /// Number of memory map entries (0 before version 1).
    pub fn memmap_len(&self) -> u32 {
        if self.raw.version >= 1 && self.raw.memmap_paddr != 0 {
            self.raw.memmap_entries
        } else {
            0
        }
    }

    /// Memory map entry `i`, if it exists and is mapped.
    pub fn memmap(&self, i: u32) -> Option<HvmMemmapEntry> {
        if i >= self.memmap_len() {
            return None;
        }
        let off = u64::from(i) * core::mem::size_of::<HvmMemmapEntry>() as u64;
        read(Gpa(self.raw.memmap_paddr).checked_add(off)?)
    }

    /// The memory map entries that can be read.
    pub fn memmap_entries(&self) -> impl Iterator<Item = HvmMemmapEntry> + '_ {
        (0..self.memmap_len()).filter_map(|i| self.memmap(i))
    }

    /// Module entry `i`, if it exists and is mapped.
    pub fn module(&self, i: u32) -> Option<HvmModlistEntry> {
        if i >= self.raw.nr_modules || self.raw.modlist_paddr == 0 {
            return None;
        }
        let off = u64::from(i) * core::mem::size_of::<HvmModlistEntry>() as u64;
        read(Gpa(self.raw.modlist_paddr).checked_add(off)?)
    }
}
