//! Ops on the shared page.

use alloc::format;

use super::{backend_over, edu, sbdf, FakeStore, DOM, FE};
use crate::backend::op::{self, field, PAGE_SIZE};
use crate::backend::{Action, PciBackend, Served, Topology};
use crate::testkit::{self, FakeHost, Fixture};

type Page = [u8; PAGE_SIZE];

fn put(page: &mut Page, at: usize, v: u32) {
    page[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

pub(super) fn get(page: &Page, at: usize) -> u32 {
    u32::from_le_bytes(page[at..at + 4].try_into().unwrap())
}

/// A posted op, as Linux pcifront leaves the page: AER handler bit set,
/// `err` 0, the MSI-X vectors 0xffff ("useless").
pub(super) struct Op {
    pub(super) cmd: u32,
    pub(super) domain: u32,
    pub(super) bus: u32,
    pub(super) devfn: u32,
    pub(super) offset: i32,
    pub(super) size: i32,
    pub(super) value: u32,
}

impl Op {
    pub(super) fn to(cmd: u32, devfn: u32) -> Self {
        Self {
            cmd,
            domain: 0,
            bus: 0,
            devfn,
            offset: 0,
            size: 4,
            value: 0,
        }
    }

    pub(super) fn page(&self) -> Page {
        let mut p = [0u8; PAGE_SIZE];
        put(
            &mut p,
            op::FLAGS,
            op::FLAG_PCIF_ACTIVE | op::FLAG_PCIB_AERHANDLER,
        );
        put(&mut p, op::OP + field::CMD, self.cmd);
        put(&mut p, op::OP + field::ERR, 0x5a5a_5a5a);
        put(&mut p, op::OP + field::DOMAIN, self.domain);
        put(&mut p, op::OP + field::BUS, self.bus);
        put(&mut p, op::OP + field::DEVFN, self.devfn);
        put(&mut p, op::OP + field::OFFSET, self.offset as u32);
        put(&mut p, op::OP + field::SIZE, self.size as u32);
        put(&mut p, op::OP + field::VALUE, self.value);
        for i in 0..op::SH_INFO_MAX_VEC {
            let at = op::OP + field::MSIX_ENTRIES + i * op::MSIX_ENTRY_SIZE;
            put(&mut p, at, (i as u32) << 16 | 0xffff);
        }
        p
    }
}

pub(super) fn err(p: &Page) -> i32 {
    get(p, op::OP + field::ERR) as i32
}

pub(super) fn value(p: &Page) -> u32 {
    get(p, op::OP + field::VALUE)
}

/// A backend over `fixtures`, connected.
pub(super) fn connected_over(fixtures: &[Fixture], topology: Topology) -> (FakeHost, PciBackend) {
    let (host, mut b) = backend_over(fixtures, topology);
    let mut xs = FakeStore::new(DOM);
    b.create(&mut xs).unwrap();
    xs.guest_write(&format!("{FE}/pci-op-ref"), "8");
    xs.guest_write(&format!("{FE}/event-channel"), "9");
    xs.guest_write(&format!("{FE}/magic"), "7");
    xs.guest_write(&format!("{FE}/state"), "3");
    assert!(matches!(b.changed(&mut xs), Action::Connect { .. }));
    b.connect_done(&mut xs, Ok(()));
    assert!(b.is_connected());
    (host, b)
}

fn connected() -> (FakeHost, PciBackend) {
    connected_over(&[edu()], Topology::Virtual)
}

/// Serves `page` and checks the hand-back: answered, bit 0 clear, the
/// other flag bits kept, and only `err`, `value` and vectors changed.
pub(super) fn serve(b: &mut PciBackend, host: &mut FakeHost, page: &mut Page) -> Served {
    let before = *page;
    let served = b.serve(host, page);
    assert!(served.notify);
    assert_eq!(get(page, op::FLAGS), op::FLAG_PCIB_AERHANDLER);
    for i in (0..PAGE_SIZE).filter(|&i| page[i] != before[i]) {
        let in_op = i.wrapping_sub(op::OP);
        let ok = i < op::OP
            || (field::ERR..field::ERR + 4).contains(&in_op)
            || (field::VALUE..field::VALUE + 4).contains(&in_op)
            || (field::MSIX_ENTRIES..op::OP_SIZE).contains(&in_op)
                && (in_op - field::MSIX_ENTRIES) % 4 < 2;
        assert!(ok, "byte {i} changed");
    }
    served
}

#[test]
fn nothing_is_served_before_connected() {
    let (mut host, mut b) = backend_over(&[edu()], Topology::Virtual);
    let mut page = Op::to(op::OP_CONF_READ, 0).page();
    let before = page;
    assert_eq!(b.serve(&mut host, &mut page), Served::default());
    let mut xs = FakeStore::new(DOM);
    b.create(&mut xs).unwrap();
    assert_eq!(b.serve(&mut host, &mut page), Served::default());
    assert_eq!(page, before);
}

#[test]
fn nothing_is_served_without_the_active_bit() {
    let (mut host, mut b) = connected();
    let mut page = Op::to(99, 0).page();
    put(
        &mut page,
        op::FLAGS,
        op::FLAG_PCIB_AERHANDLER | op::FLAG_PCIB_ACTIVE,
    );
    let before = page;
    assert_eq!(b.serve(&mut host, &mut page), Served::default());
    assert_eq!(page, before);
}

#[test]
fn one_op_per_call() {
    let (mut host, mut b) = connected();
    let mut page = Op::to(99, 0).page();
    serve(&mut b, &mut host, &mut page);
    assert_eq!(err(&page), op::ERR_NOT_IMPLEMENTED);
    // The answer stands until the frontend posts again.
    put(&mut page, op::OP + field::ERR, 1234);
    let before = page;
    assert_eq!(b.serve(&mut host, &mut page), Served::default());
    assert_eq!(page, before);
}

#[test]
fn an_absent_devfn_is_dev_not_found_whatever_the_command() {
    let (mut host, mut b) = connected();
    for cmd in [0, 1, 2, 3, 4, 5, 6, 10, 77] {
        for devfn in [1, 7, 8, 0xff, 0x100, u32::MAX] {
            let mut page = Op::to(cmd, devfn).page();
            serve(&mut b, &mut host, &mut page);
            assert_eq!(
                err(&page),
                op::ERR_DEV_NOT_FOUND,
                "cmd {cmd} devfn {devfn:#x}"
            );
            assert_eq!(value(&page), 0);
        }
    }
    assert!(host.config_log_is_empty());
}

#[test]
fn a_domain_or_bus_that_is_not_a_root_is_dev_not_found() {
    let (mut host, mut b) = connected();
    for (domain, bus) in [
        (1, 0),
        (0, 1),
        (0x1_0000, 0),
        (0, 0x100),
        (u32::MAX, u32::MAX),
    ] {
        let mut page = Op {
            domain,
            bus,
            ..Op::to(op::OP_CONF_READ, 0)
        }
        .page();
        serve(&mut b, &mut host, &mut page);
        assert_eq!(err(&page), op::ERR_DEV_NOT_FOUND, "{domain:#x}:{bus:#x}");
    }
}

#[test]
fn passthrough_answers_at_host_addresses_only() {
    let dev = testkit::edu().at(sbdf(3, 1, 2));
    let (mut host, mut b) = connected_over(&[dev], Topology::Passthrough);
    // The virtual address of the other topology is nothing here.
    let mut page = Op::to(99, 0).page();
    serve(&mut b, &mut host, &mut page);
    assert_eq!(err(&page), op::ERR_DEV_NOT_FOUND);
    let mut page = Op {
        bus: 3,
        ..Op::to(99, 1 << 3 | 2)
    }
    .page();
    serve(&mut b, &mut host, &mut page);
    assert_eq!(err(&page), op::ERR_NOT_IMPLEMENTED);
}

#[test]
fn unknown_aer_and_multi_msi_commands_are_not_implemented() {
    let (mut host, mut b) = connected();
    for cmd in [6, 7, 8, 9, 10, 11, 0x8000_0000, u32::MAX] {
        let mut page = Op {
            value: 0x1234,
            ..Op::to(cmd, 0)
        }
        .page();
        serve(&mut b, &mut host, &mut page);
        assert_eq!(err(&page), op::ERR_NOT_IMPLEMENTED, "cmd {cmd}");
        assert_eq!(value(&page), 0x1234);
    }
    assert!(host.config_log_is_empty());
}

#[test]
fn config_accesses_outside_u16_offsets_or_u8_sizes_are_invalid_offset() {
    let (mut host, mut b) = connected();
    for (cmd, offset, size) in [
        (op::OP_CONF_READ, -1, 4),
        (op::OP_CONF_READ, 0x1_0000, 4),
        (op::OP_CONF_READ, i32::MIN, 4),
        (op::OP_CONF_READ, 0, 256),
        (op::OP_CONF_READ, 0, -4),
        (op::OP_CONF_WRITE, -4, 4),
        (op::OP_CONF_WRITE, 0, 0x104),
    ] {
        let mut page = Op {
            offset,
            size,
            value: 0xffff_ffff,
            ..Op::to(cmd, 0)
        }
        .page();
        serve(&mut b, &mut host, &mut page);
        assert_eq!(err(&page), op::ERR_INVALID_OFFSET, "{cmd} {offset} {size}");
        let want = if cmd == op::OP_CONF_READ {
            0
        } else {
            0xffff_ffff
        };
        assert_eq!(value(&page), want);
    }
    assert!(host.config_log_is_empty());
}

#[test]
fn enable_msix_refuses_zero_or_more_than_128_vectors() {
    let (mut host, mut b) = connected_over(&[testkit::nvme().at(sbdf(0, 2, 0))], Topology::Virtual);
    for nvec in [0, 129, 1000, u32::MAX] {
        let mut page = Op {
            value: nvec,
            ..Op::to(op::OP_ENABLE_MSIX, 0)
        }
        .page();
        let served = serve(&mut b, &mut host, &mut page);
        assert_eq!(err(&page), op::EINVAL, "{nvec}");
        assert_eq!(value(&page), nvec);
        assert_eq!(served.notices.len(), 1);
        // No vector was touched.
        let e0 = op::OP + field::MSIX_ENTRIES;
        assert_eq!(get(&page, e0), 0xffff);
    }
    assert!(host.allocations.is_empty());
}

#[test]
fn the_op_is_read_once_from_the_page() {
    // Everything the backend acts on is in the copy `decode` makes: the
    // same page decoded twice gives equal requests, and the answer is
    // written over the copy's fields only (checked by `serve` above).
    let page = Op::to(op::OP_ENABLE_MSIX, 0).page();
    assert_eq!(op::decode(&page), op::decode(&page));
}

impl FakeHost {
    /// Whether no config-space access reached the hardware.
    fn config_log_is_empty(&self) -> bool {
        self.bus.functions.values().all(|f| f.log.is_empty())
    }
}
