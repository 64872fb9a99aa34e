//! `cargo xtask fuzz TARGET --time N`: one fuzz target of `fuzz/` under
//! libFuzzer for N seconds (docs/fuzzing.md), with cargo-fuzz on the
//! nightly toolchain. The committed seeds (`fuzz/corpus/TARGET/`) are read
//! but never written: what the run adds goes to
//! `target/xtask/fuzz/corpus/TARGET/`, a crash to `fuzz/artifacts/TARGET/`.

use std::process::Command;

use crate::cli::FuzzOptions;
use crate::Workspace;

/// Extra libFuzzer options per target: longer inputs where the format
/// needs them, the dictionary of the xenstore target.
fn extra(target: &str) -> &'static [&'static str] {
    match target {
        "insn_decode" => &["-max_len=32"],
        "xenstore_wire" => &[
            "-max_len=12000",
            "-len_control=0",
            "-dict=xenstore_wire.dict",
        ],
        "acpi_aml" | "pciback_ops" | "config_writes" | "elf_loader" | "multiboot" => {
            &["-max_len=4096"]
        }
        _ => &[],
    }
}

/// The targets `fuzz/Cargo.toml` declares (its `[[bin]]` names).
fn targets(manifest: &str) -> Vec<&str> {
    manifest
        .lines()
        .filter_map(|l| l.trim().strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|&n| n != "hv-fuzz")
        .collect()
}

pub fn run(ws: &Workspace, opts: &FuzzOptions) -> Result<bool, String> {
    let dir = ws.root().join("fuzz");
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))
        .map_err(|e| format!("fuzz/Cargo.toml: {e}"))?;
    let known = targets(&manifest);
    if !known.contains(&opts.target.as_str()) {
        return Err(format!(
            "no fuzz target '{}': the targets are {}",
            opts.target,
            known.join(", ")
        ));
    }
    let installed = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        return Err("cargo-fuzz on the nightly toolchain is needed: \
             `rustup toolchain install nightly` and `cargo install cargo-fuzz`"
            .into());
    }
    let work = ws.xtask_dir().join("fuzz/corpus").join(&opts.target);
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let seeds = dir.join("corpus").join(&opts.target);
    println!(
        "fuzz: {} for {} s (seeds {}, new inputs in {})",
        opts.target,
        opts.time,
        ws.show(&seeds),
        ws.show(&work)
    );
    let status = Command::new("cargo")
        .current_dir(&dir)
        .args(["+nightly", "fuzz", "run", &opts.target])
        .arg(&work)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={}", opts.time))
        .args(extra(&opts.target))
        .status()
        .map_err(|e| format!("cargo fuzz: {e}"))?;
    Ok(status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_targets_are_the_bin_names() {
        let manifest = "[package]\nname = \"hv-fuzz\"\n[[bin]]\nname = \"xl_cfg\"\npath = \"x\"\n\
                        [[bin]]\nname = \"multiboot\"\n";
        assert_eq!(targets(manifest), ["xl_cfg", "multiboot"]);
    }

    #[test]
    fn every_declared_target_has_a_seed_corpus() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let manifest = std::fs::read_to_string(root.join("fuzz/Cargo.toml")).unwrap();
        for t in [
            "config_writes",
            "hide_list",
            "xl_cfg",
            "elf_loader",
            "multiboot",
        ] {
            assert!(targets(&manifest).contains(&t), "{t}");
            let seeds = std::fs::read_dir(root.join("fuzz/corpus").join(t)).unwrap();
            assert!(seeds.count() > 0, "{t}");
        }
    }
}
