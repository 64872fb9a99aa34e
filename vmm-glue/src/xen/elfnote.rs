//! Xen ELF note types (`xen/include/public/elfnote.h`).
//!
//! A guest kernel describes itself to Xen with ELF notes whose name is
//! `"Xen"`. Numeric descriptors are 4 or 8 bytes (little-endian on x86);
//! string descriptors are NUL-terminated ASCII.

/// The name field of every Xen note (the descriptor's `namesz` counts the
/// terminating NUL as well).
pub const XEN_ELFNOTE_NAME: &[u8] = b"Xen";

/// `NAME=VALUE` pair (string).
pub const XEN_ELFNOTE_INFO: u32 = 0;
/// Virtual address of the PV entry point (numeric).
pub const XEN_ELFNOTE_ENTRY: u32 = 1;
/// Virtual address of the hypercall transfer page (numeric).
pub const XEN_ELFNOTE_HYPERCALL_PAGE: u32 = 2;
/// Virtual address the kernel image is mapped at (numeric, default 0).
pub const XEN_ELFNOTE_VIRT_BASE: u32 = 3;
/// Offset of the ELF `p_paddr` field from the real pseudo-physical address
/// (numeric, default 0).
pub const XEN_ELFNOTE_PADDR_OFFSET: u32 = 4;
/// The Xen version the kernel works with (string).
pub const XEN_ELFNOTE_XEN_VERSION: u32 = 5;
/// The guest operating system's name (string).
pub const XEN_ELFNOTE_GUEST_OS: u32 = 6;
/// The guest operating system's version (string).
pub const XEN_ELFNOTE_GUEST_VERSION: u32 = 7;
/// The loader type (string).
pub const XEN_ELFNOTE_LOADER: u32 = 8;
/// PAE support, x86-32 PV only (string: `yes`, `no`, `bimodal`).
pub const XEN_ELFNOTE_PAE_MODE: u32 = 9;
/// Features supported or required, `|`-separated, `!` marks required (string).
pub const XEN_ELFNOTE_FEATURES: u32 = 10;
/// The kernel wants its symbol table loaded (string `yes` / `no`).
pub const XEN_ELFNOTE_BSD_SYMTAB: u32 = 11;
/// Lowest address the hypervisor hole may begin at (numeric).
pub const XEN_ELFNOTE_HV_START_LOW: u32 = 12;
/// Mask/value pairs recognising non-present L1 entries holding MFNs (numeric).
pub const XEN_ELFNOTE_L1_MFN_VALID: u32 = 13;
/// Cooperative suspend cancellation supported (numeric, default 0).
pub const XEN_ELFNOTE_SUSPEND_CANCEL: u32 = 14;
/// Non-default virtual location of the initial P2M table (numeric).
pub const XEN_ELFNOTE_INIT_P2M: u32 = 15;
/// An initrd not mapped by the initial page tables is handled (numeric).
pub const XEN_ELFNOTE_MOD_START_PFN: u32 = 16;
/// Supported features as a bitmap (numeric).
pub const XEN_ELFNOTE_SUPPORTED_FEATURES: u32 = 17;
/// The 32-bit physical entry point for a PVH (HVM container) start: the
/// guest starts there in protected mode with paging off (numeric).
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
/// The kernel can relocate itself; up to three 32-bit values: alignment,
/// minimum start address, maximum end address.
pub const XEN_ELFNOTE_PHYS32_RELOC: u32 = 19;
/// The highest note type defined above.
pub const XEN_ELFNOTE_MAX: u32 = XEN_ELFNOTE_PHYS32_RELOC;
