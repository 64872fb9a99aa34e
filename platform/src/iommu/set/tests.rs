//! Host tests of the set against the drivers' fakes: which unit serves a
//! function, what a function's DMA reaches after any sequence of
//! assignments, releases and domain destructions (walked the way the
//! units walk, not through the drivers), that destroyed domains give
//! every table frame back, and the interrupt remapping routes.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::rc::Rc;
use alloc::string::ToString;
use alloc::vec::Vec;
use core::cell::RefCell;

use proptest::prelude::*;
use vmm_glue::{DmaRemapping, Gpa, Hpa, InterruptRemapping, IommuError, RamRange, Sbdf};

use super::{Iommu, IommuSet, Recorded, Scope, AMD_IRQS};
use crate::iommu::amdvi::{self, AmdVi, AmdViRegs, DeviceEntry, IoTables, DTE_SIZE};
use crate::iommu::vtd::{
    self, ApicMode, ContextEntry, IrTable, SlTables, Vtd, VtdRegs, IR_ENTRIES, SL_ADDR, SL_PS,
    SL_R, SL_W,
};
use crate::iommu::TableMemory;

/// A unit's fake registers, of either kind, shared with the test.
#[derive(Clone, Debug)]
enum Regs {
    Vtd(Rc<RefCell<vtd::fake::FakeRegs>>),
    AmdVi(Rc<RefCell<amdvi::fake::FakeRegs>>),
}

impl Regs {
    fn vtd(&self) -> core::cell::RefMut<'_, vtd::fake::FakeRegs> {
        match self {
            Self::Vtd(r) => r.borrow_mut(),
            Self::AmdVi(_) => panic!("an AMD-Vi unit's registers reached as VT-d's"),
        }
    }

    fn amd(&self) -> core::cell::RefMut<'_, amdvi::fake::FakeRegs> {
        match self {
            Self::AmdVi(r) => r.borrow_mut(),
            Self::Vtd(_) => panic!("a VT-d unit's registers reached as AMD-Vi's"),
        }
    }
}

impl VtdRegs for Regs {
    fn read32(&mut self, off: u32) -> u32 {
        VtdRegs::read32(&mut *self.vtd(), off)
    }
    fn write32(&mut self, off: u32, v: u32) {
        VtdRegs::write32(&mut *self.vtd(), off, v)
    }
    fn read64(&mut self, off: u32) -> u64 {
        VtdRegs::read64(&mut *self.vtd(), off)
    }
    fn write64(&mut self, off: u32, v: u64) {
        VtdRegs::write64(&mut *self.vtd(), off, v)
    }
}

impl AmdViRegs for Regs {
    fn read32(&mut self, off: u32) -> u32 {
        AmdViRegs::read32(&mut *self.amd(), off)
    }
    fn write32(&mut self, off: u32, v: u32) {
        AmdViRegs::write32(&mut *self.amd(), off, v)
    }
    fn read64(&mut self, off: u32) -> u64 {
        AmdViRegs::read64(&mut *self.amd(), off)
    }
    fn write64(&mut self, off: u32, v: u64) {
        AmdViRegs::write64(&mut *self.amd(), off, v)
    }
}

type Mem = amdvi::fake::SharedMem;

fn sbdf(seg: u16, bus: u8, dev: u8, func: u8) -> Sbdf {
    Sbdf::new(seg, bus, dev, func).unwrap()
}

/// Functions the VT-d unit's scope names.
const VTD_FUNCS: [(u8, u8); 3] = [(0, 3), (0, 4), (1, 0)];
/// Functions only the AMD-Vi unit's catch-all range covers.
const AMD_FUNCS: [(u8, u8); 3] = [(0, 5), (0, 6), (2, 0)];

/// Every function the sequences use: the VT-d unit's, the AMD-Vi unit's,
/// and one on a segment no unit serves.
fn functions() -> Vec<Sbdf> {
    let mut v: Vec<Sbdf> = VTD_FUNCS
        .iter()
        .chain(&AMD_FUNCS)
        .map(|&(bus, dev)| sbdf(0, bus, dev, 0))
        .collect();
    v.push(sbdf(1, 0, 1, 0));
    v
}

/// A machine with a VT-d unit (no interrupt remapping) naming
/// [`VTD_FUNCS`] and an AMD-Vi unit covering every other function of
/// segment 0 (buses 0 to 2), both on and empty.
struct Machine {
    set: IommuSet<Regs, Mem>,
    mem: Mem,
    amd_regs: Regs,
}

fn machine() -> Machine {
    machine_with(Vec::new())
}

