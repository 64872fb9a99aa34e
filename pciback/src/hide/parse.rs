//! The `pciback.hide=` scanner and the address parser for one entry.
//!
//! The scanner cuts the value into pieces without ever giving up: each `(`
//! starts a new entry, so a broken entry cannot swallow the next one. Every
//! slice is cut next to an ASCII character (`(`, `)`, `:`, `.`, a blank), so
//! no cut falls inside a multi-byte character.

use alloc::vec::Vec;

use super::error::{Field, HideError, HideErrorKind};
use super::{Duplicate, HideList, HidePattern};

/// Parses a `pciback.hide=` value. Entries that parse are applied even when
/// others do not: the second half of the result lists one error per piece of
/// text that was ignored.
pub fn parse_hide_list(value: &str) -> (HideList, Vec<HideError>) {
    let mut list = HideList::default();
    let mut errors = Vec::new();
    for item in Scanner::new(value) {
        let position = item.position;
        match item.into_result() {
            Ok(pattern) if list.entries.contains(&pattern) => {
                list.duplicates.push(Duplicate { position, pattern });
            }
            Ok(pattern) => list.entries.push(pattern),
            Err(e) => errors.push(e),
        }
    }
    (list, errors)
}

/// Blanks tolerated between entries and around the numbers.
const fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn trim_blanks(s: &str) -> &str {
    s.trim_matches(is_blank)
}

/// One piece of the option value: an entry or a run of stray text.
#[derive(Debug)]
pub(super) struct Item<'a> {
    /// Byte offset of `text` in the value.
    pub position: usize,
    /// The piece as written (without trailing blanks).
    pub text: &'a str,
    pub result: Result<HidePattern, HideErrorKind>,
}

impl Item<'_> {
    pub fn into_result(self) -> Result<HidePattern, HideError> {
        self.result.map_err(|reason| HideError {
            position: self.position,
            text: self.text.into(),
            reason,
        })
    }
}

/// Cuts a value into [`Item`]s.
#[derive(Debug)]
pub(super) struct Scanner<'a> {
    value: &'a str,
    /// Where the next piece starts looking; always a char boundary.
    at: usize,
}

impl<'a> Scanner<'a> {
    pub fn new(value: &'a str) -> Self {
        Self { value, at: 0 }
    }

    fn item(
        &mut self,
        start: usize,
        end: usize,
        result: Result<HidePattern, HideErrorKind>,
    ) -> Item<'a> {
        self.at = end;
        Item {
            position: start,
            text: self.value[start..end].trim_end_matches(is_blank),
            result,
        }
    }
}

impl<'a> Iterator for Scanner<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        let rest = self.value[self.at..].trim_start_matches(is_blank);
        let start = self.value.len() - rest.len();
        if rest.is_empty() {
            self.at = start;
            return None;
        }
        let Some(inside) = rest.strip_prefix('(') else {
            // Stray text: one error for the whole run up to the next entry.
            let end = rest.find('(').map_or(self.value.len(), |k| start + k);
            return Some(self.item(start, end, Err(HideErrorKind::Stray)));
        };
        let open = start + 1;
        let item = match inside.find(['(', ')']) {
            Some(k) if inside[k..].starts_with(')') => {
                self.item(start, open + k + 1, parse_address(&inside[..k]))
            }
            // Resume at the inner '(': it may start a good entry.
            Some(k) => self.item(start, open + k, Err(HideErrorKind::Nested)),
            None => self.item(start, self.value.len(), Err(HideErrorKind::Unterminated)),
        };
        Some(item)
    }
}

/// Parses what stands between the parentheses: `bb:dd.f` or `dddd:bb:dd.f`.
fn parse_address(inside: &str) -> Result<HidePattern, HideErrorKind> {
    let inside = trim_blanks(inside);
    if inside.is_empty() {
        return Err(HideErrorKind::Empty);
    }
    let mut parts = inside.split(':');
    let (seg, bus, dev_func) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(bus), Some(dev_func), None, None) => (None, bus, dev_func),
        (Some(seg), Some(bus), Some(dev_func), None) => (Some(seg), bus, dev_func),
        _ => {
            return Err(HideErrorKind::WrongColons {
                colons: inside.matches(':').count(),
            })
        }
    };
    let (dev, func) = dev_func.split_once('.').ok_or(HideErrorKind::MissingDot)?;
    let seg = match seg {
        Some(s) => number(Field::Segment, s)?.unwrap_or_default(),
        None => 0,
    };
    let bus = number(Field::Bus, bus)?.unwrap_or_default();
    let dev = number(Field::Device, dev)?;
    let func = number(Field::Function, func)?;
    Ok(HidePattern {
        // `number` checked each value against its field's maximum.
        seg: seg as u16,
        bus: bus as u8,
        dev: dev.map(|d| d as u8),
        func: func.map(|f| f as u8),
    })
}

/// One number of an address: `Ok(None)` for an accepted `*`.
fn number(field: Field, text: &str) -> Result<Option<u32>, HideErrorKind> {
    let text = trim_blanks(text);
    if text.is_empty() {
        return Err(HideErrorKind::MissingNumber { field });
    }
    if text == "*" {
        return if field.wildcard_allowed() {
            Ok(None)
        } else {
            Err(HideErrorKind::Wildcard { field })
        };
    }
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(HideErrorKind::NotHex {
            field,
            digits: text.into(),
        });
    }
    // Leading zeros aside, more than 8 digits overflow a u32: out of range
    // for every field.
    let significant = text.trim_start_matches('0');
    let value = match u32::from_str_radix(significant, 16) {
        Ok(v) => v,
        Err(_) if significant.is_empty() => 0,
        Err(_) => u32::MAX,
    };
    if value > field.max() {
        return Err(HideErrorKind::OutOfRange {
            field,
            digits: text.into(),
        });
    }
    if text.len() > field.max_digits() {
        return Err(HideErrorKind::TooManyDigits {
            field,
            digits: text.into(),
        });
    }
    Ok(Some(value))
}
