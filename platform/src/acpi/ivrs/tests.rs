use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::acpi::testutil::{table, Put};
use crate::acpi::AcpiErrorKind;

fn ivhd(block_type: u8, devid: u16, base: u64, entries: &[u8]) -> Vec<u8> {
    let fixed: u16 = if block_type == IVHD_LEGACY { 24 } else { 40 };
    let mut b = vec![];
    b.u8(block_type).u8(0xd1).u16(fixed + entries.len() as u16);
    b.u16(devid).u16(0x40).u64(base).u16(0).u16(0x0105);
    if block_type == IVHD_LEGACY {
        b.u32(0x8000_0044);
    } else {
        b.u32(0).u64(0x0000_0000_0022_4295).u64(0);
    }
    b.raw(entries);
    b
}

fn ivrs(iv_info: u32, blocks: &[u8]) -> Vec<u8> {
    let mut b = vec![];
    b.u32(iv_info).u64(0).raw(blocks);
    table(b"IVRS", 2, &b)
}

/// Entries in the shape QEMU's `amd-iommu` builds: a range over the root
/// bus and the IOAPIC as a special device at 00:14.0.
fn qemu_entries() -> Vec<u8> {
    let mut e = vec![];
    e.u8(3).u16(0x0000).u8(0);
    e.u8(4).u16(0x00ff).u8(0);
    e.u8(0x48).u16(0).u8(0xd7).u8(0).u16(0x00a0).u8(1);
    e
}

#[test]
fn qemu_like_ivrs_parses() {
    let mut blocks = ivhd(IVHD_LEGACY, 0x0010, 0xfeb8_0000, &qemu_entries());
    blocks.extend(ivhd(IVHD_WITH_EFR, 0x0010, 0xfeb8_0000, &qemu_entries()));
    let t = ivrs(40 << 8 | 48 << 15 | 2 << 5 | 1, &blocks);
    let r = Ivrs::parse(&t).unwrap();
    assert!(r.header.checksum_ok);
    assert_eq!((r.pa_size(), r.va_size(), r.gva_size()), (40, 48, 2));
    assert!(r.efr_supported());
    let units: Vec<_> = r.ivhds().collect();
    assert_eq!(units.len(), 2);
    let h = units[0];
    assert_eq!(h.block_type, IVHD_LEGACY);
    assert_eq!(h.sbdf(), Sbdf::new(0, 0, 2, 0).unwrap());
    assert_eq!(h.capability_offset, 0x40);
    assert_eq!(h.base_address, 0xfeb8_0000);
    assert_eq!((h.msi_number(), h.unit_id()), (5, 1));
    assert_eq!(h.feature_info, 0x8000_0044);
    assert_eq!(h.efr, None);
    assert_eq!(units[1].efr, Some(0x0022_4295));
    assert_eq!(
        h.entries,
        vec![
            IvhdEntry::RangeStart {
                device_id: 0,
                dte: 0
            },
            IvhdEntry::RangeEnd { device_id: 0xff },
            IvhdEntry::Special {
                handle: 0,
                device_id: 0xa0,
                variety: SpecialVariety::IoApic,
                dte: 0xd7
            },
        ]
    );
    assert_eq!(
        h.device_ranges(),
        vec![IvhdDeviceRange {
            first: 0,
            last: 0xff,
            dte: 0,
            alias: None
        }]
    );
    let text = r.to_string();
    assert_eq!(
        text.lines().next().unwrap(),
        "IVRS: VA 48 bits, PA 40 bits, GVA size 2, EFR supported"
    );
    assert_eq!(
        text.lines().nth(1).unwrap(),
        "  IVHD type 0x10 devid 00:02.0 base 0xfeb80000 seg 0, 3 device entries \
         (range 00:00.0 to 00:1f.7, IOAPIC 0 = 00:14.0)"
    );
    assert!(text.lines().nth(2).unwrap().ends_with("EFR 0x224295"));
}

