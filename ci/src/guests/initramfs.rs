//! A tiny initramfs: Debian's static busybox, `/dev/console`, the kernel
//! modules `/init` loads (from the kernel's own package: [`super::modules`]),
//! `/bin/pcibench` ([`super::pcibench`]) and the `/init` script
//! (`init.sh` beside this file), which reports what the guest sees of its
//! hypervisor, does what `hvtest=` on the kernel command line asks, and
//! powers off. Written as a newc cpio ([`super::cpio`]) and compressed with
//! `gzip -n` (Debian's kernel has `CONFIG_RD_GZIP`), so the file depends
//! only on what went in, which its stamp records: busybox's package, the
//! kernel package and its modules, pcibench's digest and the script.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::apt::{self, Package};
use super::cpio::{self, Entry, Kind};
use super::modules::Modules;
use super::Stamp;

/// The package busybox comes from.
const BUSYBOX_PACKAGE: &str = "busybox-static";

/// The applets the script uses, each a symlink to busybox in /bin.
const APPLETS: &[&str] = &[
    "sh", "mount", "cat", "ls", "uname", "poweroff", "reboot", "sleep", "printf", "dd", "tail",
    "tr", "insmod", "od", "grep", "sed", "awk", "readlink", "sync", "dmesg", "taskset",
];

/// The first line it prints; a boot that reaches it ran the kernel to the end
/// of its initialisation and started user space.
pub const STARTED: &str = "init: started";

/// The line it prints just before powering off.
pub const POWERING_OFF: &str = "init: powering off";

/// `/init`. Its output goes to `/dev/console`, the last `console=` of the
/// kernel command line. `poweroff -f` makes the kernel power off at once:
/// `SCHEDOP_shutdown` (poweroff) on Xen, ACPI on a plain PC. Should that
/// return, init sleeps (its exit would panic the kernel).
pub const INIT: &str = include_str!("init.sh");

/// Where the modules go in the archive: `<name>.ko` and, per module `/init`
/// loads, `<name>.load` listing the modules to `insmod` in order.
const MODULES_DIR: &str = "lib/modules";

/// What goes into the archive besides busybox and the script.
#[derive(Debug, Clone, Default)]
pub struct Payload {
    /// `(file name without .ko, contents)`.
    pub modules: Vec<(String, Vec<u8>)>,
    /// `(module, the modules to load for it in order)`.
    pub load: Vec<(String, Vec<String>)>,
    /// The `pcibench` binary.
    pub pcibench: Vec<u8>,
}

