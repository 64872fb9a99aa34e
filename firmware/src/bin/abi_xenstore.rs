//! Xenstore as xenstored answers a guest (`io/xs_wire.h`): the ring from
//! `HVM_PARAM_STORE_PFN`/`STORE_EVTCHN`, the home from GET_DOMAIN_PATH
//! with its `domid` and `name`, write/read/directory/mkdir/rm, relative
//! paths, permissions, watches (the first event fires at once for the
//! path itself), transactions (isolation, abort, EAGAIN on conflict and a
//! retry that commits), and the errors: ENOENT, EACCES for other
//! domains' homes, unknown transactions and message types.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::fmt::Write;

use firmware::xen::layout::xenstore_ring as xr;
use firmware::xen::xenstore::{msg, Client, XsError};
use firmware::xen::{self, errno::*, hvm};
use firmware::{hypervisor, println, report, Gpa};

firmware::guest_main!(main);

/// Yields to wait for each answer.
const YIELDS: u32 = 200_000;
/// The domain name the scenario gives this guest.
const NAME: &str = "abi_xenstore";

/// A path built on the stack.
struct Path {
    buf: [u8; 256],
    len: usize,
}

impl Path {
    fn new(args: core::fmt::Arguments<'_>) -> Path {
        let mut p = Path {
            buf: [0; 256],
            len: 0,
        };
        let _ = p.write_fmt(args);
        p
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl Write for Path {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

macro_rules! path {
    ($($arg:tt)*) => { Path::new(format_args!($($arg)*)) };
}

fn main(_start_info: Gpa) -> ! {
    println!("abi_xenstore: the xenstore ring protocol");
    if !hypervisor::is_xen() {
        report::skip("xenstore", "no Xen CPUID leaves");
        report::finish();
    }
    let me = xen::domid().unwrap_or(0);
    report::check_eq(
        "set_param(STORE_PFN) by the guest is -EPERM",
        xen::set_param_of(xen::layout::DOMID_SELF, hvm::PARAM_STORE_PFN, 0x1234),
        -EPERM,
    );
    let mut xs = match Client::open(YIELDS) {
        Ok(xs) => xs,
        Err((param, rc)) => {
            println!("abi_xenstore: HVM param {param}: {rc}");
            report::check("STORE_PFN and STORE_EVTCHN", false);
            report::finish();
        }
    };
    println!(
        "abi_xenstore: ring at {:#x}, port {}, server_features {:#x}, connection {}",
        xs.page.addr(),
        xs.port,
        xs.page
            .u32(xr::SERVER_FEATURES)
            .load(core::sync::atomic::Ordering::SeqCst),
        xs.page
            .u32(xr::CONNECTION)
            .load(core::sync::atomic::Ordering::SeqCst)
    );
    let id = path!("{me}");
    let home = match xs.request(msg::GET_DOMAIN_PATH, 0, &[id.as_bytes(), b"\0"]) {
        Ok(r) => path!("{}", r.text()),
        Err(e) => {
            println!("abi_xenstore: GET_DOMAIN_PATH: {e:?}");
            path!("/local/domain/{me}")
        }
    };
    report::check_eq(
        "GET_DOMAIN_PATH is /local/domain/<domid>",
        home.as_str(),
        path!("/local/domain/{me}").as_str(),
    );
    let home = home.as_str();
    notifications(&mut xs, home);
    basics(&mut xs, home, me);
    permissions(&mut xs, home, me);
    watches(&mut xs, home);
    transactions(&mut xs, home);
    errors(&mut xs, me);
    report::finish()
}

trait AsBytes {
    fn as_bytes(&self) -> &[u8];
}

impl AsBytes for Path {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

fn text(r: Result<xen::xenstore::Reply, XsError>) -> Result<Path, XsError> {
    r.map(|r| path!("{}", r.text()))
}

fn read(xs: &mut Client, tx: u32, p: &str) -> Result<Path, XsError> {
    text(xs.read(tx, p))
}

fn eq(got: Result<Path, XsError>, want: &str) -> bool {
    match got {
        Ok(p) if p.as_str() == want => true,
        other => {
            println!(
                "  got {:?}, expected {want:?}",
                other.as_ref().map(|p| p.as_str())
            );
            false
        }
    }
}

fn err(got: Result<Path, XsError>, name: &str) -> bool {
    match got {
        Err(e) if e.is(name) => true,
        other => {
            println!(
                "  got {:?}, expected {name}",
                other.as_ref().map(|p| p.as_str())
            );
            false
        }
    }
}

fn basics(xs: &mut Client, home: &str, me: u16) {
    let domid = path!("{me}");
    report::check(
        "read <home>/domid",
        eq(read(xs, 0, path!("{home}/domid").as_str()), domid.as_str()),
    );
    report::check(
        "read <home>/name",
        eq(read(xs, 0, path!("{home}/name").as_str()), NAME),
    );
    report::check(
        "a relative path is under the home",
        eq(read(xs, 0, "name"), NAME),
    );

    let node = path!("{home}/data/abi-test");
    report::check_eq(
        "write <home>/data/abi-test",
        xs.write(0, node.as_str(), b"hello"),
        Ok(()),
    );
    report::check("read it back", eq(read(xs, 0, node.as_str()), "hello"));
    report::check_eq(
        "overwrite with an empty value",
        xs.write(0, node.as_str(), b""),
        Ok(()),
    );
    report::check("read the empty value", eq(read(xs, 0, node.as_str()), ""));
    let dir = xs.on_path(msg::DIRECTORY, 0, path!("{home}/data").as_str());
    report::check(
        "directory <home>/data lists abi-test",
        matches!(&dir, Ok(r) if r.strings().any(|s| s == "abi-test")),
    );
    let sub = path!("{home}/data/abi-dir/a/b");
    report::check(
        "mkdir makes the missing parents",
        xs.on_path(msg::MKDIR, 0, sub.as_str()).is_ok(),
    );
    report::check(
        "a new directory reads empty",
        eq(read(xs, 0, sub.as_str()), ""),
    );
    report::check(
        "mkdir of an existing node is fine",
        xs.on_path(msg::MKDIR, 0, sub.as_str()).is_ok(),
    );
    let top = path!("{home}/data/abi-dir");
    report::check(
        "rm removes a subtree",
        xs.on_path(msg::RM, 0, top.as_str()).is_ok(),
    );
    report::check(
        "a removed node is ENOENT",
        err(read(xs, 0, sub.as_str()), "ENOENT"),
    );
    report::check(
        "rm of a missing node whose parent exists is OK (as xenstored)",
        eq(text(xs.on_path(msg::RM, 0, top.as_str())), "OK"),
    );
    report::check(
        "rm of a node whose parent is missing is ENOENT",
        err(text(xs.on_path(msg::RM, 0, sub.as_str())), "ENOENT"),
    );
    report::check(
        "read of a missing node is ENOENT",
        err(read(xs, 0, path!("{home}/data/none").as_str()), "ENOENT"),
    );
}

fn permissions(xs: &mut Client, home: &str, me: u16) {
    let node = path!("{home}/data/abi-perm");
    let _ = xs.write(0, node.as_str(), b"p");
    let perms = xs.on_path(msg::GET_PERMS, 0, node.as_str());
    let owner = path!("{me}");
    report::check(
        "get_perms: the guest owns a node it created",
        matches!(&perms, Ok(r) if r.strings().next().is_some_and(|p| &p[1..] == owner.as_str())),
    );
    if let Ok(r) = &perms {
        println!("abi_xenstore: perms of {}: {:?}", node.as_str(), r.text());
    }
    let set = path!("r{me}");
    let rc = xs.request(
        msg::SET_PERMS,
        0,
        &[node.as_bytes(), b"\0", set.as_bytes(), b"\0", b"n0\0"],
    );
    report::check("set_perms r<self>, n0", rc.is_ok());
    let perms = xs.on_path(msg::GET_PERMS, 0, node.as_str());
    report::check(
        "get_perms reads them back",
        matches!(&perms, Ok(r) if r.strings().eq([set.as_str(), "n0"])),
    );
    let rc = xs.request(msg::SET_PERMS, 0, &[node.as_bytes(), b"\0", b"x1\0"]);
    report::check(
        "set_perms with a bad permission letter is EINVAL",
        matches!(rc, Err(e) if e.is("EINVAL")),
    );
    let _ = xs.on_path(msg::RM, 0, node.as_str());
}

fn watches(xs: &mut Client, home: &str) {
    let node = path!("{home}/data/abi-watch");
    let _ = xs.on_path(msg::RM, 0, node.as_str());
    report::check_eq(
        "watch <home>/data/abi-watch",
        xs.watch(msg::WATCH, node.as_str(), "tok1"),
        Ok(()),
    );
    let first = xs.watch_event(YIELDS);
    report::check(
        "the first watch event fires at once for the path itself",
        matches!(&first, Some(r) if r.strings().eq([node.as_str(), "tok1"])),
    );
    let _ = xs.write(0, node.as_str(), b"1");
    let ev = xs.watch_event(YIELDS);
    report::check(
        "a write fires the watch with path and token",
        matches!(&ev, Some(r) if r.strings().eq([node.as_str(), "tok1"])),
    );
    let child = path!("{}/child", node.as_str());
    let _ = xs.write(0, child.as_str(), b"2");
    let ev = xs.watch_event(YIELDS);
    report::check(
        "a write below the watched path fires with the child's path",
        matches!(&ev, Some(r) if r.strings().eq([child.as_str(), "tok1"])),
    );
    report::check(
        "watching the same path and token twice is EEXIST",
        matches!(xs.watch(msg::WATCH, node.as_str(), "tok1"), Err(e) if e.is("EEXIST")),
    );
    report::check_eq(
        "unwatch",
        xs.watch(msg::UNWATCH, node.as_str(), "tok1"),
        Ok(()),
    );
    let _ = xs.write(0, node.as_str(), b"3");
    let _ = xs.read(0, node.as_str());
    report::check_eq(
        "no event after unwatch",
        (xs.queued_events(), xs.watch_event(1000).is_some()),
        (0, false),
    );
    report::check(
        "unwatch of an unknown watch is ENOENT",
        matches!(xs.watch(msg::UNWATCH, node.as_str(), "tok1"), Err(e) if e.is("ENOENT")),
    );
    // A relative watch path: events name the path relative too.
    report::check_eq(
        "watch a relative path",
        xs.watch(msg::WATCH, "data/abi-rel", "rel"),
        Ok(()),
    );
    let first = xs.watch_event(YIELDS);
    report::check(
        "the events of a relative watch carry the relative path",
        matches!(&first, Some(r) if r.strings().eq(["data/abi-rel", "rel"])),
    );
    let _ = xs.watch(msg::UNWATCH, "data/abi-rel", "rel");
    // XS_RESET_WATCHES drops every watch of the connection.
    report::check_eq(
        "watch again",
        xs.watch(msg::WATCH, node.as_str(), "tok2"),
        Ok(()),
    );
    let _ = xs.watch_event(YIELDS);
    report::check(
        "XS_RESET_WATCHES",
        xs.request(msg::RESET_WATCHES, 0, &[b"\0"]).is_ok(),
    );
    let _ = xs.write(0, node.as_str(), b"4");
    let _ = xs.read(0, node.as_str());
    report::check_eq(
        "no event after XS_RESET_WATCHES",
        (xs.queued_events(), xs.watch_event(1000).is_some()),
        (0, false),
    );
    let _ = xs.on_path(msg::RM, 0, node.as_str());
}

fn transactions(xs: &mut Client, home: &str) {
    let node = path!("{home}/data/abi-tx");
    let other = path!("{home}/data/abi-tx2");
    let _ = xs.write(0, node.as_str(), b"0");
    let Ok(t) = xs.start() else {
        report::check("transaction_start", false);
        return;
    };
    report::check("transaction_start gives a non-zero id", t != 0);
    let _ = xs.write(t, node.as_str(), b"1");
    report::check(
        "a transaction sees its own write",
        eq(read(xs, t, node.as_str()), "1"),
    );
    report::check(
        "outside, the old value stays until commit",
        eq(read(xs, 0, node.as_str()), "0"),
    );
    report::check_eq("commit", xs.end(t, true), Ok(()));
    report::check(
        "after commit the new value is visible",
        eq(read(xs, 0, node.as_str()), "1"),
    );

    if let Ok(t) = xs.start() {
        let _ = xs.write(t, other.as_str(), b"x");
        report::check_eq("abort", xs.end(t, false), Ok(()));
        report::check(
            "an aborted write is not there",
            err(read(xs, 0, other.as_str()), "ENOENT"),
        );
    }

    // A transaction and a plain write to what it read: EAGAIN, then a
    // retry commits.
    let mut tries = 0;
    let mut conflicts = 0;
    let committed = loop {
        tries += 1;
        let Ok(t) = xs.start() else { break false };
        let v = read(xs, t, node.as_str());
        if tries == 1 {
            let _ = xs.write(0, node.as_str(), b"outside");
        }
        let next = if v.is_ok() { b"2" } else { b"?" };
        let _ = xs.write(t, node.as_str(), next);
        match xs.end(t, true) {
            Ok(()) => break true,
            Err(e) if e.is("EAGAIN") && tries < 5 => conflicts += 1,
            Err(e) => {
                println!("abi_xenstore: commit try {tries}: {e:?}");
                break false;
            }
        }
    };
    report::check_eq(
        "a plain write conflicts: EAGAIN once, then the retry commits",
        (committed, conflicts),
        (true, 1),
    );
    report::check(
        "the retried value is there",
        eq(read(xs, 0, node.as_str()), "2"),
    );

    // Two transactions on the same node: the second commit fails.
    if let (Ok(t1), Ok(t2)) = (xs.start(), xs.start()) {
        let _ = read(xs, t1, node.as_str());
        let _ = read(xs, t2, node.as_str());
        let _ = xs.write(t1, node.as_str(), b"t1");
        let _ = xs.write(t2, node.as_str(), b"t2");
        report::check_eq(
            "the first of two transactions commits",
            xs.end(t1, true),
            Ok(()),
        );
        report::check(
            "the second is EAGAIN",
            matches!(xs.end(t2, true), Err(e) if e.is("EAGAIN")),
        );
        report::check(
            "the first one's value stays",
            eq(read(xs, 0, node.as_str()), "t1"),
        );
    } else {
        report::check("two transactions at once", false);
    }
    report::check(
        "ending an unknown transaction is ENOENT",
        matches!(xs.end(0x7fff_0000, true), Err(e) if e.is("ENOENT")),
    );
    report::check(
        "a read in an unknown transaction is ENOENT",
        err(read(xs, 0x7fff_0000, node.as_str()), "ENOENT"),
    );
    let _ = xs.on_path(msg::RM, 0, node.as_str());
}

fn errors(xs: &mut Client, me: u16) {
    for dom in [0u16, 0x7000] {
        if dom == me {
            continue;
        }
        let name = path!("/local/domain/{dom}/name");
        println!("abi_xenstore: {}", name.as_str());
        report::check(
            "reading another domain's home is EACCES",
            err(read(xs, 0, name.as_str()), "EACCES"),
        );
        report::check(
            "writing into another domain's home is EACCES",
            matches!(xs.write(0, path!("/local/domain/{dom}/data/x").as_str(), b"x"), Err(e) if e.is("EACCES")),
        );
    }
    report::check(
        "listing /local/domain is EACCES",
        err(
            text(xs.on_path(msg::DIRECTORY, 0, "/local/domain")),
            "EACCES",
        ),
    );
    report::check(
        "an unknown message type is ENOSYS (as xenstored)",
        err(text(xs.request(0x99, 0, &[b"x\0"])), "ENOSYS"),
    );
    report::check(
        "a path with a bad character is EINVAL",
        err(read(xs, 0, "/local/bad path?"), "EINVAL"),
    );
    report::check(
        "the ring still answers after the errors",
        eq(read(xs, 0, "name"), NAME),
    );
}

/// The server notifies the store port when it has answered: with
/// shared_info mapped, the port unmasked and the upcall set up, a request
/// raises an event on it.
fn notifications(xs: &mut Client, home: &str) {
    use firmware::xen::{evtchn, shared};
    if shared::map() != 0 || evtchn::setup_upcall() != 0 {
        report::check("shared_info and the upcall for store events", false);
        return;
    }
    report::check_eq("unmask(store port)", evtchn::unmask(xs.port), 0);
    evtchn::wait_until(100, || false);
    let before = evtchn::events(xs.port);
    let r = xs.read(0, path!("{home}/name").as_str());
    report::check("a read answers", r.is_ok());
    report::check(
        "the server's answer raises an event on the store port",
        evtchn::wait_until(100_000, || evtchn::events(xs.port) > before),
    );
}
