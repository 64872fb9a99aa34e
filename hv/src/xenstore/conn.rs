//! One guest's connection to the store through its ring page (`struct
//! xenstore_domain_interface`, io/xs_wire.h; docs/misc/xenstore-ring.txt).
//!
//! The caller hands over a copy of the page; the guest is not running
//! while it is serviced. Everything on the page except `rsp`, `req_cons`,
//! `rsp_prod`, `server_features` and `error` is the guest's to write, so
//! every index is checked before it is used and every buffer offset is
//! masked into its ring: a hostile guest gets its ring marked with an
//! error, never a read or write outside the two rings.
//!
//! Requests are read in whole messages (a header may arrive before its
//! payload, over several calls); their replies and this domain's watch
//! events wait in an output queue that drains into `rsp` as the guest
//! frees space.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use super::ring::{self, offset, ERROR_PROTO, ERROR_RINGIDX, FEATURE_ERROR};
use super::store::DomId;
use super::wire::{Header, MsgType, HEADER_LEN, PAYLOAD_MAX};
use super::Xenstore;

/// A ring page as the caller copies it out of guest memory.
pub type Page = [u8; 4096];

/// `server_features` bit: the guest may ask for a reset through
/// `connection` (`XENSTORE_SERVER_FEATURE_RECONNECTION`).
pub const FEATURE_RECONNECTION: u32 = 1;
/// `connection`: the ring is usable (`XENSTORE_CONNECTED`).
pub const CONNECTED: u32 = 0;
/// `connection`: the guest asks for a reset (`XENSTORE_RECONNECT`).
pub const RECONNECT: u32 = 1;

/// Queued output beyond which no further requests are read and no events
/// taken, so a guest that never consumes its replies cannot grow the heap
/// (events wait in the store, which bounds them).
pub const OUTPUT_LIMIT: usize = 4 * (HEADER_LEN + PAYLOAD_MAX);

/// What one [`Connection::service`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Serviced {
    /// Indices or the connection state moved: the guest must get an event.
    pub notify: bool,
    /// Complete requests handled in this call.
    pub requests: u32,
    /// Why the ring is no longer serviced (its `error` field is set) until
    /// the guest asks for a reconnection.
    pub broken: Option<&'static str>,
}

/// A protocol error: the `error` value to set and why.
#[derive(Clone, Copy, Debug)]
struct Fault {
    code: u32,
    why: &'static str,
}

impl Fault {
    const fn ring_idx(why: &'static str) -> Self {
        Self {
            code: ERROR_RINGIDX,
            why,
        }
    }
}

/// One domain's ring connection: the request being received and the
/// output not yet written to the ring.
#[derive(Debug)]
pub struct Connection {
    domid: DomId,
    /// Bytes of the request being received (header, then payload).
    partial: Vec<u8>,
    /// Replies and watch events, in order, not yet on the ring.
    out: VecDeque<u8>,
    /// Set with the page's `error` field; cleared by a reconnection.
    broken: Option<&'static str>,
}

use crate::le::{get_u32 as get, put_u32 as put};

impl Connection {
    /// A connection for `domid` with nothing received or queued.
    pub fn new(domid: DomId) -> Self {
        Self {
            domid,
            partial: Vec::new(),
            out: VecDeque::new(),
            broken: None,
        }
    }

    /// The domain this connection serves.
    pub fn domid(&self) -> DomId {
        self.domid
    }

    /// Initialises a fresh ring page at domain build: everything zero
    /// (empty rings, `connection` = [`CONNECTED`], no error), with the
    /// reconnection and error features advertised.
    pub fn init_page(page: &mut Page) {
        page.fill(0);
        put(
            page,
            offset::SERVER_FEATURES,
            FEATURE_RECONNECTION | FEATURE_ERROR,
        );
        put(page, offset::CONNECTION, CONNECTED);
    }

    /// Whether output is queued that did not fit (call [`Self::service`]
    /// again after the guest consumes).
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Whether the guest has request bytes this connection has not read
    /// (after a call that used up its budget: service again).
    pub fn has_input(page: &Page) -> bool {
        get(page, offset::REQ_PROD) != get(page, offset::REQ_CONS)
    }

