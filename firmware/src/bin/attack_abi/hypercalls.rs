//! `attack=hypercall`: every hypercall family a PVH guest has, with
//! argument pointers outside its RAM, straddling the end of its memory,
//! unaligned, into the local APIC page and its own page tables; the
//! victim's and the hypervisor's host frames as frame numbers; counts of 0,
//! huge and negative; unknown sub-ops and hypercall numbers; vCPU ids and
//! ports out of range. The expected value of each is what Xen 4.17
//! returns to an unprivileged HVM guest.

use firmware::abi::start_info::MEMMAP_RAM;
use firmware::println;
use firmware::report::Table;
use firmware::xen::errno::*;
use firmware::xen::layout::DOMID_SELF;
use firmware::xen::page::{Page, PageBuf};
use firmware::xen::{self, nr};

use super::{Rc, Setup};

/// Argument buffers of this program.
static BUF: [PageBuf; 2] = [const { PageBuf::new() }; 2];

/// A domain id no domain has.
const ABSENT: u16 = 500;
/// A port and a vCPU id far beyond any the domain has.
const BAD_PORT: u32 = 0xf_ffff;
const BAD_VCPU: u32 = 1000;

/// `GNTST_*` (`grant_table.h`). One answer is this hypervisor's, not
/// Xen's: a copy through another guest's grant is refused outright
/// (`permission_denied`; Xen checks the reference, `bad_gntref` for one
/// out of range).
const GNTST_BAD_DOMAIN: i64 = -2;
const GNTST_PERMISSION_DENIED: i64 = -8;
const GNTST_BAD_PAGE: i64 = -9;
const GNTST_BAD_COPY_ARG: i64 = -10;

/// Hypercall `n(a1, a2, a3)`.
fn call(n: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    // SAFETY: every address passed is in `BUF`, in this guest's special
    // pages' last bytes (the straddling case, which holds nothing this
    // program uses), or where this guest has no memory (beyond its RAM,
    // the local APIC page, non-canonical): what the hypervisor writes there
    // cannot touch this program's data.
    unsafe { xen::raw(n, a1, a2, a3) }
}

/// Where hostile pointers aim.
struct Aim {
    /// Past every memory map entry and the chunk that ends the RAM.
    beyond: u64,
    /// 4 bytes before the end of the guest's memory (RAM and the special
    /// pages after it, to the end of its last 2 MiB chunk).
    straddle: u64,
    /// The local APIC page.
    lapic: u64,
    /// The PML4 this guest runs on.
    pml4: u64,
    /// The end of its memory (special pages included).
    mem_end: u64,
}

/// The hypervisor gives a domain its memory in 2 MiB chunks: the last
/// one goes on past the memory map's end, and is the domain's own.
const CHUNK: u64 = 2 << 20;

const NONCANONICAL: u64 = 0x8000_0000_0000_0000;

impl Aim {
    fn of(s: &Setup) -> Aim {
        let entries = || s.info.memmap_entries();
        let ram_end = entries()
            .find(|e| e.type_ == MEMMAP_RAM && e.addr <= 0x10_0000 && 0x10_0000 < e.addr + e.size)
            .map_or(0, |e| e.addr + e.size);
        // The special pages follow the RAM (reserved, backed).
        let mem_end = entries()
            .find(|e| e.addr == ram_end)
            .map_or(ram_end, |e| e.addr + e.size);
        // The first 2 MiB past its last chunk that no map entry covers,
        // mapped in its page tables so that only the hypervisor's check
        // can fail there.
        let mut beyond = mem_end.next_multiple_of(CHUNK) + CHUNK;
        while entries().any(|e| beyond.wrapping_sub(e.addr) < e.size) {
            beyond += CHUNK;
        }
        let _ = Page::at(beyond >> 12);
        for e in entries() {
            println!(
                "attack_abi: map {:#x}+{:#x} type {}",
                e.addr, e.size, e.type_
            );
        }
        let cr3: u64;
        // SAFETY: reading CR3 has no side effects.
        unsafe { core::arch::asm!("mov {}, cr3", out(reg) cr3, options(nomem, nostack)) };
        // The page is mapped so that a wrong hypervisor write would show.
        let _ = Page::at(0xfee00);
        Aim {
            beyond,
            straddle: mem_end.next_multiple_of(CHUNK) - 4,
            lapic: 0xfee0_0000,
            pml4: cr3 & 0x000f_ffff_ffff_f000,
            mem_end,
        }
    }

