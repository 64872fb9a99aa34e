//! The 64-bit PV guest runtime: what a test guest needs to boot as a Xen
//! PV domain (`type = "pv"`) instead of PVH. Written from Xen's public
//! headers and, where they leave a detail open, from what Xen does
//! (`xen/arch/x86/pv/*.c`, `x86_64/entry.S`); see `pv-abi.md` for the
//! facts with their sources.
//!
//! A PV image ([`crate::pv_guest_main!`], linked with `linker-pv.ld`) is
//! an ELF at `VIRT_BASE` 0xffffffff80000000 loaded at pseudo-physical
//! 1 MiB, with Xen's PV notes (ENTRY, HYPERCALL_PAGE, VIRT_BASE...) and no
//! `PHYS32_ENTRY`. The domain builder maps it, fills its hypercall page
//! and enters [`boot`]'s `pv_start` in ring 3 on its own page tables.
//! From there everything privileged is a hypercall ([`hypercall`]):
//! console and shutdown go through the same [`crate::hypervisor`] entry
//! points as for PVH (which send them here), exceptions arrive through
//! the trap table as bounce frames ([`traps`]), events through the event
//! callback ([`shared`]), [`provoke`] runs instructions that are meant to
//! trap, page tables change only through the hypervisor
//! ([`mm`]), and [`user`] runs a small program in guest user mode.
//!
//! Nothing here is shared with the hypervisor's own PV code: this side is
//! an independent reading of the same ABI.
//!
//! Safety: `unsafe` is in [`boot`], [`traps`] and [`provoke`] (the entry,
//! the bounce stubs and the instructions expected to trap), [`hypercall`] (pointers
//! handed to the hypervisor), [`mm`] and [`shared`] (raw access to page
//! tables, the p2m list, pool pages and the shared info page) and [`user`]
//! (the program's bytes and entering it), each block with the invariants
//! it relies on.

pub mod abi;
pub mod boot;
pub mod hypercall;
pub mod mm;
pub mod provoke;
pub mod shared;
pub mod traps;
pub mod user;

pub use abi::StartInfo;

/// Defines a PV guest: the Xen ELF notes of the image (`GUEST_OS` is
/// `$guest_os`) and the `pv_guest_main` the entry calls, which runs
/// `$main` (a `fn(&firmware::pv::StartInfo, u64) -> !` given the start
/// info and its virtual address) once the runtime is set up.
///
/// The notes follow Xen's `elfnote.h`: name "Xen", numeric descriptors
/// as 8-byte values (as Linux's `xen-head.S` emits them), strings with
/// their NUL. `FEATURES` asks for `!writable_page_tables` as the task
/// asks (Xen's own parser only records it; the guest enables the
/// writable page-table assist itself with `vm_assist`).
#[macro_export]
macro_rules! pv_guest_main {
    ($main:path, $guest_os:literal) => {
        ::core::arch::global_asm!(
            concat!(
                ".pushsection .note.pvxen, \"a\", @note\n",
                $crate::pv_note!("{guest_os}", "1: .asciz \"", $guest_os, "\"\n2:"),
                $crate::pv_note!(
                    "{guest_version}",
                    "1: .asciz \"",
                    env!("CARGO_PKG_VERSION"),
                    "\"\n2:"
                ),
                $crate::pv_note!("{xen_version}", "1: .asciz \"xen-3.0\"\n2:"),
                $crate::pv_note!("{loader}", "1: .asciz \"generic\"\n2:"),
                $crate::pv_note!("{virt_base}", "1: .quad {virt_base_value}\n2:"),
                $crate::pv_note!("{paddr_offset}", "1: .quad 0\n2:"),
                $crate::pv_note!("{entry}", "1: .quad pv_start\n2:"),
                $crate::pv_note!("{hypercall_page}", "1: .quad pv_hypercall_page\n2:"),
                $crate::pv_note!(
                    "{features}",
                    "1: .asciz \"!writable_page_tables\"\n2:"
                ),
                $crate::pv_note!("{pae_mode}", "1: .asciz \"yes\"\n2:"),
                ".popsection\n",
            ),
            guest_os = const $crate::pv::abi::elfnote::XEN_ELFNOTE_GUEST_OS,
            guest_version = const $crate::pv::abi::elfnote::XEN_ELFNOTE_GUEST_VERSION,
            xen_version = const $crate::pv::abi::elfnote::XEN_ELFNOTE_XEN_VERSION,
            loader = const $crate::pv::abi::elfnote::XEN_ELFNOTE_LOADER,
            virt_base = const $crate::pv::abi::elfnote::XEN_ELFNOTE_VIRT_BASE,
            virt_base_value = const $crate::pv::abi::va::VIRT_BASE,
            paddr_offset = const $crate::pv::abi::elfnote::XEN_ELFNOTE_PADDR_OFFSET,
            entry = const $crate::pv::abi::elfnote::XEN_ELFNOTE_ENTRY,
            hypercall_page = const $crate::pv::abi::elfnote::XEN_ELFNOTE_HYPERCALL_PAGE,
            features = const $crate::pv::abi::elfnote::XEN_ELFNOTE_FEATURES,
            pae_mode = const $crate::pv::abi::elfnote::XEN_ELFNOTE_PAE_MODE,
            options(att_syntax)
        );

        /// Called by the runtime's PV entry on this image's stack.
        #[no_mangle]
        pub extern "C" fn pv_guest_main(start_info_va: u64) -> ! {
            $crate::pv::boot::start(::core::env!("CARGO_BIN_NAME"), start_info_va, $main)
        }
    };
}

/// One Xen note for [`pv_guest_main!`]: `$kind` is the asm operand of its
/// type, the rest the descriptor between local labels 1 and 2.
#[doc(hidden)]
#[macro_export]
macro_rules! pv_note {
    ($kind:literal, $($desc:expr),+) => {
        concat!(
            ".balign 4\n",
            ".long 4, 2f - 1f, ", $kind, "\n",
            ".asciz \"Xen\"\n",
            $($desc,)+
            "\n.balign 4\n"
        )
    };
}
