//! The keys: defaults, values, ranges, required and repeated keys, and
//! unknown ones.

use alloc::string::String;
use alloc::vec;

use super::{KEYS, XL_KEYS};
use crate::domcfg::syntax::key_len;
use crate::domcfg::testutil::{
    config, config_and_warnings, errors, errors_with_base, plain, with_base, BASE,
};
use crate::domcfg::{
    DomainConfig, DomainKind, LifecycleAction, PciAssignment, PciTopology, DEFAULT_RESTART_LIMIT,
    MAX_MEMORY_MIB,
};

#[test]
fn minimal_file_gets_every_default() {
    let c = config(BASE);
    assert_eq!(
        c,
        DomainConfig {
            name: "g".into(),
            kind: DomainKind::Pvh,
            kernel: "k.elf".into(),
            ramdisk: None,
            cmdline: String::new(),
            memory_mib: 128,
            maxmem_mib: None,
            vcpus: 1,
            pci: vec![],
            pci_topology: PciTopology::Virtual,
            on_poweroff: LifecycleAction::Destroy,
            on_crash: LifecycleAction::Destroy,
            on_reboot: LifecycleAction::Restart,
            autostart: true,
            restart_limit: DEFAULT_RESTART_LIMIT,
            pci_hotplug: true,
        }
    );
}

#[test]
fn every_key_is_read() {
    let c = config(
        "name = 'all-keys_1.x'\n\
         type = 'pvh'\n\
         kernel = '/boot/guest.elf'\n\
         ramdisk = 'initrd.img'\n\
         cmdline = 'console=hvc0 quiet'\n\
         memory = 256\n\
         maxmem = 512\n\
         vcpus = 4\n\
         pci = ['00:03.0']\n\
         pci_permissive = 1\n\
         pci_msitranslate = 0\n\
         pci_seize = 1\n\
         pci_power_mgmt = 0\n\
         pci_topology = 'passthrough'\n\
         on_poweroff = 'restart'\n\
         on_crash = 'restart'\n\
         on_reboot = 'destroy'\n\
         restart_limit = 200\n",
    );
    assert_eq!(c.name, "all-keys_1.x");
    assert_eq!(c.kernel, "/boot/guest.elf");
    assert_eq!(c.ramdisk.as_deref(), Some("initrd.img"));
    assert_eq!(c.cmdline, "console=hvc0 quiet");
    assert_eq!((c.memory_mib, c.maxmem_mib, c.vcpus), (256, Some(512), 4));
    let all_on = PciAssignment {
        permissive: true,
        seize: true,
        ..plain("00:03.0")
    };
    assert_eq!(c.pci, [all_on]);
    assert_eq!(c.pci_topology, PciTopology::Passthrough);
    assert_eq!(c.on_poweroff, LifecycleAction::Restart);
    assert_eq!(c.on_crash, LifecycleAction::Restart);
    assert_eq!(c.on_reboot, LifecycleAction::Destroy);
    assert_eq!(c.restart_limit, 200);
}

#[test]
fn restart_limit_is_a_number_up_to_a_thousand() {
    assert_eq!(with_base("restart_limit = 0").restart_limit, 0);
    assert_eq!(with_base("restart_limit = 1000").restart_limit, 1000);
    assert_eq!(
        errors_with_base("restart_limit = 1001"),
        ["g.cfg:3: restart_limit = 1001: must be between 0 and 1000"]
    );
    assert_eq!(
        errors_with_base("restart_limit = 'x'"),
        ["g.cfg:3: restart_limit = 'x': expected a number of restarts"]
    );
}

#[test]
fn realistic_example_file_with_the_edu_device() {
    let c = config(
        "# a guest with the edu device\n\
         name = \"edu-guest\"\n\
         type = \"pvh\"\n\
         kernel = \"xpci.elf\"\n\
         memory = 64\n\
         vcpus = 1\n\
         pci = [ '0000:00:03.0', '00:05.0,permissive=1,msitranslate=0' ]\n\
         on_crash = \"destroy\"\n\
         extra = \"loglvl=debug\"\n",
    );
    assert_eq!(c.name, "edu-guest");
    assert_eq!(c.kind, DomainKind::Pvh);
    assert_eq!(c.kernel, "xpci.elf");
    assert_eq!(c.memory_mib, 64);
    assert_eq!(c.vcpus, 1);
    let permissive = PciAssignment {
        permissive: true,
        ..plain("00:05.0")
    };
    assert_eq!(c.pci, [plain("00:03.0"), permissive]);
    assert_eq!(c.on_crash, LifecycleAction::Destroy);
    assert_eq!(c.cmdline, "loglvl=debug");
}

#[test]
fn extra_alone_is_the_command_line() {
    assert_eq!(with_base("extra = 'quiet'").cmdline, "quiet");
}

#[test]
fn root_is_prepended_to_extra_like_xl() {
    let c = with_base("extra = 'ro quiet'\nroot = '/dev/xvda1'");
    assert_eq!(c.cmdline, "root=/dev/xvda1 ro quiet");
    assert_eq!(with_base("root = '/dev/xvda1'").cmdline, "root=/dev/xvda1");
}

