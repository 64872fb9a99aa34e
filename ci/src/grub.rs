//! GRUB rescue ISOs: grub.cfg and `grub-mkrescue`.
//!
//! GRUB's script language splits words on spaces and treats `;`, `|`, `&`,
//! `$`, `<`, `>`, `{`, `}` and quotes specially (and `*`, `?`, `[` as
//! wildcards when the regexp module is loaded). Every command-line word that
//! holds anything but plain characters is put in single quotes, inside which
//! GRUB takes everything literally. GRUB then joins the words with single
//! spaces into the multiboot command line; it backslash-escapes `\`, `'` and
//! `"` there (as it does for Linux), so those three do not arrive unchanged.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::machine::Protocol;

/// Characters that never need quoting in a GRUB word.
fn is_plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.,:/=+@%^~".contains(c)
}

/// One word quoted for grub.cfg so that GRUB passes it on unchanged.
pub fn quote_word(word: &str) -> String {
    if !word.is_empty() && word.chars().all(is_plain) {
        return word.to_string();
    }
    let mut quoted = String::with_capacity(word.len() + 2);
    quoted.push('\'');
    for c in word.chars() {
        if c == '\'' {
            // End the quote, an escaped quote, start a new quote.
            quoted.push_str("'\\''");
        } else {
            quoted.push(c);
        }
    }
    quoted.push('\'');
    quoted
}

/// A hypervisor command line as GRUB arguments: split on whitespace, each
/// word quoted as needed, with a leading space unless it is empty.
pub fn quote_cmdline(cmdline: &str) -> String {
    cmdline
        .split_whitespace()
        .map(|w| format!(" {}", quote_word(w)))
        .collect()
}

/// The grub.cfg of an ISO: serial console, no menu delay, and one entry per
/// protocol with `protocol`'s first so that it is the default.
pub fn config(protocol: Protocol, cmdline: &str) -> String {
    config_with_modules(protocol, cmdline, &[])
}

/// [`config`] with boot modules `/boot/NAME`, each named NAME.
pub fn config_with_modules(protocol: Protocol, cmdline: &str, modules: &[String]) -> String {
    let args = quote_cmdline(cmdline);
    let lines = |cmd: &str| -> String {
        modules
            .iter()
            .map(|m| format!(" {cmd} /boot/{m} {m};"))
            .collect()
    };
    let (mods2, mods1) = (lines("module2"), lines("module"));
    let mb2 =
        format!("menuentry \"hv (multiboot2)\" {{ multiboot2 /boot/hv{args};{mods2} boot }}\n");
    let mb1 = format!("menuentry \"hv (multiboot)\" {{ multiboot /boot/hv{args};{mods1} boot }}\n");
    let (first, second) = match protocol {
        Protocol::Mb2 => (mb2, mb1),
        Protocol::Mb1 => (mb1, mb2),
    };
    format!(
        "serial --unit=0 --speed=115200\n\
         terminal_input serial console\n\
         terminal_output serial console\n\
         set timeout=0\n\
         set default=0\n\
         {first}{second}"
    )
}

/// Makes `out`: a GRUB rescue ISO with `elf` as `/boot/hv` and `cfg` as
/// `/boot/grub/grub.cfg`, laid out in `staging` (emptied first).
pub fn make_iso(elf: &Path, cfg: &str, staging: &Path, out: &Path) -> Result<(), String> {
    make_iso_with_modules(elf, cfg, &[], staging, out)
}

/// [`make_iso`] that also copies `modules` to `/boot/<file name>`.
pub fn make_iso_with_modules(
    elf: &Path,
    cfg: &str,
    modules: &[PathBuf],
    staging: &Path,
    out: &Path,
) -> Result<(), String> {
    let fail = |what: &str, path: &Path, e: std::io::Error| {
        format!("iso: cannot {what} {}: {e}", path.display())
    };
    match fs::remove_dir_all(staging) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(fail("empty", staging, e))
        }
        _ => {}
    }
    let grub_dir = staging.join("boot/grub");
    fs::create_dir_all(&grub_dir).map_err(|e| fail("create", &grub_dir, e))?;
    let image = staging.join("boot/hv");
    fs::copy(elf, &image).map_err(|e| fail("copy the image to", &image, e))?;
    for m in modules {
        let name = m
            .file_name()
            .ok_or_else(|| format!("iso: module {} has no file name", m.display()))?;
        let dest = staging.join("boot").join(name);
        fs::copy(m, &dest).map_err(|e| fail("copy a module to", &dest, e))?;
    }
    let cfg_path = grub_dir.join("grub.cfg");
    fs::write(&cfg_path, cfg).map_err(|e| fail("write", &cfg_path, e))?;
    if let Some(parent) = out.parent() {
        fs::create_dir_all(parent).map_err(|e| fail("create", parent, e))?;
    }
    let output = Command::new("grub-mkrescue")
        .arg("-o")
        .arg(out)
        .arg(staging)
        .output()
        .map_err(|e| format!("iso: cannot run grub-mkrescue: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "iso: grub-mkrescue failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_unquoted() {
        assert_eq!(quote_word("loglvl=info"), "loglvl=info");
        assert_eq!(quote_word("on_idle=exit"), "on_idle=exit");
        assert_eq!(quote_word("acpi.dump"), "acpi.dump");
    }

    #[test]
    fn hide_lists_are_single_quoted() {
        assert_eq!(
            quote_word("pciback.hide=(00:03.0)(00:05.0)"),
            "'pciback.hide=(00:03.0)(00:05.0)'"
        );
        assert_eq!(
            quote_word("pciback.hide=(0000:00:*.*)"),
            "'pciback.hide=(0000:00:*.*)'"
        );
    }

    #[test]
    fn grub_metacharacters_are_quoted() {
        for word in [
            "a;b", "a|b", "a&b", "$x", "a<b", "a>b", "{x}", "a\"b", "a\\b", "[x]", "?",
        ] {
            let q = quote_word(word);
            assert_eq!(q, format!("'{word}'"), "{word}");
        }
    }

    #[test]
    fn a_single_quote_is_closed_escaped_and_reopened() {
        assert_eq!(quote_word("it's"), r"'it'\''s'");
    }

    #[test]
    fn command_line_words_are_split_on_whitespace() {
        assert_eq!(quote_cmdline(""), "");
        assert_eq!(quote_cmdline("   "), "");
        assert_eq!(
            quote_cmdline(" loglvl=debug  pciback.hide=(00:03.0) (00:05.0)\n"),
            " loglvl=debug 'pciback.hide=(00:03.0)' '(00:05.0)'"
        );
    }

    #[test]
    fn config_puts_the_chosen_protocol_first() {
        let cfg = config(Protocol::Mb2, "loglvl=info pciback.hide=(00:03.0)");
        assert_eq!(
            cfg,
            "serial --unit=0 --speed=115200\n\
             terminal_input serial console\n\
             terminal_output serial console\n\
             set timeout=0\n\
             set default=0\n\
             menuentry \"hv (multiboot2)\" { multiboot2 /boot/hv loglvl=info 'pciback.hide=(00:03.0)'; boot }\n\
             menuentry \"hv (multiboot)\" { multiboot /boot/hv loglvl=info 'pciback.hide=(00:03.0)'; boot }\n"
        );
        let cfg = config(Protocol::Mb1, "");
        let mb1 = cfg.find("multiboot /boot/hv; boot").expect("mb1 entry");
        let mb2 = cfg.find("multiboot2 /boot/hv; boot").expect("mb2 entry");
        assert!(mb1 < mb2);
    }
}
