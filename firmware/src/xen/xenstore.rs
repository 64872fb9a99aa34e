//! A xenstore client over the ring of `io/xs_wire.h`: the ring frame and
//! port from `HVM_PARAM_STORE_PFN` / `STORE_EVTCHN`, requests as
//! `xsd_sockmsg` headers (`type`, `req_id`, `tx_id`, `len`) plus payload,
//! written into `req` with `req_prod`; replies read from `rsp` with
//! `rsp_cons`. Watch events that arrive between replies are queued.
//!
//! Waiting is by `SCHEDOP_yield`, bounded: a backend that never answers
//! gives [`XsError::Timeout`], not a hang.

use core::mem::MaybeUninit;
use core::ptr::addr_of_mut;
use core::sync::atomic::{fence, Ordering};

use super::layout::xenstore_ring as xr;
use super::page::Page;
use super::{evtchn, get_param, hvm};

/// `enum xsd_sockmsg_type` values used here.
pub mod msg {
    /// List a node's children.
    pub const DIRECTORY: u32 = 1;
    /// Read a node.
    pub const READ: u32 = 2;
    /// Read a node's permissions.
    pub const GET_PERMS: u32 = 3;
    /// Watch a path.
    pub const WATCH: u32 = 4;
    /// Stop watching.
    pub const UNWATCH: u32 = 5;
    /// Start a transaction.
    pub const TRANSACTION_START: u32 = 6;
    /// Commit ("T") or abort ("F") a transaction.
    pub const TRANSACTION_END: u32 = 7;
    /// The home path of a domain.
    pub const GET_DOMAIN_PATH: u32 = 10;
    /// Write a node.
    pub const WRITE: u32 = 11;
    /// Create a node.
    pub const MKDIR: u32 = 12;
    /// Remove a node and its children.
    pub const RM: u32 = 13;
    /// Set a node's permissions.
    pub const SET_PERMS: u32 = 14;
    /// A watch fired (server to client).
    pub const WATCH_EVENT: u32 = 15;
    /// An error reply: the payload is an errno name.
    pub const ERROR: u32 = 16;
    /// Drop every watch of the connection.
    pub const RESET_WATCHES: u32 = 21;
}

/// What went wrong with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XsError {
    /// The server answered `XS_ERROR` with this errno name ("ENOENT"...).
    Remote(Name),
    /// No answer within the yield budget.
    Timeout,
    /// The request does not fit a message.
    TooBig,
    /// The reply broke the protocol (wrong id, oversized).
    Protocol,
}

/// A short NUL-free name (an errno name).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Name([u8; 16], usize);

impl Name {
    fn new(bytes: &[u8]) -> Name {
        let bytes = bytes.split(|&b| b == 0).next().unwrap_or(&[]);
        let n = bytes.len().min(16);
        let mut a = [0; 16];
        a[..n].copy_from_slice(&bytes[..n]);
        Name(a, n)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.0[..self.1]).unwrap_or("?")
    }
}

impl core::fmt::Debug for Name {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl XsError {
    /// Whether this is the server's error `name`.
    pub fn is(&self, name: &str) -> bool {
        matches!(self, XsError::Remote(n) if n.as_str() == name)
    }
}

/// One message read from the ring.
pub struct Reply {
    /// `XS_*` type.
    pub ty: u32,
    /// Request id it answers.
    pub req_id: u32,
    /// Transaction id.
    pub tx_id: u32,
    len: usize,
    data: [u8; xr::PAYLOAD_MAX],
}

impl Reply {
    const fn empty() -> Reply {
        Reply {
            ty: 0,
            req_id: 0,
            tx_id: 0,
            len: 0,
            data: [0; xr::PAYLOAD_MAX],
        }
    }

    /// The payload.
    pub fn body(&self) -> &[u8] {
        &self.data[..self.len]
    }

    /// The payload as text without its trailing NUL.
    pub fn text(&self) -> &str {
        let b = self.body();
        let b = b.strip_suffix(&[0]).unwrap_or(b);
        core::str::from_utf8(b).unwrap_or("(not UTF-8)")
    }

    /// The NUL-separated strings of the payload (directory entries,
    /// permissions, a watch event's path and token).
    pub fn strings(&self) -> impl Iterator<Item = &str> {
        let b = self.body();
        let b = b.strip_suffix(&[0]).unwrap_or(b);
        b.split(|&c| c == 0)
            .filter(|s| !s.is_empty())
            .map(|s| core::str::from_utf8(s).unwrap_or("?"))
    }
}

impl core::fmt::Debug for Reply {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Reply(type {}, id {}, {:?})",
            self.ty,
            self.req_id,
            self.text()
        )
    }
}

/// Watch events kept while waiting for replies.
const QUEUE: usize = 4;

