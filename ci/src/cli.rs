//! The command line of `cargo xtask`, parsed by hand.

use std::path::PathBuf;
use std::time::Duration;

use crate::machine::{Boot, Emulator, Iommu, Protocol, DEFAULT_BOCHS_CPU};

/// `cargo xtask help`: one line per command, then the options.
pub const HELP: &str = "\
usage: cargo xtask COMMAND [OPTIONS]

commands:
  build    build the bare-metal image target/metal/x86_64-unknown-linux-gnu/release/hv
  iso      build the image and make a GRUB rescue ISO (default target/xtask/hv.iso)
  run      boot the demo machine under QEMU (or Bochs) with the serial console on stdout
  test     every test: host unit tests, then the emulator scenarios; ends with \"N passed, N failed\"
           (building the image checks its size: image-size, .text+.rodata+.data at most 512 KiB)
  bench    hypercall round trips per backend (exits per call, guest TSC, host wall time) and the image size
           (--pci-only: only the PCI passthrough section: exits per config access, interrupt, MMIO
           read and DMA, and the same guest without the hypervisor;
           --linux-pv-only: only the Linux PV section: config reads through xen-pcifront against
           Xen's published figure, syscalls, NVMe throughput against native, attach time;
           --linux-pvh-only: only the Linux PVH boot time, under the hypervisor and direct;
           --attack-only: only the victim's work rate under each attack class against its rate
           alone, and the attack cases by class;
           --hotplug-only: only hot-plug: time and exits from pci-attach to the guest driving the
           function and from pci-detach to the function back in the pool, xpci and Linux PV)
  guests   fetch Debian's kernel, busybox and GRUB Xen images with apt and prepare PVH guests in
           target/xtask/guests/ (--refresh: ask apt for newer versions;
           --boot-direct: boot the kernel under QEMU without a hypervisor, timed)
  fuzz TARGET... | --all [--time N] [--runs N]
           run fuzz targets of fuzz/ one after the other with cargo-fuzz on nightly, each for N seconds
           (default 60 without --runs) or N executions, whichever ends first, and record each run in
           docs/fuzz-runs.md (docs/fuzzing.md; seeds from fuzz/corpus/TARGET/, new inputs in
           target/xtask/fuzz/corpus/)
  aml      compile the AML reader's ASL fixtures (platform/src/acpi/aml/tests/fixtures/*.asl) with iasl
  acpi-fixtures
           capture the QEMU machines' ACPI tables into platform/tests/fixtures/ (for the parser tests)
  ensure   check for QEMU, GRUB, xorriso, mtools and Bochs (installs them when run as root)
  help     print this text

iso options:
  --protocol mb1|mb2     the default GRUB entry's protocol (default mb2; both entries are present)
  --append \"CMDLINE\"     the hypervisor's command line (default empty)
  -o PATH                where to write the ISO

run options:
  --emulator qemu|bochs  (default qemu)
  --iommu intel|amd|none QEMU's IOMMU (default intel)
  --boot kernel|grub-mb2|grub-mb1|uefi
                         QEMU -kernel (multiboot1), a GRUB ISO (default grub-mb2),
                         or that ISO booted by UEFI firmware (OVMF)
  --append \"CMDLINE\"     the hypervisor's command line
                         (default \"loglvl=info on_idle=exit shell=on pciback.hide=(00:03.0)(00:04.0)(00:05.0)\":
                         the shell takes commands, 'quit' ends the run once no domain is left;
                         without on_idle=exit the hypervisor halts and QEMU runs until Ctrl-C)
  --timeout SECS         stop the emulator after SECS seconds (default: run until it exits or Ctrl-C)
  --gdb                  QEMU waits for a debugger on localhost:1234 (-s -S)
  --guest, --no-guest    boot the demo's domains, xpci (with the hidden devices) and hello
                         (default: yes; on Bochs the e1000 with pciback.insecure, as Bochs has no IOMMU)
  --cpu MODEL            the Bochs CPU model (default corei7_skylake_x; ryzen for SVM)

test options:
  --list                 list the scenarios and stop
  --host-only            run only the host tests (cargo test)
  --no-host              run only the emulator scenarios
  -j N                   scenarios run at once (default 2)
  NAME...                run only these scenarios
";