/// [`machine`] with the VT-d unit's `reserved` ranges (RMRRs).
fn machine_with(reserved: Vec<(Sbdf, u64, u64)>) -> Machine {
    let mut mem = Mem::new();
    let vtd_regs = Regs::Vtd(Rc::new(RefCell::new(vtd::fake::FakeRegs::qemu())));
    let mut vtd = Vtd::init(vtd_regs, &mut mem, 0).unwrap();
    vtd.enable_translation().unwrap();
    let amd_regs = Regs::AmdVi(Rc::new(RefCell::new(amdvi::fake::FakeRegs::new(
        amdvi::fake::EFR_QEMU,
        &mem,
    ))));
    let amd = AmdVi::init(amd_regs.clone(), &mut mem, 0, 2).unwrap();
    let mut set = IommuSet::new(mem.clone());
    let vtd_scope = Scope {
        segment: 0,
        include_all: false,
        functions: VTD_FUNCS.iter().map(|&(b, d)| sbdf(0, b, d, 0)).collect(),
        ioapics: Vec::new(),
        reserved,
        aliases: Vec::new(),
    };
    assert_eq!(
        set.add(Iommu::Vtd { vtd, ir: None }, 0xfed9_0000, vtd_scope),
        0
    );
    let amd_scope = Scope {
        segment: 0,
        include_all: true,
        // I/O APIC 0 at 00:14.0, as QEMU's IVRS names it.
        ioapics: alloc::vec![(0, sbdf(0, 0, 0x14, 0))],
        ..Scope::default()
    };
    assert_eq!(set.add(Iommu::AmdVi(amd), 0xfed8_0000, amd_scope), 1);
    Machine { set, mem, amd_regs }
}

/// Where a DMA write by `dev` to `iova` lands, walked from the VT-d
/// root table the way the unit walks it; also the domain id it is
/// tagged with.
fn vtd_walk(mem: &mut Mem, root: u64, dev: Sbdf, iova: u64) -> Option<(u64, u16)> {
    let re = mem.read64(root + u64::from(dev.bus) * 16);
    if re & 1 == 0 {
        return None;
    }
    let slot = (re & !0xfff) + u64::from(dev.rid() & 0xff) * 16;
    let ce = ContextEntry::decode([mem.read64(slot), mem.read64(slot + 8)])?;
    let levels = u32::from(ce.aw) + 2;
    if iova >> (12 + 9 * levels) != 0 {
        return None;
    }
    let mut table = ce.sl_root;
    for level in (1..=levels).rev() {
        let shift = 12 + 9 * (level - 1);
        let e = mem.read64(table + ((iova >> shift) & 511) * 8);
        if e & (SL_R | SL_W) != SL_R | SL_W {
            return None;
        }
        if level == 1 || e & SL_PS != 0 {
            let size = 1u64 << shift;
            return Some((
                (e & SL_ADDR & !(size - 1)) | (iova & (size - 1)),
                ce.domain_id,
            ));
        }
        table = e & SL_ADDR;
    }
    None
}

impl Machine {
    fn vtd_root(&self) -> u64 {
        match self.set.units()[0].iommu() {
            Iommu::Vtd { vtd, .. } => vtd.root_table(),
            Iommu::AmdVi(_) => unreachable!(),
        }
    }

    fn amd_entry(&mut self, dev: Sbdf) -> DeviceEntry {
        let (table, _) = match self.set.units()[1].iommu() {
            Iommu::AmdVi(amd) => amd.device_table(),
            Iommu::Vtd { .. } => unreachable!(),
        };
        let at = table + u64::from(dev.rid()) * DTE_SIZE;
        DeviceEntry(core::array::from_fn(|i| self.mem.read64(at + 8 * i as u64)))
    }

    /// Where a DMA write by `dev` to `iova` lands, as the unit serving it
    /// walks it, and the domain it translates for.
    fn dma(&mut self, dev: Sbdf, iova: u64) -> Option<(u64, u16)> {
        match self.set.unit_index(dev)? {
            0 => {
                let root = self.vtd_root();
                vtd_walk(&mut self.mem, root, dev, iova)
            }
            _ => {
                let to = self.amd_regs.amd().dma(dev.rid(), iova, true)?;
                Some((to, self.amd_entry(dev).domain_id()))
            }
        }
    }

    /// Whether `dev`'s entry blocks it: no context entry (VT-d), or a
    /// device table entry allowing no DMA and no interrupts (AMD-Vi).
    fn blocked(&mut self, dev: Sbdf) -> bool {
        match self.set.unit_index(dev) {
            Some(0) => {
                let root = self.vtd_root();
                let re = self.mem.read64(root + u64::from(dev.bus) * 16);
                re & 1 == 0 || {
                    let slot = (re & !0xfff) + u64::from(dev.rid() & 0xff) * 16;
                    ContextEntry::decode([self.mem.read64(slot), self.mem.read64(slot + 8)])
                        .is_none()
                }
            }
            Some(_) => {
                let e = self.amd_entry(dev);
                !e.allows_dma() && e.interrupt_table().is_none()
            }
            None => true,
        }
    }
}

