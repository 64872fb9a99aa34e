//! A PV domain's hypervisor frames: host memory the guest reads through the
//! reserved L4 slots and never writes. The M2P table (slot 256), and the
//! per-domain area (slot 260) with each vCPU's GDT (the hypervisor's
//! checked copies of the guest's `set_gdt` frames and Xen's reserved page)
//! and LDT, and the TSS the container runs with. Every frame is mapped
//! read-only into the container above the domain's special frames
//! (`hv::pv::container::Container`); the guest's own page-table entries can never
//! name them (`PvMm` accepts only RAM, special and I/O frames), so only
//! the entries the hypervisor writes into L4 slots 256 and 260 reach them.

use crate::arch::phys;
use crate::mem;
use crate::virt::stage2::GuestTables;
use alloc::vec;
use alloc::vec::Vec;
use hv::pv::abi::{gdt, pte};
use hv::pv::container::{self, perdomain, Container, GIB, INVALID_M2P, M2P_COVERED, MIB2};
use hv::pv::fast;
use vmm_glue::log;

/// Table entries of the hypervisor's own tables: present, and accessed so
/// that the CPU's walks never write them.
const TABLE: u64 = pte::PRESENT | pte::RW | pte::USER | pte::ACCESSED;
/// A read-only leaf the guest kernel reads (the M2P).
const LEAF_USER_RO: u64 = pte::PRESENT | pte::USER | pte::ACCESSED | pte::DIRTY | pte::NX;
/// A read-only leaf only the CPU's implicit supervisor accesses read (GDT,
/// LDT, TSS).
const LEAF_SUPERVISOR_RO: u64 = pte::PRESENT | pte::ACCESSED | pte::DIRTY | pte::NX;
/// The fast-path stub's code: CPL 0 executes it, nothing writes it.
const LEAF_SUPERVISOR_RX: u64 = pte::PRESENT | pte::ACCESSED | pte::DIRTY;
/// The stub's data page and `vcpu_info` window: CPL 0 reads and writes.
const LEAF_SUPERVISOR_RW: u64 = pte::PRESENT | pte::RW | pte::ACCESSED | pte::DIRTY | pte::NX;

/// A frame of the area: where the guest sees it and where it is. Only
/// [`HvArea`] makes them, from frames it took from the frame allocator
/// and keeps (in `owned`) until it is dropped.
#[derive(Clone, Copy, Debug)]
struct Frame {
    gpa: u64,
    hpa: u64,
}

impl Frame {
    fn write_u64(&self, index: usize, v: u64) {
        if index < 512 {
            // SAFETY: entry `index` of a frame the area owns (see the
            // type).
            unsafe { phys::write_owned_u64(self.hpa + index as u64 * 8, v) };
        }
    }

    fn read_u64(&self, index: usize) -> u64 {
        if index >= 512 {
            return 0;
        }
        // SAFETY: entry `index` of a frame the area owns (see the type).
        unsafe { phys::read_owned_u64(self.hpa + index as u64 * 8) }
    }
}

/// The hypervisor frames of one PV domain.
#[derive(Debug)]
pub struct HvArea {
    container: Container,
    /// Host frames to free when the domain ends.
    owned: Vec<u64>,
    /// The 2 MiB block of invalid M2P entries (512 frames), if any GiB
    /// needs it.
    block: Option<u64>,
    /// The next free frame slot above `container.hv_base`.
    next: u64,
    /// The M2P table pages with real entries.
    m2p: Vec<Frame>,
    perdomain_l1: Frame,
    zero: Frame,
    /// Each vCPU's GDT copies, pages 0..14 (allocated when first used).
    gdt: Vec<[Option<Frame>; gdt::FIRST_RESERVED_GDT_PAGE]>,
    /// The fast-path stub's data page (`hv::pv::fast`), vCPU 0's.
    fast_data: Frame,
    /// The guest frames the `vcpu_info`, shared info and FIFO windows map.
    vcpu_info_window: Option<u64>,
    shared_window: Option<u64>,
    fifo_windows: [Option<u64>; 2],
    /// The L4 entries for slot 256 (M2P) and slot 260 (per-domain area).
    pub l4_m2p: u64,
    pub l4_perdomain: u64,
}

