//! `cargo xtask fuzz TARGET... | --all [--time N] [--runs N]`: fuzz
//! targets of `fuzz/` under libFuzzer, one after the other, each for N
//! seconds or N executions (docs/fuzzing.md), with cargo-fuzz on the
//! nightly toolchain. The committed seeds (`fuzz/corpus/TARGET/`) are read
//! but never written: what a run adds goes to
//! `target/xtask/fuzz/corpus/TARGET/`, a crash to `fuzz/artifacts/TARGET/`,
//! its output to `target/xtask/fuzz/TARGET.log`. Each run that ends (its
//! limit reached, or a failure) replaces its target's row of the record,
//! `docs/fuzz-runs.md`, which `cargo xtask bench` prints.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::cli::FuzzOptions;
use crate::Workspace;

/// The record of the last run of each target, relative to the root.
pub const RECORD: &str = "docs/fuzz-runs.md";

const RECORD_HEAD: &str = "\
# Fuzz runs

The last long run of each fuzz target (docs/fuzzing.md), one row per
target, written by `cargo xtask fuzz` when a run ends and printed by
`cargo xtask bench`: the executions libFuzzer reported (at a failure, the
last count it printed before it), the coverage points reached, the
run's seconds, its failures (libFuzzer stops at the first), and the
commit the run was built from (`+` when the tree had changes).

| target | executions | coverage | seconds | failures | commit | date |
|---|---|---|---|---|---|---|
";

/// One target's run as the record keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub target: String,
    pub executions: u64,
    pub coverage: u64,
    pub seconds: u64,
    pub failures: u64,
    pub commit: String,
    pub date: String,
}

impl Run {
    fn row(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            self.target,
            self.executions,
            self.coverage,
            self.seconds,
            self.failures,
            self.commit,
            self.date
        )
    }
}

/// The runs of a record file: its table's rows that parse.
pub fn parse_record(text: &str) -> Vec<Run> {
    text.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.strip_prefix('|')?.strip_suffix('|')?.split('|').collect();
            let [target, e, c, s, f, commit, date] = cells[..] else {
                return None;
            };
            let n = |x: &str| x.trim().parse().ok();
            Some(Run {
                target: target.trim().into(),
                executions: n(e)?,
                coverage: n(c)?,
                seconds: n(s)?,
                failures: n(f)?,
                commit: commit.trim().into(),
                date: date.trim().into(),
            })
        })
        .collect()
}

/// The record with `run` in place of its target's row (appended if new).
pub fn update_record(text: &str, run: &Run) -> String {
    let mut runs = parse_record(text);
    match runs.iter_mut().find(|r| r.target == run.target) {
        Some(old) => *old = run.clone(),
        None => runs.push(run.clone()),
    }
    let mut out = String::from(RECORD_HEAD);
    for r in &runs {
        out += &r.row();
    }
    out
}

/// The record as `cargo xtask bench` prints it: the rows with each run's
/// rate, and the total.
pub fn record_table(text: &str) -> String {
    let runs = parse_record(text);
    let mut out = String::from(
        "| target | executions | coverage | seconds | executions/s | failures | commit | date |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for r in &runs {
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.target,
            r.executions,
            r.coverage,
            r.seconds,
            r.executions / r.seconds.max(1),
            r.failures,
            r.commit,
            r.date
        );
    }
    let short = runs.iter().filter(|r| r.executions < 10_000_000).count();
    let failures: u64 = runs.iter().map(|r| r.failures).sum();
    out += &format!(
        "\n{} targets, {} executions, {failures} failures; {short} short of 10,000,000 executions\n",
        runs.len(),
        runs.iter().map(|r| r.executions).sum::<u64>()
    );
    out
}

/// What libFuzzer's output tells of a run: executions and coverage of its
/// last status line (`#N ... cov: C ...`), and the seconds of its closing
/// `Done N runs in S second(s)` (absent after a failure).
#[derive(Debug, Default, PartialEq, Eq)]
struct Progress {
    executions: u64,
    coverage: u64,
    done_seconds: Option<u64>,
}

