//! lspci-like text for the boot log.

use core::fmt;

use super::{Bar, BarKind, PciFunction};

/// A size as `4K`, `1M`, `16G` when it is a whole number of those, else in
/// bytes.
struct Size(u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u32, &str); 5] = [(60, "E"), (50, "P"), (40, "T"), (30, "G"), (20, "M")];
        for (shift, unit) in UNITS.iter().copied().chain(core::iter::once((10, "K"))) {
            if self.0 >= 1 << shift && self.0 % (1 << shift) == 0 {
                return write!(f, "{}{unit}", self.0 >> shift);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for Bar {
    /// `BAR0 mem32 0xfea00000 [size 1M]`, `BAR2 mem64 pref ...`,
    /// `BAR4 io 0xc000 [size 32]`, `ROM 0xfeb80000 [size 256K]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.index == Bar::ROM_INDEX {
            return write!(f, "ROM {:#x} [size {}]", self.base, Size(self.size));
        }
        let kind = match self.kind {
            BarKind::Io => "io",
            BarKind::Mem32 => "mem32",
            BarKind::Mem64 => "mem64",
            BarKind::Mem1M => "mem1m",
        };
        write!(f, "BAR{} {kind}", self.index)?;
        if self.prefetchable {
            f.write_str(" pref")?;
        }
        write!(f, " {:#x} [size {}]", self.base, Size(self.size))
    }
}

impl fmt::Display for PciFunction {
    /// A first line with address, IDs and class, then one line per BAR,
    /// the bridge's buses, and the capabilities.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:04x}:{:04x} class {:06x} ({}) rev {:02x}",
            self.sbdf,
            self.vendor,
            self.device,
            self.class_code(),
            self.class_name(),
            self.revision
        )?;
        if (1..=4).contains(&self.interrupt_pin) {
            let pin = char::from(b'A' + self.interrupt_pin - 1);
            write!(f, " INT{pin} line {}", self.interrupt_line)?;
        }
        if self.multifunction {
            f.write_str(" multifunction")?;
        }
        if let Some(parent) = self.parent {
            write!(f, " behind {parent}")?;
        }
        for bar in self.bars.iter().chain(self.rom.iter()) {
            write!(f, "\n  {bar}")?;
        }
        if let Some(b) = self.bridge {
            write!(
                f,
                "\n  bridge: primary {:02x} secondary {:02x} subordinate {:02x}",
                b.primary, b.secondary, b.subordinate
            )?;
        }
        if !self.caps.is_empty() {
            f.write_str("\n  caps:")?;
            for c in &self.caps {
                match c.name() {
                    "?" => write!(f, " {:#04x}@{:x}", c.id, c.offset)?,
                    name => write!(f, " {name}@{:x}", c.offset)?,
                }
            }
            if !self.ext_caps.is_empty() {
                f.write_str("; ext:")?;
                for c in &self.ext_caps {
                    match c.name() {
                        "?" => write!(f, " {:#06x}@{:x}", c.id, c.offset)?,
                        name => write!(f, " {name}@{:x}", c.offset)?,
                    }
                }
            }
        }
        Ok(())
    }
}
