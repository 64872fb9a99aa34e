//! Syntax: text to settings. Reads `KEY = VALUE` lines, quoted strings,
//! numbers and lists as written, and resumes after a syntax error at the next
//! line that starts a setting.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;

use super::errors::ConfigErrorKind;
use super::report::{shorten, Report, Shown};

/// How deeply lists may nest (xl allows nesting; no key we use needs it).
pub(super) const MAX_LIST_DEPTH: usize = 8;

/// One `key = value` as written. `value` is `None` when it had errors (already
/// reported): the key still counts as given.
pub(super) struct Setting<'t> {
    pub(super) key: &'t str,
    pub(super) line: usize,
    pub(super) value: Option<Item<'t>>,
}

/// A value as written.
pub(super) struct Item<'t> {
    /// The line it starts on.
    pub(super) line: usize,
    /// The source text, quotes and brackets included.
    pub(super) raw: &'t str,
    pub(super) kind: ItemKind<'t>,
}

pub(super) enum ItemKind<'t> {
    /// A quoted string, escapes resolved.
    Quoted(Cow<'t, str>),
    /// An unquoted word (a number, if valid); the text is `raw`.
    Bare,
    List(Vec<Item<'t>>),
}

/// The outcome of reading a value.
enum Parsed<'t> {
    Ok(Item<'t>),
    /// Errors inside (reported) but the value's extent is known: reading goes
    /// on after it.
    Bad,
    /// A syntax error (reported) left the position inside the value: the
    /// caller must skip ahead.
    Lost,
    /// A syntax error (reported), and the position was moved to the start of
    /// the line of the next setting (or the end).
    Resynced,
    /// A syntax error (reported) inside a list, and the position was moved
    /// past the `]` closing the outermost list.
    Skipped,
}

/// Bytes that may appear in an unquoted value. Non-ASCII bytes are allowed,
/// so a word always ends on a character boundary.
fn is_bare(b: u8) -> bool {
    !matches!(
        b,
        b' ' | b'\t' | b'\r' | b'\n' | b'#' | b',' | b'[' | b']' | b'=' | b';' | b'"' | b'\''
    ) && !b.is_ascii_control()
}

/// The length of the key `[A-Za-z_][A-Za-z0-9_]*` at the start of `b`.
pub(super) fn key_len(b: &[u8]) -> usize {
    match b.first() {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => b
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
            .count(),
        _ => 0,
    }
}

pub(super) struct Parser<'t, 'r, 'f> {
    text: &'t str,
    pos: usize,
    line: usize,
    report: &'r mut Report<'f>,
}

impl<'t, 'r, 'f> Parser<'t, 'r, 'f> {
    pub(super) fn new(text: &'t str, report: &'r mut Report<'f>) -> Self {
        let pos = if text.starts_with('\u{feff}') { 3 } else { 0 };
        Self {
            text,
            pos,
            line: 1,
            report,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn slice(&self, start: usize, end: usize) -> &'t str {
        self.text.get(start..end).unwrap_or("")
    }

    fn rest(&self) -> &'t str {
        self.text.get(self.pos..).unwrap_or("")
    }

