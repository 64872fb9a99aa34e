use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use super::caps::{id, walk_caps, walk_ext_caps};
use super::fake::{sbdf, FakeConfig, FakeFunction};
use super::*;

const ALL: [SegmentRange; 1] = [SegmentRange::LEGACY];

fn find(funcs: &[PciFunction], at: Sbdf) -> &PciFunction {
    funcs.iter().find(|f| f.sbdf == at).expect("function found")
}

fn addrs(funcs: &[PciFunction]) -> Vec<Sbdf> {
    funcs.iter().map(|f| f.sbdf).collect()
}

/// A device like QEMU's `edu` with memory decode on and every BAR kind.
fn busy_device() -> FakeFunction {
    FakeFunction::endpoint(0x1234, 0x11e8, 0x00_ff_00)
        .command(0x0007)
        .mem32_bar(0, 0xfea0_0000, 1 << 20, false)
        .mem64_bar(2, 0x80_0000_0000, 16 << 10, true)
        .io_bar(4, 0xc000, 32, true)
        .rom(0xfeb0_0000, 256 << 10)
        .irq(1, 11)
}

#[test]
fn bars_of_every_kind_are_sized() {
    let mut cfg = FakeConfig::new(256).with(sbdf(0, 3, 0), busy_device());
    let funcs = enumerate(&mut cfg, &ALL);
    let f = find(&funcs, sbdf(0, 3, 0));
    assert_eq!(
        f.bars,
        vec![
            Bar {
                index: 0,
                kind: BarKind::Mem32,
                prefetchable: false,
                base: 0xfea0_0000,
                size: 1 << 20
            },
            Bar {
                index: 2,
                kind: BarKind::Mem64,
                prefetchable: true,
                base: 0x80_0000_0000,
                size: 16 << 10
            },
            Bar {
                index: 4,
                kind: BarKind::Io,
                prefetchable: false,
                base: 0xc000,
                size: 32
            },
        ]
    );
    assert_eq!(
        f.rom,
        Some(Bar {
            index: 6,
            kind: BarKind::Mem32,
            prefetchable: false,
            base: 0xfeb0_0000,
            size: 256 << 10
        })
    );
    assert_eq!((f.interrupt_pin, f.interrupt_line), (1, 11));
    assert_eq!(f.class_code(), 0x00ff00);
}

#[test]
fn sizing_happens_with_decode_off_and_restores_everything() {
    let at = sbdf(0, 3, 0);
    let mut cfg = FakeConfig::new(256).with(at, busy_device());
    let before = cfg.snapshot();
    enumerate(&mut cfg, &ALL);
    assert_eq!(cfg.writes_while_decoding, vec![]);
    assert_eq!(cfg.snapshot(), before, "registers restored");
    let writes = cfg.writes(at);
    // Decode off first, command restored last.
    assert_eq!(writes.first(), Some(&(0x04, 0x0004)));
    assert_eq!(writes.last(), Some(&(0x04, 0x0007)));
    // Every BAR and the ROM was probed with all-ones (ROM enable clear).
    for off in [0x10, 0x18, 0x1c, 0x20] {
        assert!(writes.contains(&(off, !0)), "BAR at {off:#x} probed");
    }
    assert!(writes.contains(&(0x30, 0xffff_f800)));
    // Unimplemented slots are probed too and restored to 0.
    assert!(writes.contains(&(0x14, !0)) && writes.contains(&(0x14, 0)));
}

#[test]
fn command_untouched_when_decode_already_off() {
    let at = sbdf(0, 3, 0);
    let mut cfg = FakeConfig::new(256).with(at, busy_device().command(0x0004));
    enumerate(&mut cfg, &ALL);
    assert!(cfg.writes(at).iter().all(|&(off, _)| off != 0x04));
    assert_eq!(cfg.reg(at, 0x04) & 0xffff, 0x0004);
}

