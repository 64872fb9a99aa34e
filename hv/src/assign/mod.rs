//! Passthrough policy: which PCI function may go to which domain, and the
//! order of the steps that hand it over and take it back.
//!
//! [`Pool`] decides; a [`Machine`] carries the steps out (config space,
//! the IOMMU, resets, I/O APIC inputs). The hypervisor implements
//! [`Machine`] over the hardware (`passthrough/`); the tests implement it
//! with a mock that records each call and fails where it is told to.
//!
//! Every hidden function has one owner at a time (the pool or a domain,
//! [`Registry`]); a function that is not hidden belongs to the host. A
//! function only a domain's IOMMU tables reach is one that domain owns;
//! one going back to the pool is detached from the IOMMU, reset, has its
//! config as hiding left it and is quiesced before the pool has it again.

use crate::domcfg::PciAssignment;
use core::fmt;
use pciback::hide::HideMatch;
use pciback::owner::{AssignError, Owner, Registry};
use pciback::quiesce::QuiesceReport;
use vmm_glue::compact::VecMap;
use vmm_glue::log;
use vmm_glue::Sbdf;

#[cfg(test)]
mod mock;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

/// What the policy needs to know of a function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Function {
    pub vendor: u16,
    pub device: u16,
    /// Its class, as a name for the log.
    pub class: &'static str,
    /// A bridge (by header type or class): part of the machine itself.
    pub bridge: bool,
}

/// The hardware steps of assigning and releasing functions.
pub trait Machine {
    /// An I/O APIC input set up for a function's INTx.
    type Line: Copy;

    /// The function at `sbdf`, if the machine has one.
    fn function(&self, sbdf: Sbdf) -> Option<Function>;
    /// Whether an IOMMU remaps `sbdf`'s interrupts.
    fn remaps(&self, sbdf: Sbdf) -> bool;
    /// Whether an IOMMU translates `sbdf`'s DMA.
    fn dma_covered(&self, sbdf: Sbdf) -> bool;
    /// Lets `sbdf` DMA into domain `dom`'s RAM only. On an error the
    /// function is refused and goes back to the pool.
    fn iommu_attach(&mut self, dom: u16, sbdf: Sbdf) -> Result<(), alloc::string::String>;
    /// Blocks `sbdf`'s DMA again (its quarantine).
    fn iommu_detach(&mut self, sbdf: Sbdf);
    /// Frees domain `dom`'s IOMMU tables (its functions are detached).
    fn iommu_remove_domain(&mut self, dom: u16);
    /// Turns off `sbdf`'s decode, bus mastering and interrupts.
    fn quiesce(&mut self, sbdf: Sbdf) -> QuiesceReport;
    /// Keeps `sbdf`'s config as it is now: its golden config.
    fn save_config(&mut self, sbdf: Sbdf);
    /// Puts back the config [`Self::save_config`] kept.
    fn restore_config(&mut self, sbdf: Sbdf);
    /// Resets `sbdf` as well as it can and says how (`why`: the reason,
    /// for the log).
    fn reset(&mut self, sbdf: Sbdf, why: &str);
    /// Sets up `sbdf`'s INTx for domain `dom` (masked until bound): its
    /// pirq and input, or `None` (the reason logged) when it gets none.
    /// `registry` says who owns the other functions (a line they share
    /// is not offered).
    fn intx_setup(
        &mut self,
        who: Who<'_>,
        sbdf: Sbdf,
        registry: &Registry,
    ) -> Option<(u8, Self::Line)>;
    /// Masks and frees an input [`Self::intx_setup`] gave.
    fn intx_teardown(&mut self, line: &Self::Line);
    /// Frees the interrupt routes domain `dom` still has; how many.
    fn free_routes(&mut self, dom: u16) -> usize;
    /// `sbdf` was quiesced on its way back to the pool (a test hook may
    /// undo part of it).
    fn released(&mut self, _sbdf: Sbdf) {}
    /// What the hypervisor itself uses `sbdf` for, if anything.
    fn host_use(&self, sbdf: Sbdf) -> Option<HostUse>;
    /// The functions the IOMMU cannot keep apart from `sbdf`: those
    /// whose requests carry the same ID (an alias), and the other
    /// functions of its multi-function device when it has no ACS.
    fn sharers(&self, sbdf: Sbdf) -> alloc::vec::Vec<Sbdf>;
    /// Keeps `sbdf`'s config as the host has it, before hiding.
    fn keep_host_config(&mut self, sbdf: Sbdf);
    /// Puts back what [`Self::keep_host_config`] kept.
    fn restore_host_config(&mut self, sbdf: Sbdf);
}

