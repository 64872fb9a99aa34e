//! Paths: validation, resolution of relative paths against a domain's
//! home, and ancestry.

use alloc::string::String;
use alloc::vec::Vec;

use super::wire::{XsError, ABS_PATH_MAX, REL_PATH_MAX};

/// A domain id. Domain 0 is the hypervisor acting as the control domain.
pub type DomId = u16;

/// A decimal domain id 0..=65535 (no sign, no spaces).
pub fn parse_domid(digits: &[u8]) -> Option<DomId> {
    if digits.is_empty() || digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    core::str::from_utf8(digits).ok()?.parse().ok()
}

/// `/local/domain/<domid>`, a domain's home and the base of its relative
/// paths.
pub fn domain_path(domid: DomId) -> String {
    let mut s = Vec::with_capacity(DOMAIN_PATH_MAX);
    push_domain_path(&mut s, domid, false);
    // ASCII: the prefix and decimal digits.
    String::from_utf8(s).unwrap_or_default()
}

/// `/local/domain/65535`: the longest [`domain_path`].
const DOMAIN_PATH_MAX: usize = 19;

/// Appends [`domain_path`]'s bytes to `s`, and a `/` after them if
/// `slash` (a relative path is resolved on every request: built on the
/// stack and appended once, without the formatting machinery).
fn push_domain_path(s: &mut Vec<u8>, domid: DomId, slash: bool) {
    const PREFIX: &[u8] = b"/local/domain/";
    let mut path = [b'/'; DOMAIN_PATH_MAX + 1];
    path[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 5];
    let mut n = domid;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let end = PREFIX.len() + digits.len() - i;
    path[PREFIX.len()..end].copy_from_slice(&digits[i..]);
    s.extend_from_slice(&path[..end + usize::from(slash)]);
}

/// Whether a path may hold `b`: ASCII letters and digits and `-/_@`.
/// Without a branch (each one a block to look up under an emulator) and
/// without a table (a page of read-only data more to touch).
fn allowed(b: u8) -> bool {
    let lower = b | 0x20;
    (lower.wrapping_sub(b'a') < 26)
        | (b.wrapping_sub(b'0') < 10)
        | (b == b'-')
        | (b == b'/')
        | (b == b'_')
        | (b == b'@')
}

/// Checks and resolves a path a client sent. Relative paths are taken
/// against the caller's home. The rules (docs/misc/xenstore.txt):
/// alphanumerics and `-/_@`, no doubled or trailing `/` (except the root),
/// not empty, at most 3072 bytes absolute or 2048 relative.
pub fn resolve(caller: DomId, raw: &[u8]) -> Result<String, XsError> {
    resolve_into(caller, raw, String::new())
}

/// [`resolve`] into `buf`'s allocation (its content is replaced): a
/// buffer kept from one request to the next saves an allocation on each.
pub fn resolve_into(caller: DomId, raw: &[u8], buf: String) -> Result<String, XsError> {
    // One pass over the bytes for the characters and the doubled `/`,
    // without a branch per byte: the verdicts are gathered and looked at
    // once. The allowed characters are ASCII, so the result is UTF-8,
    // built in one buffer and checked once.
    let (mut bad, mut prev) = (false, 0u8);
    for &b in raw {
        bad |= !allowed(b) | ((b == b'/') & (prev == b'/'));
        prev = b;
    }
    if bad {
        return Err(XsError::Inval);
    }
    let absolute = raw.first() == Some(&b'/');
    let limit = if absolute { ABS_PATH_MAX } else { REL_PATH_MAX };
    if raw.is_empty() || raw.len() > limit {
        return Err(XsError::Inval);
    }
    let mut abs = buf.into_bytes();
    abs.clear();
    abs.reserve(DOMAIN_PATH_MAX + 1 + raw.len());
    if !absolute {
        push_domain_path(&mut abs, caller, true);
    }
    abs.extend_from_slice(raw);
    if (abs.len() > 1 && abs.last() == Some(&b'/')) || abs.len() > ABS_PATH_MAX {
        return Err(XsError::Inval);
    }
    String::from_utf8(abs).map_err(|_| XsError::Inval)
}

/// The parent of an absolute path other than `/`.
pub fn parent(path: &str) -> Option<&str> {
    match path.rfind('/')? {
        _ if path == "/" => None,
        0 => Some("/"),
        i => Some(&path[..i]),
    }
}

/// Whether `child` is `ancestor` or below it.
pub fn is_at_or_below(child: &str, ancestor: &str) -> bool {
    ancestor == "/"
        || child == ancestor
        || (child.starts_with(ancestor) && child.as_bytes().get(ancestor.len()) == Some(&b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_paths_and_relative_paths_name_the_domain_in_decimal() {
        for (id, want) in [
            (0, "/local/domain/0"),
            (7, "/local/domain/7"),
            (10, "/local/domain/10"),
            (65535, "/local/domain/65535"),
        ] {
            assert_eq!(domain_path(id), want);
            assert_eq!(resolve(id, b"name").unwrap(), alloc::format!("{want}/name"));
        }
        assert_eq!(domain_path(65535).len(), DOMAIN_PATH_MAX);
    }

    #[test]
    fn paths_follow_the_documented_rules() {
        assert_eq!(resolve(0, b"/a/b-c_d@e").unwrap(), "/a/b-c_d@e");
        assert_eq!(resolve(3, b"x/y").unwrap(), "/local/domain/3/x/y");
        assert_eq!(resolve(0, b"/").unwrap(), "/");
        for bad in [
            &b""[..],
            b"/a//b",
            b"/a/",
            b"/a b",
            b"/a.b",
            b"/a\0b",
            b"\xff",
        ] {
            assert_eq!(resolve(0, bad), Err(XsError::Inval), "{bad:?}");
        }
        let long = alloc::vec![b'a'; 3072];
        let mut abs = alloc::vec![b'/'];
        abs.extend_from_slice(&long[..3071]);
        assert!(resolve(0, &abs).is_ok());
        abs.push(b'a');
        assert_eq!(resolve(0, &abs), Err(XsError::Inval));
        assert!(resolve(1, &long[..2048]).is_ok());
        assert_eq!(resolve(1, &long[..2049]), Err(XsError::Inval));
    }

    #[test]
    fn the_allowed_bytes_are_letters_digits_and_four_marks() {
        for b in 0..=255u8 {
            let want = b.is_ascii_alphanumeric() || b"-/_@".contains(&b);
            assert_eq!(allowed(b), want, "{b:#x}");
        }
    }

    #[test]
    fn parents_and_ancestry() {
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/"), None);
        assert!(is_at_or_below("/a/b", "/a"));
        assert!(is_at_or_below("/a", "/"));
        assert!(!is_at_or_below("/ab", "/a"));
    }
}
