//! MADT ("APIC"): interrupt controllers and how ISA IRQs map onto GSIs.

use alloc::vec::Vec;
use core::fmt;

use super::sdt::{need, walk_structures, Reader, StructLayout};
use super::{AcpiError, AcpiTable, SdtHeader, Signature};

/// Offset of the first interrupt controller structure.
const ENTRIES: usize = 44;

/// The Multiple APIC Description Table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Madt {
    /// The table header.
    pub header: SdtHeader,
    /// The 32-bit local APIC address in the fixed part of the table.
    pub local_apic_address: u32,
    /// MADT flags (bit 0: PCAT_COMPAT, dual 8259s are present).
    pub flags: u32,
    /// Interrupt controller structures, in table order.
    pub entries: Vec<MadtEntry>,
}

/// One interrupt controller structure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MadtEntry {
    /// Type 0.
    LocalApic(LocalApic),
    /// Type 1.
    IoApic(IoApic),
    /// Type 2.
    InterruptOverride(InterruptOverride),
    /// Type 3.
    NmiSource(NmiSource),
    /// Type 4.
    LocalApicNmi(LocalApicNmi),
    /// Type 5: the 64-bit local APIC address, replacing the 32-bit one.
    LocalApicAddressOverride(u64),
    /// Type 9.
    LocalX2Apic(LocalX2Apic),
    /// Type 0xA.
    LocalX2ApicNmi(LocalX2ApicNmi),
    /// Any other type, skipped.
    Unknown {
        /// The type byte.
        entry_type: u8,
        /// The length byte.
        length: u8,
    },
}

/// Processor local APIC (type 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalApic {
    /// ACPI processor UID.
    pub processor_uid: u8,
    /// The processor's local APIC ID.
    pub apic_id: u8,
    /// Bit 0 enabled, bit 1 online capable.
    pub flags: u32,
}

/// I/O APIC (type 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoApic {
    /// I/O APIC ID.
    pub id: u8,
    /// Physical address of its registers.
    pub address: u32,
    /// The first GSI it handles.
    pub gsi_base: u32,
}

/// Interrupt source override (type 2): ISA IRQ `source` arrives at `gsi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterruptOverride {
    /// Bus (0 for ISA).
    pub bus: u8,
    /// Bus-relative IRQ.
    pub source: u8,
    /// Global system interrupt.
    pub gsi: u32,
    /// Polarity and trigger mode.
    pub flags: IntiFlags,
}

/// Non-maskable interrupt source (type 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NmiSource {
    /// Polarity and trigger mode.
    pub flags: IntiFlags,
    /// The GSI the NMI is connected to.
    pub gsi: u32,
}

/// Local APIC NMI (type 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalApicNmi {
    /// ACPI processor UID; 0xFF means all processors.
    pub processor_uid: u8,
    /// Polarity and trigger mode.
    pub flags: IntiFlags,
    /// The local APIC LINT input (0 or 1).
    pub lint: u8,
}

/// Processor local x2APIC (type 9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalX2Apic {
    /// The processor's x2APIC ID.
    pub x2apic_id: u32,
    /// Bit 0 enabled, bit 1 online capable.
    pub flags: u32,
    /// ACPI processor UID.
    pub processor_uid: u32,
}

/// Local x2APIC NMI (type 0xA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalX2ApicNmi {
    /// Polarity and trigger mode.
    pub flags: IntiFlags,
    /// ACPI processor UID; 0xFFFFFFFF means all processors.
    pub processor_uid: u32,
    /// The local x2APIC LINT input.
    pub lint: u8,
}

/// MPS INTI flags: polarity (bits 1:0) and trigger mode (bits 3:2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntiFlags(pub u16);

/// Interrupt polarity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Polarity {
    /// As the bus specifies (ISA: active high).
    Conforming,
    /// Active high.
    ActiveHigh,
    /// The reserved encoding 2.
    Reserved,
    /// Active low.
    ActiveLow,
}