/// The xenstore connection.
#[allow(missing_debug_implementations)]
pub struct Client {
    /// The ring page.
    pub page: Page,
    /// The event channel to the server.
    pub port: u32,
    next_id: u32,
    yields: u32,
    queue: [Reply; QUEUE],
    queued: usize,
}

impl Client {
    /// Opens the ring named by the HVM params.
    pub fn open(yields: u32) -> Result<Client, (u32, i64)> {
        let pfn = get_param(hvm::PARAM_STORE_PFN).map_err(|e| (hvm::PARAM_STORE_PFN, e))?;
        let port = get_param(hvm::PARAM_STORE_EVTCHN).map_err(|e| (hvm::PARAM_STORE_EVTCHN, e))?;
        let page = Page::at(pfn).ok_or((hvm::PARAM_STORE_PFN, 0))?;
        Ok(Client {
            page,
            port: port as u32,
            next_id: 1,
            yields,
            queue: [const { Reply::empty() }; QUEUE],
            queued: 0,
        })
    }

    /// [`Client::open`] into `slot`, without building the client on the
    /// stack first (it holds [`QUEUE`] message buffers of 4 KiB): for
    /// callers whose stack is tight, with the slot in a static.
    pub fn open_in(slot: &mut MaybeUninit<Client>, yields: u32) -> Result<&mut Client, (u32, i64)> {
        let pfn = get_param(hvm::PARAM_STORE_PFN).map_err(|e| (hvm::PARAM_STORE_PFN, e))?;
        let port = get_param(hvm::PARAM_STORE_EVTCHN).map_err(|e| (hvm::PARAM_STORE_EVTCHN, e))?;
        let page = Page::at(pfn).ok_or((hvm::PARAM_STORE_PFN, 0))?;
        let p = slot.as_mut_ptr();
        // SAFETY: every field of the client is written through raw
        // pointers into `slot` before it is taken as initialised; the
        // queue is zeroed whole, and all zeros is a valid `Reply`
        // (integers and a byte array).
        unsafe {
            addr_of_mut!((*p).page).write(page);
            addr_of_mut!((*p).port).write(port as u32);
            addr_of_mut!((*p).next_id).write(1);
            addr_of_mut!((*p).yields).write(yields);
            addr_of_mut!((*p).queue).write_bytes(0, 1);
            addr_of_mut!((*p).queued).write(0);
            Ok(slot.assume_init_mut())
        }
    }

    fn idx(&self, off: usize) -> u32 {
        self.page.u32(off).load(Ordering::SeqCst)
    }

