//! What a hypercall handler sees of its guest: its memory by
//! guest-physical address ([`GuestPhys`]), the calling vCPU's paging and
//! mode ([`GuestCpu`]), and on top of both the copies in and out by
//! guest-virtual address that Xen's `copy_from_guest` / `copy_to_guest`
//! do, with argument structures decoded in the guest's ABI ([`Arg`]).
//!
//! A [`GuestView`] borrows these two pieces of a domain beside whatever
//! else a handler changes (the domain's Xen state, the hub), so a handler
//! takes what it touches rather than the whole domain. The hypervisor
//! builds it over its guest memory and vCPU; host tests build it over a
//! buffer.

use crate::evtchn::Errno;
use crate::gpt;
use crate::pv::abi::va::{HYPERVISOR_VIRT_END, HYPERVISOR_VIRT_START};
use crate::xenabi::{Abi, XenArg};

/// An address that is not the guest's memory, or not mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault;

/// A domain's memory by guest-physical address.
pub trait GuestPhys {
    /// Reads `buf.len()` bytes at `gpa`; `Err` if any is not the guest's.
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), Fault>;
    /// Writes `data` at `gpa`; `Err` if any byte is not the guest's.
    fn write(&self, gpa: u64, data: &[u8]) -> Result<(), Fault>;
    /// A page-table entry of `size` (4 or 8) bytes at `gpa`.
    fn read_entry(&self, gpa: u64, size: usize) -> Option<u64>;
    /// A PV domain's memory: the hypervisor's range is not the guest's,
    /// and writes go through its page tables' permissions.
    fn pv(&self) -> bool;
}

/// The calling vCPU as address translation needs it.
pub trait GuestCpu {
    /// CR0, CR3, CR4 and EFER.
    fn paging_state(&self) -> (u64, u64, u64, u64);
    /// Whether it runs 64-bit code.
    fn long_mode(&self) -> bool;
}

/// A domain's memory as seen by its calling vCPU.
#[derive(Debug)]
pub struct GuestView<'a, M, C> {
    pub mem: &'a M,
    pub cpu: &'a C,
}

/// The largest argument structure read with [`GuestView::read_arg`]
/// (`struct gnttab_copy` of a 64-bit guest).
const ARG_MAX: usize = 40;

/// An argument structure copied from the guest: its decoded fields and
/// the bytes they came from.
#[derive(Debug)]
pub struct Arg<T> {
    /// The fields; a handler sets the OUT ones.
    pub v: T,
    abi: Abi,
    bytes: [u8; ARG_MAX],
}

impl<T: XenArg> Arg<T> {
    /// The guest's bytes with the fields of [`Arg::v`] encoded over them
    /// (padding as the guest wrote it), `T::size` of them.
    pub fn bytes(&mut self) -> &[u8] {
        let n = T::size(self.abi).min(ARG_MAX);
        let b = &mut self.bytes[..n];
        // Cannot fail: `b` is the structure's size.
        let _ = self.v.encode(b, self.abi);
        b
    }
}