impl Progress {
    fn line(&mut self, line: &str) {
        let number = |s: &str| -> Option<u64> {
            let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            s[..end].parse().ok()
        };
        if let Some(n) = line.strip_prefix('#').and_then(number) {
            self.executions = n;
            if let Some(c) = line.split_once("cov: ").and_then(|(_, r)| number(r)) {
                self.coverage = c;
            }
        } else if let Some(rest) = line.strip_prefix("Done ") {
            let (runs, secs) = rest.split_once(" runs in ").unwrap_or_default();
            if let (Some(r), Some(s)) = (number(runs), number(secs)) {
                self.executions = r;
                self.done_seconds = Some(s);
            }
        }
    }
}

/// Whether a line of the output is one of the frequent corpus updates,
/// kept in the log but not printed.
fn quiet(line: &str) -> bool {
    line.starts_with('#')
        && ["\tNEW ", "\tREDUCE ", "\tRELOAD "]
            .iter()
            .any(|w| line.contains(w))
}

/// Extra libFuzzer options per target: longer inputs where the format
/// needs them, the dictionary of the xenstore target.
fn extra(target: &str) -> &'static [&'static str] {
    match target {
        "insn_decode" => &["-max_len=32"],
        "xenstore_wire" => &[
            "-max_len=12000",
            "-len_control=0",
            "-dict=xenstore_wire.dict",
        ],
        "acpi_aml" | "pciback_ops" | "config_writes" | "elf_loader" | "multiboot" => {
            &["-max_len=4096"]
        }
        _ => &[],
    }
}

/// The targets `fuzz/Cargo.toml` declares (its `[[bin]]` names).
fn targets(manifest: &str) -> Vec<&str> {
    manifest
        .lines()
        .filter_map(|l| l.trim().strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|&n| n != "hv-fuzz")
        .collect()
}

/// The output of a command in the workspace, trimmed ("?" if it fails).
fn output(ws: &Workspace, program: &str, args: &[&str]) -> String {
    Command::new(program)
        .current_dir(ws.root())
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or("?".into(), |o| {
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        })
}

/// The commit the tree is at, with `+` if it has changes (the record
/// itself aside).
fn commit(ws: &Workspace) -> String {
    let head = output(ws, "git", &["rev-parse", "--short=12", "HEAD"]);
    let changes = output(
        ws,
        "git",
        &[
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ".",
            ":!docs/fuzz-runs.md",
        ],
    );
    if changes.is_empty() {
        head
    } else {
        head + "+"
    }
}