/// What the hypervisor itself uses a function for: it stays the host's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostUse {
    /// Its console UART (COM1), or the ISA bridge it is reached through.
    Console,
    /// An IOMMU (AMD-Vi's own PCI function).
    Iommu,
}

impl fmt::Display for HostUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Console => {
                "the hypervisor's console UART (COM1, ports 0x3f8-0x3ff) is reached through it"
            }
            Self::Iommu => {
                "it is an IOMMU, which the hypervisor drives to confine every device's DMA"
            }
        })
    }
}

/// The reset step's reason when a function is hidden (a function without
/// a reset is no warning then: it is reset again when a domain gets it).
pub const HIDING: &str = "hidden";

/// A domain, as the log names it: `dom1 (name)`.
#[derive(Clone, Copy, Debug)]
pub struct Who<'a> {
    pub dom: u16,
    pub name: &'a str,
}

impl fmt::Display for Who<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dom{} ({})", self.dom, self.name)
    }
}

/// Why a function a domain lists is not assigned to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The machine has no such function.
    NoSuchFunction,
    /// No IOMMU remaps its interrupts and `pciback.insecure` is off.
    NoRemapping,
    /// It is a bridge (its class named).
    Bridge(&'static str),
    /// Not hidden, or another domain owns it.
    Registry(AssignError),
    /// `seize=1`, and it cannot be hidden.
    Hide(HideError),
    /// The IOMMU could not confine its DMA.
    Attach(alloc::string::String),
    /// No IOMMU translates its DMA and `pciback.insecure` is off.
    NoDmaTranslation,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchFunction => f.write_str(
                "no such PCI function on this machine (check the address with the boot log's PCI table)",
            ),
            Self::NoRemapping => f.write_str(
                "no IOMMU remaps its interrupts, so it could forge interrupts (and, without DMA remapping, reach any memory); boot with pciback.insecure to allow it anyway",
            ),
            Self::Bridge(class) => write!(
                f,
                "it is a bridge ({class}), part of the machine itself; list the devices behind it instead"
            ),
            Self::Registry(e) => write!(f, "{e}"),
            Self::Hide(e) => write!(f, "seize=1: {e}"),
            Self::Attach(e) => write!(f, "its DMA cannot be confined to the domain ({e})"),
            Self::NoDmaTranslation => f.write_str(
                "no IOMMU translates its DMA; boot with pciback.insecure to allow it anyway",
            ),
        }
    }
}

/// Why a function cannot be hidden.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HideError {
    /// The machine has no such function.
    NoSuchFunction,
    /// The hypervisor itself uses it.
    HostUse(HostUse),
    /// It is a bridge (its class named): it keeps forwarding for the
    /// functions below it.
    Bridge(&'static str),
    /// It is hidden already (its owner unchanged).
    AlreadyHidden(Owner),
    /// The IOMMU cannot keep it apart from a function the hypervisor
    /// uses (`Err`) or a domain owns (`Ok`).
    Shares(Sbdf, Result<u16, HostUse>),
}

impl fmt::Display for HideError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchFunction => {
                f.write_str("no such PCI function on this machine ('lspci' lists them)")
            }
            Self::HostUse(u) => write!(f, "{u}; it stays the host's"),
            Self::Bridge(class) => write!(
                f,
                "it is a bridge ({class}), part of the machine itself: the functions behind it need its forwarding; hide those functions instead"
            ),
            Self::AlreadyHidden(Owner::Pciback) => {
                f.write_str("it is hidden already ('pci-assignable-list' lists it)")
            }
            Self::AlreadyHidden(Owner::Domain(d)) => write!(
                f,
                "it is hidden already and assigned to dom{d}"
            ),
            Self::Shares(other, by) => {
                write!(f, "the IOMMU cannot tell its requests from those of {other} (one requester ID, or one device without ACS), and ")?;
                match by {
                    Ok(d) => write!(f, "dom{d} has {other}"),
                    Err(u) => write!(f, "for {other}: {u}"),
                }?;
                f.write_str("; it stays the host's")
            }
        }
    }
}

/// A function given to a domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    pub sbdf: Sbdf,
    /// Its INTx pirq (the GSI), 0 when it has none.
    pub intx_pirq: u8,
}

