//! Device table entries for assigned functions, the invalidations that
//! follow each change, and command encodings.

use super::super::fake::SharedMem;
use super::super::{AmdViError, Command, DeviceEntry, Event, IoTables};
use super::{sbdf, unit, wait};
use crate::iommu::TableMemory;

/// The device table entry address of `devid` in [`unit`]'s table.
fn slot(devid: u64) -> u64 {
    0x10_0000 + devid * 32
}

fn entry(mem: &mut SharedMem, devid: u64) -> [u64; 4] {
    core::array::from_fn(|i| mem.read64(slot(devid) + i as u64 * 8))
}

#[test]
fn commands_have_the_spec_layout() {
    // COMPLETION_WAIT (01h): store address bits 51:3 in place, S (bit 0);
    // high: the data.
    assert_eq!(
        Command::CompletionWait {
            store: 0x000f_1234_5678_9ab8,
            data: 0xdead_beef,
        }
        .encode(),
        [0x100f_1234_5678_9ab9, 0xdead_beef]
    );
    // INVALIDATE_DEVTAB_ENTRY (02h): DeviceID in bits 15:0.
    assert_eq!(
        Command::InvalidateDevtabEntry(0x0118).encode(),
        [0x2000_0000_0000_0118, 0]
    );
    // INVALIDATE_IOMMU_PAGES (03h): DomainID in bits 47:32; high: every
    // address (bits 62:12 set), PDE (1), S (0).
    assert_eq!(
        Command::InvalidateDomain(0xabcd).encode(),
        [0x3000_abcd_0000_0000, 0x7fff_ffff_ffff_f003]
    );
    // INVALIDATE_INTERRUPT_TABLE (05h): DeviceID in bits 15:0.
    assert_eq!(
        Command::InvalidateInterruptTable(0xff07).encode(),
        [0x5000_0000_0000_ff07, 0]
    );
    // INVALIDATE_IOMMU_ALL (08h).
    assert_eq!(Command::InvalidateAll.encode(), [0x8000_0000_0000_0000, 0]);
}

#[test]
fn attach_writes_the_entry_and_invalidates_it_and_the_domain() {
    let (mut unit, mut mem) = unit();
    let tables = IoTables::new(&mut mem, unit.io_config()).unwrap();
    assert_eq!(tables.root(), 0x10_8000);
    let dev = sbdf(0, 3, 0);
    unit.attach(&mut mem, dev, 1, &tables).unwrap();
    assert_eq!(
        entry(&mut mem, 0x18),
        [
            // IW (62) | IR (61) | root | Mode 4 (11:9) | TV (1) | V (0).
            0x6000_0000_0010_8803,
            // DomainID 1.
            1,
            // Interrupts untouched (still blocked: IV = 1, IntCtl 00b).
            1,
            0,
        ]
    );
    assert_eq!(
        unit.regs.take_commands(),
        [
            Command::InvalidateDevtabEntry(0x18).encode(),
            Command::InvalidateDomain(1).encode(),
            wait(1),
        ]
    );
    let e = unit.device_entry(&mut mem, dev).unwrap();
    assert!(e.allows_dma());
    assert_eq!((e.domain_id(), e.root(), e.mode()), (1, 0x10_8000, 4));
    // The same attachment again changes nothing.
    unit.attach(&mut mem, dev, 1, &tables).unwrap();
    assert!(unit.regs.take_commands().is_empty());
}

#[test]
fn detach_blocks_the_device_again() {
    let (mut unit, mut mem) = unit();
    let tables = IoTables::new(&mut mem, unit.io_config()).unwrap();
    let dev = sbdf(1, 0x1f, 7);
    unit.attach(&mut mem, dev, 9, &tables).unwrap();
    unit.regs.take_commands();
    unit.detach(&mut mem, dev).unwrap();
    assert_eq!(
        entry(&mut mem, 0x1ff),
        [0x0000_0000_0010_4803, 0, 1, 0],
        "the blocked entry"
    );
    assert_eq!(
        unit.regs.take_commands(),
        [
            Command::InvalidateDevtabEntry(0x1ff).encode(),
            Command::InvalidateDomain(9).encode(),
            wait(2),
        ]
    );
    assert!(!unit.device_entry(&mut mem, dev).unwrap().allows_dma());
    // Detaching a blocked device does nothing.
    unit.detach(&mut mem, dev).unwrap();
    assert!(unit.regs.take_commands().is_empty());
}

