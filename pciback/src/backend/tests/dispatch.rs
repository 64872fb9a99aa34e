//! Ops reaching the assigned functions, over the test kit's devices.

use alloc::format;

use super::serve::{connected_over, err, get, serve, value, Op};
use super::{edu, sbdf, FakeStore, DOM, FE};
use crate::backend::op::{self, field};
use crate::backend::{Action, Served, Topology};
use crate::testkit::{self, FIRST_PIRQ};
use vmm_glue::MsiSource;

fn read(devfn: u32, offset: i32, size: i32) -> Op {
    Op {
        offset,
        size,
        ..Op::to(op::OP_CONF_READ, devfn)
    }
}

#[test]
fn config_reads_reach_the_function_at_its_guest_address() {
    let nvme = testkit::nvme().at(sbdf(4, 0, 0));
    let (mut host, mut b) = connected_over(&[edu(), nvme], Topology::Virtual);
    for (devfn, want) in [(0, 0x11e8_1234), (1 << 3, 0x0010_1b36)] {
        let mut page = read(devfn, 0, 4).page();
        serve(&mut b, &mut host, &mut page);
        assert_eq!((err(&page), value(&page)), (0, want), "devfn {devfn:#x}");
    }
    let mut page = read(0, 2, 2).page();
    serve(&mut b, &mut host, &mut page);
    assert_eq!((err(&page), value(&page)), (0, 0x11e8));
    let mut page = read(0, 0, 1).page();
    serve(&mut b, &mut host, &mut page);
    assert_eq!((err(&page), value(&page)), (0, 0x34));
}

#[test]
fn config_reads_the_function_refuses_answer_its_error() {
    let (mut host, mut b) = connected_over(&[edu()], Topology::Virtual);
    // Unaligned, a bad size, beyond edu's 256 bytes.
    for (offset, size) in [(1, 2), (2, 4), (0, 3), (0x100, 4)] {
        let mut page = read(0, offset, size).page();
        serve(&mut b, &mut host, &mut page);
        assert_eq!(err(&page), op::ERR_INVALID_OFFSET, "{offset:#x}/{size}");
        assert_eq!(value(&page), 0);
    }
}

#[test]
fn config_writes_reach_the_function() {
    let (mut host, mut b) = connected_over(&[edu()], Topology::Virtual);
    let mut page = Op {
        offset: 0x44,
        size: 4,
        value: 0xfee0_1000,
        ..Op::to(op::OP_CONF_WRITE, 0)
    }
    .page();
    serve(&mut b, &mut host, &mut page);
    assert_eq!((err(&page), value(&page)), (0, 0xfee0_1000));
    let mut page = Op {
        offset: 0x45,
        size: 4,
        value: 1,
        ..Op::to(op::OP_CONF_WRITE, 0)
    }
    .page();
    serve(&mut b, &mut host, &mut page);
    assert_eq!(err(&page), op::ERR_INVALID_OFFSET);
}

#[test]
fn enable_and_disable_msi_answer_pirqs() {
    let (mut host, mut b) = connected_over(&[edu()], Topology::Virtual);
    let mut page = Op::to(op::OP_ENABLE_MSI, 0).page();
    serve(&mut b, &mut host, &mut page);
    assert_eq!((err(&page), value(&page)), (0, FIRST_PIRQ));
    assert_eq!(host.routes.len(), 1);
    assert_eq!(host.routes[0].sbdf, sbdf(0, 2, 0));
    assert_eq!(host.routes[0].source, MsiSource::Msi);
    let mut page = Op::to(op::OP_DISABLE_MSI, 0).page();
    serve(&mut b, &mut host, &mut page);
    assert_eq!(err(&page), 0);
    assert!(value(&page) == 0 || value(&page) == 11, "{}", value(&page));
    assert!(host.routes.is_empty());
}

#[test]
fn a_refused_msi_answers_its_error_and_no_pirq() {
    let (mut host, mut b) = connected_over(&[edu()], Topology::Virtual);
    host.refuse_irqs = true;
    let mut page = Op::to(op::OP_ENABLE_MSI, 0).page();
    serve(&mut b, &mut host, &mut page);
    assert!(err(&page) < 0);
    assert_eq!(value(&page), 0);
}

