//! Event channels, FIFO ABI (`xen/include/public/event_channel.h`, the
//! FIFO section; semantics of Xen's `event_fifo.c`): the hypervisor's side
//! of a domain's queues, over guest memory seen as 32-bit words.
//!
//! The guest owns the memory: per vCPU a control block (`READY`, one bit
//! per priority, and `HEAD[16]`) and the event array, one 32-bit event word
//! per port (`PENDING`, `MASKED`, `LINKED`, `BUSY` and a 17-bit `LINK`) in
//! pages it adds with `EVTCHNOP_expand_array`. The hypervisor keeps what
//! Xen keeps: where those pages are, each queue's tail, each port's
//! priority and the queue it was last linked on, and the pending state of
//! ports whose event word has no page yet.
//!
//! Raising a port sets `PENDING`; an unmasked, unlinked port is then linked
//! to the tail of its vCPU's queue of its priority (the tail's `LINK` is set
//! if the tail is still `LINKED`, otherwise the queue was empty and `HEAD`
//! gets the port), and a newly set `READY` bit asks for an upcall. The
//! hypervisor never follows a `LINK` the guest wrote and only ever writes
//! words it computed the address of from its own state, so whatever the
//! guest writes into these pages costs the guest its events, never the
//! hypervisor a loop or a stray access.

use alloc::vec::Vec;

use super::{Errno, Port, VcpuId};

/// `EVTCHN_FIFO_PENDING` (bit 31 of an event word).
pub const PENDING: u32 = 1 << 31;
/// `EVTCHN_FIFO_MASKED`.
pub const MASKED: u32 = 1 << 30;
/// `EVTCHN_FIFO_LINKED`.
pub const LINKED: u32 = 1 << 29;
/// `EVTCHN_FIFO_BUSY`.
pub const BUSY: u32 = 1 << 28;
/// `EVTCHN_FIFO_LINK_BITS`, returned by `EVTCHNOP_init_control`.
pub const LINK_BITS: u8 = 17;
/// `EVTCHN_FIFO_LINK_MASK`.
pub const LINK_MASK: u32 = (1 << LINK_BITS) - 1;
/// `EVTCHN_FIFO_MAX_QUEUES`: priorities 0 (highest) to 15.
pub const MAX_QUEUES: usize = 16;
/// `EVTCHN_FIFO_PRIORITY_DEFAULT`.
pub const PRIORITY_DEFAULT: u8 = 7;
/// `EVTCHN_FIFO_EVENT_WORDS_PER_PAGE`.
pub const WORDS_PER_PAGE: usize = 1024;
/// `EVTCHN_FIFO_MAX_EVENT_ARRAY_PAGES`: `EVTCHN_FIFO_NR_CHANNELS` (2^17)
/// ports' words.
pub const MAX_PAGES: usize = (1 << LINK_BITS) / WORDS_PER_PAGE;
/// `sizeof(evtchn_fifo_control_block_t)`: `READY`, a pad, `HEAD[16]`.
pub const CONTROL_BLOCK_SIZE: u64 = 72;
/// Offset of `HEAD[0]` in the control block.
pub const CONTROL_HEAD: u64 = 8;

/// Guest memory as the queue logic reaches it: naturally aligned 32-bit
/// words by guest-physical address. `None`/`false` when the address is no
/// longer the guest's memory (then the event is dropped, as a guest that
/// gives its pages away has no queue).
pub trait Words {
    /// The word at `gpa`.
    fn get(&mut self, gpa: u64) -> Option<u32>;
    /// Stores `v` at `gpa`.
    fn set(&mut self, gpa: u64, v: u32) -> bool;
}

/// Checks of `EVTCHNOP_init_control`'s `offset` (Xen's order): the block
/// must lie within the page and be 8-byte aligned; -EINVAL otherwise.
pub fn check_control_offset(offset: u32) -> Result<(), Errno> {
    if u64::from(offset) > 4096 - CONTROL_BLOCK_SIZE || !offset.is_multiple_of(8) {
        return Err(Errno::Inval);
    }
    Ok(())
}