/// Interrupt trigger mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// As the bus specifies (ISA: edge).
    Conforming,
    /// Edge-triggered.
    Edge,
    /// The reserved encoding 2.
    Reserved,
    /// Level-triggered.
    Level,
}

impl IntiFlags {
    /// The polarity field.
    pub const fn polarity(self) -> Polarity {
        match self.0 & 3 {
            0 => Polarity::Conforming,
            1 => Polarity::ActiveHigh,
            2 => Polarity::Reserved,
            _ => Polarity::ActiveLow,
        }
    }

    /// The trigger mode field.
    pub const fn trigger(self) -> Trigger {
        match (self.0 >> 2) & 3 {
            0 => Trigger::Conforming,
            1 => Trigger::Edge,
            2 => Trigger::Reserved,
            _ => Trigger::Level,
        }
    }
}

impl fmt::Display for IntiFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pol = match self.polarity() {
            Polarity::Conforming => "conforming",
            Polarity::ActiveHigh => "high",
            Polarity::Reserved => "reserved",
            Polarity::ActiveLow => "low",
        };
        let trig = match self.trigger() {
            Trigger::Conforming => "conforming",
            Trigger::Edge => "edge",
            Trigger::Reserved => "reserved",
            Trigger::Level => "level",
        };
        write!(f, "polarity {pol}, trigger {trig}")
    }
}

impl Madt {
    /// MADT flag: the machine also has dual 8259 PICs.
    pub const PCAT_COMPAT: u32 = 1;
    /// Local APIC flag: the processor is enabled.
    pub const LAPIC_ENABLED: u32 = 1;
    /// Local APIC flag: the processor can be brought online.
    pub const LAPIC_ONLINE_CAPABLE: u32 = 2;

    /// Parses a whole MADT, header included.
    pub fn parse(bytes: &[u8]) -> Result<Self, AcpiError> {
        let (header, r) = SdtHeader::check(Self::SIGNATURE, bytes, ENTRIES)?;
        let mut entries = Vec::new();
        let layout = StructLayout {
            what: "MADT entry",
            header_len: 2,
            type_at: (0, 1),
            length_at: (1, 1),
        };
        walk_structures(&r, ENTRIES..r.len(), layout, |off, ty, s| {
            entries.push(parse_entry(off, ty, &s)?);
            Ok(())
        })?;
        Ok(Self {
            header,
            local_apic_address: r.u32(36)?,
            flags: r.u32(40)?,
            entries,
        })
    }

    /// Whether the machine also has dual 8259 PICs.
    pub fn pcat_compat(&self) -> bool {
        self.flags & Self::PCAT_COMPAT != 0
    }

    /// The local APIC address, honouring a type 5 override.
    pub fn local_apic_base(&self) -> u64 {
        self.entries
            .iter()
            .find_map(|e| match e {
                MadtEntry::LocalApicAddressOverride(a) => Some(*a),
                _ => None,
            })
            .unwrap_or(u64::from(self.local_apic_address))
    }

    /// The I/O APICs.
    pub fn io_apics(&self) -> impl Iterator<Item = &IoApic> {
        self.entries.iter().filter_map(|e| match e {
            MadtEntry::IoApic(io) => Some(io),
            _ => None,
        })
    }

    /// The interrupt source overrides.
    pub fn overrides(&self) -> impl Iterator<Item = &InterruptOverride> {
        self.entries.iter().filter_map(|e| match e {
            MadtEntry::InterruptOverride(o) => Some(o),
            _ => None,
        })
    }

    /// APIC IDs (xAPIC and x2APIC entries) of processors that are enabled.
    pub fn enabled_apic_ids(&self) -> Vec<u32> {
        self.entries
            .iter()
            .filter_map(|e| match e {
                MadtEntry::LocalApic(l) if l.flags & Self::LAPIC_ENABLED != 0 => {
                    Some(u32::from(l.apic_id))
                }
                MadtEntry::LocalX2Apic(l) if l.flags & Self::LAPIC_ENABLED != 0 => {
                    Some(l.x2apic_id)
                }
                _ => None,
            })
            .collect()
    }

