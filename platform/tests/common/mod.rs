//! What the fixture tests share: reading a captured table.

use std::path::PathBuf;

/// The table `sig` of QEMU machine `machine`, as `cargo xtask
/// acpi-fixtures` captured it under `tests/fixtures/`.
pub fn table(machine: &str, sig: &str) -> Vec<u8> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "fixtures",
        machine,
        &format!("{sig}.bin"),
    ]
    .iter()
    .collect();
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "fixture {} missing ({e}); run `cargo xtask acpi-fixtures`",
            path.display()
        )
    })
}
