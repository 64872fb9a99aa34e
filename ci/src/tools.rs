//! The programs and files the emulator runs need, and installing them.
//!
//! As root with apt-get, missing packages are installed; otherwise the
//! error names the command to run. QEMU must also be at least
//! [`QEMU_MIN_MAJOR`]; on Debian bookworm it comes from bookworm-backports.

use std::collections::BTreeSet;
use std::env;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Something that must be present.
#[derive(Debug, Clone, Copy)]
pub enum Need {
    /// An executable on `PATH`.
    Program(&'static str),
    /// A file or directory.
    Path(&'static str),
}

/// A need and the Debian package that provides it.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    pub need: Need,
    pub package: &'static str,
}

const fn program(name: &'static str, package: &'static str) -> Tool {
    Tool {
        need: Need::Program(name),
        package,
    }
}

const fn path(name: &'static str, package: &'static str) -> Tool {
    Tool {
        need: Need::Path(name),
        package,
    }
}

/// The QEMU program the scenarios run.
const QEMU_PROGRAM: &str = "qemu-system-x86_64";

/// The Debian package providing [`QEMU_PROGRAM`].
const QEMU_PACKAGE: &str = "qemu-system-x86";

/// QEMU.
pub const QEMU: &[Tool] = &[program(QEMU_PROGRAM, QEMU_PACKAGE)];

/// The oldest QEMU major version the emulator scenarios run on.
pub const QEMU_MIN_MAJOR: u32 = 10;

/// The Debian release whose own QEMU is older than [`QEMU_MIN_MAJOR`].
const BOOKWORM: &str = "bookworm";

/// The apt suite that has a new enough QEMU for [`BOOKWORM`].
const BACKPORTS: &str = "bookworm-backports";

/// Where `ensure` adds [`BACKPORTS`] when no apt source mentions it.
const BACKPORTS_LIST: &str = "/etc/apt/sources.list.d/bookworm-backports.list";

/// The line of [`BACKPORTS_LIST`].
const BACKPORTS_LINE: &str = "deb http://deb.debian.org/debian bookworm-backports main";

/// Making GRUB rescue ISOs for BIOS machines.
pub const GRUB: &[Tool] = &[
    program("grub-mkrescue", "grub-common"),
    path("/usr/lib/grub/i386-pc", "grub-pc-bin"),
    program("xorriso", "xorriso"),
    program("mformat", "mtools"),
];

/// Booting those ISOs through UEFI: GRUB's x86_64-efi modules (which
/// `grub-mkrescue` then adds to every ISO) and the OVMF firmware.
pub const UEFI: &[Tool] = &[
    path("/usr/lib/grub/x86_64-efi", "grub-efi-amd64-bin"),
    path(crate::qemu::OVMF_CODE, "ovmf"),
    path(crate::qemu::OVMF_VARS, "ovmf"),
];

/// Bochs with its BIOS images.
pub const BOCHS: &[Tool] = &[
    program("bochs", "bochs"),
    path("/usr/share/bochs/BIOS-bochs-latest", "bochsbios"),
    path("/usr/share/vgabios/vgabios.bin", "vgabios"),
];

/// Fetching and unpacking Debian packages and making guest images
/// (`cargo xtask guests`).
pub const GUESTS: &[Tool] = &[
    program("apt-get", "apt"),
    program("apt-cache", "apt"),
    program("dpkg-deb", "dpkg"),
    program("tar", "tar"),
    program("xz", "xz-utils"),
    program("gzip", "gzip"),
    program("grub-mkimage", "grub-common"),
];

/// Everything.
pub const ALL: &[&[Tool]] = &[QEMU, GRUB, UEFI, BOCHS];

/// Whether an executable `name` is on `PATH`.
fn on_path(name: &str) -> bool {
    let Some(paths) = env::var_os("PATH") else {
        return false;
    };
    env::split_paths(&paths).any(|dir| is_executable(&dir.join(name)))
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn present(need: Need) -> bool {
    match need {
        Need::Program(name) => on_path(name),
        Need::Path(p) => Path::new(p).exists(),
    }
}

/// The packages providing the missing needs, each once, in order.
fn missing_packages(sets: &[&[Tool]], present: impl Fn(Need) -> bool) -> Vec<&'static str> {
    let mut seen = BTreeSet::new();
    let mut packages = Vec::new();
    for tool in sets.iter().flat_map(|set| set.iter()) {
        if !present(tool.need) && seen.insert(tool.package) {
            packages.push(tool.package);
        }
    }
    packages
}

/// A version as (major, minor, patch).
type Version = (u32, u32, u32);

/// The version in `qemu-system-x86_64 --version` output, e.g. `(10, 0, 2)`
/// from "QEMU emulator version 10.0.2 (Debian ...)"; a missing patch
/// counts as 0.
fn parse_qemu_version(output: &str) -> Option<Version> {
    let (_, rest) = output.split_once("QEMU emulator version ")?;
    let word = rest.split_whitespace().next()?;
    let mut parts = word.split('.').map(|part| {
        let digits = part.split(|c: char| !c.is_ascii_digit()).next()?;
        digits.parse::<u32>().ok()
    });
    let major = parts.next()??;
    let minor = parts.next()??;
    let patch = parts.next().unwrap_or(Some(0))?;
    Some((major, minor, patch))
}

/// "x.y.z".
fn show(version: Version) -> String {
    format!("{}.{}.{}", version.0, version.1, version.2)
}

/// The version of the QEMU on `PATH`, if it runs and says.
fn qemu_version() -> Option<Version> {
    let output = Command::new(QEMU_PROGRAM)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    parse_qemu_version(&String::from_utf8_lossy(&output.stdout))
}

/// What `ensure` found of QEMU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qemu {
    /// Not among the requested sets.
    NotWanted,
    /// Requested but not on `PATH`.
    Absent,
    /// On `PATH`, with its version if `--version` could be read.
    Present(Option<Version>),
}

