//! `xpci`: a PCI frontend guest. Under Xen it speaks the paravirtual PCI
//! protocol ([`firmware::xen::pcifront`]) to whatever backend the frontend
//! directory names; without Xen (QEMU booting the image directly) it uses
//! ports 0xCF8/0xCFC and programs MSI itself ([`firmware::pci::native`]).
//! Either way it enumerates every devfn of every root, prints an
//! lspci-like listing, and drives the devices it knows (QEMU's edu, NVMe,
//! e1000 and e1000e), measuring the same things on both transports.
//!
//! Command line:
//! - `expect=vvvv:dddd,...`: the vendor:device pairs that must be found
//!   (under Xen exactly these; natively at least these, as the chipset's
//!   own functions sit on bus 0 too);
//! - `bench=N`: repeat each measurement N times and print
//!   `xpci-bench: <name> median <cycles> mean <cycles>`;
//! - `bench-only=<phase>:<N>`: after the scan, only one operation N times
//!   ([`firmware::pci::bench`]); with the `hv.hpa0=` the hypervisor's
//!   `debug.hpa` appends, edu's DMA uses host addresses (no IOMMU);
//! - `probe=0xADDR,...`: read 4 bytes of memory at each address after the
//!   scan, which must read all ones (another guest's BAR is unreachable);
//! - `reconnect=N`: after the drivers, disconnect (Closing, Closed) and
//!   connect again N times, scanning and driving the devices each time;
//! - `wait-hotplug=N`: wait for the frontend directory (a domain started
//!   without functions gets its backend at the first `pci-attach`), then
//!   serve N hot-plug events (each function found at connection, added
//!   or removed is one): on the backend's Reconfiguring, stop using the
//!   functions it removes (`xpci: hot-remove ADDR`), answer, rescan and
//!   drive the functions that are new (`xpci: hot-add ADDR VVVV:DDDD`,
//!   then `xpci: hot-add ADDR: driven` once the driver is done);
//! - `attack=<attack>[,<attack>...]` (also `;`-separated, and repeatable):
//!   after the drivers, attacks through edu's DMA
//!   ([`firmware::pci::attack`]); `canary` as an address is the value of
//!   the `hv.canary=` the hypervisor appends; the protocol and lifecycle
//!   items (`proto-*`, `die-*`, each optionally `@DOMID`) are
//!   [`firmware::pci::attack_proto`]'s; `config`, `bar`, `msix` and
//!   `irq` are classes of attacks on the backend's virtualisation
//!   ([`firmware::pci::attack_pci`]), run under Xen after the drivers,
//!   each ending with a table of its cases.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use firmware::abi::start_info::MEMMAP_RAM;
use firmware::pci::attack::{self, Attack, Ram, MAX_ATTACKS};
use firmware::pci::attack_pci;
use firmware::pci::attack_proto::{self, Case};
use firmware::pci::bench::{self, Only};
use firmware::pci::mmio::Mmio;
use firmware::pci::native::Native;
use firmware::pci::{self, e1000, edu, nvme, Bar, BarKind, Functions, Root, Samples, Transport};
use firmware::xen::pcifront::Frontend;
use firmware::{cpu, hypervisor, println, report, Gpa, StartInfo};

firmware::guest_main!(main);

/// Vendor:device pairs `expect=` may list.
const MAX_EXPECT: usize = 16;
/// Config reads per round of the `conf-read` measurement.
const CONF_READS: usize = 20;
/// Addresses `probe=` may list.
const MAX_PROBES: usize = 8;

/// What the command line asks for.
#[derive(Debug, Clone, Copy)]
struct Options {
    expect: [u32; MAX_EXPECT],
    nexpect: usize,
    /// `expect=` was given (possibly empty).
    has_expect: bool,
    /// `bench=N`.
    bench: Option<usize>,
    /// `bench-only=<phase>:<N>`.
    only: Option<Only>,
    /// `probe=` addresses.
    probes: [u64; MAX_PROBES],
    nprobes: usize,
    /// `attack=` items, in order.
    attacks: [Attack; MAX_ATTACKS],
    nattacks: usize,
    /// The guest's RAM, from the start info's memory map.
    ram: Ram,
    /// `reconnect=N`: disconnect and connect again N times after the
    /// drivers, scanning and driving the devices each time.
    reconnect: u32,
    /// `wait-hotplug=N`: hot-plug events to serve.
    hotplug: u32,
}

