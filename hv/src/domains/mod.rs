//! Building domains from boot modules and running them.
//!
//! A module whose name ends in `.cfg` is a domain configuration (xl.cfg
//! style); its `kernel =` and `ramdisk =` name other modules. Each domain
//! gets RAM laid out around the host's holes, its kernel loaded at the ELF's
//! physical addresses, a PVH start info, nested page tables and its vCPUs
//! (`vcpus =`, at most [`crate::virt::MAX_VCPUS`]).
//! A bad configuration or image is reported with the file it came from, and
//! the other domains still start.

mod accounting;
mod assignable;
mod build;
mod canary;
mod hotplug;
mod schedule;
mod shell;

use crate::domain::Domain;
use crate::virt::svm::Svm;
use crate::virt::vmx::Vmx;
use crate::virt::Virt;
use accounting::{report_resources, Resources};
use alloc::format;
use alloc::rc::Rc;
use alloc::string::ToString;
use alloc::vec::Vec;
use build::{build, host_holes, module_bytes, TELL_HPA};
use canary::Canary;
use hv::domcfg::{self, DomainConfig};
use hv::hub::Hub;
use hv::multiboot::{BootInfo, Module};
use schedule::{schedule, Entry};
use vmm_glue::log;

/// Turns on the CPU's virtualisation extension: SVM on AMD (and Hygon),
/// VMX on everything else. Logs what was enabled, or why nothing was.
fn enable_virt() -> Option<Virt> {
    let v = crate::arch::cpu::cpuid(0, 0);
    let amd = matches!(
        (v.ebx, v.edx, v.ecx),
        (0x6874_7541, 0x6974_6e65, 0x444d_4163) // "AuthenticAMD"
            | (0x6f67_7948, 0x6e65_476e, 0x656e_6975) // "HygonGenuine"
    );
    let virt = if amd {
        Svm::enable().map(Virt::Svm).map_err(|e| e.to_string())
    } else {
        Vmx::enable().map(Virt::Vmx).map_err(|e| e.to_string())
    };
    match &virt {
        Ok(Virt::Svm(svm)) => log::info!(
            "svm: enabled ({} ASIDs, next-RIP save {}, VMCB clean bits {}, host save area {:#x})",
            svm.asids,
            if svm.nrips { "yes" } else { "no" },
            if svm.clean_bits { "yes" } else { "no" },
            svm.hsave
        ),
        Ok(Virt::Vmx(vmx)) => log::info!(
            "vmx: enabled (EPT, unrestricted guest, VPID {}, INVEPT single-context {}, true \
             controls {}, VMCS revision {:#x}, VMXON region {:#x})",
            if vmx.vpid { "yes" } else { "no" },
            if vmx.invept_single { "yes" } else { "no" },
            if vmx.true_controls { "yes" } else { "no" },
            vmx.revision,
            vmx.vmxon
        ),
        Err(e) => log::error!("domains: cannot run guests: {e}"),
    }
    if let Ok(Virt::Vmx(vmx)) = &virt {
        match vmx.preemption_timer {
            Some(start) => {
                log::info!("sched: VMX preemption timer ends slices (start value {start})")
            }
            None => log::info!("sched: no VMX preemption timer; the host timer alone ends slices"),
        }
    }
    virt.ok()
}

