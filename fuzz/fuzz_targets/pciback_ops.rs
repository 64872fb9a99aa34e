//! The PCI backend of one guest, driven as a frontend would: the backend is
//! created over two functions (an MSI endpoint and an MSI-X endpoint of
//! another device), connected, then fed a script of ops on the shared page
//! (structured ops, raw page bytes) and frontend state changes.
//!
//! Checks: no panic; while connected, a posted op is answered (bit 0
//! cleared, `notify`) and only `err`, `value`, the vectors and bit 0
//! change; otherwise the page is untouched; the host BARs never move; the
//! backend writes `Closed` only after `Closing`.
#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pciback::backend::op::{self, field};
use pciback::backend::{Action, PciBackend, Store, Topology, XenbusState, XlOpts};
use pciback::vdev::{BarInfo, BarKind, DeviceInfo, DeviceOptions, VirtDevice};
use vmm_glue::{IrqError, MapError, MsiRoute, MsiSource, PassthroughHost, PciConfig, Sbdf};

/// xenstore: values only, with a log of the backend's `state` writes.
#[derive(Clone, Default)]
struct Xs {
    nodes: HashMap<String, String>,
    states: Vec<String>,
}

impl Store for Xs {
    fn read(&mut self, path: &str) -> Option<String> {
        self.nodes.get(path).cloned()
    }
    fn write(&mut self, path: &str, value: &str) -> bool {
        if path.starts_with("/local/domain/0/backend/") && path.ends_with("/0/state") {
            self.states.push(value.to_string());
        }
        self.nodes.insert(path.to_string(), value.to_string());
        true
    }
    fn mkdir(&mut self, path: &str) -> bool {
        self.nodes.entry(path.to_string()).or_default();
        true
    }
    fn rm(&mut self, path: &str) -> bool {
        let below = format!("{path}/");
        self.nodes
            .retain(|p, _| p != path && !p.starts_with(&below));
        true
    }
    fn set_perms(&mut self, _: &str, _: u16, _: &[u16]) -> bool {
        true
    }
}

/// One register: its value and the bits a write replaces.
#[derive(Clone, Copy)]
struct Reg(u32, u32);

/// Two functions' config spaces (A's, then B's, a register per dword);
/// anything unlisted reads 0 and ignores writes; absent functions read all
/// ones.
#[derive(Clone)]
struct Host {
    regs: [[Reg; 64]; 2],
    mapped: u64,
    next_pirq: u32,
}

const A: Sbdf = Sbdf {
    seg: 0,
    bus: 0,
    dev: 2,
    func: 0,
};
const B: Sbdf = Sbdf {
    seg: 0,
    bus: 1,
    dev: 0,
    func: 1,
};
const BAR_A: u64 = 0xfea0_0000;
const BAR_B: u64 = 0xfebf_0000;

impl Host {
    fn new() -> Self {
        let mut regs = [[Reg(0, 0); 64]; 2];
        let mut set = |s: Sbdf, o: u16, v: u32, w: u32| {
            regs[usize::from(s == B)][usize::from(o / 4)] = Reg(v, w);
        };
        // A: 1234:11e8, 1 MiB 32-bit BAR0, MSI (64-bit) at 0x40, pirq 11.
        set(A, 0x00, 0x11e8_1234, 0);
        set(A, 0x04, 0x0010_0000, 0x0000_0547);
        set(A, 0x08, 0x00ff_0010, 0);
        set(A, 0x10, BAR_A as u32, 0xfff0_0000);
        set(A, 0x34, 0x40, 0);
        set(A, 0x3c, 0x0000_010b, 0xff);
        set(A, 0x40, 0x0080_0005, 0x0071_0000);
        set(A, 0x44, 0, 0xffff_fffc);
        set(A, 0x48, 0, 0xffff_ffff);
        set(A, 0x4c, 0, 0xffff);
        // B: 1b36:0010, 16 KiB 64-bit BAR0, MSI-X (8 entries, table at
        // 0x2000, PBA at 0x3000) at 0x40, multi-function bit set.
        set(B, 0x00, 0x0010_1b36, 0);
        set(B, 0x04, 0x0010_0000, 0x0000_0547);
        set(B, 0x08, 0x0108_0202, 0);
        set(B, 0x0c, 0x0080_0000, 0);
        set(B, 0x10, BAR_B as u32 | 4, 0xffff_c000);
        set(B, 0x14, 0, 0xffff_ffff);
        set(B, 0x34, 0x40, 0);
        set(B, 0x3c, 0x0000_010a, 0xff);
        set(B, 0x40, 0x0007_0011, 0xc000_0000);
        set(B, 0x44, 0x2000, 0);
        set(B, 0x48, 0x3000, 0);
        Self {
            regs,
            mapped: 0,
            next_pirq: 16,
        }
    }

