//! The C library symbols that the precompiled `core` and `alloc` expect.
//!
//! On this target `compiler_builtins` leaves `memcpy` and friends to libc,
//! and the panic machinery references unwinding symbols even with
//! `panic = "abort"`. They are written with string instructions so the
//! compiler cannot turn them back into calls to themselves.

use core::arch::asm;

/// # Safety
/// `dst` and `src` must be valid for `n` bytes and must not overlap.
#[no_mangle]
#[link_section = ".text.hot"]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // Eight bytes at a time, then the rest: an emulated CPU (QEMU's TCG)
    // runs a string instruction one element per step, so the element size
    // is the cost.
    // SAFETY: the caller guarantees both ranges are valid; DF is clear
    // (the ABI requires it on function entry); the two copies cover
    // exactly `n` bytes, the second continuing where the first stopped.
    unsafe {
        asm!("rep movsq", "mov rcx, {rest}", "rep movsb",
             rest = in(reg) n & 7,
             inout("rdi") dst => _, inout("rsi") src => _, inout("rcx") n >> 3 => _,
             options(nostack, preserves_flags));
    }
    dst
}

/// # Safety
/// `dst` and `src` must be valid for `n` bytes; they may overlap.
#[no_mangle]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize) <= (src as usize) || (dst as usize) >= (src as usize).wrapping_add(n) {
        // SAFETY: forward copy is safe when dst precedes src or they do not overlap.
        unsafe { memcpy(dst, src, n) }
    } else {
        // SAFETY: copy backwards from the last byte; DF is restored before
        // returning as the ABI requires.
        unsafe {
            asm!("std", "rep movsb", "cld",
                 inout("rdi") dst.add(n - 1) => _, inout("rsi") src.add(n - 1) => _,
                 inout("rcx") n => _, options(nostack));
        }
        dst
    }
}

/// # Safety
/// `dst` must be valid for `n` bytes.
#[no_mangle]
#[link_section = ".text.hot"]
pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    // The byte repeated across a word, stored eight bytes at a time, then
    // the rest (see `memcpy`).
    let word = u64::from(c as u8) * 0x0101_0101_0101_0101;
    // SAFETY: the caller guarantees the range is valid; the two stores
    // cover exactly `n` bytes.
    unsafe {
        asm!("rep stosq", "mov rcx, {rest}", "rep stosb",
             rest = in(reg) n & 7,
             inout("rdi") dst => _, inout("rcx") n >> 3 => _, in("rax") word,
             options(nostack, preserves_flags));
    }
    dst
}

/// # Safety
/// `a` and `b` must be valid for `n` bytes.
// Out of line: every `==` on strings and byte slices calls it (through
// `bcmp`), which would otherwise each get a copy of the loop.
#[inline(never)]
#[no_mangle]
#[link_section = ".text.hot"]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // Whole words, the first that differs ordering the two (read big
    // endian, a word compares as its bytes do). Xenstore paths share long
    // prefixes and differ near their ends, and under an emulator each turn
    // of a loop costs alike, so no turn goes to single bytes: the last
    // word overlaps the one before it (its first bytes are equal already),
    // and a short range is read as two overlapping halves the same way.
    if n >= 8 {
        let mut i = 0;
        loop {
            // The last turn reads the last eight bytes.
            let at = if i + 8 < n { i } else { n - 8 };
            // SAFETY: `at + 8 <= n` and both ranges are valid for `n`
            // bytes; unaligned loads of plain bytes.
            let (x, y) = unsafe {
                (
                    a.add(at).cast::<u64>().read_unaligned(),
                    b.add(at).cast::<u64>().read_unaligned(),
                )
            };
            if x != y {
                return order(x.swap_bytes(), y.swap_bytes());
            }
            if at == n - 8 {
                return 0;
            }
            i += 8;
        }
    }
    if n >= 4 {
        for at in [0, n - 4] {
            // SAFETY: `at + 4 <= n`, as above.
            let (x, y) = unsafe {
                (
                    a.add(at).cast::<u32>().read_unaligned(),
                    b.add(at).cast::<u32>().read_unaligned(),
                )
            };
            if x != y {
                return order(u64::from(x.swap_bytes()), u64::from(y.swap_bytes()));
            }
        }
        return 0;
    }
    for i in 0..n {
        // SAFETY: `i < n` and both ranges are valid for `n` bytes;
        // volatile, so the compiler cannot make this loop a call to
        // memcmp itself.
        let (x, y) = unsafe {
            (
                core::ptr::read_volatile(a.add(i)),
                core::ptr::read_volatile(b.add(i)),
            )
        };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}

/// The sign of `x - y` as memcmp returns it.
#[inline(always)]
fn order(x: u64, y: u64) -> i32 {
    if x < y {
        -1
    } else {
        1
    }
}

/// # Safety
/// As for [`memcmp`].
#[inline(never)]
#[no_mangle]
#[link_section = ".text.hot"]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}

/// Never called: panics abort. Referenced by the precompiled `core`.
#[no_mangle]
pub extern "C" fn _Unwind_Resume() -> ! {
    crate::arch::cpu::halt_forever()
}

/// Never called: panics abort. Referenced by the precompiled `core`.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}