/// Table frames a domain's tables for `ram` take on `unit` (built again
/// in scratch memory).
fn table_frames(set: &IommuSet<Regs, Mem>, unit: usize, ram: &[RamRange]) -> usize {
    let mut scratch = vtd::fake::FakeMem::new();
    match set.units()[unit].iommu() {
        Iommu::Vtd { vtd, .. } => {
            let mut t = SlTables::new(&mut scratch, vtd.sl_config()).unwrap();
            for r in ram {
                t.map(&mut scratch, r.gpa.raw(), r.hpa.raw(), r.len, true)
                    .unwrap();
            }
        }
        Iommu::AmdVi(amd) => {
            let mut t = IoTables::new(&mut scratch, amd.io_config()).unwrap();
            for r in ram {
                t.map(&mut scratch, r.gpa.raw(), r.hpa.raw(), r.len, true)
                    .unwrap();
            }
        }
    }
    scratch.live()
}

fn ram(ranges: &[(u64, u64, u64)]) -> Vec<RamRange> {
    ranges
        .iter()
        .map(|&(gpa, hpa, len)| RamRange {
            gpa: Gpa(gpa),
            hpa: Hpa(hpa),
            len,
        })
        .collect()
}

const MIB2: u64 = 2 << 20;

#[test]
fn a_function_is_served_by_the_unit_whose_scope_names_it_else_the_catch_all() {
    let m = machine();
    assert_eq!(m.set.unit_index(sbdf(0, 0, 3, 0)), Some(0));
    assert_eq!(m.set.unit_index(sbdf(0, 1, 0, 0)), Some(0));
    assert_eq!(m.set.unit_index(sbdf(0, 0, 5, 0)), Some(1));
    assert_eq!(m.set.unit_index(sbdf(0, 0, 3, 1)), Some(1));
    assert_eq!(m.set.unit_index(sbdf(1, 0, 3, 0)), None);
    assert!(m.set.covers(sbdf(0, 2, 0, 0)));
    assert!(!m.set.covers(sbdf(1, 0, 1, 0)));
    assert_eq!(m.set.unit_for(sbdf(0, 0, 4, 0)).unwrap().kind(), "VT-d");
    assert_eq!(
        m.set.unit_for(sbdf(0, 0, 4, 0)).unwrap().base(),
        0xfed9_0000
    );
    assert_eq!(m.set.unit_for(sbdf(0, 0, 6, 0)).unwrap().kind(), "AMD-Vi");
}

#[test]
fn a_function_no_unit_serves_is_refused_and_not_remapped() {
    let mut m = machine();
    let dev = sbdf(1, 0, 1, 0);
    let r = ram(&[(0, 0x4000_0000, MIB2)]);
    assert_eq!(m.set.attach(1, &r, dev), Err(IommuError::NotCovered));
    assert_eq!(m.set.detach(dev), Err(IommuError::NotCovered));
    assert!(!m.set.remaps(dev));
    assert_eq!(m.set.route_msi(dev, 0x40, 0), Ok(None));
    assert!(!m.set.has_tables(0, 1) && !m.set.has_tables(1, 1));
}

#[test]
fn functions_of_one_domain_share_its_tables_on_a_unit() {
    let mut m = machine();
    let r = ram(&[(0, 0x4000_0000, MIB2)]);
    let before = m.mem.live();
    m.set.attach(1, &r, sbdf(0, 0, 3, 0)).unwrap();
    let after_first = m.mem.live();
    m.set.attach(1, &r, sbdf(0, 0, 4, 0)).unwrap();
    // Same bus, same context table, same tables: nothing new.
    assert_eq!(m.mem.live(), after_first);
    // The tables and bus 0's context table.
    assert_eq!(after_first - before, table_frames(&m.set, 0, &r) + 1);
    for dev in [sbdf(0, 0, 3, 0), sbdf(0, 0, 4, 0)] {
        assert_eq!(m.dma(dev, 0x1000), Some((0x4000_1000, 1)));
    }
}

