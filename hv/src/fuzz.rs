//! The bodies of the fuzz targets over this crate's parsers (see
//! docs/fuzzing.md): the binaries in `fuzz/fuzz_targets/` call them under
//! libFuzzer, and the host test below replays each target's seed corpus
//! (`fuzz/corpus/<target>/`) through them on stable, inside `cargo test`.
//!
//! Each body panics when the code under test breaks a promise: a panic
//! of its own, or an invariant checked here.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::domcfg::{self, DomainConfig, DomainKind, LifecycleAction, PciTopology};
use crate::memmap::{Region, RegionKind};
use crate::multiboot::{self, PhysRead, MB1_MAGIC, MB2_MAGIC};
use crate::pvh::elf::{Elf, PT_LOAD, SHT_NOBITS, SHT_NULL};

/// Whether `part` is a piece of `whole` (not a copy).
fn within(part: &str, whole: &str) -> bool {
    let (p, w) = (part.as_ptr() as usize, whole.as_ptr() as usize);
    part.is_empty() || (p >= w && p + part.len() <= w + whole.len())
}

/// `xl_cfg`: a domain configuration file. Errors and warnings name a line
/// of the file (or 0, the file as a whole) and the file; an accepted
/// configuration is within every limit, and rendered back as a file it
/// parses to the same configuration.
pub fn xl_cfg(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let lines = text.lines().count() + 1;
    match domcfg::parse("fuzz.cfg", &text) {
        Err(errors) => {
            assert!(!errors.is_empty(), "refused without an error");
            assert!(errors.len() <= domcfg::MAX_ERRORS + 1);
            for e in &errors {
                assert!(e.line <= lines, "error on line {} of {lines}", e.line);
                assert!(e.to_string().starts_with("fuzz.cfg"), "{e}");
            }
        }
        Ok((c, warnings)) => {
            assert!(warnings.len() <= domcfg::MAX_WARNINGS + 1);
            for w in &warnings {
                assert!(w.line <= lines, "warning on line {} of {lines}", w.line);
                assert!(w.to_string().starts_with("fuzz.cfg"), "{w}");
            }
            check_config(&c);
            if let Some(file) = render(&c) {
                match domcfg::parse("again.cfg", &file) {
                    Ok((again, _)) => assert_eq!(again, c, "rendered as:\n{file}"),
                    Err(e) => panic!("{c:?} rendered as:\n{file}\nis refused: {e:?}"),
                }
            }
        }
    }
}

fn check_config(c: &DomainConfig) {
    assert!((1..=domcfg::MAX_NAME_LEN).contains(&c.name.len()));
    assert!(c
        .name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)));
    assert!(!c.kernel.is_empty());
    assert!((1..=domcfg::MAX_MEMORY_MIB).contains(&c.memory_mib));
    assert!(c.maxmem_mib.is_none_or(|m| m >= c.memory_mib));
    assert!((1..=domcfg::MAX_VCPUS).contains(&u64::from(c.vcpus)));
    assert!(u64::from(c.restart_limit) <= domcfg::MAX_RESTART_LIMIT);
}

