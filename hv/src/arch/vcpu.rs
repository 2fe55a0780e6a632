//! Running partitions: each physical CPU enters its one vCPU at EL1 and handles its traps
//! (HVC: PSCI and hypercalls; SMC: refused; stage-2 data aborts: containment).
//!
//! The partition table is built once by the boot CPU ([`install`]) and never changes
//! shape; each partition's mutable state sits behind its own lock, taken only for the
//! short PSCI/ready bookkeeping. A guest can make `hv` print, start its own vCPUs and stop
//! itself; nothing it passes can crash `hv` or touch another partition.

use alloc::vec::Vec;
use core::arch::asm;

use aarch64_cpu::registers::{
    Readable, Writeable, ACTLR_EL2, CNTHCTL_EL2, CNTHP_CTL_EL2, CNTVOFF_EL2, CNTV_CTL_EL0, ELR_EL1,
    ESR_EL1, FAR_EL1, HCR_EL2, HPFAR_EL2, ID_AA64MMFR1_EL1, MIDR_EL1, SCTLR_EL1, SPSR_EL1,
    VBAR_EL1, VMPIDR_EL2, VTCR_EL2, VTTBR_EL2,
};
use log::{error, info, warn};
use spin::{Mutex, Once};

use super::exception::Frame;
use super::vconsole::ConsoleWiring;
use super::{cache, console, cpu, gic, pmu, power};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use hv_core::control_page::{self, ControlAccess};
use hv_core::esr::DataAbort;
use hv_core::esr::Esr;
use hv_core::exception_injection::{self, Access, EntryState, Injection};
use hv_core::forwarding::{self, Disposition, HvLines};
use hv_core::hypercall;
use hv_core::hypercall_server::{self, Reply};
use hv_core::layout::MAX_CPUS;
use hv_core::mmio_access::AccessWidth;
use hv_core::owed_irqs::OwedIrqs;
use hv_core::partition::{LineBuffer, StopReason};
use hv_core::running::Running;
use hv_core::trap::{self, Trap};
use hv_core::vgic::Effect;
use hv_core::virtual_sgi::SgiQueue;
use platform::config::GicVersion;

/// What (re)starting a partition does to memory and to the GIC.
pub trait PartitionRestart {
    /// Copies the partition's payloads into its RAM (see the impl).
    ///
    /// # Safety
    /// The placement and initramfs address are `guest_image`'s for this partition's RAM,
    /// which hv maps, and no vCPU of the partition runs.
    unsafe fn load(&self);
    /// Puts the partition's interrupts in their boot state (see the impl).
    fn reset_interrupts(&self);
}

impl PartitionRestart for Running {
    /// Copies the Image (zeroing the rest of its memory) and the DTB into the partition's
    /// RAM and makes them visible to a CPU starting with caches off. Used at boot and at
    /// every reset, when no vCPU of the partition runs.
    unsafe fn load(&self) {
        let p = &self.placement;
        // SAFETY: the caller vouches for the placement: `guest_image::place` checked that
        // the Image (with its memory size) and the DTB room lie inside the partition's RAM,
        // which hv maps and which no vCPU of the partition is running in.
        unsafe {
            let load = p.load as *mut u8;
            core::ptr::copy_nonoverlapping(self.image.as_ptr(), load, self.image.len());
            core::ptr::write_bytes(
                load.add(self.image.len()),
                0,
                p.size as usize - self.image.len(),
            );
            core::ptr::copy_nonoverlapping(self.dtb.as_ptr(), p.dtb as *mut u8, self.dtb.len());
        }
        cache::clean_for_guest(p.load, p.size);
        cache::clean_for_guest(p.dtb, self.dtb.len() as u64);
        if let Some(console) = &self.console {
            console.reset();
        }
        if let Some((bytes, at)) = self.initrd {
            // SAFETY: as above; `guest_image::place_initrd` put the initramfs between the
            // Image's memory and the DTB room.
            unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), at as *mut u8, bytes.len()) };
            cache::clean_for_guest(at, bytes.len() as u64);
        }
    }

    /// Puts the partition's interrupts in their boot state: a fresh distributor model and
    /// the matching physical setup of its lines. GICv2 banked (per-CPU) lines can only be
    /// set up from their own CPU, which does so when it enters its vCPU; GICv3
    /// redistributors are reachable from anywhere, but only Linux programs its own, so only
    /// its PPIs are reset here (guest-rt relies on hv enabling its timer at vCPU entry).
    fn reset_interrupts(&self) {
        let Some(gic) = gic::get() else {
            return;
        };
        let banked_here = self.is_linux() && gic.version() == GicVersion::V3;
        let mut vgic = self.vgic.lock();
        *vgic = self.vgic_at_boot.clone();
        vgic.reset_effects(|effect| {
            if banked_here || !effect.is_banked() {
                gic.apply(&effect);
            }
        });
    }
}

