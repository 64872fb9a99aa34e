//! Xen ABI latencies, timed by the guest's TSC, for `cargo xtask bench`:
//!
//! - `evtchn=N`: N event channel round trips on a loopback interdomain
//!   pair (alloc_unbound(self, self) + bind_interdomain): TSC, then
//!   `EVTCHNOP_send` issued with interrupts enabled (the upcall is due on
//!   the hypercall's return), then until the upcall handler has seen the
//!   event on the other end, then TSC.
//! - `xenstore=M`: M `XS_READ`s of the relative node `name` through the
//!   ring: the request written whole, one notification of the xenstore
//!   channel, the reply read as soon as it is there (waiting by
//!   `SCHEDOP_yield`, counted, if it is not).
//! - `paired=R`: R rounds of a `xen_version(0)` with the hypervisor's
//!   instruction (one world switch), an event channel round trip and a
//!   xenstore read, one of each per round, each timed alone: the
//!   machine's load moves the three alike, so their ratios hold where
//!   separate runs can land in a faster or slower stretch of it.
//!
//! The setup (shared_info, the callback vector, the pair, the xenstore
//! ring) is the same whatever N and M are, so that the hypervisor's exit
//! counts of a run with 0 and 0 are the baseline to subtract. Each phase
//! prints one line (median and mean cycles per operation), then the guest
//! powers off.
#![no_std]
#![no_main]

use core::arch::asm;
use core::sync::atomic::{fence, Ordering};

use firmware::xen::layout::{xenstore_ring as xr, DOMID_SELF};
use firmware::xen::xenstore::{msg, Client};
use firmware::xen::{evtchn, nr, shared};
use firmware::{cpu, hypervisor, println, shutdown, Gpa, ShutdownReason, StartInfo};

firmware::guest_main!(main);

/// Samples kept per phase (larger N are cut to this).
const MAX: usize = 20_000;
/// Interrupt windows to wait for an upcall that was not taken at once.
const SPINS: u32 = 10_000;
/// Yields to wait for a xenstore reply that is not there at once.
const YIELDS: u32 = 1_000;
/// `EVTCHNOP_send`.
const EVTCHNOP_SEND: u64 = 4;

/// The TSC cycles of each operation of the current phase.
static mut SAMPLES: [u64; MAX] = [0; MAX];

