use alloc::vec;

use proptest::prelude::*;
use vmm_glue::xen::event_channel::{stat, virq, DOMID_SELF};

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

/// d1 allocates for d2, d2 binds: (d1 port, d2 port).
fn pair(ec: &mut EventChannels) -> (Port, Port) {
    let p1 = ec.alloc_unbound(1, DOMID_SELF, 2).unwrap();
    let p2 = ec.bind_interdomain(2, 1, p1).unwrap();
    ec.take_effects();
    (p1, p2)
}

#[test]
fn errno_values_are_xens() {
    assert_eq!(Errno::Perm.to_ret(), -1);
    assert_eq!(Errno::NoEnt.to_ret(), -2);
    assert_eq!(Errno::Srch.to_ret(), -3);
    assert_eq!(Errno::Busy.value(), 16);
    assert_eq!(Errno::Exist.value(), 17);
    assert_eq!(Errno::Inval.value(), 22);
    assert_eq!(Errno::NoSpc.value(), 28);
    assert_eq!(Errno::NoSys.to_ret(), -38);
    assert_eq!(Errno::NxIo.value(), 6);
    assert_eq!(Errno::OpNotSupp.value(), 95);
}

#[test]
fn add_domain_twice_is_eexist() {
    let mut ec = two();
    assert_eq!(ec.add_domain(1, CFG), Err(Errno::Exist));
}

#[test]
fn alloc_unbound_never_hands_out_port_zero() {
    let mut ec = two();
    assert_eq!(ec.alloc_unbound(1, DOMID_SELF, 2), Ok(1));
    assert_eq!(ec.alloc_unbound(1, 1, 2), Ok(2));
    assert_eq!(
        ec.channel(1, 1).unwrap().state,
        PortState::Unbound { remote: 2 }
    );
}

#[test]
fn alloc_unbound_remote_self_means_caller() {
    let mut ec = two();
    let p = ec.alloc_unbound(1, DOMID_SELF, DOMID_SELF).unwrap();
    assert_eq!(
        ec.channel(1, p).unwrap().state,
        PortState::Unbound { remote: 1 }
    );
}

#[test]
fn alloc_unbound_for_another_domain_needs_privilege() {
    let mut ec = two();
    assert_eq!(ec.alloc_unbound(1, 2, 1), Err(Errno::Perm));
    ec.add_domain(
        0,
        DomainConfig {
            privileged: true,
            ..CFG
        },
    )
    .unwrap();
    let p = ec.alloc_unbound(0, 2, 1).unwrap();
    assert_eq!(
        ec.channel(2, p).unwrap().state,
        PortState::Unbound { remote: 1 }
    );
}

#[test]
fn alloc_unbound_for_missing_domain_is_esrch() {
    let mut ec = two();
    assert_eq!(ec.alloc_unbound(1, 9, 2), Err(Errno::Srch));
}

#[test]
fn ports_run_out_with_enospc() {
    let mut ec = two();
    for want in 1..MAX_PORTS as Port {
        assert_eq!(ec.bind_ipi(1, 0), Ok(want));
    }
    assert_eq!(ec.bind_ipi(1, 0), Err(Errno::NoSpc));
    assert_eq!(ec.alloc_unbound(1, DOMID_SELF, 2), Err(Errno::NoSpc));
    assert_eq!(ec.table_len(1), MAX_PORTS);
    ec.close(1, 77).unwrap();
    assert_eq!(ec.bind_ipi(1, 1), Ok(77));
}

#[test]
fn table_grows_in_buckets_and_ports_beyond_are_invalid() {
    let mut ec = two();
    ec.bind_ipi(1, 0).unwrap();
    assert_eq!(ec.table_len(1), BUCKET);
    assert_eq!(ec.status(1, DOMID_SELF, 5).unwrap().status, stat::CLOSED);
    assert_eq!(ec.status(1, DOMID_SELF, BUCKET as Port), Err(Errno::Inval));
    assert_eq!(ec.close(1, 5000), Err(Errno::Inval));
}

#[test]
fn bind_interdomain_connects_both_sides_and_marks_local_pending() {
    let mut ec = two();
    let p1 = ec.alloc_unbound(1, DOMID_SELF, 2).unwrap();
    let p2 = ec.bind_interdomain(2, 1, p1).unwrap();
    assert_eq!(
        ec.channel(1, p1).unwrap().state,
        PortState::Interdomain {
            remote_dom: 2,
            remote_port: p2
        }
    );
    assert_eq!(
        ec.channel(2, p2).unwrap().state,
        PortState::Interdomain {
            remote_dom: 1,
            remote_port: p1
        }
    );
    assert_eq!(
        ec.take_effects(),
        vec![Effect::SetPending {
            dom: 2,
            port: p2,
            vcpu: 0
        }]
    );
}

