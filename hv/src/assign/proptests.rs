//! Property: whatever the order of hide, unhide, domain builds (assign,
//! then the frontend attach), releases and domain deaths, and whichever
//! steps the machine fails, every function has one owner; a function no
//! domain owns is quiet (or, given back to the host, has the host's
//! config again) and reaches no domain's memory; a domain's IOMMU
//! attachments are the functions it owns.

use super::mock::{sbdf, Mock};
use super::*;
use alloc::vec::Vec;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// The machine's functions: (device, interrupts remapped, DMA translated,
/// bridge).
const FNS: [(u8, bool, bool, bool); 6] = [
    (3, true, true, false),
    (4, true, true, false),
    (5, false, true, false),
    (6, true, false, false),
    (7, true, true, true),
    (8, true, true, false),
];

#[derive(Clone, Debug)]
enum Op {
    Hide(usize),
    Unhide(usize),
    /// Domain `dom` is built with the functions in `fns` (a bit each),
    /// `seize=1` on all of them or none; its frontend attach fails when
    /// `attach_fails` (the functions go back).
    Build {
        dom: u16,
        fns: u8,
        seize: bool,
        attach_fails: bool,
    },
    /// The guest's drivers turn its functions on.
    Drive(u16),
    /// One function given back while the domain runs on.
    Release(u16, usize),
    Destroy(u16),
    /// The machine fails from here on: the next IOMMU attach, resets,
    /// INTx setup.
    Fail {
        attach: bool,
        reset: bool,
        intx: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let f = 0..FNS.len();
    let d = 1u16..4;
    prop_oneof![
        f.clone().prop_map(Op::Hide),
        f.clone().prop_map(Op::Unhide),
        (
            d.clone(),
            any::<u8>(),
            any::<bool>(),
            proptest::bool::weighted(0.2)
        )
            .prop_map(|(dom, fns, seize, attach_fails)| Op::Build {
                dom,
                fns,
                seize,
                attach_fails
            }),
        d.clone().prop_map(Op::Drive),
        (d.clone(), f).prop_map(|(d, f)| Op::Release(d, f)),
        d.prop_map(Op::Destroy),
        (
            proptest::bool::weighted(0.3),
            proptest::bool::weighted(0.2),
            proptest::bool::weighted(0.2)
        )
            .prop_map(|(attach, reset, intx)| Op::Fail {
                attach,
                reset,
                intx
            }),
    ]
}

fn who(dom: u16) -> Who<'static> {
    Who { dom, name: "guest" }
}

/// The test's side: what each running domain holds, and which functions
/// were ever in the pool.
#[derive(Default)]
struct World {
    doms: BTreeMap<u16, Vec<Sbdf>>,
    /// Hidden since the host last had them.
    ever_hidden: BTreeSet<Sbdf>,
    /// Given back to the host (and not hidden since).
    given_back: BTreeSet<Sbdf>,
}

fn step(m: &mut Mock, pool: &mut Pool<Sbdf>, w: &mut World, op: &Op) {
    match *op {
        Op::Hide(i) => {
            let s = sbdf(FNS[i].0);
            if pool.hide(m, s, HideMatch::Direct(0)).is_ok() {
                w.ever_hidden.insert(s);
                w.given_back.remove(&s);
            }
        }
        Op::Unhide(i) => {
            let s = sbdf(FNS[i].0);
            if pool.unhide(m, s).is_ok() {
                w.ever_hidden.remove(&s);
                w.given_back.insert(s);
            }
        }
        Op::Build {
            dom,
            fns,
            seize,
            attach_fails,
        } => {
            if w.doms.contains_key(&dom) {
                return;
            }
            let mut got = Vec::new();
            for (i, f) in FNS.iter().enumerate() {
                if fns & 1 << i == 0 {
                    continue;
                }
                let a = PciAssignment {
                    sbdf: sbdf(f.0),
                    permissive: false,
                    msitranslate: false,
                    seize,
                    power_mgmt: false,
                    rdm_policy_strict: None,
                };
                if let Ok(g) = pool.assign(m, who(dom), &a) {
                    got.push(g.sbdf);
                }
                if pool.registry().owner(a.sbdf).is_some() && w.ever_hidden.insert(a.sbdf) {
                    w.given_back.remove(&a.sbdf);
                }
            }
            if attach_fails {
                pool.give_back(m, who(dom), &got);
            } else {
                w.doms.insert(dom, got);
            }
        }
        Op::Drive(dom) => {
            for &s in w.doms.get(&dom).into_iter().flatten() {
                m.enable(s);
            }
        }
        Op::Release(dom, i) => {
            let s = sbdf(FNS[i].0);
            pool.release(m, who(dom), s);
            if let Some(l) = w.doms.get_mut(&dom) {
                l.retain(|&x| x != s);
            }
        }
        Op::Destroy(dom) => {
            if let Some(l) = w.doms.remove(&dom) {
                pool.give_back(m, who(dom), &l);
            }
        }
        Op::Fail {
            attach,
            reset,
            intx,
        } => {
            m.fail_attach = attach;
            m.fail_reset = reset;
            m.fail_intx = intx;
        }
    }
}

