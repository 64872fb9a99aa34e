//! The hypervisor's shell on the serial console: what a typed line means
//! and how the answer is written.
//!
//! Bytes typed on the serial line go through a [`LineEditor`]: printable
//! bytes make a line, backspace takes one back, Enter ends it, and
//! Ctrl-A three times in a row switches where input goes (the shell, then
//! each domain's console in turn, as Xen's console does). A line is a
//! [`Command`] in xl's vocabulary ([`parse`]); a wrong one gets a message
//! that says what is wrong and what to type instead.
//!
//! Every answer is a [`Reply`]: whether the command did what it was asked,
//! a message, and rows of named values. People get it as text, one
//! `key=value` row per line; a line that starts with `ctl ` asks for the
//! control channel's form instead, one JSON object on one line after
//! `ctl: `, versioned by its `"v"` field (docs/shell.md), which scripts
//! (and `cargo xtask`'s scenarios) read.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::{self, Write};
use vmm_glue::Sbdf;

/// The control channel's version, the `"v"` of every reply.
pub const VERSION: u32 = 1;

/// The longest line the shell keeps; what is typed beyond it is dropped
/// (and the line refused when it ends).
pub const LINE_MAX: usize = 200;

/// Ctrl-A: three in a row switch where input goes.
const CTRL_A: u8 = 0x01;

/// What a byte typed on the serial line did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Typed {
    /// Nothing to do yet (part of a line, or a Ctrl-A of a switch).
    Nothing,
    /// Echo these bytes (what was typed, or the erasing of a character).
    Echo(&'static [u8]),
    /// Echo this byte.
    EchoByte(u8),
    /// A whole line (without its end), and whether it was too long.
    Line(String, bool),
    /// Ctrl-A three times: input goes to the next console.
    Switch,
}

/// Collects typed bytes into lines.
#[derive(Debug, Default)]
pub struct LineEditor {
    line: Vec<u8>,
    overflow: bool,
    ctrl_a: u8,
    /// The last byte ended a line with CR; an LF right after it is the
    /// same line end.
    after_cr: bool,
}

impl LineEditor {
    /// Takes one typed byte.
    pub fn feed(&mut self, b: u8) -> Typed {
        let after_cr = core::mem::take(&mut self.after_cr);
        if b == CTRL_A {
            self.ctrl_a += 1;
            if self.ctrl_a == 3 {
                self.ctrl_a = 0;
                return Typed::Switch;
            }
            return Typed::Nothing;
        }
        self.ctrl_a = 0;
        match b {
            b'\r' | b'\n' => {
                if b == b'\n' && after_cr {
                    return Typed::Nothing;
                }
                self.after_cr = b == b'\r';
                let line = core::mem::take(&mut self.line);
                let long = core::mem::take(&mut self.overflow);
                Typed::Line(String::from_utf8_lossy(&line).into_owned(), long)
            }
            // Backspace and DEL.
            0x08 | 0x7f => match self.line.pop() {
                Some(_) => Typed::Echo(b"\x08 \x08"),
                None => Typed::Nothing,
            },
            0x20..=0x7e => {
                if self.line.len() < LINE_MAX {
                    self.line.push(b);
                } else {
                    self.overflow = true;
                }
                Typed::EchoByte(b)
            }
            _ => Typed::Nothing,
        }
    }
}

/// A domain as a command names it: its id, or its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DomRef {
    Id(u16),
    Name(String),
}

impl DomRef {
    fn parse(word: &str) -> Self {
        let id = word.strip_prefix("dom").unwrap_or(word);
        match id.parse() {
            Ok(n) => Self::Id(n),
            Err(_) => Self::Name(word.to_string()),
        }
    }

    /// Whether this names the domain `id` called `name`.
    pub fn matches(&self, id: u16, name: &str) -> bool {
        match self {
            Self::Id(n) => *n == id,
            Self::Name(s) => s == name,
        }
    }
}

impl fmt::Display for DomRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(n) => write!(f, "dom{n}"),
            Self::Name(s) => f.write_str(s),
        }
    }
}

