//! Meaning: settings to a configuration. Looks each key up, checks its
//! value, fills in the defaults and reports missing, repeated and unknown
//! keys.

use alloc::string::String;
use vmm_glue::compact::VecMap;

use super::errors::{ConfigErrorKind, ConfigWarningKind};
use super::pci::{pci_list, PciDefaults};
use super::report::{shorten, Report, Shown};
use super::syntax::{Item, ItemKind, Setting};
use super::{
    DomainConfig, DomainKind, LifecycleAction, PciTopology, DEFAULT_MEMORY_MIB,
    DEFAULT_RESTART_LIMIT, MAX_MEMORY_MIB, MAX_NAME_LEN, MAX_RESTART_LIMIT, MAX_VCPUS,
};

/// The keys this hypervisor uses, in the order of [`KEYS`].
#[derive(Clone, Copy)]
enum Key {
    Name,
    Type,
    Builder,
    Kernel,
    Ramdisk,
    Cmdline,
    Extra,
    Root,
    Memory,
    Maxmem,
    Vcpus,
    Pci,
    PciPermissive,
    PciMsitranslate,
    PciSeize,
    PciPowerMgmt,
    PciTopology,
    OnPoweroff,
    OnCrash,
    OnReboot,
    Autostart,
    RestartLimit,
    PciHotplug,
}

const KEYS: [(&str, Key); 23] = [
    ("name", Key::Name),
    ("type", Key::Type),
    ("builder", Key::Builder),
    ("kernel", Key::Kernel),
    ("ramdisk", Key::Ramdisk),
    ("cmdline", Key::Cmdline),
    ("extra", Key::Extra),
    ("root", Key::Root),
    ("memory", Key::Memory),
    ("maxmem", Key::Maxmem),
    ("vcpus", Key::Vcpus),
    ("pci", Key::Pci),
    ("pci_permissive", Key::PciPermissive),
    ("pci_msitranslate", Key::PciMsitranslate),
    ("pci_seize", Key::PciSeize),
    ("pci_power_mgmt", Key::PciPowerMgmt),
    ("pci_topology", Key::PciTopology),
    ("on_poweroff", Key::OnPoweroff),
    ("on_crash", Key::OnCrash),
    ("on_reboot", Key::OnReboot),
    ("autostart", Key::Autostart),
    ("restart_limit", Key::RestartLimit),
    ("pci_hotplug", Key::PciHotplug),
];

/// xl.cfg(5) keys this hypervisor ignores: warned about without a "did you
/// mean" guess.
pub(super) const XL_KEYS: &str =
    "maxvcpus cpus cpus_soft cpu_weight cap pool uuid seclabel init_seclabel bootloader \
    bootloader_args on_watchdog on_soft_reset disk vif vtpm vfb vkb p9 pvcalls channel usbctrl \
    usbdev vdispl vsnd serial vnc vnclisten vncpasswd sdl localtime rtc_timeoffset \
    max_grant_frames max_maptrack_frames max_event_channels driver_domain device_model_version \
    device_model_override iomem ioports irqs e820_host tsc_mode rdm acpi apic pae hap \
    nestedhvm viridian boot vga videoram stdvga usb usbdevice soundhw keymap gfx_passthru \
    xen_platform_pci shadow_memory passthrough dtdev device_tree cpuid hpet altp2m \
    disable_migrate";

/// A known key that `key` is probably a misspelling of.
pub(super) fn suggest(key: &str) -> Option<&'static str> {
    const LONGEST: usize = 32;
    if key.len() > LONGEST {
        return None;
    }
    let lower = key.to_ascii_lowercase();
    let budget = if key.len() < 6 { 1 } else { 2 };
    KEYS.iter()
        .map(|(name, _)| {
            (
                edit_distance::<LONGEST>(lower.as_bytes(), name.as_bytes()),
                *name,
            )
        })
        .filter(|(d, _)| *d <= budget)
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| name)
}

