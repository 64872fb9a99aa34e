//! `enable_msi`, `enable_msix` and their disables: what reaches the
//! hardware and every refusal.

use alloc::vec::Vec;

use super::Rig;
use crate::testkit::{self, MSI_ADDRESS};
use crate::vdev::errno::*;
use crate::vdev::OpError;
use vmm_glue::MsiSource;

#[test]
fn enable_msi_programs_the_hosts_message_and_disables_intx() {
    let mut r = Rig::new(testkit::edu());
    r.wr(0x04, 2, 0x0004);
    assert_eq!(r.dev.enable_msi(&mut r.host), Ok(16));
    assert_eq!(r.hw(0x44), MSI_ADDRESS as u32);
    assert_eq!(r.hw(0x48), 0);
    assert_eq!(r.hw(0x4c), 0x40);
    assert_eq!(r.hw(0x40) >> 16, 0x0081, "64-bit, enabled");
    assert_ne!(r.hw_cmd() & 0x0400, 0, "INTx disabled in hardware");
    assert_eq!(r.rd(0x04, 2) & 0x0400, 0, "the guest's view unchanged");
    assert_eq!(r.rd(0x42, 2), 0x0081, "the guest sees MSI on");
    assert_eq!(r.rd(0x44, 4), 0, "and its own (empty) address");
    assert_eq!(r.host.routes[0].source, MsiSource::Msi);
}

#[test]
fn disable_msi_frees_the_route_and_answers_the_intx_pirq() {
    let mut r = Rig::new(testkit::edu());
    r.dev.enable_msi(&mut r.host).unwrap();
    assert_eq!(r.dev.disable_msi(&mut r.host), 11);
    assert_eq!(r.hw(0x40) >> 16, 0x0080);
    assert_eq!(r.host.freed, [(r.fx.info.sbdf, 16)]);
    assert!(r.host.routes.is_empty());
    assert_eq!(r.hw_cmd() & 0x0400, 0x0400, "the guest's INTx disable");
    // A second disable does nothing.
    assert_eq!(r.dev.disable_msi(&mut r.host), 11);
    assert_eq!(r.host.freed.len(), 1);
}

#[test]
fn enable_msi_uses_the_32_bit_layout_and_unmasks() {
    let mut r = Rig::new(testkit::synthetic());
    assert_eq!(r.dev.enable_msi(&mut r.host), Ok(16));
    assert_eq!(r.hw(0x54), MSI_ADDRESS as u32);
    assert_eq!(r.hw(0x58), 0x40, "data right after the 32-bit address");
    assert_eq!(r.hw(0x5c), 0, "vector unmasked");
    r.wr(0x5c, 4, 1);
    assert_eq!(r.hw(0x5c), 1, "the guest's mask applies while MSI is on");
}

#[test]
fn enable_msi_twice_is_ealready() {
    let mut r = Rig::new(testkit::edu());
    r.dev.enable_msi(&mut r.host).unwrap();
    assert_eq!(r.dev.enable_msi(&mut r.host), Err(OpError(EALREADY)));
    assert_eq!(r.host.allocations.len(), 1);
}

#[test]
fn enable_msi_without_the_capability_is_enodev() {
    let mut r = Rig::new(testkit::nvme());
    assert_eq!(r.dev.enable_msi(&mut r.host), Err(OpError(ENODEV)));
}

#[test]
fn msi_and_msix_exclude_each_other() {
    let mut r = Rig::new(testkit::e1000e());
    r.decode_on();
    r.dev.enable_msix(&mut r.host, &[0]).unwrap();
    assert_eq!(r.dev.enable_msi(&mut r.host), Err(OpError(ENXIO)));
    r.dev.disable_msix(&mut r.host);
    r.dev.enable_msi(&mut r.host).unwrap();
    assert_eq!(r.dev.enable_msix(&mut r.host, &[0]), Err(OpError(ENXIO)));
}

#[test]
fn enable_msi_failures_map_to_errno() {
    let mut r = Rig::new(testkit::edu());
    r.host.irq_limit = Some(0);
    assert_eq!(r.dev.enable_msi(&mut r.host), Err(OpError(ENOSPC)));
    r.host.irq_limit = None;
    r.host.refuse_irqs = true;
    assert_eq!(r.dev.enable_msi(&mut r.host), Err(OpError(EPERM)));
    assert!(!r.dev.msi_enabled());
    assert_eq!(r.hw(0x40) >> 16, 0x0080);
}

