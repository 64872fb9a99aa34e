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
        let _ = writeln!(Serial, "{prefix}{}", record.args());
        drop(guard);
    }

    fn flush(&self) {}
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
