//! Hot-plug (`--hotplug-only` runs only this section): the time and the
//! exits from `pci-attach` to the guest driving the function, and from
//! `pci-detach` to the function back in the pool.
//!
//! Two runs, one after the other, each a guest started without the
//! function and the shell typing `ctl` commands at it (as `hotplug-svm`
//! and `linux-pv-hotplug-svm` do): the `xpci` PVH guest with edu
//! (`wait-hotplug=`, [`XPCI_CYCLES`] attach and detach cycles; its first
//! attach gives it a new backend, to which its frontend connects, the
//! others reach it through Reconfiguring), and Debian's Linux as a PV
//! domain, xen-pcifront bound to e1000e at boot, with NVMe
//! (`hvtest=hotplug hvtest.cycles=N`, [`LINUX_CYCLES`] cycles).
//!
//! One clock: the hypervisor's system time (the TSC it calibrated, the
//! clock its guests read through pvclock), which `debug.stamps` puts in
//! front of every log line and shell reply, the guests' console lines
//! included (stamped as the hypervisor takes them). An attach is timed
//! from the stamp of `shell: taken: ctl pci-attach` to the guest's line
//! that it drove the function: xpci's `hot-add ADDR: driven` (edu's
//! registers, an MSI, a DMA copy checked, INTx), Linux's `nvme0n1: read
//! sector 2048` (nvme, loaded before the first cycle, bound to the new
//! function, and its `/init` read the known sector by DMA; the run checks
//! the sector's bytes each cycle); a detach from `shell: taken: ctl
//! pci-detach` to the hypervisor's `pciback: domN: BDF detached` (blocked
//! in the IOMMU, reset, back in the pool). The hypervisor's part is from
//! the same stamp to its reply.
//!
//! Exits: the domain's counts by reason from a `ctl stats` typed before
//! each command and one typed once the guest is idle again after it
//! (xpci: waiting for the next event; Linux: waiting for the function to
//! go, or after it went). They include what the guest did meanwhile
//! (Linux's timer ticks, its `/init` polling every 0.2 s) and the wait for
//! the bench to type (about half a second of host time per command).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::fs;
use std::path::Path;

use super::{read_log, Run};
use crate::runner;
use crate::scenarios::{self, BootModule, ModuleContent, Outcome, Scenario};
use crate::{guests, Workspace};

/// Attach and detach cycles of the xpci guest: the first attach with a
/// new backend, five through Reconfiguring.
pub const XPCI_CYCLES: usize = 6;

/// Attach and detach cycles of the Linux guest (its boot takes most of
/// the run's minute under QEMU TCG; a cycle takes a few seconds).
pub const LINUX_CYCLES: usize = 3;

/// The domain both runs measure.
const DOM: u16 = 1;

/// An operation measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Attach,
    Detach,
}

/// A domain's exit counts by reason, from a `stats` reply.
pub type Exits = BTreeMap<String, u64>;

/// One attach or detach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub op: Op,
    /// From the command taken to the guest driving the function (attach)
    /// or the function back in the pool (detach), µs.
    pub total_us: u64,
    /// From the command taken to the hypervisor's reply, µs.
    pub reply_us: Option<u64>,
    /// Exits by reason from the `stats` before the command to the one
    /// after it.
    pub exits: Option<Exits>,
}

/// The stamp `debug.stamps` put on `line` (`[    1.234567] `, after the
/// shell's prompts, if any), in µs, and the rest of the line.
pub fn stamped(line: &str) -> Option<(u64, &str)> {
    let mut line = line.trim_end();
    while let Some(rest) = line.strip_prefix("> ") {
        line = rest;
    }
    let (stamp, rest) = line.strip_prefix('[')?.split_once("] ")?;
    let (s, us) = stamp.trim_start().split_once('.')?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(s) || us.len() != 6 || !digits(us) {
        return None;
    }
    Some((
        s.parse::<u64>().ok()? * 1_000_000 + us.parse::<u64>().ok()?,
        rest,
    ))
}

/// Domain `dom`'s exits by reason in a `stats` reply's JSON (its row
/// `{"dom":N,...}`; `device_irqs` is no exit).
pub fn stats_row(json: &str, dom: u16) -> Option<Exits> {
    let key = format!("{{\"dom\":{dom},");
    let row = &json[json.find(&key)? + key.len()..];
    let row = &row[..row.find('}')?];
    let mut exits = Exits::new();
    for field in row.split(',') {
        let (k, v) = field.split_once(':')?;
        let k = k.strip_prefix('"')?.strip_suffix('"')?;
        if k != "device_irqs" {
            exits.insert(k.to_string(), v.parse().ok()?);
        }
    }
    Some(exits)
}

