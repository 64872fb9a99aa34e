//! `bench-only=`: one operation repeated N times after the scan and
//! nothing else, so that the hypervisor's exit counts at the domain's end,
//! minus those of a run with no operation (`baseline`), divided by N, are
//! the exits of one operation.
//!
//! Every phase, the baseline included, does the same setup first: with
//! edu present, decoding and bus mastering on, BAR0 mapped and MSI
//! enabled; afterwards MSI is disabled. Only the operations differ
//! between two runs.
//!
//! `paired:<N>` times N rounds of the operations the ratio goals compare
//! (a hypercall round trip, a config read, a config write, an edu
//! interrupt), one of each per round, and prints a line per operation
//! (`paired-<phase>`): the machine's load moves all four alike, where
//! separate runs can land in a faster or slower stretch of it.

use core::sync::atomic::{AtomicU64, Ordering};

use super::edu::{self, reg, DEVICE_BUFFER, DMA_TO_EDU};
use super::mmio::Mmio;
use super::pio::Pio;
use super::{command, BarKind, Function, Functions, Irq, Transport};
use crate::report::{check, check_eq};
use crate::{cpu, println};

/// Operations one run may ask for.
pub const MAX_OPS: u32 = 1_000_000;

/// One measured operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The setup only.
    Baseline,
    /// A 4-byte config read of the vendor and device IDs.
    ConfRead,
    /// A 1-byte config write of Cache Line Size (0x0c) with its value.
    ConfWrite,
    /// edu raises an interrupt; the guest waits for it and acknowledges.
    EduIrq,
    /// A read of edu's identification register through the mapped BAR.
    EduMmio,
    /// A 2 KiB DMA from RAM to edu, waited for by its run bit.
    EduDma,
    /// STATUS of the function with an I/O BAR (the e1000e) through it:
    /// IOADDR written, IODATA read.
    IoRead,
    /// `xen_version(0)` with the hypervisor's instruction, directly: one
    /// world switch, what the other operations are measured against.
    Hypercall,
    /// The e1000e raises its MSI-X Other interrupt (an ICS write); the
    /// guest waits for its event and reads ICR.
    MsixIrq,
    /// [`PAIRED`] in turn, one of each per round.
    Paired,
}

/// The operations a `paired` round does, in order.
pub const PAIRED: [Phase; 4] = [
    Phase::Hypercall,
    Phase::ConfRead,
    Phase::ConfWrite,
    Phase::EduIrq,
];

impl Phase {
    /// Every phase, by name.
    pub const ALL: [Phase; 10] = [
        Phase::Baseline,
        Phase::ConfRead,
        Phase::ConfWrite,
        Phase::EduIrq,
        Phase::EduMmio,
        Phase::EduDma,
        Phase::IoRead,
        Phase::Hypercall,
        Phase::MsixIrq,
        Phase::Paired,
    ];

    /// The name on the command line and in the `xpci-bench:` line.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Baseline => "baseline",
            Phase::ConfRead => "conf-read",
            Phase::ConfWrite => "conf-write",
            Phase::EduIrq => "edu-irq",
            Phase::EduMmio => "edu-mmio",
            Phase::EduDma => "edu-dma",
            Phase::IoRead => "io-read",
            Phase::Hypercall => "hypercall",
            Phase::MsixIrq => "msix-irq",
            Phase::Paired => "paired",
        }
    }

    fn needs_edu(self) -> bool {
        matches!(
            self,
            Phase::EduIrq | Phase::EduMmio | Phase::EduDma | Phase::Paired
        )
    }
}

/// What `bench-only=` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Only {
    pub phase: Phase,
    pub ops: u32,
    /// Where guest-physical 0-2 MiB is in host memory (`hv.hpa0=`, given
    /// by the hypervisor's `debug.hpa`): DMA addresses are then host
    /// addresses, for runs where no IOMMU translates them.
    pub host_base: Option<u64>,
}

