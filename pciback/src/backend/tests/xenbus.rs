//! The toolstack's writes and the xenbus state machine.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use vmm_glue::Sbdf;

use super::{backend_over, edu, sbdf, FakeStore, BE, DOM, FE};
use crate::backend::{Action, BackendError, PciBackend, Store, Topology, XenbusState, XlOpts};
use crate::testkit::{self, FakeHost};

/// The backend directory of the real run (Xen 4.17 libxl + Linux 6.1
/// pciback, guest 1 "ref" with `pci = ['00:02.0']`), connected.
const REAL_BACKEND_CONNECTED: &str = r#"/local/domain/0/backend/pci/1 = ""   (n0)
/local/domain/0/backend/pci/1/0 = ""   (n0,r1)
/local/domain/0/backend/pci/1/0/dev-0 = "0000:00:02.0"   (n0,r1)
/local/domain/0/backend/pci/1/0/domain = "ref"   (n0,r1)
/local/domain/0/backend/pci/1/0/frontend = "/local/domain/1/device/pci/0"   (n0,r1)
/local/domain/0/backend/pci/1/0/frontend-id = "1"   (n0,r1)
/local/domain/0/backend/pci/1/0/key-0 = "0000:00:02.0"   (n0,r1)
/local/domain/0/backend/pci/1/0/num_devs = "1"   (n0,r1)
/local/domain/0/backend/pci/1/0/online = "1"   (n0,r1)
/local/domain/0/backend/pci/1/0/opts-0 = "msitranslate=0,power_mgmt=0,permissive=0,rdm_policy=strict"   (n0,r1)
/local/domain/0/backend/pci/1/0/root-0 = "0000:00"   (n0,r1)
/local/domain/0/backend/pci/1/0/root_num = "1"   (n0,r1)
/local/domain/0/backend/pci/1/0/state = "4"   (n0,r1)
/local/domain/0/backend/pci/1/0/state-0 = "3"   (n0,r1)
/local/domain/0/backend/pci/1/0/vdev-0 = "0000:00:00.00"   (n0,r1)"#;

/// The frontend directory of the same run, connected.
const REAL_FRONTEND_CONNECTED: &str = r#"/local/domain/1/device/pci/0 = ""   (n1,r0)
/local/domain/1/device/pci/0/backend = "/local/domain/0/backend/pci/1/0"   (n1,r0)
/local/domain/1/device/pci/0/backend-id = "0"   (n1,r0)
/local/domain/1/device/pci/0/event-channel = "8"   (n1,r0)
/local/domain/1/device/pci/0/magic = "7"   (n1,r0)
/local/domain/1/device/pci/0/pci-op-ref = "8"   (n1,r0)
/local/domain/1/device/pci/0/state = "4"   (n1,r0)"#;

fn lines(s: &str) -> Vec<String> {
    s.lines().map(String::from).collect()
}

/// The real tree with `key`'s line replaced (or dropped if `value` is
/// `None`).
fn with(tree: &str, key: &str, value: Option<&str>) -> Vec<String> {
    lines(tree)
        .into_iter()
        .filter_map(|l| {
            let (path, rest) = l.split_once(" = ").unwrap();
            if !path.ends_with(&format!("/{key}")) {
                return Some(l.clone());
            }
            let perms = rest.rsplit_once("   ").unwrap().1;
            value.map(|v| format!("{path} = \"{v}\"   {perms}"))
        })
        .collect()
}

/// A created backend over the captured run's device.
fn created() -> (FakeHost, FakeStore, PciBackend) {
    let (host, mut b) = backend_over(&[edu()], Topology::Virtual);
    let mut xs = FakeStore::new(DOM);
    b.create(&mut xs).unwrap();
    (host, xs, b)
}

/// What Linux pcifront publishes, then `state` = 3.
fn frontend_initialises(xs: &mut FakeStore, gref: &str, port: &str, magic: &str) {
    xs.guest_write(&format!("{FE}/pci-op-ref"), gref);
    xs.guest_write(&format!("{FE}/event-channel"), port);
    xs.guest_write(&format!("{FE}/magic"), magic);
    xs.guest_write(&format!("{FE}/state"), "3");
}

fn set_frontend(xs: &mut FakeStore, state: &str) {
    xs.guest_write(&format!("{FE}/state"), state);
}

/// A connected backend (page ref 8, port 9).
fn connected() -> (FakeHost, FakeStore, PciBackend) {
    let (host, mut xs, mut b) = created();
    frontend_initialises(&mut xs, "8", "9", "7");
    assert_eq!(
        b.changed(&mut xs),
        Action::Connect {
            gref: 8,
            remote_port: 9
        }
    );
    b.connect_done(&mut xs, Ok(()));
    set_frontend(&mut xs, "4");
    assert_eq!(b.changed(&mut xs), Action::Nothing);
    assert_eq!(b.state(), XenbusState::Connected);
    (host, xs, b)
}