#[test]
fn unimplemented_bars_are_skipped_and_legacy_1m_bars_recognised() {
    let mut cfg = FakeConfig::new(256).with(
        sbdf(0, 2, 0),
        FakeFunction::endpoint(0x8086, 0x1234, 0x03_00_00)
            .mem1m_bar(1, 0xa_0000, 64 << 10)
            .mem32_bar(5, 0xe000_0000, 16 << 20, true),
    );
    let funcs = enumerate(&mut cfg, &ALL);
    let f = find(&funcs, sbdf(0, 2, 0));
    let got: Vec<_> = f.bars.iter().map(|b| (b.index, b.kind, b.size)).collect();
    assert_eq!(
        got,
        vec![(1, BarKind::Mem1M, 64 << 10), (5, BarKind::Mem32, 16 << 20)]
    );
    assert!(f.bars[1].prefetchable);
    assert_eq!(f.rom, None);
}

#[test]
fn io_bar_with_a_16_bit_decoder_and_a_32_bit_decoder() {
    let at = sbdf(0, 1, 0);
    let mut cfg = FakeConfig::new(256).with(
        at,
        FakeFunction::endpoint(0x8086, 0x7010, 0x01_01_80)
            .io_bar(0, 0x1f0, 8, true)
            .io_bar(1, 0xd000, 256, false),
    );
    let scan = size_bars(&mut cfg, at, 0);
    let got: Vec<_> = scan.bars.iter().map(|b| (b.base, b.size)).collect();
    assert_eq!(got, vec![(0x1f0, 8), (0xd000, 256)]);
}

#[test]
fn mem64_bar_in_the_last_slot_is_malformed_and_slot_6_is_not_read() {
    let at = sbdf(0, 4, 0);
    let mut f = FakeFunction::endpoint(0x10ec, 0x8139, 0x02_00_00);
    // A 64-bit BAR in slot 5: its "upper half" would be the ROM-less 0x28.
    f = f.raw(0x24, 0xf000_0004);
    let mut cfg = FakeConfig::new(256).with(at, f);
    let scan = size_bars(&mut cfg, at, 0);
    assert_eq!(
        scan.problems,
        vec![BarProblem::Mem64InLastSlot { index: 5 }]
    );
    assert!(scan.bars.is_empty());
    assert!(cfg.writes(at).iter().all(|&(off, _)| off != 0x28));
    assert!(scan.problems[0].to_string().contains("BAR5 is 64-bit"));
}

#[test]
fn bridge_has_two_bars_and_its_rom_at_0x38() {
    let at = sbdf(0, 0x1c, 0);
    let mut cfg = FakeConfig::new(256).with(
        at,
        FakeFunction::bridge(0, 1, 1)
            .mem32_bar(0, 0xfe00_0000, 4096, false)
            .rom(0xfd00_0000, 2048),
    );
    let scan = size_bars(&mut cfg, at, 1);
    assert_eq!(scan.bars.len(), 1);
    assert_eq!(
        scan.rom.map(|r| (r.base, r.size)),
        Some((0xfd00_0000, 2048))
    );
    let probed: Vec<u16> = cfg
        .writes(at)
        .iter()
        .filter(|w| w.1 == !0 || w.1 == 0xffff_f800)
        .map(|w| w.0)
        .collect();
    assert_eq!(probed, vec![0x10, 0x14, 0x38]);
}

/// Root port 00:1c.0 -> bus 1: switch upstream 01:00.0 -> bus 2: downstream
/// 02:00.0 -> bus 3: NIC 03:00.0. Plus a plain device on bus 0.
fn tree() -> FakeConfig {
    FakeConfig::new(4096)
        .with(
            sbdf(0, 0, 0),
            FakeFunction::endpoint(0x8086, 0x29c0, 0x06_00_00),
        )
        .with(sbdf(0, 0x1c, 0), FakeFunction::bridge(0, 1, 3))
        .with(sbdf(1, 0, 0), FakeFunction::bridge(1, 2, 3))
        .with(sbdf(2, 0, 0), FakeFunction::bridge(2, 3, 3))
        .with(
            sbdf(3, 0, 0),
            FakeFunction::endpoint(0x8086, 0x10d3, 0x02_00_00),
        )
}

