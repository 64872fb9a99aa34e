//! Malformed firmware tables: QEMU adds ACPI tables built here
//! (`-acpitable`) after its own, and the hypervisor must name each bad one
//! (signature, OEM IDs, address), say what is wrong and what it does
//! instead, and boot: the devices the tables were not needed for still
//! work. QEMU rewrites each added table's length and checksum fields:
//! those, and the root table, are made bad in memory before the
//! hypervisor reads them (`debug.acpi-xor`).

use super::*;

/// A table: the header (OEM "HVTEST", table ID `id`) and `body`; QEMU
/// sets the length and checksum.
fn table(sig: &[u8; 4], id: &[u8; 8], body: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(36 + body.len());
    t.extend_from_slice(sig);
    t.extend_from_slice(&(36 + body.len() as u32).to_le_bytes());
    t.extend_from_slice(&[1, 0]);
    t.extend_from_slice(b"HVTEST");
    t.extend_from_slice(id);
    t.extend_from_slice(&[1, 0, 0, 0]);
    t.extend_from_slice(b"HVCI");
    t.extend_from_slice(&[1, 0, 0, 0]);
    t.extend_from_slice(body);
    t
}

/// A MADT (local APIC 0xfee00000, PCAT_COMPAT), a good local APIC entry,
/// then `rest`.
fn madt(id: &[u8; 8], rest: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x00, 0xe0, 0xfe, 1, 0, 0, 0];
    body.extend_from_slice(&[0, 8, 0, 0, 1, 0, 0, 0]);
    body.extend_from_slice(rest);
    table(b"APIC", id, &body)
}

/// An entry of length 0 at offset 0x34: the walk cannot go on.
fn madt_zero_length() -> Vec<u8> {
    madt(b"ZEROLEN ", &[1, 0, 0, 0, 0, 0, 0xc0, 0xfe, 0, 0, 0, 0])
}

/// An I/O APIC entry at offset 0x34 claiming 0x40 bytes, 12 present.
fn madt_overrun() -> Vec<u8> {
    madt(b"OVERRUN ", &[1, 0x40, 0, 0, 0, 0, 0xc0, 0xfe, 0, 0, 0, 0])
}

/// An MCFG allocation: ECAM base, segment 0, buses `start`-`end`.
fn allocation(base: u32, start: u8, end: u8) -> Vec<u8> {
    let mut a = Vec::from(u64::from(base).to_le_bytes());
    a.extend_from_slice(&[0, 0, start, end, 0, 0, 0, 0]);
    a
}

/// A good allocation and one stray byte: 61 bytes.
fn mcfg_odd() -> Vec<u8> {
    let mut body = vec![0; 8];
    body.extend(allocation(0xe000_0000, 0, 0xff));
    body.push(0);
    table(b"MCFG", b"ODDLEN  ", &body)
}

/// A well-formed second MCFG with another window, which must not be used.
fn mcfg_second() -> Vec<u8> {
    let mut body = vec![0; 8];
    body.extend(allocation(0xe000_0000, 0, 0));
    table(b"MCFG", b"SECOND  ", &body)
}

