//! Building the bare-metal images: `hv` and the guest images of `firmware`.
//!
//! They have their own cargo invocations and target directory: built
//! together with the host crates, dev-dependency features would unify into
//! the kernel. The codegen flags go through `CARGO_ENCODED_RUSTFLAGS` with an
//! explicit `--target`, so they reach the kernel's crates but not build
//! scripts; any `RUSTFLAGS` of the caller is removed (it would replace
//! them). The link arguments come from `hv/build.rs` and `firmware/build.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Workspace;

/// The target triple: the host's, with the precompiled `core` and `alloc`.
pub const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Codegen flags for code that runs without an OS below it.
pub const RUSTFLAGS: [&str; 3] = [
    "-Crelocation-model=static",
    "-Cno-redzone=yes",
    "-Cforce-frame-pointers=yes",
];

/// How the image's build changes the `release` profile (cargo `--config`
/// overrides, for the `hv` build only: the guest images and the host crates
/// keep the profile of Cargo.toml, and the image keeps its path). The
/// hypervisor's code, read-only data and data must fit in 512 KiB
/// (`cargo xtask test` checks): optimised for size, as one LTO unit so
/// that the crates' code is optimised together and unused code removed.
/// docs/benchmarks.md has the sizes and latencies behind the choice.
pub const PROFILE: [&str; 3] = [
    "profile.release.opt-level=\"z\"",
    "profile.release.lto=\"fat\"",
    "profile.release.codegen-units=1",
];

/// What the image's build adds to [`RUSTFLAGS`], LLVM options that trade
/// code size against speed (docs/benchmarks.md has the measurements):
/// - the inliner's threshold at 35: opt-level z's 5 leaves `core`'s slice
///   and iterator helpers out of line on the exit path (a VMX hypercall
///   round trip took 1107 Bochs cycles instead of 979) and is 5 KiB larger;
/// - jump tables only for 16 cases or more: an entry is 8 bytes with the
///   static relocation model (4 KiB less).
///
/// LLVM's machine outliner is not used: it saves 20 KiB, but the calls it
/// puts on the exit path made a config read through pcifront 18% slower
/// under QEMU, where every call and return is a jump between translated
/// blocks.
pub const IMAGE_RUSTFLAGS: [&str; 2] = [
    "-Cllvm-args=-inline-threshold=35",
    "-Cllvm-args=-min-jump-table-entries=16",
];

/// What the guest images add: the kernel code model, so that every
/// absolute address is a sign-extended 32-bit immediate. The PV guest is
/// linked at 0xffffffff80100000 (Xen's PV `VIRT_BASE` as Linux uses it),
/// where the small model's zero-extended immediates cannot reach; the PVH
/// guests at 1 MiB fit either way. (Only the firmware build gets it: its
/// crates land beside the image's in the same target directory under
/// their own hashes.)
pub const GUEST_RUSTFLAGS: [&str; 1] = ["-Ccode-model=kernel"];

/// [`RUSTFLAGS`] and `more` in the form of `CARGO_ENCODED_RUSTFLAGS`
/// (0x1f-separated).
fn encoded_with(more: &[&str]) -> String {
    RUSTFLAGS
        .iter()
        .chain(more)
        .copied()
        .collect::<Vec<_>>()
        .join("\x1f")
}

/// [`RUSTFLAGS`] and [`IMAGE_RUSTFLAGS`] in that form.
pub fn encoded_image_rustflags() -> String {
    encoded_with(&IMAGE_RUSTFLAGS)
}

/// [`RUSTFLAGS`] and [`GUEST_RUSTFLAGS`] in that form.
pub fn encoded_guest_rustflags() -> String {
    encoded_with(&GUEST_RUSTFLAGS)
}

/// The target directory of the bare-metal build.
pub fn target_dir(ws: &Workspace) -> PathBuf {
    ws.root().join("target/metal")
}

/// Where the image lands.
pub fn image_path(ws: &Workspace) -> PathBuf {
    target_dir(ws).join(TARGET).join("release/hv")
}

