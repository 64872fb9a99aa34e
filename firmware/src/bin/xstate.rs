//! Extended state (XSAVE) under a hypervisor: the CPUID bits of XSAVE,
//! OSXSAVE, AVX and leaf 0xD; CR4.OSXSAVE; XSETBV with valid values (read
//! back with XGETBV) and invalid ones (#GP, or #UD before CR4.OSXSAVE);
//! then XMM/YMM registers and MXCSR filled with a pattern that must survive
//! CPUID, port I/O and hypercall exits and `sched_op` yields to another
//! domain running the same test with another pattern (`pattern=N` on the
//! command line); the same for ZMM0-31 and k0-7 when AVX-512 is offered.
//! Without AVX the YMM checks are SKIP and the XMM ones run. Last, RFLAGS.IF
//! toggled around exits must stay as set with no stray interrupt.
#![no_std]
#![no_main]

use core::arch::asm;
use firmware::abi::hypercall as nr;
use firmware::hypervisor;
use firmware::{cpu, println, report, Gpa, StartInfo};

firmware::guest_main!(main);

const X87: u64 = 1 << 0;
const SSE: u64 = 1 << 1;
const AVX: u64 = 1 << 2;
const AVX512: u64 = 0b111 << 5;
const CR4_OSXSAVE: u64 = 1 << 18;
/// An I/O port nothing decodes on a q35 machine.
const UNASSIGNED_PORT: u16 = 0x0ec0;
/// Rounds of exits with the registers loaded.
const ROUNDS: u64 = 64;

fn main(start_info: Gpa) -> ! {
    let info = StartInfo::read(start_info).ok();
    let cmdline = info.as_ref().and_then(|i| i.cmdline());
    let line = cmdline.as_ref().and_then(|c| c.as_str()).unwrap_or("");
    let pattern = line
        .split_ascii_whitespace()
        .find_map(|w| w.strip_prefix("pattern="))
        .and_then(|n| n.parse::<u8>().ok())
        .unwrap_or(1);
    println!("xstate: XSAVE, XCR0, XMM/YMM state across exits (pattern {pattern})");

    let leaf1 = cpu::cpuid(1, 0);
    let has_xsave = leaf1.ecx & (1 << 26) != 0;
    let has_avx = leaf1.ecx & (1 << 28) != 0;
    println!(
        "cpuid 1: ecx={:#010x} (xsave {has_xsave}, osxsave {}, avx {has_avx})",
        leaf1.ecx,
        leaf1.ecx & (1 << 27) != 0
    );
    if !has_xsave {
        report::check("cpuid shows XSAVE", false);
        registers(pattern, false);
        report::finish();
    }
    report::check("cpuid shows XSAVE", true);
    report::check(
        "cpuid OSXSAVE is clear while CR4.OSXSAVE is",
        leaf1.ecx & (1 << 27) == 0 && read_cr4() & CR4_OSXSAVE == 0,
    );
    report::check_eq(
        "xsetbv before CR4.OSXSAVE raises #UD",
        xsetbv(0, X87 | SSE),
        Err(6),
    );

    write_cr4(read_cr4() | CR4_OSXSAVE);
    report::check(
        "cpuid OSXSAVE follows CR4.OSXSAVE",
        cpu::cpuid(1, 0).ecx & (1 << 27) != 0,
    );
    let d0 = cpu::cpuid(0xd, 0);
    let supported = u64::from(d0.eax) | (u64::from(d0.edx) << 32);
    println!(
        "cpuid 0xd.0: eax={:#x} ebx={} ecx={} edx={:#x}; xgetbv {:#x}",
        d0.eax,
        d0.ebx,
        d0.ecx,
        d0.edx,
        xgetbv()
    );
    report::check(
        "cpuid 0xd.0 offers x87 and SSE, and AVX when leaf 1 shows it",
        supported & (X87 | SSE) == X87 | SSE && (supported & AVX != 0) == has_avx,
    );
    report::check(
        "cpuid 0xd.0 ecx (max size) covers ebx (current size)",
        d0.ecx >= d0.ebx && d0.ebx >= 576,
    );

    xsetbv_checks(supported);
    if pattern == 2 && has_avx {
        fresh_component();
    }

    let mut want = X87 | SSE;
    if has_avx {
        want |= AVX;
    }
    if supported & AVX512 == AVX512 && has_avx {
        want |= AVX512;
    }
    report::check_eq(
        "xsetbv of the full supported XCR0 is accepted",
        xsetbv(0, want),
        Ok(()),
    );
    report::check_eq("xgetbv reads the XCR0 back", xgetbv(), want);
    let size = cpu::cpuid(0xd, 0).ebx;
    report::check_eq(
        "cpuid 0xd.0 ebx is the area size of the current XCR0",
        size,
        area_size(want),
    );
    registers(pattern, has_avx);
    let avx512f = cpu::cpuid(7, 0).ebx & (1 << 16) != 0;
    if want & AVX512 == AVX512 && avx512f {
        registers_avx512(pattern);
    } else {
        report::skip("ZMM0-31 survive exits and other domains", "no AVX-512");
    }
    interrupt_flag_check();
    report::finish()
}