/// A line that matters to the section.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    /// The shell took a `ctl pci-attach` or `ctl pci-detach`.
    Taken(Op),
    /// Its reply, and whether it succeeded.
    Replied(Op, bool),
    /// A `stats` reply: the domain's exits.
    Stats(Exits),
    /// The guest drove the function it was given.
    Driven,
    /// The function is back in the pool.
    Pool,
}

fn event(rest: &str, dom: u16) -> Option<Event> {
    let op = |cmd: &str| match cmd {
        "pci-attach" => Some(Op::Attach),
        "pci-detach" => Some(Op::Detach),
        _ => None,
    };
    if let Some(cmd) = rest.strip_prefix("shell: taken: ctl ") {
        return op(cmd.split(' ').next()?).map(Event::Taken);
    }
    if let Some(json) = rest.strip_prefix("ctl: ") {
        let cmd = json.split("\"cmd\":\"").nth(1)?.split('"').next()?;
        let ok = json.contains("\"ok\":true");
        return match op(cmd) {
            Some(o) => Some(Event::Replied(o, ok)),
            None if cmd == "stats" && ok => stats_row(json, dom).map(Event::Stats),
            None => None,
        };
    }
    if let Some(said) = rest.strip_prefix(&format!("[d{dom} ")) {
        let said = said.split_once("] ")?.1;
        let xpci = said.starts_with("xpci: hot-add ") && said.ends_with(": driven");
        let linux = said.starts_with("init: nvme0n1: read sector ");
        return (xpci || linux).then_some(Event::Driven);
    }
    let pool = rest.starts_with(&format!("pciback: dom{dom}: ")) && rest.ends_with(" detached");
    pool.then_some(Event::Pool)
}

/// How many times Linux printed the known sector whole and right (each
/// cycle's read): its lines `+0` to the last, each as the disk has it.
pub fn sector_reads(log: &str) -> usize {
    let want = crate::disk::known_hex_lines();
    let mut next = None;
    let mut whole = 0;
    for line in log.lines() {
        let Some((_, rest)) = line.split_once("] init: nvme0n1 sector ") else {
            continue;
        };
        let Some((off, hex)) = rest.split_once(": ") else {
            continue;
        };
        let k = off
            .split_once('+')
            .and_then(|(_, o)| o.parse::<usize>().ok())
            .map(|o| o / crate::disk::LINE);
        if k == Some(0) {
            next = Some(0);
        }
        next = match (k, next) {
            (Some(k), Some(n)) if k == n && want.get(k).is_some_and(|w| hex.trim_end() == w) => {
                Some(k + 1)
            }
            _ => None,
        };
        if next == Some(want.len()) {
            whole += 1;
            next = None;
        }
    }
    whole
}

/// What is known of the command being measured.
struct Open {
    op: Op,
    taken: u64,
    before: Option<Exits>,
    reply: Option<u64>,
    end: Option<u64>,
}

impl Open {
    fn sample(self, after: Option<&Exits>) -> Option<Sample> {
        let exits = match (&self.before, after) {
            (Some(b), Some(a)) => Some(
                a.iter()
                    .map(|(k, v)| (k.clone(), v.saturating_sub(*b.get(k).unwrap_or(&0))))
                    .collect(),
            ),
            _ => None,
        };
        Some(Sample {
            op: self.op,
            total_us: self.end?.checked_sub(self.taken)?,
            reply_us: self.reply.and_then(|r| r.checked_sub(self.taken)),
            exits,
        })
    }
}

/// `op`, if it is the command being measured, ended at `t`.
fn end(open: &mut Option<Open>, op: Op, t: u64) {
    if let Some(o) = open.as_mut().filter(|o| o.op == op && o.end.is_none()) {
        o.end = Some(t);
    }
}

