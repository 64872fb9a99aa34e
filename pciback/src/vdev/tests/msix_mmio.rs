//! Guest accesses to the trapped MSI-X table and PBA pages.

use super::Rig;
use crate::testkit;

/// nvme with memory decode on: table at 0xfebf_2000, PBA at 0xfebf_3000.
fn nvme() -> Rig {
    let mut r = Rig::new(testkit::nvme());
    r.decode_on();
    r
}

const TABLE: u64 = 0xfebf_2000;
const PBA: u64 = 0xfebf_3000;

#[test]
fn only_table_and_pba_pages_of_a_mapped_bar_trap() {
    let mut r = Rig::new(testkit::nvme());
    assert!(!r.dev.traps(TABLE), "not while decoding is off");
    assert_eq!(r.dev.mmio_read(&mut r.host, TABLE, 4), None);
    assert!(!r.dev.mmio_write(&mut r.host, TABLE, 4, 0));
    r.decode_on();
    assert!(r.dev.traps(TABLE) && r.dev.traps(PBA + 0xfff));
    assert!(!r.dev.traps(0xfebf_1fff) && !r.dev.traps(0xfebf_4000));
    // After the guest moves the BAR, the trap moves with it.
    r.wr(0x04, 2, 0);
    r.wr(0x10, 4, 0xe000_0000);
    r.decode_on();
    assert!(!r.dev.traps(TABLE));
    assert!(r.dev.traps(0xe000_2000));
}

#[test]
fn table_reads_start_masked_and_writes_stay_virtual() {
    let mut r = nvme();
    assert_eq!(r.dev.mmio_read(&mut r.host, TABLE + 12, 4), Some(1));
    assert!(r.dev.mmio_write(&mut r.host, TABLE + 16, 4, 0xfee0_1000));
    assert!(r.dev.mmio_write(&mut r.host, TABLE + 20, 4, 0));
    assert!(r.dev.mmio_write(&mut r.host, TABLE + 24, 4, 0x4055));
    assert_eq!(
        r.dev.mmio_read(&mut r.host, TABLE + 16, 4),
        Some(0xfee0_1000)
    );
    assert_eq!(r.dev.mmio_read(&mut r.host, TABLE + 24, 4), Some(0x4055));
    assert_eq!(
        r.dev.mmio_read(&mut r.host, TABLE + 16, 8),
        Some(0xfee0_1000),
        "8-byte read of address low and high"
    );
    assert!(r.host.mmio_log.is_empty(), "nothing reached the device");
}

#[test]
fn eight_byte_writes_fill_both_dwords() {
    let mut r = nvme();
    assert!(r
        .dev
        .mmio_write(&mut r.host, TABLE + 32, 8, 0x0000_0001_fee0_2000));
    assert_eq!(
        r.dev.mmio_read(&mut r.host, TABLE + 32, 4),
        Some(0xfee0_2000)
    );
    assert_eq!(r.dev.mmio_read(&mut r.host, TABLE + 36, 4), Some(1));
    // Data and vector control in one access: unmasks the (not enabled)
    // entry virtually.
    assert!(r
        .dev
        .mmio_write(&mut r.host, TABLE + 40, 8, 0x0000_0000_0000_4060));
    assert_eq!(r.dev.mmio_read(&mut r.host, TABLE + 44, 4), Some(0));
    assert!(r.host.mmio_log.is_empty());
}

#[test]
fn odd_sizes_and_unaligned_table_accesses_are_ignored() {
    let mut r = nvme();
    for (gpa, size) in [
        (TABLE, 1),
        (TABLE, 2),
        (TABLE + 2, 4),
        (TABLE + 4, 8),
        (TABLE + 1, 8),
    ] {
        assert_eq!(
            r.dev.mmio_read(&mut r.host, gpa, size),
            Some(if size == 8 {
                u64::MAX
            } else {
                (1 << (8 * size)) - 1
            }),
            "{gpa:#x}/{size}"
        );
        assert!(r.dev.mmio_write(&mut r.host, gpa, size, 0));
    }
    assert_eq!(r.dev.mmio_read(&mut r.host, TABLE, 4), Some(0));
    assert_eq!(r.dev.mmio_read(&mut r.host, TABLE + 12, 4), Some(1));
    assert!(r.host.mmio_log.is_empty());
}

