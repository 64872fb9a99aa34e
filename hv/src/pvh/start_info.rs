//! The start-of-day blob a PVH guest finds through `ebx`.
//!
//! One contiguous blob at `base_gpa`, each part 8-byte aligned:
//!
//! ```text
//! base_gpa  hvm_start_info (56 bytes)
//!           hvm_modlist_entry[nr_modules]
//!           hvm_memmap_table_entry[memmap_entries]
//!           command line, NUL-terminated
//!           module command lines, NUL-terminated
//! ```
//!
//! An empty command line or an empty list is given as address 0 ("not
//! present" in the ABI).

use super::layout::{FOUR_GIB, START_INFO_BYTES};
use crate::memmap::{Region, RegionKind};
use alloc::vec::Vec;
use core::fmt;
use vmm_glue::xen::start_info::{
    HvmMemmapTableEntry, HvmModlistEntry, HvmStartInfo, XEN_HVM_MEMMAP_TYPE_ACPI,
    XEN_HVM_MEMMAP_TYPE_NVS, XEN_HVM_MEMMAP_TYPE_RAM, XEN_HVM_MEMMAP_TYPE_RESERVED,
    XEN_HVM_MEMMAP_TYPE_UNUSABLE, XEN_HVM_START_INFO_VERSION, XEN_HVM_START_MAGIC_VALUE,
};

/// The longest command line, NUL excluded.
pub const MAX_CMDLINE: usize = 4096;

/// Which command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmdline {
    Kernel,
    Module(usize),
}

impl fmt::Display for Cmdline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Kernel => f.write_str("the kernel command line"),
            Self::Module(i) => write!(f, "the command line of module {i}"),
        }
    }
}

/// Why the start-of-day blob cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartInfoError {
    /// A command line is longer than [`MAX_CMDLINE`].
    CmdlineTooLong { which: Cmdline, len: usize },
    /// A command line contains a NUL byte.
    NulInCmdline { which: Cmdline },
    /// The blob is larger than its [`START_INFO_BYTES`] area.
    TooLarge { len: usize },
    /// `base_gpa` is not 8-byte aligned.
    Misaligned { base_gpa: u64 },
    /// The blob would reach above 4 GiB (the guest reads it with paging off).
    Above4G { base_gpa: u64, len: usize },
}

impl fmt::Display for StartInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::CmdlineTooLong { which, len } => write!(
                f,
                "{which} is {len} bytes long; at most {MAX_CMDLINE} are allowed"
            ),
            Self::NulInCmdline { which } => write!(f, "{which} contains a NUL byte"),
            Self::TooLarge { len } => write!(
                f,
                "the start info, module list, memory map and command lines take {len} bytes; \
                 at most {START_INFO_BYTES} fit"
            ),
            Self::Misaligned { base_gpa } => {
                write!(f, "start info address {base_gpa:#x} is not 8-byte aligned")
            }
            Self::Above4G { base_gpa, len } => write!(
                f,
                "start info at {base_gpa:#x} ({len} bytes) would reach above 4 GiB"
            ),
        }
    }
}

/// The `hvm_memmap_table_entry` type of an e820 kind.
pub fn memmap_type(kind: RegionKind) -> u32 {
    match kind {
        RegionKind::Usable => XEN_HVM_MEMMAP_TYPE_RAM,
        RegionKind::Reserved | RegionKind::EfiRuntime => XEN_HVM_MEMMAP_TYPE_RESERVED,
        RegionKind::AcpiReclaimable => XEN_HVM_MEMMAP_TYPE_ACPI,
        RegionKind::AcpiNvs => XEN_HVM_MEMMAP_TYPE_NVS,
        RegionKind::Bad => XEN_HVM_MEMMAP_TYPE_UNUSABLE,
        RegionKind::Other(t) => t,
    }
}

fn check_cmdline(s: &str, which: Cmdline) -> Result<(), StartInfoError> {
    if s.len() > MAX_CMDLINE {
        return Err(StartInfoError::CmdlineTooLong {
            which,
            len: s.len(),
        });
    }
    if s.bytes().any(|b| b == 0) {
        return Err(StartInfoError::NulInCmdline { which });
    }
    Ok(())
}

fn pad8(v: &mut Vec<u8>) {
    v.resize(v.len().next_multiple_of(8), 0);
}

