//! `attack=xenstore`: hostile traffic on the guest's own xenstore ring:
//! oversized and malformed messages, deep and long paths, the node, value,
//! transaction and watch quotas run out, writes and permission changes on
//! the victim's nodes, privileged requests, transactions left open and a
//! watch flood; after each the store must still answer. The expected
//! answers are xenstored's (docs/misc/xenstore.txt, Xen's `xenstored`).

use core::fmt::{self, Write};
use core::sync::atomic::Ordering;

use firmware::report::Table;
use firmware::xen::evtchn;
use firmware::xen::layout::xenstore_ring as xr;
use firmware::xen::xenstore::{msg, Client, Reply, XsError};
use firmware::{hypervisor, println};

use super::Setup;

/// `struct xenstore_domain_interface` values (`io/xs_wire.h`).
const RECONNECT: u32 = 1;
const ERROR_PROTO: u32 = 3;
/// Privileged requests (`xsd_sockmsg_type`).
const INTRODUCE: u32 = 8;
const RELEASE: u32 = 9;
const SET_TARGET: u32 = 19;

type T = Table<64>;

/// Text up to `N` bytes, built with `write!`.
struct Text<const N: usize>([u8; N], usize);

impl<const N: usize> Text<N> {
    fn new(args: fmt::Arguments<'_>) -> Self {
        let mut t = Text([0; N], 0);
        let _ = t.write_fmt(args);
        t
    }
    fn bytes(&self) -> &[u8] {
        &self.0[..self.1]
    }
    fn push(&mut self, b: &[u8]) {
        for &c in b {
            if self.1 < N {
                self.0[self.1] = c;
                self.1 += 1;
            }
        }
    }
}

impl<const N: usize> Write for Text<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s.as_bytes());
        Ok(())
    }
}

/// A request's answer as the table shows it.
struct Answer<'a>(&'a Result<Reply, XsError>);

impl fmt::Display for Answer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Ok(_) => f.write_str("OK"),
            Err(XsError::Remote(n)) => f.write_str(n.as_str()),
            Err(e) => write!(f, "{e:?}"),
        }
    }
}

fn err_is(r: &Result<Reply, XsError>, name: &str) -> bool {
    matches!(r, Err(XsError::Remote(n)) if n.as_str() == name)
}

/// A case whose answer must be the error `want`.
fn expect_err(t: &mut T, case: &'static str, r: Result<Reply, XsError>, want: &str) {
    t.case(case, format_args!("{}", Answer(&r)), err_is(&r, want));
}

/// A request with one NUL-terminated path and an optional value.
fn req(
    xs: &mut Client,
    ty: u32,
    tx: u32,
    path: &[u8],
    value: Option<&[u8]>,
) -> Result<Reply, XsError> {
    match value {
        Some(v) => xs.request(ty, tx, &[path, b"\0", v]),
        None => xs.request(ty, tx, &[path, b"\0"]),
    }
}

