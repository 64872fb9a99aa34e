//! Operations a hypervisor must intercept, emulate or pass through
//! correctly: CPUID (basic and Xen leaves), an unknown MSR (#GP delivered
//! to the guest's IDT), an unassigned I/O port (reads all ones), exceptions
//! raised inside the guest (#BP, #UD, #PF with CR2, #GP), the MSRs Xen
//! gives an HVM guest (DEBUGCTL, PLATFORM_INFO and CPUID faulting), the
//! CPUID features Xen's HVM policy leaves out, CR4 writes of bits that
//! CPUID does not offer (#GP), unknown hypercalls
//! (-ENOSYS), loads and stores on guest-physical addresses outside RAM
//! (absent MMIO: reads give all-ones, writes are dropped) and, last, HLT
//! with interrupts off, which takes the vCPU down as Xen does: the domain,
//! its last vCPU down, is powered off (after the summary line, and only if
//! every check passed; otherwise the guest reports a crash).
//! `hlt=skip` on the command line ends with a plain poweroff instead.
#![no_std]
#![no_main]

use core::arch::asm;

use firmware::abi::start_info::MEMMAP_RAM;
use firmware::abi::{errno, hypercall as nr};
use firmware::boot::{self, IDENTITY_MAPPED};
use firmware::hypervisor::{self, XenLeaves};
use firmware::probe::{self, Fault};
use firmware::{cpu, println, report, Gpa, StartInfo};

firmware::guest_main!(main);

/// An MSR inside the ranges SVM's MSR permission map covers (so a
/// hypervisor must ask for its intercept) that no CPU implements.
const UNKNOWN_MSR_LOW: u32 = 0x0000_1234;
/// An MSR outside every architectural range.
const UNKNOWN_MSR_HIGH: u32 = 0xdead_beef;
/// An I/O port nothing decodes on a q35 machine.
const UNASSIGNED_PORT: u16 = 0x0ec0;
/// A hypercall number Xen leaves unused (its page has a stub for it).
const UNKNOWN_HYPERCALL: u64 = 63;
/// A hypercall number past the hypercall page.
const HYPERCALL_PAST_THE_PAGE: u64 = 0x1000;
/// A `sched_op` command Xen does not define.
const UNKNOWN_SCHED_OP: u16 = 0x7ff;

const NO_XEN: &str = "no Xen CPUID leaves";

fn main(start_info: Gpa) -> ! {
    println!("exits: CPUID, MSRs, port I/O, exceptions, hypercalls, MMIO, HLT");
    let xen = hypervisor::xen();
    let info = StartInfo::read(start_info).ok();
    let skip_hlt = info
        .as_ref()
        .and_then(|info| info.cmdline())
        .is_some_and(|line| {
            line.as_bytes()
                .split(|&b| b == b' ')
                .any(|word| word == b"hlt=skip")
        });
    cpuid_checks(xen);
    msr_checks(xen);
    if xen.is_some() {
        xen_msr_checks();
        cpuid_policy_checks();
        cr4_checks();
    } else {
        report::skip("MSRs, CPUID policy and CR4 as Xen gives them", NO_XEN);
    }
    port_checks();
    exception_checks();
    hypercall_checks(xen);
    mmio_checks(xen, info.as_ref());
    hlt_last(xen, skip_hlt)
}

fn show_cpuid(leaf: u32) -> cpu::CpuidResult {
    let r = cpu::cpuid(leaf, 0);
    println!(
        "cpuid {leaf:#010x}: eax={:#010x} ebx={:#010x} ecx={:#010x} edx={:#010x}",
        r.eax, r.ebx, r.ecx, r.edx
    );
    r
}