#[test]
fn create_writes_the_tree_of_the_real_run_up_to_initialised() {
    let (_, xs, b) = created();
    assert_eq!(b.state(), XenbusState::Initialised);
    assert_eq!(
        xs.dump("/local/domain/0/backend/pci/1"),
        with(REAL_BACKEND_CONNECTED, "state", Some("3"))
    );
    let mut fe = with(REAL_FRONTEND_CONNECTED, "state", Some("1"));
    fe.retain(|l| {
        !l.contains("/event-channel") && !l.contains("/magic") && !l.contains("/pci-op-ref")
    });
    assert_eq!(xs.dump(FE), fe);
    assert_eq!(b.backend_path(), BE);
    assert_eq!(b.frontend_path(), FE);
    assert_eq!(b.exported(), [(sbdf(0, 2, 0), sbdf(0, 0, 0))]);
}

#[test]
fn create_writes_in_libxl_then_pciback_order() {
    let (_, xs, _) = created();
    let order: Vec<&str> = xs
        .log
        .iter()
        .filter(|l| l.starts_with("write "))
        .map(|l| l.as_str())
        .collect();
    let want = [
        format!("write {BE}/frontend = {FE}"),
        format!("write {BE}/frontend-id = 1"),
        format!("write {FE}/backend = {BE}"),
        format!("write {FE}/backend-id = 0"),
        format!("write {BE}/online = 1"),
        format!("write {FE}/state = 1"),
        format!("write {BE}/state = 1"),
        format!("write {BE}/domain = ref"),
        format!("write {BE}/key-0 = 0000:00:02.0"),
        format!("write {BE}/dev-0 = 0000:00:02.0"),
        format!("write {BE}/opts-0 = msitranslate=0,power_mgmt=0,permissive=0,rdm_policy=strict"),
        format!("write {BE}/state-0 = 1"),
        format!("write {BE}/num_devs = 1"),
        format!("write {BE}/state = 2"),
        format!("write {BE}/vdev-0 = 0000:00:00.00"),
        format!("write {BE}/state-0 = 3"),
        format!("write {BE}/root-0 = 0000:00"),
        format!("write {BE}/root_num = 1"),
        format!("write {BE}/state = 3"),
    ];
    assert_eq!(order, want.iter().map(String::as_str).collect::<Vec<_>>());
    // The directories are made and their permissions set before any key.
    let first_write = xs.log.iter().position(|l| l.starts_with("write ")).unwrap();
    for op in [
        format!("mkdir {BE}"),
        format!("perms {BE} 0 [1]"),
        format!("mkdir {FE}"),
        format!("perms {FE} 1 [0]"),
    ] {
        let at = xs.log.iter().position(|l| *l == op).unwrap();
        assert!(at < first_write, "{op}");
    }
}

#[test]
fn the_connected_tree_is_the_real_run_s() {
    let (_, xs, _) = connected();
    assert_eq!(
        xs.dump("/local/domain/0/backend/pci/1"),
        lines(REAL_BACKEND_CONNECTED)
    );
    let mut fe = lines(REAL_FRONTEND_CONNECTED);
    fe = fe
        .into_iter()
        .map(|l| l.replace("event-channel = \"8\"", "event-channel = \"9\""))
        .collect();
    assert_eq!(xs.dump(FE), fe);
}

#[test]
fn frontend_closed_ends_with_the_real_run_s_backend_after_closing() {
    let (_, mut xs, mut b) = connected();
    set_frontend(&mut xs, "6");
    assert_eq!(b.changed(&mut xs), Action::Disconnect);
    assert_eq!(b.state(), XenbusState::Closed);
    assert_eq!(
        xs.dump("/local/domain/0/backend/pci/1"),
        with(REAL_BACKEND_CONNECTED, "state", Some("6"))
    );
    // Closing is written before Closed (NetBSD's frontend panics otherwise).
    assert_eq!(
        xs.writes_to(&format!("{BE}/state")),
        ["1", "2", "3", "4", "5", "6"]
    );
}

#[test]
fn create_removes_a_stale_tree_first() {
    let (_, mut b) = backend_over(&[edu()], Topology::Virtual);
    let mut xs = FakeStore::new(DOM);
    xs.guest_write(&format!("{FE}/magic"), "6");
    xs.guest_write(&format!("{BE}/vdev-7"), "x");
    b.create(&mut xs).unwrap();
    assert_eq!(xs.value(&format!("{FE}/magic")), None);
    assert_eq!(xs.value(&format!("{BE}/vdev-7")), None);
}

#[test]
fn create_twice_is_refused() {
    let (_, mut xs, mut b) = created();
    assert_eq!(b.create(&mut xs), Err(BackendError::AlreadyCreated));
}

#[test]
fn a_bridge_is_refused_before_anything_is_written() {
    let bridge = testkit::bridge();
    let bridge_sbdf = bridge.info.sbdf;
    for t in [Topology::Virtual, Topology::Passthrough] {
        let (_, mut b) = backend_over(&[edu(), bridge.clone()], t);
        let mut xs = FakeStore::new(DOM);
        let before = xs.nodes.clone();
        assert!(matches!(
            b.create(&mut xs),
            Err(BackendError::NotEndpoint { sbdf, .. }) if sbdf == bridge_sbdf
        ));
        assert_eq!(xs.nodes, before);
        assert!(xs.log.is_empty());
        assert_eq!(b.state(), XenbusState::Unknown);
        assert!(b.exported().is_empty());
        assert_eq!(b.into_devices().len(), 2);
    }
}

