//! A frontend of Xen's paravirtual PCI protocol (`io/pciif.h`, the
//! pcifront/pciback split), written from the documented protocol.
//!
//! Setup ([`Frontend::connect`]), as the frontends of Linux and NetBSD do
//! it: the frontend directory `/local/domain/<domid>/device/pci/0` names
//! the backend (`backend`, `backend-id`); once the backend's `state` is
//! InitWait (2) or Initialised (3), a zeroed page is granted to the backend
//! domain, an unbound event channel is allocated for it, and
//! `pci-op-ref`, `event-channel`, `magic` = "7" and `state` = 3 are written
//! in one transaction (retried on EAGAIN). When the backend is Connected
//! (4) the roots come from `root_num` and `root-N` ("dddd:bb"; 0000:00
//! when `root_num` is absent). [`Frontend::connected`] moves the frontend
//! to Connected after the scan.
//!
//! An op ([`Frontend::op`]) is one `struct xen_pci_op` in the shared page
//! at offset 4: copied in, a write barrier, bit 0 of `flags`
//! (`_XEN_PCIF_active`) set atomically, `EVTCHNOP_send`; then the guest
//! waits while bit 0 is set (a short spin, then `SCHEDOP_poll` on the port),
//! for 2 s at most like Linux, after which the op counts as
//! `XEN_PCI_ERR_dev_not_found`; then the op is copied back.
//!
//! MSI and MSI-X ops return pirqs, which are bound with
//! `EVTCHNOP_bind_pirq` and unmasked: the device's interrupts arrive as
//! events through the upcall (see [`crate::pci::Irq`]).

use core::cell::UnsafeCell;
use core::fmt::{self, Write};
use core::mem::MaybeUninit;
use core::sync::atomic::{fence, AtomicBool, Ordering};

use super::page::{Page, PageBuf};
use super::xenstore::{Client, XsError};
use super::{evtchn, grant, shared};
use crate::pci::{Function, Irq, PciError, Root, Sbdf, Transport};
use crate::{cpu, println};
pub use vmm_glue::xen::pciif::{cmd, MsixEntry, PciOp, PciOpHead, MAGIC};
use vmm_glue::xen::pciif::{field, FLAGS, FLAG_PCIF_ACTIVE, OP, SH_INFO_MAX_VEC};

/// `XenbusState` values (`io/xenbus.h`).
pub mod state {
    /// Node absent.
    pub const UNKNOWN: u32 = 0;
    /// Being set up.
    pub const INITIALISING: u32 = 1;
    /// Backend: waiting for configuration.
    pub const INIT_WAIT: u32 = 2;
    /// Ready to connect (frontend: ring details published).
    pub const INITIALISED: u32 = 3;
    /// Operational.
    pub const CONNECTED: u32 = 4;
    /// Tearing down.
    pub const CLOSING: u32 = 5;
    /// Torn down.
    pub const CLOSED: u32 = 6;
    /// Hot-plug under way.
    pub const RECONFIGURING: u32 = 7;
    /// Backend: hot-plug applied.
    pub const RECONFIGURED: u32 = 8;
}

/// The grant reference of the shared page: the first one after the 8
/// that `grant_table.h` reserves for the toolstack.
pub const GREF: u32 = 8;
/// How long an op may take before it counts as `dev_not_found` (Linux).
pub const OP_TIMEOUT_NS: u64 = 2_000_000_000;
/// How long to wait for each backend state change.
pub const STATE_TIMEOUT_NS: u64 = 30_000_000_000;
/// Transaction attempts before giving up on EAGAIN.
const TX_ATTEMPTS: u32 = 16;
/// Root buses kept.
pub const MAX_ROOTS: usize = 8;
/// Functions with bound pirq ports tracked (closed on disable).
const MAX_BOUND: usize = 8;
/// Yields the xenstore client waits for each reply.
const XS_YIELDS: u32 = 200_000;

