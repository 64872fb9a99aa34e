//! `VecMap`, `VecSet` and the sort against `BTreeMap`, `BTreeSet` and
//! `slice::sort`, operation by operation.

extern crate std;

use super::*;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::{String, ToString};
use alloc::vec;
use proptest::prelude::*;
use std::format;

#[derive(Debug, Clone)]
enum Op {
    Insert(u8, u16),
    Remove(u8),
    OrInsert(u8, u16),
    AddOrDefault(u8),
    RemoveIfOdd(u8),
    Retain(u8),
    PopFirst,
    PopLast,
}

/// Paths like xenstore's: long shared prefixes, short differing tails,
/// some keys prefixes of others.
fn path() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just(""),
            Just("/local/domain/1"),
            Just("/local/domain/12/device/vif"),
        ],
        "(/[a-c]{0,3}){0,4}",
    )
        .prop_map(|(base, tail)| format!("{base}{tail}"))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Op::Insert(k, v)),
        any::<u8>().prop_map(Op::Remove),
        (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Op::OrInsert(k, v)),
        any::<u8>().prop_map(Op::AddOrDefault),
        any::<u8>().prop_map(Op::RemoveIfOdd),
        any::<u8>().prop_map(Op::Retain),
        Just(Op::PopFirst),
        Just(Op::PopLast),
    ]
}

fn bound(kind: u8, k: u8) -> Bound<u8> {
    match kind % 3 {
        0 => Bound::Included(k),
        1 => Bound::Excluded(k),
        _ => Bound::Unbounded,
    }
}

/// Whether `BTreeMap::range` accepts the bounds (it panics on inverted
/// ones; `VecMap` yields nothing).
fn valid(lo: Bound<u8>, hi: Bound<u8>) -> bool {
    match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a <= b,
        (Bound::Excluded(a), Bound::Excluded(b)) => a < b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
            a <= b
        }
        _ => true,
    }
}

