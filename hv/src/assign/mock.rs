//! A [`Machine`] that records each call and fails where it is told to.

use super::{Function, HostUse, Machine, Who};
use alloc::string::String;
use alloc::vec::Vec;
use pciback::owner::Registry;
use pciback::quiesce::QuiesceReport;
use std::collections::BTreeMap;
use vmm_glue::Sbdf;

/// One function of the mock machine.
#[derive(Clone, Debug)]
pub struct MockFn {
    pub info: Function,
    pub remaps: bool,
    pub covered: bool,
    pub intx: bool,
    /// Bus mastering on.
    pub bus_master: bool,
    /// Memory or I/O decode on.
    pub decode: bool,
    /// The golden config's (bus master, decode), once saved.
    pub golden: Option<(bool, bool)>,
    /// The host's config's (bus master, decode), kept when it was hidden.
    pub host: Option<(bool, bool)>,
    /// What the hypervisor uses it for.
    pub host_use: Option<HostUse>,
}

/// A call the policy made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Attach(u16, Sbdf),
    Detach(Sbdf),
    RemoveDomain(u16),
    Quiesce(Sbdf),
    Save(Sbdf),
    Restore(Sbdf),
    Reset(Sbdf),
    IntxSetup(u16, Sbdf),
    IntxTeardown(Sbdf),
    FreeRoutes(u16),
    KeepHost(Sbdf),
    RestoreHost(Sbdf),
}

/// The mock machine.
#[derive(Debug, Default)]
pub struct Mock {
    pub fns: BTreeMap<Sbdf, MockFn>,
    /// Which domain's tables each function translates through.
    pub attached: BTreeMap<Sbdf, u16>,
    /// The INTx inputs set up, by line (the function's address).
    pub lines: BTreeMap<Sbdf, u16>,
    pub calls: Vec<Call>,
    /// Make the next IOMMU attach fail.
    pub fail_attach: bool,
    /// Make resets do nothing (a function with no reset).
    pub fail_reset: bool,
    /// Make INTx setup find no line.
    pub fail_intx: bool,
    /// The functions the IOMMU cannot keep apart from each function.
    pub sharers: BTreeMap<Sbdf, Vec<Sbdf>>,
}

pub fn sbdf(dev: u8) -> Sbdf {
    Sbdf::new(0, 0, dev, 0).unwrap()
}

impl Mock {
    /// Adds a function, on and decoding as firmware left it.
    pub fn add(&mut self, dev: u8, remaps: bool, covered: bool, bridge: bool) -> Sbdf {
        let s = sbdf(dev);
        self.fns.insert(
            s,
            MockFn {
                info: Function {
                    vendor: 0x1234,
                    device: 0x11e8,
                    class: if bridge { "bridge/PCI" } else { "unclassified" },
                    bridge,
                },
                remaps,
                covered,
                intx: true,
                bus_master: true,
                decode: true,
                golden: None,
                host: None,
                host_use: None,
            },
        );
        s
    }

    /// A guest driver turns `s` on.
    pub fn enable(&mut self, s: Sbdf) {
        if let Some(f) = self.fns.get_mut(&s) {
            f.bus_master = true;
            f.decode = true;
        }
    }

    pub fn quiet(&self, s: Sbdf) -> bool {
        self.fns.get(&s).is_some_and(|f| !f.bus_master && !f.decode)
    }

    /// Where `call` is in the record (the last time).
    pub fn at(&self, call: &Call) -> Option<usize> {
        self.calls.iter().rposition(|c| c == call)
    }
}

impl Machine for Mock {
    type Line = Sbdf;

    fn function(&self, sbdf: Sbdf) -> Option<Function> {
        self.fns.get(&sbdf).map(|f| f.info)
    }

    fn remaps(&self, sbdf: Sbdf) -> bool {
        self.fns.get(&sbdf).is_some_and(|f| f.remaps)
    }

    fn dma_covered(&self, sbdf: Sbdf) -> bool {
        self.fns.get(&sbdf).is_some_and(|f| f.covered)
    }