/// The command line of `cargo xtask run` when `--append` is not given: the
/// edu device, the first e1000e and the NVMe controller are hidden for the
/// demo's xpci guest, the shell takes commands on the serial line (docs/shell.md),
/// and the run ends with the shell's `quit` once no domain is left.
pub const DEMO_CMDLINE: &str =
    "loglvl=info on_idle=exit shell=on pciback.hide=(00:03.0)(00:04.0)(00:05.0)";

/// The same on Bochs, whose i440FX machine has an e1000 at 00:02.0 and no
/// IOMMU: the e1000 is hidden for the xpci guest with the insecure opt-in
/// that passthrough without an IOMMU needs (the demo says so). No shell:
/// Bochs' serial line goes to a file, so nothing could be typed.
pub const DEMO_CMDLINE_BOCHS: &str =
    "loglvl=info on_idle=exit pciback.hide=(00:02.0) pciback.insecure";

/// A parsed `cargo xtask` invocation.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Help,
    Ensure,
    Build,
    Iso(IsoOptions),
    Run(RunOptions),
    Test(TestOptions),
    AcpiFixtures,
    /// `cargo xtask aml`.
    Aml,
    Bench(BenchOptions),
    Guests(GuestsOptions),
    Fuzz(FuzzOptions),
}

/// Options of `cargo xtask fuzz`.
#[derive(Debug, PartialEq, Eq)]
pub struct FuzzOptions {
    /// The targets in the order to run them; empty with `--all`.
    pub targets: Vec<String>,
    /// Seconds each target runs at most (60 if neither this nor `runs`).
    pub time: Option<u64>,
    /// Executions each target runs at most.
    pub runs: Option<u64>,
}

/// Options of `cargo xtask bench`.
#[derive(Debug, PartialEq, Eq)]
pub struct BenchOptions {
    /// Only the PCI passthrough section.
    pub pci_only: bool,
    /// Only the Linux PV section.
    pub linux_pv_only: bool,
    /// Only the Linux PVH boot time.
    pub linux_pvh_only: bool,
    /// Only the victim's work rate under attack.
    pub attack_only: bool,
    /// Only the hot-plug latencies.
    pub hotplug_only: bool,
}

/// Options of `cargo xtask guests`.
#[derive(Debug, PartialEq, Eq)]
pub struct GuestsOptions {
    /// Boot the kernel directly under QEMU too, as the timing reference.
    pub boot_direct: bool,
    /// Ask apt for newer packages even when images were made before.
    pub refresh: bool,
}

/// Options of `cargo xtask iso`.
#[derive(Debug, PartialEq, Eq)]
pub struct IsoOptions {
    pub protocol: Protocol,
    pub append: String,
    pub output: Option<PathBuf>,
}

/// Options of `cargo xtask run`.
#[derive(Debug, PartialEq, Eq)]
pub struct RunOptions {
    pub emulator: Emulator,
    pub boot: Boot,
    pub append: String,
    pub timeout: Option<Duration>,
    pub gdb: bool,
    /// Boot the `hello` guest as a domain too.
    pub guest: bool,
}

/// Options of `cargo xtask test`.
#[derive(Debug, PartialEq, Eq)]
pub struct TestOptions {
    pub list: bool,
    pub host: bool,
    pub scenarios: bool,
    pub jobs: usize,
    pub names: Vec<String>,
}

/// The words after the command, with `--flag=value` split in two.
struct Words {
    words: std::vec::IntoIter<String>,
}

impl Words {
    fn new(args: Vec<String>) -> Words {
        let mut split = Vec::with_capacity(args.len());
        for arg in args {
            match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => {
                    split.push(flag.to_string());
                    split.push(value.to_string());
                }
                _ => split.push(arg),
            }
        }
        Words {
            words: split.into_iter(),
        }
    }

    fn next(&mut self) -> Option<String> {
        self.words.next()
    }

    /// The value that must follow `flag`.
    fn value(&mut self, flag: &str) -> Result<String, String> {
        self.words
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))
    }
}

/// Parses the arguments after `cargo xtask`.
pub fn parse(args: Vec<String>) -> Result<Command, String> {
    let mut words = Words::new(args);
    let Some(command) = words.next() else {
        return Ok(Command::Help);
    };
    match command.as_str() {
        "help" | "-h" | "--help" => Ok(Command::Help),
        "ensure" => no_options(words, Command::Ensure),
        "build" => no_options(words, Command::Build),
        "iso" => parse_iso(words).map(Command::Iso),
        "run" => parse_run(words).map(Command::Run),
        "test" => parse_test(words).map(Command::Test),
        "acpi-fixtures" => no_options(words, Command::AcpiFixtures),
        "aml" => no_options(words, Command::Aml),
        "bench" => parse_bench(words).map(Command::Bench),
        "guests" => parse_guests(words).map(Command::Guests),
        "fuzz" => parse_fuzz(words).map(Command::Fuzz),
        other => Err(format!("unknown command '{other}'")),
    }
}

