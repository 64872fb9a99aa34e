//! Boot modules: which module a name refers to, and which modules are
//! domain configurations.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Why [`find_module`] found no single module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModuleLookupError {
    /// No module has that name.
    NotFound {
        /// The name looked for.
        wanted: String,
    },
    /// Several modules match.
    Ambiguous {
        /// The name looked for.
        wanted: String,
        /// The names of the matching modules (at most [`MAX_SHOWN_MATCHES`]).
        matches: Vec<String>,
    },
}

/// How many matching names an ambiguity error lists.
pub const MAX_SHOWN_MATCHES: usize = 8;

impl fmt::Display for ModuleLookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound { wanted } => write!(
                f,
                "no boot module is named '{wanted}' (a module's name is its command-line string, \
                 e.g. 'guest.elf' in GRUB's 'module2 /boot/guest.elf guest.elf')"
            ),
            Self::Ambiguous { wanted, matches } => {
                write!(f, "'{wanted}' matches several boot modules: ")?;
                for (i, m) in matches.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}'{m}'")?;
                }
                f.write_str("; give the modules distinct names or use the full one")
            }
        }
    }
}

/// The part of a module name after its last `/`.
fn last_component(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// Finds which boot module a name refers to: exact match of the module's
/// command-line string, or match of its last path component ("guest.elf"
/// matches a module named "/boot/guest.elf" and vice versa). Ambiguity (two
/// modules match) is an error listing both.
///
/// A single exact match wins over matches by last component. Two paths in
/// different directories (`/a/guest.elf`, `/b/guest.elf`) do not match each
/// other: only a bare name matches a path. The whole command-line string is
/// the name (a module's arguments, if any, are part of it).
pub fn find_module<'a, M>(
    modules: &'a [M],
    name_of: impl Fn(&M) -> &str,
    wanted: &str,
) -> Result<&'a M, ModuleLookupError> {
    let exact = |m: &&M| name_of(m) == wanted;
    let wanted_base = last_component(wanted);
    let loose = |m: &&M| {
        let name = name_of(m);
        (!name.contains('/') && !wanted_base.is_empty() && name == wanted_base)
            || (!wanted.contains('/') && last_component(name) == wanted)
    };
    let pick = |matches: &mut dyn Iterator<Item = &'a M>| -> Option<Result<&'a M, _>> {
        let first = matches.next()?;
        let Some(second) = matches.next() else {
            return Some(Ok(first));
        };
        let names = [first, second]
            .into_iter()
            .chain(matches)
            .take(MAX_SHOWN_MATCHES)
            .map(|m| String::from(name_of(m)))
            .collect();
        Some(Err(ModuleLookupError::Ambiguous {
            wanted: wanted.into(),
            matches: names,
        }))
    };
    if wanted.is_empty() {
        return Err(ModuleLookupError::NotFound {
            wanted: String::new(),
        });
    }
    pick(&mut modules.iter().filter(exact))
        .or_else(|| pick(&mut modules.iter().filter(loose)))
        .unwrap_or_else(|| {
            Err(ModuleLookupError::NotFound {
                wanted: wanted.into(),
            })
        })
}

/// Whether a boot module looks like a domain configuration: its name ends
/// in ".cfg" (this is how the hypervisor tells config modules from
/// kernels/ramdisks). The suffix is matched without regard to ASCII case
/// (`GUEST.CFG` from a FAT file system counts) and needs a name before it.
pub fn is_config_module(name: &str) -> bool {
    let base = last_component(name);
    base.len() > 4
        && base
            .get(base.len() - 4..)
            .is_some_and(|ext| ext.eq_ignore_ascii_case(".cfg"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn module_is_found_by_exact_name() {
        let mods = ["guest.elf", "guest1.cfg"];
        assert_eq!(find_module(&mods, |m| m, "guest.elf"), Ok(&"guest.elf"));
    }

    #[test]
    fn module_is_found_by_last_path_component_both_ways() {
        let mods = ["/boot/guest.elf", "initrd"];
        assert_eq!(
            find_module(&mods, |m| m, "guest.elf"),
            Ok(&"/boot/guest.elf")
        );
        let mods = ["guest.elf", "initrd"];
        assert_eq!(
            find_module(&mods, |m| m, "/boot/guest.elf"),
            Ok(&"guest.elf")
        );
    }

    #[test]
    fn exact_match_wins_over_last_component_matches() {
        let mods = ["/a/guest.elf", "guest.elf"];
        assert_eq!(find_module(&mods, |m| m, "guest.elf"), Ok(&"guest.elf"));
        assert_eq!(
            find_module(&mods, |m| m, "/a/guest.elf"),
            Ok(&"/a/guest.elf")
        );
    }

    #[test]
    fn paths_in_different_directories_do_not_match() {
        let mods = ["/a/guest.elf"];
        assert_eq!(
            find_module(&mods, |m| m, "/b/guest.elf"),
            Err(ModuleLookupError::NotFound {
                wanted: "/b/guest.elf".into()
            })
        );
    }

    #[test]
    fn ambiguous_module_name_is_an_error_listing_both() {
        #[derive(Debug)]
        struct Module {
            name: &'static str,
        }
        let mods = [
            Module {
                name: "/a/guest.elf",
            },
            Module { name: "k" },
            Module {
                name: "/b/guest.elf",
            },
        ];
        let e = find_module(&mods, |m| m.name, "guest.elf").unwrap_err();
        assert_eq!(
            e.to_string(),
            "'guest.elf' matches several boot modules: '/a/guest.elf', '/b/guest.elf'; give the modules distinct names or use the full one"
        );
        let same = ["x", "x"];
        assert!(matches!(
            find_module(&same, |m| m, "x"),
            Err(ModuleLookupError::Ambiguous { .. })
        ));
    }

    #[test]
    fn missing_module_is_an_error_explaining_module_names() {
        let mods: [&str; 0] = [];
        assert_eq!(
            find_module(&mods, |m| m, "guest.elf").unwrap_err().to_string(),
            "no boot module is named 'guest.elf' (a module's name is its command-line string, e.g. 'guest.elf' in GRUB's 'module2 /boot/guest.elf guest.elf')"
        );
        assert!(find_module(&[""], |m| m, "").is_err());
        assert!(find_module(&["/boot/"], |m| m, "boot").is_err());
        assert!(find_module(&[""], |m| m, "dir/").is_err());
    }

    #[test]
    fn config_modules_are_told_by_their_cfg_suffix() {
        assert!(is_config_module("guest1.cfg"));
        assert!(is_config_module("/boot/guest1.cfg"));
        assert!(is_config_module("GUEST1.CFG"));
        assert!(!is_config_module("guest.elf"));
        assert!(!is_config_module(".cfg"));
        assert!(!is_config_module("/boot/.cfg"));
        assert!(!is_config_module("guest.cfg.gz"));
        assert!(!is_config_module("\u{e9}cfg"));
        assert!(!is_config_module(""));
    }
}