    fn iommu_attach(&mut self, dom: u16, sbdf: Sbdf) -> Result<(), String> {
        self.calls.push(Call::Attach(dom, sbdf));
        if core::mem::take(&mut self.fail_attach) {
            return Err(String::from("the unit refused"));
        }
        self.attached.insert(sbdf, dom);
        Ok(())
    }

    fn iommu_detach(&mut self, sbdf: Sbdf) {
        self.calls.push(Call::Detach(sbdf));
        self.attached.remove(&sbdf);
    }

    fn iommu_remove_domain(&mut self, dom: u16) {
        self.calls.push(Call::RemoveDomain(dom));
        assert!(
            !self.attached.values().any(|&d| d == dom),
            "dom{dom}'s tables freed while a function still translates through them"
        );
    }

    fn quiesce(&mut self, sbdf: Sbdf) -> QuiesceReport {
        self.calls.push(Call::Quiesce(sbdf));
        let f = self.fns.get_mut(&sbdf).expect("quiesce of no function");
        let before = u16::from(f.bus_master) << 2 | u16::from(f.decode) << 1;
        f.bus_master = false;
        f.decode = false;
        QuiesceReport {
            command_before: before,
            command_after: 0x400,
            msi_control_before: None,
            msi_control_after: None,
            msix_control_before: None,
            msix_control_after: None,
        }
    }

    fn save_config(&mut self, sbdf: Sbdf) {
        self.calls.push(Call::Save(sbdf));
        let f = self.fns.get_mut(&sbdf).expect("save of no function");
        f.golden = Some((f.bus_master, f.decode));
    }

    fn restore_config(&mut self, sbdf: Sbdf) {
        self.calls.push(Call::Restore(sbdf));
        let f = self.fns.get_mut(&sbdf).expect("restore of no function");
        let (bm, dec) = f.golden.expect("restore before any save");
        f.bus_master = bm;
        f.decode = dec;
    }

    fn reset(&mut self, sbdf: Sbdf, _why: &str) {
        self.calls.push(Call::Reset(sbdf));
        if !self.fail_reset {
            let f = self.fns.get_mut(&sbdf).expect("reset of no function");
            f.bus_master = false;
            f.decode = false;
        }
    }

    fn intx_setup(&mut self, who: Who<'_>, sbdf: Sbdf, registry: &Registry) -> Option<(u8, Sbdf)> {
        self.calls.push(Call::IntxSetup(who.dom, sbdf));
        assert_eq!(
            registry.owner(sbdf),
            Some(&pciback::owner::Owner::Domain(who.dom)),
            "INTx set up for a function the domain does not own"
        );
        if self.fail_intx || !self.fns.get(&sbdf).is_some_and(|f| f.intx) {
            return None;
        }
        assert!(
            self.lines.insert(sbdf, who.dom).is_none(),
            "line set up twice"
        );
        Some((16 + sbdf.dev, sbdf))
    }

    fn intx_teardown(&mut self, line: &Sbdf) {
        self.calls.push(Call::IntxTeardown(*line));
        assert!(self.lines.remove(line).is_some(), "teardown of a free line");
    }

    fn free_routes(&mut self, dom: u16) -> usize {
        self.calls.push(Call::FreeRoutes(dom));
        0
    }

    fn host_use(&self, sbdf: Sbdf) -> Option<HostUse> {
        self.fns.get(&sbdf).and_then(|f| f.host_use)
    }

    fn sharers(&self, sbdf: Sbdf) -> Vec<Sbdf> {
        self.sharers.get(&sbdf).cloned().unwrap_or_default()
    }

    fn keep_host_config(&mut self, sbdf: Sbdf) {
        self.calls.push(Call::KeepHost(sbdf));
        let f = self.fns.get_mut(&sbdf).expect("keep of no function");
        f.host = Some((f.bus_master, f.decode));
    }

    fn restore_host_config(&mut self, sbdf: Sbdf) {
        self.calls.push(Call::RestoreHost(sbdf));
        let f = self.fns.get_mut(&sbdf).expect("restore of no function");
        (f.bus_master, f.decode) = f.host.expect("host config restored before it was kept");
    }
}
