//! The local APIC a PVH guest sees: xAPIC registers in the page at
//! 0xFEE00000 after reset, x2APIC registers as MSRs 0x800-0x8FF once the
//! guest sets `IA32_APIC_BASE.EXTD` (Intel SDM vol. 3 ch. 11.4, 11.12):
//! what Linux needs to set up its interrupt mode and send IPIs (those
//! for the domain's other vCPUs are `hv::ipi`'s), nothing more. Interrupts from
//! devices and timers reach the guest through Xen event channels, so the
//! LVT entries are kept but never fire (but for the error entry); a
//! self-IPI (ICR with the self shorthand or the guest's own id, or the
//! SELF IPI register) becomes pending in IRR and is delivered like any
//! fixed interrupt, and EOI retires the highest vector in service.
//!
//! `IA32_APIC_BASE` follows the SDM's state machine (11.12.5) as Xen's
//! vLAPIC does (`guest_wrmsr_apic_base`): xAPIC -> x2APIC, either ->
//! disabled, disabled -> xAPIC (which resets the APIC); x2APIC -> xAPIC,
//! disabled -> x2APIC, the invalid EN=0/EXTD=1 state and reserved bits
//! are #GP, and in xAPIC mode the page cannot move. A disabled APIC
//! answers neither the page nor the MSRs and takes no interrupts.
//!
//! Errors (illegal vectors below 16, sent or received) accumulate and are
//! latched into ESR by a write to it (SDM 11.5.3), as Xen does; an
//! unmasked LVT error entry raises its vector when a new error is logged
//! (or, with an illegal vector itself, adds "receive illegal vector").

/// The x2APIC MSR range.
pub const MSR_FIRST: u32 = 0x800;
pub const MSR_LAST: u32 = 0x8ff;

/// Register offsets (MSR - 0x800).
mod reg {
    pub const ID: u32 = 0x02;
    pub const VERSION: u32 = 0x03;
    pub const TPR: u32 = 0x08;
    pub const PPR: u32 = 0x0a;
    pub const EOI: u32 = 0x0b;
    pub const LDR: u32 = 0x0d;
    pub const SVR: u32 = 0x0f;
    pub const ISR0: u32 = 0x10;
    pub const TMR0: u32 = 0x18;
    pub const IRR0: u32 = 0x20;
    pub const ESR: u32 = 0x28;
    pub const LVT_CMCI: u32 = 0x2f;
    pub const ICR: u32 = 0x30;
    pub const LVT_TIMER: u32 = 0x32;
    pub const LVT_ERROR: u32 = 0x37;
    pub const TIMER_INITIAL: u32 = 0x38;
    pub const TIMER_CURRENT: u32 = 0x39;
    pub const TIMER_DIVIDE: u32 = 0x3e;
    pub const SELF_IPI: u32 = 0x3f;
}

/// Version register: version 0x14 (integrated APIC), six LVT entries
/// (max LVT index 5), no EOI-broadcast suppression.
pub const VERSION: u32 = 0x0005_0014;
/// The mask bit of every LVT entry (set at reset).
const LVT_MASKED: u32 = 1 << 16;
/// The xAPIC register page.
pub const MMIO_BASE: u64 = 0xfee0_0000;
/// `IA32_APIC_BASE` bits: BSP, x2APIC enable (EXTD), global enable, and
/// the page address (as wide as Xen lets it be).
const BASE_BSP: u64 = 1 << 8;
const BASE_EXTD: u64 = 1 << 10;
const BASE_EN: u64 = 1 << 11;
const BASE_ADDR: u64 = 0x000f_ffff_ffff_f000;
/// ESR bits: send illegal vector, receive illegal vector.
pub const ESR_SEND_ILLEGAL: u32 = 1 << 5;
pub const ESR_RECV_ILLEGAL: u32 = 1 << 6;

/// The access raises #GP in the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gp;

/// The guest's local APIC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VLapic {
    id: u32,
    /// `IA32_APIC_BASE` as last written: EN and EXTD give the mode.
    base: u64,
    /// xAPIC logical destination and destination format registers.
    xapic_ldr: u32,
    xapic_dfr: u32,
    tpr: u32,
    svr: u32,
    /// ESR as read, and the errors logged since it was last written.
    esr: u32,
    esr_pending: u32,
    /// LVT CMCI, timer, thermal, PMC, LINT0, LINT1, error.
    lvt: [u32; 7],
    icr: u64,
    timer_initial: u32,
    timer_divide: u32,
    irr: [u64; 4],
    isr: [u64; 4],
}

