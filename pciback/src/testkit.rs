//! Test support shared by pciback's host tests: the config spaces of real
//! devices as QEMU presents them, and [`FakeHost`], a recording
//! [`PassthroughHost`].
//!
//! A [`Fixture`] is one function: its [`DeviceInfo`] (what the hypervisor
//! found at boot), its config space as a [`FakeConfig`] (quiesced: decode,
//! bus mastering and interrupts off, as pciback leaves a hidden function),
//! where its capabilities are, and where its MSI-X table lives.
//! [`Fixture::host`] puts it in a [`FakeHost`]; [`Fixture::device`] also
//! builds the [`VirtDevice`] over it.
//!
//! ```ignore
//! let (mut host, mut dev) = testkit::nvme().device(DeviceOptions::default());
//! dev.write(&mut host, 0x10, 4, 0xe000_0000, &mut notices)?;
//! dev.write(&mut host, 0x04, 2, 0x0002, &mut notices)?; // memory decode on
//! assert!(host.is_mapped(0xe000_0000));
//! ```
//!
//! The layouts are stable: tests elsewhere in the crate rely on the
//! addresses, sizes and capability offsets documented on each constructor.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

use vmm_glue::{IrqError, MapError, MsiRoute, MsiSource, PassthroughHost, PciConfig, Sbdf};

use crate::fake_config::FakeConfig;
use crate::vdev::{BarInfo, BarKind, DeviceInfo, DeviceOptions, VirtDevice};

/// Capability IDs the fixtures use.
pub mod cap_id {
    /// Power Management.
    pub const PM: u8 = 0x01;
    /// Slot Identification.
    pub const SLOT_ID: u8 = 0x04;
    /// MSI.
    pub const MSI: u8 = 0x05;
    /// Vendor-specific.
    pub const VENDOR: u8 = 0x09;
    /// Standard Hot-Plug Controller.
    pub const SHPC: u8 = 0x0c;
    /// PCI Express.
    pub const PCIE: u8 = 0x10;
    /// MSI-X.
    pub const MSIX: u8 = 0x11;
}

/// The address every endpoint fixture sits at unless moved with
/// [`Fixture::at`]: `0000:00:03.0`.
pub fn sbdf() -> Sbdf {
    Sbdf::new(0, 0, 3, 0).unwrap()
}

/// Where a function's MSI-X table and PBA are (from its capability).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsixLayout {
    /// Offset of the capability.
    pub cap: u16,
    /// Number of table entries.
    pub entries: u16,
    /// BAR index holding the table.
    pub table_bar: u8,
    /// Offset of the table in that BAR.
    pub table_offset: u32,
    /// BAR index holding the PBA.
    pub pba_bar: u8,
    /// Offset of the PBA in that BAR.
    pub pba_offset: u32,
}

/// One function: what the hypervisor knows of it and its config space.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// What the hypervisor found at boot (BARs at their host addresses).
    pub info: DeviceInfo,
    /// The hardware config space.
    pub config: FakeConfig,
    /// `(capability ID, offset)` in the order the hardware's list chains
    /// them.
    pub caps: Vec<(u8, u16)>,
    /// The MSI-X table, if the function has MSI-X.
    pub msix: Option<MsixLayout>,
}

impl Fixture {
    /// The offset of the first capability with ID `id` in the hardware's
    /// list.
    pub fn cap(&self, id: u8) -> Option<u16> {
        self.caps.iter().find(|&&(i, _)| i == id).map(|&(_, o)| o)
    }

    /// The BAR with register index `index`.
    pub fn bar(&self, index: u8) -> BarInfo {
        *self
            .info
            .bars
            .iter()
            .find(|b| b.index == index)
            .expect("fixture BAR")
    }

    /// The host address of MSI-X table entry `n`.
    pub fn msix_entry_hpa(&self, n: u16) -> u64 {
        let m = self.msix.expect("fixture has MSI-X");
        self.bar(m.table_bar).base + u64::from(m.table_offset) + 16 * u64::from(n)
    }

    /// The same function at address `sbdf`.
    pub fn at(mut self, sbdf: Sbdf) -> Self {
        self.info.sbdf = sbdf;
        self.config.sbdf = sbdf;
        self
    }

    /// A [`FakeHost`] holding this function's config space, with its MSI-X
    /// table entries masked in device memory (their reset state).
    pub fn host(&self) -> FakeHost {
        let mut host = FakeHost::new();
        host.add_function(self.config.clone());
        if let Some(m) = self.msix {
            for n in 0..m.entries {
                host.poke(self.msix_entry_hpa(n) + 12, 4, 1);
            }
        }
        host
    }

    /// [`host`](Self::host) and the [`VirtDevice`] built over it.
    pub fn device(&self, opts: DeviceOptions) -> (FakeHost, VirtDevice) {
        let mut host = self.host();
        let dev = VirtDevice::new(self.info.clone(), opts, host.config());
        (host, dev)
    }
}

/// The fixtures' constructors, in the order of [`all`].
pub const ALL: [fn() -> Fixture; 5] = [edu, nvme, e1000e, bridge, synthetic];