/// Runs one target; `Some` with its run if it ended by itself or failed.
fn run_one(
    ws: &Workspace,
    target: &str,
    opts: &FuzzOptions,
    commit: &str,
) -> Result<Option<Run>, String> {
    let dir = ws.root().join("fuzz");
    let xtask = ws.xtask_dir().join("fuzz");
    let work = xtask.join("corpus").join(target);
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let seeds = dir.join("corpus").join(target);
    let log_path = xtask.join(format!("{target}.log"));
    let mut log =
        std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    println!(
        "fuzz: {target} for {} (seeds {}, new inputs in {}, output in {})",
        match (opts.time, opts.runs) {
            (Some(t), Some(r)) => format!("{r} executions or {t} s"),
            (Some(t), None) => format!("{t} s"),
            (None, r) => format!("{} executions", r.unwrap_or_default()),
        },
        if seeds.is_dir() {
            ws.show(&seeds)
        } else {
            "none".into()
        },
        ws.show(&work),
        ws.show(&log_path)
    );
    // No AddressSanitizer: the code under test is safe Rust (`pciback` and
    // `vmm-glue` forbid `unsafe`, the parsers of `hv` and `platform` have
    // none), so it would find nothing the bounds checks do not, at half
    // the rate. Debug assertions and overflow checks stay on.
    let mut cmd = Command::new("cargo");
    cmd.current_dir(&dir)
        .args(["+nightly", "fuzz", "run", "--sanitizer=none", target])
        .arg(&work);
    if seeds.is_dir() {
        cmd.arg(&seeds);
    }
    cmd.arg("--").args(extra(target));
    if let Some(t) = opts.time {
        cmd.arg(format!("-max_total_time={t}"));
    }
    if let Some(r) = opts.runs {
        cmd.arg(format!("-runs={r}"));
    }
    let mut child = cmd
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cargo fuzz: {e}"))?;
    let (mut progress, mut started, mut failed) = (Progress::default(), None, false);
    for line in BufReader::new(child.stderr.take().expect("piped")).lines() {
        let line = line.map_err(|e| format!("cargo fuzz: {e}"))?;
        let _ = writeln!(log, "{line}");
        if !quiet(&line) {
            println!("{line}");
        }
        if line.starts_with("INFO: Seed:") {
            started = Some(Instant::now());
        }
        failed |= line.contains("Test unit written to");
        progress.line(&line);
    }
    let status = child.wait().map_err(|e| format!("cargo fuzz: {e}"))?;
    let Some(started) = started else {
        return Err(format!("{target}: libFuzzer did not start (see above)"));
    };
    if !failed && (!status.success() || progress.done_seconds.is_none()) {
        println!("fuzz: {target} did not end by itself: not recorded");
        return Ok(None);
    }
    Ok(Some(Run {
        target: target.into(),
        executions: progress.executions,
        coverage: progress.coverage,
        seconds: progress
            .done_seconds
            .unwrap_or_else(|| started.elapsed().as_secs()),
        failures: u64::from(failed),
        commit: commit.into(),
        date: output(ws, "date", &["-u", "+%Y-%m-%d"]),
    }))
}

