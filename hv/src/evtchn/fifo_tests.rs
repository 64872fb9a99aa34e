use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::fifo::*;
use super::{Errno, Port};

/// Guest memory: `PAGES` pages from address 0, recording every write.
struct Mem {
    words: Vec<u32>,
    writes: Vec<u64>,
}

const PAGES: usize = 4;
/// vCPU 0's control block (page 0, offset 64), vCPU 1's (page 0, 512).
const CB0: u64 = 64;
const CB1: u64 = 512;
/// The event array: pages 1 and 2.
const ARRAY: [u64; 2] = [4096, 8192];

impl Mem {
    fn new() -> Self {
        Self {
            words: vec![0; PAGES * 1024],
            writes: Vec::new(),
        }
    }
    fn at(&self, gpa: u64) -> u32 {
        self.words[gpa as usize / 4]
    }
    fn put(&mut self, gpa: u64, v: u32) {
        self.words[gpa as usize / 4] = v;
    }
    /// Port `port`'s word (0 beyond the array, where a guest-written
    /// HEAD may point).
    fn word(&self, port: Port) -> u32 {
        match ARRAY.get(port as usize / WORDS_PER_PAGE) {
            Some(page) => self.at(page + u64::from(port) % 1024 * 4),
            None => 0,
        }
    }
    fn set_word(&mut self, port: Port, v: u32) {
        if let Some(page) = ARRAY.get(port as usize / WORDS_PER_PAGE) {
            self.put(page + u64::from(port) % 1024 * 4, v);
        }
    }
    fn ready(&self, cb: u64) -> u32 {
        self.at(cb)
    }
    fn head(&self, cb: u64, prio: usize) -> u32 {
        self.at(cb + CONTROL_HEAD + 4 * prio as u64)
    }

    /// What Linux's `consume_one_event` loop does, bounded: every port
    /// taken from `cb`'s queues, highest priority first, with `PENDING`
    /// and not `MASKED` (whose `PENDING` it clears, as the handler's
    /// `clear_evtchn` does).
    fn consume(&mut self, cb: u64) -> Vec<Port> {
        let mut got = Vec::new();
        let mut ready = core::mem::take(&mut self.words[cb as usize / 4]);
        let mut head = [0u32; MAX_QUEUES];
        for _ in 0..10_000 {
            if ready == 0 {
                ready = core::mem::take(&mut self.words[cb as usize / 4]);
                if ready == 0 {
                    break;
                }
            }
            let q = ready.trailing_zeros() as usize;
            if q >= MAX_QUEUES {
                ready = 0;
                continue;
            }
            let port = if head[q] == 0 {
                self.head(cb, q)
            } else {
                head[q]
            };
            let w = self.word(port);
            self.set_word(port, w & !LINKED);
            let next = w & LINK_MASK;
            if next == 0 {
                ready &= !(1 << q);
            }
            if w & PENDING != 0 && w & MASKED == 0 {
                self.set_word(port, self.word(port) & !PENDING);
                got.push(port);
            }
            head[q] = next;
        }
        got
    }
}

impl Words for Mem {
    fn get(&mut self, gpa: u64) -> Option<u32> {
        assert!(gpa.is_multiple_of(4));
        self.words.get(gpa as usize / 4).copied()
    }
    fn set(&mut self, gpa: u64, v: u32) -> bool {
        self.writes.push(gpa);
        match self.words.get_mut(gpa as usize / 4) {
            Some(w) => {
                *w = v;
                true
            }
            None => false,
        }
    }
}

/// Two vCPUs with control blocks and both array pages.
fn setup() -> (Fifo, Mem) {
    let mut f = Fifo::new(2);
    f.map_control(0, CB0).unwrap();
    f.map_control(1, CB1).unwrap();
    assert_eq!(f.add_page(ARRAY[0]), Ok(0..1024));
    assert_eq!(f.add_page(ARRAY[1]), Ok(1024..2048));
    (f, Mem::new())
}

#[test]
fn the_first_event_becomes_head_and_sets_ready() {
    let (mut f, mut m) = setup();
    assert!(f.set_pending(&mut m, 5, 0));
    assert_eq!(m.word(5), PENDING | LINKED);
    assert_eq!(m.head(CB0, 7), 5);
    assert_eq!(m.ready(CB0), 1 << 7);
    assert_eq!(m.ready(CB1), 0);
}

