//! The event log: decoding raw entries, consuming them, wrapping around
//! and recovering from an overflow.

use super::super::fake::Write;
use super::super::regs::*;
use super::super::{Access, Event};
use super::{sbdf, unit};

/// An event entry's low word: code (63:60), flags (59:48), DomainID
/// (47:32), DeviceID (15:0).
const fn lo(code: u64, flags: u64, domain: u64, devid: u64) -> u64 {
    code << 60 | flags << 48 | domain << 32 | devid
}

#[test]
fn a_dma_page_fault_decodes_and_reads_as_a_log_line() {
    // IO_PAGE_FAULT (2), RW (flag 5) set: a write.
    let e = Event::decode(0, [lo(2, 1 << 5, 1, 0x18), 0x3fff_f000]);
    assert_eq!(
        e,
        Event::PageFault {
            device: sbdf(0, 3, 0),
            domain: 1,
            address: 0x3fff_f000,
            access: Access::Write,
            flags: 0x20,
        }
    );
    assert_eq!(
        e.to_string(),
        "amd-vi: I/O page fault from 0000:00:03.0 (domain 1) at 0x3ffff000: write"
    );
    assert_eq!(e.device(), Some(sbdf(0, 3, 0)));
    // A read of a present page without permission (PR, flag 4).
    let e = Event::decode(2, [lo(2, 1 << 4, 7, 0x0101), 0x1000]);
    assert_eq!(
        e.to_string(),
        "amd-vi: I/O page fault from 0002:01:00.1 (domain 7) at 0x1000: read \
         (mapped without that permission)"
    );
}

#[test]
fn an_interrupt_fault_is_a_blocked_interrupt() {
    // IO_PAGE_FAULT with I (flag 3) and RW.
    let e = Event::decode(0, [lo(2, 1 << 3 | 1 << 5, 0, 0x18), 0xfee0_0000]);
    assert_eq!(
        e,
        Event::InterruptBlocked {
            device: sbdf(0, 3, 0),
            address: 0xfee0_0000,
            flags: 0x28,
        }
    );
    assert_eq!(
        e.to_string(),
        "amd-vi: interrupt from 0000:00:03.0 blocked (no remapping entry)"
    );
    // RZ (flag 7): a reserved bit in the entry.
    let e = Event::decode(0, [lo(2, 1 << 3 | 1 << 7, 0, 0x18), 0xfee0_0000]);
    assert_eq!(
        e.to_string(),
        "amd-vi: interrupt from 0000:00:03.0 blocked (reserved bit set in its remapping entry)"
    );
}

#[test]
fn the_other_event_codes_decode() {
    let d = sbdf(0, 3, 0);
    let cases = [
        (
            [lo(1, 0, 0, 0x18), 0x1000],
            Event::IllegalDeviceEntry {
                device: d,
                address: 0x1000,
                flags: 0,
            },
            "amd-vi: illegal device table entry for 0000:00:03.0 (request at 0x1000)",
        ),
        (
            [lo(3, 0, 0, 0x18), 0x10_0300],
            Event::DeviceTableError {
                device: d,
                address: 0x10_0300,
            },
            "amd-vi: hardware error reading the device table entry of 0000:00:03.0 at 0x100300",
        ),
        (
            [lo(4, 0, 3, 0x18), 0x20_0008],
            Event::PageTableError {
                device: d,
                domain: 3,
                address: 0x20_0008,
            },
            "amd-vi: hardware error reading an I/O page table entry at 0x200008 \
             for 0000:00:03.0 (domain 3)",
        ),
        (
            [lo(5, 0, 0, 0), 0x10_5020],
            Event::IllegalCommand { address: 0x10_5020 },
            "amd-vi: illegal command at 0x105020; command processing stopped",
        ),
        (
            [lo(6, 0, 0, 0), 0x10_5020],
            Event::CommandError { address: 0x10_5020 },
            "amd-vi: hardware error reading the command at 0x105020",
        ),
        (
            [lo(7, 0, 0, 0x18), 0x10_5040],
            Event::IotlbTimeout {
                device: d,
                address: 0x10_5040,
            },
            "amd-vi: 0000:00:03.0 did not answer an IOTLB invalidation (command at 0x105040)",
        ),
        (
            [lo(8, 0x100, 0, 0x18), 0x2000],
            Event::InvalidRequest {
                device: d,
                address: 0x2000,
                flags: 0x100,
            },
            "amd-vi: invalid request from 0000:00:03.0 at 0x2000 (not allowed by its device table entry)",
        ),
        (
            [lo(0xb, 0, 0, 0x18), 5],
            Event::Other {
                code: 0xb,
                raw: [lo(0xb, 0, 0, 0x18), 5],
            },
            "amd-vi: event 0xb (0xb000000000000018 0x0000000000000005)",
        ),
    ];
    for (raw, event, text) in cases {
        assert_eq!(Event::decode(0, raw), event);
        assert_eq!(event.to_string(), text);
    }
}

