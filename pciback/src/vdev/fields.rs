//! The register-descriptor table: every guest-visible register of one
//! function, what serves it, and its RO / RW1C / RsvdP / RsvdZ masks.
//!
//! A byte no descriptor covers is not virtualised: it reads 0 and writes to
//! it are dropped (or, for a `permissive` function, reach the hardware
//! below 0x100). Descriptors are naturally aligned and 1, 2 or 4 bytes wide,
//! so each lies in one dword of config space.

use alloc::vec::Vec;
use vmm_glue::compact::VecMap;

use super::layout::{Cap, Layout};
use super::{BarKind, DeviceInfo};
use crate::regs::{command, header, msi, msix, pm, status};

/// What serves a register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// A fixed value: identity registers snapshotted at assignment,
    /// rewritten capability pointers, reserved registers (0), the Interrupt
    /// Line (the INTx pirq). Writes are ignored.
    Const(u32),
    /// The hardware's value; writes are ignored.
    HwRo,
    /// The hardware's value; writes reach the hardware (Cache Line Size).
    HwRw,
    /// The Command register, shadowed.
    Command,
    /// The Status register: hardware, with the capability-list bit as the
    /// guest's list has it and the error bits write-1-to-clear.
    Status,
    /// A BAR register, shadowed: `bar` indexes `DeviceInfo::bars`, `hi` is
    /// the upper half of a 64-bit BAR.
    Bar {
        /// Index in `DeviceInfo::bars`.
        bar: usize,
        /// The upper register of a 64-bit BAR.
        hi: bool,
    },
    /// The expansion ROM BAR, shadowed, never enabled.
    Rom,
    /// PM Control/Status: power state mediated, PME_En forced off.
    PmCtrl,
    /// MSI Message Control: the enable bit shows the virtual state.
    MsiControl,
    /// MSI Message Address (low), the guest's own value.
    MsiAddrLo,
    /// MSI Message Upper Address, the guest's own value.
    MsiAddrHi,
    /// MSI Message Data, the guest's own value.
    MsiData,
    /// MSI Mask Bits, the guest's own value (applied while MSI is on).
    MsiMask,
    /// MSI-X Message Control: enable virtual, Function Mask shadowed.
    MsixControl,
}

/// One register descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Field {
    /// Offset in config space.
    pub offset: u16,
    /// Width: 1, 2 or 4.
    pub size: u8,
    /// What serves it.
    pub kind: Kind,
    /// Read-only bits: a write leaves them.
    pub ro: u32,
    /// Write-1-to-clear bits.
    pub rw1c: u32,
    /// Reserved-preserve bits: read 0, a write leaves them.
    pub rsvdp: u32,
    /// Reserved-zero bits: read 0, written as 0.
    pub rsvdz: u32,
}

impl Field {
    fn new(offset: u16, size: u8, kind: Kind) -> Self {
        Self {
            offset,
            size,
            kind,
            ro: 0,
            rw1c: 0,
            rsvdp: 0,
            rsvdz: 0,
        }
    }

    /// A read-only field of a fixed value.
    fn constant(offset: u16, size: u8, value: u32) -> Self {
        Self::new(offset, size, Kind::Const(value)).ro(u32::MAX)
    }

    /// A read-only field read from the hardware.
    fn hw_ro(offset: u16, size: u8) -> Self {
        Self::new(offset, size, Kind::HwRo).ro(u32::MAX)
    }

    fn ro(mut self, mask: u32) -> Self {
        self.ro = mask & self.width_mask();
        self
    }

    fn rw1c(mut self, mask: u32) -> Self {
        self.rw1c = mask;
        self
    }

    fn rsvdp(mut self, mask: u32) -> Self {
        self.rsvdp = mask;
        self
    }

    fn rsvdz(mut self, mask: u32) -> Self {
        self.rsvdz = mask;
        self
    }

    /// All bits of the field.
    pub fn width_mask(&self) -> u32 {
        match self.size {
            4 => u32::MAX,
            n => (1 << (u32::from(n) * 8)) - 1,
        }
    }

