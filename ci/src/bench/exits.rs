//! Exits by reason: the line the hypervisor prints as each domain ends,
//!
//! ```text
//! dom1 (hello): exits: 13 cpuid, 3 msr, 0 io, 26 hypercall, 0 hlt, 0 npf, 0 other
//! ```
//!
//! read as `<count> <kind>` pairs separated by commas, whatever the kinds
//! are, and gathered into one Markdown table per backend with a column per
//! kind: a kind the hypervisor starts counting appears as a new column
//! without a change here.

use crate::runner::printable;

/// One domain's exit counts, as the hypervisor printed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainExits {
    /// The domain ID (`dom<id>`).
    pub id: u32,
    /// The domain's name.
    pub name: String,
    /// `(kind, count)` in the order printed.
    pub counts: Vec<(String, u64)>,
}

impl DomainExits {
    /// The count of `kind`, if the line had it.
    pub fn count(&self, kind: &str) -> Option<u64> {
        self.counts.iter().find(|(k, _)| k == kind).map(|&(_, n)| n)
    }
}

const MARKER: &str = "): exits:";

/// What the hypervisor prints after a domain's exits line:
///
/// ```text
/// dom1 (bench_abi): events: 2001 upcalls injected, 3000 sends, 0 timer expiries
/// ```
const EVENTS_MARKER: &str = "): events:";

/// Reads one serial line: `None` when it is not a domain's exits line,
/// `Some(Err(why))` when it is one but cannot be read.
///
/// The line must start with `dom<id> (`: a guest's console lines start with
/// `[d<id> name]`, so a guest cannot forge one.
pub fn parse_line(line: &str) -> Option<Result<DomainExits, String>> {
    parse_counts(line, MARKER)
}

/// [`parse_line`] for a domain's events line (upcalls injected, sends,
/// timer expiries), read the same way as `<count> <kind>` pairs.
pub fn parse_events_line(line: &str) -> Option<Result<DomainExits, String>> {
    parse_counts(line, EVENTS_MARKER)
}

/// A `dom<id> (<name>)<marker> <count> <kind>, ...` line.
fn parse_counts(line: &str, marker: &str) -> Option<Result<DomainExits, String>> {
    let line = printable(line);
    // `debug.stamps` (the hot-plug runs) puts the time in front.
    let line = super::hotplug::stamped(&line).map_or(line.trim(), |(_, rest)| rest);
    let rest = line.strip_prefix("dom")?;
    let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let id = rest[..digits].parse().ok()?;
    let rest = rest[digits..].strip_prefix(" (")?;
    let at = rest.find(marker)?;
    let name = rest[..at].to_string();
    let mut counts = Vec::new();
    for part in rest[at + marker.len()..].split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let pair = part
            .split_once(' ')
            .and_then(|(n, kind)| Some((n.parse::<u64>().ok()?, kind.trim())));
        match pair {
            Some((n, kind)) if !kind.is_empty() => counts.push((kind.to_string(), n)),
            _ => return Some(Err(format!("cannot read {part:?} as <count> <kind>"))),
        }
    }
    Some(Ok(DomainExits { id, name, counts }))
}

/// Every domain's events line in `log`, in the order printed.
pub fn parse_events_log(log: &str) -> Vec<Result<DomainExits, String>> {
    log.lines().filter_map(parse_events_line).collect()
}

/// The exits line and the events line of domain `name` in `log`, when
/// both are there and readable.
pub fn domain_lines(log: &str, name: &str) -> Option<(DomainExits, DomainExits)> {
    let find = |lines: Vec<Result<DomainExits, String>>| {
        lines.into_iter().flatten().find(|d| d.name == name)
    };
    Some((find(parse_log(log))?, find(parse_events_log(log))?))
}

/// Every domain's exits line in `log`, in the order printed.
pub fn parse_log(log: &str) -> Vec<Result<DomainExits, String>> {
    log.lines().filter_map(parse_line).collect()
}

/// One row of the table: a domain of a scenario, or a note that the
/// scenario has no domain to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub scenario: String,
    /// `dom1 (hello)`, or `-` for a row that is only a note.
    pub domain: String,
    pub counts: Vec<(String, u64)>,
    /// Empty, or what went wrong.
    pub note: String,
}

