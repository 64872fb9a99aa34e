//! What the domains hold of the hypervisor's resources, and how each
//! domain's end is reported and its resources taken back.

use crate::domain::{Domain, Ending};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use hv::hub::Hub;
use vmm_glue::log;

use super::canary::Canary;

/// What the domains hold of the hypervisor's resources, counted from their
/// owners: free frames, interrupt routes (a host vector and the guest pirq
/// behind each), grant mappings the backends hold, xenstore nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Resources {
    pub(super) free_frames: u64,
    /// Frames the page tables hold (the IOMMUs' and the domains' nested
    /// ones): once no domain is left, only the IOMMU units' own tables
    /// (root, context and interrupt tables, made as functions were first
    /// attached).
    pub(super) iommu_frames: u64,
    pub(super) routes: usize,
    pub(super) grant_maps: usize,
    pub(super) xs_nodes: usize,
}

impl Resources {
    pub(super) fn now(hub: &Hub) -> Self {
        Self {
            free_frames: crate::mem::free_bytes() / 4096,
            iommu_frames: crate::iommu::table_frames(),
            routes: crate::passthrough::with(|pt| pt.routes.len()).unwrap_or(0),
            grant_maps: hub.grants.mappings(),
            xs_nodes: hub.xs.tree().len(),
        }
    }
}

/// Logs what the domains' end gave back against `before` (taken before any
/// was built): all of it, or a leak named by resource.
pub(super) fn report_resources(before: Resources, hub: &Hub) {
    let now = Resources::now(hub);
    // Frames the IOMMUs took for their own tables meanwhile are not lost:
    // they are counted as free for the comparison, and named.
    let kept = now.iommu_frames.saturating_sub(before.iommu_frames);
    let free = now.free_frames + kept;
    let same = |a: u64, b: u64| {
        if a == b {
            String::from(" (same as before the domains)")
        } else if a < b {
            format!(" ({} fewer than before the domains: LEAKED)", b - a)
        } else {
            format!(" ({} more than before the domains)", a - b)
        }
    };
    let iommu = if kept > 0 {
        format!(" and {kept} in the IOMMUs' own tables")
    } else {
        String::new()
    };
    let line = format!(
        "hv: resources: frames {} free{iommu}{}, pirqs {}, vectors {}, grants {}, xenstore nodes {}{}",
        now.free_frames,
        same(free, before.free_frames),
        now.routes,
        now.routes,
        now.grant_maps,
        now.xs_nodes,
        same(now.xs_nodes as u64, before.xs_nodes as u64)
    );
    if free < before.free_frames
        || now.xs_nodes > before.xs_nodes
        || now.routes > before.routes
        || now.grant_maps > before.grant_maps
    {
        log::error!("{line}");
        if now.xs_nodes > before.xs_nodes {
            for (path, _) in hub.xs.tree().iter().take(64) {
                log::error!("hv: resources: xenstore node {path} is still there");
            }
        }
    } else {
        log::info!("{line}");
    }
}

/// Logs what every domain together holds once domain `dom` of
/// configuration `name` has ended and is to be restarted: the same counts
/// after each life of a configuration that restarts are what shows that a
/// life leaves nothing behind (`churn-svm` compares the first with the
/// last). Free frames, IOMMU entries in use (translation tables per
/// domain and unit, interrupt remapping entries), bound event channels of
/// every domain, interrupt routes (a pirq and a host vector each), grant
/// mappings, xenstore nodes.
#[cfg(feature = "test-hooks")]
pub(super) fn report_life(dom: u16, name: &str, hub: &Hub) {
    let r = Resources::now(hub);
    log::info!(
        "dom{dom} ({name}): counts after this life: frames {} free, iommu entries {}, event channels {}, \
         pirqs {}, vectors {}, grants {}, xenstore nodes {}",
        r.free_frames + r.iommu_frames,
        crate::iommu::entries_in_use(),
        hub.evtchn.ports_in_use(),
        r.routes,
        r.routes,
        r.grant_maps,
        r.xs_nodes
    );
}

