//! Real PVH guests from Debian packages: `cargo xtask guests`.
//!
//! [`prepare`] fetches, with apt, the current bookworm kernel
//! (`linux-image-6.1.0-N-amd64`, [`linux`]) with the modules the test
//! guests load ([`modules`]), `busybox-static` for an initramfs
//! ([`initramfs`], written with [`cpio`], with `pcibench` built by
//! [`pcibench`]) and `grub-xen-bin` for a GRUB PVH image ([`grub_pvh`]);
//! checks each image's Xen PHYS32_ENTRY note ([`elf`]); and writes
//! xl.cfg-style domain files naming them as boot modules. Everything lives in `target/xtask/guests/`; a second run only
//! verifies. [`direct`] boots the kernel under QEMU without a hypervisor,
//! the reference for later comparisons. docs/guests.md has the details.

mod apt;
mod cpio;
mod direct;
mod elf;
mod grub_pvh;
mod initramfs;
mod linux;
mod modules;
mod pcibench;

use std::fs;
use std::path::{Path, PathBuf};

use apt::Package;
pub use direct::CMDLINE as DIRECT_CMDLINE;

use crate::cli::GuestsOptions;
use crate::{tools, Workspace};

/// The kernel command line under the hypervisor: the Xen console `hvc0`
/// for user space, `earlyprintk=xen` so the kernel's own messages go out
/// through `console_io` (or port 0xE9) from its first lines, before event
/// channels and the console ring work, and every message up to KERN_DEBUG.
pub const XEN_CMDLINE: &str = "console=hvc0 earlyprintk=xen loglevel=7";

/// The Linux domain's memory in MiB. The kernel with this initramfs boots
/// in 128 MiB (not in 64); 256 leaves room and still fits, with the
/// hypervisor, in the 512 MiB of the standard QEMU machine.
pub const LINUX_MEMORY_MIB: u32 = 256;

/// The GRUB domain's memory in MiB.
pub const GRUB_MEMORY_MIB: u32 = 128;

/// Module names: the files' names, which the `.cfg` files refer to.
pub const VMLINUX: &str = "vmlinux";
pub const INITRD: &str = "initrd.gz";
pub const GRUB_ELF: &str = "grub-pvh.elf";

/// The boot modules of a Linux domain made at run time: Debian's kernel
/// and the initramfs, then its configuration `cfg` as `linux.cfg`.
pub fn linux_modules(cfg: &'static str) -> [crate::scenarios::BootModule; 3] {
    use crate::scenarios::{BootModule, ModuleContent};
    [
        BootModule {
            name: VMLINUX,
            content: ModuleContent::Debian(VMLINUX),
        },
        BootModule {
            name: INITRD,
            content: ModuleContent::Debian(INITRD),
        },
        BootModule {
            name: "linux.cfg",
            content: ModuleContent::Text(cfg),
        },
    ]
}

/// Where the prepared guests are, and what they are.
#[derive(Debug, Clone)]
pub struct GuestImages {
    /// The directory holding all of them.
    pub dir: PathBuf,
    /// The Linux kernel as an ELF64 PVH image (module `vmlinux`).
    pub vmlinux: PathBuf,
    /// The busybox initramfs (module `initrd.gz`).
    pub initrd: PathBuf,
    /// The domain file booting them (`linux.cfg`).
    pub linux_cfg: PathBuf,
    /// GRUB as an ELF32 PVH image (module `grub-pvh.elf`).
    pub grub: PathBuf,
    /// The domain file booting it (`grub-pvh.cfg`).
    pub grub_cfg: PathBuf,
    /// The kernel package, for example `linux-image-6.1.0-56-amd64 6.1.192-2`.
    pub kernel_package: String,
    /// The kernel modules in the initramfs, in load order.
    pub kernel_modules: Vec<String>,
    /// The GRUB package.
    pub grub_package: String,
    /// The PVH entry points of the kernel and of GRUB.
    pub kernel_entry: u32,
    pub grub_entry: u32,
}

