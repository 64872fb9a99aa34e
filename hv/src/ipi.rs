//! Interprocessor interrupts between the vCPUs of one domain, as a local
//! APIC's ICR sends them (Intel SDM vol. 3 ch. 11.6, 9.4): which vCPUs an
//! ICR value names, what it does to each, and the real-mode state a
//! STARTUP IPI starts a vCPU in. How a Linux PVH guest starts its
//! secondary CPUs: INIT, INIT de-assert, then two STARTUPs whose vector is
//! the page of its real-mode trampoline.
//!
//! The semantics are Xen's (`vlapic_ipi`, `vlapic_init_sipi_one`,
//! `hvm_vcpu_reset_state`): INIT and STARTUP never reach the sender (even
//! through a shorthand that includes it); INIT resets a vCPU that has a
//! context and takes it down, and does nothing to one without; the INIT
//! de-assert (level-triggered, level 0) does nothing; a STARTUP starts a
//! vCPU that has no context and is ignored by one that has (a running
//! vCPU cannot be restarted by a stray STARTUP). Fixed interrupts become
//! pending in every target's APIC (the sender's own part is
//! `VLapic::send_ipi`'s), but for illegal vectors (below 16), which are
//! the sender's error and go nowhere. Lowest-priority, SMI, NMI and the remote read
//! are dropped: Linux sends its reschedule and call-function IPIs through
//! event channels on a PVH domain.

use crate::vlapic::VLapic;
use crate::xenabi::vcpu_ctx::{Seg, Start};

/// ICR delivery modes (bits 10:8).
const MODE_FIXED: u64 = 0;
const MODE_INIT: u64 = 5;
const MODE_STARTUP: u64 = 6;
/// ICR bit 11: logical destination; bit 14: level asserted; bit 15:
/// level-triggered.
const DEST_LOGICAL: u64 = 1 << 11;
const LEVEL_ASSERT: u64 = 1 << 14;
const LEVEL_TRIGGER: u64 = 1 << 15;

/// What an ICR write does to one of its targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// A fixed interrupt: the vector becomes pending in the target's APIC
    /// (and wakes it if it waits for an interrupt).
    Raise(u8),
    /// INIT: the target loses its context and goes down until a STARTUP.
    Reset,
    /// STARTUP: the target starts in real mode at `vector << 12`.
    Start(u8),
}

/// What ICR value `icr` (destination in bits 63:32, 8 bits in xAPIC mode)
/// written by vCPU `sender` does to vCPU `k`, whose APIC is `target` and
/// which has a context or not (`initialised`); `None`: nothing (not named,
/// the sender itself, or nothing to do).
pub fn to(icr: u64, sender: u32, k: u32, initialised: bool, target: &VLapic) -> Option<Action> {
    if k == sender || !names(icr, sender, k, target) {
        return None;
    }
    action(icr, initialised)
}

/// Whether `icr` sent by vCPU `sender` names vCPU `k`, whose APIC is
/// `target`.
fn names(icr: u64, sender: u32, k: u32, target: &VLapic) -> bool {
    match (icr >> 18) & 3 {
        0 => target.accepts((icr >> 32) as u32, icr & DEST_LOGICAL != 0),
        1 => k == sender,
        2 => true,
        _ => k != sender,
    }
}

/// What `icr` does to a target other than its sender that has a context
/// (`initialised`) or not; `None`: nothing.
fn action(icr: u64, initialised: bool) -> Option<Action> {
    let vector = icr as u8;
    match (icr >> 8) & 7 {
        // An illegal vector is the sender's error (its ESR): sent nowhere.
        MODE_FIXED if vector < 16 => None,
        MODE_FIXED => Some(Action::Raise(vector)),
        MODE_INIT if icr & (LEVEL_TRIGGER | LEVEL_ASSERT) == LEVEL_TRIGGER => None,
        MODE_INIT => initialised.then_some(Action::Reset),
        MODE_STARTUP => (!initialised).then_some(Action::Start(vector)),
        _ => None,
    }
}

