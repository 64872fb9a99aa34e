//! Where a PV domain's pieces are: in its container's physical address
//! space (RAM from 0, then the special frames the guest may map, then the
//! hypervisor's frames it may only read), and in its virtual address space
//! (the M2P and the per-domain area in the reserved L4 slots).

use super::abi::va;

/// 2 MiB.
pub const MIB2: u64 = 2 << 20;
/// 1 GiB.
pub const GIB: u64 = 1 << 30;

/// The container-physical layout of a PV domain of `nr_pages` RAM pages:
/// RAM is `[0, nr_pages * 4096)` (machine frame = pseudo-physical frame);
/// at the next 2 MiB boundary the special frames (the shared info page,
/// then the grant table frames), each owned by the domain and mappable by
/// it; 2 MiB further the hypervisor's frames (M2P, per-domain tables,
/// descriptor tables), mapped read-only and never mappable through the
/// guest's own page tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Container {
    pub nr_pages: u64,
    /// The shared info page's address.
    pub shared_info: u64,
    /// The first grant table frame's address; the others follow.
    pub grant_frames: u64,
    pub nr_grant_frames: u32,
    /// Where the hypervisor's frames start (2 MiB aligned).
    pub hv_base: u64,
    /// How many hypervisor frames there is room for.
    pub hv_frames: u64,
}

/// The most grant table frames a PV domain gets room for.
pub const MAX_GRANT_FRAMES: u32 = 64;

impl Container {
    /// The layout of a domain of `nr_pages` pages with `nr_grant_frames`
    /// grant frames (at most [`MAX_GRANT_FRAMES`]) and room for
    /// `hv_frames` hypervisor frames.
    pub fn new(nr_pages: u64, nr_grant_frames: u32, hv_frames: u64) -> Self {
        let ram_end = nr_pages * 4096;
        let special = ram_end.next_multiple_of(MIB2);
        let nr_grant_frames = nr_grant_frames.min(MAX_GRANT_FRAMES);
        Self {
            nr_pages,
            shared_info: special,
            grant_frames: special + 4096,
            nr_grant_frames,
            hv_base: special + MIB2,
            hv_frames,
        }
    }

    /// One past the last container-physical address used.
    pub fn end(&self) -> u64 {
        self.hv_base + (self.hv_frames * 4096).next_multiple_of(MIB2)
    }

    /// Whether machine frame `mfn` is a special frame (the domain's, but
    /// not RAM: it may be mapped, never be a page table).
    pub fn is_special(&self, mfn: u64) -> bool {
        let a = mfn * 4096;
        a == self.shared_info
            || (self.grant_frames..self.grant_frames + u64::from(self.nr_grant_frames) * 4096)
                .contains(&a)
    }

    /// The address of grant frame `i`.
    pub fn grant_frame(&self, i: u32) -> Option<u64> {
        (i < self.nr_grant_frames).then(|| self.grant_frames + u64::from(i) * 4096)
    }

    /// The frames the M2P has real entries for: every frame below the
    /// hypervisor's (RAM and special frames).
    pub fn m2p_frames(&self) -> u64 {
        self.hv_base / 4096
    }
}

/// The M2P's virtual mapping: one L2 entry per GiB of machine address
/// space (2 MiB of table). A GiB that holds frames with entries gets an L1
/// of 4 KiB table pages (real ones up to [`Container::m2p_frames`], a shared
/// page of invalid entries after); the others map one shared 2 MiB block
/// of invalid entries, so reading the entry of any frame up to
/// [`M2P_COVERED`] finds `INVALID_M2P_ENTRY` (~0) rather than faulting.
pub const M2P_COVERED: u64 = 64 * GIB;

/// `INVALID_M2P_ENTRY`.
pub const INVALID_M2P: u64 = !0;

/// How many 4 KiB M2P table pages hold real entries for a layout: one per
/// 512 frames (2 MiB of machine space).
pub fn m2p_table_pages(l: &Container) -> u64 {
    l.m2p_frames().div_ceil(512)
}

/// How many GiBs of machine space need an L1 in the M2P mapping.
pub fn m2p_l1_tables(l: &Container) -> u64 {
    (l.m2p_frames() * 4096).div_ceil(GIB)
}

