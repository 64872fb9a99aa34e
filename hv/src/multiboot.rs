//! The boot loader's information: multiboot1 (QEMU `-kernel`, GRUB
//! `multiboot`) and multiboot2 (GRUB `multiboot2`).
//!
//! Parsed into a [`BootInfo`] that needs no heap: the heap is built from
//! the memory map this produces.

use crate::memmap::{FixedList, Region, RegionKind};
use core::fmt;

/// Multiboot1 magic in EAX at entry.
pub const MB1_MAGIC: u32 = 0x2bad_b002;
/// Multiboot2 magic in EAX at entry.
pub const MB2_MAGIC: u32 = 0x36d7_6289;

/// Reads physical memory (identity-mapped in the hypervisor, a map of
/// buffers in tests).
pub trait PhysRead {
    /// `len` bytes at physical address `pa`, or `None` if not readable.
    fn read(&self, pa: u64, len: usize) -> Option<&[u8]>;
}

/// Which protocol booted us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Multiboot1,
    Multiboot2,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Multiboot1 => "multiboot1",
            Self::Multiboot2 => "multiboot2",
        })
    }
}

/// A boot module (guest kernel, ramdisk or configuration file).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Module<'a> {
    pub start: u64,
    pub end: u64,
    /// The module's command-line string (GRUB `module2 /boot/x name`).
    pub name: &'a str,
}

/// The most boot modules kept: 8 domains with a kernel, a ramdisk and a
/// configuration each need 24; more are counted in `modules_dropped` and
/// reported.
pub const MAX_MODULES: usize = 64;

/// What the boot loader told us.
#[derive(Clone, Debug)]
pub struct BootInfo<'a> {
    pub protocol: Protocol,
    pub cmdline: &'a str,
    pub loader: &'a str,
    pub memory: FixedList<Region, 128>,
    /// Memory-map entries that did not fit in `memory`.
    pub memory_dropped: usize,
    /// `memory` comes from the EFI memory map (multiboot2 tag 17), not the
    /// loader's basic map.
    pub memory_from_efi: bool,
    pub modules: FixedList<Module<'a>, MAX_MODULES>,
    pub modules_dropped: usize,
    /// A copy of the RSDP handed over by a multiboot2 loader.
    pub rsdp: Option<&'a [u8]>,
    /// The physical range of the information structure itself.
    pub info: (u64, u64),
}

/// Why the boot information could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootInfoError {
    /// EAX held neither multiboot magic.
    BadMagic(u32),
    /// A structure the loader pointed at is not readable.
    Unreadable { what: &'static str, addr: u64 },
    /// A structure is malformed.
    Malformed { what: &'static str, offset: usize },
    /// No memory map at all.
    NoMemoryMap,
}

impl fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic(m) => write!(
                f,
                "boot magic {m:#x} is neither multiboot1 ({MB1_MAGIC:#x}) nor multiboot2 \
                 ({MB2_MAGIC:#x}); boot hv with GRUB 'multiboot'/'multiboot2' or QEMU -kernel"
            ),
            Self::Unreadable { what, addr } => {
                write!(f, "the boot loader's {what} at {addr:#x} is not readable")
            }
            Self::Malformed { what, offset } => {
                write!(
                    f,
                    "the boot loader's {what} is malformed at offset {offset:#x}"
                )
            }
            Self::NoMemoryMap => f.write_str("the boot loader passed no memory map"),
        }
    }
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// The valid UTF-8 prefix of `b` up to its first NUL.
fn text(b: &[u8]) -> &str {
    let b = b.split(|&c| c == 0).next().unwrap_or(b);
    match core::str::from_utf8(b) {
        Ok(s) => s,
        Err(e) => core::str::from_utf8(&b[..e.valid_up_to()]).unwrap_or(""),
    }
}

