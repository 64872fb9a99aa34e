//! The serial console's input with the shell on (`shell=on`): typed lines
//! are commands ([`hv::shell`]), answered on the serial line; Ctrl-A
//! three times, or `console DOM`, sends what is typed to a domain's
//! console instead, and Ctrl-A three times again moves on to the next
//! domain, then back to the shell.

use crate::domain::{Domain, Ending};
use crate::virt::Virt;
use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use hv::domcfg::DomainConfig;
use hv::hub::Hub;
use hv::multiboot::Module;
use hv::shell::{Command, DomRef, LineEditor, Reply, Typed, Value};
use pciback::owner::Owner;
use vmm_glue::log;

use super::accounting::{finish, Resources};
use super::schedule::{Entry, TYPED_MAX};
use super::Tally;

/// Where typed input goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Shell,
    Dom(u16),
}

/// What the schedule loop does after the shell has read its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum After {
    Go,
    /// `quit` with no domain left: the hypervisor ends.
    Quit,
}

/// What commands need from the schedule loop besides the hub and the
/// domains: the backend, the tally of domains, the next domain id and the
/// domain builder (for `create`).
pub(super) struct Ctx<'a> {
    pub(super) virt: &'a Virt,
    pub(super) tally: &'a mut Tally,
    pub(super) next_id: &'a mut u16,
    pub(super) build: &'a mut dyn FnMut(&mut Hub, u16, &DomainConfig) -> Result<Domain, String>,
}

/// The shell's state.
#[derive(Debug)]
pub(super) struct Shell<'m> {
    /// The boot modules, for `create`.
    modules: &'m [Module<'m>],
    /// `quit` was accepted.
    quit: bool,
    editor: LineEditor,
    target: Target,
    /// Ctrl-As typed to a domain's console, held back until the byte after
    /// them shows they are not a switch.
    ctrl_a: u8,
    /// Bytes for the domain's console its ring has not taken yet.
    pending: Vec<u8>,
}

