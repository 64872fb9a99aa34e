//! Property: after any sequence of pins, unpins, updates, root switches,
//! assisted writes, the guest's own writes to pages it may write, descriptor
//! references and ballooning, every count equals the references that exist
//! and no frame is both mapped writable and a table.

use alloc::vec::Vec;

use proptest::prelude::*;

use super::tests::*;
use super::*;
use crate::pv::abi::pte::{ACCESSED, DIRTY, GLOBAL, NX, PCD, PRESENT, PSE, RW, USER};

#[derive(Clone, Debug)]
enum Act {
    Pin(u8, u64),
    Unpin(u64),
    Update {
        table: u64,
        index: usize,
        val: u64,
        preserve_ad: bool,
    },
    Ptwr {
        table: u64,
        index: usize,
        val: u64,
    },
    /// The guest writing through a writable mapping: only to a page that is
    /// no table or descriptor page.
    GuestWrite {
        frame: u64,
        index: usize,
        val: u64,
    },
    /// The boot L1's mapping of a frame made read-only or writable.
    Map(u64, bool),
    /// A spare frame emptied, made read-only and pinned as a table.
    Fresh(u8, u64),
    Kernel(u64),
    User(u64),
    GetDesc(u64),
    PutDesc,
    Remove(u64),
    Add(u64),
}

/// Frames of interest: the boot tables, a few spare ones, one beyond RAM.
fn frame() -> impl Strategy<Value = u64> {
    prop_oneof![1u64..=4, 28u64..36, Just(N + 1)]
}

/// Entries of interest: the boot tree's, a few low ones, the reserved and
/// linear L4 slots.
fn index() -> impl Strategy<Value = usize> {
    prop_oneof![
        0usize..4,
        Just(28),
        Just(30),
        Just(255),
        Just(256),
        Just(260),
        Just(510),
        Just(511)
    ]
}

fn flags() -> impl Strategy<Value = u64> {
    let sane = (any::<bool>(), any::<bool>()).prop_map(|(rw, user)| {
        PRESENT | ACCESSED | if rw { RW } else { 0 } | if user { USER } else { 0 }
    });
    prop_oneof![3 => sane, 1 => any_flags()]
}

fn any_flags() -> impl Strategy<Value = u64> {
    let bits = [PRESENT, RW, USER, ACCESSED, DIRTY, PSE, PCD, GLOBAL, NX];
    proptest::collection::vec(any::<bool>(), bits.len()).prop_map(move |on| {
        bits.iter()
            .zip(on)
            .filter(|(_, on)| *on)
            .fold(0, |acc, (b, _)| acc | b)
    })
}

fn value() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => (frame(), flags()).prop_map(|(f, fl)| e(f, fl)),
        1 => Just(0u64),
    ]
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        3 => (1u8..=4, frame()).prop_map(|(l, f)| Act::Pin(l, f)),
        2 => frame().prop_map(Act::Unpin),
        4 => (frame(), index(), value(), any::<bool>()).prop_map(|(table, index, val, preserve_ad)| {
            Act::Update { table, index, val, preserve_ad }
        }),
        2 => (frame(), index(), value()).prop_map(|(table, index, val)| Act::Ptwr { table, index, val }),
        3 => (frame(), index(), value()).prop_map(|(frame, index, val)| Act::GuestWrite { frame, index, val }),
        3 => (frame(), any::<bool>()).prop_map(|(f, w)| Act::Map(f, w)),
        3 => (1u8..=4, 28u64..36).prop_map(|(l, f)| Act::Fresh(l, f)),
        2 => frame().prop_map(Act::Kernel),
        2 => prop_oneof![Just(0u64), frame()].prop_map(Act::User),
        1 => frame().prop_map(Act::GetDesc),
        1 => Just(Act::PutDesc),
        1 => frame().prop_map(Act::Remove),
        1 => frame().prop_map(Act::Add),
    ]
}

fn run(d: &mut Dom, held: &mut Vec<u64>, a: &Act) {
    match *a {
        Act::Pin(level, f) => drop(d.pin(level, f)),
        Act::Unpin(f) => drop(d.unpin(f)),
        Act::Update {
            table,
            index,
            val,
            preserve_ad,
        } => {
            let cmd = if preserve_ad {
                mmu_cmd::PT_UPDATE_PRESERVE_AD
            } else {
                0
            };
            let ptr = (table << 12) | ((index as u64) << 3) | cmd;
            let _ = d.mm.mmu_update(&mut d.mem, ptr, val, PgOwner::Own);
        }
        Act::Ptwr { table, index, val } => {
            let _ =
                d.mm.ptwr_write(&mut d.mem, table, index * 8, &val.to_le_bytes(), None);
        }
        Act::GuestWrite { frame, index, val } => {
            let ty = d.mm.type_of(frame);
            if matches!(ty, PageType::None | PageType::Writable)
                && d.mem.frames.contains_key(&frame)
            {
                d.mem.set(frame, index, val);
            }
        }
        Act::Map(f, w) => drop(d.map(f, w)),
        Act::Fresh(level, f) => {
            if matches!(d.mm.type_of(f), PageType::None | PageType::Writable) {
                d.mem.clear(f);
                let _ = d.map(f, false);
                let _ = d.pin(level, f);
            }
        }
        Act::Kernel(f) => drop(d.op(cmd::NEW_BASEPTR, f, 0)),
        Act::User(f) => drop(d.op(cmd::NEW_USER_BASEPTR, f, 0)),
        Act::GetDesc(f) => {
            if d.mm.get_seg_desc(&mut d.mem, f).is_ok() {
                held.push(f);
            }
        }
        Act::PutDesc => {
            if let Some(f) = held.pop() {
                d.mm.put_seg_desc(&mut d.mem, f);
            }
        }
        Act::Remove(f) => drop(d.mm.remove_ram(f)),
        Act::Add(f) => drop(d.mm.add_ram(f)),
    }
}

/// No validated L1 maps a table or descriptor page writable.
fn no_writable_tables(d: &Dom) -> Result<(), TestCaseError> {
    for t in (0..N).filter(|&t| d.mm.is_l1(t)) {
        for i in 0..512 {
            let v = d.mem.get(t, i);
            if v & PRESENT != 0 && v & RW != 0 {
                let ty = d.mm.type_of(pte::mfn(v));
                prop_assert!(
                    !matches!(
                        ty,
                        PageType::L1
                            | PageType::L2
                            | PageType::L3
                            | PageType::L4
                            | PageType::SegDesc
                    ),
                    "L1 {t} entry {i} maps a {ty:?} frame writable"
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn counts_stay_consistent_and_tables_never_writable(acts in proptest::collection::vec(act(), 1..40)) {
        let mut d = booted();
        let mut held = Vec::new();
        for a in &acts {
            run(&mut d, &mut held, a);
            if let Err(err) = d.mm.audit(&d.mem, &[d.roots], &held) {
                prop_assert!(false, "after {a:?}: {err}");
            }
            no_writable_tables(&d)?;
        }
        // Everything can be released again.
        for f in held.drain(..) {
            d.mm.put_seg_desc(&mut d.mem, f);
        }
        for f in 0..N {
            let _ = d.unpin(f);
        }
        d.mm.release_roots(&mut d.mem, &mut d.roots);
        for f in 0..N {
            let s = d.state(f);
            prop_assert_eq!((s.count, s.linear), (0, 0), "frame {}", f);
        }
        prop_assert!(d.mm.audit(&d.mem, &[d.roots], &[]).is_ok());
    }
}