#[test]
fn bind_interdomain_to_port_unbound_for_someone_else_is_einval() {
    let mut ec = two();
    ec.add_domain(3, CFG).unwrap();
    let p1 = ec.alloc_unbound(1, DOMID_SELF, 3).unwrap();
    assert_eq!(ec.bind_interdomain(2, 1, p1), Err(Errno::Inval));
    // The failed bind did not consume a port of ours.
    assert_eq!(ec.channel(2, 1).map(|c| c.state), Some(PortState::Free));
}

#[test]
fn bind_interdomain_error_paths() {
    let mut ec = two();
    assert_eq!(ec.bind_interdomain(2, 9, 1), Err(Errno::Srch));
    // Remote port beyond the remote table.
    assert_eq!(ec.bind_interdomain(2, 1, 1), Err(Errno::Inval));
    // Remote port bound already.
    let (p1, _) = pair(&mut ec);
    assert_eq!(ec.bind_interdomain(2, 1, p1), Err(Errno::Inval));
    // Remote port is an IPI.
    let ipi = ec.bind_ipi(1, 0).unwrap();
    assert_eq!(ec.bind_interdomain(2, 1, ipi), Err(Errno::Inval));
}

#[test]
fn loopback_interdomain_within_one_domain() {
    let mut ec = two();
    let a = ec.alloc_unbound(1, DOMID_SELF, DOMID_SELF).unwrap();
    let b = ec.bind_interdomain(1, DOMID_SELF, a).unwrap();
    assert_ne!(a, b);
    ec.take_effects();
    ec.send(1, a).unwrap();
    assert_eq!(
        ec.take_effects(),
        vec![Effect::SetPending {
            dom: 1,
            port: b,
            vcpu: 0
        }]
    );
}

#[test]
fn interdomain_send_reaches_the_peer_on_its_notify_vcpu() {
    let mut ec = two();
    let (p1, p2) = pair(&mut ec);
    ec.bind_vcpu(2, p2, 1).unwrap();
    ec.send(1, p1).unwrap();
    assert_eq!(
        ec.take_effects(),
        vec![Effect::SetPending {
            dom: 2,
            port: p2,
            vcpu: 1
        }]
    );
    ec.send(2, p2).unwrap();
    assert_eq!(
        ec.take_effects(),
        vec![Effect::SetPending {
            dom: 1,
            port: p1,
            vcpu: 0
        }]
    );
}

#[test]
fn send_on_ipi_notifies_own_port() {
    let mut ec = two();
    let p = ec.bind_ipi(1, 1).unwrap();
    ec.send(1, p).unwrap();
    assert_eq!(
        ec.take_effects(),
        vec![Effect::SetPending {
            dom: 1,
            port: p,
            vcpu: 1
        }]
    );
}

#[test]
fn send_on_unbound_is_dropped_and_on_virq_or_free_is_einval() {
    let mut ec = two();
    let u = ec.alloc_unbound(1, DOMID_SELF, 2).unwrap();
    assert_eq!(ec.send(1, u), Ok(()));
    assert!(ec.take_effects().is_empty());
    let v = ec.bind_virq(1, virq::TIMER, 0).unwrap();
    assert_eq!(ec.send(1, v), Err(Errno::Inval));
    assert_eq!(ec.send(1, 10), Err(Errno::Inval));
    assert_eq!(ec.send(1, 0), Err(Errno::Inval));
    assert_eq!(ec.send(1, 9999), Err(Errno::Inval));
}

#[test]
fn close_interdomain_leaves_peer_unbound_toward_closer() {
    let mut ec = two();
    let (p1, p2) = pair(&mut ec);
    ec.close(1, p1).unwrap();
    assert_eq!(ec.channel(1, p1).unwrap().state, PortState::Free);
    assert_eq!(
        ec.channel(2, p2).unwrap().state,
        PortState::Unbound { remote: 1 }
    );
    assert_eq!(
        ec.take_effects(),
        vec![Effect::ClearPending { dom: 1, port: p1 }]
    );
    // The closer can reconnect to the peer's port.
    let again = ec.bind_interdomain(1, 2, p2).unwrap();
    assert_eq!(
        ec.channel(2, p2).unwrap().state,
        PortState::Interdomain {
            remote_dom: 1,
            remote_port: again
        }
    );
}