fn xsetbv_checks(supported: u64) {
    report::check_eq("xsetbv x87|SSE is accepted", xsetbv(0, X87 | SSE), Ok(()));
    report::check_eq("xgetbv reads x87|SSE back", xgetbv(), X87 | SSE);
    report::check_eq("xsetbv without x87 raises #GP", xsetbv(0, SSE), Err(13));
    report::check_eq(
        "xsetbv of AVX without SSE raises #GP",
        xsetbv(0, X87 | AVX),
        Err(13),
    );
    report::check_eq(
        "xsetbv with ECX=1 raises #GP",
        xsetbv(1, X87 | SSE),
        Err(13),
    );
    // Bit 8 (PT) is supervisor state, never valid in XCR0; otherwise the
    // lowest bit leaf 0xD does not offer.
    let unsupported = (2..63)
        .map(|i| 1u64 << i)
        .find(|b| supported & b == 0)
        .unwrap_or(1 << 8);
    report::check_eq(
        "xsetbv of a component not offered raises #GP",
        xsetbv(0, X87 | SSE | unsupported),
        Err(13),
    );
    if supported & AVX512 == AVX512 {
        report::check_eq(
            "xsetbv of part of AVX-512 raises #GP",
            xsetbv(0, X87 | SSE | AVX | (1 << 5)),
            Err(13),
        );
    } else {
        report::skip("xsetbv of part of AVX-512 raises #GP", "no AVX-512 offered");
    }
    report::check_eq(
        "xgetbv still reads x87|SSE after the refusals",
        xgetbv(),
        X87 | SSE,
    );
}

/// A component a domain enables for the first time starts in its initial
/// configuration, whatever another domain left in the CPU's registers:
/// while the other domain (pattern 1) holds its pattern in YMM0-15 and
/// yields, this one, which has never enabled AVX, enables it, reads
/// YMM0-15 (all zero expected) and turns it off again, many times.
fn fresh_component() {
    let mut dirty = 0u32;
    let mut other = 0u32;
    let other_upper: [[u8; 16]; 16] =
        core::array::from_fn(|i| core::array::from_fn(|j| pattern_byte(1, i, 16 + j)));
    for _ in 0..2 * ROUNDS {
        hypervisor::sched_yield();
        if xsetbv(0, X87 | SSE | AVX).is_err() {
            dirty += 1;
            break;
        }
        let mut out = [[0u8; 32]; 16];
        // SAFETY: AVX is enabled in XCR0 (checked above) and CR4.OSXSAVE is
        // set; the asm only stores YMM0-15 into `out`, 16 x 32 bytes.
        unsafe {
            asm!(
                ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
                "vmovdqu [{p} + 32 * \\i], ymm\\i",
                ".endr",
                p = in(reg) out.as_mut_ptr(),
                options(nostack),
            );
        }
        let _ = xsetbv(0, X87 | SSE);
        dirty += u32::from(out.iter().any(|r| r[16..] != [0; 16]));
        other += u32::from(out.iter().zip(&other_upper).any(|(r, o)| r[16..] == o[..]));
    }
    println!(
        "xstate: AVX enabled afresh {} times: {dirty} with upper halves not zero, {other} holding the other domain's",
        2 * ROUNDS
    );
    report::check(
        "AVX enabled afresh starts in its initial configuration, never with another domain's YMM",
        dirty == 0 && other == 0,
    );
}

/// The standard-format size for `xcr0` from leaf 0xD's subleaves.
fn area_size(xcr0: u64) -> u32 {
    (2..63)
        .filter(|i| xcr0 & (1 << i) != 0)
        .map(|i| {
            let r = cpu::cpuid(0xd, i);
            r.eax + r.ebx
        })
        .fold(576, u32::max)
}

