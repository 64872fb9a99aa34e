//! Host tests of the whole store through the request interface, as a
//! guest's ring would drive it.

use super::*;
use alloc::vec;

fn req(xs: &mut Xenstore, dom: DomId, ty: MsgType, tx: u32, payload: &[u8]) -> Reply {
    let h = Header {
        ty: ty as u32,
        req_id: 42,
        tx_id: tx,
        len: payload.len() as u32,
    };
    xs.request(dom, h, payload)
}

/// The reply payload, or the error name as `Err`.
fn call(
    xs: &mut Xenstore,
    dom: DomId,
    ty: MsgType,
    tx: u32,
    payload: &[u8],
) -> Result<Vec<u8>, String> {
    let r = req(xs, dom, ty, tx, payload);
    assert_eq!(r.header.req_id, 42);
    assert_eq!(r.header.tx_id, tx);
    match r.error_name() {
        Some(e) => Err(String::from_utf8(e.to_vec()).unwrap()),
        None => {
            assert_eq!(r.header.ty, ty as u32);
            assert_eq!(r.header.len as usize, r.payload.len());
            Ok(r.payload)
        }
    }
}

fn write(
    xs: &mut Xenstore,
    dom: DomId,
    tx: u32,
    path: &str,
    value: &str,
) -> Result<Vec<u8>, String> {
    let mut p = path.as_bytes().to_vec();
    p.push(0);
    p.extend_from_slice(value.as_bytes());
    call(xs, dom, MsgType::Write, tx, &p)
}