/// The attaches and detaches of domain `dom` in a stamped log, in order.
/// A command the hypervisor refused is no sample.
pub fn samples(log: &str, dom: u16) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut last: Option<Exits> = None;
    let mut open: Option<Open> = None;
    for line in log.lines() {
        let Some((t, rest)) = stamped(line) else {
            continue;
        };
        match event(rest, dom) {
            Some(Event::Taken(op)) => {
                open = Some(Open {
                    op,
                    taken: t,
                    before: last.clone(),
                    reply: None,
                    end: None,
                })
            }
            Some(Event::Replied(op, ok)) => match open.as_mut() {
                Some(o) if o.op == op && o.reply.is_none() && ok => o.reply = Some(t),
                Some(o) if o.op == op && !ok => open = None,
                _ => {}
            },
            Some(Event::Driven) => end(&mut open, Op::Attach, t),
            Some(Event::Pool) => end(&mut open, Op::Detach, t),
            Some(Event::Stats(x)) => {
                if open.as_ref().is_some_and(|o| o.end.is_some()) {
                    out.extend(open.take().and_then(|o| o.sample(Some(&x))));
                }
                last = Some(x);
            }
            None => {}
        }
    }
    out.extend(open.and_then(|o| o.sample(None)));
    out
}

/// The lower median.
fn median(mut v: Vec<u64>) -> Option<u64> {
    v.sort_unstable();
    v.get(v.len().checked_sub(1)? / 2).copied()
}

fn ms(us: u64) -> String {
    format!("{:.1}", us as f64 / 1000.0)
}

pub const HEADER: &str = "| guest | operation | n | median (ms) | samples (ms) | hypervisor's reply after (median, ms) | exits (median) | grew most (median) |\n|---|---|---|---|---|---|---|---|";

/// The table's row for `samples` of `guest`'s operation `what`.
pub fn row(guest: &str, what: &str, samples: &[&Sample]) -> String {
    let list: Vec<String> = samples.iter().map(|s| ms(s.total_us)).collect();
    let show = |m: Option<u64>, f: fn(u64) -> String| m.map_or(String::from("?"), f);
    let total = median(samples.iter().map(|s| s.total_us).collect());
    let reply = median(samples.iter().filter_map(|s| s.reply_us).collect());
    let exits: Vec<&Exits> = samples.iter().filter_map(|s| s.exits.as_ref()).collect();
    let sums = median(exits.iter().map(|x| x.values().sum()).collect());
    let mut grown = Exits::new();
    for x in &exits {
        for (k, v) in x.iter() {
            *grown.entry(k.clone()).or_default() += v;
        }
    }
    let most = grown
        .iter()
        .max_by_key(|(_, v)| **v)
        .filter(|(_, v)| **v > 0)
        .map_or(String::from("-"), |(k, _)| {
            let m = median(
                exits
                    .iter()
                    .map(|x| x.get(k).copied().unwrap_or(0))
                    .collect(),
            );
            format!("{k} ({})", show(m, |n| n.to_string()))
        });
    format!(
        "| {guest} | {what} | {} | {} | {} | {} | {} | {most} |",
        samples.len(),
        show(total, ms),
        list.join(", "),
        show(reply, ms),
        show(sums, |n| n.to_string()),
    )
}

/// The rows of one run: its attaches (xpci's first apart, `first`) and
/// its detaches. Empty if the log has none.
pub fn rows(guest: &str, log: &str, first: Option<&str>) -> Vec<String> {
    let all = samples(log, DOM);
    let pick = |op| all.iter().filter(move |s| s.op == op);
    let attaches: Vec<&Sample> = pick(Op::Attach).collect();
    let detaches: Vec<&Sample> = pick(Op::Detach).collect();
    let mut out = Vec::new();
    let rest = match (first, attaches.split_first()) {
        (Some(what), Some((one, rest))) => {
            out.push(row(guest, what, &[one]));
            rest
        }
        _ => &attaches[..],
    };
    if !rest.is_empty() {
        out.push(row(guest, "attach (Reconfiguring) -> guest drove it", rest));
    }
    if !detaches.is_empty() {
        out.push(row(guest, "detach -> back in the pool", &detaches));
    }
    out
}

pub const NOTE: &str = "Times are the hypervisor's system time (its calibrated TSC, which its guests read through pvclock) on its own log lines, its shell's replies and the guests' console lines as it takes them (`debug.stamps`): from `shell: taken: ctl pci-attach` to the guest's line that it drove the function (xpci: edu's registers, an MSI, a DMA copy checked, INTx; Linux: nvme, loaded before, bound and the known sector read), and from `shell: taken: ctl pci-detach` to `pciback: domN: BDF detached` (the function blocked in the IOMMU, reset and back in the pool). Under QEMU TCG the TSC follows the host's clock: these are times of an emulated machine on a shared host, not of hardware. Linux's `/init` looks for the new function every 0.2 s. Exits are the domain's counts from a `ctl stats` before the command to one once the guest is idle again, so they include its idle exits while the bench types (about half a second per command).";

