//! Which host interrupt vector belongs to which guest pirq.
//!
//! A passed-through function's MSI or MSI-X message names a vector the
//! hypervisor owns; the vector's handler only records it, and the exit path
//! turns it into the owning guest's pirq (an event on the port the guest
//! bound with `EVTCHNOP_bind_pirq`). Vectors come from one pool for the
//! whole machine; pirqs are per guest, above the 24 that INTx (GSI) pirqs
//! use.

use crate::evtchn::DomId;
use vmm_glue::Sbdf;

/// The first vector handed to devices (below are exceptions and the
/// legacy range).
pub const FIRST_VECTOR: u8 = 0x30;
/// The last vector handed to devices (above are the host timer and the
/// spurious vector).
pub const LAST_VECTOR: u8 = 0xdf;
/// The first pirq handed out for MSI/MSI-X (below are the GSIs).
pub const FIRST_MSI_PIRQ: u32 = 32;

/// The root-bus INTx pin (0..=3, INTA..INTD) that pin `pin` of a
/// function arrives on, given the device numbers of the function and of
/// each bridge above it, nearest first, up to (not including) the root
/// bus: each PCI-to-PCI bridge rotates the pin by the device number below
/// it (the PCI-to-PCI Bridge Architecture's standard swizzle).
pub fn swizzle(pin: u8, devices_below_each_bridge: &[u8]) -> u8 {
    devices_below_each_bridge
        .iter()
        .fold(pin % 4, |p, &dev| (p + dev % 4) % 4)
}

/// Which routing table entry serves a function's pin, in the order Linux
/// looks (drivers/acpi/pci_irq.c, `acpi_pci_irq_lookup`): the table of the
/// bus the function sits on, by its device number and pin; failing that,
/// the pin swizzled through the bridge above, in the table of the bridge's
/// own bus by the bridge's device number; and so on up to the root bus.
/// `devices[i]` is the device number of the function (`i = 0`) or of
/// the `i`-th bridge above it; `entry(i, device, pin)` is the entry of the
/// table of the bus `devices[i]` sits on, `None` when that bus has no
/// table or the table has no such entry. Gives the level the entry was
/// found at, with the entry.
pub fn lookup<T>(
    devices: &[u8],
    pin: u8,
    mut entry: impl FnMut(usize, u8, u8) -> Option<T>,
) -> Option<(usize, T)> {
    let mut pin = pin % 4;
    for (i, &dev) in devices.iter().enumerate() {
        if let Some(e) = entry(i, dev, pin) {
            return Some((i, e));
        }
        pin = swizzle(pin, &[dev]);
    }
    None
}

/// One routed interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// The guest that owns the function.
    pub dom: DomId,
    /// The guest's pirq.
    pub pirq: u32,
    /// The function that sends it.
    pub sbdf: Sbdf,
    /// Its interrupt-remapping entry, when an IOMMU remaps it.
    pub handle: Option<u16>,
}

/// The vector table.
#[derive(Debug)]
pub struct IrqRoutes {
    by_vector: [Option<Route>; 256],
    /// Where the next pirq search starts (pirqs are not reused at once, so
    /// a guest that did not close an old binding does not get its events).
    next_pirq: u32,
    nr_pirqs: u32,
}

impl IrqRoutes {
    /// An empty table for guests with `nr_pirqs` pirqs each.
    pub const fn new(nr_pirqs: u32) -> Self {
        Self {
            by_vector: [None; 256],
            next_pirq: FIRST_MSI_PIRQ,
            nr_pirqs,
        }
    }

    fn pirq_used(&self, dom: DomId, pirq: u32) -> bool {
        self.by_vector
            .iter()
            .flatten()
            .any(|r| r.dom == dom && r.pirq == pirq)
    }