/// Builds the start-of-day blob to be written at `base_gpa`: the
/// `hvm_start_info` (version 1) for a guest with command line `cmdline`,
/// `modules` as (address, size, command line), memory map `memmap` and the
/// RSDP at `rsdp_gpa` (0: none). The blob and the address of the
/// `hvm_start_info` (the guest's `ebx`).
pub fn build_start_info(
    base_gpa: u64,
    cmdline: &str,
    modules: &[(u64, u64, &str)],
    memmap: &[Region],
    rsdp_gpa: u64,
) -> Result<(Vec<u8>, u64), StartInfoError> {
    if !base_gpa.is_multiple_of(8) {
        return Err(StartInfoError::Misaligned { base_gpa });
    }
    check_cmdline(cmdline, Cmdline::Kernel)?;
    for (i, (_, _, c)) in modules.iter().enumerate() {
        check_cmdline(c, Cmdline::Module(i))?;
    }
    // Sizes first: no allocation for oversized input.
    let strings: usize = core::iter::once(cmdline)
        .chain(modules.iter().map(|m| m.2))
        .filter(|s| !s.is_empty())
        .map(|s| (s.len() + 1).next_multiple_of(8))
        .sum();
    let len = modules
        .len()
        .saturating_mul(HvmModlistEntry::SIZE)
        .saturating_add(memmap.len().saturating_mul(HvmMemmapTableEntry::SIZE))
        .saturating_add(HvmStartInfo::SIZE)
        .saturating_add(strings);
    if len as u64 > START_INFO_BYTES {
        return Err(StartInfoError::TooLarge { len });
    }
    if base_gpa.saturating_add(len as u64) > FOUR_GIB {
        return Err(StartInfoError::Above4G { base_gpa, len });
    }

    // Offsets inside the blob; every part is a multiple of 8 bytes long.
    let modlist_off = HvmStartInfo::SIZE;
    let memmap_off = modlist_off + modules.len() * HvmModlistEntry::SIZE;
    let strings_off = memmap_off + memmap.len() * HvmMemmapTableEntry::SIZE;
    let gpa = |off: usize| base_gpa + off as u64;
    let mut strings = Vec::with_capacity(len - strings_off);
    let mut place = |s: &str| {
        if s.is_empty() {
            return 0;
        }
        let at = gpa(strings_off + strings.len());
        strings.extend_from_slice(s.as_bytes());
        strings.push(0);
        pad8(&mut strings);
        at
    };
    let cmdline_paddr = place(cmdline);
    let module_cmdlines: Vec<u64> = modules.iter().map(|m| place(m.2)).collect();

    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let info = HvmStartInfo {
        magic: XEN_HVM_START_MAGIC_VALUE,
        version: XEN_HVM_START_INFO_VERSION,
        flags: 0,
        nr_modules: count(modules.len()),
        modlist_paddr: if modules.is_empty() {
            0
        } else {
            gpa(modlist_off)
        },
        cmdline_paddr,
        rsdp_paddr: rsdp_gpa,
        memmap_paddr: if memmap.is_empty() {
            0
        } else {
            gpa(memmap_off)
        },
        memmap_entries: count(memmap.len()),
        reserved: 0,
    };
    let mut blob = Vec::with_capacity(len);
    blob.extend_from_slice(&info.to_bytes());
    for (&(paddr, size, _), &cmdline_paddr) in modules.iter().zip(&module_cmdlines) {
        let entry = HvmModlistEntry {
            paddr,
            size,
            cmdline_paddr,
            reserved: 0,
        };
        blob.extend_from_slice(&entry.to_bytes());
    }
    for r in memmap {
        let entry = HvmMemmapTableEntry {
            addr: r.base,
            size: r.len,
            type_: memmap_type(r.kind),
            reserved: 0,
        };
        blob.extend_from_slice(&entry.to_bytes());
    }
    blob.extend_from_slice(&strings);
    Ok((blob, base_gpa))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::{String, ToString};

    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
    }

    fn u64_at(b: &[u8], off: usize) -> u64 {
        u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
    }

    /// The NUL-terminated string at guest address `gpa` of a blob at `base`.
    fn str_at(blob: &[u8], base: u64, gpa: u64) -> &str {
        let s = &blob[(gpa - base) as usize..];
        let end = s.iter().position(|&b| b == 0).expect("NUL-terminated");
        core::str::from_utf8(&s[..end]).unwrap()
    }

    fn region(base: u64, len: u64, kind: RegionKind) -> Region {
        Region { base, len, kind }
    }

    const BASE: u64 = 0x403_A000;

    #[test]
    fn blob_fields_sit_at_the_documented_offsets() {
        let memmap = [
            region(0, 0xA_0000, RegionKind::Usable),
            region(0xA_0000, 0x6_0000, RegionKind::Reserved),
            region(0x10_0000, 0x3F3_A000, RegionKind::Usable),
            region(0xE_0000, 0x1000, RegionKind::AcpiReclaimable),
            region(0xF_0000, 0x1000, RegionKind::AcpiNvs),
            region(0x500_0000, 0x1000, RegionKind::Bad),
            region(0x600_0000, 0x1000, RegionKind::Other(7)),
        ];
        let modules = [
            (0x200_0000, 0x12_3456, "initrd.img"),
            (0x230_0000, 0x1000, ""),
        ];
        let (blob, si) = build_start_info(
            BASE,
            "console=hvc0 earlyprintk=xen",
            &modules,
            &memmap,
            0xE_0000,
        )
        .unwrap();
        assert_eq!(si, BASE);
        assert_eq!(blob.len() % 8, 0);
        // hvm_start_info
        assert_eq!(u32_at(&blob, 0), 0x336e_c578, "magic");
        assert_eq!(u32_at(&blob, 4), 1, "version");
        assert_eq!(u32_at(&blob, 8), 0, "flags");
        assert_eq!(u32_at(&blob, 12), 2, "nr_modules");
        let modlist = u64_at(&blob, 16);
        let cmdline = u64_at(&blob, 24);
        assert_eq!(u64_at(&blob, 32), 0xE_0000, "rsdp_paddr");
        let memmap_paddr = u64_at(&blob, 40);
        assert_eq!(u32_at(&blob, 48), 7, "memmap_entries");
        assert_eq!(u32_at(&blob, 52), 0, "reserved");
        // Order and alignment: start info, module list, memory map, strings.
        assert_eq!(modlist, BASE + 56);
        assert_eq!(memmap_paddr, modlist + 2 * 32);
        assert_eq!(cmdline, memmap_paddr + 7 * 24);
        assert_eq!(cmdline % 8, 0);
        assert_eq!(str_at(&blob, BASE, cmdline), "console=hvc0 earlyprintk=xen");
        // hvm_modlist_entry
        let m = (modlist - BASE) as usize;
        assert_eq!(u64_at(&blob, m), 0x200_0000);
        assert_eq!(u64_at(&blob, m + 8), 0x12_3456);
        let m0_cmdline = u64_at(&blob, m + 16);
        assert_eq!(m0_cmdline % 8, 0);
        assert!(m0_cmdline > cmdline);
        assert_eq!(str_at(&blob, BASE, m0_cmdline), "initrd.img");
        assert_eq!(u64_at(&blob, m + 24), 0);
        assert_eq!(u64_at(&blob, m + 32), 0x230_0000);
        assert_eq!(u64_at(&blob, m + 40), 0x1000);
        assert_eq!(u64_at(&blob, m + 48), 0, "empty command line: not present");
        // hvm_memmap_table_entry
        let e = (memmap_paddr - BASE) as usize;
        let types: Vec<u32> = (0..7).map(|i| u32_at(&blob, e + i * 24 + 16)).collect();
        assert_eq!(types, [1, 2, 1, 3, 4, 5, 7]);
        assert_eq!(u64_at(&blob, e + 2 * 24), 0x10_0000);
        assert_eq!(u64_at(&blob, e + 2 * 24 + 8), 0x3F3_A000);
        assert!((0..7).all(|i| u32_at(&blob, e + i * 24 + 20) == 0));
        assert!(blob.len() as u64 <= START_INFO_BYTES);
    }

    #[test]
    fn absent_parts_are_address_zero() {
        let (blob, _) = build_start_info(BASE, "", &[], &[], 0).unwrap();
        assert_eq!(blob.len(), 56);
        let info = HvmStartInfo::from_bytes(blob[..56].try_into().unwrap());
        assert_eq!(
            (
                info.nr_modules,
                info.modlist_paddr,
                info.cmdline_paddr,
                info.memmap_paddr,
                info.memmap_entries
            ),
            (0, 0, 0, 0, 0)
        );
    }

    #[test]
    fn command_lines_up_to_4k_are_accepted_and_longer_ones_are_errors() {
        let max = "x".repeat(MAX_CMDLINE);
        let (blob, _) = build_start_info(BASE, &max, &[], &[], 0).unwrap();
        assert_eq!(blob.len(), 56 + (MAX_CMDLINE + 8));
        assert_eq!(blob[56 + MAX_CMDLINE], 0);
        let long: String = "x".repeat(MAX_CMDLINE + 1);
        let err = build_start_info(BASE, &long, &[], &[], 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the kernel command line is 4097 bytes long; at most 4096 are allowed"
        );
        assert_eq!(
            build_start_info(BASE, "", &[(0x200_0000, 1, &long)], &[], 0),
            Err(StartInfoError::CmdlineTooLong {
                which: Cmdline::Module(0),
                len: 4097
            })
        );
        assert_eq!(
            build_start_info(BASE, "a\0b", &[], &[], 0),
            Err(StartInfoError::NulInCmdline {
                which: Cmdline::Kernel
            })
        );
    }

    #[test]
    fn a_blob_larger_than_its_area_is_an_error() {
        let memmap = [region(0x10_0000, 0x1000, RegionKind::Usable); 700];
        assert_eq!(
            build_start_info(BASE, "", &[], &memmap, 0),
            Err(StartInfoError::TooLarge { len: 56 + 700 * 24 })
        );
        let many = "y".repeat(MAX_CMDLINE);
        let modules = [(0x200_0000, 1, many.as_str()); 4];
        assert!(matches!(
            build_start_info(BASE, &many, &modules, &[], 0),
            Err(StartInfoError::TooLarge { .. })
        ));
    }

    #[test]
    fn misaligned_or_high_base_is_an_error() {
        assert_eq!(
            build_start_info(BASE + 4, "", &[], &[], 0),
            Err(StartInfoError::Misaligned { base_gpa: BASE + 4 })
        );
        assert_eq!(
            build_start_info(FOUR_GIB - 32, "", &[], &[], 0),
            Err(StartInfoError::Above4G {
                base_gpa: FOUR_GIB - 32,
                len: 56
            })
        );
        assert!(build_start_info(FOUR_GIB - 56, "", &[], &[], 0).is_ok());
    }
}
