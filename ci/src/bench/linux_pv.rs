//! Linux PV through xen-pcifront: what the PCI backend inside the
//! hypervisor costs Debian's own kernel, against the published Xen figure
//! and against the same kernel without a hypervisor.
//!
//! The guest is the `linux-pv-pcifront-svm` domain (PV, 256 MiB, edu,
//! e1000e and NVMe passed through, VT-d) with `/init`'s `hvtest=bench`
//! (ci/src/guests/init.sh): it attaches the functions, loads nvme and runs
//! `pcibench` (guest-tools) as the command line says. One run per
//! measurement, one after the other, and a baseline run that does only the
//! attach: the hypervisor's exit counts at the domain's end minus the
//! baseline's, divided by N, are the exits per operation.
//!
//! - config reads: `pcibench config 2000 <edu>`, a 4-byte `pread` of
//!   `/sys/bus/pci/devices/<edu>/config`, each a round trip through
//!   xen-pcifront and the backend; the method of the published reference
//!   (Xen 4.17, dom0 Linux pciback, the same Debian PV domU, the same QEMU
//!   TCG: about 360 µs per read, 2,800 reads per second);
//! - system calls: `pcibench syscall 20000` (`getppid`), what a PV guest's
//!   user-to-kernel round trip costs (every `syscall` traps);
//! - NVMe: `pcibench nvme 64`, 64 MiB read with `O_DIRECT` in 1 MiB
//!   blocks, against the same kernel booted by QEMU's PVH loader on the
//!   same machine (config reads and system calls there too, for scale);
//! - attach: the time from starting QEMU to the hypervisor's
//!   `frontend connected` line for Linux (each PV run) and for our own PVH
//!   frontend `xpci` with the same three functions.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use guest_tools::{Report as Bench, Summary};

use super::exits;
use super::{read_log, Run};
use crate::machine::Iommu;
use crate::process::{self, Ended};
use crate::runner::{self, Job};
use crate::scenarios::{self, BootModule, ModuleContent, Outcome, Scenario};
use crate::{disk, guests, qemu, Workspace};

/// The published reference: Xen 4.17 with dom0 Linux pciback and the same
/// Debian PV domU kernel, under the same QEMU TCG.
pub const XEN_US_PER_READ: f64 = 360.0;
pub const XEN_READS_PER_SECOND: f64 = 2800.0;

/// What the section asks this hypervisor for: at least this many times
/// Xen's reads per second.
pub const GOAL: f64 = 5.0;

/// Config reads, MiB read and system calls per measured run.
pub const CONFIG_READS: u64 = 2000;
pub const NVME_MIB: u64 = 64;
pub const SYSCALLS: u64 = 20_000;

/// The hypervisor's command line: the three functions hidden.
const CMDLINE: &str = "loglvl=info pciback.hide=(00:03.0)(00:04.0)(00:05.0)";

/// The domain's name (`dom1 (linux)`).
const DOMAIN: &str = "linux";

/// The hypervisor's line when a frontend has attached.
fn connected(domain: &str) -> String {
    format!("pciback: dom1 ({domain}): frontend connected")
}

/// The guest's line when xen-pcifront's bus is there.
const PCIFRONT_CONNECTED: &str = "[d1 linux] init: xen-pcifront: pci-0 Connected";

/// One measured run of the PV guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Attach and load nvme, nothing measured.
    Baseline,
    Config,
    Nvme,
    Syscall,
}

impl Phase {
    pub const ALL: [Phase; 4] = [Phase::Baseline, Phase::Config, Phase::Nvme, Phase::Syscall];

    fn name(self) -> &'static str {
        match self {
            Phase::Baseline => "baseline",
            Phase::Config => "config",
            Phase::Nvme => "nvme",
            Phase::Syscall => "syscall",
        }
    }

    /// `/init`'s words for this phase.
    pub fn words(self) -> String {
        match self {
            Phase::Baseline => "hvtest=bench".into(),
            Phase::Config => format!("hvtest=bench hvtest.config={CONFIG_READS}"),
            Phase::Nvme => format!("hvtest=bench hvtest.nvme={NVME_MIB}"),
            Phase::Syscall => format!("hvtest=bench hvtest.syscall={SYSCALLS}"),
        }
    }

    /// The operations it measures.
    fn ops(self) -> u64 {
        match self {
            Phase::Baseline => 0,
            Phase::Config => CONFIG_READS,
            Phase::Nvme => NVME_MIB,
            Phase::Syscall => SYSCALLS,
        }
    }
}