pub fn run(s: &Setup) {
    let mut t = T::new("attack-xenstore");
    let Ok(mut xs) = Client::open(5000) else {
        t.case("the xenstore ring", format_args!("absent"), false);
        t.print();
        return;
    };
    let v = s.victim;
    println!(
        "attack_abi: xenstore attacks from d{} on d{v}'s nodes",
        s.me
    );

    // Malformed messages.
    let r = xs.request(999, 0, &[b"name\0"]);
    expect_err(&mut t, "message type 999", r, "ENOSYS");
    let r = xs.request(msg::READ, 0, &[b"name"]);
    expect_err(&mut t, "read without the NUL", r, "EINVAL");
    let r = xs.request(msg::WRITE, 0, &[b"attack"]);
    expect_err(&mut t, "write without path and value apart", r, "EINVAL");
    let r = xs.request(msg::READ, 0, &[b"a//b\0"]);
    expect_err(&mut t, "path with an empty component", r, "EINVAL");
    let r = req(&mut xs, msg::READ, 0xdead_beef, b"name", None);
    expect_err(&mut t, "read in transaction 0xdeadbeef", r, "ENOENT");

    // Deep and long paths.
    let mut deep = Text::<512>::new(format_args!("data/deep"));
    for _ in 0..100 {
        deep.push(b"/d");
    }
    let w = req(&mut xs, msg::WRITE, 0, deep.bytes(), Some(b"bottom"));
    let r = req(&mut xs, msg::READ, 0, deep.bytes(), None);
    let ok = w.is_ok() && r.as_ref().is_ok_and(|r| r.body() == b"bottom");
    t.case(
        "a path 101 nodes deep",
        format_args!("write {}, read {}", Answer(&w), Answer(&r)),
        ok,
    );
    let r = req(&mut xs, msg::RM, 0, b"data/deep", None);
    t.case(
        "rm of the deep tree",
        format_args!("{}", Answer(&r)),
        r.is_ok(),
    );
    let mut long = Text::<2200>::new(format_args!("data/"));
    for _ in 0..2100 {
        long.push(b"l");
    }
    let r = req(&mut xs, msg::WRITE, 0, long.bytes(), Some(b"x"));
    expect_err(&mut t, "relative path of 2100 bytes", r, "EINVAL");
    let mut abs = Text::<3300>::new(format_args!("/local/domain/{}/", s.me));
    for _ in 0..3100 {
        abs.push(b"a");
    }
    let r = req(&mut xs, msg::WRITE, 0, abs.bytes(), Some(b"x"));
    expect_err(&mut t, "absolute path over 3072 bytes", r, "EINVAL");

    // The victim's nodes.
    let vp = |leaf: &str| Text::<64>::new(format_args!("/local/domain/{v}{leaf}"));
    let r = req(&mut xs, msg::WRITE, 0, vp("/name").bytes(), Some(b"pwned"));
    expect_err(&mut t, "write the victim's name", r, "EACCES");
    let r = req(&mut xs, msg::WRITE, 0, vp("/data/evil").bytes(), Some(b"x"));
    expect_err(&mut t, "write under the victim's data", r, "EACCES");
    let r = req(&mut xs, msg::MKDIR, 0, vp("/evil").bytes(), None);
    expect_err(&mut t, "mkdir in the victim's home", r, "EACCES");
    let r = req(&mut xs, msg::RM, 0, vp("").bytes(), None);
    expect_err(&mut t, "rm the victim's home", r, "EACCES");
    let me = Text::<16>::new(format_args!("b{}", s.me));
    let r = xs.request(
        msg::SET_PERMS,
        0,
        &[vp("").bytes(), b"\0", me.bytes(), b"\0"],
    );
    expect_err(&mut t, "set_perms on the victim's home", r, "EACCES");
    let r = req(&mut xs, msg::READ, 0, vp("/name").bytes(), None);
    expect_err(&mut t, "read the victim's name", r, "EACCES");
    let r = req(&mut xs, msg::WATCH, 0, vp("").bytes(), Some(b"victim\0"));
    t.case(
        "watch the victim's home",
        format_args!("{}", Answer(&r)),
        r.is_ok(),
    );
    let r = req(
        &mut xs,
        msg::GET_DOMAIN_PATH,
        0,
        Text::<8>::new(format_args!("{v}")).bytes(),
        None,
    );
    let want = vp("");
    let ok = r
        .as_ref()
        .is_ok_and(|r| r.body().strip_suffix(b"\0").unwrap_or(r.body()) == want.bytes());
    t.case(
        "get_domain_path of the victim",
        format_args!("{}", Answer(&r)),
        ok,
    );
    let r = xs.request(INTRODUCE, 0, &[b"7\0", b"4096\0", b"5\0"]);
    expect_err(&mut t, "introduce a domain", r, "EACCES");
    let r = req(
        &mut xs,
        RELEASE,
        0,
        Text::<8>::new(format_args!("{v}")).bytes(),
        None,
    );
    expect_err(&mut t, "release the victim", r, "EACCES");
    let r = xs.request(
        SET_TARGET,
        0,
        &[
            Text::<8>::new(format_args!("{}\0", s.me)).bytes(),
            Text::<8>::new(format_args!("{v}\0")).bytes(),
        ],
    );
    expect_err(&mut t, "set_target on the victim", r, "EACCES");

    // Quotas.
    let mut big = Text::<3000>::new(format_args!(""));
    for _ in 0..3000 {
        big.push(b"v");
    }
    let r = req(&mut xs, msg::WRITE, 0, b"data/big", Some(big.bytes()));
    expect_err(&mut t, "a 3000-byte value", r, "ENOSPC");
    let mut made = 0;
    let mut last = Err(XsError::Timeout);
    while made < 1500 {
        let p = Text::<24>::new(format_args!("data/q/{made}"));
        last = req(&mut xs, msg::WRITE, 0, p.bytes(), Some(b"1"));
        if last.is_err() {
            break;
        }
        made += 1;
    }
    t.case(
        "nodes until the quota",
        format_args!("{} after {made}", Answer(&last)),
        err_is(&last, "ENOSPC") && made > 100,
    );
    let r = req(&mut xs, msg::RM, 0, b"data/q", None);
    let w = req(&mut xs, msg::WRITE, 0, b"data/q", Some(b"again"));
    t.case(
        "rm frees the quota",
        format_args!("rm {}, write {}", Answer(&r), Answer(&w)),
        r.is_ok() && w.is_ok(),
    );
    let mut open = 0;
    let mut last = Err(XsError::Timeout);
    while open < 50 {
        last = xs.request(msg::TRANSACTION_START, 0, &[b"\0"]);
        if last.is_err() {
            break;
        }
        open += 1;
    }
    t.case(
        "transactions never ended",
        format_args!("{} after {open}", Answer(&last)),
        err_is(&last, "ENOSPC") && open > 0,
    );
    let r = req(&mut xs, msg::READ, 0, b"data/q", None);
    t.case(
        "a read beside the open transactions",
        format_args!("{}", Answer(&r)),
        r.as_ref().is_ok_and(|r| r.body() == b"again"),
    );
    let mut watches = 0;
    let mut last = Err(XsError::Timeout);
    while watches < 300 {
        let token = Text::<16>::new(format_args!("t{watches}\0"));
        last = req(&mut xs, msg::WATCH, 0, b"data/flood", Some(token.bytes()));
        if last.is_err() {
            break;
        }
        watches += 1;
    }
    t.case(
        "watches until the quota",
        format_args!("{} after {watches}", Answer(&last)),
        err_is(&last, "E2BIG") && watches > 0,
    );
    let mut failed = 0;
    for i in 0..40 {
        let v = Text::<16>::new(format_args!("{i}"));
        if req(&mut xs, msg::WRITE, 0, b"data/flood/x", Some(v.bytes())).is_err() {
            failed += 1;
        }
    }
    let r = req(&mut xs, msg::READ, 0, b"data/flood/x", None);
    t.case(
        "40 writes firing every watch",
        format_args!("{failed} failed, read back {}", Answer(&r)),
        failed == 0 && r.as_ref().is_ok_and(|r| r.body() == b"39"),
    );
    let r = xs.request(msg::RESET_WATCHES, 0, &[b"\0"]);
    t.case(
        "reset_watches after the flood",
        format_args!("{}", Answer(&r)),
        r.is_ok(),
    );

    // Oversized: a header announcing 4097 bytes breaks the connection
    // (XENSTORE_ERROR_PROTO); reconnecting brings it back.
    let mut hdr = [0u8; 16];
    hdr[0..4].copy_from_slice(&msg::WRITE.to_le_bytes());
    hdr[12..16].copy_from_slice(&4097u32.to_le_bytes());
    let sent = xs.send_bytes(&hdr);
    let err = wait(&xs, xr::ERROR, |e| e != 0);
    t.case(
        "a message of 4097 bytes",
        format_args!("ring error {err}"),
        sent.is_ok() && err == ERROR_PROTO,
    );
    xs.page
        .u32(xr::CONNECTION)
        .store(RECONNECT, Ordering::SeqCst);
    evtchn::send(xs.port);
    let conn = wait(&xs, xr::CONNECTION, |c| c != RECONNECT);
    let w = req(&mut xs, msg::WRITE, 0, b"data/alive", Some(b"yes"));
    let r = req(&mut xs, msg::READ, 0, b"data/alive", None);
    t.case(
        "reconnect, then write and read",
        format_args!(
            "connection {conn}, write {}, read {}",
            Answer(&w),
            Answer(&r)
        ),
        conn == 0 && w.is_ok() && r.as_ref().is_ok_and(|r| r.body() == b"yes"),
    );
    let r = xs.request(msg::TRANSACTION_START, 0, &[b"\0"]);
    t.case(
        "the reconnect ended the open transactions",
        format_args!("start {}", Answer(&r)),
        r.is_ok(),
    );
    t.print();
}

/// Yields until the ring's word at `off` passes `done` (at most 5000
/// times); returns the word.
fn wait(xs: &Client, off: usize, done: impl Fn(u32) -> bool) -> u32 {
    let word = || xs.page.u32(off).load(Ordering::SeqCst);
    for _ in 0..5000 {
        if done(word()) {
            break;
        }
        hypervisor::sched_yield();
    }
    word()
}