/// The per-domain area (L4 slot 260): per vCPU, 15 pages of GDT (the
/// guest's 14 and the reserved one) and 16 pages of LDT, 32 pages apart;
/// one TSS page for all vCPUs after them. One L1 maps it all.
pub mod perdomain {
    use super::va::PERDOMAIN_VIRT_START;

    /// Pages per vCPU.
    pub const VCPU_PAGES: u64 = 32;
    /// GDT pages per vCPU: 14 guest pages and the reserved page.
    pub const GDT_PAGES: u64 = 15;
    /// The first LDT page of a vCPU's 32.
    pub const LDT_FIRST: u64 = 16;
    pub const LDT_PAGES: u64 = 16;
    /// The TSS's page in the area's L1.
    pub const TSS_PAGE: u64 = 256;

    /// The GDT's virtual address for vCPU `k`.
    pub const fn gdt(k: u32) -> u64 {
        PERDOMAIN_VIRT_START + (k as u64) * VCPU_PAGES * 4096
    }

    /// The LDT's virtual address for vCPU `k`.
    pub const fn ldt(k: u32) -> u64 {
        gdt(k) + LDT_FIRST * 4096
    }

    pub const TSS: u64 = PERDOMAIN_VIRT_START + TSS_PAGE * 4096;

    /// The area's L1 index of vCPU `k`'s GDT page `i`.
    pub const fn gdt_index(k: u32, i: u64) -> usize {
        ((k as u64) * VCPU_PAGES + i) as usize
    }

    /// The area's L1 index of vCPU `k`'s LDT page `i`.
    pub const fn ldt_index(k: u32, i: u64) -> usize {
        ((k as u64) * VCPU_PAGES + LDT_FIRST + i) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_and_hypervisor_frames_follow_ram_on_2_mib_boundaries() {
        let l = Container::new(65536, 4, 200);
        assert_eq!(l.shared_info, 256 << 20);
        assert_eq!(l.grant_frames, (256 << 20) + 4096);
        assert_eq!(l.hv_base, (258 << 20));
        assert_eq!(l.end(), 260 << 20);
        let odd = Container::new(1000, 4, 1);
        assert_eq!(odd.shared_info, 4 << 20);
    }

    #[test]
    fn special_frames_are_the_shared_info_and_grant_frames_only() {
        let l = Container::new(65536, 4, 200);
        let mfn = |a: u64| a / 4096;
        assert!(l.is_special(mfn(l.shared_info)));
        assert!(l.is_special(mfn(l.grant_frames)));
        assert!(l.is_special(mfn(l.grant_frames) + 3));
        assert!(!l.is_special(mfn(l.grant_frames) + 4));
        assert!(!l.is_special(65535));
        assert!(!l.is_special(mfn(l.hv_base)));
        assert_eq!(l.grant_frame(3), Some(l.grant_frames + 3 * 4096));
        assert_eq!(l.grant_frame(4), None);
    }

    #[test]
    fn grant_frames_are_capped() {
        assert_eq!(
            Container::new(512, 1000, 0).nr_grant_frames,
            MAX_GRANT_FRAMES
        );
    }

    #[test]
    fn m2p_pages_cover_ram_and_special_frames() {
        let l = Container::new(65536, 4, 200);
        // 258 MiB of frames below the hypervisor's: 129 pages of entries,
        // all in the first GiB.
        assert_eq!(m2p_table_pages(&l), 129);
        assert_eq!(m2p_l1_tables(&l), 1);
        let big = Container::new(3 << 18, 4, 200); // 3 GiB of RAM
        assert_eq!(m2p_l1_tables(&big), 4);
    }

    #[test]
    fn perdomain_pages_of_8_vcpus_and_the_tss_fit_one_l1() {
        assert_eq!(perdomain::gdt_index(7, 14), 7 * 32 + 14);
        assert!(perdomain::ldt_index(7, 15) < perdomain::TSS_PAGE as usize);
        assert_eq!(perdomain::gdt(1) - perdomain::gdt(0), 32 * 4096);
        assert_eq!(va::l4_slot(perdomain::TSS), va::SLOT_PERDOMAIN);
    }
}
