//! PCI passthrough costs, with the `xpci` frontend guest
//! (firmware/src/bin/xpci.rs) driving QEMU's edu at 00:03.0 through the
//! hypervisor's PCI backend.
//!
//! The guest's `bench-only=<phase>:<N>` does one operation N times after
//! its scan and nothing else, timing each with its TSC; every phase does
//! the same setup first (edu's BAR mapped, its MSI enabled). Each phase is
//! one run under the hypervisor, and one more run does no operation (the
//! baseline): the hypervisor's counts at the domain's end (its exits line
//! and its events line) minus the baseline's, divided by N, are the exits,
//! hypercall exits, nested page faults and device interrupts of one
//! operation. The runs go one after the other, as QEMU's TSC follows the
//! host clock.
//!
//! The same image then boots straight from QEMU's PVH loader, without a
//! hypervisor, on the same machine with the same devices (its native
//! transport: ports 0xCF8/0xCFC and MSI programmed by the guest), for the
//! phases whose cost the hypervisor changes most visibly: config reads,
//! edu's interrupt and its DMA.
//!
//! Last, the IOMMU's share: edu's interrupt, config reads and edu's DMA
//! with the Intel IOMMU, with the AMD IOMMU and with no IOMMU
//! (`pciback.insecure`; no DMA there), the medians as ratios to the run
//! without an IOMMU.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::exits;
use super::{read_log, Run};
use crate::machine::{Boot, Emulator, Iommu};
use crate::process::{self, Ended};
use crate::qemu;
use crate::runner;
use crate::scenarios::{self, BootModule, ModuleContent, Outcome, Scenario};
use crate::{metal, Workspace};

/// The guest's name: its image, module and domain name.
const GUEST: &str = "xpci";

/// The hypervisor's command line: edu and the e1000e (for its I/O BAR)
/// hidden for the guest (the standard machine's Intel IOMMU remaps their
/// DMA and interrupts).
const CMDLINE: &str = "loglvl=info pciback.hide=(00:03.0)(00:04.0)";

/// The bytes of one edu DMA (the guest's `edu::DMA_BYTES`).
const DMA_BYTES: u64 = 2048;

/// A measured operation: its `bench-only=` name, what the tables call it,
/// N under the hypervisor, and the goal for its exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub phase: &'static str,
    pub what: &'static str,
    pub ops: u64,
    pub goal: &'static str,
}

/// The phases, in table order. N keeps each run under about 30 s of
/// QEMU TCG (edu finishes a DMA from a 100 ms timer).
pub const PHASES: &[Spec] = &[
    Spec {
        phase: "hypercall",
        what: "hypercall round trip (`xen_version`, the direct instruction: one world switch)",
        ops: 10_000,
        goal: "1 exit",
    },
    Spec {
        phase: "conf-read",
        what: "config read (4 bytes: vendor and device ID)",
        ops: 10_000,
        goal: "1 exit",
    },
    Spec {
        phase: "conf-write",
        what: "config write (1 byte: Cache Line Size, same value)",
        ops: 10_000,
        goal: "1 exit",
    },
    Spec {
        phase: "edu-irq",
        what: "edu interrupt (raise write to the event handler, then ack)",
        ops: 1_000,
        goal: "1 exit per device interrupt",
    },
    Spec {
        phase: "msix-irq",
        what: "e1000e MSI-X interrupt (ICS write to the event handler, then ICR read)",
        ops: 1_000,
        goal: "1 exit per device interrupt",
    },
    Spec {
        phase: "edu-mmio",
        what: "edu BAR read (identification register)",
        ops: 10_000,
        goal: "0 exits",
    },
    Spec {
        phase: "edu-dma",
        what: "edu DMA, 2 KiB RAM -> edu (run bit polled)",
        ops: 200,
        goal: "",
    },
    Spec {
        phase: "io-read",
        what: "e1000e I/O BAR read (IOADDR write, IODATA read)",
        ops: 10_000,
        goal: "0 exits",
    },
];

/// The phases also measured without the hypervisor.
pub const NATIVE_PHASES: &[&str] = &["conf-read", "edu-irq", "msix-irq", "edu-dma"];

/// What the guest printed for one phase:
///
/// ```text
/// xpci-bench: conf-read n 10000 median 61640 mean 70015 total 700150000
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phase {
    pub ops: u64,
    pub median: u64,
    pub mean: u64,
    pub total: u64,
}

/// The guest's line for `phase` in `log` (a serial log with `[d1 xpci] `
/// prefixes, or the native console without them).
pub fn parse_phase(log: &str, phase: &str) -> Option<Phase> {
    let marker = format!("xpci-bench: {phase} n ");
    let line = log.lines().find(|l| l.contains(&marker))?;
    let rest = &line[line.find(&marker)? + marker.len() - 2..];
    Some(Phase {
        ops: super::number_after(rest, "n ")?,
        median: super::number_after(rest, "median ")?,
        mean: super::number_after(rest, "mean ")?,
        total: super::number_after(rest, "total ")?,
    })
}

/// What the hypervisor counted for the guest's domain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Exits of every kind.
    pub exits: u64,
    pub hypercalls: u64,
    pub npf: u64,
    pub device_interrupts: u64,
}