/// The PV domain's configuration for `phase`.
pub fn config(phase: Phase) -> String {
    format!(
        "name = \"{DOMAIN}\"\ntype = \"pv\"\nkernel = \"{}\"\nramdisk = \"{}\"\nmemory = {}\n\
         pci = ['00:03.0', '00:04.0', '00:05.0']\ncmdline = \"{} {}\"\n",
        guests::VMLINUX,
        guests::INITRD,
        guests::LINUX_MEMORY_MIB,
        guests::XEN_CMDLINE,
        phase.words()
    )
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// The scenario of one PV run. Leaked: the runner takes `'static`
/// scenarios.
pub fn scenario(phase: Phase) -> &'static Scenario {
    let mut expect = vec![
        PCIFRONT_CONNECTED,
        "[d1 linux] init: bench: done",
        leak(format!("dom1 ({DOMAIN}): exits:")),
        leak(format!("dom1 ({DOMAIN}): powered off")),
    ];
    if phase != Phase::Baseline {
        expect.push(leak(format!("pcibench: {} ", phase.name())));
    }
    let modules: &'static [BootModule] =
        Box::leak(Box::new(guests::linux_modules(leak(config(phase)))));
    Box::leak(Box::new(Scenario {
        name: leak(format!("bench-linux-pv-{}", phase.name())),
        description: "PV Linux with xen-pcifront running pcibench",
        emulator: scenarios::QEMU_INTEL,
        boot: crate::machine::Boot::Kernel,
        cmdline: CMDLINE,
        timeout_secs: 600,
        expect: expect.leak(),
        reject: &[
            "init: FAILED",
            "Kernel panic",
            "BUG:",
            "destroyed",
            "not assigned",
        ],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules,
    }))
}

/// Our own PVH frontend with the same three functions, stopping after its
/// scan (`bench-only=baseline`): its attach time.
pub fn xpci_scenario() -> &'static Scenario {
    const CFG: &str = "name = \"xpci\"\nkernel = \"xpci\"\nmemory = 64\n\
        pci = ['00:03.0', '00:04.0', '00:05.0']\n\
        extra = \"expect=1234:11e8,8086:10d3,1b36:0010 bench-only=baseline\"\n";
    const XPCI_CONNECTED: &str = "pciback: dom1 (xpci): frontend connected";
    Box::leak(Box::new(Scenario {
        name: "bench-linux-pv-xpci-attach",
        description: "the xpci guest attaching to the same three functions",
        emulator: scenarios::QEMU_INTEL,
        boot: crate::machine::Boot::Kernel,
        cmdline: CMDLINE,
        timeout_secs: 120,
        expect: &[XPCI_CONNECTED, "dom1 (xpci): powered off"],
        reject: &[": FAIL", "destroyed"],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: &[
            BootModule {
                name: "xpci",
                content: ModuleContent::Guest("xpci"),
            },
            BootModule {
                name: "xpci.cfg",
                content: ModuleContent::Text(CFG),
            },
        ],
    }))
}

/// Runs `job`, noting when each of `lines` first appears in its serial
/// log (from just before the emulator starts); returns those times and the
/// run.
fn run_watched(job: &Job, lines: &[String]) -> (Vec<Option<Duration>>, Run) {
    let serial = job.dir.join("serial.log");
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let (seen, report) = thread::scope(|s| {
        let watchers: Vec<_> = lines
            .iter()
            .map(|line| s.spawn(|| super::linux::watch(&serial, line, start, &stop)))
            .collect();
        let report = runner::run_one(job, false);
        stop.store(true, Ordering::SeqCst);
        let seen = watchers
            .into_iter()
            .map(|w| w.join().ok().flatten())
            .collect();
        (seen, report)
    });
    let log = read_log(&report);
    (
        seen,
        Run {
            emulator: job.scenario.emulator,
            report,
            log,
        },
    )
}