impl Only {
    /// `<phase>:<N>` (N decimal, at most [`MAX_OPS`]), or `baseline`.
    pub fn parse(v: &str) -> Option<Only> {
        let (name, ops) = match v.split_once(':') {
            Some((name, n)) => (name, n.parse::<u32>().ok()?.min(MAX_OPS)),
            None => (v, 0),
        };
        let phase = Phase::ALL.into_iter().find(|p| p.name() == name)?;
        let ops = if phase == Phase::Baseline { 0 } else { ops };
        Some(Only {
            phase,
            ops,
            host_base: None,
        })
    }
}

/// Samples kept for the median; beyond it every k-th operation is kept.
const KEPT: usize = 16384;

/// The samples of each operation a run times: one set per operation of a
/// `paired` round, the first for any other phase.
static SAMPLES: [[AtomicU64; KEPT]; PAIRED.len()] =
    [const { [const { AtomicU64::new(0) }; KEPT] }; PAIRED.len()];

/// Every operation's TSC cycles: count and total of all, and up to
/// [`KEPT`] of them (evenly spread) for the median.
struct Tally {
    samples: &'static [AtomicU64; KEPT],
    n: u64,
    total: u64,
    kept: usize,
    stride: u64,
}

impl Tally {
    /// A tally of `ops` operations into sample set `set`.
    fn new(ops: u32, set: usize) -> Tally {
        Tally {
            samples: &SAMPLES[set],
            n: 0,
            total: 0,
            kept: 0,
            stride: u64::from(ops).div_ceil(KEPT as u64).max(1),
        }
    }

    fn push(&mut self, cycles: u64) {
        if self.n.is_multiple_of(self.stride) {
            if let Some(s) = self.samples.get(self.kept) {
                s.store(cycles, Ordering::Relaxed);
                self.kept += 1;
            }
        }
        self.n += 1;
        self.total = self.total.saturating_add(cycles);
    }

    /// The median of the kept samples (the upper one of an even count).
    fn median(&self) -> u64 {
        let s = &self.samples[..self.kept];
        heapsort(s);
        s.get(s.len() / 2).map_or(0, |v| v.load(Ordering::Relaxed))
    }

    /// Prints `xpci-bench: <prefix><name> n .. median .. mean .. total ..`.
    fn report(&self, prefix: &str, name: &str) {
        let mean = self.total.checked_div(self.n).unwrap_or(0);
        println!(
            "xpci-bench: {prefix}{name} n {} median {} mean {mean} total {}",
            self.n,
            self.median(),
            self.total
        );
    }
}

/// Sorts `s` in place (no allocation, no recursion).
fn heapsort(s: &[AtomicU64]) {
    let get = |i: usize| s[i].load(Ordering::Relaxed);
    let swap = |a: usize, b: usize| {
        let (x, y) = (get(a), get(b));
        s[a].store(y, Ordering::Relaxed);
        s[b].store(x, Ordering::Relaxed);
    };
    let sift = |mut root: usize, end: usize| loop {
        let mut child = 2 * root + 1;
        if child >= end {
            break;
        }
        if child + 1 < end && get(child) < get(child + 1) {
            child += 1;
        }
        if get(root) >= get(child) {
            break;
        }
        swap(root, child);
        root = child;
    };
    for i in (0..s.len() / 2).rev() {
        sift(i, s.len());
    }
    for end in (1..s.len()).rev() {
        swap(0, end);
        sift(0, end);
    }
}

/// edu set up for the phases: BAR0 and its MSI.
struct Edu {
    mmio: Mmio,
    irq: Option<Irq>,
}

