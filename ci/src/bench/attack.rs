//! The victim's work rate under attack (`--attack-only` runs only this
//! section): every attack scenario on SVM runs twice, one run after the
//! other, with its victim `ticker` and attacker as in `cargo xtask test`
//! (all its checks must pass), and with the victim alone (the baseline:
//! the same machine, command line and victim configuration, without the
//! attacker's modules).
//!
//! The victim counts its busy-wait iterations per TSC cycle of its own
//! time (the cycles it ran: a vCPU descheduled for another domain's slice
//! does not count them), tick by tick. Its ticks are made short here
//! (`spin=` divided, `ticks=` multiplied by the same factor: the same
//! total work as in the scenario), and the rate under attack is taken over
//! the ticks that lie wholly inside the attack: after the attacker's
//! first console line and before its last `attack-CLASS:` summary (the
//! serial log is in time order: one CPU runs both). The baseline's rate is
//! over all its ticks. The ratio of the two is the table's. The victim's
//! share of its ticks' time (its own cycles over all their cycles) alone
//! and under attack shows whether the attacker took more than its turn:
//! round-robin between two busy domains halves it.

use std::fmt::Write;
use std::path::Path;

use super::{read_log, Run};
use crate::runner;
use crate::scenarios::{self, BootModule, ModuleContent, Scenario};
use crate::Workspace;

/// The goal for the ratio.
const GOAL: f64 = 0.9;

/// The victim's busy wait per tick in the bench runs, TSC cycles (about
/// 40 ms of QEMU's TSC), unless the scenario's is shorter.
const TICK_SPIN: u64 = 100_000_000;

/// The victim's ticks in a scenario (the ticker's default).
const TICKS: u64 = 20;

/// One tick of the victim: the index of its start line and of its result
/// line in the log, its loops, own cycles and all cycles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    pub start: usize,
    pub end: usize,
    pub loops: u64,
    pub own: u64,
    pub all: u64,
}

/// What one attack run's log tells.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Attack {
    /// The line indices of the attacker's first line and last summary.
    pub window: Option<(usize, usize)>,
    /// Cases tried and cases as expected, over every summary line.
    pub cases: u64,
    pub expected: u64,
}

/// The victim's ticks in `log` (domain 1's `ticker: tick N: ...` lines).
pub fn ticks(log: &str) -> Vec<Tick> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, line) in log.lines().enumerate() {
        let Some(rest) = line
            .strip_prefix("[d1 ")
            .and_then(|l| l.split_once("] ticker: tick "))
            .map(|(_, r)| r)
        else {
            continue;
        };
        let Some((_, stats)) = rest.split_once(": ") else {
            start = Some(i);
            continue;
        };
        let n: Vec<u64> = stats.split(' ').filter_map(|w| w.parse().ok()).collect();
        if let (Some(s), &[loops, own, all]) = (start.take(), &n[..]) {
            out.push(Tick {
                start: s,
                end: i,
                loops,
                own,
                all,
            });
        }
    }
    out
}

/// The attacker's window and cases in `log`: its lines are those of a
/// domain named `evil`, its summaries `attack-CLASS: N cases, M as
/// expected`.
pub fn attack(log: &str) -> Attack {
    let mut a = Attack::default();
    let mut first = None;
    for (i, line) in log.lines().enumerate() {
        let Some((_, said)) = line
            .strip_prefix("[d")
            .and_then(|l| l.split_once(" evil] "))
        else {
            continue;
        };
        first.get_or_insert(i);
        let Some((_, rest)) = said
            .strip_prefix("attack-")
            .and_then(|r| r.split_once(": "))
        else {
            continue;
        };
        let n: Vec<u64> = rest
            .split([' ', ','])
            .filter_map(|w| w.parse().ok())
            .collect();
        if let (&[cases, expected], true) = (&n[..], rest.ends_with(" as expected")) {
            a.cases += cases;
            a.expected += expected;
            a.window = first.map(|f| (f, i));
        }
    }
    a
}

/// The line index of the last attacker's end (the hypervisor's
/// `domN (evil): released: ...`): the victim's ticks after it ran alone in
/// the same emulator, the run's own reference.
pub fn attacker_gone(log: &str) -> Option<usize> {
    log.lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("dom") && l.contains(" (evil): released: "))
        .map(|(i, _)| i)
        .last()
}

/// Loops per thousand own cycles and the share of the CPU over `ticks`.
fn rate(ticks: &[Tick]) -> Option<(f64, f64)> {
    let sum = |f: fn(&Tick) -> u64| ticks.iter().map(f).sum::<u64>() as f64;
    let (loops, own, all) = (sum(|t| t.loops), sum(|t| t.own), sum(|t| t.all));
    (own > 0.0).then(|| (loops * 1000.0 / own, own / all))
}

