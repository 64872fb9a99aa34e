//! Guest config reads and writes of every size at any offset against an
//! assigned function's register-descriptor table: the checks are
//! `pciback::fuzz::config_writes`'s. The same body replays the seed corpus
//! (`fuzz/corpus/config_writes/`) in `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| pciback::fuzz::config_writes(data));
