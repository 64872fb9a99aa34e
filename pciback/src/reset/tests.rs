//! Which reset each device layout gets, what reaches its registers, and
//! saving and restoring config around it.

use alloc::format;

use vmm_glue::{PassthroughHost, Sbdf};

use super::*;
use crate::fake_config::Access;
use crate::testkit::{self, FakeHost};

fn at(bus: u8, dev: u8) -> Sbdf {
    Sbdf::new(0, bus, dev, 0).unwrap()
}

#[test]
fn nvme_gets_a_function_level_reset() {
    let fx = testkit::nvme();
    let mut host = fx.host();
    assert_eq!(reset(&mut host, fx.info.sbdf, None), Ok(ResetMethod::Flr));
    // Device Control with Initiate FLR, Device Status written as zero.
    assert_eq!(host.function(fx.info.sbdf).writes(), [(0x88, 0x0000_a810)]);
    assert_eq!(host.delays, [FLR_WAIT_US]);
}

#[test]
fn flr_waits_for_pending_transactions_then_resets_anyway() {
    let fx = testkit::nvme();
    let mut host = fx.host();
    host.function_mut(fx.info.sbdf)
        .regs
        .get_mut(&0x88)
        .unwrap()
        .value |= 0x0020 << 16;
    assert_eq!(reset(&mut host, fx.info.sbdf, None), Ok(ResetMethod::Flr));
    assert_eq!(
        host.delays,
        [
            POLL_STEP_US,
            POLL_STEP_US,
            POLL_STEP_US,
            POLL_STEP_US,
            FLR_WAIT_US
        ]
    );
    // The pending bit (write-1-to-clear) was not cleared by the write.
    assert_eq!(host.function(fx.info.sbdf).peek(0x88) >> 16, 0x0020);
}

#[test]
fn e1000e_without_flr_gets_a_d3hot_cycle() {
    let fx = testkit::e1000e();
    let mut host = fx.host();
    assert_eq!(
        reset(&mut host, fx.info.sbdf, None),
        Ok(ResetMethod::PmD3hot)
    );
    assert_eq!(host.function(fx.info.sbdf).writes(), [(0xcc, 3), (0xcc, 0)]);
    assert_eq!(host.delays, [10_000, 10_000]);
}

#[test]
fn flr_is_preferred_over_pm_and_bus_reset() {
    let fx = testkit::synthetic();
    let mut host = fx.host();
    host.add_function(testkit::bridge().config);
    let bridge = Some(testkit::bridge_sbdf());
    assert_eq!(reset(&mut host, fx.info.sbdf, bridge), Ok(ResetMethod::Flr));
}

#[test]
fn edu_alone_below_a_bridge_gets_a_secondary_bus_reset() {
    let fx = testkit::edu().at(at(1, 0));
    let mut host = fx.host();
    let br = testkit::bridge();
    host.add_function(br.config.clone());
    let bridge = testkit::bridge_sbdf();
    assert_eq!(
        reset(&mut host, fx.info.sbdf, Some(bridge)),
        Ok(ResetMethod::SecondaryBus { bridge })
    );
    let before = br.config.peek(0x3c);
    assert_eq!(
        host.function(bridge).writes(),
        [(0x3c, before | 0x0040_0000), (0x3c, before)]
    );
    assert_eq!(host.function(bridge).peek(0x3c), before, "released");
    assert_eq!(host.delays, [SBR_ASSERT_US, SBR_SETTLE_US]);
    assert!(host.function(fx.info.sbdf).writes().is_empty());
}

#[test]
fn edu_not_alone_cannot_be_reset_and_the_error_says_what_to_do() {
    let fx = testkit::edu();
    let mut host = fx.host();
    let err = reset(&mut host, fx.info.sbdf, None).unwrap_err();
    assert_eq!(err.reason, NoResetReason::NoMethod { has_pm: false });
    let text = format!("{err}");
    assert!(
        text.starts_with("pciback: 0000:00:03.0 cannot be reset"),
        "{text}"
    );
    assert!(text.contains("alone below a bridge"), "{text}");
    assert!(host.function(fx.info.sbdf).writes().is_empty());
    assert!(host.delays.is_empty());
}

#[test]
fn no_soft_reset_rules_out_the_pm_cycle() {
    let mut fx = testkit::nvme();
    // Without FLR, nvme has only PM with No_Soft_Reset set.
    fx.config.regs.get_mut(&0x84).unwrap().value = 0x0000_8000;
    let mut host = fx.host();
    let err = reset(&mut host, fx.info.sbdf, None).unwrap_err();
    assert_eq!(err.reason, NoResetReason::NoMethod { has_pm: true });
    assert!(format!("{err}").contains("No_Soft_Reset"));
}