    /// Whether frame `f` is in this guest's own memory: a host frame
    /// number that happens to name one of its own pages is a page of its
    /// own, which the hypervisor rightly lets it use.
    fn own(&self, f: u64) -> bool {
        f < self.mem_end.next_multiple_of(CHUNK) >> 12
    }
}

/// Writes little-endian words into a buffer page at `off`; returns the
/// address.
fn put(page: Page, off: usize, words: &[(usize, u64, usize)]) -> u64 {
    for &(at, v, size) in words {
        page.write(off + at, &v.to_le_bytes()[..size]);
    }
    page.addr() + off as u64
}

/// The cases' table.
type T = Table<128>;

fn is(t: &mut T, case: &'static str, rc: i64, want: i64) {
    t.case(case, format_args!("{}", Rc(rc)), rc == want);
}

pub fn run(s: &Setup) {
    let mut t = T::new("attack-hypercall");
    let a = Aim::of(s);
    println!(
        "attack_abi: beyond RAM {:#x}, straddling {:#x}, PML4 {:#x}, victim d{} host frame {:?}, canary frame {:?}",
        a.beyond, a.straddle, a.pml4, s.victim, s.victim_frame, s.canary_frame
    );
    let (b0, b1) = (BUF[0].page(), BUF[1].page());
    b0.fill(0);
    b1.fill(0);
    version(&mut t, &a, b0, b1);
    console(&mut t, &a);
    sched(&mut t, s, &a, b0);
    memory(&mut t, s, &a, b0);
    hvm(&mut t, s, &a, b0);
    evtchn(&mut t, s, &a, b0, b1);
    grant(&mut t, s, &a, b0, b1);
    vcpu(&mut t, &a, b0);
    multicall(&mut t, &a, b0);
    for (case, n) in [
        ("hypercall 63 (none)", 63),
        ("hypercall 1 (set_trap_table, PV only)", 1),
        ("hypercall 127 (last of the page)", 127),
    ] {
        is(&mut t, case, call(n, 0, b0.addr(), 0), -ENOSYS);
    }
    t.print();
}

fn version(t: &mut T, a: &Aim, b0: Page, b1: Page) {
    const EXTRAVERSION: u64 = 1;
    const GET_FEATURES: u64 = 6;
    let v = nr::XEN_VERSION;
    for (case, at) in [
        ("xen_version extraversion: buffer beyond RAM", a.beyond),
        (
            "xen_version extraversion: buffer straddling the end of memory",
            a.straddle,
        ),
        (
            "xen_version extraversion: buffer in the local APIC page",
            a.lapic,
        ),
        (
            "xen_version extraversion: non-canonical buffer",
            NONCANONICAL,
        ),
    ] {
        is(t, case, call(v, EXTRAVERSION, at, 0), -EFAULT);
    }
    let rc = call(v, EXTRAVERSION, b0.addr() + 3, 0);
    let rc2 = call(v, EXTRAVERSION, b1.addr(), 0);
    let (mut x, mut y) = ([0u8; 16], [0u8; 16]);
    b0.read(3, &mut x);
    b1.read(0, &mut y);
    t.case(
        "xen_version extraversion: unaligned buffer",
        format_args!("{}, text as aligned: {}", Rc(rc), x == y),
        rc == 0 && rc2 == 0 && x == y && x[0] != 0,
    );
    is(
        t,
        "xen_version: unknown sub-op 0x7fff",
        call(v, 0x7fff, b0.addr(), 0),
        -ENOSYS,
    );
    let arg = put(b0, 64, &[(0, 0xffff_ffff, 4), (4, 0, 4)]);
    is(
        t,
        "xen_version get_features: submap 0xffffffff",
        call(v, GET_FEATURES, arg, 0),
        -EINVAL,
    );
}

