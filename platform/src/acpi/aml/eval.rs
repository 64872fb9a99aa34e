//! Deciding, without running it, which package a `_PRT` method returns
//! when the OS has said `\_PIC(1)` (APIC mode), as Linux does at boot.
//!
//! The method body is walked in order as an interpreter would, but only
//! what the answer depends on is evaluated: `If`/`Else` predicates made of
//! constants, the variable `\_PIC` stores its argument in (taken as 1) and
//! the logical operators; `Return` of a named package, an inline package,
//! a call of a method without arguments (followed, to a bounded depth) or
//! a local variable last set to a package by a plain `Store`. A predicate
//! that reads anything else (an NVS field, a method's result) decides
//! nothing: both ways are followed, and unless they give the same table
//! the answer is [`Outcome::Unknown`], never a guess. A local variable
//! touched by anything but a plain `Store` (an indexed store in a `While`
//! loop building the package) is unknown too.

use super::cursor::{starts_name, Cursor};
use super::error::AmlError;
use super::name::{AmlPath, NameString};
use super::namespace::{InScope, Namespace, Object, ObjectKind, Value};
use super::term::*;

/// `Store (Source, Target)`.
const STORE_OP: u8 = 0x70;
/// `Local0` .. `Local7`.
const LOCAL0_OP: u8 = 0x60;
/// `Arg0`.
const ARG0_OP: u8 = 0x68;
/// `LAnd`, `LOr`, `LNot`, `LEqual`, `LGreater`, `LLess`, `And`, `Or`.
const LAND_OP: u8 = 0x90;
const LOR_OP: u8 = 0x91;
const LNOT_OP: u8 = 0x92;
const LEQUAL_OP: u8 = 0x93;
const LGREATER_OP: u8 = 0x94;
const LLESS_OP: u8 = 0x95;
const AND_OP: u8 = 0x7b;
const OR_OP: u8 = 0x7d;

/// How many methods deep a `Return` of a method call is followed.
const MAX_CALLS: usize = 8;
/// How deep blocks, calls and predicates may nest in all (each level is a
/// stack frame of the walk; the hypervisor's stack is small).
const MAX_NEST: usize = 24;
/// How many terms one evaluation may look at (bounds the time on any
/// input).
const MAX_STEPS: usize = 20_000;

/// The package a method returns, and where its names are resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The object that holds it: a `Name`, or the method that returns it
    /// inline.
    pub from: AmlPath,
    /// The scope its names (link devices) are resolved in.
    pub scope: AmlPath,
    /// The package.
    pub value: Value,
}

/// What walking a method gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It returns this package in APIC mode.
    Returns(Found),
    /// The walk reached the end without a `Return`.
    Falls,
    /// It cannot be decided statically.
    Unknown(Undecided),
}

/// Why a method's result cannot be decided statically.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Undecided {
    /// The table and offset of the term that decides it.
    pub table: usize,
    /// See `table`.
    pub offset: usize,
    /// What the reader could not know.
    pub why: &'static str,
    /// The name the answer depends on, when there is one.
    pub name: Option<NameString>,
}

/// The walk of one method's body.
pub(crate) struct Eval<'n, 'a> {
    ns: &'n Namespace<'a>,
    /// The variable `\_PIC` stores its argument in.
    pic: Option<AmlPath>,
    steps: usize,
}

/// `Local0`-`Local7`: on the heap, so that a frame of the walk stays small.
type Locals = alloc::boxed::Box<[Option<Found>; 8]>;

impl<'n, 'a> Eval<'n, 'a> {
    pub fn new(ns: &'n Namespace<'a>) -> Self {
        Eval {
            ns,
            pic: pic_variable(ns),
            steps: 0,
        }
    }

    /// What `method` returns in APIC mode.
    pub fn method(&mut self, method: &Object, calls: usize, depth: usize) -> Outcome {
        let ObjectKind::Method { body, .. } = &method.kind else {
            return Outcome::Falls;
        };
        let Some(aml) = self.ns.table(method.table) else {
            return Outcome::Falls;
        };
        let c = Cursor::new(aml, method.table, body.start, body.end);
        let mut locals: Locals = Default::default();
        match self.block(c, &method.path, &mut locals, calls, depth + 1) {
            Ok(o) => o,
            Err(e) => unknown(e.table, e.offset, "AML the reader cannot step over", None),
        }
    }