#[test]
fn a_refused_store_write_is_reported_with_its_path() {
    let (_, mut b) = backend_over(&[edu()], Topology::Virtual);
    let mut xs = FakeStore::new(DOM);
    xs.refuse = Some(format!("{BE}/vdev-0"));
    assert_eq!(
        b.create(&mut xs),
        Err(BackendError::Store(format!("{BE}/vdev-0")))
    );
    assert_eq!(b.state(), XenbusState::InitWait);
    // The frontend cannot make it connect.
    frontend_initialises(&mut xs, "8", "9", "7");
    assert_eq!(b.changed(&mut xs), Action::Nothing);
}

#[test]
fn virtual_topology_keeps_functions_together_and_numbers_slots_in_order() {
    let f0 = testkit::synthetic().at(sbdf(5, 0, 0));
    let f1 = testkit::synthetic().at(sbdf(5, 0, 1));
    let other = testkit::nvme().at(sbdf(4, 0, 0));
    let (_, mut b) = backend_over(&[f1, other, f0], Topology::Virtual);
    let mut xs = FakeStore::new(DOM);
    b.create(&mut xs).unwrap();
    assert_eq!(xs.value(&format!("{BE}/num_devs")), Some("3"));
    assert_eq!(xs.value(&format!("{BE}/dev-0")), Some("0000:05:00.1"));
    assert_eq!(xs.value(&format!("{BE}/vdev-0")), Some("0000:00:00.01"));
    assert_eq!(xs.value(&format!("{BE}/vdev-1")), Some("0000:00:01.00"));
    assert_eq!(xs.value(&format!("{BE}/vdev-2")), Some("0000:00:00.00"));
    assert_eq!(xs.value(&format!("{BE}/root_num")), Some("1"));
    assert_eq!(xs.value(&format!("{BE}/root-0")), Some("0000:00"));
    for i in 0..3 {
        assert_eq!(xs.value(&format!("{BE}/state-{i}")), Some("3"));
    }
}

#[test]
fn passthrough_topology_publishes_host_addresses_and_a_root_per_bus() {
    let a = testkit::edu().at(sbdf(3, 0, 0));
    let b_ = testkit::nvme().at(Sbdf::new(0x10, 0x22, 1, 2).unwrap());
    let c = testkit::synthetic().at(sbdf(3, 4, 0));
    let (_, mut b) = backend_over(&[a, b_, c], Topology::Passthrough);
    let mut xs = FakeStore::new(DOM);
    b.create(&mut xs).unwrap();
    assert_eq!(xs.value(&format!("{BE}/vdev-1")), Some("0010:22:01.02"));
    assert_eq!(xs.value(&format!("{BE}/dev-1")), Some("0010:22:01.2"));
    assert_eq!(xs.value(&format!("{BE}/root_num")), Some("2"));
    assert_eq!(xs.value(&format!("{BE}/root-0")), Some("0000:03"));
    assert_eq!(xs.value(&format!("{BE}/root-1")), Some("0010:22"));
    assert_eq!(xs.value(&format!("{BE}/root-2")), None);
}

#[test]
fn opts_are_written_as_libxl_formats_them() {
    let o = XlOpts {
        msitranslate: true,
        power_mgmt: false,
        permissive: true,
        rdm_policy_strict: false,
    };
    assert_eq!(
        o.to_xenstore(),
        "msitranslate=1,power_mgmt=0,permissive=1,rdm_policy=relaxed"
    );
}

#[test]
fn xenbus_states_parse_strictly() {
    assert_eq!(XenbusState::parse("4"), Some(XenbusState::Connected));
    assert_eq!(XenbusState::parse("08"), Some(XenbusState::Reconfigured));
    for bad in [
        "",
        "9",
        "-1",
        "+4",
        " 4",
        "4 ",
        "4\n",
        "0x4",
        "four",
        "99999999999",
    ] {
        assert_eq!(XenbusState::parse(bad), None, "{bad:?}");
    }
}

/// Where the backend is when the frontend's state changes.
#[derive(Clone, Copy, Debug)]
enum At {
    Initialised,
    Connecting,
    Connected,
    Closing,
    Closed,
}

fn backend_at(at: At) -> (FakeStore, PciBackend) {
    match at {
        At::Initialised => {
            let (_, mut xs, b) = created();
            // What the frontend will need if it goes Initialised.
            xs.guest_write(&format!("{FE}/pci-op-ref"), "8");
            xs.guest_write(&format!("{FE}/event-channel"), "9");
            xs.guest_write(&format!("{FE}/magic"), "7");
            (xs, b)
        }
        At::Connecting => {
            let (_, mut xs, mut b) = created();
            frontend_initialises(&mut xs, "8", "9", "7");
            assert!(matches!(b.changed(&mut xs), Action::Connect { .. }));
            (xs, b)
        }
        At::Connected => {
            let (_, xs, b) = connected();
            (xs, b)
        }
        At::Closing => {
            let (_, mut xs, mut b) = connected();
            set_frontend(&mut xs, "5");
            assert_eq!(b.changed(&mut xs), Action::Disconnect);
            (xs, b)
        }
        At::Closed => {
            let (_, mut xs, mut b) = connected();
            set_frontend(&mut xs, "6");
            assert_eq!(b.changed(&mut xs), Action::Disconnect);
            (xs, b)
        }
    }
}