fn no_options(mut words: Words, command: Command) -> Result<Command, String> {
    match words.next() {
        None => Ok(command),
        Some(w) => Err(format!("unexpected argument '{w}'")),
    }
}

fn unknown(word: &str) -> String {
    format!("unknown option '{word}'")
}

fn parse_protocol(s: &str) -> Result<Protocol, String> {
    match s {
        "mb1" | "multiboot" | "multiboot1" => Ok(Protocol::Mb1),
        "mb2" | "multiboot2" => Ok(Protocol::Mb2),
        _ => Err(format!("--protocol {s}: expected mb1 or mb2")),
    }
}

fn parse_iso(mut words: Words) -> Result<IsoOptions, String> {
    let mut opts = IsoOptions {
        protocol: Protocol::Mb2,
        append: String::new(),
        output: None,
    };
    while let Some(word) = words.next() {
        match word.as_str() {
            "--protocol" => opts.protocol = parse_protocol(&words.value(&word)?)?,
            "--append" => opts.append = words.value(&word)?,
            "-o" | "--output" => opts.output = Some(PathBuf::from(words.value(&word)?)),
            _ => return Err(unknown(&word)),
        }
    }
    Ok(opts)
}

fn parse_run(mut words: Words) -> Result<RunOptions, String> {
    let mut bochs = false;
    let mut iommu = None;
    let mut cpu = None;
    let mut boot = None;
    let mut opts = RunOptions {
        emulator: Emulator::Qemu {
            iommu: Iommu::Intel,
            devices: &[],
        },
        boot: Boot::Grub(Protocol::Mb2),
        append: DEMO_CMDLINE.to_string(),
        timeout: None,
        gdb: false,
        guest: true,
    };
    let mut guest = None;
    let mut append = None;
    while let Some(word) = words.next() {
        match word.as_str() {
            "--emulator" => {
                bochs = match words.value(&word)?.as_str() {
                    "qemu" => false,
                    "bochs" => true,
                    other => return Err(format!("--emulator {other}: expected qemu or bochs")),
                }
            }
            "--iommu" => {
                iommu = Some(match words.value(&word)?.as_str() {
                    "intel" => Iommu::Intel,
                    "amd" => Iommu::Amd,
                    "none" => Iommu::None,
                    other => return Err(format!("--iommu {other}: expected intel, amd or none")),
                })
            }
            "--boot" => {
                boot = Some(match words.value(&word)?.as_str() {
                    "kernel" => Boot::Kernel,
                    "grub-mb2" | "grub" => Boot::Grub(Protocol::Mb2),
                    "grub-mb1" => Boot::Grub(Protocol::Mb1),
                    "uefi" => Boot::GrubUefi,
                    other => {
                        return Err(format!(
                            "--boot {other}: expected kernel, grub-mb2, grub-mb1 or uefi"
                        ))
                    }
                })
            }
            "--append" => append = Some(words.value(&word)?),
            "--timeout" => {
                let value = words.value(&word)?;
                let secs: f64 = value
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| format!("--timeout {value}: expected seconds, e.g. 30"))?;
                opts.timeout = Some(Duration::from_secs_f64(secs));
            }
            "--gdb" => opts.gdb = true,
            "--guest" => guest = Some(true),
            "--no-guest" => guest = Some(false),
            "--cpu" => cpu = Some(words.value(&word)?),
            _ => return Err(unknown(&word)),
        }
    }
    if let Some(boot) = boot {
        opts.boot = boot;
    }
    if bochs {
        if iommu.is_some() {
            return Err("--iommu applies to QEMU only (Bochs has no IOMMU)".into());
        }
        if opts.gdb {
            return Err("--gdb needs QEMU".into());
        }
        if matches!(opts.boot, Boot::Kernel | Boot::GrubUefi) {
            return Err(
                "Bochs boots only from the GRUB ISO with its BIOS: use --boot grub-mb2 or grub-mb1"
                    .into(),
            );
        }
        let cpu: &'static str = match cpu {
            // The process lives for one command: leaking one string is fine.
            Some(model) => Box::leak(model.into_boxed_str()),
            None => DEFAULT_BOCHS_CPU,
        };
        opts.emulator = Emulator::Bochs { cpu };
        opts.guest = guest.unwrap_or(true);
        opts.append = append.unwrap_or_else(|| DEMO_CMDLINE_BOCHS.to_string());
    } else {
        opts.append = append.unwrap_or(opts.append);
        opts.guest = guest.unwrap_or(true);
        if cpu.is_some() {
            return Err("--cpu applies to Bochs only (QEMU always uses -cpu max)".into());
        }
        opts.emulator = Emulator::Qemu {
            iommu: iommu.unwrap_or(Iommu::Intel),
            devices: &[],
        };
    }
    Ok(opts)
}