    /// The bits a guest write may change.
    pub fn writable(&self) -> u32 {
        self.width_mask() & !(self.ro | self.rw1c | self.rsvdp | self.rsvdz)
    }

    /// Whether `offset` is one of its bytes.
    pub fn covers(&self, offset: u16) -> bool {
        (self.offset..self.offset + u16::from(self.size)).contains(&offset)
    }
}

/// The descriptors, ordered by offset, not overlapping.
#[derive(Clone, Debug, Default)]
pub(super) struct Table {
    fields: Vec<Field>,
}

impl Table {
    /// The descriptor covering byte `offset`.
    pub fn find(&self, offset: u16) -> Option<&Field> {
        let i = self
            .fields
            .partition_point(|f| f.offset + u16::from(f.size) <= offset);
        self.fields.get(i).filter(|f| f.covers(offset))
    }
}

/// Builds the table of a function; a descriptor overlapping one already
/// placed is left out (a malformed capability list cannot take over the
/// header).
pub(super) fn build(info: &DeviceInfo, layout: &Layout, snap: &Snapshot) -> Table {
    let mut map: VecMap<u16, Field> = VecMap::new();
    let mut add = |f: Field| {
        let end = f.offset + u16::from(f.size);
        let clash = map
            .range(..end)
            .next_back()
            .is_some_and(|(_, g)| g.offset + u16::from(g.size) > f.offset);
        debug_assert!(f.offset.is_multiple_of(u16::from(f.size)));
        if !clash {
            map.insert(f.offset, f);
        }
    };
    header_fields(info, layout, snap, &mut add);
    for (i, cap) in layout.visible.iter().enumerate() {
        let next = layout.visible.get(i + 1).map_or(0, |c| c.offset);
        cap_fields(cap, next, layout, &mut add);
    }
    Table {
        fields: map.into_values().collect(),
    }
}

/// Registers read once at assignment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Snapshot {
    /// Vendor and Device ID.
    pub id: u32,
    /// Revision and Class Code.
    pub class_rev: u32,
    /// Header Type.
    pub header_type: u8,
    /// Subsystem Vendor and Subsystem ID (type 0).
    pub subsystem: u32,
}

fn header_fields(info: &DeviceInfo, layout: &Layout, snap: &Snapshot, add: &mut impl FnMut(Field)) {
    let bridge = info.header_type & 0x7f == 1;
    add(Field::constant(header::ID, 4, snap.id));
    add(Field::new(command::OFFSET, 2, Kind::Command).rsvdp(command::RESERVED.into()));
    add(Field::new(status::OFFSET, 2, Kind::Status)
        .ro(status::RO.into())
        .rw1c(status::RW1C.into())
        .rsvdz(status::RESERVED.into()));
    add(Field::constant(header::CLASS_REV, 4, snap.class_rev));
    add(Field::new(header::CACHE_LINE, 1, Kind::HwRw));
    add(Field::hw_ro(header::LATENCY, 1));
    add(Field::constant(
        header::HEADER_TYPE,
        1,
        snap.header_type.into(),
    ));
    add(Field::hw_ro(header::BIST, 1));
    let bar_regs: u8 = if bridge { 2 } else { 6 };
    for reg in 0..bar_regs {
        let offset = header::BAR0 + 4 * u16::from(reg);
        let lo = info.bars.iter().position(|b| b.index == reg);
        let hi = reg.checked_sub(1).and_then(|r| {
            info.bars
                .iter()
                .position(|b| b.index == r && b.kind == BarKind::Mem64)
        });
        let f = match (lo, hi) {
            (Some(bar), _) => {
                let flags = match info.bars[bar].kind {
                    BarKind::Io => 0b11,
                    BarKind::Mem32 | BarKind::Mem64 => 0xf,
                };
                Field::new(offset, 4, Kind::Bar { bar, hi: false }).ro(flags)
            }
            (None, Some(bar)) => Field::new(offset, 4, Kind::Bar { bar, hi: true }),
            (None, None) => Field::constant(offset, 4, 0),
        };
        add(f);
    }
    let rom_reg = if bridge {
        header::BRIDGE_ROM
    } else {
        header::ROM
    };
    add(match info.rom {
        Some(_) => Field::new(rom_reg, 4, Kind::Rom).rsvdz(header::ROM_ENABLE | 0x7fe),
        None => Field::constant(rom_reg, 4, 0),
    });
    if bridge {
        // Bus numbers, windows, secondary status: the guest sees them, the
        // bridge keeps them.
        for offset in (0x18..0x34).step_by(4) {
            add(Field::hw_ro(offset, 4));
        }
        add(Field::hw_ro(header::BRIDGE_CONTROL, 2));
    } else {
        add(Field::hw_ro(0x28, 4));
        add(Field::constant(header::SUBSYSTEM, 4, snap.subsystem));
        add(Field::constant(0x38, 4, 0));
        add(Field::hw_ro(0x3e, 2));
    }
    let first = layout.visible.first().map_or(0, |c| c.offset);
    add(Field::constant(header::CAP_PTR, 1, first.into()));
    add(Field::constant(0x35, 1, 0));
    add(Field::constant(0x36, 2, 0));
    add(Field::constant(
        header::INTERRUPT_LINE,
        1,
        info.intx_pirq.into(),
    ));
    add(Field::hw_ro(header::INTERRUPT_PIN, 1));
}