#[test]
fn devices_behind_bridges_record_their_parent() {
    let mut cfg = tree();
    let funcs = enumerate(&mut cfg, &ALL);
    assert_eq!(
        addrs(&funcs),
        vec![
            sbdf(0, 0, 0),
            sbdf(0, 0x1c, 0),
            sbdf(1, 0, 0),
            sbdf(2, 0, 0),
            sbdf(3, 0, 0)
        ]
    );
    assert_eq!(find(&funcs, sbdf(0, 0x1c, 0)).parent, None);
    assert_eq!(find(&funcs, sbdf(3, 0, 0)).parent, Some(sbdf(2, 0, 0)));
    assert_eq!(
        find(&funcs, sbdf(1, 0, 0)).bridge,
        Some(BridgeInfo {
            primary: 1,
            secondary: 2,
            subordinate: 3
        })
    );
    assert!(find(&funcs, sbdf(1, 0, 0)).is_bridge());
    assert_eq!(
        upstream_bridges(&funcs, sbdf(3, 0, 0)),
        vec![sbdf(2, 0, 0), sbdf(1, 0, 0), sbdf(0, 0x1c, 0)]
    );
    assert_eq!(upstream_bridges(&funcs, sbdf(0, 0, 0)), vec![]);
    assert_eq!(upstream_bridges(&funcs, sbdf(9, 0, 0)), vec![]);
}

#[test]
fn buses_outside_the_segment_range_are_not_scanned() {
    let mut cfg = tree();
    let range = [SegmentRange {
        segment: 0,
        start_bus: 0,
        end_bus: 2,
    }];
    let funcs = enumerate(&mut cfg, &range);
    assert_eq!(funcs.len(), 4);
    assert!(!cfg.touched(sbdf(3, 0, 0)));
}

#[test]
fn multifunction_device_functions_are_scanned() {
    let mut cfg = FakeConfig::new(256)
        .with(
            sbdf(0, 0x1f, 0),
            FakeFunction::endpoint(0x8086, 0x2918, 0x06_01_00).multifunction(),
        )
        .with(
            sbdf(0, 0x1f, 2),
            FakeFunction::endpoint(0x8086, 0x2922, 0x01_06_01),
        )
        .with(
            sbdf(0, 0x1f, 3),
            FakeFunction::endpoint(0x8086, 0x2930, 0x0c_05_00),
        );
    let funcs = enumerate(&mut cfg, &ALL);
    assert_eq!(
        addrs(&funcs),
        vec![sbdf(0, 0x1f, 0), sbdf(0, 0x1f, 2), sbdf(0, 0x1f, 3)]
    );
    assert!(funcs[0].multifunction);
    assert_eq!(funcs[1].class_name(), "storage/SATA AHCI");
    assert_eq!(funcs[2].class_name(), "serial bus/SMBus");
}

#[test]
fn single_function_device_other_functions_are_not_scanned() {
    let mut cfg = FakeConfig::new(256).with(
        sbdf(0, 5, 0),
        FakeFunction::endpoint(0x1b36, 0x0010, 0x01_08_02),
    );
    // A device that ignores the function number answers on all of them.
    for func in 1..8 {
        cfg.add(
            sbdf(0, 5, func),
            FakeFunction::endpoint(0x1b36, 0x0010, 0x01_08_02),
        );
    }
    let funcs = enumerate(&mut cfg, &ALL);
    assert_eq!(addrs(&funcs), vec![sbdf(0, 5, 0)]);
    for func in 1..8 {
        assert!(!cfg.touched(sbdf(0, 5, func)), "function {func} read");
    }
}

