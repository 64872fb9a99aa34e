//! Attacks on the PCI backend's virtualisation, by class (`attack=config`,
//! `bar`, `msix`, `irq`): config space through the pcifront ops, the BAR
//! windows and the trapped MSI-X table, the MSI-X op's entry list, and
//! interrupts (op sequences, pirqs the guest was not given, EOI and
//! device interrupt storms).
//!
//! Each case is a [`Table::case`] line `[test] attack-CLASS: CASE:
//! OUTCOME: PASS|FAIL` whose verdict rests on something the guest reads
//! back (an error code, a register, a device answering or not, its own
//! memory); the class ends with the drivers run again (the attacked
//! devices still work) and the table. What the guest cannot see (the
//! host's BAR, the hardware's Command register) is proved by the device
//! still working at its own address afterwards.

use core::sync::atomic::Ordering;

use super::edu::{self, reg, DEVICE_BUFFER, DMA_BYTES, DMA_TO_EDU, DMA_TO_RAM};
use super::mmio::Mmio;
use super::{command, e1000, nvme, wait_for, Bar, BarKind, Function, Functions, Irq, Transport};
use crate::println;
use crate::report::{self, Table};
use crate::xen::evtchn;
use crate::xen::pcifront::{cmd, new_op, Frontend, MsixEntry};

/// An attack class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Config space: bad accesses, read-only and virtual registers, BARs
    /// moved over RAM, the APIC and another device, MSI rewritten.
    Config,
    /// Decode toggled during DMA, BAR remaps, MSI-X table accesses.
    Bar,
    /// `XEN_PCI_OP_enable_msix` with bad entry lists and sequences.
    Msix,
    /// MSI/MSI-X op sequences, foreign pirqs, EOI and interrupt storms.
    Irq,
}

impl Class {
    /// `config`, `bar`, `msix` or `irq`.
    pub fn parse(item: &str) -> Option<Class> {
        Some(match item {
            "config" => Class::Config,
            "bar" => Class::Bar,
            "msix" => Class::Msix,
            "irq" => Class::Irq,
            _ => return None,
        })
    }

    /// The class's name in its lines.
    pub fn name(self) -> &'static str {
        match self {
            Class::Config => "attack-config",
            Class::Bar => "attack-bar",
            Class::Msix => "attack-msix",
            Class::Irq => "attack-irq",
        }
    }
}

/// `XEN_PCI_ERR_*` names for config ops.
fn cfg_err(e: i32) -> &'static str {
    match e {
        0 => "ok",
        -1 => "dev_not_found",
        -2 => "invalid_offset",
        -3 => "access_denied",
        -4 => "not_implemented",
        -5 => "op_failed",
        _ => "other error",
    }
}

/// Errno names for the interrupt ops and hypercalls.
fn errno(e: i64) -> &'static str {
    match e {
        0 => "ok",
        -1 => "-EPERM",
        -6 => "-ENXIO",
        -17 => "-EEXIST",
        -19 => "-ENODEV",
        -22 => "-EINVAL",
        -28 => "-ENOSPC",
        -114 => "-EALREADY",
        _ => "other error",
    }
}

const INVALID_OFFSET: i32 = -2;
const EPERM: i64 = -1;
const ENXIO: i64 = -6;
const EEXIST: i64 = -17;
const ENODEV: i64 = -19;
const EINVAL: i64 = -22;
const EALREADY: i64 = -114;

/// One raw op: its `err` and `value`.
fn op(fe: &mut Frontend, c: u32, f: &Function, offset: i32, size: i32, value: u32) -> (i32, u32) {
    let mut o = new_op(c, f.addr);
    o.head.offset = offset;
    o.head.size = size;
    o.head.value = value;
    let e = fe.op(&mut o);
    (e, o.head.value)
}

/// A config read (all ones on error).
fn rd(fe: &mut Frontend, f: &Function, offset: u16, size: u8) -> u32 {
    fe.read(f.addr, offset, size).unwrap_or(u32::MAX)
}

/// A config write; its error.
fn wr(fe: &mut Frontend, f: &Function, offset: u16, size: u8, value: u32) -> i32 {
    fe.write(f.addr, offset, size, value)
        .map_or_else(|e| e.0, |()| 0)
}

/// `XEN_PCI_OP_enable_msix` with `entries`, `n` as the count: its `err`
/// and the pirqs it answered.
fn enable_msix(fe: &mut Frontend, f: &Function, n: u32, entries: &[u16]) -> (i32, [u16; 4]) {
    let mut o = new_op(cmd::ENABLE_MSIX, f.addr);
    o.head.value = n;
    for (slot, &entry) in o.msix_entries.iter_mut().zip(entries) {
        *slot = MsixEntry {
            vector: 0xffff,
            entry,
        };
    }
    let e = fe.op(&mut o);
    let mut pirqs = [0; 4];
    for (p, m) in pirqs.iter_mut().zip(&o.msix_entries) {
        *p = m.vector;
    }
    (e, pirqs)
}

