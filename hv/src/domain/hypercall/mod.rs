//! The hypercall dispatcher: arguments from the guest's registers, one
//! handler per hypercall, `-ENOSYS` for the rest.

use super::guest_va::{read_virt, write_virt};
use super::{xen, Domain, Ending};

impl Domain {
    pub(super) fn hypercall(&mut self) -> Option<Ending> {
        let long = self.vcpu.long_mode();
        let nr = self.vcpu.rax() & if long { u64::MAX } else { 0xffff_ffff };
        let r = *self.vcpu.regs();
        let args = if long {
            [r.rdi, r.rsi, r.rdx, r.r10, r.r8]
        } else {
            [r.rbx, r.rcx, r.rdx, r.rsi, r.rdi]
        };
        let result: i64 = match nr {
            xen::XEN_VERSION => match args[0] {
                xen::XENVER_VERSION => ((xen::VERSION.0 << 16) | xen::VERSION.1) as i64,
                xen::XENVER_EXTRAVERSION => {
                    let mut text = [0u8; 16];
                    text[..4].copy_from_slice(b"-hv\0");
                    if write_virt(self, args[1], &text).is_ok() {
                        0
                    } else {
                        -xen::EFAULT
                    }
                }
                _ => -xen::ENOSYS,
            },
            xen::CONSOLE_IO => match args[0] {
                xen::CONSOLEIO_WRITE => {
                    let len = (args[1] as usize).min(4096);
                    let mut buf = alloc::vec![0u8; len];
                    if read_virt(self, args[2], &mut buf).is_ok() {
                        for b in buf {
                            self.console_byte(b);
                        }
                        0
                    } else {
                        -xen::EFAULT
                    }
                }
                _ => -xen::ENOSYS,
            },
            xen::SCHED_OP => match args[0] {
                xen::SCHEDOP_YIELD | xen::SCHEDOP_BLOCK => {
                    // Block has no event to wait for yet: like yield.
                    self.yield_cpu = true;
                    0
                }
                xen::SCHEDOP_SHUTDOWN => {
                    let mut reason = [0u8; 4];
                    if read_virt(self, args[1], &mut reason).is_err() {
                        -xen::EFAULT
                    } else {
                        let reason = u32::from_le_bytes(reason);
                        if reason > 4 {
                            -xen::EINVAL
                        } else {
                            self.flush_console();
                            let what = ["poweroff", "reboot", "suspend", "crash", "watchdog"]
                                [reason as usize];
                            log::info!("{} shut down: {what}", self.prefix());
                            return Some(Ending::Shutdown(reason));
                        }
                    }
                }
                _ => -xen::ENOSYS,
            },
            _ => {
                log::debug!("{} unknown hypercall {nr}: -ENOSYS", self.prefix());
                -xen::ENOSYS
            }
        };
        self.vcpu.set_rax(result as u64);
        None
    }
}