#[test]
fn absent_function_0_means_the_device_is_skipped() {
    let mut cfg = FakeConfig::new(256).with(
        sbdf(0, 6, 1),
        FakeFunction::endpoint(0x1af4, 0x1000, 0x02_00_00),
    );
    assert!(enumerate(&mut cfg, &ALL).is_empty());
    assert!(!cfg.touched(sbdf(0, 6, 1)));
}

#[test]
fn bridge_bus_number_loops_terminate() {
    // 00:01.0 -> bus 1, 01:00.0 -> bus 0 (back up), 01:01.0 -> bus 1
    // (itself), and an unconfigured bridge with secondary 0.
    let mut cfg = FakeConfig::new(256)
        .with(sbdf(0, 1, 0), FakeFunction::bridge(0, 1, 1))
        .with(sbdf(1, 0, 0), FakeFunction::bridge(1, 0, 0))
        .with(sbdf(1, 1, 0), FakeFunction::bridge(1, 1, 1))
        .with(sbdf(0, 2, 0), FakeFunction::bridge(0, 0, 0));
    let funcs = enumerate(&mut cfg, &ALL);
    assert_eq!(
        addrs(&funcs),
        vec![sbdf(0, 1, 0), sbdf(0, 2, 0), sbdf(1, 0, 0), sbdf(1, 1, 0)]
    );
    // Every bus was scanned exactly once: one read of 00.0 per bus.
    let reads_of_bus1_dev0 = cfg
        .log
        .iter()
        .filter(
            |a| matches!(a, fake::Access::Read { sbdf: s, offset: 0, .. } if *s == sbdf(1, 0, 0)),
        )
        .count();
    assert_eq!(reads_of_bus1_dev0, 1);
    assert_eq!(upstream_bridges(&funcs, sbdf(1, 1, 0)), vec![sbdf(0, 1, 0)]);
}

#[test]
fn upstream_bridges_survive_a_parent_loop() {
    let mut a = tree();
    let mut funcs = enumerate(&mut a, &ALL);
    // Corrupt the links into a cycle: 00:1c.0's parent is 02:00.0.
    funcs[1].parent = Some(sbdf(2, 0, 0));
    let up = upstream_bridges(&funcs, sbdf(3, 0, 0));
    assert_eq!(up, vec![sbdf(2, 0, 0), sbdf(1, 0, 0), sbdf(0, 0x1c, 0)]);
}

#[test]
fn root_buses_no_bridge_points_to_are_found() {
    // A second host bridge's root bus 0x80 with a device on it.
    let mut cfg = tree().with(
        sbdf(0x80, 2, 0),
        FakeFunction::endpoint(0x1af4, 0x1041, 0x02_00_00),
    );
    let funcs = enumerate(&mut cfg, &ALL);
    assert_eq!(find(&funcs, sbdf(0x80, 2, 0)).parent, None);
    assert_eq!(funcs.len(), 6);
}

#[test]
fn capability_list_is_walked_in_order() {
    let at = sbdf(0, 3, 0);
    let f = FakeFunction::endpoint(0x8086, 0x10d3, 0x02_00_00).caps(&[
        (0xc8, id::PM),
        (0xd0, id::MSI),
        (0xe0, id::PCIE),
        (0xa0, id::MSIX),
    ]);
    let mut cfg = FakeConfig::new(256).with(at, f);
    let caps = walk_caps(&mut cfg, at, 0);
    let got: Vec<_> = caps.iter().map(|c| (c.name(), c.offset)).collect();
    assert_eq!(
        got,
        vec![("PM", 0xc8), ("MSI", 0xd0), ("PCIe", 0xe0), ("MSI-X", 0xa0)]
    );
}