impl Options {
    fn parse(line: &str) -> Options {
        let mut o = Options {
            expect: [0; MAX_EXPECT],
            nexpect: 0,
            has_expect: false,
            bench: None,
            only: None,
            probes: [0; MAX_PROBES],
            nprobes: 0,
            attacks: [Attack::MsiForge {
                fixed: true,
                nmi: true,
                remap: true,
            }; MAX_ATTACKS],
            nattacks: 0,
            ram: Ram::default(),
            reconnect: 0,
            hotplug: 0,
        };
        if let Some(list) = firmware::xen::cmdline_value(line, "expect") {
            o.has_expect = true;
            for item in list.split(',').filter(|s| !s.is_empty()) {
                match parse_ids(item) {
                    Some(ids) if o.nexpect < MAX_EXPECT => {
                        o.expect[o.nexpect] = ids;
                        o.nexpect += 1;
                    }
                    _ => println!("xpci: expect: ignoring {item:?}"),
                }
            }
        }
        o.reconnect = firmware::xen::cmdline_value(line, "reconnect")
            .and_then(|v| v.parse().ok())
            .map_or(0, |n: u32| n.min(16));
        o.hotplug = firmware::xen::cmdline_value(line, "wait-hotplug")
            .and_then(|v| v.parse().ok())
            .map_or(0, |n: u32| n.min(64));
        o.bench = firmware::xen::cmdline_value(line, "bench")
            .and_then(|v| v.parse().ok())
            .map(|n: usize| n.clamp(1, Samples::MAX));
        if let Some(v) = firmware::xen::cmdline_value(line, "bench-only") {
            o.only = Only::parse(v).map(|only| Only {
                host_base: firmware::xen::cmdline_value(line, "hv.hpa0")
                    .and_then(attack::parse_hex),
                ..only
            });
            if o.only.is_none() {
                println!("xpci: bench-only: ignoring {v:?}");
            }
        }
        if let Some(list) = firmware::xen::cmdline_value(line, "probe") {
            for item in list.split(',').filter(|s| !s.is_empty()) {
                match attack::parse_hex(item) {
                    Some(a) if o.nprobes < MAX_PROBES => {
                        o.probes[o.nprobes] = a;
                        o.nprobes += 1;
                    }
                    _ => println!("xpci: probe: ignoring {item:?}"),
                }
            }
        }
        let canary = firmware::xen::cmdline_value(line, "hv.canary").and_then(attack::parse_hex);
        let peer = firmware::xen::cmdline_value(line, "hv.peer").and_then(attack::parse_hex);
        let items = line
            .split(' ')
            .filter_map(|w| w.strip_prefix("attack="))
            .flat_map(|v| v.split([',', ';']))
            .filter(|s| !s.is_empty());
        for item in items {
            match Attack::parse(item, canary, peer) {
                Ok(a) if o.nattacks < MAX_ATTACKS => {
                    o.attacks[o.nattacks] = a;
                    o.nattacks += 1;
                }
                Ok(_) => println!("xpci: attack: ignoring {item:?}: too many"),
                Err(why) => println!("xpci: attack: ignoring {item:?}: {why}"),
            }
        }
        o
    }

    /// The protocol and lifecycle items of `attack=`, with the domain
    /// each applies to.
    fn proto_cases(&self) -> ([(Case, u16); MAX_ATTACKS], usize) {
        let mut out = [(Case::Ops, 0); MAX_ATTACKS];
        let mut n = 0;
        for a in self.attacks() {
            if let Attack::Proto(c, d) = *a {
                out[n] = (c, d);
                n += 1;
            }
        }
        (out, n)
    }

    fn probes(&self) -> &[u64] {
        &self.probes[..self.nprobes]
    }

    fn attacks(&self) -> &[Attack] {
        &self.attacks[..self.nattacks]
    }