#[test]
fn a_function_with_reserved_memory_gets_it_mapped_one_to_one_unless_it_is_guest_ram() {
    // 00:04.0 keeps using 64 KiB at 0xa0000000 (an RMRR).
    let mut m = machine_with(alloc::vec![(sbdf(0, 0, 4, 0), 0xa000_0000, 0xa001_0000)]);
    let r = ram(&[(0, 0x4000_0000, MIB2)]);
    m.set.attach(1, &r, sbdf(0, 0, 4, 0)).unwrap();
    assert_eq!(m.dma(sbdf(0, 0, 4, 0), 0xa000_8000), Some((0xa000_8000, 1)));
    assert_eq!(m.dma(sbdf(0, 0, 4, 0), 0xa001_0000), None);
    assert_eq!(m.dma(sbdf(0, 0, 4, 0), 0x1000), Some((0x4000_1000, 1)));
    // A guest whose RAM is where the reserved range is cannot have it.
    let clash = ram(&[(0xa000_0000, 0x4000_0000, MIB2)]);
    let e = m.set.attach(2, &clash, sbdf(0, 0, 4, 0)).unwrap_err();
    assert!(matches!(e, IommuError::Mapping(_)), "{e:?}");
    assert!(e.to_string().contains("RMRR"), "{e}");
}

#[test]
fn a_function_with_reserved_memory_keeps_only_that_while_no_guest_owns_it() {
    let dev = sbdf(0, 0, 4, 0);
    let mut m = machine_with(alloc::vec![(dev, 0xa000_0000, 0xa001_0000)]);
    let q = crate::iommu::QUARANTINE_DOMAIN;
    let done = m.set.quarantine_reserved();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].0, dev);
    assert!(done[0].1.is_ok());
    assert_eq!(m.dma(dev, 0xa000_0000), Some((0xa000_0000, q)));
    assert_eq!(m.dma(dev, 0x1000), None);
    // Given to a guest: its RAM and the reserved memory.
    let r = ram(&[(0, 0x4000_0000, MIB2)]);
    m.set.attach(1, &r, dev).unwrap();
    assert_eq!(m.dma(dev, 0x1000), Some((0x4000_1000, 1)));
    assert_eq!(m.dma(dev, 0xa000_0000), Some((0xa000_0000, 1)));
    // Taken back: the quarantine tables again, the guest's RAM gone.
    assert_eq!(m.set.detach(dev), Ok(true));
    assert_eq!(m.dma(dev, 0x1000), None);
    assert_eq!(m.dma(dev, 0xa000_0000), Some((0xa000_0000, q)));
    // Functions without reserved memory are still blocked.
    assert!(m.blocked(sbdf(0, 0, 3, 0)));
    // No guest can use the quarantine's id (or one above it).
    assert!(m.set.attach(q, &r, sbdf(0, 0, 3, 0)).is_err());
    assert!(m.set.attach(q + 1, &r, sbdf(0, 0, 3, 0)).is_err());
    assert!(m.blocked(sbdf(0, 0, 3, 0)));
}

#[test]
fn a_ram_map_the_unit_refuses_is_an_error_and_leaves_nothing_behind() {
    let mut m = machine();
    let before = m.mem.live();
    let bad = ram(&[(0, 0x4000_0000, MIB2), (0x20_1000, 0x5000_0000, 0x800)]);
    for dev in [sbdf(0, 0, 3, 0), sbdf(0, 0, 5, 0)] {
        let e = m.set.attach(1, &bad, dev).unwrap_err();
        assert!(matches!(e, IommuError::Mapping(_)), "{e:?}");
        assert!(e.to_string().starts_with("mapping its RAM: bad DMA range"));
        assert!(m.blocked(dev));
    }
    assert!(!m.set.has_tables(0, 1) && !m.set.has_tables(1, 1));
    assert_eq!(m.mem.live(), before);
}

#[test]
fn detaching_reads_back_a_blocking_entry() {
    let mut m = machine();
    let r = ram(&[(0, 0x4000_0000, MIB2)]);
    for dev in [sbdf(0, 0, 3, 0), sbdf(0, 0, 5, 0)] {
        // Never attached: blocked already.
        assert_eq!(m.set.detach(dev), Ok(true));
        m.set.attach(2, &r, dev).unwrap();
        assert!(!m.blocked(dev));
        assert_eq!(m.set.detach(dev), Ok(true));
        assert!(m.blocked(dev));
        assert_eq!(m.dma(dev, 0), None);
    }
}

#[test]
fn units_report_what_they_blocked() {
    let mut m = machine();
    assert_eq!(m.set.recorded(), []);
    // An unowned function's DMA on the AMD-Vi unit.
    assert_eq!(m.dma(sbdf(0, 0, 5, 0), 0x1000), None);
    let got = m.set.recorded();
    assert_eq!(got.len(), 1);
    assert!(matches!(got[0], Recorded::AmdVi(_)));
    assert!(got[0].to_string().contains("0000:00:05.0"), "{}", got[0]);
    assert_eq!(m.set.recorded(), []);
}

