//! Running the domains on this CPU: time slices, timers, serial input and
//! restarts.

use crate::domain::{Domain, Ending, Slice};
use crate::virt::Virt;
use alloc::string::String;
use alloc::vec::Vec;
use hv::domcfg::{DomainConfig, LifecycleAction};
use hv::hub::Hub;
use vmm_glue::log;

use super::accounting::finish;
use super::shell::{After, Ctx, Shell};
use super::Tally;
use alloc::rc::Rc;

/// Serial input kept for a guest whose console ring is full.
pub(super) const TYPED_MAX: usize = 4096;

/// A running domain with what it takes to build it again.
pub(super) struct Entry {
    pub(super) dom: Domain,
    pub(super) cfg: Rc<DomainConfig>,
    pub(super) restarts: u32,
}

/// What the configuration says to do after `ending`.
pub(super) fn action_after(cfg: &DomainConfig, ending: &Ending) -> (LifecycleAction, &'static str) {
    match ending {
        Ending::Shutdown(0) => (cfg.on_poweroff, "on_poweroff"),
        Ending::Shutdown(1) => (cfg.on_reboot, "on_reboot"),
        // Suspend has nowhere to go without save/restore.
        Ending::Shutdown(2) => (LifecycleAction::Destroy, "suspend"),
        Ending::Shutdown(_) | Ending::Destroyed(_) => (cfg.on_crash, "on_crash"),
    }
}

/// A time slice when domains or vCPUs share the CPU, ns (about what the
/// periodic timer gave before it was calibrated).
pub(super) const SLICE_NS: u64 = 2_000_000;
/// How long a guest runs uninterrupted when nothing else waits for the CPU
/// and no timer of its is due, and how long the CPU idles at most: the
/// bound on how late serial input and IOMMU faults are looked at, ns.
pub(super) const IDLE_NS: u64 = 10_000_000;

/// Runs `entries` on this CPU until all have ended: round-robin, one time
/// slice each (see `Domain::run_slice`), the host timer ending slices; a
/// domain's slice goes to its next runnable vCPU (`Domain::runnable`). A
/// domain whose configuration says `restart` for the way it ended is built
/// again under a new id (at most its `restart_limit` times). Returns how many
/// powered off cleanly.
#[link_section = ".text.hot"]
pub(super) fn schedule(
    virt: &Virt,
    hub: &mut Hub,
    mut entries: Vec<Entry>,
    next_id: &mut u16,
    tally: &mut Tally,
    mut shell: Option<Shell<'_>>,
    mut rebuild: impl FnMut(&mut Hub, u16, &DomainConfig) -> Result<Domain, String>,
) {
    if entries.is_empty() && shell.is_none() {
        return;
    }
    crate::arch::lapic::start_timer();
    let mut i = 0;
    // Bytes typed on the serial line, for the first domain's PV console.
    let mut typed: Vec<u8> = Vec::new();
    let mut console_dom = None;
    while !entries.is_empty() || shell.is_some() {
        if let Some(sh) = &mut shell {
            let mut ctx = Ctx {
                virt,
                tally,
                next_id,
                build: &mut rebuild,
            };
            if sh.poll(hub, &mut entries, &mut ctx) == After::Quit {
                break;
            }
        }
        while shell.is_none() && typed.len() < TYPED_MAX {
            match crate::arch::serial::read_byte() {
                Some(b) => typed.push(b),
                None => break,
            }
        }
        if let Some(first) = entries.first_mut().filter(|_| shell.is_none()) {
            if console_dom != Some(first.dom.id) && !typed.is_empty() {
                console_dom = Some(first.dom.id);
                log::info!(
                    "console: serial input goes to dom{} ({})",
                    first.dom.id,
                    first.dom.name
                );
            }
            let taken = first.dom.console_input(hub, &typed);
            typed.drain(..taken);
        }
        // Every domain takes what others left for it and its due timers,
        // and the next runnable one after the last runs; with none, the
        // CPU halts until the next host timer tick.
        let now = crate::domain::time::now_ns();
        // The hypervisor's own watches first: what they write reaches the
        // domains' rings in the same round.
        hub.dispatch_watches();
        crate::iommu::poll_faults();
        let nmis = crate::arch::idt::take_nmis();
        if nmis > 0 {
            log::warn!("hv: {nmis} NMI(s) received; ignored");
        }
        // Device interrupts that came while the host ran or idled.
        if crate::passthrough::deliver(&mut hub.evtchn) > 0 {
            let effects = hub.evtchn.take_effects();
            hub.pending.extend(effects);
        }
        for e in entries.iter_mut() {
            e.dom.sync(hub, now);
        }
        let n = entries.len();
        // The timer ends what runs next by the first thing due: a domain's
        // timer, or the slice when the CPU is shared, or a housekeeping
        // bound (serial input, IOMMU faults) when it is not.
        let due = entries.iter().filter_map(|e| e.dom.next_deadline()).min();
        let Some(next) = (0..n)
            .map(|k| (i + k) % n)
            .find(|&k| entries[k].dom.runnable(now))
        else {
            crate::arch::lapic::arm(due.unwrap_or(u64::MAX).min(now + IDLE_NS));
            crate::arch::lapic::wait_for_tick();
            continue;
        };
        i = next;
        let shared = n > 1 || entries[i].dom.nr_vcpus() > 1;
        let slice_end = now + if shared { SLICE_NS } else { IDLE_NS };
        crate::arch::lapic::arm(due.unwrap_or(u64::MAX).min(slice_end));
        match entries[i].dom.run_slice(virt, hub) {
            Slice::Yielded => i += 1,
            Slice::Ended(ending) => {
                // The next domain moves into slot `i`.
                let Entry { dom, cfg, restarts } = entries.remove(i);
                let (action, key) = action_after(&cfg, &ending);
                let old = dom.id;
                tally.clean += usize::from(finish(dom, ending, hub));
                if action != LifecycleAction::Restart {
                    continue;
                }
                #[cfg(feature = "test-hooks")]
                super::accounting::report_life(old, &cfg.name, hub);
                let limit = cfg.restart_limit;
                if restarts >= limit {
                    log::warn!(
                        "dom{old} ({}): {key} = \"restart\", but it was restarted {limit} times already; not again",
                        cfg.name
                    );
                    continue;
                }
                let id = *next_id;
                *next_id += 1;
                match rebuild(hub, id, &cfg) {
                    Ok(dom) => {
                        tally.started += 1;
                        log::info!(
                            "dom{old} ({}): {key} = \"restart\": restarted as dom{id} (restart {} of {})",
                            cfg.name,
                            restarts + 1,
                            cfg.restart_limit
                        );
                        entries.insert(
                            i,
                            Entry {
                                dom,
                                cfg,
                                restarts: restarts + 1,
                            },
                        );
                    }
                    Err(e) => {
                        tally.refused += 1;
                        log::error!("dom{id} ({}): restart failed: {e}", cfg.name)
                    }
                }
            }
        }
    }
}
