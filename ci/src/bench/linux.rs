//! Linux PVH boot time: Debian's kernel with the busybox initramfs
//! (`guests::prepare`) as a domain under the hypervisor on QEMU (the
//! `linux-pvh-svm` scenario, run by the scenario runner in its own
//! directory), against the same kernel booted by QEMU's own PVH loader
//! without a hypervisor (`cargo xtask guests --boot-direct`, whose timing
//! is taken from its report).
//!
//! Both times are emulator wall time from starting QEMU to the console line
//! `init: started`. Under the hypervisor the serial log is watched as it
//! grows (every [`POLL`]), from just before the runner starts QEMU.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::runner::{self, Report};
use crate::scenarios::{self, Scenario};
use crate::{guests, Workspace};

/// The scenario booting the kernel under the hypervisor.
const SCENARIO: &str = "linux-pvh-svm";

/// What `/init` prints first (the initramfs's script).
const STARTED: &str = "init: started";

/// How often the growing serial log is read.
const POLL: Duration = Duration::from_millis(50);

/// The scenario [`SCENARIO`], from the scenario list.
fn scenario() -> Result<&'static Scenario, String> {
    scenarios::all()
        .find(|s| s.name == SCENARIO)
        .ok_or_else(|| format!("no scenario {SCENARIO}"))
}

/// The domain's `init: started` line as the hypervisor forwards it.
fn started_line(scenario: &Scenario) -> String {
    scenario
        .expect
        .iter()
        .find(|e| e.ends_with(STARTED))
        .map_or_else(|| STARTED.to_string(), |e| e.to_string())
}

/// Reads `log` every [`POLL`] until it holds `needle` (the time since
/// `start`) or `stop` is set (one last look, then `None`).
pub(super) fn watch(
    log: &Path,
    needle: &str,
    start: Instant,
    stop: &AtomicBool,
) -> Option<Duration> {
    loop {
        let last = stop.load(Ordering::SeqCst);
        if fs::read(log).is_ok_and(|b| String::from_utf8_lossy(&b).contains(needle)) {
            return Some(start.elapsed());
        }
        if last {
            return None;
        }
        thread::sleep(POLL);
    }
}

/// One boot under the hypervisor: when `init: started` appeared, and the
/// runner's report.
fn under_hypervisor(
    ws: &Workspace,
    dir: &Path,
    elf: &Path,
) -> Result<(Option<Duration>, Report), String> {
    let scenario = scenario()?;
    let jobs = runner::prepare_in(ws, |name| dir.join(name), Ok(elf), &[scenario]);
    let job = jobs.first().ok_or("no job")?;
    let needle = started_line(scenario);
    let serial = job.dir.join("serial.log");
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    Ok(thread::scope(|s| {
        let watcher = s.spawn(|| watch(&serial, &needle, start, &stop));
        let report = runner::run_one(job, false);
        stop.store(true, Ordering::SeqCst);
        (watcher.join().ok().flatten(), report)
    }))
}

/// Reads a time such as `7.23 s` right after `key` in `text`.
fn seconds_after(text: &str, key: &str) -> Option<Duration> {
    let rest = &text[text.find(key)? + key.len()..];
    let number: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let rest = rest.trim_start()[number.len()..].trim_start();
    if !rest.starts_with('s') {
        return None;
    }
    number.parse().ok().map(Duration::from_secs_f64)
}

/// From `cargo xtask guests --boot-direct`'s report line
///
/// ```text
/// guests: direct boot: kernel's first line at 2.10 s, "init: started" at 7.23 s, "init: powering off" at 7.30 s, QEMU ended (Code(0)) after 7.50 s
/// ```
///
/// the time to `init: started` and QEMU's whole run.
pub fn parse_direct(stdout: &str) -> Option<(Option<Duration>, Duration)> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("guests: direct boot: "))?;
    let total = seconds_after(line, ") after ")?;
    Some((seconds_after(line, &format!("\"{STARTED}\" at ")), total))
}

/// This program, to run again: through `/proc/self/exe` where there is
/// one, which still works when a concurrent build has replaced the file.
fn this_program() -> Result<PathBuf, String> {
    let proc_exe = Path::new("/proc/self/exe");
    if proc_exe.exists() {
        return Ok(proc_exe.to_path_buf());
    }
    std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))
}

/// One direct boot, by `cargo xtask guests --boot-direct` (this program
/// run again), its output kept in `log`.
fn direct(log: &Path) -> Result<(Option<Duration>, Duration), String> {
    let me = this_program()?;
    let out = Command::new(&me)
        .args(["guests", "--boot-direct"])
        .output()
        .map_err(|e| format!("cannot run {} guests --boot-direct: {e}", me.display()))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let _ = fs::write(log, &text);
    parse_direct(&text).ok_or_else(|| {
        format!(
            "the direct boot printed no timing ({}; see {})",
            out.status,
            log.display()
        )
    })
}

/// Boots per way and bench run, alternating: wall time on a shared machine
/// is noisy (one boot pair ranged from 1.45 to 1.66 the same hour), and a
/// boot takes a few seconds either way; the table gives the medians.
const SAMPLES: usize = 3;

fn show(d: Option<Duration>) -> String {
    d.map_or_else(
        || String::from("never"),
        |d| format!("{:.2} s", d.as_secs_f64()),
    )
}

