//! The AML reader against the DSDTs of the QEMU machines the emulator
//! scenarios boot (captured by `cargo xtask acpi-fixtures`).

use platform::acpi::aml::{gsi_for, pci_routes, Namespace, ObjectKind, PrtSource, Returned};
mod common;

use common::table;

const MACHINES: [&str; 2] = ["q35-intel-iommu", "q35-amd-iommu"];

#[test]
fn the_q35_dsdt_is_walked_without_errors() {
    for machine in MACHINES {
        let dsdt = table(machine, "DSDT");
        let ns = Namespace::build(&dsdt, &[]).expect("DSDT header");
        assert!(ns.errors().is_empty(), "{machine}: {:?}", ns.errors());
        // The routing method and the two tables it chooses between.
        let prt = ns.find("\\_SB.PCI0._PRT").expect("_PRT");
        assert!(matches!(prt.kind, ObjectKind::Method { args: 0, .. }));
        assert!(ns.find("\\_SB.PCI0.PRTP").is_some());
        assert!(ns.find("\\_SB.PCI0.PRTA").is_some());
        let (returned, err) = ns.method_returns(prt);
        assert_eq!(err, None);
        let names: Vec<String> = returned
            .iter()
            .map(|r| match r {
                Returned::Name(n) => format!("{n}"),
                other => panic!("{machine}: {other:?}"),
            })
            .collect();
        assert_eq!(names, ["PRTP", "PRTA"], "{machine}");
    }
}

#[test]
fn q35_routes_come_from_the_apic_mode_table_through_the_gsi_links() {
    for machine in MACHINES {
        let routes = pci_routes(&table(machine, "DSDT"), &[]).expect("routes");
        // Every slot, every pin, in PRTA: its sources are the GSIA-GSIH
        // link devices, whose _CRS is an Extended Interrupt descriptor:
        // GSI 16-23, level, active-high (the ICH9 PIRQs as QEMU wires them).
        assert_eq!(routes.len(), 32 * 4, "{machine}");
        for e in &routes {
            let PrtSource::Link { link, route } = &e.source else {
                panic!("{machine}: {e:?}");
            };
            let letter = format!("{link}").into_bytes()[9];
            assert_eq!(route.gsi, 16 + u32::from(letter - b'A'), "{machine}: {e:?}");
            assert!(route.level && !route.active_low, "{machine}: {e:?}");
        }
    }
}

/// The swizzle the q35 table holds (read from PRTA, not assumed): slots 0
/// to 24 rotate over GSIE-GSIH by (slot + pin) mod 4; slots 25 to 29 and 31
/// (the ICH9's own functions) take GSIA-GSID by pin; slot 30 (the DMI-PCI
/// bridge) takes GSIE-GSIH by pin.
fn q35_gsi(slot: u8, pin: u8) -> u32 {
    let (base, rotate) = match slot {
        0..=24 => (20, u32::from(slot)),
        25..=29 | 31 => (16, 0),
        _ => (20, 0),
    };
    base + (rotate + u32::from(pin)) % 4
}

#[test]
fn q35_slots_follow_the_swizzle_in_the_table() {
    for machine in MACHINES {
        let routes = pci_routes(&table(machine, "DSDT"), &[]).expect("routes");
        for slot in 0..32 {
            for pin in 0..4 {
                let r = gsi_for(&routes, slot, pin).expect("routed");
                assert_eq!(r.gsi, q35_gsi(slot, pin), "{machine}: {slot}/{pin}");
            }
        }
    }
}

#[test]
fn the_scenario_devices_inta_gsis() {
    // edu at 00:03.0, e1000e at 00:04.0, NVMe at 00:05.0 (ci/src/qemu.rs).
    for machine in MACHINES {
        let routes = pci_routes(&table(machine, "DSDT"), &[]).expect("routes");
        let inta = |slot| gsi_for(&routes, slot, 0).map(|r| (r.gsi, r.level, r.active_low));
        assert_eq!(inta(3), Some((23, true, false)), "{machine}: edu");
        assert_eq!(inta(4), Some((20, true, false)), "{machine}: e1000e");
        assert_eq!(inta(5), Some((21, true, false)), "{machine}: NVMe");
    }
}

#[test]
fn q35_pic_mode_links_need_the_chipsets_routing() {
    // PRTP's LNKx devices compute _CRS from the ICH9's PIRQ registers.
    let dsdt = table("q35-intel-iommu", "DSDT");
    let ns = Namespace::build(&dsdt, &[]).expect("DSDT header");
    let crs = ns.find("\\_SB.LNKE._CRS").expect("LNKE._CRS");
    assert!(matches!(crs.kind, ObjectKind::Method { .. }));
    let crs = ns.find("\\_SB.GSIE._CRS").expect("GSIE._CRS");
    assert!(matches!(crs.kind, ObjectKind::Name(_)));
}