/// All the fixtures, for tests that hold for every device.
pub fn all() -> Vec<Fixture> {
    ALL.iter().map(|f| f()).collect()
}

/// Builds a config space a field at a time.
struct Space {
    cfg: FakeConfig,
}

impl Space {
    fn new(sbdf: Sbdf, size: u16) -> Self {
        Self {
            cfg: FakeConfig::new(sbdf).with_size(size),
        }
    }

    /// Sets the `size`-byte field at `offset` to `value`, with `writable`
    /// and write-1-to-clear `rw1c` bits (relative to the field).
    fn field(&mut self, offset: u16, size: u8, value: u32, writable: u32, rw1c: u32) -> &mut Self {
        let shift = u32::from(offset & 3) * 8;
        let mask = if size == 4 {
            u32::MAX
        } else {
            ((1u32 << (u32::from(size) * 8)) - 1) << shift
        };
        let reg = self.cfg.regs.entry(offset & !3).or_default();
        reg.value = (reg.value & !mask) | ((value << shift) & mask);
        reg.writable = (reg.writable & !mask) | ((writable << shift) & mask);
        reg.rw1c = (reg.rw1c & !mask) | ((rw1c << shift) & mask);
        self
    }

    fn ro(&mut self, offset: u16, size: u8, value: u32) -> &mut Self {
        self.field(offset, size, value, 0, 0)
    }

    /// The common header: IDs, command (quiesced: INTx disabled, writable
    /// IO, MEM, MASTER, MWI, PARITY, SERR, INTX_DISABLE), status with the
    /// error bits write-1-to-clear, revision and class, header type, cache
    /// line size (writable), capability pointer, Interrupt Line (writable)
    /// and Pin.
    #[allow(clippy::too_many_arguments)]
    fn header(
        &mut self,
        vendor: u16,
        device: u16,
        class_rev: u32,
        header_type: u8,
        status: u16,
        cap_ptr: u8,
        pin: u8,
    ) -> &mut Self {
        self.ro(0x00, 2, vendor.into())
            .ro(0x02, 2, device.into())
            .field(0x04, 2, 0x0400, 0x0557, 0)
            .field(0x06, 2, status.into(), 0, 0xf900)
            .ro(0x08, 4, class_rev)
            .field(0x0c, 1, 0, 0xff, 0)
            .ro(0x0e, 1, header_type.into())
            .ro(0x34, 1, cap_ptr.into())
            .field(0x3c, 1, 0xff, 0xff, 0)
            .ro(0x3d, 1, pin.into())
    }

    fn subsystem(&mut self, vendor: u16, id: u16) -> &mut Self {
        self.ro(0x2c, 2, vendor.into()).ro(0x2e, 2, id.into())
    }

    /// A memory or I/O BAR at register `index` programmed to `bar.base`.
    fn bar(&mut self, bar: &BarInfo) -> &mut Self {
        let reg = 0x10 + 4 * u16::from(bar.index);
        match bar.kind {
            BarKind::Io => {
                let mask = !(bar.size as u32 - 1) & !3;
                self.field(reg, 4, bar.base as u32 | 1, mask, 0)
            }
            BarKind::Mem32 => {
                let flags = if bar.prefetchable { 8 } else { 0 };
                let mask = !(bar.size as u32 - 1) & !0xf;
                self.field(reg, 4, bar.base as u32 | flags, mask, 0)
            }
            BarKind::Mem64 => {
                let flags = 4 | if bar.prefetchable { 8 } else { 0 };
                let mask = !(bar.size - 1) & !0xf;
                self.field(reg, 4, bar.base as u32 | flags, mask as u32, 0)
                    .field(reg + 4, 4, (bar.base >> 32) as u32, (mask >> 32) as u32, 0)
            }
        }
    }

    /// An expansion ROM BAR at `reg` (0x30, or 0x38 for a bridge), disabled.
    fn rom(&mut self, reg: u16, rom: &BarInfo) -> &mut Self {
        let mask = (!(rom.size as u32 - 1) & 0xffff_f800) | 1;
        self.field(reg, 4, rom.base as u32, mask, 0)
    }

    /// A capability header: ID and next pointer, read-only.
    fn cap(&mut self, offset: u16, id: u8, next: u8) -> &mut Self {
        self.ro(offset, 1, id.into()).ro(offset + 1, 1, next.into())
    }

    /// A Power Management capability: PMC as given, PMCSR in D0 with
    /// `pmcsr_extra` (e.g. No_Soft_Reset), the power state, PME_En and
    /// Data_Select writable, PME_Status write-1-to-clear.
    fn pm(&mut self, offset: u16, next: u8, pmc: u16, pmcsr_extra: u16) -> &mut Self {
        self.cap(offset, cap_id::PM, next)
            .ro(offset + 2, 2, pmc.into())
            .field(offset + 4, 2, pmcsr_extra.into(), 0x1f03, 0x8000)
    }

