//! Time as Xen publishes it: vCPU 0's pvclock `vcpu_time_info` (version
//! protocol, monotonic, advancing with the TSC), the shared_info
//! wallclock, and timers: `set_timer_op` and
//! `VCPUOP_set_singleshot_timer` raising `VIRQ_TIMER`, whose arrival,
//! converted back through the pvclock, must not precede the deadline;
//! `SCHEDOP_block` and `SCHEDOP_poll` woken by the timer.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use firmware::xen::evtchn::{self, VIRQ_TIMER};
use firmware::xen::shared::{self, TimeInfo};
use firmware::xen::{self, errno::*, vcpu};
use firmware::{cpu, hypervisor, println, report, Gpa};

firmware::guest_main!(main);

/// 2020-01-01 in seconds since the epoch: any wallclock before is unset.
const YEAR_2020: u64 = 1_577_836_800;
/// Xen may fire a timer up to its slop (50 us by default) early.
const EARLY_SLACK_NS: u64 = 100_000;
/// How late a timer may arrive under an emulator.
const LATE_LIMIT_NS: u64 = 2_000_000_000;
/// Timer delays used below.
const MS: u64 = 1_000_000;

fn main(_start_info: Gpa) -> ! {
    println!("abi_time: pvclock, wallclock, timers");
    if !hypervisor::is_xen() {
        report::skip("time", "no Xen CPUID leaves");
        report::finish();
    }
    if !report::check_eq("add_to_physmap(shared_info)", shared::map(), 0) {
        report::finish();
    }
    report::check_eq("set_param(CALLBACK_IRQ, vector)", evtchn::setup_upcall(), 0);
    if pvclock().is_none() {
        report::finish();
    }
    wallclock();
    match evtchn::bind_virq(VIRQ_TIMER, 0) {
        Ok(port) => {
            report::check_eq("unmask(VIRQ_TIMER port)", evtchn::unmask(port), 0);
            timers(port);
            block_and_poll(port);
            periodic(port);
        }
        Err(e) => {
            report::check_eq("bind_virq(VIRQ_TIMER, vcpu 0)", e, 0);
        }
    }
    report::check(
        "xen_version after the timers",
        hypervisor::xen_version() > 0,
    );
    report::finish()
}

fn now() -> u64 {
    shared::now().unwrap_or(0)
}

fn pvclock() -> Option<TimeInfo> {
    let info = shared::time_info();
    report::check("vcpu_time_info read with an even version", info.is_some());
    let info = info?;
    println!(
        "abi_time: version {} tsc_timestamp {} system_time {} ns mul {:#x} shift {} flags {:#x}",
        info.version, info.tsc_timestamp, info.system_time, info.mul, info.shift, info.flags
    );
    report::check(
        "vcpu_time_info was published (version > 0)",
        info.version > 0,
    );
    report::check("tsc_to_system_mul is set", info.mul != 0);
    report::check(
        "tsc_shift is within -32..=32",
        (-32..=32).contains(&info.shift),
    );
    let mut last = now();
    let mut monotonic = true;
    for i in 0..2000 {
        if i % 500 == 0 {
            hypervisor::sched_yield();
        }
        let t = now();
        monotonic &= t >= last;
        last = t;
    }
    report::check(
        "system time never goes back (2000 reads, some yields)",
        monotonic,
    );
    let t0 = now();
    let tsc0 = cpu::rdtsc();
    while cpu::rdtsc() - tsc0 < info.ticks_for(MS) {
        core::hint::spin_loop();
    }
    let t1 = now();
    println!(
        "abi_time: 1 ms of TSC ticks ({}) -> {} ns of system time",
        info.ticks_for(MS),
        t1 - t0
    );
    report::check("system time advances with the TSC", t1 > t0);
    report::check(
        "the pvclock formula is consistent with itself (1 ms of ticks ~ 1 ms)",
        (t1 - t0) >= MS - MS / 100 && (t1 - t0) < LATE_LIMIT_NS,
    );
    Some(info)
}