/// The bytes of a register pattern: different for every register, byte
/// and pattern number.
fn pattern_byte(p: u8, reg: usize, byte: usize) -> u8 {
    p.wrapping_mul(0x35) ^ (reg as u8).wrapping_mul(17) ^ (byte as u8).wrapping_mul(3)
}

/// MXCSR with all exceptions masked, round toward zero and flush-to-zero:
/// not the reset value, so a lost MXCSR shows.
const MXCSR: u32 = 0xff80;

/// What the register tests' asm reads first, at fixed offsets (R14 points
/// here): MXCSR in and out, the default MXCSR to put back, and the
/// hypercall stubs to call (0 without Xen).
#[repr(C, align(64))]
struct Control {
    mxcsr_in: u32,     // 0
    mxcsr_out: u32,    // 4
    mxcsr_saved: u32,  // 8
    _pad: u32,         // 12
    yield_stub: u64,   // 16
    version_stub: u64, // 24
}

/// XMM/YMM test: the control words, then 16 registers of 32 bytes in and
/// out.
#[repr(C, align(64))]
struct Ymm {
    c: Control,
    want: [[u8; 32]; 16], // 64
    got: [[u8; 32]; 16],  // 576
}

/// AVX-512 test: 32 ZMM registers of 64 bytes and the 8 opmask registers,
/// in and out.
#[repr(C, align(64))]
struct Zmm {
    c: Control,
    want: [[u8; 64]; 32], // 64
    got: [[u8; 64]; 32],  // 2112
    want_k: [u64; 8],     // 4160
    got_k: [u64; 8],      // 4224
}

const _: () = {
    assert!(core::mem::offset_of!(Control, mxcsr_out) == 4);
    assert!(core::mem::offset_of!(Control, yield_stub) == 16);
    assert!(core::mem::offset_of!(Control, version_stub) == 24);
    assert!(core::mem::offset_of!(Ymm, want) == 64);
    assert!(core::mem::offset_of!(Ymm, got) == 576);
    assert!(core::mem::offset_of!(Zmm, want) == 64);
    assert!(core::mem::offset_of!(Zmm, got) == 2112);
    assert!(core::mem::offset_of!(Zmm, want_k) == 4160);
    assert!(core::mem::offset_of!(Zmm, got_k) == 4224);
};

impl Control {
    fn new() -> Self {
        let xen = hypervisor::is_xen() && hypervisor::page_ready();
        let page = hypervisor::hypercall_page().0;
        let stub = |n: u64| if xen { page + n * 32 } else { 0 };
        Control {
            mxcsr_in: MXCSR,
            mxcsr_out: 0,
            mxcsr_saved: 0x1f80,
            _pad: 0,
            yield_stub: stub(nr::SCHED_OP),
            version_stub: stub(nr::XEN_VERSION),
        }
    }

    fn describe(&self) -> &'static str {
        if self.yield_stub != 0 {
            "CPUID, port I/O, hypercall and yield exits"
        } else {
            "CPUID and port I/O (no Xen: no hypercalls)"
        }
    }
}

/// Loads XMM (and YMM with `avx`) registers and MXCSR with the pattern,
/// takes exits, and checks that they all came back.
fn registers(pattern: u8, avx: bool) {
    let mut b = Ymm {
        c: Control::new(),
        want: [[0; 32]; 16],
        got: [[0; 32]; 16],
    };
    for (i, reg) in b.want.iter_mut().enumerate() {
        for (j, byte) in reg.iter_mut().enumerate() {
            *byte = pattern_byte(pattern, i, j);
        }
    }
    if avx {
        run_avx(&mut b);
    } else {
        run_sse(&mut b);
    }
    println!("xstate: {ROUNDS} rounds of {}", b.c.describe());
    let xmm_ok = b.want.iter().zip(&b.got).all(|(w, g)| w[..16] == g[..16]);
    report::check("XMM0-15 survive exits and other domains", xmm_ok);
    report::check_eq(
        "MXCSR survives exits and other domains",
        b.c.mxcsr_out,
        MXCSR,
    );
    if avx {
        let ymm_ok = b.want.iter().zip(&b.got).all(|(w, g)| w == g);
        report::check("YMM0-15 survive exits and other domains", ymm_ok);
    } else {
        report::skip("YMM0-15 survive exits and other domains", "no AVX");
    }
    if b.c.yield_stub == 0 {
        report::skip("the registers survive yields to another domain", "no Xen");
    }
}

