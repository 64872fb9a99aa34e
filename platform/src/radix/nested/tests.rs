//! The nested formats' entries bit for bit, and the builder's behaviour
//! on them: round trips, splitting, refusing occupied slots, freeing.

use super::*;
use crate::iommu::testmem::FakeMem;
use crate::radix::{Access, EntryFormat, Radix, TableMemory};

/// The entries a format must produce (the low bits; the address is ORed
/// in), written out from the manuals rather than from the code.
struct Want {
    /// A 4 KiB RAM leaf.
    ram: u64,
    /// A 2 MiB RAM leaf.
    ram_2m: u64,
    /// A read-only 4 KiB leaf.
    ro: u64,
    /// A read-only 2 MiB leaf.
    ro_2m: u64,
    /// A 4 KiB device-memory leaf.
    mmio: u64,
    /// A pointer to a table.
    table: u64,
}

/// NPT: P 0, RW 1, U/S 2, PWT 3, PCD 4, PS 7.
const NPT_BITS: Want = Want {
    ram: 0b111,
    ram_2m: 0b1000_0111,
    ro: 0b101,
    ro_2m: 0b1000_0101,
    mmio: 0b1_1111,
    table: 0b111,
};

/// EPT: R 0, W 1, X 2, memory type 5:3 (6 = WB, 0 = UC), PS 7.
const EPT_BITS: Want = Want {
    ram: 0b11_0111,
    ram_2m: 0b1011_0111,
    ro: 0b11_0101,
    ro_2m: 0b1011_0101,
    mmio: 0b11,
    table: 0b111,
};

const MIB2: u64 = 0x20_0000;

/// The entry for `gpa` at `level`, found by walking the tables with the
/// manuals' layout (bits 51:12 of each entry, no format code).
fn entry(mem: &mut FakeMem, root: u64, gpa: u64, level: u32) -> u64 {
    let mut table = root;
    for l in (level..=4).rev() {
        let e = mem.read64(table + ((gpa >> (12 + 9 * (l - 1))) & 511) * 8);
        if l == level {
            return e;
        }
        table = e & 0x000f_ffff_ffff_f000;
    }
    unreachable!()
}

/// The table a level-`level + 1` entry points at, checking its bits.
fn table_below(mem: &mut FakeMem, root: u64, gpa: u64, level: u32, want: &Want) -> u64 {
    let e = entry(mem, root, gpa, level + 1);
    assert_eq!(
        e & 0xfff,
        want.table,
        "table pointer at level {}",
        level + 1
    );
    assert_eq!(e >> 52, 0);
    e & !0xfff
}

fn entry_bits(format: &'static EntryFormat, want: &Want) {
    let mut mem = FakeMem::new();
    let mut t = Radix::new(&mut mem, SHAPE, format).unwrap();
    let root = t.root();
    // RAM: a 2 MiB chunk and a 4 KiB page; read-only 4 KiB and 2 MiB;
    // device memory.
    t.map_as(&mut mem, MIB2, 0x4000_0000, MIB2, Access::ReadWrite)
        .unwrap();
    assert!(t
        .map_free(&mut mem, 0x10_0000, 0x5123_4000, Access::ReadWrite)
        .unwrap());
    assert!(t
        .map_free(&mut mem, 0x10_1000, 0x5555_5000, Access::ReadOnly)
        .unwrap());
    t.map_as(&mut mem, 0x80_0000, 0x6000_0000, MIB2, Access::ReadOnly)
        .unwrap();
    assert!(t
        .map_free(&mut mem, 0xfe00_0000, 0xf000_1000, Access::Device)
        .unwrap());

    assert_eq!(entry(&mut mem, root, MIB2, 2), 0x4000_0000 | want.ram_2m);
    assert_eq!(entry(&mut mem, root, 0x10_0000, 1), 0x5123_4000 | want.ram);
    assert_eq!(entry(&mut mem, root, 0x10_1000, 1), 0x5555_5000 | want.ro);
    assert_eq!(
        entry(&mut mem, root, 0x80_0000, 2),
        0x6000_0000 | want.ro_2m
    );
    assert_eq!(
        entry(&mut mem, root, 0xfe00_0000, 1),
        0xf000_1000 | want.mmio
    );
    // Every table pointer on the way, at every level.
    for gpa in [MIB2, 0x10_0000, 0xfe00_0000] {
        table_below(&mut mem, root, gpa, 3, want);
        table_below(&mut mem, root, gpa, 2, want);
    }
    table_below(&mut mem, root, 0x10_0000, 1, want);
    table_below(&mut mem, root, 0xfe00_0000, 1, want);
    // Nothing else is mapped.
    assert_eq!(entry(&mut mem, root, 0x40_0000, 2), 0);
    assert_eq!(entry(&mut mem, root, 0x10_2000, 1), 0);
    t.destroy(&mut mem);
}

