#!/bin/sh
# /init of the test guests' initramfs (ci/src/guests/initramfs.rs packs it
# with busybox, the kernel modules below /lib/modules and /bin/pcibench;
# docs/guests.md describes it). Every line it prints starts with "init: ",
# and the scenarios (ci/src/scenarios/real.rs, linux_pv.rs) and the bench
# (ci/src/bench/linux_pv.rs) match them: change them together.
#
# It always reports what the guest sees of its hypervisor, then does what
# one word of the kernel command line asks, then powers off:
#   (none)               nothing more
#   hvtest=pcifront      attach the PCI functions (xen-pcifront under Xen),
#                        list them with their config space, drive nvme
#                        (identify, one sector read, MSI-X counts) and
#                        e1000e (its MAC)
#   hvtest=reboot-count  attach, read the counter sector of the NVMe disk,
#                        write it plus one, reboot while it was below 2
#   hvtest=hotplug       attach, then wait for the NVMe function to be
#                        hot-added, drive it with nvme (the known sector),
#                        wait for it to be hot-removed, report what is left;
#                        with hvtest.cycles=N, nvme loaded first, N times,
#                        then wait for the toolstack as hvtest=wait does
#                        (the bench)
#   hvtest=bench         attach and load nvme, then pcibench as
#                        hvtest.config=N, hvtest.nvme=MIB and
#                        hvtest.syscall=N say
# Without Xen (/sys/hypervisor/type absent) the same modes skip
# xen-pcifront and use the native PCI bus. A step that fails prints
# "init: FAILED: ..." and ends the mode. hvtest.verbose keeps the kernel's
# own messages on the console while a mode runs (by default only warnings
# and worse, so they cannot cut through these lines; the drivers' messages
# are printed afterwards as "init: dmesg: ...").
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "init: started"
echo "init: kernel $(uname -r)"
show() {
    if [ -r "$2" ]; then echo "init: $1: $(cat "$2")"; else echo "init: $1: (no $2)"; fi
}
show "hypervisor type" /sys/hypervisor/type
show "guest type" /sys/hypervisor/guest_type
show "hypervisor version" /sys/hypervisor/version/major
show "hypervisor minor" /sys/hypervisor/version/minor
show "hypervisor extra" /sys/hypervisor/version/extra
show "hypervisor features" /sys/hypervisor/properties/features
show "domain uuid" /sys/hypervisor/uuid
# One xenstore request through the xenbus device: type ($1) and path ($2);
# prints the reply's payload with its NULs as spaces. The header is four
# little-endian u32s (type, request id, transaction, length).
xs() {
    exec 3<>/dev/xen/xenbus || return 1
    printf "\\$(printf %03o "$1")\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\$(printf %03o $((${#2} + 1)))\\000\\000\\000%s\\000" "$2" >&3
    dd bs=4096 count=1 <&3 2>/dev/null | tail -c +17 | tr '\000' ' '
    exec 3<&-
}
if [ -c /dev/xen/xenbus ]; then
    domid=$(xs 2 domid)
    echo "init: xenstore domid: $domid"
    echo "init: xenstore name: $(xs 2 name)"
    echo "init: xenstore vm: $(xs 2 vm)"
    echo "init: xenstore home: $(xs 1 /local/domain/${domid% })"
    echo "init: xenstore console: $(xs 1 console)"
    echo "init: xenstore device: $(xs 1 device)"
else
    echo "init: xenstore: (no /dev/xen/xenbus)"
fi
echo "init: xenbus devices:"
for dev in /sys/bus/xen/devices/*; do
    [ -e "$dev" ] || { echo "init:   (none)"; break; }
    echo "init:   ${dev##*/}: nodename=$(cat "$dev/nodename") devtype=$(cat "$dev/devtype") state=$(cat "$dev/state")"
