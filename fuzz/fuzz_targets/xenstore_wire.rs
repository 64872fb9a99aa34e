//! Fuzz target: the xenstore wire protocol as two guests speak it.
//!
//! The input is a script of steps. Most steps are one request from domain 1
//! or 2 (type, transaction, payload chosen by the input), fed as wire bytes
//! to `Xenstore::handle_message`; others are raw bytes (malformed headers),
//! domain 0 introducing or releasing a guest, or a guest taking its watch
//! events. Transactions are reached through the ids the store handed out,
//! so the fuzzer does not have to guess them. The quotas are small so that
//! the fuzzer reaches them.
//!
//! After every step the target checks what the store must keep true (the
//! tree's invariants when the tree changed, which moves its generation):
//! - it did not panic;
//! - the reply is well formed (`wire.rs`): `len` is the payload's length
//!   and at most `PAYLOAD_MAX`, the ids are echoed, the type is the
//!   request's or `XS_ERROR` with a known errno name, the bytes parse back;
//! - watch events are well formed too, and never more than `MAX_PENDING`;
//! - the tree is consistent, every path is valid, no guest owns more nodes
//!   or has more transactions than its quota, no value is over the size
//!   quota.

#![no_main]

use std::sync::OnceLock;

use hv::xenstore::store::{DomId, Quotas};
use hv::xenstore::watch::MAX_PENDING;
use hv::xenstore::wire::{
    parse_request, Header, MsgType, Reply, ABS_PATH_MAX, HEADER_LEN, PAYLOAD_MAX,
};
use hv::xenstore::Xenstore;
use libfuzzer_sys::fuzz_target;

/// The two guests whose messages the input interleaves.
const GUESTS: [DomId; 2] = [1, 2];

const QUOTAS: Quotas = Quotas {
    nodes: 12,
    value_size: 64,
    watches: 4,
    transactions: 2,
};

const ERROR_NAMES: &[&[u8]] = &[
    b"EINVAL",
    b"EACCES",
    b"EEXIST",
    b"EISDIR",
    b"ENOENT",
    b"ENOMEM",
    b"ENOSPC",
    b"EIO",
    b"ENOTEMPTY",
    b"ENOSYS",
    b"EROFS",
    b"EBUSY",
    b"EAGAIN",
    b"EISCONN",
    b"E2BIG",
];

/// Requests whose success reply is `OK\0`.
const ACKNOWLEDGED: &[MsgType] = &[
    MsgType::Write,
    MsgType::Mkdir,
    MsgType::Rm,
    MsgType::SetPerms,
    MsgType::Watch,
    MsgType::Unwatch,
    MsgType::TransactionEnd,
    MsgType::Introduce,
    MsgType::Release,
    MsgType::ResetWatches,
];

/// Reads the input front to back; past the end, every read is 0.
struct Script<'a>(&'a [u8]);

impl<'a> Script<'a> {
    fn byte(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (take, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        take
    }

    /// A length up to just over the payload limit.
    fn long_len(&mut self) -> usize {
        usize::from(u16::from_le_bytes([self.byte(), self.byte()])) % (PAYLOAD_MAX + 64)
    }

    /// A length: one byte, or two after 0xff.
    fn len(&mut self) -> usize {
        match self.byte() {
            0xff => self.long_len(),
            n => usize::from(n),
        }
    }

    /// A payload: `len` literal bytes; or, after 0xfe, one to four
    /// segments, each literal bytes or a run of one byte, so that long
    /// paths and tokens (`a\0ttt...t\0`) are within the fuzzer's reach.
    fn payload(&mut self) -> Vec<u8> {
        if self.0.first() != Some(&0xfe) {
            let n = self.len();
            return self.bytes(n).to_vec();
        }
        self.byte();
        let mut out = Vec::new();
        for _ in 0..=self.byte() % 4 {
            let kind = self.byte();
            if kind & 0x80 != 0 {
                let b = self.byte();
                let n = self.long_len();
                out.resize(out.len() + n, b);
            } else {
                out.extend_from_slice(self.bytes(usize::from(kind)));
            }
        }
        out.truncate(PAYLOAD_MAX + 64);
        out
    }
}

/// What the target remembers between steps.
struct World {
    store: Xenstore,
    /// Transaction ids the store handed to each guest, newest last.
    txs: [Vec<u32>; 2],
    req_id: u32,
    /// The tree's generation when it was last checked.
    checked: u64,
}

fn check_reply(reply: &Reply, req: &Header) {
    let h = reply.header;
    assert_eq!(
        h.len as usize,
        reply.payload.len(),
        "len is not the payload's"
    );
    assert!(reply.payload.len() <= PAYLOAD_MAX, "reply over PAYLOAD_MAX");
    assert_eq!(
        (h.req_id, h.tx_id),
        (req.req_id, req.tx_id),
        "ids not echoed"
    );
    let bytes = reply.to_bytes();
    let (back, payload) = parse_request(&bytes).expect("a reply parses back");
    assert_eq!((back, payload), (h, reply.payload.as_slice()));
    if let Some(name) = reply.error_name() {
        assert!(ERROR_NAMES.contains(&name), "unknown error {name:?}");
        assert_eq!(
            reply.payload.last(),
            Some(&0),
            "error name not NUL-terminated"
        );
        return;
    }
    let ty = MsgType::from_u32(req.ty).expect("an unknown type is an error");
    assert_eq!(h.ty, req.ty, "reply type is not the request's");
    if ACKNOWLEDGED.contains(&ty) {
        assert_eq!(reply.payload, b"OK\0");
    }
    if ty == MsgType::TransactionStart {
        let digits = reply
            .payload
            .strip_suffix(b"\0")
            .expect("NUL-terminated id");
        let id: u32 = std::str::from_utf8(digits).unwrap().parse().unwrap();
        assert_ne!(id, 0, "transaction id 0");
    }
}

/// Checks the store; the tree only if its generation moved since
/// `checked` (every change of the tree moves it, so the tree checked then
/// is the tree now), and notes the generation checked.
fn check_store(store: &Xenstore, checked: &mut u64) {
    for d in GUESTS {
        assert!(
            store.transactions_of(d) <= QUOTAS.transactions,
            "dom{d} transactions"
        );
    }
    let tree = store.tree();
    if tree.generation() == *checked {
        return;
    }
    *checked = tree.generation();
    if let Err(e) = tree.check_consistent() {
        panic!("inconsistent tree: {e}");
    }
    for (path, node) in tree.iter() {
        assert!(
            path.starts_with('/') && path.len() <= ABS_PATH_MAX,
            "{path:?}"
        );
        assert!(
            node.value.len() <= QUOTAS.value_size,
            "{path}: value of {} bytes",
            node.value.len()
        );
    }
    for d in GUESTS {
        assert!(
            tree.owned_by(d) <= QUOTAS.nodes,
            "dom{d} owns {} nodes",
            tree.owned_by(d)
        );
    }
}

impl World {
    fn send(&mut self, domid: DomId, ty: u32, tx_id: u32, payload: &[u8]) {
        self.req_id = self.req_id.wrapping_add(1);
        let header = Header {
            ty,
            req_id: self.req_id,
            tx_id,
            len: payload.len() as u32,
        };
        let mut bytes = header.to_bytes().to_vec();
        bytes.extend_from_slice(payload);
        match self.store.handle_message(domid, &bytes) {
            Ok(reply) => {
                check_reply(&reply, &header);
                if ty == MsgType::TransactionStart as u32 && reply.error_name().is_none() {
                    let digits = &reply.payload[..reply.payload.len() - 1];
                    let id = std::str::from_utf8(digits).unwrap().parse().unwrap();
                    if let Some(i) = GUESTS.iter().position(|&g| g == domid) {
                        self.txs[i].push(id);
                    }
                }
            }
            Err(e) => assert!(payload.len() > PAYLOAD_MAX, "{e:?} for a valid message"),
        }
    }

