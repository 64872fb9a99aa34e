//! The toolstack's writes and the backend's side of the xenbus handshake
//! (the table of transitions is on [`PciBackend::changed`]).

use alloc::format;
use alloc::string::String;

use super::op::XEN_PCI_MAGIC;
use super::{Action, BackendError, PciBackend, Store, XenbusState};

const ENOENT: i32 = 2;
const EINVAL: i32 = 22;
const EFAULT: i32 = 14;

/// A guest-written string, shortened for a log line.
fn short(s: &str) -> String {
    let mut out: String = s.chars().take(24).collect();
    if out.len() < s.len() {
        out.push_str("...");
    }
    format!("{out:?}")
}

pub(super) fn write(xs: &mut dyn Store, path: &str, value: &str) -> Result<(), BackendError> {
    if xs.write(path, value) {
        Ok(())
    } else {
        Err(BackendError::Store(String::from(path)))
    }
}

/// [`write`] `key` in directory `dir` (the path built in one place).
pub(super) fn write_in(
    xs: &mut dyn Store,
    dir: &str,
    key: &str,
    value: &str,
) -> Result<(), BackendError> {
    write(xs, &format!("{dir}/{key}"), value)
}

/// [`write`] `key-n` in directory `dir`.
pub(super) fn write_nth(
    xs: &mut dyn Store,
    dir: &str,
    key: &str,
    n: usize,
    value: &str,
) -> Result<(), BackendError> {
    write(xs, &format!("{dir}/{key}-{n}"), value)
}

/// A `vdev-N` value: the guest's address, the function in two digits
/// (Linux: "PV protocol uses %02x, don't change it").
pub(super) fn vdev(g: vmm_glue::Sbdf) -> String {
    format!("{:04x}:{:02x}:{:02x}.{:02x}", g.seg, g.bus, g.dev, g.func)
}

/// A connection refused, as `(errno, message)`.
type Refusal = (i32, String);

fn read_u32(xs: &mut dyn Store, dir: &str, key: &str) -> Result<u32, Refusal> {
    let v = xs.read(&format!("{dir}/{key}")).ok_or_else(|| {
        (
            ENOENT,
            format!("reading {key} from the frontend: it is missing"),
        )
    })?;
    let ok = !v.is_empty() && v.len() <= 10 && v.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| v.parse::<u32>().ok()).flatten().ok_or_else(|| {
        (
            EINVAL,
            format!(
                "reading {key} from the frontend: {} is not a number",
                short(&v)
            ),
        )
    })
}

impl PciBackend {
    /// The toolstack's writes, then the backend's probe, as a real libxl
    /// and Linux pciback make them:
    ///
    /// - the backend directory (owned by domain 0, readable by the guest)
    ///   and the frontend directory (owned by the guest, readable by domain
    ///   0), stale copies removed first;
    /// - backend `frontend`, `frontend-id`; frontend `backend`,
    ///   `backend-id`; backend `online` = 1; both `state` = 1; backend
    ///   `domain` (the guest's name);
    /// - per device N: `key-N`, `dev-N` (host address, `%04x:%02x:%02x.%01x`),
    ///   `opts-N`, `state-N` = 1; then `num_devs`;
    /// - the probe: backend `state` = 2 (InitWait); per device `vdev-N`
    ///   (the guest's address, `%04x:%02x:%02x.%02x`) and `state-N` = 3;
    ///   `root-N` (`%04x:%02x`) per root bus and `root_num`; backend
    ///   `state` = 3 (Initialised).
    ///
    /// A device list that cannot be exported is refused before anything is
    /// written. A refused store operation stops the sequence where it is.
    pub fn create(&mut self, xs: &mut dyn Store) -> Result<(), BackendError> {
        if self.state != XenbusState::Unknown {
            return Err(BackendError::AlreadyCreated);
        }
        let layout = self.layout.clone()?;
        let be = self.backend_path();
        let fe = self.frontend_path();
        let dom = self.dom;
        let layout = &layout;

        // The toolstack (libxl's generic device add, then the PCI keys).
        // Leftovers of an earlier guest with this id go first; absent
        // directories are fine.
        xs.rm(&fe);
        xs.rm(&be);
        for (dir, owner, reader) in [(&be, 0, dom), (&fe, dom, 0)] {
            if !xs.mkdir(dir) || !xs.set_perms(dir, owner, &[reader]) {
                return Err(BackendError::Store(dir.clone()));
            }
        }
        write_in(xs, &be, "frontend", &fe)?;
        write_in(xs, &be, "frontend-id", &format!("{dom}"))?;
        write_in(xs, &fe, "backend", &be)?;
        write_in(xs, &fe, "backend-id", "0")?;
        write_in(xs, &be, "online", "1")?;
        write_in(xs, &fe, "state", "1")?;
        self.switch_or_err(xs, XenbusState::Initialising)?;
        write_in(xs, &be, "domain", &self.name)?;
        for (i, e) in self.exports.iter().enumerate() {
            let host = format!("{}", e.dev.sbdf());
            write_nth(xs, &be, "key", i, &host)?;
            write_nth(xs, &be, "dev", i, &host)?;
            write_nth(xs, &be, "opts", i, &e.opts.to_xenstore())?;
            write_nth(xs, &be, "state", i, "1")?;
        }
        write_in(xs, &be, "num_devs", &format!("{}", self.exports.len()))?;
        self.probe(xs, layout)
    }

