//! Guest config reads and writes of every size at any offset against an
//! assigned function's register-descriptor table: the checks are
//! `pciback::fuzz::config_writes`'s. The same body replays the seed corpus
//! (`fuzz/corpus/config_writes/`) in `cargo test`.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pciback::fuzz::{config_writes_from, ConfigStart};

/// The assigned function each selector byte starts from, made once (it is
/// the same for every input) and copied for each.
static STARTS: OnceLock<Vec<ConfigStart>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some((&sel, script)) = data.split_first() else {
        return;
    };
    let starts = STARTS.get_or_init(|| (0..=255).map(ConfigStart::new).collect());
    config_writes_from(starts[usize::from(sel)].clone(), script);
});