fn console(t: &mut T, a: &Aim) {
    const WRITE: u64 = 0;
    let c = nr::CONSOLE_IO;
    is(
        t,
        "console_io write: count 0",
        call(c, WRITE, 0, a.beyond),
        0,
    );
    is(
        t,
        "console_io write: buffer beyond RAM",
        call(c, WRITE, 8, a.beyond),
        -EFAULT,
    );
    is(
        t,
        "console_io write: buffer straddling the end of memory",
        call(c, WRITE, 16, a.straddle),
        -EFAULT,
    );
    is(
        t,
        "console_io: unknown sub-op 99",
        call(c, 99, 0, 0),
        -ENOSYS,
    );
}

fn sched(t: &mut T, s: &Setup, a: &Aim, b: Page) {
    const SHUTDOWN: u64 = 2;
    const POLL: u64 = 3;
    const REMOTE_SHUTDOWN: u64 = 4;
    let n = nr::SCHED_OP;
    is(
        t,
        "sched_op poll: argument beyond RAM",
        call(n, POLL, a.beyond, 0),
        -EFAULT,
    );
    let ports = put(b, 512, &[(0, u64::from(BAD_PORT), 4)]);
    let arg = put(b, 0, &[(0, a.beyond, 8), (8, 1, 4), (16, 0, 8)]);
    is(
        t,
        "sched_op poll: ports beyond RAM",
        call(n, POLL, arg, 0),
        -EFAULT,
    );
    let arg = put(b, 0, &[(0, ports, 8), (8, 0x1_0000, 4)]);
    is(
        t,
        "sched_op poll: 65536 ports",
        call(n, POLL, arg, 0),
        -EINVAL,
    );
    let arg = put(b, 0, &[(0, ports, 8), (8, 1, 4)]);
    is(
        t,
        "sched_op poll: port 0xfffff",
        call(n, POLL, arg, 0),
        -EINVAL,
    );
    is(
        t,
        "sched_op shutdown: argument straddling the end of memory",
        call(n, SHUTDOWN, a.straddle + 2, 0),
        -EFAULT,
    );
    let arg = put(b, 0, &[(0, u64::from(s.victim), 2), (4, 0, 4)]);
    is(
        t,
        "sched_op remote_shutdown: the victim",
        call(n, REMOTE_SHUTDOWN, arg, 0),
        -EPERM,
    );
    let arg = put(b, 0, &[(0, u64::from(ABSENT), 2), (4, 0, 4)]);
    is(
        t,
        "sched_op remote_shutdown: absent domain",
        call(n, REMOTE_SHUTDOWN, arg, 0),
        -ESRCH,
    );
    is(
        t,
        "sched_op: unknown sub-op 99",
        call(n, 99, b.addr(), 0),
        -ENOSYS,
    );
}