    /// Puts raw bytes into the request ring (waiting for room) and
    /// notifies; used for requests and, by the garbage guest, for junk.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), XsError> {
        let mut done = 0;
        let mut budget = self.yields;
        while done < bytes.len() {
            let cons = self.idx(xr::REQ_CONS);
            let prod = self.idx(xr::REQ_PROD);
            let free = xr::SIZE.saturating_sub(prod.wrapping_sub(cons) as usize);
            let n = free.min(bytes.len() - done);
            for i in 0..n {
                let at = prod.wrapping_add(i as u32) as usize % xr::SIZE;
                self.page
                    .u8(xr::REQ + at)
                    .store(bytes[done + i], Ordering::Relaxed);
            }
            fence(Ordering::SeqCst);
            self.page
                .u32(xr::REQ_PROD)
                .store(prod.wrapping_add(n as u32), Ordering::SeqCst);
            done += n;
            evtchn::send(self.port);
            if n == 0 {
                if budget == 0 {
                    return Err(XsError::Timeout);
                }
                budget -= 1;
                crate::hypervisor::sched_yield();
            }
        }
        Ok(())
    }

    /// Copies `out.len()` bytes out of the reply ring, waiting for them.
    fn recv_bytes(&mut self, out: &mut [u8]) -> Result<(), XsError> {
        let mut done = 0;
        let mut budget = self.yields;
        while done < out.len() {
            let cons = self.idx(xr::RSP_CONS);
            let prod = self.idx(xr::RSP_PROD);
            let avail = (prod.wrapping_sub(cons) as usize).min(xr::SIZE);
            let n = avail.min(out.len() - done);
            fence(Ordering::SeqCst);
            for (i, b) in out[done..done + n].iter_mut().enumerate() {
                let at = cons.wrapping_add(i as u32) as usize % xr::SIZE;
                *b = self.page.u8(xr::RSP + at).load(Ordering::Relaxed);
            }
            fence(Ordering::SeqCst);
            self.page
                .u32(xr::RSP_CONS)
                .store(cons.wrapping_add(n as u32), Ordering::SeqCst);
            done += n;
            if n > 0 {
                evtchn::send(self.port);
            } else {
                if budget == 0 {
                    return Err(XsError::Timeout);
                }
                budget -= 1;
                crate::hypervisor::sched_yield();
            }
        }
        Ok(())
    }

    /// Reads the next message, whatever it is.
    fn recv(&mut self, into: &mut Reply) -> Result<(), XsError> {
        let mut hdr = [0u8; 16];
        self.recv_bytes(&mut hdr)?;
        let word = |i: usize| u32::from_le_bytes([hdr[i], hdr[i + 1], hdr[i + 2], hdr[i + 3]]);
        into.ty = word(0);
        into.req_id = word(4);
        into.tx_id = word(8);
        let len = word(12) as usize;
        if len > xr::PAYLOAD_MAX {
            return Err(XsError::Protocol);
        }
        into.len = len;
        self.recv_bytes(&mut into.data[..len])
    }

    /// Sends a request whose payload is the concatenation of `parts`, and
    /// waits for its reply, queueing watch events that come first.
    pub fn request(&mut self, ty: u32, tx: u32, parts: &[&[u8]]) -> Result<Reply, XsError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > xr::PAYLOAD_MAX {
            return Err(XsError::TooBig);
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let mut hdr = [0u8; 16];
        for (i, v) in [ty, id, tx, len as u32].into_iter().enumerate() {
            hdr[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
        }
        self.send_bytes(&hdr)?;
        for p in parts {
            self.send_bytes(p)?;
        }
        let mut reply = Reply::empty();
        loop {
            self.recv(&mut reply)?;
            if reply.ty == msg::WATCH_EVENT {
                if self.queued < QUEUE {
                    let slot = &mut self.queue[self.queued];
                    slot.ty = reply.ty;
                    slot.len = reply.len;
                    slot.data[..reply.len].copy_from_slice(reply.body());
                    self.queued += 1;
                }
                continue;
            }
            if reply.req_id != id {
                return Err(XsError::Protocol);
            }
            if reply.ty == msg::ERROR {
                return Err(XsError::Remote(Name::new(reply.body())));
            }
            return Ok(reply);
        }
    }

    /// The oldest watch event (path, token) seen so far, waiting for one
    /// for up to `yields` yields if none is queued.
    pub fn watch_event(&mut self, yields: u32) -> Option<Reply> {
        if self.queued == 0 {
            for _ in 0..yields {
                let cons = self.idx(xr::RSP_CONS);
                if self.idx(xr::RSP_PROD) != cons {
                    let mut r = Reply::empty();
                    if self.recv(&mut r).is_ok() && r.ty == msg::WATCH_EVENT {
                        return Some(r);
                    }
                    return None;
                }
                crate::hypervisor::sched_yield();
            }
            return None;
        }
        let mut first = Reply::empty();
        first.ty = self.queue[0].ty;
        first.len = self.queue[0].len;
        first.data[..first.len].copy_from_slice(self.queue[0].body());
        self.queue.rotate_left(1);
        self.queued -= 1;
        Some(first)
    }

    /// Watch events queued and not taken yet.
    pub fn queued_events(&self) -> usize {
        self.queued
    }

    /// `XS_READ` of `path`.
    pub fn read(&mut self, tx: u32, path: &str) -> Result<Reply, XsError> {
        self.request(msg::READ, tx, &[path.as_bytes(), b"\0"])
    }

    /// `XS_WRITE` of `value` at `path`.
    pub fn write(&mut self, tx: u32, path: &str, value: &[u8]) -> Result<(), XsError> {
        self.request(msg::WRITE, tx, &[path.as_bytes(), b"\0", value])
            .map(drop)
    }

    /// A request with one path argument (`XS_DIRECTORY`, `XS_MKDIR`,
    /// `XS_RM`, `XS_GET_PERMS`...).
    pub fn on_path(&mut self, ty: u32, tx: u32, path: &str) -> Result<Reply, XsError> {
        self.request(ty, tx, &[path.as_bytes(), b"\0"])
    }

    /// `XS_WATCH` or `XS_UNWATCH` (`ty`) of `path` with `token`.
    pub fn watch(&mut self, ty: u32, path: &str, token: &str) -> Result<(), XsError> {
        self.request(ty, 0, &[path.as_bytes(), b"\0", token.as_bytes(), b"\0"])
            .map(drop)
    }

    /// `XS_TRANSACTION_START`: the new transaction's id.
    pub fn start(&mut self) -> Result<u32, XsError> {
        let r = self.request(msg::TRANSACTION_START, 0, &[b"\0"])?;
        r.text().parse().map_err(|_| XsError::Protocol)
    }

    /// `XS_TRANSACTION_END`: commit (`true`) or abort.
    pub fn end(&mut self, tx: u32, commit: bool) -> Result<(), XsError> {
        let arg: &[u8] = if commit { b"T\0" } else { b"F\0" };
        self.request(msg::TRANSACTION_END, tx, &[arg]).map(drop)
    }
}
