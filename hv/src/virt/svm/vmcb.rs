//! The VMCB (AMD64 APM vol. 2, appendix B), as a `#[repr(C)]` layout with
//! compile-time offset checks. Only fields the hypervisor uses are named;
//! the rest are reserved padding.

use core::mem::{offset_of, size_of};

/// A segment register in the state save area.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Segment {
    pub selector: u16,
    /// Descriptor bits 8..16 (type, S, DPL, P) in 0..8 and bits 52..56
    /// (AVL, L, D/B, G) in 8..12.
    pub attrib: u16,
    pub limit: u32,
    pub base: u64,
}

/// Control area, offsets 0x000..0x400.
#[repr(C)]
pub struct Control {
    pub intercept_cr: u32,
    pub intercept_dr: u32,
    pub intercept_exceptions: u32,
    pub intercept_misc1: u32,
    pub intercept_misc2: u32,
    pub intercept_misc3: u32,
    _reserved0: [u8; 0x3c - 0x18],
    pub pause_filter_threshold: u16,
    pub pause_filter_count: u16,
    pub iopm_base_pa: u64,
    pub msrpm_base_pa: u64,
    pub tsc_offset: u64,
    pub guest_asid: u32,
    pub tlb_control: u8,
    _reserved1: [u8; 3],
    /// V_TPR (0..8), V_IRQ (8), V_GIF (9), V_INTR_PRIO (16..20), V_IGN_TPR
    /// (20), V_INTR_MASKING (24), V_GIF_ENABLE (25), V_INTR_VECTOR (32..40).
    pub vintr: u64,
    /// INTERRUPT_SHADOW (0), GUEST_INTERRUPT_MASK (1).
    pub interrupt_shadow: u64,
    pub exit_code: u64,
    pub exit_info1: u64,
    pub exit_info2: u64,
    pub exit_int_info: u64,
    /// NP_ENABLE (0).
    pub np_control: u64,
    pub avic_apic_bar: u64,
    pub ghcb_pa: u64,
    pub event_inject: u64,
    pub n_cr3: u64,
    pub lbr_virt: u64,
    pub clean_bits: u32,
    _reserved2: u32,
    pub next_rip: u64,
    pub insn_len: u8,
    pub insn_bytes: [u8; 15],
    _reserved3: [u8; 0x400 - 0xe0],
}

/// State save area, offsets 0x400..0x1000.
#[repr(C)]
pub struct Save {
    pub es: Segment,
    pub cs: Segment,
    pub ss: Segment,
    pub ds: Segment,
    pub fs: Segment,
    pub gs: Segment,
    pub gdtr: Segment,
    pub ldtr: Segment,
    pub idtr: Segment,
    pub tr: Segment,
    _reserved0: [u8; 0xcb - 0xa0],
    pub cpl: u8,
    _reserved1: u32,
    pub efer: u64,
    _reserved2: [u8; 0x148 - 0xd8],
    pub cr4: u64,
    pub cr3: u64,
    pub cr0: u64,
    pub dr7: u64,
    pub dr6: u64,
    pub rflags: u64,
    pub rip: u64,
    _reserved3: [u8; 0x1d8 - 0x180],
    pub rsp: u64,
    _reserved4: [u8; 0x1f8 - 0x1e0],
    pub rax: u64,
    pub star: u64,
    pub lstar: u64,
    pub cstar: u64,
    pub sfmask: u64,
    pub kernel_gs_base: u64,
    pub sysenter_cs: u64,
    pub sysenter_esp: u64,
    pub sysenter_eip: u64,
    pub cr2: u64,
    _reserved5: [u8; 0x268 - 0x248],
    pub g_pat: u64,
    _reserved6: [u8; 0xc00 - 0x270],
}

/// The whole 4 KiB VMCB.
#[repr(C, align(4096))]
pub struct Vmcb {
    pub control: Control,
    pub save: Save,
}