    /// Why the ring is no longer serviced, if it is not.
    pub fn broken(&self) -> Option<&'static str> {
        self.broken
    }

    /// Services the ring: a reconnection request first, then up to `budget`
    /// complete requests from `req` (each reply queued, followed by this
    /// domain's pending watch events), then as much queued output as fits
    /// into `rsp`. A hostile index marks the ring with `ERROR_RINGIDX`, an
    /// over-long payload with `ERROR_PROTO`; either stops the service until
    /// the guest reconnects, and drops the domain's watches and
    /// transactions (docs/misc/xenstore-ring.txt).
    pub fn service(&mut self, xs: &mut Xenstore, page: &mut Page, budget: u32) -> Serviced {
        let mut s = Serviced::default();
        if get(page, offset::CONNECTION) == RECONNECT {
            self.reset(xs, page);
            s.notify = true;
        }
        if let Some(why) = self.broken {
            s.broken = Some(why);
            return s;
        }
        if let Err(f) = self.exchange(xs, page, budget, &mut s) {
            self.drop_state(xs);
            put(page, offset::ERROR, f.code);
            self.broken = Some(f.why);
            s.broken = Some(f.why);
            s.notify = true;
        }
        s
    }

    /// Forgets everything in flight for this domain: the partial request,
    /// queued output, its watches, transactions and pending events.
    fn drop_state(&mut self, xs: &mut Xenstore) {
        self.partial.clear();
        self.out.clear();
        let reset = Header {
            ty: MsgType::ResetWatches as u32,
            len: 1,
            ..Header::default()
        };
        // RESET_WATCHES (with the empty string guests send) drops the
        // domain's watches and transactions; it cannot fail.
        let _ = xs.request(self.domid, reset, b"\0");
        let _ = xs.take_events(self.domid);
    }

    /// The reconnection protocol: drop all state, empty both rings
    /// (indices to 0), clear the error and set `connection` back.
    fn reset(&mut self, xs: &mut Xenstore, page: &mut Page) {
        self.drop_state(xs);
        self.broken = None;
        for off in [
            offset::REQ_CONS,
            offset::REQ_PROD,
            offset::RSP_CONS,
            offset::RSP_PROD,
            offset::ERROR,
        ] {
            put(page, off, 0);
        }
        put(page, offset::CONNECTION, CONNECTED);
    }

    fn exchange(
        &mut self,
        xs: &mut Xenstore,
        page: &mut Page,
        budget: u32,
        s: &mut Serviced,
    ) -> Result<(), Fault> {
        // Check the guest's output consumer before producing replies that
        // could not be delivered.
        ring::used(get(page, offset::RSP_CONS), get(page, offset::RSP_PROD))
            .map_err(|_| Fault::ring_idx("rsp_cons is not within a ring of rsp_prod"))?;
        while s.requests < budget && self.out.len() < OUTPUT_LIMIT {
            if !self.receive(page, s)? {
                break;
            }
            let reply = xs
                .handle_message(self.domid, &self.partial)
                .map_err(|_| Fault {
                    code: ERROR_PROTO,
                    why: "malformed request",
                })?;
            // The buffer is kept for the next request (no allocation once
            // it has grown).
            self.partial.clear();
            let header = reply.header.to_bytes();
            // Straight onto the ring when nothing waits before it and it
            // fits (the common case: one request, one reply), else queued.
            if !(self.out.is_empty() && put_whole(page, &[&header, &reply.payload], s)) {
                self.out.extend(&header);
                self.out.extend(&reply.payload);
            }
            xs.recycle(reply.payload);
            s.requests += 1;
            self.queue_events(xs);
        }
        if s.requests == 0 {
            // Events that fired elsewhere (a request's own went out after
            // its reply, above).
            self.queue_events(xs);
        }
        self.transmit(page, s)
    }

    /// Queues this domain's watch events behind the replies so far.
    fn queue_events(&mut self, xs: &mut Xenstore) {
        if self.out.len() >= OUTPUT_LIMIT || !xs.has_pending_events(self.domid) {
            return;
        }
        for ev in xs.take_events(self.domid) {
            self.out.extend(&ev.to_reply().to_bytes());
        }
    }

    /// Bytes still missing from the request being received; a header
    /// declaring a payload over `PAYLOAD_MAX` is a protocol error.
    fn missing(&self) -> Result<usize, Fault> {
        let have = self.partial.len();
        if have < HEADER_LEN {
            return Ok(HEADER_LEN - have);
        }
        let h = Header::parse(&self.partial).map_err(|_| Fault {
            code: ERROR_PROTO,
            why: "request payload longer than 4096 bytes",
        })?;
        Ok((HEADER_LEN + h.len as usize).saturating_sub(have))
    }

    /// Reads request bytes from `req`; `Ok(true)` once `partial` holds a
    /// whole request. Never reads past the current request.
    fn receive(&mut self, page: &mut Page, s: &mut Serviced) -> Result<bool, Fault> {
        loop {
            let want = self.missing()?;
            if want == 0 {
                return Ok(true);
            }
            let cons = get(page, offset::REQ_CONS);
            let prod = get(page, offset::REQ_PROD);
            let avail = ring::used(cons, prod)
                .map_err(|_| Fault::ring_idx("req_prod is not within a ring of req_cons"))?;
            let mut want = want;
            if self.partial.is_empty() && avail as usize >= HEADER_LEN {
                // A whole header waits: take its payload in the same turn
                // (a length over the limit is refused once the header is
                // in, by `missing`).
                let len = ring_u32(page, cons.wrapping_add(12)) as usize;
                if len <= PAYLOAD_MAX {
                    want = HEADER_LEN + len;
                }
            }
            let n = want.min(avail as usize);
            if n == 0 {
                return Ok(false);
            }
            self.partial.reserve(n);
            for r in ring::pieces(cons, n).into_iter().filter(|r| !r.is_empty()) {
                let len = r.len();
                match page.get(offset::REQ + r.start..offset::REQ + r.end) {
                    Some(bytes) => self.partial.extend_from_slice(bytes),
                    None => self.partial.resize(self.partial.len() + len, 0),
                }
            }
            put(page, offset::REQ_CONS, cons.wrapping_add(n as u32));
            s.notify = true;
        }
    }

    /// Writes as much queued output into `rsp` as the guest left room for.
    fn transmit(&mut self, page: &mut Page, s: &mut Serviced) -> Result<(), Fault> {
        let cons = get(page, offset::RSP_CONS);
        let prod = get(page, offset::RSP_PROD);
        let room = ring::free(cons, prod)
            .map_err(|_| Fault::ring_idx("rsp_cons is not within a ring of rsp_prod"))?;
        let n = (room as usize).min(self.out.len());
        if n == 0 {
            return Ok(());
        }
        // Whole runs, not byte by byte: the queue made one slice (it
        // usually is one already), copied in at most two pieces.
        let out = self.out.make_contiguous();
        write_at(page, prod, out.get(..n).unwrap_or_default());
        self.out.drain(..n);
        put(page, offset::RSP_PROD, prod.wrapping_add(n as u32));
        s.notify = true;
        Ok(())
    }
}

