//! Answering the frontend's ops on the shared page.

use alloc::format;
use alloc::vec::Vec;

use vmm_glue::{PassthroughHost, Sbdf};

use super::op::{self, Cmd, Request, Response};
use super::{PciBackend, Served, XenbusState};
use crate::vdev::{Notice, VirtDevice};

impl PciBackend {
    /// Serves at most one op from the frontend's shared page (the granted
    /// 4 KiB page, handed in as bytes).
    ///
    /// Nothing happens unless the backend is Connected and the frontend set
    /// `_XEN_PCIF_active`. Then the op is copied out of the page once and
    /// every decision is made on that copy; the function addressed by
    /// (domain, bus, devfn) in the guest's view answers it:
    ///
    /// - no function there, or domain/bus not a root:
    ///   `XEN_PCI_ERR_dev_not_found` (-1), whatever the command;
    /// - `conf_read`/`conf_write`: the virtual config space (offsets and
    ///   sizes outside `u16`/`u8` are `XEN_PCI_ERR_invalid_offset`; the
    ///   function judges the rest); a refused read answers `value` 0;
    /// - `enable_msi`: `value` = the pirq, or `value` 0 and the error;
    /// - `disable_msi`/`disable_msix`: `value` = the INTx pirq or 0;
    /// - `enable_msix`: `value` = the vector count, 1..=128 (else -EINVAL,
    ///   as Linux pciback), the table indices from `msix_entries[i].entry`;
    ///   answers each `msix_entries[i].vector` = pirq and `value` = 0, or
    ///   `err` = `value` = the error;
    /// - AER codes, `enable_multi_msi` and unknown codes:
    ///   `XEN_PCI_ERR_not_implemented` (-4).
    ///
    /// Only `err`, `value` and (enable_msix) the vectors are written back;
    /// `_XEN_PCIF_active` is cleared after them and `notify` is set. The
    /// caller copies back to the frontend's page only those bytes
    /// ([`op::answered`] with [`Served::vectors`]) and the cleared bit.
    pub fn serve(&mut self, host: &mut dyn PassthroughHost, page: &mut [u8; 4096]) -> Served {
        let mut served = Served::default();
        // Connected, or in a hot-plug (the frontend rescans while the
        // backend is Reconfigured, as Linux's does).
        let serving = matches!(
            self.state,
            XenbusState::Connected | XenbusState::Reconfiguring | XenbusState::Reconfigured
        );
        if !serving || !op::active(page) {
            return served;
        }
        let req = op::decode(page);
        let resp = self.answer(host, &req, &mut served.notices);
        served.vectors = resp.vectors.len().min(op::SH_INFO_MAX_VEC);
        op::encode(&resp, page);
        op::complete(page);
        served.notify = true;
        served
    }

    /// The device the guest addresses, by index.
    fn lookup(&self, req: &Request) -> Option<usize> {
        let layout = self.layout.as_ref().ok()?;
        let seg = u16::try_from(req.head.domain).ok()?;
        let bus = u8::try_from(req.head.bus).ok()?;
        let devfn = u8::try_from(req.head.devfn).ok()?;
        let sbdf = Sbdf::new(seg, bus, devfn >> 3, devfn & 7)?;
        // A hot-add the frontend has not taken yet is not there.
        layout.find(sbdf).filter(|&i| {
            self.exports
                .get(i)
                .is_some_and(|e| e.sub != XenbusState::Initialising)
        })
    }