#[test]
fn npt_entry_bits() {
    entry_bits(&NPT, &NPT_BITS);
}

#[test]
fn ept_entry_bits() {
    entry_bits(&EPT, &EPT_BITS);
}

#[test]
fn ept_pointer_is_write_back_four_levels() {
    assert_eq!(ept_pointer(0x1234_5000), 0x1234_501e);
}

fn round_trip(format: &'static EntryFormat) {
    let mut mem = FakeMem::new();
    let mut t = Radix::new(&mut mem, SHAPE, format).unwrap();
    // Two RAM chunks, a read-only page, a device page.
    t.map_as(&mut mem, 0, 0x4000_0000, 2 * MIB2, Access::ReadWrite)
        .unwrap();
    assert!(t
        .map_free(&mut mem, 0x80_3000, 0x7000_0000, Access::ReadOnly)
        .unwrap());
    assert!(t
        .map_free(&mut mem, 0x1_0000_0000, 0xf000_0000, Access::Device)
        .unwrap());
    for gpa in (0..2 * MIB2).step_by(0x1_1000) {
        assert_eq!(
            t.translate(&mut mem, gpa + 0x123),
            Some((0x4000_0000 + gpa + 0x123, true))
        );
    }
    assert_eq!(t.translate(&mut mem, 0x80_3008), Some((0x7000_0008, false)));
    assert_eq!(
        t.translate(&mut mem, 0x1_0000_0ff8),
        Some((0xf000_0ff8, true))
    );
    assert_eq!(t.translate(&mut mem, 2 * MIB2), None);
    assert_eq!(t.translate(&mut mem, 0x80_2000), None);

    // Unmapping: the page goes, its neighbours stay.
    t.unmap(&mut mem, 0x80_3000, 0x1000).unwrap();
    t.unmap(&mut mem, 0x1_0000_0000, 0x1000).unwrap();
    t.unmap(&mut mem, MIB2, MIB2).unwrap();
    assert_eq!(t.translate(&mut mem, 0x80_3000), None);
    assert_eq!(t.translate(&mut mem, 0x1_0000_0000), None);
    assert_eq!(t.translate(&mut mem, MIB2), None);
    assert_eq!(t.translate(&mut mem, MIB2 - 1), Some((0x401f_ffff, true)));
    // Emptied tables are kept (nothing retired) and mapping again works.
    assert_eq!(t.retired(), 0);
    assert!(t
        .map_free(&mut mem, 0x80_3000, 0x7000_1000, Access::ReadWrite)
        .unwrap());
    assert_eq!(t.translate(&mut mem, 0x80_3000), Some((0x7000_1000, true)));
    t.destroy(&mut mem);
    assert_eq!(mem.live(), 0);
}

#[test]
fn npt_round_trip() {
    round_trip(&NPT);
}

#[test]
fn ept_round_trip() {
    round_trip(&EPT);
}

/// Unmapping one page of a 2 MiB leaf splits it into 4 KiB leaves with
/// the same rights and memory type.
fn split(format: &'static EntryFormat, want: &Want) {
    for (access, leaf, large) in [
        (Access::ReadWrite, want.ram, want.ram_2m),
        (Access::ReadOnly, want.ro, want.ro_2m),
    ] {
        let mut mem = FakeMem::new();
        let mut t = Radix::new(&mut mem, SHAPE, format).unwrap();
        let root = t.root();
        t.map_as(&mut mem, 0x4000_0000, 0x8000_0000, MIB2, access)
            .unwrap();
        assert_eq!(entry(&mut mem, root, 0x4000_0000, 2), 0x8000_0000 | large);
        t.unmap(&mut mem, 0x4000_5000, 0x1000).unwrap();
        let pt = table_below(&mut mem, root, 0x4000_0000, 1, want);
        for i in 0..512 {
            let e = mem.read64(pt + i * 8);
            if i == 5 {
                assert_eq!(e, 0);
            } else {
                assert_eq!(e, (0x8000_0000 + i * 0x1000) | leaf, "page {i}");
            }
        }
        t.destroy(&mut mem);
        assert_eq!(mem.live(), 0);
    }
}