/// What the hypervisor counted for the domain: every exit, by kind.
fn counts(log: &str, domain: &str) -> Option<Vec<(String, u64)>> {
    exits::domain_lines(log, domain).map(|(e, _)| e.counts)
}

/// What the fast path handled for the domain without an exit (its
/// `in the container without an exit: N system calls, N irets, ...; ...`
/// line), by kind.
pub fn fast_counts(log: &str, domain: &str) -> Option<Vec<(String, u64)>> {
    let head = format!("({domain}): in the container without an exit: ");
    let line = log
        .lines()
        .find_map(|l| l.find(&head).map(|i| &l[i + head.len()..]))?;
    let handled = line.split(';').next()?;
    handled
        .split(',')
        .map(|pair| {
            let (n, kind) = pair.trim().split_once(' ')?;
            Some((kind.to_string(), n.parse().ok()?))
        })
        .collect()
}

/// The fast path's work per operation against the baseline, as a cell:
/// `1.00 system calls, 2.00 irets, ...` (kinds that did not grow left
/// out), `-` when nothing grew, `?` without the lines.
fn fast_cell(run: Option<&str>, base: Option<&str>, ops: u64) -> String {
    let (Some(run), Some(base)) = (
        run.and_then(|l| fast_counts(l, DOMAIN)),
        base.and_then(|l| fast_counts(l, DOMAIN)),
    ) else {
        return "?".into();
    };
    if ops == 0 {
        return "?".into();
    }
    let of = |c: &[(String, u64)], k: &str| c.iter().find(|(x, _)| x == k).map_or(0, |p| p.1);
    let cells: Vec<String> = run
        .iter()
        .map(|(k, n)| (k, n.saturating_sub(of(&base, k)) as f64 / ops as f64))
        .filter(|&(_, d)| d >= 0.01)
        .map(|(k, d)| format!("{d:.2} {k}"))
        .collect();
    if cells.is_empty() {
        "-".into()
    } else {
        cells.join(", ")
    }
}

/// Exits per operation against the baseline: all of them, hypercalls, and
/// the kind that grew most (with its count per operation).
#[derive(Debug, Clone, PartialEq)]
pub struct PerOp {
    pub total: f64,
    pub hypercall: f64,
    pub top: Option<(String, f64)>,
}

/// `(run - base) / ops` for the domain's exit counts.
pub fn per_op(run: &[(String, u64)], base: &[(String, u64)], ops: u64) -> Option<PerOp> {
    if ops == 0 {
        return None;
    }
    let of = |counts: &[(String, u64)], kind: &str| {
        counts
            .iter()
            .find(|(k, _)| k == kind)
            .map_or(0, |&(_, n)| n)
    };
    let delta = |kind: &str| of(run, kind).saturating_sub(of(base, kind)) as f64 / ops as f64;
    let total = run.iter().map(|(k, _)| delta(k)).sum::<f64>();
    let top = run
        .iter()
        .map(|(k, _)| (k.clone(), delta(k)))
        .filter(|&(_, d)| d > 0.0)
        .max_by(|a, b| a.1.total_cmp(&b.1));
    Some(PerOp {
        total,
        hypercall: delta("hypercall"),
        top,
    })
}

fn exits_cells(p: Option<&PerOp>) -> String {
    match p {
        Some(p) => format!(
            "{:.2} | {:.2} | {} |",
            p.total,
            p.hypercall,
            p.top
                .as_ref()
                .map_or_else(|| "-".to_string(), |(k, n)| format!("{n:.2} {k}"))
        ),
        None => "? | ? | ? |".into(),
    }
}

/// The first report of `kind` in `log` (`config`, `nvme`, `syscall`).
fn report_of(log: &str, phase: Phase) -> Option<Bench> {
    Bench::all_in(log).into_iter().find(|r| {
        matches!(
            (phase, r),
            (Phase::Config, Bench::Config { .. })
                | (Phase::Nvme, Bench::Nvme { .. })
                | (Phase::Syscall, Bench::Syscall { .. })
        )
    })
}