    fn expected(&self) -> &[u32] {
        &self.expect[..self.nexpect]
    }

    /// Rounds of each measurement.
    fn rounds(&self) -> usize {
        self.bench.unwrap_or(1)
    }
}

/// "vvvv:dddd" as vendor << 16 | device.
fn parse_ids(s: &str) -> Option<u32> {
    let (v, d) = s.split_once(':')?;
    let v = u16::from_str_radix(v, 16).ok()?;
    let d = u16::from_str_radix(d, 16).ok()?;
    Some((u32::from(v) << 16) | u32::from(d))
}

fn main(start_info: Gpa) -> ! {
    let info = StartInfo::read(start_info).ok();
    let line = info.as_ref().and_then(|i| i.cmdline());
    let mut opts = Options::parse(line.as_ref().and_then(|l| l.as_str()).unwrap_or(""));
    for e in info.iter().flat_map(|i| i.memmap_entries()) {
        if e.type_ == MEMMAP_RAM {
            opts.ram.add(e.addr, e.addr.saturating_add(e.size));
        }
    }
    let mut found = Functions::new();
    if hypervisor::is_xen() {
        println!("xpci: transport pcifront");
        let (proto, nproto) = opts.proto_cases();
        let proto = &proto[..nproto];
        // The domain id costs CPUID exits (which scenarios count): read only
        // when an item may need it.
        let dom = if proto.is_empty() {
            0
        } else {
            attack_proto::domid()
        };
        if let Some(case) = attack_proto::connect_case(proto, dom) {
            attack_proto::connect_attack(case);
        }
        let how = firmware::xen::pcifront::Publish {
            wait_ns: if opts.hotplug > 0 { HOTPLUG_WAIT_NS } else { 0 },
            ..Default::default()
        };
        if opts.hotplug > 0 {
            println!("xpci: hot-plug: waiting for a PCI backend");
        }
        let mut fe = match Frontend::connect_with(how) {
            Ok(fe) => fe,
            Err(e) => {
                println!("xpci: pcifront: {e}");
                report::check("pcifront: connected to the backend", false);
                report::finish();
            }
        };
        report::check("pcifront: connected to the backend", true);
        let roots = fe.roots();
        let (roots, nroots) = copy_roots(roots);
        scan(&mut fe, &roots[..nroots], &opts, &mut found);
        if opts.hotplug > 0 {
            found.iter().for_each(hot_add);
        }
        match fe.connected() {
            Ok(()) => report::check("pcifront: frontend state Connected", true),
            Err(e) => {
                println!("xpci: pcifront: {e}");
                report::check("pcifront: frontend state Connected", false)
            }
        };
        let failed = report::failed();
        let prev = attack_proto::before_drivers(&mut fe, &found, proto, dom);
        work(&mut fe, &found, &opts);
        if opts.hotplug > 0 {
            found.iter().for_each(driven);
        }
        attack_proto::after_drivers(prev, failed);
        attack_proto::run(&mut fe, &found, proto, dom);
        for a in opts.attacks() {
            if let Attack::Pci(class) = *a {
                attack_pci::run(&mut fe, &found, class);
            }
        }
        for i in 1..=opts.reconnect {
            reconnect(&mut fe, &opts, &mut found, i);
        }
        if opts.hotplug > 0 {
            hotplug(&mut fe, &opts, &mut found);
        }
        println!(
            "xpci: pcifront: {} ops sent, {} timeouts",
            fe.accesses(),
            fe.timeouts()
        );
        report::check_eq("pcifront: every op answered", fe.timeouts(), 0);
    } else {
        println!("xpci: transport native");
        let mut n = Native::new();
        let roots = n.roots();
        scan(&mut n, &roots, &opts, &mut found);
        work(&mut n, &found, &opts);
        println!("xpci: native: {} config accesses", n.accesses());
    }
    report::finish()
}

/// How long `wait-hotplug=` waits for each event.
const HOTPLUG_WAIT_NS: u64 = 300_000_000_000;