impl<M: GuestPhys, C: GuestCpu> GuestView<'_, M, C> {
    /// Splits `[gva, gva + len)` into page pieces and calls `each(gpa,
    /// offset, n)` for each, translating through the guest's own page
    /// tables; stops at the first piece that fails.
    fn for_each_page(
        &self,
        gva: u64,
        len: usize,
        write: bool,
        mut each: impl FnMut(u64, usize, usize) -> Result<(), Fault>,
    ) -> Result<(), Fault> {
        let (cr0, cr3, cr4, efer) = self.cpu.paging_state();
        let pv = self.mem.pv();
        // A PV guest's addresses in the hypervisor's range are not its
        // memory (Xen's `access_ok`), whatever its tables say.
        if pv {
            let end = gva.checked_add(len as u64).ok_or(Fault)?;
            if gva < HYPERVISOR_VIRT_END && end > HYPERVISOR_VIRT_START {
                return Err(Fault);
            }
        }
        let mut done = 0;
        while done < len {
            let va = gva.wrapping_add(done as u64);
            let entry = |a, size| self.mem.read_entry(a, size);
            // A PV guest's memory is written as Xen writes it: through its
            // page tables' permissions (read-only pages stay read-only, as
            // they do for the fast-path stub at CPL 0 with CR0.WP).
            let gpa = if write && pv {
                gpt::translate_write(cr0, cr3, cr4, efer, va, entry)
            } else {
                gpt::translate(cr0, cr3, cr4, efer, va, entry)
            }
            .map_err(|_| Fault)?;
            let n = (4096 - (va & 0xfff) as usize).min(len - done);
            each(gpa, done, n)?;
            done += n;
        }
        Ok(())
    }

    /// The guest-physical address guest-virtual `gva` translates to now.
    pub fn gpa(&self, gva: u64) -> Option<u64> {
        let mut at = None;
        self.for_each_page(gva, 1, false, |gpa, _, _| {
            at = Some(gpa);
            Ok(())
        })
        .ok()?;
        at
    }

    /// Reads guest-virtual memory into `buf`.
    pub fn read_virt(&self, gva: u64, buf: &mut [u8]) -> Result<(), Fault> {
        let len = buf.len();
        self.for_each_page(gva, len, false, |gpa, off, n| {
            self.mem.read(gpa, &mut buf[off..off + n])
        })
    }

    /// Writes `data` to guest-virtual memory.
    pub fn write_virt(&self, gva: u64, data: &[u8]) -> Result<(), Fault> {
        self.for_each_page(gva, data.len(), true, |gpa, off, n| {
            self.mem.write(gpa, &data[off..off + n])
        })
    }

    /// Copies an `N`-byte argument structure from guest-virtual `gva`.
    pub fn copy_from_guest<const N: usize>(&self, gva: u64) -> Result<[u8; N], Errno> {
        let mut b = [0u8; N];
        self.read_guest(gva, &mut b)?;
        Ok(b)
    }

    /// Copies `buf.len()` bytes of an argument from guest-virtual `gva`.
    pub fn read_guest(&self, gva: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.read_virt(gva, buf).map_err(|Fault| Errno::Fault)
    }

    /// Copies `data` to guest-virtual `gva`.
    pub fn copy_to_guest(&self, gva: u64, data: &[u8]) -> Result<(), Errno> {
        self.write_virt(gva, data).map_err(|Fault| Errno::Fault)
    }

    /// The layout of the guest's argument structures: a 32-bit guest's are
    /// Xen's "compat" layouts (pointers, `xen_ulong_t` and `xen_pfn_t` are
    /// 4 bytes, and 8-byte fields are 4-byte aligned).
    pub fn abi(&self) -> Abi {
        Abi::from_long_mode(self.cpu.long_mode())
    }

    /// Copies a `T` from guest-virtual `gva`, as many bytes as it has in
    /// the guest's ABI, and decodes it.
    pub fn read_arg<T: XenArg>(&self, gva: u64) -> Result<Arg<T>, Errno> {
        let abi = self.abi();
        let mut bytes = [0u8; ARG_MAX];
        // Every structure read here fits in `ARG_MAX`.
        let b = bytes.get_mut(..T::size(abi)).ok_or(Errno::Fault)?;
        self.read_guest(gva, b)?;
        let v = T::decode(b, abi).map_err(|_| Errno::Fault)?;
        Ok(Arg { v, abi, bytes })
    }

    /// Copies `arg` back to guest-virtual `gva` with its OUT fields set.
    pub fn write_arg<T: XenArg>(&self, gva: u64, arg: &mut Arg<T>) -> Result<(), Errno> {
        self.copy_to_guest(gva, arg.bytes())
    }
}

/// A guest of a few pages in a host buffer, for tests of handlers that
/// take a [`GuestView`].
#[cfg(test)]
pub mod testing {
    use super::{Fault, GuestCpu, GuestPhys};
    use core::cell::{Cell, RefCell};

    /// `pages` pages of guest-physical memory from 0, a PV domain's if
    /// `pv` is set.
    #[derive(Debug)]
    pub struct Ram(pub RefCell<alloc::vec::Vec<u8>>, pub Cell<bool>);

    impl Ram {
        pub fn new(pages: usize) -> Self {
            Self(RefCell::new(alloc::vec![0; pages * 4096]), Cell::new(false))
        }

        fn range(&self, gpa: u64, len: usize) -> Result<core::ops::Range<usize>, Fault> {
            let start = usize::try_from(gpa).map_err(|_| Fault)?;
            let end = start.checked_add(len).ok_or(Fault)?;
            (end <= self.0.borrow().len())
                .then_some(start..end)
                .ok_or(Fault)
        }
    }

    impl GuestPhys for Ram {
        fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), Fault> {
            let r = self.range(gpa, buf.len())?;
            buf.copy_from_slice(&self.0.borrow()[r]);
            Ok(())
        }

        fn write(&self, gpa: u64, data: &[u8]) -> Result<(), Fault> {
            let r = self.range(gpa, data.len())?;
            self.0.borrow_mut()[r].copy_from_slice(data);
            Ok(())
        }

        fn read_entry(&self, gpa: u64, size: usize) -> Option<u64> {
            let mut b = [0u8; 8];
            self.read(gpa, b.get_mut(..size)?).ok()?;
            Some(u64::from_le_bytes(b))
        }