    /// An MSI capability with one vector: 64-bit layout if `is64`, per-vector
    /// masking if `maskable`. Enable and Multiple Message Enable writable.
    fn msi(&mut self, offset: u16, next: u8, is64: bool, maskable: bool) -> &mut Self {
        let control = u32::from(is64) << 7 | u32::from(maskable) << 8;
        self.cap(offset, cap_id::MSI, next)
            .field(offset + 2, 2, control, 0x0071, 0)
            .field(offset + 4, 4, 0, 0xffff_fffc, 0);
        let data = if is64 {
            self.field(offset + 8, 4, 0, u32::MAX, 0);
            offset + 12
        } else {
            offset + 8
        };
        self.field(data, 2, 0, 0xffff, 0);
        if maskable {
            self.field(data + 4, 4, 0, 1, 0).ro(data + 8, 4, 0);
        }
        self
    }

    /// An MSI-X capability, disabled with the function mask set (as
    /// quiesce leaves it).
    fn msix(&mut self, next: u8, m: &MsixLayout) -> &mut Self {
        let control = 0x4000 | u32::from(m.entries - 1);
        self.cap(m.cap, cap_id::MSIX, next)
            .field(m.cap + 2, 2, control, 0xc000, 0)
            .ro(m.cap + 4, 4, m.table_offset | u32::from(m.table_bar))
            .ro(m.cap + 8, 4, m.pba_offset | u32::from(m.pba_bar))
    }

    /// A PCI Express capability (`version` 1 or 2, device/port `kind`) of
    /// 0x3c bytes: Device Capabilities as given, Device Control writable
    /// (bit 15, Initiate FLR, reads 0), Device Status clear.
    fn pcie(&mut self, offset: u16, next: u8, version: u16, kind: u16, devcap: u32) -> &mut Self {
        self.cap(offset, cap_id::PCIE, next)
            .ro(offset + 2, 2, (version | kind << 4).into())
            .ro(offset + 4, 4, devcap)
            .field(offset + 8, 2, 0x2810, 0x7fff, 0)
            .field(offset + 0xa, 2, 0, 0, 0x000f)
            .ro(offset + 0xc, 4, 0x0040_0011)
            .ro(offset + 0x10, 2, 0)
            .ro(offset + 0x12, 2, 0x0011)
    }

    fn build(&mut self) -> FakeConfig {
        self.cfg.clone()
    }
}

fn mem32(index: u8, base: u64, size: u64) -> BarInfo {
    BarInfo {
        index,
        kind: BarKind::Mem32,
        prefetchable: false,
        base,
        size,
    }
}

fn mem64(index: u8, base: u64, size: u64, prefetchable: bool) -> BarInfo {
    BarInfo {
        index,
        kind: BarKind::Mem64,
        prefetchable,
        base,
        size,
    }
}

fn rom(base: u64, size: u64) -> BarInfo {
    BarInfo {
        index: 6,
        kind: BarKind::Mem32,
        prefetchable: false,
        base,
        size,
    }
}

/// QEMU's `edu` teaching device (`-device edu`), at [`sbdf`]:
///
/// - 1234:11e8, revision 0x10, class 00ff00, subsystem 1af4:1100;
/// - BAR0: 32-bit memory, 1 MiB at 0xfea0_0000;
/// - capabilities: MSI at 0x40 (64-bit address, 1 vector, no masking);
/// - INTA, Interrupt Line pirq 11; 256-byte config space.
pub fn edu() -> Fixture {
    let bar0 = mem32(0, 0xfea0_0000, 1 << 20);
    let config = Space::new(sbdf(), 256)
        .header(0x1234, 0x11e8, 0x00ff_0010, 0, 0x0010, 0x40, 1)
        .subsystem(0x1af4, 0x1100)
        .bar(&bar0)
        .msi(0x40, 0, true, false)
        .build();
    Fixture {
        info: DeviceInfo {
            sbdf: sbdf(),
            header_type: 0,
            bars: vec![bar0],
            rom: None,
            config_size: 256,
            intx_pirq: 11,
        },
        config,
        caps: vec![(cap_id::MSI, 0x40)],
        msix: None,
    }
}

/// QEMU's NVMe controller (`-device nvme`), at [`sbdf`]:
///
/// - 1b36:0010, revision 2, class 010802, subsystem 1af4:1100;
/// - BAR0: 64-bit memory (BAR0/BAR1), 16 KiB at 0xfebf_0000, holding the
///   registers, the MSI-X table (65 entries at 0x2000) and the PBA (0x3000);
/// - capabilities, in list order: MSI-X at 0x40, PCI Express v2 endpoint
///   at 0x80 (Function Level Reset capable), PM at 0x60 (No_Soft_Reset set);
/// - extended config space: an ARI capability at 0x100 (QEMU adds it when
///   SR-IOV is configured);
/// - INTA, Interrupt Line pirq 10; 4096-byte config space.
pub fn nvme() -> Fixture {
    let bar0 = mem64(0, 0xfebf_0000, 16 << 10, false);
    let msix = MsixLayout {
        cap: 0x40,
        entries: 65,
        table_bar: 0,
        table_offset: 0x2000,
        pba_bar: 0,
        pba_offset: 0x3000,
    };
    let config = Space::new(sbdf(), 4096)
        .header(0x1b36, 0x0010, 0x0108_0202, 0, 0x0010, 0x40, 1)
        .subsystem(0x1af4, 0x1100)
        .bar(&bar0)
        .msix(0x80, &msix)
        .pcie(0x80, 0x60, 2, 0, 0x1000_8000)
        .pm(0x60, 0, 0x0003, 0x0008)
        .ro(0x100, 4, 0x0001_000e)
        .build();
    Fixture {
        info: DeviceInfo {
            sbdf: sbdf(),
            header_type: 0,
            bars: vec![bar0],
            rom: None,
            config_size: 4096,
            intx_pirq: 10,
        },
        config,
        caps: vec![
            (cap_id::MSIX, 0x40),
            (cap_id::PCIE, 0x80),
            (cap_id::PM, 0x60),
        ],
        msix: Some(msix),
    }
}