/// `wait-hotplug=N`: the functions found at connection count as added;
/// then each Reconfiguring of the backend is served as Linux's pcifront
/// does (removals first, then 7, the backend's 8, a rescan, 4).
fn hotplug(fe: &mut Frontend, opts: &Options, found: &mut Functions) {
    let mut served = found.iter().count() as u32;
    while served < opts.hotplug {
        println!(
            "xpci: hot-plug: {served} of {} events served; waiting",
            opts.hotplug
        );
        if let Err(e) = fe.wait_reconfigure(HOTPLUG_WAIT_NS) {
            println!("xpci: hot-plug: {e}");
            report::check("hot-plug: the backend reconfigures", false);
            return;
        }
        let mut gone = [pci::Sbdf::default(); 8];
        let n = match fe.removals(&mut gone) {
            Ok(n) => n,
            Err(e) => {
                println!("xpci: hot-plug: {e}");
                report::check("hot-plug: removals read", false);
                return;
            }
        };
        for &g in &gone[..n] {
            println!("xpci: hot-remove {}", pci::show::Addr(g));
            fe.forget(g);
        }
        if let Err(e) = fe.reconfigure() {
            println!("xpci: hot-plug: {e}");
            report::check("hot-plug: the backend reconfigured", false);
            return;
        }
        let (roots, nroots) = copy_roots(fe.roots());
        let mut now = Functions::new();
        pci::scan(fe, &roots[..nroots], &mut now);
        for &g in &gone[..n] {
            report::check(
                "hot-remove: the function left the guest's bus",
                !now.iter().any(|f| f.addr == g),
            );
        }
        let mut added = 0;
        for f in now
            .iter()
            .filter(|f| !found.iter().any(|o| o.addr == f.addr))
        {
            hot_add(f);
            let cmd = fe.read(f.addr, pci::command::OFFSET, 2).unwrap_or(u32::MAX);
            report::check(
                "hot-add: the function arrives with decoding and bus mastering off",
                cmd & 0x7 == 0,
            );
            drive_one(fe, f, opts);
            driven(f);
            added += 1;
        }
        *found = now;
        report::check("hot-plug: back to Connected", fe.reconnected().is_ok());
        served += (n + added).max(1) as u32;
    }
    println!("xpci: hot-plug: {served} events served");
}

fn hot_add(f: &pci::Function) {
    println!(
        "xpci: hot-add {} {:04x}:{:04x}",
        pci::show::Addr(f.addr),
        f.vendor,
        f.device
    );
}

/// The line the benchmark times a hot-add to: the driver is done with
/// the new function.
fn driven(f: &pci::Function) {
    println!("xpci: hot-add {}: driven", pci::show::Addr(f.addr));
}

/// `reconnect=`'s round `i`: disconnect, connect again, scan and drive
/// the devices as the first time.
fn reconnect(fe: &mut Frontend, opts: &Options, found: &mut Functions, i: u32) {
    println!(
        "xpci: pcifront: disconnecting and connecting again ({i} of {})",
        opts.reconnect
    );
    let ok = match fe.reconnect() {
        Ok(()) => true,
        Err(e) => {
            println!("xpci: pcifront: {e}");
            false
        }
    };
    report::check(
        if ok {
            "pcifront: connected again after closing"
        } else {
            "pcifront: connected again after closing (failed)"
        },
        ok,
    );
    if !ok {
        return;
    }
    let (roots, nroots) = copy_roots(fe.roots());
    *found = Functions::default();
    scan(fe, &roots[..nroots], opts, found);
    report::check(
        "pcifront: frontend state Connected again",
        fe.connected().is_ok(),
    );
    work(fe, found, opts);
}

fn copy_roots(roots: &[Root]) -> ([Root; 8], usize) {
    let mut out = [Root::default(); 8];
    let n = roots.len().min(out.len());
    out[..n].copy_from_slice(&roots[..n]);
    (out, n)
}

