//! `cargo xtask bench`: hypercall round trips per backend, measured side by
//! side in one run, plus the image size.
//!
//! The `bench` guest calls `xen_version` N times through the hypercall page
//! and N times directly, timing itself with its TSC. Each configuration runs
//! twice, with N and with 0 calls; the difference of the host wall times
//! divided by 2N is the wall time per round trip (boot and teardown cancel
//! out), and the hypervisor's own exit counts give the exits per call.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::machine::Iommu;
use crate::process::{self, Ended};
use crate::{metal, qemu, tools, Workspace};

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
        if line.contains("(bench): exits:") {
            // "... 13 cpuid, 3 msr, 0 io, 40026 hypercall, ..."
            let before = &line[..line.find(" hypercall,").unwrap_or(0)];
            n.hypercall_exits = before.rsplit(' ').next().and_then(|w| w.parse().ok());
        }
    }
    n
}

/// The memory the image occupies once loaded: the sum of its PT_LOAD sizes.
pub fn loaded_size(elf: &[u8]) -> Option<u64> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(elf.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(elf.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(elf.get(o..o + 8)?.try_into().ok()?));
    if elf.get(..5)? != b"\x7fELF\x02" {
        return None;
    }
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let (phentsize, phnum) = (usize::from(u16_at(0x36)?), usize::from(u16_at(0x38)?));
    let mut total = 0;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(ph)? == 1 {
            total += u64_at(ph + 0x28)?;
        }
    }
    Some(total)
}

/// Calls per measured run under Bochs (each way): Bochs is slower.
const BOCHS_CALLS: u64 = 100_000;

/// Where a run happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bed {
    Qemu,
    Bochs,
}

fn write_cfg(dir: &Path, calls: u64) -> Result<(), String> {
    fs::write(
        dir.join("bench.cfg"),
        format!(
            "name = \"bench\"\nkernel = \"bench\"\nmemory = 32\ncmdline = \"iterations={calls}\"\n"
        ),
    )
    .map_err(|e| format!("cannot write bench.cfg: {e}"))
}