/// The ticks wholly inside `window`.
fn inside(ticks: &[Tick], (from, to): (usize, usize)) -> Vec<Tick> {
    ticks
        .iter()
        .filter(|t| t.start > from && t.end < to)
        .copied()
        .collect()
}

/// The ratio of two rates as shown, marked when below the goal.
fn ratio(r: Option<(f64, f64)>, b: Option<(f64, f64)>) -> String {
    match (r, b) {
        (Some((r, _)), Some((b, _))) => {
            // Marked as shown: 0.896 is 0.90, not below.
            let q = (r / b * 100.0).round() / 100.0;
            format!("{q:.2}{}", if q < GOAL { " **below**" } else { "" })
        }
        _ => String::from("?"),
    }
}

/// The table's row for class `class` from the attack run's and the
/// baseline's logs.
pub fn row(class: &str, log: &str, base: &str) -> String {
    let a = attack(log);
    let all = ticks(log);
    let under = a.window.map(|w| inside(&all, w)).unwrap_or_default();
    let after: Vec<Tick> = attacker_gone(log)
        .map(|g| all.iter().filter(|t| t.start > g).copied().collect())
        .unwrap_or_default();
    let (r, b, alone) = (rate(&under), rate(&ticks(base)), rate(&after));
    let show = |v: Option<(f64, f64)>| v.map_or(String::from("?"), |(r, _)| format!("{r:.1}"));
    let share = |v: Option<(f64, f64)>| v.map_or(String::from("?"), |(_, s)| format!("{s:.2}"));
    format!(
        "| {class} | {} ({} as expected) | {} | {} | {} | {} | {} | {} | {} | {} / {} |",
        a.cases,
        a.expected,
        under.len(),
        show(r),
        after.len(),
        show(alone),
        ratio(r, alone),
        show(b),
        ratio(r, b),
        share(b),
        share(r),
    )
}

pub const HEADER: &str = "| class | cases | victim ticks under attack | rate under attack | victim ticks after the attack (same run) | rate after the attack | ratio to after (goal >= 0.9) | baseline rate (run alone) | ratio to the baseline (goal >= 0.9) | victim's share of its ticks' time, alone / under attack |\n|---|---|---|---|---|---|---|---|---|---|";

pub const NOTE: &str = "Rates are the victim's busy-wait iterations per 1000 TSC cycles of its own time (steps between two TSC reads of its busy wait shorter than 1,000,000 cycles), over its ticks wholly inside the attack (from the attacker's first line to its last summary), over its ticks after the attacker's domain was released (alone, in the same emulator run: the reference that moves least with the host's other load) and over every tick of a separate run without the attacker. The share is its own cycles over all cycles of those ticks: under attack a fair round-robin gives it half of what it has alone; both also lose what the host's other load takes from the emulator.";

/// `spin=X` in the victim's configuration made `spin=X/K ticks=20K`
/// (ticks of at most [`TICK_SPIN`] cycles, the same total).
pub fn short_ticks(cfg: &str) -> String {
    let Some(spin) = cfg
        .split(['"', ' '])
        .find_map(|w| w.strip_prefix("spin="))
        .and_then(|n| n.parse::<u64>().ok())
    else {
        return cfg.to_string();
    };
    let k = (spin / TICK_SPIN).max(1);
    cfg.replacen(
        &format!("spin={spin}"),
        &format!("spin={} ticks={}", spin / k, TICKS * k),
        1,
    )
}

/// The attack scenarios measured: those with a `ticker` victim on QEMU.
pub fn classes() -> Vec<&'static Scenario> {
    scenarios::all()
        .filter(|s| s.name.starts_with("attack-"))
        .filter(|s| matches!(s.emulator, crate::machine::Emulator::Qemu { .. }))
        .filter(|s| s.modules.first().map(|m| m.name) == Some("ticker"))
        .collect()
}

/// The attack run (the scenario with short ticks) and the baseline (its
/// victim alone) of `s`. Leaked: the runner takes `'static` scenarios.
fn pair(s: &'static Scenario) -> [&'static Scenario; 2] {
    let leak = |m: Vec<BootModule>| -> &'static [BootModule] { Box::leak(m.into_boxed_slice()) };
    let modules: Vec<BootModule> = s
        .modules
        .iter()
        .map(|m| match m.content {
            ModuleContent::Text(t) if m.name == "victim.cfg" => BootModule {
                name: m.name,
                content: ModuleContent::Text(Box::leak(short_ticks(t).into_boxed_str())),
            },
            _ => *m,
        })
        .collect();
    let base = Scenario {
        name: Box::leak(format!("{}-baseline", s.name).into_boxed_str()),
        expect: &["[d1 victim] ticker: done", "domains: 1 started"],
        expect_in_order: &[],
        modules: leak(modules[..2].to_vec()),
        ..*s
    };
    let run = Scenario {
        modules: leak(modules),
        ..*s
    };
    [Box::leak(Box::new(run)), Box::leak(Box::new(base))]
}

