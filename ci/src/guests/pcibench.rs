//! Building `pcibench` (the `guest-tools` crate) for the initramfs: a
//! static binary for `x86_64-unknown-linux-gnu` (`+crt-static`, symbols
//! stripped), in its own target directory so that its flags never mix with
//! the host crates' build. The codegen flags go through
//! `CARGO_ENCODED_RUSTFLAGS` with an explicit `--target` (they reach only
//! the target's crates), as `crate::metal` does.

use std::path::PathBuf;
use std::process::Command;

use crate::metal::TARGET;
use crate::Workspace;

/// The flags of a static binary without symbols.
pub const RUSTFLAGS: [&str; 2] = ["-Ctarget-feature=+crt-static", "-Cstrip=symbols"];

/// The target directory of the guest tools' build.
pub fn target_dir(ws: &Workspace) -> PathBuf {
    ws.root().join("target/guest-tools")
}

/// Where the binary lands.
pub fn path(ws: &Workspace) -> PathBuf {
    target_dir(ws).join(TARGET).join("release/pcibench")
}

/// The cargo command that builds it.
pub fn command(ws: &Workspace) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(ws.root())
        .args(["build", "-p", "guest-tools", "--bin", "pcibench"])
        .args(["--release", "--target", TARGET])
        .arg("--target-dir")
        .arg(target_dir(ws))
        .env("CARGO_ENCODED_RUSTFLAGS", RUSTFLAGS.join("\x1f"))
        .env_remove("RUSTFLAGS");
    cmd
}

/// Builds `pcibench` (a no-op when it is up to date) and returns its path.
pub fn build(ws: &Workspace) -> Result<PathBuf, String> {
    let out = path(ws);
    let status = command(ws)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building pcibench failed ({status})"));
    }
    if !out.is_file() {
        return Err(format!(
            "cargo built pcibench but {} is missing",
            out.display()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn pcibench_is_built_static_in_its_own_target_dir() {
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
                "guest-tools",
                "--bin",
                "pcibench",
                "--release",
                "--target",
                "x86_64-unknown-linux-gnu",
                "--target-dir",
                "/w/target/guest-tools"
            ]
        );
        let envs: Vec<_> = cmd.get_envs().collect();
        assert!(envs.contains(&(OsStr::new("RUSTFLAGS"), None)));
        assert!(envs.contains(&(
            OsStr::new("CARGO_ENCODED_RUSTFLAGS"),
            Some(OsStr::new(
                "-Ctarget-feature=+crt-static\u{1f}-Cstrip=symbols"
            ))
        )));
        assert_eq!(
            path(&ws),
            PathBuf::from("/w/target/guest-tools/x86_64-unknown-linux-gnu/release/pcibench")
        );
    }
}
