//! Deterministic pseudo-random garbage at every hypercall number 0..64
//! and every sub-command (pointers into unmapped, non-canonical,
//! kernel-half, non-RAM and scratch memory of its own), garbage into the
//! xenstore and console rings, then proof of life: `xen_version` and
//! `sched_op` still answer, and the guest powers off normally.
//!
//! Skipped are the few sub-commands with which a conforming Xen guest
//! could legitimately end, stall or corrupt itself (see [`denied`]): the
//! point is the hypervisor's robustness, not the guest's suicide.
#![no_std]
#![no_main]

use core::sync::atomic::Ordering;

use firmware::boot::image_range;
use firmware::xen::console::Ring;
use firmware::xen::layout::{console_ring as cr, xenstore_ring as xr, SchedPoll, DOMID_SELF};
use firmware::xen::page::{Page, PAGE_SIZE};
use firmware::xen::xenstore::Client;
use firmware::xen::{self, nr, shared};
use firmware::{hypervisor, println, report, Gpa, StartInfo};

firmware::guest_main!(main);

/// Bytes of scratch RAM the garbage pointers aim into.
const SCRATCH: u64 = 256 * 1024;
/// Rounds of random arguments per (hypercall, sub-command).
const ROUNDS: u32 = 3;
/// Sub-commands tried per hypercall.
const SUBCOMMANDS: u64 = 48;

/// xorshift64*: deterministic, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// What garbage may point at.
struct Targets {
    /// Start of the scratch window (guest RAM this program does not use).
    scratch: u64,
    me: u16,
}

impl Targets {
    /// A garbage argument: a pointer of some kind or a plain number.
    fn arg(&self, rng: &mut Rng) -> u64 {
        let r = rng.next();
        match r % 16 {
            0 => 0,
            1 => r >> 60,
            2 => 0xfff & (r >> 8),
            3..=6 => self.scratch + (r >> 20) % (SCRATCH / 2),
            7 => xen::UNMAPPED + (r >> 40),
            8 => 0x8000_0000_0000_0000 | (r >> 16),
            9 => 0xffff_8000_0000_0000 | ((r >> 20) & 0xffff_ffff_f000),
            10 => 0x3000_0000 + ((r >> 30) & 0xf_f000),
            11 => u64::from(DOMID_SELF),
            12 => u64::from(self.me),
            13 => u64::from(u32::MAX),
            14 => u64::MAX,
            _ => r,
        }
    }
}

fn main(start_info: Gpa) -> ! {
    println!("abi_garbage: garbage at every hypercall and into the rings");
    if !hypervisor::is_xen() {
        report::skip("garbage", "no Xen CPUID leaves");
        report::finish();
    }
    let me = xen::domid().unwrap_or(0);
    let version = hypervisor::xen_version();
    let Some(scratch) = scratch_window(start_info) else {
        report::check("a scratch window in guest RAM", false);
        report::finish();
    };
    println!("abi_garbage: scratch at {scratch:#x}, {SCRATCH} bytes");
    let targets = Targets { scratch, me };
    let seed = seed(start_info);
    println!("abi_garbage: seed {seed:#x} (seed=N on the command line changes it)");
    let mut rng = Rng(seed);
    fill(scratch, SCRATCH, &mut rng);

    // Rings first (they need the params before garbage may change them).
    let store = Client::open(2000).ok();
    let console = Ring::open().ok();
    report::check_eq("add_to_physmap(shared_info)", shared::map(), 0);

    let calls = hypercalls(&targets, &mut rng);
    println!("abi_garbage: {calls} garbage hypercalls made");
    report::check_eq(
        "xen_version after the hypercall garbage",
        hypervisor::xen_version(),
        version,
    );

    match store {
        Some(mut xs) => {
            xenstore_garbage(&mut xs, &mut rng);
            report::check_eq(
                "xen_version after the xenstore garbage",
                hypervisor::xen_version(),
                version,
            );
        }
        None => report::skip("xenstore garbage", "no STORE_PFN/STORE_EVTCHN"),
    }
    match console {
        Some(ring) => {
            console_garbage(&ring, &mut rng);
            report::check_eq(
                "xen_version after the console garbage",
                hypervisor::xen_version(),
                version,
            );
        }
        None => report::skip("console garbage", "no CONSOLE_PFN/CONSOLE_EVTCHN"),
    }
    shared_info_garbage(&mut rng);
    grant_garbage(&targets, &mut rng);
    report::check_eq(
        "xen_version after the grant garbage",
        hypervisor::xen_version(),
        version,
    );
    evtchn_garbage(&mut rng);
    report::check_eq(
        "xen_version after the event channel garbage",
        hypervisor::xen_version(),
        version,
    );
    report::check_eq(
        "xen_version after the shared_info garbage",
        hypervisor::xen_version(),
        version,
    );
    report::check_eq("sched_op yield still works", hypervisor::sched_yield(), 0);
    report::check_eq(
        "xen_version issued directly still works",
        hypervisor::xen_version_direct(),
        version,
    );
    report::finish()
}