fn test(bits: &[u64; 4], v: u8) -> bool {
    bits[usize::from(v / 64)] & (1 << (v % 64)) != 0
}

fn set(bits: &mut [u64; 4], v: u8) {
    bits[usize::from(v / 64)] |= 1 << (v % 64);
}

fn clear(bits: &mut [u64; 4], v: u8) {
    bits[usize::from(v / 64)] &= !(1 << (v % 64));
}

fn highest(bits: &[u64; 4]) -> Option<u8> {
    (0..4)
        .rev()
        .find(|&w| bits[w] != 0)
        .map(|w| (w * 64 + 63 - bits[w].leading_zeros() as usize) as u8)
}

/// The 32 bits of IRR, ISR or TMR register `index` (0..8).
fn word(bits: &[u64; 4], index: u32) -> u64 {
    let w = bits[(index / 2) as usize];
    if index.is_multiple_of(2) {
        w & 0xffff_ffff
    } else {
        w >> 32
    }
}

impl VLapic {
    /// An APIC with x2APIC id `id` in its reset state (software-disabled,
    /// every LVT entry masked).
    pub fn new(id: u32) -> Self {
        Self {
            id,
            base: MMIO_BASE | BASE_EN | if id == 0 { BASE_BSP } else { 0 },
            xapic_ldr: 0,
            xapic_dfr: u32::MAX,
            tpr: 0,
            svr: 0xff,
            esr: 0,
            esr_pending: 0,
            lvt: [LVT_MASKED; 7],
            icr: 0,
            timer_initial: 0,
            timer_divide: 0,
            irr: [0; 4],
            isr: [0; 4],
        }
    }

    /// `IA32_APIC_BASE` as the guest reads it (the BSP flag set for the
    /// boot vCPU, APIC id 0, at reset).
    pub fn base(&self) -> u64 {
        self.base
    }

    /// A write of `IA32_APIC_BASE` (the transitions in the module
    /// documentation). `Err(Gp)` means #GP.
    pub fn set_base(&mut self, value: u64) -> Result<(), Gp> {
        let mode = BASE_EN | BASE_EXTD;
        if value & !(BASE_ADDR | BASE_BSP | mode) != 0
            || (value & mode == BASE_EN && value & BASE_ADDR != MMIO_BASE)
        {
            return Err(Gp);
        }
        let changed = self.base ^ value;
        if changed & BASE_EN != 0 {
            if value & BASE_EXTD != 0 {
                return Err(Gp);
            }
            if value & BASE_EN != 0 {
                // Enabling again starts from the reset state; ESR keeps
                // what it holds, as under Xen.
                let (esr, esr_pending) = (self.esr, self.esr_pending);
                *self = Self {
                    esr,
                    esr_pending,
                    ..Self::new(self.id)
                };
            }
        } else if changed & BASE_EXTD != 0 && !self.xapic() {
            return Err(Gp);
        }
        self.base = value;
        Ok(())
    }

    /// Whether the APIC is globally enabled (`IA32_APIC_BASE.EN`).
    pub fn enabled(&self) -> bool {
        self.base & BASE_EN != 0
    }

    /// Whether the x2APIC registers (MSRs) are on; the xAPIC page is off
    /// then.
    pub fn x2apic(&self) -> bool {
        self.base & (BASE_EN | BASE_EXTD) == BASE_EN | BASE_EXTD
    }

    /// Whether the xAPIC page is on (enabled, not in x2APIC mode).
    pub fn xapic(&self) -> bool {
        self.base & (BASE_EN | BASE_EXTD) == BASE_EN
    }

    /// A 32-bit read of the xAPIC page at `offset`. Misaligned offsets and
    /// write-only registers read as 0; outside xAPIC mode the page reads
    /// as all-ones (it is not decoded).
    pub fn mmio_read(&self, offset: u32) -> u32 {
        if !self.xapic() {
            return u32::MAX;
        }
        if !offset.is_multiple_of(16) {
            return 0;
        }
        match offset / 16 {
            reg::ID => self.id << 24,
            reg::LDR => self.xapic_ldr,
            0x0e => self.xapic_dfr,
            0x31 => (self.icr >> 32) as u32,
            r => self.read(MSR_FIRST + r).map_or(0, |v| v as u32),
        }
    }