/// The guest domain's exits and events lines in `log`.
pub fn parse_counts(log: &str) -> Option<Counts> {
    let (exits, events) = exits::domain_lines(log, GUEST)?;
    Some(Counts {
        exits: exits.counts.iter().map(|&(_, n)| n).sum(),
        hypercalls: exits.count("hypercall")?,
        npf: exits.count("npf")?,
        device_interrupts: events.count("device interrupts")?,
    })
}

/// The domain configuration of one run.
pub fn config(bench_only: &str) -> String {
    format!(
        "name = \"{GUEST}\"\nkernel = \"{GUEST}\"\nmemory = 64\npci = ['00:03.0', '00:04.0']\n\
         extra = \"expect=1234:11e8,8086:10d3 bench-only={bench_only}\"\n"
    )
}

/// `bench-only=` of a phase with `ops` operations (`baseline` alone).
fn bench_only(phase: &str, ops: u64) -> String {
    if phase == "baseline" {
        phase.to_string()
    } else {
        format!("{phase}:{ops}")
    }
}

/// A machine and hypervisor command line the guest's runs happen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    /// What the tables call it.
    pub label: &'static str,
    /// In the runs' names: `bench-pci-<tag>-<phase>-<N>`.
    pub tag: &'static str,
    pub emulator: Emulator,
    pub cmdline: &'static str,
    /// What the hypervisor's log must show for the run to count as this
    /// setup, and what it must not.
    pub expect: &'static [&'static str],
    pub reject: &'static [&'static str],
}

/// The runs of the main tables: the standard machine (Intel IOMMU).
pub const STANDARD: Setup = Setup {
    label: "Intel IOMMU",
    tag: "svm",
    emulator: scenarios::QEMU_INTEL,
    cmdline: CMDLINE,
    expect: &[],
    reject: &[],
};

/// Passthrough with the IOMMU's remapping: the backend refuses a function
/// whose DMA and interrupts are not both remapped.
const REMAPPED: &str = CMDLINE;

/// Passthrough without an IOMMU: only with the operator's opt-in. The
/// guest is told where its first 2 MiB are in host memory (`debug.hpa`),
/// so that edu's DMA can be given host addresses there.
const INSECURE: &str = "loglvl=info pciback.hide=(00:03.0)(00:04.0) pciback.insecure debug.hpa";

/// The hypervisor's line when edu's DMA goes through the guest's tables.
const TRANSLATED: &str = "iommu: 0000:00:03.0 translates through dom1's tables";

/// The IOMMU comparison's setups; the last one is without an IOMMU, the
/// reference of the ratios.
pub const IOMMU_SETUPS: &[Setup] = &[
    Setup {
        label: "Intel IOMMU (VT-d: DMA and interrupt remapping)",
        tag: "iommu-vtd-svm",
        emulator: scenarios::QEMU_INTEL,
        cmdline: REMAPPED,
        expect: &["iommu: VT-d unit 0: interrupt remapping on", TRANSLATED],
        reject: &["WITHOUT", "iommu: blocked"],
    },
    Setup {
        label: "AMD IOMMU (AMD-Vi: DMA and interrupt remapping)",
        tag: "iommu-amdvi-svm",
        emulator: scenarios::QEMU_AMD,
        cmdline: REMAPPED,
        expect: &[
            "iommu: AMD-Vi unit 0: interrupt remapping per function",
            TRANSLATED,
        ],
        reject: &["WITHOUT", "iommu: blocked"],
    },
    Setup {
        label: "no IOMMU (`pciback.insecure`)",
        tag: "iommu-none-svm",
        emulator: Emulator::Qemu {
            iommu: Iommu::None,
            devices: &[],
        },
        cmdline: INSECURE,
        expect: &[
            "iommu: no IOMMU found",
            "WITHOUT DMA isolation or interrupt remapping (pciback.insecure)",
            "debug.hpa: told that its guest-physical 0-2 MiB is host-physical",
        ],
        reject: &[],
    },
];

/// The phases of the IOMMU comparison, with N. Without an IOMMU the
/// guest gives edu host addresses (`debug.hpa`); the DMA only reads RAM.
pub const IOMMU_PHASES: &[(&str, u64)] =
    &[("edu-irq", 1_000), ("conf-read", 2_000), ("edu-dma", 100)];

/// The scenario of one run under the hypervisor on the standard machine.
/// The name on the last `xpci-bench:` line a run of `phase` prints: its
/// own, or for `paired` that of its last operation.
fn last_line(phase: &str) -> String {
    match PAIRED.last() {
        Some(last) if phase == "paired" => format!("paired-{last}"),
        _ => phase.to_string(),
    }
}

/// The operations of a `paired` run, in the order of its rounds (the
/// guest's `firmware::pci::bench::PAIRED`).
pub const PAIRED: [&str; 4] = ["hypercall", "conf-read", "conf-write", "edu-irq"];

/// Rounds of the `paired` run, whose medians the ratio lines compare.
pub const PAIRED_ROUNDS: u64 = 5_000;

/// `phase`'s figures in the `paired` run's log.
pub fn parse_paired(log: &str, phase: &str) -> Option<Phase> {
    parse_phase(log, &format!("paired-{phase}"))
}

fn scenario(phase: &str, ops: u64) -> &'static Scenario {
    scenario_on(&STANDARD, phase, ops)
}

