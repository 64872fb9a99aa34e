//! Bringing a unit up: the register sequence, the blocked device table,
//! feature decoding, cache invalidation with and without
//! INVALIDATE_IOMMU_ALL, and the ways it fails.

use super::super::fake::{FakeRegs, SharedMem, Write, EFR_QEMU};
use super::super::regs::*;
use super::super::{AmdVi, AmdViError, Command, DeviceEntry, Features, IoLevels};
use crate::iommu::TableMemory;

#[test]
fn init_programs_the_tables_enables_the_unit_and_invalidates_everything() {
    let mut mem = SharedMem::new();
    let regs = FakeRegs::new(EFR_QEMU, &mem);
    let mut unit = AmdVi::init(regs, &mut mem, 0, 1).unwrap();
    // Device table (2 buses: 4 frames), the empty table, command buffer,
    // event log, completion store page, in that order.
    let (dev_table, frames) = unit.device_table();
    assert_eq!((dev_table, frames), (0x10_0000, 4));
    assert_eq!(mem.live(), 8);
    let (cmd_buf, event_log, store) = (0x10_5000, 0x10_6000, 0x10_7000);
    assert_eq!(
        unit.regs.take_writes(),
        [
            // Exclusion range off (ExEn, bit 0, clear).
            Write::W64(EXCL_BASE, 0),
            Write::W64(EXCL_LIMIT, 0),
            // DevTabBase | Size (bits 8:0) = 4 pages - 1.
            Write::W64(DEV_TAB_BASE, 0x10_0003),
            // ComBase | ComLen (bits 59:56) = 8: 256 entries.
            Write::W64(CMD_BASE, 0x0800_0000_0010_5000),
            Write::W64(CMD_HEAD, 0),
            Write::W64(CMD_TAIL, 0),
            // EventBase | EventLen = 8.
            Write::W64(EVT_BASE, 0x0800_0000_0010_6000),
            Write::W64(EVT_HEAD, 0),
            Write::W64(EVT_TAIL, 0),
            // EventOverflow, EventLogInt, ComWaitInt, PprOverflow, PprInt.
            Write::W64(STATUS, 0x67),
            // Coherent (10) | CmdBufEn (12) | EventLogEn (2).
            Write::W64(CONTROL, 0x1404),
            // ... | IommuEn (0). EventIntEn (3), ComWaitIntEn (4) stay 0.
            Write::W64(CONTROL, 0x1405),
            // Commands: 254 and a wait, twice, then the last 5 and a wait.
            Write::W64(CMD_TAIL, 255 * 16),
            Write::W64(CMD_TAIL, 2 * 255 % 256 * 16),
            Write::W64(CMD_TAIL, (2 * 255 + 6) % 256 * 16),
        ]
    );
    assert_eq!(cmd_buf, unit.ring.base);
    assert_eq!(event_log, unit.event_log);
    let mut want = Vec::new();
    let mut batch = 0;
    let mut queued = 0;
    let commands = (0..512u64)
        // INVALIDATE_DEVTAB_ENTRY: opcode 02h in bits 63:60, DeviceID in
        // 15:0, for every device id of the table.
        .map(|devid| [0x2000_0000_0000_0000 | devid, 0])
        // INVALIDATE_IOMMU_ALL: opcode 08h.
        .chain([[0x8000_0000_0000_0000, 0]]);
    for c in commands {
        want.push(c);
        queued += 1;
        if queued == 254 {
            batch += 1;
            // COMPLETION_WAIT: opcode 01h, store address, S (bit 0);
            // high: the store data, counting the waits.
            want.push([0x1000_0000_0010_7001, batch]);
            queued = 0;
        }
    }
    want.push([0x1000_0000_0010_7001, batch + 1]);
    assert_eq!(unit.regs.take_commands(), want);
    assert_eq!(mem.clone().read64(store), 3);
    assert_eq!(unit.levels(), IoLevels::Four);
    assert_eq!(unit.io_config().levels, IoLevels::Four);
}

