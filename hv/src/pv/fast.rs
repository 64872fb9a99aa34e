//! The PV fast path: the hot round trips of a PV guest handled inside its
//! container, without an exit.
//!
//! A PV guest's user-mode system calls, its `iret` hypercalls and the
//! `xen_version` call Linux makes to have a pending event delivered
//! ("force callback") are most of what it asks of the hypervisor: a Linux
//! system call is a SYSCALL bounced to the kernel and an `iret` back, and
//! every pcifront config read adds the forced callback and the upcall it
//! asks for (which finds nothing: pcifront took its event itself, so it is
//! left out); every context switch adds a `stack_switch` and a few
//! `set_segment_base`s. Each used to be an exit. Now SYSCALL (EFER.SCE set
//! in the container) enters a small stub at CPL 0 inside the container,
//! mapped in the per-domain area where the guest's page tables cannot
//! reach it (a supervisor page, the guest running at CPL 3). The stub does
//! exactly what the hypervisor's slow path does for those cases, on the
//! state the hypervisor publishes in the vCPU's data page before every
//! entry (mode, root tables, kernel stack, callbacks, `vcpu_info`, the
//! selectors known to load), and forwards everything else with
//! VMMCALL/VMCALL.
//!
//! The stub commits nothing until it cannot fail (`stack_switch` and
//! `set_segment_base` set only what the slow path sets the same way again
//! after a rollback: the kernel stack, the segment registers and bases): it
//! first saves what it will clobber in the data page ([`Saved`]); reading
//! an `iret` frame or writing a bounce frame through the guest's page
//! tables may fault (the container intercepts every exception), and then,
//! as on a forward, the hypervisor puts the vCPU back to just after its
//! SYSCALL ([`rollback`]) and takes the slow path, which handles the same
//! request in full. A host interrupt between the stub's event check and
//! the end of its event commit is rolled back the same way, so that an
//! event raised with it is never cleared by a decision taken before it
//! (`hv/src/domain/pv/stub.rs`). Only after every guest access does it
//! write the upcall mask, switch mode (SWAPGS, CR3) and return with IRETQ
//! to a CS and SS the hypervisor validated and a canonical RIP.
//!
//! Nested paging stays the isolation boundary: the stub runs in the guest's
//! container on the guest's page tables, so nothing it does reaches beyond
//! the domain; its checks are Xen's (the stack outside the hypervisor's
//! range, writes only where the guest's page tables allow them: CR0.WP is
//! set).

use super::abi::{sel, va};
use super::container::perdomain;

/// Where the stub and its pages are, in the per-domain area (L1 slots after
/// the TSS): the code page, the vCPU's data page (the stub's stack at its
/// top), a window onto the page that holds the vCPU's `vcpu_info`, one
/// onto the shared info page (its event bitmaps), and under the FIFO ABI
/// one onto the page that holds the vCPU's control block and one onto the
/// first event array page.
pub mod page {
    use super::perdomain::TSS_PAGE;
    use super::va::PERDOMAIN_VIRT_START;

    pub const CODE_SLOT: u64 = TSS_PAGE + 1;
    pub const DATA_SLOT: u64 = TSS_PAGE + 2;
    pub const VCPU_INFO_SLOT: u64 = TSS_PAGE + 3;
    pub const SHARED_INFO_SLOT: u64 = TSS_PAGE + 4;
    pub const FIFO_CONTROL_SLOT: u64 = TSS_PAGE + 5;
    pub const FIFO_WORDS_SLOT: u64 = TSS_PAGE + 6;
    pub const CODE: u64 = PERDOMAIN_VIRT_START + CODE_SLOT * 4096;
    pub const DATA: u64 = PERDOMAIN_VIRT_START + DATA_SLOT * 4096;
    pub const VCPU_INFO: u64 = PERDOMAIN_VIRT_START + VCPU_INFO_SLOT * 4096;
    pub const SHARED_INFO: u64 = PERDOMAIN_VIRT_START + SHARED_INFO_SLOT * 4096;
    pub const FIFO_CONTROL: u64 = PERDOMAIN_VIRT_START + FIFO_CONTROL_SLOT * 4096;
    pub const FIFO_WORDS: u64 = PERDOMAIN_VIRT_START + FIFO_WORDS_SLOT * 4096;
}