fn memory(t: &mut T, s: &Setup, a: &Aim, b: Page) {
    const DECREASE: u64 = 1;
    const CURRENT: u64 = 3;
    const ADD_TO_PHYSMAP: u64 = 7;
    const MEMORY_MAP: u64 = 9;
    const EXCHANGE: u64 = 11;
    const POPULATE: u64 = 6;
    const MAXIMUM_GPFN: u64 = 14;
    let m = nr::MEMORY_OP;
    is(
        t,
        "memory_op memory_map: argument beyond RAM",
        call(m, MEMORY_MAP, a.beyond, 0),
        -EFAULT,
    );
    let arg = put(b, 0, &[(0, 64, 4), (8, a.straddle, 8)]);
    is(
        t,
        "memory_op memory_map: buffer straddling the end of memory",
        call(m, MEMORY_MAP, arg, 0),
        -EFAULT,
    );
    let domid = |d: u16| put(b, 0, &[(0, u64::from(d), 2)]);
    is(
        t,
        "memory_op current_reservation: the victim",
        call(m, CURRENT, domid(s.victim), 0),
        -EPERM,
    );
    is(
        t,
        "memory_op current_reservation: absent domain",
        call(m, CURRENT, domid(ABSENT), 0),
        -ESRCH,
    );
    // A domid read out of this guest's own PML4 (its first entry's low
    // 16 bits: flags and address bits).
    let mut e = [0u8; 2];
    if let Some(p) = Page::at(a.pml4 >> 12) {
        p.read(0, &mut e);
    }
    let d = u16::from_le_bytes(e);
    let rc = call(m, CURRENT, a.pml4, 0);
    let ok = if d == s.me || d == DOMID_SELF {
        rc > 0
    } else if d == s.victim {
        rc == -EPERM
    } else {
        rc == -ESRCH
    };
    t.case(
        "memory_op current_reservation: argument in its own page tables",
        format_args!("domid {d:#x}: {}", Rc(rc)),
        ok,
    );
    is(
        t,
        "memory_op maximum_gpfn: the victim",
        call(m, MAXIMUM_GPFN, domid(s.victim), 0),
        -EPERM,
    );
    let xatp = |d: u16, space: u64, idx: u64, gpfn: u64| {
        put(
            b,
            0,
            &[
                (0, u64::from(d), 2),
                (2, 0, 2),
                (4, space, 4),
                (8, idx, 8),
                (16, gpfn, 8),
            ],
        )
    };
    let arg = xatp(s.victim, 0, 0, a.beyond >> 12);
    is(
        t,
        "memory_op add_to_physmap: the victim's physmap",
        call(m, ADD_TO_PHYSMAP, arg, 0),
        -EPERM,
    );
    let arg = xatp(DOMID_SELF, 99, 0, a.beyond >> 12);
    is(
        t,
        "memory_op add_to_physmap: unknown space 99",
        call(m, ADD_TO_PHYSMAP, arg, 0),
        -EINVAL,
    );
    let arg = xatp(DOMID_SELF, 1, 0x7fff, a.beyond >> 12);
    is(
        t,
        "memory_op add_to_physmap: grant frame 0x7fff",
        call(m, ADD_TO_PHYSMAP, arg, 0),
        -EINVAL,
    );
    // `struct xen_memory_reservation`: extent_start, nr_extents,
    // extent_order, mem_flags, domid.
    let resv = |off: usize, list: u64, n: u64, order: u64, d: u16| {
        put(
            b,
            off,
            &[
                (0, list, 8),
                (8, n, 8),
                (16, order, 4),
                (20, 0, 4),
                (24, u64::from(d), 2),
            ],
        )
    };
    let arg = resv(0, a.beyond, 4, 0, DOMID_SELF);
    is(
        t,
        "memory_op decrease_reservation: extent list beyond RAM",
        call(m, DECREASE, arg, 0),
        0,
    );
    for (case, frame) in [
        (
            "memory_op decrease_reservation: the victim's host frame",
            s.victim_frame,
        ),
        (
            "memory_op decrease_reservation: the hypervisor's canary frame",
            s.canary_frame,
        ),
    ] {
        let Some(f) = frame.filter(|&f| !a.own(f)) else {
            firmware::report::skip(case, "no debug.canary, or a frame of its own RAM");
            continue;
        };
        let list = put(b, 1024, &[(0, f, 8)]);
        let arg = resv(0, list, 1, 0, DOMID_SELF);
        is(t, case, call(m, DECREASE, arg, 0), 0);
    }
    let list = put(b, 1024, &[(0, 0x100, 8)]);
    let arg = resv(0, list, 1, 0, s.victim);
    is(
        t,
        "memory_op decrease_reservation: the victim's domid",
        call(m, DECREASE, arg, 0),
        0,
    );
    let list = put(b, 1024, &[(0, a.beyond >> 12, 8)]);
    let arg = resv(0, list, 1, 30, DOMID_SELF);
    is(
        t,
        "memory_op populate_physmap: order 30",
        call(m, POPULATE, arg, 0),
        0,
    );
    // `struct xen_memory_exchange`: in, out, nr_exchanged.
    resv(0, list, 1, 0, DOMID_SELF);
    resv(32, list, 2, 0, DOMID_SELF);
    put(b, 64, &[(0, 0, 8)]);
    is(
        t,
        "memory_op exchange: 1 page for 2",
        call(m, EXCHANGE, b.addr(), 0),
        -EINVAL,
    );
    is(
        t,
        "memory_op exchange: argument beyond RAM",
        call(m, EXCHANGE, a.beyond, 0),
        -EFAULT,
    );
    is(
        t,
        "memory_op: unknown sub-op 63",
        call(m, 63, b.addr(), 0),
        -ENOSYS,
    );
}