#[test]
fn enable_msix_writes_the_entries_and_enables() {
    let mut r = Rig::new(testkit::nvme());
    r.decode_on();
    assert_eq!(
        r.dev.enable_msix(&mut r.host, &[0, 3, 64]),
        Ok(alloc::vec![16, 17, 18])
    );
    for (entry, data) in [(0, 0x40), (3, 0x41), (64, 0x42)] {
        let at = r.fx.msix_entry_hpa(entry);
        assert_eq!(r.host.peek(at, 4), MSI_ADDRESS);
        assert_eq!(r.host.peek(at + 4, 4), 0);
        assert_eq!(r.host.peek(at + 8, 4), data);
        assert_eq!(r.host.peek(at + 12, 4), 0, "unmasked");
    }
    assert_eq!(
        r.host.peek(r.fx.msix_entry_hpa(1) + 12, 4),
        1,
        "others stay masked"
    );
    assert_eq!(r.hw(0x40) >> 16, 0x8040, "enabled, function unmasked");
    assert_ne!(r.hw_cmd() & 0x0400, 0, "INTx disabled");
    assert_eq!(r.rd(0x42, 2), 0x8040);
    let sources: Vec<_> = r.host.routes.iter().map(|a| a.source).collect();
    assert_eq!(
        sources,
        [MsiSource::Msix(0), MsiSource::Msix(3), MsiSource::Msix(64)]
    );
}

#[test]
fn enable_msix_refusals() {
    let mut r = Rig::new(testkit::nvme());
    assert_eq!(
        r.dev.enable_msix(&mut r.host, &[0]),
        Err(OpError(ENXIO)),
        "decode off"
    );
    r.decode_on();
    let many: Vec<u16> = (0..129).collect();
    assert_eq!(r.dev.enable_msix(&mut r.host, &many), Err(OpError(EINVAL)));
    assert_eq!(r.dev.enable_msix(&mut r.host, &[]), Err(OpError(EINVAL)));
    assert_eq!(
        r.dev.enable_msix(&mut r.host, &[1, 2, 1]),
        Err(OpError(EINVAL))
    );
    assert_eq!(r.dev.enable_msix(&mut r.host, &[65]), Err(OpError(EINVAL)));
    assert_eq!(
        r.dev.enable_msix(&mut r.host, &[u16::MAX]),
        Err(OpError(EINVAL))
    );
    assert!(r.host.allocations.is_empty());
    r.dev.enable_msix(&mut r.host, &[0]).unwrap();
    assert_eq!(r.dev.enable_msix(&mut r.host, &[1]), Err(OpError(EALREADY)));
    let mut edu = Rig::new(testkit::edu());
    edu.decode_on();
    assert_eq!(
        edu.dev.enable_msix(&mut edu.host, &[0]),
        Err(OpError(ENODEV))
    );
}

#[test]
fn enable_msix_128_vectors_is_the_limit() {
    let mut fx = testkit::nvme();
    // A table of 2048 entries at 0 and its PBA at 0x8000 of a 64 KiB BAR.
    fx.config.regs.get_mut(&0x40).unwrap().value = 0x47ff_8011;
    fx.config.regs.get_mut(&0x44).unwrap().value = 0x0000;
    fx.config.regs.get_mut(&0x48).unwrap().value = 0x8000;
    fx.info.bars[0].size = 64 << 10;
    let mut r = Rig::new(fx);
    r.decode_on();
    let all: Vec<u16> = (0..128).map(|n| n * 16).collect();
    assert_eq!(
        r.dev.enable_msix(&mut r.host, &all).map(|p| p.len()),
        Ok(128)
    );
}

#[test]
fn enable_msix_frees_what_it_routed_when_the_host_runs_out() {
    let mut r = Rig::new(testkit::nvme());
    r.decode_on();
    r.host.irq_limit = Some(2);
    assert_eq!(
        r.dev.enable_msix(&mut r.host, &[0, 1, 2]),
        Err(OpError(ENOSPC))
    );
    assert!(r.host.routes.is_empty());
    assert_eq!(r.host.freed.len(), 2);
    assert!(!r.dev.msix_enabled());
    assert_eq!(r.hw(0x40) >> 16 & 0x8000, 0);
    assert!(r.host.mmio_writes().is_empty(), "the table was not touched");
}

#[test]
fn disable_msix_masks_entries_frees_routes_and_answers_the_intx_pirq() {
    let mut r = Rig::new(testkit::nvme());
    r.decode_on();
    r.dev.enable_msix(&mut r.host, &[5, 6]).unwrap();
    assert_eq!(r.dev.disable_msix(&mut r.host), 10);
    for e in [5, 6] {
        assert_eq!(r.host.peek(r.fx.msix_entry_hpa(e) + 12, 4), 1);
    }
    assert_eq!(r.hw(0x40) >> 16, 0x4040, "off, function masked");
    assert!(r.host.routes.is_empty());
    assert_eq!(r.host.freed.len(), 2);
    assert_eq!(r.dev.disable_msix(&mut r.host), 10, "idempotent");
    assert_eq!(r.host.freed.len(), 2);
    // And it can be enabled again.
    assert!(r.dev.enable_msix(&mut r.host, &[5]).is_ok());
}

