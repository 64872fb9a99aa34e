//! Each refusal, seizing, and the order of the steps at assignment and
//! give-back, against the recording mock.

use super::mock::{sbdf, Call, Mock};
use super::*;

const WHO: Who<'static> = Who {
    dom: 1,
    name: "guest",
};

fn req(s: Sbdf) -> PciAssignment {
    PciAssignment {
        sbdf: s,
        permissive: false,
        msitranslate: false,
        seize: false,
        power_mgmt: false,
        rdm_policy_strict: None,
    }
}

fn seize(s: Sbdf) -> PciAssignment {
    PciAssignment {
        seize: true,
        ..req(s)
    }
}

/// A machine with a remapped, translated function at 00:03.0, hidden at
/// boot, and a pool over it; the record of calls starts after the hide.
fn machine(insecure: bool) -> (Mock, Pool<Sbdf>, Sbdf) {
    let mut m = Mock::default();
    let s = m.add(3, true, true, false);
    let mut pool = Pool::new(insecure);
    pool.hide(&mut m, s, HideMatch::Direct(0)).unwrap();
    m.calls.clear();
    (m, pool, s)
}

/// What a refusal must leave: the function where it was, nothing
/// attached, no line set up, no reset.
fn untouched(m: &Mock, pool: &Pool<Sbdf>, s: Sbdf, owner: Option<Owner>) {
    assert_eq!(pool.registry().owner(s).copied(), owner);
    assert!(m.attached.is_empty(), "attached: {:?}", m.attached);
    assert!(m.lines.is_empty());
    assert!(!m.calls.contains(&Call::Reset(s)));
}

#[test]
fn hiding_keeps_the_host_config_quiesces_saves_the_golden_one_resets_and_blocks() {
    let mut m = Mock::default();
    let s = m.add(3, true, true, false);
    let mut pool = Pool::new(false);
    let r = pool.hide(&mut m, s, HideMatch::Direct(0)).unwrap();
    assert_eq!(r.command_before, 0b110, "it was on when hidden");
    assert_eq!(
        m.calls,
        [
            Call::KeepHost(s),
            Call::Quiesce(s),
            Call::Save(s),
            Call::Reset(s),
            Call::Restore(s),
            Call::Detach(s),
        ]
    );
    assert_eq!(m.fns[&s].host, Some((true, true)));
    assert_eq!(m.fns[&s].golden, Some((false, false)));
    assert!(m.quiet(s));
    assert_eq!(pool.registry().owner(s), Some(&Owner::Pciback));
}

#[test]
fn a_function_the_machine_does_not_have_is_refused() {
    let (mut m, mut pool, _) = machine(false);
    let r = pool.assign(&mut m, WHO, &req(sbdf(9)));
    assert_eq!(r, Err(Refusal::NoSuchFunction));
    assert!(m.attached.is_empty());
    assert!(m.calls.is_empty(), "nothing done: {:?}", m.calls);
}

#[test]
fn no_interrupt_remapping_is_refused_unless_insecure() {
    for insecure in [false, true] {
        let (mut m, mut pool, s) = machine(insecure);
        m.fns.get_mut(&s).unwrap().remaps = false;
        let r = pool.assign(&mut m, WHO, &req(s));
        if insecure {
            assert!(r.is_ok(), "{r:?}");
            assert_eq!(m.attached.get(&s), Some(&1));
        } else {
            assert_eq!(r, Err(Refusal::NoRemapping));
            untouched(&m, &pool, s, Some(Owner::Pciback));
        }
    }
}

#[test]
fn no_dma_translation_is_refused_unless_insecure_and_released_again() {
    for insecure in [false, true] {
        let (mut m, mut pool, s) = machine(insecure);
        m.fns.get_mut(&s).unwrap().covered = false;
        let r = pool.assign(&mut m, WHO, &req(s));
        if insecure {
            assert_eq!(
                r,
                Ok(Grant {
                    sbdf: s,
                    intx_pirq: 19
                })
            );
            assert_eq!(pool.registry().owner(s), Some(&Owner::Domain(1)));
            assert!(m.attached.is_empty(), "nothing to attach it to");
        } else {
            assert_eq!(r, Err(Refusal::NoDmaTranslation));
            untouched(&m, &pool, s, Some(Owner::Pciback));
        }
    }
}