/// What a line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Help,
    /// The machine's PCI functions and their owners.
    Lspci,
    /// The hidden functions no domain owns.
    AssignableList,
    AssignableAdd(Sbdf),
    AssignableRemove(Sbdf),
    /// The domains.
    List,
    /// Build a domain from the boot module of that name.
    Create(String),
    Destroy(DomRef),
    Shutdown(DomRef),
    Reboot(DomRef),
    /// `pci-attach DOM BDF[,options]` (options as in `pci = [...]`).
    PciAttach(DomRef, crate::domcfg::PciAssignment),
    PciDetach(DomRef, Sbdf),
    /// Send typed input to this domain's console.
    Console(DomRef),
    /// CPU features, IOMMUs, remapping.
    Info,
    /// Counts: exits, interrupts, free resources.
    Stats,
    /// End the hypervisor (when no domain runs).
    Quit,
}

/// The commands, their arguments and what they do, as `help` prints them.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    ("help", "", "this list"),
    ("list", "", "the domains: state, vCPUs, memory, devices"),
    (
        "lspci",
        "",
        "the PCI functions: IDs, class, owner, BARs, interrupt pin",
    ),
    (
        "pci-assignable-list",
        "",
        "the hidden functions no domain owns",
    ),
    ("pci-assignable-add", "BDF", "hide a function at run time"),
    (
        "pci-assignable-remove",
        "BDF",
        "give a hidden function back to the host",
    ),
    (
        "create",
        "CONFIG_MODULE",
        "start a domain from a boot module (*.cfg)",
    ),
    ("destroy", "DOM", "end a domain at once"),
    ("shutdown", "DOM", "ask a domain to power off"),
    ("reboot", "DOM", "ask a domain to reboot"),
    (
        "pci-attach",
        "DOM BDF",
        "hand a hidden function to a running domain (BDF[,permissive=1])",
    ),
    (
        "pci-detach",
        "DOM BDF",
        "take a function back from a running domain",
    ),
    (
        "console",
        "DOM",
        "send typed input to DOM's console (Ctrl-A three times: back)",
    ),
    ("info", "", "CPU features, IOMMUs, interrupt remapping"),
    (
        "stats",
        "",
        "exits by reason per domain, interrupts, free resources",
    ),
    ("quit", "", "end the hypervisor once no domain runs"),
];

/// Why a line is not a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The first word names no command.
    Unknown(String),
    /// The arguments do not fit the command.
    Usage {
        cmd: &'static str,
        args: &'static str,
        why: String,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(w) => write!(f, "unknown command '{w}': type 'help' for the list"),
            Self::Usage { cmd, args, why } => {
                write!(f, "{cmd}: {why}; type '{cmd} {args}'")?;
                match *args {
                    "DOM" => write!(f, ", e.g. '{cmd} 1' or '{cmd} NAME'"),
                    "BDF" => write!(f, ", e.g. '{cmd} 00:03.0'"),
                    "DOM BDF" => write!(f, ", e.g. '{cmd} 1 00:03.0'"),
                    _ => Ok(()),
                }
            }
        }
    }
}

/// Reads a typed line; `None` for an empty one.
pub fn parse(line: &str) -> Option<Result<Command, ParseError>> {
    let mut words = line.split_ascii_whitespace();
    let first = words.next()?;
    let rest: Vec<&str> = words.collect();
    let Some(&(cmd, args, _)) = COMMANDS.iter().find(|c| c.0 == first) else {
        return Some(Err(ParseError::Unknown(first.to_string())));
    };
    let usage = |why: String| ParseError::Usage { cmd, args, why };
    let want = args.split_ascii_whitespace().count();
    if rest.len() != want {
        let why = match (want, rest.len()) {
            (0, _) => "takes no arguments".to_string(),
            (w, n) if n < w => format!("expected {args}"),
            _ => format!("too many arguments after {args}"),
        };
        return Some(Err(usage(why)));
    }
    let bdf = |w: &str| {
        w.parse::<Sbdf>().map_err(|_| {
            usage(format!(
                "'{w}' is not a PCI address 'bb:dd.f' or 'dddd:bb:dd.f'"
            ))
        })
    };
    Some(Ok(match cmd {
        "help" => Command::Help,
        "list" => Command::List,
        "lspci" => Command::Lspci,
        "pci-assignable-list" => Command::AssignableList,
        "pci-assignable-add" => match bdf(rest[0]) {
            Ok(s) => Command::AssignableAdd(s),
            Err(e) => return Some(Err(e)),
        },
        "pci-assignable-remove" => match bdf(rest[0]) {
            Ok(s) => Command::AssignableRemove(s),
            Err(e) => return Some(Err(e)),
        },
        "create" => Command::Create(rest[0].to_string()),
        "destroy" => Command::Destroy(DomRef::parse(rest[0])),
        "shutdown" => Command::Shutdown(DomRef::parse(rest[0])),
        "reboot" => Command::Reboot(DomRef::parse(rest[0])),
        "pci-attach" => match crate::domcfg::pci_spec(rest[1]) {
            Ok(a) => Command::PciAttach(DomRef::parse(rest[0]), a),
            Err(e) => return Some(Err(usage(format!("{e}")))),
        },
        "pci-detach" => match bdf(rest[1]) {
            Ok(s) => Command::PciDetach(DomRef::parse(rest[0]), s),
            Err(e) => return Some(Err(e)),
        },
        "console" => Command::Console(DomRef::parse(rest[0])),
        "info" => Command::Info,
        "stats" => Command::Stats,
        _ => Command::Quit,
    }))
}