#[test]
fn mask_writes_reach_hardware_only_for_enabled_entries() {
    let mut r = nvme();
    r.dev.enable_msix(&mut r.host, &[2]).unwrap();
    let writes = r.host.mmio_writes().len();
    // Entry 3 is not enabled: its mask bit is the guest's alone.
    assert!(r.dev.mmio_write(&mut r.host, TABLE + 3 * 16 + 12, 4, 0));
    assert_eq!(r.host.mmio_writes().len(), writes);
    assert_eq!(r.host.peek(r.fx.msix_entry_hpa(3) + 12, 4), 1);
    // Entry 2 is: masking and unmasking reach the device.
    assert!(r.dev.mmio_write(&mut r.host, TABLE + 2 * 16 + 12, 4, 1));
    assert_eq!(r.host.peek(r.fx.msix_entry_hpa(2) + 12, 4), 1);
    assert_eq!(
        r.dev.mmio_read(&mut r.host, TABLE + 2 * 16 + 12, 4),
        Some(1)
    );
    assert!(r.dev.mmio_write(&mut r.host, TABLE + 2 * 16 + 12, 4, 0));
    assert_eq!(r.host.peek(r.fx.msix_entry_hpa(2) + 12, 4), 0);
    // The guest's address and data never do.
    assert!(r
        .dev
        .mmio_write(&mut r.host, TABLE + 2 * 16, 4, 0xdead_0000));
    assert_eq!(r.host.peek(r.fx.msix_entry_hpa(2), 4), 0xfee0_0000);
}

#[test]
fn pba_reads_pass_through_and_writes_are_ignored() {
    let mut r = nvme();
    r.host.poke(0xfebf_3000, 8, 0x5);
    assert_eq!(r.dev.mmio_read(&mut r.host, PBA, 8), Some(5));
    assert_eq!(r.dev.mmio_read(&mut r.host, PBA, 4), Some(5));
    assert!(r.dev.mmio_write(&mut r.host, PBA, 8, 0));
    assert_eq!(r.host.peek(0xfebf_3000, 8), 5);
    assert!(r.host.mmio_writes().is_empty());
}

#[test]
fn beyond_the_last_entry_is_the_devices_own_register_space() {
    // 65 entries end at 0x2410: past that the page holds no entry, and no
    // virtual entry is touched (XSA-164).
    let mut r = nvme();
    assert!(r.dev.mmio_write(&mut r.host, TABLE + 65 * 16, 4, 0x1234));
    assert_eq!(r.host.mmio_writes(), [(0xfebf_2410, 4, 0x1234)]);
    assert_eq!(
        r.dev.mmio_read(&mut r.host, TABLE + 65 * 16 - 4, 4),
        Some(1)
    );
    assert_eq!(r.dev.mmio_read(&mut r.host, TABLE + 0xffc, 4), Some(0));
    // Unaligned there is ignored too.
    assert!(r.dev.mmio_write(&mut r.host, TABLE + 0x801, 2, 0));
    assert_eq!(r.host.mmio_writes().len(), 1);
}

#[test]
fn table_and_pba_sharing_a_page_with_other_registers() {
    let mut r = Rig::new(testkit::synthetic());
    r.decode_on();
    let bar2 = 0x8_0010_0000u64;
    // The table page (0x1000) is not mapped; the rest of BAR2 is.
    assert!(r.dev.traps(bar2 + 0x1000));
    assert!(!r.host.is_mapped(bar2 + 0x1000));
    assert!(r.host.is_mapped(bar2));
    assert!(r.host.is_mapped(bar2 + 0x2000));
    // Table entry 7, PBA, and a register at 0x1900.
    assert_eq!(r.dev.mmio_read(&mut r.host, bar2 + 0x1070 + 12, 4), Some(1));
    r.host.poke(bar2 + 0x1800, 8, 0x80);
    assert_eq!(r.dev.mmio_read(&mut r.host, bar2 + 0x1800, 8), Some(0x80));
    assert!(r.dev.mmio_write(&mut r.host, bar2 + 0x1800, 8, 0));
    assert!(r.dev.mmio_write(&mut r.host, bar2 + 0x1900, 2, 0xabcd));
    assert_eq!(r.host.mmio_writes(), [(bar2 + 0x1900, 2, 0xabcd)]);
    assert_eq!(r.dev.mmio_read(&mut r.host, bar2 + 0x1900, 1), Some(0xcd));
}
