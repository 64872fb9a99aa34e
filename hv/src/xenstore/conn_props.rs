//! Property tests of the ring connection: whatever a guest writes, the
//! server stays inside its fields; and for well-formed traffic, the ring
//! is transparent (the replies are those of the store called directly).

use super::*;

/// Guest actions for the property test.
#[derive(Clone, Debug)]
enum Act {
    /// A 32-bit write anywhere in the interface fields.
    Poke(u16, u32),
    /// Raw bytes into the request ring at the producer.
    Raw(Vec<u8>),
    /// A well-formed request of any type number.
    Request(u32, Vec<u8>),
    /// Consume all output.
    Recv,
    Service(u8),
}

fn act() -> impl proptest::strategy::Strategy<Value = Act> {
    use proptest::prelude::*;
    prop_oneof![
        (2048u16..2080, any::<u32>()).prop_map(|(o, v)| Act::Poke(o & !3, v)),
        (2048u16..2080, 0u32..8).prop_map(|(o, v)| Act::Poke(o & !3, v)),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Act::Raw),
        (0u32..24, proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(t, p)| Act::Request(t, p)),
        Just(Act::Recv),
        any::<u8>().prop_map(Act::Service),
    ]
}

proptest::proptest! {
    #[test]
    fn guest_writes_never_make_service_panic_or_write_outside_its_fields(
        acts in proptest::collection::vec(act(), 0..60)
    ) {
        let (mut xs, mut c, mut g) = setup();
        for a in acts {
            match a {
                Act::Poke(o, v) => g.set(o as usize, v),
                Act::Raw(b) => { g.send_raw(&b); }
                Act::Request(t, p) => {
                    let mut m = g.message(MsgType::Read, 0, &p);
                    m[..4].copy_from_slice(&t.to_le_bytes());
                    g.send_raw(&m);
                }
                Act::Recv => {
                    if g.get(offset::RSP_PROD).wrapping_sub(g.get(offset::RSP_CONS)) <= RING_SIZE {
                        g.recv();
                        g.inbox.clear();
                    }
                }
                Act::Service(budget) => {
                    let before = *g.page;
                    let reset = get(&before, offset::CONNECTION) == RECONNECT;
                    let s = c.service(&mut xs, &mut g.page, u32::from(budget % 8));
                    proptest::prop_assert!(s.requests <= u32::from(budget % 8));
                    let old_prod = get(&before, offset::RSP_PROD);
                    let new_prod = g.get(offset::RSP_PROD);
                    let base = if reset { 0 } else { old_prod };
                    let written = new_prod.wrapping_sub(base);
                    proptest::prop_assert!(written <= RING_SIZE);
                    let in_window = |i: usize| {
                        (0..written).any(|k| offset::RSP + ring::mask(base.wrapping_add(k)) == i)
                    };
                    let field = |i: usize, off: usize| (off..off + 4).contains(&i);
                    for (i, (old, new)) in before.iter().zip(g.page.iter()).enumerate() {
                        if old == new {
                            continue;
                        }
                        let ok = in_window(i)
                            || field(i, offset::REQ_CONS)
                            || field(i, offset::RSP_PROD)
                            || field(i, offset::ERROR)
                            || field(i, offset::CONNECTION)
                            || (reset && (field(i, offset::REQ_PROD) || field(i, offset::RSP_CONS)));
                        proptest::prop_assert!(ok, "byte {} changed", i);
                    }
                }
            }
        }
        xs.tree().check_consistent().unwrap();
    }
}

/// One well-formed request of the transparency test.
#[derive(Clone, Debug)]
struct Req {
    ty: MsgType,
    path: &'static str,
    value_len: usize,
}

fn req() -> impl proptest::strategy::Strategy<Value = Req> {
    use proptest::prelude::*;
    let types = proptest::sample::select(vec![
        MsgType::Read,
        MsgType::Write,
        MsgType::Mkdir,
        MsgType::Rm,
        MsgType::Directory,
        MsgType::GetPerms,
        MsgType::Watch,
        MsgType::Unwatch,
        MsgType::TransactionStart,
    ]);
    let paths = proptest::sample::select(vec![
        "data",
        "data/a",
        "data/a/b",
        "/local/domain/2/x",
        "bad//path",
    ]);
    (types, paths, 0usize..2100).prop_map(|(ty, path, value_len)| Req {
        ty,
        path,
        value_len,
    })
}

impl Req {
    fn payload(&self) -> Vec<u8> {
        let mut p = z(self.path);
        match self.ty {
            MsgType::Write => p.extend(core::iter::repeat_n(b'v', self.value_len)),
            MsgType::Watch | MsgType::Unwatch => p.extend_from_slice(b"tok\0"),
            MsgType::TransactionStart => p = b"\0".to_vec(),
            _ => {}
        }
        p
    }
}

/// The messages in a byte stream, split into replies and watch events.
fn split_stream(mut bytes: &[u8]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let (mut replies, mut events) = (Vec::new(), Vec::new());
    while bytes.len() >= HEADER_LEN {
        let h = Header::parse(&bytes[..HEADER_LEN]).unwrap();
        let end = HEADER_LEN + h.len as usize;
        let m = bytes[..end].to_vec();
        if h.ty == MsgType::WatchEvent as u32 {
            events.push(m);
        } else {
            replies.push(m);
        }
        bytes = &bytes[end..];
    }
    (replies, events)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    #[test]
    fn the_ring_is_transparent_however_the_guest_splits_its_traffic(
        reqs in proptest::collection::vec(req(), 1..20),
        start in proptest::prelude::any::<u32>(),
        steps in proptest::collection::vec((1usize..1100, 1u32..4, 1u32..1100), 1..50),
    ) {
        let (mut xs, mut c, _) = setup();
        let (mut direct, _, _) = setup();
        let mut g = Guest::at(start);
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for r in &reqs {
            let m = g.message(r.ty, 0, &r.payload());
            expected.extend(direct.handle_message(1, &m).unwrap().to_bytes());
            for ev in direct.take_events(1) {
                expected.extend(ev.to_reply().to_bytes());
            }
            stream.extend(m);
        }
        let mut sent = 0;
        for i in 0..10_000 {
            let (chunk, budget, take) = steps[i % steps.len()];
            let end = (sent + chunk).min(stream.len());
            sent += g.send_raw(&stream[sent..end]);
            let s = c.service(&mut xs, &mut g.page, budget);
            proptest::prop_assert_eq!(s.broken, None);
            g.recv_some(take);
            if sent == stream.len() && !c.has_output() && !Connection::has_input(&g.page)
                && g.get(offset::RSP_CONS) == g.get(offset::RSP_PROD)
                && !has_pending_events(&xs, 1)
            {
                break;
            }
        }
        let (got_replies, got_events) = split_stream(&g.inbox);
        let (want_replies, want_events) = split_stream(&expected);
        proptest::prop_assert_eq!(got_replies, want_replies);
        proptest::prop_assert_eq!(got_events, want_events);
    }
}
