//! Interrupt remapping: the device table entry's interrupt word, the
//! remapping entries, the MSI message a device gets, and the commands
//! after each change.

use super::super::fake::SharedMem;
use super::super::{irte, AmdViError, Command, MAX_IRQ_ENTRIES, MSI_ADDRESS};
use super::{sbdf, unit, wait};
use crate::iommu::TableMemory;

fn word2(mem: &mut SharedMem, devid: u64) -> u64 {
    mem.read64(0x10_0000 + devid * 32 + 16)
}

#[test]
fn a_remapping_entry_has_the_spec_layout() {
    // Vector (23:16) 0x41, Destination (15:8) 3, DM (6) 0 physical,
    // IntType (4:2) 000 fixed, SupIOPF (1) 0, RemapEn (0) 1.
    assert_eq!(irte(0x41, 3), 0x0041_0301);
    assert_eq!(irte(0xff, 0xff), 0x00ff_ff01);
}

#[test]
fn set_irq_table_points_the_entry_at_an_empty_table() {
    let (mut unit, mut mem) = unit();
    let dev = sbdf(0, 3, 0);
    unit.set_irq_table(&mut mem, dev, 3).unwrap();
    // The table is the next frame after init's.
    let table = 0x10_8000;
    assert_eq!(
        word2(&mut mem, 0x18),
        // IntCtl (61:60) = 10b remap | table (51:6) | IntTabLen (4:1) = 2
        // (3 entries round up to 4) | IV (0); IG (5) and the pass bits
        // (56, 57, 58, 62, 63) clear.
        0x2000_0000_0000_0000 | table | 2 << 1 | 1
    );
    for i in 0..512 {
        assert_eq!(mem.read64(table + i * 8), 0, "entries start disabled");
    }
    assert_eq!(
        unit.regs.take_commands(),
        [Command::InvalidateInterruptTable(0x18).encode(), wait(1)]
    );
    let e = unit.device_entry(&mut mem, dev).unwrap();
    assert_eq!(e.interrupt_table(), Some((table, 4)));
    // DMA stays blocked: interrupts and translation are separate.
    assert!(!e.allows_dma());
}

#[test]
fn map_irq_enables_one_entry_and_returns_the_msi_message() {
    let (mut unit, mut mem) = unit();
    let dev = sbdf(0, 3, 0);
    unit.set_irq_table(&mut mem, dev, 8).unwrap();
    unit.regs.take_commands();
    let msg = unit.map_irq(&mut mem, dev, 5, 0x41, 2).unwrap();
    // Address: the interrupt range; data: the index (bits 10:0 select the
    // entry).
    assert_eq!(msg, (MSI_ADDRESS, 5));
    assert_eq!(msg.0, 0xfee0_0000);
    // Entry 5 is the high half of the table's third word.
    let table = 0x10_8000;
    assert_eq!(mem.read64(table + 16), 0x0041_0201_u64 << 32);
    assert_eq!(unit.irq_entry(&mut mem, dev, 5), Some(irte(0x41, 2)));
    assert_eq!(unit.irq_entry(&mut mem, dev, 4), Some(0));
    unit.map_irq(&mut mem, dev, 4, 0x42, 1).unwrap();
    assert_eq!(mem.read64(table + 16), 0x0041_0201_u64 << 32 | 0x0042_0101);
    assert_eq!(
        unit.regs.take_commands(),
        [
            Command::InvalidateInterruptTable(0x18).encode(),
            wait(2),
            Command::InvalidateInterruptTable(0x18).encode(),
            wait(3),
        ]
    );
    unit.unmap_irq(&mut mem, dev, 5).unwrap();
    assert_eq!(mem.read64(table + 16), 0x0042_0101);
    assert_eq!(
        unit.regs.take_commands(),
        [Command::InvalidateInterruptTable(0x18).encode(), wait(4)]
    );
}

