//! The PV domain builder's plan: where a 64-bit PV kernel, its initrd,
//! p2m list, start info, rings, boot page tables and stack go in a domain
//! whose RAM is pfn 0..`nr_pages` (pfn = mfn = guest-physical frame), what
//! bytes each gets, and the registers the guest starts with.
//!
//! The layout and every value follow Xen's domain builder
//! (`xg_dom_core.c xc_dom_build_image`, `xg_dom_x86.c`, libelf), see
//! [`layout`]; the code is ours. [`plan`] is pure: it reads the image,
//! checks it, and returns a [`PvPlan`] that borrows nothing and holds no
//! page of memory; [`PvPlan::write`] then writes the bytes through a
//! [`GuestWriter`], reading the image and initrd where they lie.
//!
//! Where this builder departs from Xen's:
//! - The p2m list always goes in the initial mapping, after the kernel
//!   (and a mapped initrd), as Xen's builder did before `INIT_P2M`;
//!   `XEN_ELFNOTE_INIT_P2M` is read but not honoured. Xen would map the
//!   list at that address (Linux asks for 512 GiB) with page tables of
//!   its own, which the memory manager would then have to type and the
//!   guest to free. Linux handles both: `xen_setup_kernel_pagetable` and
//!   `xen_pagetable_p2m_free` (`arch/x86/xen/mmu_pv.c`) test
//!   `mfn_list >= __START_KERNEL_map` and treat such a list as part of the
//!   kernel mapping, so `first_p2m_pfn` and `nr_p2m_frames` stay 0.
//! - `XEN_ELFNOTE_BSD_SYMTAB` is read but no symbol table is loaded.
//! - The kernel's first page is its lowest segment's address rounded
//!   down to a page, where Xen refuses an unaligned one.
//! - An initrd of 0 bytes is no initrd.

pub mod boot;
pub mod error;
pub mod kernel;
pub mod layout;
pub mod tables;
pub mod write;

#[cfg(test)]
mod tests;

use crate::pv::abi::va::MACH2PHYS_NR_ENTRIES;
use crate::pv::notes::pv_notes;
use crate::pvh::elf::{Class, Elf, EM_X86_64};
use core::fmt;
use core::ops::Range;
use vmm_glue::xen::start_info::PvStartInfo;

pub use boot::{hypercall_page, PvRegs};
pub use error::BuildError;
pub use kernel::{KernelImage, KernelSegment};
pub use layout::{Layout, Ramdisk, PAGE_SIZE};
pub use tables::BootTables;
pub use write::{GuestWriter, WriteError};

/// What the builder needs to know about the domain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PvBuildConfig<'c> {
    /// The domain's RAM in 4 KiB pages: pfn 0..nr_pages.
    pub nr_pages: u64,
    /// The initrd's length in bytes, if there is one.
    pub ramdisk_len: Option<u64>,
    /// The kernel command line: at most 1023 bytes, no NUL.
    pub cmdline: &'c str,
    /// The shared info page's machine ADDRESS (its frame number times
    /// 4096: the special frame above RAM).
    pub shared_info_maddr: u64,
    /// The xenstore ring's event channel. If it is only known after
    /// planning, set [`PvPlan::start_info`]`.store_evtchn` before writing.
    pub store_evtchn: u32,
    /// The console ring's event channel (as `store_evtchn`).
    pub console_evtchn: u32,
    /// `SIF_*` flags of the domain itself (`SIF_PRIVILEGED`,
    /// `SIF_INITDOMAIN`; 0 for a domU). The builder adds
    /// `SIF_VIRT_P2M_4TOOLS`, as libxenguest always does, and
    /// `SIF_MOD_START_PFN` for an unmapped initrd.
    pub sif_flags: u32,
}

/// How to build a PV domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PvPlan {
    /// The domain's pages.
    pub nr_pages: u64,
    /// The virtual address of pfn 0 (`XEN_ELFNOTE_VIRT_BASE`).
    pub virt_base: u64,
    /// The kernel's segments at their pseudo-physical addresses.
    pub kernel: KernelImage,
    /// Where everything goes.
    pub layout: Layout,
    /// The pfn of the hypercall page, when the kernel asks for one.
    pub hypercall_page: Option<u64>,
    /// The start info written at [`Layout::start_info`]; the integrator
    /// may still change fields (event channels) before [`PvPlan::write`].
    pub start_info: PvStartInfo,
    /// The registers the guest starts with.
    pub regs: PvRegs,
}