#[test]
fn amd_vi_msi_routes_are_per_function_and_given_back() {
    let mut m = machine();
    let r = ram(&[(0, 0x4000_0000, MIB2)]);
    let (a, b) = (sbdf(0, 0, 5, 0), sbdf(0, 0, 6, 0));
    assert!(m.set.remaps(a));
    // Not attached: no table of its own yet.
    assert_eq!(m.set.route_msi(a, 0x40, 0), Ok(None));
    m.set.attach(1, &r, a).unwrap();
    m.set.attach(1, &r, b).unwrap();
    let msi = m.set.route_msi(a, 0x40, 0).unwrap().unwrap();
    assert_eq!(msi.handle, 0);
    assert_eq!(m.set.route_msi(a, 0x41, 0).unwrap().unwrap().handle, 1);
    let regs = m.amd_regs.clone();
    assert_eq!(
        regs.amd().interrupt(a.rid(), msi.address, msi.data),
        Some((0x40, 0))
    );
    // The same message from another function names its own (empty)
    // table.
    assert_eq!(regs.amd().interrupt(b.rid(), msi.address, msi.data), None);
    m.set.unroute_msi(a, msi.handle);
    assert_eq!(regs.amd().interrupt(a.rid(), msi.address, msi.data), None);
    // The freed entry is the next one given.
    assert_eq!(m.set.route_msi(a, 0x42, 0).unwrap().unwrap().handle, 0);
    for _ in 2..AMD_IRQS {
        m.set.route_msi(a, 0x43, 0).unwrap().unwrap();
    }
    assert_eq!(m.set.route_msi(a, 0x44, 0), Err(IommuError::TableFull));
    assert!(matches!(
        m.set.route_msi(b, 0x44, 256),
        Err(IommuError::Unit(_))
    ));
    // Detached: its interrupts are blocked and it has no routes.
    assert_eq!(m.set.detach(a), Ok(true));
    assert_eq!(regs.amd().interrupt(a.rid(), msi.address, msi.data), None);
    assert_eq!(m.set.route_msi(a, 0x40, 0), Ok(None));
}

#[test]
fn amd_vi_ioapic_routes_are_indexed_by_vector() {
    let mut m = machine();
    let regs = m.amd_regs.clone();
    let ioapic = sbdf(0, 0, 0x14, 0).rid();
    // Before any route the I/O APIC's interrupts are blocked like every
    // other device id's.
    assert_eq!(regs.amd().interrupt(ioapic, 0xfee0_0000, 0x50), None);
    // An I/O APIC no unit names: its messages would be blocked, so it
    // gets no route.
    let e = m.set.route_ioapic(1, 0x50, 0).unwrap_err();
    assert!(
        e.to_string().contains("I/O APIC 1 is in no IOMMU's scope"),
        "{e}"
    );
    let r = m.set.route_ioapic(0, 0x50, 2).unwrap().unwrap();
    assert_eq!(r.handle, 0x50);
    assert!(!r.remappable_format);
    // An ordinary redirection entry with vector 0x50 (data bits 7:0;
    // delivery mode fixed, level) reaches APIC 2 as vector 0x50.
    assert_eq!(
        regs.amd().interrupt(ioapic, 0xfee0_0000, 0x8050),
        Some((0x50, 2))
    );
    // Other vectors, an NMI, and the same message from a function: blocked.
    for data in [0x51, 0xdf, 0x400] {
        assert_eq!(regs.amd().interrupt(ioapic, 0xfee0_0000, data), None);
    }
    assert_eq!(
        regs.amd()
            .interrupt(sbdf(0, 0, 5, 0).rid(), 0xfee0_0000, 0x50),
        None
    );
    // One entry per vector.
    assert!(matches!(
        m.set.route_ioapic(0, 0x50, 2),
        Err(IommuError::Unit(_))
    ));
    m.set.unroute_ioapic(0, r.handle);
    assert_eq!(regs.amd().interrupt(ioapic, 0xfee0_0000, 0x50), None);
    assert_eq!(
        m.set.route_ioapic(0, 0x50, 0).unwrap().unwrap().handle,
        0x50
    );
}

