//! Bouncing exceptions, events and system calls into a PV guest kernel, and
//! the `iret` hypercall that returns from them.
//!
//! Xen delivers everything a PV guest's kernel must handle by writing a
//! frame on the guest kernel's stack and jumping to the handler the guest
//! registered (`entry.S create_bounce_frame`): from guest user mode it
//! first switches to kernel mode (kernel page tables, GS bases swapped) and
//! uses the stack `stack_switch` named; from kernel mode it uses the
//! interrupted stack. The frame, lowest address first, is `RCX, R11,
//! [error code,] RIP, CS | saved upcall mask << 32, RFLAGS, RSP, SS` with
//! the stack pointer first aligned down to 16 bytes and no red zone
//! skipped. The guest's entry stubs pop RCX and R11 and are then on a
//! native exception frame.
//!
//! [`bounce`] computes that frame and the registers the guest resumes with;
//! [`iret`] decodes the frame of the `iret` hypercall (`struct
//! iret_context`) into the registers it returns to. Both are pure: the
//! caller writes the frame through the guest's page tables and loads the
//! registers.

use super::abi::{sel, va};

/// RFLAGS bits.
pub mod rflags {
    pub const CF: u64 = 1 << 0;
    /// Bit 1 is always set (`X86_EFLAGS_MBS`).
    pub const MBS: u64 = 1 << 1;
    pub const TF: u64 = 1 << 8;
    pub const IF: u64 = 1 << 9;
    pub const DF: u64 = 1 << 10;
    pub const IOPL: u64 = 3 << 12;
    pub const NT: u64 = 1 << 14;
    pub const RF: u64 = 1 << 16;
    pub const VM: u64 = 1 << 17;
    pub const AC: u64 = 1 << 18;
    /// Every architecturally defined flag (`X86_EFLAGS_ALL`-like: bits
    /// 0-21 that exist).
    pub const ALL: u64 = 0x003f_7fd5;
}

/// `VGCF_in_syscall` in `iret_context.flags`: return as SYSRET would
/// (RCX and R11 are not restored).
pub const VGCF_IN_SYSCALL: u64 = 1 << 8;

/// The part of a vCPU's state a bounce or an `iret` reads and writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regs {
    pub rip: u64,
    /// The CS selector the guest runs with (RPL 3 in both modes).
    pub cs: u16,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u16,
    pub rcx: u64,
    pub r11: u64,
}

/// What is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The guest's handler.
    pub handler: u64,
    /// The error code pushed for exceptions that have one.
    pub error: Option<u32>,
    /// Whether delivery masks events (`evtchn_upcall_mask` = 1): always
    /// for event upcalls, per the trap table's flag bit 2 for exceptions,
    /// per `CALLBACKF_mask_events` for system calls.
    pub mask_events: bool,
    /// Clear RFLAGS.DF too (system calls: "the PV ABI hardcodes that DF is
    /// cleared").
    pub clear_df: bool,
}

/// Where the frame goes and what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The new stack pointer: the frame's lowest address.
    pub rsp: u64,
    words: [u64; 8],
    len: usize,
}

impl Frame {
    /// The frame's 8-byte words, lowest address first.
    pub fn words(&self) -> &[u64] {
        &self.words[..self.len]
    }

    /// The frame as bytes, lowest address first.
    pub fn bytes(&self) -> ([u8; 64], usize) {
        let mut b = [0u8; 64];
        for (i, w) in self.words().iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        (b, self.len * 8)
    }
}

/// The result of a bounce: the frame to write (through the kernel's page
/// tables) and the registers to resume with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounced {
    pub frame: Frame,
    pub regs: Regs,
    /// The new `evtchn_upcall_mask`.
    pub upcall_mask: u8,
    /// The vCPU was in user mode: the caller switches to kernel mode (kernel
    /// page tables, GS bases swapped) before writing the frame.
    pub to_kernel: bool,
}

/// Why a frame cannot be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BounceError {
    /// The stack pointer lies in the hypervisor's range (Xen crashes the
    /// domain).
    BadStack(u64),
    /// No handler is registered (Xen crashes the domain).
    NoHandler,
}

impl core::fmt::Display for BounceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadStack(sp) => write!(
                f,
                "the guest kernel's stack pointer {sp:#x} lies in the hypervisor's range"
            ),
            Self::NoHandler => f.write_str("no handler registered for it"),
        }
    }
}

