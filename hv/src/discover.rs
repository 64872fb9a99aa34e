//! Platform discovery at boot: ACPI tables, IOMMU units, PCI functions, and
//! hiding the functions named by `pciback.hide=`.

use crate::arch::phys::Identity;
use crate::mem::IDENTITY;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{Display, Write};
use hv::multiboot::{BootInfo, PhysRead};
use pciback::hide::{parse_hide_list, HideMatch};
use pciback::quiesce::QuiesceCaps;
use platform::acpi::{
    self, AcpiTable, Dmar, Fadt, Hpet, Ivrs, Madt, Mcfg, PhysMemory, RootTable, Rsdp,
};
use platform::pci::caps::id as cap_id;
use platform::pci::{self, PciFunction, SegmentRange};
use vmm_glue::log;
use vmm_glue::Sbdf;

impl PhysMemory for Identity {
    fn read(&self, pa: u64, len: usize) -> Option<&[u8]> {
        PhysRead::read(self, pa, len)
    }
}

/// Logs each line of `value`'s `Display`, after `prefix` (one copy for
/// every table type).
fn log_lines(prefix: &str, value: &dyn Display) {
    let text = format!("{value}");
    for line in text.lines() {
        log::info!("{prefix}{line}");
    }
}

/// What ACPI told us that later steps need.
#[derive(Debug, Default)]
pub struct Acpi {
    pub madt: Option<Madt>,
    pub mcfg: Option<Mcfg>,
    pub dmar: Option<Dmar>,
    pub ivrs: Option<Ivrs>,
    /// The DSDT's bytes (for `_PRT`) and the SSDTs'.
    pub dsdt: Option<&'static [u8]>,
    pub ssdts: Vec<&'static [u8]>,
}

/// Finds the RSDP: the copy a multiboot2 loader hands over, else a scan of
/// the BIOS areas.
fn find_rsdp(boot: &BootInfo<'_>) -> Option<(String, Rsdp)> {
    if let Some(bytes) = boot.rsdp {
        match Rsdp::parse(bytes) {
            Ok(r) => return Some((String::from("from the boot loader"), r)),
            Err(e) => log::warn!("acpi: the boot loader's RSDP copy is unusable ({e}); scanning"),
        }
    }
    let ranges = acpi::bios_search_ranges(&IDENTITY);
    acpi::find_rsdp(&IDENTITY, &ranges).map(|(pa, r)| (format!("at {pa:#x}"), r))
}

fn parse_table<T: AcpiTable>(root: &RootTable) -> Option<T> {
    match root.parse::<T>(&IDENTITY)? {
        Ok(t) => Some(t),
        Err(e) => {
            log::warn!("acpi: {e}; the table is ignored");
            None
        }
    }
}

/// Prints every table as hex (`acpi.dump`): `acpidump: SIG at ADDRESS length
/// LENGTH` then `acpidump: SIG +OFFSET HEX...` lines, 32 bytes each.
fn dump(sig: &str, address: u64, bytes: &[u8]) {
    log::info!("acpidump: {sig} at {address:#x} length {}", bytes.len());
    for (i, chunk) in bytes.chunks(32).enumerate() {
        let mut line = String::with_capacity(80);
        for b in chunk {
            let _ = write!(line, "{b:02x}");
        }
        log::info!("acpidump: {sig} +{:04x} {line}", i * 32);
    }
}

/// The DSDT, which the root table does not list: the FADT points to it
/// (`X_DSDT` when set, else `DSDT`). Its address and bytes, or `None` (with
/// a warning saying why) when there is no usable one.
fn dsdt(root: &RootTable) -> Option<(u64, &'static [u8])> {
    let Some(Ok(fadt)) = root.parse::<Fadt>(&IDENTITY) else {
        return None;
    };
    let address = fadt.x_dsdt.unwrap_or(u64::from(fadt.dsdt));
    if address == 0 {
        log::warn!("acpi: the FADT names no DSDT");
        return None;
    }
    let header = PhysMemory::read(&IDENTITY, address, acpi::SDT_HEADER_LEN)
        .ok_or(())
        .and_then(|head| acpi::SdtHeader::peek(head).map_err(|_| ()));
    let info = match header {
        Ok(header) if header.signature == acpi::Signature(*b"DSDT") => {
            acpi::TableInfo { address, header }
        }
        _ => {
            log::warn!("acpi: no DSDT at {address:#x}, where the FADT points");
            return None;
        }
    };
    match info.bytes(&IDENTITY) {
        Ok(bytes) => Some((address, bytes)),
        Err(e) => {
            log::warn!("acpi: {e}; the DSDT is unreadable");
            None
        }
    }
}

