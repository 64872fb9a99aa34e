//! `cargo xtask bench`: hypercall round trips per backend, measured side by
//! side in one run, the image size, the fuzz targets' last long runs (from their
//! record, docs/fuzz-runs.md), and the exits by reason of every guest
//! scenario.
//!
//! The `bench` guest calls `xen_version` N times through the hypercall page
//! and N times directly, timing itself with its TSC. Each configuration runs
//! twice, with N and with 0 calls; the difference of the host wall times
//! divided by 2N is the wall time per round trip (boot and teardown cancel
//! out), and the hypervisor's own exit counts give the exits per call.
//!
//! The `bench_abi` guest measures Xen ABI latencies the same way on each
//! backend: event channel round trips through the upcall and xenstore
//! reads ([`abi`]). The `xpci` guest measures PCI passthrough: exits per
//! config access, device interrupt, BAR read and DMA, and the same image
//! without the hypervisor ([`pci`]; `--pci-only` runs only this section).
//! Debian's kernel boots as a PVH domain under the hypervisor and straight
//! from QEMU's PVH loader, timed to its `/init` ([`linux`]); then as a PV
//! domain whose own xen-pcifront reads config space, drives NVMe and
//! makes system calls for `pcibench`, against the published Xen figure and
//! the same kernel without a hypervisor ([`linux_pv`]; `--linux-pv-only`
//! runs only this section).
//!
//! Hot-plug: the time and exits from `pci-attach` to the guest driving
//! the function and from `pci-detach` to the function back in the pool,
//! for the `xpci` guest and for Linux's xen-pcifront ([`hotplug`];
//! `--hotplug-only` runs only this section).
//!
//! The victim of the attack scenarios measures its work rate under each
//! attack class against its rate alone ([`attack`]; `--attack-only` runs
//! only this section).
//!
//! Then every scenario that starts domains runs (two at a time, like
//! `cargo xtask test`), and the exit counts each domain's end reports become
//! one table per backend ([`exits`]). Everything runs through
//! [`crate::runner`], with its logs under target/xtask/bench/ so that it
//! never touches a concurrent `cargo xtask test`'s.

mod abi;
mod attack;
mod exits;
mod hotplug;
mod linux;
mod linux_pv;
mod pci;

use std::fs;
use std::path::Path;

use crate::cli::BenchOptions;
use crate::machine::{Boot, Emulator, Protocol, DEFAULT_BOCHS_CPU};
use crate::runner::{self, Report};
use crate::scenarios::{self, BootModule, ModuleContent, Outcome, Scenario};
use crate::{bochs, fuzz, image, metal, tools, Workspace};

/// Calls per measured run (each way).
const CALLS: u64 = 20_000;

/// What one run printed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RunNumbers {
    /// TSC cycles per call through the page and directly.
    pub page_cycles: Option<u64>,
    pub direct_cycles: Option<u64>,
    /// Hypercall exits the hypervisor counted for the domain.
    pub hypercall_exits: Option<u64>,
    /// Guest calls that returned an error.
    pub failed: u64,
}

/// Reads a number that follows `key` in `text`.
fn number_after(text: &str, key: &str) -> Option<u64> {
    let rest = &text[text.find(key)? + key.len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Picks the bench guest's and the hypervisor's lines out of a serial log.
pub fn parse_log(log: &str) -> RunNumbers {
    let mut n = RunNumbers::default();
    for line in log.lines() {
        for (how, slot) in [
            ("bench: page:", &mut n.page_cycles),
            ("bench: direct:", &mut n.direct_cycles),
        ] {
            if let Some(i) = line.find(how) {
                let rest = &line[i..];
                *slot = rest
                    .rfind("cycles, ")
                    .and_then(|j| number_after(&rest[j..], "cycles, "));
                n.failed += rest
                    .find("calls, ")
                    .and_then(|j| number_after(&rest[j..], "calls, "))
                    .unwrap_or(0);
            }
        }
    }
    n.hypercall_exits = exits::parse_log(log)
        .into_iter()
        .flatten()
        .find(|d| d.name == "bench")
        .and_then(|d| d.count("hypercall"));
    n
}

/// Calls per measured run under Bochs (each way): Bochs is slower.
const BOCHS_CALLS: u64 = 100_000;

/// Scenarios run at a time, as `cargo xtask test` does.
const WORKERS: usize = 2;

/// A backend and the emulator it is measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bed {
    Qemu,
    Bochs,
}

impl Bed {
    fn of(emulator: Emulator) -> Bed {
        match emulator {
            Emulator::Qemu { .. } => Bed::Qemu,
            Emulator::Bochs { .. } => Bed::Bochs,
        }
    }

    /// `(backend, emulator)` as the tables show them.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Bed::Qemu => ("SVM + NPT", "QEMU TCG `-cpu max`"),
            Bed::Bochs => ("VMX + EPT", "Bochs `corei7_skylake_x`"),
        }
    }
}