/// Every frontend value: the states, out-of-range numbers, garbage, and an
/// absent node (`None`).
const FRONTEND_VALUES: [Option<&str>; 14] = [
    Some("0"),
    Some("1"),
    Some("2"),
    Some("3"),
    Some("4"),
    Some("5"),
    Some("6"),
    Some("7"),
    Some("8"),
    Some("9"),
    Some("-1"),
    Some("garbage\u{0}\u{7f}"),
    Some(""),
    None,
];

/// The table on `PciBackend::changed`: the action and the backend state after.
fn expected(at: At, fe: Option<&str>) -> (Action, XenbusState) {
    use XenbusState as S;
    let connect = Action::Connect {
        gref: 8,
        remote_port: 9,
    };
    let (now, live) = match at {
        At::Initialised | At::Connecting => (S::Initialised, true),
        At::Connected => (S::Connected, true),
        At::Closing => (S::Closing, false),
        At::Closed => (S::Closed, false),
    };
    match (at, fe) {
        (_, Some("5")) if live => (Action::Disconnect, S::Closing),
        (_, Some("6")) if live => (Action::Disconnect, S::Closed),
        (At::Closing, Some("6")) => (Action::Nothing, S::Closed),
        (At::Initialised, Some("3")) => (connect, S::Initialised),
        // A closed frontend starting over: the probe again (and the
        // connection, with the page and port still published).
        (At::Closed, Some("1" | "2")) => (Action::Nothing, S::Initialised),
        (At::Closed, Some("3")) => (connect, S::Initialised),
        _ => (Action::Nothing, now),
    }
}

#[test]
fn every_frontend_value_at_every_backend_state_follows_the_table() {
    for at in [
        At::Initialised,
        At::Connecting,
        At::Connected,
        At::Closing,
        At::Closed,
    ] {
        for fe in FRONTEND_VALUES {
            let (mut xs, mut b) = backend_at(at);
            let writes_before = xs.writes_to(&format!("{BE}/state")).len();
            match fe {
                Some(v) => set_frontend(&mut xs, v),
                None => {
                    xs.rm(&format!("{FE}/state"));
                }
            }
            let got = b.changed(&mut xs);
            assert_eq!((got, b.state()), expected(at, fe), "{at:?} {fe:?}");
            // The store agrees, and Closed only ever follows Closing.
            assert_eq!(
                xs.value(&format!("{BE}/state")),
                Some(format!("{}", b.state().raw()).as_str())
            );
            let states = xs.writes_to(&format!("{BE}/state"));
            for (i, s) in states.iter().enumerate() {
                if s == "6" {
                    assert_eq!(states[i - 1], "5", "{at:?} {fe:?}: {states:?}");
                }
            }
            assert!(states.len() - writes_before <= 2);
            // No error node unless a connection was refused.
            assert_eq!(xs.value(&b.error_path()), None, "{at:?} {fe:?}");
            // Seeing the same value again changes nothing.
            assert_eq!(b.changed(&mut xs), Action::Nothing, "{at:?} {fe:?} again");
        }
    }
}

#[test]
fn unexpected_frontend_values_are_noted_once_per_change() {
    let (mut xs, mut b) = backend_at(At::Connected);
    b.take_notices();
    set_frontend(&mut xs, "7");
    b.changed(&mut xs);
    b.changed(&mut xs);
    assert_eq!(b.take_notices().len(), 1);
    set_frontend(&mut xs, "bogus");
    b.changed(&mut xs);
    let n = b.take_notices();
    assert_eq!(n.len(), 1);
    assert!(n[0].0.contains("\"bogus\""), "{n:?}");
}

#[test]
fn a_second_initialised_does_not_connect_twice() {
    let (mut xs, mut b) = backend_at(At::Connecting);
    set_frontend(&mut xs, "3");
    assert_eq!(b.changed(&mut xs), Action::Nothing);
    b.connect_done(&mut xs, Ok(()));
    assert_eq!(b.state(), XenbusState::Connected);
    set_frontend(&mut xs, "3");
    assert_eq!(b.changed(&mut xs), Action::Nothing);
    assert_eq!(b.state(), XenbusState::Connected);
}

/// The frontend publishes `gref`, `port`, `magic` (`None`: absent) and
/// goes Initialised: the backend refuses with `errno` in the error node.
fn refused(gref: Option<&str>, port: Option<&str>, magic: Option<&str>, errno: &str) {
    let (_, mut xs, mut b) = created();
    for (k, v) in [
        ("pci-op-ref", gref),
        ("event-channel", port),
        ("magic", magic),
    ] {
        if let Some(v) = v {
            xs.guest_write(&format!("{FE}/{k}"), v);
        }
    }
    set_frontend(&mut xs, "3");
    let case = format!("{gref:?} {port:?} {magic:?}");
    assert_eq!(b.changed(&mut xs), Action::Nothing, "{case}");
    assert_eq!(b.state(), XenbusState::Closing, "{case}");
    assert_eq!(
        b.error_path(),
        "/local/domain/0/error/backend/pci/1/0/error"
    );
    let err = xs
        .value(&b.error_path())
        .unwrap_or_else(|| panic!("{case}"));
    assert!(err.starts_with(&format!("{errno} ")), "{case}: {err}");
    assert!(!b.take_notices().is_empty());
    // The frontend answers Closing by closing; nothing reconnects.
    set_frontend(&mut xs, "6");
    assert_eq!(b.changed(&mut xs), Action::Nothing);
    assert_eq!(b.state(), XenbusState::Closed);
    set_frontend(&mut xs, "3");
    assert_eq!(b.changed(&mut xs), Action::Nothing);
}

