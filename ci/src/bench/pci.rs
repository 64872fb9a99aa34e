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

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::exits::{self, DomainExits};
use super::{read_log, Run};
use crate::machine::{Boot, Iommu};
use crate::process::{self, Ended};
use crate::qemu;
use crate::runner;
use crate::scenarios::{self, BootModule, ModuleContent, Outcome, Scenario};
use crate::{metal, Workspace};

/// The guest's name: its image, module and domain name.
const GUEST: &str = "xpci";

/// The hypervisor's command line: edu hidden for the guest, passthrough
/// allowed without interrupt remapping.
const CMDLINE: &str = "loglvl=info pciback.hide=(00:03.0) pciback.insecure";

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
];

/// The phases also measured without the hypervisor.
pub const NATIVE_PHASES: &[&str] = &["conf-read", "edu-irq", "edu-dma"];

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

fn domain(lines: Vec<Result<DomainExits, String>>) -> Option<DomainExits> {
    lines.into_iter().flatten().find(|d| d.name == GUEST)
}

/// The guest domain's exits and events lines in `log`.
pub fn parse_counts(log: &str) -> Option<Counts> {
    let exits = domain(exits::parse_log(log))?;
    let events = domain(exits::parse_events_log(log))?;
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
        "name = \"{GUEST}\"\nkernel = \"{GUEST}\"\nmemory = 64\npci = ['00:03.0']\n\
         extra = \"expect=1234:11e8 bench-only={bench_only}\"\n"
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

/// The scenario of one run under the hypervisor. Leaked, as the runner
/// takes `'static` scenarios.
fn scenario(phase: &str, ops: u64) -> &'static Scenario {
    let what = bench_only(phase, ops);
    let name = format!("bench-pci-svm-{}", what.replace(':', "-"));
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let expect: &'static [&'static str] = Box::leak(Box::new([
        leak(format!("xpci-bench: {phase} n ")),
        leak(format!("({GUEST}): exits:")),
        leak(format!("({GUEST}): events:")),
        leak(format!("dom1 ({GUEST}): powered off")),
    ]));
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
        emulator: scenarios::QEMU_INTEL,
        boot: Boot::Kernel,
        cmdline: CMDLINE,
        timeout_secs: 120,
        expect,
        reject: &[": FAIL"],
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
    let throughput = |p: Option<Phase>| {
        p.filter(|p| p.total > 0)
            .map(|p| (p.ops * DMA_BYTES) as f64 / p.total as f64)
    };
    let rows = [
        (
            "edu interrupt latency (median TSC cycles)",
            median(hv("edu-irq")),
            median(native("edu-irq")),
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

/// What the tables' numbers are.
pub const NOTE: &str = "Per operation: guest TSC cycles as the guest timed them; exits, \
hypercall exits, nested page faults and device interrupts as the hypervisor counted them for \
the domain, minus a run with no operation (the same setup: edu's BAR mapped and its MSI \
enabled), divided by N. Goals: 1 exit per config read and per config write (the frontend's \
notification, answered in that exit), 1 exit per device interrupt delivered, 0 exits per \
BAR MMIO read (the BAR is mapped into the guest). edu completes a DMA from a 100 ms QEMU \
timer, so the DMA figures measure that timer more than the path. QEMU's TSC follows the host \
clock: compare rows taken side by side in one run.";

/// QEMU's arguments for the image `elf` booted directly by its PVH loader
/// on the standard machine, with `cmdline`; the guest's console (port
/// 0xE9) goes to `console`, the unused serial port to `serial`.
pub fn native_args(elf: &Path, cmdline: &str, serial: &Path, console: &Path) -> Vec<OsString> {
    let mut args = qemu::args(&qemu::Config {
        iommu: Iommu::Intel,
        media: qemu::Media::Kernel {
            elf,
            cmdline,
            modules: &[],
        },
        serial: qemu::Serial::File(serial),
        gdb: false,
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
pub fn measure(ws: &Workspace, dir: &Path, elf: &Path) -> Result<(Vec<Run>, String), String> {
    let mut wanted = vec![scenario("baseline", 0)];
    wanted.extend(PHASES.iter().map(|s| scenario(s.phase, s.ops)));
    let jobs = runner::prepare_in(ws, |name| dir.join(name), Ok(elf), &wanted);
    let mut runs = Vec::new();
    for job in &jobs {
        let report = runner::run_one(job, elf, false);
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
    text.push_str(NOTE);
    Ok((runs, text))
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
    fn runs_hide_only_edu_and_name_their_phase() {
        let s = scenario("conf-read", 10_000);
        assert_eq!(s.name, "bench-pci-svm-conf-read-10000");
        assert_eq!(s.emulator, scenarios::QEMU_INTEL);
        assert_eq!(s.boot, Boot::Kernel);
        assert!(
            s.cmdline.contains("pciback.hide=(00:03.0) "),
            "{}",
            s.cmdline
        );
        assert!(s.cmdline.contains("pciback.insecure"));
        let ModuleContent::Text(cfg) = s.modules[1].content else {
            panic!("the second module is the configuration");
        };
        assert!(cfg.contains("memory = 64\n"), "{cfg}");
        assert!(cfg.contains("pci = ['00:03.0']\n"), "{cfg}");
        assert!(cfg.contains("bench-only=conf-read:10000\""), "{cfg}");
        assert_eq!(scenario("baseline", 0).name, "bench-pci-svm-baseline");
        assert!(scenarios::all().all(|s| !s.name.starts_with("bench-pci-")));
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