/// The NVMe fixture in slot 0 with memory decoding on.
fn nvme_decoding() -> (testkit::FakeHost, crate::backend::PciBackend) {
    let (mut host, mut b) = connected_over(&[testkit::nvme().at(sbdf(0, 2, 0))], Topology::Virtual);
    let mut page = Op {
        offset: 4,
        size: 2,
        value: 0x0006,
        ..Op::to(op::OP_CONF_WRITE, 0)
    }
    .page();
    serve(&mut b, &mut host, &mut page);
    assert_eq!(err(&page), 0);
    (host, b)
}

#[test]
fn enable_msix_answers_a_pirq_per_entry_and_nothing_else() {
    let (mut host, mut b) = nvme_decoding();
    let mut page = Op {
        value: 3,
        ..Op::to(op::OP_ENABLE_MSIX, 0)
    }
    .page();
    let served = serve(&mut b, &mut host, &mut page);
    assert!(served.notify);
    assert_eq!((err(&page), value(&page)), (0, 0), "{:?}", served.notices);
    for i in 0..3u32 {
        let e = get(&page, op::OP + field::MSIX_ENTRIES + 4 * i as usize);
        assert_eq!(e, i << 16 | (FIRST_PIRQ + i), "entry {i}");
    }
    // Entries past the count are untouched.
    assert_eq!(
        get(&page, op::OP + field::MSIX_ENTRIES + 12),
        3 << 16 | 0xffff
    );
    assert_eq!(host.routes.len(), 3);
    assert_eq!(host.routes[2].source, MsiSource::Msix(2));
    let mut page = Op::to(op::OP_DISABLE_MSIX, 0).page();
    serve(&mut b, &mut host, &mut page);
    assert_eq!(err(&page), 0);
    assert!(host.routes.is_empty());
}

#[test]
fn disable_msi_with_only_msix_on_turns_msix_off_so_it_can_be_enabled_again() {
    // Linux 6.1 pcifront tears MSI-X down with XEN_PCI_OP_disable_msi.
    let (mut host, mut b) = nvme_decoding();
    let enable = |b: &mut crate::backend::PciBackend, host: &mut crate::testkit::FakeHost| {
        let mut page = Op {
            value: 1,
            ..Op::to(op::OP_ENABLE_MSIX, 0)
        }
        .page();
        serve(b, host, &mut page);
        err(&page)
    };
    assert_eq!(enable(&mut b, &mut host), 0);
    let mut page = Op::to(op::OP_DISABLE_MSI, 0).page();
    let served = serve(&mut b, &mut host, &mut page);
    assert_eq!(err(&page), 0);
    assert_eq!(served.notices.len(), 1, "{:?}", served.notices);
    assert!(host.routes.is_empty(), "the MSI-X route went");
    assert_eq!(enable(&mut b, &mut host), 0, "and MSI-X enables again");
    assert_eq!(host.routes.len(), 1);
}

#[test]
fn a_refused_msix_answers_its_error_in_err_and_value() {
    let (mut host, mut b) = nvme_decoding();
    host.refuse_irqs = true;
    let mut page = Op {
        value: 2,
        ..Op::to(op::OP_ENABLE_MSIX, 0)
    }
    .page();
    serve(&mut b, &mut host, &mut page);
    assert!(err(&page) < 0);
    assert_eq!(value(&page), err(&page) as u32);
    assert_eq!(get(&page, op::OP + field::MSIX_ENTRIES), 0xffff);
}

#[test]
fn closing_mid_op_stops_serving() {
    let (mut host, mut b) = connected_over(&[edu()], Topology::Virtual);
    let mut page = read(0, 0, 4).page();
    let before = page;
    let mut xs = FakeStore::new(DOM);
    xs.guest_write(&format!("{FE}/state"), "5");
    assert_eq!(b.changed(&mut xs), Action::Disconnect);
    assert_eq!(b.serve(&mut host, &mut page), Served::default());
    assert_eq!(page, before);
}