fn hvm(t: &mut T, s: &Setup, a: &Aim, b: Page) {
    const SET: u64 = 0;
    const GET: u64 = 1;
    let h = nr::HVM_OP;
    let param = |d: u16, index: u64, value: u64| {
        put(
            b,
            0,
            &[
                (0, u64::from(d), 2),
                (2, 0, 2),
                (4, index, 4),
                (8, value, 8),
            ],
        )
    };
    is(
        t,
        "hvm_op get_param: index 0xffff",
        call(h, GET, param(DOMID_SELF, 0xffff, 0), 0),
        -EINVAL,
    );
    is(
        t,
        "hvm_op get_param: the victim's store ring",
        call(h, GET, param(s.victim, 1, 0), 0),
        -EPERM,
    );
    is(
        t,
        "hvm_op get_param: absent domain",
        call(h, GET, param(ABSENT, 1, 0), 0),
        -ESRCH,
    );
    let arg = param(DOMID_SELF, 1, a.beyond >> 12);
    is(
        t,
        "hvm_op set_param: its own store ring elsewhere",
        call(h, SET, arg, 0),
        -EPERM,
    );
    is(
        t,
        "hvm_op get_param: argument beyond RAM",
        call(h, GET, a.beyond, 0),
        -EFAULT,
    );
    is(
        t,
        "hvm_op: unknown sub-op 99",
        call(h, 99, b.addr(), 0),
        -ENOSYS,
    );
}

