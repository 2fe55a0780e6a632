//! The trap exit: a synchronous exception from a guest's EL1, decoded by
//! [`hv_core::trap`] and carried out here: HVCs answered by [`hypercall_server`], emulated
//! MMIO (distributor, redistributors, console UART, control page), SGI1R writes, and
//! containment (an abort or undefined instruction injected into Linux, or the vCPU
//! stopped).

use aarch64_cpu::registers::{
    Readable, Writeable, ELR_EL1, ESR_EL1, FAR_EL1, HPFAR_EL2, ID_AA64MMFR1_EL1, SCTLR_EL1,
    SPSR_EL1, VBAR_EL1,
};
use channel::hv_stats::Counter;
use core::sync::atomic::{AtomicU64, Ordering};
use hv_core::layout::MAX_CPUS;
use log::{error, info, warn};

use hv_core::control_page::{self, ControlAccess};
use hv_core::esr::{DataAbort, Esr};
use hv_core::exception_injection::{self, Access, EntryState, Injection};
use hv_core::fault_reports::Verdict;
use hv_core::hypercall;
use hv_core::hypercall_server::{self, Reply};
use hv_core::mmio_access::{AccessWidth, Refusal};
use hv_core::partition::StopReason;
use hv_core::running::Running;
use hv_core::trap::{self, Monitor, Trap};
use hv_core::vgic::Effect;

use super::super::doorbell::{self, GpioWiring};
use super::super::exception::Frame;
use super::super::stats;
use super::super::vconsole::ConsoleWiring;
use super::super::{console, cpu, gic};
use super::irq_exit::deliver;
use super::{
    partition_name, partition_ready, pinned, run, stop_for_fault, stop_here, stop_with_partition,
    CONSOLES,
};

/// Guest PMU and debug register accesses answered read-as-zero, write-ignored, per CPU:
/// [PMU, debug] (written by the owning CPU, read by whoever prints statistics).
pub(super) static MONITOR_TRAPS: [[AtomicU64; 2]; MAX_CPUS] =
    [const { [const { AtomicU64::new(0) }; 2] }; MAX_CPUS];

/// An SError taken while this CPU's vCPU ran: the vCPU is stopped and reported.
pub fn handle_serror(frame: &mut Frame) -> ! {
    let cpu = cpu::index();
    let Some((partition, vcpu)) = pinned(cpu) else {
        crate::fatal!("SError from a lower EL on CPU {cpu}, which runs no partition");
    };
    error!(
        "partition `{}` vCPU {vcpu}: SError (ESR {:#010x}), PC {:#x}; vCPU stopped",
        partition_name(partition),
        frame.esr,
        frame.elr
    );
    stop_for_fault(partition, vcpu)
}

