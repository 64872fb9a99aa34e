//! Debian packages through apt: which version is current (`apt-cache`),
//! fetching the `.deb` (`apt-get download`, no installation) and taking
//! files out of it (`dpkg-deb --fsys-tarfile | tar -x`).
//!
//! When the package lists are missing or stale, `apt-get update` runs as
//! root; otherwise the error names the command to run.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::tools;

/// The metapackage whose dependency names the current kernel.
const KERNEL_METAPACKAGE: &str = "linux-image-amd64";
const KERNEL_PREFIX: &str = "linux-image-6.1.0-";
const KERNEL_SUFFIX: &str = "-amd64";

/// A package at the version apt would install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
}

impl std::fmt::Display for Package {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.name, self.version)
    }
}

fn run(program: &str, args: &[&str], dir: Option<&Path>) -> Result<Output, String> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null());
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    cmd.output()
        .map_err(|e| format!("cannot run {program}: {e}"))
}

fn failure(program: &str, args: &[&str], out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    format!(
        "{program} {} failed ({}): {}",
        args.join(" "),
        out.status,
        stderr.trim()
    )
}

/// Runs `apt-cache ARGS` and returns its standard output.
fn apt_cache(args: &[&str]) -> Result<String, String> {
    let out = run("apt-cache", args, None)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(failure("apt-cache", args, &out))
    }
}

/// `apt-get update` as root; otherwise an error naming the command.
fn update(why: &str) -> Result<(), String> {
    if !tools::is_root() {
        return Err(format!(
            "{why}\nthe package lists may be missing or stale: run\n    sudo apt-get update"
        ));
    }
    println!("guests: {why}; running apt-get update");
    let out = Command::new("apt-get")
        .arg("update")
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if out.success() {
        Ok(())
    } else {
        Err(format!("apt-get update failed ({out})"))
    }
}

/// Runs `f`; when it fails, updates the package lists and runs it again.
fn with_update<T>(f: impl Fn() -> Result<T, String>) -> Result<T, String> {
    f().or_else(|e| {
        update(&e)?;
        f()
    })
}

/// The package `apt-cache depends` lists after `Depends:` that starts with
/// `prefix`.
pub fn depends_on(depends: &str, prefix: &str) -> Option<String> {
    depends.lines().find_map(|line| {
        let name = line.trim().strip_prefix("Depends:")?.trim();
        name.starts_with(prefix).then(|| name.to_string())
    })
}

/// The ABI number of a Debian 6.1 kernel image package
/// (`linux-image-6.1.0-56-amd64` is 56).
fn kernel_abi(name: &str) -> Option<u32> {
    name.strip_prefix(KERNEL_PREFIX)?
        .strip_suffix(KERNEL_SUFFIX)?
        .parse()
        .ok()
}

/// The newest kernel image named in `apt-cache search` output
/// (`NAME - DESCRIPTION` lines).
pub fn newest_kernel(search: &str) -> Option<String> {
    search
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter_map(|name| kernel_abi(name).map(|abi| (abi, name)))
        .max()
        .map(|(_, name)| name.to_string())
}

/// The `Version:` field of `apt-cache show --no-all-versions` output.
pub fn show_version(show: &str) -> Option<String> {
    show.lines()
        .find_map(|line| line.strip_prefix("Version:"))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The version apt would install of `name`.
pub fn package(name: &str) -> Result<Package, String> {
    with_update(|| {
        let show = apt_cache(&["show", "--no-all-versions", name])?;
        let version =
            show_version(&show).ok_or_else(|| format!("apt-cache show {name}: no Version"))?;
        Ok(Package {
            name: name.to_string(),
            version,
        })
    })
}

/// The current bookworm kernel image: the one `linux-image-amd64` depends
/// on, else the newest `linux-image-6.1.0-N-amd64` apt knows.
pub fn kernel_package() -> Result<Package, String> {
    let name = with_update(|| {
        let via_meta = apt_cache(&["depends", KERNEL_METAPACKAGE])
            .ok()
            .and_then(|out| depends_on(&out, KERNEL_PREFIX));
        if let Some(name) = via_meta {
            return Ok(name);
        }
        let search = apt_cache(&[
            "search",
            "--names-only",
            r"^linux-image-6\.1\.0-[0-9]+-amd64$",
        ])?;
        newest_kernel(&search).ok_or_else(|| {
            "apt knows no linux-image-6.1.0-N-amd64 package (is this Debian bookworm?)".to_string()
        })
    })?;
    package(&name)
}

/// Downloads `pkg` into `dir` (emptied first) and returns the `.deb`.
pub fn download(pkg: &Package, dir: &Path) -> Result<PathBuf, String> {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let spec = format!("{}={}", pkg.name, pkg.version);
    println!("guests: apt-get download {spec}");
    let mut args = vec!["download", spec.as_str()];
    // As root, apt hands the download to its `_apt` user, who may not be
    // able to write here; it warns and downloads as root. Say so up front.
    if tools::is_root() {
        args.extend(["-o", "APT::Sandbox::User=root"]);
    }
    with_update(|| {
        let out = run("apt-get", &args, Some(dir))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(failure("apt-get", &args, &out))
        }
    })?;
    let debs: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    match debs.as_slice() {
        [deb] => Ok(deb.clone()),
        _ => Err(format!(
            "apt-get download {spec}: expected one .deb in {}, found {}",
            dir.display(),
            debs.len()
        )),
    }
}

