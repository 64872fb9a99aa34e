//! The RSDT/XSDT walk: every table the root points to, with its header.

use alloc::vec::Vec;
use core::fmt;

use super::{
    AcpiError, AcpiErrorKind, AcpiTable, IdText, PhysMemory, Rsdp, SdtHeader, Signature,
    SDT_HEADER_LEN,
};

/// Which root table: 32-bit pointers (RSDT) or 64-bit pointers (XSDT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootKind {
    /// Root System Description Table, 32-bit entries.
    Rsdt,
    /// Extended System Description Table, 64-bit entries.
    Xsdt,
}

impl RootKind {
    /// The table's signature.
    pub const fn signature(self) -> Signature {
        match self {
            Self::Rsdt => Signature(*b"RSDT"),
            Self::Xsdt => Signature(*b"XSDT"),
        }
    }

    const fn entry_size(self) -> usize {
        match self {
            Self::Rsdt => 4,
            Self::Xsdt => 8,
        }
    }
}

/// A table the root points to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableInfo {
    /// Physical address of the table.
    pub address: u64,
    /// Its header (`checksum_ok` covers the whole table).
    pub header: SdtHeader,
}

impl TableInfo {
    /// The table's bytes, header included.
    pub fn bytes<'m>(&self, mem: &'m impl PhysMemory) -> Result<&'m [u8], AcpiError> {
        let len = usize::try_from(self.header.length).unwrap_or(usize::MAX);
        mem.read(self.address, len).ok_or(AcpiError::new(
            self.header.signature,
            AcpiErrorKind::Unreadable {
                address: self.address,
                len,
            },
        ))
    }
}

/// The root table and every table it lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootTable {
    /// RSDT or XSDT.
    pub kind: RootKind,
    /// Its physical address.
    pub address: u64,
    /// Its header.
    pub header: SdtHeader,
    /// The tables whose headers could be read, in root order.
    pub tables: Vec<TableInfo>,
    /// Entries that point nowhere readable or at a table with a bad header.
    pub errors: Vec<EntryError>,
}

/// A root table entry whose table could not be read: which entry (its
/// index and the address it holds; `None` for stray bytes after the last
/// entry) and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryError {
    /// The entry's index and the address it holds.
    pub entry: Option<(usize, u64)>,
    /// What is wrong.
    pub error: AcpiError,
}

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((i, pa)) = self.entry {
            write!(f, "entry {i} ({pa:#x}): ")?;
        }
        write!(f, "{}", self.error)
    }
}

/// What the hypervisor does about one table it reads (see
/// [`RootTable::pick`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finding {
    /// Malformed: the table is ignored.
    Malformed(AcpiErrorKind),
    /// Another table with the signature of one already used: ignored.
    Duplicate {
        /// Where the table in use is.
        used: u64,
    },
    /// Its bytes do not sum to zero; it is used anyway, as Linux (ACPICA)
    /// does.
    BadChecksum,
}

/// A [`Finding`] about one table, naming it by signature, OEM IDs and
/// address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Note {
    /// The table.
    pub table: TableInfo,
    /// What is wrong and what is done instead.
    pub finding: Finding,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.table.header;
        write!(
            f,
            "{} (OEM \"{}\" \"{}\") at {:#x}: ",
            h.signature,
            IdText(&h.oem_id),
            IdText(&h.oem_table_id),
            self.table.address
        )?;
        match self.finding {
            Finding::Malformed(kind) => write!(f, "{kind}; the table is ignored"),
            Finding::Duplicate { used } => write!(
                f,
                "another {} table: ignored, the one at {used:#x} is used",
                h.signature
            ),
            Finding::BadChecksum => f.write_str("bad checksum; used anyway"),
        }
    }
}

impl RootTable {
    /// Walks the root table the RSDP names (the XSDT when there is one).
    pub fn read(mem: &impl PhysMemory, rsdp: &Rsdp) -> Result<Self, AcpiError> {
        let (kind, address) = rsdp.root_address();
        Self::read_at(mem, kind, address)
    }

