//! Host tests of the PV console ring, with the guest's side scripted.

use super::*;
use alloc::string::String;
use alloc::vec::Vec;

fn page() -> Page {
    let mut p = [0x5Au8; 4096];
    init_page(&mut p);
    p
}

/// The guest writes `bytes` into `out` (no checks: tests keep it valid).
fn guest_write(p: &mut Page, bytes: &[u8]) {
    let prod = get(p, offset::OUT_PROD);
    for (i, &b) in bytes.iter().enumerate() {
        p[offset::OUT + (prod.wrapping_add(i as u32) & (OUT_SIZE - 1)) as usize] = b;
    }
    put(p, offset::OUT_PROD, prod.wrapping_add(bytes.len() as u32));
}

/// The guest reads everything in `in`.
fn guest_read(p: &mut Page) -> Vec<u8> {
    let cons = get(p, offset::IN_CONS);
    let prod = get(p, offset::IN_PROD);
    let out = (0..prod.wrapping_sub(cons))
        .map(|i| p[offset::IN + (cons.wrapping_add(i) & (IN_SIZE - 1)) as usize])
        .collect();
    put(p, offset::IN_CONS, prod);
    out
}

fn drain_all(p: &mut Page, max: usize) -> (Vec<u8>, Drained) {
    let mut v = Vec::new();
    let d = drain(p, max, |b| v.push(b));
    (v, d)
}

#[test]
fn offsets_follow_console_h() {
    assert_eq!(
        (
            offset::IN,
            offset::OUT,
            offset::IN_CONS,
            offset::IN_PROD,
            offset::OUT_CONS,
            offset::OUT_PROD
        ),
        (0, 1024, 3072, 3076, 3080, 3084)
    );
}

#[test]
fn init_page_empties_both_rings() {
    let p = page();
    assert!(p.iter().all(|&b| b == 0));
    assert!(!has_output(&p));
}

#[test]
fn drain_moves_guest_output_and_asks_for_a_notify() {
    let mut p = page();
    guest_write(&mut p, b"hello\n");
    assert!(has_output(&p));
    let (v, d) = drain_all(&mut p, 100);
    assert_eq!(v, b"hello\n");
    assert_eq!((d.bytes, d.notify, d.hostile), (6, true, None));
    assert_eq!(get(&p, offset::OUT_CONS), 6);
    let (v, d) = drain_all(&mut p, 100);
    assert!(v.is_empty());
    assert_eq!(d, Drained::default());
}

#[test]
fn partial_drain_leaves_the_rest_for_the_next_call() {
    let mut p = page();
    guest_write(&mut p, b"0123456789");
    let (v, d) = drain_all(&mut p, 4);
    assert_eq!((v.as_slice(), d.bytes), (&b"0123"[..], 4));
    assert!(has_output(&p));
    let (v, _) = drain_all(&mut p, 4);
    assert_eq!(v, b"4567");
    let (v, _) = drain_all(&mut p, 4);
    assert_eq!(v, b"89");
    assert!(!has_output(&p));
}

#[test]
fn full_output_ring_drains_completely() {
    let mut p = page();
    let data: Vec<u8> = (0..OUT_SIZE).map(|i| i as u8).collect();
    guest_write(&mut p, &data);
    let (v, d) = drain_all(&mut p, usize::MAX);
    assert_eq!(v, data);
    assert_eq!(d.hostile, None);
}

#[test]
fn indices_wrap_past_two_to_the_32() {
    let mut p = page();
    let start = u32::MAX - 3;
    for off in [
        offset::OUT_CONS,
        offset::OUT_PROD,
        offset::IN_CONS,
        offset::IN_PROD,
    ] {
        put(&mut p, off, start);
    }
    guest_write(&mut p, b"wrapped!");
    let (v, d) = drain_all(&mut p, 64);
    assert_eq!((v.as_slice(), d.bytes), (&b"wrapped!"[..], 8));
    assert_eq!(get(&p, offset::OUT_CONS), 4);
    let pushed = push_input(&mut p, b"keys in");
    assert_eq!((pushed.taken, pushed.notify), (7, true));
    assert_eq!(get(&p, offset::IN_PROD), 3);
    assert_eq!(guest_read(&mut p), b"keys in");
}

