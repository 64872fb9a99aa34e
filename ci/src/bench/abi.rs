//! Xen ABI latencies: event channel round trips and xenstore reads, with
//! the `bench_abi` guest (firmware/src/bin/bench_abi.rs).
//!
//! Each backend runs the guest three times (QEMU's one after the other,
//! Bochs' two at a time: its TSC is emulated): with no
//! operation (the baseline), with `evtchn=N` and with `xenstore=M`. The
//! guest times each operation with its TSC and prints the median and mean;
//! the hypervisor's own counts at the domain's end (the exits line and the
//! events line) minus the baseline's, divided by the operations, give the
//! exits and upcalls per operation. The setup is the same in all three, so
//! it cancels out.

use std::path::Path;

use super::exits;
use super::{read_log, Bed, Run};
use crate::runner;
use crate::scenarios::Scenario;
use crate::Workspace;

/// The guest's name (its image, module and domain name).
const GUEST: &str = "bench_abi";

/// Operations per measured run: (event channel round trips, xenstore
/// reads). Bochs boots slowly but runs the operations quickly; the runs
/// are short either way.
fn counts(bed: Bed) -> (u64, u64) {
    match bed {
        Bed::Qemu => (10_000, 5_000),
        Bed::Bochs => (1_000, 1_000),
    }
}

/// One phase as the guest printed it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phase {
    /// Operations done.
    pub ops: u64,
    /// Operations that returned an error.
    pub failed: u64,
    /// TSC cycles per operation.
    pub median: u64,
    pub mean: u64,
}

/// Reads the number right after `key` in `text`.
fn after(text: &str, key: &str) -> Option<u64> {
    super::number_after(text, key)
}

/// The guest's line for `phase` (`evtchn` or `xenstore`) in `log`:
///
/// ```text
/// [d1 bench_abi] bench_abi: evtchn: 2000 round trips, 0 failed, 0 late, 2000 upcalls, median 232340 mean 263640 TSC cycles per round trip
/// ```
pub fn parse_phase(log: &str, phase: &str) -> Option<Phase> {
    let marker = format!("{GUEST}: {phase}:");
    let line = log.lines().find(|l| l.contains(&marker))?;
    let rest = &line[line.find(&marker)? + marker.len()..];
    let failed_at = rest.find(" failed")?;
    let failed_from = rest[..failed_at].rfind(' ')?;
    Some(Phase {
        ops: after(rest, "")?,
        failed: rest[failed_from + 1..failed_at].parse().ok()?,
        median: after(rest, "median ")?,
        mean: after(rest, "mean ")?,
    })
}

/// What the hypervisor counted for the guest's domain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Exits of every kind.
    pub exits: u64,
    pub hypercalls: u64,
    pub upcalls: u64,
}

/// The guest domain's exits and events lines in `log`.
pub fn parse_counts(log: &str) -> Option<Counts> {
    let (exits, events) = exits::domain_lines(log, GUEST)?;
    Some(Counts {
        exits: exits.counts.iter().map(|&(_, n)| n).sum(),
        hypercalls: exits.count("hypercall")?,
        upcalls: events.count("upcalls injected")?,
    })
}

/// `(run - base) / ops` with two decimals, `?` when a count is missing.
pub fn per_op(run: Option<u64>, base: Option<u64>, ops: u64) -> String {
    match (run, base) {
        (Some(r), Some(b)) if ops > 0 => format!("{:.2}", r.saturating_sub(b) as f64 / ops as f64),
        _ => String::from("?"),
    }
}

/// The scenario of one run with `evtchn` round trips and `xenstore`
/// reads. Leaked, as the runner takes `'static` scenarios.
fn scenario(bed: Bed, evtchn: u64, xenstore: u64) -> &'static Scenario {
    let backend = match bed {
        Bed::Qemu => "svm",
        Bed::Bochs => "vmx",
    };
    let what = match (evtchn, xenstore) {
        (0, 0) => String::from("0"),
        (n, 0) => format!("evtchn-{n}"),
        (0, m) => format!("xenstore-{m}"),
        (n, m) => format!("evtchn-{n}-xenstore-{m}"),
    };
    super::guest_scenario(
        bed,
        GUEST,
        &format!("evtchn={evtchn} xenstore={xenstore}"),
        format!("bench-abi-{backend}-{what}"),
        &[
            "bench_abi: evtchn:",
            "bench_abi: xenstore:",
            "(bench_abi): exits:",
            "(bench_abi): events:",
        ],
    )
}

/// Rounds of the `paired` run (QEMU's only: the ratio lines are its).
pub const PAIRED_ROUNDS: u64 = 3_000;

/// The run with `rounds` rounds of a direct `xen_version`, an event
/// channel round trip and a xenstore read, one of each per round.
fn paired_scenario(bed: Bed, rounds: u64) -> &'static Scenario {
    let backend = match bed {
        Bed::Qemu => "svm",
        Bed::Bochs => "vmx",
    };
    super::guest_scenario(
        bed,
        GUEST,
        &format!("evtchn=0 xenstore=0 paired={rounds}"),
        format!("bench-abi-{backend}-paired-{rounds}"),
        &[
            "bench_abi: paired-hypercall:",
            "bench_abi: paired-evtchn:",
            "bench_abi: paired-xenstore:",
            "(bench_abi): exits:",
        ],
    )
}

