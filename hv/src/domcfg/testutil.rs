//! Helpers shared by the tests: parse a file that must succeed or must fail,
//! with or without the two lines every valid file needs.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use vmm_glue::Sbdf;

use super::{parse, DomainConfig, PciAssignment};

/// The two lines every valid file needs.
pub(super) const BASE: &str = "name = \"g\"\nkernel = \"k.elf\"\n";

pub(super) fn config_and_warnings(text: &str) -> (DomainConfig, Vec<String>) {
    match parse("g.cfg", text) {
        Ok((c, w)) => (c, w.iter().map(ToString::to_string).collect()),
        Err(e) => panic!("unexpected errors: {:#?}", messages(&e)),
    }
}

pub(super) fn config(text: &str) -> DomainConfig {
    let (c, w) = config_and_warnings(text);
    assert!(w.is_empty(), "unexpected warnings: {w:#?}");
    c
}

pub(super) fn messages<T: ToString>(list: &[T]) -> Vec<String> {
    list.iter().map(ToString::to_string).collect()
}

pub(super) fn errors(text: &str) -> Vec<String> {
    match parse("g.cfg", text) {
        Ok(c) => panic!("expected errors, got {c:#?}"),
        Err(e) => messages(&e),
    }
}

/// The errors of `BASE` followed by `extra`.
pub(super) fn errors_with_base(extra: &str) -> Vec<String> {
    errors(&(String::from(BASE) + extra))
}

pub(super) fn with_base(extra: &str) -> DomainConfig {
    config(&(String::from(BASE) + extra))
}

fn sbdf(s: &str) -> Sbdf {
    s.parse().unwrap()
}

pub(super) fn plain(s: &str) -> PciAssignment {
    PciAssignment {
        sbdf: sbdf(s),
        permissive: false,
        msitranslate: false,
        seize: false,
        power_mgmt: false,
        rdm_policy_strict: None,
    }
}