    fn block(
        &mut self,
        mut c: Cursor<'_>,
        scope: &AmlPath,
        locals: &mut Locals,
        calls: usize,
        depth: usize,
    ) -> Result<Outcome, AmlError> {
        if depth > MAX_NEST {
            return Ok(unknown(c.table, c.pos, "blocks nested too deeply", None));
        }
        let methods = InScope { ns: self.ns, scope };
        while let Some(op) = c.peek() {
            self.steps += 1;
            if self.steps > MAX_STEPS {
                return Ok(unknown(c.table, c.pos, "method too long to follow", None));
            }
            let at = c.pos;
            match op {
                IF_OP => {
                    c.pos += 1;
                    let end = c.pkg_length()?;
                    let mut body = c.sub(c.pos, end);
                    let pred = body;
                    let mut probe = body;
                    let cond = self.int(&mut probe, scope, 0);
                    skip_term(&mut body, &methods, 1)?;
                    c.pos = end;
                    let mut other = None;
                    if c.peek() == Some(ELSE_OP) {
                        c.pos += 1;
                        let end = c.pkg_length()?;
                        other = Some(c.sub(c.pos, end));
                        c.pos = end;
                    }
                    let taken = match cond {
                        Some(v) if v != 0 => Some(body),
                        Some(_) => other,
                        None => {
                            // Each way, then the rest of the block after
                            // the If when that way falls through.
                            let rest = c.sub(c.pos, c.end);
                            let a = self.way(Some(body), rest, scope, locals, calls, depth)?;
                            let b = self.way(other, rest, scope, locals, calls, depth)?;
                            if a == b && !matches!(a, Outcome::Unknown(_)) {
                                return Ok(a);
                            }
                            return Ok(unknown(
                                c.table,
                                at,
                                "the table depends on run-time state",
                                condition_name(pred),
                            ));
                        }
                    };
                    if let Some(t) = taken {
                        match self.block(t, scope, locals, calls, depth + 1)? {
                            Outcome::Falls => {}
                            other => return Ok(other),
                        }
                    }
                }
                ELSE_OP | WHILE_OP => {
                    skip_term(&mut c, &methods, 1)?;
                    let span = c.sub(at, c.pos);
                    let bytes = span.aml.get(at..c.pos).unwrap_or(&[]);
                    if op == WHILE_OP && bytes.contains(&RETURN_OP) {
                        return Ok(unknown(c.table, at, "returns from inside a loop", None));
                    }
                    forget(locals, span);
                }
                RETURN_OP => {
                    c.pos += 1;
                    return Ok(self.returned(&mut c, scope, locals, calls, depth));
                }
                STORE_OP if matches!(c.peek2(), Some(PACKAGE_OP | VAR_PACKAGE_OP)) => {
                    c.pos += 1;
                    let value = parse_data(&mut c, 1)?;
                    let target = c.peek();
                    skip_term(&mut c, &methods, 1)?;
                    match target {
                        Some(t @ LOCAL0_OP..=0x67) => {
                            locals[usize::from(t - LOCAL0_OP)] = Some(Found {
                                from: scope.clone(),
                                scope: scope.clone(),
                                value,
                            })
                        }
                        _ => forget(locals, c.sub(at, c.pos)),
                    }
                }
                _ => {
                    skip_term(&mut c, &methods, 1)?;
                    forget(locals, c.sub(at, c.pos));
                }
            }
        }
        Ok(Outcome::Falls)
    }

    /// One way of an undecided `If`: its block (if any), then `rest`
    /// when it falls through, on a copy of the local variables.
    fn way(
        &mut self,
        block: Option<Cursor<'_>>,
        rest: Cursor<'_>,
        scope: &AmlPath,
        locals: &Locals,
        calls: usize,
        depth: usize,
    ) -> Result<Outcome, AmlError> {
        let mut l = locals.clone();
        if let Some(b) = block {
            match self.block(b, scope, &mut l, calls, depth + 1)? {
                Outcome::Falls => {}
                o => return Ok(o),
            }
        }
        self.block(rest, scope, &mut l, calls, depth + 1)
    }

    /// The operand of a `Return`.
    fn returned(
        &mut self,
        c: &mut Cursor<'_>,
        scope: &AmlPath,
        locals: &Locals,
        calls: usize,
        depth: usize,
    ) -> Outcome {
        let at = c.pos;
        match c.peek() {
            Some(PACKAGE_OP | VAR_PACKAGE_OP) => match parse_data(c, 1) {
                Ok(value) => Outcome::Returns(Found {
                    from: scope.clone(),
                    scope: scope.clone(),
                    value,
                }),
                Err(e) => unknown(e.table, e.offset, "bad package", None),
            },
            Some(l @ LOCAL0_OP..=0x67) => match &locals[usize::from(l - LOCAL0_OP)] {
                Some(f) => Outcome::Returns(f.clone()),
                None => unknown(
                    c.table,
                    at,
                    "returns a package built at run time in a local variable",
                    None,
                ),
            },
            Some(b) if starts_name(b) => {
                let Ok(name) = c.name_string() else {
                    return unknown(c.table, at, "bad name", None);
                };
                match self.ns.resolve(scope, &name) {
                    Some(Object {
                        kind: ObjectKind::Name(v),
                        path,
                        ..
                    }) => Outcome::Returns(Found {
                        from: path.clone(),
                        scope: path.parent().unwrap_or_default(),
                        value: v.clone(),
                    }),
                    Some(
                        m @ Object {
                            kind: ObjectKind::Method { args: 0, .. },
                            ..
                        },
                    ) if calls < MAX_CALLS => match self.method(m, calls + 1, depth + 1) {
                        Outcome::Falls => unknown(
                            c.table,
                            at,
                            "calls a method that returns nothing",
                            Some(name),
                        ),
                        o => o,
                    },
                    Some(Object {
                        kind: ObjectKind::Method { .. },
                        ..
                    }) => unknown(
                        c.table,
                        at,
                        "calls a method too deep or with arguments",
                        Some(name),
                    ),
                    _ => unknown(
                        c.table,
                        at,
                        "returns an object that is not a package",
                        Some(name),
                    ),
                }
            }
            _ => unknown(c.table, at, "returns a computed value", None),
        }
    }

