//! Thin wrappers over CPU instructions: port I/O, MSR writes and control
//! register reads through the `x86` crate (`x86::io`, `x86::msr`,
//! `x86::controlregs`); ours where the crate has nothing (an RDMSR that
//! survives a missing MSR, CPUID as a plain struct).

use core::arch::{asm, global_asm};
use x86::{controlregs, io};

/// The result of one CPUID leaf.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuidResult {
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
}

/// Executes CPUID for `leaf`/`subleaf`.
pub fn cpuid(leaf: u32, subleaf: u32) -> CpuidResult {
    let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    CpuidResult {
        eax: r.eax,
        ebx: r.ebx,
        ecx: r.ecx,
        edx: r.edx,
    }
}

/// Reads byte port `port`.
pub fn inb(port: u16) -> u8 {
    // SAFETY: port reads of the devices this hypervisor owns (UART, PCI
    // configuration ports) have no memory-safety effect.
    unsafe { io::inb(port) }
}

/// Writes byte port `port`.
pub fn outb(port: u16, v: u8) {
    // SAFETY: as for `inb`; the ports written are the hypervisor's own
    // devices, which cannot reach memory through these writes.
    unsafe { io::outb(port, v) }
}

/// Reads dword port `port`.
pub fn inl(port: u16) -> u32 {
    // SAFETY: as for `inb` (the ACPI PM timer, PCI configuration data).
    unsafe { io::inl(port) }
}

/// Writes dword port `port`.
pub fn outl(port: u16, v: u32) {
    // SAFETY: as for `outb`.
    unsafe { io::outl(port, v) }
}

/// Reads `size` (1, 2 or 4) bytes from port `port` of a passed-through
/// function's I/O BAR, as its guest asked.
///
/// # Safety
/// As for [`port_out`]: `port..port + size` must be inside an I/O BAR of a
/// function assigned to the guest the read is made for (a read can have
/// effects: a status acknowledged, a FIFO popped).
pub unsafe fn port_in(port: u16, size: u8) -> u32 {
    // SAFETY: a port of a passed-through function (this function's
    // contract); reading a device's port cannot touch the hypervisor's
    // memory (its DMA is confined by the IOMMU, or the operator accepted
    // that it is not).
    unsafe {
        match size {
            1 => u32::from(io::inb(port)),
            2 => u32::from(io::inw(port)),
            _ => io::inl(port),
        }
    }
}

/// Writes the low `size` (1, 2 or 4) bytes of `v` to port `port` of a
/// passed-through function's I/O BAR.
///
/// # Safety
/// `port..port + size` must be inside an I/O BAR of a function assigned
/// to the guest the write is made for: a port elsewhere could reprogram
/// the hypervisor's own devices (PCI configuration, the PIC, the PIT, the
/// UART) or another guest's.
pub unsafe fn port_out(port: u16, size: u8, v: u32) {
    // SAFETY: a port of a passed-through function (this function's
    // contract).
    unsafe {
        match size {
            1 => io::outb(port, v as u8),
            2 => io::outw(port, v as u16),
            _ => io::outl(port, v),
        }
    }
}

global_asm!(
    r#"
    .section .text.rdmsr_safe, "ax"
    .global hv_rdmsr_safe
    .global hv_rdmsr_safe_insn
    .global hv_rdmsr_safe_fixup
hv_rdmsr_safe:
    mov ecx, edi
hv_rdmsr_safe_insn:
    rdmsr
    shl rdx, 32
    or rax, rdx
    mov [rsi], rax
    xor eax, eax
    ret
hv_rdmsr_safe_fixup:
    mov eax, 1
    ret
    "#
);

extern "C" {
    fn hv_rdmsr_safe(msr: u32, out: *mut u64) -> u32;
    static hv_rdmsr_safe_insn: u8;
    static hv_rdmsr_safe_fixup: u8;
}