#[test]
fn later_events_link_to_the_tail_without_another_upcall() {
    let (mut f, mut m) = setup();
    assert!(f.set_pending(&mut m, 5, 0));
    assert!(!f.set_pending(&mut m, 9, 0));
    assert!(!f.set_pending(&mut m, 1030, 0));
    assert_eq!(m.word(5), PENDING | LINKED | 9);
    assert_eq!(m.word(9), PENDING | LINKED | 1030);
    assert_eq!(m.word(1030), PENDING | LINKED);
    assert_eq!(m.head(CB0, 7), 5);
    assert_eq!(m.consume(CB0), vec![5, 9, 1030]);
}

#[test]
fn a_pending_or_linked_port_is_not_linked_twice() {
    let (mut f, mut m) = setup();
    assert!(f.set_pending(&mut m, 5, 0));
    assert!(!f.set_pending(&mut m, 6, 0));
    assert!(!f.set_pending(&mut m, 5, 0));
    assert_eq!(m.word(6), PENDING | LINKED, "6 stays the tail");
    assert_eq!(m.consume(CB0), vec![5, 6]);
}

#[test]
fn higher_priority_comes_first() {
    let (mut f, mut m) = setup();
    f.set_priority(20, 3).unwrap();
    f.set_priority(21, 12).unwrap();
    // Each newly set READY bit asks for an upcall.
    assert!(f.set_pending(&mut m, 21, 0));
    assert!(f.set_pending(&mut m, 10, 0));
    assert!(f.set_pending(&mut m, 20, 0));
    assert_eq!(m.ready(CB0), (1 << 3) | (1 << 7) | (1 << 12));
    assert_eq!(
        (m.head(CB0, 3), m.head(CB0, 7), m.head(CB0, 12)),
        (20, 10, 21)
    );
    assert_eq!(m.consume(CB0), vec![20, 10, 21]);
}

#[test]
fn each_vcpu_has_its_own_queues() {
    let (mut f, mut m) = setup();
    assert!(f.set_pending(&mut m, 3, 1));
    assert!(f.set_pending(&mut m, 4, 0));
    assert_eq!(m.head(CB1, 7), 3);
    assert_eq!(m.head(CB0, 7), 4);
    assert_eq!(m.consume(CB1), vec![3]);
    assert_eq!(m.consume(CB0), vec![4]);
}

#[test]
fn a_masked_port_stays_pending_until_unmasked() {
    let (mut f, mut m) = setup();
    m.set_word(8, MASKED);
    assert!(!f.set_pending(&mut m, 8, 0));
    assert_eq!(m.word(8), MASKED | PENDING);
    assert_eq!(m.ready(CB0), 0);
    assert!(f.unmask(&mut m, 8, 0));
    assert_eq!(m.word(8), PENDING | LINKED);
    assert_eq!(m.consume(CB0), vec![8]);
    // Unmasking a port that is not pending only clears the mask.
    m.set_word(9, MASKED);
    assert!(!f.unmask(&mut m, 9, 0));
    assert_eq!(m.word(9), 0);
}

#[test]
fn after_the_guest_empties_a_queue_the_next_event_is_head_again() {
    let (mut f, mut m) = setup();
    assert!(f.set_pending(&mut m, 5, 0));
    assert_eq!(m.consume(CB0), vec![5]);
    // Port 5 (the old tail) is unlinked now: 6 starts a new queue.
    assert!(f.set_pending(&mut m, 6, 0));
    assert_eq!(m.head(CB0, 7), 6);
    assert_eq!(m.word(5) & LINK_MASK, 0);
    // The same port raised again after being consumed.
    assert_eq!(m.consume(CB0), vec![6]);
    assert!(f.set_pending(&mut m, 6, 0));
    assert_eq!(m.consume(CB0), vec![6]);
}

#[test]
fn a_changed_priority_applies_to_the_next_link() {
    let (mut f, mut m) = setup();
    assert!(f.set_pending(&mut m, 5, 0));
    f.set_priority(5, 2).unwrap();
    assert_eq!(m.consume(CB0), vec![5]);
    assert!(f.set_pending(&mut m, 5, 0));
    assert_eq!(m.ready(CB0), 1 << 2);
    // Its old queue is empty: a port there becomes head, not a link.
    assert!(f.set_pending(&mut m, 6, 0));
    assert_eq!(m.head(CB0, 7), 6);
    assert_eq!(m.word(5), PENDING | LINKED);
}

