//! Logging through the `log` crate, with less code at each call.
//!
//! `log`'s macros give the logger the target, module path, file and line
//! of every message, which each call builds on the stack (and the line's
//! `Location` in read-only data): about 60 bytes per call, 200 calls in
//! the hypervisor. The console logger prints the level and the message
//! only, so these macros pass just those, through one function ([`emit`]).
//! The level checks are `log`'s, before any argument is formatted.
//!
//! A module that logs imports this one in place of the crate,
//! `use vmm_glue::log;`, and writes `log::info!(...)` as before; the
//! logger itself is installed through the `log` crate (`::log`).
//! `clippy.toml` disallows the crate's own message macros.

pub use ::log::{log_enabled, max_level, Level, STATIC_MAX_LEVEL};

/// Hands the message to the installed logger; the macros call it once the
/// level is enabled.
#[inline(never)]
pub fn emit(level: Level, args: core::fmt::Arguments<'_>) {
    ::log::logger().log(&::log::Record::builder().level(level).args(args).build());
}

/// `log!(level, "format", args...)`: the message, when `level` is enabled.
#[doc(hidden)]
#[macro_export]
macro_rules! __vmm_glue_log {
    ($level:expr, $($arg:tt)+) => {{
        let level: $crate::log::Level = $level;
        if level <= $crate::log::STATIC_MAX_LEVEL && level <= $crate::log::max_level() {
            $crate::log::emit(level, ::core::format_args!($($arg)+));
        }
    }};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __vmm_glue_error {
    ($($arg:tt)+) => { $crate::__vmm_glue_log!($crate::log::Level::Error, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __vmm_glue_warn {
    ($($arg:tt)+) => { $crate::__vmm_glue_log!($crate::log::Level::Warn, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __vmm_glue_info {
    ($($arg:tt)+) => { $crate::__vmm_glue_log!($crate::log::Level::Info, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __vmm_glue_debug {
    ($($arg:tt)+) => { $crate::__vmm_glue_log!($crate::log::Level::Debug, $($arg)+) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __vmm_glue_trace {
    ($($arg:tt)+) => { $crate::__vmm_glue_log!($crate::log::Level::Trace, $($arg)+) };
}

pub use __vmm_glue_debug as debug;
pub use __vmm_glue_error as error;
pub use __vmm_glue_info as info;
pub use __vmm_glue_trace as trace;
pub use __vmm_glue_warn as warn;

#[cfg(test)]
mod tests {
    extern crate std;

    use super::Level;
    use std::string::{String, ToString};
    use std::sync::Mutex;
    use std::vec::Vec;

    /// What the test logger received: level and message, nothing else.
    static SEEN: Mutex<Vec<(Level, String, String)>> = Mutex::new(Vec::new());

    struct Recorder;

    impl ::log::Log for Recorder {
        fn enabled(&self, _: &::log::Metadata<'_>) -> bool {
            true
        }

        fn log(&self, record: &::log::Record<'_>) {
            let line = (
                record.level(),
                record.args().to_string(),
                record.target().to_string(),
            );
            SEEN.lock().unwrap().push(line);
        }

        fn flush(&self) {}
    }

    #[test]
    fn messages_reach_the_logger_with_their_level_when_enabled() {
        static RECORDER: Recorder = Recorder;
        ::log::set_logger(&RECORDER).unwrap();
        ::log::set_max_level(::log::LevelFilter::Info);
        let n = 7;
        let mut evaluated = false;
        crate::log::info!("dom{n} started");
        crate::log::warn!("{} left", n - 1);
        crate::log::error!("failed: {}", "disk");
        crate::log::debug!("not shown {}", {
            evaluated = true;
            n
        });
        assert!(!crate::log::log_enabled!(Level::Debug));
        let seen = SEEN.lock().unwrap().clone();
        assert_eq!(
            seen,
            [
                (Level::Info, "dom7 started".into(), String::new()),
                (Level::Warn, "6 left".into(), String::new()),
                (Level::Error, "failed: disk".into(), String::new()),
            ]
        );
        assert!(
            !evaluated,
            "a disabled message's arguments are not evaluated"
        );
    }
}
