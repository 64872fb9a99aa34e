//! AML names: segments, the NameStrings found in the bytecode, and the
//! absolute paths objects are recorded under.

use alloc::vec::Vec;
use core::fmt;

/// A four-character name segment such as `_PRT` or `PCI0`: a capital
/// letter or `_`, then three capital letters, digits or `_`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NameSeg(pub [u8; 4]);

impl NameSeg {
    /// The segment, if `bytes` follow the NameSeg grammar.
    pub fn new(bytes: [u8; 4]) -> Option<Self> {
        let lead = |b: u8| b.is_ascii_uppercase() || b == b'_';
        let ok = lead(bytes[0]) && bytes[1..].iter().all(|&b| lead(b) || b.is_ascii_digit());
        ok.then_some(Self(bytes))
    }

    /// A segment from source text such as `PCI0` or `_SB` (padded with
    /// `_` to four characters, as ASL does).
    pub fn from_text(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        if b.is_empty() || b.len() > 4 {
            return None;
        }
        let mut seg = [b'_'; 4];
        seg[..b.len()].copy_from_slice(b);
        Self::new(seg)
    }
}

impl fmt::Display for NameSeg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            write!(f, "{}", char::from(b))?;
        }
        Ok(())
    }
}

impl fmt::Debug for NameSeg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NameSeg({self})")
    }
}

/// A name as written in AML: from the root (`\`), or some scopes up
/// (`^`), or relative to the current scope, then zero or more segments.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NameString {
    /// Starts at the root.
    pub root: bool,
    /// How many `^` prefixes (scopes up) it starts with.
    pub parents: u8,
    /// The segments; empty for the null name.
    pub segs: Vec<NameSeg>,
}

impl NameString {
    /// Whether the search rules apply: a single segment with no prefix,
    /// which is looked up in the current scope, then in each enclosing one
    /// up to the root.
    pub fn searches_upward(&self) -> bool {
        !self.root && self.parents == 0 && self.segs.len() == 1
    }

    /// The absolute path this name denotes in `scope`, without the search
    /// rules; `None` if it climbs above the root.
    pub fn in_scope(&self, scope: &AmlPath) -> Option<AmlPath> {
        let mut segs = if self.root {
            Vec::new()
        } else {
            let keep = scope.0.len().checked_sub(usize::from(self.parents))?;
            scope.0[..keep].to_vec()
        };
        segs.extend_from_slice(&self.segs);
        Some(AmlPath(segs))
    }
}

impl fmt::Display for NameString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.root {
            write!(f, "\\")?;
        }
        for _ in 0..self.parents {
            write!(f, "^")?;
        }
        for (i, s) in self.segs.iter().enumerate() {
            if i > 0 {
                write!(f, ".")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for NameString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NameString({self})")
    }
}

/// An absolute path in the namespace: the segments below the root.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AmlPath(pub Vec<NameSeg>);

impl AmlPath {
    /// The root, `\`.
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// Parses `\_SB.PCI0._PRT` (the leading `\` is optional; segments
    /// shorter than four characters are padded with `_`).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.strip_prefix('\\').unwrap_or(text);
        if text.is_empty() {
            return Some(Self::root());
        }
        text.split('.')
            .map(NameSeg::from_text)
            .collect::<Option<Vec<_>>>()
            .map(Self)
    }

    /// The enclosing scope; `None` for the root.
    pub fn parent(&self) -> Option<AmlPath> {
        let (_, up) = self.0.split_last()?;
        Some(AmlPath(up.to_vec()))
    }

    /// The last segment; `None` for the root.
    pub fn last(&self) -> Option<NameSeg> {
        self.0.last().copied()
    }

    /// This path with `seg` appended.
    pub fn child(&self, seg: NameSeg) -> AmlPath {
        let mut segs = self.0.clone();
        segs.push(seg);
        AmlPath(segs)
    }
}

impl fmt::Display for AmlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\\")?;
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ".")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for AmlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AmlPath({self})")
    }
}