    fn answer(
        &mut self,
        host: &mut dyn PassthroughHost,
        req: &Request,
        notices: &mut Vec<Notice>,
    ) -> Response {
        let Some(i) = self.lookup(req) else {
            return Response::new(op::ERR_DEV_NOT_FOUND, req.head.value);
        };
        let Some(export) = self.exports.get_mut(i) else {
            return Response::new(op::ERR_DEV_NOT_FOUND, req.head.value);
        };
        let dev = &mut export.dev;
        match Cmd::from_raw(req.head.cmd) {
            Cmd::ConfRead => match cfg_args(req) {
                None => Response::new(op::ERR_INVALID_OFFSET, 0),
                Some((offset, size)) => match dev.read(host, offset, size) {
                    Ok(v) => Response::new(op::ERR_SUCCESS, v),
                    Err(e) => Response::new(e.xen_err(), 0),
                },
            },
            Cmd::ConfWrite => match cfg_args(req) {
                None => Response::new(op::ERR_INVALID_OFFSET, req.head.value),
                Some((offset, size)) => {
                    match dev.write(host, offset, size, req.head.value, notices) {
                        Ok(()) => Response::new(op::ERR_SUCCESS, req.head.value),
                        Err(e) => Response::new(e.xen_err(), req.head.value),
                    }
                }
            },
            Cmd::EnableMsi => match dev.enable_msi(host) {
                Ok(pirq) => Response::new(op::ERR_SUCCESS, pirq),
                Err(e) => Response::new(e.0, 0),
            },
            // Linux 6.1's pcifront asks for disable_msi when it tears
            // down MSI-X (it tests `msix_enabled` after the PCI core has
            // cleared it): with MSI off and MSI-X on, that can only mean
            // MSI-X, which is then turned off so its next enable works.
            Cmd::DisableMsi if !dev.msi_enabled() && dev.msix_enabled() => {
                notices.push(crate::vdev::Notice(alloc::format!(
                    "{}: disable_msi while MSI-X is on and MSI off: taken as disable_msix",
                    dev.info().sbdf
                )));
                Response::new(op::ERR_SUCCESS, dev.disable_msix(host))
            }
            Cmd::DisableMsi => Response::new(op::ERR_SUCCESS, dev.disable_msi(host)),
            Cmd::EnableMsix => enable_msix(dev, host, req, notices),
            Cmd::DisableMsix => Response::new(op::ERR_SUCCESS, dev.disable_msix(host)),
            Cmd::Aer(_) | Cmd::EnableMultiMsi | Cmd::Unknown(_) => {
                Response::new(op::ERR_NOT_IMPLEMENTED, req.head.value)
            }
        }
    }
}

/// `offset` and `size` in the types the config space takes, or `None` if
/// they cannot be a config access at all.
fn cfg_args(req: &Request) -> Option<(u16, u8)> {
    Some((
        u16::try_from(req.head.offset).ok()?,
        u8::try_from(req.head.size).ok()?,
    ))
}

fn enable_msix(
    dev: &mut VirtDevice,
    host: &mut dyn PassthroughHost,
    req: &Request,
    notices: &mut Vec<Notice>,
) -> Response {
    let nvec = req.head.value as usize;
    if nvec == 0 || nvec > op::SH_INFO_MAX_VEC {
        notices.push(Notice(format!(
            "{}: MSI-X enable for {} vectors refused (1 to {} allowed)",
            dev.sbdf(),
            req.head.value,
            op::SH_INFO_MAX_VEC
        )));
        return Response::new(op::EINVAL, req.head.value);
    }
    let entries: Vec<u16> = req
        .msix_entries
        .iter()
        .take(nvec)
        .map(|e| e.entry)
        .collect();
    match dev.enable_msix(host, &entries) {
        Ok(pirqs) => {
            let vectors: Option<Vec<u16>> = pirqs.iter().map(|p| u16::try_from(*p).ok()).collect();
            match vectors {
                Some(vectors) if vectors.len() == nvec => Response {
                    err: op::ERR_SUCCESS,
                    value: 0,
                    vectors,
                },
                _ => {
                    // A pirq the 16-bit field cannot carry, or a count that
                    // does not match: undo rather than answer half of it.
                    notices.push(Notice(format!(
                        "{}: MSI-X enable gave {} pirqs for {nvec} entries \
                         (or one above 65535); undone",
                        dev.sbdf(),
                        pirqs.len()
                    )));
                    dev.disable_msix(host);
                    Response::new(op::ERR_OP_FAILED, op::ERR_OP_FAILED as u32)
                }
            }
        }
        Err(e) => Response::new(e.0, e.0 as u32),
    }
}
