//! Hypercall round trips, timed by the guest's TSC: `iterations=N` on the
//! command line (default 10000) calls `xen_version` N times through the
//! hypercall page and N times directly, prints the cycles per call, and
//! powers off. `cargo xtask bench` runs it with N and with 0 to take the
//! host wall time per call from the difference.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use firmware::hypervisor::{xen_version, xen_version_direct};
use firmware::{cpu, println, shutdown, Gpa, ShutdownReason, StartInfo};

firmware::guest_main!(main);

fn iterations(start_info: Gpa) -> u64 {
    let Ok(info) = StartInfo::read(start_info) else {
        return 10_000;
    };
    let Some(line) = info.cmdline() else {
        return 10_000;
    };
    line.as_str()
        .unwrap_or("")
        .split_ascii_whitespace()
        .find_map(|w| w.strip_prefix("iterations=")?.parse().ok())
        .unwrap_or(10_000)
}

fn main(start_info: Gpa) -> ! {
    let n = iterations(start_info);
    type Call = fn() -> i64;
    let calls: [(&str, Call); 2] = [("page", xen_version), ("direct", xen_version_direct)];
    for (how, call) in calls {
        let mut bad = 0u64;
        let t0 = cpu::rdtsc();
        for _ in 0..n {
            if call() < 0 {
                bad += 1;
            }
        }
        let cycles = cpu::rdtsc().wrapping_sub(t0);
        let each = cycles.checked_div(n).unwrap_or(0);
        println!("bench: {how}: {n} xen_version calls, {bad} failed, {cycles} TSC cycles, {each} per call");
    }
    shutdown(ShutdownReason::Poweroff)
}