#[test]
fn disable_msix_with_guest_decode_off_still_masks_the_table() {
    let mut r = Rig::new(testkit::nvme());
    r.decode_on();
    r.dev.enable_msix(&mut r.host, &[1]).unwrap();
    r.wr(0x04, 2, 0);
    assert_eq!(r.hw_cmd() & 2, 0);
    r.dev.disable_msix(&mut r.host);
    assert_eq!(r.host.peek(r.fx.msix_entry_hpa(1) + 12, 4), 1);
    assert_eq!(r.hw_cmd() & 2, 0, "decode back off after");
}

#[test]
fn msix_table_is_left_alone_in_d3hot() {
    let mut r = Rig::new(testkit::e1000e());
    r.decode_on();
    r.wr(0xcc, 2, 3);
    assert_eq!(r.dev.enable_msix(&mut r.host, &[0]), Err(OpError(ENXIO)));
    r.wr(0xcc, 2, 0);
    r.dev.enable_msix(&mut r.host, &[0]).unwrap();
    r.wr(0xcc, 2, 3);
    let writes = r.host.mmio_writes().len();
    r.dev.disable_msix(&mut r.host);
    assert_eq!(
        r.host.mmio_writes().len(),
        writes,
        "no access to a D3hot function's memory"
    );
    assert_eq!(r.hw(0xa0) >> 16, 0x4004, "MSI-X off through config space");
    assert!(r.host.routes.is_empty());
}

#[test]
fn guest_function_mask_reaches_hardware_while_msix_is_on() {
    let mut r = Rig::new(testkit::nvme());
    r.decode_on();
    r.dev.enable_msix(&mut r.host, &[0]).unwrap();
    r.wr(0x42, 2, 0xc000);
    assert_eq!(r.hw(0x40) >> 16, 0xc040);
    assert_eq!(r.rd(0x42, 2), 0xc040);
    r.wr(0x42, 2, 0x8000);
    assert_eq!(r.hw(0x40) >> 16, 0x8040);
}

#[test]
fn op_sequences_keep_routes_balanced() {
    // XSA-157: any order of enables and disables leaves no route behind
    // and never frees one twice.
    let mut r = Rig::new(testkit::e1000e());
    r.decode_on();
    let _ = r.dev.disable_msi(&mut r.host);
    let _ = r.dev.disable_msix(&mut r.host);
    let _ = r.dev.enable_msi(&mut r.host);
    let _ = r.dev.enable_msix(&mut r.host, &[0, 1]);
    let _ = r.dev.enable_msi(&mut r.host);
    let _ = r.dev.disable_msix(&mut r.host);
    let _ = r.dev.disable_msi(&mut r.host);
    let _ = r.dev.enable_msix(&mut r.host, &[0, 1, 4]);
    let _ = r.dev.disable_msix(&mut r.host);
    let _ = r.dev.disable_msix(&mut r.host);
    assert!(r.host.routes.is_empty());
    let mut freed = r.host.freed.clone();
    freed.sort();
    freed.dedup();
    assert_eq!(freed.len(), r.host.freed.len());
    assert_eq!(r.host.allocations.len(), r.host.freed.len());
}

#[test]
fn release_leaves_the_function_quiet() {
    let mut r = Rig::new(testkit::e1000e());
    r.wr(0x04, 2, 0x0006);
    r.dev.enable_msix(&mut r.host, &[0, 2]).unwrap();
    let report = r.dev.release_quiesced(&mut r.host);
    assert!(report.is_quiet(), "{report}");
    assert!(r.host.windows.is_empty());
    assert!(r.host.routes.is_empty());
    let cmd = r.hw_cmd();
    assert_eq!(cmd & 0x0007, 0);
    assert_ne!(cmd & 0x0400, 0);
    assert_eq!(r.hw(0xa0) >> 16, 0x4004, "MSI-X off and masked");
    assert_eq!(r.hw(0xd0) >> 16 & 1, 0);
    assert_eq!(r.host.peek(r.fx.msix_entry_hpa(0) + 12, 4), 1);
    // The guest's view is back to the start.
    assert_eq!(r.rd(0x04, 2), 0x0400);
    assert!(!r.dev.is_decoding() && !r.dev.msix_enabled());
}

#[test]
fn release_with_msi_on_frees_it() {
    let mut r = Rig::new(testkit::edu());
    r.wr(0x04, 2, 0x0006);
    r.dev.enable_msi(&mut r.host).unwrap();
    r.dev.release(&mut r.host);
    assert!(r.host.routes.is_empty());
    assert_eq!(r.hw(0x40) >> 16 & 1, 0);
    assert_eq!(r.hw_cmd() & 0x0007, 0);
}
