//! Host tests of the domain home: its nodes, their permissions, and what
//! the guest, another guest and domain 0 may do with them.

use super::*;
use crate::xenstore::wire::{Header, MsgType};
use crate::xenstore::INTRODUCE_DOMAIN;
use alloc::string::ToString;
use alloc::vec::Vec;

fn spec(domid: DomId) -> DomainHome<'static> {
    DomainHome {
        domid,
        name: "hello",
        memory_kib: 65536,
        console_ring_ref: 0xfeffc,
        console_port: 3,
    }
}

fn z(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// A guest request: the payload, or the error name.
fn call(xs: &mut Xenstore, dom: DomId, ty: MsgType, payload: &[u8]) -> Result<Vec<u8>, String> {
    let h = Header {
        ty: ty as u32,
        req_id: 1,
        tx_id: 0,
        len: payload.len() as u32,
    };
    let r = xs.request(dom, h, payload);
    match r.error_name() {
        Some(e) => Err(String::from_utf8_lossy(e).to_string()),
        None => Ok(r.payload),
    }
}

fn read(xs: &mut Xenstore, dom: DomId, path: &str) -> Result<Vec<u8>, String> {
    call(xs, dom, MsgType::Read, &z(path))
}

fn write(xs: &mut Xenstore, dom: DomId, path: &str, v: &str) -> Result<Vec<u8>, String> {
    let mut p = z(path);
    p.extend_from_slice(v.as_bytes());
    call(xs, dom, MsgType::Write, &p)
}

fn perms(xs: &mut Xenstore, path: &str) -> Vec<u8> {
    call(xs, 0, MsgType::GetPerms, &z(path)).unwrap()
}

fn built() -> Xenstore {
    let mut xs = Xenstore::default();
    create_domain_home(&mut xs, &spec(1)).unwrap();
    create_domain_home(&mut xs, &spec(2)).unwrap();
    xs
}

#[test]
fn home_holds_what_libxl_writes() {
    let mut xs = built();
    let d = "/local/domain/1";
    for (path, value) in [
        ("domid", "1"),
        ("name", "hello"),
        ("vm", "/vm/00000000-0000-0000-0000-000000000001"),
        ("memory/target", "65536"),
        ("memory/static-max", "65536"),
        ("memory/videoram", "0"),
        ("cpu/0/availability", "online"),
        ("control/platform-feature-xs_reset_watches", "1"),
        ("control/shutdown", ""),
        ("console/port", "3"),
        ("console/ring-ref", "1044476"),
        ("console/type", "xenconsoled"),
        ("console/limit", "1048576"),
        ("console/backend-id", "0"),
    ] {
        assert_eq!(
            xs.read(&format!("{d}/{path}")).as_deref(),
            Ok(value.as_bytes()),
            "{path}"
        );
    }
    for sub in ["device", "data", "drivers", "feature", "attr", "error"] {
        assert!(xs.read(&format!("{d}/{sub}")).is_ok(), "{sub}");
    }
    assert_eq!(
        xs.read("/vm/00000000-0000-0000-0000-000000000001/name")
            .as_deref(),
        Ok(&b"hello"[..])
    );
    assert!(xs.is_introduced(1));
    xs.tree().check_consistent().unwrap();
}

#[test]
fn permissions_follow_libxl() {
    let mut xs = built();
    let d = "/local/domain/1";
    for (path, p) in [
        ("", &b"n0\0r1\0"[..]),
        ("/domid", b"n0\0r1\0"),
        ("/name", b"n0\0r1\0"),
        ("/device", b"n0\0r1\0"),
        ("/control", b"n0\0r1\0"),
        ("/control/shutdown", b"n1\0"),
        ("/control/feature-poweroff", b"n1\0"),
        ("/device/suspend", b"n0\0r1\0"),
        ("/device/suspend/event-channel", b"n1\0"),
        ("/data", b"n1\0"),
        ("/memory/target", b"n0\0r1\0"),
        ("/console", b"n1\0r0\0"),
        ("/console/type", b"n1\0r0\0"),
        ("/console/port", b"n0\0r1\0"),
        ("/console/ring-ref", b"n0\0r1\0"),
    ] {
        assert_eq!(perms(&mut xs, &format!("{d}{path}")), p, "{path}");
    }
}

#[test]
fn guest_reads_its_home_and_writes_only_where_libxl_lets_it() {
    let mut xs = built();
    assert_eq!(read(&mut xs, 1, "domid"), Ok(b"1".to_vec()));
    assert_eq!(
        read(&mut xs, 1, "console/ring-ref"),
        Ok(b"1044476".to_vec())
    );
    assert_eq!(
        read(&mut xs, 1, "/local/domain/1/name"),
        Ok(b"hello".to_vec())
    );
    assert_eq!(write(&mut xs, 1, "data/ip", "10.0.0.2"), Ok(z("OK")));
    assert_eq!(
        write(&mut xs, 1, "control/feature-poweroff", "1"),
        Ok(z("OK"))
    );
    assert_eq!(write(&mut xs, 1, "control/shutdown", ""), Ok(z("OK")));
    assert_eq!(write(&mut xs, 1, "console/tty", "x"), Ok(z("OK")));
    for path in [
        "domid",
        "name",
        "memory/target",
        "console/port",
        "elsewhere",
    ] {
        assert_eq!(write(&mut xs, 1, path, "9"), Err("EACCES".into()), "{path}");
    }
    assert_eq!(
        write(&mut xs, 1, "device/vif/0/state", "1"),
        Err("EACCES".into())
    );
    assert_eq!(read(&mut xs, 1, "domid"), Ok(b"1".to_vec()));
}

#[test]
fn another_guest_cannot_read_or_write_the_home() {
    let mut xs = built();
    for path in ["", "/domid", "/data", "/console/port"] {
        let p = format!("/local/domain/1{path}");
        assert_eq!(read(&mut xs, 2, &p), Err("EACCES".into()), "{p}");
    }
    assert_eq!(
        write(&mut xs, 2, "/local/domain/1/data/x", "v"),
        Err("EACCES".into())
    );
    assert_eq!(
        read(&mut xs, 2, "/vm/00000000-0000-0000-0000-000000000001/name"),
        Err("EACCES".into())
    );
}

#[test]
fn dom0_reads_and_writes_everything() {
    let mut xs = built();
    write(&mut xs, 1, "data/x", "guest").unwrap();
    assert_eq!(
        read(&mut xs, 0, "/local/domain/1/data/x"),
        Ok(b"guest".to_vec())
    );
    assert_eq!(write(&mut xs, 0, "/local/domain/1/domid", "1"), Ok(z("OK")));
}

#[test]
fn creating_fires_introduce_and_refuses_dom0_and_duplicates() {
    let mut xs = Xenstore::default();
    xs.watch(INTRODUCE_DOMAIN, "i").unwrap();
    let _ = xs.take_events(0);
    create_domain_home(&mut xs, &spec(3)).unwrap();
    assert!(xs.take_events(0).iter().any(|e| e.path == INTRODUCE_DOMAIN));
    assert_eq!(create_domain_home(&mut xs, &spec(3)), Err(XsError::Exist));
    assert_eq!(create_domain_home(&mut xs, &spec(0)), Err(XsError::Inval));
}

#[test]
fn removing_releases_the_domain_and_clears_home_and_vm() {
    let mut xs = built();
    assert!(remove_domain_home(&mut xs, 1));
    assert!(!xs.is_introduced(1));
    assert!(xs.read("/local/domain/1").is_err());
    assert!(xs.read("/vm/00000000-0000-0000-0000-000000000001").is_err());
    assert!(xs.read("/local/domain/2/domid").is_ok());
    assert!(!remove_domain_home(&mut xs, 1));
    // The id can be used again.
    create_domain_home(&mut xs, &spec(1)).unwrap();
    assert_eq!(xs.read("/local/domain/1/domid").as_deref(), Ok(&b"1"[..]));
    xs.tree().check_consistent().unwrap();
}

#[test]
fn vm_uuid_is_uuid_shaped_and_unique_per_domain() {
    assert_eq!(vm_uuid(0x7ff0), "00000000-0000-0000-0000-000000007ff0");
    assert_eq!(vm_uuid(1).len(), 36);
    assert_ne!(vm_uuid(1), vm_uuid(2));
}

#[test]
fn store_ring_nodes_are_read_only_for_the_guest() {
    let mut xs = built();
    write_store_ring(&mut xs, 1, 1, 0xfeffd).unwrap();
    assert_eq!(read(&mut xs, 1, "store/port"), Ok(b"1".to_vec()));
    assert_eq!(read(&mut xs, 1, "store/ring-ref"), Ok(b"1044477".to_vec()));
    assert_eq!(perms(&mut xs, "/local/domain/1/store"), b"n0\0r1\0");
    assert_eq!(write(&mut xs, 1, "store/port", "9"), Err("EACCES".into()));
    assert_eq!(write_store_ring(&mut xs, 7, 1, 1), Err(XsError::NoEnt));
}

#[test]
fn removing_the_last_domain_leaves_the_tree_as_it_was_before_any() {
    let mut xs = Xenstore::default();
    let before: Vec<String> = xs.tree().iter().map(|(p, _)| p.to_string()).collect();
    create_domain_home(&mut xs, &spec(1)).unwrap();
    // What a PCI backend writes for the domain.
    xs.write("/local/domain/0/backend/pci/1/0/num_devs", b"1")
        .unwrap();
    xs.write("/local/domain/0/backend/pci/1/0/dev-0", b"0000:00:03.0")
        .unwrap();
    assert!(remove_domain_home(&mut xs, 1));
    let after: Vec<String> = xs.tree().iter().map(|(p, _)| p.to_string()).collect();
    assert_eq!(after, before);
}

#[test]
fn a_backends_error_node_goes_with_its_domain() {
    // A frontend the PCI backend refused (a bad `magic`, a grant it cannot
    // map) leaves the reason under domain 0's error directory: it must not
    // outlive the domain, or each refused life would leak nodes.
    let mut xs = Xenstore::default();
    let before: Vec<String> = xs.tree().iter().map(|(p, _)| p.to_string()).collect();
    create_domain_home(&mut xs, &spec(1)).unwrap();
    create_domain_home(&mut xs, &spec(2)).unwrap();
    for d in [1, 2] {
        xs.write(
            &alloc::format!("/local/domain/0/error/backend/pci/{d}/0/error"),
            b"71 the frontend speaks protocol version \"8\", not 7; halting",
        )
        .unwrap();
    }
    assert!(remove_domain_home(&mut xs, 1));
    assert!(xs
        .read("/local/domain/0/error/backend/pci/1/0/error")
        .is_err());
    assert!(xs
        .read("/local/domain/0/error/backend/pci/2/0/error")
        .is_ok());
    assert!(remove_domain_home(&mut xs, 2));
    let after: Vec<String> = xs.tree().iter().map(|(p, _)| p.to_string()).collect();
    assert_eq!(after, before);
}

#[test]
fn another_domains_backend_keeps_the_shared_parents() {
    let mut xs = built();
    xs.write("/local/domain/0/backend/pci/1/0/num_devs", b"1")
        .unwrap();
    xs.write("/local/domain/0/backend/pci/2/0/num_devs", b"1")
        .unwrap();
    assert!(remove_domain_home(&mut xs, 1));
    assert!(xs.read("/local/domain/0/backend/pci/1/0/num_devs").is_err());
    assert!(xs.read("/local/domain/0/backend/pci/2/0/num_devs").is_ok());
    assert!(xs.read("/vm/00000000-0000-0000-0000-000000000002").is_ok());
}