#[test]
fn a_bridge_is_refused_even_with_seize() {
    let (mut m, mut pool, _) = machine(true);
    let b = m.add(6, true, true, true);
    let r = pool.assign(&mut m, WHO, &seize(b));
    assert_eq!(r, Err(Refusal::Bridge("bridge/PCI")));
    untouched(&m, &pool, b, None);
    assert!(m.fns[&b].bus_master, "a bridge keeps forwarding");
    assert_eq!(
        alloc::format!("{}", r.unwrap_err()),
        "it is a bridge (bridge/PCI), part of the machine itself; list the devices behind it instead"
    );
}

#[test]
fn a_function_not_hidden_is_refused_without_seize() {
    let (mut m, mut pool, _) = machine(false);
    let s = m.add(4, true, true, false);
    let r = pool.assign(&mut m, WHO, &req(s));
    assert_eq!(r, Err(Refusal::Registry(AssignError::NotHidden)));
    untouched(&m, &pool, s, None);
    assert!(m.fns[&s].bus_master, "the host's function is left alone");
}

#[test]
fn a_function_another_domain_owns_is_refused() {
    let (mut m, mut pool, s) = machine(false);
    pool.assign(&mut m, WHO, &req(s)).unwrap();
    let calls = m.calls.len();
    let other = Who {
        dom: 2,
        name: "other",
    };
    let r = pool.assign(&mut m, other, &req(s));
    assert_eq!(r, Err(Refusal::Registry(AssignError::Owned(1))));
    assert_eq!(pool.registry().owner(s), Some(&Owner::Domain(1)));
    assert_eq!(m.attached.get(&s), Some(&1), "still dom1's");
    assert_eq!(
        m.calls.len(),
        calls,
        "nothing done: {:?}",
        &m.calls[calls..]
    );
}

#[test]
fn a_failed_iommu_attach_is_rolled_back() {
    let (mut m, mut pool, s) = machine(false);
    m.fail_attach = true;
    let r = pool.assign(&mut m, WHO, &req(s));
    assert!(matches!(r, Err(Refusal::Attach(_))), "{r:?}");
    untouched(&m, &pool, s, Some(Owner::Pciback));
    // The pool can give it to someone afterwards.
    assert!(pool.assign(&mut m, WHO, &req(s)).is_ok());
}

#[test]
fn assignment_attaches_then_resets_to_the_golden_config_then_sets_up_intx() {
    let (mut m, mut pool, s) = machine(false);
    let g = pool.assign(&mut m, WHO, &req(s)).unwrap();
    assert_eq!(
        g,
        Grant {
            sbdf: s,
            intx_pirq: 19
        }
    );
    assert_eq!(
        m.calls,
        [
            Call::Attach(1, s),
            Call::Reset(s),
            Call::Restore(s),
            Call::IntxSetup(1, s)
        ]
    );
    assert_eq!(pool.line(1, 19), Some(s));
    assert_eq!(pool.line(2, 19), None, "another domain's pirq 19 is not it");
}

#[test]
fn a_function_without_intx_is_assigned_with_pirq_0() {
    let (mut m, mut pool, s) = machine(false);
    m.fail_intx = true;
    let g = pool.assign(&mut m, WHO, &req(s)).unwrap();
    assert_eq!(g.intx_pirq, 0);
    assert_eq!(pool.line(1, 19), None);
}

#[test]
fn seize_quiesces_hides_and_saves_before_assigning() {
    let (mut m, mut pool, _) = machine(false);
    let s = m.add(4, true, true, false);
    let g = pool.assign(&mut m, WHO, &seize(s));
    assert!(g.is_ok(), "{g:?}");
    let rec = pool.registry().record(s).unwrap();
    assert_eq!(rec.matched, HideMatch::Seized);
    assert_eq!(rec.owner, Owner::Domain(1));
    assert_eq!(rec.quiesce.command_before, 0b110, "it was on when seized");
    let q = m.at(&Call::Quiesce(s)).unwrap();
    let save = m.at(&Call::Save(s)).unwrap();
    assert!(q < save && save < m.at(&Call::Attach(1, s)).unwrap());
    assert_eq!(
        m.fns[&s].golden,
        Some((false, false)),
        "the golden config is the quiet one"
    );
}