/// An op `cmd` for function `f`, everything else zero.
pub fn new_op(cmd: u32, f: Sbdf) -> PciOp {
    PciOp {
        head: PciOpHead {
            cmd,
            domain: u32::from(f.seg),
            bus: u32::from(f.bus),
            devfn: (u32::from(f.dev) << 3) | u32::from(f.func),
            ..PciOpHead::default()
        },
        msix_entries: [MsixEntry::default(); SH_INFO_MAX_VEC],
    }
}

/// The header words (`cmd` .. `info`) of `op` in order.
fn words(op: &PciOp) -> [u32; 9] {
    [
        op.head.cmd,
        op.head.err as u32,
        op.head.domain,
        op.head.bus,
        op.head.devfn,
        op.head.offset as u32,
        op.head.size as u32,
        op.head.value,
        op.head.info,
    ]
}

fn set_words(op: &mut PciOp, w: [u32; 9]) {
    op.head.cmd = w[0];
    op.head.err = w[1] as i32;
    op.head.domain = w[2];
    op.head.bus = w[3];
    op.head.devfn = w[4];
    op.head.offset = w[5] as i32;
    op.head.size = w[6] as i32;
    op.head.value = w[7];
    op.head.info = w[8];
}

/// A path or value built on the stack.
#[derive(Clone, Copy)]
pub struct Text {
    buf: [u8; 128],
    len: usize,
}

