//! The pure logic of the hardware-virtualisation backends, kept out of the
//! bare-metal binary so it runs under `cargo test`: VMX control adjustment,
//! exit decoding for both vendors, control-register fixed bits, event
//! injection encodings, XCR0 rules and XSAVE area sizes, and when an
//! external interrupt can be injected. `hv::virt` (in the binary) reads and
//! writes the hardware and asks this module what the values mean.

pub mod cpuid;
pub mod cr4;
pub mod event;
pub mod intr;
pub mod ports;
pub mod svm;
pub mod vmx;
pub mod xstate;

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
    /// The guest's time slice is over (the VMX-preemption timer).
    SliceEnd,
    /// The guest can take an external interrupt now (requested with
    /// `request_interrupt_window`; the request is cleared).
    InterruptWindow,
    /// An exception the hypervisor intercepts.
    Exception {
        vector: u8,
        /// The error code, for the vectors that push one.
        error: Option<u32>,
        /// The faulting linear address of a #PF (what the CPU would have
        /// put in CR2: an intercepted #PF leaves CR2 alone).
        cr2: u64,
    },
    /// XSETBV: the guest writes an extended control register.
    Xsetbv,
    /// MOV to CR4 (SVM, which has no guest/host mask): the source register
    /// when the CPU decoded it (decode assists), else the caller decodes
    /// the instruction.
    Cr4Write {
        gpr: Option<u8>,
    },
    /// The guest state was refused by the CPU.
    Invalid,
    /// Anything else, with the vendor's raw exit code.
    Unknown(u64),
}
