//! Debian's kernel as a PVH image: `/boot/vmlinuz-*` of the current
//! `linux-image-6.1.0-N-amd64` package is a bzImage (a PE/COFF stub, the
//! real-mode setup and a self-decompressing payload). PVH loaders need the
//! ELF inside it (`vmlinux`, with Xen's PHYS32_ENTRY note), which Debian
//! compresses with xz: the payload is cut out at its xz magic and
//! decompressed with the `xz` command. The modules the initramfs needs come
//! out of the same package ([`super::modules`]), in the same download.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::apt::{self, Package};
use super::elf::{self, Class, PvhImage};
use super::modules::{self, Modules};
use super::Stamp;

/// The start of an xz stream: `FD 37 7A 58 5A 00` (".7zXZ\0").
pub const XZ_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0];

/// The kernel, ready to boot.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// The uncompressed ELF64 image.
    pub vmlinux: PathBuf,
    /// The package it came from.
    pub package: Package,
    pub image: PvhImage,
    /// Its modules that `/init` loads.
    pub modules: Modules,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Where the xz-compressed kernel starts in a bzImage.
///
/// The boot protocol's setup header (`HdrS` at 0x202) gives the payload's
/// offset: `(setup_sects + 1) * 512 + payload_offset` (0x248). When that
/// does not point at an xz stream, the first xz magic in the file is taken.
pub fn xz_offset(bzimage: &[u8]) -> Option<usize> {
    let from_header = (bzimage.get(0x202..0x206) == Some(b"HdrS".as_slice()))
        .then(|| {
            let sects = match bzimage.get(0x1f1).copied()? {
                0 => 4,
                n => usize::from(n),
            };
            let offset = usize::try_from(u32_at(bzimage, 0x248)?).ok()?;
            Some((sects + 1) * 512 + offset)
        })
        .flatten()
        .filter(|&at| bzimage.get(at..at + XZ_MAGIC.len()) == Some(XZ_MAGIC.as_slice()));
    from_header.or_else(|| find_xz_magic(bzimage))
}

/// The offset of the first xz magic in `b`.
pub fn find_xz_magic(b: &[u8]) -> Option<usize> {
    b.windows(XZ_MAGIC.len()).position(|w| w == XZ_MAGIC)
}