impl HvArea {
    /// The frames of a domain with `container` and `nr_vcpus` vCPUs, mapped
    /// into `tables`; `None` when memory is short.
    /// `stub` is the fast-path code (`hv::pv::fast`), at most a page.
    pub fn new(
        container: Container,
        nr_vcpus: u32,
        tables: &mut GuestTables,
        stub: &[u8],
    ) -> Option<Self> {
        let placeholder = Frame { gpa: 0, hpa: 0 };
        let mut a = Self {
            container,
            owned: Vec::new(),
            block: None,
            next: 0,
            m2p: Vec::new(),
            perdomain_l1: placeholder,
            zero: placeholder,
            gdt: vec![[None; gdt::FIRST_RESERVED_GDT_PAGE]; nr_vcpus as usize],
            fast_data: placeholder,
            vcpu_info_window: None,
            shared_window: None,
            fifo_windows: [None; 2],
            l4_m2p: 0,
            l4_perdomain: 0,
        };
        a.zero = a.frame(tables)?;
        // The invalid-entry page: every entry ~0.
        let invalid = a.frame(tables)?;
        // SAFETY: a frame the area just took and owns.
        unsafe { phys::fill_owned(invalid.hpa, 4096, 0xff) };

        // M2P: one L3 (slot 256), one L2 (one entry per GiB of machine
        // space up to M2P_COVERED), an L1 for each GiB with real entries.
        let m2p_l3 = a.table(tables)?;
        let m2p_l2 = a.table(tables)?;
        m2p_l3.write_u64(0, m2p_l2.gpa | TABLE);
        let pages = container::m2p_table_pages(&container);
        for i in 0..pages {
            let f = a.frame(tables)?;
            let first = i * 512;
            for j in 0..512 {
                let mfn = first + j;
                let v = if mfn < container.nr_pages {
                    mfn
                } else {
                    INVALID_M2P
                };
                f.write_u64(j as usize, v);
            }
            a.m2p.push(f);
        }
        let l1s = container::m2p_l1_tables(&container);
        for g in 0..M2P_COVERED / GIB {
            if g < l1s {
                let l1 = a.table(tables)?;
                for j in 0..512u64 {
                    let page = g * 512 + j;
                    let target = a.m2p.get(page as usize).map_or(invalid.gpa, |f| f.gpa);
                    l1.write_u64(j as usize, target | LEAF_USER_RO);
                }
                m2p_l2.write_u64(g as usize, l1.gpa | TABLE);
            } else {
                let block = a.block(tables)?;
                m2p_l2.write_u64(g as usize, block | LEAF_USER_RO | pte::PSE);
            }
        }
        a.l4_m2p = m2p_l3.gpa | TABLE;

        // The per-domain area: L3 -> L2 -> one L1.
        let pd_l3 = a.table(tables)?;
        let pd_l2 = a.table(tables)?;
        let pd_l1 = a.table(tables)?;
        pd_l3.write_u64(0, pd_l2.gpa | TABLE);
        pd_l2.write_u64(0, pd_l1.gpa | TABLE);
        a.perdomain_l1 = pd_l1;
        let reserved = a.frame(tables)?;
        for (index, desc) in gdt::RESERVED {
            reserved.write_u64(index - gdt::FIRST_RESERVED_GDT_ENTRY, desc);
        }
        for k in 0..nr_vcpus {
            for i in 0..gdt::FIRST_RESERVED_GDT_PAGE as u64 {
                pd_l1.write_u64(perdomain::gdt_index(k, i), a.zero.gpa | LEAF_SUPERVISOR_RO);
            }
            pd_l1.write_u64(
                perdomain::gdt_index(k, gdt::FIRST_RESERVED_GDT_PAGE as u64),
                reserved.gpa | LEAF_SUPERVISOR_RO,
            );
        }
        // The TSS: only its I/O map base matters (0x68, beyond the 0x67
        // limit: no I/O bitmap, every port access from ring 3 faults).
        let tss = a.frame(tables)?;
        // SAFETY: two bytes inside a frame the area just took and owns.
        unsafe { phys::copy_to_owned(tss.hpa + 0x66, &0x68u16.to_le_bytes()) };
        pd_l1.write_u64(perdomain::TSS_PAGE as usize, tss.gpa | LEAF_SUPERVISOR_RO);
        // The fast-path stub: its code read-only and executable, its data
        // page (with its stack) writable, both for CPL 0 only; the
        // `vcpu_info` window starts empty.
        if stub.len() > 4096 {
            return None;
        }
        let code = a.frame(tables)?;
        // SAFETY: a frame the area just took and owns; the stub fits in it
        // (checked above).
        unsafe { phys::copy_to_owned(code.hpa, stub) };
        pd_l1.write_u64(
            fast::page::CODE_SLOT as usize,
            code.gpa | LEAF_SUPERVISOR_RX,
        );
        let data = a.data_frame(tables)?;
        pd_l1.write_u64(
            fast::page::DATA_SLOT as usize,
            data.gpa | LEAF_SUPERVISOR_RW,
        );
        a.fast_data = data;
        a.l4_perdomain = pd_l3.gpa | TABLE;
        Some(a)
    }

