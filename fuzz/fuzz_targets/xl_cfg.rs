//! A domain configuration file (xl.cfg syntax) for `hv::domcfg::parse`: the checks are `hv::fuzz::xl_cfg`'s.
//! The same body replays the seed corpus (`fuzz/corpus/xl_cfg/`) in
//! `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hv::fuzz::xl_cfg(data));
