//! Tests of the AML reader, over AML assembled here by hand (the helpers
//! below emit the encodings of the ACPI specification's chapter 20) and
//! over pseudo-random and mutated bytes.

use alloc::vec;
use alloc::vec::Vec;

use crate::acpi::testutil::table;

mod firmware;
mod fuzz;
mod prt;
mod reader;

/// A DSDT holding `aml`.
fn dsdt(aml: &[u8]) -> Vec<u8> {
    table(b"DSDT", 2, aml)
}

/// The PkgLength encoding of an object whose body (after the PkgLength)
/// is `body_len` bytes.
fn pkg_length(body_len: usize) -> Vec<u8> {
    for follow in 0..4usize {
        let total = body_len + 1 + follow;
        let limit = if follow == 0 {
            1 << 6
        } else {
            1 << (4 + 8 * follow)
        };
        if total < limit {
            if follow == 0 {
                return vec![total as u8];
            }
            let mut out = vec![((follow as u8) << 6) | (total & 0x0f) as u8];
            for i in 0..follow {
                out.push((total >> (4 + 8 * i)) as u8);
            }
            return out;
        }
    }
    panic!("body too long");
}

/// `op`, a PkgLength, then `body`.
fn with_pkg(op: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = op.to_vec();
    out.extend(pkg_length(body.len()));
    out.extend_from_slice(body);
    out
}

/// A NameString from ASL-like text: `\`, `^` prefixes, dot-separated
/// segments padded with `_`.
fn name(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = text;
    if let Some(r) = rest.strip_prefix('\\') {
        out.push(0x5c);
        rest = r;
    }
    while let Some(r) = rest.strip_prefix('^') {
        out.push(0x5e);
        rest = r;
    }
    let segs: Vec<[u8; 4]> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split('.')
            .map(|s| {
                let mut seg = [b'_'; 4];
                seg[..s.len()].copy_from_slice(s.as_bytes());
                seg
            })
            .collect()
    };
    match segs.len() {
        0 => out.push(0),
        1 => {}
        2 => out.push(0x2e),
        n => {
            out.push(0x2f);
            out.push(n as u8);
        }
    }
    for s in segs {
        out.extend_from_slice(&s);
    }
    out
}

/// An integer in its shortest encoding.
fn int(v: u64) -> Vec<u8> {
    match v {
        0 => vec![0x00],
        1 => vec![0x01],
        u64::MAX => vec![0xff],
        v if v <= 0xff => vec![0x0a, v as u8],
        v if v <= 0xffff => {
            let mut o = vec![0x0b];
            o.extend_from_slice(&(v as u16).to_le_bytes());
            o
        }
        v if v <= 0xffff_ffff => {
            let mut o = vec![0x0c];
            o.extend_from_slice(&(v as u32).to_le_bytes());
            o
        }
        v => {
            let mut o = vec![0x0e];
            o.extend_from_slice(&v.to_le_bytes());
            o
        }
    }
}

/// `Package () { elements }`.
fn package(elements: &[Vec<u8>]) -> Vec<u8> {
    let mut body = vec![elements.len() as u8];
    for e in elements {
        body.extend_from_slice(e);
    }
    with_pkg(&[0x12], &body)
}

/// `Buffer () { bytes }`.
fn buffer(bytes: &[u8]) -> Vec<u8> {
    let mut body = int(bytes.len() as u64);
    body.extend_from_slice(bytes);
    with_pkg(&[0x11], &body)
}

/// `Name (n, value)`.
fn name_op(n: &str, value: &[u8]) -> Vec<u8> {
    let mut out = vec![0x08];
    out.extend(name(n));
    out.extend_from_slice(value);
    out
}

/// `Scope (n) { body }`.
fn scope(n: &str, body: &[u8]) -> Vec<u8> {
    let mut b = name(n);
    b.extend_from_slice(body);
    with_pkg(&[0x10], &b)
}

/// `Device (n) { body }`.
fn device(n: &str, body: &[u8]) -> Vec<u8> {
    let mut b = name(n);
    b.extend_from_slice(body);
    with_pkg(&[0x5b, 0x82], &b)
}

/// `Method (n, args) { body }`.
fn method(n: &str, args: u8, body: &[u8]) -> Vec<u8> {
    let mut b = name(n);
    b.push(args);
    b.extend_from_slice(body);
    with_pkg(&[0x14], &b)
}

/// `Method (\_PIC, 1) { Store (Arg0, var) }`, as firmware declares it.
fn pic_method(var: &str) -> Vec<u8> {
    method("\\_PIC", 1, &cat(&[vec![0x70, 0x68], name(var)]))
}

/// `Return (n)`.
fn return_name(n: &str) -> Vec<u8> {
    let mut out = vec![0xa4];
    out.extend(name(n));
    out
}

/// A `_PRT` entry `{ (device << 16) | 0xffff, pin, source, index }`.
fn prt_entry(dev: u32, pin: u64, source: &[u8], index: u64) -> Vec<u8> {
    package(&[
        int(u64::from(dev << 16 | 0xffff)),
        int(pin),
        source.to_vec(),
        int(index),
    ])
}

/// A resource template with one Extended Interrupt descriptor.
fn extended_irq(gsi: u32, flags: u8) -> Vec<u8> {
    let mut t = vec![0x89, 6, 0, flags, 1];
    t.extend_from_slice(&gsi.to_le_bytes());
    t.extend_from_slice(&[0x79, 0]);
    t
}

/// The concatenation of `parts`.
fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// `Name (_HID, EisaId ("PNP0A08"))`, `Name (_CID, EisaId ("PNP0A03"))`.
fn host_bridge_ids() -> Vec<u8> {
    cat(&[
        name_op("_HID", &int(0x080a_d041)),
        name_op("_CID", &int(0x030a_d041)),
    ])
}
