//! Collecting the problems of one file: at most [`MAX_ERRORS`] errors and
//! [`MAX_WARNINGS`] warnings, each showing the value it is about.

use alloc::string::String;
use alloc::vec::Vec;

use super::errors::{ConfigError, ConfigErrorKind, ConfigWarning, ConfigWarningKind};
use super::meaning::{suggest, XL_KEYS};
use super::{MAX_ERRORS, MAX_WARNINGS};

/// Characters of a value that a message shows before "...".
const SHOWN_CHARS: usize = 60;

/// How a message shows the value a problem is about.
#[derive(Clone, Copy)]
pub(super) enum Shown<'t> {
    Nothing,
    /// A whole value, as written.
    Value(&'t str),
    /// One list item, as written; shown as `[item]`.
    Item(&'t str),
}

pub(super) struct Report<'f> {
    pub(super) file: &'f str,
    pub(super) errors: Vec<ConfigError>,
    pub(super) more_errors: usize,
    pub(super) warnings: Vec<ConfigWarning>,
    pub(super) more_warnings: usize,
}

impl Report<'_> {
    pub(super) fn error(
        &mut self,
        line: usize,
        key: Option<&str>,
        shown: Shown<'_>,
        kind: ConfigErrorKind,
    ) {
        if self.errors.len() >= MAX_ERRORS {
            self.more_errors += 1;
            return;
        }
        self.errors.push(ConfigError {
            file: self.file.into(),
            line,
            key: key.map(Into::into),
            value: render(shown),
            kind,
        });
    }

    /// Whether one more warning is kept; counts it if not.
    fn room_for_warning(&mut self) -> bool {
        if self.warnings.len() >= MAX_WARNINGS {
            self.more_warnings += 1;
            false
        } else {
            true
        }
    }

    pub(super) fn warn(
        &mut self,
        line: usize,
        key: &str,
        shown: Shown<'_>,
        kind: ConfigWarningKind,
    ) {
        if self.room_for_warning() {
            self.warnings.push(ConfigWarning {
                file: self.file.into(),
                line,
                key: Some(key.into()),
                value: render(shown),
                kind,
            });
        }
    }

    pub(super) fn unknown_key(&mut self, line: usize, key: &str) {
        if !self.room_for_warning() {
            return;
        }
        let kind = if XL_KEYS.split(' ').any(|k| k == key) {
            ConfigWarningKind::IgnoredXlKey
        } else {
            ConfigWarningKind::UnknownKey {
                suggestion: suggest(key),
            }
        };
        self.warn(line, key, Shown::Nothing, kind);
    }
}

fn render(shown: Shown<'_>) -> Option<String> {
    match shown {
        Shown::Nothing => None,
        Shown::Value(raw) => Some(shorten(raw)),
        Shown::Item(raw) => {
            let mut s = String::from("[");
            s.push_str(&shorten(raw));
            s.push(']');
            Some(s)
        }
    }
}

/// `raw` for a message: line breaks and the indentation after them become
/// one space, control characters are escaped, and it stops after
/// [`SHOWN_CHARS`] characters with "...".
pub(super) fn shorten(raw: &str) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut in_break = false;
    for c in raw.chars() {
        if c == '\n' || (in_break && matches!(c, ' ' | '\t' | '\r')) {
            in_break = true;
            continue;
        }
        if count >= SHOWN_CHARS {
            out.push_str("...");
            return out;
        }
        if in_break {
            in_break = false;
            out.push(' ');
            count += 1;
        }
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
        count += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use alloc::string::String;

    use crate::domcfg::testutil::{config_and_warnings, errors, errors_with_base, BASE};
    use crate::domcfg::{MAX_ERRORS, MAX_WARNINGS};

    #[test]
    fn all_errors_of_a_file_are_reported_together_in_line_order() {
        let e = errors(
            "memory = 'x'\n\
             pci = ['00:03.0,bogus=1']\n\
             type = 'hvm'\n\
             vcpus = 0\n\
             on_crash = 'preserve'\n",
        );
        assert_eq!(
            e,
            [
                "g.cfg:1: memory = 'x': expected a number of MiB",
                "g.cfg:2: pci = ['00:03.0,bogus=1']: unknown option 'bogus' (known: permissive, msitranslate, seize, power_mgmt, rdm_policy)",
                "g.cfg:3: type = 'hvm': only \"pvh\" and \"pv\" domains are supported (no \"hvm\")",
                "g.cfg:4: vcpus = 0: must be between 1 and 128",
                "g.cfg:5: on_crash = 'preserve': only \"destroy\" and \"restart\" are supported",
                "g.cfg: no 'name =' line: the domain needs a name",
                "g.cfg: no 'kernel =' line: the domain needs a kernel module name",
            ]
        );
    }

    #[test]
    fn long_and_multi_line_values_are_shortened_in_messages() {
        let long = "y".repeat(100);
        let e = errors_with_base(&alloc::format!("memory = '{long}'"));
        assert_eq!(
            e,
            [alloc::format!(
                "g.cfg:3: memory = '{}...: expected a number of MiB",
                &long[..59]
            )]
        );
        let e = errors_with_base("memory = [\n    1,\n    2,\n]");
        assert_eq!(e, ["g.cfg:3: memory = [ 1, 2, ]: expected a number of MiB"]);
        let e = errors_with_base("\u{1}x = 1");
        assert_eq!(e, ["g.cfg:3: expected 'key = value', found '\\u{1}x = 1'"]);
    }

    #[test]
    fn too_many_errors_are_counted_in_a_last_error() {
        let text = "bad line\n".repeat(MAX_ERRORS + 10);
        let e = errors(&text);
        assert_eq!(e.len(), MAX_ERRORS + 1);
        assert_eq!(e[MAX_ERRORS], "g.cfg: 12 more errors not shown");
    }

    #[test]
    fn too_many_warnings_are_counted_in_a_last_warning() {
        let mut text = String::from(BASE);
        for i in 0..MAX_WARNINGS + 3 {
            text.push_str(&alloc::format!("unknown{i} = 1\n"));
        }
        let (_, w) = config_and_warnings(&text);
        assert_eq!(w.len(), MAX_WARNINGS + 1);
        assert_eq!(w[MAX_WARNINGS], "g.cfg: 3 more warnings not shown");
    }
}
