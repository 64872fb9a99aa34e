//! VMCS field encodings, control bits and exit reasons (Intel SDM vol. 3,
//! appendices A-C). Each encoding's width bits (14:13) are checked at
//! compile time against the width it is declared with.

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
    VPID = 0x0000,
    GUEST_ES_SEL = 0x0800,
    GUEST_CS_SEL = 0x0802,
    GUEST_SS_SEL = 0x0804,
    GUEST_DS_SEL = 0x0806,
    GUEST_FS_SEL = 0x0808,
    GUEST_GS_SEL = 0x080a,
    GUEST_LDTR_SEL = 0x080c,
    GUEST_TR_SEL = 0x080e,
    HOST_ES_SEL = 0x0c00,
    HOST_CS_SEL = 0x0c02,
    HOST_SS_SEL = 0x0c04,
    HOST_DS_SEL = 0x0c06,
    HOST_FS_SEL = 0x0c08,
    HOST_GS_SEL = 0x0c0a,
    HOST_TR_SEL = 0x0c0c,
}

fields! { W64:
    IO_BITMAP_A = 0x2000,
    IO_BITMAP_B = 0x2002,
    MSR_BITMAP = 0x2004,
    EPT_POINTER = 0x201a,
    /// Read-only: the guest-physical address of an EPT violation.
    GUEST_PHYSICAL_ADDRESS = 0x2400,
    VMCS_LINK_POINTER = 0x2800,
    GUEST_DEBUGCTL = 0x2802,
    GUEST_PAT = 0x2804,
    GUEST_EFER = 0x2806,
    HOST_PAT = 0x2c00,
    HOST_EFER = 0x2c02,
}

fields! { W32:
    PIN_CONTROLS = 0x4000,
    PROC_CONTROLS = 0x4002,
    EXCEPTION_BITMAP = 0x4004,
    CR3_TARGET_COUNT = 0x400a,
    EXIT_CONTROLS = 0x400c,
    EXIT_MSR_STORE_COUNT = 0x400e,
    EXIT_MSR_LOAD_COUNT = 0x4010,
    ENTRY_CONTROLS = 0x4012,
    ENTRY_MSR_LOAD_COUNT = 0x4014,
    ENTRY_INTERRUPTION_INFO = 0x4016,
    ENTRY_EXCEPTION_ERROR = 0x4018,
    ENTRY_INSTRUCTION_LENGTH = 0x401a,
    PROC_CONTROLS2 = 0x401e,
    VM_INSTRUCTION_ERROR = 0x4400,
    EXIT_REASON = 0x4402,
    EXIT_INTERRUPTION_INFO = 0x4404,
    EXIT_INTERRUPTION_ERROR = 0x4406,
    /// An event the exit interrupted while it was being delivered.
    IDT_VECTORING_INFO = 0x4408,
    IDT_VECTORING_ERROR = 0x440a,
    EXIT_INSTRUCTION_LENGTH = 0x440c,
    GUEST_ES_LIMIT = 0x4800,
    GUEST_CS_LIMIT = 0x4802,
    GUEST_SS_LIMIT = 0x4804,
    GUEST_DS_LIMIT = 0x4806,
    GUEST_FS_LIMIT = 0x4808,
    GUEST_GS_LIMIT = 0x480a,
    GUEST_LDTR_LIMIT = 0x480c,
    GUEST_TR_LIMIT = 0x480e,
    GUEST_GDTR_LIMIT = 0x4810,
    GUEST_IDTR_LIMIT = 0x4812,
    GUEST_ES_AR = 0x4814,
    GUEST_CS_AR = 0x4816,
    GUEST_SS_AR = 0x4818,
    GUEST_DS_AR = 0x481a,
    GUEST_FS_AR = 0x481c,
    GUEST_GS_AR = 0x481e,
    GUEST_LDTR_AR = 0x4820,
    GUEST_TR_AR = 0x4822,
    GUEST_INTERRUPTIBILITY = 0x4824,
    GUEST_ACTIVITY_STATE = 0x4826,
    GUEST_SYSENTER_CS = 0x482a,
    PREEMPTION_TIMER_VALUE = 0x482e,
    HOST_SYSENTER_CS = 0x4c00,
}

