//! The byte walker: PkgLength, names, data, definitions, method bodies.

use alloc::vec;

use super::*;
use crate::acpi::aml::cursor::Cursor;
use crate::acpi::aml::{
    AmlErrorKind, AmlPath, NameSeg, Namespace, ObjectKind, Returned, ValueKind,
};

fn cursor(bytes: &[u8]) -> Cursor<'_> {
    Cursor::new(bytes, 0, 0, bytes.len())
}

#[test]
fn pkg_lengths_of_one_to_four_bytes_give_the_object_end() {
    // One byte: the length is bits 5:0.
    assert_eq!(cursor(&[0x05, 0, 0, 0, 0]).pkg_length(), Ok(5));
    // Two bytes: low nibble, then the next byte shifted by 4.
    let mut two = vec![0x42, 0x01];
    two.resize(0x12, 0);
    assert_eq!(cursor(&two).pkg_length(), Ok(0x12));
    // Four bytes.
    let mut four = vec![0xc3, 0x21, 0x00, 0x00];
    four.resize(0x213, 0);
    assert_eq!(cursor(&four).pkg_length(), Ok(0x213));
    // The helper agrees with the decoder at every size class.
    for body in [0usize, 62, 63, 4000, 5000, 70000] {
        let mut obj = pkg_length(body);
        let head = obj.len();
        obj.resize(head + body, 0);
        assert_eq!(cursor(&obj).pkg_length(), Ok(head + body), "{body}");
    }
}

#[test]
fn bad_pkg_lengths_are_errors_with_their_offset() {
    // Reserved bits 5:4 set in a multi-byte PkgLength.
    let e = cursor(&[0x70, 0x01, 0, 0]).pkg_length().unwrap_err();
    assert_eq!((e.offset, e.kind), (0, AmlErrorKind::BadPkgLength));
    // Shorter than the PkgLength itself.
    let e = cursor(&[0x40, 0x00]).pkg_length().unwrap_err();
    assert_eq!(e.kind, AmlErrorKind::BadPkgLength);
    // Past the container.
    let mut c = cursor(&[0, 0, 0x09, 0, 0]);
    c.pos = 2;
    assert_eq!(c.pkg_length().unwrap_err().offset, 2);
    // The following bytes are missing.
    assert_eq!(
        cursor(&[0x80, 0x01]).pkg_length().unwrap_err().kind,
        AmlErrorKind::Truncated
    );
}

#[test]
fn name_strings_of_every_shape() {
    let seg = |s: &[u8; 4]| NameSeg(*s);
    let n = cursor(&name("\\_SB.PCI0._PRT")).name_string().unwrap();
    assert!(n.root);
    assert_eq!(n.segs, [seg(b"_SB_"), seg(b"PCI0"), seg(b"_PRT")]);
    let n = cursor(&name("^^LNKA")).name_string().unwrap();
    assert_eq!((n.root, n.parents, n.segs.len()), (false, 2, 1));
    let n = cursor(&name("PCI0.ISA")).name_string().unwrap();
    assert_eq!(n.segs, [seg(b"PCI0"), seg(b"ISA_")]);
    let n = cursor(&name("\\")).name_string().unwrap();
    assert!(n.root && n.segs.is_empty());
    assert_eq!(format!("{n}"), "\\");
    assert_eq!(
        format!("{}", cursor(&name("^A.B.C")).name_string().unwrap()),
        "^A___.B___.C___"
    );
}

#[test]
fn bad_names_are_errors() {
    // A lower-case letter, a leading digit, a zero-count multi-name.
    for bytes in [
        &b"abcd"[..],
        b"1ABC",
        &[0x2f, 0x00],
        b"AB\x00D",
        &[0x5c, 0x2e, b'A'],
    ] {
        assert!(cursor(bytes).name_string().is_err(), "{bytes:x?}");
    }
}