impl GuestImages {
    /// The boot modules of the Linux domain: (module name, file), the
    /// configuration last.
    pub fn linux_modules(&self) -> Vec<(&'static str, &Path)> {
        vec![
            (VMLINUX, &self.vmlinux),
            (INITRD, &self.initrd),
            ("linux.cfg", &self.linux_cfg),
        ]
    }

    /// The boot modules of the GRUB domain.
    pub fn grub_modules(&self) -> Vec<(&'static str, &Path)> {
        vec![(GRUB_ELF, &self.grub), ("grub-pvh.cfg", &self.grub_cfg)]
    }
}

/// An xl.cfg-style domain description (docs/domains.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainConfig<'a> {
    pub name: &'a str,
    /// The kernel's module name.
    pub kernel: &'a str,
    /// The initial ramdisk's module name.
    pub ramdisk: Option<&'a str>,
    pub memory_mib: u32,
    pub cmdline: Option<&'a str>,
}

impl DomainConfig<'_> {
    /// The file's text.
    pub fn render(&self) -> String {
        let mut text = format!(
            "name = \"{}\"\ntype = \"pvh\"\nkernel = \"{}\"\n",
            self.name, self.kernel
        );
        if let Some(ramdisk) = self.ramdisk {
            text.push_str(&format!("ramdisk = \"{ramdisk}\"\n"));
        }
        text.push_str(&format!("memory = {}\n", self.memory_mib));
        if let Some(cmdline) = self.cmdline {
            text.push_str(&format!("cmdline = \"{cmdline}\"\n"));
        }
        text
    }
}

/// The Linux domain: Debian's kernel with the busybox initramfs.
pub fn linux_config(memory_mib: u32, cmdline: &str) -> String {
    DomainConfig {
        name: "linux",
        kernel: VMLINUX,
        ramdisk: Some(INITRD),
        memory_mib,
        cmdline: Some(cmdline),
    }
    .render()
}

/// The GRUB domain.
pub fn grub_config(memory_mib: u32) -> String {
    DomainConfig {
        name: "grub",
        kernel: GRUB_ELF,
        ramdisk: None,
        memory_mib,
        cmdline: None,
    }
    .render()
}

/// A cache stamp: a text file next to a product saying what it was made
/// from (`vmlinux` has `vmlinux.stamp`): the package on its first line, then
/// the recipe (whatever else went into it, such as a script).
#[derive(Debug, Clone)]
pub struct Stamp {
    path: PathBuf,
}

impl Stamp {
    /// The stamp of `product`.
    pub fn of(product: &Path) -> Stamp {
        let mut path = product.as_os_str().to_owned();
        path.push(".stamp");
        Stamp { path: path.into() }
    }

    fn text(package: &Package, recipe: &str) -> String {
        format!("{} {}\n{recipe}", package.name, package.version)
    }

    /// The package the product was made from with `recipe`, if it was.
    pub fn made_with(&self, recipe: &str) -> Option<Package> {
        let text = fs::read_to_string(&self.path).ok()?;
        let (first, rest) = text.split_once('\n')?;
        let (name, version) = first.split_once(' ')?;
        (rest == recipe).then(|| Package {
            name: name.to_string(),
            version: version.to_string(),
        })
    }

    pub fn write(&self, package: &Package, recipe: &str) -> Result<(), String> {
        fs::write(&self.path, Stamp::text(package, recipe))
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }

    /// Forgets the product (before making it again, so an interrupted run
    /// does not leave a stamp for a half-written file).
    pub fn clear(&self) {
        let _ = fs::remove_file(&self.path);
    }