/// Reads and reports the ACPI tables.
pub fn acpi(boot: &BootInfo<'_>, dump_tables: bool) -> Acpi {
    let Some((whence, rsdp)) = find_rsdp(boot) else {
        log::warn!("acpi: no RSDP found: no ACPI tables, so no IOMMU, no ECAM; PCI through ports 0xcf8/0xcfc");
        return Acpi::default();
    };
    log::info!("acpi: RSDP {whence}: {rsdp}");
    let root = match RootTable::read(&IDENTITY, &rsdp) {
        Ok(r) => r,
        Err(e) => {
            log::warn!("acpi: {e}; continuing without ACPI");
            return Acpi::default();
        }
    };
    log::info!(
        "acpi: {} at {:#x}: {} tables",
        root.kind.signature(),
        root.address,
        root.tables.len()
    );
    for t in &root.tables {
        log::info!(
            "acpi:   {} at {:#x}: {}",
            t.header.signature,
            t.address,
            t.header.summary()
        );
        if dump_tables {
            if let Ok(bytes) = t.bytes(&IDENTITY) {
                dump(&format!("{}", t.header.signature), t.address, bytes);
            }
        }
    }
    if dump_tables {
        // The SSDTs are in the root list and were dumped with it.
        if let Some((address, bytes)) = dsdt(&root) {
            dump("DSDT", address, bytes);
        }
    }
    for e in &root.errors {
        log::warn!("acpi: {e}; that table is skipped");
    }
    let found = Acpi {
        madt: parse_table::<Madt>(&root),
        mcfg: parse_table::<Mcfg>(&root),
        dmar: parse_table::<Dmar>(&root),
        ivrs: parse_table::<Ivrs>(&root),
        dsdt: dsdt(&root).map(|(_, b)| b),
        ssdts: root
            .tables
            .iter()
            .filter(|t| t.header.signature == acpi::Signature(*b"SSDT"))
            .filter_map(|t| t.bytes(&IDENTITY).ok())
            .collect(),
    };
    if let Some(m) = &found.madt {
        log_lines("acpi: ", m);
    }
    if let Some(m) = &found.mcfg {
        log_lines("acpi: ", m);
    }
    if let Some(f) = parse_table::<Fadt>(&root) {
        log_lines("acpi: ", &f);
    }
    if let Some(h) = parse_table::<Hpet>(&root) {
        log_lines("acpi: ", &h);
    }
    if let Some(d) = &found.dmar {
        log_lines("acpi: ", d);
    }
    if let Some(i) = &found.ivrs {
        log_lines("acpi: ", i);
    }
    iommu_summary(&found);
    found
}

/// One line per IOMMU unit, and a loud note when there is none.
fn iommu_summary(acpi: &Acpi) {
    let mut units: Vec<String> = Vec::new();
    if let Some(dmar) = &acpi.dmar {
        for (i, d) in dmar.drhds().enumerate() {
            units.push(format!(
                "iommu: VT-d unit {i} at {:#x}, segment {}, {}{}",
                d.register_base,
                d.segment,
                if d.include_pci_all() {
                    "all devices not listed elsewhere"
                } else {
                    "listed devices"
                },
                if d.scopes.is_empty() {
                    String::new()
                } else {
                    format!(", {} device scopes", d.scopes.len())
                },
            ));
        }
    }
    if let Some(ivrs) = &acpi.ivrs {
        for (i, h) in ivrs.units().into_iter().enumerate() {
            units.push(format!(
                "iommu: AMD-Vi unit {i} at {:#x}, segment {}, the IOMMU itself is {}, IVHD type {:#x} with {} device entries",
                h.base_address,
                h.segment,
                h.sbdf(),
                h.block_type,
                h.entries.len()
            ));
        }
    }
    if units.is_empty() {
        log::warn!("iommu: no IOMMU found (no DMAR or IVRS table): devices could DMA anywhere; passthrough will need the insecure opt-in");
    }
    for u in units {
        log::info!("{u}");
    }
}