/// Unpacks the members of `deb` matching the `tar` wildcards `members`
/// (such as `./boot/vmlinuz-*`) under `dest`.
pub fn extract(deb: &Path, dest: &Path, members: &[&str]) -> Result<(), String> {
    fs::create_dir_all(dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run dpkg-deb: {e}"))?;
    let tar_in = dpkg.stdout.take().map(Stdio::from).unwrap_or(Stdio::null());
    let tar = Command::new("tar")
        .args(["-x", "--wildcards", "-C"])
        .arg(dest)
        .args(members)
        .stdin(tar_in)
        .status();
    let dpkg = dpkg.wait();
    let shown = deb.display();
    match (dpkg, tar) {
        (Ok(d), Ok(t)) if d.success() && t.success() => Ok(()),
        (Ok(d), _) if !d.success() => Err(format!("dpkg-deb --fsys-tarfile {shown} failed ({d})")),
        (_, Ok(t)) => Err(format!(
            "tar could not take {} out of {shown} ({t})",
            members.join(" ")
        )),
        (Err(e), _) | (_, Err(e)) => Err(format!("cannot unpack {shown}: {e}")),
    }
}

/// The paths in `deb`'s file system archive, as `tar -t` names them
/// (`./boot/vmlinuz-...`).
pub fn list(deb: &Path) -> Result<Vec<String>, String> {
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run dpkg-deb: {e}"))?;
    let tar_in = dpkg.stdout.take().map(Stdio::from).unwrap_or(Stdio::null());
    let tar = Command::new("tar")
        .arg("-t")
        .stdin(tar_in)
        .stderr(Stdio::inherit())
        .output();
    let dpkg = dpkg.wait();
    let shown = deb.display();
    match (dpkg, tar) {
        (Ok(d), Ok(t)) if d.success() && t.status.success() => {
            Ok(String::from_utf8_lossy(&t.stdout)
                .lines()
                .map(str::to_string)
                .collect())
        }
        (Ok(d), _) if !d.success() => Err(format!("dpkg-deb --fsys-tarfile {shown} failed ({d})")),
        (_, Ok(t)) => Err(format!("tar could not list {shown} ({})", t.status)),
        (Err(e), _) | (_, Err(e)) => Err(format!("cannot list {shown}: {e}")),
    }
}

/// Downloads `pkg` and unpacks `members` of it under `dest`; the `.deb`
/// is deleted afterwards.
pub fn fetch(pkg: &Package, work: &Path, dest: &Path, members: &[&str]) -> Result<(), String> {
    let downloads = work.join("downloads");
    let deb = download(pkg, &downloads)?;
    extract(&deb, dest, members)?;
    let _ = fs::remove_dir_all(&downloads);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPENDS: &str = "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n";

    const SEARCH: &str = "\
linux-image-6.1.0-47-amd64 - Linux 6.1 for 64-bit PCs (signed)
linux-image-6.1.0-9-amd64 - Linux 6.1 for 64-bit PCs (signed)
linux-image-6.1.0-56-amd64 - Linux 6.1 for 64-bit PCs (signed)
linux-image-6.1.0-55-amd64 - Linux 6.1 for 64-bit PCs (signed)
linux-image-6.1.0-57-amd64-unsigned - Linux 6.1 for 64-bit PCs
linux-image-6.1.0-58-rt-amd64 - Linux 6.1 for 64-bit PCs, PREEMPT_RT
";

    const SHOW: &str = "\
Package: busybox-static
Source: busybox (1:1.35.0-4+deb12u1)
Version: 1:1.35.0-4+deb12u1+b1
Installed-Size: 2058
";

    #[test]
    fn the_metapackage_dependency_names_the_kernel() {
        assert_eq!(
            depends_on(DEPENDS, KERNEL_PREFIX).as_deref(),
            Some("linux-image-6.1.0-56-amd64")
        );
        let other = "linux-image-amd64\n  Depends: something-else\n";
        assert_eq!(depends_on(other, KERNEL_PREFIX), None);
        assert_eq!(depends_on("", KERNEL_PREFIX), None);
    }

    #[test]
    fn the_newest_kernel_is_chosen_by_abi_number_not_by_text() {
        assert_eq!(
            newest_kernel(SEARCH).as_deref(),
            Some("linux-image-6.1.0-56-amd64")
        );
        assert_eq!(newest_kernel(""), None);
        assert_eq!(kernel_abi("linux-image-6.1.0-9-amd64"), Some(9));
        assert_eq!(kernel_abi("linux-image-6.1.0-9-cloud-amd64"), None);
    }

    #[test]
    fn the_version_keeps_its_epoch() {
        assert_eq!(show_version(SHOW).as_deref(), Some("1:1.35.0-4+deb12u1+b1"));
        assert_eq!(show_version("Package: x\nVersion:\n"), None);
        assert_eq!(show_version("N: Unable to locate package x\n"), None);
    }
}
