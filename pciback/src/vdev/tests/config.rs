//! Config accesses: validation, the Command register and the windows it
//! drives, BARs, Status, PM, the default deny and `permissive`.

use super::Rig;
use crate::testkit::{self, MapEvent, Window};
use crate::vdev::CfgError;
use vmm_glue::MapError;

#[test]
fn accesses_must_be_sized_aligned_and_inside_config_space() {
    let mut r = Rig::new(testkit::edu());
    let mut n = alloc::vec::Vec::new();
    for (offset, size) in [
        (0x00, 3),
        (0x01, 2),
        (0x02, 4),
        (0x03, 2),
        (0x00, 0),
        (0x00, 8),
    ] {
        assert_eq!(
            r.dev.read(&mut r.host, offset, size),
            Err(CfgError::InvalidOffset)
        );
        assert_eq!(
            r.dev.write(&mut r.host, offset, size, 0, &mut n),
            Err(CfgError::InvalidOffset)
        );
    }
    // The edu has 256 bytes of config space; nvme 4096.
    assert_eq!(
        r.dev.read(&mut r.host, 0x100, 4),
        Err(CfgError::InvalidOffset)
    );
    assert_eq!(
        r.dev.read(&mut r.host, 0xfff, 1),
        Err(CfgError::InvalidOffset)
    );
    assert_eq!(r.dev.read(&mut r.host, 0xfe, 2), Ok(0));
    let mut nvme = Rig::new(testkit::nvme());
    assert_eq!(nvme.dev.read(&mut nvme.host, 0xffc, 4), Ok(0));
    assert_eq!(
        nvme.dev.read(&mut nvme.host, 0x1000, 1),
        Err(CfgError::InvalidOffset)
    );
    assert_eq!(
        nvme.dev.read(&mut nvme.host, 0xffff, 1),
        Err(CfgError::InvalidOffset)
    );
    assert_eq!(CfgError::InvalidOffset.xen_err(), -2);
}

#[test]
fn command_register_is_a_shadow_and_only_bus_master_and_intx_reach_hardware() {
    let mut r = Rig::new(testkit::edu());
    // IO, MEM, MASTER, MWI, PARITY, SERR, FAST_BACK.
    r.wr(0x04, 2, 0x0357);
    assert_eq!(r.rd(0x04, 2), 0x0357, "the guest reads its own value");
    let hw = r.hw_cmd();
    assert_eq!(hw & 0x0001, 0, "no I/O decode: port I/O is not forwarded");
    assert_eq!(
        hw & 0x0002,
        0x0002,
        "memory decode on: the window is mapped"
    );
    assert_eq!(hw & 0x0004, 0x0004, "bus master passes");
    assert_eq!(
        hw & 0x0350,
        0,
        "MWI, PARITY, SERR, FAST_BACK never reach the hardware"
    );
    assert_eq!(hw & 0x0400, 0, "the guest allows INTx");
    r.wr(0x04, 2, 0x0400);
    assert_eq!(r.hw_cmd(), 0x0400);
    assert_eq!(r.rd(0x04, 2), 0x0400);
    r.wr(0x04, 2, 0xf800);
    assert_eq!(r.rd(0x04, 2), 0, "reserved bits read 0");
}

#[test]
fn memory_decode_maps_every_memory_bar_at_the_guests_address() {
    let mut r = Rig::new(testkit::e1000e());
    r.decode_on();
    let w = |gpa, len| Window { gpa, hpa: gpa, len };
    assert_eq!(
        r.host.windows,
        [
            w(0xfeb8_0000, 0x2_0000),
            w(0xfeba_0000, 0x2_0000),
            // BAR3 without the table page (0) and the PBA page (0x2000).
            w(0xfebd_1000, 0x1000),
            w(0xfebd_3000, 0x1000),
        ]
    );
    assert!(r.dev.is_decoding());
    r.wr(0x04, 2, 0x0004);
    assert!(r.host.windows.is_empty());
    assert_eq!(
        r.hw_cmd() & 0x0002,
        0,
        "hardware decode off with the windows"
    );
    assert!(!r.dev.is_decoding());
}

