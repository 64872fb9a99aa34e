//! The xenbus PCI backend for one guest: what the toolstack writes to
//! xenstore for the guest's `pci = [...]` devices, the backend's side of
//! the xenbus handshake, the guest's view of the devices' addresses, and
//! the ops the frontend posts on the shared page.
//!
//! The hypervisor plays domain 0 and the toolstack. It owns one
//! [`PciBackend`] per guest with assigned functions and drives it:
//!
//! 1. [`PciBackend::create`] writes the backend and frontend directories
//!    as libxl does, then runs the backend's probe (exports the devices,
//!    publishes the roots, reaches `Initialised`).
//! 2. [`PciBackend::changed`] on every watch event under either directory.
//!    [`Action::Connect`] asks the hypervisor to map the frontend's grant
//!    and bind its port; it answers with [`PciBackend::connect_done`].
//!    [`Action::Disconnect`] asks it to undo that.
//! 3. [`PciBackend::serve`] when the frontend's port fires: one op per
//!    call, answered on the page.
//! 4. Hot-plug into a connected frontend: [`PciBackend::attach`] and
//!    [`PciBackend::detach`] start a reconfiguration that
//!    [`PciBackend::changed`] carries on; what leaves the guest comes back
//!    through [`PciBackend::take_removed`] for the hypervisor to release.
//! 5. [`PciBackend::close`] and [`PciBackend::into_devices`] when the
//!    domain dies.
//!
//! Nothing here logs: messages worth a log line come back as
//! [`Notice`]s ([`Served::notices`], [`PciBackend::take_notices`]) for the
//! caller to log, rate-limited, since a guest can trigger them. They do not
//! name the domain; the caller's log prefix does.
//!
//! The table of state transitions is on [`PciBackend::changed`], the
//! hot-plug steps in `hotplug.rs`; the op handling is in `serve.rs`, the
//! shared page in [`op`], the address layout in [`topology`].

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use vmm_glue::Sbdf;

use crate::vdev::{Notice, VirtDevice};

mod hotplug;
pub mod op;
mod serve;
pub mod topology;
mod xenbus;

#[cfg(test)]
mod tests;

pub use topology::Topology;

/// xenstore access as domain 0 (the hypervisor implements it over its
/// store). Writes and `mkdir` create missing parents, which inherit their
/// nearest ancestor's permissions, as xenstored does.
pub trait Store {
    /// The value at `path`, or `None` if the node does not exist (or is not
    /// text).
    fn read(&mut self, path: &str) -> Option<String>;
    /// Writes `value` at `path`; `false` if the store refused.
    fn write(&mut self, path: &str, value: &str) -> bool;
    /// Makes the node `path` (an existing one is kept).
    fn mkdir(&mut self, path: &str) -> bool;
    /// Removes `path` and everything below it.
    fn rm(&mut self, path: &str) -> bool;
    /// Owner `owner` (full access), `readers` may read; others none.
    fn set_perms(&mut self, path: &str, owner: u16, readers: &[u16]) -> bool;
}

/// Options as libxl writes them to `opts-N`. The backend does not act on
/// them (the function's [`crate::vdev::DeviceOptions`] do); they are there
/// for tools that read xenstore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XlOpts {
    /// `msitranslate=`.
    pub msitranslate: bool,
    /// `power_mgmt=`.
    pub power_mgmt: bool,
    /// `permissive=`.
    pub permissive: bool,
    /// `rdm_policy=strict` (else `relaxed`).
    pub rdm_policy_strict: bool,
}

impl Default for XlOpts {
    /// libxl's defaults: everything off, `rdm_policy=strict`.
    fn default() -> Self {
        Self {
            msitranslate: false,
            power_mgmt: false,
            permissive: false,
            rdm_policy_strict: true,
        }
    }
}

impl XlOpts {
    /// The `opts-N` value:
    /// `msitranslate=%d,power_mgmt=%d,permissive=%d,rdm_policy=strict|relaxed`.
    pub fn to_xenstore(&self) -> String {
        format!(
            "msitranslate={},power_mgmt={},permissive={},rdm_policy={}",
            u8::from(self.msitranslate),
            u8::from(self.power_mgmt),
            u8::from(self.permissive),
            if self.rdm_policy_strict {
                "strict"
            } else {
                "relaxed"
            }
        )
    }
}

/// The xenbus states (`io/xenbus.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum XenbusState {
    /// 0: the node is absent.
    Unknown = 0,
    /// 1: the toolstack created the device.
    Initialising = 1,
    /// 2: the backend waits for its configuration.
    InitWait = 2,
    /// 3: frontend: its page and port published; backend: devices exported.
    Initialised = 3,
    /// 4: both sides working.
    Connected = 4,
    /// 5: being torn down.
    Closing = 5,
    /// 6: torn down.
    Closed = 6,
    /// 7: hot-plug in progress.
    Reconfiguring = 7,
    /// 8: hot-plug applied by the backend.
    Reconfigured = 8,
}

