//! The hypercall dispatcher: arguments from the guest's registers, one
//! handler per hypercall family, `-ENOSYS` for the rest. Errors are typed
//! ([`Errno`]) until the boundary, where they become Xen's negated errno
//! values in RAX.

mod control;
mod evtchn;
mod hvm;
pub(super) mod memory;
mod sched;
mod vcpu;
mod vcpu_ctx;
mod version;

use super::fifo::FifoControl;
use super::guest_va::{read_virt, view, View};
use super::pv::hypercall::PvCall;
use super::{Domain, Ending, GuestLog};
use evtchn::{event_channel_op, Fifo};
pub(super) use hv::evtchn::Errno;
use hv::hub::Hub;
use hv::xenabi::{PhysdevEoi, PhysdevIrqStatusQuery};
use vmm_glue::log;
use vmm_glue::xen::shared_info::VCPU_INFO_SIZE;

use vmm_glue::xen::hypercall as nr;

/// What a handler returns: the value for RAX, or an error.
pub(super) type HcResult = Result<i64, Errno>;

/// How a hypercall ended.
pub(super) enum Call {
    /// Return this in RAX.
    Ret(HcResult),
    /// RAX was set by the call itself (`iret`).
    Returned,
    /// The domain ended.
    End(Ending),
}

/// How a hypercall ended besides its return value.
pub(super) enum Outcome {
    /// Return this to the guest.
    Ret(HcResult),
    /// The domain shut itself down with this reason.
    Shutdown(u32),
}

/// Sets a little-endian field of a buffer for the guest.
pub(super) fn put(buf: &mut [u8], off: usize, bytes: &[u8]) {
    if let Some(s) = buf.get_mut(off..off + bytes.len()) {
        s.copy_from_slice(bytes);
    }
}

impl Domain {
    #[link_section = ".text.hot"]
    pub(super) fn hypercall(&mut self, hub: &mut Hub) -> Option<Ending> {
        let long = self.vcpu.long_mode();
        let nr = self.vcpu.rax() & if long { u64::MAX } else { 0xffff_ffff };
        let r = *self.vcpu.regs();
        let args = if long {
            [r.rdi, r.rsi, r.rdx, r.r10, r.r8]
        } else {
            [r.rbx, r.rcx, r.rdx, r.rsi, r.rdi]
        };
        match self.call(nr, args, hub) {
            Call::Ret(result) => {
                let ret = match result {
                    Ok(v) => v,
                    Err(e) => e.to_ret(),
                };
                self.vcpu.set_rax(ret as u64);
                None
            }
            Call::Returned => None,
            Call::End(e) => Some(e),
        }
    }

    /// Hypercall `nr` with `args`.
    #[link_section = ".text.hot"]
    pub(super) fn call(&mut self, nr: u64, args: [u64; 5], hub: &mut Hub) -> Call {
        log::trace!("d{} hypercall {nr} {:#x?}", self.id, args);
        self.exits.by_hypercall[nr.min(63) as usize] += 1;
        if let Some(c) = self.pv_hypercall(nr, args, hub) {
            return match c {
                PvCall::Ret(r) => Call::Ret(r),
                PvCall::Returned => Call::Returned,
                PvCall::End(e) => Call::End(e),
            };
        }
        let result = match nr {
            nr::XEN_VERSION => version::xen_version(self.id, &self.view(), args),
            nr::CONSOLE_IO => self.hc_console_io(args),
            nr::SCHED_OP => {
                let g = view(&self.mem, &self.vcpu);
                match sched::sched_op(self.id, &g, &hub.evtchn, args) {
                    Ok(s) => match self.schedule(s) {
                        Some(reason) => return Call::End(Ending::Shutdown(reason)),
                        None => Ok(0),
                    },
                    Err(e) => Err(e),
                }
            }
            nr::MEMORY_OP => self.hc_memory_op(args, hub),
            nr::HVM_OP => {
                let g = view(&self.mem, &self.vcpu);
                let mut log = GuestLog::new(self.id, &self.name, &mut self.console);
                hvm::hvm_op(self.id, &g, &mut self.xen, &mut log, &hub.evtchn, args)
            }
            nr::EVENT_CHANNEL_OP => self.hc_event_channel_op(args, hub),
            nr::GRANT_TABLE_OP => {
                let g = self.view();
                hv::grant::op::grant_table_op(self.id, &g, &self.xen.grant_frames, args, hub)
            }
            nr::VCPU_OP => match self.hc_vcpu_op(args) {
                Outcome::Ret(r) => r,
                Outcome::Shutdown(reason) => return Call::End(Ending::Shutdown(reason)),
            },
            nr::SET_TIMER_OP => sched::set_timer_op(&mut self.xen.cpu, args),
            nr::PHYSDEV_OP => self.hc_physdev_op(args, hub),
            nr::MULTICALL => return self.hc_multicall(args, hub),
            // No virtual PMU, as Xen without `vpmu=`: Linux asks at boot
            // and as a CPU goes down, and takes the answer for "disabled".
            nr::XENPMU_OP => Err(Errno::OpNotSupp),
            nr::VM_ASSIST => hvm_vm_assist(args[0], args[1]),
            _ => match control::hypercall(self.id, &self.view(), &hub.evtchn, nr, args) {
                Some(e) => Err(e),
                None => {
                    self.log_guest(alloc::format!("unknown hypercall {nr}: -ENOSYS"));
                    Err(Errno::NoSys)
                }
            },
        };
        Call::Ret(result)
    }