#[test]
fn capability_list_without_status_bit_is_ignored() {
    let at = sbdf(0, 3, 0);
    let mut f = FakeFunction::endpoint(0x8086, 0x10d3, 0x02_00_00).caps(&[(0x40, id::PM)]);
    f = f.raw(0x04, 0);
    let mut cfg = FakeConfig::new(256).with(at, f);
    assert!(walk_caps(&mut cfg, at, 0).is_empty());
}

#[test]
fn capability_loops_terminate() {
    let at = sbdf(0, 3, 0);
    // 0x40 -> 0x40 (itself).
    let f = FakeFunction::endpoint(0x8086, 0x10d3, 0x02_00_00)
        .caps(&[(0x40, id::PM)])
        .cap_at(0x40, id::PM, 0x40);
    let mut cfg = FakeConfig::new(256).with(at, f);
    assert_eq!(walk_caps(&mut cfg, at, 0).len(), 1);
    // 0x50 -> 0x60 -> 0x53 (masked to 0x50).
    let f = FakeFunction::endpoint(0x8086, 0x10d3, 0x02_00_00)
        .caps(&[(0x50, id::MSI), (0x60, id::VENDOR)])
        .cap_at(0x60, id::VENDOR, 0x53);
    let mut cfg = FakeConfig::new(256).with(at, f);
    let caps = walk_caps(&mut cfg, at, 0);
    assert_eq!(caps.len(), 2);
    // A pointer into the header ends the list.
    let f = FakeFunction::endpoint(0x8086, 0x10d3, 0x02_00_00)
        .caps(&[(0x50, id::MSI)])
        .cap_at(0x50, id::MSI, 0x10);
    let mut cfg = FakeConfig::new(256).with(at, f);
    assert_eq!(walk_caps(&mut cfg, at, 0).len(), 1);
}

#[test]
fn extended_capabilities_need_pcie_and_4k_config_space() {
    let at = sbdf(0, 3, 0);
    let f = || {
        FakeFunction::endpoint(0x8086, 0x10d3, 0x02_00_00)
            .caps(&[(0x40, id::PCIE)])
            .ext_cap(0x100, id::EXT_AER, 2, 0x140)
            .ext_cap(0x140, id::EXT_DSN, 1, 0x1c0)
            .ext_cap(0x1c0, id::EXT_SRIOV, 1, 0)
    };
    let mut cfg = FakeConfig::new(4096).with(at, f());
    let funcs = enumerate(&mut cfg, &ALL);
    let got: Vec<_> = funcs[0]
        .ext_caps
        .iter()
        .map(|c| (c.name(), c.version, c.offset))
        .collect();
    assert_eq!(
        got,
        vec![("AER", 2, 0x100), ("DSN", 1, 0x140), ("SR-IOV", 1, 0x1c0)]
    );
    assert_eq!(funcs[0].find_ext_cap(id::EXT_SRIOV), Some(0x1c0));
    assert_eq!(funcs[0].config_size, 4096);
    // Through the legacy ports: no extended capabilities.
    let mut cfg = FakeConfig::new(256).with(at, f());
    assert!(enumerate(&mut cfg, &ALL)[0].ext_caps.is_empty());
    // Without a PCIe capability: not even looked at.
    let plain = FakeFunction::endpoint(0x8086, 0x10d3, 0x02_00_00)
        .caps(&[(0x40, id::PM)])
        .ext_cap(0x100, id::EXT_AER, 2, 0);
    let mut cfg = FakeConfig::new(4096).with(at, plain);
    assert!(enumerate(&mut cfg, &ALL)[0].ext_caps.is_empty());
    assert!(!cfg
        .log
        .iter()
        .any(|a| matches!(a, fake::Access::Read { offset, .. } if *offset >= 0x100)));
}

