//! A guest that keeps the CPU busy: it prints `ticker: tick N` for N in
//! 0..20 with a busy wait of `spin=CYCLES` TSC cycles between the lines
//! (20,000,000 by default), then `ticker: done` and powers off. It never
//! gives up the CPU on its own, so two of them interleave only if the
//! hypervisor's timer ends their time slices.
//!
//! With `msrs=TAG` (1-255) it first loads the SYSCALL MSRs and
//! KERNEL_GS_BASE with values made from TAG, and checks after every tick
//! that they still hold them: another domain's values must not show
//! through when the two share the CPU.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use firmware::{cpu, println, shutdown, Gpa, ShutdownReason, StartInfo};

/// The values for `msrs=TAG`, in [`cpu::SYSCALL_MSRS`] order (canonical
/// addresses where the MSR takes one, FMASK's upper half clear).
fn msr_values(tag: u64) -> [u64; 5] {
    [
        (tag << 48) | (tag << 32),
        0xffff_8000_0000_0000 + tag * 0x1000,
        0xffff_8000_0000_0010 + tag * 0x1000,
        tag << 8,
        0x0000_7000_0000_0000 + tag * 0x10_0000,
    ]
}

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
    let tag = line
        .split_ascii_whitespace()
        .find_map(|w| w.strip_prefix("msrs="))
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|t| (1..=255).contains(t));
    if let Some(t) = tag {
        for (&m, v) in cpu::SYSCALL_MSRS.iter().zip(msr_values(t)) {
            cpu::write_syscall_msr(m, v);
        }
    }
    let mut kept = true;
    for n in 0..TICKS {
        println!("ticker: tick {n}");
        let start = cpu::rdtsc();
        while cpu::rdtsc().wrapping_sub(start) < spin {
            core::hint::spin_loop();
        }
        if let Some(t) = tag {
            for (&m, want) in cpu::SYSCALL_MSRS.iter().zip(msr_values(t)) {
                let got = cpu::rdmsr(m);
                if got != want {
                    println!("ticker: MSR {m:#x} is {got:#x} after tick {n}, expected {want:#x}");
                    kept = false;
                }
            }
        }
    }
    if tag.is_some() {
        println!(
            "ticker: syscall MSRs {}",
            if kept {
                "kept across every tick"
            } else {
                "CHANGED"
            }
        );
    }
    println!("ticker: done");
    shutdown(ShutdownReason::Poweroff)
}
