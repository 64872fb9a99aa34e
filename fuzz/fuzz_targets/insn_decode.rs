//! The instruction decoder on arbitrary bytes: the first byte picks the
//! code mode, the rest (up to 15 used) are the instruction at the guest's
//! RIP. Decoding must not panic, a decoded length must fit in the 15-byte
//! limit and in the bytes given, and a decoded load or store must apply to
//! a register file touching only its own register.
#![no_main]

use hv::insn::{self, Access, Mode, RegFile};
use libfuzzer_sys::fuzz_target;

struct Regs([u64; 16]);

impl RegFile for Regs {
    fn get(&self, index: u8) -> u64 {
        self.0[usize::from(index)]
    }
    fn set(&mut self, index: u8, value: u64) {
        self.0[usize::from(index)] = value;
    }
}

const FILL: u64 = 0x0123_4567_89ab_cdef;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    let mode = match mode % 3 {
        0 => Mode::Bits16,
        1 => Mode::Bits32,
        _ => Mode::Bits64,
    };
    let Ok(decoded) = insn::decode(bytes, mode) else {
        return;
    };
    let len = usize::from(decoded.len);
    assert!(len <= insn::MAX_LEN && len <= bytes.len());
    let mut regs = Regs([FILL; 16]);
    match decoded.access {
        Access::Load(load) => {
            assert!([1, 2, 4, 8].contains(&load.size) && load.size <= load.dst_size);
            insn::apply_load(&mut regs, &load, u64::MAX);
            let dst = usize::from(load.dst.index());
            for (i, &r) in regs.0.iter().enumerate() {
                assert!(i == dst || r == FILL, "register {i} changed");
            }
        }
        Access::Store(store) => {
            assert!([1, 2, 4, 8].contains(&store.size));
            assert!(insn::store_value(&regs, &store) <= insn::mask(store.size));
        }
    }
});