    /// The value of an integer expression, if it is known statically;
    /// `c` is left anywhere (the caller steps over the term itself).
    fn int(&self, c: &mut Cursor<'_>, scope: &AmlPath, depth: usize) -> Option<u64> {
        if depth > MAX_NEST {
            return None;
        }
        let op = c.peek()?;
        if starts_name(op) {
            let name = c.name_string().ok()?;
            let o = self.ns.resolve(scope, &name)?;
            return (Some(&o.path) == self.pic.as_ref()).then_some(1);
        }
        match op {
            ZERO_OP | ONE_OP | ONES_OP | BYTE_PREFIX | WORD_PREFIX | DWORD_PREFIX
            | QWORD_PREFIX => parse_data(c, 1).ok()?.as_integer(),
            LNOT_OP => {
                c.pos += 1;
                Some(u64::from(self.int(c, scope, depth + 1)? == 0))
            }
            LAND_OP | LOR_OP | LEQUAL_OP | LGREATER_OP | LLESS_OP | AND_OP | OR_OP => {
                c.pos += 1;
                // Both operands are evaluated in order; the second starts
                // where the first ends, so the first must be stepped over
                // by its shape.
                let mut first = *c;
                let a = self.int(&mut first, scope, depth + 1);
                skip_term(c, &InScope { ns: self.ns, scope }, 1).ok()?;
                let b = self.int(c, scope, depth + 1);
                let (a, b) = match (op, a, b) {
                    (LAND_OP, Some(0), _) | (LAND_OP, _, Some(0)) => return Some(0),
                    (LOR_OP, Some(x), _) | (LOR_OP, _, Some(x)) if x != 0 => return Some(1),
                    (_, Some(a), Some(b)) => (a, b),
                    _ => return None,
                };
                Some(match op {
                    LAND_OP => u64::from(a != 0 && b != 0),
                    LOR_OP => u64::from(a != 0 || b != 0),
                    LEQUAL_OP => u64::from(a == b),
                    LGREATER_OP => u64::from(a > b),
                    LLESS_OP => u64::from(a < b),
                    AND_OP => a & b,
                    _ => a | b,
                })
            }
            _ => None,
        }
    }
}

fn unknown(table: usize, offset: usize, why: &'static str, name: Option<NameString>) -> Outcome {
    Outcome::Unknown(Undecided {
        table,
        offset,
        why,
        name,
    })
}

/// Forgets every local variable whose opcode appears in `span` (a term the
/// walk stepped over may have changed it; a false match only forgets).
fn forget(locals: &mut Locals, span: Cursor<'_>) {
    let bytes = span.aml.get(span.pos..span.end).unwrap_or(&[]);
    for (i, l) in locals.iter_mut().enumerate() {
        if bytes.contains(&(LOCAL0_OP + i as u8)) {
            *l = None;
        }
    }
}

/// The first name in a predicate, for the message.
fn condition_name(mut c: Cursor<'_>) -> Option<NameString> {
    while let Some(b) = c.peek() {
        if starts_name(b) {
            return c.name_string().ok();
        }
        if !matches!(
            b,
            LNOT_OP | LAND_OP | LOR_OP | LEQUAL_OP | LGREATER_OP | LLESS_OP | AND_OP
        ) {
            return None;
        }
        c.pos += 1;
    }
    None
}

/// The variable `\_PIC` stores its argument in: the target of the
/// `Store (Arg0, X)` in its body (ASL's `X = Arg0`).
fn pic_variable(ns: &Namespace<'_>) -> Option<AmlPath> {
    let m = ns.find("\\_PIC")?;
    let ObjectKind::Method { body, .. } = &m.kind else {
        return None;
    };
    let aml = ns.table(m.table)?.get(body.clone())?;
    let at = aml.windows(2).position(|w| w == [STORE_OP, ARG0_OP])?;
    let mut c = Cursor::new(aml, m.table, at + 2, aml.len());
    let name = c.name_string().ok()?;
    ns.resolve(&m.path, &name).map(|o| o.path.clone())
}
