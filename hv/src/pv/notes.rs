//! The Xen ELF notes of a 64-bit PV kernel (`xen/include/public/elfnote.h`),
//! read as Xen's libelf reads them (`libelf-dominfo.c`, `elf_xen_parse`)
//! and checked as Xen's tools check them before building a PV domU.
//!
//! Where the notes come from: every `PT_NOTE` segment (except one whose
//! file offset is 0, which some binutils versions write for empty note
//! segments); only if no segment holds a Xen note, every `SHT_NOTE`
//! section. Within that set a later note of a type replaces an earlier one
//! and `FEATURES` / `SUPPORTED_FEATURES` accumulate, as in libelf. The
//! legacy `__xen_guest` section string is not read.
//!
//! One difference from Xen on purpose: Xen starts a kernel without an
//! `ENTRY` note at the ELF entry point. A Linux built without PV support
//! (PVH only) has Xen notes but no `ENTRY`, and its ELF entry is 32-bit
//! code; here such an image is refused with a message saying it is not a
//! PV kernel.

use crate::pvh::elf::Elf;
use crate::pvh::notes::{note_areas, string, Note, NoteArea, NoteFormatError};
use alloc::string::{String, ToString};
use core::fmt;
use vmm_glue::xen::elfnote::*;
use vmm_glue::xen::features::{
    feature_bit, feature_name, XENFEAT_DIRECT_MAPPED, XENFEAT_HIGHMEM_ASSIST,
    XENFEAT_MMU_PT_UPDATE_PRESERVE_AD, XENFEAT_PAE_PGDIR_ABOVE_4GB, XENFEAT_WRITABLE_PAGE_TABLES,
};

/// The features a kernel supports and requires (submap 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenFeatures {
    /// Bits of `XENFEAT_*` the kernel can use: the names in `FEATURES`
    /// (with or without `!`) and the `SUPPORTED_FEATURES` bitmap.
    pub supported: u32,
    /// Bits the kernel cannot run without: the `!name`s of `FEATURES`.
    pub required: u32,
}

/// The features a 64-bit PV domU may require of this hypervisor.
///
/// Xen's rule, from its tools: `xc_dom_parse_image` checks required ⊆
/// supported only, which a `!name` always satisfies; the PV builder then
/// refuses `!auto_translated_physmap` ("PV Autotranslate guests no longer
/// supported", `xg_dom_x86.c bootearly`) and a domU refuses `!dom0`
/// (`xc_dom_parse_elf_kernel`). Every other known requirement is accepted
/// and has no effect: in particular `!writable_page_tables`, which Linux
/// declares, no longer makes the builder enable anything (the guest turns
/// on `VMASST_TYPE_writable_pagetables` itself), and Xen does not report
/// `XENFEAT_writable_page_tables` to a PV guest.
///
/// Here a requirement is accepted when Xen's builder accepts it with no
/// effect and it is harmless for a PV guest (`writable_page_tables`,
/// `pae_pgdir_above_4gb`: a 64-bit guest's tables may be anywhere), or
/// when the hypervisor gives the feature to every 64-bit PV domU
/// (`mmu_pt_update_preserve_ad`, `highmem_assist`: the `mm` part
/// implements those operations; `direct_mapped`: the p2m is the
/// identity). Everything else is refused, by name: besides
/// `auto_translated_physmap` and `dom0` (refused by Xen too), HVM-only
/// features (`hvm_callback_vector`, `hvm_safe_pvclock`, `hvm_pirqs`),
/// features no modern Xen gives a PV guest (`writable_descriptor_tables`,
/// `supervisor_mode_kernel`) and those this hypervisor does not promise.
/// A kernel that says it cannot run without them is stopped at build time
/// rather than failing later where the cause is harder to see.
pub const PV_REQUIRABLE: u32 = (1 << XENFEAT_WRITABLE_PAGE_TABLES)
    | (1 << XENFEAT_PAE_PGDIR_ABOVE_4GB)
    | (1 << XENFEAT_MMU_PT_UPDATE_PRESERVE_AD)
    | (1 << XENFEAT_HIGHMEM_ASSIST)
    | (1 << XENFEAT_DIRECT_MAPPED);