/// A DMAR header body: host address width 39, INTR_REMAP, reserved.
fn dmar(id: &[u8; 8], structures: &[u8]) -> Vec<u8> {
    let mut body = vec![38, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(structures);
    table(b"DMAR", id, &body)
}

/// A DRHD (INCLUDE_PCI_ALL, register base 0xfed91000) at offset 0x30
/// whose length, 0x40, runs past the table's end.
fn dmar_overrun() -> Vec<u8> {
    dmar(
        b"OVERRUN ",
        &[
            0, 0, 0x40, 0, 1, 0, 0, 0, 0x00, 0x10, 0xd9, 0xfe, 0, 0, 0, 0,
        ],
    )
}

/// A DRHD of 0x18 bytes holding a device scope of 0x10 bytes at its
/// offset 16, which would overlap the RMRR after it.
fn dmar_overlap() -> Vec<u8> {
    let mut s = vec![
        0, 0, 0x18, 0, 0, 0, 0, 0, 0x00, 0x10, 0xd9, 0xfe, 0, 0, 0, 0,
    ];
    s.extend_from_slice(&[1, 0x10, 0, 0, 0, 0, 3, 0]);
    // RMRR: 0x18 bytes, 0x100000-0x100fff.
    s.extend_from_slice(&[1, 0, 0x18, 0, 0, 0, 0, 0]);
    s.extend_from_slice(&0x10_0000u64.to_le_bytes());
    s.extend_from_slice(&0x10_0fffu64.to_le_bytes());
    dmar(b"OVERLAP ", &s)
}

/// An IVRS (IVinfo 0x00203040) with an IVHD type 0x10 at offset 0x30
/// whose length, 0x0c, is shorter than the 0x18 bytes of the type.
fn ivrs_short_ivhd() -> Vec<u8> {
    let mut body = vec![0x40, 0x30, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(&[0x10, 0, 0x0c, 0, 0x08, 0, 0x40, 0]);
    body.extend_from_slice(&[0, 0, 0, 0]);
    table(b"IVRS", b"SHORTHD ", &body)
}

/// `Scope (\_SB_) { <0x02> }`: an opcode that does not exist.
fn ssdt_garbage() -> Vec<u8> {
    table(
        b"SSDT",
        b"GARBAGE ",
        &[0x10, 0x07, b'\\', b'_', b'S', b'B', b'_', 0x02],
    )
}

/// `Scope (\_SB_)` whose PkgLength (0x30) reaches past the table.
fn ssdt_truncated() -> Vec<u8> {
    table(
        b"SSDT",
        b"TRUNC   ",
        &[0x10, 0x30, b'\\', b'_', b'S', b'B', b'_', 0x5b],
    )
}

/// Tables of no known type, for `debug.acpi-xor` to break.
fn dummy1() -> Vec<u8> {
    table(b"HVT1", b"DUMMY   ", &[0; 4])
}

fn dummy2() -> Vec<u8> {
    table(b"HVT2", b"DUMMY   ", &[0; 4])
}

fn dummy3() -> Vec<u8> {
    table(b"HVT3", b"DUMMY   ", &[0; 4])
}

/// The xpci guest driving edu (00:03.0), and a hello guest.
const XPCI_AND_HELLO: &[BootModule] = &[
    BootModule {
        name: "xpci",
        content: ModuleContent::Guest("xpci"),
    },
    BootModule {
        name: "edu.cfg",
        content: ModuleContent::Text(
            "name = \"edu\"\nkernel = \"xpci\"\nmemory = 64\npci = ['00:03.0']\nextra = \"expect=1234:11e8\"\n",
        ),
    },
    BootModule {
        name: "hello",
        content: ModuleContent::Guest("hello"),
    },
    BootModule {
        name: "hello.cfg",
        content: ModuleContent::Text(super::guests::HELLO_CFG),
    },
];

/// [`XPCI_AND_HELLO`] and the tables given as `name => builder`.
macro_rules! with_tables {
    ($($name:literal => $build:expr),+ $(,)?) => {
        &[
            XPCI_AND_HELLO[0],
            XPCI_AND_HELLO[1],
            XPCI_AND_HELLO[2],
            XPCI_AND_HELLO[3],
            $(BootModule {
                name: $name,
                content: ModuleContent::AcpiTable($build),
            },)+
        ]
    };
}

/// edu driven by the guest: DMA both ways and its interrupts.
macro_rules! edu_works {
    ($($line:literal),* $(,)?) => {
        &[
            $($line,)*
            "pciback: 0000:00:03.0 (1234:11e8 unclassified) assigned to dom1 (edu)",
            "[d1 edu] [test] edu: DMA RAM -> edu completes with an MSI: PASS",
            "[d1 edu] [test] edu: DMA copy equals the source: PASS",
            "[d1 edu] [test] edu: two INTx interrupts arrive, each after the last EOI: PASS",
            "dom1 (edu): powered off",
            "[d2 hello] [test] summary: 9 passed, 0 failed",
            "dom2 (hello): powered off",
            "domains: 2 started, 2 powered off cleanly",
        ]
    };
}

pub const LIST: &[Scenario] = &[
    Scenario {
        name: "bad-acpi-svm",
        description: "malformed ACPI tables added after QEMU's own (MADTs with a zero-length and an overrunning entry, an MCFG of odd length, a well-formed second MCFG, DMARs with an overrunning DRHD and an overlapping device scope, SSDTs with an unknown opcode and a truncated scope) are each named with what is wrong and ignored; QEMU's tables are used (one ECAM window, the VT-d unit), and edu is driven through the IOMMU with DMA, MSI and INTx",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: "loglvl=info pciback.hide=(00:03.0)",
        timeout_secs: 150,
        expect: edu_works!(
            "acpi: RSDT at ",
            "acpi: APIC (OEM \"HVTEST\" \"ZEROLEN\") at 0x",
            ": MADT entry at offset 0x34 has length 0x00, shorter than its header; the table is ignored",
            "acpi: APIC (OEM \"HVTEST\" \"OVERRUN\") at 0x",
            ": MADT entry at offset 0x34 has length 0x40 but only 0x0c bytes remain; the table is ignored",
            "acpi: MCFG (OEM \"HVTEST\" \"ODDLEN\") at 0x",
            ": 1 stray bytes at offset 0x3c, too few for a configuration space allocation; the table is ignored",
            "acpi: MCFG (OEM \"HVTEST\" \"SECOND\") at 0x",
            ": another MCFG table: ignored, the one at 0x",
            "acpi: DMAR (OEM \"HVTEST\" \"OVERRUN\") at 0x",
            ": remapping structure at offset 0x30 has length 0x40 but only 0x10 bytes remain; the table is ignored",
            "acpi: DMAR (OEM \"HVTEST\" \"OVERLAP\") at 0x",
            ": device scope at offset 0x40 has length 0x10 but only 0x08 bytes remain; the table is ignored",
            "intx: SSDT (OEM \"HVTEST\" \"GARBAGE\") at 0x",
            ": unknown opcode 0x2 at offset 0x2b; the rest of that scope is not read (a _PRT there is lost)",
            "intx: SSDT (OEM \"HVTEST\" \"TRUNC\") at 0x",
            "acpi: MCFG: 1 ECAM windows",
            "pci: scanning segment 0000 buses 00-ff through ECAM",
            "iommu: VT-d unit 0 at 0xfed90000",
        ),
        reject: &[": FAIL", "0xe0000000", "VT-d unit 1", "0xfed91000", "bad checksum"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: with_tables!(
            "madt-zero-length" => madt_zero_length,
            "madt-overrun" => madt_overrun,
            "mcfg-odd" => mcfg_odd,
            "mcfg-second" => mcfg_second,
            "dmar-overrun" => dmar_overrun,
            "dmar-overlap" => dmar_overlap,
            "ssdt-garbage" => ssdt_garbage,
            "ssdt-truncated" => ssdt_truncated,
        ),
    },
    Scenario {
        name: "bad-acpi-header-svm",
        description: "bad table headers and a bad root table, made in memory (debug.acpi-xor) after QEMU built them: the RSDT's checksum and an entry pointing 4 bytes into a table, the HPET's checksum, a length past the mapped memory and one shorter than a header; each is named with what is wrong and what is done (entries skipped, the HPET and the RSDT used anyway), and edu is driven through the IOMMU",
        emulator: QEMU_INTEL,
        boot: Boot::Kernel,
        // QEMU's RSDT lists FACP, APIC, HPET, MCFG, DMAR and WAET, then the
        // added tables: HVT1, HVT2 and HVT3 are entries 6, 7 and 8 (offset
        // 0x44); the length field is at offset 4, the checksum at 9.
        cmdline: "loglvl=info pciback.hide=(00:03.0) debug.acpi-xor=HPET:9:1,HVT1:7:80,HVT2:4:20,RSDT:44:4",
        timeout_secs: 150,
        expect: edu_works!(
            "acpi: debug.acpi-xor: RSDT:44:4: byte at 0x",
            "WARNING: acpi: RSDT (OEM \"BOCHS\" \"BXPC\") at 0x",
            ": bad checksum; used anyway",
            "WARNING: acpi: RSDT entry 6 (0x",
            "): HVT1: 2147483688 bytes at 0x",
            " are not readable; the table is ignored",
            "WARNING: acpi: RSDT entry 7 (0x",
            "): HVT2: length 0x8 is shorter than the 0x24 bytes of its fixed fields; the table is ignored",
            "WARNING: acpi: RSDT entry 8 (0x",
            "WARNING: acpi: HPET (OEM \"BOCHS\" \"BXPC\") at 0x",
            "acpi: HPET 0: mem 0xfed00000",
            "iommu: VT-d unit 0 at 0xfed90000",
        ),
        reject: &[": FAIL", "HVT3 len"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: with_tables!("hvt1" => dummy1, "hvt2" => dummy2, "hvt3" => dummy3),
    },
    Scenario {
        name: "bad-ivrs-svm",
        description: "a second IVRS whose IVHD is shorter than its type is named with what is wrong and ignored on the AMD-Vi machine; QEMU's IVRS is used and edu is driven through the AMD IOMMU",
        emulator: QEMU_AMD,
        boot: Boot::Kernel,
        cmdline: "loglvl=info pciback.hide=(00:03.0)",
        timeout_secs: 150,
        expect: edu_works!(
            "acpi: IVRS (OEM \"HVTEST\" \"SHORTHD\") at 0x",
            ": IVHD at offset 0x30 has length 0x0c, shorter than the 0x18 bytes of its type; the table is ignored",
            "iommu: AMD-Vi unit 0 at ",
        ),
        reject: &[": FAIL", "AMD-Vi unit 1", "bad checksum"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: with_tables!("ivrs-short-ivhd" => ivrs_short_ivhd),
    },
    Scenario {
        name: "bad-dmar-no-iommu-svm",
        description: "on a machine without an IOMMU, a malformed DMAR (its DRHD runs past the table) is named and ignored, so there is no IOMMU: the assignment of edu is refused (no DMA without an IOMMU), and the other guest runs",
        emulator: Emulator::Qemu {
            iommu: Iommu::None,
            devices: &[],
        },
        boot: Boot::Kernel,
        cmdline: "loglvl=info pciback.hide=(00:03.0)",
        timeout_secs: 150,
        expect: &[
            "acpi: DMAR (OEM \"HVTEST\" \"OVERRUN\") at 0x",
            ": remapping structure at offset 0x30 has length 0x40 but only 0x10 bytes remain; the table is ignored",
            "iommu: no IOMMU found (no well-formed DMAR or IVRS table)",
            "pciback: dom1 (edu): 0000:00:03.0 not assigned: no IOMMU remaps its interrupts",
            "dom1 (edu): ended with shutdown reason 3",
            "[d2 hello] [test] summary: 9 passed, 0 failed",
            "dom2 (hello): powered off",
        ],
        reject: &["assigned to dom1", "frontend connected", "VT-d unit"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: with_tables!("dmar-overrun" => dmar_overrun),
    },
];