/// The hidden functions, their owners and the INTx lines they hold.
#[derive(Debug)]
pub struct Pool<L> {
    registry: Registry,
    /// `pciback.insecure`: passthrough without interrupt remapping or DMA
    /// translation.
    insecure: bool,
    /// The INTx inputs of assigned functions: owner, pirq, input.
    lines: VecMap<Sbdf, (u16, u32, L)>,
}

impl<L: Copy> Pool<L> {
    /// An empty pool: boot and the shell fill it with [`Self::hide`].
    pub fn new(insecure: bool) -> Self {
        if insecure {
            log::warn!(
                "pciback: WARNING: pciback.insecure: passthrough is allowed without interrupt remapping or DMA isolation; a guest driving a device can overwrite any memory and send any interrupt"
            );
        }
        Self {
            registry: Registry::new(),
            insecure,
            lines: VecMap::new(),
        }
    }

    /// Who owns each hidden function.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Whether `pciback.insecure` is on.
    pub fn insecure(&self) -> bool {
        self.insecure
    }

    /// The INTx input of domain `dom` behind `pirq`.
    pub fn line(&self, dom: u16, pirq: u32) -> Option<L> {
        self.lines
            .values()
            .find(|(d, p, _)| *d == dom && *p == pirq)
            .map(|(_, _, l)| *l)
    }

    /// Takes `sbdf` from the host into the pool, at boot (`pciback.hide=`)
    /// and at run time alike: refused for what the hypervisor uses, a
    /// bridge, a function hidden already, and one the IOMMU cannot keep
    /// apart from a function the hypervisor uses or a domain owns.
    /// Otherwise the host's config is kept (for [`Self::unhide`]), the
    /// function quiesced, its config kept as the golden one every reset
    /// restores, reset, and blocked in the IOMMU (its quarantine).
    pub fn hide(
        &mut self,
        m: &mut impl Machine<Line = L>,
        sbdf: Sbdf,
        matched: HideMatch,
    ) -> Result<QuiesceReport, HideError> {
        let f = m.function(sbdf).ok_or(HideError::NoSuchFunction)?;
        if let Some(u) = m.host_use(sbdf) {
            return Err(HideError::HostUse(u));
        }
        if f.bridge {
            return Err(HideError::Bridge(f.class));
        }
        if let Some(o) = self.registry.owner(sbdf) {
            return Err(HideError::AlreadyHidden(*o));
        }
        for other in m.sharers(sbdf) {
            let by = match (m.host_use(other), self.registry.owner(other)) {
                (Some(u), _) => Err(u),
                (_, Some(Owner::Domain(d))) => Ok(*d),
                _ => continue,
            };
            return Err(HideError::Shares(other, by));
        }
        m.keep_host_config(sbdf);
        let report = m.quiesce(sbdf);
        self.registry
            .hide(sbdf, matched, report)
            .map_err(|e| HideError::AlreadyHidden(e.owner))?;
        m.save_config(sbdf);
        self.reset(m, sbdf, HIDING);
        m.iommu_detach(sbdf);
        Ok(report)
    }

    /// Gives `sbdf` back to the host: only a function in the pool (not one
    /// a domain owns). The config the host had before hiding is written
    /// back; the IOMMU keeps blocking it, as it does every function no
    /// domain owns.
    pub fn unhide(
        &mut self,
        m: &mut impl Machine<Line = L>,
        sbdf: Sbdf,
    ) -> Result<(), AssignError> {
        self.registry.unhide(sbdf)?;
        m.restore_host_config(sbdf);
        Ok(())
    }

    /// Gives domain `who` the function `a` names, as far as allowed: it
    /// must exist, have its interrupts remapped (or `pciback.insecure`),
    /// not be a bridge, be hidden (or `seize=1`) and not owned, and have
    /// its DMA confined by the IOMMU (or `pciback.insecure`). A refusal is
    /// logged with the reason and what to do, and leaves nothing behind;
    /// a function given is reset, with its INTx set up.
    pub fn assign(
        &mut self,
        m: &mut impl Machine<Line = L>,
        who: Who<'_>,
        a: &PciAssignment,
    ) -> Result<Grant, Refusal> {
        let r = self.try_assign(m, who, a);
        if let Err(why) = &r {
            log::error!("pciback: {who}: {} not assigned: {why}", a.sbdf);
        }
        r
    }