fn summary_of(r: Option<&Bench>) -> Option<&Summary> {
    match r {
        Some(Bench::Config { summary, .. } | Bench::Syscall { summary }) => Some(summary),
        _ => None,
    }
}

/// A row with a summary: N, median, mean, per second.
fn summary_cells(s: Option<&Summary>) -> String {
    match s {
        Some(s) => format!(
            "{} | {:.1} | {:.1} | {:.0} |",
            s.ops, s.median_us, s.mean_us, s.per_second
        ),
        None => "? | ? | ? | ? |".into(),
    }
}

fn seconds(d: Option<Duration>) -> String {
    d.map_or_else(|| "never".into(), |d| format!("{:.2} s", d.as_secs_f64()))
}

/// The median of the times that were seen.
fn median(times: &[Option<Duration>]) -> Option<Duration> {
    let mut seen: Vec<Duration> = times.iter().flatten().copied().collect();
    seen.sort();
    seen.get(seen.len().checked_sub(1)? / 2).copied()
}

/// What the runs gave, for the tables.
#[derive(Debug, Default)]
pub struct Results {
    /// The PV runs' logs by phase (the baseline's among them).
    pub pv: Vec<(Phase, String)>,
    /// The native run's console.
    pub native: Option<String>,
    /// QEMU start to the hypervisor's `frontend connected` and to the
    /// guest's `pci-0 Connected`, per PV run.
    pub pv_attach: Vec<(Option<Duration>, Option<Duration>)>,
    /// QEMU start to `frontend connected` for xpci.
    pub xpci_attach: Option<Duration>,
}

impl Results {
    fn log(&self, phase: Phase) -> Option<&str> {
        self.pv
            .iter()
            .find(|(p, _)| *p == phase)
            .map(|(_, l)| l.as_str())
    }

    fn per_op(&self, phase: Phase) -> Option<PerOp> {
        let run = counts(self.log(phase)?, DOMAIN)?;
        let base = counts(self.log(Phase::Baseline)?, DOMAIN)?;
        per_op(&run, &base, phase.ops())
    }

    fn fast(&self, phase: Phase) -> String {
        fast_cell(self.log(phase), self.log(Phase::Baseline), phase.ops())
    }
}

