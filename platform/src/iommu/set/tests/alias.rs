//! IVRS alias entries: a function whose requests carry another requester
//! ID is attached, quarantined and detached through both device table
//! entries, its interrupts are remapped through the alias's table, and
//! functions sharing an alias never end up in two domains.

use alloc::rc::Rc;
use alloc::string::ToString;
use alloc::vec::Vec;
use core::cell::RefCell;

use vmm_glue::{DmaRemapping, InterruptRemapping, IommuError, Sbdf};

use super::{ram, sbdf, Mem, Regs, MIB2};
use crate::acpi::testutil::{table, Put};
use crate::acpi::{Ivrs, IVHD_WITH_EFR};
use crate::iommu::amdvi::{
    self, AmdVi, DeviceEntry, DteWord0, DteWord1, DteWord2, DTE_SIZE, MSI_ADDRESS,
};
use crate::iommu::{Iommu, IommuSet, Scope, TableMemory, QUARANTINE_DOMAIN};

/// 01:00.0, behind the PCIe-to-PCI bridge 00:1e.0 (alias select, 0x42).
fn lone() -> Sbdf {
    sbdf(0, 1, 0, 0)
}
/// 00:1e.0, the ID [`lone`]'s requests carry.
fn lone_alias() -> Sbdf {
    sbdf(0, 0, 0x1e, 0)
}
/// 02:00.0 and 02:01.0, behind the bridge 00:1c.0 (alias range, 0x43
/// to 0x04).
fn pair() -> [Sbdf; 2] {
    [sbdf(0, 2, 0, 0), sbdf(0, 2, 1, 0)]
}
fn pair_alias() -> Sbdf {
    sbdf(0, 0, 0x1c, 0)
}

/// An IVRS with one type 0x11 IVHD: bus 0 as a plain range, 01:00.0
/// aliased to 00:1e.0 by an alias select, bus 2 aliased to 00:1c.0 by an
/// alias range, and I/O APIC 0 at 00:14.0.
fn fixture() -> Vec<u8> {
    let mut e = Vec::new();
    e.u8(3).u16(0x0000).u8(0).u8(4).u16(0x00ff).u8(0);
    e.u8(0x42).u16(0x0100).u8(0).u8(0).u16(0x00f0).u8(0);
    e.u8(0x43).u16(0x0200).u8(0).u8(0).u16(0x00e0).u8(0);
    e.u8(4).u16(0x02ff).u8(0);
    e.u8(0x48).u16(0).u8(0xd7).u8(0).u16(0x00a0).u8(1);
    let mut b = Vec::new();
    b.u8(IVHD_WITH_EFR).u8(0).u16(40 + e.len() as u16);
    b.u16(0x0008).u16(0x40).u64(0xfed8_0000).u16(0).u16(0);
    b.u32(0).u64(0x0000_0000_0022_4295).u64(0).raw(&e);
    let mut body = Vec::new();
    body.u32(1).u64(0).raw(&b);
    table(b"IVRS", 2, &body)
}

/// The machine's functions: a plain endpoint, the two bridges, the
/// functions behind them.
fn functions() -> Vec<Sbdf> {
    let [a, b] = pair();
    alloc::vec![sbdf(0, 0, 3, 0), pair_alias(), lone_alias(), lone(), a, b]
}

fn scope() -> Scope {
    let ivrs = Ivrs::parse(&fixture()).unwrap();
    Scope::from_ivhd(ivrs.units()[0], &functions())
}

struct Machine {
    set: IommuSet<Regs, Mem>,
    mem: Mem,
    regs: Regs,
}

/// The fixture's unit (buses 0 to 2), on and empty, with `reserved`
/// memory.
fn machine(reserved: Vec<(Sbdf, u64, u64)>) -> Machine {
    let mut mem = Mem::new();
    let regs = Regs::AmdVi(Rc::new(RefCell::new(amdvi::fake::FakeRegs::new(
        amdvi::fake::EFR_QEMU,
        &mem,
    ))));
    let amd = AmdVi::init(regs.clone(), &mut mem, 0, 2).unwrap();
    let mut set = IommuSet::new(mem.clone());
    let scope = Scope {
        reserved,
        ..scope()
    };
    set.add(Iommu::AmdVi(amd), 0xfed8_0000, scope);
    Machine { set, mem, regs }
}