    /// Walks the root table of kind `kind` at `address`. Errors in the root
    /// itself fail the walk; errors in the tables it lists are collected in
    /// [`errors`](Self::errors) and the walk goes on.
    pub fn read_at(mem: &impl PhysMemory, kind: RootKind, address: u64) -> Result<Self, AcpiError> {
        let sig = kind.signature();
        let bytes = read_table(mem, sig, address)?;
        let (header, r) = SdtHeader::check(sig, bytes, SDT_HEADER_LEN)?;
        let entries = (r.len() - SDT_HEADER_LEN) / kind.entry_size();
        let mut root = Self {
            kind,
            address,
            header,
            tables: Vec::new(),
            errors: Vec::new(),
        };
        let leftover = (r.len() - SDT_HEADER_LEN) % kind.entry_size();
        if leftover != 0 {
            root.errors.push(EntryError {
                entry: None,
                error: r.error(AcpiErrorKind::TrailingBytes {
                    what: "table pointer",
                    offset: r.len() - leftover,
                    count: leftover,
                }),
            });
        }
        for i in 0..entries {
            let off = SDT_HEADER_LEN + i * kind.entry_size();
            let pa = match kind {
                RootKind::Rsdt => r.u32(off).map(u64::from),
                RootKind::Xsdt => r.u64(off),
            }?;
            if pa == 0 {
                continue;
            }
            match read_table(mem, sig, pa).and_then(SdtHeader::peek) {
                Ok(header) => root.tables.push(TableInfo {
                    address: pa,
                    header,
                }),
                Err(error) => root.errors.push(EntryError {
                    entry: Some((i, pa)),
                    error,
                }),
            }
        }
        Ok(root)
    }

    /// The first table with signature `sig`.
    pub fn find(&self, sig: Signature) -> Option<&TableInfo> {
        self.tables.iter().find(|t| t.header.signature == sig)
    }

    /// Parses every listed table of type `T`, in root order, and returns the
    /// first well-formed one. Each table that is malformed, comes after the
    /// one used, or is used with a bad checksum gets a [`Note`] in `notes`.
    pub fn pick<T: AcpiTable>(&self, mem: &impl PhysMemory, notes: &mut Vec<Note>) -> Option<T> {
        let mut used = None;
        self.pick_dyn(T::SIGNATURE, mem, notes, &mut |bytes| {
            let t = T::parse(bytes)?;
            used.get_or_insert(t);
            Ok(())
        });
        used
    }

    /// [`pick`](Self::pick)'s walk, once for every table type: `parse`
    /// keeps the first table it parses.
    #[inline(never)]
    fn pick_dyn(
        &self,
        sig: Signature,
        mem: &dyn PhysMemory,
        notes: &mut Vec<Note>,
        parse: &mut dyn FnMut(&[u8]) -> Result<(), AcpiError>,
    ) {
        let mut used = None;
        for &table in self.tables.iter().filter(|t| t.header.signature == sig) {
            let len = usize::try_from(table.header.length).unwrap_or(usize::MAX);
            // The walk read every listed table's length's worth of bytes.
            let bytes = mem.read(table.address, len).unwrap_or_default();
            let finding = match (parse(bytes), used) {
                (Err(e), _) => Finding::Malformed(e.kind),
                (Ok(()), Some(used)) => Finding::Duplicate { used },
                (Ok(()), None) => {
                    used = Some(table.address);
                    if table.header.checksum_ok {
                        continue;
                    }
                    Finding::BadChecksum
                }
            };
            notes.push(Note { table, finding });
        }
    }

    /// Finds and parses the first table of type `T`; `None` if the root does
    /// not list one.
    pub fn parse<T: AcpiTable>(&self, mem: &impl PhysMemory) -> Option<Result<T, AcpiError>> {
        let info = self.find(T::SIGNATURE)?;
        Some(info.bytes(mem).and_then(T::parse))
    }
}

/// Reads a whole table at `pa`: its header, then as many bytes as its
/// length field says. Errors are named after the table when its header was
/// readable, else after `parent`.
fn read_table(mem: &impl PhysMemory, parent: Signature, pa: u64) -> Result<&[u8], AcpiError> {
    let head = mem.read(pa, SDT_HEADER_LEN).ok_or(AcpiError::new(
        parent,
        AcpiErrorKind::Unreadable {
            address: pa,
            len: SDT_HEADER_LEN,
        },
    ))?;
    let header = SdtHeader::peek(head)?;
    let len = usize::try_from(header.length).unwrap_or(usize::MAX);
    if len < SDT_HEADER_LEN {
        return Err(AcpiError::new(
            header.signature,
            AcpiErrorKind::LengthTooSmall {
                length: header.length,
                minimum: SDT_HEADER_LEN,
            },
        ));
    }
    mem.read(pa, len).ok_or(AcpiError::new(
        header.signature,
        AcpiErrorKind::Unreadable { address: pa, len },
    ))
}

