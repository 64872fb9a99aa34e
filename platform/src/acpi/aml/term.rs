//! Terms: decoding data objects, and stepping over any other term by the
//! shape of its operands without evaluating it.

use alloc::vec::Vec;

use super::cursor::{starts_name, Cursor, MAX_DEPTH};
use super::error::{AmlError, AmlErrorKind};
use super::name::NameString;

pub(crate) const ZERO_OP: u8 = 0x00;
pub(crate) const ONE_OP: u8 = 0x01;
pub(crate) const ALIAS_OP: u8 = 0x06;
pub(crate) const NAME_OP: u8 = 0x08;
pub(crate) const BYTE_PREFIX: u8 = 0x0a;
pub(crate) const WORD_PREFIX: u8 = 0x0b;
pub(crate) const DWORD_PREFIX: u8 = 0x0c;
pub(crate) const STRING_PREFIX: u8 = 0x0d;
pub(crate) const QWORD_PREFIX: u8 = 0x0e;
pub(crate) const SCOPE_OP: u8 = 0x10;
pub(crate) const BUFFER_OP: u8 = 0x11;
pub(crate) const PACKAGE_OP: u8 = 0x12;
pub(crate) const VAR_PACKAGE_OP: u8 = 0x13;
pub(crate) const METHOD_OP: u8 = 0x14;
pub(crate) const EXTERNAL_OP: u8 = 0x15;
pub(crate) const EXT_OP_PREFIX: u8 = 0x5b;
pub(crate) const IF_OP: u8 = 0xa0;
pub(crate) const ELSE_OP: u8 = 0xa1;
pub(crate) const WHILE_OP: u8 = 0xa2;
pub(crate) const RETURN_OP: u8 = 0xa4;
pub(crate) const ONES_OP: u8 = 0xff;

// Second bytes of extended (0x5b-prefixed) opcodes.
pub(crate) const EXT_MUTEX: u8 = 0x01;
pub(crate) const EXT_EVENT: u8 = 0x02;
pub(crate) const EXT_REVISION: u8 = 0x30;
pub(crate) const EXT_OP_REGION: u8 = 0x80;
pub(crate) const EXT_FIELD: u8 = 0x81;
pub(crate) const EXT_DEVICE: u8 = 0x82;
pub(crate) const EXT_PROCESSOR: u8 = 0x83;
pub(crate) const EXT_POWER_RES: u8 = 0x84;
pub(crate) const EXT_THERMAL_ZONE: u8 = 0x85;
pub(crate) const EXT_INDEX_FIELD: u8 = 0x86;
pub(crate) const EXT_BANK_FIELD: u8 = 0x87;
pub(crate) const EXT_DATA_REGION: u8 = 0x88;

/// A data object decoded from AML, with the offset it starts at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    /// Offset of its first byte from the start of its table.
    pub offset: usize,
    /// What it is.
    pub kind: ValueKind,
}

/// The kinds of data a static reader can decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// `Zero`, `One`, `Ones` or a Byte/Word/DWord/QWord constant.
    Integer(u64),
    /// A string constant, without its terminating NUL.
    String(Vec<u8>),
    /// A buffer's initializer bytes (a declared size larger than the
    /// initializer, which AML pads with zeros, is not kept).
    Buffer(Vec<u8>),
    /// A package (or a variable package with a constant count): its
    /// initialized elements in order.
    Package(Vec<Value>),
    /// A reference to a named object, as package elements such as a
    /// `_PRT` entry's Source are.
    Name(NameString),
    /// The `Revision` constant (the interpreter's revision: not static).
    Revision,
}

impl Value {
    /// The integer, if this is one.
    pub fn as_integer(&self) -> Option<u64> {
        match self.kind {
            ValueKind::Integer(v) => Some(v),
            _ => None,
        }
    }
}

/// How many arguments the method a name refers to takes: a method
/// invocation is a bare name followed by that many terms, and only the
/// namespace can tell.
pub(crate) trait ArgCounts {
    /// The argument count of the method `name` refers to, 0 if it is not
    /// a known method.
    fn args(&self, name: &NameString) -> u8;
}

/// For walks before the namespace is known: every name is a plain
/// reference.
pub(crate) struct NoMethods;

impl ArgCounts for NoMethods {
    fn args(&self, _: &NameString) -> u8 {
        0
    }
}