/// A NUL-terminated string at `pa` (at most 4 KiB).
fn cstr<'a>(mem: &'a impl PhysRead, pa: u64, what: &'static str) -> Result<&'a str, BootInfoError> {
    let mut len = 0;
    while len < 4096 {
        match mem.read(pa + len as u64, 1) {
            Some([0]) => break,
            Some(_) => len += 1,
            None if len > 0 => break,
            None => return Err(BootInfoError::Unreadable { what, addr: pa }),
        }
    }
    let bytes = mem
        .read(pa, len)
        .ok_or(BootInfoError::Unreadable { what, addr: pa })?;
    Ok(text(bytes))
}

fn kind(t: u32) -> RegionKind {
    match t {
        1 => RegionKind::Usable,
        3 => RegionKind::AcpiReclaimable,
        4 => RegionKind::AcpiNvs,
        5 => RegionKind::Bad,
        2 => RegionKind::Reserved,
        // GRUB's GRUB_MEMORY_CODE: what it makes of EFI runtime services
        // code.
        20 => RegionKind::EfiRuntime,
        other => RegionKind::Other(other),
    }
}

/// What an EFI memory descriptor's type is once boot services have been
/// exited (the boot loader did, before handing over): loader and boot
/// services memory is free like conventional memory (the boot information
/// and modules in it are kept out of use separately).
fn efi_kind(t: u32) -> RegionKind {
    match t {
        1..=4 | 7 => RegionKind::Usable,
        5 | 6 => RegionKind::EfiRuntime,
        8 => RegionKind::Bad,
        9 => RegionKind::AcpiReclaimable,
        10 => RegionKind::AcpiNvs,
        // Reserved, MMIO, MMIO port space, PAL code, persistent, unaccepted
        // and anything newer.
        _ => RegionKind::Reserved,
    }
}

/// The regions of an EFI memory map tag's body (descriptor size, version,
/// then descriptors: type, pad, physical start, virtual start, pages,
/// attributes), adjacent descriptors of the same kind merged. `None` if
/// the descriptor size is too small to hold those fields.
fn efi_regions(body: &[u8]) -> Option<impl Iterator<Item = Region> + '_> {
    let size = u32_at(body, 0)? as usize;
    if size < 40 || body.len() < 8 {
        return None;
    }
    let mut descs = body[8..].chunks_exact(size).map(|d| Region {
        base: u64_at(d, 8).unwrap_or(0),
        len: u64_at(d, 24).unwrap_or(0).saturating_mul(4096),
        kind: efi_kind(u32_at(d, 0).unwrap_or(0)),
    });
    let mut pending = descs.next();
    Some(core::iter::from_fn(move || {
        let mut cur = pending.take()?;
        for d in descs.by_ref() {
            if d.kind == cur.kind && cur.base.checked_add(cur.len) == Some(d.base) {
                // Saturated like one descriptor's length: the pages of
                // both may reach past the end of the address space.
                cur.len = cur.len.saturating_add(d.len);
            } else {
                pending = Some(d);
                break;
            }
        }
        Some(cur)
    }))
}

/// Parses the information structure at `info_pa` handed over with `magic`.
pub fn parse<'a>(
    magic: u32,
    info_pa: u64,
    mem: &'a impl PhysRead,
) -> Result<BootInfo<'a>, BootInfoError> {
    match magic {
        MB1_MAGIC => parse_mb1(info_pa, mem),
        MB2_MAGIC => parse_mb2(info_pa, mem),
        other => Err(BootInfoError::BadMagic(other)),
    }
}

fn empty(protocol: Protocol, info: (u64, u64)) -> BootInfo<'static> {
    BootInfo {
        protocol,
        cmdline: "",
        loader: "",
        memory: FixedList::new(),
        memory_dropped: 0,
        memory_from_efi: false,
        modules: FixedList::new(),
        modules_dropped: 0,
        rsdp: None,
        info,
    }
}

