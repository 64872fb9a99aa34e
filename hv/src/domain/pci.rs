//! A domain's PCI frontend connection: the in-hypervisor backend
//! (`pciback::backend`) over the domain's xenstore directories, the
//! frontend's granted page and event channel, the BAR windows mapped into
//! the domain and the accesses it traps (MSI-X tables).

use super::Domain;
use crate::passthrough::{self, DomHost};
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::Cell;
use hv::grant::op::GuestFrames;
use hv::hub::{Backend, Hub, WatchId, DOM0};
use hv::xenstore::perms::{Access, Perm, Perms};
use hv::xenstore::Xenstore;
use pciback::backend::{Action, PciBackend, Served, Store};
use pciback::vdev::VirtDevice;
use vmm_glue::log;

/// The backend's view of the hypervisor's xenstore, as domain 0.
pub(crate) struct XsStore<'a>(pub &'a mut Xenstore);

impl Store for XsStore<'_> {
    fn read(&mut self, path: &str) -> Option<String> {
        let v = self.0.read(path).ok()?;
        String::from_utf8(v).ok()
    }

    fn write(&mut self, path: &str, value: &str) -> bool {
        self.0.write(path, value.as_bytes()).is_ok()
    }

    fn mkdir(&mut self, path: &str) -> bool {
        self.0.mkdir(path).is_ok()
    }

    fn rm(&mut self, path: &str) -> bool {
        self.0.rm(path).is_ok()
    }

    fn set_perms(&mut self, path: &str, owner: u16, readers: &[u16]) -> bool {
        let mut list = alloc::vec![Perm {
            domid: owner,
            access: Access::None,
        }];
        list.extend(readers.iter().map(|&domid| Perm {
            domid,
            access: Access::Read,
        }));
        match Perms::from_list(list) {
            Some(perms) => self.0.set_perms(path, perms).is_ok(),
            None => false,
        }
    }
}

/// The frontend's shared page while connected.
#[derive(Debug, Clone, Copy)]
struct Page {
    gpa: u64,
    handle: u32,
}

/// One domain's PCI frontend connection.
/// How much of the shared page an op uses: `struct xen_pci_sharedinfo`
/// (flags, the op with its MSI-X entries, the AER op).
const OP_BYTES: usize = pciback::backend::op::SHAREDINFO_SIZE;

pub struct PciFront {
    backend: PciBackend,
    /// Set by the watch on the frontend's directory.
    changed: Rc<Cell<bool>>,
    watch: Option<WatchId>,
    page: Option<Page>,
    /// The op's bytes as the backend sees them: the shared page's first
    /// [`OP_BYTES`] copied in and out on each op, the rest never read
    /// (kept here so that no op zeroes or copies a whole page).
    scratch: Option<alloc::boxed::Box<[u8; 4096]>>,
    /// BAR windows mapped into the domain, `(gpa, len)`.
    windows: Vec<(u64, u64)>,
    /// I/O BAR ports handed to the domain, `(port, len)`.
    ports: Vec<(u16, u16)>,
    /// `ports` as they were before the backend's current op (kept, so
    /// that an op allocates nothing to compare them).
    ports_before: Vec<(u16, u16)>,
}

impl PciFront {
    /// Whether a function's MSI-X table or PBA page is at `gpa`.
    pub(super) fn traps(&self, gpa: u64) -> bool {
        self.backend.devices().any(|d| d.traps(gpa))
    }
}

impl core::fmt::Debug for PciFront {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PciFront")
            .field("state", &self.backend.state())
            .field("page", &self.page)
            .field("windows", &self.windows)
            .finish()
    }
}