done
echo "init: interrupts:"
tr -s ' ' </proc/interrupts | while IFS= read -r line; do echo "init:  $line"; done
# The CPUs: how many /proc/cpuinfo lists, and for each one a task pinned to
# it alone (taskset: sched_setaffinity) that reads from its own
# /proc/self/stat the CPU it runs on (field 39, what getcpu reports). A CPU
# that did not come up cannot be pinned to: taskset's error is printed.
echo "init: cpuinfo processors: $(grep -c ^processor /proc/cpuinfo)"
echo "init: cpus online: $(cat /sys/devices/system/cpu/online)"
for c in /sys/devices/system/cpu/cpu[0-9]*; do
    n=${c##*/cpu}
    echo "init: cpu $n: a task pinned to it ran on cpu $(taskset -c "$n" awk '{ print $39 }' /proc/self/stat 2>&1)"
done

# The NVMe disk ci writes before each run (ci/src/disk.rs): known bytes at
# this sector, the reboot counter (zeros at first) at that one.
KNOWN_LBA=2048
COUNTER_LBA=4096

say() { echo "init: $*"; }
fail() {
    say "FAILED: $*"
    return 1
}

mode=
verbose=
bench_config=
bench_nvme=
bench_syscall=
cycles=
for word in $(cat /proc/cmdline); do
    case "$word" in
    hvtest=*) mode=${word#hvtest=} ;;
    hvtest.verbose) verbose=1 ;;
    hvtest.config=*) bench_config=${word#*=} ;;
    hvtest.nvme=*) bench_nvme=${word#*=} ;;
    hvtest.syscall=*) bench_syscall=${word#*=} ;;
    hvtest.cycles=*) cycles=${word#*=} ;;
    esac
done
on_xen=
[ "$(cat /sys/hypervisor/type 2>/dev/null)" = xen ] && on_xen=1

# load NAME: insmod what NAME needs, then NAME, in the order
# /lib/modules/NAME.load lists them; a module already there is skipped.
load() {
    [ -r "/lib/modules/$1.load" ] || {
        fail "no module $1 in the initramfs"
        return 1
    }
    for m in $(cat "/lib/modules/$1.load"); do
        [ -d "/sys/module/$(echo "$m" | tr - _)" ] && continue
        if out=$(insmod "/lib/modules/$m.ko" 2>&1); then
            say "insmod $m.ko: ok"
        else
            fail "insmod $m.ko: $out"
            return 1
        fi
    done
}

# wait_for SECONDS TEST...: runs TEST every 0.2 s until it succeeds (then
# $waited says how long it took) or SECONDS have passed.
wait_for() {
    limit=$(($1 * 5))
    shift
    n=0
    while ! "$@"; do
        n=$((n + 1))
        [ "$n" -ge "$limit" ] && return 1
        sleep 0.2
    done
    waited="$((n / 5)).$((n % 5 * 2)) s"
}

# The bytes of FILE from OFFSET, COUNT of them, as hex digits on one line.
hex() { od -An -v -tx1 -j "$2" -N "$3" "$1" | tr -d ' \n'; }
# FILE without the blanks that pad it (NVMe's identify strings).
trimmed() { sed 's/ *$//' "$1"; }
# A sysfs ID such as 0x1234, without the 0x.
id_of() {
    v=$(cat "$1")
    echo "${v#0x}"
}
has_pci() { [ -n "$(ls /sys/bus/pci/devices/ 2>/dev/null)" ]; }
# xen-pcifront switches to Connected once it has scanned every root.
pcifront_connected() { [ "$(cat /sys/bus/xen/devices/pci-0/state 2>/dev/null)" = Connected ]; }
nvme_ready() { [ -e /sys/class/nvme/nvme0 ] && [ -b /dev/nvme0n1 ]; }
# The sum of the nvme queues' interrupt counts (one CPU: column 2).
nvme_irqs() { awk '/nvme0q/ { n += $2 } END { print n + 0 }' /proc/interrupts; }
# The function with vendor $1 and device $2 (0x-prefixed, as sysfs has them).
find_pci() {
    for d in /sys/bus/pci/devices/*; do
        [ "$(cat "$d/vendor" 2>/dev/null)" = "$1" ] && [ "$(cat "$d/device" 2>/dev/null)" = "$2" ] && {
            echo "${d##*/}"
            return 0
        }
    done
    return 1
}
driver_of() {
    d=$(readlink "$1/driver" 2>/dev/null) || return 1
    echo "${d##*/}"
}
e1000e_nets() {
    for n in /sys/class/net/*; do
        [ "$(driver_of "$n/device")" = e1000e ] && echo "${n##*/}"
    done
}
has_e1000e_net() { [ -n "$(e1000e_nets)" ]; }
# Sets $direct to dd's O_DIRECT input flag when the NVMe disk takes it.
direct_reads() {
    direct=iflag=direct
    dd if=/dev/nvme0n1 of=/dev/null bs=512 count=1 $direct 2>/dev/null || direct=
}