#[test]
fn close_free_or_reserved_port_is_einval() {
    let mut ec = two();
    ec.bind_ipi(1, 0).unwrap();
    assert_eq!(ec.close(1, 0), Err(Errno::Inval));
    assert_eq!(ec.close(1, 2), Err(Errno::Inval));
    let p = ec.bind_ipi(1, 0).unwrap();
    ec.close(1, p).unwrap();
    assert_eq!(ec.close(1, p), Err(Errno::Inval));
}

#[test]
fn bind_virq_rules() {
    let mut ec = two();
    let t0 = ec.bind_virq(1, virq::TIMER, 0).unwrap();
    let t1 = ec.bind_virq(1, virq::TIMER, 1).unwrap();
    assert_ne!(t0, t1);
    assert_eq!(ec.bind_virq(1, virq::TIMER, 0), Err(Errno::Exist));
    assert_eq!(ec.bind_virq(1, virq::CONSOLE, 1), Err(Errno::Inval));
    assert_eq!(ec.bind_virq(1, virq::NR_VIRQS, 0), Err(Errno::Inval));
    assert_eq!(ec.bind_virq(1, virq::TIMER, 2), Err(Errno::NoEnt));
    let c = ec.bind_virq(1, virq::CONSOLE, 0).unwrap();
    assert_eq!(
        ec.channel(1, c).unwrap().state,
        PortState::Virq {
            virq: virq::CONSOLE,
            vcpu: 0
        }
    );
    assert_eq!(ec.channel(1, t1).unwrap().notify_vcpu, 1);
    // Closing frees the (virq, vcpu) slot.
    ec.close(1, t0).unwrap();
    assert_eq!(ec.bind_virq(1, virq::TIMER, 0), Ok(t0));
}

#[test]
fn raise_virq_notifies_bound_port_only() {
    let mut ec = two();
    assert!(!ec.raise_virq(1, virq::TIMER, 0));
    let t1 = ec.bind_virq(1, virq::TIMER, 1).unwrap();
    assert!(ec.raise_virq(1, virq::TIMER, 1));
    assert!(!ec.raise_virq(1, virq::TIMER, 0));
    let c = ec.bind_virq(1, virq::CONSOLE, 0).unwrap();
    ec.bind_vcpu(1, c, 1).unwrap();
    assert!(ec.raise_virq(1, virq::CONSOLE, 0));
    assert_eq!(
        ec.take_effects(),
        vec![
            Effect::SetPending {
                dom: 1,
                port: t1,
                vcpu: 1
            },
            Effect::SetPending {
                dom: 1,
                port: c,
                vcpu: 1
            }
        ]
    );
}

#[test]
fn bind_ipi_rules() {
    let mut ec = two();
    assert_eq!(ec.bind_ipi(1, 2), Err(Errno::NoEnt));
    let p = ec.bind_ipi(1, 1).unwrap();
    assert_eq!(ec.channel(1, p).unwrap().state, PortState::Ipi { vcpu: 1 });
    assert_eq!(ec.bind_ipi(9, 0), Err(Errno::Srch));
}

#[test]
fn bind_pirq_rules() {
    let mut ec = two();
    assert_eq!(ec.bind_pirq(1, 32), Err(Errno::Inval));
    assert_eq!(ec.bind_pirq(1, 5), Err(Errno::Perm));
    assert_eq!(ec.permit_pirq(1, 32), Err(Errno::Inval));
    ec.permit_pirq(1, 5).unwrap();
    let p = ec.bind_pirq(1, 5).unwrap();
    assert_eq!(ec.bind_pirq(1, 5), Err(Errno::Exist));
    assert!(ec.raise_pirq(1, 5));
    assert!(!ec.raise_pirq(1, 6));
    ec.close(1, p).unwrap();
    assert_eq!(ec.bind_pirq(1, 5), Ok(p));
}

#[test]
fn status_reports_each_state() {
    let mut ec = two();
    let (p1, p2) = pair(&mut ec);
    let s = ec.status(1, DOMID_SELF, p1).unwrap();
    assert_eq!(
        (s.dom, s.port, s.status),
        (DOMID_SELF, p1, stat::INTERDOMAIN)
    );
    assert_eq!(s.u, [2, p2]);
    let u = ec.alloc_unbound(1, DOMID_SELF, 2).unwrap();
    let s = ec.status(1, DOMID_SELF, u).unwrap();
    assert_eq!((s.status, s.u), (stat::UNBOUND, [2, 0]));
    let v = ec.bind_virq(1, virq::TIMER, 1).unwrap();
    let s = ec.status(1, DOMID_SELF, v).unwrap();
    assert_eq!((s.status, s.vcpu, s.u), (stat::VIRQ, 1, [virq::TIMER, 0]));
    let i = ec.bind_ipi(1, 1).unwrap();
    let s = ec.status(1, DOMID_SELF, i).unwrap();
    assert_eq!((s.status, s.vcpu), (stat::IPI, 1));
    ec.permit_pirq(1, 3).unwrap();
    let q = ec.bind_pirq(1, 3).unwrap();
    assert_eq!(
        ec.status(1, DOMID_SELF, q).map(|s| (s.status, s.u)),
        Ok((stat::PIRQ, [3, 0]))
    );
    // Layout: status at byte 8, the interdomain peer at 16 and 20.
    let b = ec.status(1, DOMID_SELF, p1).unwrap().to_bytes();
    assert_eq!(b[8], stat::INTERDOMAIN as u8);
    assert_eq!(u16::from_le_bytes([b[16], b[17]]), 2);
    assert_eq!(b[20], p2 as u8);
}

