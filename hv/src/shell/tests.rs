use super::*;
use alloc::vec;

fn feed(ed: &mut LineEditor, bytes: &[u8]) -> Vec<Typed> {
    bytes
        .iter()
        .map(|&b| ed.feed(b))
        .filter(|t| *t != Typed::Nothing)
        .collect()
}

fn lines(ed: &mut LineEditor, bytes: &[u8]) -> Vec<String> {
    feed(ed, bytes)
        .into_iter()
        .filter_map(|t| match t {
            Typed::Line(l, _) => Some(l),
            _ => None,
        })
        .collect()
}

#[test]
fn lines_end_at_cr_lf_or_crlf_once() {
    let mut ed = LineEditor::default();
    assert_eq!(
        lines(&mut ed, b"list\r\nlspci\ninfo\r\r"),
        ["list", "lspci", "info", ""]
    );
}

#[test]
fn backspace_takes_back_a_character_and_echoes_the_erase() {
    let mut ed = LineEditor::default();
    let out = feed(&mut ed, b"lisx\x7f\x08\x08ist\r");
    assert_eq!(out[4], Typed::Echo(b"\x08 \x08"));
    assert_eq!(out.last(), Some(&Typed::Line("list".into(), false)));
    // Backspace on an empty line does nothing.
    assert_eq!(ed.feed(0x7f), Typed::Nothing);
}

#[test]
fn ctrl_a_three_times_in_a_row_switches() {
    let mut ed = LineEditor::default();
    assert_eq!(feed(&mut ed, b"\x01\x01\x01"), [Typed::Switch]);
    // Interrupted by another byte: no switch.
    assert_eq!(feed(&mut ed, b"\x01\x01x\x01"), [Typed::EchoByte(b'x')]);
    assert_eq!(feed(&mut ed, b"\x01\x01"), [Typed::Switch]);
}

#[test]
fn control_bytes_are_dropped_and_long_lines_marked() {
    let mut ed = LineEditor::default();
    assert_eq!(lines(&mut ed, b"li\x1b\x00st\r"), ["list"]);
    let long = vec![b'a'; LINE_MAX + 10];
    feed(&mut ed, &long);
    match ed.feed(b'\r') {
        Typed::Line(l, true) => assert_eq!(l.len(), LINE_MAX),
        t => panic!("{t:?}"),
    }
    // The next line is not marked.
    assert_eq!(
        feed(&mut ed, b"x\r").last(),
        Some(&Typed::Line("x".into(), false))
    );
}

fn cmd(line: &str) -> Command {
    parse(line).unwrap().unwrap()
}

fn err(line: &str) -> String {
    parse(line).unwrap().unwrap_err().to_string()
}

#[test]
fn every_command_parses() {
    let s: Sbdf = "00:03.0".parse().unwrap();
    assert_eq!(cmd("help"), Command::Help);
    assert_eq!(cmd("  list  "), Command::List);
    assert_eq!(cmd("lspci"), Command::Lspci);
    assert_eq!(cmd("pci-assignable-list"), Command::AssignableList);
    assert_eq!(cmd("pci-assignable-add 00:03.0"), Command::AssignableAdd(s));
    assert_eq!(
        cmd("pci-assignable-remove 0000:00:03.0"),
        Command::AssignableRemove(s)
    );
    assert_eq!(cmd("create edu.cfg"), Command::Create("edu.cfg".into()));
    assert_eq!(cmd("destroy 2"), Command::Destroy(DomRef::Id(2)));
    assert_eq!(cmd("destroy dom2"), Command::Destroy(DomRef::Id(2)));
    assert_eq!(
        cmd("shutdown edu"),
        Command::Shutdown(DomRef::Name("edu".into()))
    );
    assert_eq!(cmd("reboot 1"), Command::Reboot(DomRef::Id(1)));
    match cmd("pci-attach 1 00:03.0,permissive=1") {
        Command::PciAttach(DomRef::Id(1), a) => {
            assert_eq!((a.sbdf, a.permissive, a.seize), (s, true, false));
        }
        other => panic!("{other:?}"),
    }
    let e = parse("pci-attach 1 00:03.0,msitranslate=1")
        .unwrap()
        .unwrap_err();
    assert!(format!("{e}").contains("msitranslate=1"), "{e}");
    let e = parse("pci-attach 1 00:03.0,bogus=1").unwrap().unwrap_err();
    assert!(format!("{e}").contains("unknown option 'bogus'"), "{e}");
    assert_eq!(
        cmd("pci-detach edu 00:03.0"),
        Command::PciDetach(DomRef::Name("edu".into()), s)
    );
    assert_eq!(cmd("console 1"), Command::Console(DomRef::Id(1)));
    assert_eq!(cmd("info"), Command::Info);
    assert_eq!(cmd("stats"), Command::Stats);
    assert_eq!(cmd("quit"), Command::Quit);
    assert!(parse("   ").is_none());
    // `help` lists every command parse knows.
    assert_eq!(help().rows.len(), COMMANDS.len());
}

