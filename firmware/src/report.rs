//! Test results in a form a runner can read off the console:
//!
//! ```text
//! [test] <name>: PASS
//! [test] <name>: FAIL
//! [test] <name>: SKIP (<why>)
//! [test] summary: <N> passed, <M> failed
//! ```
//!
//! [`finish`] powers the guest off when nothing failed and crashes it
//! otherwise, so the shutdown reason alone tells the verdict too.

use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::power::{shutdown, ShutdownReason};
use crate::println;

static PASSED: AtomicU32 = AtomicU32::new(0);
static FAILED: AtomicU32 = AtomicU32::new(0);

/// Records and prints one result; returns `ok`.
pub fn check(name: &str, ok: bool) -> bool {
    let counter = if ok { &PASSED } else { &FAILED };
    counter.fetch_add(1, Ordering::Relaxed);
    println!("[test] {name}: {}", if ok { "PASS" } else { "FAIL" });
    ok
}

/// [`check`] that `got == want`, printing both values first when they
/// differ.
pub fn check_eq<T: PartialEq + fmt::Debug>(name: &str, got: T, want: T) -> bool {
    let ok = got == want;
    if !ok {
        println!("  {name}: got {got:?}, expected {want:?}");
    }
    check(name, ok)
}

/// Failed checks so far.
pub fn failed() -> u32 {
    FAILED.load(Ordering::Relaxed)
}

/// Prints a check that does not apply here; it counts neither way.
pub fn skip(name: &str, why: &str) {
    println!("[test] {name}: SKIP ({why})");
}

/// Prints the summary and ends the guest: poweroff if nothing failed,
/// crash otherwise.
pub fn finish() -> ! {
    let failed = summary();
    shutdown(if failed == 0 {
        ShutdownReason::Poweroff
    } else {
        ShutdownReason::Crash
    })
}

/// Prints the summary line and returns the number of failed checks, for a
/// guest that ends some other way than [`finish`].
pub fn summary() -> u32 {
    let passed = PASSED.load(Ordering::Relaxed);
    let failed = FAILED.load(Ordering::Relaxed);
    println!("[test] summary: {passed} passed, {failed} failed");
    failed
}

/// Rows an attack [`Table`] keeps unless its type says otherwise.
pub const MAX_CASES: usize = 48;

/// Bytes of one case's outcome kept for the table.
const OUTCOME_LEN: usize = 40;

/// The cases of one attack class (e.g. `attack-config`): each is printed
/// as a [`check`] named `CLASS: CASE: OUTCOME` when it is tried, and
/// [`Table::print`] ends the class with `CLASS: N cases, M as expected` and
/// one Markdown row `| CASE | OUTCOME | ok |` per case (`WRONG` where not;
/// the outcome cut at 40 bytes). The outcome is any text: a fixed word or
/// the `format_args!` of what was observed.
#[allow(missing_debug_implementations)]
pub struct Table<const N: usize = MAX_CASES> {
    class: &'static str,
    rows: [(&'static str, [u8; OUTCOME_LEN], u8, bool); N],
    len: usize,
}

impl<const N: usize> Table<N> {
    /// An empty table for `class`.
    pub const fn new(class: &'static str) -> Self {
        Table {
            class,
            rows: [("", [0; OUTCOME_LEN], 0, false); N],
            len: 0,
        }
    }

    /// Records and prints one case: what was observed and whether it is
    /// what is required. Returns `ok`.
    pub fn case(&mut self, case: &'static str, outcome: impl fmt::Display, ok: bool) -> bool {
        let mut w = Buf([0; OUTCOME_LEN], 0);
        let _ = fmt::write(&mut w, format_args!("{outcome}"));
        let counter = if ok { &PASSED } else { &FAILED };
        counter.fetch_add(1, Ordering::Relaxed);
        println!(
            "[test] {}: {case}: {outcome}: {}",
            self.class,
            if ok { "PASS" } else { "FAIL" }
        );
        if let Some(r) = self.rows.get_mut(self.len) {
            *r = (case, w.0, w.1 as u8, ok);
            self.len += 1;
        }
        ok
    }

    /// Prints the summary line and the table.
    pub fn print(&self) {
        let rows = &self.rows[..self.len];
        let good = rows.iter().filter(|r| r.3).count();
        println!("{}: {} cases, {good} as expected", self.class, rows.len());
        println!("| case | outcome | verdict |");
        println!("|---|---|---|");
        for (case, out, n, ok) in rows {
            let text = core::str::from_utf8(&out[..usize::from(*n)]).unwrap_or("?");
            println!("| {case} | {text} | {} |", if *ok { "ok" } else { "WRONG" });
        }
    }
}

/// A [`fmt::Write`] into a fixed buffer that cuts what does not fit.
struct Buf([u8; OUTCOME_LEN], usize);

impl fmt::Write for Buf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.1 < OUTCOME_LEN {
                self.0[self.1] = b;
                self.1 += 1;
            }
        }
        Ok(())
    }
}