/// The rows of one scenario: one per domain exits line in `log`, by domain
/// ID; a single row saying so when there is none. `problem` (the run did not
/// pass its checks) is noted on every row.
pub fn rows(scenario: &str, log: &str, problem: Option<&str>) -> Vec<Row> {
    let problem = problem.map(|p| format!("FAIL: {p}")).unwrap_or_default();
    let with = |extra: &str| match (problem.is_empty(), extra.is_empty()) {
        (_, true) => problem.clone(),
        (true, false) => extra.to_string(),
        (false, false) => format!("{extra}; {problem}"),
    };
    let mut lines = parse_log(log);
    // Domains in ID order (they end in any order); unreadable lines last.
    lines.sort_by_key(|l| l.as_ref().map_or(u32::MAX, |d| d.id));
    let mut out: Vec<Row> = lines
        .into_iter()
        .map(|line| match line {
            Ok(d) => Row {
                scenario: scenario.to_string(),
                domain: format!("dom{} ({})", d.id, d.name),
                counts: d.counts,
                note: problem.clone(),
            },
            Err(why) => Row {
                scenario: scenario.to_string(),
                domain: "-".to_string(),
                counts: Vec::new(),
                note: with(&format!("malformed exits line: {why}")),
            },
        })
        .collect();
    if out.is_empty() {
        out.push(Row {
            scenario: scenario.to_string(),
            domain: "-".to_string(),
            counts: Vec::new(),
            note: with("no `domN (name): exits:` line in the log"),
        });
    }
    out
}

/// The exit kinds of `rows`, in the order they first appear.
pub fn kinds(rows: &[Row]) -> Vec<&str> {
    let mut kinds: Vec<&str> = Vec::new();
    for (kind, _) in rows.iter().flat_map(|r| &r.counts) {
        if !kinds.contains(&kind.as_str()) {
            kinds.push(kind);
        }
    }
    kinds
}

