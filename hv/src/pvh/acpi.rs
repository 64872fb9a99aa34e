//! ACPI tables for a PVH domain: what a PVH domU under Xen finds through
//! `hvm_start_info.rsdp_paddr` (libxl builds them with libacpi), reduced to
//! what is true of our domains.
//!
//! - RSDP (revision 2) pointing at an XSDT (no RSDT);
//! - FADT revision 5 with `HW_REDUCED_ACPI`: the domain has no fixed ACPI
//!   hardware (no PM1 blocks, no SCI, no PM timer, no sleep registers, no
//!   reset register). Its IA-PC boot architecture flags say what Xen's
//!   PVH tables say: `VGA_NOT_PRESENT` and `CMOS_RTC_NOT_PRESENT`, and
//!   neither `LEGACY_DEVICES` nor `8042` (no i8042). Fixed power and sleep
//!   buttons are absent (`PWR_BUTTON`, `SLP_BUTTON`, as libacpi sets them
//!   without `ACPI_HAS_BUTTONS`); C1 (HLT) works, C2 and C3 do not exist.
//! - an empty DSDT (no devices, no methods: nothing to power off through,
//!   no PCI root);
//! - a MADT with one enabled local APIC per vCPU (ACPI processor UID =
//!   APIC id = vCPU index, the ids the MP table gives) and no I/O APIC and
//!   no 8259 pair (`PCAT_COMPAT` clear): there are no legacy interrupts.
//!
//! Linux reads these flags to skip hardware a PVH domain does not have: no
//! `rtc_cmos` platform device (`CMOS_RTC_NOT_PRESENT`), no direct i8042
//! probe (no `8042` bit in a revision 2+ FADT), no VGA probing, no PIT
//! timer set-up (`HW_REDUCED_ACPI`), and its Xen PVH test (no RTC and no
//! VGA) holds. Each such probe is trapped port I/O that reads all-ones.

use alloc::vec::Vec;

/// Where the tables go: the BIOS area below the MP table
/// ([`super::mptable::GPA`]), reserved in the guest's memory map and inside
/// the range an RSDP scan covers (0xE0000-0xFFFFF).
pub const GPA: u64 = 0xe_0000;

/// The most bytes the tables may take (up to the MP table).
pub const MAX_BYTES: usize = 0x1_0000;

/// The local APIC's guest-physical address.
const LAPIC_BASE: u32 = 0xfee0_0000;

const OEM_ID: &[u8; 6] = b"XENHV ";
const OEM_TABLE_ID: &[u8; 8] = b"PVH     ";
const CREATOR_ID: &[u8; 4] = b"XNHV";
const HEADER_LEN: usize = 36;
const RSDP_LEN: usize = 36;

/// FADT revision 5 (ACPI 5.0): up to and with the sleep status register.
const FADT_REVISION: u8 = 5;
const FADT_LEN: usize = 268;
/// MADT revision 3 (ACPI 5.0).
const MADT_REVISION: u8 = 3;
/// DSDT revision 2: 64-bit AML integers.
const DSDT_REVISION: u8 = 2;

/// IA-PC boot architecture flags (FADT offset 109).
pub mod boot_arch {
    pub const LEGACY_DEVICES: u16 = 1 << 0;
    pub const I8042: u16 = 1 << 1;
    pub const VGA_NOT_PRESENT: u16 = 1 << 2;
    pub const CMOS_RTC_NOT_PRESENT: u16 = 1 << 5;
}

/// FADT fixed feature flags (offset 112).
pub mod flags {
    pub const PROC_C1: u32 = 1 << 2;
    pub const PWR_BUTTON: u32 = 1 << 4;
    pub const SLP_BUTTON: u32 = 1 << 5;
    pub const HW_REDUCED_ACPI: u32 = 1 << 20;
}

/// The domain's IA-PC boot architecture flags.
pub const BOOT_ARCH: u16 = boot_arch::VGA_NOT_PRESENT | boot_arch::CMOS_RTC_NOT_PRESENT;

/// The domain's FADT flags.
pub const FADT_FLAGS: u32 =
    flags::PROC_C1 | flags::PWR_BUTTON | flags::SLP_BUTTON | flags::HW_REDUCED_ACPI;

fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |s, &b| s.wrapping_add(b)))
}

/// A table header with a zero length and checksum (set by [`seal`]).
fn header(signature: &[u8; 4], revision: u8) -> Vec<u8> {
    let mut t = Vec::with_capacity(HEADER_LEN);
    t.extend_from_slice(signature);
    t.extend_from_slice(&0u32.to_le_bytes()); // length, by seal
    t.push(revision);
    t.push(0); // checksum, by seal
    t.extend_from_slice(OEM_ID);
    t.extend_from_slice(OEM_TABLE_ID);
    t.extend_from_slice(&1u32.to_le_bytes()); // OEM revision
    t.extend_from_slice(CREATOR_ID);
    t.extend_from_slice(&1u32.to_le_bytes()); // creator revision
    t
}