/// Decodes a data object (DataRefObject or PackageElement): constants,
/// strings, buffers, packages and name references.
pub(crate) fn parse_data(c: &mut Cursor<'_>, depth: usize) -> Result<Value, AmlError> {
    if depth > MAX_DEPTH {
        return Err(c.error(AmlErrorKind::TooDeep));
    }
    let offset = c.pos;
    let op = c.peek().ok_or(c.error(AmlErrorKind::Truncated))?;
    if starts_name(op) {
        let name = c.name_string()?;
        return Ok(Value {
            offset,
            kind: ValueKind::Name(name),
        });
    }
    c.pos += 1;
    let kind = match op {
        ZERO_OP => ValueKind::Integer(0),
        ONE_OP => ValueKind::Integer(1),
        ONES_OP => ValueKind::Integer(u64::MAX),
        BYTE_PREFIX => ValueKind::Integer(c.le(1)?),
        WORD_PREFIX => ValueKind::Integer(c.le(2)?),
        DWORD_PREFIX => ValueKind::Integer(c.le(4)?),
        QWORD_PREFIX => ValueKind::Integer(c.le(8)?),
        STRING_PREFIX => {
            let mut s = Vec::new();
            loop {
                match c.byte()? {
                    0 => break,
                    b => s.push(b),
                }
            }
            ValueKind::String(s)
        }
        BUFFER_OP => {
            let end = c.pkg_length()?;
            let mut body = c.sub(c.pos, end);
            skip_term(&mut body, &NoMethods, depth + 1)?;
            let bytes = body.take(end.saturating_sub(body.pos))?;
            c.pos = end;
            ValueKind::Buffer(bytes.to_vec())
        }
        PACKAGE_OP | VAR_PACKAGE_OP => {
            let end = c.pkg_length()?;
            let mut body = c.sub(c.pos, end);
            if op == PACKAGE_OP {
                body.byte()?;
            } else {
                skip_term(&mut body, &NoMethods, depth + 1)?;
            }
            let mut elements = Vec::new();
            while !body.at_end() {
                elements.push(parse_data(&mut body, depth + 1)?);
            }
            c.pos = end;
            ValueKind::Package(elements)
        }
        EXT_OP_PREFIX if c.peek() == Some(EXT_REVISION) => {
            c.pos += 1;
            ValueKind::Revision
        }
        _ => return Err(c.error_at(offset, AmlErrorKind::NotData)),
    };
    Ok(Value { offset, kind })
}

/// What follows an opcode, in order.
#[derive(Clone, Copy)]
enum Operand {
    /// A TermArg, SuperName or Target: any term.
    Term,
    /// A NameString that is not invoked (a definition's name).
    Name,
    /// A fixed number of data bytes.
    Bytes(usize),
}

use Operand::{Bytes, Name, Term};

/// The operands of a one-byte opcode that has neither a PkgLength nor a
/// special encoding.
fn operands(op: u8) -> Option<&'static [Operand]> {
    Some(match op {
        // Noop, Break, BreakPoint, Continue.
        0xa3 | 0xa5 | 0xcc | 0x9f => &[],
        // Locals 0-7, Args 0-6.
        0x60..=0x6e => &[],
        ALIAS_OP => &[Name, Name],
        NAME_OP => &[Name, Term],
        EXTERNAL_OP => &[Name, Bytes(2)],
        // Store, Notify, CopyObject.
        0x70 | 0x86 | 0x9d => &[Term, Term],
        // RefOf, Increment, Decrement, DerefOf, SizeOf, ObjectType,
        // LNot, Return.
        0x71 | 0x75 | 0x76 | 0x83 | 0x87 | 0x8e | 0x92 | RETURN_OP => &[Term],
        // Add, Concat, Subtract, Multiply, ShiftLeft, ShiftRight, And,
        // NAnd, Or, NOr, XOr, ConcatRes, Mod, Index, ToString.
        0x72 | 0x73 | 0x74 | 0x77 | 0x79 | 0x7a | 0x7b | 0x7c | 0x7d | 0x7e | 0x7f | 0x84
        | 0x85 | 0x88 | 0x9c => &[Term, Term, Term],
        // Divide, Mid.
        0x78 | 0x9e => &[Term, Term, Term, Term],
        // Not, FindSetLeftBit, FindSetRightBit, ToBuffer,
        // ToDecimalString, ToHexString, ToInteger.
        0x80 | 0x81 | 0x82 | 0x96 | 0x97 | 0x98 | 0x99 => &[Term, Term],
        // LAnd, LOr, LEqual, LGreater, LLess.
        0x90 | 0x91 | 0x93 | 0x94 | 0x95 => &[Term, Term],
        // Match.
        0x89 => &[Term, Bytes(1), Term, Bytes(1), Term, Term],
        // CreateDWordField, CreateWordField, CreateByteField,
        // CreateBitField, CreateQWordField.
        0x8a | 0x8b | 0x8c | 0x8d | 0x8f => &[Term, Term, Name],
        _ => return None,
    })
}