#[test]
fn wrong_lines_say_what_to_type_instead() {
    assert_eq!(
        err("lsit"),
        "unknown command 'lsit': type 'help' for the list"
    );
    assert_eq!(err("list all"), "list: takes no arguments; type 'list '");
    assert_eq!(
        err("destroy"),
        "destroy: expected DOM; type 'destroy DOM', e.g. 'destroy 1' or 'destroy NAME'"
    );
    assert_eq!(
        err("pci-attach 1"),
        "pci-attach: expected DOM BDF; type 'pci-attach DOM BDF', e.g. 'pci-attach 1 00:03.0'"
    );
    assert_eq!(
        err("pci-attach 1 00:03.0 x"),
        "pci-attach: too many arguments after DOM BDF; type 'pci-attach DOM BDF', e.g. 'pci-attach 1 00:03.0'"
    );
    assert_eq!(
        err("pci-assignable-add 3.0"),
        "pci-assignable-add: '3.0' is not a PCI address 'bb:dd.f' or 'dddd:bb:dd.f'; type 'pci-assignable-add BDF', e.g. 'pci-assignable-add 00:03.0'"
    );
}

#[test]
fn dom_refs_match_by_id_or_name() {
    assert!(DomRef::Id(3).matches(3, "x"));
    assert!(!DomRef::Id(3).matches(4, "x"));
    assert!(DomRef::Name("edu".into()).matches(9, "edu"));
    assert!(!DomRef::Name("edu".into()).matches(9, "nic"));
    assert_eq!(DomRef::Id(3).to_string(), "dom3");
}

#[test]
fn ctl_prefix_selects_the_channel() {
    assert_eq!(channel("ctl list"), (true, "list"));
    assert_eq!(channel("  ctl   lspci "), (true, "lspci"));
    assert_eq!(channel("ctl"), (true, ""));
    assert_eq!(channel("list"), (false, "list"));
    assert_eq!(channel("ctlx"), (false, "ctlx"));
}

fn sample() -> Reply {
    let mut r = Reply::ok("list", "2 domains");
    r.row(vec![
        ("id", 1u64.into()),
        ("name", "edu".into()),
        ("state", "running".into()),
    ]);
    r.row(vec![
        ("id", 2u64.into()),
        ("name", "a \"q\"\\b\n".into()),
        ("devices", "".into()),
    ]);
    r
}

#[test]
fn text_replies_are_key_value_rows() {
    let mut s = String::new();
    sample().text(&mut s).unwrap();
    assert_eq!(
        s,
        "list: 2 domains\n  id=1 name=edu state=running\n  id=2 name=\"a \"q\"\\b\n\" devices=\"\"\n"
    );
    let mut s = String::new();
    Reply::fail("destroy", "no domain 7").text(&mut s).unwrap();
    assert_eq!(s, "destroy: error: no domain 7\n");
    let mut s = String::new();
    Reply::fail("error", "unknown command 'x'")
        .text(&mut s)
        .unwrap();
    assert_eq!(s, "error: unknown command 'x'\n");
}

#[test]
fn json_replies_are_one_escaped_line() {
    let mut s = String::new();
    sample().json(&mut s).unwrap();
    assert_eq!(
        s,
        "ctl: {\"v\":1,\"cmd\":\"list\",\"ok\":true,\"msg\":\"2 domains\",\"rows\":[{\"id\":1,\"name\":\"edu\",\"state\":\"running\"},{\"id\":2,\"name\":\"a \\\"q\\\"\\\\b\\u000a\",\"devices\":\"\"}]}\n"
    );
    assert_eq!(s.matches('\n').count(), 1);
    let mut s = String::new();
    Reply::fail("x", "").json(&mut s).unwrap();
    assert_eq!(
        s,
        "ctl: {\"v\":1,\"cmd\":\"x\",\"ok\":false,\"msg\":\"\",\"rows\":[]}\n"
    );
}