static PARTITIONS: Once<Vec<Running>> = Once::new();
/// INTID of the EL1 virtual timer PPI (from the board's DTB), forwarded to every vCPU.
static VTIMER: Once<u32> = Once::new();
/// INTID of the EL2 physical timer PPI, which paces the console drain on idle CPUs.
static HYP_TIMER: Once<u32> = Once::new();
/// Power off once every started partition reported ready (`--smoke`).
static SMOKE: Once<bool> = Once::new();
static CONSOLES: [Mutex<LineBuffer>; MAX_CPUS] =
    [const { Mutex::new(LineBuffer::new()) }; MAX_CPUS];

/// The virtual timer PPI on every board Bulkhead supports (GIC INTID 27).
const DEFAULT_VTIMER: u32 = 27;
/// The EL2 physical timer PPI on every board Bulkhead supports (GIC INTID 26).
const DEFAULT_HYP_TIMER: u32 = 26;
/// Interrupts hv took but could not forward, per CPU.
static DROPPED: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Interrupts forwarded to the vCPU of each CPU, and the PMU count hv spent doing it
/// (written by the owning CPU only; read by whoever prints statistics).
static FORWARDED: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static FORWARD_COST: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Prints what hv spent forwarding interrupts, per CPU that forwarded any, and what each
/// partition's distributor refused.
pub fn print_irq_stats() {
    for p in partitions() {
        let stats = p.vgic.lock().stats();
        info!(
            "stats: partition `{}`: distributor writes ignored: {} on foreign lines, {} naming \
             foreign CPUs, {} to reserved registers",
            partition_name(p),
            stats.foreign_lines,
            stats.foreign_cpus,
            stats.reserved
        );
    }
    super::vconsole::print_stats(partitions());
    for cpu in 0..MAX_CPUS {
        let n = FORWARDED[cpu].load(Ordering::Relaxed);
        let cost = FORWARD_COST[cpu].load(Ordering::Relaxed);
        if let Some(per_irq) = cost.checked_div(n) {
            info!(
                "stats: CPU {cpu}: {n} interrupts forwarded, {per_irq} PMU counts in hv per \
                 interrupt (instructions under -icount), {} dropped, {} list-register refills, \
                 {} virtual SGIs refused",
                DROPPED[cpu].load(Ordering::Relaxed),
                REFILLS[cpu].load(Ordering::Relaxed),
                PENDING_SGIS[cpu].refused()
            );
        }
    }
}

/// SCTLR_EL1 at vCPU entry: RES1 bits only (MMU, caches and alignment checks off), as an
/// EL1 kernel expects from the boot protocol. Arm ARM D24.2.175: RES1 bits 29, 28, 23, 22,
/// 20, 11.
const SCTLR_EL1_RESET: u64 = 0x30d0_0800;
/// SPSR for the first entry: EL1h, D/A/I/F masked.
const SPSR_EL1H_MASKED: u64 = 0x3c5;
/// Stage-2 start level 1 with a 39-bit IPA space (VTCR_EL2.T0SZ = 25).
const VTCR_T0SZ: u64 = 64 - hv_core::stage2::IPA_BITS as u64;

/// Publishes the started partitions; secondaries waiting in [`run`] pick them up.
pub fn install(partitions: Vec<Running>, smoke: bool, vtimer: u32, hyp_timer: u32) {
    SMOKE.call_once(|| smoke);
    VTIMER.call_once(|| vtimer);
    HYP_TIMER.call_once(|| hyp_timer);
    let partitions = PARTITIONS.call_once(|| partitions);
    super::vconsole::init_input(partitions);
    cpu::send_event();
}