/// An unknown `!name` in a `FEATURES` string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownFeature(pub String);

impl XenFeatures {
    /// Adds the features of a `FEATURES` string: names joined by `|`, a
    /// `!` before a name marking it required (and supported). An unknown
    /// required name is an error; an unknown plain name is ignored, as in
    /// libelf (`elf_xen_parse_features`). Names are those of
    /// `features.h`, so a name libelf's shorter table lacks is understood
    /// here and then checked like any other (see [`PV_REQUIRABLE`]).
    pub fn parse(&mut self, features: &str) -> Result<(), UnknownFeature> {
        for token in features.split('|') {
            match token.strip_prefix('!') {
                Some(name) => {
                    let bit = feature_bit(name).ok_or_else(|| UnknownFeature(name.to_string()))?;
                    self.supported |= 1 << bit;
                    self.required |= 1 << bit;
                }
                None => {
                    if let Some(bit) = feature_bit(token) {
                        self.supported |= 1 << bit;
                    }
                }
            }
        }
        Ok(())
    }

    /// The lowest required feature not in `offered`, if any.
    pub fn first_missing(&self, offered: u32) -> Option<u32> {
        let missing = self.required & !offered;
        (missing != 0).then(|| missing.trailing_zeros())
    }
}

/// What the Xen notes of a 64-bit PV kernel say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PvNotes<'a> {
    /// `ENTRY`: the virtual address the guest starts at.
    pub entry: u64,
    /// Where the `ENTRY` note that counts was found.
    pub entry_found_in: NoteArea,
    /// `VIRT_BASE`: the virtual address of pseudo-physical 0; default 0.
    pub virt_base: u64,
    /// `PADDR_OFFSET`: subtracted from an ELF `p_paddr` to get the
    /// pseudo-physical address; default 0.
    pub paddr_offset: u64,
    /// `HYPERCALL_PAGE`: the virtual address of the page to fill with
    /// hypercall stubs.
    pub hypercall_page: Option<u64>,
    /// `INIT_P2M`: where the kernel would like the p2m list mapped (read
    /// for the log; the builder maps it in the initial region instead).
    pub init_p2m: Option<u64>,
    /// `MOD_START_PFN` non-zero: the initrd may be left unmapped and
    /// given by pfn.
    pub mod_start_pfn: bool,
    /// `FEATURES` and `SUPPORTED_FEATURES`.
    pub features: XenFeatures,
    /// `GUEST_OS`, e.g. `linux`.
    pub guest_os: Option<&'a str>,
    /// `GUEST_VERSION`.
    pub guest_version: Option<&'a str>,
    /// `XEN_VERSION`, `xen-3.0`.
    pub xen_version: Option<&'a str>,
    /// `LOADER`, e.g. `generic`.
    pub loader: Option<&'a str>,
    /// `PAE_MODE` (meaningful for 32-bit kernels only).
    pub pae_mode: Option<&'a str>,
    /// `BSD_SYMTAB` is `yes`: the kernel would like its symbol table
    /// loaded after it (not done by this builder).
    pub bsd_symtab: bool,
    /// `HV_START_LOW` (meaningful for 32-bit kernels only).
    pub hv_start_low: Option<u64>,
    /// An `L1_MFN_VALID` note is present (its contents are not used).
    pub l1_mfn_valid: bool,
    /// `SUSPEND_CANCEL` non-zero.
    pub suspend_cancel: bool,
}

