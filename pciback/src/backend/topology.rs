//! Where each exported function appears in the guest, and which root buses
//! the frontend scans.
//!
//! - [`Topology::Virtual`]: one virtual root, `0000:00`. Functions get slots
//!   in the order of the configuration's device list; the functions of one
//!   physical device share a slot and keep their function numbers (the
//!   first function seen claims the slot). At most 32 slots.
//! - [`Topology::Passthrough`]: the guest sees host addresses; every
//!   distinct host bus of an exported function is a root, in order of first
//!   appearance.
//!
//! Bridges (any header type but 0) are refused in both: a bridge hands the
//! guest the bus numbers of everything behind it, and exporting one safely
//! would mean exporting that whole subtree together.

use alloc::vec::Vec;

use vmm_glue::Sbdf;

use super::BackendError;

/// How the guest sees the exported functions' addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topology {
    /// One virtual root `0000:00`; the functions of one physical device are
    /// kept together in one slot with their function numbers (Linux
    /// pciback's default, "vpci").
    Virtual,
    /// Host addresses; one root per distinct host bus (Linux pciback's
    /// `passthrough=1`).
    Passthrough,
}

/// The most slots on the virtual root bus.
pub const MAX_SLOTS: usize = 32;

/// The guest-visible layout of a device list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The guest address of each device, in the order given.
    pub guest: Vec<Sbdf>,
    /// The root buses (segment, bus), in publishing order.
    pub roots: Vec<(u16, u8)>,
}

impl Layout {
    /// The index of the device the guest addresses as `sbdf`, if its bus is
    /// a root and a device is there.
    pub fn find(&self, sbdf: Sbdf) -> Option<usize> {
        if !self.roots.contains(&(sbdf.seg, sbdf.bus)) {
            return None;
        }
        self.guest.iter().position(|g| *g == sbdf)
    }
}

/// One function to place: its host address and header type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The host address.
    pub host: Sbdf,
    /// The header type (bit 7, multi-function, is ignored).
    pub header_type: u8,
}

/// Lays out `devices` (host addresses and header types) for `topology`.
pub fn layout(topology: Topology, devices: &[Placement]) -> Result<Layout, BackendError> {
    for (i, d) in devices.iter().enumerate() {
        if d.header_type & 0x7f != 0 {
            return Err(BackendError::NotEndpoint {
                sbdf: d.host,
                header_type: d.header_type,
            });
        }
        if devices[..i].iter().any(|e| e.host == d.host) {
            return Err(BackendError::Duplicate(d.host));
        }
    }
    match topology {
        Topology::Virtual => virtual_layout(devices),
        Topology::Passthrough => {
            let mut roots = Vec::new();
            for d in devices {
                let root = (d.host.seg, d.host.bus);
                if !roots.contains(&root) {
                    roots.push(root);
                }
            }
            Ok(Layout {
                guest: devices.iter().map(|d| d.host).collect(),
                roots,
            })
        }
    }
}

