//! Building a PV domain: RAM from pfn 0 (identity p2m), the kernel, start
//! info, p2m list, rings, boot page tables and stack where
//! `hv::pv::build`'s plan puts them, the special frames (shared info, grant
//! table) above RAM, the hypervisor's frames above those, the boot L4
//! pinned and installed through `hv::pv::mm`, and vCPU 0 at the kernel's
//! entry in Xen's PV start state.

use super::super::hypercall::Errno;
use super::super::space::GuestSpace;
use super::super::{state, Domain, ExitCounts};
use super::area::HvArea;
use super::hypercall::MemFrames;
use super::stub;
use super::{PvDomain, PvVcpu};
use crate::virt::guest_mem::{GuestMemory, CHUNK};
use crate::virt::pv::{PvStart, SegReg};
use crate::virt::stage2::{Format, GuestTables};
use crate::virt::Virt;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use hv::hub::Hub;
use hv::memmap::Range;
use hv::pv::abi::{gdt, sel, XEN_MSR_PAT};
use hv::pv::build::{self as plan, GuestWriter, PvBuildConfig};
use hv::pv::container::{self, perdomain, Container};
use hv::pv::mm::{PvMm, XenSlots};
use vmm_glue::log;

/// The vCPU's control registers: protected mode with paging (PE, MP, ET,
/// NE, WP, AM, PG); PAE, OSFXSR, OSXMMEXCPT (and OSXSAVE when the CPU has
/// XSAVE: Xen sets it for PV guests); long mode with NX and SCE (SYSCALL
/// enters the fast-path stub, `hv::pv::fast`).
const CR0: u64 = 0x8005_0033;
const CR4_PAE: u64 = 1 << 5;
const CR4_OSFXSR: u64 = 1 << 9;
const CR4_OSXMMEXCPT: u64 = 1 << 10;
const CR4_OSXSAVE: u64 = 1 << 18;
const EFER: u64 = (1 << 0) | (1 << 8) | (1 << 10) | (1 << 11);

/// Writes the plan into guest memory.
struct Writer<'m>(&'m GuestMemory);

impl GuestWriter for Writer<'_> {
    type Error = &'static str;

    fn write(&mut self, gpa: u64, bytes: &[u8]) -> Result<(), Self::Error> {
        self.0
            .write(gpa, bytes)
            .map_err(|_| "outside the domain's RAM")
    }

    /// In place, rather than the default's copies of a page of zeros.
    fn zero(&mut self, gpa: u64, len: u64) -> Result<(), Self::Error> {
        self.0
            .zero(gpa, len)
            .map_err(|_| "outside the domain's RAM")
    }
}

/// What building needs besides the configuration.
pub struct PvInput<'a> {
    pub id: u16,
    pub name: &'a str,
    pub memory_mib: u64,
    pub nr_vcpus: u32,
    pub kernel: &'a [u8],
    pub ramdisk: Option<&'a [u8]>,
    pub cmdline: &'a str,
    /// Where the host has no RAM below 4 GiB (device ranges): the domain's
    /// frames must stay below the first.
    pub holes: &'a [Range],
}

/// The frames the hypervisor area needs for a domain of `nr_pages` and
/// `nr_vcpus`, with room to spare.
fn hv_frames(c: &Container, nr_vcpus: u32) -> u64 {
    let m2p = container::m2p_table_pages(c) + container::m2p_l1_tables(c) + 4;
    // The area's tables, the reserved GDT page, the TSS, the stub's code
    // and data pages.
    let perdomain = 8 + u64::from(nr_vcpus) * gdt::FIRST_RESERVED_GDT_PAGE as u64;
    m2p + perdomain + 16
}

