//! `cargo xtask acpi-fixtures`: the ACPI tables of the QEMU machines the
//! scenarios use, captured from the hypervisor's own `acpi.dump` output and
//! written to platform/tests/fixtures/<machine>/<SIG>.bin, where the
//! platform crate's tests parse them.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::machine::Iommu;
use crate::process::{self, Ended};
use crate::{metal, qemu, tools, Workspace};

/// The machines captured: fixture directory name and IOMMU.
const MACHINES: &[(&str, Iommu)] = &[
    ("q35-intel-iommu", Iommu::Intel),
    ("q35-amd-iommu", Iommu::Amd),
];

/// Tables recovered from the `acpidump:` lines of a serial log: the header
/// line `acpidump: SIG at ADDRESS length LENGTH` then `acpidump: SIG +OFFSET
/// HEX` lines (offsets in hexadecimal).
pub fn parse_dump(log: &str) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut tables: BTreeMap<String, (usize, Vec<u8>)> = BTreeMap::new();
    for line in log.lines() {
        let Some(rest) = line.trim_end().strip_prefix("acpidump: ") else {
            continue;
        };
        let words: Vec<&str> = rest.split(' ').collect();
        match words.as_slice() {
            [sig, "at", _address, "length", len] => {
                let len: usize = len.parse().map_err(|_| format!("bad length in '{line}'"))?;
                tables.insert((*sig).to_string(), (len, Vec::new()));
            }
            [sig, offset, hex] => {
                let (_, bytes) = tables
                    .get_mut(*sig)
                    .ok_or_else(|| format!("data before the header of {sig}: '{line}'"))?;
                let offset = offset
                    .strip_prefix('+')
                    .and_then(|o| usize::from_str_radix(o, 16).ok())
                    .ok_or_else(|| format!("bad offset in '{line}'"))?;
                if offset != bytes.len() {
                    return Err(format!(
                        "{sig}: expected offset {:#x}, got '{line}'",
                        bytes.len()
                    ));
                }
                if hex.len() % 2 != 0 {
                    return Err(format!("odd number of hex digits in '{line}'"));
                }
                for pair in hex.as_bytes().chunks(2) {
                    let text =
                        std::str::from_utf8(pair).map_err(|_| format!("bad hex in '{line}'"))?;
                    bytes.push(
                        u8::from_str_radix(text, 16).map_err(|_| format!("bad hex in '{line}'"))?,
                    );
                }
            }
            _ => return Err(format!("unexpected dump line '{line}'")),
        }
    }
    tables
        .into_iter()
        .map(|(sig, (len, bytes))| {
            if bytes.len() == len {
                Ok((sig, bytes))
            } else {
                Err(format!("{sig}: {} of {len} bytes dumped", bytes.len()))
            }
        })
        .collect()
}

/// Boots each machine with `acpi.dump` and writes its tables.
pub fn run(ws: &Workspace) -> Result<bool, String> {
    tools::ensure(&[tools::QEMU])?;
    let elf = metal::build(ws)?;
    for (name, iommu) in MACHINES {
        let dir = ws.xtask_dir().join("acpi-fixtures").join(name);
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let serial = dir.join("serial.log");
        let _ = fs::remove_file(&serial);
        let config = qemu::Config {
            iommu: *iommu,
            devices: &[],
            media: qemu::Media::Kernel {
                elf: &elf,
                cmdline: "on_idle=exit on_fatal=exit loglvl=info acpi.dump",
                modules: &[],
            },
            serial: qemu::Serial::File(&serial),
            gdb: false,
            disk: None,
            acpi_tables: &[],
        };
        let mut cmd = Command::new(qemu::PROGRAM);
        cmd.args(qemu::args(&config));
        process::isolate(&mut cmd);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", qemu::PROGRAM))?;
        match process::wait(&mut child, Some(Duration::from_secs(120)), true) {
            Ok(Ended::Code(1)) => {}
            Ok(other) => {
                return Err(format!(
                    "{name}: QEMU ended with {other:?}; see {}",
                    ws.show(&serial)
                ))
            }
            Err(e) => return Err(format!("{name}: waiting for QEMU: {e}")),
        }
        let log = fs::read_to_string(&serial)
            .map_err(|e| format!("cannot read {}: {e}", serial.display()))?;
        let tables = parse_dump(&log).map_err(|e| format!("{name}: {e}"))?;
        if tables.is_empty() {
            return Err(format!(
                "{name}: the log has no acpidump lines; see {}",
                ws.show(&serial)
            ));
        }
        let out = ws.root().join("platform/tests/fixtures").join(name);
        write_tables(&out, &tables)?;
        println!(
            "acpi-fixtures: {name}: {} -> {}",
            tables.keys().cloned().collect::<Vec<_>>().join(" "),
            ws.show(&out)
        );
    }
    Ok(true)
}

fn write_tables(out: &Path, tables: &BTreeMap<String, Vec<u8>>) -> Result<(), String> {
    fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    for (sig, bytes) in tables {
        let path = out.join(format!("{sig}.bin"));
        fs::write(&path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_lines_become_tables() {
        let log = "hv: x\nacpidump: APIC at 0x1000 length 3\nacpidump: APIC +0000 0a0b0c\r\n\
                   acpidump: WAET at 0x2000 length 0\n";
        let t = parse_dump(log).unwrap();
        assert_eq!(t["APIC"], [0x0a, 0x0b, 0x0c]);
        assert!(t["WAET"].is_empty());
    }

    #[test]
    fn short_or_out_of_order_dumps_are_errors() {
        let head = "acpidump: APIC at 0x1000 length 4\n";
        assert!(parse_dump(&format!("{head}acpidump: APIC +0000 0a0b0c\n")).is_err());
        assert!(parse_dump("acpidump: APIC +0000 0a0b0c\n").is_err());
        assert!(parse_dump(&format!("{head}acpidump: APIC +0002 0a0b0c0d\n")).is_err());
        assert!(parse_dump(&format!("{head}acpidump: APIC +0000 zz0b0c0d\n")).is_err());
        assert!(parse_dump(&format!("{head}acpidump: APIC 0000 0a0b0c0d\n")).is_err());
    }
}