/// Logs how domain `dom` ended and frees it; `true` if it powered off
/// cleanly.
pub(super) fn finish(mut dom: Domain, ending: Ending, hub: &mut Hub) -> bool {
    let (id, name) = (dom.id, dom.name.clone());
    let held = Resources::now(hub);
    // Its devices stop (and go back to the pool) before its memory goes.
    let watch = crate::mem::watching_scrubbed() && dom.has_pci();
    dom.release_pci(hub);
    crate::iommu::remove_domain(id);
    if watch {
        Canary::check_quiet(&dom);
    }
    if crate::cmdline::TEST_HOOKS {
        Canary::check_peer(id);
    }
    let e = dom.exits;
    hub.remove_domain(id);
    log::info!(
        "dom{id} ({name}): exits: {} cpuid, {} msr, {} io, {} hypercall, {} hlt, {} npf, {} \
         interrupt window, {} interrupt, {} exception, {} ptwr, {} other",
        e.cpuid,
        e.msr,
        e.io,
        e.hypercall,
        e.hlt,
        e.npf,
        e.window,
        e.interrupt,
        e.exception,
        e.ptwr,
        e.other
    );
    let list = |counts: &[u64]| {
        counts
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(i, n)| format!("{i}:{n}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    log::info!(
        "dom{id} ({name}): hypercalls by number: {}",
        list(&e.by_hypercall)
    );
    if e.io > 0 {
        log::info!(
            "dom{id} ({name}): port I/O exits by port: {}",
            e.by_port.render(8)
        );
    }
    if e.by_vector.iter().any(|&n| n > 0) {
        log::info!(
            "dom{id} ({name}): exceptions by vector: {}",
            list(&e.by_vector)
        );
    }
    log::info!(
        "dom{id} ({name}): events: {} upcalls injected, {} sends, {} timer expiries, {} device interrupts",
        e.upcalls,
        e.sends,
        e.timers,
        e.device_irqs
    );
    if let Some(f) = dom.pv_fast_counters() {
        log::info!(
            "dom{id} ({name}): in the container without an exit: {} system calls, {} irets, \
             {} xen_version, {} upcalls, {} stack switches, {} segment bases; {} forwarded, \
             {} faults rolled back, {} host interrupts rolled back; \
             {} upcalls with nothing pending left out ({} by the hypervisor)",
            f.syscalls,
            f.irets,
            f.xen_versions,
            f.upcalls,
            f.stack_switches,
            f.segment_bases,
            f.forwards,
            e.stub_faults,
            e.stub_interrupts,
            f.empty + e.empty_upcalls,
            e.empty_upcalls
        );
    }
    let clean = match ending {
        Ending::Shutdown(0) => {
            log::info!("dom{id} ({name}): powered off");
            true
        }
        Ending::Shutdown(1) => {
            log::info!("dom{id} ({name}): rebooted");
            false
        }
        Ending::Shutdown(r) => {
            log::warn!("dom{id} ({name}): ended with shutdown reason {r}");
            false
        }
        Ending::Destroyed(why) => {
            log::warn!("dom{id} ({name}): destroyed: {why}");
            false
        }
    };
    drop(dom);
    log::info!("dom{id} ({name}): memory scrubbed and returned");
    let back = Resources::now(hub);
    log::info!(
        "dom{id} ({name}): released: {} frames ({} MiB), {} interrupt routes, {} grant mappings, {} xenstore nodes",
        back.free_frames.saturating_sub(held.free_frames),
        back.free_frames.saturating_sub(held.free_frames) >> 8,
        held.routes.saturating_sub(back.routes),
        held.grant_maps.saturating_sub(back.grant_maps),
        held.xs_nodes.saturating_sub(back.xs_nodes)
    );
    clean
}
