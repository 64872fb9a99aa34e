//! The shell's `pci-assignable-add` and `pci-assignable-remove`: hiding a
//! function at run time and giving it back to the host, through the same
//! steps as `pciback.hide=` at boot (`hv::assign::Pool::hide`).

use super::schedule::Entry;
use alloc::format;
use hv::shell::Reply;
use pciback::hide::HideMatch;
use pciback::owner::AssignError;
use vmm_glue::Sbdf;

/// `pci-assignable-add BDF`.
pub(super) fn add(sbdf: Sbdf) -> Reply {
    const CMD: &str = "pci-assignable-add";
    match crate::passthrough::hide(sbdf, HideMatch::Shell) {
        Ok(report) => Reply::ok(
            CMD,
            format!("{sbdf} hidden ({report}); 'pci-attach DOM {sbdf}' or a domain's pci = [...] can have it now"),
        ),
        Err(e) => Reply::fail(CMD, format!("{sbdf} not hidden: {e}")),
    }
}

/// `pci-assignable-remove BDF`.
pub(super) fn remove(sbdf: Sbdf, entries: &[Entry]) -> Reply {
    const CMD: &str = "pci-assignable-remove";
    match crate::passthrough::unhide(sbdf) {
        Ok(()) => Reply::ok(
            CMD,
            format!("{sbdf} given back to the host, with its config from before hiding"),
        ),
        Err(AssignError::NotHidden) => Reply::fail(
            CMD,
            format!("{sbdf} is not hidden: the host has it already ('pci-assignable-list' lists the hidden functions)"),
        ),
        Err(AssignError::Owned(d)) => {
            let name = entries
                .iter()
                .find(|e| e.dom.id == d)
                .map_or("", |e| e.dom.name.as_str());
            Reply::fail(
                CMD,
                format!("{sbdf} is assigned to dom{d} ({name}): 'pci-detach {d} {sbdf}' or 'destroy {d}' first"),
            )
        }
    }
}
