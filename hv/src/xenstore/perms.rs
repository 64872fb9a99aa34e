//! Node permissions (docs/misc/xenstore.txt, GET_PERMS/SET_PERMS): the
//! first entry names the owner and everyone's default access, later
//! entries override it per domain. Domain 0 and the owner may do anything.

use alloc::format;
use alloc::vec::Vec;

use super::path::{parse_domid, DomId};
use super::wire::XsError;

/// What a permission entry allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    None,
    Read,
    Write,
    Both,
}

impl Access {
    fn letter(self) -> char {
        match self {
            Self::None => 'n',
            Self::Read => 'r',
            Self::Write => 'w',
            Self::Both => 'b',
        }
    }

    fn can_read(self) -> bool {
        matches!(self, Self::Read | Self::Both)
    }

    fn can_write(self) -> bool {
        matches!(self, Self::Write | Self::Both)
    }
}

/// One permission entry, written `r1`, `w2`, `b3` or `n4`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perm {
    pub domid: DomId,
    pub access: Access,
}

/// A node's permissions: the first entry names the owner and everyone's
/// default access; later entries grant or deny per domain.
#[derive(Debug, PartialEq, Eq)]
pub struct Perms(Vec<Perm>);

impl Clone for Perms {
    // Out of line: perms are cloned in many places, each of which would
    // carry the allocation and the copy.
    #[inline(never)]
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl Perms {
    /// Owned by `owner`, with `default` access for everyone else.
    pub fn owned_by(owner: DomId, default: Access) -> Self {
        Self(alloc::vec![Perm {
            domid: owner,
            access: default,
        }])
    }

    /// From a list; `None` if it is empty.
    pub fn from_list(list: Vec<Perm>) -> Option<Self> {
        (!list.is_empty()).then_some(Self(list))
    }

    /// The same entries with `owner` as the owner.
    pub fn with_owner(mut self, owner: DomId) -> Self {
        self.0[0].domid = owner;
        self
    }

    /// The owner's domain id.
    pub fn owner(&self) -> DomId {
        self.0[0].domid
    }

    /// The entries, owner first.
    pub fn entries(&self) -> &[Perm] {
        &self.0
    }

    /// Parses the SET_PERMS payload form: `r0\0w1\0` (each entry NUL
    /// terminated; a missing final NUL is accepted).
    pub fn parse(text: &[u8]) -> Result<Self, XsError> {
        let text = text.strip_suffix(b"\0").unwrap_or(text);
        let mut list = Vec::new();
        for entry in text.split(|&b| b == 0) {
            let (&letter, digits) = entry.split_first().ok_or(XsError::Inval)?;
            let access = match letter {
                b'n' => Access::None,
                b'r' => Access::Read,
                b'w' => Access::Write,
                b'b' => Access::Both,
                _ => return Err(XsError::Inval),
            };
            let domid = parse_domid(digits).ok_or(XsError::Inval)?;
            list.push(Perm { domid, access });
        }
        Self::from_list(list).ok_or(XsError::Inval)
    }

    /// The GET_PERMS payload form: each entry followed by a NUL.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for p in &self.0 {
            out.extend_from_slice(format!("{}{}", p.access.letter(), p.domid).as_bytes());
            out.push(0);
        }
        out
    }

    /// What `domid` may do: domain 0 and the owner everything, a listed
    /// domain its entry, anyone else the owner entry's default.
    pub fn access_for(&self, domid: DomId) -> Access {
        if domid == 0 || domid == self.owner() {
            return Access::Both;
        }
        self.0[1..]
            .iter()
            .find(|p| p.domid == domid)
            .map_or(self.0[0].access, |p| p.access)
    }

    /// Whether `domid` may read.
    pub fn can_read(&self, domid: DomId) -> bool {
        self.access_for(domid).can_read()
    }

    /// Whether `domid` may write.
    pub fn can_write(&self, domid: DomId) -> bool {
        self.access_for(domid).can_write()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perms_parse_and_print() {
        let p = Perms::parse(b"n1\0r0\0b2\0").unwrap();
        assert_eq!(p.owner(), 1);
        assert_eq!(p.to_wire(), b"n1\0r0\0b2\0");
        for bad in [&b""[..], b"x1\0", b"r\0", b"r70000\0", b"r-1\0"] {
            assert_eq!(Perms::parse(bad), Err(XsError::Inval), "{bad:?}");
        }
    }

    #[test]
    fn access_rules_owner_grant_default_and_dom0() {
        let p = Perms::parse(b"n1\0r2\0w3\0").unwrap();
        assert_eq!(p.access_for(1), Access::Both);
        assert_eq!(p.access_for(0), Access::Both);
        assert!(p.can_read(2) && !p.can_write(2));
        assert!(p.can_write(3) && !p.can_read(3));
        assert_eq!(p.access_for(4), Access::None);
    }
}