impl Text {
    /// The formatted text (cut at 128 bytes).
    pub fn new(args: fmt::Arguments<'_>) -> Text {
        let mut t = Text {
            buf: [0; 128],
            len: 0,
        };
        let _ = t.write_fmt(args);
        t
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl Write for Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! text {
    ($($arg:tt)*) => { Text::new(format_args!($($arg)*)) };
}

/// Why the frontend could not connect.
#[derive(Debug, Clone, Copy)]
pub enum SetupError {
    /// shared_info or the callback vector could not be set up (result).
    Events(i64),
    /// The xenstore ring is not there (HVM param, result).
    NoXenstore(u32, i64),
    /// A xenstore request failed (the key, the error).
    Xenstore(&'static str, XsError),
    /// A node did not hold what it should (the key).
    BadValue(&'static str),
    /// The backend went to a state it should not (the state).
    BackendState(u32),
    /// The backend did not reach `state` in time.
    Timeout(u32),
    /// The grant table frame or the grant failed (result).
    Grant(i64),
    /// `EVTCHNOP_alloc_unbound` failed (result).
    Evtchn(i64),
    /// The transaction kept failing with EAGAIN.
    Transaction,
    /// [`Frontend::connect`] was called before (one frontend per guest).
    AlreadyConnected,
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupError::Events(rc) => write!(f, "shared_info or callback vector: {rc}"),
            SetupError::NoXenstore(p, rc) => write!(f, "xenstore ring: HVM param {p}: {rc}"),
            SetupError::Xenstore(node, e) => write!(f, "xenstore {node}: {e:?}"),
            SetupError::BadValue(node) => write!(f, "xenstore {node}: unexpected value"),
            SetupError::BackendState(s) => write!(f, "backend went to state {s}"),
            SetupError::Timeout(s) => write!(f, "backend did not reach state {s} in time"),
            SetupError::Grant(rc) => write!(f, "grant of the shared page: {rc}"),
            SetupError::Evtchn(rc) => write!(f, "alloc_unbound: {rc}"),
            SetupError::Transaction => write!(f, "transaction: EAGAIN {TX_ATTEMPTS} times"),
            SetupError::AlreadyConnected => write!(f, "a frontend was set up already"),
        }
    }
}

/// What [`Frontend::connect_with`] publishes where it differs from the
/// protocol (the default publishes the protocol's values).
#[derive(Debug, Clone, Copy)]
pub struct Publish {
    /// `magic` (the protocol's is [`MAGIC`]).
    pub magic: &'static str,
    /// `pci-op-ref`, if not the shared page's grant ([`GREF`]).
    pub gref: Option<u32>,
    /// `event-channel`, if not the port allocated for the backend.
    pub port: Option<u32>,
    /// Revoke the shared page's grant before publishing it.
    pub revoke: bool,
    /// Wait this long for the frontend directory to appear (a domain
    /// started without functions gets a backend at its first
    /// `pci-attach`); 0: it must be there.
    pub wait_ns: u64,
}

impl Default for Publish {
    fn default() -> Self {
        Publish {
            magic: MAGIC,
            gref: None,
            port: None,
            revoke: false,
            wait_ns: 0,
        }
    }
}

/// The page shared with the backend.
static SHARED: PageBuf = PageBuf::new();

/// The xenstore client of the frontend, in a static: a [`Client`] holds
/// several 4 KiB message buffers, too much for the guest's 64 KiB stack.
struct XsSlot {
    taken: AtomicBool,
    client: UnsafeCell<MaybeUninit<Client>>,
}

// SAFETY: `client` is only reached through `take_xs_slot`, which hands out
// the one `&'static mut` once (guarded by the atomic `taken`).
unsafe impl Sync for XsSlot {}

static XS: XsSlot = XsSlot {
    taken: AtomicBool::new(false),
    client: UnsafeCell::new(MaybeUninit::uninit()),
};

/// The client slot, the first time only.
fn take_xs_slot() -> Option<&'static mut MaybeUninit<Client>> {
    if XS.taken.swap(true, Ordering::SeqCst) {
        return None;
    }
    // SAFETY: `taken` was false, so no other reference to the slot was
    // ever handed out, and none will be.
    Some(unsafe { &mut *XS.client.get() })
}

/// A connected PCI frontend (one per guest, like Linux's and NetBSD's).
#[allow(missing_debug_implementations)]
pub struct Frontend {
    xs: &'static mut Client,
    page: Page,
    port: u32,
    backend_id: u16,
    frontend: Text,
    backend: Text,
    roots: [Root; MAX_ROOTS],
    nroots: usize,
    bound: [(Sbdf, u32); MAX_BOUND],
    nbound: usize,
    ops: u64,
    timeouts: u64,
}

/// System time in ns (pvclock), or TSC-derived without it.
fn now_ns() -> u64 {
    shared::now().unwrap_or_else(|| {
        let per_ms = crate::pci::tsc_per_ms().max(1);
        cpu::rdtsc() / per_ms * 1_000_000
    })
}

fn number(r: &super::xenstore::Reply) -> Option<u32> {
    r.text().trim().parse().ok()
}

impl Frontend {
    /// Connects to the backend named in `device/pci/0` (see the module
    /// documentation).
    pub fn connect() -> Result<Frontend, SetupError> {
        Self::connect_with(Publish::default())
    }