/// Why the Xen notes of an image do not make a usable 64-bit PV kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PvNoteError {
    /// A note area is malformed.
    Malformed {
        area: NoteArea,
        error: NoteFormatError,
    },
    /// A numeric note's descriptor is not 1, 2, 4 or 8 bytes.
    NumericSize {
        area: NoteArea,
        kind: u32,
        size: usize,
    },
    /// `FEATURES` requires a feature `features.h` does not name.
    UnknownRequiredFeature { area: NoteArea, name: String },
    /// No `ENTRY` note.
    NoEntry,
    /// Neither `LOADER` is `generic` nor `GUEST_OS` is `linux`.
    UnknownLoader {
        loader: Option<String>,
        guest_os: Option<String>,
    },
    /// `XEN_VERSION` is not `xen-3.0`.
    XenVersion(Option<String>),
    /// `PADDR_OFFSET` without `VIRT_BASE`.
    PaddrOffsetWithoutVirtBase,
    /// The kernel requires a feature a 64-bit PV domU does not get here.
    RequiredFeatureNotOffered { bit: u32 },
}

/// The `XEN_ELFNOTE_*` name of a note type, for messages.
pub fn note_name(kind: u32) -> &'static str {
    match kind {
        XEN_ELFNOTE_INFO => "XEN_ELFNOTE_INFO",
        XEN_ELFNOTE_ENTRY => "XEN_ELFNOTE_ENTRY",
        XEN_ELFNOTE_HYPERCALL_PAGE => "XEN_ELFNOTE_HYPERCALL_PAGE",
        XEN_ELFNOTE_VIRT_BASE => "XEN_ELFNOTE_VIRT_BASE",
        XEN_ELFNOTE_PADDR_OFFSET => "XEN_ELFNOTE_PADDR_OFFSET",
        XEN_ELFNOTE_XEN_VERSION => "XEN_ELFNOTE_XEN_VERSION",
        XEN_ELFNOTE_GUEST_OS => "XEN_ELFNOTE_GUEST_OS",
        XEN_ELFNOTE_GUEST_VERSION => "XEN_ELFNOTE_GUEST_VERSION",
        XEN_ELFNOTE_LOADER => "XEN_ELFNOTE_LOADER",
        XEN_ELFNOTE_PAE_MODE => "XEN_ELFNOTE_PAE_MODE",
        XEN_ELFNOTE_FEATURES => "XEN_ELFNOTE_FEATURES",
        XEN_ELFNOTE_BSD_SYMTAB => "XEN_ELFNOTE_BSD_SYMTAB",
        XEN_ELFNOTE_HV_START_LOW => "XEN_ELFNOTE_HV_START_LOW",
        XEN_ELFNOTE_L1_MFN_VALID => "XEN_ELFNOTE_L1_MFN_VALID",
        XEN_ELFNOTE_SUSPEND_CANCEL => "XEN_ELFNOTE_SUSPEND_CANCEL",
        XEN_ELFNOTE_INIT_P2M => "XEN_ELFNOTE_INIT_P2M",
        XEN_ELFNOTE_MOD_START_PFN => "XEN_ELFNOTE_MOD_START_PFN",
        XEN_ELFNOTE_SUPPORTED_FEATURES => "XEN_ELFNOTE_SUPPORTED_FEATURES",
        XEN_ELFNOTE_PHYS32_ENTRY => "XEN_ELFNOTE_PHYS32_ENTRY",
        XEN_ELFNOTE_PHYS32_RELOC => "XEN_ELFNOTE_PHYS32_RELOC",
        _ => "an unknown Xen note",
    }
}

fn quoted(s: &Option<String>) -> String {
    match s {
        Some(s) => alloc::format!("\"{s}\""),
        None => String::from("none"),
    }
}

