use super::*;
use Source::{Hypervisor as H, Ring as R};

/// Feeds `text` from `from`, returning the lines handed back.
fn feed(c: &mut Console, from: Source, text: &str) -> Vec<String> {
    text.bytes().filter_map(|b| c.byte(from, b)).collect()
}

#[test]
fn a_line_is_handed_back_at_its_newline_and_carriage_returns_are_dropped() {
    let mut c = Console::new(1);
    assert!(feed(&mut c, H, "hel").is_empty());
    assert_eq!(feed(&mut c, H, "lo\r\nwor"), ["hello"]);
    assert_eq!(feed(&mut c, H, "ld\n"), ["world"]);
}

#[test]
fn bytes_that_are_not_printable_show_as_dots() {
    let mut c = Console::new(1);
    assert_eq!(feed(&mut c, H, "a\tb\x1b[0m\x7f \u{e9}\n"), ["a.b.[0m. .."]);
}

#[test]
fn empty_lines_are_not_handed_back() {
    let mut c = Console::new(1);
    assert!(feed(&mut c, H, "\n\r\n\n").is_empty());
    assert_eq!(c.take_line(H), None);
}

#[test]
fn a_long_line_is_cut_at_the_maximum_and_goes_on_in_the_next() {
    let mut c = Console::new(1);
    let long = "x".repeat(LINE_MAX + 5);
    let got = feed(&mut c, H, &long);
    assert_eq!(got, ["x".repeat(LINE_MAX)]);
    // The rest is a line of its own (it repeats no line of the ring).
    assert_eq!(c.take_line(H).as_deref(), Some("xxxxx"));
}

#[test]
fn each_source_assembles_its_own_line() {
    let mut c = Console::new(1);
    assert!(feed(&mut c, H, "from ").is_empty());
    assert!(feed(&mut c, R, "ring ").is_empty());
    assert_eq!(feed(&mut c, H, "e9\n"), ["from e9"]);
    assert_eq!(feed(&mut c, R, "page\n"), ["ring page"]);
}

#[test]
fn lines_written_both_ways_are_handed_back_once() {
    let mut c = Console::new(1);
    let mut got = Vec::new();
    for line in ["boot\n", "Linux version 6\n", "done\n"] {
        got.extend(feed(&mut c, H, line));
        got.extend(feed(&mut c, R, line));
    }
    // The ring can also run ahead of console_io.
    got.extend(feed(&mut c, R, "ring first\n"));
    got.extend(feed(&mut c, H, "ring first\n"));
    assert_eq!(got, ["boot", "Linux version 6", "done", "ring first"]);
}

#[test]
fn a_line_written_twice_the_same_way_is_handed_back_twice() {
    let mut c = Console::new(1);
    assert_eq!(feed(&mut c, R, "tick\ntick\n"), ["tick", "tick"]);
    assert_eq!(feed(&mut c, H, "tock\ntock\n"), ["tock", "tock"]);
}

#[test]
fn a_flushed_partial_line_counts_for_the_dedup() {
    let mut c = Console::new(1);
    assert!(feed(&mut c, H, "no newline").is_empty());
    assert_eq!(c.take_line(H).as_deref(), Some("no newline"));
    assert!(feed(&mut c, R, "no newline\n").is_empty());
}

#[test]
fn a_partial_line_waits_for_its_vcpu_while_another_runs() {
    let mut c = Console::new(2);
    assert!(feed(&mut c, H, "vcpu0 ").is_empty());
    c.switch(0, 1);
    assert_eq!(feed(&mut c, H, "vcpu1\n"), ["vcpu1"]);
    assert!(feed(&mut c, H, "half of 1 ").is_empty());
    c.switch(1, 0);
    assert_eq!(feed(&mut c, H, "again\n"), ["vcpu0 again"]);
    c.switch(0, 1);
    assert_eq!(c.take_line(H).as_deref(), Some("half of 1 "));
}

#[test]
fn the_ring_line_is_the_domains_not_a_vcpus() {
    let mut c = Console::new(2);
    assert!(feed(&mut c, R, "ring ").is_empty());
    c.switch(0, 1);
    assert_eq!(feed(&mut c, R, "line\n"), ["ring line"]);
}

#[test]
fn switching_to_a_vcpu_out_of_range_keeps_the_line() {
    let mut c = Console::new(1);
    assert!(feed(&mut c, H, "kept").is_empty());
    c.switch(0, 7);
    c.switch(7, 0);
    assert_eq!(c.take_line(H).as_deref(), Some("kept"));
}

#[test]
fn log_lines_are_limited_to_a_burst_then_one_a_second_with_the_count() {
    let mut c = Console::new(1);
    let t0 = 5_000_000_000;
    let allowed = (0..LOG_BURST + 3)
        .filter(|&i| c.log_allowed(t0 + u64::from(i)).is_some())
        .count();
    assert_eq!(allowed, LOG_BURST as usize);
    // Within the second: still held back (and counted).
    assert_eq!(c.log_allowed(t0 + LOG_INTERVAL_NS / 2), None);
    assert_eq!(c.log_allowed(t0 + LOG_INTERVAL_NS), Some(4));
    assert_eq!(c.log_allowed(t0 + LOG_INTERVAL_NS + 1), None);
}