fn cpuid_checks(xen: Option<XenLeaves>) {
    let basic = show_cpuid(0);
    let vendor = cpu::vendor_string();
    println!(
        "cpu vendor: {}",
        core::str::from_utf8(&vendor).unwrap_or("(not ASCII)")
    );
    let features = show_cpuid(1);
    show_cpuid(0x8000_0000);
    report::check(
        "cpuid leaf 0 names a vendor and leaf 1",
        basic.eax >= 1 && vendor.iter().all(|b| b.is_ascii_graphic()),
    );
    let Some(xen) = xen else {
        report::skip("cpuid leaf 1 hypervisor bit", NO_XEN);
        report::skip("cpuid Xen hypercall leaf", NO_XEN);
        return;
    };
    for leaf in xen.base..=xen.max_leaf.min(xen.base + 4) {
        show_cpuid(leaf);
    }
    report::check("cpuid leaf 1 hypervisor bit", features.ecx & (1 << 31) != 0);
    report::check(
        "cpuid Xen hypercall leaf",
        xen.hypercall_pages >= 1 && xen.hypercall_msr != 0,
    );
}

fn msr_checks(xen: Option<XenLeaves>) {
    for (name, msr) in [
        (
            "rdmsr of an unknown MSR (0x1234) raises #GP",
            UNKNOWN_MSR_LOW,
        ),
        (
            "rdmsr of an unknown MSR (0xdeadbeef) raises #GP",
            UNKNOWN_MSR_HIGH,
        ),
    ] {
        let got = probe::rdmsr(msr);
        match got {
            Ok(v) => println!("rdmsr {msr:#x}: read {v:#x}"),
            Err(f) => println!("rdmsr {msr:#x}: {f}"),
        }
        expect_gp(name, got.map(drop), xen.is_some());
    }
    // SAFETY: no CPU implements this MSR, so a write that does not fault
    // changes nothing.
    let got = unsafe { probe::wrmsr(UNKNOWN_MSR_LOW, 0) };
    show("wrmsr 0x1234", got.err());
    expect_gp(
        "wrmsr of an unknown MSR (0x1234) raises #GP",
        got,
        xen.is_some(),
    );
}

const DEBUGCTL: u32 = 0x1d9;
const PLATFORM_INFO: u32 = 0xce;
const MISC_FEATURES_ENABLES: u32 = 0x140;
const PAT: u32 = 0x277;

/// A write that must raise #GP(0).
fn wrmsr_gp(name: &str, msr: u32, value: u64) {
    // SAFETY: the write is expected to fault; should it not, DEBUGCTL,
    // PLATFORM_INFO and MISC_FEATURES_ENABLES bits change nothing this
    // program relies on (it runs no user code, traces no branches), and
    // PAT's entry 0 is put back by the caller.
    let got = unsafe { probe::wrmsr(msr, value) };
    report::check_eq(
        name,
        got.map_err(|f| (f.vector, f.error_code)),
        Err((13, 0)),
    );
}

