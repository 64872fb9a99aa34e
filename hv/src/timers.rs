//! The guests' timers: per vCPU a singleshot timer (`set_timer_op`,
//! `VCPUOP_set_singleshot_timer`) and a periodic one
//! (`VCPUOP_set_periodic_timer`), with absolute deadlines in system time
//! (ns). The scheduler asks for [`TimerQueue::next_deadline`] to program the
//! host timer and for [`TimerQueue::expired`] when it fires; what an expiry
//! means (raising `VIRQ_TIMER`, waking a blocked vCPU) is the caller's.
//!
//! Periodic timers stay on their grid: after an expiry the next deadline is
//! the first multiple of the period after `now` counted from the original
//! start, so late handling neither drifts the timer nor replays the periods
//! it missed (one expiry is reported, as Xen does).

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

/// A domain's id.
pub type DomId = u16;

/// Which of a vCPU's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKind {
    /// Fires once at its deadline.
    Singleshot,
    /// Fires every period.
    Periodic,
}

/// One timer: the domain, the vCPU and which of its timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerKey {
    /// The owning domain (ordered first, so a domain's timers are adjacent).
    pub domain: DomId,
    /// The vCPU within the domain.
    pub vcpu: u32,
    /// Singleshot or periodic.
    pub kind: TimerKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Timer {
    deadline: u64,
    /// Some for periodic timers.
    period: Option<u64>,
}

/// The armed timers, ordered by deadline.
#[derive(Debug, Default)]
pub struct TimerQueue {
    timers: BTreeMap<TimerKey, Timer>,
    /// (deadline, key) for every armed timer: the earliest comes first.
    by_deadline: BTreeSet<(u64, TimerKey)>,
}