    fn bars(&self) -> [u32; 3] {
        let r = |s: usize, o: usize| self.regs[s][o / 4].0;
        [r(0, 0x10), r(1, 0x10), r(1, 0x14)]
    }

    fn info(s: Sbdf) -> DeviceInfo {
        let (bar, kind, size, pirq) = if s == A {
            (BAR_A, BarKind::Mem32, 1 << 20, 11)
        } else {
            (BAR_B, BarKind::Mem64, 16 << 10, 10)
        };
        DeviceInfo {
            sbdf: s,
            header_type: 0,
            bars: vec![BarInfo {
                index: 0,
                kind,
                prefetchable: false,
                base: bar,
                size,
            }],
            rom: None,
            config_size: 256,
            intx_pirq: pirq,
        }
    }
}

impl PciConfig for Host {
    fn read32(&mut self, sbdf: Sbdf, offset: u16) -> u32 {
        if sbdf != A && sbdf != B {
            return u32::MAX;
        }
        self.regs[usize::from(sbdf == B)]
            .get(usize::from(offset / 4))
            .map_or(0, |r| r.0)
    }
    fn write32(&mut self, sbdf: Sbdf, offset: u16, value: u32) {
        if sbdf != A && sbdf != B {
            return;
        }
        if let Some(r) = self.regs[usize::from(sbdf == B)].get_mut(usize::from(offset / 4)) {
            r.0 = (r.0 & !r.1) | (value & r.1);
        }
    }
    fn config_size(&self, _: Sbdf) -> u16 {
        256
    }
}

impl PassthroughHost for Host {
    fn config(&mut self) -> &mut dyn PciConfig {
        self
    }
    fn map_mmio(&mut self, gpa: u64, _: u64, len: u64) -> Result<(), MapError> {
        if len == 0 || (gpa | len) & 0xfff != 0 {
            return Err(MapError::Unaligned);
        }
        self.mapped += 1;
        Ok(())
    }
    fn unmap_mmio(&mut self, _: u64, _: u64) {}
    fn map_ports(&mut self, _: u16, len: u16) -> Result<(), MapError> {
        if len == 0 {
            return Err(MapError::Unaligned);
        }
        Ok(())
    }
    fn unmap_ports(&mut self, _: u16, _: u16) {}
    fn mmio_read(&mut self, _: u64, _: u8) -> u64 {
        0
    }
    fn mmio_write(&mut self, _: u64, _: u8, _: u64) {}
    fn alloc_msi(&mut self, _: Sbdf, _: MsiSource) -> Result<MsiRoute, IrqError> {
        if self.next_pirq > 300 {
            return Err(IrqError::Exhausted);
        }
        self.next_pirq += 1;
        Ok(MsiRoute {
            pirq: self.next_pirq,
            address: 0xfee0_0000,
            data: 0x40,
        })
    }
    fn free_msi(&mut self, _: Sbdf, _: u32) {}
    fn delay_us(&mut self, _: u32) {}
}

const FE: &str = "/local/domain/1/device/pci/0";

fn take<const N: usize>(data: &mut &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = N.min(data.len());
    out[..n].copy_from_slice(&data[..n]);
    *data = &data[n..];
    out
}