    /// A 32-bit write of the xAPIC page at `offset`. Writes to read-only
    /// registers are ignored (the page has no #GP); the ICR low word sends;
    /// any write of ESR latches the errors.
    pub fn mmio_write(&mut self, offset: u32, value: u32) {
        if !self.xapic() || !offset.is_multiple_of(16) {
            return;
        }
        match offset / 16 {
            reg::ESR => self.latch_esr(),
            reg::LDR => self.xapic_ldr = value & 0xff00_0000,
            0x0e => self.xapic_dfr = value | 0x0fff_ffff,
            reg::EOI => {
                let _ = self.write(MSR_FIRST + reg::EOI, 0);
            }
            0x31 => self.icr = (self.icr & 0xffff_ffff) | (u64::from(value) << 32),
            reg::ICR => {
                // xAPIC destinations are 8 bits in ICR high 31:24.
                let dest = (self.icr >> 56) & 0xff;
                let icr = (dest << 32) | u64::from(value);
                self.icr = (self.icr & !0xffff_ffff) | u64::from(value & !(1 << 12));
                self.send_ipi(icr);
            }
            r => {
                let _ = self.write(MSR_FIRST + r, u64::from(value));
            }
        }
    }

    /// Whether `msr` is one of the x2APIC registers.
    pub fn is_x2apic_msr(msr: u32) -> bool {
        (MSR_FIRST..=MSR_LAST).contains(&msr)
    }

    fn lvt_index(r: u32) -> Option<usize> {
        match r {
            reg::LVT_CMCI => Some(0),
            reg::LVT_TIMER..=reg::LVT_ERROR => Some((r - reg::LVT_TIMER + 1) as usize),
            _ => None,
        }
    }

    /// RDMSR of x2APIC register `msr`; `None` means #GP (a write-only or
    /// reserved register; or any register before x2APIC mode is on, which
    /// [`Self::read_msr`] checks).
    pub fn read_msr(&self, msr: u32) -> Option<u64> {
        self.x2apic().then(|| self.read(msr))?
    }

    /// WRMSR of x2APIC register `msr`: [`Self::write`] once x2APIC mode is
    /// on, #GP before.
    pub fn write_msr(&mut self, msr: u32, value: u64) -> Result<(), Gp> {
        if !self.x2apic() {
            return Err(Gp);
        }
        self.write(msr, value)
    }

    fn read(&self, msr: u32) -> Option<u64> {
        let r = msr.checked_sub(MSR_FIRST)?;
        let v = match r {
            reg::ID => u64::from(self.id),
            reg::VERSION => u64::from(VERSION),
            reg::TPR => u64::from(self.tpr),
            reg::PPR => u64::from(self.ppr()),
            reg::LDR => u64::from(((self.id >> 4) << 16) | (1 << (self.id & 0xf))),
            reg::SVR => u64::from(self.svr),
            r if (reg::ISR0..reg::ISR0 + 8).contains(&r) => word(&self.isr, r - reg::ISR0),
            r if (reg::TMR0..reg::TMR0 + 8).contains(&r) => 0,
            r if (reg::IRR0..reg::IRR0 + 8).contains(&r) => word(&self.irr, r - reg::IRR0),
            reg::ESR => u64::from(self.esr),
            reg::ICR => self.icr,
            reg::TIMER_INITIAL => u64::from(self.timer_initial),
            // The timer never counts: its interrupts are Xen's timers.
            reg::TIMER_CURRENT => 0,
            reg::TIMER_DIVIDE => u64::from(self.timer_divide),
            r => u64::from(self.lvt[Self::lvt_index(r)?]),
        };
        Some(v)
    }

