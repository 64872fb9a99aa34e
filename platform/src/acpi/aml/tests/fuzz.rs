//! Pseudo-random and mutated AML: the reader may fail, never panic.

use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;
use crate::acpi::aml::{pci_routes, Namespace};
use crate::test_rng::XorShift;

/// A DSDT in the q35 shape (names, packages, links, a `_PRT` method) to
/// mutate.
fn sample() -> Vec<u8> {
    let pred = cat(&[vec![0x93], name("PICF"), int(0)]);
    let body = cat(&[
        with_pkg(&[0xa0], &cat(&[pred, return_name("PRTP")])),
        with_pkg(&[0xa1], &return_name("PRTA")),
    ]);
    let pci0 = cat(&[
        host_bridge_ids(),
        name_op("PRTP", &package(&[prt_entry(3, 0, &name("LNKA"), 0)])),
        name_op(
            "PRTA",
            &package(&[
                prt_entry(3, 0, &name("GSIA"), 0),
                prt_entry(4, 0, &int(0), 17),
            ]),
        ),
        method("_PRT", 0, &body),
    ]);
    let links = cat(&[
        device(
            "LNKA",
            &method("_CRS", 0, &cat(&[vec![0xa4], name("IQCR"), name("PRQA")])),
        ),
        device("GSIA", &name_op("_CRS", &buffer(&extended_irq(16, 0x09)))),
    ]);
    dsdt(&cat(&[
        name_op("PICF", &int(0)),
        pic_method("PICF"),
        scope("\\_SB", &cat(&[device("PCI0", &pci0), links])),
    ]))
}

/// Runs the reader and formats what it found and its errors.
fn exercise(t: &[u8]) {
    if let Ok(ns) = Namespace::build(t, &[]) {
        for o in ns.objects() {
            let _ = format!("{} {:?}", o.path, o.kind);
            let _ = ns.method_returns(o);
        }
        for e in ns.errors() {
            let _ = format!("{e}");
        }
    }
    // The routing decisions (every host bridge's _PRT walked as in APIC
    // mode, every bridge found by _ADR) must end.
    if let Ok(r) = crate::acpi::aml::Routing::build(t, &[]) {
        for h in r.host_bridges() {
            let _ = format!("{:?}", r.prt(&h.path));
            for dev in 0..32 {
                if let Some(c) = r.child(&h.path, dev, 1) {
                    let _ = format!("{:?}", r.prt(c));
                }
            }
        }
    }
    match pci_routes(t, &[]) {
        Ok(routes) => {
            let _ = format!("{routes:?}");
        }
        Err(e) => {
            let _ = format!("{e}");
        }
    }
}

#[test]
fn the_sample_resolves_before_it_is_mutated() {
    let routes = pci_routes(&sample(), &[]).unwrap();
    assert_eq!(routes.len(), 2);
}

#[test]
fn mutated_tables_never_panic() {
    let base = sample();
    let mut rng = XorShift::new(0x05ee_da41);
    for _ in 0..20_000 {
        let mut t = base.clone();
        for _ in 0..1 + rng.below(4) {
            let at = 36 + rng.below(t.len() - 36);
            t[at] = rng.next() as u8;
        }
        if rng.below(4) == 0 {
            let cut = 36 + rng.below(t.len() - 36);
            t.truncate(cut);
            crate::acpi::testutil::seal(&mut t);
        }
        exercise(&t);
    }
}

/// Bytes that steer random input into the walker's interesting paths:
/// definition opcodes, data prefixes, name prefixes and characters,
/// PkgLength lead bytes, resource descriptor tags.
const ALPHABET: [u8; 24] = [
    0x5b, 0x82, 0x10, 0x14, 0x08, 0x12, 0x11, 0xa4, 0xa0, 0x5c, 0x2e, 0x2f, b'_', b'A', 0x0a, 0x0c,
    0x00, 0x01, 0x40, 0x80, 0xc0, 0x3f, 0x89, 0x79,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let start = std::time::Instant::now();
        exercise(&dsdt(&body));
        exercise(&body);
        // Never loops: bounded steps and depth, whatever the bytes.
        prop_assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn random_terms_from_the_opcode_alphabet_never_panic(
        picks in proptest::collection::vec((0..ALPHABET.len() + 1, any::<u8>()), 0..400)
    ) {
        // Mostly opcodes, prefixes and PkgLength lead bytes, sometimes
        // any byte.
        let body: Vec<u8> = picks
            .iter()
            .map(|&(i, b)| ALPHABET.get(i).copied().unwrap_or(b))
            .collect();
        let start = std::time::Instant::now();
        exercise(&dsdt(&body));
        prop_assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }
}