fn partitions() -> &'static [Running] {
    PARTITIONS.get().map(Vec::as_slice).unwrap_or(&[])
}

/// The partition and vCPU pinned to physical CPU `cpu`, if a started partition owns it.
fn pinned(cpu: usize) -> Option<(&'static Running, usize)> {
    // Cached per CPU on the first lookup: the pinning never changes, and traps and
    // interrupts (the hot path) then take no lock to find their partition.
    match PINNED[cpu].load(Ordering::Acquire) {
        0 => {}
        UNPINNED => return None,
        code => return Some((&partitions()[(code >> 8) - 1], code & 0xff)),
    }
    let found = partitions().iter().enumerate().find_map(|(i, p)| {
        let vcpu = p.state.lock().vcpu_of_cpu(cpu as u32)?;
        Some((i, p, vcpu))
    });
    let code = found.map_or(UNPINNED, |(i, _, vcpu)| ((i + 1) << 8) | vcpu);
    PINNED[cpu].store(code, Ordering::Release);
    found.map(|(_, p, vcpu)| (p, vcpu))
}

/// Per CPU: 0 = not looked up yet, [`UNPINNED`] = no partition, else
/// `(partition index + 1) << 8 | vCPU`.
static PINNED: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];
const UNPINNED: usize = usize::MAX;

/// Waits for this CPU's vCPU to be started (boot or PSCI CPU_ON), then enters it.
/// CPUs no started partition owns stay parked here.
pub fn run(cpu: usize) -> ! {
    while PARTITIONS.get().is_none() {
        cpu::park_until_event();
    }
    let Some((partition, vcpu)) = pinned(cpu) else {
        console::drain_idle(HYP_TIMER.get().copied().unwrap_or(DEFAULT_HYP_TIMER));
    };
    loop {
        // The lock guard must be gone before `enter`, which never returns.
        let pending = partition.state.lock().take_pending(vcpu);
        if let Some((entry, context)) = pending {
            enter(partition, vcpu, entry, context);
        }
        cpu::park_until_event();
    }
}

