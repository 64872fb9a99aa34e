//! The shell's `pci-attach` and `pci-detach`: a hidden function handed to
//! a running domain, or taken back, through the PCI backend's
//! Reconfiguring handshake (`pciback::backend`, docs/shell.md).

use alloc::format;
use alloc::string::String;
use hv::domcfg::PciAssignment;
use hv::hub::Hub;
use hv::shell::{DomRef, Reply};
use pciback::owner::Owner;
use vmm_glue::Sbdf;

use super::schedule::Entry;

/// The domain `d` names, or the reply saying it does not exist.
fn target<'a>(
    cmd: &'static str,
    entries: &'a mut [Entry],
    d: &DomRef,
) -> Result<&'a mut Entry, Reply> {
    match super::shell::find(entries, d) {
        Some(i) => Ok(&mut entries[i]),
        None => Err(super::shell::no_domain(cmd, d, entries)),
    }
}

/// Why hot-plug into `e` is refused before the function is looked at.
fn refused(e: &Entry) -> Option<String> {
    let (id, name) = (e.dom.id, &e.dom.name);
    if !e.cfg.pci_hotplug {
        return Some(format!(
            "dom{id} ({name}) says pci_hotplug = 0: its PCI frontend does not implement the Reconfiguring states (as NetBSD's); list the function in its pci = [...] and create it again"
        ));
    }
    None
}

/// The owner and header type of hidden function `sbdf`.
fn function(sbdf: Sbdf) -> Option<(Option<Owner>, u8)> {
    crate::passthrough::with(|pt| {
        let f = pt.funcs.iter().find(|f| f.sbdf == sbdf)?;
        Some((pt.pool.registry().owner(sbdf).copied(), f.header_type))
    })
    .flatten()
}

/// `pci-attach DOM BDF[,options]`.
pub(super) fn attach(hub: &mut Hub, entries: &mut [Entry], d: &DomRef, a: &PciAssignment) -> Reply {
    const CMD: &str = "pci-attach";
    let e = match target(CMD, entries, d) {
        Ok(e) => e,
        Err(r) => return r,
    };
    if let Some(why) = refused(e) {
        return Reply::fail(CMD, why);
    }
    let (id, sbdf) = (e.dom.id, a.sbdf);
    if a.seize {
        return Reply::fail(
            CMD,
            format!("seize=1 is refused for a running domain: hide {sbdf} first (pciback.hide= at boot, or pci-assignable-add {sbdf}), then pci-attach {id} {sbdf}"),
        );
    }
    let header_type = match function(sbdf) {
        Some((Some(Owner::Pciback), h)) => h,
        Some((Some(Owner::Domain(o)), _)) => {
            return Reply::fail(
                CMD,
                format!("{sbdf} is owned by dom{o}: 'pci-detach {o} {sbdf}' first ('pci-assignable-list' shows the free ones)"),
            )
        }
        f => {
            let why = if f.is_none() {
                "no such PCI function ('lspci' lists them)"
            } else {
                "not hidden: the host owns it; hide it first (pciback.hide= at boot, or pci-assignable-add BDF)"
            };
            return Reply::fail(CMD, format!("{sbdf}: {why}"));
        }
    };
    let p = pciback::backend::topology::Placement {
        host: sbdf,
        header_type,
    };
    if let Err(why) = e.dom.pci_can_attach(p) {
        return Reply::fail(CMD, format!("dom{id}: {why}"));
    }
    let dev = match crate::passthrough::assign_one(id, &e.dom.name, a, e.dom.mem.chunks()) {
        Ok(dev) => dev,
        Err(why) => return Reply::fail(CMD, format!("{sbdf} not assigned to dom{id}: {why}")),
    };
    match e
        .dom
        .pci_hot_attach(hub, dev, a.permissive, e.cfg.pci_topology)
    {
        Ok(how) => Reply::ok(CMD, format!("{sbdf} attached to dom{id}: {how}")),
        Err(why) => Reply::fail(
            CMD,
            format!("{sbdf} not attached to dom{id}: {why}; it is back in the pool"),
        ),
    }
}

/// `pci-detach DOM BDF`.
pub(super) fn detach(hub: &mut Hub, entries: &mut [Entry], d: &DomRef, sbdf: Sbdf) -> Reply {
    const CMD: &str = "pci-detach";
    let e = match target(CMD, entries, d) {
        Ok(e) => e,
        Err(r) => return r,
    };
    if let Some(why) = refused(e) {
        return Reply::fail(CMD, why);
    }
    let id = e.dom.id;
    if function(sbdf).and_then(|f| f.0) != Some(Owner::Domain(id)) {
        return Reply::fail(
            CMD,
            format!("{sbdf} is not attached to dom{id} ('list' shows each domain's devices)"),
        );
    }
    match e.dom.pci_hot_detach(hub, sbdf) {
        Ok(()) => Reply::ok(
            CMD,
            format!("dom{id} was asked to let go of {sbdf} (backend state 7); once it has, the function is reset and back in 'pci-assignable-list'"),
        ),
        Err(why) => Reply::fail(CMD, format!("dom{id}: {why}")),
    }
}