/// Plans a 64-bit PV domain running `image` (see the module comment).
pub fn plan(image: &[u8], cfg: &PvBuildConfig<'_>) -> Result<PvPlan, BuildError> {
    let elf = Elf::parse(image)?;
    if elf.class != Class::Elf64 || elf.machine != EM_X86_64 {
        return Err(BuildError::NotElf64 {
            class: elf.class,
            machine: elf.machine,
        });
    }
    let notes = pv_notes(&elf)?;
    let cmd_line = boot::cmd_line(cfg.cmdline)?;
    if cfg.nr_pages > MACH2PHYS_NR_ENTRIES {
        return Err(BuildError::TooManyPages {
            nr_pages: cfg.nr_pages,
            max: MACH2PHYS_NR_ENTRIES,
        });
    }
    let virt_base = notes.virt_base;
    if virt_base % PAGE_SIZE != 0 {
        return Err(BuildError::VirtBaseNotPageAligned { virt_base });
    }
    layout::check_va_range("XEN_ELFNOTE_VIRT_BASE", virt_base, 1)?;
    let kernel = kernel::segments(&elf, notes.paddr_offset)?;
    let image_va = |gpa: u64| {
        virt_base
            .checked_add(gpa)
            .ok_or(BuildError::PastTopOfAddressSpace {
                what: "the kernel image",
                start: virt_base,
            })
    };
    let (start, end) = (image_va(kernel.start)?, image_va(kernel.end)?);
    layout::check_va_range("the kernel image", start, end - start)?;
    if !(start..end).contains(&notes.entry) {
        return Err(BuildError::EntryOutside {
            entry: notes.entry,
            start,
            end,
        });
    }
    let hypercall_page = match notes.hypercall_page {
        Some(va) if (start..end).contains(&va) => Some((va - virt_base) / PAGE_SIZE),
        Some(va) => return Err(BuildError::HypercallPageOutside { va, start, end }),
        None => None,
    };
    let layout = layout::place(
        virt_base,
        &kernel,
        cfg.nr_pages,
        cfg.ramdisk_len.unwrap_or(0),
        notes.mod_start_pfn,
    )?;
    let start_info = boot::start_info(&layout, virt_base, cfg, cmd_line);
    let regs = boot::regs(&layout, virt_base, notes.entry);
    Ok(PvPlan {
        nr_pages: cfg.nr_pages,
        virt_base,
        kernel,
        layout,
        hypercall_page,
        start_info,
        regs,
    })
}

impl PvPlan {
    /// The virtual address of `pfn` in the initial mapping.
    pub fn va(&self, pfn: u64) -> u64 {
        self.virt_base + pfn * PAGE_SIZE
    }

    /// The boot L4's pfn (CR3 is this times 4096).
    pub fn l4_pfn(&self) -> u64 {
        self.layout.tables.l4_pfn
    }

    /// Every boot page-table frame as (pfn, level 1-4), by ascending pfn.
    pub fn page_tables(&self) -> impl Iterator<Item = (u64, u8)> + '_ {
        self.layout.tables.frames()
    }

    /// The 512 entries of boot page table `pfn` (`None` if it is none).
    pub fn table(&self, pfn: u64) -> Option<[u64; 512]> {
        self.layout.tables.entries(pfn)
    }

    /// `start_info.pt_base`: the L4's virtual address.
    pub fn pt_base(&self) -> u64 {
        self.va(self.l4_pfn())
    }

    /// `start_info.nr_pt_frames`.
    pub fn nr_pt_frames(&self) -> u64 {
        self.layout.tables.nr_frames()
    }

    /// The start info page's pfn.
    pub fn start_info_pfn(&self) -> u64 {
        self.layout.start_info
    }

    /// The xenstore ring's pfn (= its mfn).
    pub fn store_pfn(&self) -> u64 {
        self.layout.store
    }

    /// The console ring's pfn (= its mfn).
    pub fn console_pfn(&self) -> u64 {
        self.layout.console
    }

    /// `start_info.mfn_list`: the p2m list's virtual address.
    pub fn p2m_va(&self) -> u64 {
        self.va(self.layout.p2m.start)
    }

    /// The p2m list's pages.
    pub fn p2m_pfns(&self) -> Range<u64> {
        self.layout.p2m.clone()
    }

    /// The initrd's first pfn.
    pub fn ramdisk_pfn(&self) -> Option<u64> {
        self.layout.ramdisk.map(|r| r.pfn)
    }

    /// The hypercall page's pfn.
    pub fn hypercall_page_pfn(&self) -> Option<u64> {
        self.hypercall_page
    }

    /// One past the last virtual address of the initial mapping.
    pub fn mapped_end(&self) -> u64 {
        self.va(self.layout.mapped_pages)
    }

    /// The first pfn after everything placed: the guest may use it and
    /// those after it.
    pub fn first_free_pfn(&self) -> u64 {
        self.layout.first_free
    }

    /// A one-line description for the boot log.
    pub fn summary(&self) -> Summary<'_> {
        Summary(self)
    }
}

/// [`PvPlan::summary`].
#[derive(Clone, Copy, Debug)]
pub struct Summary<'p>(&'p PvPlan);

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.0;
        let l = &p.layout;
        write!(
            f,
            "entry {:#x}, virt base {:#x}; pfns: kernel {:#x}-{:#x}",
            p.regs.rip,
            p.virt_base,
            l.kernel.start,
            l.kernel.end - 1
        )?;
        if let Some(r) = l.ramdisk.filter(|r| r.mapped) {
            write!(f, ", initrd {:#x} ({} KiB)", r.pfn, r.len.div_ceil(1024))?;
        }
        write!(
            f,
            ", p2m {:#x}+{}, start info {:#x}, xenstore {:#x}, console {:#x}, {} page tables \
             at {:#x}, stack {:#x}; mapped to {:#x} ({} MiB)",
            l.p2m.start,
            l.p2m.end - l.p2m.start,
            l.start_info,
            l.store,
            l.console,
            l.tables.nr_frames(),
            l.tables.l4_pfn,
            l.stack,
            p.mapped_end(),
            l.mapped_pages / 256
        )?;
        if let Some(r) = l.ramdisk.filter(|r| !r.mapped) {
            write!(
                f,
                ", unmapped initrd {:#x} ({} KiB)",
                r.pfn,
                r.len.div_ceil(1024)
            )?;
        }
        if let Some(pfn) = p.hypercall_page {
            write!(f, ", hypercall page {pfn:#x}")?;
        }
        write!(
            f,
            "; {:#x} of {:#x} pages free from {:#x}",
            p.nr_pages - l.first_free,
            p.nr_pages,
            l.first_free
        )
    }
}
