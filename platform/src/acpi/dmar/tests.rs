use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::acpi::testutil::{table, Put};
use crate::acpi::AcpiErrorKind;
use crate::pci::fake::{sbdf, FakeConfig, FakeFunction};

fn scope(ty: u8, id: u8, bus: u8, path: &[(u8, u8)]) -> Vec<u8> {
    let mut s = vec![];
    s.u8(ty).u8(6 + 2 * path.len() as u8).u16(0).u8(id).u8(bus);
    for &(d, f) in path {
        s.u8(d).u8(f);
    }
    s
}

fn drhd(flags: u8, segment: u16, base: u64, scopes: &[u8]) -> Vec<u8> {
    let mut s = vec![];
    s.u16(0)
        .u16(16 + scopes.len() as u16)
        .u8(flags)
        .u8(0)
        .u16(segment)
        .u64(base);
    s.raw(scopes);
    s
}

fn dmar(haw_field: u8, flags: u8, structures: &[u8]) -> Vec<u8> {
    let mut b = vec![];
    b.u8(haw_field).u8(flags).raw(&[0; 10]).raw(structures);
    table(b"DMAR", 1, &b)
}

/// QEMU q35 with `intel-iommu,intremap=on`: one DRHD covering everything,
/// with the IOAPIC scope.
fn qemu_dmar() -> Vec<u8> {
    dmar(
        38,
        DmarFlags::INTR_REMAP | DmarFlags::X2APIC_OPT_OUT,
        &drhd(1, 0, 0xfed9_0000, &scope(3, 0, 0, &[(0x1f, 0)])),
    )
}

#[test]
fn qemu_like_dmar_parses() {
    let d = Dmar::parse(&qemu_dmar()).unwrap();
    assert!(d.header.checksum_ok);
    assert_eq!(d.host_address_width, 39);
    assert!(d.flags.intr_remap() && d.flags.x2apic_opt_out());
    assert!(!d.flags.dma_ctrl_platform_opt_in());
    let units: Vec<_> = d.drhds().collect();
    assert_eq!(units.len(), 1);
    assert!(units[0].include_pci_all());
    assert_eq!(units[0].register_base, 0xfed9_0000);
    assert_eq!(units[0].register_set_size(), Some(4096));
    assert_eq!(
        units[0].scopes,
        vec![DeviceScope {
            scope_type: ScopeType::IoApic,
            flags: 0,
            enumeration_id: 0,
            start_bus: 0,
            path: vec![PathEntry { dev: 0x1f, func: 0 }]
        }]
    );
    assert_eq!(
        d.to_string(),
        "DMAR: haw 39 bits, flags intr-remap x2apic-opt-out\n  \
         DRHD unit 0: base 0xfed90000 segment 0 INCLUDE_PCI_ALL, scopes: IOAPIC id 0 at 00:1f.0"
    );
}

