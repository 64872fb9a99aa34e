//! Host tests of the ring connection, with a scripted guest that writes
//! requests into a page buffer and reads the replies back.

use super::*;
use crate::xenstore::perms::{Access, Perms};
use crate::xenstore::ring::RING_SIZE;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;

/// The guest's side of the ring: its producer/consumer logic and the
/// bytes received but not yet parsed into messages.
struct Guest {
    page: Box<Page>,
    inbox: Vec<u8>,
    next_id: u32,
}

fn z(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn kv(path: &str, value: &str) -> Vec<u8> {
    let mut v = z(path);
    v.extend_from_slice(value.as_bytes());
    v
}

impl Guest {
    fn new() -> Self {
        let mut page = Box::new([0xAAu8; 4096]);
        Connection::init_page(&mut page);
        Self {
            page,
            inbox: Vec::new(),
            next_id: 1,
        }
    }

    /// A ring whose four indices all start at `start`.
    fn at(start: u32) -> Self {
        let mut g = Self::new();
        for off in [
            offset::REQ_CONS,
            offset::REQ_PROD,
            offset::RSP_CONS,
            offset::RSP_PROD,
        ] {
            g.set(off, start);
        }
        g
    }

    fn get(&self, off: usize) -> u32 {
        get(&self.page[..], off)
    }

    fn set(&mut self, off: usize, v: u32) {
        put(&mut self.page[..], off, v);
    }

    /// Writes as much of `bytes` as fits into `req`; returns how much.
    fn send_raw(&mut self, bytes: &[u8]) -> usize {
        let cons = self.get(offset::REQ_CONS);
        let prod = self.get(offset::REQ_PROD);
        // A hostile test may have broken the indices: then nothing fits.
        let room = RING_SIZE.saturating_sub(prod.wrapping_sub(cons)) as usize;
        let n = room.min(bytes.len());
        for (i, &b) in bytes[..n].iter().enumerate() {
            self.page[offset::REQ + ring::mask(prod.wrapping_add(i as u32))] = b;
        }
        self.set(offset::REQ_PROD, prod.wrapping_add(n as u32));
        n
    }

    fn message(&mut self, ty: MsgType, tx: u32, payload: &[u8]) -> Vec<u8> {
        let h = Header {
            ty: ty as u32,
            req_id: self.next_id,
            tx_id: tx,
            len: payload.len() as u32,
        };
        self.next_id += 1;
        let mut v = h.to_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    /// Queues one whole request; panics if the ring is too full.
    fn send(&mut self, ty: MsgType, tx: u32, payload: &[u8]) {
        let m = self.message(ty, tx, payload);
        assert_eq!(self.send_raw(&m), m.len(), "request ring full");
    }

    /// Consumes everything in `rsp`.
    fn recv(&mut self) {
        self.recv_some(RING_SIZE);
    }

    /// Consumes up to `max` bytes of `rsp`.
    fn recv_some(&mut self, max: u32) {
        let cons = self.get(offset::RSP_CONS);
        let prod = self.get(offset::RSP_PROD);
        let n = prod.wrapping_sub(cons);
        assert!(n <= RING_SIZE);
        let n = n.min(max);
        for i in 0..n {
            let b = self.page[offset::RSP + ring::mask(cons.wrapping_add(i))];
            self.inbox.push(b);
        }
        self.set(offset::RSP_CONS, cons.wrapping_add(n));
    }

    /// The next whole message received, if any.
    fn next(&mut self) -> Option<(Header, Vec<u8>)> {
        let h = Header::parse(self.inbox.get(..HEADER_LEN)?).unwrap();
        let end = HEADER_LEN + h.len as usize;
        if self.inbox.len() < end {
            return None;
        }
        let payload = self.inbox[HEADER_LEN..end].to_vec();
        self.inbox.drain(..end);
        Some((h, payload))
    }

    /// Sends one request, services the ring and returns the reply.
    fn call(
        &mut self,
        conn: &mut Connection,
        xs: &mut Xenstore,
        ty: MsgType,
        tx: u32,
        payload: &[u8],
    ) -> (Header, Vec<u8>) {
        let m = self.message(ty, tx, payload);
        let mut sent = 0;
        loop {
            sent += self.send_raw(&m[sent..]);
            let s = conn.service(xs, &mut self.page, 16);
            assert_eq!(s.broken, None);
            assert!(s.notify);
            if sent == m.len() {
                break;
            }
        }
        self.recv();
        self.next().expect("a reply")
    }
}

fn setup() -> (Xenstore, Connection, Guest) {
    let mut xs = Xenstore::default();
    xs.introduce_domain(1);
    xs.introduce_domain(2);
    (xs, Connection::new(1), Guest::new())
}

fn is_error(h: &Header, p: &[u8], name: &str) -> bool {
    h.ty == MsgType::Error as u32 && p == z(name).as_slice()
}

#[test]
fn init_page_advertises_reconnection_and_error_and_empties_the_rings() {
    let g = Guest::new();
    assert_eq!(g.get(offset::SERVER_FEATURES), 3);
    for off in [
        offset::REQ_CONS,
        offset::REQ_PROD,
        offset::RSP_CONS,
        offset::RSP_PROD,
        offset::CONNECTION,
        offset::ERROR,
    ] {
        assert_eq!(g.get(off), 0);
    }
}

#[test]
fn read_write_directory_mkdir_rm_over_the_ring() {
    let (mut xs, mut c, mut g) = setup();
    let (h, p) = g.call(&mut c, &mut xs, MsgType::Write, 0, &kv("data/x", "42"));
    assert_eq!(
        (h.ty, h.req_id, p.as_slice()),
        (MsgType::Write as u32, 1, &b"OK\0"[..])
    );
    let (_, p) = g.call(&mut c, &mut xs, MsgType::Read, 0, &z("data/x"));
    assert_eq!(p, b"42");
    let (_, p) = g.call(&mut c, &mut xs, MsgType::Mkdir, 0, &z("data/d"));
    assert_eq!(p, b"OK\0");
    let (_, p) = g.call(&mut c, &mut xs, MsgType::Directory, 0, &z("data"));
    assert_eq!(p, b"d\0x\0");
    let (_, p) = g.call(&mut c, &mut xs, MsgType::Rm, 0, &z("data/x"));
    assert_eq!(p, b"OK\0");
    let (h, p) = g.call(&mut c, &mut xs, MsgType::Read, 0, &z("data/x"));
    assert!(is_error(&h, &p, "ENOENT"));
    let (h, p) = g.call(
        &mut c,
        &mut xs,
        MsgType::Read,
        0,
        &z("/local/domain/2/domid"),
    );
    assert!(is_error(&h, &p, "EACCES"));
    assert!(!c.has_output());
}

#[test]
fn another_domains_write_reaches_the_watchers_ring() {
    let (mut xs, mut c, mut g) = setup();
    xs.mkdir("/shared").unwrap();
    xs.set_perms("/shared", Perms::owned_by(0, Access::Both))
        .unwrap();
    let (h, p) = g.call(
        &mut c,
        &mut xs,
        MsgType::Watch,
        0,
        &kv("/shared/flag", "tok\0"),
    );
    assert_eq!((h.ty, p.as_slice()), (MsgType::Watch as u32, &b"OK\0"[..]));
    // The initial event follows the acknowledgement.
    let (h, p) = g.next().expect("initial event");
    assert_eq!(h.ty, MsgType::WatchEvent as u32);
    assert_eq!(p, b"/shared/flag\0tok\0");

    let mut c2 = Connection::new(2);
    let mut g2 = Guest::new();
    let (_, p) = g2.call(
        &mut c2,
        &mut xs,
        MsgType::Write,
        0,
        &kv("/shared/flag", "up"),
    );
    assert_eq!(p, b"OK\0");
    assert!(has_pending_events(&xs, 1));
    assert!(!has_pending_events(&xs, 2));

    let s = c.service(&mut xs, &mut g.page, 16);
    assert_eq!((s.requests, s.notify), (0, true));
    assert!(!has_pending_events(&xs, 1));
    g.recv();
    let (h, p) = g.next().expect("event");
    assert_eq!(
        (h.ty, h.req_id, h.tx_id),
        (MsgType::WatchEvent as u32, 0, 0)
    );
    assert_eq!(p, b"/shared/flag\0tok\0");
}

#[test]
fn conflicting_transaction_ends_with_eagain() {
    let (mut xs, mut c, mut g) = setup();
    g.call(&mut c, &mut xs, MsgType::Write, 0, &kv("data/x", "1"));
    let (_, p) = g.call(&mut c, &mut xs, MsgType::TransactionStart, 0, b"\0");
    let tx: u32 = core::str::from_utf8(p.strip_suffix(b"\0").unwrap())
        .unwrap()
        .parse()
        .unwrap();
    let (h, p) = g.call(&mut c, &mut xs, MsgType::Read, tx, &z("data/x"));
    assert_eq!((h.tx_id, p.as_slice()), (tx, &b"1"[..]));
    g.call(&mut c, &mut xs, MsgType::Write, tx, &kv("data/x", "2"));
    xs.write("/local/domain/1/data/x", b"dom0").unwrap();
    let (h, p) = g.call(&mut c, &mut xs, MsgType::TransactionEnd, tx, b"T\0");
    assert!(is_error(&h, &p, "EAGAIN"));
    assert_eq!(xs.read("/local/domain/1/data/x").unwrap(), b"dom0");

    // The retry commits.
    let (_, p) = g.call(&mut c, &mut xs, MsgType::TransactionStart, 0, b"\0");
    let tx: u32 = core::str::from_utf8(p.strip_suffix(b"\0").unwrap())
        .unwrap()
        .parse()
        .unwrap();
    g.call(&mut c, &mut xs, MsgType::Write, tx, &kv("data/x", "2"));
    let (_, p) = g.call(&mut c, &mut xs, MsgType::TransactionEnd, tx, b"T\0");
    assert_eq!(p, b"OK\0");
    assert_eq!(xs.read("/local/domain/1/data/x").unwrap(), b"2");
}

#[test]
fn request_split_across_calls_is_handled_once_whole() {
    let (mut xs, mut c, mut g) = setup();
    let m = g.message(MsgType::Write, 0, &kv("data/split", "yes"));
    for part in [&m[..10], &m[10..HEADER_LEN], &m[HEADER_LEN..HEADER_LEN + 3]] {
        g.send_raw(part);
        let s = c.service(&mut xs, &mut g.page, 16);
        assert_eq!((s.requests, s.notify, s.broken), (0, true, None));
        assert_eq!(g.get(offset::REQ_CONS), g.get(offset::REQ_PROD));
    }
    g.send_raw(&m[HEADER_LEN + 3..]);
    let s = c.service(&mut xs, &mut g.page, 16);
    assert_eq!(s.requests, 1);
    g.recv();
    assert_eq!(g.next().unwrap().1, b"OK\0");
    assert_eq!(xs.read("/local/domain/1/data/split").unwrap(), b"yes");
}

#[test]
fn reply_bigger_than_the_ring_arrives_over_several_calls() {
    let (mut xs, mut c, mut g) = setup();
    let names: Vec<String> = (0..120)
        .map(|i| format!("a-long-node-name-{i:03}"))
        .collect();
    for n in &names {
        xs.write(&format!("/local/domain/1/data/{n}"), b"").unwrap();
    }
    g.send(MsgType::Directory, 0, &z("data"));
    let mut calls = 0;
    let reply = loop {
        let s = c.service(&mut xs, &mut g.page, 16);
        assert_eq!(s.broken, None);
        calls += 1;
        g.recv();
        if let Some(m) = g.next() {
            break m;
        }
        assert!(c.has_output());
        assert!(calls < 10);
    };
    assert!(calls >= 3, "{calls}");
    assert!(!c.has_output());
    let expected: Vec<u8> = names.iter().flat_map(|n| z(n)).collect();
    assert!(expected.len() > 2 * RING_SIZE as usize);
    assert_eq!(reply.1, expected);
}

#[test]
fn indices_wrap_past_two_to_the_32() {
    let (mut xs, _, _) = setup();
    let mut c = Connection::new(1);
    let mut g = Guest::at(u32::MAX - 40);
    for i in 0..40 {
        let v = format!("value-{i}");
        g.call(&mut c, &mut xs, MsgType::Write, 0, &kv("data/w", &v));
        let (_, p) = g.call(&mut c, &mut xs, MsgType::Read, 0, &z("data/w"));
        assert_eq!(p, v.as_bytes());
    }
    assert!(g.get(offset::REQ_CONS) < 4096);
    assert!(g.get(offset::RSP_PROD) < 4096);
}

#[test]
fn request_producer_more_than_a_ring_ahead_breaks_the_ring() {
    let (mut xs, mut c, mut g) = setup();
    g.set(offset::REQ_PROD, 1025);
    let s = c.service(&mut xs, &mut g.page, 16);
    assert!(s.broken.is_some() && s.notify);
    assert_eq!(g.get(offset::ERROR), ring::ERROR_RINGIDX);
    assert_eq!(g.get(offset::REQ_CONS), 0);
    // No longer serviced, even with sane indices.
    g.set(offset::REQ_PROD, 0);
    g.send(MsgType::Read, 0, &z("domid"));
    let s = c.service(&mut xs, &mut g.page, 16);
    assert_eq!((s.requests, s.notify), (0, false));
    assert!(s.broken.is_some());
    assert_eq!(g.get(offset::RSP_PROD), 0);
}

#[test]
fn response_consumer_beyond_the_producer_breaks_the_ring() {
    let (mut xs, mut c, mut g) = setup();
    g.set(offset::RSP_CONS, 1);
    g.send(MsgType::Read, 0, &z("domid"));
    let s = c.service(&mut xs, &mut g.page, 16);
    assert!(s.broken.is_some());
    assert_eq!(g.get(offset::ERROR), ring::ERROR_RINGIDX);
    assert_eq!(g.get(offset::RSP_PROD), 0);
}

#[test]
fn payload_over_4096_is_a_protocol_error_and_drops_watches() {
    let (mut xs, mut c, mut g) = setup();
    g.call(&mut c, &mut xs, MsgType::Watch, 0, &kv("data", "t\0"));
    let h = Header {
        ty: MsgType::Write as u32,
        req_id: 9,
        tx_id: 0,
        len: 4097,
    };
    g.send_raw(&h.to_bytes());
    let s = c.service(&mut xs, &mut g.page, 16);
    assert!(s.broken.is_some());
    assert_eq!(g.get(offset::ERROR), ring::ERROR_PROTO);
    xs.write("/local/domain/1/data/x", b"v").unwrap();
    assert!(!has_pending_events(&xs, 1));
}

#[test]
fn reconnect_drops_state_resets_indices_and_serves_again() {
    let (mut xs, mut c, mut g) = setup();
    g.call(&mut c, &mut xs, MsgType::Watch, 0, &kv("data", "t\0"));
    g.call(&mut c, &mut xs, MsgType::TransactionStart, 0, b"\0");
    assert_eq!(xs.transactions_of(1), 1);
    for i in 0..100 {
        xs.write(&format!("/local/domain/1/data/node-{i:03}"), b"")
            .unwrap();
    }
    // Unconsumed output and a half-sent request.
    g.send(MsgType::Directory, 0, &z("data"));
    c.service(&mut xs, &mut g.page, 16);
    assert!(c.has_output());
    g.send_raw(&[1, 2, 3]);
    c.service(&mut xs, &mut g.page, 16);

    g.set(offset::CONNECTION, RECONNECT);
    let s = c.service(&mut xs, &mut g.page, 16);
    assert_eq!((s.notify, s.requests, s.broken), (true, 0, None));
    assert!(!c.has_output());
    for off in [
        offset::REQ_CONS,
        offset::REQ_PROD,
        offset::RSP_CONS,
        offset::RSP_PROD,
        offset::CONNECTION,
        offset::ERROR,
    ] {
        assert_eq!(g.get(off), 0, "offset {off}");
    }
    xs.write("/local/domain/1/data/after", b"").unwrap();
    assert!(!has_pending_events(&xs, 1), "watches were dropped");
    assert_eq!(xs.transactions_of(1), 0);

    g.inbox.clear();
    let (_, p) = g.call(&mut c, &mut xs, MsgType::Read, 0, &z("domid"));
    assert_eq!(p, b"1");
}

#[test]
fn reconnect_clears_a_broken_ring() {
    let (mut xs, mut c, mut g) = setup();
    g.set(offset::RSP_CONS, 5000);
    assert!(c.service(&mut xs, &mut g.page, 16).broken.is_some());
    g.set(offset::CONNECTION, RECONNECT);
    let s = c.service(&mut xs, &mut g.page, 16);
    assert_eq!(s.broken, None);
    assert_eq!(c.broken(), None);
    assert_eq!(g.get(offset::ERROR), 0);
    let (_, p) = g.call(&mut c, &mut xs, MsgType::Read, 0, &z("domid"));
    assert_eq!(p, b"1");
}

#[test]
fn budget_bounds_the_requests_handled_per_call() {
    let (mut xs, mut c, mut g) = setup();
    for i in 0..5 {
        g.send(MsgType::Write, 0, &kv(&format!("data/b{i}"), "v"));
    }
    let s = c.service(&mut xs, &mut g.page, 2);
    assert_eq!(s.requests, 2);
    assert!(Connection::has_input(&g.page));
    assert!(xs.read("/local/domain/1/data/b2").is_err());
    let s = c.service(&mut xs, &mut g.page, 0);
    assert_eq!(s.requests, 0);
    let s = c.service(&mut xs, &mut g.page, 10);
    assert_eq!(s.requests, 3);
    assert!(!Connection::has_input(&g.page));
    g.recv();
    let ids: Vec<u32> = core::iter::from_fn(|| g.next())
        .map(|(h, _)| h.req_id)
        .collect();
    assert_eq!(ids, vec![1, 2, 3, 4, 5]);
}

#[test]
fn request_bigger_than_the_ring_is_received_in_pieces() {
    let (mut xs, mut c, mut g) = setup();
    let big = "x".repeat(2000); // within the 2048-byte value quota
    let (_, p) = g.call(&mut c, &mut xs, MsgType::Write, 0, &kv("data/big", &big));
    assert_eq!(p, b"OK\0");
    assert_eq!(xs.read("/local/domain/1/data/big").unwrap(), big.as_bytes());
}

#[test]
fn output_limit_stops_reading_requests_from_a_guest_that_never_consumes() {
    let (mut xs, mut c, mut g) = setup();
    let big = "v".repeat(2000);
    g.call(&mut c, &mut xs, MsgType::Write, 0, &kv("data/big", &big));
    g.inbox.clear();
    for _ in 0..200 {
        let m = g.message(MsgType::Read, 0, &z("data/big"));
        g.send_raw(&m);
        c.service(&mut xs, &mut g.page, 16);
    }
    assert!(c.out.len() < OUTPUT_LIMIT + HEADER_LEN + PAYLOAD_MAX);
    // The ring stays full of requests the server has stopped reading.
    assert!(Connection::has_input(&g.page));
}

#[test]
fn own_write_reply_comes_before_the_events_it_fires() {
    let (mut xs, mut c, mut g) = setup();
    g.call(&mut c, &mut xs, MsgType::Watch, 0, &kv("data", "t\0"));
    g.next().expect("initial event");
    // Creates `data` and `data/k`: two events, after the reply.
    let (h, _) = g.call(&mut c, &mut xs, MsgType::Write, 0, &kv("data/k", "v"));
    assert_eq!(h.ty, MsgType::Write as u32);
    let events: Vec<(u32, Vec<u8>)> = core::iter::from_fn(|| g.next())
        .map(|(h, p)| (h.ty, p))
        .collect();
    let ev = MsgType::WatchEvent as u32;
    assert_eq!(
        events,
        vec![(ev, b"data\0t\0".to_vec()), (ev, b"data/k\0t\0".to_vec())]
    );
}

#[test]
fn events_wait_in_the_store_while_output_is_over_the_limit() {
    let (mut xs, mut c, mut g) = setup();
    g.call(&mut c, &mut xs, MsgType::Watch, 0, &kv("data", "t\0"));
    g.inbox.clear();
    xs.write("/local/domain/1/data/big", "v".repeat(2000).as_bytes())
        .unwrap();
    let _ = xs.take_events(1);
    for _ in 0..12 {
        let m = g.message(MsgType::Read, 0, &z("data/big"));
        g.send_raw(&m);
        c.service(&mut xs, &mut g.page, 16);
    }
    assert!(c.out.len() >= OUTPUT_LIMIT);
    xs.write("/local/domain/1/data/late", b"").unwrap();
    c.service(&mut xs, &mut g.page, 16);
    assert!(has_pending_events(&xs, 1), "not taken while over the limit");
    let mut events = 0;
    for _ in 0..100 {
        g.recv();
        while let Some((h, _)) = g.next() {
            events += usize::from(h.ty == MsgType::WatchEvent as u32);
        }
        c.service(&mut xs, &mut g.page, 16);
    }
    assert_eq!(events, 1);
    assert!(!has_pending_events(&xs, 1) && !c.has_output());
}

#[path = "conn_props.rs"]
mod props;
