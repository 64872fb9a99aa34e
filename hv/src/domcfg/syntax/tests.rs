//! The syntax: strings, lists, separators, syntax errors and recovery, and
//! the cost of hostile text.

use alloc::string::String;

use crate::domcfg::testutil::{
    config, config_and_warnings, errors, errors_with_base, plain, with_base, BASE,
};
use crate::domcfg::{parse, PciAssignment};

#[test]
fn single_and_double_quotes_with_escaped_quote_and_backslash() {
    let c = with_base(r#"cmdline = 'it\'s "fine" \\ ok'"#);
    assert_eq!(c.cmdline, r#"it's "fine" \ ok"#);
    let c = with_base(r#"cmdline = "say \"hi\" it's""#);
    assert_eq!(c.cmdline, r#"say "hi" it's"#);
    let c = with_base("cmdline = 'caf\u{e9} # not a comment'");
    assert_eq!(c.cmdline, "caf\u{e9} # not a comment");
}

#[test]
fn multi_line_list_with_comments_inside_and_a_trailing_comma() {
    let c = with_base(
        "pci = [\n\
         \x20   # the edu device\n\
         \x20   '00:03.0', # first\n\
         \n\
         \x20   '00:04.0,seize=1' ,\n\
         ]  # done\n\
         memory = 32\n",
    );
    let seized = PciAssignment {
        seize: true,
        ..plain("00:04.0")
    };
    assert_eq!(c.pci, [plain("00:03.0"), seized]);
    assert_eq!(c.memory_mib, 32);
    assert_eq!(with_base("pci = []").pci, []);
}

#[test]
fn semicolons_separate_settings_like_xl() {
    let c = config("name = 'g'; kernel = 'k'; memory = 16;\n;vcpus = 2 # two");
    assert_eq!((c.memory_mib, c.vcpus), (16, 2));
}

#[test]
fn crlf_line_endings_and_a_byte_order_mark_are_accepted() {
    let c = config("\u{feff}name = 'g'\r\nkernel = 'k'\r\npci = [\r\n '00:03.0',\r\n]\r\n");
    assert_eq!(c.pci, [plain("00:03.0")]);
}

#[test]
fn syntax_errors_have_their_own_messages() {
    let e = errors_with_base(
        "memory 64\n\
         vcpus =\n\
         = 5\n\
         cmdline = \"open\n\
         extra = 'C:\\dir'\n\
         root = 'a\u{0}b'\n\
         on_crash = 'destroy' 'restart'\n\
         pci = ['00:03.0' '00:04.0']\n\
         disk = [ , 'x']\n\
         vif = ['x'; 'y']\n\
         serial = ]\n",
    );
    assert_eq!(
        e,
        [
            "g.cfg:3: memory: expected '=' after the key",
            "g.cfg:4: vcpus: missing value after '='",
            "g.cfg:5: expected 'key = value', found '= 5'",
            "g.cfg:6: cmdline: the string opened with \" is not closed on its line",
            "g.cfg:7: extra: unsupported escape '\\d' in a string (only \\\\ and a backslash before the quote are understood)",
            "g.cfg:8: root: control character U+0000 in a string",
            "g.cfg:9: on_crash = 'destroy': unexpected ''restart'' after the value",
            "g.cfg:10: pci: missing ',' between list items",
            "g.cfg:11: disk: a list item is missing before ','",
            "g.cfg:12: vif: unexpected ';'",
            "g.cfg:13: serial: unexpected ']'",
        ]
    );
}

#[test]
fn unclosed_list_is_reported_and_the_next_setting_is_still_read() {
    assert_eq!(
        errors("name = 'g'\npci = [ '00:03.0',\n  '00:04.0'\nkernel = 'k'\nmemory = 'x'"),
        [
            "g.cfg:2: pci: the list is not closed: add ']' before line 4",
            "g.cfg:5: memory = 'x': expected a number of MiB",
        ]
    );
    assert_eq!(
        errors_with_base("pci = [ '00:03.0', # the end"),
        ["g.cfg:3: pci: the list is not closed: add ']' at its end"]
    );
}

#[test]
fn reading_resumes_after_a_broken_list() {
    let e = errors_with_base("pci = [ '00:03.0' = '00:04.0',\n  'x' ] memory = 5\nvcpus = 'x'");
    assert_eq!(
        e,
        [
            "g.cfg:3: pci: unexpected '='",
            "g.cfg:4: pci: unexpected 'memory = 5' after the value",
            "g.cfg:5: vcpus = 'x': expected a number of vCPUs",
        ]
    );
}

#[test]
fn nested_lists_are_accepted_up_to_a_depth() {
    let (_, w) = config_and_warnings(&(String::from(BASE) + "cpuid = [[[[[[[['x']]]]]]]]"));
    assert_eq!(w.len(), 1);
    assert_eq!(
        errors_with_base("cpuid = [[[[[[[[['x']]]]]]]]]\nmemory = 'y'"),
        [
            "g.cfg:3: cpuid: lists nested more than 8 deep",
            "g.cfg:4: memory = 'y': expected a number of MiB",
        ]
    );
}

#[test]
fn a_megabyte_of_hostile_text_is_parsed_quickly() {
    let mb = 1 << 20;
    for unit in [
        "[",
        "x = [\n",
        "'",
        "a",
        "=\n",
        "#",
        "x=['a',[",
        "\n",
        "memroy = 1\n",
    ] {
        let text = unit.repeat(mb / unit.len());
        let start = std::time::Instant::now();
        let _ = parse("big.cfg", &text);
        assert!(
            start.elapsed().as_secs() < 5,
            "{unit:?} took {:?}",
            start.elapsed()
        );
    }
    let mut big = String::from(BASE);
    big.push_str("pci = [\n");
    for i in 0..40_000u32 {
        let (bus, dev) = (i / 256, (i / 8) % 32);
        big.push_str(&alloc::format!(
            "  '{:04x}:{:02x}:{dev:02x}.{}',\n",
            i >> 16,
            bus & 0xff,
            i % 8
        ));
    }
    big.push(']');
    assert!(big.len() > mb / 2);
    let (c, _) = parse("big.cfg", &big).unwrap();
    assert_eq!(c.pci.len(), 40_000);
}