/// Configures EL2 for `partition` and jumps to `entry` at EL1 with x0 = `context`, on a
/// fresh hv stack (traps from the guest start from an empty stack).
fn enter(partition: &Running, vcpu: usize, entry: u64, context: u64) -> ! {
    // No EL1 write access to implementation-defined core and L2 control registers (the Pi
    // firmware grants it), and IMPLEMENTATION DEFINED system registers trap (TIDCP): a
    // partition must not retune what the cluster shares.
    ACTLR_EL2.set(0);
    // Exit-less: IRQs and FIQs go straight to EL1 (IMO/FMO clear); SErrors still come here.
    let route = if partition.exitless {
        HCR_EL2::IMO::CLEAR + HCR_EL2::FMO::CLEAR
    } else {
        HCR_EL2::IMO::SET + HCR_EL2::FMO::SET
    };
    HCR_EL2.write(
        HCR_EL2::VM::SET
            + HCR_EL2::RW::SET
            + HCR_EL2::TSC::SET
            + HCR_EL2::TIDCP::SET
            + route
            + HCR_EL2::FB::SET
            + HCR_EL2::BSU.val(1)
            + HCR_EL2::PTW::SET,
    );
    VTCR_EL2.write(
        VTCR_EL2::RES1::SET
            + VTCR_EL2::PS::PA_40B_1TB
            + VTCR_EL2::TG0::Granule4KB
            + VTCR_EL2::SH0::Inner
            + VTCR_EL2::ORGN0::NormalWBRAWA
            + VTCR_EL2::IRGN0::NormalWBRAWA
            + VTCR_EL2::SL0::Granule4KBLevel1
            + VTCR_EL2::T0SZ.val(VTCR_T0SZ),
    );
    VTTBR_EL2.set(partition.stage2_root | (u64::from(partition.vmid) << 48));
    VMPIDR_EL2.write(VMPIDR_EL2::RES1::SET + VMPIDR_EL2::Aff0.val(vcpu as u64));
    CNTHCTL_EL2.write(CNTHCTL_EL2::EL1PCEN::SET + CNTHCTL_EL2::EL1PCTEN::SET);
    CNTVOFF_EL2.set(0);
    pmu::init();
    // Nothing of a previous boot of this vCPU may fire into the new one.
    CNTV_CTL_EL0.set(0);
    VBAR_EL1.set(0);
    PENDING_SGIS[cpu::index()].clear();
    if let Some(gic) = gic::get() {
        gic.init_cpu_for(partition.exitless);
        gic.reset_vcpu_interface();
        OWED[cpu::index()].lock().retain(|intid| {
            gic.deactivate(intid);
            false
        });
        gic.enable_private(VTIMER.get().copied().unwrap_or(DEFAULT_VTIMER));
        if partition.exitless {
            // The guest's own SGIs arrive physically.
            for sgi in 0..16 {
                gic.enable_private(sgi);
            }
        } else {
            gic.enable_private(gic::KICK_SGI);
            gic.enable_private(gic::MAINTENANCE);
        }
        if partition.console.is_some() {
            // Each of its CPUs polls the console's input (whichever is online).
            gic.enable_private(HYP_TIMER.get().copied().unwrap_or(DEFAULT_HYP_TIMER));
            arm_console_tick();
        }
    }
    let stack_top = super::image::stack_top(cpu::index());
    // SAFETY: the stage-2 tables map only the partition's own memory, so whatever the guest
    // does at EL1 stays inside its sandbox; hv's stack is reset because nothing on it is
    // needed again (every trap starts a new frame from the top).
    unsafe {
        asm!(
            "msr    vpidr_el2, {midr}",
            "msr    sctlr_el1, {sctlr}",
            // The TLBI must see the new VMID (VTTBR_EL2 written above).
            "isb",
            "tlbi   vmalls12e1",
            "dsb    nsh",
            "msr    elr_el2, {entry}",
            "msr    spsr_el2, {spsr}",
            "mov    sp, {stack}",
            // Nothing of hv's may leak into the guest's registers.
            "mov    x1, xzr", "mov    x2, xzr", "mov    x3, xzr", "mov    x4, xzr",
            "mov    x5, xzr", "mov    x6, xzr", "mov    x7, xzr", "mov    x8, xzr",
            "mov    x9, xzr", "mov    x10, xzr", "mov    x11, xzr", "mov    x12, xzr",
            "mov    x13, xzr", "mov    x14, xzr", "mov    x15, xzr", "mov    x16, xzr",
            "mov    x17, xzr", "mov    x18, xzr", "mov    x19, xzr", "mov    x20, xzr",
            "mov    x21, xzr", "mov    x22, xzr", "mov    x23, xzr", "mov    x24, xzr",
            "mov    x25, xzr", "mov    x26, xzr", "mov    x27, xzr", "mov    x28, xzr",
            "mov    x29, xzr", "mov    x30, xzr",
            "isb",
            "eret",
            midr = in(reg) MIDR_EL1.get(),
            sctlr = in(reg) SCTLR_EL1_RESET,
            entry = in(reg) entry,
            spsr = in(reg) SPSR_EL1H_MASKED,
            stack = in(reg) stack_top,
            in("x0") context,
            options(noreturn),
        )
    }
}

