//! What the toolstack writes into the store for a new domain, following
//! libxl (`libxl__domain_make`, `libxl__build_post` and the primary
//! console): the home `/local/domain/<id>` and `/vm/<uuid>` belong to
//! domain 0 and the guest may only read them; the directories a guest
//! writes into (`data`, `drivers`, `feature`, `attr`, `error`,
//! `control/shutdown` and the `control/feature-*` answers) are the guest's;
//! the console frontend directory is the guest's with domain 0 reading, its
//! `port` and `ring-ref` read-only for the guest.

use alloc::format;
use alloc::string::String;
use alloc::vec;

use super::perms::{Access, Perm, Perms};
use super::store::{domain_path, DomId};
use super::wire::XsError;
use super::Xenstore;

/// `console/limit`: the bytes a console backend buffers
/// (`LIBXL_XENCONSOLE_LIMIT`).
pub const CONSOLE_LIMIT: u32 = 1_048_576;

/// What the toolstack knows about a new domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomainHome<'a> {
    pub domid: DomId,
    /// `name` (the xl.cfg `name`).
    pub name: &'a str,
    /// `memory/target` and `memory/static-max`, in KiB.
    pub memory_kib: u64,
    /// `console/ring-ref`: the guest frame number of the console page.
    pub console_ring_ref: u64,
    /// `console/port`: the guest's end of the console event channel.
    pub console_port: u32,
}

/// The `/vm` key of a domain: a UUID-shaped name derived from its id
/// (this toolstack has no configured UUIDs).
pub fn vm_uuid(domid: DomId) -> String {
    format!("00000000-0000-0000-0000-{domid:012x}")
}

/// Owned by domain 0, readable by `domid` (libxl's `roperm`). Out of line:
/// a domain's home uses it for most of its nodes.
#[inline(never)]
fn read_only(domid: DomId) -> Perms {
    let list = vec![
        Perm {
            domid: 0,
            access: Access::None,
        },
        Perm {
            domid,
            access: Access::Read,
        },
    ];
    Perms::from_list(list).unwrap_or_else(|| Perms::owned_by(0, Access::None))
}

/// Owned by `domid`, private to it and domain 0 (libxl's `rwperm`).
fn read_write(domid: DomId) -> Perms {
    Perms::owned_by(domid, Access::None)
}

/// Owned by `domid`, readable by the backend in domain 0 (a frontend
/// directory).
fn frontend(domid: DomId) -> Perms {
    let list = vec![
        Perm {
            domid,
            access: Access::None,
        },
        Perm {
            domid: 0,
            access: Access::Read,
        },
    ];
    Perms::from_list(list).unwrap_or_else(|| read_write(domid))
}

fn node(xs: &mut Xenstore, path: &str, value: &str, perms: Perms) -> Result<(), XsError> {
    xs.write(path, value.as_bytes())?;
    xs.set_perms(path, perms)
}

fn dir(xs: &mut Xenstore, path: &str, perms: Perms) -> Result<(), XsError> {
    xs.mkdir(path)?;
    xs.set_perms(path, perms)
}

/// [`node`] `name` in directory `parent` (the path built in one place).
fn child(
    xs: &mut Xenstore,
    parent: &str,
    name: &str,
    value: &str,
    perms: Perms,
) -> Result<(), XsError> {
    node(xs, &format!("{parent}/{name}"), value, perms)
}

/// [`dir`] `name` in directory `parent`.
fn subdir(xs: &mut Xenstore, parent: &str, name: &str, perms: Perms) -> Result<(), XsError> {
    dir(xs, &format!("{parent}/{name}"), perms)
}

