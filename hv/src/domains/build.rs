//! Building one domain from its configuration and boot modules: guest RAM
//! around the host's holes, the kernel (PVH or PV), start info, nested
//! paging and vCPUs.

use crate::domain::Domain;
use crate::virt::guest_mem::{GuestMemory, CHUNK};
use crate::virt::Virt;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use hv::domcfg::{self, DomainConfig};
use hv::hub::Hub;
use hv::memmap::{Range, Region, RegionKind};
use hv::multiboot::{Module, PhysRead};
use hv::pvh::{self, layout::GuestLayout};
use vmm_glue::log;

/// The bytes of boot module `m`.
pub(super) fn module_bytes<'a>(m: &Module<'a>) -> Option<&'a [u8]> {
    let len = usize::try_from(m.end.checked_sub(m.start)?).ok()?;
    crate::mem::IDENTITY.read(m.start, len)
}

/// Where guest RAM must not go: everything below 4 GiB that is not host RAM
/// (so that identity-mapped BARs of passed-through devices stay reachable),
/// like Xen's `e820_host`.
pub(super) fn host_holes(map: &[Region]) -> Vec<Range> {
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
pub(super) fn build(
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
pub(super) fn build_pv(
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
pub(super) fn e820_type(kind: RegionKind) -> u32 {
    match kind {
        RegionKind::Usable => 1,
        RegionKind::Reserved | RegionKind::EfiRuntime => 2,
        RegionKind::AcpiReclaimable => 3,
        RegionKind::AcpiNvs => 4,
        RegionKind::Bad => 5,
        RegionKind::Other(t) => t,
    }
}

/// `debug.hpa`: each domain's command line says where its first 2 MiB
/// (one contiguous chunk) are in host memory.
pub(super) static TELL_HPA: core::sync::atomic::AtomicBool =
    core::sync::atomic::AtomicBool::new(false);
