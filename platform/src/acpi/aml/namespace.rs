//! The static namespace: every named object the definition blocks declare,
//! under its absolute path, found without running any method.

use alloc::vec::Vec;
use core::ops::Range;
use vmm_glue::compact::VecMap;

use super::cursor::{Cursor, MAX_DEPTH};
use super::error::{AmlError, AmlErrorKind};
use super::name::{AmlPath, NameString};
use super::term::*;
use crate::acpi::SDT_HEADER_LEN;

pub use super::term::{Value, ValueKind};

/// A named object found in a definition block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    /// Its absolute path.
    pub path: AmlPath,
    /// The table it is defined in: 0 for the DSDT, `i + 1` for SSDT `i`.
    pub table: usize,
    /// Offset of its defining opcode in that table.
    pub offset: usize,
    /// What it is.
    pub kind: ObjectKind,
}

/// The kinds of named object the reader records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// `Name (X, data)`: its value.
    Name(Value),
    /// `Method (X, args)`: the argument count and the byte range of its
    /// body in the table (not run, but it can be searched).
    Method {
        /// Number of arguments (0 to 7).
        args: u8,
        /// The body's bytes, as offsets into the table.
        body: Range<usize>,
    },
    /// `Device (X)`.
    Device,
    /// `Processor`, `PowerResource` or `ThermalZone`: scopes that hold
    /// objects of their own.
    OtherScope,
    /// Anything else with a name: `OperationRegion`, `Mutex`, `Event`,
    /// `DataTableRegion`, `Alias`, buffer fields. Field units (the names
    /// inside a `Field` list) are not recorded.
    Other,
}

/// The named objects of a DSDT and its SSDTs.
#[derive(Clone, Debug, Default)]
pub struct Namespace<'a> {
    /// The tables, header included: the DSDT first, then the SSDTs.
    tables: Vec<&'a [u8]>,
    /// Every object in definition order (a path defined twice keeps its
    /// first definition).
    objects: Vec<Object>,
    /// Path to index in `objects`.
    by_path: VecMap<AmlPath, usize>,
    /// Where the walk had to give up on a term list, and why.
    errors: Vec<AmlError>,
}

