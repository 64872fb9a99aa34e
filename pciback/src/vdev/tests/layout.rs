//! The guest's view of each device layout: identity, BAR sizes found by
//! sizing, the filtered capability chain.

use super::Rig;
use crate::testkit::{self, cap_id};

#[test]
fn edu_identity_bars_and_capabilities() {
    let mut r = Rig::new(testkit::edu());
    assert_eq!(r.rd(0x00, 4), 0x11e8_1234);
    assert_eq!(r.rd(0x00, 2), 0x1234);
    assert_eq!(r.rd(0x02, 2), 0x11e8);
    assert_eq!(r.rd(0x08, 4), 0x00ff_0010);
    assert_eq!(r.rd(0x2c, 4), 0x1100_1af4);
    assert_eq!(r.rd(0x0e, 1), 0);
    assert_eq!(r.rd(0x10, 4), 0xfea0_0000);
    assert_eq!(
        r.size_bar(0x10),
        0xfff0_0000,
        "1 MiB, 32-bit, not prefetchable"
    );
    for bar in 1..6 {
        assert_eq!(r.size_bar(0x10 + 4 * bar), 0, "BAR{bar} unimplemented");
    }
    assert_eq!(r.size_bar(0x30), 0, "no ROM");
    assert_eq!(r.chain(), [(cap_id::MSI, 0x40)]);
    assert_eq!(r.rd(0x42, 2), 0x0080, "64-bit capable, 1 vector, off");
    assert_eq!(r.rd(0x3c, 1), 11, "Interrupt Line is the INTx pirq");
    assert_eq!(r.rd(0x3d, 1), 1, "INTA");
    assert_eq!(r.rd(0x04, 2), 0x0400, "decoding off, INTx disabled");
}

#[test]
fn nvme_bar0_is_64_bit_and_msix_pcie_pm_are_listed() {
    let mut r = Rig::new(testkit::nvme());
    assert_eq!(r.rd(0x00, 4), 0x0010_1b36);
    assert_eq!(r.rd(0x08, 4), 0x0108_0202);
    assert_eq!(r.rd(0x10, 4), 0xfebf_0004);
    assert_eq!(r.rd(0x14, 4), 0);
    r.wr(0x10, 4, u32::MAX);
    r.wr(0x14, 4, u32::MAX);
    assert_eq!(r.rd(0x10, 4), 0xffff_c004, "16 KiB, 64-bit");
    assert_eq!(r.rd(0x14, 4), 0xffff_ffff);
    r.wr(0x10, 4, 0xfebf_0000);
    r.wr(0x14, 4, 0);
    assert_eq!(r.rd(0x10, 4), 0xfebf_0004);
    assert_eq!(
        r.chain(),
        [
            (cap_id::MSIX, 0x40),
            (cap_id::PCIE, 0x80),
            (cap_id::PM, 0x60)
        ]
    );
    assert_eq!(r.rd(0x42, 2), 64, "65 entries, off, unmasked");
    assert_eq!(r.rd(0x44, 4), 0x2000, "table at BAR0 + 0x2000");
    assert_eq!(r.rd(0x48, 4), 0x3000, "PBA at BAR0 + 0x3000");
    assert_eq!(
        r.rd(0x84, 4),
        0x1000_8000,
        "Device Capabilities as the device has them"
    );
    assert_eq!(r.rd(0x100, 4), 0, "extended config space hidden");
    assert_eq!(r.rd(0xffc, 4), 0);
}

#[test]
fn e1000e_bars_rom_and_capabilities() {
    let mut r = Rig::new(testkit::e1000e());
    assert_eq!(r.rd(0x00, 4), 0x10d3_8086);
    assert_eq!(r.rd(0x08, 4), 0x0200_0000);
    assert_eq!(r.size_bar(0x10), 0xfffe_0000, "BAR0 128 KiB");
    assert_eq!(r.size_bar(0x14), 0xfffe_0000, "BAR1 128 KiB");
    assert_eq!(r.size_bar(0x18), 0xffff_ffe1, "BAR2 32 bytes of I/O");
    assert_eq!(r.size_bar(0x1c), 0xffff_c000, "BAR3 16 KiB");
    assert_eq!(r.size_bar(0x20), 0);
    assert_eq!(r.size_bar(0x24), 0);
    assert_eq!(r.size_bar(0x30), 0xfffc_0000, "ROM 256 KiB, never enabled");
    assert_eq!(r.rd(0x18, 4), 0xc041);
    assert_eq!(
        r.chain(),
        [
            (cap_id::PM, 0xc8),
            (cap_id::MSI, 0xd0),
            (cap_id::PCIE, 0xe0),
            (cap_id::MSIX, 0xa0)
        ]
    );
    assert_eq!(r.rd(0xca, 2), 0x0022, "PMC without PME support");
    assert_eq!(r.rd(0xa2, 2), 4, "5 entries");
    assert_eq!(r.rd(0xa4, 4), 3, "table at BAR3 + 0");
    assert_eq!(r.rd(0xa8, 4), 0x2003, "PBA at BAR3 + 0x2000");
    assert_eq!(r.rd(0x100, 4), 0, "AER hidden");
    assert_eq!(r.rd(0x140, 4), 0, "serial number hidden");
}