/// The entry points: LSTAR (64-bit SYSCALL) at the code page's start,
/// CSTAR (SYSCALL from compatibility mode) 16 bytes in.
pub const LSTAR: u64 = page::CODE;
pub const CSTAR: u64 = page::CODE + 16;

/// STAR: SYSCALL loads Xen's ring-0 code and data selectors (0xe008,
/// 0xe010, in the reserved GDT page); SYSRET would load the flat ring-3
/// ones (0xe023 + 16 = 0xe033, 0xe023 + 8 = 0xe02b), as Xen sets it.
pub const STAR: u64 = (0xe023 << 48) | (0xe008 << 32);

/// SFMASK: the stub runs with TF, IF, DF, NT and AC clear.
pub const SFMASK: u64 = (1 << 8) | (1 << 9) | (1 << 10) | (1 << 14) | (1 << 18);

/// Byte offsets in the data page (each field 8 bytes). The stub's copy of
/// these is in `hv/src/domain/pv/stub.rs`; a test there compares them.
pub mod off {
    /// Published by the hypervisor before every entry.
    pub const KMODE: usize = 0x00;
    pub const KCR3: usize = 0x08;
    pub const UCR3: usize = 0x10;
    pub const KSP: usize = 0x18;
    pub const SYSCALL_CB: usize = 0x20;
    pub const SYSCALL_MASK: usize = 0x28;
    pub const EVENT_CB: usize = 0x30;
    pub const VCPU_INFO: usize = 0x38;
    pub const VERSION: usize = 0x40;
    pub const ENABLED: usize = 0x48;
    /// Four CS selectors known to load (u16 each), then four SS.
    pub const CS_OK: usize = 0x50;
    pub const SS_OK: usize = 0x58;
    /// Where the stub reaches the shared info page (0: it does not).
    pub const SHARED: usize = 0x60;
    /// Under the FIFO ABI, where the stub reaches the vCPU's control block
    /// and the first event array page (0: it does not).
    pub const FIFO_CONTROL: usize = 0x68;
    pub const FIFO_WORDS: usize = 0x70;
    /// The kernel stack selector `stack_switch` set (KSP is its stack
    /// pointer); the stub updates both, and the hypervisor reads them back
    /// after every exit.
    pub const KSS: usize = 0x78;
    /// Saved by the stub on entry.
    pub const E_RSP: usize = 0x80;
    pub const E_RCX: usize = 0x88;
    pub const E_R11: usize = 0x90;
    pub const E_CR3: usize = 0x98;
    pub const E_RAX: usize = 0xa0;
    pub const E_RDI: usize = 0xa8;
    pub const E_RSI: usize = 0xb0;
    pub const E_RDX: usize = 0xb8;
    pub const E_COMPAT: usize = 0xc0;
    /// The stub's work area (the context it returns to): 0x100..0x180.
    pub const T_FIRST: usize = 0x100;
    /// In it, the events mask the context returned to will have.
    pub const T_MASK: usize = 0x148;
    /// Counted by the stub.
    pub const N_SYSCALL: usize = 0x180;
    pub const N_IRET: usize = 0x188;
    pub const N_XENVER: usize = 0x190;
    pub const N_UPCALL: usize = 0x198;
    pub const N_FORWARD: usize = 0x1a0;
    pub const N_EMPTY: usize = 0x1a8;
    pub const N_STACK_SWITCH: usize = 0x1b0;
    pub const N_SEGMENT_BASE: usize = 0x1b8;
    /// The stub's stack grows down from the page's end to here.
    pub const STACK_BOTTOM: usize = 0x800;
}

