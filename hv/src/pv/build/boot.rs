//! What the guest finds at its first instruction: the start info page, the
//! hypercall page and its registers.

use super::error::BuildError;
use super::layout::{Layout, PAGE_SIZE};
use super::PvBuildConfig;
use crate::pv::abi::sif;
use vmm_glue::xen::start_info::{PvStartInfo, MAX_GUEST_CMDLINE, XEN_PV_START_MAGIC_X86_64};

/// `__HYPERVISOR_iret`: the one stub that does not return.
const HYPERVISOR_IRET: usize = 23;

/// The registers a PV guest starts with that the builder decides
/// (`xg_dom_x86.c vcpu_x86_64`). Every other general register is 0; the
/// integrator sets the flat kernel selectors, RFLAGS.IF and CR3 (the L4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PvRegs {
    /// `XEN_ELFNOTE_ENTRY`.
    pub rip: u64,
    /// The top of the boot stack page (virtual).
    pub rsp: u64,
    /// The start info page (virtual).
    pub rsi: u64,
}

/// The command line as `cmd_line` holds it: at most
/// `MAX_GUEST_CMDLINE - 1` bytes and no NUL.
pub fn cmd_line(cmdline: &str) -> Result<[u8; MAX_GUEST_CMDLINE], BuildError> {
    let bytes = cmdline.as_bytes();
    if bytes.len() >= MAX_GUEST_CMDLINE {
        return Err(BuildError::CmdlineTooLong {
            len: bytes.len(),
            max: MAX_GUEST_CMDLINE - 1,
        });
    }
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(BuildError::CmdlineHasNul { at });
    }
    let mut out = [0u8; MAX_GUEST_CMDLINE];
    out[..bytes.len()].copy_from_slice(bytes);
    Ok(out)
}

/// The start info of a domain laid out as `layout`, mapped at
/// `virt_base` (`xg_dom_x86.c start_info_x86_64`).
pub fn start_info(
    layout: &Layout,
    virt_base: u64,
    cfg: &PvBuildConfig<'_>,
    cmd_line: [u8; MAX_GUEST_CMDLINE],
) -> PvStartInfo {
    let va = |pfn: u64| virt_base + pfn * PAGE_SIZE;
    let mut magic = [0u8; 32];
    magic[..XEN_PV_START_MAGIC_X86_64.len()].copy_from_slice(XEN_PV_START_MAGIC_X86_64);
    let mut flags = cfg.sif_flags | sif::VIRT_P2M_4TOOLS;
    let (mod_start, mod_len) = match layout.ramdisk {
        Some(r) if r.mapped => (va(r.pfn), r.len),
        Some(r) => {
            // Xen gives an unmapped initrd's length in whole pages.
            flags |= sif::MOD_START_PFN;
            (r.pfn, r.pages * PAGE_SIZE)
        }
        None => (0, 0),
    };
    PvStartInfo {
        magic,
        nr_pages: cfg.nr_pages,
        shared_info: cfg.shared_info_maddr,
        flags,
        store_mfn: layout.store,
        store_evtchn: cfg.store_evtchn,
        console_mfn: layout.console,
        console_evtchn: cfg.console_evtchn,
        pt_base: va(layout.tables.l4_pfn),
        nr_pt_frames: layout.tables.nr_frames(),
        mfn_list: va(layout.p2m.start),
        mod_start,
        mod_len,
        cmd_line,
        first_p2m_pfn: 0,
        nr_p2m_frames: 0,
    }
}

/// The initial registers of a domain laid out as `layout`.
pub fn regs(layout: &Layout, virt_base: u64, entry: u64) -> PvRegs {
    PvRegs {
        rip: entry,
        rsp: virt_base + (layout.stack + 1) * PAGE_SIZE,
        rsi: virt_base + layout.start_info * PAGE_SIZE,
    }
}

/// The hypercall page Xen writes for a 64-bit PV guest
/// (`pv/hypercall.c pv_ring3_init_hypercall_page`, after `domain.c
/// init_hypercall_page` fills it with `int3`): 128 stubs of 32 bytes,
/// stub `i` being `push %rcx; push %r11; mov $i,%eax; syscall; pop %r11;
/// pop %rcx; ret`. Stub 23 (`iret`) does not return: the guest jumps to it
/// with its iret frame pushed, and it ends `push %rcx; push %r11;
/// push %rax; mov $23,%eax; syscall`.
pub fn hypercall_page() -> [u8; 4096] {
    let mut page = [0xccu8; 4096];
    for (i, stub) in page.chunks_exact_mut(32).enumerate() {
        let nr = (i as u32).to_le_bytes();
        if i == HYPERVISOR_IRET {
            stub[..11].copy_from_slice(&[
                0x51, 0x41, 0x53, 0x50, 0xb8, nr[0], nr[1], nr[2], nr[3], 0x0f, 0x05,
            ]);
        } else {
            stub[..14].copy_from_slice(&[
                0x51, 0x41, 0x53, 0xb8, nr[0], nr[1], nr[2], nr[3], 0x0f, 0x05, 0x41, 0x5b, 0x59,
                0xc3,
            ]);
        }
    }
    page
}
