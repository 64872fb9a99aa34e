//! Kernel modules for the initramfs, from the kernel's own package.
//!
//! `/init` loads Xen's PCI frontend (`xen-pcifront`) and the drivers of the
//! devices passed through to it (`nvme`, `e1000e`) with busybox `insmod`,
//! which neither follows dependencies nor decompresses. Debian's
//! `linux-image-6.1.0-N-amd64` ships its modules without `modules.dep`
//! (`depmod` writes that when the package is installed), so the
//! dependencies come from each module's `.modinfo` section: `depends=`
//! names the modules it needs as their files are called (`nvme-core`),
//! while the kernel treats `-` and `_` in a module name alike. A module
//! shipped as `.ko.xz` or `.ko.gz` is decompressed (6.1.0-N ships plain
//! `.ko`: `CONFIG_MODULE_COMPRESS_NONE`).
//!
//! The result is `modules/` beside the kernel: the plain `.ko` files and
//! `manifest`, which says for each wanted module which to load, in order
//! (its dependencies first). `modules.stamp` names the package it came
//! from: modules must come from the very package of the kernel they are
//! loaded into.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::apt::{self, Package};
use super::{elf, Stamp};

/// The modules `/init` loads, by name; their dependencies come along.
pub const WANTED: &[&str] = &["xen-pcifront", "nvme", "e1000e"];

/// Where the package keeps its modules: `./lib/modules/<release>/kernel/`.
const MODULES_ROOT: &str = "./lib/modules/";

/// The modules made from a kernel package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Modules {
    /// `modules/` with `<name>.ko` for every module of [`Modules::load`].
    pub dir: PathBuf,
    /// The kernel release they are for (`6.1.0-57-amd64`).
    pub release: String,
    /// Per wanted module (in [`WANTED`] order): the modules to `insmod`, in
    /// order, itself last.
    pub load: Vec<(String, Vec<String>)>,
}

impl Modules {
    /// Every module file's name (without `.ko`), each once, in load order.
    pub fn files(&self) -> Vec<&str> {
        let mut seen = Vec::new();
        for name in self.load.iter().flat_map(|(_, order)| order) {
            if !seen.contains(&name.as_str()) {
                seen.push(name);
            }
        }
        seen
    }

    /// The manifest's text: `release R`, then `load NAME: A B NAME` lines.
    pub fn manifest(&self) -> String {
        let mut text = format!("release {}\n", self.release);
        for (name, order) in &self.load {
            text.push_str(&format!("load {name}: {}\n", order.join(" ")));
        }
        text
    }

    /// Reads a manifest written by [`Modules::manifest`].
    pub fn parse_manifest(dir: &Path, text: &str) -> Option<Modules> {
        let mut lines = text.lines();
        let release = lines.next()?.strip_prefix("release ")?.to_string();
        let mut load = Vec::new();
        for line in lines {
            let (name, order) = line.strip_prefix("load ")?.split_once(": ")?;
            let order: Vec<String> = order.split_whitespace().map(String::from).collect();
            if order.last().map(String::as_str) != Some(name) {
                return None;
            }
            load.push((name.to_string(), order));
        }
        Some(Modules {
            dir: dir.to_path_buf(),
            release,
            load,
        })
    }
}

/// The name the kernel goes by: `-` and `_` are the same in module names.
fn key(name: &str) -> String {
    name.replace('-', "_")
}

/// A module's name from its path in the package, and whether (and how) it
/// is compressed: `.../nvme-core.ko` is `nvme-core`.
fn module_file(member: &str) -> Option<(&str, Option<&'static str>)> {
    let file = member.rsplit('/').next()?;
    [
        (".ko", None),
        (".ko.xz", Some("xz")),
        (".ko.gz", Some("gzip")),
    ]
    .into_iter()
    .find_map(|(ext, tool)| Some((file.strip_suffix(ext)?, tool)))
}

