//! A `pciback.hide=` value, and the same bytes as the hypervisor's command line: the checks are `hv::fuzz::hide_list`'s.
//! The same body replays the seed corpus (`fuzz/corpus/hide_list/`) in
//! `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hv::fuzz::hide_list(data));
