//! `cargo xtask run`: boot the demo machine with the serial console on
//! stdout, until the hypervisor leaves the emulator, Ctrl-C, or `--timeout`.
//!
//! Its files are in target/xtask/run/: the ISO, and for Bochs the bochsrc,
//! serial.log, bochs.log and Bochs' own output.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use crate::cli::RunOptions;
use crate::machine::{Boot, Emulator};
use crate::process::{self, Ended};
use crate::scenarios::Outcome;
use crate::{bochs, grub, metal, qemu, tools, Workspace};

/// Runs the demo; `Ok(true)` unless the hypervisor reported a failure or
/// the emulator ended unexpectedly.
pub fn run(ws: &Workspace, opts: &RunOptions) -> Result<bool, String> {
    let emulator_tools = match opts.emulator {
        Emulator::Qemu { .. } => tools::QEMU,
        Emulator::Bochs { .. } => tools::BOCHS,
    };
    match opts.boot {
        Boot::Kernel => tools::ensure(&[emulator_tools])?,
        Boot::Grub(_) => tools::ensure(&[emulator_tools, tools::GRUB])?,
        Boot::GrubUefi => tools::ensure(&[emulator_tools, tools::GRUB, tools::UEFI])?,
    }
    let elf = metal::build(ws)?;
    let dir = ws.xtask_dir().join("run");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let bochs = matches!(opts.emulator, Emulator::Bochs { .. });
    let modules = if opts.guest {
        guest_modules(ws, &dir, bochs)?
    } else {
        Vec::new()
    };
    let names: Vec<String> = modules
        .iter()
        .filter_map(|m| m.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let iso = match opts.boot.grub_protocol() {
        None => None,
        Some(protocol) => {
            let iso = dir.join("hv.iso");
            let cfg = grub::config_with_modules(protocol, &opts.append, &names);
            grub::make_iso_with_modules(&elf, &cfg, &modules, &dir.join("iso-root"), &iso)?;
            Some(iso)
        }
    };
    if !names.is_empty() {
        println!("run: domain modules: {}", names.join(", "));
    }
    if bochs && opts.append.contains("pciback.insecure") {
        println!(
            "run: Bochs has no IOMMU: its e1000 (00:02.0) goes to the xpci guest with pciback.insecure, without DMA isolation or interrupt remapping"
        );
    }
    println!(
        "run: {} on {}, command line \"{}\"",
        opts.boot,
        opts.emulator.name(),
        opts.append
    );
    match opts.emulator {
        Emulator::Qemu { iommu, devices } => {
            let media = match &iso {
                Some(iso) => qemu::Media::Cdrom(iso),
                None => qemu::Media::Kernel {
                    elf: &elf,
                    cmdline: &opts.append,
                    modules: &modules,
                },
            };
            let disk = dir.join("nvme.img");
            crate::disk::write(&disk)?;
            let config = qemu::Config {
                iommu,
                devices,
                media,
                serial: qemu::Serial::Stdio,
                gdb: opts.gdb,
                disk: Some(&disk),
                acpi_tables: &[],
            };
            run_qemu(ws, &elf, &config, opts)
        }
        Emulator::Bochs { cpu } => {
            let iso = iso.ok_or("Bochs boots only from the GRUB ISO")?;
            run_bochs(&dir, cpu, &iso, opts)
        }
    }
}

/// The demo domain: the `hello` guest and its configuration.
const DEMO_CFG: &str = "# The demo domain: a PVH guest that reports what it was given.\n\
name = \"hello\"\n\
type = \"pvh\"\n\
kernel = \"hello\"\n\
memory = 64\n\
extra = \"console=hvc0\"\n";

/// The demo's passthrough domain: the xpci frontend guest with the three
/// devices the demo command line hides.
const DEMO_XPCI_CFG: &str = "# The xpci frontend guest: attaches to the PCI backend and drives\n\
# the devices passed through to it.\n\
name = \"xpci\"\n\
type = \"pvh\"\n\
kernel = \"xpci\"\n\
memory = 64\n\
pci = ['00:03.0', '00:04.0', '00:05.0']\n\
extra = \"expect=1234:11e8,8086:10d3,1b36:0010\"\n";

/// The same on Bochs: its e1000 (slot 1 of the bochsrc, 00:02.0).
const DEMO_XPCI_CFG_BOCHS: &str =
    "# The xpci frontend guest: attaches to the PCI backend and drives\n\
# the e1000 passed through to it.\n\
name = \"xpci\"\n\
type = \"pvh\"\n\
kernel = \"xpci\"\n\
memory = 32\n\
pci = ['00:02.0']\n\
extra = \"expect=8086:100e\"\n";

/// Writes the demo domains' modules into `dir`: the xpci guest with the
/// passed-through devices (Bochs' e1000 on `bochs`), and the hello guest.
fn guest_modules(
    ws: &Workspace,
    dir: &Path,
    bochs: bool,
) -> Result<Vec<std::path::PathBuf>, String> {
    let mut out = Vec::new();
    let xpci = if bochs {
        DEMO_XPCI_CFG_BOCHS
    } else {
        DEMO_XPCI_CFG
    };
    for (image, cfg_name, cfg_text) in
        [("xpci", "xpci.cfg", xpci), ("hello", "hello.cfg", DEMO_CFG)]
    {
        let guest = dir.join(image);
        fs::copy(metal::guest_path(ws, image), &guest)
            .map_err(|e| format!("cannot copy the {image} guest: {e}"))?;
        let cfg = dir.join(cfg_name);
        fs::write(&cfg, cfg_text).map_err(|e| format!("cannot write {}: {e}", cfg.display()))?;
        out.push(guest);
        out.push(cfg);
    }
    Ok(out)
}

fn run_qemu(
    ws: &Workspace,
    elf: &Path,
    config: &qemu::Config<'_>,
    opts: &RunOptions,
) -> Result<bool, String> {
    let args = qemu::args(config);
    let mut line = vec![qemu::PROGRAM.into()];
    line.extend(args.iter().cloned());
    println!("run: {}", process::shell_line(&line));
    if opts.gdb {
        println!(
            "run: QEMU waits for a debugger: gdb {} -ex 'target remote localhost:1234'",
            ws.show(elf)
        );
    }
    println!("run: Ctrl-C stops QEMU");
    // QEMU stays in our process group: it owns the terminal and gets Ctrl-C.
    let mut child = Command::new(qemu::PROGRAM)
        .args(&args)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", qemu::PROGRAM))?;
    let ended = process::wait(&mut child, opts.timeout, false)
        .map_err(|e| format!("waiting for QEMU failed: {e}"))?;
    Ok(match ended {
        Ended::Code(code) if code == qemu::debug_exit_status(0) => {
            println!("run: {}", qemu::describe_status(code));
            true
        }
        Ended::Code(code) => {
            println!("run: {}", qemu::describe_status(code));
            false
        }
        Ended::Signal(signal) => {
            println!("run: QEMU was stopped by signal {signal}");
            true
        }
        Ended::TimedOut(limit) => {
            println!(
                "run: stopped QEMU after {} s (--timeout)",
                limit.as_secs_f64()
            );
            true
        }
    })
}

fn run_bochs(dir: &Path, cpu: &str, iso: &Path, opts: &RunOptions) -> Result<bool, String> {
    let serial = dir.join("serial.log");
    let bochsrc = dir.join("bochsrc");
    let rc = dir.join("rc");
    let text = bochs::bochsrc(&bochs::Config {
        cpu,
        iso,
        serial: &serial,
        log: &dir.join("bochs.log"),
    });
    fs::write(&bochsrc, text).map_err(|e| format!("cannot write bochsrc: {e}"))?;
    fs::write(&rc, bochs::RC).map_err(|e| format!("cannot write rc: {e}"))?;
    let line = bochs::command_line(&bochsrc, &rc, bochs::can_unshare_network());
    println!("run: {}", process::shell_line(&line));
    println!(
        "run: Bochs' own output is in {}/stdout.log and stderr.log; Ctrl-C stops Bochs",
        dir.display()
    );
    let create = |name: &str| {
        fs::File::create(dir.join(name)).map_err(|e| format!("cannot create {name}: {e}"))
    };
    let mut child = Command::new(&line[0])
        .args(&line[1..])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(create("stdout.log")?)
        .stderr(create("stderr.log")?)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", line[0].to_string_lossy()))?;
    let stop = AtomicBool::new(false);
    let ended = thread::scope(|scope| {
        scope.spawn(|| process::follow(&serial, &stop, &mut std::io::stdout()));
        let ended = process::wait(&mut child, opts.timeout, false);
        stop.store(true, Ordering::Release);
        ended
    })
    .map_err(|e| format!("waiting for Bochs failed: {e}"))?;
    let _ = std::io::stdout().flush();
    let log = fs::read(&serial)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    // The last line may lack its newline when Bochs stops at once.
    if !log.is_empty() && !log.ends_with('\n') {
        println!();
    }
    Ok(match ended {
        Ended::TimedOut(limit) => {
            println!(
                "run: stopped Bochs after {} s (--timeout)",
                limit.as_secs_f64()
            );
            true
        }
        Ended::Code(code) if code == bochs::SHUTDOWN_STATUS => {
            if log.contains(Outcome::Success.marker()) {
                println!("run: the hypervisor reported success");
                true
            } else if log.contains(Outcome::Failure.marker()) {
                println!("run: the hypervisor reported failure");
                false
            } else {
                println!(
                    "run: Bochs exited with status {code} without an exit line from the hypervisor; see {}/bochs.log",
                    dir.display()
                );
                false
            }
        }
        Ended::Code(code) => {
            println!(
                "run: Bochs exited with status {code}; see {}/bochs.log",
                dir.display()
            );
            false
        }
        Ended::Signal(signal) => {
            println!("run: Bochs was stopped by signal {signal}");
            true
        }
    })
}