/// Physical interrupts taken while this CPU's vCPU ran (HCR_EL2.IMO), each handled as
/// [`forwarding::dispose`] decides: hv's own, forwarded to the vCPU as a hardware-linked
/// virtual interrupt, or deactivated and counted.
pub fn handle_irq() {
    let Some(gic) = gic::get() else {
        return;
    };
    let start = pmu::count();
    let me = cpu::index();
    let vtimer = VTIMER.get().copied().unwrap_or(DEFAULT_VTIMER);
    let pinned_here = pinned(me);
    // This CPU's partition, with its emulated console if it has one (Linux).
    let console = pinned_here.and_then(|(p, _)| Some((p, p.console.as_ref()?)));
    let hyp_timer = HYP_TIMER.get().copied().unwrap_or(DEFAULT_HYP_TIMER);
    let lines = HvLines {
        kick: gic::KICK_SGI,
        maintenance: gic::MAINTENANCE,
        hyp_timer,
        vtimer,
    };
    let pinned_vgic = pinned_here.map(|(p, vcpu)| (&p.vgic, vcpu));
    let mut kicked = false;
    // A level-sensitive line hv could neither forward nor silence would come straight
    // back; the bound makes sure hv returns to the guest whatever happens.
    for _ in 0..MAX_IRQS_PER_EXIT {
        let Some(intid) = gic.acknowledge() else {
            break;
        };
        match forwarding::dispose(intid, &lines, pinned_vgic) {
            disposition @ (Disposition::Kick | Disposition::Refill) => {
                gic.deactivate(intid);
                kicked |= disposition == Disposition::Kick;
                drain_sgis(gic);
                inject_owed(gic);
                if let Some((p, console)) = console {
                    console.update_irq(p);
                }
            }
            Disposition::ConsoleTick => {
                if let Some((p, console)) = console {
                    arm_console_tick();
                    super::vconsole::poll_input(partitions());
                    // A level still high after the guest's EOI is raised again here.
                    console.update_irq(p);
                }
                gic.deactivate(intid);
            }
            Disposition::Forward => {
                if gic.inject_hw(intid) {
                    FORWARDED[me].fetch_add(1, Ordering::Relaxed);
                    FORWARD_COST[me].fetch_add(pmu::count().wrapping_sub(start), Ordering::Relaxed);
                } else {
                    // No free list register: the line stays active (so it cannot fire
                    // again) and is injected when the list registers drain.
                    owe(gic, intid);
                }
            }
            Disposition::Drop => {
                gic.deactivate(intid);
                let dropped = DROPPED[me].fetch_add(1, Ordering::Relaxed);
                if dropped == 0 {
                    warn!("interrupt {intid} not forwarded (no partition on this CPU owns it)");
                }
            }
        }
    }
    // A partition that stops (SYSTEM_OFF or SYSTEM_RESET from another vCPU) kicks its
    // running vCPUs: only then is its state worth a look (not on every timer interrupt).
    if let Some((p, vcpu)) = pinned_here.filter(|_| kicked) {
        let stopped = p.state.lock().stopped();
        if let Some(reason) = stopped {
            stop_with_partition(p, vcpu, reason);
        }
    }
}

/// Stops this vCPU because its partition stopped (`reason`) while it ran, and says so.
fn stop_with_partition(partition: &Running, vcpu: usize, reason: StopReason) -> ! {
    let why = match reason {
        StopReason::SystemReset | StopReason::Rebooting => "resetting",
        StopReason::SystemOff | StopReason::Fault => "off",
    };
    info!(
        "partition `{}` vCPU {vcpu} stopped: the partition is {why}",
        partition_name(partition)
    );
    stop_here(partition, vcpu, None)
}

/// Interrupts one exit handles at most.
const MAX_IRQS_PER_EXIT: usize = 64;

/// Hardware interrupts taken but not yet in a list register, per CPU (left active).
static OWED: [Mutex<OwedIrqs>; MAX_CPUS] = [const { Mutex::new(OwedIrqs::new()) }; MAX_CPUS];

fn owe(gic: &gic::Gic, intid: u32) {
    let me = cpu::index();
    if OWED[me].lock().push(intid) {
        REFILLS[me].fetch_add(1, Ordering::Relaxed);
        gic.request_refill(true);
    } else {
        gic.deactivate(intid);
        DROPPED[me].fetch_add(1, Ordering::Relaxed);
    }
}

/// Injects the hardware interrupts owed to this CPU's vCPU that now find a list register.
fn inject_owed(gic: &gic::Gic) {
    let mut owed = OWED[cpu::index()].lock();
    if owed.is_empty() {
        return;
    }
    owed.retain(|intid| !gic.inject_hw(intid));
    if !owed.is_empty() {
        gic.request_refill(true);
    }
}

