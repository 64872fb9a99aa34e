//! Who owns each hidden function. A function has exactly one owner.

use core::fmt;
use vmm_glue::compact::VecMap;

use vmm_glue::Sbdf;

use crate::hide::HideMatch;
use crate::quiesce::QuiesceReport;

/// The owner of a hidden function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// Hidden and parked by pciback, quiesced, assignable to a domain.
    Pciback,
    /// Assigned to this guest domain.
    Domain(u16),
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pciback => f.write_str("pciback"),
            Self::Domain(d) => write!(f, "dom{d}"),
        }
    }
}

/// What pciback knows about one hidden function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Who owns it now.
    pub owner: Owner,
    /// The `pciback.hide=` entry that hid it.
    pub matched: HideMatch,
    /// What quiescing it left in its registers.
    pub quiesce: QuiesceReport,
}

/// A function was hidden a second time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlreadyHidden {
    /// The function.
    pub sbdf: Sbdf,
    /// Its owner, unchanged.
    pub owner: Owner,
}

impl fmt::Display for AlreadyHidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pciback: {} is already hidden (owner: {}); the second hide is ignored",
            self.sbdf, self.owner
        )
    }
}

/// Why a function cannot be assigned to a domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignError {
    /// `pciback.hide=` did not hide it (or it does not exist).
    NotHidden,
    /// Another domain owns it.
    Owned(u16),
}

impl fmt::Display for AssignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotHidden => f.write_str(
                "it is not hidden: add it to pciback.hide= on the hypervisor command line, or hide it with the shell's 'pci-assignable-add'",
            ),
            Self::Owned(d) => write!(f, "it is already assigned to dom{d}"),
        }
    }
}

/// The hidden functions and their owners, ordered by address.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    devices: VecMap<Sbdf, DeviceRecord>,
}

impl Registry {
    /// An empty registry.
    pub const fn new() -> Self {
        Self {
            devices: VecMap::new(),
        }
    }

    /// Records `sbdf` as hidden and owned by pciback. A function already in
    /// the registry keeps its record.
    pub fn hide(
        &mut self,
        sbdf: Sbdf,
        matched: HideMatch,
        quiesce: QuiesceReport,
    ) -> Result<(), AlreadyHidden> {
        if let Some(existing) = self.devices.get(&sbdf) {
            return Err(AlreadyHidden {
                sbdf,
                owner: existing.owner,
            });
        }
        let record = DeviceRecord {
            owner: Owner::Pciback,
            matched,
            quiesce,
        };
        self.devices.insert(sbdf, record);
        Ok(())
    }

    /// Gives hidden function `sbdf` to domain `dom`.
    pub fn assign(&mut self, sbdf: Sbdf, dom: u16) -> Result<(), AssignError> {
        let rec = self.devices.get_mut(&sbdf).ok_or(AssignError::NotHidden)?;
        match rec.owner {
            Owner::Pciback => {
                rec.owner = Owner::Domain(dom);
                Ok(())
            }
            Owner::Domain(d) => Err(AssignError::Owned(d)),
        }
    }

    /// Takes `sbdf` back from domain `dom` into the hidden pool; `false`
    /// if `dom` did not own it.
    pub fn release(&mut self, sbdf: Sbdf, dom: u16) -> bool {
        match self.devices.get_mut(&sbdf) {
            Some(rec) if rec.owner == Owner::Domain(dom) => {
                rec.owner = Owner::Pciback;
                true
            }
            _ => false,
        }
    }

    /// Gives hidden function `sbdf` back to the host: it leaves the
    /// registry. Only a function in the pool can leave it; one a domain
    /// owns stays.
    pub fn unhide(&mut self, sbdf: Sbdf) -> Result<DeviceRecord, AssignError> {
        match self.devices.get(&sbdf).map(|r| r.owner) {
            None => Err(AssignError::NotHidden),
            Some(Owner::Domain(d)) => Err(AssignError::Owned(d)),
            Some(Owner::Pciback) => self.devices.remove(&sbdf).ok_or(AssignError::NotHidden),
        }
    }

    /// The owner of `sbdf`, or `None` if it is not hidden.
    pub fn owner(&self, sbdf: Sbdf) -> Option<&Owner> {
        self.devices.get(&sbdf).map(|r| &r.owner)
    }

    /// Everything known about `sbdf`, or `None` if it is not hidden.
    pub fn record(&self, sbdf: Sbdf) -> Option<&DeviceRecord> {
        self.devices.get(&sbdf)
    }