fn wallclock() {
    match shared::wallclock() {
        Some((version, sec, nsec)) => {
            println!("abi_time: wallclock version {version}: {sec}.{nsec:09} s at system time 0");
            report::check("wallclock version is even and published", version > 0);
            report::check("wc_nsec < 1e9", nsec < 1_000_000_000);
            report::check(
                "wallclock + system time is after 2020",
                sec + now() / 1_000_000_000 > YEAR_2020,
            );
        }
        None => {
            report::check("wallclock read with an even version", false);
        }
    }
}

/// Opens interrupt windows until `port` saw `count` events or system time
/// passes `limit`; returns whether it did.
fn wait_events(port: u32, count: u32, limit: u64) -> bool {
    while evtchn::events(port) < count {
        if now() > limit {
            return false;
        }
        evtchn::interrupt_window();
    }
    true
}

/// Checks that the timer event on `port` came, and not before `deadline`
/// by the pvclock of the moment it was handled.
fn check_arrival(what: &str, port: u32, count: u32, deadline: u64) {
    let came = wait_events(port, count, deadline + LATE_LIMIT_NS);
    report::check(what, came);
    if !came {
        return;
    }
    let at = shared::time_info().map_or(0, |i| i.system_time_at(evtchn::last_event_tsc(port)));
    println!(
        "abi_time: {what}: deadline {deadline}, event at {at} ({} us late)",
        at.saturating_sub(deadline) / 1000
    );
    report::check(
        "the timer event does not arrive before its deadline",
        at + EARLY_SLACK_NS >= deadline,
    );
}

fn timers(port: u32) {
    let mut seen = evtchn::events(port);

    let deadline = now() + 5 * MS;
    report::check_eq(
        "set_timer_op(now + 5 ms)",
        evtchn::set_timer_op(deadline),
        0,
    );
    seen += 1;
    check_arrival("set_timer_op raises VIRQ_TIMER", port, seen, deadline);

    // Far enough ahead that a loaded host cannot let it expire between
    // the two calls.
    let deadline = now() + 50 * MS;
    evtchn::set_timer_op(deadline);
    report::check_eq("set_timer_op(0) cancels", evtchn::set_timer_op(0), 0);
    let came = wait_events(port, seen + 1, deadline + 20 * MS);
    report::check("no VIRQ_TIMER after set_timer_op(0)", !came);
    seen = evtchn::events(port);

    let deadline = now().saturating_sub(MS);
    report::check_eq(
        "set_timer_op(a past deadline)",
        evtchn::set_timer_op(deadline),
        0,
    );
    seen += 1;
    report::check(
        "a past deadline fires at once",
        wait_events(port, seen, now() + LATE_LIMIT_NS),
    );

    let deadline = now() + 4 * MS;
    report::check_eq(
        "VCPUOP_set_singleshot_timer(vcpu 0, now + 4 ms)",
        evtchn::set_singleshot(0, deadline, 0),
        0,
    );
    seen += 1;
    check_arrival(
        "the singleshot timer raises VIRQ_TIMER",
        port,
        seen,
        deadline,
    );

    report::check_eq(
        "singleshot with VCPU_SSHOTTMR_future and a past deadline is -ETIME",
        evtchn::set_singleshot(0, now().saturating_sub(MS), vcpu::SSHOTTMR_FUTURE),
        -ETIME,
    );
    // Far enough ahead that the stop comes first even on a loaded machine
    // (the host timer fires a due timer at once, as Xen's does).
    let deadline = now() + 50 * MS;
    evtchn::set_singleshot(0, deadline, 0);
    report::check_eq(
        "VCPUOP_stop_singleshot_timer",
        evtchn::stop_singleshot(0),
        0,
    );
    let came = wait_events(port, seen + 1, deadline + 20 * MS);
    report::check("no VIRQ_TIMER after stop_singleshot_timer", !came);

    report::check_eq(
        "singleshot on vcpu 1 of a 1-vCPU domain is -ENOENT",
        evtchn::set_singleshot(1, now() + MS, 0),
        -ENOENT,
    );
    let rc = xen::vcpu_op_unmapped(vcpu::SET_SINGLESHOT_TIMER, 0);
    report::check_eq(
        "singleshot with an unmapped argument is -EFAULT",
        rc,
        -EFAULT,
    );
    report::check_eq(
        "VCPUOP_is_up(vcpu 0) is 1",
        xen::vcpu_op_unmapped(vcpu::IS_UP, 0),
        1,
    );
    report::check_eq(
        "unknown VCPUOP (99) is -ENOSYS",
        xen::vcpu_op_unmapped(99, 0),
        -ENOSYS,
    );
}