/// Runs one class against the functions found.
pub fn run(fe: &mut Frontend, found: &Functions, class: Class) {
    let mut t: Table = Table::new(class.name());
    let edu = found.iter().find(|f| f.ids() == edu::IDS).copied();
    let msix = found.iter().find(|f| f.msix.is_some()).copied();
    let Some(e) = edu else {
        t.case("edu present", "missing", false);
        t.print();
        return;
    };
    let mmio = match edu::open(fe, &e) {
        Ok(m) => m,
        Err(why) => {
            println!("xpci: {}: edu: {why}", class.name());
            t.case("edu opened", "failed", false);
            t.print();
            return;
        }
    };
    match class {
        Class::Config => config(fe, found, &e, &mmio, &mut t),
        Class::Bar => {
            bar(fe, &e, &mmio, &mut t);
            if let Some(m) = msix {
                msix_table(fe, &m, &mut t);
            }
        }
        Class::Msix => match msix {
            Some(m) => msix_ops(fe, &m, &mut t),
            None => {
                t.case("a function with MSI-X", "missing", false);
            }
        },
        Class::Irq => irq(fe, found, &e, &mmio, &mut t),
    }
    after(fe, found, &mut t);
    t.print();
}

/// The drivers again: every attacked device must still work.
fn after(fe: &mut Frontend, found: &Functions, t: &mut Table) {
    println!("xpci: after the attack: the drivers again");
    let failed = report::failed();
    for f in found.iter() {
        match f.ids() {
            edu::IDS => edu::run(fe, f, 1, false),
            nvme::IDS => nvme::run(fe, f, 1, false),
            e1000::E1000_IDS | e1000::E1000E_IDS => e1000::run(fe, f),
            _ => {}
        }
    }
    let ok = report::failed() == failed;
    t.case(
        "devices driven again after the attack",
        if ok { "all work" } else { "broken" },
        ok,
    );
}

// --- config space ---