/// Writes a new domain's nodes and introduces it (which fires
/// `@introduceDomain`). `EINVAL` for domain 0, `EEXIST` if the domain is
/// already introduced.
pub fn create_domain_home(xs: &mut Xenstore, home: &DomainHome<'_>) -> Result<(), XsError> {
    let id = home.domid;
    if id == 0 {
        return Err(XsError::Inval);
    }
    if xs.is_introduced(id) {
        return Err(XsError::Exist);
    }
    let dom = domain_path(id);
    let vm = format!("/vm/{}", vm_uuid(id));
    let ro = || read_only(id);
    let rw = || read_write(id);

    dir(xs, &vm, ro())?;
    child(xs, &vm, "uuid", &vm_uuid(id), ro())?;
    child(xs, &vm, "name", home.name, ro())?;

    xs.introduce_domain(id);
    dir(xs, &dom, ro())?;
    child(xs, &dom, "domid", &format!("{id}"), ro())?;
    child(xs, &dom, "name", home.name, ro())?;
    child(xs, &dom, "vm", &vm, ro())?;

    subdir(xs, &dom, "device", ro())?;
    let control = format!("{dom}/control");
    dir(xs, &control, ro())?;
    for f in [
        "shutdown",
        "feature-poweroff",
        "feature-reboot",
        "feature-suspend",
        "sysrq",
    ] {
        child(xs, &control, f, "", rw())?;
    }
    for f in [
        "platform-feature-multiprocessor-suspend",
        "platform-feature-xs_reset_watches",
    ] {
        child(xs, &control, f, "1", ro())?;
    }
    child(xs, &dom, "device/suspend/event-channel", "", rw())?;
    for d in ["data", "drivers", "feature", "attr", "error"] {
        subdir(xs, &dom, d, rw())?;
    }

    let kib = format!("{}", home.memory_kib);
    child(xs, &dom, "memory/static-max", &kib, ro())?;
    child(xs, &dom, "memory/target", &kib, ro())?;
    child(xs, &dom, "memory/videoram", "0", ro())?;
    xs.set_perms(&format!("{dom}/memory"), ro())?;
    child(xs, &dom, "cpu/0/availability", "online", ro())?;

    let con = format!("{dom}/console");
    dir(xs, &con, frontend(id))?;
    child(xs, &con, "backend-id", "0", frontend(id))?;
    child(xs, &con, "limit", &format!("{CONSOLE_LIMIT}"), frontend(id))?;
    child(xs, &con, "type", "xenconsoled", frontend(id))?;
    child(xs, &con, "port", &format!("{}", home.console_port), ro())?;
    let gfn = format!("{}", home.console_ring_ref);
    child(xs, &con, "ring-ref", &gfn, ro())?;
    Ok(())
}

/// Records the xenstore ring of a domain as libxl does (`store/port`,
/// `store/ring-ref`, read-only for the guest), for tools; guests find it
/// through `HVM_PARAM_STORE_EVTCHN` and `HVM_PARAM_STORE_PFN`. `ENOENT`
/// if the domain has no home.
pub fn write_store_ring(
    xs: &mut Xenstore,
    domid: DomId,
    port: u32,
    ring_gfn: u64,
) -> Result<(), XsError> {
    let dom = domain_path(domid);
    if domid == 0 || !xs.is_introduced(domid) {
        return Err(XsError::NoEnt);
    }
    child(xs, &dom, "store/port", &format!("{port}"), read_only(domid))?;
    child(
        xs,
        &dom,
        "store/ring-ref",
        &format!("{ring_gfn}"),
        read_only(domid),
    )?;
    xs.set_perms(&format!("{dom}/store"), read_only(domid))
}

/// The directories the hypervisor, as domain 0, keeps for a domain's
/// backends (`/local/domain/0/backend/<type>/<domid>`, and
/// `/local/domain/0/error/backend/<type>/<domid>` where a backend reported
/// a fatal error, as Linux's `xenbus_dev_fatal` does), and the parents
/// they are created under: removed with the domain when empty.
const BACKEND_TYPES: [&str; 2] = ["pci", "console"];

/// Removes `path` and then each parent up to `/local/domain` or `/vm` that
/// is left empty, so a domain's end takes back every node its life made.
fn rm_and_prune(xs: &mut Xenstore, path: &str) {
    let _ = xs.rm(path);
    let mut p = path;
    while let Some(cut) = p.rfind('/') {
        p = &p[..cut];
        if p.is_empty() || p == "/local/domain" || p == "/local" {
            break;
        }
        let empty = xs.directory(p).map(|d| d.is_empty()).unwrap_or(false);
        if !empty {
            break;
        }
        let _ = xs.rm(p);
    }
}

/// Releases a domain (its home, watches, transactions and queued events
/// go; `@releaseDomain` fires), removes its `/vm` entry and the backend
/// directories domain 0 kept for it, each with the parents that are left
/// empty. Returns whether the domain was introduced.
pub fn remove_domain_home(xs: &mut Xenstore, domid: DomId) -> bool {
    let vm = format!("/vm/{}", vm_uuid(domid));
    // Absent when the home was never written: nothing to remove.
    rm_and_prune(xs, &vm);
    for t in BACKEND_TYPES {
        for under in ["", "/error"] {
            let dir = format!("/local/domain/0{under}/backend/{t}/{domid}");
            if xs.directory(&dir).is_ok() {
                rm_and_prune(xs, &dir);
            }
        }
    }
    if !xs.is_introduced(domid) {
        return false;
    }
    xs.release_domain(domid);
    true
}

#[cfg(test)]
#[path = "home_tests.rs"]
mod tests;
