//! The shared page of Xen's PCI protocol (`io/pciif.h`): its layout, the op
//! and error codes, and the two halves of one exchange: [`decode`] copies a
//! request out of the page once, [`encode`] writes the answer back and
//! [`complete`] hands the page back to the frontend.
//!
//! The page is the guest's and changes under us: everything the backend
//! acts on comes from the one copy [`decode`] makes, and only `err`,
//! `value` and (for `enable_msix`) the vectors are ever written back.
//! All fields are little-endian.

use alloc::vec::Vec;

/// The size of the granted page.
pub const PAGE_SIZE: usize = 4096;

use vmm_glue::xen::pciif::{cmd, err};
pub use vmm_glue::xen::pciif::{
    field, MsixEntry, PciOpHead, AER_OP, AER_OP_SIZE, FLAGS, FLAG_PCIB_ACTIVE,
    FLAG_PCIB_AERHANDLER, FLAG_PCIF_ACTIVE, MAGIC as XEN_PCI_MAGIC, MSIX_ENTRY_SIZE, OP, OP_SIZE,
    SHAREDINFO_SIZE, SH_INFO_MAX_VEC,
};

const _: () = assert!(SHAREDINFO_SIZE <= PAGE_SIZE);

/// `XEN_PCI_OP_conf_read`.
pub const OP_CONF_READ: u32 = cmd::CONF_READ;
/// `XEN_PCI_OP_conf_write`.
pub const OP_CONF_WRITE: u32 = cmd::CONF_WRITE;
/// `XEN_PCI_OP_enable_msi`.
pub const OP_ENABLE_MSI: u32 = cmd::ENABLE_MSI;
/// `XEN_PCI_OP_disable_msi`.
pub const OP_DISABLE_MSI: u32 = cmd::DISABLE_MSI;
/// `XEN_PCI_OP_enable_msix`.
pub const OP_ENABLE_MSIX: u32 = cmd::ENABLE_MSIX;
/// `XEN_PCI_OP_disable_msix`.
pub const OP_DISABLE_MSIX: u32 = cmd::DISABLE_MSIX;
/// `XEN_PCI_OP_enable_multi_msi`.
pub const OP_ENABLE_MULTI_MSI: u32 = cmd::ENABLE_MULTI_MSI;

/// `XEN_PCI_ERR_success`.
pub const ERR_SUCCESS: i32 = err::SUCCESS;
/// `XEN_PCI_ERR_dev_not_found`.
pub const ERR_DEV_NOT_FOUND: i32 = err::DEV_NOT_FOUND;
/// `XEN_PCI_ERR_invalid_offset`.
pub const ERR_INVALID_OFFSET: i32 = err::INVALID_OFFSET;
/// `XEN_PCI_ERR_access_denied`.
pub const ERR_ACCESS_DENIED: i32 = err::ACCESS_DENIED;
/// `XEN_PCI_ERR_not_implemented`.
pub const ERR_NOT_IMPLEMENTED: i32 = err::NOT_IMPLEMENTED;
/// `XEN_PCI_ERR_op_failed`.
pub const ERR_OP_FAILED: i32 = err::OP_FAILED;
/// `-EINVAL`, which `enable_msix` answers for a vector count over
/// [`SH_INFO_MAX_VEC`], as Linux pciback does.
pub const EINVAL: i32 = -22;

/// What a frontend asks for, from `cmd`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// `XEN_PCI_OP_conf_read`.
    ConfRead,
    /// `XEN_PCI_OP_conf_write`.
    ConfWrite,
    /// `XEN_PCI_OP_enable_msi`.
    EnableMsi,
    /// `XEN_PCI_OP_disable_msi`.
    DisableMsi,
    /// `XEN_PCI_OP_enable_msix`.
    EnableMsix,
    /// `XEN_PCI_OP_disable_msix`.
    DisableMsix,
    /// One of the AER codes (6..=9): requests the backend makes, never
    /// answers.
    Aer(u32),
    /// `XEN_PCI_OP_enable_multi_msi`, which no frontend sends and Linux
    /// pciback does not implement either.
    EnableMultiMsi,
    /// Any other code.
    Unknown(u32),
}