/// The target directory of the test scenarios' image (the same build
/// with the `test-hooks` feature: its own directory, so that neither image
/// replaces the other).
pub fn hooks_target_dir(ws: &Workspace) -> PathBuf {
    ws.root().join("target/metal-hooks")
}

/// Where the test scenarios' image lands.
pub fn hooks_image_path(ws: &Workspace) -> PathBuf {
    hooks_target_dir(ws).join(TARGET).join("release/hv")
}

/// The guest images (binaries of the `firmware` crate).
/// One per file in `firmware/src/bin/`, sorted.
pub fn guest_names(ws: &Workspace) -> Result<Vec<String>, String> {
    let dir = ws.root.join("firmware/src/bin");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", ws.show(&dir)))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "rs").then(|| p.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Where guest image `name` lands.
pub fn guest_path(ws: &Workspace, name: &str) -> PathBuf {
    target_dir(ws).join(TARGET).join("release").join(name)
}

/// `cargo build <selection> --release` for bare metal with `rustflags`
/// (encoded).
fn bare_metal_cargo(ws: &Workspace, selection: &[&str], rustflags: String) -> Command {
    bare_metal_cargo_in(ws, &target_dir(ws), selection, rustflags)
}

/// [`bare_metal_cargo`] into target directory `dir`.
fn bare_metal_cargo_in(
    ws: &Workspace,
    dir: &Path,
    selection: &[&str],
    rustflags: String,
) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(ws.root())
        .arg("build")
        .args(selection)
        .args(["--release", "--target", TARGET])
        .arg("--target-dir")
        .arg(dir)
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags)
        .env_remove("RUSTFLAGS");
    cmd
}

/// The cargo command that builds the image.
pub fn command(ws: &Workspace) -> Command {
    image_command(ws, &target_dir(ws), &["-p", "hv", "--bin", "hv"])
}

/// The image's cargo command into `dir` with `selection`.
fn image_command(ws: &Workspace, dir: &Path, selection: &[&str]) -> Command {
    let mut cmd = bare_metal_cargo_in(ws, dir, selection, encoded_image_rustflags());
    for setting in PROFILE {
        cmd.args(["--config", setting]);
    }
    cmd
}

/// The cargo command that builds the guest images.
pub fn guests_command(ws: &Workspace) -> Command {
    bare_metal_cargo(ws, &["-p", "firmware", "--bins"], encoded_guest_rustflags())
}

/// Runs a bare-metal build of `what` and checks that `outputs` exist.
fn run(mut cmd: Command, what: &str, outputs: &[PathBuf]) -> Result<(), String> {
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building {what} failed ({status})"));
    }
    match outputs.iter().find(|p| !p.is_file()) {
        Some(missing) => Err(format!(
            "cargo built {what} but {} is missing",
            missing.display()
        )),
        None => Ok(()),
    }
}

/// Builds the test scenarios' image: the image with the `test-hooks`
/// feature (the `debug.*` options), which only scenarios boot. Returns its
/// path.
pub fn build_hooks(ws: &Workspace) -> Result<PathBuf, String> {
    let image = hooks_image_path(ws);
    println!(
        "build: hv with the test hooks (feature test-hooks, otherwise the same) -> {}",
        ws.show(&image)
    );
    let selection = ["-p", "hv", "--bin", "hv", "--features", "test-hooks"];
    let cmd = image_command(ws, &hooks_target_dir(ws), &selection);
    run(cmd, "hv with the test hooks", std::slice::from_ref(&image))?;
    Ok(image)
}

/// Builds the image and the guest images; returns the image's path.
pub fn build(ws: &Workspace) -> Result<PathBuf, String> {
    let image = image_path(ws);
    println!(
        "build: hv for bare metal ({TARGET}, release with {}, {} {}) -> {}",
        PROFILE
            .map(|s| s.trim_start_matches("profile.release."))
            .join(" "),
        RUSTFLAGS.join(" "),
        IMAGE_RUSTFLAGS.join(" "),
        ws.show(&image)
    );
    run(command(ws), "hv", std::slice::from_ref(&image))?;
    build_guests(ws)?;
    Ok(image)
}

