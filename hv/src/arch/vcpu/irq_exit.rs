//! The IRQ exit: physical interrupts taken while a vCPU ran, each forwarded, kept for hv
//! or dropped as [`forwarding::dispose`] decides; interrupts owed a list register; the
//! virtual SGI queues' delivery and drain; the console tick. It only acknowledges,
//! injects and deactivates: the decisions are hv-core's.

use log::warn;
use spin::Mutex;

use aarch64_cpu::registers::{Writeable, CNTHP_CTL_EL2};
use channel::hv_stats::Counter;
use hv_core::forwarding::{self, Disposition, HvLines};
use hv_core::layout::MAX_CPUS;
use hv_core::owed_irqs::OwedIrqs;
use hv_core::running::Running;
use hv_core::vgic::Effect;
use hv_core::virtual_sgi::SgiQueue;

use super::super::stats::{self, STATS};
use super::super::vconsole::ConsoleWiring;
use super::super::{cpu, doorbell, gic, pmu};
use super::{
    partitions, pinned, stop_with_partition, DEFAULT_HYP_TIMER, DEFAULT_VTIMER, HYP_TIMER, VTIMER,
};

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
            // A kick hv did not request, or another SGI number (an exit-less partition's,
            // on GICv3): counted and ignored.
            Disposition::Kick | Disposition::ForeignSgi if !gic.sgi_expected(intid) => {
                gic.deactivate(intid);
            }
            Disposition::ForeignSgi => gic.deactivate(intid),
            disposition @ (Disposition::Kick | Disposition::Refill) => {
                stats::count(Counter::IrqsTaken);
                gic.deactivate(intid);
                kicked |= disposition == Disposition::Kick;
                drain_sgis(gic);
                inject_owed(gic);
                if let Some((p, console)) = console {
                    console.update_irq(p);
                    doorbell::deliver_to_linux(p);
                }
            }
            Disposition::ConsoleTick => {
                stats::add(&[(Counter::IrqsTaken, 1), (Counter::ConsoleTicks, 1)]);
                if let Some((p, console)) = console {
                    arm_console_tick();
                    super::super::vconsole::poll_input(partitions());
                    // A level still high after the guest's EOI is raised again here.
                    console.update_irq(p);
                    doorbell::tick(p);
                }
                gic.deactivate(intid);
            }
            Disposition::Forward => {
                if gic.inject_hw(intid) {
                    let cost = pmu::count().wrapping_sub(start);
                    stats::add(&[
                        (Counter::IrqsTaken, 1),
                        (Counter::IrqsForwarded, 1),
                        (Counter::ForwardCost, cost),
                    ]);
                } else {
                    stats::count(Counter::IrqsTaken);
                    // No free list register: the line stays active (so it cannot fire
                    // again) and is injected when the list registers drain.
                    owe(gic, intid);
                }
            }
            Disposition::Drop => {
                gic.deactivate(intid);
                let dropped = STATS.read(me).map_or(0, |s| s.get(Counter::IrqsDropped));
                stats::add(&[(Counter::IrqsTaken, 1), (Counter::IrqsDropped, 1)]);
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

/// Interrupts one exit handles at most.
const MAX_IRQS_PER_EXIT: usize = 64;

/// Hardware interrupts taken but not yet in a list register, per CPU (left active).
pub(super) static OWED: [Mutex<OwedIrqs>; MAX_CPUS] =
    [const { Mutex::new(OwedIrqs::new()) }; MAX_CPUS];

fn owe(gic: &gic::Gic, intid: u32) {
    let me = cpu::index();
    if OWED[me].lock().push(intid) {
        stats::add(&[(Counter::IrqsOwed, 1), (Counter::LrRefills, 1)]);
        gic.request_refill(true);
    } else {
        gic.deactivate(intid);
        stats::count(Counter::IrqsDropped);
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
pub(super) fn arm_console_tick() {
    let ticks = cpu::tick_hz() * super::super::vconsole::POLL_MS / 1000;
    // SAFETY: the EL2 physical timer belongs to hv; arming it only raises its PPI.
    unsafe { core::arch::asm!("msr cnthp_tval_el2, {0}", in(reg) ticks.max(1), options(nostack)) };
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::SET);
}

/// Virtual SGIs waiting for the vCPU of each CPU.
pub(super) static PENDING_SGIS: [SgiQueue; MAX_CPUS] = [const { SgiQueue::new() }; MAX_CPUS];

/// Sends a virtual SGI from `source` (vCPU index) to the vCPUs on the effect's CPUs:
/// queued per target CPU, then injected there (directly on this CPU; after a physical
/// kick SGI on another).
pub(super) fn deliver(partition: &Running, effect: &Effect, source: usize) {
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
            // Counted (and printed with the statistics); reported once per sending CPU.
            let before = STATS.read(me).map_or(0, |s| s.get(Counter::SgisRefused));
            stats::count(Counter::SgisRefused);
            if before == 0 {
                warn!("virtual SGI not queued for CPU {cpu}: {refused:?}");
            }
            continue;
        }
        stats::count(Counter::SgisQueued);
        if cpu as usize == me {
            drain_sgis(gic);
        } else {
            gic.kick(cpu as usize);
        }
    }
}

/// Injects the virtual SGIs queued for this CPU's vCPU; those that find no free list
/// register stay queued for the next trap.
pub(super) fn drain_sgis(gic: &gic::Gic) {
    let me = cpu::index();
    let left = PENDING_SGIS[me].drain(|intid, source| gic.inject_sgi(intid, source));
    if left {
        stats::count(Counter::LrRefills);
    }
    // More than the list registers hold: come back when they drain.
    gic.request_refill(left);
}