/// The scenario of one run under the hypervisor on `setup`. Leaked, as
/// the runner takes `'static` scenarios.
fn scenario_on(setup: &Setup, phase: &str, ops: u64) -> &'static Scenario {
    let what = bench_only(phase, ops);
    let name = format!("bench-pci-{}-{}", setup.tag, what.replace(':', "-"));
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let mut expect = vec![
        leak(format!("xpci-bench: {} n ", last_line(phase))),
        leak(format!("({GUEST}): exits:")),
        leak(format!("({GUEST}): events:")),
        leak(format!("dom1 ({GUEST}): powered off")),
    ];
    expect.extend(setup.expect);
    let expect: &'static [&'static str] = expect.leak();
    let mut reject = vec![": FAIL"];
    reject.extend(setup.reject);
    let reject: &'static [&'static str] = reject.leak();
    let modules: &'static [BootModule] = Box::leak(Box::new([
        BootModule {
            name: GUEST,
            content: ModuleContent::Guest(GUEST),
        },
        BootModule {
            name: "xpci.cfg",
            content: ModuleContent::Text(leak(config(&what))),
        },
    ]));
    Box::leak(Box::new(Scenario {
        name: leak(name),
        description: "the xpci guest measuring one PCI operation",
        emulator: setup.emulator,
        boot: Boot::Kernel,
        cmdline: setup.cmdline,
        timeout_secs: 120,
        expect,
        reject,
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules,
    }))
}

/// `(run - base) / ops` with two decimals, `?` when a count is missing.
fn per_op(run: Option<u64>, base: Option<u64>, ops: u64) -> String {
    super::abi::per_op(run, base, ops)
}

/// The header of the table under the hypervisor.
pub const HEADER: &str = "| operation | N | guest TSC cycles per op (median) | guest TSC cycles per op (mean) | exits per op | hypercall exits per op | npf exits per op | device interrupts per op | goal |\n\
                          |---|---:|---:|---:|---:|---:|---:|---:|---|";

/// The row of one phase against the baseline.
pub fn row(spec: &Spec, phase: Option<Phase>, run: &str, base: &str) -> String {
    let (c, b) = (parse_counts(run), parse_counts(base));
    let Some(p) = phase else {
        return format!(
            "| {} | ? | ? | ? | ? | ? | ? | ? | {} |",
            spec.what, spec.goal
        );
    };
    let count = |f: fn(&Counts) -> u64| per_op(c.as_ref().map(f), b.as_ref().map(f), p.ops);
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        spec.what,
        p.ops,
        p.median,
        p.mean,
        count(|c| c.exits),
        count(|c| c.hypercalls),
        count(|c| c.npf),
        count(|c| c.device_interrupts),
        spec.goal,
    )
}

/// The header of the table without the hypervisor.
pub const NATIVE_HEADER: &str =
    "| operation (no hypervisor, QEMU's PVH loader) | N | guest TSC cycles per op (median) | guest TSC cycles per op (mean) |\n\
     |---|---:|---:|---:|";

/// A row of the native table.
pub fn native_row(spec: &Spec, phase: Option<Phase>) -> String {
    match phase {
        Some(p) => format!("| {} | {} | {} | {} |", spec.what, p.ops, p.median, p.mean),
        None => format!("| {} | ? | ? | ? |", spec.what),
    }
}

/// `a / b` with two decimals, `?` if either is missing or `b` is 0.
fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => String::from("?"),
    }
}

/// edu's DMA throughput: bytes per TSC cycle over all transfers.
fn throughput(p: Option<Phase>) -> Option<f64> {
    p.filter(|p| p.total > 0)
        .map(|p| (p.ops * DMA_BYTES) as f64 / p.total as f64)
}

fn show(v: Option<f64>, digits: usize) -> String {
    v.map_or(String::from("?"), |v| format!("{v:.digits$}"))
}

/// The ratio rows: edu's interrupt latency and a config read (medians),
/// and DMA throughput (bytes per cycle over all transfers), under the
/// hypervisor against native. `hv` and `native` look a phase up.
pub fn ratios(
    hv: impl Fn(&str) -> Option<Phase>,
    native: impl Fn(&str) -> Option<Phase>,
) -> String {
    let median = |p: Option<Phase>| p.map(|p| p.median as f64);
    let rows = [
        (
            "edu interrupt latency (median TSC cycles)",
            median(hv("edu-irq")),
            median(native("edu-irq")),
            0,
        ),
        (
            "e1000e MSI-X interrupt latency (median TSC cycles)",
            median(hv("msix-irq")),
            median(native("msix-irq")),
            0,
        ),
        (
            "edu DMA throughput (bytes per TSC cycle, 2 KiB transfers)",
            throughput(hv("edu-dma")),
            throughput(native("edu-dma")),
            7,
        ),
        (
            "config read (median TSC cycles)",
            median(hv("conf-read")),
            median(native("conf-read")),
            0,
        ),
    ];
    let mut out = String::from(
        "| measure | under the hypervisor | native | under the hypervisor / native |\n\
         |---|---:|---:|---:|\n",
    );
    for (what, h, n, digits) in rows {
        out.push_str(&format!(
            "| {what} | {} | {} | {} |\n",
            show(h, digits),
            show(n, digits),
            ratio(h, n)
        ));
    }
    out
}