/// The PRNG seed: `seed=N` (decimal) on the command line, or a fixed
/// default so that runs repeat.
fn seed(start_info: Gpa) -> u64 {
    let given = StartInfo::read(start_info)
        .ok()
        .and_then(|info| info.cmdline())
        .and_then(|line| {
            line.as_str()
                .and_then(|l| xen::cmdline_value(l, "seed"))
                .and_then(|v| v.parse::<u64>().ok())
        });
    match given {
        Some(0) | None => 0x9e37_79b9_7f4a_7c15,
        Some(n) => n,
    }
}

/// A window of guest RAM past this image (and 2 MiB clear of it) below
/// the identity map's end, from the start info's memory map.
fn scratch_window(start_info: Gpa) -> Option<u64> {
    let info = StartInfo::read(start_info).ok()?;
    let (_, end) = image_range();
    let low = (end.raw() + 0x40_0000) & !0x1f_ffff;
    let found = info
        .memmap_entries()
        .filter(|e| e.type_ == firmware::abi::start_info::MEMMAP_RAM)
        .find_map(|e| {
            let start = e.addr.max(low);
            (start + SCRATCH <= e.addr + e.size && start + SCRATCH < (1 << 30)).then_some(start)
        });
    found
}

/// Fills `[at, at + len)` with random bytes.
fn fill(at: u64, len: u64, rng: &mut Rng) {
    for page in (at..at + len).step_by(PAGE_SIZE) {
        let Some(p) = Page::at(page / PAGE_SIZE as u64) else {
            continue;
        };
        for off in (0..PAGE_SIZE).step_by(8) {
            p.u64(off).store(rng.next(), Ordering::Relaxed);
        }
    }
}

/// Sub-commands skipped because real Xen would let them end, stall or
/// rewrite this guest (shutdown, block, watchdog; taking pages out of or
/// mapping things over its physmap; moving its vcpu_info or having
/// runstate or time written to garbage addresses; taking vCPU 0 down).
fn denied(hc: u64, cmd: u64) -> bool {
    match hc {
        // sched_op_compat and sched_op: block, shutdown, poll (done apart
        // with a bounded timeout), remote_shutdown, shutdown_code (Xen
        // reports the first code set when the domain ends), watchdog.
        6 | nr::SCHED_OP => matches!(cmd, 1..=6),
        // memory_op (the low 6 bits are the command): increase, decrease,
        // exchange, populate, add_to_physmap, remove_from_physmap,
        // add_to_physmap_batch, acquire_resource.
        nr::MEMORY_OP => matches!(cmd & 0x3f, 0 | 1 | 3 | 6 | 7 | 15 | 23 | 28),
        // vcpu_op: down, runstate area, vcpu_info, time area, phys areas.
        nr::VCPU_OP => matches!(cmd, 2 | 5 | 10 | 13 | 14 | 15),
        // grant_table_op: map and unmap into its physmap, transfer,
        // unmap_and_replace.
        nr::GRANT_TABLE_OP => matches!(cmd, 0 | 1 | 4 | 7),
        _ => false,
    }
}