#[test]
fn every_device_entry_kind_parses() {
    let mut e = vec![];
    e.u8(0).u16(0).u8(0);
    e.u8(1).u16(0).u8(0x77);
    e.u8(2).u16(0x0008).u8(1);
    e.u8(0x42).u16(0x0100).u8(0).u8(0).u16(0x00f8).u8(0);
    e.u8(0x43).u16(0x0200).u8(0).u8(0).u16(0x0200).u8(0);
    e.u8(4).u16(0x02ff).u8(0);
    e.u8(0x46).u16(0x0300).u8(0).u32(0x8000_0000);
    e.u8(0x47).u16(0x0400).u8(0).u32(0);
    e.u8(4).u16(0x0401).u8(0);
    e.u8(0x48).u16(0).u8(0).u8(0).u16(0x00a7).u8(2);
    e.u8(0xf0)
        .u16(0x00a5)
        .u8(0x40)
        .raw(b"AMDI0020")
        .raw(&[0; 8]);
    e.u8(2).u8(3).raw(b"ID0");
    e.u8(0x05).u16(0x0010).u8(0);
    e.u8(0x7e).raw(&[1, 2, 3, 4, 5, 6, 7]);
    let t = ivrs(0, &ivhd(IVHD_MIXED, 0x0002, 0xfd20_0000, &e));
    let r = Ivrs::parse(&t).unwrap();
    let h = r.ivhds().next().unwrap();
    assert_eq!(h.entries.len(), 13);
    assert_eq!(h.entries[0], IvhdEntry::Pad);
    assert_eq!(h.entries[1], IvhdEntry::All { dte: 0x77 });
    assert_eq!(
        h.entries[3],
        IvhdEntry::AliasSelect {
            device_id: 0x100,
            dte: 0,
            alias: 0xf8
        }
    );
    assert_eq!(
        h.entries[6],
        IvhdEntry::ExtendedSelect {
            device_id: 0x300,
            dte: 0,
            ext: 0x8000_0000
        }
    );
    assert_eq!(
        h.entries[9],
        IvhdEntry::Special {
            handle: 0,
            device_id: 0xa7,
            variety: SpecialVariety::Hpet,
            dte: 0
        }
    );
    assert_eq!(
        h.entries[10],
        IvhdEntry::AcpiHid {
            device_id: 0xa5,
            dte: 0x40,
            hid: *b"AMDI0020",
            cid: [0; 8],
            uid_format: 2,
            uid: b"ID0".to_vec()
        }
    );
    assert_eq!(
        h.entries[11],
        IvhdEntry::Other4 {
            entry_type: 5,
            device_id: 0x10,
            dte: 0
        }
    );
    assert_eq!(
        h.entries[12],
        IvhdEntry::Other8 {
            raw: [0x7e, 1, 2, 3, 4, 5, 6, 7]
        }
    );
    let ranges = h.device_ranges();
    assert_eq!(
        ranges,
        vec![
            IvhdDeviceRange {
                first: 0,
                last: 0xffff,
                dte: 0x77,
                alias: None
            },
            IvhdDeviceRange {
                first: 8,
                last: 8,
                dte: 1,
                alias: None
            },
            IvhdDeviceRange {
                first: 0x100,
                last: 0x100,
                dte: 0,
                alias: Some(0xf8)
            },
            IvhdDeviceRange {
                first: 0x200,
                last: 0x2ff,
                dte: 0,
                alias: Some(0x200)
            },
            IvhdDeviceRange {
                first: 0x300,
                last: 0x300,
                dte: 0,
                alias: None
            },
            IvhdDeviceRange {
                first: 0x400,
                last: 0x401,
                dte: 0,
                alias: None
            },
        ]
    );
    let text = r.to_string();
    assert!(text.contains(
        "(all devices, select 00:01.0, select 01:00.0 alias 00:1f.0, \
         range 02:00.0 alias 02:00.0 to 02:1f.7, select 03:00.0 ext 0x80000000, \
         range 04:00.0 ext 0x0 to 04:00.1, HPET 0 = 00:14.7, \
         ACPI AMDI0020 uid \"ID0\" = 00:14.5, type 0x5 00:02.0, type 0x7e)"
    ));
}

