use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::*;

fn sbdf(seg: u16, bus: u8, dev: u8, func: u8) -> Sbdf {
    Sbdf::new(seg, bus, dev, func).unwrap()
}

fn pat(seg: u16, bus: u8, dev: Option<u8>, func: Option<u8>) -> HidePattern {
    HidePattern {
        seg,
        bus,
        dev,
        func,
    }
}

/// Parses a value that must have no errors.
fn entries(value: &str) -> Vec<HidePattern> {
    let (list, errors) = parse_hide_list(value);
    assert_eq!(errors, [], "{value:?}");
    list.entries
}

/// Parses a value that must give exactly one error and no entry.
fn only_error(value: &str) -> HideError {
    let (list, mut errors) = parse_hide_list(value);
    assert_eq!(list.entries, [], "{value:?}");
    assert_eq!(errors.len(), 1, "{value:?}: {errors:?}");
    errors.remove(0)
}

fn reason(value: &str) -> HideErrorKind {
    only_error(value).reason
}

// Accepted forms.

#[test]
fn netbsd_short_form_is_segment_zero() {
    assert_eq!(entries("(00:03.0)"), [pat(0, 0, Some(3), Some(0))]);
}

#[test]
fn linux_long_form_keeps_the_segment() {
    assert_eq!(entries("(0001:02:1f.7)"), [pat(1, 2, Some(0x1f), Some(7))]);
}

#[test]
fn numbers_are_hexadecimal_in_either_case() {
    assert_eq!(
        entries("(00aB:Cd:1F.7)"),
        [pat(0xab, 0xcd, Some(0x1f), Some(7))]
    );
}

#[test]
fn single_digit_numbers_are_accepted() {
    assert_eq!(entries("(1:3.1)"), [pat(0, 1, Some(3), Some(1))]);
    assert_eq!(entries("(2:1:3.1)"), [pat(2, 1, Some(3), Some(1))]);
}

#[test]
fn function_wildcard_is_accepted() {
    assert_eq!(entries("(00:03.*)"), [pat(0, 0, Some(3), None)]);
}

#[test]
fn device_and_function_wildcards_are_accepted() {
    assert_eq!(entries("(00:*.*)"), [pat(0, 0, None, None)]);
}

#[test]
fn device_wildcard_with_a_fixed_function_is_accepted() {
    assert_eq!(entries("(0000:02:*.0)"), [pat(0, 2, None, Some(0))]);
}

#[test]
fn entries_may_be_adjacent_or_separated_by_spaces_and_tabs() {
    let want = [
        pat(0, 0, Some(3), Some(0)),
        pat(0, 0, Some(4), Some(0)),
        pat(0, 0, Some(5), Some(0)),
    ];
    assert_eq!(entries("(00:03.0)(00:04.0)(00:05.0)"), want);
    assert_eq!(entries("(00:03.0) (00:04.0)\t \t(00:05.0)"), want);
    assert_eq!(entries("  (00:03.0) (00:04.0) (00:05.0)\t"), want);
}

#[test]
fn blanks_inside_parentheses_around_the_numbers_are_tolerated() {
    assert_eq!(entries("( 00:03.0 )"), [pat(0, 0, Some(3), Some(0))]);
    assert_eq!(entries("(\t0001 : 00 :03. * )"), [pat(1, 0, Some(3), None)]);
}

#[test]
fn empty_value_hides_nothing_without_errors() {
    for value in ["", "   ", "\t"] {
        let (list, errors) = parse_hide_list(value);
        assert!(list.is_empty() && errors.is_empty(), "{value:?}");
    }
}

#[test]
fn duplicate_entries_are_kept_once_and_listed_as_duplicates() {
    let (list, errors) = parse_hide_list("(00:03.0) (0000:00:03.0) (00:04.0) (00:03.0)");
    assert_eq!(errors, []);
    let p3 = pat(0, 0, Some(3), Some(0));
    assert_eq!(list.entries, [p3, pat(0, 0, Some(4), Some(0))]);
    assert_eq!(
        list.duplicates,
        [
            Duplicate {
                position: 10,
                pattern: p3
            },
            Duplicate {
                position: 35,
                pattern: p3
            }
        ]
    );
    assert_eq!(
        list.duplicates[0].to_string(),
        "pciback.hide: entry (0000:00:03.0) at column 11 repeats an earlier entry; it applies once"
    );
}