fn put(page: &mut [u8; 4096], at: usize, v: u32) {
    page[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// The bytes an answer may change: bit 0 of flags, err, value, vectors.
fn may_change(i: usize) -> bool {
    let o = i.wrapping_sub(op::OP);
    i < op::OP
        || (field::ERR..field::ERR + 4).contains(&o)
        || (field::VALUE..field::VALUE + 4).contains(&o)
        || ((field::MSIX_ENTRIES..op::OP_SIZE).contains(&o) && (o - field::MSIX_ENTRIES) % 4 < 2)
}

/// What every input starts from: the backend created over the two
/// functions and connected, with its host and xenstore.
#[derive(Clone)]
struct Start {
    /// The host's BAR registers before the backend existed.
    bars: [u32; 3],
    host: Host,
    b: PciBackend,
    xs: Xs,
}

/// The start for the selector's bits: 0 `permissive`, 1 the passthrough
/// topology. Setting up is deterministic, so it is done once per selector
/// and each input gets a copy.
fn start(knobs: u8) -> Start {
    let mut host = Host::new();
    let bars = host.bars();
    let opts = DeviceOptions {
        permissive: knobs & 1 != 0,
    };
    let devices = [A, B]
        .map(|s| {
            (
                VirtDevice::new(Host::info(s), opts, &mut host),
                XlOpts::default(),
            )
        })
        .into_iter()
        .collect();
    let topology = if knobs & 2 != 0 {
        Topology::Passthrough
    } else {
        Topology::Virtual
    };
    let mut b = PciBackend::new(1, "fuzz", devices, topology);
    let mut xs = Xs::default();
    b.create(&mut xs).expect("two endpoints export");
    for (k, v) in [
        ("pci-op-ref", "8"),
        ("event-channel", "9"),
        ("magic", "7"),
        ("state", "3"),
    ] {
        xs.nodes.insert(format!("{FE}/{k}"), v.to_string());
    }
    assert!(matches!(
        b.changed(&mut xs),
        Action::Connect {
            gref: 8,
            remote_port: 9
        }
    ));
    b.connect_done(&mut xs, Ok(()));
    assert_eq!(b.state(), XenbusState::Connected);
    Start { bars, host, b, xs }
}

static STARTS: OnceLock<[Start; 4]> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let [knobs] = take::<1>(&mut data);
    let Start {
        bars,
        mut host,
        mut b,
        mut xs,
    } = STARTS.get_or_init(|| [0, 1, 2, 3].map(start))[usize::from(knobs & 3)].clone();
    let topology = if knobs & 2 != 0 {
        Topology::Passthrough
    } else {
        Topology::Virtual
    };

    let mut page = [0u8; 4096];
    let mut steps = 0;
    while !data.is_empty() && steps < 256 {
        steps += 1;
        let [what] = take::<1>(&mut data);
        match what % 8 {
            // A frontend state change (a state, or garbage).
            0 => {
                let [s] = take::<1>(&mut data);
                let v = if s < 10 {
                    s.to_string()
                } else {
                    format!("x{s}")
                };
                xs.nodes.insert(format!("{FE}/state"), v);
                if let Action::Connect { .. } = b.changed(&mut xs) {
                    b.connect_done(&mut xs, if s & 1 == 0 { Ok(()) } else { Err("refused") });
                }
            }
            // Raw bytes over the op.
            1 => {
                let [len] = take::<1>(&mut data);
                let n = usize::from(len).min(data.len()).min(op::SHAREDINFO_SIZE);
                page[..n].copy_from_slice(&data[..n]);
                data = &data[n..];
            }
            // A structured op, posted.
            _ => {
                let [cmd, devfn, sz, nvec] = take::<4>(&mut data);
                let offset = u16::from_le_bytes(take::<2>(&mut data));
                let value = u32::from_le_bytes(take::<4>(&mut data));
                let devfn = match devfn % 4 {
                    0 => 0,
                    1 => 1,
                    2 if topology == Topology::Passthrough => 1,
                    _ => u32::from(devfn),
                };
                let bus = if topology == Topology::Passthrough && cmd & 0x80 != 0 {
                    1
                } else {
                    0
                };
                put(
                    &mut page,
                    op::FLAGS,
                    op::FLAG_PCIF_ACTIVE | op::FLAG_PCIB_AERHANDLER,
                );
                put(&mut page, op::OP + field::CMD, u32::from(cmd % 12));
                put(&mut page, op::OP + field::BUS, bus);
                put(&mut page, op::OP + field::DEVFN, devfn);
                put(&mut page, op::OP + field::OFFSET, u32::from(offset % 0x110));
                put(
                    &mut page,
                    op::OP + field::SIZE,
                    [1, 2, 4, 3, 8, 0][usize::from(sz % 6)],
                );
                let value = if cmd % 12 == 4 {
                    u32::from(nvec)
                } else {
                    value
                };
                put(&mut page, op::OP + field::VALUE, value);
                for i in 0..usize::from(nvec).min(op::SH_INFO_MAX_VEC) {
                    let at = op::OP + field::MSIX_ENTRIES + 4 * i;
                    put(&mut page, at, (i as u32 % 9) << 16 | 0xffff);
                }
            }
        }
        let before = page;
        let connected = b.state() == XenbusState::Connected;
        let served = b.serve(&mut host, &mut page);
        if connected && op::active(&before) {
            assert!(served.notify);
            assert!(!op::active(&page));
            assert_eq!(op::flags(&page), op::flags(&before) & !op::FLAG_PCIF_ACTIVE);
            // Past the op nothing may change: compared as a whole; the
            // op's bytes one by one where its 8-byte words differ.
            let end = op::OP + op::OP_SIZE;
            assert!(page[end..] == before[end..]);
            fn words(p: &[u8]) -> impl Iterator<Item = u64> + '_ {
                let w = p[..op::OP + op::OP_SIZE].chunks_exact(8);
                w.map(|w| u64::from_le_bytes(w.try_into().unwrap()))
            }
            for (w, (p, q)) in words(&page).zip(words(&before)).enumerate() {
                if p != q {
                    let (p, q) = (p.to_le_bytes(), q.to_le_bytes());
                    assert!((0..p.len()).all(|i| p[i] == q[i] || may_change(8 * w + i)));
                }
            }
        } else {
            assert!(!served.notify);
            assert_eq!(page, before);
        }
        assert_eq!(host.bars(), bars, "host BARs moved");
    }
    for (i, s) in xs.states.iter().enumerate() {
        if s == "6" {
            assert_eq!(
                xs.states[i - 1],
                "5",
                "Closed without Closing: {:?}",
                xs.states
            );
        }
    }
});