#[test]
fn npt_split_keeps_rights() {
    split(&NPT, &NPT_BITS);
}

#[test]
fn ept_split_keeps_rights_and_type() {
    split(&EPT, &EPT_BITS);
}

fn map_free_refuses(format: &'static EntryFormat, want: &Want) {
    let mut mem = FakeMem::new();
    let mut t = Radix::new(&mut mem, SHAPE, format).unwrap();
    let root = t.root();
    t.map_as(&mut mem, 0, 0x4000_0000, MIB2, Access::ReadWrite)
        .unwrap();
    // Inside a 2 MiB leaf: refused, the leaf untouched.
    assert!(!t
        .map_free(&mut mem, 0x3000, 0xf000_0000, Access::Device)
        .unwrap());
    assert_eq!(entry(&mut mem, root, 0, 2), 0x4000_0000 | want.ram_2m);
    // An occupied 4 KiB slot: refused, the page untouched.
    assert!(t
        .map_free(&mut mem, MIB2, 0x5000_0000, Access::ReadWrite)
        .unwrap());
    let live = mem.live();
    for access in [Access::ReadWrite, Access::ReadOnly, Access::Device] {
        assert!(!t.map_free(&mut mem, MIB2, 0xf000_0000, access).unwrap());
    }
    assert_eq!(entry(&mut mem, root, MIB2, 1), 0x5000_0000 | want.ram);
    assert_eq!(mem.live(), live);
    // Bad addresses are errors.
    assert!(t
        .map_free(&mut mem, 0x1_0000_0000_0000, 0x1000, Access::ReadWrite)
        .is_err());
    assert!(t
        .map_free(&mut mem, 0x10_0800, 0x1000, Access::ReadWrite)
        .is_err());
    t.destroy(&mut mem);
}

#[test]
fn npt_map_free_refuses_occupied() {
    map_free_refuses(&NPT, &NPT_BITS);
}

#[test]
fn ept_map_free_refuses_occupied() {
    map_free_refuses(&EPT, &EPT_BITS);
}

/// Tables for a domain's worth of mappings; every frame comes back on
/// destroy, and on `free_all`.
fn frees_everything(format: &'static EntryFormat) {
    let mut mem = FakeMem::new();
    let mut t = Radix::new(&mut mem, SHAPE, format).unwrap();
    t.map_as(&mut mem, 0, 0x4000_0000, 8 * MIB2, Access::ReadWrite)
        .unwrap();
    for i in 0..64 {
        let gpa = 0x1_0000_0000 + i * 0x40_1000;
        assert!(t
            .map_free(&mut mem, gpa, 0xf000_0000 + i * 0x1000, Access::Device)
            .unwrap());
    }
    t.unmap(&mut mem, 0x3000, 0x1000).unwrap();
    t.unmap(&mut mem, 0x1_0000_0000, 0x1000).unwrap();
    // Root, PDPT, PD for RAM, the split PT; a PD and 64 PTs for the
    // device pages (4 GiB up, 4 MiB apart).
    assert_eq!(mem.live(), 4 + 1 + 64);
    assert_eq!(mem.allocated, 69);
    t.destroy(&mut mem);
    assert_eq!(mem.live(), 0);
    assert_eq!(mem.freed, 69);

    let mut t = Radix::new(&mut mem, SHAPE, format).unwrap();
    assert!(t
        .map_free(&mut mem, 0x1000, 0x2000, Access::ReadOnly)
        .unwrap());
    assert_eq!(mem.live(), 4);
    t.free_all(&mut mem);
    assert_eq!(mem.live(), 0);
}

#[test]
fn npt_destroy_frees_every_frame() {
    frees_everything(&NPT);
}

#[test]
fn ept_destroy_frees_every_frame() {
    frees_everything(&EPT);
}

/// Running out of table frames is an error, with nothing mapped.
#[test]
fn no_memory_is_an_error() {
    let mut mem = FakeMem::new();
    mem.limit = Some(2);
    let mut t = Radix::new(&mut mem, SHAPE, &EPT).unwrap();
    assert!(t
        .map_free(&mut mem, 0x1000, 0x2000, Access::ReadWrite)
        .is_err());
    assert_eq!(t.translate(&mut mem, 0x1000), None);
    t.destroy(&mut mem);
    assert_eq!(mem.live(), 0);
}