    /// The backend's probe, at [`create`](Self::create) and again when a
    /// closed frontend starts over: `state` = 2 (InitWait); per device
    /// `vdev-N` and `state-N` = 3; `root-N` and `root_num`; `state` = 3
    /// (Initialised).
    fn probe(
        &mut self,
        xs: &mut dyn Store,
        layout: &super::topology::Layout,
    ) -> Result<(), BackendError> {
        let be = self.backend_path();
        self.switch_or_err(xs, XenbusState::InitWait)?;
        for (e, g) in self.exports.iter().zip(&layout.guest) {
            write_nth(xs, &be, "vdev", e.key, &vdev(*g))?;
            write_nth(xs, &be, "state", e.key, "3")?;
        }
        for (n, (seg, bus)) in layout.roots.iter().enumerate() {
            write_nth(xs, &be, "root", n, &format!("{seg:04x}:{bus:02x}"))?;
        }
        write_in(xs, &be, "root_num", &format!("{}", layout.roots.len()))?;
        self.switch_or_err(xs, XenbusState::Initialised)
    }

    /// Call whenever a watched node under the frontend or backend
    /// directory changed: acts on the frontend's `state`.
    ///
    /// What it does, by the backend's state (rows) and the
    /// frontend's `state` node (columns). "Close" is: backend `Closing`, and
    /// [`Action::Disconnect`]. "Closed" is: backend `Closing` if it was not
    /// already, then `Closed` (NetBSD's frontend panics on a backend that goes
    /// `Closed` without `Closing` first), and `Disconnect` unless it was
    /// already `Closing`.
    ///
    /// | backend \ frontend | 0, 1, 2 | 3 Initialised | 4 Connected | 5 Closing | 6 Closed | 7, 8, garbage, absent |
    /// |---|---|---|---|---|---|---|
    /// | before/inside `create` (0, 1, 2) | - | - | - | - | - | - |
    /// | 3 Initialised | - (waiting) | read `pci-op-ref`, `event-channel`, `magic`: `Connect`, or fatal | - (noted: impossible) | Close | Closed | - (noted) |
    /// | 3 Initialised, `Connect` pending | - | - (double Initialised) | - | Close | Closed | - (noted) |
    /// | 4 Connected | - (noted: a restarted frontend must close first) | - (noted) | - | Close | Closed | - (noted) |
    /// | 7 Reconfiguring (attach or detach, `hotplug.rs`) | - | - | - (waiting) | Close, abandon | Closed, abandon | 7: reconfigure, then 8; else - |
    /// | 8 Reconfigured | - | - | Connected; removed slots' keys deleted | Close, abandon | Closed, abandon | - |
    /// | 5 Closing | - | - | - | - | Closed | - |
    /// | 6 Closed | probe again (InitWait ... Initialised) | probe again, then as Initialised | - | - | - | - |
    ///
    /// "Fatal" is what Linux's `xenbus_dev_fatal` does: the reason is written
    /// to [`PciBackend::error_path`] as `"<errno> <message>"` and the backend
    /// goes `Closing`. It is used for a `magic` other than `"7"` (EFAULT), a
    /// missing key (ENOENT), a key that is not a decimal number (EINVAL), and a
    /// failed [`PciBackend::connect_done`] (EINVAL). A frontend in 7 or 8
    /// with no attach or detach under way is noted and ignored; "abandon"
    /// hands back the functions an attach or detach had not finished with.
    /// A frontend that closed and starts over (`Initialising`, as a Linux
    /// module reload or Mini-OS's `shutdown_pcifront` and `init_pcifront`
    /// do, or already `Initialised`) finds the backend probing again, with
    /// the same devices: the backend goes InitWait, publishes them and its
    /// roots again and goes Initialised, then connects as the first time.
    /// A backend the toolstack closed ([`close`](Self::close): the domain
    /// is dying) stays Closed. Noted events are [`Notice`](crate::vdev::Notice)s, once
    /// per change of the frontend's value.
    pub fn changed(&mut self, xs: &mut dyn Store) -> Action {
        use XenbusState as S;
        let raw = xs.read(&format!("{}/state", self.frontend_path()));
        let fresh = raw != self.seen;
        self.seen.clone_from(&raw);
        let fe = raw.as_deref().and_then(XenbusState::parse);
        let Some(fe) = fe else {
            if fresh && matches!(self.state, S::Initialised | S::Connected) {
                let what = match &raw {
                    Some(v) => format!("{} is not a xenbus state", short(v)),
                    None => String::from("is missing"),
                };
                self.notice(format!("the frontend's state node {what}; ignored"));
            }
            return Action::Nothing;
        };
        match (self.state, fe) {
            (S::Closed, S::Initialising | S::InitWait | S::Initialised)
                if fresh && !self.torn_down =>
            {
                self.reopen(xs)
            }
            (S::Unknown | S::Initialising | S::InitWait | S::Closed, _) => Action::Nothing,
            (S::Closing, S::Closed) => {
                self.switch(xs, S::Closed);
                Action::Nothing
            }
            (S::Closing, _) => Action::Nothing,
            (_, S::Closing) => {
                self.abandon(xs);
                self.connecting = false;
                self.switch(xs, S::Closing);
                Action::Disconnect
            }
            (_, S::Closed) => {
                self.abandon(xs);
                self.connecting = false;
                self.switch(xs, S::Closing);
                self.switch(xs, S::Closed);
                Action::Disconnect
            }
            (S::Initialised, S::Initialised) if !self.connecting => {
                match self.read_connection(xs) {
                    Ok((gref, remote_port)) => {
                        self.connecting = true;
                        Action::Connect { gref, remote_port }
                    }
                    Err((errno, msg)) => {
                        self.fatal(xs, errno, &msg);
                        Action::Nothing
                    }
                }
            }
            (S::Initialised, S::Unknown | S::Initialising | S::InitWait | S::Initialised) => {
                Action::Nothing
            }
            (S::Connected, S::Connected) => Action::Nothing,
            (S::Reconfiguring, S::Reconfiguring) => {
                self.reconfigure(xs);
                Action::Nothing
            }
            (S::Reconfigured, S::Connected) => {
                self.reconfigured(xs);
                Action::Nothing
            }
            (S::Reconfiguring | S::Reconfigured, _) => Action::Nothing,
            (_, S::Reconfiguring | S::Reconfigured) => {
                if fresh {
                    self.notice(format!(
                        "the frontend went {fe} with no attach or detach under way; ignored"
                    ));
                }
                Action::Nothing
            }
            (S::Initialised, S::Connected) => {
                if fresh {
                    self.notice(String::from(
                        "the frontend says Connected before the backend connected; ignored",
                    ));
                }
                Action::Nothing
            }
            (S::Connected, _) => {
                if fresh {
                    self.notice(format!(
                        "the frontend went back to {fe} while connected (a restarted guest kernel?); \
                         it must close the device before it can connect again"
                    ));
                }
                Action::Nothing
            }
        }
    }