#[test]
fn extended_capability_loops_and_bad_pointers_terminate() {
    let at = sbdf(0, 3, 0);
    let f = FakeFunction::endpoint(0x8086, 0x10d3, 0x02_00_00)
        .ext_cap(0x100, id::EXT_AER, 1, 0x200)
        .ext_cap(0x200, id::EXT_ACS, 1, 0x100);
    let mut cfg = FakeConfig::new(4096).with(at, f);
    assert_eq!(walk_ext_caps(&mut cfg, at).len(), 2);
    let f =
        FakeFunction::endpoint(0x8086, 0x10d3, 0x02_00_00).ext_cap(0x100, id::EXT_AER, 1, 0x0fc);
    let mut cfg = FakeConfig::new(4096).with(at, f);
    assert_eq!(walk_ext_caps(&mut cfg, at).len(), 1);
    let f = FakeFunction::endpoint(0x8086, 0x10d3, 0x02_00_00).raw(0x100, !0);
    let mut cfg = FakeConfig::new(4096).with(at, f);
    assert!(walk_ext_caps(&mut cfg, at).is_empty());
}

#[test]
fn msi_and_msix_details_are_read_from_config_space() {
    let at = sbdf(0, 4, 0);
    let f = FakeFunction::endpoint(0x8086, 0x10d3, 0x02_00_00)
        .caps(&[(0x50, id::MSI), (0x70, id::MSIX)])
        // MSI: 64-bit, per-vector masking, 8 vectors capable, enabled.
        .raw(0x50, 0x0187_7005)
        // MSI-X: 5 entries, table in BAR 3 at 0x2000, PBA BAR 3 at 0x3000.
        .raw(0x70, 0x8004_0011)
        .raw(0x74, 0x2003)
        .raw(0x78, 0x3003);
    let mut cfg = FakeConfig::new(256).with(at, f);
    let funcs = enumerate(&mut cfg, &ALL);
    let msi = funcs[0].msi(&mut cfg).unwrap();
    assert_eq!(msi.offset, 0x50);
    assert!(msi.is_64bit() && msi.per_vector_masking() && msi.enabled());
    assert_eq!(msi.multiple_message_capable(), 3);
    assert_eq!(msi.max_vectors(), 8);
    assert_eq!(msi.upper_address_offset(), Some(0x58));
    assert_eq!(msi.data_offset(), 0x5c);
    assert_eq!(msi.mask_offset(), Some(0x60));
    assert_eq!(msi.pending_offset(), Some(0x64));
    let msix = funcs[0].msix(&mut cfg).unwrap();
    assert_eq!(msix.table_size(), 5);
    assert!(msix.enabled() && !msix.function_masked());
    assert_eq!((msix.table_bir(), msix.table_offset()), (3, 0x2000));
    assert_eq!((msix.pba_bir(), msix.pba_offset()), (3, 0x3000));
    assert_eq!(caps::find_cap(&mut cfg, at, id::MSIX), Some(0x70));
    assert_eq!(caps::find_cap(&mut cfg, at, id::PCIE), None);
}

#[test]
fn msi_32_bit_register_layout() {
    let info = MsiInfo {
        offset: 0x60,
        control: 0,
    };
    assert!(!info.is_64bit() && !info.enabled());
    assert_eq!(info.max_vectors(), 1);
    assert_eq!(info.upper_address_offset(), None);
    assert_eq!(info.data_offset(), 0x68);
    assert_eq!(info.mask_offset(), None);
    let masked = MsiInfo {
        offset: 0x60,
        control: 0x100,
    };
    assert_eq!(masked.mask_offset(), Some(0x6c));
}