/// The MSRs Xen answers for HVM guests (`guest_rdmsr`, the VMX/SVM
/// intercepts) that used to #GP.
fn xen_msr_checks() {
    report::check_eq("rdmsr DEBUGCTL reads 0", probe::rdmsr(DEBUGCTL), Ok(0));
    // SAFETY: LBR and BTF are accepted and ignored: no branch is traced.
    let got = unsafe { probe::wrmsr(DEBUGCTL, 3) };
    report::check_eq("wrmsr DEBUGCTL LBR|BTF is accepted", got, Ok(()));
    report::check_eq("rdmsr DEBUGCTL after it", probe::rdmsr(DEBUGCTL), Ok(0));
    wrmsr_gp(
        "wrmsr DEBUGCTL with BTS (bit 7) raises #GP",
        DEBUGCTL,
        1 << 7,
    );
    let info = probe::rdmsr(PLATFORM_INFO);
    report::check_eq(
        "rdmsr PLATFORM_INFO offers CPUID faulting",
        info.map(|v| v & (1 << 32)),
        Ok(1 << 32),
    );
    wrmsr_gp("wrmsr PLATFORM_INFO raises #GP", PLATFORM_INFO, 0);
    // SAFETY: CPUID faulting affects CPL > 0 only; this program runs at 0.
    let on = unsafe { probe::wrmsr(MISC_FEATURES_ENABLES, 1) };
    let back = probe::rdmsr(MISC_FEATURES_ENABLES);
    let leaf0 = cpu::cpuid(0, 0).eax;
    // SAFETY: as above.
    let off = unsafe { probe::wrmsr(MISC_FEATURES_ENABLES, 0) };
    report::check_eq(
        "MISC_FEATURES_ENABLES takes CPUID faulting, CPL 0 CPUID still works",
        (on, back, leaf0 >= 1, off),
        (Ok(()), Ok(1), true, Ok(())),
    );
    wrmsr_gp(
        "wrmsr MISC_FEATURES_ENABLES bit 1 raises #GP",
        MISC_FEATURES_ENABLES,
        2,
    );
    if let Ok(pat) = probe::rdmsr(PAT) {
        wrmsr_gp(
            "wrmsr PAT with memory type 2 raises #GP",
            PAT,
            pat & !0xff | 2,
        );
        if probe::rdmsr(PAT) != Ok(pat) {
            // SAFETY: puts back the PAT the program ran with.
            let _ = unsafe { probe::wrmsr(PAT, pat) };
        }
    }
}

/// CPUID features Xen's HVM policy never offers (Debug Store, DS-CPL,
/// MONITOR, VMX, SMX, thermal monitors, the PDCM and TSC-deadline bits;
/// MPX, LA57, CET and unemulated speculation-control MSRs in leaf 7).
fn cpuid_policy_checks() {
    let l1 = cpu::cpuid(1, 0);
    let ecx_hidden = (1 << 2)
        | (1 << 3)
        | (1 << 4)
        | (1 << 5)
        | (1 << 6)
        | (1 << 7)
        | (1 << 8)
        | (1 << 15)
        | (1 << 24);
    let edx_hidden = (1 << 18) | (1 << 21) | (1 << 29) | (1 << 31);
    report::check_eq(
        "cpuid 1: no DS, DS-CPL, MONITOR, VMX, SMX, TM, PBE, PSN, PDCM",
        (l1.ecx & ecx_hidden, l1.edx & edx_hidden),
        (0, 0),
    );
    if cpu::cpuid(0, 0).eax >= 7 {
        let l7 = cpu::cpuid(7, 0);
        report::check_eq(
            "cpuid 7: no MPX, LA57, CET, PKU, IBRS/STIBP/SSBD",
            (
                l7.ebx & (1 << 14),
                l7.ecx & ((1 << 16) | (1 << 7) | (1 << 3)),
                l7.edx & 0xbc00_0000,
            ),
            (0, 0, 0),
        );
    }
}

/// CR4 bits for features the guest's CPUID does not offer raise #GP and
/// change nothing; a bit it may use (PCE) goes on and off.
fn cr4_checks() {
    let cr4 = probe::read_cr4();
    // SAFETY: PCE only lets user mode read performance counters; this
    // program runs no user code, and the old value is put back.
    let on = unsafe { probe::write_cr4(cr4 | (1 << 8)) };
    let with = probe::read_cr4();
    // SAFETY: as above.
    let off = unsafe { probe::write_cr4(cr4) };
    report::check_eq(
        "mov cr4: PCE on and off",
        (on, with & (1 << 8), off, probe::read_cr4()),
        (Ok(()), 1 << 8, Ok(()), cr4),
    );
    let l7 = cpu::cpuid(7, 0);
    let l1 = cpu::cpuid(1, 0);
    let hidden = [
        (
            "mov cr4 with VMXE (no VMX in CPUID) raises #GP",
            13,
            l1.ecx & (1 << 5) != 0,
        ),
        (
            "mov cr4 with SMXE (no SMX in CPUID) raises #GP",
            14,
            l1.ecx & (1 << 6) != 0,
        ),
        (
            "mov cr4 with PKE (no PKU in CPUID) raises #GP",
            22,
            l7.ecx & (1 << 3) != 0,
        ),
        (
            "mov cr4 with CET (no CET in CPUID) raises #GP",
            23,
            l7.ecx & (1 << 7) != 0,
        ),
        ("mov cr4 with a reserved bit (32) raises #GP", 32, false),
    ];
    for (what, bit, offered) in hidden {
        if offered {
            continue;
        }
        // SAFETY: the write is expected to fault; none of these bits,
        // should one go on, changes what this program does next (it
        // runs no VMX, SMX, protection-key or shadow-stack code), and the
        // check reads CR4 back at once.
        let got = unsafe { probe::write_cr4(cr4 | (1 << bit)) };
        let after = probe::read_cr4();
        if after != cr4 {
            // SAFETY: puts back the value the program ran with.
            let _ = unsafe { probe::write_cr4(cr4) };
        }
        report::check_eq(
            what,
            (got.map_err(|f| (f.vector, f.error_code)), after),
            (Err((13, 0)), cr4),
        );
    }
}