impl Cmd {
    /// The command for a raw `cmd` value.
    pub const fn from_raw(cmd: u32) -> Self {
        match cmd {
            OP_CONF_READ => Self::ConfRead,
            OP_CONF_WRITE => Self::ConfWrite,
            OP_ENABLE_MSI => Self::EnableMsi,
            OP_DISABLE_MSI => Self::DisableMsi,
            OP_ENABLE_MSIX => Self::EnableMsix,
            OP_DISABLE_MSIX => Self::DisableMsix,
            cmd::AER_DETECTED..=cmd::AER_SLOTRESET => Self::Aer(cmd),
            OP_ENABLE_MULTI_MSI => Self::EnableMultiMsi,
            _ => Self::Unknown(cmd),
        }
    }
}

/// A private copy of `struct xen_pci_op` as the frontend posted it, each
/// field read from the page once ([`decode`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// `cmd` .. `info`.
    pub head: PciOpHead,
    /// `msix_entries`: all [`SH_INFO_MAX_VEC`] of them for `enable_msix`,
    /// the one command that reads them; empty for every other command, so
    /// that a config access does not copy 512 bytes it never looks at.
    pub msix_entries: Vec<MsixEntry>,
}

/// What the backend answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// For `err`.
    pub err: i32,
    /// For `value`.
    pub value: u32,
    /// For `msix_entries[i].vector`, `i < vectors.len()` (enable_msix
    /// only; empty otherwise, and then no entry is written).
    pub vectors: Vec<u16>,
}

impl Response {
    /// An answer with `err` and `value` and no vectors.
    pub const fn new(err: i32, value: u32) -> Self {
        Self {
            err,
            value,
            vectors: Vec::new(),
        }
    }
}

fn get_u32(bytes: &[u8], at: usize) -> u32 {
    match bytes.get(at..at + 4) {
        Some(&[a, b, c, d]) => u32::from_le_bytes([a, b, c, d]),
        _ => 0,
    }
}

fn put_u32(bytes: &mut [u8], at: usize, v: u32) {
    if let Some(dst) = bytes.get_mut(at..at + 4) {
        dst.copy_from_slice(&v.to_le_bytes());
    }
}

/// `flags`, as it reads now.
pub fn flags(page: &[u8; PAGE_SIZE]) -> u32 {
    get_u32(page, FLAGS)
}

/// Whether the frontend has an op waiting (`_XEN_PCIF_active`).
pub fn active(page: &[u8; PAGE_SIZE]) -> bool {
    flags(page) & FLAG_PCIF_ACTIVE != 0
}

