//! `_PRT`: finding the root bridge's table, choosing the APIC-mode
//! package, following link devices.

use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::acpi::aml::prt::eisa_id;
use crate::acpi::aml::resource::first_interrupt;
use crate::acpi::aml::{gsi_for, pci_routes, AmlErrorKind, AmlPath, PrtSource, Route};

/// `Device (LNKx)` with a constant `_CRS` template.
fn static_link(n: &str, template: &[u8]) -> Vec<u8> {
    device(
        n,
        &cat(&[
            name_op("_HID", &int(0x0f0c_d041)),
            name_op("_CRS", &buffer(template)),
        ]),
    )
}

/// `Device (LNKx)` whose `_CRS` is a method (the chipset decides).
fn chipset_link(n: &str) -> Vec<u8> {
    device(
        n,
        &cat(&[
            name_op("_HID", &int(0x0f0c_d041)),
            method("_CRS", 0, &cat(&[vec![0xa4], name("IQCR"), name("PRQA")])),
        ]),
    )
}

/// `Scope (\_SB) { Device (PCI0) { ids, body } links }`.
fn machine(pci0: &[u8], links: &[u8]) -> Vec<u8> {
    dsdt(&scope(
        "\\_SB",
        &cat(&[
            device("PCI0", &cat(&[host_bridge_ids(), pci0.to_vec()])),
            links.to_vec(),
        ]),
    ))
}

const LEVEL_HIGH: Route = Route {
    gsi: 0,
    level: true,
    active_low: false,
};

#[test]
fn eisa_ids_compress_as_aml_stores_them() {
    assert_eq!(eisa_id(b"PNP0A03"), 0x030a_d041);
    assert_eq!(eisa_id(b"PNP0A08"), 0x080a_d041);
    assert_eq!(eisa_id(b"PNP0C0F"), 0x0f0c_d041);
}

#[test]
fn zero_sources_are_wired_gsis_level_active_low() {
    let prt = package(&[prt_entry(3, 0, &int(0), 19), prt_entry(3, 1, &int(0), 16)]);
    let t = machine(&name_op("_PRT", &prt), &[]);
    let routes = pci_routes(&t, &[]).unwrap();
    assert_eq!(routes.len(), 2);
    assert_eq!(
        gsi_for(&routes, 3, 0),
        Some(Route {
            gsi: 19,
            level: true,
            active_low: true
        })
    );
    assert_eq!(gsi_for(&routes, 3, 1).map(|r| r.gsi), Some(16));
    assert_eq!(gsi_for(&routes, 3, 2), None);
    assert_eq!(gsi_for(&routes, 4, 0), None);
}

#[test]
fn link_devices_with_extended_interrupts_give_their_gsi_and_flags() {
    // Flags 0x09: consumer, level, active-high, shared; 0x0f: edge,
    // active-low.
    let links = cat(&[
        static_link("GSIA", &extended_irq(16, 0x09)),
        static_link("GSIB", &extended_irq(17, 0x0f)),
    ]);
    let prt = package(&[
        prt_entry(1, 0, &name("GSIA"), 0),
        prt_entry(1, 1, &name("\\_SB.GSIB"), 0),
    ]);
    let t = machine(&name_op("_PRT", &prt), &links);
    let routes = pci_routes(&t, &[]).unwrap();
    assert_eq!(
        gsi_for(&routes, 1, 0),
        Some(Route {
            gsi: 16,
            ..LEVEL_HIGH
        })
    );
    assert_eq!(
        gsi_for(&routes, 1, 1),
        Some(Route {
            gsi: 17,
            level: false,
            active_low: true
        })
    );
    assert!(
        matches!(&routes[0].source, PrtSource::Link { link, .. } if *link == AmlPath::parse("\\_SB.GSIA").unwrap())
    );
}