/// The little-endian word at free-running index `at` of the request
/// buffer, wrapping where the buffer does.
fn ring_u32(page: &Page, at: u32) -> u32 {
    let byte = |i: u32| page[offset::REQ + ring::mask(at.wrapping_add(i))];
    u32::from_le_bytes([byte(0), byte(1), byte(2), byte(3)])
}

/// Writes `bytes` into the response buffer from free-running index `prod`
/// (at most the ring's size), wrapping where the buffer does.
fn write_at(page: &mut Page, prod: u32, bytes: &[u8]) {
    let [to_end, from_start] = ring::pieces(prod, bytes.len());
    let (first, rest) = bytes.split_at(to_end.len().min(bytes.len()));
    if let Some(dst) = page.get_mut(offset::RSP + to_end.start..offset::RSP + to_end.end) {
        dst.copy_from_slice(first);
    }
    if !rest.is_empty() {
        if let Some(dst) = page.get_mut(offset::RSP..offset::RSP + from_start.end) {
            dst.copy_from_slice(rest.get(..dst.len()).unwrap_or_default());
        }
    }
}

/// Puts `parts` on the response ring one after the other and publishes
/// them, if they all fit in its free space; `false` (nothing written) if
/// not. The indices were checked when the exchange began.
fn put_whole(page: &mut Page, parts: &[&[u8]], s: &mut Serviced) -> bool {
    let cons = get(page, offset::RSP_CONS);
    let mut prod = get(page, offset::RSP_PROD);
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if !ring::free(cons, prod).is_ok_and(|room| total <= room as usize) {
        return false;
    }
    for part in parts {
        write_at(page, prod, part);
        prod = prod.wrapping_add(part.len() as u32);
    }
    put(page, offset::RSP_PROD, prod);
    s.notify = true;
    true
}

/// Whether `domid` has watch events waiting: its ring should be serviced
/// even if the guest has not signalled.
pub fn has_pending_events(xs: &Xenstore, domid: DomId) -> bool {
    xs.has_pending_events(domid)
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