#[test]
fn moving_a_device_to_another_domain_blocks_it_in_between() {
    let (mut unit, mut mem) = unit();
    let a = IoTables::new(&mut mem, unit.io_config()).unwrap();
    let b = IoTables::new(&mut mem, unit.io_config()).unwrap();
    let dev = sbdf(0, 3, 0);
    unit.attach(&mut mem, dev, 1, &a).unwrap();
    unit.regs.take_commands();
    unit.attach(&mut mem, dev, 2, &b).unwrap();
    assert_eq!(
        unit.regs.take_commands(),
        [
            Command::InvalidateDevtabEntry(0x18).encode(),
            Command::InvalidateDomain(1).encode(),
            wait(2),
            Command::InvalidateDevtabEntry(0x18).encode(),
            Command::InvalidateDomain(2).encode(),
            wait(3),
        ]
    );
    assert_eq!(
        entry(&mut mem, 0x18)[..2],
        [DeviceEntry::translated_word0(b.root(), 4), 2]
    );
}

#[test]
fn attach_keeps_the_interrupt_fields() {
    let (mut unit, mut mem) = unit();
    let tables = IoTables::new(&mut mem, unit.io_config()).unwrap();
    let dev = sbdf(0, 3, 0);
    unit.set_irq_table(&mut mem, dev, 4).unwrap();
    let word2 = entry(&mut mem, 0x18)[2];
    unit.attach(&mut mem, dev, 1, &tables).unwrap();
    unit.detach(&mut mem, dev).unwrap();
    assert_eq!(entry(&mut mem, 0x18)[2], word2);
}

#[test]
fn bad_requests_are_refused_without_touching_the_table() {
    let (mut unit, mut mem) = unit();
    let tables = IoTables::new(&mut mem, unit.io_config()).unwrap();
    let dev = sbdf(0, 3, 0);
    assert_eq!(
        unit.attach(&mut mem, dev, 0, &tables),
        Err(AmdViError::BadDomain(0))
    );
    let other = vmm_glue::Sbdf { seg: 1, ..dev };
    assert_eq!(
        unit.attach(&mut mem, other, 1, &tables),
        Err(AmdViError::WrongSegment(other))
    );
    let far = sbdf(2, 0, 0);
    assert_eq!(
        unit.attach(&mut mem, far, 1, &tables),
        Err(AmdViError::OutsideDeviceTable(far))
    );
    assert_eq!(
        unit.detach(&mut mem, far),
        Err(AmdViError::OutsideDeviceTable(far))
    );
    assert_eq!(
        AmdViError::OutsideDeviceTable(far).to_string(),
        "0000:02:00.0 is on a bus beyond this unit's device table"
    );
    assert!(unit.regs.take_commands().is_empty());
    assert_eq!(entry(&mut mem, 0x18), [0x0000_0000_0010_4803, 0, 1, 0]);
}

#[test]
fn flushing_a_domain_invalidates_all_its_pages() {
    let (mut unit, mut mem) = unit();
    unit.flush_domain(&mut mem, 5).unwrap();
    unit.sync_after_map(&mut mem, 6).unwrap();
    assert_eq!(
        unit.regs.take_commands(),
        [
            Command::InvalidateDomain(5).encode(),
            wait(1),
            Command::InvalidateDomain(6).encode(),
            wait(2),
        ]
    );
}

#[test]
fn a_halted_command_buffer_is_an_error_and_is_restarted() {
    let (mut unit, mut mem) = unit();
    unit.regs.halt_on = Some(3);
    assert_eq!(
        unit.flush_domain(&mut mem, 5),
        Err(AmdViError::CommandHalted("INVALIDATE_IOMMU_PAGES"))
    );
    // The unit logged the command it stopped at.
    assert_eq!(
        unit.events(&mut mem),
        [Event::IllegalCommand {
            address: 0x10_5000 + 4 * 16
        }]
    );
    // The buffer runs again from its start.
    unit.flush_domain(&mut mem, 5).unwrap();
    assert_eq!(
        unit.regs.take_commands(),
        [Command::InvalidateDomain(5).encode(), wait(2)]
    );
    assert_eq!(unit.ring.tail, 2);
}

#[test]
fn a_command_that_never_completes_is_a_timeout_naming_it() {
    let (mut unit, mut mem) = unit();
    let tables = IoTables::new(&mut mem, unit.io_config()).unwrap();
    unit.regs.stuck = true;
    assert_eq!(
        unit.attach(&mut mem, sbdf(0, 3, 0), 1, &tables),
        Err(AmdViError::Timeout("INVALIDATE_DEVTAB_ENTRY"))
    );
}
