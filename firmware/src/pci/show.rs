//! The lspci-like listing. One line per function, then one per BAR, the
//! ROM, the capability lists and the MSI/MSI-X details, each prefixed with
//! the function's address (see `firmware/README.md` for the exact forms):
//!
//! ```text
//! xpci: 00:03.0 1234:11e8 class 00ff00 rev 10 irq pirq 16
//! xpci: 00:03.0   BAR0 mem32 at 0xfea00000 size 1M
//! xpci: 00:04.0   BAR2 io at 0xc000 size 32
//! xpci: 00:04.0   ROM at 0xfeb80000 size 256K disabled
//! xpci: 00:03.0   caps: MSI(05)@40
//! xpci: 00:04.0   ext caps: AER(0001)@100 DSN(0003)@140
//! xpci: 00:03.0   MSI: 64-bit
//! xpci: 00:05.0   MSI-X: 65 entries, table BAR0+0x2000, PBA BAR0+0x3000
//! ```

use core::fmt;

use super::{cap, BarKind, Function, Sbdf};
use crate::console::Writer;
use crate::println;

/// A function's address as lspci prints it: `bb:dd.f`, with the segment
/// in front (`ssss:bb:dd.f`) when it is not 0.
#[derive(Debug, Clone, Copy)]
pub struct Addr(pub Sbdf);

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self.0;
        if a.seg != 0 {
            write!(f, "{:04x}:", a.seg)?;
        }
        write!(f, "{:02x}:{:02x}.{:x}", a.bus, a.dev, a.func)
    }
}

/// A size in bytes as `N`, `NK`, `NM` or `NG` (the largest unit that
/// divides it).
#[derive(Debug, Clone, Copy)]
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        for (shift, unit) in [(30, "G"), (20, "M"), (10, "K")] {
            if s >= 1 << shift && s.is_multiple_of(1 << shift) {
                return write!(f, "{}{unit}", s >> shift);
            }
        }
        write!(f, "{s}")
    }
}

/// The name of capability `id`.
pub fn cap_name(id: u8) -> &'static str {
    match id {
        cap::PM => "PM",
        0x02 => "AGP",
        0x03 => "VPD",
        0x04 => "SlotID",
        cap::MSI => "MSI",
        0x08 => "HT",
        cap::VENDOR => "Vendor",
        0x0a => "Debug",
        0x0d => "SSVID",
        cap::PCIE => "PCIe",
        cap::MSIX => "MSI-X",
        0x12 => "SATA",
        0x13 => "AF",
        _ => "cap",
    }
}

/// The name of extended capability `id`.
pub fn ext_cap_name(id: u16) -> &'static str {
    match id {
        0x0001 => "AER",
        0x0002 => "VC",
        0x0003 => "DSN",
        0x0004 => "PB",
        0x000b => "VSEC",
        0x000d => "ACS",
        0x000e => "ARI",
        0x0010 => "SR-IOV",
        0x0017 => "TPH",
        0x0018 => "LTR",
        0x0019 => "SPCI",
        0x001e => "L1SS",
        _ => "ext",
    }
}

/// Prints the lines of one function.
pub fn function(intx_name: &str, f: &Function) {
    let a = Addr(f.addr);
    let mut w = Writer::new();
    use fmt::Write;
    let _ = write!(
        w,
        "xpci: {a} {:04x}:{:04x} class {:06x} rev {:02x}",
        f.vendor, f.device, f.class, f.revision
    );
    if f.header != 0 {
        let _ = write!(w, " header {:02x}", f.header);
    }
    match f.intx() {
        Some(line) => {
            let _ = write!(w, " irq {intx_name} {line}");
        }
        None => {
            let _ = write!(w, " irq none");
        }
    }
    let _ = writeln!(w);
    w.flush();
    for (i, bar) in f.bars.iter().enumerate() {
        let Some(b) = bar else { continue };
        let kind = match b.kind {
            BarKind::Io => "io",
            BarKind::Mem32 => "mem32",
            BarKind::Mem64 => "mem64",
        };
        let pref = if b.prefetchable { " pref" } else { "" };
        println!(
            "xpci: {a}   BAR{i} {kind} at {:#x} size {}{pref}",
            b.addr,
            Size(b.size)
        );
    }
    if let Some(r) = f.rom {
        let dis = if r.enabled { "" } else { " disabled" };
        println!(
            "xpci: {a}   ROM at {:#x} size {}{dis}",
            r.addr,
            Size(r.size)
        );
    }
    if f.ncaps > 0 {
        let mut w = Writer::new();
        let _ = write!(w, "xpci: {a}   caps:");
        for c in f.caps() {
            let _ = write!(
                w,
                " {}({:02x})@{:02x}",
                cap_name(c.id as u8),
                c.id,
                c.offset
            );
        }
        let _ = writeln!(w);
        w.flush();
    }
    if f.next_caps > 0 {
        let mut w = Writer::new();
        let _ = write!(w, "xpci: {a}   ext caps:");
        for c in f.ext_caps() {
            let _ = write!(w, " {}({:04x})@{:03x}", ext_cap_name(c.id), c.id, c.offset);
        }
        let _ = writeln!(w);
        w.flush();
    }
    if let Some(m) = f.msi {
        let bits = if m.is_64bit() { "64-bit" } else { "32-bit" };
        let mask = if m.maskable() { ", maskable" } else { "" };
        println!("xpci: {a}   MSI: {bits}{mask}");
    }
    if let Some(m) = f.msix {
        println!(
            "xpci: {a}   MSI-X: {} entries, table BAR{}+{:#x}, PBA BAR{}+{:#x}",
            m.entries, m.table.0, m.table.1, m.pba.0, m.pba.1
        );
    }
}