/// A string value, or `None` if it holds what a quoted value cannot.
fn quote(s: &str) -> Option<String> {
    if s.chars().any(|c| c.is_control()) {
        return None;
    }
    Some(format!(
        "\"{}\"",
        s.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// `c` as a file (without its `pci` entries' options beyond the
/// address, which are rendered too).
fn render(c: &DomainConfig) -> Option<String> {
    let action = |a: LifecycleAction| match a {
        LifecycleAction::Destroy => "'destroy'",
        LifecycleAction::Restart => "'restart'",
    };
    let mut f = format!(
        "name = {}\ntype = '{}'\nkernel = {}\ncmdline = {}\nmemory = {}\nvcpus = {}\n\
         on_poweroff = {}\non_crash = {}\non_reboot = {}\nrestart_limit = {}\n\
         pci_topology = '{}'\nautostart = {}\n",
        quote(&c.name)?,
        match c.kind {
            DomainKind::Pvh => "pvh",
            DomainKind::Pv => "pv",
        },
        quote(&c.kernel)?,
        quote(&c.cmdline)?,
        c.memory_mib,
        c.vcpus,
        action(c.on_poweroff),
        action(c.on_crash),
        action(c.on_reboot),
        c.restart_limit,
        match c.pci_topology {
            PciTopology::Virtual => "virtual",
            PciTopology::Passthrough => "passthrough",
        },
        u8::from(c.autostart),
    );
    if let Some(r) = &c.ramdisk {
        f += &format!("ramdisk = {}\n", quote(r)?);
    }
    if let Some(m) = c.maxmem_mib {
        f += &format!("maxmem = {m}\n");
    }
    if !c.pci.is_empty() {
        let entries: Vec<String> = c
            .pci
            .iter()
            .map(|p| {
                let mut e = format!(
                    "'{}:{:02x}:{:02x}.{},permissive={},msitranslate={},seize={},power_mgmt={}",
                    format_args!("{:04x}", p.sbdf.seg),
                    p.sbdf.bus,
                    p.sbdf.dev,
                    p.sbdf.func,
                    u8::from(p.permissive),
                    u8::from(p.msitranslate),
                    u8::from(p.seize),
                    u8::from(p.power_mgmt),
                );
                if let Some(strict) = p.rdm_policy_strict {
                    e += if strict {
                        ",rdm_policy=strict"
                    } else {
                        ",rdm_policy=relaxed"
                    };
                }
                e + "'"
            })
            .collect();
        f += &format!("pci = [{}]\n", entries.join(", "));
    }
    Some(f)
}

/// `hide_list`: a `pciback.hide=` value, then the same bytes as the whole
/// command line. Every error names the text it skipped where it is; the
/// entries understood, written back, parse to themselves with no error;
/// the command line's values are pieces of it.
pub fn hide_list(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (list, errors) = pciback::hide::parse_hide_list(&text);
    for e in &errors {
        assert!(
            text.get(e.position..)
                .is_some_and(|rest| rest.starts_with(e.text.as_str())),
            "{e:?} is not at its position in {text:?}"
        );
        assert!(!e.to_string().is_empty());
    }
    for d in &list.duplicates {
        assert!(d.position < text.len().max(1));
        assert!(list.entries.contains(&d.pattern));
    }
    let written: Vec<String> = list.entries.iter().map(|p| p.to_string()).collect();
    let again = written.join(" ");
    let (list2, errors2) = pciback::hide::parse_hide_list(&again);
    assert!(errors2.is_empty(), "{again:?}: {errors2:?}");
    assert_eq!(list2.entries, list.entries, "{again:?}");
    for p in &list.entries {
        assert_eq!(p.to_string().parse(), Ok(*p));
    }

    let mut problems = Vec::new();
    let c = crate::cmdline::parse(&text, |p| problems.push(p.to_string()));
    for part in c.pciback_hide.parts() {
        assert!(within(part, &text), "{part:?} is not from the line");
    }
    if let Some(image) = c.image {
        assert!(within(image, &text));
    }
    assert!(problems.iter().all(|p| !p.is_empty()));
}

/// A guest's memory map for the loaders: RAM below 640 KiB and from 1 MiB
/// to 64 MiB.
const GUEST_MAP: [Region; 3] = [
    Region {
        base: 0,
        len: 0xa_0000,
        kind: RegionKind::Usable,
    },
    Region {
        base: 0xa_0000,
        len: 0x6_0000,
        kind: RegionKind::Reserved,
    },
    Region {
        base: 0x10_0000,
        len: 63 << 20,
        kind: RegionKind::Usable,
    },
];

/// `elf_loader`: an ELF image for the PVH and PV loaders. An image that
/// parses has every header's file range inside it; the notes readers do
/// not panic; a PVH load plan has its segments in order, apart, inside the
/// guest's RAM and their bytes inside the image; the PV loader's segments
/// are inside the image too.
pub fn elf_loader(data: &[u8]) {
    let elf = match Elf::parse(data) {
        Ok(elf) => elf,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    for ph in &elf.program_headers {
        assert_eq!(elf.segment_bytes(ph).len() as u64, ph.filesz);
    }
    for sh in &elf.sections {
        if sh.sh_type != SHT_NOBITS && sh.sh_type != SHT_NULL {
            assert_eq!(elf.section_bytes(sh).len() as u64, sh.size);
        }
    }
    let entry = match crate::pvh::notes::xen_notes(&elf) {
        Ok(n) => n.phys32_entry,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            elf.entry as u32
        }
    };
    if let Err(e) = crate::pv::notes::pv_notes(&elf) {
        assert!(!e.to_string().is_empty());
    }
    match crate::pvh::plan::plan(&elf, entry, &GUEST_MAP) {
        Ok(plan) => {
            assert_eq!(plan.entry, entry);
            assert!(!plan.segments.is_empty());
            let mut end = 0;
            for s in &plan.segments {
                assert!(s.gpa >= end, "segments out of order or overlapping");
                assert!(s.file_size as u64 <= s.mem_size);
                assert_eq!(s.bytes(data).map(<[u8]>::len), Some(s.file_size));
                assert!(
                    GUEST_MAP.iter().any(|r| r.kind == RegionKind::Usable
                        && r.base <= s.gpa
                        && s.end() <= r.end()),
                    "{s:?} outside the guest's RAM"
                );
                end = s.end();
            }
            assert_eq!(plan.image_end, end);
            let loads = elf
                .program_headers
                .iter()
                .filter(|p| p.p_type == PT_LOAD)
                .count();
            assert!(plan.segments.len() <= loads);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    for offset in [0, 0xffff_ffff_8000_0000] {
        if let Ok(k) = crate::pv::build::kernel::segments(&elf, offset) {
            assert!(k.start <= k.end);
            for s in &k.segments {
                assert!(s.bytes(data).is_some(), "{s:?} outside the image");
            }
        }
    }
}

/// Memory for the multiboot reader: the input from address 0.
struct Bytes<'a>(&'a [u8]);

impl PhysRead for Bytes<'_> {
    fn read(&self, pa: u64, len: usize) -> Option<&[u8]> {
        let start = usize::try_from(pa).ok()?;
        self.0.get(start..start.checked_add(len)?)
    }
}

/// `multiboot`: the multiboot1 or multiboot2 information (first byte: the
/// protocol, bit 0; the structure's offset, bits 1..7 times 8), the rest
/// the machine's memory from address 0. Accepted information has a memory
/// map, at most as many entries and modules as it keeps, and its strings
/// and RSDP in that memory; refused information names what and where.
pub fn multiboot(data: &[u8]) {
    let Some((&sel, mem)) = data.split_first() else {
        return;
    };
    let magic = if sel & 1 == 0 { MB1_MAGIC } else { MB2_MAGIC };
    let at = u64::from(sel >> 1) * 8;
    let memory = Bytes(mem);
    match multiboot::parse(magic, at, &memory) {
        Ok(bi) => {
            assert!(!bi.memory.is_empty());
            assert!(bi.memory.len() <= 128);
            assert!(bi.modules.len() <= multiboot::MAX_MODULES);
            let inside = |s: &[u8]| {
                let (p, m) = (s.as_ptr() as usize, mem.as_ptr() as usize);
                s.is_empty() || (p >= m && p + s.len() <= m + mem.len())
            };
            assert!(inside(bi.cmdline.as_bytes()) && inside(bi.loader.as_bytes()));
            for m in bi.modules.as_slice() {
                assert!(inside(m.name.as_bytes()));
            }
            assert!(bi.rsdp.is_none_or(inside));
            assert_eq!(bi.info.0, at);
            assert!(bi.info.0 <= bi.info.1);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    assert!(multiboot::parse(0x1bad_b002, at, &memory).is_err());
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::path::PathBuf;

    /// Runs `body` over every file of `fuzz/corpus/<target>/`; the corpus
    /// must not be empty.
    pub(crate) fn replay(target: &str, body: fn(&[u8])) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus")
            .join(target);
        let mut files: std::vec::Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{}: no seeds", dir.display());
        for f in files {
            let bytes = std::fs::read(&f).unwrap();
            std::println!("replaying {}", f.display());
            body(&bytes);
        }
    }

    #[test]
    fn xl_cfg_corpus_replays() {
        replay("xl_cfg", super::xl_cfg);
    }

    #[test]
    fn hide_list_corpus_replays() {
        replay("hide_list", super::hide_list);
    }

    #[test]
    fn elf_loader_corpus_replays() {
        replay("elf_loader", super::elf_loader);
    }

    #[test]
    fn multiboot_corpus_replays() {
        replay("multiboot", super::multiboot);
    }

    fn seed(path: &str) -> std::vec::Vec<u8> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
        std::fs::read(dir.join(path)).unwrap()
    }

    /// The hand-made seeds are accepted where they are meant to be, so
    /// that the replay goes past the parsers' first checks.
    #[test]
    fn the_valid_seeds_are_accepted() {
        use crate::multiboot::{parse, MB1_MAGIC, MB2_MAGIC};
        use crate::pvh::elf::Elf;
        for f in [
            "xl_cfg/minimal.cfg",
            "xl_cfg/edu.cfg",
            "xl_cfg/pv-all-keys.cfg",
        ] {
            let text = std::string::String::from_utf8(seed(f)).unwrap();
            let c = crate::domcfg::parse(f, &text);
            assert!(c.is_ok(), "{f}: {c:?}");
        }
        for f in ["elf_loader/pvh64.elf", "elf_loader/pvh32.elf"] {
            let image = seed(f);
            let elf = Elf::parse(&image).unwrap();
            let entry = crate::pvh::notes::xen_notes(&elf).unwrap().phys32_entry;
            assert!(crate::pvh::plan::plan(&elf, entry, &super::GUEST_MAP).is_ok());
        }
        let pv = seed("elf_loader/pv64.elf");
        let n = crate::pv::notes::pv_notes(&Elf::parse(&pv).unwrap());
        assert!(n.is_ok(), "{:?}", n.err());
        for (f, magic) in [
            ("multiboot/mb1.bin", MB1_MAGIC),
            ("multiboot/mb2.bin", MB2_MAGIC),
        ] {
            let data = seed(f);
            let at = u64::from(data[0] >> 1) * 8;
            let mem = super::Bytes(&data[1..]);
            let bi = parse(magic, at, &mem).unwrap();
            assert!(bi.cmdline.starts_with("loglvl=info"), "{f}");
            assert_eq!(bi.modules.len(), 1, "{f}");
            assert_eq!(bi.memory.len(), if magic == MB1_MAGIC { 2 } else { 3 });
        }
    }
}