fn config(fe: &mut Frontend, found: &Functions, f: &Function, mmio: &Mmio, t: &mut Table) {
    let bad: [(&'static str, u32, i32, i32); 10] = [
        ("read of 3 bytes", cmd::CONF_READ, 0, 3),
        ("read of 0 bytes", cmd::CONF_READ, 0, 0),
        ("read of 8 bytes", cmd::CONF_READ, 0, 8),
        ("write of -1 bytes", cmd::CONF_WRITE, 4, -1),
        ("read of 4 bytes at 0x2 (unaligned)", cmd::CONF_READ, 2, 4),
        ("write of 2 bytes at 0x5 (unaligned)", cmd::CONF_WRITE, 5, 2),
        (
            "write of 4 bytes at 0x6 (across Status)",
            cmd::CONF_WRITE,
            6,
            4,
        ),
        (
            "read at 0x1000 (past config space)",
            cmd::CONF_READ,
            0x1000,
            4,
        ),
        ("read at offset -4", cmd::CONF_READ, -4, 4),
        (
            "write at offset 0x7ffffffc",
            cmd::CONF_WRITE,
            0x7fff_fffc,
            4,
        ),
    ];
    let cmd0 = rd(fe, f, command::OFFSET, 2);
    for (case, c, offset, size) in bad {
        let (e, _) = op(fe, c, f, offset, size, u32::MAX);
        t.case(case, cfg_err(e), e == INVALID_OFFSET);
    }
    let cmd1 = rd(fe, f, command::OFFSET, 2);
    t.case(
        "Command after the refused writes",
        if cmd1 == cmd0 { "unchanged" } else { "changed" },
        cmd1 == cmd0,
    );
    sweep(fe, f, t);
    // Extended config space is hidden.
    let e = wr(fe, f, 0x100, 4, u32::MAX);
    let (v, w) = (rd(fe, f, 0x100, 4), rd(fe, f, 0xffc, 4));
    let ok = e == 0 && v == 0 && w == 0;
    t.case(
        "extended config space written and read",
        if ok {
            "reads 0, writes dropped"
        } else {
            "visible"
        },
        ok,
    );
    read_only(fe, f, t);
    command_games(fe, f, mmio, cmd0, t);
    bars(fe, found, f, mmio, cmd0, t);
    rom(fe, found, f, t);
    msi_rewrite(fe, f, mmio, t);
    enable_bits(fe, found, f, t);
    let vendor = found
        .iter()
        .filter(|g| g.vendor == 0x1af4)
        .map(|g| g.caps().iter().filter(|c| c.id == 9).count())
        .max();
    match vendor {
        Some(n) => t.case(
            "vendor-specific capabilities of a virtio function",
            if n == 0 { "hidden" } else { "visible" },
            n == 0,
        ),
        None => {
            report::skip("attack-config: vendor capabilities", "no virtio function");
            true
        }
    };
}

/// Every offset of the header and capability area with sizes 1-4: the
/// aligned ones answer, the others are `invalid_offset`, and a dword reads
/// as its four bytes do.
fn sweep(fe: &mut Frontend, f: &Function, t: &mut Table) {
    let mut wrong = 0;
    for offset in 0..0x100u16 {
        for size in 1..=4u8 {
            let (e, _) = op(fe, cmd::CONF_READ, f, offset.into(), size.into(), 0);
            let aligned = size != 3 && offset.is_multiple_of(u16::from(size));
            if (aligned && e != 0) || (!aligned && e != INVALID_OFFSET) {
                println!("xpci: attack-config: read {size} at {offset:#x}: {e}");
                wrong += 1;
            }
        }
        if offset.is_multiple_of(4) {
            let whole = rd(fe, f, offset, 4);
            let bytes = (0..4).fold(0, |v, i| v | rd(fe, f, offset + i, 1) << (8 * i));
            if whole != bytes {
                println!("xpci: attack-config: dword {offset:#x} {whole:#x}, bytes {bytes:#x}");
                wrong += 1;
            }
        }
    }
    t.case(
        "every offset 0x00-0xff read with 1, 2, 3 and 4 bytes",
        if wrong == 0 {
            "aligned answered, others invalid_offset"
        } else {
            "inconsistent"
        },
        wrong == 0,
    );
}

/// Registers the guest may not change: all ones written, the same read.
fn read_only(fe: &mut Frontend, f: &Function, t: &mut Table) {
    let groups: [(&'static str, &[(u16, u8)]); 3] = [
        (
            "IDs, class, header type, subsystem written with all ones",
            &[(0x00, 4), (0x08, 4), (0x0e, 1), (0x2c, 4)],
        ),
        ("BIST start written", &[(0x0f, 1)]),
        (
            "capability pointer, Interrupt Line and Pin written",
            &[(0x34, 1), (0x3c, 1), (0x3d, 1)],
        ),
    ];
    for (case, regs) in groups {
        let mut same = true;
        for &(offset, size) in regs {
            let before = rd(fe, f, offset, size);
            let value = if offset == 0x0f { 0x40 } else { u32::MAX };
            wr(fe, f, offset, size, value);
            same &= rd(fe, f, offset, size) == before;
        }
        t.case(case, if same { "ignored" } else { "changed" }, same);
    }
    let st = rd(fe, f, 0x06, 2);
    wr(fe, f, 0x06, 2, 0);
    let a = rd(fe, f, 0x06, 2);
    wr(fe, f, 0x06, 2, 0xffff);
    let b = rd(fe, f, 0x06, 2);
    let ro = u32::from(super::status::RO);
    let ok = a & ro == st & ro && b & ro == st & ro && st & 0x10 != 0;
    t.case(
        "Status written with 0 and all ones",
        if ok { "read-only bits kept" } else { "changed" },
        ok,
    );
}

/// Command register games; `cmd0` is the guest's value (decode and bus
/// mastering on).
fn command_games(fe: &mut Frontend, f: &Function, mmio: &Mmio, cmd0: u32, t: &mut Table) {
    let games = u32::from(
        command::SERR | command::PARITY | command::IO_SPACE | command::SPECIAL | command::MWI,
    );
    wr(
        fe,
        f,
        command::OFFSET,
        2,
        cmd0 | games | u32::from(command::RESERVED),
    );
    let v = rd(fe, f, command::OFFSET, 2);
    let alive = mmio.read32(reg::ID) == edu::ID_VALUE;
    wr(fe, f, command::OFFSET, 2, cmd0);
    let ok = v & u32::from(command::RESERVED) == 0 && alive;
    t.case(
        "Command with SERR, parity, I/O, MWI and reserved bits",
        if ok {
            "reserved read 0, edu still answers"
        } else {
            "wrong"
        },
        ok,
    );
    // Status's RW1C half written with Command in one dword.
    wr(fe, f, command::OFFSET, 4, 0xffff_0000 | cmd0);
    let c = rd(fe, f, command::OFFSET, 2);
    t.case(
        "Command and Status written as one dword",
        if c == cmd0 {
            "Command kept"
        } else {
            "Command changed"
        },
        c == cmd0,
    );
    // Decode off, then the BAR touched.
    let fact = mmio.read32(reg::FACTORIAL);
    wr(
        fe,
        f,
        command::OFFSET,
        2,
        cmd0 & !u32::from(command::MEMORY_SPACE),
    );
    let off = mmio.read32(reg::ID);
    mmio.write32(reg::FACTORIAL, 5);
    wr(fe, f, command::OFFSET, 2, cmd0);
    let on = mmio.read32(reg::ID);
    let fact1 = mmio.read32(reg::FACTORIAL);
    println!(
        "xpci: attack-config: decode off: ID {off:#x}; on again: ID {on:#x}, factorial {fact} -> {fact1}"
    );
    let ok = off == u32::MAX && on == edu::ID_VALUE && fact1 == fact;
    t.case(
        "decode off, then BAR0 read and written",
        if ok {
            "all-ones, write dropped"
        } else {
            "reached the device"
        },
        ok,
    );
}

/// BAR0 of `f` moved to `addr` with decode off and decode turned on
/// again; what the BAR register reads.
fn move_bar(fe: &mut Frontend, f: &Function, cmd0: u32, addr: u32) -> u32 {
    wr(
        fe,
        f,
        command::OFFSET,
        2,
        cmd0 & !u32::from(command::MEMORY_SPACE),
    );
    wr(fe, f, 0x10, 4, addr);
    let v = rd(fe, f, 0x10, 4);
    wr(fe, f, command::OFFSET, 2, cmd0);
    v
}

/// The first 4 KiB of guest RAM at `addr` folded into one word.
fn digest(addr: u64) -> u64 {
    crate::xen::page::Page::at(addr >> 12).map_or(0, |p| {
        (0..512).fold(0u64, |h, i| {
            h.rotate_left(5) ^ p.u64(8 * i).load(Ordering::Relaxed)
        })
    })
}

/// A page of device or APIC memory mapped for a look.
fn page_at(addr: u64) -> Option<Mmio> {
    Mmio::map(&Bar {
        kind: BarKind::Mem32,
        prefetchable: false,
        addr: addr & !0xfff,
        size: 4096,
    })
    .ok()
}

fn bars(fe: &mut Frontend, found: &Functions, f: &Function, mmio: &Mmio, cmd0: u32, t: &mut Table) {
    let Some(b) = f.bars[0] else {
        t.case("edu BAR0", "missing", false);
        return;
    };
    let orig = rd(fe, f, 0x10, 4);
    // Sizing with decode off.
    wr(
        fe,
        f,
        command::OFFSET,
        2,
        cmd0 & !u32::from(command::MEMORY_SPACE),
    );
    wr(fe, f, 0x10, 4, u32::MAX);
    let sized = rd(fe, f, 0x10, 4);
    wr(fe, f, 0x10, 4, orig);
    wr(fe, f, command::OFFSET, 2, cmd0);
    let want = !(b.size as u32 - 1) | (orig & 0xf);
    t.case(
        "BAR0 written with all ones",
        if sized == want {
            "reads the size"
        } else {
            "wrong size"
        },
        sized == want,
    );
    // Written while decoding.
    wr(fe, f, 0x10, 4, 0x1230_0000);
    let v = rd(fe, f, 0x10, 4);
    t.case(
        "BAR0 written while decode is on",
        if v == orig { "ignored" } else { "moved" },
        v == orig,
    );
    // Over the guest's own RAM (its image at 1 MiB).
    let before = digest(0x10_0000);
    let v = move_bar(fe, f, cmd0, 0x10_0000);
    let after = digest(0x10_0000);
    move_bar(fe, f, cmd0, orig);
    let ok = v & !0xf == 0x10_0000 && before == after && mmio.read32(reg::ID) == edu::ID_VALUE;
    t.case(
        "BAR0 moved over the guest's RAM",
        if ok { "RAM kept, not mapped" } else { "mapped" },
        ok,
    );
    // Over the local APIC.
    let apic = page_at(0xfee0_0000);
    move_bar(fe, f, cmd0, 0xfee0_0000);
    let id = apic.map_or(0, |a| a.read32(0));
    move_bar(fe, f, cmd0, orig);
    let ok = apic.is_some() && id != edu::ID_VALUE && mmio.read32(reg::ID) == edu::ID_VALUE;
    t.case(
        "BAR0 moved over the local APIC",
        if ok { "not mapped there" } else { "mapped" },
        ok,
    );
    // Over another device's BAR.
    let other = found
        .iter()
        .filter(|g| g.addr != f.addr)
        .flat_map(|g| g.bars.iter().flatten().copied())
        .find(|g| g.kind == BarKind::Mem32 && g.addr != 0);
    match other.and_then(|o| Some((o, page_at(o.addr)?))) {
        Some((o, m)) => {
            let at = o.addr & 0xfff;
            let before = m.read32(at);
            let target = (o.addr & !(b.size - 1)) as u32;
            move_bar(fe, f, cmd0, target);
            let during = m.read32(at);
            move_bar(fe, f, cmd0, orig);
            println!(
                "xpci: attack-config: BAR0 at {target:#x} over a BAR at {:#x}: it read {before:#x}, then {during:#x}",
                o.addr
            );
            let ok = during == before && mmio.read32(reg::ID) == edu::ID_VALUE;
            t.case(
                "BAR0 moved over another device's BAR",
                if ok {
                    "not mapped, the other device still answers"
                } else {
                    "mapped"
                },
                ok,
            );
        }
        None => report::skip("attack-config: BAR0 over another device", "no other BAR"),
    }
}

fn rom(fe: &mut Frontend, found: &Functions, f: &Function, t: &mut Table) {
    wr(fe, f, 0x30, 4, u32::MAX);
    let v = rd(fe, f, 0x30, 4);
    let absent = f.rom.is_none();
    t.case(
        "ROM BAR of a function without ROM written with all ones",
        if v == 0 { "reads 0" } else { "reads back" },
        !absent || v == 0,
    );
    let Some(g) = found.iter().find(|g| g.rom.is_some() && g.header == 0) else {
        report::skip("attack-config: ROM enable", "no function with a ROM");
        return;
    };
    let Some(r) = g.rom else { return };
    let was = rd(fe, g, 0x30, 4);
    wr(fe, g, 0x30, 4, r.addr as u32 | 1);
    let v = rd(fe, g, 0x30, 4);
    wr(fe, g, 0x30, 4, was);
    t.case(
        "ROM enable bit written",
        if v & 1 == 0 { "ignored" } else { "enabled" },
        v & 1 == 0 && v & !0x7ff == r.addr as u32 & !0x7ff,
    );
}

/// MSI address and data rewritten in the capability while MSI is on:
/// the guest reads its own values, the device keeps the host's.
fn msi_rewrite(fe: &mut Frontend, f: &Function, mmio: &Mmio, t: &mut Table) {
    let Some(m) = f.msi else {
        t.case("edu MSI capability", "missing", false);
        return;
    };
    let irq = match fe.enable_msi(f) {
        Ok(i) => i,
        Err(e) => {
            t.case("MSI enabled for the rewrite", errno(e.0.into()), false);
            return;
        }
    };
    let data = m.offset + if m.is_64bit() { 0x0c } else { 0x08 };
    wr(fe, f, m.offset + 4, 4, 0xfee0_0000);
    if m.is_64bit() {
        wr(fe, f, m.offset + 8, 4, 0);
    }
    wr(fe, f, data, 2, 0x40df);
    let (a, d) = (rd(fe, f, m.offset + 4, 4), rd(fe, f, data, 2));
    let arrived = edu::raise(mmio, irq).is_some();
    let _ = fe.disable_msi(f);
    println!(
        "xpci: attack-config: MSI rewritten: reads {a:#x}/{d:#x}; interrupt on {irq}: {arrived}"
    );
    let ok = a == 0xfee0_0000 && d == 0x40df && arrived;
    t.case(
        "MSI address and data rewritten while MSI is on",
        if ok {
            "virtual, interrupts still on its pirq"
        } else {
            "reached the device"
        },
        ok,
    );
}

/// The enable bits of MSI and MSI-X written in config space.
fn enable_bits(fe: &mut Frontend, found: &Functions, f: &Function, t: &mut Table) {
    if let Some(m) = f.msi {
        let c = rd(fe, f, m.offset + 2, 2);
        wr(fe, f, m.offset + 2, 2, c | 1);
        let v = rd(fe, f, m.offset + 2, 2);
        wr(fe, f, m.offset + 2, 2, c);
        t.case(
            "MSI enable bit set in config space",
            if v & 1 == 0 { "ignored" } else { "enabled" },
            v & 1 == 0,
        );
    }
    if let Some((g, m)) = found.iter().find_map(|g| Some((g, g.msix?))) {
        let c = rd(fe, g, m.offset + 2, 2);
        wr(fe, g, m.offset + 2, 2, c | 0x8000);
        let v = rd(fe, g, m.offset + 2, 2);
        wr(fe, g, m.offset + 2, 2, c);
        t.case(
            "MSI-X enable bit set in config space",
            if v & 0x8000 == 0 {
                "ignored"
            } else {
                "enabled"
            },
            v & 0x8000 == 0,
        );
    }
}

// --- BARs ---

/// Rounds of decode toggling during one DMA.
const TOGGLES: usize = 200;
/// Remaps of BAR0 between two addresses.
const REMAPS: usize = 20;
/// Where BAR0 is moved to and back: a 1 MiB aligned address in the
/// guest's memory hole that nothing else uses.
const REMAP_TO: u32 = 0xe000_0000;

fn bar(fe: &mut Frontend, f: &Function, mmio: &Mmio, t: &mut Table) {
    let cmd0 = rd(fe, f, command::OFFSET, 2);
    let (src, dst) = edu::buffers();
    for i in 0..DMA_BYTES / 8 {
        src.u64(8 * i)
            .store(0xa77a_c000_0000_0000 | i as u64, Ordering::Relaxed);
        dst.u64(8 * i).store(0, Ordering::Relaxed);
    }
    core::sync::atomic::fence(Ordering::SeqCst);
    let loaded = edu::dma(mmio, src.addr(), DEVICE_BUFFER, DMA_TO_EDU, None).is_some();
    edu::dma_start(
        mmio,
        DEVICE_BUFFER,
        dst.addr(),
        DMA_BYTES as u64,
        DMA_TO_RAM,
    );
    let mut wrong = 0;
    for _ in 0..TOGGLES {
        wr(
            fe,
            f,
            command::OFFSET,
            2,
            cmd0 & !u32::from(command::MEMORY_SPACE),
        );
        wrong += usize::from(mmio.read32(reg::ID) != u32::MAX);
        wr(fe, f, command::OFFSET, 2, cmd0);
        wrong += usize::from(mmio.read32(reg::ID) != edu::ID_VALUE);
    }
    let done = wait_for(edu::TIMEOUT_MS, || mmio.read64(reg::DMA_CMD) & 1 == 0);
    core::sync::atomic::fence(Ordering::SeqCst);
    let same = (0..DMA_BYTES / 8)
        .all(|i| src.u64(8 * i).load(Ordering::Relaxed) == dst.u64(8 * i).load(Ordering::Relaxed));
    println!(
        "xpci: attack-bar: {TOGGLES} decode toggles during a DMA: {wrong} wrong reads, DMA done {done}, copy {}",
        if same { "intact" } else { "different" }
    );
    let ok = loaded && done && same && wrong == 0;
    t.case(
        "decode toggled 200 times while edu DMAs",
        if ok {
            "all-ones while off, answers while on, DMA intact"
        } else {
            "wrong"
        },
        ok,
    );
    // Remapped between two addresses.
    let orig = rd(fe, f, 0x10, 4);
    let alt = page_at(u64::from(REMAP_TO));
    let mut wrong = 0;
    for i in 0..REMAPS {
        let to = if i % 2 == 0 { REMAP_TO } else { orig & !0xf };
        move_bar(fe, f, cmd0, to);
        let (here, there) = (alt.map_or(0, |a| a.read32(reg::ID)), mmio.read32(reg::ID));
        let want = if i % 2 == 0 {
            (edu::ID_VALUE, u32::MAX)
        } else {
            (u32::MAX, edu::ID_VALUE)
        };
        if (here, there) != want {
            println!("xpci: attack-bar: remap {i} to {to:#x}: {here:#x} at {REMAP_TO:#x}, {there:#x} at the host address");
            wrong += 1;
        }
    }
    move_bar(fe, f, cmd0, orig);
    let ok = wrong == 0 && mmio.read32(reg::ID) == edu::ID_VALUE;
    t.case(
        "BAR0 remapped 20 times between two addresses",
        if ok {
            "answers only at the guest's address"
        } else {
            "wrong"
        },
        ok,
    );
}

/// Accesses to the trapped MSI-X table of `f` (MSI-X off).
fn msix_table(fe: &mut Frontend, f: &Function, t: &mut Table) {
    let Some(m) = f.msix else { return };
    let (Some(tb), Some(pb)) = (f.bars[usize::from(m.table.0)], f.bars[usize::from(m.pba.0)])
    else {
        t.case("MSI-X BARs", "missing", false);
        return;
    };
    let cmd0 = rd(fe, f, command::OFFSET, 2);
    wr(
        fe,
        f,
        command::OFFSET,
        2,
        cmd0 | u32::from(command::MEMORY_SPACE),
    );
    let (Ok(tm), Ok(pm)) = (Mmio::map(&tb), Mmio::map(&pb)) else {
        t.case("MSI-X BARs mapped", "failed", false);
        return;
    };
    // Entry 1 (the drivers use entry 0).
    let e1 = u64::from(m.table.1) + 16;
    tm.write_raw(e1, 8, 0x0000_0000_fee0_1000);
    tm.write_raw(e1 + 8, 4, 0x4041);
    let snap = |tm: &Mmio| {
        [
            tm.read_raw(e1, 4),
            tm.read_raw(e1 + 4, 4),
            tm.read_raw(e1 + 8, 4),
            tm.read_raw(e1 + 12, 4),
            tm.read_raw(e1 + 16, 4),
        ]
    };
    let s0 = snap(&tm);
    t.case(
        "MSI-X table entry written with aligned 8 and 4 bytes",
        if s0[0] == 0xfee0_1000 && s0[2] == 0x4041 {
            "virtual values read back"
        } else {
            "not kept"
        },
        s0[0] == 0xfee0_1000 && s0[1] == 0 && s0[2] == 0x4041,
    );
    let reads: [(&'static str, u64, u8, u64); 3] = [
        ("MSI-X table read with 1 byte", e1, 1, 0xff),
        ("MSI-X table read with 2 bytes", e1 + 2, 2, 0xffff),
        (
            "MSI-X table read with 4 bytes at +2 (misaligned)",
            e1 + 2,
            4,
            0xffff_ffff,
        ),
    ];
    for (case, at, size, want) in reads {
        let v = tm.read_raw(at, size);
        t.case(case, if v == want { "all-ones" } else { "data" }, v == want);
    }
    let writes: [(&'static str, u64, u8); 4] = [
        ("MSI-X table written with 1 byte", e1 + 8, 1),
        ("MSI-X table written with 2 bytes", e1 + 8, 2),
        (
            "MSI-X table written with 4 bytes at +2 (misaligned)",
            e1 + 2,
            4,
        ),
        (
            "MSI-X table written with 8 bytes across two entries",
            e1 + 12,
            8,
        ),
    ];
    for (case, at, size) in writes {
        tm.write_raw(at, size, u64::MAX);
        let s = snap(&tm);
        t.case(case, if s == s0 { "ignored" } else { "written" }, s == s0);
    }
    // Past the table into the PBA.
    let pba = u64::from(m.pba.1);
    let before = pm.read_raw(pba, 8);
    pm.write_raw(pba, 8, u64::MAX);
    pm.write_raw(pba, 4, u64::MAX);
    let after = pm.read_raw(pba, 8);
    t.case(
        "PBA written with all ones",
        if after == before {
            "ignored"
        } else {
            "written"
        },
        after == before,
    );
    let last = u64::from(m.table.1) + 16 * u64::from(m.entries);
    tm.write_raw(last - 4, 8, u64::MAX);
    let after = pm.read_raw(pba, 8);
    let ok = after == before;
    println!("xpci: attack-bar: 8 bytes across the table's end: PBA {before:#x} -> {after:#x}");
    t.case(
        "8 bytes written across the table's last entry",
        if ok { "ignored" } else { "written" },
        ok,
    );
    tm.write_raw(e1, 8, 0);
    tm.write_raw(e1 + 8, 4, 0);
    wr(fe, f, command::OFFSET, 2, cmd0);
}

// --- MSI-X ops ---

fn msix_ops(fe: &mut Frontend, f: &Function, t: &mut Table) {
    let Some(m) = f.msix else { return };
    let cmd0 = rd(fe, f, command::OFFSET, 2) | u32::from(command::MEMORY_SPACE);
    wr(fe, f, command::OFFSET, 2, cmd0);
    let n = m.entries;
    let all: [u16; 128] = core::array::from_fn(|i| i as u16);
    let cases: [(&'static str, u32, &[u16]); 8] = [
        ("129 entries", 129, &all),
        ("0 entries", 0, &[]),
        ("0xffffffff entries", u32::MAX, &all),
        (
            "128 entries, more than the table has",
            128,
            if n < 128 { &all } else { &[] },
        ),
        ("entry 0 twice", 2, &[0, 0]),
        ("entry 1, 2, 1", 3, &[1, 2, 1]),
        ("entry equal to the table size", 1, &[n]),
        ("entry 0xffff", 1, &[0xffff]),
    ];
    for (case, count, entries) in cases {
        if count == 128 && n >= 128 {
            report::skip("attack-msix: 128 entries", "the table has 128 or more");
            continue;
        }
        let (e, _) = enable_msix(fe, f, count, entries);
        let on = rd(fe, f, m.offset + 2, 2) & 0x8000 != 0;
        t.case(case, errno(e.into()), i64::from(e) == EINVAL && !on);
    }
    // Memory decode off: the table does not answer.
    wr(
        fe,
        f,
        command::OFFSET,
        2,
        cmd0 & !u32::from(command::MEMORY_SPACE),
    );
    let (e, _) = enable_msix(fe, f, 1, &[0]);
    wr(fe, f, command::OFFSET, 2, cmd0);
    t.case(
        "enabled with memory decode off",
        errno(e.into()),
        i64::from(e) == ENXIO,
    );
    // Twice.
    let (e1, p) = enable_msix(fe, f, 2, &[0, 1]);
    let (e2, _) = enable_msix(fe, f, 1, &[2]);
    let on = rd(fe, f, m.offset + 2, 2) & 0x8000 != 0;
    let distinct = p[0] != p[1] && p[0] != 0 && p[1] != 0;
    t.case(
        "enabled twice",
        errno(e2.into()),
        e1 == 0 && distinct && on && i64::from(e2) == EALREADY,
    );
    // Its pirqs: bound once, not twice.
    let port = evtchn::bind_pirq(p[0].into(), 0);
    let again = evtchn::bind_pirq(p[0].into(), 0);
    t.case(
        "an MSI-X pirq bound twice",
        errno(again.err().unwrap_or(0)),
        port.is_ok() && again == Err(EEXIST),
    );
    if let Ok(port) = port {
        evtchn::close(port);
    }
    let (d1, _) = op(fe, cmd::DISABLE_MSIX, f, 0, 0, 0);
    let (d2, _) = op(fe, cmd::DISABLE_MSIX, f, 0, 0, 0);
    let off = rd(fe, f, m.offset + 2, 2) & 0x8000 == 0;
    t.case("disabled twice", cfg_err(d2), d1 == 0 && d2 == 0 && off);
    let freed = evtchn::bind_pirq(p[1].into(), 0);
    t.case(
        "a pirq of the disabled MSI-X bound",
        errno(freed.err().unwrap_or(0)),
        freed == Err(EPERM),
    );
    // Nothing leaked by the refusals: 32 enable/disable cycles of two
    // entries.
    let mut failed = 0;
    for _ in 0..32 {
        let (e, _) = enable_msix(fe, f, 2, &[0, 1]);
        let (d, _) = op(fe, cmd::DISABLE_MSIX, f, 0, 0, 0);
        failed += usize::from(e != 0 || d != 0);
    }
    t.case(
        "32 enable/disable cycles after the refusals",
        if failed == 0 { "all ok" } else { "failed" },
        failed == 0,
    );
}

// --- interrupts ---

/// How long the device's interrupt storm lasts.
const STORM_MS: u64 = 2000;
/// EOIs in the storm.
const EOIS: usize = 10_000;

fn irq(fe: &mut Frontend, found: &Functions, f: &Function, mmio: &Mmio, t: &mut Table) {
    // MSI twice; MSI-X on a function without it.
    let first = fe.enable_msi(f);
    let (e, _) = op(fe, cmd::ENABLE_MSI, f, 0, 0, 0);
    t.case(
        "MSI enabled twice",
        errno(e.into()),
        first.is_ok() && i64::from(e) == EALREADY,
    );
    let (e, _) = enable_msix(fe, f, 1, &[0]);
    t.case(
        "MSI-X enabled on a function without MSI-X",
        errno(e.into()),
        i64::from(e) == ENODEV,
    );
    let Ok(msi) = first else {
        return;
    };
    let Irq::Event { pirq, .. } = msi else { return };
    // A bound pirq bound again, EOIs of an MSI pirq.
    let again = evtchn::bind_pirq(pirq, 0);
    t.case(
        "its MSI pirq bound twice",
        errno(again.err().unwrap_or(0)),
        again == Err(EEXIST),
    );
    storm(mmio, msi, t);
    let _ = fe.disable_msi(f);
    let freed = evtchn::bind_pirq(pirq, 0);
    t.case(
        "the pirq of the disabled MSI bound",
        errno(freed.err().unwrap_or(0)),
        freed == Err(EPERM),
    );
    for (case, p, want) in [
        ("pirq 1 (never given) bound", 1, EPERM),
        ("pirq 0x7fffffff bound", 0x7fff_ffff, EINVAL),
    ] {
        let r = evtchn::bind_pirq(p, 0);
        t.case(case, errno(r.err().unwrap_or(0)), r == Err(want));
    }
    let (e, v) = op(fe, cmd::DISABLE_MSI, f, 0, 0, 0);
    let intx = u32::from(f.intx().unwrap_or(0));
    t.case(
        "MSI disabled when it is off",
        cfg_err(e),
        e == 0 && v == intx,
    );
    let (e, _) = op(fe, cmd::DISABLE_MSIX, f, 0, 0, 0);
    t.case("MSI-X disabled when it was never on", cfg_err(e), e == 0);
    eoi_storm(fe, f, mmio, t);
    // MSI and MSI-X together on a function with both.
    let Some(g) = found.iter().find(|g| g.msi.is_some() && g.msix.is_some()) else {
        report::skip("attack-irq: MSI with MSI-X", "no function has both");
        return;
    };
    let cmd0 = rd(fe, g, command::OFFSET, 2);
    wr(
        fe,
        g,
        command::OFFSET,
        2,
        cmd0 | u32::from(command::MEMORY_SPACE),
    );
    let (a, _) = op(fe, cmd::ENABLE_MSI, g, 0, 0, 0);
    let (b, _) = enable_msix(fe, g, 1, &[0]);
    op(fe, cmd::DISABLE_MSI, g, 0, 0, 0);
    t.case(
        "MSI-X enabled while MSI is on",
        errno(b.into()),
        a == 0 && i64::from(b) == ENXIO,
    );
    let (a, _) = enable_msix(fe, g, 1, &[0]);
    let (b, _) = op(fe, cmd::ENABLE_MSI, g, 0, 0, 0);
    op(fe, cmd::DISABLE_MSIX, g, 0, 0, 0);
    t.case(
        "MSI enabled while MSI-X is on",
        errno(b.into()),
        a == 0 && i64::from(b) == ENXIO,
    );
    wr(fe, g, command::OFFSET, 2, cmd0);
}

/// edu raises MSIs as fast as the guest writes its raise register, for
/// [`STORM_MS`]; the guest takes them, and edu's interrupt still works
/// after.
fn storm(mmio: &Mmio, irq: Irq, t: &mut Table) {
    let before = irq.count();
    println!("xpci: attack-irq: interrupt storm from edu: start");
    let start = crate::cpu::rdtsc();
    let limit = STORM_MS * super::tsc_per_ms();
    let mut raised = 0u64;
    while crate::cpu::rdtsc().wrapping_sub(start) < limit {
        for _ in 0..64 {
            mmio.write32(reg::IRQ_RAISE, 1);
            mmio.write32(reg::IRQ_ACK, 1);
        }
        raised += 64;
        evtchn::interrupt_window();
    }
    let events = irq.count().wrapping_sub(before);
    println!("xpci: attack-irq: interrupt storm from edu: end: {raised} raised, {events} events");
    let works = edu::raise(mmio, irq).is_some();
    let ok = events > 0 && works;
    t.case(
        "interrupt storm from edu (2 s)",
        if ok {
            "taken, edu's MSI still works"
        } else {
            "lost"
        },
        ok,
    );
}

/// EOIs of its INTx pirq with nothing pending, then the line: one event
/// per assertion, none while it stays asserted without an EOI.
fn eoi_storm(fe: &mut Frontend, f: &Function, mmio: &Mmio, t: &mut Table) {
    let Some(line) = f.intx() else {
        report::skip("attack-irq: EOI storm", "no INTx");
        return;
    };
    let pirq = u32::from(line);
    let Ok(port) = evtchn::bind_pirq(pirq, 0) else {
        t.case("INTx pirq bound", "failed", false);
        return;
    };
    evtchn::unmask(port);
    let irq = Irq::Event { pirq, port };
    let status = mmio.read32(reg::IRQ_STATUS);
    mmio.write32(reg::IRQ_ACK, status);
    let cmd0 = rd(fe, f, command::OFFSET, 2);
    wr(
        fe,
        f,
        command::OFFSET,
        2,
        cmd0 & !u32::from(command::INTX_DISABLE),
    );
    let before = irq.count();
    let mut odd = 0;
    for _ in 0..EOIS {
        odd += usize::from(crate::xen::physdev_eoi(pirq) != 0);
    }
    let spurious = irq.wait(before, 50).is_some();
    // One assertion: one event, and no second while it stays asserted.
    mmio.write32(reg::IRQ_RAISE, 1);
    let first = irq.wait(before, edu::TIMEOUT_MS).is_some();
    let n1 = irq.count();
    let second = irq.wait(n1, 50).is_some();
    mmio.write32(reg::IRQ_ACK, 1);
    let eoi = crate::xen::physdev_eoi(pirq);
    let third = irq.wait(irq.count(), 50).is_some();
    wr(fe, f, command::OFFSET, 2, cmd0);
    evtchn::close(port);
    println!(
        "xpci: attack-irq: {EOIS} EOIs of pirq {pirq} ({odd} refused); spurious {spurious}; \
         raise: {first}, again before the EOI {second}, after it {third} (EOI {eoi})"
    );
    let ok = odd == 0 && !spurious && first && !second && eoi == 0 && !third;
    t.case(
        "10000 EOIs of its INTx pirq with nothing pending",
        if ok {
            "no spurious event, one event per assertion"
        } else {
            "wrong"
        },
        ok,
    );
}