impl Qemu {
    /// Whether QEMU must be installed or upgraded: it is requested and
    /// absent, of an unreadable version, or older than [`QEMU_MIN_MAJOR`].
    fn needs_install(self) -> bool {
        match self {
            Qemu::NotWanted => false,
            Qemu::Absent | Qemu::Present(None) => true,
            Qemu::Present(Some((major, _, _))) => major < QEMU_MIN_MAJOR,
        }
    }

    /// The found version for messages.
    fn describe(self) -> String {
        match self {
            Qemu::Present(Some(version)) => show(version),
            Qemu::Present(None) => "(version unreadable)".to_string(),
            Qemu::NotWanted | Qemu::Absent => "absent".to_string(),
        }
    }
}

/// The line `ensure` prints before installing or upgrading `qemu`, if any;
/// `backports` says whether it comes from [`BACKPORTS`].
fn qemu_plan(qemu: Qemu, backports: bool) -> Option<String> {
    let source = if backports { BACKPORTS } else { "apt" };
    match qemu {
        Qemu::NotWanted => None,
        Qemu::Present(Some((major, _, _))) if major >= QEMU_MIN_MAJOR => None,
        Qemu::Present(Some(_)) => Some(format!(
            "QEMU {} is older than {QEMU_MIN_MAJOR}; installing from {source}",
            qemu.describe()
        )),
        Qemu::Present(None) => Some(format!(
            "cannot read QEMU's version; installing QEMU {QEMU_MIN_MAJOR} or newer from {source}"
        )),
        Qemu::Absent => Some(format!(
            "installing QEMU {QEMU_MIN_MAJOR} or newer from {source}"
        )),
    }
}

/// The `VERSION_CODENAME` in `/etc/os-release` text, e.g. "bookworm".
fn os_codename(os_release: &str) -> Option<&str> {
    os_release.lines().find_map(|line| {
        let value = line.trim().strip_prefix("VERSION_CODENAME=")?;
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        (!value.is_empty()).then_some(value)
    })
}

/// This machine's release codename, from `/etc/os-release`.
fn codename() -> Option<String> {
    let text = fs::read_to_string("/etc/os-release").ok()?;
    os_codename(&text).map(str::to_string)
}

/// Whether QEMU comes from [`BACKPORTS`]: it must be installed and the
/// release is bookworm (later ones ship QEMU 10 or newer).
fn from_backports(qemu: Qemu, codename: Option<&str>) -> bool {
    qemu.needs_install() && codename == Some(BOOKWORM)
}

