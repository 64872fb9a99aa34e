//! Why a PV domain cannot be built from an image and a configuration.

use crate::pv::notes::PvNoteError;
use crate::pvh::elf::{Class, ElfError};
use core::fmt;

/// Why [`super::plan`] refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// The image is no usable ELF executable.
    Elf(ElfError),
    /// The image is not an x86-64 ELF64 executable.
    NotElf64 { class: Class, machine: u16 },
    /// The Xen notes are unusable.
    Notes(PvNoteError),
    /// No loadable segment with memory.
    NoLoadSegments,
    /// A segment's `p_paddr` lies below `XEN_ELFNOTE_PADDR_OFFSET`.
    BelowPaddrOffset {
        index: usize,
        paddr: u64,
        paddr_offset: u64,
    },
    /// A segment's address range runs past the end of the address space.
    SegmentOverflow {
        index: usize,
        paddr: u64,
        memsz: u64,
    },
    /// A segment's file bytes do not fit this host's address width.
    TooLargeForHost { index: usize },
    /// Two segments share pseudo-physical memory (program header indices,
    /// pseudo-physical ranges).
    Overlap {
        first: usize,
        first_range: (u64, u64),
        second: usize,
        second_range: (u64, u64),
    },
    /// `VIRT_BASE` is not page-aligned.
    VirtBaseNotPageAligned { virt_base: u64 },
    /// A virtual address is not canonical.
    NonCanonical { what: &'static str, va: u64 },
    /// A virtual address lies in the range the hypervisor reserves in
    /// every guest address space.
    InHypervisorRange { what: &'static str, va: u64 },
    /// A virtual range reaches the top of the address space (or wraps).
    PastTopOfAddressSpace { what: &'static str, start: u64 },
    /// `ENTRY` lies outside the kernel image's virtual range.
    EntryOutside { entry: u64, start: u64, end: u64 },
    /// `HYPERCALL_PAGE` lies outside the kernel image's virtual range.
    HypercallPageOutside { va: u64, start: u64, end: u64 },
    /// The domain has more pages than a PV domain's machine frame numbers
    /// can name (the M2P's entries).
    TooManyPages { nr_pages: u64, max: u64 },
    /// What must be placed needs more pages than the domain has.
    DoesNotFit {
        what: &'static str,
        need_pages: u64,
        nr_pages: u64,
    },
    /// The command line is longer than `start_info.cmd_line` holds.
    CmdlineTooLong { len: usize, max: usize },
    /// The command line contains a NUL byte.
    CmdlineHasNul { at: usize },
}

impl From<ElfError> for BuildError {
    fn from(e: ElfError) -> Self {
        Self::Elf(e)
    }
}

impl From<PvNoteError> for BuildError {
    fn from(e: PvNoteError) -> Self {
        Self::Notes(e)
    }
}

fn mib(pages: u64) -> u64 {
    pages.div_ceil(256)
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Elf(e) => write!(f, "bad ELF image: {e}"),
            Self::NotElf64 { class, machine } => write!(
                f,
                "the image is {class} for machine {machine}: a 64-bit PV kernel is ELF64 for \
                 x86-64 (62)"
            ),
            Self::Notes(e) => e.fmt(f),
            Self::NoLoadSegments => {
                f.write_str("the image has no loadable PT_LOAD segment with memory")
            }
            Self::BelowPaddrOffset {
                index,
                paddr,
                paddr_offset,
            } => write!(
                f,
                "program header {index}: physical address {paddr:#x} lies below \
                 XEN_ELFNOTE_PADDR_OFFSET {paddr_offset:#x}"
            ),
            Self::SegmentOverflow {
                index,
                paddr,
                memsz,
            } => write!(
                f,
                "program header {index}: {paddr:#x}+{memsz:#x} runs past the end of the \
                 address space"
            ),
            Self::TooLargeForHost { index } => {
                write!(
                    f,
                    "program header {index}: file range too large for this host"
                )
            }
            Self::Overlap {
                first,
                first_range: (a, b),
                second,
                second_range: (c, d),
            } => write!(
                f,
                "program headers {first} ({a:#x}..{b:#x}) and {second} ({c:#x}..{d:#x}) overlap"
            ),
            Self::VirtBaseNotPageAligned { virt_base } => write!(
                f,
                "XEN_ELFNOTE_VIRT_BASE {virt_base:#x} is not a multiple of the 4 KiB page size"
            ),
            Self::NonCanonical { what, va } => {
                write!(f, "{what} ({va:#x}) is not a canonical address")
            }
            Self::InHypervisorRange { what, va } => write!(
                f,
                "{what} ({va:#x}) lies in the hypervisor's range \
                 0xffff800000000000..0xffff880000000000 of every PV guest's address space"
            ),
            Self::PastTopOfAddressSpace { what, start } => write!(
                f,
                "{what}, starting at {start:#x}, does not fit below the top of the address \
                 space"
            ),
            Self::EntryOutside { entry, start, end } => write!(
                f,
                "XEN_ELFNOTE_ENTRY {entry:#x} lies outside the kernel image \
                 ({start:#x}..{end:#x})"
            ),
            Self::HypercallPageOutside { va, start, end } => write!(
                f,
                "XEN_ELFNOTE_HYPERCALL_PAGE {va:#x} lies outside the kernel image \
                 ({start:#x}..{end:#x})"
            ),
            Self::TooManyPages { nr_pages, max } => write!(
                f,
                "{nr_pages:#x} pages are more than a PV domain can have ({max:#x})"
            ),
            Self::DoesNotFit {
                what,
                need_pages,
                nr_pages,
            } => write!(
                f,
                "not enough memory for {what}: {need_pages:#x} pages ({} MiB) needed, the \
                 domain has {nr_pages:#x} ({} MiB)",
                mib(*need_pages),
                mib(*nr_pages)
            ),
            Self::CmdlineTooLong { len, max } => write!(
                f,
                "the command line is {len} bytes long; a PV guest's holds at most {max}"
            ),
            Self::CmdlineHasNul { at } => {
                write!(f, "the command line has a NUL byte at offset {at}")
            }
        }
    }
}
