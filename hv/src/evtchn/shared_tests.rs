//! The shared info page: pending, mask, selector and upcall bits.

use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;
use vmm_glue::xen::event_channel::DOMID_SELF;

use super::shared::{legacy_vcpu_flags, BitmapError, SharedPage, VcpuInfoAt};
use super::*;

const CFG: DomainConfig = DomainConfig {
    nr_vcpus: 2,
    nr_pirqs: 32,
    privileged: false,
};

fn two() -> EventChannels {
    let mut ec = EventChannels::new();
    ec.add_domain(1, CFG).unwrap();
    ec.add_domain(2, CFG).unwrap();
    ec
}

fn page() -> Vec<u8> {
    vec![0u8; 4096]
}

#[test]
fn set_pending_sets_bit_selector_and_upcall_once() {
    let mut pg = page();
    let mut sp = SharedPage::new(&mut pg).unwrap();
    assert_eq!(sp.set_pending(70, VcpuInfoAt::Legacy(1)), Ok(true));
    assert!(sp.is_pending(70).unwrap());
    // Same port again, or another port in the same word: no new upcall.
    assert_eq!(sp.set_pending(70, VcpuInfoAt::Legacy(1)), Ok(false));
    assert_eq!(sp.set_pending(71, VcpuInfoAt::Legacy(1)), Ok(false));
    // Another word, upcall still pending: no new upcall.
    assert_eq!(sp.set_pending(3, VcpuInfoAt::Legacy(1)), Ok(false));
    assert_eq!(legacy_vcpu_flags(&pg, 1), Some((1, 0b11)));
    assert_eq!(legacy_vcpu_flags(&pg, 0), Some((0, 0)));
    // Ports 70 and 71 are bits 6 and 7 of word 1, at offset 2048 + 8.
    assert_eq!(pg[2048 + 8], 0b11 << 6);
}

#[test]
fn acknowledged_upcall_is_raised_again() {
    let mut pg = page();
    SharedPage::new(&mut pg)
        .unwrap()
        .set_pending(5, VcpuInfoAt::Legacy(0))
        .unwrap();
    // The guest handles it: clears upcall_pending, selector and pending bit.
    pg[0] = 0;
    pg[8..16].fill(0);
    pg[2048] = 0;
    let mut sp = SharedPage::new(&mut pg).unwrap();
    assert_eq!(sp.set_pending(5, VcpuInfoAt::Legacy(0)), Ok(true));
}

#[test]
fn masked_port_stays_quiet_until_unmask() {
    let mut pg = page();
    let mut sp = SharedPage::new(&mut pg).unwrap();
    sp.mask(130).unwrap();
    assert_eq!(sp.set_pending(130, VcpuInfoAt::Legacy(0)), Ok(false));
    assert!(sp.is_pending(130).unwrap());
    assert_eq!(legacy_vcpu_flags(&pg, 0), Some((0, 0)));
    let mut sp = SharedPage::new(&mut pg).unwrap();
    assert_eq!(sp.unmask(130, VcpuInfoAt::Legacy(0)), Ok(true));
    assert!(!sp.is_masked(130).unwrap());
    assert_eq!(legacy_vcpu_flags(&pg, 0), Some((1, 1 << 2)));
    // Unmasking an unmasked port does nothing.
    let mut sp = SharedPage::new(&mut pg).unwrap();
    assert_eq!(sp.unmask(130, VcpuInfoAt::Legacy(0)), Ok(false));
}

#[test]
fn unmask_of_idle_port_only_clears_mask() {
    let mut pg = page();
    let mut sp = SharedPage::new(&mut pg).unwrap();
    sp.mask(9).unwrap();
    assert_eq!(sp.unmask(9, VcpuInfoAt::Legacy(0)), Ok(false));
    assert_eq!(legacy_vcpu_flags(&pg, 0), Some((0, 0)));
}

#[test]
fn registered_vcpu_info_receives_the_upcall() {
    let mut pg = page();
    let mut vi = [0u8; 64];
    let mut sp = SharedPage::new(&mut pg).unwrap();
    assert_eq!(
        sp.set_pending(4095, VcpuInfoAt::Registered(&mut vi)),
        Ok(true)
    );
    assert_eq!(vi[0], 1);
    assert_eq!(u64::from_le_bytes(vi[8..16].try_into().unwrap()), 1 << 63);
    let mut short = [0u8; 63];
    assert_eq!(
        sp.set_pending(1, VcpuInfoAt::Registered(&mut short)),
        Err(BitmapError::BadVcpuInfo)
    );
}

#[test]
fn bitmap_errors() {
    let mut small = vec![0u8; 3000];
    assert_eq!(
        SharedPage::new(&mut small).err(),
        Some(BitmapError::ShortPage)
    );
    let mut pg = page();
    let mut sp = SharedPage::new(&mut pg).unwrap();
    assert_eq!(
        sp.set_pending(4096, VcpuInfoAt::Legacy(0)),
        Err(BitmapError::BadPort)
    );
    assert_eq!(
        sp.set_pending(1, VcpuInfoAt::Legacy(32)),
        Err(BitmapError::BadVcpuInfo)
    );
    // A failed call leaves the pending bit alone.
    assert!(!sp.is_pending(1).unwrap());
    sp.set_pending(1, VcpuInfoAt::Legacy(0)).unwrap();
    sp.clear_pending(1).unwrap();
    assert!(!sp.is_pending(1).unwrap());
}

#[test]
fn effects_applied_to_pages_deliver_an_interdomain_send() {
    let mut ec = two();
    let p1 = ec.alloc_unbound(1, DOMID_SELF, 2).unwrap();
    let p2 = ec.bind_interdomain(2, 1, p1).unwrap();
    ec.take_effects();
    let mut pages = [page(), page()];
    ec.send(1, p1).unwrap();
    let mut upcalls = Vec::new();
    for e in ec.take_effects() {
        if let Effect::SetPending { dom, port, vcpu } = e {
            let mut sp = SharedPage::new(&mut pages[dom as usize - 1]).unwrap();
            if sp.set_pending(port, VcpuInfoAt::Legacy(vcpu)).unwrap() {
                upcalls.push((dom, vcpu));
            }
        }
    }
    assert_eq!(upcalls, vec![(2, 0)]);
    assert!(SharedPage::new(&mut pages[1])
        .unwrap()
        .is_pending(p2)
        .unwrap());
    assert!(!SharedPage::new(&mut pages[0])
        .unwrap()
        .is_pending(p1)
        .unwrap());
}

proptest! {
    #[test]
    fn random_bitmap_ops_never_panic_and_upcall_only_when_newly_raised(
        ops in proptest::collection::vec((0u8..3, 0u32..4200, 0u32..40), 0..200)
    ) {
        let mut pg = page();
        for (kind, port, vcpu) in ops {
            let before = legacy_vcpu_flags(&pg, vcpu).map(|f| f.0);
            let mut sp = SharedPage::new(&mut pg).unwrap();
            let r = match kind {
                0 => sp.set_pending(port, VcpuInfoAt::Legacy(vcpu)),
                1 => sp.unmask(port, VcpuInfoAt::Legacy(vcpu)),
                _ => sp.mask(port).map(|()| false),
            };
            if r == Ok(true) {
                prop_assert_eq!(before, Some(0));
                prop_assert_eq!(legacy_vcpu_flags(&pg, vcpu).map(|f| f.0), Some(1));
            }
        }
    }
}