#[test]
fn bad_or_missing_magic_refuses_the_connection() {
    refused(Some("8"), Some("9"), Some("6"), "14");
    refused(Some("8"), Some("9"), Some("7 "), "14");
    refused(Some("8"), Some("9"), Some(""), "14");
    refused(Some("8"), Some("9"), Some(&"7".repeat(5000)), "14");
    refused(Some("8"), Some("9"), None, "2");
}

#[test]
fn bad_or_missing_grant_or_port_refuses_the_connection() {
    for bad in ["", "x", "-1", "4294967296", "0x8", " 8"] {
        refused(Some(bad), Some("9"), Some("7"), "22");
        refused(Some("8"), Some(bad), Some("7"), "22");
    }
    refused(None, Some("9"), Some("7"), "2");
    refused(Some("8"), None, Some("7"), "2");
    refused(None, None, None, "2");
}

#[test]
fn the_largest_grant_and_port_are_taken() {
    let (_, mut xs, mut b) = created();
    frontend_initialises(&mut xs, "4294967295", "0", "7");
    assert_eq!(
        b.changed(&mut xs),
        Action::Connect {
            gref: u32::MAX,
            remote_port: 0
        }
    );
}

#[test]
fn a_failed_connection_closes_with_the_reason() {
    let (mut xs, mut b) = backend_at(At::Connecting);
    b.connect_done(&mut xs, Err("grant 8 is not the guest's"));
    assert_eq!(b.state(), XenbusState::Closing);
    let err = xs.value(&b.error_path()).unwrap();
    assert!(
        err.starts_with("22 ") && err.contains("grant 8 is not the guest's"),
        "{err}"
    );
}

#[test]
fn connect_done_without_a_connect_is_ignored() {
    for at in [At::Initialised, At::Connected, At::Closing, At::Closed] {
        let (mut xs, mut b) = backend_at(at);
        let state = b.state();
        b.take_notices();
        b.connect_done(&mut xs, Ok(()));
        assert_eq!(b.state(), state, "{at:?}");
        assert_eq!(b.take_notices().len(), 1);
    }
    // A connection abandoned by the frontend closing is not resumed.
    let (mut xs, mut b) = backend_at(At::Connecting);
    set_frontend(&mut xs, "5");
    assert_eq!(b.changed(&mut xs), Action::Disconnect);
    b.connect_done(&mut xs, Ok(()));
    assert_eq!(b.state(), XenbusState::Closing);
}

#[test]
fn close_writes_closed_and_nothing_else() {
    for at in [At::Initialised, At::Connecting, At::Connected, At::Closing] {
        let (mut xs, mut b) = backend_at(at);
        let before = xs.nodes.clone();
        xs.log.clear();
        b.close(&mut xs);
        assert_eq!(b.state(), XenbusState::Closed);
        assert_eq!(xs.log, [format!("write {BE}/state = 6")], "{at:?}");
        let mut after = xs.nodes.clone();
        after.get_mut(&format!("{BE}/state")).unwrap().value =
            before[&format!("{BE}/state")].value.clone();
        assert_eq!(after, before);
    }
    // Before create there is nothing to close.
    let (_, mut b) = backend_over(&[edu()], Topology::Virtual);
    let mut xs = FakeStore::new(DOM);
    b.close(&mut xs);
    assert!(xs.log.is_empty());
}

#[test]
fn changes_before_create_do_nothing() {
    let (_, mut b) = backend_over(&[edu()], Topology::Virtual);
    let mut xs = FakeStore::new(DOM);
    frontend_initialises(&mut xs, "8", "9", "7");
    assert_eq!(b.changed(&mut xs), Action::Nothing);
    assert_eq!(b.state(), XenbusState::Unknown);
    assert!(xs.log.is_empty());
}

#[test]
fn into_devices_gives_every_function_back_in_order() {
    let (_, _, b) = connected();
    let devs = b.into_devices();
    assert_eq!(devs.len(), 1);
    assert_eq!(devs[0].sbdf(), sbdf(0, 2, 0));
}

#[test]
fn a_guest_deleting_its_frontend_directory_changes_nothing() {
    let (_, mut xs, mut b) = connected();
    xs.rm(FE);
    assert_eq!(b.changed(&mut xs), Action::Nothing);
    assert_eq!(b.state(), XenbusState::Connected);
    assert!(Store::read(&mut xs, &format!("{BE}/state")).is_some());
}