#[test]
fn integer_constants_decode() {
    let aml = cat(&[
        name_op("ZERO", &[0x00]),
        name_op("ONE", &[0x01]),
        name_op("ONES", &[0xff]),
        name_op("BYTE", &[0x0a, 0x12]),
        name_op("WORD", &[0x0b, 0x34, 0x12]),
        name_op("DWRD", &[0x0c, 0x78, 0x56, 0x34, 0x12]),
        name_op("QWRD", &int(0x1122_3344_5566_7788)),
        name_op("STR", &[0x0d, b'h', b'i', 0]),
    ]);
    let t = dsdt(&aml);
    let ns = Namespace::build(&t, &[]).unwrap();
    let value = |p: &str| match &ns.find(p).unwrap().kind {
        ObjectKind::Name(v) => v.kind.clone(),
        k => panic!("{p}: {k:?}"),
    };
    assert_eq!(value("ZERO"), ValueKind::Integer(0));
    assert_eq!(value("ONE"), ValueKind::Integer(1));
    assert_eq!(value("ONES"), ValueKind::Integer(u64::MAX));
    assert_eq!(value("BYTE"), ValueKind::Integer(0x12));
    assert_eq!(value("WORD"), ValueKind::Integer(0x1234));
    assert_eq!(value("DWRD"), ValueKind::Integer(0x1234_5678));
    assert_eq!(value("QWRD"), ValueKind::Integer(0x1122_3344_5566_7788));
    assert_eq!(value("STR"), ValueKind::String(b"hi".to_vec()));
    assert!(ns.errors().is_empty());
}

#[test]
fn packages_buffers_and_var_packages_decode() {
    let var_package = with_pkg(&[0x13], &cat(&[int(2), int(7), name("LNKA")]));
    let aml = cat(&[
        name_op("PKG", &package(&[int(1), package(&[int(2)]), name("\\X")])),
        name_op("BUF", &buffer(&[1, 2, 3])),
        name_op("VAR", &var_package),
    ]);
    let t = dsdt(&aml);
    let ns = Namespace::build(&t, &[]).unwrap();
    let ObjectKind::Name(pkg) = &ns.find("PKG").unwrap().kind else {
        panic!()
    };
    let ValueKind::Package(items) = &pkg.kind else {
        panic!()
    };
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].as_integer(), Some(1));
    assert!(matches!(&items[1].kind, ValueKind::Package(inner) if inner.len() == 1));
    assert!(matches!(&items[2].kind, ValueKind::Name(n) if n.root));
    // Offsets are from the start of the table: the package's first
    // element follows `08 PKG_ 12 len count` after the 36-byte header.
    assert_eq!(items[0].offset, 36 + 1 + 4 + 3);
    let ObjectKind::Name(buf) = &ns.find("BUF").unwrap().kind else {
        panic!()
    };
    assert_eq!(buf.kind, ValueKind::Buffer(vec![1, 2, 3]));
    let ObjectKind::Name(var) = &ns.find("VAR").unwrap().kind else {
        panic!()
    };
    assert!(matches!(&var.kind, ValueKind::Package(v) if v.len() == 2));
}

#[test]
fn scopes_devices_and_methods_are_recorded_under_absolute_paths() {
    let aml = cat(&[scope(
        "\\_SB",
        &cat(&[
            device(
                "PCI0",
                &cat(&[
                    name_op("_ADR", &int(0)),
                    method("_STA", 0, &[0xa4, 0x0a, 0x0f]),
                    device("ISA", &name_op("_ADR", &int(0x001f_0000))),
                ]),
            ),
            scope("PCI0.ISA", &name_op("LATE", &int(5))),
            scope("^FOO", &name_op("UP", &int(6))),
        ]),
    )]);
    let t = dsdt(&aml);
    let ns = Namespace::build(&t, &[]).unwrap();
    assert!(ns.errors().is_empty(), "{:?}", ns.errors());
    assert_eq!(ns.find("\\_SB.PCI0").unwrap().kind, ObjectKind::Device);
    assert_eq!(ns.find("\\_SB.PCI0.ISA").unwrap().kind, ObjectKind::Device);
    assert!(ns.find("\\_SB.PCI0.ISA._ADR").is_some());
    assert!(ns.find("\\_SB.PCI0.ISA.LATE").is_some());
    assert!(ns.find("\\FOO.UP").is_some());
    let sta = ns.find("\\_SB.PCI0._STA").unwrap();
    let ObjectKind::Method { args, body } = &sta.kind else {
        panic!()
    };
    assert_eq!(*args, 0);
    assert_eq!(&t[body.clone()], &[0xa4, 0x0a, 0x0f]);
    // Nothing inside a method body is a namespace object.
    assert_eq!(ns.objects().len(), 7);
}

