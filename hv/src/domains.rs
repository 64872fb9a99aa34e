//! Building domains from boot modules and running them.
//!
//! A module whose name ends in `.cfg` is a domain configuration (xl.cfg
//! style); its `kernel =` and `ramdisk =` name other modules. Each domain
//! gets RAM laid out around the host's holes, its kernel loaded at the ELF's
//! physical addresses, a PVH start info, nested page tables and its vCPUs
//! (`vcpus =`, at most [`crate::virt::MAX_VCPUS`]).
//! A bad configuration or image is reported with the file it came from, and
//! the other domains still start.

use crate::domain::{Domain, Ending, Slice};
use crate::virt::guest_mem::{GuestMemory, CHUNK};
use crate::virt::svm::Svm;
use crate::virt::vmx::Vmx;
use crate::virt::Virt;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use hv::domcfg::{self, DomainConfig, LifecycleAction};
use hv::hub::Hub;
use hv::memmap::{Range, Region, RegionKind};
use hv::multiboot::{BootInfo, Module, PhysRead};
use hv::pvh::{self, layout::GuestLayout};
use vmm_glue::log;

/// The bytes of boot module `m`.
fn module_bytes<'a>(m: &Module<'a>) -> Option<&'a [u8]> {
    let len = usize::try_from(m.end.checked_sub(m.start)?).ok()?;
    crate::mem::IDENTITY.read(m.start, len)
}

/// Where guest RAM must not go: everything below 4 GiB that is not host RAM
/// (so that identity-mapped BARs of passed-through devices stay reachable),
/// like Xen's `e820_host`.
fn host_holes(map: &[Region]) -> Vec<Range> {
    let mut ram: Vec<Range> = map
        .iter()
        .filter(|r| r.kind == RegionKind::Usable && r.base < 4 << 30)
        .map(|r| Range::new(r.base, r.end().min(4 << 30)))
        .collect();
    vmm_glue::compact::sort(&mut ram);
    let mut holes = Vec::new();
    let mut at = 0x10_0000u64;
    for r in ram {
        if r.end <= at {
            continue;
        }
        if r.start > at {
            holes.push(Range::new(at, r.start));
        }
        at = at.max(r.end);
    }
    if at < 4 << 30 {
        holes.push(Range::new(at, 4 << 30));
    }
    holes
}