/// QEMU's e1000e NIC (`-device e1000e`), at [`sbdf`]:
///
/// - 8086:10d3, revision 0, class 020000, subsystem 8086:0000;
/// - BAR0: 32-bit memory, 128 KiB at 0xfeb8_0000 (registers);
/// - BAR1: 32-bit memory, 128 KiB at 0xfeba_0000 (flash);
/// - BAR2: I/O, 32 bytes at 0xc040;
/// - BAR3: 32-bit memory, 16 KiB at 0xfebd_0000: MSI-X table (5 entries at
///   0) and PBA (at 0x2000);
/// - ROM: 256 KiB at 0xfeb4_0000;
/// - capabilities, in list order: PM at 0xc8 (version 2, No_Soft_Reset
///   clear), MSI at 0xd0 (64-bit, 1 vector), PCI Express v1 endpoint at
///   0xe0 (no FLR), MSI-X at 0xa0;
/// - extended config space: AER at 0x100, Device Serial Number at 0x140;
/// - INTA, Interrupt Line pirq 11; 4096-byte config space.
pub fn e1000e() -> Fixture {
    let bars = vec![
        mem32(0, 0xfeb8_0000, 128 << 10),
        mem32(1, 0xfeba_0000, 128 << 10),
        BarInfo {
            index: 2,
            kind: BarKind::Io,
            prefetchable: false,
            base: 0xc040,
            size: 32,
        },
        mem32(3, 0xfebd_0000, 16 << 10),
    ];
    let rom = rom(0xfeb4_0000, 256 << 10);
    let msix = MsixLayout {
        cap: 0xa0,
        entries: 5,
        table_bar: 3,
        table_offset: 0,
        pba_bar: 3,
        pba_offset: 0x2000,
    };
    let mut space = Space::new(sbdf(), 4096);
    space
        .header(0x8086, 0x10d3, 0x0200_0000, 0, 0x0010, 0xc8, 1)
        .subsystem(0x8086, 0x0000)
        .rom(0x30, &rom)
        .pm(0xc8, 0xd0, 0xc822, 0x0000)
        .msi(0xd0, 0xe0, true, false)
        .pcie(0xe0, 0xa0, 1, 0, 0x0000_8000)
        .msix(0, &msix)
        .ro(0x100, 4, 0x1402_0001)
        .ro(0x140, 4, 0x0001_0003)
        .ro(0x144, 4, 0x1234_5678)
        .ro(0x148, 4, 0x5254_0000);
    for bar in &bars {
        space.bar(bar);
    }
    Fixture {
        info: DeviceInfo {
            sbdf: sbdf(),
            header_type: 0,
            bars,
            rom: Some(rom),
            config_size: 4096,
            intx_pirq: 11,
        },
        config: space.build(),
        caps: vec![
            (cap_id::PM, 0xc8),
            (cap_id::MSI, 0xd0),
            (cap_id::PCIE, 0xe0),
            (cap_id::MSIX, 0xa0),
        ],
        msix: Some(msix),
    }
}

/// The address of [`bridge`]: `0000:00:1e.0`, with secondary bus 1.
pub fn bridge_sbdf() -> Sbdf {
    Sbdf::new(0, 0, 0x1e, 0).unwrap()
}

/// QEMU's PCI-to-PCI bridge (`-device pci-bridge`), at [`bridge_sbdf`]:
///
/// - 1b36:0001, revision 0, class 060400, header type 1 (multi-function
///   bit clear);
/// - BAR0: 64-bit memory, 256 bytes at 0xfe80_0000 (the SHPC registers);
/// - buses: primary 0, secondary 1, subordinate 1; Bridge Control at 0x3e
///   writable (bit 6, Secondary Bus Reset);
/// - capabilities, in list order: MSI at 0x8c (64-bit, maskable), SHPC at
///   0x48, Slot ID at 0x40;
/// - INTA, no pirq; 256-byte config space.
pub fn bridge() -> Fixture {
    let bar0 = mem64(0, 0xfe80_0000, 256, false);
    let config = Space::new(bridge_sbdf(), 256)
        .header(0x1b36, 0x0001, 0x0604_0000, 1, 0x0010, 0x8c, 1)
        .bar(&bar0)
        .field(0x18, 4, 0x0001_0100, 0x00ff_ffff, 0)
        .field(0x3e, 2, 0, 0x0fff, 0)
        .msi(0x8c, 0x48, true, true)
        .cap(0x48, cap_id::SHPC, 0x40)
        .cap(0x40, cap_id::SLOT_ID, 0)
        .ro(0x42, 2, 0x0021)
        .build();
    Fixture {
        info: DeviceInfo {
            sbdf: bridge_sbdf(),
            header_type: 1,
            bars: vec![bar0],
            rom: None,
            config_size: 256,
            intx_pirq: 0,
        },
        config,
        caps: vec![
            (cap_id::MSI, 0x8c),
            (cap_id::SHPC, 0x48),
            (cap_id::SLOT_ID, 0x40),
        ],
        msix: None,
    }
}