/// Runs every class's pair one run at a time and returns the runs and the
/// table (failed runs are a row saying so).
pub fn measure(ws: &Workspace, dir: &Path, elf: &Path) -> (Vec<Run>, String, bool) {
    let mut runs = Vec::new();
    let mut table = format!("{HEADER}\n");
    let mut ok = true;
    for s in classes() {
        let pair = pair(s);
        let jobs = runner::prepare_in(ws, |n| dir.join(n), Ok(elf), &pair);
        let mut logs = Vec::new();
        for job in &jobs {
            let report = runner::run_one(job, false);
            println!("{}", report.render(ws).lines().next().unwrap_or_default());
            let passed = report.passed();
            ok &= passed;
            logs.push(passed.then(|| read_log(&report)));
            let log = read_log(&report);
            runs.push(Run {
                emulator: job.scenario.emulator,
                report,
                log,
            });
        }
        let class = s.name.trim_end_matches("-svm");
        match &logs[..] {
            [Some(log), Some(base)] => {
                let _ = writeln!(table, "{}", row(class, log, base));
            }
            _ => {
                let _ = writeln!(table, "| {class} | a run did not pass its checks ||||||||");
            }
        }
    }
    (runs, table, ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
[d1 victim] ticker: tick 0
[d1 victim] ticker: tick 0: 100 loops in 1000 of 1000 TSC cycles
[d1 victim] ticker: tick 1
[d2 evil] firmware: attack_abi: Xen 4.17
[d1 victim] ticker: tick 1: 90 loops in 1000 of 1500 TSC cycles
[d1 victim] ticker: tick 2
[d2 evil] [test] attack-hypercall: x: PASS
[d1 victim] ticker: tick 2: 80 loops in 1000 of 2000 TSC cycles
[d1 victim] ticker: tick 3
[d1 victim] ticker: tick 3: 70 loops in 1000 of 2000 TSC cycles
[d2 evil] attack-hypercall: 88 cases, 87 as expected
[d1 victim] ticker: tick 4
[d1 victim] ticker: tick 4: 100 loops in 1000 of 1000 TSC cycles
dom2 (evil): released: 8744 frames (34 MiB), 0 interrupt routes
[d1 victim] ticker: tick 5
[d1 victim] ticker: tick 5: 80 loops in 1000 of 1000 TSC cycles
";

    #[test]
    fn ticks_and_the_attack_window_are_read_in_log_order() {
        let t = ticks(LOG);
        assert_eq!(t.len(), 6);
        assert_eq!(
            t[1],
            Tick {
                start: 2,
                end: 4,
                loops: 90,
                own: 1000,
                all: 1500
            }
        );
        let a = attack(LOG);
        assert_eq!((a.window, a.cases, a.expected), (Some((3, 10)), 88, 87));
        // Tick 1 began before the attacker's first line: not inside.
        let under = inside(&t, a.window.unwrap());
        assert_eq!(under.iter().map(|t| t.loops).collect::<Vec<_>>(), [80, 70]);
        assert_eq!(rate(&under), Some((75.0, 0.5)));
        // Tick 4 began before the attacker was released; tick 5 after.
        assert_eq!(attacker_gone(LOG), Some(13));
    }

    #[test]
    fn the_row_marks_a_ratio_below_the_goal() {
        let base = "[d1 victim] ticker: tick 0\n[d1 victim] ticker: tick 0: 100 loops in 1000 of 1000 TSC cycles\n";
        let row = row("attack-hypercall", LOG, base);
        assert_eq!(
            row,
            "| attack-hypercall | 88 (87 as expected) | 2 | 75.0 | 1 | 80.0 | 0.94 | 100.0 | 0.75 **below** | 1.00 / 0.50 |"
        );
    }

    #[test]
    fn short_ticks_keep_the_total() {
        assert_eq!(
            short_ticks("extra = \"spin=2500000000\"\n"),
            "extra = \"spin=100000000 ticks=500\"\n"
        );
        assert_eq!(
            short_ticks("extra = \"spin=400000000 guard=4096\"\n"),
            "extra = \"spin=100000000 ticks=80 guard=4096\"\n"
        );
        assert_eq!(short_ticks("extra = \"xs\""), "extra = \"xs\"");
    }

    #[test]
    fn every_svm_attack_class_is_measured() {
        let names: Vec<&str> = classes().iter().map(|s| s.name).collect();
        for n in [
            "attack-config-svm",
            "attack-hypercall-svm",
            "attack-lifecycle-svm",
        ] {
            assert!(names.contains(&n), "{names:?}");
        }
        assert!(!names.contains(&"attack-hypercall-vmx"));
    }
}
