use super::*;

fn user_regs() -> Regs {
    Regs {
        rip: 0x40_1000,
        cs: 0x33,
        rflags: rflags::MBS | rflags::IF | rflags::TF | rflags::AC | rflags::DF,
        rsp: 0x7fff_f000,
        ss: 0x2b,
        rcx: 0x1111,
        r11: 0x2222,
    }
}

fn kernel_regs() -> Regs {
    Regs {
        rip: 0xffff_ffff_8100_0000,
        cs: sel::FLAT_KERNEL_CS,
        rflags: rflags::MBS | rflags::IF,
        rsp: 0xffff_c900_0000_3f38,
        ss: sel::FLAT_KERNEL_SS,
        rcx: 7,
        r11: 8,
    }
}

const HANDLER: u64 = 0xffff_ffff_8180_0000;

#[test]
fn from_kernel_mode_the_frame_goes_below_the_aligned_interrupted_stack_with_rpl_0() {
    let d = Delivery {
        handler: HANDLER,
        error: None,
        mask_events: false,
        clear_df: false,
    };
    let b = bounce(&kernel_regs(), true, 0x1234_0000, 0, None, &d).unwrap();
    assert!(!b.to_kernel);
    // 0x...3f38 aligned down to 0x...3f30, seven words below.
    assert_eq!(b.frame.rsp, 0xffff_c900_0000_3f30 - 56);
    assert_eq!(
        b.frame.words(),
        [
            7,
            8,
            0xffff_ffff_8100_0000,
            0xe030,
            rflags::MBS | rflags::IF,
            0xffff_c900_0000_3f38,
            0xe02b
        ]
    );
    assert_eq!(b.regs.rip, HANDLER);
    assert_eq!(b.regs.cs, 0xe033);
    assert_eq!(b.regs.ss, 0xe02b);
    assert_eq!(b.regs.rsp, b.frame.rsp);
    assert_eq!(b.upcall_mask, 0);
}

#[test]
fn from_user_mode_the_frame_goes_on_the_kernel_stack_with_the_user_selectors() {
    let d = Delivery {
        handler: HANDLER,
        error: Some(0x14),
        mask_events: true,
        clear_df: false,
    };
    let b = bounce(&user_regs(), false, 0xffff_c900_0001_0000, 0, None, &d).unwrap();
    assert!(b.to_kernel);
    assert_eq!(b.frame.rsp, 0xffff_c900_0001_0000 - 64);
    let w = b.frame.words();
    assert_eq!(w[0..3], [0x1111, 0x2222, 0x14]);
    assert_eq!(w[3], 0x40_1000);
    assert_eq!(w[4], 0x33, "user CS keeps RPL 3, saved mask 0");
    assert_eq!(w[6], 0x7fff_f000);
    assert_eq!(w[7], 0x2b);
    assert_eq!(b.upcall_mask, 1, "mask_events masks");
    // TF, AC cleared on entry; DF kept unless asked.
    assert_eq!(b.regs.rflags & (rflags::TF | rflags::AC), 0);
    assert_ne!(b.regs.rflags & rflags::DF, 0);
}

#[test]
fn the_saved_mask_goes_into_cs_bits_32_to_39_and_its_inverse_into_if() {
    let d = Delivery {
        handler: HANDLER,
        error: None,
        mask_events: true,
        clear_df: false,
    };
    let b = bounce(&kernel_regs(), true, 0, 1, None, &d).unwrap();
    let w = b.frame.words();
    assert_eq!(w[3], 0xe030 | (1 << 32));
    assert_eq!(w[4] & rflags::IF, 0, "IF shows the mask, not the hardware");
    assert_eq!(b.upcall_mask, 1);
}

#[test]
fn iopl_shows_in_the_frame_only_with_architectural_iopl() {
    let d = Delivery {
        handler: HANDLER,
        error: None,
        mask_events: false,
        clear_df: false,
    };
    let mut r = kernel_regs();
    r.rflags |= rflags::IOPL;
    let b = bounce(&r, true, 0, 0, None, &d).unwrap();
    assert_eq!(b.frame.words()[4] & rflags::IOPL, 0);
    let b = bounce(&r, true, 0, 0, Some(1 << 12), &d).unwrap();
    assert_eq!(b.frame.words()[4] & rflags::IOPL, 1 << 12);
}