    /// A register write in x2APIC terms; `Err(Gp)` means #GP (a read-only or
    /// reserved register, or reserved bits set where the SDM requires it).
    fn write(&mut self, msr: u32, value: u64) -> Result<(), Gp> {
        let r = msr.checked_sub(MSR_FIRST).ok_or(Gp)?;
        let low = value as u32;
        if r != reg::ICR && value >> 32 != 0 {
            return Err(Gp);
        }
        match r {
            reg::TPR => self.tpr = low & 0xff,
            reg::EOI => {
                if low != 0 {
                    return Err(Gp);
                }
                if let Some(v) = highest(&self.isr) {
                    clear(&mut self.isr, v);
                }
            }
            reg::SVR => self.svr = low & 0x11ff,
            // Only 0 may be written in x2APIC mode (SDM 11.5.3).
            reg::ESR if low != 0 => return Err(Gp),
            reg::ESR => self.latch_esr(),
            reg::ICR => {
                self.icr = value & !(1 << 12);
                self.send_ipi(value);
            }
            reg::TIMER_INITIAL => self.timer_initial = low,
            reg::TIMER_DIVIDE => self.timer_divide = low & 0xb,
            // An ICR write with the self shorthand, as Xen makes it.
            reg::SELF_IPI => self.send_ipi((1 << 18) | u64::from(low & 0xff)),
            r => match Self::lvt_index(r) {
                Some(i) => self.lvt[i] = low & 0x0003_17ff,
                None => return Err(Gp),
            },
        }
        Ok(())
    }

    /// An ICR write: fixed-mode IPIs to this APIC (the self shorthand, all
    /// including self, or its own id) become pending; the rest (other CPUs,
    /// INIT, NMI, SMI) have no target on a one-vCPU domain. A fixed or
    /// lowest-priority IPI with an illegal vector goes nowhere and logs a
    /// send error.
    fn send_ipi(&mut self, icr: u64) {
        let vector = (icr & 0xff) as u8;
        let mode = (icr >> 8) & 7;
        if mode <= 1 && vector < 16 {
            return self.error(ESR_SEND_ILLEGAL);
        }
        let shorthand = (icr >> 18) & 3;
        let dest = (icr >> 32) as u32;
        let to_me = match shorthand {
            0 => dest == self.id || dest == u32::MAX,
            1 | 2 => true,
            _ => false,
        };
        if mode == 0 && to_me {
            self.raise(vector);
        }
    }

    /// Whether ICR destination `dest` (as the sender's mode reads its ICR:
    /// 8 bits from an xAPIC, 32 from an x2APIC, as in Xen) names this
    /// APIC. Physical: its id or the broadcast (0xff in xAPIC mode,
    /// all-ones in x2APIC mode). Logical (`logical`): in x2APIC mode the
    /// cluster in 31:16 and a member bit in 15:0 (SDM 11.12.10.2); in
    /// xAPIC mode a bit of the LDR's top byte, or with the cluster model
    /// (DFR 0) the cluster in the high nibble and a member bit in the low.
    pub fn accepts(&self, dest: u32, logical: bool) -> bool {
        if self.x2apic() {
            let ldr = ((self.id >> 4) << 16) | (1 << (self.id & 0xf));
            return dest == u32::MAX
                || if logical {
                    dest >> 16 == ldr >> 16 && dest & ldr & 0xffff != 0
                } else {
                    dest == self.id
                };
        }
        let ldr = self.xapic_ldr >> 24;
        dest == 0xff
            || match (logical, self.xapic_dfr >> 28) {
                (false, _) => dest == self.id,
                (true, 0xf) => dest & ldr != 0,
                (true, _) => (dest >> 4) & 0xf == ldr >> 4 && dest & ldr & 0xf != 0,
            }
    }

    /// INIT: every register back to its reset state but the id and the
    /// mode (INIT leaves `IA32_APIC_BASE` as it is).
    pub fn init(&mut self) {
        *self = Self {
            base: self.base,
            ..Self::new(self.id)
        };
    }

    /// Makes `vector` pending. A disabled APIC takes nothing; vectors 0-15
    /// are illegal for fixed interrupts: they are dropped and logged as a
    /// receive error.
    pub fn raise(&mut self, vector: u8) {
        if !self.enabled() {
            return;
        }
        if vector < 16 {
            self.error(ESR_RECV_ILLEGAL);
        } else {
            set(&mut self.irr, vector);
        }
    }

    /// Logs error `bit` for the next ESR write to latch. A new error
    /// raises the LVT error entry's vector when that entry is unmasked;
    /// an illegal vector there is itself a receive error (Xen breaks the
    /// loop the same way).
    fn error(&mut self, bit: u32) {
        if self.esr_pending & bit != 0 {
            return;
        }
        self.esr_pending |= bit;
        let lvt = self.lvt[6];
        if lvt & LVT_MASKED == 0 {
            match (lvt & 0xff) as u8 {
                v @ 16.. => set(&mut self.irr, v),
                _ => self.esr_pending |= ESR_RECV_ILLEGAL,
            }
        }
    }