/// The section's tables.
pub fn tables(r: &Results) -> String {
    let pv = |phase| r.log(phase).and_then(|l| report_of(l, phase));
    let native = |phase| r.native.as_deref().and_then(|l| report_of(l, phase));
    let mut out = String::new();

    let config = pv(Phase::Config);
    let config_op = r.per_op(Phase::Config);
    out.push_str(
        "| config read (4-byte `pread` of sysfs `config`) | N | µs per read (median) | µs per read (mean) | reads per second | exits per read | hypercall exits per read | most grown exit per read | handled in the container per read |\n\
         |---|---:|---:|---:|---:|---:|---:|---|---|\n",
    );
    out.push_str(&format!(
        "| Linux PV domU, xen-pcifront, this hypervisor (SVM + NPT) | {} {} {} |\n",
        summary_cells(summary_of(config.as_ref())),
        exits_cells(config_op.as_ref()),
        r.fast(Phase::Config)
    ));
    out.push_str(&format!(
        "| Xen 4.17 + dom0 Linux pciback, the same domU (published) | | ≈{XEN_US_PER_READ:.0} | | ≈{XEN_READS_PER_SECOND:.0} | | | | |\n"
    ));
    out.push_str(&format!(
        "| the same kernel without a hypervisor (ECAM) | {} | | | |\n",
        summary_cells(summary_of(native(Phase::Config).as_ref()))
    ));
    let speedup = summary_of(config.as_ref())
        .filter(|s| s.median_us > 0.0)
        .map(|s| XEN_US_PER_READ / s.median_us);
    out.push_str(&format!(
        "\nXen's µs per read / this hypervisor's (median): {} (goal: at least {GOAL:.0})\n\n",
        speedup.map_or_else(|| "?".into(), |x| format!("{x:.2}"))
    ));

    let syscall = pv(Phase::Syscall);
    out.push_str(
        "| system call (`getppid`) | N | µs per call (median) | µs per call (mean) | calls per second | exits per call | hypercall exits per call | most grown exit per call | handled in the container per call |\n\
         |---|---:|---:|---:|---:|---:|---:|---|---|\n",
    );
    out.push_str(&format!(
        "| Linux PV domU, this hypervisor | {} {} {} |\n",
        summary_cells(summary_of(syscall.as_ref())),
        exits_cells(r.per_op(Phase::Syscall).as_ref()),
        r.fast(Phase::Syscall)
    ));
    out.push_str(&format!(
        "| the same kernel without a hypervisor | {} | | | |\n\n",
        summary_cells(summary_of(native(Phase::Syscall).as_ref()))
    ));

    let mb = |b: Option<Bench>| match b {
        Some(Bench::Nvme {
            mb_per_s, direct, ..
        }) => (Some(mb_per_s), if direct { "yes" } else { "no" }),
        _ => (None, "?"),
    };
    let (pv_mb, pv_direct) = mb(pv(Phase::Nvme));
    let (native_mb, native_direct) = mb(native(Phase::Nvme));
    let show = |v: Option<f64>| v.map_or_else(|| "?".into(), |v| format!("{v:.1}"));
    out.push_str(&format!(
        "| nvme sequential read ({NVME_MIB} MiB, 1 MiB blocks) | MB/s | O_DIRECT |\n|---|---:|---|\n\
         | Linux PV domU, DMA through VT-d (this hypervisor) | {} | {pv_direct} |\n\
         | the same kernel and driver without a hypervisor | {} | {native_direct} |\n",
        show(pv_mb),
        show(native_mb)
    ));
    let ratio = match (pv_mb, native_mb) {
        (Some(p), Some(n)) if n > 0.0 => format!("{:.2}", p / n),
        _ => "?".into(),
    };
    out.push_str(&format!("\nunder the hypervisor / without: {ratio}\n\n"));

    let hv: Vec<Option<Duration>> = r.pv_attach.iter().map(|&(h, _)| h).collect();
    let guest: Vec<Option<Duration>> = r.pv_attach.iter().map(|&(_, g)| g).collect();
    let list =
        |v: &[Option<Duration>]| v.iter().map(|&d| seconds(d)).collect::<Vec<_>>().join(", ");
    out.push_str(
        "| frontend (QEMU TCG, the same three functions) | QEMU start to `frontend connected` (median; samples) | QEMU start to the guest's bus |\n\
         |---|---|---|\n",
    );
    out.push_str(&format!(
        "| Linux PV, xen-pcifront | {} ({}) | {} (`init: xen-pcifront: pci-0 Connected`) |\n",
        seconds(median(&hv)),
        list(&hv),
        seconds(median(&guest))
    ));
    out.push_str(&format!(
        "| xpci (our PVH frontend) | {} | - |\n",
        seconds(r.xpci_attach)
    ));
    out
}

/// What the numbers are.
pub const NOTE: &str = "Each PV row is one boot of Debian's kernel as a PV domain (256 MiB, edu, \
e1000e and NVMe passed through under VT-d) whose /init runs pcibench once; exits per operation \
are the hypervisor's counts for the domain minus a run that only attached and loaded nvme, \
divided by N (everything the guest did meanwhile counts: its timer, and pcibench's own start, \
whose file pages Linux maps with one mmu_update each); what the fast path handled in the \
container without an exit is counted the same way. µs come from \
the guest's CLOCK_MONOTONIC, one clock read per operation. The Xen row is the published \
reference measured the same way under the same QEMU TCG; the rows without a hypervisor boot \
the same kernel and initramfs from QEMU's PVH loader on the same machine, where sysfs config \
reads go through ECAM and nothing translates DMA. Attach times are wall time from starting \
QEMU, read from the serial log as it grows: noisy on a shared machine.";

/// The native run's kernel command line: the same bench, on the serial
/// console; a panic ends QEMU.
pub fn native_cmdline() -> String {
    format!(
        "{} hvtest=bench hvtest.config={CONFIG_READS} hvtest.nvme={NVME_MIB} hvtest.syscall={SYSCALLS}",
        guests::DIRECT_CMDLINE
    )
}