fn evtchn(t: &mut T, s: &Setup, a: &Aim, b: Page, b1: Page) {
    const BIND_INTERDOMAIN: u64 = 0;
    const BIND_VIRQ: u64 = 1;
    const CLOSE: u64 = 3;
    const SEND: u64 = 4;
    const STATUS: u64 = 5;
    const ALLOC_UNBOUND: u64 = 6;
    const BIND_IPI: u64 = 7;
    const BIND_VCPU: u64 = 8;
    const UNMASK: u64 = 9;
    const INIT_CONTROL: u64 = 11;
    const EXPAND_ARRAY: u64 = 12;
    const SET_PRIORITY: u64 = 13;
    let e = nr::EVENT_CHANNEL_OP;
    let v = s.victim;
    let port = |p: u32| put(b, 0, &[(0, u64::from(p), 4), (4, 0, 4)]);
    is(
        t,
        "event_channel_op send: port 0xfffff",
        call(e, SEND, port(BAD_PORT), 0),
        -EINVAL,
    );
    is(
        t,
        "event_channel_op close: port 0xfffff",
        call(e, CLOSE, port(BAD_PORT), 0),
        -EINVAL,
    );
    is(
        t,
        "event_channel_op unmask: port 0xfffff",
        call(e, UNMASK, port(BAD_PORT), 0),
        -EINVAL,
    );
    let arg = put(b, 0, &[(0, u64::from(BAD_PORT), 4), (4, 5, 4)]);
    is(
        t,
        "event_channel_op set_priority: port 0xfffff",
        call(e, SET_PRIORITY, arg, 0),
        -EINVAL,
    );
    let status = |d: u16, p: u32| put(b, 0, &[(0, u64::from(d), 2), (4, u64::from(p), 4)]);
    is(
        t,
        "event_channel_op status: the victim's port 1",
        call(e, STATUS, status(v, 1), 0),
        -EPERM,
    );
    is(
        t,
        "event_channel_op status: own port 0xfffff",
        call(e, STATUS, status(DOMID_SELF, BAD_PORT), 0),
        -EINVAL,
    );
    is(
        t,
        "event_channel_op status: argument beyond RAM",
        call(e, STATUS, a.beyond, 0),
        -EFAULT,
    );
    let arg = put(
        b,
        0,
        &[(0, u64::from(v), 2), (2, u64::from(s.me), 2), (4, 0, 4)],
    );
    is(
        t,
        "event_channel_op alloc_unbound: in the victim",
        call(e, ALLOC_UNBOUND, arg, 0),
        -EPERM,
    );
    let inter = |d: u16, p: u32| {
        put(
            b,
            0,
            &[(0, u64::from(d), 2), (4, u64::from(p), 4), (8, 0, 4)],
        )
    };
    is(
        t,
        "event_channel_op bind_interdomain: the victim's port 0xfffff",
        call(e, BIND_INTERDOMAIN, inter(v, BAD_PORT), 0),
        -EINVAL,
    );
    is(
        t,
        "event_channel_op bind_interdomain: the victim's bound port 1",
        call(e, BIND_INTERDOMAIN, inter(v, 1), 0),
        -EINVAL,
    );
    is(
        t,
        "event_channel_op bind_interdomain: absent domain",
        call(e, BIND_INTERDOMAIN, inter(ABSENT, 1), 0),
        -ESRCH,
    );
    let virq = |q: u32, c: u32| {
        put(
            b,
            0,
            &[(0, u64::from(q), 4), (4, u64::from(c), 4), (8, 0, 4)],
        )
    };
    is(
        t,
        "event_channel_op bind_virq: virq 0xffff",
        call(e, BIND_VIRQ, virq(0xffff, 0), 0),
        -EINVAL,
    );
    is(
        t,
        "event_channel_op bind_virq: timer on vCPU 1000",
        call(e, BIND_VIRQ, virq(0, BAD_VCPU), 0),
        -ENOENT,
    );
    let arg = put(b, 0, &[(0, u64::from(BAD_VCPU), 4), (4, 0, 4)]);
    is(
        t,
        "event_channel_op bind_ipi: vCPU 1000",
        call(e, BIND_IPI, arg, 0),
        -ENOENT,
    );
    let arg = put(b, 0, &[(0, 1, 4), (4, u64::from(BAD_VCPU), 4)]);
    is(
        t,
        "event_channel_op bind_vcpu: vCPU 1000",
        call(e, BIND_VCPU, arg, 0),
        -ENOENT,
    );
    let init = |gfn: u64, off: u64, c: u32| {
        put(
            b,
            0,
            &[(0, gfn, 8), (8, off, 4), (12, u64::from(c), 4), (16, 0, 8)],
        )
    };
    is(
        t,
        "event_channel_op init_control: control block beyond RAM",
        call(e, INIT_CONTROL, init(a.beyond >> 12, 0, 0), 0),
        -EINVAL,
    );
    is(
        t,
        "event_channel_op init_control: unaligned offset 3",
        call(e, INIT_CONTROL, init(b1.gfn(), 3, 0), 0),
        -EINVAL,
    );
    is(
        t,
        "event_channel_op init_control: vCPU 1000",
        call(e, INIT_CONTROL, init(b1.gfn(), 0, BAD_VCPU), 0),
        -ENOENT,
    );
    let arg = put(b, 0, &[(0, b1.gfn(), 8)]);
    is(
        t,
        "event_channel_op expand_array: on the 2-level ABI",
        call(e, EXPAND_ARRAY, arg, 0),
        -EOPNOTSUPP,
    );
    is(
        t,
        "event_channel_op: unknown sub-op 99",
        call(e, 99, b.addr(), 0),
        -ENOSYS,
    );
}