#[test]
fn status_echoes_domid_self() {
    let mut ec = two();
    let p = ec.bind_ipi(1, 0).unwrap();
    assert_eq!(ec.status(1, DOMID_SELF, p).unwrap().dom, DOMID_SELF);
    assert_eq!(ec.status(1, 1, p).unwrap().dom, 1);
}

#[test]
fn reset_closes_every_port_but_keeps_the_domain() {
    let mut ec = two();
    let (p1, p2) = pair(&mut ec);
    ec.bind_virq(1, virq::TIMER, 0).unwrap();
    ec.bind_ipi(1, 1).unwrap();
    assert_eq!(ec.reset(2, 1), Err(Errno::Perm));
    assert_eq!(ec.reset(1, 9), Err(Errno::Srch));
    ec.reset(1, DOMID_SELF).unwrap();
    assert!(ec.has_domain(1));
    assert!(
        (0..ec.table_len(1) as Port).all(|p| ec.channel(1, p).unwrap().state == PortState::Free)
    );
    assert_eq!(
        ec.channel(2, p2).unwrap().state,
        PortState::Unbound { remote: 1 }
    );
    // The VIRQ slot is free again.
    assert_eq!(ec.bind_virq(1, virq::TIMER, 0), Ok(p1));
}

#[test]
fn status_error_paths() {
    let mut ec = two();
    ec.bind_ipi(2, 0).unwrap();
    assert_eq!(ec.status(1, 2, 1), Err(Errno::Perm));
    assert_eq!(ec.status(1, 9, 1), Err(Errno::Srch));
    assert_eq!(ec.status(1, DOMID_SELF, 1), Err(Errno::Inval));
}

#[test]
fn bind_vcpu_rules() {
    let mut ec = two();
    let (p1, _) = pair(&mut ec);
    assert_eq!(ec.bind_vcpu(1, p1, 2), Err(Errno::NoEnt));
    assert_eq!(ec.bind_vcpu(1, p1, 1), Ok(()));
    assert_eq!(ec.channel(1, p1).unwrap().notify_vcpu, 1);
    let t = ec.bind_virq(1, virq::TIMER, 0).unwrap();
    assert_eq!(ec.bind_vcpu(1, t, 1), Err(Errno::Inval));
    let ipi = ec.bind_ipi(1, 0).unwrap();
    assert_eq!(ec.bind_vcpu(1, ipi, 1), Err(Errno::Inval));
    assert_eq!(ec.bind_vcpu(1, 60, 0), Err(Errno::Inval));
    let u = ec.alloc_unbound(1, DOMID_SELF, 2).unwrap();
    assert_eq!(ec.bind_vcpu(1, u, 1), Ok(()));
}

#[test]
fn unmask_queues_for_notify_vcpu_and_checks_port() {
    let mut ec = two();
    let p = ec.bind_ipi(1, 1).unwrap();
    ec.unmask(1, p).unwrap();
    assert_eq!(
        ec.take_effects(),
        vec![Effect::Unmask {
            dom: 1,
            port: p,
            vcpu: 1
        }]
    );
    assert_eq!(ec.unmask(1, 4096), Err(Errno::Inval));
}

#[test]
fn destroy_domain_unbinds_peers_and_forgets_it() {
    let mut ec = two();
    let (_, p2) = pair(&mut ec);
    ec.bind_virq(1, virq::TIMER, 0).unwrap();
    ec.send(2, p2).unwrap();
    ec.destroy_domain(1).unwrap();
    assert!(!ec.has_domain(1));
    assert_eq!(
        ec.channel(2, p2).unwrap().state,
        PortState::Unbound { remote: 1 }
    );
    // Effects for the dead domain's page are dropped.
    assert!(ec.take_effects().is_empty());
    assert_eq!(ec.destroy_domain(1), Err(Errno::Srch));
    assert_eq!(ec.send(2, p2), Ok(()));
}