#[test]
fn every_structure_type_parses() {
    let mut s = vec![];
    // DRHD for two endpoints and a bridge hierarchy, not INCLUDE_PCI_ALL.
    let mut scopes = scope(1, 0, 0, &[(2, 0)]);
    scopes.extend(scope(2, 0, 0, &[(0x1c, 0)]));
    scopes.extend(scope(1, 0, 0, &[(0x1c, 4), (0, 0)]));
    scopes.extend(scope(4, 0, 0, &[(0x1f, 0)]));
    s.extend(drhd(0, 0, 0xfed9_1000, &scopes));
    // RMRR for USB.
    let usb = scope(1, 0, 0, &[(0x14, 0)]);
    s.u16(1).u16(24 + usb.len() as u16).u16(0).u16(0);
    s.u64(0x7f00_0000).u64(0x7f0f_ffff).raw(&usb);
    // ATSR for all ports.
    s.u16(2).u16(8).u8(1).u8(0).u16(0);
    // RHSA.
    s.u16(3).u16(20).u32(0).u64(0xfed9_1000).u32(1);
    // ANDD with a NUL-terminated name.
    s.u16(4)
        .u16(8 + 14)
        .raw(&[0, 0, 0])
        .u8(7)
        .raw(b"\\_SB.PCI0.UAR\0");
    // SATC.
    let satc = scope(1, 0, 0, &[(5, 0)]);
    s.u16(5)
        .u16(8 + satc.len() as u16)
        .u8(1)
        .u8(0)
        .u16(0)
        .raw(&satc);
    // An unknown type (VT-d 4.0 SIDP).
    s.u16(6).u16(8).u32(0);
    let d = Dmar::parse(&dmar(45, DmarFlags::DMA_CTRL_PLATFORM_OPT_IN, &s)).unwrap();
    assert_eq!(d.structures.len(), 7);
    let RemappingStructure::Drhd(unit) = &d.structures[0] else {
        panic!("DRHD first");
    };
    assert!(!unit.include_pci_all());
    let kinds: Vec<_> = unit.scopes.iter().map(|s| s.scope_type).collect();
    assert_eq!(
        kinds,
        vec![
            ScopeType::Endpoint,
            ScopeType::SubHierarchy,
            ScopeType::Endpoint,
            ScopeType::Hpet
        ]
    );
    assert_eq!(unit.scopes[2].path.len(), 2);
    let rmrr: Vec<_> = d.rmrrs().collect();
    assert_eq!((rmrr[0].base, rmrr[0].limit), (0x7f00_0000, 0x7f0f_ffff));
    assert_eq!(rmrr[0].scopes[0].first_hop(0), Some(sbdf(0, 0x14, 0)));
    assert_eq!(
        d.structures[2],
        RemappingStructure::Atsr(Atsr {
            flags: 1,
            segment: 0,
            scopes: vec![]
        })
    );
    assert_eq!(
        d.structures[3],
        RemappingStructure::Rhsa(Rhsa {
            register_base: 0xfed9_1000,
            proximity_domain: 1
        })
    );
    assert_eq!(
        d.structures[4],
        RemappingStructure::Andd(Andd {
            device_number: 7,
            object_name: b"\\_SB.PCI0.UAR".to_vec()
        })
    );
    assert!(matches!(&d.structures[5], RemappingStructure::Satc(s) if s.scopes.len() == 1));
    assert_eq!(
        d.structures[6],
        RemappingStructure::Unknown {
            structure_type: 6,
            length: 8
        }
    );
    let text = d.to_string();
    assert!(text.starts_with("DMAR: haw 46 bits, flags dma-ctrl-opt-in\n"));
    assert!(text.contains(
        "DRHD unit 0: base 0xfed91000 segment 0, scopes: endpoint 00:02.0, \
         sub-hierarchy 00:1c.0, endpoint 00:1c.4/00.0, HPET id 0 at 00:1f.0"
    ));
    assert!(text.contains("RMRR: segment 0 0x7f000000..=0x7f0fffff, scopes: endpoint 00:14.0"));
    assert!(text.contains("ATSR: segment 0 ALL_PORTS"));
    assert!(text.contains("RHSA: unit 0xfed91000 proximity domain 1"));
    assert!(text.contains("ANDD: device 7 \"\\_SB.PCI0.UAR\""));
    assert!(text.contains("SATC: segment 0 ATC_REQUIRED, scopes: endpoint 00:05.0"));
    assert!(text.contains("structure type 0x6 length 0x8 (skipped)"));
}

#[test]
fn structure_shorter_than_its_header_is_an_error_naming_the_offset() {
    let mut s = drhd(1, 0, 0xfed9_0000, &[]);
    s.u16(0).u16(2);
    let e = Dmar::parse(&dmar(38, 0, &s)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "DMAR: remapping structure at offset 0x40 has length 0x02, shorter than its header"
    );
}

#[test]
fn truncated_and_overlong_structures_are_errors() {
    // A DRHD claiming 12 bytes, shorter than its 16 fixed bytes.
    let mut s = vec![];
    s.u16(0).u16(12).u8(0).u8(0).u16(0).u32(0);
    assert_eq!(
        Dmar::parse(&dmar(38, 0, &s)).unwrap_err().kind,
        AcpiErrorKind::ShorterThanType {
            what: "DRHD",
            offset: 0x30,
            length: 12,
            minimum: 16
        }
    );
    // A DRHD running past the end of the table.
    let mut s = drhd(1, 0, 0xfed9_0000, &[]);
    s[2] = 0x40;
    assert!(matches!(
        Dmar::parse(&dmar(38, 0, &s)).unwrap_err().kind,
        AcpiErrorKind::Overrun {
            length: 0x40,
            remaining: 16,
            ..
        }
    ));
    // A device scope running past its DRHD (but not the table).
    let mut sc = scope(3, 0, 0, &[(0x1f, 0)]);
    sc[1] = 10;
    let mut s = drhd(1, 0, 0xfed9_0000, &sc);
    s.extend(drhd(1, 0, 0xfed9_1000, &[]));
    let e = Dmar::parse(&dmar(38, 0, &s)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "DMAR: device scope at offset 0x40 has length 0x0a but only 0x08 bytes remain"
    );
    // A device scope with an odd path length.
    let mut sc = scope(1, 0, 0, &[(2, 0)]);
    sc[1] = 7;
    sc.push(0);
    let s = drhd(1, 0, 0xfed9_0000, &sc);
    assert!(matches!(
        Dmar::parse(&dmar(38, 0, &s)).unwrap_err().kind,
        AcpiErrorKind::Invalid {
            what: "device scope",
            ..
        }
    ));
    // The table itself cut short.
    let mut t = qemu_dmar();
    t.truncate(50);
    assert!(Dmar::parse(&t).is_err());
}