    /// A fresh zeroed host frame mapped read-only at the next free slot.
    fn frame(&mut self, tables: &mut GuestTables) -> Option<Frame> {
        self.mapped_frame(tables, false)
    }

    /// A fresh zeroed host frame for one of the area's page tables: the
    /// guest can never map it, but the nested walk of its page tables must
    /// be allowed to write it (AMD's nested paging treats guest page-table
    /// accesses as writes; every entry here has its accessed bits set, so
    /// no write ever happens).
    fn table(&mut self, tables: &mut GuestTables) -> Option<Frame> {
        self.mapped_frame(tables, true)
    }

    /// A fresh zeroed host frame the container writes (at CPL 0 only: its
    /// entries in the per-domain area are supervisor ones).
    fn data_frame(&mut self, tables: &mut GuestTables) -> Option<Frame> {
        self.mapped_frame(tables, true)
    }

    fn mapped_frame(&mut self, tables: &mut GuestTables, writable: bool) -> Option<Frame> {
        if self.next >= self.container.hv_frames {
            log::error!(
                "pv: the hypervisor area's {} frames are used up",
                self.container.hv_frames
            );
            return None;
        }
        let hpa = mem::alloc_frames(1, 4096)?;
        self.owned.push(hpa);
        let gpa = self.container.hv_base + self.next * 4096;
        self.next += 1;
        // SAFETY: a frame the area just took and keeps in `owned` until it
        // is dropped with the domain; it holds only this domain's view
        // (its tables, descriptor pages, stub).
        unsafe {
            if writable {
                tables.map_4k(gpa, hpa)?;
            } else {
                tables.map_4k_ro(gpa, hpa)?;
            }
        }
        Some(Frame { gpa, hpa })
    }

    /// The 2 MiB block of invalid entries, mapped read-only at the end of
    /// the area (allocated on first use).
    fn block(&mut self, tables: &mut GuestTables) -> Option<u64> {
        if let Some(gpa) = self.block.map(|_| self.block_gpa()) {
            return Some(gpa);
        }
        let hpa = mem::alloc_frames(512, MIB2)?;
        // SAFETY: the 2 MiB the frame allocator just handed over; the
        // area keeps them (`block`) until it is dropped.
        unsafe { phys::fill_owned(hpa, MIB2, 0xff) };
        self.block = Some(hpa);
        let gpa = self.block_gpa();
        // SAFETY: the block the area keeps (`block`) until it is dropped;
        // every byte is 0xff.
        unsafe { tables.map_2m_ro(gpa, hpa) }?;
        Some(gpa)
    }

    /// Where the invalid block sits: the last 2 MiB of the container.
    fn block_gpa(&self) -> u64 {
        self.container.end()
    }

    /// Sets `m2p[mfn] = pfn` (`MMU_MACHPHYS_UPDATE`); `false` for a frame
    /// without a real entry.
    pub fn set_m2p(&mut self, mfn: u64, pfn: u64) -> bool {
        match self.m2p.get((mfn / 512) as usize) {
            Some(f) => {
                f.write_u64((mfn % 512) as usize, pfn);
                true
            }
            None => false,
        }
    }

    /// Sets vCPU `k`'s GDT page `i` (0..14) to a copy of `page`, or back to
    /// the zero page with `None`.
    pub fn set_gdt_page(
        &mut self,
        tables: &mut GuestTables,
        k: u32,
        i: usize,
        page: Option<&[u8; 4096]>,
    ) -> Option<()> {
        let slot = perdomain::gdt_index(k, i as u64);
        match page {
            None => {
                self.perdomain_l1
                    .write_u64(slot, self.zero.gpa | LEAF_SUPERVISOR_RO);
                Some(())
            }
            Some(bytes) => {
                let f = match self.gdt.get(k as usize)?.get(i)?.as_ref() {
                    Some(f) => *f,
                    None => {
                        let f = self.frame(tables)?;
                        *self.gdt.get_mut(k as usize)?.get_mut(i)? = Some(f);
                        f
                    }
                };
                // SAFETY: a frame the area owns; the page is 4096 bytes.
                unsafe { phys::copy_to_owned(f.hpa, bytes) };
                self.perdomain_l1
                    .write_u64(slot, f.gpa | LEAF_SUPERVISOR_RO);
                Some(())
            }
        }
    }

