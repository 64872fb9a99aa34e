//! What one IOMMU unit serves: the functions and I/O APICs its firmware
//! description names, and, on AMD-Vi, the requester IDs some functions'
//! requests carry instead of their own.

use alloc::vec::Vec;

use vmm_glue::Sbdf;

use crate::acpi::{Ivhd, IvhdEntry, SpecialVariety};

/// What a unit serves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// The PCI segment.
    pub segment: u16,
    /// It serves every function of the segment no other unit names.
    pub include_all: bool,
    /// The functions it names (endpoints, everything below a named
    /// bridge; AMD-Vi: its device id ranges).
    pub functions: Vec<Sbdf>,
    /// The I/O APICs under it (VT-d device scopes, AMD-Vi IVHD special
    /// entries): APIC id and the requester ID their interrupts carry.
    pub ioapics: Vec<(u8, Sbdf)>,
    /// Memory the firmware says functions keep using for DMA (VT-d RMRRs,
    /// AMD-Vi IVMD unity ranges): the function and its `[base, end)`
    /// range, page aligned. A domain given such a function gets the range
    /// mapped one to one.
    pub reserved: Vec<(Sbdf, u64, u64)>,
    /// AMD-Vi: functions whose requests reach the unit carrying another
    /// requester ID (IVHD alias entries, types 0x42 and 0x43: functions
    /// behind a PCIe-to-PCI bridge), with that ID. The unit looks such a
    /// function's DMA and interrupts up in the alias's device table entry.
    pub aliases: Vec<(Sbdf, Sbdf)>,
}

impl Scope {
    /// What IVHD `h` serves of `funcs` (the machine's functions): those in
    /// its device ranges, each with the alias the last alias entry
    /// covering it gives (as Linux reads the table), and the I/O APICs of
    /// its special entries. An HPET's entry is not kept: the hypervisor
    /// does not use one, so its interrupts stay blocked.
    pub fn from_ivhd(h: &Ivhd, funcs: &[Sbdf]) -> Self {
        let ranges = h.device_ranges();
        let seg = h.segment;
        let (mut functions, mut aliases) = (Vec::new(), Vec::new());
        for &f in funcs.iter().filter(|f| f.seg == seg) {
            let (mut covered, mut alias) = (false, None);
            for r in ranges
                .iter()
                .filter(|r| (r.first..=r.last).contains(&f.rid()))
            {
                covered = true;
                alias = r.alias.or(alias);
            }
            if covered {
                functions.push(f);
            }
            if let Some(a) = alias.filter(|&a| a != f.rid()) {
                aliases.push((f, Sbdf::from_rid(seg, a)));
            }
        }
        let ioapics = h
            .entries
            .iter()
            .filter_map(|e| match *e {
                IvhdEntry::Special {
                    handle,
                    device_id,
                    variety: SpecialVariety::IoApic,
                    ..
                } => Some((handle, Sbdf::from_rid(seg, device_id))),
                _ => None,
            })
            .collect();
        Self {
            segment: seg,
            include_all: ranges.iter().any(|r| r.first == 0 && r.last == 0xffff),
            functions,
            ioapics,
            reserved: Vec::new(),
            aliases,
        }
    }

    /// The requester ID `dev`'s requests carry: its alias, else its own.
    pub fn requester(&self, dev: Sbdf) -> Sbdf {
        self.aliases
            .iter()
            .find(|a| a.0 == dev)
            .map_or(dev, |a| a.1)
    }
}