/// The package's modules: its kernel release and, by [`key`], each
/// module's path in the package.
pub fn index(members: &[String]) -> Result<(String, BTreeMap<String, String>), String> {
    let mut releases = BTreeSet::new();
    let mut found = BTreeMap::new();
    for member in members {
        let Some(rest) = member.strip_prefix(MODULES_ROOT) else {
            continue;
        };
        let Some((release, path)) = rest.split_once('/') else {
            continue;
        };
        if !path.starts_with("kernel/") {
            continue;
        }
        if let Some((name, _)) = module_file(path) {
            releases.insert(release.to_string());
            found.insert(key(name), member.clone());
        }
    }
    let mut releases = releases.into_iter();
    match (releases.next(), releases.next()) {
        (Some(release), None) => Ok((release, found)),
        (None, _) => Err("the package has no kernel modules under ./lib/modules/".into()),
        (Some(a), Some(b)) => Err(format!(
            "the package has modules for two kernels ({a} and {b})"
        )),
    }
}

/// The `key=value` strings of a module's `.modinfo` section.
pub fn modinfo(module: &[u8]) -> Result<Vec<(String, String)>, String> {
    let section = elf::section(module, ".modinfo")?.ok_or("no .modinfo section")?;
    Ok(section
        .split(|&b| b == 0)
        .filter_map(|field| {
            let field = String::from_utf8_lossy(field);
            let (k, v) = field.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect())
}

/// The modules a module's `.modinfo` says it needs (`depends=a,b`).
pub fn depends(info: &[(String, String)]) -> Vec<String> {
    info.iter()
        .filter(|(k, _)| k == "depends")
        .flat_map(|(_, v)| v.split(','))
        .filter(|d| !d.is_empty())
        .map(String::from)
        .collect()
}

/// The order to load `name` in: every module it needs (transitively)
/// before it, each once, `name` last. `needs` maps a [`key`] to the
/// [`key`]s it needs; `files` a [`key`] to its file's name.
pub fn load_order(
    name: &str,
    needs: &BTreeMap<String, Vec<String>>,
    files: &BTreeMap<String, String>,
) -> Result<Vec<String>, String> {
    fn visit(
        k: &str,
        needs: &BTreeMap<String, Vec<String>>,
        path: &mut Vec<String>,
        out: &mut Vec<String>,
    ) -> Result<(), String> {
        if out.iter().any(|o| o == k) {
            return Ok(());
        }
        if path.iter().any(|p| p == k) {
            return Err(format!(
                "modules need each other in a circle: {} -> {k}",
                path.join(" -> ")
            ));
        }
        path.push(k.to_string());
        for d in needs.get(k).map(Vec::as_slice).unwrap_or_default() {
            visit(d, needs, path, out)?;
        }
        path.pop();
        out.push(k.to_string());
        Ok(())
    }
    let mut keys = Vec::new();
    visit(&key(name), needs, &mut Vec::new(), &mut keys)?;
    keys.iter()
        .map(|k| {
            files
                .get(k)
                .cloned()
                .ok_or_else(|| format!("module {k} was not taken from the package"))
        })
        .collect()
}

/// A module's plain ELF bytes, decompressing with `tool` if it is
/// compressed.
fn plain(path: &Path, tool: Option<&str>) -> Result<Vec<u8>, String> {
    match tool {
        None => fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display())),
        Some(tool) => {
            let out = Command::new(tool)
                .args(["-d", "-c"])
                .arg(path)
                .output()
                .map_err(|e| format!("cannot run {tool}: {e}"))?;
            if out.status.success() {
                Ok(out.stdout)
            } else {
                Err(format!(
                    "{tool} could not decompress {} ({})",
                    path.display(),
                    out.status
                ))
            }
        }
    }
}

/// The stamp's recipe: what was asked for.
fn recipe() -> String {
    format!("modules: {}", WANTED.join(" "))
}