#[test]
fn priorities_above_15_are_refused() {
    let mut f = Fifo::new(1);
    assert_eq!(f.set_priority(3, 16), Err(Errno::Inval));
    assert_eq!(f.set_priority(3, u32::MAX), Err(Errno::Inval));
    assert_eq!(f.priority(3), PRIORITY_DEFAULT);
    assert_eq!(f.set_priority(3, 15), Ok(()));
    assert_eq!(f.priority(3), 15);
}

#[test]
fn a_port_without_a_page_is_raised_when_its_page_arrives() {
    let mut f = Fifo::new(1);
    let mut m = Mem::new();
    f.map_control(0, CB0).unwrap();
    assert!(!f.set_pending(&mut m, 7, 0));
    assert!(m.writes.is_empty());
    let ports = f.add_page(ARRAY[0]).unwrap();
    let raised: Vec<Port> = ports.filter(|&p| f.take_saved(p)).collect();
    assert_eq!(raised, vec![7]);
    assert!(!f.take_saved(7), "taken once");
}

#[test]
fn without_a_control_block_an_event_is_only_marked_pending() {
    let mut f = Fifo::new(2);
    let mut m = Mem::new();
    f.map_control(0, CB0).unwrap();
    f.add_page(ARRAY[0]).unwrap();
    assert!(!f.set_pending(&mut m, 4, 1));
    assert_eq!(m.word(4), PENDING);
    assert!(!f.set_pending(&mut m, 4, 9), "no such vCPU");
}

#[test]
fn control_blocks_map_once_per_vcpu() {
    let mut f = Fifo::new(2);
    assert!(!f.has_control(0));
    assert_eq!(f.map_control(0, CB0), Ok(()));
    assert!(f.has_control(0));
    assert_eq!(f.map_control(0, CB1), Err(Errno::Inval));
    assert_eq!(f.map_control(2, CB1), Err(Errno::NoEnt));
}

#[test]
fn control_block_offsets_as_xen_checks_them() {
    assert_eq!(check_control_offset(0), Ok(()));
    assert_eq!(check_control_offset(4096 - 72), Ok(()));
    assert_eq!(check_control_offset(4096 - 64), Err(Errno::Inval));
    assert_eq!(check_control_offset(4), Err(Errno::Inval));
    assert_eq!(check_control_offset(u32::MAX), Err(Errno::Inval));
}

#[test]
fn the_array_holds_at_most_128_pages() {
    let mut f = Fifo::new(1);
    for i in 0..MAX_PAGES {
        f.add_page(i as u64 * 4096).unwrap();
    }
    assert_eq!(f.nr_ports(), 1 << 17);
    assert_eq!(f.check_room(), Err(Errno::NoSpc));
    assert_eq!(f.add_page(0), Err(Errno::NoSpc));
}

#[test]
fn closing_clears_pending_and_the_priority() {
    let (mut f, mut m) = setup();
    f.set_priority(5, 1).unwrap();
    assert!(f.set_pending(&mut m, 5, 0));
    f.close(&mut m, 5);
    assert_eq!(m.word(5), LINKED);
    assert_eq!(f.priority(5), PRIORITY_DEFAULT);
    assert_eq!(m.consume(CB0), vec![], "the guest skips it");
}

#[test]
fn a_vanished_page_drops_the_event() {
    let mut f = Fifo::new(1);
    let mut m = Mem::new();
    f.map_control(0, CB0).unwrap();
    f.add_page(1 << 40).unwrap();
    assert!(!f.set_pending(&mut m, 3, 0));
    assert!(!f.unmask(&mut m, 3, 0));
    assert!(!f.is_pending(&mut m, 3));
}

#[test]
fn a_guest_made_loop_costs_the_hypervisor_nothing() {
    let (mut f, mut m) = setup();
    assert!(f.set_pending(&mut m, 5, 0));
    assert!(!f.set_pending(&mut m, 6, 0));
    // The guest links 6 back to 5 and points HEAD past the array.
    m.set_word(6, PENDING | LINKED | 5);
    m.put(CB0 + CONTROL_HEAD + 28, LINK_MASK);
    m.writes.clear();
    assert!(!f.set_pending(&mut m, 7, 0));
    // One write to 7's word (pending), one to 7 (linked), one to the tail.
    assert_eq!(m.writes.len(), 3);
    assert_eq!(m.word(6), PENDING | LINKED | 7);
}

#[test]
fn a_busy_tail_is_linked_and_busy_cleared() {
    let (mut f, mut m) = setup();
    assert!(f.set_pending(&mut m, 5, 0));
    m.set_word(5, PENDING | LINKED | BUSY | 0x1_2345);
    assert!(!f.set_pending(&mut m, 6, 0));
    assert_eq!(m.word(5), PENDING | LINKED | 6);
}