#[test]
fn scope_path_is_followed_through_bridges() {
    // 00:1c.0 -> bus 2, 02:00.0 -> bus 3, device 03:00.1.
    let mut cfg = FakeConfig::new(256)
        .with(sbdf(0, 0x1c, 0), FakeFunction::bridge(0, 2, 3))
        .with(sbdf(2, 0, 0), FakeFunction::bridge(2, 3, 3));
    let s = DeviceScope {
        scope_type: ScopeType::Endpoint,
        flags: 0,
        enumeration_id: 0,
        start_bus: 0,
        path: vec![
            PathEntry { dev: 0x1c, func: 0 },
            PathEntry { dev: 0, func: 0 },
            PathEntry { dev: 0, func: 1 },
        ],
    };
    assert_eq!(s.resolve(0, &mut cfg), Ok(sbdf(3, 0, 1)));
    assert_eq!(s.first_hop(0), Some(sbdf(0, 0x1c, 0)));
    // Only reads, and only of the two bridges.
    assert!(cfg.writes(sbdf(0, 0x1c, 0)).is_empty());
    assert!(!cfg.touched(sbdf(3, 0, 1)));
}

#[test]
fn scope_path_errors() {
    let mut cfg = FakeConfig::new(256)
        .with(
            sbdf(0, 2, 0),
            FakeFunction::endpoint(0x8086, 0x1234, 0x03_00_00),
        )
        .with(sbdf(0, 3, 0), FakeFunction::bridge(0, 0, 0));
    let path = |p: &[(u8, u8)]| DeviceScope {
        scope_type: ScopeType::Endpoint,
        flags: 0,
        enumeration_id: 0,
        start_bus: 0,
        path: p
            .iter()
            .map(|&(dev, func)| PathEntry { dev, func })
            .collect(),
    };
    assert_eq!(path(&[]).resolve(0, &mut cfg), Err(ScopeError::EmptyPath));
    assert_eq!(path(&[]).first_hop(0), None);
    assert_eq!(
        path(&[(2, 0), (0, 0)]).resolve(0, &mut cfg),
        Err(ScopeError::NotABridge(sbdf(0, 2, 0)))
    );
    assert_eq!(
        path(&[(4, 0), (0, 0)]).resolve(0, &mut cfg),
        Err(ScopeError::NotPresent(sbdf(0, 4, 0)))
    );
    assert_eq!(
        path(&[(3, 0), (0, 0)]).resolve(0, &mut cfg),
        Err(ScopeError::NoSecondaryBus(sbdf(0, 3, 0)))
    );
    assert_eq!(
        path(&[(0x20, 0)]).resolve(0, &mut cfg),
        Err(ScopeError::BadPathEntry(PathEntry { dev: 0x20, func: 0 }))
    );
    assert_eq!(path(&[(0x20, 0)]).first_hop(0), None);
    assert_eq!(
        ScopeError::NotABridge(sbdf(0, 2, 0)).to_string(),
        "device scope path: 0000:00:02.0 is not a bridge"
    );
}

/// The DMAR of QEMU 7.2 `-M q35 -device intel-iommu,intremap=on`, as
/// SeaBIOS placed it in memory. QEMU lists the root bus devices instead of
/// setting INCLUDE_PCI_ALL, and puts the IOAPIC on pseudo-bus 0xff.
const QEMU_7_2_Q35_DMAR: &str = "
    444d4152680000000142424f4348532042585043202020200100000042585043
    0100000026010000000000000000000000003800000000000000d9fe00000000
    0308000000ff000001080000000000000108000000001f000108000000001f02
    0108000000001f03";

#[test]
fn qemu_7_2_dmar_bytes_parse() {
    let d = Dmar::parse(&crate::acpi::testutil::hex(QEMU_7_2_Q35_DMAR)).unwrap();
    assert!(d.header.checksum_ok);
    assert_eq!(
        d.to_string(),
        "DMAR: haw 39 bits, flags intr-remap\n  \
         DRHD unit 0: base 0xfed90000 segment 0, scopes: IOAPIC id 0 at ff:00.0, \
         endpoint 00:00.0, endpoint 00:1f.0, endpoint 00:1f.2, endpoint 00:1f.3"
    );
}
