//! The xenstore wire format (`xen/include/public/io/xs_wire.h`): the
//! 16-byte message header, the message types, the error names and the
//! payload limit. Requests arrive as bytes a guest wrote, so parsing never
//! trusts a length.

use alloc::vec::Vec;

/// Largest payload in either direction (`XENSTORE_PAYLOAD_MAX`).
pub const PAYLOAD_MAX: usize = 4096;
/// Longest absolute path (`XENSTORE_ABS_PATH_MAX`).
pub const ABS_PATH_MAX: usize = 3072;
/// Longest relative path (`XENSTORE_REL_PATH_MAX`).
pub const REL_PATH_MAX: usize = 2048;
/// Size of the message header (`struct xsd_sockmsg`).
pub const HEADER_LEN: usize = 16;

/// Message types (`enum xsd_sockmsg_type`). Number 20 was `XS_RESTRICT`,
/// since removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum MsgType {
    /// `XS_CONTROL`, formerly `XS_DEBUG`.
    Control = 0,
    Directory = 1,
    Read = 2,
    GetPerms = 3,
    Watch = 4,
    Unwatch = 5,
    TransactionStart = 6,
    TransactionEnd = 7,
    Introduce = 8,
    Release = 9,
    GetDomainPath = 10,
    Write = 11,
    Mkdir = 12,
    Rm = 13,
    SetPerms = 14,
    WatchEvent = 15,
    Error = 16,
    IsDomainIntroduced = 17,
    Resume = 18,
    SetTarget = 19,
    ResetWatches = 21,
    DirectoryPart = 22,
}

impl MsgType {
    /// The type for a wire number, if it is one this store knows.
    pub fn from_u32(n: u32) -> Option<Self> {
        use MsgType::*;
        Some(match n {
            0 => Control,
            1 => Directory,
            2 => Read,
            3 => GetPerms,
            4 => Watch,
            5 => Unwatch,
            6 => TransactionStart,
            7 => TransactionEnd,
            8 => Introduce,
            9 => Release,
            10 => GetDomainPath,
            11 => Write,
            12 => Mkdir,
            13 => Rm,
            14 => SetPerms,
            15 => WatchEvent,
            16 => Error,
            17 => IsDomainIntroduced,
            18 => Resume,
            19 => SetTarget,
            21 => ResetWatches,
            22 => DirectoryPart,
            _ => return None,
        })
    }
}

/// The errors a reply can carry (`xsd_errors[]`); the wire form is the
/// errno *name*, not its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XsError {
    Inval,
    Acces,
    Exist,
    IsDir,
    NoEnt,
    NoMem,
    NoSpc,
    Io,
    NotEmpty,
    NoSys,
    RoFs,
    Busy,
    Again,
    IsConn,
    TooBig,
}

impl XsError {
    /// The name sent in an `XS_ERROR` reply.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inval => "EINVAL",
            Self::Acces => "EACCES",
            Self::Exist => "EEXIST",
            Self::IsDir => "EISDIR",
            Self::NoEnt => "ENOENT",
            Self::NoMem => "ENOMEM",
            Self::NoSpc => "ENOSPC",
            Self::Io => "EIO",
            Self::NotEmpty => "ENOTEMPTY",
            Self::NoSys => "ENOSYS",
            Self::RoFs => "EROFS",
            Self::Busy => "EBUSY",
            Self::Again => "EAGAIN",
            Self::IsConn => "EISCONN",
            Self::TooBig => "E2BIG",
        }
    }
}

/// Why bytes are not a well-formed message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Fewer than 16 bytes: no complete header.
    ShortHeader,
    /// The header's `len` is over `PAYLOAD_MAX`. xenstored drops such a
    /// connection (docs/misc/xenstore.txt).
    PayloadTooLong(u32),
    /// The bytes after the header are not exactly `len` long.
    LenMismatch { declared: u32, actual: usize },
}

/// `struct xsd_sockmsg`, little-endian on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// A `MsgType` number; kept raw so unknown types can be answered.
    pub ty: u32,
    /// Echoed in the reply.
    pub req_id: u32,
    /// Transaction id, 0 outside a transaction.
    pub tx_id: u32,
    /// Payload length.
    pub len: u32,
}

impl Header {
    /// Reads a header from the first 16 bytes, checking only `len`'s limit.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let word = |i: usize| -> Result<u32, WireError> {
            let b = bytes.get(i * 4..i * 4 + 4).ok_or(WireError::ShortHeader)?;
            Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let h = Self {
            ty: word(0)?,
            req_id: word(1)?,
            tx_id: word(2)?,
            len: word(3)?,
        };
        if h.len as usize > PAYLOAD_MAX {
            return Err(WireError::PayloadTooLong(h.len));
        }
        Ok(h)
    }

    /// The 16 wire bytes.
    pub fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..4].copy_from_slice(&self.ty.to_le_bytes());
        out[4..8].copy_from_slice(&self.req_id.to_le_bytes());
        out[8..12].copy_from_slice(&self.tx_id.to_le_bytes());
        out[12..16].copy_from_slice(&self.len.to_le_bytes());
        out
    }
}