/// The samples of one way, and their median.
fn cell(samples: &[Option<Duration>]) -> (String, Option<Duration>) {
    let text: Vec<String> = samples.iter().map(|&d| show(d)).collect();
    let mut seen: Vec<Duration> = samples.iter().flatten().copied().collect();
    seen.sort();
    let median = (seen.len() == samples.len() && !seen.is_empty()).then(|| seen[seen.len() / 2]);
    (text.join(", "), median)
}

/// The table: one row per way, and the ratio of the medians.
pub fn table(hv: &[Option<Duration>], direct: &[Option<Duration>]) -> String {
    let (hv_text, hv_median) = cell(hv);
    let (direct_text, direct_median) = cell(direct);
    let mut out = String::from(
        "| boot (QEMU TCG `-cpu max`, 1 vCPU) | samples: QEMU start to `init: started` | median |\n\
         |---|---|---:|\n",
    );
    out.push_str(&format!(
        "| Linux PVH domain under the hypervisor (SVM + NPT, 256 MiB) | {hv_text} | {} |\n",
        show(hv_median)
    ));
    out.push_str(&format!(
        "| the same kernel from QEMU's PVH loader, no hypervisor (512 MiB) | {direct_text} | {} |\n",
        show(direct_median)
    ));
    let ratio = match (hv_median, direct_median) {
        (Some(h), Some(d)) if !d.is_zero() => format!("{:.2}", h.as_secs_f64() / d.as_secs_f64()),
        _ => String::from("?"),
    };
    out.push_str(&format!(
        "\nunder the hypervisor / direct: {ratio} (wall time on a shared machine: noisy, \
         compare runs taken side by side)\n"
    ));
    out
}

/// Prepares the guests and boots the kernel both ways [`SAMPLES`] times;
/// prints the table. `Ok(false)` when a boot failed.
pub fn measure(ws: &Workspace, dir: &Path, elf: &Path) -> Result<bool, String> {
    let images = guests::prepare(ws, false)?;
    println!(
        "linux boot: {} with {}",
        images.kernel_package,
        ws.show(&images.initrd)
    );
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let (mut hv, mut direct_times) = (Vec::new(), Vec::new());
    let mut ok = true;
    for i in 0..SAMPLES {
        let (at, report) = under_hypervisor(ws, dir, elf)?;
        if !report.passed() {
            println!("{}", report.render(ws));
            ok = false;
        }
        println!(
            "linux boot: under the hypervisor: `init: started` at {}, QEMU ran {:.2} s",
            show(at),
            report.elapsed.as_secs_f64()
        );
        hv.push(at);
        let log = dir.join(format!("direct-{i}.log"));
        let (at, total) = direct(&log)?;
        println!(
            "linux boot: direct: `init: started` at {}, QEMU ran {:.2} s",
            show(at),
            total.as_secs_f64()
        );
        ok &= at.is_some();
        direct_times.push(at);
    }
    println!();
    print!("{}", table(&hv, &direct_times));
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_direct_boot_report_is_read() {
        let out = "guests: in target/xtask/guests\n\
                   [    0.000000] Linux version 6.1.0\n\
                   guests: direct boot: kernel's first line at 2.10 s, \"init: started\" at 7.23 s, \
                   \"init: powering off\" at 7.30 s, QEMU ended (Code(0)) after 7.50 s\n\
                   guests: direct boot passed in 7.50 s\n";
        let (init, total) = parse_direct(out).expect("the report line");
        assert_eq!(init, Some(Duration::from_millis(7230)));
        assert_eq!(total, Duration::from_millis(7500));
        let hung =
            "guests: direct boot: kernel's first line at 2.10 s, \"init: started\" at never, \
                    \"init: powering off\" at never, QEMU ended (TimedOut(300s)) after 300.00 s\n";
        assert_eq!(parse_direct(hung), Some((None, Duration::from_secs(300))));
        assert_eq!(parse_direct("guests: direct boot passed in 7.50 s\n"), None);
    }

    #[test]
    fn the_watched_line_is_the_scenarios_own() {
        let s = scenario().expect("the Linux scenario");
        assert_eq!(started_line(s), "[d1 linux] init: started");
    }

    #[test]
    fn the_watcher_sees_a_line_that_is_there_and_stops_when_told() {
        let dir = std::env::temp_dir().join(format!("bench-linux-watch-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let log = dir.join("serial.log");
        fs::write(&log, "boot\n[d1 linux] init: started\n").expect("log");
        let stop = AtomicBool::new(true);
        assert!(watch(&log, "[d1 linux] init: started", Instant::now(), &stop).is_some());
        assert_eq!(watch(&log, "never printed", Instant::now(), &stop), None);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_table_shows_every_sample_and_the_ratio_of_medians() {
        let s = |ms| Some(Duration::from_millis(ms));
        let t = table(&[s(30_000)], &[s(7_500)]);
        assert!(t.contains("| 30.00 s | 30.00 s |"), "{t}");
        assert!(t.contains("| 7.50 s | 7.50 s |"), "{t}");
        assert!(t.contains("direct: 4.00 ("), "{t}");
        let t = table(&[s(30_000), None], &[s(2_000), s(1_000), s(3_000)]);
        assert!(t.contains("| 30.00 s, never | never |"), "{t}");
        assert!(t.contains("| 2.00 s, 1.00 s, 3.00 s | 2.00 s |"), "{t}");
        assert!(t.contains("direct: ? ("), "{t}");
    }
}
