//! A guest that keeps the CPU busy: it prints `ticker: tick N` for N in
//! 0..20 with a busy wait of `spin=CYCLES` TSC cycles between the lines
//! (20,000,000 by default), then `ticker: done` and powers off. It never
//! gives up the CPU on its own, so two of them interleave only if the
//! hypervisor's timer ends their time slices.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use firmware::{cpu, println, shutdown, Gpa, ShutdownReason, StartInfo};

firmware::guest_main!(main);

const TICKS: u32 = 20;
const DEFAULT_SPIN: u64 = 20_000_000;

fn main(start_info: Gpa) -> ! {
    let info = StartInfo::read(start_info).ok();
    let cmdline = info.as_ref().and_then(|i| i.cmdline());
    let line = cmdline.as_ref().and_then(|c| c.as_str()).unwrap_or("");
    let spin = line
        .split_ascii_whitespace()
        .find_map(|w| w.strip_prefix("spin="))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(DEFAULT_SPIN);
    for n in 0..TICKS {
        println!("ticker: tick {n}");
        let start = cpu::rdtsc();
        while cpu::rdtsc().wrapping_sub(start) < spin {
            core::hint::spin_loop();
        }
    }
    println!("ticker: done");
    shutdown(ShutdownReason::Poweroff)
}