/// A trap from the guest running on this CPU. Returns to it unless the vCPU is stopped.
pub fn handle_trap(frame: &mut Frame) {
    let cpu = cpu::index();
    let Some((partition, vcpu)) = pinned(cpu) else {
        crate::fatal!("trap from a lower EL on CPU {cpu}, which runs no partition");
    };
    let stopped = partition.state.lock().stopped();
    if let Some(reason) = stopped {
        // The partition stopped while this vCPU ran: it stops at its first trap.
        stop_with_partition(partition, vcpu, reason);
    }
    stats::at_trap();
    let esr = Esr(frame.esr);
    match Trap::decode(esr) {
        Trap::Hvc => {
            stats::count(Counter::TrapHvc);
            hvc(frame, partition, vcpu)
        }
        Trap::Smc => {
            stats::count(Counter::TrapSmc);
            // SMC from a guest: firmware belongs to hv. Refused, not emulated.
            frame.x[0] = abi::SMCCC_NOT_SUPPORTED as u64;
            frame.skip_instruction();
        }
        Trap::WaitForInterrupt => {
            stats::count(Counter::TrapWfi);
            frame.skip_instruction()
        }
        Trap::MonitorAccess {
            unit,
            register,
            read,
        } => {
            // The PMU and debug hardware are hv's (MDCR_EL2): read-as-zero, write-ignored.
            if read {
                frame.set_reg(register, 0);
            }
            let index = match unit {
                Monitor::Pmu => 0,
                Monitor::Debug => 1,
            };
            MONITOR_TRAPS[cpu::index()][index].fetch_add(1, Ordering::Relaxed);
            frame.skip_instruction();
        }
        Trap::Sgi1rWrite { register } => {
            stats::count(Counter::TrapSgi1r);
            let value = frame.reg(register);
            let effect = partition.vgic.lock().write_sgi1r(value, vcpu);
            if let Ok(Some(effect)) = effect {
                deliver(partition, &effect, vcpu);
            }
            frame.skip_instruction();
        }
        Trap::DataAbort(da) => {
            let ipa = trap::fault_ipa(HPFAR_EL2.read(HPFAR_EL2::FIPA), frame.far);
            let refusal = if da.valid {
                match emulate_mmio(frame, partition, vcpu, ipa, da) {
                    Emulated::Done => {
                        frame.skip_instruction();
                        return;
                    }
                    Emulated::NotADevice => None,
                    Emulated::Refused(why) => Some(why),
                }
            } else {
                None
            };
            // A device that refused it counted the trap as its own; a stray access is
            // another trap.
            stats::add(&[
                (Counter::TrapOther, u64::from(refusal.is_none())),
                (Counter::Refused, 1),
            ]);
            if partition.is_linux() {
                refuse_access(
                    frame,
                    partition,
                    vcpu,
                    ipa,
                    Access::Data { write: da.write },
                    refusal,
                );
                return;
            }
            match refusal {
                Some(why) => error!(
                    "partition `{}` vCPU {vcpu}: access refused at IPA {ipa:#x} ({why}), PC \
                     {:#x}, ESR {:#010x}; vCPU {vcpu} stopped, other partitions keep running",
                    partition_name(partition),
                    frame.elr,
                    frame.esr
                ),
                None => error!(
                    "partition `{}` vCPU {vcpu} left its sandbox: {esr} at IPA {ipa:#x} \
                     (VA {:#x}), PC {:#x}, ESR {:#010x}; vCPU {vcpu} stopped, other partitions \
                     keep running",
                    partition_name(partition),
                    frame.far,
                    frame.elr,
                    frame.esr
                ),
            }
            stop_for_fault(partition, vcpu);
        }
        Trap::InstructionAbort if partition.is_linux() => {
            stats::add(&[(Counter::TrapOther, 1), (Counter::Refused, 1)]);
            let ipa = trap::fault_ipa(HPFAR_EL2.read(HPFAR_EL2::FIPA), frame.far);
            refuse_access(frame, partition, vcpu, ipa, Access::Fetch, None);
        }
        Trap::InstructionAbort => {
            // A fetch outside the partition's RAM (stage 2 maps nothing else executable).
            let ipa = trap::fault_ipa(HPFAR_EL2.read(HPFAR_EL2::FIPA), frame.far);
            error!(
                "partition `{}` vCPU {vcpu} left its sandbox: {esr} at IPA {ipa:#x} (VA \
                 {:#x}), PC {:#x}, ESR {:#010x}; vCPU {vcpu} stopped, other vCPUs and \
                 partitions keep running",
                partition_name(partition),
                frame.far,
                frame.elr,
                frame.esr
            );
            stop_here(partition, vcpu, Some(StopReason::Fault));
        }
        _ if partition.is_linux() => {
            // Linux takes it as an undefined instruction (SIGILL for a process) instead of
            // losing a vCPU to something an unprivileged program could do.
            stats::add(&[(Counter::TrapOther, 1), (Counter::Undefined, 1)]);
            let (verdict, total) = note_fault(partition);
            if let Verdict::Report { unreported } = verdict {
                stats::count(Counter::FaultReports);
                warn!(
                    "partition `{}` vCPU {vcpu}: unhandled {esr}, PC {:#x}, ESR {:#010x}; \
                     answered with an undefined instruction (fault {total} this boot{})",
                    partition_name(partition),
                    frame.elr,
                    frame.esr,
                    unreported_note(unreported)
                );
            }
            let injection = exception_injection::undefined_instruction(frame.spsr, entry_state());
            inject(frame, injection, 0);
        }
        _ => {
            stats::add(&[(Counter::TrapOther, 1), (Counter::Refused, 1)]);
            error!(
                "partition `{}` vCPU {vcpu}: unhandled {esr}, PC {:#x}, ESR {:#010x}; vCPU stopped",
                partition_name(partition),
                frame.elr,
                frame.esr
            );
            stop_for_fault(partition, vcpu);
        }
    }
}

