//! The body of the `config_writes` fuzz target (see docs/fuzzing.md): the
//! binary in `fuzz/fuzz_targets/` calls it under libFuzzer, and the host
//! test below replays its seed corpus (`fuzz/corpus/config_writes/`)
//! through it on stable, inside `cargo test`.

use alloc::vec::Vec;

use crate::testkit::{self, FakeHost};
use crate::vdev::{BarKind, CfgError, DeviceOptions, VirtDevice};

/// Bytes 1.. of the input as a script of config accesses: each 7 bytes
/// (kind and size, offset, value); past the end, reads 0.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        for b in out.iter_mut() {
            if let Some((&x, rest)) = self.0.split_first() {
                *b = x;
                self.0 = rest;
            }
        }
        out
    }
}

/// The hardware registers that hold where the function decodes: its BARs
/// (both halves of a 64-bit one) and its ROM BAR.
fn host_bar_offsets(dev: &VirtDevice) -> Vec<u16> {
    let info = dev.info();
    let mut out = Vec::new();
    for b in &info.bars {
        let reg = 0x10 + 4 * u16::from(b.index);
        out.push(reg);
        if b.kind == BarKind::Mem64 {
            out.push(reg + 4);
        }
    }
    if info.rom.is_some() {
        out.push(if info.header_type & 0x7f == 1 {
            0x38
        } else {
            0x30
        });
    }
    out
}

/// The write-1-to-clear bits set in the hardware at the dword offsets
/// `at` (the registers that have such bits: no other can lose one), into
/// `out`.
fn rw1c_set(host: &FakeHost, dev: &VirtDevice, at: &[u16], out: &mut Vec<u32>) {
    let regs = &host.function(dev.sbdf()).regs;
    out.clear();
    out.extend(
        at.iter()
            .map(|off| regs.get(off).map_or(0, |r| r.value & r.rw1c)),
    );
}

/// What a `config_writes` input starts from: the fixture byte 0 picks
/// assigned (with `permissive` if its bit 7 is set), every
/// write-1-to-clear bit of its hardware set. The same for every input
/// with that byte, so the fuzz target makes each once and copies it.
#[derive(Clone, Debug)]
pub struct ConfigStart {
    host: FakeHost,
    dev: VirtDevice,
    /// The hardware's capabilities, `(ID, offset)`.
    caps: Vec<(u8, u16)>,
    /// The dword offsets of the registers with write-1-to-clear bits.
    rw1c_regs: Vec<u16>,
    /// The host's BAR and ROM registers at assignment, `(offset, value)`.
    bars: Vec<(u16, u32)>,
}

impl ConfigStart {
    pub fn new(sel: u8) -> Self {
        // Only the fixture picked is built.
        let mut fixture = testkit::ALL[usize::from(sel & 0x7f) % testkit::ALL.len()]();
        let opts = DeviceOptions {
            permissive: sel & 0x80 != 0,
        };
        for r in fixture.config.regs.values_mut() {
            r.value |= r.rw1c;
        }
        let rw1c_regs: Vec<u16> = (fixture.config.regs.iter())
            .filter(|(_, r)| r.rw1c != 0)
            .map(|(&off, _)| off)
            .collect();
        let (host, dev) = fixture.device(opts);
        let sbdf = dev.sbdf();
        let bars = host_bar_offsets(&dev)
            .into_iter()
            .map(|o| (o, host.peek_config(sbdf, o)))
            .collect();
        Self {
            host,
            dev,
            caps: fixture.caps,
            rw1c_regs,
            bars,
        }
    }
}

/// `config_writes`: one of the test fixtures (edu, NVMe, e1000e, a
/// bridge, a synthetic function with every capability; byte 0 picks it
/// and `permissive`) assigned, with every write-1-to-clear bit of its
/// hardware set, then a script of guest reads and writes of every size at
/// any offset: [`config_writes_from`] with a new [`ConfigStart`].
pub fn config_writes(data: &[u8]) {
    let Some((&sel, script)) = data.split_first() else {
        return;
    };
    config_writes_from(ConfigStart::new(sel), script);
}