/// Checks that an MSR access raised #GP(0). QEMU's TCG (no hypervisor in
/// between) reads unknown MSRs as 0 and ignores writes to them instead.
fn expect_gp(name: &str, got: Result<(), Fault>, xen: bool) {
    match got {
        Err(f) => {
            report::check_eq(name, (f.vector, f.error_code), (13, 0));
        }
        Ok(()) if !xen => report::skip(name, "QEMU TCG does not fault on unknown MSRs"),
        Ok(()) => {
            report::check(name, false);
        }
    }
}

/// Prints what a probe caught.
fn show(what: &str, fault: Option<Fault>) {
    match fault {
        Some(f) => println!("{what}: {f}"),
        None => println!("{what}: no exception"),
    }
}

fn port_checks() {
    // SAFETY: nothing decodes this port (see UNASSIGNED_PORT), so reads and
    // writes reach no device.
    let (b, w, l, after_write) = unsafe {
        let b = cpu::inb(UNASSIGNED_PORT);
        let w = cpu::inw(UNASSIGNED_PORT);
        let l = cpu::inl(UNASSIGNED_PORT);
        cpu::outb(UNASSIGNED_PORT, 0x5a);
        (b, w, l, cpu::inb(UNASSIGNED_PORT))
    };
    println!("port {UNASSIGNED_PORT:#x}: inb {b:#x}, inw {w:#x}, inl {l:#x}, inb after outb {after_write:#x}");
    report::check_eq("inb from an unassigned port", b, 0xff);
    report::check_eq("inw from an unassigned port", w, 0xffff);
    report::check_eq("inl from an unassigned port", l, 0xffff_ffff);
    report::check_eq("outb to an unassigned port is dropped", after_write, 0xff);
}

fn exception_checks() {
    let bp = probe::breakpoint();
    show("int3", bp);
    report::check_eq("int3 reaches the guest IDT", bp.map(|f| f.vector), Some(3));

    let ud = probe::ud2();
    show("ud2", ud);
    report::check_eq("ud2 reaches the guest IDT", ud.map(|f| f.vector), Some(6));

    // SAFETY: the address is past the identity map: nothing is there to
    // have side effects, the read just page-faults.
    let pf = unsafe { probe::read_u64(IDENTITY_MAPPED) };
    show("read at 0x40000000", pf.err());
    report::check_eq(
        "read past the guest page tables raises #PF with CR2",
        pf.map_err(|f| (f.vector, f.cr2)),
        Err((14, IDENTITY_MAPPED)),
    );

    let non_canonical = 0x8000_0000_0000_0000;
    // SAFETY: a non-canonical address reaches no memory; the read #GPs.
    let gp = unsafe { probe::read_u64(non_canonical) };
    show("read at 0x8000000000000000", gp.err());
    report::check_eq(
        "non-canonical read raises #GP",
        gp.map_err(|f| f.vector),
        Err(13),
    );
}