#[test]
fn every_device_id_starts_blocked_behind_an_empty_table() {
    let mut mem = SharedMem::new();
    let regs = FakeRegs::new(EFR_QEMU, &mem);
    let mut unit = AmdVi::init(regs, &mut mem, 0, 1).unwrap();
    let empty_root = 0x10_4000;
    // V (0) | TV (1) | Mode 4 (bits 11:9) | root; IR (61) and IW (62)
    // clear; DomainID 0; IV (word 2 bit 0) set with IntCtl 00b, so every
    // interrupt is blocked too; word 3 zero.
    let blocked = [0x0000_0000_0010_4803, 0, 1, 0];
    for devid in 0..512u64 {
        let e: [u64; 4] =
            core::array::from_fn(|i| mem.read64(0x10_0000 + devid * 32 + i as u64 * 8));
        assert_eq!(e, blocked, "device id {devid:#x}");
    }
    for i in 0..512 {
        assert_eq!(mem.read64(empty_root + i * 8), 0);
    }
    let e = unit.device_entry(&mut mem, super::sbdf(1, 31, 7)).unwrap();
    assert_eq!(e, DeviceEntry(blocked));
    assert!(!e.allows_dma());
    assert_eq!(e.permissions(), (false, false));
    assert_eq!(e.mode(), 4);
    assert_eq!(e.interrupt_table(), None);
    // Bus 2 is beyond this table.
    assert_eq!(unit.device_entry(&mut mem, super::sbdf(2, 0, 0)), None);
}

#[test]
fn a_table_for_every_bus_is_two_mebibytes() {
    let mut mem = SharedMem::new();
    let regs = FakeRegs::new(EFR_QEMU, &mem);
    let mut unit = AmdVi::init(regs, &mut mem, 0, 255).unwrap();
    assert_eq!(unit.device_table().1, 512);
    // Size 0x1ff: 512 pages, 65536 entries.
    assert!(unit
        .regs
        .take_writes()
        .contains(&Write::W64(DEV_TAB_BASE, 0x10_0000 | 0x1ff)));
    let last = unit
        .device_entry(&mut mem, super::sbdf(255, 31, 7))
        .unwrap();
    assert_eq!(last.0[0], 0x0000_0000_0030_0803);
}

#[test]
fn without_invalidate_all_each_device_id_and_domain_is_invalidated() {
    let mut mem = SharedMem::new();
    // QEMU's features without IA (bit 6).
    let regs = FakeRegs::new(EFR_QEMU & !(1 << 6), &mem);
    let mut unit = AmdVi::init(regs, &mut mem, 0, 0).unwrap();
    let commands = unit.regs.take_commands();
    let (waits, others): (Vec<_>, Vec<_>) = commands.iter().partition(|c| c[0] >> 60 == 1);
    let mut want = Vec::new();
    for devid in 0..256u16 {
        want.push(Command::InvalidateDevtabEntry(devid).encode());
    }
    for devid in 0..256u16 {
        want.push(Command::InvalidateInterruptTable(devid).encode());
    }
    for domain in 0..=u16::MAX {
        want.push(Command::InvalidateDomain(domain).encode());
    }
    assert_eq!(others.into_iter().copied().collect::<Vec<_>>(), want);
    // 254 commands and a wait per batch; the ring never fills.
    assert_eq!(waits.len(), want.len().div_ceil(254));
    for (n, c) in commands.chunks(255).enumerate() {
        assert_eq!(c.last().unwrap()[0] >> 60, 1, "batch {n} ends in a wait");
        assert_eq!(c.last().unwrap()[1], n as u64 + 1, "batch {n} store");
    }
}

