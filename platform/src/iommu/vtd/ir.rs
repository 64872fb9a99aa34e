//! Interrupt remapping (VT-d specification chapter 5, the interrupt
//! remapping table entry of 9.10 and the IRTA register of 11.4.8.2).
//!
//! With remapping on, a device's MSI is a request to the unit, not a
//! message to a local APIC: a *remappable* MSI (address bit 4 set) names
//! an entry of the interrupt remapping table by its handle, and the unit
//! delivers only what that entry says (vector, destination, delivery and
//! trigger modes), after checking that the requester is the function the
//! entry was written for. A *compatibility-format* MSI (bit 4 clear: the
//! classic `0xFEEx_xxxx` write carrying a vector and an APIC id) is
//! blocked and recorded as fault 0x25 as long as GCMD.CFI stays clear,
//! which [`Vtd::enable_interrupt_remapping`](super::Vtd::enable_interrupt_remapping)
//! ensures: a device that DMA-writes a forged message to the interrupt
//! range gets nothing delivered.
//!
//! Remapped-format entry (128 bits), low 64 bits:
//!
//! - bit 0 P (present), bit 1 FPD (fault processing disable), bit 2 DM
//!   (destination mode, 0 physical), bit 3 RH (redirection hint), bit 4
//!   TM (trigger mode, 0 edge), bits 7:5 DLM (delivery mode, 000 fixed),
//!   bits 11:8 available to software, bits 14:12 reserved, bit 15 IM
//!   (0 remapped, 1 posted), bits 23:16 V (vector), bits 31:24 reserved,
//!   bits 63:32 DST (destination id: in xAPIC mode bits 47:40 hold the
//!   8-bit APIC id and the rest is zero; in x2APIC mode all 32 bits are
//!   the x2APIC id).
//!
//! High 64 bits: bits 15:0 SID (requester id), bits 17:16 SQ (source-id
//! qualifier, 00 compares all 16 bits), bits 19:18 SVT (source
//! validation type, 01 verifies the requester id against SID and SQ),
//! bits 63:20 reserved.
//!
//! Index-selective interrupt entry cache invalidation descriptor (type 4,
//! specification 6.5.2.7): bit 4 G = 1 (index-selective), bits 31:27 IM
//! (index mask: 2^IM entries from IIDX; 0 = one entry), bits 47:32 IIDX.

use bitfield::bitfield;
use vmm_glue::Sbdf;

use super::regs::*;
use super::{command, Vtd, VtdError, VtdRegs};
use crate::iommu::TableMemory;

impl<R: VtdRegs> Vtd<R> {
    /// Turns interrupt remapping on with `table`: IRTA = the table (with
    /// EIME in x2APIC mode), GCMD.SIRTP and wait for GSTS.IRTPS, a global
    /// interrupt entry cache invalidation, GCMD.CFI cleared if firmware
    /// left it set (wait for GSTS.CFIS clear), then GCMD.IRE and wait for
    /// GSTS.IRES. Every GCMD write carries the other enables over from
    /// GSTS.
    ///
    /// From then on only remappable MSIs ([`remappable_msi`]) whose
    /// entry is present and names the requester are delivered;
    /// compatibility-format interrupts (a plain write to `0xFEEx_xxxx`)
    /// are blocked and recorded as fault 0x25.
    ///
    /// Needs ECAP.IR, ECAP.EIM for an x2APIC table
    /// ([`VtdError::Unsupported`]) and queued invalidation
    /// ([`VtdError::NoQueue`]); nothing is written when one is missing.
    pub fn enable_interrupt_remapping(
        &mut self,
        mem: &mut impl TableMemory,
        table: &IrTable,
    ) -> Result<(), VtdError> {
        if !self.caps.interrupt_remapping() {
            return Err(VtdError::Unsupported("ECAP.IR"));
        }
        if table.mode() == ApicMode::X2apic && !self.caps.extended_interrupt_mode() {
            return Err(VtdError::Unsupported("ECAP.EIM"));
        }
        if self.queue.is_none() {
            return Err(VtdError::NoQueue);
        }
        self.regs.write64(IRTA, table.irta());
        command(&mut self.regs, G_IRTP, true, G_IRTP, true, "GSTS.IRTPS")?;
        self.flush_interrupt_cache(mem)?;
        if self.regs.read32(GSTS) & G_CFI != 0 {
            command(&mut self.regs, G_CFI, false, G_CFI, false, "GSTS.CFIS")?;
        }
        command(&mut self.regs, G_IRE, true, G_IRE, true, "GSTS.IRES")
    }