    /// A free vector and a free pirq of `dom` for an interrupt of `sbdf`;
    /// `None` when either runs out.
    pub fn alloc(&mut self, dom: DomId, sbdf: Sbdf) -> Option<(u8, u32)> {
        let vector =
            (FIRST_VECTOR..=LAST_VECTOR).find(|&v| self.by_vector[v as usize].is_none())?;
        let span = self.nr_pirqs.checked_sub(FIRST_MSI_PIRQ)?;
        let pirq = (0..span)
            .map(|k| FIRST_MSI_PIRQ + (self.next_pirq - FIRST_MSI_PIRQ + k) % span)
            .find(|&p| !self.pirq_used(dom, p))?;
        self.next_pirq = FIRST_MSI_PIRQ + (pirq + 1 - FIRST_MSI_PIRQ) % span;
        self.by_vector[vector as usize] = Some(Route {
            dom,
            pirq,
            sbdf,
            handle: None,
        });
        Some((vector, pirq))
    }

    /// A free vector for `dom`'s fixed `pirq` (an INTx line: pirq = GSI);
    /// `None` when vectors run out or `dom` uses that pirq already.
    pub fn alloc_fixed(&mut self, dom: DomId, sbdf: Sbdf, pirq: u32) -> Option<u8> {
        if self.pirq_used(dom, pirq) {
            return None;
        }
        let vector =
            (FIRST_VECTOR..=LAST_VECTOR).find(|&v| self.by_vector[v as usize].is_none())?;
        self.by_vector[vector as usize] = Some(Route {
            dom,
            pirq,
            sbdf,
            handle: None,
        });
        Some(vector)
    }

    /// Records the interrupt-remapping entry of `vector`'s route.
    pub fn set_handle(&mut self, vector: u8, handle: u16) {
        if let Some(r) = self.by_vector[vector as usize].as_mut() {
            r.handle = Some(handle);
        }
    }

    /// Frees `dom`'s `pirq`; returns its vector and route.
    pub fn free(&mut self, dom: DomId, pirq: u32) -> Option<(u8, Route)> {
        let v = self
            .by_vector
            .iter()
            .position(|r| matches!(r, Some(r) if r.dom == dom && r.pirq == pirq))?;
        let r = self.by_vector[v].take()?;
        Some((v as u8, r))
    }

    /// Where `vector` goes.
    pub fn route(&self, vector: u8) -> Option<Route> {
        self.by_vector[vector as usize]
    }

    /// Frees every route of `dom`; returns them.
    pub fn remove_domain(&mut self, dom: DomId) -> alloc::vec::Vec<Route> {
        let mut out = alloc::vec::Vec::new();
        for r in self.by_vector.iter_mut() {
            if matches!(r, Some(x) if x.dom == dom) {
                out.extend(r.take());
            }
        }
        out
    }

    /// Frees every route of `dom` for function `sbdf`; returns them.
    pub fn remove_function(&mut self, dom: DomId, sbdf: Sbdf) -> alloc::vec::Vec<Route> {
        let mut out = alloc::vec::Vec::new();
        for r in self.by_vector.iter_mut() {
            if matches!(r, Some(x) if x.dom == dom && x.sbdf == sbdf) {
                out.extend(r.take());
            }
        }
        out
    }

    /// How many vectors are in use.
    pub fn len(&self) -> usize {
        self.by_vector.iter().flatten().count()
    }