impl fmt::Display for PvNoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed { area, error } => write!(f, "{area}: {error}"),
            Self::NumericSize { area, kind, size } => write!(
                f,
                "{area}: {} has a {size}-byte descriptor (expected 1, 2, 4 or 8)",
                note_name(*kind)
            ),
            Self::UnknownRequiredFeature { area, name } => write!(
                f,
                "{area}: XEN_ELFNOTE_FEATURES requires \"{name}\", which is no Xen feature"
            ),
            Self::NoEntry => {
                f.write_str("no XEN_ELFNOTE_ENTRY note: this image is not a PV kernel")
            }
            Self::UnknownLoader { loader, guest_os } => write!(
                f,
                "XEN_ELFNOTE_LOADER is {} and XEN_ELFNOTE_GUEST_OS is {}: a PV kernel must be \
                 built for the \"generic\" loader or be \"linux\"",
                quoted(loader),
                quoted(guest_os)
            ),
            Self::XenVersion(v) => write!(
                f,
                "XEN_ELFNOTE_XEN_VERSION is {}: a PV kernel must be built for \"xen-3.0\"",
                quoted(v)
            ),
            Self::PaddrOffsetWithoutVirtBase => {
                f.write_str("XEN_ELFNOTE_PADDR_OFFSET is set but XEN_ELFNOTE_VIRT_BASE is not")
            }
            Self::RequiredFeatureNotOffered { bit } => write!(
                f,
                "the kernel requires XENFEAT_{} (\"!{0}\" in XEN_ELFNOTE_FEATURES), which a \
                 64-bit PV domU does not get from this hypervisor",
                feature_name(*bit).unwrap_or("?")
            ),
        }
    }
}

/// A numeric descriptor: 1, 2, 4 or 8 bytes, little-endian
/// (libelf's `elf_note_numeric`).
fn numeric(area: NoteArea, note: &Note<'_>) -> Result<u64, PvNoteError> {
    let d = note.desc;
    match d.len() {
        1 | 2 | 4 | 8 => {
            let mut b = [0u8; 8];
            b[..d.len()].copy_from_slice(d);
            Ok(u64::from_le_bytes(b))
        }
        size => Err(PvNoteError::NumericSize {
            area,
            kind: note.kind,
            size,
        }),
    }
}

/// The notes as read so far: `None` means "no such note".
#[derive(Default)]
struct Found<'a> {
    entry: Option<(u64, NoteArea)>,
    virt_base: Option<u64>,
    paddr_offset: Option<u64>,
    hypercall_page: Option<u64>,
    init_p2m: Option<u64>,
    mod_start_pfn: bool,
    features: XenFeatures,
    guest_os: Option<&'a str>,
    guest_version: Option<&'a str>,
    xen_version: Option<&'a str>,
    loader: Option<&'a str>,
    pae_mode: Option<&'a str>,
    bsd_symtab: bool,
    hv_start_low: Option<u64>,
    l1_mfn_valid: bool,
    suspend_cancel: bool,
}

impl<'a> Found<'a> {
    fn apply(&mut self, area: NoteArea, note: &Note<'a>) -> Result<(), PvNoteError> {
        let num = || numeric(area, note);
        let text = string(note.desc);
        match note.kind {
            XEN_ELFNOTE_ENTRY => self.entry = Some((num()?, area)),
            XEN_ELFNOTE_VIRT_BASE => self.virt_base = Some(num()?),
            XEN_ELFNOTE_PADDR_OFFSET => self.paddr_offset = Some(num()?),
            XEN_ELFNOTE_HYPERCALL_PAGE => self.hypercall_page = Some(num()?),
            XEN_ELFNOTE_INIT_P2M => self.init_p2m = Some(num()?),
            XEN_ELFNOTE_MOD_START_PFN => self.mod_start_pfn = num()? != 0,
            XEN_ELFNOTE_HV_START_LOW => self.hv_start_low = Some(num()?),
            XEN_ELFNOTE_SUSPEND_CANCEL => self.suspend_cancel = num()? != 0,
            XEN_ELFNOTE_SUPPORTED_FEATURES => {
                // Submap 0 is the descriptor's first 32 bits.
                self.features.supported |= num()? as u32;
            }
            XEN_ELFNOTE_FEATURES => self.features.parse(text).map_err(|UnknownFeature(name)| {
                PvNoteError::UnknownRequiredFeature { area, name }
            })?,
            XEN_ELFNOTE_GUEST_OS => self.guest_os = Some(text),
            XEN_ELFNOTE_GUEST_VERSION => self.guest_version = Some(text),
            XEN_ELFNOTE_XEN_VERSION => self.xen_version = Some(text),
            XEN_ELFNOTE_LOADER => self.loader = Some(text),
            XEN_ELFNOTE_PAE_MODE => self.pae_mode = Some(text),
            XEN_ELFNOTE_BSD_SYMTAB => self.bsd_symtab = text == "yes",
            XEN_ELFNOTE_L1_MFN_VALID => self.l1_mfn_valid = true,
            _ => {}
        }
        Ok(())
    }
}