/// Arms this CPU's EL2 physical timer for the next console input poll.
fn arm_console_tick() {
    let ticks = cpu::tick_hz() * super::vconsole::POLL_MS / 1000;
    // SAFETY: the EL2 physical timer belongs to hv; arming it only raises its PPI.
    unsafe { core::arch::asm!("msr cnthp_tval_el2, {0}", in(reg) ticks.max(1), options(nostack)) };
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::SET);
}

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
    stop_here(partition, vcpu, Some(StopReason::Fault))
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
    let esr = Esr(frame.esr);
    match Trap::decode(esr) {
        Trap::Hvc => hvc(frame, partition, vcpu),
        Trap::Smc => {
            // SMC from a guest: firmware belongs to hv. Refused, not emulated.
            frame.x[0] = abi::SMCCC_NOT_SUPPORTED as u64;
            frame.skip_instruction();
        }
        Trap::WaitForInterrupt => frame.skip_instruction(),
        Trap::Sgi1rWrite { register } => {
            let value = frame.reg(register);
            let effect = partition.vgic.lock().write_sgi1r(value, vcpu);
            if let Ok(Some(effect)) = effect {
                deliver(partition, &effect, vcpu);
            }
            frame.skip_instruction();
        }
        Trap::DataAbort(da) => {
            let ipa = trap::fault_ipa(HPFAR_EL2.read(HPFAR_EL2::FIPA), frame.far);
            if da.valid && emulate_mmio(frame, partition, vcpu, ipa, da) {
                frame.skip_instruction();
                return;
            }
            if partition.is_linux() {
                refuse_access(
                    frame,
                    partition,
                    vcpu,
                    ipa,
                    Access::Data { write: da.write },
                );
                return;
            }
            error!(
                "partition `{}` vCPU {vcpu} left its sandbox: {esr} at IPA {ipa:#x} \
                 (VA {:#x}), PC {:#x}, ESR {:#010x}; vCPU {vcpu} stopped, other vCPUs and \
                 partitions keep running",
                partition_name(partition),
                frame.far,
                frame.elr,
                frame.esr
            );
            stop_here(partition, vcpu, Some(StopReason::Fault));
        }
        Trap::InstructionAbort if partition.is_linux() => {
            let ipa = trap::fault_ipa(HPFAR_EL2.read(HPFAR_EL2::FIPA), frame.far);
            refuse_access(frame, partition, vcpu, ipa, Access::Fetch);
        }
        _ if partition.is_linux() => {
            // Linux takes it as an undefined instruction (SIGILL for a process) instead of
            // losing a vCPU to something an unprivileged program could do.
            let n = REFUSED.fetch_add(1, Ordering::Relaxed);
            if n < REFUSED_REPORTED {
                warn!(
                    "partition `{}` vCPU {vcpu}: unhandled {esr}, PC {:#x}, ESR {:#010x}; \
                     answered with an undefined instruction",
                    partition_name(partition),
                    frame.elr,
                    frame.esr
                );
            }
            let injection = exception_injection::undefined_instruction(frame.spsr, entry_state());
            inject(frame, injection, 0);
        }
        _ => {
            error!(
                "partition `{}` vCPU {vcpu}: unhandled {esr}, PC {:#x}, ESR {:#010x}; vCPU stopped",
                partition_name(partition),
                frame.elr,
                frame.esr
            );
            stop_here(partition, vcpu, Some(StopReason::Fault));
        }
    }
}

/// A guest load or store to one of the frames hv emulates for it (distributor,
/// redistributors, console UART, control page). False if the address is none of them or
/// the model refuses the access (the caller then treats it as a stray access).
fn emulate_mmio(
    frame: &mut Frame,
    partition: &Running,
    vcpu: usize,
    ipa: u64,
    da: DataAbort,
) -> bool {
    if partition.gicd.contains_addr(ipa) {
        let offset = ipa - partition.gicd.base;
        return emulate_vgic(frame, partition, vcpu, offset, da, VgicFrame::Distributor);
    }
    if let Some(gicr) = partition.gicr.filter(|r| r.contains_addr(ipa)) {
        let offset = ipa - gicr.base;
        return emulate_vgic(
            frame,
            partition,
            vcpu,
            offset,
            da,
            VgicFrame::Redistributors,
        );
    }
    if let Some(console) = partition.console.as_ref() {
        if console.frame().contains_addr(ipa) {
            return console.access(frame, partition, ipa - console.frame().base, da);
        }
    }
    if let Some(control) = partition.control.filter(|r| r.contains_addr(ipa)) {
        return control_page(frame, partition, ipa - control.base, da);
    }
    false
}