/// Levenshtein distance; `b` must be at most `N` bytes (longer is "far").
fn edit_distance<const N: usize>(a: &[u8], b: &[u8]) -> usize {
    if b.len() > N {
        return usize::MAX;
    }
    let mut prev = [0usize; 64];
    let mut cur = [0usize; 64];
    for (j, p) in prev.iter_mut().enumerate().take(b.len() + 1) {
        *p = j;
    }
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        core::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// A string value. An unquoted number counts as a string, as in xl.
fn text<'a>(item: &'a Item<'_>) -> Result<&'a str, ConfigErrorKind> {
    match &item.kind {
        ItemKind::Quoted(s) => Ok(s),
        ItemKind::Bare if parse_number(item.raw).is_ok() => Ok(item.raw),
        ItemKind::Bare => Err(ConfigErrorKind::UnquotedText {
            word: shorten(item.raw),
        }),
        ItemKind::List(_) => Err(ConfigErrorKind::Expected("a quoted string")),
    }
}

enum NumberError {
    NotANumber,
    LeadingZero,
    TooLarge,
}

/// Decimal or `0x` hexadecimal, no sign; a leading `0` (octal in xl) is
/// refused rather than read differently.
fn parse_number(s: &str) -> Result<u64, NumberError> {
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (s, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(NumberError::NotANumber);
    }
    if radix == 10 && digits.len() > 1 && digits.starts_with('0') {
        return Err(NumberError::LeadingZero);
    }
    u64::from_str_radix(digits, radix).map_err(|_| NumberError::TooLarge)
}

/// A number (bare or quoted, as xl allows) in `min..=max`.
fn number(
    item: &Item<'_>,
    expected: &'static str,
    min: u64,
    max: u64,
    unit: &'static str,
) -> Result<u64, ConfigErrorKind> {
    let s = match &item.kind {
        ItemKind::Quoted(s) => s,
        ItemKind::Bare => item.raw,
        ItemKind::List(_) => return Err(ConfigErrorKind::Expected(expected)),
    };
    let out_of_range = ConfigErrorKind::OutOfRange { min, max, unit };
    match parse_number(s) {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        Ok(_) | Err(NumberError::TooLarge) => Err(out_of_range),
        Err(NumberError::NotANumber) => Err(ConfigErrorKind::Expected(expected)),
        Err(NumberError::LeadingZero) => Err(ConfigErrorKind::LeadingZero),
    }
}

/// A 0-or-1 flag.
fn flag(item: &Item<'_>) -> Result<bool, ConfigErrorKind> {
    number(item, "0 or 1", 0, 1, "")
        .map_err(|_| ConfigErrorKind::Expected("0 or 1"))
        .map(|n| n == 1)
}

pub(super) fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn module_name(item: &Item<'_>) -> Result<String, ConfigErrorKind> {
    match text(item)? {
        "" => Err(ConfigErrorKind::EmptyModuleName),
        s => Ok(s.into()),
    }
}

fn action(item: &Item<'_>) -> Result<LifecycleAction, ConfigErrorKind> {
    let s = text(item)?;
    if s.eq_ignore_ascii_case("destroy") {
        Ok(LifecycleAction::Destroy)
    } else if s.eq_ignore_ascii_case("restart") {
        Ok(LifecycleAction::Restart)
    } else {
        Err(ConfigErrorKind::UnsupportedAction)
    }
}

/// The settings of the keys this hypervisor uses, by [`Key`].
struct Known<'s, 't>([Option<&'s Setting<'t>>; KEYS.len()]);

impl<'s, 't> Known<'s, 't> {
    fn given(&self, k: Key) -> Option<&'s Setting<'t>> {
        self.0.get(k as usize).copied().flatten()
    }

    /// Reads key `k` with `read`, reporting a bad value. `None` if the key is
    /// absent or its value bad (then the file has errors anyway).
    fn read<T>(
        &self,
        report: &mut Report<'_>,
        k: Key,
        read: impl FnOnce(&'s Item<'t>) -> Result<T, ConfigErrorKind>,
    ) -> Option<T> {
        let s = self.given(k)?;
        let item = s.value.as_ref()?;
        match read(item) {
            Ok(v) => Some(v),
            Err(kind) => {
                report.error(item.line, Some(s.key), Shown::Value(item.raw), kind);
                None
            }
        }
    }
}

/// Turns settings into a configuration; `None` if anything was wrong.
pub(super) fn interpret(settings: &[Setting<'_>], report: &mut Report<'_>) -> Option<DomainConfig> {
    let mut first_line: VecMap<&str, usize> = VecMap::new();
    let mut known = Known([None; KEYS.len()]);
    for s in settings {
        if s.value.is_none() {
            // Already reported; it only counts as given.
            if let Some(i) = KEYS.iter().position(|(name, _)| *name == s.key) {
                known.0[i] = known.0[i].or(Some(s));
            }
            continue;
        }
        if let Some(&first) = first_line.get(s.key) {
            let shown = s
                .value
                .as_ref()
                .map_or(Shown::Nothing, |v| Shown::Value(v.raw));
            let kind = ConfigErrorKind::Duplicate { first_line: first };
            report.error(s.line, Some(s.key), shown, kind);
            continue;
        }
        first_line.insert(s.key, s.line);
        match KEYS.iter().position(|(name, _)| *name == s.key) {
            Some(i) => known.0[i] = Some(s),
            None => report.unknown_key(s.line, s.key),
        }
    }

    let name = known.read(report, Key::Name, |v| match text(v)? {
        n if valid_name(n) => Ok(String::from(n)),
        _ => Err(ConfigErrorKind::BadName),
    });
    if known.given(Key::Name).is_none() {
        report.error(0, None, Shown::Nothing, ConfigErrorKind::MissingName);
    }
    let kind = known
        .read(report, Key::Type, |v| match text(v)? {
            t if t.eq_ignore_ascii_case("pvh") => Ok(DomainKind::Pvh),
            t if t.eq_ignore_ascii_case("pv") => Ok(DomainKind::Pv),
            _ => Err(ConfigErrorKind::UnsupportedType),
        })
        .unwrap_or_default();
    known.read(report, Key::Builder, |_| {
        Err::<(), _>(ConfigErrorKind::Builder)
    });
    let kernel = known.read(report, Key::Kernel, module_name);
    if known.given(Key::Kernel).is_none() {
        report.error(0, None, Shown::Nothing, ConfigErrorKind::MissingKernel);
    }
    let ramdisk = known.read(report, Key::Ramdisk, module_name);

    let as_string = |v: &Item<'_>| text(v).map(String::from);
    let cmdline = known.read(report, Key::Cmdline, as_string);
    let root = known.read(report, Key::Root, as_string);
    let extra = known.read(report, Key::Extra, as_string);
    let cmdline = if known.given(Key::Cmdline).is_some() {
        for k in [Key::Root, Key::Extra] {
            if let Some(s) = known.given(k) {
                let kind = ConfigWarningKind::OverriddenByCmdline;
                report.warn(s.line, s.key, Shown::Nothing, kind);
            }
        }
        cmdline.unwrap_or_default()
    } else {
        match (root, extra) {
            (Some(root), Some(extra)) => alloc::format!("root={root} {extra}"),
            (Some(root), None) => alloc::format!("root={root}"),
            (None, extra) => extra.unwrap_or_default(),
        }
    };

    const MIB: &str = "a number of MiB";
    let memory_mib = known.read(report, Key::Memory, |v| {
        number(v, MIB, 1, MAX_MEMORY_MIB, " MiB")
    });
    let maxmem_mib = known.read(report, Key::Maxmem, |v| {
        let maxmem = number(v, MIB, 1, MAX_MEMORY_MIB, " MiB")?;
        match memory_mib {
            Some(memory_mib) if maxmem < memory_mib => {
                Err(ConfigErrorKind::MaxmemBelowMemory { memory_mib })
            }
            None if maxmem < DEFAULT_MEMORY_MIB && known.given(Key::Memory).is_none() => {
                Err(ConfigErrorKind::MaxmemBelowMemory {
                    memory_mib: DEFAULT_MEMORY_MIB,
                })
            }
            _ => Ok(maxmem),
        }
    });
    let vcpus = known.read(report, Key::Vcpus, |v| {
        let n = number(v, "a number of vCPUs", 1, MAX_VCPUS, "")?;
        Ok(u32::try_from(n).unwrap_or(1))
    });

    let defaults = PciDefaults {
        permissive: known
            .read(report, Key::PciPermissive, flag)
            .unwrap_or(false),
        msitranslate: known
            .read(report, Key::PciMsitranslate, flag)
            .unwrap_or(false),
        seize: known.read(report, Key::PciSeize, flag).unwrap_or(false),
        power_mgmt: known.read(report, Key::PciPowerMgmt, flag).unwrap_or(false),
    };
    let pci = known
        .read(report, Key::Pci, |v| match &v.kind {
            ItemKind::List(items) => Ok(items),
            _ => Err(ConfigErrorKind::Expected("a list like ['0000:00:03.0']")),
        })
        .map(|items| pci_list(items, defaults, report))
        .unwrap_or_default();

    let pci_topology = known.read(report, Key::PciTopology, |v| match text(v)? {
        "virtual" => Ok(PciTopology::Virtual),
        "passthrough" => Ok(PciTopology::Passthrough),
        _ => Err(ConfigErrorKind::Expected(
            "\"virtual\" (one virtual bus 0000:00) or \"passthrough\" (the host's addresses)",
        )),
    });

    let on_poweroff = known.read(report, Key::OnPoweroff, action);
    let on_crash = known.read(report, Key::OnCrash, action);
    let on_reboot = known.read(report, Key::OnReboot, action);
    let autostart = known.read(report, Key::Autostart, flag);
    let pci_hotplug = known.read(report, Key::PciHotplug, flag);
    let restart_limit = known.read(report, Key::RestartLimit, |v| {
        let n = number(v, "a number of restarts", 0, MAX_RESTART_LIMIT, "")?;
        Ok(u32::try_from(n).unwrap_or(0))
    });

    Some(DomainConfig {
        name: name?,
        kind,
        kernel: kernel?,
        ramdisk,
        cmdline,
        memory_mib: memory_mib.unwrap_or(DEFAULT_MEMORY_MIB),
        maxmem_mib,
        vcpus: vcpus.unwrap_or(1),
        pci,
        pci_topology: pci_topology.unwrap_or(PciTopology::Virtual),
        on_poweroff: on_poweroff.unwrap_or(LifecycleAction::Destroy),
        on_crash: on_crash.unwrap_or(LifecycleAction::Destroy),
        on_reboot: on_reboot.unwrap_or(LifecycleAction::Restart),
        autostart: autostart.unwrap_or(true),
        pci_hotplug: pci_hotplug.unwrap_or(true),
        restart_limit: restart_limit.unwrap_or(DEFAULT_RESTART_LIMIT),
    })
}

#[cfg(test)]
mod tests;