/// Reads the Xen notes of `elf` from the areas `pick` selects; how many
/// Xen notes there were.
fn read_areas<'a>(
    elf: &Elf<'a>,
    found: &mut Found<'a>,
    pick: impl Fn(NoteArea) -> bool,
) -> Result<usize, PvNoteError> {
    let mut count = 0;
    for (area, list) in note_areas(elf).filter(|(area, _)| pick(*area)) {
        for note in list {
            let note = note.map_err(|error| PvNoteError::Malformed { area, error })?;
            if note.name == XEN_ELFNOTE_NAME {
                found.apply(area, &note)?;
                count += 1;
            }
        }
    }
    Ok(count)
}

/// Reads and checks the Xen notes of a 64-bit PV kernel: an `ENTRY`, a
/// loader Xen loads (`LOADER` "generic" or `GUEST_OS` "linux"),
/// `XEN_VERSION` "xen-3.0" (libelf's `elf_xen_note_check`), no
/// `PADDR_OFFSET` without `VIRT_BASE`, and required features within
/// [`PV_REQUIRABLE`].
pub fn pv_notes<'a>(elf: &Elf<'a>) -> Result<PvNotes<'a>, PvNoteError> {
    let mut found = Found::default();
    let in_segments = read_areas(elf, &mut found, |area| match area {
        NoteArea::Segment(i) => elf.program_headers.get(i).is_some_and(|ph| ph.offset != 0),
        NoteArea::Section(_) => false,
    })?;
    if in_segments == 0 {
        read_areas(elf, &mut found, |area| matches!(area, NoteArea::Section(_)))?;
    }
    let (entry, entry_found_in) = found.entry.ok_or(PvNoteError::NoEntry)?;
    let generic = found.loader.is_some_and(|l| l.starts_with("generic"));
    let linux = found.guest_os.is_some_and(|o| o.starts_with("linux"));
    if !generic && !linux {
        return Err(PvNoteError::UnknownLoader {
            loader: found.loader.map(String::from),
            guest_os: found.guest_os.map(String::from),
        });
    }
    if !found.xen_version.is_some_and(|v| v.starts_with("xen-3.0")) {
        return Err(PvNoteError::XenVersion(found.xen_version.map(String::from)));
    }
    if found.paddr_offset.is_some() && found.virt_base.is_none() {
        return Err(PvNoteError::PaddrOffsetWithoutVirtBase);
    }
    if let Some(bit) = found.features.first_missing(PV_REQUIRABLE) {
        return Err(PvNoteError::RequiredFeatureNotOffered { bit });
    }
    Ok(PvNotes {
        entry,
        entry_found_in,
        virt_base: found.virt_base.unwrap_or(0),
        paddr_offset: found.paddr_offset.unwrap_or(0),
        hypercall_page: found.hypercall_page,
        init_p2m: found.init_p2m,
        mod_start_pfn: found.mod_start_pfn,
        features: found.features,
        guest_os: found.guest_os,
        guest_version: found.guest_version,
        xen_version: found.xen_version,
        loader: found.loader,
        pae_mode: found.pae_mode,
        bsd_symtab: found.bsd_symtab,
        hv_start_low: found.hv_start_low,
        l1_mfn_valid: found.l1_mfn_valid,
        suspend_cancel: found.suspend_cancel,
    })
}

#[cfg(test)]
mod tests;