impl<'a> Namespace<'a> {
    /// Walks the DSDT and then each SSDT (whole tables, header included).
    /// A table whose header is unusable is an error; trouble inside the
    /// AML ends the walk of one term list and is kept in
    /// [`errors`](Self::errors).
    pub fn build(dsdt: &'a [u8], ssdts: &[&'a [u8]]) -> Result<Self, AmlError> {
        let mut ns = Namespace::default();
        for (table, aml) in core::iter::once(dsdt)
            .chain(ssdts.iter().copied())
            .enumerate()
        {
            let len = aml
                .get(4..8)
                .and_then(|l| l.try_into().ok())
                .map(u32::from_le_bytes)
                .and_then(|l| usize::try_from(l).ok());
            let err = AmlError {
                table,
                offset: 0,
                kind: AmlErrorKind::BadTableHeader,
            };
            match len {
                Some(len) if len >= SDT_HEADER_LEN && len <= aml.len() => {
                    ns.tables.push(aml);
                    let c = Cursor::new(aml, table, SDT_HEADER_LEN, len);
                    ns.walk(c, &AmlPath::root(), 0);
                }
                _ => return Err(err),
            }
        }
        Ok(ns)
    }

    /// Every object, in definition order.
    pub fn objects(&self) -> &[Object] {
        &self.objects
    }

    /// Where the walk gave up on a term list (an unknown opcode, a bad
    /// length): the objects after that point in the same list are missing.
    pub fn errors(&self) -> &[AmlError] {
        &self.errors
    }

    /// The object at an absolute path.
    pub fn get(&self, path: &AmlPath) -> Option<&Object> {
        self.by_path.get(path).and_then(|&i| self.objects.get(i))
    }

    /// The object at a path written as text, such as `\_SB.PCI0._PRT`.
    pub fn find(&self, path: &str) -> Option<&Object> {
        self.get(&AmlPath::parse(path)?)
    }

    /// The object `name` refers to when used in `scope`: a single bare
    /// segment is searched for in `scope` and then each enclosing scope up
    /// to the root; other names are taken as written.
    pub fn resolve(&self, scope: &AmlPath, name: &NameString) -> Option<&Object> {
        if !name.searches_upward() {
            return self.get(&name.in_scope(scope)?);
        }
        let seg = *name.segs.first()?;
        let mut at = Some(scope.clone());
        while let Some(s) = at {
            if let Some(o) = self.get(&s.child(seg)) {
                return Some(o);
            }
            at = s.parent();
        }
        None
    }

    /// The bytes of table `table` (0: the DSDT), header included.
    pub(crate) fn table(&self, table: usize) -> Option<&'a [u8]> {
        self.tables.get(table).copied()
    }

    fn define(&mut self, path: AmlPath, c: &Cursor<'_>, offset: usize, kind: ObjectKind) {
        if self.by_path.contains_key(&path) {
            return;
        }
        self.by_path.insert(path.clone(), self.objects.len());
        self.objects.push(Object {
            path,
            table: c.table,
            offset,
            kind,
        });
    }

    /// Walks a term list, recording definitions; gives up on the rest of
    /// the list at the first term it cannot step over.
    fn walk(&mut self, mut c: Cursor<'_>, scope: &AmlPath, depth: usize) {
        while !c.at_end() {
            if let Err(e) = self.step(&mut c, scope, depth) {
                self.errors.push(e);
                return;
            }
        }
    }

    /// One term of a term list.
    fn step(&mut self, c: &mut Cursor<'_>, scope: &AmlPath, depth: usize) -> Result<(), AmlError> {
        if depth > MAX_DEPTH {
            return Err(c.error(AmlErrorKind::TooDeep));
        }
        let at = c.pos;
        let bad_name = |c: &Cursor<'_>| c.error_at(at, AmlErrorKind::BadName);
        match (c.peek(), c.peek2()) {
            (Some(SCOPE_OP), _) => {
                c.pos += 1;
                let end = c.pkg_length()?;
                let name = c.name_string()?;
                let path = name.in_scope(scope).ok_or(bad_name(c))?;
                self.walk(c.sub(c.pos, end), &path, depth + 1);
                c.pos = end;
            }
            (Some(METHOD_OP), _) => {
                c.pos += 1;
                let end = c.pkg_length()?;
                let name = c.name_string()?;
                let flags = c.byte()?;
                let path = name.in_scope(scope).ok_or(bad_name(c))?;
                let kind = ObjectKind::Method {
                    args: flags & 7,
                    body: c.pos..end,
                };
                self.define(path, c, at, kind);
                c.pos = end;
            }
            (Some(NAME_OP), _) => {
                c.pos += 1;
                let name = c.name_string()?;
                let value = parse_data(c, depth + 1)?;
                let path = name.in_scope(scope).ok_or(bad_name(c))?;
                self.define(path, c, at, ObjectKind::Name(value));
            }
            (
                Some(EXT_OP_PREFIX),
                Some(op @ (EXT_DEVICE | EXT_PROCESSOR | EXT_POWER_RES | EXT_THERMAL_ZONE)),
            ) => {
                c.pos += 2;
                let end = c.pkg_length()?;
                let name = c.name_string()?;
                // Processor: ProcID, PblkAddr, PblkLen; PowerResource:
                // SystemLevel, ResourceOrder.
                match op {
                    EXT_PROCESSOR => {
                        c.take(6)?;
                    }
                    EXT_POWER_RES => {
                        c.take(3)?;
                    }
                    _ => {}
                }
                let path = name.in_scope(scope).ok_or(bad_name(c))?;
                let kind = if op == EXT_DEVICE {
                    ObjectKind::Device
                } else {
                    ObjectKind::OtherScope
                };
                self.define(path.clone(), c, at, kind);
                self.walk(c.sub(c.pos, end), &path, depth + 1);
                c.pos = end;
            }
            (
                Some(EXT_OP_PREFIX),
                Some(EXT_MUTEX | EXT_EVENT | EXT_OP_REGION | EXT_DATA_REGION),
            )
            | (Some(ALIAS_OP), _) => {
                // The defined name is the first operand, except for Alias
                // (source, then the new name).
                let alias = c.peek() == Some(ALIAS_OP);
                let mut probe = *c;
                probe.pos += if alias { 1 } else { 2 };
                if alias {
                    probe.name_string()?;
                }
                let name = probe.name_string()?;
                skip_term(c, &NoMethods, depth + 1)?;
                let path = name.in_scope(scope).ok_or(bad_name(c))?;
                self.define(path, c, at, ObjectKind::Other);
            }
            (Some(0x8a | 0x8b | 0x8c | 0x8d | 0x8f), _) => {
                // CreateXField (source, index, name): the name comes last.
                c.pos += 1;
                skip_term(c, &NoMethods, depth + 1)?;
                skip_term(c, &NoMethods, depth + 1)?;
                let name = c.name_string()?;
                let path = name.in_scope(scope).ok_or(bad_name(c))?;
                self.define(path, c, at, ObjectKind::Other);
            }
            // Conditional blocks at definition level are stepped over:
            // what they define depends on run-time state.
            _ => skip_term(c, &InScope { ns: self, scope }, depth + 1)?,
        }
        Ok(())
    }
}

/// Method argument counts from the namespace, for names used in `scope`.
pub(crate) struct InScope<'n, 'a> {
    /// The namespace (as far as it is known).
    pub ns: &'n Namespace<'a>,
    /// Where the names are used.
    pub scope: &'n AmlPath,
}

impl ArgCounts for InScope<'_, '_> {
    fn args(&self, name: &NameString) -> u8 {
        match self.ns.resolve(self.scope, name) {
            Some(Object {
                kind: ObjectKind::Method { args, .. },
                ..
            }) => *args,
            _ => 0,
        }
    }
}