/// What the hypervisor tells the stub: the vCPU's PV state as the slow path
/// would use it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Published {
    pub kernel_mode: bool,
    /// CR3 values of the kernel and user root tables (0: none).
    pub kernel_cr3: u64,
    pub user_cr3: u64,
    pub kernel_sp: u64,
    pub kernel_ss: u16,
    /// The 64-bit syscall callback (0: none, or not canonical) and whether
    /// it masks events.
    pub syscall: u64,
    pub syscall_masks: bool,
    pub event: u64,
    /// Where the stub reaches `vcpu_info` (0: not mapped).
    pub vcpu_info: u64,
    /// `XENVER_version`'s result.
    pub version: u64,
    /// Whether the stub may handle anything itself.
    pub enabled: bool,
    pub cs_ok: [u16; 4],
    pub ss_ok: [u16; 4],
    /// Where the stub reaches the shared info page (0: not mapped, or the
    /// domain uses the FIFO event channel ABI, which has no bitmaps there).
    pub shared: u64,
    /// Where the stub reaches the vCPU's FIFO control block and the first
    /// event array page (0 for either: it delivers every upcall under the
    /// FIFO ABI).
    pub fifo_control: u64,
    pub fifo_words: u64,
}

impl Published {
    /// The words to write: (byte offset, value).
    pub fn words(&self) -> [(usize, u64); 16] {
        let canon = |a: u64| if va::canonical(a) { a } else { 0 };
        let pack = |s: [u16; 4]| {
            s.iter()
                .enumerate()
                .fold(0u64, |w, (i, &x)| w | (u64::from(x) << (16 * i)))
        };
        [
            (off::KMODE, u64::from(self.kernel_mode)),
            (off::KCR3, self.kernel_cr3),
            (off::UCR3, self.user_cr3),
            (off::KSP, self.kernel_sp),
            (off::KSS, u64::from(self.kernel_ss)),
            (off::SYSCALL_CB, canon(self.syscall)),
            (off::SYSCALL_MASK, u64::from(self.syscall_masks)),
            (off::EVENT_CB, canon(self.event)),
            (off::VCPU_INFO, self.vcpu_info),
            (off::VERSION, self.version),
            (
                off::ENABLED,
                u64::from(self.enabled && self.vcpu_info != 0 && self.kernel_cr3 != 0),
            ),
            (off::CS_OK, pack(self.cs_ok)),
            (off::SS_OK, pack(self.ss_ok)),
            (off::SHARED, self.shared),
            (off::FIFO_CONTROL, self.fifo_control),
            (off::FIFO_WORDS, self.fifo_words),
        ]
    }
}

/// The selectors always known to load: Xen's flat ring-3 ones, whose
/// descriptors the hypervisor owns.
pub const FLAT_CS: [u16; 4] = [sel::FLAT_RING3_CS64, 0, 0, 0];
pub const FLAT_SS: [u16; 4] = [sel::FLAT_RING3_SS, 0, 0, 0];

/// Adds `s` to a list of known selectors (replacing the oldest guest one
/// when full; the first, Xen's, stays).
pub fn remember(list: &mut [u16; 4], s: u16) {
    if s == 0 || list.contains(&s) {
        return;
    }
    if let Some(slot) = list.iter_mut().skip(1).find(|x| **x == 0) {
        *slot = s;
        return;
    }
    list.copy_within(2..4, 1);
    list[3] = s;
}

/// What the stub saved as it was entered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Saved {
    pub rsp: u64,
    /// The RIP after the SYSCALL, and the RFLAGS it saved.
    pub rcx: u64,
    pub r11: u64,
    pub cr3: u64,
    pub rax: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    /// Entered through CSTAR (SYSCALL in compatibility mode).
    pub compat: bool,
}

impl Saved {
    /// From the data page (`read(offset)`).
    pub fn read(read: impl Fn(usize) -> u64) -> Self {
        Self {
            rsp: read(off::E_RSP),
            rcx: read(off::E_RCX),
            r11: read(off::E_R11),
            cr3: read(off::E_CR3),
            rax: read(off::E_RAX),
            rdi: read(off::E_RDI),
            rsi: read(off::E_RSI),
            rdx: read(off::E_RDX),
            compat: read(off::E_COMPAT) != 0,
        }
    }
}

/// The vCPU as it was just after its SYSCALL, before the stub: what the
/// slow path starts from. CS and SS are the flat ring-3 selectors, as Xen's
/// SYSCALL entry records them (SYSCALL itself keeps no trace of the old
/// ones); RCX and R11 hold what SYSCALL put there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rollback {
    pub rip: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub cs: u16,
    pub ss: u16,
    pub cr3: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub r11: u64,
}

