//! The fixed parts of Xen's 64-bit x86 PV ABI, from the public headers
//! (`xen.h`, `arch-x86/xen.h`, `arch-x86/xen-x86_64.h`) and the layout Xen
//! gives every 64-bit PV guest.

/// Guest kernel and guest user both run in ring 3 and use the same flat
/// selectors (`FLAT_KERNEL_*` = `FLAT_USER_*` = `FLAT_RING3_*`).
pub mod sel {
    /// `FLAT_RING3_CS32`: 32-bit code, DPL 3.
    pub const FLAT_RING3_CS32: u16 = 0xe023;
    /// `FLAT_RING3_CS64`: 64-bit code, DPL 3 (`FLAT_KERNEL_CS`, `FLAT_USER_CS`).
    pub const FLAT_RING3_CS64: u16 = 0xe033;
    /// `FLAT_RING3_DS32` = `FLAT_RING3_SS32` = `FLAT_RING3_SS64`: data, DPL 3
    /// (`FLAT_KERNEL_SS`, `FLAT_USER_SS`).
    pub const FLAT_RING3_SS: u16 = 0xe02b;
    /// `FLAT_RING3_DS64`: the null selector.
    pub const FLAT_RING3_DS64: u16 = 0;
    pub const FLAT_KERNEL_CS: u16 = FLAT_RING3_CS64;
    pub const FLAT_KERNEL_SS: u16 = FLAT_RING3_SS;
    pub const FLAT_USER_CS: u16 = FLAT_RING3_CS64;
    pub const FLAT_USER_SS: u16 = FLAT_RING3_SS;
    pub const FLAT_USER_CS32: u16 = FLAT_RING3_CS32;
}

/// The GDT: a guest's own entries are 0..[`FIRST_RESERVED_GDT_ENTRY`]
/// (14 pages at most); the page after them holds Xen's.
pub mod gdt {
    /// `FIRST_RESERVED_GDT_PAGE`.
    pub const FIRST_RESERVED_GDT_PAGE: usize = 14;
    /// `FIRST_RESERVED_GDT_ENTRY`: 14 pages of 512 descriptors.
    pub const FIRST_RESERVED_GDT_ENTRY: usize = FIRST_RESERVED_GDT_PAGE * 512;
    /// The whole GDT's limit: the guest's 14 pages and the reserved page.
    pub const LIMIT: u32 = ((FIRST_RESERVED_GDT_PAGE + 1) * 4096 - 1) as u32;
    /// The descriptors of the reserved page, by GDT index: Xen's ring-0
    /// code and data (`__HYPERVISOR_CS`/`DS`, 0xe008/0xe010), and the three
    /// flat ring-3 segments guests use (32-bit code 0xe023, data 0xe02b,
    /// 64-bit code 0xe033). Accessed bits are set: the CPU never needs to
    /// write them.
    pub const RESERVED: [(usize, u64); 5] = [
        (FIRST_RESERVED_GDT_ENTRY + 1, 0x00af_9b00_0000_ffff),
        (FIRST_RESERVED_GDT_ENTRY + 2, 0x00cf_9300_0000_ffff),
        (FIRST_RESERVED_GDT_ENTRY + 4, 0x00cf_fb00_0000_ffff),
        (FIRST_RESERVED_GDT_ENTRY + 5, 0x00cf_f300_0000_ffff),
        (FIRST_RESERVED_GDT_ENTRY + 6, 0x00af_fb00_0000_ffff),
    ];
}

/// The guest's virtual address space: Xen reserves 16 L4 slots, 256-271
/// (`HYPERVISOR_VIRT_START`..`HYPERVISOR_VIRT_END`); every L4 the guest
/// uses has them filled by the hypervisor.
pub mod va {
    pub const HYPERVISOR_VIRT_START: u64 = 0xffff_8000_0000_0000;
    pub const HYPERVISOR_VIRT_END: u64 = 0xffff_8800_0000_0000;
    /// The first and one past the last reserved L4 slot.
    pub const FIRST_XEN_SLOT: usize = 256;
    pub const END_XEN_SLOT: usize = 272;
    /// The read-only machine-to-phys table, `m2p[mfn] = pfn` (u64 each):
    /// `MACH2PHYS_VIRT_START`..`MACH2PHYS_VIRT_END`, in slot 256.
    pub const MACH2PHYS_VIRT_START: u64 = HYPERVISOR_VIRT_START;
    pub const MACH2PHYS_VIRT_END: u64 = 0xffff_8040_0000_0000;
    /// `MACH2PHYS_NR_ENTRIES`.
    pub const MACH2PHYS_NR_ENTRIES: u64 = (MACH2PHYS_VIRT_END - MACH2PHYS_VIRT_START) >> 3;
    pub const SLOT_M2P: usize = 256;
    /// This hypervisor's per-domain area (Xen's per-domain slot too): each
    /// vCPU's GDT and LDT, the TSS the container runs with.
    pub const SLOT_PERDOMAIN: usize = 260;
    pub const PERDOMAIN_VIRT_START: u64 = 0xffff_8200_0000_0000;