fields! { WNAT:
    CR0_MASK = 0x6000,
    CR4_MASK = 0x6002,
    CR0_SHADOW = 0x6004,
    CR4_SHADOW = 0x6006,
    EXIT_QUALIFICATION = 0x6400,
    GUEST_CR0 = 0x6800,
    GUEST_CR3 = 0x6802,
    GUEST_CR4 = 0x6804,
    GUEST_ES_BASE = 0x6806,
    GUEST_CS_BASE = 0x6808,
    GUEST_SS_BASE = 0x680a,
    GUEST_DS_BASE = 0x680c,
    GUEST_FS_BASE = 0x680e,
    GUEST_GS_BASE = 0x6810,
    GUEST_LDTR_BASE = 0x6812,
    GUEST_TR_BASE = 0x6814,
    GUEST_GDTR_BASE = 0x6816,
    GUEST_IDTR_BASE = 0x6818,
    GUEST_DR7 = 0x681a,
    GUEST_RSP = 0x681c,
    GUEST_RIP = 0x681e,
    GUEST_RFLAGS = 0x6820,
    GUEST_PENDING_DEBUG = 0x6822,
    GUEST_SYSENTER_ESP = 0x6824,
    GUEST_SYSENTER_EIP = 0x6826,
    HOST_CR0 = 0x6c00,
    HOST_CR3 = 0x6c02,
    HOST_CR4 = 0x6c04,
    HOST_FS_BASE = 0x6c06,
    HOST_GS_BASE = 0x6c08,
    HOST_TR_BASE = 0x6c0a,
    HOST_GDTR_BASE = 0x6c0c,
    HOST_IDTR_BASE = 0x6c0e,
    HOST_SYSENTER_ESP = 0x6c10,
    HOST_SYSENTER_EIP = 0x6c12,
    HOST_RSP = 0x6c14,
    HOST_RIP = 0x6c16,
}

/// Pin-based VM-execution controls (SDM 24.6.1).
pub mod pin {
    pub const EXTERNAL_INTERRUPT_EXITING: u32 = 1 << 0;
    pub const NMI_EXITING: u32 = 1 << 3;
    pub const PREEMPTION_TIMER: u32 = 1 << 6;
}

/// Primary processor-based VM-execution controls (SDM 24.6.2, table 24-6).
pub mod proc {
    pub const INTERRUPT_WINDOW_EXITING: u32 = 1 << 2;
    pub const HLT_EXITING: u32 = 1 << 7;
    pub const CR8_LOAD_EXITING: u32 = 1 << 19;
    pub const CR8_STORE_EXITING: u32 = 1 << 20;
    pub const UNCONDITIONAL_IO_EXITING: u32 = 1 << 24;
    pub const USE_IO_BITMAPS: u32 = 1 << 25;
    pub const USE_MSR_BITMAPS: u32 = 1 << 28;
    pub const SECONDARY_CONTROLS: u32 = 1 << 31;
}

/// Secondary processor-based VM-execution controls (table 24-7).
pub mod proc2 {
    pub const ENABLE_EPT: u32 = 1 << 1;
    pub const ENABLE_RDTSCP: u32 = 1 << 3;
    pub const ENABLE_VPID: u32 = 1 << 5;
    pub const UNRESTRICTED_GUEST: u32 = 1 << 7;
    pub const ENABLE_INVPCID: u32 = 1 << 12;
}

/// VM-exit controls (table 24-13).
pub mod exit_ctl {
    pub const HOST_ADDRESS_SPACE_SIZE: u32 = 1 << 9;
    pub const ACK_INTERRUPT_ON_EXIT: u32 = 1 << 15;
    pub const SAVE_PAT: u32 = 1 << 18;
    pub const LOAD_PAT: u32 = 1 << 19;
    pub const SAVE_EFER: u32 = 1 << 20;
    pub const LOAD_EFER: u32 = 1 << 21;
}

/// VM-entry controls (table 24-15).
pub mod entry_ctl {
    pub const IA32E_MODE_GUEST: u32 = 1 << 9;
    pub const LOAD_PAT: u32 = 1 << 14;
    pub const LOAD_EFER: u32 = 1 << 15;
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