#[test]
fn overlapping_but_different_entries_are_both_kept() {
    assert_eq!(
        entries("(00:03.*) (00:03.0)"),
        [pat(0, 0, Some(3), None), pat(0, 0, Some(3), Some(0))]
    );
}

// Display and FromStr.

#[test]
fn display_is_the_linux_long_form_with_stars_for_wildcards() {
    assert_eq!(pat(0, 0, Some(3), Some(0)).to_string(), "(0000:00:03.0)");
    assert_eq!(pat(0xabcd, 0xef, None, None).to_string(), "(abcd:ef:*.*)");
    assert_eq!(pat(1, 2, None, Some(7)).to_string(), "(0001:02:*.7)");
    assert_eq!(pat(0, 0, Some(0x1f), None).to_string(), "(0000:00:1f.*)");
}

#[test]
fn from_str_parses_one_entry_with_surrounding_blanks() {
    assert_eq!(" (00:03.1) ".parse(), Ok(pat(0, 0, Some(3), Some(1))));
    let exact = HidePattern::exact(sbdf(2, 3, 4, 5));
    assert_eq!(exact.to_string().parse(), Ok(exact));
}

#[test]
fn from_str_rejects_no_entry_a_second_entry_and_a_bad_entry() {
    let none = "  ".parse::<HidePattern>().unwrap_err();
    assert_eq!(none.reason, HideErrorKind::NoEntry);
    let two = "(00:03.0) (00:04.0)".parse::<HidePattern>().unwrap_err();
    assert_eq!((two.position, two.reason), (10, HideErrorKind::ExtraEntry));
    assert_eq!(two.text, "(00:04.0)");
    let bad = "(00:20.0)".parse::<HidePattern>().unwrap_err();
    assert!(matches!(bad.reason, HideErrorKind::OutOfRange { .. }));
    let stray = "00:03.0".parse::<HidePattern>().unwrap_err();
    assert_eq!(stray.reason, HideErrorKind::Stray);
}

// Malformed input.

#[test]
fn missing_close_paren_reports_the_rest_and_keeps_earlier_entries() {
    let (list, errors) = parse_hide_list("(00:03.0) (00:04.0 ");
    assert_eq!(list.entries, [pat(0, 0, Some(3), Some(0))]);
    assert_eq!(
        errors,
        [HideError {
            position: 10,
            text: "(00:04.0".into(),
            reason: HideErrorKind::Unterminated
        }]
    );
}

#[test]
fn stray_text_is_reported_once_and_skipped_to_the_next_entry() {
    let (list, errors) = parse_hide_list("(00:03.0), junk here (00:04.0) tail");
    assert_eq!(
        list.entries,
        [pat(0, 0, Some(3), Some(0)), pat(0, 0, Some(4), Some(0))]
    );
    let got: Vec<(usize, &str, &HideErrorKind)> = errors
        .iter()
        .map(|e| (e.position, e.text.as_str(), &e.reason))
        .collect();
    assert_eq!(
        got,
        [
            (9, ", junk here", &HideErrorKind::Stray),
            (31, "tail", &HideErrorKind::Stray)
        ]
    );
}

#[test]
fn address_without_parentheses_is_stray_text() {
    let e = only_error("00:03.0");
    assert_eq!((e.position, e.text.as_str()), (0, "00:03.0"));
    assert_eq!(e.reason, HideErrorKind::Stray);
}

#[test]
fn stray_close_paren_is_stray_text_and_the_entry_still_applies() {
    let (list, errors) = parse_hide_list("(00:03.0))");
    assert_eq!(list.entries, [pat(0, 0, Some(3), Some(0))]);
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].position, errors[0].text.as_str()), (9, ")"));
}

#[test]
fn empty_entry_is_an_error() {
    assert_eq!(reason("()"), HideErrorKind::Empty);
    assert_eq!(reason("( \t )"), HideErrorKind::Empty);
}

#[test]
fn non_hex_device_is_an_error() {
    let e = only_error("(00:zz.0)");
    assert_eq!(
        e.reason,
        HideErrorKind::NotHex {
            field: Field::Device,
            digits: "zz".into()
        }
    );
}