/// What became of a guest access to a frame hv may emulate.
enum Emulated {
    Done,
    /// No emulated device at this address: a stray access.
    NotADevice,
    /// The device there refused it, and why.
    Refused(Refusal),
}

impl From<Result<(), Refusal>> for Emulated {
    fn from(r: Result<(), Refusal>) -> Self {
        r.map_or_else(Emulated::Refused, |()| Emulated::Done)
    }
}

/// A guest load or store to one of the frames hv emulates for it (distributor,
/// redistributors, console UART, control page).
fn emulate_mmio(
    frame: &mut Frame,
    partition: &Running,
    vcpu: usize,
    ipa: u64,
    da: DataAbort,
) -> Emulated {
    if partition.gicd.contains_addr(ipa) {
        stats::count(Counter::TrapGicd);
        let offset = ipa - partition.gicd.base;
        return emulate_vgic(frame, partition, vcpu, offset, da, VgicFrame::Distributor).into();
    }
    if let Some(gicr) = partition.gicr.filter(|r| r.contains_addr(ipa)) {
        stats::count(Counter::TrapGicr);
        let offset = ipa - gicr.base;
        return emulate_vgic(
            frame,
            partition,
            vcpu,
            offset,
            da,
            VgicFrame::Redistributors,
        )
        .into();
    }
    if let Some(console) = partition.console.as_ref() {
        if console.frame().contains_addr(ipa) {
            stats::count(Counter::TrapConsole);
            return console
                .access(frame, partition, ipa - console.frame().base, da)
                .into();
        }
    }
    if let Some(gpio) = partition.doorbell_gpio.as_ref() {
        if gpio.frame().contains_addr(ipa) {
            return gpio
                .access(frame, partition, ipa - gpio.frame().base, da)
                .into();
        }
    }
    if let Some(control) = partition.control.filter(|r| r.contains_addr(ipa)) {
        stats::count(Counter::TrapControl);
        return control_page(frame, partition, ipa - control.base, da).into();
    }
    Emulated::NotADevice
}

/// A Linux partition touched an address that is not its own, or one of its emulated
/// devices refused the access (`refusal`, the device's reason): hv reports it (rate-limited
/// per partition and boot, always counted: `hv_core::fault_reports`) and answers with a
/// synchronous external abort at the guest's EL1 (Linux turns it into SIGBUS for a
/// process, or an oops for itself); the partition keeps running.
fn refuse_access(
    frame: &mut Frame,
    partition: &Running,
    vcpu: usize,
    ipa: u64,
    access: Access,
    refusal: Option<Refusal>,
) {
    let (verdict, total) = note_fault(partition);
    if let Verdict::Report { unreported } = verdict {
        stats::count(Counter::FaultReports);
        let what = match access {
            Access::Data { write: true } => "write to",
            Access::Data { write: false } => "read of",
            Access::Fetch => "instruction fetch from",
        };
        let name = partition_name(partition);
        let (va, pc, el) = (frame.far, frame.elr, (frame.spsr >> 2) & 3);
        let since = unreported_note(unreported);
        match refusal {
            Some(why) => warn!(
                "partition `{name}` vCPU {vcpu}: {what} IPA {ipa:#x} refused by {why} (VA \
                 {va:#x}, PC {pc:#x}, from EL{el}); answered with an external abort (fault \
                 {total} this boot{since})"
            ),
            None => warn!(
                "partition `{name}` vCPU {vcpu}: {what} IPA {ipa:#x} outside its sandbox (VA \
                 {va:#x}, PC {pc:#x}, from EL{el}); answered with an external abort (fault \
                 {total} this boot{since})"
            ),
        }
    }
    let injection = exception_injection::external_abort(access, frame.spsr, entry_state());
    inject(frame, injection, frame.far);
}