/// The `paired` run's medians: the four operations taken in turn, one of
/// each per round, in one domain.
pub fn paired_table(log: &str) -> String {
    let mut out = format!(
        "| the `paired` run: one of each per round, {PAIRED_ROUNDS} rounds | guest TSC cycles per op (median) | guest TSC cycles per op (mean) |\n|---|---:|---:|\n"
    );
    for name in PAIRED {
        let what = PHASES
            .iter()
            .find(|s| s.phase == name)
            .map_or(name, |s| s.what);
        let (median, mean) = parse_paired(log, name)
            .map_or((String::from("?"), String::from("?")), |p| {
                (p.median.to_string(), p.mean.to_string())
            });
        out.push_str(&format!("| {what} | {median} | {mean} |\n"));
    }
    out
}

/// The most an operation through the backend may cost, in hypercall round
/// trips (one world switch) measured in the same run: the `paired` run,
/// whose rounds take one of each.
pub const ROUND_TRIP_GOAL: f64 = 1.5;

/// `<what> / round trip: X.XX (goal: at most 1.50)`: the median of an
/// operation over the median hypercall round trip of the same run, one
/// line each, to be read mechanically. `?` when either is missing.
pub fn round_trip_lines(round_trip: Option<u64>, ops: &[(&str, Option<u64>)]) -> String {
    let mut out = String::new();
    for (what, median) in ops {
        let r = match (median, round_trip) {
            (Some(m), Some(rt)) if rt > 0 => format!("{:.2}", *m as f64 / rt as f64),
            _ => String::from("?"),
        };
        out.push_str(&format!(
            "{what} / round trip: {r} (goal: at most {ROUND_TRIP_GOAL:.2})\n"
        ));
    }
    out
}

/// What the tables' numbers are.
pub const NOTE: &str = "Per operation: guest TSC cycles as the guest timed them; exits, \
hypercall exits, nested page faults and device interrupts as the hypervisor counted them for \
the domain, minus a run with no operation (the same setup: edu's BAR mapped and its MSI \
enabled), divided by N. Goals: 1 exit per config read and per config write (the frontend's \
notification, answered in that exit), 1 exit per device interrupt delivered, 0 exits per \
BAR MMIO read (the BAR is mapped into the guest). edu completes a DMA from a 100 ms QEMU \
timer, so the DMA figures measure that timer more than the path. QEMU's TSC follows the host \
clock: compare rows taken side by side in one run. The ratio lines compare the medians of the \
`paired` run, whose rounds take a hypercall round trip, a config read, a config write and an \
edu interrupt in turn, so that the machine's load moves them alike (separate runs can land in \
a faster or slower stretch of it).";

/// The header of the IOMMU comparison.
pub const IOMMU_HEADER: &str = "| configuration | phase | N | TSC median | TSC mean | exits/op | ratio to IOMMU off (medians) |\n\
                                |---|---|---:|---:|---:|---:|---:|";

/// The IOMMU comparison's tables: per phase a row per setup (N, guest TSC
/// cycles per operation, exits per operation against the setup's own
/// baseline, the median against the one without an IOMMU), then edu's
/// DMA throughput. `log(setup, phase)` is the log of `setup`'s run of
/// `phase` (`baseline` for the run without an operation).
pub fn iommu_tables(log: impl Fn(&Setup, &str) -> Option<String>) -> String {
    let Some(off) = IOMMU_SETUPS.last() else {
        return String::new();
    };
    let median = |setup: &Setup, phase: &str| {
        let run = log(setup, phase)?;
        parse_phase(&run, phase).map(|p| p.median as f64)
    };
    let mut out = format!("{IOMMU_HEADER}\n");
    for &(phase, _) in IOMMU_PHASES {
        let reference = median(off, phase);
        for setup in IOMMU_SETUPS {
            let label = setup.label;
            let run = log(setup, phase).unwrap_or_default();
            let base = log(setup, "baseline").unwrap_or_default();
            let Some(p) = parse_phase(&run, phase) else {
                out.push_str(&format!("| {label} | `{phase}` | ? | ? | ? | ? | ? |\n"));
                continue;
            };
            let exits = |log: &str| parse_counts(log).map(|c| c.exits);
            let against = ratio(Some(p.median as f64), reference);
            out.push_str(&format!(
                "| {label} | `{phase}` | {} | {} | {} | {} | {against} |\n",
                p.ops,
                p.median,
                p.mean,
                per_op(exits(&run), exits(&base), p.ops),
            ));
        }
    }
    out.push_str(
        "\n| configuration | edu DMA throughput (bytes per TSC cycle, 2 KiB transfers) | ratio to IOMMU off |\n\
         |---|---:|---:|\n",
    );
    let dma =
        |setup: &Setup| throughput(log(setup, "edu-dma").and_then(|l| parse_phase(&l, "edu-dma")));
    let reference = dma(off);
    for setup in IOMMU_SETUPS {
        let t = dma(setup);
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            setup.label,
            show(t, 7),
            ratio(t, reference)
        ));
    }
    out
}

/// What the IOMMU comparison's numbers are.
pub const IOMMU_NOTE: &str = "The same guest and edu on the standard machine with its Intel \
IOMMU, with an AMD IOMMU instead, and with no IOMMU (`pciback.insecure`: edu's MSI programmed \
straight, its DMA not translated: the guest, told where its first 2 MiB are in host memory \
by `debug.hpa`, gives edu host addresses), each run checked for that setup in the hypervisor's \
log; the runs of one phase go one after the other. Exits per operation are against a run with \
no operation on the same setup. edu completes a DMA from a 100 ms QEMU timer, so the DMA \
figures measure that timer, not the translation.";