/// Builds one domain; the error says what is wrong and where.
fn build(
    virt: &Virt,
    hub: &mut Hub,
    id: u16,
    cfg: &DomainConfig,
    modules: &[Module<'_>],
    holes: &[Range],
) -> Result<Domain, String> {
    let nr_vcpus = cfg.vcpus;
    if !(1..=crate::virt::MAX_VCPUS).contains(&nr_vcpus) {
        return Err(format!(
            "vcpus = {nr_vcpus}: a domain has 1 to {} vCPUs here",
            crate::virt::MAX_VCPUS
        ));
    }
    let kernel_module =
        domcfg::find_module(modules, |m| m.name, &cfg.kernel).map_err(|e| e.to_string())?;
    let kernel = module_bytes(kernel_module).ok_or("the kernel module is not readable")?;
    if cfg.kind == domcfg::DomainKind::Pv {
        return build_pv(virt, hub, id, cfg, kernel, modules, holes);
    }
    let layout =
        GuestLayout::new(cfg.memory_mib << 20, holes).map_err(|e| format!("memory layout: {e}"))?;
    let (notes, plan) =
        pvh::prepare(kernel, &layout.e820).map_err(|e| format!("kernel '{}': {e}", cfg.kernel))?;

    let mut mem = GuestMemory::new();
    let mut chunks: Vec<u64> = Vec::new();
    for r in layout.backed() {
        let mut c = r.start / CHUNK * CHUNK;
        while c < r.end {
            if !chunks.contains(&c) {
                chunks.push(c);
            }
            c += CHUNK;
        }
    }
    for c in chunks {
        mem.add_ram(c, CHUNK).map_err(|e| {
            format!(
                "out of memory: {} MiB more needed, {} MiB free",
                e.wanted >> 20,
                e.free >> 20
            )
        })?;
    }
    for seg in &plan.segments {
        let bytes = seg
            .bytes(kernel)
            .ok_or("a kernel segment lies outside the image")?;
        mem.write(seg.gpa, bytes)
            .map_err(|_| format!("segment at {:#x} is outside guest RAM", seg.gpa))?;
    }

    let mut mods: Vec<(u64, u64, &str)> = Vec::new();
    if let Some(name) = &cfg.ramdisk {
        let m = domcfg::find_module(modules, |m| m.name, name).map_err(|e| e.to_string())?;
        let bytes = module_bytes(m).ok_or("the ramdisk module is not readable")?;
        let at = layout
            .place_modules(plan.image_end, &[bytes.len() as u64])
            .map_err(|e| format!("ramdisk '{name}': {e}"))?;
        mem.write(at[0], bytes)
            .map_err(|_| format!("ramdisk '{name}' does not fit in guest RAM"))?;
        mods.push((at[0], bytes.len() as u64, name.as_str()));
    }
    let cmdline = match mem.translate(0) {
        Some(hpa) if TELL_HPA.load(core::sync::atomic::Ordering::Relaxed) => {
            log::warn!(
                "dom{id} ({}): debug.hpa: told that its guest-physical 0-2 MiB is host-physical {hpa:#x}",
                cfg.name
            );
            format!("{} hv.hpa0={hpa:#x}", cfg.cmdline)
                .trim_start()
                .to_string()
        }
        _ => cfg.cmdline.clone(),
    };
    // The ACPI tables (what Xen's libxl gives a PVH domU: no legacy
    // devices) and an MP table list the vCPUs and their local APICs, APIC
    // id = vCPU index; the BIOS area they go in is backed with the low RAM.
    let apic_ids: Vec<u8> = (0..nr_vcpus as u8).collect();
    let acpi = pvh::acpi::build(pvh::acpi::GPA, &apic_ids);
    mem.write(pvh::acpi::GPA, &acpi)
        .map_err(|_| "the ACPI tables' area (0xe0000) is not backed")?;
    let (blob, start_info) = pvh::start_info::build_start_info(
        layout.special.start_info,
        &cmdline,
        &mods,
        &layout.e820,
        pvh::acpi::GPA,
    )
    .map_err(|e| format!("start info: {e}"))?;
    mem.write(layout.special.start_info, &blob)
        .map_err(|_| "start info outside guest RAM")?;
    let cpu = crate::arch::cpu::cpuid(1, 0);
    let mp = pvh::mptable::build(pvh::mptable::GPA, &apic_ids, cpu.eax, cpu.edx);
    mem.write(pvh::mptable::GPA, &mp)
        .map_err(|_| "the MP table's area (0xf0000) is not backed")?;

    log::info!(
        "dom{id} ({}): kernel '{}' entry {:#x} ({} segments, up to {:#x}), {} MiB RAM, {}",
        cfg.name,
        cfg.kernel,
        plan.entry,
        plan.segments.len(),
        plan.image_end,
        layout.ram_bytes >> 20,
        notes
            .guest_os
            .map(|s| format!("guest os \"{s}\""))
            .unwrap_or_else(|| String::from("no guest-os note"))
    );
    for r in &layout.e820 {
        log::debug!(
            "dom{id}:   e820 {:#012x}-{:#012x} {}",
            r.base,
            r.end() - 1,
            r.kind
        );
    }
    let rings = (layout.special.xenstore, layout.special.console);
    let mut page = [0u8; 4096];
    hv::xenstore::conn::Connection::init_page(&mut page);
    mem.write(rings.0, &page)
        .map_err(|_| "xenstore ring outside guest RAM")?;
    let mut page = [0u8; 4096];
    hv::pvconsole::init_page(&mut page);
    mem.write(rings.1, &page)
        .map_err(|_| "console ring outside guest RAM")?;
    let ports = hub
        .add_domain_vcpus(id, nr_vcpus)
        .map_err(|e| format!("event channels: error {}", e.value()))?;
    if let Err(e) = hub.introduce(id, &cfg.name, cfg.memory_mib << 10, ports, rings) {
        hub.remove_domain(id);
        return Err(format!("xenstore home: {}", e.as_str()));
    }
    let e820 = layout
        .e820
        .iter()
        .map(|r| (r.base, r.len, e820_type(r.kind)))
        .collect();
    match Domain::new(
        virt,
        id,
        cfg.name.clone(),
        mem,
        plan.entry,
        start_info,
        rings,
        ports,
        nr_vcpus,
    ) {
        Some(mut d) => {
            d.set_memory_map(e820);
            if !cfg.pci.is_empty() {
                let devs = crate::passthrough::assign(id, &cfg.name, &cfg.pci, d.mem.chunks());
                if let Err(e) = d.attach_pci(hub, devs, cfg.pci_topology) {
                    log::error!("dom{id} ({}): {e}", cfg.name);
                }
            }
            Ok(d)
        }
        None => {
            hub.remove_domain(id);
            Err(String::from(
                "out of memory for the vCPU or nested page tables",
            ))
        }
    }
}

/// Builds PV domain `id` (`type = "pv"`): `Domain::new_pv` lays it out;
/// its functions are assigned as for a PVH domain.
fn build_pv(
    virt: &Virt,
    hub: &mut Hub,
    id: u16,
    cfg: &DomainConfig,
    kernel: &[u8],
    modules: &[Module<'_>],
    holes: &[Range],
) -> Result<Domain, String> {
    let ramdisk = match &cfg.ramdisk {
        Some(name) => {
            let m = domcfg::find_module(modules, |m| m.name, name).map_err(|e| e.to_string())?;
            Some(module_bytes(m).ok_or("the ramdisk module is not readable")?)
        }
        None => None,
    };
    let input = crate::domain::PvInput {
        id,
        name: &cfg.name,
        memory_mib: cfg.memory_mib,
        nr_vcpus: cfg.vcpus,
        kernel,
        ramdisk,
        cmdline: &cfg.cmdline,
        holes,
    };
    let mut d = Domain::new_pv(virt, hub, &input)?;
    hub.pv_domains.insert(id);
    if !cfg.pci.is_empty() {
        let devs = crate::passthrough::assign(id, &cfg.name, &cfg.pci, d.mem.chunks());
        if let Err(e) = d.attach_pci(hub, devs, cfg.pci_topology) {
            log::error!("dom{id} ({}): {e}", cfg.name);
        }
    }
    Ok(d)
}

/// The e820 type number of a region kind.
fn e820_type(kind: RegionKind) -> u32 {
    match kind {
        RegionKind::Usable => 1,
        RegionKind::Reserved | RegionKind::EfiRuntime => 2,
        RegionKind::AcpiReclaimable => 3,
        RegionKind::AcpiNvs => 4,
        RegionKind::Bad => 5,
        RegionKind::Other(t) => t,
    }
}

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

/// A page of host memory filled with a known pattern while the domains run
/// (`debug.canary`): its address is appended to every domain's command line
/// as `hv.canary=0x...`, so a test guest can aim at it, and it is checked
/// when all domains have ended. The domains' memory, scrubbed when each
/// ends, is checked then too: whatever of it is still free must still read
/// as zero [`LATE_DMA_MS`] after the last domain ended, so a device that
/// kept writing after its owner died would show.
struct Canary {
    hpa: u64,
}

const CANARY_BYTE: u8 = 0xc5;

/// How long the checks wait for a device's late write (QEMU's edu finishes
/// a DMA 100 ms after it was started).
const LATE_DMA_MS: u64 = 300;

impl Canary {
    fn new() -> Option<Self> {
        let hpa = crate::mem::alloc_frames(1, 4096)?;
        crate::arch::phys::fill_owned(hpa, 4096, CANARY_BYTE);
        crate::mem::watch_scrubbed();
        log::info!("isolation: canary page at host-physical {hpa:#x}");
        Some(Self { hpa })
    }

    /// Checks that nothing writes the memory of `dom`, which has ended
    /// and whose devices were released, for [`LATE_DMA_MS`] (before it is
    /// scrubbed): a device still writing would change it.
    fn check_quiet(dom: &Domain) {
        let before = dom.mem.digest();
        wait_ms(LATE_DMA_MS);
        // What the IOMMU blocked meanwhile is logged here, not after exit.
        crate::iommu::poll_faults();
        if dom.mem.digest() == before {
            log::info!(
                "isolation: dom{}'s memory unchanged in the {LATE_DMA_MS} ms after its devices were released",
                dom.id
            );
        } else {
            log::error!(
                "isolation: dom{}'s memory CHANGED after its devices were released: a device still reaches it",
                dom.id
            );
        }
    }

    /// Checks that the domains' freed memory is still zero.
    fn check_freed() {
        wait_ms(LATE_DMA_MS);
        crate::iommu::poll_faults();
        let free = crate::mem::scrubbed_and_free();
        let bytes: u64 = free.iter().map(|r| r.end - r.start).sum();
        match free
            .iter()
            .find_map(|r| crate::arch::phys::first_nonzero(r.start, r.end - r.start))
        {
            None => log::info!(
                "isolation: the domains' freed memory ({} KiB still free) reads zero {LATE_DMA_MS} ms after the last one ended",
                bytes >> 10
            ),
            Some(at) => log::error!(
                "isolation: freed domain memory at {at:#x} CHANGED after its domain ended: something wrote memory nobody owns"
            ),
        }
    }

    fn check(self, domains: usize) {
        Self::check_freed();
        let intact = crate::mem::IDENTITY
            .read(self.hpa, 4096)
            .is_some_and(|b| b.iter().all(|&x| x == CANARY_BYTE));
        if intact {
            log::info!(
                "isolation: canary page at {:#x} unchanged after {domains} domains",
                self.hpa
            );
        } else {
            log::error!(
                "isolation: canary page at {:#x} CHANGED: a domain reached host memory",
                self.hpa
            );
        }
        crate::mem::free_frames(self.hpa, 1);
    }
}

/// Spins for `ms` milliseconds.
fn wait_ms(ms: u64) {
    let end = crate::domain::time::now_ns() + ms * 1_000_000;
    while crate::domain::time::now_ns() < end {
        core::hint::spin_loop();
    }
}

/// What the domains hold of the hypervisor's resources, counted from their
/// owners: free frames, interrupt routes (a host vector and the guest pirq
/// behind each), grant mappings the backends hold, xenstore nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Resources {
    free_frames: u64,
    /// Frames the IOMMU tables hold: once no domain is left, only the
    /// units' own tables (root, context and interrupt tables, made as
    /// functions were first attached).
    iommu_frames: u64,
    routes: usize,
    grant_maps: usize,
    xs_nodes: usize,
}

impl Resources {
    fn now(hub: &Hub) -> Self {
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
fn report_resources(before: Resources, hub: &Hub) {
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

/// Logs how domain `dom` ended and frees it; `true` if it powered off
/// cleanly.
fn finish(mut dom: Domain, ending: Ending, hub: &mut Hub) -> bool {
    let (id, name) = (dom.id, dom.name.clone());
    let held = Resources::now(hub);
    // Its devices stop (and go back to the pool) before its memory goes.
    let watch = crate::mem::watching_scrubbed() && dom.has_pci();
    dom.release_pci(hub);
    crate::iommu::remove_domain(id);
    if watch {
        Canary::check_quiet(&dom);
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
             {} xen_version, {} upcalls; {} forwarded, {} faults rolled back; \
             {} upcalls with nothing pending left out ({} by the hypervisor)",
            f.syscalls,
            f.irets,
            f.xen_versions,
            f.upcalls,
            f.forwards,
            e.stub_faults,
            f.empty + e.empty_upcalls,
            e.empty_upcalls
        );
    }
    let clean = match ending {
        Ending::Shutdown(0) => {
            log::info!("dom{id} ({name}): powered off");
            true
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

/// Serial input kept for a guest whose console ring is full.
const TYPED_MAX: usize = 4096;

/// How many times one configuration is restarted (`on_crash = "restart"`
/// and friends) before the hypervisor gives up on it.
const MAX_RESTARTS: u32 = 3;

/// A running domain with what it takes to build it again.
struct Entry<'c> {
    dom: Domain,
    cfg: &'c DomainConfig,
    restarts: u32,
}

/// What the configuration says to do after `ending`.
fn action_after(cfg: &DomainConfig, ending: &Ending) -> (LifecycleAction, &'static str) {
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
const SLICE_NS: u64 = 2_000_000;
/// How long a guest runs uninterrupted when nothing else waits for the CPU
/// and no timer of its is due, and how long the CPU idles at most: the
/// bound on how late serial input and IOMMU faults are looked at, ns.
const IDLE_NS: u64 = 10_000_000;

/// Runs `entries` on this CPU until all have ended: round-robin, one time
/// slice each (see `Domain::run_slice`), the host timer ending slices; a
/// domain's slice goes to its next runnable vCPU (`Domain::runnable`). A
/// domain whose configuration says `restart` for the way it ended is built
/// again under a new id (at most [`MAX_RESTARTS`] times). Returns how many
/// powered off cleanly.
fn schedule(
    virt: &Virt,
    hub: &mut Hub,
    mut entries: Vec<Entry<'_>>,
    next_id: &mut u16,
    tally: &mut Tally,
    mut rebuild: impl FnMut(&mut Hub, u16, &DomainConfig) -> Result<Domain, String>,
) {
    if entries.is_empty() {
        return;
    }
    crate::arch::lapic::start_timer();
    let mut i = 0;
    // Bytes typed on the serial line, for the first domain's PV console.
    let mut typed: Vec<u8> = Vec::new();
    let mut console_dom = None;
    while !entries.is_empty() {
        while typed.len() < TYPED_MAX {
            match crate::arch::serial::read_byte() {
                Some(b) => typed.push(b),
                None => break,
            }
        }
        if let Some(first) = entries.first_mut() {
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
                let (action, key) = action_after(cfg, &ending);
                let old = dom.id;
                tally.clean += usize::from(finish(dom, ending, hub));
                if action != LifecycleAction::Restart {
                    continue;
                }
                if restarts >= MAX_RESTARTS {
                    log::warn!(
                        "dom{old} ({}): {key} = \"restart\", but it was restarted {MAX_RESTARTS} times already; not again",
                        cfg.name
                    );
                    continue;
                }
                let id = *next_id;
                *next_id += 1;
                match rebuild(hub, id, cfg) {
                    Ok(dom) => {
                        tally.started += 1;
                        log::info!(
                            "dom{old} ({}): {key} = \"restart\": restarted as dom{id} (restart {} of {MAX_RESTARTS})",
                            cfg.name,
                            restarts + 1
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

/// `debug.hpa`: each domain's command line says where its first 2 MiB
/// (one contiguous chunk) are in host memory.
static TELL_HPA: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Builds every domain the boot modules describe, then runs them together
/// until each has ended. Returns how many were configured and how many
/// ended cleanly.
pub fn run_all(boot: &BootInfo<'_>, canary: bool, tell_hpa: bool) -> Tally {
    TELL_HPA.store(tell_hpa, core::sync::atomic::Ordering::Relaxed);
    let modules = boot.modules.as_slice();
    let configs: Vec<&Module<'_>> = modules
        .iter()
        .filter(|m| domcfg::is_config_module(m.name))
        .collect();
    if configs.is_empty() {
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
    let canary = if canary { Canary::new() } else { None };
    let mut hub = Hub::new();
    let before = Resources::now(&hub);
    let mut configs_ok: Vec<DomainConfig> = Vec::new();
    let mut built: Vec<(u16, usize, Domain)> = Vec::new();
    let mut next_id = 1u16;
    // With `debug.canary`, a domain also learns where the previous one's
    // kernel (guest-physical 1 MiB) is in host memory: `hv.peer=0x...`.
    let mut peer: Option<u64> = None;
    for m in configs {
        let Some(text) = module_bytes(m).map(core::str::from_utf8) else {
            log::error!("domains: {}: module not readable; skipped", m.name);
            tally.refused += 1;
            continue;
        };
        let text = match text {
            Ok(t) => t,
            Err(e) => {
                log::error!(
                    "domains: {}: not UTF-8 text (byte {}); skipped",
                    m.name,
                    e.valid_up_to()
                );
                tally.refused += 1;
                continue;
            }
        };
        let mut cfg = match domcfg::parse(m.name, text) {
            Ok((cfg, warnings)) => {
                for w in warnings {
                    log::warn!("{w}");
                }
                cfg
            }
            Err(errors) => {
                for e in errors {
                    log::error!("{e}");
                }
                log::error!(
                    "domains: {}: not started because of the errors above",
                    m.name
                );
                tally.refused += 1;
                continue;
            }
        };
        if let Some(c) = &canary {
            cfg.cmdline = format!("{} hv.canary={:#x}", cfg.cmdline, c.hpa)
                .trim_start()
                .to_string();
            if let Some(p) = peer {
                cfg.cmdline = format!("{} hv.peer={p:#x}", cfg.cmdline);
            }
        }
        let id = next_id;
        next_id += 1;
        match build(&virt, &mut hub, id, &cfg, modules, &holes) {
            Ok(d) => {
                if canary.is_some() {
                    peer = d.mem.translate(0x10_0000);
                    if let Some(p) = peer {
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
        configs_ok.push(cfg);
    }
    let built_count = built.len();
    let entries = built
        .into_iter()
        .map(|(_, c, dom)| Entry {
            dom,
            cfg: &configs_ok[c],
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
        |hub, id, cfg| build(&virt, hub, id, cfg, modules, &holes),
    );
    if let Some(c) = canary {
        c.check(next_id as usize - 1);
    }
    report_resources(before, &hub);
    tally
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