/// Loads ZMM0-31 and k0-7 with the pattern, takes exits, and checks that
/// they all came back.
fn registers_avx512(pattern: u8) {
    let mut b = Zmm {
        c: Control::new(),
        want: [[0; 64]; 32],
        got: [[0; 64]; 32],
        want_k: [0; 8],
        got_k: [0; 8],
    };
    for (i, reg) in b.want.iter_mut().enumerate() {
        for (j, byte) in reg.iter_mut().enumerate() {
            *byte = pattern_byte(pattern, i, j);
        }
    }
    for (i, k) in b.want_k.iter_mut().enumerate() {
        *k = u64::from_le_bytes(core::array::from_fn(|j| pattern_byte(pattern, 64 + i, j)));
    }
    run_avx512(&mut b);
    println!(
        "xstate: {ROUNDS} rounds of {} with AVX-512 state",
        b.c.describe()
    );
    report::check(
        "ZMM0-31 survive exits and other domains",
        b.want.iter().zip(&b.got).all(|(w, g)| w == g),
    );
    report::check_eq("k0-7 survive exits and other domains", b.got_k, b.want_k);
}

/// The exits of one round, repeated [`ROUNDS`] times with R14 = the
/// control words: CPUID leaf 0, a port read, and with Xen
/// `sched_op(yield)` and `xen_version` through the hypercall page. RBX is
/// kept in R12. Numeric labels 2 and 3 are used.
macro_rules! exit_rounds {
    () => {
        concat!(
            "ldmxcsr [r14]\n",
            "mov r13, {rounds}\n",
            "2:\n",
            "mov r12, rbx\n",
            "xor eax, eax\n",
            "cpuid\n",
            "mov rbx, r12\n",
            "mov dx, {port}\n",
            "in al, dx\n",
            "cmp qword ptr [r14 + 16], 0\n",
            "je 3f\n",
            "xor edi, edi\n",
            "xor esi, esi\n",
            "call qword ptr [r14 + 16]\n",
            "xor edi, edi\n",
            "xor esi, esi\n",
            "call qword ptr [r14 + 24]\n",
            "3:\n",
            "dec r13\n",
            "jnz 2b\n",
            "stmxcsr [r14 + 4]\n",
        )
    };
}

/// Runs `$body` (asm lines around [`exit_rounds`]) with R14 = `$block`,
/// every general-purpose and XMM register it may change declared, then
/// puts MXCSR back to its default.
macro_rules! register_test {
    ($block:expr, $($body:expr),* $(,)?) => {
        asm!(
            $($body,)*
            "ldmxcsr [r14 + 8]",
            rounds = const ROUNDS,
            port = const UNASSIGNED_PORT,
            in("r14") $block,
            out("rax") _, out("rcx") _, out("rdx") _, out("rsi") _, out("rdi") _,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
            out("r12") _, out("r13") _,
            out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _,
            out("xmm4") _, out("xmm5") _, out("xmm6") _, out("xmm7") _,
            out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
            out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
        )
    };
}

/// The register test with YMM0-15: one asm block, so no compiler code runs
/// between loading and storing the registers.
fn run_avx(b: &mut Ymm) {
    // SAFETY: R14 points at `b`, live and 64-byte aligned; the asm reads
    // `want` and the control words and writes `got` and `mxcsr_out` inside
    // it, calls hypercall page stubs (`mov eax, N; vmcall; ret`) with null
    // arguments (SCHEDOP_yield, XENVER_version), reads an unassigned port
    // and executes CPUID; every register it changes is declared (upper
    // halves are zeroed again) and MXCSR is put back to its default. The
    // caller checked AVX and enabled it in XCR0.
    unsafe {
        register_test!(
            b as *mut Ymm,
            ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
            "vmovdqa ymm\\i, [r14 + 64 + 32 * \\i]",
            ".endr",
            exit_rounds!(),
            ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
            "vmovdqa [r14 + 576 + 32 * \\i], ymm\\i",
            ".endr",
            "vzeroupper",
        );
    }
}