// ---- Properties ----

#[derive(Clone, Debug)]
enum Op {
    Alloc(u16, u16),
    Bind(u16, u16, u32),
    Virq(u16, u32, u32),
    Ipi(u16, u32),
    Close(u16, u32),
    Send(u16, u32),
    BindVcpu(u16, u32, u32),
    Destroy(u16),
    Add(u16),
}

fn op() -> impl Strategy<Value = Op> {
    let dom = 0u16..4;
    let port = 0u32..70;
    prop_oneof![
        (dom.clone(), dom.clone()).prop_map(|(a, b)| Op::Alloc(a, b)),
        (dom.clone(), dom.clone(), port.clone()).prop_map(|(a, b, p)| Op::Bind(a, b, p)),
        (dom.clone(), 0u32..26, 0u32..3).prop_map(|(a, v, c)| Op::Virq(a, v, c)),
        (dom.clone(), 0u32..3).prop_map(|(a, c)| Op::Ipi(a, c)),
        (dom.clone(), port.clone()).prop_map(|(a, p)| Op::Close(a, p)),
        (dom.clone(), port.clone()).prop_map(|(a, p)| Op::Send(a, p)),
        (dom.clone(), port, 0u32..3).prop_map(|(a, p, c)| Op::BindVcpu(a, p, c)),
        dom.clone().prop_map(Op::Destroy),
        dom.prop_map(Op::Add),
    ]
}

fn assert_symmetric(ec: &EventChannels) {
    for d in ec.domain_ids() {
        for p in 0..ec.table_len(d) as Port {
            let c = ec.channel(d, p).unwrap();
            if p == 0 {
                assert_eq!(c.state, PortState::Free);
            }
            if let PortState::Interdomain {
                remote_dom,
                remote_port,
            } = c.state
            {
                assert_eq!(
                    ec.channel(remote_dom, remote_port).map(|c| c.state),
                    Some(PortState::Interdomain {
                        remote_dom: d,
                        remote_port: p
                    }),
                    "d{d} port {p} bound on one side only"
                );
            }
        }
    }
}

proptest! {
    #[test]
    fn random_ops_keep_interdomain_pairs_symmetric(ops in proptest::collection::vec(op(), 0..120)) {
        let mut ec = EventChannels::new();
        for d in 0..3 {
            ec.add_domain(d, CFG).unwrap();
        }
        for o in ops {
            match o {
                Op::Alloc(a, b) => { let _ = ec.alloc_unbound(a, DOMID_SELF, b); }
                Op::Bind(a, b, p) => { let _ = ec.bind_interdomain(a, b, p); }
                Op::Virq(a, v, c) => { let _ = ec.bind_virq(a, v, c); }
                Op::Ipi(a, c) => { let _ = ec.bind_ipi(a, c); }
                Op::Close(a, p) => { let _ = ec.close(a, p); }
                Op::Send(a, p) => { let _ = ec.send(a, p); }
                Op::BindVcpu(a, p, c) => { let _ = ec.bind_vcpu(a, p, c); }
                Op::Destroy(a) => { let _ = ec.destroy_domain(a); }
                Op::Add(a) => { let _ = ec.add_domain(a, CFG); }
            }
            assert_symmetric(&ec);
            for e in ec.take_effects() {
                if let Effect::SetPending { dom, port, .. } = e {
                    prop_assert!(ec.has_domain(dom));
                    prop_assert!((port as usize) < MAX_PORTS && port != 0);
                }
            }
        }
    }
}

#[test]
fn swapped_effects_buffers_trade_places_and_keep_their_room() {
    let mut ec = two();
    let (p1, p2) = pair(&mut ec);
    let mut buf = Vec::new();
    ec.send(1, p1).unwrap();
    ec.swap_effects(&mut buf);
    assert_eq!(
        buf,
        vec![Effect::SetPending {
            dom: 2,
            port: p2,
            vcpu: 0
        }]
    );
    let cap = buf.capacity();
    // The caller's old buffer (empty) now takes the effects; the next swap
    // hands back one that has room without allocating, emptied first.
    ec.swap_effects(&mut buf);
    assert!(buf.is_empty());
    ec.send(1, p1).unwrap();
    let mut other = Vec::with_capacity(cap);
    other.push(Effect::ClearPending { dom: 2, port: 9 });
    ec.swap_effects(&mut other);
    assert_eq!(other.len(), 1, "the taken buffer holds only the new effect");
    assert!(ec.take_effects().is_empty(), "the given buffer was emptied");
}