fn parse_fuzz(mut words: Words) -> Result<FuzzOptions, String> {
    let (mut targets, mut all, mut time, mut runs) = (Vec::new(), false, None, None);
    while let Some(word) = words.next() {
        let mut count = |what: &str| -> Result<Option<u64>, String> {
            let value = words.value(&word)?;
            match value.parse() {
                Ok(n) if n > 0 => Ok(Some(n)),
                _ => Err(format!("{word} {value}: expected {what}")),
            }
        };
        match word.as_str() {
            "--time" => time = count("seconds, e.g. 300")?,
            "--runs" => runs = count("a number of executions, e.g. 10000000")?,
            "--all" => all = true,
            w if w.starts_with('-') => return Err(unknown(w)),
            _ => targets.push(word),
        }
    }
    if all != targets.is_empty() {
        return Err(
            "fuzz needs targets or --all: cargo xtask fuzz TARGET... [--time N] [--runs N]".into(),
        );
    }
    Ok(FuzzOptions {
        targets,
        time: time.or(if runs.is_none() { Some(60) } else { None }),
        runs,
    })
}

fn parse_bench(mut words: Words) -> Result<BenchOptions, String> {
    let mut opts = BenchOptions {
        pci_only: false,
        linux_pv_only: false,
        linux_pvh_only: false,
        attack_only: false,
        hotplug_only: false,
    };
    while let Some(word) = words.next() {
        match word.as_str() {
            "--pci-only" => opts.pci_only = true,
            "--linux-pv-only" => opts.linux_pv_only = true,
            "--linux-pvh-only" => opts.linux_pvh_only = true,
            "--attack-only" => opts.attack_only = true,
            "--hotplug-only" => opts.hotplug_only = true,
            _ => return Err(unknown(&word)),
        }
    }
    let only = [
        opts.pci_only,
        opts.linux_pv_only,
        opts.linux_pvh_only,
        opts.attack_only,
        opts.hotplug_only,
    ];
    if only.iter().filter(|&&o| o).count() > 1 {
        return Err("the --*-only options exclude each other".into());
    }
    Ok(opts)
}

fn parse_guests(mut words: Words) -> Result<GuestsOptions, String> {
    let mut opts = GuestsOptions {
        boot_direct: false,
        refresh: false,
    };
    while let Some(word) = words.next() {
        match word.as_str() {
            "--boot-direct" => opts.boot_direct = true,
            "--refresh" => opts.refresh = true,
            _ => return Err(unknown(&word)),
        }
    }
    Ok(opts)
}

