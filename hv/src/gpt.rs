//! Walking a guest's own page tables: guest-virtual to guest-physical, as
//! the CPU would (32-bit, PAE and 4-level long mode), for hypercall
//! arguments and instruction fetches.

/// Why a guest-virtual address has no translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkError {
    /// An entry on the way is not present (the guest would take #PF).
    NotPresent { level: u8 },
    /// A table the entry points at is not guest RAM.
    BadTable { gpa: u64 },
    /// A non-canonical address in long mode.
    NonCanonical,
    /// A write through an entry without RW (with CR0.WP set, as for any
    /// access with supervisor rights; [`translate_write`]).
    ReadOnly { level: u8 },
}

const P: u64 = 1;
const PS: u64 = 1 << 7;

/// The paging mode the guest is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Paging off: linear = physical.
    Flat,
    Legacy32,
    Pae,
    Long4,
}

/// The paging mode for these control registers.
pub fn mode(cr0: u64, cr4: u64, efer: u64) -> Mode {
    if cr0 & (1 << 31) == 0 {
        Mode::Flat
    } else if efer & (1 << 10) != 0 {
        Mode::Long4
    } else if cr4 & (1 << 5) != 0 {
        Mode::Pae
    } else {
        Mode::Legacy32
    }
}

/// Translates `gva`; `read` fetches a 4- or 8-byte table entry at a
/// guest-physical address (`None` when it is not RAM).
pub fn translate(
    cr0: u64,
    cr3: u64,
    cr4: u64,
    efer: u64,
    gva: u64,
    read: impl Fn(u64, usize) -> Option<u64>,
) -> Result<u64, WalkError> {
    let entry = |table: u64, index: u64, size: usize| -> Result<u64, WalkError> {
        let gpa = table + index * size as u64;
        read(gpa, size).ok_or(WalkError::BadTable { gpa })
    };
    match mode(cr0, cr4, efer) {
        Mode::Flat => Ok(gva & 0xffff_ffff),
        Mode::Legacy32 => {
            let gva = gva & 0xffff_ffff;
            let pde = entry(cr3 & 0xffff_f000, gva >> 22, 4)?;
            if pde & P == 0 {
                return Err(WalkError::NotPresent { level: 2 });
            }
            if pde & PS != 0 && cr4 & (1 << 4) != 0 {
                return Ok((pde & 0xffc0_0000) | ((pde & 0x1_e000) << 19) | (gva & 0x3f_ffff));
            }
            let pte = entry(pde & 0xffff_f000, (gva >> 12) & 0x3ff, 4)?;
            if pte & P == 0 {
                return Err(WalkError::NotPresent { level: 1 });
            }
            Ok((pte & 0xffff_f000) | (gva & 0xfff))
        }
        Mode::Pae => walk(cr3 & 0xffff_ffe0, gva & 0xffff_ffff, 3, &entry),
        Mode::Long4 => {
            let top = gva >> 47;
            if top != 0 && top != 0x1_ffff {
                return Err(WalkError::NonCanonical);
            }
            walk(cr3 & 0x000f_ffff_ffff_f000, gva, 4, &entry)
        }
    }
}

/// Translates `gva` for a write in 4-level long mode: as [`translate`],
/// and every entry on the way must allow writes when CR0.WP is set (a
/// supervisor write honours read-only pages then, as Xen's own writes to a
/// PV guest's memory do). Other modes translate as [`translate`].
pub fn translate_write(
    cr0: u64,
    cr3: u64,
    cr4: u64,
    efer: u64,
    gva: u64,
    read: impl Fn(u64, usize) -> Option<u64>,
) -> Result<u64, WalkError> {
    if mode(cr0, cr4, efer) != Mode::Long4 || cr0 & (1 << 16) == 0 {
        return translate(cr0, cr3, cr4, efer, gva, read);
    }
    let top = gva >> 47;
    if top != 0 && top != 0x1_ffff {
        return Err(WalkError::NonCanonical);
    }
    let entry = |table: u64, index: u64, size: usize| -> Result<u64, WalkError> {
        let gpa = table + index * size as u64;
        read(gpa, size).ok_or(WalkError::BadTable { gpa })
    };
    walk_checked(cr3 & 0x000f_ffff_ffff_f000, gva, 4, &entry, RW)
}

const RW: u64 = 1 << 1;

fn walk(
    root: u64,
    gva: u64,
    levels: u8,
    entry: &impl Fn(u64, u64, usize) -> Result<u64, WalkError>,
) -> Result<u64, WalkError> {
    walk_checked(root, gva, levels, entry, 0)
}

