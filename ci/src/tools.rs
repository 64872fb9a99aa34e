//! The programs and files the emulator runs need, and installing them.
//!
//! As root with apt-get, missing packages are installed; otherwise the
//! error names the command to run.

use std::collections::BTreeSet;
use std::env;
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

/// QEMU.
pub const QEMU: &[Tool] = &[program("qemu-system-x86_64", "qemu-system-x86")];

/// Making GRUB rescue ISOs for BIOS machines.
pub const GRUB: &[Tool] = &[
    program("grub-mkrescue", "grub-common"),
    path("/usr/lib/grub/i386-pc", "grub-pc-bin"),
    program("xorriso", "xorriso"),
    program("mformat", "mtools"),
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
pub const ALL: &[&[Tool]] = &[QEMU, GRUB, BOCHS];

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
/// when that is possible.
pub fn ensure(sets: &[&[Tool]]) -> Result<(), String> {
    let packages = missing_packages(sets, present);
    if packages.is_empty() {
        return Ok(());
    }
    let list = packages.join(" ");
    let missing: Vec<String> = sets
        .iter()
        .flat_map(|set| set.iter())
        .filter(|t| !present(t.need))
        .map(|t| match t.need {
            Need::Program(p) | Need::Path(p) => p.to_string(),
        })
        .collect();
    println!("ensure: missing {}", missing.join(", "));
    match apt_get() {
        Some(apt) if is_root() => {
            run_apt(&apt, &["update"])?;
            let mut args = vec!["install", "-y"];
            args.extend(packages.iter().copied());
            run_apt(&apt, &args)?;
            let still = missing_packages(sets, present);
            if still.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "still missing after apt-get install: packages {}",
                    still.join(" ")
                ))
            }
        }
        _ => Err(format!(
            "missing tools; install them with:\n    sudo apt-get install -y {list}"
        )),
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
}