/// The register test with XMM0-15 only (no AVX).
fn run_sse(b: &mut Ymm) {
    // SAFETY: as for `run_avx`, with SSE moves only.
    unsafe {
        register_test!(
            b as *mut Ymm,
            ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
            "movdqa xmm\\i, [r14 + 64 + 32 * \\i]",
            ".endr",
            exit_rounds!(),
            ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
            "movdqa [r14 + 576 + 32 * \\i], xmm\\i",
            ".endr",
        );
    }
}

/// The register test with ZMM0-31 and k0-7.
fn run_avx512(b: &mut Zmm) {
    // SAFETY: as for `run_avx`, with R14 pointing at `b`. ZMM16-31 and the
    // opmask registers cannot be named as clobbers without AVX-512 code
    // generation, which this program does not use: the compiler keeps
    // nothing there. The caller checked AVX-512F and enabled its state.
    unsafe {
        register_test!(
            b as *mut Zmm,
            ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
            "vmovdqu64 zmm\\i, [r14 + 64 + 64 * \\i]",
            ".endr",
            ".irp i,0,1,2,3,4,5,6,7",
            "kmovq k\\i, [r14 + 4160 + 8 * \\i]",
            ".endr",
            exit_rounds!(),
            ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31",
            "vmovdqu64 [r14 + 2112 + 64 * \\i], zmm\\i",
            ".endr",
            ".irp i,0,1,2,3,4,5,6,7",
            "kmovq [r14 + 4224 + 8 * \\i], k\\i",
            ".endr",
            "vzeroupper",
        );
    }
}

/// Toggles RFLAGS.IF around CPUID exits: with nothing to inject, the
/// guest must see no interrupt (an unexpected vector ends it as an
/// unhandled exception) and its flags come back as it set them.
fn interrupt_flag_check() {
    let mut seen_if = 0u64;
    // SAFETY: STI/CLI change only RFLAGS.IF, which is back to 0 (as the
    // runtime runs) at the end; CPUID's registers are declared, RBX is
    // kept in R8.
    unsafe {
        asm!(
            "mov r9, {rounds}",
            "2:",
            "sti",
            "mov r8, rbx",
            "xor eax, eax",
            "cpuid",
            "mov rbx, r8",
            "pushfq",
            "pop rax",
            "shr rax, 9",
            "and eax, 1",
            "add {seen}, rax",
            "cli",
            "mov r8, rbx",
            "xor eax, eax",
            "cpuid",
            "mov rbx, r8",
            "dec r9",
            "jnz 2b",
            rounds = const ROUNDS,
            seen = inout(reg) seen_if,
            out("rax") _, out("rcx") _, out("rdx") _, out("r8") _, out("r9") _,
        );
    }
    report::check_eq(
        "RFLAGS.IF toggled around exits stays as set, no stray interrupt",
        seen_if,
        ROUNDS,
    );
}

/// CR4.
fn read_cr4() -> u64 {
    let v: u64;
    // SAFETY: reading CR4 has no side effects.
    unsafe { asm!("mov {}, cr4", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

fn write_cr4(v: u64) {
    // SAFETY: only called to add OSXSAVE, which changes nothing this
    // program relies on (paging bits are kept as read).
    unsafe { asm!("mov cr4, {}", in(reg) v, options(nostack, preserves_flags)) };
}

/// XGETBV of XCR0.
fn xgetbv() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: XGETBV only reads; called after CR4.OSXSAVE is set.
    unsafe {
        asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") hi,
             options(nomem, nostack, preserves_flags))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// XSETBV of `value` into XCR `xcr`; the exception vector if it faults
/// (the handler resumes after it through the `.guest_fixup` table and puts
/// vector + 1 in R11, see `firmware::probe`).
fn xsetbv(xcr: u32, value: u64) -> Result<(), u8> {
    let marker: u64;
    // SAFETY: a successful XSETBV changes which state components are
    // enabled; this program's own code uses only x87 and SSE, which every
    // accepted value keeps. A fault resumes at label 3.
    unsafe {
        asm!(
            "2: xsetbv",
            "3:",
            ".pushsection .guest_fixup, \"a\"",
            ".balign 8",
            ".quad 2b, 3b",
            ".popsection",
            in("ecx") xcr,
            in("eax") value as u32,
            in("edx") (value >> 32) as u32,
            inout("r11") 0u64 => marker,
            options(nostack),
        );
    }
    match marker {
        0 => Ok(()),
        m => Err((m - 1) as u8),
    }
}