const XPCI_CMDLINE: &str = "loglvl=info shell=on debug.stamps pciback.hide=(00:03.0)";
const LINUX_CMDLINE: &str = "loglvl=info shell=on debug.stamps pciback.hide=(00:04.0)(00:05.0)";

/// What the shell waits for after typing `ctl stats`.
const STATS: &str = "\"cmd\":\"stats\"";

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// The lines to type, each once its text is on the serial line.
fn typed(lines: Vec<(String, &'static str)>) -> impl Iterator<Item = BootModule> {
    lines.into_iter().map(|(after, text)| BootModule {
        name: "",
        content: ModuleContent::Typed {
            after: leak(after),
            text,
        },
    })
}

/// The commands of `cycles` attach and detach cycles of `bdf` to domain
/// `name`, each between two `ctl stats`: the first once `ready` is there,
/// the one after an attach once `attached(k)` is (cycle k from 1), after
/// a detach once `detached(k)` is.
fn cycle_lines(
    name: &str,
    bdf: &str,
    cycles: usize,
    ready: &str,
    attached: impl Fn(usize) -> String,
    detached: impl Fn(usize) -> String,
) -> Vec<(String, &'static str)> {
    let attach = leak(format!("ctl pci-attach {name} {bdf}\r"));
    let detach = leak(format!("ctl pci-detach {name} {bdf}\r"));
    let mut lines = vec![(ready.to_string(), "ctl stats\r")];
    for k in 1..=cycles {
        lines.push((STATS.to_string(), attach));
        lines.push((attached(k), "ctl stats\r"));
        lines.push((STATS.to_string(), detach));
        lines.push((detached(k), "ctl stats\r"));
    }
    lines
}

/// The xpci run: a guest named `hp` without functions that serves one
/// hot-plug event more than the cycles make, so that it waits (and can be
/// counted) after the last detach; then it is destroyed.
pub fn xpci_scenario() -> &'static Scenario {
    let events = 2 * XPCI_CYCLES + 1;
    let cfg = format!(
        "name = \"hp\"\nkernel = \"xpci\"\nmemory = 64\nextra = \"wait-hotplug={events}\"\n"
    );
    let waiting =
        move |k: usize| format!("[d1 hp] xpci: hot-plug: {k} of {events} events served; waiting");
    let mut lines = cycle_lines(
        "hp",
        "00:03.0",
        XPCI_CYCLES,
        "[d1 hp] xpci: hot-plug: waiting for a PCI backend",
        |k| waiting(2 * k - 1),
        |k| waiting(2 * k),
    );
    lines.push((STATS.to_string(), "ctl destroy hp\r"));
    lines.push(("\"cmd\":\"destroy\"".to_string(), "ctl quit\r"));
    let mut modules = vec![
        BootModule {
            name: "xpci",
            content: ModuleContent::Guest("xpci"),
        },
        BootModule {
            name: "hp.cfg",
            content: ModuleContent::Text(leak(cfg)),
        },
    ];
    modules.extend(typed(lines));
    Box::leak(Box::new(Scenario {
        name: "bench-hotplug-xpci",
        description: "xpci gets edu by pci-attach and lets go of it on pci-detach, several times",
        emulator: scenarios::QEMU_INTEL,
        boot: crate::machine::Boot::Kernel,
        cmdline: XPCI_CMDLINE,
        timeout_secs: 300,
        expect: Box::leak(Box::new([
            leak(waiting(2 * XPCI_CYCLES)),
            "\"cmd\":\"destroy\",\"ok\":true",
            "hv: boot complete",
        ])),
        reject: &[
            "ERROR: ",
            ": FAIL",
            "LEAKED",
            "more than before the domains",
        ],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: Box::leak(modules.into_boxed_slice()),
    }))
}