#[test]
fn nvme_registers_are_mapped_and_its_msix_pages_are_not() {
    let mut r = Rig::new(testkit::nvme());
    r.decode_on();
    assert_eq!(
        r.host.windows,
        [Window {
            gpa: 0xfebf_0000,
            hpa: 0xfebf_0000,
            len: 0x2000
        }]
    );
    assert!(r.dev.traps(0xfebf_2000));
    assert!(r.dev.traps(0xfebf_3ff8));
    assert!(!r.dev.traps(0xfebf_1000));
}

#[test]
fn guest_can_move_a_bar_and_the_hardware_bar_stays() {
    let mut r = Rig::new(testkit::edu());
    r.wr(0x10, 4, 0xe000_0000);
    assert_eq!(r.rd(0x10, 4), 0xe000_0000);
    assert_eq!(r.hw(0x10), 0xfea0_0000);
    r.decode_on();
    assert_eq!(
        r.host.windows,
        [Window {
            gpa: 0xe000_0000,
            hpa: 0xfea0_0000,
            len: 1 << 20
        }]
    );
}

#[test]
fn conf_write_to_bar_while_decoding_is_on_is_ignored() {
    let mut r = Rig::new(testkit::edu());
    r.decode_on();
    r.wr(0x10, 4, 0xe000_0000);
    assert_eq!(r.rd(0x10, 4), 0xfea0_0000);
    assert!(r.noticed("BAR0 ignored"));
    r.wr(0x10, 4, u32::MAX);
    assert_eq!(r.rd(0x10, 4), 0xfea0_0000, "no sizing while decoding");
    assert_eq!(r.host.windows.len(), 1);
}

#[test]
fn bar_over_guest_ram_is_not_mapped() {
    let mut r = Rig::new(testkit::edu());
    r.wr(0x10, 4, 0x1000_0000);
    r.decode_on();
    assert!(r.host.windows.is_empty());
    assert!(r.noticed("BAR0 window 0x10000000+0x100000 not mapped"));
    assert!(r.host.map_log.contains(&MapEvent::Map {
        window: Window {
            gpa: 0x1000_0000,
            hpa: 0xfea0_0000,
            len: 1 << 20
        },
        result: Err(MapError::Overlap)
    }));
}

#[test]
fn a_refused_window_unmaps_the_rest_of_its_bar() {
    let mut r = Rig::new(testkit::e1000e());
    // Something else already sits where BAR3's second window goes.
    let other = Window {
        gpa: 0xfebd_3000,
        hpa: 0xfe00_0000,
        len: 0x1000,
    };
    r.host.windows.push(other);
    r.decode_on();
    assert!(r.noticed("BAR3 window 0xfebd3000+0x1000 not mapped"));
    assert!(r.host.map_log.contains(&MapEvent::Unmap {
        gpa: 0xfebd_1000,
        len: 0x1000
    }));
    assert!(!r.host.is_mapped(0xfebd_1000));
    assert!(r.host.is_mapped(0xfeb8_0000), "the other BARs are mapped");
    assert!(
        !r.dev.traps(0xfebd_0000),
        "BAR3 is not mapped, so nothing traps"
    );
}

#[test]
fn sub_page_bars_are_never_mapped() {
    let mut r = Rig::new(testkit::bridge());
    r.wr(0x10, 4, 0xe000_0100);
    r.decode_on();
    assert!(r.host.windows.is_empty());
    assert!(r.noticed("smaller than a page"));
}

#[test]
fn a_host_map_error_leaves_the_bar_unmapped_with_a_notice() {
    let mut r = Rig::new(testkit::edu());
    r.host.map_error = Some(MapError::NotPermitted);
    r.decode_on();
    assert!(r.host.windows.is_empty());
    assert!(r.noticed("not this guest's device memory"));
}

#[test]
fn rom_is_sized_but_never_enabled_or_mapped() {
    let mut r = Rig::new(testkit::e1000e());
    assert_eq!(r.rd(0x30, 4), 0xfeb4_0000);
    r.wr(0x30, 4, 0xe000_0001);
    assert_eq!(r.rd(0x30, 4), 0xe000_0000, "the enable bit does not stick");
    assert!(r.noticed("expansion ROM cannot be enabled"));
    assert_eq!(r.hw(0x30), 0xfeb4_0000, "the hardware ROM is untouched");
    r.decode_on();
    assert!(!r.host.windows.iter().any(|w| w.gpa == 0xe000_0000));
}