#[test]
fn links_whose_crs_is_a_method_need_the_chipsets_routing() {
    // The i440fx shape: a Name _PRT with LNKA-LNKD, whose _CRS read the
    // PIIX's PIRQ route control registers.
    let links = cat(&[chipset_link("LNKA"), chipset_link("LNKB")]);
    let prt = package(&[
        prt_entry(3, 0, &name("LNKB"), 0),
        prt_entry(3, 1, &name("LNKA"), 0),
    ]);
    let t = machine(&name_op("_PRT", &prt), &links);
    let routes = pci_routes(&t, &[]).unwrap();
    assert_eq!(
        routes[0].source,
        PrtSource::NeedsChipsetRouting {
            link: AmlPath::parse("\\_SB.LNKB").unwrap()
        }
    );
    assert_eq!(gsi_for(&routes, 3, 0), None);
}

#[test]
fn links_that_cannot_be_followed_say_why() {
    let links = cat(&[
        device("NOCR", &name_op("_HID", &int(0x0f0c_d041))),
        static_link("NOIR", &[0x79, 0]),
        name_op("NDEV", &int(1)),
        static_link("GSIA", &extended_irq(16, 0x09)),
    ]);
    let prt = package(&[
        prt_entry(1, 0, &name("NOCR"), 0),
        prt_entry(1, 1, &name("NOIR"), 0),
        prt_entry(1, 2, &name("NDEV"), 0),
        prt_entry(1, 3, &name("MISS"), 0),
        prt_entry(2, 0, &name("GSIA"), 1),
    ]);
    let t = machine(&name_op("_PRT", &prt), &links);
    let routes = pci_routes(&t, &[]).unwrap();
    let whys: Vec<&str> = routes
        .iter()
        .map(|r| match &r.source {
            PrtSource::Unresolved { why, .. } => *why,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        whys,
        [
            "no _CRS",
            "no single interrupt in _CRS",
            "not a device",
            "no such object",
            "SourceIndex other than 0"
        ]
    );
}

#[test]
fn a_prt_method_returns_the_package_of_the_apic_mode_branch() {
    // Method (_PRT) { If (LEqual (PICF, Zero)) { Return (PRTP) } Else { Return (PRTA) } }
    let pred = cat(&[vec![0x93], name("PICF"), int(0)]);
    let body = cat(&[
        with_pkg(&[0xa0], &cat(&[pred, return_name("PRTP")])),
        with_pkg(&[0xa1], &return_name("PRTA")),
    ]);
    let pci0 = cat(&[
        name_op("PRTP", &package(&[prt_entry(3, 0, &name("LNKA"), 0)])),
        name_op("PRTA", &package(&[prt_entry(3, 0, &name("GSIA"), 0)])),
        method("_PRT", 0, &body),
    ]);
    let links = cat(&[
        chipset_link("LNKA"),
        static_link("GSIA", &extended_irq(16, 0x09)),
    ]);
    // PICF at the root, as QEMU declares it.
    let mut aml = machine(&pci0, &links)[36..].to_vec();
    aml.extend(name_op("\\PICF", &int(0)));
    aml.extend(pic_method("\\PICF"));
    let t = dsdt(&aml);
    let routes = pci_routes(&t, &[]).unwrap();
    assert_eq!(
        gsi_for(&routes, 3, 0),
        Some(Route {
            gsi: 16,
            ..LEVEL_HIGH
        })
    );
}

#[test]
fn the_pic_variable_decides_the_branch_and_without_pic_nothing_is_guessed() {
    // Real firmware: If (PICM) { Return (AR00) } Return (PR00).
    let body = cat(&[
        with_pkg(&[0xa0], &cat(&[name("PICM"), return_name("AR00")])),
        return_name("PR00"),
    ]);
    let pci0 = cat(&[
        name_op("PR00", &package(&[prt_entry(2, 0, &int(0), 11)])),
        name_op("AR00", &package(&[prt_entry(2, 0, &int(0), 18)])),
        name_op("PICM", &int(0)),
        method("_PRT", 0, &body),
    ]);
    let mut aml = machine(&pci0, &[])[36..].to_vec();
    aml.extend(pic_method("\\_SB.PCI0.PICM"));
    let routes = pci_routes(&dsdt(&aml), &[]).unwrap();
    assert_eq!(gsi_for(&routes, 2, 0).map(|r| r.gsi), Some(18));
    // Without \_PIC, PICM is just a variable: undecided, not a guess.
    let e = pci_routes(&machine(&pci0, &[]), &[]).unwrap_err();
    assert_eq!(e.kind, AmlErrorKind::NoStaticPrt);
}

#[test]
fn an_inline_returned_package_is_a_candidate() {
    let body = cat(&[vec![0xa4], package(&[prt_entry(7, 3, &int(0), 23)])]);
    let t = machine(&method("_PRT", 0, &body), &[]);
    let routes = pci_routes(&t, &[]).unwrap();
    assert_eq!((routes[0].device, routes[0].pin), (7, 3));
}

#[test]
fn only_the_host_bridge_prt_is_the_root_buss() {
    // A bridge below PCI0 with its own _PRT comes first in the table but
    // is not a host bridge; a second host bridge has _BBN 0x40.
    let bridge = device(
        "BR1",
        &name_op("_PRT", &package(&[prt_entry(0, 0, &int(0), 40)])),
    );
    let pci0 = cat(&[
        bridge,
        name_op("_PRT", &package(&[prt_entry(0, 0, &int(0), 16)])),
    ]);
    let pci1 = device(
        "PCI1",
        &cat(&[
            host_bridge_ids(),
            name_op("_BBN", &int(0x40)),
            name_op("_PRT", &package(&[prt_entry(0, 0, &int(0), 50)])),
        ]),
    );
    let t = dsdt(&scope(
        "\\_SB",
        &cat(&[
            pci1,
            device(
                "PCI0",
                &cat(&[
                    name_op("_HID", &[0x0d, b'P', b'N', b'P', b'0', b'A', b'0', b'3', 0]),
                    pci0,
                ]),
            ),
        ]),
    ));
    let routes = pci_routes(&t, &[]).unwrap();
    assert_eq!(gsi_for(&routes, 0, 0).map(|r| r.gsi), Some(16));
}

#[test]
fn no_host_bridge_prt_is_an_error() {
    let t = dsdt(&scope(
        "\\_SB",
        &device("PCI0", &name_op("_PRT", &package(&[]))),
    ));
    assert_eq!(
        pci_routes(&t, &[]).unwrap_err().kind,
        AmlErrorKind::NoRootPrt
    );
    let t = machine(&method("_PRT", 0, &[0xa4, 0x60]), &[]);
    assert_eq!(
        pci_routes(&t, &[]).unwrap_err().kind,
        AmlErrorKind::NoStaticPrt
    );
}

#[test]
fn malformed_entries_are_skipped_with_the_reason_at_their_offset() {
    let cases: [(Vec<u8>, &str); 6] = [
        (
            package(&[int(0x3ffff), int(0), int(0)]),
            "entry does not have four elements",
        ),
        (prt_entry(32, 0, &int(0), 16), "device number above 31"),
        (prt_entry(1, 4, &int(0), 16), "Pin is not 0 to 3"),
        (
            prt_entry(1, 0, &int(5), 16),
            "Source is neither Zero nor a name",
        ),
        (
            prt_entry(1, 0, &int(0), 1 << 40),
            "SourceIndex is not a GSI",
        ),
        (int(1), "entry is not a package"),
    ];
    for (entry, why) in cases {
        let good = prt_entry(2, 1, &int(0), 17);
        let t = machine(&name_op("_PRT", &package(&[entry, good])), &[]);
        let r = crate::acpi::aml::Routing::build(&t, &[]).unwrap();
        let prt = r.prt(&r.host_bridges()[0].path).unwrap().unwrap();
        assert_eq!(prt.skipped.len(), 1);
        assert_eq!(prt.skipped[0].kind, AmlErrorKind::BadPrtEntry(why));
        assert!(prt.skipped[0].offset > 36 && prt.skipped[0].offset < t.len());
        assert_eq!(gsi_for(&prt.entries, 2, 1).map(|r| r.gsi), Some(17));
    }
    // A _PRT that is not a package at all is still an error.
    let t = machine(&name_op("_PRT", &int(3)), &[]);
    let e = pci_routes(&t, &[]).unwrap_err();
    assert_eq!(e.kind, AmlErrorKind::BadPrtEntry("_PRT is not a package"));
}

#[test]
fn resource_templates_give_their_first_single_interrupt() {
    let irq = |gsi, flags| first_interrupt(&extended_irq(gsi, flags)).unwrap();
    assert_eq!(
        (
            irq(20, 0x09).number,
            irq(20, 0x09).level,
            irq(20, 0x09).active_low
        ),
        (20, true, false)
    );
    // IRQ descriptor with an information byte: level (bit 0 clear),
    // active-low (bit 3).
    let i = first_interrupt(&[0x23, 0x00, 0x08, 0x18, 0x79, 0]).unwrap();
    assert_eq!(
        (i.number, i.level, i.active_low, i.extended),
        (11, true, true, false)
    );
    // Without it: edge, active-high.
    let i = first_interrupt(&[0x22, 0x20, 0x00, 0x79, 0]).unwrap();
    assert_eq!((i.number, i.level, i.active_low), (5, false, false));
    // A mask of choices, an end tag first, a truncated descriptor.
    assert_eq!(first_interrupt(&[0x22, 0x20, 0x0c, 0x79, 0]), None);
    assert_eq!(first_interrupt(&[0x79, 0x00, 0x89]), None);
    assert_eq!(first_interrupt(&[0x89, 0x06, 0x00, 0x09, 0x01, 0x10]), None);
    // An Extended Interrupt descriptor after another large item.
    let mut t = vec![0x86, 0x09, 0x00, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    t.extend(extended_irq(22, 0x09));
    assert_eq!(first_interrupt(&t).unwrap().number, 22);
}

#[test]
fn deeply_nested_blocks_and_predicates_are_undecided_not_a_deep_recursion() {
    // If (One) { If (One) { ... Return (Package) } }, 40 deep (each level
    // well within the reader's PkgLength and nesting limits).
    let mut body = cat(&[vec![0xa4], package(&[prt_entry(1, 0, &int(0), 16)])]);
    for _ in 0..40 {
        body = with_pkg(&[0xa0], &cat(&[vec![0x01], body]));
    }
    let t = machine(&method("_PRT", 0, &body), &[]);
    assert_eq!(
        pci_routes(&t, &[]).unwrap_err().kind,
        AmlErrorKind::NoStaticPrt
    );
    // A predicate of 30 LNots (deeper than the evaluator goes): no value,
    // both ways are followed and agree. Of 100,000: not even stepped over,
    // undecided.
    for (n, decided) in [(30, true), (100_000, false)] {
        let mut pred = vec![0x92; n];
        pred.push(0x01);
        let body = cat(&[
            with_pkg(&[0xa0], &cat(&[pred, return_name("PRTA")])),
            return_name("PRTA"),
        ]);
        let pci0 = cat(&[
            name_op("PRTA", &package(&[prt_entry(2, 0, &int(0), 18)])),
            method("_PRT", 0, &body),
        ]);
        let routes = pci_routes(&machine(&pci0, &[]), &[]);
        assert_eq!(routes.is_ok(), decided, "{n}");
        if let Ok(r) = routes {
            assert_eq!(gsi_for(&r, 2, 0).map(|r| r.gsi), Some(18));
        }
    }
}