    /// The hypervisor mapped the grant and bound the port (`Ok`): the
    /// backend goes Connected (4). Or it failed (`Err(why)`): the reason is
    /// written to [`error_path`](Self::error_path) and the backend goes
    /// Closing. Ignored (with a notice) unless a [`Action::Connect`] is
    /// waiting for it.
    pub fn connect_done(&mut self, xs: &mut dyn Store, result: Result<(), &str>) {
        if !self.connecting || self.state != XenbusState::Initialised {
            self.notice(String::from(
                "a connection finished that was not asked for; ignored",
            ));
            return;
        }
        self.connecting = false;
        match result {
            Ok(()) => self.switch(xs, XenbusState::Connected),
            Err(why) => self.fatal(
                xs,
                EINVAL,
                &format!("mapping the frontend's page or binding its event channel: {why}"),
            ),
        }
    }

    /// A closed frontend starts over: the probe again, then, if the
    /// frontend is already Initialised, the connection.
    fn reopen(&mut self, xs: &mut dyn Store) -> Action {
        let Ok(layout) = self.layout.clone() else {
            return Action::Nothing;
        };
        self.notice(String::from(
            "the frontend starts over after closing: the backend probes again",
        ));
        self.reopened += 1;
        if let Err(BackendError::Store(path)) = self.probe(xs, &layout) {
            self.notice(format!("reopening: writing {path} was refused"));
            return Action::Nothing;
        }
        self.changed_again(xs)
    }