fn hypercall_checks(xen: Option<XenLeaves>) {
    let names = [
        "unknown hypercall through the page returns -ENOSYS",
        "unknown hypercall issued directly returns -ENOSYS",
        "hypercall number past the page returns -ENOSYS",
        "sched_op with an unknown command returns -ENOSYS",
    ];
    if xen.is_none() {
        for name in names {
            report::skip(name, NO_XEN);
        }
        return;
    }
    let results = [
        hypervisor::probe(UNKNOWN_HYPERCALL, 0, false),
        hypervisor::probe(UNKNOWN_HYPERCALL, 0, true),
        hypervisor::probe(HYPERCALL_PAST_THE_PAGE, 0, true),
        hypervisor::probe(nr::SCHED_OP, UNKNOWN_SCHED_OP, false),
    ];
    for (name, rc) in names.into_iter().zip(results) {
        report::check_eq(name, rc, -errno::ENOSYS);
    }
    // Known commands still work after the unknown ones.
    report::check_eq("sched_op yield", hypervisor::sched_yield(), 0);
}

/// A guest-physical address in the hole below 4 GiB where a PC's PCI
/// devices have their registers, clear of the I/O APIC (0xfec00000) and
/// the local APIC (0xfee00000). Nothing is emulated there for this guest:
/// it is absent MMIO.
const ABSENT_MMIO: u64 = 0xfeb0_0000;
const PAGE_2M: u64 = 2 << 20;
/// What the load checks put in the destination register first.
const BEFORE: u64 = 0x1122_3344_5566_7788;

/// Runs one load instruction (Intel syntax, address in RSI, destination
/// RAX or a part of it) with RAX = [`BEFORE`]; returns RAX.
macro_rules! load {
    ($insn:literal, $addr:expr) => {{
        let mut v = BEFORE;
        // SAFETY: the address is absent MMIO (see `mmio_checks`): the read
        // reaches no device and no memory of this program.
        unsafe {
            asm!($insn, in("rsi") $addr, inout("rax") v, options(nostack, preserves_flags));
        }
        v
    }};
}