fn parse_mb1<'a>(info_pa: u64, mem: &'a impl PhysRead) -> Result<BootInfo<'a>, BootInfoError> {
    const WHAT: &str = "multiboot1 information";
    let b = mem.read(info_pa, 88).ok_or(BootInfoError::Unreadable {
        what: WHAT,
        addr: info_pa,
    })?;
    let field = |off| u32_at(b, off).unwrap_or(0);
    let flags = field(0);
    let mut bi = empty(Protocol::Multiboot1, (info_pa, info_pa + 88));
    if flags & (1 << 2) != 0 {
        bi.cmdline = cstr(mem, u64::from(field(16)), "command line")?;
    }
    if flags & (1 << 9) != 0 {
        bi.loader = cstr(mem, u64::from(field(64)), "boot loader name").unwrap_or("");
    }
    if flags & (1 << 3) != 0 {
        let (count, addr) = (field(20) as usize, u64::from(field(24)));
        // More entries than this are not read (nor believed): counted.
        const READ_AT_MOST: usize = 4 * MAX_MODULES;
        bi.modules_dropped += count.saturating_sub(READ_AT_MOST);
        for i in 0..count.min(READ_AT_MOST) {
            let pa = addr + 16 * i as u64;
            let m = mem.read(pa, 16).ok_or(BootInfoError::Unreadable {
                what: "module list",
                addr: pa,
            })?;
            let name_pa = u64::from(u32_at(m, 8).unwrap_or(0));
            let module = Module {
                start: u64::from(u32_at(m, 0).unwrap_or(0)),
                end: u64::from(u32_at(m, 4).unwrap_or(0)),
                name: if name_pa == 0 {
                    ""
                } else {
                    cstr(mem, name_pa, "module name")?
                },
            };
            if bi.modules.push(module).is_err() {
                bi.modules_dropped += 1;
            }
        }
    }
    if flags & (1 << 6) != 0 {
        let (len, addr) = (field(44) as usize, u64::from(field(48)));
        let map = mem.read(addr, len).ok_or(BootInfoError::Unreadable {
            what: "memory map",
            addr,
        })?;
        let mut off = 0;
        while off + 24 <= map.len() {
            let size = u32_at(map, off).unwrap_or(0) as usize;
            if size < 20 {
                return Err(BootInfoError::Malformed {
                    what: "memory map",
                    offset: off,
                });
            }
            let region = Region {
                base: u64_at(map, off + 4).unwrap_or(0),
                len: u64_at(map, off + 12).unwrap_or(0),
                kind: kind(u32_at(map, off + 20).unwrap_or(0)),
            };
            if bi.memory.push(region).is_err() {
                bi.memory_dropped += 1;
            }
            off += size + 4;
        }
    } else if flags & 1 != 0 {
        // Only the basic lower/upper sizes: conventional memory and the
        // memory above 1 MiB.
        let _ = bi.memory.push(Region {
            base: 0,
            len: u64::from(field(4)) * 1024,
            kind: RegionKind::Usable,
        });
        let _ = bi.memory.push(Region {
            base: 0x10_0000,
            len: u64::from(field(8)) * 1024,
            kind: RegionKind::Usable,
        });
    }
    if bi.memory.is_empty() {
        return Err(BootInfoError::NoMemoryMap);
    }
    Ok(bi)
}

