//! The attacker of the ABI attack scenarios: hostile arguments to every
//! hypercall a PVH guest has (`attack=hypercall`) or hostile traffic on
//! its xenstore ring (`attack=xenstore`), each case checked against the
//! error code Xen gives, with a victim domain (`victim=ID`, a `ticker`
//! with `guard=`) running beside it. The hypervisor's canary page and the
//! victim's first page in host memory come from `debug.canary`
//! (`hv.canary=`, `hv.peer=`), to be handed over as frame numbers.
//!
//! With `settle=N` it first yields N times, so that the victim is under
//! way when the attack starts. Every case is a [`report::Table`] row; the table is printed at the end,
//! after a last proof that the guest still gets answers.
#![no_std]
#![no_main]

#[path = "attack_abi/hypercalls.rs"]
mod hypercalls;
#[path = "attack_abi/xenstore.rs"]
mod xenstore;

use firmware::pci::attack::parse_hex;
use firmware::xen::{self, errno};
use firmware::{hypervisor, println, report, Gpa, StartInfo};

firmware::guest_main!(main);

/// A hypercall's result as Xen's error name (or the value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rc(pub i64);

impl core::fmt::Display for Rc {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let name = match -self.0 {
            errno::EPERM => "EPERM",
            errno::ENOENT => "ENOENT",
            errno::ESRCH => "ESRCH",
            errno::EAGAIN => "EAGAIN",
            errno::EACCES => "EACCES",
            errno::EFAULT => "EFAULT",
            errno::EBUSY => "EBUSY",
            errno::EEXIST => "EEXIST",
            errno::EINVAL => "EINVAL",
            errno::ENOSPC => "ENOSPC",
            errno::ENOSYS => "ENOSYS",
            errno::EOPNOTSUPP => "EOPNOTSUPP",
            _ => return write!(f, "{}", self.0),
        };
        write!(f, "-{name}")
    }
}

/// What the command line says about the attack.
#[derive(Debug)]
pub struct Setup<'a> {
    pub line: &'a str,
    pub info: StartInfo,
    pub me: u16,
    pub victim: u16,
    /// Host frame of the hypervisor's canary page (`hv.canary`).
    pub canary_frame: Option<u64>,
    /// Host frame of the victim's guest-physical 1 MiB (`hv.peer`).
    pub victim_frame: Option<u64>,
}

fn main(start_info: Gpa) -> ! {
    let Ok(info) = StartInfo::read(start_info) else {
        report::check("start info", false);
        report::finish();
    };
    let cmdline = info.cmdline();
    let line = cmdline.as_ref().and_then(|c| c.as_str()).unwrap_or("");
    if !hypervisor::is_xen() {
        report::skip("attack", "no Xen CPUID leaves");
        report::finish();
    }
    let setup = Setup {
        line,
        me: xen::domid().unwrap_or(0),
        victim: xen::cmdline_value(line, "victim")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        canary_frame: xen::cmdline_value(line, "hv.canary")
            .and_then(parse_hex)
            .map(|a| a >> 12),
        victim_frame: xen::cmdline_value(line, "hv.peer")
            .and_then(parse_hex)
            .map(|a| a >> 12),
        info,
    };
    // Let the victim (domain 1) fill its guard first: each yield hands it
    // the CPU for a time slice.
    for _ in 0..xen::cmdline_value(line, "settle")
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0)
    {
        hypervisor::sched_yield();
    }
    let version = hypervisor::xen_version();
    match xen::cmdline_value(line, "attack") {
        Some("hypercall") => hypercalls::run(&setup),
        Some("xenstore") => xenstore::run(&setup),
        other => {
            println!("attack_abi: attack={other:?}: expected hypercall or xenstore");
            report::check("attack mode", false);
        }
    }
    report::check_eq(
        "xen_version answers after the attack",
        hypervisor::xen_version(),
        version,
    );
    report::finish()
}
