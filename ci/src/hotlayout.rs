//! The hot code layout: `hv/linker.ld` places the library functions of
//! the exit path right after `.text.hot`, naming their symbols (a library
//! crate cannot name a section). A function renamed, moved or inlined away
//! leaves its pattern matching nothing, which costs speed silently; this
//! check (`hot-layout`, counted with the scenarios whenever `cargo xtask
//! test` builds the image) finds such a pattern in the image's symbols.

use crate::image::{section_headers, u32_at, u64_at};

/// The name of the check in `cargo xtask test`'s output.
pub const CHECK: &str = "hot-layout";

/// The symbol patterns of the linker script's sections named after a
/// function (`.text._ZN...*`, `.text._R...`): every `.text.` input
/// section pattern but `.text.hot`'s and the catch-all ones.
pub fn patterns(script: &str) -> Vec<&str> {
    script
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|tok| tok.strip_prefix(".text."))
        .filter(|p| p.starts_with('_'))
        .collect()
}

/// Whether `name` matches `pattern`, where `*` stands for any run of
/// characters (as the linker's wildcards do).
pub fn glob(pattern: &str, name: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else {
        return pattern == name;
    };
    let Some(mut tail) = name.strip_prefix(first) else {
        return false;
    };
    let mut pieces: Vec<&str> = rest.split('*').collect();
    let last = pieces.pop().unwrap_or("");
    for piece in pieces {
        match tail.find(piece) {
            Some(at) => tail = &tail[at + piece.len()..],
            None => return false,
        }
    }
    tail.len() >= last.len() && tail.ends_with(last)
}

/// The names of `elf`'s function symbols (`.symtab`), `None` if it has
/// none or is not a little-endian ELF64 file.
pub fn functions(elf: &[u8]) -> Option<Vec<String>> {
    let (headers, _) = section_headers(elf)?;
    // SHT_SYMTAB, and its string table (sh_link).
    let h = *headers.iter().find(|&&h| u32_at(elf, h + 4) == Some(2))?;
    let strtab = *headers.get(usize::try_from(u32_at(elf, h + 0x28)?).ok()?)?;
    let (at, size) = (
        usize::try_from(u64_at(elf, h + 0x18)?).ok()?,
        usize::try_from(u64_at(elf, h + 0x20)?).ok()?,
    );
    let names = usize::try_from(u64_at(elf, strtab + 0x18)?).ok()?;
    let mut out = Vec::new();
    for sym in (at..at + size).step_by(24) {
        // STT_FUNC in the low nibble of st_info.
        if elf.get(sym + 4).is_some_and(|info| info & 0xf == 2) {
            let name_at = names + usize::try_from(u32_at(elf, sym)?).ok()?;
            let name = elf.get(name_at..)?.split(|&b| b == 0).next()?;
            out.push(String::from_utf8_lossy(name).into_owned());
        }
    }
    Some(out)
}

/// The patterns no function of `functions` matches.
pub fn stale<'a>(patterns: &[&'a str], functions: &[String]) -> Vec<&'a str> {
    patterns
        .iter()
        .copied()
        .filter(|p| !functions.iter().any(|f| glob(p, f)))
        .collect()
}

/// The `hot-layout` check of the image file `elf` against the linker
/// script `script` (named `shown` in the line): its line and whether it
/// passed.
pub fn check(elf: &std::path::Path, script: &std::path::Path, shown: &str) -> (String, bool) {
    let Ok(text) = std::fs::read_to_string(script) else {
        return (format!("FAIL {CHECK}: cannot read {shown}"), false);
    };
    let Some(fns) = std::fs::read(elf).ok().as_deref().and_then(functions) else {
        return (
            format!(
                "FAIL {CHECK}: cannot read the function symbols of {}",
                elf.display()
            ),
            false,
        );
    };
    let pats = patterns(&text);
    match stale(&pats, &fns).as_slice() {
        [] => (
            format!(
                "PASS {CHECK}: each of the {} functions {shown} places after .text.hot is in the image",
                pats.len()
            ),
            true,
        ),
        missing => (
            format!(
                "FAIL {CHECK}: {shown} names {} that no function of the image matches (renamed, moved or inlined): update it",
                missing.join(", ")
            ),
            false,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patterns_are_the_function_named_sections_only() {
        let script = "*(.text.hot .text.hot.*)\n  *(.text._ZN2hv3gpt4walk17h*)\n\
                      *(.text._ZN2a1b* .text._R*4core3str9from_utf8)\n*(.text .text.*)";
        assert_eq!(
            patterns(script),
            ["_ZN2hv3gpt4walk17h*", "_ZN2a1b*", "_R*4core3str9from_utf8"]
        );
    }

    #[test]
    fn wildcards_match_as_the_linker_does() {
        assert!(glob("_ZN2hv3gpt4walk17h*", "_ZN2hv3gpt4walk17h1a62E"));
        assert!(!glob("_ZN2hv3gpt4walk17h*", "_ZN2hv3gpt5walks17h1a62E"));
        assert!(glob(
            "_R*4core3str9from_utf8",
            "_RNvNtCs1_4core3str9from_utf8"
        ));
        assert!(!glob(
            "_R*4core3str9from_utf8",
            "_RNvNtCs1_4core3str9from_utf8x"
        ));
        assert!(glob(
            "_ZN8vmm*4find17h*",
            "_ZN8vmm_glue7compact6VecMap4find17habcE"
        ));
        assert!(glob("a*b*b", "abb"));
        assert!(!glob("a*bb*b", "abb"));
        assert!(glob("exact", "exact") && !glob("exact", "exactly"));
    }

    #[test]
    fn stale_patterns_are_the_ones_nothing_matches() {
        let fns = ["_ZN2hv3gpt4walk17h1E".to_string(), "main".to_string()];
        assert_eq!(
            stale(&["_ZN2hv3gpt4walk17h*", "_ZN2hv4gone17h*"], &fns),
            ["_ZN2hv4gone17h*"]
        );
    }

    #[test]
    fn a_real_elf_files_functions_are_read_from_its_symbol_table() {
        // This test binary: an ELF64 file with a symbol table on the
        // machines that run it.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let fns = functions(&me).expect("the test binary's symbols");
        assert!(fns.iter().any(|f| f.contains("a_real_elf_files_functions")));
        assert!(functions(b"not an elf").is_none());
    }

    #[test]
    fn the_check_fails_on_a_pattern_the_image_lacks() {
        let me = std::env::current_exe().unwrap();
        let dir = std::env::temp_dir().join(format!("hotlayout-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("linker.ld");
        let good = "*(.text.hot)\n*(.text._ZN*the_check_fails_on_a_pattern*)\n";
        std::fs::write(&script, good).unwrap();
        let (line, ok) = check(&me, &script, "linker.ld");
        assert!(
            ok && line.starts_with("PASS hot-layout: each of the 1 functions"),
            "{line}"
        );
        std::fs::write(&script, format!("{good}*(.text._ZN2hv9renamed17h*)\n")).unwrap();
        let (line, ok) = check(&me, &script, "linker.ld");
        assert!(
            !ok && line.contains("names _ZN2hv9renamed17h* that no function"),
            "{line}"
        );
        let (line, ok) = check(&me, &dir.join("missing.ld"), "missing.ld");
        assert!(
            !ok && line == "FAIL hot-layout: cannot read missing.ld",
            "{line}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