/// QEMU's arguments for the kernel booted by QEMU's PVH loader on the
/// standard machine (Intel IOMMU, which Linux leaves off by default), with
/// the disk and the console on `console`.
pub fn native_args(images: &guests::GuestImages, disk: &Path, console: &Path) -> Vec<OsString> {
    let cmdline = native_cmdline();
    let modules = [images.initrd.clone()];
    qemu::args(&qemu::Config {
        iommu: Iommu::Intel,
        devices: &[],
        media: qemu::Media::Kernel {
            elf: &images.vmlinux,
            cmdline: &cmdline,
            modules: &modules,
        },
        serial: qemu::Serial::File(console),
        gdb: false,
        disk: Some(disk),
        acpi_tables: &[],
    })
}

/// How long the native run may take.
const NATIVE_TIMEOUT: Duration = Duration::from_secs(300);

/// Boots the kernel without the hypervisor; returns its console.
fn run_native(images: &guests::GuestImages, dir: &Path) -> Result<String, String> {
    let run_dir = dir.join("native");
    let _ = fs::remove_dir_all(&run_dir);
    fs::create_dir_all(&run_dir)
        .map_err(|e| format!("cannot create {}: {e}", run_dir.display()))?;
    let disk_path = run_dir.join("nvme.img");
    disk::write(&disk_path)?;
    let console = run_dir.join("console.log");
    let args = native_args(images, &disk_path, &console);
    let mut words = vec![OsString::from(qemu::PROGRAM)];
    words.extend(args.iter().cloned());
    let _ = fs::write(
        run_dir.join("command.txt"),
        process::shell_line(&words) + "\n",
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
    // ACPI powers the machine off: QEMU exits with 0.
    if ended != Ended::Code(0) || !log.contains("init: bench: done") {
        return Err(format!(
            "the native run: {ended:?}, not a clean poweroff after `init: bench: done` (console in {})",
            console.display()
        ));
    }
    Ok(log)
}

/// Runs the section: the PV runs, xpci's attach, the native run; returns
/// the runs under the hypervisor (for the exits tables), the text, and
/// whether everything ran.
pub fn measure(ws: &Workspace, dir: &Path, elf: &Path) -> Result<(Vec<Run>, String, bool), String> {
    let images = guests::prepare(ws, false)?;
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut wanted: Vec<&'static Scenario> = Phase::ALL.iter().map(|&p| scenario(p)).collect();
    wanted.push(xpci_scenario());
    let jobs = runner::prepare_in(ws, |name| dir.join(name), Ok(elf), &wanted);
    let mut results = Results::default();
    let mut runs = Vec::new();
    let mut ok = true;
    for (job, phase) in jobs.iter().zip(Phase::ALL.iter().map(Some).chain([None])) {
        let lines = match phase {
            Some(_) => vec![connected(DOMAIN), PCIFRONT_CONNECTED.to_string()],
            None => vec![connected("xpci")],
        };
        let (seen, run) = run_watched(job, &lines);
        println!(
            "linux pv: {}; frontend connected at {}",
            run.report.render(ws).lines().next().unwrap_or_default(),
            seconds(seen.first().copied().flatten())
        );
        ok &= run.report.passed();
        match phase {
            Some(&p) => {
                results.pv.push((p, run.log.clone()));
                results
                    .pv_attach
                    .push((seen[0], seen.get(1).copied().flatten()));
            }
            None => results.xpci_attach = seen[0],
        }
        runs.push(run);
    }
    match run_native(&images, dir) {
        Ok(log) => results.native = Some(log),
        Err(e) => {
            println!("linux pv: {e}");
            ok = false;
        }
    }
    let text = format!("{}\n{NOTE}", tables(&results));
    Ok((runs, text, ok))
}

/// The directory of the section's runs.
pub fn dir(bench: &Path) -> PathBuf {
    bench.join("linux-pv")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
        pairs.iter().map(|&(k, n)| (k.to_string(), n)).collect()
    }

    #[test]
    fn each_phase_asks_init_for_one_measurement() {
        assert_eq!(Phase::Baseline.words(), "hvtest=bench");
        assert_eq!(Phase::Config.words(), "hvtest=bench hvtest.config=2000");
        assert_eq!(Phase::Nvme.words(), "hvtest=bench hvtest.nvme=64");
        let cfg = config(Phase::Config);
        assert!(cfg.contains("type = \"pv\"\n"), "{cfg}");
        assert!(cfg.contains("pci = ['00:03.0', '00:04.0', '00:05.0']\n"));
        assert!(cfg.ends_with(
            "cmdline = \"console=hvc0 earlyprintk=xen loglevel=7 hvtest=bench hvtest.config=2000\"\n"
        ));
        let init = include_str!("../guests/init.sh");
        for word in [
            "hvtest.config=",
            "hvtest.nvme=",
            "hvtest.syscall=",
            "    bench) ",
        ] {
            assert!(init.contains(word), "{word}");
        }
        assert!(init.contains(&format!("say \"{}", &"bench: done")));
    }

    #[test]
    fn the_runs_are_not_test_scenarios_and_expect_their_report() {
        let s = scenario(Phase::Nvme);
        assert_eq!(s.name, "bench-linux-pv-nvme");
        assert!(s.expect.contains(&"pcibench: nvme "));
        assert!(s.expect.contains(&PCIFRONT_CONNECTED));
        assert!(s.needs_debian_guests());
        assert!(!scenario(Phase::Baseline)
            .expect
            .iter()
            .any(|e| e.starts_with("pcibench")));
        assert!(scenarios::all().all(|t| !t.name.starts_with("bench-linux-pv")));
        assert_eq!(
            connected("xpci"),
            "pciback: dom1 (xpci): frontend connected"
        );
    }

    #[test]
    fn exits_per_operation_are_against_the_baseline() {
        let base = kinds(&[("cpuid", 10), ("hypercall", 1000), ("other", 5)]);
        let run = kinds(&[
            ("cpuid", 10),
            ("hypercall", 5000),
            ("other", 9005),
            ("exception", 2000),
        ]);
        let p = per_op(&run, &base, 2000).expect("per op");
        assert!((p.total - 7.5).abs() < 1e-9, "{p:?}");
        assert!((p.hypercall - 2.0).abs() < 1e-9);
        assert_eq!(p.top, Some(("other".to_string(), 4.5)));
        assert_eq!(per_op(&run, &base, 0), None);
    }

    #[test]
    fn the_fast_path_line_is_read_by_kind() {
        let log = "x\ndom1 (linux): in the container without an exit: 3 system calls, 12 irets, 2 xen_version, 1 upcalls; 7 forwarded, 0 faults rolled back\n";
        assert_eq!(
            fast_counts(log, "linux"),
            Some(vec![
                ("system calls".to_string(), 3),
                ("irets".to_string(), 12),
                ("xen_version".to_string(), 2),
                ("upcalls".to_string(), 1),
            ])
        );
        assert_eq!(fast_counts(log, "other"), None);
        assert_eq!(fast_cell(Some(log), Some(log), 10), "-");
        assert_eq!(fast_cell(Some(log), None, 10), "?");
    }

    #[test]
    fn the_tables_show_each_measure_and_the_ratio_to_xen() {
        let exits = |hypercalls: u64| {
            format!(
                "dom1 (linux): exits: 10 cpuid, {hypercalls} hypercall, 0 other\n\
                 dom1 (linux): events: 1 upcalls injected, 2 sends, 0 timer expiries, 0 device interrupts\n\
                 dom1 (linux): in the container without an exit: {} system calls, {} irets, 7 xen_version, 0 upcalls; 9 forwarded, 0 faults rolled back\n",
                hypercalls,
                hypercalls * 2
            )
        };
        let config = format!(
            "[d1 linux] pcibench: config 0000:00:00.0 n 2000 median_us 60.000 mean_us 70.000 per_s 14000\n{}",
            exits(5000)
        );
        let nvme = format!(
            "[d1 linux] pcibench: nvme /dev/nvme0n1 mib 64 direct yes seconds 2.000 mb_per_s 33.54\n{}",
            exits(1500)
        );
        let results = Results {
            pv: vec![
                (Phase::Baseline, exits(1000)),
                (Phase::Config, config),
                (Phase::Nvme, nvme),
            ],
            native: Some(
                "pcibench: nvme /dev/nvme0n1 mib 64 direct yes seconds 1.000 mb_per_s 67.10\n\
                 pcibench: config 0000:00:03.0 n 2000 median_us 3.700 mean_us 4.200 per_s 233000\n"
                    .into(),
            ),
            pv_attach: vec![
                (Some(Duration::from_secs(30)), Some(Duration::from_secs(31))),
                (Some(Duration::from_secs(20)), None),
            ],
            xpci_attach: Some(Duration::from_millis(900)),
        };
        let t = tables(&results);
        for want in [
            "| Linux PV domU, xen-pcifront, this hypervisor (SVM + NPT) | 2000 | 60.0 | 70.0 | 14000 | 2.00 | 2.00 | 2.00 hypercall | 2.00 system calls, 4.00 irets |",
            "| the same kernel without a hypervisor (ECAM) | 2000 | 3.7 | 4.2 | 233000 | | | | |",
            "Xen's µs per read / this hypervisor's (median): 6.00 (goal: at least 5)",
            "| Linux PV domU, this hypervisor | ? | ? | ? | ? | ? | ? | ? | ? |",
            "| Linux PV domU, DMA through VT-d (this hypervisor) | 33.5 | yes |",
            "| the same kernel and driver without a hypervisor | 67.1 | yes |",
            "under the hypervisor / without: 0.50",
            "| Linux PV, xen-pcifront | 20.00 s (30.00 s, 20.00 s) | 31.00 s (`init: xen-pcifront: pci-0 Connected`) |",
            "| xpci (our PVH frontend) | 0.90 s | - |",
        ] {
            assert!(t.lines().any(|l| l == want), "{want}\nin\n{t}");
        }
        // Every row of a table has its header's columns.
        for table in t.split("\n\n") {
            let lines: Vec<&str> = table.lines().filter(|l| l.starts_with('|')).collect();
            if let Some(header) = lines.first() {
                for l in &lines {
                    assert_eq!(l.matches('|').count(), header.matches('|').count(), "{l}");
                }
            }
        }
    }

    #[test]
    fn the_native_run_boots_the_kernel_with_the_disk_and_the_bench() {
        let images = guests::GuestImages {
            dir: PathBuf::from("g"),
            vmlinux: PathBuf::from("g/vmlinux"),
            initrd: PathBuf::from("g/initrd.gz"),
            linux_cfg: PathBuf::from("g/linux.cfg"),
            grub: PathBuf::from("g/grub-pvh.elf"),
            grub_cfg: PathBuf::from("g/grub-pvh.cfg"),
            kernel_package: String::new(),
            kernel_modules: Vec::new(),
            grub_package: String::new(),
            kernel_entry: 0,
            grub_entry: 0,
        };
        let a: Vec<String> = native_args(&images, Path::new("/t/nvme.img"), Path::new("/t/c.log"))
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(a.windows(2).any(|w| w == ["-kernel", "g/vmlinux"]));
        assert!(a.windows(2).any(|w| w == ["-initrd", "g/initrd.gz"]));
        assert!(a.windows(2).any(|w| w[0] == "-append"
            && w[1] == "console=ttyS0 loglevel=7 panic=-1 hvtest=bench hvtest.config=2000 hvtest.nvme=64 hvtest.syscall=20000"));
        assert!(a.iter().any(|s| s.starts_with("file=/t/nvme.img,")));
        assert!(a.windows(2).any(|w| w == ["-serial", "file:/t/c.log"]));
    }

    #[test]
    fn the_median_attach_time_ignores_runs_that_never_attached() {
        let s = Duration::from_secs;
        assert_eq!(
            median(&[Some(s(3)), None, Some(s(1)), Some(s(2))]),
            Some(s(2))
        );
        assert_eq!(median(&[Some(s(3)), Some(s(1))]), Some(s(1)));
        assert_eq!(median(&[None]), None);
    }
}