#[test]
fn synthetic_vendor_capability_is_skipped_and_its_registers_read_zero() {
    let mut r = Rig::new(testkit::synthetic());
    assert_eq!(
        r.chain(),
        [
            (cap_id::PM, 0x40),
            (cap_id::MSI, 0x50),
            (cap_id::MSIX, 0x70),
            (cap_id::PCIE, 0x80)
        ]
    );
    assert_eq!(r.rd(0x64, 4), 0);
    assert_eq!(r.rd(0x68, 4), 0, "the vendor register is not visible");
    assert_eq!(r.rd(0x10, 4), 0x0000_000c, "64-bit prefetchable");
    assert_eq!(r.rd(0x14, 4), 0x8, "above 4 GiB");
    r.wr(0x10, 4, u32::MAX);
    r.wr(0x14, 4, u32::MAX);
    assert_eq!(r.rd(0x10, 4), 0xfff0_000c);
    assert_eq!(r.rd(0x14, 4), 0xffff_ffff);
    assert_eq!(r.size_bar(0x20), 0xffff_f000, "BAR4 4 KiB");
    assert_eq!(r.size_bar(0x24), 0, "BAR5 unimplemented");
    assert_eq!(r.size_bar(0x30), 0xffff_0000, "ROM 64 KiB");
    assert_eq!(r.rd(0x52, 2), 0x0100, "32-bit address, maskable");
    assert_eq!(r.rd(0x100, 4), 0);
}

#[test]
fn bridge_shows_its_header_and_only_msi() {
    let mut r = Rig::new(testkit::bridge());
    assert_eq!(r.rd(0x0e, 1), 1, "header type 1");
    assert_eq!(r.rd(0x08, 4), 0x0604_0000);
    assert_eq!(r.rd(0x18, 4), 0x0001_0100, "bus numbers from the bridge");
    assert_eq!(r.chain(), [(cap_id::MSI, 0x8c)], "SHPC and slot ID hidden");
    r.wr(0x10, 4, u32::MAX);
    assert_eq!(r.rd(0x10, 4), 0xffff_ff04, "256 bytes, 64-bit");
    r.wr(0x18, 4, 0x0005_0500);
    assert_eq!(r.hw(0x18), 0x0001_0100, "bus numbers are read-only");
    r.wr(0x3e, 2, 0x0040);
    assert_eq!(r.hw(0x3c) >> 16, 0, "the guest cannot reset the bus");
}

#[test]
fn with_every_capability_hidden_the_list_bit_is_clear() {
    let mut fx = testkit::edu();
    // The edu's only capability, made vendor-specific.
    let reg = fx.config.regs.get_mut(&0x40).unwrap();
    reg.value = (reg.value & !0xff) | u32::from(cap_id::VENDOR);
    let mut r = Rig::new(fx);
    assert_eq!(r.rd(0x06, 2) & 0x10, 0);
    assert_eq!(r.rd(0x34, 1), 0);
    assert!(r.chain().is_empty());
    assert_eq!(
        r.dev.enable_msi(&mut r.host),
        Err(super::super::OpError(-19))
    );
}

#[test]
fn a_capability_list_that_loops_ends() {
    let mut fx = testkit::synthetic();
    // PCIe (0x80) points back at PM (0x40).
    let reg = fx.config.regs.get_mut(&0x80).unwrap();
    reg.value = (reg.value & !0xff00) | 0x4000;
    let mut r = Rig::new(fx);
    assert_eq!(r.chain().len(), 4);
}

#[test]
fn msix_table_outside_its_bar_hides_the_capability() {
    let mut fx = testkit::nvme();
    // Table offset 0x3ff8: 65 entries do not fit in the 16 KiB BAR.
    fx.config.regs.get_mut(&0x44).unwrap().value = 0x3ff8;
    let mut r = Rig::new(fx);
    assert_eq!(r.chain(), [(cap_id::PCIE, 0x80), (cap_id::PM, 0x60)]);
    r.decode_on();
    assert_eq!(
        r.dev.enable_msix(&mut r.host, &[0]),
        Err(super::super::OpError(-19))
    );
}