/// Whether a ready queue whose `HEAD` is `head`, with event word `word`
/// (`None`: not on the first event array page, or unreadable), holds
/// nothing for an upcall to handle in the one case an upcall is left out
/// ([`Fifo::leave_out_upcall`], and the PV fast path's stub alike): one
/// event (`LINKED`, no `LINK`) that is not pending, or is masked.
pub fn idle_queue(head: Port, word: Option<u32>) -> bool {
    let alone = |w: u32| w & LINKED != 0 && w & LINK_MASK == 0;
    let idle = |w: u32| w & PENDING == 0 || w & MASKED != 0;
    (1..WORDS_PER_PAGE as Port).contains(&head) && word.is_some_and(|w| alone(w) && idle(w))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PortQ {
    priority: u8,
    /// The queue the port was last linked on (`fifo_lastq`).
    last_priority: u8,
    last_vcpu: VcpuId,
    /// Raised while its event word had no page (`evtchn->pending`).
    saved: bool,
}

const PORT_DEFAULT: PortQ = PortQ {
    priority: PRIORITY_DEFAULT,
    last_priority: PRIORITY_DEFAULT,
    last_vcpu: 0,
    saved: false,
};

#[derive(Clone, Copy, Debug, Default)]
struct VcpuQ {
    /// The control block's guest-physical address.
    control: Option<u64>,
    /// Each queue's tail as the hypervisor linked it (0: none).
    tail: [Port; MAX_QUEUES],
}

/// One domain's FIFO state.
#[derive(Debug)]
pub struct Fifo {
    /// The event array pages, by guest-physical address.
    pages: Vec<u64>,
    vcpus: Vec<VcpuQ>,
    /// Per port, grown on demand (a port beyond is at the defaults).
    ports: Vec<PortQ>,
}

impl Fifo {
    /// A domain of `nr_vcpus` switching to FIFO: no control block mapped,
    /// no event array page.
    pub fn new(nr_vcpus: u32) -> Self {
        Self {
            pages: Vec::new(),
            vcpus: alloc::vec![VcpuQ::default(); nr_vcpus as usize],
            ports: Vec::new(),
        }
    }

    /// Whether `vcpu` has a control block.
    pub fn has_control(&self, vcpu: VcpuId) -> bool {
        self.vcpus
            .get(vcpu as usize)
            .is_some_and(|v| v.control.is_some())
    }

    /// Maps `vcpu`'s control block at `gpa` (page and checked offset):
    /// -EINVAL if it has one already, -ENOENT for no such vCPU.
    pub fn map_control(&mut self, vcpu: VcpuId, gpa: u64) -> Result<(), Errno> {
        let v = self.vcpus.get_mut(vcpu as usize).ok_or(Errno::NoEnt)?;
        if v.control.is_some() {
            return Err(Errno::Inval);
        }
        v.control = Some(gpa);
        Ok(())
    }

    /// Ports the event array covers.
    pub fn nr_ports(&self) -> usize {
        self.pages.len() * WORDS_PER_PAGE
    }

    /// Whether another event array page fits (-ENOSPC beyond
    /// [`MAX_PAGES`], checked before the page itself, as in Xen).
    pub fn check_room(&self) -> Result<(), Errno> {
        if self.pages.len() >= MAX_PAGES {
            return Err(Errno::NoSpc);
        }
        Ok(())
    }

    /// Adds the event array page at `gpa`; returns the ports it covers,
    /// whose saved pending state the caller re-raises
    /// ([`Self::take_saved`]).
    pub fn add_page(&mut self, gpa: u64) -> Result<core::ops::Range<Port>, Errno> {
        self.check_room()?;
        let first = self.nr_ports() as Port;
        self.pages.push(gpa);
        Ok(first..self.nr_ports() as Port)
    }

    /// The event array pages, in port order.
    pub fn pages(&self) -> &[u64] {
        &self.pages
    }

    /// The control blocks' addresses (`None` where not mapped).
    pub fn controls(&self) -> impl Iterator<Item = Option<u64>> + '_ {
        self.vcpus.iter().map(|v| v.control)
    }

    /// `vcpu`'s control block (`None` if it has none).
    pub fn control(&self, vcpu: VcpuId) -> Option<u64> {
        self.vcpus.get(vcpu as usize)?.control
    }

    /// Whether an upcall to `vcpu` now would find nothing to handle; if so,
    /// does what the guest's handler would have done instead and returns
    /// true (the caller clears `evtchn_upcall_pending`, as the handler
    /// does first). Linux's handler (`evtchn_fifo_handle_events`) takes
    /// `READY` whole, then consumes every queue it named from `HEAD`: each
    /// event it takes loses `LINKED` and `LINK`, and is handled only if
    /// pending and not masked. Linux asks for such an upcall after every
    /// pcifront op: the backend's answer queues pcifront's port while
    /// pcifront holds events masked, and pcifront clears the port's
    /// `PENDING` itself before unmasking.
    ///
    /// Only the simple case is taken ([`idle_queue`]: each named queue
    /// holds one event, on the first event array page, the part the PV
    /// fast path's stub reaches); anything else gets its upcall.
    pub fn leave_out_upcall(&self, mem: &mut impl Words, vcpu: VcpuId) -> bool {
        let (Some(control), Some(&page)) = (self.control(vcpu), self.pages.first()) else {
            return false;
        };
        let Some(ready) = mem.get(control) else {
            return false;
        };
        if ready >> MAX_QUEUES != 0 {
            return false;
        }
        // Each ready queue's one event: its word's address and value.
        let mut events = [None; MAX_QUEUES];
        for (q, e) in events.iter_mut().enumerate() {
            if ready & (1 << q) == 0 {
                continue;
            }
            let head = mem.get(control + CONTROL_HEAD + 4 * q as u64).unwrap_or(0);
            let at = page + u64::from(head) * 4;
            let word = match (head as usize) < WORDS_PER_PAGE {
                true => mem.get(at),
                false => None,
            };
            if !idle_queue(head, word) {
                return false;
            }
            *e = word.map(|w| (at, w));
        }
        for (at, w) in events.into_iter().flatten() {
            mem.set(at, w & !(LINKED | LINK_MASK));
        }
        mem.set(control, 0);
        true
    }

    fn port(&self, port: Port) -> PortQ {
        self.ports
            .get(port as usize)
            .copied()
            .unwrap_or(PORT_DEFAULT)
    }

    fn port_mut(&mut self, port: Port) -> &mut PortQ {
        let i = port as usize;
        if i >= self.ports.len() {
            self.ports.resize(i + 1, PORT_DEFAULT);
        }
        &mut self.ports[i]
    }

    /// Marks `port` pending for when its page arrives (`setup_ports`
    /// carrying a 2-level pending bit over).
    pub fn save_pending(&mut self, port: Port) {
        self.port_mut(port).saved = true;
    }

    /// Whether `port` was raised while it had no page; clears that.
    pub fn take_saved(&mut self, port: Port) -> bool {
        (port as usize) < self.ports.len() && core::mem::take(&mut self.port_mut(port).saved)
    }

    /// `EVTCHNOP_set_priority` on a bound port: -EINVAL above 15. Events
    /// already queued stay where they are.
    pub fn set_priority(&mut self, port: Port, priority: u32) -> Result<(), Errno> {
        let p = u8::try_from(priority)
            .ok()
            .filter(|&p| usize::from(p) < MAX_QUEUES)
            .ok_or(Errno::Inval)?;
        self.port_mut(port).priority = p;
        Ok(())
    }

    /// `port`'s priority.
    pub fn priority(&self, port: Port) -> u8 {
        self.port(port).priority
    }

    fn word_gpa(&self, port: Port) -> Option<u64> {
        let page = self.pages.get(port as usize / WORDS_PER_PAGE)?;
        Some(page + u64::from(port) % WORDS_PER_PAGE as u64 * 4)
    }

    /// `port`'s event word (`None` without a page).
    pub fn word(&self, mem: &mut impl Words, port: Port) -> Option<u32> {
        mem.get(self.word_gpa(port)?)
    }

    /// Whether `port` is pending (`SCHEDOP_poll`).
    pub fn is_pending(&self, mem: &mut impl Words, port: Port) -> bool {
        self.word(mem, port).is_some_and(|w| w & PENDING != 0)
    }

    /// A port closed: `PENDING` cleared (the guest unlinks and ignores it
    /// if queued) and its priority back to the default for its next use.
    pub fn close(&mut self, mem: &mut impl Words, port: Port) {
        if let Some(a) = self.word_gpa(port) {
            if let Some(w) = mem.get(a) {
                mem.set(a, w & !PENDING);
            }
        }
        if let Some(p) = self.ports.get_mut(port as usize) {
            p.priority = PRIORITY_DEFAULT;
            p.saved = false;
        }
    }

    /// `evtchn_fifo_unmask`: clears `MASKED` and links the port if it is
    /// pending. True when `vcpu` must be told (`evtchn_upcall_pending`).
    pub fn unmask(&mut self, mem: &mut impl Words, port: Port, vcpu: VcpuId) -> bool {
        let Some(a) = self.word_gpa(port) else {
            return false;
        };
        let Some(w) = mem.get(a) else {
            return false;
        };
        mem.set(a, w & !MASKED);
        w & PENDING != 0 && self.set_pending(mem, port, vcpu)
    }

    /// `evtchn_fifo_set_pending`: raises `port` toward `vcpu`. True when
    /// `vcpu` must be told (a `READY` bit newly set).
    pub fn set_pending(&mut self, mem: &mut impl Words, port: Port, vcpu: VcpuId) -> bool {
        let Some(a) = self.word_gpa(port) else {
            self.port_mut(port).saved = true;
            return false;
        };
        let Some(w) = mem.get(a) else {
            return false;
        };
        mem.set(a, w | PENDING);
        let Some(control) = self.vcpus.get(vcpu as usize).and_then(|v| v.control) else {
            // The guest may not unmask before its control block exists.
            return false;
        };
        if w & (MASKED | LINKED) != 0 {
            return false;
        }
        mem.set(a, w | PENDING | LINKED);
        let q = self.port(port);
        let prio = usize::from(q.priority);
        // A port that was its old queue's tail leaves that queue empty.
        if let Some(old) = self.vcpus.get_mut(q.last_vcpu as usize) {
            let t = &mut old.tail[usize::from(q.last_priority)];
            if *t == port {
                *t = 0;
            }
        }
        let p = self.port_mut(port);
        p.last_vcpu = vcpu;
        p.last_priority = q.priority;
        let tail = self.vcpus[vcpu as usize].tail[prio];
        let linked = tail != 0 && self.set_link(mem, tail, port);
        self.vcpus[vcpu as usize].tail[prio] = port;
        if linked {
            return false;
        }
        mem.set(control + CONTROL_HEAD + 4 * prio as u64, port);
        let Some(ready) = mem.get(control) else {
            return false;
        };
        mem.set(control, ready | 1 << prio);
        ready & (1 << prio) == 0
    }

    /// Links `port` after `tail` if the guest has not consumed `tail` yet
    /// (it is still `LINKED`); false when the queue has emptied.
    fn set_link(&self, mem: &mut impl Words, tail: Port, port: Port) -> bool {
        let Some(a) = self.word_gpa(tail) else {
            return false;
        };
        match mem.get(a) {
            Some(w) if w & LINKED != 0 => mem.set(a, (w & !(BUSY | LINK_MASK)) | port),
            _ => false,
        }
    }
}