/// The operands of an extended opcode (after 0x5b) without a PkgLength.
fn ext_operands(op: u8) -> Option<&'static [Operand]> {
    Some(match op {
        EXT_MUTEX => &[Name, Bytes(1)],
        EXT_EVENT => &[Name],
        // CondRefOf, Wait, FromBCD, ToBCD.
        0x12 | 0x25 | 0x28 | 0x29 => &[Term, Term],
        // CreateField.
        0x13 => &[Term, Term, Term, Name],
        // LoadTable.
        0x1f => &[Term, Term, Term, Term, Term, Term],
        // Load.
        0x20 => &[Name, Term],
        // Stall, Sleep, Signal, Reset, Release, Unload.
        0x21 | 0x22 | 0x24 | 0x26 | 0x27 | 0x2a => &[Term],
        // Acquire.
        0x23 => &[Term, Bytes(2)],
        // Revision, Debug, Timer.
        EXT_REVISION | 0x31 | 0x33 => &[],
        // Fatal.
        0x32 => &[Bytes(5), Term],
        EXT_OP_REGION => &[Name, Bytes(1), Term, Term],
        EXT_DATA_REGION => &[Name, Term, Term, Term],
        _ => return None,
    })
}

/// Whether an extended opcode is followed by a PkgLength that spans it.
fn ext_has_pkg_length(op: u8) -> bool {
    matches!(
        op,
        EXT_FIELD
            | EXT_DEVICE
            | EXT_PROCESSOR
            | EXT_POWER_RES
            | EXT_THERMAL_ZONE
            | EXT_INDEX_FIELD
            | EXT_BANK_FIELD
    )
}

/// Steps over one term of any kind, by the shape of its operands. A bare
/// name is a method invocation when `methods` says it names a method, and
/// its arguments are stepped over too.
pub(crate) fn skip_term(
    c: &mut Cursor<'_>,
    methods: &dyn ArgCounts,
    depth: usize,
) -> Result<(), AmlError> {
    if depth > MAX_DEPTH {
        return Err(c.error(AmlErrorKind::TooDeep));
    }
    let at = c.pos;
    let op = c.peek().ok_or(c.error(AmlErrorKind::Truncated))?;
    if starts_name(op) {
        let name = c.name_string()?;
        for _ in 0..methods.args(&name) {
            skip_term(c, methods, depth + 1)?;
        }
        return Ok(());
    }
    let shape = match op {
        ZERO_OP | ONE_OP | ONES_OP | BYTE_PREFIX | WORD_PREFIX | DWORD_PREFIX | QWORD_PREFIX
        | STRING_PREFIX => {
            parse_data(c, depth)?;
            return Ok(());
        }
        BUFFER_OP | PACKAGE_OP | VAR_PACKAGE_OP | SCOPE_OP | METHOD_OP | IF_OP | ELSE_OP
        | WHILE_OP => {
            c.pos += 1;
            c.pos = c.pkg_length()?;
            return Ok(());
        }
        EXT_OP_PREFIX => {
            c.pos += 1;
            let ext = c.byte()?;
            if ext_has_pkg_length(ext) {
                c.pos = c.pkg_length()?;
                return Ok(());
            }
            ext_operands(ext).ok_or(c.error_at(
                at,
                AmlErrorKind::UnknownOpcode(u16::from_be_bytes([EXT_OP_PREFIX, ext])),
            ))?
        }
        _ => {
            c.pos += 1;
            operands(op).ok_or(c.error_at(at, AmlErrorKind::UnknownOpcode(u16::from(op))))?
        }
    };
    for operand in shape {
        match operand {
            Term => skip_term(c, methods, depth + 1)?,
            Name => {
                c.name_string()?;
            }
            Bytes(n) => {
                c.take(*n)?;
            }
        }
    }
    Ok(())
}