    fn take_events(&mut self, domid: DomId) {
        let events = self.store.take_events(domid);
        assert!(
            events.len() <= MAX_PENDING,
            "{} events queued",
            events.len()
        );
        assert!(!self.store.has_pending_events(domid));
        for ev in events {
            let reply = ev.to_reply();
            let unsolicited = Header {
                ty: MsgType::WatchEvent as u32,
                ..Header::default()
            };
            check_reply(&reply, &unsolicited);
            let mut expected = ev.path.into_bytes();
            expected.push(0);
            expected.extend_from_slice(ev.token.as_bytes());
            expected.push(0);
            assert_eq!(reply.payload, expected);
        }
    }

    fn step(&mut self, s: &mut Script<'_>) {
        let op = s.byte();
        let who = usize::from(op & 1);
        let domid = GUESTS[who];
        match op >> 5 {
            // A request from a guest.
            0..=4 => {
                let ty = match s.byte() {
                    t @ 0..=0xef => u32::from(t) % 23,
                    _ => s.u32(),
                };
                let tx_id = match (op >> 1) & 3 {
                    0 => 0,
                    1 => self.txs[who].last().copied().unwrap_or(0),
                    2 => self.txs[1 - who].last().copied().unwrap_or(0),
                    _ => s.u32(),
                };
                let payload = s.payload();
                self.send(domid, ty, tx_id, &payload);
            }
            // Raw bytes from a guest: short, lying or oversized headers.
            5 => {
                let n = s.len();
                let raw = s.bytes(n);
                match self.store.handle_message(domid, raw) {
                    Ok(reply) => {
                        let (h, _) = parse_request(raw).expect("accepted only if it parses");
                        check_reply(&reply, &h);
                    }
                    Err(_) => assert!(
                        raw.len() < HEADER_LEN || parse_request(raw).is_err(),
                        "a well-formed message was refused"
                    ),
                }
            }
            // Domain 0 introduces or releases a guest, or asks about it.
            6 => {
                let ty = match (op >> 1) & 3 {
                    0 => MsgType::Introduce,
                    1 => MsgType::Release,
                    _ => MsgType::IsDomainIntroduced,
                };
                let payload = if ty == MsgType::Introduce {
                    format!("{domid}\0{}\0{}\0", 0x1000 + u32::from(domid), domid)
                } else {
                    format!("{domid}\0")
                };
                self.send(0, ty as u32, 0, payload.as_bytes());
                if ty == MsgType::Release {
                    self.txs[who].clear();
                }
            }
            // A guest takes its watch events.
            _ => self.take_events(domid),
        }
        check_store(&self.store, &mut self.checked);
    }
}

/// The store every input starts from, both guests introduced: made once,
/// copied for each input.
static START: OnceLock<Xenstore> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let store = START.get_or_init(|| {
        let mut store = Xenstore::new(QUOTAS);
        for d in GUESTS {
            store.introduce_domain(d);
        }
        store
    });
    let mut world = World {
        store: store.clone(),
        txs: [Vec::new(), Vec::new()],
        req_id: 0,
        checked: 0,
    };
    let mut script = Script(data);
    while !script.0.is_empty() {
        world.step(&mut script);
    }
    for d in GUESTS {
        world.take_events(d);
    }
});