/// The state a STARTUP IPI with `vector` starts a vCPU in (Xen's
/// `hvm_vcpu_reset_state`; SDM vol. 3 table 10-1 but for CR0's cache
/// bits): real mode, CS base `vector << 12` (its selector is the base / 16)
/// and IP 0, the other segments base 0 with 64 KiB limits, CR0 with only
/// ET, CR3, CR4 and EFER clear, interrupts off, general registers zero.
pub fn startup_state(vector: u8) -> Start {
    let seg = |base, attr| Seg {
        base,
        limit: 0xffff,
        attr,
    };
    let data = seg(0, 0x93);
    Start {
        rflags: 2,
        cr0: 1 << 4,
        cs: seg(u64::from(vector) << 12, 0x9b),
        ds: data,
        ss: data,
        es: data,
        tr: seg(0, 0x8b),
        ..Start::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INIT_ASSERT: u64 = (5 << 8) | LEVEL_TRIGGER | LEVEL_ASSERT;
    const INIT_DEASSERT: u64 = (5 << 8) | LEVEL_TRIGGER;
    const ALL_BUT_SELF: u64 = 3 << 18;

    fn apic(id: u32, x2apic: bool) -> VLapic {
        let mut a = VLapic::new(id);
        if x2apic {
            a.set_base(a.base() | (1 << 10)).unwrap();
        }
        a
    }

    fn sipi(vector: u8) -> u64 {
        (6 << 8) | u64::from(vector)
    }

    #[test]
    fn linux_bring_up_sequence_resets_nothing_then_starts_at_the_trampoline() {
        // vCPU 1 was never started: INIT finds no context, the de-assert
        // does nothing, the first STARTUP starts it, the second finds it
        // running.
        assert_eq!(action(INIT_ASSERT, false), None);
        assert_eq!(action(INIT_DEASSERT, false), None);
        assert_eq!(action(sipi(0x9a), false), Some(Action::Start(0x9a)));
        assert_eq!(action(sipi(0x9a), true), None);
    }

    #[test]
    fn init_resets_a_running_vcpu_and_the_deassert_does_not() {
        assert_eq!(action(INIT_ASSERT, true), Some(Action::Reset));
        assert_eq!(action((5 << 8) | 0x12, true), Some(Action::Reset)); // edge
        assert_eq!(action(INIT_DEASSERT, true), None);
    }

    #[test]
    fn startup_to_a_running_vcpu_is_ignored() {
        for v in [0, 0x9a, 0xff] {
            assert_eq!(action(sipi(v), true), None);
        }
    }

    #[test]
    fn fixed_interrupts_raise_and_other_modes_are_dropped() {
        assert_eq!(action(0xf3, true), Some(Action::Raise(0xf3)));
        assert_eq!(action(0xf3, false), Some(Action::Raise(0xf3)));
        assert_eq!(action(0x0f, true), None, "illegal: the sender's error");
        for mode in [1, 2, 3, 4, 7] {
            assert_eq!(action((mode << 8) | 0x40, true), None, "mode {mode}");
        }
    }

    #[test]
    fn physical_destinations_name_one_id_or_the_broadcast() {
        let (x1, x2) = (apic(1, false), apic(1, true));
        assert!(names(1 << 32, 0, 1, &x1));
        assert!(!names(2 << 32, 0, 1, &x1));
        assert!(names(0xff << 32, 0, 1, &x1));
        assert!(names(1 << 32, 0, 1, &x2));
        assert!(names(0xffff_ffff << 32, 0, 1, &x2));
        // In x2APIC mode 0xff is an id like any other: nobody here.
        assert!(!names(0xff << 32, 0, 1, &x2));
        // An x2APIC sender's wider ids are not cut to an xAPIC's 8 bits.
        assert!(!names(0x101 << 32, 0, 1, &x1));
        assert!(!names(0x1ff << 32, 0, 1, &x1));
    }

    #[test]
    fn ids_no_vcpu_has_name_nobody() {
        for dest in [8u64, 0x20, 0xfe, 0x1_0000, 0xffff_fffe] {
            for k in 0..8 {
                assert!(!names(dest << 32, 0, k, &apic(k, true)), "{dest:#x} {k}");
            }
        }
    }

    #[test]
    fn shorthands_name_self_all_or_all_but_the_sender() {
        let a = apic(2, true);
        assert!(names(1 << 18, 2, 2, &a));
        assert!(!names(1 << 18, 0, 2, &a));
        assert!(names(2 << 18, 0, 2, &a));
        assert!(names(2 << 18, 2, 2, &a));
        assert!(names(ALL_BUT_SELF, 0, 2, &a));
        assert!(!names(ALL_BUT_SELF, 2, 2, &a));
    }

    #[test]
    fn logical_destinations_follow_the_x2apic_cluster_and_the_xapic_ldr() {
        // x2APIC: vCPU 0x13 is bit 3 of cluster 1.
        let a = apic(0x13, true);
        assert!(names((0x1_0008 << 32) | DEST_LOGICAL, 0, 0x13, &a));
        assert!(!names((0x0_0008 << 32) | DEST_LOGICAL, 0, 0x13, &a));
        assert!(!names((0x1_0004 << 32) | DEST_LOGICAL, 0, 0x13, &a));
        // xAPIC flat model: the LDR's top byte is a member mask.
        let mut b = apic(1, false);
        b.mmio_write(0xd0, 0x0200_0000);
        assert!(names((0x02 << 32) | DEST_LOGICAL, 0, 1, &b));
        assert!(names((0x06 << 32) | DEST_LOGICAL, 0, 1, &b));
        assert!(!names((0x04 << 32) | DEST_LOGICAL, 0, 1, &b));
        // Cluster model (DFR 0x0fffffff): cluster in the high nibble.
        b.mmio_write(0xe0, 0);
        b.mmio_write(0xd0, 0x1200_0000);
        assert!(names((0x12 << 32) | DEST_LOGICAL, 0, 1, &b));
        assert!(!names((0x22 << 32) | DEST_LOGICAL, 0, 1, &b));
    }

    #[test]
    fn init_and_startup_never_reach_the_sender_even_through_all_including_self() {
        let a = apic(0, true);
        for icr in [INIT_ASSERT, sipi(0x10), 0x40] {
            assert_eq!(to(icr | (1 << 18), 0, 0, true, &a), None); // self
            assert_eq!(to(icr | (2 << 18), 0, 0, true, &a), None); // all
            assert_eq!(to(icr, 0, 0, true, &a), None); // own id
        }
        // The others are named by all-including-self.
        let b = apic(1, true);
        assert_eq!(
            to(INIT_ASSERT | (2 << 18), 0, 1, true, &b),
            Some(Action::Reset)
        );
    }

    #[test]
    fn linux_sequence_through_to_starts_vcpu_1_and_leaves_vcpu_2_alone() {
        let (b, c) = (apic(1, true), apic(2, true));
        let dest1 = 1u64 << 32;
        assert_eq!(to(INIT_ASSERT | dest1, 0, 1, false, &b), None);
        assert_eq!(
            to(sipi(0x99) | dest1, 0, 1, false, &b),
            Some(Action::Start(0x99))
        );
        assert_eq!(to(sipi(0x99) | dest1, 0, 2, false, &c), None);
        assert_eq!(to(sipi(0x99) | dest1, 0, 1, true, &b), None);
    }

    /// A vCPU as the domain keeps it, for the flood below.
    struct Model {
        apic: VLapic,
        initialised: bool,
        started: u32,
    }

    #[test]
    fn a_flood_of_arbitrary_icr_values_keeps_every_rule() {
        let mut vcpus: Vec<Model> = (0..8)
            .map(|k| Model {
                apic: apic(k, k % 2 == 0),
                initialised: k == 0,
                started: 0,
            })
            .collect();
        // xorshift: every mode, shorthand, destination and vector.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let sender = i % 8;
            for k in 0..8u32 {
                let m = &mut vcpus[k as usize];
                match to(x, sender, k, m.initialised, &m.apic) {
                    None => {}
                    Some(act) => {
                        assert_ne!(k, sender);
                        match act {
                            Action::Raise(v) => m.apic.raise(v),
                            Action::Reset => {
                                assert!(m.initialised);
                                m.initialised = false;
                                m.apic.init();
                            }
                            Action::Start(_) => {
                                assert!(!m.initialised, "a STARTUP restarted a running vCPU");
                                m.initialised = true;
                                m.started += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(vcpus.iter().skip(1).all(|m| m.started > 0));
    }

    #[test]
    fn startup_state_is_real_mode_at_the_vector_page() {
        let s = startup_state(0x9a);
        assert_eq!(s.cs.base, 0x9_a000);
        assert_eq!((s.cs.limit, s.cs.attr), (0xffff, 0x9b));
        assert_eq!(s.rip, 0);
        assert_eq!(s.cr0 & 1, 0, "protection off");
        assert_eq!((s.cr0, s.cr3, s.cr4, s.efer), (0x10, 0, 0, 0));
        assert_eq!(s.rflags, 2, "interrupts off");
        for d in [s.ds, s.es, s.ss] {
            assert_eq!((d.base, d.limit, d.attr), (0, 0xffff, 0x93));
        }
        assert_eq!(s.gprs, [0; 8]);
        assert_eq!(startup_state(0xff).cs.base, 0xf_f000);
    }
}