fn block_and_poll(port: u32) {
    // Block: nothing pending, a timer armed; returns when it fires.
    evtchn::wait_until(100, || false);
    let seen = evtchn::events(port);
    let deadline = now() + 3 * MS;
    evtchn::set_timer_op(deadline);
    let rc = evtchn::sti_block();
    let after = now();
    println!("abi_time: block returned {rc} at {after} for a deadline at {deadline}");
    report::check_eq("SCHEDOP_block returns 0", rc, 0);
    report::check(
        "block returned for the timer event (taken right after)",
        wait_events(port, seen + 1, after + 10 * MS),
    );
    report::check(
        "block did not return before the deadline",
        after + EARLY_SLACK_NS >= deadline,
    );

    // Poll with interrupts off: the timer's port goes pending and wakes it.
    let seen = evtchn::events(port);
    let deadline = now() + 3 * MS;
    evtchn::set_timer_op(deadline);
    let rc = evtchn::poll(&[port], now() + LATE_LIMIT_NS);
    let after = now();
    println!("abi_time: poll returned {rc} at {after} for a timer at {deadline}");
    report::check_eq("SCHEDOP_poll on the timer port returns 0", rc, 0);
    report::check(
        "poll returned when the timer port went pending",
        shared::is_pending(port)
            && after + EARLY_SLACK_NS >= deadline
            && after < deadline + LATE_LIMIT_NS,
    );
    report::check(
        "the pending timer event is delivered afterwards",
        wait_events(port, seen + 1, now() + 10 * MS),
    );
}

/// `VCPUOP_set_periodic_timer`: `VIRQ_TIMER` every period until
/// `VCPUOP_stop_periodic_timer`; periods under 1 ms are -EINVAL.
fn periodic(port: u32) {
    let set = |period: u64| {
        let mut p = period;
        // `struct vcpu_set_periodic_timer` is one u64.
        xen::vcpu_op_arg(vcpu::SET_PERIODIC_TIMER, 0, &mut p)
    };
    report::check_eq(
        "set_periodic_timer(500 us) is -EINVAL",
        set(500_000),
        -EINVAL,
    );
    evtchn::wait_until(100, || false);
    let seen = evtchn::events(port);
    let t0 = now();
    report::check_eq("set_periodic_timer(2 ms)", set(2 * MS), 0);
    let ticked = wait_events(port, seen + 3, t0 + LATE_LIMIT_NS);
    let t1 = now();
    println!(
        "abi_time: 3 periodic events in {} us",
        t1.saturating_sub(t0) / 1000
    );
    report::check(
        "a 2 ms periodic timer raises VIRQ_TIMER repeatedly, not faster than its period",
        ticked && t1 + EARLY_SLACK_NS >= t0 + 6 * MS,
    );
    report::check_eq(
        "stop_periodic_timer",
        xen::vcpu_op_unmapped(vcpu::STOP_PERIODIC_TIMER, 0),
        0,
    );
    evtchn::wait_until(100, || false);
    let stopped = evtchn::events(port);
    let came = wait_events(port, stopped + 1, now() + 20 * MS);
    report::check("no VIRQ_TIMER after stop_periodic_timer", !came);
}