/// A set with one VT-d unit with queued invalidation and interrupt
/// remapping, naming 00:03.0 and 00:04.0 and I/O APIC 2 (at 00:1e.0).
fn vtd_remapping() -> (
    IommuSet<Regs, vtd::fake::SharedMem>,
    Rc<RefCell<vtd::fake::FakeRegs>>,
) {
    let mem = vtd::fake::SharedMem::new();
    let ecap = vtd::fake::ECAP_DEFAULT | 1 << 1;
    let mut fake = vtd::fake::FakeRegs::new(vtd::fake::CAP_DEFAULT, ecap);
    fake.queue_mem = Some(mem.clone());
    let shared = Rc::new(RefCell::new(fake));
    let mut m = mem.clone();
    let mut vtd = Vtd::init(Regs::Vtd(shared.clone()), &mut m, 0).unwrap();
    vtd.enable_translation().unwrap();
    let table = IrTable::new(&mut m, ApicMode::Xapic, true).unwrap();
    vtd.enable_interrupt_remapping(&mut m, &table).unwrap();
    let mut set = IommuSet::new(mem);
    let scope = Scope {
        segment: 0,
        include_all: false,
        functions: alloc::vec![sbdf(0, 0, 3, 0), sbdf(0, 0, 4, 0)],
        ioapics: alloc::vec![(2, sbdf(0, 0, 0x1e, 0))],
        ..Scope::default()
    };
    set.add(
        Iommu::Vtd {
            vtd,
            ir: Some(table),
        },
        0xfed9_0000,
        scope,
    );
    (set, shared)
}

#[test]
fn vt_d_msi_routes_check_the_full_requester_id() {
    use vtd::fake::Irq;
    let (mut set, regs) = vtd_remapping();
    let (a, b) = (sbdf(0, 0, 3, 0), sbdf(0, 0, 4, 0));
    assert!(set.remaps(a));
    assert!(!set.remaps(sbdf(0, 0, 5, 0)));
    let msi = set.route_msi(a, 0x40, 1).unwrap().unwrap();
    assert_eq!(
        regs.borrow_mut().interrupt(a.rid(), msi.address, msi.data),
        Irq::Delivered {
            vector: 0x40,
            dest: 1
        }
    );
    assert_eq!(
        regs.borrow_mut().interrupt(b.rid(), msi.address, msi.data),
        Irq::Blocked(0x26)
    );
    set.unroute_msi(a, msi.handle);
    assert_eq!(
        regs.borrow_mut().interrupt(a.rid(), msi.address, msi.data),
        Irq::Blocked(0x22)
    );
    // One table for the unit: MSIs and I/O APIC inputs share it.
    for _ in 0..IR_ENTRIES - 1 {
        set.route_msi(b, 0x41, 0).unwrap().unwrap();
    }
    let h = set.route_ioapic(2, 0x50, 0).unwrap().unwrap().handle;
    assert_eq!(set.route_ioapic(2, 0x51, 0), Err(IommuError::TableFull));
    assert_eq!(set.route_msi(a, 0x42, 0), Err(IommuError::TableFull));
    set.unroute_ioapic(2, h);
    assert_eq!(set.route_msi(a, 0x42, 0).unwrap().unwrap().handle, h);
}

#[test]
fn vt_d_ioapic_routes_are_level_triggered_and_name_the_ioapic() {
    use vtd::fake::Irq;
    let (mut set, regs) = vtd_remapping();
    // Not under this unit, whose remapping would block it.
    assert!(matches!(
        set.route_ioapic(3, 0x50, 0),
        Err(IommuError::Unit(_))
    ));
    let r = set.route_ioapic(2, 0x50, 0).unwrap().unwrap();
    assert!(r.remappable_format);
    let h = r.handle;
    let (address, data) = vtd::remappable_msi(h);
    let ioapic = sbdf(0, 0, 0x1e, 0).rid();
    assert_eq!(
        regs.borrow_mut().interrupt(ioapic, address, data),
        Irq::Delivered {
            vector: 0x50,
            dest: 0
        }
    );
    assert_eq!(
        regs.borrow_mut()
            .interrupt(sbdf(0, 0, 3, 0).rid(), address, data),
        Irq::Blocked(0x26)
    );
    // Trigger mode (bit 4 of the entry) says level.
    let mut mem = set.mem.clone();
    let irta = regs.borrow().latched_irta.unwrap();
    let lo = mem.read64((irta & !0xfff) + u64::from(h) * 16);
    assert_ne!(lo & 1 << 4, 0);
    set.unroute_ioapic(2, h);
    assert_eq!(
        regs.borrow_mut().interrupt(ioapic, address, data),
        Irq::Blocked(0x22)
    );
}

/// One step of a sequence.
#[derive(Clone, Copy, Debug)]
enum Op {
    /// Function `functions()[.0]` to domain `.1` (a function another
    /// domain has moves).
    Assign(usize, u16),
    /// Function `functions()[.0]` back to nobody.
    Release(usize),
    /// Domain `.0` ends: its functions are released, its tables freed.
    Destroy(u16),
}