    /// [`Frontend::connect`], publishing what `how` says instead of the
    /// protocol's values (for the protocol attacks).
    #[inline(never)]
    pub fn connect_with(how: Publish) -> Result<Frontend, SetupError> {
        if shared::page().is_none() {
            let rc = shared::map();
            if rc != 0 {
                return Err(SetupError::Events(rc));
            }
            let rc = evtchn::setup_upcall();
            if rc != 0 {
                return Err(SetupError::Events(rc));
            }
        }
        let slot = take_xs_slot().ok_or(SetupError::AlreadyConnected)?;
        let xs =
            Client::open_in(slot, XS_YIELDS).map_err(|(p, rc)| SetupError::NoXenstore(p, rc))?;
        let domid = match super::domid() {
            Some(d) => u32::from(d),
            None => {
                let r = xs
                    .read(0, "domid")
                    .map_err(|e| SetupError::Xenstore("domid", e))?;
                number(&r).ok_or(SetupError::BadValue("domid"))?
            }
        };
        let frontend = text!("/local/domain/{domid}/device/pci/0");
        let start = now_ns();
        let backend = loop {
            match Self::read_text(xs, &frontend, "backend") {
                Err(SetupError::Xenstore(_, e))
                    if e.is("ENOENT") && now_ns().wrapping_sub(start) < how.wait_ns =>
                {
                    crate::hypervisor::sched_yield();
                }
                r => break r?,
            }
        };
        let backend_id = Self::read_number(xs, &frontend, "backend-id")?;
        let backend_id =
            u16::try_from(backend_id).map_err(|_| SetupError::BadValue("backend-id"))?;
        println!("xpci: pcifront: domain {domid}, frontend {frontend}, backend {backend} (domain {backend_id})");

        let mut fe = Frontend {
            xs,
            page: SHARED.page(),
            port: 0,
            backend_id,
            frontend,
            backend,
            roots: [Root::default(); MAX_ROOTS],
            nroots: 0,
            bound: [(Sbdf::default(), 0); MAX_BOUND],
            nbound: 0,
            ops: 0,
            timeouts: 0,
        };
        let s = fe.wait_backend(&[state::INIT_WAIT, state::INITIALISED])?;
        println!("xpci: pcifront: backend state {s}");

        fe.page.fill(0);
        let rc = grant::map_frame(0);
        if rc != 0 {
            return Err(SetupError::Grant(rc));
        }
        if !grant::grant(GREF, backend_id, fe.page.gfn(), false) {
            return Err(SetupError::Grant(-super::errno::EINVAL));
        }
        fe.port = evtchn::alloc_unbound(super::layout::DOMID_SELF, backend_id)
            .map_err(SetupError::Evtchn)?;
        if how.revoke && !grant::set_entry(GREF, 0, 0, 0) {
            return Err(SetupError::Grant(-super::errno::EINVAL));
        }
        let gref = how.gref.unwrap_or(GREF);
        let port = how.port.unwrap_or(fe.port);
        fe.publish(gref, port, how.magic)?;
        println!(
            "xpci: pcifront: published pci-op-ref {gref} (frame {:#x}), event-channel {port}, magic {}, state 3",
            fe.page.gfn(),
            how.magic
        );

        fe.wait_backend(&[state::CONNECTED])?;
        fe.read_roots()?;
        Ok(fe)
    }

    /// `<dir>/<key>` as text.
    fn read_text(xs: &mut Client, dir: &Text, key: &'static str) -> Result<Text, SetupError> {
        let node = text!("{dir}/{key}");
        let r = xs
            .read(0, node.as_str())
            .map_err(|e| SetupError::Xenstore(key, e))?;
        Ok(text!("{}", r.text()))
    }

    /// `<dir>/<key>` as a decimal number.
    fn read_number(xs: &mut Client, dir: &Text, key: &'static str) -> Result<u32, SetupError> {
        let node = text!("{dir}/{key}");
        let r = xs
            .read(0, node.as_str())
            .map_err(|e| SetupError::Xenstore(key, e))?;
        number(&r).ok_or(SetupError::BadValue(key))
    }

    /// The backend's state (Unknown if the node is absent).
    pub fn backend_state(&mut self) -> Result<u32, SetupError> {
        let node = text!("{}/state", self.backend);
        match self.xs.read(0, node.as_str()) {
            Ok(r) => number(&r).ok_or(SetupError::BadValue("state")),
            Err(e) if e.is("ENOENT") => Ok(state::UNKNOWN),
            Err(e) => Err(SetupError::Xenstore("state", e)),
        }
    }

    /// Polls the backend's state (yielding in between) until it is one of
    /// `want`, for [`STATE_TIMEOUT_NS`] at most; Closing and Closed end
    /// the wait with an error.
    fn wait_backend(&mut self, want: &[u32]) -> Result<u32, SetupError> {
        let start = now_ns();
        let target = want.last().copied().unwrap_or(state::CONNECTED);
        loop {
            let s = self.backend_state()?;
            if want.contains(&s) {
                return Ok(s);
            }
            if s == state::CLOSING || s == state::CLOSED || s > state::CLOSED {
                return Err(SetupError::BackendState(s));
            }
            if now_ns().wrapping_sub(start) > STATE_TIMEOUT_NS {
                return Err(SetupError::Timeout(target));
            }
            crate::hypervisor::sched_yield();
        }
    }