#[test]
fn a_bare_name_is_searched_for_upwards_and_other_names_are_not() {
    let aml = cat(&[scope(
        "\\_SB",
        &cat(&[
            name_op("LNKA", &int(1)),
            device("PCI0", &device("BR0", &name_op("X", &int(2)))),
        ]),
    )]);
    let t = dsdt(&aml);
    let ns = Namespace::build(&t, &[]).unwrap();
    let inner = AmlPath::parse("\\_SB.PCI0.BR0").unwrap();
    let found = |text: &str| {
        let bytes = name(text);
        let n = cursor(&bytes).name_string().unwrap();
        ns.resolve(&inner, &n).map(|o| o.path.clone())
    };
    assert_eq!(found("LNKA"), AmlPath::parse("\\_SB.LNKA"));
    assert_eq!(found("X"), AmlPath::parse("\\_SB.PCI0.BR0.X"));
    assert_eq!(found("^^LNKA"), AmlPath::parse("\\_SB.LNKA"));
    assert_eq!(found("^LNKA"), None);
    assert_eq!(found("PCI0.BR0"), None);
    assert_eq!(found("\\_SB.PCI0.BR0"), AmlPath::parse("\\_SB.PCI0.BR0"));
    assert_eq!(found("^^^^^X"), None);
}

#[test]
fn other_named_objects_are_stepped_over_and_recorded() {
    let region = cat(&[
        vec![0x5b, 0x80],
        name("REG0"),
        vec![0x01],
        int(0x402),
        int(1),
    ]);
    let field = with_pkg(
        &[0x5b, 0x81],
        &cat(&[name("REG0"), vec![0x01], name("DBGB"), vec![8]]),
    );
    let mutex = cat(&[vec![0x5b, 0x01], name("MTX0"), vec![0]]);
    let alias = cat(&[vec![0x06], name("REG0"), name("ALI0")]);
    let external = cat(&[vec![0x15], name("\\EXT0"), vec![8, 0]]);
    let iff = with_pkg(&[0xa0], &cat(&[int(1), name_op("COND", &int(1))]));
    let aml = cat(&[
        region,
        field,
        mutex,
        alias,
        external,
        iff,
        name_op("LAST", &int(9)),
    ]);
    let t = dsdt(&aml);
    let ns = Namespace::build(&t, &[]).unwrap();
    assert!(ns.errors().is_empty(), "{:?}", ns.errors());
    for p in ["REG0", "MTX0", "ALI0"] {
        assert_eq!(ns.find(p).unwrap().kind, ObjectKind::Other, "{p}");
    }
    // External declares nothing; an If's contents are not followed.
    assert!(ns.find("EXT0").is_none());
    assert!(ns.find("COND").is_none());
    assert!(ns.find("LAST").is_some());
}

#[test]
fn an_unknown_opcode_ends_its_term_list_but_not_the_enclosing_one() {
    let aml = cat(&[
        device(
            "DEV0",
            &cat(&[name_op("A", &int(1)), vec![0x02], name_op("B", &int(2))]),
        ),
        name_op("C", &int(3)),
    ]);
    let t = dsdt(&aml);
    let ns = Namespace::build(&t, &[]).unwrap();
    assert!(ns.find("DEV0.A").is_some());
    assert!(ns.find("DEV0.B").is_none());
    assert!(ns.find("C").is_some());
    let e = ns.errors();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].kind, AmlErrorKind::UnknownOpcode(0x02));
    assert_eq!(t[e[0].offset], 0x02);
}

