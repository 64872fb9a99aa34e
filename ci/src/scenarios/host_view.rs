//! Judging a log's `lspci` replies: a function's registers while the
//! host has it, before hiding and after giving it back, must be the same
//! (`pci-assignable-remove` restores the host's view).

/// The scenarios whose `lspci` replies must show a function's registers
/// (`command`, `bar_regs`, `line`) the same in every row where the host
/// has it, and different in one where it is hidden: `(scenario, BDF)`.
pub const SAME_HOST_VIEW: &[(&str, &str)] = &[("runtime-hide-svm", "0000:00:03.0")];

/// The `lspci` fields of a function's configuration registers.
const REGISTERS: [&str; 3] = ["command", "bar_regs", "line"];

/// The value of `key` in a reply's row (a number, or a string with its
/// quotes), as written: values hold no `,"`.
fn field<'a>(row: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":");
    let rest = &row[row.find(&pat)? + pat.len()..];
    Some(rest.split(",\"").next().unwrap_or(rest))
}

/// What is wrong with `log`'s `lspci` replies for `bdf` (see
/// [`SAME_HOST_VIEW`]), or `None`.
pub fn host_view_differs(log: &str, bdf: &str) -> Option<String> {
    let start = format!("{{\"bdf\":\"{bdf}\"");
    // (owner, registers) of each row for `bdf`, in order.
    let rows: Vec<(&str, Vec<Option<&str>>)> = log
        .lines()
        .filter(|l| l.contains("ctl: {\"v\":1,\"cmd\":\"lspci\",\"ok\":true"))
        .filter_map(|l| {
            let row = &l[l.find(&start)?..];
            let row = &row[..row.find('}')?];
            let regs = REGISTERS.iter().map(|k| field(row, k)).collect();
            Some((field(row, "owner")?, regs))
        })
        .collect();
    let host: Vec<&Vec<Option<&str>>> = rows
        .iter()
        .filter(|r| r.0 == "\"host\"")
        .map(|r| &r.1)
        .collect();
    let [first, .., _] = host[..] else {
        return Some(format!(
            "{bdf}: {} lspci row(s) where the host has it; the one before hiding and the one after giving it back are needed",
            host.len()
        ));
    };
    if first.iter().any(Option::is_none) {
        return Some(format!("{bdf}: lspci row without {REGISTERS:?}"));
    }
    if let Some(after) = host.iter().find(|r| **r != first) {
        return Some(format!(
            "{bdf}: the host's view is not restored: {REGISTERS:?} were {first:?}, later {after:?}"
        ));
    }
    if !rows.iter().any(|r| r.0 == "\"hidden\"" && r.1 != *first) {
        return Some(format!(
            "{bdf}: no lspci row while hidden shows registers different from the host's (the comparison proves nothing)"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::host_view_differs;

    const BDF: &str = "0000:00:03.0";

    fn lspci(owner: &str, command: u32) -> String {
        format!(
            "ctl: {{\"v\":1,\"cmd\":\"lspci\",\"ok\":true,\"msg\":\"2 PCI function(s)\",\"rows\":[{{\"bdf\":\"0000:00:00.0\",\"owner\":\"host\",\"command\":7,\"bar_regs\":\"0x0\",\"line\":0}},{{\"bdf\":\"{BDF}\",\"id\":\"1234:11e8\",\"owner\":\"{owner}\",\"bars\":\"0:0xfe800000+0x100000\",\"pin\":1,\"command\":{command},\"bar_regs\":\"0xfe800000,0x0\",\"line\":11}}]}}\n"
        )
    }

    #[test]
    fn the_host_view_restored_after_hiding_passes() {
        let log = lspci("host", 259) + &lspci("hidden", 1280) + &lspci("host", 259);
        assert_eq!(host_view_differs(&log, BDF), None);
    }

    #[test]
    fn a_host_view_not_restored_is_named() {
        let log = lspci("host", 259) + &lspci("hidden", 1280) + &lspci("host", 1280);
        let why = host_view_differs(&log, BDF).unwrap();
        assert!(why.contains("not restored"), "{why}");
        assert!(why.contains("259") && why.contains("1280"), "{why}");
    }

    #[test]
    fn too_few_rows_or_a_hide_that_changed_nothing_fail() {
        let once = lspci("host", 259) + &lspci("hidden", 1280);
        assert!(host_view_differs(&once, BDF)
            .unwrap()
            .contains("1 lspci row(s)"));
        let unchanged = lspci("host", 259) + &lspci("hidden", 259) + &lspci("host", 259);
        assert!(host_view_differs(&unchanged, BDF)
            .unwrap()
            .contains("proves nothing"));
        assert!(host_view_differs("", BDF)
            .unwrap()
            .contains("0 lspci row(s)"));
    }
}