/// The table's header.
pub const HEADER: &str = "| backend | emulator | operation | N | guest TSC cycles per op (median) | guest TSC cycles per op (mean) | exits per op | hypercall exits per op | upcalls injected per op |\n\
                          |---|---|---|---:|---:|---:|---:|---:|---:|";

/// What the table's numbers are.
pub const NOTE: &str = "Per operation: guest TSC cycles from before the send (the request) \
to the upcall handler having seen the event (the reply read); exits and upcalls as the \
hypervisor counted them for the domain, minus a run with no operation. QEMU's TSC follows \
the host clock (noisy on a busy machine); Bochs' is emulated and not comparable with it.";

/// The row of one measured run against the baseline.
pub fn row(bed: Bed, operation: &str, phase: Option<Phase>, run: &str, base: &str) -> String {
    let (backend, emulator) = bed.names();
    let (c, b) = (parse_counts(run), parse_counts(base));
    let Some(p) = phase else {
        return format!("| {backend} | {emulator} | {operation} | ? | ? | ? | ? | ? | ? |");
    };
    let failed = if p.failed > 0 {
        format!(" ({} failed)", p.failed)
    } else {
        String::new()
    };
    format!(
        "| {backend} | {emulator} | {operation} | {}{failed} | {} | {} | {} | {} | {} |",
        p.ops,
        p.median,
        p.mean,
        per_op(c.map(|c| c.exits), b.map(|b| b.exits), p.ops),
        per_op(c.map(|c| c.hypercalls), b.map(|b| b.hypercalls), p.ops),
        per_op(c.map(|c| c.upcalls), b.map(|b| b.upcalls), p.ops),
    )
}