fn hypercalls(t: &Targets, rng: &mut Rng) -> u32 {
    let mut calls = 0;
    for hc in 0..64u64 {
        let mut per_hc = 0;
        for cmd in 0..SUBCOMMANDS {
            if denied(hc, cmd) {
                continue;
            }
            for _ in 0..ROUNDS {
                let (mut a1, mut a2, mut a3) = (cmd, t.arg(rng), t.arg(rng));
                let (a4, a5) = (t.arg(rng), t.arg(rng));
                // Counts stay small so that what the hypervisor writes back
                // through a scratch pointer stays in the scratch window.
                match hc {
                    nr::SET_TIMER_OP => a1 = t.arg(rng),
                    nr::GRANT_TABLE_OP => a3 %= 16,
                    nr::CONSOLE_IO => a2 %= 16,
                    nr::MULTICALL => {
                        a1 = t.scratch + rng.next() % (SCRATCH / 2);
                        a2 = cmd % 16;
                    }
                    _ => {}
                }
                refill(t, a1, rng);
                refill(t, a2, rng);
                refill(t, a3, rng);
                // SAFETY: every address among the arguments is unmapped,
                // non-canonical, in the kernel half, outside RAM, below
                // 4 KiB (nothing of this program is there) or in the
                // scratch window, which this program only fills with
                // garbage; sub-commands that could rewrite the guest's
                // own pages are `denied`.
                let rc = unsafe { hypervisor::hypercall(hc, a1, a2, a3, a4, a5) };
                if per_hc < 2 {
                    println!("abi_garbage: hypercall {hc}({a1:#x}, {a2:#x}, {a3:#x}, ...) = {rc}");
                }
                per_hc += 1;
                calls += 1;
            }
        }
        // Keep the console readable and show progress.
        println!("abi_garbage: hypercall {hc}: {per_hc} calls, alive");
    }
    for hc in [64u64, 0x1000, u64::from(u32::MAX), u64::MAX] {
        // SAFETY: as above; these numbers name no hypercall at all.
        let rc = unsafe { hypervisor::direct(hc, t.arg(rng), t.arg(rng), 0, 0, 0) };
        println!("abi_garbage: hypercall {hc:#x} = {rc}");
        calls += 1;
    }
    // SCHEDOP_poll with garbage ports but a timeout 1 ms away.
    for _ in 0..16 {
        let mut p = SchedPoll {
            ports: t.arg(rng),
            nr_ports: (rng.next() % 200) as u32,
            timeout: shared::now().unwrap_or(0) + 1_000_000,
        };
        let rc = xen::op(nr::SCHED_OP, 3, &mut p);
        if rc != 0 && rc != -22 && rc != -14 {
            println!("abi_garbage: garbage poll = {rc}");
        }
        calls += 1;
    }
    calls
}

/// Puts fresh garbage where a scratch pointer points (the previous call
/// may have written its answer there).
fn refill(t: &Targets, ptr: u64, rng: &mut Rng) {
    if ptr >= t.scratch && ptr + 512 <= t.scratch + SCRATCH {
        let page = ptr & !(PAGE_SIZE as u64 - 1);
        if let Some(p) = Page::at(page / PAGE_SIZE as u64) {
            let off = (ptr - page) as usize & !7;
            for o in (off..PAGE_SIZE.min(off + 512)).step_by(8) {
                p.u64(o).store(rng.next(), Ordering::Relaxed);
            }
        }
    }
}

fn xenstore_garbage(xs: &mut Client, rng: &mut Rng) {
    let mut junk = [0u8; 512];
    for round in 0..6 {
        for b in junk.iter_mut() {
            *b = rng.next() as u8;
        }
        if round == 2 {
            // A header claiming an oversized payload.
            junk[..16].copy_from_slice(&[2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0]);
        }
        let sent = xs.send_bytes(&junk);
        println!("abi_garbage: xenstore junk round {round}: {sent:?}");
    }
    // Hostile indices.
    for off in [xr::REQ_PROD, xr::RSP_CONS] {
        xs.page.u32(off).store(rng.next() as u32, Ordering::SeqCst);
    }
    firmware::xen::evtchn::send(xs.port);
    for _ in 0..100 {
        hypervisor::sched_yield();
    }
    println!(
        "abi_garbage: xenstore ring after the junk: connection {}, error {}",
        xs.page.u32(xr::CONNECTION).load(Ordering::SeqCst),
        xs.page.u32(xr::ERROR).load(Ordering::SeqCst)
    );
}

fn console_garbage(ring: &Ring, rng: &mut Rng) {
    let mut junk = [0u8; 300];
    for b in junk.iter_mut() {
        // Printable garbage and control characters, no newline flood.
        *b = (rng.next() % 0x7f) as u8;
    }
    let _ = ring.write(&junk);
    let _ = ring.write(b"\n");
    for off in [cr::OUT_PROD, cr::IN_CONS] {
        ring.page
            .u32(off)
            .store(rng.next() as u32, Ordering::SeqCst);
    }
    firmware::xen::evtchn::send(ring.port);
    for _ in 0..100 {
        hypervisor::sched_yield();
    }
}