/// A device table entry as the unit reads it.
struct Dte {
    domain: u16,
    dma: bool,
    root: u64,
    /// The interrupt remapping table, if interrupts are remapped.
    irqs: Option<u64>,
}

impl Machine {
    fn dte(&mut self, dev: Sbdf) -> Dte {
        let (table, _) = match self.set.units()[0].iommu() {
            Iommu::AmdVi(amd) => amd.device_table(),
            Iommu::Vtd { .. } => unreachable!(),
        };
        let at = table + u64::from(dev.rid()) * DTE_SIZE;
        let w: [u64; 4] = core::array::from_fn(|i| self.mem.read64(at + 8 * i as u64));
        let w2 = DteWord2(w[2]);
        Dte {
            domain: DteWord1(w[1]).domain_id(),
            dma: DeviceEntry(w).allows_dma(),
            root: DteWord0(w[0]).root_frame() << 12,
            irqs: (w2.iv() && w2.int_ctl() == 0b10).then(|| w2.int_root_units() << 6),
        }
    }

    /// Where a DMA write carrying `rid` to `iova` lands, as the unit walks
    /// it.
    fn dma(&mut self, rid: Sbdf, iova: u64) -> Option<u64> {
        self.regs.amd().dma(rid.rid(), iova, true)
    }
}

#[test]
fn ivrs_alias_entries_give_the_map_its_aliases() {
    let s = scope();
    assert_eq!(s.functions, functions());
    let [a, b] = pair();
    assert_eq!(
        s.aliases,
        [(lone(), lone_alias()), (a, pair_alias()), (b, pair_alias())]
    );
    assert_eq!(s.ioapics, [(0, sbdf(0, 0, 0x14, 0))]);
    assert_eq!(s.requester(lone()), lone_alias());
    assert_eq!(s.requester(sbdf(0, 0, 3, 0)), sbdf(0, 0, 3, 0));
    assert!(!s.include_all);
}

#[test]
fn attaching_an_aliased_function_sets_the_alias_entry_and_routes_its_msis_there() {
    let mut m = machine(Vec::new());
    let r = ram(&[(0, 0x4000_0000, MIB2)]);
    m.set.attach(1, &r, lone()).unwrap();
    let (own, alias) = (m.dte(lone()), m.dte(lone_alias()));
    for e in [&own, &alias] {
        assert!(e.dma);
        assert_eq!(e.domain, 1);
        assert!(e.irqs.is_some());
    }
    assert_eq!((own.root, own.irqs), (alias.root, alias.irqs));
    // DMA carrying the alias reaches the domain's RAM, nothing else.
    assert_eq!(m.dma(lone_alias(), 0x1000), Some(0x4000_1000));
    assert_eq!(m.dma(lone_alias(), MIB2), None);
    // The function's MSI, carrying the alias, finds its entry through
    // the alias's device table entry.
    let msi = m.set.route_msi(lone(), 0x40, 0).unwrap().unwrap();
    assert_eq!(msi.address, MSI_ADDRESS);
    let got = m
        .regs
        .amd()
        .interrupt(lone_alias().rid(), msi.address, msi.data);
    assert_eq!(got, Some((0x40, 0)));
    m.set.unroute_msi(lone(), msi.handle);
    let got = m
        .regs
        .amd()
        .interrupt(lone_alias().rid(), msi.address, msi.data);
    assert_eq!(got, None);
    // A function without an alias is attached through its own entry only.
    let plain = sbdf(0, 0, 3, 0);
    m.set.attach(1, &r, plain).unwrap();
    assert_eq!(m.dte(plain).domain, 1);
    assert_eq!(m.dte(pair_alias()).domain, 0);
}