    /// `event_channel_op`: decoded by [`event_channel_op`] over the
    /// domain's components; the FIFO work it leaves done here.
    fn hc_event_channel_op(&mut self, args: [u64; 5], hub: &mut hv::hub::Hub) -> HcResult {
        let g = view(&self.mem, &self.vcpu);
        let ev = &mut hub.evtchn;
        let me = self.id;
        match event_channel_op(me, &g, &mut self.xen, &mut self.exits.sends, ev, args)? {
            Fifo::Done => {}
            Fifo::Reset { own } => {
                if own {
                    self.fifo_destroy();
                }
                // Resetting closes the backend channels too; the toolstack
                // binds them only at domain build.
                let ports = self.xen.ports;
                self.log_guest(alloc::format!(
                    "EVTCHNOP_reset closed every port, including xenstore {} and console {}",
                    ports.xenstore_guest,
                    ports.console_guest
                ));
            }
            Fifo::InitControl(mut a) => {
                let v = a.v;
                self.fifo_control()
                    .init_control(ev, v.control_gfn, v.offset, v.vcpu)?;
                self.view().write_arg(args[1], &mut a)?;
            }
            Fifo::ExpandArray(gfn) => self.fifo_control().expand_array(ev, gfn)?,
        }
        Ok(0)
    }