#[test]
fn a_length_past_the_table_is_an_error_not_a_read() {
    let mut aml = device("DEV0", &name_op("A", &int(1)));
    aml[2] = 0x3f;
    let t = dsdt(&aml);
    let ns = Namespace::build(&t, &[]).unwrap();
    assert_eq!(ns.errors()[0].kind, AmlErrorKind::BadPkgLength);
    assert_eq!(ns.errors()[0].offset, 36 + 2);
    assert!(ns.objects().is_empty());
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let mut aml = name_op("X", &int(1));
    for _ in 0..200 {
        aml = scope("S", &aml);
    }
    let t = dsdt(&aml);
    let ns = Namespace::build(&t, &[]).unwrap();
    assert!(ns.errors().iter().any(|e| e.kind == AmlErrorKind::TooDeep));
    let mut pkg = int(1);
    for _ in 0..500 {
        pkg = package(&[pkg]);
    }
    let t = dsdt(&name_op("P", &pkg));
    let ns = Namespace::build(&t, &[]).unwrap();
    assert_eq!(ns.errors()[0].kind, AmlErrorKind::TooDeep);
}

#[test]
fn bad_table_headers_are_errors() {
    let t = dsdt(&name_op("X", &int(1)));
    assert_eq!(
        Namespace::build(&t[..20], &[]).unwrap_err().kind,
        AmlErrorKind::BadTableHeader
    );
    assert!(Namespace::build(&t[..t.len() - 1], &[]).is_err());
    let ssdt = table(b"SSDT", 2, &[]);
    let e = Namespace::build(&t, &[&ssdt, &ssdt[..30]]).unwrap_err();
    assert_eq!(e.table, 2);
}

#[test]
fn ssdt_objects_join_the_namespace() {
    let t = dsdt(&scope("\\_SB", &device("PCI0", &[])));
    let ssdt = table(b"SSDT", 2, &scope("\\_SB.PCI0", &name_op("EXTR", &int(4))));
    let ns = Namespace::build(&t, &[&ssdt]).unwrap();
    let o = ns.find("\\_SB.PCI0.EXTR").unwrap();
    assert_eq!(o.table, 1);
}

#[test]
fn method_returns_are_found_in_every_branch_and_calls_are_stepped_over() {
    // Method (_PRT) {
    //   Store (HELP (1, 2), Local0)
    //   If (LEqual (PICF, Zero)) { Return (PRTP) } Else { Return (PRTA) }
    //   Return (Package () { 1 })
    //   Return (Add (Local0, 1))
    // }
    let call = cat(&[name("HELP"), int(1), int(2)]);
    let store = cat(&[vec![0x70], call, vec![0x60]]);
    let pred = cat(&[vec![0x93], name("PICF"), int(0)]);
    let iff = with_pkg(&[0xa0], &cat(&[pred, return_name("PRTP")]));
    let els = with_pkg(&[0xa1], &return_name("PRTA"));
    let inline = cat(&[vec![0xa4], package(&[int(1)])]);
    let computed = cat(&[vec![0xa4, 0x72, 0x60], int(1), vec![0x00]]);
    let body = cat(&[store, iff, els, inline, computed]);
    let aml = cat(&[
        method("HELP", 2, &[0xa4, 0x00]),
        name_op("PICF", &int(0)),
        method("_PRT", 0, &body),
    ]);
    let t = dsdt(&aml);
    let ns = Namespace::build(&t, &[]).unwrap();
    let (found, err) = ns.method_returns(ns.find("_PRT").unwrap());
    assert_eq!(err, None);
    assert_eq!(found.len(), 4);
    assert!(matches!(&found[0], Returned::Name(n) if format!("{n}") == "PRTP"));
    assert!(matches!(&found[1], Returned::Name(n) if format!("{n}") == "PRTA"));
    assert!(matches!(&found[2], Returned::Data(v) if matches!(v.kind, ValueKind::Package(_))));
    assert!(matches!(found[3], Returned::Computed(_)));
}

#[test]
fn a_method_body_that_cannot_be_stepped_over_gives_what_came_before() {
    let body = cat(&[return_name("AAAA"), vec![0x03], return_name("BBBB")]);
    let t = dsdt(&method("M", 0, &body));
    let ns = Namespace::build(&t, &[]).unwrap();
    let (found, err) = ns.method_returns(ns.find("M").unwrap());
    assert_eq!(found.len(), 1);
    assert_eq!(err.unwrap().kind, AmlErrorKind::UnknownOpcode(0x03));
}