pub fn rollback(s: &Saved) -> Rollback {
    Rollback {
        rip: s.rcx,
        rflags: s.r11,
        rsp: s.rsp,
        cs: if s.compat {
            sel::FLAT_USER_CS32
        } else {
            sel::FLAT_RING3_CS64
        },
        ss: sel::FLAT_RING3_SS,
        cr3: s.cr3,
        rax: s.rax,
        rcx: s.rcx,
        rdx: s.rdx,
        rsi: s.rsi,
        rdi: s.rdi,
        r11: s.r11,
    }
}

/// What the stub handled, as it counted it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub syscalls: u64,
    pub irets: u64,
    pub xen_versions: u64,
    pub upcalls: u64,
    pub forwards: u64,
    /// Upcalls left out because no port was pending and unmasked.
    pub empty: u64,
    pub stack_switches: u64,
    pub segment_bases: u64,
}

impl Counters {
    pub fn read(read: impl Fn(usize) -> u64) -> Self {
        Self {
            syscalls: read(off::N_SYSCALL),
            irets: read(off::N_IRET),
            xen_versions: read(off::N_XENVER),
            upcalls: read(off::N_UPCALL),
            forwards: read(off::N_FORWARD),
            empty: read(off::N_EMPTY),
            stack_switches: read(off::N_STACK_SWITCH),
            segment_bases: read(off::N_SEGMENT_BASE),
        }
    }
}