# The PCI functions the kernel sees: through xen-pcifront under Xen, the
# native bus otherwise; each with its IDs, class and first 64 bytes of
# config space.
attach() {
    if [ -n "$on_xen" ]; then
        load xen-pcifront || return 1
        wait_for 20 pcifront_connected || fail "xen-pcifront: pci-0 not Connected after 20 s" || return 1
        say "xen-pcifront: pci-0 Connected (waited $waited)"
    else
        say "no Xen: the native PCI bus"
        wait_for 20 has_pci || fail "no PCI functions after 20 s" || return 1
    fi
    set -- /sys/bus/pci/devices/*
    [ -e "$1" ] || fail "no PCI functions" || return 1
    say "pci functions: $#"
    for d in "$@"; do
        f=${d##*/}
        say "pci $f $(id_of "$d/vendor"):$(id_of "$d/device") class $(id_of "$d/class")"
        say "pci $f config: $(hex "$d/config" 0 64)"
    done
}

# nvme: identify, read the known sector, MSI-X counts before and after.
drive_nvme() {
    load nvme || return 1
    wait_for 20 nvme_ready || fail "nvme: no nvme0n1 after 20 s" || return 1
    say "nvme0: model \"$(trimmed /sys/class/nvme/nvme0/model)\" serial \"$(trimmed /sys/class/nvme/nvme0/serial)\" (waited $waited)"
    direct_reads
    say "nvme0n1: reading with ${direct:-the page cache (no O_DIRECT)}"
    before=$(nvme_irqs)
    grep nvme0q /proc/interrupts | tr -s ' ' | while IFS= read -r l; do say "MSI-X before the read:$l"; done
    dd if=/dev/nvme0n1 of=/sector bs=512 skip=$KNOWN_LBA count=1 $direct 2>/dev/null ||
        fail "nvme0n1: cannot read sector $KNOWN_LBA" || return 1
    say "nvme0n1: read sector $KNOWN_LBA"
    after=$(nvme_irqs)
    grep nvme0q /proc/interrupts | tr -s ' ' | while IFS= read -r l; do say "MSI-X after the read:$l"; done
    for off in 0 64 128 192 256 320 384 448; do
        say "nvme0n1 sector $KNOWN_LBA +$off: $(hex /sector $off 64)"
    done
    if [ "$after" -gt "$before" ]; then rose=rose; else rose="did not rise"; fi
    say "nvme0 MSI-X interrupts: $before before the read, $after after: $rose"
}

# e1000e: bind, then each of its interfaces with its MAC.
drive_e1000e() {
    load e1000e || return 1
    wait_for 20 has_e1000e_net || fail "e1000e: no interface after 20 s" || return 1
    for n in $(e1000e_nets); do
        say "net $n: driver e1000e mac $(cat "/sys/class/net/$n/address") at $(readlink "/sys/class/net/$n/device" | sed 's,.*/,,')"
    done
}

drivers() {
    for d in /sys/bus/pci/devices/*; do
        drv=$(driver_of "$d") && say "pci ${d##*/} driver $drv"
    done
}

kernel_messages() {
    dmesg | grep -E 'pcifront pci-|nvme nvme|e1000e|swiotlb' | while IFS= read -r l; do say "dmesg: $l"; done
}

pcifront() {
    attach || return 1
    drive_nvme
    drive_e1000e
    drivers
    kernel_messages
    say "pcifront: done"
}

reboot_count() {
    attach || return 1
    load nvme || return 1
    wait_for 20 nvme_ready || fail "nvme: no nvme0n1 after 20 s" || return 1
    say "nvme0: model \"$(trimmed /sys/class/nvme/nvme0/model)\" serial \"$(trimmed /sys/class/nvme/nvme0/serial)\" (waited $waited)"
    direct_reads
    c=$(dd if=/dev/nvme0n1 bs=512 skip=$COUNTER_LBA count=1 $direct 2>/dev/null | tr -dc 0-9)
    c=${c:-0}
    say "reboot-count: counter $c"
    printf '%d\n' $((c + 1)) | dd of=/dev/nvme0n1 bs=512 seek=$COUNTER_LBA count=1 conv=sync,notrunc,fsync 2>/dev/null ||
        fail "reboot-count: cannot write sector $COUNTER_LBA" || return 1
    sync
    if [ "$c" -lt 2 ]; then
        say "reboot-count: wrote $((c + 1)); rebooting"
        reboot -f
        fail "reboot-count: reboot returned"
    else
        say "reboot-count: wrote $((c + 1)); done"
    fi
}