#[test]
fn seize_of_a_hidden_function_does_not_hide_it_again() {
    let (mut m, mut pool, s) = machine(false);
    pool.assign(&mut m, WHO, &seize(s)).unwrap();
    assert_eq!(
        pool.registry().record(s).unwrap().matched,
        HideMatch::Direct(0)
    );
    assert_eq!(m.at(&Call::Quiesce(s)), None);
}

#[test]
fn give_back_frees_the_line_detaches_resets_and_quiesces_before_the_pool_has_it() {
    let (mut m, mut pool, s) = machine(false);
    pool.assign(&mut m, WHO, &req(s)).unwrap();
    m.enable(s);
    let start = m.calls.len();
    pool.give_back(&mut m, WHO, &[s]);
    assert_eq!(
        m.calls[start..],
        [
            Call::FreeRoutes(1),
            Call::IntxTeardown(s),
            Call::Detach(s),
            Call::Reset(s),
            Call::Restore(s),
            Call::Quiesce(s),
            Call::RemoveDomain(1),
        ]
    );
    assert_eq!(pool.registry().owner(s), Some(&Owner::Pciback));
    assert!(m.quiet(s));
    assert!(m.attached.is_empty());
    assert!(m.lines.is_empty());
    assert_eq!(pool.line(1, 19), None);
}

#[test]
fn a_function_with_no_reset_is_still_quiet_when_given_back() {
    let (mut m, mut pool, s) = machine(false);
    pool.assign(&mut m, WHO, &req(s)).unwrap();
    m.enable(s);
    m.fail_reset = true;
    pool.give_back(&mut m, WHO, &[s]);
    assert!(m.quiet(s));
    assert_eq!(pool.registry().owner(s), Some(&Owner::Pciback));
}

#[test]
fn only_the_owner_gives_a_function_back() {
    let (mut m, mut pool, s) = machine(false);
    pool.assign(&mut m, WHO, &req(s)).unwrap();
    m.enable(s);
    let other = Who {
        dom: 2,
        name: "other",
    };
    pool.give_back(&mut m, other, &[s]);
    assert_eq!(pool.registry().owner(s), Some(&Owner::Domain(1)));
    assert_eq!(m.attached.get(&s), Some(&1));
    assert!(m.fns[&s].bus_master, "dom1's device keeps running");
    assert_eq!(pool.line(1, 19), Some(s));
}

#[test]
fn hide_refuses_what_is_missing_a_bridge_or_hidden_already_and_touches_nothing() {
    let (mut m, mut pool, s) = machine(false);
    let b = m.add(6, true, true, true);
    assert_eq!(
        pool.hide(&mut m, sbdf(9), HideMatch::Direct(0)),
        Err(HideError::NoSuchFunction)
    );
    assert_eq!(
        pool.hide(&mut m, b, HideMatch::Direct(0)),
        Err(HideError::Bridge("bridge/PCI"))
    );
    assert_eq!(
        pool.hide(&mut m, s, HideMatch::Direct(0)),
        Err(HideError::AlreadyHidden(Owner::Pciback))
    );
    pool.assign(&mut m, WHO, &req(s)).unwrap();
    m.calls.clear();
    assert_eq!(
        pool.hide(&mut m, s, HideMatch::Direct(0)),
        Err(HideError::AlreadyHidden(Owner::Domain(1)))
    );
    assert!(m.calls.is_empty(), "nothing done: {:?}", m.calls);
    assert!(m.fns[&b].bus_master, "the bridge keeps forwarding");
    assert_eq!(pool.registry().owner(b), None);
}

#[test]
fn hide_refuses_what_the_hypervisor_uses() {
    for u in [HostUse::Console, HostUse::Iommu] {
        let (mut m, mut pool, _) = machine(false);
        let t = m.add(4, true, true, false);
        m.fns.get_mut(&t).unwrap().host_use = Some(u);
        let r = pool.hide(&mut m, t, HideMatch::Direct(0));
        assert_eq!(r, Err(HideError::HostUse(u)));
        assert!(m.calls.is_empty(), "nothing done: {:?}", m.calls);
        assert!(m.fns[&t].bus_master, "the host keeps it running");
        assert_eq!(pool.registry().owner(t), None);
        // seize=1 cannot take it either.
        let r = pool.assign(&mut m, WHO, &seize(t));
        assert_eq!(r, Err(Refusal::Hide(HideError::HostUse(u))));
        untouched(&m, &pool, t, None);
    }
}

