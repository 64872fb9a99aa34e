//! Properties: any text parses without panicking into bounded, ordered errors,
//! and valid settings read back the same in any layout.

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use vmm_glue::Sbdf;

use super::meaning::valid_name;
use super::testutil::messages;
use super::{parse, PciAssignment, MAX_ERRORS, MAX_MEMORY_MIB, MAX_WARNINGS};

/// What must hold for any text: no panic, and errors that are bounded,
/// in line order and point inside the file.
fn check_any(text: &str) -> Result<(), proptest::test_runner::TestCaseError> {
    let lines = text.split('\n').count();
    match parse("p.cfg", text) {
        Ok((c, w)) => {
            proptest::prop_assert!(valid_name(&c.name) && !c.kernel.is_empty());
            proptest::prop_assert!(w.len() <= MAX_WARNINGS + 1);
        }
        Err(e) => {
            proptest::prop_assert!(!e.is_empty() && e.len() <= MAX_ERRORS + 1);
            let order: Vec<_> = e.iter().map(|e| (e.line == 0, e.line)).collect();
            proptest::prop_assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
            for err in &e {
                proptest::prop_assert!(err.line <= lines, "{err} in {lines} lines");
                proptest::prop_assert!(err.to_string().starts_with("p.cfg"));
            }
        }
    }
    Ok(())
}

/// The realistic example, to be mangled.
const EXAMPLE: &str = "# a guest\nname = \"edu-guest\"\ntype = \"pvh\"\nkernel = \"xpci.elf\"\n\
                       memory = 64\nvcpus = 1\npci = [ '0000:00:03.0',\n  '00:05.0,permissive=1', ]\n\
                       on_crash = \"destroy\"\nextra = 'loglvl=debug'\n";

proptest::proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_text(text in proptest::arbitrary::any::<String>()) {
        check_any(&text)?;
    }

    #[test]
    fn parse_never_panics_on_config_like_text(
        text in "([a-z_]{1,8}|[ =\\[\\]'\",#;@*:.\\\\\t\r\n-]|0x[0-9a-f]{1,3}|[0-9]{1,4}|\u{e9}|\u{0}){0,120}"
    ) {
        check_any(&text)?;
    }

    #[test]
    fn parse_never_panics_on_a_mangled_example(
        edits in proptest::collection::vec(
            (0usize..EXAMPLE.len(), 0usize..4, proptest::sample::select(
                vec!['[', ']', '\'', '"', ',', '#', '\n', '=', ';', '\\', ' ', 'x', '0', '\u{1}', '\u{e9}']
            )),
            1..6,
        )
    ) {
        let mut text: Vec<char> = EXAMPLE.chars().collect();
        for (at, op, c) in edits {
            let at = at % (text.len() + 1);
            match op {
                0 => text.insert(at, c),
                1 if at < text.len() => { text.remove(at); }
                _ if at < text.len() => text[at] = c,
                _ => text.push(c),
            }
        }
        check_any(&text.into_iter().collect::<String>())?;
    }

    #[test]
    fn valid_settings_written_in_any_layout_read_back_the_same(
        memory in 1u64..=MAX_MEMORY_MIB,
        vcpus in 1u32..=128,
        hex in proptest::bool::ANY,
        double_quotes in proptest::bool::ANY,
        devices in proptest::collection::btree_map(
            (0u16..=0xffff, 0u8..=0xff, 0u8..32, 0u8..8),
            (proptest::bool::ANY, proptest::bool::ANY, proptest::bool::ANY, proptest::option::of(proptest::bool::ANY)),
            0..6,
        ),
        separators in proptest::collection::vec(proptest::sample::select(vec![" ", "\n", " # c\n", "\n\n  ", ""]), 8),
    ) {
        let q = if double_quotes { '"' } else { '\'' };
        let memory_text = if hex { alloc::format!("0x{memory:x}") } else { memory.to_string() };
        let mut pci = String::from("[");
        let mut expected = Vec::new();
        for (i, ((seg, bus, dev, func), (permissive, seize, _power_mgmt, rdm))) in devices.into_iter().enumerate() {
            let sbdf = Sbdf::new(seg, bus, dev, func).unwrap();
            let sep = separators[i % separators.len()];
            // power_mgmt=1 and rdm_policy=relaxed are refused; 0 and strict
            // are what is valid.
            let (power_mgmt, rdm) = (false, rdm.filter(|strict| *strict));
            let rdm_text = match rdm {
                Some(true) => ",rdm_policy=strict",
                Some(false) => ",rdm_policy=relaxed",
                None => "",
            };
            pci.push_str(&alloc::format!(
                "{sep}{q}{sbdf},permissive={},seize={},power_mgmt={}{rdm_text}{q},",
                u8::from(permissive), u8::from(seize), u8::from(power_mgmt)
            ));
            expected.push(PciAssignment {
                sbdf,
                permissive,
                msitranslate: false,
                seize,
                power_mgmt,
                rdm_policy_strict: rdm,
            });
        }
        pci.push_str(separators[0]);
        pci.push(']');
        let text = alloc::format!(
            "name = {q}d{q}\nkernel={q}k{q};memory = {memory_text}\n  vcpus\t= {vcpus} # n\npci = {pci}\n"
        );
        let (c, w) = parse("p.cfg", &text).map_err(|e| {
            proptest::test_runner::TestCaseError::fail(alloc::format!("{text}\n{:?}", messages(&e)))
        })?;
        proptest::prop_assert!(w.is_empty());
        proptest::prop_assert_eq!((c.memory_mib, c.vcpus), (memory, vcpus));
        proptest::prop_assert_eq!(c.pci, expected);
    }
}