/// The frame and registers for delivering `d` to a vCPU in state `regs`
/// (`kernel_mode`: whether it runs its kernel now), whose kernel stack for
/// bounces from user mode is `kernel_sp`, whose `evtchn_upcall_mask` is
/// `upcall_mask`, and whose virtual IOPL shows in the frame when `iopl` is
/// given (`VMASST_TYPE_architectural_iopl`).
pub fn bounce(
    regs: &Regs,
    kernel_mode: bool,
    kernel_sp: u64,
    upcall_mask: u8,
    iopl: Option<u64>,
    d: &Delivery,
) -> Result<Bounced, BounceError> {
    if d.handler == 0 {
        return Err(BounceError::NoHandler);
    }
    let (sp, cs) = if kernel_mode {
        // "Indicate kernel context to guest": RPL 0 in the saved CS.
        (regs.rsp, regs.cs & !3)
    } else {
        (kernel_sp, regs.cs)
    };
    let sp = sp & !0xf;
    // Xen's check: below HYPERVISOR_VIRT_START + 1 or at or above
    // HYPERVISOR_VIRT_END + 64.
    if sp > va::HYPERVISOR_VIRT_START && sp < va::HYPERVISOR_VIRT_END + 64 {
        return Err(BounceError::BadStack(sp));
    }
    let mut flags = regs.rflags & !(rflags::IF | rflags::IOPL);
    if upcall_mask == 0 {
        flags |= rflags::IF;
    }
    flags |= iopl.unwrap_or(0) & rflags::IOPL;
    let mut words = [0u64; 8];
    let mut len = 0;
    let mut push = |w: u64| {
        words[len] = w;
        len += 1;
    };
    push(regs.rcx);
    push(regs.r11);
    if let Some(e) = d.error {
        push(u64::from(e));
    }
    push(regs.rip);
    push(u64::from(cs) | (u64::from(upcall_mask) << 32));
    push(flags);
    push(regs.rsp);
    push(u64::from(regs.ss));
    let rsp = sp.wrapping_sub(len as u64 * 8);
    let mut new_flags =
        regs.rflags & !(rflags::AC | rflags::VM | rflags::RF | rflags::NT | rflags::TF);
    if d.clear_df {
        new_flags &= !rflags::DF;
    }
    Ok(Bounced {
        frame: Frame { rsp, words, len },
        regs: Regs {
            rip: d.handler,
            cs: sel::FLAT_KERNEL_CS,
            rflags: new_flags,
            rsp,
            ss: sel::FLAT_KERNEL_SS,
            // The handler finds RCX and R11 in the frame; the registers
            // hold what a SYSRET leaves (RIP and RFLAGS).
            rcx: d.handler,
            r11: new_flags,
        },
        upcall_mask: if d.mask_events { 1 } else { upcall_mask },
        to_kernel: !kernel_mode,
    })
}

/// `struct iret_context` (`arch-x86/xen-x86_64.h`): what the guest pushed
/// before the `iret` hypercall, at its stack pointer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IretContext {
    pub rax: u64,
    pub r11: u64,
    pub rcx: u64,
    pub flags: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

impl IretContext {
    /// Bytes on the guest's stack.
    pub const SIZE: usize = 72;

    pub fn decode(b: &[u8; Self::SIZE]) -> Self {
        let w = |i: usize| {
            let mut x = [0u8; 8];
            x.copy_from_slice(&b[i * 8..i * 8 + 8]);
            u64::from_le_bytes(x)
        };
        Self {
            rax: w(0),
            r11: w(1),
            rcx: w(2),
            flags: w(3),
            rip: w(4),
            cs: w(5),
            rflags: w(6),
            rsp: w(7),
            ss: w(8),
        }
    }
}

/// Where an `iret` returns to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Iret {
    pub regs: Regs,
    /// The guest's RAX after the hypercall.
    pub rax: u64,
    /// The return goes to guest user mode: the caller switches to user
    /// mode (user page tables, GS bases swapped) first.
    pub to_user: bool,
    /// The new `evtchn_upcall_mask`: the inverse of the frame's IF.
    pub upcall_mask: u8,
    /// The new virtual IOPL, with `VMASST_TYPE_architectural_iopl`.
    pub iopl: Option<u64>,
}

/// The registers `ctx` returns to (`pv/iret.c do_iret`): CS and SS with RPL
/// forced to 3, RFLAGS without IOPL and VM and with IF set, RCX and R11
/// from the frame unless `VGCF_in_syscall` (then as SYSRET leaves them);
/// `user_root` says whether the vCPU has user page tables, which a return
/// to user mode needs (Xen crashes the domain otherwise).
pub fn iret(
    ctx: &IretContext,
    user_root: bool,
    architectural_iopl: bool,
) -> Result<Iret, IretError> {
    let to_user = ctx.cs & 3 == 3;
    if to_user && !user_root {
        return Err(IretError::NoUserRoot);
    }
    let rflags_new =
        (ctx.rflags & rflags::ALL & !(rflags::IOPL | rflags::VM)) | rflags::IF | rflags::MBS;
    let rip = ctx.rip;
    let (rcx, r11) = if ctx.flags & VGCF_IN_SYSCALL != 0 {
        (rip, rflags_new)
    } else {
        (ctx.rcx, ctx.r11)
    };
    Ok(Iret {
        regs: Regs {
            rip,
            cs: (ctx.cs as u16) | 3,
            rflags: rflags_new,
            rsp: ctx.rsp,
            ss: (ctx.ss as u16) | 3,
            rcx,
            r11,
        },
        rax: ctx.rax,
        to_user,
        upcall_mask: u8::from(ctx.rflags & rflags::IF == 0),
        iopl: architectural_iopl.then_some(ctx.rflags & rflags::IOPL),
    })
}

/// Why an `iret` cannot return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IretError {
    /// A return to user mode without user page tables.
    NoUserRoot,
}

impl core::fmt::Display for IretError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoUserRoot => {
                f.write_str("iret to user mode without user page tables (MMUEXT_NEW_USER_BASEPTR)")
            }
        }
    }
}

/// Whether exception `vector` pushes an error code (`X86_EXC_HAVE_EC`):
/// #DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP, #VC, #SX.
pub const fn has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10 | 11 | 12 | 13 | 14 | 17 | 21 | 29 | 30)
}

/// The page-fault error code's user bit (bit 2), as Xen rewrites it for a
/// PV guest: set exactly when the guest was in user mode, whatever the
/// hardware said (the kernel runs in ring 3 too).
pub fn pf_error_code(hw: u32, kernel_mode: bool) -> u32 {
    const USER: u32 = 1 << 2;
    if kernel_mode {
        hw & !USER
    } else {
        hw | USER
    }
}

#[cfg(test)]
mod tests;