fn parse_test(mut words: Words) -> Result<TestOptions, String> {
    let mut opts = TestOptions {
        list: false,
        host: true,
        scenarios: true,
        jobs: 2,
        names: Vec::new(),
    };
    let (mut host_only, mut no_host) = (false, false);
    while let Some(word) = words.next() {
        match word.as_str() {
            "--list" => opts.list = true,
            "--host-only" => host_only = true,
            "--no-host" => no_host = true,
            "-j" | "--jobs" => {
                let value = words.value(&word)?;
                opts.jobs =
                    value.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                        format!("{word} {value}: expected a number of at least 1")
                    })?;
            }
            w if w.starts_with('-') => return Err(unknown(w)),
            _ => opts.names.push(word),
        }
    }
    if host_only && no_host {
        return Err("--host-only and --no-host exclude each other".into());
    }
    if host_only && !opts.names.is_empty() {
        return Err("--host-only runs no scenarios: drop it or the names".into());
    }
    opts.host = !no_host;
    opts.scenarios = !host_only;
    Ok(opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(s: &str) -> Result<Command, String> {
        parse(s.split_whitespace().map(String::from).collect())
    }

    #[test]
    fn no_command_prints_help() {
        assert_eq!(parse(vec![]), Ok(Command::Help));
        assert_eq!(parse_words("help"), Ok(Command::Help));
    }

    #[test]
    fn every_command_in_the_help_text_parses() {
        for command in ["build", "iso", "run", "test", "guests", "ensure", "help"] {
            assert!(HELP.contains(&format!("\n  {command} ")), "{command}");
            assert!(parse_words(command).is_ok(), "{command}");
        }
    }

    #[test]
    fn run_defaults_to_the_demo_on_qemu_with_intel_iommu_and_grub_mb2() {
        let Ok(Command::Run(o)) = parse_words("run") else {
            panic!("run does not parse")
        };
        assert_eq!(
            o.emulator,
            Emulator::Qemu {
                iommu: Iommu::Intel,
                devices: &[]
            }
        );
        assert_eq!(o.boot, Boot::Grub(Protocol::Mb2));
        assert_eq!(o.append, DEMO_CMDLINE);
        assert_eq!(o.timeout, None);
        assert!(!o.gdb);
    }

    #[test]
    fn run_options_with_values_in_both_spellings() {
        let args = vec![
            "run".to_string(),
            "--iommu=amd".to_string(),
            "--boot".to_string(),
            "kernel".to_string(),
            "--append".to_string(),
            "a=b c=(00:03.0)".to_string(),
            "--timeout=2.5".to_string(),
            "--gdb".to_string(),
        ];
        let Ok(Command::Run(o)) = parse(args) else {
            panic!("run does not parse")
        };
        assert_eq!(
            o.emulator,
            Emulator::Qemu {
                iommu: Iommu::Amd,
                devices: &[]
            }
        );
        assert_eq!(o.boot, Boot::Kernel);
        assert_eq!(o.append, "a=b c=(00:03.0)");
        assert_eq!(o.timeout, Some(Duration::from_millis(2500)));
        assert!(o.gdb);
    }

    #[test]
    fn run_on_bochs_rejects_qemu_only_options() {
        let Ok(Command::Run(o)) = parse_words("run --emulator bochs --boot grub-mb1") else {
            panic!("run does not parse")
        };
        assert_eq!(
            o.emulator,
            Emulator::Bochs {
                cpu: DEFAULT_BOCHS_CPU
            }
        );
        assert_eq!(o.boot, Boot::Grub(Protocol::Mb1));
        // Bochs' own devices are hidden and its guests run.
        assert_eq!(o.append, DEMO_CMDLINE_BOCHS);
        assert!(o.guest);
        let Ok(Command::Run(o)) = parse_words("run --emulator bochs --append x=1 --no-guest")
        else {
            panic!("run does not parse")
        };
        assert_eq!(o.append, "x=1");
        assert!(!o.guest);
        assert!(parse_words("run --emulator bochs --iommu amd").is_err());
        assert!(parse_words("run --emulator bochs --gdb").is_err());
        assert!(parse_words("run --emulator bochs --boot kernel").is_err());
        assert!(parse_words("run --emulator bochs --boot uefi").is_err());
        assert!(parse_words("run --cpu ryzen").is_err());
        let Ok(Command::Run(o)) = parse_words("run --boot uefi") else {
            panic!("run --boot uefi does not parse")
        };
        assert_eq!(o.boot, Boot::GrubUefi);
    }

    #[test]
    fn bad_values_and_unknown_options_are_errors() {
        assert!(parse_words("run --iommu arm").is_err());
        assert!(parse_words("run --timeout soon").is_err());
        assert!(parse_words("run --timeout 0").is_err());
        assert!(parse_words("run --append").is_err());
        assert!(parse_words("iso --protocol mb3").is_err());
        assert!(parse_words("build --release").is_err());
        assert!(parse_words("test --fast").is_err());
        assert!(parse_words("frobnicate").is_err());
    }

    #[test]
    fn guests_boots_directly_only_when_asked() {
        assert_eq!(
            parse_words("guests"),
            Ok(Command::Guests(GuestsOptions {
                boot_direct: false,
                refresh: false
            }))
        );
        assert_eq!(
            parse_words("guests --boot-direct --refresh"),
            Ok(Command::Guests(GuestsOptions {
                boot_direct: true,
                refresh: true
            }))
        );
        assert!(parse_words("guests --boot").is_err());
    }

    #[test]
    fn bench_runs_every_section_unless_one_is_asked_for() {
        let bench = |pci_only, linux_pv_only, linux_pvh_only| {
            Ok(Command::Bench(BenchOptions {
                pci_only,
                linux_pv_only,
                linux_pvh_only,
                attack_only: false,
                hotplug_only: false,
            }))
        };
        assert_eq!(parse_words("bench"), bench(false, false, false));
        assert_eq!(parse_words("bench --pci-only"), bench(true, false, false));
        assert_eq!(
            parse_words("bench --linux-pv-only"),
            bench(false, true, false)
        );
        assert_eq!(
            parse_words("bench --linux-pvh-only"),
            bench(false, false, true)
        );
        assert!(parse_words("bench --pci-only --linux-pv-only").is_err());
        assert!(parse_words("bench --linux-pvh-only --linux-pv-only").is_err());
        assert!(parse_words("bench --pci").is_err());
        assert_eq!(
            parse_words("bench --attack-only"),
            Ok(Command::Bench(BenchOptions {
                pci_only: false,
                linux_pv_only: false,
                linux_pvh_only: false,
                attack_only: true,
                hotplug_only: false,
            }))
        );
        assert!(parse_words("bench --attack-only --pci-only").is_err());
        assert_eq!(
            parse_words("bench --hotplug-only"),
            Ok(Command::Bench(BenchOptions {
                pci_only: false,
                linux_pv_only: false,
                linux_pvh_only: false,
                attack_only: false,
                hotplug_only: true,
            }))
        );
        assert!(parse_words("bench --hotplug-only --attack-only").is_err());
    }

    #[test]
    fn iso_options() {
        let Ok(Command::Iso(o)) = parse_words("iso --protocol mb1 -o /tmp/x.iso") else {
            panic!("iso does not parse")
        };
        assert_eq!(o.protocol, Protocol::Mb1);
        assert_eq!(o.output, Some(PathBuf::from("/tmp/x.iso")));
        assert_eq!(o.append, "");
    }

    #[test]
    fn fuzz_takes_targets_or_all_a_time_and_runs() {
        let fuzz = |a: &[&str]| parse(a.iter().map(|s| s.to_string()).collect());
        let opts = |t: &[&str], time, runs| {
            Ok(Command::Fuzz(FuzzOptions {
                targets: t.iter().map(|s| s.to_string()).collect(),
                time,
                runs,
            }))
        };
        assert_eq!(
            fuzz(&["fuzz", "xl_cfg", "--time", "300"]),
            opts(&["xl_cfg"], Some(300), None)
        );
        assert_eq!(
            fuzz(&["fuzz", "--time=5", "multiboot"]),
            opts(&["multiboot"], Some(5), None)
        );
        assert_eq!(fuzz(&["fuzz", "a"]), opts(&["a"], Some(60), None));
        assert_eq!(
            fuzz(&["fuzz", "a", "b", "--runs", "1000"]),
            opts(&["a", "b"], None, Some(1000))
        );
        assert_eq!(
            fuzz(&["fuzz", "--all", "--runs=10000000", "--time", "900"]),
            opts(&[], Some(900), Some(10_000_000))
        );
        assert!(fuzz(&["fuzz"]).is_err());
        assert!(fuzz(&["fuzz", "--all", "a"]).is_err());
        assert!(fuzz(&["fuzz", "a", "--time", "0"]).is_err());
        assert!(fuzz(&["fuzz", "a", "--runs", "x"]).is_err());
    }

    #[test]
    fn test_selects_host_tests_scenarios_and_names() {
        let Ok(Command::Test(o)) = parse_words("test") else {
            panic!("test does not parse")
        };
        assert!(o.host && o.scenarios && !o.list && o.names.is_empty());
        assert_eq!(o.jobs, 2);
        let Ok(Command::Test(o)) = parse_words("test --no-host -j 1 a b") else {
            panic!("test does not parse")
        };
        assert!(!o.host && o.scenarios);
        assert_eq!(o.jobs, 1);
        assert_eq!(o.names, ["a", "b"]);
        let Ok(Command::Test(o)) = parse_words("test --host-only") else {
            panic!("test does not parse")
        };
        assert!(o.host && !o.scenarios);
        assert!(parse_words("test --host-only --no-host").is_err());
        assert!(parse_words("test --host-only a").is_err());
        assert!(parse_words("test -j 0").is_err());
    }
}