/// Closes a connected backend from the frontend: Closing, then Closed.
fn closed_by_the_frontend() -> (FakeHost, FakeStore, PciBackend) {
    let (host, mut xs, mut b) = connected();
    set_frontend(&mut xs, "5");
    assert_eq!(b.changed(&mut xs), Action::Disconnect);
    set_frontend(&mut xs, "6");
    assert_eq!(b.changed(&mut xs), Action::Nothing);
    assert_eq!(b.state(), XenbusState::Closed);
    (host, xs, b)
}

#[test]
fn a_frontend_that_starts_over_after_closing_connects_again() {
    let (_, mut xs, mut b) = closed_by_the_frontend();
    let before = xs.writes_to(&format!("{BE}/state")).len();
    // A module reload: Initialising, then the new page and port.
    set_frontend(&mut xs, "1");
    assert_eq!(b.changed(&mut xs), Action::Nothing);
    assert_eq!(b.state(), XenbusState::Initialised);
    assert_eq!(b.reopened(), 1);
    assert_eq!(xs.writes_to(&format!("{BE}/state"))[before..], ["2", "3"]);
    // The same devices and roots are published again.
    assert_eq!(xs.value(&format!("{BE}/vdev-0")), Some("0000:00:00.00"));
    assert_eq!(xs.value(&format!("{BE}/state-0")), Some("3"));
    assert_eq!(xs.value(&format!("{BE}/root_num")), Some("1"));
    frontend_initialises(&mut xs, "12", "13", "7");
    assert_eq!(
        b.changed(&mut xs),
        Action::Connect {
            gref: 12,
            remote_port: 13
        }
    );
    b.connect_done(&mut xs, Ok(()));
    assert_eq!(b.state(), XenbusState::Connected);
    assert!(b
        .take_notices()
        .iter()
        .any(|n| n.to_string().contains("starts over")));
}

#[test]
fn a_frontend_already_initialised_again_is_probed_and_connected_at_once() {
    let (_, mut xs, mut b) = closed_by_the_frontend();
    frontend_initialises(&mut xs, "20", "21", "7");
    assert_eq!(
        b.changed(&mut xs),
        Action::Connect {
            gref: 20,
            remote_port: 21
        }
    );
    assert_eq!(b.reopened(), 1);
}

#[test]
fn three_reconnections_in_a_row() {
    let (_, mut xs, mut b) = connected();
    for i in 1..=3u32 {
        set_frontend(&mut xs, "5");
        assert_eq!(b.changed(&mut xs), Action::Disconnect);
        set_frontend(&mut xs, "6");
        b.changed(&mut xs);
        set_frontend(&mut xs, "1");
        b.changed(&mut xs);
        frontend_initialises(&mut xs, "8", &format!("{}", 9 + i), "7");
        assert_eq!(
            b.changed(&mut xs),
            Action::Connect {
                gref: 8,
                remote_port: 9 + i
            }
        );
        b.connect_done(&mut xs, Ok(()));
        set_frontend(&mut xs, "4");
        assert_eq!(b.changed(&mut xs), Action::Nothing);
        assert_eq!(b.state(), XenbusState::Connected);
        assert_eq!(b.reopened(), i);
    }
}

#[test]
fn a_backend_the_toolstack_closed_does_not_reopen() {
    let (_, mut xs, mut b) = connected();
    b.close(&mut xs);
    set_frontend(&mut xs, "1");
    assert_eq!(b.changed(&mut xs), Action::Nothing);
    frontend_initialises(&mut xs, "8", "9", "7");
    assert_eq!(b.changed(&mut xs), Action::Nothing);
    assert_eq!(b.state(), XenbusState::Closed);
    assert_eq!(b.reopened(), 0);
}

#[test]
fn a_closed_frontend_that_stays_closed_or_says_garbage_is_left_closed() {
    let (_, mut xs, mut b) = closed_by_the_frontend();
    for s in ["6", "5", "4", "7", "x"] {
        set_frontend(&mut xs, s);
        assert_eq!(b.changed(&mut xs), Action::Nothing, "{s}");
        assert_eq!(b.state(), XenbusState::Closed, "{s}");
    }
    assert_eq!(b.reopened(), 0);
}

// Hot-plug (Reconfiguring): attach and detach into a connected frontend.

/// A second edu, at 00:03.0, on the same host as [`connected`]'s: its
/// function for an attach.
fn second_edu(host: &mut FakeHost) -> crate::vdev::VirtDevice {
    let f = testkit::edu().at(sbdf(0, 3, 0));
    host.add_function(f.config.clone());
    crate::vdev::VirtDevice::new(
        f.info.clone(),
        crate::vdev::DeviceOptions::default(),
        vmm_glue::PassthroughHost::config(host),
    )
}

fn be(xs: &FakeStore, key: &str) -> Option<String> {
    xs.value(&format!("{BE}/{key}")).map(String::from)
}

fn fe_goes(b: &mut PciBackend, xs: &mut FakeStore, state: &str) -> Action {
    set_frontend(xs, state);
    b.changed(xs)
}