#[test]
fn cmdline_wins_over_root_and_extra_with_a_warning_each() {
    let (c, w) =
        config_and_warnings(&(String::from(BASE) + "root = 'r'\ncmdline = 'c'\nextra = 'e'"));
    assert_eq!(c.cmdline, "c");
    assert_eq!(
        w,
        [
            "g.cfg:3: ignoring 'root' because 'cmdline' is given (as xl does)",
            "g.cfg:5: ignoring 'extra' because 'cmdline' is given (as xl does)",
        ]
    );
}

#[test]
fn numbers_may_be_hex_or_quoted_and_text_may_be_a_bare_number() {
    let c = config("name = 42\nkernel = 'k'\nmemory = 0x40\nvcpus = '2'\nmaxmem = 0X80");
    assert_eq!(c.name, "42");
    assert_eq!((c.memory_mib, c.vcpus, c.maxmem_mib), (64, 2, Some(128)));
}

#[test]
fn type_and_actions_ignore_ascii_case() {
    let c = with_base("type = 'PVH'\non_crash = 'Restart'");
    assert_eq!(c.on_crash, LifecycleAction::Restart);
}

#[test]
fn memory_that_is_not_a_number_is_an_error_naming_the_value() {
    let e = errors("# g\nname = 'g'\nkernel = 'k'\n\n\n\nmemory = \"lots\"\n");
    assert_eq!(e, ["g.cfg:7: memory = \"lots\": expected a number of MiB"]);
    assert_eq!(
        errors_with_base("memory = -1\nvcpus = ['1']\nmaxmem = 1G"),
        [
            "g.cfg:3: memory = -1: expected a number of MiB",
            "g.cfg:4: vcpus = ['1']: expected a number of vCPUs",
            "g.cfg:5: maxmem = 1G: expected a number of MiB",
        ]
    );
}

#[test]
fn number_with_a_leading_zero_is_refused_because_xl_reads_it_as_octal() {
    assert_eq!(
        errors_with_base("memory = 064"),
        ["g.cfg:3: memory = 064: a leading 0 means octal to xl: write the number without it, or in 0x hexadecimal"]
    );
}

#[test]
fn memory_and_vcpus_out_of_range_are_errors_giving_the_range() {
    assert_eq!(
        errors_with_base("memory = 0\nvcpus = 129\nmaxmem = 1048577\n"),
        [
            "g.cfg:3: memory = 0: must be between 1 and 1048576 MiB",
            "g.cfg:4: vcpus = 129: must be between 1 and 128",
            "g.cfg:5: maxmem = 1048577: must be between 1 and 1048576 MiB",
        ]
    );
    assert_eq!(
        errors_with_base("vcpus = 99999999999999999999999")[0],
        "g.cfg:3: vcpus = 99999999999999999999999: must be between 1 and 128"
    );
    assert_eq!(with_base("memory = 1048576").memory_mib, MAX_MEMORY_MIB);
}

#[test]
fn maxmem_below_memory_is_an_error() {
    assert_eq!(
        errors_with_base("maxmem = 64\nmemory = 256"),
        ["g.cfg:3: maxmem = 64: must be at least memory (256 MiB)"]
    );
    assert_eq!(
        errors_with_base("maxmem = 64"),
        ["g.cfg:3: maxmem = 64: must be at least memory (128 MiB)"]
    );
    assert_eq!(with_base("memory = 64\nmaxmem = 64").maxmem_mib, Some(64));
}

#[test]
fn missing_name_and_kernel_are_reported_for_the_whole_file() {
    assert_eq!(
        errors("memory = 64\n"),
        [
            "g.cfg: no 'name =' line: the domain needs a name",
            "g.cfg: no 'kernel =' line: the domain needs a kernel module name",
        ]
    );
}

#[test]
fn a_bad_required_value_is_not_also_reported_as_missing() {
    assert_eq!(
        errors("name = 'g'\nkernel = \"unclosed\n"),
        ["g.cfg:2: kernel: the string opened with \" is not closed on its line"]
    );
}

#[test]
fn name_outside_the_allowed_characters_or_length_is_an_error() {
    let expected = "a name is 1 to 64 characters from A-Z a-z 0-9 _ . -";
    for bad in ["''", "'a b'", "'caf\u{e9}'", "'a/b'"] {
        let e = errors(&alloc::format!("name = {bad}\nkernel = 'k'"));
        assert_eq!(e, [alloc::format!("g.cfg:1: name = {bad}: {expected}")]);
    }
    let long = "x".repeat(65);
    assert_eq!(
        errors(&alloc::format!("name = '{long}'\nkernel = 'k'")).len(),
        1
    );
    assert_eq!(
        config(&alloc::format!("name = '{}'\nkernel = 'k'", &long[1..]))
            .name
            .len(),
        64
    );
}