fn z(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn read(xs: &mut Xenstore, dom: DomId, tx: u32, path: &str) -> Result<Vec<u8>, String> {
    call(xs, dom, MsgType::Read, tx, &z(path))
}

fn err(e: &str) -> Result<Vec<u8>, String> {
    Err(e.into())
}

fn ok() -> Result<Vec<u8>, String> {
    Ok(b"OK\0".to_vec())
}

fn start(xs: &mut Xenstore, dom: DomId) -> u32 {
    let id = call(xs, dom, MsgType::TransactionStart, 0, b"\0").unwrap();
    let id = core::str::from_utf8(id.strip_suffix(b"\0").unwrap()).unwrap();
    id.parse().unwrap()
}

fn end(xs: &mut Xenstore, dom: DomId, tx: u32, commit: bool) -> Result<Vec<u8>, String> {
    call(
        xs,
        dom,
        MsgType::TransactionEnd,
        tx,
        if commit { b"T\0" } else { b"F\0" },
    )
}

fn events(xs: &mut Xenstore, dom: DomId) -> Vec<(String, String)> {
    xs.take_events(dom)
        .into_iter()
        .map(|e| (e.path, e.token))
        .collect()
}

fn ev(path: &str, token: &str) -> (String, String) {
    (path.into(), token.into())
}

/// A store with domains 1 and 2 introduced (no watches yet).
fn two_domains() -> Xenstore {
    let mut xs = Xenstore::default();
    xs.introduce_domain(1);
    xs.introduce_domain(2);
    xs
}

#[test]
fn introduce_creates_a_private_home_with_domid() {
    let mut xs = two_domains();
    assert_eq!(read(&mut xs, 1, 0, "domid"), Ok(b"1".to_vec()));
    assert_eq!(
        read(&mut xs, 1, 0, "/local/domain/1/domid"),
        Ok(b"1".to_vec())
    );
    assert_eq!(
        call(&mut xs, 1, MsgType::GetPerms, 0, &z("/local/domain/1")),
        Ok(b"n1\0".to_vec())
    );
    assert!(xs.is_introduced(1));
    xs.tree().check_consistent().unwrap();
}

#[test]
fn guest_cannot_touch_another_domains_home() {
    let mut xs = two_domains();
    assert_eq!(read(&mut xs, 2, 0, "/local/domain/1/domid"), err("EACCES"));
    assert_eq!(
        write(&mut xs, 2, 0, "/local/domain/1/x", "v"),
        err("EACCES")
    );
    assert_eq!(
        call(&mut xs, 2, MsgType::Rm, 0, &z("/local/domain/1")),
        err("EACCES")
    );
    assert_eq!(
        call(&mut xs, 2, MsgType::Directory, 0, &z("/local/domain/1")),
        err("EACCES")
    );
    // Not even whether something is missing there.
    assert_eq!(read(&mut xs, 2, 0, "/local/domain/1/none"), err("EACCES"));
    // Dom0 bypasses the checks.
    assert_eq!(
        read(&mut xs, 0, 0, "/local/domain/1/domid"),
        Ok(b"1".to_vec())
    );
    assert_eq!(write(&mut xs, 0, 0, "/local/domain/1/x", "v"), ok());
}

#[test]
fn read_and_write_grants_work() {
    let mut xs = two_domains();
    write(&mut xs, 1, 0, "shared", "s").unwrap();
    write(&mut xs, 1, 0, "inbox", "").unwrap();
    let perms = |p: &str, s: &str| {
        let mut v = z(p);
        v.extend_from_slice(s.as_bytes());
        v
    };
    assert_eq!(
        call(
            &mut xs,
            1,
            MsgType::SetPerms,
            0,
            &perms("shared", "n1\0r2\0")
        ),
        ok()
    );
    assert_eq!(
        call(
            &mut xs,
            1,
            MsgType::SetPerms,
            0,
            &perms("inbox", "n1\0w2\0")
        ),
        ok()
    );
    assert_eq!(
        read(&mut xs, 2, 0, "/local/domain/1/shared"),
        Ok(b"s".to_vec())
    );
    assert_eq!(
        write(&mut xs, 2, 0, "/local/domain/1/shared", "x"),
        err("EACCES")
    );
    assert_eq!(write(&mut xs, 2, 0, "/local/domain/1/inbox", "m"), ok());
    assert_eq!(read(&mut xs, 2, 0, "/local/domain/1/inbox"), err("EACCES"));
    // A node domain 2 creates under the inbox is owned by domain 2.
    write(&mut xs, 2, 0, "/local/domain/1/inbox/new", "n").unwrap();
    assert_eq!(
        call(
            &mut xs,
            2,
            MsgType::GetPerms,
            0,
            &z("/local/domain/1/inbox/new")
        ),
        Ok(b"n2\0w2\0".to_vec())
    );
    // Bad permission strings.
    assert_eq!(
        call(&mut xs, 1, MsgType::SetPerms, 0, &perms("shared", "x1\0")),
        err("EINVAL")
    );
    assert_eq!(
        call(&mut xs, 1, MsgType::SetPerms, 0, &perms("shared", "")),
        err("EINVAL")
    );
}

#[test]
fn every_operation_answers_with_its_documented_payload() {
    let mut xs = two_domains();
    assert_eq!(write(&mut xs, 1, 0, "a/b", "val"), ok());
    assert_eq!(read(&mut xs, 1, 0, "a/b"), Ok(b"val".to_vec()));
    assert_eq!(call(&mut xs, 1, MsgType::Mkdir, 0, &z("a/c")), ok());
    assert_eq!(
        call(&mut xs, 1, MsgType::Directory, 0, &z("a")),
        Ok(b"b\0c\0".to_vec())
    );
    assert_eq!(call(&mut xs, 1, MsgType::Rm, 0, &z("a")), ok());
    assert_eq!(read(&mut xs, 1, 0, "a/b"), err("ENOENT"));
    assert_eq!(
        call(&mut xs, 1, MsgType::GetDomainPath, 0, b"7\0"),
        Ok(b"/local/domain/7\0".to_vec())
    );
    assert_eq!(
        call(&mut xs, 0, MsgType::IsDomainIntroduced, 0, b"1\0"),
        Ok(b"T\0".to_vec())
    );
    assert_eq!(
        call(&mut xs, 0, MsgType::IsDomainIntroduced, 0, b"9\0"),
        Ok(b"F\0".to_vec())
    );
    // Values are bytes, not text.
    let mut p = z("bin");
    p.extend_from_slice(&[0, 0xff, 0]);
    assert_eq!(call(&mut xs, 1, MsgType::Write, 0, &p), ok());
    assert_eq!(read(&mut xs, 1, 0, "bin"), Ok(vec![0, 0xff, 0]));
    // An empty value.
    assert_eq!(call(&mut xs, 1, MsgType::Write, 0, b"e\0"), ok());
    assert_eq!(read(&mut xs, 1, 0, "e"), Ok(Vec::new()));
}

#[test]
fn malformed_requests_get_einval_or_enosys() {
    let mut xs = two_domains();
    assert_eq!(call(&mut xs, 1, MsgType::Read, 0, b"domid"), err("EINVAL")); // no NUL
    assert_eq!(call(&mut xs, 1, MsgType::Read, 0, b"a\0b\0"), err("EINVAL"));
    assert_eq!(
        call(&mut xs, 1, MsgType::Read, 0, b"/a//b\0"),
        err("EINVAL")
    );
    assert_eq!(
        call(&mut xs, 1, MsgType::Write, 0, b"novalue"),
        err("EINVAL")
    );
    assert_eq!(
        call(&mut xs, 1, MsgType::Watch, 0, b"onlypath\0"),
        err("EINVAL")
    );
    assert_eq!(
        call(&mut xs, 1, MsgType::GetDomainPath, 0, b"x\0"),
        err("EINVAL")
    );
    assert_eq!(call(&mut xs, 1, MsgType::Rm, 0, b"/\0"), err("EINVAL"));
    assert_eq!(call(&mut xs, 0, MsgType::Rm, 0, b"/\0"), err("EINVAL"));
    assert_eq!(
        call(&mut xs, 1, MsgType::Control, 0, b"check\0"),
        err("ENOSYS")
    );
    assert_eq!(call(&mut xs, 1, MsgType::WatchEvent, 0, b""), err("ENOSYS"));
    let h = Header {
        ty: 20,
        req_id: 1,
        tx_id: 0,
        len: 0,
    };
    assert_eq!(xs.request(1, h, b"").error_name(), Some(&b"ENOSYS"[..]));
    assert_eq!(
        xs.handle_message(1, &[1, 2, 3]),
        Err(WireError::ShortHeader)
    );
}

#[test]
fn rm_of_missing_node_needs_its_parent() {
    let mut xs = two_domains();
    assert_eq!(call(&mut xs, 1, MsgType::Rm, 0, &z("none")), ok());
    assert_eq!(
        call(&mut xs, 1, MsgType::Rm, 0, &z("none/deeper")),
        err("ENOENT")
    );
}

#[test]
fn dom0_only_requests_are_refused_to_guests() {
    let mut xs = two_domains();
    for ty in [
        MsgType::Introduce,
        MsgType::Release,
        MsgType::IsDomainIntroduced,
        MsgType::SetTarget,
        MsgType::Resume,
    ] {
        assert_eq!(
            call(&mut xs, 1, ty, 0, b"3\x000\x000\x00"),
            err("EACCES"),
            "{ty:?}"
        );
    }
    assert_eq!(
        call(&mut xs, 0, MsgType::Introduce, 0, b"3\x00123\x001\x00"),
        ok()
    );
    assert!(xs.is_introduced(3));
    assert_eq!(
        call(&mut xs, 0, MsgType::Introduce, 0, b"0\x00123\x001\x00"),
        err("EINVAL")
    );
    assert_eq!(call(&mut xs, 0, MsgType::Release, 0, b"3\0"), ok());
    assert_eq!(call(&mut xs, 0, MsgType::Release, 0, b"3\0"), err("ENOENT"));
}

#[test]
fn guest_quotas_give_the_xenstored_errors() {
    let q = Quotas {
        nodes: 4,
        value_size: 16,
        watches: 2,
        transactions: 1,
    };
    let mut xs = Xenstore::new(q);
    xs.introduce_domain(1); // home + domid: 2 nodes
    let before = xs.tree().len();
    assert_eq!(write(&mut xs, 1, 0, "a/b/c", ""), err("ENOSPC"));
    assert_eq!(xs.tree().len(), before);
    assert_eq!(write(&mut xs, 1, 0, "a/b", ""), ok());
    assert_eq!(
        write(&mut xs, 1, 0, "a/b", "0123456789abcdefg"),
        err("ENOSPC")
    );
    assert_eq!(read(&mut xs, 1, 0, "a/b"), Ok(Vec::new()));
    assert_eq!(call(&mut xs, 1, MsgType::Watch, 0, b"a\0t1\0"), ok());
    assert_eq!(
        call(&mut xs, 1, MsgType::Watch, 0, b"a\0t1\0"),
        err("EEXIST")
    );
    assert_eq!(call(&mut xs, 1, MsgType::Watch, 0, b"a\0t2\0"), ok());
    assert_eq!(
        call(&mut xs, 1, MsgType::Watch, 0, b"a\0t3\0"),
        err("E2BIG")
    );
    let _t = start(&mut xs, 1);
    assert_eq!(
        call(&mut xs, 1, MsgType::TransactionStart, 0, b"\0"),
        err("ENOSPC")
    );
    // Domain 0 has no quota.
    assert_eq!(xs.write("/big", &[b'x'; 3000]), Ok(()));
    xs.tree().check_consistent().unwrap();
}

#[test]
fn transactions_together_cannot_exceed_the_node_quota() {
    let q = Quotas {
        nodes: 5,
        ..Quotas::default()
    };
    let mut xs = Xenstore::new(q);
    xs.introduce_domain(1); // home and domid
    call(&mut xs, 1, MsgType::Mkdir, 0, &z("x")).unwrap();
    call(&mut xs, 1, MsgType::Mkdir, 0, &z("y")).unwrap();
    let t1 = start(&mut xs, 1);
    let t2 = start(&mut xs, 1);
    write(&mut xs, 1, t1, "x/a", "").unwrap();
    write(&mut xs, 1, t2, "y/b", "").unwrap();
    assert_eq!(end(&mut xs, 1, t1, true), ok());
    // t2 does not conflict with t1, but one more node is over the quota.
    assert_eq!(end(&mut xs, 1, t2, true), err("ENOSPC"));
    assert_eq!(read(&mut xs, 1, 0, "y/b"), err("ENOENT"));
    assert_eq!(xs.tree().owned_by(1), 5);
}

#[test]
fn reply_over_the_payload_limit_is_e2big() {
    let mut xs = Xenstore::default();
    xs.write("/big", &[b'x'; 4097]).unwrap();
    assert_eq!(read(&mut xs, 0, 0, "/big"), err("E2BIG"));
}

#[test]
fn transaction_commit_applies_and_fires_watches_only_then() {
    let mut xs = two_domains();
    xs.watch("/local/domain/1/dev", "tok").unwrap();
    assert_eq!(events(&mut xs, 0), vec![ev("/local/domain/1/dev", "tok")]);
    let t = start(&mut xs, 1);
    assert_ne!(t, 0);
    write(&mut xs, 1, t, "dev/ref", "8").unwrap();
    write(&mut xs, 1, t, "dev/port", "9").unwrap();
    // Read-your-writes inside, invisible outside.
    assert_eq!(read(&mut xs, 1, t, "dev/ref"), Ok(b"8".to_vec()));
    assert_eq!(read(&mut xs, 1, 0, "dev/ref"), err("ENOENT"));
    assert_eq!(events(&mut xs, 0), vec![]);
    assert_eq!(end(&mut xs, 1, t, true), ok());
    assert_eq!(read(&mut xs, 1, 0, "dev/port"), Ok(b"9".to_vec()));
    let evs = events(&mut xs, 0);
    assert!(evs.contains(&ev("/local/domain/1/dev/ref", "tok")));
    assert!(evs.contains(&ev("/local/domain/1/dev/port", "tok")));
    // The id is gone.
    assert_eq!(end(&mut xs, 1, t, true), err("ENOENT"));
    xs.tree().check_consistent().unwrap();
}

#[test]
fn conflicting_commit_gets_eagain_and_changes_nothing() {
    let mut xs = two_domains();
    xs.write("/shared/state", b"1").unwrap();
    xs.set_perms("/shared", Perms::parse(b"b0\0").unwrap())
        .unwrap();
    xs.set_perms("/shared/state", Perms::parse(b"b0\0").unwrap())
        .unwrap();
    let t1 = start(&mut xs, 1);
    let t2 = start(&mut xs, 2);
    assert_eq!(read(&mut xs, 1, t1, "/shared/state"), Ok(b"1".to_vec()));
    write(&mut xs, 1, t1, "/shared/other", "a").unwrap();
    write(&mut xs, 2, t2, "/shared/state", "2").unwrap();
    assert_eq!(end(&mut xs, 2, t2, true), ok());
    assert_eq!(end(&mut xs, 1, t1, true), err("EAGAIN"));
    assert_eq!(xs.read("/shared/other"), Err(XsError::NoEnt));
    // The retry succeeds.
    let t1 = start(&mut xs, 1);
    write(&mut xs, 1, t1, "/shared/other", "a").unwrap();
    assert_eq!(end(&mut xs, 1, t1, true), ok());
    assert_eq!(xs.read("/shared/other"), Ok(b"a".to_vec()));
    xs.tree().check_consistent().unwrap();
}

#[test]
fn unrelated_writes_do_not_conflict() {
    let mut xs = two_domains();
    let t = start(&mut xs, 1);
    write(&mut xs, 1, t, "device/pci/0/magic", "7").unwrap();
    write(&mut xs, 2, 0, "state", "4").unwrap();
    xs.write("/local/domain/0/backend/pci/1/0/state", b"3")
        .unwrap();
    assert_eq!(end(&mut xs, 1, t, true), ok());
    assert_eq!(read(&mut xs, 1, 0, "device/pci/0/magic"), Ok(b"7".to_vec()));
}

#[test]
fn removal_in_a_transaction_conflicts_with_a_new_child() {
    let mut xs = two_domains();
    write(&mut xs, 1, 0, "d/a", "").unwrap();
    let t = start(&mut xs, 1);
    assert_eq!(call(&mut xs, 1, MsgType::Rm, t, &z("d")), ok());
    assert_eq!(read(&mut xs, 1, t, "d/a"), err("ENOENT"));
    write(&mut xs, 1, 0, "d/b", "").unwrap();
    assert_eq!(end(&mut xs, 1, t, true), err("EAGAIN"));
    assert_eq!(read(&mut xs, 1, 0, "d/b"), Ok(Vec::new()));
    let t = start(&mut xs, 1);
    call(&mut xs, 1, MsgType::Rm, t, &z("d")).unwrap();
    assert_eq!(end(&mut xs, 1, t, true), ok());
    assert_eq!(read(&mut xs, 1, 0, "d"), err("ENOENT"));
    xs.tree().check_consistent().unwrap();
}

#[test]
fn abort_discards_and_ids_are_checked() {
    let mut xs = two_domains();
    let t = start(&mut xs, 1);
    write(&mut xs, 1, t, "x", "1").unwrap();
    assert_eq!(end(&mut xs, 2, t, false), err("ENOENT")); // not its transaction
    assert_eq!(read(&mut xs, 2, t, "/local/domain/2/domid"), err("ENOENT"));
    assert_eq!(
        call(&mut xs, 1, MsgType::TransactionEnd, t, b"X\0"),
        err("EINVAL")
    );
    assert_eq!(
        call(&mut xs, 1, MsgType::TransactionStart, t, b"\0"),
        err("EBUSY")
    );
    assert_eq!(end(&mut xs, 1, t, false), ok());
    assert_eq!(read(&mut xs, 1, 0, "x"), err("ENOENT"));
    assert_eq!(read(&mut xs, 1, 77, "domid"), err("ENOENT"));
    assert_eq!(xs.transactions_of(1), 0);
}

#[test]
fn watches_fire_for_the_path_and_below_not_beside() {
    let mut xs = two_domains();
    xs.watch("/a/b", "t").unwrap();
    events(&mut xs, 0);
    xs.write("/a/b", b"1").unwrap();
    xs.write("/a/b/c/d", b"1").unwrap();
    xs.write("/a/bc", b"1").unwrap();
    xs.write("/a", b"1").unwrap();
    assert_eq!(
        events(&mut xs, 0),
        vec![ev("/a/b", "t"), ev("/a/b/c", "t"), ev("/a/b/c/d", "t")]
    );
    // Removing an ancestor reports the watched path itself.
    xs.rm("/a").unwrap();
    assert_eq!(events(&mut xs, 0), vec![ev("/a/b", "t")]);
    // /a is not at or below /a/b: only the new /a/b is reported.
    xs.mkdir("/a/b").unwrap();
    assert_eq!(events(&mut xs, 0), vec![ev("/a/b", "t")]);
    xs.set_perms("/a/b", Perms::owned_by(0, Access::None))
        .unwrap();
    assert_eq!(events(&mut xs, 0), vec![ev("/a/b", "t")]);
}

#[test]
fn relative_watch_reports_relative_paths_and_unwatch_stops_it() {
    let mut xs = two_domains();
    assert_eq!(call(&mut xs, 1, MsgType::Watch, 0, b"device\0tk\0"), ok());
    assert_eq!(events(&mut xs, 1), vec![ev("device", "tk")]);
    // Creating device/x creates device too: both are reported.
    write(&mut xs, 1, 0, "device/x", "1").unwrap();
    assert_eq!(
        events(&mut xs, 1),
        vec![ev("device", "tk"), ev("device/x", "tk")]
    );
    let msg = WatchEvent {
        path: "device/x".into(),
        token: "tk".into(),
    }
    .to_reply();
    assert_eq!(
        (msg.header.ty, msg.header.req_id, msg.header.tx_id),
        (15, 0, 0)
    );
    assert_eq!(msg.payload, b"device/x\0tk\0");
    assert_eq!(call(&mut xs, 1, MsgType::Unwatch, 0, b"device\0tk\0"), ok());
    assert_eq!(
        call(&mut xs, 1, MsgType::Unwatch, 0, b"device\0tk\0"),
        err("ENOENT")
    );
    write(&mut xs, 1, 0, "device/y", "1").unwrap();
    assert_eq!(events(&mut xs, 1), vec![]);
}

#[test]
fn reset_watches_drops_watches_and_transactions() {
    let mut xs = two_domains();
    call(&mut xs, 1, MsgType::Watch, 0, b"domid\0a\0").unwrap();
    let t = start(&mut xs, 1);
    events(&mut xs, 1);
    assert_eq!(call(&mut xs, 1, MsgType::ResetWatches, 0, b"\0"), ok());
    write(&mut xs, 1, 0, "domid", "1").unwrap();
    assert_eq!(events(&mut xs, 1), vec![]);
    assert_eq!(end(&mut xs, 1, t, true), err("ENOENT"));
}

#[test]
fn events_go_only_to_domains_that_may_read_the_node() {
    let mut xs = two_domains();
    // Domain 2 watches all of /local/domain.
    call(&mut xs, 2, MsgType::Watch, 0, b"/local/domain\0w\0").unwrap();
    events(&mut xs, 2);
    write(&mut xs, 1, 0, "private", "p").unwrap();
    assert_eq!(events(&mut xs, 2), vec![]);
    write(&mut xs, 1, 0, "public", "").unwrap();
    let mut p = z("public");
    p.extend_from_slice(b"n1\0r2\0");
    call(&mut xs, 1, MsgType::SetPerms, 0, &p).unwrap();
    // SET_PERMS fires with the old permissions (domain 2 could not read).
    assert_eq!(events(&mut xs, 2), vec![]);
    write(&mut xs, 1, 0, "public", "x").unwrap();
    assert_eq!(events(&mut xs, 2), vec![ev("/local/domain/1/public", "w")]);
}

#[test]
fn introduce_and_release_fire_special_watches_and_clean_up() {
    let mut xs = two_domains();
    xs.watch(INTRODUCE_DOMAIN, "i").unwrap();
    xs.watch(RELEASE_DOMAIN, "r").unwrap();
    assert_eq!(
        events(&mut xs, 0),
        vec![ev(INTRODUCE_DOMAIN, "i"), ev(RELEASE_DOMAIN, "r")]
    );
    xs.introduce_domain(5);
    assert_eq!(events(&mut xs, 0), vec![ev(INTRODUCE_DOMAIN, "i")]);
    call(&mut xs, 5, MsgType::Watch, 0, b"domid\0t\0").unwrap();
    let _t = start(&mut xs, 5);
    xs.release_domain(5);
    assert_eq!(events(&mut xs, 0), vec![ev(RELEASE_DOMAIN, "r")]);
    assert_eq!(events(&mut xs, 5), vec![]);
    assert_eq!(xs.transactions_of(5), 0);
    assert_eq!(xs.read("/local/domain/5"), Err(XsError::NoEnt));
    assert_eq!(xs.tree().owned_by(5), 0);
    assert!(!xs.is_introduced(5));
    xs.tree().check_consistent().unwrap();
}

#[test]
fn dom0_helpers_and_directory() {
    let mut xs = Xenstore::default();
    xs.write("/local/domain/0/backend/pci/1/0/state", b"1")
        .unwrap();
    xs.write("/local/domain/0/backend/pci/1/0/num_devs", b"1")
        .unwrap();
    assert_eq!(
        xs.directory("/local/domain/0/backend/pci/1/0").unwrap(),
        vec!["num_devs", "state"]
    );
    assert_eq!(xs.unwatch("/x", "t"), Err(XsError::NoEnt));
    assert_eq!(xs.read("bad//path"), Err(XsError::Inval));
}

#[test]
fn wire_message_round_trip_through_the_facade() {
    let mut xs = two_domains();
    let payload = b"domid\0";
    let mut bytes = Header {
        ty: MsgType::Read as u32,
        req_id: 9,
        tx_id: 0,
        len: payload.len() as u32,
    }
    .to_bytes()
    .to_vec();
    bytes.extend_from_slice(payload);
    let reply = xs.handle_message(1, &bytes).unwrap().to_bytes();
    let (h, p) = parse_request(&reply).unwrap();
    assert_eq!((h.ty, h.req_id, p), (2, 9, &b"1"[..]));
    bytes.push(0);
    assert!(xs.handle_message(1, &bytes).is_err());
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    fn any_path() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-c]{1,2}(/[a-c]{1,2}){0,3}",
            "/local/domain/[0-3](/[a-c]{1,2}){0,3}",
            "/[a-c](/[a-c]){0,2}",
            Just(String::from("@releaseDomain")),
            Just(String::from("T")),
            Just(String::from("F")),
        ]
    }

    fn any_request() -> impl Strategy<Value = (DomId, u32, u32, Vec<u8>)> {
        let structured = (0u16..4, 0u32..23, 0u32..4, any_path(), "[a-c0-9\0]{0,6}").prop_map(
            |(d, ty, tx, p, rest)| {
                let mut v = p.into_bytes();
                v.push(0);
                v.extend_from_slice(rest.as_bytes());
                (d, ty, tx, v)
            },
        );
        let raw = (
            0u16..4,
            0u32..30,
            0u32..4,
            proptest::collection::vec(any::<u8>(), 0..40),
        );
        prop_oneof![structured, raw]
    }

    proptest! {
        #[test]
        fn arbitrary_requests_never_panic_and_keep_the_tree_consistent(
            reqs in proptest::collection::vec(any_request(), 1..60),
        ) {
            let mut xs = Xenstore::new(Quotas { nodes: 20, value_size: 8, watches: 3, transactions: 2 });
            xs.introduce_domain(1);
            xs.introduce_domain(2);
            for (dom, ty, tx, payload) in reqs {
                let h = Header { ty, req_id: 1, tx_id: tx, len: payload.len() as u32 };
                let r = xs.request(dom, h, &payload);
                prop_assert!(r.payload.len() <= PAYLOAD_MAX);
                prop_assert_eq!(r.header.len as usize, r.payload.len());
                xs.take_events(dom);
                if let Err(e) = xs.tree().check_consistent() {
                    return Err(TestCaseError::fail(e));
                }
            }
        }

        /// A transaction nobody interferes with commits to the same tree
        /// as running its operations directly.
        #[test]
        fn an_undisturbed_transaction_equals_direct_operations(
            ops in proptest::collection::vec((0u8..4, any_path(), "[a-c]{0,3}"), 1..20),
        ) {
            let mut direct = two_domains();
            let mut txd = two_domains();
            let t = start(&mut txd, 1);
            for (op, path, value) in &ops {
                let (ty, payload) = match op {
                    0 => (MsgType::Write, [z(path), value.as_bytes().to_vec()].concat()),
                    1 => (MsgType::Mkdir, z(path)),
                    2 => (MsgType::Rm, z(path)),
                    _ => (MsgType::SetPerms, [z(path), b"n1\0r2\0".to_vec()].concat()),
                };
                let a = call(&mut direct, 1, ty, 0, &payload);
                let b = call(&mut txd, 1, ty, t, &payload);
                prop_assert_eq!(a, b);
            }
            prop_assert_eq!(end(&mut txd, 1, t, true), ok());
            let dump = |xs: &Xenstore| -> Vec<(String, Vec<u8>, Vec<u8>)> {
                xs.tree()
                    .iter()
                    .map(|(p, n)| (p.into(), n.value.clone(), n.perms.to_wire()))
                    .collect()
            };
            prop_assert_eq!(dump(&direct), dump(&txd));
            txd.tree().check_consistent().map_err(TestCaseError::fail)?;
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut xs = Xenstore::default();
            let _ = xs.handle_message(1, &bytes);
        }
    }
}
