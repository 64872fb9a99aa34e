//! An ELF image for the PVH and PV loaders (headers, notes, load plans): the checks are `hv::fuzz::elf_loader`'s.
//! The same body replays the seed corpus (`fuzz/corpus/elf_loader/`) in
//! `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hv::fuzz::elf_loader(data));