#[test]
fn empty_kernel_or_ramdisk_is_an_error() {
    assert_eq!(
        errors("name = 'g'\nkernel = ''\nramdisk = \"\""),
        [
            "g.cfg:2: kernel = '': expected the name of a boot module",
            "g.cfg:3: ramdisk = \"\": expected the name of a boot module",
        ]
    );
}

#[test]
fn hvm_type_is_an_error_saying_pvh_and_pv_are_supported() {
    assert_eq!(
        errors_with_base("type = 'hvm'"),
        ["g.cfg:3: type = 'hvm': only \"pvh\" and \"pv\" domains are supported (no \"hvm\")"]
    );
}

#[test]
fn pv_type_selects_a_pv_domain_in_any_case() {
    for t in ["type = \"pv\"", "type = 'PV'"] {
        assert_eq!(with_base(t).kind, DomainKind::Pv, "{t}");
    }
    assert_eq!(config(BASE).kind, DomainKind::Pvh, "the default");
}

#[test]
fn builder_is_an_error_naming_the_type_key_instead() {
    assert_eq!(
        errors_with_base("builder = 'hvm'"),
        ["g.cfg:3: builder = 'hvm': 'builder' is xl's old way to choose the guest type; write type = \"pv\" or \"pvh\""]
    );
}

#[test]
fn unsupported_lifecycle_actions_are_errors_naming_the_value() {
    assert_eq!(
        errors_with_base(
            "on_poweroff = 'preserve'\non_crash = 'coredump-destroy'\non_reboot = 'rename-restart'"
        ),
        [
            "g.cfg:3: on_poweroff = 'preserve': only \"destroy\" and \"restart\" are supported",
            "g.cfg:4: on_crash = 'coredump-destroy': only \"destroy\" and \"restart\" are supported",
            "g.cfg:5: on_reboot = 'rename-restart': only \"destroy\" and \"restart\" are supported",
        ]
    );
}

#[test]
fn key_given_twice_is_an_error_naming_both_lines() {
    assert_eq!(
        errors_with_base("memory = 64\n# more\nmemory = 128\ndisk = []\ndisk = []"),
        [
            "g.cfg:5: memory = 128: already given on line 3; keep one of the two lines",
            "g.cfg:7: disk = []: already given on line 6; keep one of the two lines",
        ]
    );
}

#[test]
fn unknown_keys_are_warnings_naming_key_and_line() {
    let (c, w) = config_and_warnings(
        "name = 'g'\nkernel = 'k'\ndisk = ['phy:/dev/vg/g,xvda,w']\non_watchdog = 'destroy'\n\
         memroy = 64\nvcpu = 2\nfrobnicate = 1\nvif = [ [ 'nested' ] ]",
    );
    assert_eq!(c.memory_mib, 128);
    assert_eq!(
        w,
        [
            "g.cfg:3: ignoring 'disk': this hypervisor does not use it",
            "g.cfg:4: ignoring 'on_watchdog': this hypervisor does not use it",
            "g.cfg:5: ignoring unknown key 'memroy' (did you mean 'memory'?)",
            "g.cfg:6: ignoring unknown key 'vcpu' (did you mean 'vcpus'?)",
            "g.cfg:7: ignoring unknown key 'frobnicate'",
            "g.cfg:8: ignoring 'vif': this hypervisor does not use it",
        ]
    );
}

#[test]
fn unquoted_text_is_an_error_suggesting_quotes() {
    assert_eq!(
        errors_with_base("type = pvh"),
        ["g.cfg:3: type = pvh: text must be quoted: \"pvh\""]
    );
}

#[test]
fn a_list_where_text_is_expected_is_an_error() {
    assert_eq!(
        errors_with_base("ramdisk = ['a', 'b']"),
        ["g.cfg:3: ramdisk = ['a', 'b']: expected a quoted string"]
    );
}

#[test]
fn key_table_is_in_key_order() {
    for (i, (_, k)) in KEYS.iter().enumerate() {
        assert_eq!(*k as usize, i);
    }
    for k in XL_KEYS.split(' ') {
        assert!(!KEYS.iter().any(|(name, _)| *name == k), "{k} is used");
        assert!(key_len(k.as_bytes()) == k.len(), "{k:?}");
    }
}

#[test]
fn pci_topology_is_virtual_or_passthrough() {
    assert_eq!(
        with_base("pci_topology = \"virtual\"").pci_topology,
        PciTopology::Virtual
    );
    assert_eq!(
        errors_with_base("pci_topology = \"flat\""),
        ["g.cfg:3: pci_topology = \"flat\": expected \"virtual\" (one virtual bus 0000:00) or \"passthrough\" (the host's addresses)"]
    );
}

#[test]
fn autostart_is_a_flag_that_defaults_to_on() {
    assert!(config(BASE).autostart);
    assert!(!with_base("autostart = 0\n").autostart);
    assert!(with_base("autostart = 1\n").autostart);
    let e = errors_with_base("autostart = \"no\"\n");
    assert_eq!(e.len(), 1);
    assert!(
        e[0].contains("autostart") && e[0].contains("0 or 1"),
        "{e:?}"
    );
}