/// The apt-get argument vectors installing `others` (missing packages
/// other than QEMU's) and QEMU when `qemu` needs it: one `update`, then
/// `install`s, QEMU's from [`BACKPORTS`] on bookworm. Empty when nothing
/// is to be installed.
fn apt_commands(
    others: &[&'static str],
    qemu: Qemu,
    codename: Option<&str>,
) -> Vec<Vec<&'static str>> {
    let backports = from_backports(qemu, codename);
    let mut plain: Vec<&'static str> = others.to_vec();
    if qemu.needs_install() && !backports {
        plain.push(QEMU_PACKAGE);
    }
    let mut commands = Vec::new();
    if !plain.is_empty() {
        let mut install = vec!["install", "-y"];
        install.extend(plain);
        commands.push(install);
    }
    if backports {
        commands.push(vec!["install", "-y", "-t", BACKPORTS, QEMU_PACKAGE]);
    }
    if !commands.is_empty() {
        commands.insert(0, vec!["update"]);
    }
    commands
}

/// Whether an apt sources file's text mentions [`BACKPORTS`] outside
/// comments.
fn mentions_backports(text: &str) -> bool {
    text.lines()
        .any(|line| !line.trim_start().starts_with('#') && line.contains(BACKPORTS))
}

/// Whether `/etc/apt/sources.list` or a `.list` or `.sources` file in
/// `/etc/apt/sources.list.d` already mentions [`BACKPORTS`].
fn backports_configured() -> bool {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        files.extend(
            dir.flatten()
                .map(|entry| entry.path())
                .filter(|p| p.extension().is_some_and(|e| e == "list" || e == "sources")),
        );
    }
    files
        .iter()
        .any(|file| fs::read_to_string(file).is_ok_and(|text| mentions_backports(&text)))
}

/// The shell command adding [`BACKPORTS`] as [`BACKPORTS_LIST`].
fn backports_command() -> String {
    format!("sh -c \"echo '{BACKPORTS_LINE}' > {BACKPORTS_LIST}\"")
}

/// The commands to run by hand (as root) for `commands`, adding
/// [`BACKPORTS`] first when `add_backports`.
fn manual_steps(commands: &[Vec<&str>], add_backports: bool) -> String {
    let mut steps = Vec::new();
    if add_backports {
        steps.push(format!("    sudo {}", backports_command()));
    }
    for args in commands {
        steps.push(format!("    sudo apt-get {}", args.join(" ")));
    }
    steps.join("\n")
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn apt_get() -> Option<PathBuf> {
    on_path("apt-get").then(|| PathBuf::from("apt-get"))
}

fn run_apt(apt: &Path, args: &[&str]) -> Result<(), String> {
    println!("ensure: apt-get {}", args.join(" "));
    let status = Command::new(apt)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("apt-get {} failed ({status})", args.join(" ")))
    }
}