/// Splits one complete request into its header and payload. `bytes` must
/// be exactly the header plus `len` payload bytes.
pub fn parse_request(bytes: &[u8]) -> Result<(Header, &[u8]), WireError> {
    let h = Header::parse(bytes)?;
    let payload = &bytes[HEADER_LEN..];
    if payload.len() != h.len as usize {
        return Err(WireError::LenMismatch {
            declared: h.len,
            actual: payload.len(),
        });
    }
    Ok((h, payload))
}

/// One message from the store to a client: a reply or a watch event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub header: Header,
    pub payload: Vec<u8>,
}

impl Reply {
    /// A reply of type `ty` echoing `req`'s ids.
    pub fn new(ty: MsgType, req: &Header, payload: Vec<u8>) -> Self {
        Self {
            header: Header {
                ty: ty as u32,
                req_id: req.req_id,
                tx_id: req.tx_id,
                len: payload.len() as u32,
            },
            payload,
        }
    }

    /// The `OK\0` acknowledgement.
    pub fn ok(ty: MsgType, req: &Header) -> Self {
        Self::new(ty, req, b"OK\0".to_vec())
    }

    /// An `XS_ERROR` reply carrying `err`'s name, NUL-terminated.
    pub fn error(req: &Header, err: XsError) -> Self {
        let mut p = err.as_str().as_bytes().to_vec();
        p.push(0);
        Self::new(MsgType::Error, req, p)
    }

    /// The error name if this is an error reply (for tests and logs).
    pub fn error_name(&self) -> Option<&[u8]> {
        (self.header.ty == MsgType::Error as u32)
            .then(|| self.payload.strip_suffix(b"\0").unwrap_or(&self.payload))
    }

    /// Header and payload as they go onto the ring.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.len());
        out.extend_from_slice(&self.header.to_bytes());
        out.extend_from_slice(&self.payload);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ty: u32, len: u32, payload: &[u8]) -> Vec<u8> {
        let h = Header {
            ty,
            req_id: 7,
            tx_id: 3,
            len,
        };
        let mut v = h.to_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn header_round_trips_little_endian() {
        let h = Header {
            ty: 2,
            req_id: 0x0102_0304,
            tx_id: 9,
            len: 5,
        };
        let b = h.to_bytes();
        assert_eq!(&b[4..8], &[4, 3, 2, 1]);
        assert_eq!(Header::parse(&b), Ok(h));
    }

    #[test]
    fn request_splits_into_header_and_payload() {
        let bytes = msg(2, 4, b"abc\0");
        let (h, p) = parse_request(&bytes).unwrap();
        assert_eq!((h.ty, h.req_id, h.tx_id, h.len), (2, 7, 3, 4));
        assert_eq!(p, b"abc\0");
    }

    #[test]
    fn short_header_is_an_error() {
        assert_eq!(parse_request(&[0; 15]), Err(WireError::ShortHeader));
    }

    #[test]
    fn payload_over_4096_is_an_error() {
        let bytes = msg(11, 4097, &[0; 4097]);
        assert_eq!(parse_request(&bytes), Err(WireError::PayloadTooLong(4097)));
        assert!(parse_request(&msg(11, 4096, &[0; 4096])).is_ok());
    }

    #[test]
    fn len_not_matching_the_bytes_is_an_error() {
        assert_eq!(
            parse_request(&msg(2, 10, b"abc\0")),
            Err(WireError::LenMismatch {
                declared: 10,
                actual: 4
            })
        );
        assert!(parse_request(&msg(2, 2, b"abc\0")).is_err());
    }

    #[test]
    fn type_numbers_match_xs_wire_h() {
        assert_eq!(MsgType::from_u32(0), Some(MsgType::Control));
        assert_eq!(MsgType::from_u32(19), Some(MsgType::SetTarget));
        assert_eq!(MsgType::from_u32(20), None);
        assert_eq!(MsgType::ResetWatches as u32, 21);
        assert_eq!(MsgType::DirectoryPart as u32, 22);
        assert_eq!(MsgType::from_u32(0xffff), None);
    }

    #[test]
    fn error_reply_carries_the_name_and_echoes_ids() {
        let req = Header {
            ty: 2,
            req_id: 5,
            tx_id: 6,
            len: 0,
        };
        let r = Reply::error(&req, XsError::TooBig);
        assert_eq!(r.header.ty, 16);
        assert_eq!((r.header.req_id, r.header.tx_id), (5, 6));
        assert_eq!(r.payload, b"E2BIG\0");
        assert_eq!(r.to_bytes().len(), 16 + 6);
    }
}