#[test]
fn status_error_bits_are_write_1_to_clear_and_the_rest_is_read_only() {
    let mut r = Rig::new(testkit::edu());
    let sbdf = r.fx.info.sbdf;
    r.host.function_mut(sbdf).regs.get_mut(&0x04).unwrap().value = 0xa010_0400;
    assert_eq!(r.rd(0x06, 2), 0xa010);
    r.wr(0x06, 2, 0x8010);
    assert_eq!(
        r.hw(0x04),
        0x2010_0400,
        "Detected Parity Error cleared, command kept"
    );
    r.wr(0x04, 4, 0x2000_0400);
    assert_eq!(r.hw(0x04), 0x0010_0400);
}

#[test]
fn interrupt_line_reads_the_pirq_and_ignores_writes() {
    let mut r = Rig::new(testkit::edu());
    r.wr(0x3c, 1, 5);
    assert_eq!(r.rd(0x3c, 1), 11);
    assert_eq!(r.hw(0x3c) & 0xff, 0xff);
    assert!(r.notices.is_empty());
}

#[test]
fn identity_registers_are_read_only() {
    let mut r = Rig::new(testkit::nvme());
    r.wr(0x00, 4, 0x1234_5678);
    r.wr(0x08, 4, 0);
    r.wr(0x2c, 4, 0);
    r.wr(0x0e, 1, 0x80);
    assert_eq!(r.rd(0x00, 4), 0x0010_1b36);
    assert_eq!(r.rd(0x08, 4), 0x0108_0202);
    assert_eq!(r.rd(0x2c, 4), 0x1100_1af4);
    assert_eq!(r.rd(0x0e, 1), 0);
    assert!(r.host.function(r.fx.info.sbdf).writes().is_empty());
}

#[test]
fn cache_line_size_reaches_hardware_and_bist_does_not() {
    let mut r = Rig::new(testkit::edu());
    r.wr(0x0c, 1, 0x10);
    assert_eq!(r.hw(0x0c) & 0xff, 0x10);
    assert_eq!(r.rd(0x0c, 1), 0x10);
    r.wr(0x0f, 1, 0x40);
    assert_eq!(r.hw(0x0c) >> 24, 0, "BIST not started");
}

#[test]
fn unclaimed_writes_are_dropped_with_a_notice() {
    let mut r = Rig::new(testkit::synthetic());
    r.wr(0x68, 4, 0x1111_2222);
    assert_eq!(r.hw(0x68), 0xdead_beef);
    assert!(r.noticed("offset 0x68 dropped"));
    assert!(r.noticed("permissive=1"));
}

#[test]
fn permissive_passes_unclaimed_writes_to_hardware() {
    let mut r = Rig::permissive(testkit::synthetic());
    assert_eq!(r.rd(0x68, 4), 0xdead_beef, "hardware read through");
    r.wr(0x68, 2, 0x2222);
    assert_eq!(r.hw(0x68), 0xdead_2222);
    assert!(r.noticed("permissive"));
    // Virtualised registers stay virtualised.
    r.wr(0x04, 2, 0x0140);
    assert_eq!(r.hw_cmd() & 0x0140, 0);
    r.wr(0x10, 4, 0x1234_0000);
    assert_eq!(r.hw(0x10), 0x0000_000c);
}

#[test]
fn permissive_is_per_device() {
    let mut a = Rig::permissive(testkit::synthetic());
    let mut b = Rig::new(testkit::synthetic());
    a.wr(0x6c, 4, 7);
    b.wr(0x6c, 4, 7);
    assert_eq!(a.hw(0x6c), 7);
    assert_eq!(b.hw(0x6c), 0);
}