#[test]
fn lspci_like_text() {
    let f = busy_device()
        .caps(&[
            (0x40, id::PM),
            (0x50, id::MSI),
            (0x80, id::PCIE),
            (0xa0, id::MSIX),
        ])
        .ext_cap(0x100, id::EXT_AER, 1, 0);
    let mut cfg = FakeConfig::new(4096).with(sbdf(0, 3, 0), f);
    let funcs = enumerate(&mut cfg, &ALL);
    assert_eq!(
        funcs[0].to_string(),
        "0000:00:03.0 1234:11e8 class 00ff00 (unclassified) rev 01 INTA line 11\n  \
         BAR0 mem32 0xfea00000 [size 1M]\n  \
         BAR2 mem64 pref 0x8000000000 [size 16K]\n  \
         BAR4 io 0xc000 [size 32]\n  \
         ROM 0xfeb00000 [size 256K]\n  \
         caps: PM@40 MSI@50 PCIe@80 MSI-X@a0; ext: AER@100"
    );
    let mut cfg = tree();
    let funcs = enumerate(&mut cfg, &ALL);
    assert_eq!(
        funcs[2].to_string(),
        "0000:01:00.0 1b36:000c class 060400 (bridge/PCI-PCI) rev 01 behind 0000:00:1c.0\n  \
         bridge: primary 01 secondary 02 subordinate 03"
    );
}

#[test]
fn segments_from_mcfg() {
    use crate::acpi::{Mcfg, McfgAllocation, SdtHeader};
    let header = SdtHeader::peek(&crate::acpi::testutil::table(b"MCFG", 1, &[])).unwrap();
    let mcfg = Mcfg {
        header,
        allocations: vec![McfgAllocation {
            base: 0xb000_0000,
            segment: 0,
            start_bus: 0,
            end_bus: 0x7f,
        }],
    };
    assert_eq!(
        SegmentRange::from_mcfg(Some(&mcfg)),
        vec![SegmentRange {
            segment: 0,
            start_bus: 0,
            end_bus: 0x7f
        }]
    );
    assert_eq!(SegmentRange::from_mcfg(None), vec![SegmentRange::LEGACY]);
    assert!(SegmentRange::LEGACY.contains(0xff));
}

/// Config space where every read is a hash of (seed, function, offset):
/// random IDs, header types, bus numbers, BAR masks and capability
/// pointers, and writes that change nothing.
struct RandomConfig {
    seed: u64,
}

impl PciConfig for RandomConfig {
    fn read32(&mut self, sbdf: Sbdf, offset: u16) -> u32 {
        let mut rng = crate::test_rng::XorShift::new(
            self.seed ^ u64::from(sbdf.rid()) << 16 ^ u64::from(offset) << 40,
        );
        let h = rng.next() as u32;
        match offset {
            // One slot in three empty.
            0x00 if h % 3 == 0 => !0,
            // Header types 0, 1, 2 and 3, with or without multifunction.
            0x0c => (h & 0x8300_0000) | (h & 0xff),
            // Small bus numbers, so bridges lead somewhere (or loop).
            0x18 => u32::from_le_bytes([(h % 6) as u8, (h >> 8) as u8 % 6, 5, 0]),
            _ => h,
        }
    }

    fn write32(&mut self, _sbdf: Sbdf, _offset: u16, _value: u32) {}

    fn config_size(&self, _sbdf: Sbdf) -> u16 {
        4096
    }
}

#[test]
fn enumeration_of_random_config_space_terminates_within_bounds() {
    let range = [SegmentRange {
        segment: 0,
        start_bus: 0,
        end_bus: 5,
    }];
    for seed in 1..=4 {
        let funcs = enumerate(&mut RandomConfig { seed }, &range);
        assert!(!funcs.is_empty());
        for f in &funcs {
            assert!(f.caps.len() <= 48);
            assert!(f.caps.iter().all(|c| c.offset >= 0x40 && c.offset % 4 == 0));
            assert!(f.ext_caps.len() <= 960);
            assert!(f.bars.len() <= 6);
            assert!(f.bars.iter().all(|b| b.size.is_power_of_two()));
            let _ = f.to_string();
            assert!(upstream_bridges(&funcs, f.sbdf).len() <= 6);
        }
        let mut sorted = addrs(&funcs);
        sorted.dedup();
        assert_eq!(sorted.len(), funcs.len(), "each function listed once");
    }
}