proptest! {
    #[test]
    fn the_map_behaves_like_btreemap(ops in proptest::collection::vec(op(), 0..200),
                                     lo in any::<(u8, u8)>(), hi in any::<(u8, u8)>()) {
        let mut ours = VecMap::new();
        let mut std = BTreeMap::new();
        for op in ops {
            match op {
                Op::Insert(k, v) => prop_assert_eq!(ours.insert(k, v), std.insert(k, v)),
                Op::Remove(k) => prop_assert_eq!(ours.remove(&k), std.remove(&k)),
                Op::OrInsert(k, v) => {
                    prop_assert_eq!(*ours.entry(k).or_insert(v), *std.entry(k).or_insert(v))
                }
                Op::AddOrDefault(k) => {
                    *ours.entry(k).or_default() += 1;
                    *std.entry(k).or_default() += 1;
                }
                Op::RemoveIfOdd(k) => {
                    let a = match ours.entry(k) {
                        Entry::Occupied(e) if e.get() % 2 == 1 => Some(e.remove_entry()),
                        _ => None,
                    };
                    let b = match std.entry(k) {
                        alloc::collections::btree_map::Entry::Occupied(e) if e.get() % 2 == 1 => {
                            Some(e.remove_entry())
                        }
                        _ => None,
                    };
                    prop_assert_eq!(a, b);
                }
                Op::Retain(m) => {
                    ours.retain(|k, v| (*k ^ m) % 3 != 0 || *v % 2 == 0);
                    std.retain(|k, v| (*k ^ m) % 3 != 0 || *v % 2 == 0);
                }
                Op::PopFirst => prop_assert_eq!(ours.pop_first(), std.pop_first()),
                Op::PopLast => prop_assert_eq!(ours.pop_last(), std.pop_last()),
            }
            prop_assert_eq!(ours.len(), std.len());
            prop_assert!(ours.iter().eq(std.iter()));
        }
        for k in 0..=255u8 {
            prop_assert_eq!(ours.get(&k), std.get(&k));
            prop_assert_eq!(ours.contains_key(&k), std.contains_key(&k));
        }
        let (lo, hi) = (bound(lo.0, lo.1), bound(hi.0, hi.1));
        if valid(lo, hi) {
            prop_assert!(ours.range((lo, hi)).eq(std.range((lo, hi))));
            prop_assert!(ours.range((lo, hi)).rev().eq(std.range((lo, hi)).rev()));
        } else {
            prop_assert_eq!(ours.range((lo, hi)).count(), 0);
        }
        prop_assert_eq!(ours.first_key_value(), std.first_key_value());
        prop_assert_eq!(ours.last_key_value(), std.last_key_value());
        prop_assert_eq!(format!("{ours:?}"), format!("{std:?}"));
        prop_assert!(ours.into_iter().eq(std));
    }

    #[test]
    fn the_set_behaves_like_btreeset(ops in proptest::collection::vec((any::<bool>(), any::<u8>()), 0..200),
                                     lo in any::<(u8, u8)>(), hi in any::<(u8, u8)>()) {
        let mut ours = VecSet::new();
        let mut std = BTreeSet::new();
        for (add, v) in ops {
            if add {
                prop_assert_eq!(ours.insert(v), std.insert(v));
            } else {
                prop_assert_eq!(ours.remove(&v), std.remove(&v));
            }
            prop_assert!(ours.iter().eq(std.iter()));
        }
        for v in 0..=255u8 {
            prop_assert_eq!(ours.contains(&v), std.contains(&v));
        }
        let (lo, hi) = (bound(lo.0, lo.1), bound(hi.0, hi.1));
        if valid(lo, hi) {
            prop_assert!(ours.range((lo, hi)).eq(std.range((lo, hi))));
        }
        prop_assert_eq!(format!("{ours:?}"), format!("{std:?}"));
    }

    #[test]
    fn text_lookups_find_what_the_generic_search_finds(
        keys in proptest::collection::vec(path(), 0..60),
        probes in proptest::collection::vec(path(), 0..20),
    ) {
        let m: VecMap<String, usize> = keys.iter().cloned().zip(0..).collect();
        let mut m2 = m.clone();
        for k in keys.iter().chain(&probes) {
            prop_assert_eq!(m.find_str(k), m.find(k.as_str()), "{}", k);
            prop_assert_eq!(m.get_str(k), m.get(k.as_str()));
            let want = m.get(k.as_str()).copied();
            prop_assert_eq!(m2.get_str_mut(k).map(|v| *v), want);
        }
    }

    #[test]
    fn text_comparison_orders_and_measures_the_shared_prefix(a in path(), b in path()) {
        let shared = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
        for from in [0, shared / 2, shared] {
            prop_assert_eq!(
                compare_from(a.as_bytes(), b.as_bytes(), from),
                (a.as_bytes().cmp(b.as_bytes()), shared)
            );
        }
    }

    #[test]
    fn the_sort_is_stable_like_slice_sort(v in proptest::collection::vec((0u8..8, any::<u16>()), 0..100)) {
        let mut ours = v.clone();
        let mut std = v.clone();
        sort_by_key(&mut ours, |p| p.0);
        std.sort_by_key(|p| p.0);
        prop_assert_eq!(&ours, &std);
        sort(&mut ours);
        std.sort();
        prop_assert_eq!(ours, std);
    }
}

#[test]
fn insert_keeps_the_stored_key_and_collect_keeps_the_last_value() {
    let mut m: VecMap<String, u32> = [("b".to_string(), 1), ("a".to_string(), 2)].into();
    assert_eq!(m.insert("b".to_string(), 3), Some(1));
    assert_eq!(m["b"], 3);
    assert_eq!(m.get_key_value("a"), Some((&"a".to_string(), &2)));
    let m2: VecMap<u8, u8> = vec![(1, 1), (0, 0), (1, 2)].into_iter().collect();
    assert_eq!(m2.iter().collect::<vec::Vec<_>>(), [(&0, &0), (&1, &2)]);
    // Borrowed lookups and string ranges, as xenstore walks a subtree.
    m.insert("b/c".to_string(), 4);
    let sub: vec::Vec<_> = m
        .range::<str, _>((Bound::Included("b"), Bound::Unbounded))
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(sub, ["b", "b/c"]);
    assert_eq!(m.remove("a"), Some(2));
    assert!(!m.contains_key("a"));
}