/// The Linux run: a PV domain with e1000e (xen-pcifront binds to it at
/// boot) that gets NVMe [`LINUX_CYCLES`] times, then waits until the
/// shell's `shutdown`.
pub fn linux_scenario() -> &'static Scenario {
    let cfg = format!(
        "name = \"linux\"\ntype = \"pv\"\nkernel = \"{}\"\nramdisk = \"{}\"\nmemory = {}\n\
         pci = ['00:04.0']\ncmdline = \"{} hvtest=hotplug hvtest.cycles={LINUX_CYCLES}\"\n",
        guests::VMLINUX,
        guests::INITRD,
        guests::LINUX_MEMORY_MIB,
        guests::XEN_CMDLINE,
    );
    let mut lines = cycle_lines(
        "linux",
        "00:05.0",
        LINUX_CYCLES,
        "[d1 linux] init: hotplug: waiting for a new function",
        |_| "[d1 linux] init: hotplug: waiting for 0000:".to_string(),
        |_| " removed (waited ".to_string(),
    );
    // Its `/init` answers a shutdown once it waits for the toolstack.
    lines.push((
        "[d1 linux] init: wait: waiting for the toolstack".to_string(),
        "ctl shutdown linux\r",
    ));
    lines.push(("dom1 (linux): powered off".to_string(), "ctl quit\r"));
    let mut modules = guests::linux_modules(leak(cfg)).to_vec();
    modules.extend(typed(lines));
    Box::leak(Box::new(Scenario {
        name: "bench-hotplug-linux-pv",
        description: "PV Linux's pcifront gets NVMe by pci-attach and lets go of it on pci-detach, several times",
        emulator: scenarios::QEMU_INTEL,
        boot: crate::machine::Boot::Kernel,
        cmdline: LINUX_CMDLINE,
        timeout_secs: 600,
        expect: &[
            "[d1 linux] init: hotplug: done",
            "dom1 (linux): powered off",
            "hv: boot complete",
        ],
        reject: &[
            "Kernel panic",
            "BUG:",
            "Oops",
            "init: FAILED",
            "destroyed",
            "ERROR: ",
            "LEAKED",
            "more than before the domains",
        ],
        expect_in_order: &[],
        outcome: Outcome::Success,
        modules: Box::leak(modules.into_boxed_slice()),
    }))
}

