//! Hypercall numbers (`xen/include/public/xen.h`, `__HYPERVISOR_*`): the
//! hypervisor's dispatcher and the guests both use these.

/// `set_timer_op(u64 deadline)`.
pub const SET_TIMER_OP: u64 = 15;
/// `memory_op(cmd, arg)`.
pub const MEMORY_OP: u64 = 12;
/// `multicall(calls, nr)`.
pub const MULTICALL: u64 = 13;
/// `xen_version(cmd, arg)`.
pub const XEN_VERSION: u64 = 17;
/// `console_io(cmd, count, buffer)`.
pub const CONSOLE_IO: u64 = 18;
/// `vm_assist(cmd, type)`.
pub const VM_ASSIST: u64 = 21;
/// `grant_table_op(cmd, uop, count)`.
pub const GRANT_TABLE_OP: u64 = 20;
/// `vcpu_op(cmd, vcpuid, arg)`.
pub const VCPU_OP: u64 = 24;
/// `sched_op(cmd, arg)`.
pub const SCHED_OP: u64 = 29;
/// `event_channel_op(cmd, arg)`.
pub const EVENT_CHANNEL_OP: u64 = 32;
/// `physdev_op(cmd, arg)`.
pub const PHYSDEV_OP: u64 = 33;
/// `hvm_op(cmd, arg)`.
pub const HVM_OP: u64 = 34;
/// `xenpmu_op(op, arg)`: the virtual PMU, which Xen leaves off unless
/// booted with `vpmu=`; then every op is `-EOPNOTSUPP`.
pub const XENPMU_OP: u64 = 40;