    fn try_assign(
        &mut self,
        m: &mut impl Machine<Line = L>,
        who: Who<'_>,
        a: &PciAssignment,
    ) -> Result<Grant, Refusal> {
        let (sbdf, dom) = (a.sbdf, who.dom);
        let f = m.function(sbdf).ok_or(Refusal::NoSuchFunction)?;
        let remapped = m.remaps(sbdf);
        if !remapped && !self.insecure {
            return Err(Refusal::NoRemapping);
        }
        if f.bridge {
            return Err(Refusal::Bridge(f.class));
        }
        if a.seize && self.registry.owner(sbdf).is_none() {
            let report = self
                .hide(m, sbdf, HideMatch::Seized)
                .map_err(Refusal::Hide)?;
            log::warn!("pciback: {sbdf} seized (seize=1): it was not in pciback.hide=; {report}");
        }
        self.registry.assign(sbdf, dom).map_err(Refusal::Registry)?;
        let dma_isolated = m.dma_covered(sbdf);
        let attached = if dma_isolated {
            m.iommu_attach(dom, sbdf).map_err(Refusal::Attach)
        } else if self.insecure {
            Ok(())
        } else {
            Err(Refusal::NoDmaTranslation)
        };
        if let Err(e) = attached {
            self.registry.release(sbdf, dom);
            return Err(e);
        }
        self.reset(m, sbdf, "assigned");
        let intx_pirq = match m.intx_setup(who, sbdf, &self.registry) {
            Some((pirq, line)) => {
                self.lines.insert(sbdf, (dom, u32::from(pirq), line));
                pirq
            }
            None => 0,
        };
        let mode = match (remapped, dma_isolated) {
            (true, true) => "",
            (false, true) => {
                " (DMA confined by the IOMMU; WITHOUT interrupt remapping: pciback.insecure)"
            }
            (_, false) => " WITHOUT DMA isolation or interrupt remapping (pciback.insecure)",
        };
        log::info!(
            "pciback: {sbdf} ({:04x}:{:04x} {}) assigned to {who}{}{mode}",
            f.vendor,
            f.device,
            f.class,
            if a.permissive { ", permissive" } else { "" },
        );
        if !dma_isolated {
            log::warn!(
                "pciback: WARNING: {who} drives {sbdf} without DMA isolation: it can reach all memory"
            );
        } else if !remapped {
            log::warn!(
                "pciback: WARNING: {who} drives {sbdf} without interrupt remapping: it can send any interrupt"
            );
        }
        Ok(Grant { sbdf, intx_pirq })
    }

    /// Resets `sbdf` and puts back its golden config.
    fn reset(&mut self, m: &mut impl Machine<Line = L>, sbdf: Sbdf, why: &str) {
        m.reset(sbdf, why);
        m.restore_config(sbdf);
    }

    /// Takes `sbdf` back from domain `who` into the pool (a no-op if
    /// `who` does not own it): its INTx input freed, blocked in the
    /// IOMMU, reset to its golden config and quiesced, then in the pool.
    /// The domain's use of it (windows, MSI) must be over already.
    pub fn release(&mut self, m: &mut impl Machine<Line = L>, who: Who<'_>, sbdf: Sbdf) {
        if self.registry.owner(sbdf) != Some(&Owner::Domain(who.dom)) {
            return;
        }
        if let Some((_, _, line)) = self.lines.remove(&sbdf) {
            m.intx_teardown(&line);
        }
        // No DMA from here on: its context entry is gone (and flushed).
        m.iommu_detach(sbdf);
        self.reset(m, sbdf, "released");
        let report = m.quiesce(sbdf);
        m.released(sbdf);
        self.registry.release(sbdf, who.dom);
        log::info!(
            "pciback: {sbdf} released by dom{} ({}): {report}; back in the hidden pool",
            who.dom,
            who.name
        );
    }

    /// Domain `who` is gone (or never got going): its interrupt routes
    /// freed, `sbdfs` (its functions) [released](Self::release), its IOMMU
    /// tables freed.
    pub fn give_back(&mut self, m: &mut impl Machine<Line = L>, who: Who<'_>, sbdfs: &[Sbdf]) {
        let freed = m.free_routes(who.dom);
        for &s in sbdfs {
            self.release(m, who, s);
        }
        m.iommu_remove_domain(who.dom);
        if freed > 0 {
            log::info!("pciback: dom{}: {freed} interrupt routes freed", who.dom);
        }
    }
}