/// The walk, with `need` (RW, or nothing) required of every present entry.
fn walk_checked(
    root: u64,
    gva: u64,
    levels: u8,
    entry: &impl Fn(u64, u64, usize) -> Result<u64, WalkError>,
    need: u64,
) -> Result<u64, WalkError> {
    const ADDR: u64 = 0x000f_ffff_ffff_f000;
    let mut table = root;
    for level in (1..=levels).rev() {
        let shift = 12 + 9 * u32::from(level - 1);
        let index = if levels == 3 && level == 3 {
            (gva >> 30) & 3
        } else {
            (gva >> shift) & 511
        };
        let e = entry(table, index, 8)?;
        if e & P == 0 {
            return Err(WalkError::NotPresent { level });
        }
        // PAE's PDPTEs have no RW bit.
        if e & need != need && !(levels == 3 && level == 3) {
            return Err(WalkError::ReadOnly { level });
        }
        if level == 1 || (e & PS != 0 && level <= 3 && !(levels == 3 && level == 3)) {
            let page_mask = (1u64 << shift) - 1;
            return Ok((e & ADDR & !page_mask) | (gva & page_mask));
        }
        table = e & ADDR;
    }
    unreachable!("level 1 always returns")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Mem(BTreeMap<u64, u64>);

    impl Mem {
        fn read(&self, gpa: u64, size: usize) -> Option<u64> {
            let v = *self.0.get(&gpa).unwrap_or(&0);
            (gpa < 0x100_0000).then_some(if size == 4 { v & 0xffff_ffff } else { v })
        }
    }

    const LONG: (u64, u64, u64) = (0x8000_0011, 0x20, 0x500);

    #[test]
    fn paging_off_is_identity() {
        let m = Mem(BTreeMap::new());
        assert_eq!(
            translate(0x11, 0, 0, 0, 0x1234, |a, s| m.read(a, s)),
            Ok(0x1234)
        );
    }

    #[test]
    fn long_mode_4k_and_2m_pages() {
        let mut m = BTreeMap::new();
        // PML4 at 0x1000, PDPT at 0x2000, PD at 0x3000, PT at 0x4000
        m.insert(0x1000, 0x2000 | 3);
        m.insert(0x2000, 0x3000 | 3);
        m.insert(0x3000, 0x4000 | 3); // 0..2M through a page table
        m.insert(0x3008, 0x20_0000 | 0x83); // 2M..4M: one 2 MiB page at 2 MiB
        m.insert(0x4000 + 5 * 8, 0x9000 | 3);
        let m = Mem(m);
        let (cr0, cr4, efer) = LONG;
        let t = |gva| translate(cr0, 0x1000, cr4, efer, gva, |a, s| m.read(a, s));
        assert_eq!(t(0x5123), Ok(0x9123));
        assert_eq!(t(0x20_1234), Ok(0x20_1234));
        assert_eq!(t(0x6000), Err(WalkError::NotPresent { level: 1 }));
        assert_eq!(t(0x8000_0000_0000), Err(WalkError::NonCanonical));
        assert_eq!(t(0x40_0000), Err(WalkError::NotPresent { level: 2 }));
    }

    #[test]
    fn a_table_outside_ram_is_reported() {
        let mut m = BTreeMap::new();
        m.insert(0x1000, 0x7000_0000 | 3);
        let m = Mem(m);
        let (cr0, cr4, efer) = LONG;
        assert_eq!(
            translate(cr0, 0x1000, cr4, efer, 0, |a, s| m.read(a, s)),
            Err(WalkError::BadTable { gpa: 0x7000_0000 })
        );
    }

    #[test]
    fn legacy_32bit_with_4m_pages() {
        let mut m = BTreeMap::new();
        m.insert(0x1000 + 4, 0x40_0000 | 0x83); // PDE 1: 4 MiB page at 4 MiB
        m.insert(0x1000, 0x2000 | 3);
        m.insert(0x2000 + 3 * 4, 0x5000 | 3);
        let m = Mem(m);
        let t = |gva| translate(0x8000_0011, 0x1000, 0x10, 0, gva, |a, s| m.read(a, s));
        assert_eq!(t(0x40_1234), Ok(0x40_1234));
        assert_eq!(t(0x3456), Ok(0x5456));
    }

    #[test]
    fn pae_walk_uses_four_pdptes() {
        let mut m = BTreeMap::new();
        m.insert(0x1000 + 8, 0x2000 | 1); // PDPTE 1 covers 1 GiB..2 GiB
        m.insert(0x2000, 0x20_0000 | 0x83); // 2 MiB page
        let m = Mem(m);
        let t = |gva| translate(0x8000_0011, 0x1000, 0x20, 0, gva, |a, s| m.read(a, s));
        assert_eq!(t(0x4000_1234), Ok(0x20_1234));
        assert_eq!(t(0x1234), Err(WalkError::NotPresent { level: 3 }));
    }

    #[test]
    fn writes_need_rw_at_every_level_when_wp_is_set() {
        let mut m = BTreeMap::new();
        m.insert(0x1000, 0x2000 | 3);
        m.insert(0x2000, 0x3000 | 3);
        m.insert(0x3000, 0x4000 | 3);
        m.insert(0x3008, 0x5000 | 1); // PD entry 1: a read-only table
        m.insert(0x4000 + 5 * 8, 0x9000 | 3); // writable
        m.insert(0x4000 + 6 * 8, 0xa000 | 1); // read-only
        m.insert(0x5000, 0xb000 | 3); // writable leaf under a read-only PDE
        let m = Mem(m);
        let (cr0, cr4, efer) = LONG;
        let wp = cr0 | (1 << 16);
        let w = |cr0, gva| translate_write(cr0, 0x1000, cr4, efer, gva, |a, s| m.read(a, s));
        assert_eq!(w(wp, 0x5123), Ok(0x9123));
        assert_eq!(w(wp, 0x6123), Err(WalkError::ReadOnly { level: 1 }));
        assert_eq!(w(wp, 0x20_0123), Err(WalkError::ReadOnly { level: 2 }));
        assert_eq!(w(wp, 0x6_0000), Err(WalkError::NotPresent { level: 1 }));
        // Without CR0.WP a supervisor write ignores RW.
        assert_eq!(w(cr0, 0x6123), Ok(0xa123));
        assert_eq!(w(cr0, 0x20_0123), Ok(0xb123));
        // Reads never need it.
        let r = |gva| translate(wp, 0x1000, cr4, efer, gva, |a, s| m.read(a, s));
        assert_eq!(r(0x6123), Ok(0xa123));
    }
}