/// pcifront's pattern: the backend's answer queues the port while the
/// guest holds events masked, and the guest clears `PENDING` itself.
fn answered_and_cleared(f: &mut Fifo, m: &mut Mem, port: Port) {
    assert!(f.set_pending(m, port, 0));
    m.set_word(port, m.word(port) & !PENDING);
}

fn copy(m: &Mem) -> Mem {
    Mem {
        words: m.words.clone(),
        writes: Vec::new(),
    }
}

#[test]
fn an_upcall_that_would_find_nothing_is_left_out_as_the_handler_would() {
    let (mut f, mut m) = setup();
    answered_and_cleared(&mut f, &mut m, 5);
    let mut handler = copy(&m);
    assert_eq!(handler.consume(CB0), Vec::<Port>::new());
    assert!(f.leave_out_upcall(&mut m, 0));
    assert_eq!(
        m.words, handler.words,
        "the queues as the handler leaves them"
    );
    assert_eq!((m.word(5), m.ready(CB0)), (0, 0));
    // The queue is empty: the next answer is its head again and asks for
    // an upcall, which finds the port.
    assert!(f.set_pending(&mut m, 5, 0));
    assert_eq!(m.head(CB0, 7), 5);
    assert!(!f.leave_out_upcall(&mut m, 0));
    assert_eq!(m.consume(CB0), vec![5]);
}

#[test]
fn a_masked_pending_event_is_nothing_to_find_either() {
    let (mut f, mut m) = setup();
    assert!(f.set_pending(&mut m, 5, 0));
    m.set_word(5, m.word(5) | MASKED);
    assert!(f.leave_out_upcall(&mut m, 0));
    assert_eq!(m.word(5), PENDING | MASKED);
    assert_eq!(m.ready(CB0), 0);
}

#[test]
fn an_upcall_that_would_find_an_event_goes() {
    let (mut f, mut m) = setup();
    assert!(f.set_pending(&mut m, 5, 0));
    let before = m.words.clone();
    assert!(!f.leave_out_upcall(&mut m, 0));
    assert_eq!(m.words, before, "nothing written");
    assert_eq!(m.consume(CB0), vec![5]);
}

#[test]
fn only_the_simple_case_is_left_out() {
    // Two events in one queue, neither pending any more.
    let (mut f, mut m) = setup();
    answered_and_cleared(&mut f, &mut m, 5);
    assert!(!f.set_pending(&mut m, 6, 0));
    m.set_word(6, m.word(6) & !PENDING);
    assert!(!f.leave_out_upcall(&mut m, 0));
    // One idle queue and one with a pending event.
    let (mut f, mut m) = setup();
    answered_and_cleared(&mut f, &mut m, 5);
    f.set_priority(9, 2).unwrap();
    assert!(f.set_pending(&mut m, 9, 0));
    assert!(!f.leave_out_upcall(&mut m, 0));
    // A head beyond the first event array page.
    let (mut f, mut m) = setup();
    answered_and_cleared(&mut f, &mut m, 1030);
    assert!(!f.leave_out_upcall(&mut m, 0));
    // READY bits beyond the 16 queues (the guest's writing).
    let (mut f, mut m) = setup();
    answered_and_cleared(&mut f, &mut m, 5);
    m.put(CB0, m.ready(CB0) | 1 << 20);
    assert!(!f.leave_out_upcall(&mut m, 0));
    // No control block, or no event array page.
    let (f, mut m) = (Fifo::new(1), Mem::new());
    assert!(!f.leave_out_upcall(&mut m, 0));
    let mut f = Fifo::new(1);
    f.map_control(0, CB0).unwrap();
    assert!(!f.leave_out_upcall(&mut m, 0));
}

#[test]
fn nothing_ready_is_nothing_to_find() {
    let (f, mut m) = setup();
    assert!(f.leave_out_upcall(&mut m, 0));
    assert!(m.writes.iter().all(|&w| w == CB0), "only READY written");
}

#[test]
fn idle_queues_hold_one_event_not_pending_or_masked() {
    assert!(idle_queue(5, Some(LINKED)));
    assert!(idle_queue(1023, Some(LINKED | PENDING | MASKED)));
    assert!(!idle_queue(5, Some(LINKED | PENDING)));
    assert!(!idle_queue(5, Some(LINKED | 6)));
    assert!(!idle_queue(5, Some(0)), "not linked");
    assert!(!idle_queue(5, None));
    assert!(!idle_queue(0, Some(LINKED)));
    assert!(!idle_queue(1024, Some(LINKED)));
}

