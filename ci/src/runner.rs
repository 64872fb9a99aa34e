//! Runs scenarios and judges them: ISOs first, then the emulators on a few
//! worker threads, each with a time limit, then the serial log against the
//! scenario's expectations.
//!
//! Everything a run leaves is in target/xtask/scenarios/NAME/: serial.log,
//! stdout.log and stderr.log of the emulator, command.txt (the command line,
//! ready to paste into a shell), for QEMU nvme.img (the NVMe disk as the
//! guest left it, written fresh before the run: `crate::disk`), and for
//! Bochs bochsrc, rc and bochs.log.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::machine::{Boot, Emulator, Protocol};
use crate::process::{self, Ended};
use crate::scenarios::{ModuleContent, Outcome, Scenario};
use crate::{bochs, grub, metal, qemu, Workspace};

/// Lines of the serial log shown under a failure.
const SERIAL_TAIL: usize = 30;
/// Lines of the emulator's stderr shown when it ended the wrong way.
const STDERR_TAIL: usize = 10;
/// Missing lines named in a failure before "and N more".
const MISSING_SHOWN: usize = 3;

/// Bochs runs take turns when they cannot each have a network namespace.
static BOCHS_TURN: Mutex<()> = Mutex::new(());

/// A scenario ready to run.
#[derive(Debug)]
pub struct Job {
    pub scenario: &'static Scenario,
    /// target/xtask/scenarios/NAME
    pub dir: PathBuf,
    /// The ISO to boot, for GRUB scenarios (possibly another scenario's).
    pub iso: Option<PathBuf>,
    /// Why it cannot run, found while preparing it.
    pub error: Option<String>,
    /// The boot modules, written to files named after the modules.
    pub modules: Vec<PathBuf>,
    /// The NVMe disk image (QEMU runs): `dir/nvme.img`, written fresh.
    pub disk: Option<PathBuf>,
    /// ACPI tables QEMU adds, written to `dir/acpi/`.
    pub acpi_tables: Vec<PathBuf>,
    /// The hypervisor image it boots (`-kernel`, or on its ISO).
    pub image: PathBuf,
}

/// Writes `scenario`'s boot modules into `dir/modules/`.
fn write_modules(ws: &Workspace, scenario: &Scenario, dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mods_dir = dir.join("modules");
    let mut out = Vec::new();
    for m in scenario.boot_modules() {
        fs::create_dir_all(&mods_dir)
            .map_err(|e| format!("cannot create {}: {e}", mods_dir.display()))?;
        let path = mods_dir.join(m.name);
        let written = match m.content {
            ModuleContent::Guest(image) => {
                fs::copy(metal::guest_path(ws, image), &path).map(|_| ())
            }
            ModuleContent::Text(text) => fs::write(&path, text),
            ModuleContent::Bytes(bytes) => fs::write(&path, bytes),
            ModuleContent::Debian(file) => {
                let from = ws.xtask_dir().join("guests").join(file);
                if !from.exists() {
                    return Err(format!(
                        "{} is not prepared: run `cargo xtask guests`",
                        ws.show(&from)
                    ));
                }
                // A hard link spares copying a 66 MB kernel per scenario.
                let _ = fs::remove_file(&path);
                fs::hard_link(&from, &path).or_else(|_| fs::copy(&from, &path).map(|_| ()))
            }
            ModuleContent::Typed { .. } | ModuleContent::AcpiTable(_) => Ok(()),
        };
        written.map_err(|e| format!("cannot write module {}: {e}", path.display()))?;
        out.push(path);
    }
    Ok(out)
}

/// Builds `scenario`'s ACPI tables into `dir/acpi/`.
fn write_acpi_tables(scenario: &Scenario, dir: &Path) -> Result<Vec<PathBuf>, String> {
    let acpi_dir = dir.join("acpi");
    let mut out = Vec::new();
    for (name, build) in scenario.acpi_tables() {
        fs::create_dir_all(&acpi_dir)
            .map_err(|e| format!("cannot create {}: {e}", acpi_dir.display()))?;
        let path = acpi_dir.join(name);
        fs::write(&path, build())
            .map_err(|e| format!("cannot write ACPI table {}: {e}", path.display()))?;
        out.push(path);
    }
    Ok(out)
}