/// The scenario of one bench guest run: `calls` each way, under QEMU from
/// `-kernel` or under Bochs from a GRUB ISO. Leaked: the runner takes
/// `'static` scenarios, and there are four of them per run.
fn bench_scenario(bed: Bed, calls: u64) -> &'static Scenario {
    let backend = match bed {
        Bed::Qemu => "svm",
        Bed::Bochs => "vmx",
    };
    guest_scenario(
        bed,
        "bench",
        &format!("iterations={calls}"),
        format!("bench-{backend}-{calls}"),
        &["bench: page:", "bench: direct:", "(bench): exits:"],
    )
}

/// A scenario running firmware guest `guest` alone with `cmdline`, named
/// `name`, on `bed`, expecting `expect`. Leaked: the runner takes
/// `'static` scenarios, and bench makes a handful per run.
fn guest_scenario(
    bed: Bed,
    guest: &'static str,
    cmdline: &str,
    name: String,
    expect: &'static [&'static str],
) -> &'static Scenario {
    let cfg =
        format!("name = \"{guest}\"\nkernel = \"{guest}\"\nmemory = 32\ncmdline = \"{cmdline}\"\n");
    let modules: &'static [BootModule] = Box::leak(Box::new([
        BootModule {
            name: guest,
            content: ModuleContent::Guest(guest),
        },
        BootModule {
            name: Box::leak(format!("{guest}.cfg").into_boxed_str()),
            content: ModuleContent::Text(Box::leak(cfg.into_boxed_str())),
        },
    ]));
    let (emulator, boot, timeout_secs) = match bed {
        Bed::Qemu => (scenarios::QEMU_INTEL, Boot::Kernel, 300),
        Bed::Bochs => (scenarios::BOCHS_VMX, Boot::Grub(Protocol::Mb2), 600),
    };
    Box::leak(Box::new(Scenario {
        name: Box::leak(name.into_boxed_str()),
        description: Box::leak(format!("the {guest} guest").into_boxed_str()),
        emulator,
        boot,
        cmdline: "loglvl=info",
        timeout_secs,
        expect,
        reject: &[],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules,
    }))
}

/// A finished run: its report and its serial log.
struct Run {
    emulator: Emulator,
    report: Report,
    log: String,
}

