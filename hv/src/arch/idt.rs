//! The IDT: one stub per vector, every gate on an IST stack (the precompiled
//! `core` uses the red zone, so an interrupt must never push onto the
//! interrupted stack). Exceptions are reported with what happened, where,
//! and a backtrace, then end the run; a #GP at a known fix-up site (a probed
//! MSR) resumes there instead.

use super::gdt::{self, KERNEL_CS};
use core::arch::{asm, global_asm};
use core::ptr::addr_of;
use core::sync::atomic::{AtomicU32, Ordering};
use vmm_glue::log;

/// The registers saved by the common stub, lowest address first.
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// Vectors for which the CPU pushes an error code.
const fn has_error_code(v: u8) -> bool {
    matches!(v, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

macro_rules! stubs {
    ($($v:literal)*) => {
        global_asm!(
            ".section .text.idt_stubs, \"ax\"",
            ".balign 16",
            ".global hv_idt_stubs",
            "hv_idt_stubs:",
            $(
                ".balign 16",
                concat!(".if ", $v, " == 8 || (", $v, " >= 10 && ", $v, " <= 14) || ", $v, " == 17 || ", $v, " == 21 || ", $v, " == 29 || ", $v, " == 30"),
                "nop; nop",
                ".else",
                "push 0",
                ".endif",
                concat!("push ", $v),
                "jmp hv_trap_common",
            )*
        );
    };
}

stubs!(
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
    32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63
    64 65 66 67 68 69 70 71 72 73 74 75 76 77 78 79 80 81 82 83 84 85 86 87 88 89 90 91 92 93 94 95
    96 97 98 99 100 101 102 103 104 105 106 107 108 109 110 111 112 113 114 115 116 117 118 119
    120 121 122 123 124 125 126 127 128 129 130 131 132 133 134 135 136 137 138 139 140 141 142 143
    144 145 146 147 148 149 150 151 152 153 154 155 156 157 158 159 160 161 162 163 164 165 166 167
    168 169 170 171 172 173 174 175 176 177 178 179 180 181 182 183 184 185 186 187 188 189 190 191
    192 193 194 195 196 197 198 199 200 201 202 203 204 205 206 207 208 209 210 211 212 213 214 215
    216 217 218 219 220 221 222 223 224 225 226 227 228 229 230 231 232 233 234 235 236 237 238 239
    240 241 242 243 244 245 246 247 248 249 250 251 252 253 254 255
);

global_asm!(
    r#"
    .section .text.idt_common, "ax"
hv_trap_common:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    sub rsp, 512
    fxsave [rsp]
    call hv_trap
    fxrstor [rsp]
    add rsp, 512
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16
    iretq
    "#
);

extern "C" {
    static hv_idt_stubs: u8;
}

#[repr(C, align(16))]
struct Idt([[u64; 2]; 256]);

static mut IDT: Idt = Idt([[0; 2]; 256]);

fn ist_for(vector: u8) -> u8 {
    match vector {
        2 => gdt::IST_NMI,
        8 => gdt::IST_DOUBLE_FAULT,
        18 => gdt::IST_MACHINE_CHECK,
        0..=31 => gdt::IST_EXCEPTION,
        _ => gdt::IST_INTERRUPT,
    }
}

/// Fills and loads the IDT.
pub fn init() {
    let stubs = addr_of!(hv_idt_stubs) as u64;
    // SAFETY: runs once on the boot CPU with interrupts disabled; the gates
    // point at the stubs above, in the kernel code segment, each on an IST
    // stack that `gdt::init` has installed.
    unsafe {
        let idt = &raw mut IDT;
        for v in 0..=255u8 {
            let handler = stubs + u64::from(v) * 16;
            let low = (handler & 0xffff)
                | (u64::from(KERNEL_CS) << 16)
                | (u64::from(ist_for(v)) << 32)
                | (0x8e << 40) // present, DPL 0, interrupt gate
                | (((handler >> 16) & 0xffff) << 48);
            (*idt).0[usize::from(v)] = [low, handler >> 32];
        }
        #[repr(C, packed)]
        struct Ptr {
            limit: u16,
            base: u64,
        }
        let ptr = Ptr {
            limit: (256 * 16 - 1) as u16,
            base: idt as u64,
        };
        asm!("lidt [{}]", in(reg) addr_of!(ptr), options(readonly, nostack, preserves_flags));
    }
}

const NAMES: [&str; 32] = [
    "#DE divide error",
    "#DB debug",
    "NMI",
    "#BP breakpoint",
    "#OF overflow",
    "#BR bound range",
    "#UD invalid opcode",
    "#NM device not available",
    "#DF double fault",
    "coprocessor segment overrun",
    "#TS invalid TSS",
    "#NP segment not present",
    "#SS stack fault",
    "#GP general protection",
    "#PF page fault",
    "reserved",
    "#MF x87 floating point",
    "#AC alignment check",
    "#MC machine check",
    "#XM SIMD floating point",
    "#VE virtualization",
    "#CP control protection",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "#HV hypervisor injection",
    "#VC VMM communication",
    "#SX security",
    "reserved",
];

static DEPTH: AtomicU32 = AtomicU32::new(0);
/// NMIs seen and not reported yet.
static NMIS: AtomicU32 = AtomicU32::new(0);

/// The NMIs that arrived since the last call.
pub fn take_nmis() -> u32 {
    NMIS.swap(0, Ordering::Relaxed)
}
static SPURIOUS: AtomicU32 = AtomicU32::new(0);

#[no_mangle]
extern "C" fn hv_trap(frame: &mut TrapFrame) {
    let vector = frame.vector as u8;
    if vector == 13 {
        if let Some(resume) = super::cpu::rdmsr_fixup(frame.rip) {
            frame.rip = resume;
            return;
        }
    }
    if vector == 2 {
        // An NMI: the platform's (SERR, a watchdog) or a device's message
        // (a passed-through function can send one on a machine without
        // interrupt remapping). Nothing here depends on it: note it and go
        // on, rather than let a guest's device stop the hypervisor. Only
        // counted here (it may have interrupted the logger); the scheduler
        // reports it (`take_nmis`).
        NMIS.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if vector >= 32 {
        // The timer, the spurious vector and the device vectors handed to
        // passed-through functions are expected; anything else is noted
        // and ignored.
        if super::lapic::interrupt(vector) {
            return;
        }
        if SPURIOUS.fetch_add(1, Ordering::Relaxed) < 8 {
            log::warn!("hv: unexpected interrupt on vector {vector}; ignored");
        }
        return;
    }
    if DEPTH.fetch_add(1, Ordering::SeqCst) > 0 {
        super::serial::write_str("FATAL: exception while reporting an exception\n");
        super::exit::fatal();
    }
    report_exception(frame);
    super::exit::fatal();
}

fn report_exception(f: &TrapFrame) {
    use core::fmt::Write;
    let mut out = super::serial::Serial;
    let vector = f.vector as u8;
    let name = NAMES[usize::from(vector & 31)];
    let _ = writeln!(
        out,
        "FATAL: CPU exception {vector} ({name}) in the hypervisor"
    );
    let _ = write!(
        out,
        "FATAL:   rip {:#018x} error code {:#x}",
        f.rip, f.error
    );
    if vector == 14 {
        let e = f.error;
        let _ = write!(
            out,
            " cr2 {:#018x} ({} {}{}{})",
            super::cpu::cr2(),
            if e & 1 != 0 {
                "protection violation,"
            } else {
                "page not present,"
            },
            if e & 16 != 0 {
                "instruction fetch"
            } else if e & 2 != 0 {
                "write"
            } else {
                "read"
            },
            if e & 8 != 0 { ", reserved bit set" } else { "" },
            if e & 4 != 0 { ", user mode" } else { "" },
        );
    } else if !has_error_code(vector) {
        let _ = write!(out, " (none pushed)");
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "FATAL:   rax {:016x} rbx {:016x} rcx {:016x} rdx {:016x}\n\
         FATAL:   rsi {:016x} rdi {:016x} rbp {:016x} rsp {:016x}\n\
         FATAL:   r8  {:016x} r9  {:016x} r10 {:016x} r11 {:016x}\n\
         FATAL:   r12 {:016x} r13 {:016x} r14 {:016x} r15 {:016x}\n\
         FATAL:   cs {:#x} ss {:#x} rflags {:#x} cr0 {:#x} cr3 {:#x} cr4 {:#x}",
        f.rax,
        f.rbx,
        f.rcx,
        f.rdx,
        f.rsi,
        f.rdi,
        f.rbp,
        f.rsp,
        f.r8,
        f.r9,
        f.r10,
        f.r11,
        f.r12,
        f.r13,
        f.r14,
        f.r15,
        f.cs,
        f.ss,
        f.rflags,
        super::cpu::cr0(),
        super::cpu::cr3(),
        super::cpu::cr4(),
    );
    crate::diag::backtrace(f.rip, f.rbp);
}