#[test]
fn a_unit_left_on_by_firmware_is_stopped_first() {
    let mut mem = SharedMem::new();
    let mut regs = FakeRegs::new(EFR_QEMU, &mem);
    regs.set(CONTROL, 0x1405);
    regs.set(STATUS, ST_CMD_BUF_RUN | ST_EVENT_LOG_RUN);
    let mut unit = AmdVi::init(regs, &mut mem, 0, 0).unwrap();
    let writes = unit.regs.take_writes();
    assert_eq!(writes[0], Write::W64(CONTROL, 0));
    assert_eq!(writes[1], Write::W64(EXCL_BASE, 0));
    assert_eq!(unit.regs.get(CONTROL), 0x1405);
}

#[test]
fn a_unit_that_does_not_stop_is_a_timeout_before_allocating() {
    let mut mem = SharedMem::new();
    let mut regs = FakeRegs::new(EFR_QEMU, &mem);
    regs.set(CONTROL, CTL_IOMMU_EN);
    regs.never_stops = true;
    let err = AmdVi::init(regs, &mut mem, 0, 0).unwrap_err();
    assert_eq!(
        err,
        AmdViError::Timeout("Status.CmdBufRun (stopping the unit)")
    );
    assert_eq!(mem.live(), 0);
}

#[test]
fn a_unit_without_host_translation_is_refused_before_allocating() {
    let mut mem = SharedMem::new();
    // HATS (bits 11:10) = 11b.
    let regs = FakeRegs::new(EFR_QEMU | 3 << 10, &mem);
    let err = AmdVi::init(regs, &mut mem, 0, 0).unwrap_err();
    assert_eq!(err, AmdViError::NoHostTranslation);
    assert_eq!(mem.live(), 0);
}

#[test]
fn running_out_of_memory_frees_what_was_allocated() {
    for limit in [1, 2, 3, 4, 5] {
        let mut mem = SharedMem::new();
        mem.0.borrow_mut().limit = Some(limit);
        let regs = FakeRegs::new(EFR_QEMU, &mem);
        let err = AmdVi::init(regs, &mut mem, 0, 0).unwrap_err();
        assert_eq!(err, AmdViError::NoMemory, "limit {limit}");
        assert_eq!(mem.live(), 0, "limit {limit}");
    }
}

#[test]
fn a_command_buffer_that_never_runs_is_a_timeout() {
    let mut mem = SharedMem::new();
    let mut regs = FakeRegs::new(EFR_QEMU, &mem);
    regs.never_runs = true;
    let err = AmdVi::init(regs, &mut mem, 0, 0).unwrap_err();
    assert_eq!(err, AmdViError::Timeout("Status.CmdBufRun"));
}

#[test]
fn a_completion_wait_that_never_stores_names_the_command() {
    let mut mem = SharedMem::new();
    let mut regs = FakeRegs::new(EFR_QEMU, &mem);
    regs.stuck = true;
    let err = AmdVi::init(regs, &mut mem, 0, 0).unwrap_err();
    assert_eq!(err, AmdViError::Timeout("INVALIDATE_DEVTAB_ENTRY"));
    assert_eq!(
        err.to_string(),
        "the unit did not answer (INVALIDATE_DEVTAB_ENTRY timed out)"
    );
    // The unit points at the tables: they stay.
    assert_eq!(mem.live(), 6);
}

#[test]
fn features_decode_qemu_s_register() {
    let f = Features(EFR_QEMU);
    assert_eq!(f.host_levels(), Some(6));
    assert!(f.invalidate_all() && f.guest_translation() && f.guest_apic());
    assert!(f.prefetch() && f.ppr() && f.hardware_errors());
    assert!(!f.x2apic() && !f.no_execute() && !f.perf_counters());
    assert_eq!(f.gats(), 2);
    assert_eq!(
        f.to_string(),
        "EFR 0x29d3: host tables up to 6 levels; IA GT GA PPR PreF HE"
    );
    assert_eq!(Features(0).host_levels(), Some(4));
    assert_eq!(
        Features(0).to_string(),
        "EFR 0x0: host tables up to 4 levels"
    );
    assert_eq!(Features(3 << 10).host_levels(), None);
}