    /// Writes `pci-op-ref`, `event-channel`, `magic` and `state` = 3 in one
    /// transaction, retried on EAGAIN.
    fn publish(&mut self, gref: u32, port: u32, magic: &str) -> Result<(), SetupError> {
        let xs = &mut *self.xs;
        let fe = self.frontend;
        let gref = text!("{gref}");
        let port = text!("{port}");
        let init = text!("{}", state::INITIALISED);
        let nodes: [(&'static str, &str); 4] = [
            ("pci-op-ref", gref.as_str()),
            ("event-channel", port.as_str()),
            ("magic", magic),
            ("state", init.as_str()),
        ];
        for _ in 0..TX_ATTEMPTS {
            let tx = xs
                .start()
                .map_err(|e| SetupError::Xenstore("transaction start", e))?;
            for &(key, value) in &nodes {
                let node = text!("{fe}/{key}");
                if let Err(e) = xs.write(tx, node.as_str(), value.as_bytes()) {
                    let _ = xs.end(tx, false);
                    return Err(SetupError::Xenstore(key, e));
                }
            }
            match xs.end(tx, true) {
                Ok(()) => return Ok(()),
                Err(e) if e.is("EAGAIN") => continue,
                Err(e) => return Err(SetupError::Xenstore("transaction end", e)),
            }
        }
        Err(SetupError::Transaction)
    }

    /// Reads `root_num` and `root-N` (0000:00 when `root_num` is absent).
    fn read_roots(&mut self) -> Result<(), SetupError> {
        let node = text!("{}/root_num", self.backend);
        let n = match self.xs.read(0, node.as_str()) {
            Ok(r) => number(&r).ok_or(SetupError::BadValue("root_num"))?,
            Err(e) if e.is("ENOENT") => {
                println!("xpci: pcifront: no root_num; scanning 0000:00");
                self.roots[0] = Root { segment: 0, bus: 0 };
                self.nroots = 1;
                return Ok(());
            }
            Err(e) => return Err(SetupError::Xenstore("root_num", e)),
        };
        for i in 0..n {
            let node = text!("{}/root-{i}", self.backend);
            let r = self
                .xs
                .read(0, node.as_str())
                .map_err(|e| SetupError::Xenstore("root-N", e))?;
            let root = parse_root(r.text()).ok_or(SetupError::BadValue("root-N"))?;
            println!(
                "xpci: pcifront: root-{i} {:04x}:{:02x}",
                root.segment, root.bus
            );
            if self.nroots < MAX_ROOTS {
                self.roots[self.nroots] = root;
                self.nroots += 1;
            }
        }
        Ok(())
    }

    /// The root buses the backend published.
    pub fn roots(&self) -> &[Root] {
        &self.roots[..self.nroots]
    }

    /// The page shared with the backend.
    pub fn page(&self) -> Page {
        self.page
    }

    /// Writes the frontend's `state` node.
    pub fn set_state(&mut self, s: u32) -> Result<(), SetupError> {
        let node = text!("{}/state", self.frontend);
        let v = text!("{s}");
        self.xs
            .write(0, node.as_str(), v.as_str().as_bytes())
            .map_err(|e| SetupError::Xenstore("state", e))
    }

    /// The backend's domain.
    pub fn backend_id(&self) -> u16 {
        self.backend_id
    }

    /// The event channel port shared with the backend.
    pub fn port(&self) -> u32 {
        self.port
    }

    /// Ops that got no answer within [`OP_TIMEOUT_NS`].
    pub fn timeouts(&self) -> u64 {
        self.timeouts
    }

    /// Disconnects and connects again, as a frontend that is unloaded and
    /// loaded again does: Closing, then Closed (each once the backend
    /// follows), the event channel closed; then Initialising, a fresh
    /// port, the same page published again, and the backend's Connected
    /// and roots awaited. The caller scans and says Connected again.
    pub fn reconnect(&mut self) -> Result<(), SetupError> {
        for s in [state::CLOSING, state::CLOSED] {
            self.set_state(s)?;
            self.wait_backend_exactly(s)?;
        }
        evtchn::close(self.port);
        self.set_state(state::INITIALISING)?;
        // The backend is still Closed until it has seen Initialising.
        self.wait_backend_exactly(state::INITIALISED)?;
        println!("xpci: pcifront: backend state 3 again");
        self.page.fill(0);
        self.port = evtchn::alloc_unbound(super::layout::DOMID_SELF, self.backend_id)
            .map_err(SetupError::Evtchn)?;
        self.publish(GREF, self.port, MAGIC)?;
        self.wait_backend(&[state::CONNECTED])?;
        self.nbound = 0;
        self.nroots = 0;
        self.read_roots()
    }

    /// Polls the backend's state until it is `want` (any other state is
    /// waited through), for [`STATE_TIMEOUT_NS`] at most.
    fn wait_backend_exactly(&mut self, want: u32) -> Result<(), SetupError> {
        let start = now_ns();
        while self.backend_state()? != want {
            if now_ns().wrapping_sub(start) > STATE_TIMEOUT_NS {
                return Err(SetupError::Timeout(want));
            }
            crate::hypervisor::sched_yield();
        }
        Ok(())
    }

    /// Waits up to `timeout_ns` for the backend to start a hot-plug
    /// (state 7); any state but 4 and 7 is an error.
    pub fn wait_reconfigure(&mut self, timeout_ns: u64) -> Result<(), SetupError> {
        let start = now_ns();
        loop {
            match self.backend_state()? {
                state::RECONFIGURING => return Ok(()),
                state::CONNECTED if now_ns().wrapping_sub(start) < timeout_ns => {
                    crate::hypervisor::sched_yield();
                }
                state::CONNECTED => return Err(SetupError::Timeout(state::RECONFIGURING)),
                s => return Err(SetupError::BackendState(s)),
            }
        }
    }

    /// The guest addresses (`vdev-N`) of the slots the backend asks to
    /// remove (`state-N` = 5), as Linux's `pcifront_detach_devices`
    /// reads them; at most `out.len()`.
    pub fn removals(&mut self, out: &mut [Sbdf]) -> Result<usize, SetupError> {
        let n = Self::read_number(self.xs, &self.backend, "num_devs")?;
        let mut found = 0;
        for i in 0..n {
            let node = text!("{}/state-{i}", self.backend);
            match self.xs.read(0, node.as_str()) {
                Ok(r) if number(&r) == Some(state::CLOSING) => {}
                _ => continue,
            }
            let node = text!("{}/vdev-{i}", self.backend);
            let r = self
                .xs
                .read(0, node.as_str())
                .map_err(|e| SetupError::Xenstore("vdev-N", e))?;
            let addr = parse_vdev(r.text()).ok_or(SetupError::BadValue("vdev-N"))?;
            if let Some(slot) = out.get_mut(found) {
                *slot = addr;
                found += 1;
            }
        }
        Ok(found)
    }

    /// Stops using `f` (its interrupt ports closed), before answering a
    /// removal.
    pub fn forget(&mut self, f: Sbdf) {
        self.unbind(f);
    }

    /// Answers the backend's 7 with 7, waits for its 8 and reads the
    /// roots again (a hot-added function may bring a new one); the caller
    /// rescans, then [`Frontend::reconnected`].
    pub fn reconfigure(&mut self) -> Result<(), SetupError> {
        self.set_state(state::RECONFIGURING)?;
        self.wait_backend_exactly(state::RECONFIGURED)?;
        self.nroots = 0;
        self.read_roots()
    }

    /// After the rescan: Connected again, and the backend too.
    pub fn reconnected(&mut self) -> Result<(), SetupError> {
        self.set_state(state::CONNECTED)?;
        self.wait_backend_exactly(state::CONNECTED)
    }

    /// Switches the frontend to Connected (after the scan).
    pub fn connected(&mut self) -> Result<(), SetupError> {
        self.set_state(state::CONNECTED)
    }

    /// Sends one op and waits for the answer; returns its `err` (also left
    /// in `op`, with everything the backend wrote).
    pub fn op(&mut self, op: &mut PciOp) -> i32 {
        self.ops += 1;
        let p = self.page;
        for (i, w) in words(op).into_iter().enumerate() {
            p.u32(OP + 4 * i).store(w, Ordering::Relaxed);
        }
        let entries = if op.head.cmd == cmd::ENABLE_MSIX {
            (op.head.value as usize).min(SH_INFO_MAX_VEC)
        } else {
            0
        };
        for (i, e) in op.msix_entries[..entries].iter().enumerate() {
            let w = u32::from(e.vector) | (u32::from(e.entry) << 16);
            p.u32(OP + field::MSIX_ENTRIES + 4 * i)
                .store(w, Ordering::Relaxed);
        }
        fence(Ordering::SeqCst);
        p.u32(FLAGS).fetch_or(FLAG_PCIF_ACTIVE, Ordering::SeqCst);
        evtchn::send(self.port);
        if !self.wait_idle() {
            self.timeouts += 1;
            p.u32(FLAGS).fetch_and(!FLAG_PCIF_ACTIVE, Ordering::SeqCst);
            println!(
                "xpci: pcifront: no answer to op {} (cmd {}) within 2 s; counted as dev_not_found",
                self.ops, op.head.cmd
            );
            op.head.err = PciError::DEV_NOT_FOUND.0;
            return op.head.err;
        }
        fence(Ordering::SeqCst);
        let mut w = [0u32; 9];
        for (i, v) in w.iter_mut().enumerate() {
            *v = p.u32(OP + 4 * i).load(Ordering::Relaxed);
        }
        set_words(op, w);
        for (i, e) in op.msix_entries[..entries].iter_mut().enumerate() {
            let w = p
                .u32(OP + field::MSIX_ENTRIES + 4 * i)
                .load(Ordering::Relaxed);
            e.vector = w as u16;
            e.entry = (w >> 16) as u16;
        }
        op.head.err
    }

    /// Waits while `_XEN_PCIF_active` is set: a short spin, then
    /// `SCHEDOP_poll` on the port; false after [`OP_TIMEOUT_NS`].
    fn wait_idle(&self) -> bool {
        let p = self.page;
        let active = || p.u32(FLAGS).load(Ordering::SeqCst) & FLAG_PCIF_ACTIVE != 0;
        for _ in 0..1000 {
            if !active() {
                return true;
            }
            core::hint::spin_loop();
        }
        let start = now_ns();
        loop {
            shared::clear_pending(self.port);
            if !active() {
                return true;
            }
            let now = now_ns();
            if now.wrapping_sub(start) > OP_TIMEOUT_NS {
                return !active();
            }
            evtchn::poll(&[self.port], now + 100_000_000);
        }
    }

    fn bind(&mut self, f: Sbdf, pirq: u32) -> Result<Irq, PciError> {
        let port = evtchn::bind_pirq(pirq, 0).map_err(|rc| {
            println!("xpci: pcifront: bind_pirq({pirq}): {rc}");
            PciError::OP_FAILED
        })?;
        let rc = evtchn::unmask(port);
        if rc != 0 {
            println!("xpci: pcifront: unmask({port}): {rc}");
        }
        if self.nbound < MAX_BOUND {
            self.bound[self.nbound] = (f, port);
            self.nbound += 1;
        }
        Ok(Irq::Event { pirq, port })
    }

    /// Closes the ports bound for `f`'s pirqs.
    fn unbind(&mut self, f: Sbdf) {
        let mut kept = 0;
        for i in 0..self.nbound {
            let (addr, port) = self.bound[i];
            if addr == f {
                evtchn::close(port);
            } else {
                self.bound[kept] = (addr, port);
                kept += 1;
            }
        }
        self.nbound = kept;
    }

    fn simple(&mut self, cmd: u32, f: Sbdf) -> Result<PciOp, PciError> {
        let mut op = new_op(cmd, f);
        match self.op(&mut op) {
            0 => Ok(op),
            e => Err(PciError(e)),
        }
    }
}

/// Parses a `vdev-N` value, "dddd:bb:dd.ff" (hexadecimal; the function
/// has two digits in the protocol).
pub fn parse_vdev(s: &str) -> Option<Sbdf> {
    let (root, rest) = s.trim().rsplit_once(':')?;
    let (dev, func) = rest.split_once('.')?;
    let r = parse_root(root)?;
    Sbdf::new(
        r.segment,
        r.bus,
        u8::from_str_radix(dev, 16).ok()?,
        u8::from_str_radix(func, 16).ok()?,
    )
}

/// Parses a `root-N` value, "dddd:bb" (hexadecimal).
pub fn parse_root(s: &str) -> Option<Root> {
    let (seg, bus) = s.trim().split_once(':')?;
    Some(Root {
        segment: u16::from_str_radix(seg, 16).ok()?,
        bus: u8::from_str_radix(bus, 16).ok()?,
    })
}

impl Transport for Frontend {
    fn name(&self) -> &'static str {
        "pcifront"
    }