/// Enumerates PCI, prints the table and returns the functions with those
/// `pciback.hide=` names (marked in the table), which
/// `passthrough::init` hides.
pub fn pci(acpi: &Acpi, hide_parts: &[&str]) -> (Vec<PciFunction>, Vec<(Sbdf, HideMatch)>) {
    let mut host = crate::arch::phys::pci_host(acpi.mcfg.as_ref());
    let segments = SegmentRange::from_mcfg(acpi.mcfg.as_ref());
    for s in &segments {
        let how = if host.ecam_regions().iter().any(|r| r.segment == s.segment) {
            "ECAM"
        } else {
            "ports 0xcf8/0xcfc"
        };
        log::info!(
            "pci: scanning segment {:04x} buses {:02x}-{:02x} through {how}",
            s.segment,
            s.start_bus,
            s.end_bus
        );
    }
    let funcs = pci::enumerate(&mut host, &segments);
    let listed = listed(&funcs, hide_parts);

    log::info!("pci: {} functions:", funcs.len());
    for f in &funcs {
        let mark = if listed.iter().any(|(s, _)| *s == f.sbdf) {
            "  [hidden: pciback]"
        } else {
            ""
        };
        let text = format!("{f}");
        let mut lines = text.lines();
        if let Some(first) = lines.next() {
            log::info!("pci: {first}{mark}");
        }
        for line in lines {
            log::info!("pci:   {line}");
        }
    }
    (funcs, listed)
}

/// Where `f`'s interrupt capabilities are, for quiescing it.
pub fn quiesce_caps(f: &PciFunction) -> QuiesceCaps {
    QuiesceCaps {
        msi: f.find_cap(cap_id::MSI),
        msix: f.find_cap(cap_id::MSIX),
    }
}

/// The functions `pciback.hide=` names, or that are below a bridge it
/// names (a listed bridge itself keeps forwarding).
fn listed(funcs: &[PciFunction], hide_parts: &[&str]) -> Vec<(Sbdf, HideMatch)> {
    let mut out = Vec::new();
    if hide_parts.is_empty() {
        return out;
    }
    let value = hide_parts.join(" ");
    let (list, errors) = parse_hide_list(&value);
    for e in &errors {
        log::warn!("{e}");
    }
    for d in &list.duplicates {
        log::warn!("{d}");
    }
    log::info!(
        "pciback.hide: {} entries{}: {}",
        list.entries.len(),
        if errors.is_empty() {
            String::new()
        } else {
            format!(" ({} malformed, skipped)", errors.len())
        },
        list.entries
            .iter()
            .map(|p| format!("{p}"))
            .collect::<Vec<_>>()
            .join("")
    );
    for f in funcs {
        let upstream = pci::upstream_bridges(funcs, f.sbdf);
        let Some(matched) = list.find(f.sbdf, &upstream) else {
            continue;
        };
        if f.is_bridge() {
            log::info!(
                "pciback: {} is a bridge listed by {}: it keeps forwarding; the functions behind it are hidden",
                f.sbdf,
                matched
                    .pattern()
                    .and_then(|p| list.entries.get(p))
                    .map(|e| format!("{e}"))
                    .unwrap_or_default()
            );
            continue;
        }
        if let HideMatch::ViaBridge { bridge, .. } = matched {
            log::info!(
                "pciback: {} hidden because bridge {bridge} is listed",
                f.sbdf
            );
        }
        out.push((f.sbdf, matched));
    }
    let present: Vec<Sbdf> = funcs.iter().map(|f| f.sbdf).collect();
    for p in list.unmatched(&present) {
        log::warn!("{}", p.no_match_warning());
    }
    out
}