    /// The GSI that ISA IRQ `irq` arrives at, with its flags: an override's
    /// if there is one, else the identity mapping with bus-default flags.
    pub fn isa_irq_to_gsi(&self, irq: u8) -> (u32, IntiFlags) {
        self.overrides()
            .find(|o| o.bus == 0 && o.source == irq)
            .map_or((u32::from(irq), IntiFlags(0)), |o| (o.gsi, o.flags))
    }
}

impl AcpiTable for Madt {
    const SIGNATURE: Signature = Signature(*b"APIC");

    fn parse(bytes: &[u8]) -> Result<Self, AcpiError> {
        Madt::parse(bytes)
    }
}

fn parse_entry(off: usize, ty: u16, s: &Reader<'_>) -> Result<MadtEntry, AcpiError> {
    let entry = match ty {
        0 => {
            need(s, "local APIC entry", off, 8)?;
            MadtEntry::LocalApic(LocalApic {
                processor_uid: s.u8(2)?,
                apic_id: s.u8(3)?,
                flags: s.u32(4)?,
            })
        }
        1 => {
            need(s, "IOAPIC entry", off, 12)?;
            MadtEntry::IoApic(IoApic {
                id: s.u8(2)?,
                address: s.u32(4)?,
                gsi_base: s.u32(8)?,
            })
        }
        2 => {
            need(s, "interrupt source override", off, 10)?;
            MadtEntry::InterruptOverride(InterruptOverride {
                bus: s.u8(2)?,
                source: s.u8(3)?,
                gsi: s.u32(4)?,
                flags: IntiFlags(s.u16(8)?),
            })
        }
        3 => {
            need(s, "NMI source entry", off, 8)?;
            MadtEntry::NmiSource(NmiSource {
                flags: IntiFlags(s.u16(2)?),
                gsi: s.u32(4)?,
            })
        }
        4 => {
            need(s, "local APIC NMI entry", off, 6)?;
            MadtEntry::LocalApicNmi(LocalApicNmi {
                processor_uid: s.u8(2)?,
                flags: IntiFlags(s.u16(3)?),
                lint: s.u8(5)?,
            })
        }
        5 => {
            need(s, "local APIC address override", off, 12)?;
            MadtEntry::LocalApicAddressOverride(s.u64(4)?)
        }
        9 => {
            need(s, "local x2APIC entry", off, 16)?;
            MadtEntry::LocalX2Apic(LocalX2Apic {
                x2apic_id: s.u32(4)?,
                flags: s.u32(8)?,
                processor_uid: s.u32(12)?,
            })
        }
        0xa => {
            need(s, "local x2APIC NMI entry", off, 12)?;
            MadtEntry::LocalX2ApicNmi(LocalX2ApicNmi {
                flags: IntiFlags(s.u16(2)?),
                processor_uid: s.u32(4)?,
                lint: s.u8(8)?,
            })
        }
        _ => MadtEntry::Unknown {
            entry_type: s.u8(0)?,
            length: s.u8(1)?,
        },
    };
    Ok(entry)
}

