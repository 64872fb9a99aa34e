//! Every parser over many pseudo-random and mutated inputs: none may panic.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use super::testutil::{seal, table, Put};
use super::*;
use crate::test_rng::XorShift;

type Parser = fn(&[u8]) -> Result<usize, AcpiError>;

/// Parses and, on success, formats the result (Display must not panic
/// either); returns the text length.
fn run<T: AcpiTable + core::fmt::Display>(bytes: &[u8]) -> Result<usize, AcpiError> {
    T::parse(bytes).map(|t| format!("{t}").len())
}

fn parsers() -> [(&'static [u8; 4], Parser); 6] {
    [
        (b"APIC", run::<Madt>),
        (b"MCFG", run::<Mcfg>),
        (b"FACP", run::<Fadt>),
        (b"HPET", run::<Hpet>),
        (b"DMAR", run::<Dmar>),
        (b"IVRS", run::<Ivrs>),
    ]
}

/// One valid table of each kind, to mutate.
fn samples() -> Vec<Vec<u8>> {
    let mut madt = vec![];
    madt.u32(0xfee0_0000).u32(1);
    madt.u8(0).u8(8).u8(0).u8(0).u32(1);
    madt.u8(1).u8(12).u8(0).u8(0).u32(0xfec0_0000).u32(0);
    madt.u8(2).u8(10).u8(0).u8(0).u32(2).u16(0);
    madt.u8(9).u8(16).u16(0).u32(1).u32(1).u32(1);
    let mut mcfg = vec![0u8; 8];
    mcfg.u64(0xb000_0000).u16(0).u8(0).u8(0xff).u32(0);
    let mut fadt = vec![0u8; 208];
    fadt[10] = 9;
    let mut hpet = vec![];
    hpet.u32(0x8086_a201)
        .gas(0, 0, 0, 0xfed0_0000)
        .u8(0)
        .u16(0)
        .u8(0);
    let mut dmar = vec![];
    dmar.u8(38).u8(3).raw(&[0; 10]);
    dmar.u16(0).u16(32).u8(1).u8(0).u16(0).u64(0xfed9_0000);
    dmar.u8(3).u8(8).u16(0).u8(0).u8(0).u8(0x1f).u8(0);
    dmar.u8(1).u8(8).u16(0).u8(0).u8(0).u8(0x1c).u8(0);
    dmar.u16(1).u16(32).u32(0).u64(0x7f00_0000).u64(0x7f0f_ffff);
    dmar.u8(1).u8(8).u16(0).u8(0).u8(0).u8(0x14).u8(0);
    let mut ivrs = vec![];
    ivrs.u32(0x0030_2841).u64(0);
    ivrs.u8(0x40)
        .u8(0)
        .u16(40 + 4 + 8 + 8 + 25)
        .u16(0x10)
        .u16(0x40);
    ivrs.u64(0xfeb8_0000).u16(0).u16(0).u32(0).u64(0).u64(0);
    ivrs.u8(1).u16(0).u8(0);
    ivrs.u8(0x48).u16(0).u8(0).u8(0).u16(0xa0).u8(1);
    ivrs.u8(0x43).u16(0x100).u8(0).u8(0).u16(0x100).u8(0);
    ivrs.u8(0xf0)
        .u16(0xa5)
        .u8(0)
        .raw(b"AMDI0020")
        .raw(&[0; 8])
        .u8(2)
        .u8(3)
        .raw(b"abc");
    ivrs.u8(0x21)
        .u8(7)
        .u16(32)
        .u16(0x10)
        .u16(0)
        .u64(0)
        .u64(0x1000)
        .u64(0x1000);
    vec![
        table(b"APIC", 3, &madt),
        table(b"MCFG", 1, &mcfg),
        table(b"FACP", 3, &fadt),
        table(b"HPET", 1, &hpet),
        table(b"DMAR", 1, &dmar),
        table(b"IVRS", 2, &ivrs),
    ]
}

#[test]
fn samples_are_valid() {
    for ((_, parse), sample) in parsers().iter().zip(samples()) {
        parse(&sample).unwrap();
    }
}

#[test]
fn parsers_survive_random_bytes() {
    let mut rng = XorShift::new(0x5eed_0001);
    for (_, parse) in parsers() {
        for _ in 0..2000 {
            let len = rng.below(300);
            let bytes = rng.bytes(len);
            let _ = parse(&bytes);
        }
    }
}

#[test]
fn parsers_survive_random_bodies_behind_a_good_header() {
    let mut rng = XorShift::new(0x5eed_0002);
    for (sig, parse) in parsers() {
        for _ in 0..3000 {
            let len = rng.below(400);
            let body = rng.small_bytes(len);
            let mut t = table(sig, rng.below(7) as u8, &body);
            if rng.below(4) == 0 {
                // A length field that disagrees with the data.
                let fake_len = rng.next() as u32 % 600;
                t[4..8].copy_from_slice(&fake_len.to_le_bytes());
            }
            let _ = parse(&t);
        }
    }
}

#[test]
fn parsers_survive_mutations_of_valid_tables() {
    let mut rng = XorShift::new(0x5eed_0003);
    for ((sig, parse), sample) in parsers().iter().zip(samples()) {
        let mut ok = 0;
        for _ in 0..4000 {
            let mut t = sample.clone();
            for _ in 0..1 + rng.below(6) {
                let i = rng.below(t.len());
                t[i] = match rng.below(3) {
                    0 => rng.next() as u8,
                    1 => t[i] ^ (1 << rng.below(8)),
                    _ => rng.below(64) as u8,
                };
            }
            match rng.below(4) {
                0 => t.truncate(rng.below(t.len() + 1)),
                1 => {
                    let extra = rng.below(40);
                    t.extend(rng.small_bytes(extra));
                    seal(&mut t);
                }
                2 => seal(&mut t),
                _ => {}
            }
            ok += usize::from(parse(&t).is_ok());
        }
        assert!(ok > 0, "{}: no mutated table parsed", Signature(**sig));
    }
}

#[test]
fn root_walk_and_rsdp_scan_survive_random_memory() {
    let mut rng = XorShift::new(0x5eed_0004);
    for _ in 0..300 {
        let mut mem = SparseMemory::new();
        // Random tables at a few addresses, some with real signatures.
        let mut addrs = vec![];
        for i in 0..6u64 {
            let pa = 0x10_0000 + i * 0x1000 + rng.below(64) as u64;
            let len = rng.below(200);
            let mut bytes = rng.small_bytes(len);
            if bytes.len() >= 8 && rng.below(2) == 0 {
                bytes[..4].copy_from_slice(parsers()[rng.below(6)].0);
                let l = (rng.below(220) as u32).to_le_bytes();
                bytes[4..8].copy_from_slice(&l);
            }
            mem.insert(pa, bytes);
            addrs.push(pa);
        }
        let mut xsdt = vec![];
        for _ in 0..rng.below(10) {
            let pick = addrs[rng.below(addrs.len())];
            xsdt.u64(if rng.below(5) == 0 { rng.next() } else { pick });
        }
        let mut x = table(b"XSDT", 1, &xsdt);
        if rng.below(3) == 0 {
            x.truncate(rng.below(x.len() + 1));
        }
        mem.insert(0x8000, x);
        if let Ok(root) = RootTable::read_at(&mem, RootKind::Xsdt, 0x8000) {
            let _ = format!("{root}");
            for t in &root.tables {
                let _ = t.bytes(&mem);
            }
            let mut notes = Vec::new();
            let _ = root.pick::<Madt>(&mem, &mut notes);
            let _ = root.pick::<Dmar>(&mem, &mut notes);
            let _ = root.pick::<Ivrs>(&mem, &mut notes);
            for n in &notes {
                let _ = format!("{n}");
            }
            for e in &root.errors {
                let _ = format!("{e}");
            }
        }
        // A BIOS area with random bytes and a few RSDP signatures.
        let mut area = rng.small_bytes(0x400);
        for _ in 0..3 {
            let at = rng.below(0x400 / 16) * 16;
            let end = (at + 8).min(area.len());
            area[at..end].copy_from_slice(&b"RSD PTR "[..end - at]);
        }
        mem.insert(0xe_0000, area);
        let range = 0xe_0000..0xe_0400;
        if let Some((_, rsdp)) = find_rsdp(&mem, &[range]) {
            let _ = format!("{rsdp}");
            let _ = RootTable::read(&mem, &rsdp);
        }
        let len = rng.below(60);
        let _ = Rsdp::parse(&rng.bytes(len));
    }
}
