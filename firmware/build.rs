//! Link arguments for the guest images (the `firmware` binaries) only.
//!
//! They must not reach build scripts or the library, so they are emitted for
//! the bin targets here instead of living in rustflags. `--undefined` pulls
//! the runtime's entry object (the PVH note, the 32-bit entry, the GDT) out
//! of the library archive: nothing in a guest's own code refers to it.

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed=linker.ld");
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-Wl,--build-id=none",
        "-Wl,-z,max-page-size=0x1000",
        "-Wl,-z,norelro",
        "-Wl,--no-dynamic-linker",
        "-Wl,--gc-sections",
        "-Wl,--undefined=pvh_start32",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rustc-link-arg-bins=-Wl,-T{dir}/linker.ld");
}