/// A synthetic function exercising what the real ones do not, at [`sbdf`]:
///
/// - 1234:5678, revision 1, class ff0000, subsystem 1234:0001;
/// - BAR0/1: 64-bit prefetchable memory, 1 MiB at 0x8_0000_0000 (above
///   4 GiB);
/// - BAR2/3: 64-bit prefetchable memory, 64 KiB at 0x8_0010_0000: MSI-X
///   table (8 entries at 0x1000) and PBA (at 0x1800) share one page with
///   other registers;
/// - BAR4: 32-bit memory, 4 KiB at 0xfe90_0000; BAR5 unimplemented;
/// - ROM: 64 KiB at 0xfe91_0000;
/// - capabilities, in list order: PM at 0x40 (No_Soft_Reset clear), MSI at
///   0x50 (32-bit address, maskable: 20 bytes), vendor-specific at 0x64
///   (12 bytes; writable "registers" at 0x68 = 0xdeadbeef and 0x6c = 0),
///   MSI-X at 0x70, PCI Express v2 endpoint at 0x80 (FLR capable);
/// - extended config space: a vendor-specific extended capability at 0x100;
/// - INTA, Interrupt Line pirq 5; 4096-byte config space.
pub fn synthetic() -> Fixture {
    let bars = vec![
        mem64(0, 0x8_0000_0000, 1 << 20, true),
        mem64(2, 0x8_0010_0000, 64 << 10, true),
        mem32(4, 0xfe90_0000, 4 << 10),
    ];
    let rom = rom(0xfe91_0000, 64 << 10);
    let msix = MsixLayout {
        cap: 0x70,
        entries: 8,
        table_bar: 2,
        table_offset: 0x1000,
        pba_bar: 2,
        pba_offset: 0x1800,
    };
    let mut space = Space::new(sbdf(), 4096);
    space
        .header(0x1234, 0x5678, 0xff00_0001, 0, 0x0010, 0x40, 1)
        .subsystem(0x1234, 0x0001)
        .rom(0x30, &rom)
        .pm(0x40, 0x50, 0x0003, 0x0000)
        .msi(0x50, 0x64, false, true)
        .cap(0x64, cap_id::VENDOR, 0x70)
        .field(0x66, 2, 0x000c, 0, 0)
        .field(0x68, 4, 0xdead_beef, u32::MAX, 0)
        .field(0x6c, 4, 0x0000_0000, u32::MAX, 0)
        .msix(0x80, &msix)
        .pcie(0x80, 0, 2, 0, 0x1000_8000)
        .ro(0x100, 4, 0x0011_000b)
        .field(0x104, 4, 0x1234_0001, 0, 0)
        .field(0x108, 4, 0, u32::MAX, 0);
    for bar in &bars {
        space.bar(bar);
    }
    Fixture {
        info: DeviceInfo {
            sbdf: sbdf(),
            header_type: 0,
            bars,
            rom: Some(rom),
            config_size: 4096,
            intx_pirq: 5,
        },
        config: space.build(),
        caps: vec![
            (cap_id::PM, 0x40),
            (cap_id::MSI, 0x50),
            (cap_id::VENDOR, 0x64),
            (cap_id::MSIX, 0x70),
            (cap_id::PCIE, 0x80),
        ],
        msix: Some(msix),
    }
}

/// Config spaces by function address, as one [`PciConfig`]: an address
/// with no function reads all ones and ignores writes.
#[derive(Clone, Debug, Default)]
pub struct FakeBus {
    /// The functions present.
    pub functions: BTreeMap<Sbdf, FakeConfig>,
}

impl PciConfig for FakeBus {
    fn read32(&mut self, sbdf: Sbdf, offset: u16) -> u32 {
        match self.functions.get_mut(&sbdf) {
            Some(f) => f.read32(sbdf, offset),
            None => u32::MAX,
        }
    }

    fn write32(&mut self, sbdf: Sbdf, offset: u16, value: u32) {
        if let Some(f) = self.functions.get_mut(&sbdf) {
            f.write32(sbdf, offset, value);
        }
    }

    fn write_bytes(&mut self, sbdf: Sbdf, offset: u16, size: u8, value: u32) {
        if let Some(f) = self.functions.get_mut(&sbdf) {
            f.write_bytes(sbdf, offset, size, value);
        }
    }

    fn config_size(&self, sbdf: Sbdf) -> u16 {
        self.functions.get(&sbdf).map_or(256, |f| f.size)
    }
}

/// A BAR window mapped into the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Guest-physical start.
    pub gpa: u64,
    /// Host-physical start.
    pub hpa: u64,
    /// Length in bytes.
    pub len: u64,
}