#[test]
fn non_hex_segment_bus_and_function_are_errors() {
    let not_hex = |field, digits: &str| HideErrorKind::NotHex {
        field,
        digits: digits.into(),
    };
    assert_eq!(reason("(g:00:03.0)"), not_hex(Field::Segment, "g"));
    assert_eq!(reason("(0g:03.0)"), not_hex(Field::Bus, "0g"));
    assert_eq!(reason("(00:03.-1)"), not_hex(Field::Function, "-1"));
    assert_eq!(reason("(00:03.0.1)"), not_hex(Field::Function, "0.1"));
    assert_eq!(reason("(00:0 3.0)"), not_hex(Field::Device, "0 3"));
    assert_eq!(reason("(00:+3.0)"), not_hex(Field::Device, "+3"));
}

#[test]
fn device_above_1f_is_out_of_range() {
    assert_eq!(
        reason("(00:20.0)"),
        HideErrorKind::OutOfRange {
            field: Field::Device,
            digits: "20".into()
        }
    );
}

#[test]
fn function_above_7_is_out_of_range() {
    assert_eq!(
        reason("(00:03.8)"),
        HideErrorKind::OutOfRange {
            field: Field::Function,
            digits: "8".into()
        }
    );
}

#[test]
fn bus_above_ff_is_out_of_range() {
    assert_eq!(
        reason("(100:03.0)"),
        HideErrorKind::OutOfRange {
            field: Field::Bus,
            digits: "100".into()
        }
    );
}

#[test]
fn segment_above_ffff_is_out_of_range_even_when_it_overflows() {
    let out = |digits: &str| HideErrorKind::OutOfRange {
        field: Field::Segment,
        digits: digits.into(),
    };
    assert_eq!(reason("(10000:00:03.0)"), out("10000"));
    let huge = "fffffffffffffffffffffffffffff";
    assert_eq!(reason(&alloc::format!("({huge}:00:03.0)")), out(huge));
}

#[test]
fn leading_zeros_beyond_the_field_width_are_rejected() {
    let long = |field, digits: &str| HideErrorKind::TooManyDigits {
        field,
        digits: digits.into(),
    };
    assert_eq!(reason("(000:03.0)"), long(Field::Bus, "000"));
    assert_eq!(reason("(00:003.0)"), long(Field::Device, "003"));
    assert_eq!(reason("(00:03.00)"), long(Field::Function, "00"));
    assert_eq!(reason("(00000:00:03.0)"), long(Field::Segment, "00000"));
}

#[test]
fn too_many_colons_is_an_error() {
    assert_eq!(
        reason("(0:0:00:03.0)"),
        HideErrorKind::WrongColons { colons: 3 }
    );
}

#[test]
fn too_few_colons_is_an_error() {
    assert_eq!(reason("(03.0)"), HideErrorKind::WrongColons { colons: 0 });
}

#[test]
fn missing_dot_is_an_error() {
    assert_eq!(reason("(00:03)"), HideErrorKind::MissingDot);
    assert_eq!(reason("(0000:00:030)"), HideErrorKind::MissingDot);
}

#[test]
fn missing_number_is_an_error() {
    let missing = |field| HideErrorKind::MissingNumber { field };
    assert_eq!(reason("(:03.0)"), missing(Field::Bus));
    assert_eq!(reason("( :00:03.0)"), missing(Field::Segment));
    assert_eq!(reason("(00:.0)"), missing(Field::Device));
    assert_eq!(reason("(00:03. )"), missing(Field::Function));
}

#[test]
fn wildcard_bus_or_segment_is_rejected() {
    let wild = |field| HideErrorKind::Wildcard { field };
    assert_eq!(reason("(*:03.0)"), wild(Field::Bus));
    assert_eq!(reason("(0000:*:*.*)"), wild(Field::Bus));
    assert_eq!(reason("(*:00:03.0)"), wild(Field::Segment));
}

#[test]
fn nested_paren_reports_the_outer_entry_and_keeps_the_inner_one() {
    let (list, errors) = parse_hide_list("(00:03.0 (00:04.0)");
    assert_eq!(list.entries, [pat(0, 0, Some(4), Some(0))]);
    assert_eq!(
        errors,
        [HideError {
            position: 0,
            text: "(00:03.0".into(),
            reason: HideErrorKind::Nested
        }]
    );
}

#[test]
fn doubled_parentheses_report_both_extra_parens_and_keep_the_entry() {
    let (list, errors) = parse_hide_list("((00:03.0))");
    assert_eq!(list.entries, [pat(0, 0, Some(3), Some(0))]);
    let got: Vec<(usize, &str, &HideErrorKind)> = errors
        .iter()
        .map(|e| (e.position, e.text.as_str(), &e.reason))
        .collect();
    assert_eq!(
        got,
        [
            (0, "(", &HideErrorKind::Nested),
            (10, ")", &HideErrorKind::Stray)
        ]
    );
}

