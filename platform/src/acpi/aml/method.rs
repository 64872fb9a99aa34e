//! Searching a method's body, without running it, for what it returns.

use alloc::vec::Vec;

use super::cursor::{starts_name, Cursor, MAX_DEPTH};
use super::error::{AmlError, AmlErrorKind};
use super::name::{AmlPath, NameString};
use super::namespace::{InScope, Namespace, Object, ObjectKind};
use super::term::*;

/// The operand of one `Return` in a method body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Returned {
    /// `Return (NAME)`: a name, to be resolved in the method's scope (a
    /// call of a method with no arguments looks the same).
    Name(NameString),
    /// `Return (data)`: a constant, string, buffer or package.
    Data(Value),
    /// `Return (expression)`: something computed; the offset of the
    /// expression in the table.
    Computed(usize),
}

impl Namespace<'_> {
    /// Every `Return` in `method`'s body, in byte order, including those
    /// inside `If`, `Else` and `While` blocks (which branch runs is not
    /// decided). The walk steps over other statements by the shape of
    /// their operands; if it meets one it cannot step over, it returns
    /// what it found up to there together with the error.
    pub fn method_returns(&self, method: &Object) -> (Vec<Returned>, Option<AmlError>) {
        let mut found = Vec::new();
        let ObjectKind::Method { body, .. } = &method.kind else {
            return (found, None);
        };
        let Some(aml) = self.table(method.table) else {
            return (found, None);
        };
        let c = Cursor::new(aml, method.table, body.start, body.end);
        let err = self.returns_in(c, &method.path, 0, &mut found).err();
        (found, err)
    }

    fn returns_in(
        &self,
        mut c: Cursor<'_>,
        scope: &AmlPath,
        depth: usize,
        found: &mut Vec<Returned>,
    ) -> Result<(), AmlError> {
        if depth > MAX_DEPTH {
            return Err(c.error(AmlErrorKind::TooDeep));
        }
        let methods = InScope { ns: self, scope };
        while let Some(op) = c.peek() {
            match op {
                IF_OP | WHILE_OP | ELSE_OP => {
                    c.pos += 1;
                    let end = c.pkg_length()?;
                    let mut block = c.sub(c.pos, end);
                    if op != ELSE_OP {
                        skip_term(&mut block, &methods, depth + 1)?;
                    }
                    self.returns_in(block, scope, depth + 1, found)?;
                    c.pos = end;
                }
                RETURN_OP => {
                    c.pos += 1;
                    let at = c.pos;
                    let mut probe = c;
                    let returned = match probe.peek() {
                        Some(b) if starts_name(b) && methods.args(&probe.name_string()?) == 0 => {
                            Returned::Name(c.sub(at, c.end).name_string()?)
                        }
                        Some(
                            ZERO_OP | ONE_OP | ONES_OP | BYTE_PREFIX | WORD_PREFIX | DWORD_PREFIX
                            | QWORD_PREFIX | STRING_PREFIX | BUFFER_OP | PACKAGE_OP
                            | VAR_PACKAGE_OP,
                        ) => Returned::Data(parse_data(&mut probe, depth + 1)?),
                        _ => Returned::Computed(at),
                    };
                    skip_term(&mut c, &methods, depth + 1)?;
                    found.push(returned);
                }
                _ => skip_term(&mut c, &methods, depth + 1)?,
            }
        }
        Ok(())
    }
}
