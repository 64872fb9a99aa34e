//! The PV console ring (`io/console.h`): `xencons_interface` at the frame
//! in `HVM_PARAM_CONSOLE_PFN`, notified through the port in
//! `HVM_PARAM_CONSOLE_EVTCHN`. The guest produces into `out` and bumps
//! `out_prod`; the backend consumes and bumps `out_cons`. Indices run
//! freely and wrap modulo 2^32; the ring position is `index % size`.

use core::sync::atomic::{fence, Ordering};

use super::layout::console_ring as cr;
use super::page::Page;
use super::{evtchn, get_param, hvm};

/// The console ring and its event channel.
#[derive(Debug, Clone, Copy)]
pub struct Ring {
    /// The shared page.
    pub page: Page,
    /// The event channel to the backend.
    pub port: u32,
}

/// Why [`Ring::open`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// `HVMOP_get_param(CONSOLE_PFN)` failed.
    Pfn(i64),
    /// `HVMOP_get_param(CONSOLE_EVTCHN)` failed.
    Evtchn(i64),
    /// The frame cannot be mapped (past 4 GiB).
    Unmappable(u64),
}

impl Ring {
    /// Finds the ring through the HVM params.
    pub fn open() -> Result<Ring, OpenError> {
        let pfn = get_param(hvm::PARAM_CONSOLE_PFN).map_err(OpenError::Pfn)?;
        let port = get_param(hvm::PARAM_CONSOLE_EVTCHN).map_err(OpenError::Evtchn)?;
        let page = Page::at(pfn).ok_or(OpenError::Unmappable(pfn))?;
        Ok(Ring {
            page,
            port: port as u32,
        })
    }

    /// `out_cons` and `out_prod`.
    pub fn out_indices(&self) -> (u32, u32) {
        (
            self.page.u32(cr::OUT_CONS).load(Ordering::SeqCst),
            self.page.u32(cr::OUT_PROD).load(Ordering::SeqCst),
        )
    }

    /// `in_cons` and `in_prod`.
    pub fn in_indices(&self) -> (u32, u32) {
        (
            self.page.u32(cr::IN_CONS).load(Ordering::SeqCst),
            self.page.u32(cr::IN_PROD).load(Ordering::SeqCst),
        )
    }

    /// Copies as much of `bytes` into `out` as fits, publishes it with
    /// `out_prod` and, if anything was written, notifies the backend.
    /// Returns the bytes written, or the notify error.
    pub fn write(&self, bytes: &[u8]) -> Result<usize, i64> {
        let (cons, prod) = self.out_indices();
        let used = prod.wrapping_sub(cons) as usize;
        let free = cr::OUT_SIZE.saturating_sub(used);
        let n = free.min(bytes.len());
        for (i, &b) in bytes[..n].iter().enumerate() {
            let at = prod.wrapping_add(i as u32) as usize % cr::OUT_SIZE;
            self.page.u8(cr::OUT + at).store(b, Ordering::Relaxed);
        }
        // The data before the index that publishes it.
        fence(Ordering::SeqCst);
        self.page
            .u32(cr::OUT_PROD)
            .store(prod.wrapping_add(n as u32), Ordering::SeqCst);
        if n > 0 {
            let rc = evtchn::send(self.port);
            if rc < 0 {
                return Err(rc);
            }
        }
        Ok(n)
    }

    /// Writes all of `bytes`, yielding while the ring is full, for at most
    /// `yields` yields. Returns the bytes written.
    pub fn write_all(&self, bytes: &[u8], yields: u32) -> Result<usize, i64> {
        let mut done = 0;
        let mut left = yields;
        while done < bytes.len() {
            let n = self.write(&bytes[done..])?;
            done += n;
            if n == 0 {
                if left == 0 {
                    break;
                }
                left -= 1;
                crate::hypervisor::sched_yield();
            }
        }
        Ok(done)
    }

    /// Yields until the backend consumed everything (`out_cons ==
    /// out_prod`), at most `yields` times; returns whether it did.
    pub fn drain(&self, yields: u32) -> bool {
        for _ in 0..yields {
            let (cons, prod) = self.out_indices();
            if cons == prod {
                return true;
            }
            crate::hypervisor::sched_yield();
        }
        let (cons, prod) = self.out_indices();
        cons == prod
    }
}