impl TimerQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    fn insert(&mut self, key: TimerKey, timer: Timer) {
        self.stop(key);
        self.timers.insert(key, timer);
        self.by_deadline.insert((timer.deadline, key));
    }

    /// Arms `key` to fire once at `deadline` (ns), replacing what it was.
    /// A deadline already past fires at the next [`Self::expired`].
    pub fn set_singleshot(&mut self, key: TimerKey, deadline: u64) {
        self.insert(
            key,
            Timer {
                deadline,
                period: None,
            },
        );
    }

    /// Arms `key` to fire every `period` ns from `now` (first at
    /// `now + period`), replacing what it was. A period of 0 stops it.
    /// The caller enforces a minimum period (Xen refuses periods under
    /// 1 ms with `-EINVAL`).
    pub fn set_periodic(&mut self, key: TimerKey, period: u64, now: u64) {
        if period == 0 {
            self.stop(key);
            return;
        }
        self.insert(
            key,
            Timer {
                deadline: now.saturating_add(period),
                period: Some(period),
            },
        );
    }

    /// Disarms `key`; nothing happens if it is not armed.
    pub fn stop(&mut self, key: TimerKey) {
        if let Some(t) = self.timers.remove(&key) {
            self.by_deadline.remove(&(t.deadline, key));
        }
    }

    /// The deadline `key` is armed for.
    pub fn deadline(&self, key: TimerKey) -> Option<u64> {
        self.timers.get(&key).map(|t| t.deadline)
    }

    /// The earliest deadline of all armed timers.
    pub fn next_deadline(&self) -> Option<u64> {
        self.by_deadline.first().map(|&(d, _)| d)
    }

    /// The timers whose deadline is at or before `now`, earliest first.
    /// Singleshot timers are disarmed; periodic ones move to the first
    /// point of their grid after `now`.
    pub fn expired(&mut self, now: u64) -> Vec<TimerKey> {
        let mut due = Vec::new();
        // Re-armed after the scan: at the end of time a periodic timer's
        // next deadline saturates to one that is due again.
        let mut rearmed = Vec::new();
        while let Some(&(deadline, key)) = self.by_deadline.first() {
            if deadline > now {
                break;
            }
            self.by_deadline.pop_first();
            due.push(key);
            let Some(timer) = self.timers.get_mut(&key) else {
                continue;
            };
            match timer.period {
                None => {
                    self.timers.remove(&key);
                }
                Some(period) => {
                    // Periods elapsed since the deadline, counting it.
                    let missed = (now - deadline) / period + 1;
                    let next = deadline.saturating_add(missed.saturating_mul(period));
                    timer.deadline = next;
                    rearmed.push((next, key));
                }
            }
        }
        self.by_deadline.extend(rearmed);
        due
    }

    /// Disarms every timer of `domain` (it is being destroyed).
    pub fn remove_domain(&mut self, domain: DomId) {
        let keys: Vec<TimerKey> = self
            .timers
            .keys()
            .filter(|k| k.domain == domain)
            .copied()
            .collect();
        for key in keys {
            self.stop(key);
        }
    }

    /// Armed timers.
    pub fn len(&self) -> usize {
        self.timers.len()
    }

    /// Whether no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.timers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn single(domain: DomId, vcpu: u32) -> TimerKey {
        TimerKey {
            domain,
            vcpu,
            kind: TimerKind::Singleshot,
        }
    }

    fn periodic(domain: DomId, vcpu: u32) -> TimerKey {
        TimerKey {
            domain,
            vcpu,
            kind: TimerKind::Periodic,
        }
    }

    #[test]
    fn singleshot_fires_once_at_its_deadline() {
        let mut q = TimerQueue::new();
        q.set_singleshot(single(1, 0), 100);
        assert_eq!(q.next_deadline(), Some(100));
        assert!(q.expired(99).is_empty());
        assert_eq!(q.expired(100), vec![single(1, 0)]);
        assert!(q.expired(1000).is_empty());
        assert_eq!(q.next_deadline(), None);
        assert!(q.is_empty());
    }

    #[test]
    fn setting_again_replaces_the_deadline() {
        let mut q = TimerQueue::new();
        q.set_singleshot(single(1, 0), 100);
        q.set_singleshot(single(1, 0), 300);
        assert_eq!(q.len(), 1);
        assert!(q.expired(200).is_empty());
        assert_eq!(q.expired(300), vec![single(1, 0)]);
    }

    #[test]
    fn a_past_deadline_fires_at_the_next_check() {
        let mut q = TimerQueue::new();
        q.set_singleshot(single(1, 0), 0);
        assert_eq!(q.expired(5), vec![single(1, 0)]);
    }

    #[test]
    fn periodic_rearms_on_its_grid_without_drift() {
        let mut q = TimerQueue::new();
        let k = periodic(2, 1);
        q.set_periodic(k, 10, 1000);
        assert_eq!(q.deadline(k), Some(1010));
        // Handled 3 ns late: the next one is still at 1020.
        assert_eq!(q.expired(1013), vec![k]);
        assert_eq!(q.deadline(k), Some(1020));
        // Handled 25 ns late: one expiry, the missed periods skipped.
        assert_eq!(q.expired(1045), vec![k]);
        assert_eq!(q.deadline(k), Some(1050));
        // Exactly on a grid point: the next is a full period later.
        assert_eq!(q.expired(1050), vec![k]);
        assert_eq!(q.deadline(k), Some(1060));
    }

    #[test]
    fn a_tiny_period_after_a_long_gap_does_not_loop() {
        let mut q = TimerQueue::new();
        let k = periodic(1, 0);
        q.set_periodic(k, 1, 0);
        assert_eq!(q.expired(u64::MAX - 1), vec![k]);
        assert_eq!(q.deadline(k), Some(u64::MAX));
        q.set_periodic(k, u64::MAX, 5);
        assert_eq!(q.deadline(k), Some(u64::MAX));
        // At the end of time it fires once per check and stays armed.
        assert_eq!(q.expired(u64::MAX), vec![k]);
        assert_eq!(q.expired(u64::MAX), vec![k]);
        assert_eq!(q.deadline(k), Some(u64::MAX));
    }

    #[test]
    fn period_zero_and_stop_disarm() {
        let mut q = TimerQueue::new();
        q.set_periodic(periodic(1, 0), 10, 0);
        q.set_periodic(periodic(1, 0), 0, 0);
        assert!(q.is_empty());
        q.set_singleshot(single(1, 0), 10);
        q.stop(single(1, 0));
        q.stop(single(1, 0));
        assert!(q.is_empty());
        assert_eq!(q.next_deadline(), None);
    }

    #[test]
    fn both_timers_of_a_vcpu_are_independent() {
        let mut q = TimerQueue::new();
        q.set_singleshot(single(1, 0), 50);
        q.set_periodic(periodic(1, 0), 20, 0);
        assert_eq!(q.next_deadline(), Some(20));
        assert_eq!(q.expired(20), vec![periodic(1, 0)]);
        assert_eq!(q.expired(60), vec![periodic(1, 0), single(1, 0)]);
        assert_eq!(q.next_deadline(), Some(80));
    }

    #[test]
    fn expired_is_earliest_first() {
        let mut q = TimerQueue::new();
        q.set_singleshot(single(3, 0), 30);
        q.set_singleshot(single(1, 0), 20);
        q.set_singleshot(single(2, 5), 10);
        assert_eq!(
            q.expired(100),
            vec![single(2, 5), single(1, 0), single(3, 0)]
        );
    }

    #[test]
    fn remove_domain_leaves_the_others() {
        let mut q = TimerQueue::new();
        q.set_singleshot(single(1, 0), 10);
        q.set_periodic(periodic(1, 3), 10, 0);
        q.set_singleshot(single(2, 0), 30);
        q.set_periodic(periodic(0, 0), 40, 0);
        q.remove_domain(1);
        assert_eq!(q.len(), 2);
        assert_eq!(q.next_deadline(), Some(30));
        assert_eq!(q.expired(40), vec![single(2, 0), periodic(0, 0)]);
        q.remove_domain(9);
        assert_eq!(q.len(), 1);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Single(u8, u64),
        Periodic(u8, u64),
        Stop(u8, bool),
        Advance(u64),
        RemoveDomain(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..8, 0u64..2000).prop_map(|(k, d)| Op::Single(k, d)),
            (0u8..8, 0u64..300).prop_map(|(k, p)| Op::Periodic(k, p)),
            (0u8..8, any::<bool>()).prop_map(|(k, p)| Op::Stop(k, p)),
            (0u64..500).prop_map(Op::Advance),
            (0u8..4).prop_map(Op::RemoveDomain),
        ]
    }

    fn key(k: u8, periodic: bool) -> TimerKey {
        TimerKey {
            domain: u16::from(k / 2),
            vcpu: u32::from(k % 2),
            kind: if periodic {
                TimerKind::Periodic
            } else {
                TimerKind::Singleshot
            },
        }
    }

    proptest! {
        /// Against a plain map and linear scans.
        #[test]
        fn matches_a_naive_model(ops in proptest::collection::vec(op(), 0..60)) {
            let mut q = TimerQueue::new();
            // key -> (deadline, period)
            let mut model: BTreeMap<TimerKey, (u64, Option<u64>)> = BTreeMap::new();
            let mut now = 0u64;
            for op in ops {
                match op {
                    Op::Single(k, d) => {
                        q.set_singleshot(key(k, false), now + d);
                        model.insert(key(k, false), (now + d, None));
                    }
                    Op::Periodic(k, p) => {
                        q.set_periodic(key(k, true), p, now);
                        if p == 0 {
                            model.remove(&key(k, true));
                        } else {
                            model.insert(key(k, true), (now + p, Some(p)));
                        }
                    }
                    Op::Stop(k, p) => {
                        q.stop(key(k, p));
                        model.remove(&key(k, p));
                    }
                    Op::RemoveDomain(d) => {
                        q.remove_domain(u16::from(d));
                        model.retain(|k, _| k.domain != u16::from(d));
                    }
                    Op::Advance(by) => {
                        now += by;
                        let mut want: Vec<(u64, TimerKey)> = model
                            .iter()
                            .filter(|(_, &(d, _))| d <= now)
                            .map(|(&k, &(d, _))| (d, k))
                            .collect();
                        want.sort();
                        let want: Vec<TimerKey> = want.into_iter().map(|(_, k)| k).collect();
                        prop_assert_eq!(q.expired(now), want);
                        model.retain(|_, t| t.0 > now || t.1.is_some());
                        for t in model.values_mut() {
                            if let (true, Some(p)) = (t.0 <= now, t.1) {
                                while t.0 <= now {
                                    t.0 += p;
                                }
                            }
                        }
                    }
                }
                prop_assert_eq!(q.len(), model.len());
                prop_assert_eq!(q.next_deadline(), model.values().map(|t| t.0).min());
                for (&k, &(d, _)) in &model {
                    prop_assert_eq!(q.deadline(k), Some(d));
                }
            }
        }
    }
}