fn grant(t: &mut T, s: &Setup, a: &Aim, b: Page, b1: Page) {
    const SETUP_TABLE: u64 = 2;
    const COPY: u64 = 5;
    const QUERY_SIZE: u64 = 6;
    const SET_VERSION: u64 = 8;
    const GET_VERSION: u64 = 10;
    const SOURCE_GREF: u64 = 1;
    const DEST_GREF: u64 = 2;
    let g = nr::GRANT_TABLE_OP;
    let status = |off: usize| {
        let mut x = [0u8; 2];
        b.read(off, &mut x);
        i64::from(i16::from_le_bytes(x))
    };
    // (rc, status) against the expected status with rc 0.
    let st = |t: &mut T, case: &'static str, rc: i64, got: i64, want: i64| {
        t.case(
            case,
            format_args!("{}, status {got}", Rc(rc)),
            rc == 0 && got == want,
        );
    };
    let arg = put(
        b,
        0,
        &[
            (0, u64::from(s.victim), 2),
            (4, 1, 4),
            (8, 0, 2),
            (16, b1.addr(), 8),
        ],
    );
    let rc = call(g, SETUP_TABLE, arg, 1);
    st(
        t,
        "grant_table_op setup_table: the victim's",
        rc,
        status(8),
        GNTST_PERMISSION_DENIED,
    );
    let q = |d: u16| {
        put(
            b,
            0,
            &[(0, u64::from(d), 2), (4, 0, 4), (8, 0, 4), (12, 0, 2)],
        )
    };
    let rc = call(g, QUERY_SIZE, q(s.victim), 1);
    st(
        t,
        "grant_table_op query_size: the victim's",
        rc,
        status(12),
        GNTST_PERMISSION_DENIED,
    );
    let rc = call(g, QUERY_SIZE, q(ABSENT), 1);
    st(
        t,
        "grant_table_op query_size: absent domain",
        rc,
        status(12),
        GNTST_BAD_DOMAIN,
    );
    // `struct gnttab_copy`: source (u, domid, offset), dest, len, flags,
    // status.
    let copy = |src: (u64, u16, u64), dst: (u64, u16, u64), len: u64, flags: u64| {
        put(
            b,
            0,
            &[
                (0, src.0, 8),
                (8, u64::from(src.1), 2),
                (10, src.2, 2),
                (16, dst.0, 8),
                (24, u64::from(dst.1), 2),
                (26, dst.2, 2),
                (32, len, 2),
                (34, flags, 2),
                (36, 0, 2),
            ],
        )
    };
    let own = (b1.gfn(), DOMID_SELF, 0);
    if let Some(f) = s.victim_frame.filter(|&f| !a.own(f)) {
        let arg = copy((f, s.victim, 0), own, 64, 0);
        let rc = call(g, COPY, arg, 1);
        st(
            t,
            "grant_table_op copy: from the victim's frame by number",
            rc,
            status(36),
            GNTST_PERMISSION_DENIED,
        );
        let arg = copy(own, (f, DOMID_SELF, 0), 64, 0);
        let rc = call(g, COPY, arg, 1);
        st(
            t,
            "grant_table_op copy: to the victim's host frame as its own",
            rc,
            status(36),
            GNTST_BAD_PAGE,
        );
    }
    if let Some(f) = s.canary_frame.filter(|&f| !a.own(f)) {
        let arg = copy(own, (f, DOMID_SELF, 0), 64, 0);
        let rc = call(g, COPY, arg, 1);
        st(
            t,
            "grant_table_op copy: to the hypervisor's canary frame",
            rc,
            status(36),
            GNTST_BAD_PAGE,
        );
    }
    let arg = copy(own, (0x7fff_ffff, s.victim, 0), 64, DEST_GREF);
    let rc = call(g, COPY, arg, 1);
    st(
        t,
        "grant_table_op copy: to the victim's grant 0x7fffffff",
        rc,
        status(36),
        GNTST_PERMISSION_DENIED,
    );
    let arg = copy((a.beyond >> 12, DOMID_SELF, 0), own, 64, 0);
    let rc = call(g, COPY, arg, 1);
    st(
        t,
        "grant_table_op copy: from its own frame beyond RAM",
        rc,
        status(36),
        GNTST_BAD_PAGE,
    );
    let arg = copy(
        (b1.gfn(), DOMID_SELF, 4000),
        (b1.gfn(), DOMID_SELF, 0),
        200,
        0,
    );
    let rc = call(g, COPY, arg, 1);
    st(
        t,
        "grant_table_op copy: 200 bytes at offset 4000",
        rc,
        status(36),
        GNTST_BAD_COPY_ARG,
    );
    let arg = copy(own, own, 8, SOURCE_GREF | DEST_GREF);
    is(t, "grant_table_op copy: count 0", call(g, COPY, arg, 0), 0);
    is(
        t,
        "grant_table_op copy: count -1",
        call(g, COPY, arg, 0xffff_ffff),
        -EINVAL,
    );
    is(
        t,
        "grant_table_op copy: argument beyond RAM",
        call(g, COPY, a.beyond, 1),
        -EFAULT,
    );
    let arg = put(b, 0, &[(0, 3, 4)]);
    is(
        t,
        "grant_table_op set_version: 3",
        call(g, SET_VERSION, arg, 1),
        -EINVAL,
    );
    let arg = put(b, 0, &[(0, u64::from(s.victim), 2), (2, 0, 2), (4, 0, 4)]);
    is(
        t,
        "grant_table_op get_version: the victim's",
        call(g, GET_VERSION, arg, 1),
        -EPERM,
    );
    is(
        t,
        "grant_table_op: unknown sub-op 99",
        call(g, 99, b.addr(), 1),
        -ENOSYS,
    );
}

