//! The COM1 console (16550 UART at I/O port 0x3F8, 115200 8N1).

use super::cpu::{inb, outb};
use core::sync::atomic::{AtomicBool, Ordering};

const COM1: u16 = 0x3f8;
static PRESENT: AtomicBool = AtomicBool::new(false);

/// Programs COM1. A machine without one (the line status register floats
/// to all-ones) is remembered so writes become no-ops instead of spinning.
pub fn init() {
    outb(COM1 + 1, 0x00); // no interrupts
    outb(COM1 + 3, 0x80); // DLAB
    outb(COM1, 0x01); // divisor 1: 115200 baud
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03); // 8N1
    outb(COM1 + 2, 0xc7); // FIFO on, cleared
    outb(COM1 + 4, 0x0b); // DTR, RTS, OUT2
    PRESENT.store(inb(COM1 + 5) != 0xff, Ordering::Relaxed);
}

/// Writes one byte, waiting (boundedly) for the transmitter.
pub fn write_byte(b: u8) {
    if !PRESENT.load(Ordering::Relaxed) {
        return;
    }
    for _ in 0..100_000 {
        if inb(COM1 + 5) & 0x20 != 0 {
            break;
        }
    }
    outb(COM1, b);
}

/// A byte received on the line, if one is waiting (polled: the UART's
/// interrupts stay off).
pub fn read_byte() -> Option<u8> {
    if !PRESENT.load(Ordering::Relaxed) || inb(COM1 + 5) & 1 == 0 {
        return None;
    }
    Some(inb(COM1))
}

/// Waits (boundedly) until the UART has sent every byte, so a run that ends
/// right after a message does not cut it off.
pub fn flush() {
    if !PRESENT.load(Ordering::Relaxed) {
        return;
    }
    for _ in 0..1_000_000 {
        if inb(COM1 + 5) & 0x40 != 0 {
            break;
        }
    }
}

/// Writes `s`, turning `\n` into `\r\n`.
pub fn write_str(s: &str) {
    for b in s.bytes() {
        if b == b'\n' {
            write_byte(b'\r');
        }
        write_byte(b);
    }
}

/// A `core::fmt::Write` sink for the console.
#[derive(Debug)]
pub struct Serial;

impl core::fmt::Write for Serial {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        write_str(s);
        Ok(())
    }
}
