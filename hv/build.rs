//! Link arguments for the bare-metal `hv` binary only.
//!
//! They must not reach build scripts or host test binaries, so they are
//! emitted here for the `hv` bin target instead of living in rustflags.

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
    ] {
        println!("cargo:rustc-link-arg-bin=hv={arg}");
    }
    println!("cargo:rustc-link-arg-bin=hv=-Wl,-T{dir}/linker.ld");
}