#[test]
fn ivmd_and_unknown_blocks_are_kept() {
    let mut b = vec![];
    b.u8(0x21).u8(0x7).u16(32).u16(0x0010).u16(0).u64(0);
    b.u64(0xfee0_0000).u64(0x10_0000);
    b.u8(0x22).u8(0x1).u16(32).u16(0x0100).u16(0x01ff).u64(0);
    b.u64(0x1000).u64(0x1000);
    b.u8(0x30).u8(0).u16(8).u32(0);
    let r = Ivrs::parse(&ivrs(0, &b)).unwrap();
    assert_eq!(
        r.blocks,
        vec![
            IvrsBlock::Ivmd(Ivmd {
                block_type: 0x21,
                flags: 7,
                device_id: 0x10,
                aux_data: 0,
                start: 0xfee0_0000,
                length: 0x10_0000
            }),
            IvrsBlock::Ivmd(Ivmd {
                block_type: 0x22,
                flags: 1,
                device_id: 0x100,
                aux_data: 0x1ff,
                start: 0x1000,
                length: 0x1000
            }),
            IvrsBlock::Unknown {
                block_type: 0x30,
                length: 8
            },
        ]
    );
    assert!(r
        .to_string()
        .contains("IVMD type 0x21 devid 00:02.0 flags 0x7: 0xfee00000 length 0x100000"));
}

#[test]
fn device_entries_never_run_past_their_ivhd() {
    // An 8-byte entry with only 4 bytes left in the IVHD, followed by
    // another IVHD that would satisfy a reader ignoring the block end.
    let mut e = vec![];
    e.u8(0x42).u16(0x0100).u8(0);
    let mut blocks = ivhd(IVHD_LEGACY, 0x10, 0xfeb8_0000, &e);
    blocks.extend(ivhd(IVHD_LEGACY, 0x10, 0xfeb8_0000, &[]));
    let err = Ivrs::parse(&ivrs(0, &blocks)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "IVRS: IVHD device entry at offset 0x48 has length 0x08 but only 0x04 bytes remain"
    );
    // An ACPI HID entry whose UID length runs past the IVHD.
    let mut e = vec![];
    e.u8(0xf0)
        .u16(0)
        .u8(0)
        .raw(&[0; 16])
        .u8(2)
        .u8(200)
        .raw(b"xy");
    let mut blocks = ivhd(IVHD_MIXED, 0x10, 0xfeb8_0000, &e);
    blocks.u8(0x30).u8(0).u16(256).raw(&[0; 252]);
    let err = Ivrs::parse(&ivrs(0, &blocks)).unwrap_err();
    assert!(matches!(
        err.kind,
        AcpiErrorKind::Overrun {
            what: "IVHD device entry",
            length: 222,
            ..
        }
    ));
    // An ACPI HID entry cut before its UID length byte.
    let mut e = vec![];
    e.u8(0xf0).u16(0).u8(0).raw(&[0; 12]);
    let err = Ivrs::parse(&ivrs(0, &ivhd(IVHD_MIXED, 0x10, 0, &e))).unwrap_err();
    assert!(matches!(
        err.kind,
        AcpiErrorKind::ShorterThanType {
            what: "IVHD ACPI HID entry",
            ..
        }
    ));
}