    /// The hidden functions in address order.
    pub fn iter(&self) -> impl Iterator<Item = (&Sbdf, &DeviceRecord)> {
        self.devices.iter()
    }

    /// How many functions are hidden.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Whether no function is hidden.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sbdf(bus: u8, dev: u8, func: u8) -> Sbdf {
        Sbdf::new(0, bus, dev, func).unwrap()
    }

    fn quiet_report() -> QuiesceReport {
        QuiesceReport {
            command_before: 0x0007,
            command_after: 0x0400,
            msi_control_before: None,
            msi_control_after: None,
            msix_control_before: None,
            msix_control_after: None,
        }
    }

    #[test]
    fn hidden_function_is_owned_by_pciback_and_others_have_no_owner() {
        let mut r = Registry::new();
        r.hide(sbdf(0, 3, 0), HideMatch::Direct(0), quiet_report())
            .unwrap();
        assert_eq!(r.owner(sbdf(0, 3, 0)), Some(&Owner::Pciback));
        assert_eq!(r.owner(sbdf(0, 3, 1)), None);
        assert_eq!(r.len(), 1);
        assert!(!r.is_empty());
        assert_eq!(
            r.record(sbdf(0, 3, 0)).map(|d| d.matched),
            Some(HideMatch::Direct(0))
        );
    }

    #[test]
    fn hiding_twice_is_an_error_and_keeps_the_first_record() {
        let mut r = Registry::new();
        r.hide(sbdf(0, 3, 0), HideMatch::Direct(0), quiet_report())
            .unwrap();
        let bridge = sbdf(0, 1, 0);
        let second = HideMatch::ViaBridge { bridge, pattern: 1 };
        let err = r.hide(sbdf(0, 3, 0), second, quiet_report()).unwrap_err();
        assert_eq!(
            err,
            AlreadyHidden {
                sbdf: sbdf(0, 3, 0),
                owner: Owner::Pciback
            }
        );
        assert_eq!(
            alloc::format!("{err}"),
            "pciback: 0000:00:03.0 is already hidden (owner: pciback); the second hide is ignored"
        );
        assert_eq!(r.len(), 1);
        assert_eq!(
            r.record(sbdf(0, 3, 0)).map(|d| d.matched),
            Some(HideMatch::Direct(0))
        );
    }

    #[test]
    fn one_owner_at_a_time_and_release_returns_it_to_the_pool() {
        let mut r = Registry::new();
        let edu = sbdf(0, 3, 0);
        r.hide(edu, HideMatch::Direct(0), quiet_report()).unwrap();
        assert_eq!(r.assign(sbdf(0, 4, 0), 1), Err(AssignError::NotHidden));
        assert_eq!(r.assign(edu, 1), Ok(()));
        assert_eq!(r.owner(edu), Some(&Owner::Domain(1)));
        assert_eq!(r.assign(edu, 2), Err(AssignError::Owned(1)));
        assert_eq!(
            alloc::format!("{}", AssignError::Owned(1)),
            "it is already assigned to dom1"
        );
        assert!(!r.release(edu, 2), "only the owner releases");
        assert!(r.release(edu, 1));
        assert_eq!(r.owner(edu), Some(&Owner::Pciback));
        assert!(!r.release(edu, 1));
        assert_eq!(r.assign(edu, 2), Ok(()));
    }

    #[test]
    fn only_a_function_in_the_pool_is_unhidden() {
        let mut r = Registry::new();
        let edu = sbdf(0, 3, 0);
        assert_eq!(r.unhide(edu), Err(AssignError::NotHidden));
        r.hide(edu, HideMatch::Direct(0), quiet_report()).unwrap();
        r.assign(edu, 1).unwrap();
        assert_eq!(r.unhide(edu), Err(AssignError::Owned(1)));
        assert_eq!(r.owner(edu), Some(&Owner::Domain(1)));
        r.release(edu, 1);
        assert_eq!(r.unhide(edu).map(|d| d.matched), Ok(HideMatch::Direct(0)));
        assert_eq!(r.owner(edu), None);
        assert!(r.is_empty());
    }

    #[test]
    fn iteration_is_in_address_order() {
        let mut r = Registry::new();
        for s in [sbdf(2, 0, 0), sbdf(0, 4, 1), sbdf(0, 4, 0)] {
            r.hide(s, HideMatch::Direct(0), quiet_report()).unwrap();
        }
        let order: alloc::vec::Vec<Sbdf> = r.iter().map(|(s, _)| *s).collect();
        assert_eq!(order, [sbdf(0, 4, 0), sbdf(0, 4, 1), sbdf(2, 0, 0)]);
    }
}