impl Window {
    /// The guest-physical range.
    pub fn range(&self) -> Range<u64> {
        self.gpa..self.gpa + self.len
    }
}

/// One call of the mapping interface, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapEvent {
    /// `map_mmio` and what it answered.
    Map {
        /// The window asked for.
        window: Window,
        /// The answer.
        result: Result<(), MapError>,
    },
    /// `unmap_mmio`.
    Unmap {
        /// Guest-physical start.
        gpa: u64,
        /// Length in bytes.
        len: u64,
    },
}

/// One device-memory access, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mmio {
    /// `mmio_read` and the value it returned.
    Read {
        /// Host-physical address.
        hpa: u64,
        /// Bytes.
        size: u8,
        /// The value returned.
        value: u64,
    },
    /// `mmio_write`.
    Write {
        /// Host-physical address.
        hpa: u64,
        /// Bytes.
        size: u8,
        /// The value written.
        value: u64,
    },
}

/// A route [`FakeHost::alloc_msi`] handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// For which function.
    pub sbdf: Sbdf,
    /// For which interrupt.
    pub source: MsiSource,
    /// What it answered.
    pub route: MsiRoute,
}

/// The message address every route has.
pub const MSI_ADDRESS: u64 = 0xfee0_0000;
/// The first pirq handed out; later ones count up from it.
pub const FIRST_PIRQ: u32 = 16;
/// The vector (and message data) of the first route; later ones count up.
pub const FIRST_VECTOR: u32 = 0x40;

/// A recording [`PassthroughHost`] for one guest.
///
/// - config space: [`bus`](Self::bus);
/// - `map_mmio` refuses empty or unaligned ranges ([`MapError::Unaligned`])
///   and ranges overlapping [`ram`](Self::ram) or a mapped window
///   ([`MapError::Overlap`]); [`map_error`](Self::map_error) forces an
///   answer; mapped windows are in [`windows`](Self::windows), every call
///   in [`map_log`](Self::map_log); `unmap_mmio` removes the part of any
///   window inside its range;
/// - device memory is a sparse byte map ([`mem`](Self::mem), absent bytes
///   read 0), little-endian, every access in [`mmio_log`](Self::mmio_log);
/// - `alloc_msi` hands out pirqs from [`FIRST_PIRQ`], address
///   [`MSI_ADDRESS`], data = vector from [`FIRST_VECTOR`]; with
///   [`irq_limit`](Self::irq_limit) live routes it answers
///   [`IrqError::Exhausted`], with [`refuse_irqs`](Self::refuse_irqs)
///   [`IrqError::Refused`]; live routes are in [`routes`](Self::routes),
///   `free_msi` calls in [`freed`](Self::freed);
/// - `delay_us` adds to [`delayed_us`](Self::delayed_us) and
///   [`delays`](Self::delays).
#[derive(Clone, Debug)]
pub struct FakeHost {
    /// Host config space.
    pub bus: FakeBus,
    /// The guest's RAM (default: the first 2 GiB).
    pub ram: Range<u64>,
    /// When set, every `map_mmio` answers this error.
    pub map_error: Option<MapError>,
    /// The windows mapped now.
    pub windows: Vec<Window>,
    /// Every `map_mmio`/`unmap_mmio` call.
    pub map_log: Vec<MapEvent>,
    /// Device memory, by host-physical byte address.
    pub mem: BTreeMap<u64, u8>,
    /// Every device-memory access.
    pub mmio_log: Vec<Mmio>,
    /// The routes handed out and not freed.
    pub routes: Vec<Allocation>,
    /// Every route handed out.
    pub allocations: Vec<Allocation>,
    /// Every `free_msi` call.
    pub freed: Vec<(Sbdf, u32)>,
    /// At most this many live routes.
    pub irq_limit: Option<usize>,
    /// Refuse every interrupt.
    pub refuse_irqs: bool,
    /// The sum of every `delay_us`.
    pub delayed_us: u64,
    /// Every `delay_us`, in order.
    pub delays: Vec<u32>,
    /// The port ranges handed to the guest now, `(port, len)`.
    pub ports: Vec<(u16, u16)>,
}

impl Default for FakeHost {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeHost {
    /// A host with no functions and a guest with 2 GiB of RAM at 0.
    pub fn new() -> Self {
        Self {
            bus: FakeBus::default(),
            ram: 0..0x8000_0000,
            map_error: None,
            windows: Vec::new(),
            map_log: Vec::new(),
            mem: BTreeMap::new(),
            mmio_log: Vec::new(),
            routes: Vec::new(),
            allocations: Vec::new(),
            freed: Vec::new(),
            irq_limit: None,
            refuse_irqs: false,
            delayed_us: 0,
            delays: Vec::new(),
            ports: Vec::new(),
        }
    }

    /// Adds (or replaces) a function's config space.
    pub fn add_function(&mut self, config: FakeConfig) {
        self.bus.functions.insert(config.sbdf, config);
    }

    /// The config space of `sbdf`.
    pub fn function(&self, sbdf: Sbdf) -> &FakeConfig {
        self.bus.functions.get(&sbdf).expect("function present")
    }

