//! GRUB as a PVH guest.
//!
//! Debian's `grub-xen-bin` ships GRUB's `i386-xen_pvh` platform as modules
//! and a `kernel.img` under `/usr/lib/grub/i386-xen_pvh/`, not as a bootable
//! image (the prebuilt `grub-i386-xen_pvh.bin` is in `grub-xen-host`, with a
//! configuration that looks for the guest's disks). `grub-mkimage -O
//! i386-xen_pvh` (from `grub-common`) turns them into an ELF32 with Xen's
//! PHYS32_ENTRY note; ours embeds a configuration that prints one line and
//! leaves GRUB at its `grub>` prompt.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::apt::{self, Package};
use super::elf::{self, PvhImage};
use super::Stamp;

const PACKAGE: &str = "grub-xen-bin";
const PLATFORM: &str = "i386-xen_pvh";

/// The line the embedded configuration prints.
pub const GREETING: &str = "grub-pvh: embedded configuration ran";

/// The embedded configuration. Without `prefix`, normal mode reads no
/// `grub.cfg` and goes straight to the prompt.
pub const EMBEDDED_CFG: &str = "\
echo \"grub-pvh: embedded configuration ran\"
echo \"grub-pvh: commands: ls, cat, lsmod, help; halt powers off\"
unset prefix
";

/// The modules built into the image (grub-mkimage adds their dependencies).
const MODULES: &[&str] = &[
    "normal", "echo", "test", "ls", "cat", "help", "minicmd", "sleep", "halt", "reboot",
];

/// The GRUB image, ready to boot.
#[derive(Debug, Clone)]
pub struct GrubImage {
    pub elf: PathBuf,
    pub package: Package,
    pub image: PvhImage,
}

/// Checks that `path` is a PVH image.
pub fn verify(path: &Path) -> Result<PvhImage, String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    elf::pvh_image(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// What the image was made from besides the package.
fn recipe() -> String {
    format!("{}\n{EMBEDDED_CFG}", MODULES.join(" "))
}

fn mkimage(platform_dir: &Path, cfg: &Path, out: &Path) -> Result<(), String> {
    let mut cmd = Command::new("grub-mkimage");
    cmd.args(["-O", PLATFORM, "-p", "/boot/grub", "-d"])
        .arg(platform_dir)
        .arg("-c")
        .arg(cfg)
        .arg("-o")
        .arg(out)
        .args(MODULES);
    let result = cmd
        .output()
        .map_err(|e| format!("cannot run grub-mkimage: {e}"))?;
    if result.status.success() {
        Ok(())
    } else {
        Err(format!(
            "grub-mkimage -O {PLATFORM} failed ({}): {}",
            result.status,
            String::from_utf8_lossy(&result.stderr).trim()
        ))
    }
}

/// Writes `dir/grub-pvh.elf` unless the one there was made with the same
/// modules and configuration (and, with `refresh`, the current package).
pub fn prepare(dir: &Path, refresh: bool) -> Result<GrubImage, String> {
    let out = dir.join("grub-pvh.elf");
    let stamp = Stamp::of(&out);
    let recipe = recipe();
    let (package, made) = stamp.lookup(&out, &recipe, refresh, || apt::package(PACKAGE))?;
    if made {
        let image = verify(&out)?;
        return Ok(GrubImage {
            elf: out,
            package,
            image,
        });
    }
    stamp.clear();
    let work = dir.join("grub-work");
    let _ = fs::remove_dir_all(&work);
    let member = format!("./usr/lib/grub/{PLATFORM}");
    apt::fetch(&package, &work, &work.join("root"), &[&member])?;
    let cfg = dir.join("grub-pvh-embedded.cfg");
    fs::write(&cfg, EMBEDDED_CFG).map_err(|e| format!("cannot write {}: {e}", cfg.display()))?;
    mkimage(&work.join("root").join(&member[2..]), &cfg, &out)?;
    let image = verify(&out)?;
    let _ = fs::remove_dir_all(&work);
    stamp.write(&package, &recipe)?;
    Ok(GrubImage {
        elf: out,
        package,
        image,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_configuration_greets_and_stops_at_the_prompt() {
        assert!(EMBEDDED_CFG.starts_with(&format!("echo \"{GREETING}\"\n")));
        assert!(EMBEDDED_CFG.contains("unset prefix"));
        assert!(!EMBEDDED_CFG.contains("configfile"));
        for command in ["echo", "halt", "normal"] {
            assert!(MODULES.contains(&command), "{command}");
        }
    }
}