#[test]
fn attach_writes_libxl_keys_then_exports_on_frontend_7_and_both_return_to_4() {
    let (mut host, mut xs, mut b) = connected();
    let dev = second_edu(&mut host);
    xs.log.clear();
    assert_eq!(b.attach(&mut xs, dev, XlOpts::default()), Ok(1));
    let writes: Vec<&str> = xs.log.iter().map(String::as_str).collect();
    assert_eq!(
        writes,
        [
            format!("write {BE}/key-1 = 0000:00:03.0"),
            format!("write {BE}/dev-1 = 0000:00:03.0"),
            format!(
                "write {BE}/opts-1 = msitranslate=0,power_mgmt=0,permissive=0,rdm_policy=strict"
            ),
            format!("write {BE}/state-1 = 1"),
            format!("write {BE}/num_devs = 2"),
            format!("write {BE}/state = 7"),
        ]
    );
    // Not in the guest's view before the frontend answers.
    assert_eq!(b.exported(), [(sbdf(0, 2, 0), sbdf(0, 0, 0))]);
    assert_eq!(be(&xs, "vdev-1"), None);
    // The frontend is still 4: nothing happens.
    assert_eq!(b.changed(&mut xs), Action::Nothing);
    assert_eq!(b.state(), XenbusState::Reconfiguring);
    assert_eq!(fe_goes(&mut b, &mut xs, "7"), Action::Nothing);
    assert_eq!(be(&xs, "vdev-1").as_deref(), Some("0000:00:01.00"));
    assert_eq!(be(&xs, "state-1").as_deref(), Some("3"));
    assert_eq!(be(&xs, "root_num").as_deref(), Some("1"));
    assert_eq!(be(&xs, "state").as_deref(), Some("8"));
    assert_eq!(
        b.exported(),
        [
            (sbdf(0, 2, 0), sbdf(0, 0, 0)),
            (sbdf(0, 3, 0), sbdf(0, 1, 0))
        ]
    );
    assert_eq!(fe_goes(&mut b, &mut xs, "4"), Action::Nothing);
    assert_eq!(b.state(), XenbusState::Connected);
    assert_eq!(be(&xs, "state").as_deref(), Some("4"));
    assert!(b.take_removed().is_empty());
    assert_eq!(b.devices().count(), 2);
}

#[test]
fn detach_removes_on_frontend_7_and_deletes_the_slot_keys_at_4_without_shifting() {
    let (mut host, mut xs, mut b) = connected();
    let dev = second_edu(&mut host);
    b.attach(&mut xs, dev, XlOpts::default()).unwrap();
    fe_goes(&mut b, &mut xs, "7");
    fe_goes(&mut b, &mut xs, "4");
    // Detach the first: slot 1 keeps its number.
    assert_eq!(b.detach(&mut xs, sbdf(0, 2, 0)), Ok(0));
    assert_eq!(be(&xs, "state-0").as_deref(), Some("5"));
    assert_eq!(be(&xs, "state").as_deref(), Some("7"));
    // Still in the guest's view until the frontend let go of it.
    assert_eq!(b.exported().len(), 2);
    assert!(b.take_removed().is_empty());
    fe_goes(&mut b, &mut xs, "7");
    assert_eq!(be(&xs, "state").as_deref(), Some("8"));
    let gone: Vec<Sbdf> = b.take_removed().iter().map(|d| d.sbdf()).collect();
    assert_eq!(gone, [sbdf(0, 2, 0)]);
    assert_eq!(b.exported(), [(sbdf(0, 3, 0), sbdf(0, 1, 0))]);
    // Linux leaves state-N at 5 until the toolstack deletes the slot.
    assert_eq!(be(&xs, "state-0").as_deref(), Some("5"));
    fe_goes(&mut b, &mut xs, "4");
    assert_eq!(b.state(), XenbusState::Connected);
    for k in ["state-0", "key-0", "dev-0", "vdev-0", "opts-0"] {
        assert_eq!(be(&xs, k), None, "{k}");
    }
    assert_eq!(be(&xs, "vdev-1").as_deref(), Some("0000:00:01.00"));
    assert_eq!(be(&xs, "num_devs").as_deref(), Some("2"));
}

#[test]
fn attach_after_detach_takes_a_new_slot_number_and_the_freed_guest_slot() {
    let (mut host, mut xs, mut b) = connected();
    b.detach(&mut xs, sbdf(0, 2, 0)).unwrap();
    fe_goes(&mut b, &mut xs, "7");
    fe_goes(&mut b, &mut xs, "4");
    let back = b.take_removed().pop().unwrap();
    assert_eq!(b.devices().count(), 0);
    assert_eq!(b.attach(&mut xs, back, XlOpts::default()), Ok(1));
    let dev = second_edu(&mut host);
    // Busy until the frontend answered the first.
    assert_eq!(
        b.attach(&mut xs, dev, XlOpts::default()),
        Err(BackendError::Busy)
    );
    assert_eq!(b.take_removed().len(), 1);
    fe_goes(&mut b, &mut xs, "7");
    fe_goes(&mut b, &mut xs, "4");
    assert_eq!(be(&xs, "dev-1").as_deref(), Some("0000:00:02.0"));
    assert_eq!(be(&xs, "vdev-1").as_deref(), Some("0000:00:00.00"));
    assert_eq!(be(&xs, "num_devs").as_deref(), Some("2"));
    assert_eq!(b.exported(), [(sbdf(0, 2, 0), sbdf(0, 0, 0))]);
}

