//! Link arguments for the guest images (the `firmware` binaries) only.
//!
//! They must not reach build scripts or the library, so they are emitted for
//! the bin targets here instead of living in rustflags. A binary whose name
//! starts with `pv_` is a 64-bit PV guest and links with `linker-pv.ld`;
//! every other one is a PVH guest and links with `linker.ld`, with
//! `--undefined` pulling the PVH entry object (the PVH note, the 32-bit
//! entry, the GDT) out of the library archive: nothing in a guest's own code
//! refers to it. (A PV guest's own notes refer to its entry.)

use std::path::Path;

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed=linker.ld");
    println!("cargo:rerun-if-changed=linker-pv.ld");
    println!("cargo:rerun-if-changed=src/bin");
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-Wl,--build-id=none",
        "-Wl,-z,max-page-size=0x1000",
        "-Wl,-z,norelro",
        "-Wl,--no-dynamic-linker",
        "-Wl,--gc-sections",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    for bin in bins(&Path::new(&dir).join("src/bin")) {
        if bin.starts_with("pv_") {
            println!("cargo:rustc-link-arg-bin={bin}=-Wl,-T{dir}/linker-pv.ld");
        } else {
            println!("cargo:rustc-link-arg-bin={bin}=-Wl,--undefined=pvh_start32");
            println!("cargo:rustc-link-arg-bin={bin}=-Wl,-T{dir}/linker.ld");
        }
    }
}

/// The binaries: one per `src/bin/*.rs`.
fn bins(dir: &Path) -> Vec<String> {
    let entries = std::fs::read_dir(dir).expect("firmware/src/bin is readable");
    let mut names: Vec<String> = entries
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "rs").then(|| p.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    names.sort();
    names
}
