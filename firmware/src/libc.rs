//! The C library symbols the precompiled `core` calls: on this target
//! `compiler_builtins` leaves `memcpy` and friends to libc, and the panic
//! machinery refers to unwinding symbols even with `panic = "abort"`.
//!
//! The copies use string instructions: a Rust loop here could be turned
//! back into a call to the very function being defined.

use core::arch::asm;

/// # Safety
/// `dst` and `src` must be valid for `n` bytes and must not overlap.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees both ranges; the ABI guarantees DF = 0.
    unsafe {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") dst => _, inout("rsi") src => _,
             options(nostack, preserves_flags));
    }
    dst
}

/// # Safety
/// `dst` and `src` must be valid for `n` bytes; they may overlap.
#[no_mangle]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    let (d, s) = (dst as usize, src as usize);
    if n == 0 || d <= s || d >= s + n {
        // SAFETY: a forward copy never reads a byte it has already written
        // when the destination starts at or below the source, or past it.
        return unsafe { memcpy(dst, src, n) };
    }
    // SAFETY: copy from the last byte down; DF is cleared again before
    // returning, as the ABI requires.
    unsafe {
        asm!("std", "rep movsb", "cld",
             inout("rcx") n => _, inout("rdi") dst.add(n - 1) => _, inout("rsi") src.add(n - 1) => _,
             options(nostack));
    }
    dst
}

/// # Safety
/// `dst` must be valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees the range; DF = 0.
    unsafe {
        asm!("rep stosb", inout("rcx") n => _, inout("rdi") dst => _, in("al") c as u8,
             options(nostack, preserves_flags));
    }
    dst
}

/// # Safety
/// `a` and `b` must be valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: i < n and both ranges are valid for n bytes; volatile
        // keeps this loop from being recognised as a call to memcmp.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}

/// # Safety
/// As for [`memcmp`].
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: the same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}

/// Never called: panics abort. Referenced by the precompiled `core`.
#[no_mangle]
pub extern "C" fn _Unwind_Resume() -> ! {
    crate::cpu::halt_forever()
}

/// Never called: panics abort. Referenced by the precompiled `core`.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}