/// The modules under `dir/modules`, if they were made from `package` with
/// this recipe and are all there.
pub fn made(dir: &Path, package: &Package) -> Option<Modules> {
    let out = dir.join("modules");
    if Stamp::of(&out).made_with(&recipe()).as_ref() != Some(package) {
        return None;
    }
    let text = fs::read_to_string(out.join("manifest")).ok()?;
    let modules = Modules::parse_manifest(&out, &text)?;
    let complete = WANTED
        .iter()
        .all(|w| modules.load.iter().any(|(n, _)| n == w))
        && modules
            .files()
            .iter()
            .all(|f| out.join(format!("{f}.ko")).is_file());
    complete.then_some(modules)
}

/// Takes [`WANTED`] and what they need out of `deb` (the kernel package
/// `package`) into `dir/modules`, decompressed, with the manifest and the
/// stamp. `work` is scratch space.
pub fn make(deb: &Path, work: &Path, dir: &Path, package: &Package) -> Result<Modules, String> {
    let out = dir.join("modules");
    let stamp = Stamp::of(&out);
    stamp.clear();
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let (release, index) = index(&apt::list(deb)?)?;
    let root = work.join("modules-root");
    let mut needs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let mut wanted_by: BTreeMap<String, String> = BTreeMap::new();
    let mut pending: Vec<String> = WANTED.iter().map(|w| key(w)).collect();
    // One pass over the package per level of dependencies.
    while !pending.is_empty() {
        let members = pending
            .iter()
            .map(|k| {
                index.get(k).cloned().ok_or_else(|| match wanted_by.get(k) {
                    Some(by) => format!("{package}: {by} needs module {k}, which it does not ship"),
                    None => format!("{package} has no module {k}"),
                })
            })
            .collect::<Result<Vec<String>, String>>()?;
        let names: Vec<&str> = members.iter().map(String::as_str).collect();
        apt::extract(deb, &root, &names)?;
        let mut next = Vec::new();
        for (k, member) in pending.iter().zip(&members) {
            let (name, tool) = module_file(member).ok_or("not a module")?;
            let bytes = plain(&root.join(member), tool)?;
            let info = modinfo(&bytes).map_err(|e| format!("{member}: {e}"))?;
            let target = out.join(format!("{name}.ko"));
            fs::write(&target, &bytes)
                .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
            let deps: Vec<String> = depends(&info).iter().map(|d| key(d)).collect();
            for d in &deps {
                if !needs.contains_key(d) && !pending.contains(d) && !next.contains(d) {
                    wanted_by.insert(d.clone(), name.to_string());
                    next.push(d.clone());
                }
            }
            needs.insert(k.clone(), deps);
            files.insert(k.clone(), name.to_string());
        }
        pending = next;
    }
    let _ = fs::remove_dir_all(&root);
    let load = WANTED
        .iter()
        .map(|w| Ok((w.to_string(), load_order(w, &needs, &files)?)))
        .collect::<Result<Vec<_>, String>>()?;
    let modules = Modules {
        dir: out.clone(),
        release,
        load,
    };
    let manifest = out.join("manifest");
    fs::write(&manifest, modules.manifest())
        .map_err(|e| format!("cannot write {}: {e}", manifest.display()))?;
    stamp.write(package, &recipe())?;
    Ok(modules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    fn names(keys: &[&str]) -> BTreeMap<String, String> {
        keys.iter()
            .map(|k| (k.to_string(), k.replace('_', "-")))
            .collect()
    }

    #[test]
    fn the_package_listing_gives_the_release_and_every_module() {
        let members: Vec<String> = [
            "./boot/vmlinuz-6.1.0-57-amd64",
            "./lib/modules/6.1.0-57-amd64/",
            "./lib/modules/6.1.0-57-amd64/modules.order",
            "./lib/modules/6.1.0-57-amd64/kernel/drivers/nvme/host/nvme-core.ko",
            "./lib/modules/6.1.0-57-amd64/kernel/drivers/pci/xen-pcifront.ko.xz",
            "./lib/modules/6.1.0-57-amd64/kernel/drivers/pps/pps_core.ko",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (release, found) = index(&members).expect("index");
        assert_eq!(release, "6.1.0-57-amd64");
        assert_eq!(
            found.keys().collect::<Vec<_>>(),
            ["nvme_core", "pps_core", "xen_pcifront"]
        );
        assert!(found["xen_pcifront"].ends_with(".ko.xz"));
        assert!(index(&members[..3]).is_err(), "no modules at all");
        let mut two = members.clone();
        two.push("./lib/modules/6.1.0-58-amd64/kernel/a.ko".into());
        assert!(index(&two).expect_err("two").contains("two kernels"));
    }

    #[test]
    fn compressed_modules_are_recognised_by_their_suffix() {
        assert_eq!(module_file("a/b/nvme.ko"), Some(("nvme", None)));
        assert_eq!(module_file("a/e1000e.ko.xz"), Some(("e1000e", Some("xz"))));
        assert_eq!(
            module_file("a/t10-pi.ko.gz"),
            Some(("t10-pi", Some("gzip")))
        );
        assert_eq!(module_file("a/modules.order"), None);
        assert_eq!(module_file("a/x.ko.zst"), None);
    }

    #[test]
    fn modinfo_depends_names_the_needed_modules() {
        let info = b"license=GPL\0depends=nvme-core,t10-pi\0name=nvme\0vermagic=6.1.0 SMP\0";
        let module = elf::tests::with_sections(&[(".text", b"\xc3"), (".modinfo", info)]);
        let info = modinfo(&module).expect("modinfo");
        assert!(info.contains(&("name".into(), "nvme".into())));
        assert_eq!(depends(&info), ["nvme-core", "t10-pi"]);
        let none = [("depends".to_string(), String::new())];
        assert!(depends(&none).is_empty());
        let bare = elf::tests::with_sections(&[(".text", b"\xc3")]);
        assert!(modinfo(&bare).is_err());
    }

    #[test]
    fn dependencies_load_first_each_once() {
        // nvme needs nvme-core and t10-pi; nvme-core needs t10-pi too.
        let needs = map(&[
            ("nvme", &["nvme_core", "t10_pi"]),
            ("nvme_core", &["t10_pi"]),
            ("t10_pi", &["crc_t10dif"]),
            ("crc_t10dif", &[]),
        ]);
        let files = names(&["nvme", "nvme_core", "t10_pi", "crc_t10dif"]);
        assert_eq!(
            load_order("nvme", &needs, &files).expect("order"),
            ["crc-t10dif", "t10-pi", "nvme-core", "nvme"]
        );
        assert_eq!(
            load_order("nvme-core", &needs, &files).expect("order"),
            ["crc-t10dif", "t10-pi", "nvme-core"]
        );
    }

    #[test]
    fn a_circle_or_a_module_not_taken_is_an_error() {
        let circle = map(&[("a", &["b"]), ("b", &["a"])]);
        let err = load_order("a", &circle, &names(&["a", "b"])).expect_err("circle");
        assert!(err.contains("circle"), "{err}");
        let needs = map(&[("a", &["b"])]);
        assert!(load_order("a", &needs, &names(&["a"])).is_err());
    }

    #[test]
    fn the_manifest_reads_back() {
        let modules = Modules {
            dir: PathBuf::from("m"),
            release: "6.1.0-57-amd64".into(),
            load: vec![
                ("xen-pcifront".into(), vec!["xen-pcifront".into()]),
                (
                    "nvme".into(),
                    vec!["t10-pi".into(), "nvme-core".into(), "nvme".into()],
                ),
                ("e1000e".into(), vec!["e1000e".into()]),
            ],
        };
        let text = modules.manifest();
        assert_eq!(
            text,
            "release 6.1.0-57-amd64\nload xen-pcifront: xen-pcifront\n\
             load nvme: t10-pi nvme-core nvme\nload e1000e: e1000e\n"
        );
        assert_eq!(
            Modules::parse_manifest(Path::new("m"), &text),
            Some(modules.clone())
        );
        assert_eq!(
            modules.files(),
            ["xen-pcifront", "t10-pi", "nvme-core", "nvme", "e1000e"]
        );
        assert_eq!(
            Modules::parse_manifest(Path::new("m"), "release r\nload a: b\n"),
            None
        );
    }
}