    /// Turns interrupt remapping off (GCMD.IRE clear, wait for GSTS.IRES
    /// clear); only for shutting down, as interrupts then bypass the
    /// table.
    pub fn disable_interrupt_remapping(&mut self) -> Result<(), VtdError> {
        command(&mut self.regs, G_IRE, false, G_IRE, false, "GSTS.IRES")
    }

    /// Whether the unit remaps interrupts (GSTS.IRES).
    pub fn interrupt_remapping_enabled(&mut self) -> bool {
        self.regs.read32(GSTS) & G_IRE != 0
    }

    /// Invalidates the interrupt entry cache for entry `index` (after
    /// [`IrTable::set`] or [`IrTable::clear`]) and waits until the unit
    /// is done. Needs queued invalidation.
    pub fn invalidate_irte(
        &mut self,
        mem: &mut impl TableMemory,
        index: u16,
    ) -> Result<(), VtdError> {
        let coherent = self.caps.coherent();
        let queue = self.queue.as_mut().ok_or(VtdError::NoQueue)?;
        queue.submit(
            &mut self.regs,
            mem,
            coherent,
            &[interrupt_entry_descriptor(index)],
        )
    }
}

/// Entries in an [`IrTable`]: 256 entries of 16 bytes fill exactly one
/// 4 KiB frame, so the table is physically contiguous however the frame
/// allocator hands out frames (the unit needs one contiguous range).
pub const IR_ENTRIES: u16 = 256;

/// IRTA.S (bits 3:0) for [`IR_ENTRIES`]: the table has 2^(S + 1) entries.
pub const IRTA_SIZE: u64 = 7;

bitfield! {
    /// An interrupt remapping table entry's 128 bits (remapped format,
    /// low half in bits 63:0; VT-d specification 9.10).
    #[derive(Clone, Copy, PartialEq, Eq, Default)]
    pub struct RawIrte(pub u128);
    impl Debug;
    /// P: present.
    pub present, set_present: 0;
    /// FPD: faults on this entry are not recorded.
    pub fpd, set_fpd: 1;
    /// DM: logical destination mode.
    pub logical, set_logical: 2;
    /// RH: redirection hint.
    pub rh, set_rh: 3;
    /// TM: level triggered. The local APIC takes the mode from here (its
    /// TMR), so a level-triggered I/O APIC input's entry must say so for
    /// the end of interrupt to reach the I/O APIC.
    pub level, set_level: 4;
    /// DLM: delivery mode (000b fixed).
    pub u8, dlm, set_dlm: 7, 5;
    /// IM: 0 = remapped format.
    pub posted, set_posted: 15;
    /// V: the vector.
    pub u8, vector, set_vector: 23, 16;
    /// DST: the destination id (xAPIC: APIC id in bits 15:8).
    pub u32, dst, set_dst: 63, 32;
    /// SID: the requester id to verify.
    pub u16, sid, set_sid: 79, 64;
    /// SQ: which SID bits are compared (00b all 16).
    pub u8, sq, set_sq: 81, 80;
    /// SVT: source validation type (01b verify SID with SQ).
    pub u8, svt, set_svt: 83, 82;
}

impl RawIrte {
    /// From the two 64-bit halves as the table holds them.
    pub const fn from_halves([lo, hi]: [u64; 2]) -> Self {
        Self((hi as u128) << 64 | lo as u128)
    }

    /// The two 64-bit halves, low then high.
    pub const fn halves(&self) -> [u64; 2] {
        [self.0 as u64, (self.0 >> 64) as u64]
    }
}

/// SVT 01b: verify the requester id against SID with the qualifier SQ.
const SVT_VERIFY_SID: u8 = 0b01;

/// How destination ids are written: the unit's IRTA.EIME, which must
/// match the mode the local APICs run in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApicMode {
    /// xAPIC: 8-bit APIC ids, in bits 15:8 of the destination field
    /// (IRTA.EIME = 0).
    Xapic,
    /// x2APIC: 32-bit x2APIC ids (IRTA.EIME = 1; needs ECAP.EIM).
    X2apic,
}

/// What one remapped interrupt delivers, and from whom it is accepted.
///
/// The entry is always written for fixed delivery, edge trigger,
/// physical destination mode and no redirection hint: one vector to one
/// CPU, which is what an MSI or MSI-X vector of an assigned function
/// needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Irte {
    /// The vector delivered (16 to 255; 0 to 15 are exceptions and
    /// reserved).
    pub vector: u8,
    /// The destination CPU's APIC id (at most 255 in xAPIC mode) or
    /// x2APIC id.
    pub dest_apic_id: u32,
    /// The only function whose requests may use this entry: the unit
    /// compares the request's full requester id (bus, device, function)
    /// with it. The segment is the unit's.
    pub source: Sbdf,
}

