//! Tries to reach memory that is not its own. The command line names the
//! target: `target=0xADDR` (a guest-physical address below 1 GiB, where the
//! runtime's identity map reaches), or `target=canary` for the host page the
//! hypervisor names with `hv.canary=0x...`, and `access=read|write|exec`.
//! First the guest checks that the top page of its own RAM works; then it
//! touches the target, which must not be its RAM. Outside its RAM there is
//! only absent MMIO, as under Xen: a read gives all-ones, a write changes
//! nothing (it reads back all-ones, the guest's own RAM keeps its values,
//! and the hypervisor checks its canary page). Executing there (`exec`)
//! must end the domain; if the jump comes back, the guest says so and
//! crashes, so the test fails either way it can.
#![no_std]
#![no_main]

use firmware::abi::start_info::MEMMAP_RAM;
use firmware::{boot, println, report, shutdown, Gpa, ShutdownReason, StartInfo};

firmware::guest_main!(main);

fn word<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_ascii_whitespace()
        .find_map(|w| w.strip_prefix(key))
}

fn main(start_info: Gpa) -> ! {
    let Ok(info) = StartInfo::read(start_info) else {
        println!("isolation: no start info");
        shutdown(ShutdownReason::Crash)
    };
    let cmdline = info.cmdline();
    let line = cmdline.as_ref().and_then(|c| c.as_str()).unwrap_or("");
    // `target=canary` aims at the page the hypervisor names with
    // `hv.canary=0x...` (its `debug.canary` option).
    let hex = if word(line, "target=") == Some("canary") {
        word(line, "hv.canary=0x")
    } else {
        word(line, "target=0x")
    };
    let target = hex.and_then(|h| u64::from_str_radix(h, 16).ok());
    let access = word(line, "access=").unwrap_or("read");

    // The highest RAM byte below 1 GiB that the map gives us.
    let ram_top = info
        .memmap_entries()
        .filter(|e| e.type_ == MEMMAP_RAM && e.addr < 1 << 30)
        .map(|e| (e.addr + e.size).min(1 << 30))
        .max()
        .unwrap_or(0);
    let own = ram_top.saturating_sub(4096);
    // SAFETY: `own` is the last page of RAM the memory map gives this guest
    // (not its image: that sits at 1 MiB), identity-mapped by the runtime.
    let ok = unsafe {
        let p = own as *mut u64;
        p.write_volatile(0x5a5a_5a5a_a5a5_a5a5);
        p.read_volatile() == 0x5a5a_5a5a_a5a5_a5a5
    };
    report::check("the top page of my RAM is readable and writable", ok);

    let Some(target) = target.filter(|&t| t < 1 << 30) else {
        println!("isolation: no target=0x... below 1 GiB on the command line");
        shutdown(ShutdownReason::Crash)
    };
    let inside = info
        .memmap_entries()
        .any(|e| e.type_ == MEMMAP_RAM && e.addr <= target && target < e.addr + e.size);
    if inside {
        // A host address that is also one of my guest-physical RAM addresses:
        // writing it must change my RAM, never the host page (the hypervisor
        // checks its canary afterwards).
        let (start, end) = boot::image_range();
        if target + 8 > start.0 && target < end.0 || target < 0x1000 {
            println!("isolation: target {target:#x} lies in my image; choose another");
            shutdown(ShutdownReason::Crash)
        }
        // SAFETY: `target` is RAM the memory map gives this guest, below
        // 1 GiB (identity-mapped), outside its image (which holds its stack
        // and page tables), checked just above.
        let back = unsafe {
            let p = target as *mut u64;
            p.write_volatile(0xdead_beef_dead_beef);
            p.read_volatile()
        };
        println!("isolation: wrote {target:#x}, which is my own RAM here (read back {back:#x})");
        report::check(
            "a host address inside my RAM reaches my RAM",
            back == 0xdead_beef_dead_beef,
        );
        report::finish()
    }
    let how = match access {
        "write" => "writing",
        "exec" => "jumping to",
        _ => "reading",
    };
    println!("isolation: {how} {target:#x}, outside my RAM (which ends at {ram_top:#x})");
    if access == "exec" {
        // SAFETY: deliberately executing memory that is not this guest's:
        // the hypervisor must end the domain. Should the jump come back,
        // the `call` has a return address to come back to.
        unsafe { core::arch::asm!("call {t}", t = in(reg) target, clobber_abi("C")) };
        println!("isolation: the jump to {target:#x} came back: NOT isolated");
        report::check("executing outside my RAM ends the domain", false);
        report::finish()
    }
    // SAFETY: deliberately touching memory that is not this guest's: the
    // point of the test. Identity-mapped by the runtime (below 1 GiB).
    let seen = unsafe {
        let p = target as *mut u64;
        if access == "write" {
            p.write_volatile(0xdead_beef_dead_beef);
        }
        p.read_volatile()
    };
    println!("isolation: read {seen:#x} at {target:#x}");
    if access == "write" {
        report::check_eq(
            "a write outside my RAM is dropped (reads back all-ones)",
            seen,
            u64::MAX,
        );
        // SAFETY: as for the first access to `own` above.
        let mine = unsafe { (own as *const u64).read_volatile() };
        report::check_eq(
            "a write outside my RAM leaves my RAM as it was",
            mine,
            0x5a5a_5a5a_a5a5_a5a5,
        );
    } else {
        report::check_eq("a read outside my RAM gives all-ones", seen, u64::MAX);
    }
    report::finish()
}
