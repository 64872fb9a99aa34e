//! The ACPI parsers against real tables from the QEMU machines the emulator
//! scenarios boot (q35 with an Intel IOMMU, q35 with an AMD IOMMU).
//!
//! The files in tests/fixtures/<machine>/<SIG>.bin are the tables exactly as
//! the firmware laid them out, captured by `cargo xtask acpi-fixtures` (the
//! hypervisor's own `acpi.dump` output). Regenerate them with that command
//! when QEMU's tables change.

use platform::acpi::{checksum, Dmar, Fadt, Hpet, Ivrs, Madt, Mcfg, RemappingStructure, ScopeType};
mod common;

use common::table;
use std::path::PathBuf;
use vmm_glue::Sbdf;

const INTEL: &str = "q35-intel-iommu";
const AMD: &str = "q35-amd-iommu";

#[test]
fn every_fixture_has_a_good_checksum_and_its_own_signature() {
    for machine in [INTEL, AMD] {
        let dir: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", machine]
            .iter()
            .collect();
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("fixture directory") {
            let path = entry.expect("entry").path();
            let bytes = std::fs::read(&path).expect("readable");
            let sig = path.file_stem().and_then(|s| s.to_str()).expect("name");
            assert_eq!(&bytes[..4], sig.as_bytes(), "{}", path.display());
            let len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
            assert_eq!(len, bytes.len(), "{}: header length", path.display());
            assert_eq!(checksum(&bytes), 0, "{}: checksum", path.display());
            seen += 1;
        }
        assert!(seen >= 6, "{machine}: only {seen} tables");
    }
}

#[test]
fn q35_madt_has_one_cpu_one_ioapic_and_the_isa_overrides() {
    let madt = Madt::parse(&table(INTEL, "APIC")).expect("MADT parses");
    assert_eq!(madt.local_apic_base(), 0xfee0_0000);
    assert!(madt.pcat_compat());
    assert_eq!(madt.enabled_apic_ids(), [0]);
    let ioapics: Vec<_> = madt.io_apics().collect();
    assert_eq!(ioapics.len(), 1);
    assert_eq!(
        (ioapics[0].id, ioapics[0].address, ioapics[0].gsi_base),
        (0, 0xfec0_0000, 0)
    );
    // The timer on IRQ 0 is wired to GSI 2; IRQ 9 (SCI) is level, active high.
    assert_eq!(madt.isa_irq_to_gsi(0).0, 2);
    assert_eq!(madt.isa_irq_to_gsi(9).0, 9);
    assert_eq!(madt.isa_irq_to_gsi(4).0, 4);
}

#[test]
fn q35_mcfg_is_one_ecam_window_for_all_buses() {
    let mcfg = Mcfg::parse(&table(INTEL, "MCFG")).expect("MCFG parses");
    assert_eq!(mcfg.allocations.len(), 1);
    let a = &mcfg.allocations[0];
    assert_eq!(
        (a.base, a.segment, a.start_bus, a.end_bus),
        (0xb000_0000, 0, 0, 0xff)
    );
}

#[test]
fn q35_fadt_names_the_sci_pm_timer_and_reset_register() {
    let fadt = Fadt::parse(&table(INTEL, "FACP")).expect("FADT parses");
    assert_eq!(fadt.sci_interrupt, 9);
    assert_eq!(fadt.pm_timer_port(), Some(0x608));
    let (reg, value) = fadt.reset().expect("q35 has a reset register");
    assert_eq!((reg.address, value), (0xcf9, 0xf));
}

#[test]
fn q35_hpet_is_at_the_usual_address() {
    let hpet = Hpet::parse(&table(INTEL, "HPET")).expect("HPET parses");
    assert_eq!(hpet.base_address.address, 0xfed0_0000);
    assert_eq!(hpet.comparator_count(), 3);
    assert!(hpet.counter_64bit());
}

#[test]
fn intel_iommu_dmar_has_one_unit_with_interrupt_remapping() {
    let dmar = Dmar::parse(&table(INTEL, "DMAR")).expect("DMAR parses");
    assert_eq!(dmar.host_address_width, 39);
    let units: Vec<_> = dmar.drhds().collect();
    assert_eq!(units.len(), 1);
    let unit = units[0];
    assert_eq!(unit.register_base, 0xfed9_0000);
    assert_eq!(unit.segment, 0);
    // QEMU 7.2 lists the root-bus devices instead of setting INCLUDE_PCI_ALL.
    assert!(!unit.include_pci_all());
    let endpoints: Vec<Sbdf> = unit
        .scopes
        .iter()
        .filter(|s| s.scope_type == ScopeType::Endpoint)
        .filter_map(|s| s.first_hop(0))
        .collect();
    for dev in ["00:00.0", "00:03.0", "00:04.0", "00:05.0", "00:1f.0"] {
        let sbdf: Sbdf = dev.parse().unwrap();
        assert!(endpoints.contains(&sbdf), "{dev} not in {endpoints:?}");
    }
    assert!(unit
        .scopes
        .iter()
        .any(|s| s.scope_type == ScopeType::IoApic && s.enumeration_id == 0));
    assert!(
        unit.scopes
            .iter()
            .any(|s| s.scope_type == ScopeType::SubHierarchy),
        "the root port at 00:06.0"
    );
    assert!(!dmar
        .structures
        .iter()
        .any(|s| matches!(s, RemappingStructure::Rmrr(_))));
    assert!(format!("{dmar}").contains("intr-remap"));
}

#[test]
fn amd_iommu_ivrs_has_one_ivhd_covering_the_machine() {
    let ivrs = Ivrs::parse(&table(AMD, "IVRS")).expect("IVRS parses");
    let units: Vec<_> = ivrs.ivhds().collect();
    assert_eq!(units.len(), 1);
    let h = units[0];
    assert_eq!(h.block_type, 0x10);
    assert_eq!(h.base_address, 0xfed8_0000);
    assert_eq!(h.sbdf(), "00:01.0".parse().unwrap());
    let ranges = h.device_ranges();
    let covers = |rid: u16| ranges.iter().any(|r| r.first <= rid && rid <= r.last);
    for dev in ["00:03.0", "00:05.0", "01:00.0"] {
        let sbdf: Sbdf = dev.parse().unwrap();
        assert!(covers(sbdf.rid()), "{dev} not covered by {ranges:?}");
    }
    assert!(
        !covers(Sbdf::new(0, 2, 0, 0).unwrap().rid()),
        "bus 2 does not exist"
    );
}

#[test]
fn the_amd_machine_has_no_dmar_and_the_intel_machine_no_ivrs() {
    let dir = |m: &str| -> PathBuf {
        [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", m]
            .iter()
            .collect()
    };
    assert!(!dir(AMD).join("DMAR.bin").exists());
    assert!(!dir(INTEL).join("IVRS.bin").exists());
}