#[test]
fn positions_are_byte_offsets_past_multibyte_characters() {
    let value = "é(00:03.0)ü (00:zz.0)";
    let (list, errors) = parse_hide_list(value);
    assert_eq!(list.entries, [pat(0, 0, Some(3), Some(0))]);
    let got: Vec<(usize, &str)> = errors
        .iter()
        .map(|e| (e.position, e.text.as_str()))
        .collect();
    assert_eq!(got, [(0, "é"), (11, "ü"), (14, "(00:zz.0)")]);
    for e in &errors {
        assert_eq!(&value[e.position..e.position + e.text.len()], e.text);
    }
}

#[test]
fn every_entry_bad_gives_an_empty_list_and_one_error_each() {
    let (list, errors) = parse_hide_list("(00:20.0) (*:00.0) () (00:03");
    assert!(list.is_empty());
    assert_eq!(errors.len(), 4);
}

// Messages.

fn message(value: &str) -> String {
    only_error(value).to_string()
}

#[test]
fn messages_name_the_entry_column_reason_and_consequence() {
    assert_eq!(
        message("(00:zz.0)"),
        "pciback.hide: entry '(00:zz.0)' at column 1: device 'zz' is not a hexadecimal number \
         00..1f; entry ignored, the others still apply"
    );
    let (_, errors) = parse_hide_list("(00:03.0) junk (00:04.0)");
    assert_eq!(
        errors[0].to_string(),
        "pciback.hide: text 'junk' at column 11: text outside parentheses: each address goes in \
         its own parentheses, like '(00:03.0)' or '(0000:00:03.0)', separated by spaces; text \
         skipped, the entries still apply"
    );
}

#[test]
fn every_reason_reads_as_a_sentence() {
    let cases = [
        (
            "(00:03.0",
            "no closing ')': the entry runs to the end of the option",
        ),
        (
            "()",
            "empty entry: expected '(bb:dd.f)' or '(dddd:bb:dd.f)'",
        ),
        (
            "(03.0)",
            "no ':' in the address: expected '(bb:dd.f)' or '(dddd:bb:dd.f)'",
        ),
        (
            "(0:0:0:03.0)",
            "3 ':' in the address, at most 2: expected '(bb:dd.f)' or '(dddd:bb:dd.f)'",
        ),
        (
            "(00:03)",
            "no '.' between device and function: expected '(bb:dd.f)' or '(dddd:bb:dd.f)'",
        ),
        (
            "(00:.0)",
            "the device number is missing: expected '(bb:dd.f)' or '(dddd:bb:dd.f)'",
        ),
        (
            "(0x00:03.0)",
            "bus '0x00' is not a hexadecimal number 00..ff (write it without '0x')",
        ),
        ("(00:03.8)", "function '8' is out of range 0..7"),
        (
            "(10000:00:03.0)",
            "segment '10000' is out of range 0000..ffff",
        ),
        ("(000:03.0)", "bus '000' has more than 2 hexadecimal digits"),
        (
            "(00:03.00)",
            "function '00' has more than 1 hexadecimal digit",
        ),
        (
            "(*:03.0)",
            "'*' is not accepted for the bus: only the device and the function may be '*'",
        ),
    ];
    for (value, want) in cases {
        assert_eq!(only_error(value).reason.to_string(), want, "{value:?}");
    }
    let (_, errors) = parse_hide_list("(00:03.0 (00:04.0)");
    assert_eq!(
        errors[0].to_string(),
        "pciback.hide: entry '(00:03.0' at column 1: '(' inside an entry: is this entry's ')' \
         missing?; entry ignored, the others still apply"
    );
    let extra = "(00:03.0)(00:04.0)".parse::<HidePattern>().unwrap_err();
    assert_eq!(
        extra.to_string(),
        "pciback.hide: entry '(00:04.0)' at column 10: a second entry where exactly one was \
         expected"
    );
    let none = "".parse::<HidePattern>().unwrap_err();
    assert_eq!(
        none.to_string(),
        "pciback.hide: text '' at column 1: no entry: expected '(bb:dd.f)' or '(dddd:bb:dd.f)'"
    );
}