/// Counts one fault of `partition` and says whether to report it, with the boot's total.
fn note_fault(partition: &Running) -> (Verdict, u64) {
    let mut state = partition.state.lock();
    let verdict = state.faults.note(cpu::ticks(), cpu::tick_hz());
    (verdict, state.faults.total())
}

/// "; N more since the last report, only counted", or nothing (formatted in place: no
/// allocation on a trap path).
struct Unreported(u64);

impl core::fmt::Display for Unreported {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            0 => Ok(()),
            n => write!(f, "; {n} more since the last report, only counted"),
        }
    }
}

fn unreported_note(unreported: u64) -> Unreported {
    Unreported(unreported)
}

/// Makes the guest take `injection` at its EL1 when hv returns to it.
fn inject(frame: &mut Frame, injection: Injection, far: u64) {
    ESR_EL1.set(injection.esr_el1);
    FAR_EL1.set(far);
    ELR_EL1.set(frame.elr);
    SPSR_EL1.set(frame.spsr);
    frame.elr = VBAR_EL1.get() + injection.vector_offset;
    frame.spsr = injection.spsr;
}

/// The CPU-dependent PSTATE bits of an exception entry to the guest's EL1.
fn entry_state() -> EntryState {
    let has_pan = ID_AA64MMFR1_EL1.read(ID_AA64MMFR1_EL1::PAN) != 0;
    // SCTLR_EL1.SPAN is bit 23: 0 = set PAN on exception entry.
    EntryState {
        set_pan: has_pan && SCTLR_EL1.get() & (1 << 23) == 0,
    }
}

/// An access to hv's control page, as [`control_page::access`] answers it.
fn control_page(
    frame: &mut Frame,
    partition: &Running,
    offset: u64,
    da: DataAbort,
) -> Result<(), Refusal> {
    let stored = frame.reg(da.register);
    let counts = doorbell::counts();
    let outcome = control_page::access(&mut partition.state.lock(), offset, da, stored, counts);
    match outcome {
        ControlAccess::Refused(why) => return Err(Refusal::Device(why)),
        ControlAccess::Read(value) => frame.complete_load(da, value),
        ControlAccess::Ring => doorbell::ring_from_linux(),
        ControlAccess::LoadName { which, value } => super::app_load::set_name_word(which, value),
        ControlAccess::Load => super::app_load::request(),
        ControlAccess::LoadStatus => frame.complete_load(da, super::app_load::status()),
        ControlAccess::Ready { first } => {
            if first {
                partition_ready(partition, None);
            }
        }
    }
    Ok(())
}

/// Which of the GIC frames a partition's distributor model answers for was accessed.
#[derive(Clone, Copy)]
enum VgicFrame {
    Distributor,
    /// GICv3 redistributors (offset from the first vCPU's frame).
    Redistributors,
}