const _: () = {
    assert!(size_of::<Vmcb>() == 4096);
    assert!(offset_of!(Control, pause_filter_threshold) == 0x3c);
    assert!(offset_of!(Control, iopm_base_pa) == 0x40);
    assert!(offset_of!(Control, msrpm_base_pa) == 0x48);
    assert!(offset_of!(Control, tsc_offset) == 0x50);
    assert!(offset_of!(Control, guest_asid) == 0x58);
    assert!(offset_of!(Control, tlb_control) == 0x5c);
    assert!(offset_of!(Control, vintr) == 0x60);
    assert!(offset_of!(Control, interrupt_shadow) == 0x68);
    assert!(offset_of!(Control, exit_code) == 0x70);
    assert!(offset_of!(Control, exit_info1) == 0x78);
    assert!(offset_of!(Control, exit_info2) == 0x80);
    assert!(offset_of!(Control, exit_int_info) == 0x88);
    assert!(offset_of!(Control, np_control) == 0x90);
    assert!(offset_of!(Control, event_inject) == 0xa8);
    assert!(offset_of!(Control, n_cr3) == 0xb0);
    assert!(offset_of!(Control, clean_bits) == 0xc0);
    assert!(offset_of!(Control, next_rip) == 0xc8);
    assert!(offset_of!(Control, insn_len) == 0xd0);
    assert!(size_of::<Control>() == 0x400);
    assert!(offset_of!(Vmcb, save) == 0x400);
    assert!(offset_of!(Save, tr) == 0x490 - 0x400);
    assert!(offset_of!(Save, cpl) == 0x4cb - 0x400);
    assert!(offset_of!(Save, efer) == 0x4d0 - 0x400);
    assert!(offset_of!(Save, cr4) == 0x548 - 0x400);
    assert!(offset_of!(Save, cr3) == 0x550 - 0x400);
    assert!(offset_of!(Save, cr0) == 0x558 - 0x400);
    assert!(offset_of!(Save, dr7) == 0x560 - 0x400);
    assert!(offset_of!(Save, rflags) == 0x570 - 0x400);
    assert!(offset_of!(Save, rip) == 0x578 - 0x400);
    assert!(offset_of!(Save, rsp) == 0x5d8 - 0x400);
    assert!(offset_of!(Save, rax) == 0x5f8 - 0x400);
    assert!(offset_of!(Save, star) == 0x600 - 0x400);
    assert!(offset_of!(Save, kernel_gs_base) == 0x620 - 0x400);
    assert!(offset_of!(Save, cr2) == 0x640 - 0x400);
    assert!(offset_of!(Save, g_pat) == 0x668 - 0x400);
};

/// Exit codes (APM vol. 2, appendix C), shared with the host-tested
/// decoder.
pub use hv::hvm::svm::code as exit;

/// Intercept bits of `intercept_misc1` and `intercept_misc2`.
pub mod intercept {
    pub const INTR: u32 = 1 << 0;
    pub const NMI: u32 = 1 << 1;
    pub const SMI: u32 = 1 << 2;
    pub const INIT: u32 = 1 << 3;
    /// A virtual interrupt (V_IRQ) is about to be taken.
    pub const VINTR: u32 = 1 << 4;
    pub const CPUID: u32 = 1 << 18;
    pub const INVD: u32 = 1 << 22;
    pub const HLT: u32 = 1 << 24;
    pub const IOIO_PROT: u32 = 1 << 27;
    pub const MSR_PROT: u32 = 1 << 28;
    pub const SHUTDOWN: u32 = 1 << 31;
    // misc2
    pub const VMRUN: u32 = 1 << 0;
    pub const VMMCALL: u32 = 1 << 1;
    pub const VMLOAD: u32 = 1 << 2;
    pub const VMSAVE: u32 = 1 << 3;
    pub const STGI: u32 = 1 << 4;
    pub const CLGI: u32 = 1 << 5;
    pub const SKINIT: u32 = 1 << 6;
    pub const XSETBV: u32 = 1 << 13;
}