/// The script of a `config_writes` input (its bytes 1..) from `start`.
/// After each access:
///
/// - the host's BAR and ROM registers are what they were at assignment;
/// - no write-1-to-clear bit outside the bytes written was cleared (a
///   read-modify-write of a neighbouring register must write 0 there), and
///   a read clears none;
/// - an access is refused as an invalid offset exactly when its size is
///   not 1, 2 or 4, its offset is not a multiple of it, or it ends beyond
///   the config space (a valid write may still be denied by the policy);
/// - the extended config space reads 0 (it is not virtualised), and a
///   1- or 2-byte read is the matching bytes of the 4-byte read.
///
/// At the end, the capability list the guest sees ends, and each entry is
/// a capability of the hardware at the same offset.
pub fn config_writes_from(start: ConfigStart, script: &[u8]) {
    let ConfigStart {
        mut host,
        mut dev,
        caps,
        rw1c_regs,
        bars,
    } = start;
    let sbdf = dev.sbdf();
    let limit = u32::from(dev.info().config_size);
    let mut notices = Vec::new();
    // The bits before an access are those after the one before it.
    let (mut before, mut after) = (Vec::new(), Vec::new());
    rw1c_set(&host, &dev, &rw1c_regs, &mut after);
    let mut s = Script(script);
    while !s.0.is_empty() {
        let [op] = s.take::<1>();
        let offset = u16::from_le_bytes(s.take::<2>());
        // Mostly the header and the capabilities, sometimes anywhere.
        let offset = if op & 0x80 == 0 {
            offset % 0x110
        } else {
            offset
        };
        let value = u32::from_le_bytes(s.take::<4>());
        let size = [1u8, 2, 4, 4, 0, 3, 8, 4][usize::from((op >> 4) & 7)];
        let valid = matches!(size, 1 | 2 | 4)
            && offset % u16::from(size) == 0
            && u32::from(offset) + u32::from(size) <= limit;
        core::mem::swap(&mut before, &mut after);
        let written = if op & 1 == 0 {
            let r = dev.write(&mut host, offset, size, value, &mut notices);
            notices.clear();
            // A valid access may still be refused by the policy
            // (`AccessDenied`: a register it keeps from the guest).
            assert_eq!(
                r == Err(CfgError::InvalidOffset),
                !valid,
                "write {size}@{offset:#x}: {r:?}"
            );
            if r.is_ok() {
                u32::from(offset)..u32::from(offset) + u32::from(size)
            } else {
                0..0
            }
        } else {
            let r = dev.read(&mut host, offset, size);
            match r {
                Ok(v) => {
                    assert!(valid, "read {size}@{offset:#x} accepted");
                    if offset >= 0x100 {
                        assert_eq!(v, 0, "extended config read {size}@{offset:#x}");
                    }
                    if size < 4 {
                        let dword = dev.read(&mut host, offset & !3, 4);
                        let shift = u32::from(offset & 3) * 8;
                        let mask = (1u32 << (8 * u32::from(size))) - 1;
                        assert_eq!(Ok(v), dword.map(|d| (d >> shift) & mask));
                    }
                }
                Err(e) => assert!(!valid && e == CfgError::InvalidOffset, "{e:?}"),
            }
            0..0
        };
        for (o, v) in &bars {
            assert_eq!(host.peek_config(sbdf, *o), *v, "host BAR at {o:#x} moved");
        }
        rw1c_set(&host, &dev, &rw1c_regs, &mut after);
        for ((off, was), now) in rw1c_regs.iter().zip(&before).zip(&after) {
            // The register's bytes the access did not write.
            let kept = (0..4u32)
                .filter(|b| !written.contains(&(u32::from(*off) + b)))
                .fold(0, |m, b| m | 0xffu32 << (8 * b));
            assert_eq!(
                now & was & kept,
                was & kept,
                "RW1C bits at {off:#x} cleared by {size}@{offset:#x}"
            );
        }
    }
    // The guest's capability list.
    let mut at = dev
        .read(&mut host, 0x34, 1)
        .expect("the capability pointer reads");
    let mut steps = 0;
    while at != 0 {
        steps += 1;
        assert!(steps <= 48, "the capability list does not end");
        assert!(
            (0x40..0x100).contains(&at) && at % 4 == 0,
            "pointer {at:#x}"
        );
        let off = at as u16;
        let id = dev.read(&mut host, off, 1).expect("a capability reads") as u8;
        assert!(
            caps.contains(&(id, off)),
            "capability {id:#x} at {off:#x} is not the hardware's"
        );
        at = dev
            .read(&mut host, off + 1, 1)
            .expect("a next pointer reads");
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::path::PathBuf;

    #[test]
    fn config_writes_corpus_replays() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/config_writes");
        let mut files: std::vec::Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{}: no seeds", dir.display());
        for f in files {
            std::println!("replaying {}", f.display());
            super::config_writes(&std::fs::read(&f).unwrap());
        }
    }
}