impl XenbusState {
    /// The state numbered `n`.
    pub const fn from_raw(n: u32) -> Option<Self> {
        Some(match n {
            0 => Self::Unknown,
            1 => Self::Initialising,
            2 => Self::InitWait,
            3 => Self::Initialised,
            4 => Self::Connected,
            5 => Self::Closing,
            6 => Self::Closed,
            7 => Self::Reconfiguring,
            8 => Self::Reconfigured,
            _ => return None,
        })
    }

    /// A `state` node's value: decimal digits naming a state, nothing else
    /// (no sign, no spaces).
    pub fn parse(s: &str) -> Option<Self> {
        if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse::<u32>().ok().and_then(Self::from_raw)
    }

    /// Its number.
    pub const fn raw(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for XenbusState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:?})", self.raw(), self)
    }
}

/// Why [`PciBackend::create`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendError {
    /// A function whose header type is not 0 (a bridge): not exportable.
    NotEndpoint {
        /// The function.
        sbdf: Sbdf,
        /// Its header type.
        header_type: u8,
    },
    /// The same function listed twice.
    Duplicate(Sbdf),
    /// More than 32 physical devices for the virtual bus; the function that
    /// did not fit.
    TooManySlots(Sbdf),
    /// `create` was already called.
    AlreadyCreated,
    /// Hot-plug needs the frontend connected (the backend's state).
    NotConnected(XenbusState),
    /// A reconfiguration is under way: the frontend has not answered it.
    Busy,
    /// The function is not the guest's (detach).
    NotAttached(Sbdf),
    /// The store refused an operation on this path.
    Store(String),
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotEndpoint { sbdf, header_type } => write!(
                f,
                "{sbdf} has header type {header_type:#04x}: only endpoints can be assigned, not bridges"
            ),
            Self::Duplicate(sbdf) => write!(f, "{sbdf} is listed twice"),
            Self::TooManySlots(sbdf) => write!(
                f,
                "{sbdf} does not fit: the virtual bus has 32 slots, one per physical device"
            ),
            Self::AlreadyCreated => f.write_str("the PCI backend was already created"),
            Self::NotConnected(s) => write!(
                f,
                "the guest's PCI frontend is not connected (backend state {s}): wait until it connects"
            ),
            Self::Busy => f.write_str(
                "the guest's PCI frontend has not answered the last attach or detach yet (backend state 7 or 8): try again later",
            ),
            Self::NotAttached(s) => write!(f, "{s} is not attached to this domain"),
            Self::Store(path) => write!(f, "xenstore refused to update {path}"),
        }
    }
}

/// What the hypervisor must do after [`PciBackend::changed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing.
    Nothing,
    /// Map the frontend's grant `gref` (the shared page) and bind an
    /// interdomain channel to the frontend's `remote_port`, then call
    /// [`PciBackend::connect_done`].
    Connect {
        /// `pci-op-ref`.
        gref: u32,
        /// `event-channel`.
        remote_port: u32,
    },
    /// Unbind the port and unmap the page if [`Action::Connect`] set them
    /// up (there may be nothing to undo); [`PciBackend::serve`] is not to be
    /// called any more.
    Disconnect,
}

/// What one [`PciBackend::serve`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Served {
    /// An op was answered: notify the frontend's port.
    pub notify: bool,
    /// Things the log should show (rate-limited by the caller).
    pub notices: Vec<Notice>,
    /// MSI-X vectors the answer carries: with [`op::answered`], the bytes
    /// of the page to write back.
    pub vectors: usize,
}

/// One exported function.
#[derive(Debug)]
#[cfg_attr(any(test, fuzzing), derive(Clone))]
struct Export {
    dev: VirtDevice,
    opts: XlOpts,
    /// Its slot N (`dev-N`, `state-N`...): stable while the domain
    /// lives, never given to another function.
    key: usize,
    /// Its `state-N`: 1 while a hot-add waits for the frontend (not yet
    /// in the guest's view), 3 exported, 5 while a hot-remove waits.
    sub: XenbusState,
}

/// The PCI backend of one guest.
#[derive(Debug)]
#[cfg_attr(any(test, fuzzing), derive(Clone))]
pub struct PciBackend {
    dom: u16,
    name: String,
    exports: Vec<Export>,
    /// The guest's view, or why the device list cannot be exported.
    layout: Result<topology::Layout, BackendError>,
    /// The backend's `state` as last written.
    state: XenbusState,
    /// [`Action::Connect`] was returned and [`PciBackend::connect_done`]
    /// has not answered yet.
    connecting: bool,
    /// The frontend's `state` value last seen (notices are made once per
    /// change).
    seen: Option<String>,
    /// Messages for the log since the last [`PciBackend::take_notices`].
    notices: Vec<Notice>,
    /// [`PciBackend::close`] ran: the domain is dying, no reopening.
    torn_down: bool,
    /// How many times a closed frontend started over.
    reopened: u32,
    /// How the guest sees addresses (for functions added later).
    topology: Topology,
    /// The next slot N (`num_devs`).
    next_key: usize,
    /// Functions hot-removed (or whose hot-add was abandoned) for the
    /// hypervisor to release ([`PciBackend::take_removed`]).
    removed: Vec<VirtDevice>,
    /// Slots whose keys go when the frontend is back to Connected.
    gone: Vec<usize>,
}