/// A guest access to its GICD or GICR frames, through the partition's distributor model.
fn emulate_vgic(
    frame: &mut Frame,
    partition: &Running,
    vcpu: usize,
    offset: u64,
    da: DataAbort,
    which: VgicFrame,
) -> Result<(), Refusal> {
    let device = match which {
        VgicFrame::Distributor => "the distributor",
        VgicFrame::Redistributors => "the redistributors",
    };
    let Some(width) = AccessWidth::from_bytes(da.size) else {
        return Err(Refusal::Device(
            "an emulated GIC frame: access of an unknown size",
        ));
    };
    if da.write {
        let value = frame.reg(da.register);
        let gic = gic::get().expect("partitions run only once the GIC is up");
        // Line effects reach the GIC as the model decides them, under its lock (as in
        // `reset_interrupts`): no effect list is built and copied on this path, and two
        // vCPUs' writes reach the hardware in the model's order. The SGI (at most one per
        // access) is delivered after the lock is released.
        let mut sgi = None;
        let apply = |effect: Effect| match effect {
            Effect::SendSgi { .. } => sgi = Some(effect),
            other => gic.apply(&other),
        };
        let written = {
            let mut vgic = partition.vgic.lock();
            match which {
                VgicFrame::Distributor => vgic.write_each(offset, width, value, vcpu, apply),
                VgicFrame::Redistributors => {
                    vgic.write_redist_each(offset, width, value, vcpu, apply)
                }
            }
        };
        if let Err(error) = written {
            return Err(Refusal::Access { device, error });
        }
        if let Some(effect) = sgi {
            deliver(partition, &effect, vcpu);
        }
        // The guest may just have enabled its console's line (or its distributor) while
        // the emulated UART's line is high.
        if let Some(console) = &partition.console {
            console.update_irq(partition);
        }
    } else {
        // Pending and active read as the lines' true state: the physical GIC, this CPU's
        // list registers and hv's queues, merged with the model.
        let live = super::live_lines::Live {
            gic: gic::get().expect("partitions run only once the GIC is up"),
            exitless: partition.exitless,
        };
        let value = {
            let vgic = partition.vgic.lock();
            match which {
                VgicFrame::Distributor => vgic.read_live(offset, width, vcpu, &live),
                VgicFrame::Redistributors => vgic.read_redist_live(offset, width, vcpu, &live),
            }
        };
        frame.complete_load(
            da,
            value.map_err(|error| Refusal::Access { device, error })?,
        );
    }
    Ok(())
}

/// An HVC: [`hypercall_server::serve`] answers it; hv carries out what else it asks.
fn hvc(frame: &mut Frame, partition: &Running, vcpu: usize) {
    let regs: [u64; 8] = frame.x[..8].try_into().expect("8 registers");
    let call = hypercall::decode(&regs);
    let reply = hypercall_server::serve(call, &mut partition.state.lock(), vcpu);
    if let Some(answer) = reply.answer() {
        answer.write_to(frame);
    }
    match reply {
        Reply::Return(_) => {}
        Reply::Started {
            vcpu: started,
            entry,
        } => {
            info!(
                "partition `{}` vCPU {vcpu} starts vCPU {started} at {entry:#x}",
                partition_name(partition)
            );
            cpu::send_event();
        }
        Reply::CpuOff => run(cpu::index()),
        Reply::SystemOff => {
            warn!(
                "partition `{}` powered itself off (PSCI SYSTEM_OFF from vCPU {vcpu}); other \
                 partitions keep running",
                partition_name(partition)
            );
            stop_here(partition, vcpu, Some(StopReason::SystemOff));
        }
        Reply::SystemReset => {
            warn!(
                "partition `{}` asked for a reset (PSCI SYSTEM_RESET from vCPU {vcpu}): \
                 reloading it once its vCPUs stopped; other partitions keep running",
                partition_name(partition)
            );
            stop_here(partition, vcpu, Some(StopReason::SystemReset));
        }
        Reply::Console(bytes) => {
            stats::count_n(Counter::ConsoleOut, bytes.as_slice().len() as u64);
            let name = partition_name(partition);
            let cpu = cpu::index();
            CONSOLES[cpu].lock().push(bytes.as_slice(), |line| {
                console::guest_line(name, cpu, line);
            });
        }
        Reply::Ready => partition_ready(partition, Some(vcpu)),
        Reply::RingDoorbell => {
            // Only the RT partition rings Linux (Linux rings through the control page).
            if partition.is_linux() || !doorbell::ring_from_rt() {
                frame.x[0] = abi::SMCCC_NOT_SUPPORTED as u64;
            }
        }
    }
}
