//! The ACPI table parsers and the AML reader on arbitrary bytes: the
//! first byte picks the parser (MADT, MCFG, FADT, HPET, DMAR, IVRS, or the
//! AML reader over a DSDT), the rest is the table. None may panic; the
//! AML reader's routing decisions (every host bridge's `_PRT`, every
//! device's by `_ADR`) must end, which the evaluator's step and depth
//! bounds guarantee.
#![no_main]

use libfuzzer_sys::fuzz_target;
use platform::acpi::aml::Routing;
use platform::acpi::{AcpiTable, Dmar, Fadt, Hpet, Ivrs, Madt, Mcfg};

fn parse<T: AcpiTable + core::fmt::Display>(bytes: &[u8]) {
    if let Ok(t) = T::parse(bytes) {
        let _ = format!("{t}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, table)) = data.split_first() else {
        return;
    };
    match which % 7 {
        0 => parse::<Madt>(table),
        1 => parse::<Mcfg>(table),
        2 => parse::<Fadt>(table),
        3 => parse::<Hpet>(table),
        4 => parse::<Dmar>(table),
        5 => parse::<Ivrs>(table),
        _ => {
            // A DSDT header, so the AML itself is what varies.
            let mut t = b"DSDT".to_vec();
            t.extend_from_slice(&((36 + table.len()) as u32).to_le_bytes());
            t.resize(36, 0);
            t.extend_from_slice(table);
            if let Ok(r) = Routing::build(&t, &[]) {
                for h in r.host_bridges() {
                    let _ = format!("{:?}", r.prt(&h.path));
                    for dev in 0..32 {
                        if let Some(c) = r.child(&h.path, dev, 0) {
                            let _ = format!("{:?}", r.prt(c));
                        }
                    }
                }
            }
        }
    }
});