fn vcpu(t: &mut T, a: &Aim, b: Page) {
    const INITIALISE: u64 = 0;
    const IS_UP: u64 = 3;
    const SET_SINGLESHOT: u64 = 8;
    const REGISTER_VCPU_INFO: u64 = 10;
    let v = nr::VCPU_OP;
    is(
        t,
        "vcpu_op is_up: vCPU 1000",
        call(v, IS_UP, u64::from(BAD_VCPU), 0),
        -ENOENT,
    );
    is(
        t,
        "vcpu_op is_up: vCPU -1",
        call(v, IS_UP, 0xffff_ffff, 0),
        -ENOENT,
    );
    let info = |mfn: u64, off: u64| put(b, 0, &[(0, mfn, 8), (8, off, 4), (12, 0, 4)]);
    is(
        t,
        "vcpu_op register_vcpu_info: frame beyond RAM",
        call(v, REGISTER_VCPU_INFO, 0, info(a.beyond >> 12, 0)),
        -EINVAL,
    );
    let arg = info(BUF[1].page().gfn(), 4090);
    is(
        t,
        "vcpu_op register_vcpu_info: offset 4090, across the page",
        call(v, REGISTER_VCPU_INFO, 0, arg),
        -EINVAL,
    );
    is(
        t,
        "vcpu_op initialise: vCPU 0, which runs",
        call(v, INITIALISE, 0, b.addr()),
        -EEXIST,
    );
    is(
        t,
        "vcpu_op set_singleshot_timer: argument beyond RAM",
        call(v, SET_SINGLESHOT, 0, a.beyond),
        -EFAULT,
    );
    is(
        t,
        "vcpu_op: unknown sub-op 99",
        call(v, 99, 0, b.addr()),
        -ENOSYS,
    );
}

fn multicall(t: &mut T, a: &Aim, b: Page) {
    let m = nr::MULTICALL;
    is(
        t,
        "multicall: entries beyond RAM",
        call(m, a.beyond, 1, 0),
        -EFAULT,
    );
    is(
        t,
        "multicall: entries straddling the end of memory",
        call(m, a.straddle - 28, 1, 0),
        -EFAULT,
    );
    // One entry: a multicall of its own (op, result, args).
    let arg = put(
        b,
        0,
        &[
            (0, m, 8),
            (8, 0x5a5a, 8),
            (16, b.addr() + 64 * 8, 8),
            (24, 0, 8),
        ],
    );
    let rc = call(m, arg, 1, 0);
    let mut r = [0u8; 8];
    b.read(8, &mut r);
    let inner = i64::from_le_bytes(r);
    t.case(
        "multicall: a multicall inside",
        format_args!("{}, inner {}", Rc(rc), Rc(inner)),
        rc == 0 && inner == -EINVAL,
    );
}