fn parse_mb2<'a>(info_pa: u64, mem: &'a impl PhysRead) -> Result<BootInfo<'a>, BootInfoError> {
    const WHAT: &str = "multiboot2 information";
    let head = mem.read(info_pa, 8).ok_or(BootInfoError::Unreadable {
        what: WHAT,
        addr: info_pa,
    })?;
    let total = u32_at(head, 0).unwrap_or(0) as usize;
    if !(16..=1 << 20).contains(&total) {
        return Err(BootInfoError::Malformed {
            what: WHAT,
            offset: 0,
        });
    }
    let b = mem.read(info_pa, total).ok_or(BootInfoError::Unreadable {
        what: WHAT,
        addr: info_pa,
    })?;
    let mut bi = empty(Protocol::Multiboot2, (info_pa, info_pa + total as u64));
    let mut efi_memory = FixedList::new();
    let mut efi_dropped = 0;
    let mut off = 8;
    while off + 8 <= b.len() {
        let ty = u32_at(b, off).unwrap_or(0);
        let size = u32_at(b, off + 4).unwrap_or(0) as usize;
        if size < 8 || off + size > b.len() {
            return Err(BootInfoError::Malformed {
                what: WHAT,
                offset: off,
            });
        }
        let body = &b[off + 8..off + size];
        match ty {
            0 => break,
            1 => bi.cmdline = text(body),
            2 => bi.loader = text(body),
            3 if body.len() >= 8 => {
                let module = Module {
                    start: u64::from(u32_at(body, 0).unwrap_or(0)),
                    end: u64::from(u32_at(body, 4).unwrap_or(0)),
                    name: text(&body[8..]),
                };
                if bi.modules.push(module).is_err() {
                    bi.modules_dropped += 1;
                }
            }
            6 if body.len() >= 8 => {
                let entry_size = u32_at(body, 0).unwrap_or(0) as usize;
                if entry_size < 20 {
                    return Err(BootInfoError::Malformed {
                        what: "memory map tag",
                        offset: off,
                    });
                }
                for e in body[8..].chunks_exact(entry_size) {
                    let region = Region {
                        base: u64_at(e, 0).unwrap_or(0),
                        len: u64_at(e, 8).unwrap_or(0),
                        kind: kind(u32_at(e, 16).unwrap_or(0)),
                    };
                    if bi.memory.push(region).is_err() {
                        bi.memory_dropped += 1;
                    }
                }
            }
            // The EFI memory map: the firmware's own types, where the
            // basic map (6) folds runtime data into "reserved".
            17 => {
                let regions = efi_regions(body).ok_or(BootInfoError::Malformed {
                    what: "EFI memory map tag",
                    offset: off,
                })?;
                efi_memory = FixedList::new();
                efi_dropped = 0;
                for r in regions {
                    if efi_memory.push(r).is_err() {
                        efi_dropped += 1;
                    }
                }
            }
            // ACPI 1.0 RSDP copy (14) and ACPI 2.0+ (15, preferred).
            14 if bi.rsdp.is_none() => bi.rsdp = Some(body),
            15 => bi.rsdp = Some(body),
            _ => {}
        }
        off += (size + 7) & !7;
    }
    if !efi_memory.is_empty() {
        bi.memory = efi_memory;
        bi.memory_dropped = efi_dropped;
        bi.memory_from_efi = true;
    }
    if bi.memory.is_empty() {
        return Err(BootInfoError::NoMemoryMap);
    }
    Ok(bi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Physical memory made of buffers at given addresses.
    #[derive(Default)]
    struct Mem(BTreeMap<u64, Vec<u8>>);

    impl PhysRead for Mem {
        fn read(&self, pa: u64, len: usize) -> Option<&[u8]> {
            let (base, buf) = self.0.range(..=pa).next_back()?;
            let off = usize::try_from(pa - base).ok()?;
            buf.get(off..off.checked_add(len)?)
        }
    }

    fn tag(ty: u32, body: &[u8]) -> Vec<u8> {
        let mut t = Vec::new();
        t.extend(ty.to_le_bytes());
        t.extend((8 + body.len() as u32).to_le_bytes());
        t.extend(body);
        while t.len() % 8 != 0 {
            t.push(0);
        }
        t
    }

    fn mb2(tags: &[Vec<u8>]) -> Vec<u8> {
        let mut b = vec![0u8; 8];
        for t in tags {
            b.extend(t);
        }
        b.extend(tag(0, &[]));
        let total = b.len() as u32;
        b[..4].copy_from_slice(&total.to_le_bytes());
        b
    }

    fn mmap_body(entries: &[(u64, u64, u32)]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend(24u32.to_le_bytes());
        body.extend(0u32.to_le_bytes());
        for (base, len, ty) in entries {
            body.extend(base.to_le_bytes());
            body.extend(len.to_le_bytes());
            body.extend(ty.to_le_bytes());
            body.extend(0u32.to_le_bytes());
        }
        body
    }

    #[test]
    fn multiboot2_tags_are_read() {
        let mut module = Vec::new();
        module.extend(0x20_0000u32.to_le_bytes());
        module.extend(0x20_1000u32.to_le_bytes());
        module.extend(b"guest.cfg\0");
        let info = mb2(&[
            tag(1, b"loglvl=debug pciback.hide=(00:03.0)\0"),
            tag(2, b"GRUB 2.06\0"),
            tag(3, &module),
            tag(
                6,
                &mmap_body(&[
                    (0, 0x9fc00, 1),
                    (0x10_0000, 0x1fe0_0000, 1),
                    (0xfffc_0000, 0x4_0000, 2),
                ]),
            ),
            tag(14, b"RSD PTR old"),
            tag(15, b"RSD PTR new"),
        ]);
        let mem = Mem([(0x9000, info)].into_iter().collect());
        let bi = parse(MB2_MAGIC, 0x9000, &mem).unwrap();
        assert_eq!(bi.protocol, Protocol::Multiboot2);
        assert_eq!(bi.cmdline, "loglvl=debug pciback.hide=(00:03.0)");
        assert_eq!(bi.loader, "GRUB 2.06");
        assert_eq!(
            bi.modules.as_slice(),
            [Module {
                start: 0x20_0000,
                end: 0x20_1000,
                name: "guest.cfg"
            }]
        );
        assert_eq!(bi.memory.len(), 3);
        assert_eq!(bi.memory.as_slice()[2].kind, RegionKind::Reserved);
        assert_eq!(bi.rsdp, Some(&b"RSD PTR new"[..]));
    }

    /// An EFI memory map tag body: descriptor size 48 (firmware may use
    /// more than the 40 bytes defined), version 1, then `(type, start,
    /// pages)` descriptors.
    fn efi_body(descs: &[(u32, u64, u64)]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(48u32.to_le_bytes());
        b.extend(1u32.to_le_bytes());
        for &(ty, start, pages) in descs {
            let mut d = [0u8; 48];
            d[0..4].copy_from_slice(&ty.to_le_bytes());
            d[8..16].copy_from_slice(&start.to_le_bytes());
            d[16..24].copy_from_slice(&0xdead_0000u64.to_le_bytes());
            d[24..32].copy_from_slice(&pages.to_le_bytes());
            b.extend(d);
        }
        b
    }

    #[test]
    fn the_efi_memory_map_replaces_the_basic_one_with_its_types_merged() {
        let info = mb2(&[
            tag(
                6,
                &mmap_body(&[(0, 0x9fc00, 1), (0x10_0000, 0x1000_0000, 1)]),
            ),
            tag(
                17,
                &efi_body(&[
                    (7, 0, 0xa0),             // conventional
                    (3, 0x10_0000, 0x100),    // boot services code: free now
                    (4, 0x20_0000, 0x100),    // boot services data: free now
                    (2, 0x30_0000, 0x10),     // loader data (modules kept apart)
                    (5, 0x31_0000, 0x10),     // runtime services code
                    (6, 0x32_0000, 0x10),     // runtime services data
                    (9, 0x33_0000, 0x2),      // ACPI reclaim
                    (10, 0x33_2000, 0x1),     // ACPI NVS
                    (11, 0xb000_0000, 0x100), // MMIO
                    (8, 0x4000_0000, 1),      // unusable
                ]),
            ),
        ]);
        let mem = Mem([(0x9000, info)].into_iter().collect());
        let bi = parse(MB2_MAGIC, 0x9000, &mem).unwrap();
        assert!(bi.memory_from_efi);
        let got: Vec<_> = bi
            .memory
            .as_slice()
            .iter()
            .map(|r| (r.base, r.len, r.kind))
            .collect();
        assert_eq!(
            got,
            [
                (0, 0xa_0000, RegionKind::Usable),
                (0x10_0000, 0x21_0000, RegionKind::Usable),
                (0x31_0000, 0x2_0000, RegionKind::EfiRuntime),
                (0x33_0000, 0x2000, RegionKind::AcpiReclaimable),
                (0x33_2000, 0x1000, RegionKind::AcpiNvs),
                (0xb000_0000, 0x10_0000, RegionKind::Reserved),
                (0x4000_0000, 0x1000, RegionKind::Bad),
            ]
        );
    }

    #[test]
    fn adjacent_efi_descriptors_reaching_past_the_address_space_merge_saturated() {
        // The second descriptor's pages end past 2^64: merged, the length
        // stops at the end of the address space (it overflowed; a fuzz
        // finding).
        let info = mb2(&[
            tag(6, &mmap_body(&[(0, 0x1000, 1)])),
            tag(
                17,
                &efi_body(&[(7, 0x1000, 1), (7, 0x2000, u64::MAX >> 12)]),
            ),
        ]);
        let mem = Mem([(0x9000, info)].into_iter().collect());
        let bi = parse(MB2_MAGIC, 0x9000, &mem).unwrap();
        let got: Vec<_> = (bi.memory.as_slice().iter())
            .map(|r| (r.base, r.len, r.kind))
            .collect();
        assert_eq!(got, [(0x1000, u64::MAX, RegionKind::Usable)]);
    }

    #[test]
    fn grub_type_20_is_efi_runtime_code_and_a_short_efi_descriptor_is_malformed() {
        let info = mb2(&[tag(6, &mmap_body(&[(0x10_0000, 0x1000, 20)]))]);
        let mem = Mem([(0x9000, info)].into_iter().collect());
        let bi = parse(MB2_MAGIC, 0x9000, &mem).unwrap();
        assert!(!bi.memory_from_efi);
        assert_eq!(bi.memory.as_slice()[0].kind, RegionKind::EfiRuntime);
        assert_eq!(RegionKind::EfiRuntime.to_string(), "EFI runtime services");

        let mut short = efi_body(&[(7, 0, 1)]);
        short[0..4].copy_from_slice(&24u32.to_le_bytes());
        let info = mb2(&[tag(6, &mmap_body(&[(0, 0x1000, 1)])), tag(17, &short)]);
        let mem = Mem([(0x9000, info)].into_iter().collect());
        assert!(matches!(
            parse(MB2_MAGIC, 0x9000, &mem),
            Err(BootInfoError::Malformed {
                what: "EFI memory map tag",
                ..
            })
        ));
    }

    #[test]
    fn modules_beyond_the_cap_are_counted_not_lost_silently() {
        let mut tags = vec![tag(6, &mmap_body(&[(0x10_0000, 0x1000_0000, 1)]))];
        for i in 0..MAX_MODULES as u32 + 6 {
            let mut m = Vec::new();
            m.extend((0x20_0000 + i * 0x1000).to_le_bytes());
            m.extend((0x20_1000 + i * 0x1000).to_le_bytes());
            m.extend(b"m.cfg\0");
            tags.push(tag(3, &m));
        }
        let mem = Mem([(0x9000, mb2(&tags))].into_iter().collect());
        let bi = parse(MB2_MAGIC, 0x9000, &mem).unwrap();
        assert_eq!(bi.modules.len(), MAX_MODULES);
        assert_eq!(bi.modules_dropped, 6);
        const { assert!(MAX_MODULES >= 24, "8 domains of kernel, ramdisk and config") };
    }

    #[test]
    fn multiboot1_fields_are_read() {
        let mut info = vec![0u8; 88];
        let flags: u32 = (1 << 2) | (1 << 3) | (1 << 6) | (1 << 9);
        info[0..4].copy_from_slice(&flags.to_le_bytes());
        info[16..20].copy_from_slice(&0x7000u32.to_le_bytes());
        info[20..24].copy_from_slice(&1u32.to_le_bytes());
        info[24..28].copy_from_slice(&0x7400u32.to_le_bytes());
        let mut mmap = Vec::new();
        for (base, len, ty) in [(0u64, 0x9fc00u64, 1u32), (0x10_0000, 0x100_0000, 1)] {
            mmap.extend(20u32.to_le_bytes());
            mmap.extend(base.to_le_bytes());
            mmap.extend(len.to_le_bytes());
            mmap.extend(ty.to_le_bytes());
        }
        info[44..48].copy_from_slice(&(mmap.len() as u32).to_le_bytes());
        info[48..52].copy_from_slice(&0x7800u32.to_le_bytes());
        info[64..68].copy_from_slice(&0x7c00u32.to_le_bytes());
        let mut modlist = Vec::new();
        modlist.extend(0x30_0000u32.to_le_bytes());
        modlist.extend(0x30_2000u32.to_le_bytes());
        modlist.extend(0x7500u32.to_le_bytes());
        modlist.extend(0u32.to_le_bytes());
        let mem = Mem([
            (0x6000, info),
            (0x7000, b"on_idle=exit\0".to_vec()),
            (0x7400, modlist),
            (0x7500, b"guest.elf\0".to_vec()),
            (0x7800, mmap),
            (0x7c00, b"qemu\0".to_vec()),
        ]
        .into_iter()
        .collect());
        let bi = parse(MB1_MAGIC, 0x6000, &mem).unwrap();
        assert_eq!(bi.protocol, Protocol::Multiboot1);
        assert_eq!(bi.cmdline, "on_idle=exit");
        assert_eq!(bi.loader, "qemu");
        assert_eq!(bi.modules.as_slice()[0].name, "guest.elf");
        assert_eq!(bi.memory.len(), 2);
        assert_eq!(
            bi.memory.as_slice()[1],
            Region {
                base: 0x10_0000,
                len: 0x100_0000,
                kind: RegionKind::Usable
            }
        );
    }

    #[test]
    fn wrong_magic_is_reported() {
        let mem = Mem::default();
        let err = parse(0x1234, 0, &mem).unwrap_err();
        assert_eq!(err, BootInfoError::BadMagic(0x1234));
        assert!(err.to_string().contains("GRUB"));
    }

    #[test]
    fn truncated_tag_is_malformed_not_a_panic() {
        let mut info = mb2(&[tag(1, b"x\0")]);
        info[12..16].copy_from_slice(&0x1000u32.to_le_bytes()); // tag size past the end
        let mem = Mem([(0x9000, info)].into_iter().collect());
        assert!(matches!(
            parse(MB2_MAGIC, 0x9000, &mem),
            Err(BootInfoError::Malformed { .. })
        ));
    }

    #[test]
    fn missing_memory_map_is_an_error() {
        let info = mb2(&[tag(1, b"x\0")]);
        let mem = Mem([(0x9000, info)].into_iter().collect());
        assert_eq!(
            parse(MB2_MAGIC, 0x9000, &mem).unwrap_err(),
            BootInfoError::NoMemoryMap
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            let mut b = Vec::new();
            for _ in 0..256 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b.push(x as u8);
            }
            let size = (x % 300) as u32;
            b[..4].copy_from_slice(&size.to_le_bytes());
            let mem = Mem([(0x1000, b)].into_iter().collect());
            let _ = parse(MB2_MAGIC, 0x1000, &mem);
            let _ = parse(MB1_MAGIC, 0x1000, &mem);
        }
    }
}