/// A value in a reply row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Num(u64),
    Str(String),
}

impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Self::Num(n)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Self::Str(s)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::Str(s.to_string())
    }
}

/// A command's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The command's name (`error` for a line that is none).
    pub cmd: &'static str,
    /// Whether it did what it was asked.
    pub ok: bool,
    pub msg: String,
    pub rows: Vec<Vec<(&'static str, Value)>>,
}

impl Reply {
    pub fn ok(cmd: &'static str, msg: impl Into<String>) -> Self {
        Self {
            cmd,
            ok: true,
            msg: msg.into(),
            rows: Vec::new(),
        }
    }

    pub fn fail(cmd: &'static str, msg: impl Into<String>) -> Self {
        Self {
            ok: false,
            ..Self::ok(cmd, msg)
        }
    }

    /// Adds a row.
    pub fn row(&mut self, row: Vec<(&'static str, Value)>) {
        self.rows.push(row);
    }

    /// The text form: the message, then one `key=value` row per line
    /// (values with spaces quoted).
    pub fn text(&self, out: &mut impl Write) -> fmt::Result {
        if !self.msg.is_empty() {
            match (self.ok, self.cmd) {
                (false, "error") => writeln!(out, "error: {}", self.msg)?,
                (false, cmd) => writeln!(out, "{cmd}: error: {}", self.msg)?,
                (true, cmd) => writeln!(out, "{cmd}: {}", self.msg)?,
            }
        }
        for row in &self.rows {
            let mut sep = "  ";
            for (k, v) in row {
                match v {
                    Value::Num(n) => write!(out, "{sep}{k}={n}")?,
                    Value::Str(s) if s.contains(' ') || s.is_empty() => {
                        write!(out, "{sep}{k}=\"{s}\"")?
                    }
                    Value::Str(s) => write!(out, "{sep}{k}={s}")?,
                }
                sep = " ";
            }
            writeln!(out)?;
        }
        Ok(())
    }

    /// The control channel's form: one JSON object on one line, after
    /// `ctl: `.
    pub fn json(&self, out: &mut impl Write) -> fmt::Result {
        write!(
            out,
            "ctl: {{\"v\":{VERSION},\"cmd\":\"{}\",\"ok\":{},\"msg\":",
            self.cmd, self.ok
        )?;
        json_str(out, &self.msg)?;
        out.write_str(",\"rows\":[")?;
        for (i, row) in self.rows.iter().enumerate() {
            out.write_str(if i == 0 { "{" } else { ",{" })?;
            for (j, (k, v)) in row.iter().enumerate() {
                write!(out, "{}\"{k}\":", if j == 0 { "" } else { "," })?;
                match v {
                    Value::Num(n) => write!(out, "{n}")?,
                    Value::Str(s) => json_str(out, s)?,
                }
            }
            out.write_str("}")?;
        }
        out.write_str("]}\n")
    }
}

/// `s` as a JSON string.
fn json_str(out: &mut impl Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32)?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

/// The reply to `help`.
pub fn help() -> Reply {
    let mut r = Reply::ok(
        "help",
        "commands (a line starting with 'ctl ' gets the reply as one JSON line)",
    );
    for (name, args, what) in COMMANDS {
        r.row(alloc::vec![
            ("cmd", (*name).into()),
            ("args", (*args).into()),
            ("does", (*what).into())
        ]);
    }
    r
}

/// A typed line split into whether it asks for the control channel's form
/// and the command text.
pub fn channel(line: &str) -> (bool, &str) {
    let t = line.trim();
    match t.strip_prefix("ctl") {
        Some(rest) if rest.is_empty() || rest.starts_with(' ') => (true, rest.trim_start()),
        _ => (false, t),
    }
}

#[cfg(test)]
mod tests;