/// A Linux partition touched an address that is not its own: hv reports it and answers
/// with a synchronous external abort at the guest's EL1 (Linux turns it into SIGBUS for a
/// process, or an oops for itself); the partition keeps running.
fn refuse_access(frame: &mut Frame, partition: &Running, vcpu: usize, ipa: u64, access: Access) {
    let n = REFUSED.fetch_add(1, Ordering::Relaxed);
    if n < REFUSED_REPORTED {
        warn!(
            "partition `{}` vCPU {vcpu}: {} IPA {ipa:#x} outside its sandbox (VA {:#x}, PC {:#x}, \
             from EL{}); answered with an external abort",
            partition_name(partition),
            match access {
                Access::Data { write: true } => "write to",
                Access::Data { write: false } => "read of",
                Access::Fetch => "instruction fetch from",
            },
            frame.far,
            frame.elr,
            (frame.spsr >> 2) & 3
        );
    } else if n == REFUSED_REPORTED {
        warn!("further refused accesses are counted, not reported");
    }
    let injection = exception_injection::external_abort(access, frame.spsr, entry_state());
    inject(frame, injection, frame.far);
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

/// Refused accesses reported one by one before hv only counts them (a guest looping over
/// foreign memory must not flood the console).
const REFUSED_REPORTED: u64 = 16;
static REFUSED: AtomicU64 = AtomicU64::new(0);

/// An access to hv's control page, as [`control_page::access`] answers it.
fn control_page(frame: &mut Frame, partition: &Running, offset: u64, da: DataAbort) -> bool {
    let stored = frame.reg(da.register);
    let outcome = control_page::access(&mut partition.state.lock(), offset, da, stored);
    match outcome {
        ControlAccess::Refused => return false,
        ControlAccess::Read(value) => frame.complete_load(da, value),
        ControlAccess::Ready { first } => {
            if first {
                partition_ready(partition, None);
            }
        }
    }
    true
}

/// Reports that `partition` (or one vCPU of it) is ready; powers off under `--smoke` once
/// every started partition is.
fn partition_ready(partition: &Running, vcpu: Option<usize>) {
    let name = partition_name(partition);
    match vcpu {
        Some(vcpu) => info!(
            "ready: partition `{name}` vCPU {vcpu} (CPU {})",
            cpu::index()
        ),
        None => info!("ready: partition `{name}` (all its vCPUs)"),
    }
    if partition.state.lock().all_ready() && partitions().iter().all(|p| p.state.lock().all_ready())
    {
        info!("ready: every partition reported ready");
        if SMOKE.get().copied().unwrap_or(false) {
            print_irq_stats();
            info!("smoke: every CPU and partition reported ready, powering off");
            power::system_off();
        }
    }
}

/// Which of the GIC frames a partition's distributor model answers for was accessed.
#[derive(Clone, Copy)]
enum VgicFrame {
    Distributor,
    /// GICv3 redistributors (offset from the first vCPU's frame).
    Redistributors,
}

/// A guest access to its GICD or GICR frames, through the partition's distributor model.
/// False if the model refuses the access (a stray access for the caller).
fn emulate_vgic(
    frame: &mut Frame,
    partition: &Running,
    vcpu: usize,
    offset: u64,
    da: DataAbort,
    which: VgicFrame,
) -> bool {
    let Some(width) = AccessWidth::from_bytes(da.size) else {
        return false;
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
        if written.is_err() {
            return false;
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
        let value = {
            let vgic = partition.vgic.lock();
            match which {
                VgicFrame::Distributor => vgic.read(offset, width, vcpu),
                VgicFrame::Redistributors => vgic.read_redist(offset, width, vcpu),
            }
        };
        let Ok(value) = value else {
            return false;
        };
        frame.complete_load(da, value);
    }
    true
}

/// Virtual SGIs waiting for the vCPU of each CPU.
static PENDING_SGIS: [SgiQueue; MAX_CPUS] = [const { SgiQueue::new() }; MAX_CPUS];

/// Sends a virtual SGI from `source` (vCPU index) to the vCPUs on the effect's CPUs:
/// queued per target CPU, then injected there (directly on this CPU; after a physical
/// kick SGI on another).
fn deliver(partition: &Running, effect: &Effect, source: usize) {
    let Effect::SendSgi { intid, cpus } = *effect else {
        return;
    };
    let gic = gic::get().expect("partitions run only once the GIC is up");
    if partition.exitless {
        // The target CPUs take the SGI themselves at EL1, with its own number.
        for cpu in cpus.iter() {
            gic.send_sgi(intid, cpu as usize);
        }
        return;
    }
    let me = cpu::index();
    for cpu in cpus.iter() {
        if let Err(refused) = PENDING_SGIS[cpu as usize].push(source, intid) {
            // Counted by the queue (and printed with the statistics); reported once.
            if PENDING_SGIS[cpu as usize].refused() == 1 {
                warn!("virtual SGI not queued for CPU {cpu}: {refused:?}");
            }
            continue;
        }
        if cpu as usize == me {
            drain_sgis(gic);
        } else {
            gic.send_sgi(gic::KICK_SGI, cpu as usize);
        }
    }
}

/// Injects the virtual SGIs queued for this CPU's vCPU; those that find no free list
/// register stay queued for the next trap.
fn drain_sgis(gic: &gic::Gic) {
    let me = cpu::index();
    let mut left = false;
    for (intid, source) in PENDING_SGIS[me].take() {
        if !gic.inject_sgi(intid, source) {
            // Cannot be refused: it was queued from the same numbers.
            let _ = PENDING_SGIS[me].push(source as usize, intid);
            left = true;
        }
    }
    if left {
        REFILLS[me].fetch_add(1, Ordering::Relaxed);
    }
    // More than the list registers hold: come back when they drain.
    gic.request_refill(left);
}

/// Times the list registers were full and the maintenance interrupt had to refill them.
static REFILLS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

fn partition_name(p: &Running) -> alloc::string::String {
    p.state.lock().name.clone()
}

/// Stops this vCPU; with `reason`, records why. The last vCPU of a resetting partition to
/// stop reloads and reboots it. The CPU then waits in [`run`] until its vCPU is started
/// again (after a reset, or never).
fn stop_here(partition: &Running, vcpu: usize, reason: Option<StopReason>) -> ! {
    let (restart, running) = {
        let mut state = partition.state.lock();
        state.stop_vcpu(vcpu);
        if let Some(reason @ (StopReason::SystemOff | StopReason::SystemReset)) = reason {
            state.stop(reason);
        }
        (state.take_restart(), state.running_cpus())
    };
    // Its place among the started partitions (the input router's numbering).
    let index = partitions()
        .iter()
        .position(|p| core::ptr::eq(p, partition))
        .unwrap_or(usize::MAX);
    if reason == Some(StopReason::SystemOff) {
        // Nobody reads its console any more: typed bytes go elsewhere (or nowhere).
        super::vconsole::set_takes_input(partitions(), index, false);
    }
    if reason.is_some() {
        // The partition's other vCPUs may never trap on their own (Linux parks them in a
        // WFI loop before it resets): a kick makes them stop now.
        if let Some(gic) = gic::get() {
            for cpu in running {
                gic.send_sgi(gic::KICK_SGI, cpu as usize);
            }
        }
    }
    if restart {
        partition.reset_interrupts();
        // SAFETY: the partition came from `arch::boot` (placed by `guest_image`), and its
        // last vCPU just stopped: none runs.
        unsafe { partition.load() };
        let (name, boots) = {
            let mut state = partition.state.lock();
            state.reboot(partition.placement.load, partition.placement.dtb);
            (state.name.clone(), state.boots())
        };
        info!("partition `{name}` restarted (boot {boots})");
        super::vconsole::set_takes_input(partitions(), index, true);
        cpu::send_event();
    }
    run(cpu::index())
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
            let name = partition_name(partition);
            let cpu = cpu::index();
            CONSOLES[cpu].lock().push(bytes.as_slice(), |line| {
                console::guest_line(&name, cpu, line);
            });
        }
        Reply::Ready => partition_ready(partition, Some(vcpu)),
    }
}