impl Domain {
    /// Sets up the PCI backend for `devs` (already assigned to this
    /// domain): the toolstack's and the backend's xenstore entries, and a
    /// watch on the frontend; then the rights the guest needs to drive
    /// them. If the backend cannot be set up, the functions go back to the
    /// pool (the domain runs on without them).
    pub fn attach_pci(
        &mut self,
        hub: &mut Hub,
        devs: Vec<VirtDevice>,
        topology: hv::domcfg::PciTopology,
    ) -> Result<(), String> {
        if devs.is_empty() {
            return Ok(());
        }
        let sbdfs: Vec<vmm_glue::Sbdf> = devs.iter().map(VirtDevice::sbdf).collect();
        if let Err(e) = self.pci_backend(hub, devs, topology) {
            passthrough::give_back(self.id, &self.name, &sbdfs);
            return Err(e);
        }
        let Some(front) = self.pci.as_ref() else {
            return Ok(());
        };
        if let Some(pv) = self.pv.as_mut() {
            front
                .backend
                .devices()
                .for_each(|d| pv_io(&mut pv.mm, d, true));
        }
        // The INTx pirqs (the GSIs) are the guest's to bind.
        for d in front.backend.devices() {
            let pirq = d.info().intx_pirq;
            if pirq != 0 {
                let _ = hub.evtchn.permit_pirq(self.id, u32::from(pirq));
            }
        }
        Ok(())
    }

    /// The backend for `devs` and the watch on its frontend.
    fn pci_backend(
        &mut self,
        hub: &mut Hub,
        devs: Vec<VirtDevice>,
        topology: hv::domcfg::PciTopology,
    ) -> Result<(), String> {
        let opts = |d: &VirtDevice| pciback::backend::XlOpts {
            msitranslate: false,
            power_mgmt: false,
            permissive: d.options().permissive,
            rdm_policy_strict: true,
        };
        let list = devs.into_iter().map(|d| {
            let o = opts(&d);
            (d, o)
        });
        let mut backend = PciBackend::new(
            self.id,
            &self.name,
            list.collect(),
            match topology {
                hv::domcfg::PciTopology::Virtual => pciback::backend::Topology::Virtual,
                hv::domcfg::PciTopology::Passthrough => pciback::backend::Topology::Passthrough,
            },
        );
        backend
            .create(&mut XsStore(&mut hub.xs))
            .map_err(|e| alloc::format!("pci backend: {e}"))?;
        for n in backend.take_notices() {
            log::warn!("pciback: dom{}: {n}", self.id);
        }
        for (host, guest) in backend.exported() {
            log::info!("pciback: dom{}: {host} exported as {guest}", self.id);
        }
        let changed = Rc::new(Cell::new(true));
        let flag = changed.clone();
        let watch = hub
            .watch(
                &backend.frontend_path(),
                alloc::boxed::Box::new(move |_, _| flag.set(true)),
            )
            .map_err(|e| alloc::format!("pci backend: watch: {e:?}"))?;
        self.pci = Some(PciFront {
            backend,
            changed,
            watch: Some(watch),
            page: None,
            scratch: Some(alloc::boxed::Box::new([0; 4096])),
            windows: Vec::new(),
            ports: Vec::new(),
            ports_before: Vec::new(),
        });
        Ok(())
    }

    /// Follows the frontend's state if it changed: connects (maps its
    /// page, binds its port) or disconnects.
    pub(super) fn pci_sync(&mut self, hub: &mut Hub) {
        let Some(front) = self.pci.as_mut() else {
            return;
        };
        if !front.changed.replace(false) {
            return;
        }
        let action = front.backend.changed(&mut XsStore(&mut hub.xs));
        for n in front.backend.take_notices() {
            self.log_guest(alloc::format!("pci: {n}"));
        }
        self.pci_release_removed(hub);
        match action {
            Action::Nothing => {}
            Action::Connect { gref, remote_port } => {
                let result = self.pci_connect(hub, gref, remote_port);
                if let Err(why) = &result {
                    self.log_guest(alloc::format!("pci frontend not connected: {why}"));
                }
                if let Some(front) = self.pci.as_mut() {
                    front.backend.connect_done(
                        &mut XsStore(&mut hub.xs),
                        result.as_ref().map(|_| ()).map_err(String::as_str),
                    );
                }
                if result.is_ok() {
                    log::info!(
                        "pciback: dom{} ({}): frontend connected",
                        self.id,
                        self.name
                    );
                }
            }
            Action::Disconnect => {
                self.pci_disconnect(hub);
                // Until it connects again, nothing drives the functions:
                // interrupts off, windows unmapped, decode and bus mastering
                // off, the guest's view as at assignment.
                self.release_devices(hub, &mut []);
                log::info!(
                    "pciback: dom{} ({}): frontend disconnected; its functions stay assigned, quiesced until it connects again",
                    self.id,
                    self.name
                );
            }
        }
    }

