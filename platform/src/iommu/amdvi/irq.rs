//! Interrupt remapping (specification section 2.2.5): a table per device
//! of 32-bit entries, indexed by bits 10:0 of the MSI data the device
//! sends; the unit replaces the interrupt by what the entry says, and
//! blocks (target-aborts and logs) an interrupt whose entry is not
//! enabled or whose index is beyond the table.
//!
//! An entry (the format without guest virtual APIC, Control.GAEn = 0):
//! bit 0 RemapEn, bit 1 SupIOPF (do not log faults), bits 4:2 IntType
//! (000b fixed, 001b arbitrated), bit 5 RqEoi, bit 6 DM (0 physical
//! destination), bit 7 GuestMode (0), bits 15:8 Destination (the APIC
//! id), bits 23:16 Vector, bits 31:24 reserved.
//!
//! The unit classifies an MSI by the delivery mode in data bits 10:8
//! before indexing: fixed (000b) and arbitrated (001b) interrupts are
//! remapped, the others are handled by the entry's pass bits (all 0 here:
//! blocked). Indices up to 511 keep those bits at 000b or 001b, which is
//! why a table has at most [`MAX_IRQ_ENTRIES`] entries.

use bitfield::bitfield;
use vmm_glue::Sbdf;

use super::cmd::Command;
use super::dte::DeviceEntry;
use super::{AmdVi, AmdViError, AmdViRegs, IrqTable};
use crate::iommu::TableMemory;

/// The most entries a remapping table gets (IntTabLen = 9).
pub const MAX_IRQ_ENTRIES: u16 = 512;

/// The MSI address a remapped device uses: the interrupt range's base.
/// The unit takes the destination from the entry, not from the address.
pub const MSI_ADDRESS: u64 = 0xfee0_0000;

bitfield! {
    /// A remapping table entry (the 32-bit format, Control.GAEn = 0).
    #[derive(Clone, Copy, PartialEq, Eq, Default)]
    pub struct RawIrte(pub u32);
    impl Debug;
    /// RemapEn: the entry is enabled.
    pub remap_en, set_remap_en: 0;
    /// SupIOPF: faults are not logged.
    pub sup_iopf, set_sup_iopf: 1;
    /// IntType: 000b fixed, 001b arbitrated.
    pub u8, int_type, set_int_type: 4, 2;
    /// RqEoi.
    pub rq_eoi, set_rq_eoi: 5;
    /// DM: logical destination.
    pub logical, set_logical: 6;
    /// GuestMode.
    pub guest_mode, set_guest_mode: 7;
    /// Destination: the APIC id.
    pub u8, destination, set_destination: 15, 8;
    /// Vector.
    pub u8, vector, set_vector: 23, 16;
}

/// A remapping entry delivering `vector` to the local APIC with id
/// `dest_apic_id`: RemapEn, IntType fixed, physical destination.
pub fn irte(vector: u8, dest_apic_id: u8) -> u32 {
    let mut e = RawIrte(0);
    e.set_remap_en(true);
    e.set_destination(dest_apic_id);
    e.set_vector(vector);
    e.0
}

impl<R: AmdViRegs> AmdVi<R> {
    /// Gives function `dev` an interrupt remapping table of `entries`
    /// entries (rounded up to a power of two, at most
    /// [`MAX_IRQ_ENTRIES`]), all disabled: from here on every interrupt
    /// it sends is blocked and logged until [`map_irq`](Self::map_irq)
    /// enables its index. Word 2 of its device table entry gets IV = 1,
    /// IntTabLen, the table and IntCtl = 10b (remap); then
    /// INVALIDATE_INTERRUPT_TABLE. A table it had before is freed once
    /// the unit has let go of it.
    pub fn set_irq_table(
        &mut self,
        mem: &mut impl TableMemory,
        dev: Sbdf,
        entries: u16,
    ) -> Result<(), AmdViError> {
        let slot = self.slot(dev)?;
        if entries == 0 || entries > MAX_IRQ_ENTRIES {
            return Err(AmdViError::BadIrqCount(entries));
        }
        let entries = entries.next_power_of_two();
        let hpa = mem.alloc_zeroed().ok_or(AmdViError::NoMemory)?;
        let len_log2 = entries.trailing_zeros() as u8;
        mem.write64(slot + 16, DeviceEntry::remapped_word2(hpa, len_log2));
        let old = self.irq_tables.insert(dev.rid(), IrqTable { hpa, entries });
        self.invalidate_irqs(mem, dev, old)
    }