#[test]
fn detaching_an_aliased_function_blocks_both_entries() {
    let mut m = machine(Vec::new());
    let r = ram(&[(0, 0x4000_0000, MIB2)]);
    let live = m.mem.live();
    m.set.attach(1, &r, lone()).unwrap();
    let msi = m.set.route_msi(lone(), 0x40, 0).unwrap().unwrap();
    assert_eq!(m.dma(lone_alias(), 0x1000), Some(0x4000_1000));
    assert_eq!(m.set.detach(lone()), Ok(true));
    for dev in [lone(), lone_alias()] {
        let e = m.dte(dev);
        assert!(!e.dma && e.irqs.is_none() && e.domain == 0, "{dev}");
    }
    assert_eq!(m.dma(lone_alias(), 0x1000), None);
    let got = m
        .regs
        .amd()
        .interrupt(lone_alias().rid(), msi.address, msi.data);
    assert_eq!(got, None);
    // The interrupt table is freed; only the domain's tables remain.
    m.set.remove_domain(1);
    assert_eq!(m.mem.live(), live);
}

#[test]
fn a_quarantined_aliased_function_keeps_its_reserved_memory_through_both_entries() {
    let reserved = alloc::vec![(lone(), 0xa_0000, 0xc_0000)];
    let mut m = machine(reserved);
    let done = m.set.quarantine_reserved();
    assert_eq!(done, [(lone(), Ok(()))]);
    for dev in [lone(), lone_alias()] {
        assert_eq!(m.dte(dev).domain, QUARANTINE_DOMAIN, "{dev}");
    }
    assert_eq!(m.dma(lone_alias(), 0xa_0000), Some(0xa_0000));
    assert_eq!(m.dma(lone_alias(), 0x1000), None);
    // Given to a guest and back: the quarantine again, in both entries.
    let r = ram(&[(0x10_0000, 0x4000_0000, MIB2)]);
    m.set.attach(1, &r, lone()).unwrap();
    assert_eq!(m.dte(lone_alias()).domain, 1);
    assert_eq!(m.dma(lone_alias(), 0x10_0000), Some(0x4000_0000));
    assert_eq!(m.set.detach(lone()), Ok(true));
    for dev in [lone(), lone_alias()] {
        assert_eq!(m.dte(dev).domain, QUARANTINE_DOMAIN, "{dev}");
    }
    assert_eq!(m.dma(lone_alias(), 0x10_0000), None);
}

#[test]
fn functions_sharing_an_alias_are_refused_two_domains() {
    let mut m = machine(Vec::new());
    let (r1, r2) = (
        ram(&[(0, 0x4000_0000, MIB2)]),
        ram(&[(0, 0x8000_0000, MIB2)]),
    );
    let [a, b] = pair();
    m.set.attach(1, &r1, a).unwrap();
    let e = m.set.attach(2, &r2, b).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, IommuError::Unit(_)));
    assert!(
        text.contains("0000:02:00.0") && text.contains("0000:00:1c.0"),
        "{text}"
    );
    // Nothing changed: b blocked, the alias still dom1's.
    assert_eq!((m.dte(b).domain, m.dte(b).dma), (0, false));
    assert_eq!(m.dte(pair_alias()).domain, 1);
    assert_eq!(m.dma(pair_alias(), 0x1000), Some(0x4000_1000));
    // In the same domain they share the alias's entry and its table.
    m.set.attach(1, &r1, b).unwrap();
    let irqs = m.dte(pair_alias()).irqs;
    assert!(irqs.is_some());
    assert_eq!((m.dte(a).irqs, m.dte(b).irqs), (irqs, irqs));
    let ma = m.set.route_msi(a, 0x40, 0).unwrap().unwrap();
    let mb = m.set.route_msi(b, 0x41, 0).unwrap().unwrap();
    assert_ne!(ma.handle, mb.handle);
    let rid = pair_alias().rid();
    assert_eq!(
        m.regs.amd().interrupt(rid, mb.address, mb.data),
        Some((0x41, 0))
    );
    // The alias stays while one of them is attached.
    assert_eq!(m.set.detach(a), Ok(true));
    assert_eq!(m.dte(pair_alias()).domain, 1);
    assert_eq!(
        m.regs.amd().interrupt(rid, mb.address, mb.data),
        Some((0x41, 0))
    );
    assert_eq!(m.set.detach(b), Ok(true));
    assert_eq!(m.dte(pair_alias()).domain, 0);
    assert_eq!(m.dma(pair_alias(), 0x1000), None);
    // Then either may go to another domain.
    m.set.attach(2, &r2, b).unwrap();
    assert_eq!(m.dma(pair_alias(), 0x1000), Some(0x8000_1000));
}
