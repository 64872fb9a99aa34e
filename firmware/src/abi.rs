//! The parts of the Xen public ABI a guest uses at start of day, written
//! from the layouts documented in Xen's public headers (`xen.h`,
//! `sched.h`, `version.h`, `elfnote.h`, `arch-x86/cpuid.h`,
//! `hvm/start_info.h`), with compile-time layout checks.

/// Hypercall numbers (`xen.h`, `__HYPERVISOR_*`).
pub use vmm_glue::xen::hypercall;

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

/// The PVH start of day structure (`hvm/start_info.h`): the layouts are
/// shared with the hypervisor through `vmm-glue`, which checks them at
/// compile time.
pub mod start_info {
    pub use vmm_glue::xen::start_info::{
        HvmMemmapTableEntry as HvmMemmapEntry, HvmModlistEntry, HvmStartInfo,
        XEN_HVM_MEMMAP_TYPE_ACPI as MEMMAP_ACPI, XEN_HVM_MEMMAP_TYPE_NVS as MEMMAP_NVS,
        XEN_HVM_MEMMAP_TYPE_RAM as MEMMAP_RAM, XEN_HVM_MEMMAP_TYPE_RESERVED as MEMMAP_RESERVED,
        XEN_HVM_START_MAGIC_VALUE as MAGIC,
    };
}
