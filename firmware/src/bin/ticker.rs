//! A guest that keeps the CPU busy: it prints `ticker: tick N` for N in
//! 0..20 (`ticks=N` for another count) with a busy wait of `spin=CYCLES`
//! TSC cycles between the lines (20,000,000 by default), then `ticker:
//! done` and powers off. It never
//! gives up the CPU on its own, so two of them interleave only if the
//! hypervisor's timer ends their time slices.
//!
//! With `msrs=TAG` (1-255) it first loads the SYSCALL MSRs and
//! KERNEL_GS_BASE with values made from TAG, and checks after every tick
//! that they still hold them: another domain's values must not show
//! through when the two share the CPU.
//!
//! With `guard=N` (KiB, at most [`GUARD_MAX_KIB`]) it is the victim of the
//! attack scenarios: before the first tick it fills N KiB of its RAM (the
//! pages right after its image, from guest-physical 1 MiB up) with a
//! pattern made from its domain id, checks the whole region after every
//! tick and once more at the end, and prints `ticker: guard: N KiB intact
//! after K checks` or, at the first word that differs, `ticker: guard:
//! CHANGED at offset ...` and `[test] ticker: guard: FAIL`.
//!
//! With `xs` as well it reads every node under its xenstore home (names
//! and values, three levels deep) before the first tick and again at the
//! end, and prints `ticker: xenstore: N nodes under /local/domain/ID
//! unchanged` when both walks succeed and agree: another domain could
//! not change them, and the store still answers.
//!
//! Its work is measured in its own time: the busy wait reads the TSC in
//! every iteration, and a step between two reads longer than [`GAP`]
//! cycles is time the vCPU did not run (another domain's slice, or the
//! hypervisor's work between two of its instructions), not its own. After
//! every tick it prints `ticker: tick N: L loops in O of T TSC cycles`:
//! the iterations, its own cycles and all cycles of the tick, so that `L /
//! O` is its work rate whoever else shares the CPU, and `O / T` its share
//! of the CPU. At the end it prints the rate over the whole run, `ticker:
//! rate: L loops/ms over M ms of its own time (S% of the CPU)`, from its
//! pvclock time and the share.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::sync::atomic::Ordering;

use firmware::xen::page::{PageBuf, PAGE_SIZE};
use firmware::xen::pcifront::Text;
use firmware::xen::xenstore::{msg, Client, XsError};
use firmware::xen::{self, shared};
use firmware::{cpu, println, report, shutdown, Gpa, ShutdownReason, StartInfo};

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

const TICKS: u64 = 20;
const DEFAULT_SPIN: u64 = 20_000_000;
/// A step between two TSC reads of the busy wait longer than this many
/// cycles (a few tenths of a millisecond at the TSC rates of today, below
/// the hypervisor's 2 ms time slice; one iteration takes well under a
/// microsecond) is time the vCPU did not run.
const GAP: u64 = 1_000_000;

/// The largest `guard=` region.
const GUARD_MAX_KIB: usize = 4096;
const GUARD_PAGES: usize = GUARD_MAX_KIB * 1024 / PAGE_SIZE;

/// The guarded pages (in `.bss`, so right after the image).
static GUARD: [PageBuf; GUARD_PAGES] = [const { PageBuf::new() }; GUARD_PAGES];

/// The guard pattern: word `i` of the region of domain `dom`, different
/// for every word and every domain.
fn pattern(dom: u64, i: u64) -> u64 {
    (dom << 48 | i).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5a5a_0000_0000_5a5a
}

/// The guarded region: its pages and the domain id its pattern is made
/// from.
struct Guard {
    pages: usize,
    dom: u64,
}

impl Guard {
    /// The `(page, word offset, global word index)` of every word.
    fn words(&self) -> impl Iterator<Item = (usize, usize, u64)> {
        (0..self.pages).flat_map(|p| {
            (0..PAGE_SIZE / 8).map(move |w| (p, w * 8, (p * PAGE_SIZE / 8 + w) as u64))
        })
    }

    fn fill(&self) {
        for (p, off, i) in self.words() {
            GUARD[p]
                .page()
                .u64(off)
                .store(pattern(self.dom, i), Ordering::Relaxed);
        }
    }

    /// The byte offset and value of the first word that differs.
    fn first_change(&self) -> Option<(usize, u64, u64)> {
        self.words().find_map(|(p, off, i)| {
            let got = GUARD[p].page().u64(off).load(Ordering::Relaxed);
            let want = pattern(self.dom, i);
            (got != want).then_some((p * PAGE_SIZE + off, got, want))
        })
    }
}

/// The node count and an FNV-1a digest of the names and values of the
/// tree at `path`, `depth` levels down.
fn walk(xs: &mut Client, path: &Text, depth: u32, acc: &mut (u32, u64)) -> Result<(), XsError> {
    mix(xs, path, acc)?;
    if depth == 0 {
        return Ok(());
    }
    let children = xs.on_path(msg::DIRECTORY, 0, path.as_str())?;
    for name in children.strings() {
        walk(
            xs,
            &Text::new(format_args!("{path}/{name}")),
            depth - 1,
            acc,
        )?;
    }
    Ok(())
}