impl PciBackend {
    /// The backend of guest `dom` (named `name`) for `devices`, in the order
    /// of the guest's `pci = [...]` list, shown as `topology` says. Nothing
    /// is written until [`create`](Self::create), which also reports a list
    /// that cannot be exported (a bridge, a duplicate, over 32 slots).
    pub fn new(
        dom: u16,
        name: &str,
        devices: Vec<(VirtDevice, XlOpts)>,
        topology: Topology,
    ) -> Self {
        let placements: Vec<topology::Placement> = devices
            .iter()
            .map(|(d, _)| topology::Placement {
                host: d.sbdf(),
                header_type: d.info().header_type,
            })
            .collect();
        let layout = topology::layout(topology, &placements);
        let next_key = devices.len();
        Self {
            dom,
            name: String::from(name),
            exports: devices
                .into_iter()
                .enumerate()
                .map(|(key, (dev, opts))| Export {
                    dev,
                    opts,
                    key,
                    sub: XenbusState::Initialised,
                })
                .collect(),
            layout,
            state: XenbusState::Unknown,
            connecting: false,
            seen: None,
            notices: Vec::new(),
            torn_down: false,
            reopened: 0,
            topology,
            next_key,
            removed: Vec::new(),
            gone: Vec::new(),
        }
    }

    /// The guest's domain id.
    pub fn domain(&self) -> u16 {
        self.dom
    }

    /// `/local/domain/0/backend/pci/<dom>/0`.
    pub fn backend_path(&self) -> String {
        format!("/local/domain/0/backend/pci/{}/0", self.dom)
    }

    /// `/local/domain/<dom>/device/pci/0`.
    pub fn frontend_path(&self) -> String {
        format!("/local/domain/{}/device/pci/0", self.dom)
    }

    /// Where a fatal error is reported, as Linux's `xenbus_dev_fatal`
    /// does: `error/<backend node>/error` in domain 0's home,
    /// `/local/domain/0/error/backend/pci/<dom>/0/error`.
    pub fn error_path(&self) -> String {
        format!("/local/domain/0/error/backend/pci/{}/0/error", self.dom)
    }

    /// The backend's state as last written to its `state` node
    /// ([`XenbusState::Unknown`] before [`create`](Self::create)).
    pub fn state(&self) -> XenbusState {
        self.state
    }

    /// Whether ops are being served (the backend is `Connected`).
    pub fn is_connected(&self) -> bool {
        self.state == XenbusState::Connected
    }

    /// The assigned functions, in the configuration's order.
    pub fn devices(&self) -> impl Iterator<Item = &VirtDevice> {
        self.exports.iter().map(|e| &e.dev)
    }

    /// The assigned functions, mutable (for the hypervisor's MMIO traps).
    pub fn devices_mut(&mut self) -> impl Iterator<Item = &mut VirtDevice> {
        self.exports.iter_mut().map(|e| &mut e.dev)
    }

    /// Each function's host address and the address the guest sees it at
    /// (empty if the list cannot be exported; a hot-add the frontend has
    /// not taken yet is not there).
    pub fn exported(&self) -> Vec<(Sbdf, Sbdf)> {
        match &self.layout {
            Ok(l) => self
                .exports
                .iter()
                .zip(&l.guest)
                .filter(|(e, _)| e.sub != XenbusState::Initialising)
                .map(|(e, g)| (e.dev.sbdf(), *g))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The root buses the frontend is told to scan, `(segment, bus)`.
    pub fn roots(&self) -> Vec<(u16, u8)> {
        match &self.layout {
            Ok(l) => l.roots.clone(),
            Err(_) => Vec::new(),
        }
    }

    /// Messages for the log since the last call (state machine events:
    /// refused connections, unexpected frontend states).
    pub fn take_notices(&mut self) -> Vec<Notice> {
        core::mem::take(&mut self.notices)
    }

    /// The functions, for release when the domain dies (with those
    /// removed and not yet taken).
    pub fn into_devices(self) -> Vec<VirtDevice> {
        let mut v = self.removed;
        v.extend(self.exports.into_iter().map(|e| e.dev));
        v
    }

    fn notice(&mut self, msg: String) {
        // Bounded: a frontend flipping its state cannot grow this forever
        // when nobody takes them.
        if self.notices.len() < 64 {
            self.notices.push(Notice(msg));
        }
    }
}