const DOMAINS: u16 = 3;

fn op() -> impl Strategy<Value = Op> {
    let n = functions().len();
    prop_oneof![
        4 => (0..n, 1..=DOMAINS).prop_map(|(f, d)| Op::Assign(f, d)),
        2 => (0..n).prop_map(Op::Release),
        1 => (1..=DOMAINS).prop_map(Op::Destroy),
    ]
}

/// A domain's RAM: up to four ranges in distinct 2 MiB slots of the
/// guest-physical space (some above 4 GiB), each either a whole 2 MiB
/// chunk or a few 4 KiB pages, anywhere in host memory.
fn ram_map() -> impl Strategy<Value = Vec<RamRange>> {
    proptest::collection::btree_map(0..12u64, (0..512u64, any::<bool>(), 1..5u64), 1..5).prop_map(
        |slots| {
            slots
                .into_iter()
                .map(|(slot, (host, chunk, pages))| {
                    let gpa = if slot < 8 {
                        slot * MIB2
                    } else {
                        (4 << 30) + (slot - 8) * MIB2
                    };
                    let (hpa, len) = if chunk {
                        (0x2_0000_0000 + host * MIB2, MIB2)
                    } else {
                        (0x2_0000_0000 + host * 0x1000, pages * 0x1000)
                    };
                    RamRange {
                        gpa: Gpa(gpa),
                        hpa: Hpa(hpa),
                        len,
                    }
                })
                .collect()
        },
    )
}

/// What the set should have done so far.
#[derive(Debug, Default)]
struct Model {
    owner: BTreeMap<Sbdf, u16>,
    /// (unit, domain) pairs with tables.
    tables: BTreeSet<(usize, u16)>,
    /// Buses of the VT-d unit with a context table (kept for good).
    vtd_buses: BTreeSet<u8>,
}

fn in_ram(ram: &[RamRange], gpa: u64) -> bool {
    ram.iter()
        .any(|r| (r.gpa.raw()..r.gpa.raw() + r.len).contains(&gpa))
}