#[derive(Clone, Debug)]
enum Op {
    Raise(Port, u32),
    Unmask(Port, u32),
    Close(Port),
    Priority(Port, u32),
    /// The guest writes `value` at word `index` of its pages.
    Scribble(usize, u32),
    Consume(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u32..2048, 0u32..3).prop_map(|(p, v)| Op::Raise(p, v)),
        (0u32..2048, 0u32..3).prop_map(|(p, v)| Op::Unmask(p, v)),
        (0u32..2048).prop_map(Op::Close),
        (0u32..2048, 0u32..20).prop_map(|(p, q)| Op::Priority(p, q)),
        (0usize..PAGES * 1024, any::<u32>()).prop_map(|(i, v)| Op::Scribble(i, v)),
        any::<bool>().prop_map(Op::Consume),
    ]
}

proptest! {
    /// Whatever the guest writes into its control blocks and event array,
    /// each operation ends after a few accesses, and every write lands in
    /// an event word or a control block's READY or HEAD words.
    #[test]
    fn guest_scribbles_never_send_the_hypervisor_astray(ops in proptest::collection::vec(op(), 1..200)) {
        let (mut f, mut m) = setup();
        for op in ops {
            m.writes.clear();
            match op {
                Op::Raise(p, v) => {
                    let _ = f.set_pending(&mut m, p, v);
                }
                Op::Unmask(p, v) => {
                    let _ = f.unmask(&mut m, p, v);
                }
                Op::Close(p) => f.close(&mut m, p),
                Op::Priority(p, q) => {
                    let _ = f.set_priority(p, q);
                }
                Op::Scribble(i, v) => m.words[i] = v,
                Op::Consume(first) => {
                    let _ = m.consume(if first { CB0 } else { CB1 });
                }
            }
            prop_assert!(m.writes.len() <= 6);
            for &w in &m.writes {
                let in_array = ARRAY.iter().any(|&a| (a..a + 4096).contains(&w));
                let in_cb = [CB0, CB1].iter().any(|&c| (c..c + CONTROL_BLOCK_SIZE).contains(&w));
                prop_assert!(in_array || in_cb, "write at {:#x}", w);
            }
        }
    }

    /// With a well-behaved guest, every raised unmasked port is delivered
    /// exactly once, in the order raised within one priority.
    #[test]
    fn raised_ports_arrive_once_in_order(ports in proptest::collection::vec(1u32..2048, 1..100)) {
        let (mut f, mut m) = setup();
        let mut want = Vec::new();
        for &p in &ports {
            let _ = f.set_pending(&mut m, p, 0);
            if !want.contains(&p) {
                want.push(p);
            }
        }
        prop_assert_eq!(m.consume(CB0), want);
        prop_assert_eq!(m.ready(CB0), 0);
    }

    /// Whenever an upcall is left out, Linux's handler would have found
    /// nothing, and the queues are left as it would leave them.
    #[test]
    fn a_left_out_upcall_is_one_that_finds_nothing(ops in proptest::collection::vec(op(), 1..120)) {
        let (mut f, mut m) = setup();
        for op in ops {
            match op {
                Op::Raise(p, v) => {
                    let _ = f.set_pending(&mut m, p % 40, v % 2);
                }
                Op::Unmask(p, v) => {
                    let _ = f.unmask(&mut m, p % 40, v % 2);
                }
                Op::Close(p) => f.close(&mut m, p % 40),
                Op::Priority(p, q) => {
                    let _ = f.set_priority(p % 40, q);
                }
                // The guest clears a port's PENDING or sets its MASKED.
                Op::Scribble(i, v) => {
                    let port = (i % 40) as Port;
                    let bit = if v % 2 == 0 { 0 } else { MASKED };
                    m.set_word(port, (m.word(port) & !PENDING) | bit);
                }
                Op::Consume(first) => {
                    let mut handler = copy(&m);
                    let found = handler.consume(if first { CB0 } else { CB1 });
                    if f.leave_out_upcall(&mut m, if first { 0 } else { 1 }) {
                        prop_assert!(found.is_empty(), "left out, but the handler finds {:?}", found);
                        prop_assert_eq!(&m.words, &handler.words);
                    } else {
                        m = handler;
                    }
                }
            }
        }
    }
}
