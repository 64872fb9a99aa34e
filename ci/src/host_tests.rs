//! The host tests: `cargo test --no-fail-fast` over the default members (the host crates;
//! the bare-metal images are never built here), counted from its
//! `test result:` lines.

use std::fs::{self, File};
use std::process::{Command, Stdio};

use crate::Workspace;

/// Tests counted so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
    }
}

/// The counts of one `test result: ok. 3 passed; 1 failed; ...` line.
pub fn parse_result_line(line: &str) -> Option<Counts> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let (_verdict, fields) = rest.split_once(". ")?;
    let mut passed = None;
    let mut failed = None;
    for field in fields.split(';') {
        let mut words = field.split_whitespace();
        let (Some(number), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(number) = number.parse::<usize>() else {
            continue;
        };
        match what {
            "passed" => passed = Some(number),
            "failed" => failed = Some(number),
            _ => {}
        }
    }
    Some(Counts {
        passed: passed?,
        failed: failed?,
    })
}

/// The sum over every `test result:` line of `output`.
pub fn sum(output: &str) -> Counts {
    let mut total = Counts::default();
    for counts in output.lines().filter_map(parse_result_line) {
        total += counts;
    }
    total
}

/// Runs `cargo test` (every test binary, even after a failing one) with
/// its output in target/xtask/host-tests.log, shown
/// in full when it fails. A failure with no failed test counted (a build
/// error, a crashed test binary) counts as one failure.
pub fn run(ws: &Workspace) -> Counts {
    let log = ws.xtask_dir().join("host-tests.log");
    println!("host tests: cargo test (output in {})", ws.show(&log));
    let started = fs::create_dir_all(ws.xtask_dir())
        .and_then(|()| File::create(&log))
        .and_then(|out| {
            let err = out.try_clone()?;
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            Command::new(cargo)
                .args(["test", "--no-fail-fast"])
                .current_dir(ws.root())
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .status()
        });
    let status = match started {
        Ok(status) => status,
        Err(e) => {
            println!("host tests: cannot run cargo test: {e}");
            return Counts {
                passed: 0,
                failed: 1,
            };
        }
    };
    let output = fs::read(&log)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let mut counts = sum(&output);
    if !status.success() {
        print!("{output}");
        if counts.failed == 0 {
            println!("host tests: cargo test failed ({status}) with no failed test: counted as one failure");
            counts.failed = 1;
        }
    }
    println!(
        "host tests: {} ({} passed, {} failed)",
        if counts.failed == 0 { "ok" } else { "FAILED" },
        counts.passed,
        counts.failed
    );
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ok_line() {
        assert_eq!(
            parse_result_line(
                "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s"
            ),
            Some(Counts {
                passed: 12,
                failed: 0
            })
        );
    }

    #[test]
    fn a_failed_line() {
        assert_eq!(
            parse_result_line(
                "test result: FAILED. 7 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.20s"
            ),
            Some(Counts {
                passed: 7,
                failed: 2
            })
        );
    }

    #[test]
    fn other_lines_are_not_results() {
        for line in [
            "test cli::tests::iso_options ... ok",
            "running 3 tests",
            "test result: garbage",
            "   Doc-tests pciback",
            "",
        ] {
            assert_eq!(parse_result_line(line), None, "{line}");
        }
    }

    #[test]
    fn every_test_binary_is_added_up() {
        let output = "\
running 2 tests
test a ... ok
test b ... ok

test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

     Running unittests src/lib.rs (target/debug/deps/pciback-0123)

running 4 tests
test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.02s

   Doc-tests vmm_glue

running 0 tests

test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";
        assert_eq!(
            sum(output),
            Counts {
                passed: 5,
                failed: 1
            }
        );
    }
}