# hotplug: the functions given at boot, then the NVMe function added and
# removed at run time (the hypervisor's pci-attach and pci-detach).
nvme_fn() { f=$(find_pci 0x1b36 0x0010); }
nvme_fn_gone() { ! find_pci 0x1b36 0x0010 >/dev/null && [ ! -e /sys/class/nvme/nvme0 ]; }
hotplug() {
    attach || return 1
    if nvme_fn; then fail "hotplug: nvme $f present before the hot-add"; return 1; fi
    # The bench's cycles time the hot-plug, not the module's loading.
    if [ -n "$cycles" ]; then load nvme || return 1; fi
    i=0
    while [ "$i" -lt "${cycles:-1}" ]; do
        i=$((i + 1))
        if [ -n "$cycles" ]; then say "hotplug: cycle $i of $cycles"; fi
        say "hotplug: waiting for a new function"
        wait_for 300 nvme_fn || fail "hotplug: no NVMe function after 300 s" || return 1
        say "hotplug: added $f $(id_of "/sys/bus/pci/devices/$f/vendor"):$(id_of "/sys/bus/pci/devices/$f/device") (waited $waited)"
        drive_nvme || return 1
        say "hotplug: $f driver $(driver_of "/sys/bus/pci/devices/$f")"
        say "hotplug: waiting for $f to go"
        wait_for 300 nvme_fn_gone || fail "hotplug: $f still there after 300 s" || return 1
        say "hotplug: $f removed (waited $waited); nvme0 gone; block device $([ -b /dev/nvme0n1 ] && echo present || echo gone)"
    done
    drivers
    set -- /sys/bus/pci/devices/*
    say "hotplug: pci functions left: $# ($(ls /sys/bus/pci/devices | tr '\n' ' '))"
    kernel_messages
    say "hotplug: done"
    if [ -n "$cycles" ]; then wait_toolstack; fi
}

bench() {
    attach || return 1
    load nvme || return 1
    wait_for 20 nvme_ready || fail "nvme: no nvme0n1 after 20 s" || return 1
    if [ -n "$bench_config" ]; then
        edu=$(find_pci 0x1234 0x11e8) || fail "bench: no edu (1234:11e8) to read the config space of" || return 1
        pcibench config "$bench_config" "$edu" || fail "bench: pcibench config"
    fi
    [ -n "$bench_nvme" ] && { pcibench nvme "$bench_nvme" || fail "bench: pcibench nvme"; }
    [ -n "$bench_syscall" ] && { pcibench syscall "$bench_syscall" || fail "bench: pcibench syscall"; }
    say "bench: done"
}

# wait: nothing to do but answer the toolstack. Asked to power off or
# reboot (control/shutdown), the kernel runs /sbin/poweroff or
# /sbin/reboot, busybox's, which signal process 1: SIGUSR2 or SIGTERM.
wait_toolstack() {
    trap 'say "wait: asked to power off"; echo "init: powering off"; poweroff -f' USR2
    trap 'say "wait: asked to reboot"; reboot -f' TERM
    say "wait: waiting for the toolstack"
    while true; do sleep 1; done
}

if [ -n "$mode" ]; then
    say "mode $mode"
    [ -z "$verbose" ] && echo 5 >/proc/sys/kernel/printk
    case "$mode" in
    pcifront) pcifront ;;
    reboot-count) reboot_count ;;
    bench) bench ;;
    hotplug) hotplug ;;
    wait) wait_toolstack ;;
    *) fail "unknown hvtest=$mode (pcifront, reboot-count, hotplug, bench or wait)" ;;
    esac
fi
echo "init: powering off"
poweroff -f
echo "init: poweroff returned; sleeping"
while true; do sleep 3600; done