/// One Bochs (VMX) run of the bench guest from a GRUB ISO.
fn run_bochs(
    dir: &Path,
    elf: &Path,
    modules: &[PathBuf],
    calls: u64,
) -> Result<(Duration, RunNumbers), String> {
    write_cfg(dir, calls)?;
    let names: Vec<String> = modules
        .iter()
        .filter_map(|m| m.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let cfg = crate::grub::config_with_modules(
        crate::machine::Protocol::Mb2,
        "on_idle=exit on_fatal=exit loglvl=info",
        &names,
    );
    let iso = dir.join(format!("bench-{calls}.iso"));
    crate::grub::make_iso_with_modules(elf, &cfg, modules, &dir.join("iso-root"), &iso)?;
    let serial = dir.join(format!("serial-bochs-{calls}.log"));
    let _ = fs::remove_file(&serial);
    let rc_text = crate::bochs::bochsrc(&crate::bochs::Config {
        cpu: crate::machine::DEFAULT_BOCHS_CPU,
        iso: &iso,
        serial: &serial,
        log: &dir.join(format!("bochs-{calls}.log")),
    });
    let (bochsrc, rc) = (dir.join("bochsrc"), dir.join("rc"));
    fs::write(&bochsrc, rc_text).map_err(|e| format!("cannot write bochsrc: {e}"))?;
    fs::write(&rc, crate::bochs::RC).map_err(|e| format!("cannot write rc: {e}"))?;
    let line = crate::bochs::command_line(&bochsrc, &rc, crate::bochs::can_unshare_network());
    let mut cmd = Command::new(&line[0]);
    cmd.args(&line[1..]);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    process::isolate(&mut cmd);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start bochs: {e}"))?;
    let ended = process::wait(&mut child, Some(Duration::from_secs(600)), true)
        .map_err(|e| format!("waiting for Bochs: {e}"))?;
    let wall = start.elapsed();
    let log = fs::read_to_string(&serial)
        .map_err(|e| format!("cannot read {}: {e}", serial.display()))?;
    if ended != Ended::Code(crate::bochs::SHUTDOWN_STATUS) || !log.contains("hv: exiting: success")
    {
        return Err(format!(
            "Bochs ended with {ended:?}; see {}",
            serial.display()
        ));
    }
    Ok((wall, parse_log(&log)))
}

fn run_once(
    dir: &Path,
    elf: &Path,
    modules: &[PathBuf],
    calls: u64,
) -> Result<(Duration, RunNumbers), String> {
    write_cfg(dir, calls)?;
    let serial = dir.join(format!("serial-{calls}.log"));
    let config = qemu::Config {
        iommu: Iommu::Intel,
        media: qemu::Media::Kernel {
            elf,
            cmdline: "on_idle=exit on_fatal=exit loglvl=info",
            modules,
        },
        serial: qemu::Serial::File(&serial),
        gdb: false,
    };
    let mut cmd = Command::new(qemu::PROGRAM);
    cmd.args(qemu::args(&config));
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    process::isolate(&mut cmd);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", qemu::PROGRAM))?;
    let ended = process::wait(&mut child, Some(Duration::from_secs(300)), true)
        .map_err(|e| format!("waiting for QEMU: {e}"))?;
    let wall = start.elapsed();
    if ended != Ended::Code(1) {
        return Err(format!(
            "QEMU ended with {ended:?}; see {}",
            serial.display()
        ));
    }
    let log = fs::read_to_string(&serial)
        .map_err(|e| format!("cannot read {}: {e}", serial.display()))?;
    Ok((wall, parse_log(&log)))
}

/// Runs the benchmarks and prints the table.
pub fn run(ws: &Workspace) -> Result<bool, String> {
    tools::ensure(&[tools::QEMU])?;
    let elf = metal::build(ws)?;
    let dir = ws.xtask_dir().join("bench");
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let guest = dir.join("bench");
    fs::copy(metal::guest_path(ws, "bench"), &guest)
        .map_err(|e| format!("cannot copy the bench guest: {e}"))?;
    let modules = [guest, dir.join("bench.cfg")];

    println!("| backend | emulator | calls (page + direct) | hypercall exits per call | guest TSC cycles per call (page / direct) | host wall time per call | round trips per second |");
    println!("|---|---|---|---|---|---|---|");
    let mut failed = 0;
    let mut beds = vec![(Bed::Qemu, CALLS)];
    if tools::ensure(&[tools::BOCHS, tools::GRUB]).is_ok() {
        beds.push((Bed::Bochs, BOCHS_CALLS));
    }
    for (bed, n) in beds {
        let run = |calls| match bed {
            Bed::Qemu => run_once(&dir, &elf, &modules, calls),
            Bed::Bochs => run_bochs(&dir, &elf, &modules, calls),
        };
        let (base_wall, base) = run(0)?;
        let (wall, full) = run(n)?;
        let calls = 2 * n;
        let per_call = wall.saturating_sub(base_wall).as_secs_f64() / calls as f64;
        let exits = match (full.hypercall_exits, base.hypercall_exits) {
            (Some(a), Some(b)) => format!("{:.2}", (a.saturating_sub(b)) as f64 / calls as f64),
            _ => String::from("?"),
        };
        let cycles = |c: Option<u64>| c.map_or(String::from("?"), |c| c.to_string());
        let (backend, emulator) = match bed {
            Bed::Qemu => ("SVM + NPT", "QEMU TCG `-cpu max`"),
            Bed::Bochs => ("VMX + EPT", "Bochs `corei7_skylake_x`"),
        };
        println!(
            "| {backend} | {emulator} | {calls} | {exits} | {} / {} | {:.1} us | {:.0} |",
            cycles(full.page_cycles),
            cycles(full.direct_cycles),
            per_call * 1e6,
            if per_call > 0.0 { 1.0 / per_call } else { 0.0 },
        );
        failed += full.failed;
    }
    let image = fs::read(&elf).ok().and_then(|b| loaded_size(&b));
    println!();
    println!(
        "hypervisor image: {} KiB loaded ({})",
        image.map_or(String::from("?"), |b| (b / 1024).to_string()),
        ws.show(&elf)
    );
    println!("logs in {}", ws.show(&dir));
    if failed > 0 {
        println!("bench: {failed} calls returned an error");
        return Ok(false);
    }
    Ok(true)
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
    fn loaded_size_sums_the_load_segments() {
        let mut elf = vec![0u8; 0x40 + 2 * 0x38];
        elf[..5].copy_from_slice(b"\x7fELF\x02");
        elf[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&0x38u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&2u16.to_le_bytes());
        for (i, (ty, memsz)) in [(1u32, 0x3000u64), (4, 0x100)].iter().enumerate() {
            let ph = 0x40 + i * 0x38;
            elf[ph..ph + 4].copy_from_slice(&ty.to_le_bytes());
            elf[ph + 0x28..ph + 0x30].copy_from_slice(&memsz.to_le_bytes());
        }
        assert_eq!(loaded_size(&elf), Some(0x3000));
        assert_eq!(loaded_size(b"nope"), None);
    }
}