    /// Writes descriptor `index` (0..7168) of vCPU `k`'s GDT copy, if that
    /// page is in use.
    pub fn set_gdt_entry(&mut self, k: u32, index: usize, desc: u64) {
        let page = index / 512;
        let mapped = self
            .perdomain_l1
            .read_u64(perdomain::gdt_index(k, page as u64));
        if let Some(Some(f)) = self.gdt.get(k as usize).and_then(|p| p.get(page)) {
            if mapped & pte::ADDR == f.gpa {
                f.write_u64(index % 512, desc);
            }
        }
    }

    /// Reads a word of the fast-path data page (byte offset `off`).
    pub fn fast_read(&self, off: usize) -> u64 {
        self.fast_data.read_u64(off / 8)
    }

    pub fn fast_write(&self, off: usize, v: u64) {
        self.fast_data.write_u64(off / 8, v);
    }

    /// Points the `vcpu_info` window at guest frame `gpa` (page aligned;
    /// `None`: unmapped); `true` if it changed (the guest's TLB must then
    /// be flushed).
    pub fn map_vcpu_info(&mut self, gpa: Option<u64>) -> bool {
        let slot = fast::page::VCPU_INFO_SLOT;
        Self::map_window(&self.perdomain_l1, &mut self.vcpu_info_window, slot, gpa)
    }

    /// The same for the shared info window.
    pub fn map_shared(&mut self, gpa: Option<u64>) -> bool {
        let slot = fast::page::SHARED_INFO_SLOT;
        Self::map_window(&self.perdomain_l1, &mut self.shared_window, slot, gpa)
    }

    /// The same for the FIFO windows: the page holding the vCPU's control
    /// block, and the first event array page.
    pub fn map_fifo(&mut self, control: Option<u64>, words: Option<u64>) -> bool {
        let [c, w] = &mut self.fifo_windows;
        let l1 = &self.perdomain_l1;
        Self::map_window(l1, c, fast::page::FIFO_CONTROL_SLOT, control)
            | Self::map_window(l1, w, fast::page::FIFO_WORDS_SLOT, words)
    }

    fn map_window(l1: &Frame, window: &mut Option<u64>, slot: u64, gpa: Option<u64>) -> bool {
        if *window == gpa {
            return false;
        }
        *window = gpa;
        let e = gpa.map_or(0, |g| (g & pte::ADDR) | LEAF_SUPERVISOR_RW);
        l1.write_u64(slot as usize, e);
        true
    }

    /// Descriptor `index` of vCPU `k`'s GDT as the CPU sees it (the copy,
    /// or the reserved page), `None` beyond the table.
    pub fn gdt_entry(&self, k: u32, index: usize) -> Option<u64> {
        let page = index / 512;
        if page > gdt::FIRST_RESERVED_GDT_PAGE {
            return None;
        }
        if page == gdt::FIRST_RESERVED_GDT_PAGE {
            return gdt::RESERVED
                .iter()
                .find(|e| e.0 == index)
                .map(|e| e.1)
                .or(Some(0));
        }
        let mapped = self
            .perdomain_l1
            .read_u64(perdomain::gdt_index(k, page as u64));
        match self.gdt.get(k as usize)?.get(page)? {
            Some(f) if mapped & pte::ADDR == f.gpa => Some(f.read_u64(index % 512)),
            _ => Some(0),
        }
    }
}

impl Drop for HvArea {
    fn drop(&mut self) {
        for hpa in self.owned.drain(..) {
            // SAFETY: a frame the area took from the frame allocator and
            // owned until now; nothing maps it any more (the domain's
            // tables are gone with it).
            unsafe { phys::zero_owned(hpa, 4096) };
            mem::free_frames(hpa, 1);
        }
        if let Some(hpa) = self.block.take() {
            mem::free_frames(hpa, 512);
        }
    }
}
