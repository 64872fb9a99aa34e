//! Diagnostics: the console logger, the panic handler and backtraces.

use crate::arch::{self, serial::Serial};
use core::fmt::Write;
use hv::cmdline::LogLevel;

struct Console;

static LOGGER: Console = Console;
static LOCK: spin::Mutex<()> = spin::Mutex::new(());

impl log::Log for Console {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let prefix = match record.level() {
            log::Level::Error => "ERROR: ",
            log::Level::Warn => "WARNING: ",
            log::Level::Info => "",
            log::Level::Debug => "debug: ",
            log::Level::Trace => "trace: ",
        };
        // A panic while logging must still print: never wait forever.
        let guard = (0..1_000_000).find_map(|_| LOCK.try_lock());
        #[cfg(feature = "test-hooks")]
        stamp(&mut Serial);
        let _ = writeln!(Serial, "{prefix}{}", record.args());
        drop(guard);
    }

    fn flush(&self) {}
}

/// `debug.stamps`: every log line, and the shell's replies, begin with
/// the system time (the clock guests read through pvclock).
#[cfg(feature = "test-hooks")]
static STAMPS: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Turns `debug.stamps` on or off.
#[cfg(feature = "test-hooks")]
pub fn set_stamps(on: bool) {
    STAMPS.store(on, core::sync::atomic::Ordering::Relaxed);
}

/// Whether `debug.stamps` is on.
#[cfg(feature = "test-hooks")]
pub fn stamps() -> bool {
    STAMPS.load(core::sync::atomic::Ordering::Relaxed)
}

/// With `debug.stamps`, writes the system time to `out` as seconds and
/// microseconds in brackets (`[    1.234567] `, the format of Xen's
/// `console_timestamps=boot`).
#[cfg(feature = "test-hooks")]
pub fn stamp(out: &mut impl Write) {
    if stamps() {
        let us = arch::time::now_ns() / 1000;
        let _ = write!(out, "[{:5}.{:06}] ", us / 1_000_000, us % 1_000_000);
    }
}

/// Installs the console logger at `info`.
pub fn init_logger() {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
}

/// Applies `loglvl=`.
pub fn set_level(level: LogLevel) {
    log::set_max_level(match level {
        LogLevel::Error => log::LevelFilter::Error,
        LogLevel::Warn => log::LevelFilter::Warn,
        LogLevel::Info => log::LevelFilter::Info,
        LogLevel::Debug => log::LevelFilter::Debug,
        LogLevel::Trace => log::LevelFilter::Trace,
    });
}

/// Prints the return addresses found by following the frame-pointer chain
/// from `rbp` (every function keeps one: `-C force-frame-pointers`).
pub fn backtrace(rip: u64, rbp: u64) {
    let mut out = Serial;
    let _ = write!(out, "FATAL:   backtrace:");
    if rip != 0 {
        let _ = write!(out, " {rip:#x}");
    }
    arch::image::walk_frames(rbp, 16, |ret| {
        let _ = write!(Serial, " {ret:#x}");
    });
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "FATAL:   (addr2line -f -C -e target/metal/x86_64-unknown-linux-gnu/release/hv ADDRESS... names them)"
    );
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut out = Serial;
    let _ = write!(out, "FATAL: hypervisor panic");
    if let Some(loc) = info.location() {
        let _ = write!(out, " at {}:{}", loc.file(), loc.line());
    }
    let _ = writeln!(out, ": {}", info.message());
    backtrace(0, arch::cpu::frame_pointer());
    arch::exit::fatal()
}
