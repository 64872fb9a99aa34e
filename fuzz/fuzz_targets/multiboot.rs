//! The multiboot1/2 boot information in a machine's memory: the checks are `hv::fuzz::multiboot`'s.
//! The same body replays the seed corpus (`fuzz/corpus/multiboot/`) in
//! `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hv::fuzz::multiboot(data));