/// Makes sure everything in `sets` is there, installing what is missing
/// when that is possible, and that QEMU, when requested, is at least
/// [`QEMU_MIN_MAJOR`] (from bookworm-backports on bookworm).
pub fn ensure(sets: &[&[Tool]]) -> Result<(), String> {
    let packages = missing_packages(sets, present);
    let wanted = sets
        .iter()
        .flat_map(|set| set.iter())
        .any(|t| t.package == QEMU_PACKAGE);
    let qemu = if !wanted {
        Qemu::NotWanted
    } else if packages.contains(&QEMU_PACKAGE) {
        Qemu::Absent
    } else {
        Qemu::Present(qemu_version())
    };
    if packages.is_empty() && !qemu.needs_install() {
        return Ok(());
    }
    let missing: Vec<String> = sets
        .iter()
        .flat_map(|set| set.iter())
        .filter(|t| !present(t.need))
        .map(|t| match t.need {
            Need::Program(p) | Need::Path(p) => p.to_string(),
        })
        .collect();
    if !missing.is_empty() {
        println!("ensure: missing {}", missing.join(", "));
    }
    let codename = codename();
    let backports = from_backports(qemu, codename.as_deref());
    let others: Vec<&'static str> = packages
        .iter()
        .copied()
        .filter(|&p| p != QEMU_PACKAGE)
        .collect();
    let commands = apt_commands(&others, qemu, codename.as_deref());
    let add_backports = backports && !backports_configured();
    match apt_get() {
        Some(apt) if is_root() => {
            if let Some(line) = qemu_plan(qemu, backports) {
                println!("ensure: {line}");
            }
            if add_backports {
                println!("ensure: adding {BACKPORTS} as {BACKPORTS_LIST}");
                fs::write(BACKPORTS_LIST, format!("{BACKPORTS_LINE}\n")).map_err(|e| {
                    format!(
                        "cannot write {BACKPORTS_LIST}: {e}; run:\n    {}",
                        backports_command()
                    )
                })?;
            }
            for args in &commands {
                run_apt(&apt, args)?;
            }
            let still = missing_packages(sets, present);
            if !still.is_empty() {
                return Err(format!(
                    "still missing after apt-get install: packages {}",
                    still.join(" ")
                ));
            }
            if wanted {
                let after = Qemu::Present(qemu_version());
                if after.needs_install() {
                    let fix = apt_commands(&[], after, Some(BOOKWORM));
                    return Err(format!(
                        "QEMU is {} after apt-get install but the scenarios need \
                         {QEMU_MIN_MAJOR} or newer; on Debian bookworm run:\n{}\n\
                         (later Debian releases ship it: apt-get install -y {QEMU_PACKAGE})",
                        after.describe(),
                        manual_steps(&fix, !backports_configured())
                    ));
                }
            }
            Ok(())
        }
        _ => {
            let mut problems = Vec::new();
            if !missing.is_empty() {
                problems.push("missing tools".to_string());
            }
            match qemu {
                Qemu::Present(Some(version)) if qemu.needs_install() => problems.push(format!(
                    "QEMU {} is older than {QEMU_MIN_MAJOR}",
                    show(version)
                )),
                Qemu::Present(None) => problems.push(format!(
                    "cannot read QEMU's version (need {QEMU_MIN_MAJOR} or newer)"
                )),
                _ => {}
            }
            Err(format!(
                "{}; install with:\n{}",
                problems.join(" and "),
                manual_steps(&commands, add_backports)
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_missing_means_no_packages() {
        assert!(missing_packages(ALL, |_| true).is_empty());
    }

    #[test]
    fn each_package_is_named_once() {
        let all = missing_packages(ALL, |_| false);
        assert_eq!(
            all,
            [
                "qemu-system-x86",
                "grub-common",
                "grub-pc-bin",
                "xorriso",
                "mtools",
                "grub-efi-amd64-bin",
                "ovmf",
                "bochs",
                "bochsbios",
                "vgabios"
            ]
        );
        let twice = missing_packages(&[GRUB, GRUB], |_| false);
        assert_eq!(twice.len(), GRUB.len());
    }

    #[test]
    fn only_missing_needs_count() {
        let packages = missing_packages(
            ALL,
            |n| !matches!(n, Need::Path(p) if p.contains("vgabios")),
        );
        assert_eq!(packages, ["vgabios"]);
    }

    #[test]
    fn the_shell_is_found_on_path() {
        assert!(on_path("sh"));
        assert!(!on_path("surely-no-such-program-here"));
    }

    const BACKPORTS_QEMU: &str = "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\n\
                                  Copyright (c) 2003-2025 Fabrice Bellard and the QEMU Project developers\n";
    const BOOKWORM_QEMU: &str = "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\n";

    #[test]
    fn qemu_versions_are_parsed() {
        assert_eq!(parse_qemu_version(BACKPORTS_QEMU), Some((10, 0, 2)));
        assert_eq!(parse_qemu_version(BOOKWORM_QEMU), Some((7, 2, 22)));
        assert_eq!(
            parse_qemu_version("QEMU emulator version 9.2.50\n"),
            Some((9, 2, 50))
        );
        assert_eq!(
            parse_qemu_version("QEMU emulator version 10.1.0-rc1\n"),
            Some((10, 1, 0))
        );
        assert_eq!(
            parse_qemu_version("QEMU emulator version 8.2"),
            Some((8, 2, 0))
        );
    }

    #[test]
    fn garbage_has_no_qemu_version() {
        assert_eq!(parse_qemu_version(""), None);
        assert_eq!(parse_qemu_version("command not found"), None);
        assert_eq!(parse_qemu_version("QEMU emulator version "), None);
        assert_eq!(parse_qemu_version("QEMU emulator version x.y.z"), None);
        assert_eq!(parse_qemu_version("QEMU emulator version 10"), None);
    }

    #[test]
    fn old_absent_or_unreadable_qemu_needs_installing() {
        assert!(!Qemu::NotWanted.needs_install());
        assert!(Qemu::Absent.needs_install());
        assert!(Qemu::Present(None).needs_install());
        assert!(Qemu::Present(Some((7, 2, 22))).needs_install());
        assert!(Qemu::Present(Some((9, 2, 99))).needs_install());
        assert!(!Qemu::Present(Some((10, 0, 0))).needs_install());
        assert!(!Qemu::Present(Some((11, 0, 0))).needs_install());
        assert_eq!(Qemu::Present(Some((7, 2, 22))).describe(), "7.2.22");
    }

    #[test]
    fn a_line_is_printed_only_when_acting_on_qemu() {
        assert_eq!(qemu_plan(Qemu::NotWanted, false), None);
        assert_eq!(qemu_plan(Qemu::Present(Some((10, 0, 2))), false), None);
        assert_eq!(
            qemu_plan(Qemu::Present(Some((7, 2, 22))), true).as_deref(),
            Some("QEMU 7.2.22 is older than 10; installing from bookworm-backports")
        );
        assert_eq!(
            qemu_plan(Qemu::Absent, false).as_deref(),
            Some("installing QEMU 10 or newer from apt")
        );
    }

    #[test]
    fn the_codename_comes_from_os_release() {
        let bookworm = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n\
                        NAME=\"Debian GNU/Linux\"\n\
                        VERSION_ID=\"12\"\n\
                        VERSION=\"12 (bookworm)\"\n\
                        VERSION_CODENAME=bookworm\n\
                        ID=debian\n";
        assert_eq!(os_codename(bookworm), Some("bookworm"));
        assert_eq!(os_codename("VERSION_CODENAME=\"trixie\"\n"), Some("trixie"));
        assert_eq!(os_codename("ID=debian\nVERSION_CODENAME=\n"), None);
        assert_eq!(os_codename("ID=debian\n"), None);
        assert_eq!(os_codename(""), None);
    }

    #[test]
    fn nothing_to_install_runs_no_apt() {
        let fine = Qemu::Present(Some((10, 0, 2)));
        assert!(apt_commands(&[], fine, Some("bookworm")).is_empty());
        assert!(apt_commands(&[], Qemu::NotWanted, None).is_empty());
    }

    #[test]
    fn other_packages_install_plainly() {
        let fine = Qemu::Present(Some((10, 0, 2)));
        assert_eq!(
            apt_commands(&["xorriso", "mtools"], fine, Some("bookworm")),
            [vec!["update"], vec!["install", "-y", "xorriso", "mtools"]]
        );
    }

    #[test]
    fn bookworm_qemu_comes_from_backports() {
        let backports = vec![
            "install",
            "-y",
            "-t",
            "bookworm-backports",
            "qemu-system-x86",
        ];
        for qemu in [
            Qemu::Absent,
            Qemu::Present(Some((7, 2, 22))),
            Qemu::Present(None),
        ] {
            assert!(from_backports(qemu, Some("bookworm")));
            assert_eq!(
                apt_commands(&[], qemu, Some("bookworm")),
                [vec!["update"], backports.clone()]
            );
        }
        assert_eq!(
            apt_commands(&["xorriso"], Qemu::Absent, Some("bookworm")),
            [vec!["update"], vec!["install", "-y", "xorriso"], backports]
        );
    }

    #[test]
    fn later_releases_install_qemu_plainly() {
        for codename in [Some("trixie"), Some("forky"), None] {
            let old = Qemu::Present(Some((9, 2, 0)));
            assert!(!from_backports(old, codename));
            assert_eq!(
                apt_commands(&["xorriso"], old, codename),
                [
                    vec!["update"],
                    vec!["install", "-y", "xorriso", "qemu-system-x86"]
                ]
            );
        }
        assert!(!from_backports(
            Qemu::Present(Some((10, 0, 2))),
            Some("bookworm")
        ));
    }

    #[test]
    fn backports_mentions_ignore_comments() {
        assert!(mentions_backports(BACKPORTS_LINE));
        assert!(mentions_backports(
            "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\n"
        ));
        assert!(!mentions_backports(
            "# deb http://deb.debian.org/debian bookworm-backports main\n"
        ));
        assert!(!mentions_backports(
            "deb http://deb.debian.org/debian bookworm main\n"
        ));
    }

    #[test]
    fn manual_steps_add_backports_first() {
        let commands = apt_commands(&[], Qemu::Absent, Some("bookworm"));
        assert_eq!(
            manual_steps(&commands, true),
            "    sudo sh -c \"echo 'deb http://deb.debian.org/debian bookworm-backports main' \
             > /etc/apt/sources.list.d/bookworm-backports.list\"\n\
             \x20   sudo apt-get update\n\
             \x20   sudo apt-get install -y -t bookworm-backports qemu-system-x86"
        );
        assert_eq!(
            manual_steps(&commands, false),
            "    sudo apt-get update\n\
             \x20   sudo apt-get install -y -t bookworm-backports qemu-system-x86"
        );
    }
}
