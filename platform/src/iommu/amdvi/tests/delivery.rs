//! End to end against the fake unit's own walk of the tables: which DMA
//! reaches memory, which interrupts reach a processor, and the event
//! each blocked request leaves.

use super::super::fake::SharedMem;
use super::super::{Event, IoTables, MSI_ADDRESS};
use super::{sbdf, unit};

const DEV: u16 = 0x18; // 0000:00:03.0
const OTHER: u16 = 0x20; // 0000:00:04.0

#[test]
fn every_device_is_blocked_after_init_and_its_dma_is_logged() {
    let (mut unit, mut mem) = unit();
    assert_eq!(unit.regs.dma(DEV, 0x1000, false), None);
    assert_eq!(unit.regs.dma(OTHER, 0x3fff_f000, true), None);
    let lines: Vec<String> = unit
        .events(&mut mem)
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        lines,
        [
            "amd-vi: I/O page fault from 0000:00:03.0 (domain 0) at 0x1000: read",
            "amd-vi: I/O page fault from 0000:00:04.0 (domain 0) at 0x3ffff000: write",
        ]
    );
}

#[test]
fn an_attached_device_reaches_only_its_domain_s_mappings() {
    let (mut unit, mut mem) = unit();
    let mut tables = IoTables::new(&mut mem, unit.io_config()).unwrap();
    // Guest RAM 0..1 GiB at host 4 GiB (large pages), and one read-only
    // page.
    tables
        .map(&mut mem, 0, 0x1_0000_0000, 0x4000_0000, true)
        .unwrap();
    tables
        .map(&mut mem, 0x8000_0000, 0x2_0000_0000, 0x1000, false)
        .unwrap();
    unit.attach(&mut mem, sbdf(0, 3, 0), 1, &tables).unwrap();
    unit.sync_after_map(&mut mem, 1).unwrap();
    assert_eq!(unit.regs.dma(DEV, 0x1234, true), Some(0x1_0000_1234));
    assert_eq!(unit.regs.dma(DEV, 0x3fff_fff8, false), Some(0x1_3fff_fff8));
    assert_eq!(unit.regs.dma(DEV, 0x8000_0010, false), Some(0x2_0000_0010));
    assert!(unit.events(&mut mem).is_empty());
    // Beyond the guest's RAM, a write to the read-only page, and another
    // device.
    assert_eq!(unit.regs.dma(DEV, 0x4000_0000, true), None);
    assert_eq!(unit.regs.dma(DEV, 0x8000_0000, true), None);
    assert_eq!(unit.regs.dma(OTHER, 0x1000, false), None);
    let lines: Vec<String> = unit
        .events(&mut mem)
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        lines,
        [
            "amd-vi: I/O page fault from 0000:00:03.0 (domain 1) at 0x40000000: write",
            "amd-vi: I/O page fault from 0000:00:03.0 (domain 1) at 0x80000000: write \
             (mapped without that permission)",
            "amd-vi: I/O page fault from 0000:00:04.0 (domain 0) at 0x1000: read",
        ]
    );
    // The driver's own walk agrees with the unit's.
    for iova in [0x1234, 0x3fff_fff8, 0x8000_0010, 0x4000_0000] {
        assert_eq!(
            tables.translate(&mut mem, iova).map(|(hpa, _)| hpa),
            unit.regs.dma(DEV, iova, false)
        );
    }
    // Unmapped and flushed: gone.
    tables.unmap(&mut mem, 0, 0x20_0000).unwrap();
    unit.flush_domain(&mut mem, 1).unwrap();
    tables.reclaim(&mut mem);
    assert_eq!(unit.regs.dma(DEV, 0x1234, true), None);
    assert_eq!(unit.regs.dma(DEV, 0x20_0000, true), Some(0x1_0020_0000));
    // Detached: blocked again.
    unit.detach(&mut mem, sbdf(0, 3, 0)).unwrap();
    assert_eq!(unit.regs.dma(DEV, 0x20_0000, false), None);
    tables.destroy(&mut mem);
}

fn blocked_interrupts(
    unit: &mut super::super::AmdVi<super::super::fake::FakeRegs>,
    mem: &mut SharedMem,
) -> Vec<String> {
    unit.events(mem)
        .iter()
        .filter(|e| matches!(e, Event::InterruptBlocked { .. }))
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn without_a_table_every_interrupt_is_blocked() {
    let (mut unit, mut mem) = unit();
    // A fixed vector, an NMI, an ExtInt, an INIT: every device id starts
    // with IV = 1, IntCtl 00b and no pass bit.
    for data in [0x30, 0x400, 0x700, 0x500] {
        assert_eq!(
            unit.regs.interrupt(DEV, 0xfee0_1000, data),
            None,
            "{data:#x}"
        );
    }
    assert_eq!(blocked_interrupts(&mut unit, &mut mem).len(), 4);
    // And the I/O APIC's (00:14.0, which QEMU names as the requester of
    // messages a device writes by DMA) until it has a table.
    assert_eq!(unit.regs.interrupt(0x00a0, 0xfee0_0000, 0x400), None);
}

#[test]
fn only_mapped_indices_reach_a_processor() {
    let (mut unit, mut mem) = unit();
    let dev = sbdf(0, 3, 0);
    unit.set_irq_table(&mut mem, dev, 4).unwrap();
    // Nothing is mapped yet: the device's old message is blocked.
    assert_eq!(unit.regs.interrupt(DEV, 0xfee0_1000, 0x30), None);
    assert_eq!(
        blocked_interrupts(&mut unit, &mut mem),
        ["amd-vi: interrupt from 0000:00:03.0 blocked (no remapping entry)"]
    );
    let (address, data) = unit.map_irq(&mut mem, dev, 2, 0x41, 3).unwrap();
    assert_eq!(address, MSI_ADDRESS);
    assert_eq!(unit.regs.interrupt(DEV, address, data), Some((0x41, 3)));
    // Forged messages: another index, an index beyond the table, an NMI
    // delivery mode (data bits 10:8 = 100b), a fixed vector written in
    // the data as if there were no remapping.
    for forged in [1, 4, 0x7ff, 0x402, 0xfe] {
        assert_eq!(
            unit.regs.interrupt(DEV, 0xfee0_0000, forged),
            None,
            "{forged:#x}"
        );
    }
    assert_eq!(blocked_interrupts(&mut unit, &mut mem).len(), 5);
    // The address's destination bits do not matter: the entry decides.
    assert_eq!(unit.regs.interrupt(DEV, 0xfee0_f000, 2), Some((0x41, 3)));
    // Another device cannot use this device's entries.
    unit.set_irq_table(&mut mem, sbdf(0, 4, 0), 4).unwrap();
    assert_eq!(unit.regs.interrupt(OTHER, 0xfee0_0000, 2), None);
    // Unmapped again: blocked.
    unit.unmap_irq(&mut mem, dev, 2).unwrap();
    assert_eq!(unit.regs.interrupt(DEV, 0xfee0_0000, 2), None);
    // All blocked, even with an entry.
    unit.map_irq(&mut mem, dev, 2, 0x41, 3).unwrap();
    unit.block_irqs(&mut mem, dev).unwrap();
    assert_eq!(unit.regs.interrupt(DEV, 0xfee0_0000, 2), None);
    assert_eq!(unit.regs.interrupt(DEV, 0xfee0_0000, 0x400), None);
}