impl fmt::Display for RootTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at {:#x}{}: {} tables",
            self.kind.signature(),
            self.address,
            if self.header.checksum_ok {
                ""
            } else {
                " (bad checksum)"
            },
            self.tables.len()
        )?;
        for t in &self.tables {
            write!(f, "\n  {:#010x} {}", t.address, t.header.summary())?;
        }
        for e in &self.errors {
            write!(f, "\n  error: {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acpi::testutil::{seal, table, Put};
    use crate::acpi::{Mcfg, SparseMemory};
    use alloc::string::ToString;
    use alloc::vec;

    fn mcfg_table() -> Vec<u8> {
        let mut body = vec![0u8; 8];
        body.u64(0xb000_0000).u16(0).u8(0).u8(0xff).u32(0);
        table(b"MCFG", 1, &body)
    }

    #[test]
    fn xsdt_walk_lists_every_table_and_finds_one_by_signature() {
        let mut mem = SparseMemory::new();
        mem.insert(0x1000, table(b"FACP", 3, &[0; 80]));
        mem.insert(0x2000, mcfg_table());
        let mut bad = table(b"HPET", 1, &[0; 20]);
        bad[40] = 1;
        mem.insert(0x3000, bad);
        let mut body = vec![];
        body.u64(0x1000).u64(0).u64(0x2000).u64(0x3000).u64(0x9000);
        mem.insert(0x8000, table(b"XSDT", 1, &body));
        let root = RootTable::read_at(&mem, RootKind::Xsdt, 0x8000).unwrap();
        let sigs: Vec<_> = root.tables.iter().map(|t| t.header.signature).collect();
        assert_eq!(
            sigs,
            vec![
                Signature(*b"FACP"),
                Signature(*b"MCFG"),
                Signature(*b"HPET")
            ]
        );
        assert!(root.tables[0].header.checksum_ok);
        assert!(!root.tables[2].header.checksum_ok);
        assert_eq!(
            root.errors,
            vec![EntryError {
                entry: Some((4, 0x9000)),
                error: AcpiError::new(
                    Signature(*b"XSDT"),
                    AcpiErrorKind::Unreadable {
                        address: 0x9000,
                        len: 36
                    }
                )
            }]
        );
        let mcfg = root.parse::<Mcfg>(&mem).unwrap().unwrap();
        assert_eq!(mcfg.allocations[0].base, 0xb000_0000);
        assert!(root.parse::<crate::acpi::Madt>(&mem).is_none());
        let text = root.to_string();
        assert!(text.starts_with("XSDT at 0x8000: 3 tables\n  0x00001000 FACP len 0x74"));
        assert!(text.contains("HPET len 0x38 rev 1 OEM \"HVTEST\" \"PLATFORM\" BAD CHECKSUM"));
    }

    #[test]
    fn rsdt_entries_are_32_bit_and_truncated_tables_are_errors() {
        let mut mem = SparseMemory::new();
        let mut short = mcfg_table();
        short.truncate(50);
        mem.insert(0x2000, short);
        let mut tiny = table(b"APIC", 1, &[]);
        tiny[4] = 8;
        mem.insert(0x3000, tiny);
        let mut body = vec![];
        body.u32(0x2000).u32(0x3000).u8(0x55);
        mem.insert(0x8000, table(b"RSDT", 1, &body));
        let root = RootTable::read_at(&mem, RootKind::Rsdt, 0x8000).unwrap();
        assert!(root.tables.is_empty());
        let msgs: Vec<_> = root.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            msgs,
            vec![
                "RSDT: 1 stray bytes at offset 0x2c, too few for a table pointer",
                "entry 0 (0x2000): MCFG: 60 bytes at 0x2000 are not readable",
                "entry 1 (0x3000): APIC: length 0x8 is shorter than the 0x24 bytes of its fixed fields",
            ]
        );
    }

    #[test]
    fn root_with_the_wrong_signature_or_length_is_an_error() {
        let mut mem = SparseMemory::new();
        mem.insert(0x8000, table(b"RSDT", 1, &[]));
        assert!(matches!(
            RootTable::read_at(&mem, RootKind::Xsdt, 0x8000)
                .unwrap_err()
                .kind,
            AcpiErrorKind::WrongSignature { .. }
        ));
        let mut huge = table(b"XSDT", 1, &[0; 8]);
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        mem.insert(0x9000, huge);
        assert!(RootTable::read_at(&mem, RootKind::Xsdt, 0x9000).is_err());
        assert!(RootTable::read_at(&mem, RootKind::Xsdt, 0x100).is_err());
        let mut t = table(b"XSDT", 1, &[]);
        seal(&mut t);
        mem.insert(0xa000, t);
        assert!(RootTable::read_at(&mem, RootKind::Xsdt, 0xa000)
            .unwrap()
            .tables
            .is_empty());
    }

    /// A root listing `tables` at 0x1000, 0x2000, ...
    fn root_of(tables: Vec<Vec<u8>>) -> (SparseMemory, RootTable) {
        let mut mem = SparseMemory::new();
        let mut body = vec![];
        for (i, t) in tables.into_iter().enumerate() {
            let pa = 0x1000 * (i as u64 + 1);
            mem.insert(pa, t);
            body.u64(pa);
        }
        mem.insert(0x8000, table(b"XSDT", 1, &body));
        let root = RootTable::read_at(&mem, RootKind::Xsdt, 0x8000).unwrap();
        (mem, root)
    }

    #[test]
    fn pick_uses_the_first_well_formed_table_and_notes_every_other() {
        let mut odd = mcfg_table();
        odd.push(0);
        seal(&mut odd);
        let mut second = mcfg_table();
        second[44] = 0xc0;
        seal(&mut second);
        let (mem, root) = root_of(vec![odd, mcfg_table(), second]);
        let mut notes = Vec::new();
        let mcfg = root.pick::<Mcfg>(&mem, &mut notes).unwrap();
        assert_eq!(mcfg.allocations[0].base, 0xb000_0000);
        let text: Vec<_> = notes.iter().map(|n| n.to_string()).collect();
        assert_eq!(
            text,
            vec![
                "MCFG (OEM \"HVTEST\" \"PLATFORM\") at 0x1000: 1 stray bytes at offset 0x3c, \
                 too few for a configuration space allocation; the table is ignored",
                "MCFG (OEM \"HVTEST\" \"PLATFORM\") at 0x3000: another MCFG table: \
                 ignored, the one at 0x2000 is used",
            ]
        );
    }

    #[test]
    fn pick_uses_a_table_with_a_bad_checksum_and_says_so() {
        let mut bad = mcfg_table();
        bad[9] ^= 1;
        let (mem, root) = root_of(vec![bad]);
        let mut notes = Vec::new();
        assert!(root.pick::<Mcfg>(&mem, &mut notes).is_some());
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].finding, Finding::BadChecksum);
        assert!(notes[0]
            .to_string()
            .ends_with("at 0x1000: bad checksum; used anyway"));
        let (mem, root) = root_of(vec![mcfg_table()]);
        notes.clear();
        assert!(root.pick::<Mcfg>(&mem, &mut notes).is_some());
        assert!(notes.is_empty());
        assert!(root.pick::<crate::acpi::Madt>(&mem, &mut notes).is_none());
        assert!(notes.is_empty());
    }

    #[test]
    fn an_entry_pointing_at_garbage_is_named_by_its_index_and_address() {
        let mut mem = SparseMemory::new();
        mem.insert(0x1000, mcfg_table());
        let mut body = vec![];
        body.u64(0x1000).u64(0x1004);
        mem.insert(0x8000, table(b"XSDT", 1, &body));
        let root = RootTable::read_at(&mem, RootKind::Xsdt, 0x8000).unwrap();
        assert_eq!(root.tables.len(), 1);
        // At 0x1004 the "header" is MCFG's length field and what follows.
        let text = root.errors[0].to_string();
        assert!(text.starts_with("entry 1 (0x1004): "), "{text}");
    }
}