        fn pv(&self) -> bool {
            self.1.get()
        }
    }

    /// A vCPU with paging off (guest-virtual is guest-physical) or in
    /// 4-level long mode with the tables at `cr3`.
    #[derive(Debug)]
    pub struct Cpu {
        pub cr3: Option<u64>,
        pub long: bool,
    }

    impl GuestCpu for Cpu {
        fn paging_state(&self) -> (u64, u64, u64, u64) {
            match self.cr3 {
                // CR0.PE|PG|WP, CR4.PAE, EFER.LME|LMA.
                Some(cr3) => ((1 << 31) | (1 << 16) | 1, cr3, 1 << 5, (1 << 8) | (1 << 10)),
                None => (1, 0, 0, 0),
            }
        }

        fn long_mode(&self) -> bool {
            self.long
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{Cpu, Ram};
    use super::*;
    use crate::xenabi::EvtchnAllocUnbound;

    /// Maps the 4 KiB page at `va` to `gpa` in 4-level tables at 0x1000
    /// (0x2000, 0x3000 and 0x4000 for the lower levels), `rw` writable.
    fn map(ram: &Ram, va: u64, gpa: u64, rw: bool) {
        const P: u64 = 1;
        const W: u64 = 2;
        let table = [0x1000u64, 0x2000, 0x3000, 0x4000];
        for (level, t) in table.iter().enumerate() {
            let index = (va >> (39 - 9 * level)) & 0x1ff;
            let next = table.get(level + 1).copied().unwrap_or(gpa);
            let flags = if level == 3 && !rw { P } else { P | W };
            ram.write(t + index * 8, &(next | flags).to_le_bytes())
                .unwrap();
        }
    }

    #[test]
    fn copies_cross_pages_through_the_guests_tables() {
        let ram = Ram::new(8);
        let cpu = Cpu {
            cr3: Some(0x1000),
            long: true,
        };
        // Two virtually adjacent pages that are not adjacent physically.
        map(&ram, 0x40_0000, 0x7000, true);
        map(&ram, 0x40_1000, 0x5000, true);
        let g = GuestView {
            mem: &ram,
            cpu: &cpu,
        };
        g.copy_to_guest(0x40_0ffc, &[1, 2, 3, 4, 5, 6, 7, 8])
            .unwrap();
        let mut b = [0u8; 4];
        ram.read(0x7ffc, &mut b).unwrap();
        assert_eq!(b, [1, 2, 3, 4]);
        ram.read(0x5000, &mut b).unwrap();
        assert_eq!(b, [5, 6, 7, 8]);
        assert_eq!(
            g.copy_from_guest::<8>(0x40_0ffc),
            Ok([1, 2, 3, 4, 5, 6, 7, 8])
        );
        assert_eq!(g.gpa(0x40_1234), Some(0x5234));
        // The page after is not mapped: the copy faults.
        assert_eq!(g.copy_from_guest::<8>(0x40_1ffc), Err(Errno::Fault));
    }

    #[test]
    fn a_pv_guest_writes_through_its_tables_permissions_and_not_the_hypervisors_range() {
        let ram = Ram::new(8);
        let cpu = Cpu {
            cr3: Some(0x1000),
            long: true,
        };
        map(&ram, 0x40_0000, 0x5000, false);
        let view = |pv| {
            ram.1.set(pv);
            GuestView {
                mem: &ram,
                cpu: &cpu,
            }
        };
        assert_eq!(view(true).copy_to_guest(0x40_0000, &[1]), Err(Errno::Fault));
        assert_eq!(view(false).copy_to_guest(0x40_0000, &[1]), Ok(()));
        assert_eq!(view(true).copy_from_guest::<1>(0x40_0000), Ok([1]));
        // Mapped in its tables, but the hypervisor's.
        map(&ram, HYPERVISOR_VIRT_START, 0x6000, true);
        assert_eq!(
            view(false).copy_from_guest::<1>(HYPERVISOR_VIRT_START),
            Ok([0])
        );
        assert_eq!(
            view(true).copy_from_guest::<1>(HYPERVISOR_VIRT_START),
            Err(Errno::Fault)
        );
    }

    #[test]
    fn arguments_are_decoded_and_written_back_in_the_guests_abi() {
        let ram = Ram::new(2);
        let cpu = Cpu {
            cr3: None,
            long: false,
        };
        let g = GuestView {
            mem: &ram,
            cpu: &cpu,
        };
        // `struct evtchn_alloc_unbound { domid_t dom, remote_dom; port }`.
        ram.write(0x100, &[0xf0, 0x7f, 0, 0, 0xaa, 0xbb, 0xcc, 0xdd, 0xee])
            .unwrap();
        let mut a = g.read_arg::<EvtchnAllocUnbound>(0x100).unwrap();
        assert_eq!((a.v.dom, a.v.remote_dom), (0x7ff0, 0));
        a.v.port = 7;
        g.write_arg(0x100, &mut a).unwrap();
        let mut b = [0u8; 9];
        ram.read(0x100, &mut b).unwrap();
        // The port set, the byte after the structure untouched.
        assert_eq!(b, [0xf0, 0x7f, 0, 0, 7, 0, 0, 0, 0xee]);
        assert_eq!(
            g.read_arg::<EvtchnAllocUnbound>(0x1ffe).err(),
            Some(Errno::Fault)
        );
    }
}
