//! A tiny initramfs: Debian's static busybox, `/dev/console`, and an
//! `/init` script that reports what the guest sees of its hypervisor and
//! powers off. Written as a newc cpio ([`super::cpio`]) and compressed with
//! `gzip -n` (Debian's kernel has `CONFIG_RD_GZIP`), so the file depends only
//! on the busybox version and the script.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::apt;
use super::cpio::{self, Entry, Kind};
use super::Stamp;

/// The package busybox comes from.
const BUSYBOX_PACKAGE: &str = "busybox-static";

/// The applets the script uses, each a symlink to busybox in /bin.
const APPLETS: &[&str] = &[
    "sh", "mount", "cat", "ls", "uname", "poweroff", "sleep", "printf", "dd", "tail", "tr",
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
pub const INIT: &str = r#"#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "init: started"
echo "init: kernel $(uname -r)"
show() {
    if [ -r "$2" ]; then echo "init: $1: $(cat "$2")"; else echo "init: $1: (no $2)"; fi
}
show "hypervisor type" /sys/hypervisor/type
show "hypervisor version" /sys/hypervisor/version/major
show "hypervisor minor" /sys/hypervisor/version/minor
show "hypervisor extra" /sys/hypervisor/version/extra
show "hypervisor features" /sys/hypervisor/properties/features
show "domain uuid" /sys/hypervisor/uuid
# One xenstore request through the xenbus device: type ($1) and path ($2);
# prints the reply's payload with its NULs as spaces. The header is four
# little-endian u32s (type, request id, transaction, length).
xs() {
    exec 3<>/dev/xen/xenbus || return 1
    printf "\\$(printf %03o "$1")\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\$(printf %03o $((${#2} + 1)))\\000\\000\\000%s\\000" "$2" >&3
    dd bs=4096 count=1 <&3 2>/dev/null | tail -c +17 | tr '\000' ' '
    exec 3<&-
}
if [ -c /dev/xen/xenbus ]; then
    domid=$(xs 2 domid)
    echo "init: xenstore domid: $domid"
    echo "init: xenstore name: $(xs 2 name)"
    echo "init: xenstore vm: $(xs 2 vm)"
    echo "init: xenstore home: $(xs 1 /local/domain/${domid% })"
    echo "init: xenstore console: $(xs 1 console)"
else
    echo "init: xenstore: (no /dev/xen/xenbus)"
fi
echo "init: xenbus devices:"
for dev in /sys/bus/xen/devices/*; do
    [ -e "$dev" ] || { echo "init:   (none)"; break; }
    echo "init:   ${dev##*/}: nodename=$(cat "$dev/nodename") devtype=$(cat "$dev/devtype") state=$(cat "$dev/state")"
done
echo "init: powering off"
poweroff -f
echo "init: poweroff returned; sleeping"
while true; do sleep 3600; done
"#;

/// The archive's entries: directories, device node, busybox and its
/// applets, `/init`.
pub fn entries(busybox: Vec<u8>) -> Vec<Entry> {
    let mut entries = vec![
        Entry::dir("bin"),
        Entry::dir("dev"),
        // The kernel opens /dev/console for init before anything is
        // mounted: without this node init would have no output at all.
        Entry::char_device("dev/console", 0o600, 5, 1),
        Entry::dir("proc"),
        Entry::dir("sys"),
        Entry::file("bin/busybox", 0o755, busybox),
    ];
    entries.extend(
        APPLETS
            .iter()
            .map(|applet| Entry::symlink(&format!("bin/{applet}"), "busybox")),
    );
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

/// Decompresses `path` and checks it holds an executable `/init` and
/// `/bin/busybox`.
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
    for needed in ["init", "bin/busybox"] {
        let ok = entries
            .iter()
            .any(|e| e.path == needed && matches!(e.kind, Kind::File(_)) && e.perm & 0o111 != 0);
        if !ok {
            return Err(format!("{}: no executable /{needed}", path.display()));
        }
    }
    Ok(entries.len())
}

/// Writes `dir/initrd.gz` unless the one there was made with this script
/// (and, with `refresh`, the current busybox).
pub fn prepare(dir: &Path, refresh: bool) -> Result<PathBuf, String> {
    let initrd = dir.join("initrd.gz");
    let stamp = Stamp::of(&initrd);
    let (busybox, made) = stamp.lookup(&initrd, INIT, refresh, || apt::package(BUSYBOX_PACKAGE))?;
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
    let archive = cpio::archive(&entries(bytes))?;
    gzip(&archive, &initrd)?;
    verify(&initrd)?;
    let _ = fs::remove_dir_all(&work);
    stamp.write(&busybox, INIT)?;
    Ok(initrd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_prints_the_marker_lines_and_powers_off() {
        assert!(INIT.starts_with("#!/bin/sh\n"));
        assert!(INIT.contains(&format!("echo \"{STARTED}\"")));
        assert!(INIT.contains(&format!("echo \"{POWERING_OFF}\"\npoweroff -f\n")));
    }

    #[test]
    fn every_applet_the_script_runs_is_linked() {
        for word in [
            "mount", "cat", "uname", "poweroff", "sleep", "printf", "dd", "tail", "tr",
        ] {
            assert!(INIT.contains(&format!("{word} ")), "{word}");
            assert!(APPLETS.contains(&word), "{word}");
        }
    }

    #[test]
    fn the_archive_has_console_init_and_busybox_links() {
        let bytes = cpio::archive(&entries(b"\x7fELF".to_vec())).expect("archive");
        let parsed = cpio::parse(&bytes).expect("parse");
        let find = |path: &str| parsed.iter().find(|e| e.path == path).map(|e| &e.kind);
        assert_eq!(find("dev/console"), Some(&Kind::CharDevice(5, 1)));
        assert_eq!(find("bin/sh"), Some(&Kind::Symlink("busybox".into())));
        assert_eq!(find("init"), Some(&Kind::File(INIT.as_bytes().to_vec())));
        // Directories come before their contents.
        let pos = |path: &str| parsed.iter().position(|e| e.path == path);
        assert!(pos("bin") < pos("bin/busybox"));
        assert!(pos("dev") < pos("dev/console"));
    }

    #[test]
    fn gzip_then_verify_round_trips() {
        let dir = std::env::temp_dir().join(format!("ci-initrd-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("initrd.gz");
        let bytes = cpio::archive(&entries(b"\x7fELF".to_vec())).expect("archive");
        gzip(&bytes, &path).expect("gzip");
        assert_eq!(verify(&path), Ok(6 + APPLETS.len() + 1));
        fs::write(&path, b"not gzip").expect("write");
        assert!(verify(&path).is_err());
        let _ = fs::remove_dir_all(&dir);
    }
}