/// Runs `only` on the first edu function found (config phases: on the
/// first function when there is no edu).
pub fn run<T: Transport>(t: &mut T, found: &Functions, only: Only) {
    let edu_fn = found.iter().find(|f| f.ids() == edu::IDS);
    let Some(target) = edu_fn.or_else(|| found.iter().next()) else {
        check("bench: a function to measure", false);
        return;
    };
    let dev = edu_fn.and_then(|f| setup(t, f));
    if only.phase.needs_edu() && dev.is_none() {
        println!("xpci-bench: {} needs edu", only.phase.name());
        check("bench: edu ready", false);
        return;
    }
    let mut tally = Tally::new(only.ops, 0);
    let mut failed = 0u64;
    match (only.phase, &dev) {
        (Phase::Baseline, _) => {}
        (Phase::ConfRead, _) => {
            for _ in 0..only.ops {
                let t0 = cpu::rdtsc();
                let r = t.read(target.addr, super::reg::ID, 4);
                tally.push(cpu::rdtsc().wrapping_sub(t0));
                failed += u64::from(r.is_err());
            }
        }
        (Phase::ConfWrite, _) => {
            let value = t.read(target.addr, CACHE_LINE_SIZE, 1).unwrap_or(0);
            for _ in 0..only.ops {
                let t0 = cpu::rdtsc();
                let r = t.write(target.addr, CACHE_LINE_SIZE, 1, value);
                tally.push(cpu::rdtsc().wrapping_sub(t0));
                failed += u64::from(r.is_err());
            }
        }
        (
            Phase::EduIrq,
            Some(Edu {
                mmio,
                irq: Some(irq),
            }),
        ) => {
            for _ in 0..only.ops {
                match edu::raise(mmio, *irq) {
                    Some(c) => tally.push(c),
                    None => {
                        failed += 1;
                        break;
                    }
                }
            }
        }
        (Phase::EduMmio, Some(Edu { mmio, .. })) => {
            for _ in 0..only.ops {
                let t0 = cpu::rdtsc();
                let v = mmio.read32(reg::ID);
                tally.push(cpu::rdtsc().wrapping_sub(t0));
                failed += u64::from(v != edu::ID_VALUE);
            }
        }
        (Phase::EduDma, Some(Edu { mmio, .. })) => {
            let (src, _) = edu::buffers();
            let from = match only.host_base {
                // One contiguous host chunk backs guest-physical 0-2 MiB.
                Some(base) if src.addr() + edu::DMA_BYTES as u64 <= 2 << 20 => {
                    println!(
                        "xpci-bench: edu DMA from host-physical {:#x} (hv.hpa0={base:#x}): no IOMMU translates it",
                        base + src.addr()
                    );
                    base + src.addr()
                }
                Some(_) => {
                    println!("xpci-bench: the DMA buffer is beyond the 2 MiB hv.hpa0= covers");
                    failed += 1;
                    src.addr()
                }
                None => src.addr(),
            };
            for _ in 0..only.ops {
                if failed > 0 {
                    break;
                }
                match edu::dma(mmio, from, DEVICE_BUFFER, DMA_TO_EDU, None) {
                    Some(c) => tally.push(c),
                    None => {
                        failed += 1;
                        break;
                    }
                }
            }
        }
        (Phase::Hypercall, _) => {
            for _ in 0..only.ops {
                let t0 = cpu::rdtsc();
                let r = crate::hypervisor::xen_version_direct();
                tally.push(cpu::rdtsc().wrapping_sub(t0));
                failed += u64::from(r < 0);
            }
        }
        (
            Phase::Paired,
            Some(Edu {
                mmio,
                irq: Some(irq),
            }),
        ) => {
            let mut tallies = [0, 1, 2, 3].map(|set| Tally::new(only.ops, set));
            let value = t.read(target.addr, CACHE_LINE_SIZE, 1).unwrap_or(0);
            for _ in 0..only.ops {
                let t0 = cpu::rdtsc();
                let r = crate::hypervisor::xen_version_direct();
                tallies[0].push(cpu::rdtsc().wrapping_sub(t0));
                failed += u64::from(r < 0);
                let t0 = cpu::rdtsc();
                let r = t.read(target.addr, super::reg::ID, 4);
                tallies[1].push(cpu::rdtsc().wrapping_sub(t0));
                failed += u64::from(r.is_err());
                let t0 = cpu::rdtsc();
                let r = t.write(target.addr, CACHE_LINE_SIZE, 1, value);
                tallies[2].push(cpu::rdtsc().wrapping_sub(t0));
                failed += u64::from(r.is_err());
                match edu::raise(mmio, *irq) {
                    Some(c) => tallies[3].push(c),
                    None => {
                        failed += 1;
                        break;
                    }
                }
            }
            for (tally, phase) in tallies.iter().zip(PAIRED) {
                tally.report("paired-", phase.name());
            }
        }
        (Phase::MsixIrq, _) => {
            let e1000e = found.iter().find(|f| f.ids() == super::e1000::E1000E_IDS);
            match e1000e.and_then(|f| super::e1000::MsixIrq::setup(t, f).map(|m| (f, m))) {
                Some((f, m)) => {
                    for _ in 0..only.ops {
                        match m.raise() {
                            Some(c) => tally.push(c),
                            None => {
                                failed += 1;
                                break;
                            }
                        }
                    }
                    failed += u64::from(!m.finish(t, f));
                }
                None => {
                    println!("xpci-bench: msix-irq needs an e1000e with MSI-X");
                    failed += 1;
                }
            }
        }
        (Phase::IoRead, _) => match io_window(t, found) {
            Some(pio) => {
                for _ in 0..only.ops {
                    let t0 = cpu::rdtsc();
                    pio.write32(IOADDR, STATUS);
                    let v = pio.read32(IODATA);
                    tally.push(cpu::rdtsc().wrapping_sub(t0));
                    failed += u64::from(v == u32::MAX);
                }
            }
            None => failed += 1,
        },
        (phase, _) => {
            println!("xpci-bench: {}: edu's MSI is not enabled", phase.name());
            failed += 1;
        }
    }
    if only.phase != Phase::Paired {
        tally.report("", only.phase.name());
    }
    if failed > 0 {
        println!("xpci-bench: {} {failed} failed", only.phase.name());
    }
    check_eq("bench: every operation succeeded", failed, 0);
    if let (Some(f), Some(Edu { irq: Some(_), .. })) = (edu_fn, &dev) {
        check_eq("bench: edu's MSI disabled", t.disable_msi(f), Ok(()));
    }
}