/// A Markdown table: scenario, domain, a column per exit kind, the total,
/// and a note. A kind a row does not have shows as `-`.
pub fn render(rows: &[Row]) -> String {
    let kinds = kinds(rows);
    let mut out = String::from("| scenario | domain |");
    for kind in &kinds {
        out.push_str(&format!(" {kind} |"));
    }
    out.push_str(" total | note |\n|---|---|");
    out.push_str(&"---:|".repeat(kinds.len() + 1));
    out.push_str("---|\n");
    for row in rows {
        out.push_str(&format!("| {} | {} |", row.scenario, row.domain));
        let mut total = 0u64;
        for kind in &kinds {
            match row.counts.iter().find(|(k, _)| k == kind) {
                Some(&(_, n)) => {
                    total = total.saturating_add(n);
                    out.push_str(&format!(" {n} |"));
                }
                None => out.push_str(" - |"),
            }
        }
        if row.counts.is_empty() {
            out.push_str(" - |");
        } else {
            out.push_str(&format!(" {total} |"));
        }
        out.push_str(&format!(" {} |\n", row.note.replace('|', "\\|")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str =
        "dom1 (hello): exits: 13 cpuid, 3 msr, 0 io, 26 hypercall, 0 hlt, 0 npf, 0 other\r";

    #[test]
    fn the_hypervisor_line_is_read_as_pairs() {
        let d = parse_line(LINE).expect("an exits line").expect("readable");
        assert_eq!((d.id, d.name.as_str()), (1, "hello"));
        assert_eq!(d.counts.len(), 7);
        assert_eq!(d.count("hypercall"), Some(26));
        assert_eq!(d.count("other"), Some(0));
        assert_eq!(d.count("interrupt window"), None);
    }

    #[test]
    fn the_events_line_is_read_apart_from_the_exits_line() {
        let log = "dom3 (bench_abi): exits: 6 cpuid, 3012 hypercall\n\
                   dom3 (bench_abi): events: 2001 upcalls injected, 3000 sends, 0 timer expiries\n";
        let events = parse_events_log(log);
        assert_eq!(events.len(), 1);
        let d = events[0].as_ref().expect("readable");
        assert_eq!((d.id, d.name.as_str()), (3, "bench_abi"));
        assert_eq!(d.count("upcalls injected"), Some(2001));
        assert_eq!(d.count("sends"), Some(3000));
        assert_eq!(d.count("timer expiries"), Some(0));
        let exits = parse_log(log);
        assert_eq!(exits.len(), 1);
        assert_eq!(
            exits[0].as_ref().map(|d| d.count("hypercall")),
            Ok(Some(3012))
        );
    }

    #[test]
    fn new_kinds_with_spaces_are_read_like_the_others() {
        let d = parse_line("dom12 (a b): exits: 1 cpuid, 7 interrupt window, 2 other")
            .expect("an exits line")
            .expect("readable");
        assert_eq!((d.id, d.name.as_str()), (12, "a b"));
        assert_eq!(d.count("interrupt window"), Some(7));
    }

    #[test]
    fn a_stamped_line_is_read_and_a_stamped_guest_line_is_not() {
        let d = parse_line("[   12.692257] dom1 (hp): exits: 10 cpuid, 3 msr\r")
            .expect("an exits line")
            .expect("readable");
        assert_eq!((d.id, d.count("msr")), (1, Some(3)));
        assert_eq!(
            parse_line("[   12.6] [d1 x] dom1 (x): exits: 1 cpuid"),
            None
        );
        assert_eq!(
            parse_line("[   12.600000] [d1 x] dom1 (x): exits: 1 cpuid"),
            None
        );
    }

    #[test]
    fn guest_lines_and_other_lines_are_not_exits_lines() {
        for line in [
            "[d1 exits] firmware: exits: Xen 4.17 at CPUID 0x40000000",
            "[d1 x] dom1 (x): exits: 1 cpuid",
            "dom1 (hello): powered off",
            "domains: 1 started, 1 powered off cleanly",
            "domx (a): exits: 1 cpuid",
            "",
        ] {
            assert_eq!(parse_line(line), None, "{line}");
        }
    }

    #[test]
    fn a_garbled_pair_makes_the_line_malformed() {
        for line in ["dom1 (a): exits: 1 cpuid, lots msr", "dom1 (a): exits: 1"] {
            let err = parse_line(line)
                .expect("an exits line")
                .expect_err("garbled");
            assert!(err.contains("<count> <kind>"), "{err}");
        }
    }

    #[test]
    fn a_scenario_without_the_line_gets_a_row_saying_so() {
        let r = rows("boot-qemu", "hv: boot complete\n", None);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].domain, "-");
        assert!(r[0].note.contains("no `domN (name): exits:` line"), "{r:?}");
        let r = rows("boot-qemu", "", Some("timed out after 90 s"));
        assert!(r[0].note.ends_with("; FAIL: timed out after 90 s"), "{r:?}");
    }

    #[test]
    fn every_domain_is_a_row_in_domain_order() {
        let log = "dom2 (t2): exits: 6 cpuid, 1 hlt\nnoise\ndom10 (x): exits: x\n\
                   dom1 (t1): exits: 5 cpuid\n";
        let r = rows("two", log, Some("missing \"x\""));
        let domains: Vec<&str> = r.iter().map(|r| r.domain.as_str()).collect();
        assert_eq!(domains, ["dom1 (t1)", "dom2 (t2)", "-"]);
        assert!(r[2].note.starts_with("malformed exits line: "), "{r:?}");
        assert!(r[2].note.ends_with("; FAIL: missing \"x\""), "{r:?}");
        assert!(r[..2].iter().all(|r| r.note == "FAIL: missing \"x\""));
    }

    #[test]
    fn the_table_has_a_column_per_kind_seen() {
        let mut all = rows("a", "dom1 (x): exits: 1 cpuid, 2 io\n", None);
        all.extend(rows(
            "b",
            "dom1 (y): exits: 3 cpuid, 4 interrupt window\n",
            None,
        ));
        all.extend(rows("c", "nothing\n", None));
        let table = render(&all);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "| scenario | domain | cpuid | io | interrupt window | total | note |"
        );
        assert_eq!(lines[1], "|---|---|---:|---:|---:|---:|---|");
        assert_eq!(lines[2], "| a | dom1 (x) | 1 | 2 | - | 3 |  |");
        assert_eq!(lines[3], "| b | dom1 (y) | 3 | - | 4 | 7 |  |");
        assert!(lines[4].starts_with("| c | - | - | - | - | - | no `domN"));
    }
}