/// Enumerates, checks the `expect=` set and measures config reads.
fn scan<T: Transport>(t: &mut T, roots: &[Root], opts: &Options, found: &mut Functions) {
    let before = t.accesses();
    let t0 = cpu::rdtsc();
    pci::scan(t, roots, found);
    let cycles = cpu::rdtsc().wrapping_sub(t0);
    let n = found.iter().count();
    println!(
        "xpci: {n} functions on {} roots; the scan took {} config accesses, {cycles} cycles",
        roots.len(),
        t.accesses() - before
    );
    if found.dropped > 0 {
        println!("xpci: {} functions not kept", found.dropped);
    }
    report::check("scan: functions found", n > 0);
    if opts.has_expect {
        check_expect(t.name(), found, opts);
    }
    for &addr in opts.probes() {
        probe(addr);
    }
    if opts.bench.is_some() && opts.only.is_none() {
        if let Some(f) = found.iter().next() {
            let mut s = Samples::new();
            for _ in 0..(opts.rounds() * CONF_READS).min(Samples::MAX) {
                let t0 = cpu::rdtsc();
                let _ = t.read(f.addr, pci::reg::ID, 4);
                s.push(cpu::rdtsc().wrapping_sub(t0));
            }
            s.report("conf-read");
        }
    }
}

fn check_expect(transport: &str, found: &Functions, opts: &Options) {
    let mut missing = 0;
    for &ids in opts.expected() {
        if !found.iter().any(|f| f.ids() == ids) {
            println!(
                "xpci: expect: {:04x}:{:04x} not found",
                ids >> 16,
                ids & 0xffff
            );
            missing += 1;
        }
    }
    report::check("expect: every expected device found", missing == 0);
    let extra = found
        .iter()
        .filter(|f| !opts.expected().contains(&f.ids()))
        .inspect(|f| {
            println!(
                "xpci: expect: {:04x}:{:04x} at {} not expected",
                f.vendor,
                f.device,
                pci::show::Addr(f.addr)
            )
        })
        .count();
    if transport == "native" {
        report::skip(
            "expect: no device beyond the expected ones",
            "natively the chipset's functions are on bus 0 too",
        );
    } else {
        report::check("expect: no device beyond the expected ones", extra == 0);
    }
}

/// Reads 4 bytes at `addr` (identity mapping its page first): memory
/// the guest was not given must read all ones.
fn probe(addr: u64) {
    let page = Bar {
        kind: BarKind::Mem32,
        prefetchable: false,
        addr: addr & !0xfff,
        size: 4096,
    };
    let name = firmware::xen::pcifront::Text::new(format_args!("probe: {addr:#x} reads all-ones"));
    match Mmio::map(&page) {
        Ok(m) => {
            let v = m.read32(addr & 0xffc);
            println!("xpci: probe {addr:#x}: {v:#010x}");
            report::check_eq(name.as_str(), v, u32::MAX);
        }
        Err(e) => {
            println!("xpci: probe {addr:#x}: cannot be mapped ({e:?})");
            report::check(name.as_str(), false);
        }
    }
}

/// What follows the scan: one bench phase alone, or the drivers and then
/// the attacks.
fn work<T: Transport>(t: &mut T, found: &Functions, opts: &Options) {
    if let Some(only) = opts.only {
        bench::run(t, found, only);
        return;
    }
    drive(t, found, opts);
    if opts.attacks().is_empty() {
        return;
    }
    match found.iter().find(|f| f.ids() == edu::IDS) {
        Some(f) => attack::run(t, f, opts.attacks(), &opts.ram),
        None => {
            println!("xpci: attack: no edu to attack with");
            report::check("attack: edu found", false);
        }
    }
}

/// Runs the driver of each known function.
fn drive<T: Transport>(t: &mut T, found: &Functions, opts: &Options) {
    for f in found.iter() {
        drive_one(t, f, opts);
    }
}

/// Runs `f`'s driver, if it is a function this guest knows.
fn drive_one<T: Transport>(t: &mut T, f: &pci::Function, opts: &Options) {
    let bench = opts.bench.is_some();
    match f.ids() {
        edu::IDS => edu::run(t, f, opts.rounds(), bench),
        nvme::IDS => nvme::run(t, f, opts.rounds(), bench),
        e1000::E1000_IDS | e1000::E1000E_IDS => e1000::run(t, f),
        _ => {}
    }
}