fn virtual_layout(devices: &[Placement]) -> Result<Layout, BackendError> {
    // The physical device (function 0 of its address) holding each slot.
    let mut slots: Vec<Sbdf> = Vec::new();
    let mut guest = Vec::with_capacity(devices.len());
    for d in devices {
        let physical = d.host.with_func(0);
        // Functions of one device cannot collide: duplicates were refused.
        let slot = match slots.iter().position(|s| *s == physical) {
            Some(s) => s,
            None if slots.len() < MAX_SLOTS => {
                slots.push(physical);
                slots.len() - 1
            }
            None => return Err(BackendError::TooManySlots(d.host)),
        };
        // `slot` < 32 and `func` < 8, so this always succeeds.
        let g =
            Sbdf::new(0, 0, slot as u8, d.host.func).ok_or(BackendError::TooManySlots(d.host))?;
        guest.push(g);
    }
    Ok(Layout {
        guest,
        roots: alloc::vec![(0, 0)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(bus: u8, dev: u8, func: u8) -> Placement {
        Placement {
            host: Sbdf::new(0, bus, dev, func).unwrap(),
            header_type: 0,
        }
    }

    fn sbdf(seg: u16, bus: u8, dev: u8, func: u8) -> Sbdf {
        Sbdf::new(seg, bus, dev, func).unwrap()
    }

    #[test]
    fn virtual_gives_slots_in_list_order_on_root_0000_00() {
        let l = layout(Topology::Virtual, &[at(0, 2, 0), at(3, 0, 0)]).unwrap();
        assert_eq!(l.guest, [sbdf(0, 0, 0, 0), sbdf(0, 0, 1, 0)]);
        assert_eq!(l.roots, [(0, 0)]);
    }

    #[test]
    fn virtual_keeps_functions_of_one_device_together_with_their_numbers() {
        let l = layout(
            Topology::Virtual,
            &[at(3, 0, 1), at(0, 2, 0), at(3, 0, 0), at(3, 0, 5)],
        )
        .unwrap();
        assert_eq!(
            l.guest,
            [
                sbdf(0, 0, 0, 1),
                sbdf(0, 0, 1, 0),
                sbdf(0, 0, 0, 0),
                sbdf(0, 0, 0, 5)
            ]
        );
    }

    #[test]
    fn virtual_with_no_devices_still_publishes_its_root() {
        let l = layout(Topology::Virtual, &[]).unwrap();
        assert!(l.guest.is_empty());
        assert_eq!(l.roots, [(0, 0)]);
    }

    #[test]
    fn virtual_refuses_a_33rd_slot() {
        let mut devs: Vec<Placement> = (0..32).map(|d| at(1, d, 0)).collect();
        assert!(layout(Topology::Virtual, &devs).is_ok());
        devs.push(at(2, 0, 0));
        assert_eq!(
            layout(Topology::Virtual, &devs),
            Err(BackendError::TooManySlots(sbdf(0, 2, 0, 0)))
        );
        // Another function of a device already placed still fits.
        devs.pop();
        devs.push(at(1, 31, 7));
        assert!(layout(Topology::Virtual, &devs).is_ok());
    }

    #[test]
    fn bridges_and_duplicates_are_refused_in_both_topologies() {
        let bridge = Placement {
            host: sbdf(0, 0, 1, 0),
            header_type: 0x81,
        };
        for t in [Topology::Virtual, Topology::Passthrough] {
            assert_eq!(
                layout(t, &[at(0, 2, 0), bridge]),
                Err(BackendError::NotEndpoint {
                    sbdf: bridge.host,
                    header_type: 0x81
                })
            );
            assert_eq!(
                layout(t, &[at(0, 2, 0), at(0, 2, 0)]),
                Err(BackendError::Duplicate(sbdf(0, 0, 2, 0)))
            );
        }
        // The multi-function bit alone is an endpoint.
        let mf = Placement {
            host: sbdf(0, 0, 1, 0),
            header_type: 0x80,
        };
        assert!(layout(Topology::Virtual, &[mf]).is_ok());
    }

    #[test]
    fn passthrough_uses_host_addresses_and_one_root_per_bus() {
        let devs = [
            at(3, 0, 0),
            Placement {
                host: sbdf(1, 3, 0, 0),
                header_type: 0,
            },
            at(0, 2, 0),
            at(3, 1, 0),
        ];
        let l = layout(Topology::Passthrough, &devs).unwrap();
        assert_eq!(l.guest, devs.map(|d| d.host));
        assert_eq!(l.roots, [(0, 3), (1, 3), (0, 0)]);
    }

    #[test]
    fn find_needs_a_root_bus_and_a_device() {
        let l = layout(Topology::Passthrough, &[at(3, 0, 0)]).unwrap();
        assert_eq!(l.find(sbdf(0, 3, 0, 0)), Some(0));
        assert_eq!(l.find(sbdf(0, 3, 0, 1)), None);
        assert_eq!(l.find(sbdf(1, 3, 0, 0)), None);
        assert_eq!(l.find(sbdf(0, 0, 0, 0)), None);
    }
}
