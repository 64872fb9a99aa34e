//! An Intel MultiProcessor Specification 1.4 table for a PVH guest: the
//! floating pointer structure and a configuration table listing its vCPUs'
//! local APICs. The ACPI MADT ([`super::acpi`]) says the same; this table
//! is for a guest that does not read ACPI: it learns that its boot CPU has
//! a local APIC, which Linux needs before it sets up its per-CPU timer
//! (Xen's, through the event channels). No I/O APIC and no interrupt
//! entries: a PVH domain has no legacy devices.

use alloc::vec::Vec;

/// Where the tables go in the guest: the BIOS area the specification says
/// to scan (0xF0000-0xFFFFF), reserved in the guest's memory map.
pub const GPA: u64 = 0xf_0000;

const FLOATING_LEN: usize = 16;
const HEADER_LEN: usize = 44;
const PROCESSOR_LEN: usize = 20;
const BUS_LEN: usize = 8;
/// Specification revision 1.4.
const SPEC_REV: u8 = 4;
/// Local APIC version in the processor entries (an integrated APIC).
const APIC_VERSION: u8 = 0x14;
/// `EN` and `BP` CPU flags.
const CPU_ENABLED: u8 = 1;
const CPU_BOOT: u8 = 2;

fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |s, &b| s.wrapping_add(b)))
}

/// The floating pointer at `gpa` followed by the configuration table, for
/// vCPUs with the local APIC ids `apic_ids` (the first is the boot CPU).
/// `signature` and `features` are CPUID leaf 1 EAX and EDX.
pub fn build(gpa: u64, apic_ids: &[u8], signature: u32, features: u32) -> Vec<u8> {
    let table_gpa = gpa + FLOATING_LEN as u64;
    let mut table = Vec::new();
    table.extend_from_slice(b"PCMP");
    table.extend_from_slice(&[0, 0]); // base table length, below
    table.push(SPEC_REV);
    table.push(0); // checksum, below
    table.extend_from_slice(b"XENHV   "); // OEM id
    table.extend_from_slice(b"PVH DOMAIN  "); // product id
    table.extend_from_slice(&0u32.to_le_bytes()); // OEM table pointer
    table.extend_from_slice(&0u16.to_le_bytes()); // OEM table size
    let entries = apic_ids.len() as u16 + 1;
    table.extend_from_slice(&entries.to_le_bytes());
    table.extend_from_slice(&0xfee0_0000u32.to_le_bytes()); // local APIC
    table.extend_from_slice(&0u16.to_le_bytes()); // extended table length
    table.push(0); // extended table checksum
    table.push(0); // reserved
    for (i, &id) in apic_ids.iter().enumerate() {
        let flags = CPU_ENABLED | if i == 0 { CPU_BOOT } else { 0 };
        table.extend_from_slice(&[0, id, APIC_VERSION, flags]);
        table.extend_from_slice(&signature.to_le_bytes());
        table.extend_from_slice(&features.to_le_bytes());
        table.extend_from_slice(&[0; 8]);
    }
    table.extend_from_slice(&[1, 0]);
    table.extend_from_slice(b"ISA   ");
    let len = table.len() as u16;
    table[4..6].copy_from_slice(&len.to_le_bytes());
    table[7] = checksum(&table);

    debug_assert_eq!(
        table.len(),
        HEADER_LEN + apic_ids.len() * PROCESSOR_LEN + BUS_LEN
    );
    let mut out = Vec::with_capacity(FLOATING_LEN + table.len());
    out.extend_from_slice(b"_MP_");
    out.extend_from_slice(&(table_gpa as u32).to_le_bytes());
    out.push(1); // length in 16-byte units
    out.push(SPEC_REV);
    out.push(0); // checksum, below
    out.extend_from_slice(&[0; 5]); // feature bytes: a table is present
    out[10] = checksum(&out);
    out.extend_from_slice(&table);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(b: &[u8]) -> u8 {
        b.iter().fold(0u8, |s, &x| s.wrapping_add(x))
    }

    #[test]
    fn the_floating_pointer_points_at_the_table_and_both_checksums_are_zero() {
        let t = build(GPA, &[0], 0x00a2_0f10, 0x178b_fbff);
        assert_eq!(&t[..4], b"_MP_");
        assert_eq!(u32::from_le_bytes(t[4..8].try_into().unwrap()), 0xf_0010);
        assert_eq!(t[8], 1);
        assert_eq!(t[9], 4);
        assert_eq!(sum(&t[..FLOATING_LEN]), 0);
        let table = &t[FLOATING_LEN..];
        assert_eq!(&table[..4], b"PCMP");
        let len = u16::from_le_bytes([table[4], table[5]]) as usize;
        assert_eq!(len, table.len());
        assert_eq!(sum(table), 0);
    }

    #[test]
    fn one_processor_entry_per_vcpu_the_first_the_boot_cpu_then_the_isa_bus() {
        let t = build(GPA, &[0, 1], 0x1234, 0x5678);
        let table = &t[FLOATING_LEN..];
        assert_eq!(u16::from_le_bytes([table[34], table[35]]), 3);
        assert_eq!(
            u32::from_le_bytes(table[36..40].try_into().unwrap()),
            0xfee0_0000
        );
        let p0 = &table[HEADER_LEN..HEADER_LEN + PROCESSOR_LEN];
        assert_eq!(&p0[..4], &[0, 0, 0x14, 3]);
        assert_eq!(u32::from_le_bytes(p0[4..8].try_into().unwrap()), 0x1234);
        assert_eq!(u32::from_le_bytes(p0[8..12].try_into().unwrap()), 0x5678);
        let p1 = &table[HEADER_LEN + PROCESSOR_LEN..HEADER_LEN + 2 * PROCESSOR_LEN];
        assert_eq!(&p1[..4], &[0, 1, 0x14, 1]);
        let bus = &table[HEADER_LEN + 2 * PROCESSOR_LEN..];
        assert_eq!(bus.len(), BUS_LEN);
        assert_eq!(bus, b"\x01\x00ISA   ");
    }

    #[test]
    fn everything_fits_below_one_mib() {
        let t = build(GPA, &[0; 32], 0, 0);
        assert!(GPA + t.len() as u64 <= 0x10_0000);
    }
}
