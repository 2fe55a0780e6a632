//! Running partitions on the machine: the partition table and each CPU's pinning, vCPU
//! entry (EL2 setup for the partition, then `eret` to EL1), stopping and restarting a
//! partition, and the statistics. The two exits are children: [`trap_exit`] (synchronous
//! traps: HVC, MMIO, SGI1R, containment) and [`irq_exit`] (physical interrupts, virtual
//! SGIs, owed interrupts). What to do is hv-core's to decide; this carries it out.
//!
//! The partition table is built once by the boot CPU ([`install`]) and never changes
//! shape; each partition's mutable state sits behind its own lock, taken only for the
//! short PSCI/ready bookkeeping. A guest can make `hv` print, start its own vCPUs and stop
//! itself; nothing it passes can crash `hv` or touch another partition.

use alloc::vec::Vec;
use core::arch::asm;
use core::sync::atomic::{AtomicUsize, Ordering};

use aarch64_cpu::registers::{
    Readable, Writeable, ACTLR_EL2, CNTHCTL_EL2, CNTVOFF_EL2, CNTV_CTL_EL0, HCR_EL2, MIDR_EL1,
    VBAR_EL1, VMPIDR_EL2, VTCR_EL2, VTTBR_EL2,
};
use log::{error, info, warn};
use spin::{Mutex, Once};

use channel::hv_stats::Counter;
use hv_core::fault_policy::FaultAction;
use hv_core::layout::MAX_CPUS;
use hv_core::partition::{LineBuffer, StopReason};
use hv_core::running::Running;
use platform::config::GicVersion;

use super::{cache, console, cpu, gic, pmu, power};

mod app_load;
mod irq_exit;
mod live_lines;
mod trap_exit;

pub use irq_exit::handle_irq;
use irq_exit::{arm_console_tick, OWED, PENDING_SGIS};
use trap_exit::MONITOR_TRAPS;
pub use trap_exit::{handle_serror, handle_trap};

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

/// Copies `bytes` (or zeros, with `None`) to the guest's IPA `ipa`..`ipa + len` of a
/// coloured partition, page run by page run, and cleans what it wrote for a CPU starting
/// with caches off.
trait ColouredCopy {
    fn copy_through_runs(&self, ipa: u64, bytes: Option<&[u8]>, len: u64);
}

impl ColouredCopy for Running {
    fn copy_through_runs(&self, ipa: u64, bytes: Option<&[u8]>, len: u64) {
        let Some(pieces) = hv_core::cache_colour::pieces(&self.ram_runs, ipa, len) else {
            crate::fatal!(
                "partition `{}`: [{ipa:#x}+{len:#x}) is not in its coloured RAM",
                self.name
            );
        };
        for (pa, offset, size) in pieces {
            // SAFETY: `pa..pa + size` is a run of this partition's own RAM (its plan, from
            // its board-file RAM, which hv maps and no other partition owns), and no vCPU
            // of the partition runs while it is loaded; `bytes` has `len` bytes.
            unsafe {
                match bytes {
                    Some(b) => core::ptr::copy_nonoverlapping(
                        b.as_ptr().add(offset as usize),
                        pa as *mut u8,
                        size as usize,
                    ),
                    None => core::ptr::write_bytes(pa as *mut u8, 0, size as usize),
                }
            }
            cache::clean_for_guest(pa, size);
        }
    }
}