#[test]
fn messages_escape_control_characters_and_cut_long_text() {
    let e = only_error("\u{1b}[31m");
    assert!(e
        .to_string()
        .starts_with("pciback.hide: text '\\u{1b}[31m' at column 1"));
    let long = "x".repeat(100);
    let shown = only_error(&long).to_string();
    assert!(
        shown.contains(&alloc::format!("'{}...'", "x".repeat(60))),
        "{shown}"
    );
}

// Matching.

#[test]
fn exact_pattern_matches_only_its_function() {
    let p = HidePattern::exact(sbdf(0, 0, 3, 0));
    assert!(p.matches(sbdf(0, 0, 3, 0)));
    assert!(!p.matches(sbdf(0, 0, 3, 1)));
    assert!(!p.matches(sbdf(0, 0, 4, 0)));
    assert!(!p.matches(sbdf(0, 1, 3, 0)));
    assert!(!p.matches(sbdf(1, 0, 3, 0)));
}

#[test]
fn wildcards_match_every_device_or_function_on_the_same_bus_only() {
    let all_functions = pat(0, 0, Some(3), None);
    assert!((0..8).all(|f| all_functions.matches(sbdf(0, 0, 3, f))));
    assert!(!all_functions.matches(sbdf(0, 0, 4, 0)));
    let function_zero_everywhere = pat(0, 2, None, Some(0));
    assert!((0..32).all(|d| function_zero_everywhere.matches(sbdf(0, 2, d, 0))));
    assert!(!function_zero_everywhere.matches(sbdf(0, 2, 5, 1)));
    let whole_bus = pat(1, 2, None, None);
    assert!(whole_bus.matches(sbdf(1, 2, 0x1f, 7)));
    assert!(!whole_bus.matches(sbdf(0, 2, 0, 0)));
    assert!(!whole_bus.matches(sbdf(1, 3, 0, 0)));
}

#[test]
fn find_reports_a_direct_match_with_its_entry_index() {
    let list = parse_hide_list("(00:03.0) (00:04.*)").0;
    assert_eq!(list.find(sbdf(0, 0, 4, 2), &[]), Some(HideMatch::Direct(1)));
    assert_eq!(list.find(sbdf(0, 0, 5, 0), &[]), None);
}

#[test]
fn find_reports_the_nearest_listed_upstream_bridge() {
    // 00:01.0 -> 01:00.0 -> 02:00.0 (the device), both bridges listed.
    let list = parse_hide_list("(00:01.0) (01:00.0)").0;
    let dev = sbdf(0, 2, 0, 0);
    let bridges = [sbdf(0, 1, 0, 0), sbdf(0, 0, 1, 0)];
    assert_eq!(
        list.find(dev, &bridges),
        Some(HideMatch::ViaBridge {
            bridge: sbdf(0, 1, 0, 0),
            pattern: 1
        })
    );
    assert_eq!(
        list.find(dev, &bridges).and_then(HideMatch::pattern),
        Some(1)
    );
    // A listed bridge is itself a direct match: the caller keeps it forwarding.
    assert_eq!(list.find(sbdf(0, 0, 1, 0), &[]), Some(HideMatch::Direct(0)));
}

#[test]
fn find_prefers_a_direct_match_over_a_bridge() {
    let list = parse_hide_list("(00:01.0) (02:00.0)").0;
    assert_eq!(
        list.find(sbdf(0, 2, 0, 0), &[sbdf(0, 0, 1, 0)]),
        Some(HideMatch::Direct(1))
    );
}

#[test]
fn unmatched_lists_the_entries_that_match_no_present_function() {
    let list = parse_hide_list("(00:03.0) (00:09.0) (00:04.*) (01:*.*)").0;
    let present = [sbdf(0, 0, 3, 0), sbdf(0, 0, 4, 1), sbdf(0, 0, 0x1f, 0)];
    let unmatched = list.unmatched(&present);
    assert_eq!(
        unmatched,
        [&pat(0, 0, Some(9), Some(0)), &pat(0, 1, None, None)]
    );
    assert_eq!(
        unmatched[0].no_match_warning().to_string(),
        "pciback.hide: (0000:00:09.0) matches no PCI function; check the address with the boot \
         log's PCI table"
    );
}

#[test]
fn a_seized_function_names_no_entry() {
    assert_eq!(HideMatch::Seized.pattern(), None);
    assert_eq!(HideMatch::Shell.pattern(), None);
    assert_eq!(HideMatch::Direct(2).pattern(), Some(2));
}