pub fn run(ws: &Workspace, opts: &FuzzOptions) -> Result<bool, String> {
    let manifest = std::fs::read_to_string(ws.root().join("fuzz/Cargo.toml"))
        .map_err(|e| format!("fuzz/Cargo.toml: {e}"))?;
    let known = targets(&manifest);
    let chosen: Vec<&str> = if opts.targets.is_empty() {
        known.clone()
    } else {
        opts.targets.iter().map(String::as_str).collect()
    };
    if let Some(t) = chosen.iter().find(|t| !known.contains(t)) {
        return Err(format!(
            "no fuzz target '{t}': the targets are {}",
            known.join(", ")
        ));
    }
    let installed = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        return Err("cargo-fuzz on the nightly toolchain is needed: \
             `rustup toolchain install nightly` and `cargo install cargo-fuzz`"
            .into());
    }
    let commit = commit(ws);
    let record = ws.root().join(RECORD);
    let mut all_passed = true;
    let mut summary = String::new();
    for target in chosen {
        let Some(run) = run_one(ws, target, opts, &commit)? else {
            all_passed = false;
            continue;
        };
        all_passed &= run.failures == 0;
        let text = std::fs::read_to_string(&record).unwrap_or_default();
        std::fs::write(&record, update_record(&text, &run))
            .map_err(|e| format!("{}: {e}", record.display()))?;
        summary += &run.row();
    }
    println!("\nfuzz: recorded in {RECORD}:\n{summary}");
    Ok(all_passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_targets_are_the_bin_names() {
        let manifest = "[package]\nname = \"hv-fuzz\"\n[[bin]]\nname = \"xl_cfg\"\npath = \"x\"\n\
                        [[bin]]\nname = \"multiboot\"\n";
        assert_eq!(targets(manifest), ["xl_cfg", "multiboot"]);
    }

    #[test]
    fn every_declared_target_has_a_seed_corpus() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let manifest = std::fs::read_to_string(root.join("fuzz/Cargo.toml")).unwrap();
        for t in [
            "config_writes",
            "hide_list",
            "xl_cfg",
            "elf_loader",
            "multiboot",
        ] {
            assert!(targets(&manifest).contains(&t), "{t}");
            let seeds = std::fs::read_dir(root.join("fuzz/corpus").join(t)).unwrap();
            assert!(seeds.count() > 0, "{t}");
        }
    }

    fn run(target: &str, executions: u64, failures: u64) -> Run {
        Run {
            target: target.into(),
            executions,
            coverage: 250,
            seconds: 1000,
            failures,
            commit: "0123456789ab".into(),
            date: "2026-12-07".into(),
        }
    }

    #[test]
    fn the_record_replaces_a_targets_row_and_parses_back() {
        let one = update_record("", &run("multiboot", 5, 0));
        assert_eq!(parse_record(&one), [run("multiboot", 5, 0)]);
        let two = update_record(&one, &run("xl_cfg", 7, 1));
        let again = update_record(&two, &run("multiboot", 10_000_000, 0));
        assert_eq!(
            parse_record(&again),
            [run("multiboot", 10_000_000, 0), run("xl_cfg", 7, 1)]
        );
        // The header row and the separator are not runs.
        assert_eq!(parse_record(RECORD_HEAD), []);
        assert_eq!(
            parse_record("| a | 1 | 2 | 3 | 4 | c |\n| a | x | 2 | 3 | 4 | c | d |"),
            []
        );
    }

    #[test]
    fn the_committed_record_parses() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let text = std::fs::read_to_string(root.join(RECORD)).unwrap();
        let runs = parse_record(&text);
        let manifest = std::fs::read_to_string(root.join("fuzz/Cargo.toml")).unwrap();
        for r in &runs {
            assert!(targets(&manifest).contains(&r.target.as_str()), "{r:?}");
        }
        assert_eq!(
            text,
            runs.iter()
                .fold(RECORD_HEAD.to_string(), |t, r| t + &r.row())
        );
    }

    #[test]
    fn the_bench_table_has_the_rates_and_the_total() {
        let text = update_record(
            &update_record("", &run("a", 10_000_000, 0)),
            &run("b", 9_999_999, 1),
        );
        let table = record_table(&text);
        assert!(
            table.contains("| a | 10000000 | 250 | 1000 | 10000 | 0 | 0123456789ab | 2026-12-07 |")
        );
        assert!(table.contains("| b | 9999999 | 250 | 1000 | 9999 | 1 |"));
        assert!(table.ends_with(
            "2 targets, 19999999 executions, 1 failures; 1 short of 10,000,000 executions\n"
        ));
    }

    #[test]
    fn libfuzzer_output_gives_executions_coverage_and_seconds() {
        let mut p = Progress::default();
        for l in [
            "INFO: Seed: 1234",
            "#2\tINITED cov: 17 ft: 18 corp: 1/1b exec/s: 0 rss: 30Mb",
            "#262144\tpulse  cov: 240 ft: 900 corp: 80/2Kb lim: 4096 exec/s: 8738 rss: 60Mb",
            "#10000000\tDONE   cov: 253 ft: 1000 corp: 90/3Kb lim: 4096 exec/s: 8000 rss: 61Mb",
            "Done 10000000 runs in 1250 second(s)",
        ] {
            p.line(l);
        }
        let done = Progress {
            executions: 10_000_000,
            coverage: 253,
            done_seconds: Some(1250),
        };
        assert_eq!(p, done);
        let mut crashed = Progress::default();
        crashed.line("#524288\tpulse  cov: 300 ft: 1 corp: 1/1b exec/s: 100 rss: 1Mb");
        crashed.line("thread '<unnamed>' panicked at hv/src/fuzz.rs:1:1:");
        assert_eq!(crashed.executions, 524_288);
        assert_eq!(crashed.done_seconds, None);
        assert!(quiet("#300\tNEW    cov: 1 ft: 1 corp: 1/1b"));
        assert!(!quiet("#262144\tpulse  cov: 240"));
    }
}