/// The directory of a scenario's run.
pub fn scenario_dir(ws: &Workspace, name: &str) -> PathBuf {
    ws.xtask_dir().join("scenarios").join(name)
}

/// Empties each scenario's directory and makes the ISOs, one per distinct
/// grub.cfg. `elf` is `Err` when the image did not build.
pub fn prepare(
    ws: &Workspace,
    elf: Result<&Path, &str>,
    scenarios: &[&'static Scenario],
) -> Vec<Job> {
    prepare_in(ws, |name| scenario_dir(ws, name), elf, scenarios)
}

/// [`prepare`] with each scenario's directory given by `dir_of` instead of
/// [`scenario_dir`] (for runs that must not touch the test logs).
pub fn prepare_in(
    ws: &Workspace,
    dir_of: impl Fn(&str) -> PathBuf,
    elf: Result<&Path, &str>,
    scenarios: &[&'static Scenario],
) -> Vec<Job> {
    let mut isos: HashMap<String, PathBuf> = HashMap::new();
    let mut jobs = Vec::new();
    for &scenario in scenarios {
        let dir = dir_of(scenario.name);
        let mut job = Job {
            scenario,
            dir: dir.clone(),
            iso: None,
            error: None,
            modules: Vec::new(),
            disk: None,
            acpi_tables: Vec::new(),
            image: elf.map(Path::to_path_buf).unwrap_or_default(),
        };
        let _ = fs::remove_dir_all(&dir);
        if let Err(e) = fs::create_dir_all(&dir) {
            job.error = Some(format!("cannot create {}: {e}", dir.display()));
        }
        if let Emulator::Qemu { .. } = scenario.emulator {
            let disk = dir.join("nvme.img");
            match crate::disk::write(&disk) {
                Ok(()) => job.disk = Some(disk),
                Err(e) => job.error = Some(e),
            }
        }
        if scenario.boot == Boot::GrubUefi {
            let vars = dir.join("OVMF_VARS.fd");
            if let Err(e) = fs::copy(qemu::OVMF_VARS, &vars) {
                job.error = Some(format!(
                    "cannot copy {} to {}: {e}",
                    qemu::OVMF_VARS,
                    vars.display()
                ));
            }
        }
        match write_modules(ws, scenario, &dir) {
            Ok(m) => job.modules = m,
            Err(e) => job.error = Some(e),
        }
        match write_acpi_tables(scenario, &dir) {
            Ok(t) => job.acpi_tables = t,
            Err(e) => job.error = Some(e),
        }
        match (elf, scenario.boot) {
            (Err(why), _) => job.error = Some(why.to_string()),
            (Ok(_), Boot::Kernel) => {}
            (Ok(elf), boot @ (Boot::Grub(_) | Boot::GrubUefi)) => {
                let protocol = boot.grub_protocol().unwrap_or(Protocol::Mb2);
                let names: Vec<String> = scenario
                    .boot_modules()
                    .map(|m| m.name.to_string())
                    .collect();
                let cfg = grub::config_with_modules(protocol, &scenario.kernel_cmdline(), &names);
                // ISOs with modules are not shared: the same names may hold
                // other contents in another scenario.
                let key = if names.is_empty() {
                    cfg.clone()
                } else {
                    format!("{}\n{cfg}", scenario.name)
                };
                if let Some(iso) = isos.get(&key) {
                    job.iso = Some(iso.clone());
                } else {
                    let iso = dir.join("hv.iso");
                    match grub::make_iso_with_modules(
                        elf,
                        &cfg,
                        &job.modules,
                        &dir.join("iso-root"),
                        &iso,
                    ) {
                        Ok(()) => {
                            println!("iso: {} ({protocol})", ws.show(&iso));
                            isos.insert(key, iso.clone());
                            job.iso = Some(iso);
                        }
                        Err(e) => job.error = Some(e),
                    }
                }
            }
        }
        jobs.push(job);
    }
    jobs
}

/// The result of one scenario.
#[derive(Debug)]
pub struct Report {
    pub name: &'static str,
    pub elapsed: Duration,
    /// Empty when it passed.
    pub problems: Vec<String>,
    pub serial: PathBuf,
    pub stderr: PathBuf,
    /// Show the emulator's stderr too: it did not end as expected.
    pub show_stderr: bool,
    /// The emulator was started (else there are no logs to show).
    pub ran: bool,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    /// `PASS name (4.1 s)`, or `FAIL name (12.0 s): why — log: path`
    /// followed by the end of the serial log (and of stderr).
    pub fn render(&self, ws: &Workspace) -> String {
        let secs = self.elapsed.as_secs_f64();
        if self.passed() {
            return format!("PASS {} ({secs:.1} s)", self.name);
        }
        let mut out = format!(
            "FAIL {} ({secs:.1} s): {}",
            self.name,
            self.problems.join("; ")
        );
        if !self.ran {
            return out;
        }
        out.push_str(&format!(" — log: {}", ws.show(&self.serial)));
        let serial = read_lossy(&self.serial);
        if serial.trim().is_empty() {
            out.push_str("\n    (the serial log is empty)");
        }
        for line in tail(&serial, SERIAL_TAIL) {
            out.push_str("\n    | ");
            out.push_str(&printable(line));
        }
        if self.show_stderr || serial.trim().is_empty() {
            for line in tail(&read_lossy(&self.stderr), STDERR_TAIL) {
                out.push_str("\n    stderr | ");
                out.push_str(&printable(line));
            }
        }
        out
    }
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// `line` without terminal escape sequences and control characters (GRUB
/// clears the screen with them; they must not reach the user's terminal).
pub fn printable(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.next_if_eq(&'[').is_some() {
                // CSI: parameters and intermediates up to a final byte.
                for c in chars.by_ref() {
                    if ('\x40'..='\x7e').contains(&c) {
                        break;
                    }
                }
            } else {
                // Intermediate bytes, then one final byte (e.g. ESC ( B).
                while chars.next_if(|c| (' '..='/').contains(c)).is_some() {}
                chars.next();
            }
        } else if c == '\t' || !c.is_control() {
            out.push(c);
        }
    }
    out
}

/// Judges a finished run: what is wrong with it, nothing if it passed.
pub fn check(scenario: &Scenario, ended: Ended, log: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if let Ended::TimedOut(limit) = ended {
        problems.push(format!("timed out after {} s", limit.as_secs()));
    }
    let missing: Vec<String> = scenario
        .expect
        .iter()
        .copied()
        .chain([scenario.outcome.marker()])
        .filter(|e| !log.contains(e))
        .map(|e| format!("{e:?}"))
        .collect();
    if !missing.is_empty() {
        let mut text = format!(
            "missing {}",
            missing[..missing.len().min(MISSING_SHOWN)].join(", ")
        );
        if missing.len() > MISSING_SHOWN {
            text.push_str(&format!(" and {} more", missing.len() - MISSING_SHOWN));
        }
        problems.push(text);
    }
    if let Some(wrong) = out_of_order(scenario.expect_in_order, log) {
        problems.push(wrong);
    }
    if crate::scenarios::churn::COMPARED.contains(&scenario.name) {
        problems.extend(crate::scenarios::churn::lives_differ(log));
    }
    for (_, bdf) in crate::scenarios::host_view::SAME_HOST_VIEW
        .iter()
        .filter(|(name, _)| *name == scenario.name)
    {
        problems.extend(crate::scenarios::host_view::host_view_differs(log, bdf));
    }
    let found: Vec<String> = scenario
        .rejected()
        .filter(|r| log.contains(r))
        .map(|r| format!("{r:?}"))
        .collect();
    if !found.is_empty() {
        problems.push(format!("found {}", found.join(", ")));
    }
    if let Some(wrong) = wrong_exit(scenario, ended) {
        problems.push(wrong);
    }
    problems
}

/// The first of `lines` that does not appear after the previous one in
/// `log`, described: missing altogether, or only before its predecessor.
fn out_of_order(lines: &[&str], log: &str) -> Option<String> {
    let mut at = 0;
    for (i, line) in lines.iter().enumerate() {
        match log[at..].find(line) {
            Some(pos) => at += pos + line.len(),
            None if i > 0 && log.contains(line) => {
                return Some(format!(
                    "out of order: {line:?} does not appear after {:?}",
                    lines[i - 1]
                ))
            }
            None => return Some(format!("missing (in order) {line:?}")),
        }
    }
    None
}

/// How the emulator's exit differs from the expected one, if it does.
fn wrong_exit(scenario: &Scenario, ended: Ended) -> Option<String> {
    let name = scenario.emulator.name();
    let expected = match (scenario.emulator, scenario.outcome) {
        (Emulator::Qemu { .. }, Outcome::Success) => qemu::debug_exit_status(0),
        (Emulator::Qemu { .. }, Outcome::Failure) => qemu::debug_exit_status(1),
        (Emulator::Bochs { .. }, _) => bochs::SHUTDOWN_STATUS,
    };
    match ended {
        Ended::TimedOut(_) => None,
        Ended::Code(code) if code == expected => None,
        Ended::Code(code) => Some(match scenario.emulator {
            Emulator::Qemu { .. } => qemu::describe_status(code),
            Emulator::Bochs { .. } => format!("Bochs exited with status {code} (see bochs.log)"),
        }),
        Ended::Signal(signal) => Some(format!("{name} was killed by signal {signal}")),
    }
}

/// The emulator command line of `job`; writes the Bochs files it needs.
fn command_line(job: &Job, elf: &Path, own_network: bool) -> Result<Vec<OsString>, String> {
    let scenario = job.scenario;
    let cmdline = scenario.kernel_cmdline();
    let serial = job.dir.join("serial.log");
    let no_iso = || format!("{}: no ISO to boot", scenario.name);
    match scenario.emulator {
        Emulator::Qemu { iommu, devices } => {
            let vars = job.dir.join("OVMF_VARS.fd");
            let media = match (scenario.boot, &job.iso) {
                (Boot::Kernel, _) => qemu::Media::Kernel {
                    elf,
                    cmdline: &cmdline,
                    modules: &job.modules,
                },
                (Boot::Grub(_), Some(iso)) => qemu::Media::Cdrom(iso),
                (Boot::GrubUefi, Some(iso)) => qemu::Media::UefiCdrom { iso, vars: &vars },
                (Boot::Grub(_) | Boot::GrubUefi, None) => return Err(no_iso()),
            };
            // Typed input needs the serial line on QEMU's stdin and
            // stdout; `launch` sends stdout to serial.log then.
            let serial = if scenario.typed().is_empty() {
                qemu::Serial::File(&serial)
            } else {
                qemu::Serial::Stdio
            };
            let config = qemu::Config {
                iommu,
                devices,
                media,
                serial,
                gdb: false,
                disk: job.disk.as_deref(),
                acpi_tables: &job.acpi_tables,
            };
            let mut line = vec![OsString::from(qemu::PROGRAM)];
            line.extend(qemu::args(&config));
            Ok(line)
        }
        Emulator::Bochs { .. } if !scenario.typed().is_empty() => Err(format!(
            "{}: typed serial input is for QEMU scenarios only",
            scenario.name
        )),
        Emulator::Bochs { .. } if !job.acpi_tables.is_empty() => Err(format!(
            "{}: added ACPI tables are for QEMU scenarios only",
            scenario.name
        )),
        Emulator::Bochs { cpu } => {
            let iso = job.iso.as_deref().ok_or_else(no_iso)?;
            let rc_text = bochs::bochsrc(&bochs::Config {
                cpu,
                iso,
                serial: &serial,
                log: &job.dir.join("bochs.log"),
            });
            let bochsrc = job.dir.join("bochsrc");
            let rc = job.dir.join("rc");
            fs::write(&bochsrc, rc_text).map_err(|e| format!("cannot write bochsrc: {e}"))?;
            fs::write(&rc, bochs::RC).map_err(|e| format!("cannot write rc: {e}"))?;
            Ok(bochs::command_line(&bochsrc, &rc, own_network))
        }
    }
}

/// Starts the emulator of `job` and waits for it (at most its time limit).
fn launch(job: &Job, elf: &Path, own_network: bool) -> Result<(Ended, Duration), String> {
    let line = command_line(job, elf, own_network)?;
    let _ = fs::write(
        job.dir.join("command.txt"),
        process::shell_line(&line) + "\n",
    );
    let create = |name: &str| {
        File::create(job.dir.join(name)).map_err(|e| format!("cannot create {name}: {e}"))
    };
    let typed = job.scenario.typed();
    let typing = !typed.is_empty();
    let mut cmd = Command::new(&line[0]);
    cmd.args(&line[1..])
        .current_dir(&job.dir)
        .stdin(if typing {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(create(if typing { "serial.log" } else { "stdout.log" })?)
        .stderr(create("stderr.log")?);
    process::isolate(&mut cmd);
    let bochs = matches!(job.scenario.emulator, Emulator::Bochs { .. });
    let _turn =
        (bochs && !own_network).then(|| BOCHS_TURN.lock().unwrap_or_else(|e| e.into_inner()));
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", line[0].to_string_lossy()))?;
    let limit = Duration::from_secs(job.scenario.timeout_secs);
    if let (true, Some(stdin)) = (typing, child.stdin.take()) {
        let log = job.dir.join("serial.log");
        std::thread::spawn(move || type_after(stdin, &log, &typed, start + limit));
    }
    let ended = process::wait(&mut child, Some(limit), true)
        .map_err(|e| format!("waiting for the emulator failed: {e}"))?;
    Ok((ended, start.elapsed()))
}

/// Writes each `(after, text)`'s `text` to the emulator's serial input
/// once its `after` appears in `log` past where the one before matched
/// (checked a few times a second until `deadline`), a byte at a time as a
/// person types, so the guest's input ring never overflows.
fn type_after(
    mut stdin: std::process::ChildStdin,
    log: &Path,
    typed: &[(&str, &str)],
    deadline: Instant,
) {
    use std::io::Write;
    let mut from = 0;
    for (after, text) in typed {
        loop {
            if Instant::now() >= deadline {
                return;
            }
            let seen = read_lossy(log);
            if let Some(at) = seen.get(from..).and_then(|s| s.find(after)) {
                from += at + after.len();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for b in text.bytes() {
            if stdin.write_all(&[b]).and_then(|()| stdin.flush()).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Runs one scenario and judges it.
pub fn run_one(job: &Job, own_network: bool) -> Report {
    let mut report = Report {
        name: job.scenario.name,
        elapsed: Duration::ZERO,
        problems: Vec::new(),
        serial: job.dir.join("serial.log"),
        stderr: job.dir.join("stderr.log"),
        show_stderr: false,
        ran: false,
    };
    if let Some(error) = &job.error {
        report.problems.push(error.clone());
        return report;
    }
    match launch(job, &job.image, own_network) {
        Ok((ended, elapsed)) => {
            report.ran = true;
            report.elapsed = elapsed;
            report.problems = check(job.scenario, ended, &read_lossy(&report.serial));
            report.show_stderr = wrong_exit(job.scenario, ended).is_some();
        }
        Err(e) => report.problems.push(e),
    }
    report
}

/// Runs `jobs` on `workers` threads, calling `done` (on this thread) with
/// each report as its scenario finishes; returns the reports in that order.
pub fn run_all(jobs: &[Job], workers: usize, mut done: impl FnMut(&Report)) -> Vec<Report> {
    let own_network = jobs
        .iter()
        .any(|j| matches!(j.scenario.emulator, Emulator::Bochs { .. }))
        && bochs::can_unshare_network();
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel();
    let mut reports = Vec::with_capacity(jobs.len());
    thread::scope(|scope| {
        for _ in 0..workers.clamp(1, jobs.len().max(1)) {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || {
                while let Some(job) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if tx.send(run_one(job, own_network)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for report in rx {
            done(&report);
            reports.push(report);
        }
    });
    reports
}

/// The closing line of `cargo xtask test`.
pub fn summary_line(passed: usize, failed: usize) -> String {
    format!("{passed} passed, {failed} failed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{Iommu, Protocol};

    const HIDE: Scenario = Scenario {
        name: "hide-qemu",
        description: "test",
        emulator: Emulator::Qemu {
            iommu: Iommu::Intel,
            devices: &[],
        },
        boot: Boot::Grub(Protocol::Mb2),
        cmdline: "pciback.hide=(00:03.0)",
        timeout_secs: 60,
        expect: &["pciback: hidden 0000:00:03.0", "hv: boot complete"],
        reject: &["WARNING"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: &[],
    };

    const GOOD_LOG: &str = "\x1b[H\x1b[J  Booting `hv (multiboot2)'\r\n\
        hv: boot protocol multiboot2\r\n\
        pciback: hidden 0000:00:03.0 (command 0x0400)\r\n\
        hv: boot complete (heap 0 KiB used)\r\n\
        hv: exiting: success\r\n";

    #[test]
    fn a_complete_log_with_status_1_passes() {
        assert!(check(&HIDE, Ended::Code(1), GOOD_LOG).is_empty());
    }

    #[test]
    fn ordered_lines_in_order_pass() {
        let log = "a1\nb1\na2\nb2\n";
        assert_eq!(out_of_order(&["a1", "b1", "a2"], log), None);
        assert_eq!(out_of_order(&[], log), None);
    }

    #[test]
    fn an_ordered_line_before_its_predecessor_is_out_of_order() {
        let log = "a1\na2\nb1\n";
        let wrong = out_of_order(&["a1", "b1", "a2"], log).expect("out of order");
        assert!(
            wrong.contains("out of order") && wrong.contains("\"a2\"") && wrong.contains("\"b1\""),
            "{wrong}"
        );
    }

    #[test]
    fn a_missing_ordered_line_is_named_and_fails_the_check() {
        let wrong = out_of_order(&["a1", "zz"], "a1\n").expect("missing");
        assert!(
            wrong.contains("missing") && wrong.contains("\"zz\""),
            "{wrong}"
        );
        let s = Scenario {
            expect_in_order: &["hv: boot complete", "pciback: hidden 0000:00:03.0"],
            ..HIDE
        };
        let problems = check(&s, Ended::Code(1), GOOD_LOG);
        assert!(
            problems.iter().any(|p| p.contains("out of order")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_missing_line_is_named() {
        let log = GOOD_LOG.replace("pciback: hidden 0000:00:03.0", "pciback: skipped");
        assert_eq!(
            check(&HIDE, Ended::Code(1), &log),
            ["missing \"pciback: hidden 0000:00:03.0\""]
        );
    }

    #[test]
    fn rejected_lines_and_fatal_are_found() {
        let log = format!("{GOOD_LOG}WARNING: x\nFATAL: y\n");
        assert_eq!(
            check(&HIDE, Ended::Code(1), &log),
            ["found \"WARNING\", \"FATAL\""]
        );
    }

    #[test]
    fn qemu_status_3_fails_a_success_scenario() {
        let problems = check(&HIDE, Ended::Code(3), GOOD_LOG);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("status 3"), "{problems:?}");
    }

    #[test]
    fn a_timeout_is_reported_first_with_what_was_missing() {
        let log = "hv: boot protocol multiboot2\n";
        let problems = check(&HIDE, Ended::TimedOut(Duration::from_secs(60)), log);
        assert_eq!(
            problems,
            [
                "timed out after 60 s",
                "missing \"pciback: hidden 0000:00:03.0\", \"hv: boot complete\", \
                 \"hv: exiting: success\""
            ]
        );
    }

    #[test]
    fn long_missing_lists_are_shortened() {
        let problems = check(&HIDE, Ended::Code(1), "");
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].ends_with("\"hv: exiting: success\""),
            "{problems:?}"
        );
        let many = Scenario {
            expect: &["a", "b", "c", "d"],
            ..HIDE
        };
        let problems = check(&many, Ended::Code(1), "");
        assert!(problems[0].ends_with(" and 2 more"), "{problems:?}");
    }

    #[test]
    fn an_expected_failure_needs_status_3_and_the_failure_marker() {
        let panic = Scenario {
            boot: Boot::Kernel,
            expect: &["FATAL: hypervisor panic"],
            reject: &[],
            expect_in_order: &[],
            outcome: Outcome::Failure,
            ..HIDE
        };
        let log = "FATAL: hypervisor panic at x\nhv: exiting: failure\n";
        assert!(check(&panic, Ended::Code(3), log).is_empty());
        assert_eq!(check(&panic, Ended::Code(1), log).len(), 1);
        assert_eq!(
            check(&panic, Ended::Code(3), "FATAL: hypervisor panic\n"),
            ["missing \"hv: exiting: failure\""]
        );
    }

    #[test]
    fn bochs_needs_the_shutdown_status_and_the_marker() {
        let vmx = Scenario {
            emulator: Emulator::Bochs {
                cpu: "corei7_skylake_x",
            },
            ..HIDE
        };
        assert!(check(&vmx, Ended::Code(1), GOOD_LOG).is_empty());
        let problems = check(&vmx, Ended::Code(1), "hv: boot complete\n");
        assert_eq!(problems.len(), 1);
        assert!(check(&vmx, Ended::Signal(11), GOOD_LOG)[0].contains("signal 11"));
    }

    #[test]
    fn printable_drops_escape_sequences_and_control_characters() {
        assert_eq!(
            printable("\x1b[H\x1b[J\x1b[1;1H  Booting `hv'\r"),
            "  Booting `hv'"
        );
        assert_eq!(printable("a\tb\x07c\x1b(B"), "a\tbc");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), ["b", "c"]);
        assert_eq!(tail("a\r\nb", 5), ["a", "b"]);
        assert!(tail("", 3).is_empty());
    }

    #[test]
    fn the_summary_line() {
        assert_eq!(summary_line(12, 0), "12 passed, 0 failed");
        assert_eq!(summary_line(3, 2), "3 passed, 2 failed");
    }

    #[test]
    fn reports_render_pass_and_fail_lines() {
        let ws = Workspace {
            root: PathBuf::from("/w"),
        };
        let mut report = Report {
            name: "hide-qemu",
            elapsed: Duration::from_millis(4100),
            problems: vec![],
            serial: PathBuf::from("/w/target/xtask/scenarios/hide-qemu/serial.log"),
            stderr: PathBuf::from("/w/target/xtask/scenarios/hide-qemu/stderr.log"),
            show_stderr: false,
            ran: true,
        };
        assert_eq!(report.render(&ws), "PASS hide-qemu (4.1 s)");
        report.problems = vec!["missing \"x\"".into()];
        report.elapsed = Duration::from_secs(12);
        assert!(report.render(&ws).starts_with(
            "FAIL hide-qemu (12.0 s): missing \"x\" — log: \
             target/xtask/scenarios/hide-qemu/serial.log"
        ));
        report.ran = false;
        report.problems = vec!["the hv image did not build".into()];
        assert_eq!(
            report.render(&ws),
            "FAIL hide-qemu (12.0 s): the hv image did not build"
        );
    }
}