    /// The rest of the current line, without its line break.
    fn rest_of_line(&self) -> &'t str {
        let rest = self.rest();
        let line = rest.split('\n').next().unwrap_or(rest);
        line.trim_end_matches('\r')
    }

    /// Moves to the line break ending the current line (or the end).
    fn skip_line(&mut self) {
        let rest = self.rest();
        self.pos += rest.find('\n').unwrap_or(rest.len());
    }

    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r')) {
            self.pos += 1;
        }
    }

    fn newline(&mut self) {
        self.pos += 1;
        self.line += 1;
    }

    /// Whether the text here is `key =`: a new setting.
    fn looks_like_setting(&self) -> bool {
        let b = self.rest().as_bytes();
        let n = key_len(b);
        let mut after = b.iter().skip(n).skip_while(|c| matches!(c, b' ' | b'\t'));
        n > 0 && after.next() == Some(&b'=')
    }

    // Out of line: one copy for the parser's many error sites.
    #[inline(never)]
    fn error(&mut self, line: usize, key: &str, kind: ConfigErrorKind) {
        self.report.error(line, Some(key), Shown::Nothing, kind);
    }

    /// Reads every setting; errors go to the report.
    pub(super) fn settings(&mut self) -> Vec<Setting<'t>> {
        let mut out = Vec::new();
        loop {
            // Blank lines, comments and empty `;` statements.
            loop {
                match self.peek() {
                    Some(b' ' | b'\t' | b'\r' | b';') => self.pos += 1,
                    Some(b'\n') => self.newline(),
                    Some(b'#') => self.skip_line(),
                    _ => break,
                }
            }
            if self.peek().is_none() {
                return out;
            }
            let line = self.line;
            let n = key_len(self.rest().as_bytes());
            if n == 0 {
                let found = shorten(self.rest_of_line());
                let kind = ConfigErrorKind::ExpectedSetting { found };
                self.report.error(line, None, Shown::Nothing, kind);
                self.skip_line();
                continue;
            }
            let key = self.slice(self.pos, self.pos + n);
            self.pos += n;
            self.skip_spaces();
            let value = if self.peek() != Some(b'=') {
                self.error(line, key, ConfigErrorKind::ExpectedEquals);
                self.skip_line();
                None
            } else {
                self.pos += 1;
                self.skip_spaces();
                match self.peek() {
                    None | Some(b'\n' | b'#' | b';') => {
                        self.error(line, key, ConfigErrorKind::MissingValue);
                        None
                    }
                    _ => match self.value(key, 0) {
                        Parsed::Ok(item) => {
                            if self.end_of_setting(key, Shown::Value(item.raw)) {
                                Some(item)
                            } else {
                                None
                            }
                        }
                        Parsed::Bad | Parsed::Skipped => {
                            self.end_of_setting(key, Shown::Nothing);
                            None
                        }
                        Parsed::Lost => {
                            self.skip_line();
                            None
                        }
                        Parsed::Resynced => None,
                    },
                }
            };
            out.push(Setting { key, line, value });
        }
    }

    /// Checks that nothing but a comment or `;` follows a value.
    fn end_of_setting(&mut self, key: &str, shown: Shown<'_>) -> bool {
        let line = self.line;
        self.skip_spaces();
        match self.peek() {
            None | Some(b'\n' | b'#' | b';') => true,
            _ => {
                let found = shorten(self.rest_of_line());
                let kind = ConfigErrorKind::TrailingText { found };
                self.report.error(line, Some(key), shown, kind);
                self.skip_line();
                false
            }
        }
    }

    /// Reads a value inside `depth` lists.
    fn value(&mut self, key: &'t str, depth: usize) -> Parsed<'t> {
        let (line, start) = (self.line, self.pos);
        match self.peek() {
            Some(q @ (b'"' | b'\'')) => self.string(key, q),
            Some(b'[') => self.list(key, depth + 1),
            _ => {
                let n = self.rest().bytes().take_while(|&b| is_bare(b)).count();
                if n == 0 {
                    let c = self.rest().chars().next().unwrap_or(' ');
                    self.error(line, key, ConfigErrorKind::UnexpectedCharacter(c));
                    return Parsed::Lost;
                }
                self.pos += n;
                Parsed::Ok(Item {
                    line,
                    raw: self.slice(start, self.pos),
                    kind: ItemKind::Bare,
                })
            }
        }
    }

    /// Reads a string opened by `quote`, which must close on the same line.
    fn string(&mut self, key: &'t str, quote: u8) -> Parsed<'t> {
        let (line, start) = (self.line, self.pos);
        let quote = char::from(quote);
        self.pos += 1;
        let mut owned: Option<String> = None;
        let mut piece = self.pos;
        let mut bad = false;
        loop {
            let mut chars = self.rest().chars();
            let Some(c) = chars.next() else { break };
            match c {
                '\n' => break,
                '\\' => match chars.next() {
                    None | Some('\n') => break,
                    Some(n) if n == quote || n == '\\' => {
                        let s = owned.get_or_insert_with(String::new);
                        s.push_str(self.slice(piece, self.pos));
                        s.push(n);
                        self.pos += 2;
                        piece = self.pos;
                    }
                    Some(n) => {
                        if !bad {
                            self.error(line, key, ConfigErrorKind::BadEscape(n));
                        }
                        bad = true;
                        self.pos += 1 + n.len_utf8();
                    }
                },
                c if c == quote => {
                    let end = self.pos;
                    self.pos += 1;
                    if bad {
                        return Parsed::Bad;
                    }
                    let text = match owned {
                        Some(mut s) => {
                            s.push_str(self.slice(piece, end));
                            Cow::Owned(s)
                        }
                        None => Cow::Borrowed(self.slice(piece, end)),
                    };
                    return Parsed::Ok(Item {
                        line,
                        raw: self.slice(start, self.pos),
                        kind: ItemKind::Quoted(text),
                    });
                }
                c => {
                    if c.is_control() && !bad {
                        self.error(line, key, ConfigErrorKind::ControlCharacter(c));
                    }
                    bad |= c.is_control();
                    self.pos += c.len_utf8();
                }
            }
        }
        self.error(line, key, ConfigErrorKind::UnclosedString { quote });
        Parsed::Lost
    }

    /// Reads a list; `depth` counts it and the lists around it.
    fn list(&mut self, key: &'t str, depth: usize) -> Parsed<'t> {
        let (line, start) = (self.line, self.pos);
        self.pos += 1;
        if depth > MAX_LIST_DEPTH {
            self.error(line, key, ConfigErrorKind::ListTooDeep);
            return self.recover(depth);
        }
        let mut items = Vec::new();
        let mut bad = false;
        loop {
            if let Some(end) = self.list_gap(key, line) {
                return end;
            }
            match self.peek() {
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                Some(b',') => {
                    self.error(self.line, key, ConfigErrorKind::EmptyListItem);
                    return self.recover(depth);
                }
                _ => match self.value(key, depth) {
                    Parsed::Ok(item) => items.push(item),
                    Parsed::Bad => bad = true,
                    Parsed::Lost => return self.recover(depth),
                    end @ (Parsed::Resynced | Parsed::Skipped) => return end,
                },
            }
            if let Some(end) = self.list_gap(key, line) {
                return end;
            }
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                next => {
                    let kind = match next {
                        Some(b) if !is_bare(b) && !matches!(b, b'"' | b'\'' | b'[') => {
                            ConfigErrorKind::UnexpectedCharacter(char::from(b))
                        }
                        _ => ConfigErrorKind::MissingComma,
                    };
                    self.error(self.line, key, kind);
                    return self.recover(depth);
                }
            }
        }
        if bad {
            return Parsed::Bad;
        }
        Parsed::Ok(Item {
            line,
            raw: self.slice(start, self.pos),
            kind: ItemKind::List(items),
        })
    }

    /// Skips blanks, comments and line breaks inside a list opened on
    /// `open_line`. Ends the list early, as unclosed, at the end of the text
    /// or before a line that starts a new setting.
    fn list_gap(&mut self, key: &str, open_line: usize) -> Option<Parsed<'t>> {
        loop {
            self.skip_spaces();
            match self.peek() {
                Some(b'#') => self.skip_line(),
                Some(b'\n') => {
                    self.newline();
                    self.skip_spaces();
                    if self.looks_like_setting() {
                        let before_line = Some(self.line);
                        self.error(
                            open_line,
                            key,
                            ConfigErrorKind::UnclosedList { before_line },
                        );
                        return Some(Parsed::Resynced);
                    }
                }
                None => {
                    let kind = ConfigErrorKind::UnclosedList { before_line: None };
                    self.error(open_line, key, kind);
                    return Some(Parsed::Resynced);
                }
                Some(_) => return None,
            }
        }
    }

    /// After a syntax error inside `open` lists: skips past the `]` closing
    /// the outermost one, or to the next line that starts a setting.
    fn recover(&mut self, mut open: usize) -> Parsed<'t> {
        while let Some(b) = self.peek() {
            match b {
                b'\n' => {
                    self.newline();
                    self.skip_spaces();
                    if self.looks_like_setting() {
                        return Parsed::Resynced;
                    }
                }
                b'#' => self.skip_line(),
                b'"' | b'\'' => {
                    self.pos += 1;
                    while let Some(c) = self.peek() {
                        if c == b'\n' {
                            break;
                        }
                        self.pos += 1;
                        if c == b'\\' && self.peek().is_some_and(|n| n != b'\n') {
                            self.pos += 1;
                        } else if c == b {
                            break;
                        }
                    }
                }
                b'[' => {
                    open += 1;
                    self.pos += 1;
                }
                b']' => {
                    self.pos += 1;
                    open = open.saturating_sub(1);
                    if open == 0 {
                        return Parsed::Skipped;
                    }
                }
                _ => self.pos += 1,
            }
        }
        Parsed::Resynced
    }
}

#[cfg(test)]
mod tests;
