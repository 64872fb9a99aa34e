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
use platform::acpi::{self, Dmar, Fadt, Hpet, Ivrs, Madt, Mcfg, PhysMemory, RootTable, Rsdp};
use platform::pci::caps::id as cap_id;
use platform::pci::{self, PciFunction, SegmentRange};
use vmm_glue::log;
use vmm_glue::Sbdf;

impl PhysMemory for Identity {
    fn read(&self, pa: u64, len: usize) -> Option<&[u8]> {
        PhysRead::read(self, pa, len)
    }
}

/// The identity map where the boot loader's memory map describes memory
/// (of any kind): a table whose length runs past what the firmware
/// described is not read, so a garbage length cannot make the hypervisor
/// read gigabytes, or device registers, as a table.
struct Described<'a>(&'a [hv::memmap::Region]);

impl PhysMemory for Described<'_> {
    fn read(&self, pa: u64, len: usize) -> Option<&[u8]> {
        let end = pa.checked_add(len as u64)?;
        let mut at = pa;
        while at < end {
            at = self.0.iter().find(|r| r.base <= at && at < r.end())?.end();
        }
        PhysRead::read(&IDENTITY, pa, len)
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
/// the BIOS areas (then with its address).
fn find_rsdp(boot: &BootInfo<'_>) -> Option<(Option<u64>, Rsdp)> {
    if let Some(bytes) = boot.rsdp {
        match Rsdp::parse(bytes) {
            Ok(r) => return Some((None, r)),
            Err(e) => log::warn!("acpi: the boot loader's RSDP copy is unusable ({e}); scanning"),
        }
    }
    let ranges = acpi::bios_search_ranges(&IDENTITY);
    acpi::find_rsdp(&IDENTITY, &ranges).map(|(pa, r)| (Some(pa), r))
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
fn dsdt(fadt: Option<&Fadt>, mem: &Described<'_>) -> Option<(u64, &'static [u8])> {
    let fadt = fadt?;
    let address = fadt.x_dsdt.unwrap_or(u64::from(fadt.dsdt));
    if address == 0 {
        log::warn!("acpi: the FADT names no DSDT");
        return None;
    }
    let header = mem
        .read(address, acpi::SDT_HEADER_LEN)
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
    match info.bytes(mem).and_then(|_| info.bytes(&IDENTITY)) {
        Ok(bytes) => {
            // The header was read alone: its checksum covered only itself.
            let mut info = info;
            info.header.checksum_ok = acpi::checksum(bytes) == 0;
            bad_checksum(&info);
            Some((address, bytes))
        }
        Err(e) => {
            log::warn!("acpi: {e}; the DSDT is unreadable");
            None
        }
    }
}

/// Warns that `t` is used although its checksum is bad.
fn bad_checksum(t: &acpi::TableInfo) {
    if !t.header.checksum_ok {
        let finding = acpi::Finding::BadChecksum;
        log::warn!("acpi: {}", acpi::Note { table: *t, finding });
    }
}

/// Flips bits of ACPI tables in memory before they are read
/// (`debug.acpi-xor=SIG:OFFSET:MASK,...`, hexadecimal): the root table by
/// its own signature, any other by the first listed table with that
/// signature.
#[cfg(feature = "test-hooks")]
pub fn acpi_xor(boot: &BootInfo<'_>, spec: &str) {
    let Some(root) = find_rsdp(boot).and_then(|(_, r)| RootTable::read(&IDENTITY, &r).ok()) else {
        return;
    };
    for item in spec.split(',') {
        let mut it = item.split(':');
        let sig = it.next().unwrap_or_default().as_bytes();
        let off = it.next().and_then(|o| u64::from_str_radix(o, 16).ok());
        let mask = it.next().and_then(|m| u8::from_str_radix(m, 16).ok());
        let at = if sig == root.kind.signature().0 {
            Some(root.address)
        } else {
            root.tables
                .iter()
                .find(|t| t.header.signature.0 == sig)
                .map(|t| t.address)
        };
        match (at, off, mask) {
            (Some(pa), Some(off), Some(mask)) => {
                log::warn!(
                    "acpi: debug.acpi-xor: {item}: byte at {:#x} flipped",
                    pa + off
                );
                // SAFETY: a byte of a table nothing has read yet.
                unsafe { crate::arch::phys::xor_firmware_byte(pa + off, mask) };
            }
            _ => log::warn!("acpi: debug.acpi-xor: {item}: no such table, or not SIG:OFFSET:MASK"),
        }
    }
}

/// Reads and reports the ACPI tables.
pub fn acpi(boot: &BootInfo<'_>, dump_tables: bool) -> Acpi {
    let Some((whence, rsdp)) = find_rsdp(boot) else {
        log::warn!("acpi: no RSDP found: no ACPI tables, so no IOMMU, no ECAM; PCI through ports 0xcf8/0xcfc");
        return Acpi::default();
    };
    match whence {
        Some(pa) => log::info!("acpi: RSDP at {pa:#x}: {rsdp}"),
        None => log::info!("acpi: RSDP from the boot loader: {rsdp}"),
    }
    let described = Described(boot.memory.as_slice());
    let root = match RootTable::read(&described, &rsdp) {
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
    bad_checksum(&acpi::TableInfo {
        address: root.address,
        header: root.header,
    });
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
    for e in &root.errors {
        log::warn!("acpi: {} {e}; the table is ignored", root.kind.signature());
    }
    let mut notes = Vec::new();
    let fadt = root.pick::<Fadt>(&IDENTITY, &mut notes);
    let hpet = root.pick::<Hpet>(&IDENTITY, &mut notes);
    let dsdt = dsdt(fadt.as_ref(), &described);
    if dump_tables {
        // The SSDTs are in the root list and were dumped with it.
        if let Some((address, bytes)) = dsdt {
            dump("DSDT", address, bytes);
        }
    }
    let ssdts = root
        .tables
        .iter()
        .filter(|t| t.header.signature == acpi::Signature(*b"SSDT"));
    let found = Acpi {
        madt: root.pick::<Madt>(&IDENTITY, &mut notes),
        mcfg: root.pick::<Mcfg>(&IDENTITY, &mut notes),
        dmar: root.pick::<Dmar>(&IDENTITY, &mut notes),
        ivrs: root.pick::<Ivrs>(&IDENTITY, &mut notes),
        dsdt: dsdt.map(|(_, b)| b),
        ssdts: ssdts
            .filter_map(|t| {
                bad_checksum(t);
                t.bytes(&IDENTITY).ok()
            })
            .collect(),
    };
    for n in &notes {
        log::warn!("acpi: {n}");
    }
    if let Some(m) = &found.madt {
        log_lines("acpi: ", m);
    }
    if let Some(m) = &found.mcfg {
        log_lines("acpi: ", m);
    }
    if let Some(f) = &fadt {
        log_lines("acpi: ", f);
    }
    if let Some(h) = &hpet {
        log_lines("acpi: ", h);
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
    let mut units = 0;
    for (i, d) in acpi.dmar.iter().flat_map(|d| d.drhds()).enumerate() {
        units += 1;
        log::info!(
            "iommu: VT-d unit {i} at {:#x}, segment {}, {}, {} device scopes",
            d.register_base,
            d.segment,
            if d.include_pci_all() {
                "all devices not listed elsewhere"
            } else {
                "listed devices"
            },
            d.scopes.len()
        );
    }
    for (i, h) in acpi.ivrs.iter().flat_map(|i| i.units()).enumerate() {
        units += 1;
        log::info!(
            "iommu: AMD-Vi unit {i} at {:#x}, segment {}, the IOMMU itself is {}, IVHD type {:#x} with {} device entries",
            h.base_address,
            h.segment,
            h.sbdf(),
            h.block_type,
            h.entries.len()
        );
    }
    if units == 0 {
        log::warn!("iommu: no IOMMU found (no well-formed DMAR or IVRS table): devices could DMA anywhere; passthrough will need the insecure opt-in");
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
    let mut text = String::new();
    for p in &list.entries {
        let _ = write!(text, "{p}");
    }
    log::info!("pciback.hide: {} entries: {text}", list.entries.len());
    if !errors.is_empty() {
        log::info!("pciback.hide: {} malformed entries skipped", errors.len());
    }
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