    /// What the FIFO control hypercalls touch ([`FifoControl`]).
    fn fifo_control(&mut self) -> FifoControl<'_> {
        FifoControl {
            me: self.id,
            mem: &mut self.mem,
            xen: &mut self.xen,
            vcpus: &self.vcpus,
            pv: self.pv.as_deref_mut(),
        }
    }

    /// `memory_op`: a PV domain's own commands, then [`memory::Memory`]
    /// over the domain's components, then the control domain's.
    fn hc_memory_op(&mut self, args: [u64; 5], hub: &mut Hub) -> HcResult {
        if let Some(pv) = self.pv.as_deref_mut() {
            let mut m = super::pv::memory::PvMemory {
                me: self.id,
                g: view(&self.mem, &self.vcpu),
                pv,
                ptdom: self.pci.is_some(),
            };
            if let Some(r) = m.op(args[0] & memory::MEMOP_CMD_MASK, args[1]) {
                return r;
            }
        }
        let mut m = memory::Memory {
            id: self.id,
            space: &mut self.mem,
            cpu: &self.vcpu,
            xen: &mut self.xen,
            pci: self.pci.as_ref(),
            log: GuestLog::new(self.id, &self.name, &mut self.console),
            time_stale: false,
        };
        let r = m.op(args, hub);
        if m.time_stale {
            self.update_time();
        }
        r.unwrap_or_else(|| {
            let cmd = args[0] & memory::MEMOP_CMD_MASK;
            let e = control::memory_op(self.id, &self.view(), &hub.evtchn, cmd, args[1]);
            Err(e.unwrap_or(Errno::NoSys))
        })
    }

    /// `vcpu_op(cmd, k, arg)`: [`vcpu::vcpu_op`] on vCPU `k`'s Xen state,
    /// then what it leaves to the domain (which ends when its last vCPU
    /// goes down).
    fn hc_vcpu_op(&mut self, args: [u64; 5]) -> Outcome {
        match self.vcpu_op_k(args) {
            Ok(Ok(v)) => Outcome::Ret(Ok(v)),
            Ok(Err(reason)) => Outcome::Shutdown(reason),
            Err(e) => Outcome::Ret(Err(e)),
        }
    }

    /// [`Self::hc_vcpu_op`]: the value, or the shutdown reason.
    fn vcpu_op_k(&mut self, args: [u64; 5]) -> Result<Result<i64, u32>, Errno> {
        let (cmd, vcpu, arg) = (args[0], args[1], args[2]);
        let k = match u32::try_from(vcpu) {
            Ok(k) if k < self.nr_vcpus() => k,
            _ => return Err(Errno::NoEnt),
        };
        let g = view(&self.mem, &self.vcpu);
        let current = k == self.vcpus.cur;
        let x = self
            .vcpus
            .xen_of_mut(k, &mut self.xen.cpu)
            .ok_or(Errno::NoEnt)?;
        match vcpu::vcpu_op(&g, x, current, cmd, arg)? {
            vcpu::VcpuOp::Ret(v) => return Ok(Ok(v)),
            vcpu::VcpuOp::TimeMoved => self.update_time(),
            vcpu::VcpuOp::Initialise(start) => self.vcpu_initialise(k, &start)?,
            vcpu::VcpuOp::VcpuInfo(gpa) => {
                // The current contents move to the new place.
                let mut info = [0u8; VCPU_INFO_SIZE];
                let slot = k as usize * VCPU_INFO_SIZE;
                let _ = self.with_shared(|p| {
                    if let Some(s) = p.get(slot..slot + VCPU_INFO_SIZE) {
                        info.copy_from_slice(s);
                    }
                });
                self.mem.write(gpa, &info).map_err(|_| Errno::Inval)?;
                self.xen_of_mut(k).ok_or(Errno::NoEnt)?.vcpu_info = Some(gpa);
                self.update_time();
            }
            vcpu::VcpuOp::Down => {
                if let Some(end) = self.vcpu_down(k, "taken down by VCPUOP_down") {
                    return Ok(Err(match end {
                        Ending::Shutdown(r) => r,
                        Ending::Destroyed(_) => 3,
                    }));
                }
            }
        }
        Ok(Ok(0))
    }

    /// Loads `start` (checked by `VCPUOP_initialise`) into vCPU `k`.
    fn vcpu_initialise(
        &mut self,
        k: u32,
        start: &crate::virt::start::StartState,
    ) -> Result<(), Errno> {
        let loaded = self
            .vcpu_of_mut(k)
            .is_some_and(|v| v.load_start_state(start));
        if !loaded {
            return Err(Errno::Inval);
        }
        if let Some(x) = self.xen_of_mut(k) {
            x.initialised = true;
        }
        self.log_guest(alloc::format!(
            "vCPU {k} initialised: {} rip {:#x} rsp {:#x}",
            if start.efer & (1 << 10) != 0 {
                "64-bit"
            } else {
                "32-bit"
            },
            start.rip,
            start.gprs[crate::virt::start::StartState::RSP]
        ));
        Ok(())
    }

    /// Does what a `sched_op` asked of the current vCPU; the shutdown
    /// reason if the domain ends.
    fn schedule(&mut self, s: sched::Sched) -> Option<u32> {
        use super::events::Wait;
        match s {
            sched::Sched::Done => {}
            sched::Sched::Yield => self.yield_cpu = true,
            sched::Sched::Block => {
                // As Xen: events are enabled by the block itself (a PV
                // guest's upcall mask is cleared); an upcall already
                // pending returns at once.
                if self.is_pv() {
                    self.pv_set_upcall_mask(0);
                }
                if !self.upcall_pending(self.vcpus.cur) {
                    self.xen.cpu.wait = Wait::Event;
                }
                self.yield_cpu = true;
            }
            sched::Sched::Shutdown(reason) => {
                self.flush_console();
                let what = ["poweroff", "reboot", "suspend", "crash", "watchdog"];
                let what = what.get(reason as usize).copied().unwrap_or("?");
                log::info!("{} shut down: {what}", self.prefix());
                return Some(reason);
            }
            sched::Sched::Poll { ports, deadline } => {
                let upcall_ends = if self.is_pv() {
                    self.pv_upcall_mask() == 0
                } else {
                    self.vcpu.rflags() & super::RFLAGS_IF != 0
                };
                self.xen.cpu.wait = Wait::Poll {
                    ports,
                    deadline,
                    upcall_ends,
                };
                // Already satisfied (a port pending, the deadline past): no
                // wait.
                if !self.ready(self.vcpus.cur, super::time::now_ns()) {
                    self.yield_cpu = true;
                }
            }
        }
        None
    }

    /// `multicall(entries, nr)`: each `struct multicall_entry` (`op`,
    /// `result`, `args[6]`; 64 bytes) is called in turn and gets its
    /// result; an entry that cannot be read or written ends the call with
    /// -EFAULT. A call that ends the domain ends it; `iret` ends the batch.
    fn hc_multicall(&mut self, args: [u64; 5], hub: &mut Hub) -> Call {
        const ENTRY: u64 = 64;
        const MAX: u64 = 1 << 16;
        let (list, count) = (args[0], args[1] & 0xffff_ffff);
        if count > MAX {
            return Call::Ret(Err(Errno::Inval));
        }
        for i in 0..count {
            let at = list.wrapping_add(i * ENTRY);
            let b: [u8; 64] = match self.view().copy_from_guest(at) {
                Ok(b) => b,
                Err(e) => return Call::Ret(Err(e)),
            };
            let w = |k: usize| u64::from_le_bytes(b[k * 8..k * 8 + 8].try_into().unwrap_or([0; 8]));
            let (op, a) = (w(0), [w(2), w(3), w(4), w(5), w(6)]);
            if op == nr::MULTICALL {
                // No nesting: as Xen, a multicall inside one fails.
                let _ = self
                    .view()
                    .copy_to_guest(at + 8, &Errno::Inval.to_ret().to_le_bytes());
                continue;
            }
            let v = match self.call(op, a, hub) {
                Call::Ret(Ok(v)) => v,
                Call::Ret(Err(e)) => e.to_ret(),
                Call::Returned => return Call::Returned,
                Call::End(e) => return Call::End(e),
            };
            if let Err(e) = self.view().copy_to_guest(at + 8, &v.to_le_bytes()) {
                return Call::Ret(Err(e));
            }
        }
        Call::Ret(Ok(0))
    }

    /// `console_io`: write (read has no input yet: 0 bytes).
    fn hc_console_io(&mut self, args: [u64; 5]) -> HcResult {
        const WRITE: u64 = 0;
        const READ: u64 = 1;
        match args[0] {
            WRITE => {
                let len = (args[1] as usize).min(4096);
                let mut buf = alloc::vec![0u8; len];
                read_virt(self, args[2], &mut buf).map_err(|()| Errno::Fault)?;
                for b in buf {
                    self.console_byte(b);
                }
                Ok(0)
            }
            READ => Ok(0),
            _ => Err(Errno::NoSys),
        }
    }

    /// `physdev_op`: the EOI of a passed-through function's INTx line and
    /// the queries a guest makes at start of day.
    fn hc_physdev_op(&mut self, args: [u64; 5], hub: &Hub) -> HcResult {
        const EOI: u64 = 12;
        const IRQ_STATUS_QUERY: u64 = 5;
        const SET_IOPL: u64 = 6;
        const GET_FREE_PIRQ: u64 = 23;
        /// XENIRQSTAT_needs_eoi: the guest must `PHYSDEVOP_eoi` the pirq.
        const NEEDS_EOI: u32 = 1;
        match args[0] {
            // An INTx line is masked from its interrupt until this EOI;
            // any other pirq has nothing to acknowledge.
            EOI => {
                let pirq = self.view().read_arg::<PhysdevEoi>(args[1])?.v.irq;
                if crate::passthrough::intx_ready(self.id, pirq) {
                    Ok(0)
                } else {
                    Err(Errno::Inval)
                }
            }
            IRQ_STATUS_QUERY => {
                let mut q = self.view().read_arg::<PhysdevIrqStatusQuery>(args[1])?;
                q.v.flags = if crate::passthrough::is_intx(self.id, q.v.irq) {
                    NEEDS_EOI
                } else {
                    0
                };
                self.view().write_arg(args[1], &mut q)?;
                Ok(0)
            }
            // A PV guest's virtual IOPL (Linux asks for 1 for its
            // kernel): 0-3, anything else -EINVAL.
            SET_IOPL if self.is_pv() => {
                let b: [u8; 4] = self.view().copy_from_guest(args[1])?;
                let iopl = u32::from_le_bytes(b);
                if iopl > 3 {
                    return Err(Errno::Inval);
                }
                if let Some(v) = self.pvv_mut() {
                    v.iopl = u64::from(iopl) << 12;
                }
                Ok(0)
            }
            SET_IOPL | GET_FREE_PIRQ => Err(Errno::Perm),
            cmd => {
                let e = control::physdev_op(self.id, &self.view(), &hub.evtchn, cmd, args[1]);
                Err(e.unwrap_or(Errno::NoSys))
            }
        }
    }
}

/// `vm_assist(cmd, type)` from a PVH guest: as Xen (since 4.14) lets an
/// HVM guest, only `VMASST_TYPE_runstate_update_flag`, which Linux asks
/// for. The flag asks that the runstate area be marked while it is
/// rewritten; the hypervisor never rewrites it after registration, so
/// it changes nothing.
fn hvm_vm_assist(cmd: u64, ty: u64) -> HcResult {
    use hv::pv::abi::vmasst;
    if ty != u64::from(vmasst::TYPE_RUNSTATE_UPDATE_FLAG) {
        return Err(Errno::Inval);
    }
    match cmd {
        vmasst::CMD_ENABLE | vmasst::CMD_DISABLE => Ok(0),
        _ => Err(Errno::NoSys),
    }
}