#[test]
fn extended_config_space_reads_zero_and_drops_writes_even_when_permissive() {
    let mut r = Rig::permissive(testkit::synthetic());
    assert_eq!(r.rd(0x104, 4), 0);
    r.wr(0x108, 4, 0x55);
    assert_eq!(r.hw(0x108), 0);
    assert!(r.noticed("extended config space"));
}

#[test]
fn msi_and_msix_enable_through_config_space_is_ignored() {
    let mut r = Rig::new(testkit::e1000e());
    r.decode_on();
    r.wr(0xd2, 2, 0x0001);
    assert_eq!(r.rd(0xd2, 2) & 1, 0);
    assert_eq!(r.hw(0xd0) >> 16 & 1, 0);
    r.wr(0xa2, 2, 0x8000);
    assert_eq!(r.rd(0xa2, 2) & 0x8000, 0);
    assert_eq!(r.hw(0xa0) >> 31, 0);
    assert!(r.noticed("XEN_PCI_OP_enable_msi/"));
    assert!(r.noticed("XEN_PCI_OP_enable_msix/"));
}

#[test]
fn msi_address_and_data_writes_stay_virtual() {
    let mut r = Rig::new(testkit::edu());
    r.wr(0x44, 4, 0xfee0_1000);
    r.wr(0x48, 4, 0x1);
    r.wr(0x4c, 2, 0x4041);
    assert_eq!(r.rd(0x44, 4), 0xfee0_1000);
    assert_eq!(r.rd(0x48, 4), 1);
    assert_eq!(r.rd(0x4c, 2), 0x4041);
    assert_eq!((r.hw(0x44), r.hw(0x48), r.hw(0x4c)), (0, 0, 0));
}

#[test]
fn pcie_capability_is_read_only() {
    let mut r = Rig::new(testkit::nvme());
    r.wr(0x88, 2, 0x8000);
    assert!(
        r.host.function(r.fx.info.sbdf).writes().is_empty(),
        "no FLR"
    );
    assert_eq!(r.rd(0x88, 2), 0x2810);
}

#[test]
fn pm_d3hot_unmaps_and_d0_maps_again() {
    let mut r = Rig::new(testkit::e1000e());
    r.decode_on();
    assert!(!r.host.windows.is_empty());
    r.wr(0xcc, 2, 0x0003);
    assert_eq!(r.hw(0xcc) & 3, 3);
    assert!(r.host.windows.is_empty());
    assert_eq!(r.hw_cmd() & 2, 0);
    assert_eq!(r.host.delays, [10_000]);
    assert_eq!(r.rd(0x04, 2) & 2, 2, "the guest's view keeps decode on");
    r.wr(0xcc, 2, 0x0000);
    assert_eq!(r.hw(0xcc) & 3, 0);
    assert_eq!(r.host.windows.len(), 4);
    assert_eq!(r.hw_cmd() & 2, 2);
    assert_eq!(r.host.delayed_us, 20_000);
}

#[test]
fn pm_d3hot_to_d0_restores_bars_when_the_function_resets_itself() {
    let mut r = Rig::new(testkit::e1000e());
    let sbdf = r.fx.info.sbdf;
    r.wr(0xcc, 2, 0x0003);
    // What a soft reset does to the hardware.
    r.host.function_mut(sbdf).regs.get_mut(&0x10).unwrap().value = 0;
    r.wr(0xcc, 2, 0x0000);
    assert_eq!(r.hw(0x10), 0xfeb8_0000);
}

#[test]
fn pm_refuses_d1_d2_and_keeps_pme_off() {
    let mut r = Rig::new(testkit::e1000e());
    let mut n = alloc::vec::Vec::new();
    assert_eq!(
        r.dev.write(&mut r.host, 0xcc, 2, 0x0001, &mut n),
        Err(CfgError::AccessDenied)
    );
    assert_eq!(r.hw(0xcc) & 3, 0);
    r.wr(0xcc, 2, 0x0100);
    assert_eq!(r.hw(0xcc) & 0x0100, 0, "PME_En stays off");
    assert_eq!(r.rd(0xcc, 2) & 0x0100, 0);
}