#[test]
fn events_are_taken_in_order_and_the_head_follows() {
    let (mut unit, mut mem) = unit();
    for i in 0..3 {
        unit.regs.log_event([lo(2, 0, 1, 0x18), 0x1000 * i]);
    }
    let events = unit.events(&mut mem);
    let addresses: Vec<u64> = events
        .iter()
        .map(|e| match e {
            Event::PageFault { address, .. } => *address,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(addresses, [0, 0x1000, 0x2000]);
    assert_eq!(
        unit.regs.take_writes(),
        [
            Write::W64(EVT_HEAD, 0x30),
            // EventLogInt cleared.
            Write::W64(STATUS, ST_EVENT_LOG_INT),
        ]
    );
    assert!(unit.events(&mut mem).is_empty());
    assert!(unit.regs.take_writes().is_empty());
}

#[test]
fn the_log_wraps_around() {
    let (mut unit, mut mem) = unit();
    let mut seen = Vec::new();
    for round in 0..3u64 {
        for i in 0..200 {
            unit.regs.log_event([lo(2, 0, 1, 0x18), round * 1000 + i]);
        }
        seen.extend(unit.events(&mut mem));
    }
    assert_eq!(seen.len(), 600);
    match seen[599] {
        Event::PageFault { address, .. } => assert_eq!(address, 2199),
        other => panic!("{other:?}"),
    }
    assert_eq!(unit.regs.get(EVT_HEAD), (600 % 256) * 16);
}

#[test]
fn an_overflowed_log_is_drained_and_restarted() {
    let (mut unit, mut mem) = unit();
    // 255 entries fit; the 256th overflows and logging stops.
    for i in 0..256 {
        unit.regs.log_event([lo(2, 0, 1, 0x18), i]);
    }
    assert_ne!(unit.regs.get(STATUS) & ST_EVENT_OVERFLOW, 0);
    assert_eq!(unit.events(&mut mem).len(), 255);
    let writes = unit.regs.take_writes();
    assert_eq!(
        writes[2..],
        [
            // EventLogEn off, EventOverflow cleared, EventLogEn on.
            Write::W64(CONTROL, 0x1401),
            Write::W64(STATUS, ST_EVENT_OVERFLOW),
            Write::W64(CONTROL, 0x1405),
        ]
    );
    assert_eq!(unit.regs.get(STATUS) & ST_EVENT_OVERFLOW, 0);
    unit.regs.log_event([lo(2, 0, 1, 0x18), 0x5000]);
    assert_eq!(unit.events(&mut mem).len(), 1);
}

#[test]
fn logging_that_does_not_stop_after_an_overflow_stays_off() {
    let (mut unit, mut mem) = unit();
    for i in 0..256 {
        unit.regs.log_event([lo(2, 0, 1, 0x18), i]);
    }
    unit.regs.never_stops = true;
    assert_eq!(unit.events(&mut mem).len(), 255);
    assert_eq!(unit.regs.get(CONTROL), 0x1401);
}