/// `key=N` from the start info command line.
fn count(start_info: Gpa, key: &str) -> usize {
    let Ok(info) = StartInfo::read(start_info) else {
        return 0;
    };
    let Some(line) = info.cmdline() else {
        return 0;
    };
    let n: usize = firmware::xen::cmdline_value(line.as_str().unwrap_or(""), key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    n.min(MAX)
}

/// `EVTCHNOP_send(port)` with interrupts enabled across the hypercall
/// instruction (`sti` covers it with its shadow) and disabled again after:
/// an upcall the send raises is taken between the hypercall's return and
/// the `cli`.
fn send_interrupts_on(port: u32) -> i64 {
    let mut p = port;
    let arg = core::ptr::addr_of_mut!(p) as u64;
    let ret: u64;
    // SAFETY: EVTCHNOP_send reads the 4-byte port at `arg`, which lives
    // across the call. The upcall handler runs on its own IST stack and
    // preserves every register; the hypercall's clobbers are declared.
    unsafe {
        if hypervisor::instruction() == "vmmcall" {
            asm!("sti", "vmmcall", "cli",
                inlateout("rax") nr::EVENT_CHANNEL_OP => ret,
                inlateout("rdi") EVTCHNOP_SEND => _, inlateout("rsi") arg => _,
                lateout("rdx") _, lateout("r10") _, lateout("r8") _,
                lateout("rcx") _, lateout("r11") _, options(nostack));
        } else {
            asm!("sti", "vmcall", "cli",
                inlateout("rax") nr::EVENT_CHANNEL_OP => ret,
                inlateout("rdi") EVTCHNOP_SEND => _, inlateout("rsi") arg => _,
                lateout("rdx") _, lateout("r10") _, lateout("r8") _,
                lateout("rcx") _, lateout("r11") _, options(nostack));
        }
    }
    ret as i64
}

/// Median (the upper one of an even count) and mean of `samples`, which
/// are sorted in place; zeros when empty.
fn median_mean(samples: &mut [u64]) -> (u64, u64) {
    if samples.is_empty() {
        return (0, 0);
    }
    samples.sort_unstable();
    let median = samples[samples.len() / 2];
    let sum: u128 = samples.iter().map(|&s| u128::from(s)).sum();
    (median, (sum / samples.len() as u128) as u64)
}

/// The loopback pair: `(a, b)`, both unmasked, with the event Xen leaves
/// pending on `b` at bind time taken.
fn pair() -> Option<(u32, u32)> {
    let a = evtchn::alloc_unbound(DOMID_SELF, DOMID_SELF).ok()?;
    let b = evtchn::bind_interdomain(DOMID_SELF, a).ok()?;
    let eb = evtchn::events(b);
    if evtchn::unmask(a) != 0 || evtchn::unmask(b) != 0 {
        return None;
    }
    evtchn::wait_until(SPINS, || evtchn::events(b) > eb);
    Some((a, b))
}

/// One round trip's TSC cycles: send on `b`, the upcall sees `a`.
fn round_trip(a: u32, b: u32, failed: &mut u64, late: &mut u64) -> u64 {
    let before = evtchn::events(a);
    let t0 = cpu::rdtsc();
    if send_interrupts_on(b) != 0 {
        *failed += 1;
    }
    if evtchn::events(a) == before {
        *late += 1;
        evtchn::wait_until(SPINS, || evtchn::events(a) != before);
    }
    cpu::rdtsc().wrapping_sub(t0)
}

/// `n` round trips.
fn round_trips(samples: &mut [u64], a: u32, b: u32) {
    let (mut failed, mut late) = (0u64, 0u64);
    let upcalls = evtchn::upcalls();
    for slot in samples.iter_mut() {
        *slot = round_trip(a, b, &mut failed, &mut late);
    }
    let upcalls = evtchn::upcalls().wrapping_sub(upcalls);
    report_round_trips("evtchn", samples, failed, late, upcalls);
}

fn report_round_trips(name: &str, samples: &mut [u64], failed: u64, late: u64, upcalls: u32) {
    let n = samples.len();
    let (median, mean) = median_mean(samples);
    println!(
        "bench_abi: {name}: {n} round trips, {failed} failed, {late} late, {upcalls} upcalls, \
         median {median} mean {mean} TSC cycles per round trip"
    );
}

/// Reads the reply ring from `cons` into `out` once `out.len()` bytes are
/// there; `false` if they do not come within the yield budget.
fn ring_read(ring: &Client, cons: u32, out: &mut [u8], yields: &mut u64) -> bool {
    let mut budget = YIELDS;
    loop {
        let prod = ring.page.u32(xr::RSP_PROD).load(Ordering::SeqCst);
        if prod.wrapping_sub(cons) as usize >= out.len() {
            break;
        }
        if budget == 0 {
            return false;
        }
        budget -= 1;
        *yields += 1;
        hypervisor::sched_yield();
    }
    fence(Ordering::SeqCst);
    // In at most two runs (the ring may wrap), as a client copying with
    // memcpy would.
    let at = cons as usize % xr::SIZE;
    let first = out.len().min(xr::SIZE - at);
    let (head, tail) = out.split_at_mut(first);
    ring.page.read(xr::RSP + at, head);
    ring.page.read(xr::RSP, tail);
    true
}

/// One `XS_READ` of `path` with request id `id`: `true` if the reply is a
/// `XS_READ` reply to it.
fn xs_read(ring: &Client, id: u32, path: &[u8], yields: &mut u64) -> bool {
    let mut req = [0u8; 16 + 64];
    let len = path.len() + 1;
    for (i, v) in [msg::READ, id, 0, len as u32].into_iter().enumerate() {
        req[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
    }
    req[16..16 + path.len()].copy_from_slice(path);
    let req = &req[..16 + len];
    let prod = ring.page.u32(xr::REQ_PROD).load(Ordering::SeqCst);
    // The previous replies were all read, so the server has consumed every
    // request: the ring has room.
    let at = prod as usize % xr::SIZE;
    let first = req.len().min(xr::SIZE - at);
    ring.page.write(xr::REQ + at, &req[..first]);
    ring.page.write(xr::REQ, &req[first..]);
    fence(Ordering::SeqCst);
    ring.page
        .u32(xr::REQ_PROD)
        .store(prod.wrapping_add(req.len() as u32), Ordering::SeqCst);
    evtchn::send(ring.port);
    let cons = ring.page.u32(xr::RSP_CONS).load(Ordering::SeqCst);
    let mut hdr = [0u8; 16];
    if !ring_read(ring, cons, &mut hdr, yields) {
        return false;
    }
    let word = |i: usize| u32::from_le_bytes([hdr[i], hdr[i + 1], hdr[i + 2], hdr[i + 3]]);
    let body = word(12) as usize;
    let mut payload = [0u8; 64];
    let ok = body <= payload.len()
        && ring_read(ring, cons.wrapping_add(16), &mut payload[..body], yields);
    let skip = if ok { 16 + body } else { 16 };
    fence(Ordering::SeqCst);
    ring.page
        .u32(xr::RSP_CONS)
        .store(cons.wrapping_add(skip as u32), Ordering::SeqCst);
    ok && word(0) == msg::READ && word(4) == id
}

/// One timed read of `name` with request id `id`.
fn timed_read(ring: &Client, id: u32, failed: &mut u64, yields: &mut u64) -> u64 {
    let t0 = cpu::rdtsc();
    if !xs_read(ring, id, b"name", yields) {
        *failed += 1;
    }
    cpu::rdtsc().wrapping_sub(t0)
}

/// `n` reads of `name`.
fn reads(samples: &mut [u64], ring: &Client) {
    let (mut failed, mut yields) = (0u64, 0u64);
    for (i, slot) in samples.iter_mut().enumerate() {
        *slot = timed_read(ring, 0x1000 + i as u32, &mut failed, &mut yields);
    }
    report_reads("xenstore", samples, failed, yields);
}

fn report_reads(name: &str, samples: &mut [u64], failed: u64, yields: u64) {
    let n = samples.len();
    let (median, mean) = median_mean(samples);
    println!(
        "bench_abi: {name}: {n} reads, {failed} failed, {yields} yields, \
         median {median} mean {mean} TSC cycles per read"
    );
}

/// `samples.len() / 3` rounds of a direct `xen_version(0)`, a round trip
/// and a read; one line per operation (`paired-hypercall`,
/// `paired-evtchn`, `paired-xenstore`).
fn paired(samples: &mut [u64], a: u32, b: u32, ring: &Client) {
    let n = samples.len() / 3;
    let (hypercalls, rest) = samples.split_at_mut(n);
    let (trips, reads) = rest.split_at_mut(n);
    let reads = &mut reads[..n];
    let (mut failed_calls, mut failed_trips, mut late, mut failed_reads, mut yields) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let upcalls = evtchn::upcalls();
    for i in 0..n {
        let t0 = cpu::rdtsc();
        let r = hypervisor::xen_version_direct();
        hypercalls[i] = cpu::rdtsc().wrapping_sub(t0);
        failed_calls += u64::from(r < 0);
        trips[i] = round_trip(a, b, &mut failed_trips, &mut late);
        reads[i] = timed_read(ring, 0x8000 + i as u32, &mut failed_reads, &mut yields);
    }
    let upcalls = evtchn::upcalls().wrapping_sub(upcalls);
    let (median, mean) = median_mean(hypercalls);
    println!(
        "bench_abi: paired-hypercall: {n} round trips, {failed_calls} failed, \
         median {median} mean {mean} TSC cycles per round trip"
    );
    report_round_trips("paired-evtchn", trips, failed_trips, late, upcalls);
    report_reads("paired-xenstore", reads, failed_reads, yields);
}

fn main(start_info: Gpa) -> ! {
    let (n_evtchn, n_xs) = (count(start_info, "evtchn"), count(start_info, "xenstore"));
    let n_paired = count(start_info, "paired").min(MAX / 3);
    // SAFETY: the only reference to SAMPLES, taken once; the upcall
    // handler does not touch it.
    let samples: &mut [u64; MAX] = unsafe { &mut *core::ptr::addr_of_mut!(SAMPLES) };
    if shared::map() != 0 || evtchn::setup_upcall() != 0 {
        println!("bench_abi: no shared_info or callback vector");
        shutdown(ShutdownReason::Crash);
    }
    let Some((a, b)) = pair() else {
        println!("bench_abi: no loopback event channel pair");
        shutdown(ShutdownReason::Crash)
    };
    let Ok(ring) = Client::open(YIELDS) else {
        println!("bench_abi: no xenstore ring");
        shutdown(ShutdownReason::Crash)
    };
    round_trips(&mut samples[..n_evtchn], a, b);
    reads(&mut samples[..n_xs], &ring);
    if n_paired > 0 {
        paired(&mut samples[..3 * n_paired], a, b, &ring);
    }
    shutdown(ShutdownReason::Poweroff)
}