    /// [`changed`](Self::changed) once more on the same frontend state,
    /// after the backend's own state moved.
    fn changed_again(&mut self, xs: &mut dyn Store) -> Action {
        self.seen = None;
        self.changed(xs)
    }

    /// How many times a closed frontend started over.
    pub fn reopened(&self) -> u32 {
        self.reopened
    }

    /// Teardown by the toolstack (the domain is dying): `state` = 6
    /// (Closed) is written, nothing else. Nothing is written if
    /// [`create`](Self::create) never ran.
    pub fn close(&mut self, xs: &mut dyn Store) {
        self.torn_down = true;
        self.connecting = false;
        if self.state != XenbusState::Unknown {
            self.switch(xs, XenbusState::Closed);
        }
    }

    /// Reads what the frontend published for the connection.
    fn read_connection(&mut self, xs: &mut dyn Store) -> Result<(u32, u32), Refusal> {
        let fe = self.frontend_path();
        let gref = read_u32(xs, &fe, "pci-op-ref")?;
        let port = read_u32(xs, &fe, "event-channel")?;
        match xs.read(&format!("{fe}/magic")) {
            None => Err((
                ENOENT,
                String::from("reading magic from the frontend: it is missing"),
            )),
            Some(m) if m == XEN_PCI_MAGIC => Ok((gref, port)),
            Some(m) => Err((
                EFAULT,
                format!(
                    "the frontend speaks protocol version {}, not {XEN_PCI_MAGIC}; halting",
                    short(&m)
                ),
            )),
        }
    }

    /// `xenbus_dev_fatal`: the reason in the error node, state Closing.
    fn fatal(&mut self, xs: &mut dyn Store, errno: i32, msg: &str) {
        self.notice(format!("{msg}; closing the PCI device"));
        let path = self.error_path();
        if !xs.write(&path, &format!("{errno} {msg}")) {
            self.notice(format!("could not write {path}"));
        }
        self.switch(xs, XenbusState::Closing);
    }

    /// Writes the backend's `state` (the state is taken even if the store
    /// refuses, with a notice).
    pub(super) fn switch(&mut self, xs: &mut dyn Store, to: XenbusState) {
        if self.switch_or_err(xs, to).is_err() {
            self.notice(format!(
                "could not write state {to} to {}",
                self.backend_path()
            ));
        }
    }

    pub(super) fn switch_or_err(
        &mut self,
        xs: &mut dyn Store,
        to: XenbusState,
    ) -> Result<(), BackendError> {
        self.state = to;
        write(
            xs,
            &format!("{}/state", self.backend_path()),
            &format!("{}", to.raw()),
        )
    }
}
