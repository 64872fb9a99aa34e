//! What the CPU offers for virtualisation, reported at boot.

use crate::arch::cpu::{cpuid, rdmsr_safe};
use core::fmt::Write;
use vmm_glue::log;

/// A short `String`-free line buffer.
struct Line {
    buf: [u8; 256],
    len: usize,
}

impl Line {
    fn new() -> Self {
        Self {
            buf: [0; 256],
            len: 0,
        }
    }
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

// Out of line (as the other boot-only helpers marked so): one copy, not
// one per feature printed.
#[inline(never)]
fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn regs_text(regs: &[u32]) -> [u8; 48] {
    let mut out = [0u8; 48];
    for (i, r) in regs.iter().enumerate().take(12) {
        out[i * 4..i * 4 + 4].copy_from_slice(&r.to_le_bytes());
    }
    out
}

/// The CPU's vendor string (CPUID leaf 0: `GenuineIntel`, `AuthenticAMD`).
pub fn vendor() -> [u8; 12] {
    let l0 = cpuid(0, 0);
    let mut v = [0u8; 12];
    v.copy_from_slice(&regs_text(&[l0.ebx, l0.edx, l0.ecx])[..12]);
    v
}

/// Which hardware virtualisation this CPU has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Virt {
    Svm,
    Vmx,
    None,
}

/// Prints the CPU's identity and virtualisation features; returns which
/// extension is usable.
pub fn report() -> Virt {
    let l0 = cpuid(0, 0);
    let vendor = regs_text(&[l0.ebx, l0.edx, l0.ecx]);
    let vendor = core::str::from_utf8(&vendor[..12]).unwrap_or("?");
    let max_ext = cpuid(0x8000_0000, 0).eax;
    let mut brand = [0u8; 48];
    if max_ext >= 0x8000_0004 {
        let mut regs = [0u32; 12];
        for (i, leaf) in (0x8000_0002u32..=0x8000_0004).enumerate() {
            let r = cpuid(leaf, 0);
            regs[i * 4..i * 4 + 4].copy_from_slice(&[r.eax, r.ebx, r.ecx, r.edx]);
        }
        brand = regs_text(&regs);
    }
    let brand = core::str::from_utf8(&brand)
        .unwrap_or("")
        .trim_matches(char::from(0))
        .trim();
    let l1 = cpuid(1, 0);
    let family = ((l1.eax >> 8) & 0xf)
        + if (l1.eax >> 8) & 0xf == 0xf {
            (l1.eax >> 20) & 0xff
        } else {
            0
        };
    let model = ((l1.eax >> 4) & 0xf) | (((l1.eax >> 16) & 0xf) << 4);
    log::info!(
        "cpu: {vendor} family {family:#x} model {model:#x} stepping {} \"{brand}\"",
        l1.eax & 0xf
    );
    let ext1 = if max_ext >= 0x8000_0001 {
        cpuid(0x8000_0001, 0)
    } else {
        Default::default()
    };
    let mut line = Line::new();
    let _ = write!(
        line,
        "cpu: features: x2apic {} xsave {} avx {} nx {} 1g-pages {} hypervisor-bit {}",
        yes(l1.ecx & (1 << 21) != 0),
        yes(l1.ecx & (1 << 26) != 0),
        yes(l1.ecx & (1 << 28) != 0),
        yes(ext1.edx & (1 << 20) != 0),
        yes(ext1.edx & (1 << 26) != 0),
        yes(l1.ecx & (1 << 31) != 0),
    );
    log::info!("{}", line.as_str());

    if ext1.ecx & (1 << 2) != 0 {
        report_svm(max_ext);
        Virt::Svm
    } else if l1.ecx & (1 << 5) != 0 {
        report_vmx()
    } else {
        log::warn!(
            "cpu: neither AMD SVM nor Intel VMX is available: guests cannot run on this CPU"
        );
        Virt::None
    }
}

fn report_svm(max_ext: u32) {
    if max_ext < 0x8000_000a {
        log::warn!("cpu: SVM present but CPUID leaf 0x8000000a is missing");
        return;
    }
    let a = cpuid(0x8000_000a, 0);
    let f = |bit: u32| yes(a.edx & (1 << bit) != 0);
    let mut line = Line::new();
    let _ = write!(
        line,
        "cpu: SVM revision {}, {} ASIDs: nested paging {}, NRIPS {}, VMCB clean bits {}, \
         flush-by-ASID {}, decode assists {}, pause filter {}, vGIF {}, AVIC {}",
        a.eax & 0xff,
        a.ebx,
        f(0),
        f(3),
        f(5),
        f(6),
        f(7),
        f(10),
        f(16),
        f(13),
    );
    log::info!("{}", line.as_str());
    // VM_CR.SVMDIS: firmware may have locked SVM off.
    match rdmsr_safe(0xc001_0114) {
        Some(vm_cr) if vm_cr & (1 << 4) != 0 => {
            log::warn!(
                "cpu: SVM is disabled by firmware (VM_CR.SVMDIS); enable it in the firmware setup"
            );
        }
        Some(_) => {}
        None => log::debug!("cpu: VM_CR is not readable; assuming SVM is enabled"),
    }
}

fn report_vmx() -> Virt {
    const FEATURE_CONTROL: u32 = 0x3a;
    const VMX_BASIC: u32 = 0x480;
    const PROCBASED: u32 = 0x482;
    const PROCBASED2: u32 = 0x48b;
    const EPT_VPID_CAP: u32 = 0x48c;
    let fc = rdmsr_safe(FEATURE_CONTROL).unwrap_or(0);
    let locked = fc & 1 != 0;
    let outside_smx = fc & (1 << 2) != 0;
    let (Some(basic), Some(proc1)) = (rdmsr_safe(VMX_BASIC), rdmsr_safe(PROCBASED)) else {
        log::warn!("cpu: VMX reported by CPUID but its capability MSRs are not readable");
        return Virt::None;
    };
    let secondary = proc1 >> 63 != 0;
    let proc2 = if secondary {
        rdmsr_safe(PROCBASED2).unwrap_or(0) >> 32
    } else {
        0
    };
    let ept = proc2 & (1 << 1) != 0;
    let vpid = proc2 & (1 << 5) != 0;
    let unrestricted = proc2 & (1 << 7) != 0;
    let cap = if ept || vpid {
        rdmsr_safe(EPT_VPID_CAP).unwrap_or(0)
    } else {
        0
    };
    let c = |bit: u32| yes(cap & (1 << bit) != 0);
    let mut line = Line::new();
    let _ = write!(
        line,
        "cpu: VMX revision {:#x}: EPT {} (4-level {}, write-back {}, 2M {}, 1G {}, INVEPT {}, A/D {}), \
         unrestricted guest {}, VPID {}, true controls {}",
        basic & 0x7fff_ffff,
        yes(ept),
        c(6),
        c(14),
        c(16),
        c(17),
        c(20),
        c(21),
        yes(unrestricted),
        yes(vpid),
        yes(basic & (1 << 55) != 0),
    );
    log::info!("{}", line.as_str());
    if locked && !outside_smx {
        log::warn!("cpu: VMX is locked off by firmware (IA32_FEATURE_CONTROL); enable VT-x in the firmware setup");
    } else if !locked {
        log::info!("cpu: IA32_FEATURE_CONTROL unlocked; VMX will be enabled by the hypervisor");
    }
    Virt::Vmx
}