impl Irte {
    /// The entry's 128 bits, low then high, for a table in `mode`;
    /// [`VtdError::BadIrte`] (naming `index`) for a vector below 16 or an
    /// APIC id above 255 in xAPIC mode.
    pub fn encode(&self, index: u16, mode: ApicMode) -> Result<[u64; 2], VtdError> {
        if self.vector < 16 {
            return Err(VtdError::BadIrte {
                index,
                why: "vectors 0 to 15 are reserved",
            });
        }
        let dst = match mode {
            ApicMode::Xapic => {
                if self.dest_apic_id > 0xff {
                    return Err(VtdError::BadIrte {
                        index,
                        why: "APIC id above 255 in xAPIC mode",
                    });
                }
                self.dest_apic_id << 8
            }
            ApicMode::X2apic => self.dest_apic_id,
        };
        // FPD, DM (physical), RH, TM (edge), DLM (fixed), IM (remapped)
        // are all 0; SQ 00b compares all 16 bits of the requester id.
        let mut e = RawIrte(0);
        e.set_present(true);
        e.set_vector(self.vector);
        e.set_dst(dst);
        e.set_sid(self.source.rid());
        e.set_svt(SVT_VERIFY_SID);
        Ok(e.halves())
    }
}

/// An interrupt remapping table of [`IR_ENTRIES`] entries in one frame of
/// table memory. One table serves one unit (or several units of the same
/// coherency and APIC mode).
#[derive(Debug)]
pub struct IrTable {
    base: u64,
    mode: ApicMode,
    coherent: bool,
}

impl IrTable {
    /// Allocates an empty table (every entry not present) whose
    /// destination ids are written for `mode`. `coherent` is whether the
    /// units using it snoop the CPU caches
    /// ([`Caps::coherent`](super::Caps::coherent)); if not, every entry
    /// write is flushed.
    pub fn new(
        mem: &mut impl TableMemory,
        mode: ApicMode,
        coherent: bool,
    ) -> Result<Self, VtdError> {
        let base = mem.alloc_zeroed().ok_or(VtdError::NoMemory)?;
        if !coherent {
            mem.flush(base, 4096);
        }
        Ok(Self {
            base,
            mode,
            coherent,
        })
    }

    /// The host-physical address of the table (4 KiB aligned).
    pub const fn base(&self) -> u64 {
        self.base
    }

    /// The number of entries ([`IR_ENTRIES`]).
    pub const fn len(&self) -> u16 {
        IR_ENTRIES
    }

    /// Always false: a table has [`IR_ENTRIES`] entries.
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// The APIC mode its destination ids are written for.
    pub const fn mode(&self) -> ApicMode {
        self.mode
    }

    /// The IRTA register value that points a unit at this table: the
    /// address, EIME (bit 11) in x2APIC mode, S (bits 3:0) =
    /// [`IRTA_SIZE`].
    pub const fn irta(&self) -> u64 {
        let eime = match self.mode {
            ApicMode::Xapic => 0,
            ApicMode::X2apic => IRTA_EIME,
        };
        self.base | eime | IRTA_SIZE
    }

    /// Writes entry `index`. The entry never becomes present half
    /// written: the high half (source id check) is written before the
    /// low half that carries P. Replacing a present entry for another
    /// source first clears P (an interrupt arriving then is dropped and
    /// recorded as fault 0x22), so no request is ever checked against one
    /// function and delivered as another's; replacing one for the same
    /// source is a single 64-bit write.
    ///
    /// Afterwards the unit may still use a cached copy: call
    /// [`Vtd::invalidate_irte`](super::Vtd::invalidate_irte).
    pub fn set(
        &mut self,
        mem: &mut impl TableMemory,
        index: u16,
        irte: Irte,
    ) -> Result<(), VtdError> {
        self.set_trigger(mem, index, irte, false)
    }

    /// [`set`](Self::set) for a level-triggered source (an I/O APIC input
    /// wired to a PCI INTx line): the entry's Trigger Mode says level.
    pub fn set_level(
        &mut self,
        mem: &mut impl TableMemory,
        index: u16,
        irte: Irte,
    ) -> Result<(), VtdError> {
        self.set_trigger(mem, index, irte, true)
    }