#[test]
fn a_system_call_clears_df() {
    let d = Delivery {
        handler: HANDLER,
        error: None,
        mask_events: false,
        clear_df: true,
    };
    let b = bounce(&user_regs(), false, 0xffff_c900_0001_0000, 0, None, &d).unwrap();
    assert_eq!(b.regs.rflags & rflags::DF, 0);
}

#[test]
fn a_stack_in_the_hypervisor_range_or_no_handler_is_refused() {
    let d = Delivery {
        handler: HANDLER,
        error: None,
        mask_events: false,
        clear_df: false,
    };
    let mut r = kernel_regs();
    r.rsp = va::HYPERVISOR_VIRT_START + 0x1000;
    assert_eq!(
        bounce(&r, true, 0, 0, None, &d),
        Err(BounceError::BadStack(va::HYPERVISOR_VIRT_START + 0x1000))
    );
    // Just above the range (past its 64-byte margin) is fine.
    r.rsp = va::HYPERVISOR_VIRT_END + 64;
    assert!(bounce(&r, true, 0, 0, None, &d).is_ok());
    let none = Delivery { handler: 0, ..d };
    assert_eq!(
        bounce(&kernel_regs(), true, 0, 0, None, &none),
        Err(BounceError::NoHandler)
    );
}

fn ctx(cs: u64, flags: u64) -> IretContext {
    IretContext {
        rax: 0x55,
        r11: 0x66,
        rcx: 0x77,
        flags,
        rip: 0x40_2000,
        cs,
        rflags: rflags::IF | rflags::IOPL | rflags::VM | (1 << 30),
        rsp: 0x7fff_e000,
        ss: 0x2b,
    }
}

#[test]
fn iret_to_user_forces_rpl_3_drops_iopl_and_vm_and_restores_rcx_r11() {
    let i = iret(&ctx(0x33, 0), true, false).unwrap();
    assert!(i.to_user);
    assert_eq!(i.rax, 0x55);
    assert_eq!(i.regs.cs, 0x33);
    assert_eq!(i.regs.ss, 0x2b);
    assert_eq!(
        i.regs.rflags,
        rflags::IF | rflags::MBS,
        "no IOPL, no VM, no undefined bits"
    );
    assert_eq!((i.regs.rcx, i.regs.r11), (0x77, 0x66));
    assert_eq!(i.upcall_mask, 0);
    assert_eq!(i.iopl, None);
}

#[test]
fn iret_in_syscall_leaves_rcx_and_r11_as_sysret_does() {
    let i = iret(&ctx(0x33, VGCF_IN_SYSCALL), true, false).unwrap();
    assert_eq!(i.regs.rcx, 0x40_2000);
    assert_eq!(i.regs.r11, i.regs.rflags);
}

#[test]
fn iret_to_kernel_stays_in_kernel_mode_with_rpl_3_forced() {
    let mut c = ctx(0xe030, 0);
    c.rflags = 0;
    let i = iret(&c, false, true).unwrap();
    assert!(!i.to_user);
    assert_eq!(i.regs.cs, 0xe033);
    assert_eq!(i.upcall_mask, 1, "IF clear in the frame masks events");
    assert_eq!(
        i.regs.rflags & rflags::IF,
        rflags::IF,
        "hardware IF stays on"
    );
    assert_eq!(i.iopl, Some(0));
}

#[test]
fn iret_to_user_without_user_tables_is_refused() {
    assert_eq!(
        iret(&ctx(0x33, 0), false, false),
        Err(IretError::NoUserRoot)
    );
}

#[test]
fn iret_context_decodes_in_header_order() {
    let mut b = [0u8; IretContext::SIZE];
    for i in 0..9 {
        b[i * 8] = i as u8 + 1;
    }
    let c = IretContext::decode(&b);
    assert_eq!(
        [c.rax, c.r11, c.rcx, c.flags, c.rip, c.cs, c.rflags, c.rsp, c.ss],
        [1, 2, 3, 4, 5, 6, 7, 8, 9]
    );
}

#[test]
fn page_fault_user_bit_follows_the_guest_mode() {
    assert_eq!(pf_error_code(0b111, true), 0b011);
    assert_eq!(pf_error_code(0b011, false), 0b111);
}

#[test]
fn error_codes_for_the_vectors_xen_lists() {
    let with: alloc::vec::Vec<u8> = (0..32).filter(|&v| has_error_code(v)).collect();
    assert_eq!(with, [8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);
}