/// Adds the node at `path` to the count and digest (out of line, so that
/// its reply buffer is not on the stack of every level of [`walk`]).
#[inline(never)]
fn mix(xs: &mut Client, path: &Text, acc: &mut (u32, u64)) -> Result<(), XsError> {
    let value = xs.read(0, path.as_str())?;
    for b in path
        .as_str()
        .bytes()
        .chain([0])
        .chain(value.body().iter().copied())
    {
        acc.1 = (acc.1 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    acc.0 += 1;
    Ok(())
}

/// [`walk`] of this domain's home.
fn home_digest(dom: u64) -> Result<(u32, u64), XsError> {
    let mut xs = Client::open(5000).map_err(|_| XsError::Timeout)?;
    let mut acc = (0, 0xcbf2_9ce4_8422_2325);
    walk(
        &mut xs,
        &Text::new(format_args!("/local/domain/{dom}")),
        4,
        &mut acc,
    )?;
    Ok(acc)
}

fn main(start_info: Gpa) -> ! {
    let info = StartInfo::read(start_info).ok();
    let cmdline = info.as_ref().and_then(|i| i.cmdline());
    let line = cmdline.as_ref().and_then(|c| c.as_str()).unwrap_or("");
    let word = |key: &str| {
        line.split_ascii_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|n| n.parse::<u64>().ok())
    };
    let spin = word("spin=").unwrap_or(DEFAULT_SPIN);
    let ticks = word("ticks=").unwrap_or(TICKS);
    let tag = word("msrs=").filter(|t| (1..=255).contains(t));
    if let Some(t) = tag {
        for (&m, v) in cpu::SYSCALL_MSRS.iter().zip(msr_values(t)) {
            cpu::write_syscall_msr(m, v);
        }
    }
    let dom = u64::from(xen::domid().unwrap_or(0));
    let guard = word("guard=").map(|kib| Guard {
        pages: (kib as usize).min(GUARD_MAX_KIB) * 1024 / PAGE_SIZE,
        dom,
    });
    if let Some(g) = &guard {
        g.fill();
        println!(
            "ticker: guard: {} KiB at {:#x} filled for domain {}",
            g.pages * PAGE_SIZE / 1024,
            GUARD[0].page().addr(),
            g.dom
        );
    }
    let xs_before = line
        .split_ascii_whitespace()
        .any(|w| w == "xs")
        .then(|| home_digest(dom));
    if let Some(before) = &xs_before {
        println!("ticker: xenstore: home read: {before:?}");
    }
    let clock = firmware::hypervisor::xen().is_some() && shared::map() == 0;
    let t0 = shared::now();
    let mut kept = true;
    let mut changed = None;
    let mut checks = 0u32;
    let (mut loops, mut own, mut all) = (0u64, 0u64, 0u64);
    for n in 0..ticks {
        println!("ticker: tick {n}");
        let start = cpu::rdtsc();
        let (mut last, mut l, mut o) = (start, 0u64, 0u64);
        loop {
            let t = cpu::rdtsc();
            let step = t.wrapping_sub(last);
            if step < GAP {
                o += step;
            }
            last = t;
            if t.wrapping_sub(start) >= spin {
                break;
            }
            l += 1;
            core::hint::spin_loop();
        }
        let t = last.wrapping_sub(start);
        println!("ticker: tick {n}: {l} loops in {o} of {t} TSC cycles");
        (loops, own, all) = (loops + l, own + o, all + t);
        if let Some(t) = tag {
            for (&m, want) in cpu::SYSCALL_MSRS.iter().zip(msr_values(t)) {
                let got = cpu::rdmsr(m);
                if got != want {
                    println!("ticker: MSR {m:#x} is {got:#x} after tick {n}, expected {want:#x}");
                    kept = false;
                }
            }
        }
        if let Some(g) = guard.as_ref().filter(|_| changed.is_none()) {
            checks += 1;
            changed = g.first_change();
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
    if let Some(g) = &guard {
        if changed.is_none() {
            checks += 1;
            changed = g.first_change();
        }
        match changed {
            None => println!(
                "ticker: guard: {} KiB intact after {checks} checks",
                g.pages * PAGE_SIZE / 1024
            ),
            Some((off, got, want)) => {
                println!("ticker: guard: CHANGED at offset {off:#x}: {got:#x}, expected {want:#x}");
                report::check("ticker: guard", false);
            }
        }
    }
    if let Some(before) = xs_before {
        let after = home_digest(dom);
        match (before, after) {
            (Ok(b), Ok(a)) if a == b => println!(
                "ticker: xenstore: {} nodes under /local/domain/{dom} unchanged",
                a.0
            ),
            _ => {
                println!("ticker: xenstore: home CHANGED: {before:?} then {after:?}");
                report::check("ticker: xenstore home", false);
            }
        }
    }
    if let (true, Some(t0), Some(t1)) = (clock, t0, shared::now()) {
        // Its own share of the pvclock time the ticks took.
        let ms = (t1.saturating_sub(t0) / 1_000_000 * own / all.max(1)).max(1);
        println!(
            "ticker: rate: {} loops/ms over {ms} ms of its own time ({}% of the CPU)",
            loops / ms,
            own * 100 / all.max(1)
        );
    }
    println!("ticker: done");
    shutdown(ShutdownReason::Poweroff)
}