#[test]
fn hide_refuses_a_function_the_iommu_cannot_keep_apart_from_one_in_use() {
    let (mut m, mut pool, s) = machine(false);
    let console = m.add(4, true, true, false);
    m.fns.get_mut(&console).unwrap().host_use = Some(HostUse::Console);
    let t = m.add(5, true, true, false);
    let u = m.add(7, true, true, false);
    m.sharers.insert(t, alloc::vec![console]);
    m.sharers.insert(u, alloc::vec![s]);
    assert_eq!(
        pool.hide(&mut m, t, HideMatch::Direct(0)),
        Err(HideError::Shares(console, Err(HostUse::Console)))
    );
    // Sharing with a hidden function no domain has is allowed...
    let hidden_peer = m.add(8, true, true, false);
    m.sharers.insert(hidden_peer, alloc::vec![s]);
    assert!(pool.hide(&mut m, hidden_peer, HideMatch::Direct(0)).is_ok());
    // ...with one a domain has, not.
    pool.assign(&mut m, WHO, &req(s)).unwrap();
    m.calls.clear();
    assert_eq!(
        pool.hide(&mut m, u, HideMatch::Direct(0)),
        Err(HideError::Shares(s, Ok(1)))
    );
    assert!(m.calls.is_empty(), "nothing done: {:?}", m.calls);
    assert!(m.fns[&t].bus_master && m.fns[&u].bus_master);
    assert_eq!(
        alloc::format!("{}", HideError::Shares(s, Ok(1))),
        "the IOMMU cannot tell its requests from those of 0000:00:03.0 (one requester ID, or one device without ACS), and dom1 has 0000:00:03.0; it stays the host's"
    );
}

#[test]
fn unhide_takes_only_a_pooled_function_and_gives_the_host_its_config_back() {
    let (mut m, mut pool, s) = machine(false);
    let t = m.add(4, true, true, false);
    pool.hide(&mut m, t, HideMatch::Direct(1)).unwrap();
    assert!(m.quiet(t));
    pool.assign(&mut m, WHO, &req(t)).unwrap();
    m.enable(t);
    m.calls.clear();
    assert_eq!(pool.unhide(&mut m, t), Err(AssignError::Owned(1)));
    assert_eq!(pool.unhide(&mut m, sbdf(9)), Err(AssignError::NotHidden));
    assert!(m.calls.is_empty(), "nothing done: {:?}", m.calls);
    assert_eq!(pool.registry().owner(t), Some(&Owner::Domain(1)));
    // Back in the pool, then to the host: its config as before hiding.
    pool.give_back(&mut m, WHO, &[t]);
    assert!(m.quiet(t));
    assert_eq!(pool.unhide(&mut m, t), Ok(()));
    assert_eq!(pool.registry().owner(t), None);
    assert_eq!(m.calls.last(), Some(&Call::RestoreHost(t)));
    assert!(
        m.fns[&t].bus_master && m.fns[&t].decode,
        "the host's config is back"
    );
    assert!(m.attached.is_empty(), "the IOMMU still blocks it");
    assert_eq!(pool.unhide(&mut m, t), Err(AssignError::NotHidden));
    // And it can be hidden again.
    assert!(pool.hide(&mut m, t, HideMatch::Direct(1)).is_ok());
    assert!(m.quiet(t));
    let _ = s;
}

#[test]
fn refusals_read_as_the_log_says_them() {
    assert_eq!(
        alloc::format!("{}", Refusal::Registry(AssignError::Owned(2))),
        "it is already assigned to dom2"
    );
    assert_eq!(
        alloc::format!("{}", Refusal::Attach("no IOMMU".into())),
        "its DMA cannot be confined to the domain (no IOMMU)"
    );
    assert_eq!(alloc::format!("{WHO}"), "dom1 (guest)");
}
