//! The parts of the Xen public ABI a guest uses at start of day, written
//! from the layouts documented in Xen's public headers (`xen.h`,
//! `sched.h`, `version.h`, `elfnote.h`, `arch-x86/cpuid.h`,
//! `hvm/start_info.h`), with compile-time layout checks.

/// Hypercall numbers (`xen.h`, `__HYPERVISOR_*`).
pub mod hypercall {
    /// `xen_version(cmd, arg)`.
    pub const XEN_VERSION: u64 = 17;
    /// `console_io(cmd, count, buffer)`.
    pub const CONSOLE_IO: u64 = 18;
    /// `sched_op(cmd, arg)`.
    pub const SCHED_OP: u64 = 29;
}

/// `console_io` commands (`xen.h`).
pub mod console_io {
    /// Write `count` bytes from `buffer` to the hypervisor console.
    pub const WRITE: u64 = 0;
}

/// `xen_version` commands (`version.h`).
pub mod xen_version {
    /// Returns `major << 16 | minor`; the argument is unused.
    pub const VERSION: u64 = 0;
}

/// `sched_op` commands and shutdown reasons (`sched.h`).
pub mod sched {
    /// Give up the CPU; the argument is unused.
    pub const YIELD: u64 = 0;
    /// Sleep until an event arrives; the argument is unused.
    pub const BLOCK: u64 = 1;
    /// End the domain; the argument points at a [`SchedShutdown`].
    pub const SHUTDOWN: u64 = 2;

    /// `SHUTDOWN_poweroff`: the domain exited normally.
    pub const SHUTDOWN_POWEROFF: u32 = 0;
    /// `SHUTDOWN_reboot`: restart the domain.
    pub const SHUTDOWN_REBOOT: u32 = 1;
    /// `SHUTDOWN_suspend`: save and stop the domain.
    pub const SHUTDOWN_SUSPEND: u32 = 2;
    /// `SHUTDOWN_crash`: the domain crashed.
    pub const SHUTDOWN_CRASH: u32 = 3;

    /// `struct sched_shutdown`.
    #[repr(C)]
    #[derive(Debug, Clone, Copy)]
    pub struct SchedShutdown {
        /// One of the `SHUTDOWN_*` reasons.
        pub reason: u32,
    }

    const _: () = assert!(core::mem::size_of::<SchedShutdown>() == 4);
}

/// Xen error numbers as returned (negated) by hypercalls (`errno.h`).
pub mod errno {
    /// Function not implemented.
    pub const ENOSYS: i64 = 38;
}

/// Xen ELF note types (`elfnote.h`).
pub mod elfnote {
    /// `XEN_ELFNOTE_PHYS32_ENTRY`: 32-bit physical entry of a PVH kernel.
    pub const PHYS32_ENTRY: u32 = 18;
}

/// The Xen CPUID leaves (`arch-x86/cpuid.h`).
pub mod cpuid {
    /// The first leaf that may hold the Xen leaves; they sit at the first
    /// 0x100-aligned base from here whose signature matches.
    pub const FIRST_LEAF: u32 = 0x4000_0000;
    /// How far apart candidate bases are.
    pub const BASE_STRIDE: u32 = 0x100;
    /// "XenV" in EBX of the base leaf.
    pub const SIGNATURE_EBX: u32 = 0x566e_6558;
    /// "MMXe" in ECX of the base leaf.
    pub const SIGNATURE_ECX: u32 = 0x6558_4d4d;
    /// "nVMM" in EDX of the base leaf.
    pub const SIGNATURE_EDX: u32 = 0x4d4d_566e;
    /// Base + 1: EAX = major << 16 | minor.
    pub const VERSION_LEAF: u32 = 1;
    /// Base + 2: EAX = number of hypercall pages, EBX = the MSR to write a
    /// hypercall page's address to.
    pub const HYPERCALL_LEAF: u32 = 2;
}

/// The PVH start of day structure (`hvm/start_info.h`).
pub mod start_info {
    /// `XEN_HVM_START_MAGIC_VALUE`.
    pub const MAGIC: u32 = 0x336e_c578;

    /// `struct hvm_start_info` (version 1: with the memory map fields).
    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default)]
    pub struct HvmStartInfo {
        /// [`MAGIC`].
        pub magic: u32,
        /// 0, or 1 when the memory map fields are present.
        pub version: u32,
        /// `SIF_*` flags.
        pub flags: u32,
        /// Entries at `modlist_paddr`.
        pub nr_modules: u32,
        /// Physical address of `nr_modules` [`HvmModlistEntry`]s.
        pub modlist_paddr: u64,
        /// Physical address of a NUL-terminated command line, or 0.
        pub cmdline_paddr: u64,
        /// Physical address of the ACPI RSDP, or 0.
        pub rsdp_paddr: u64,
        /// Physical address of `memmap_entries` [`HvmMemmapEntry`]s.
        pub memmap_paddr: u64,
        /// Entries at `memmap_paddr` (0: no map).
        pub memmap_entries: u32,
        /// Padding.
        pub reserved: u32,
    }

    /// `struct hvm_modlist_entry`.
    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default)]
    pub struct HvmModlistEntry {
        /// Physical address of the module.
        pub paddr: u64,
        /// Size in bytes.
        pub size: u64,
        /// Physical address of the module's command line, or 0.
        pub cmdline_paddr: u64,
        /// Reserved.
        pub reserved: u64,
    }

    /// `struct hvm_memmap_table_entry`.
    #[repr(C)]
    #[derive(Debug, Clone, Copy, Default)]
    pub struct HvmMemmapEntry {
        /// Base address.
        pub addr: u64,
        /// Size in bytes.
        pub size: u64,
        /// E820 type ([`MEMMAP_RAM`], ...).
        pub kind: u32,
        /// Reserved.
        pub reserved: u32,
    }

    /// Memory map type: usable RAM.
    pub const MEMMAP_RAM: u32 = 1;
    /// Memory map type: reserved.
    pub const MEMMAP_RESERVED: u32 = 2;
    /// Memory map type: ACPI tables (reclaimable).
    pub const MEMMAP_ACPI: u32 = 3;
    /// Memory map type: ACPI non-volatile storage.
    pub const MEMMAP_NVS: u32 = 4;

    const _: () = {
        use core::mem::{offset_of, size_of};
        assert!(offset_of!(HvmStartInfo, magic) == 0);
        assert!(offset_of!(HvmStartInfo, version) == 4);
        assert!(offset_of!(HvmStartInfo, flags) == 8);
        assert!(offset_of!(HvmStartInfo, nr_modules) == 12);
        assert!(offset_of!(HvmStartInfo, modlist_paddr) == 16);
        assert!(offset_of!(HvmStartInfo, cmdline_paddr) == 24);
        assert!(offset_of!(HvmStartInfo, rsdp_paddr) == 32);
        assert!(offset_of!(HvmStartInfo, memmap_paddr) == 40);
        assert!(offset_of!(HvmStartInfo, memmap_entries) == 48);
        assert!(size_of::<HvmStartInfo>() == 56);
        assert!(offset_of!(HvmModlistEntry, cmdline_paddr) == 16);
        assert!(size_of::<HvmModlistEntry>() == 32);
        assert!(offset_of!(HvmMemmapEntry, size) == 8);
        assert!(offset_of!(HvmMemmapEntry, kind) == 16);
        assert!(size_of::<HvmMemmapEntry>() == 24);
    };
}