/// Reads the op out of the page: each field once, the MSI-X entries only
/// for `enable_msix`.
pub fn decode(page: &[u8; PAGE_SIZE]) -> Request {
    let at = |f: usize| get_u32(page, OP + f);
    let cmd = at(field::CMD);
    let msix_entries = if cmd == OP_ENABLE_MSIX {
        (0..SH_INFO_MAX_VEC)
            .map(|i| {
                let v = at(field::MSIX_ENTRIES + i * MSIX_ENTRY_SIZE);
                MsixEntry {
                    vector: v as u16,
                    entry: (v >> 16) as u16,
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    Request {
        head: PciOpHead {
            cmd,
            err: at(field::ERR) as i32,
            domain: at(field::DOMAIN),
            bus: at(field::BUS),
            devfn: at(field::DEVFN),
            offset: at(field::OFFSET) as i32,
            size: at(field::SIZE) as i32,
            value: at(field::VALUE),
            info: at(field::INFO),
        },
        msix_entries,
    }
}

/// Writes `resp` into the op: `err`, `value`, and the `vector` half of the
/// first `resp.vectors.len()` (at most [`SH_INFO_MAX_VEC`]) MSI-X entries.
/// Nothing else in the page changes.
pub fn encode(resp: &Response, page: &mut [u8; PAGE_SIZE]) {
    put_u32(page, OP + field::ERR, resp.err as u32);
    put_u32(page, OP + field::VALUE, resp.value);
    for (i, v) in resp.vectors.iter().take(SH_INFO_MAX_VEC).enumerate() {
        let at = OP + field::MSIX_ENTRIES + i * MSIX_ENTRY_SIZE;
        if let Some(dst) = page.get_mut(at..at + 2) {
            dst.copy_from_slice(&v.to_le_bytes());
        }
    }
}

/// Clears `_XEN_PCIF_active`, handing the op back to the frontend. Called
/// after [`encode`]; the other flag bits are kept as they read now.
pub fn complete(page: &mut [u8; PAGE_SIZE]) {
    let f = flags(page);
    put_u32(page, FLAGS, f & !FLAG_PCIF_ACTIVE);
}

/// The bytes of the shared page an answer with `vectors` MSI-X vectors
/// wrote ([`encode`], [`complete`]): `flags` (the active bit cleared),
/// `err`, `value` and the vectors' entries. Only these go back to the
/// frontend's page, as Linux's pciback writes them: a request field
/// changed on the page meanwhile (by a device's DMA into it, say) is left
/// as it is, not reverted to the copy the backend read.
pub fn answered(vectors: usize) -> [core::ops::Range<usize>; 4] {
    let err = OP + field::ERR;
    let value = OP + field::VALUE;
    let entries = OP + field::MSIX_ENTRIES;
    [
        FLAGS..FLAGS + 4,
        err..err + 4,
        value..value + 4,
        entries..entries + vectors.min(SH_INFO_MAX_VEC) * MSIX_ENTRY_SIZE,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_with(cmd: u32, domain: u32, bus: u32, devfn: u32) -> [u8; PAGE_SIZE] {
        let mut p = [0u8; PAGE_SIZE];
        put_u32(&mut p, FLAGS, FLAG_PCIF_ACTIVE | FLAG_PCIB_AERHANDLER);
        put_u32(&mut p, OP + field::CMD, cmd);
        put_u32(&mut p, OP + field::DOMAIN, domain);
        put_u32(&mut p, OP + field::BUS, bus);
        put_u32(&mut p, OP + field::DEVFN, devfn);
        p
    }

    #[test]
    fn layout_matches_pciif_h() {
        assert_eq!(OP + field::VALUE, 32);
        assert_eq!(OP + field::MSIX_ENTRIES, 40);
        assert_eq!(OP + OP_SIZE, 552);
        assert_eq!(SHAREDINFO_SIZE, 572);
    }

    #[test]
    fn decode_reads_every_field_little_endian() {
        let mut p = page_with(4, 0x1234, 0x56, 0x78);
        put_u32(&mut p, OP + field::ERR, (-9i32) as u32);
        put_u32(&mut p, OP + field::OFFSET, (-1i32) as u32);
        put_u32(&mut p, OP + field::SIZE, 4);
        put_u32(&mut p, OP + field::VALUE, 0xdead_beef);
        put_u32(&mut p, OP + field::INFO, 7);
        put_u32(&mut p, OP + field::MSIX_ENTRIES, 0x0003_ffff);
        put_u32(&mut p, OP + field::MSIX_ENTRIES + 127 * 4, 0x0102_0304);
        let r = decode(&p);
        assert_eq!(Cmd::from_raw(r.head.cmd), Cmd::EnableMsix);
        assert_eq!(
            (r.head.err, r.head.domain, r.head.bus, r.head.devfn),
            (-9, 0x1234, 0x56, 0x78)
        );
        assert_eq!(
            (r.head.offset, r.head.size, r.head.value, r.head.info),
            (-1, 4, 0xdead_beef, 7)
        );
        assert_eq!(
            r.msix_entries[0],
            MsixEntry {
                vector: 0xffff,
                entry: 3
            }
        );
        assert_eq!(
            r.msix_entries[127],
            MsixEntry {
                vector: 0x0304,
                entry: 0x0102
            }
        );
    }

    #[test]
    fn only_enable_msix_reads_the_entries() {
        for c in [
            OP_CONF_READ,
            OP_CONF_WRITE,
            OP_ENABLE_MSI,
            OP_DISABLE_MSIX,
            99,
        ] {
            let mut p = page_with(c, 0, 0, 0);
            put_u32(&mut p, OP + field::MSIX_ENTRIES, 0x0003_ffff);
            assert!(decode(&p).msix_entries.is_empty(), "cmd {c}");
        }
        let mut p = page_with(OP_ENABLE_MSIX, 0, 0, 0);
        put_u32(&mut p, OP + field::MSIX_ENTRIES + 4, 0x0007_ffff);
        let r = decode(&p);
        assert_eq!(r.msix_entries.len(), SH_INFO_MAX_VEC);
        assert_eq!(r.msix_entries[1].entry, 7);
    }

    #[test]
    fn decode_ignores_bytes_outside_the_op() {
        let mut a = page_with(0, 0, 0, 0);
        let b = a;
        a[AER_OP..].fill(0xa5);
        a[FLAGS] = 0xff;
        assert_eq!(decode(&a), decode(&b));
    }

    #[test]
    fn commands_decode_by_number() {
        let want = [
            Cmd::ConfRead,
            Cmd::ConfWrite,
            Cmd::EnableMsi,
            Cmd::DisableMsi,
            Cmd::EnableMsix,
            Cmd::DisableMsix,
            Cmd::Aer(6),
            Cmd::Aer(7),
            Cmd::Aer(8),
            Cmd::Aer(9),
            Cmd::EnableMultiMsi,
            Cmd::Unknown(11),
        ];
        for (n, c) in want.iter().enumerate() {
            assert_eq!(Cmd::from_raw(n as u32), *c);
        }
        assert_eq!(Cmd::from_raw(u32::MAX), Cmd::Unknown(u32::MAX));
    }

    #[test]
    fn encode_writes_only_err_value_and_vectors() {
        let mut p = [0x5au8; PAGE_SIZE];
        let before = p;
        let resp = Response {
            err: -2,
            value: 0x0102_0304,
            vectors: alloc::vec![0x11, 0x2233],
        };
        encode(&resp, &mut p);
        assert_eq!(get_u32(&p, OP + field::ERR) as i32, -2);
        assert_eq!(get_u32(&p, OP + field::VALUE), 0x0102_0304);
        let e0 = OP + field::MSIX_ENTRIES;
        assert_eq!(&p[e0..e0 + 4], &[0x11, 0, 0x5a, 0x5a]);
        assert_eq!(&p[e0 + 4..e0 + 8], &[0x33, 0x22, 0x5a, 0x5a]);
        let changed: alloc::vec::Vec<usize> =
            (0..PAGE_SIZE).filter(|&i| p[i] != before[i]).collect();
        let allowed = |i: usize| {
            (OP + field::ERR..OP + field::ERR + 4).contains(&i)
                || (OP + field::VALUE..OP + field::VALUE + 4).contains(&i)
                || (e0..e0 + 2).contains(&i)
                || (e0 + 4..e0 + 6).contains(&i)
        };
        assert!(changed.iter().all(|&i| allowed(i)), "{changed:?}");
    }

    #[test]
    fn answered_covers_exactly_what_encode_writes() {
        for n in [0usize, 1, 2, 128, 300] {
            let mut p = [0x5au8; PAGE_SIZE];
            let before = p;
            let resp = Response {
                err: -2,
                value: 0x0102_0304,
                vectors: alloc::vec![0x1234; n],
            };
            encode(&resp, &mut p);
            complete(&mut p);
            let ranges = answered(n);
            for (i, (a, b)) in p.iter().zip(before.iter()).enumerate() {
                let inside = ranges.iter().any(|r| r.contains(&i));
                if a != b {
                    assert!(inside, "byte {i} changed outside the answered ranges");
                }
            }
            // No request field other than err and value is in them.
            for f in [
                field::CMD,
                field::DOMAIN,
                field::BUS,
                field::DEVFN,
                field::OFFSET,
                field::SIZE,
                field::INFO,
            ] {
                assert!(ranges.iter().all(|r| !r.contains(&(OP + f))), "field {f}");
            }
            assert!(ranges.iter().all(|r| r.end <= OP + OP_SIZE));
        }
    }

    #[test]
    fn encode_caps_vectors_at_the_table() {
        let mut p = [0u8; PAGE_SIZE];
        let resp = Response {
            err: 0,
            value: 0,
            vectors: alloc::vec![0xffff; 200],
        };
        encode(&resp, &mut p);
        assert_eq!(&p[AER_OP..AER_OP + 4], &[0, 0, 0, 0]);
    }

    #[test]
    fn complete_clears_only_bit_0() {
        let mut p = [0u8; PAGE_SIZE];
        put_u32(&mut p, FLAGS, 0xffff_ffff);
        assert!(active(&p));
        complete(&mut p);
        assert_eq!(flags(&p), 0xffff_fffe);
        assert!(!active(&p));
    }
}
