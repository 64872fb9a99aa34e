//! Hardware virtualisation: the vendor backends (`svm`, later `vmx`) behind
//! one normalised view, guest memory and nested page tables.

pub mod guest_mem;
pub mod npt;
pub mod svm;

/// The guest's general-purpose registers that the backends do not keep in
/// their control structures.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GuestRegs {
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
}

/// Why the guest stopped, in vendor-neutral terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmExit {
    Cpuid,
    Hlt,
    Hypercall,
    Io {
        port: u16,
        size: u8,
        write: bool,
        string: bool,
        rep: bool,
        next_rip: u64,
    },
    Msr {
        write: bool,
    },
    NestedPageFault {
        gpa: u64,
        write: bool,
        fetch: bool,
    },
    /// The guest triple-faulted (or otherwise shut itself down).
    Shutdown,
    /// A host interrupt arrived while the guest ran.
    ExternalInterrupt,
    /// An exception the hypervisor intercepts.
    Exception {
        vector: u8,
        error: Option<u32>,
    },
    Xsetbv,
    /// The guest state was refused by the CPU.
    Invalid,
    /// Anything else, with the vendor's raw exit code.
    Unknown(u64),
}