fn read_log(report: &Report) -> String {
    fs::read(&report.serial)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Runs the bench guest with 0 and with `n` calls, one after the other (the
/// wall times are compared); returns the runs, the row of the round-trip
/// table and the calls that failed.
fn round_trips(
    ws: &Workspace,
    dir: &Path,
    elf: &Path,
    bed: Bed,
    n: u64,
    own_network: bool,
) -> Result<(Vec<Run>, String, u64), String> {
    let scenarios = [bench_scenario(bed, 0), bench_scenario(bed, n)];
    let jobs = runner::prepare_in(ws, |name| dir.join(name), Ok(elf), &scenarios);
    let mut runs = Vec::new();
    for job in &jobs {
        let report = runner::run_one(job, own_network);
        if !report.passed() {
            return Err(report.render(ws));
        }
        let log = read_log(&report);
        runs.push(Run {
            emulator: job.scenario.emulator,
            report,
            log,
        });
    }
    let (base, full) = (parse_log(&runs[0].log), parse_log(&runs[1].log));
    let (base_wall, wall) = (runs[0].report.elapsed, runs[1].report.elapsed);
    let calls = 2 * n;
    let per_call = wall.saturating_sub(base_wall).as_secs_f64() / calls as f64;
    let exits = match (full.hypercall_exits, base.hypercall_exits) {
        (Some(a), Some(b)) => format!("{:.2}", (a.saturating_sub(b)) as f64 / calls as f64),
        _ => String::from("?"),
    };
    let cycles = |c: Option<u64>| c.map_or(String::from("?"), |c| c.to_string());
    let (backend, emulator) = bed.names();
    let row = format!(
        "| {backend} | {emulator} | {calls} | {exits} | {} / {} | {:.1} us | {:.0} |",
        cycles(full.page_cycles),
        cycles(full.direct_cycles),
        per_call * 1e6,
        if per_call > 0.0 { 1.0 / per_call } else { 0.0 },
    );
    Ok((runs, row, full.failed))
}

/// The exits table a run belongs to: its backend (as the hypervisor
/// reported enabling it, else the one the emulator's CPU model is run for)
/// and the emulator.
fn table_title(emulator: Emulator, log: &str) -> String {
    let backend = if log.contains("svm: enabled") {
        "SVM + NPT"
    } else if log.contains("vmx: enabled") {
        "VMX + EPT"
    } else {
        match emulator {
            Emulator::Qemu { .. } => "SVM + NPT",
            Emulator::Bochs { cpu } if cpu == DEFAULT_BOCHS_CPU => "VMX + EPT",
            Emulator::Bochs { .. } => "backend not reported",
        }
    };
    match emulator {
        Emulator::Qemu { .. } => format!("{backend} (QEMU TCG `-cpu max`)"),
        Emulator::Bochs { cpu } => format!("{backend} (Bochs `{cpu}`)"),
    }
}

/// The scenarios whose exits are tabled: those that start domains (have a
/// guest image among their boot modules) on the backends in `beds`.
fn guest_scenarios(beds: &[Bed]) -> Vec<&'static Scenario> {
    scenarios::all()
        .filter(|s| {
            s.modules
                .iter()
                .any(|m| matches!(m.content, ModuleContent::Guest(_)))
        })
        .filter(|s| beds.contains(&Bed::of(s.emulator)))
        .collect()
}

/// Runs the PCI passthrough section and prints its tables; returns its
/// runs under the hypervisor (none if it failed, which it prints).
fn pci_section(ws: &Workspace, dir: &Path, elf: &Path) -> Option<Vec<Run>> {
    match pci::measure(ws, &dir.join("pci"), elf) {
        Ok((runs, text)) => {
            println!();
            println!(
                "PCI passthrough (xpci guest, edu at 00:03.0, SVM + NPT, QEMU TCG `-cpu max`):"
            );
            println!();
            println!("{text}");
            Some(runs)
        }
        Err(e) => {
            println!();
            println!("bench: PCI passthrough: {e}");
            None
        }
    }
}

/// Runs the Linux PV section and prints its tables; returns its runs
/// under the hypervisor and whether every run completed (it prints why
/// not).
fn linux_pv_section(ws: &Workspace, dir: &Path, elf: &Path) -> (Vec<Run>, bool) {
    println!();
    println!(
        "Linux PV (Debian's kernel as a PV domU, xen-pcifront, SVM + NPT, QEMU TCG `-cpu max`):"
    );
    println!();
    match linux_pv::measure(ws, &linux_pv::dir(dir), elf) {
        Ok((runs, text, ok)) => {
            println!();
            println!("{text}");
            (runs, ok)
        }
        Err(e) => {
            println!("bench: Linux PV: {e}");
            (Vec::new(), false)
        }
    }
}

/// Runs the attack section and prints its table; returns its runs and
/// whether every run passed.
fn attack_section(ws: &Workspace, dir: &Path, elf: &Path) -> (Vec<Run>, bool) {
    println!();
    println!("The victim's work rate under attack (ticker guest, SVM + NPT, QEMU TCG `-cpu max`):");
    println!();
    let (runs, table, ok) = attack::measure(ws, &dir.join("attack"), elf);
    println!();
    print!("{table}");
    println!();
    println!("{}", attack::NOTE);
    if !ok {
        println!("bench: an attack run did not pass its checks (see above)");
    }
    (runs, ok)
}

/// Runs the hot-plug section and prints its table; returns its runs and
/// whether both runs passed with every sample.
fn hotplug_section(ws: &Workspace, dir: &Path, elf: &Path) -> (Vec<Run>, bool) {
    println!();
    println!("Hot-plug (pci-attach, pci-detach; SVM + NPT, VT-d, QEMU TCG `-cpu max`):");
    println!();
    let (runs, table, ok) = hotplug::measure(ws, &dir.join("hotplug"), elf);
    println!();
    print!("{table}");
    println!();
    println!("{}", hotplug::NOTE);
    if !ok {
        println!("bench: a hot-plug run did not pass its checks or missed samples (see above)");
    }
    (runs, ok)
}

/// Prints one section's runs as an exits table (the `--*-only` runs).
fn section_exits(ws: &Workspace, runs: &[Run], logs: &Path) {
    let rows: Vec<exits::Row> = runs
        .iter()
        .flat_map(|r| {
            let problem = (!r.report.passed()).then_some("the run did not pass its checks");
            exits::rows(r.report.name, &r.log, problem)
        })
        .collect();
    let title = runs
        .first()
        .map_or_else(String::new, |r| table_title(scenarios::QEMU_INTEL, &r.log));
    println!();
    println!("Exits by reason, {title}:");
    println!();
    print!("{}", exits::render(&rows));
    println!();
    println!("logs in {}", ws.show(logs));
}

/// Runs the benchmarks and prints the tables.
pub fn run(ws: &Workspace, opts: &BenchOptions) -> Result<bool, String> {
    tools::ensure(&[tools::QEMU])?;
    // The guests, and the image with the test hooks: the PCI section's
    // runs without an IOMMU tell the guest host addresses (`debug.hpa`).
    let user_elf = metal::build(ws)?;
    let elf = metal::build_hooks(ws)?;
    let dir = ws.xtask_dir().join("bench");
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    if opts.linux_pv_only {
        let (runs, ok) = linux_pv_section(ws, &dir, &elf);
        section_exits(ws, &runs, &linux_pv::dir(&dir));
        if !ok {
            println!("bench: the Linux PV section did not complete (see above)");
        }
        return Ok(ok);
    }
    if opts.attack_only {
        let (runs, ok) = attack_section(ws, &dir, &elf);
        section_exits(ws, &runs, &dir.join("attack"));
        return Ok(ok);
    }
    if opts.hotplug_only {
        let (runs, ok) = hotplug_section(ws, &dir, &elf);
        section_exits(ws, &runs, &dir.join("hotplug"));
        return Ok(ok);
    }
    if opts.linux_pvh_only {
        println!("Linux PVH boot time:");
        println!();
        return linux::measure(ws, &dir.join("linux"), &elf);
    }
    if opts.pci_only {
        let Some(runs) = pci_section(ws, &dir, &elf) else {
            return Ok(false);
        };
        let rows: Vec<exits::Row> = runs
            .iter()
            .flat_map(|r| exits::rows(r.report.name, &r.log, None))
            .collect();
        println!();
        println!(
            "Exits by reason, {}:",
            table_title(scenarios::QEMU_INTEL, &runs[0].log)
        );
        println!();
        print!("{}", exits::render(&rows));
        println!();
        println!("logs in {}", ws.show(&dir.join("pci")));
        return Ok(true);
    }
    let mut beds = vec![(Bed::Qemu, CALLS)];
    match tools::ensure(&[tools::BOCHS, tools::GRUB]) {
        Ok(()) => beds.push((Bed::Bochs, BOCHS_CALLS)),
        Err(e) => println!("bench: no VMX rows: {e}"),
    }
    let own_network = beds.len() > 1 && bochs::can_unshare_network();

    // The tables are printed once their runs are done, so that the
    // runner's progress lines do not split them.
    let mut failed_calls = 0;
    let mut bench_runs = Vec::new();
    let mut rows = Vec::new();
    for &(bed, n) in &beds {
        let (runs, row, failed) =
            round_trips(ws, &dir.join("round-trips"), &elf, bed, n, own_network)?;
        failed_calls += failed;
        bench_runs.push(runs);
        rows.push(row);
    }
    println!();
    println!("Hypercall round trips (bench guest):");
    println!();
    println!("| backend | emulator | calls (page + direct) | hypercall exits per call | guest TSC cycles per call (page / direct) | host wall time per call | round trips per second |");
    println!("|---|---|---|---|---|---|---|");
    for row in &rows {
        println!("{row}");
    }
    let mut abi_rows = Vec::new();
    let mut abi_medians = (None, Vec::new());
    for &(bed, _) in &beds {
        let (runs, rows, failed) = abi::measure(ws, &dir.join("abi"), &elf, bed, own_network)?;
        if bed == Bed::Qemu {
            abi_medians = abi::medians(&runs);
        }
        failed_calls += failed;
        bench_runs.push(runs);
        abi_rows.extend(rows);
    }
    println!();
    println!("Xen ABI latencies (bench_abi guest):");
    println!();
    println!("{}", abi::HEADER);
    for row in &abi_rows {
        println!("{row}");
    }
    println!();
    println!("{}", abi::NOTE);

    let (abi_round_trip, abi_ops) = &abi_medians;
    let show = |m: &Option<u64>| m.map_or(String::from("?"), |m| m.to_string());
    println!();
    println!(
        "The Xen ABI operations (SVM + NPT) against the hypercall round trip of the same run \
         (bench_abi's paired run, {} rounds of one of each; medians in guest TSC cycles: \
         round trip {}, {}):",
        abi::PAIRED_ROUNDS,
        show(abi_round_trip),
        abi_ops
            .iter()
            .map(|(what, m)| format!("{what} {}", show(m)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!();
    print!("{}", pci::round_trip_lines(*abi_round_trip, abi_ops));

    let pci = pci_section(ws, &dir, &elf);
    let failed_pci = pci.is_none();
    bench_runs.extend(pci);

    println!();
    println!("Linux PVH boot time:");
    println!();
    let mut failed_boots = 0;
    match linux::measure(ws, &dir.join("linux"), &elf) {
        Ok(true) => {}
        Ok(false) => failed_boots += 1,
        Err(e) => println!("bench: no Linux boot rows: {e}"),
    }

    let (pv_runs, pv_ok) = linux_pv_section(ws, &dir, &elf);
    bench_runs.push(pv_runs);
    let (hotplug_runs, hotplug_ok) = hotplug_section(ws, &dir, &elf);
    bench_runs.push(hotplug_runs);
    let (attack_runs, attack_ok) = attack_section(ws, &dir, &elf);
    bench_runs.push(attack_runs);

    let bytes = fs::read(&elf).ok();
    let loaded = bytes.as_deref().and_then(image::loaded_size);
    println!();
    println!(
        "hypervisor image: {} KiB loaded ({})",
        loaded.map_or(String::from("?"), |b| (b / 1024).to_string()),
        ws.show(&elf)
    );
    if let Some(s) = bytes.as_deref().and_then(image::sections) {
        println!("{}", s.line());
    }

    // The fuzzers' last long runs, from their record: the bench does not
    // run them (`cargo xtask fuzz --all --runs N` does).
    println!();
    println!("Fuzz targets, last long run ({}):", fuzz::RECORD);
    println!();
    match fs::read_to_string(ws.root().join(fuzz::RECORD)) {
        Ok(text) => print!("{}", fuzz::record_table(&text)),
        Err(e) => println!("bench: no fuzz record: {e}"),
    }

    let only: Vec<Bed> = beds.iter().map(|&(bed, _)| bed).collect();
    // As in `cargo xtask test`: the scenarios of `scenarios::USER_IMAGE`
    // boot the image users boot, the rest the one with the test hooks.
    let (user, selected): (Vec<&'static Scenario>, Vec<&'static Scenario>) = guest_scenarios(&only)
        .into_iter()
        .partition(|s| scenarios::USER_IMAGE.contains(&s.name));
    let scenario_dir = dir.join("scenarios");
    let mut jobs = runner::prepare_in(ws, |name| scenario_dir.join(name), Ok(&elf), &selected);
    jobs.extend(runner::prepare_in(
        ws,
        |name| scenario_dir.join(name),
        Ok(&user_elf),
        &user,
    ));
    println!();
    println!(
        "exits by reason: {} scenarios, {WORKERS} at a time",
        jobs.len()
    );
    let reports = runner::run_all(&jobs, WORKERS, |report| {
        println!("{}", report.render(ws).lines().next().unwrap_or_default());
    });
    let mut tables: Vec<(String, Vec<exits::Row>)> = Vec::new();
    let mut add = |emulator: Emulator, name: &str, log: &str, problem: Option<&str>| {
        let title = table_title(emulator, log);
        let rows = exits::rows(name, log, problem);
        match tables.iter_mut().find(|(t, _)| *t == title) {
            Some((_, table)) => table.extend(rows),
            None => tables.push((title, rows)),
        }
    };
    for run in bench_runs.iter().flatten() {
        add(run.emulator, run.report.name, &run.log, None);
    }
    let mut failed_scenarios = 0;
    // In the order of the scenario list, not the order they ended in.
    for job in &jobs {
        let Some(report) = reports.iter().find(|r| r.name == job.scenario.name) else {
            continue;
        };
        // The reasons are on the scenario's FAIL line above.
        let problem = (!report.passed()).then_some("the run did not pass its checks");
        failed_scenarios += usize::from(problem.is_some());
        add(
            job.scenario.emulator,
            report.name,
            &read_log(report),
            problem,
        );
    }
    for (title, rows) in &tables {
        println!();
        println!("Exits by reason, {title}:");
        println!();
        print!("{}", exits::render(rows));
    }
    println!();
    println!("logs in {}", ws.show(&dir));
    if failed_calls > 0 {
        println!("bench: {failed_calls} calls returned an error");
    }
    if failed_scenarios > 0 {
        println!("bench: {failed_scenarios} scenarios did not pass their checks (see the notes)");
    }
    if failed_boots > 0 {
        println!("bench: a Linux boot did not reach its /init (see above)");
    }
    if failed_pci {
        println!("bench: the PCI passthrough section did not complete (see above)");
    }
    if !pv_ok {
        println!("bench: the Linux PV section did not complete (see above)");
    }
    if !hotplug_ok {
        println!("bench: the hot-plug section did not complete (see above)");
    }
    Ok(failed_calls == 0
        && failed_scenarios == 0
        && failed_boots == 0
        && !failed_pci
        && pv_ok
        && hotplug_ok
        && attack_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guest_and_hypervisor_lines_are_read() {
        let log = "[d1 bench] bench: page: 20000 xen_version calls, 0 failed, 123456 TSC cycles, 61 per call\n\
                   [d1 bench] bench: direct: 20000 xen_version calls, 2 failed, 99 TSC cycles, 7 per call\n\
                   dom1 (bench): exits: 13 cpuid, 3 msr, 0 io, 40002 hypercall, 0 hlt, 0 npf, 0 other\n";
        let n = parse_log(log);
        assert_eq!(n.page_cycles, Some(61));
        assert_eq!(n.direct_cycles, Some(7));
        assert_eq!(n.failed, 2);
        assert_eq!(n.hypercall_exits, Some(40002));
    }

    #[test]
    fn a_log_without_the_lines_gives_nothing() {
        assert_eq!(parse_log("hv: exiting: success\n"), RunNumbers::default());
    }

    #[test]
    fn bench_runs_are_scenarios_with_the_call_count_in_the_config() {
        let qemu = bench_scenario(Bed::Qemu, 20_000);
        assert_eq!(qemu.name, "bench-svm-20000");
        assert_eq!(
            (qemu.emulator, qemu.boot),
            (scenarios::QEMU_INTEL, Boot::Kernel)
        );
        let vmx = bench_scenario(Bed::Bochs, 0);
        assert_eq!(vmx.name, "bench-vmx-0");
        assert_eq!(vmx.boot, Boot::Grub(Protocol::Mb2));
        let ModuleContent::Text(cfg) = qemu.modules[1].content else {
            panic!("the second module is the configuration");
        };
        assert!(cfg.contains("iterations=20000"), "{cfg}");
        assert!(scenarios::all().all(|s| !s.name.starts_with("bench-")));
    }

    #[test]
    fn the_exits_tables_cover_the_scenarios_that_start_domains() {
        let both = guest_scenarios(&[Bed::Qemu, Bed::Bochs]);
        let names: Vec<&str> = both.iter().map(|s| s.name).collect();
        assert!(names.contains(&"pvh-hello-svm") && names.contains(&"pvh-hello-vmx"));
        assert!(!names.contains(&"panic-report-qemu"), "{names:?}");
        let svm = guest_scenarios(&[Bed::Qemu]);
        assert!(!svm.is_empty());
        assert!(svm.iter().all(|s| Bed::of(s.emulator) == Bed::Qemu));
    }

    #[test]
    fn exits_tables_are_per_backend_and_emulator() {
        let ryzen = Emulator::Bochs { cpu: "ryzen" };
        assert_eq!(
            table_title(ryzen, "svm: enabled (32768 ASIDs"),
            "SVM + NPT (Bochs `ryzen`)"
        );
        assert_eq!(
            table_title(ryzen, ""),
            "backend not reported (Bochs `ryzen`)"
        );
        assert_eq!(
            table_title(scenarios::BOCHS_VMX, ""),
            "VMX + EPT (Bochs `corei7_skylake_x`)"
        );
        assert_eq!(
            table_title(scenarios::QEMU_INTEL, "svm: enabled"),
            "SVM + NPT (QEMU TCG `-cpu max`)"
        );
    }
}