    /// Whether no vector is in use.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edu() -> Sbdf {
        Sbdf::new(0, 0, 3, 0).unwrap()
    }

    #[test]
    fn vectors_and_pirqs_are_distinct_and_route_back() {
        let mut t = IrqRoutes::new(256);
        let (v1, p1) = t.alloc(1, edu()).unwrap();
        let (v2, p2) = t.alloc(1, edu()).unwrap();
        let (v3, p3) = t.alloc(2, edu()).unwrap();
        assert_eq!((v1, p1), (FIRST_VECTOR, FIRST_MSI_PIRQ));
        assert_ne!(v1, v2);
        assert_ne!(p1, p2);
        assert_ne!(v3, v2);
        assert!(p3 >= FIRST_MSI_PIRQ);
        assert_eq!(
            t.route(v2),
            Some(Route {
                dom: 1,
                pirq: p2,
                sbdf: edu(),
                handle: None
            })
        );
        t.set_handle(v2, 7);
        assert_eq!(t.route(v2).and_then(|r| r.handle), Some(7));
        assert_eq!(t.route(0xef), None);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn a_freed_pirq_is_not_handed_out_again_at_once() {
        let mut t = IrqRoutes::new(256);
        let (v, p) = t.alloc(1, edu()).unwrap();
        assert_eq!(t.free(1, p).map(|(v, r)| (v, r.pirq)), Some((v, p)));
        assert_eq!(t.free(1, p), None);
        let (v2, p2) = t.alloc(1, edu()).unwrap();
        assert_eq!(v2, v, "vectors are reused");
        assert_ne!(p2, p, "pirqs move on");
    }

    #[test]
    fn bridges_rotate_the_pin_by_the_device_number_below_them() {
        // On the root bus: as is.
        assert_eq!(swizzle(0, &[]), 0);
        assert_eq!(swizzle(3, &[]), 3);
        // Device 0 below a root port: INTA stays INTA at the port.
        assert_eq!(swizzle(0, &[0]), 0);
        // Device 1 INTB below one bridge: (1 + 1) % 4 = INTC.
        assert_eq!(swizzle(1, &[1]), 2);
        // Two bridges: device 3 INTD, then the bridge itself is device 2.
        assert_eq!(swizzle(3, &[3, 2]), 0);
    }

    #[test]
    fn a_bridge_with_its_own_table_is_used_before_the_swizzle() {
        // A card at 00 pin INTB behind a bridge at 1c (root bus).
        let root = |d: u8, p: u8| (d == 0x1c).then_some(0x1c * 4 + u32::from(p));
        // No table below the bridge: swizzled, INTB + device 0 = INTB.
        let got = lookup(
            &[0, 0x1c],
            1,
            |i, d, p| if i == 1 { root(d, p) } else { None },
        );
        assert_eq!(got, Some((1, 0x1c * 4 + 1)));
        // The bridge's table says otherwise: it wins.
        let got = lookup(&[0, 0x1c], 1, |i, d, p| match i {
            0 => (d == 0 && p == 1).then_some(42),
            _ => root(d, p),
        });
        assert_eq!(got, Some((0, 42)));
        // A table below that lacks the entry: on to the swizzle, as Linux.
        let got = lookup(&[2, 0x1c], 3, |i, d, p| match i {
            0 => (d == 0).then_some(42),
            _ => root(d, p),
        });
        assert_eq!(got, Some((1, 0x1c * 4 + 1)));
        assert_eq!(lookup(&[2, 5], 0, |_, _, _| None::<u32>), None);
    }

    #[test]
    fn a_fixed_pirq_gets_a_vector_once_per_domain() {
        let mut t = IrqRoutes::new(256);
        let v = t.alloc_fixed(1, edu(), 23).unwrap();
        assert_eq!(t.route(v).map(|r| (r.dom, r.pirq)), Some((1, 23)));
        assert_eq!(t.alloc_fixed(1, edu(), 23), None);
        assert!(t.alloc_fixed(2, edu(), 23).is_some());
        let (_, p) = t.alloc(1, edu()).unwrap();
        assert_ne!(p, 23);
    }

    #[test]
    fn another_domain_cannot_free_a_route() {
        let mut t = IrqRoutes::new(256);
        let (_, p) = t.alloc(1, edu()).unwrap();
        assert_eq!(t.free(2, p), None);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn vectors_run_out_and_removing_a_domain_frees_its_own() {
        let mut t = IrqRoutes::new(4096);
        let n = usize::from(LAST_VECTOR - FIRST_VECTOR) + 1;
        for i in 0..n {
            assert!(t.alloc(1 + (i % 2) as u16, edu()).is_some());
        }
        assert_eq!(t.alloc(1, edu()), None);
        assert_eq!(t.remove_domain(1).len(), n.div_ceil(2));
        assert_eq!(t.len(), n / 2);
        assert!(t.alloc(3, edu()).is_some());
    }

    #[test]
    fn pirqs_run_out_per_domain() {
        let mut t = IrqRoutes::new(FIRST_MSI_PIRQ + 2);
        assert!(t.alloc(1, edu()).is_some());
        assert!(t.alloc(1, edu()).is_some());
        assert_eq!(t.alloc(1, edu()), None);
        assert!(t.alloc(2, edu()).is_some());
    }
}