/// Runs both guests one after the other; returns their runs, the table
/// and whether both passed with every sample.
pub fn measure(ws: &Workspace, dir: &Path, elf: &Path) -> (Vec<Run>, String, bool) {
    let mut runs = Vec::new();
    let mut table = format!("{HEADER}\n");
    let mut ok = true;
    let linux = match guests::prepare(ws, false) {
        Ok(_) => Some(linux_scenario()),
        Err(e) => {
            println!("bench: hot-plug: no Linux run: {e}");
            ok = false;
            None
        }
    };
    let _ = fs::create_dir_all(dir);
    let wanted: Vec<&'static Scenario> = [Some(xpci_scenario()), linux]
        .into_iter()
        .flatten()
        .collect();
    let jobs = runner::prepare_in(ws, |n| dir.join(n), Ok(elf), &wanted);
    for job in &jobs {
        let report = runner::run_one(job, false);
        println!("{}", report.render(ws).lines().next().unwrap_or_default());
        let log = read_log(&report);
        let (guest, cycles, first) = if job.scenario.name == "bench-hotplug-xpci" {
            (
                "xpci (PVH), edu",
                XPCI_CYCLES,
                Some("attach (a new backend: the frontend connects) -> guest drove it"),
            )
        } else {
            ("Linux PV (xen-pcifront), NVMe", LINUX_CYCLES, None)
        };
        let rows = rows(guest, &log, first);
        let all = samples(&log, DOM);
        let complete = report.passed()
            && all.len() == 2 * cycles
            && all.iter().all(|s| s.exits.is_some())
            && (first.is_some() || sector_reads(&log) == cycles);
        if !complete {
            ok = false;
            let _ = writeln!(
                table,
                "| {guest} | the run did not pass its checks or gave {} of {} samples |||||||",
                all.len(),
                2 * cycles
            );
        }
        for r in rows {
            let _ = writeln!(table, "{r}");
        }
        runs.push(Run {
            emulator: job.scenario.emulator,
            report,
            log,
        });
    }
    (runs, table, ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATS_0: &str = "[    5.000000] ctl: {\"v\":1,\"cmd\":\"stats\",\"ok\":true,\"msg\":\"\",\"rows\":[{\"free_frames\":79151,\"table_frames\":13,\"pirqs\":0,\"grants\":0,\"xenstore_nodes\":121,\"domains\":1},{\"dom\":1,\"cpuid\":10,\"msr\":3,\"io\":0,\"hypercall\":505,\"hlt\":0,\"npf\":0,\"window\":0,\"interrupt\":4,\"exception\":0,\"other\":1,\"device_irqs\":0}]}\r";

    /// A log as the xpci run prints it: an attach with its new backend,
    /// a refused attach, a detach, each between two `stats`.
    fn log() -> String {
        let stats = |t: &str, hypercall: u64, interrupt: u64| {
            STATS_0
                .replace("[    5.000000]", t)
                .replace("\"hypercall\":505", &format!("\"hypercall\":{hypercall}"))
                .replace("\"interrupt\":4", &format!("\"interrupt\":{interrupt}"))
        };
        [
            "[    4.900000] [d1 hp] xpci: hot-plug: waiting for a PCI backend\r".to_string(),
            "ctl stats\r".to_string(),
            STATS_0.to_string(),
            "> ctl pci-attach hp 00:03.0\r".to_string(),
            "[    6.000000] shell: taken: ctl pci-attach hp 00:03.0\r".to_string(),
            "[    6.001000] iommu: 0000:00:03.0 translates through dom1's tables\r".to_string(),
            "[    6.002500] ctl: {\"v\":1,\"cmd\":\"pci-attach\",\"ok\":true,\"msg\":\"0000:00:03.0 attached to dom1: a new PCI backend\",\"rows\":[]}\r".to_string(),
            "> [    6.100000] [d1 hp] xpci: hot-add 00:00.0 1234:11e8\r".to_string(),
            "[    6.250000] [d1 hp] xpci: hot-add 00:00.0: driven\r".to_string(),
            "[    6.260000] [d1 hp] xpci: hot-plug: 1 of 3 events served; waiting\r".to_string(),
            stats("[    7.000000]", 1505, 14),
            "[    7.500000] shell: taken: ctl pci-attach hp 00:03.0\r".to_string(),
            "[    7.500100] ctl: {\"v\":1,\"cmd\":\"pci-attach\",\"ok\":false,\"msg\":\"owned\",\"rows\":[]}\r".to_string(),
            "[    8.000000] shell: taken: ctl pci-detach hp 00:03.0\r".to_string(),
            "[    8.000200] ctl: {\"v\":1,\"cmd\":\"pci-detach\",\"ok\":true,\"msg\":\"asked\",\"rows\":[]}\r".to_string(),
            "> [    8.010000] [d1 hp] xpci: hot-remove 00:00.0\r".to_string(),
            "[    8.020000] pciback: 0000:00:03.0 released by dom1 (hp)\r".to_string(),
            "[    8.030000] pciback: dom1: 0000:00:03.0 detached\r".to_string(),
            "[    8.040000] [d1 hp] xpci: hot-plug: 2 of 3 events served; waiting\r".to_string(),
            stats("[    9.000000]", 1705, 20),
        ]
        .join("\n")
    }

    #[test]
    fn stamps_are_read_after_the_prompts() {
        assert_eq!(
            stamped("> > [   12.034500] [d1 hp] x\r"),
            Some((12_034_500, "[d1 hp] x"))
        );
        assert_eq!(stamped("[    0.000001] hv: y"), Some((1, "hv: y")));
        assert_eq!(stamped("[d1 hp] xpci: no stamp"), None);
        assert_eq!(stamped("[ 1.5] short"), None);
        assert_eq!(stamped("ctl stats"), None);
    }

    #[test]
    fn a_stats_row_gives_the_domains_exits_without_its_interrupts() {
        let x = stats_row(STATS_0, 1).expect("dom1's row");
        assert_eq!(x.get("hypercall"), Some(&505));
        assert_eq!(x.get("cpuid"), Some(&10));
        assert_eq!(x.len(), 10);
        assert!(!x.contains_key("device_irqs") && !x.contains_key("dom"));
        assert_eq!(stats_row(STATS_0, 2), None);
    }

    #[test]
    fn attaches_and_detaches_are_timed_from_the_taken_stamp() {
        let s = samples(&log(), 1);
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!(s[0].op, Op::Attach);
        assert_eq!(s[0].total_us, 250_000);
        assert_eq!(s[0].reply_us, Some(2_500));
        let x = s[0].exits.as_ref().expect("exits");
        assert_eq!((x["hypercall"], x["interrupt"], x["cpuid"]), (1000, 10, 0));
        // The refused attach is no sample; the detach's exits run from
        // the stats after the attach.
        assert_eq!(s[1].op, Op::Detach);
        assert_eq!(s[1].total_us, 30_000);
        assert_eq!(s[1].reply_us, Some(200));
        let x = s[1].exits.as_ref().expect("exits");
        assert_eq!((x["hypercall"], x["interrupt"]), (200, 6));
    }

    #[test]
    fn linux_lines_count_as_driven_and_other_domains_do_not() {
        assert_eq!(
            event("[d1 linux] init: nvme0n1: read sector 2048", 1),
            Some(Event::Driven)
        );
        assert_eq!(
            event("[d1 linux] init: hotplug: 0000:00:01.0 driver nvme", 1),
            None
        );
        assert_eq!(event("[d2 hp] xpci: hot-add 00:00.0: driven", 1), None);
        assert_eq!(event("pciback: dom2: 0000:00:03.0 detached", 1), None);
        assert_eq!(
            event("shell: taken: ctl pci-detach linux 00:05.0", 1),
            Some(Event::Taken(Op::Detach))
        );
        assert_eq!(event("shell: taken: ctl stats", 1), None);
    }

    #[test]
    fn only_whole_right_sectors_count_as_reads() {
        let hex = crate::disk::known_hex_lines();
        let print = |lines: &[String]| -> String {
            lines
                .iter()
                .enumerate()
                .map(|(k, h)| {
                    format!(
                        "[   1.000000] [d1 linux] init: nvme0n1 sector 2048 +{}: {h}\r\n",
                        64 * k
                    )
                })
                .collect()
        };
        let mut wrong = hex.clone();
        wrong[3] = wrong[3].replace('a', "b");
        let log = print(&hex) + &print(&wrong) + &print(&hex[..7]) + &print(&hex);
        assert_eq!(sector_reads(&log), 2);
    }

    #[test]
    fn a_log_without_stamps_gives_no_samples() {
        let plain: String = log()
            .lines()
            .map(|l| stamped(l).map_or(l, |(_, r)| r).to_string() + "\n")
            .collect();
        assert!(samples(&plain, 1).is_empty());
    }

    #[test]
    fn the_rows_show_medians_samples_and_the_reason_that_grew_most() {
        let rows = rows("xpci", &log(), Some("first attach"));
        assert_eq!(
            rows,
            [
                "| xpci | first attach | 1 | 250.0 | 250.0 | 2.5 | 1010 | hypercall (1000) |",
                "| xpci | detach -> back in the pool | 1 | 30.0 | 30.0 | 0.2 | 206 | hypercall (200) |",
            ]
        );
        let a = Sample {
            op: Op::Attach,
            total_us: 1000,
            reply_us: None,
            exits: None,
        };
        let b = Sample {
            total_us: 3000,
            ..a.clone()
        };
        let c = Sample {
            total_us: 2000,
            ..a.clone()
        };
        assert_eq!(
            row("g", "w", &[&a, &b, &c]),
            "| g | w | 3 | 2.0 | 1.0, 3.0, 2.0 | ? | ? | - |"
        );
    }

    #[test]
    fn the_runs_type_every_cycle_between_two_stats() {
        let x = xpci_scenario();
        let typed = x.typed();
        assert_eq!(typed.len(), 1 + 4 * XPCI_CYCLES + 2);
        assert_eq!(typed[1], (STATS, "ctl pci-attach hp 00:03.0\r"));
        assert_eq!(
            typed[2].0,
            format!(
                "[d1 hp] xpci: hot-plug: 1 of {} events served; waiting",
                2 * XPCI_CYCLES + 1
            )
        );
        assert_eq!(typed.last(), Some(&("\"cmd\":\"destroy\"", "ctl quit\r")));
        let l = linux_scenario();
        assert_eq!(l.typed().len(), 1 + 4 * LINUX_CYCLES + 2);
        let ModuleContent::Text(cfg) = l.modules[2].content else {
            panic!("the third module is the configuration");
        };
        assert!(
            cfg.contains(&format!("hvtest.cycles={LINUX_CYCLES}")),
            "{cfg}"
        );
        for s in [x, l] {
            assert!(s.cmdline.contains("debug.stamps") && s.cmdline.contains("shell=on"));
            assert!(scenarios::all().all(|o| o.name != s.name));
        }
    }
}