/// Random words all over shared_info (pending and mask bitmaps, the
/// selector, the upcall flag, the time fields), the upcall enabled, some
/// loopback sends and interrupt windows: the hypervisor reads all of it.
fn shared_info_garbage(rng: &mut Rng) {
    use firmware::xen::evtchn;
    let Some(page) = shared::page() else {
        report::skip("shared_info garbage", "shared_info not mapped");
        return;
    };
    report::check_eq(
        "set_param(CALLBACK_IRQ) for the garbage",
        evtchn::setup_upcall(),
        0,
    );
    let ports = evtchn::alloc_unbound(DOMID_SELF, DOMID_SELF)
        .and_then(|a| evtchn::bind_interdomain(DOMID_SELF, a).map(|b| (a, b)));
    for round in 0..8 {
        for off in (0..PAGE_SIZE).step_by(8) {
            page.u64(off).store(rng.next(), Ordering::SeqCst);
        }
        if let Ok((a, b)) = ports {
            evtchn::send(a);
            evtchn::send(b);
        }
        evtchn::send((rng.next() % 4096) as u32);
        evtchn::interrupt_window();
        hypervisor::sched_yield();
        evtchn::wait_until(50, || false);
        println!(
            "abi_garbage: shared_info garbage round {round}: {} upcalls so far",
            evtchn::upcalls()
        );
    }
    // Leave a quiet page behind: everything masked, nothing pending.
    for w in 0..64 {
        page.u64(firmware::xen::layout::shared_info::EVTCHN_MASK + 8 * w)
            .store(u64::MAX, Ordering::SeqCst);
        page.u64(firmware::xen::layout::shared_info::EVTCHN_PENDING + 8 * w)
            .store(0, Ordering::SeqCst);
    }
    evtchn::wait_until(50, || false);
}

/// A grant table frame full of random entries, then copies with random
/// references, flags, offsets and lengths. Frame destinations are always
/// scratch frames; a random entry would have to name this domain and a
/// frame of its image to be written through (2^-16 and less).
fn grant_garbage(t: &Targets, rng: &mut Rng) {
    use firmware::xen::grant;
    use firmware::xen::layout::{GnttabCopy, GnttabCopyPtr};
    if grant::map_frame(0) != 0 {
        report::skip("grant garbage", "grant table frame 0 not mapped");
        return;
    }
    let Some(table) = grant::frame_page(0) else {
        return;
    };
    for off in (0..PAGE_SIZE).step_by(8) {
        table.u64(off).store(rng.next(), Ordering::SeqCst);
    }
    let scratch_gfn = |rng: &mut Rng| (t.scratch + rng.next() % (SCRATCH / 2)) / PAGE_SIZE as u64;
    let mut statuses = [0u32; 16];
    for _ in 0..256 {
        let flags = (rng.next() % 4) as u16;
        let domid = match rng.next() % 3 {
            0 => t.me,
            1 => DOMID_SELF,
            _ => rng.next() as u16,
        };
        let end = |gref: bool, rng: &mut Rng| GnttabCopyPtr {
            u: if gref {
                rng.next() % 600
            } else {
                scratch_gfn(rng)
            },
            domid,
            offset: (rng.next() % 4200) as u16,
        };
        let mut op = [GnttabCopy {
            source: end(flags & 1 != 0, rng),
            dest: end(flags & 2 != 0, rng),
            len: (rng.next() % 5000) as u16,
            flags,
            status: 0,
        }];
        grant::copy(&mut op);
        let i = usize::from(op[0].status.unsigned_abs()).min(15);
        statuses[i] += 1;
    }
    println!("abi_garbage: 256 garbage grant copies, statuses 0..-15: {statuses:?}");
}

/// Event channel operations on random ports (closing whatever exists,
/// the xenstore and console ports included).
fn evtchn_garbage(rng: &mut Rng) {
    use firmware::xen::evtchn;
    let mut failures = 0u32;
    for _ in 0..512 {
        let port = match rng.next() % 4 {
            0 => (rng.next() % 64) as u32,
            1 => (rng.next() % 4200) as u32,
            _ => rng.next() as u32,
        };
        let rc = match rng.next() % 6 {
            0 => evtchn::send(port),
            1 => evtchn::unmask(port),
            2 => evtchn::bind_vcpu(port, (rng.next() % 3) as u32),
            3 => evtchn::status(DOMID_SELF, port).map_or_else(|e| e, |_| 0),
            4 => evtchn::close(port),
            _ => evtchn::bind_interdomain(DOMID_SELF, port).map_or_else(|e| e, |_| 0),
        };
        failures += u32::from(rc < 0);
    }
    evtchn::wait_until(50, || false);
    println!("abi_garbage: 512 event channel ops on random ports, {failures} refused");
}