fn mmio_checks(xen: Option<XenLeaves>, info: Option<&StartInfo>) {
    const NAME: &str = "absent MMIO";
    if xen.is_none() {
        report::skip(NAME, NO_XEN);
        return;
    }
    let in_ram = info.is_some_and(|i| {
        i.memmap_entries().any(|e| {
            e.type_ == MEMMAP_RAM && e.addr < ABSENT_MMIO + PAGE_2M && ABSENT_MMIO < e.addr + e.size
        })
    });
    if in_ram || info.is_none() || !boot::map_mmio_2m(ABSENT_MMIO) {
        report::skip(
            NAME,
            "0xfeb00000 is RAM, the memory map is missing, or it is mapped already",
        );
        return;
    }
    let a = ABSENT_MMIO;
    println!("mmio: loads and stores at guest-physical {a:#x}, outside my RAM");
    let al = load!("mov al, byte ptr [rsi]", a);
    let ah = load!("mov ah, byte ptr [rsi + 1]", a);
    let ax = load!("mov ax, word ptr [rsi + 2]", a);
    let eax = load!("mov eax, dword ptr [rsi + 4]", a);
    let rax = load!("mov rax, qword ptr [rsi + 8]", a);
    report::check_eq(
        "absent MMIO: 1-byte load gives 0xff, the rest of RAX kept",
        al,
        0x1122_3344_5566_77ff,
    );
    report::check_eq(
        "absent MMIO: 1-byte load into AH sets bits 15:8 only",
        ah,
        0x1122_3344_5566_ff88,
    );
    report::check_eq(
        "absent MMIO: 2-byte load gives 0xffff, the rest of RAX kept",
        ax,
        0x1122_3344_5566_ffff,
    );
    report::check_eq(
        "absent MMIO: 4-byte load gives 0xffffffff, zero-extended",
        eax,
        0xffff_ffff,
    );
    report::check_eq("absent MMIO: 8-byte load gives all-ones", rax, u64::MAX);

    let mut r9 = BEFORE;
    // SAFETY: as in `load!`: [rsi + rcx*4 + 8] is absent MMIO.
    unsafe {
        asm!("mov r9d, dword ptr [rsi + rcx*4 + 8]", in("rsi") a, in("rcx") 2u64,
             inout("r9") r9, options(nostack, preserves_flags));
    }
    report::check_eq(
        "absent MMIO: 4-byte load into R9 through base + index*4 + disp8",
        r9,
        0xffff_ffff,
    );
    let moffs: u64;
    // SAFETY: as in `load!`; the bytes are `mov rax, [moffs64]` (REX.W A1).
    unsafe {
        asm!(".byte 0x48, 0xa1", ".quad {m}", m = const ABSENT_MMIO + 0x18,
             out("rax") moffs, options(nostack, preserves_flags));
    }
    report::check_eq(
        "absent MMIO: 8-byte moffs load gives all-ones",
        moffs,
        u64::MAX,
    );

    let zb = load!("movzx eax, byte ptr [rsi + 0x20]", a);
    let zw = load!("movzx eax, word ptr [rsi + 0x22]", a);
    let sb = load!("movsx rax, byte ptr [rsi + 0x24]", a);
    let sw = load!("movsx eax, word ptr [rsi + 0x26]", a);
    let sd = load!("movsxd rax, dword ptr [rsi + 0x28]", a);
    report::check_eq("absent MMIO: movzx of a byte gives 0xff", zb, 0xff);
    report::check_eq("absent MMIO: movzx of a word gives 0xffff", zw, 0xffff);
    report::check_eq(
        "absent MMIO: movsx of a byte into RAX gives all-ones",
        sb,
        u64::MAX,
    );
    report::check_eq(
        "absent MMIO: movsx of a word into EAX gives 0xffffffff",
        sw,
        0xffff_ffff,
    );
    report::check_eq("absent MMIO: movsxd gives all-ones", sd, u64::MAX);

    let after: u64;
    // SAFETY: the stores go to absent MMIO (nothing there to change); the
    // last instruction reads back the first address written.
    unsafe {
        asm!(
            "mov dword ptr [rsi], 0x12345678",
            "mov qword ptr [rsi + 8], rax",
            "mov byte ptr [rsi + 1], 0",
            "mov word ptr [rsi + 2], ax",
            "movnti dword ptr [rsi + 4], eax",
            "mov rax, qword ptr [rsi]",
            in("rsi") a,
            inout("rax") 0u64 => after,
            options(nostack, preserves_flags),
        );
    }
    report::check_eq(
        "absent MMIO: writes are dropped, the next read gives all-ones",
        after,
        u64::MAX,
    );
}

/// Last: HLT with interrupts off. Under Xen (and this hypervisor) the vCPU
/// goes down and, being the domain's last, the domain is powered off; the
/// guest never runs again. Anywhere else (no Xen, `hlt=skip`, or checks
/// failed) the guest ends through `sched_op` as usual.
fn hlt_last(xen: Option<XenLeaves>, skip: bool) -> ! {
    let name = "hlt with interrupts off";
    if xen.is_none() {
        // A bare CPU would stop here for good.
        report::skip(name, NO_XEN);
        report::finish()
    }
    if skip {
        report::skip(name, "hlt=skip on the command line");
        report::finish()
    }
    if report::summary() != 0 {
        report::finish()
    }
    println!("hlt: executing with interrupts off: the vCPU goes down, the domain powers off");
    cpu::hlt();
    println!("hlt: returned, but the vCPU should be down");
    firmware::power::shutdown(firmware::power::ShutdownReason::Crash)
}