/// Checks every function against the model: an owned one reaches every
/// page of its domain's RAM where the RAM map says and nothing around
/// it; an unowned one is blocked. Then that the live table frames are
/// exactly those the model accounts for.
fn check(m: &mut Machine, model: &Model, rams: &[Vec<RamRange>], baseline: usize) {
    for dev in functions() {
        match model.owner.get(&dev) {
            Some(&dom) => {
                let ram = &rams[usize::from(dom)];
                for r in ram {
                    for off in (0..r.len).step_by(0x1000) {
                        let got = m.dma(dev, r.gpa.raw() + off);
                        assert_eq!(
                            got,
                            Some((r.hpa.raw() + off, dom)),
                            "{dev} in dom{dom} at {:#x}",
                            r.gpa.raw() + off
                        );
                    }
                }
                let around = ram
                    .iter()
                    .flat_map(|r| [r.gpa.raw().wrapping_sub(0x1000), r.gpa.raw() + r.len])
                    .chain([0x40_0000_0000, 0x1_2000_0000]);
                for gpa in around.filter(|&g| !in_ram(ram, g)) {
                    assert_eq!(m.dma(dev, gpa), None, "{dev} in dom{dom} at {gpa:#x}");
                }
            }
            None => {
                assert!(m.blocked(dev), "{dev} has no owner but is not blocked");
                if m.set.covers(dev) {
                    assert_eq!(m.dma(dev, 0), None, "{dev} has no owner");
                }
            }
        }
    }
    // Drain what the AMD-Vi unit logged for the blocked walks.
    m.set.recorded();
    let tables: usize = model
        .tables
        .iter()
        .map(|&(u, d)| table_frames(&m.set, u, &rams[usize::from(d)]))
        .sum();
    let amd_irq_tables = model
        .owner
        .keys()
        .filter(|&&d| m.set.unit_index(d) == Some(1))
        .count();
    assert_eq!(
        m.mem.live(),
        baseline + model.vtd_buses.len() + tables + amd_irq_tables,
        "table frames"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// After any sequence of assignments, releases and destructions, a
    /// function's DMA reaches exactly its domain's RAM map, a function
    /// without an owner reaches nothing, and table frames are exactly
    /// those of the live domains (all given back once every domain is
    /// destroyed).
    #[test]
    fn dma_reaches_exactly_the_owner_s_ram_after_any_sequence(
        rams in proptest::collection::vec(ram_map(), usize::from(DOMAINS)),
        ops in proptest::collection::vec(op(), 1..16),
    ) {
        let mut m = machine();
        let baseline = m.mem.live();
        // Domains are numbered from 1.
        let rams: Vec<Vec<RamRange>> = core::iter::once(Vec::new()).chain(rams).collect();
        let funcs = functions();
        let mut model = Model::default();
        let ops = ops.into_iter().chain((1..=DOMAINS).map(Op::Destroy));
        for op in ops {
            match op {
                Op::Assign(f, dom) => {
                    let dev = funcs[f];
                    let r = m.set.attach(dom, &rams[usize::from(dom)], dev);
                    match m.set.unit_index(dev) {
                        None => prop_assert_eq!(r, Err(IommuError::NotCovered)),
                        Some(u) => {
                            prop_assert_eq!(r, Ok(()));
                            model.owner.insert(dev, dom);
                            model.tables.insert((u, dom));
                            if u == 0 {
                                model.vtd_buses.insert(dev.bus);
                            }
                        }
                    }
                }
                Op::Release(f) => {
                    let dev = funcs[f];
                    let r = m.set.detach(dev);
                    if m.set.covers(dev) {
                        prop_assert_eq!(r, Ok(true));
                    } else {
                        prop_assert_eq!(r, Err(IommuError::NotCovered));
                    }
                    model.owner.remove(&dev);
                }
                Op::Destroy(dom) => {
                    let devs: Vec<Sbdf> = model
                        .owner
                        .iter()
                        .filter(|&(_, &d)| d == dom)
                        .map(|(&s, _)| s)
                        .collect();
                    for dev in devs {
                        prop_assert_eq!(m.set.detach(dev), Ok(true));
                        model.owner.remove(&dev);
                    }
                    m.set.remove_domain(dom);
                    model.tables.retain(|&(_, d)| d != dom);
                    for u in 0..2 {
                        prop_assert!(!m.set.has_tables(u, dom));
                    }
                }
            }
            check(&mut m, &model, &rams, baseline);
        }
        // Every domain is gone: only the units' own frames and VT-d's
        // context tables are left.
        prop_assert_eq!(m.mem.live(), baseline + model.vtd_buses.len());
    }
}

#[test]
fn a_page_unmapped_from_a_domain_faults_on_every_unit_and_a_page_mapped_back_lands_there() {
    let mut m = machine();
    let r = ram(&[(0, 0x4000_0000, MIB2)]);
    let (vtd_dev, amd_dev, other) = (sbdf(0, 0, 3, 0), sbdf(0, 0, 5, 0), sbdf(0, 0, 4, 0));
    m.set.attach(1, &r, vtd_dev).unwrap();
    m.set.attach(1, &r, amd_dev).unwrap();
    m.set.attach(2, &r, other).unwrap();
    m.set.remap_page(1, 0x5000, None).unwrap();
    for dev in [vtd_dev, amd_dev] {
        assert_eq!(m.dma(dev, 0x5000), None);
        assert_eq!(m.dma(dev, 0x6000), Some((0x4000_6000, 1)));
        assert_eq!(m.dma(dev, 0x4000), Some((0x4000_4000, 1)));
    }
    // Another domain's tables are not touched.
    assert_eq!(m.dma(other, 0x5000), Some((0x4000_5000, 2)));
    m.set.remap_page(1, 0x5000, Some(0x7777_7000)).unwrap();
    for dev in [vtd_dev, amd_dev] {
        assert_eq!(m.dma(dev, 0x5123), Some((0x7777_7123, 1)));
    }
    // A domain without tables has nothing to change.
    m.set.remap_page(9, 0x5000, None).unwrap();
}

mod alias;
#[test]
fn entries_in_use_count_tables_and_routes_and_go_back_to_zero() {
    let mut m = machine();
    let r = ram(&[(0, 0x4000_0000, MIB2)]);
    let (a, b) = (sbdf(0, 0, 5, 0), sbdf(0, 0, 6, 0));
    assert_eq!(m.set.entries_in_use(), 0);
    m.set.attach(1, &r, a).unwrap();
    m.set.attach(1, &r, b).unwrap();
    // One domain's tables on the AMD-Vi unit.
    assert_eq!(m.set.entries_in_use(), 1);
    let x = m.set.route_msi(a, 0x40, 0).unwrap().unwrap();
    let y = m.set.route_msi(b, 0x41, 0).unwrap().unwrap();
    assert_eq!(m.set.entries_in_use(), 3);
    m.set.unroute_msi(a, x.handle);
    assert_eq!(m.set.entries_in_use(), 2);
    m.set.unroute_msi(b, y.handle);
    assert_eq!(m.set.detach(a), Ok(true));
    assert_eq!(m.set.detach(b), Ok(true));
    m.set.remove_domain(1);
    assert_eq!(m.set.entries_in_use(), 0);
}