#[test]
fn unknown_variable_length_entries_and_bad_blocks_are_errors() {
    let mut e = vec![];
    e.u8(0x80).u16(0).u8(0);
    let err = Ivrs::parse(&ivrs(0, &ivhd(IVHD_LEGACY, 0x10, 0, &e))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "IVRS: IVHD device entry at offset 0x48 has type 0x80, whose length is unknown"
    );
    // An IVHD 0x11 shorter than its 40 fixed bytes.
    let mut b = ivhd(IVHD_WITH_EFR, 0x10, 0, &[]);
    b.truncate(24);
    b[2] = 24;
    assert!(matches!(
        Ivrs::parse(&ivrs(0, &b)).unwrap_err().kind,
        AcpiErrorKind::ShorterThanType {
            what: "IVHD",
            minimum: 40,
            ..
        }
    ));
    // A block whose length is below its own header.
    let mut b = vec![];
    b.u8(0x10).u8(0).u16(2);
    assert!(matches!(
        Ivrs::parse(&ivrs(0, &b)).unwrap_err().kind,
        AcpiErrorKind::ShorterThanHeader { .. }
    ));
    // An IVMD that is too short.
    let mut b = vec![];
    b.u8(0x20).u8(0).u16(16).raw(&[0; 12]);
    assert!(Ivrs::parse(&ivrs(0, &b)).is_err());
}

/// The IVRS of QEMU 7.2 `-M q35 -device amd-iommu`, as SeaBIOS placed it in
/// memory: one IVHD of type 0x10 selecting the root bus devices, and the
/// IOAPIC as a special device.
const QEMU_7_2_Q35_IVRS: &str = "
    49565253640000000165424f4348532042585043202020200100000042585043
    0100000000280000000000000000000010d13400080040000000d8fe00000000
    0000000044000000020000000208000002f8000002fa000002fb000048000000
    00a00001";

#[test]
fn qemu_7_2_ivrs_bytes_parse() {
    let r = Ivrs::parse(&crate::acpi::testutil::hex(QEMU_7_2_Q35_IVRS)).unwrap();
    assert!(r.header.checksum_ok);
    assert_eq!(r.pa_size(), 40);
    let h = r.ivhds().next().unwrap();
    assert_eq!(h.flags, 0xd1);
    assert_eq!(h.feature_info, 0x44);
    assert_eq!(h.device_ranges().len(), 5);
    assert_eq!(
        r.to_string(),
        "IVRS: VA 0 bits, PA 40 bits, GVA size 0\n  \
         IVHD type 0x10 devid 00:01.0 base 0xfed80000 seg 0, 6 device entries \
         (select 00:00.0, select 00:01.0, select 00:1f.0, select 00:1f.2, select 00:1f.3, \
         IOAPIC 0 = 00:14.0)"
    );
}

#[test]
fn one_unit_per_iommu_of_the_highest_type() {
    // QEMU 10 describes its one IOMMU twice (0x10, then 0x11); a second
    // IOMMU elsewhere keeps its own block, and a 0x40 block wins over both
    // older types whatever the order.
    let mut blocks = ivhd(IVHD_LEGACY, 0x0008, 0xfed8_0000, &qemu_entries());
    blocks.extend(ivhd(IVHD_WITH_EFR, 0x0008, 0xfed8_0000, &qemu_entries()));
    blocks.extend(ivhd(IVHD_LEGACY, 0x0108, 0xfed9_0000, &qemu_entries()));
    blocks.extend(ivhd(IVHD_MIXED, 0x0108, 0xfed9_0000, &qemu_entries()));
    blocks.extend(ivhd(IVHD_WITH_EFR, 0x0108, 0xfed9_0000, &qemu_entries()));
    let r = Ivrs::parse(&ivrs(40 << 8, &blocks)).unwrap();
    assert_eq!(r.ivhds().count(), 5);
    let units: Vec<_> = r
        .units()
        .iter()
        .map(|h| (h.device_id, h.base_address, h.block_type))
        .collect();
    assert_eq!(
        units,
        [
            (0x0008, 0xfed8_0000, IVHD_WITH_EFR),
            (0x0108, 0xfed9_0000, IVHD_MIXED)
        ]
    );
    // The same device ID at another base is another IOMMU.
    let mut blocks = ivhd(IVHD_WITH_EFR, 0x0008, 0xfed8_0000, &qemu_entries());
    blocks.extend(ivhd(IVHD_WITH_EFR, 0x0008, 0xfed9_0000, &qemu_entries()));
    let r = Ivrs::parse(&ivrs(40 << 8, &blocks)).unwrap();
    assert_eq!(r.units().len(), 2);
}