/// Reads MSR `msr`, or `None` if the CPU raises #GP (the MSR does not exist).
///
/// The exception handler recognises a #GP at the RDMSR of this routine and
/// resumes at its fixup label, which returns failure. Inlined: a VMX exit
/// reads five MSRs through it.
#[inline(always)]
pub fn rdmsr_safe(msr: u32) -> Option<u64> {
    let mut v = 0u64;
    // SAFETY: `hv_rdmsr_safe` only writes through `out`, which points at a
    // live local; a faulting RDMSR is redirected by the #GP handler.
    let failed = unsafe { hv_rdmsr_safe(msr, &mut v) };
    (failed == 0).then_some(v)
}

/// If `rip` is the RDMSR of [`rdmsr_safe`], where to resume after a #GP.
pub fn rdmsr_fixup(rip: u64) -> Option<u64> {
    let insn = core::ptr::addr_of!(hv_rdmsr_safe_insn) as u64;
    let fixup = core::ptr::addr_of!(hv_rdmsr_safe_fixup) as u64;
    (rip == insn).then_some(fixup)
}

/// Writes MSR `msr`.
///
/// # Safety
/// The MSR must exist and the value must not break the hypervisor's own
/// execution environment (EFER, PAT and friends).
pub unsafe fn wrmsr(msr: u32, v: u64) {
    // SAFETY: the caller upholds the contract above.
    unsafe { x86::msr::wrmsr(msr, v) }
}

/// Reads CR0.
pub fn cr0() -> u64 {
    // SAFETY: reading a control register has no side effects.
    unsafe { controlregs::cr0() }.bits() as u64
}

/// Reads CR2 (the last page-fault address).
pub fn cr2() -> u64 {
    // SAFETY: reading a control register has no side effects.
    unsafe { controlregs::cr2() as u64 }
}

/// Reads CR3.
pub fn cr3() -> u64 {
    // SAFETY: reading a control register has no side effects.
    unsafe { controlregs::cr3() }
}

/// Reads CR4.
pub fn cr4() -> u64 {
    // SAFETY: reading a control register has no side effects.
    unsafe { controlregs::cr4() }.bits() as u64
}

pub use hv::regbits::CR4_OSXSAVE;

/// Sets CR4.OSXSAVE. Call only on a CPU with XSAVE (CPUID.1:ECX bit 26),
/// where the bit exists.
pub fn enable_osxsave() {
    let v = cr4() | CR4_OSXSAVE;
    // SAFETY: OSXSAVE only makes the XSAVE family of instructions usable;
    // it changes neither paging nor how existing code runs, and the caller
    // checked that the CPU has XSAVE.
    unsafe { asm!("mov cr4, {}", in(reg) v, options(nostack, preserves_flags)) };
}

/// Writes extended control register `xcr` (XCR0 = 0).
///
/// # Safety
/// CR4.OSXSAVE must be set and `v` a value the CPU accepts (XSETBV #GPs
/// otherwise); the components it disables must not be in use by the
/// hypervisor.
pub unsafe fn xsetbv(xcr: u32, v: u64) {
    // SAFETY: the caller upholds the contract above.
    unsafe {
        asm!("xsetbv", in("ecx") xcr, in("eax") v as u32, in("edx") (v >> 32) as u32,
             options(nomem, nostack, preserves_flags));
    }
}

/// Reads extended control register `xcr` (CR4.OSXSAVE must be set).
pub fn xgetbv(xcr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: XGETBV only reads; callers call it after `enable_osxsave`.
    unsafe {
        asm!("xgetbv", in("ecx") xcr, out("eax") lo, out("edx") hi,
             options(nomem, nostack, preserves_flags));
    }
    (u64::from(hi) << 32) | u64::from(lo)
}