impl fmt::Display for Madt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cpus = self.enabled_apic_ids();
        write!(
            f,
            "MADT: local APIC {:#x}{}, {} enabled CPUs",
            self.local_apic_base(),
            if self.pcat_compat() {
                ", flags PCAT_COMPAT"
            } else {
                ""
            },
            cpus.len()
        )?;
        if !cpus.is_empty() {
            f.write_str(" (APIC IDs")?;
            for id in &cpus {
                write!(f, " {id}")?;
            }
            f.write_str(")")?;
        }
        for e in &self.entries {
            match e {
                MadtEntry::IoApic(io) => write!(
                    f,
                    "\n  IOAPIC id {} at {:#x}, GSI base {}",
                    io.id, io.address, io.gsi_base
                )?,
                MadtEntry::InterruptOverride(o) => write!(
                    f,
                    "\n  override: bus {} IRQ {} -> GSI {} ({})",
                    o.bus, o.source, o.gsi, o.flags
                )?,
                MadtEntry::NmiSource(n) => {
                    write!(f, "\n  NMI source: GSI {} ({})", n.gsi, n.flags)?
                }
                MadtEntry::LocalApicNmi(n) => write!(
                    f,
                    "\n  local APIC NMI: processor {:#x} LINT{} ({})",
                    n.processor_uid, n.lint, n.flags
                )?,
                MadtEntry::LocalX2ApicNmi(n) => write!(
                    f,
                    "\n  local x2APIC NMI: processor {:#x} LINT{} ({})",
                    n.processor_uid, n.lint, n.flags
                )?,
                MadtEntry::LocalApicAddressOverride(a) => {
                    write!(f, "\n  local APIC address override {a:#x}")?
                }
                MadtEntry::Unknown { entry_type, length } => write!(
                    f,
                    "\n  entry type {entry_type:#x} length {length} (skipped)"
                )?,
                MadtEntry::LocalApic(_) | MadtEntry::LocalX2Apic(_) => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::testutil::{table, Put};
    use crate::acpi::AcpiErrorKind;
    use alloc::string::ToString;
    use alloc::vec;

    /// The shape of QEMU's q35 MADT with two CPUs.
    pub(crate) fn qemu_like_madt() -> Vec<u8> {
        let mut b = vec![];
        b.u32(0xfee0_0000).u32(1);
        b.u8(0).u8(8).u8(0).u8(0).u32(1);
        b.u8(0).u8(8).u8(1).u8(1).u32(1);
        b.u8(0).u8(8).u8(2).u8(2).u32(0);
        b.u8(1).u8(12).u8(0).u8(0).u32(0xfec0_0000).u32(0);
        b.u8(2).u8(10).u8(0).u8(0).u32(2).u16(0);
        b.u8(2).u8(10).u8(0).u8(9).u32(9).u16(0xd);
        b.u8(4).u8(6).u8(0xff).u16(0).u8(1);
        table(b"APIC", 3, &b)
    }

    #[test]
    fn qemu_like_madt_parses() {
        let m = Madt::parse(&qemu_like_madt()).unwrap();
        assert!(m.header.checksum_ok);
        assert_eq!(m.local_apic_base(), 0xfee0_0000);
        assert!(m.pcat_compat());
        assert_eq!(m.enabled_apic_ids(), vec![0, 1]);
        let io: Vec<_> = m.io_apics().collect();
        assert_eq!(
            io,
            vec![&IoApic {
                id: 0,
                address: 0xfec0_0000,
                gsi_base: 0
            }]
        );
        assert_eq!(m.isa_irq_to_gsi(0), (2, IntiFlags(0)));
        let (gsi, flags) = m.isa_irq_to_gsi(9);
        assert_eq!(gsi, 9);
        assert_eq!(flags.polarity(), Polarity::ActiveHigh);
        assert_eq!(flags.trigger(), Trigger::Level);
        assert_eq!(m.isa_irq_to_gsi(4), (4, IntiFlags(0)));
        assert_eq!(
            m.entries.last(),
            Some(&MadtEntry::LocalApicNmi(LocalApicNmi {
                processor_uid: 0xff,
                flags: IntiFlags(0),
                lint: 1
            }))
        );
        let text = m.to_string();
        assert_eq!(
            text.lines().next().unwrap(),
            "MADT: local APIC 0xfee00000, flags PCAT_COMPAT, 2 enabled CPUs (APIC IDs 0 1)"
        );
        assert!(text.contains("\n  IOAPIC id 0 at 0xfec00000, GSI base 0"));
        assert!(text.contains("override: bus 0 IRQ 9 -> GSI 9 (polarity high, trigger level)"));
    }

    /// A two-socket server's shape: xAPIC and x2APIC entries (ids above
    /// 255 only in x2APIC form), a disabled CPU, an online-capable one
    /// (hot-pluggable, not running), and two I/O APICs with their own GSI
    /// bases.
    #[test]
    fn a_server_madt_with_x2apic_ids_hotplug_cpus_and_two_io_apics() {
        let mut b = vec![];
        b.u32(0xfee0_0000).u32(1);
        b.u8(0).u8(8).u8(0).u8(0).u32(1); // enabled
        b.u8(0).u8(8).u8(1).u8(2).u32(0); // disabled
        b.u8(0).u8(8).u8(2).u8(4).u32(2); // online capable, not enabled
        b.u8(9).u8(16).u16(0).u32(0x120).u32(1).u32(3); // x2APIC id 288, enabled
        b.u8(9).u8(16).u16(0).u32(0x121).u32(2).u32(4); // x2APIC, online capable
        b.u8(1).u8(12).u8(8).u8(0).u32(0xfec0_0000).u32(0);
        b.u8(1).u8(12).u8(9).u8(0).u32(0xfec0_1000).u32(24);
        let m = Madt::parse(&table(b"APIC", 5, &b)).unwrap();
        assert_eq!(m.enabled_apic_ids(), vec![0, 0x120]);
        let io: Vec<_> = m
            .io_apics()
            .map(|i| (i.id, i.address, i.gsi_base))
            .collect();
        assert_eq!(io, vec![(8, 0xfec0_0000, 0), (9, 0xfec0_1000, 24)]);
        let text = m.to_string();
        assert!(text.starts_with("MADT: local APIC 0xfee00000, flags PCAT_COMPAT, 2 enabled CPUs"));
        assert!(text.contains("IOAPIC id 9 at 0xfec01000, GSI base 24"));
    }

    #[test]
    fn x2apic_override_nmi_and_unknown_entries() {
        let mut b = vec![];
        b.u32(0xfee0_0000).u32(0);
        b.u8(5).u8(12).u16(0).u64(0x1_fee0_0000);
        b.u8(9).u8(16).u16(0).u32(0x100).u32(1).u32(7);
        b.u8(0xa).u8(12).u16(0xf).u32(u32::MAX).u8(1).raw(&[0; 3]);
        b.u8(3).u8(8).u16(0).u32(5);
        b.u8(0x7f).u8(3).u8(0);
        let m = Madt::parse(&table(b"APIC", 5, &b)).unwrap();
        assert!(!m.pcat_compat());
        assert_eq!(m.local_apic_base(), 0x1_fee0_0000);
        assert_eq!(m.enabled_apic_ids(), vec![0x100]);
        assert_eq!(
            m.entries[2],
            MadtEntry::LocalX2ApicNmi(LocalX2ApicNmi {
                flags: IntiFlags(0xf),
                processor_uid: u32::MAX,
                lint: 1
            })
        );
        assert_eq!(
            m.entries[3],
            MadtEntry::NmiSource(NmiSource {
                flags: IntiFlags(0),
                gsi: 5
            })
        );
        assert_eq!(
            m.entries[4],
            MadtEntry::Unknown {
                entry_type: 0x7f,
                length: 3
            }
        );
    }

    #[test]
    fn bad_entry_lengths_are_errors_naming_the_offset() {
        let mut b = vec![];
        b.u32(0xfee0_0000).u32(0);
        b.u8(0).u8(0);
        let e = Madt::parse(&table(b"APIC", 3, &b)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "APIC: MADT entry at offset 0x2c has length 0x00, shorter than its header"
        );
        let mut b = vec![];
        b.u32(0xfee0_0000).u32(0);
        b.u8(1).u8(8).u8(0).u8(0).u32(0xfec0_0000);
        let e = Madt::parse(&table(b"APIC", 3, &b)).unwrap_err();
        assert_eq!(
            e.kind,
            AcpiErrorKind::ShorterThanType {
                what: "IOAPIC entry",
                offset: 0x2c,
                length: 8,
                minimum: 12
            }
        );
        let mut b = vec![];
        b.u32(0xfee0_0000).u32(0);
        b.u8(0).u8(40).u8(0).u8(0).u32(1);
        assert!(matches!(
            Madt::parse(&table(b"APIC", 3, &b)).unwrap_err().kind,
            AcpiErrorKind::Overrun { length: 40, .. }
        ));
        let mut t = qemu_like_madt();
        t.truncate(40);
        assert!(Madt::parse(&t).is_err());
    }
}