    fn intx_name(&self) -> &'static str {
        "pirq"
    }

    fn extended_config(&self) -> bool {
        true
    }

    fn read(&mut self, f: Sbdf, offset: u16, size: u8) -> Result<u32, PciError> {
        let mut op = new_op(cmd::CONF_READ, f);
        op.head.offset = i32::from(offset);
        op.head.size = i32::from(size);
        match self.op(&mut op) {
            0 if size >= 4 => Ok(op.head.value),
            0 => Ok(op.head.value & ((1 << (8 * u32::from(size))) - 1)),
            e => Err(PciError(e)),
        }
    }

    fn write(&mut self, f: Sbdf, offset: u16, size: u8, value: u32) -> Result<(), PciError> {
        let mut op = new_op(cmd::CONF_WRITE, f);
        op.head.offset = i32::from(offset);
        op.head.size = i32::from(size);
        op.head.value = value;
        match self.op(&mut op) {
            0 => Ok(()),
            e => Err(PciError(e)),
        }
    }

    fn enable_msi(&mut self, f: &Function) -> Result<Irq, PciError> {
        let op = self.simple(cmd::ENABLE_MSI, f.addr)?;
        if op.head.value == 0 {
            return Err(PciError::OP_FAILED);
        }
        self.bind(f.addr, op.head.value)
    }

    fn disable_msi(&mut self, f: &Function) -> Result<(), PciError> {
        self.unbind(f.addr);
        self.simple(cmd::DISABLE_MSI, f.addr).map(drop)
    }

    fn enable_msix(&mut self, f: &Function, entry: u16) -> Result<Irq, PciError> {
        let mut op = new_op(cmd::ENABLE_MSIX, f.addr);
        op.head.value = 1;
        op.msix_entries[0] = MsixEntry {
            vector: 0xffff,
            entry,
        };
        let err = self.op(&mut op);
        if err != 0 {
            return Err(PciError(err));
        }
        let pirq = op.msix_entries[0].vector;
        if op.head.value != 0 || pirq == 0 || pirq == 0xffff {
            println!(
                "xpci: pcifront: enable_msix answered value {} vector {pirq}",
                op.head.value
            );
            return Err(PciError::OP_FAILED);
        }
        self.bind(f.addr, u32::from(pirq))
    }

    fn disable_msix(&mut self, f: &Function) -> Result<(), PciError> {
        self.unbind(f.addr);
        self.simple(cmd::DISABLE_MSIX, f.addr).map(drop)
    }

    fn accesses(&self) -> u64 {
        self.ops
    }
}