#[test]
fn bad_interrupt_requests_are_refused() {
    let (mut unit, mut mem) = unit();
    let dev = sbdf(0, 3, 0);
    assert_eq!(
        unit.map_irq(&mut mem, dev, 0, 0x41, 0),
        Err(AmdViError::NoIrqTable(dev))
    );
    assert_eq!(
        unit.set_irq_table(&mut mem, dev, 0),
        Err(AmdViError::BadIrqCount(0))
    );
    assert_eq!(
        unit.set_irq_table(&mut mem, dev, MAX_IRQ_ENTRIES + 1),
        Err(AmdViError::BadIrqCount(513))
    );
    unit.set_irq_table(&mut mem, dev, 2).unwrap();
    assert_eq!(
        unit.map_irq(&mut mem, dev, 2, 0x41, 0),
        Err(AmdViError::BadIrqIndex { dev, index: 2 })
    );
    assert_eq!(
        unit.map_irq(&mut mem, dev, 0, 0x0f, 0),
        Err(AmdViError::BadVector(0x0f))
    );
    assert_eq!(
        unit.unmap_irq(&mut mem, sbdf(0, 4, 0), 0),
        Err(AmdViError::NoIrqTable(sbdf(0, 4, 0)))
    );
    assert_eq!(
        unit.set_irq_table(&mut mem, sbdf(2, 0, 0), 2),
        Err(AmdViError::OutsideDeviceTable(sbdf(2, 0, 0)))
    );
}

#[test]
fn the_largest_table_has_512_entries_in_one_frame() {
    let (mut unit, mut mem) = unit();
    let dev = sbdf(1, 0, 0);
    unit.set_irq_table(&mut mem, dev, MAX_IRQ_ENTRIES).unwrap();
    // IntTabLen 9.
    assert_eq!((word2(&mut mem, 0x100) >> 1) & 0xf, 9);
    let (msg_addr, data) = unit.map_irq(&mut mem, dev, 511, 0xfe, 0).unwrap();
    assert_eq!((msg_addr, data), (MSI_ADDRESS, 511));
    assert_eq!(mem.read64(0x10_8000 + 0x7f8) >> 32, 0x00fe_0001);
}

#[test]
fn replacing_or_blocking_a_table_frees_the_old_one() {
    let (mut unit, mut mem) = unit();
    let dev = sbdf(0, 3, 0);
    let live = mem.live();
    unit.set_irq_table(&mut mem, dev, 4).unwrap();
    unit.map_irq(&mut mem, dev, 1, 0x41, 0).unwrap();
    unit.set_irq_table(&mut mem, dev, 16).unwrap();
    assert_eq!(mem.live(), live + 1);
    // The new table starts with every entry disabled.
    assert_eq!(unit.irq_entry(&mut mem, dev, 1), Some(0));
    unit.regs.take_commands();
    unit.block_irqs(&mut mem, dev).unwrap();
    assert_eq!(mem.live(), live);
    // IV (0) = 1, IntCtl = 00b: every interrupt target-aborted.
    assert_eq!(word2(&mut mem, 0x18), 1);
    assert_eq!(
        unit.device_entry(&mut mem, dev).unwrap().interrupt_table(),
        None
    );
    assert_eq!(
        unit.regs.take_commands(),
        [Command::InvalidateInterruptTable(0x18).encode(), wait(4)]
    );
    assert_eq!(
        unit.map_irq(&mut mem, dev, 0, 0x41, 0),
        Err(AmdViError::NoIrqTable(dev))
    );
}

#[test]
fn a_table_is_kept_when_its_invalidation_fails() {
    let (mut unit, mut mem) = unit();
    let dev = sbdf(0, 3, 0);
    unit.set_irq_table(&mut mem, dev, 4).unwrap();
    let live = mem.live();
    unit.regs.stuck = true;
    assert_eq!(
        unit.block_irqs(&mut mem, dev),
        Err(AmdViError::Timeout("INVALIDATE_INTERRUPT_TABLE"))
    );
    // The unit may still read the old table.
    assert_eq!(mem.live(), live);
}