    /// Points function `dev`'s entry at the interrupt remapping table of
    /// `from` (the ID `dev`'s requests carry, an IVRS alias): word 2 of
    /// `dev`'s entry becomes `from`'s, then INVALIDATE_INTERRUPT_TABLE for
    /// `dev`; a table `dev` had of its own is freed. `from` keeps the
    /// table: block `dev`'s interrupts before `from`'s.
    #[inline(never)]
    pub fn share_irq_table(
        &mut self,
        mem: &mut impl TableMemory,
        dev: Sbdf,
        from: Sbdf,
    ) -> Result<(), AmdViError> {
        let (slot, word2) = (self.slot(dev)?, mem.read64(self.slot(from)? + 16));
        mem.write64(slot + 16, word2);
        let old = self.irq_tables.remove(&dev.rid());
        self.invalidate_irqs(mem, dev, old)
    }

    /// Blocks every interrupt from function `dev`: word 2 of its entry
    /// gets IV = 1 with IntCtl = 00b (target-abort) and no table, then
    /// INVALIDATE_INTERRUPT_TABLE, then its table (if any) is freed.
    #[inline(never)]
    pub fn block_irqs(&mut self, mem: &mut impl TableMemory, dev: Sbdf) -> Result<(), AmdViError> {
        let slot = self.slot(dev)?;
        mem.write64(slot + 16, DeviceEntry::BLOCKED_IRQS);
        let old = self.irq_tables.remove(&dev.rid());
        self.invalidate_irqs(mem, dev, old)
    }

    /// Lets function `dev` raise interrupt `index` of its table, which
    /// the unit delivers as `vector` to the local APIC `dest_apic_id`
    /// (fixed, physical destination); returns the MSI address and data
    /// to program into the device (the data is the index).
    pub fn map_irq(
        &mut self,
        mem: &mut impl TableMemory,
        dev: Sbdf,
        index: u16,
        vector: u8,
        dest_apic_id: u8,
    ) -> Result<(u64, u32), AmdViError> {
        if vector < 16 {
            return Err(AmdViError::BadVector(vector));
        }
        self.write_irte(mem, dev, index, irte(vector, dest_apic_id))?;
        Ok((MSI_ADDRESS, u32::from(index)))
    }

    /// Blocks interrupt `index` of function `dev` again.
    pub fn unmap_irq(
        &mut self,
        mem: &mut impl TableMemory,
        dev: Sbdf,
        index: u16,
    ) -> Result<(), AmdViError> {
        self.write_irte(mem, dev, index, 0)
    }

    /// The remapping entry `index` of function `dev` (for self-checks).
    pub fn irq_entry(&mut self, mem: &mut impl TableMemory, dev: Sbdf, index: u16) -> Option<u32> {
        let at = self.irte_address(dev, index).ok()?;
        Some((mem.read64(at & !7) >> ((at & 4) * 8)) as u32)
    }

    fn irte_address(&self, dev: Sbdf, index: u16) -> Result<u64, AmdViError> {
        self.slot(dev)?;
        let table = self
            .irq_tables
            .get(&dev.rid())
            .ok_or(AmdViError::NoIrqTable(dev))?;
        if index >= table.entries {
            return Err(AmdViError::BadIrqIndex { dev, index });
        }
        Ok(table.hpa + u64::from(index) * 4)
    }

    /// Writes entry `index` (a 32-bit half of a 64-bit word; the other
    /// half is written back unchanged) and invalidates the device's
    /// cached entries.
    fn write_irte(
        &mut self,
        mem: &mut impl TableMemory,
        dev: Sbdf,
        index: u16,
        entry: u32,
    ) -> Result<(), AmdViError> {
        let at = self.irte_address(dev, index)?;
        let word = at & !7;
        let shift = (at & 4) * 8;
        let old = mem.read64(word);
        mem.write64(
            word,
            (old & !(0xffff_ffff << shift)) | u64::from(entry) << shift,
        );
        self.invalidate_irqs(mem, dev, None)
    }

    /// INVALIDATE_INTERRUPT_TABLE for `dev`; then frees `old`, the table
    /// the device used before. If the invalidation fails the unit may
    /// still read `old`, so it is not freed.
    fn invalidate_irqs(
        &mut self,
        mem: &mut impl TableMemory,
        dev: Sbdf,
        old: Option<IrqTable>,
    ) -> Result<(), AmdViError> {
        self.submit(mem, [Command::InvalidateInterruptTable(dev.rid())])?;
        if let Some(old) = old {
            mem.free(old.hpa);
        }
        Ok(())
    }
}
