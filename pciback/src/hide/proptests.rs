use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;

fn pattern() -> impl Strategy<Value = HidePattern> {
    (
        any::<u16>(),
        any::<u8>(),
        proptest::option::of(0u8..32),
        proptest::option::of(0u8..8),
    )
        .prop_map(|(seg, bus, dev, func)| HidePattern {
            seg,
            bus,
            dev,
            func,
        })
}

/// Spaces, tabs and line breaks: what may separate entries.
fn blanks() -> impl Strategy<Value = String> {
    "[ \t\r\n]{0,3}"
}

/// One hex number as a user might write it: minimal or full width, either
/// case.
fn hex(value: Option<u32>, width: usize, padded: bool, upper: bool) -> String {
    let text = match value {
        None => "*".to_string(),
        Some(v) if padded => format!("{v:0width$x}"),
        Some(v) => format!("{v:x}"),
    };
    if upper {
        text.to_ascii_uppercase()
    } else {
        text
    }
}

/// A pattern and a well-formed way of writing it: short or long form, any
/// case, any digit width, blanks around the numbers.
fn written() -> impl Strategy<Value = (HidePattern, String)> {
    (
        pattern(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        proptest::collection::vec(blanks(), 8),
    )
        .prop_map(|(p, long, padded, upper, b)| {
            let seg = hex(Some(p.seg.into()), 4, padded, upper);
            let bus = hex(Some(p.bus.into()), 2, padded, upper);
            let dev = hex(p.dev.map(u32::from), 2, padded, upper);
            let func = hex(p.func.map(u32::from), 1, padded, upper);
            let prefix = if long || p.seg != 0 {
                format!("{}{seg}{}:", b[0], b[1])
            } else {
                b[0].clone()
            };
            let text = format!(
                "({prefix}{}{bus}{}:{}{dev}{}.{}{func}{})",
                b[2], b[3], b[4], b[5], b[6], b[7]
            );
            (p, text)
        })
}

/// Text built from the characters of the syntax, so that it comes close to
/// valid entries.
fn near_miss() -> impl Strategy<Value = String> {
    "[()0-9a-fA-F:.* \t,x]{0,24}"
}

fn garbage() -> impl Strategy<Value = String> {
    prop_oneof![near_miss(), any::<String>()]
}

/// The invariants of every parse, valid or not.
fn check_errors(value: &str, errors: &[HideError]) -> Result<(), TestCaseError> {
    let mut last = None;
    for e in errors {
        prop_assert!(e.position < value.len(), "{e:?} outside {value:?}");
        prop_assert!(value.is_char_boundary(e.position), "{e:?} in {value:?}");
        prop_assert!(
            value[e.position..].starts_with(&e.text),
            "{e:?}: text is not the input at its position in {value:?}"
        );
        prop_assert!(!e.text.is_empty(), "{e:?}");
        prop_assert!(last < Some(e.position), "errors out of order: {errors:?}");
        last = Some(e.position);
        // Display never panics either.
        let _ = e.to_string();
    }
    Ok(())
}

proptest! {
    #[test]
    fn displayed_pattern_parses_back_to_itself(p in pattern()) {
        prop_assert_eq!(p.to_string().parse::<HidePattern>(), Ok(p));
    }

    #[test]
    fn displayed_list_joined_with_blanks_parses_back_without_errors(
        items in proptest::collection::vec((pattern(), blanks()), 0..10),
        lead in blanks(),
    ) {
        let mut value = lead;
        for (p, sep) in &items {
            value.push_str(&p.to_string());
            value.push_str(sep);
        }
        let (list, errors) = parse_hide_list(&value);
        prop_assert_eq!(errors, []);
        let mut distinct: Vec<HidePattern> = Vec::new();
        for (p, _) in &items {
            if !distinct.contains(p) {
                distinct.push(*p);
            }
        }
        prop_assert_eq!(list.duplicates.len(), items.len() - distinct.len());
        prop_assert_eq!(list.entries, distinct);
    }

    #[test]
    fn any_well_formed_spelling_parses_to_its_pattern((p, text) in written()) {
        prop_assert_eq!(text.parse::<HidePattern>(), Ok(p), "{}", text);
    }

    #[test]
    fn arbitrary_text_never_panics_and_errors_point_into_it(value in any::<String>()) {
        let (_, errors) = parse_hide_list(&value);
        check_errors(&value, &errors)?;
        let _ = value.parse::<HidePattern>();
    }

    #[test]
    fn near_miss_text_never_panics_and_errors_point_into_it(value in near_miss()) {
        let (_, errors) = parse_hide_list(&value);
        check_errors(&value, &errors)?;
        let _ = value.parse::<HidePattern>();
    }

    #[test]
    fn valid_entries_survive_garbage_around_them(
        items in proptest::collection::vec(
            prop_oneof![
                written().prop_map(|(p, text)| (Some(p), text)),
                garbage().prop_map(|g| (None, g)),
            ],
            0..10,
        ),
    ) {
        let value = items
            .iter()
            .map(|(_, text)| text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let (list, errors) = parse_hide_list(&value);
        check_errors(&value, &errors)?;
        for p in items.iter().filter_map(|(p, _)| *p) {
            prop_assert!(list.entries.contains(&p), "{} lost in {:?}", p, value);
        }
    }
}
