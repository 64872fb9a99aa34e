//! Resource hygiene: one guest with edu assigned lives and dies many times
//! (`on_poweroff = "restart"`), and what the hypervisor holds after the
//! last life is what it held after the first.
//!
//! After each life of a configuration that restarts, the test-hooks image
//! logs `domN (name): counts after this life: frames F free, iommu entries
//! I, event channels E, pirqs P, vectors V, grants G, xenstore nodes X`
//! (all domains together). [`lives_differ`] compares the first such line
//! of each configuration with its last; the runner applies it to the
//! scenarios of [`COMPARED`].

use super::*;

/// The scenarios whose logs must show the same counts after the first and
/// the last life of each configuration.
pub const COMPARED: &[&str] = &["churn-svm", "xpci-restart-svm", "linux-pv-restart-svm"];

/// The churning guest: xpci with edu, as small as it runs, restarted on
/// each poweroff 199 times. Each life attaches edu, computes a
/// factorial by MMIO, takes its MSI and copies a buffer by DMA both ways,
/// then powers off.
const CHURN_CFG: &str = "name = \"churn\"\n\
kernel = \"xpci\"\n\
memory = 16\n\
pci = ['00:03.0']\n\
on_poweroff = \"restart\"\n\
restart_limit = 199\n\
extra = \"expect=1234:11e8\"\n";

/// The marker of a counts line.
const COUNTS: &str = ": counts after this life: ";

/// For each configuration (by domain name) with counts lines in `log`, the
/// first life's counts against the last's: the fields that differ, named
/// with both lives, or `None` when every configuration ended its last
/// life holding what it held after its first.
pub fn lives_differ(log: &str) -> Option<String> {
    // (name, first domain, first counts, last domain, last counts)
    let mut seen: Vec<(&str, &str, &str, &str, &str)> = Vec::new();
    for line in log.lines() {
        let Some((head, counts)) = line.split_once(COUNTS) else {
            continue;
        };
        let Some((dom, name)) = head.trim().split_once(" (") else {
            continue;
        };
        let dom = dom.rsplit(' ').next().unwrap_or(dom);
        let name = name.trim_end_matches(')');
        match seen.iter_mut().find(|s| s.0 == name) {
            Some(s) => (s.3, s.4) = (dom, counts),
            None => seen.push((name, dom, counts, dom, counts)),
        }
    }
    let mut out = Vec::new();
    for (name, first_dom, first, last_dom, last) in seen {
        let differ: Vec<String> = first
            .split(", ")
            .zip(last.split(", "))
            .filter(|(a, b)| a != b)
            .map(|(a, b)| {
                let value = b.rsplit(' ').next().unwrap_or(b);
                format!("{a} -> {value}")
            })
            .collect();
        if !differ.is_empty() {
            out.push(format!(
                "{name}: after {last_dom} not as after {first_dom}: {}",
                differ.join(", ")
            ));
        }
    }
    (!out.is_empty()).then(|| format!("resources not back: {}", out.join("; ")))
}

pub const LIST: &[Scenario] = &[Scenario {
    name: "churn-svm",
    description: "200 lives of one guest with edu (attach, MMIO, MSI, DMA, poweroff, restart): frames, IOMMU entries, event channels, pirqs, vectors, grants and xenstore nodes after the last life are those after the first",
    emulator: QEMU_INTEL,
    boot: Boot::Kernel,
    cmdline: "loglvl=info pciback.hide=(00:03.0)",
    timeout_secs: 600,
    expect: &[
        "dom1 (churn): counts after this life: ",
        "dom199 (churn): on_poweroff = \"restart\": restarted as dom200 (restart 199 of 199)",
        "[d200 churn] xpci: edu: 10! = 3628800",
        "[d200 churn] [test] edu: raised interrupt arrives by MSI: PASS",
        "[d200 churn] [test] edu: DMA copy equals the source: PASS",
        "pciback: 0000:00:03.0 released by dom200 (churn)",
        "dom200 (churn): counts after this life: ",
        "dom200 (churn): on_poweroff = \"restart\", but it was restarted 199 times already; not again",
        "domains: 200 started, 200 powered off cleanly",
        "(same as before the domains), pirqs 0, vectors 0, grants 0, xenstore nodes ",
    ],
    reject: &[
        ": FAIL",
        "not assigned",
        "iommu: blocked",
        "destroyed",
        "restart failed",
        "LEAKED",
        "WARNING: pciback: WARNING",
        "restarted as dom201",
    ],
    expect_in_order: &[
        "[d1 churn] [test] edu: DMA copy equals the source: PASS",
        "dom1 (churn): counts after this life: ",
        "dom1 (churn): on_poweroff = \"restart\": restarted as dom2 (restart 1 of 199)",
        "[d2 churn] [test] edu: DMA copy equals the source: PASS",
    ],
    outcome: Outcome::Success,
    modules: &[
        BootModule {
            name: "xpci",
            content: ModuleContent::Guest("xpci"),
        },
        BootModule {
            name: "churn.cfg",
            content: ModuleContent::Text(CHURN_CFG),
        },
    ],
}];

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "frames 100 free, iommu entries 3, event channels 4, pirqs 0, vectors 0, grants 0, xenstore nodes 20";

    #[test]
    fn the_same_counts_after_first_and_last_life_pass() {
        let log = format!(
            "dom1 (g){COUNTS}{LINE}\nnoise\ndom2 (g){COUNTS}frames 1\ndom3 (g){COUNTS}{LINE}\n"
        );
        assert_eq!(lives_differ(&log), None);
        assert_eq!(lives_differ("no counts at all"), None);
    }

    #[test]
    fn a_count_that_grew_is_named_with_both_lives() {
        let last = LINE.replace("event channels 4", "event channels 7");
        let log =
            format!("hv: dom1 (g){COUNTS}{LINE}\ndom9 (h){COUNTS}{LINE}\ndom5 (g){COUNTS}{last}\n");
        assert_eq!(
            lives_differ(&log).as_deref(),
            Some("resources not back: g: after dom5 not as after dom1: event channels 4 -> 7")
        );
    }

    /// Lives of the churning guest: the first and 199 restarts.
    const LIVES: u32 = 200;

    #[test]
    fn the_churn_configuration_allows_exactly_the_lives() {
        let restarts = format!("restart_limit = {}\n", LIVES - 1);
        assert!(CHURN_CFG.contains(&restarts));
        let s = &LIST[0];
        assert!(s
            .expect
            .contains(&"domains: 200 started, 200 powered off cleanly"));
        assert!(s.reject.contains(&"restarted as dom201"));
        assert!(COMPARED.contains(&s.name));
    }
}