/// Builds the guest images and returns their paths, in [`guest_names`]
/// order.
pub fn build_guests(ws: &Workspace) -> Result<Vec<PathBuf>, String> {
    let names = guest_names(ws)?;
    let guests: Vec<PathBuf> = names.iter().map(|g| guest_path(ws, g)).collect();
    println!(
        "build: guests {} for bare metal (also {}) -> {}",
        names.join(", "),
        GUEST_RUSTFLAGS.join(" "),
        ws.show(&target_dir(ws).join(TARGET).join("release"))
    );
    run(guests_command(ws), "the guest images", &guests)?;
    Ok(guests)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn flags_are_joined_with_unit_separators() {
        assert_eq!(
            encoded_with(&[]),
            "-Crelocation-model=static\u{1f}-Cno-redzone=yes\u{1f}-Cforce-frame-pointers=yes"
        );
    }

    #[test]
    fn image_flags_add_the_llvm_options() {
        assert_eq!(
            encoded_image_rustflags(),
            format!(
                "{}\u{1f}-Cllvm-args=-inline-threshold=35\u{1f}-Cllvm-args=-min-jump-table-entries=16",
                encoded_with(&[])
            )
        );
    }

    #[test]
    fn guest_flags_add_the_kernel_code_model() {
        assert_eq!(
            encoded_guest_rustflags(),
            format!("{}\u{1f}-Ccode-model=kernel", encoded_with(&[]))
        );
    }

    #[test]
    fn the_build_has_its_own_target_dir_and_no_rustflags() {
        let ws = Workspace {
            root: PathBuf::from("/w"),
        };
        let cmd = command(&ws);
        let args: Vec<&OsStr> = cmd.get_args().collect();
        assert_eq!(
            args,
            [
                "build",
                "-p",
                "hv",
                "--bin",
                "hv",
                "--release",
                "--target",
                "x86_64-unknown-linux-gnu",
                "--target-dir",
                "/w/target/metal",
                "--config",
                "profile.release.opt-level=\"z\"",
                "--config",
                "profile.release.lto=\"fat\"",
                "--config",
                "profile.release.codegen-units=1"
            ]
        );
        let envs: Vec<_> = cmd.get_envs().collect();
        assert!(envs.contains(&(OsStr::new("RUSTFLAGS"), None)));
        assert!(envs.iter().any(|(k, v)| *k == "CARGO_ENCODED_RUSTFLAGS"
            && v.is_some_and(|v| v == OsStr::new(&encoded_image_rustflags()))));
        assert_eq!(
            image_path(&ws),
            PathBuf::from("/w/target/metal/x86_64-unknown-linux-gnu/release/hv")
        );
    }

    #[test]
    fn guests_are_built_like_the_image_in_the_same_target_dir() {
        let ws = Workspace {
            root: PathBuf::from("/w"),
        };
        let cmd = guests_command(&ws);
        let args: Vec<&OsStr> = cmd.get_args().collect();
        assert_eq!(
            args,
            [
                "build",
                "-p",
                "firmware",
                "--bins",
                "--release",
                "--target",
                "x86_64-unknown-linux-gnu",
                "--target-dir",
                "/w/target/metal"
            ]
        );
        let envs: Vec<_> = cmd.get_envs().collect();
        assert!(envs.contains(&(OsStr::new("RUSTFLAGS"), None)));
        assert!(envs.iter().any(|(k, v)| *k == "CARGO_ENCODED_RUSTFLAGS"
            && v.is_some_and(|v| v == OsStr::new(&encoded_guest_rustflags()))));
        assert_eq!(
            guest_path(&ws, "hello"),
            PathBuf::from("/w/target/metal/x86_64-unknown-linux-gnu/release/hello")
        );
    }
}
