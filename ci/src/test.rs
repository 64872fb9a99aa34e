//! `cargo xtask test`: the host tests, then the emulator scenarios (after
//! building the image, whose size goal is checked as `image-size`: a pass
//! within 512 KiB, an `OVER` line, not counted, while the goal is not met,
//! a failure if the image cannot be read); the last line is `N passed, N
//! failed` over all of them.

use crate::cli::TestOptions;
use crate::host_tests::{self, Counts};
use crate::machine::Emulator;
use crate::runner;
use crate::scenarios::{self, Scenario};
use crate::{hotlayout, image, metal, tools, Workspace};

/// `--list`: one scenario per line with its description.
fn list(scenarios: &[&Scenario]) {
    let width = scenarios.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for s in scenarios {
        println!("{:width$}  {}", s.name, s.description);
    }
}

/// Runs the tests; `Ok(true)` when nothing failed.
pub fn run(ws: &Workspace, opts: &TestOptions) -> Result<bool, String> {
    let selected = scenarios::select(&opts.names)?;
    if opts.list {
        list(&selected);
        return Ok(true);
    }
    if opts.scenarios && !selected.is_empty() {
        tools::ensure(tools::ALL)?;
    }
    let mut total = Counts::default();
    if opts.host {
        total += host_tests::run(ws);
    }
    if opts.scenarios {
        total += run_scenarios(ws, &selected, opts.jobs);
    }
    println!("{}", runner::summary_line(total.passed, total.failed));
    Ok(total.failed == 0)
}

fn run_scenarios(ws: &Workspace, selected: &[&'static Scenario], workers: usize) -> Counts {
    let elf = metal::build(ws);
    // The image's size goal, checked whenever the image is built.
    let mut size = Counts::default();
    match &elf {
        Ok(path) => {
            let (line, verdict) = image::check(path);
            println!("{line}");
            size = match verdict {
                image::Verdict::Pass => Counts {
                    passed: 1,
                    failed: 0,
                },
                image::Verdict::Over => Counts::default(),
                image::Verdict::Fail => Counts {
                    passed: 0,
                    failed: 1,
                },
            };
            // The exit path's library functions, placed by name.
            let script = ws.root().join("hv/linker.ld");
            let (line, ok) = hotlayout::check(path, &script, &ws.show(&script));
            println!("{line}");
            size += Counts {
                passed: usize::from(ok),
                failed: usize::from(!ok),
            };
        }
        Err(e) => println!("build: {e}"),
    }
    // The scenarios boot the image with the test hooks; those in
    // `scenarios::USER_IMAGE` boot the image users boot.
    let hooks = elf
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|_| metal::build_hooks(ws));
    if let Err(e) = &hooks {
        println!("build: {e}");
    }
    let elf_ref = elf
        .as_deref()
        .map_err(|_| "the hv image did not build (see the build output above)");
    let hooks_ref = hooks
        .as_deref()
        .map_err(|_| "the hv image with the test hooks did not build (see above)");
    // Real guests come from Debian packages (fetched once, then cached).
    if selected.iter().any(|s| s.needs_debian_guests()) {
        if let Err(e) = crate::guests::prepare(ws, false) {
            println!("guests: {e} (the scenarios that boot them will fail)");
        }
    }
    let (user, rest): (Vec<&'static Scenario>, Vec<&'static Scenario>) = selected
        .iter()
        .partition(|s| crate::scenarios::USER_IMAGE.contains(&s.name));
    let mut jobs = runner::prepare(ws, hooks_ref, &rest);
    jobs.extend(runner::prepare(ws, elf_ref, &user));
    let bochs = selected
        .iter()
        .filter(|s| matches!(s.emulator, Emulator::Bochs { .. }))
        .count();
    println!(
        "scenarios: {} ({} on Bochs), {} at a time, logs in {}",
        jobs.len(),
        bochs,
        workers.min(jobs.len()),
        ws.show(&ws.xtask_dir().join("scenarios"))
    );
    let reports = runner::run_all(&jobs, workers, |report| {
        println!("{}", report.render(ws));
    });
    let passed = reports.iter().filter(|r| r.passed()).count();
    size += Counts {
        passed,
        failed: reports.len() - passed,
    };
    size
}