#[test]
fn detach_of_a_function_never_attached_is_refused_and_writes_nothing() {
    let (_, mut xs, mut b) = connected();
    xs.log.clear();
    assert_eq!(
        b.detach(&mut xs, sbdf(0, 3, 0)),
        Err(BackendError::NotAttached(sbdf(0, 3, 0)))
    );
    assert!(xs.log.is_empty());
    assert_eq!(b.state(), XenbusState::Connected);
}

#[test]
fn attach_while_not_connected_is_refused_and_the_function_handed_back() {
    // libxl waits for backend Connected and gives up; here at once.
    let (mut host, mut xs, mut b) = created();
    let dev = second_edu(&mut host);
    xs.log.clear();
    assert_eq!(
        b.attach(&mut xs, dev, XlOpts::default()),
        Err(BackendError::NotConnected(XenbusState::Initialised))
    );
    assert!(xs.log.is_empty());
    assert_eq!(b.take_removed().len(), 1);
    assert_eq!(
        b.detach(&mut xs, sbdf(0, 2, 0)),
        Err(BackendError::NotConnected(XenbusState::Initialised))
    );
}

#[test]
fn a_frontend_that_never_answers_keeps_the_backend_busy_until_it_closes() {
    let (mut host, mut xs, mut b) = connected();
    let dev = second_edu(&mut host);
    b.attach(&mut xs, dev, XlOpts::default()).unwrap();
    for _ in 0..3 {
        assert_eq!(b.changed(&mut xs), Action::Nothing);
    }
    assert_eq!(b.state(), XenbusState::Reconfiguring);
    assert_eq!(b.detach(&mut xs, sbdf(0, 2, 0)), Err(BackendError::Busy));
    // Ops still reach the exported function only.
    assert_eq!(b.exported().len(), 1);
    // It closes: the pending function is handed back, its keys go.
    assert_eq!(fe_goes(&mut b, &mut xs, "5"), Action::Disconnect);
    let back: Vec<Sbdf> = b.take_removed().iter().map(|d| d.sbdf()).collect();
    assert_eq!(back, [sbdf(0, 3, 0)]);
    assert_eq!(be(&xs, "dev-1"), None);
    assert_eq!(be(&xs, "state-1"), None);
    assert_eq!(b.devices().count(), 1);
}

#[test]
fn a_domain_dying_mid_attach_gives_back_every_function() {
    let (mut host, mut xs, mut b) = connected();
    let dev = second_edu(&mut host);
    b.attach(&mut xs, dev, XlOpts::default()).unwrap();
    b.close(&mut xs);
    let mut all: Vec<Sbdf> = b.into_devices().iter().map(|d| d.sbdf()).collect();
    all.sort();
    assert_eq!(all, [sbdf(0, 2, 0), sbdf(0, 3, 0)]);
}

#[test]
fn attach_of_a_function_already_there_is_refused() {
    let (mut host, mut xs, mut b) = connected();
    let _ = second_edu(&mut host);
    let f = testkit::edu().at(sbdf(0, 2, 0));
    let dup = crate::vdev::VirtDevice::new(
        f.info.clone(),
        crate::vdev::DeviceOptions::default(),
        vmm_glue::PassthroughHost::config(&mut host),
    );
    assert_eq!(
        b.attach(&mut xs, dup, XlOpts::default()),
        Err(BackendError::Duplicate(sbdf(0, 2, 0)))
    );
    assert_eq!(b.state(), XenbusState::Connected);
}

/// A config read of the guest's `00:dev.0` vendor/device IDs: `(err,
/// value)`.
fn read_ids(b: &mut PciBackend, host: &mut FakeHost, dev: u32) -> (i32, u32) {
    use super::serve::{err, value, Op};
    let mut page = Op::to(crate::backend::op::OP_CONF_READ, dev << 3).page();
    assert!(b.serve(host, &mut page).notify);
    (err(&page), value(&page))
}

#[test]
fn ops_are_served_during_a_hot_plug_and_reach_only_the_functions_in_the_view() {
    let (mut host, mut xs, mut b) = connected();
    let dev = second_edu(&mut host);
    b.attach(&mut xs, dev, XlOpts::default()).unwrap();
    let not_found = crate::backend::op::ERR_DEV_NOT_FOUND;
    // Backend 7: the new function is not there yet, the old one is.
    assert_eq!(read_ids(&mut b, &mut host, 1).0, not_found);
    assert_eq!(read_ids(&mut b, &mut host, 0), (0, 0x11e8_1234));
    // Backend 8: the frontend rescans and finds it.
    fe_goes(&mut b, &mut xs, "7");
    assert_eq!(b.state(), XenbusState::Reconfigured);
    assert_eq!(read_ids(&mut b, &mut host, 1), (0, 0x11e8_1234));
    fe_goes(&mut b, &mut xs, "4");
    // A removal: there until the frontend answers, gone in its rescan.
    b.detach(&mut xs, sbdf(0, 2, 0)).unwrap();
    assert_eq!(read_ids(&mut b, &mut host, 0), (0, 0x11e8_1234));
    fe_goes(&mut b, &mut xs, "7");
    assert_eq!(read_ids(&mut b, &mut host, 0).0, not_found);
    assert_eq!(read_ids(&mut b, &mut host, 1), (0, 0x11e8_1234));
}
