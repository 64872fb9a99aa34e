//! `pcibench`: what PCI passthrough costs a Linux guest, measured from
//! inside it (see the crate's documentation and `guest_tools::args::USAGE`).
//!
//! Each operation is timed with `Instant` (`clock_gettime(CLOCK_MONOTONIC)`),
//! one clock read per operation: the time between two reads is one
//! operation and the loop around it. The result is one line on stdout
//! (`guest_tools::report`); errors go to stderr with a failure status.
#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use guest_tools::args::{self, Command};
use guest_tools::stats::{mb_per_second, Summary};
use guest_tools::Report;

/// `O_DIRECT` on x86-64 Linux (`asm-generic/fcntl.h` is not used by x86:
/// `arch/x86/include/uapi/asm/fcntl.h` defines it as 040000 octal).
const O_DIRECT: i32 = 0o40000;

/// The size of one NVMe read.
const BLOCK: usize = 1 << 20;

/// The alignment `O_DIRECT` asks of the buffer (a page covers every
/// logical block size).
const ALIGN: usize = 4096;

/// Times `ops` calls of `op`, one clock read per call.
fn timed(ops: u64, mut op: impl FnMut() -> Result<(), String>) -> Result<Summary, String> {
    let mut each = Vec::with_capacity(usize::try_from(ops).unwrap_or(0));
    let start = Instant::now();
    let mut last = start;
    for _ in 0..ops {
        op()?;
        let now = Instant::now();
        each.push(now - last);
        last = now;
    }
    Summary::of(&mut each, last - start).ok_or_else(|| "nothing was measured".to_string())
}

fn config(reads: u64, device: &str) -> Result<Report, String> {
    let path = Command::config_path(device);
    let file = File::open(&path).map_err(|e| format!("cannot open {path}: {e}"))?;
    let mut word = [0u8; 4];
    let summary = timed(reads, || match file.read_at(&mut word, 0) {
        Ok(4) => Ok(()),
        Ok(n) => Err(format!("{path}: read {n} bytes, expected 4")),
        Err(e) => Err(format!("{path}: {e}")),
    })?;
    Ok(Report::Config {
        device: device.to_string(),
        summary,
    })
}

fn nvme(mib: u64, device: &str) -> Result<Report, String> {
    let open = |flags: i32| {
        OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(device)
    };
    let (file, direct) = match open(O_DIRECT) {
        Ok(f) => (f, true),
        Err(_) => (
            open(0).map_err(|e| format!("cannot open {device}: {e}"))?,
            false,
        ),
    };
    let mut storage = vec![0u8; BLOCK + ALIGN];
    let at = storage.as_ptr().align_offset(ALIGN).min(ALIGN);
    let buf = &mut storage[at..at + BLOCK];
    let start = Instant::now();
    let mut offset = 0u64;
    for _ in 0..mib {
        let mut done = 0;
        while done < BLOCK {
            let n = file
                .read_at(&mut buf[done..], offset + done as u64)
                .map_err(|e| format!("{device} at byte {}: {e}", offset + done as u64))?;
            if n == 0 {
                return Err(format!(
                    "{device} ends at byte {}, before {mib} MiB",
                    offset + done as u64
                ));
            }
            done += n;
        }
        offset += BLOCK as u64;
    }
    let elapsed: Duration = start.elapsed();
    Ok(Report::Nvme {
        device: device.to_string(),
        mib,
        direct,
        seconds: elapsed.as_secs_f64(),
        mb_per_s: mb_per_second(offset, elapsed),
    })
}

fn syscall(calls: u64) -> Result<Report, String> {
    let summary = timed(calls, || {
        std::hint::black_box(std::os::unix::process::parent_id());
        Ok(())
    })?;
    Ok(Report::Syscall { summary })
}

fn main() -> ExitCode {
    let words: Vec<String> = std::env::args().skip(1).collect();
    let command = match args::parse(&words) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pcibench: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Command::Config { reads, device } => config(reads, &device),
        Command::Nvme { mib, device } => nvme(mib, &device),
        Command::Syscall { calls } => syscall(calls),
    };
    match result {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pcibench: {e}");
            ExitCode::FAILURE
        }
    }
}
