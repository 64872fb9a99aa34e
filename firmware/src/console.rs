//! The guest console: `console_io(CONSOLEIO_write)` under Xen, QEMU's
//! debug console (port 0xE9, `-debugcon`) without it.
//!
//! [`crate::print!`] and [`crate::println!`] format into a buffer on the
//! stack and write it with as few hypercalls as possible (one per line up
//! to [`LINE`] bytes), so lines from an exception handler cannot interleave
//! with a half-written line in a hypervisor's log.

use core::fmt;

use crate::hypervisor;

/// QEMU's debug console port.
pub const DEBUGCON_PORT: u16 = 0xe9;
/// Bytes buffered before a write.
pub const LINE: usize = 256;

/// Writes `s` to the console.
pub fn write(s: &str) {
    write_bytes(s.as_bytes());
}

/// Writes raw bytes to the console. Returns the hypercall's result under
/// Xen (negative: an errno), 0 on the debug console.
pub fn write_bytes(bytes: &[u8]) -> i64 {
    if hypervisor::is_xen() {
        return hypervisor::console_write(bytes);
    }
    for &b in bytes {
        // SAFETY: the debug console port only takes bytes to print (and on
        // a machine without one, nothing is there).
        unsafe { crate::cpu::outb(DEBUGCON_PORT, b) };
    }
    0
}

/// A [`fmt::Write`] that buffers up to [`LINE`] bytes per console write.
#[derive(Debug)]
pub struct Writer {
    buf: [u8; LINE],
    len: usize,
}

impl Writer {
    /// An empty writer.
    pub const fn new() -> Writer {
        Writer {
            buf: [0; LINE],
            len: 0,
        }
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) {
        if self.len > 0 {
            write_bytes(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl Default for Writer {
    fn default() -> Self {
        Writer::new()
    }
}

impl fmt::Write for Writer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s.as_bytes();
        while !rest.is_empty() {
            if self.len == LINE {
                self.flush();
            }
            let n = rest.len().min(LINE - self.len);
            self.buf[self.len..self.len + n].copy_from_slice(&rest[..n]);
            self.len += n;
            rest = &rest[n..];
        }
        Ok(())
    }
}

/// What [`crate::print!`] calls.
pub fn print_fmt(args: fmt::Arguments<'_>) {
    let mut w = Writer::new();
    // Writer::write_str never fails.
    let _ = fmt::Write::write_fmt(&mut w, args);
    w.flush();
}

/// Prints to the guest console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::console::print_fmt(::core::format_args!($($arg)*))
    };
}

/// Prints a line to the guest console.
#[macro_export]
macro_rules! println {
    () => {
        $crate::console::print_fmt(::core::format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::console::print_fmt(::core::format_args!(
            "{}\n",
            ::core::format_args!($($arg)*)
        ))
    };
}