#[test]
fn writes_spanning_fields_reach_each_one() {
    let mut r = Rig::new(testkit::edu());
    // Command and Status in one dword: decode on, nothing to clear.
    r.wr(0x04, 4, 0x0000_0006);
    assert!(r.dev.is_decoding());
    // Cache line, latency (read-only), header type (read-only), BIST.
    r.wr(0x0c, 4, 0x40ff_ff08);
    assert_eq!(r.hw(0x0c), 0x0000_0008);
}

#[test]
fn io_decode_hands_the_io_bar_ports_to_the_guest_and_takes_them_back() {
    let mut r = Rig::new(testkit::e1000e());
    let io = r
        .dev
        .info()
        .bars
        .iter()
        .find(|b| b.kind == crate::vdev::BarKind::Io)
        .copied()
        .expect("the e1000e has an I/O BAR");
    let port = u16::try_from(io.base).unwrap();
    let len = u16::try_from(io.size).unwrap();
    // I/O decode alone: the ports, no memory window.
    r.wr(0x04, 2, 0x0001);
    assert_eq!(r.host.ports, [(port, len)]);
    assert_eq!(r.dev.io_ports(), [(port, len)]);
    assert!(r.host.windows.is_empty());
    assert_eq!(r.hw_cmd() & 0x0003, 0x0001, "hardware I/O decode on");
    r.wr(0x04, 2, 0x0000);
    assert!(r.host.ports.is_empty());
    assert_eq!(
        r.hw_cmd() & 0x0001,
        0,
        "hardware I/O decode off with the ports"
    );
    // A guest that moved the I/O BAR does not get other ports.
    let reg = 0x10 + 4 * u16::from(io.index);
    r.wr(reg, 4, 0x5000 | 1);
    r.wr(0x04, 2, 0x0001);
    assert!(r.host.ports.is_empty());
    assert_eq!(r.hw_cmd() & 0x0001, 0);
    // Release takes the ports back too.
    r.wr(0x04, 2, 0x0000);
    r.wr(reg, 4, u32::from(port) | 1);
    r.wr(0x04, 2, 0x0001);
    assert_eq!(r.host.ports, [(port, len)]);
    r.dev.release(&mut r.host);
    assert!(r.host.ports.is_empty());
    assert_eq!(r.hw_cmd() & 0x0003, 0);
}

#[test]
fn a_whole_writable_field_is_written_without_reading_the_register_first() {
    let mut r = Rig::new(testkit::edu());
    let sbdf = r.fx.info.sbdf;
    r.host.bus.functions.get_mut(&sbdf).unwrap().log.clear();
    // Cache Line Size: one byte, all of it writable.
    r.wr(0x0c, 1, 0x10);
    let log = &r.host.function(sbdf).log;
    let reads = log
        .iter()
        .filter(|a| matches!(a, crate::fake_config::Access::Read { .. }))
        .count();
    assert_eq!(reads, 1, "only the dword's read-modify-write: {log:?}");
    assert_eq!(r.hw(0x0c) & 0xff, 0x10);
    assert_eq!(r.rd(0x0c, 1), 0x10);
}

#[test]
fn permissive_writes_leave_the_rest_of_the_dword_alone() {
    // A hidden register whose top byte holds a write-1-to-clear bit that
    // is set: a byte written below it must not clear it, as a dword
    // read-modify-write would (writing the 1 it read back).
    let mut r = Rig::permissive(testkit::synthetic());
    let sbdf = r.fx.info.sbdf;
    r.host.function_mut(sbdf).regs.insert(
        0x6c,
        crate::fake_config::Reg {
            value: 0x8000_0000,
            writable: 0x00ff_ffff,
            rw1c: 0x8000_0000,
        },
    );
    r.wr(0x6c, 1, 0x55);
    assert_eq!(r.hw(0x6c), 0x8000_0055);
    r.wr(0x6e, 1, 0x66);
    assert_eq!(r.hw(0x6c), 0x8066_0055);
    r.wr(0x6c, 2, 0x1234);
    assert_eq!(r.hw(0x6c), 0x8066_1234);
    // Writing the bit itself clears it.
    r.wr(0x6f, 1, 0x80);
    assert_eq!(r.hw(0x6c), 0x0066_1234);
}
