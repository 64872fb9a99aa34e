//! The FIFO event channel ABI from the guest's side (`event_channel.h`,
//! the FIFO section): the event word's bits and Linux's consumer
//! (`events_fifo.c`: `evtchn_fifo_handle_events`, `consume_one_event`),
//! which the PVH guest `abi_fifo` and the PV guest `pv_hello` both use.

use core::sync::atomic::{AtomicU32, Ordering};

/// `EVTCHN_FIFO_PENDING`.
pub const PENDING: u32 = 1 << 31;
/// `EVTCHN_FIFO_MASKED`.
pub const MASKED: u32 = 1 << 30;
/// `EVTCHN_FIFO_LINKED`.
pub const LINKED: u32 = 1 << 29;
/// `EVTCHN_FIFO_BUSY`: Xen is linking to this event.
pub const BUSY: u32 = 1 << 28;
/// `EVTCHN_FIFO_LINK_MASK`.
pub const LINK_MASK: u32 = (1 << 17) - 1;
/// Event words on one event array page.
pub const WORDS_PER_PAGE: u32 = 1024;
/// `EVTCHN_FIFO_MAX_QUEUES`.
pub const MAX_QUEUES: usize = 16;

/// Events one call takes at most: a broken queue must not hang the guest.
const MAX_EVENTS: usize = 4096;

/// Each queue's next event, 0 to start from `HEAD` (Linux's `q->head`).
pub type Next = [AtomicU32; MAX_QUEUES];

/// Linux's upcall work on one vCPU's queues: take `ready` whole; for each
/// ready queue, highest priority (lowest number) first, take its next
/// event (`head(q)`, the control block's `HEAD`, when the last pass
/// reached the tail), clear its LINKED bit and LINK once Xen is not busy
/// with it, and if it is pending and not masked clear PENDING (Linux's
/// `clear_evtchn`) and `handle` it; a queue is done when the event taken
/// linked to nothing, and `ready` is taken again after each event. An
/// event without a word (`word` gives none) ends its queue.
pub fn consume(
    ready: &AtomicU32,
    head: impl Fn(usize) -> u32,
    word: impl Fn(u32) -> Option<&'static AtomicU32>,
    next: &Next,
    mut handle: impl FnMut(u32),
) {
    let mut pending = ready.swap(0, Ordering::SeqCst);
    for _ in 0..MAX_EVENTS {
        if pending == 0 {
            return;
        }
        let q = pending.trailing_zeros() as usize;
        let Some(next) = next.get(q) else {
            return;
        };
        let port = match next.load(Ordering::SeqCst) {
            0 => head(q),
            p => p,
        };
        let Some(w) = word(port) else {
            pending &= !(1 << q);
            next.store(0, Ordering::SeqCst);
            continue;
        };
        let mut seen = w.load(Ordering::SeqCst);
        let old = loop {
            let free = seen & !BUSY;
            match w.compare_exchange(
                free,
                free & !(LINKED | LINK_MASK),
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(v) => break v,
                Err(v) => seen = v,
            }
        };
        let link = old & LINK_MASK;
        if link == 0 {
            pending &= !(1 << q);
        }
        if old & PENDING != 0 && old & MASKED == 0 {
            w.fetch_and(!PENDING, Ordering::SeqCst);
            handle(port);
        }
        next.store(link, Ordering::SeqCst);
        pending |= ready.swap(0, Ordering::SeqCst);
    }
}
