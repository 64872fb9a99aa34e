//! Running emulators: time limits, process groups, following a log file.

use std::ffi::{c_int, c_ulong, OsStr};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod sys {
    use std::ffi::c_int;

    extern "C" {
        pub fn kill(pid: c_int, signal: c_int) -> c_int;
        pub fn prctl(option: c_int, ...) -> c_int;
    }

    pub const SIGKILL: c_int = 9;
    pub const PR_SET_PDEATHSIG: c_int = 1;
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It exited with this status.
    Code(i32),
    /// A signal it did not get from us ended it.
    Signal(i32),
    /// It ran past its time limit and was killed.
    TimedOut(Duration),
}

impl Ended {
    fn from_status(status: ExitStatus) -> Ended {
        match (status.code(), status.signal()) {
            (Some(code), _) => Ended::Code(code),
            (None, Some(signal)) => Ended::Signal(signal),
            (None, None) => Ended::Code(-1),
        }
    }
}

/// Starts the process of `cmd` in a process group of its own (so a time
/// limit can kill everything it started) that the kernel kills when the
/// thread that started it dies (so a Ctrl-C of `cargo xtask` leaves no
/// emulator behind).
pub fn isolate(cmd: &mut Command) {
    cmd.process_group(0);
    let die_with_parent = || {
        // SAFETY: PR_SET_PDEATHSIG takes one integer argument, a signal
        // number, and only changes an attribute of the calling process.
        let r = unsafe { sys::prctl(sys::PR_SET_PDEATHSIG, sys::SIGKILL as c_ulong) };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    // SAFETY: the closure runs in the child between fork and exec, where
    // only async-signal-safe calls are allowed: it makes one system call
    // (prctl), allocates nothing and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(die_with_parent);
    }
}

/// Kills the process group led by `pid` (started with [`isolate`]).
fn kill_group(pid: u32) {
    let Ok(pid) = c_int::try_from(pid) else {
        return;
    };
    // SAFETY: kill() only sends a signal; a negative pid names the process
    // group that `isolate` made for this child, and nothing else.
    unsafe {
        sys::kill(-pid, sys::SIGKILL);
    }
}

/// Waits for `child` for at most `limit`, then kills it: its whole process
/// group when `own_group` (it was started with [`isolate`]), else just it.
pub fn wait(child: &mut Child, limit: Option<Duration>, own_group: bool) -> io::Result<Ended> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Ended::from_status(status));
        }
        if let Some(limit) = limit {
            if start.elapsed() >= limit {
                if own_group {
                    kill_group(child.id());
                } else {
                    child.kill()?;
                }
                child.wait()?;
                return Ok(Ended::TimedOut(limit));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Copies what is appended to `path` to `out` until `stop` is set, then
/// copies the rest. The file may not exist yet when this starts.
pub fn follow(path: &Path, stop: &AtomicBool, out: &mut dyn Write) {
    let mut file: Option<File> = None;
    let mut buf = [0u8; 4096];
    loop {
        let stopping = stop.load(Ordering::Acquire);
        if file.is_none() {
            file = File::open(path).ok();
        }
        if let Some(f) = file.as_mut() {
            while let Ok(n) = f.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if out.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            // Output to a terminal may be lost on a Ctrl-C, so never hold it.
            let _ = out.flush();
        }
        if stopping {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A program and its arguments as one shell command that can be pasted.
pub fn shell_line<S: AsRef<OsStr>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| shell_quote(&w.as_ref().to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.,:/=+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    #[test]
    fn shell_line_quotes_what_a_shell_would_change() {
        assert_eq!(
            shell_line(&["qemu", "-append", "a=(1) b", "it's"]),
            r"qemu -append 'a=(1) b' 'it'\''s'"
        );
    }

    #[test]
    fn wait_reports_exit_codes() {
        let mut child = Command::new("sh")
            .args(["-c", "exit 3"])
            .spawn()
            .expect("sh");
        let ended = wait(&mut child, Some(Duration::from_secs(20)), false).expect("wait");
        assert_eq!(ended, Ended::Code(3));
    }

    #[test]
    fn wait_kills_the_whole_group_after_the_limit() {
        // The shell starts a grandchild that would hold stdout open.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 30 & sleep 30"])
            .stdout(Stdio::piped())
            .stdin(Stdio::null());
        isolate(&mut cmd);
        let mut child = cmd.spawn().expect("sh");
        let mut stdout = child.stdout.take().expect("stdout");
        let start = Instant::now();
        let ended = wait(&mut child, Some(Duration::from_millis(200)), true).expect("wait");
        assert_eq!(ended, Ended::TimedOut(Duration::from_millis(200)));
        // End of file only once every process of the group is gone.
        let mut rest = Vec::new();
        stdout.read_to_end(&mut rest).expect("read");
        assert!(start.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn follow_copies_the_file_until_stopped() {
        let dir = std::env::temp_dir().join(format!("ci-follow-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("serial.log");
        std::fs::write(&path, "one\ntwo").expect("write");
        let stop = AtomicBool::new(true);
        let mut out = Vec::new();
        follow(&path, &stop, &mut out);
        assert_eq!(out, b"one\ntwo");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