/// Runs the three configurations of `bed`; returns the
/// runs, the two table rows and the operations that failed.
pub fn measure(
    ws: &Workspace,
    dir: &Path,
    elf: &Path,
    bed: Bed,
    own_network: bool,
) -> Result<(Vec<Run>, Vec<String>, u64), String> {
    let (n, m) = counts(bed);
    let mut scenarios = vec![
        scenario(bed, 0, 0),
        scenario(bed, n, 0),
        scenario(bed, 0, m),
    ];
    if bed == Bed::Qemu {
        scenarios.push(paired_scenario(bed, PAIRED_ROUNDS));
    }
    let jobs = runner::prepare_in(ws, |name| dir.join(name), Ok(elf), &scenarios);
    // Bochs' TSC is emulated, so its runs may share the machine: two at a
    // time. QEMU's follows the host clock: one after the other.
    let mut reports = match bed {
        Bed::Bochs => runner::run_all(&jobs, super::WORKERS, |_| {}),
        Bed::Qemu => jobs
            .iter()
            .map(|job| runner::run_one(job, own_network))
            .collect(),
    };
    let mut runs = Vec::new();
    for job in &jobs {
        let at = reports
            .iter()
            .position(|r| r.name == job.scenario.name)
            .ok_or_else(|| format!("{}: no report", job.scenario.name))?;
        let report = reports.swap_remove(at);
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
    let evtchn = parse_phase(&runs[1].log, "evtchn");
    let xenstore = parse_phase(&runs[2].log, "xenstore");
    let failed = [evtchn, xenstore].iter().flatten().map(|p| p.failed).sum();
    let rows = vec![
        row(
            bed,
            "event channel round trip",
            evtchn,
            &runs[1].log,
            &runs[0].log,
        ),
        row(bed, "xenstore read", xenstore, &runs[2].log, &runs[0].log),
    ];
    Ok((runs, rows, failed))
}

/// The `paired` run's medians (guest TSC cycles) in the runs [`measure`]
/// returned: the hypercall round trip, and the event channel round trip
/// and the xenstore read to set against it.
pub fn medians(runs: &[Run]) -> (Option<u64>, Vec<(&'static str, Option<u64>)>) {
    let paired = runs
        .iter()
        .find(|r| r.report.name.contains("-paired-"))
        .map_or("", |r| r.log.as_str());
    let median = |phase: &str| parse_phase(paired, phase).map(|p| p.median);
    (
        median("paired-hypercall"),
        vec![
            ("event channel round trip", median("paired-evtchn")),
            ("xenstore read", median("paired-xenstore")),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{Boot, Protocol};
    use crate::scenarios::ModuleContent;

    const BASE: &str = "[d1 bench_abi] bench_abi: evtchn: 0 round trips, 0 failed, 0 late, 0 upcalls, median 0 mean 0 TSC cycles per round trip\n\
        [d1 bench_abi] bench_abi: xenstore: 0 reads, 0 failed, 0 yields, median 0 mean 0 TSC cycles per read\n\
        dom1 (bench_abi): exits: 6 cpuid, 3 msr, 0 io, 12 hypercall, 0 hlt, 0 npf, 0 other\n\
        dom1 (bench_abi): events: 1 upcalls injected, 0 sends, 0 timer expiries\n";

    const EVTCHN: &str = "[d1 bench_abi] bench_abi: evtchn: 2000 round trips, 3 failed, 0 late, 2000 upcalls, median 232340 mean 263640 TSC cycles per round trip\n\
        [d1 bench_abi] bench_abi: xenstore: 0 reads, 0 failed, 0 yields, median 0 mean 0 TSC cycles per read\n\
        dom1 (bench_abi): exits: 6 cpuid, 3 msr, 0 io, 2012 hypercall, 0 hlt, 0 npf, 1000 other\n\
        dom1 (bench_abi): events: 2001 upcalls injected, 2000 sends, 0 timer expiries\n";

    #[test]
    fn the_guest_lines_are_read() {
        assert_eq!(
            parse_phase(EVTCHN, "evtchn"),
            Some(Phase {
                ops: 2000,
                failed: 3,
                median: 232340,
                mean: 263640
            })
        );
        assert_eq!(
            parse_phase(EVTCHN, "xenstore"),
            Some(Phase::default()),
            "a phase with no operations"
        );
        assert_eq!(
            parse_phase("[d1 bench_abi] bench_abi: evtchn:\n", "evtchn"),
            None
        );
        assert_eq!(parse_phase("", "xenstore"), None);
    }

    #[test]
    fn the_hypervisor_counts_are_summed_per_domain() {
        assert_eq!(
            parse_counts(EVTCHN),
            Some(Counts {
                exits: 3021,
                hypercalls: 2012,
                upcalls: 2001
            })
        );
        let other_domain = EVTCHN.replace("(bench_abi)", "(hello)");
        assert_eq!(parse_counts(&other_domain), None);
        let no_events: String = EVTCHN
            .lines()
            .filter(|l| !l.contains("events:"))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(parse_counts(&no_events), None);
    }

    #[test]
    fn a_row_subtracts_the_baseline_and_divides_by_the_operations() {
        let row = row(
            Bed::Qemu,
            "event channel round trip",
            parse_phase(EVTCHN, "evtchn"),
            EVTCHN,
            BASE,
        );
        assert_eq!(
            row,
            "| SVM + NPT | QEMU TCG `-cpu max` | event channel round trip | 2000 (3 failed) | 232340 | 263640 | 1.50 | 1.00 | 1.00 |"
        );
        assert_eq!(per_op(Some(5), None, 1), "?");
        assert_eq!(per_op(Some(5), Some(1), 0), "?");
        assert_eq!(per_op(Some(1), Some(5), 2), "0.00");
        assert_eq!(
            HEADER.lines().next().map(|l| l.matches('|').count()),
            Some(10)
        );
        assert_eq!(row.matches('|').count(), 10);
    }

    #[test]
    fn runs_are_scenarios_named_by_what_they_measure() {
        let base = scenario(Bed::Qemu, 0, 0);
        assert_eq!(base.name, "bench-abi-svm-0");
        assert_eq!(base.boot, Boot::Kernel);
        assert_eq!(
            scenario(Bed::Bochs, 200, 0).name,
            "bench-abi-vmx-evtchn-200"
        );
        let xs = scenario(Bed::Bochs, 0, 300);
        assert_eq!(xs.name, "bench-abi-vmx-xenstore-300");
        assert_eq!(xs.boot, Boot::Grub(Protocol::Mb2));
        let ModuleContent::Text(cfg) = xs.modules[1].content else {
            panic!("the second module is the configuration");
        };
        assert!(cfg.contains("cmdline = \"evtchn=0 xenstore=300\""), "{cfg}");
        assert!(cfg.contains("name = \"bench_abi\""), "{cfg}");
        let paired = paired_scenario(Bed::Qemu, 3000);
        assert_eq!(paired.name, "bench-abi-svm-paired-3000");
        let ModuleContent::Text(cfg) = paired.modules[1].content else {
            panic!("the second module is the configuration");
        };
        assert!(
            cfg.contains("cmdline = \"evtchn=0 xenstore=0 paired=3000\""),
            "{cfg}"
        );
    }

    #[test]
    fn the_paired_lines_parse_as_phases() {
        let log = "[d1 bench_abi] bench_abi: paired-hypercall: 3000 round trips, 0 failed, median 55000 mean 56000 TSC cycles per round trip\n\
                   [d1 bench_abi] bench_abi: paired-evtchn: 3000 round trips, 0 failed, 0 late, 3000 upcalls, median 70000 mean 71000 TSC cycles per round trip\n\
                   [d1 bench_abi] bench_abi: paired-xenstore: 3000 reads, 1 failed, 0 yields, median 80000 mean 82000 TSC cycles per read\n";
        assert_eq!(
            parse_phase(log, "paired-hypercall").map(|p| p.median),
            Some(55_000)
        );
        assert_eq!(
            parse_phase(log, "paired-evtchn").map(|p| p.median),
            Some(70_000)
        );
        let xs = parse_phase(log, "paired-xenstore");
        assert_eq!(xs.map(|p| (p.median, p.failed)), Some((80_000, 1)));
        // `evtchn:` is not `paired-evtchn:`'s.
        assert_eq!(parse_phase(log, "evtchn"), None);
    }
}