/// Sets the table's length and checksum.
fn seal(mut t: Vec<u8>) -> Vec<u8> {
    let len = t.len() as u32;
    t[4..8].copy_from_slice(&len.to_le_bytes());
    t[9] = 0;
    t[9] = checksum(&t);
    t
}

fn put_u16(t: &mut [u8], off: usize, v: u16) {
    t[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(t: &mut [u8], off: usize, v: u32) {
    t[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(t: &mut [u8], off: usize, v: u64) {
    t[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

fn fadt(dsdt: u64) -> Vec<u8> {
    let mut t = header(b"FACP", FADT_REVISION);
    t.resize(FADT_LEN, 0);
    // FIRMWARE_CTRL and X_FIRMWARE_CTRL stay 0: no FACS (optional on
    // hardware-reduced ACPI).
    put_u32(&mut t, 40, dsdt as u32);
    // P_LVL2_LAT > 100 and P_LVL3_LAT > 1000: no C2, no C3.
    put_u16(&mut t, 96, 0x0fff);
    put_u16(&mut t, 98, 0x0fff);
    put_u16(&mut t, 109, BOOT_ARCH);
    put_u32(&mut t, 112, FADT_FLAGS);
    put_u64(&mut t, 140, dsdt);
    seal(t)
}

fn dsdt() -> Vec<u8> {
    seal(header(b"DSDT", DSDT_REVISION))
}

fn madt(apic_ids: &[u8]) -> Vec<u8> {
    let mut t = header(b"APIC", MADT_REVISION);
    t.extend_from_slice(&LAPIC_BASE.to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes()); // flags: no PCAT_COMPAT
    for (uid, &id) in apic_ids.iter().enumerate() {
        // Processor local APIC: type 0, length 8, UID, APIC id, enabled.
        t.extend_from_slice(&[0, 8, uid as u8, id]);
        t.extend_from_slice(&1u32.to_le_bytes());
    }
    seal(t)
}

fn xsdt(entries: &[u64]) -> Vec<u8> {
    let mut t = header(b"XSDT", 1);
    for e in entries {
        t.extend_from_slice(&e.to_le_bytes());
    }
    seal(t)
}

fn rsdp(xsdt: u64) -> Vec<u8> {
    let mut r = Vec::with_capacity(RSDP_LEN);
    r.extend_from_slice(b"RSD PTR ");
    r.push(0); // checksum of the first 20 bytes, below
    r.extend_from_slice(OEM_ID);
    r.push(2); // revision: ACPI 2.0 and later
    r.extend_from_slice(&0u32.to_le_bytes()); // no RSDT
    r.extend_from_slice(&(RSDP_LEN as u32).to_le_bytes());
    r.extend_from_slice(&xsdt.to_le_bytes());
    r.push(0); // extended checksum, below
    r.extend_from_slice(&[0; 3]);
    r[8] = checksum(&r[..20]);
    r[32] = checksum(&r);
    r
}

/// Appends `table` at the next 16-byte boundary of `out` (which starts at
/// `base`) and returns its guest-physical address.
fn place(out: &mut Vec<u8>, base: u64, table: &[u8]) -> u64 {
    out.resize(out.len().next_multiple_of(16), 0);
    let at = base + out.len() as u64;
    out.extend_from_slice(table);
    at
}

/// The tables for a domain whose vCPUs have the local APIC ids `apic_ids`,
/// to be written at `base` (16-byte aligned): the bytes, RSDP first (so
/// the RSDP's address is `base`).
pub fn build(base: u64, apic_ids: &[u8]) -> Vec<u8> {
    debug_assert!(base.is_multiple_of(16));
    // The RSDP first, with the XSDT's address filled in at the end.
    let mut out = alloc::vec![0u8; RSDP_LEN];
    let dsdt_at = place(&mut out, base, &dsdt());
    let fadt_at = place(&mut out, base, &fadt(dsdt_at));
    let madt_at = place(&mut out, base, &madt(apic_ids));
    let xsdt_at = place(&mut out, base, &xsdt(&[fadt_at, madt_at]));
    out[..RSDP_LEN].copy_from_slice(&rsdp(xsdt_at));
    debug_assert!(out.len() <= MAX_BYTES);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform::acpi::{
        FadtFlags, IapcBootArch, Madt, MadtEntry, RootKind, RootTable, Rsdp, Signature,
        SparseMemory,
    };

    fn memory(apic_ids: &[u8]) -> SparseMemory {
        let mut mem = SparseMemory::new();
        mem.insert(GPA, build(GPA, apic_ids));
        mem
    }

    fn root(mem: &SparseMemory) -> RootTable {
        let rsdp = Rsdp::read(mem, GPA).expect("a valid RSDP at the base");
        assert_eq!(rsdp.root_address().0, RootKind::Xsdt);
        RootTable::read(mem, &rsdp).expect("a valid XSDT")
    }

    #[test]
    fn the_rsdp_leads_to_an_xsdt_listing_the_fadt_and_the_madt() {
        let mem = memory(&[0]);
        let root = root(&mem);
        assert!(root.find(Signature(*b"FACP")).is_some());
        assert!(root.find(Signature(*b"APIC")).is_some());
        assert!(root.find(Signature(*b"HPET")).is_none());
        assert!(root.find(Signature(*b"MCFG")).is_none());
    }

    #[test]
    fn the_fadt_is_hardware_reduced_without_rtc_vga_or_i8042() {
        let mem = memory(&[0]);
        let fadt = root(&mem)
            .parse::<platform::acpi::Fadt>(&mem)
            .expect("a FADT")
            .expect("it parses");
        assert_eq!(fadt.header.revision, 5);
        assert_eq!(fadt.header.length as usize, FADT_LEN);
        assert!(fadt.flags.contains(FadtFlags::HW_REDUCED_ACPI));
        assert!(fadt
            .flags
            .contains(FadtFlags::PWR_BUTTON | FadtFlags::SLP_BUTTON));
        let arch: IapcBootArch = fadt.iapc_boot_arch.expect("revision 2+ has boot flags");
        assert!(arch.cmos_rtc_not_present());
        assert!(arch.vga_not_present());
        assert!(!arch.has_8042());
        assert!(!arch.legacy_devices());
        assert!(!arch.msi_not_supported());
        // No fixed hardware: no SCI, PM blocks, PM timer, reset register
        // or FACS; the century byte is not in a CMOS that is not there.
        assert_eq!(fadt.sci_interrupt, 0);
        assert_eq!(fadt.smi_command_port, 0);
        assert_eq!(fadt.pm1a_event_block, 0);
        assert_eq!(fadt.pm1a_control_block, 0);
        assert_eq!(fadt.pm_timer_port(), None);
        assert_eq!(fadt.reset(), None);
        assert_eq!(fadt.firmware_ctrl, 0);
        assert_eq!(fadt.century, 0);
        assert_eq!(fadt.x_pm1a_event_block, None);
        assert_eq!(fadt.x_pm_timer_block, None);
        // The DSDT is where both pointers say, and holds no AML.
        let dsdt = fadt.x_dsdt.expect("X_DSDT");
        assert_eq!(u64::from(fadt.dsdt), dsdt);
        let head = platform::acpi::PhysMemory::read(&mem, dsdt, HEADER_LEN).expect("DSDT");
        assert_eq!(&head[..4], b"DSDT");
        assert_eq!(u32::from_le_bytes(head[4..8].try_into().unwrap()), 36);
    }

    #[test]
    fn the_madt_lists_each_vcpu_local_apic_and_nothing_legacy() {
        let mem = memory(&[0, 1, 2]);
        let madt: Madt = root(&mem)
            .parse::<Madt>(&mem)
            .expect("a MADT")
            .expect("it parses");
        assert_eq!(madt.local_apic_base(), 0xfee0_0000);
        assert!(!madt.pcat_compat());
        assert_eq!(madt.enabled_apic_ids(), [0, 1, 2]);
        assert_eq!(madt.io_apics().count(), 0);
        assert_eq!(madt.overrides().count(), 0);
        let uids: Vec<u32> = madt
            .entries
            .iter()
            .filter_map(|e| match e {
                MadtEntry::LocalApic(l) => Some(u32::from(l.processor_uid)),
                _ => None,
            })
            .collect();
        assert_eq!(uids, [0, 1, 2]);
    }

    #[test]
    fn every_checksum_holds_and_the_most_vcpus_fit_below_the_mp_table() {
        let t = build(GPA, &[0; 32]);
        assert!(t.len() <= MAX_BYTES);
        assert!(GPA + t.len() as u64 <= super::super::mptable::GPA);
        let sum = |b: &[u8]| b.iter().fold(0u8, |s, &x| s.wrapping_add(x));
        assert_eq!(sum(&t[..20]), 0);
        assert_eq!(sum(&t[..RSDP_LEN]), 0);
        let mem = memory(&[0; 32]);
        let root = root(&mem);
        for sig in [b"FACP", b"APIC"] {
            let info = root.find(Signature(*sig)).expect("listed");
            let bytes = info.bytes(&mem).expect("in memory");
            assert_eq!(sum(bytes), 0, "{}", Signature(*sig));
        }
    }
}