/// Whether an upcall would find anything: a port pending and not masked in
/// a word `pending_sel` names (the 2-level ABI; `pending` and `mask` are the
/// shared info page's bitmaps as 64-bit words).
///
/// When it would not, the upcall is left out, and what the guest's handler
/// would have done (clear `evtchn_upcall_pending` and `evtchn_pending_sel`,
/// find nothing) is done for it. Linux asks for such upcalls after every
/// pcifront op: the backend's answer sets the port pending while pcifront
/// holds events masked, and pcifront clears the port itself before
/// unmasking, leaving `evtchn_upcall_pending` set with nothing behind it.
pub fn upcall_finds_a_port(pending_sel: u64, pending: &[u64; 64], mask: &[u64; 64]) -> bool {
    (0..64).any(|w| pending_sel & (1 << w) != 0 && pending[w] & !mask[w] != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_follow_the_tss_in_the_per_domain_area() {
        assert_eq!(page::CODE - perdomain::TSS, 4096);
        assert_eq!(page::DATA - page::CODE, 4096);
        assert_eq!(va::l4_slot(page::VCPU_INFO), va::SLOT_PERDOMAIN);
        const { assert!(page::FIFO_WORDS_SLOT < 512) };
        assert_eq!(page::FIFO_WORDS - page::FIFO_CONTROL, 4096);
        assert_eq!(page::FIFO_CONTROL - page::SHARED_INFO, 4096);
    }

    #[test]
    fn the_data_fields_do_not_overlap_and_leave_the_stack_its_room() {
        let mut all = [
            off::KMODE,
            off::KCR3,
            off::UCR3,
            off::KSP,
            off::SYSCALL_CB,
            off::SYSCALL_MASK,
            off::EVENT_CB,
            off::VCPU_INFO,
            off::VERSION,
            off::ENABLED,
            off::CS_OK,
            off::SS_OK,
            off::E_RSP,
            off::E_RCX,
            off::E_R11,
            off::E_CR3,
            off::E_RAX,
            off::E_RDI,
            off::E_RSI,
            off::E_RDX,
            off::E_COMPAT,
            off::N_SYSCALL,
            off::N_IRET,
            off::N_XENVER,
            off::N_UPCALL,
            off::N_FORWARD,
            off::N_EMPTY,
            off::N_STACK_SWITCH,
            off::N_SEGMENT_BASE,
            off::SHARED,
            off::KSS,
            off::FIFO_CONTROL,
            off::FIFO_WORDS,
        ];
        all.sort_unstable();
        for w in all.windows(2) {
            assert!(w[1] >= w[0] + 8, "{w:?}");
        }
        assert!(all
            .iter()
            .all(|&o| o + 8 <= off::T_FIRST || o >= off::T_FIRST + 0x80));
        assert!(*all.last().unwrap() + 8 <= off::STACK_BOTTOM);
    }

    #[test]
    fn the_stub_is_enabled_only_with_vcpu_info_and_kernel_tables() {
        let enabled = |p: &Published| {
            p.words()
                .iter()
                .find(|(o, _)| *o == off::ENABLED)
                .map(|w| w.1)
                .unwrap()
        };
        let mut p = Published {
            enabled: true,
            vcpu_info: page::VCPU_INFO,
            kernel_cr3: 0x1000,
            ..Published::default()
        };
        assert_eq!(enabled(&p), 1);
        p.vcpu_info = 0;
        assert_eq!(enabled(&p), 0);
        p.vcpu_info = page::VCPU_INFO;
        p.kernel_cr3 = 0;
        assert_eq!(enabled(&p), 0);
        p.kernel_cr3 = 0x1000;
        p.enabled = false;
        assert_eq!(enabled(&p), 0);
    }

    #[test]
    fn callbacks_that_are_not_canonical_are_not_published() {
        let p = Published {
            syscall: 0x0000_8000_0000_0000,
            event: 0xffff_ffff_8100_0000,
            ..Published::default()
        };
        let w = p.words();
        let get = |o| w.iter().find(|(x, _)| *x == o).unwrap().1;
        assert_eq!(get(off::SYSCALL_CB), 0);
        assert_eq!(get(off::EVENT_CB), 0xffff_ffff_8100_0000);
    }

    #[test]
    fn selectors_pack_four_to_a_word_and_xens_stay_first() {
        let mut cs = FLAT_CS;
        remember(&mut cs, 0x33);
        remember(&mut cs, 0x33);
        remember(&mut cs, 0x23);
        remember(&mut cs, 0x43);
        assert_eq!(cs, [0xe033, 0x33, 0x23, 0x43]);
        remember(&mut cs, 0x53);
        assert_eq!(cs, [0xe033, 0x23, 0x43, 0x53]);
        remember(&mut cs, 0);
        assert_eq!(cs, [0xe033, 0x23, 0x43, 0x53]);
        let p = Published {
            cs_ok: [0xe033, 0x33, 0, 0],
            ..Published::default()
        };
        let w = p.words();
        assert_eq!(
            w.iter().find(|(o, _)| *o == off::CS_OK).unwrap().1,
            0x0033_e033
        );
    }

    #[test]
    fn an_upcall_finds_a_port_only_pending_unmasked_and_selected() {
        let mut pending = [0u64; 64];
        let mut mask = [0u64; 64];
        assert!(!upcall_finds_a_port(0, &pending, &mask));
        assert!(!upcall_finds_a_port(1 << 3, &pending, &mask));
        pending[3] = 1 << 9;
        assert!(upcall_finds_a_port(1 << 3, &pending, &mask));
        // Not selected: the word's bit in pending_sel is what counts.
        assert!(!upcall_finds_a_port(1 << 4, &pending, &mask));
        mask[3] = 1 << 9;
        assert!(!upcall_finds_a_port(1 << 3, &pending, &mask));
        pending[63] = 1;
        assert!(upcall_finds_a_port((1 << 3) | (1 << 63), &pending, &mask));
    }

    #[test]
    fn a_rollback_is_the_state_just_after_syscall() {
        let s = Saved {
            rsp: 0x7fff_0000,
            rcx: 0x40_1000,
            r11: 0x246,
            cr3: 0x5000,
            rax: 39,
            rdi: 1,
            rsi: 2,
            rdx: 3,
            compat: false,
        };
        let r = rollback(&s);
        assert_eq!((r.rip, r.rflags, r.rsp), (0x40_1000, 0x246, 0x7fff_0000));
        assert_eq!((r.rcx, r.r11), (0x40_1000, 0x246));
        assert_eq!((r.cs, r.ss), (0xe033, 0xe02b));
        assert_eq!((r.rax, r.rdi, r.rsi, r.rdx, r.cr3), (39, 1, 2, 3, 0x5000));
        let c = rollback(&Saved { compat: true, ..s });
        assert_eq!(c.cs, sel::FLAT_USER_CS32);
    }
}