fn check(m: &Mock, pool: &Pool<Sbdf>, w: &World) -> Result<(), TestCaseError> {
    for (&s, f) in &m.fns {
        let holders: Vec<u16> = w
            .doms
            .iter()
            .filter(|(_, l)| l.contains(&s))
            .map(|(d, _)| *d)
            .collect();
        let owner = pool.registry().owner(s).copied();
        let attached = m.attached.get(&s).copied();
        match owner {
            Some(Owner::Domain(d)) => {
                prop_assert_eq!(&holders, &[d], "{} owned by dom{}", s, d);
                let want = f.covered.then_some(d);
                prop_assert_eq!(attached, want, "{} of dom{} in the IOMMU", s, d);
            }
            _ => {
                prop_assert!(
                    holders.is_empty(),
                    "{} ({:?}) held by {:?}",
                    s,
                    owner,
                    holders
                );
                prop_assert_eq!(attached, None, "{} ({:?}) still attached", s, owner);
                prop_assert!(
                    !m.lines.contains_key(&s),
                    "{} ({:?}) keeps its line",
                    s,
                    owner
                );
                if owner.is_some() || w.ever_hidden.contains(&s) {
                    prop_assert!(m.quiet(s), "{} ({:?}) not quiet: {:?}", s, owner, f);
                }
                if owner.is_none() && w.given_back.contains(&s) {
                    prop_assert_eq!(
                        Some((f.bus_master, f.decode)),
                        f.host,
                        "{} given back without the host's config",
                        s
                    );
                }
            }
        }
    }
    for (&s, &d) in &m.lines {
        prop_assert_eq!(pool.registry().owner(s), Some(&Owner::Domain(d)));
        prop_assert_eq!(pool.line(d, u32::from(16 + s.dev)), Some(s));
    }
    for (&d, l) in &w.doms {
        let mut want: Vec<Sbdf> = l.iter().copied().filter(|s| m.fns[s].covered).collect();
        want.sort();
        let got: Vec<Sbdf> = m
            .attached
            .iter()
            .filter(|(_, &a)| a == d)
            .map(|(s, _)| *s)
            .collect();
        prop_assert_eq!(got, want, "dom{}'s IOMMU attachments", d);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_function_has_one_owner_and_unowned_ones_are_quiet_and_blocked(
        insecure: bool,
        boot_hidden in 0u8..64,
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let mut m = Mock::default();
        let mut w = World::default();
        let mut pool = Pool::new(insecure);
        for (i, &(dev, remaps, covered, bridge)) in FNS.iter().enumerate() {
            let s = m.add(dev, remaps, covered, bridge);
            // Boot hides through the same step as the shell; a bridge is
            // refused.
            if boot_hidden & 1 << i != 0 {
                let r = pool.hide(&mut m, s, HideMatch::Direct(0));
                prop_assert_eq!(r.is_ok(), !bridge);
                if !bridge {
                    w.ever_hidden.insert(s);
                }
            }
        }
        check(&m, &pool, &w)?;
        for op in &ops {
            step(&mut m, &mut pool, &mut w, op);
            check(&m, &pool, &w).map_err(|e| TestCaseError::fail(format!("after {op:?}: {e}")))?;
        }
    }
}