#[test]
fn hostile_output_producer_is_reported_and_the_ring_emptied() {
    for (cons, prod) in [(0, OUT_SIZE + 1), (100, 99), (7, u32::MAX)] {
        let mut p = page();
        put(&mut p, offset::OUT_CONS, cons);
        put(&mut p, offset::OUT_PROD, prod);
        let mut count = 0;
        let d = drain(&mut p, usize::MAX, |_| count += 1);
        assert_eq!(count, 0);
        assert_eq!(d.hostile, Some(BadIndex { cons, prod }));
        assert!(d.notify);
        assert_eq!(get(&p, offset::OUT_CONS), prod);
        assert!(!has_output(&p));
    }
}

#[test]
fn input_takes_what_fits_in_a_full_ring() {
    let mut p = page();
    let data = [b'k'; 1500];
    let pushed = push_input(&mut p, &data);
    assert_eq!((pushed.taken, pushed.notify), (IN_SIZE as usize, true));
    let pushed = push_input(&mut p, &data);
    assert_eq!(pushed, Pushed::default());
    assert_eq!(guest_read(&mut p).len(), IN_SIZE as usize);
    assert_eq!(push_input(&mut p, b"ab").taken, 2);
}

#[test]
fn hostile_input_consumer_resets_the_ring_before_pushing() {
    let mut p = page();
    put(&mut p, offset::IN_CONS, 5000);
    let pushed = push_input(&mut p, b"xy");
    assert_eq!(
        pushed.hostile,
        Some(BadIndex {
            cons: 5000,
            prod: 0
        })
    );
    assert_eq!(pushed.taken, 2);
    assert_eq!(get(&p, offset::IN_PROD), 5002);
    assert_eq!(guest_read(&mut p), b"xy");
}

proptest::proptest! {
    #[test]
    fn any_indices_stay_inside_the_rings(
        in_cons: u32, in_prod: u32, out_cons: u32, out_prod: u32,
        max in 0usize..5000, input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000),
    ) {
        let mut p = page();
        put(&mut p, offset::IN_CONS, in_cons);
        put(&mut p, offset::IN_PROD, in_prod);
        put(&mut p, offset::OUT_CONS, out_cons);
        put(&mut p, offset::OUT_PROD, out_prod);
        let before = p;
        let (v, d) = drain_all(&mut p, max);
        proptest::prop_assert!(v.len() <= max.min(OUT_SIZE as usize));
        proptest::prop_assert_eq!(v.len(), d.bytes);
        let pushed = push_input(&mut p, &input);
        proptest::prop_assert!(pushed.taken <= IN_SIZE as usize);
        // Only `in` and our two indices may change.
        for (i, (a, b)) in before.iter().zip(p.iter()).enumerate() {
            let ours = i < offset::IN + IN_SIZE as usize
                || (offset::IN_PROD..offset::IN_PROD + 4).contains(&i)
                || (offset::OUT_CONS..offset::OUT_CONS + 4).contains(&i);
            proptest::prop_assert!(a == b || ours, "byte {} changed", i);
        }
    }
}

fn printed(once: &mut Once, lines: &[(Source, &str)]) -> Vec<String> {
    lines
        .iter()
        .filter(|(s, l)| once.admit(*s, l.as_bytes()))
        .map(|(_, l)| String::from(*l))
        .collect()
}

#[test]
fn a_line_written_both_ways_is_printed_once_whichever_comes_first() {
    use Source::{Hypervisor as H, Ring as R};
    let mut once = Once::default();
    let got = printed(
        &mut once,
        &[
            (H, "a"),
            (R, "a"),
            (R, "b"),
            (H, "b"),
            (H, "c"),
            (H, "d"),
            (R, "c"),
            (R, "d"),
        ],
    );
    assert_eq!(got, ["a", "b", "c", "d"]);
}

#[test]
fn lines_written_one_way_are_all_printed_even_when_repeated() {
    use Source::{Hypervisor as H, Ring as R};
    let mut once = Once::default();
    let lines = [(H, "x"), (H, "x"), (H, "."), (H, "."), (R, "y"), (R, "y")];
    assert_eq!(printed(&mut once, &lines), ["x", "x", ".", ".", "y", "y"]);
}

#[test]
fn lines_only_one_way_before_a_shared_one_stop_being_waited_for() {
    use Source::{Hypervisor as H, Ring as R};
    let mut once = Once::default();
    // Early lines through console_io only, then both ways.
    let got = printed(
        &mut once,
        &[
            (H, "early 1"),
            (H, "early 2"),
            (H, "both"),
            (R, "both"),
            (R, "early 1"),
        ],
    );
    // "early 1" from the ring is a new line by then: printed.
    assert_eq!(got, ["early 1", "early 2", "both", "early 1"]);
}