impl Payload {
    /// Reads the modules of `modules` and the binary at `pcibench`.
    pub fn read(modules: &Modules, pcibench: &Path) -> Result<Payload, String> {
        let read = |p: &Path| fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
        let files = modules
            .files()
            .into_iter()
            .map(|name| {
                Ok((
                    name.to_string(),
                    read(&modules.dir.join(format!("{name}.ko")))?,
                ))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Payload {
            modules: files,
            load: modules.load.clone(),
            pcibench: read(pcibench)?,
        })
    }
}

/// FNV-1a (64 bits) of `bytes`: enough to tell two builds apart in a stamp.
pub fn digest(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The stamp's recipe: the kernel package and the modules' manifest, the
/// pcibench build, and the script.
pub fn recipe(kernel: &Package, modules: &Modules, pcibench: &[u8]) -> String {
    format!(
        "kernel {kernel}
{}pcibench {} bytes, fnv1a64 {:016x}
{INIT}",
        modules.manifest(),
        pcibench.len(),
        digest(pcibench)
    )
}

/// The archive's entries: directories, device node, busybox and its
/// applets, pcibench, the modules with their load lists, `/init`.
pub fn entries(busybox: Vec<u8>, payload: Payload) -> Vec<Entry> {
    let mut entries = vec![
        Entry::dir("bin"),
        Entry::dir("dev"),
        // The kernel opens /dev/console for init before anything is
        // mounted: without this node init would have no output at all.
        Entry::char_device("dev/console", 0o600, 5, 1),
        Entry::dir("proc"),
        Entry::dir("sys"),
        Entry::file("bin/busybox", 0o755, busybox),
        // Where the kernel runs its orderly poweroff and reboot commands
        // when the toolstack asks (control/shutdown): busybox's applets,
        // which signal init.
        Entry::dir("sbin"),
        Entry::symlink("sbin/poweroff", "../bin/busybox"),
        Entry::symlink("sbin/reboot", "../bin/busybox"),
    ];
    entries.extend(
        APPLETS
            .iter()
            .map(|applet| Entry::symlink(&format!("bin/{applet}"), "busybox")),
    );
    entries.push(Entry::file("bin/pcibench", 0o755, payload.pcibench));
    entries.push(Entry::dir("lib"));
    entries.push(Entry::dir(MODULES_DIR));
    for (name, bytes) in payload.modules {
        entries.push(Entry::file(
            &format!("{MODULES_DIR}/{name}.ko"),
            0o644,
            bytes,
        ));
    }
    for (name, order) in payload.load {
        let list = order.join("\n") + "\n";
        entries.push(Entry::file(
            &format!("{MODULES_DIR}/{name}.load"),
            0o644,
            list.into_bytes(),
        ));
    }
    entries.push(Entry::file("init", 0o755, INIT.as_bytes().to_vec()));
    entries
}

/// Compresses `data` into `out` with `gzip -9 -n` (no name, no time).
fn gzip(data: &[u8], out: &Path) -> Result<(), String> {
    let target = File::create(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let mut child = Command::new("gzip")
        .args(["-9", "-n", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::from(target))
        .spawn()
        .map_err(|e| format!("cannot run gzip: {e}"))?;
    let written = child
        .stdin
        .take()
        .ok_or("gzip has no stdin")?
        .write_all(data);
    let status = child.wait().map_err(|e| format!("gzip: {e}"))?;
    match written {
        Ok(()) if status.success() => Ok(()),
        Ok(()) => Err(format!("gzip failed ({status})")),
        Err(e) => Err(format!("cannot feed gzip: {e}")),
    }
}

/// Decompresses `path` and checks it holds an executable `/init`,
/// `/bin/busybox` and `/bin/pcibench`.
pub fn verify(path: &Path) -> Result<usize, String> {
    let out = Command::new("gzip")
        .args(["-d", "-c"])
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run gzip: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{}: not a gzip file ({})",
            path.display(),
            out.status
        ));
    }
    let entries = cpio::parse(&out.stdout).map_err(|e| format!("{}: {e}", path.display()))?;
    for needed in ["init", "bin/busybox", "bin/pcibench"] {
        let ok = entries
            .iter()
            .any(|e| e.path == needed && matches!(e.kind, Kind::File(_)) && e.perm & 0o111 != 0);
        if !ok {
            return Err(format!("{}: no executable /{needed}", path.display()));
        }
    }
    Ok(entries.len())
}

/// Writes `dir/initrd.gz` unless the one there was made with this script,
/// these modules of `kernel` and this pcibench (and, with `refresh`, the
/// current busybox).
pub fn prepare(
    dir: &Path,
    refresh: bool,
    kernel: &Package,
    modules: &Modules,
    pcibench: &Path,
) -> Result<PathBuf, String> {
    let initrd = dir.join("initrd.gz");
    let stamp = Stamp::of(&initrd);
    let payload = Payload::read(modules, pcibench)?;
    let recipe = recipe(kernel, modules, &payload.pcibench);
    let (busybox, made) =
        stamp.lookup(&initrd, &recipe, refresh, || apt::package(BUSYBOX_PACKAGE))?;
    if made {
        verify(&initrd)?;
        return Ok(initrd);
    }
    stamp.clear();
    let work = dir.join("busybox-work");
    let _ = fs::remove_dir_all(&work);
    apt::fetch(&busybox, &work, &work.join("root"), &["./bin/busybox"])?;
    let binary = work.join("root/bin/busybox");
    let bytes = fs::read(&binary).map_err(|e| format!("cannot read {}: {e}", binary.display()))?;
    let archive = cpio::archive(&entries(bytes, payload))?;
    gzip(&archive, &initrd)?;
    verify(&initrd)?;
    let _ = fs::remove_dir_all(&work);
    stamp.write(&busybox, &recipe)?;
    Ok(initrd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> Payload {
        Payload {
            modules: vec![
                ("nvme-core".into(), b"\x7fELF core".to_vec()),
                ("nvme".into(), b"\x7fELF nvme".to_vec()),
            ],
            load: vec![("nvme".into(), vec!["nvme-core".into(), "nvme".into()])],
            pcibench: b"\x7fELF pcibench".to_vec(),
        }
    }

    #[test]
    fn init_prints_the_marker_lines_and_powers_off() {
        assert!(INIT.starts_with("#!/bin/sh\n"));
        assert!(INIT.contains(&format!("echo \"{STARTED}\"")));
        assert!(INIT.contains(&format!("echo \"{POWERING_OFF}\"\npoweroff -f\n")));
    }

    #[test]
    fn every_applet_the_script_runs_is_linked() {
        for word in [
            "mount", "cat", "uname", "poweroff", "reboot", "sleep", "printf", "dd", "tail", "tr",
            "insmod", "od", "grep", "sed", "awk", "readlink", "sync", "dmesg", "taskset",
        ] {
            assert!(INIT.contains(&format!("{word} ")), "{word}");
            assert!(APPLETS.contains(&word), "{word}");
        }
        assert!(INIT.contains("pcibench config "));
    }

    #[test]
    fn init_reads_the_sectors_ci_writes() {
        use crate::disk::{COUNTER_LBA, KNOWN_LBA, LINE, SECTOR};
        assert!(INIT.contains(&format!("\nKNOWN_LBA={KNOWN_LBA}\n")));
        assert!(INIT.contains(&format!("\nCOUNTER_LBA={COUNTER_LBA}\n")));
        // It prints the sector a line of LINE bytes at a time.
        let offsets: Vec<String> = (0..SECTOR / LINE).map(|k| (k * LINE).to_string()).collect();
        assert!(INIT.contains(&format!("for off in {}; do", offsets.join(" "))));
        assert!(INIT.contains(&format!("$(hex /sector $off {LINE})")));
    }

    #[test]
    fn init_loads_only_the_modules_the_initramfs_has() {
        for name in super::super::modules::WANTED {
            assert!(INIT.contains(&format!("load {name}")), "{name}");
        }
    }

    #[test]
    fn the_archive_has_console_init_busybox_links_modules_and_pcibench() {
        let bytes = cpio::archive(&entries(b"\x7fELF".to_vec(), payload())).expect("archive");
        let parsed = cpio::parse(&bytes).expect("parse");
        let find = |path: &str| parsed.iter().find(|e| e.path == path).map(|e| &e.kind);
        assert_eq!(find("dev/console"), Some(&Kind::CharDevice(5, 1)));
        assert_eq!(find("bin/sh"), Some(&Kind::Symlink("busybox".into())));
        assert_eq!(find("init"), Some(&Kind::File(INIT.as_bytes().to_vec())));
        assert_eq!(
            find("bin/pcibench"),
            Some(&Kind::File(b"\x7fELF pcibench".to_vec()))
        );
        assert_eq!(
            find("lib/modules/nvme-core.ko"),
            Some(&Kind::File(b"\x7fELF core".to_vec()))
        );
        assert_eq!(
            find("lib/modules/nvme.load"),
            Some(&Kind::File(b"nvme-core\nnvme\n".to_vec()))
        );
        // Directories come before their contents.
        let pos = |path: &str| parsed.iter().position(|e| e.path == path);
        assert!(pos("bin") < pos("bin/busybox"));
        assert!(pos("dev") < pos("dev/console"));
        assert!(pos("lib") < pos("lib/modules"));
        assert!(pos("lib/modules") < pos("lib/modules/nvme.ko"));
    }

    #[test]
    fn the_recipe_changes_with_the_kernel_the_modules_and_pcibench() {
        let kernel = Package {
            name: "linux-image-6.1.0-57-amd64".into(),
            version: "6.1.192-3".into(),
        };
        let modules = Modules {
            dir: PathBuf::from("m"),
            release: "6.1.0-57-amd64".into(),
            load: payload().load,
        };
        let r = recipe(&kernel, &modules, b"a");
        assert!(r.starts_with(
            "kernel linux-image-6.1.0-57-amd64 6.1.192-3\nrelease 6.1.0-57-amd64\n\
             load nvme: nvme-core nvme\npcibench 1 bytes, fnv1a64 af63dc4c8601ec8c\n#!/bin/sh\n"
        ));
        assert_ne!(r, recipe(&kernel, &modules, b"b"));
        let newer = Package {
            version: "6.1.193-1".into(),
            ..kernel.clone()
        };
        assert_ne!(r, recipe(&newer, &modules, b"a"));
    }

    #[test]
    fn gzip_then_verify_round_trips() {
        let dir = std::env::temp_dir().join(format!("ci-initrd-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("initrd.gz");
        let bytes = cpio::archive(&entries(b"\x7fELF".to_vec(), payload())).expect("archive");
        gzip(&bytes, &path).expect("gzip");
        // 9 fixed entries, the applets, pcibench, lib, lib/modules, two
        // modules, one load list and /init.
        assert_eq!(verify(&path), Ok(9 + APPLETS.len() + 7));
        fs::write(&path, b"not gzip").expect("write");
        assert!(verify(&path).is_err());
        let _ = fs::remove_dir_all(&dir);
    }
}
