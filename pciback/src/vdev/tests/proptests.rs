//! Whatever a guest does, through config space, the ops and the trapped
//! pages, the invariants hold:
//!
//! - the hardware BARs and ROM never move, and the ROM is never enabled;
//! - SERR and parity are never set in the hardware; I/O decode is on
//!   exactly while the function's own I/O BARs are handed to the guest;
//! - the hardware's memory decode is on exactly while pciback has the
//!   windows mapped, and every mapped window is one of the function's;
//! - no MSI-X table or PBA page is inside a mapped window;
//! - no access goes beyond the config space (the fake panics if one does);
//! - MSI messages in the hardware are the host's, never the guest's;
//! - routes are freed exactly once; nothing panics.

use alloc::vec::Vec;

use proptest::prelude::*;

use super::Rig;
use crate::testkit::{self, FIRST_PIRQ, MSI_ADDRESS};

#[derive(Clone, Debug)]
enum Op {
    Write { offset: u16, size: u8, value: u32 },
    Read { offset: u16, size: u8 },
    EnableMsi,
    DisableMsi,
    EnableMsix(Vec<u16>),
    DisableMsix,
    MmioWrite { gpa: u64, size: u8, value: u64 },
    MmioRead { gpa: u64, size: u8 },
}

/// Offsets worth hitting: the header, capability registers of every
/// fixture, and anything.
fn offset() -> impl Strategy<Value = u16> {
    prop_oneof![
        3 => prop::sample::select(alloc::vec![
            0x04u16, 0x06, 0x0c, 0x10, 0x14, 0x18, 0x1c, 0x20, 0x24, 0x30, 0x38, 0x3c, 0x3e,
            0x42, 0x44, 0x48, 0x4c, 0x5c, 0x60, 0x68, 0x72, 0x8e, 0x90, 0xa2, 0xcc, 0xd2, 0xd4,
            0x44, 0x88, 0x100,
        ]),
        2 => 0u16..0x110,
        1 => any::<u16>(),
    ]
}