    fn pci_connect(&mut self, hub: &mut Hub, gref: u32, remote_port: u32) -> Result<(), String> {
        self.pci_disconnect(hub);
        let mut frames = GuestFrames {
            mem: &self.mem,
            frames: &self.xen.grant_frames,
        };
        let m = hub
            .grants
            .map(DOM0, self.id, &mut frames, gref, false)
            .map_err(|s| alloc::format!("grant {gref} cannot be mapped ({s:?})"))?;
        let gpa = u64::from(m.frame) << 12;
        if self.mem.translate(gpa).is_none() {
            let _ = hub.grants.unmap(DOM0, m.handle, &mut frames);
            return Err(alloc::format!(
                "grant {gref} names frame {:#x}, which is not the domain's RAM",
                m.frame
            ));
        }
        if let Err(e) = hub.bind_pci(self.id, remote_port) {
            let _ = hub.grants.unmap(DOM0, m.handle, &mut frames);
            return Err(alloc::format!(
                "event channel {remote_port} cannot be bound ({e:?})"
            ));
        }
        if let Some(front) = self.pci.as_mut() {
            front.page = Some(Page {
                gpa,
                handle: m.handle,
            });
        }
        Ok(())
    }

    fn pci_disconnect(&mut self, hub: &mut Hub) {
        let Some(front) = self.pci.as_mut() else {
            return;
        };
        if let Some(p) = front.page.take() {
            let mut frames = GuestFrames {
                mem: &self.mem,
                frames: &self.xen.grant_frames,
            };
            let _ = hub.grants.unmap(DOM0, p.handle, &mut frames);
        }
        hub.unbind_pci(self.id);
    }

    /// Serves one op from the frontend's page (the frontend notified).
    #[link_section = ".text.hot"]
    pub(super) fn serve_pci(&mut self, hub: &mut Hub) {
        let Some(gpa) = self.pci.as_ref().and_then(|f| f.page).map(|p| p.gpa) else {
            return;
        };
        let Some(mut page) = self.pci.as_mut().and_then(|f| f.scratch.take()) else {
            return;
        };
        if self.mem.read(gpa, &mut page[..OP_BYTES]).is_err() {
            if let Some(f) = self.pci.as_mut() {
                f.scratch = Some(page);
            }
            return;
        }
        let served = self.with_pci_host(hub, |backend, host| backend.serve(host, &mut page));
        let Some(served) = served else {
            if let Some(f) = self.pci.as_mut() {
                f.scratch = Some(page);
            }
            return;
        };
        let Served {
            notify,
            notices,
            vectors,
        } = served;
        if notify && log::log_enabled!(log::Level::Debug) {
            let w = |o: usize| u32::from_le_bytes([page[o], page[o + 1], page[o + 2], page[o + 3]]);
            log::debug!(
                "pciback: dom{}: op {} {:02x}:{:02x}.{} offset {:#x} size {} -> err {} value {:#x}",
                self.id,
                w(4),
                w(16),
                w(20) >> 3,
                w(20) & 7,
                w(24),
                w(28),
                w(8) as i32,
                w(32)
            );
        }
        if notify {
            // An op was answered: its result fields and the cleared flag go
            // back, nothing else (the guest's vCPUs are stopped while the
            // hypervisor runs, but its device may DMA into the page: what
            // it wrote meanwhile is not reverted).
            let _ = self.mem.with_page_mut(gpa, |guest| {
                for r in pciback::backend::op::answered(vectors) {
                    guest[r.clone()].copy_from_slice(&page[r]);
                }
            });
        }
        if let Some(f) = self.pci.as_mut() {
            f.scratch = Some(page);
        }
        for n in notices {
            self.log_guest(alloc::format!("pci: {n}"));
        }
        if notify {
            hub.notify(Backend::Pci(self.id));
        }
    }