impl Domain {
    /// Builds PV domain `input.id`; the error says what is wrong.
    pub fn new_pv(virt: &Virt, hub: &mut Hub, input: &PvInput<'_>) -> Result<Self, String> {
        if input.nr_vcpus != 1 {
            return Err(format!(
                "vcpus = {}: a PV domain has 1 vCPU here (PV secondary vCPUs are not supported yet)",
                input.nr_vcpus
            ));
        }
        let nr_pages = input.memory_mib << 8;
        let grant_frames = hv::grant::DEFAULT_MAX_FRAMES;
        let probe = Container::new(nr_pages, grant_frames, 0);
        let c = Container::new(nr_pages, grant_frames, hv_frames(&probe, input.nr_vcpus));
        let limit = input
            .holes
            .iter()
            .map(|h| h.start)
            .find(|&s| s >= 1 << 20)
            .unwrap_or(4 << 30);
        let end = c.end() + container::MIB2;
        if end > limit {
            return Err(format!(
                "memory = {} MiB: a PV domain's RAM and frames ({} MiB) must lie below the host's \
                 first device range at {limit:#x}; give it at most {} MiB",
                input.memory_mib,
                end >> 20,
                (limit.saturating_sub(end - (nr_pages << 12)) >> 20).saturating_sub(1)
            ));
        }

        // RAM from 0, the special frames above it.
        let mut mem = GuestMemory::new();
        let ram_end = (nr_pages << 12).next_multiple_of(CHUNK);
        let mut at = 0;
        while at < ram_end {
            mem.add_ram(at, CHUNK).map_err(|e| {
                format!(
                    "out of memory: {} MiB more needed, {} MiB free",
                    e.wanted >> 20,
                    e.free >> 20
                )
            })?;
            at += CHUNK;
        }
        let mut special = Vec::new();
        special.push(c.shared_info);
        special.extend((0..c.nr_grant_frames).filter_map(|i| c.grant_frame(i)));
        let mut special_hpa = Vec::new();
        for &gpa in &special {
            let hpa = mem
                .add_page(gpa)
                .map_err(|_| String::from("out of memory for the shared info and grant frames"))?;
            special_hpa.push((gpa, hpa));
        }

        // Event channels first: the start info names the rings' ports.
        let ports = hub
            .add_domain_vcpus(input.id, input.nr_vcpus)
            .map_err(|e| format!("event channels: error {}", e.value()))?;
        let built = Self::pv_plan_and_load(virt, hub, input, &c, mem, &special_hpa, ports);
        if built.is_err() {
            hub.remove_domain(input.id);
        }
        built
    }