    /// A write of ESR: the logged errors become readable and are cleared.
    fn latch_esr(&mut self) {
        self.esr = core::mem::take(&mut self.esr_pending);
    }

    fn ppr(&self) -> u32 {
        let isrv = highest(&self.isr).map_or(0, u32::from);
        if (self.tpr & 0xf0) >= (isrv & 0xf0) {
            self.tpr & 0xff
        } else {
            isrv & 0xf0
        }
    }

    /// The vector to deliver now: the highest pending one above the
    /// processor priority, if the APIC is software-enabled.
    pub fn deliverable(&self) -> Option<u8> {
        if self.svr & (1 << 8) == 0 || !self.enabled() {
            return None;
        }
        let v = highest(&self.irr)?;
        (u32::from(v) & 0xf0 > self.ppr() & 0xf0).then_some(v)
    }

    /// The CPU took `vector`: it moves from IRR to ISR.
    pub fn accept(&mut self, vector: u8) {
        if test(&self.irr, vector) {
            clear(&mut self.irr, vector);
            set(&mut self.isr, vector);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn msr(r: u32) -> u32 {
        MSR_FIRST + r
    }

    fn x2(id: u32) -> VLapic {
        let mut a = VLapic::new(id);
        a.set_base(a.base() | (1 << 10)).unwrap();
        a
    }

    fn enabled() -> VLapic {
        let mut a = x2(0);
        a.write_msr(msr(reg::SVR), 0x1ff).unwrap();
        a
    }

    #[test]
    fn identity_registers_read_as_an_x2apic_with_six_lvt_entries() {
        let a = x2(3);
        assert_eq!(a.read_msr(msr(reg::ID)), Some(3));
        assert_eq!(a.read_msr(msr(reg::VERSION)), Some(0x0005_0014));
        assert_eq!(a.read_msr(msr(reg::LDR)), Some(1 << 3));
        assert_eq!(x2(0x21).read_msr(msr(reg::LDR)), Some((2 << 16) | 2));
    }

    #[test]
    fn reset_state_is_software_disabled_with_every_lvt_masked() {
        let a = x2(0);
        assert_eq!(a.read_msr(msr(reg::SVR)), Some(0xff));
        for r in [
            reg::LVT_CMCI,
            reg::LVT_TIMER,
            0x33,
            0x34,
            0x35,
            0x36,
            reg::LVT_ERROR,
        ] {
            assert_eq!(a.read_msr(msr(r)), Some(u64::from(LVT_MASKED)), "{r:#x}");
        }
    }

    #[test]
    fn read_only_registers_and_holes_fault_on_write() {
        let mut a = x2(0);
        for r in [
            reg::ID,
            reg::VERSION,
            reg::PPR,
            reg::LDR,
            reg::ISR0,
            reg::IRR0,
            0x01,
            0x3a,
        ] {
            assert_eq!(a.write_msr(msr(r), 0), Err(Gp), "{r:#x}");
        }
        assert_eq!(a.write_msr(0x7ff, 0), Err(Gp));
    }

    #[test]
    fn write_only_and_reserved_registers_fault_on_read() {
        let a = x2(0);
        for r in [reg::EOI, reg::SELF_IPI, 0x00, 0x01, 0x3a] {
            assert_eq!(a.read_msr(msr(r)), None, "{r:#x}");
        }
    }

    #[test]
    fn high_bits_outside_icr_fault_and_eoi_must_be_zero() {
        let mut a = enabled();
        assert_eq!(a.write_msr(msr(reg::TPR), 1 << 32), Err(Gp));
        assert_eq!(a.write_msr(msr(reg::EOI), 1), Err(Gp));
        assert_eq!(a.write_msr(msr(reg::EOI), 0), Ok(()));
    }

    #[test]
    fn self_ipi_register_makes_the_vector_pending_and_eoi_retires_it() {
        let mut a = enabled();
        a.write_msr(msr(reg::SELF_IPI), 0xf6).unwrap();
        assert_eq!(a.read_msr(msr(reg::IRR0 + 7)), Some(1 << (0xf6 - 0xe0)));
        assert_eq!(a.deliverable(), Some(0xf6));
        a.accept(0xf6);
        assert_eq!(a.deliverable(), None);
        assert_eq!(a.read_msr(msr(reg::ISR0 + 7)), Some(1 << (0xf6 - 0xe0)));
        a.write_msr(msr(reg::EOI), 0).unwrap();
        assert_eq!(a.read_msr(msr(reg::ISR0 + 7)), Some(0));
    }

    #[test]
    fn icr_self_shorthand_and_own_id_raise_other_targets_do_not() {
        let mut a = enabled();
        a.write_msr(msr(reg::ICR), (1 << 18) | 0x40).unwrap();
        assert_eq!(a.deliverable(), Some(0x40));
        let mut b = enabled();
        b.write_msr(msr(reg::ICR), 0x41).unwrap(); // destination 0 = own id
        assert_eq!(b.deliverable(), Some(0x41));
        let mut c = enabled();
        c.write_msr(msr(reg::ICR), (5u64 << 32) | 0x42).unwrap();
        c.write_msr(msr(reg::ICR), (3 << 18) | 0x43).unwrap(); // all but self
        c.write_msr(msr(reg::ICR), (5 << 8) | (1 << 18) | 0x44)
            .unwrap(); // INIT
        assert_eq!(c.deliverable(), None);
    }

    #[test]
    fn init_resets_the_registers_but_keeps_the_id_and_the_mode() {
        let mut a = x2(3);
        a.write_msr(msr(reg::SVR), 0x1ff).unwrap();
        a.write_msr(msr(reg::TPR), 0x20).unwrap();
        a.raise(0x40);
        a.init();
        assert!(a.x2apic());
        assert_eq!(a.read_msr(msr(reg::ID)), Some(3));
        assert_eq!(a.read_msr(msr(reg::SVR)), Some(0xff));
        assert_eq!(a.read_msr(msr(reg::TPR)), Some(0));
        assert_eq!(a.read_msr(msr(reg::IRR0 + 2)), Some(0));
    }

    #[test]
    fn illegal_vectors_below_16_are_dropped_and_logged_as_receive_errors() {
        let mut a = enabled();
        a.raise(15);
        assert_eq!(a.deliverable(), None);
        assert_eq!(a.read_msr(msr(reg::ESR)), Some(0));
        a.write_msr(msr(reg::ESR), 0).unwrap();
        assert_eq!(a.read_msr(msr(reg::ESR)), Some(u64::from(ESR_RECV_ILLEGAL)));
    }

    #[test]
    fn an_illegal_icr_vector_is_a_send_error_latched_by_the_next_esr_write() {
        let mut a = enabled();
        a.write_msr(msr(reg::ICR), (1 << 18) | 3).unwrap();
        assert_eq!(a.deliverable(), None);
        // Not readable before the write, then readable until the next one.
        assert_eq!(a.read_msr(msr(reg::ESR)), Some(0));
        a.write_msr(msr(reg::ESR), 0).unwrap();
        assert_eq!(a.read_msr(msr(reg::ESR)), Some(u64::from(ESR_SEND_ILLEGAL)));
        assert_eq!(a.read_msr(msr(reg::ESR)), Some(u64::from(ESR_SEND_ILLEGAL)));
        a.write_msr(msr(reg::ESR), 0).unwrap();
        assert_eq!(a.read_msr(msr(reg::ESR)), Some(0));
        // The SELF IPI register and other destinations check it too.
        a.write_msr(msr(reg::SELF_IPI), 7).unwrap();
        a.write_msr(msr(reg::ICR), (9u64 << 32) | 0x0f).unwrap();
        a.write_msr(msr(reg::ESR), 0).unwrap();
        assert_eq!(a.read_msr(msr(reg::ESR)), Some(u64::from(ESR_SEND_ILLEGAL)));
        // NMI and INIT carry no vector.
        a.write_msr(msr(reg::ICR), (4 << 8) | (1 << 18)).unwrap();
        a.write_msr(msr(reg::ESR), 0).unwrap();
        assert_eq!(a.read_msr(msr(reg::ESR)), Some(0));
    }

    #[test]
    fn x2apic_esr_takes_only_zero_and_the_xapic_page_any_value() {
        let mut a = enabled();
        assert_eq!(a.write_msr(msr(reg::ESR), 1), Err(Gp));
        let mut b = VLapic::new(0);
        b.mmio_write(0xf0, 0x1ff);
        b.mmio_write(0x300, (1 << 18) | 2);
        assert_eq!(b.mmio_read(0x280), 0);
        b.mmio_write(0x280, 0xdead);
        assert_eq!(b.mmio_read(0x280), ESR_SEND_ILLEGAL);
    }

    #[test]
    fn an_unmasked_lvt_error_entry_fires_on_a_new_error() {
        let mut a = enabled();
        a.write_msr(msr(reg::LVT_ERROR), 0xe5).unwrap();
        a.write_msr(msr(reg::SELF_IPI), 1).unwrap();
        assert_eq!(a.deliverable(), Some(0xe5));
        // An illegal vector in the entry adds a receive error instead.
        let mut b = enabled();
        b.write_msr(msr(reg::LVT_ERROR), 0x05).unwrap();
        assert_eq!(b.read_msr(msr(reg::LVT_ERROR)), Some(5));
        b.write_msr(msr(reg::SELF_IPI), 1).unwrap();
        assert_eq!(b.deliverable(), None);
        b.write_msr(msr(reg::ESR), 0).unwrap();
        let both = ESR_SEND_ILLEGAL | ESR_RECV_ILLEGAL;
        assert_eq!(b.read_msr(msr(reg::ESR)), Some(u64::from(both)));
    }

    #[test]
    fn x2apic_msrs_fault_until_extd_is_set_and_mmio_is_off_after() {
        let mut a = VLapic::new(0);
        assert_eq!(a.base(), 0xfee0_0900);
        assert_eq!(a.read_msr(msr(reg::ID)), None);
        assert_eq!(a.write_msr(msr(reg::TPR), 0), Err(Gp));
        assert_eq!(a.mmio_read(0x30), 0x0005_0014);
        a.set_base(0xfee0_0d00).unwrap();
        assert!(a.x2apic());
        assert_eq!(a.read_msr(msr(reg::VERSION)), Some(0x0005_0014));
        assert_eq!(a.mmio_read(0x30), u32::MAX);
    }

    #[test]
    fn only_the_boot_vcpu_reports_itself_as_the_bsp() {
        assert_eq!(VLapic::new(0).base() & (1 << 8), 1 << 8);
        let mut ap = VLapic::new(1);
        assert_eq!(ap.base(), 0xfee0_0800);
        assert_eq!(ap.set_base(0xfee0_0c00), Ok(()));
    }

    #[test]
    fn apic_base_cannot_move_in_xapic_mode_or_set_reserved_bits() {
        let mut a = VLapic::new(0);
        assert_eq!(a.set_base(0xfed0_0900), Err(Gp));
        assert_eq!(a.set_base(0xfee0_1900), Err(Gp));
        assert_eq!(a.set_base(0xfee0_0901), Err(Gp));
        assert_eq!(a.set_base((1 << 52) | 0xfee0_0900), Err(Gp));
        assert_eq!(a.set_base(0xfee0_0900), Ok(()));
        assert_eq!(a.base(), 0xfee0_0900);
    }

    #[test]
    fn x2apic_leaves_only_to_disabled_and_disabled_only_to_xapic() {
        let mut a = VLapic::new(0);
        a.set_base(0xfee0_0d00).unwrap();
        assert_eq!(a.set_base(0xfee0_0900), Err(Gp), "x2APIC -> xAPIC");
        assert_eq!(a.set_base(0xfee0_0500), Err(Gp), "EN=0 EXTD=1");
        assert_eq!(a.set_base(0xfee0_0100), Ok(()), "x2APIC -> disabled");
        assert!(!a.enabled() && !a.x2apic() && !a.xapic());
        assert_eq!(a.base(), 0xfee0_0100);
        assert_eq!(a.set_base(0xfee0_0d00), Err(Gp), "disabled -> x2APIC");
        assert_eq!(a.set_base(0xfee0_0500), Err(Gp), "disabled -> EN=0 EXTD=1");
        assert_eq!(a.set_base(0xfee0_0900), Ok(()), "disabled -> xAPIC");
        assert!(a.xapic());
        assert_eq!(a.set_base(0xfee0_0500), Err(Gp), "xAPIC -> EN=0 EXTD=1");
        assert_eq!(a.set_base(0xfee0_0100), Ok(()), "xAPIC -> disabled");
        assert_eq!(a.set_base(0xfee0_0900), Ok(()));
        assert_eq!(a.set_base(0xfee0_0d00), Ok(()), "xAPIC -> x2APIC");
    }

    #[test]
    fn a_disabled_apic_answers_nothing_and_comes_back_reset() {
        let mut a = enabled();
        a.write_msr(msr(reg::TPR), 0x20).unwrap();
        a.write_msr(msr(reg::LVT_TIMER), 0x40).unwrap();
        a.raise(0x50);
        a.set_base(0xfee0_0100).unwrap();
        assert_eq!(a.deliverable(), None);
        assert_eq!(a.read_msr(msr(reg::TPR)), None);
        assert_eq!(a.write_msr(msr(reg::TPR), 0), Err(Gp));
        assert_eq!(a.mmio_read(0x30), u32::MAX);
        a.mmio_write(0x80, 0x10);
        a.raise(0x60);
        a.set_base(0xfee0_0900).unwrap();
        assert_eq!(a, VLapic::new(0));
    }

    #[test]
    fn xapic_page_has_the_id_in_the_top_byte_and_icr_in_two_halves() {
        let mut a = VLapic::new(2);
        assert_eq!(a.mmio_read(0x20), 2 << 24);
        a.mmio_write(0xf0, 0x1ff);
        a.mmio_write(0x310, 2 << 24);
        a.mmio_write(0x300, 0x51);
        assert_eq!(a.deliverable(), Some(0x51));
        assert_eq!(a.mmio_read(0x310), 2 << 24);
        a.accept(0x51);
        a.mmio_write(0xb0, 0);
        assert_eq!(a.mmio_read(0x100 + 0x50), 0);
        // Another destination: nothing.
        a.mmio_write(0x310, 7 << 24);
        a.mmio_write(0x300, 0x52);
        assert_eq!(a.deliverable(), None);
    }

    #[test]
    fn xapic_writes_to_read_only_registers_are_ignored() {
        let mut a = VLapic::new(1);
        a.mmio_write(0x20, 0xff00_0000);
        a.mmio_write(0x30, 0);
        assert_eq!(a.mmio_read(0x20), 1 << 24);
        assert_eq!(a.mmio_read(0x30), VERSION);
        assert_eq!(a.mmio_read(0x24), 0);
    }

    #[test]
    fn a_disabled_apic_delivers_nothing() {
        let mut a = VLapic::new(0);
        a.raise(0x50);
        assert_eq!(a.deliverable(), None);
    }

    #[test]
    fn priority_masks_vectors_at_or_below_tpr_and_in_service_classes() {
        let mut a = enabled();
        a.write_msr(msr(reg::TPR), 0x50).unwrap();
        a.raise(0x55);
        assert_eq!(a.deliverable(), None);
        a.raise(0x61);
        assert_eq!(a.deliverable(), Some(0x61));
        a.accept(0x61);
        a.write_msr(msr(reg::TPR), 0).unwrap();
        // 0x55 is below the in-service class 0x60.
        assert_eq!(a.deliverable(), None);
        a.write_msr(msr(reg::EOI), 0).unwrap();
        assert_eq!(a.deliverable(), Some(0x55));
    }

    #[test]
    fn eoi_retires_the_highest_in_service_vector_first() {
        let mut a = enabled();
        a.raise(0x30);
        a.accept(0x30);
        a.raise(0x90);
        a.accept(0x90);
        a.write_msr(msr(reg::EOI), 0).unwrap();
        assert_eq!(a.read_msr(msr(reg::ISR0 + 4)), Some(0));
        assert_eq!(a.read_msr(msr(reg::ISR0 + 1)), Some(1 << 16));
    }

    #[test]
    fn lvt_writes_keep_only_defined_bits_and_the_timer_never_counts() {
        let mut a = enabled();
        a.write_msr(msr(reg::LVT_TIMER), 0xffff_ffff).unwrap();
        assert_eq!(a.read_msr(msr(reg::LVT_TIMER)), Some(0x0003_17ff));
        a.write_msr(msr(reg::TIMER_INITIAL), 1000).unwrap();
        assert_eq!(a.read_msr(msr(reg::TIMER_INITIAL)), Some(1000));
        assert_eq!(a.read_msr(msr(reg::TIMER_CURRENT)), Some(0));
    }
}