/// Cache Line Size (8 bits).
const CACHE_LINE_SIZE: u16 = 0x0c;

/// The e1000's I/O window registers and the one read through it.
const IOADDR: u16 = 0x0;
const IODATA: u16 = 0x4;
const STATUS: u32 = 0x8;

/// The I/O window of the first function with an I/O BAR, its I/O decode
/// turned on (once, before the measured operations).
fn io_window<T: Transport>(t: &mut T, found: &Functions) -> Option<Pio> {
    let Some((f, bar)) = found.iter().find_map(|f| {
        let bar = f.bars.iter().flatten().find(|b| b.kind == BarKind::Io)?;
        Some((f, *bar))
    }) else {
        println!("xpci-bench: io-read needs a function with an I/O BAR");
        return None;
    };
    if super::enable(t, f, command::IO_SPACE).map_or(true, |c| c & command::IO_SPACE == 0) {
        println!("xpci-bench: io-read: I/O decode did not turn on");
        return None;
    }
    Pio::new(&bar)
}

/// Decoding, bus mastering, BAR0 and MSI of edu function `f`.
fn setup<T: Transport>(t: &mut T, f: &Function) -> Option<Edu> {
    let mmio = match edu::open(t, f) {
        Ok(m) => m,
        Err(why) => {
            println!("xpci-bench: edu: {why}");
            return None;
        }
    };
    let irq = match t.enable_msi(f) {
        Ok(irq) => Some(irq),
        Err(e) => {
            println!("xpci-bench: edu: enable MSI: {e}");
            None
        }
    };
    Some(Edu { mmio, irq })
}