    /// The config space of `sbdf`, to script it.
    pub fn function_mut(&mut self, sbdf: Sbdf) -> &mut FakeConfig {
        self.bus.functions.get_mut(&sbdf).expect("function present")
    }

    /// The hardware dword at `offset` of `sbdf`, without logging.
    pub fn peek_config(&self, sbdf: Sbdf, offset: u16) -> u32 {
        self.function(sbdf).peek(offset & !3) >> ((offset & 3) * 8)
    }

    /// The hardware Command register of `sbdf`.
    pub fn command(&self, sbdf: Sbdf) -> u16 {
        self.function(sbdf).peek(0x04) as u16
    }

    /// Whether guest-physical `gpa` is inside a mapped window.
    pub fn is_mapped(&self, gpa: u64) -> bool {
        self.window_at(gpa).is_some()
    }

    /// The mapped window holding guest-physical `gpa`.
    pub fn window_at(&self, gpa: u64) -> Option<Window> {
        self.windows
            .iter()
            .copied()
            .find(|w| w.range().contains(&gpa))
    }

    /// Whether host-physical `hpa` is reachable by the guest through a
    /// mapped window.
    pub fn hpa_mapped(&self, hpa: u64) -> bool {
        self.windows
            .iter()
            .any(|w| (w.hpa..w.hpa + w.len).contains(&hpa))
    }

    /// Device memory at `hpa`, without logging.
    pub fn peek(&self, hpa: u64, size: u8) -> u64 {
        (0..u64::from(size)).fold(0, |v, i| {
            v | u64::from(self.mem.get(&(hpa + i)).copied().unwrap_or(0)) << (8 * i)
        })
    }

    /// Sets device memory at `hpa`, without logging.
    pub fn poke(&mut self, hpa: u64, size: u8, value: u64) {
        for i in 0..u64::from(size) {
            self.mem.insert(hpa + i, (value >> (8 * i)) as u8);
        }
    }

    /// The device-memory writes, in order, as `(hpa, size, value)`.
    pub fn mmio_writes(&self) -> Vec<(u64, u8, u64)> {
        self.mmio_log
            .iter()
            .filter_map(|m| match *m {
                Mmio::Write { hpa, size, value } => Some((hpa, size, value)),
                Mmio::Read { .. } => None,
            })
            .collect()
    }
}

fn overlaps(a: &Range<u64>, b: &Range<u64>) -> bool {
    a.start < b.end && b.start < a.end
}

impl PassthroughHost for FakeHost {
    fn config(&mut self) -> &mut dyn PciConfig {
        &mut self.bus
    }

    fn map_ports(&mut self, port: u16, len: u16) -> Result<(), MapError> {
        let r = u32::from(port)..u32::from(port) + u32::from(len);
        if len == 0 || r.end > 0x1_0000 {
            return Err(MapError::Unaligned);
        }
        let taken = self
            .ports
            .iter()
            .any(|&(p, l)| u32::from(p) < r.end && r.start < u32::from(p) + u32::from(l));
        if taken {
            return Err(MapError::Overlap);
        }
        self.ports.push((port, len));
        Ok(())
    }

    fn unmap_ports(&mut self, port: u16, len: u16) {
        self.ports.retain(|&(p, l)| (p, l) != (port, len));
    }

    fn map_mmio(&mut self, gpa: u64, hpa: u64, len: u64) -> Result<(), MapError> {
        let window = Window { gpa, hpa, len };
        let result = if let Some(e) = self.map_error {
            Err(e)
        } else if len == 0 || (gpa | hpa | len) & 0xfff != 0 || gpa.checked_add(len).is_none() {
            Err(MapError::Unaligned)
        } else if overlaps(&window.range(), &self.ram)
            || self
                .windows
                .iter()
                .any(|w| overlaps(&w.range(), &window.range()))
        {
            Err(MapError::Overlap)
        } else {
            Ok(())
        };
        if result.is_ok() {
            self.windows.push(window);
        }
        self.map_log.push(MapEvent::Map { window, result });
        result
    }

    fn unmap_mmio(&mut self, gpa: u64, len: u64) {
        self.map_log.push(MapEvent::Unmap { gpa, len });
        let cut = gpa..gpa.saturating_add(len);
        let mut kept = Vec::new();
        for w in self.windows.drain(..) {
            let r = w.range();
            if !overlaps(&r, &cut) {
                kept.push(w);
                continue;
            }
            if r.start < cut.start {
                kept.push(Window {
                    len: cut.start - r.start,
                    ..w
                });
            }
            if cut.end < r.end {
                kept.push(Window {
                    gpa: cut.end,
                    hpa: w.hpa + (cut.end - r.start),
                    len: r.end - cut.end,
                });
            }
        }
        self.windows = kept;
    }

    fn mmio_read(&mut self, hpa: u64, size: u8) -> u64 {
        let value = self.peek(hpa, size);
        self.mmio_log.push(Mmio::Read { hpa, size, value });
        value
    }

    fn mmio_write(&mut self, hpa: u64, size: u8, value: u64) {
        self.mmio_log.push(Mmio::Write { hpa, size, value });
        self.poke(hpa, size, value);
    }