/// QEMU's arguments for the image `elf` booted directly by its PVH loader
/// on the standard machine, with `cmdline`; the guest's console (port
/// 0xE9) goes to `console`, the unused serial port to `serial`.
pub fn native_args(elf: &Path, cmdline: &str, serial: &Path, console: &Path) -> Vec<OsString> {
    let mut args = qemu::args(&qemu::Config {
        iommu: Iommu::Intel,
        devices: &[],
        media: qemu::Media::Kernel {
            elf,
            cmdline,
            modules: &[],
        },
        serial: qemu::Serial::File(serial),
        gdb: false,
        disk: None,
        acpi_tables: &[],
    });
    args.push("-debugcon".into());
    let mut file = OsString::from("file:");
    file.push(console);
    args.push(file);
    args
}

/// How long a native run may take.
const NATIVE_TIMEOUT: Duration = Duration::from_secs(120);

/// Boots `elf` without the hypervisor with `bench-only=<phase>:<ops>`;
/// returns its console.
fn run_native(elf: &Path, dir: &Path, phase: &str, ops: u64) -> Result<String, String> {
    let what = bench_only(phase, ops);
    let run_dir = dir.join(format!("native-{}", what.replace(':', "-")));
    fs::create_dir_all(&run_dir)
        .map_err(|e| format!("cannot create {}: {e}", run_dir.display()))?;
    let console = run_dir.join("console.log");
    let _ = fs::remove_file(&console);
    let args = native_args(
        elf,
        &format!("bench-only={what}"),
        &run_dir.join("serial.log"),
        &console,
    );
    let mut cmd = Command::new(qemu::PROGRAM);
    cmd.args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    process::isolate(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", qemu::PROGRAM))?;
    let ended = process::wait(&mut child, Some(NATIVE_TIMEOUT), true)
        .map_err(|e| format!("waiting for {}: {e}", qemu::PROGRAM))?;
    let log = fs::read(&console)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    // isa-debug-exit: the guest writes 0 when every check passed.
    if ended != Ended::Code(qemu::debug_exit_status(0)) {
        return Err(format!(
            "native {what}: {ended:?}, not a clean poweroff (console in {})",
            console.display()
        ));
    }
    Ok(log)
}

/// Runs the baseline and every phase under the hypervisor, then the
/// native phases; returns the runs under the hypervisor (for the exits
/// tables) and the section's text (tables and note).
/// Runs the section; returns its runs and its text.
pub fn measure(ws: &Workspace, dir: &Path, elf: &Path) -> Result<(Vec<Run>, String), String> {
    let mut wanted = vec![scenario("baseline", 0)];
    wanted.extend(PHASES.iter().map(|s| scenario(s.phase, s.ops)));
    wanted.push(scenario("paired", PAIRED_ROUNDS));
    let mut runs = run_in_turn(ws, dir, elf, &wanted)?;
    let paired = runs.last().map(|r| r.log.clone()).unwrap_or_default();
    let base = runs[0].log.clone();
    let mut text = format!("{HEADER}\n");
    for (spec, run) in PHASES.iter().zip(&runs[1..]) {
        let phase = parse_phase(&run.log, spec.phase);
        text.push_str(&row(spec, phase, &run.log, &base));
        text.push('\n');
    }

    let image: PathBuf = metal::guest_path(ws, GUEST);
    let mut native = Vec::new();
    for &name in NATIVE_PHASES {
        let Some(spec) = PHASES.iter().find(|s| s.phase == name) else {
            continue;
        };
        let log = run_native(&image, &dir.join("native"), spec.phase, spec.ops)?;
        native.push((spec, parse_phase(&log, spec.phase)));
    }
    text.push_str(&format!("\n{NATIVE_HEADER}\n"));
    for (spec, phase) in &native {
        text.push_str(&native_row(spec, *phase));
        text.push('\n');
    }
    let hv = |name: &str| {
        let i = PHASES.iter().position(|s| s.phase == name)?;
        parse_phase(&runs.get(i + 1)?.log, name)
    };
    let nat = |name: &str| {
        native
            .iter()
            .find(|(s, _)| s.phase == name)
            .and_then(|&(_, p)| p)
    };
    text.push('\n');
    text.push_str(&ratios(hv, nat));
    text.push('\n');
    let median = |name: &str| parse_paired(&paired, name).map(|p| p.median);
    let round_trip = median("hypercall");
    text.push_str(&paired_table(&paired));
    text.push('\n');
    text.push_str(&round_trip_lines(
        round_trip,
        &[
            ("config read", median("conf-read")),
            ("config write", median("conf-write")),
            ("device interrupt", median("edu-irq")),
        ],
    ));
    text.push('\n');
    text.push_str(NOTE);

    let (iommu, table) = measure_iommu(ws, dir, elf)?;
    text.push_str("\n\nIOMMU on against off (interrupt latency, config reads, DMA):\n\n");
    text.push_str(&table);
    text.push('\n');
    text.push_str(IOMMU_NOTE);
    runs.extend(iommu);
    Ok((runs, text))
}

/// Runs `wanted` one after the other; the first that fails ends it.
fn run_in_turn(
    ws: &Workspace,
    dir: &Path,
    elf: &Path,
    wanted: &[&'static Scenario],
) -> Result<Vec<Run>, String> {
    let jobs = runner::prepare_in(ws, |name| dir.join(name), Ok(elf), wanted);
    let mut runs = Vec::new();
    for job in &jobs {
        let report = runner::run_one(job, false);
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
    Ok(runs)
}

/// The IOMMU comparison's runs, phase by phase (the baselines first), each
/// phase's setups one after the other so that the host's load moves them
/// alike; returns them and the comparison's tables.
fn measure_iommu(ws: &Workspace, dir: &Path, elf: &Path) -> Result<(Vec<Run>, String), String> {
    let mut wanted = Vec::new();
    let mut keys = Vec::new();
    let phases = std::iter::once(("baseline", 0)).chain(IOMMU_PHASES.iter().copied());
    for (phase, ops) in phases {
        for (i, setup) in IOMMU_SETUPS.iter().enumerate() {
            wanted.push(scenario_on(setup, phase, ops));
            keys.push((i, phase));
        }
    }
    let runs = run_in_turn(ws, dir, elf, &wanted)?;
    let table = iommu_tables(|setup, phase| {
        let i = IOMMU_SETUPS.iter().position(|s| s == setup)?;
        let at = keys.iter().position(|&k| k == (i, phase))?;
        runs.get(at).map(|r| r.log.clone())
    });
    Ok((runs, table))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[d1 xpci] xpci-bench: baseline n 0 median 0 mean 0 total 0\n\
        dom1 (xpci): exits: 10 cpuid, 3 msr, 0 io, 400 hypercall, 0 hlt, 1 npf, 5 interrupt window, 0 other\n\
        dom1 (xpci): events: 4 upcalls injected, 370 sends, 0 timer expiries, 0 device interrupts\n";

    const IRQ: &str = "[d1 xpci] xpci: 1 functions on 1 roots\n\
        [d1 xpci] xpci-bench: edu-irq n 1000 median 250000 mean 300000 total 300000000\n\
        dom1 (xpci): exits: 10 cpuid, 3 msr, 0 io, 400 hypercall, 0 hlt, 1 npf, 1005 interrupt window, 1000 other\n\
        dom1 (xpci): events: 1004 upcalls injected, 370 sends, 0 timer expiries, 1000 device interrupts\n";

    #[test]
    fn the_guest_line_is_read_with_or_without_the_domain_prefix() {
        let want = Phase {
            ops: 1000,
            median: 250000,
            mean: 300000,
            total: 300000000,
        };
        assert_eq!(parse_phase(IRQ, "edu-irq"), Some(want));
        let native = "xpci-bench: edu-irq n 1000 median 250000 mean 300000 total 300000000\n";
        assert_eq!(parse_phase(native, "edu-irq"), Some(want));
        assert_eq!(parse_phase(IRQ, "edu-dma"), None);
        assert_eq!(
            parse_phase(BASE, "baseline"),
            Some(Phase::default()),
            "the baseline's line"
        );
        // The older line of `bench=N` has no count: not this one.
        assert_eq!(
            parse_phase("xpci-bench: edu-irq median 5 mean 6\n", "edu-irq"),
            None
        );
        assert_eq!(
            parse_phase("xpci-bench: edu-irq n 3 median 5 mean 6\n", "edu-irq"),
            None
        );
    }

    #[test]
    fn the_hypervisor_counts_include_npf_and_device_interrupts() {
        assert_eq!(
            parse_counts(IRQ),
            Some(Counts {
                exits: 2419,
                hypercalls: 400,
                npf: 1,
                device_interrupts: 1000
            })
        );
        let old_events = IRQ.replace(", 1000 device interrupts", "");
        assert_eq!(parse_counts(&old_events), None);
        assert_eq!(parse_counts(&IRQ.replace("(xpci)", "(edu)")), None);
    }

    #[test]
    fn a_row_subtracts_the_baseline_and_divides_by_n() {
        let spec = PHASES.iter().find(|s| s.phase == "edu-irq").unwrap();
        let row = row(spec, parse_phase(IRQ, "edu-irq"), IRQ, BASE);
        assert_eq!(
            row,
            "| edu interrupt (raise write to the event handler, then ack) | 1000 | 250000 | 300000 | 2.00 | 0.00 | 0.00 | 1.00 | 1 exit per device interrupt |"
        );
        let cols = |s: &str| s.lines().next().map(|l| l.matches('|').count());
        assert_eq!(cols(HEADER), cols(&row));
        let missing = super::row(spec, None, IRQ, BASE);
        assert_eq!(cols(&missing), cols(HEADER));
        assert_eq!(
            cols(NATIVE_HEADER),
            cols(&native_row(spec, Some(Phase::default())))
        );
    }

    #[test]
    fn round_trip_lines_divide_medians_and_say_the_goal() {
        let text = round_trip_lines(
            Some(60_000),
            &[("config read", Some(89_000)), ("device interrupt", None)],
        );
        assert_eq!(
            text,
            "config read / round trip: 1.48 (goal: at most 1.50)\n\
             device interrupt / round trip: ? (goal: at most 1.50)\n"
        );
        assert_eq!(
            round_trip_lines(None, &[("config write", Some(1))]),
            "config write / round trip: ? (goal: at most 1.50)\n"
        );
    }

    #[test]
    fn the_paired_run_gives_a_median_per_operation() {
        let log = "[d1 xpci] xpci-bench: paired-hypercall n 5000 median 55000 mean 56000 total 280000000\n\
                   [d1 xpci] xpci-bench: paired-conf-read n 5000 median 77000 mean 80000 total 400000000\n\
                   [d1 xpci] xpci-bench: paired-conf-write n 5000 median 80000 mean 81000 total 405000000\n";
        assert_eq!(
            parse_paired(log, "conf-read").map(|p| p.median),
            Some(77_000)
        );
        assert_eq!(parse_paired(log, "edu-irq"), None);
        // A separate run's line is not the paired run's.
        assert_eq!(
            parse_paired(
                "xpci-bench: hypercall n 1 median 1 mean 1 total 1",
                "hypercall"
            ),
            None
        );
        let table = paired_table(log);
        assert!(table.contains("| config read (4 bytes: vendor and device ID) | 77000 | 80000 |"));
        assert!(table
            .contains("| edu interrupt (raise write to the event handler, then ack) | ? | ? |"));
        assert_eq!(last_line("paired"), "paired-edu-irq");
        assert_eq!(last_line("conf-read"), "conf-read");
    }

    #[test]
    fn ratios_compare_medians_and_dma_throughput() {
        let phase = |median, total, ops| Phase {
            ops,
            median,
            mean: total / ops,
            total,
        };
        let hv = |name: &str| match name {
            "edu-irq" => Some(phase(300, 3000, 10)),
            "edu-dma" => Some(phase(0, 2048 * 4, 2)),
            "conf-read" => Some(phase(1000, 10000, 10)),
            _ => None,
        };
        let native = |name: &str| match name {
            "edu-irq" => Some(phase(100, 1000, 10)),
            "edu-dma" => Some(phase(0, 2048, 2)),
            _ => None,
        };
        let text = ratios(hv, native);
        assert!(
            text.contains("| edu interrupt latency (median TSC cycles) | 300 | 100 | 3.00 |"),
            "{text}"
        );
        assert!(
            text.contains("| 0.5000000 | 2.0000000 | 0.25 |"),
            "throughput is bytes per cycle: {text}"
        );
        assert!(
            text.contains("| config read (median TSC cycles) | 1000 | ? | ? |"),
            "{text}"
        );
    }

    #[test]
    fn runs_hide_edu_and_the_e1000e_and_name_their_phase() {
        let s = scenario("conf-read", 10_000);
        assert_eq!(s.name, "bench-pci-svm-conf-read-10000");
        assert_eq!(s.emulator, scenarios::QEMU_INTEL);
        assert_eq!(s.boot, Boot::Kernel);
        assert!(
            s.cmdline.ends_with("pciback.hide=(00:03.0)(00:04.0)"),
            "{}",
            s.cmdline
        );
        assert!(!s.cmdline.contains("pciback.insecure"));
        let ModuleContent::Text(cfg) = s.modules[1].content else {
            panic!("the second module is the configuration");
        };
        assert!(cfg.contains("memory = 64\n"), "{cfg}");
        assert!(cfg.contains("pci = ['00:03.0', '00:04.0']\n"), "{cfg}");
        assert!(
            cfg.contains("expect=1234:11e8,8086:10d3 bench-only=conf-read:10000\""),
            "{cfg}"
        );
        assert_eq!(scenario("baseline", 0).name, "bench-pci-svm-baseline");
        assert!(scenarios::all().all(|s| !s.name.starts_with("bench-pci-")));
    }

    #[test]
    fn the_iommu_setups_differ_only_in_the_iommu_and_the_opt_in() {
        let [vtd, amd, off] = IOMMU_SETUPS else {
            panic!("three setups");
        };
        assert_eq!(
            vtd.emulator,
            Emulator::Qemu {
                iommu: Iommu::Intel,
                devices: &[]
            }
        );
        assert_eq!(
            amd.emulator,
            Emulator::Qemu {
                iommu: Iommu::Amd,
                devices: &[]
            }
        );
        assert_eq!(
            off.emulator,
            Emulator::Qemu {
                iommu: Iommu::None,
                devices: &[]
            }
        );
        for remapped in [vtd, amd] {
            assert_eq!(
                remapped.cmdline,
                "loglvl=info pciback.hide=(00:03.0)(00:04.0)"
            );
            let s = scenario_on(remapped, "edu-irq", 1000);
            assert!(s.expect.contains(&TRANSLATED), "{:?}", s.expect);
            assert!(s.reject.contains(&"WITHOUT"), "{:?}", s.reject);
            assert!(s.reject.contains(&": FAIL"));
        }
        assert!(off
            .cmdline
            .contains("pciback.hide=(00:03.0)(00:04.0) pciback.insecure"));
        let s = scenario_on(off, "conf-read", 2000);
        assert_eq!(s.name, "bench-pci-iommu-none-svm-conf-read-2000");
        assert_eq!(s.emulator, off.emulator);
        assert!(s
            .expect
            .iter()
            .any(|e| e.contains("WITHOUT DMA isolation or interrupt remapping")));
        assert!(s.expect.contains(&"xpci-bench: conf-read n "));
        let ModuleContent::Text(cfg) = s.modules[1].content else {
            panic!("the second module is the configuration");
        };
        assert!(cfg.contains("bench-only=conf-read:2000\""), "{cfg}");
        assert_eq!(
            scenario_on(amd, "baseline", 0).name,
            "bench-pci-iommu-amdvi-svm-baseline"
        );
        // The standard runs keep their names and setup.
        assert_eq!(scenario("edu-irq", 1000).name, "bench-pci-svm-edu-irq-1000");
        assert_eq!(scenario("edu-irq", 1000).reject, &[": FAIL"]);
    }

    #[test]
    fn the_run_without_an_iommu_gives_edu_host_addresses() {
        let off = IOMMU_SETUPS.last().unwrap();
        assert_eq!(
            off.emulator,
            Emulator::Qemu {
                iommu: Iommu::None,
                devices: &[]
            }
        );
        assert!(off.cmdline.contains("pciback.insecure"));
        assert!(off.cmdline.contains("debug.hpa"));
        assert!(off.expect.iter().any(|e| e.contains("debug.hpa: told")));
        for setup in &IOMMU_SETUPS[..IOMMU_SETUPS.len() - 1] {
            assert!(!setup.cmdline.contains("debug.hpa"), "{}", setup.label);
        }
        for &(phase, ops) in IOMMU_PHASES {
            assert!(PHASES.iter().any(|s| s.phase == phase), "{phase}");
            assert!(ops > 0 && ops <= 2_000, "{phase}: short runs");
        }
    }

    #[test]
    fn the_iommu_table_compares_medians_with_the_run_without_an_iommu() {
        let bench = |phase: &str, n: u64, median: u64, total: u64| {
            format!(
                "[d1 xpci] xpci-bench: {phase} n {n} median {median} mean {} total {total}\n",
                total / n
            )
        };
        let log = |setup: &Setup, phase: &str| -> Option<String> {
            let vtd = setup.tag == "iommu-vtd-svm";
            let off = setup.tag == "iommu-none-svm";
            match phase {
                "baseline" => Some(BASE.to_string()),
                // Without the IOMMU: 200000 cycles, 2 exits per interrupt.
                "edu-irq" if off => Some(IRQ.replace("250000", "200000")),
                "edu-irq" if vtd => Some(IRQ.to_string()),
                // The AMD run's guest line is missing.
                "edu-irq" => Some(IRQ.replace("xpci-bench", "xpci")),
                "conf-read" if off => Some(bench(phase, 2000, 1000, 2_400_000) + BASE),
                "conf-read" => Some(bench(phase, 2000, 1500, 3_000_000) + BASE),
                "edu-dma" if off => Some(bench(phase, 100, 1, 2048 * 100 * 2) + BASE),
                "edu-dma" if vtd => Some(bench(phase, 100, 1, 2048 * 100 * 4) + BASE),
                _ => None,
            }
        };
        let text = iommu_tables(log);
        let want = [
            "| Intel IOMMU (VT-d: DMA and interrupt remapping) | `edu-irq` | 1000 | 250000 | 300000 | 2.00 | 1.25 |",
            "| AMD IOMMU (AMD-Vi: DMA and interrupt remapping) | `edu-irq` | ? | ? | ? | ? | ? |",
            "| no IOMMU (`pciback.insecure`) | `edu-irq` | 1000 | 200000 | 300000 | 2.00 | 1.00 |",
            "| Intel IOMMU (VT-d: DMA and interrupt remapping) | `conf-read` | 2000 | 1500 | 1500 | 0.00 | 1.50 |",
            "| no IOMMU (`pciback.insecure`) | `conf-read` | 2000 | 1000 | 1200 | 0.00 | 1.00 |",
            "| Intel IOMMU (VT-d: DMA and interrupt remapping) | `edu-dma` | 100 | 1 | 8192 | 0.00 | 1.00 |",
            "| AMD IOMMU (AMD-Vi: DMA and interrupt remapping) | `edu-dma` | ? | ? | ? | ? | ? |",
            "| no IOMMU (`pciback.insecure`) | `edu-dma` | 100 | 1 | 4096 | 0.00 | 1.00 |",
            // Half the throughput of the run without the IOMMU.
            "| Intel IOMMU (VT-d: DMA and interrupt remapping) | 0.2500000 | 0.50 |",
            "| AMD IOMMU (AMD-Vi: DMA and interrupt remapping) | ? | ? |",
            "| no IOMMU (`pciback.insecure`) | 0.5000000 | 1.00 |",
        ];
        for line in want {
            assert!(text.lines().any(|l| l == line), "{line}\nin\n{text}");
        }
        let cols = |s: &str| s.matches('|').count();
        let header = IOMMU_HEADER.lines().next().unwrap();
        for line in text.lines().take(10).skip(2) {
            assert_eq!(cols(line), cols(header), "{line}");
        }
    }

    #[test]
    fn every_native_phase_is_measured_under_the_hypervisor_too() {
        for name in NATIVE_PHASES {
            assert!(PHASES.iter().any(|s| s.phase == *name), "{name}");
        }
    }

    #[test]
    fn native_runs_boot_the_image_with_the_console_on_port_e9() {
        let a: Vec<String> = native_args(
            Path::new("/t/xpci"),
            "bench-only=edu-irq:1000",
            Path::new("/t/serial.log"),
            Path::new("/t/console.log"),
        )
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
        assert!(a.windows(2).any(|w| w == ["-kernel", "/t/xpci"]));
        assert!(a
            .windows(2)
            .any(|w| w == ["-append", "bench-only=edu-irq:1000"]));
        assert!(a
            .windows(2)
            .any(|w| w == ["-debugcon", "file:/t/console.log"]));
        assert!(a.iter().any(|s| s.starts_with("edu,addr=03.0")));
        assert!(a.iter().any(|s| s.starts_with("isa-debug-exit")));
        assert!(!a.iter().any(|s| s == "-initrd"));
    }
}