/// Builds every domain the boot modules describe, then runs them together
/// until each has ended (with `shell`, until the shell's `quit`). Returns
/// how many were configured and how many ended cleanly.
pub fn run_all(boot: &BootInfo<'_>, canary: bool, tell_hpa: bool, shell: bool) -> Tally {
    TELL_HPA.store(tell_hpa, core::sync::atomic::Ordering::Relaxed);
    let modules = boot.modules.as_slice();
    let configs: Vec<&Module<'_>> = modules
        .iter()
        .filter(|m| domcfg::is_config_module(m.name))
        .collect();
    if configs.is_empty() && !shell {
        log::info!("domains: no domain configuration modules (*.cfg); nothing to run");
        return Tally::default();
    }
    let Some(virt) = enable_virt() else {
        return Tally {
            refused: configs.len(),
            ..Tally::default()
        };
    };
    let mut tally = Tally::default();
    let holes = host_holes(boot.memory.as_slice());
    // Only the image with the test hooks has the checks (`debug.canary`).
    let canary = if canary && crate::cmdline::TEST_HOOKS {
        Canary::new(boot.memory.as_slice())
    } else {
        None
    };
    let mut hub = Hub::new();
    let before = Resources::now(&hub);
    let mut configs_ok: Vec<Rc<DomainConfig>> = Vec::new();
    let mut built: Vec<(u16, usize, Domain)> = Vec::new();
    let mut next_id = 1u16;
    // With `debug.canary`, a domain also learns where the previous one's
    // kernel (guest-physical 1 MiB) is in host memory: `hv.peer=0x...`.
    let mut peer: Option<(u16, u64)> = None;
    for m in configs {
        let Some(mut cfg) = read_config(m) else {
            tally.refused += 1;
            continue;
        };
        if !cfg.autostart {
            log::info!(
                "domains: {} ({}): autostart = 0: not started at boot; the shell's 'create {}' starts it",
                m.name,
                cfg.name,
                m.name.rsplit('/').next().unwrap_or(m.name)
            );
            continue;
        }
        if let Some(c) = &canary {
            cfg.cmdline = format!("{} hv.canary={:#x}", cfg.cmdline, c.hpa)
                .trim_start()
                .to_string();
            if let Some((owner, p)) = peer {
                cfg.cmdline = format!("{} hv.peer={p:#x}", cfg.cmdline);
                // The page aimed at is checked when its owner ends.
                Canary::watch_peer(owner, p & !0xfff);
            }
        }
        let id = next_id;
        next_id += 1;
        match build(&virt, &mut hub, id, &cfg, modules, &holes) {
            Ok(d) => {
                if canary.is_some() {
                    peer = d.mem.translate(0x10_0000).map(|p| (id, p));
                    if let Some((_, p)) = peer {
                        log::info!(
                            "isolation: dom{id}'s guest-physical 0x100000 is host-physical {p:#x} (hv.peer= for the next domain)"
                        );
                    }
                }
                built.push((id, configs_ok.len(), d))
            }
            Err(e) => {
                log::error!("dom{id} ({}) from {}: not started: {e}", cfg.name, m.name);
                tally.refused += 1;
            }
        }
        configs_ok.push(Rc::new(cfg));
    }
    let built_count = built.len();
    let entries = built
        .into_iter()
        .map(|(_, c, dom)| Entry {
            dom,
            cfg: configs_ok[c].clone(),
            restarts: 0,
        })
        .collect();
    tally.started = built_count;
    schedule(
        &virt,
        &mut hub,
        entries,
        &mut next_id,
        &mut tally,
        shell.then(|| shell::Shell::new(modules)),
        |hub, id, cfg| build(&virt, hub, id, cfg, modules, &holes),
    );
    if let Some(c) = canary {
        c.check(next_id as usize - 1);
    }
    report_resources(before, &hub);
    tally
}

/// The domain configuration in boot module `m`, or `None` with the
/// problems logged (naming the module, and the line of each error).
pub(super) fn read_config(m: &Module<'_>) -> Option<DomainConfig> {
    let Some(text) = module_bytes(m).map(core::str::from_utf8) else {
        log::error!("domains: {}: module not readable; skipped", m.name);
        return None;
    };
    let text = match text {
        Ok(t) => t,
        Err(e) => {
            log::error!(
                "domains: {}: not UTF-8 text (byte {}); skipped",
                m.name,
                e.valid_up_to()
            );
            return None;
        }
    };
    match domcfg::parse(m.name, text) {
        Ok((cfg, warnings)) => {
            for w in warnings {
                log::warn!("{w}");
            }
            Some(cfg)
        }
        Err(errors) => {
            for e in errors {
                log::error!("{e}");
            }
            log::error!(
                "domains: {}: not started because of the errors above",
                m.name
            );
            None
        }
    }
}

/// What became of the configured domains.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Domains built and run, restarts included.
    pub started: usize,
    /// Configurations (and restarts) that never ran: unreadable, invalid,
    /// or refused when built; each was logged with its reason.
    pub refused: usize,
    /// Domains that powered off cleanly.
    pub clean: usize,
}

impl core::fmt::Display for Tally {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "domains: {} started, {} powered off cleanly",
            self.started, self.clean
        )?;
        if self.refused > 0 {
            write!(f, "; {} refused (see the errors above)", self.refused)?;
        }
        Ok(())
    }
}