fn cap_fields(cap: &Cap, next: u16, layout: &Layout, add: &mut impl FnMut(Field)) {
    let at = cap.offset;
    add(Field::constant(
        at,
        2,
        u32::from(cap.id) | u32::from(next) << 8,
    ));
    match cap.id {
        pm::CAP_ID => {
            add(Field::hw_ro(at + pm::PMC, 2).rsvdp(pm::PMC_PME_SUPPORT.into()));
            add(Field::new(at + pm::PMCSR, 2, Kind::PmCtrl)
                .ro((pm::NO_SOFT_RESET | 0x6000).into())
                .rw1c(pm::PME_STATUS.into())
                .rsvdz((pm::PME_ENABLE | 0x00f4).into()));
            add(Field::hw_ro(at + 6, 2));
        }
        msi::CAP_ID => {
            let Some(m) = layout.msi.filter(|m| m.offset == at) else {
                return;
            };
            add(Field::new(at + msi::CONTROL, 2, Kind::MsiControl)
                .ro(!u32::from(msi::ENABLE | msi::MME)));
            add(Field::new(at + msi::ADDRESS_LO, 4, Kind::MsiAddrLo).rsvdz(0b11));
            if m.is64 {
                add(Field::new(at + msi::ADDRESS_HI, 4, Kind::MsiAddrHi));
            }
            add(Field::new(m.data(), 2, Kind::MsiData));
            add(Field::constant(m.data() + 2, 2, 0));
            if m.maskable {
                add(Field::new(m.mask(), 4, Kind::MsiMask).ro(!1));
                add(Field::hw_ro(m.data() + msi::PENDING_FROM_DATA, 4));
            }
        }
        msix::CAP_ID => {
            let Some(m) = layout.msix.filter(|m| m.offset == at) else {
                return;
            };
            add(Field::new(at + msix::CONTROL, 2, Kind::MsixControl)
                .ro(!u32::from(msix::ENABLE | msix::FUNCTION_MASK)));
            add(Field::constant(at + msix::TABLE, 4, m.table_reg));
            add(Field::constant(at + msix::PBA, 4, m.pba_reg));
        }
        _ => {
            // PCI Express: read-only, as the hardware has it.
            let end = at + cap.len;
            add(Field::hw_ro(at + 2, 2));
            let mut offset = at + 4;
            while offset + 4 <= end {
                add(Field::hw_ro(offset, 4));
                offset += 4;
            }
        }
    }
}