    /// The L4 slot of virtual address `va`.
    pub const fn l4_slot(va: u64) -> usize {
        ((va >> 39) & 511) as usize
    }

    /// Whether `va` is canonical (48-bit).
    pub const fn canonical(va: u64) -> bool {
        let top = (va as i64) >> 47;
        top == 0 || top == -1
    }
}

/// Page-table entry bits (the native x86-64 layout; the frame numbers in a
/// PV guest's entries are machine frames).
pub mod pte {
    pub const PRESENT: u64 = 1 << 0;
    pub const RW: u64 = 1 << 1;
    pub const USER: u64 = 1 << 2;
    pub const PWT: u64 = 1 << 3;
    pub const PCD: u64 = 1 << 4;
    pub const ACCESSED: u64 = 1 << 5;
    pub const DIRTY: u64 = 1 << 6;
    /// PSE in L2/L3 entries, PAT in L1 entries.
    pub const PSE: u64 = 1 << 7;
    pub const PAT: u64 = 1 << 7;
    pub const GLOBAL: u64 = 1 << 8;
    /// Bits 9-11, free for the guest.
    pub const AVAIL: u64 = 0x7 << 9;
    /// The frame number (bits 12-51).
    pub const ADDR: u64 = 0x000f_ffff_ffff_f000;
    /// `_PAGE_GUEST_KERNEL` (bit 52): the hypervisor's mark on an L1 entry
    /// the guest made for its kernel only (it is given USER, since the
    /// kernel runs in ring 3).
    pub const GUEST_KERNEL: u64 = 1 << 52;
    /// Bits 52-62, free for the guest (`_PAGE_AVAIL_HIGH`).
    pub const AVAIL_HIGH: u64 = 0x7ff << 52;
    /// `_PAGE_GNTTAB` (bit 62): marks a grant mapping; not for the guest.
    pub const GNTTAB: u64 = 1 << 62;
    pub const NX: u64 = 1 << 63;
}

/// The PAT value every PV guest sees (`XEN_MSR_PAT`): WB, WT, UC-, UC,
/// WC, WP, UC, UC; the guest's page tables select entries with PWT, PCD
/// and PAT as Xen documents above `MMU_NORMAL_PT_UPDATE`.
pub const XEN_MSR_PAT: u64 = 0x0000_0501_0007_0406;

/// `start_info.flags` (`SIF_*`).
pub mod sif {
    pub const PRIVILEGED: u32 = 1 << 0;
    pub const INITDOMAIN: u32 = 1 << 1;
    pub const MULTIBOOT_MOD: u32 = 1 << 2;
    /// `mod_start` is a PFN, and the module is not mapped.
    pub const MOD_START_PFN: u32 = 1 << 3;
    /// The p2m is (also) at `shared_info.arch.p2m_vaddr` for tools.
    pub const VIRT_P2M_4TOOLS: u32 = 1 << 4;
}

/// `vm_assist` types a 64-bit PV guest may enable (`VMASST_TYPE_*`).
pub mod vmasst {
    pub const CMD_ENABLE: u64 = 0;
    pub const CMD_DISABLE: u64 = 1;
    pub const TYPE_4GB_SEGMENTS: u32 = 0;
    pub const TYPE_4GB_SEGMENTS_NOTIFY: u32 = 1;
    pub const TYPE_WRITABLE_PAGETABLES: u32 = 2;
    pub const TYPE_PAE_EXTENDED_CR3: u32 = 3;
    pub const TYPE_ARCHITECTURAL_IOPL: u32 = 4;
    pub const TYPE_RUNSTATE_UPDATE_FLAG: u32 = 5;
    pub const TYPE_M2P_STRICT: u32 = 32;
    /// The types a 64-bit PV guest may use (`PV64_VM_ASSIST_MASK`).
    pub const PV64_MASK: u64 = (1 << TYPE_4GB_SEGMENTS)
        | (1 << TYPE_4GB_SEGMENTS_NOTIFY)
        | (1 << TYPE_WRITABLE_PAGETABLES)
        | (1 << TYPE_PAE_EXTENDED_CR3)
        | (1 << TYPE_ARCHITECTURAL_IOPL)
        | (1 << TYPE_RUNSTATE_UPDATE_FLAG)
        | (1 << TYPE_M2P_STRICT);
}

/// `DOMID_SELF`, `DOMID_IO`, `DOMID_XEN`.
pub mod domid {
    pub const SELF: u16 = 0x7ff0;
    pub const IO: u16 = 0x7ff1;
    pub const XEN: u16 = 0x7ff2;
}