/// The current frame pointer (RBP).
#[inline(always)]
pub fn frame_pointer() -> u64 {
    let v;
    // SAFETY: reading RBP has no side effects.
    unsafe { asm!("mov {}, rbp", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// Lets interrupts that are pending right now be delivered, then disables
/// them again: the host runs with interrupts off except here. STI holds
/// interrupts off for one more instruction, so they are taken after the
/// NOP, before CLI.
pub fn take_pending_interrupts() {
    // SAFETY: every host interrupt vector has an IDT gate on an IST stack,
    // and the handlers only acknowledge the interrupt (`lapic::interrupt`),
    // so opening this window changes no state the caller relies on.
    unsafe { asm!("sti", "nop", "cli", options(nostack)) };
}

/// Disables interrupts and halts forever.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: with interrupts off, HLT only stops this CPU.
        unsafe { asm!("cli; hlt", options(nomem, nostack)) };
    }
}

/// Masks both legacy 8259 interrupt controllers: the hypervisor uses the
/// local APIC, and a stray PIC interrupt must not arrive on an exception
/// vector.
pub fn mask_legacy_pic() {
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
}

/// Executes UD2 (for `debug.fault=invalid-opcode`).
#[cfg(feature = "test-hooks")]
pub fn invalid_opcode() {
    // SAFETY: UD2 raises #UD, which the exception handler reports; no state
    // is changed.
    unsafe { asm!("ud2", options(nomem, nostack)) };
}

/// Writes byte `v` at `addr` (for `debug.fault=write-text`: the page tables
/// must refuse it).
///
/// # Safety
/// `addr` must be memory the page tables refuse to write (the caller
/// expects the fault that ends the run).
#[cfg(feature = "test-hooks")]
pub unsafe fn poke(addr: u64, v: u8) {
    // SAFETY: deliberately faulting: the target is read-only code, so the
    // write raises #PF before changing anything, and the handler ends the
    // run.
    unsafe { core::ptr::write_volatile(addr as *mut u8, v) };
}

/// Calls the code at `addr` (for `debug.fault=exec-data`: the page tables
/// must refuse to execute it).
///
/// # Safety
/// `addr` must be no-execute memory (the caller expects the fault that
/// ends the run) or a harmless function taking nothing.
#[cfg(feature = "test-hooks")]
pub unsafe fn call_address(addr: u64) {
    // SAFETY: deliberately faulting: `addr` is in no-execute data, so the
    // fetch raises #PF and the handler ends the run. Were NX missing, the
    // byte there is a RET, which returns harmlessly.
    unsafe { asm!("call {}", in(reg) addr, clobber_abi("C")) };
}

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[repr(C, packed)]
#[derive(Default)]
struct TableRegister {
    limit: u16,
    base: u64,
}

/// GDTR's base.
pub fn gdtr_base() -> u64 {
    let mut r = TableRegister::default();
    // SAFETY: SGDT stores 10 bytes into the local `r`.
    unsafe { asm!("sgdt [{}]", in(reg) &raw mut r, options(nostack, preserves_flags)) };
    r.base
}

/// IDTR's base.
pub fn idtr_base() -> u64 {
    let mut r = TableRegister::default();
    // SAFETY: SIDT stores 10 bytes into the local `r`.
    unsafe { asm!("sidt [{}]", in(reg) &raw mut r, options(nostack, preserves_flags)) };
    r.base
}

/// The current segment selectors: CS, SS, DS, ES, FS, GS, TR.
pub fn selectors() -> [u16; 7] {
    let (cs, ss, ds, es, fs, gs, tr): (u16, u16, u16, u16, u16, u16, u16);
    // SAFETY: reading segment selectors and TR has no side effects.
    unsafe {
        asm!(
            "mov {0:x}, cs", "mov {1:x}, ss", "mov {2:x}, ds", "mov {3:x}, es",
            "mov {4:x}, fs", "mov {5:x}, gs", "str {6:x}",
            out(reg) cs, out(reg) ss, out(reg) ds, out(reg) es,
            out(reg) fs, out(reg) gs, out(reg) tr,
            options(nomem, nostack, preserves_flags)
        )
    };
    [cs, ss, ds, es, fs, gs, tr]
}