    /// Runs `f` with the backend and the [`DomHost`] of this domain;
    /// flushes the guest's TLB if a window went away, and brings the
    /// domain's port bitmap in step with the I/O BAR ports it now has.
    fn with_pci_host<R>(
        &mut self,
        hub: &mut Hub,
        f: impl FnOnce(&mut PciBackend, &mut DomHost<'_>) -> R,
    ) -> Option<R> {
        let front = self.pci.as_mut()?;
        let mut before = core::mem::take(&mut front.ports_before);
        before.clear();
        before.extend_from_slice(&front.ports);
        let r = self.with_pci_host_inner(hub, f);
        self.sync_ports(&before);
        if let Some(front) = self.pci.as_mut() {
            front.ports_before = before;
        }
        r
    }

    /// Lets the domain's vCPUs reach the I/O BAR ports it was handed
    /// without an exit, and intercepts again those taken back (`before`:
    /// the ports it had). Without port bitmaps (VMX without I/O bitmaps)
    /// every access keeps exiting and is forwarded ([`Self::pci_port`]).
    #[link_section = ".text.hot"]
    fn sync_ports(&mut self, before: &[(u16, u16)]) {
        let same = self
            .pci
            .as_ref()
            .map_or(before.is_empty(), |f| f.ports == before);
        if same {
            return;
        }
        let now = self
            .pci
            .as_ref()
            .map(|f| f.ports.clone())
            .unwrap_or_default();
        if self.io_bitmap.is_none() {
            let Some(b) = crate::virt::io_bitmap::IoBitmap::new() else {
                log::warn!(
                    "dom{}: no memory for a port bitmap: I/O BAR accesses exit",
                    self.id
                );
                return;
            };
            // SAFETY: `b` goes into `self.io_bitmap` below and stays there
            // for the domain's life, which its vCPUs' runs never outlast;
            // when `ok` is false the CPU has no I/O bitmaps, so no vCPU
            // points at `b` when it is dropped.
            let mut ok = unsafe { self.vcpu.set_io_bitmap(&b) };
            for p in self.vcpus.parked.iter_mut().flatten() {
                // SAFETY: as above.
                ok &= unsafe { p.vcpu.set_io_bitmap(&b) };
            }
            if !ok {
                return;
            }
            self.io_bitmap = Some(b);
        }
        if let Some(b) = &self.io_bitmap {
            for &(port, len) in before {
                b.set(port, len, true);
            }
            for &(port, len) in &now {
                b.set(port, len, false);
            }
        }
    }

    fn with_pci_host_inner<R>(
        &mut self,
        hub: &mut Hub,
        f: impl FnOnce(&mut PciBackend, &mut DomHost<'_>) -> R,
    ) -> Option<R> {
        let front = self.pci.as_mut()?;
        let (r, flush) = passthrough::with(|pt| {
            let mut host = DomHost {
                dom: self.id,
                pt,
                mem: &self.mem.ram,
                tables: &mut self.mem.tables,
                windows: &mut front.windows,
                ports: &mut front.ports,
                evtchn: &mut hub.evtchn,
                flush: false,
            };
            let r = f(&mut front.backend, &mut host);
            (r, host.flush)
        })?;
        if flush {
            self.mem.stage2_flush = true;
        }
        Some(r)
    }

    /// Whether port `port` (an access of `size` bytes) belongs to an I/O
    /// BAR handed to this domain.
    pub(super) fn pci_port(&self, port: u16, size: u8) -> bool {
        let end = u32::from(port) + u32::from(size);
        self.pci.as_ref().is_some_and(|f| {
            f.ports.iter().any(|&(p, l)| {
                u32::from(port) >= u32::from(p) && end <= u32::from(p) + u32::from(l)
            })
        })
    }

    /// Whether `gpa` is in a page a passed-through function traps.
    pub(super) fn pci_traps(&self, gpa: u64) -> bool {
        self.pci.as_ref().is_some_and(|f| f.traps(gpa))
    }

    /// A trapped read (MSI-X table or PBA page).
    pub(super) fn pci_mmio_read(&mut self, hub: &mut Hub, gpa: u64, size: u8) -> u64 {
        self.with_pci_host(hub, |b, host| {
            b.devices_mut()
                .find(|d| d.traps(gpa))
                .and_then(|d| d.mmio_read(host, gpa, size))
        })
        .flatten()
        .unwrap_or(hv::insn::mask(size))
    }

    /// A trapped write.
    pub(super) fn pci_mmio_write(&mut self, hub: &mut Hub, gpa: u64, size: u8, value: u64) {
        self.with_pci_host(hub, |b, host| {
            if let Some(d) = b.devices_mut().find(|d| d.traps(gpa)) {
                d.mmio_write(host, gpa, size, value);
            }
        });
    }

    /// Whether a function at `p` could be hot-added now (before it is
    /// assigned): the frontend connected and idle, the function fitting
    /// its view. Without a backend yet, one is made for it.
    pub fn pci_can_attach(&self, p: pciback::backend::topology::Placement) -> Result<(), String> {
        match &self.pci {
            Some(f) => f
                .backend
                .check_attach(p)
                .map(|_| ())
                .map_err(|e| alloc::format!("{e}")),
            None => Ok(()),
        }
    }

    /// Hot-adds `dev` (assigned to this domain already): into the
    /// connected frontend through Reconfiguring, or, for a domain with no
    /// PCI backend yet, a new backend with it (as libxl makes one for a
    /// domain's first function). On a refusal the function is back in
    /// the pool.
    pub fn pci_hot_attach(
        &mut self,
        hub: &mut Hub,
        dev: VirtDevice,
        permissive: bool,
        topology: hv::domcfg::PciTopology,
    ) -> Result<&'static str, String> {
        let pirq = dev.info().intx_pirq;
        let Some(front) = self.pci.as_mut() else {
            self.attach_pci(hub, alloc::vec![dev], topology)?;
            return Ok("a new PCI backend: the guest's frontend connects to it");
        };
        let opts = pciback::backend::XlOpts {
            permissive,
            ..Default::default()
        };
        if let Some(pv) = self.pv.as_mut() {
            pv_io(&mut pv.mm, &dev, true);
        }
        let r = front.backend.attach(&mut XsStore(&mut hub.xs), dev, opts);
        self.pci_release_removed(hub);
        r.map_err(|e| alloc::format!("{e}"))?;
        if pirq != 0 {
            let _ = hub.evtchn.permit_pirq(self.id, u32::from(pirq));
        }
        Ok("the guest's frontend was asked to reconfigure (backend state 7)")
    }

    /// Starts hot-removing `sbdf`: the frontend is asked to let go of it;
    /// the function is released when it has (`pci_sync`).
    pub fn pci_hot_detach(&mut self, hub: &mut Hub, sbdf: vmm_glue::Sbdf) -> Result<(), String> {
        let front = self
            .pci
            .as_mut()
            .ok_or_else(|| alloc::format!("{sbdf} is not attached to this domain"))?;
        front
            .backend
            .detach(&mut XsStore(&mut hub.xs), sbdf)
            .map(|_| ())
            .map_err(|e| alloc::format!("{e}"))
    }

    /// Releases what the backend handed back (hot-removed, or a hot-add
    /// refused or abandoned): interrupts off, windows unmapped, its INTx
    /// pirq revoked, then reset and back in the pool.
    fn pci_release_removed(&mut self, hub: &mut Hub) {
        let Some(front) = self.pci.as_mut() else {
            return;
        };
        let mut gone = front.backend.take_removed();
        if gone.is_empty() {
            return;
        }
        self.release_devices(hub, &mut gone);
        for d in gone {
            // The windows are unmapped: now the guest's page tables may no
            // longer name the BARs' frames (see `pv_io`).
            if let Some(pv) = self.pv.as_mut() {
                pv_io(&mut pv.mm, &d, false);
            }
            let pirq = d.info().intx_pirq;
            if pirq != 0 {
                hub.evtchn.revoke_pirq(self.id, u32::from(pirq));
            }
            passthrough::release_one(self.id, &self.name, d.sbdf());
            log::info!("pciback: dom{}: {} detached", self.id, d.sbdf());
        }
        if let (Some(pv), Some(front)) = (self.pv.as_mut(), self.pci.as_ref()) {
            let io = |d: &VirtDevice| {
                (d.info().bars.iter()).any(|b| b.kind == pciback::vdev::BarKind::Io)
            };
            pv.mm.set_ioport_access(front.backend.devices().any(io));
        }
    }

    /// Releases `gone` (functions the backend handed back), or with none
    /// every function the backend has: interrupts off, windows unmapped,
    /// decode and bus mastering off, the guest's view as at assignment.
    /// One closure for every caller (code size).
    fn release_devices(&mut self, hub: &mut Hub, gone: &mut [VirtDevice]) {
        let _ = self.with_pci_host(hub, |b, host| {
            if gone.is_empty() {
                b.devices_mut().for_each(|d| d.release(host));
            } else {
                gone.iter_mut().for_each(|d| d.release(host));
            }
        });
    }

    /// Whether the domain was given PCI functions (a frontend to serve).
    pub fn has_pci(&self) -> bool {
        self.pci.is_some()
    }

    /// The domain is going away: the frontend disconnected, every function
    /// released (interrupts off, windows unmapped), reset and returned to
    /// the hidden pool.
    pub fn release_pci(&mut self, hub: &mut Hub) {
        if self.pci.is_none() {
            return;
        }
        self.pci_disconnect(hub);
        if let Some(front) = self.pci.as_mut() {
            front.backend.close(&mut XsStore(&mut hub.xs));
            if let Some(w) = front.watch.take() {
                let _ = hub.unwatch(&w);
            }
        }
        self.release_devices(hub, &mut []);
        let Some(front) = self.pci.take() else { return };
        let sbdfs: Vec<vmm_glue::Sbdf> = front.backend.devices().map(VirtDevice::sbdf).collect();
        passthrough::give_back(self.id, &self.name, &sbdfs);
    }
}

/// A PV guest maps its functions' memory BARs with its own page tables:
/// their frames become I/O frames its L1 entries may name (Xen's iomem
/// permission, given at assignment), its I/O BARs give it port rights
/// (which also lets it flush caches, as in Xen). `grant` false takes the
/// frames back (hot-remove; port rights are recomputed by the caller): new entries naming them are -EPERM; entries
/// made before stay, but the BAR windows are gone from the nested tables
/// by then, so an access through one is absent MMIO (reads all ones,
/// writes dropped), as an HVM access to a removed p2m entry in Xen.
fn pv_io(mm: &mut hv::pv::mm::PvMm, d: &VirtDevice, grant: bool) {
    for b in d.info().bars.iter().chain(d.info().rom.iter()) {
        let (first, last) = (b.base >> 12, (b.base + b.size).saturating_sub(1) >> 12);
        match b.kind {
            pciback::vdev::BarKind::Io if grant => mm.set_ioport_access(true),
            pciback::vdev::BarKind::Io => {}
            _ if b.size == 0 => {}
            _ if !grant => mm.remove_io(first, last - first + 1),
            _ => {
                if let Err(e) = mm.add_io(first, last - first + 1, false) {
                    log::warn!(
                        "pciback: {} BAR{} at {:#x}: not mappable by the guest: error {}",
                        d.info().sbdf,
                        b.index,
                        b.base,
                        e.value()
                    );
                }
            }
        }
    }
}
