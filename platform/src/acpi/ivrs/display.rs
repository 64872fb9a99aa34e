//! Boot-log text for the IVRS.

use core::fmt;

use super::{sbdf_of, IvhdEntry, Ivrs, IvrsBlock, SpecialVariety};
use crate::acpi::IdText;

/// A device ID as `bb:dd.f`.
struct Bdf(u16);

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = sbdf_of(0, self.0);
        write!(f, "{:02x}:{:02x}.{:x}", s.bus, s.dev, s.func)
    }
}

impl fmt::Display for IvhdEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pad => f.write_str("pad"),
            Self::All { .. } => f.write_str("all devices"),
            Self::Select { device_id, .. } => write!(f, "select {}", Bdf(*device_id)),
            Self::RangeStart { device_id, .. } => write!(f, "range {}", Bdf(*device_id)),
            Self::RangeEnd { device_id } => write!(f, "to {}", Bdf(*device_id)),
            Self::AliasSelect {
                device_id, alias, ..
            } => write!(f, "select {} alias {}", Bdf(*device_id), Bdf(*alias)),
            Self::AliasRangeStart {
                device_id, alias, ..
            } => write!(f, "range {} alias {}", Bdf(*device_id), Bdf(*alias)),
            Self::ExtendedSelect { device_id, ext, .. } => {
                write!(f, "select {} ext {ext:#x}", Bdf(*device_id))
            }
            Self::ExtendedRangeStart { device_id, ext, .. } => {
                write!(f, "range {} ext {ext:#x}", Bdf(*device_id))
            }
            Self::Special {
                handle,
                device_id,
                variety,
                ..
            } => match variety {
                SpecialVariety::IoApic => write!(f, "IOAPIC {handle} = {}", Bdf(*device_id)),
                SpecialVariety::Hpet => write!(f, "HPET {handle} = {}", Bdf(*device_id)),
                SpecialVariety::Other(v) => {
                    write!(f, "special {v:#x} {handle} = {}", Bdf(*device_id))
                }
            },
            Self::AcpiHid {
                device_id,
                hid,
                uid,
                ..
            } => write!(
                f,
                "ACPI {} uid \"{}\" = {}",
                IdText(hid),
                IdText(uid),
                Bdf(*device_id)
            ),
            Self::Other4 {
                entry_type,
                device_id,
                ..
            } => write!(f, "type {entry_type:#x} {}", Bdf(*device_id)),
            Self::Other8 { raw } => write!(f, "type {:#x}", raw[0]),
        }
    }
}

impl fmt::Display for Ivrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IVRS: VA {} bits, PA {} bits, GVA size {}{}",
            self.va_size(),
            self.pa_size(),
            self.gva_size(),
            if self.efr_supported() {
                ", EFR supported"
            } else {
                ""
            }
        )?;
        for b in &self.blocks {
            f.write_str("\n  ")?;
            match b {
                IvrsBlock::Ivhd(h) => {
                    write!(
                        f,
                        "IVHD type {:#x} devid {} base {:#x} seg {}, {} device entries (",
                        h.block_type,
                        Bdf(h.device_id),
                        h.base_address,
                        h.segment,
                        h.entries.len()
                    )?;
                    let mut first = true;
                    for e in h.entries.iter().filter(|e| **e != IvhdEntry::Pad) {
                        let sep = match e {
                            IvhdEntry::RangeEnd { .. } => " ",
                            _ if first => "",
                            _ => ", ",
                        };
                        write!(f, "{sep}{e}")?;
                        first = false;
                    }
                    f.write_str(")")?;
                    if let Some(efr) = h.efr {
                        write!(f, " EFR {efr:#x}")?;
                    }
                }
                IvrsBlock::Ivmd(m) => write!(
                    f,
                    "IVMD type {:#x} devid {} flags {:#x}: {:#x} length {:#x}",
                    m.block_type,
                    Bdf(m.device_id),
                    m.flags,
                    m.start,
                    m.length
                )?,
                IvrsBlock::Unknown { block_type, length } => {
                    write!(f, "block type {block_type:#x} length {length:#x} (skipped)")?
                }
            }
        }
        Ok(())
    }
}
