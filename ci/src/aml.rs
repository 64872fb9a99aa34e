//! `cargo xtask aml`: compiles the ASL sources of the AML reader's
//! firmware-pattern fixtures to the `.aml` files the platform crate's
//! tests read (both are kept in the repository, so the tests need no
//! `iasl`; Debian's `acpica-tools` has it).

use std::fs;
use std::process::Command;

use crate::Workspace;

/// Where the fixtures live.
const DIR: &str = "platform/src/acpi/aml/tests/fixtures";

/// Runs `iasl -p <name> <name>.asl` for every `.asl` in [`DIR`].
pub fn run(ws: &Workspace) -> Result<bool, String> {
    let dir = ws.root().join(DIR);
    let mut sources: Vec<_> = fs::read_dir(&dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "asl"))
        .collect();
    sources.sort();
    for asl in &sources {
        let out = asl.with_extension("");
        let status = Command::new("iasl")
            .arg("-vs")
            .arg("-p")
            .arg(&out)
            .arg(asl)
            .status()
            .map_err(|e| format!("cannot run iasl (apt-get install acpica-tools): {e}"))?;
        if !status.success() {
            return Err(format!("iasl failed on {}", ws.show(asl)));
        }
        println!(
            "aml: {} -> {}",
            ws.show(asl),
            ws.show(&out.with_extension("aml"))
        );
    }
    Ok(true)
}