impl<'m> Shell<'m> {
    pub(super) fn new(modules: &'m [Module<'m>]) -> Self {
        crate::arch::serial::write_str(
            "shell: type 'help' for the commands; Ctrl-A three times switches to the domains' consoles\n> ",
        );
        Self {
            modules,
            quit: false,
            editor: LineEditor::default(),
            target: Target::Shell,
            ctrl_a: 0,
            pending: Vec::new(),
        }
    }

    /// Reads what was typed and acts on it.
    pub(super) fn poll(
        &mut self,
        hub: &mut Hub,
        entries: &mut Vec<Entry>,
        ctx: &mut Ctx<'_>,
    ) -> After {
        while self.pending.len() < TYPED_MAX {
            let Some(b) = crate::arch::serial::read_byte() else {
                break;
            };
            match self.target {
                Target::Shell => match self.editor.feed(b) {
                    Typed::Nothing => {}
                    Typed::Echo(s) => echo(s),
                    Typed::EchoByte(b) => echo(&[b]),
                    Typed::Switch => self.switch(entries, None),
                    Typed::Line(line, long) => {
                        echo(b"\n");
                        self.line(&line, long, hub, entries, ctx);
                        if self.target == Target::Shell {
                            echo(b"> ");
                        }
                    }
                },
                Target::Dom(_) if b == 0x01 => {
                    self.ctrl_a += 1;
                    if self.ctrl_a == 3 {
                        self.ctrl_a = 0;
                        self.pending.clear();
                        let cur = match self.target {
                            Target::Dom(d) => Some(d),
                            Target::Shell => None,
                        };
                        self.switch(entries, cur);
                    }
                }
                Target::Dom(_) => {
                    for _ in 0..core::mem::take(&mut self.ctrl_a) {
                        self.pending.push(0x01);
                    }
                    self.pending.push(b);
                }
            }
        }
        if let Target::Dom(id) = self.target {
            match entries.iter_mut().find(|e| e.dom.id == id) {
                Some(e) => {
                    let taken = e.dom.console_input(hub, &self.pending);
                    self.pending.drain(..taken);
                }
                None => {
                    // The domain ended: input comes back to the shell.
                    self.pending.clear();
                    self.target = Target::Shell;
                    crate::arch::serial::write_str(&format!(
                        "shell: dom{id} has ended; input goes to the shell\n> "
                    ));
                }
            }
        }
        if self.quit {
            After::Quit
        } else {
            After::Go
        }
    }

    /// Moves input on from `cur` (the shell when `None`) to the next
    /// domain, or back to the shell after the last.
    fn switch(&mut self, entries: &[Entry], cur: Option<u16>) {
        let next = match cur {
            None => entries.first(),
            Some(c) => entries
                .iter()
                .position(|e| e.dom.id == c)
                .and_then(|i| entries.get(i + 1)),
        };
        self.target = match next {
            Some(e) => {
                crate::arch::serial::write_str(&format!(
                    "\nshell: input goes to dom{} ({})'s console (Ctrl-A three times: next)\n",
                    e.dom.id, e.dom.name
                ));
                Target::Dom(e.dom.id)
            }
            None => {
                crate::arch::serial::write_str("\nshell: input goes to the shell\n> ");
                Target::Shell
            }
        };
    }

    /// Runs one typed line and prints the reply.
    fn line(
        &mut self,
        line: &str,
        long: bool,
        hub: &mut Hub,
        entries: &mut Vec<Entry>,
        ctx: &mut Ctx<'_>,
    ) {
        let (json, text) = hv::shell::channel(line);
        // `debug.stamps`: when the command was taken, and (on the reply)
        // when it was done.
        #[cfg(feature = "test-hooks")]
        if crate::diag::stamps() {
            log::info!("shell: taken: {line}");
        }
        let reply = if long {
            Reply::fail(
                "error",
                format!(
                    "the line is longer than {} characters; nothing was done",
                    hv::shell::LINE_MAX
                ),
            )
        } else {
            match hv::shell::parse(text) {
                None if json => Reply::fail("error", "'ctl' needs a command: 'ctl help'"),
                None => return,
                Some(Err(e)) => Reply::fail("error", format!("{e}")),
                Some(Ok(cmd)) => self.run(cmd, hub, entries, ctx),
            }
        };
        let mut out = String::new();
        #[cfg(feature = "test-hooks")]
        crate::diag::stamp(&mut out);
        let _ = if json {
            reply.json(&mut out)
        } else {
            reply.text(&mut out)
        };
        crate::arch::serial::write_str(&out);
    }

    fn run(
        &mut self,
        cmd: Command,
        hub: &mut Hub,
        entries: &mut Vec<Entry>,
        ctx: &mut Ctx<'_>,
    ) -> Reply {
        match cmd {
            Command::Help => hv::shell::help(),
            Command::List => list(entries),
            Command::Lspci => lspci(false),
            Command::AssignableList => lspci(true),
            Command::Info => info(ctx.virt),
            Command::Stats => stats(hub, entries),
            Command::Destroy(d) => {
                let Some(i) = find(entries, &d) else {
                    return no_domain("destroy", &d, entries);
                };
                let e = entries.remove(i);
                let (id, name) = (e.dom.id, e.dom.name.clone());
                log::info!("shell: destroying dom{id} ({name})");
                ctx.tally.clean += usize::from(finish(
                    e.dom,
                    Ending::Destroyed(String::from("by the shell's destroy command")),
                    hub,
                ));
                Reply::ok("destroy", format!("dom{id} ({name}) destroyed"))
            }
            Command::Shutdown(d) => ask(hub, entries, "shutdown", &d, "poweroff"),
            Command::Reboot(d) => ask(hub, entries, "reboot", &d, "reboot"),
            Command::Console(d) => {
                let Some(i) = find(entries, &d) else {
                    return no_domain("console", &d, entries);
                };
                let dom = &entries[i].dom;
                self.target = Target::Dom(dom.id);
                Reply::ok(
                    "console",
                    format!(
                        "input goes to dom{} ({})'s console; Ctrl-A three times to come back",
                        dom.id, dom.name
                    ),
                )
            }
            Command::Quit if entries.is_empty() => {
                self.quit = true;
                Reply::ok("quit", "no domain runs; the hypervisor ends")
            }
            Command::Quit => Reply::fail(
                "quit",
                format!(
                    "{} domain(s) still run; 'destroy' or 'shutdown' them first ('list' shows them)",
                    entries.len()
                ),
            ),
            Command::Create(name) => {
                let r = create_domain(hub, entries, self.modules, ctx, &name);
                match &r {
                    Ok(_) => ctx.tally.started += 1,
                    Err(_) => ctx.tally.refused += 1,
                }
                r.unwrap_or_else(|e| Reply::fail("create", e))
            }
            Command::AssignableAdd(s) => super::assignable::add(s),
            Command::AssignableRemove(s) => super::assignable::remove(s, entries),
            Command::PciAttach(d, a) => super::hotplug::attach(hub, entries, &d, &a),
            Command::PciDetach(d, s) => super::hotplug::detach(hub, entries, &d, s),
        }
    }
}

