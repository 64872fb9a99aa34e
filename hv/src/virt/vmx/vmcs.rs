//! VMCS field encodings, control bits and exit reasons (Intel SDM vol. 3,
//! appendices A-C). The encodings and control bits are the `x86` crate's
//! (`x86::vmx::vmcs`), under our names; each encoding's width bits (14:13)
//! are checked at compile time against the width it is declared with.
//! The segment access rights and the exit reasons the host-tested decoders
//! share are ours (the crate has neither).

use x86::vmx::vmcs::control::{
    EntryControls, ExitControls, PinbasedControls, PrimaryControls, SecondaryControls,
};
use x86::vmx::vmcs::{control, guest, host, ro};

/// A VMCS field encoding, the operand of VMREAD/VMWRITE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field(pub u32);

/// Field widths as encoded in bits 14:13.
const W16: u32 = 0;
const W64: u32 = 1;
const W32: u32 = 2;
const WNAT: u32 = 3;

macro_rules! fields {
    ($width:ident: $($(#[$doc:meta])* $name:ident = $enc:expr,)*) => {
        $($(#[$doc])* pub const $name: Field = Field($enc);)*
        const _: () = { $(assert!(($enc >> 13) & 3 == $width);)* };
    };
}

fields! { W16:
    VPID = control::VPID,
    GUEST_ES_SEL = guest::ES_SELECTOR,
    GUEST_CS_SEL = guest::CS_SELECTOR,
    GUEST_SS_SEL = guest::SS_SELECTOR,
    GUEST_DS_SEL = guest::DS_SELECTOR,
    GUEST_FS_SEL = guest::FS_SELECTOR,
    GUEST_GS_SEL = guest::GS_SELECTOR,
    GUEST_LDTR_SEL = guest::LDTR_SELECTOR,
    GUEST_TR_SEL = guest::TR_SELECTOR,
    HOST_ES_SEL = host::ES_SELECTOR,
    HOST_CS_SEL = host::CS_SELECTOR,
    HOST_SS_SEL = host::SS_SELECTOR,
    HOST_DS_SEL = host::DS_SELECTOR,
    HOST_FS_SEL = host::FS_SELECTOR,
    HOST_GS_SEL = host::GS_SELECTOR,
    HOST_TR_SEL = host::TR_SELECTOR,
}

fields! { W64:
    IO_BITMAP_A = control::IO_BITMAP_A_ADDR_FULL,
    IO_BITMAP_B = control::IO_BITMAP_B_ADDR_FULL,
    MSR_BITMAP = control::MSR_BITMAPS_ADDR_FULL,
    EPT_POINTER = control::EPTP_FULL,
    /// Read-only: the guest-physical address of an EPT violation.
    GUEST_PHYSICAL_ADDRESS = ro::GUEST_PHYSICAL_ADDR_FULL,
    VMCS_LINK_POINTER = guest::LINK_PTR_FULL,
    GUEST_DEBUGCTL = guest::IA32_DEBUGCTL_FULL,
    GUEST_PAT = guest::IA32_PAT_FULL,
    GUEST_EFER = guest::IA32_EFER_FULL,
    HOST_PAT = host::IA32_PAT_FULL,
    HOST_EFER = host::IA32_EFER_FULL,
}

fields! { W32:
    PIN_CONTROLS = control::PINBASED_EXEC_CONTROLS,
    PROC_CONTROLS = control::PRIMARY_PROCBASED_EXEC_CONTROLS,
    EXCEPTION_BITMAP = control::EXCEPTION_BITMAP,
    CR3_TARGET_COUNT = control::CR3_TARGET_COUNT,
    EXIT_CONTROLS = control::VMEXIT_CONTROLS,
    EXIT_MSR_STORE_COUNT = control::VMEXIT_MSR_STORE_COUNT,
    EXIT_MSR_LOAD_COUNT = control::VMEXIT_MSR_LOAD_COUNT,
    ENTRY_CONTROLS = control::VMENTRY_CONTROLS,
    ENTRY_MSR_LOAD_COUNT = control::VMENTRY_MSR_LOAD_COUNT,
    ENTRY_INTERRUPTION_INFO = control::VMENTRY_INTERRUPTION_INFO_FIELD,
    ENTRY_EXCEPTION_ERROR = control::VMENTRY_EXCEPTION_ERR_CODE,
    ENTRY_INSTRUCTION_LENGTH = control::VMENTRY_INSTRUCTION_LEN,
    PROC_CONTROLS2 = control::SECONDARY_PROCBASED_EXEC_CONTROLS,
    VM_INSTRUCTION_ERROR = ro::VM_INSTRUCTION_ERROR,
    EXIT_REASON = ro::EXIT_REASON,
    EXIT_INTERRUPTION_INFO = ro::VMEXIT_INTERRUPTION_INFO,
    EXIT_INTERRUPTION_ERROR = ro::VMEXIT_INTERRUPTION_ERR_CODE,
    /// An event the exit interrupted while it was being delivered.
    IDT_VECTORING_INFO = ro::IDT_VECTORING_INFO,
    IDT_VECTORING_ERROR = ro::IDT_VECTORING_ERR_CODE,
    EXIT_INSTRUCTION_LENGTH = ro::VMEXIT_INSTRUCTION_LEN,
    GUEST_ES_LIMIT = guest::ES_LIMIT,
    GUEST_CS_LIMIT = guest::CS_LIMIT,
    GUEST_SS_LIMIT = guest::SS_LIMIT,
    GUEST_DS_LIMIT = guest::DS_LIMIT,
    GUEST_FS_LIMIT = guest::FS_LIMIT,
    GUEST_GS_LIMIT = guest::GS_LIMIT,
    GUEST_LDTR_LIMIT = guest::LDTR_LIMIT,
    GUEST_TR_LIMIT = guest::TR_LIMIT,
    GUEST_GDTR_LIMIT = guest::GDTR_LIMIT,
    GUEST_IDTR_LIMIT = guest::IDTR_LIMIT,
    GUEST_ES_AR = guest::ES_ACCESS_RIGHTS,
    GUEST_CS_AR = guest::CS_ACCESS_RIGHTS,
    GUEST_SS_AR = guest::SS_ACCESS_RIGHTS,
    GUEST_DS_AR = guest::DS_ACCESS_RIGHTS,
    GUEST_FS_AR = guest::FS_ACCESS_RIGHTS,
    GUEST_GS_AR = guest::GS_ACCESS_RIGHTS,
    GUEST_LDTR_AR = guest::LDTR_ACCESS_RIGHTS,
    GUEST_TR_AR = guest::TR_ACCESS_RIGHTS,
    GUEST_INTERRUPTIBILITY = guest::INTERRUPTIBILITY_STATE,
    GUEST_ACTIVITY_STATE = guest::ACTIVITY_STATE,
    GUEST_SYSENTER_CS = guest::IA32_SYSENTER_CS,
    PREEMPTION_TIMER_VALUE = guest::VMX_PREEMPTION_TIMER_VALUE,
    HOST_SYSENTER_CS = host::IA32_SYSENTER_CS,
}

fields! { WNAT:
    CR0_MASK = control::CR0_GUEST_HOST_MASK,
    CR4_MASK = control::CR4_GUEST_HOST_MASK,
    CR0_SHADOW = control::CR0_READ_SHADOW,
    CR4_SHADOW = control::CR4_READ_SHADOW,
    EXIT_QUALIFICATION = ro::EXIT_QUALIFICATION,
    GUEST_CR0 = guest::CR0,
    GUEST_CR3 = guest::CR3,
    GUEST_CR4 = guest::CR4,
    GUEST_ES_BASE = guest::ES_BASE,
    GUEST_CS_BASE = guest::CS_BASE,
    GUEST_SS_BASE = guest::SS_BASE,
    GUEST_DS_BASE = guest::DS_BASE,
    GUEST_FS_BASE = guest::FS_BASE,
    GUEST_GS_BASE = guest::GS_BASE,
    GUEST_LDTR_BASE = guest::LDTR_BASE,
    GUEST_TR_BASE = guest::TR_BASE,
    GUEST_GDTR_BASE = guest::GDTR_BASE,
    GUEST_IDTR_BASE = guest::IDTR_BASE,
    GUEST_DR7 = guest::DR7,
    GUEST_RSP = guest::RSP,
    GUEST_RIP = guest::RIP,
    GUEST_RFLAGS = guest::RFLAGS,
    GUEST_PENDING_DEBUG = guest::PENDING_DBG_EXCEPTIONS,
    GUEST_SYSENTER_ESP = guest::IA32_SYSENTER_ESP,
    GUEST_SYSENTER_EIP = guest::IA32_SYSENTER_EIP,
    HOST_CR0 = host::CR0,
    HOST_CR3 = host::CR3,
    HOST_CR4 = host::CR4,
    HOST_FS_BASE = host::FS_BASE,
    HOST_GS_BASE = host::GS_BASE,
    HOST_TR_BASE = host::TR_BASE,
    HOST_GDTR_BASE = host::GDTR_BASE,
    HOST_IDTR_BASE = host::IDTR_BASE,
    HOST_SYSENTER_ESP = host::IA32_SYSENTER_ESP,
    HOST_SYSENTER_EIP = host::IA32_SYSENTER_EIP,
    HOST_RSP = host::RSP,
    HOST_RIP = host::RIP,
}

/// Pin-based VM-execution controls (SDM 24.6.1).
pub mod pin {
    use super::PinbasedControls as P;
    pub const EXTERNAL_INTERRUPT_EXITING: u32 = P::EXTERNAL_INTERRUPT_EXITING.bits();
    pub const NMI_EXITING: u32 = P::NMI_EXITING.bits();
    pub const PREEMPTION_TIMER: u32 = P::VMX_PREEMPTION_TIMER.bits();
}

/// Primary processor-based VM-execution controls (SDM 24.6.2, table 24-6).
pub mod proc {
    use super::PrimaryControls as P;
    pub const INTERRUPT_WINDOW_EXITING: u32 = P::INTERRUPT_WINDOW_EXITING.bits();
    pub const HLT_EXITING: u32 = P::HLT_EXITING.bits();
    pub const CR8_LOAD_EXITING: u32 = P::CR8_LOAD_EXITING.bits();
    pub const CR8_STORE_EXITING: u32 = P::CR8_STORE_EXITING.bits();
    pub const UNCONDITIONAL_IO_EXITING: u32 = P::UNCOND_IO_EXITING.bits();
    pub const USE_IO_BITMAPS: u32 = P::USE_IO_BITMAPS.bits();
    pub const USE_MSR_BITMAPS: u32 = P::USE_MSR_BITMAPS.bits();
    pub const SECONDARY_CONTROLS: u32 = P::SECONDARY_CONTROLS.bits();
}

/// Secondary processor-based VM-execution controls (table 24-7).
pub mod proc2 {
    use super::SecondaryControls as S;
    pub const ENABLE_EPT: u32 = S::ENABLE_EPT.bits();
    pub const ENABLE_RDTSCP: u32 = S::ENABLE_RDTSCP.bits();
    pub const ENABLE_VPID: u32 = S::ENABLE_VPID.bits();
    pub const UNRESTRICTED_GUEST: u32 = S::UNRESTRICTED_GUEST.bits();
    pub const ENABLE_INVPCID: u32 = S::ENABLE_INVPCID.bits();
}

/// VM-exit controls (table 24-13).
pub mod exit_ctl {
    use super::ExitControls as X;
    pub const HOST_ADDRESS_SPACE_SIZE: u32 = X::HOST_ADDRESS_SPACE_SIZE.bits();
    pub const ACK_INTERRUPT_ON_EXIT: u32 = X::ACK_INTERRUPT_ON_EXIT.bits();
    pub const SAVE_PAT: u32 = X::SAVE_IA32_PAT.bits();
    pub const LOAD_PAT: u32 = X::LOAD_IA32_PAT.bits();
    pub const SAVE_EFER: u32 = X::SAVE_IA32_EFER.bits();
    pub const LOAD_EFER: u32 = X::LOAD_IA32_EFER.bits();
}

/// VM-entry controls (table 24-15).
pub mod entry_ctl {
    use super::EntryControls as E;
    pub const IA32E_MODE_GUEST: u32 = E::IA32E_MODE_GUEST.bits();
    pub const LOAD_PAT: u32 = E::LOAD_IA32_PAT.bits();
    pub const LOAD_EFER: u32 = E::LOAD_IA32_EFER.bits();
}

/// Basic exit reasons (appendix C), shared with the host-tested decoders.
pub use hv::hvm::vmx::reason;

/// Segment access rights as the VMCS holds them (SDM 24.4.1).
pub mod ar {
    pub const CODE32: u32 = 0xc09b;
    pub const DATA32: u32 = 0xc093;
    pub const TSS_BUSY: u32 = 0x8b;
    pub const UNUSABLE: u32 = 1 << 16;
    /// CS.L: 64-bit code.
    pub const LONG: u32 = 1 << 13;
}
