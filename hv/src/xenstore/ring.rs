//! Index arithmetic for the shared ring page (`struct
//! xenstore_domain_interface` in `io/xs_wire.h`). The guest writes
//! `req_prod` and `rsp_cons`, so both are untrusted: a producer more than a
//! ring ahead of its consumer is a protocol error, never a reason to read
//! past the buffer. Indices are free-running `u32`s that wrap.

use core::mem::{offset_of, size_of};

/// Bytes in each of the two rings (`XENSTORE_RING_SIZE`).
pub const RING_SIZE: u32 = 1024;

/// `server_features` bit: the `error` field exists
/// (`XENSTORE_SERVER_FEATURE_ERROR`).
pub const FEATURE_ERROR: u32 = 2;
/// `error` value for an invalid ring index (`XENSTORE_ERROR_RINGIDX`).
pub const ERROR_RINGIDX: u32 = 2;
/// `error` value for a protocol violation such as an over-long payload
/// (`XENSTORE_ERROR_PROTO`).
pub const ERROR_PROTO: u32 = 3;

/// The layout of the shared page, for offsets only (the page is reached
/// through guest-memory accessors, never through this type).
#[derive(Debug)]
#[repr(C)]
pub struct DomainInterface {
    pub req: [u8; RING_SIZE as usize],
    pub rsp: [u8; RING_SIZE as usize],
    pub req_cons: u32,
    pub req_prod: u32,
    pub rsp_cons: u32,
    pub rsp_prod: u32,
    pub server_features: u32,
    pub connection: u32,
    pub error: u32,
    /// Filled in for domains built without a toolstack; 0 otherwise.
    pub evtchn_port: u32,
}

const _: () = {
    assert!(offset_of!(DomainInterface, rsp) == 1024);
    assert!(offset_of!(DomainInterface, req_cons) == 2048);
    assert!(offset_of!(DomainInterface, req_prod) == 2052);
    assert!(offset_of!(DomainInterface, rsp_cons) == 2056);
    assert!(offset_of!(DomainInterface, rsp_prod) == 2060);
    assert!(offset_of!(DomainInterface, server_features) == 2064);
    assert!(offset_of!(DomainInterface, connection) == 2068);
    assert!(offset_of!(DomainInterface, error) == 2072);
    assert!(offset_of!(DomainInterface, evtchn_port) == 2076);
    assert!(size_of::<DomainInterface>() == 2080);
};

/// Byte offsets of the fields in the page.
pub mod offset {
    use super::DomainInterface;
    use core::mem::offset_of;
    pub const REQ: usize = offset_of!(DomainInterface, req);
    pub const RSP: usize = offset_of!(DomainInterface, rsp);
    pub const REQ_CONS: usize = offset_of!(DomainInterface, req_cons);
    pub const REQ_PROD: usize = offset_of!(DomainInterface, req_prod);
    pub const RSP_CONS: usize = offset_of!(DomainInterface, rsp_cons);
    pub const RSP_PROD: usize = offset_of!(DomainInterface, rsp_prod);
    pub const SERVER_FEATURES: usize = offset_of!(DomainInterface, server_features);
    pub const CONNECTION: usize = offset_of!(DomainInterface, connection);
    pub const ERROR: usize = offset_of!(DomainInterface, error);
}

/// A producer index more than `RING_SIZE` ahead of its consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadRingIndex {
    pub cons: u32,
    pub prod: u32,
}

/// `MASK_XENSTORE_IDX`: the buffer offset of a free-running index.
pub fn mask(idx: u32) -> usize {
    (idx & (RING_SIZE - 1)) as usize
}

/// Bytes between `cons` and `prod`, checked against the ring size.
pub fn used(cons: u32, prod: u32) -> Result<u32, BadRingIndex> {
    let n = prod.wrapping_sub(cons);
    if n > RING_SIZE {
        Err(BadRingIndex { cons, prod })
    } else {
        Ok(n)
    }
}

/// Free space for the producer.
pub fn free(cons: u32, prod: u32) -> Result<u32, BadRingIndex> {
    Ok(RING_SIZE - used(cons, prod)?)
}

/// The buffer ranges of `n` bytes from free-running index `from` (`n` at
/// most the ring's size): up to the end of the buffer, then from its start.
pub fn pieces(from: u32, n: usize) -> [core::ops::Range<usize>; 2] {
    let start = mask(from);
    let first = n.min(RING_SIZE as usize - start);
    [start..start + first, 0..n.min(RING_SIZE as usize) - first]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_split_where_the_buffer_wraps() {
        assert_eq!(pieces(5, 10), [5..15, 0..0]);
        assert_eq!(pieces(1020, 10), [1020..1024, 0..6]);
        assert_eq!(pieces(1024 + 3, 0), [3..3, 0..0]);
        assert_eq!(pieces(u32::MAX, 2), [1023..1024, 0..1]);
        assert_eq!(pieces(512, 1024), [512..1024, 0..512]);
    }

    #[test]
    fn offsets_follow_xs_wire_h() {
        assert_eq!(offset::REQ, 0);
        assert_eq!(offset::RSP, 1024);
        assert_eq!(offset::REQ_CONS, 2048);
        assert_eq!(offset::REQ_PROD, 2052);
        assert_eq!(offset::RSP_CONS, 2056);
        assert_eq!(offset::RSP_PROD, 2060);
        assert_eq!(offset::SERVER_FEATURES, 2064);
        assert_eq!(offset::CONNECTION, 2068);
        assert_eq!(offset::ERROR, 2072);
    }

    #[test]
    fn empty_and_full_rings() {
        assert_eq!(used(5, 5), Ok(0));
        assert_eq!(free(5, 5), Ok(1024));
        assert_eq!(used(0, 1024), Ok(1024));
        assert_eq!(free(0, 1024), Ok(0));
        assert_eq!(pieces(0, 1024), [0..1024, 0..0]);
    }

    #[test]
    fn indices_wrap_around_u32() {
        let cons = u32::MAX - 9;
        let prod = cons.wrapping_add(30);
        assert_eq!(used(cons, prod), Ok(30));
        // cons masks to 1014: 10 bytes before the end, then 20 from 0.
        assert_eq!(pieces(cons, 30), [1014..1024, 0..20]);
        assert_eq!(free(cons, prod), Ok(994));
        assert_eq!(pieces(prod, 994), [20..1014, 0..0]);
    }

    #[test]
    fn hostile_producer_more_than_a_ring_ahead_is_rejected() {
        assert_eq!(
            used(0, 1025),
            Err(BadRingIndex {
                cons: 0,
                prod: 1025
            })
        );
        assert!(used(100, 99).is_err()); // producer behind consumer
        assert!(used(0, u32::MAX).is_err());
        assert!(free(7, 7 + 2000).is_err());
    }

    proptest::proptest! {
        #[test]
        fn pieces_stay_in_the_buffer_and_cover_n(from: u32, n in 0usize..=1024) {
            let [a, b] = pieces(from, n);
            proptest::prop_assert!(a.end <= RING_SIZE as usize && (b.is_empty() || b.end <= a.start));
            proptest::prop_assert_eq!(a.len() + b.len(), n);
            proptest::prop_assert_eq!(a.start, mask(from));
        }
    }
}