/// Builds a domain from the configuration in boot module `name` and
/// starts it.
fn create_domain(
    hub: &mut Hub,
    entries: &mut Vec<Entry>,
    modules: &[Module<'_>],
    ctx: &mut Ctx<'_>,
    name: &str,
) -> Result<Reply, String> {
    let m = hv::domcfg::find_module(modules, |m| m.name, name).map_err(|e| {
        let cfgs: Vec<&str> = modules
            .iter()
            .map(|m| m.name.rsplit('/').next().unwrap_or(m.name))
            .filter(|n| hv::domcfg::is_config_module(n))
            .collect();
        format!("{e}; the configuration modules are: {}", cfgs.join(", "))
    })?;
    if !hv::domcfg::is_config_module(m.name) {
        return Err(format!(
            "boot module '{name}' is not a domain configuration (*.cfg)"
        ));
    }
    let cfg = super::read_config(m).ok_or_else(|| {
        format!("{name}: not a valid configuration (the errors are logged above)")
    })?;
    let id = *ctx.next_id;
    *ctx.next_id += 1;
    match (ctx.build)(hub, id, &cfg) {
        Ok(dom) => {
            let msg = format!("dom{id} ({}) created from {name}", cfg.name);
            log::info!("shell: {msg}");
            entries.push(Entry {
                dom,
                cfg: Rc::new(cfg),
                restarts: 0,
            });
            let mut r = Reply::ok("create", msg);
            r.row(vec![("id", u64::from(id).into())]);
            Ok(r)
        }
        Err(e) => {
            log::error!("dom{id} ({}) from {name}: not started: {e}", cfg.name);
            Err(format!(
                "dom{id} ({}) from {name}: not started: {e}",
                cfg.name
            ))
        }
    }
}

fn echo(b: &[u8]) {
    for &c in b {
        crate::arch::serial::write_byte(c);
    }
}

pub(super) fn find(entries: &[Entry], d: &DomRef) -> Option<usize> {
    entries
        .iter()
        .position(|e| d.matches(e.dom.id, &e.dom.name))
}

pub(super) fn no_domain(cmd: &'static str, d: &DomRef, entries: &[Entry]) -> Reply {
    let running: Vec<String> = entries
        .iter()
        .map(|e| format!("{} ({})", e.dom.id, e.dom.name))
        .collect();
    Reply::fail(
        cmd,
        format!(
            "no running domain {d}; running: {}",
            if running.is_empty() {
                String::from("none")
            } else {
                running.join(", ")
            }
        ),
    )
}

/// Asks a domain to shut down the Xen way: `control/shutdown` in its
/// xenstore home, which its kernel watches.
fn ask(hub: &mut Hub, entries: &[Entry], cmd: &'static str, d: &DomRef, what: &str) -> Reply {
    let Some(i) = find(entries, d) else {
        return no_domain(cmd, d, entries);
    };
    let dom: &Domain = &entries[i].dom;
    let path = format!("/local/domain/{}/control/shutdown", dom.id);
    match hub.xs.write(&path, what.as_bytes()) {
        Ok(()) => Reply::ok(
            cmd,
            format!(
                "asked dom{} ({}) to {what} ({path} = \"{what}\"); it ends when its kernel answers, or 'destroy {}'",
                dom.id, dom.name, dom.id
            ),
        ),
        Err(e) => Reply::fail(cmd, format!("cannot write {path}: {e:?}")),
    }
}

fn list(entries: &mut [Entry]) -> Reply {
    let now = crate::domain::time::now_ns();
    let mut r = Reply::ok("list", format!("{} domain(s)", entries.len()));
    let owners = owners();
    for e in entries.iter_mut() {
        let devices: Vec<String> = owners
            .iter()
            .filter(|(_, o)| *o == Owner::Domain(e.dom.id))
            .map(|(s, _)| format!("{s}"))
            .collect();
        let state = if e.dom.runnable(now) {
            "running"
        } else {
            "blocked"
        };
        r.row(vec![
            ("id", u64::from(e.dom.id).into()),
            ("name", e.dom.name.as_str().into()),
            ("state", state.into()),
            ("vcpus", u64::from(e.dom.nr_vcpus()).into()),
            ("memory_mib", e.cfg.memory_mib.into()),
            ("devices", devices.join(",").into()),
            ("restarts", u64::from(e.restarts).into()),
        ]);
    }
    r
}

/// Every hidden function and its owner.
fn owners() -> Vec<(vmm_glue::Sbdf, Owner)> {
    crate::passthrough::with(|pt| {
        pt.pool
            .registry()
            .iter()
            .map(|(s, r)| (*s, r.owner))
            .collect()
    })
    .unwrap_or_default()
}

/// `lspci`, or with `pool` `pci-assignable-list`.
fn lspci(pool: bool) -> Reply {
    let rows = crate::passthrough::with(|pt| {
        let mut rows = Vec::new();
        for f in &pt.funcs {
            let owner = match pt.pool.registry().owner(f.sbdf) {
                None => String::from("host"),
                Some(Owner::Pciback) => String::from("hidden"),
                Some(Owner::Domain(d)) => format!("dom{d}"),
            };
            if pool && owner != "hidden" {
                continue;
            }
            let bars: Vec<String> = f
                .bars
                .iter()
                .map(|b| format!("{}:{:#x}+{:#x}", b.index, b.base, b.size))
                .collect();
            // The registers as they are now (hiding and giving back
            // change them): Command, the six BAR dwords, Interrupt Line.
            use core::fmt::Write;
            use vmm_glue::PciConfig;
            let mut regs = String::new();
            for i in 0..6 {
                let sep = if i == 0 { "" } else { "," };
                let _ = write!(regs, "{sep}{:#x}", pt.host.read32(f.sbdf, 0x10 + 4 * i));
            }
            rows.push(vec![
                ("bdf", Value::Str(format!("{}", f.sbdf))),
                ("id", format!("{:04x}:{:04x}", f.vendor, f.device).into()),
                ("class", f.class_name().into()),
                ("owner", owner.into()),
                ("bars", bars.join(",").into()),
                ("pin", u64::from(f.interrupt_pin).into()),
                ("command", u64::from(pt.host.read16(f.sbdf, 4)).into()),
                ("bar_regs", regs.into()),
                ("line", u64::from(pt.host.read8(f.sbdf, 0x3c)).into()),
            ]);
        }
        rows
    })
    .unwrap_or_default();
    let (cmd, what) = if pool {
        ("pci-assignable-list", "hidden function(s) no domain owns")
    } else {
        ("lspci", "PCI function(s)")
    };
    let mut r = Reply::ok(cmd, format!("{} {what}", rows.len()));
    r.rows = rows;
    r
}

fn info(virt: &Virt) -> Reply {
    let vendor = crate::cpuinfo::vendor();
    let virt = match virt {
        Virt::Svm(_) => "svm+npt",
        Virt::Vmx(_) => "vmx+ept",
    };
    let insecure = crate::passthrough::with(|pt| pt.pool.insecure()).unwrap_or(false);
    let mut r = Reply::ok("info", "");
    r.row(vec![
        ("cpu", String::from_utf8_lossy(&vendor).into_owned().into()),
        ("virt", virt.into()),
        ("insecure", (if insecure { "on" } else { "off" }).into()),
    ]);
    for (kind, base, remaps) in crate::iommu::units() {
        r.row(vec![
            ("iommu", kind.into()),
            ("base", format!("{base:#x}").into()),
            ("intremap", (if remaps { "on" } else { "off" }).into()),
        ]);
    }
    r
}

fn stats(hub: &Hub, entries: &[Entry]) -> Reply {
    let res = Resources::now(hub);
    let mut r = Reply::ok("stats", "");
    r.row(vec![
        ("free_frames", res.free_frames.into()),
        ("table_frames", res.iommu_frames.into()),
        ("pirqs", (res.routes as u64).into()),
        ("grants", (res.grant_maps as u64).into()),
        ("xenstore_nodes", (res.xs_nodes as u64).into()),
        ("domains", (entries.len() as u64).into()),
    ]);
    for e in entries {
        let x = &e.dom.exits;
        r.row(vec![
            ("dom", u64::from(e.dom.id).into()),
            ("cpuid", x.cpuid.into()),
            ("msr", x.msr.into()),
            ("io", x.io.into()),
            ("hypercall", x.hypercall.into()),
            ("hlt", x.hlt.into()),
            ("npf", x.npf.into()),
            ("window", x.window.into()),
            ("interrupt", x.interrupt.into()),
            ("exception", x.exception.into()),
            ("other", x.other.into()),
            ("device_irqs", x.device_irqs.into()),
        ]);
    }
    r
}
