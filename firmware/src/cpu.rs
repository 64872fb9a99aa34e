//! Single instructions: CPUID, MSRs, port I/O, control registers, HLT.
//!
//! Those that cannot affect memory this program relies on are safe
//! functions; port output and MSR writes are `unsafe` because a device or
//! a CPU setting can.

use core::arch::asm;

pub use core::arch::x86_64::CpuidResult;

/// The CPU vendor, as far as the hypercall instruction is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    /// AMD and Hygon: SVM, `vmmcall`.
    Amd,
    /// Everyone else (Intel): VMX, `vmcall`.
    Intel,
}

/// CPUID leaf `leaf`, subleaf `subleaf`.
pub fn cpuid(leaf: u32, subleaf: u32) -> CpuidResult {
    core::arch::x86_64::__cpuid_count(leaf, subleaf)
}

/// The 12-byte vendor string of CPUID leaf 0 (EBX, EDX, ECX).
pub fn vendor_string() -> [u8; 12] {
    let r = cpuid(0, 0);
    let mut s = [0u8; 12];
    s[0..4].copy_from_slice(&r.ebx.to_le_bytes());
    s[4..8].copy_from_slice(&r.edx.to_le_bytes());
    s[8..12].copy_from_slice(&r.ecx.to_le_bytes());
    s
}

/// Which hypercall instruction this CPU uses.
pub fn vendor() -> Vendor {
    match &vendor_string() {
        b"AuthenticAMD" | b"HygonGenuine" => Vendor::Amd,
        _ => Vendor::Intel,
    }
}

/// Reads an MSR. A missing MSR raises #GP: use
/// [`crate::probe::rdmsr`] for MSRs that may not exist.
pub fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: reading an MSR changes no state this program relies on.
    unsafe {
        asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi,
             options(nomem, nostack, preserves_flags));
    }
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Writes an MSR.
///
/// # Safety
/// The write must not change CPU state this program relies on (paging,
/// EFER, segment bases...). MSRs that make a hypervisor write guest memory
/// (the hypercall page MSR) must point at memory set aside for that.
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: the caller vouches for the effect of the write.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
             options(nostack, preserves_flags));
    }
}

/// STAR, LSTAR, CSTAR, FMASK and KERNEL_GS_BASE: what SYSCALL and SWAPGS
/// use, and nothing else.
pub const SYSCALL_MSRS: [u32; 5] = [
    0xc000_0081,
    0xc000_0082,
    0xc000_0083,
    0xc000_0084,
    0xc000_0102,
];

/// Writes one of [`SYSCALL_MSRS`]; `false` for any other MSR. Safe for
/// these guests: none of them makes a system call or executes SWAPGS.
pub fn write_syscall_msr(msr: u32, value: u64) -> bool {
    if !SYSCALL_MSRS.contains(&msr) {
        return false;
    }
    // SAFETY: only SYSCALL and SWAPGS read these MSRs, and this program
    // executes neither.
    unsafe { wrmsr(msr, value) };
    true
}

/// Reads a byte from an I/O port.
///
/// # Safety
/// Reading the port must have no side effect on memory this program uses
/// (a device behind it must not be able to DMA into the guest).
pub unsafe fn inb(port: u16) -> u8 {
    let v: u8;
    // SAFETY: the caller vouches for the port.
    unsafe {
        asm!("in al, dx", in("dx") port, out("al") v, options(nomem, nostack, preserves_flags))
    };
    v
}

/// Reads a 16-bit word from an I/O port.
///
/// # Safety
/// As for [`inb`].
pub unsafe fn inw(port: u16) -> u16 {
    let v: u16;
    // SAFETY: the caller vouches for the port.
    unsafe {
        asm!("in ax, dx", in("dx") port, out("ax") v, options(nomem, nostack, preserves_flags))
    };
    v
}

/// Reads a 32-bit doubleword from an I/O port.
///
/// # Safety
/// As for [`inb`].
pub unsafe fn inl(port: u16) -> u32 {
    let v: u32;
    // SAFETY: the caller vouches for the port.
    unsafe {
        asm!("in eax, dx", in("dx") port, out("eax") v, options(nomem, nostack, preserves_flags))
    };
    v
}

/// Writes a byte to an I/O port.
///
/// # Safety
/// The write must not make a device change memory this program uses or
/// stop the CPU in a way the caller does not expect.
pub unsafe fn outb(port: u16, v: u8) {
    // SAFETY: the caller vouches for the port.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") v, options(nomem, nostack, preserves_flags))
    };
}

/// Writes a 16-bit word to an I/O port.
///
/// # Safety
/// As for [`outb`].
pub unsafe fn outw(port: u16, v: u16) {
    // SAFETY: the caller vouches for the port.
    unsafe {
        asm!("out dx, ax", in("dx") port, in("ax") v, options(nomem, nostack, preserves_flags))
    };
}

/// Writes a 32-bit doubleword to an I/O port.
///
/// # Safety
/// As for [`outb`].
pub unsafe fn outl(port: u16, v: u32) {
    // SAFETY: the caller vouches for the port.
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") v, options(nomem, nostack, preserves_flags))
    };
}

/// CR2: the address of the last page fault.
pub fn read_cr2() -> u64 {
    let v: u64;
    // SAFETY: reading CR2 has no side effects.
    unsafe { asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// One `hlt`. With interrupts off (they always are here) a bare CPU stops
/// until an NMI or reset; under a hypervisor this is a HLT exit.
pub fn hlt() {
    // SAFETY: HLT touches no memory; the caller accepts that it may not
    // return.
    unsafe { asm!("hlt", options(nomem, nostack, preserves_flags)) };
}

/// Stops this vCPU for good.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: disabling interrupts and halting touches no memory.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

/// The time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC only reads the counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}