    fn set_trigger(
        &mut self,
        mem: &mut impl TableMemory,
        index: u16,
        irte: Irte,
        level: bool,
    ) -> Result<(), VtdError> {
        let at = self.slot(index)?;
        let mut e = RawIrte::from_halves(irte.encode(index, self.mode)?);
        e.set_level(level);
        let [lo, hi] = e.halves();
        let old = RawIrte::from_halves([mem.read64(at), mem.read64(at + 8)]);
        if old.halves()[1] != hi {
            if old.present() {
                self.write(mem, at, 0);
            }
            self.write(mem, at + 8, hi);
        }
        self.write(mem, at, lo);
        Ok(())
    }

    /// Makes entry `index` not present (P cleared first, then the rest).
    /// Afterwards call [`Vtd::invalidate_irte`](super::Vtd::invalidate_irte).
    pub fn clear(&mut self, mem: &mut impl TableMemory, index: u16) -> Result<(), VtdError> {
        let at = self.slot(index)?;
        self.write(mem, at, 0);
        self.write(mem, at + 8, 0);
        Ok(())
    }

    /// Entry `index` as it is in memory (low, high), for self-checks.
    pub fn raw(&self, mem: &mut impl TableMemory, index: u16) -> Result<[u64; 2], VtdError> {
        let at = self.slot(index)?;
        Ok([mem.read64(at), mem.read64(at + 8)])
    }

    /// Returns the frame. Only once no unit points at the table any more
    /// (interrupt remapping disabled, or another table installed and the
    /// interrupt entry cache invalidated).
    pub fn destroy(self, mem: &mut impl TableMemory) {
        mem.free(self.base);
    }

    fn slot(&self, index: u16) -> Result<u64, VtdError> {
        if index >= IR_ENTRIES {
            return Err(VtdError::BadIrte {
                index,
                why: "index beyond the table",
            });
        }
        Ok(self.base + u64::from(index) * 16)
    }

    fn write(&self, mem: &mut impl TableMemory, at: u64, v: u64) {
        mem.write64(at, v);
        if !self.coherent {
            mem.flush(at & !0xf, 16);
        }
    }
}

bitfield! {
    /// A remappable-format MSI address (VT-d specification 5.1.5.2).
    #[derive(Clone, Copy, PartialEq, Eq, Default)]
    pub struct RemappableMsiAddress(pub u64);
    impl Debug;
    /// Bits 31:20: 0xFEE, the interrupt range.
    pub u16, fee, set_fee: 31, 20;
    /// Bits 19:5: handle bits 14:0.
    pub u16, handle_low, set_handle_low: 19, 5;
    /// Bit 4: interrupt format, 1 = remappable.
    pub remappable, set_remappable: 4;
    /// Bit 3: SHV, the data holds a subhandle.
    pub shv, set_shv: 3;
    /// Bit 2: handle bit 15.
    pub handle_15, set_handle_15: 2;
}

/// The remappable-format MSI that selects entry `handle`: address
/// `0xFEE << 20` | handle bits 14:0 in bits 19:5 | interrupt format (bit
/// 4) = 1 | SHV (bit 3) = 0 | handle bit 15 in bit 2; data 0.
///
/// With SHV (subhandle valid) clear the handle alone selects the entry:
/// the data is ignored, so a device (or the guest programming it) cannot
/// reach another entry through the data's subhandle.
pub fn remappable_msi(handle: u16) -> (u64, u32) {
    let mut a = RemappableMsiAddress(0);
    a.set_fee(0xfee);
    a.set_handle_low(handle & 0x7fff);
    a.set_remappable(true);
    a.set_handle_15(handle >> 15 != 0);
    (a.0, 0)
}

bitfield! {
    /// An interrupt entry cache invalidate descriptor's low 64 bits
    /// (VT-d specification 6.5.2.7; the high 64 are reserved).
    #[derive(Clone, Copy, PartialEq, Eq, Default)]
    pub struct IecDescriptor(pub u64);
    impl Debug;
    /// Type: 4 = interrupt entry cache invalidate.
    pub u8, kind, set_kind: 3, 0;
    /// G: 1 = index-selective (IIDX and IM), 0 = global.
    pub selective, set_selective: 4;
    /// IM: index mask, 2^IM entries from IIDX.
    pub u8, im, set_im: 31, 27;
    /// IIDX: the first entry.
    pub u16, iidx, set_iidx: 47, 32;
}

/// An index-selective interrupt entry cache invalidate descriptor for
/// entry `index` (type 4, G = 1, IM = 0, IIDX = `index`).
pub fn interrupt_entry_descriptor(index: u16) -> [u64; 2] {
    let mut d = IecDescriptor(0);
    d.set_kind(4);
    d.set_selective(true);
    d.set_iidx(index);
    [d.0, 0]
}