    /// The package to make `product` from, and whether the product is
    /// already made from it with `recipe`. Without `refresh`, a product made
    /// with this recipe is kept without asking apt (slow) again.
    pub fn lookup(
        &self,
        product: &Path,
        recipe: &str,
        refresh: bool,
        current: impl FnOnce() -> Result<Package, String>,
    ) -> Result<(Package, bool), String> {
        let made = self.made_with(recipe).filter(|_| product.exists());
        if let (Some(package), false) = (&made, refresh) {
            return Ok((package.clone(), true));
        }
        let package = current()?;
        let up_to_date = made.as_ref() == Some(&package);
        Ok((package, up_to_date))
    }
}

/// Writes `text` to `path` unless it already holds it.
fn write_if_changed(path: &Path, text: &str) -> Result<(), String> {
    if fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The programs preparing the guests needs.
const NEEDS: &[tools::Tool] = tools::GUESTS;

/// Fetches and prepares the guests under `target/xtask/guests/`. Images
/// made earlier are only checked, unless `refresh` asks apt whether their
/// packages have newer versions.
pub fn prepare(ws: &Workspace, refresh: bool) -> Result<GuestImages, String> {
    tools::ensure(&[NEEDS])?;
    let dir = ws.xtask_dir().join("guests");
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let kernel = linux::prepare(&dir, refresh)?;
    let pcibench = pcibench::build(ws)?;
    let initrd = initramfs::prepare(&dir, refresh, &kernel.package, &kernel.modules, &pcibench)?;
    let grub = grub_pvh::prepare(&dir, refresh)?;
    let linux_cfg = dir.join("linux.cfg");
    write_if_changed(&linux_cfg, &linux_config(LINUX_MEMORY_MIB, XEN_CMDLINE))?;
    let grub_cfg = dir.join("grub-pvh.cfg");
    write_if_changed(&grub_cfg, &grub_config(GRUB_MEMORY_MIB))?;
    Ok(GuestImages {
        dir,
        vmlinux: kernel.vmlinux,
        initrd,
        linux_cfg,
        grub: grub.elf,
        grub_cfg,
        kernel_package: kernel.package.to_string(),
        kernel_modules: kernel
            .modules
            .files()
            .iter()
            .map(|s| s.to_string())
            .collect(),
        grub_package: grub.package.to_string(),
        kernel_entry: kernel.image.entry,
        grub_entry: grub.image.entry,
    })
}

fn seconds(d: std::time::Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// `cargo xtask guests [--boot-direct]`.
pub fn run(ws: &Workspace, opts: &GuestsOptions) -> Result<bool, String> {
    let images = prepare(ws, opts.refresh)?;
    println!("guests: in {}", ws.show(&images.dir));
    println!(
        "guests: linux: {} (ELF64, PVH entry {:#x}) from {}",
        ws.show(&images.vmlinux),
        images.kernel_entry,
        images.kernel_package
    );
    println!(
        "guests: linux: {} (busybox initramfs with pcibench and the modules {})",
        ws.show(&images.initrd),
        images.kernel_modules.join(" ")
    );
    println!(
        "guests: grub: {} (ELF32, PVH entry {:#x}) from {}; prints \"{}\"",
        ws.show(&images.grub),
        images.grub_entry,
        images.grub_package,
        grub_pvh::GREETING
    );
    for (what, modules) in [
        ("linux", images.linux_modules()),
        ("grub", images.grub_modules()),
    ] {
        let list: Vec<String> = modules
            .iter()
            .map(|(name, path)| format!("{name}={}", ws.show(path)))
            .collect();
        println!("guests: {what} domain modules: {}", list.join(" "));
    }
    if !opts.boot_direct {
        return Ok(true);
    }
    tools::ensure(&[tools::QEMU])?;
    println!(
        "guests: booting the kernel directly under QEMU (TCG, no hypervisor, at most {})",
        seconds(direct::TIMEOUT)
    );
    let t = direct::boot(&images.vmlinux, &images.initrd)?;
    let at = |d: Option<std::time::Duration>| d.map_or("never".to_string(), seconds);
    println!(
        "guests: direct boot: kernel's first line at {}, \"{}\" at {}, \"{}\" at {}, \
         QEMU ended ({:?}) after {}",
        at(t.kernel_started),
        initramfs::STARTED,
        at(t.init_started),
        initramfs::POWERING_OFF,
        at(t.powering_off),
        t.ended,
        seconds(t.total)
    );
    if t.passed() {
        println!("guests: direct boot passed in {}", seconds(t.total));
        Ok(true)
    } else {
        println!("guests: direct boot FAILED: user space did not start and power off");
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_linux_domain_names_its_modules_and_command_line() {
        assert_eq!(
            linux_config(512, XEN_CMDLINE),
            "name = \"linux\"\ntype = \"pvh\"\nkernel = \"vmlinux\"\n\
             ramdisk = \"initrd.gz\"\nmemory = 512\n\
             cmdline = \"console=hvc0 earlyprintk=xen loglevel=7\"\n"
        );
    }

    #[test]
    fn the_module_names_are_the_ones_the_configurations_name() {
        let images = GuestImages {
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
        let linux = linux_config(LINUX_MEMORY_MIB, XEN_CMDLINE);
        let grub = grub_config(GRUB_MEMORY_MIB);
        for (modules, cfg) in [
            (images.linux_modules(), linux),
            (images.grub_modules(), grub),
        ] {
            // Each module is named after its file; the configuration comes
            // last and every other module is named in it.
            for (name, path) in &modules {
                assert_eq!(path.file_name().and_then(|n| n.to_str()), Some(*name));
            }
            let (last, images) = modules.split_last().expect("modules");
            assert!(last.0.ends_with(".cfg"));
            for (name, _) in images {
                assert!(cfg.contains(&format!("\"{name}\"")), "{name} in {cfg}");
            }
        }
    }

    #[test]
    fn the_grub_domain_has_no_ramdisk_and_no_command_line() {
        assert_eq!(
            grub_config(128),
            "name = \"grub\"\ntype = \"pvh\"\nkernel = \"grub-pvh.elf\"\nmemory = 128\n"
        );
    }

    fn package(version: &str) -> Package {
        Package {
            name: "busybox-static".into(),
            version: version.into(),
        }
    }

    #[test]
    fn a_stamp_names_the_package_only_for_the_same_recipe() {
        let dir = std::env::temp_dir().join(format!("ci-stamp-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let stamp = Stamp::of(&dir.join("initrd.gz"));
        assert!(stamp.path.ends_with("initrd.gz.stamp"));
        assert_eq!(stamp.made_with("script"), None);
        stamp
            .write(&package("1:1.35"), "script\nline 2")
            .expect("write");
        assert_eq!(stamp.made_with("script\nline 2"), Some(package("1:1.35")));
        assert_eq!(stamp.made_with("script"), None);
        stamp.clear();
        assert_eq!(stamp.made_with("script\nline 2"), None);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_made_product_is_kept_without_asking_apt_unless_refreshing() {
        let dir = std::env::temp_dir().join(format!("ci-lookup-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let product = dir.join("initrd.gz");
        let stamp = Stamp::of(&product);
        let never = || -> Result<Package, String> { panic!("apt asked") };
        let newer = || Ok(package("2"));
        // Nothing made yet: apt is asked, and the product must be made.
        assert_eq!(
            stamp.lookup(&product, "r", false, newer),
            Ok((package("2"), false))
        );
        fs::write(&product, b"x").expect("write");
        stamp.write(&package("1"), "r").expect("stamp");
        assert_eq!(
            stamp.lookup(&product, "r", false, never),
            Ok((package("1"), true))
        );
        // A newer package or another recipe makes it again.
        assert_eq!(
            stamp.lookup(&product, "r", true, newer),
            Ok((package("2"), false))
        );
        assert_eq!(
            stamp.lookup(&product, "r2", false, newer),
            Ok((package("2"), false))
        );
        let same = || Ok(package("1"));
        assert_eq!(
            stamp.lookup(&product, "r", true, same),
            Ok((package("1"), true))
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