/// Decompresses the xz stream at the start of `payload` into `out`. The
/// bytes after the stream (the decompressed size the decompressor stub
/// reads, a signature) are ignored (`--single-stream`).
fn unxz(payload: &[u8], work: &Path, out: &Path) -> Result<(), String> {
    let packed = work.join("payload.xz");
    fs::write(&packed, payload).map_err(|e| format!("cannot write {}: {e}", packed.display()))?;
    let target = File::create(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let status = Command::new("xz")
        .args(["--decompress", "--stdout", "--single-stream"])
        .arg(&packed)
        .stdout(Stdio::from(target))
        .status()
        .map_err(|e| format!("cannot run xz: {e}"))?;
    let _ = fs::remove_file(&packed);
    if status.success() {
        Ok(())
    } else {
        let _ = fs::remove_file(out);
        Err(format!(
            "xz could not decompress the kernel payload ({status})"
        ))
    }
}

/// Checks that `path` is an ELF64 PVH kernel.
pub fn verify(path: &Path) -> Result<PvhImage, String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let image = elf::pvh_image(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    if image.class != Class::Elf64 {
        return Err(format!(
            "{}: {} kernel, expected ELF64",
            path.display(),
            image.class
        ));
    }
    Ok(image)
}

/// The vmlinuz under `root/boot` (the package ships exactly one).
fn find_vmlinuz(root: &Path) -> Result<PathBuf, String> {
    let boot = root.join("boot");
    fs::read_dir(&boot)
        .map_err(|e| format!("cannot list {}: {e}", boot.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .ok_or_else(|| format!("no vmlinuz-* in {}", boot.display()))
}

/// Downloads the current kernel package and writes `dir/vmlinux` and
/// `dir/modules/`, unless the ones there already come from it (or, without
/// `refresh`, from any version): then they are only checked. The package
/// is downloaded at most once.
pub fn prepare(dir: &Path, refresh: bool) -> Result<Kernel, String> {
    let vmlinux = dir.join("vmlinux");
    let stamp = Stamp::of(&vmlinux);
    let (package, made) = stamp.lookup(&vmlinux, "", refresh, apt::kernel_package)?;
    let made_modules = if made {
        modules::made(dir, &package)
    } else {
        None
    };
    if let (true, Some(modules)) = (made, &made_modules) {
        let image = verify(&vmlinux)?;
        return Ok(Kernel {
            vmlinux,
            package,
            image,
            modules: modules.clone(),
        });
    }
    let work = dir.join("linux-work");
    let _ = fs::remove_dir_all(&work);
    let deb = apt::download(&package, &work.join("downloads"))?;
    if !made {
        stamp.clear();
        make_vmlinux(&deb, &work, &vmlinux, &package)?;
        stamp.write(&package, "")?;
    }
    let image = verify(&vmlinux)?;
    let modules = match made_modules {
        Some(m) => m,
        None => {
            let m = modules::make(&deb, &work, dir, &package)?;
            println!(
                "guests: {}: modules for {}: {}",
                package.name,
                m.release,
                m.files().join(" ")
            );
            m
        }
    };
    let _ = fs::remove_dir_all(&work);
    Ok(Kernel {
        vmlinux,
        package,
        image,
        modules,
    })
}

/// Writes `vmlinux` from the bzImage in `deb`.
fn make_vmlinux(deb: &Path, work: &Path, vmlinux: &Path, package: &Package) -> Result<(), String> {
    let root = work.join("root");
    apt::extract(deb, &root, &["./boot/vmlinuz-*"])?;
    let vmlinuz = find_vmlinuz(&root)?;
    let bzimage =
        fs::read(&vmlinuz).map_err(|e| format!("cannot read {}: {e}", vmlinuz.display()))?;
    let offset = xz_offset(&bzimage).ok_or_else(|| {
        format!(
            "{}: no xz stream (FD 37 7A 58 5A 00) in the bzImage; is the kernel not xz-compressed?",
            vmlinuz.display()
        )
    })?;
    println!(
        "guests: {}: xz payload at byte {offset:#x} of {}",
        package.name,
        bzimage.len()
    );
    unxz(&bzimage[offset..], work, vmlinux)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake bzImage: `setup_sects` sectors of setup after the boot
    /// sector, the header fields, and an xz magic at the payload offset.
    fn bzimage(setup_sects: u8, payload_offset: u32, magic_at: usize) -> Vec<u8> {
        let mut b = vec![0u8; magic_at + 64];
        b[0x1f1] = setup_sects;
        b[0x202..0x206].copy_from_slice(b"HdrS");
        b[0x248..0x24c].copy_from_slice(&payload_offset.to_le_bytes());
        b[magic_at..magic_at + 6].copy_from_slice(&XZ_MAGIC);
        b
    }

    #[test]
    fn the_magic_is_found_where_it_starts() {
        let mut b = vec![0x55u8; 100];
        b[37..43].copy_from_slice(&XZ_MAGIC);
        assert_eq!(find_xz_magic(&b), Some(37));
        assert_eq!(find_xz_magic(&XZ_MAGIC), Some(0));
        // Five of six bytes are not enough.
        assert_eq!(find_xz_magic(&XZ_MAGIC[..5]), None);
        assert_eq!(find_xz_magic(&[0xfd, b'7', b'z', b'X', b'Z', 1]), None);
    }

    #[test]
    fn the_setup_header_gives_the_payload_offset() {
        // (39 + 1) * 512 + 0x2cc, as in Debian's 6.1 kernels.
        let b = bzimage(39, 0x2cc, 40 * 512 + 0x2cc);
        assert_eq!(xz_offset(&b), Some(21_196));
        // setup_sects 0 means 4.
        let b = bzimage(0, 0x10, 5 * 512 + 0x10);
        assert_eq!(xz_offset(&b), Some(2576));
    }

    #[test]
    fn a_header_pointing_elsewhere_falls_back_to_the_first_magic() {
        let mut b = bzimage(1, 0x100, 2000);
        b[0x248..0x24c].copy_from_slice(&0x7777u32.to_le_bytes());
        assert_eq!(xz_offset(&b), Some(2000));
        assert_eq!(xz_offset(&[0u8; 4096]), None);
    }

    #[test]
    fn unxz_undoes_xz_and_ignores_what_follows_the_stream() {
        let dir = std::env::temp_dir().join(format!("ci-unxz-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let plain = dir.join("plain");
        fs::write(&plain, b"an ELF, supposedly").expect("write");
        let packed = Command::new("xz")
            .args(["--stdout", "--check=crc32"])
            .arg(&plain)
            .output()
            .expect("xz");
        let mut payload = packed.stdout;
        payload.extend([0x12, 0x34, 0x56, 0x00]);
        let out = dir.join("out");
        unxz(&payload, &dir, &out).expect("unxz");
        assert_eq!(fs::read(&out).expect("read"), b"an ELF, supposedly");
        let _ = fs::remove_dir_all(&dir);
    }
}