#[test]
fn bus_reset_needs_a_bridge() {
    let fx = testkit::edu();
    let mut host = fx.host();
    let other = testkit::edu().at(at(0, 4));
    host.add_function(other.config);
    let err = reset(&mut host, fx.info.sbdf, Some(at(0, 4))).unwrap_err();
    assert_eq!(err.reason, NoResetReason::NotABridge { bridge: at(0, 4) });
    assert!(host.function(at(0, 4)).writes().is_empty());
}

#[test]
fn nothing_answering_is_no_response() {
    let mut host = FakeHost::new();
    let err = reset(&mut host, at(0, 5), None).unwrap_err();
    assert_eq!(err.reason, NoResetReason::NoResponse);
    assert!(format!("{err}").contains("0000:00:05.0"));
}

#[test]
fn choose_does_not_touch_the_function() {
    let fx = testkit::e1000e();
    let mut host = fx.host();
    assert_eq!(
        choose(host.config(), fx.info.sbdf, None),
        Ok(ResetMethod::PmD3hot)
    );
    assert!(host.function(fx.info.sbdf).writes().is_empty());
}

#[test]
fn restore_puts_back_bars_command_and_interrupt_registers() {
    let fx = testkit::e1000e();
    let s = fx.info.sbdf;
    let mut host = fx.host();
    {
        let cfg = host.config();
        cfg.write32(s, 0x0c, 0x0000_0010);
        cfg.write32(s, 0xd4, 0xfee0_0000);
        cfg.write32(s, 0xdc, 0x0041);
        cfg.write32(s, 0xd0, 0x0081_e005);
        cfg.write_command(s, 0x0406);
    }
    let saved = save(host.config(), s);
    assert_eq!(saved.sbdf(), s);
    assert_eq!(saved.header(0x10), 0xfeb8_0000);
    // What a reset does.
    for (off, v) in [
        (0x04, 0x0010_0000),
        (0x0c, 0),
        (0x10, 0),
        (0x1c, 0),
        (0xd0, 0x0080_e005),
    ] {
        host.function_mut(s).regs.get_mut(&off).unwrap().value = v;
    }
    host.function_mut(s).regs.get_mut(&0xd4).unwrap().value = 0;
    host.function_mut(s).log.clear();
    restore(host.config(), &saved);
    let f = host.function(s);
    assert_eq!(f.peek(0x10), 0xfeb8_0000);
    assert_eq!(f.peek(0x1c), 0xfebd_0000);
    assert_eq!(f.peek(0x0c) & 0xff, 0x10);
    assert_eq!(f.peek(0x04) & 0xffff, 0x0406);
    assert_eq!(f.peek(0xd4), 0xfee0_0000);
    assert_eq!(f.peek(0xd0) >> 16, 0x0081);
    let order: alloc::vec::Vec<u16> = f.writes().iter().map(|&(o, _)| o).collect();
    let pos = |o| order.iter().position(|&x| x == o).unwrap();
    assert!(pos(0x10) < pos(0x04), "BARs before the command register");
    assert!(pos(0x04) == order.len() - 1, "the command register last");
    assert!(pos(0xd4) < pos(0xd0), "MSI address before its control word");
    assert!(pos(0x10) < pos(0xd0), "MSI after the header");
    assert!(pos(0xcc) < pos(0x10), "power state before the header");
    // Status written as zero; BIST never started.
    for a in &f.log {
        if let Access::Write {
            offset: 0x04,
            value,
        } = *a
        {
            assert_eq!(value >> 16, 0);
        }
        if let Access::Write {
            offset: 0x0c,
            value,
        } = *a
        {
            assert_eq!(value >> 24 & 0x40, 0);
        }
    }
}

#[test]
fn restoring_a_bridge_never_holds_its_bus_in_reset() {
    let fx = testkit::bridge();
    let s = fx.info.sbdf;
    let mut host = fx.host();
    host.function_mut(s).regs.get_mut(&0x3c).unwrap().value |= 0x0040_0000;
    let saved = save(host.config(), s);
    restore(host.config(), &saved);
    assert_eq!(host.function(s).peek(0x3c) & 0x0040_0000, 0);
}

#[test]
fn save_captures_pcie_and_msix_control() {
    let fx = testkit::nvme();
    let s = fx.info.sbdf;
    let mut host = fx.host();
    let saved = save(host.config(), s);
    host.function_mut(s).regs.get_mut(&0x88).unwrap().value = 0;
    host.function_mut(s).regs.get_mut(&0x40).unwrap().value = 0x8040_8011;
    restore(host.config(), &saved);
    assert_eq!(host.function(s).peek(0x88) & 0xffff, 0x2810);
    assert_eq!(host.function(s).peek(0x40) >> 16, 0x4040);
}