    #[allow(clippy::too_many_arguments)]
    fn pv_plan_and_load(
        virt: &Virt,
        hub: &mut Hub,
        input: &PvInput<'_>,
        c: &Container,
        mem: GuestMemory,
        special: &[(u64, u64)],
        ports: hv::hub::BackendPorts,
    ) -> Result<Self, String> {
        let cfg = PvBuildConfig {
            nr_pages: c.nr_pages,
            ramdisk_len: input.ramdisk.map(|r| r.len() as u64),
            cmdline: input.cmdline,
            shared_info_maddr: c.shared_info,
            store_evtchn: ports.xenstore_guest,
            console_evtchn: ports.console_guest,
            sif_flags: 0,
        };
        let plan = plan::plan(input.kernel, &cfg).map_err(|e| format!("kernel: {e}"))?;
        plan.write(input.kernel, input.ramdisk, &mut Writer(&mem))
            .map_err(|e| format!("loading the kernel: {e}"))?;
        let store = plan.store_pfn() << 12;
        let console = plan.console_pfn() << 12;
        let mut page = [0u8; 4096];
        hv::xenstore::conn::Connection::init_page(&mut page);
        mem.write(store, &page)
            .map_err(|_| "xenstore ring outside RAM")?;
        let mut page = [0u8; 4096];
        hv::pvconsole::init_page(&mut page);
        mem.write(console, &page)
            .map_err(|_| "console ring outside RAM")?;
        // Every vCPU starts with events masked.
        let mut shared = [0u8; 4096];
        for k in 0..vmm_glue::xen::shared_info::XEN_LEGACY_MAX_VCPUS {
            shared[k * 64 + 1] = 1;
        }
        mem.write(c.shared_info, &shared)
            .map_err(|_| "shared info outside the domain")?;

        // Nested page tables over RAM and the special frames, then the
        // hypervisor's frames (read-only).
        let format = match virt {
            Virt::Svm(_) => Format::Npt,
            Virt::Vmx(_) => Format::Ept,
        };
        let mut tables =
            GuestTables::for_ram(format, &mem).ok_or("out of memory for the nested page tables")?;
        for &(gpa, hpa) in special {
            // SAFETY: a special frame (shared info, grant table) of this
            // domain's memory, which owns it until the domain ends.
            unsafe { tables.map_4k(gpa, hpa) }.ok_or("out of memory for the nested page tables")?;
        }
        let forward = match virt {
            Virt::Svm(_) => stub::Forward::Vmmcall,
            Virt::Vmx(_) => stub::Forward::Vmcall,
        };
        let area = HvArea::new(*c, input.nr_vcpus, &mut tables, &stub::code(forward))
            .ok_or("out of memory for the hypervisor's PV frames")?;
        let mut mm = PvMm::new(
            c.nr_pages,
            XenSlots {
                m2p: area.l4_m2p,
                perdomain: area.l4_perdomain,
            },
        );
        // Frames below the container's end that are not the domain's are
        // the hypervisor's (another owner's RAM to the guest); beyond it,
        // device memory the domain was not given.
        mm.set_frame_limit(c.end() >> 12);
        for &(gpa, _) in special {
            mm.add_special(gpa >> 12)
                .map_err(|e| format!("special frame {gpa:#x}: {e:?}"))?;
        }
        let mut v = PvVcpu::new(plan.regs.rsp);
        mm.pin_and_install_boot_root(&mut MemFrames(&mem), plan.l4_pfn(), &mut v.roots)
            .map_err(|e: Errno| {
                format!(
                    "the boot page tables at pfn {:#x} do not validate: error {}",
                    plan.l4_pfn(),
                    e.value()
                )
            })?;

        let flat = |s: u16, attrib: u16| SegReg {
            selector: s,
            attrib,
            limit: 0xffff_ffff,
            base: 0,
        };
        let cr4 =
            CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | if virt.xsave() { CR4_OSXSAVE } else { 0 };
        let start = PvStart {
            rip: plan.regs.rip,
            rsp: plan.regs.rsp,
            rsi: plan.regs.rsi,
            rflags: 0x202,
            cr0: CR0,
            cr3: plan.l4_pfn() << 12,
            cr4,
            efer: EFER,
            pat: XEN_MSR_PAT,
            cs: flat(sel::FLAT_KERNEL_CS, 0xafb),
            ss: flat(sel::FLAT_KERNEL_SS, 0xcf3),
            tr: SegReg {
                selector: 0xe040,
                attrib: 0x8b,
                limit: 0x67,
                base: perdomain::TSS,
            },
            gdt_base: perdomain::gdt(0),
            gdt_limit: gdt::LIMIT,
        };
        let vcpu = virt
            .new_pv_vcpu(input.id, 0, &tables, &start)
            .ok_or("out of memory for the vCPU")?;

        let rings = (store, console);
        if let Err(e) = hub.introduce(input.id, input.name, input.memory_mib << 10, ports, rings) {
            return Err(format!("xenstore home: {}", e.as_str()));
        }
        let mut xen = state::XenState::new(input.id, store, console, ports);
        xen.cpu.pv = Some(Box::new(v));
        xen.e820 = alloc::vec![(0, c.nr_pages << 12, 1)];
        xen.grant_frames = (0..c.nr_grant_frames).map(|i| c.grant_frame(i)).collect();
        xen.shared = super::super::events::SharedInfo::placed(c.shared_info);
        log::info!(
            "dom{} ({}): PV kernel: {}; {} MiB RAM at machine frames 0-{:#x}, special frames at {:#x}, \
             hypervisor frames at {:#x}",
            input.id,
            input.name,
            plan.summary(),
            input.memory_mib,
            c.nr_pages - 1,
            c.shared_info,
            c.hv_base
        );
        let mut d = Domain {
            id: input.id,
            name: String::from(input.name),
            mem: GuestSpace::new(mem, tables),
            vcpu,
            vcpus: super::super::vcpus::VcpuSet::new(alloc::vec![None]),
            console: hv::console::Console::new(1),
            exits: ExitCounts::default(),
            pit: hv::vpit::Channel2::default(),
            effect_buf: Vec::new(),
            code_page: core::cell::Cell::new(None),
            yield_cpu: false,
            xen,
            pci: None,
            io_bitmap: None,
            pv: Some(Box::new(PvDomain {
                mm,
                area,
                vm_assist: 0,
            })),
        };
        d.mem.pv = true;
        d.update_time();
        Ok(d)
    }
}