fn value() -> impl Strategy<Value = u32> {
    prop_oneof![
        any::<u32>(),
        Just(u32::MAX),
        Just(0),
        Just(0x0007),
        Just(0x0547),
        Just(0x0003),
        Just(0x8000),
        Just(0xe000_0000),
        Just(0xfebf_0000),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let size = prop::sample::select(alloc::vec![1u8, 2, 4, 4, 4, 3, 8]);
    let gpa = prop_oneof![
        (0u64..0x4000).prop_map(|o| 0xfebf_0000 + o),
        (0u64..0x4000).prop_map(|o| 0xfebd_0000 + o),
        (0u64..0x2000).prop_map(|o| 0x8_0010_0000 + o),
        (0u64..0x4000).prop_map(|o| 0xe000_0000 + o),
    ];
    prop_oneof![
        8 => (offset(), size.clone(), value()).prop_map(|(offset, size, value)| Op::Write {
            offset,
            size,
            value
        }),
        2 => (offset(), size.clone()).prop_map(|(offset, size)| Op::Read { offset, size }),
        1 => Just(Op::EnableMsi),
        1 => Just(Op::DisableMsi),
        1 => prop::collection::vec(prop_oneof![0u16..8, any::<u16>()], 0..6)
            .prop_map(Op::EnableMsix),
        1 => Just(Op::DisableMsix),
        2 => (gpa.clone(), size.clone(), any::<u64>())
            .prop_map(|(gpa, size, value)| Op::MmioWrite { gpa, size, value }),
        1 => (gpa, size).prop_map(|(gpa, size)| Op::MmioRead { gpa, size }),
    ]
}

fn run(r: &mut Rig, op: &Op) {
    match *op {
        Op::Write {
            offset,
            size,
            value,
        } => {
            let _ = r
                .dev
                .write(&mut r.host, offset, size, value, &mut r.notices);
        }
        Op::Read { offset, size } => {
            let _ = r.dev.read(&mut r.host, offset, size);
        }
        Op::EnableMsi => {
            let _ = r.dev.enable_msi(&mut r.host);
        }
        Op::DisableMsi => {
            r.dev.disable_msi(&mut r.host);
        }
        Op::EnableMsix(ref entries) => {
            let _ = r.dev.enable_msix(&mut r.host, entries);
        }
        Op::DisableMsix => {
            r.dev.disable_msix(&mut r.host);
        }
        Op::MmioWrite { gpa, size, value } => {
            r.dev.mmio_write(&mut r.host, gpa, size, value);
        }
        Op::MmioRead { gpa, size } => {
            r.dev.mmio_read(&mut r.host, gpa, size);
        }
    }
}

fn check(r: &Rig, original: &[(u16, u32)]) {
    let sbdf = r.fx.info.sbdf;
    let f = r.host.function(sbdf);
    for &(offset, value) in original {
        assert_eq!(f.peek(offset), value, "hardware register {offset:#x} moved");
    }
    let cmd = r.hw_cmd();
    assert_eq!(cmd & 0x0140, 0, "SERR or parity set: {cmd:#x}");
    let io = cmd & 0x0001 != 0;
    assert_eq!(
        io,
        !r.dev.io_ports().is_empty(),
        "hardware I/O decode on exactly while ports are handed over"
    );
    let mut ports = r.dev.io_ports().to_vec();
    let mut host_ports = r.host.ports.clone();
    ports.sort();
    host_ports.sort();
    assert_eq!(ports, host_ports);
    for &(p, l) in &r.host.ports {
        let inside = r.fx.info.bars.iter().any(|b| {
            b.kind == crate::vdev::BarKind::Io && b.base == u64::from(p) && b.size == u64::from(l)
        });
        assert!(
            inside,
            "ports {p:#x}+{l:#x} are not one of the function's I/O BARs"
        );
    }
    let mem = cmd & 0x0002 != 0;
    assert_eq!(mem, r.dev.is_decoding(), "hardware decode vs mapped state");
    assert!(
        r.host.windows.is_empty() || mem,
        "windows mapped while decode is off"
    );
    let mut mine: Vec<_> = r.dev.windows().collect();
    let mut host: Vec<_> = r.host.windows.iter().map(|w| (w.gpa, w.len)).collect();
    mine.sort();
    host.sort();
    assert_eq!(mine, host);
    for (hpa, len) in r.dev.trapped_host_ranges() {
        for w in &r.host.windows {
            assert!(
                w.hpa + w.len <= hpa || hpa + len <= w.hpa,
                "MSI-X page {hpa:#x}+{len:#x} inside window {w:?}"
            );
        }
    }
    for w in &r.host.windows {
        let inside =
            r.fx.info
                .bars
                .iter()
                .any(|b| b.base <= w.hpa && w.hpa + w.len <= b.base + b.size);
        assert!(inside, "window {w:?} outside the function's BARs");
    }
    if let Some(m) = r.fx.cap(crate::testkit::cap_id::MSI) {
        let addr = f.peek(m + 4);
        assert!(
            addr == 0 || u64::from(addr) == MSI_ADDRESS,
            "MSI address {addr:#x}"
        );
    }
    for a in &r.host.allocations {
        assert!(a.route.pirq >= FIRST_PIRQ);
    }
    let mut freed = r.host.freed.clone();
    freed.sort();
    let n = freed.len();
    freed.dedup();
    assert_eq!(n, freed.len(), "a route freed twice");
}

/// The hardware registers that must never change: BARs and ROM.
fn fixed(r: &Rig) -> Vec<(u16, u32)> {
    let rom = if r.fx.info.header_type == 1 {
        0x38
    } else {
        0x30
    };
    let f = r.host.function(r.fx.info.sbdf);
    (0x10..0x28)
        .step_by(4)
        .chain([rom])
        .map(|o| (o, f.peek(o)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn guest_cannot_break_the_invariants(
        which in 0usize..5,
        permissive in prop::bool::weighted(0.2),
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let fx = testkit::all().swap_remove(which);
        let mut r = if permissive { Rig::permissive(fx) } else { Rig::new(fx) };
        let original = fixed(&r);
        for op in &ops {
            run(&mut r, op);
            // Permissive writes may reach anything unclaimed, but never a
            // BAR, the ROM or the Command register.
            check(&r, &original);
        }
        r.dev.release(&mut r.host);
        check(&r, &original);
        prop_assert!(r.host.windows.is_empty());
        prop_assert!(r.host.routes.is_empty());
        prop_assert_eq!(r.hw_cmd() & 0x0007, 0);
    }
}

proptest! {
    #[test]
    fn accesses_are_refused_exactly_when_invalid(
        which in 0usize..5,
        offset in prop_oneof![0u16..0x120, 0xf00u16..0x1010, any::<u16>()],
        size in 0u8..9,
        value in any::<u32>(),
    ) {
        let fx = testkit::all().swap_remove(which);
        let limit = u32::from(fx.info.config_size);
        let mut r = Rig::new(fx);
        let valid = matches!(size, 1 | 2 | 4)
            && offset % u16::from(size) == 0
            && u32::from(offset) + u32::from(size) <= limit;
        let read = r.dev.read(&mut r.host, offset, size);
        prop_assert_eq!(read.is_ok(), valid);
        if !valid {
            prop_assert_eq!(read, Err(crate::vdev::CfgError::InvalidOffset));
        }
        if valid && offset >= 0x100 {
            prop_assert_eq!(read, Ok(0));
        }
        if valid && size < 4 {
            prop_assert!(read.unwrap_or(0) < 1 << (8 * u32::from(size)));
        }
        let write = r.dev.write(&mut r.host, offset, size, value, &mut r.notices);
        prop_assert!(write.is_ok() || write == Err(crate::vdev::CfgError::AccessDenied) || !valid);
        prop_assert_eq!(write == Err(crate::vdev::CfgError::InvalidOffset), !valid);
    }
}