    fn alloc_msi(&mut self, sbdf: Sbdf, source: MsiSource) -> Result<MsiRoute, IrqError> {
        if self.refuse_irqs {
            return Err(IrqError::Refused);
        }
        if self.irq_limit.is_some_and(|l| self.routes.len() >= l) {
            return Err(IrqError::Exhausted);
        }
        let n = self.allocations.len() as u32;
        let route = MsiRoute {
            pirq: FIRST_PIRQ + n,
            address: MSI_ADDRESS,
            data: FIRST_VECTOR + n,
        };
        let a = Allocation {
            sbdf,
            source,
            route,
        };
        self.routes.push(a);
        self.allocations.push(a);
        Ok(route)
    }

    fn free_msi(&mut self, sbdf: Sbdf, pirq: u32) {
        self.freed.push((sbdf, pirq));
        self.routes
            .retain(|a| !(a.sbdf == sbdf && a.route.pirq == pirq));
    }

    fn delay_us(&mut self, us: u32) {
        self.delays.push(us);
        self.delayed_us += u64::from(us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks the hardware capability list.
    fn chain(f: &Fixture) -> Vec<(u8, u16)> {
        let mut cfg = f.config.clone();
        let s = f.info.sbdf;
        let mut out = Vec::new();
        let mut at = u16::from(cfg.read8(s, 0x34));
        while at != 0 && out.len() < 48 {
            out.push((cfg.read8(s, at), at));
            at = u16::from(cfg.read8(s, at + 1));
        }
        out
    }

    #[test]
    fn fixture_capability_lists_match_their_description() {
        for f in all() {
            assert_eq!(chain(&f), f.caps, "{:04x}", f.config.peek(0));
        }
    }

    #[test]
    fn fixture_bars_size_like_hardware() {
        for f in all() {
            let s = f.info.sbdf;
            let mut cfg = f.config.clone();
            for bar in &f.info.bars {
                let reg = 0x10 + 4 * u16::from(bar.index);
                assert_eq!(u64::from(cfg.read32(s, reg) & !0xf), bar.base & 0xffff_fff0);
                cfg.write32(s, reg, u32::MAX);
                let lo = cfg.read32(s, reg);
                let mask = match bar.kind {
                    BarKind::Io => u64::from(lo & !3) | 0xffff_ffff_0000_0000,
                    BarKind::Mem32 => u64::from(lo & !0xf) | 0xffff_ffff_0000_0000,
                    BarKind::Mem64 => {
                        cfg.write32(s, reg + 4, u32::MAX);
                        u64::from(cfg.read32(s, reg + 4)) << 32 | u64::from(lo & !0xf)
                    }
                };
                assert_eq!(!mask + 1, bar.size, "BAR{} of {s}", bar.index);
            }
        }
    }

    #[test]
    fn fixture_msix_entries_start_masked() {
        let f = nvme();
        let host = f.host();
        assert_eq!(host.peek(f.msix_entry_hpa(64) + 12, 4), 1);
        assert_eq!(f.msix_entry_hpa(1), 0xfebf_2010);
    }

    #[test]
    fn map_refuses_ram_overlap_and_unaligned_ranges() {
        let mut host = FakeHost::new();
        assert_eq!(
            host.map_mmio(0x7fff_f000, 0xfe00_0000, 0x2000),
            Err(MapError::Overlap)
        );
        assert_eq!(
            host.map_mmio(0xe000_0800, 0xfe00_0000, 0x1000),
            Err(MapError::Unaligned)
        );
        assert_eq!(host.map_mmio(0xe000_0000, 0xfe00_0000, 0x2000), Ok(()));
        assert_eq!(
            host.map_mmio(0xe000_1000, 0xfe10_0000, 0x1000),
            Err(MapError::Overlap)
        );
        host.unmap_mmio(0xe000_0000, 0x1000);
        assert_eq!(
            host.windows,
            [Window {
                gpa: 0xe000_1000,
                hpa: 0xfe00_1000,
                len: 0x1000
            }]
        );
        assert!(host.is_mapped(0xe000_1fff) && !host.is_mapped(0xe000_0000));
    }

    #[test]
    fn routes_count_up_and_respect_the_limit() {
        let mut host = FakeHost::new();
        host.irq_limit = Some(1);
        let r = host.alloc_msi(sbdf(), MsiSource::Msi).unwrap();
        assert_eq!((r.pirq, r.address, r.data), (16, 0xfee0_0000, 0x40));
        assert_eq!(
            host.alloc_msi(sbdf(), MsiSource::Msix(1)),
            Err(IrqError::Exhausted)
        );
        host.free_msi(sbdf(), 16);
        assert!(host.routes.is_empty());
        assert_eq!(host.alloc_msi(sbdf(), MsiSource::Msi).unwrap().pirq, 17);
    }

    #[test]
    fn absent_functions_read_all_ones() {
        let mut host = edu().host();
        let other = Sbdf::new(0, 0, 4, 0).unwrap();
        assert_eq!(host.config().read32(other, 0), u32::MAX);
        assert_eq!(host.config().read32(sbdf(), 0), 0x11e8_1234);
    }
}