impl PartitionRestart for Running {
    /// Copies the Image (zeroing the rest of its memory) and the DTB into the partition's
    /// RAM and makes them visible to a CPU starting with caches off. Used at boot and at
    /// every reset, when no vCPU of the partition runs.
    unsafe fn load(&self) {
        let p = &self.placement;
        // `boot` checked that every DTB of the partition fits its DTB room.
        let dtb = self.dtbs.current();
        if self.ram_runs.is_empty() {
            // SAFETY: the caller vouches for the placement: `guest_image::place` checked
            // that the Image (with its memory size) and the DTB room lie inside the
            // partition's RAM, which hv maps and which no vCPU of the partition is running
            // in.
            unsafe {
                let load = p.load as *mut u8;
                core::ptr::copy_nonoverlapping(self.image.as_ptr(), load, self.image.len());
                core::ptr::write_bytes(
                    load.add(self.image.len()),
                    0,
                    p.size as usize - self.image.len(),
                );
                core::ptr::copy_nonoverlapping(dtb.as_ptr(), p.dtb as *mut u8, dtb.len());
            }
            cache::clean_for_guest(p.load, p.size);
            cache::clean_for_guest(p.dtb, dtb.len() as u64);
        } else {
            // A coloured partition: its IPA is not its PA, so every byte goes through its
            // runs (the same placement, checked against its IPA range).
            let image_len = self.image.len() as u64;
            self.copy_through_runs(p.load, Some(self.image), image_len);
            self.copy_through_runs(p.load + image_len, None, p.size - image_len);
            self.copy_through_runs(p.dtb, Some(dtb), dtb.len() as u64);
        }
        if let Some(console) = &self.console {
            console.reset();
        }
        if let Some(gpio) = &self.doorbell_gpio {
            gpio.reset();
        }
        if let Some((bytes, at)) = self.initrd {
            // SAFETY: as above; `guest_image::place_initrd` put the initramfs between the
            // Image's memory and the DTB room (Linux, never coloured: IPA = PA).
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
    if let Some((rings, raised, rt_rings, unread)) = super::doorbell::stats() {
        info!(
            "stats: doorbells: {rings} rings from Linux, the RT line raised {raised} times; \
             {rt_rings} rings from RT, {unread} of them while Linux's last was not taken yet"
        );
    }
    for (cpu, (stray, monitor)) in gic::STRAY_SGIS.iter().zip(&MONITOR_TRAPS).enumerate() {
        let Some(s) = super::stats::STATS.read(cpu) else {
            continue;
        };
        let n = s.get(Counter::IrqsForwarded);
        if let Some(per_irq) = s.get(Counter::ForwardCost).checked_div(n) {
            info!(
                "stats: CPU {cpu}: {n} interrupts forwarded, {per_irq} PMU counts in hv per \
                 interrupt (instructions under -icount), {} dropped, {} list-register refills, \
                 {} virtual SGIs refused",
                s.get(Counter::IrqsDropped),
                s.get(Counter::LrRefills),
                s.get(Counter::SgisRefused)
            );
        }
        let [kicks, others] = stray.each_ref().map(|n| n.load(Ordering::Relaxed));
        if kicks + others > 0 {
            info!(
                "stats: CPU {cpu}: SGIs hv did not send, ignored: {kicks} on its kick number, \
                 {others} on other numbers"
            );
        }
        let [pmu, debug] = monitor.each_ref().map(|n| n.load(Ordering::Relaxed));
        if pmu + debug > 0 {
            info!(
                "stats: CPU {cpu}: guest register accesses answered read-as-zero, \
                 write-ignored: {pmu} PMU, {debug} debug"
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
    publish_runs();
    cpu::send_event();
}

/// Every started partition's run record, written to the channel again.
pub fn publish_runs() {
    for p in partitions() {
        super::channel::publish_run(&p.state.lock());
    }
}

fn partitions() -> &'static [Running] {
    PARTITIONS.get().map(Vec::as_slice).unwrap_or(&[])
}

/// The partition and vCPU pinned to physical CPU `cpu`, if a started partition owns it.
#[inline]
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
    let hyp_timer = HYP_TIMER.get().copied().unwrap_or(DEFAULT_HYP_TIMER);
    if partition.console.is_some() {
        // Waiting here must still wake on hv's timer (see below): until the vCPU first
        // runs, nothing else set this CPU's interface up.
        if let Some(gic) = gic::get() {
            gic.init_cpu();
            gic.enable_private(hyp_timer);
        }
        // The guest's virtual timer must not fire while its vCPU does not run (a level
        // that stays high would wake every wait); `enter` sets it up afresh anyway.
        CNTV_CTL_EL0.set(0);
    }
    loop {
        // The lock guard must be gone before `enter`, which never returns.
        let pending = partition.state.lock().take_pending(vcpu);
        if let Some((entry, context)) = pending {
            enter(partition, vcpu, entry, context);
        }
        if partition.console.is_some() {
            // Its vCPU is not running (not started yet, or its partition powered off):
            // hv's console still reads what is typed (Ctrl-] commands, other
            // partitions' input) and drains its output from here, every tick, until
            // the vCPU starts again.
            super::vconsole::poll_input(partitions());
            console::wait_tick();
        } else {
            cpu::park_until_event();
        }
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
    pmu::trap_guest_access();
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

/// Stops this vCPU because its partition stopped (`reason`) while it ran, and says so.
fn stop_with_partition(partition: &Running, vcpu: usize, reason: StopReason) -> ! {
    let why = match reason {
        StopReason::SystemReset
        | StopReason::FaultRestart
        | StopReason::Load
        | StopReason::Rebooting => "resetting",
        StopReason::SystemOff | StopReason::Fault | StopReason::FaultStop => "off",
    };
    info!(
        "partition `{}` vCPU {vcpu} stopped: the partition is {why}",
        partition_name(partition)
    );
    stop_here(partition, vcpu, None)
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

fn partition_name(p: &Running) -> &'static str {
    p.name
}

/// A vCPU of an RT partition faulted and was reported: the board file's `on_fault` says
/// whether only it stops, the whole partition stops, or the partition restarts.
fn stop_for_fault(partition: &Running, vcpu: usize) -> ! {
    let action = partition.state.lock().fault_policy.decide();
    let name = partition_name(partition);
    let reason = match action {
        FaultAction::StopVcpu => StopReason::Fault,
        FaultAction::StopPartition => {
            error!("partition `{name}`: on_fault = \"stop\": the partition stops");
            StopReason::FaultStop
        }
        FaultAction::Restart { attempt, limit } => {
            warn!(
                "partition `{name}`: on_fault = \"restart\": restarting it (fault restart \
                 {attempt} of {limit})"
            );
            StopReason::FaultRestart
        }
        FaultAction::GiveUp { limit } => {
            error!(
                "partition `{name}`: on_fault = \"restart\", but its {limit} fault restarts \
                 are used up: the partition stops"
            );
            StopReason::FaultStop
        }
    };
    stop_here(partition, vcpu, Some(reason))
}

/// Its place among the started partitions (the input router's numbering).
fn index_of(partition: &Running) -> usize {
    partitions()
        .iter()
        .position(|p| core::ptr::eq(p, partition))
        .unwrap_or(usize::MAX)
}

/// Kicks `cpus`: a stopping partition's other vCPUs may never trap on their own (Linux
/// parks them in a WFI loop before it resets), and a kick makes them stop now.
pub(super) fn kick_all(cpus: &[u32]) {
    if let Some(gic) = gic::get() {
        for &cpu in cpus {
            gic.kick(cpu as usize);
        }
    }
}

/// Reloads and reboots a resetting partition once `take_restart` said no vCPU of it runs
/// any more (called by whoever saw that: its last vCPU to stop, or the CPU that stopped
/// it when none ran).
pub(super) fn restart_stopped(partition: &Running) {
    partition.reset_interrupts();
    // SAFETY: the partition came from `arch::boot` (placed by `guest_image`), and
    // `take_restart` said none of its vCPUs runs.
    unsafe { partition.load() };
    if partition.is_linux() {
        // Linux may have scribbled over the header; its next boot finds it whole.
        super::channel::rewrite_header();
    }
    let boots = {
        let mut state = partition.state.lock();
        state.reboot(partition.placement.load, partition.placement.dtb);
        super::channel::publish_run(&state);
        state.boots()
    };
    info!("partition `{}` restarted (boot {boots})", partition.name);
    super::vconsole::set_takes_input(partitions(), index_of(partition), true);
    cpu::send_event();
}

/// Stops this vCPU; with `reason`, records why. The last vCPU of a resetting partition to
/// stop reloads and reboots it. The CPU then waits in [`run`] until its vCPU is started
/// again (after a reset, or never).
fn stop_here(partition: &Running, vcpu: usize, reason: Option<StopReason>) -> ! {
    let (restart, running) = {
        let mut state = partition.state.lock();
        state.stop_vcpu(vcpu);
        if let Some(
            reason @ (StopReason::SystemOff
            | StopReason::SystemReset
            | StopReason::FaultStop
            | StopReason::FaultRestart),
        ) = reason
        {
            state.stop(reason);
            super::channel::publish_run(&state);
        }
        (state.take_restart(), state.running_cpus())
    };
    let index = index_of(partition);
    if reason == Some(StopReason::SystemOff) {
        // Nobody reads its console any more: typed bytes go elsewhere (or nowhere).
        super::vconsole::set_takes_input(partitions(), index, false);
    }
    if reason.is_some() {
        kick_all(&running);
    }
    if restart {
        restart_stopped(partition);
    }
    run(cpu::index())
}
